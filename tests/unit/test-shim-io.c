/* SPDX-License-Identifier: Apache-2.0 */
/* The shim's stdio module against real kernel objects: FIFOs, pipes, files,
 * a shell-script logger, a pty pair and a unix socket playing runc. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>

#include "shim/io.h"
#include "shim/uri.h"
#include "test.h"

#define WAIT_USEC (5 * USEC_PER_SEC)

static const char *tmpdir;

static void setup_tmpdir(void) {
        tmpdir = test_tmpdir();
}

static char *path_in(const char *name) {
        char *p;
        ASSERT_TRUE(asprintf(&p, "%s/%s", tmpdir, name) > 0);
        return p;
}

static char *fifo_in(const char *name) {
        char *p = path_in(name);
        ASSERT_OK(mkfifo(p, 0600));
        return p;
}

/* containerd's side of an output FIFO: a reader, opened before the shim. */
static int fifo_reader(const char *p) {
        int fd = open(p, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        return fd;
}

static sd_event *new_loop(void) {
        /* As the shim does: a vanished reader is an error, not a signal. */
        ASSERT_TRUE(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
        return test_event();
}

/* Runs the loop and reads fd (non-blocking) until want bytes, EOF or the
 * deadline. Returns the byte count; *ret_eof tells whether EOF was seen. */
static size_t loop_read(sd_event *e, int fd, char *buf, size_t want, bool *ret_eof) {
        uint64_t deadline = now_monotonic_usec() + WAIT_USEC;
        size_t got = 0;
        bool eof = false;

        while (got < want && now_monotonic_usec() < deadline) {
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 0) <= 0)
                        continue;
                ssize_t n = read(fd, buf + got, want - got);
                if (n == 0) {
                        eof = true;
                        break;
                }
                if (n < 0) {
                        ASSERT_TRUE(errno == EAGAIN || errno == EINTR);
                        continue;
                }
                got += (size_t)n;
        }
        if (ret_eof)
                *ret_eof = eof;
        return got;
}

static void loop_for(sd_event *e, uint64_t usec) {
        uint64_t deadline = now_monotonic_usec() + usec;
        while (now_monotonic_usec() < deadline)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
}

static bool readable(int fd) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        return poll(&p, 1, 0) > 0;
}

/* The child's fds as runc would inherit them: dups that outlive started(). */
static void child_fds(ProcessIO *io, int fds[3]) {
        int raw[3];
        process_io_child_fds(io, raw);
        for (int i = 0; i < 3; i++) {
                ASSERT_TRUE(raw[i] >= 0);
                fds[i] = fcntl(raw[i], F_DUPFD_CLOEXEC, 3);
                ASSERT_TRUE(fds[i] >= 0);
        }
}

static void write_str(int fd, const char *s) {
        ASSERT_OK(write_all(fd, s, strlen(s)));
}

static bool is_dev_null(int fd) {
        struct stat st;
        ASSERT_OK(fstat(fd, &st));
        return S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3);
}

typedef struct DoneState {
        int calls;
        int fifo_fd; /* if >= 0, drained into buf when done runs */
        char buf[256];
        size_t len;
        uint64_t at;
} DoneState;

static void on_done(void *userdata) {
        DoneState *d = userdata;
        d->calls++;
        d->at = now_monotonic_usec();
        if (d->fifo_fd >= 0) {
                ssize_t n = read(d->fifo_fd, d->buf, sizeof(d->buf) - 1);
                d->len = n > 0 ? (size_t)n : 0;
        }
}

static void wait_done(sd_event *e, DoneState *d, uint64_t usec) {
        uint64_t deadline = now_monotonic_usec() + usec;
        while (d->calls == 0 && now_monotonic_usec() < deadline)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
}

/* ------------------------------------------------------------ URI parsing */

/* The end of a test with one ProcessIO: it and the child's ends (the harness
 * releases the loop and removes the files). */
static void io_test_done(ProcessIO *io, int fds[3]) {
        process_io_free(io);
        for (int i = 0; i < 3; i++)
                safe_close(fds[i]);
}

TEST(uri_parse) {
        StdioURI u;

        ASSERT_OK(stdio_uri_parse("", &u));
        ASSERT_EQ(u.kind, STDIO_NONE);
        ASSERT_OK(stdio_uri_parse(NULL, &u));
        ASSERT_EQ(u.kind, STDIO_NONE);

        ASSERT_OK(stdio_uri_parse("/run/containerd/fifo/123/c-stdout", &u));
        ASSERT_EQ(u.kind, STDIO_PATH);
        ASSERT_STREQ(u.path, "/run/containerd/fifo/123/c-stdout");
        stdio_uri_done(&u);

        /* Plain paths are verbatim: no decoding. */
        ASSERT_OK(stdio_uri_parse("/a%20b", &u));
        ASSERT_STREQ(u.path, "/a%20b");
        stdio_uri_done(&u);

        ASSERT_OK(stdio_uri_parse("fifo:///x/y", &u));
        ASSERT_EQ(u.kind, STDIO_PATH);
        ASSERT_STREQ(u.path, "/x/y");
        stdio_uri_done(&u);

        ASSERT_OK(stdio_uri_parse("file:///var/log/my%20log.txt", &u));
        ASSERT_EQ(u.kind, STDIO_FILE);
        ASSERT_STREQ(u.path, "/var/log/my log.txt");
        ASSERT_NULL(u.args);
        stdio_uri_done(&u);

        ASSERT_OK(stdio_uri_parse("FILE:///l", &u));
        ASSERT_EQ(u.kind, STDIO_FILE);
        stdio_uri_done(&u);

        ASSERT_OK(stdio_uri_parse("binary:///usr/bin/logger?id=a%2Fb&x=1+2&id=second&flag&e=", &u));
        ASSERT_EQ(u.kind, STDIO_BINARY);
        ASSERT_STREQ(u.path, "/usr/bin/logger");
        ASSERT_EQ(u.n_args, 8);
        ASSERT_STREQ(u.args[0], "id");
        ASSERT_STREQ(u.args[1], "a/b");
        ASSERT_STREQ(u.args[2], "x");
        ASSERT_STREQ(u.args[3], "1 2");
        ASSERT_STREQ(u.args[4], "flag");
        ASSERT_STREQ(u.args[5], "");
        ASSERT_STREQ(u.args[6], "e");
        ASSERT_STREQ(u.args[7], "");
        ASSERT_NULL(u.args[8]);
        stdio_uri_done(&u);

        ASSERT_OK(stdio_uri_parse("binary:///bin/l", &u));
        ASSERT_EQ(u.kind, STDIO_BINARY);
        ASSERT_EQ(u.n_args, 0);
        ASSERT_NOT_NULL(u.args);
        ASSERT_NULL(u.args[0]);
        stdio_uri_done(&u);

        ASSERT_OK(stdio_uri_parse("binary:///bin/l?&&a=b&", &u));
        ASSERT_EQ(u.n_args, 2);
        stdio_uri_done(&u);
}

TEST(uri_parse_invalid) {
        static const char *const bad[] = {
                "relative/path",
                "stdout",
                "http://host/x",
                "tcp:///x",
                "file://host/x",  /* a host part */
                "file://",        /* no path */
                "file:x",         /* no "//" */
                "file:///x?y=1",  /* a query on file:// */
                "file:///x#frag", /* fragments */
                "binary:///x#frag",
                "binary://relative", /* host, not path */
                "binary:///b?%",     /* truncated escapes */
                "binary:///b?a=%4",
                "binary:///b?a=%zz",
                "binary:///b?a=%00", /* decoded NUL */
                "file:///a%00b",
                "binary:///b?=v", /* empty key */
                "://x",
                "fifo://x",
        };
        StdioURI u;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = stdio_uri_parse(bad[i], &u);
                if (r != -EINVAL)
                        test_fail(__FILE__, __LINE__, "\"%s\" parsed: %d", bad[i], r);
                ASSERT_EQ(u.kind, STDIO_NONE);
                ASSERT_NULL(u.path);
        }

        /* Bounds: overlong input, too many arguments, an overlong path. */
        char *s = malloc(STDIO_URI_MAX + 16);
        ASSERT_NOT_NULL(s);
        memset(s, 'a', STDIO_URI_MAX + 8);
        s[0] = '/';
        s[STDIO_URI_MAX + 8] = 0;
        ASSERT_ERROR(stdio_uri_parse(s, &u), EINVAL);

        strcpy(s, "file://");
        memset(s + 7, 'a', PATH_MAX + 10);
        s[7] = '/';
        s[7 + PATH_MAX + 10] = 0;
        ASSERT_ERROR(stdio_uri_parse(s, &u), EINVAL);

        strcpy(s, "binary:///b?");
        for (int i = 0; i < STDIO_URI_ARGS_MAX; i++)
                sprintf(s + strlen(s), "k%d=v&", i);
        ASSERT_ERROR(stdio_uri_parse(s, &u), EINVAL);
        free(s);

        /* Exactly at the argument limit is fine. */
        char ok[1024] = "binary:///b?";
        for (int i = 0; i < STDIO_URI_ARGS_MAX / 2; i++)
                sprintf(ok + strlen(ok), "k%d=v&", i);
        ASSERT_OK(stdio_uri_parse(ok, &u));
        ASSERT_EQ(u.n_args, STDIO_URI_ARGS_MAX);
        stdio_uri_done(&u);
}

/* ------------------------------------------------------------ null and FIFOs */

TEST(null_io) {
        sd_event *e = new_loop();
        ProcessIO *io = NULL;
        int fds[3];

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1"}, &io));
        process_io_child_fds(io, fds);
        for (int i = 0; i < 3; i++)
                ASSERT_TRUE(fds[i] >= 0 && is_dev_null(fds[i]));
        ASSERT_EQ(fcntl(fds[0], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        ASSERT_NULL(process_io_console_socket(io));
        ASSERT_ERROR(process_io_resize(io, 80, 24), ENOTTY);
        ASSERT_OK(process_io_close_stdin(io));
        ASSERT_OK(process_io_started(io));
        process_io_child_fds(io, fds);
        ASSERT_TRUE(fds[0] < 0 && fds[1] < 0 && fds[2] < 0);

        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        ASSERT_EQ(d.calls, 0); /* never from inside the call */
        ASSERT_ERROR(process_io_shutdown(io, on_done, &d), EALREADY);
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        loop_for(e, 50 * USEC_PER_MSEC);
        ASSERT_EQ(d.calls, 1);
        process_io_free(io);
}

TEST(fifo_stdout_stderr) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *out = fifo_in("c-stdout"), *err = fifo_in("c-stderr");
        int rout = fifo_reader(out), rerr = fifo_reader(err);
        ProcessIO *io = NULL;
        int fds[3];
        char buf[64] = {};

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdout_path = out, .stderr_path = err},
                                 &io));
        child_fds(io, fds);
        ASSERT_TRUE(is_dev_null(fds[0])); /* no stdin requested */
        ASSERT_FALSE(is_dev_null(fds[1]));
        /* The child's ends are ordinary blocking fds. */
        ASSERT_EQ(fcntl(fds[1], F_GETFL) & O_NONBLOCK, 0);
        ASSERT_OK(process_io_started(io));

        write_str(fds[1], "hello out\n");
        write_str(fds[2], "hello err\n");
        ASSERT_EQ(loop_read(e, rout, buf, 10, NULL), 10);
        ASSERT_STREQ(buf, "hello out\n");
        memset(buf, 0, sizeof(buf));
        ASSERT_EQ(loop_read(e, rerr, buf, 10, NULL), 10);
        ASSERT_STREQ(buf, "hello err\n");

        /* The process exits: EOF reaches containerd once the output is drained. */
        write_str(fds[1], "last");
        for (int i = 0; i < 3; i++)
                safe_close(fds[i]);
        DoneState d = {.fifo_fd = rout};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        ASSERT_EQ(d.len, 4); /* already in the FIFO when done ran */
        ASSERT_TRUE(now_monotonic_usec() - d.at < USEC_PER_SEC);
        process_io_free(io);
}

TEST(fifo_same_stdout_stderr) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *out = fifo_in("c-out");
        int r = fifo_reader(out);
        ProcessIO *io = NULL;
        int fds[3];
        char buf[64] = {};

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdout_path = out, .stderr_path = out},
                                 &io));
        child_fds(io, fds);
        ASSERT_OK(process_io_started(io));
        write_str(fds[1], "one.");
        ASSERT_EQ(loop_read(e, r, buf, 4, NULL), 4);
        write_str(fds[2], "two.");
        ASSERT_EQ(loop_read(e, r, buf + 4, 4, NULL), 4);
        ASSERT_STREQ(buf, "one.two.");
        for (int i = 0; i < 3; i++)
                safe_close(fds[i]);
        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        /* Both copiers closed their writer: containerd sees EOF. */
        bool eof = false;
        ASSERT_EQ(loop_read(e, r, buf, sizeof(buf), &eof), 0);
        ASSERT_TRUE(eof);
        process_io_free(io);
}

TEST(fifo_stdin_and_close_io) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("c-stdin");
        ProcessIO *io = NULL;
        int fds[3];
        char buf[64] = {};
        bool eof;

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdin_path = in}, &io));
        child_fds(io, fds);
        ASSERT_TRUE(is_dev_null(fds[1]) && is_dev_null(fds[2]));
        ASSERT_OK(process_io_started(io));

        /* containerd's writer can open at once: the shim's reader is there. */
        int w = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ASSERT_TRUE(w >= 0);
        write_str(w, "data\n");
        ASSERT_EQ(loop_read(e, fds[0], buf, 5, NULL), 5);
        ASSERT_STREQ(buf, "data\n");

        /* The client closes its side: no EOF yet, the shim holds a writer. */
        safe_close(w);
        loop_for(e, 100 * USEC_PER_MSEC);
        ASSERT_FALSE(readable(fds[0]));

        /* CloseIO: now EOF. */
        ASSERT_OK(process_io_close_stdin(io));
        ASSERT_OK(process_io_close_stdin(io));
        ASSERT_EQ(loop_read(e, fds[0], buf, sizeof(buf), &eof), 0);
        ASSERT_TRUE(eof);

        io_test_done(io, fds);
}

TEST(fifo_close_io_before_client_closes) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("c-stdin");
        ProcessIO *io = NULL;
        int fds[3];
        char buf[64] = {};
        bool eof;

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdin_path = in}, &io));
        child_fds(io, fds);
        int w = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ASSERT_TRUE(w >= 0);
        ASSERT_OK(process_io_started(io));
        ASSERT_OK(process_io_close_stdin(io));
        loop_for(e, 50 * USEC_PER_MSEC);
        ASSERT_FALSE(readable(fds[0])); /* the client still has its writer */
        write_str(w, "tail");
        safe_close(w);
        ASSERT_EQ(loop_read(e, fds[0], buf, 4, NULL), 4);
        ASSERT_STREQ(buf, "tail");
        ASSERT_EQ(loop_read(e, fds[0], buf, sizeof(buf), &eof), 0);
        ASSERT_TRUE(eof);
        process_io_free(io);
}

/* `echo data | ctr run ... cat`: ctr writes, hits EOF and closes its
 * writer during create, and never sends CloseIO (its closer is not set yet).
 * The EOF must reach the process, whether or not the loop saw it before
 * started(). */
TEST(fifo_stdin_client_done_before_start) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("c-stdin");

        for (int dispatched = 0; dispatched < 2; dispatched++) {
                ProcessIO *io = NULL;
                int fds[3];
                char buf[64] = {};
                bool eof;

                ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdin_path = in}, &io));
                child_fds(io, fds);
                int w = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
                ASSERT_TRUE(w >= 0);
                write_str(w, "data\n");
                safe_close(w);
                if (dispatched)
                        loop_for(e, 50 * USEC_PER_MSEC);
                ASSERT_OK(process_io_started(io));
                ASSERT_EQ(loop_read(e, fds[0], buf, sizeof(buf), &eof), 5);
                ASSERT_STREQ(buf, "data\n");
                if (!eof)
                        ASSERT_EQ(loop_read(e, fds[0], buf, sizeof(buf), &eof), 0);
                ASSERT_TRUE(eof);
                process_io_free(io);
                for (int i = 0; i < 3; i++)
                        safe_close(fds[i]);
        }
}

/* CloseIO before started(): the writer is never opened. */
TEST(fifo_close_io_before_start) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("c-stdin");
        ProcessIO *io = NULL;
        int fds[3];
        char buf[8];
        bool eof;

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdin_path = in}, &io));
        child_fds(io, fds);
        int w = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ASSERT_TRUE(w >= 0);
        ASSERT_OK(process_io_close_stdin(io));
        ASSERT_OK(process_io_started(io));
        loop_for(e, 50 * USEC_PER_MSEC);
        ASSERT_FALSE(readable(fds[0]));
        safe_close(w);
        ASSERT_EQ(loop_read(e, fds[0], buf, sizeof(buf), &eof), 0);
        ASSERT_TRUE(eof);
        io_test_done(io, fds);
}

/* More than the buffer, the FIFO and the pipe hold together: the copier must
 * stop and resume without losing or reordering a byte. */
TEST(fifo_backpressure) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *out = fifo_in("c-stdout");
        int r = fifo_reader(out);
        ProcessIO *io = NULL;
        int fds[3];
        const size_t total = (size_t)2 * 1024 * 1024;
        size_t written = 0, readn = 0;
        _cleanup_free_ char *chunk = malloc(65536);

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdout_path = out}, &io));
        child_fds(io, fds);
        ASSERT_OK(process_io_started(io));
        ASSERT_OK(fd_nonblock(fds[1], true));

        /* Let the writer fill everything before anyone reads. */
        for (int round = 0; round < 50; round++) {
                for (size_t i = 0; i < 4096 && written < total; i++) {
                        char c = (char)(written % 251);
                        ssize_t n = write(fds[1], &c, 1);
                        if (n < 0) {
                                ASSERT_EQ(errno, EAGAIN);
                                break;
                        }
                        written++;
                }
                ASSERT_OK(sd_event_run(e, 1000));
        }
        ASSERT_TRUE(written < total); /* it did block */

        uint64_t deadline = now_monotonic_usec() + 20 * USEC_PER_SEC;
        while (readn < total && now_monotonic_usec() < deadline) {
                while (written < total) {
                        size_t k = MIN(total - written, (size_t)65536);
                        for (size_t i = 0; i < k; i++)
                                chunk[i] = (char)((written + i) % 251);
                        ssize_t n = write(fds[1], chunk, k);
                        if (n < 0) {
                                ASSERT_EQ(errno, EAGAIN);
                                break;
                        }
                        written += (size_t)n;
                }
                ASSERT_OK(sd_event_run(e, 1000));
                ssize_t n = read(r, chunk, 65536);
                if (n < 0) {
                        ASSERT_EQ(errno, EAGAIN);
                        continue;
                }
                for (ssize_t i = 0; i < n; i++)
                        if (chunk[i] != (char)((readn + (size_t)i) % 251))
                                test_fail(__FILE__, __LINE__, "byte %zu corrupted", readn + (size_t)i);
                readn += (size_t)n;
        }
        ASSERT_EQ(readn, total);
        io_test_done(io, fds);
}

/* containerd goes away (restart): its FIFO keeps our reader, the data waits
 * there, and the next reader gets it. Nothing dies. */
TEST(fifo_reader_goes_away) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *out = fifo_in("c-stdout");
        int r = fifo_reader(out);
        ProcessIO *io = NULL;
        int fds[3];
        char buf[64] = {};

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdout_path = out}, &io));
        child_fds(io, fds);
        ASSERT_OK(process_io_started(io));
        safe_close(r);
        write_str(fds[1], "while away");
        loop_for(e, 100 * USEC_PER_MSEC);
        r = fifo_reader(out);
        ASSERT_EQ(loop_read(e, r, buf, 10, NULL), 10);
        ASSERT_STREQ(buf, "while away");
        io_test_done(io, fds);
}

/* A grandchild keeps the pipe open: done comes after the timeout anyway. */
TEST(shutdown_timeout) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *out = fifo_in("c-stdout");
        int r = fifo_reader(out);
        ProcessIO *io = NULL;
        int fds[3];
        char buf[64] = {};

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdout_path = out}, &io));
        child_fds(io, fds);
        ASSERT_OK(process_io_started(io));
        write_str(fds[1], "x");
        uint64_t t0 = now_monotonic_usec();
        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        ASSERT_TRUE(d.at - t0 >= PROCESS_IO_DRAIN_TIMEOUT_USEC - 100 * USEC_PER_MSEC);
        ASSERT_TRUE(d.at - t0 < PROCESS_IO_DRAIN_TIMEOUT_USEC + USEC_PER_SEC);
        /* Copying goes on in the background after the timeout. */
        write_str(fds[1], "y");
        ASSERT_EQ(loop_read(e, r, buf, 2, NULL), 2);
        ASSERT_STREQ(buf, "xy");
        io_test_done(io, fds);
}

/* free() before done fired: done is never called. */
TEST(free_before_done) {
        sd_event *e = new_loop();
        ProcessIO *io = NULL;
        DoneState d = {.fifo_fd = -EBADF};

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1"}, &io));
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        process_io_free(io);
        loop_for(e, 50 * USEC_PER_MSEC);
        ASSERT_EQ(d.calls, 0);
}

TEST(io_uid_chown) {
        if (geteuid() != 0)
                return_skip("needs root for fchown");
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("c-stdin"), *out = fifo_in("c-stdout");
        int r = fifo_reader(out);
        ProcessIO *io = NULL;
        int fds[3];
        struct stat st;

        ASSERT_OK(process_io_new(
                e,
                &(ProcessIOConfig){
                        .id = "c1", .stdin_path = in, .stdout_path = out, .io_uid = 1234, .io_gid = 4321},
                &io));
        process_io_child_fds(io, fds);
        for (int i = 0; i < 2; i++) {
                ASSERT_OK(fstat(fds[i], &st));
                ASSERT_TRUE(S_ISFIFO(st.st_mode));
                ASSERT_EQ(st.st_uid, 1234);
                ASSERT_EQ(st.st_gid, 4321);
        }
        process_io_free(io);
        safe_close(r);
}

/* A plain path naming a regular file is appended to, as the runc shim does. */
TEST(plain_path_regular_file) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *out = path_in("out.log"), *content = NULL;
        ProcessIO *io = NULL;
        int fds[3];

        ASSERT_OK(write_file_atomic(out, "old\n", 4, 0644));
        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdout_path = out, .stderr_path = out},
                                 &io));
        child_fds(io, fds);
        ASSERT_OK(process_io_started(io));
        write_str(fds[1], "new\n");
        for (int i = 0; i < 3; i++)
                safe_close(fds[i]);
        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        ASSERT_OK(read_full_file(out, 1024, &content, NULL));
        ASSERT_STREQ(content, "old\nnew\n");
        process_io_free(io);
}

TEST(new_invalid) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *fifo = fifo_in("f"), *reg = path_in("reg"), *missing = path_in("missing");
        ProcessIO *io = NULL;
        char file_uri[PATH_MAX + 16];

        ASSERT_OK(write_file_atomic(reg, "", 0, 0644));
        snprintf(file_uri, sizeof(file_uri), "file://%s/log", tmpdir);

        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = ""}, &io), EINVAL);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c", .stdout_path = "relative"}, &io),
                     EINVAL);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c", .stdout_path = "http://x/y"}, &io),
                     EINVAL);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c", .stdin_path = file_uri}, &io), EINVAL);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c", .stdin_path = reg}, &io), EINVAL);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c", .stdin_path = missing}, &io), ENOENT);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c", .stdout_path = missing}, &io), ENOENT);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c", .stdout_path = tmpdir}, &io), EINVAL);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c", .stdout_path = "/dev/null"}, &io),
                     EINVAL);
        /* Mixed kinds. */
        ASSERT_ERROR(
                process_io_new(
                        e, &(ProcessIOConfig){.id = "c", .stdout_path = fifo, .stderr_path = file_uri}, &io),
                EINVAL);
        ASSERT_ERROR(
                process_io_new(
                        e, &(ProcessIOConfig){.id = "c", .stdout_path = file_uri, .stderr_path = fifo}, &io),
                EINVAL);
        /* A logger needs its namespace. */
        ASSERT_ERROR(
                process_io_new(e, &(ProcessIOConfig){.id = "c", .stdout_path = "binary:///bin/true"}, &io),
                EINVAL);
        ASSERT_NULL(io);
}

/* ------------------------------------------------------------ file:// */

TEST(file_uri) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *log = path_in("a/b c/ctr.log"), *content = NULL;
        char uri[PATH_MAX + 32];
        ProcessIO *io = NULL;
        int fds[3];
        struct stat st;

        /* ctr run --log-uri: stdout = stderr = file://..., no stdin. The path
         * is percent-encoded in the URI. */
        snprintf(uri, sizeof(uri), "file://%s/a/b%%20c/ctr.log", tmpdir);
        for (int round = 0; round < 2; round++) {
                ASSERT_OK(process_io_new(
                        e, &(ProcessIOConfig){.id = "c1", .stdout_path = uri, .stderr_path = uri}, &io));
                ASSERT_OK(stat(log, &st));
                ASSERT_TRUE(S_ISREG(st.st_mode));
                ASSERT_EQ(st.st_mode & 07777, 0644);
                child_fds(io, fds);
                ASSERT_TRUE(is_dev_null(fds[0]));
                ASSERT_OK(process_io_started(io));
                write_str(fds[1], round == 0 ? "out1\n" : "out2\n");
                loop_for(e, 20 * USEC_PER_MSEC);
                write_str(fds[2], round == 0 ? "err1\n" : "err2\n");
                for (int i = 0; i < 3; i++)
                        safe_close(fds[i]);
                DoneState d = {.fifo_fd = -EBADF};
                ASSERT_OK(process_io_shutdown(io, on_done, &d));
                wait_done(e, &d, WAIT_USEC);
                ASSERT_EQ(d.calls, 1);
                io = process_io_free(io);
        }
        ASSERT_OK(read_full_file(log, 1024, &content, NULL));
        ASSERT_STREQ(content, "out1\nerr1\nout2\nerr2\n");
}

/* ------------------------------------------------------------ binary:// */

static char *write_script(const char *name, const char *body) {
        char *p = path_in(name);
        ASSERT_OK(write_file_atomic(p, body, strlen(body), 0755));
        return p;
}

/* Waits for our child pid (the test is its parent; no reaper here). */
static int wait_child(sd_event *e, pid_t pid, uint64_t usec) {
        uint64_t deadline = now_monotonic_usec() + usec;
        int status;
        for (;;) {
                pid_t r = waitpid(pid, &status, WNOHANG);
                ASSERT_TRUE(r >= 0);
                if (r == pid)
                        return status;
                if (now_monotonic_usec() > deadline)
                        test_fail(__FILE__, __LINE__, "child %d did not exit", (int)pid);
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        }
}

static bool file_has_line(const char *path, const char *line) {
        _cleanup_free_ char *c = NULL;
        if (read_full_file(path, 65536, &c, NULL) < 0)
                return false;
        for (char *s = c; s && *s;) {
                char *nl = strchr(s, '\n');
                size_t l = nl ? (size_t)(nl - s) : strlen(s);
                if (l == strlen(line) && strncmp(s, line, l) == 0)
                        return true;
                s = nl ? nl + 1 : NULL;
        }
        return false;
}

static const char logger_script[] = "#!/bin/sh\n"
                                    "/usr/bin/env > \"$2.env\"\n"
                                    "echo \"$#:$*\" > \"$2.args\"\n"
                                    "printf R >&5\n"
                                    "exec 5>&-\n"
                                    "/bin/cat <&4 > \"$2.err\" &\n"
                                    "/bin/cat <&3 > \"$2.out\"\n"
                                    "wait\n";

TEST(binary_uri) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *script = write_script("logger.sh", logger_script), *base = path_in("log"),
                            *p_env = path_in("log.env"), *p_args = path_in("log.args"),
                            *p_out = path_in("log.out"), *p_err = path_in("log.err"), *c = NULL;
        char uri[PATH_MAX * 2], expect[PATH_MAX + 64];
        ProcessIO *io = NULL;
        int fds[3];

        snprintf(uri, sizeof(uri), "binary://%s?out=%s&x=a%%20b&out=ignored", script, base);
        ASSERT_OK(process_io_new(e,
                                 &(ProcessIOConfig){.id = "exec1",
                                                    .container_id = "ctr1",
                                                    .ns = "testns",
                                                    .stdout_path = uri,
                                                    .stderr_path = uri},
                                 &io));
        pid_t pid = process_io_logger_pid(io);
        ASSERT_TRUE(pid > 0);
        child_fds(io, fds);
        ASSERT_TRUE(is_dev_null(fds[0]));
        ASSERT_OK(process_io_started(io));
        write_str(fds[1], "to stdout\n");
        write_str(fds[2], "to stderr\n");
        for (int i = 0; i < 3; i++)
                safe_close(fds[i]);
        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        /* The logger sees EOF and ends by itself. */
        int status = wait_child(e, pid, WAIT_USEC);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        process_io_free(io);

        ASSERT_TRUE(file_has_line(p_env, "CONTAINER_ID=ctr1"));
        ASSERT_TRUE(file_has_line(p_env, "CONTAINER_NAMESPACE=testns"));
        ASSERT_OK(read_full_file(p_env, 65536, &c, NULL));
        ASSERT_NULL(strstr(c, "HOME="));
        free(c);
        c = NULL;
        snprintf(expect, sizeof(expect), "4:out %s x a b", base);
        ASSERT_TRUE(file_has_line(p_args, expect));
        ASSERT_TRUE(file_has_line(p_out, "to stdout"));
        ASSERT_TRUE(file_has_line(p_err, "to stderr"));
}

/* A logger that does not stop on EOF gets SIGTERM after the drain timeout. */
TEST(binary_logger_stopped) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *script = write_script("logger.sh", "#!/bin/sh\nexec /bin/sleep 100\n");
        char uri[PATH_MAX + 32];
        ProcessIO *io = NULL;

        snprintf(uri, sizeof(uri), "binary://%s", script);
        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .ns = "n", .stdout_path = uri}, &io));
        pid_t pid = process_io_logger_pid(io);
        ASSERT_OK(process_io_started(io));
        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        int status = wait_child(e, pid, WAIT_USEC);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
        ASSERT_EQ(d.calls, 1);
        process_io_free(io);

        /* free() with the logger running: SIGTERM as well. */
        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .ns = "n", .stdout_path = uri}, &io));
        pid = process_io_logger_pid(io);
        loop_for(e, 50 * USEC_PER_MSEC);
        process_io_free(io);
        status = wait_child(e, pid, WAIT_USEC);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
}

TEST(binary_bad) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *noexec = path_in("noexec");
        char uri[PATH_MAX + 32];
        ProcessIO *io = NULL;

        ASSERT_OK(write_file_atomic(noexec, "#!/bin/sh\n", 10, 0644));
        snprintf(uri, sizeof(uri), "binary://%s/missing", tmpdir);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c1", .ns = "n", .stdout_path = uri}, &io),
                     ENOENT);
        snprintf(uri, sizeof(uri), "binary://%s", noexec);
        ASSERT_ERROR(process_io_new(e, &(ProcessIOConfig){.id = "c1", .ns = "n", .stdout_path = uri}, &io),
                     EACCES);
        ASSERT_NULL(io);
}

/* ------------------------------------------------------------ terminal */

static int open_pty(int *ret_slave) {
        int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(m >= 0);
        ASSERT_OK(grantpt(m));
        ASSERT_OK(unlockpt(m));
        int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(s >= 0);
        struct termios t;
        ASSERT_OK(tcgetattr(s, &t));
        cfmakeraw(&t);
        ASSERT_OK(tcsetattr(s, TCSANOW, &t));
        *ret_slave = s;
        return m;
}

/* Plays runc: connects and sends data plus n fds. Returns the connection. */
static int send_console(const char *path, const int *fds, size_t n, const char *data) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(int) * 4)];
        } control = {};
        struct iovec iov = {.iov_base = (void *)data, .iov_len = strlen(data)};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        ASSERT_TRUE(c >= 0);
        ASSERT_OK(sockaddr_un_set(&sa, path));
        ASSERT_OK(connect(c, (struct sockaddr *)&sa, sizeof(sa)));
        if (n > 0) {
                mh.msg_control = &control;
                mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
                struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
                cm->cmsg_level = SOL_SOCKET;
                cm->cmsg_type = SCM_RIGHTS;
                cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
                memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
        }
        ASSERT_TRUE(sendmsg(c, &mh, MSG_NOSIGNAL) == (ssize_t)strlen(data));
        return c;
}

TEST(console) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("t-stdin"), *out = fifo_in("t-stdout");
        int r = fifo_reader(out), slave, fds[3];
        ProcessIO *io = NULL;
        char buf[64] = {};
        struct winsize ws;
        struct stat st;

        ASSERT_OK(process_io_new(
                e, &(ProcessIOConfig){.id = "c1", .stdin_path = in, .stdout_path = out, .terminal = true},
                &io));
        const char *sock = process_io_console_socket(io);
        ASSERT_NOT_NULL(sock);
        _cleanup_free_ char *sock_copy = strdup(sock), *dir = strdup(sock);
        *strrchr(dir, '/') = 0;
        ASSERT_OK(stat(dir, &st));
        ASSERT_EQ(st.st_mode & 07777, 0700);
        process_io_child_fds(io, fds);
        for (int i = 0; i < 3; i++)
                ASSERT_TRUE(is_dev_null(fds[i]));

        /* ResizePty before the master arrived: applied on arrival. */
        ASSERT_OK(process_io_resize(io, 100, 40));
        ASSERT_FALSE(process_io_has_console(io));

        int m = open_pty(&slave);
        int c = send_console(sock, &m, 1, "/dev/pts/x");
        safe_close(m);
        safe_close(c);
        /* runc returned: started() picks the master up even before the loop ran. */
        ASSERT_OK(process_io_started(io));
        ASSERT_TRUE(process_io_has_console(io));
        ASSERT_TRUE(access(sock_copy, F_OK) < 0 && errno == ENOENT);
        ASSERT_TRUE(access(dir, F_OK) < 0 && errno == ENOENT);
        ASSERT_OK(ioctl(slave, TIOCGWINSZ, &ws));
        ASSERT_EQ(ws.ws_col, 100);
        ASSERT_EQ(ws.ws_row, 40);
        ASSERT_OK(process_io_resize(io, 132, 50));
        ASSERT_OK(ioctl(slave, TIOCGWINSZ, &ws));
        ASSERT_EQ(ws.ws_col, 132);
        ASSERT_EQ(ws.ws_row, 50);

        /* The process writes to its terminal: it reaches the stdout FIFO. */
        write_str(slave, "out!");
        ASSERT_EQ(loop_read(e, r, buf, 4, NULL), 4);
        ASSERT_STREQ(buf, "out!");
        /* The client types: it reaches the process. */
        int w = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ASSERT_TRUE(w >= 0);
        write_str(w, "in!");
        memset(buf, 0, sizeof(buf));
        ASSERT_EQ(loop_read(e, slave, buf, 3, NULL), 3);
        ASSERT_STREQ(buf, "in!");

        /* The process exits: the last output drains, then done. */
        write_str(slave, "bye");
        safe_close(slave);
        uint64_t t0 = now_monotonic_usec();
        DoneState d = {.fifo_fd = r};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        ASSERT_TRUE(d.at - t0 < USEC_PER_SEC);
        ASSERT_EQ(d.len, 3);
        ASSERT_FALSE(process_io_has_console(io));
        /* Resizing a finished console is a harmless no-op. */
        ASSERT_OK(process_io_resize(io, 80, 24));
        process_io_free(io);
        safe_close(w);
}

/* Malformed messages on the console socket are dropped; the socket keeps
 * listening, and the real one is accepted from the event loop. */
TEST(console_bad_messages) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *log = path_in("tty.log"), *content = NULL;
        char uri[PATH_MAX + 16];
        ProcessIO *io = NULL;
        int slave, p[2];

        snprintf(uri, sizeof(uri), "file://%s", log);
        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdout_path = uri, .terminal = true},
                                 &io));
        const char *sock = process_io_console_socket(io);

        int c1 = send_console(sock, NULL, 0, "no fd");
        ASSERT_OK(pipe2(p, O_CLOEXEC));
        int c2 = send_console(sock, p, 2, "two fds");
        int c3 = send_console(sock, p, 1, "not a pty");
        loop_for(e, 100 * USEC_PER_MSEC);
        ASSERT_FALSE(process_io_has_console(io));
        /* The shim dropped every fd it got: the pipe's ends are ours alone. */
        safe_close(p[0]);
        ASSERT_TRUE(write(p[1], "x", 1) < 0 && errno == EPIPE);
        safe_close(p[1]);

        int m = open_pty(&slave);
        int c4 = send_console(sock, &m, 1, "/dev/pts/x");
        safe_close(m);
        uint64_t deadline = now_monotonic_usec() + WAIT_USEC;
        while (!process_io_has_console(io) && now_monotonic_usec() < deadline)
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
        ASSERT_TRUE(process_io_has_console(io));
        ASSERT_OK(process_io_started(io));

        write_str(slave, "tty output");
        safe_close(slave);
        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        ASSERT_OK(read_full_file(log, 1024, &content, NULL));
        ASSERT_STREQ(content, "tty output");
        process_io_free(io);
        safe_close(c1);
        safe_close(c2);
        safe_close(c3);
        safe_close(c4);
}

TEST(console_binary_logger) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *script = write_script("logger.sh", logger_script), *base = path_in("log"),
                            *p_out = path_in("log.out"), *p_err = path_in("log.err"), *c = NULL;
        char uri[PATH_MAX * 2];
        ProcessIO *io = NULL;
        int slave;

        snprintf(uri, sizeof(uri), "binary://%s?out=%s", script, base);
        ASSERT_OK(process_io_new(
                e, &(ProcessIOConfig){.id = "c1", .ns = "n", .stdout_path = uri, .terminal = true}, &io));
        pid_t pid = process_io_logger_pid(io);
        ASSERT_TRUE(pid > 0);
        int m = open_pty(&slave);
        int conn = send_console(process_io_console_socket(io), &m, 1, "/dev/pts/x");
        safe_close(m);
        ASSERT_OK(process_io_started(io));
        ASSERT_TRUE(process_io_has_console(io));
        write_str(slave, "tty to logger");
        safe_close(slave);
        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        int status = wait_child(e, pid, WAIT_USEC);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        ASSERT_OK(read_full_file(p_out, 1024, &c, NULL));
        ASSERT_STREQ(c, "tty to logger");
        free(c);
        c = NULL;
        ASSERT_OK(read_full_file(p_err, 1024, &c, NULL));
        ASSERT_STREQ(c, "");
        process_io_free(io);
        safe_close(conn);
}

TEST(console_never_arrives) {
        sd_event *e = new_loop();
        ProcessIO *io = NULL;

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .terminal = true}, &io));
        _cleanup_free_ char *sock = strdup(process_io_console_socket(io));
        ASSERT_OK(process_io_started(io));
        ASSERT_FALSE(process_io_has_console(io));
        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        ASSERT_TRUE(access(sock, F_OK) < 0 && errno == ENOENT);
        process_io_free(io);
}

static int count_fds(void) {
        char cmd[64];
        snprintf(cmd, sizeof(cmd), "/proc/%d/fd", (int)getpid());
        int n = 0;
        DIR *d = opendir(cmd);
        ASSERT_NOT_NULL(d);
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n - 1; /* the directory's own fd */
}

static int noop_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        return 0;
}

/* Every kind, through its whole life: no fd stays behind. */
TEST(no_fd_leaks) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("in"), *out = fifo_in("out"), *err = fifo_in("err"),
                            *script = write_script("logger.sh", logger_script), *base = path_in("log");
        int rout = fifo_reader(out), rerr = fifo_reader(err);
        char file_uri[PATH_MAX + 16], bin_uri[PATH_MAX * 2];

        snprintf(file_uri, sizeof(file_uri), "file://%s/f.log", tmpdir);
        snprintf(bin_uri, sizeof(bin_uri), "binary://%s?out=%s", script, base);
        const ProcessIOConfig cfgs[] = {
                {.id = "a"},
                {.id = "b", .stdin_path = in, .stdout_path = out, .stderr_path = err},
                {.id = "c", .stdin_path = in, .stdout_path = out, .stderr_path = out},
                {.id = "d", .stdout_path = file_uri, .stderr_path = file_uri},
                {.id = "e", .ns = "n", .stdin_path = in, .stdout_path = bin_uri, .stderr_path = bin_uri},
                {.id = "f", .stdin_path = in, .stdout_path = out, .terminal = true},
                {.id = "g", .ns = "n", .stdout_path = bin_uri, .terminal = true},
        };
        /* sd-event creates its timerfd on first use and keeps it: make it exist now. */
        ASSERT_OK(sd_event_add_time_relative(e, NULL, CLOCK_MONOTONIC, 1, 0, noop_timer, NULL));
        loop_for(e, 10 * USEC_PER_MSEC);
        int before = count_fds();
        for (size_t i = 0; i < ELEMENTSOF(cfgs); i++) {
                ProcessIO *io = NULL;
                int fds[3], slave = -EBADF, conn = -EBADF;
                ASSERT_OK(process_io_new(e, &cfgs[i], &io));
                pid_t logger = process_io_logger_pid(io);
                child_fds(io, fds);
                if (cfgs[i].terminal) {
                        int m = open_pty(&slave);
                        conn = send_console(process_io_console_socket(io), &m, 1, "/dev/pts/x");
                        safe_close(m);
                }
                ASSERT_OK(process_io_started(io));
                write_str(cfgs[i].terminal ? slave : fds[1], "x");
                for (int k = 0; k < 3; k++)
                        safe_close(fds[k]);
                safe_close(slave);
                DoneState d = {.fifo_fd = -EBADF};
                ASSERT_OK(process_io_shutdown(io, on_done, &d));
                wait_done(e, &d, WAIT_USEC);
                ASSERT_EQ(d.calls, 1);
                process_io_free(io);
                safe_close(conn);
                if (logger > 0)
                        (void)wait_child(e, logger, WAIT_USEC);
                loop_for(e, 20 * USEC_PER_MSEC);
                int now = count_fds();
                if (now != before)
                        test_fail(__FILE__, __LINE__, "config %zu: %d fds before, %d after", i, before, now);
        }
        safe_close(rout);
        safe_close(rerr);
}

/* The process closed its stdin (or died): what the client still types is
 * dropped, and the client never blocks on a full FIFO. */
TEST(stdin_reader_gone) {
        setup_tmpdir();
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("c-stdin"), *chunk = calloc(1, 4096);
        ProcessIO *io = NULL;
        int fds[3];
        size_t written = 0;

        ASSERT_OK(process_io_new(e, &(ProcessIOConfig){.id = "c1", .stdin_path = in}, &io));
        child_fds(io, fds);
        ASSERT_OK(process_io_started(io));
        for (int i = 0; i < 3; i++)
                safe_close(fds[i]);
        int w = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ASSERT_TRUE(w >= 0);
        uint64_t deadline = now_monotonic_usec() + WAIT_USEC;
        while (written < (size_t)1024 * 1024 && now_monotonic_usec() < deadline) {
                ssize_t n = write(w, chunk, 4096);
                if (n > 0)
                        written += (size_t)n;
                else
                        ASSERT_EQ(errno, EAGAIN);
                ASSERT_OK(sd_event_run(e, n > 0 ? 0 : 10 * USEC_PER_MSEC));
        }
        ASSERT_EQ(written, 1024 * 1024);
        safe_close(w);
        process_io_free(io);
}

/* ------------------------------------------------------------ real runc */

/* A busybox bundle for runc: `runc spec`, then the process edited with jq. */
static int runc_bundle(const char *bundle, const char *args_json, bool terminal) {
        char cmd[PATH_MAX * 3];
        snprintf(
                cmd, sizeof(cmd),
                "set -e; mkdir -p '%1$s/rootfs/bin' '%1$s/rootfs/proc' '%1$s/rootfs/dev' '%1$s/rootfs/sys';"
                "cp /bin/busybox '%1$s/rootfs/bin/';"
                "for a in sh cat echo sleep; do ln -s busybox '%1$s/rootfs/bin/'$a; done;"
                "cd '%1$s' && runc spec && jq '.process.args = %2$s | .process.terminal = %3$s' config.json > c.json"
                " && mv c.json config.json",
                bundle, args_json, terminal ? "true" : "false");
        return system(cmd) == 0 ? 0 : -EIO;
}

static bool have_runc(void) {
        return geteuid() == 0 && access("/bin/busybox", X_OK) == 0 &&
               system("command -v runc >/dev/null && command -v jq >/dev/null") == 0;
}

/* Runs runc as the shim would, with fds 0-2 = stdio, and waits for it. */
static int run_runc(const int stdio[3], char **argv) {
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                for (int i = 0; i < 3; i++)
                        if (dup2(stdio[i], i) < 0)
                                _exit(126);
                execvp(argv[0], argv);
                _exit(127);
        }
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static pid_t read_pid(const char *path) {
        _cleanup_free_ char *c = NULL;
        ASSERT_OK(read_full_file(path, 64, &c, NULL));
        return (pid_t)atoi(c);
}

/* Reads fd until its text contains needle. */
static void loop_read_until(sd_event *e, int fd, char *buf, size_t size, const char *needle) {
        uint64_t deadline = now_monotonic_usec() + 10 * USEC_PER_SEC;
        size_t got = strlen(buf);
        while (!strstr(buf, needle)) {
                if (now_monotonic_usec() > deadline)
                        test_fail(__FILE__, __LINE__, "\"%s\" not seen, got \"%s\"", needle, buf);
                ASSERT_OK(sd_event_run(e, 10 * USEC_PER_MSEC));
                ssize_t n = read(fd, buf + got, size - 1 - got);
                if (n > 0) {
                        got += (size_t)n;
                        buf[got] = 0;
                }
        }
}

static void runc_cleanup(const char *root, const char *id) {
        char cmd[PATH_MAX * 2];
        snprintf(cmd, sizeof(cmd), "runc --root '%s' delete --force '%s' >/dev/null 2>&1", root, id);
        if (system(cmd) != 0)
                fprintf(stderr, "runc delete %s failed\n", id);
}

/* Runs body in a child and cleans up the container and the directory
 * whatever happens to it (a failed assertion exits the child at once). */
static void with_runc_container(void (*body)(const char *root, const char *id)) {
        char id[64];
        _cleanup_free_ char *root = NULL;

        if (!have_runc())
                return_skip("needs root, runc, jq and /bin/busybox");
        setup_tmpdir();
        root = path_in("runc-root");
        snprintf(id, sizeof(id), "io-test-%d", (int)getpid());
        fflush(NULL);
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                /* The container's init is reparented to us when runc --detach exits. */
                if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                        _exit(2);
                body(root, id);
                fflush(NULL);
                _exit(0);
        }
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        runc_cleanup(root, id);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void runc_pipes_body(const char *root, const char *id) {
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("in"), *out = fifo_in("out"), *err = fifo_in("err"),
                            *bundle = path_in("bundle"), *pidf = path_in("pid");
        char obuf[256] = {}, ebuf[256] = {};
        int rout = fifo_reader(out), rerr = fifo_reader(err), fds[3];
        ProcessIO *io = NULL;

        ASSERT_OK(runc_bundle(
                bundle, "[\"sh\",\"-c\",\"echo out-line; echo err-line >&2; read x; echo got-$x\"]", false));
        ASSERT_OK(process_io_new(
                e, &(ProcessIOConfig){.id = id, .stdin_path = in, .stdout_path = out, .stderr_path = err},
                &io));
        process_io_child_fds(io, fds);
        char *argv[] = {(char *)"runc",
                        (char *)"--root",
                        (char *)root,
                        (char *)"run",
                        (char *)"--detach",
                        (char *)"--bundle",
                        bundle,
                        (char *)"--pid-file",
                        pidf,
                        (char *)id,
                        NULL};
        ASSERT_EQ(run_runc(fds, argv), 0);
        ASSERT_OK(process_io_started(io));
        pid_t init = read_pid(pidf);

        loop_read_until(e, rout, obuf, sizeof(obuf), "out-line\n");
        loop_read_until(e, rerr, ebuf, sizeof(ebuf), "err-line\n");
        /* echo abc | ctr run ...: data, CloseIO, the client closes its writer. */
        int w = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ASSERT_TRUE(w >= 0);
        write_str(w, "abc\n");
        ASSERT_OK(process_io_close_stdin(io));
        safe_close(w);
        loop_read_until(e, rout, obuf, sizeof(obuf), "got-abc\n");
        int status = wait_child(e, init, 10 * USEC_PER_SEC);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        DoneState d = {.fifo_fd = -EBADF};
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        ASSERT_STREQ(obuf, "out-line\ngot-abc\n");
        process_io_free(io);
}

TEST(runc_pipes) {
        with_runc_container(runc_pipes_body);
}

static void check_winsize(pid_t pid, unsigned cols, unsigned rows) {
        char p[64];
        struct winsize ws;
        snprintf(p, sizeof(p), "/proc/%d/fd/0", (int)pid);
        _cleanup_close_ int fd = open(p, O_RDWR | O_NOCTTY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(isatty(fd));
        ASSERT_OK(ioctl(fd, TIOCGWINSZ, &ws));
        ASSERT_EQ(ws.ws_col, cols);
        ASSERT_EQ(ws.ws_row, rows);
}

static void runc_terminal_body(const char *root, const char *id) {
        sd_event *e = new_loop();
        _cleanup_free_ char *in = fifo_in("in"), *out = fifo_in("out"), *bundle = path_in("bundle"),
                            *pidf = path_in("pid");
        char obuf[512] = {};
        int rout = fifo_reader(out), fds[3];
        ProcessIO *io = NULL;

        ASSERT_OK(runc_bundle(bundle, "[\"sh\",\"-c\",\"echo hello-tty; read x; echo got-$x\"]", true));
        ASSERT_OK(process_io_new(
                e, &(ProcessIOConfig){.id = id, .stdin_path = in, .stdout_path = out, .terminal = true},
                &io));
        ASSERT_OK(process_io_resize(io, 91, 33));
        process_io_child_fds(io, fds);
        char *argv[] = {(char *)"runc",
                        (char *)"--root",
                        (char *)root,
                        (char *)"run",
                        (char *)"--detach",
                        (char *)"--console-socket",
                        (char *)process_io_console_socket(io),
                        (char *)"--bundle",
                        bundle,
                        (char *)"--pid-file",
                        pidf,
                        (char *)id,
                        NULL};
        ASSERT_EQ(run_runc(fds, argv), 0);
        ASSERT_OK(process_io_started(io));
        ASSERT_TRUE(process_io_has_console(io));
        pid_t init = read_pid(pidf);

        loop_read_until(e, rout, obuf, sizeof(obuf), "hello-tty\r\n");
        /* The size set before the master arrived is the process's terminal's. */
        check_winsize(init, 91, 33);
        ASSERT_OK(process_io_resize(io, 120, 40));
        check_winsize(init, 120, 40);
        int w = open(in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        ASSERT_TRUE(w >= 0);
        write_str(w, "abc\n");
        loop_read_until(e, rout, obuf, sizeof(obuf), "got-abc\r\n");
        int status = wait_child(e, init, 10 * USEC_PER_SEC);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        DoneState d = {.fifo_fd = -EBADF};
        uint64_t t0 = now_monotonic_usec();
        ASSERT_OK(process_io_shutdown(io, on_done, &d));
        wait_done(e, &d, WAIT_USEC);
        ASSERT_EQ(d.calls, 1);
        ASSERT_TRUE(d.at - t0 < USEC_PER_SEC);
        safe_close(w);
        process_io_free(io);
}

TEST(runc_terminal) {
        with_runc_container(runc_terminal_body);
}
