/* SPDX-License-Identifier: Apache-2.0 */
#include <cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "log.h"
#include "runc-args.h"
#include "runc.h"
#include "spawn-child.h"
#include "util.h"

#define CAPTURE_MAX (4u << 20)
#define LOG_TAIL_MAX ((size_t)64 * 1024)

typedef struct Capture {
        int fd;
        sd_event_source *source;
        char *buf;
        size_t len;
} Capture;

typedef struct RuncCmd {
        RuncDoneFn cb;
        void *userdata;
        char *log_path;
        long log_offset;
        char *binary;
        Capture out, err;
} RuncCmd;

void runc_config_done(RuncConfig *c) {
        free(c->binary);
        free(c->root);
        free(c->log_path);
        free(c->criu);
        *c = (RuncConfig){};
}

static int strdup_opt(char **dst, const char *src) {
        *dst = NULL;
        if (!src)
                return 0;
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

int runc_config_copy(RuncConfig *dst, const RuncConfig *src) {
        *dst = (RuncConfig){.systemd_cgroup = src->systemd_cgroup};
        if (strdup_opt(&dst->binary, src->binary) < 0 || strdup_opt(&dst->root, src->root) < 0 ||
            strdup_opt(&dst->log_path, src->log_path) < 0 || strdup_opt(&dst->criu, src->criu) < 0) {
                runc_config_done(dst);
                return -ENOMEM;
        }
        return 0;
}

/* argv = binary, global options, args. Strings borrowed from cfg and args. */
static int build_argv(const RuncConfig *cfg, char *const *args, char ***ret) {
        const RuncGlobalOptions g = {
                .binary = cfg->binary,
                .root = cfg->root,
                .log_path = cfg->log_path,
                .log_format = cfg->log_path ? "json" : NULL,
                .criu = cfg->criu,
                .systemd_cgroup = cfg->systemd_cgroup,
        };
        return runc_argv(&g, args, ret);
}

/* runc dies with the shim; it stays in the shim's session. */
static int spawn_runc(char *const *argv, const int stdio[3], pid_t *ret_pid) {
        SpawnOptions o = {.stdio = {stdio[0], stdio[1], stdio[2]}, .parent_death_signal = SIGKILL};
        return spawn_exec(argv, &o, ret_pid);
}

static long file_size(const char *path) {
        struct stat st;
        if (!path || stat(path, &st) < 0)
                return 0;
        return (long)st.st_size;
}

char *runc_log_last_error(const char *path, long offset) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *data = NULL;
        char *found = NULL;

        if (!path)
                return NULL;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        long size = file_size(path);
        if (size - offset > (long)LOG_TAIL_MAX)
                offset = size - (long)LOG_TAIL_MAX;
        if (offset > 0 && lseek(fd, offset, SEEK_SET) < 0)
                return NULL;
        if (read_full_fd(fd, LOG_TAIL_MAX, &data, NULL) < 0)
                return NULL;
        for (char *line = strtok(data, "\n"); line; line = strtok(NULL, "\n")) {
                cJSON *j = cJSON_Parse(line);
                if (!j)
                        continue;
                const cJSON *level = cJSON_GetObjectItemCaseSensitive(j, "level");
                const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "msg");
                if (cJSON_IsString(level) && cJSON_IsString(msg) &&
                    (streq(level->valuestring, "error") || streq(level->valuestring, "fatal"))) {
                        free(found);
                        found = strdup(msg->valuestring);
                }
                cJSON_Delete(j);
        }
        return found;
}

static void capture_done(Capture *c) {
        c->source = sd_event_source_disable_unref(c->source);
        c->fd = safe_close(c->fd);
        free(c->buf);
        c->buf = NULL;
}

/* Reads what is available; returns 1 at EOF. */
static int capture_read(Capture *c) {
        for (;;) {
                char tmp[4096];
                ssize_t k = read(c->fd, tmp, sizeof(tmp));
                if (k < 0)
                        return errno == EINTR ? 0 : (errno == EAGAIN ? 0 : 1);
                if (k == 0)
                        return 1;
                if (c->len + (size_t)k > CAPTURE_MAX)
                        continue; /* keep draining, drop the excess */
                char *p = realloc(c->buf, c->len + (size_t)k + 1);
                if (!p)
                        return 1;
                c->buf = p;
                memcpy(c->buf + c->len, tmp, (size_t)k);
                c->len += (size_t)k;
                c->buf[c->len] = 0;
        }
}

static int on_capture(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Capture *c = userdata;
        if (capture_read(c) > 0)
                (void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
        return 0;
}

static void cmd_free(RuncCmd *c) {
        capture_done(&c->out);
        capture_done(&c->err);
        free(c->log_path);
        free(c->binary);
        free(c);
}

static char *strip(char *s) {
        if (!s)
                return NULL;
        size_t l = strlen(s);
        while (l > 0 && (s[l - 1] == '\n' || s[l - 1] == ' ' || s[l - 1] == '\r'))
                s[--l] = 0;
        return s;
}

static void on_exit_cmd(pid_t pid, int status, int64_t at, void *userdata) {
        RuncCmd *c = userdata;
        _cleanup_free_ char *error = NULL;

        if (c->out.fd >= 0)
                (void)capture_read(&c->out);
        if (c->err.fd >= 0)
                (void)capture_read(&c->err);
        if (status != 0) {
                error = runc_log_last_error(c->log_path, c->log_offset);
                if (!error && c->err.buf && *strip(c->err.buf))
                        error = strdup(c->err.buf);
                if (!error && asprintf(&error, "%s exited with status %d", c->binary, status) < 0)
                        error = NULL;
        }
        c->cb(status, c->out.buf ? c->out.buf : "", c->out.len,
              status != 0 ? (error ? error : "runc failed") : NULL, c->userdata);
        cmd_free(c);
}

static int capture_setup(sd_event *e, Capture *c, int fd) {
        c->fd = fd;
        (void)fd_nonblock(fd, true);
        return sd_event_add_io(e, &c->source, fd, EPOLLIN, on_capture, c);
}

/* The fd of the child's stdout or stderr: the caller's (given, if >= 0), or
 * the write end of a new pipe whose read end (*ret_r) is captured. Returns
 * the fd or a negative errno. */
static int output_fd(int given, int *ret_r, int *ret_w) {
        int p[2];
        if (given >= 0)
                return given;
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        *ret_r = p[0];
        *ret_w = p[1];
        return p[1];
}

int runc_run(sd_event *e, Reaper *reaper, const RuncConfig *cfg, char *const *args, const RuncSpawn *spawn,
             RuncDoneFn cb, void *userdata) {
        _cleanup_free_ char **argv = NULL;
        _cleanup_close_ int in_r = -EBADF, in_w = -EBADF, out_r = -EBADF, out_w = -EBADF, err_r = -EBADF,
                            err_w = -EBADF;
        RuncCmd *c;
        int fds[3], p[2], r;

        r = build_argv(cfg, args, &argv);
        if (r < 0)
                return r;
        if (spawn->input_len > RUNC_INPUT_MAX)
                return -E2BIG;
        fds[0] = spawn->stdio[0] >= 0 ? spawn->stdio[0] : SPAWN_NULL;
        if (spawn->input) {
                if (pipe2(p, O_CLOEXEC) < 0)
                        return negative_errno();
                in_r = p[0], in_w = p[1];
                fds[0] = in_r;
        }
        fds[1] = output_fd(spawn->stdio[1], &out_r, &out_w);
        if (fds[1] < 0)
                return fds[1];
        fds[2] = output_fd(spawn->stdio[2], &err_r, &err_w);
        if (fds[2] < 0)
                return fds[2];
        /* The whole input fits into an empty pipe, so this cannot block. */
        if (spawn->input && (r = write_all(in_w, spawn->input, spawn->input_len)) < 0)
                return r;
        /* NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): read by the _cleanup_close_ at scope exit */
        in_w = safe_close(in_w);

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->out.fd = c->err.fd = -EBADF;
        c->cb = cb;
        c->userdata = userdata;
        c->log_offset = file_size(cfg->log_path);
        c->binary = strdup(argv[0]);
        if (!c->binary || strdup_opt(&c->log_path, cfg->log_path) < 0) {
                cmd_free(c);
                return -ENOMEM;
        }

        pid_t pid;
        r = spawn_runc(argv, fds, &pid);
        if (r < 0) {
                cmd_free(c);
                return r;
        }

        if ((out_r >= 0 && (r = capture_setup(e, &c->out, TAKE_FD(out_r))) < 0) ||
            (err_r >= 0 && (r = capture_setup(e, &c->err, TAKE_FD(err_r))) < 0) ||
            (r = reaper_watch(reaper, pid, on_exit_cmd, c)) < 0) {
                /* The child is running; make sure it does not outlive us unseen. */
                (void)kill(pid, SIGKILL);
                cmd_free(c);
                return r;
        }
        log_debug("Started %s %s (pid %d)", argv[0], args[0], (int)pid);
        return 0;
}

int runc_run_sync(const RuncConfig *cfg, char *const *args) {
        _cleanup_free_ char **argv = NULL;
        static const int devnull[3] = {SPAWN_NULL, SPAWN_NULL, SPAWN_NULL};
        int status;
        pid_t pid;

        int r = build_argv(cfg, args, &argv);
        if (r < 0)
                return r;
        r = spawn_runc(argv, devnull, &pid);
        if (r < 0)
                return r;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return reaper_exit_status(status);
}
