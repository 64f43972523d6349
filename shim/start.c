/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>

#include "blocking.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "log.h"
#include "netlock.h"
#include "restore.h"
#include "start.h"
#include "util.h"

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

void start_on_spawned(int status, const char *out, size_t len, const char *error, void *userdata) {
        Op *op = userdata;
        Process *p = op_process(op);
        _cleanup_free_ char *pidfile = NULL;

        /* A pod member restored (or not): the pod's loopback TCP is released once all are back. */
        if (p && p->init && p->c->netlock)
                netlock_release_when_complete(op->shim, TAKE_PTR(p->c->netlock));

        if (!p) {
                ttrpc_call_reply_error(op->call, TTRPC_NOT_FOUND, "container went away during start");
                goto out;
        }
        if (error) {
                _cleanup_free_ char *log = NULL, *msg = NULL;
                if (p->init && op->work && keep_criu_log(op->work, "restore.log", p->c->id, &log) >= 0 &&
                    asprintf(&msg, "%s (CRIU log: %s)", error, log) >= 0)
                        error = msg;
                if (p->init && p->c->checkpoint) {
                        /* A killed restore leaves the rootfs bound at criu-root: detach now,
                         * whoever removes the directories next. */
                        int r = container_detach_leftovers(p->c);
                        if (r < 0)
                                log_warning_errno(
                                        r, "Failed to detach the mounts left by the restore of %s: %m",
                                        p->c->id);
                }
                start_failed(op, p, p->init ? "restore" : "exec", error);
                goto out;
        }
        if (asprintf(&pidfile, "%s/%s.pid", p->c->bundle, p->init ? "init" : p->id) < 0 ||
            read_pid_file(pidfile, &p->pid) < 0 || process_watch(p) < 0) {
                start_failed(op, p, "start", "cannot read the pid file runc wrote");
                goto out;
        }
        (void)process_io_started(p->io);
        start_done(op, p);
out:
        op_free(op);
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
        return run_op(c, op, args, &spawn, start_on_spawned);
}

int method_start(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
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
                r = restore_start(c, op, start_on_spawned);
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
