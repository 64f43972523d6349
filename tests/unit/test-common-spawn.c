/* SPDX-License-Identifier: Apache-2.0 */
/* common/spawn-child: what a spawned child starts with (signals, parent-death
 * signal, fds, directory, environment) and how failures reach the caller. */
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "spawn-child.h"
#include "test.h"

#define ALL_NULL \
        { SPAWN_NULL, SPAWN_NULL, SPAWN_NULL }

/* Runs argv with stdout and stderr into a pipe; returns its exit status and output. */
static int run_capture(char *const argv[], SpawnOptions *o, char **ret_out) {
        int p[2];
        ASSERT_OK(pipe2(p, O_CLOEXEC));
        o->stdio[1] = o->stdio[2] = p[1];
        pid_t pid;
        int r = spawn_exec(argv, o, &pid);
        safe_close(p[1]);
        if (r < 0) {
                safe_close(p[0]);
                return r;
        }
        ASSERT_OK(read_full_fd(p[0], 1 << 20, ret_out, NULL));
        safe_close(p[0]);
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status));
        return WEXITSTATUS(status);
}

/* The hex mask after "name:\t" in /proc status text; -1 if absent. */
static long long status_mask(const char *text, const char *name) {
        const char *line = strstr(text, name);
        if (!line)
                return -1;
        return strtoll(line + strlen(name), NULL, 16);
}

TEST(exec_failure_is_an_error_not_status_127) {
        char *missing[] = {(char *)"/nonexistent/kybernate-test-binary", NULL};
        char *in_path[] = {(char *)"kybernate-test-no-such-program", NULL};
        char *sh[] = {(char *)"sh", (char *)"-c", (char *)"exit 0", NULL};
        SpawnOptions o = {.stdio = ALL_NULL};
        pid_t pid = -1;

        ASSERT_ERROR(spawn_exec(missing, &o, &pid), ENOENT);
        ASSERT_ERROR(spawn_exec(in_path, &o, &pid), ENOENT);
        char not_exec[] = "/tmp/test-common-spawn.XXXXXX";
        int fd = mkostemp(not_exec, O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        safe_close(fd);
        char *noexec[] = {not_exec, NULL};
        ASSERT_ERROR(spawn_exec(noexec, &o, &pid), EACCES);
        (void)unlink(not_exec);
        /* A failure before exec is reported the same way. */
        o.cwd = "/nonexistent/dir";
        ASSERT_ERROR(spawn_exec(sh, &o, &pid), ENOENT);
        o.cwd = NULL;
        o.stdio[1] = 1000; /* not open */
        ASSERT_ERROR(spawn_exec(sh, &o, &pid), EBADF);
        ASSERT_EQ(pid, -1);
        /* The failed children were reaped: none is left. */
        ASSERT_EQ(waitpid(-1, NULL, WNOHANG), -1);
        ASSERT_EQ(errno, ECHILD);
        char *none[] = {NULL};
        ASSERT_ERROR(spawn_exec(none, &o, &pid), EINVAL);
}

TEST(signal_mask_and_dispositions_reset) {
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGCHLD);
        sigaddset(&block, SIGUSR1);
        sigaddset(&block, SIGTERM);
        ASSERT_OK(sigprocmask(SIG_BLOCK, &block, NULL));
        ASSERT_TRUE(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
        ASSERT_TRUE(signal(SIGUSR2, SIG_IGN) != SIG_ERR);

        /* cat itself, not a shell, reads its status: nothing in between changes it. */
        char *argv[] = {(char *)"cat", (char *)"/proc/self/status", NULL};
        SpawnOptions o = {.stdio = ALL_NULL};
        _cleanup_free_ char *out = NULL;
        ASSERT_EQ(run_capture(argv, &o, &out), 0);
        ASSERT_EQ(status_mask(out, "SigBlk:"), 0);
        ASSERT_EQ(status_mask(out, "SigIgn:"), 0);

        /* The caller's own state is untouched. */
        _cleanup_free_ char *self = NULL;
        ASSERT_OK(read_full_file("/proc/self/status", 1 << 20, &self, NULL));
        ASSERT_NE(status_mask(self, "SigBlk:"), 0);
        ASSERT_NE(status_mask(self, "SigIgn:"), 0);
}

static int report_child_state(void *userdata) {
        int sig = -1;
        sigset_t cur;
        if (prctl(PR_GET_PDEATHSIG, &sig) < 0 || sigprocmask(SIG_SETMASK, NULL, &cur) < 0)
                return -EIO;
        if (sigismember(&cur, SIGCHLD) || signal(SIGPIPE, SIG_DFL) != SIG_DFL)
                return -EPROTO;
        return sig == 0 ? 0 : -sig; /* the exit status says which signal */
}

TEST(call_child_signals_and_status) {
        sigset_t block;
        sigemptyset(&block);
        sigaddset(&block, SIGCHLD);
        ASSERT_OK(sigprocmask(SIG_BLOCK, &block, NULL));
        ASSERT_TRUE(signal(SIGPIPE, SIG_IGN) != SIG_ERR);

        int status;
        pid_t pid;
        for (int sig = 0; sig <= SIGTERM; sig += SIGTERM) {
                SpawnOptions o = {.stdio = ALL_NULL, .parent_death_signal = sig};
                ASSERT_OK(spawn_call(report_child_state, NULL, &o, &pid));
                ASSERT_EQ(waitpid(pid, &status, 0), pid);
                ASSERT_TRUE(WIFEXITED(status));
                ASSERT_EQ(WEXITSTATUS(status), sig);
        }
}

typedef struct Middle {
        int pid_fd;
        int parent_death_signal;
} Middle;

/* The spawning parent: starts a sleep, hands its pid over and exits. */
static int middle(void *userdata) {
        const Middle *m = userdata;
        char *argv[] = {(char *)"sleep", (char *)"30", NULL};
        SpawnOptions o = {.stdio = ALL_NULL, .parent_death_signal = m->parent_death_signal};
        pid_t pid;
        int r = spawn_exec(argv, &o, &pid);
        if (r < 0)
                return r;
        return write_all(m->pid_fd, &pid, sizeof(pid));
}

/* Starts sleep from a middle process that exits; returns the (orphaned) sleep. */
static pid_t orphan_sleep(int parent_death_signal) {
        int p[2];
        ASSERT_OK(pipe2(p, O_CLOEXEC));
        Middle m = {.pid_fd = p[1], .parent_death_signal = parent_death_signal};
        SpawnOptions o = {.stdio = ALL_NULL};
        pid_t mid, pid = -1;
        int status;
        ASSERT_OK(spawn_call(middle, &m, &o, &mid));
        safe_close(p[1]);
        ASSERT_EQ(read(p[0], &pid, sizeof(pid)), (ssize_t)sizeof(pid));
        safe_close(p[0]);
        ASSERT_EQ(waitpid(mid, &status, 0), mid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return pid;
}

TEST(parent_death_signal) {
        /* Orphans come to us, so we can see how they end. */
        ASSERT_OK(prctl(PR_SET_CHILD_SUBREAPER, 1));
        int status;

        pid_t pid = orphan_sleep(SIGKILL);
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status));
        ASSERT_EQ(WTERMSIG(status), SIGKILL);

        /* Without it the child outlives its parent. */
        pid = orphan_sleep(0);
        usleep(100 * 1000);
        ASSERT_EQ(waitpid(pid, &status, WNOHANG), 0);
        ASSERT_OK(kill(pid, SIGKILL));
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
}

TEST(only_stdio_is_inherited) {
        /* Not close-on-exec, as a careless library would leave one. */
        int leak = fcntl(STDERR_FILENO, F_DUPFD, 100);
        ASSERT_TRUE(leak >= 100);
        ASSERT_EQ(fcntl(leak, F_GETFD) & FD_CLOEXEC, 0);

        char script[160];
        snprintf(script, sizeof(script),
                 "for f in 0 1 2 %d; do [ -e /proc/$$/fd/$f ] && printf '%%s ' $f; done; echo", leak);
        char *argv[] = {(char *)"sh", (char *)"-c", script, NULL};
        SpawnOptions o = {.stdio = ALL_NULL};
        _cleanup_free_ char *out = NULL;
        ASSERT_EQ(run_capture(argv, &o, &out), 0);
        ASSERT_STREQ(out, "0 1 2 \n");
        safe_close(leak);
}

TEST(stdio_sources_in_0_to_2) {
        /* The pipe to the child's stdout and stderr is our fd 0, which the
         * child's /dev/null stdin replaces: it must be copied away first. */
        int p[2];
        ASSERT_OK(pipe2(p, O_CLOEXEC));
        ASSERT_OK(dup2(p[1], STDIN_FILENO));
        safe_close(p[1]);
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo out; echo err >&2; cat; echo end", NULL};
        SpawnOptions o = {.stdio = {SPAWN_NULL, STDIN_FILENO, STDIN_FILENO}};
        pid_t pid;
        ASSERT_OK(spawn_exec(argv, &o, &pid));
        safe_close(STDIN_FILENO);
        _cleanup_free_ char *out = NULL;
        ASSERT_OK(read_full_fd(p[0], 4096, &out, NULL));
        ASSERT_STREQ(out, "out\nerr\nend\n"); /* cat read /dev/null */
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        safe_close(p[0]);
}

TEST(cwd_env_and_session) {
        char *env[] = {(char *)"KYB_TEST=value", (char *)"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
        char *argv[] = {
                (char *)"sh", (char *)"-c",
                (char *)"echo \"$KYB_TEST ${HOME:-nohome} $(pwd) $(cut -d' ' -f6 /proc/$$/stat)\" $$", NULL};
        SpawnOptions o = {.stdio = ALL_NULL, .cwd = "/proc", .env = env, .new_session = true};
        _cleanup_free_ char *out = NULL;
        ASSERT_EQ(run_capture(argv, &o, &out), 0);
        char value[32], home[32], cwd[32];
        long sid, pid;
        ASSERT_EQ(sscanf(out, "%31s %31s %31s %ld %ld", value, home, cwd, &sid, &pid), 5);
        ASSERT_STREQ(value, "value");
        ASSERT_STREQ(home, "nohome"); /* only the environment given */
        ASSERT_STREQ(cwd, "/proc");
        ASSERT_EQ(sid, pid); /* a session leader */
}

TEST(extra_fds_from_3_in_order) {
        int a[2], b[2];
        ASSERT_OK(pipe2(a, O_CLOEXEC));
        ASSERT_OK(pipe2(b, O_CLOEXEC));
        /* The source of the child's fd 3 is our fd 0, which the child's stdin
         * replaces: it must be copied away first, as with stdio. */
        ASSERT_OK(dup2(a[1], STDIN_FILENO));
        safe_close(a[1]);
        int leak = fcntl(STDERR_FILENO, F_DUPFD, 100);
        ASSERT_TRUE(leak >= 100);

        char script[200];
        snprintf(script, sizeof(script),
                 "echo three >&3; echo four >&4; "
                 "for f in 0 1 2 3 4 5 6 %d; do [ -e /proc/$$/fd/$f ] && printf '%%s ' $f; done; echo",
                 leak);
        char *argv[] = {(char *)"sh", (char *)"-c", script, NULL};
        const int fds[] = {STDIN_FILENO, b[1]};
        SpawnOptions o = {.stdio = ALL_NULL, .fds = fds, .n_fds = ELEMENTSOF(fds)};
        _cleanup_free_ char *out = NULL, *three = NULL, *four = NULL;
        ASSERT_EQ(run_capture(argv, &o, &out), 0);
        ASSERT_STREQ(out, "0 1 2 3 4 \n");
        safe_close(STDIN_FILENO);
        safe_close(b[1]);
        safe_close(leak);
        ASSERT_OK(read_full_fd(a[0], 4096, &three, NULL));
        ASSERT_OK(read_full_fd(b[0], 4096, &four, NULL));
        ASSERT_STREQ(three, "three\n");
        ASSERT_STREQ(four, "four\n");
        safe_close(a[0]);
        safe_close(b[0]);

        /* Bounds: a closed or missing fd, or too many, start nothing. */
        pid_t pid = -1;
        const int bad[] = {-1};
        o = (SpawnOptions){.stdio = ALL_NULL, .fds = bad, .n_fds = 1};
        ASSERT_ERROR(spawn_exec(argv, &o, &pid), EBADF);
        o = (SpawnOptions){.stdio = ALL_NULL, .fds = NULL, .n_fds = 1};
        ASSERT_ERROR(spawn_exec(argv, &o, &pid), EINVAL);
        int many[SPAWN_FDS_MAX + 1], devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        ASSERT_TRUE(devnull >= 0);
        for (size_t i = 0; i < ELEMENTSOF(many); i++)
                many[i] = devnull;
        o = (SpawnOptions){.stdio = ALL_NULL, .fds = many, .n_fds = ELEMENTSOF(many)};
        ASSERT_ERROR(spawn_exec(argv, &o, &pid), EINVAL);
        o.n_fds = SPAWN_FDS_MAX; /* the most there may be */
        _cleanup_free_ char *out2 = NULL;
        ASSERT_EQ(run_capture(argv, &o, &out2), 0);
        ASSERT_STREQ(out2, "0 1 2 3 4 5 6 \n");
        ASSERT_EQ(pid, -1);
        safe_close(devnull);
}
