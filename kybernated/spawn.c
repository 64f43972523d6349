/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "spawn-child.h"
#include "spawn.h"
#include "store.h"
#include "util.h"

/* Every child dies with the daemon (SIGKILL). An orphaned runc would go on
 * writing into a directory the next start removes, and with --exit CRIU would
 * kill the container after a dump nobody keeps; killed mid-dump instead,
 * runc's CRIU fails the dump and lets the container run on. In a session of
 * their own: a ^C to a daemon run from a terminal reaches the daemon only,
 * which then ends them. */
static const SpawnOptions child_options = {.parent_death_signal = SIGKILL, .new_session = true};

static int spawn_with_fds(char *const argv[], int out_fd, pid_t *ret_pid) {
        SpawnOptions o = child_options;
        o.stdio[0] = SPAWN_NULL;
        o.stdio[1] = o.stdio[2] = out_fd;
        return spawn_exec(argv, &o, ret_pid);
}

int spawn_logged(char *const argv[], const char *log_path, pid_t *ret_pid) {
        _cleanup_close_ int out = open(log_path ? log_path : "/dev/null",
                                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
        if (out < 0)
                return negative_errno();
        return spawn_with_fds(argv, out, ret_pid);
}

int spawn_capture_line(char *const argv[], char **ret) {
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int rd = p[0];
        _cleanup_close_ int wr = p[1];
        int r = spawn_with_fds(argv, wr, &pid);
        if (r < 0)
                return r;
        /* NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): read by the _cleanup_close_ at scope exit */
        wr = safe_close(wr);
        _cleanup_free_ char *out = NULL;
        r = read_full_fd(rd, (size_t)64 * 1024, &out, NULL);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        if (r < 0)
                return r;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EIO;
        for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"))
                if (*line) {
                        *ret = strdup(line);
                        return *ret ? 0 : -ENOMEM;
                }
        return -ENODATA;
}

char *file_last_line(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return NULL;
        off_t size = lseek(fd, 0, SEEK_END);
        if (size <= 0)
                return NULL;
        char buf[1025];
        off_t start = size > 1024 ? size - 1024 : 0;
        ssize_t k = pread(fd, buf, (size_t)(size - start), start);
        if (k <= 0)
                return NULL;
        buf[k] = 0;
        while (k > 0 && (buf[k - 1] == '\n' || buf[k - 1] == '\r'))
                buf[--k] = 0;
        char *nl = strrchr(buf, '\n');
        char *line = nl ? nl + 1 : buf;
        if (!*line)
                return NULL;
        if (strlen(line) > 512)
                line[512] = 0;
        /* Keep it printable: it goes into an error message. */
        for (char *q = line; *q; q++)
                if ((unsigned char)*q < 0x20)
                        *q = ' ';
        return strdup(line);
}

struct ChecksumTask {
        pid_t pid;
        int fd; /* read end of the result pipe */
        sd_event_source *child;
        ChecksumDoneFn done;
        void *userdata;
};

ChecksumTask *checksum_task_free(ChecksumTask *t) {
        if (!t)
                return NULL;
        if (t->child) {
                /* Still running: the source owns the process (see
                 * checksum_task_start), so dropping it sends SIGKILL and
                 * reaps the child before returning. */
                (void)sd_event_source_send_child_signal(t->child, SIGKILL, NULL, 0);
                sd_event_source_disable_unref(t->child);
        }
        safe_close(t->fd);
        free(t);
        return NULL;
}

static int on_checksum_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        ChecksumTask *t = userdata;
        char buf[256] = "";
        int r = -EIO;
        uint64_t size = 0;
        char checksum[STORE_CHECKSUM_MAX] = "";

        t->child = sd_event_source_unref(t->child);
        ssize_t k = read(t->fd, buf, sizeof(buf) - 1);
        if (si->si_code == CLD_EXITED && k > 0) {
                buf[k] = 0;
                int cr;
                unsigned long long sz;
                if (sscanf(buf, "%d %llu %79s", &cr, &sz, checksum) >= 1) {
                        r = cr;
                        size = sz;
                }
        }
        ChecksumDoneFn done = t->done;
        void *ud = t->userdata;
        checksum_task_free(t);
        done(r, size, checksum, ud);
        return 0;
}

typedef struct ForkCall {
        void (*fn)(void *userdata, int result_fd);
        void *userdata;
        int result_fd;
} ForkCall;

static int fork_call(void *userdata) {
        const ForkCall *c = userdata;
        c->fn(c->userdata, c->result_fd);
        return 0;
}

int spawn_fork(void (*fn)(void *userdata, int result_fd), void *userdata, int *ret_fd, pid_t *ret_pid) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        _cleanup_close_ int rd = p[0];
        _cleanup_close_ int wr = p[1];
        ForkCall c = {.fn = fn, .userdata = userdata, .result_fd = wr};
        /* Only plain syscalls and our own code in the child, then _exit(). */
        SpawnOptions o = {.parent_death_signal = SIGKILL};
        int r = spawn_call(fork_call, &c, &o, ret_pid);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(rd);
        return 0;
}

int spawn_fork_watched(sd_event *e, void (*fn)(void *userdata, int result_fd), void *userdata,
                       sd_event_child_handler_t handler, sd_event_source **ret_source, int *ret_fd) {
        pid_t pid;
        int r = spawn_fork(fn, userdata, ret_fd, &pid);
        if (r < 0)
                return r;
        r = sd_event_add_child(e, ret_source, pid, WEXITED, handler, userdata);
        if (r < 0) {
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                *ret_source = NULL;
                *ret_fd = safe_close(*ret_fd);
                return r;
        }
        (void)sd_event_source_set_child_process_own(*ret_source, true);
        return 0;
}

void spawn_report(int result_fd, int r, const char *msg) {
        char out[SPAWN_REPORT_MAX + 32];
        int n = snprintf(out, sizeof(out) - 1, "%d %.*s", r, SPAWN_REPORT_MAX, msg ? msg : "");
        if (n < 0)
                return;
        if (n > (int)sizeof(out) - 2)
                n = (int)sizeof(out) - 2;
        /* One line of printable text: it ends up in an error message. */
        for (int i = 0; i < n; i++)
                if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
                        out[i] = ' ';
        out[n++] = '\n';
        (void)!write(result_fd, out, (size_t)n);
}

int spawn_read_report(int *fd, const siginfo_t *si, char **ret_msg) {
        char buf[SPAWN_REPORT_MAX + 64];
        ssize_t k = read(*fd, buf, sizeof(buf) - 1);
        *fd = safe_close(*fd);
        *ret_msg = NULL;
        if (si->si_code != CLD_EXITED || k <= 0) {
                *ret_msg = strdup_printf("the child %s %d", si->si_code == CLD_EXITED ? "exited" : "died of",
                                         si->si_status);
                return -EIO;
        }
        buf[k] = 0;
        buf[strcspn(buf, "\n")] = 0;
        char *end = NULL;
        long r = strtol(buf, &end, 10);
        if (end == buf || r > 0 || r < -4095) {
                *ret_msg = strdup("the child reported nothing readable");
                return -EIO;
        }
        *ret_msg = strdup(*end == ' ' ? end + 1 : end);
        return (int)r;
}

typedef struct ChecksumArgs {
        const char *dir, *like;
        bool sync;
} ChecksumArgs;

/* The forked child inherited every fd of the daemon, client sockets too: a
 * client the daemon drops would not see the hang-up while a copy lives here.
 * Keep stdio and the result pipe only. */
void spawn_close_fds_but(int keep) {
        if ((keep <= 3 || close_range(3, (unsigned)keep - 1, 0) == 0) &&
            close_range((unsigned)keep + 1, ~0U, 0) == 0)
                return;
        struct rlimit rl;
        rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 65536;
        for (rlim_t fd = 3; fd < max && fd < (rlim_t)INT_MAX; fd++)
                if ((int)fd != keep)
                        (void)close((int)fd);
}

/* Syncing (disk bound) runs in a grandchild beside the hashing (CPU bound),
 * so a durable checkpoint costs about the longer of the two, not their sum. */
static void checksum_child(void *userdata, int result_fd) {
        const ChecksumArgs *a = userdata;
        spawn_close_fds_but(result_fd);
        uint64_t size = 0;
        char checksum[STORE_CHECKSUM_MAX] = "-";
        pid_t syncer = -1;
        if (a->sync) {
                syncer = fork();
                if (syncer == 0)
                        _exit(-store_sync_tree(a->dir) & 0xff);
        }
        int r = store_checksum(a->dir, a->like, a->sync && syncer < 0, &size, checksum);
        if (syncer > 0) {
                int status;
                while (waitpid(syncer, &status, 0) < 0 && errno == EINTR)
                        ;
                if (r >= 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
                        r = WIFEXITED(status) ? -WEXITSTATUS(status) : -EIO;
        }
        char out[160];
        int n = snprintf(out, sizeof(out), "%d %llu %s\n", r, (unsigned long long)size,
                         r < 0 ? "-" : checksum);
        (void)!write(result_fd, out, (size_t)n);
}

int checksum_task_start(sd_event *e, const char *dir, const char *like, bool sync, ChecksumDoneFn done,
                        void *userdata, ChecksumTask **ret) {
        ChecksumArgs a = {.dir = dir, .like = like, .sync = sync};
        int fd;
        pid_t pid;
        int r = spawn_fork(checksum_child, &a, &fd, &pid);
        if (r < 0)
                return r;
        ChecksumTask *t = calloc(1, sizeof(*t));
        if (!t) {
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                safe_close(fd);
                return -ENOMEM;
        }
        t->pid = pid;
        t->fd = fd;
        t->done = done;
        t->userdata = userdata;
        r = sd_event_add_child(e, &t->child, pid, WEXITED, on_checksum_exit, t);
        if (r < 0) {
                kill(pid, SIGKILL);
                (void)waitpid(pid, NULL, 0);
                t->child = NULL;
                checksum_task_free(t);
                return r;
        }
        /* Freeing the task before the child exits kills and reaps it. */
        (void)sd_event_source_set_child_process_own(t->child, true);
        if (ret)
                *ret = t;
        return 0;
}
