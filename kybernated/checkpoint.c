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
 * by someone else meanwhile. */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "checkpoint.h"
#include "log.h"
#include "metadata.h"
#include "mount-util.h"
#include "ops.h"
#include "pod-volumes.h"
#include "push.h"
#include "resolve.h"
#include "rootfs-diff.h"
#include "runc-args.h"
#include "spawn.h"
#include "store.h"

typedef struct CheckpointJob {
        Manager *manager;
        Connection *conn; /* NULL once the client went away; the job goes on */
        CatalogEntry entry;
        char *dir; /* <store>/checkpoints/<id> */
        char *runc_root;
        char *created; /* container creation time from runc state */
        bool row_inserted;
        sd_event_source *child;
        int64_t started_usec;
        /* the container's root filesystem and what is saved of it */
        char *rootfs;
        RootfsOverlay overlay; /* .upperdir NULL: nothing to capture */
        char *rootfs_note;     /* why not */
        char *spec;            /* the OCI spec, read before the dump: containerd may remove the
                                * bundle as soon as an --exit dump has stopped the container */
        RootfsDiffStats diff_stats;
        int capture_fd; /* result pipe of the capture child */
        bool we_paused; /* resume the container before the job ends */
        int fail_error; /* a failure waiting for that resume */
        char *fail_what;
        /* A member of a pod checkpoint (checkpoint.h): frozen, thawed and
         * made ready by the pod, told of its progress through these. */
        const CheckpointMemberHooks *hooks;
        void *hooks_userdata;
        bool member;        /* a pod's (hooks set once its row is in) */
        bool member_dumped; /* hooks->dumped called */
} CheckpointJob;

static void job_free(CheckpointJob *j) {
        if (!j)
                return;
        j->manager->n_jobs--;
        sd_event_source_disable_unref(j->child);
        catalog_entry_done(&j->entry);
        free(j->dir);
        free(j->runc_root);
        free(j->created);
        free(j->fail_what);
        free(j->rootfs);
        rootfs_overlay_done(&j->overlay);
        free(j->rootfs_note);
        free(j->spec);
        safe_close(j->capture_fd);
        free(j);
}

static void job_detach(void *userdata) {
        ((CheckpointJob *)userdata)->conn = NULL;
}

static void job_progress(CheckpointJob *j, const char *stage, const char *message) {
        if (!j->conn)
                return;
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        Kybernate__V1__Progress p = KYBERNATE__V1__PROGRESS__INIT;
        p.stage = (char *)stage;
        p.message = (char *)message;
        resp.result_case = KYBERNATE__V1__RESPONSE__RESULT_PROGRESS;
        resp.progress = &p;
        (void)connection_send(j->conn, &resp, false);
}

static char *job_path(CheckpointJob *j, const char *rel) {
        char *p;
        return asprintf(&p, "%s/%s", j->dir, rel) < 0 ? NULL : p;
}

/* Copies src to dst (small logs and metadata), not synced (see job_write_metadata). */
static int copy_file(const char *src, const char *dst) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r = read_full_file(src, 64u << 20, &data, &size);
        if (r < 0)
                return r;
        return write_file_replace(dst, data, size, 0600, false);
}

static char *free_null(char *s) {
        free(s);
        return NULL;
}

static int job_spawn_runc(CheckpointJob *j, const char *verb, sd_event_child_handler_t handler);
static void job_fail(CheckpointJob *j, int error, const char *what);

static void job_finish(CheckpointJob *j);

/* After the runc resume of a container we paused: the failure it was part
 * of (fail_what set), or the rest of a successful checkpoint. */
static int on_resumed(sd_event_source *s, const siginfo_t *si, void *userdata) {
        CheckpointJob *j = userdata;
        j->child = sd_event_source_disable_unref(j->child);
        if (si->si_code != CLD_EXITED || si->si_status != 0)
                log_error("Checkpoint %s: runc resume failed, container %s is left paused", j->entry.id,
                          j->entry.container_id);
        if (j->fail_what)
                job_fail(j, j->fail_error, j->fail_what);
        else
                job_finish(j);
        return 0;
}

/* Ends the job with an error: resumes the container if we paused it, keeps
 * the logs, removes files and row. */
static void job_fail(CheckpointJob *j, int error, const char *what) {
        Manager *m = j->manager;

        if (j->we_paused) {
                j->we_paused = false;
                j->fail_error = error;
                j->fail_what = strdup(what);
                if (j->fail_what && job_spawn_runc(j, "resume", on_resumed) >= 0)
                        return;
                log_error("Checkpoint %s: cannot resume container %s, it is left paused", j->entry.id,
                          j->entry.container_id);
        }
        _cleanup_free_ char *runc_log = job_path(j, "work/runc.log");
        _cleanup_free_ char *dump_log = job_path(j, "work/dump.log");
        _cleanup_free_ char *kept_runc = NULL, *kept_dump = NULL, *last = NULL;
        struct stat st;

        /* The images go first: on a full store this makes room for the logs
         * and for the catalog's journal. */
        _cleanup_free_ char *images = job_path(j, "checkpoint");
        if (images)
                (void)remove_tree_one_fs(images);

        if (runc_log && stat(runc_log, &st) >= 0 &&
            asprintf(&kept_runc, "%s/%s-runc.log", m->logs_dir, j->entry.id) >= 0 &&
            copy_file(runc_log, kept_runc) < 0)
                kept_runc = free_null(kept_runc);
        if (dump_log && stat(dump_log, &st) >= 0 &&
            asprintf(&kept_dump, "%s/%s-dump.log", m->logs_dir, j->entry.id) >= 0 &&
            copy_file(dump_log, kept_dump) < 0)
                kept_dump = free_null(kept_dump);
        if (runc_log)
                last = file_last_line(runc_log);

        int r = j->row_inserted ? manager_remove_checkpoint(m, j->entry.id) : remove_tree_one_fs(j->dir);
        if (r < 0)
                log_error_errno(r, "Failed to clean up checkpoint %s: %m", j->dir);

        log_error("Checkpoint of %s/%s failed: %s%s%s%s%s", j->entry.containerd_namespace,
                  j->entry.container_id, what, last ? ": " : "", last ? last : "",
                  kept_dump ? "; CRIU log kept at " : "", kept_dump ? kept_dump : "");
        if (j->hooks) {
                _cleanup_free_ char *msg = NULL;
                if (asprintf(&msg, "%s%s%s%s%s", what, last ? ": " : "", last ? last : "",
                             kept_dump ? "; CRIU log kept at " : "", kept_dump ? kept_dump : "") < 0)
                        msg = NULL;
                if (!j->member_dumped) {
                        j->member_dumped = true;
                        j->hooks->dumped(j->hooks_userdata, error > 0 ? -error : error);
                }
                j->hooks->done(j->hooks_userdata, error > 0 ? -error : error, 0, NULL, msg ? msg : what);
        }
        if (j->conn)
                connection_send_error(j->conn, error, "checkpoint of %s/%s failed: %s%s%s%s%s%s%s",
                                      j->entry.containerd_namespace, j->entry.container_id, what,
                                      last ? ": " : "", last ? last : "",
                                      kept_dump ? "; CRIU log kept at " : "", kept_dump ? kept_dump : "",
                                      kept_runc ? "; runc output kept at " : "", kept_runc ? kept_runc : "");
        job_free(j);
}

static void job_finished(int r, uint64_t size, const char *checksum, void *userdata) {
        CheckpointJob *j = userdata;
        Manager *m = j->manager;

        if (r < 0) {
                job_fail(j, r,
                         r == -ENOSPC ? "syncing the images failed: no space left on the store"
                                      : "computing the checksum / syncing the images failed");
                return;
        }
        /* The directory entry of <id> itself must be durable too. */
        if (m->config->durable && (r = store_fsync_path(m->checkpoints_dir)) < 0) {
                job_fail(j, r, "syncing the store directory failed");
                return;
        }
        if (j->member) {
                /* The pod makes it ready, with the others. */
                j->hooks->done(j->hooks_userdata, 0, size, checksum, NULL);
                job_free(j);
                return;
        }
        r = catalog_set_ready(m->catalog, j->entry.id, size, checksum);
        if (r < 0) {
                job_fail(j, r,
                         r == -ENOSPC ? "updating the catalog failed: no space left"
                                      : "updating the catalog failed");
                return;
        }
        j->entry.state = CHECKPOINT_READY;
        j->entry.size_bytes = size;
        free(j->entry.checksum);
        j->entry.checksum = strdup(checksum);
        log_info("Checkpoint %s of %s/%s ready: %" PRIu64 " bytes in %" PRIu64 " ms%s", j->entry.id,
                 j->entry.containerd_namespace, j->entry.container_id, size,
                 (now_monotonic_usec() - (uint64_t)j->started_usec) / USEC_PER_MSEC,
                 m->config->durable ? "" : " (not synced: durable=no)");

        if (j->conn) {
                _cleanup_free_ char *path = NULL;
                Kybernate__V1__CheckpointInfo info;
                Kybernate__V1__CheckpointOptions opts;
                Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
                Kybernate__V1__CheckpointResponse ck = KYBERNATE__V1__CHECKPOINT_RESPONSE__INIT;
                (void)manager_checkpoint_dir(m, j->entry.id, &path);
                entry_to_info(&j->entry, path, &info, &opts);
                ck.info = &info;
                resp.result_case = KYBERNATE__V1__RESPONSE__RESULT_CHECKPOINT;
                resp.checkpoint = &ck;
                (void)connection_send(j->conn, &resp, true);
        }
        if (j->entry.push_pending)
                push_checkpoint(m, j->entry.id);
        job_free(j);
}

/* After runc checkpoint succeeded: the files around the images. */
static int job_write_metadata(CheckpointJob *j) {
        int r;
        _cleanup_free_ char *spec_dst = NULL, *stats_src = NULL, *stats_dst = NULL, *dump_src = NULL,
                            *dump_dst = NULL, *work = NULL;

        if (!(spec_dst = job_path(j, "spec.dump")) || !(stats_src = job_path(j, "work/stats-dump")) ||
            !(stats_dst = job_path(j, "stats-dump")) || !(dump_src = job_path(j, "work/dump.log")) ||
            !(dump_dst = job_path(j, "dump.log")) || !(work = job_path(j, "work")))
                return -ENOMEM;

        /* Nothing here is fsync'ed on its own: the checksum child syncs every
         * file of the checkpoint when durable, and until the row is ready a
         * crash removes or (in the same boot, from the page cache) completes
         * the directory as a whole. */
        r = write_file_replace(spec_dst, j->spec, strlen(j->spec), 0600, false);
        if (r < 0)
                return r;
        /* CRIU writes its statistics into the work directory; checkpointctl
         * reads them at the top, and kybernatectl inspect in checkpoint/. */
        r = copy_file(stats_src, stats_dst);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0) {
                _cleanup_free_ char *stats_img = job_path(j, "checkpoint/stats-dump");
                if (!stats_img)
                        return -ENOMEM;
                r = copy_file(stats_src, stats_img);
                if (r < 0)
                        return r;
        }
        (void)copy_file(dump_src, dump_dst); /* as Podman keeps it */
        r = metadata_write_config_dump(j->dir, &j->entry, j->created, false);
        if (r < 0)
                return r;
        r = metadata_write_kybernate_json(j->dir, &j->entry, false);
        if (r < 0)
                return r;
        MetadataRootfsDiff d = {
                .captured = j->overlay.upperdir != NULL,
                .rootfs = j->rootfs,
                .upperdir = j->overlay.upperdir,
                .note = j->rootfs_note,
                .entries = j->diff_stats.entries,
                .deleted = j->diff_stats.deleted,
                .skipped = j->diff_stats.skipped,
                .bytes = j->diff_stats.bytes,
        };
        r = metadata_set_rootfs_diff(j->dir, &d, false);
        if (r < 0)
                return r;
        /* The work directory may hold CRIU's mounts: the safe remover. */
        return remove_tree_one_fs(work);
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
        int r;

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
        if (j->we_paused) {
                j->we_paused = false;
                r = job_spawn_runc(j, "resume", on_resumed);
                if (r >= 0)
                        return 0;
                log_error_errno(r, "Checkpoint %s: cannot resume container %s, it is left paused: %m",
                                j->entry.id, j->entry.container_id);
        }
        job_finish(j);
        return 0;
}

/* After the dump (and the rootfs capture): metadata, checksum, sync. */
static void job_finish(CheckpointJob *j) {
        Manager *m = j->manager;
        int r;

        job_progress(j, "finish", "writing metadata, computing checksum and syncing");
        r = job_write_metadata(j);
        if (r < 0) {
                job_fail(j, r,
                         r == -ENOSPC ? "writing metadata failed: no space left on the store"
                                      : "writing metadata failed");
                return;
        }
        /* From here on the dump exists only in these files (with --exit the
         * container is gone): should the daemon die before the row is ready,
         * the next start in this boot completes it instead of removing it. */
        char boot_id[40];
        /* A member stays frozen, and its thaw mark set, until the pod thaws
         * it; unfinished, it goes with its pod after a crash. */
        if (!j->member && store_boot_id(boot_id) >= 0)
                (void)catalog_set_dumped(m->catalog, j->entry.id, boot_id);
        r = checksum_task_start(m->event, j->dir, NULL, m->config->durable, job_finished, j, NULL);
        if (r < 0)
                job_fail(j, r, "starting the checksum failed");
}

/* runc and the global options every runc of this job gets. */
static void job_add_runc(const CheckpointJob *j, Argv *a) {
        const Config *cfg = j->manager->config;
        RuncGlobalOptions g = {.binary = cfg->runc, .root = j->runc_root, .criu = cfg->criu};
        runc_add_global(a, &g);
}

/* Starts the runc command in a, output to work/runc.log, handler on its exit. */
static int job_spawn(CheckpointJob *j, Argv *a, sd_event_child_handler_t handler) {
        _cleanup_free_ char **argv = NULL;
        int r = argv_take(a, &argv);
        if (r < 0)
                return r;
        _cleanup_free_ char *log = job_path(j, "work/runc.log");
        if (!log)
                return -ENOMEM;
        pid_t pid;
        r = spawn_logged(argv, log, &pid);
        if (r < 0)
                return r;
        r = sd_event_add_child(j->manager->event, &j->child, pid, WEXITED, handler, j);
        if (r < 0) {
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
        }
        return r;
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

/* runc <verb> of the container (pause, resume). */
static int job_spawn_runc(CheckpointJob *j, const char *verb, sd_event_child_handler_t handler) {
        Argv a = {};
        job_add_runc(j, &a);
        argv_add(&a, verb);
        argv_add(&a, j->entry.container_id);
        return job_spawn(j, &a, handler);
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
        _cleanup_free_ char *path = NULL;
        char *text = NULL;
        if (asprintf(&path, "%s/%s/state.json", j->runc_root, j->entry.container_id) < 0)
                return NULL;
        if (read_full_file(path, 4u << 20, &text, NULL) < 0)
                return NULL;
        _cleanup_free_ char *bundle = NULL, *created = NULL;
        if (metadata_parse_runc_state(text, &bundle, &created) < 0)
                return free_null(text);
        return text;
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

/* A new job for container_id under runc_root (NULL: the namespace's
 * default), with its id, directory and work directory; NULL with *ret_error
 * set (a negative errno) when that failed. */
static CheckpointJob *job_new(Manager *m, const char *containerd_namespace, const char *container_id,
                              const char *runc_root, uint32_t options, int *ret_error) {
        char id[33];
        int r;

        CheckpointJob *j = calloc(1, sizeof(*j));
        if (!j) {
                *ret_error = -ENOMEM;
                return NULL;
        }
        m->n_jobs++;
        j->manager = m;
        j->capture_fd = -EBADF;
        j->started_usec = (int64_t)now_monotonic_usec();
        CatalogEntry *e = &j->entry;
        e->state = CHECKPOINT_PENDING;
        e->created_ns = now_realtime_ns();
        e->durable = m->config->durable;
        e->options = options;
        r = store_new_id(id);
        if (r >= 0) {
                e->id = strdup(id);
                e->containerd_namespace = strdup(containerd_namespace);
                e->container_id = strdup(container_id);
                e->runc_version = strdup(m->runc_version ? m->runc_version : "");
                e->criu_version = strdup(m->criu_version ? m->criu_version : "");
                e->kernel_version = strdup(m->kernel_version ? m->kernel_version : "");
                if (!isempty(runc_root))
                        j->runc_root = strdup(runc_root);
                else if (asprintf(&j->runc_root, "%s/%s", m->config->runc_root_base, containerd_namespace) <
                         0)
                        j->runc_root = NULL;
                r = manager_checkpoint_dir(m, id, &j->dir);
                if (r >= 0 && (!e->id || !e->containerd_namespace || !e->container_id || !j->runc_root ||
                               !e->runc_version || !e->criu_version || !e->kernel_version))
                        r = -ENOMEM;
        }
        _cleanup_free_ char *work = r >= 0 ? job_path(j, "work") : NULL;
        if (r >= 0 && !work)
                r = -ENOMEM;
        if (r >= 0 && (mkdir(j->dir, 0700) < 0 || mkdir(work, 0700) < 0)) {
                r = negative_errno();
                (void)remove_tree_one_fs(j->dir);
        }
        if (r < 0) {
                *ret_error = r;
                job_free(j);
                return NULL;
        }
        return j;
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
