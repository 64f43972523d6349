/* SPDX-License-Identifier: Apache-2.0 */

#include <fcntl.h>
#include <sys/stat.h>

#include "containerd/events/task.pb-c.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "create.h"
#include "mount.h"
#include "restore.h"
#include "util.h"

/* ---- Create ------------------------------------------------------------------------------------ */

void create_reply(Op *op, Container *c) {
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
        if (asprintf(&pidfile, "%s/init.pid", c->bundle) < 0 || read_pid_file(pidfile, &c->init->pid) < 0 ||
            process_watch(c->init) < 0 || process_io_started(c->init->io) < 0) {
                ttrpc_call_reply_error(op->call, TTRPC_UNKNOWN, "container %s created but not usable",
                                       c->id);
                char *args[] = {(char *)"delete", (char *)"--force", c->id, NULL};
                if (container_detach_leftovers(c) >= 0)
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
                r = shim_options_save(req->options, c->bundle);
        if (r >= 0)
                r = shim_options_runc_config(&c->opts, s->ns, c->bundle, &c->runc);
        if (r >= 0)
                r = spec_load(c->bundle, &c->spec);
        if (r < 0) {
                container_free(c);
                return r;
        }
        if (c->spec.systemd_cgroup)
                c->runc.systemd_cgroup = true;
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

/* A checkpoint image run as a container's own image: its root holds the
 * checkpoint archive's layout (checkpoint/inventory.img and spec.dump), as
 * Podman, CRI-O, containerd 2.x and we write it. containerd 1.6 and 1.7
 * cannot restore from such an image and would start whatever command the
 * pod names in it. Only looked at, never followed: the root is the image's. */
static bool rootfs_is_checkpoint(const char *rootfs) {
        _cleanup_close_ int root = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return false;
        _cleanup_close_ int ck = openat(root, "checkpoint", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        return ck >= 0 && fstatat(ck, "inventory.img", &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
               S_ISREG(st.st_mode) && fstatat(root, "spec.dump", &st, AT_SYMLINK_NOFOLLOW) >= 0 &&
               S_ISREG(st.st_mode);
}

int method_create(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata) {
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
        if (!c->checkpoint && !ref && rootfs_is_checkpoint(c->rootfs)) {
                container_free(c);
                return ttrpc_call_reply_error(
                        call, TTRPC_FAILED_PRECONDITION,
                        "container %s: its image is a checkpoint image, which this containerd cannot restore "
                        "from; run the checkpointed container's own image and name the checkpoint image in "
                        "its %s environment variable (or the %s annotation)",
                        req->id, RESTORE_ENV, RESTORE_ANNOTATION);
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
                return restore_resolve(c, op, ref, create_reply);

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
