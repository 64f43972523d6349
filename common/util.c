/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#include "util.h"

ssize_t read_full_at(int fd, void *buf, size_t size, off_t off) {
        uint8_t *p = buf;
        size_t got = 0;
        while (got < size) {
                ssize_t k = off < 0 ? read(fd, p + got, size - got)
                                    : pread(fd, p + got, size - got, off + (off_t)got);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        break;
                got += (size_t)k;
        }
        return (ssize_t)got;
}

int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;

        for (;;) {
                if (size + 1 >= alloc) {
                        size_t n = alloc ? alloc * 2 : 4096;
                        if (n > max + 1)
                                n = max + 1;
                        if (n <= size + 1)
                                return -EFBIG;
                        char *p = realloc(buf, n);
                        if (!p)
                                return -ENOMEM;
                        buf = p;
                        alloc = n;
                }
                size_t want = alloc - size - 1;
                ssize_t k = read_full_at(fd, buf + size, want, -1);
                if (k < 0)
                        return (int)k;
                size += (size_t)k;
                if ((size_t)k < want)
                        break;
        }
        buf[size] = 0;
        if (ret_size)
                *ret_size = size;
        *ret = TAKE_PTR(buf);
        return 0;
}

int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        return read_full_fd(fd, max, ret, ret_size);
}

int write_all_at(int fd, const void *buf, size_t len, off_t off) {
        const uint8_t *p = buf;
        while (len > 0) {
                ssize_t k = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (k == 0)
                        return -EIO;
                p += k;
                len -= (size_t)k;
                if (off >= 0)
                        off += k;
        }
        return 0;
}

int write_all(int fd, const void *buf, size_t len) {
        return write_all_at(fd, buf, len, -1);
}

ssize_t send_nowait(int fd, const void *buf, size_t len) {
        for (;;) {
                ssize_t n = send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n >= 0 || errno != EINTR)
                        return n < 0 ? negative_errno() : n;
        }
}

int write_file_atomic(const char *path, const void *buf, size_t len, int mode) {
        return write_file_replace(path, buf, len, mode, true);
}

int write_file_replace(const char *path, const void *buf, size_t len, int mode, bool sync) {
        char tmp[PATH_MAX];
        const char *slash = strrchr(path, '/');
        int n;

        if (slash)
                n = snprintf(tmp, sizeof(tmp), "%.*s/.%s.XXXXXX", (int)(slash - path), path, slash + 1);
        else
                n = snprintf(tmp, sizeof(tmp), ".%s.XXXXXX", path);
        if (n < 0 || (size_t)n >= sizeof(tmp))
                return -ENAMETOOLONG;

        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int r = write_all(fd, buf, len);
        if (r >= 0 && fchmod(fd, (mode_t)mode) < 0)
                r = negative_errno();
        if (r >= 0 && sync && fsync(fd) < 0)
                r = negative_errno();
        return tmp_file_commit(tmp, path, r);
}

int tmp_file_commit(const char *tmp, const char *path, int r) {
        if (r >= 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0)
                (void)unlink(tmp);
        return r;
}

int sockaddr_un_set(struct sockaddr_un *ret, const char *path) {
        size_t n = strlen(path);
        if (n >= sizeof(ret->sun_path))
                return -ENAMETOOLONG;
        *ret = (struct sockaddr_un){.sun_family = AF_UNIX};
        memcpy(ret->sun_path, path, n + 1);
        return 0;
}

int mkdir_parents(const char *path, int mode) {
        const char *slash = strrchr(path, '/');
        if (!slash || slash == path)
                return 0;
        _cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
        if (!dir)
                return -ENOMEM;
        return mkdir_p(dir, mode);
}

int mkdir_p(const char *path, int mode) {
        char buf[PATH_MAX];
        size_t l = strlen(path);

        if (l == 0 || l >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, path, l + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
                        return negative_errno();
                *p = '/';
        }
        if (mkdir(buf, (mode_t)mode) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

/* Sets or clears bit in the flags fcntl()'s get/set pair reads and writes; no
 * second call when it is already so. */
static int fd_set_flag(int fd, int get, int set, int bit, bool on) {
        int flags = fcntl(fd, get);
        if (flags < 0)
                return negative_errno();
        int nflags = on ? flags | bit : flags & ~bit;
        if (nflags != flags && fcntl(fd, set, nflags) < 0)
                return negative_errno();
        return 0;
}

int fd_nonblock(int fd, bool nonblock) {
        return fd_set_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK, nonblock);
}

int fd_cloexec(int fd, bool cloexec) {
        return fd_set_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC, cloexec);
}

int64_t now_realtime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * (int64_t)NSEC_PER_SEC + ts.tv_nsec;
}

char *format_time_rfc3339(char *buf, size_t size, int64_t ns) {
        struct tm tm;
        time_t t = (time_t)(ns / (int64_t)NSEC_PER_SEC);

        if (ns <= 0 || !gmtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
                if (size > 0)
                        buf[0] = 0;
        }
        return buf;
}

uint64_t now_monotonic_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / NSEC_PER_USEC;
}

static int name_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

char *strdup_vprintf(const char *fmt, va_list ap) {
        char *s;
        return vasprintf(&s, fmt, ap) < 0 ? NULL : s;
}

int free_and_strdup(char **p, const char *s) {
        char *t = strdup(s);
        if (!t)
                return -ENOMEM;
        free(*p);
        *p = t;
        return 0;
}

char *strdup_printf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = strdup_vprintf(fmt, ap);
        va_end(ap);
        return s;
}

struct dirent *readdir_no_dot(DIR *d) {
        struct dirent *de;
        while ((de = readdir(d)) && (streq(de->d_name, ".") || streq(de->d_name, "..")))
                ;
        return de;
}

int dir_open_fd(int dir_fd, DIR **ret) {
        int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return negative_errno();
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        rewinddir(d); /* the copy shares the file offset */
        *ret = d;
        return 0;
}

int dir_list_sorted(int dir_fd, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        size_t n = 0, alloc = 0;
        int r = 0;

        DIR *d;
        r = dir_open_fd(dir_fd, &d);
        if (r < 0)
                return r;
        struct dirent *de;
        for (;;) {
                errno = 0;
                de = readdir_no_dot(d);
                if (!de) {
                        if (errno != 0)
                                r = negative_errno();
                        break;
                }
                if (GREEDY_REALLOC(names, alloc, n + 2, 32) < 0) {
                        r = -ENOMEM;
                        break;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                names[++n] = NULL;
        }
        closedir(d);
        if (r < 0)
                return r;
        if (!names) {
                names = calloc(1, sizeof(char *));
                if (!names)
                        return -ENOMEM;
        }
        qsort(names, n, sizeof(char *), name_cmp);
        *ret = TAKE_PTR(names);
        return 0;
}

size_t strv_length(char *const *l) {
        size_t n = 0;
        while (l && l[n])
                n++;
        return n;
}

bool strv_contains(char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

int strv_push_dup(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **nl = realloc(*l, (n + 2) * sizeof(char *));
        if (!nl)
                return -ENOMEM;
        *l = nl;
        nl[n] = strdup(s);
        nl[n + 1] = NULL;
        return nl[n] ? 0 : -ENOMEM;
}

int greedy_realloc(void **p, size_t *alloc, size_t need, size_t size, size_t min) {
        if (need <= *alloc)
                return 0;
        size_t na = *alloc ? *alloc : (min ? min : 1);
        while (na < need) {
                if (na > SIZE_MAX / 2)
                        return -ENOMEM;
                na *= 2;
        }
        if (size == 0 || na > SIZE_MAX / size)
                return -ENOMEM;
        void *n = reallocarray(*p, na, size);
        if (!n)
                return -ENOMEM;
        *p = n;
        *alloc = na;
        return 0;
}
