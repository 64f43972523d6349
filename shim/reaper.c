/* SPDX-License-Identifier: Apache-2.0 */
#include <signal.h>
#include <sys/wait.h>

#include "log.h"
#include "reaper.h"
#include "util.h"

/* Exits nobody claimed are kept this long, and at most this many. Orphans
 * reparented to the subreaper are never claimed; the bound keeps them from
 * piling up. */
#define UNCLAIMED_KEEP_USEC (30 * USEC_PER_SEC)
#define UNCLAIMED_MAX 256

typedef struct Watch {
        pid_t pid;
        ReaperExitFn cb;
        void *userdata;
        struct Watch *next;
} Watch;

typedef struct Exit {
        pid_t pid;
        int status;
        int64_t exited_at_ns;
        uint64_t reaped_usec;
        bool delivered;
        struct Exit *next;
} Exit;

struct Reaper {
        sd_event *event;
        sd_event_source *sigchld;
        sd_event_source *deliver; /* defer source for exits claimed after the fact */
        Watch *watches;
        Exit *unclaimed;
        unsigned n_unclaimed;
};

int reaper_exit_status(int wstatus) {
        if (WIFSIGNALED(wstatus))
                return 128 + WTERMSIG(wstatus);
        return WEXITSTATUS(wstatus);
}

static Watch *watch_take(Reaper *r, pid_t pid) {
        for (Watch **w = &r->watches; *w; w = &(*w)->next)
                if ((*w)->pid == pid) {
                        Watch *found = *w;
                        *w = found->next;
                        return found;
                }
        return NULL;
}

static void unclaimed_gc(Reaper *r) {
        uint64_t now = now_monotonic_usec();
        for (Exit **e = &r->unclaimed; *e;) {
                Exit *x = *e;
                if (x->delivered || now - x->reaped_usec > UNCLAIMED_KEEP_USEC ||
                    r->n_unclaimed > UNCLAIMED_MAX) {
                        *e = x->next;
                        free(x);
                        r->n_unclaimed--;
                } else
                        e = &x->next;
        }
}

static void unclaimed_add(Reaper *r, pid_t pid, int status, int64_t at) {
        Exit *x = calloc(1, sizeof(*x));
        if (!x) {
                log_warning("Out of memory, dropping exit of unclaimed pid %d", (int)pid);
                return;
        }
        *x = (Exit){.pid = pid, .status = status, .exited_at_ns = at, .reaped_usec = now_monotonic_usec()};
        x->next = r->unclaimed;
        r->unclaimed = x;
        r->n_unclaimed++;
        unclaimed_gc(r);
}

static int on_sigchld(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Reaper *r = userdata;

        for (;;) {
                int wstatus;
                pid_t pid = waitpid(-1, &wstatus, WNOHANG);
                if (pid < 0 && errno == EINTR)
                        continue;
                if (pid <= 0)
                        break;
                if (!WIFEXITED(wstatus) && !WIFSIGNALED(wstatus))
                        continue;
                int status = reaper_exit_status(wstatus);
                int64_t at = now_realtime_ns();
                Watch *w = watch_take(r, pid);
                if (w) {
                        w->cb(pid, status, at, w->userdata);
                        free(w);
                } else
                        unclaimed_add(r, pid, status, at);
        }
        return 0;
}

static int on_deliver(sd_event_source *s, void *userdata) {
        Reaper *r = userdata;

        for (Exit *x = r->unclaimed; x; x = x->next) {
                if (x->delivered)
                        continue;
                Watch *w = watch_take(r, x->pid);
                if (!w)
                        continue;
                x->delivered = true;
                w->cb(x->pid, x->status, x->exited_at_ns, w->userdata);
                free(w);
        }
        unclaimed_gc(r);
        return sd_event_source_set_enabled(s, SD_EVENT_OFF);
}

DEFINE_POINTER_CLEANUP(Reaper, reaper_free);

int reaper_new(sd_event *e, Reaper **ret) {
        _cleanup_(reaper_freep) Reaper *r = NULL;
        sigset_t mask;
        int k;

        /* SIGCHLD is blocked before anything is allocated: sd-event reads it from a signalfd. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        r = calloc(1, sizeof(Reaper));
        if (!r)
                return -ENOMEM;
        r->event = sd_event_ref(e);
        k = sd_event_add_signal(e, &r->sigchld, SIGCHLD, on_sigchld, r);
        if (k < 0)
                return k;
        /* Reap before anything else runs in an iteration, so that exit
         * bookkeeping is current when RPCs look at it. */
        (void)sd_event_source_set_priority(r->sigchld, SD_EVENT_PRIORITY_IMPORTANT);
        k = sd_event_add_defer(e, &r->deliver, on_deliver, r);
        if (k < 0)
                return k;
        (void)sd_event_source_set_enabled(r->deliver, SD_EVENT_OFF);
        *ret = TAKE_PTR(r);
        return 0;
}

Reaper *reaper_free(Reaper *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->sigchld);
        sd_event_source_disable_unref(r->deliver);
        while (r->watches) {
                Watch *w = r->watches;
                r->watches = w->next;
                free(w);
        }
        while (r->unclaimed) {
                Exit *x = r->unclaimed;
                r->unclaimed = x->next;
                free(x);
        }
        sd_event_unref(r->event);
        free(r);
        return NULL;
}

int reaper_watch(Reaper *r, pid_t pid, ReaperExitFn cb, void *userdata) {
        Watch *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (Watch){.pid = pid, .cb = cb, .userdata = userdata, .next = r->watches};
        r->watches = w;
        for (Exit *x = r->unclaimed; x; x = x->next)
                if (x->pid == pid && !x->delivered)
                        return sd_event_source_set_enabled(r->deliver, SD_EVENT_ONESHOT);
        return 0;
}

void reaper_unwatch(Reaper *r, pid_t pid) {
        free(watch_take(r, pid));
}
