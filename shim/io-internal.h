/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the stdio files share: the ProcessIO record, its Pumps, and the
 * helpers each file offers the others. Internal to io*.c; see io.h. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <systemd/sd-event.h>

#include "io.h"
#include "uri.h"

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

/* ---- io-pump.c: the copiers */

Pump *pump_free(Pump *p);

/* Stops the pump for good: sources go before their fds (an fd closed while
 * a dup of it stays open would keep its epoll registration). */
void pump_finish(Pump *p);

/* The sink is gone (the process exited): keep reading and dropping, so the
 * client writing to the FIFO never blocks or gets EPIPE. */
void pump_drop_sink(Pump *p);

void pump_flush(Pump *p);

/* Takes ownership of src_fd and dst_fd in all cases. */
int pump_new(ProcessIO *io, const char *name, int src_fd, int dst_fd, Pump **ret);

/* ---- io-fifo.c: FIFOs, files and pipes */

int open_null(int flags);

int reopen(int path_fd, int flags);

/* An output path: a FIFO gets our own non-blocking reader first (the FIFO
 * then never loses its last reader, and the non-blocking writer open cannot
 * fail with ENXIO), then the writer. A regular file is appended to. The file
 * type is checked on an O_PATH fd, so no device is ever opened by mistake. */
int open_output_path(const char *path, int *ret_reader, int *ret_writer);

int open_log_file(const char *path, int *ret);

/* A pipe between the shim and the child. The child's end stays blocking (the
 * container expects ordinary stdio) and is chowned to io_uid/io_gid; ours is
 * non-blocking. Both are O_CLOEXEC: the caller dup2()s the child's end. */
int make_pipe(const ProcessIOConfig *cfg, bool child_reads, int *ret_child, int *ret_shim);

int dup_cloexec(int fd);

int setup_stdin(ProcessIO *io, const ProcessIOConfig *cfg, const StdioURI *in);

/* Non-terminal output to FIFOs or plain regular files. */
int setup_output_paths(ProcessIO *io, const ProcessIOConfig *cfg, const StdioURI *out, const StdioURI *err);

/* Non-terminal file:// log: both requested streams go to the one file. */
int setup_output_file(ProcessIO *io, const ProcessIOConfig *cfg, const char *path, bool want_out,
                      bool want_err);

/* ---- io-logger.c: binary:// loggers */

/* SIGTERM now and SIGKILL after the timeout, from an object that owns
 * nothing but a dup of the pidfd, so the ProcessIO can be freed meanwhile. */
void logger_stop(ProcessIO *io);

int logger_term_cb(sd_event_source *s, uint64_t usec, void *userdata);

/* Starts the logger with fd 3 = out_r, fd 4 = err_r (both consumed). */
int logger_start(ProcessIO *io, const StdioURI *u, int out_r, int err_r);

int setup_output_binary(ProcessIO *io, const ProcessIOConfig *cfg, const StdioURI *u);

/* ---- io-console.c: the console socket and the pty master */

void console_remove_socket(ProcessIO *io);

/* Shuts the console down: the copiers stop and the master is closed (the
 * terminal hangs up for anything still attached to it). */
void console_close(ProcessIO *io);

/* Reads runc's message: the pty name as data, exactly one fd, which must be
 * a pty master. Returns 1 when the console was attached, 0 to wait for more,
 * negative when this connection is bad (the caller drops it). */
int console_receive(ProcessIO *io);

void console_drop_conn(ProcessIO *io);

/* Accepts pending connections; returns 1 if the console got attached. */
int console_accept(ProcessIO *io);

int console_socket_setup(ProcessIO *io);

int setup_terminal_output(ProcessIO *io, const StdioURI *out);

/* ---- io.c */

void process_io_check_drained(ProcessIO *io);
