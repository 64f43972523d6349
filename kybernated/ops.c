/* SPDX-License-Identifier: Apache-2.0 */
/* What the operations share: a row as a CheckpointInfo, lookups and replies,
 * and the checksum verification that resolve, inspect and export run first. */
#include "ops.h"
#include "log.h"
#include "metadata.h"
#include "spawn.h"

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
        if (!isempty(e->source_image))
                info->source_image = e->source_image;
        if (!isempty(e->pushed_image))
                info->pushed_image = e->pushed_image;
        if (e->push_pending) {
                info->has_push_pending = true;
                info->push_pending = true;
        }
        if (e->is_pod) {
                info->has_is_pod = info->is_pod = true;
                info->has_frozen_usec = true;
                info->frozen_usec = e->frozen_usec;
        }
        if (!isempty(e->pod_id))
                info->pod_checkpoint_id = e->pod_id;
}

static int member_add(const CatalogEntry *e, void *userdata) {
        PodMembers *pm = userdata;
        if (GREEDY_REALLOC(pm->items, pm->alloc, pm->n + 1, 8) < 0)
                return -ENOMEM;
        Kybernate__V1__PodMember *x = &pm->items[pm->n];
        kybernate__v1__pod_member__init(x);
        x->k8s_container = strdup(nn(e->k8s_container));
        x->id = strdup(nn(e->id));
        pm->n++; /* freed by pod_members_done() either way */
        return x->k8s_container && x->id ? 0 : -ENOMEM;
}

int pod_members_load(Catalog *cat, const char *pod_id, PodMembers *ret) {
        *ret = (PodMembers){};
        if (isempty(pod_id))
                return -EINVAL;
        CatalogFilter f = {.pod_id = pod_id};
        int r = catalog_list(cat, &f, member_add, ret);
        if (r < 0) {
                pod_members_done(ret);
                return r;
        }
        return 0;
}

void pod_members_attach(PodMembers *pm, Kybernate__V1__CheckpointInfo *info) {
        if (pm->n == 0)
                return;
        free(pm->ptrs);
        pm->ptrs = calloc(pm->n, sizeof(*pm->ptrs));
        if (!pm->ptrs)
                return;
        for (size_t i = 0; i < pm->n; i++)
                pm->ptrs[i] = &pm->items[i];
        info->n_members = pm->n;
        info->members = pm->ptrs;
}

void pod_members_done(PodMembers *pm) {
        for (size_t i = 0; i < pm->n; i++) {
                free(pm->items[i].k8s_container);
                free(pm->items[i].id);
        }
        free(pm->items);
        free(pm->ptrs);
        *pm = (PodMembers){};
}

int lookup_or_reply(Connection *c, const char *reference, CatalogEntry *ret) {
        char msg[512];
        int r = manager_lookup(c->manager, reference, ret, msg, sizeof(msg));
        if (r < 0)
                connection_send_error(c, r, "%s", msg);
        return r;
}

void reply_info(Connection *c, int kind, const CatalogEntry *e) {
        Manager *m = c->manager;
        _cleanup_free_ char *path = NULL;
        if (manager_checkpoint_dir(m, e->id, &path) < 0) {
                connection_send_error(c, ENOMEM, "out of memory");
                return;
        }
        Kybernate__V1__CheckpointInfo info;
        Kybernate__V1__CheckpointOptions opts;
        entry_to_info(e, path, &info, &opts);
        _cleanup_(pod_members_done) PodMembers members = {};
        if (e->is_pod && kind != KYBERNATE__V1__RESPONSE__RESULT_DELETE) {
                int r = pod_members_load(m->catalog, e->id, &members);
                if (r < 0) {
                        connection_send_error(c, r, "listing the members of pod checkpoint %s failed: %s",
                                              e->id, strerror(-r));
                        return;
                }
                pod_members_attach(&members, &info);
        }

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

int adopt_ready(Manager *m, CatalogEntry *e, const char *dir, uint64_t size, const char *checksum) {
        int r = catalog_set_ready(m->catalog, e->id, size, checksum);
        if (r < 0)
                return r;
        e->state = CHECKPOINT_READY;
        e->size_bytes = size;
        free(e->checksum);
        e->checksum = strdup(checksum);
        (void)metadata_write_kybernate_json(dir, e, m->config->durable);
        return 0;
}

/* ---- operations that verify the checksum first (resolve, inspect, export) ----
 *
 * At most config->max_verify_jobs hashing children run at once; the other
 * verifications wait in m->verify_queue, root's ahead of everyone else's, and
 * a non-root one finds the queue full (VERIFY_QUEUE_MAX) with EBUSY. A
 * verification belongs to its connection: when the client goes, a queued one
 * is dropped and a running one's child killed and reaped (nothing shares a
 * child), and the next queued one starts. */

static void verify_op_free(VerifyOp *op) {
        if (!op)
                return;
        op->manager->n_jobs--;
        catalog_entry_done(&op->entry);
        free(op->pod_id);
        free(op->path);
        for (size_t i = 0; i < op->n_members; i++) {
                catalog_entry_done(&op->members[i]);
                free(op->member_paths[i]);
        }
        free(op->members);
        free(op->member_paths);
        free(op);
}

/* The directory and checksum the op's (next) hashing child checks. */
static const char *verify_target(const VerifyOp *op, const CatalogEntry **ret) {
        if (op->n_members == 0) {
                *ret = &op->entry;
                return op->path;
        }
        size_t i = MIN(op->checked, op->n_members - 1);
        *ret = &op->members[i];
        return op->member_paths[i];
}

static void verify_done(int r, uint64_t size, const char *checksum, void *userdata);

/* Starts queued verifications while there is room. */
static void verify_start_queued(Manager *m) {
        while (m->verify_queue && m->n_verify_running < m->config->max_verify_jobs) {
                VerifyOp *op = m->verify_queue;
                m->verify_queue = op->next;
                op->next = NULL;
                m->n_verify_queued--;
                const CatalogEntry *t;
                const char *path = verify_target(op, &t);
                int r = checksum_task_start(m->event, path, t->checksum, false, verify_done, op, &op->task);
                if (r < 0) {
                        Connection *c = op->conn;
                        c->op = NULL;
                        c->op_detach = NULL;
                        verify_op_free(op);
                        connection_send_error(c, r, "starting verification failed: %s", strerror(-r));
                        continue;
                }
                m->n_verify_running++;
        }
}

static void verify_op_detach(void *userdata) {
        VerifyOp *op = userdata;
        Manager *m = op->manager;
        if (op->task) {
                /* Kills the child and reaps it. */
                checksum_task_free(op->task);
                m->n_verify_running--;
        } else {
                for (VerifyOp **p = &m->verify_queue; *p; p = &(*p)->next)
                        if (*p == op) {
                                *p = op->next;
                                m->n_verify_queued--;
                                break;
                        }
        }
        verify_op_free(op);
        verify_start_queued(m);
}

static int collect_container_name(const CatalogEntry *e, void *userdata) {
        return isempty(e->k8s_container) ? 0 : strv_push_dup(userdata, e->k8s_container);
}

static void verify_reply(VerifyOp *op, int r, uint64_t size, const char *checksum) {
        Connection *c = op->conn;
        Manager *m = op->manager;
        const CatalogEntry *e = &op->entry, *t;
        const char *tpath = verify_target(op, &t);
        bool ok = r >= 0 && (op->n_members ? op->checked == op->n_members
                                           : streq_ptr(checksum, e->checksum) && size == e->size_bytes);
        const char *path = op->path;

        if (!ok && op->kind != KYBERNATE__V1__RESPONSE__RESULT_INSPECT) {
                log_warning("Checkpoint %s failed verification: %s", t->id,
                            r < 0 ? strerror(-r) : "checksum mismatch");
                connection_send_error(
                        c, EUCLEAN,
                        "checkpoint %s%s%s failed verification (%s): its files under %s changed or "
                        "are missing; refusing to use it",
                        t->id, t != e ? ", a member of pod checkpoint " : "", t != e ? e->id : "",
                        r < 0 ? strerror(-r) : "checksum mismatch", tpath);
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
                        return;
                }
                if (op->pod_id && (r = catalog_record_restore(m->catalog, op->pod_id, now)) < 0) {
                        connection_send_error(c, r, "recording the restore of pod checkpoint %s failed: %s",
                                              op->pod_id, strerror(-r));
                        return;
                }
                copy.restore_count++;
                copy.last_restored_ns = now;
                if (op->pod_id)
                        log_info("Resolved checkpoint %s of pod checkpoint %s for a restore", e->id,
                                 op->pod_id);
                else
                        log_info("Resolved checkpoint %s for a restore", e->id);
        }
        entry_to_info(&copy, path, &info, &opts);
        _cleanup_free_ char *image_path = NULL;
        if (asprintf(&image_path, "%s/checkpoint", path) < 0)
                image_path = NULL;

        _cleanup_strv_free_ char **pod_containers = NULL;
        if (op->kind == KYBERNATE__V1__RESPONSE__RESULT_RESOLVE && !isempty(e->pod_id)) {
                CatalogFilter f = {.pod_id = e->pod_id};
                (void)catalog_list(m->catalog, &f, collect_container_name, &pod_containers);
        }
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        Kybernate__V1__ResolveResponse res = KYBERNATE__V1__RESOLVE_RESPONSE__INIT;
        Kybernate__V1__InspectResponse ins = KYBERNATE__V1__INSPECT_RESPONSE__INIT;
        Kybernate__V1__ExportResponse exp = KYBERNATE__V1__EXPORT_RESPONSE__INIT;
        resp.result_case = (Kybernate__V1__Response__ResultCase)op->kind;
        if (op->kind == KYBERNATE__V1__RESPONSE__RESULT_RESOLVE) {
                res.image_path = image_path;
                res.checkpoint_dir = (char *)path;
                res.info = &info;
                res.n_pod_containers = strv_length(pod_containers);
                res.pod_containers = pod_containers;
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
        /* A pod's export: the pod with its members named, and each member. */
        _cleanup_(pod_members_done) PodMembers names = {};
        _cleanup_free_ Kybernate__V1__CheckpointInfo *minfo = NULL, **mptrs = NULL;
        _cleanup_free_ Kybernate__V1__CheckpointOptions *mopts = NULL;
        if (op->n_members) {
                minfo = calloc(op->n_members, sizeof(*minfo));
                mptrs = calloc(op->n_members, sizeof(*mptrs));
                mopts = calloc(op->n_members, sizeof(*mopts));
                if (!minfo || !mptrs || !mopts || pod_members_load(m->catalog, e->id, &names) < 0) {
                        connection_send_error(c, ENOMEM, "out of memory");
                        return;
                }
                pod_members_attach(&names, &info);
                for (size_t i = 0; i < op->n_members; i++) {
                        entry_to_info(&op->members[i], op->member_paths[i], &minfo[i], &mopts[i]);
                        mptrs[i] = &minfo[i];
                }
                exp.n_members = op->n_members;
                exp.members = mptrs;
        }
        (void)connection_send(c, &resp, true);
}

/* A pod's export: the member just hashed matched; starts the next one's
 * hashing. False when there is none (all checked) or it failed (*r). */
static bool verify_next_member(VerifyOp *op, int *r, uint64_t size, const char *checksum) {
        const CatalogEntry *t = &op->members[op->checked];
        if (*r < 0 || !streq_ptr(checksum, t->checksum) || size != t->size_bytes)
                return false;
        if (++op->checked == op->n_members)
                return false;
        *r = checksum_task_start(op->manager->event, op->member_paths[op->checked],
                                 op->members[op->checked].checksum, false, verify_done, op, &op->task);
        return *r >= 0;
}

static void verify_done(int r, uint64_t size, const char *checksum, void *userdata) {
        VerifyOp *op = userdata;
        Manager *m = op->manager;
        Connection *c = op->conn;

        /* The task freed itself; the op leaves its connection before the
         * reply (which marks the request done). */
        op->task = NULL;
        if (op->n_members && verify_next_member(op, &r, size, checksum))
                return;
        m->n_verify_running--;
        c->op = NULL;
        c->op_detach = NULL;
        verify_reply(op, r, size, checksum);
        verify_op_free(op);
        verify_start_queued(m);
}

void start_verify(Connection *c, CatalogEntry *e, int kind, bool count_restore) {
        start_verify_member(c, e, NULL, kind, count_restore);
}

static void verify_enqueue(Connection *c, VerifyOp *op);

/* A new op for e (taking it), or NULL after answering the client. */
static VerifyOp *verify_op_new(Connection *c, CatalogEntry *e, const char *pod_id, int kind) {
        Manager *m = c->manager;

        if (m->no_spawn) {
                connection_send_error(c, EOPNOTSUPP, "verification disabled in this instance");
                catalog_entry_done(e);
                return NULL;
        }
        if (!c->privileged && m->n_verify_running >= m->config->max_verify_jobs &&
            m->n_verify_queued >= VERIFY_QUEUE_MAX) {
                connection_send_error(c, EBUSY,
                                      "too many checksum verifications running (%u) and waiting (%u); "
                                      "try again later",
                                      m->n_verify_running, m->n_verify_queued);
                catalog_entry_done(e);
                return NULL;
        }
        VerifyOp *op = calloc(1, sizeof(*op));
        if (!op || manager_checkpoint_dir(m, e->id, &op->path) < 0 ||
            (pod_id && !(op->pod_id = strdup(pod_id)))) {
                if (op)
                        free(op->path);
                free(op);
                catalog_entry_done(e);
                connection_send_error(c, ENOMEM, "out of memory");
                return NULL;
        }
        op->manager = m;
        op->conn = c;
        op->kind = kind;
        op->entry = *e;
        *e = (CatalogEntry){};
        op->privileged = c->privileged;
        m->n_jobs++;
        return op;
}

void start_verify_member(Connection *c, CatalogEntry *e, const char *pod_id, int kind, bool count_restore) {
        VerifyOp *op = verify_op_new(c, e, pod_id, kind);
        if (!op)
                return;
        op->count_restore = count_restore;
        verify_enqueue(c, op);
}

void start_verify_pod_export(Connection *c, CatalogEntry *e, CatalogEntry *members, size_t n) {
        char **paths = calloc(n, sizeof(*paths));
        bool oom = !paths;
        for (size_t i = 0; !oom && i < n; i++)
                oom = manager_checkpoint_dir(c->manager, members[i].id, &paths[i]) < 0;
        VerifyOp *op = NULL;
        if (oom || n == 0) {
                connection_send_error(c, oom ? ENOMEM : EINVAL,
                                      oom ? "out of memory" : "pod checkpoint %s has no members", e->id);
                catalog_entry_done(e);
        } else
                op = verify_op_new(c, e, NULL, KYBERNATE__V1__RESPONSE__RESULT_EXPORT);
        if (!op) {
                for (size_t i = 0; i < n; i++) {
                        catalog_entry_done(&members[i]);
                        if (paths)
                                free(paths[i]);
                }
                free(members);
                free(paths);
                return;
        }
        op->members = members;
        op->member_paths = paths;
        op->n_members = n;
        verify_enqueue(c, op);
}

static void verify_enqueue(Connection *c, VerifyOp *op) {
        Manager *m = c->manager;
        /* Queue it (root's after the other root ones, ahead of the rest),
         * then start what fits. */
        VerifyOp **p = &m->verify_queue;
        if (op->privileged)
                while (*p && (*p)->privileged)
                        p = &(*p)->next;
        else
                while (*p)
                        p = &(*p)->next;
        op->next = *p;
        *p = op;
        m->n_verify_queued++;
        c->op = op;
        c->op_detach = verify_op_detach;
        verify_start_queued(m);
}
