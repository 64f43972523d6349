/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <termios.h>

#include "io.h"
#include "log.h"
#include "uri.h"
#include "util.h"

/* One direction of copying: src_fd -> dst_fd. Both fds are owned.
 *
 * Data is read into a buffer on the stack and written straight on; only
 * what the sink does not take at once is kept (in `pending`, at most one
 * read, PROCESS_IO_BUFFER_SIZE), and while anything is pending the source
 * is not read and the sink is polled for EPOLLOUT: that is the
 * backpressure, and an idle or flowing copier holds no heap memory. A sink
 * that cannot be polled (regular file, /dev/null) is written synchronously.
 * A sink that fails for good is marked broken and further data is read and
 * dropped, so the container never blocks on a reader that has gone away. */
typedef struct Pump {
        ProcessIO *io;
        const char *name;
        int src_fd, dst_fd;
        sd_event_source *src_ev, *dst_ev; /* dst_ev NULL: sink not pollable */
        uint8_t *pending;
        size_t pending_off, pending_len;
        bool eof, broken, done;
} Pump;

enum {
        PUMP_STDIN,
        PUMP_STDOUT, /* with a terminal: pty master -> stdout */
        PUMP_STDERR,
        _PUMP_MAX,
};

struct ProcessIO {
        sd_event *event;
        char *id, *container_id, *ns;
        bool terminal, started;

        int child_fds[3];

        /* The shim's own handles on the client's FIFOs. */
        int stdin_path_fd;   /* O_PATH on the stdin FIFO until started */
        int stdin_writer_fd; /* opened by started, closed by process_io_close_stdin() */
        bool stdin_closed;
        int fifo_readers[2]; /* keep-alive readers on the stdout/stderr FIFOs */

        Pump *pumps[_PUMP_MAX];

        /* Terminal: both wait here for the pty master. */
        int term_stdin_fd; /* stdin FIFO reader, or -EBADF */
        int term_out_fd;   /* where the master's output goes */

        char *console_dir, *console_path;
        int console_listen_fd, console_conn_fd, console_fd;
        sd_event_source *console_listen_ev, *console_conn_ev;
        bool winsize_pending;
        struct winsize winsize;

        /* binary:// logger */
        pid_t logger_pid;
        int logger_pidfd, logger_ready_fd;
        sd_event_source *logger_ready_ev, *logger_exit_ev, *logger_term_timer;
        bool logger_exited;

        bool shutting_down, done_called;
        void (*done)(void *userdata);
        void *userdata;
        sd_event_source *drain_timer, *done_defer;
};

static void process_io_check_drained(ProcessIO *io);

/* ---------------------------------------------------------------- pumps */

static void pump_clear_pending(Pump *p) {
        free(p->pending);
        p->pending = NULL;
        p->pending_off = p->pending_len = 0;
}

static bool pump_stalled(const Pump *p) {
        return p->pending_off < p->pending_len;
}

static Pump *pump_free(Pump *p) {
        if (!p)
                return NULL;
        p->src_ev = sd_event_source_disable_unref(p->src_ev);
        p->dst_ev = sd_event_source_disable_unref(p->dst_ev);
        p->src_fd = safe_close(p->src_fd);
        p->dst_fd = safe_close(p->dst_fd);
        pump_clear_pending(p);
        free(p);
        return NULL;
}

/* Stops the pump for good: sources go before their fds (an fd closed while
 * a dup of it stays open would keep its epoll registration). */
static void pump_finish(Pump *p) {
        if (!p || p->done)
                return;
        p->done = true;
        p->src_ev = sd_event_source_disable_unref(p->src_ev);
        p->dst_ev = sd_event_source_disable_unref(p->dst_ev);
        p->src_fd = safe_close(p->src_fd);
        p->dst_fd = safe_close(p->dst_fd);
        pump_clear_pending(p);
}

/* The sink is gone (the process exited): keep reading and dropping, so the
 * client writing to the FIFO never blocks or gets EPIPE. */
static void pump_drop_sink(Pump *p) {
        if (!p || p->done)
                return;
        p->broken = true;
        pump_clear_pending(p);
        p->dst_ev = sd_event_source_disable_unref(p->dst_ev);
        p->dst_fd = safe_close(p->dst_fd);
        (void)sd_event_source_set_enabled(p->src_ev, p->eof ? SD_EVENT_OFF : SD_EVENT_ON);
}

static void pump_update(Pump *p) {
        if (p->done)
                return;
        bool stalled = pump_stalled(p);
        (void)sd_event_source_set_enabled(p->src_ev, !p->eof && !stalled ? SD_EVENT_ON : SD_EVENT_OFF);
        if (p->dst_ev)
                (void)sd_event_source_set_enabled(p->dst_ev, stalled ? SD_EVENT_ON : SD_EVENT_OFF);
}

/* Writes what the sink takes now. Returns how much of len is dealt with:
 * written, or dropped because the sink broke. */
static size_t pump_write(Pump *p, const uint8_t *data, size_t len) {
        size_t done = 0;

        while (!p->broken && done < len) {
                ssize_t n = write(p->dst_fd, data + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN && p->dst_ev)
                        break;
                if (n <= 0) {
                        /* EPIPE (the reader is gone for good), EIO (console gone), ENOSPC...:
                         * drop what we have and keep draining the source. */
                        log_warning_errno(n < 0 ? errno : EIO, "%s: %s: write failed, dropping output: %m",
                                          p->io->id, p->name);
                        p->broken = true;
                        break;
                }
                done += (size_t)n;
        }
        return p->broken ? len : done;
}

static void pump_flush(Pump *p) {
        if (!pump_stalled(p))
                return;
        p->pending_off += pump_write(p, p->pending + p->pending_off, p->pending_len - p->pending_off);
        if (!pump_stalled(p))
                pump_clear_pending(p);
}

/* Finishes once the source hit EOF and everything read was written. */
static void pump_progress(Pump *p) {
        if (p->eof && !pump_stalled(p)) {
                log_debug("%s: %s: copy finished", p->io->id, p->name);
                pump_finish(p);
                process_io_check_drained(p->io);
                return;
        }
        pump_update(p);
}

static int pump_src_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint8_t buf[PROCESS_IO_BUFFER_SIZE];
        Pump *p = userdata;

        if (pump_stalled(p)) {
                pump_update(p);
                return 0;
        }
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n == 0)
                p->eof = true;
        else if (n < 0) {
                if (errno == EIO)
                        p->eof = true; /* pty master: the slave side is closed */
                else if (errno != EAGAIN && errno != EINTR) {
                        log_warning_errno(errno, "%s: %s: read failed: %m", p->io->id, p->name);
                        p->eof = true;
                }
        } else {
                size_t w = pump_write(p, buf, (size_t)n);
                if (w < (size_t)n) {
                        p->pending = malloc((size_t)n - w);
                        if (!p->pending)
                                log_warning("%s: %s: out of memory, dropping output", p->io->id, p->name);
                        else {
                                memcpy(p->pending, buf + w, (size_t)n - w);
                                p->pending_off = 0;
                                p->pending_len = (size_t)n - w;
                        }
                }
        }
        pump_progress(p);
        return 0;
}

static int pump_dst_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Pump *p = userdata;

        pump_flush(p);
        pump_progress(p);
        return 0;
}

/* Takes ownership of src_fd and dst_fd in all cases. */
static int pump_new(ProcessIO *io, const char *name, int src_fd, int dst_fd, Pump **ret) {
        Pump *p = calloc(1, sizeof(Pump));
        int r;

        if (!p) {
                safe_close(src_fd);
                safe_close(dst_fd);
                return -ENOMEM;
        }
        *p = (Pump){.io = io, .name = name, .src_fd = src_fd, .dst_fd = dst_fd};
        r = fd_nonblock(src_fd, true);
        if (r < 0)
                goto fail;
        r = fd_nonblock(dst_fd, true);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(io->event, &p->src_ev, src_fd, EPOLLIN, pump_src_cb, p);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(io->event, &p->dst_ev, dst_fd, EPOLLOUT, pump_dst_cb, p);
        if (r == -EPERM)
                p->dst_ev = NULL; /* regular file or /dev/null: always writable */
        else if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(p->src_ev, name);
        pump_update(p);
        *ret = p;
        return 0;
fail:
        pump_free(p);
        return r;
}

/* ---------------------------------------------------------------- opening */

static int open_null(int flags) {
        int fd = open("/dev/null", flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? negative_errno() : fd;
}

static int reopen(int path_fd, int flags) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", path_fd);
        int fd = open(p, flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? negative_errno() : fd;
}

/* An output path: a FIFO gets our own non-blocking reader first (the FIFO
 * then never loses its last reader, and the non-blocking writer open cannot
 * fail with ENXIO), then the writer. A regular file is appended to. The file
 * type is checked on an O_PATH fd, so no device is ever opened by mistake. */
static int open_output_path(const char *path, int *ret_reader, int *ret_writer) {
        _cleanup_close_ int pfd = -EBADF, reader = -EBADF, writer = -EBADF;
        struct stat st;

        pfd = open(path, O_PATH | O_CLOEXEC);
        if (pfd < 0)
                return negative_errno();
        if (fstat(pfd, &st) < 0)
                return negative_errno();
        if (S_ISFIFO(st.st_mode)) {
                reader = reopen(pfd, O_RDONLY | O_NONBLOCK);
                if (reader < 0)
                        return reader;
                writer = reopen(pfd, O_WRONLY | O_NONBLOCK);
                if (writer < 0)
                        return writer;
        } else if (S_ISREG(st.st_mode)) {
                writer = reopen(pfd, O_WRONLY | O_APPEND);
                if (writer < 0)
                        return writer;
        } else
                return -EINVAL;
        *ret_reader = TAKE_FD(reader);
        *ret_writer = TAKE_FD(writer);
        return 0;
}

/* The stdin FIFO: our reader now; our own writer comes in process_io_started(). */
static int open_input_fifo(const char *path, int *ret_reader, int *ret_path_fd) {
        _cleanup_close_ int pfd = -EBADF, reader = -EBADF;
        struct stat st;

        pfd = open(path, O_PATH | O_CLOEXEC);
        if (pfd < 0)
                return negative_errno();
        if (fstat(pfd, &st) < 0)
                return negative_errno();
        if (!S_ISFIFO(st.st_mode))
                return -EINVAL;
        reader = reopen(pfd, O_RDONLY | O_NONBLOCK);
        if (reader < 0)
                return reader;
        *ret_reader = TAKE_FD(reader);
        *ret_path_fd = TAKE_FD(pfd);
        return 0;
}

static int open_log_file(const char *path, int *ret) {
        int r = mkdir_parents(path, 0755);
        if (r < 0)
                return r;
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                safe_close(fd);
                return -EINVAL;
        }
        *ret = fd;
        return 0;
}

/* A pipe between the shim and the child. The child's end stays blocking (the
 * container expects ordinary stdio) and is chowned to io_uid/io_gid; ours is
 * non-blocking. Both are O_CLOEXEC: the caller dup2()s the child's end. */
static int make_pipe(const ProcessIOConfig *cfg, bool child_reads, int *ret_child, int *ret_shim) {
        int fds[2];
        _cleanup_close_ int r_fd = -EBADF, w_fd = -EBADF;
        int r;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        r_fd = fds[0];
        w_fd = fds[1];
        int child = child_reads ? r_fd : w_fd;
        if ((cfg->io_uid != 0 || cfg->io_gid != 0) && fchown(child, cfg->io_uid, cfg->io_gid) < 0)
                return negative_errno();
        r = fd_nonblock(child_reads ? w_fd : r_fd, true);
        if (r < 0)
                return r;
        if (child_reads) {
                *ret_child = TAKE_FD(r_fd);
                *ret_shim = TAKE_FD(w_fd);
        } else {
                *ret_child = TAKE_FD(w_fd);
                *ret_shim = TAKE_FD(r_fd);
        }
        return 0;
}

static int dup_cloexec(int fd) {
        int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return r < 0 ? negative_errno() : r;
}

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

/* SIGTERM now and SIGKILL after the timeout, from an object that owns
 * nothing but a dup of the pidfd, so the ProcessIO can be freed meanwhile. */
static void logger_stop(ProcessIO *io) {
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

static int logger_term_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        ProcessIO *io = userdata;

        io->logger_term_timer = sd_event_source_disable_unref(io->logger_term_timer);
        log_debug("%s: logger still running after the process exited, stopping it", io->id);
        logger_stop(io);
        io->logger_exit_ev = sd_event_source_disable_unref(io->logger_exit_ev);
        return 0;
}

/* Starts the logger with fd 3 = out_r, fd 4 = err_r (both consumed). */
static int logger_start(ProcessIO *io, const StdioURI *u, int out_r, int err_r) {
        _cleanup_close_ int o = out_r, e = err_r, h3 = -EBADF, h4 = -EBADF, h5 = -EBADF, ready_r = -EBADF,
                            ready_w = -EBADF;
        _cleanup_free_ char *env_id = NULL, *env_ns = NULL;
        _cleanup_free_ char **argv = NULL;
        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t all, none;
        pid_t pid;
        int fds[2], r;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        ready_r = fds[0];
        ready_w = fds[1];
        r = fd_nonblock(ready_r, true);
        if (r < 0)
                return r;

        /* Move the three fds above 5 first, so that the dup2()s below cannot
         * overwrite one another. */
        h3 = fcntl(o, F_DUPFD_CLOEXEC, 10);
        h4 = fcntl(e, F_DUPFD_CLOEXEC, 10);
        h5 = fcntl(ready_w, F_DUPFD_CLOEXEC, 10);
        if (h3 < 0 || h4 < 0 || h5 < 0)
                return negative_errno();

        if (asprintf(&env_id, "CONTAINER_ID=%s", io->container_id) < 0 ||
            asprintf(&env_ns, "CONTAINER_NAMESPACE=%s", io->ns) < 0)
                return -ENOMEM;
        char *envp[] = {env_id, env_ns, NULL};

        argv = calloc(u->n_args + 2, sizeof(char *));
        if (!argv)
                return -ENOMEM;
        argv[0] = u->path;
        for (size_t i = 0; i < u->n_args; i++)
                argv[i + 1] = u->args[i];

        r = posix_spawn_file_actions_init(&fa);
        if (r != 0)
                return -r;
        r = posix_spawnattr_init(&attr);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        sigfillset(&all);
        sigemptyset(&none);
        if ((r = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
            (r = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) != 0 ||
            (r = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)) != 0 ||
            (r = posix_spawn_file_actions_adddup2(&fa, h3, 3)) != 0 ||
            (r = posix_spawn_file_actions_adddup2(&fa, h4, 4)) != 0 ||
            (r = posix_spawn_file_actions_adddup2(&fa, h5, 5)) != 0 ||
            (r = posix_spawn_file_actions_addclosefrom_np(&fa, 6)) != 0 ||
            (r = posix_spawnattr_setsigmask(&attr, &none)) != 0 ||
            (r = posix_spawnattr_setsigdefault(&attr, &all)) != 0 ||
            (r = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) != 0)
                goto out;
        r = posix_spawn(&pid, u->path, &fa, &attr, argv, envp);
out:
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        if (r != 0)
                return -r;

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
        ready_w = safe_close(ready_w);
        r = sd_event_add_io(io->event, &io->logger_ready_ev, ready_r, EPOLLIN, logger_ready_cb, io);
        if (r < 0)
                return r;
        io->logger_ready_fd = TAKE_FD(ready_r);
        return 0;
}

/* ---------------------------------------------------------------- console */

static void console_remove_socket(ProcessIO *io) {
        io->console_listen_ev = sd_event_source_disable_unref(io->console_listen_ev);
        io->console_conn_ev = sd_event_source_disable_unref(io->console_conn_ev);
        io->console_listen_fd = safe_close(io->console_listen_fd);
        io->console_conn_fd = safe_close(io->console_conn_fd);
        if (io->console_path) {
                (void)unlink(io->console_path);
                free(io->console_path);
                io->console_path = NULL;
        }
        if (io->console_dir) {
                (void)rmdir(io->console_dir);
                free(io->console_dir);
                io->console_dir = NULL;
        }
}

/* Shuts the console down: the copiers stop and the master is closed (the
 * terminal hangs up for anything still attached to it). */
static void console_close(ProcessIO *io) {
        pump_drop_sink(io->pumps[PUMP_STDIN]);
        if (io->pumps[PUMP_STDOUT] && !io->pumps[PUMP_STDOUT]->done) {
                pump_flush(io->pumps[PUMP_STDOUT]);
                pump_finish(io->pumps[PUMP_STDOUT]);
        }
        io->console_fd = safe_close(io->console_fd);
}

static int console_attach(ProcessIO *io, int master) {
        _cleanup_close_ int m = master;
        int in = -EBADF, out = -EBADF, r;

        r = fd_nonblock(m, true);
        if (r < 0)
                return r;
        /* Best effort: a size that cannot be set is no reason to lose the terminal. */
        if (io->winsize_pending && ioctl(m, TIOCSWINSZ, &io->winsize) < 0)
                log_debug_errno(errno, "%s: cannot set the terminal size: %m", io->id);
        io->winsize_pending = false;

        if (io->term_stdin_fd >= 0) {
                in = dup_cloexec(m);
                if (in < 0)
                        return in;
                r = pump_new(io, "stdin", TAKE_FD(io->term_stdin_fd), in, &io->pumps[PUMP_STDIN]);
                if (r < 0)
                        return r;
        }
        out = dup_cloexec(m);
        if (out < 0)
                return out;
        r = pump_new(io, "console", out, TAKE_FD(io->term_out_fd), &io->pumps[PUMP_STDOUT]);
        if (r < 0)
                return r;
        io->console_fd = TAKE_FD(m);
        console_remove_socket(io);
        log_debug("%s: console attached", io->id);
        return 0;
}

/* Reads runc's message: the pty name as data, exactly one fd, which must be
 * a pty master. Returns 1 when the console was attached, 0 to wait for more,
 * negative when this connection is bad (the caller drops it). */
static int console_receive(ProcessIO *io) {
        char data[PATH_MAX];
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * 8)];
        } control;
        struct iovec iov = {.iov_base = data, .iov_len = sizeof(data)};
        struct msghdr mh = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = &control,
                .msg_controllen = sizeof(control),
        };
        int fds[8], n_fds = 0, r;

        ssize_t n = recvmsg(io->console_conn_fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (n_fds < (int)ELEMENTSOF(fds))
                                fds[n_fds++] = fd;
                        else
                                safe_close(fd);
                }
        }
        if (n_fds != 1 || (mh.msg_flags & MSG_CTRUNC)) {
                for (int i = 0; i < n_fds; i++)
                        safe_close(fds[i]);
                return n == 0 && n_fds == 0 ? -ECONNRESET : -EBADMSG;
        }
        unsigned ptn;
        if (ioctl(fds[0], TIOCGPTN, &ptn) < 0) {
                safe_close(fds[0]);
                return -ENOTTY;
        }
        r = console_attach(io, fds[0]);
        if (r < 0)
                return r;
        return 1;
}

static void console_drop_conn(ProcessIO *io) {
        io->console_conn_ev = sd_event_source_disable_unref(io->console_conn_ev);
        io->console_conn_fd = safe_close(io->console_conn_fd);
}

static int console_conn_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ProcessIO *io = userdata;

        int r = console_receive(io);
        if (r < 0) {
                log_warning_errno(r, "%s: bad message on the console socket, dropped: %m", io->id);
                console_drop_conn(io);
        }
        return 0;
}

/* Accepts pending connections; returns 1 if the console got attached. */
static int console_accept(ProcessIO *io) {
        for (;;) {
                int c = accept4(io->console_listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return 0;
                        return negative_errno();
                }
                /* One connection at a time: runc makes exactly one. */
                console_drop_conn(io);
                io->console_conn_fd = c;
                int r = console_receive(io);
                if (r > 0)
                        return 1;
                if (r < 0) {
                        log_warning_errno(r, "%s: bad message on the console socket, dropped: %m", io->id);
                        console_drop_conn(io);
                        continue;
                }
                r = sd_event_add_io(io->event, &io->console_conn_ev, io->console_conn_fd, EPOLLIN,
                                    console_conn_cb, io);
                if (r < 0) {
                        console_drop_conn(io);
                        return r;
                }
        }
}

static int console_listen_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ProcessIO *io = userdata;

        int r = console_accept(io);
        if (r < 0)
                log_warning_errno(r, "%s: failed to accept on the console socket: %m", io->id);
        return 0;
}

static int console_socket_setup(ProcessIO *io) {
        const char *base = getenv("XDG_RUNTIME_DIR");
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        int r;

        if (isempty(base) || base[0] != '/' || strlen(base) > 64)
                base = "/tmp";
        if (asprintf(&io->console_dir, "%s/kyb-pty.XXXXXX", base) < 0) {
                io->console_dir = NULL;
                return -ENOMEM;
        }
        if (!mkdtemp(io->console_dir)) {
                r = negative_errno();
                free(io->console_dir);
                io->console_dir = NULL;
                return r;
        }
        if (asprintf(&io->console_path, "%s/pty.sock", io->console_dir) < 0) {
                io->console_path = NULL;
                return -ENOMEM;
        }
        if (strlen(io->console_path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, io->console_path);

        io->console_listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (io->console_listen_fd < 0)
                return negative_errno();
        if (bind(io->console_listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return negative_errno();
        if (listen(io->console_listen_fd, 4) < 0)
                return negative_errno();
        return sd_event_add_io(io->event, &io->console_listen_ev, io->console_listen_fd, EPOLLIN,
                               console_listen_cb, io);
}

/* ---------------------------------------------------------------- setup */

static int setup_stdin(ProcessIO *io, const ProcessIOConfig *cfg, const StdioURI *in) {
        int reader = -EBADF, child = -EBADF, shim = -EBADF, r;

        if (in->kind == STDIO_NONE)
                return 0;
        r = open_input_fifo(in->path, &reader, &io->stdin_path_fd);
        if (r < 0)
                return r;
        if (io->terminal) {
                io->term_stdin_fd = reader;
                return 0;
        }
        r = make_pipe(cfg, true, &child, &shim);
        if (r < 0) {
                safe_close(reader);
                return r;
        }
        safe_close(io->child_fds[0]);
        io->child_fds[0] = child;
        return pump_new(io, "stdin", reader, shim, &io->pumps[PUMP_STDIN]);
}

/* Non-terminal output to FIFOs or plain regular files. */
static int setup_output_paths(ProcessIO *io, const ProcessIOConfig *cfg, const StdioURI *out,
                              const StdioURI *err) {
        int sinks[2] = {-EBADF, -EBADF}, r;
        const StdioURI *u[2] = {out, err};

        for (int i = 0; i < 2; i++) {
                if (u[i]->kind == STDIO_NONE)
                        continue;
                if (u[i]->kind != STDIO_PATH)
                        return -EINVAL;
                if (i == 1 && out->kind == STDIO_PATH && streq(out->path, err->path)) {
                        /* One shared writer (a dup: each copier needs its own epoll registration). */
                        io->fifo_readers[1] = -EBADF;
                        sinks[1] = dup_cloexec(sinks[0]);
                        if (sinks[1] < 0)
                                r = sinks[1];
                        else
                                r = 0;
                } else
                        r = open_output_path(u[i]->path, &io->fifo_readers[i], &sinks[i]);
                if (r < 0)
                        goto fail;
        }
        for (int i = 0; i < 2; i++) {
                int child, shim;
                if (sinks[i] < 0)
                        continue;
                r = make_pipe(cfg, false, &child, &shim);
                if (r < 0)
                        goto fail;
                safe_close(io->child_fds[i + 1]);
                io->child_fds[i + 1] = child;
                r = pump_new(io, i == 0 ? "stdout" : "stderr", shim, TAKE_FD(sinks[i]),
                             &io->pumps[PUMP_STDOUT + i]);
                if (r < 0)
                        goto fail;
        }
        return 0;
fail:
        safe_close(sinks[0]);
        safe_close(sinks[1]);
        return r;
}

/* Non-terminal file:// log: both requested streams go to the one file. */
static int setup_output_file(ProcessIO *io, const ProcessIOConfig *cfg, const char *path, bool want_out,
                             bool want_err) {
        _cleanup_close_ int fd = -EBADF;
        int r;

        r = open_log_file(path, &fd);
        if (r < 0)
                return r;
        for (int i = 0; i < 2; i++) {
                int child, shim, sink;
                if (!(i == 0 ? want_out : want_err))
                        continue;
                sink = dup_cloexec(fd);
                if (sink < 0)
                        return sink;
                r = make_pipe(cfg, false, &child, &shim);
                if (r < 0) {
                        safe_close(sink);
                        return r;
                }
                safe_close(io->child_fds[i + 1]);
                io->child_fds[i + 1] = child;
                r = pump_new(io, i == 0 ? "stdout" : "stderr", shim, sink, &io->pumps[PUMP_STDOUT + i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Non-terminal binary:// logger: the child writes straight into its pipes. */
static int setup_output_binary(ProcessIO *io, const ProcessIOConfig *cfg, const StdioURI *u) {
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
static int setup_terminal_output(ProcessIO *io, const StdioURI *out) {
        int r, reader = -EBADF;

        switch (out->kind) {
        case STDIO_NONE:
                io->term_out_fd = open_null(O_WRONLY);
                return io->term_out_fd < 0 ? io->term_out_fd : 0;
        case STDIO_PATH:
                r = open_output_path(out->path, &reader, &io->term_out_fd);
                if (r < 0)
                        return r;
                io->fifo_readers[0] = reader;
                return 0;
        case STDIO_FILE:
                return open_log_file(out->path, &io->term_out_fd);
        case STDIO_BINARY: {
                int fds[2], err_r;
                if (pipe2(fds, O_CLOEXEC) < 0)
                        return negative_errno();
                io->term_out_fd = fds[1];
                /* The logger's stderr pipe: nothing is ever written there. */
                int efds[2];
                if (pipe2(efds, O_CLOEXEC) < 0) {
                        safe_close(fds[0]);
                        return negative_errno();
                }
                safe_close(efds[1]);
                err_r = efds[0];
                return logger_start(io, out, fds[0], err_r);
        }
        }
        return -EINVAL;
}

int process_io_new(sd_event *e, const ProcessIOConfig *cfg, ProcessIO **ret) {
        _cleanup_(stdio_uri_done) StdioURI in = {}, out = {}, err = {};
        _cleanup_(process_io_freep) ProcessIO *io = NULL;
        int r;

        if (!e || !cfg || !ret || isempty(cfg->id))
                return -EINVAL;

        r = stdio_uri_parse(cfg->stdin_path, &in);
        if (r < 0)
                return r;
        r = stdio_uri_parse(cfg->stdout_path, &out);
        if (r < 0)
                return r;
        if (!cfg->terminal) {
                r = stdio_uri_parse(cfg->stderr_path, &err);
                if (r < 0)
                        return r;
        }
        if (in.kind != STDIO_NONE && in.kind != STDIO_PATH)
                return -EINVAL;

        io = calloc(1, sizeof(ProcessIO));
        if (!io)
                return -ENOMEM;
        io->event = sd_event_ref(e);
        io->terminal = cfg->terminal;
        for (int i = 0; i < 3; i++)
                io->child_fds[i] = -EBADF;
        io->stdin_path_fd = io->stdin_writer_fd = io->fifo_readers[0] = io->fifo_readers[1] = -EBADF;
        io->term_stdin_fd = io->term_out_fd = -EBADF;
        io->console_listen_fd = io->console_conn_fd = io->console_fd = -EBADF;
        io->logger_pidfd = io->logger_ready_fd = -EBADF;

        io->id = strdup(cfg->id);
        io->container_id = strdup(isempty(cfg->container_id) ? cfg->id : cfg->container_id);
        io->ns = strdup(cfg->ns ? cfg->ns : "");
        if (!io->id || !io->container_id || !io->ns)
                return -ENOMEM;

        for (int i = 0; i < 3; i++) {
                io->child_fds[i] = open_null(i == 0 ? O_RDONLY : O_WRONLY);
                if (io->child_fds[i] < 0)
                        return io->child_fds[i];
        }

        bool binary = out.kind == STDIO_BINARY || (out.kind == STDIO_NONE && err.kind == STDIO_BINARY);
        if (binary && isempty(cfg->ns))
                return -EINVAL; /* CONTAINER_NAMESPACE is part of the logger contract */

        r = setup_stdin(io, cfg, &in);
        if (r < 0)
                return r;

        if (io->terminal) {
                r = setup_terminal_output(io, &out);
                if (r < 0)
                        return r;
                r = console_socket_setup(io);
                if (r < 0)
                        return r;
        } else {
                /* The kind of stdout decides (stderr's if stdout is empty), as in
                 * containerd's runc shim. */
                const StdioURI *lead = out.kind != STDIO_NONE ? &out : &err;
                switch (lead->kind) {
                case STDIO_NONE:
                        break;
                case STDIO_PATH:
                        r = setup_output_paths(io, cfg, &out, &err);
                        break;
                case STDIO_FILE:
                        if ((out.kind != STDIO_NONE && out.kind != STDIO_FILE) ||
                            (err.kind != STDIO_NONE && err.kind != STDIO_FILE))
                                return -EINVAL;
                        r = setup_output_file(io, cfg, lead->path, out.kind != STDIO_NONE,
                                              err.kind != STDIO_NONE);
                        break;
                case STDIO_BINARY:
                        if ((out.kind != STDIO_NONE && out.kind != STDIO_BINARY) ||
                            (err.kind != STDIO_NONE && err.kind != STDIO_BINARY))
                                return -EINVAL;
                        r = setup_output_binary(io, cfg, lead);
                        break;
                }
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(io);
        return 0;
}

/* ---------------------------------------------------------------- operations */

void process_io_child_fds(ProcessIO *io, int ret_fds[3]) {
        for (int i = 0; i < 3; i++)
                ret_fds[i] = io ? io->child_fds[i] : -EBADF;
}

const char *process_io_console_socket(ProcessIO *io) {
        return io && io->terminal ? io->console_path : NULL;
}

bool process_io_has_console(ProcessIO *io) {
        return io && io->console_fd >= 0;
}

pid_t process_io_logger_pid(ProcessIO *io) {
        return io ? io->logger_pid : 0;
}

/* Whether the client has already been connected to the stdin FIFO and
 * closed its side (POLLHUP is only reported once a writer has come and
 * gone). Its EOF is then on its way to the process and must not be masked. */
static bool stdin_client_done(ProcessIO *io) {
        Pump *p = io->pumps[PUMP_STDIN];
        int fd = p ? (p->done ? -EBADF : p->src_fd) : io->term_stdin_fd;

        if (p && p->done)
                return true;
        if (fd < 0)
                return false;
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        return poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLHUP);
}

int process_io_started(ProcessIO *io) {
        int r;

        if (!io)
                return -EINVAL;
        for (int i = 0; i < 3; i++)
                io->child_fds[i] = safe_close(io->child_fds[i]);
        /* runc has returned, so its message is queued on the socket even if
         * the loop has not dispatched it yet. */
        if (io->terminal && io->console_fd < 0 && io->console_listen_fd >= 0) {
                r = io->console_conn_fd >= 0 ? console_receive(io) : 0;
                if (r < 0)
                        console_drop_conn(io);
                if (r <= 0 && io->console_fd < 0) {
                        r = console_accept(io);
                        if (r < 0)
                                return r;
                }
        }
        /* The shim's own writer on the stdin FIFO, opened only now, as the
         * runc shim does: a client that wrote everything and closed its side
         * during create (`echo data | ctr run` does, and ctr sends no CloseIO
         * then) must still get its EOF to the process. From here on, the
         * client closing its side is not enough: CloseIO is needed too. */
        if (!io->started && io->stdin_path_fd >= 0 && !io->stdin_closed && !stdin_client_done(io)) {
                r = reopen(io->stdin_path_fd, O_WRONLY | O_NONBLOCK);
                if (r < 0)
                        return r;
                io->stdin_writer_fd = r;
        }
        io->stdin_path_fd = safe_close(io->stdin_path_fd);
        io->started = true;
        return 0;
}

int process_io_resize(ProcessIO *io, unsigned width, unsigned height) {
        if (!io)
                return -EINVAL;
        if (!io->terminal)
                return -ENOTTY;
        if (width > USHRT_MAX || height > USHRT_MAX)
                return -EINVAL;
        io->winsize = (struct winsize){.ws_row = (unsigned short)height, .ws_col = (unsigned short)width};
        if (io->console_fd < 0) {
                io->winsize_pending = true;
                return 0;
        }
        if (ioctl(io->console_fd, TIOCSWINSZ, &io->winsize) < 0)
                return negative_errno();
        return 0;
}

int process_io_close_stdin(ProcessIO *io) {
        if (!io)
                return -EINVAL;
        io->stdin_writer_fd = safe_close(io->stdin_writer_fd);
        io->stdin_closed = true;
        return 0;
}

static int done_defer_cb(sd_event_source *s, void *userdata) {
        ProcessIO *io = userdata;

        io->done_defer = sd_event_source_disable_unref(io->done_defer);
        if (io->done)
                io->done(io->userdata);
        return 0;
}

/* Ends the shutdown and schedules done. Fails only if no defer source can
 * be made (out of memory); then done is not scheduled. */
static int process_io_finish_shutdown(ProcessIO *io, bool timed_out) {
        io->done_called = true;
        io->drain_timer = sd_event_source_disable_unref(io->drain_timer);
        if (timed_out)
                log_debug("%s: output not drained in time, going on", io->id);
        if (io->terminal)
                console_close(io);
        return sd_event_add_defer(io->event, &io->done_defer, done_defer_cb, io);
}

/* From an event callback: done runs now if it cannot be scheduled, rather than never. */
static void process_io_finish_shutdown_async(ProcessIO *io, bool timed_out) {
        if (process_io_finish_shutdown(io, timed_out) < 0 && io->done) {
                log_warning("%s: cannot schedule the end of the output, going on", io->id);
                io->done(io->userdata);
        }
}

static bool process_io_output_drained(ProcessIO *io) {
        for (int i = PUMP_STDOUT; i <= PUMP_STDERR; i++)
                if (io->pumps[i] && !io->pumps[i]->done)
                        return false;
        return true;
}

static void process_io_check_drained(ProcessIO *io) {
        if (!io->shutting_down || io->done_called)
                return;
        if (process_io_output_drained(io))
                process_io_finish_shutdown_async(io, false);
}

static int drain_timer_cb(sd_event_source *s, uint64_t usec, void *userdata) {
        process_io_finish_shutdown_async(userdata, true);
        return 0;
}

int process_io_shutdown(ProcessIO *io, void (*done)(void *userdata), void *userdata) {
        int r;

        if (!io)
                return -EINVAL;
        if (io->shutting_down)
                return -EALREADY;
        io->shutting_down = true;
        io->done = done;
        io->userdata = userdata;

        /* The child-side ends must be gone or the pipes never reach EOF. */
        for (int i = 0; i < 3; i++)
                io->child_fds[i] = safe_close(io->child_fds[i]);
        /* Nothing reads stdin any more: its data is dropped from now on, but
         * the FIFO stays open and drained until free. */
        pump_drop_sink(io->pumps[PUMP_STDIN]);
        /* A terminal that never got its master has nothing to drain. */
        if (io->terminal && io->console_fd < 0)
                console_remove_socket(io);

        if (io->logger_pid > 0 && !io->logger_exited && io->logger_exit_ev) {
                r = sd_event_add_time_relative(io->event, &io->logger_term_timer, CLOCK_MONOTONIC,
                                               PROCESS_IO_DRAIN_TIMEOUT_USEC, 0, logger_term_cb, io);
                if (r < 0)
                        logger_stop(io); /* no timer: stop it now rather than never */
        }

        if (process_io_output_drained(io))
                r = process_io_finish_shutdown(io, false);
        else
                r = sd_event_add_time_relative(io->event, &io->drain_timer, CLOCK_MONOTONIC,
                                               PROCESS_IO_DRAIN_TIMEOUT_USEC, 0, drain_timer_cb, io);
        if (r < 0) {
                /* The caller goes on without us: done must never come later. */
                io->done = NULL;
                io->done_called = true;
                return r;
        }
        return 0;
}

ProcessIO *process_io_free(ProcessIO *io) {
        if (!io)
                return NULL;
        io->drain_timer = sd_event_source_disable_unref(io->drain_timer);
        io->done_defer = sd_event_source_disable_unref(io->done_defer);
        for (int i = 0; i < _PUMP_MAX; i++)
                io->pumps[i] = pump_free(io->pumps[i]);
        console_remove_socket(io);
        io->console_fd = safe_close(io->console_fd);
        io->term_stdin_fd = safe_close(io->term_stdin_fd);
        io->term_out_fd = safe_close(io->term_out_fd);
        for (int i = 0; i < 3; i++)
                io->child_fds[i] = safe_close(io->child_fds[i]);
        io->stdin_writer_fd = safe_close(io->stdin_writer_fd);
        io->stdin_path_fd = safe_close(io->stdin_path_fd);
        io->fifo_readers[0] = safe_close(io->fifo_readers[0]);
        io->fifo_readers[1] = safe_close(io->fifo_readers[1]);

        io->logger_ready_ev = sd_event_source_disable_unref(io->logger_ready_ev);
        io->logger_ready_fd = safe_close(io->logger_ready_fd);
        io->logger_term_timer = sd_event_source_disable_unref(io->logger_term_timer);
        io->logger_exit_ev = sd_event_source_disable_unref(io->logger_exit_ev);
        logger_stop(io);
        io->logger_pidfd = safe_close(io->logger_pidfd);

        sd_event_unref(io->event);
        free(io->id);
        free(io->container_id);
        free(io->ns);
        free(io);
        return NULL;
}
