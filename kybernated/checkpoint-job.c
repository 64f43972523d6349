/* SPDX-License-Identifier: Apache-2.0 */
/* The CheckpointJob of checkpoint.c: its creation, its runc children, and
 * its two ends: after the dump, the files around the images, checksum and
 * sync, the row made ready and the reply (job_finish); on any failure, the
 * container resumed if we paused it, the logs kept and the rest removed
 * (job_fail). checkpoint.c drives the steps between. */
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "checkpoint-internal.h"
#include "log.h"
#include "metadata.h"
#include "mount-util.h"
#include "push.h"
#include "spawn.h"
#include "store.h"

CheckpointJob *job_new(Manager *m, const char *containerd_namespace, const char *container_id,
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

void job_free(CheckpointJob *j) {
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

char *job_path(CheckpointJob *j, const char *rel) {
        char *p;
        return asprintf(&p, "%s/%s", j->dir, rel) < 0 ? NULL : p;
}

void job_progress(CheckpointJob *j, const char *stage, const char *message) {
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

void job_add_runc(const CheckpointJob *j, Argv *a) {
        const Config *cfg = j->manager->config;
        RuncGlobalOptions g = {.binary = cfg->runc, .root = j->runc_root, .criu = cfg->criu};
        runc_add_global(a, &g);
}

int job_spawn(CheckpointJob *j, Argv *a, sd_event_child_handler_t handler) {
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

int job_spawn_runc(CheckpointJob *j, const char *verb, sd_event_child_handler_t handler) {
        Argv a = {};
        job_add_runc(j, &a);
        argv_add(&a, verb);
        argv_add(&a, j->entry.container_id);
        return job_spawn(j, &a, handler);
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

void job_fail(CheckpointJob *j, int error, const char *what) {
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

        /* What failed, runc's last word and where CRIU's log is: for the log, the pod and the client. */
        _cleanup_free_ char *detail = NULL;
        if (asprintf(&detail, "%s%s%s%s%s", what, last ? ": " : "", last ? last : "",
                     kept_dump ? "; CRIU log kept at " : "", kept_dump ? kept_dump : "") < 0)
                detail = NULL;
        const char *why = detail ? detail : what;
        log_error("Checkpoint of %s/%s failed: %s", j->entry.containerd_namespace, j->entry.container_id,
                  why);
        if (j->hooks) {
                if (!j->member_dumped) {
                        j->member_dumped = true;
                        j->hooks->dumped(j->hooks_userdata, error > 0 ? -error : error);
                }
                j->hooks->done(j->hooks_userdata, error > 0 ? -error : error, 0, NULL, why);
        }
        if (j->conn)
                connection_send_error(j->conn, error, "checkpoint of %s/%s failed: %s%s%s",
                                      j->entry.containerd_namespace, j->entry.container_id, why,
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

void job_finish(CheckpointJob *j) {
        Manager *m = j->manager;
        int r;

        if (j->we_paused) {
                j->we_paused = false;
                r = job_spawn_runc(j, "resume", on_resumed);
                if (r >= 0)
                        return;
                log_error_errno(r, "Checkpoint %s: cannot resume container %s, it is left paused: %m",
                                j->entry.id, j->entry.container_id);
        }
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
