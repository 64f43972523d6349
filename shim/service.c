/* SPDX-License-Identifier: Apache-2.0 */
#include <cJSON.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "checkpoint.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "containerd/types/task.pb-c.h"
#include "io.h"
#include "kyb-client.h"
#include "log.h"
#include "mount.h"
#include "options.h"
#include "rootfs-diff.h"
#include "runc.h"
#include "service.h"
#include "spec.h"
#include "util.h"

#define ID_MAX 76
/* kybernated answers a resolve at once; a checkpoint of a large process takes a while. */
#define RESOLVE_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define CHECKPOINT_TIMEOUT_USEC (30 * 60 * USEC_PER_SEC)
#define EXIT_FLUSH_USEC (3 * USEC_PER_SEC)
/* Go's zero time, which containerd 1.6 expects in exited_at until a process exits. */
#define GO_ZERO_TIME_SECONDS (-62135596800LL)

enum {
        ST_CREATED = CONTAINERD__V1__TYPES__STATUS__CREATED,
        ST_RUNNING = CONTAINERD__V1__TYPES__STATUS__RUNNING,
        ST_STOPPED = CONTAINERD__V1__TYPES__STATUS__STOPPED,
        ST_PAUSED = CONTAINERD__V1__TYPES__STATUS__PAUSED,
};

typedef struct Process {
        Container *c;
        struct Process *next; /* execs only */
        char *id;             /* container id for init, exec id for execs */
        bool init;
        pid_t pid;
        int state;
        bool starting; /* Start in flight: an exit reaped meanwhile waits for it */
        bool started;
        bool reaped;    /* the reaper saw it die */
        bool exited;    /* exit finalized: output drained, waiters answered, event queued */
        bool exit_held; /* init only: its exit waits for running execs */
        uint32_t exit_status;
        int64_t exited_at_ns;
        ProcessIO *io;
        char *stdin_path, *stdout_path, *stderr_path;
        bool terminal;
        char *spec_json; /* execs: the OCI process, as given */
        TtrpcCall **waiters;
        size_t n_waiters;
} Process;

struct Container {
        Shim *shim;
        Container *next;
        char *id;
        char *bundle;
        char *rootfs;
        RuncConfig runc;
        ShimOptions opts;
        Spec spec;
        Process *init;
        Process *execs;
        char *checkpoint;     /* restore from these images at Start */
        char *checkpoint_dir; /* kybernated's checkpoint directory, for a RESTORE_FROM restore */
        bool rootfs_mounted;
        bool deleting;
        Cgroup *cgroup; /* known once the init has a pid */
        OomWatch *oom;
};

/* An RPC that waits for runc: the call and whom it concerns, looked up again
 * when runc is done since the container may be gone by then. */
typedef struct Op {
        Shim *shim;
        TtrpcCall *call;
        char *cid;
        char *eid;
        char *tmp_path; /* a file to remove when done */
        /* Checkpoint: where containerd wants the images, and what to report. */
        char *path;
        char *checkpoint_id;
        char *images;
        const char *src, *dst; /* for a child that copies or applies files */
        char *work;            /* CRIU's work directory, for its log */
} Op;

bool shim_valid_id(const char *id) {
        size_t l = id ? strlen(id) : 0;
        if (l == 0 || l > ID_MAX)
                return false;
        for (size_t i = 0; i < l; i++) {
                char ch = id[i];
                bool alnum =
                        (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
                if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-')))
                        return false;
        }
        return true;
}

static Container *container_find(Shim *s, const char *id) {
        for (Container *c = s->containers; c; c = c->next)
                if (streq(c->id, id))
                        return c;
        return NULL;
}

static Process *exec_find(Container *c, const char *eid) {
        for (Process *p = c->execs; p; p = p->next)
                if (streq(p->id, eid))
                        return p;
        return NULL;
}

static void process_free(Process *p) {
        if (!p)
                return;
        for (size_t i = 0; i < p->n_waiters; i++)
                ttrpc_call_reply_error(p->waiters[i], TTRPC_NOT_FOUND, "process %s was deleted", p->id);
        free(p->waiters);
        if (p->pid > 0 && !p->reaped)
                reaper_unwatch(p->c->shim->reaper, p->pid);
        process_io_free(p->io);
        free(p->id);
        free(p->stdin_path);
        free(p->stdout_path);
        free(p->stderr_path);
        free(p->spec_json);
        free(p);
}

static void container_free(Container *c) {
        if (!c)
                return;
        while (c->execs) {
                Process *p = c->execs;
                c->execs = p->next;
                process_free(p);
        }
        process_free(c->init);
        cgroup_oom_watch_free(c->oom);
        cgroup_free(c->cgroup);
        if (c->rootfs_mounted)
                (void)mount_unmount_all(c->rootfs);
        runc_config_done(&c->runc);
        shim_options_done(&c->opts);
        spec_done(&c->spec);
        free(c->id);
        free(c->bundle);
        free(c->rootfs);
        free(c->checkpoint);
        free(c->checkpoint_dir);
        free(c);
}

static void container_remove(Shim *s, Container *c) {
        for (Container **i = &s->containers; *i; i = &(*i)->next)
                if (*i == c) {
                        *i = c->next;
                        break;
                }
        container_free(c);
}

static Op *op_new(Shim *s, TtrpcCall *call, const char *cid, const char *eid) {
        Op *op = calloc(1, sizeof(*op));
        if (!op)
                return NULL;
        op->shim = s;
        op->call = call;
        op->cid = strdup(cid);
        op->eid = strdup(eid ? eid : "");
        if (!op->cid || !op->eid) {
                free(op->cid);
                free(op->eid);
                free(op);
                return NULL;
        }
        return op;
}

static void op_free(Op *op) {
        if (op->tmp_path)
                (void)unlink(op->tmp_path);
        free(op->tmp_path);
        free(op->path);
        free(op->checkpoint_id);
        free(op->images);
        free(op->work);
        free(op->cid);
        free(op->eid);
        free(op);
}

static int run_op(Container *c, Op *op, char *const *args, const RuncSpawn *spawn, RuncDoneFn cb) {
        static const RuncSpawn capture = {.stdio = {-1, -1, -1}};
        int r = runc_run(c->shim->event, c->shim->reaper, &c->runc, args, spawn ? spawn : &capture, cb, op);
        if (r < 0)
                op_free(op);
        return r;
}

static Google__Protobuf__Timestamp timestamp_of(const Process *p) {
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        if (p && p->exited) {
                ts.seconds = p->exited_at_ns / (int64_t)NSEC_PER_SEC;
                ts.nanos = (int32_t)(p->exited_at_ns % (int64_t)NSEC_PER_SEC);
        } else
                ts.seconds = GO_ZERO_TIME_SECONDS;
        return ts;
}

static void publish(Shim *s, const char *topic, const ProtobufCMessage *m) {
        int r = publisher_publish(s->publisher, topic, m);
        if (r < 0)
                log_error_errno(r, "Failed to queue %s event: %m", topic);
}

/* Looks up the process a request names; replies NotFound itself when absent. */
static Process *lookup(Shim *s, TtrpcCall *call, const char *cid, const char *eid) {
        Container *c = container_find(s, cid);
        if (!c || c->deleting) {
                ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "container not created: not found");
                return NULL;
        }
        if (isempty(eid))
                return c->init;
        Process *p = exec_find(c, eid);
        if (!p)
                ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "process does not exist %s: not found", eid);
        return p;
}

static bool execs_running(Container *c) {
        for (Process *p = c->execs; p; p = p->next)
                if (p->started && !p->exited)
                        return true;
        return false;
}

/* ---- exits ------------------------------------------------------------------------------------- */

static void process_exit_finish(Process *p);

static void on_io_drained(void *userdata) {
        Process *p = userdata;
        Container *c = p->c;
        Shim *s = c->shim;

        p->exited = true;
        Google__Protobuf__Timestamp ts = timestamp_of(p);
        Containerd__Task__V2__WaitResponse w = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
        w.exit_status = p->exit_status;
        w.exited_at = &ts;
        for (size_t i = 0; i < p->n_waiters; i++)
                ttrpc_call_reply(p->waiters[i], &w.base);
        p->n_waiters = 0;

        Containerd__Events__TaskExit ev = CONTAINERD__EVENTS__TASK_EXIT__INIT;
        ev.container_id = c->id;
        ev.id = p->id;
        ev.pid = (uint32_t)p->pid;
        ev.exit_status = p->exit_status;
        ev.exited_at = &ts;
        publish(s, "/tasks/exit", &ev.base);
        log_debug("Process %s of %s exited with status %u", p->id, c->id, p->exit_status);

        /* The init's exit was held back while execs ran (as containerd 1.7's runc shim does). */
        if (!p->init && c->init && c->init->exit_held && !execs_running(c)) {
                c->init->exit_held = false;
                process_exit_finish(c->init);
        }
}

static void process_exit_finish(Process *p) {
        Container *c = p->c;

        if (p->init && execs_running(c)) {
                p->exit_held = true;
                return;
        }
        p->state = ST_STOPPED;
        if (!p->io || process_io_shutdown(p->io, on_io_drained, p) < 0)
                on_io_drained(p);
}

static void on_kill_all_done(int status, const char *out, size_t len, const char *error, void *userdata) {
        if (error)
                log_debug("Killing the rest of the container failed: %s", error);
}

static void on_process_exit(pid_t pid, int status, int64_t at, void *userdata) {
        Process *p = userdata;
        Container *c = p->c;

        p->reaped = true;
        p->exit_status = (uint32_t)status;
        p->exited_at_ns = at;
        if (p->starting)
                return; /* Start finishes first, so that TaskStart precedes TaskExit. */
        if (p->init && !c->spec.private_pid_ns) {
                /* Without its own PID namespace nothing kills what the init left behind. */
                char *args[] = {(char *)"kill", (char *)"--all", c->id, (char *)"SIGKILL", NULL};
                static const RuncSpawn capture = {.stdio = {-1, -1, -1}};
                (void)runc_run(c->shim->event, c->shim->reaper, &c->runc, args, &capture, on_kill_all_done,
                               NULL);
        }
        process_exit_finish(p);
}

static int process_watch(Process *p) {
        return reaper_watch(p->c->shim->reaper, p->pid, on_process_exit, p);
}

/* ---- process set-up ---------------------------------------------------------------------------- */

static int process_new(Container *c, const char *id, bool init, const char *in, const char *out,
                       const char *err, bool terminal, Process **ret) {
        Process *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->c = c;
        p->init = init;
        p->state = ST_CREATED;
        p->terminal = terminal;
        p->id = strdup(id);
        p->stdin_path = strdup(in ? in : "");
        p->stdout_path = strdup(out ? out : "");
        p->stderr_path = strdup(err ? err : "");
        if (!p->id || !p->stdin_path || !p->stdout_path || !p->stderr_path) {
                process_free(p);
                return -ENOMEM;
        }
        ProcessIOConfig cfg = {
                .id = p->id,
                .container_id = c->id,
                .ns = c->shim->ns,
                .stdin_path = p->stdin_path,
                .stdout_path = p->stdout_path,
                .stderr_path = p->stderr_path,
                .terminal = terminal,
                .io_uid = c->opts.io_uid,
                .io_gid = c->opts.io_gid,
        };
        int r = process_io_new(c->shim->event, &cfg, &p->io);
        if (r < 0) {
                process_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

static int read_pid_file(const char *path, pid_t *ret) {
        _cleanup_free_ char *buf = NULL;
        int r = read_full_file(path, 64, &buf, NULL);
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        long v = strtol(buf, &end, 10);
        if (errno != 0 || end == buf || v <= 0 || v > INT_MAX)
                return -EBADMSG;
        *ret = (pid_t)v;
        return 0;
}

/* The runc process arguments for creating or restoring p. */
static void io_args(Process *p, char **args, size_t *n) {
        const char *console = p->terminal ? process_io_console_socket(p->io) : NULL;
        if (console) {
                args[(*n)++] = (char *)"--console-socket";
                args[(*n)++] = (char *)console;
        }
}

/* ---- cgroup: stats and OOM ---------------------------------------------------------------------- */

static void container_load_cgroup(Container *c) {
        if (c->cgroup || c->init->pid <= 0)
                return;
        int r = cgroup_new_from_pid(NULL, NULL, c->init->pid, &c->cgroup);
        if (r < 0)
                log_debug_errno(r, "No cgroup for %s (pid %d): %m", c->id, (int)c->init->pid);
}

static void on_oom(void *userdata) {
        Container *c = userdata;
        Containerd__Events__TaskOOM ev = CONTAINERD__EVENTS__TASK_OOM__INIT;
        ev.container_id = c->id;
        publish(c->shim, "/tasks/oom", &ev.base);
}

static void container_watch_oom(Container *c) {
        container_load_cgroup(c);
        if (!c->cgroup || c->oom)
                return;
        int r = cgroup_oom_watch(c->shim->event, c->cgroup, on_oom, c, &c->oom);
        if (r < 0)
                log_warning_errno(r, "Cannot watch %s for OOM kills: %m", c->id);
}

static int method_stats(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__StatsRequest *req = (const void *)msg;
        Process *p = lookup(userdata, call, req->id, NULL);
        Google__Protobuf__Any *any = NULL;

        if (!p)
                return 0;
        container_load_cgroup(p->c);
        if (!p->c->cgroup)
                return ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "cgroup of %s: not found", req->id);
        int r = cgroup_stats(p->c->cgroup, &any);
        if (r < 0)
                return ttrpc_call_reply_error(call, r == -ENOENT ? TTRPC_NOT_FOUND : TTRPC_UNKNOWN,
                                              "stats of %s: %s", req->id, strerror(-r));
        Containerd__Task__V2__StatsResponse resp = CONTAINERD__TASK__V2__STATS_RESPONSE__INIT;
        resp.stats = any;
        r = ttrpc_call_reply(call, &resp.base);
        google__protobuf__any__free_unpacked(any, NULL);
        return r;
}

/* ---- Create ------------------------------------------------------------------------------------ */

static void create_reply(Op *op, Container *c) {
        Containerd__Task__V2__CreateTaskResponse resp = CONTAINERD__TASK__V2__CREATE_TASK_RESPONSE__INIT;
        resp.pid = (uint32_t)c->init->pid;
        ttrpc_call_reply(op->call, &resp.base);

        Containerd__Events__TaskIO tio = CONTAINERD__EVENTS__TASK_IO__INIT;
        tio.stdin = c->init->stdin_path;
        tio.stdout = c->init->stdout_path;
        tio.stderr = c->init->stderr_path;
        tio.terminal = c->init->terminal;
        Containerd__Events__TaskCreate ev = CONTAINERD__EVENTS__TASK_CREATE__INIT;
        ev.container_id = c->id;
        ev.bundle = c->bundle;
        ev.io = &tio;
        ev.checkpoint = c->checkpoint ? c->checkpoint : (char *)"";
        ev.pid = (uint32_t)c->init->pid;
        publish(c->shim, "/tasks/create", &ev.base);
}

static void on_runc_create(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        Container *c = container_find(op->shim, op->cid);
        _cleanup_free_ char *pidfile = NULL;
        int r;

        if (!c) {
                ttrpc_call_reply_error(op->call, TTRPC_NOT_FOUND, "container %s went away during create",
                                       op->cid);
                goto out;
        }
        if (error) {
                ttrpc_call_reply_error(op->call, TTRPC_UNKNOWN, "OCI runtime create failed: %s", error);
                container_remove(op->shim, c);
                goto out;
        }
        if (asprintf(&pidfile, "%s/init.pid", c->bundle) < 0 ||
            (r = read_pid_file(pidfile, &c->init->pid)) < 0 || (r = process_watch(c->init)) < 0 ||
            (r = process_io_started(c->init->io)) < 0) {
                ttrpc_call_reply_error(op->call, TTRPC_UNKNOWN, "container %s created but not usable",
                                       c->id);
                char *args[] = {(char *)"delete", (char *)"--force", c->id, NULL};
                (void)runc_run_sync(&c->runc, args);
                container_remove(op->shim, c);
                goto out;
        }
        container_load_cgroup(c);
        create_reply(op, c);
out:
        op_free(op);
}

static int container_new(Shim *s, const Containerd__Task__V2__CreateTaskRequest *req, Container **ret) {
        Container *c = calloc(1, sizeof(*c));
        int r;

        if (!c)
                return -ENOMEM;
        c->shim = s;
        c->id = strdup(req->id);
        c->bundle = strdup(req->bundle);
        if (!c->id || !c->bundle || asprintf(&c->rootfs, "%s/rootfs", req->bundle) < 0) {
                container_free(c);
                return -ENOMEM;
        }
        r = shim_options_from_any(req->options, &c->opts);
        if (r >= 0)
                r = shim_options_runc_config(&c->opts, s->ns, c->bundle, &c->runc);
        if (r >= 0)
                r = spec_load(c->bundle, &c->spec);
        if (r < 0) {
                container_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

static int mount_rootfs(Container *c, const Containerd__Task__V2__CreateTaskRequest *req) {
        for (size_t i = 0; i < req->n_rootfs; i++) {
                const Containerd__Types__Mount *m = req->rootfs[i];
                MountSpec spec = {m->type, m->source, m->options, m->n_options};
                int r = mount_apply(&spec, c->rootfs);
                if (r < 0)
                        return r;
                c->rootfs_mounted = true;
        }
        return 0;
}

/* ---- restore from a kybernated checkpoint (RESTORE_FROM) ------------------------------------------ */

static int code_of_daemon_error(int r) {
        switch (-r) {
        case EACCES:
        case EPERM:
                return TTRPC_PERMISSION_DENIED;
        case ENOENT:
                return TTRPC_NOT_FOUND;
        case EINVAL:
        case ENOTUNIQ:
                return TTRPC_INVALID_ARGUMENT;
        default:
                return TTRPC_FAILED_PRECONDITION;
        }
}

static const char *daemon_message(int r, const Kybernate__V1__Response *resp) {
        return resp && !isempty(resp->message) ? resp->message : strerror(-r);
}

/* Never start a fresh process when a restore was asked for: every failure fails Create. */
static void restore_failed(Op *op, Container *c, int code, const char *fmt, ...) _printf_(4, 5);
static void restore_failed(Op *op, Container *c, int code, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        log_error("Restore of %s refused: %s", op->cid, msg ? msg : "out of memory");
        ttrpc_call_reply_error(op->call, code, "%s", msg ? msg : "restore failed");
        if (c)
                container_remove(op->shim, c);
        op_free(op);
}

static int apply_rootfs_diff(const void *arg) {
        const Op *op = arg;
        return rootfs_diff_apply(op->src, op->dst);
}

static void on_rootfs_diff_applied(pid_t pid, int status, int64_t at, void *userdata) {
        Op *op = userdata;
        Container *c = container_find(op->shim, op->cid);
        if (!c)
                return restore_failed(op, NULL, TTRPC_NOT_FOUND, "container %s went away during create",
                                      op->cid);
        if (status != 0)
                return restore_failed(op, c, TTRPC_FAILED_PRECONDITION,
                                      "cannot restore the checkpoint's files into the rootfs of %s: %s",
                                      c->id, status < 128 ? strerror(status) : "killed");
        create_reply(op, c);
        op_free(op);
}

static void on_resolved(int r, const Kybernate__V1__Response *resp, void *userdata) {
        Op *op = userdata;
        Container *c = container_find(op->shim, op->cid);
        const char *ref = op->path;

        if (!c)
                return restore_failed(op, NULL, TTRPC_NOT_FOUND, "container %s went away during create",
                                      op->cid);
        if (r < 0)
                return restore_failed(op, c, code_of_daemon_error(r), "cannot restore %s from %s=%s: %s",
                                      c->id, RESTORE_ENV, ref, daemon_message(r, resp));
        const Kybernate__V1__ResolveResponse *rr =
                resp->result_case == KYBERNATE__V1__RESPONSE__RESULT_RESOLVE ? resp->resolve : NULL;
        if (!rr || isempty(rr->image_path) || rr->image_path[0] != '/')
                return restore_failed(op, c, TTRPC_INTERNAL, "kybernated resolved %s=%s to no image path",
                                      RESTORE_ENV, ref);
        c->checkpoint = strdup(rr->image_path);
        c->checkpoint_dir = strdup(!isempty(rr->checkpoint_dir) ? rr->checkpoint_dir : rr->image_path);
        if (!c->checkpoint || !c->checkpoint_dir)
                return restore_failed(op, c, TTRPC_INTERNAL, "out of memory");
        log_info("Restoring %s from %s (%s)", c->id, ref, c->checkpoint);
        /* Files the process wrote into its rootfs come back before CRIU runs. */
        op->src = c->checkpoint_dir;
        op->dst = c->rootfs;
        r = fork_call(op->shim->reaper, apply_rootfs_diff, op, on_rootfs_diff_applied, op);
        if (r < 0)
                return restore_failed(op, c, TTRPC_INTERNAL, "cannot apply the checkpoint's files: %s",
                                      strerror(-r));
}

static int restore_resolve(Container *c, Op *op, const char *ref) {
        Kybernate__V1__RestoreTarget target;
        Kybernate__V1__ResolveRequest rr = KYBERNATE__V1__RESOLVE_REQUEST__INIT;
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;

        if (!(op->path = strdup(ref))) {
                restore_failed(op, c, TTRPC_INTERNAL, "out of memory");
                return 0;
        }
        restore_target_from_spec(&c->spec, c->shim->ns, c->id, &target);
        rr.reference = op->path;
        rr.target = &target;
        req.op_case = KYBERNATE__V1__REQUEST__OP_RESOLVE;
        req.resolve = &rr;
        int r = kyb_client_call_async(c->shim->event, NULL, &req, RESOLVE_TIMEOUT_USEC, NULL, on_resolved,
                                      op, NULL);
        if (r < 0)
                restore_failed(
                        op, c, TTRPC_UNAVAILABLE,
                        "cannot restore %s from %s=%s: kybernated is not running (cannot connect to %s: %s)",
                        c->id, RESTORE_ENV, ref, kyb_socket_path(), strerror(-r));
        return 0;
}

static int method_create(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__CreateTaskRequest *req = (const void *)msg;
        Shim *s = userdata;
        Container *c = NULL;
        int r;

        if (!shim_valid_id(req->id))
                return ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid container id \"%s\"",
                                              req->id);
        if (isempty(req->bundle) || req->bundle[0] != '/' || strlen(req->bundle) >= PATH_MAX - 64)
                return ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid bundle path");
        if (container_find(s, req->id))
                return ttrpc_call_reply_error(call, TTRPC_ALREADY_EXISTS, "container %s: already exists",
                                              req->id);

        r = container_new(s, req, &c);
        if (r < 0)
                return ttrpc_call_reply_errno(call, r, "cannot create container %s: %s", req->id,
                                              strerror(-r));
        if (!isempty(req->checkpoint) && !(c->checkpoint = strdup(req->checkpoint))) {
                container_free(c);
                return -ENOMEM;
        }
        /* containerd's own restore (CreateTaskRequest.checkpoint) wins over a RESTORE_FROM. */
        const char *ref = NULL;
        r = c->checkpoint ? 0 : restore_reference(&c->spec, &ref);
        if (r < 0) {
                container_free(c);
                return ttrpc_call_reply_error(
                        call, TTRPC_INVALID_ARGUMENT,
                        "invalid %s: empty, longer than %d bytes or with control characters", RESTORE_ENV,
                        RESTORE_REFERENCE_MAX);
        }
        r = mount_rootfs(c, req);
        if (r < 0) {
                container_free(c);
                return ttrpc_call_reply_errno(call, r, "failed to mount rootfs component: %s", strerror(-r));
        }
        r = process_new(c, c->id, true, req->stdin, req->stdout, req->stderr, req->terminal, &c->init);
        if (r < 0) {
                container_free(c);
                return ttrpc_call_reply_errno(call, r, "failed to create container IO: %s", strerror(-r));
        }
        c->next = s->containers;
        s->containers = c;

        Op *op = op_new(s, call, c->id, NULL);
        if (!op) {
                container_remove(s, c);
                return -ENOMEM;
        }
        if (c->checkpoint) {
                /* A restore runs at Start; until then the task has pid 0, as with the runc shim. */
                create_reply(op, c);
                op_free(op);
                return 0;
        }
        if (ref)
                return restore_resolve(c, op, ref);

        _cleanup_free_ char *pidfile = NULL;
        if (asprintf(&pidfile, "%s/init.pid", c->bundle) < 0) {
                op_free(op);
                container_remove(s, c);
                return -ENOMEM;
        }
        char *args[16];
        size_t n = 0;
        args[n++] = (char *)"create";
        args[n++] = (char *)"--bundle";
        args[n++] = c->bundle;
        args[n++] = (char *)"--pid-file";
        args[n++] = pidfile;
        io_args(c->init, args, &n);
        if (c->opts.no_pivot_root)
                args[n++] = (char *)"--no-pivot";
        if (c->opts.no_new_keyring)
                args[n++] = (char *)"--no-new-keyring";
        args[n++] = c->id;
        args[n] = NULL;
        RuncSpawn spawn = {};
        process_io_child_fds(c->init->io, spawn.stdio);
        r = run_op(c, op, args, &spawn, on_runc_create);
        if (r < 0) {
                container_remove(s, c);
                return ttrpc_call_reply_errno(call, r, "cannot run runc: %s", strerror(-r));
        }
        return 0;
}

/* ---- Start ------------------------------------------------------------------------------------- */

static void start_done(Op *op, Process *p) {
        Container *c = p->c;

        p->starting = false;
        p->started = true;
        if (p->state == ST_CREATED)
                p->state = ST_RUNNING;
        Containerd__Task__V2__StartResponse resp = CONTAINERD__TASK__V2__START_RESPONSE__INIT;
        resp.pid = (uint32_t)p->pid;
        ttrpc_call_reply(op->call, &resp.base);
        if (p->init) {
                container_watch_oom(c);
                Containerd__Events__TaskStart ev = CONTAINERD__EVENTS__TASK_START__INIT;
                ev.container_id = c->id;
                ev.pid = (uint32_t)p->pid;
                publish(c->shim, "/tasks/start", &ev.base);
        } else {
                Containerd__Events__TaskExecStarted ev = CONTAINERD__EVENTS__TASK_EXEC_STARTED__INIT;
                ev.container_id = c->id;
                ev.exec_id = p->id;
                ev.pid = (uint32_t)p->pid;
                publish(c->shim, "/tasks/exec-started", &ev.base);
        }
        if (p->reaped)
                on_process_exit(p->pid, (int)p->exit_status, p->exited_at_ns, p);
}

static Process *op_process(Op *op) {
        Container *c = container_find(op->shim, op->cid);
        if (!c)
                return NULL;
        return isempty(op->eid) ? c->init : exec_find(c, op->eid);
}

static void start_failed(Op *op, Process *p, const char *what, const char *error) {
        p->starting = false;
        p->state = ST_STOPPED;
        ttrpc_call_reply_error(op->call, TTRPC_UNKNOWN, "OCI runtime %s failed: %s", what, error);
        if (!p->reaped) {
                /* Nothing ran: finish the process as exited so that Wait and Delete work. */
                p->reaped = true;
                p->exit_status = 255;
                p->exited_at_ns = now_realtime_ns();
        }
        if (p->pid <= 0 || !p->init) {
                p->exited = true;
                for (size_t i = 0; i < p->n_waiters; i++)
                        ttrpc_call_reply_error(p->waiters[i], TTRPC_UNKNOWN, "process failed to start");
                p->n_waiters = 0;
        } else
                on_process_exit(p->pid, (int)p->exit_status, p->exited_at_ns, p);
}

static void on_runc_start(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        Process *p = op_process(op);

        if (!p)
                ttrpc_call_reply_error(op->call, TTRPC_NOT_FOUND, "container went away during start");
        else if (error)
                start_failed(op, p, "start", error);
        else
                start_done(op, p);
        op_free(op);
}

/* exec and restore leave a new process behind whose pid runc wrote to a file. */
static void on_runc_spawned(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        Process *p = op_process(op);
        _cleanup_free_ char *pidfile = NULL;
        int r;

        if (!p) {
                ttrpc_call_reply_error(op->call, TTRPC_NOT_FOUND, "container went away during start");
                goto out;
        }
        if (error) {
                _cleanup_free_ char *log = NULL, *msg = NULL;
                if (p->init && op->work && keep_criu_log(op->work, "restore.log", p->c->id, &log) >= 0 &&
                    asprintf(&msg, "%s (CRIU log: %s)", error, log) >= 0)
                        error = msg;
                start_failed(op, p, p->init ? "restore" : "exec", error);
                goto out;
        }
        if (asprintf(&pidfile, "%s/%s.pid", p->c->bundle, p->init ? "init" : p->id) < 0 ||
            (r = read_pid_file(pidfile, &p->pid)) < 0 || (r = process_watch(p)) < 0) {
                start_failed(op, p, "start", "cannot read the pid file runc wrote");
                goto out;
        }
        (void)process_io_started(p->io);
        start_done(op, p);
out:
        op_free(op);
}

static int start_restore(Container *c, Op *op) {
        _cleanup_free_ char *pidfile = NULL, *work = NULL;
        Process *p = c->init;

        if (asprintf(&pidfile, "%s/init.pid", c->bundle) < 0 ||
            (c->opts.criu_work_path ? !(work = strdup(c->opts.criu_work_path))
                                    : asprintf(&work, "%s/work", c->bundle) < 0)) {
                op_free(op);
                return -ENOMEM;
        }
        char *args[24];
        size_t n = 0;
        args[n++] = (char *)"restore";
        args[n++] = (char *)"--image-path";
        args[n++] = c->checkpoint;
        args[n++] = (char *)"--work-path";
        args[n++] = work;
        op->work = strdup(work);
        args[n++] = (char *)"--detach";
        args[n++] = (char *)"--pid-file";
        args[n++] = pidfile;
        io_args(p, args, &n);
        if (c->opts.no_pivot_root)
                args[n++] = (char *)"--no-pivot";
        args[n++] = (char *)"-no-subreaper";
        args[n++] = (char *)"--bundle";
        args[n++] = c->bundle;
        args[n++] = c->id;
        args[n] = NULL;
        RuncSpawn spawn = {};
        process_io_child_fds(p->io, spawn.stdio);
        return run_op(c, op, args, &spawn, on_runc_spawned);
}

static int start_exec(Process *p, Op *op) {
        Container *c = p->c;
        _cleanup_free_ char *pidfile = NULL, *json = NULL;
        char tmpl[] = "/tmp/runc-process-XXXXXX";
        int r;

        r = spec_process_with_terminal(p->spec_json, p->terminal, &json);
        if (r < 0) {
                op_free(op);
                return r;
        }
        _cleanup_close_ int fd = mkostemp(tmpl, O_CLOEXEC);
        if (fd < 0 || (r = write_all(fd, json, strlen(json))) < 0 || !(op->tmp_path = strdup(tmpl))) {
                r = fd < 0 ? negative_errno() : (r < 0 ? r : -ENOMEM);
                if (fd >= 0)
                        (void)unlink(tmpl);
                op_free(op);
                return r;
        }
        if (asprintf(&pidfile, "%s/%s.pid", c->bundle, p->id) < 0) {
                op_free(op);
                return -ENOMEM;
        }
        char *args[16];
        size_t n = 0;
        args[n++] = (char *)"exec";
        args[n++] = (char *)"--process";
        args[n++] = tmpl;
        args[n++] = (char *)"--detach";
        args[n++] = (char *)"--pid-file";
        args[n++] = pidfile;
        io_args(p, args, &n);
        args[n++] = c->id;
        args[n] = NULL;
        RuncSpawn spawn = {};
        process_io_child_fds(p->io, spawn.stdio);
        return run_op(c, op, args, &spawn, on_runc_spawned);
}

static int method_start(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__StartRequest *req = (const void *)msg;
        Shim *s = userdata;
        Process *p = lookup(s, call, req->id, req->exec_id);
        int r;

        if (!p)
                return 0;
        Container *c = p->c;
        if (p->starting || p->started || p->state != ST_CREATED)
                return ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION,
                                              "process %s is already started", p->id);
        if (!p->init && c->init->state != ST_RUNNING)
                return ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION, "container %s is not running",
                                              c->id);
        Op *op = op_new(s, call, c->id, p->init ? NULL : p->id);
        if (!op)
                return -ENOMEM;
        p->starting = true;
        if (!p->init)
                r = start_exec(p, op);
        else if (c->checkpoint)
                r = start_restore(c, op);
        else {
                char *args[] = {(char *)"start", c->id, NULL};
                r = run_op(c, op, args, NULL, on_runc_start);
        }
        if (r < 0) {
                p->starting = false;
                return ttrpc_call_reply_errno(call, r, "cannot start %s: %s", p->id, strerror(-r));
        }
        return 0;
}

/* ---- State, Wait, Connect, Pids ---------------------------------------------------------------- */

static int process_state(Process *p) {
        if (p->exited || (p->reaped && !p->starting && !p->exit_held))
                return ST_STOPPED;
        if (p->c->init->state == ST_PAUSED && p->state == ST_RUNNING)
                return ST_PAUSED;
        return p->state;
}

static int method_state(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__StateRequest *req = (const void *)msg;
        Process *p = lookup(userdata, call, req->id, req->exec_id);
        if (!p)
                return 0;

        Google__Protobuf__Timestamp ts = timestamp_of(p);
        Containerd__Task__V2__StateResponse resp = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
        resp.id = p->id;
        resp.bundle = p->c->bundle;
        resp.pid = (uint32_t)MAX(p->pid, 0);
        resp.status = process_state(p);
        resp.stdin = p->stdin_path;
        resp.stdout = p->stdout_path;
        resp.stderr = p->stderr_path;
        resp.terminal = p->terminal;
        resp.exit_status = p->exited ? p->exit_status : 0;
        resp.exited_at = &ts;
        return ttrpc_call_reply(call, &resp.base);
}

static int method_wait(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__WaitRequest *req = (const void *)msg;
        Process *p = lookup(userdata, call, req->id, req->exec_id);
        if (!p)
                return 0;
        if (p->exited) {
                Google__Protobuf__Timestamp ts = timestamp_of(p);
                Containerd__Task__V2__WaitResponse resp = CONTAINERD__TASK__V2__WAIT_RESPONSE__INIT;
                resp.exit_status = p->exit_status;
                resp.exited_at = &ts;
                return ttrpc_call_reply(call, &resp.base);
        }
        TtrpcCall **w = reallocarray(p->waiters, p->n_waiters + 1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        p->waiters = w;
        p->waiters[p->n_waiters++] = call;
        return 0;
}

static int method_connect(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__ConnectRequest *req = (const void *)msg;
        Container *c = container_find(userdata, req->id);
        Containerd__Task__V2__ConnectResponse resp = CONTAINERD__TASK__V2__CONNECT_RESPONSE__INIT;
        resp.shim_pid = (uint32_t)getpid();
        resp.task_pid = c && c->init->pid > 0 ? (uint32_t)c->init->pid : 0;
        return ttrpc_call_reply(call, &resp.base);
}

static void on_runc_ps(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        Container *c = container_find(op->shim, op->cid);
        cJSON *j = NULL;

        if (!c || error) {
                ttrpc_call_reply_error(op->call, c ? TTRPC_UNKNOWN : TTRPC_NOT_FOUND,
                                       "failed to list pids: %s", error ? error : "container went away");
                goto out;
        }
        j = cJSON_ParseWithLength(out, len);
        int n = cJSON_IsArray(j) ? cJSON_GetArraySize(j) : -1;
        if (n < 0) {
                ttrpc_call_reply_error(op->call, TTRPC_UNKNOWN, "runc ps printed no pid list");
                goto out;
        }
        Containerd__V1__Types__ProcessInfo *infos = calloc((size_t)n + 1, sizeof(*infos));
        Containerd__V1__Types__ProcessInfo **ptrs = calloc((size_t)n + 1, sizeof(*ptrs));
        Containerd__Runc__V1__ProcessDetails *details = calloc((size_t)n + 1, sizeof(*details));
        Google__Protobuf__Any *anys = calloc((size_t)n + 1, sizeof(*anys));
        uint8_t **bufs = calloc((size_t)n + 1, sizeof(*bufs));
        if (!infos || !ptrs || !details || !anys || !bufs) {
                ttrpc_call_reply_error(op->call, TTRPC_INTERNAL, "out of memory");
                goto free_out;
        }
        size_t k = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, j) {
                if (!cJSON_IsNumber(item) || item->valuedouble <= 0 || item->valuedouble > INT_MAX)
                        continue;
                containerd__v1__types__process_info__init(&infos[k]);
                infos[k].pid = (uint32_t)item->valuedouble;
                for (Process *e = c->execs; e; e = e->next) {
                        if (e->pid != (pid_t)infos[k].pid)
                                continue;
                        /* exec'd processes carry their exec id, as the runc shim reports them */
                        containerd__runc__v1__process_details__init(&details[k]);
                        details[k].exec_id = e->id;
                        google__protobuf__any__init(&anys[k]);
                        anys[k].type_url = (char *)"containerd.runc.v1.ProcessDetails";
                        anys[k].value.len =
                                containerd__runc__v1__process_details__get_packed_size(&details[k]);
                        bufs[k] = malloc(anys[k].value.len + 1);
                        if (!bufs[k])
                                break;
                        containerd__runc__v1__process_details__pack(&details[k], bufs[k]);
                        anys[k].value.data = bufs[k];
                        infos[k].info = &anys[k];
                        break;
                }
                ptrs[k] = &infos[k];
                k++;
        }
        Containerd__Task__V2__PidsResponse resp = CONTAINERD__TASK__V2__PIDS_RESPONSE__INIT;
        resp.n_processes = k;
        resp.processes = ptrs;
        ttrpc_call_reply(op->call, &resp.base);
free_out:
        if (bufs)
                for (int i = 0; i < n; i++)
                        free(bufs[i]);
        free(bufs);
        free(anys);
        free(details);
        free(ptrs);
        free(infos);
out:
        cJSON_Delete(j);
        op_free(op);
}

static int method_pids(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__PidsRequest *req = (const void *)msg;
        Shim *s = userdata;
        Process *p = lookup(s, call, req->id, NULL);
        if (!p)
                return 0;
        Op *op = op_new(s, call, req->id, NULL);
        if (!op)
                return -ENOMEM;
        char *args[] = {(char *)"ps", (char *)"--format", (char *)"json", p->c->id, NULL};
        int r = run_op(p->c, op, args, NULL, on_runc_ps);
        return r < 0 ? ttrpc_call_reply_errno(call, r, "cannot run runc: %s", strerror(-r)) : 0;
}

/* ---- Kill, Delete, Shutdown -------------------------------------------------------------------- */

static void on_runc_simple(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        if (error)
                ttrpc_call_reply_error(op->call, TTRPC_UNKNOWN, "%s", error);
        else
                ttrpc_call_reply(op->call, NULL);
        op_free(op);
}

static void on_runc_kill(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        Process *p = op_process(op);
        /* The process may have died meanwhile: that is NotFound, as for the runc shim. */
        if (error && (!p || p->reaped || strstr(error, "not running") || strstr(error, "does not exist")))
                ttrpc_call_reply_error(op->call, TTRPC_NOT_FOUND, "process already finished: not found");
        else if (error)
                ttrpc_call_reply_error(op->call, TTRPC_UNKNOWN, "%s", error);
        else
                ttrpc_call_reply(op->call, NULL);
        op_free(op);
}

static int method_kill(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__KillRequest *req = (const void *)msg;
        Shim *s = userdata;
        Process *p = lookup(s, call, req->id, req->exec_id);
        char sig[16];

        if (!p)
                return 0;
        if (req->signal == 0 || req->signal >= 65)
                return ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid signal %u",
                                              req->signal);
        if (p->reaped && !req->all)
                return ttrpc_call_reply_error(call, TTRPC_NOT_FOUND, "process already finished: not found");
        if (!p->init) {
                if (p->pid <= 0)
                        return ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION,
                                                      "process %s not started", p->id);
                if (kill(p->pid, (int)req->signal) < 0)
                        return ttrpc_call_reply_errno(call, negative_errno(), "kill %s: %m", p->id);
                return ttrpc_call_reply(call, NULL);
        }
        Op *op = op_new(s, call, req->id, NULL);
        if (!op)
                return -ENOMEM;
        snprintf(sig, sizeof(sig), "%u", req->signal);
        char *args[6];
        size_t n = 0;
        args[n++] = (char *)"kill";
        if (req->all)
                args[n++] = (char *)"--all";
        args[n++] = p->c->id;
        args[n++] = sig;
        args[n] = NULL;
        int r = run_op(p->c, op, args, NULL, on_runc_kill);
        return r < 0 ? ttrpc_call_reply_errno(call, r, "cannot run runc: %s", strerror(-r)) : 0;
}

static void delete_reply(TtrpcCall *call, Process *p) {
        Google__Protobuf__Timestamp ts = timestamp_of(p);
        Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
        resp.pid = (uint32_t)MAX(p->pid, 0);
        resp.exit_status = p->exit_status;
        resp.exited_at = &ts;
        ttrpc_call_reply(call, &resp.base);
}

static void on_runc_delete(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        Shim *s = op->shim;
        Container *c = container_find(s, op->cid);

        if (!c) {
                ttrpc_call_reply_error(op->call, TTRPC_NOT_FOUND, "container not created: not found");
                goto out;
        }
        if (error)
                log_warning("runc delete %s: %s", c->id, error);
        Process *p = c->init;
        if (!p->exited) {
                /* Deleted before it ran: it never exits on its own record. */
                p->exited = true;
                if (!p->reaped) {
                        p->exit_status = 137;
                        p->exited_at_ns = now_realtime_ns();
                }
        }
        if (c->rootfs_mounted) {
                int r = mount_unmount_all(c->rootfs);
                if (r < 0)
                        log_warning_errno(r, "Failed to unmount %s: %m", c->rootfs);
                c->rootfs_mounted = false;
        }
        delete_reply(op->call, p);
        Google__Protobuf__Timestamp ts = timestamp_of(p);
        Containerd__Events__TaskDelete ev = CONTAINERD__EVENTS__TASK_DELETE__INIT;
        ev.container_id = c->id;
        ev.pid = (uint32_t)MAX(p->pid, 0);
        ev.exit_status = p->exit_status;
        ev.exited_at = &ts;
        publish(s, "/tasks/delete", &ev.base);
        container_remove(s, c);
out:
        op_free(op);
}

static int method_delete(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__DeleteRequest *req = (const void *)msg;
        Shim *s = userdata;
        Process *p = lookup(s, call, req->id, req->exec_id);

        if (!p)
                return 0;
        if (p->starting || (p->started && !p->exited))
                return ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "cannot delete a running process");
        if (!p->init) {
                Container *c = p->c;
                delete_reply(call, p);
                for (Process **i = &c->execs; *i; i = &(*i)->next)
                        if (*i == p) {
                                *i = p->next;
                                break;
                        }
                process_free(p);
                return 0;
        }
        if (execs_running(p->c))
                return ttrpc_call_reply_error(call, TTRPC_UNKNOWN,
                                              "cannot delete a container with running execs");
        Op *op = op_new(s, call, req->id, NULL);
        if (!op)
                return -ENOMEM;
        p->c->deleting = true;
        char *args[] = {(char *)"delete", (char *)"--force", p->c->id, NULL};
        int r = run_op(p->c, op, args, NULL, on_runc_delete);
        if (r < 0) {
                p->c->deleting = false;
                return ttrpc_call_reply_errno(call, r, "cannot run runc: %s", strerror(-r));
        }
        return 0;
}

static int method_shutdown(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        Shim *s = userdata;
        int r = ttrpc_call_reply(call, NULL);
        if (!s->containers)
                shim_request_exit(s);
        return r;
}

/* ---- Exec, CloseIO, ResizePty -------------------------------------------------------------------- */

static int method_exec(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__ExecProcessRequest *req = (const void *)msg;
        Shim *s = userdata;
        Process *init = lookup(s, call, req->id, NULL);
        Process *p = NULL;
        int r;

        if (!init)
                return 0;
        Container *c = init->c;
        if (!shim_valid_id(req->exec_id))
                return ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid exec id \"%s\"",
                                              req->exec_id);
        if (exec_find(c, req->exec_id))
                return ttrpc_call_reply_error(call, TTRPC_ALREADY_EXISTS, "id %s: already exists",
                                              req->exec_id);
        if (init->exited || init->reaped)
                return ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION, "container %s is not running",
                                              c->id);
        _cleanup_free_ char *json = NULL;
        r = spec_process_from_any(req->spec, &json);
        if (r < 0)
                return ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid exec process spec: %s",
                                              strerror(-r));
        r = process_new(c, req->exec_id, false, req->stdin, req->stdout, req->stderr, req->terminal, &p);
        if (r < 0)
                return ttrpc_call_reply_errno(call, r, "failed to create exec IO: %s", strerror(-r));
        p->spec_json = TAKE_PTR(json);
        p->next = c->execs;
        c->execs = p;
        ttrpc_call_reply(call, NULL);

        Containerd__Events__TaskExecAdded ev = CONTAINERD__EVENTS__TASK_EXEC_ADDED__INIT;
        ev.container_id = c->id;
        ev.exec_id = p->id;
        publish(s, "/tasks/exec-added", &ev.base);
        return 0;
}

static int method_close_io(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__CloseIORequest *req = (const void *)msg;
        Process *p = lookup(userdata, call, req->id, req->exec_id);
        if (!p)
                return 0;
        log_debug("CloseIO %s stdin=%d", p->id, req->stdin);
        if (req->stdin) {
                int r = process_io_close_stdin(p->io);
                if (r < 0)
                        return ttrpc_call_reply_errno(call, r, "close stdin of %s: %s", p->id, strerror(-r));
        }
        return ttrpc_call_reply(call, NULL);
}

static int method_resize_pty(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__ResizePtyRequest *req = (const void *)msg;
        Process *p = lookup(userdata, call, req->id, req->exec_id);
        if (!p)
                return 0;
        int r = process_io_resize(p->io, req->width, req->height);
        if (r < 0 && r != -ENOTTY)
                return ttrpc_call_reply_errno(call, r, "resize %s: %s", p->id, strerror(-r));
        return ttrpc_call_reply(call, NULL);
}

/* ---- Pause, Resume, Update --------------------------------------------------------------------- */

static void on_runc_pause(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        Container *c = container_find(op->shim, op->cid);
        bool pause = streq(op->eid, "pause");

        if (error || !c) {
                ttrpc_call_reply_error(op->call, c ? TTRPC_UNKNOWN : TTRPC_NOT_FOUND, "%s",
                                       error ? error : "container went away");
                op_free(op);
                return;
        }
        if (c->init->state == ST_RUNNING || c->init->state == ST_PAUSED)
                c->init->state = pause ? ST_PAUSED : ST_RUNNING;
        ttrpc_call_reply(op->call, NULL);
        if (pause) {
                Containerd__Events__TaskPaused ev = CONTAINERD__EVENTS__TASK_PAUSED__INIT;
                ev.container_id = c->id;
                publish(op->shim, "/tasks/paused", &ev.base);
        } else {
                Containerd__Events__TaskResumed ev = CONTAINERD__EVENTS__TASK_RESUMED__INIT;
                ev.container_id = c->id;
                publish(op->shim, "/tasks/resumed", &ev.base);
        }
        op_free(op);
}

static int pause_resume(TtrpcCall *call, Shim *s, const char *id, bool pause) {
        Process *p = lookup(s, call, id, NULL);
        if (!p)
                return 0;
        if (process_state(p) != (pause ? ST_RUNNING : ST_PAUSED))
                return ttrpc_call_reply_error(call, TTRPC_UNKNOWN, "container %s is not %s", id,
                                              pause ? "running" : "paused");
        /* The op's exec id slot carries which of the two this is. */
        Op *op = op_new(s, call, id, pause ? "pause" : "resume");
        if (!op)
                return -ENOMEM;
        char *args[] = {pause ? (char *)"pause" : (char *)"resume", p->c->id, NULL};
        int r = run_op(p->c, op, args, NULL, on_runc_pause);
        return r < 0 ? ttrpc_call_reply_errno(call, r, "cannot run runc: %s", strerror(-r)) : 0;
}

static int method_pause(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        return pause_resume(call, userdata, ((const Containerd__Task__V2__PauseRequest *)msg)->id, true);
}

static int method_resume(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        return pause_resume(call, userdata, ((const Containerd__Task__V2__ResumeRequest *)msg)->id, false);
}

static int method_update(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__UpdateTaskRequest *req = (const void *)msg;
        Shim *s = userdata;
        Process *p = lookup(s, call, req->id, NULL);
        _cleanup_free_ char *json = NULL;

        if (!p)
                return 0;
        int r = spec_resources_from_any(req->resources, &json);
        if (r < 0)
                return ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid resources: %s",
                                              strerror(-r));
        Op *op = op_new(s, call, req->id, NULL);
        if (!op)
                return -ENOMEM;
        char *args[] = {(char *)"update", (char *)"--resources", (char *)"-", p->c->id, NULL};
        RuncSpawn spawn = {.stdio = {-1, -1, -1}, .input = json, .input_len = strlen(json)};
        r = run_op(p->c, op, args, &spawn, on_runc_simple);
        return r < 0 ? ttrpc_call_reply_errno(call, r, "cannot run runc: %s", strerror(-r)) : 0;
}

/* ---- Checkpoint -------------------------------------------------------------------------------- */

static void checkpoint_done(Op *op) {
        ttrpc_call_reply(op->call, NULL);
        Containerd__Events__TaskCheckpointed ev = CONTAINERD__EVENTS__TASK_CHECKPOINTED__INIT;
        ev.container_id = op->cid;
        ev.checkpoint = op->checkpoint_id ? op->checkpoint_id : op->path;
        publish(op->shim, "/tasks/checkpointed", &ev.base);
        op_free(op);
}

static int copy_images(const void *arg) {
        const Op *op = arg;
        return copy_dir_files(op->src, op->dst);
}

static void on_images_copied(pid_t pid, int status, int64_t at, void *userdata) {
        Op *op = userdata;
        if (status != 0) {
                ttrpc_call_reply_error(
                        op->call, TTRPC_UNKNOWN,
                        "checkpoint %s of %s is in kybernated, but copying its images to %s failed: %s",
                        op->checkpoint_id, op->cid, op->path, status < 128 ? strerror(status) : "killed");
                op_free(op);
                return;
        }
        checkpoint_done(op);
}

static void on_daemon_checkpoint(int r, const Kybernate__V1__Response *resp, void *userdata) {
        Op *op = userdata;
        const Kybernate__V1__CheckpointInfo *info =
                r >= 0 && resp->result_case == KYBERNATE__V1__RESPONSE__RESULT_CHECKPOINT && resp->checkpoint
                        ? resp->checkpoint->info
                        : NULL;

        if (r < 0 || !info || isempty(info->id) || isempty(info->path)) {
                ttrpc_call_reply_error(op->call, r < 0 ? code_of_daemon_error(r) : TTRPC_INTERNAL,
                                       "checkpoint of %s failed: %s", op->cid,
                                       r < 0 ? daemon_message(r, resp)
                                             : "kybernated returned no checkpoint");
                op_free(op);
                return;
        }
        if (!(op->checkpoint_id = strdup(info->id)))
                goto oom;
        log_info("Checkpoint %s of %s taken by kybernated", info->id, op->cid);
        if (isempty(op->path)) /* a caller that wants the catalog entry only */
                return checkpoint_done(op);
        /* containerd's own flow stores what it finds in path in its content store. */
        if (asprintf(&op->images, "%s/checkpoint", info->path) < 0) {
                op->images = NULL;
                goto oom;
        }
        op->src = op->images;
        op->dst = op->path;
        r = fork_call(op->shim->reaper, copy_images, op, on_images_copied, op);
        if (r >= 0)
                return;
oom:
        ttrpc_call_reply_error(op->call, TTRPC_INTERNAL, "checkpoint of %s: cannot copy its images",
                               op->cid);
        op_free(op);
}

static void on_runc_checkpoint(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        _cleanup_free_ char *log = NULL;

        if (!error)
                return checkpoint_done(op);
        if (keep_criu_log(op->work, "dump.log", op->cid, &log) >= 0)
                ttrpc_call_reply_error(op->call, TTRPC_UNKNOWN, "%s (CRIU log: %s)", error, log);
        else
                ttrpc_call_reply_error(op->call, TTRPC_UNKNOWN, "%s", error);
        op_free(op);
}

/* Without kybernated the checkpoint still works as with the runc shim, only uncatalogued. */
static int checkpoint_with_runc(Container *c, Op *op, const CheckpointOpts *o) {
        char *args[32];
        size_t n = 0;

        if ((o->work_path ? !(op->work = strdup(o->work_path))
                          : asprintf(&op->work, "%s/work/criu-work", c->bundle) < 0)) {
                op->work = NULL;
                op_free(op);
                return -ENOMEM;
        }
        args[n++] = (char *)"checkpoint";
        args[n++] = (char *)"--image-path";
        args[n++] = op->path;
        args[n++] = (char *)"--work-path";
        args[n++] = op->work;
        if (o->open_tcp)
                args[n++] = (char *)"--tcp-established";
        if (o->external_unix_sockets)
                args[n++] = (char *)"--ext-unix-sk";
        if (o->terminal)
                args[n++] = (char *)"--shell-job";
        if (o->file_locks)
                args[n++] = (char *)"--file-locks";
        STRV_FOREACH (ns, o->empty_namespaces) {
                if (n + 4 >= ELEMENTSOF(args))
                        break;
                args[n++] = (char *)"--empty-ns";
                args[n++] = *ns;
        }
        if (!o->exit)
                args[n++] = (char *)"--leave-running";
        args[n++] = c->id;
        args[n] = NULL;
        return run_op(c, op, args, NULL, on_runc_checkpoint);
}

static int method_checkpoint(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
        const Containerd__Task__V2__CheckpointTaskRequest *req = (const void *)msg;
        Shim *s = userdata;
        Process *p = lookup(s, call, req->id, NULL);
        CheckpointOpts o;
        int r;

        if (!p)
                return 0;
        int st = process_state(p);
        if (st != ST_RUNNING && st != ST_PAUSED)
                return ttrpc_call_reply_error(call, TTRPC_FAILED_PRECONDITION, "container %s is not running",
                                              req->id);
        if (!isempty(req->path) && req->path[0] != '/')
                return ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT,
                                              "checkpoint path must be absolute");
        r = checkpoint_options_from_any(req->options, &o);
        if (r < 0)
                return ttrpc_call_reply_error(call, TTRPC_INVALID_ARGUMENT, "invalid checkpoint options: %s",
                                              strerror(-r));
        Op *op = op_new(s, call, req->id, NULL);
        if (!op || !(op->path = strdup(req->path ? req->path : ""))) {
                if (op)
                        op_free(op);
                checkpoint_options_done(&o);
                return -ENOMEM;
        }

        Kybernate__V1__CheckpointOptions ko = KYBERNATE__V1__CHECKPOINT_OPTIONS__INIT;
        ko.has_leave_running = ko.has_tcp_established = ko.has_ext_unix_sk = true;
        ko.has_file_locks = ko.has_shell_job = true;
        ko.leave_running = !o.exit;
        ko.tcp_established = o.open_tcp;
        ko.ext_unix_sk = o.external_unix_sockets;
        ko.file_locks = o.file_locks;
        ko.shell_job = o.terminal;
        Kybernate__V1__CheckpointRequest cr = KYBERNATE__V1__CHECKPOINT_REQUEST__INIT;
        cr.containerd_namespace = s->ns;
        cr.container_id = p->c->id;
        cr.runc_root = p->c->runc.root;
        cr.options = &ko;
        Kybernate__V1__Request kr = KYBERNATE__V1__REQUEST__INIT;
        kr.op_case = KYBERNATE__V1__REQUEST__OP_CHECKPOINT;
        kr.checkpoint = &cr;
        r = kyb_client_call_async(s->event, NULL, &kr, CHECKPOINT_TIMEOUT_USEC, NULL, on_daemon_checkpoint,
                                  op, NULL);
        if (r < 0) {
                if (isempty(op->path)) {
                        op_free(op);
                        checkpoint_options_done(&o);
                        return ttrpc_call_reply_error(call, TTRPC_UNAVAILABLE,
                                                      "kybernated is not running (cannot connect to %s: %s)",
                                                      kyb_socket_path(), strerror(-r));
                }
                log_warning("kybernated is not running (%s: %s): checkpointing %s with runc alone, "
                            "it will not be in the catalog",
                            kyb_socket_path(), strerror(-r), p->c->id);
                r = checkpoint_with_runc(p->c, op, &o);
                if (r < 0)
                        ttrpc_call_reply_errno(call, r, "cannot run runc: %s", strerror(-r));
        }
        checkpoint_options_done(&o);
        return 0;
}

/* ---- registration and exit --------------------------------------------------------------------- */

#define M(name, type, fn) \
        { name, &containerd__task__v2__##type##__descriptor, fn }
static const TtrpcMethod task_methods[] = {
        M("State", state_request, method_state),
        M("Create", create_task_request, method_create),
        M("Start", start_request, method_start),
        M("Delete", delete_request, method_delete),
        M("Pids", pids_request, method_pids),
        M("Pause", pause_request, method_pause),
        M("Resume", resume_request, method_resume),
        M("Checkpoint", checkpoint_task_request, method_checkpoint),
        M("Kill", kill_request, method_kill),
        M("Exec", exec_process_request, method_exec),
        M("ResizePty", resize_pty_request, method_resize_pty),
        M("CloseIO", close_iorequest, method_close_io),
        M("Update", update_task_request, method_update),
        M("Wait", wait_request, method_wait),
        M("Stats", stats_request, method_stats),
        M("Connect", connect_request, method_connect),
        M("Shutdown", shutdown_request, method_shutdown),
};
#undef M

int shim_service_register(Shim *s) {
        /* containerd 2.x speaks v3 when asked to; the messages are the same. */
        int r = ttrpc_server_add_service(s->server, "containerd.task.v2.Task", task_methods,
                                         ELEMENTSOF(task_methods), s);
        if (r < 0)
                return r;
        return ttrpc_server_add_service(s->server, "containerd.task.v3.Task", task_methods,
                                        ELEMENTSOF(task_methods), s);
}

void shim_service_done(Shim *s) {
        while (s->containers) {
                Container *c = s->containers;
                s->containers = c->next;
                container_free(c);
        }
}

static int on_exit_check(sd_event_source *src, uint64_t usec, void *userdata) {
        Shim *s = userdata;
        if (publisher_queued(s->publisher) == 0 || now_monotonic_usec() >= s->exit_deadline_usec)
                return sd_event_exit(s->event, 0);
        return sd_event_source_set_time_relative(src, 20 * USEC_PER_MSEC) < 0
                       ? sd_event_exit(s->event, 0)
                       : sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
}

void shim_request_exit(Shim *s) {
        if (s->exiting)
                return;
        s->exiting = true;
        s->exit_deadline_usec = now_monotonic_usec() + EXIT_FLUSH_USEC;
        ttrpc_server_stop_listening(s->server);
        if (s->socket_path)
                (void)unlink(s->socket_path);
        /* Give queued events (the last exit and delete) a moment to reach containerd. */
        if (sd_event_add_time_relative(s->event, NULL, CLOCK_MONOTONIC, 1, 0, on_exit_check, s) < 0)
                (void)sd_event_exit(s->event, 0);
}
