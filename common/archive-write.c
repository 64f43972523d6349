/* SPDX-License-Identifier: Apache-2.0 */
/* The tar writer: ustar headers, pax records where ustar does not reach,
 * sparse files with their holes kept. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

#include "archive-internal.h"

struct ArchiveWriter {
        int fd;
        uint64_t bytes;
        uint8_t *buf;
        bool finished;
        uint64_t data_bytes, max_data; /* file data of add_entry(), its limit (0: none) */
        bool over;                     /* past max_data: entries are only counted */
        ArchiveProgressFunc progress;
        void *progress_userdata;
};

int archive_writer_new(int out_fd, ArchiveWriter **ret) {
        ArchiveWriter *w = calloc(1, sizeof(ArchiveWriter));
        if (!w)
                return -ENOMEM;
        w->buf = malloc(COPY_BUF_SIZE);
        if (!w->buf) {
                free(w);
                return -ENOMEM;
        }
        w->fd = out_fd;
        *ret = w;
        return 0;
}

ArchiveWriter *archive_writer_free(ArchiveWriter *w) {
        if (!w)
                return NULL;
        free(w->buf);
        free(w);
        return NULL;
}

uint64_t archive_writer_bytes(const ArchiveWriter *w) {
        return w->bytes;
}

void archive_writer_set_max_data(ArchiveWriter *w, uint64_t max) {
        w->max_data = max;
}

uint64_t archive_writer_data_bytes(const ArchiveWriter *w) {
        return w->data_bytes;
}

void archive_writer_set_progress(ArchiveWriter *w, ArchiveProgressFunc fn, void *userdata) {
        w->progress = fn;
        w->progress_userdata = userdata;
}

static int writer_put(ArchiveWriter *w, const void *p, size_t n) {
        int r = write_all(w->fd, p, n);
        if (r < 0)
                return r;
        w->bytes += n;
        if (w->progress)
                w->progress(w->bytes, w->progress_userdata);
        return 0;
}

static int writer_pad(ArchiveWriter *w, uint64_t n) {
        static const uint8_t zero[ARCHIVE_BLOCK_SIZE];
        uint64_t p = pad_to_block(n);
        return p ? writer_put(w, zero, (size_t)p) : 0;
}

static void put_octal(char *f, size_t len, uint64_t v) {
        /* len - 1 digits, then NUL. Callers keep v in range. */
        f[len - 1] = 0;
        for (size_t i = len - 1; i > 0; i--) {
                f[i - 1] = (char)('0' + (v & 7));
                v >>= 3;
        }
}

static void header_finish(TarHeader *h) {
        const uint8_t *b = (const uint8_t *)h;
        uint64_t sum = 0;
        memset(h->chksum, ' ', sizeof(h->chksum));
        for (size_t i = 0; i < ARCHIVE_BLOCK_SIZE; i++)
                sum += b[i];
        /* Six digits, NUL, space: the traditional layout. */
        put_octal(h->chksum, 7, sum);
        h->chksum[7] = ' ';
}

/* Appends one "LEN key=value\n" record (LEN counts itself) to data. */
static int pax_record(char *data, size_t size, size_t *n, const char *key, const char *value) {
        size_t body = 1 + strlen(key) + 1 + strlen(value) + 1, len = body + 1;
        while (len != body + (size_t)snprintf(NULL, 0, "%zu", len))
                len = body + (size_t)snprintf(NULL, 0, "%zu", len);
        if (*n + len >= size)
                return -ENAMETOOLONG;
        *n += (size_t)snprintf(data + *n, size - *n, "%zu %s=%s\n", len, key, value);
        return 0;
}

typedef struct HeaderInfo {
        char type;
        mode_t mode; /* masked by the caller */
        uint64_t size;
        int64_t mtime;
        uint64_t uid, gid;
        const char *linkname; /* symlinks */
        bool owner_names;     /* uname/gname "root" (exports) */
        bool sparse;          /* size is the map and the data; real_size the file's */
        uint64_t real_size;
} HeaderInfo;

/* Largest value of the 7 octal digits of the uid/gid fields. */
#define USTAR_ID_MAX 07777777ULL

static int writer_pax(ArchiveWriter *w, const char *path, bool with_path, const HeaderInfo *hi,
                      bool with_size, bool with_link, bool with_ids) {
        char data[2 * ARCHIVE_PATH_MAX + 256];
        char num[32];
        size_t n = 0;
        int r = 0;

        if (hi->sparse) {
                /* The real name and size; the ustar header holds a stand-in. */
                r = pax_record(data, sizeof(data), &n, "GNU.sparse.major", "1");
                if (r >= 0)
                        r = pax_record(data, sizeof(data), &n, "GNU.sparse.minor", "0");
                if (r >= 0)
                        r = pax_record(data, sizeof(data), &n, "GNU.sparse.name", path);
                snprintf(num, sizeof(num), "%" PRIu64, hi->real_size);
                if (r >= 0)
                        r = pax_record(data, sizeof(data), &n, "GNU.sparse.realsize", num);
        } else if (with_path)
                r = pax_record(data, sizeof(data), &n, "path", path);
        if (r >= 0 && with_link)
                r = pax_record(data, sizeof(data), &n, "linkpath", hi->linkname);
        if (r >= 0 && with_size) {
                snprintf(num, sizeof(num), "%" PRIu64, hi->size);
                r = pax_record(data, sizeof(data), &n, "size", num);
        }
        if (r >= 0 && with_ids) {
                snprintf(num, sizeof(num), "%" PRIu64, hi->uid);
                r = pax_record(data, sizeof(data), &n, "uid", num);
                if (r >= 0) {
                        snprintf(num, sizeof(num), "%" PRIu64, hi->gid);
                        r = pax_record(data, sizeof(data), &n, "gid", num);
                }
        }
        if (r < 0)
                return r;

        TarHeader h = {};
        snprintf(h.name, sizeof(h.name), "PaxHeaders/%.80s", path);
        put_octal(h.mode, sizeof(h.mode), 0644);
        put_octal(h.uid, sizeof(h.uid), 0);
        put_octal(h.gid, sizeof(h.gid), 0);
        put_octal(h.size, sizeof(h.size), n);
        put_octal(h.mtime, sizeof(h.mtime), 0);
        h.typeflag = 'x';
        memcpy(h.magic, "ustar\0", 6);
        memcpy(h.version, "00", 2);
        header_finish(&h);
        r = writer_put(w, &h, sizeof(h));
        if (r < 0)
                return r;
        r = writer_put(w, data, n);
        if (r < 0)
                return r;
        return writer_pad(w, n);
}

static int writer_header_full(ArchiveWriter *w, const char *path, const HeaderInfo *hi) {
        char norm[ARCHIVE_PATH_MAX];
        char name[ARCHIVE_PATH_MAX + 1];
        int r;

        if (w->finished)
                return -ESTALE;
        r = archive_path_normalize(path, norm);
        if (r < 0)
                return r;
        if (r == 1)
                return -EINVAL;
        snprintf(name, sizeof(name), "%s%s", norm, hi->type == '5' ? "/" : "");
        if (strlen(name) > ARCHIVE_PATH_MAX - 1)
                return -ENAMETOOLONG;
        if (hi->linkname && (!*hi->linkname || strlen(hi->linkname) >= ARCHIVE_PATH_MAX))
                return -ENAMETOOLONG;

        bool long_name = strlen(name) > sizeof(((TarHeader *)NULL)->name);
        bool long_link = hi->linkname && strlen(hi->linkname) > sizeof(((TarHeader *)NULL)->linkname);
        bool big = hi->size > USTAR_SIZE_MAX;
        bool big_ids = hi->uid > USTAR_ID_MAX || hi->gid > USTAR_ID_MAX;
        if (long_name || long_link || big || big_ids || hi->sparse) {
                r = writer_pax(w, name, long_name, hi, big, long_link, big_ids);
                if (r < 0)
                        return r;
        }

        TarHeader h = {};
        if (hi->sparse) {
                /* What a reader without sparse support extracts: the map and
                 * the data, in a directory of its own, as GNU tar names it. */
                const char *base = strrchr(name, '/');
                snprintf(h.name, sizeof(h.name), "GNUSparseFile.0/%.83s", base ? base + 1 : name);
        } else
                memcpy(h.name, name, MIN(strlen(name), sizeof(h.name)));
        put_octal(h.mode, sizeof(h.mode), hi->mode);
        put_octal(h.uid, sizeof(h.uid), big_ids ? 0 : hi->uid);
        put_octal(h.gid, sizeof(h.gid), big_ids ? 0 : hi->gid);
        put_octal(h.size, sizeof(h.size), big ? 0 : hi->size);
        put_octal(h.mtime, sizeof(h.mtime),
                  hi->mtime > 0 && (uint64_t)hi->mtime <= USTAR_SIZE_MAX ? (uint64_t)hi->mtime : 0);
        h.typeflag = hi->type;
        if (hi->linkname)
                memcpy(h.linkname, hi->linkname, MIN(strlen(hi->linkname), sizeof(h.linkname)));
        memcpy(h.magic, "ustar\0", 6);
        memcpy(h.version, "00", 2);
        if (hi->owner_names) {
                memcpy(h.uname, "root", 4);
                memcpy(h.gname, "root", 4);
        }
        header_finish(&h);
        return writer_put(w, &h, sizeof(h));
}

/* Exports: permission bits only, owned by root. */
static int writer_header(ArchiveWriter *w, const char *path, char type, mode_t mode, uint64_t size,
                         int64_t mtime) {
        HeaderInfo hi = {
                .type = type, .mode = mode & 0777, .size = size, .mtime = mtime, .owner_names = true};
        return writer_header_full(w, path, &hi);
}

/* The data segments of the first size bytes of fd (SEEK_DATA/SEEK_HOLE).
 * Past ARCHIVE_SPARSE_MAX_SEGMENTS - 1 (one is kept for the end marker),
 * later data joins the last segment: the holes between are stored as zeros.
 * Without SEEK_DATA support the whole file is one segment. */
static int sparse_scan(int fd, uint64_t size, ArchiveSegment **ret, size_t *ret_n, uint64_t *ret_data) {
        _cleanup_free_ ArchiveSegment *segs = NULL;
        size_t n = 0, alloc = 0;
        uint64_t off = 0, data = 0;

        while (off < size) {
                off_t d = lseek(fd, (off_t)off, SEEK_DATA);
                if (d < 0) {
                        if (errno == ENXIO)
                                break; /* a hole up to the end */
                        if (errno != EINVAL && errno != EOPNOTSUPP)
                                return negative_errno();
                        n = 0, data = 0; /* no SEEK_DATA here: dense */
                        d = 0;
                }
                if ((uint64_t)d >= size)
                        break;
                off_t h = lseek(fd, d, SEEK_HOLE);
                if (h < 0) {
                        if (errno != EINVAL && errno != EOPNOTSUPP)
                                return negative_errno();
                        h = (off_t)size;
                }
                uint64_t end = MIN((uint64_t)h, size);
                if (end <= (uint64_t)d)
                        return -EIO; /* changed under us */
                if (n >= ARCHIVE_SPARSE_MAX_SEGMENTS - 1) {
                        data += end - (segs[n - 1].offset + segs[n - 1].length);
                        segs[n - 1].length = end - segs[n - 1].offset;
                } else {
                        if (GREEDY_REALLOC(segs, alloc, n + 1, 16) < 0)
                                return -ENOMEM;
                        segs[n++] = (ArchiveSegment){.offset = (uint64_t)d, .length = end - (uint64_t)d};
                        data += end - (uint64_t)d;
                }
                off = end;
        }
        *ret = TAKE_PTR(segs);
        *ret_n = n;
        *ret_data = data;
        return 0;
}

/* The map of a sparse entry as text, padded to a block; the segment
 * (size, 0) ends a map whose file ends in a hole. */
static int sparse_map_text(const ArchiveSegment *segs, size_t n, uint64_t size, char **ret,
                           size_t *ret_len) {
        bool tail = n == 0 || segs[n - 1].offset + segs[n - 1].length < size;
        size_t cap = 24 + (n + 1) * 42, len = 0;
        _cleanup_free_ char *t = malloc(cap + ARCHIVE_BLOCK_SIZE);
        if (!t)
                return -ENOMEM;
        len += (size_t)snprintf(t + len, cap - len, "%zu\n", n + tail);
        for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(t + len, cap - len, "%" PRIu64 "\n%" PRIu64 "\n", segs[i].offset,
                                        segs[i].length);
        if (tail)
                len += (size_t)snprintf(t + len, cap - len, "%" PRIu64 "\n0\n", size);
        size_t pad = (size_t)pad_to_block(len);
        memset(t + len, 0, pad);
        *ret_len = len + pad;
        *ret = TAKE_PTR(t);
        return 0;
}

/* The segments of fd, exactly as long as the map says. */
static int writer_copy_segments(ArchiveWriter *w, int fd, const ArchiveSegment *segs, size_t n) {
        for (size_t i = 0; i < n; i++) {
                uint64_t left = segs[i].length, off = segs[i].offset;
                while (left > 0) {
                        size_t want = (size_t)MIN(left, (uint64_t)COPY_BUF_SIZE);
                        ssize_t k = read_full_at(fd, w->buf, want, (off_t)off);
                        if (k < 0)
                                return (int)k;
                        if ((size_t)k < want)
                                return -EIO; /* shrunk */
                        int r = writer_put(w, w->buf, (size_t)k);
                        if (r < 0)
                                return r;
                        left -= (uint64_t)k;
                        off += (uint64_t)k;
                }
        }
        return 0;
}

/* Exactly size bytes of fd: a file that shrinks while we read it fails the
 * archive; growth beyond the header's size is not copied. */
static int writer_copy(ArchiveWriter *w, int fd, uint64_t size) {
        const ArchiveSegment all = {.offset = 0, .length = size};
        int r = writer_copy_segments(w, fd, &all, 1);
        if (r < 0)
                return r;
        return writer_pad(w, size);
}

static int writer_add_regular(ArchiveWriter *w, const char *path, HeaderInfo *hi, int fd) {
        _cleanup_free_ ArchiveSegment *segs = NULL;
        _cleanup_free_ char *map = NULL;
        size_t n = 0, map_len = 0;
        uint64_t data = 0;
        int r;

        r = sparse_scan(fd, hi->size, &segs, &n, &data);
        if (r < 0)
                return r;
        w->data_bytes += data;
        if (w->over || (w->max_data > 0 && w->data_bytes > w->max_data)) {
                w->over = true;
                return 0; /* counted only */
        }
        if (n == 1 && segs[0].offset == 0 && segs[0].length == hi->size) {
                r = writer_header_full(w, path, hi);
                if (r < 0)
                        return r;
                return writer_copy(w, fd, hi->size);
        }
        /* Holes: the map, then the data. */
        r = sparse_map_text(segs, n, hi->size, &map, &map_len);
        if (r < 0)
                return r;
        hi->sparse = true;
        hi->real_size = hi->size;
        hi->size = map_len + data;
        r = writer_header_full(w, path, hi);
        if (r < 0)
                return r;
        r = writer_put(w, map, map_len);
        if (r < 0)
                return r;
        r = writer_copy_segments(w, fd, segs, n);
        if (r < 0)
                return r;
        return writer_pad(w, data);
}

int archive_writer_add_entry(ArchiveWriter *w, const char *path, const struct stat *st, int fd,
                             const char *link_target) {
        HeaderInfo hi = {
                .mode = st->st_mode & 07777,
                .mtime = st->st_mtim.tv_sec,
                .uid = st->st_uid,
                .gid = st->st_gid,
        };

        if (S_ISDIR(st->st_mode))
                hi.type = '5';
        else if (S_ISLNK(st->st_mode)) {
                if (!link_target)
                        return -EINVAL;
                hi.type = '2';
                hi.linkname = link_target;
        } else if (S_ISREG(st->st_mode)) {
                if (fd < 0)
                        return -EBADF;
                hi.type = '0';
                hi.size = (uint64_t)st->st_size;
        } else
                return -ENOTSUP;
        if (hi.type == '0')
                return writer_add_regular(w, path, &hi, fd);
        if (w->over)
                return 0;
        return writer_header_full(w, path, &hi);
}

int archive_writer_add_directory(ArchiveWriter *w, const char *path, mode_t mode, int64_t mtime) {
        return writer_header(w, path, '5', mode, 0, mtime);
}

int archive_writer_add_file(ArchiveWriter *w, const char *path, int fd) {
        struct stat st;
        int r;

        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -ENOTSUP;
        uint64_t size = (uint64_t)st.st_size;
        r = writer_header(w, path, '0', st.st_mode, size, st.st_mtim.tv_sec);
        if (r < 0)
                return r;

        return writer_copy(w, fd, size);
}

int archive_walk_sorted(int dir_fd, const char *prefix, ArchiveWalkFn fn, void *userdata) {
        _cleanup_strv_free_ char **names = NULL;
        int r = dir_list_sorted(dir_fd, &names);
        if (r < 0)
                return r;
        STRV_FOREACH (name, names) {
                char path[ARCHIVE_PATH_MAX];
                struct stat st;
                if ((size_t)snprintf(path, sizeof(path), "%s%s%s", prefix, *prefix ? "/" : "", *name) >=
                    sizeof(path))
                        return -ENAMETOOLONG;
                if (fstatat(dir_fd, *name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return negative_errno();
                r = fn(dir_fd, *name, path, &st, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}

typedef struct AddTree {
        ArchiveWriter *w;
        unsigned depth;
} AddTree;

static int add_tree(ArchiveWriter *w, int dir_fd, const char *prefix, unsigned depth);

static int add_tree_entry(int dir_fd, const char *name, const char *path, const struct stat *st,
                          void *userdata) {
        const AddTree *a = userdata;
        int r;

        if (S_ISDIR(st->st_mode)) {
                _cleanup_close_ int sub =
                        openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0)
                        return negative_errno();
                r = archive_writer_add_directory(a->w, path, st->st_mode, st->st_mtim.tv_sec);
                if (r < 0)
                        return r;
                return add_tree(a->w, sub, path, a->depth + 1);
        }
        if (S_ISREG(st->st_mode)) {
                _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return negative_errno();
                return archive_writer_add_file(a->w, path, fd);
        }
        return -ENOTSUP; /* symlink, device, FIFO, socket */
}

/* NOLINTNEXTLINE(misc-no-recursion): depth bounded by ARCHIVE_DEPTH_MAX */
static int add_tree(ArchiveWriter *w, int dir_fd, const char *prefix, unsigned depth) {
        if (depth > ARCHIVE_DEPTH_MAX)
                return -ELOOP;
        AddTree a = {w, depth};
        return archive_walk_sorted(dir_fd, prefix, add_tree_entry, &a);
}

int archive_writer_add_tree(ArchiveWriter *w, int dir_fd, const char *prefix) {
        return add_tree(w, dir_fd, prefix ? prefix : "", 0);
}

int archive_writer_finish(ArchiveWriter *w) {
        static const uint8_t zero[2 * ARCHIVE_BLOCK_SIZE];
        if (w->over)
                return -EFBIG;
        if (w->finished)
                return 0;
        int r = writer_put(w, zero, sizeof(zero));
        if (r < 0)
                return r;
        w->finished = true;
        return 0;
}

/* The checkpoint directory open at dfd under prefix ("" for the top level),
 * with CRIU's stats-dump also beside checkpoint/ where checkpointctl reads it. */
static int add_checkpoint(ArchiveWriter *w, int dfd, const char *prefix) {
        int r = archive_writer_add_tree(w, dfd, prefix);
        if (r < 0)
                return r;
        if (faccessat(dfd, "stats-dump", F_OK, AT_SYMLINK_NOFOLLOW) >= 0)
                return 0;
        _cleanup_close_ int s = openat(dfd, "checkpoint/stats-dump", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (s < 0)
                return 0;
        char path[ARCHIVE_PATH_MAX];
        if ((size_t)snprintf(path, sizeof(path), "%s%sstats-dump", prefix, *prefix ? "/" : "") >=
            sizeof(path))
                return -ENAMETOOLONG;
        return archive_writer_add_file(w, path, s);
}

int archive_write_source(const ArchiveSource *src, int out_fd, ArchiveProgressFunc fn, void *userdata,
                         uint64_t *ret_bytes) {
        const char *const *names = src->member_names, *const *dirs = src->member_dirs;
        size_t n = src->n_members;
        if (names && !dirs)
                return -EINVAL;
        _cleanup_close_ int dfd = open(src->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        _cleanup_(archive_writer_freep) ArchiveWriter *w = NULL;
        int r = archive_writer_new(out_fd, &w);
        if (r < 0)
                return r;
        archive_writer_set_progress(w, fn, userdata);
        if (!names) /* one checkpoint */
                r = add_checkpoint(w, dfd, "");
        else {
                r = archive_writer_add_tree(w, dfd, NULL);
                if (r >= 0 && n > 0)
                        r = archive_writer_add_directory(w, ARCHIVE_POD_MEMBERS_DIR, 0700, 0);
        }
        for (size_t i = 0; r >= 0 && names && i < n; i++) {
                char prefix[ARCHIVE_PATH_MAX];
                if (isempty(names[i]) || strchr(names[i], '/') || names[i][0] == '.')
                        return -EINVAL;
                if ((size_t)snprintf(prefix, sizeof(prefix), ARCHIVE_POD_MEMBERS_DIR "/%s", names[i]) >=
                    sizeof(prefix))
                        return -ENAMETOOLONG;
                _cleanup_close_ int mfd = open(dirs[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (mfd < 0)
                        return negative_errno();
                struct stat st;
                if (fstat(mfd, &st) < 0)
                        return negative_errno();
                r = archive_writer_add_directory(w, prefix, st.st_mode, st.st_mtim.tv_sec);
                if (r >= 0)
                        r = add_checkpoint(w, mfd, prefix);
        }
        if (r >= 0)
                r = archive_writer_finish(w);
        if (r < 0)
                return r;
        *ret_bytes = archive_writer_bytes(w);
        return 0;
}
