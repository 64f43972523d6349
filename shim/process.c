/* SPDX-License-Identifier: Apache-2.0 */

#include "process.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "log.h"
#include "mount.h"
#include "netlock.h"
#include "util.h"

/* Go's zero time, which containerd 1.6 expects in exited_at until a process exits. */
#define GO_ZERO_TIME_SECONDS (-62135596800LL)

#define ID_MAX 76

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

Container *container_find(Shim *s, const char *id) {
        for (Container *c = s->containers; c; c = c->next)
                if (streq(c->id, id))
                        return c;
        return NULL;
}

Process *exec_find(Container *c, const char *eid) {
        for (Process *p = c->execs; p; p = p->next)
                if (streq(p->id, eid))
                        return p;
        return NULL;
}

void process_free(Process *p) {
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

void container_free(Container *c) {
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
        netlock_free(c->netlock); /* the other members' shims release it */
        free(c);
}

void container_remove(Shim *s, Container *c) {
        for (Container **i = &s->containers; *i; i = &(*i)->next)
                if (*i == c) {
                        *i = c->next;
                        break;
                }
        container_free(c);
}

int container_detach_leftovers(Container *c) {
        return mount_detach_runc_leftovers(c->runc.root, c->id, c->bundle, c->opts.criu_work_path,
                                           c->opts.criu_image_path);
}

Op *op_new(Shim *s, TtrpcCall *call, const char *cid, const char *eid) {
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

void op_free(Op *op) {
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

int run_op(Container *c, Op *op, char *const *args, const RuncSpawn *spawn, RuncDoneFn cb) {
        static const RuncSpawn capture = {.stdio = {-1, -1, -1}};
        int r = runc_run(c->shim->event, c->shim->reaper, &c->runc, args, spawn ? spawn : &capture, cb, op);
        if (r < 0)
                op_free(op);
        return r;
}

Google__Protobuf__Timestamp timestamp_of(const Process *p) {
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        if (p && p->exited) {
                ts.seconds = p->exited_at_ns / (int64_t)NSEC_PER_SEC;
                ts.nanos = (int32_t)(p->exited_at_ns % (int64_t)NSEC_PER_SEC);
        } else
                ts.seconds = GO_ZERO_TIME_SECONDS;
        return ts;
}

void publish(Shim *s, const char *topic, const ProtobufCMessage *m) {
        int r = publisher_publish(s->publisher, topic, m);
        if (r < 0)
                log_error_errno(r, "Failed to queue %s event: %m", topic);
}

Process *lookup(Shim *s, TtrpcCall *call, const char *cid, const char *eid) {
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

bool execs_running(Container *c) {
        for (Process *p = c->execs; p; p = p->next)
                if (p->started && !p->exited)
                        return true;
        return false;
}

Process *op_process(Op *op) {
        Container *c = container_find(op->shim, op->cid);
        if (!c)
                return NULL;
        return isempty(op->eid) ? c->init : exec_find(c, op->eid);
}

int process_state(Process *p) {
        if (p->exited || (p->reaped && !p->starting && !p->exit_held))
                return ST_STOPPED;
        if (p->c->init->state == ST_PAUSED && p->state == ST_RUNNING)
                return ST_PAUSED;
        return p->state;
}

/* ---- exits ------------------------------------------------------------------------------------- */

static void process_exit_finish(Process *p);

/* NOLINTNEXTLINE(misc-no-recursion): an exec's drain finishes the init, whose drain stops (two levels) */
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

/* NOLINTNEXTLINE(misc-no-recursion): see on_io_drained */
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

void on_process_exit(pid_t pid, int status, int64_t at, void *userdata) {
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

int process_watch(Process *p) {
        return reaper_watch(p->c->shim->reaper, p->pid, on_process_exit, p);
}

/* ---- process set-up ---------------------------------------------------------------------------- */

int process_new(Container *c, const char *id, bool init, const char *in, const char *out, const char *err,
                bool terminal, Process **ret) {
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

int read_pid_file(const char *path, pid_t *ret) {
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

void io_args(Process *p, char **args, size_t *n) {
        const char *console = p->terminal ? process_io_console_socket(p->io) : NULL;
        if (console) {
                args[(*n)++] = (char *)"--console-socket";
                args[(*n)++] = (char *)console;
        }
}

/* ---- cgroup and OOM ----------------------------------------------------------------------------- */

void container_load_cgroup(Container *c) {
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

void container_watch_oom(Container *c) {
        container_load_cgroup(c);
        if (!c->cgroup || c->oom)
                return;
        int r = cgroup_oom_watch(c->shim->event, c->cgroup, on_oom, c, &c->oom);
        if (r < 0)
                log_warning_errno(r, "Cannot watch %s for OOM kills: %m", c->id);
}

/* ---- kybernated replies ---------------------------------------------------------------------- */

int code_of_daemon_error(int r) {
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

const char *daemon_message(int r, const Kybernate__V1__Response *resp) {
        return resp && !isempty(resp->message) ? resp->message : strerror(-r);
}
