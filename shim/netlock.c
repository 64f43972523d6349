/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>

#include "blocking.h"
#include "cri-scan.h"
#include "log.h"
#include "netlock.h"
#include "process.h"
#include "spawn-child.h"

#define NETLOCK_POLL_USEC (250 * USEC_PER_MSEC)
#define NETLOCK_TAG_MAX 64

struct NetLock {
        NetLock *next; /* in shim->netlocks while watched */
        char *netns;
        char *comment; /* kybernate-restore:<tag> */
        char **members;
        char *sandbox_id;
        char *runc_root;
        Shim *shim;
        sd_event_source *timer;
        uint64_t deadline;
};

/* Out of shim->netlocks: a later member's release starts its own watch. */
static void netlock_unwatch(NetLock *l) {
        for (NetLock **p = &l->shim->netlocks; *p; p = &(*p)->next)
                if (*p == l) {
                        *p = l->next;
                        break;
                }
        l->next = NULL;
}

NetLock *netlock_free(NetLock *l) {
        if (!l)
                return NULL;
        if (l->shim)
                netlock_unwatch(l);
        sd_event_source_disable_unref(l->timer);
        free(l->netns);
        free(l->comment);
        strv_free(l->members);
        free(l->sandbox_id);
        free(l->runc_root);
        free(l);
        return NULL;
}

int netlock_new(const char *netns, const char *tag, char *const *members, size_t n_members,
                const char *sandbox_id, const char *runc_root, NetLock **ret) {
        if (!netns || netns[0] != '/' || isempty(tag) || strlen(tag) > NETLOCK_TAG_MAX ||
            strspn(tag, "0123456789abcdef") != strlen(tag) || isempty(sandbox_id) || isempty(runc_root))
                return -EINVAL;
        NetLock *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        int r = 0;
        for (size_t i = 0; i < n_members && r >= 0; i++)
                r = strv_push_dup(&l->members, members[i]);
        if (r < 0 || !(l->netns = strdup(netns)) || asprintf(&l->comment, "kybernate-restore:%s", tag) < 0 ||
            !(l->sandbox_id = strdup(sandbox_id)) || !(l->runc_root = strdup(runc_root))) {
                netlock_free(l);
                return -ENOMEM;
        }
        *ret = l;
        return 0;
}

/* iptables ACTION the rule, in the network namespace we are in; its exit status. */
static int iptables(const NetLock *l, const char *action) {
        char *argv[] = {(char *)"iptables", (char *)"-w", (char *)"5",       (char *)action,
                        (char *)"INPUT",    (char *)"-i", (char *)"lo",      (char *)"-p",
                        (char *)"tcp",      (char *)"-m", (char *)"comment", (char *)"--comment",
                        l->comment,         (char *)"-j", (char *)"DROP",    NULL};
        SpawnOptions o = {.stdio = {SPAWN_NULL, SPAWN_NULL, SPAWN_NULL}};
        pid_t pid;
        int r = spawn_exec(argv, &o, &pid), status;
        if (r < 0)
                return r;
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static int enter_netns(const NetLock *l) {
        int fd = open(l->netns, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int r = setns(fd, CLONE_NEWNET) < 0 ? -errno : 0;
        close(fd);
        return r;
}

int netlock_hold(const void *arg) {
        const NetLock *l = arg;
        int r = enter_netns(l);
        if (r < 0)
                return r;
        if (iptables(l, "-C") == 0)
                return 0; /* another member's shim holds it already */
        r = iptables(l, "-I");
        return r == 0 ? 0 : r < 0 ? r : -EIO;
}

static int netlock_drop(const void *arg) {
        const NetLock *l = arg;
        int r = enter_netns(l);
        if (r < 0)
                return r;
        /* Every copy (two members may have added it at the same moment);
         * another member's release may be deleting it too. */
        for (int i = 0; i < 16; i++) {
                if (iptables(l, "-C") != 0)
                        return 0;
                (void)iptables(l, "-D");
        }
        return -EIO;
}

/* Whether member runs in the sandbox as a container of this shim (one shim
 * serves a whole pod): in memory, no file read. */
static bool runs_here(const NetLock *l, const char *member) {
        for (const Container *c = l->shim->containers; c; c = c->next)
                if (c->init && c->init->started && !c->init->exited &&
                    streq_ptr(c->spec.sandbox_id, l->sandbox_id) &&
                    streq_ptr(spec_annotation(&c->spec, CRI_CONTAINER_NAME_ANNOTATION), member))
                        return true;
        return false;
}

/* Whether member runs in the sandbox among the containers under the runc
 * root (a member served by another shim). */
static bool runs_under_root(const NetLock *l, const CriContainer *all, size_t n, const char *member) {
        for (size_t k = 0; k < n; k++)
                if (all[k].alive && streq(all[k].sandbox_id, l->sandbox_id) &&
                    streq_ptr(all[k].name, member))
                        return true;
        return false;
}

/* Whether every member runs in the sandbox; if not, *ret_missing (unless
 * NULL) names the first one that does not. The shim's own containers first;
 * the runc root is scanned (cri-scan) only for a member not among them. */
static bool members_running(const NetLock *l, const char **ret_missing) {
        CriContainer *all = NULL;
        size_t n = 0;
        bool scanned = false;
        const char *missing = NULL;
        for (size_t i = 0; !missing && l->members && l->members[i]; i++) {
                if (runs_here(l, l->members[i]))
                        continue;
                if (!scanned && cri_scan(l->runc_root, &all, &n) < 0)
                        return false;
                scanned = true;
                if (!runs_under_root(l, all, n, l->members[i]))
                        missing = l->members[i];
        }
        cri_containers_free(all, n);
        if (ret_missing)
                *ret_missing = missing;
        return !missing;
}

static void on_dropped(pid_t pid, int status, int64_t at, void *userdata) {
        NetLock *l = userdata;
        if (status != 0)
                log_error("Failed to release the loopback TCP hold %s in %s: %s", l->comment, l->netns,
                          status < 128 ? strerror(status) : "killed");
        else
                log_info("Released the loopback TCP hold %s in %s", l->comment, l->netns);
        netlock_free(l);
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        NetLock *l = userdata;
        const char *missing = NULL;
        bool complete = members_running(l, &missing);
        if (!complete && usec < l->deadline)
                return sd_event_source_set_time(s, usec + NETLOCK_POLL_USEC) < 0
                               ? 0
                               : sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        if (!complete)
                log_warning("Pod checkpoint member %s has no running container in pod sandbox %s after %d s "
                            "(the new pod has no container of that name, or it failed): releasing %s",
                            missing ? missing : "?", l->sandbox_id, (int)(NETLOCK_MAX_USEC / USEC_PER_SEC),
                            l->comment);
        l->timer = sd_event_source_disable_unref(l->timer);
        netlock_unwatch(l);
        if (fork_call(l->shim->reaper, netlock_drop, l, on_dropped, l) < 0) {
                log_error("Cannot release the loopback TCP hold %s in %s", l->comment, l->netns);
                netlock_free(l);
        }
        return 0;
}

void netlock_release_when_complete(Shim *s, NetLock *l) {
        uint64_t now;
        l->shim = s;
        int r = sd_event_now(s->event, CLOCK_MONOTONIC, &now);
        /* The pod's other members (this shim serves the whole pod) wait for
         * the same hold: one watcher releases it, its deadline the latest. */
        for (NetLock *w = s->netlocks; r >= 0 && w; w = w->next)
                if (streq(w->comment, l->comment) && streq(w->netns, l->netns)) {
                        w->deadline = now + NETLOCK_MAX_USEC;
                        netlock_free(l);
                        return;
                }
        if (r < 0 || sd_event_add_time(s->event, &l->timer, CLOCK_MONOTONIC, now, 0, on_poll, l) < 0) {
                log_error("Cannot watch the pod's containers: releasing %s now", l->comment);
                if (fork_call(s->reaper, netlock_drop, l, on_dropped, l) < 0)
                        netlock_free(l);
                return;
        }
        l->deadline = now + NETLOCK_MAX_USEC;
        l->next = s->netlocks;
        s->netlocks = l;
}
