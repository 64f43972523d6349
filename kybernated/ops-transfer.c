/* SPDX-License-Identifier: Apache-2.0 */
/* Export (a verified checkpoint's directory for kybernatectl to pack) and
 * import (a directory kybernatectl unpacked into staging becomes a row). */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "archive.h"

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
                r = adopt_ready(m, e, op->dir, size, checksum);
        if (r >= 0) {
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

int staging_kind(const char *sd) {
        struct stat st;
        _cleanup_free_ char *pod = strdup_printf("%s/" POD_JSON_FILE, sd),
                            *inventory = strdup_printf("%s/checkpoint/inventory.img", sd);
        if (!pod || !inventory)
                return -ENOMEM;
        if (lstat(pod, &st) >= 0)
                return STAGING_POD;
        if (lstat(inventory, &st) >= 0 && S_ISREG(st.st_mode))
                return STAGING_CHECKPOINT;
        return -EMEDIUMTYPE;
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

/* ---- import of a pod checkpoint's archive ----
 *
 * The staging directory holds pod.json, kybernate.json and members/<container>/
 * (one checkpoint directory each, as a single import's). Everything is
 * checked before anything moves; then the pod row and its directory (the
 * staging directory), then each member row with pod_id set and its directory
 * (moved out of members/), all pending; each member is checksummed in turn;
 * pod.json is rewritten with the new member ids and the pod and its members
 * become ready in one transaction. Any failure removes every row and
 * directory of the import. */

typedef struct PodImportOp {
        Manager *manager;
        Connection *conn; /* the client's, while it stays (NULL: none was given) */
        PodImportDone done;
        void *userdata;
        char *staging; /* until it is adopted */
        CatalogEntry pod;
        char *dir; /* the pod's, once adopted */
        PodManifest man;
        CatalogEntry *members; /* man.n of them, in the manifest's order */
        char **dirs;           /* theirs, once adopted */
        uint64_t *sizes;
        char **sums;
        size_t next; /* the member being checksummed */
} PodImportOp;

static void pod_import_free(PodImportOp *op) {
        op->manager->n_jobs--;
        for (size_t i = 0; i < op->man.n; i++) {
                catalog_entry_done(&op->members[i]);
                free(op->dirs[i]);
                free(op->sums[i]);
        }
        free(op->members);
        free(op->dirs);
        free(op->sizes);
        free(op->sums);
        pod_manifest_done(&op->man);
        catalog_entry_done(&op->pod);
        free(op->dir);
        remove_tree_one_fs_free(&op->staging);
        free(op);
}

static void pod_import_detach(void *userdata) {
        ((PodImportOp *)userdata)->conn = NULL;
}

/* The import is over: the client is let go and told, op freed. */
static void pod_import_end(PodImportOp *op, int r, const char *what) {
        Connection *c = op->conn;
        if (c) {
                c->op = NULL;
                c->op_detach = NULL;
        }
        op->done(c, r, what, r >= 0 ? &op->pod : NULL, op->userdata);
        pod_import_free(op);
}

/* Removes whatever the import adopted, then pod_import_end(). */
static void pod_import_fail(PodImportOp *op, int r, const char *what) {
        Manager *m = op->manager;
        for (size_t i = 0; i < op->man.n; i++)
                if (op->dirs[i] && manager_remove_checkpoint(m, op->members[i].id) < 0)
                        log_error("Import of pod checkpoint %s: could not remove member %s", op->pod.id,
                                  op->members[i].id);
        if (op->dir && manager_remove_checkpoint(m, op->pod.id) < 0)
                log_error("Import of pod checkpoint %s: could not remove %s", op->pod.id, op->dir);
        pod_import_end(op, r, what);
}

/* The member checksums are in: pod.json names the new ids, and the pod and
 * its members become ready together. */
static int pod_import_finish(PodImportOp *op) {
        Manager *m = op->manager;
        bool durable = m->config->durable;
        const char **ids = calloc(op->man.n, sizeof(*ids));
        int r = ids ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < op->man.n; i++) {
                CatalogEntry *e = &op->members[i];
                ids[i] = e->id;
                free(op->man.members[i].id);
                op->man.members[i].id = strdup(e->id);
                if (!op->man.members[i].id) {
                        r = -ENOMEM;
                        break;
                }
                e->state = CHECKPOINT_READY;
                e->size_bytes = op->sizes[i];
                free(e->checksum);
                e->checksum = strdup(op->sums[i]);
                op->pod.size_bytes += op->sizes[i];
                if (!e->checksum)
                        r = -ENOMEM;
                if (r >= 0)
                        r = metadata_write_kybernate_json(op->dirs[i], e, durable);
                if (r >= 0 && durable)
                        r = store_fsync_path(op->dirs[i]);
        }
        op->pod.state = CHECKPOINT_READY;
        op->pod.frozen_usec = op->man.frozen_usec;
        if (r >= 0)
                r = metadata_write_pod_json(op->dir, &op->man, durable);
        if (r >= 0)
                r = metadata_write_kybernate_json(op->dir, &op->pod, durable);
        if (r >= 0 && durable)
                r = store_fsync_path(op->dir);
        if (r >= 0)
                r = catalog_set_pod_ready(m->catalog, op->pod.id, op->man.frozen_usec, op->man.n, ids,
                                          op->sizes, (const char *const *)op->sums);
        free(ids);
        return r;
}

static void pod_import_member_done(int r, uint64_t size, const char *checksum, void *userdata) {
        PodImportOp *op = userdata;
        Manager *m = op->manager;
        size_t i = op->next;

        if (r >= 0 && !(op->sums[i] = strdup(checksum)))
                r = -ENOMEM;
        if (r < 0) {
                pod_import_fail(op, r, op->man.members[i].container);
                return;
        }
        op->sizes[i] = size;
        if (++op->next < op->man.n) {
                r = checksum_task_start(m->event, op->dirs[op->next], NULL, m->config->durable,
                                        pod_import_member_done, op, NULL);
                if (r < 0)
                        pod_import_fail(op, r, op->man.members[op->next].container);
                return;
        }
        r = pod_import_finish(op);
        if (r < 0) {
                pod_import_fail(op, r, "recording it");
                return;
        }
        log_info("Imported pod checkpoint %s of %s/%s: %zu containers, %" PRIu64 " bytes", op->pod.id,
                 nn(op->pod.k8s_namespace), nn(op->pod.k8s_pod), op->man.n, op->pod.size_bytes);
        pod_import_end(op, 0, NULL);
}

/* The archive's layout: pod.json, kybernate.json and members/ at the top,
 * members/ holding exactly the containers pod.json names, each with CRIU
 * images. *what says what is wrong. */
static int pod_import_check_layout(const char *sd, const PodManifest *man, const char **what) {
        _cleanup_close_ int dfd = open(sd, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        _cleanup_strv_free_ char **top = NULL, **names = NULL;
        int r = dir_list_sorted(dfd, &top);
        if (r < 0)
                return r;
        STRV_FOREACH (n, top)
                if (!streq(*n, POD_JSON_FILE) && !streq(*n, STORE_METADATA_FILE) &&
                    !streq(*n, ARCHIVE_POD_MEMBERS_DIR)) {
                        *what = "it holds files other than pod.json, kybernate.json and members/";
                        return -EBADMSG;
                }
        _cleanup_close_ int mfd =
                openat(dfd, ARCHIVE_POD_MEMBERS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (mfd < 0 || dir_list_sorted(mfd, &names) < 0 || strv_length(names) != man->n) {
                *what = "its members/ directory does not hold exactly the containers pod.json names";
                return -EBADMSG;
        }
        for (size_t i = 0; i < man->n; i++) {
                struct stat st;
                _cleanup_free_ char *inv =
                        strdup_printf("%s/checkpoint/inventory.img", man->members[i].container);
                if (!inv)
                        return -ENOMEM;
                if (fstatat(mfd, inv, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
                        *what = "a container pod.json names is missing or holds no CRIU images "
                                "(members/CONTAINER/checkpoint/inventory.img)";
                        return -EBADMSG;
                }
        }
        return 0;
}

/* The rows the archive describes, nothing adopted yet: the pod's identity
 * from its kybernate.json (the sandbox id from pod.json if it names none,
 * namespaces and pod name from its members if it lacks them), each member's
 * from its own metadata as for a single import, all in the same pod. */
static int pod_import_identities(PodImportOp *op, const char *sd, const char **what) {
        Manager *m = op->manager;
        int r = staging_identity(sd, &op->pod);
        if (r < 0) {
                *what = "the pod's kybernate.json is invalid";
                return r;
        }
        op->pod.is_pod = true;
        if (isempty(op->pod.container_id)) {
                free(op->pod.container_id);
                op->pod.container_id = strdup(op->man.sandbox_id);
                if (!op->pod.container_id)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < op->man.n; i++) {
                const char *name = op->man.members[i].container;
                CatalogEntry *e = &op->members[i];
                *e = (CatalogEntry){.state = CHECKPOINT_PENDING,
                                    .created_ns = op->pod.created_ns,
                                    .durable = m->config->durable};
                _cleanup_free_ char *md = strdup_printf("%s/" ARCHIVE_POD_MEMBERS_DIR "/%s", sd, name);
                if (!md)
                        return -ENOMEM;
                *what = "a member's kybernate.json is invalid";
                r = staging_identity(md, e);
                if (r < 0)
                        return r;
                if (isempty(e->k8s_container) && !(e->k8s_container = strdup(name)))
                        return -ENOMEM;
                /* A member is in the pod's namespace and pod, under its own name. */
                *what = "a member's metadata names another container, pod or namespace than pod.json "
                        "and the pod's kybernate.json";
                if (!streq(e->k8s_container, name))
                        return -EBADMSG;
                /* What the pod's kybernate.json lacks, its first member says. */
                char **pod_f[] = {&op->pod.k8s_namespace, &op->pod.k8s_pod, &op->pod.containerd_namespace};
                char *const mem_f[] = {e->k8s_namespace, e->k8s_pod, e->containerd_namespace};
                for (size_t k = 0; k < ELEMENTSOF(mem_f); k++) {
                        if (isempty(mem_f[k]))
                                continue;
                        if (isempty(*pod_f[k])) {
                                free(*pod_f[k]);
                                if (!(*pod_f[k] = strdup(mem_f[k])))
                                        return -ENOMEM;
                        } else if (!streq(*pod_f[k], mem_f[k]))
                                return -EBADMSG;
                }
        }
        return 0;
}

void pod_import(Manager *m, Connection *c, const char *sd, const PodImportParams *p, PodImportDone done,
                void *userdata) {
        const char *what = "pod.json is invalid";
        PodImportOp *op = calloc(1, sizeof(*op));
        char *staging = strdup(sd);
        if (!op || !staging) {
                free(op);
                free(staging);
                (void)remove_tree_one_fs(sd);
                done(c, -ENOMEM, "out of memory", NULL, userdata);
                return;
        }
        op->manager = m;
        op->conn = c;
        op->done = done;
        op->userdata = userdata;
        op->staging = staging;
        op->pod = (CatalogEntry){.state = CHECKPOINT_PENDING,
                                 .created_ns = now_realtime_ns(),
                                 .durable = m->config->durable,
                                 .pinned = p->pin};
        m->n_jobs++;
        _cleanup_free_ char *pj = strdup_printf("%s/" POD_JSON_FILE, sd), *text = NULL;
        int r = pj ? read_full_file(pj, 1 << 20, &text, NULL) : -ENOMEM;
        if (r >= 0)
                r = metadata_parse_pod_json(text, &op->man);
        if (r >= 0) {
                op->members = calloc(op->man.n, sizeof(*op->members));
                op->dirs = calloc(op->man.n, sizeof(*op->dirs));
                op->sums = calloc(op->man.n, sizeof(*op->sums));
                op->sizes = calloc(op->man.n, sizeof(*op->sizes));
                if (!op->members || !op->dirs || !op->sums || !op->sizes) {
                        pod_manifest_done(&op->man); /* nothing of it to free */
                        r = -ENOMEM;
                }
        }
        if (r >= 0)
                r = pod_import_check_layout(sd, &op->man, &what);
        if (r >= 0)
                r = pod_import_identities(op, sd, &what);
        const char *why = NULL;
        if (r >= 0 && p->target && tenant_check(&op->pod, p->target, &why) < 0) {
                what = why;
                r = -EACCES;
        }
        if (r >= 0 && ((!isempty(p->name) && !(op->pod.name = strdup(p->name))) ||
                       (p->source_image && !(op->pod.source_image = strdup(p->source_image)))))
                r = -ENOMEM;
        if (r >= 0) {
                what = "adding the pod checkpoint";
                r = staging_adopt(m, sd, &op->pod, &op->dir);
                if (r == -EEXIST)
                        what = "a checkpoint of that name exists already";
        }
        if (r < 0) {
                pod_import_fail(op, r, what);
                return;
        }
        /* sd is the pod's directory now: from here on, failures remove it. */
        free(op->staging);
        op->staging = NULL;
        for (size_t i = 0; r >= 0 && i < op->man.n; i++) {
                CatalogEntry *e = &op->members[i];
                _cleanup_free_ char *md = strdup_printf("%s/" ARCHIVE_POD_MEMBERS_DIR "/%s", op->dir,
                                                        op->man.members[i].container);
                if (!md || !(e->pod_id = strdup(op->pod.id)))
                        r = -ENOMEM;
                if (r >= 0)
                        r = staging_adopt(m, md, e, &op->dirs[i]);
        }
        _cleanup_free_ char *mdir = strdup_printf("%s/" ARCHIVE_POD_MEMBERS_DIR, op->dir);
        if (r >= 0 && (!mdir || rmdir(mdir) < 0))
                r = mdir ? negative_errno() : -ENOMEM;
        if (r >= 0)
                r = checksum_task_start(m->event, op->dirs[0], NULL, m->config->durable,
                                        pod_import_member_done, op, NULL);
        if (r < 0) {
                pod_import_fail(op, r, "adding its members");
                return;
        }
        if (c) {
                c->op = op;
                c->op_detach = pod_import_detach;
        }
}

static void import_pod_done(Connection *c, int r, const char *what, CatalogEntry *pod, void *userdata) {
        if (c && r < 0)
                connection_send_error(c, r, "import of the pod checkpoint failed: %s: %s", what,
                                      strerror(-r));
        else if (c)
                reply_info(c, KYBERNATE__V1__RESPONSE__RESULT_IMPORT, pod);
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
        r = staging_kind(sd);
        if (r == -ENOMEM) {
                connection_send_error(c, ENOMEM, "out of memory");
                return;
        }
        if (r == STAGING_POD) {
                if (req->override) {
                        connection_send_error(c, EINVAL,
                                              "an override is not taken for a pod checkpoint's archive");
                        return;
                }
                staging = NULL; /* taken */
                PodImportParams p = {.name = req->name, .pin = req->has_pin && req->pin};
                pod_import(m, c, sd, &p, import_pod_done, NULL);
                return;
        }
        if (r < 0) {
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
