/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "spawn-child.h"
#include "util.h"

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
        struct sigaction dfl = {.sa_handler = SIG_DFL};
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void)sigaction(sig, &dfl, NULL); /* EINVAL for libc's own: fine */
        sigset_t none;
        sigemptyset(&none);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                return errno;
        return 0;
}

/* Every fd from 3 up close-on-exec: the kernel does it in one call since 5.11. */
static int child_cloexec_from_3(void) {
        if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
                return 0;
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return errno;
        for (rlim_t fd = 3; fd < rl.rlim_cur && fd < (rlim_t)INT_MAX; fd++)
                (void)fcntl((int)fd, F_SETFD, FD_CLOEXEC); /* EBADF for most */
        return 0;
}

static int child_exec(char *const argv[], const SpawnOptions *o, int devnull) {
        int moved[3];

        /* Move every source out of 0..2 first, so that no dup2() clobbers a
         * source a later one needs. The copies are close-on-exec. */
        for (int i = 0; i < 3; i++) {
                moved[i] = fcntl(o->stdio[i] >= 0 ? o->stdio[i] : devnull, F_DUPFD_CLOEXEC, 3);
                if (moved[i] < 0)
                        return errno;
        }
        for (int i = 0; i < 3; i++)
                if (dup2(moved[i], i) < 0) /* the copy at i is not close-on-exec */
                        return errno;
        int e = child_cloexec_from_3();
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

        if (!argv || !argv[0])
                return -EINVAL;
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
