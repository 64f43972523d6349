/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "log.h"
#include "manager.h"
#include "metadata.h"
#include "resolve.h"
#include "spawn.h"
#include "store.h"

int manager_checkpoint_dir(Manager *m, const char *id, char **ret) {
        return asprintf(ret, "%s/%s", m->checkpoints_dir, id) < 0 ? -ENOMEM : 0;
}

static char *nn(const char *s) {
        return (char *)(s ? s : "");
}

void entry_to_info(const CatalogEntry *e, const char *path, Kybernate__V1__CheckpointInfo *info,
                   Kybernate__V1__CheckpointOptions *opts) {
        kybernate__v1__checkpoint_info__init(info);
        kybernate__v1__checkpoint_options__init(opts);
        /* The strings stay owned by e: pack before e goes away. */
        info->id = nn(e->id);
        if (!isempty(e->name))
                info->name = e->name;
        info->has_state = true;
        info->state = (Kybernate__V1__CheckpointState)e->state;
        info->containerd_namespace = nn(e->containerd_namespace);
        info->k8s_namespace = nn(e->k8s_namespace);
        info->k8s_pod = nn(e->k8s_pod);
        info->k8s_container = nn(e->k8s_container);
        info->container_id = nn(e->container_id);
        info->image_ref = nn(e->image_ref);
        info->image_digest = nn(e->image_digest);
        info->has_created_ns = true;
        info->created_ns = e->created_ns;
        info->has_size_bytes = true;
        info->size_bytes = e->size_bytes;
        info->runc_version = nn(e->runc_version);
        info->criu_version = nn(e->criu_version);
        info->kernel_version = nn(e->kernel_version);
        opts->has_leave_running = opts->has_tcp_established = opts->has_ext_unix_sk = opts->has_file_locks =
                opts->has_shell_job = true;
        opts->leave_running = !!(e->options & CKPT_OPT_LEAVE_RUNNING);
        opts->tcp_established = !!(e->options & CKPT_OPT_TCP_ESTABLISHED);
        opts->ext_unix_sk = !!(e->options & CKPT_OPT_EXT_UNIX_SK);
        opts->file_locks = !!(e->options & CKPT_OPT_FILE_LOCKS);
        opts->shell_job = !!(e->options & CKPT_OPT_SHELL_JOB);
        info->options = opts;
        info->checksum = nn(e->checksum);
        info->has_restore_count = true;
        info->restore_count = e->restore_count;
        info->has_pinned = true;
        info->pinned = e->pinned;
        info->has_allow_cross_namespace = true;
        info->allow_cross_namespace = e->allow_cross_namespace;
        if (path)
                info->path = (char *)path;
        info->has_last_restored_ns = true;
        info->last_restored_ns = e->last_restored_ns;
        info->has_durable = true;
        info->durable = e->durable;
        info->bundle = nn(e->bundle);
}

int manager_lookup(Manager *m, const char *ref, CatalogEntry *ret, char *msg, size_t msgsize) {
        return resolve_lookup(m->catalog, ref, NULL, ret, msg, msgsize);
}

/* manager_lookup(), answering the client with the reason when it fails. */
static int lookup_or_reply(Connection *c, const char *reference, CatalogEntry *ret) {
        char msg[512];
        int r = manager_lookup(c->manager, reference, ret, msg, sizeof(msg));
        if (r < 0)
                connection_send_error(c, r, "%s", msg);
        return r;
}

int manager_remove_checkpoint(Manager *m, const char *id) {
        _cleanup_free_ char *dir = NULL;
        int r = manager_checkpoint_dir(m, id, &dir);
        if (r < 0)
                return r;
        /* Row first: a crash between the two leaves a directory without a row,
         * which the next start removes; never a row without its files. */
        r = catalog_delete(m->catalog, id);
        if (r < 0 && r != -ENOENT)
                return r;
        return store_remove_tree(dir);
}

/* ---- entry pages (List, Prune) ---- */

/* Entries are encoded as they come from the catalog, straight into a page:
 * the bytes of repeated field 1 (entries / deleted) of ListResponse /
 * PruneResponse. A full page goes out as an intermediate Response. */
typedef struct Pager {
        Connection *conn;
        int kind; /* KYBERNATE__V1__RESPONSE__RESULT_LIST or _PRUNE */
        uint8_t *page;
        size_t len;
        uint64_t total;
        uint64_t freed;
} Pager;

#define PAGE_MAX (KYB_MSG_MAX - 256) /* room for the Response around it */

static size_t put_varint(uint8_t *p, uint64_t v) {
        size_t n = 0;
        do {
                p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
                v >>= 7;
        } while (v);
        return n;
}

static void pager_done(Pager *p) {
        free(p->page);
}

static int pager_flush(Pager *p, bool final) {
        /* The result message: the page, then (final) the scalar field 2
         * (total / freed_bytes). */
        uint8_t tail[16];
        size_t tail_len = 0;
        if (final) {
                tail[tail_len++] = 0x10; /* field 2, varint */
                tail_len +=
                        put_varint(tail + tail_len,
                                   p->kind == KYBERNATE__V1__RESPONSE__RESULT_LIST ? p->total : p->freed);
        }
        size_t body = p->len + tail_len;
        /* Response field: list = 13, prune = 16; wire type 2. */
        uint8_t head[16];
        size_t head_len = put_varint(head, ((uint64_t)p->kind << 3) | 2);
        head_len += put_varint(head + head_len, body);

        _cleanup_free_ uint8_t *extra = malloc(head_len + body);
        if (!extra)
                return -ENOMEM;
        memcpy(extra, head, head_len);
        if (p->len > 0)
                memcpy(extra + head_len, p->page, p->len);
        memcpy(extra + head_len + p->len, tail, tail_len);

        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        p->len = 0;
        return connection_send_encoded(p->conn, &resp, extra, head_len + body, final);
}

static int pager_add(Pager *p, const CatalogEntry *e) {
        Manager *m = p->conn->manager;
        Kybernate__V1__CheckpointInfo info;
        Kybernate__V1__CheckpointOptions opts;
        char path[PATH_MAX];
        int r;

        if (!p->page) {
                p->page = malloc(PAGE_MAX);
                if (!p->page)
                        return -ENOMEM;
        }
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", m->checkpoints_dir, e->id) >= sizeof(path))
                return -ENAMETOOLONG;
        entry_to_info(e, path, &info, &opts);
        size_t size = protobuf_c_message_get_packed_size(&info.base);
        if (size + 16 > PAGE_MAX)
                return -EMSGSIZE;
        if (p->len + size + 16 > PAGE_MAX) {
                r = pager_flush(p, false);
                if (r < 0)
                        return r;
        }
        p->page[p->len++] = 0x0a; /* field 1, length-delimited */
        p->len += put_varint(p->page + p->len, size);
        p->len += protobuf_c_message_pack(&info.base, p->page + p->len);
        p->total++;
        return 0;
}

static int list_row(const CatalogEntry *e, void *userdata) {
        return pager_add(userdata, e);
}

void op_list(Connection *c, const Kybernate__V1__ListRequest *req) {
        Manager *m = c->manager;
        CatalogFilter f = {
                .containerd_namespace = req->containerd_namespace,
                .k8s_namespace = req->k8s_namespace,
                .k8s_pod = req->k8s_pod,
                .k8s_container = req->k8s_container,
                .container_id = req->container_id,
                .state = req->has_state ? (int)req->state : 0,
                .limit = req->has_limit ? req->limit : 0,
        };
        const char *vals[] = {f.containerd_namespace, f.k8s_namespace, f.k8s_pod, f.k8s_container,
                              f.container_id};
        for (size_t i = 0; i < ELEMENTSOF(vals); i++)
                if (vals[i] && strlen(vals[i]) > IDENT_MAX_LEN) {
                        connection_send_error(c, EINVAL, "list filter too long");
                        return;
                }
        if (f.state < 0 || f.state > CHECKPOINT_FAILED) {
                connection_send_error(c, EINVAL, "unknown state %d", f.state);
                return;
        }

        Pager p = {.conn = c, .kind = KYBERNATE__V1__RESPONSE__RESULT_LIST};
        int r = catalog_list(m->catalog, &f, list_row, &p);
        if (r >= 0)
                r = pager_flush(&p, true);
        else
                connection_send_error(c, r, "listing the catalog failed: %s", strerror(-r));
        pager_done(&p);
}

void op_status(Connection *c, const Kybernate__V1__StatusRequest *req) {
        Manager *m = c->manager;
        CatalogCounts counts;
        int r = catalog_counts(m->catalog, &counts);
        if (r < 0) {
                connection_send_error(c, r, "reading the catalog failed: %s", strerror(-r));
                return;
        }
        Kybernate__V1__StatusResponse st = KYBERNATE__V1__STATUS_RESPONSE__INIT;
        st.version = (char *)KYB_VERSION;
        st.has_protocol_version = true;
        st.protocol_version = KYB_PROTOCOL_VERSION;
        st.store_path = m->config->store;
        st.has_store_bytes = true;
        st.store_bytes = counts.bytes;
        struct statvfs sv;
        if (statvfs(m->config->store, &sv) >= 0) {
                st.has_fs_free_bytes = st.has_fs_total_bytes = true;
                st.fs_free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
                st.fs_total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
        }
        st.has_count_ready = st.has_count_pending = st.has_count_failed = st.has_count_pinned = true;
        st.count_ready = counts.ready;
        st.count_pending = counts.pending;
        st.count_failed = counts.failed;
        st.count_pinned = counts.pinned;
        st.has_schema_version = true;
        st.schema_version = (uint32_t)MAX(catalog_schema_version(m->catalog), 0);
        st.has_durable = true;
        st.durable = m->config->durable;
        st.has_started_ns = true;
        st.started_ns = m->started_ns;
        st.runc_path = m->config->runc;
        st.criu_path = m->config->criu ? m->config->criu : (char *)"criu";
        st.has_running_operations = st.has_connections = true;
        st.running_operations = m->n_jobs;
        st.connections = m->n_connections;

        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        resp.result_case = KYBERNATE__V1__RESPONSE__RESULT_STATUS;
        resp.status = &st;
        (void)connection_send(c, &resp, true);
}

/* Sends a response carrying one CheckpointInfo in the result `kind`. */
static void reply_info(Connection *c, int kind, const CatalogEntry *e) {
        Manager *m = c->manager;
        _cleanup_free_ char *path = NULL;
        if (manager_checkpoint_dir(m, e->id, &path) < 0) {
                connection_send_error(c, ENOMEM, "out of memory");
                return;
        }
        Kybernate__V1__CheckpointInfo info;
        Kybernate__V1__CheckpointOptions opts;
        entry_to_info(e, path, &info, &opts);

        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        Kybernate__V1__DeleteResponse del = KYBERNATE__V1__DELETE_RESPONSE__INIT;
        Kybernate__V1__PinResponse pin = KYBERNATE__V1__PIN_RESPONSE__INIT;
        Kybernate__V1__CheckpointResponse ck = KYBERNATE__V1__CHECKPOINT_RESPONSE__INIT;
        Kybernate__V1__ImportResponse imp = KYBERNATE__V1__IMPORT_RESPONSE__INIT;
        resp.result_case = (Kybernate__V1__Response__ResultCase)kind;
        switch (kind) {
        case KYBERNATE__V1__RESPONSE__RESULT_DELETE:
                del.info = &info;
                resp.delete_ = &del;
                break;
        case KYBERNATE__V1__RESPONSE__RESULT_PIN:
                pin.info = &info;
                resp.pin = &pin;
                break;
        case KYBERNATE__V1__RESPONSE__RESULT_CHECKPOINT:
                ck.info = &info;
                resp.checkpoint = &ck;
                break;
        case KYBERNATE__V1__RESPONSE__RESULT_IMPORT:
                imp.info = &info;
                resp.import = &imp;
                break;
        default:
                connection_send_error(c, EINVAL, "internal error: bad reply kind");
                return;
        }
        (void)connection_send(c, &resp, true);
}

void op_delete(Connection *c, const Kybernate__V1__DeleteRequest *req) {
        Manager *m = c->manager;
        CatalogEntry e = {};
        int r = lookup_or_reply(c, req->reference, &e);
        if (r < 0)
                return;
        if (e.state == CHECKPOINT_PENDING)
                connection_send_error(c, EBUSY, "checkpoint %s is still being written", e.id);
        else if (e.pinned && !(req->has_force && req->force))
                connection_send_error(c, EPERM, "checkpoint %s is pinned: unpin it or delete with force",
                                      e.id);
        else if ((r = manager_remove_checkpoint(m, e.id)) < 0)
                connection_send_error(c, r, "deleting checkpoint %s failed: %s", e.id, strerror(-r));
        else {
                log_info("Deleted checkpoint %s (uid %u)", e.id, (unsigned)c->cred.uid);
                reply_info(c, KYBERNATE__V1__RESPONSE__RESULT_DELETE, &e);
        }
        catalog_entry_done(&e);
}

void op_pin(Connection *c, const Kybernate__V1__PinRequest *req) {
        Manager *m = c->manager;
        CatalogEntry e = {};
        int r = lookup_or_reply(c, req->reference, &e);
        if (r < 0)
                return;
        bool pinned = !req->has_pinned || req->pinned;
        r = catalog_set_pinned(m->catalog, e.id, pinned);
        if (r < 0)
                connection_send_error(c, r, "updating checkpoint %s failed: %s", e.id, strerror(-r));
        else {
                e.pinned = pinned;
                reply_info(c, KYBERNATE__V1__RESPONSE__RESULT_PIN, &e);
        }
        catalog_entry_done(&e);
}

/* ---- prune ---- */

typedef struct PruneRows {
        CatalogEntry *e;
        size_t n, alloc;
} PruneRows;

static int prune_row(const CatalogEntry *e, void *userdata) {
        PruneRows *rows = userdata;
        if (rows->n == rows->alloc) {
                size_t na = rows->alloc ? rows->alloc * 2 : 256;
                CatalogEntry *ne = realloc(rows->e, na * sizeof(*ne));
                if (!ne)
                        return -ENOMEM;
                rows->e = ne;
                rows->alloc = na;
        }
        int r = catalog_entry_copy(e, &rows->e[rows->n]);
        if (r < 0)
                return r;
        rows->n++;
        return 0;
}

/* Logs of failed checkpoints age out with the same maximum age. */
static void prune_logs(Manager *m, int64_t max_age_ns) {
        DIR *d = opendir(m->logs_dir);
        if (!d)
                return;
        int64_t now = now_realtime_ns();
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat st;
                if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                int64_t mtime = (int64_t)st.st_mtim.tv_sec * (int64_t)NSEC_PER_SEC + st.st_mtim.tv_nsec;
                if (now - mtime > max_age_ns && unlinkat(dirfd(d), de->d_name, 0) >= 0)
                        log_info("Pruned log %s/%s", m->logs_dir, de->d_name);
        }
        closedir(d);
}

void op_prune(Connection *c, const Kybernate__V1__PruneRequest *req) {
        Manager *m = c->manager;
        uint32_t keep =
                req->has_keep_per_container ? req->keep_per_container : m->config->keep_per_container;
        int64_t max_age = m->config->max_age_ns;
        if (req->has_max_age_sec) {
                if (req->max_age_sec > (uint64_t)INT64_MAX / NSEC_PER_SEC) {
                        connection_send_error(c, EINVAL, "max_age_sec too large");
                        return;
                }
                max_age = (int64_t)(req->max_age_sec * NSEC_PER_SEC);
        }
        bool dry_run = req->has_dry_run && req->dry_run;

        PruneRows rows = {};
        RetentionItem *items = NULL;
        Pager p = {.conn = c, .kind = KYBERNATE__V1__RESPONSE__RESULT_PRUNE};
        CatalogFilter f = {.state = CHECKPOINT_READY};
        int r = catalog_list(m->catalog, &f, prune_row, &rows);
        if (r < 0) {
                connection_send_error(c, r, "listing the catalog failed: %s", strerror(-r));
                goto finish;
        }
        items = calloc(rows.n + 1, sizeof(*items));
        if (!items) {
                connection_send_error(c, ENOMEM, "out of memory");
                goto finish;
        }
        for (size_t i = 0; i < rows.n; i++) {
                items[i].group = retention_group(&rows.e[i]);
                if (!items[i].group) {
                        connection_send_error(c, ENOMEM, "out of memory");
                        goto finish;
                }
                items[i].created_ns = rows.e[i].created_ns;
                items[i].pinned = rows.e[i].pinned;
        }
        r = retention_select(items, rows.n, keep, max_age, now_realtime_ns());
        if (r == -EINVAL) {
                connection_send_error(
                        c, EINVAL,
                        "refusing to prune with keep_per_container = 0 and no maximum age: that "
                        "would delete every checkpoint");
                goto finish;
        }
        if (r < 0) {
                connection_send_error(c, r, "retention failed: %s", strerror(-r));
                goto finish;
        }
        for (size_t i = 0; i < rows.n; i++) {
                if (!items[i].prune)
                        continue;
                if (!dry_run) {
                        r = manager_remove_checkpoint(m, rows.e[i].id);
                        if (r < 0) {
                                log_warning_errno(r, "Prune: failed to delete %s: %m", rows.e[i].id);
                                continue;
                        }
                        log_info("Pruned checkpoint %s", rows.e[i].id);
                }
                p.freed += rows.e[i].size_bytes;
                r = pager_add(&p, &rows.e[i]);
                if (r < 0) {
                        connection_send_error(c, r, "pruning failed: %s", strerror(-r));
                        goto finish;
                }
        }
        if (!dry_run && max_age > 0)
                prune_logs(m, max_age);
        (void)pager_flush(&p, true);
finish:
        pager_done(&p);
        if (items)
                for (size_t i = 0; i < rows.n; i++)
                        free((char *)items[i].group);
        free(items);
        for (size_t i = 0; i < rows.n; i++)
                catalog_entry_done(&rows.e[i]);
        free(rows.e);
}

/* ---- operations that verify the checksum first (resolve, inspect, export) ---- */

typedef struct VerifyOp {
        Manager *manager;
        Connection *conn; /* NULL once the client went away */
        uint64_t request_id;
        int kind; /* the Response result case */
        CatalogEntry entry;
        bool count_restore; /* resolve, not dry run */
} VerifyOp;

static void verify_op_free(VerifyOp *op) {
        if (!op)
                return;
        op->manager->n_jobs--;
        catalog_entry_done(&op->entry);
        free(op);
}

static void verify_op_detach(void *userdata) {
        VerifyOp *op = userdata;
        op->conn = NULL;
}

static void verify_done(int r, uint64_t size, const char *checksum, void *userdata) {
        VerifyOp *op = userdata;
        Connection *c = op->conn;
        Manager *m = op->manager;
        const CatalogEntry *e = &op->entry;
        bool ok = r >= 0 && streq_ptr(checksum, e->checksum) && size == e->size_bytes;

        if (!c) {
                verify_op_free(op);
                return;
        }
        c->op = NULL;
        c->op_detach = NULL;
        _cleanup_free_ char *path = NULL;
        if (manager_checkpoint_dir(m, e->id, &path) < 0) {
                connection_send_error(c, ENOMEM, "out of memory");
                verify_op_free(op);
                return;
        }
        if (!ok && op->kind != KYBERNATE__V1__RESPONSE__RESULT_INSPECT) {
                log_warning("Checkpoint %s failed verification: %s", e->id,
                            r < 0 ? strerror(-r) : "checksum mismatch");
                connection_send_error(
                        c, EUCLEAN,
                        "checkpoint %s failed verification (%s): its files under %s changed or "
                        "are missing; refusing to use it",
                        e->id, r < 0 ? strerror(-r) : "checksum mismatch", path);
                verify_op_free(op);
                return;
        }

        Kybernate__V1__CheckpointInfo info;
        Kybernate__V1__CheckpointOptions opts;
        CatalogEntry copy = *e;
        if (op->count_restore) {
                int64_t now = now_realtime_ns();
                r = catalog_record_restore(m->catalog, e->id, now);
                if (r < 0) {
                        connection_send_error(c, r, "recording the restore failed: %s", strerror(-r));
                        verify_op_free(op);
                        return;
                }
                copy.restore_count++;
                copy.last_restored_ns = now;
                log_info("Resolved checkpoint %s for a restore", e->id);
        }
        entry_to_info(&copy, path, &info, &opts);
        _cleanup_free_ char *image_path = NULL;
        if (asprintf(&image_path, "%s/checkpoint", path) < 0)
                image_path = NULL;

        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        Kybernate__V1__ResolveResponse res = KYBERNATE__V1__RESOLVE_RESPONSE__INIT;
        Kybernate__V1__InspectResponse ins = KYBERNATE__V1__INSPECT_RESPONSE__INIT;
        Kybernate__V1__ExportResponse exp = KYBERNATE__V1__EXPORT_RESPONSE__INIT;
        resp.result_case = (Kybernate__V1__Response__ResultCase)op->kind;
        if (op->kind == KYBERNATE__V1__RESPONSE__RESULT_RESOLVE) {
                res.image_path = image_path;
                res.checkpoint_dir = path;
                res.info = &info;
                resp.resolve = &res;
        } else if (op->kind == KYBERNATE__V1__RESPONSE__RESULT_INSPECT) {
                ins.info = &info;
                ins.has_checksum_ok = true;
                ins.checksum_ok = ok;
                resp.inspect = &ins;
        } else {
                exp.info = &info;
                resp.export = &exp;
        }
        (void)connection_send(c, &resp, true);
        verify_op_free(op);
}

static void start_verify(Connection *c, CatalogEntry *e, int kind, bool count_restore) {
        Manager *m = c->manager;
        _cleanup_free_ char *path = NULL;
        int r;

        if (m->no_spawn) {
                connection_send_error(c, EOPNOTSUPP, "verification disabled in this instance");
                catalog_entry_done(e);
                return;
        }
        VerifyOp *op = calloc(1, sizeof(*op));
        if (!op || manager_checkpoint_dir(m, e->id, &path) < 0) {
                free(op);
                catalog_entry_done(e);
                connection_send_error(c, ENOMEM, "out of memory");
                return;
        }
        op->manager = m;
        op->conn = c;
        op->request_id = c->request_id;
        op->kind = kind;
        op->entry = *e;
        *e = (CatalogEntry){};
        op->count_restore = count_restore;
        m->n_jobs++;
        r = checksum_task_start(m->event, path, op->entry.checksum, false, verify_done, op, NULL);
        if (r < 0) {
                connection_send_error(c, r, "starting verification failed: %s", strerror(-r));
                verify_op_free(op);
                return;
        }
        c->op = op;
        c->op_detach = verify_op_detach;
}

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
        /* Only checkpoints the target may restore (the tenant rule) are found. */
        CatalogEntry e = {};
        r = resolve_lookup(m->catalog, req->reference, &t, &e, msg, sizeof(msg));
        if (r < 0) {
                connection_send_error(c, r, "%s", msg);
                return;
        }
        if (e.state != CHECKPOINT_READY) {
                connection_send_error(c, EBUSY, "checkpoint %s is not ready", e.id);
                catalog_entry_done(&e);
                return;
        }
        if (!(req->has_ignore_image && req->ignore_image)) {
                char why[1024];
                r = image_check(&e, &t, why, sizeof(why));
                if (r < 0) {
                        connection_send_error(c, -r, "restore of checkpoint %s refused: %s", e.id, why);
                        catalog_entry_done(&e);
                        return;
                }
        }
        start_verify(c, &e, KYBERNATE__V1__RESPONSE__RESULT_RESOLVE, !(req->has_dry_run && req->dry_run));
}

void op_inspect(Connection *c, const Kybernate__V1__InspectRequest *req) {
        Manager *m = c->manager;
        CatalogEntry e = {};
        int r = lookup_or_reply(c, req->reference, &e);
        if (r < 0)
                return;
        if (req->has_verify && req->verify && e.state == CHECKPOINT_READY) {
                start_verify(c, &e, KYBERNATE__V1__RESPONSE__RESULT_INSPECT, false);
                return;
        }
        _cleanup_free_ char *path = NULL;
        if (manager_checkpoint_dir(m, e.id, &path) < 0) {
                connection_send_error(c, ENOMEM, "out of memory");
                catalog_entry_done(&e);
                return;
        }
        Kybernate__V1__CheckpointInfo info;
        Kybernate__V1__CheckpointOptions opts;
        entry_to_info(&e, path, &info, &opts);
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        Kybernate__V1__InspectResponse ins = KYBERNATE__V1__INSPECT_RESPONSE__INIT;
        ins.info = &info;
        resp.result_case = KYBERNATE__V1__RESPONSE__RESULT_INSPECT;
        resp.inspect = &ins;
        (void)connection_send(c, &resp, true);
        catalog_entry_done(&e);
}

void op_export(Connection *c, const Kybernate__V1__ExportRequest *req) {
        CatalogEntry e = {};
        if (lookup_or_reply(c, req->reference, &e) < 0)
                return;
        if (e.state != CHECKPOINT_READY) {
                connection_send_error(c, EBUSY, "checkpoint %s is not ready", e.id);
                catalog_entry_done(&e);
                return;
        }
        start_verify(c, &e, KYBERNATE__V1__RESPONSE__RESULT_EXPORT, false);
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
        _cleanup_(store_remove_treep) const char *staging = sd;
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
        r = metadata_read_kybernate_json(sd, &e);
        if (r < 0 && r != -ENOENT) {
                catalog_entry_done(&e);
                connection_send_error(c, r, "kybernate.json in the archive is invalid: %s", strerror(-r));
                return;
        }
        _cleanup_free_ char *spec_path = NULL, *spec = NULL;
        if (asprintf(&spec_path, "%s/spec.dump", sd) >= 0 &&
            read_full_file(spec_path, SPEC_MAX_BYTES, &spec, NULL) >= 0)
                (void)metadata_from_spec(spec, &e);

        ImportOp *op = calloc(1, sizeof(*op));
        r = op ? store_new_id(id) : -ENOMEM;
        if (r >= 0) {
                e.id = strdup(id);
                if (!isempty(req->name))
                        e.name = strdup(req->name);
                e.pinned = req->has_pin && req->pin;
                r = e.id && (isempty(req->name) || e.name) ? 0 : -ENOMEM;
        }
        if (r >= 0)
                r = manager_checkpoint_dir(m, id, &op->dir);
        if (r >= 0) {
                r = catalog_insert(m->catalog, &e);
                if (r == -EEXIST) {
                        connection_send_error(c, EEXIST, "a checkpoint named '%s' exists already",
                                              req->name);
                        free(op->dir);
                        free(op);
                        catalog_entry_done(&e);
                        return;
                }
        }
        if (r >= 0 && rename(sd, op->dir) < 0) {
                r = negative_errno();
                (void)catalog_delete(m->catalog, id);
        }
        if (r >= 0)
                staging = NULL;
        if (r < 0) {
                connection_send_error(c, r, "import failed: %s", strerror(-r));
                if (op)
                        free(op->dir);
                free(op);
                catalog_entry_done(&e);
                return;
        }
        /* kybernate.json from elsewhere describes another store's row. */
        _cleanup_free_ char *kj = NULL;
        if (asprintf(&kj, "%s/%s", op->dir, STORE_METADATA_FILE) >= 0)
                (void)unlink(kj);
        op->manager = m;
        op->conn = c;
        op->entry = e;
        m->n_jobs++;
        r = checksum_task_start(m->event, op->dir, NULL, m->config->durable, import_done, op, NULL);
        if (r < 0) {
                (void)manager_remove_checkpoint(m, id);
                connection_send_error(c, r, "import failed: %s", strerror(-r));
                import_op_free(op);
                return;
        }
        c->op = op;
        c->op_detach = import_op_detach;
}
