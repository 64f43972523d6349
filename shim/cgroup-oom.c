/* SPDX-License-Identifier: Apache-2.0 */
/* OOM watches on a container's cgroup. See cgroup.h. */
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#include "cgroup-internal.h"

/* ---- OOM watches ------------------------------------------------------------ */

struct OomWatch {
        CgroupVersion version;
        sd_event_source *source;
        char *dir; /* memory (v1) or unified (v2) directory */
        CgroupOomHandler handler;
        void *userdata;
        uint64_t count;
        uint64_t last_oom_kill; /* v2 */
};

static void oom_watch_stop(OomWatch *w) {
        /* Safe from inside the source's own callback: sd-event defers the free. */
        w->source = sd_event_source_disable_unref(w->source);
}

static int oom_v1_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        OomWatch *w = userdata;
        uint64_t n;

        ssize_t k = read(fd, &n, sizeof(n));
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        /* The kernel also signals the eventfd when the cgroup goes away. */
        if (k != (ssize_t)sizeof(n) || !dir_exists(w->dir)) {
                oom_watch_stop(w);
                return 0;
        }
        w->count++;
        /* Last: the handler may free w. */
        w->handler(w->userdata);
        return 0;
}

/* Reads memory.events' oom_kill and cgroup.events' populated. */
static void oom_v2_read(const OomWatch *w, uint64_t *oom_kill, bool *populated) {
        uint64_t v;
        if (kv_lookup(w->dir, "memory.events", "oom_kill", &v) >= 0)
                *oom_kill = v;
        if (kv_lookup(w->dir, "cgroup.events", "populated", &v) >= 0)
                *populated = v != 0;
        else if (!dir_exists(w->dir))
                *populated = false;
}

static int oom_v2_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        OomWatch *w = userdata;
        union {
                struct inotify_event ev;
                char buf[4096];
        } u;
        bool gone = false;

        /* Drain; the events themselves only say "look again". */
        for (;;) {
                ssize_t k = read(fd, &u, sizeof(u));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (k == 0)
                        break;
                for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= k;) {
                        const struct inotify_event *e = (const struct inotify_event *)(u.buf + off);
                        if (e->mask & (IN_IGNORED | IN_DELETE_SELF))
                                gone = true;
                        off += (ssize_t)sizeof(struct inotify_event) + e->len;
                }
        }

        uint64_t oom_kill = w->last_oom_kill;
        bool populated = true;
        oom_v2_read(w, &oom_kill, &populated);
        bool fire = oom_kill > w->last_oom_kill;
        w->last_oom_kill = oom_kill;
        if (!populated || gone)
                oom_watch_stop(w);
        if (fire) {
                w->count++;
                w->handler(w->userdata); /* last: may free w */
        }
        return 0;
}

static int oom_watch_v1(sd_event *e, OomWatch *w) {
        _cleanup_close_ int efd = -EBADF, ofd = -EBADF, cfd = -EBADF;
        char p[PATH_MAX], buf[64];
        int r;

        efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0)
                return negative_errno();
        r = path_join(p, sizeof(p), w->dir, "memory.oom_control");
        if (r < 0)
                return r;
        ofd = open(p, O_RDONLY | O_CLOEXEC);
        if (ofd < 0)
                return negative_errno();
        r = path_join(p, sizeof(p), w->dir, "cgroup.event_control");
        if (r < 0)
                return r;
        cfd = open(p, O_WRONLY | O_CLOEXEC);
        if (cfd < 0)
                return negative_errno();
        int n = snprintf(buf, sizeof(buf), "%d %d", efd, ofd);
        r = write_all(cfd, buf, (size_t)n);
        if (r < 0)
                return r;
        r = sd_event_add_io(e, &w->source, efd, EPOLLIN, oom_v1_handler, w);
        if (r < 0)
                return r;
        (void)sd_event_source_set_io_fd_own(w->source, true);
        TAKE_FD(efd);
        (void)sd_event_source_set_description(w->source, "cgroup-oom-v1");
        return 0;
}

static int oom_watch_v2(sd_event *e, OomWatch *w) {
        _cleanup_close_ int ifd = -EBADF;
        char p[PATH_MAX];
        bool populated = true;
        int r;

        ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ifd < 0)
                return negative_errno();
        r = path_join(p, sizeof(p), w->dir, "memory.events");
        if (r < 0)
                return r;
        if (inotify_add_watch(ifd, p, IN_MODIFY) < 0)
                return negative_errno();
        r = path_join(p, sizeof(p), w->dir, "cgroup.events");
        if (r < 0)
                return r;
        if (inotify_add_watch(ifd, p, IN_MODIFY) < 0)
                return negative_errno();
        /* Only kills after this point count. */
        oom_v2_read(w, &w->last_oom_kill, &populated);
        r = sd_event_add_io(e, &w->source, ifd, EPOLLIN, oom_v2_handler, w);
        if (r < 0)
                return r;
        (void)sd_event_source_set_io_fd_own(w->source, true);
        TAKE_FD(ifd);
        (void)sd_event_source_set_description(w->source, "cgroup-oom-v2");
        return 0;
}

int cgroup_oom_watch(sd_event *e, const Cgroup *cg, CgroupOomHandler handler, void *userdata,
                     OomWatch **ret) {
        _cleanup_oom_watch_free_ OomWatch *w = NULL;
        int r;

        if (!e || !cg || !handler || !ret)
                return -EINVAL;
        const char *dir = cg->version == CGROUP_V2 ? cg->unified : cg->dirs[CTRL_MEMORY];
        if (!dir_exists(dir))
                return -ENOENT;
        w = calloc(1, sizeof(OomWatch));
        if (!w)
                return -ENOMEM;
        w->version = cg->version;
        w->handler = handler;
        w->userdata = userdata;
        w->dir = strdup(dir);
        if (!w->dir)
                return -ENOMEM;
        r = cg->version == CGROUP_V2 ? oom_watch_v2(e, w) : oom_watch_v1(e, w);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}

uint64_t cgroup_oom_watch_count(const OomWatch *w) {
        return w ? w->count : 0;
}

bool cgroup_oom_watch_active(const OomWatch *w) {
        return w && w->source;
}

OomWatch *cgroup_oom_watch_free(OomWatch *w) {
        if (!w)
                return NULL;
        oom_watch_stop(w);
        free(w->dir);
        free(w);
        return NULL;
}
