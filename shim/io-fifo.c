/* SPDX-License-Identifier: Apache-2.0 */
/* The client's FIFOs and files, /dev/null, and the pipes to the container:
 * opened without blocking. */
#include <fcntl.h>
#include <sys/stat.h>

#include "io-internal.h"
#include "util.h"

/* ---------------------------------------------------------------- opening */

int open_null(int flags) {
        int fd = open("/dev/null", flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? negative_errno() : fd;
}

int reopen(int path_fd, int flags) {
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", path_fd);
        int fd = open(p, flags | O_CLOEXEC | O_NOCTTY);
        return fd < 0 ? negative_errno() : fd;
}

/* An O_PATH fd of path and what it is (FIFO or file), for reopen(). */
static int open_path_stat(const char *path, struct stat *ret) {
        _cleanup_close_ int pfd = open(path, O_PATH | O_CLOEXEC);
        if (pfd < 0)
                return negative_errno();
        if (fstat(pfd, ret) < 0)
                return negative_errno();
        return TAKE_FD(pfd);
}

int open_output_path(const char *path, int *ret_reader, int *ret_writer) {
        _cleanup_close_ int pfd = -EBADF, reader = -EBADF, writer = -EBADF;
        struct stat st;

        pfd = open_path_stat(path, &st);
        if (pfd < 0)
                return pfd;
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

        pfd = open_path_stat(path, &st);
        if (pfd < 0)
                return pfd;
        if (!S_ISFIFO(st.st_mode))
                return -EINVAL;
        reader = reopen(pfd, O_RDONLY | O_NONBLOCK);
        if (reader < 0)
                return reader;
        *ret_reader = TAKE_FD(reader);
        *ret_path_fd = TAKE_FD(pfd);
        return 0;
}

int open_log_file(const char *path, int *ret) {
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

int make_pipe(const ProcessIOConfig *cfg, bool child_reads, int *ret_child, int *ret_shim) {
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

int dup_cloexec(int fd) {
        int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        return r < 0 ? negative_errno() : r;
}

/* ---------------------------------------------------------------- setup */

int setup_stdin(ProcessIO *io, const ProcessIOConfig *cfg, const StdioURI *in) {
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

int setup_output_paths(ProcessIO *io, const ProcessIOConfig *cfg, const StdioURI *out, const StdioURI *err) {
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
int setup_output_file(ProcessIO *io, const ProcessIOConfig *cfg, const char *path, bool want_out,
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
