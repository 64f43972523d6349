/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The stdio of one container process (init or exec), as containerd's runc
 * shim does it (PROTOCOL.md section 6): FIFOs, file:// logs, binary://
 * loggers, /dev/null, and terminals through runc's --console-socket.
 *
 * Everything runs on the shim's sd-event loop and never blocks: FIFOs are
 * opened O_NONBLOCK (our own reader first, so the writer open cannot block
 * and the FIFO never loses its last reader), copies go through bounded
 * buffers (64 KiB per direction) with backpressure, and a sink that is gone
 * drops data instead of stalling the shim.
 *
 * Life cycle, as the shim calls it:
 *
 *   process_io_new()            before runc runs
 *   process_io_child_fds()      dup2 these onto 0, 1, 2 in runc's child
 *   process_io_console_socket() terminal: runc --console-socket PATH
 *   process_io_started()        runc create/exec/restore succeeded
 *   process_io_resize()         ResizePty
 *   process_io_close_stdin()    CloseIO{stdin}
 *   process_io_shutdown()       the process exited; done() once output is flushed
 *   process_io_free()           Delete (or a failed create)
 *
 * Functions return >= 0 or a negative errno and never log; the event
 * callbacks inside log at debug/warning level with the process id.
 *
 * Expects SIGPIPE to be ignored by the caller (the shim does it). */

#include <stdbool.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

typedef struct ProcessIO ProcessIO;

#define PROCESS_IO_BUFFER_SIZE (64U * 1024U)
/* How long process_io_shutdown() waits for output to drain (grandchildren
 * may keep the pipes open forever). */
#define PROCESS_IO_DRAIN_TIMEOUT_USEC (2ULL * 1000000ULL)
/* binary:// loggers: SIGTERM, then SIGKILL after this. */
#define PROCESS_IO_LOGGER_KILL_TIMEOUT_USEC (12ULL * 1000000ULL)

typedef struct ProcessIOConfig {
        const char *id;           /* process id (container id or exec id), for logs */
        const char *container_id; /* CONTAINER_ID of binary:// loggers (NULL: id) */
        const char *ns;           /* containerd namespace: CONTAINER_NAMESPACE of loggers */
        const char *stdin_path;   /* "", NULL, a FIFO path (or fifo:///path) */
        const char *stdout_path;  /* "", FIFO/regular-file path, file:///..., binary:///...?k=v */
        const char *stderr_path;  /* likewise; ignored with a terminal */
        bool terminal;
        uid_t io_uid; /* owner of the container-side pipe ends (fchown when uid or gid != 0) */
        gid_t io_gid;
} ProcessIOConfig;

/* Sets up everything before runc runs:
 *   - all paths empty (no terminal): /dev/null;
 *   - FIFOs (plain paths): pipes for the child, copied to/from the FIFOs. An
 *     empty stream is /dev/null. stdout == stderr (same string) share one
 *     writer. A plain path naming a regular file is appended to. The stdin
 *     FIFO gets our reader here, our own writer in process_io_started();
 *   - file:///path (taken from stdout, or stderr if stdout is empty):
 *     mkdir -p the parent (0755), create the file 0644, O_APPEND; stdout and
 *     stderr (if requested at all) both go there;
 *   - binary:///path?k=v: the logger is started here (spawn_exec) with
 *     argv = path k v ..., environment CONTAINER_ID and CONTAINER_NAMESPACE
 *     only, 0-2 /dev/null, fd 3/4 = read ends of the stdout/stderr pipes,
 *     fd 5 = write end of the ready pipe. The ready byte (or EOF) is awaited
 *     asynchronously: output written before it just waits in the pipe. The
 *     child's stdout/stderr are the pipes' write ends directly (no copying),
 *     as in containerd's runc shim;
 *   - terminal: a console socket is created; stdin (a FIFO) and stdout (any
 *     of the above; empty = discard) are opened now, the copying starts when
 *     runc hands over the pty master.
 * Returns -EINVAL for bad or inconsistent paths/URIs, -ENOENT etc. from the
 * file system, and never blocks (except spawn_exec's fork+exec). */
int process_io_new(sd_event *e, const ProcessIOConfig *cfg, ProcessIO **ret);

/* The fds runc's child must get as 0, 1, 2 (pipe ends or /dev/null; never -1:
 * the terminal case gets /dev/null). They are O_CLOEXEC; dup2() them in the
 * child. Valid until process_io_started() or process_io_free(). */
void process_io_child_fds(ProcessIO *io, int ret_fds[3]);

/* Terminal: path of the listening unix socket (in a private 0700 directory)
 * to pass as runc --console-socket. NULL without a terminal. The pty master
 * is accepted asynchronously (exactly one SCM_RIGHTS fd that must be a pty
 * master; other connections are dropped and the socket keeps listening). */
const char *process_io_console_socket(ProcessIO *io);
/* Whether the pty master has arrived (for tests and diagnostics). */
bool process_io_has_console(ProcessIO *io);

/* runc create/exec/restore returned successfully: closes the child-side fds
 * in the shim (so EOF can reach the copiers); with a terminal, picks up the
 * pty master if it is queued but not yet dispatched; opens the shim's own
 * write handle on the stdin FIFO, so that from now on the process gets EOF
 * only after CloseIO *and* the client closing its side. If the client has
 * already written everything and closed its side (`echo data | ctr run`:
 * ctr sends no CloseIO when its input ends during create), the handle is not
 * opened and that EOF goes through, as with the runc shim. Idempotent. */
int process_io_started(ProcessIO *io);

/* ResizePty: TIOCSWINSZ on the pty master. -ENOTTY when the process has no
 * terminal: the runc shim answers that with success (a no-op), so the
 * caller should too. Before the master arrived, the size is remembered and
 * applied on arrival. */
int process_io_resize(ProcessIO *io, unsigned width, unsigned height);

/* CloseIO{stdin}: closes the shim's own write handle on the stdin FIFO, so
 * the process gets EOF once the client has closed its side as well.
 * Idempotent; 0 without stdin. */
int process_io_close_stdin(ProcessIO *io);

/* The process exited: stop feeding stdin, let stdout/stderr (or the pty
 * master) drain to EOF, then shut the console down, and call done(userdata)
 * from the event loop (never from inside this call) once all output was
 * flushed, or after PROCESS_IO_DRAIN_TIMEOUT_USEC at the latest. Copying
 * that is still possible after the timeout goes on in the background (pipes)
 * or is cut (the console is closed). A binary:// logger is asked to stop
 * (SIGTERM, SIGKILL 12 s later) if it has not exited on its own by the
 * timeout. done is called at most once, and never after process_io_free().
 * On failure (out of memory) done will never be called: the caller goes on
 * by itself. A second call returns -EALREADY. */
int process_io_shutdown(ProcessIO *io, void (*done)(void *userdata), void *userdata);

/* pid of the binary:// logger, or 0. The shim's reaper reaps it (it is our
 * child); its exit is no container event and can be ignored. The module
 * itself watches it through a pidfd and never waits for it. */
pid_t process_io_logger_pid(ProcessIO *io);

/* Frees everything: closes all fds, removes the console socket directory. A
 * logger still running gets SIGTERM, and SIGKILL 12 s later from a timer
 * that outlives the ProcessIO (it is bound to the event loop). Returns NULL. */
ProcessIO *process_io_free(ProcessIO *io);

static inline void process_io_freep(ProcessIO **io) {
        if (*io)
                process_io_free(*io);
}
