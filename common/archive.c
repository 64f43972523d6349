/* SPDX-License-Identifier: Apache-2.0 */
/* Archive paths: the normalisation both the reader and the writer apply;
 * compressed archives through a decompressor child. */
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "archive-internal.h"
#include "spawn-child.h"

int archive_path_normalize(const char *in, char out[static ARCHIVE_PATH_MAX]) {
        size_t o = 0;
        const char *p = in;

        if (!in || !*in)
                return -EINVAL;
        if (*in == '/')
                return -EPERM;
        for (const char *c = in; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                        return -EINVAL;

        while (*p) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                size_t len = strcspn(p, "/");
                if (len == 1 && p[0] == '.') {
                        p += len;
                        continue;
                }
                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return -EPERM;
                if (len > ARCHIVE_NAME_MAX)
                        return -ENAMETOOLONG;
                if (o + (o > 0) + len + 1 > ARCHIVE_PATH_MAX)
                        return -ENAMETOOLONG;
                if (o > 0)
                        out[o++] = '/';
                memcpy(out + o, p, len);
                o += len;
                p += len;
        }
        out[o] = 0;
        return o == 0 ? 1 : 0;
}

const char *archive_compression(int fd) {
        uint8_t m[4];
        if (pread(fd, m, sizeof(m), 0) != (ssize_t)sizeof(m))
                return NULL;
        if (m[0] == 0x1f && m[1] == 0x8b)
                return "gzip";
        if (m[0] == 0x28 && m[1] == 0xb5 && m[2] == 0x2f && m[3] == 0xfd)
                return "zstd";
        return NULL;
}

int archive_decompress(int fd, const char *tool, int *ret_fd, pid_t *ret_pid) {
        /* The child reads the file from its start (its offset is fd's). */
        if (lseek(fd, 0, SEEK_SET) < 0)
                return negative_errno();
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return negative_errno();
        char *argv[] = {(char *)tool, (char *)"-dc", NULL};
        SpawnOptions so = {.stdio = {fd, p[1], STDERR_FILENO}, .parent_death_signal = SIGKILL};
        int r = spawn_exec(argv, &so, ret_pid);
        safe_close(p[1]);
        if (r < 0) {
                safe_close(p[0]);
                return r;
        }
        *ret_fd = p[0];
        return 0;
}

int archive_decompress_end(int fd, pid_t pid, bool complete) {
        int r = 0;
        if (complete) {
                char buf[64 * 1024];
                uint64_t n = 0;
                ssize_t k;
                while ((k = read(fd, buf, sizeof(buf))) != 0) {
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                r = negative_errno();
                                break;
                        }
                        n += (uint64_t)k;
                        if (n > ARCHIVE_TRAILER_MAX) {
                                r = -EBADMSG;
                                break;
                        }
                }
        }
        safe_close(fd);
        if (pid <= 0)
                return r;
        if (!complete || r < 0)
                (void)kill(pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return r < 0 ? r : negative_errno();
        if (complete && r >= 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0))
                r = -EBADMSG;
        return r;
}
