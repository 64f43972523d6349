/* SPDX-License-Identifier: Apache-2.0 */
#include <cJSON.h>
#include <limits.h>

#include "checkpoint.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "create.h"
#include "log.h"
#include "mount.h"
#include "process.h"
#include "service.h"
#include "start.h"
#include "util.h"

#define EXIT_FLUSH_USEC (3 * USEC_PER_SEC)

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

/* ---- State, Wait, Connect, Pids ---------------------------------------------------------------- */

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
        if (GREEDY_REALLOC(p->waiters, p->alloc_waiters, p->n_waiters + 1, 4) < 0)
                return -ENOMEM;
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
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
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
        /* runc delete removes the state directory recursively: never through a mount. */
        int r = container_detach_leftovers(p->c);
        if (r < 0)
                return ttrpc_call_reply_errno(call, r,
                                              "cannot delete %s: cannot detach the mounts below its "
                                              "runc state or CRIU work directory: %s",
                                              p->c->id, strerror(-r));
        if (r > 0)
                log_warning("Detached %d mount(s) an interrupted restore left below the directories of %s",
                            r, p->c->id);
        Op *op = op_new(s, call, req->id, NULL);
        if (!op)
                return -ENOMEM;
        p->c->deleting = true;
        char *args[] = {(char *)"delete", (char *)"--force", p->c->id, NULL};
        r = run_op(p->c, op, args, NULL, on_runc_delete);
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
