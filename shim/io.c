/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>

#include "io-internal.h"
#include "io.h"
#include "log.h"
#include "uri.h"
#include "util.h"

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

void process_io_check_drained(ProcessIO *io) {
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
