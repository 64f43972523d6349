/* SPDX-License-Identifier: Apache-2.0 */
/* A daemon killed in the middle of a checkpoint leaves a pending row. Before
 * the clean-up removes (or completes) it, the container must not be left
 * frozen: see the list of steps at the top of checkpoint.c for what a kill at
 * each of them leaves. */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

#include "freezer.h"
#include "log.h"
#include "recover.h"
#include "spawn.h"

#define LEFTOVER_WAIT_USEC (10 * USEC_PER_SEC)

typedef struct Pending {
        char *id;
        char *container_id;
        char *runc_root;
        char *thaw_cgroup; /* a pod's cgroup the dead daemon may have left frozen */
        bool thaw;
} Pending;

typedef struct PendingList {
        Pending *items;
        size_t n;
} PendingList;

static void pending_list_done(PendingList *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].id);
                free(l->items[i].container_id);
                free(l->items[i].runc_root);
                free(l->items[i].thaw_cgroup);
        }
        free(l->items);
        *l = (PendingList){};
}

static int collect_pending(const CatalogEntry *e, void *userdata) {
        PendingList *l = userdata;
        Pending *n = reallocarray(l->items, l->n + 1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        l->items = n;
        Pending *p = &n[l->n++];
        *p = (Pending){
                .id = strdup(e->id),
                .container_id = strdup(e->container_id ? e->container_id : ""),
                .runc_root = strdup(e->runc_root ? e->runc_root : ""),
                .thaw_cgroup = strdup(e->thaw_cgroup ? e->thaw_cgroup : ""),
                .thaw = e->thaw,
        };
        return p->id && p->container_id && p->runc_root && p->thaw_cgroup ? 0 : -ENOMEM;
}

static bool path_below(const char *path, const char *dir) {
        const char *rest = startswith(path, dir);
        return rest && (*rest == 0 || *rest == '/');
}

/* Whether process pid has its working directory or an open file below dir. */
static bool process_uses(const char *pid, const char *dir) {
        char path[64], target[PATH_MAX];
        ssize_t k;

        snprintf(path, sizeof(path), "/proc/%s/cwd", pid);
        k = readlink(path, target, sizeof(target) - 1);
        if (k > 0) {
                target[k] = 0;
                if (path_below(target, dir))
                        return true;
        }
        snprintf(path, sizeof(path), "/proc/%s/fd", pid);
        DIR *d = opendir(path);
        if (!d)
                return false;
        bool found = false;
        struct dirent *de;
        while (!found && (de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                char fd_path[320];
                snprintf(fd_path, sizeof(fd_path), "/proc/%s/fd/%s", pid, de->d_name);
                k = readlink(fd_path, target, sizeof(target) - 1);
                if (k <= 0)
                        continue;
                target[k] = 0;
                found = path_below(target, dir);
        }
        closedir(d);
        return found;
}

/* Gone, or a zombie (its files are closed and its tracees detached). */
static bool process_gone(pid_t pid) {
        char path[64];
        _cleanup_free_ char *stat = NULL;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        if (read_full_file(path, 4096, &stat, NULL) < 0)
                return true;
        const char *p = strrchr(stat, ')');
        return !p || p[1] == 0 || p[2] == 'Z' || p[2] == 'X';
}

/* SIGKILLs every process using dir (a CRIU that outlived its runc, or
 * anything else writing into the checkpoint) and waits until they are gone:
 * a CRIU that went on would put its freezer state back after our resume.
 * Returns the number of processes killed. */
static int kill_leftovers(const char *dir) {
        _cleanup_free_ char *real = realpath(dir, NULL);
        if (!real)
                return 0;
        DIR *d = opendir("/proc");
        if (!d)
                return negative_errno();
        pid_t killed[64];
        size_t n = 0;
        struct dirent *de;
        while ((de = readdir(d)) && n < ELEMENTSOF(killed)) {
                char *end;
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 1 || pid == (long)getpid())
                        continue;
                if (!process_uses(de->d_name, real))
                        continue;
                if (kill((pid_t)pid, SIGKILL) >= 0)
                        killed[n++] = (pid_t)pid;
        }
        closedir(d);

        uint64_t deadline = now_monotonic_usec() + LEFTOVER_WAIT_USEC;
        for (size_t i = 0; i < n; i++)
                while (!process_gone(killed[i]) && now_monotonic_usec() < deadline)
                        (void)usleep(10000);
        return (int)n;
}

/* runc --root R resume ID: 0 resumed, -EIO runc refused (not paused, gone),
 * *ret_last its last line of output. */
static int runc_resume(Manager *m, const Pending *p, char **ret_last) {
        _cleanup_free_ char *log = NULL;
        if (asprintf(&log, "%s/%s-resume.log", m->logs_dir, p->id) < 0)
                return -ENOMEM;
        char *argv[] = {m->config->runc,  (char *)"--root", p->runc_root,
                        (char *)"resume", p->container_id,  NULL};
        pid_t pid;
        int r = spawn_logged(argv, log, &pid), status = 0;
        if (r < 0)
                return r;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        *ret_last = file_last_line(log);
        (void)unlink(log);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

int recover_thaw_pending(Manager *m) {
        PendingList l = {};
        CatalogFilter f = {.state = CHECKPOINT_PENDING};
        int r, resumed = 0;

        r = catalog_list(m->catalog, &f, collect_pending, &l);
        if (r < 0) {
                pending_list_done(&l);
                return log_error_errno(r, "Failed to list pending checkpoints: %m");
        }
        /* A pod's cgroup first: its containers cannot be resumed while it is frozen. */
        for (size_t i = 0; i < l.n; i++) {
                const Pending *p = &l.items[i];
                if (isempty(p->thaw_cgroup))
                        continue;
                r = freezer_path_valid(p->thaw_cgroup) ? freezer_set(p->thaw_cgroup, false, 0) : -EINVAL;
                if (r >= 0)
                        log_notice(
                                "Thawed pod cgroup %s: pod checkpoint %s had frozen it when kybernated stopped",
                                p->thaw_cgroup, p->id);
                else if (r != -ENOENT)
                        log_error_errno(r, "Pod checkpoint %s: cannot thaw cgroup %s: %m", p->id,
                                        p->thaw_cgroup);
                (void)catalog_set_thaw_cgroup(m->catalog, p->id, "");
        }
        for (size_t i = 0; i < l.n; i++) {
                const Pending *p = &l.items[i];
                _cleanup_free_ char *dir = NULL, *last = NULL;

                if (manager_checkpoint_dir(m, p->id, &dir) >= 0) {
                        r = kill_leftovers(dir);
                        if (r > 0)
                                log_warning("Checkpoint %s: killed %d process(es) left working in %s", p->id,
                                            r, dir);
                }
                if (!p->thaw)
                        continue;
                if (isempty(p->runc_root) || isempty(p->container_id)) {
                        log_warning("Checkpoint %s: container to resume unknown", p->id);
                        continue;
                }
                /* runc refuses to resume a container that is not paused: one
                 * the dead daemon had not paused yet runs on untouched. */
                r = runc_resume(m, p, &last);
                if (r >= 0) {
                        log_notice("Resumed container %s (runc root %s): checkpoint %s had paused it when "
                                   "kybernated stopped",
                                   p->container_id, p->runc_root, p->id);
                        resumed++;
                } else
                        log_info("Checkpoint %s: container %s not resumed (not paused or gone)%s%s", p->id,
                                 p->container_id, last ? ": " : "", last ? last : "");
                (void)catalog_set_thaw(m->catalog, p->id, false);
        }
        pending_list_done(&l);
        return resumed;
}
