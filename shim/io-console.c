/* SPDX-License-Identifier: Apache-2.0 */
/* Terminals: the console socket runc connects to, the pty master it hands
 * over, and the copying of the master's output. */
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>

#include "io-internal.h"
#include "log.h"
#include "util.h"

/* ---------------------------------------------------------------- console */

void console_remove_socket(ProcessIO *io) {
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

void console_close(ProcessIO *io) {
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

int console_receive(ProcessIO *io) {
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

void console_drop_conn(ProcessIO *io) {
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

int console_accept(ProcessIO *io) {
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

int console_socket_setup(ProcessIO *io) {
        const char *base = getenv("XDG_RUNTIME_DIR");
        struct sockaddr_un sa;
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
        r = sockaddr_un_set(&sa, io->console_path);
        if (r < 0)
                return r;

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

int setup_terminal_output(ProcessIO *io, const StdioURI *out) {
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
