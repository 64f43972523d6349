/* SPDX-License-Identifier: Apache-2.0 */
/* Capturing a writable layer (rootfs-diff.h): the overlay found in mountinfo,
 * its upper directory archived; the apply is rootfs-diff-apply.c. */
#include <cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>

#include "archive.h"
#include "cjson-util.h"
#include "rootfs-diff-internal.h"
#include "rootfs-diff.h"
#include "util.h"

static char *mfree(char *p) {
        free(p);
        return NULL;
}

void rootfs_overlay_done(RootfsOverlay *o) {
        free(o->upperdir);
        free(o->fstype);
        o->upperdir = o->fstype = NULL;
        o->userxattr = false;
}

/* ---- mountinfo ---- */

/* Undoes the kernel's octal escapes (\040 for ' ', \134 for '\\', ...) of
 * mountinfo fields and mount options, in place. */
static void unescape_octal(char *s) {
        char *o = s;
        for (char *p = s; *p;) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
                    p[3] >= '0' && p[3] <= '7') {
                        *o++ = (char)((p[1] - '0') << 6 | (p[2] - '0') << 3 | (p[3] - '0'));
                        p += 4;
                } else
                        *o++ = *p++;
        }
        *o = 0;
}

int rootfs_find_overlay(const char *mountinfo, const char *mount_point, RootfsOverlay *o) {
        _cleanup_free_ char *text = strdup(mountinfo);
        _cleanup_free_ char *fstype = NULL, *upper = NULL;
        bool found = false, userxattr = false;

        if (!text)
                return -ENOMEM;
        char *save_line = NULL;
        for (char *line = strtok_r(text, "\n", &save_line); line; line = strtok_r(NULL, "\n", &save_line)) {
                /* id parent maj:min root mount-point options [optional...] - fstype source super-options */
                char *f[6], *save = NULL, *t = strtok_r(line, " ", &save);
                size_t n = 0;
                for (; t && n < 6; n++) {
                        f[n] = t;
                        t = strtok_r(NULL, " ", &save);
                }
                if (n < 6)
                        return -EBADMSG;
                while (t && !streq(t, "-"))
                        t = strtok_r(NULL, " ", &save);
                if (!t)
                        return -EBADMSG;
                char *type = strtok_r(NULL, " ", &save);
                char *source = strtok_r(NULL, " ", &save);
                char *opts = strtok_r(NULL, " ", &save);
                if (!type || !source || !opts)
                        return -EBADMSG;
                unescape_octal(f[4]);
                if (!streq(f[4], mount_point))
                        continue;
                /* Later lines are mounted on top of earlier ones: the last wins. */
                found = true;
                free(fstype);
                unescape_octal(type);
                fstype = strdup(type);
                upper = mfree(upper);
                userxattr = false;
                if (!fstype)
                        return -ENOMEM;
                if (!streq(type, "overlay"))
                        continue;
                char *save_opt = NULL;
                for (char *opt = strtok_r(opts, ",", &save_opt); opt; opt = strtok_r(NULL, ",", &save_opt)) {
                        const char *v = startswith(opt, "upperdir=");
                        if (v) {
                                free(upper);
                                upper = strdup(v);
                                if (!upper)
                                        return -ENOMEM;
                                unescape_octal(upper);
                        } else if (streq(opt, "userxattr"))
                                userxattr = true;
                }
        }
        if (!found)
                return -ENOENT;
        rootfs_overlay_done(o);
        o->fstype = TAKE_PTR(fstype);
        o->userxattr = userxattr;
        if (!upper || upper[0] != '/')
                return 0;
        o->upperdir = TAKE_PTR(upper);
        return 1;
}

/* ---- shared helpers ---- */

int rootfs_open_beneath(int dir_fd, const char *path, int flags, mode_t mode) {
        struct open_how how = {
                .flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
                .mode = (flags & O_CREAT) ? mode : 0,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
        };
        long fd;
        do
                fd = syscall(SYS_openat2, dir_fd, path, &how, sizeof(how));
        while (fd < 0 && errno == EINTR);
        return fd < 0 ? negative_errno() : (int)fd;
}

/* ---- capture ---- */

typedef struct Capture {
        ArchiveWriter *w;
        const char *xattr_prefix;
        int merged_fd;
        char **deleted;
        size_t n_deleted, alloc_deleted, deleted_bytes;
        RootfsDiffStats stats;
} Capture;

static int capture_add_deleted(Capture *c, const char *path) {
        if (c->n_deleted + 2 > c->alloc_deleted) {
                size_t na = c->alloc_deleted ? c->alloc_deleted * 2 : 16;
                char **nn = reallocarray(c->deleted, na, sizeof(char *));
                if (!nn)
                        return -ENOMEM;
                c->deleted = nn;
                c->alloc_deleted = na;
        }
        char *p;
        if (asprintf(&p, "/%s", path) < 0)
                return -ENOMEM;
        c->deleted[c->n_deleted++] = p;
        c->deleted[c->n_deleted] = NULL;
        /* What apply reads back: the same limits (JSON quoting and escapes included). */
        c->deleted_bytes += 2 * strlen(p) + 3;
        if (c->n_deleted > ROOTFS_DIFF_MAX_ENTRIES || c->deleted_bytes > ROOTFS_DELETED_MAX_BYTES)
                return -E2BIG;
        return 0;
}

/* Whether the overlay xattr <prefix><name> is set on fd (its value in val). */
static int overlay_xattr(const Capture *c, int fd, const char *name, char *val, size_t size) {
        char key[64];
        snprintf(key, sizeof(key), "%s%s", c->xattr_prefix, name);
        ssize_t k = fgetxattr(fd, key, val, size - 1);
        if (k < 0) {
                if (errno == ENODATA || errno == ENOTSUP || errno == ERANGE)
                        return errno == ERANGE; /* ERANGE: set, with a long value */
                return negative_errno();
        }
        val[k] = 0;
        return 1;
}

static int capture_add(Capture *c, const char *path, const struct stat *st, int fd, const char *target) {
        int r = archive_writer_add_entry(c->w, path, st, fd, target);
        if (r < 0)
                return r;
        if (++c->stats.entries > ROOTFS_DIFF_MAX_ENTRIES)
                return -E2BIG;
        return 0;
}

static int capture_symlink(Capture *c, int dir_fd, const char *name, const char *path,
                           const struct stat *st) {
        char target[ARCHIVE_PATH_MAX];
        ssize_t k = readlinkat(dir_fd, name, target, sizeof(target));
        if (k < 0)
                return negative_errno();
        if ((size_t)k >= sizeof(target) || k == 0)
                return -ENAMETOOLONG;
        target[k] = 0;
        return capture_add(c, path, st, -EBADF, target);
}

typedef int (*CaptureEntryFn)(Capture *c, int dir_fd, const char *name, const char *path,
                              const struct stat *st, unsigned depth);

typedef struct CaptureWalk {
        Capture *c;
        unsigned depth;
        CaptureEntryFn fn;
} CaptureWalk;

static int capture_walk_entry(int dir_fd, const char *name, const char *path, const struct stat *st,
                              void *userdata) {
        const CaptureWalk *w = userdata;
        return w->fn(w->c, dir_fd, name, path, st, w->depth);
}

/* Calls fn for each entry of dir_fd in name order, with its path in the
 * image (prefix/name, or name at the top) and its lstat. */
/* NOLINTNEXTLINE(misc-no-recursion): depth bounded by ROOTFS_DIFF_DEPTH_MAX */
static int capture_walk(Capture *c, int dir_fd, const char *prefix, unsigned depth, CaptureEntryFn fn) {
        if (depth > ROOTFS_DIFF_DEPTH_MAX)
                return -ELOOP;
        CaptureWalk w = {c, depth, fn};
        return archive_walk_sorted(dir_fd, prefix, capture_walk_entry, &w);
}

/* An entry of a subtree taken as it is (from the merged rootfs): no overlay markers. */
static int capture_plain(Capture *c, int dir_fd, const char *name, const char *path, const struct stat *st,
                         unsigned depth) {
        int r;

        if (S_ISDIR(st->st_mode)) {
                _cleanup_close_ int sub = rootfs_open_beneath(dir_fd, name, O_RDONLY | O_DIRECTORY, 0);
                if (sub < 0)
                        return sub;
                r = capture_add(c, path, st, -EBADF, NULL);
                if (r >= 0)
                        r = capture_walk(c, sub, path, depth + 1, capture_plain);
        } else if (S_ISREG(st->st_mode)) {
                _cleanup_close_ int fd = rootfs_open_beneath(dir_fd, name, O_RDONLY | O_NOCTTY, 0);
                if (fd < 0)
                        return fd;
                r = capture_add(c, path, st, fd, NULL);
        } else if (S_ISLNK(st->st_mode))
                r = capture_symlink(c, dir_fd, name, path, st);
        else {
                c->stats.skipped++;
                r = 0;
        }
        return r;
}

/* path opened read-only in the merged rootfs (where a redirected directory
 * or a metacopy file has its content), its stat in *ret; -ENOTSUP without one. */
static int open_merged(Capture *c, const char *path, int flags, struct stat *ret) {
        if (c->merged_fd < 0)
                return -ENOTSUP;
        int fd = rootfs_open_beneath(c->merged_fd, path, O_RDONLY | flags, 0);
        if (fd < 0)
                return fd;
        if (fstat(fd, ret) < 0) {
                int r = negative_errno();
                safe_close(fd);
                return r;
        }
        return fd;
}

/* name in the upper directory opened read-only (with flags) into *ret_fd, and
 * whether its overlay xattr <marker> is set, as overlay_xattr() answers. */
static int open_upper(const Capture *c, int dir_fd, const char *name, int flags, const char *marker,
                      char *val, size_t size, int *ret_fd) {
        _cleanup_close_ int fd = rootfs_open_beneath(dir_fd, name, O_RDONLY | flags, 0);
        if (fd < 0)
                return fd;
        int r = overlay_xattr(c, fd, marker, val, size);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return r;
}

/* An entry of the upper directory: whiteouts, opaque and redirected directories, metacopy files. */
static int capture_upper(Capture *c, int dir_fd, const char *name, const char *path, const struct stat *st,
                         unsigned depth) {
        char val[256];
        int r;

        if (S_ISCHR(st->st_mode) && st->st_rdev == 0) {
                r = capture_add_deleted(c, path); /* whiteout */
        } else if (S_ISDIR(st->st_mode)) {
                _cleanup_close_ int sub = -EBADF;
                int redirect = open_upper(c, dir_fd, name, O_DIRECTORY, "redirect", val, sizeof(val), &sub);
                if (redirect < 0)
                        return redirect;
                if (redirect) {
                        /* Renamed from elsewhere in the image: the new place gets
                         * the whole merged content. */
                        struct stat mst;
                        _cleanup_close_ int m = open_merged(c, path, O_DIRECTORY, &mst);
                        if (m < 0)
                                return m;
                        r = capture_add_deleted(c, path);
                        if (r >= 0)
                                r = capture_add(c, path, &mst, -EBADF, NULL);
                        if (r >= 0)
                                r = capture_walk(c, m, path, depth + 1, capture_plain);
                } else {
                        int opaque = overlay_xattr(c, sub, "opaque", val, sizeof(val));
                        if (opaque < 0)
                                return opaque;
                        r = 0;
                        if (opaque && streq(val, "y"))
                                r = capture_add_deleted(c, path);
                        if (r >= 0)
                                r = capture_add(c, path, st, -EBADF, NULL);
                        if (r >= 0)
                                r = capture_walk(c, sub, path, depth + 1, capture_upper);
                }
        } else if (S_ISREG(st->st_mode)) {
                _cleanup_close_ int fd = -EBADF;
                int metacopy = open_upper(c, dir_fd, name, O_NOCTTY, "metacopy", val, sizeof(val), &fd);
                if (metacopy < 0)
                        return metacopy;
                if (metacopy) {
                        /* Only the metadata was copied up: the data is below. */
                        struct stat mst;
                        _cleanup_close_ int m = open_merged(c, path, O_NOCTTY, &mst);
                        if (m < 0)
                                return m;
                        r = capture_add(c, path, &mst, m, NULL);
                } else
                        r = capture_add(c, path, st, fd, NULL);
        } else if (S_ISLNK(st->st_mode))
                r = capture_symlink(c, dir_fd, name, path, st);
        else {
                c->stats.skipped++; /* sockets, FIFOs, devices */
                r = 0;
        }
        return r;
}

static int write_deleted_files(int dest_fd, char **paths) {
        _cleanup_cjson_ cJSON *a = cJSON_CreateArray();
        if (!a)
                return -ENOMEM;
        STRV_FOREACH (p, paths) {
                cJSON *s = cJSON_CreateString(*p);
                if (!s || !cJSON_AddItemToArray(a, s)) {
                        cJSON_Delete(s);
                        return -ENOMEM;
                }
        }
        _cleanup_free_ char *text = cJSON_PrintUnformatted(a);
        if (!text)
                return -ENOMEM;
        _cleanup_close_ int fd = openat(dest_fd, ROOTFS_DELETED_FILES,
                                        O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        return write_all(fd, text, strlen(text));
}

int rootfs_diff_capture_limited(const char *upperdir, bool userxattr, const char *merged,
                                const char *dest_dir, uint64_t max_data_bytes, RootfsDiffStats *ret_stats) {
        _cleanup_close_ int upper_fd = -EBADF, merged_fd = -EBADF, dest_fd = -EBADF, out = -EBADF;
        _cleanup_(archive_writer_freep) ArchiveWriter *w = NULL;
        Capture c = {.xattr_prefix = userxattr ? "user.overlay." : "trusted.overlay.", .merged_fd = -EBADF};
        int r;

        upper_fd = open(upperdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (upper_fd < 0)
                return negative_errno();
        /* The merged view serves only renamed directories and metadata-only
         * copies; a rootfs already unmounted (the stopped container was deleted)
         * fails those entries alone, with -ENOTSUP. */
        if (merged) {
                merged_fd = open(merged, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (merged_fd < 0 && errno != ENOENT)
                        return negative_errno();
                c.merged_fd = merged_fd;
        }
        dest_fd = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dest_fd < 0)
                return negative_errno();
        out = openat(dest_fd, ROOTFS_DIFF_TAR, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (out < 0)
                return negative_errno();
        r = archive_writer_new(out, &w);
        if (r < 0)
                return r;
        c.w = w;
        archive_writer_set_max_data(w, max_data_bytes);
        r = capture_walk(&c, upper_fd, "", 0, capture_upper);
        if (r >= 0)
                r = archive_writer_finish(w);
        if (r >= 0 && c.n_deleted > 0)
                r = write_deleted_files(dest_fd, c.deleted);
        c.stats.deleted = c.n_deleted;
        c.stats.bytes = archive_writer_bytes(w);
        c.stats.data_bytes = archive_writer_data_bytes(w);
        strv_free(c.deleted);
        if (ret_stats)
                *ret_stats = c.stats;
        return r < 0 ? r : 0;
}

int rootfs_diff_capture(const char *upperdir, bool userxattr, const char *merged, const char *dest_dir,
                        RootfsDiffStats *ret_stats) {
        return rootfs_diff_capture_limited(upperdir, userxattr, merged, dest_dir, 0, ret_stats);
}
