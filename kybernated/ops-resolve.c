/* SPDX-License-Identifier: Apache-2.0 */
/* Resolve: a reference to the images a restore uses, after the tenant and
 * image rules and the checksum; or a host path below allowed_restore_dirs. */
#include <limits.h>
#include <sys/stat.h>

#include "log.h"
#include "ops.h"
#include "resolve.h"

static void resolve_path(Connection *c, const char *path) {
        Manager *m = c->manager;
        _cleanup_free_ char *image = NULL;
        const char *why = NULL;
        int r = host_path_check(path, m->config->allowed_restore_dirs, m->config->store, &image, &why);
        if (r < 0) {
                connection_send_error(c, r, "path %s refused: %s", path, why);
                return;
        }
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        Kybernate__V1__ResolveResponse res = KYBERNATE__V1__RESOLVE_RESPONSE__INIT;
        res.image_path = image;
        res.checkpoint_dir = (char *)path;
        resp.result_case = KYBERNATE__V1__RESPONSE__RESULT_RESOLVE;
        resp.resolve = &res;
        log_info("Resolved host path %s (allowed_restore_dirs)", path);
        (void)connection_send(c, &resp, true);
}

/* Whether id is a row of the catalog, whoever may see it. */
static bool in_catalog(Manager *m, const char *id) {
        CatalogEntry e = {};
        int r = catalog_get(m->catalog, id, &e);
        catalog_entry_done(&e);
        return r != -ENOENT;
}

void resolve_reply(Connection *c, CatalogEntry *entry, const RestoreIdentity *t, bool ignore_image,
                   bool count_restore) {
        Manager *m = c->manager;
        CatalogEntry e = *entry;
        *entry = (CatalogEntry){};
        char msg[1024];
        const char *why = NULL;
        int r;

        if (e.state != CHECKPOINT_READY) {
                connection_send_error(c, EBUSY, "checkpoint %s is not ready", e.id);
                catalog_entry_done(&e);
                return;
        }
        if (tenant_check(&e, t, &why) < 0) {
                connection_send_error(c, EACCES, "restore of checkpoint %s refused: %s", e.id, why);
                catalog_entry_done(&e);
                return;
        }
        _cleanup_free_ char *pod_id = NULL;
        if (e.is_pod) {
                /* A pod checkpoint restores each container of the new pod
                 * from its member of the same container name. */
                CatalogEntry member = {};
                r = resolve_pod_member(m->catalog, &e, t, &member, msg, sizeof(msg));
                if (r < 0) {
                        connection_send_error(c, r, "%s", msg);
                        catalog_entry_done(&e);
                        return;
                }
                pod_id = TAKE_PTR(e.id);
                catalog_entry_done(&e);
                e = member;
                if (e.state != CHECKPOINT_READY) {
                        connection_send_error(c, EBUSY, "checkpoint %s (of pod checkpoint %s) is not ready",
                                              e.id, pod_id);
                        catalog_entry_done(&e);
                        return;
                }
        }
        if (!ignore_image) {
                r = image_check(&e, t, msg, sizeof(msg));
                if (r < 0) {
                        connection_send_error(c, -r, "restore of checkpoint %s refused: %s", e.id, msg);
                        catalog_entry_done(&e);
                        return;
                }
        }
        start_verify_member(c, &e, pod_id, KYBERNATE__V1__RESPONSE__RESULT_RESOLVE, count_restore);
}

void op_resolve(Connection *c, const Kybernate__V1__ResolveRequest *req) {
        Manager *m = c->manager;
        char msg[512];
        RefKind kind;
        const char *reason = NULL;

        int r = ref_parse(req->reference, &kind, &reason);
        if (r < 0) {
                connection_send_error(c, EINVAL, "invalid reference: %s", reason);
                return;
        }
        if (kind == REF_PATH) {
                resolve_path(c, req->reference);
                return;
        }
        if (!req->target) {
                connection_send_error(
                        c, EINVAL,
                        "resolve needs the restoring container's identity (target) for the tenant "
                        "rule");
                return;
        }
        RestoreIdentity t = {
                .containerd_namespace = req->target->containerd_namespace,
                .k8s_namespace = req->target->k8s_namespace,
                .k8s_pod = req->target->k8s_pod,
                .k8s_container = req->target->k8s_container,
                .image_ref = req->target->image_ref,
        };
        if (kind == REF_IMAGE) {
                op_resolve_image(c, req->reference, &t, req->has_ignore_image && req->ignore_image,
                                 !(req->has_dry_run && req->dry_run), NULL);
                return;
        }
        /* Only checkpoints the target may restore (the tenant rule) are found. */
        CatalogEntry e = {};
        r = resolve_lookup(m->catalog, req->reference, &t, &e, msg, sizeof(msg));
        if (r == -ENOENT && kind == REF_ID && m->config->push_to && !in_catalog(m, req->reference)) {
                /* Maybe another node's, pushed to the same repository (push.h). */
                _cleanup_free_ char *image = strdup_printf("%s:%s", m->config->push_to, req->reference);
                if (!image) {
                        connection_send_error(c, ENOMEM, "out of memory");
                        return;
                }
                op_resolve_image(c, image, &t, req->has_ignore_image && req->ignore_image,
                                 !(req->has_dry_run && req->dry_run), msg);
                return;
        }
        if (r < 0) {
                connection_send_error(c, r, "%s", msg);
                return;
        }
        resolve_reply(c, &e, &t, req->has_ignore_image && req->ignore_image,
                      !(req->has_dry_run && req->dry_run));
}
