/* SPDX-License-Identifier: Apache-2.0 */
#include "checkpoint.h"
#include "blocking.h"
#include "containerd/events/task.pb-c.h"
#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "kyb-client.h"
#include "log.h"
#include "process.h"
#include "runc-args.h"
#include "util.h"

/* A checkpoint of a large process takes a while. */
#define CHECKPOINT_TIMEOUT_USEC (USEC_PER_SEC * 30 * 60)

void checkpoint_options_done(CheckpointOpts *o) {
        strv_free(o->empty_namespaces);
        free(o->work_path);
        *o = (CheckpointOpts){};
}

int checkpoint_options_from_any(const Google__Protobuf__Any *any, CheckpointOpts *ret) {
        CheckpointOpts o = {};

        *ret = o;
        if (!any || isempty(any->type_url))
                return 0;
        if (!streq(any->type_url, CHECKPOINT_OPTIONS_TYPE))
                return -EINVAL;
        Containerd__Runc__V1__CheckpointOptions *m =
                containerd__runc__v1__checkpoint_options__unpack(NULL, any->value.len, any->value.data);
        if (!m)
                return -EBADMSG;
        o.exit = m->exit;
        o.open_tcp = m->open_tcp;
        o.external_unix_sockets = m->external_unix_sockets;
        o.terminal = m->terminal;
        o.file_locks = m->file_locks;
        int r = 0;
        if (m->n_empty_namespaces > 16)
                r = -E2BIG;
        if (r >= 0 && !isempty(m->work_path)) {
                if (m->work_path[0] != '/')
                        r = -EINVAL;
                else if (!(o.work_path = strdup(m->work_path)))
                        r = -ENOMEM;
        }
        if (r >= 0 && m->n_empty_namespaces > 0) {
                o.empty_namespaces = calloc(m->n_empty_namespaces + 1, sizeof(char *));
                for (size_t i = 0; o.empty_namespaces && i < m->n_empty_namespaces; i++)
                        if (!(o.empty_namespaces[i] = strdup(m->empty_namespaces[i])))
                                r = -ENOMEM;
                if (!o.empty_namespaces)
                        r = -ENOMEM;
        }
        containerd__runc__v1__checkpoint_options__free_unpacked(m, NULL);
        if (r < 0) {
                checkpoint_options_done(&o);
                return r;
        }
        *ret = o;
        return 0;
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

/* CRIU's log and statistics, which runc's CRIU writes into containerd's work path (it
 * gives one to runc's runtime type only): kubelet's archive carries them at its top. */
static char *const work_files[] = {(char *)"dump.log", (char *)"stats-dump", NULL};

static int copy_images(const void *arg) {
        const Op *op = arg;
        _cleanup_free_ char *images = NULL;
        if (asprintf(&images, "%s/checkpoint", op->images) < 0)
                return -ENOMEM;
        int r = copy_dir_files(images, op->path, NULL);
        if (r < 0 || !op->work)
                return r;
        r = mkdir_p(op->work, 0700); /* as runc makes it for CRIU */
        return r < 0 ? r : copy_dir_files(op->images, op->work, work_files);
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
        if (!(op->images = strdup(info->path)))
                goto oom;
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
        _cleanup_free_ char **args = NULL;
        Argv a = {};

        if (!op->work && asprintf(&op->work, "%s/work/criu-work", c->bundle) < 0) {
                op->work = NULL;
                op_free(op);
                return -ENOMEM;
        }
        const RuncCheckpointOptions co = {
                .criu = {.image_path = op->path,
                         .work_path = op->work,
                         .tcp_established = o->open_tcp,
                         .ext_unix_sk = o->external_unix_sockets,
                         .shell_job = o->terminal,
                         .file_locks = o->file_locks,
                         .empty_ns = o->empty_namespaces},
                .leave_running = !o->exit,
        };
        runc_add_checkpoint(&a, &co, c->id);
        int r = argv_take(&a, &args);
        if (r < 0) {
                op_free(op);
                return r;
        }
        return run_op(c, op, args, NULL, on_runc_checkpoint);
}

int method_checkpoint(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
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
        op->work = TAKE_PTR(o.work_path);

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
