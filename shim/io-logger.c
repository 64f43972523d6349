/* SPDX-License-Identifier: Apache-2.0 */
/* binary:// loggers: started with spawn_exec(), watched through a pidfd,
 * stopped with SIGTERM then SIGKILL. */
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/syscall.h>

#include "io-internal.h"
#include "log.h"
#include "spawn-child.h"
#include "util.h"

/* ---------------------------------------------------------------- logger */

typedef struct LoggerKiller {
        int pidfd;
        sd_event_source *exit_ev, *timer;
} LoggerKiller;

static void logger_killer_free(LoggerKiller *k) {
        k->exit_ev = sd_event_source_disable_unref(k->exit_ev);
        k->timer = sd_event_source_disable_unref(k->timer);
        safe_close(k->pidfd);
        free(k);
}

static int pidfd_signal(int pidfd, int sig) {
        if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
                return negative_errno();
        return 0;
}

static int logger_killer_exit_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        logger_killer_free(userdata);
        return 0;
}

static int logger_killer_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        LoggerKiller *k = userdata;
        (void)pidfd_signal(k->pidfd, SIGKILL);
        log_debug("logger did not stop after SIGTERM, killed");
        logger_killer_free(k);
        return 0;
}

void logger_stop(ProcessIO *io) {
        LoggerKiller *k;
        int r;

        if (io->logger_pid <= 0 || io->logger_exited)
                return;
        if (io->logger_pidfd < 0) {
                (void)kill(io->logger_pid, SIGTERM);
                return;
        }
        if (pidfd_signal(io->logger_pidfd, SIGTERM) < 0)
                return;
        io->logger_exited = true; /* from our point of view: it is the killer's now */

        k = calloc(1, sizeof(*k));
        if (!k)
                goto kill_now;
        k->pidfd = dup_cloexec(io->logger_pidfd);
        if (k->pidfd < 0) {
                free(k);
                goto kill_now;
        }
        r = sd_event_add_io(io->event, &k->exit_ev, k->pidfd, EPOLLIN, logger_killer_exit_cb, k);
        if (r >= 0)
                r = sd_event_add_time_relative(io->event, &k->timer, CLOCK_MONOTONIC,
                                               PROCESS_IO_LOGGER_KILL_TIMEOUT_USEC, 0,
                                               logger_killer_timer_cb, k);
        if (r < 0) {
                logger_killer_free(k);
                goto kill_now;
        }
        return;
kill_now:
        (void)pidfd_signal(io->logger_pidfd, SIGKILL);
}

static int logger_ready_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ProcessIO *io = userdata;
        char c;

        ssize_t n = read(fd, &c, 1);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        log_debug("%s: logger %s", io->id, n > 0 ? "ready" : "closed its ready pipe");
        io->logger_ready_ev = sd_event_source_disable_unref(io->logger_ready_ev);
        io->logger_ready_fd = safe_close(io->logger_ready_fd);
        return 0;
}

static int logger_exit_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ProcessIO *io = userdata;

        log_debug("%s: logger %d exited", io->id, (int)io->logger_pid);
        io->logger_exited = true;
        io->logger_exit_ev = sd_event_source_disable_unref(io->logger_exit_ev);
        io->logger_term_timer = sd_event_source_disable_unref(io->logger_term_timer);
        return 0;
}

int logger_term_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        ProcessIO *io = userdata;

        io->logger_term_timer = sd_event_source_disable_unref(io->logger_term_timer);
        log_debug("%s: logger still running after the process exited, stopping it", io->id);
        logger_stop(io);
        io->logger_exit_ev = sd_event_source_disable_unref(io->logger_exit_ev);
        return 0;
}

int logger_start(ProcessIO *io, const StdioURI *u, int out_r, int err_r) {
        _cleanup_close_ int o = out_r, e = err_r, ready_r = -EBADF, ready_w = -EBADF;
        _cleanup_free_ char *env_id = NULL, *env_ns = NULL;
        _cleanup_free_ char **argv = NULL;
        pid_t pid;
        int fds[2], r;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        ready_r = fds[0];
        ready_w = fds[1];
        r = fd_nonblock(ready_r, true);
        if (r < 0)
                return r;

        if (asprintf(&env_id, "CONTAINER_ID=%s", io->container_id) < 0 ||
            asprintf(&env_ns, "CONTAINER_NAMESPACE=%s", io->ns) < 0)
                return -ENOMEM;
        char *envp[] = {env_id, env_ns, NULL};

        argv = calloc(u->n_args + 2, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        argv[0] = u->path; /* absolute: no PATH search */
        for (size_t i = 0; i < u->n_args; i++)
                argv[i + 1] = u->args[i];

        /* 0-2 /dev/null, 3 and 4 the read ends of the stdout and stderr pipes,
         * 5 the ready pipe. No parent-death signal: it drains what is left
         * after the shim. */
        const int pass[] = {o, e, ready_w};
        const SpawnOptions so = {
                .stdio = {SPAWN_NULL, SPAWN_NULL, SPAWN_NULL},
                .fds = pass,
                .n_fds = ELEMENTSOF(pass),
                .env = envp,
        };
        r = spawn_exec(argv, &so, &pid);
        if (r < 0)
                return r;

        io->logger_pid = pid;
        /* Nobody can reap it before this: the shim's reaper only runs from the
         * event loop. A failure here just means no exit watch. */
        io->logger_pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (io->logger_pidfd < 0)
                io->logger_pidfd = -EBADF;
        else
                (void)fd_cloexec(io->logger_pidfd, true);
        if (io->logger_pidfd >= 0) {
                r = sd_event_add_io(io->event, &io->logger_exit_ev, io->logger_pidfd, EPOLLIN,
                                    logger_exit_cb, io);
                if (r < 0)
                        return r;
        }
        /* NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): read by the _cleanup_close_ at scope exit */
        ready_w = safe_close(ready_w);
        r = sd_event_add_io(io->event, &io->logger_ready_ev, ready_r, EPOLLIN, logger_ready_cb, io);
        if (r < 0)
                return r;
        io->logger_ready_fd = TAKE_FD(ready_r);
        return 0;
}

int setup_output_binary(ProcessIO *io, const ProcessIOConfig *cfg, const StdioURI *u) {
        int out_child = -EBADF, out_r = -EBADF, err_child = -EBADF, err_r = -EBADF, r;

        /* The shim never touches these pipes, so both ends stay blocking. */
        r = make_pipe(cfg, false, &out_child, &out_r);
        if (r < 0)
                return r;
        r = make_pipe(cfg, false, &err_child, &err_r);
        if (r < 0) {
                safe_close(out_child);
                safe_close(out_r);
                return r;
        }
        (void)fd_nonblock(out_r, false);
        (void)fd_nonblock(err_r, false);
        safe_close(io->child_fds[1]);
        safe_close(io->child_fds[2]);
        io->child_fds[1] = out_child;
        io->child_fds[2] = err_child;
        return logger_start(io, u, out_r, err_r);
}

/* Terminal: where the master's output goes. */
