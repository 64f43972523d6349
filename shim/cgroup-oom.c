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

/* open(2) of the cgroup's file name, with O_CLOEXEC: the fd or a negative errno. */
static int open_in(const OomWatch *w, const char *name, int flags) {
        char p[PATH_MAX];
        int r = path_join(p, sizeof(p), w->dir, name);
        if (r < 0)
                return r;
        int fd = open(p, flags | O_CLOEXEC);
        return fd < 0 ? negative_errno() : fd;
}

/* Watches the cgroup's file name for changes on inotify fd ifd. */
static int watch_in(const OomWatch *w, int ifd, const char *name) {
        char p[PATH_MAX];
        int r = path_join(p, sizeof(p), w->dir, name);
        if (r < 0)
                return r;
        return inotify_add_watch(ifd, p, IN_MODIFY) < 0 ? negative_errno() : 0;
}

/* w->source: handler called when *fd is readable; the source owns *fd from
 * then on (taken from the caller). */
static int add_source(sd_event *e, OomWatch *w, int *fd, sd_event_io_handler_t handler,
                      const char *description) {
        int r = sd_event_add_io(e, &w->source, *fd, EPOLLIN, handler, w);
        if (r < 0)
                return r;
        (void)sd_event_source_set_io_fd_own(w->source, true);
        *fd = -EBADF;
        (void)sd_event_source_set_description(w->source, description);
        return 0;
}

static int oom_watch_v1(sd_event *e, OomWatch *w) {
        _cleanup_close_ int efd = -EBADF, ofd = -EBADF, cfd = -EBADF;
        char buf[64];
        int r;

        efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0)
                return negative_errno();
        ofd = open_in(w, "memory.oom_control", O_RDONLY);
        if (ofd < 0)
                return ofd;
        cfd = open_in(w, "cgroup.event_control", O_WRONLY);
        if (cfd < 0)
                return cfd;
        int n = snprintf(buf, sizeof(buf), "%d %d", efd, ofd);
        r = write_all(cfd, buf, (size_t)n);
        if (r < 0)
                return r;
        return add_source(e, w, &efd, oom_v1_handler, "cgroup-oom-v1");
}

static int oom_watch_v2(sd_event *e, OomWatch *w) {
        _cleanup_close_ int ifd = -EBADF;
        bool populated = true;
        int r;

        ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ifd < 0)
                return negative_errno();
        if ((r = watch_in(w, ifd, "memory.events")) < 0 || (r = watch_in(w, ifd, "cgroup.events")) < 0)
                return r;
        /* Only kills after this point count. */
        oom_v2_read(w, &w->last_oom_kill, &populated);
        return add_source(e, w, &ifd, oom_v2_handler, "cgroup-oom-v2");
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
