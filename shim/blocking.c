/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/sendfile.h>

#include "blocking.h"
#include "spawn-child.h"
#include "util.h"

#define COPY_CHUNK (1u << 30)

typedef struct ForkCall {
        int (*fn)(const void *arg);
        const void *arg;
} ForkCall;

static int run_fork_call(void *userdata) {
        const ForkCall *f = userdata;
        return f->fn(f->arg);
}

int fork_call(Reaper *reaper, int (*fn)(const void *arg), const void *arg, ReaperExitFn cb, void *userdata) {
        ForkCall f = {fn, arg};
        /* No parent-death signal: the work is the shim's own and short. */
        const SpawnOptions o = {};
        pid_t pid;

        int r = spawn_call(run_fork_call, &f, &o, &pid);
        if (r < 0)
                return r;
        r = reaper_watch(reaper, pid, cb, userdata);
        if (r < 0)
                (void)kill(pid, SIGKILL);
        return r;
}

static int copy_fd(int in, int out) {
        for (;;) {
                ssize_t k = sendfile(out, in, NULL, COPY_CHUNK);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return negative_errno();
                if (k == 0)
                        return 0;
        }
}

int copy_dir_files(const char *src, const char *dst, char *const *only) {
        _cleanup_close_ int sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_close_ int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (sfd < 0 || dfd < 0)
                return negative_errno();
        DIR *d;
        int r = dir_open_fd(sfd, &d);
        if (r < 0)
                return r;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                if (de->d_type != DT_REG || (only && !strv_contains(only, de->d_name)))
                        continue;
                /* containerd only reads the images (it tars them into its content store), so
                 * on the same filesystem a hard link is enough and costs nothing at 1 GiB. */
                if (linkat(sfd, de->d_name, dfd, de->d_name, 0) == 0)
                        continue;
                if (errno != EXDEV && errno != EPERM && errno != EMLINK) {
                        r = negative_errno();
                        break;
                }
                _cleanup_close_ int in = openat(sfd, de->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
                _cleanup_close_ int out =
                        openat(dfd, de->d_name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
                if (in < 0 || out < 0)
                        r = negative_errno();
                else
                        r = copy_fd(in, out);
        }
        closedir(d);
        return r;
}

int keep_criu_log(const char *work, const char *name, const char *id, char **ret_path) {
        _cleanup_free_ char *src = NULL, *dst = NULL;
        char stamp[32];

        int r = mkdir_p(CRIU_LOG_DIR, 0700);
        if (r < 0)
                return r;
        snprintf(stamp, sizeof(stamp), "%lld", (long long)(now_realtime_ns() / (int64_t)NSEC_PER_SEC));
        if (asprintf(&src, "%s/%s", work, name) < 0 ||
            asprintf(&dst, CRIU_LOG_DIR "/%s-%s-%s", id, stamp, name) < 0)
                return -ENOMEM;
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (in < 0)
                return negative_errno();
        _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return negative_errno();
        r = copy_fd(in, out);
        if (r < 0)
                return r;
        *ret_path = TAKE_PTR(dst);
        return 0;
}
