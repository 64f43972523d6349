/* SPDX-License-Identifier: Apache-2.0 */
/* Applying a writable layer (rootfs-diff.h) to a fresh root filesystem. */
#include <cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "archive.h"
#include "cjson-util.h"
#include "rootfs-diff-internal.h"
#include "rootfs-diff.h"
#include "util.h"

#define COPY_BUF_SIZE ((size_t)128 * 1024)

/* ---- apply ---- */

typedef struct DirTime {
        char *path;
        int64_t mtime;
} DirTime;

typedef struct Apply {
        int root_fd;
        dev_t root_dev;
        uint8_t *buf;
        /* the parent directory of the previous entry, reused while it stays the same */
        char *cached_path;
        int cached_fd;
        DirTime *dirs;
        size_t n_dirs, alloc_dirs, dirs_bytes;
        char *bad_path;      /* for the message */
        uint64_t data_bytes; /* file data in the archive (the pre-pass) */
} Apply;

static void apply_done(Apply *a) {
        free(a->cached_path);
        safe_close(a->cached_fd);
        for (size_t i = 0; i < a->n_dirs; i++)
                free(a->dirs[i].path);
        free(a->dirs);
        free(a->bad_path);
        free(a->buf);
}

static int map_resolve_error(int r) {
        /* A symlink on the way, an escape or another filesystem: refused. */
        return r == -ELOOP || r == -EXDEV || r == -EAGAIN ? -EPERM : r;
}

/* Opens the directory at the relative, normalised path below the rootfs
 * ("" for the rootfs itself), creating missing components (0755) if asked,
 * one component at a time and never through a symlink. */
static int open_dir_in_root(Apply *a, const char *path, bool create, int *ret_fd) {
        _cleanup_close_ int cur = fcntl(a->root_fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return negative_errno();
        const char *p = path;
        unsigned depth = 0;
        while (*p) {
                char comp[ARCHIVE_NAME_MAX + 1];
                size_t len = strcspn(p, "/");
                if (len == 0 || len > ARCHIVE_NAME_MAX)
                        return -EINVAL;
                if (++depth > ROOTFS_DIFF_DEPTH_MAX)
                        return -ELOOP;
                memcpy(comp, p, len);
                comp[len] = 0;
                int next = rootfs_open_beneath(cur, comp, O_RDONLY | O_DIRECTORY, 0);
                if (next == -ENOENT && create) {
                        if (mkdirat(cur, comp, 0755) < 0 && errno != EEXIST)
                                return negative_errno();
                        next = rootfs_open_beneath(cur, comp, O_RDONLY | O_DIRECTORY, 0);
                }
                if (next == -ENOTDIR) {
                        /* O_DIRECTORY | O_NOFOLLOW on a symlink says ENOTDIR:
                         * a link on the way is refused, a file is just not a directory. */
                        struct stat st;
                        if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISLNK(st.st_mode))
                                return -EPERM;
                }
                if (next < 0)
                        return map_resolve_error(next);
                safe_close(cur);
                cur = next;
                p += len;
                if (*p == '/')
                        p++;
        }
        *ret_fd = TAKE_FD(cur);
        return 0;
}

/* Removes name in dir_fd: a file, a symlink (not followed) or a whole
 * directory tree, never leaving the rootfs's filesystem. Absent: 0. */
/* NOLINTNEXTLINE(misc-no-recursion): depth bounded by ROOTFS_DIFF_DEPTH_MAX */
static int remove_at(Apply *a, int dir_fd, const char *name, unsigned depth) {
        struct stat st;
        if (depth > ROOTFS_DIFF_DEPTH_MAX)
                return -ELOOP;
        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT ? negative_errno() : 0;
        if (st.st_dev != a->root_dev)
                return -EXDEV;
        _cleanup_close_ int sub = rootfs_open_beneath(dir_fd, name, O_RDONLY | O_DIRECTORY, 0);
        if (sub < 0)
                return sub;
        _cleanup_strv_free_ char **names = NULL;
        int r = dir_list_sorted(sub, &names);
        if (r < 0)
                return r;
        STRV_FOREACH (n, names) {
                r = remove_at(a, sub, *n, depth + 1);
                if (r < 0)
                        return r;
        }
        return unlinkat(dir_fd, name, AT_REMOVEDIR) < 0 && errno != ENOENT ? negative_errno() : 0;
}

/* Splits a normalised path into its parent's open fd (cached) and its name. */
static int open_parent(Apply *a, const char *path, bool create, int *ret_fd, const char **ret_name) {
        const char *slash = strrchr(path, '/');
        size_t plen = slash ? (size_t)(slash - path) : 0;
        const char *name = slash ? slash + 1 : path;

        if (!a->cached_path || strlen(a->cached_path) != plen || strncmp(a->cached_path, path, plen) != 0) {
                _cleanup_free_ char *parent = strndup(path, plen);
                int fd = -EBADF;
                if (!parent)
                        return -ENOMEM;
                int r = open_dir_in_root(a, parent, create, &fd);
                if (r < 0)
                        return r;
                free(a->cached_path);
                safe_close(a->cached_fd);
                a->cached_path = TAKE_PTR(parent);
                a->cached_fd = fd;
        }
        *ret_fd = a->cached_fd;
        *ret_name = name;
        return 0;
}

static void forget_parent(Apply *a) {
        free(a->cached_path);
        a->cached_path = NULL;
        a->cached_fd = safe_close(a->cached_fd);
}

static int set_owner_mode(int fd, const ArchiveEntry *e) {
        /* chown first: it clears setuid/setgid bits that fchmod then sets. */
        if (fchown(fd, e->uid, e->gid) < 0)
                return negative_errno();
        if (fchmod(fd, e->mode & 07777) < 0)
                return negative_errno();
        return 0;
}

/* A hard link to a regular file already in the rootfs (archives Podman and
 * CRI-O write have them); the target is found like any path: below the
 * rootfs, through no symlink. */
static int apply_hardlink(Apply *a, const ArchiveEntry *e, int dir_fd, const char *name, bool exists) {
        const char *target = e->link_target, *slash = strrchr(target, '/');
        _cleanup_free_ char *tparent = strndup(target, slash ? (size_t)(slash - target) : 0);
        _cleanup_close_ int tfd = -EBADF;
        struct stat st;
        int r;

        if (!tparent)
                return -ENOMEM;
        if (streq(target, e->path))
                return -EINVAL;
        r = open_dir_in_root(a, tparent, false, &tfd);
        if (r < 0)
                return r;
        const char *tname = slash ? slash + 1 : target;
        if (fstatat(tfd, tname, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EPERM;
        if (exists) {
                r = remove_at(a, dir_fd, name, 0);
                if (r < 0)
                        return r;
        }
        /* flags 0: a symlink as the last component would be linked, not followed. */
        if (linkat(tfd, tname, dir_fd, name, 0) < 0)
                return negative_errno();
        return 0;
}

static int apply_entry(ArchiveReader *rd, const ArchiveEntry *e, void *userdata) {
        Apply *a = userdata;
        const char *name;
        int dir_fd, r;
        struct stat st;

        free(a->bad_path);
        a->bad_path = strdup(e->path);

        r = open_parent(a, e->path, true, &dir_fd, &name);
        if (r < 0)
                return r;
        bool exists = fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) >= 0;
        if (!exists && errno != ENOENT)
                return negative_errno();

        if (e->type == ARCHIVE_ENTRY_DIRECTORY) {
                if (exists && !S_ISDIR(st.st_mode)) {
                        r = remove_at(a, dir_fd, name, 0);
                        if (r < 0)
                                return r;
                        exists = false;
                }
                if (!exists && mkdirat(dir_fd, name, 0700) < 0)
                        return negative_errno();
                _cleanup_close_ int fd = rootfs_open_beneath(dir_fd, name, O_RDONLY | O_DIRECTORY, 0);
                if (fd < 0)
                        return map_resolve_error(fd);
                r = set_owner_mode(fd, e);
                if (r < 0)
                        return r;
                if (a->n_dirs + 1 > a->alloc_dirs) {
                        size_t na = a->alloc_dirs ? a->alloc_dirs * 2 : 64;
                        DirTime *nd = reallocarray(a->dirs, na, sizeof(DirTime));
                        if (!nd)
                                return -ENOMEM;
                        a->dirs = nd;
                        a->alloc_dirs = na;
                }
                /* Bounded memory whatever the archive holds. */
                a->dirs_bytes += strlen(e->path) + 1;
                if (a->dirs_bytes > ROOTFS_DIFF_DIR_BYTES_MAX)
                        return -E2BIG;
                a->dirs[a->n_dirs].path = strdup(e->path);
                if (!a->dirs[a->n_dirs].path)
                        return -ENOMEM;
                a->dirs[a->n_dirs++].mtime = e->mtime;
                return 0;
        }

        if (e->type == ARCHIVE_ENTRY_HARDLINK)
                return apply_hardlink(a, e, dir_fd, name, exists);

        if (exists) {
                /* The entry replaces what the image has there. A directory
                 * that is the cached parent cannot be: paths are normalised. */
                r = remove_at(a, dir_fd, name, 0);
                if (r < 0)
                        return r;
        }
        struct timespec ts[2] = {{.tv_sec = e->mtime}, {.tv_sec = e->mtime}};

        if (e->type == ARCHIVE_ENTRY_SYMLINK) {
                if (symlinkat(e->link_target, dir_fd, name) < 0)
                        return negative_errno();
                if (fchownat(dir_fd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
                        return negative_errno();
                if (utimensat(dir_fd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
                        return negative_errno();
                return 0;
        }
        if (e->type != ARCHIVE_ENTRY_FILE)
                return -ENOTSUP;

        _cleanup_close_ int fd = rootfs_open_beneath(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0)
                return map_resolve_error(fd);
        r = archive_reader_copy_to(rd, fd, a->buf, COPY_BUF_SIZE); /* holes stay holes */
        if (r < 0)
                return r;
        r = set_owner_mode(fd, e);
        if (r < 0)
                return r;
        if (futimens(fd, ts) < 0)
                return negative_errno();
        return 0;
}

/* The pre-pass: archive_read() has checked the header, path, type and
 * sparse map and reads the data through to the end (a truncated archive
 * fails here); what apply_entry() would refuse on its own is checked too. */
static int validate_entry(ArchiveReader *rd, const ArchiveEntry *e, void *userdata) {
        Apply *a = userdata;
        free(a->bad_path);
        a->bad_path = strdup(e->path);
        if (e->type == ARCHIVE_ENTRY_SYMLINK && strlen(e->link_target) >= ARCHIVE_PATH_MAX)
                return -ENAMETOOLONG;
        if (e->type == ARCHIVE_ENTRY_HARDLINK && streq(e->link_target, e->path))
                return -EINVAL;
        if (e->type == ARCHIVE_ENTRY_FILE && e->size > (uint64_t)INT64_MAX)
                return -EFBIG;
        a->data_bytes += e->data_bytes;
        return 0;
}

/* Whether the archive's file data fits in the free space of the rootfs's
 * filesystem (a lower bound of what it needs: no room for metadata). */
static int check_space(int root_fd, uint64_t need) {
        struct statvfs sv;
        if (fstatvfs(root_fd, &sv) < 0)
                return negative_errno();
        if (sv.f_blocks == 0)
                return 0; /* a filesystem that does not say */
        uint64_t avail = (uint64_t)sv.f_bfree;
        if (sv.f_frsize > 0 && avail > UINT64_MAX / sv.f_frsize)
                return 0;
        return need > avail * sv.f_frsize ? -ENOSPC : 0;
}

/* Reads and checks deleted.files: a JSON array of paths, normalised into
 * relative ones. Absent: an empty list. */
static int read_deleted(int ckpt_fd, char ***ret, char **ret_bad) {
        _cleanup_close_ int fd = openat(ckpt_fd, ROOTFS_DELETED_FILES, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        _cleanup_free_ char *text = NULL;
        _cleanup_strv_free_ char **list = NULL;
        int r;

        if (fd < 0) {
                if (errno != ENOENT)
                        return negative_errno();
                list = calloc(1, sizeof(char *));
                if (!list)
                        return -ENOMEM;
                *ret = TAKE_PTR(list);
                return 0;
        }
        r = read_full_fd(fd, ROOTFS_DELETED_MAX_BYTES, &text, NULL);
        if (r < 0)
                return r;
        _cleanup_cjson_ cJSON *j = cJSON_Parse(text);
        if (!j || !cJSON_IsArray(j))
                return -EBADMSG;
        int n = cJSON_GetArraySize(j);
        if (n < 0 || (unsigned)n > ROOTFS_DIFF_MAX_ENTRIES)
                return -E2BIG;
        list = calloc((size_t)n + 1, sizeof(char *));
        if (!list)
                return -ENOMEM;
        size_t i = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, j) {
                char norm[ARCHIVE_PATH_MAX];
                const char *s = cJSON_GetStringValue(item);
                if (!s)
                        return -EBADMSG;
                while (*s == '/') /* Podman writes "/etc/motd" */
                        s++;
                r = archive_path_normalize(*s ? s : ".", norm);
                if (r != 0) {
                        *ret_bad = strdup(cJSON_GetStringValue(item));
                        return r == 1 ? -EPERM : r; /* "/" itself: never */
                }
                list[i] = strdup(norm);
                if (!list[i++])
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(list);
        return 0;
}

static void set_msg(char *buf, size_t len, const char *fmt, ...) _printf_(3, 4);
static void set_msg(char *buf, size_t len, const char *fmt, ...) {
        if (!buf || len == 0)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, len, fmt, ap);
        va_end(ap);
}

/* One pass over the diff from its start, decompressed if it is compressed. */
static int diff_read(int fd, const char *compression, const ArchiveLimits *limits, ArchiveEntryFunc f,
                     Apply *a) {
        if (!compression) {
                if (lseek(fd, 0, SEEK_SET) < 0)
                        return negative_errno();
                return archive_read(fd, limits, f, a);
        }
        int in;
        pid_t pid;
        int r = archive_decompress(fd, compression, &in, &pid);
        if (r < 0)
                return r;
        r = archive_read(in, limits, f, a);
        int e = archive_decompress_end(in, pid, r >= 0);
        return r < 0 ? r : e;
}

int rootfs_diff_apply_msg(const char *checkpoint_dir, const char *rootfs, char *errbuf, size_t errlen) {
        _cleanup_close_ int ckpt_fd = -EBADF, tar_fd = -EBADF;
        _cleanup_strv_free_ char **deleted = NULL;
        _cleanup_free_ char *bad = NULL;
        Apply a = {.root_fd = -EBADF, .cached_fd = -EBADF};
        const ArchiveLimits limits = {
                .max_entries = ROOTFS_DIFF_MAX_ENTRIES, .allow_symlinks = true, .allow_hardlinks = true};
        struct stat st;
        int r;

        set_msg(errbuf, errlen, "%s", "");
        ckpt_fd = open(checkpoint_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (ckpt_fd < 0) {
                r = negative_errno();
                set_msg(errbuf, errlen, "cannot open checkpoint directory %s: %s", checkpoint_dir,
                        strerror(-r));
                return r;
        }
        a.root_fd = open(rootfs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (a.root_fd < 0 || fstat(a.root_fd, &st) < 0) {
                r = negative_errno();
                set_msg(errbuf, errlen, "cannot open rootfs %s: %s", rootfs, strerror(-r));
                safe_close(a.root_fd);
                return r;
        }
        a.root_dev = st.st_dev;

        /* Everything that can be checked is checked before anything changes
         * (see rootfs-diff.h for what is not). */
        r = read_deleted(ckpt_fd, &deleted, &bad);
        if (r < 0) {
                set_msg(errbuf, errlen, "%s/%s refused%s%s: %s", checkpoint_dir, ROOTFS_DELETED_FILES,
                        bad ? " at " : "", bad ? bad : "", strerror(-r));
                goto finish;
        }
        tar_fd = openat(ckpt_fd, ROOTFS_DIFF_TAR, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (tar_fd < 0 && errno != ENOENT) {
                r = negative_errno();
                set_msg(errbuf, errlen, "cannot open %s/%s: %s", checkpoint_dir, ROOTFS_DIFF_TAR,
                        strerror(-r));
                goto finish;
        }
        /* containerd 2.x writes its rootfs-diff.tar gzip-compressed. */
        const char *compression = tar_fd >= 0 ? archive_compression(tar_fd) : NULL;
        if (tar_fd >= 0) {
                r = diff_read(tar_fd, compression, &limits, validate_entry, &a);
                if (r < 0) {
                        set_msg(errbuf, errlen, "%s/%s refused%s%s: %s", checkpoint_dir, ROOTFS_DIFF_TAR,
                                a.bad_path ? " after " : "", a.bad_path ? a.bad_path : "", strerror(-r));
                        goto finish;
                }
                r = check_space(a.root_fd, a.data_bytes);
                if (r < 0) {
                        set_msg(errbuf, errlen,
                                "%s/%s holds %" PRIu64 " bytes of file data, more than %s has free: %s",
                                checkpoint_dir, ROOTFS_DIFF_TAR, a.data_bytes, rootfs, strerror(-r));
                        goto finish;
                }
        }

        STRV_FOREACH (p, deleted) {
                int dir_fd;
                const char *name;
                r = open_parent(&a, *p, false, &dir_fd, &name);
                if (r == -ENOENT || r == -ENOTDIR) { /* nothing there to delete */
                        forget_parent(&a);
                        continue;
                }
                if (r >= 0)
                        r = remove_at(&a, dir_fd, name, 0);
                forget_parent(&a); /* a removed directory must not stay cached */
                if (r < 0) {
                        set_msg(errbuf, errlen, "deleting /%s in %s failed: %s", *p, rootfs,
                                strerror(-map_resolve_error(r)));
                        r = map_resolve_error(r);
                        goto finish;
                }
        }

        if (tar_fd >= 0) {
                a.buf = malloc(COPY_BUF_SIZE);
                if (!a.buf) {
                        r = -ENOMEM;
                        goto finish;
                }
                r = diff_read(tar_fd, compression, &limits, apply_entry, &a);
                if (r < 0) {
                        r = map_resolve_error(r);
                        set_msg(errbuf, errlen, "applying %s/%s to %s failed at %s: %s", checkpoint_dir,
                                ROOTFS_DIFF_TAR, rootfs, a.bad_path ? a.bad_path : "?", strerror(-r));
                        goto finish;
                }
                forget_parent(&a);
                for (size_t i = 0; i < a.n_dirs; i++) {
                        _cleanup_close_ int fd = -EBADF;
                        struct timespec ts[2] = {{.tv_sec = a.dirs[i].mtime}, {.tv_sec = a.dirs[i].mtime}};
                        r = open_dir_in_root(&a, a.dirs[i].path, false, &fd);
                        if (r >= 0 && futimens(fd, ts) < 0)
                                r = negative_errno();
                        if (r < 0) {
                                set_msg(errbuf, errlen, "setting the time of /%s in %s failed: %s",
                                        a.dirs[i].path, rootfs, strerror(-r));
                                goto finish;
                        }
                }
        }
        r = 0;
finish:
        safe_close(a.root_fd);
        apply_done(&a);
        return r;
}

int rootfs_diff_apply(const char *checkpoint_dir, const char *rootfs) {
        return rootfs_diff_apply_msg(checkpoint_dir, rootfs, NULL, 0);
}
