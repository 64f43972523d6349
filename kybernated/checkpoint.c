/* SPDX-License-Identifier: Apache-2.0 */
/* The Checkpoint operation, a small state machine driven by child exits:
 *
 *   runc state  ->  (insert pending row; find the rootfs's overlay upper
 *   directory)  ->  [runc pause  ->  rootfs-diff.tar + deleted.files in a
 *   forked child]  ->  runc checkpoint  ->  [runc resume]  ->  write
 *   config.dump/spec.dump/stats-dump/kybernate.json  ->  checksum + fsync in a
 *   forked child  ->  row ready  ->  reply.
 *
 * The writable layer is saved before the dump, with the container frozen, so
 * the files and the memory image are of the same instant: with
 * --leave-running the container would otherwise change files between the two,
 * and with --exit containerd may delete the stopped container (and its
 * snapshot) before anything after the dump could read it. A container that is
 * frozen already (containerd pauses before it asks the shim to checkpoint) is
 * neither paused nor resumed by us; one we paused is resumed after a
 * --leave-running dump and after any failure.
 *
 * Any failure removes the directory and the row, after copying runc's output
 * and CRIU's dump.log to <store>/logs/, whose path the error message names.
 *
 * What kill -9 of the daemon leaves at each step, and what the next start
 * (recover.c, then manager_startup_cleanup) does with it. Our children die
 * with us (PR_SET_PDEATHSIG); runc's CRIU may not, and recovery kills any
 * process still holding a file of a pending checkpoint's directory first.
 *   - before the pending row: a directory without a row: removed.
 *   - pending row written, before or during `runc pause`: the row says
 *     "thaw" (the container was running) and where runc keeps it, durably
 *     for a daemon crash, before pause runs: recovery resumes the container,
 *     which is a no-op (runc refuses) if the pause had not happened yet. One
 *     found frozen at the start (containerd's pause) has no mark: left be.
 *   - paused, rootfs capture running: resumed, row and directory removed.
 *   - runc checkpoint running: CRIU holds the tasks (seized, the freezer
 *     frozen by it or by our pause); once it is gone the freezer may stay
 *     frozen: resumed like the above (--exit too: CRIU had not killed it).
 *   - dump done, runc resume running or not yet run: resumed.
 *   - metadata written, checksum or sync running: the dump is complete and
 *     the mark cleared with it (the container runs again or is gone): the
 *     row is completed in the same boot, removed after a reboot; the
 *     container is not touched (someone may pause it by then).
 *   - row ready: nothing left to do.
 * A pause that failed clears the mark: the container may have been paused
 * by someone else meanwhile.
 *
 * This file holds the request and the steps up to the dump; checkpoint-job.c
 * the job itself, its runc children and its two ends (job_finish after the
 * dump, job_fail on any failure). */
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "checkpoint-internal.h"
#include "log.h"
#include "metadata.h"
#include "mount-util.h"
#include "pod-volumes.h"
#include "resolve.h"
#include "spawn.h"

static void job_detach(void *userdata) {
        ((CheckpointJob *)userdata)->conn = NULL;
}

static int job_start_checkpoint(CheckpointJob *j);

static int on_capture_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        CheckpointJob *j = userdata;
        char buf[160] = "";
        int r = -EIO;
        unsigned long long entries = 0, deleted = 0, skipped = 0, bytes = 0, data = 0;
        uint64_t max = j->manager->config->max_rootfs_diff_bytes;

        j->child = sd_event_source_disable_unref(j->child);
        ssize_t k = read(j->capture_fd, buf, sizeof(buf) - 1);
        j->capture_fd = safe_close(j->capture_fd);
        if (si->si_code == CLD_EXITED && k > 0) {
                buf[k] = 0;
                if (sscanf(buf, "%d %llu %llu %llu %llu %llu", &r, &entries, &deleted, &skipped, &bytes,
                           &data) < 1)
                        r = -EIO;
        }
        if (r == -EFBIG && max > 0 && data > max) {
                char what[PATH_MAX + 160];
                snprintf(what, sizeof(what),
                         "writable layer %s is %llu bytes, over the limit of %" PRIu64
                         " bytes (max_rootfs_diff_bytes)",
                         j->overlay.upperdir, data, max);
                job_fail(j, r, what);
                return 0;
        }
        if (r < 0) {
                char what[PATH_MAX + 128];
                snprintf(what, sizeof(what), "saving the container's writable layer %s failed: %s",
                         j->overlay.upperdir, strerror(-r));
                job_fail(j, r, what);
                return 0;
        }
        j->diff_stats = (RootfsDiffStats){
                .entries = entries, .deleted = deleted, .skipped = skipped, .bytes = bytes};
        log_debug("Checkpoint %s: rootfs diff of %s: %llu entries, %llu deleted, %llu skipped, %llu bytes",
                  j->entry.id, j->overlay.upperdir, entries, deleted, skipped, bytes);
        r = job_start_checkpoint(j);
        if (r < 0)
                job_fail(j, r, "starting runc failed");
        return 0;
}

static void capture_child(void *userdata, int result_fd) {
        CheckpointJob *j = userdata;
        RootfsDiffStats st = {};
        int r = rootfs_diff_capture_limited(j->overlay.upperdir, j->overlay.userxattr, j->rootfs, j->dir,
                                            j->manager->config->max_rootfs_diff_bytes, &st);
        /* A pod's member: the pod's emptyDir volumes it mounts, of the same instant. */
        if (r >= 0 && j->member)
                r = pod_volumes_capture(j->spec, j->dir);
        char out[160];
        int n = snprintf(out, sizeof(out), "%d %llu %llu %llu %llu %llu\n", r,
                         (unsigned long long)st.entries, (unsigned long long)st.deleted,
                         (unsigned long long)st.skipped, (unsigned long long)st.bytes,
                         (unsigned long long)st.data_bytes);
        (void)!write(result_fd, out, (size_t)n);
}

/* Writes rootfs-diff.tar and deleted.files in a forked child: the upper
 * directory may be large, and the loop must not block on it. */
static int job_start_capture(CheckpointJob *j) {
        Manager *m = j->manager;
        pid_t pid;
        int r = spawn_fork(capture_child, j, &j->capture_fd, &pid);
        if (r < 0)
                return r;
        r = sd_event_add_child(m->event, &j->child, pid, WEXITED, on_capture_exit, j);
        if (r < 0) {
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                return r;
        }
        job_progress(j, "rootfs", "saving the container's writable layer");
        return 0;
}

static int on_checkpoint_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        CheckpointJob *j = userdata;

        j->child = sd_event_source_disable_unref(j->child);
        if (si->si_code != CLD_EXITED || si->si_status != 0) {
                char what[96];
                snprintf(what, sizeof(what), "runc checkpoint %s %d",
                         si->si_code == CLD_EXITED ? "exited with status" : "killed by signal",
                         si->si_status);
                job_fail(j, EIO, what);
                return 0;
        }
        if (j->member) {
                /* Still frozen: the pod thaws (or stops) its containers once all are dumped. */
                j->member_dumped = true;
                j->hooks->dumped(j->hooks_userdata, 0);
                job_finish(j);
                return 0;
        }
        if (!(j->entry.options & CKPT_OPT_LEAVE_RUNNING))
                j->we_paused = false; /* the dump ended the container */
        job_finish(j);                /* resumes it first if we paused it */
        return 0;
}

static int job_start_checkpoint(CheckpointJob *j) {
        _cleanup_free_ char *images = job_path(j, "checkpoint");
        _cleanup_free_ char *work = job_path(j, "work");
        if (!images || !work)
                return -ENOMEM;

        uint32_t o = j->entry.options;
        RuncCheckpointOptions co = {.criu = {.image_path = images,
                                             .work_path = work,
                                             .tcp_established = o & CKPT_OPT_TCP_ESTABLISHED,
                                             .ext_unix_sk = o & CKPT_OPT_EXT_UNIX_SK,
                                             .shell_job = o & CKPT_OPT_SHELL_JOB,
                                             .file_locks = o & CKPT_OPT_FILE_LOCKS},
                                    /* a pod stops its members itself, once all are dumped */
                                    .leave_running = (o & CKPT_OPT_LEAVE_RUNNING) || j->member};
        Argv a = {};
        job_add_runc(j, &a);
        runc_add_checkpoint(&a, &co, j->entry.container_id);
        int r = job_spawn(j, &a, on_checkpoint_exit);
        if (r >= 0)
                job_progress(j, "runc-checkpoint", "runc checkpoint running");
        return r;
}

static int on_pause_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        CheckpointJob *j = userdata;
        j->child = sd_event_source_disable_unref(j->child);
        j->we_paused = si->si_code == CLD_EXITED && si->si_status == 0;
        if (!j->we_paused) {
                /* Stopped meanwhile, or no freezer: the dump will tell. Or
                 * paused by someone else meanwhile: not ours to resume after
                 * a crash. */
                log_warning(
                        "Checkpoint %s: runc pause of %s failed, saving its writable layer while it runs",
                        j->entry.id, j->entry.container_id);
                if (j->entry.thaw && catalog_set_thaw(j->manager->catalog, j->entry.id, false) >= 0)
                        j->entry.thaw = false;
        }
        int r = job_start_capture(j);
        if (r < 0)
                job_fail(j, r, "starting the capture of the container's writable layer failed");
        return 0;
}

/* Before the dump: the writable layer, of the frozen container. */
static void job_before_dump(CheckpointJob *j, const char *state_json) {
        int r;
        if (!j->overlay.upperdir)
                r = job_start_checkpoint(j);
        else if (metadata_runc_state_frozen(state_json) == 1)
                r = job_start_capture(j);
        else {
                r = job_spawn_runc(j, "pause", on_pause_exit);
                if (r >= 0)
                        job_progress(j, "pause", "pausing the container to save its writable layer");
        }
        if (r < 0)
                job_fail(j, r, "starting runc or the capture failed");
}

/* Where the container's root filesystem is and whether it has an overlay
 * upper directory to save. Never fatal: without one there is just no diff
 * (rootfs_note says why, in kybernate.json). Reading mountinfo blocks only
 * briefly (a few hundred lines). The rootfs is looked up among our own mounts
 * (the shim and containerd mount it in the host's namespace), else as "/" of
 * the container's init process (a rootfs mounted in another namespace). */
static void job_find_rootfs(CheckpointJob *j, const char *spec, const char *state_json) {
        _cleanup_free_ char *root = NULL, *joined = NULL, *mountinfo = NULL;
        char *note = NULL;
        int r;

        r = metadata_spec_root_path(spec, &root);
        if (r < 0) {
                j->rootfs_note = strdup("the OCI spec has no root.path");
                return;
        }
        if (root[0] != '/' && asprintf(&joined, "%s/%s", j->entry.bundle, root) < 0)
                return;
        j->rootfs = realpath(joined ? joined : root, NULL);
        if (!j->rootfs) {
                r = negative_errno();
                if (asprintf(&note, "the rootfs %s is not accessible: %s", joined ? joined : root,
                             strerror(-r)) >= 0)
                        j->rootfs_note = note;
                return;
        }
        r = read_full_file("/proc/self/mountinfo", 64u << 20, &mountinfo, NULL);
        if (r >= 0)
                r = rootfs_find_overlay(mountinfo, j->rootfs, &j->overlay);
        pid_t pid;
        if (r == -ENOENT && metadata_runc_state_pid(state_json, &pid) >= 0) {
                _cleanup_free_ char *path = NULL, *theirs = NULL;
                if (asprintf(&path, "/proc/%d/mountinfo", (int)pid) >= 0 &&
                    read_full_file(path, 64u << 20, &theirs, NULL) >= 0) {
                        int k = rootfs_find_overlay(theirs, "/", &j->overlay);
                        if (k >= 0)
                                r = k;
                }
        }
        if (r == 1)
                return;
        if (r == 0)
                r = asprintf(&note,
                             "the rootfs %s is %s, not an overlay with an upper directory: no diff saved",
                             j->rootfs, j->overlay.fstype ? j->overlay.fstype : "?");
        else if (r == -ENOENT)
                r = asprintf(&note, "the rootfs %s is not a mount point: no diff saved", j->rootfs);
        else
                r = asprintf(&note, "the mounts of %s could not be read (%s): no diff saved", j->rootfs,
                             strerror(-r));
        if (r >= 0)
                j->rootfs_note = note;
}

/* With the container's runc state in hand: identity, pending row, runc. */
static int job_continue_with_state(CheckpointJob *j, const char *state_json, const char *what) {
        Manager *m = j->manager;
        _cleanup_free_ char *bundle = NULL, *spec_path = NULL, *spec = NULL;
        int r;

        r = metadata_parse_runc_state(state_json, &bundle, &j->created);
        if (r < 0) {
                char msg[128];
                snprintf(msg, sizeof(msg), "could not parse %s", what);
                job_fail(j, EBADMSG, msg);
                return -EBADMSG;
        }
        if (asprintf(&spec_path, "%s/config.json", bundle) < 0) {
                job_fail(j, ENOMEM, "out of memory");
                return -ENOMEM;
        }
        r = read_full_file(spec_path, SPEC_MAX_BYTES, &spec, NULL);
        if (r < 0 || metadata_from_spec(spec, &j->entry) < 0) {
                job_fail(j, r < 0 ? r : EBADMSG, "could not read the container's OCI spec");
                return -EBADMSG;
        }
        j->entry.bundle = TAKE_PTR(bundle);
        job_find_rootfs(j, spec, state_json);
        j->spec = TAKE_PTR(spec);
        /* Written with the row, so before we pause the container or CRIU
         * freezes it: should the daemon die, start-up recovery thaws exactly
         * the containers that ran (see the top of this file). */
        j->entry.thaw = metadata_runc_state_frozen(state_json) == 0;
        j->entry.runc_root = strdup(j->runc_root);
        /* Marked with the row, so a kill before the push is done leaves it to do at start-up (push.h). */
        j->entry.push_pending = m->config->push_to != NULL && !j->member;
        if (!j->entry.runc_root) {
                job_fail(j, ENOMEM, "out of memory");
                return -ENOMEM;
        }

        r = catalog_insert(m->catalog, &j->entry);
        if (r < 0) {
                job_fail(j, r,
                         r == -EEXIST ? "the name is taken by another checkpoint" : "catalog insert failed");
                return r;
        }
        j->row_inserted = true;
        if (!j->member) /* a member waits for its pod to freeze it */
                job_before_dump(j, state_json);
        return 0;
}

static int on_state_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        CheckpointJob *j = userdata;

        j->child = sd_event_source_disable_unref(j->child);
        _cleanup_free_ char *out_path = job_path(j, "work/runc-state.json");
        _cleanup_free_ char *out = NULL;
        if (!out_path) {
                job_fail(j, ENOMEM, "out of memory");
                return 0;
        }
        if (si->si_code != CLD_EXITED || si->si_status != 0) {
                _cleanup_free_ char *last = file_last_line(out_path);
                char what[640];
                snprintf(what, sizeof(what), "container %s not found under runc root %s%s%s",
                         j->entry.container_id, j->runc_root, last ? ": " : "", last ? last : "");
                (void)unlink(out_path);
                job_fail(j, ENOENT, what);
                return 0;
        }
        int r = read_full_file(out_path, 1 << 20, &out, NULL);
        (void)unlink(out_path);
        if (r < 0) {
                job_fail(j, r, "could not read `runc state` output");
                return 0;
        }
        (void)job_continue_with_state(j, out, "`runc state` output");
        return 0;
}

/* runc keeps <root>/<id>/state.json; reading it saves starting runc (a Go
 * program: milliseconds) on every checkpoint. Any doubt: ask `runc state`. */
static char *read_runc_state_file(CheckpointJob *j) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/%s/state.json", j->runc_root, j->entry.container_id) < 0)
                return NULL;
        if (read_full_file(path, 4u << 20, &text, NULL) < 0)
                return NULL;
        _cleanup_free_ char *bundle = NULL, *created = NULL;
        if (metadata_parse_runc_state(text, &bundle, &created) < 0)
                return NULL;
        return TAKE_PTR(text);
}

bool checkpoint_request_valid(Connection *c, const Kybernate__V1__CheckpointRequest *req) {
        Manager *m = c->manager;
        if (!isempty(req->name) && !ident_valid(req->name, NAME_MAX_LEN)) {
                connection_send_error(c, EINVAL, "invalid name: use 1-%d characters of [A-Za-z0-9._-]",
                                      NAME_MAX_LEN);
                return false;
        }
        if (!isempty(req->runc_root) && !path_allowed(req->runc_root, (char *[]){(char *)"/", NULL})) {
                connection_send_error(c, EINVAL, "runc_root must be an absolute normalized path");
                return false;
        }
        if (!isempty(req->image_ref) && !image_ref_valid(req->image_ref)) {
                connection_send_error(c, EINVAL, "invalid image_ref: use 1-%d printable ASCII characters",
                                      IMAGE_REF_MAX);
                return false;
        }
        if (!isempty(req->name)) {
                CatalogEntry other = {};
                int r = catalog_get_by_name(m->catalog, req->name, &other);
                catalog_entry_done(&other);
                if (r >= 0) {
                        connection_send_error(c, EEXIST, "a checkpoint named '%s' exists already",
                                              req->name);
                        return false;
                }
        }
        if (m->no_spawn) {
                connection_send_error(c, EOPNOTSUPP, "checkpoints disabled in this instance");
                return false;
        }
        return true;
}

static uint32_t request_options(const Kybernate__V1__CheckpointOptions *o) {
        uint32_t options = 0;
        if (o) {
                options |= o->leave_running ? CKPT_OPT_LEAVE_RUNNING : 0;
                options |= o->tcp_established ? CKPT_OPT_TCP_ESTABLISHED : 0;
                options |= o->ext_unix_sk ? CKPT_OPT_EXT_UNIX_SK : 0;
                options |= o->file_locks ? CKPT_OPT_FILE_LOCKS : 0;
                options |= o->shell_job ? CKPT_OPT_SHELL_JOB : 0;
        }
        return options;
}

uint32_t checkpoint_request_options(const Kybernate__V1__CheckpointRequest *req) {
        return request_options(req->options);
}

int checkpoint_member_new(Manager *m, const char *pod_id, const char *containerd_namespace,
                          const char *container_id, const char *runc_root, const char *state_json,
                          uint32_t options, const CheckpointMemberHooks *hooks, void *userdata,
                          CheckpointJob **ret, char **ret_id) {
        int r;
        CheckpointJob *j = job_new(m, containerd_namespace, container_id, runc_root, options, &r);
        if (!j)
                return r;
        j->entry.pod_id = strdup(pod_id);
        char *id = strdup(j->entry.id);
        if (!j->entry.pod_id || !id) {
                free(id);
                (void)remove_tree_one_fs(j->dir);
                job_free(j);
                return -ENOMEM;
        }
        /* Hooks only once the row is in: a failure before that is returned. */
        j->member = true;
        r = job_continue_with_state(j, state_json, "runc's state.json");
        if (r < 0) {
                free(id);
                return r; /* j is gone, with its directory */
        }
        j->hooks = hooks;
        j->hooks_userdata = userdata;
        *ret = j;
        *ret_id = id;
        return 0;
}

void checkpoint_member_dump(CheckpointJob *j) {
        int r = j->overlay.upperdir ? job_start_capture(j) : job_start_checkpoint(j);
        if (r < 0)
                job_fail(j, r, "starting runc or the capture failed");
}

void checkpoint_member_cancel(CheckpointJob *j, const char *why) {
        job_fail(j, ECANCELED, why);
}

void op_checkpoint(Connection *c, const Kybernate__V1__CheckpointRequest *req) {
        Manager *m = c->manager;
        int r;

        if (!isempty(req->pod)) {
                op_pod_checkpoint(c, req);
                return;
        }
        if (!ident_valid(req->containerd_namespace, IDENT_MAX_LEN) ||
            !ident_valid(req->container_id, IDENT_MAX_LEN)) {
                connection_send_error(
                        c, EINVAL,
                        "containerd_namespace and container_id are required: 1-%d characters of "
                        "[A-Za-z0-9._-]",
                        IDENT_MAX_LEN);
                return;
        }
        if (!checkpoint_request_valid(c, req))
                return;
        CheckpointJob *j = job_new(m, req->containerd_namespace, req->container_id, req->runc_root,
                                   request_options(req->options), &r);
        if (!j) {
                connection_send_error(c, r, "creating the checkpoint failed: %s", strerror(-r));
                return;
        }
        CatalogEntry *e = &j->entry;
        j->conn = c;
        e->pinned = req->has_pin && req->pin;
        e->allow_cross_namespace = req->has_allow_cross_namespace && req->allow_cross_namespace;
        if ((!isempty(req->name) && !(e->name = strdup(req->name))) ||
            (!isempty(req->image_ref) && !(e->image_ref = strdup(req->image_ref)))) {
                connection_send_error(c, ENOMEM, "out of memory");
                (void)remove_tree_one_fs(j->dir);
                job_free(j);
                return;
        }
        c->op = j;
        c->op_detach = job_detach;
        log_info("Checkpoint %s of %s/%s started (uid %u)", e->id, e->containerd_namespace, e->container_id,
                 (unsigned)c->cred.uid);

        _cleanup_free_ char *state = read_runc_state_file(j);
        if (state) {
                (void)job_continue_with_state(j, state, "runc's state.json");
                return;
        }
        _cleanup_free_ char *state_out = job_path(j, "work/runc-state.json");
        Argv a = {};
        job_add_runc(j, &a);
        argv_add(&a, "state");
        argv_add(&a, e->container_id);
        _cleanup_free_ char **argv = NULL;
        pid_t pid;
        r = state_out ? argv_take(&a, &argv) : -ENOMEM;
        if (r >= 0)
                r = spawn_logged(argv, state_out, &pid);
        if (r < 0) {
                job_fail(j, r, "starting runc failed");
                return;
        }
        r = sd_event_add_child(m->event, &j->child, pid, WEXITED, on_state_exit, j);
        if (r < 0) {
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                job_fail(j, r, "watching runc failed");
                return;
        }
}
