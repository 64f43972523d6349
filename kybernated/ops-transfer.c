/* SPDX-License-Identifier: Apache-2.0 */
/* Export (a verified checkpoint's directory for kybernatectl to pack) and
 * import (a directory kybernatectl unpacked into staging becomes a row). */
#include <inttypes.h>
#include <sys/stat.h>

#include "log.h"
#include "metadata.h"
#include "mount-util.h"
#include "ops.h"
#include "resolve.h"
#include "spawn.h"
#include "store.h"

void op_export(Connection *c, const Kybernate__V1__ExportRequest *req) {
        CatalogEntry e = {};
        if (lookup_or_reply(c, req->reference, &e) < 0)
                return;
        if (e.state != CHECKPOINT_READY) {
                connection_send_error(c, EBUSY, "checkpoint %s is not ready", e.id);
                catalog_entry_done(&e);
                return;
        }
        if (member_of_pod(c->manager, &e)) {
                connection_send_error(c, EPERM,
                                      "checkpoint %s is a member of pod checkpoint %s: export the pod (a "
                                      "member restored alone would miss the other containers of its pod)",
                                      e.id, e.pod_id);
                catalog_entry_done(&e);
                return;
        }
        if (!e.is_pod) {
                start_verify(c, &e, KYBERNATE__V1__RESPONSE__RESULT_EXPORT, false);
                return;
        }
        /* A pod: its members, each verified (as one checkpoint's export is). */
        _cleanup_(pod_members_done) PodMembers pm = {};
        CatalogEntry *members = NULL;
        size_t n = 0;
        int r = pod_members_load(c->manager->catalog, e.id, &pm);
        if (r >= 0 && !(members = calloc(MAX(pm.n, 1u), sizeof(*members))))
                r = -ENOMEM;
        for (; r >= 0 && n < pm.n; n++) {
                r = catalog_get(c->manager->catalog, pm.items[n].id, &members[n]);
                if (r >= 0 && members[n].state != CHECKPOINT_READY)
                        r = -EBUSY;
        }
        if (r < 0) {
                connection_send_error(c, r, "the members of pod checkpoint %s: %s", e.id, strerror(-r));
                for (size_t i = 0; i < n; i++)
                        catalog_entry_done(&members[i]);
                free(members);
                catalog_entry_done(&e);
                return;
        }
        start_verify_pod_export(c, &e, members, n);
}

/* ---- import ---- */

typedef struct ImportOp {
        Manager *manager;
        Connection *conn;
        CatalogEntry entry;
        char *dir;
} ImportOp;

static void import_op_free(ImportOp *op) {
        op->manager->n_jobs--;
        catalog_entry_done(&op->entry);
        free(op->dir);
        free(op);
}

static void import_op_detach(void *userdata) {
        ((ImportOp *)userdata)->conn = NULL;
}

static void import_done(int r, uint64_t size, const char *checksum, void *userdata) {
        ImportOp *op = userdata;
        Manager *m = op->manager;
        Connection *c = op->conn;
        CatalogEntry *e = &op->entry;

        if (c) {
                c->op = NULL;
                c->op_detach = NULL;
        }
        if (r >= 0)
                r = catalog_set_ready(m->catalog, e->id, size, checksum);
        if (r >= 0) {
                e->state = CHECKPOINT_READY;
                e->size_bytes = size;
                free(e->checksum);
                e->checksum = strdup(checksum);
                (void)metadata_write_kybernate_json(op->dir, e, m->config->durable);
                log_info("Imported checkpoint %s (%" PRIu64 " bytes)", e->id, size);
                if (c)
                        reply_info(c, KYBERNATE__V1__RESPONSE__RESULT_IMPORT, e);
        } else {
                (void)manager_remove_checkpoint(m, e->id);
                if (c)
                        connection_send_error(c, r,
                                              "import failed: %s (only regular files and directories are "
                                              "accepted)",
                                              strerror(-r));
        }
        import_op_free(op);
}

int staging_identity(const char *sd, CatalogEntry *e) {
        int r = metadata_read_kybernate_json(sd, e);
        if (r < 0 && r != -ENOENT)
                return r;
        _cleanup_free_ char *spec_path = strdup_printf("%s/spec.dump", sd), *spec = NULL;
        if (spec_path && read_full_file(spec_path, SPEC_MAX_BYTES, &spec, NULL) >= 0)
                (void)metadata_from_spec(spec, e);
        /* A Kubernetes container's archive that names no containerd namespace
         * (kubelet's checkpoint API, CRI-O): containerd's CRI runs every pod in
         * k8s.io, where such a checkpoint restores. */
        if (!isempty(e->k8s_namespace) && isempty(e->containerd_namespace)) {
                free(e->containerd_namespace);
                e->containerd_namespace = strdup(CRI_CONTAINERD_NAMESPACE);
                if (!e->containerd_namespace)
                        return -ENOMEM;
        }
        return 0;
}

int staging_adopt(Manager *m, const char *sd, CatalogEntry *e, char **ret_dir) {
        char id[ID_LEN + 1];
        _cleanup_free_ char *dir = NULL;
        int r = store_new_id(id);
        if (r < 0)
                return r;
        free(e->id);
        e->id = strdup(id);
        if (!e->id)
                return -ENOMEM;
        r = manager_checkpoint_dir(m, id, &dir);
        if (r >= 0)
                r = catalog_insert(m->catalog, e);
        if (r < 0)
                return r;
        if (rename(sd, dir) < 0) {
                r = negative_errno();
                (void)catalog_delete(m->catalog, id);
                return r;
        }
        _cleanup_free_ char *kj = strdup_printf("%s/%s", dir, STORE_METADATA_FILE);
        if (kj)
                (void)unlink(kj);
        *ret_dir = TAKE_PTR(dir);
        return 0;
}

void op_import(Connection *c, const Kybernate__V1__ImportRequest *req) {
        Manager *m = c->manager;
        char id[33];
        int r;

        if (m->no_spawn) {
                connection_send_error(c, EOPNOTSUPP, "import disabled in this instance");
                return;
        }
        if (req->has_prepare && req->prepare) {
                _cleanup_free_ char *dir = NULL;
                r = store_new_id(id);
                if (r < 0 || asprintf(&dir, "%s/%s", m->staging_dir, id) < 0) {
                        connection_send_error(c, ENOMEM, "out of memory");
                        return;
                }
                if (mkdir(dir, 0700) < 0) {
                        connection_send_error(c, errno, "creating %s failed: %s", dir, strerror(errno));
                        return;
                }
                Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
                Kybernate__V1__ImportResponse imp = KYBERNATE__V1__IMPORT_RESPONSE__INIT;
                imp.staging_dir = dir;
                resp.result_case = KYBERNATE__V1__RESPONSE__RESULT_IMPORT;
                resp.import = &imp;
                (void)connection_send(c, &resp, true);
                return;
        }

        /* The staging directory must be one we handed out: <staging>/<32 hex>. */
        const char *sd = req->staging_dir;
        const char *rest = sd ? startswith(sd, m->staging_dir) : NULL;
        if (!rest || rest[0] != '/' || strlen(rest + 1) != 32 ||
            strspn(rest + 1, "0123456789abcdef") != 32) {
                connection_send_error(c, EINVAL,
                                      "staging_dir must be a directory returned by Import{prepare}");
                return;
        }
        struct stat st;
        if (lstat(sd, &st) < 0 || !S_ISDIR(st.st_mode)) {
                connection_send_error(c, ENOENT, "staging directory %s does not exist", sd);
                return;
        }
        /* A refused import leaves nothing behind (disarmed once it moved). */
        _cleanup_(remove_tree_one_fsp) const char *staging = sd;
        if (!isempty(req->name) && !ident_valid(req->name, NAME_MAX_LEN)) {
                connection_send_error(c, EINVAL, "invalid name: use 1-%d characters of [A-Za-z0-9._-]",
                                      NAME_MAX_LEN);
                return;
        }
        _cleanup_free_ char *inventory = NULL;
        if (asprintf(&inventory, "%s/checkpoint/inventory.img", sd) < 0) {
                connection_send_error(c, ENOMEM, "out of memory");
                return;
        }
        if (lstat(inventory, &st) < 0 || !S_ISREG(st.st_mode)) {
                connection_send_error(c, EINVAL,
                                      "%s holds no CRIU images (checkpoint/inventory.img missing)", sd);
                return;
        }

        CatalogEntry e = {
                .state = CHECKPOINT_PENDING, .created_ns = now_realtime_ns(), .durable = m->config->durable};
        const Kybernate__V1__CheckpointInfo *o = req->override;
        r = 0;
        if (o) {
                const char *vals[] = {o->containerd_namespace, o->k8s_namespace, o->k8s_pod,
                                      o->k8s_container, o->container_id};
                for (size_t i = 0; i < ELEMENTSOF(vals); i++)
                        if (!isempty(vals[i]) && !ident_valid(vals[i], IDENT_MAX_LEN))
                                r = -EINVAL;
                if (!isempty(o->image_ref) && !image_ref_valid(o->image_ref))
                        r = -EINVAL;
                if (r >= 0) {
                        CatalogEntry ov = {.containerd_namespace = o->containerd_namespace,
                                           .k8s_namespace = o->k8s_namespace,
                                           .k8s_pod = o->k8s_pod,
                                           .k8s_container = o->k8s_container,
                                           .container_id = o->container_id,
                                           .image_ref = o->image_ref};
                        r = catalog_entry_copy(&ov, &e);
                        e.state = CHECKPOINT_PENDING;
                        e.created_ns = now_realtime_ns();
                        e.durable = m->config->durable;
                        e.allow_cross_namespace = o->has_allow_cross_namespace && o->allow_cross_namespace;
                }
                if (r < 0) {
                        connection_send_error(c, EINVAL, "invalid override field");
                        return;
                }
        }
        /* Identity: override, then the archive's kybernate.json, then its spec. */
        r = staging_identity(sd, &e);
        if (r < 0) {
                catalog_entry_done(&e);
                connection_send_error(c, r, "kybernate.json in the archive is invalid: %s", strerror(-r));
                return;
        }

        ImportOp *op = calloc(1, sizeof(*op));
        r = op ? 0 : -ENOMEM;
        if (r >= 0 && !isempty(req->name)) {
                e.name = strdup(req->name);
                r = e.name ? 0 : -ENOMEM;
        }
        e.pinned = req->has_pin && req->pin;
        if (r >= 0)
                r = staging_adopt(m, sd, &e, &op->dir);
        if (r == -EEXIST) {
                connection_send_error(c, EEXIST, "a checkpoint named '%s' exists already", req->name);
                free(op);
                catalog_entry_done(&e);
                return;
        }
        if (r < 0) {
                connection_send_error(c, r, "import failed: %s", strerror(-r));
                free(op);
                catalog_entry_done(&e);
                return;
        }
        staging = NULL; /* moved */
        op->manager = m;
        op->conn = c;
        op->entry = e;
        m->n_jobs++;
        r = checksum_task_start(m->event, op->dir, NULL, m->config->durable, import_done, op, NULL);
        if (r < 0) {
                (void)manager_remove_checkpoint(m, e.id);
                connection_send_error(c, r, "import failed: %s", strerror(-r));
                import_op_free(op);
                return;
        }
        c->op = op;
        c->op_detach = import_op_detach;
}
