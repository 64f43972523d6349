/* SPDX-License-Identifier: Apache-2.0 */
/* A whole pod checkpointed at one instant (CheckpointRequest.pod):
 *
 *   find the pod's sandbox and running containers under the runc root (CRI
 *   annotations of their specs)  ->  pending pod row  ->  one pending member
 *   row per container (checkpoint.c, thaw mark set)  ->  freeze: the pod's
 *   cgroup when it has one of its own (every container at the same instant;
 *   the row's thaw_cgroup mark written first), then each container's own,
 *   then the pod's thawed again (each container stays frozen on its own, as
 *   `runc pause` leaves it); without one, each container's in turn, all
 *   before any dump  ->  each member's writable layer and dump, one after
 *   the other, with established TCP connections, all frozen  ->  all thawed
 *   (or, without leave_running, all killed while still frozen, so none runs
 *   again after its dump)  ->  each member's metadata, checksum, sync  ->
 *   pod and members ready in one transaction  ->  reply.
 *
 * Members are always dumped with --leave-running: were one dumped with
 * --exit and a later one failed, the first would be lost. Any failure thaws
 * every container, removes every member and the pod row: nothing ready.
 *
 * kill -9 of the daemon: the pending rows go at the next start; before
 * that, recovery thaws the pod's cgroup (thaw_cgroup) and then resumes each
 * member whose thaw mark is set, which stays set until the pod has thawed
 * its containers. A kill after the kill of the containers (no
 * leave_running) and before the rows are ready loses that checkpoint, as
 * for one container dumped with --exit; the containers are gone either
 * way. */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "checkpoint.h"
#include "cri-scan.h"
#include "freezer.h"
#include "log.h"
#include "metadata.h"
#include "mount-util.h"
#include "ops.h"
#include "push.h"
#include "resolve.h"
#include "spawn.h"
#include "store.h"

#define POD_MAX_CONTAINERS POD_MAX_MEMBERS
#define FREEZE_TIMEOUT_USEC (10 * USEC_PER_SEC)

typedef struct PodMemberState {
        CriContainer *c;
        CheckpointJob *job; /* until done */
        char *id;           /* member checkpoint id */
        struct PodJob *pod;
        bool dumped, done, ok;
        uint64_t size;
        char *checksum;
} PodMemberState;

typedef struct PodJob {
        Manager *manager;
        Connection *conn; /* NULL once the client went away */
        CatalogEntry entry;
        char *dir;
        char *runc_root;
        CriContainer *all; /* every container under the runc root */
        size_t n_all;
        CriContainer *sandbox;
        char *pod_cgroup; /* NULL: none of its own, each container frozen in turn */
        PodMemberState *members;
        size_t n, next_dump, n_done;
        bool stop;    /* no leave_running: kill the containers after the dumps */
        bool failing; /* a member failed: the rest are cancelled, nothing becomes ready */
        bool frozen;
        uint64_t frozen_at, frozen_usec, started;
        int error;
        char *error_msg;
} PodJob;

static void pod_free(PodJob *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n; i++) {
                free(p->members[i].id);
                free(p->members[i].checksum);
        }
        free(p->members);
        cri_containers_free(p->all, p->n_all);
        catalog_entry_done(&p->entry);
        free(p->dir);
        free(p->runc_root);
        free(p->pod_cgroup);
        free(p->error_msg);
        free(p);
}

static void pod_detach(void *userdata) {
        ((PodJob *)userdata)->conn = NULL;
}

/* The running sandbox that ref names: "K8S-NAMESPACE/POD", or its id or a
 * unique prefix of it (at least 12 characters). */
static int pod_find_sandbox(PodJob *p, const char *ref, char *msg, size_t size) {
        const char *slash = strchr(ref, '/');
        _cleanup_free_ char *ns = slash ? strndup(ref, (size_t)(slash - ref)) : NULL;
        CriContainer *found = NULL;
        size_t n_found = 0;

        if (slash && !ns)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_all; i++) {
                CriContainer *c = &p->all[i];
                if (!streq(c->type, "sandbox") || !c->alive)
                        continue;
                bool match =
                        slash ? streq_ptr(c->sandbox_namespace, ns) && streq_ptr(c->sandbox_name, slash + 1)
                              : strlen(ref) >= 12 && startswith(c->id, ref);
                if (match) {
                        found = c;
                        n_found++;
                }
        }
        if (n_found == 1) {
                p->sandbox = found;
                return 0;
        }
        if (n_found)
                snprintf(msg, size, "%s names %zu running pod sandboxes under %s", ref, n_found,
                         p->runc_root);
        else
                snprintf(msg, size, "no running pod sandbox %s under %s", ref, p->runc_root);
        return n_found ? -ENOTUNIQ : -ENOENT;
}

/* The directory holding path's last component. */
static char *parent_dir(const char *path) {
        const char *s = strrchr(path, '/');
        return s && s != path ? strndup(path, (size_t)(s - path)) : NULL;
}

/* Whether name is the sandbox or one of its containers. */
static bool pod_owns(const PodJob *p, const char *name) {
        for (size_t i = 0; i < p->n_all; i++)
                if (streq(p->all[i].id, name) && streq(p->all[i].sandbox_id, p->sandbox->id))
                        return true;
        return streq(name, p->sandbox->id);
}

/* The pod's own cgroup: the one directory that holds the sandbox's and
 * every member's cgroups and nothing else (no other container's, no process
 * of its own), as kubelet's cgroup_parent gives each pod. NULL otherwise
 * (containers of several pods side by side): each is frozen in turn. */
static char *pod_cgroup(const PodJob *p) {
        if (!p->sandbox->cgroup)
                return NULL;
        _cleanup_free_ char *parent = parent_dir(p->sandbox->cgroup);
        _cleanup_free_ char *top = NULL;
        if (!parent || !freezer_path_valid(parent))
                return NULL;
        /* Not a controller's root (/sys/fs/cgroup/freezer); the v2 root
         * itself freezer_path_valid() refuses. */
        top = parent_dir(parent);
        if (!top || streq(top, "/sys/fs/cgroup"))
                return NULL;
        for (size_t i = 0; i < p->n; i++) {
                _cleanup_free_ char *mine =
                        p->members[i].c->cgroup ? parent_dir(p->members[i].c->cgroup) : NULL;
                if (!streq_ptr(mine, parent))
                        return NULL;
        }
        DIR *d = opendir(parent);
        if (!d)
                return NULL;
        struct dirent *de;
        bool own = true;
        while (own && (de = readdir_no_dot(d)))
                own = de->d_type != DT_DIR || pod_owns(p, de->d_name);
        closedir(d);
        if (!own)
                return NULL;
        _cleanup_free_ char *procs_path = NULL, *procs = NULL;
        if (asprintf(&procs_path, "%s/cgroup.procs", parent) < 0 ||
            read_full_file(procs_path, 4096, &procs, NULL) < 0 || !isempty(procs))
                return NULL;
        return TAKE_PTR(parent);
}

static void pod_reply_error(PodJob *p) {
        if (p->conn)
                connection_send_error(p->conn, p->error, "checkpoint of pod %s/%s failed: %s",
                                      p->entry.k8s_namespace, p->entry.k8s_pod,
                                      p->error_msg ? p->error_msg : strerror(p->error));
}

/* Records the first failure. */
static void pod_set_error(PodJob *p, int r, const char *what) {
        if (p->error)
                return;
        p->error = r < 0 ? -r : r;
        p->error_msg = strdup(what);
        log_error("Checkpoint %s of pod %s/%s failed: %s", p->entry.id, p->entry.k8s_namespace,
                  p->entry.k8s_pod, what);
}

/* Thaws every member container frozen by us (and the pod's cgroup, in case
 * a failure came between its freeze and its thaw), then clears their marks:
 * nothing is left for recovery to thaw. */
static void pod_thaw(PodJob *p) {
        Manager *m = p->manager;
        if (!p->frozen)
                return;
        if (p->pod_cgroup) {
                (void)freezer_set(p->pod_cgroup, false, 0);
                (void)catalog_set_thaw_cgroup(m->catalog, p->entry.id, "");
        }
        for (size_t i = 0; i < p->n; i++) {
                PodMemberState *ms = &p->members[i];
                int r = ms->c->cgroup ? freezer_set(ms->c->cgroup, false, 0) : -ENODATA;
                if (r < 0 && r != -ENOENT)
                        log_error_errno(r,
                                        "Pod checkpoint %s: cannot thaw container %s, it is left frozen: %m",
                                        p->entry.id, ms->c->id);
                if (ms->id)
                        (void)catalog_set_thaw(m->catalog, ms->id, false); /* -ENOENT: failed, gone */
        }
        p->frozen = false;
        p->frozen_usec = now_monotonic_usec() - p->frozen_at;
}

/* Kills every process of each member container, all still frozen: none
 * runs again after its dump (the pod's --exit). */
static void pod_kill(PodJob *p) {
        for (size_t i = 0; i < p->n; i++) {
                _cleanup_free_ char *path = NULL, *procs = NULL;
                const char *dir = p->members[i].c->cgroup;
                if (!dir || asprintf(&path, "%s/cgroup.procs", dir) < 0 ||
                    read_full_file(path, 16u << 20, &procs, NULL) < 0)
                        continue;
                for (char *s = procs, *end; *s; s = end) {
                        long pid = strtol(s, &end, 10);
                        if (end == s)
                                break;
                        if (pid > 1)
                                (void)kill((pid_t)pid, SIGKILL);
                        while (*end == '\n')
                                end++;
                }
        }
}

static int write_pod_json(PodJob *p) {
        _cleanup_free_ PodManifestMember *members = calloc(p->n, sizeof(*members));
        if (!members)
                return -ENOMEM;
        for (size_t i = 0; i < p->n; i++)
                members[i] = (PodManifestMember){
                        .container = p->members[i].c->name,
                        .id = p->members[i].id,
                        .container_id = p->members[i].c->id,
                };
        const PodManifest pm = {.sandbox_id = p->sandbox->id,
                                .pod_cgroup = p->pod_cgroup,
                                .frozen_usec = p->frozen_usec,
                                .members = members,
                                .n = p->n};
        return metadata_write_pod_json(p->dir, &pm, p->manager->config->durable);
}

/* The pod checkpoint, its members named in it (as inspect gives them) and
 * each member whole. */
static void pod_reply(PodJob *p) {
        Manager *m = p->manager;
        if (!p->conn)
                return;
        _cleanup_free_ char *path = NULL;
        _cleanup_(pod_members_done) PodMembers names = {};
        Kybernate__V1__CheckpointInfo info, *infos = calloc(p->n, sizeof(*infos));
        Kybernate__V1__CheckpointInfo **ptrs = calloc(p->n, sizeof(*ptrs));
        Kybernate__V1__CheckpointOptions opts, *mopts = calloc(p->n, sizeof(*mopts));
        CatalogEntry *rows = calloc(p->n, sizeof(*rows));
        char **paths = calloc(p->n, sizeof(*paths));
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        Kybernate__V1__CheckpointResponse ck = KYBERNATE__V1__CHECKPOINT_RESPONSE__INIT;

        int r = !infos || !ptrs || !mopts || !rows || !paths
                        ? -ENOMEM
                        : pod_members_load(m->catalog, p->entry.id, &names);
        if (r < 0) {
                connection_send_error(p->conn, r, "pod checkpoint %s is ready; its reply failed: %s",
                                      p->entry.id, strerror(-r));
                goto out;
        }
        (void)manager_checkpoint_dir(m, p->entry.id, &path);
        entry_to_info(&p->entry, path, &info, &opts);
        pod_members_attach(&names, &info);
        for (size_t i = 0; i < p->n; i++) {
                (void)catalog_get(m->catalog, p->members[i].id, &rows[i]);
                (void)manager_checkpoint_dir(m, p->members[i].id, &paths[i]);
                entry_to_info(&rows[i], paths[i], &infos[i], &mopts[i]);
                ptrs[i] = &infos[i];
        }
        ck.info = &info;
        ck.n_members = p->n;
        ck.members = ptrs;
        resp.result_case = KYBERNATE__V1__RESPONSE__RESULT_CHECKPOINT;
        resp.checkpoint = &ck;
        (void)connection_send(p->conn, &resp, true);
out:
        for (size_t i = 0; rows && paths && i < p->n; i++) {
                catalog_entry_done(&rows[i]);
                free(paths[i]);
        }
        free(infos);
        free(ptrs);
        free(mopts);
        free(rows);
        free(paths);
}

/* Every member is done: the pod is ready, or everything goes. */
static void pod_complete(PodJob *p) {
        Manager *m = p->manager;
        int r = 0;

        pod_thaw(p);
        if (p->failing && !p->error)
                pod_set_error(p, -EIO, "a container of the pod failed");
        if (!p->error) {
                _cleanup_free_ const char **ids = calloc(p->n, sizeof(*ids));
                _cleanup_free_ const char **sums = calloc(p->n, sizeof(*sums));
                _cleanup_free_ uint64_t *sizes = calloc(p->n, sizeof(*sizes));
                if (!ids || !sums || !sizes)
                        r = -ENOMEM;
                for (size_t i = 0; r >= 0 && i < p->n; i++) {
                        ids[i] = p->members[i].id;
                        sums[i] = p->members[i].checksum;
                        sizes[i] = p->members[i].size;
                        p->entry.size_bytes += sizes[i];
                }
                if (r >= 0)
                        r = write_pod_json(p);
                if (r >= 0)
                        r = metadata_write_kybernate_json(p->dir, &p->entry, m->config->durable);
                if (r >= 0 && m->config->durable)
                        r = store_fsync_path(p->dir);
                if (r >= 0)
                        r = catalog_set_pod_ready(m->catalog, p->entry.id, p->frozen_usec, p->n, ids, sizes,
                                                  sums);
                if (r < 0)
                        pod_set_error(p, r, "recording the pod checkpoint failed");
        }
        if (p->error) {
                for (size_t i = 0; i < p->n; i++)
                        if (p->members[i].ok && manager_remove_checkpoint(m, p->members[i].id) < 0)
                                log_error("Pod checkpoint %s: could not remove member %s", p->entry.id,
                                          p->members[i].id);
                r = manager_remove_checkpoint(m, p->entry.id);
                if (r < 0)
                        log_error_errno(r, "Failed to clean up pod checkpoint %s: %m", p->dir);
                pod_reply_error(p);
        } else {
                p->entry.state = CHECKPOINT_READY;
                p->entry.frozen_usec = p->frozen_usec;
                log_info("Checkpoint %s of pod %s/%s ready: %zu containers, %" PRIu64
                         " bytes, frozen %" PRIu64 " ms, in %" PRIu64 " ms",
                         p->entry.id, p->entry.k8s_namespace, p->entry.k8s_pod, p->n, p->entry.size_bytes,
                         p->frozen_usec / USEC_PER_MSEC,
                         (now_monotonic_usec() - p->started) / USEC_PER_MSEC);
                pod_reply(p);
                if (p->entry.push_pending)
                        push_checkpoint(m, p->entry.id);
        }
        m->n_jobs--;
        pod_free(p);
}

static void pod_dump_next(PodJob *p);

/* A failure: every container thawed, the members that have not begun their
 * dump cancelled (pod_complete() removes the others once they are done). */
static void pod_fail(PodJob *p) {
        if (p->failing)
                return;
        p->failing = true;
        pod_thaw(p);
        size_t n = p->n;
        for (size_t i = p->next_dump + 1; i < n; i++)
                if (p->members[i].job && !p->members[i].dumped)
                        checkpoint_member_cancel(p->members[i].job, "another container of the pod failed");
}

static void member_dumped(void *userdata, int r) {
        PodMemberState *ms = userdata;
        PodJob *p = ms->pod;
        ms->dumped = true;
        if (r < 0) {
                pod_fail(p);
                return;
        }
        p->next_dump++;
        pod_dump_next(p);
}

static void member_done(void *userdata, int r, uint64_t size, const char *checksum, const char *error) {
        PodMemberState *ms = userdata;
        PodJob *p = ms->pod;
        ms->done = true;
        ms->job = NULL;
        ms->ok = r >= 0; /* its row and directory are there */
        if (r >= 0) {
                ms->size = size;
                if (!(ms->checksum = strdup(checksum)))
                        pod_set_error(p, -ENOMEM, "out of memory");
        } else if (r != -ECANCELED) {
                char what[1024];
                snprintf(what, sizeof(what), "container %s (%s): %s", ms->c->name, ms->c->id,
                         error ? error : strerror(-r));
                pod_set_error(p, r, what);
        }
        if (++p->n_done == p->n)
                pod_complete(p);
}

static const CheckpointMemberHooks member_hooks = {.dumped = member_dumped, .done = member_done};

static void pod_dump_next(PodJob *p) {
        if (p->failing || p->error)
                return;
        if (p->next_dump < p->n) {
                checkpoint_member_dump(p->members[p->next_dump].job);
                return;
        }
        /* All dumped, all still frozen. */
        if (p->stop)
                pod_kill(p);
        pod_thaw(p);
}

/* Freezes the whole pod, see the top of this file. */
static int pod_freeze(PodJob *p, char *msg, size_t size) {
        Manager *m = p->manager;
        int r;

        p->frozen = true; /* from here on pod_thaw() undoes whatever was done */
        p->frozen_at = now_monotonic_usec();
        if (p->pod_cgroup) {
                r = catalog_set_thaw_cgroup(m->catalog, p->entry.id, p->pod_cgroup);
                if (r < 0) {
                        snprintf(msg, size, "recording the pod's cgroup failed: %s", strerror(-r));
                        return r;
                }
                r = freezer_set(p->pod_cgroup, true, FREEZE_TIMEOUT_USEC);
                if (r < 0) {
                        snprintf(msg, size, "freezing the pod's cgroup %s failed: %s", p->pod_cgroup,
                                 strerror(-r));
                        return r;
                }
                p->frozen_at = now_monotonic_usec();
        }
        for (size_t i = 0; i < p->n; i++) {
                const CriContainer *c = p->members[i].c;
                r = c->cgroup ? freezer_set(c->cgroup, true, FREEZE_TIMEOUT_USEC) : -ENODATA;
                if (r < 0) {
                        snprintf(msg, size, "freezing container %s (%s) failed: %s", c->name, c->id,
                                 r == -ENODATA ? "runc's state names no freezer cgroup" : strerror(-r));
                        return r;
                }
        }
        if (p->pod_cgroup) {
                r = freezer_set(p->pod_cgroup, false, 0);
                if (r >= 0)
                        r = catalog_set_thaw_cgroup(m->catalog, p->entry.id, "");
                if (r < 0) {
                        snprintf(msg, size, "thawing the pod's cgroup %s failed: %s", p->pod_cgroup,
                                 strerror(-r));
                        return r;
                }
        }
        return 0;
}

/* In a child: the System V IPC objects of the pod's IPC namespace (that of
 * the sandbox's process), as "SHM SEM MSG" counts. */
static void count_sysvipc(void *userdata, int result_fd) {
        const char *ns = userdata;
        static const char *const files[] = {"/proc/sysvipc/shm", "/proc/sysvipc/sem", "/proc/sysvipc/msg"};
        unsigned long n[3] = {};
        int fd = open(ns, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWIPC) < 0)
                return;
        for (size_t i = 0; i < 3; i++) {
                _cleanup_free_ char *text = NULL;
                if (read_full_file(files[i], 16u << 20, &text, NULL) < 0)
                        return;
                for (const char *c = strchr(text, '\n'); c && c[1]; c = strchr(c + 1, '\n'))
                        n[i]++; /* lines after the header */
        }
        dprintf(result_fd, "%lu %lu %lu\n", n[0], n[1], n[2]);
}

/* CRIU dumps a container's System V IPC only with an IPC namespace of its
 * own; a pod's containers share the sandbox's, which no dump carries: a pod
 * whose containers use shared memory, semaphores or message queues is
 * refused rather than restored without them. Quick (a child that reads
 * three small files), so done in the loop. */
static int pod_check_ipc(PodJob *p, char *msg, size_t size) {
        _cleanup_free_ char *ns = NULL;
        pid_t pid;
        int sandbox_pid = p->sandbox->alive ? p->sandbox->pid : 0;
        if (sandbox_pid <= 0 || asprintf(&ns, "/proc/%d/ns/ipc", sandbox_pid) < 0)
                return 0; /* cannot tell: CRIU's own checks remain */
        int fd;
        int r = spawn_fork(count_sysvipc, ns, &fd, &pid);
        if (r < 0)
                return 0;
        int status;
        (void)waitpid(pid, &status, 0);
        char buf[96] = "";
        ssize_t k = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        unsigned long shm, sem, mq;
        if (k <= 0 || sscanf(buf, "%lu %lu %lu", &shm, &sem, &mq) != 3)
                return 0;
        if (shm + sem + mq == 0)
                return 0;
        snprintf(
                msg, size,
                "the pod's containers share System V IPC objects (%lu shared memory segments, %lu semaphore "
                "sets, %lu message queues) in the pod's IPC namespace, which CRIU cannot carry for a pod: "
                "refused rather than restored without them",
                shm, sem, mq);
        return -EOPNOTSUPP;
}

/* Ends a pod checkpoint before any dump: the first `started` members have
 * jobs (cancelled here), the others none. p may be gone on return. */
static void pod_abort(PodJob *p, size_t started, const char *why) {
        p->failing = true;
        size_t n = p->n;
        for (size_t k = started; k < n; k++)
                p->members[k].done = true;
        p->n_done += n - started;
        if (started == 0) {
                pod_complete(p);
                return;
        }
        for (size_t k = 0; k < started; k++)
                checkpoint_member_cancel(p->members[k].job, why); /* the last one completes the pod */
}

/* Members in the order their containers were created (as kubelet starts
 * them; a restore starts them in the same order). */
static int by_created(const void *a, const void *b) {
        const PodMemberState *x = a, *y = b;
        return x->c->created_ns < y->c->created_ns ? -1 : x->c->created_ns > y->c->created_ns;
}

void op_pod_checkpoint(Connection *c, const Kybernate__V1__CheckpointRequest *req) {
        Manager *m = c->manager;
        const char *ns = isempty(req->containerd_namespace) ? "k8s.io" : req->containerd_namespace;
        char msg[1024] = "", id[33];
        int r;

        if (!ident_valid(ns, IDENT_MAX_LEN) || strlen(req->pod) > 2 * IDENT_MAX_LEN + 1 ||
            !isempty(req->container_id)) {
                connection_send_error(c, EINVAL,
                                      "a pod checkpoint names the pod (K8S-NAMESPACE/POD or its sandbox id) "
                                      "and no container_id");
                return;
        }
        if (!checkpoint_request_valid(c, req))
                return;
        PodJob *p = calloc(1, sizeof(*p));
        if (!p) {
                connection_send_error(c, ENOMEM, "out of memory");
                return;
        }
        m->n_jobs++;
        p->manager = m;
        p->started = now_monotonic_usec();
        uint32_t options = checkpoint_request_options(req) | CKPT_OPT_TCP_ESTABLISHED;
        p->stop = !(options & CKPT_OPT_LEAVE_RUNNING);
        if (!isempty(req->runc_root))
                p->runc_root = strdup(req->runc_root);
        else if (asprintf(&p->runc_root, "%s/%s", m->config->runc_root_base, ns) < 0)
                p->runc_root = NULL;
        if (!p->runc_root) {
                r = -ENOMEM;
                goto fail_early;
        }
        r = cri_scan(p->runc_root, &p->all, &p->n_all);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "cannot read the containers under %s: %s", p->runc_root,
                         strerror(-r));
                goto fail_early;
        }
        r = pod_find_sandbox(p, req->pod, msg, sizeof(msg));
        if (r < 0)
                goto fail_early;
        for (size_t i = 0; i < p->n_all; i++) {
                CriContainer *k = &p->all[i];
                if (!streq(k->type, "container") || !streq(k->sandbox_id, p->sandbox->id) || !k->alive)
                        continue;
                if (!k->name || p->n >= POD_MAX_CONTAINERS) {
                        r = -EINVAL;
                        if (k->name)
                                snprintf(msg, sizeof(msg), "more than %d containers", POD_MAX_CONTAINERS);
                        else
                                snprintf(msg, sizeof(msg), "container %s has no CRI container name", k->id);
                        goto fail_early;
                }
                PodMemberState *n = reallocarray(p->members, p->n + 1, sizeof(*n));
                if (!n) {
                        r = -ENOMEM;
                        goto fail_early;
                }
                p->members = n;
                p->members[p->n++] = (PodMemberState){.c = k, .pod = p};
        }
        if (p->n == 0) {
                r = -ENOENT;
                snprintf(msg, sizeof(msg), "pod %s has no running container", req->pod);
                goto fail_early;
        }
        qsort(p->members, p->n, sizeof(*p->members), by_created);
        for (size_t i = 0; i < p->n; i++)
                p->members[i].pod = p;
        p->pod_cgroup = pod_cgroup(p);
        r = pod_check_ipc(p, msg, sizeof(msg));
        if (r < 0)
                goto fail_early;

        /* The pod's row and directory. */
        CatalogEntry *e = &p->entry;
        e->state = CHECKPOINT_PENDING;
        e->is_pod = true;
        e->created_ns = now_realtime_ns();
        e->durable = m->config->durable;
        e->options = options;
        e->pinned = req->has_pin && req->pin;
        e->allow_cross_namespace = req->has_allow_cross_namespace && req->allow_cross_namespace;
        e->push_pending = m->config->push_to != NULL; /* the pod whole: its members are not pushed */
        r = store_new_id(id);
        if (r < 0)
                goto fail_early;
        if (!(e->id = strdup(id)) || !(e->containerd_namespace = strdup(ns)) ||
            !(e->container_id = strdup(p->sandbox->id)) ||
            (p->sandbox->sandbox_namespace && !(e->k8s_namespace = strdup(p->sandbox->sandbox_namespace))) ||
            (p->sandbox->sandbox_name && !(e->k8s_pod = strdup(p->sandbox->sandbox_name))) ||
            (!isempty(req->name) && !(e->name = strdup(req->name))) ||
            !(e->runc_root = strdup(p->runc_root)) ||
            !(e->runc_version = strdup(m->runc_version ? m->runc_version : "")) ||
            !(e->criu_version = strdup(m->criu_version ? m->criu_version : "")) ||
            !(e->kernel_version = strdup(m->kernel_version ? m->kernel_version : ""))) {
                r = -ENOMEM;
                goto fail_early;
        }
        r = manager_checkpoint_dir(m, id, &p->dir);
        if (r < 0)
                goto fail_early;
        if (mkdir(p->dir, 0700) < 0) {
                r = negative_errno();
                snprintf(msg, sizeof(msg), "creating %s failed: %s", p->dir, strerror(-r));
                goto fail_early;
        }
        r = catalog_insert(m->catalog, e);
        if (r < 0) {
                snprintf(msg, sizeof(msg), "%s",
                         r == -EEXIST ? "the name is taken by another checkpoint" : "catalog insert failed");
                (void)remove_tree_one_fs(p->dir);
                goto fail_early;
        }
        p->conn = c;
        c->op = p;
        c->op_detach = pod_detach;
        log_info("Checkpoint %s of pod %s/%s (sandbox %s, %zu containers, %s) started (uid %u)", id,
                 nn(e->k8s_namespace), nn(e->k8s_pod), p->sandbox->id, p->n,
                 p->pod_cgroup ? p->pod_cgroup : "no cgroup of its own", (unsigned)c->cred.uid);

        /* The members' rows, each with its thaw mark, before anything is frozen. */
        for (size_t i = 0; i < p->n; i++) {
                PodMemberState *ms = &p->members[i];
                r = checkpoint_member_new(m, id, ns, ms->c->id, p->runc_root, ms->c->state, options,
                                          &member_hooks, ms, &ms->job, &ms->id);
                if (r < 0) {
                        snprintf(msg, sizeof(msg), "container %s (%s): %s", ms->c->name, ms->c->id,
                                 strerror(-r));
                        pod_set_error(p, r, msg);
                        pod_abort(p, i, "another container of the pod failed");
                        return;
                }
        }
        r = pod_freeze(p, msg, sizeof(msg));
        if (r < 0) {
                pod_set_error(p, r, msg);
                pod_thaw(p);
                pod_abort(p, p->n, "freezing the pod failed");
                return;
        }
        pod_dump_next(p);
        return;

fail_early:
        connection_send_error(c, r, "checkpoint of pod %s: %s", req->pod, msg[0] ? msg : strerror(-r));
        m->n_jobs--;
        pod_free(p);
}
