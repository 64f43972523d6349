/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/utsname.h>

#include "log.h"
#include "manager.h"
#include "mount-util.h"
#include "push.h"
#include "resolve.h"
#include "spawn.h"
#include "store.h"

int manager_new(sd_event *e, const Config *config, Manager **ret) {
        Manager *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->config = config;
        m->lock_fd = -EBADF;
        m->started_ns = now_realtime_ns();
        if (asprintf(&m->checkpoints_dir, "%s/checkpoints", config->store) < 0 ||
            asprintf(&m->staging_dir, "%s/staging", config->store) < 0 ||
            asprintf(&m->logs_dir, "%s/logs", config->store) < 0 ||
            asprintf(&m->catalog_path, "%s/catalog.db", config->store) < 0) {
                manager_free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        pusher_free(m->pusher);
        catalog_close(m->catalog);
        safe_close(m->lock_fd);
        free(m->checkpoints_dir);
        free(m->staging_dir);
        free(m->logs_dir);
        free(m->catalog_path);
        free(m->runc_version);
        free(m->criu_version);
        free(m->kernel_version);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_open_store(Manager *m) {
        int r;
        const char *dirs[] = {m->config->store, m->checkpoints_dir, m->staging_dir, m->logs_dir};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = mkdir_p(dirs[i], 0700);
                if (r < 0)
                        return log_error_errno(r, "Failed to create %s: %m", dirs[i]);
        }
        /* One daemon per store: a second one's start-up clean-up would remove
         * the first one's checkpoints in progress. A POSIX record lock, not
         * flock(): it belongs to this process only, so forked checksum
         * children that outlive a killed daemon for a moment do not hold it. */
        _cleanup_free_ char *lock = NULL;
        if (asprintf(&lock, "%s/lock", m->config->store) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        m->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (m->lock_fd < 0)
                return log_error_errno(negative_errno(), "Failed to open %s: %m", lock);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(m->lock_fd, F_SETLK, &fl) < 0) {
                if (errno == EAGAIN || errno == EACCES)
                        return log_error_errno(-EBUSY, "Another kybernated is using the store %s",
                                               m->config->store);
                return log_error_errno(negative_errno(), "Failed to lock %s: %m", lock);
        }
        r = catalog_open(m->catalog_path, m->config->durable, &m->catalog);
        if (r < 0)
                return log_error_errno(r, "Failed to open catalog %s: %m", m->catalog_path);
        return 0;
}

typedef struct Unfinished {
        char **remove;   /* ids of pending/failed rows to remove */
        char **complete; /* ids whose dump had finished in this boot */
        const char *boot_id;
} Unfinished;

static int collect_unfinished(const CatalogEntry *e, void *userdata) {
        Unfinished *u = userdata;
        bool done_dumping = e->state == CHECKPOINT_PENDING && !isempty(e->dumped_boot_id) &&
                            streq_ptr(e->dumped_boot_id, u->boot_id);
        return strv_push_dup(done_dumping ? &u->complete : &u->remove, e->id);
}

/* A pending checkpoint whose dump had finished before the daemon died (in
 * this boot, so the page cache still holds every byte written): checksum,
 * sync and mark it ready, as the dead daemon would have. */
static int complete_checkpoint(Manager *m, const char *id) {
        _cleanup_free_ char *dir = NULL;
        uint64_t size;
        char checksum[STORE_CHECKSUM_MAX];
        int r = manager_checkpoint_dir(m, id, &dir);
        if (r < 0)
                return r;
        r = store_checksum(dir, NULL, m->config->durable, &size, checksum);
        if (r < 0)
                return r;
        if (m->config->durable && (r = store_fsync_path(m->checkpoints_dir)) < 0)
                return r;
        return catalog_set_ready(m->catalog, id, size, checksum);
}

int manager_startup_cleanup(Manager *m) {
        char boot_id[40] = "";
        int r;

        (void)store_boot_id(boot_id);

        /* 1. Rows that never became ready: complete those whose dump had
         * finished, remove the others (their directories are incomplete). */
        Unfinished u = {.boot_id = boot_id};
        CatalogFilter f = {.state = CHECKPOINT_PENDING};
        r = catalog_list(m->catalog, &f, collect_unfinished, &u);
        if (r >= 0) {
                f.state = CHECKPOINT_FAILED;
                r = catalog_list(m->catalog, &f, collect_unfinished, &u);
        }
        if (r < 0) {
                strv_free(u.remove);
                strv_free(u.complete);
                return log_error_errno(r, "Failed to list unfinished checkpoints: %m");
        }
        STRV_FOREACH (id, u.complete) {
                r = complete_checkpoint(m, *id);
                if (r >= 0) {
                        log_notice(
                                "Completed checkpoint %s: its dump had finished before kybernated stopped",
                                *id);
                        continue;
                }
                log_warning_errno(r, "Could not complete checkpoint %s (%m), removing it", *id);
                r = strv_push_dup(&u.remove, *id);
                if (r < 0) {
                        strv_free(u.remove);
                        strv_free(u.complete);
                        return log_error_errno(r, "Out of memory");
                }
        }
        STRV_FOREACH (id, u.remove) {
                log_warning("Removing checkpoint %s left unfinished by an earlier run", *id);
                r = manager_remove_checkpoint(m, *id);
                if (r < 0)
                        log_error_errno(r, "Failed to remove unfinished checkpoint %s: %m", *id);
        }
        strv_free(u.remove);
        strv_free(u.complete);

        /* 2. Directories without a row (a crash between mkdir and insert, or
         * after the row was deleted), and leftover staging directories. */
        const char *bases[] = {m->checkpoints_dir, m->staging_dir};
        for (size_t b = 0; b < ELEMENTSOF(bases); b++) {
                DIR *d = opendir(bases[b]);
                if (!d)
                        return log_error_errno(negative_errno(), "Failed to open %s: %m", bases[b]);
                struct dirent *de;
                while ((de = readdir_no_dot(d))) {
                        if (b == 0) {
                                CatalogEntry e = {};
                                r = catalog_get(m->catalog, de->d_name, &e);
                                catalog_entry_done(&e);
                                if (r >= 0)
                                        continue;
                                if (r != -ENOENT) {
                                        log_error_errno(r, "Failed to look up %s: %m", de->d_name);
                                        continue;
                                }
                        }
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", bases[b], de->d_name) < 0) {
                                closedir(d);
                                return log_error_errno(-ENOMEM, "Out of memory");
                        }
                        log_warning("Removing %s: %s", p,
                                    b == 0 ? "no catalog row" : "unfinished import, pull or push");
                        r = remove_tree_one_fs(p);
                        if (r < 0)
                                log_error_errno(r, "Failed to remove %s: %m", p);
                }
                closedir(d);
        }
        return 0;
}

void manager_probe_versions(Manager *m) {
        char *runc_argv[] = {m->config->runc, (char *)"--version", NULL};
        char *criu_argv[] = {m->config->criu ? m->config->criu : (char *)"criu", (char *)"--version", NULL};
        struct utsname u;

        if (spawn_capture_line(runc_argv, &m->runc_version) < 0)
                log_warning("Could not get the version of %s", m->config->runc);
        if (spawn_capture_line(criu_argv, &m->criu_version) < 0)
                log_warning("Could not get the version of %s", criu_argv[0]);
        if (uname(&u) >= 0)
                m->kernel_version = strdup(u.release);
}

int manager_checkpoint_dir(Manager *m, const char *id, char **ret) {
        return asprintf(ret, "%s/%s", m->checkpoints_dir, id) < 0 ? -ENOMEM : 0;
}

int manager_lookup(Manager *m, const char *ref, CatalogEntry *ret, char *msg, size_t msgsize) {
        return resolve_lookup(m->catalog, ref, NULL, ret, msg, msgsize);
}

int manager_remove_checkpoint(Manager *m, const char *id) {
        _cleanup_free_ char *dir = NULL;
        int r = manager_checkpoint_dir(m, id, &dir);
        if (r < 0)
                return r;
        /* Row first: a crash between the two leaves a directory without a row,
         * which the next start removes; never a row without its files. */
        r = catalog_delete(m->catalog, id);
        if (r < 0 && r != -ENOENT)
                return r;
        return remove_tree_one_fs(dir);
}
