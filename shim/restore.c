/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <sys/stat.h>

#include "blocking.h"
#include "cri-scan.h"
#include "image-ref.h"
#include "kyb-client.h"
#include "log.h"
#include "netlock.h"
#include "pod-volumes.h"
#include "restore.h"
#include "rootfs-diff.h"
#include "runc-args.h"
#include "util.h"

/* kybernated answers a resolve of a local checkpoint after its checksum;
 * one of a registry image may first pull it, which takes as long as the
 * network does. */
#define RESOLVE_TIMEOUT_USEC (30 * USEC_PER_SEC)
#define RESOLVE_PULL_TIMEOUT_USEC (15 * 60 * USEC_PER_SEC)

int restore_reference(const Spec *spec, const char **ret) {
        *ret = NULL;
        /* A pod's sandbox (pause) container gets the pod's annotations too
         * (the runtime's pod_annotations): it is never restored, its
         * containers are. */
        if (streq_ptr(spec_annotation(spec, "io.kubernetes.cri.container-type"), "sandbox"))
                return 0;
        const char *ref = spec_env(spec, RESTORE_ENV);
        if (!ref)
                ref = spec_annotation(spec, RESTORE_ANNOTATION);
        *ret = NULL;
        if (!ref)
                return 0;
        size_t l = strlen(ref);
        if (l == 0 || l > RESTORE_REFERENCE_MAX)
                return -EINVAL;
        for (size_t i = 0; i < l; i++)
                if ((unsigned char)ref[i] < 0x20 || ref[i] == 0x7f)
                        return -EINVAL;
        *ret = ref;
        return 1;
}

static char *annotation_or_empty(const Spec *spec, const char *key, const char *alt) {
        const char *v = spec_annotation(spec, key);
        if (!v && alt)
                v = spec_annotation(spec, alt);
        return (char *)(v ? v : "");
}

void restore_target_from_spec(const Spec *spec, const char *ns, const char *id,
                              Kybernate__V1__RestoreTarget *t) {
        kybernate__v1__restore_target__init(t);
        t->containerd_namespace = (char *)ns;
        t->container_id = (char *)id;
        t->k8s_namespace = annotation_or_empty(spec, "io.kubernetes.cri.sandbox-namespace",
                                               "io.kubernetes.pod.namespace");
        t->k8s_pod = annotation_or_empty(spec, "io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name");
        t->k8s_container =
                annotation_or_empty(spec, CRI_CONTAINER_NAME_ANNOTATION, "io.kubernetes.container.name");
        t->image_ref = annotation_or_empty(spec, "io.kubernetes.cri.image-name", NULL);
}

/* ---- restore from a kybernated checkpoint (RESTORE_FROM) ------------------------------------------ */

/* Never start a fresh process when a restore was asked for: every failure fails Create. */
static void restore_failed(Op *op, Container *c, int code, const char *fmt, ...) _printf_(4, 5);
static void restore_failed(Op *op, Container *c, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = strdup_vprintf(fmt, ap);
        va_end(ap);
        log_error("Restore of %s refused: %s", op->cid, msg ? msg : "out of memory");
        ttrpc_call_reply_error(op->call, code, "%s", msg ? msg : "restore failed");
        if (c)
                container_remove(op->shim, c);
        op_free(op);
}

static int apply_rootfs_diff(const void *arg) {
        const Op *op = arg;
        int r = rootfs_diff_apply(op->src, op->dst);
        if (r < 0)
                return r;
        /* A pod checkpoint's member also brings back the pod's emptyDir volumes. */
        const Container *c = container_find(op->shim, op->cid);
        _cleanup_free_ char *path = NULL, *spec = NULL;
        if (!c || asprintf(&path, "%s/config.json", c->bundle) < 0)
                return -ENOMEM;
        r = read_full_file(path, 16u << 20, &spec, NULL);
        return r < 0 ? r : pod_volumes_restore(op->src, spec);
}

/* The container once a forked step of the restore ended with status, or
 * NULL when the restore has failed (what: the step, "... of <id>"). */
static Container *step_done(Op *op, int status, const char *what) {
        Container *c = container_find(op->shim, op->cid);
        if (!c)
                restore_failed(op, NULL, TTRPC_NOT_FOUND, "container %s went away during create", op->cid);
        else if (status != 0)
                restore_failed(op, c, TTRPC_FAILED_PRECONDITION, "cannot %s %s: %s", what, c->id,
                               status < 128 ? strerror(status) : "killed");
        else
                return c;
        return NULL;
}

static void on_held(pid_t pid, int status, int64_t at, void *userdata) {
        Op *op = userdata;
        Container *c = step_done(op, status, "hold the pod's loopback TCP (iptables) for the restore of");
        if (!c)
                return;
        op->restore_ready(op, c);
        op_free(op);
}

static void on_rootfs_diff_applied(pid_t pid, int status, int64_t at, void *userdata) {
        Op *op = userdata;
        Container *c = step_done(op, status, "restore the checkpoint's files into the rootfs of");
        if (!c)
                return;
        /* A pod member: the pod's loopback TCP is held before its restore (netlock.h). */
        if (c->netlock) {
                int r = fork_call(op->shim->reaper, netlock_hold, c->netlock, on_held, op);
                if (r < 0)
                        restore_failed(op, c, TTRPC_INTERNAL, "cannot hold the pod's loopback TCP: %s",
                                       strerror(-r));
                return;
        }
        op->restore_ready(op, c);
        op_free(op);
}

/* Whether path is the node's network namespace, the shim's own (containerd's;
 * init's may not be readable): a host-network pod's containers join it
 * through the sandbox's /proc/PID/ns/net. */
static bool netns_is_host(const char *path) {
        struct stat a, b;
        return stat(path, &a) == 0 && stat("/proc/self/ns/net", &b) == 0 && a.st_dev == b.st_dev &&
               a.st_ino == b.st_ino;
}

/* A member of a pod checkpoint dumped with its TCP connections, restored into
 * a pod with its own network namespace, with other members to come. Never
 * the node's: its loopback is every process's on the node. */
static int pod_member_netlock(Container *c, const Kybernate__V1__ResolveResponse *rr) {
        const Kybernate__V1__CheckpointInfo *info = rr->info;
        if (!info || isempty(info->pod_checkpoint_id) || !c->restore_tcp || rr->n_pod_containers < 2 ||
            !c->spec.netns_path || !c->spec.sandbox_id || netns_is_host(c->spec.netns_path))
                return 0;
        return netlock_new(c->spec.netns_path, info->pod_checkpoint_id, rr->pod_containers,
                           rr->n_pod_containers, c->spec.sandbox_id, c->runc.root, &c->netlock);
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
        c->restore_tcp = rr->info && rr->info->options && rr->info->options->tcp_established;
        r = pod_member_netlock(c, rr);
        if (r < 0)
                return restore_failed(op, c, TTRPC_INTERNAL, "cannot restore pod member %s: %s", c->id,
                                      strerror(-r));
        log_info("Restoring %s from %s (%s)", c->id, ref, c->checkpoint);
        /* Files the process wrote into its rootfs come back before CRIU runs. */
        op->src = c->checkpoint_dir;
        op->dst = c->rootfs;
        r = fork_call(op->shim->reaper, apply_rootfs_diff, op, on_rootfs_diff_applied, op);
        if (r < 0)
                return restore_failed(op, c, TTRPC_INTERNAL, "cannot apply the checkpoint's files: %s",
                                      strerror(-r));
}

int restore_resolve(Container *c, Op *op, const char *ref, void (*ready)(Op *op, Container *c)) {
        Kybernate__V1__RestoreTarget target;
        Kybernate__V1__ResolveRequest rr = KYBERNATE__V1__RESOLVE_REQUEST__INIT;
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;

        op->restore_ready = ready;
        if (!(op->path = strdup(ref))) {
                restore_failed(op, c, TTRPC_INTERNAL, "out of memory");
                return 0;
        }
        restore_target_from_spec(&c->spec, c->shim->ns, c->id, &target);
        rr.reference = op->path;
        rr.target = &target;
        req.op_case = KYBERNATE__V1__REQUEST__OP_RESOLVE;
        req.resolve = &rr;
        /* A full checkpoint id the node does not have is pulled from its push_to repository. */
        bool may_pull =
                image_ref_is_registry(ref) || (strlen(ref) == 32 && strspn(ref, "0123456789abcdef") == 32);
        uint64_t timeout = may_pull ? RESOLVE_PULL_TIMEOUT_USEC : RESOLVE_TIMEOUT_USEC;
        int r = kyb_client_call_async(c->shim->event, NULL, &req, timeout, NULL, on_resolved, op, NULL);
        if (r < 0)
                restore_failed(
                        op, c, TTRPC_UNAVAILABLE,
                        "cannot restore %s from %s=%s: kybernated is not running (cannot connect to %s: %s)",
                        c->id, RESTORE_ENV, ref, kyb_socket_path(), strerror(-r));
        return 0;
}

/* ---- at Start: runc restore from the images ------------------------------------------------------ */

int restore_start(Container *c, Op *op, RuncDoneFn done) {
        _cleanup_free_ char *pidfile = NULL, *work = NULL;
        Process *p = c->init;

        if (asprintf(&pidfile, "%s/init.pid", c->bundle) < 0 ||
            (c->opts.criu_work_path ? !(work = strdup(c->opts.criu_work_path))
                                    : asprintf(&work, "%s/work", c->bundle) < 0)) {
                op_free(op);
                return -ENOMEM;
        }
        const RuncRestoreOptions ro = {
                .criu = {.image_path = c->checkpoint, .work_path = work, .tcp_established = c->restore_tcp},
                .bundle = c->bundle,
                .pid_file = pidfile,
                .console_socket = p->terminal ? process_io_console_socket(p->io) : NULL,
                .detach = true,
                .no_pivot = c->opts.no_pivot_root,
                .no_subreaper = true,
        };
        _cleanup_free_ char **args = NULL;
        Argv a = {};
        runc_add_restore(&a, &ro, c->id);
        int r = argv_take(&a, &args);
        if (r < 0) {
                op_free(op);
                return r;
        }
        op->work = strdup(work);
        RuncSpawn spawn = {};
        process_io_child_fds(p->io, spawn.stdio);
        return run_op(c, op, args, &spawn, done);
}
