/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Small helpers shared by every program: cleanup attributes, ownership moves,
 * and a few string and fd utilities. Fallible functions return >= 0 on
 * success and a negative errno on failure. */

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _noreturn_ __attribute__((noreturn))
#define _warn_unused_result_ __attribute__((warn_unused_result))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#define USEC_PER_SEC ((uint64_t)1000000ULL)
#define USEC_PER_MSEC ((uint64_t)1000ULL)
#define NSEC_PER_USEC ((uint64_t)1000ULL)
#define NSEC_PER_SEC ((uint64_t)1000000000ULL)

/* Move ownership out of a cleanup variable. */
#define TAKE_PTR(p)                     \
        ({                              \
                __typeof__(p) _p = (p); \
                (p) = NULL;             \
                _p;                     \
        })
#define TAKE_FD(fd)             \
        ({                      \
                int _fd = (fd); \
                (fd) = -EBADF;  \
                _fd;            \
        })

/* Defines name##p(type **p) calling func(*p), for _cleanup_(name##p). */
/* NOLINTBEGIN(bugprone-macro-parentheses): type is a type name */
#define DEFINE_POINTER_CLEANUP(type, func)     \
        static inline void func##p(type **p) { \
                if (*p)                        \
                        func(*p);              \
        }
/* NOLINTEND(bugprone-macro-parentheses) */

static inline void freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* Closes fd if valid; returns -EBADF so callers can write fd = safe_close(fd). */
static inline int safe_close(int fd) {
        if (fd >= 0) {
                int saved = errno;
                (void)close(fd);
                errno = saved;
        }
        return -EBADF;
}
static inline void closep(int *fd) {
        safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void strv_free(char **l) {
        if (!l)
                return;
        for (char **s = l; *s; s++)
                free(*s);
        free(l);
}
static inline void strv_freep(char ***l) {
        strv_free(*l);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)
/* Makes room for at least need elements of size bytes each in the array *p
 * of capacity *alloc, doubling it (from min); *p and *alloc unchanged on
 * failure. GREEDY_REALLOC(array, alloc, need, min) for a typed array. */
int greedy_realloc(void **p, size_t *alloc, size_t need, size_t size, size_t min);
#define GREEDY_REALLOC(p, alloc, need, min) \
        greedy_realloc((void **)&(p), &(alloc), (need), sizeof(*(p)), (min))
/* The number of strings of a NULL-terminated list (NULL: 0). */
size_t strv_length(char *const *l);
/* Whether the NULL-terminated list l (NULL: empty) holds s. */
bool strv_contains(char *const *l, const char *s);
/* Appends a copy of s to the NULL-terminated list *l (NULL: empty). */
int strv_push_dup(char ***l, const char *s);
/* NOLINTNEXTLINE(bugprone-macro-parentheses): s names the loop variable */
#define STRV_FOREACH(s, l) for (char **s = (l); s && *s; s++)

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)

static inline bool isempty(const char *s) {
        return !s || !*s;
}

static inline const char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);
        return strncmp(s, prefix, l) == 0 ? s + l : NULL;
}

static inline bool endswith(const char *s, const char *suffix) {
        size_t a = strlen(s), b = strlen(suffix);
        return a >= b && streq(s + a - b, suffix);
}

/* -errno, never 0, for use right after a failed libc call. */
static inline int negative_errno(void) {
        int r = errno > 0 ? -errno : -EIO;
        /* True, and tells clang's analyzer (which does not reason through the
         * negation) that callers see a failure, never r >= 0 with nothing set. */
        if (r >= 0)
                __builtin_unreachable();
        return r;
}

/* Reads until size bytes or EOF, at off (or the file position if off < 0),
 * retrying on EINTR and short reads; returns the bytes read. */
ssize_t read_full_at(int fd, void *buf, size_t size, off_t off);
/* Reads all of fd into a NUL-terminated buffer, refusing more than max bytes. */
int read_full_fd(int fd, size_t max, char **ret, size_t *ret_size);
int read_full_file(const char *path, size_t max, char **ret, size_t *ret_size);
/* Writes the whole buffer, at off (or the file position if off < 0),
 * retrying on EINTR and short writes; a write of nothing is -EIO. */
int write_all_at(int fd, const void *buf, size_t len, off_t off);
/* write_all_at() at the file position. */
int write_all(int fd, const void *buf, size_t len);
/* One send(2) that neither blocks nor raises SIGPIPE, retried on EINTR:
 * the bytes sent, or a negative errno (-EAGAIN: the socket is full). */
ssize_t send_nowait(int fd, const void *buf, size_t len);
/* Writes path atomically: temporary file in the same directory, fsync (with
 * sync only), rename. write_file_atomic() always syncs. */
int write_file_replace(const char *path, const void *buf, size_t len, int mode, bool sync);
/* The end of a temporary file written for path: renamed over path if r (how
 * writing it went) is >= 0, else removed. Returns r, or rename's error. */
int tmp_file_commit(const char *tmp, const char *path, int r);
int write_file_atomic(const char *path, const void *buf, size_t len, int mode);
int mkdir_p(const char *path, int mode);
/* mkdir_p() of the directory holding path's last component. */
int mkdir_parents(const char *path, int mode);
/* An AF_UNIX address for path, NUL-terminated in sun_path; -ENAMETOOLONG when
 * it does not fit (a path that fills sun_path exactly is refused too). */
int sockaddr_un_set(struct sockaddr_un *ret, const char *path);
/* A DIR stream, from the start, on a close-on-exec copy of dir_fd (which
 * stays open: closedir() closes only the copy). */
int dir_open_fd(int dir_fd, DIR **ret);
/* readdir() without "." and "..": NULL at the end, or with errno set on an error. */
struct dirent *readdir_no_dot(DIR *d);
/* vasprintf() that answers the new string, or NULL when out of memory. */
char *strdup_vprintf(const char *fmt, va_list ap) _printf_(1, 0);
char *strdup_printf(const char *fmt, ...) _printf_(1, 2);
/* *p becomes a copy of s, the old string freed; out of memory leaves *p as
 * it was. */
int free_and_strdup(char **p, const char *s);
/* The names in the directory open at dir_fd (but "." and ".."), sorted bytewise,
 * NULL-terminated; the fd's position is not used or changed. */
int dir_list_sorted(int dir_fd, char ***ret);
int fd_nonblock(int fd, bool nonblock);
int fd_cloexec(int fd, bool cloexec);
/* Realtime clock, nanoseconds since the epoch. */
int64_t now_realtime_ns(void);
uint64_t now_monotonic_usec(void);
/* UTC RFC 3339 "YYYY-MM-DDTHH:MM:SSZ"; "" for 0. */
char *format_time_rfc3339(char *buf, size_t size, int64_t ns);
/* Hex of sha256 over buf; ret must hold 65 bytes. */
void sha256_hex(const void *buf, size_t len, char ret[static 65]);
