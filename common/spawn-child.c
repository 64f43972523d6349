/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "spawn-child.h"
#include "util.h"

/* The kernel's sigaction. glibc refuses to touch the two signals it reserves
 * (32 and 33), and so may a sanitizer's interceptor; but an ignored signal
 * stays ignored across exec, so they are reset with the system call itself. */
struct kernel_sigaction {
        void (*handler)(int);
        unsigned long flags;
        void (*restorer)(void);
        uint64_t mask;
};

static void child_signal_default(int sig) {
        struct kernel_sigaction k = {.handler = SIG_DFL};
        (void)syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof(k.mask));
}

/* In the child, between fork() and exec() or _exit(): only async-signal-safe
 * calls. Returns 0 or an errno (positive: it goes down the pipe as is). */
static int child_signals(const SpawnOptions *o, pid_t parent) {
        if (o->parent_death_signal > 0) {
                if (prctl(PR_SET_PDEATHSIG, o->parent_death_signal) < 0)
                        return errno;
                /* The caller died before the prctl(): nobody to start for. */
                if (getppid() != parent)
                        _exit(127);
        }
        if (o->new_session && setsid() < 0)
                return errno;
        /* Dispositions first: a signal pending now must not run one of the
         * caller's handlers once unblocked. */
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        child_signal_default(sig);
        sigset_t none;
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                return errno;
        return 0;
}

/* Every fd from first up close-on-exec: the kernel does it in one call since 5.11. */
static int child_cloexec_from(int first) {
        if (close_range((unsigned)first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
                return 0;
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return errno;
        for (rlim_t fd = (rlim_t)first; fd < rl.rlim_cur && fd < (rlim_t)INT_MAX; fd++)
                (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC); /* EBADF for most */
        return 0;
}

static int child_exec(char *const argv[], const SpawnOptions *o, int devnull) {
        int moved[3 + SPAWN_FDS_MAX];
        int n = 3 + (int)o->n_fds;

        /* Move every source out of 0..n-1 first, so that no dup2() clobbers a
         * source a later one needs. The copies are close-on-exec. */
        for (int i = 0; i < n; i++) {
                int src = i < 3 ? (o->stdio[i] >= 0 ? o->stdio[i] : devnull) : o->fds[i - 3];
                moved[i] = fcntl(src, F_DUPFD_CLOEXEC, n);
                if (moved[i] < 0)
                        return errno;
        }
        for (int i = 0; i < n; i++)
                if (dup2(moved[i], i) < 0) /* the copy at i is not close-on-exec */
                        return errno;
        int e = child_cloexec_from(n);
        if (e != 0)
                return e;
        if (o->cwd && chdir(o->cwd) < 0)
                return errno;
        if (o->env)
                execvpe(argv[0], argv, o->env);
        else
                execvp(argv[0], argv);
        return errno;
}

static void reap(pid_t pid) {
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}

int spawn_exec(char *const argv[], const SpawnOptions *o, pid_t *ret_pid) {
        _cleanup_close_ int devnull = -EBADF, err_r = -EBADF, err_w = -EBADF;
        int p[2];

        if (!argv || !argv[0] || o->n_fds > SPAWN_FDS_MAX || (o->n_fds > 0 && !o->fds))
                return -EINVAL;
        for (size_t i = 0; i < o->n_fds; i++)
                if (o->fds[i] < 0)
                        return -EBADF;
        if (o->stdio[0] < 0 || o->stdio[1] < 0 || o->stdio[2] < 0) {
                devnull = open("/dev/null", O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (devnull < 0)
                        return negative_errno();
        }
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        err_r = p[0], err_w = p[1];

        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int e = child_signals(o, parent);
                if (e == 0)
                        e = child_exec(argv, o, devnull);
                (void)!write(err_w, &e, sizeof(e));
                _exit(127);
        }

        /* EOF once exec() succeeded (the write end is close-on-exec), else its errno. */
        /* NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): read by the _cleanup_close_ at scope exit */
        err_w = safe_close(err_w);
        int e = 0;
        ssize_t k;
        do
                k = read(err_r, &e, sizeof(e));
        while (k < 0 && errno == EINTR);
        if (k != 0) {
                /* A failure, or a read error that leaves us not knowing: then
                 * the child must not go on unseen. */
                if (k != (ssize_t)sizeof(e))
                        (void)kill(pid, SIGKILL);
                reap(pid);
                return k == (ssize_t)sizeof(e) && e > 0 ? -e : -EIO;
        }
        *ret_pid = pid;
        return 0;
}

int spawn_call(int (*fn)(void *userdata), void *userdata, const SpawnOptions *o, pid_t *ret_pid) {
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                if (child_signals(o, parent) != 0)
                        _exit(127);
                int r = fn(userdata);
                _exit(r < 0 ? MIN(-r, 125) : 0);
        }
        *ret_pid = pid;
        return 0;
}
