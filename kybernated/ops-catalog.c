/* SPDX-License-Identifier: Apache-2.0 */
/* Operations on the catalog: list, status, inspect, delete, pin, prune. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "log.h"
#include "ops.h"
#include "resolve.h"

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
        if (!extra) {
                if (final) /* the client waits for a final answer: an error, not silence */
                        (void)connection_send_error(p->conn, ENOMEM, "out of memory");
                return -ENOMEM;
        }
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
                (void)pager_flush(&p, true); /* a failure has answered or hung up */
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

/* ---- pod checkpoints: their members go with them ---- */

bool member_of_pod(Manager *m, const CatalogEntry *e) {
        if (isempty(e->pod_id))
                return false;
        CatalogEntry pod = {};
        int r = catalog_get(m->catalog, e->pod_id, &pod);
        catalog_entry_done(&pod);
        return r != -ENOENT;
}

static int collect_id(const CatalogEntry *e, void *userdata) {
        char ***l = userdata;
        size_t n = 0;
        while (*l && (*l)[n])
                n++;
        char **nl = realloc(*l, (n + 2) * sizeof(char *));
        if (!nl)
                return -ENOMEM;
        *l = nl;
        nl[n] = strdup(e->id);
        nl[n + 1] = NULL;
        return nl[n] ? 0 : -ENOMEM;
}

/* Removes pod checkpoint id: its members' rows and its own in one
 * transaction, then their directories (a crash between the two leaves
 * directories without rows, which the next start removes). */
static int remove_pod(Manager *m, const char *id) {
        _cleanup_strv_free_ char **members = NULL;
        CatalogFilter f = {.pod_id = id};
        int r = catalog_list(m->catalog, &f, collect_id, &members);
        if (r < 0)
                return r;
        r = catalog_begin(m->catalog);
        if (r < 0)
                return r;
        STRV_FOREACH (mid, members)
                if ((r = catalog_delete(m->catalog, *mid)) < 0 && r != -ENOENT)
                        break;
        if (r >= 0 || r == -ENOENT)
                r = catalog_delete(m->catalog, id);
        if (r < 0 && r != -ENOENT) {
                (void)catalog_rollback(m->catalog);
                return r;
        }
        r = catalog_commit(m->catalog);
        if (r < 0) {
                (void)catalog_rollback(m->catalog);
                return r;
        }
        STRV_FOREACH (mid, members)
                if ((r = manager_remove_checkpoint(m, *mid)) < 0)
                        return r;
        return manager_remove_checkpoint(m, id);
}

static int remove_any(Manager *m, const CatalogEntry *e) {
        return e->is_pod ? remove_pod(m, e->id) : manager_remove_checkpoint(m, e->id);
}

void op_delete(Connection *c, const Kybernate__V1__DeleteRequest *req) {
        Manager *m = c->manager;
        CatalogEntry e = {};
        int r = lookup_or_reply(c, req->reference, &e);
        if (r < 0)
                return;
        if (e.state == CHECKPOINT_PENDING)
                connection_send_error(c, EBUSY, "checkpoint %s is still being written", e.id);
        else if (member_of_pod(m, &e))
                connection_send_error(c, EPERM,
                                      "checkpoint %s is a member of pod checkpoint %s: delete the pod "
                                      "checkpoint",
                                      e.id, e.pod_id);
        else if (e.pinned && !(req->has_force && req->force))
                connection_send_error(c, EPERM, "checkpoint %s is pinned: unpin it or delete with force",
                                      e.id);
        else if ((r = remove_any(m, &e)) < 0)
                connection_send_error(c, r, "deleting checkpoint %s failed: %s", e.id, strerror(-r));
        else {
                log_info("Deleted %scheckpoint %s (uid %u)", e.is_pod ? "pod " : "", e.id,
                         (unsigned)c->cred.uid);
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
        if (member_of_pod(m, &e))
                connection_send_error(c, EPERM,
                                      "checkpoint %s is a member of pod checkpoint %s: pin the pod "
                                      "checkpoint",
                                      e.id, e.pod_id);
        else if ((r = catalog_set_pinned(m->catalog, e.id, pinned)) < 0)
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
        /* Retention decides on pod checkpoints, whose members go with them;
         * a member never counts nor goes on its own. */
        if (!isempty(e->pod_id))
                return 0;
        int r = GREEDY_REALLOC(rows->e, rows->alloc, rows->n + 1, 256);
        if (r < 0)
                return r;
        r = catalog_entry_copy(e, &rows->e[rows->n]);
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
                        r = remove_any(m, &rows.e[i]);
                        if (r < 0) {
                                log_warning_errno(r, "Prune: failed to delete %s: %m", rows.e[i].id);
                                continue;
                        }
                        log_info("Pruned %scheckpoint %s", rows.e[i].is_pod ? "pod " : "", rows.e[i].id);
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

void op_inspect(Connection *c, const Kybernate__V1__InspectRequest *req) {
        Manager *m = c->manager;
        CatalogEntry e = {};
        int r = lookup_or_reply(c, req->reference, &e);
        if (r < 0)
                return;
        /* A pod checkpoint holds no images of its own: nothing to verify
         * but its members, each by its own id. */
        if (req->has_verify && req->verify && e.state == CHECKPOINT_READY && !e.is_pod) {
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
        _cleanup_(pod_members_done) PodMembers members = {};
        if (e.is_pod) {
                r = pod_members_load(m->catalog, e.id, &members);
                if (r < 0) {
                        connection_send_error(c, r, "listing the members of pod checkpoint %s failed: %s",
                                              e.id, strerror(-r));
                        catalog_entry_done(&e);
                        return;
                }
                pod_members_attach(&members, &info);
        }
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        Kybernate__V1__InspectResponse ins = KYBERNATE__V1__INSPECT_RESPONSE__INIT;
        ins.info = &info;
        resp.result_case = KYBERNATE__V1__RESPONSE__RESULT_INSPECT;
        resp.inspect = &ins;
        (void)connection_send(c, &resp, true);
        catalog_entry_done(&e);
}
