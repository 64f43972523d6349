/* SPDX-License-Identifier: Apache-2.0 */
/* The tar reader (ustar, pax, GNU sparse 1.0: bounded and validated) and the
 * extractor built on it. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>

#include "archive-internal.h"

struct ArchiveReader {
        int fd;
        uint8_t *buf;
        size_t buf_start, buf_end;
        bool eof;
        uint64_t remaining; /* data bytes left in the current entry (sparse: after the map) */
        /* The current entry's data segments: one (0, size) for a plain file,
         * the validated map of a sparse one. */
        const ArchiveSegment *segs;
        size_t n_segs, idx;
        uint64_t seg_done; /* bytes of segs[idx] read */
        uint64_t pos;      /* logical position (archive_reader_read) */
        uint64_t size;     /* logical size */
        uint64_t in_bytes; /* read from fd */
        ArchiveProgressFunc progress;
        void *progress_userdata;
};

/* Reads exactly n bytes into dst (or discards them when dst is NULL). Returns
 * 0, or -EBADMSG at a premature end of input. */
static int reader_take(ArchiveReader *r, void *dst, size_t n) {
        uint8_t *d = dst;
        while (n > 0) {
                if (r->buf_start == r->buf_end) {
                        if (r->eof)
                                return -EBADMSG;
                        ssize_t k = read(r->fd, r->buf, COPY_BUF_SIZE);
                        if (k < 0) {
                                if (errno == EINTR)
                                        continue;
                                return negative_errno();
                        }
                        if (k == 0) {
                                r->eof = true;
                                return -EBADMSG;
                        }
                        r->buf_start = 0;
                        r->buf_end = (size_t)k;
                        r->in_bytes += (uint64_t)k;
                        if (r->progress)
                                r->progress(r->in_bytes, r->progress_userdata);
                }
                size_t c = MIN(n, r->buf_end - r->buf_start);
                if (d) {
                        memcpy(d, r->buf + r->buf_start, c);
                        d += c;
                }
                r->buf_start += c;
                n -= c;
        }
        return 0;
}

static int reader_skip(ArchiveReader *r, uint64_t n) {
        while (n > 0) {
                size_t c = (size_t)MIN(n, (uint64_t)SIZE_MAX);
                int k = reader_take(r, NULL, c);
                if (k < 0)
                        return k;
                n -= c;
        }
        return 0;
}

/* Skips the segments read completely (and empty ones). */
static void reader_next_segment(ArchiveReader *r) {
        while (r->idx < r->n_segs && r->seg_done == r->segs[r->idx].length) {
                r->idx++;
                r->seg_done = 0;
        }
}

static ssize_t reader_take_segment(ArchiveReader *r, void *buf, size_t n) {
        size_t c = (size_t)MIN((uint64_t)n, r->segs[r->idx].length - r->seg_done);
        c = MIN(c, (size_t)SSIZE_MAX);
        int k = reader_take(r, buf, c);
        if (k < 0)
                return k;
        r->remaining -= c;
        r->seg_done += c;
        r->pos += c;
        return (ssize_t)c;
}

ssize_t archive_reader_read(ArchiveReader *r, void *buf, size_t n) {
        if (r->pos >= r->size || n == 0)
                return 0;
        reader_next_segment(r);
        if (r->idx < r->n_segs && r->pos >= r->segs[r->idx].offset)
                return reader_take_segment(r, buf, n);
        /* A hole: zeros up to the next segment or the end. */
        uint64_t end = r->idx < r->n_segs ? r->segs[r->idx].offset : r->size;
        size_t c = (size_t)MIN((uint64_t)n, end - r->pos);
        c = MIN(c, (size_t)SSIZE_MAX);
        memset(buf, 0, c);
        r->pos += c;
        return (ssize_t)c;
}

ssize_t archive_reader_read_data(ArchiveReader *r, void *buf, size_t n, uint64_t *ret_offset) {
        reader_next_segment(r);
        if (r->idx >= r->n_segs || n == 0)
                return 0;
        *ret_offset = r->segs[r->idx].offset + r->seg_done;
        return reader_take_segment(r, buf, n);
}

int archive_reader_copy_to(ArchiveReader *r, int fd, void *buf, size_t size) {
        for (;;) {
                uint64_t off = 0;
                ssize_t k = archive_reader_read_data(r, buf, size, &off);
                if (k < 0)
                        return (int)k;
                if (k == 0)
                        break;
                if (off > (uint64_t)INT64_MAX)
                        return -EFBIG;
                int q = write_all_at(fd, buf, (size_t)k, (off_t)off);
                if (q < 0)
                        return q;
        }
        /* The holes between and after the data: never written. */
        if (r->size > (uint64_t)INT64_MAX)
                return -EFBIG;
        if (ftruncate(fd, (off_t)r->size) < 0)
                return negative_errno();
        return 0;
}

/* Parses an octal (or GNU base-256) numeric field. */
static int parse_number(const char *f, size_t len, uint64_t *ret) {
        uint64_t v = 0;

        if (len > 0 && ((unsigned char)f[0] & 0x80)) {
                if ((unsigned char)f[0] & 0x40)
                        return -EBADMSG; /* negative */
                for (size_t i = 0; i < len; i++) {
                        unsigned char b = (unsigned char)f[i];
                        if (i == 0)
                                b &= 0x7f;
                        if (v >> 56)
                                return -EBADMSG;
                        v = v << 8 | b;
                }
                *ret = v;
                return 0;
        }

        size_t i = 0;
        while (i < len && (f[i] == ' ' || f[i] == 0))
                i++;
        bool digits = false;
        for (; i < len && f[i] >= '0' && f[i] <= '7'; i++) {
                if (v >> 61)
                        return -EBADMSG;
                v = v << 3 | (uint64_t)(f[i] - '0');
                digits = true;
        }
        for (; i < len; i++)
                if (f[i] != ' ' && f[i] != 0)
                        return -EBADMSG;
        if (!digits)
                v = 0;
        *ret = v;
        return 0;
}

static bool block_is_zero(const uint8_t *b) {
        for (size_t i = 0; i < ARCHIVE_BLOCK_SIZE; i++)
                if (b[i])
                        return false;
        return true;
}

static bool header_checksum_ok(const TarHeader *h) {
        const uint8_t *b = (const uint8_t *)h;
        uint64_t want;
        uint64_t usum = 0;
        int64_t ssum = 0;

        if (parse_number(h->chksum, sizeof(h->chksum), &want) < 0)
                return false;
        for (size_t i = 0; i < ARCHIVE_BLOCK_SIZE; i++) {
                bool in_chksum = i >= offsetof(TarHeader, chksum) && i < offsetof(TarHeader, chksum) + 8;
                uint8_t c = in_chksum ? ' ' : b[i];
                usum += c;
                ssum += (int8_t)c;
        }
        return usum == want || (uint64_t)ssum == want;
}

/* Copies a NUL-padded field into a NUL-terminated string. */
static void field_string(char *dst, const char *f, size_t len) {
        size_t n = strnlen(f, len);
        memcpy(dst, f, n);
        dst[n] = 0;
}

/* What extended headers ('x', 'L', 'K') say about the next entry. */
typedef struct ExtHeader {
        char *path; /* ARCHIVE_PATH_MAX bytes each */
        char *linkpath;
        uint64_t size, uid, gid;
        bool has_path, has_linkpath, has_size, has_uid, has_gid;
        /* GNU sparse files (pax format 1.0: GNU.sparse.major=1, minor=0) */
        uint64_t sparse_major, sparse_minor, sparse_realsize;
        bool has_sparse_major, has_sparse_minor, has_sparse_realsize, has_sparse_name, has_sparse_other;
} ExtHeader;

static bool ext_sparse(const ExtHeader *x) {
        return x->has_sparse_major || x->has_sparse_minor || x->has_sparse_realsize || x->has_sparse_name ||
               x->has_sparse_other;
}

static bool ext_pending(const ExtHeader *x) {
        return x->has_path || x->has_linkpath || x->has_size || x->has_uid || x->has_gid || ext_sparse(x);
}

static void ext_reset(ExtHeader *x) {
        x->has_path = x->has_linkpath = x->has_size = x->has_uid = x->has_gid = false;
        x->has_sparse_major = x->has_sparse_minor = x->has_sparse_realsize = x->has_sparse_name =
                x->has_sparse_other = false;
}

static int pax_decimal(const char *val, size_t vlen, uint64_t *ret) {
        uint64_t v = 0;
        if (vlen == 0 || vlen > 20)
                return -EBADMSG;
        for (size_t k = 0; k < vlen; k++) {
                if (val[k] < '0' || val[k] > '9')
                        return -EBADMSG;
                if (v > (UINT64_MAX - 9) / 10)
                        return -EBADMSG;
                v = v * 10 + (uint64_t)(val[k] - '0');
        }
        *ret = v;
        return 0;
}

static int pax_string(char *dst, const char *val, size_t vlen) {
        if (vlen >= ARCHIVE_PATH_MAX || memchr(val, 0, vlen))
                return -ENAMETOOLONG;
        memcpy(dst, val, vlen);
        dst[vlen] = 0;
        return 0;
}

/* The pax keys with a decimal value: where it goes, and the flag that says
 * the header set it. */
static const struct {
        const char *key;
        size_t value, has;
} pax_decimals[] = {
        {"GNU.sparse.major", offsetof(ExtHeader, sparse_major), offsetof(ExtHeader, has_sparse_major)},
        {"GNU.sparse.minor", offsetof(ExtHeader, sparse_minor), offsetof(ExtHeader, has_sparse_minor)},
        {"GNU.sparse.realsize", offsetof(ExtHeader, sparse_realsize),
         offsetof(ExtHeader, has_sparse_realsize)},
        {"size", offsetof(ExtHeader, size), offsetof(ExtHeader, has_size)},
        {"uid", offsetof(ExtHeader, uid), offsetof(ExtHeader, has_uid)},
        {"gid", offsetof(ExtHeader, gid), offsetof(ExtHeader, has_gid)},
};

/* Applies the records of a pax extended header ("LEN key=value\n"). */
static int pax_parse(const char *data, size_t size, ExtHeader *x) {
        size_t off = 0;
        int r;
        while (off < size) {
                size_t len = 0, i = off;
                while (i < size && data[i] >= '0' && data[i] <= '9') {
                        len = len * 10 + (size_t)(data[i] - '0');
                        if (len > size)
                                return -EBADMSG;
                        i++;
                }
                if (i == off || i >= size || data[i] != ' ' || len == 0 || len > size - off)
                        return -EBADMSG;
                const char *rec = data + i + 1, *end = data + off + len;
                if (rec >= end || end[-1] != '\n')
                        return -EBADMSG;
                const char *eq = memchr(rec, '=', (size_t)(end - rec));
                if (!eq)
                        return -EBADMSG;
                size_t klen = (size_t)(eq - rec), vlen = (size_t)(end - 1 - (eq + 1));
                const char *val = eq + 1;
#define KEY_IS(k) (klen == strlen(k) && memcmp(rec, k, klen) == 0)
                size_t d = 0;
                while (d < ELEMENTSOF(pax_decimals) && !KEY_IS(pax_decimals[d].key))
                        d++;
                if (d < ELEMENTSOF(pax_decimals)) {
                        r = pax_decimal(val, vlen, (uint64_t *)((uint8_t *)x + pax_decimals[d].value));
                        *(bool *)((uint8_t *)x + pax_decimals[d].has) = true;
                } else if (KEY_IS("path")) {
                        /* A sparse file's real name is GNU.sparse.name, whatever the order. */
                        r = x->has_sparse_name ? 0 : pax_string(x->path, val, vlen);
                        x->has_path = true;
                } else if (KEY_IS("GNU.sparse.name")) {
                        r = pax_string(x->path, val, vlen);
                        x->has_path = x->has_sparse_name = true;
                } else if (klen > 11 && memcmp(rec, "GNU.sparse.", 11) == 0) {
                        /* The 0.0 and 0.1 formats (map in the header): not supported. */
                        x->has_sparse_other = true;
                        r = 0;
                } else if (KEY_IS("linkpath")) {
                        r = pax_string(x->linkpath, val, vlen);
                        x->has_linkpath = true;
                } else
                        r = 0;
#undef KEY_IS
                if (r < 0)
                        return r;
                off += len;
        }
        return 0;
}

/* Reads the map at the start of a pax 1.0 sparse file's data: decimal
 * numbers, each ended by '\n' (the count, then offset and length of each
 * segment), padded to a block. Strict: the segments must be in order, not
 * overlap, end within real_size, and their lengths must add up to exactly
 * the data that follows the map in the phys bytes of the entry. */
static int read_sparse_map(ArchiveReader *rd, uint64_t phys, uint64_t real_size, ArchiveSegment **segs,
                           size_t *alloc, size_t *ret_n, uint64_t *ret_map_bytes) {
        char blk[ARCHIVE_BLOCK_SIZE] = {};
        size_t at = sizeof(blk); /* next unread byte of blk */
        uint64_t map_bytes = 0, count = 0, data = 0, prev_end = 0;
        size_t n = 0;
        int r;

        /* 1 + 2 * count numbers. */
        for (uint64_t i = 0; i == 0 || i < 1 + 2 * count; i++) {
                uint64_t v = 0;
                unsigned digits = 0;
                for (;;) {
                        if (at == sizeof(blk)) {
                                if (phys - map_bytes < ARCHIVE_BLOCK_SIZE)
                                        return -EBADMSG;
                                r = reader_take(rd, blk, sizeof(blk));
                                if (r < 0)
                                        return r;
                                map_bytes += ARCHIVE_BLOCK_SIZE;
                                at = 0;
                        }
                        char ch = blk[at++];
                        if (ch == '\n')
                                break;
                        if (ch < '0' || ch > '9' || ++digits > 20 || v > (UINT64_MAX - 9) / 10)
                                return -EBADMSG;
                        v = v * 10 + (uint64_t)(ch - '0');
                }
                if (digits == 0)
                        return -EBADMSG;
                if (i == 0) {
                        if (v > ARCHIVE_SPARSE_MAX_SEGMENTS)
                                return -E2BIG;
                        count = v;
                        continue;
                }
                if (i % 2 == 1) {
                        if (GREEDY_REALLOC(*segs, *alloc, n + 1, 64) < 0)
                                return -ENOMEM;
                        (*segs)[n].offset = v;
                        continue;
                }
                ArchiveSegment *s = &(*segs)[n++];
                s->length = v;
                if (s->offset < prev_end || s->offset > real_size || s->length > real_size - s->offset)
                        return -EBADMSG;
                prev_end = s->offset + s->length;
                data += s->length; /* <= real_size: no overflow */
        }
        if (data != phys - map_bytes)
                return -EBADMSG;
        *ret_n = n;
        *ret_map_bytes = map_bytes;
        return 0;
}

int archive_read(int in_fd, const ArchiveLimits *limits, ArchiveEntryFunc f, void *userdata) {
        uint64_t max_entries =
                limits && limits->max_entries ? limits->max_entries : ARCHIVE_DEFAULT_MAX_ENTRIES;
        uint64_t max_total = limits && limits->max_total_bytes ? limits->max_total_bytes : UINT64_MAX;
        uint64_t n_entries = 0, n_meta = 0, total = 0;
        _cleanup_free_ uint8_t *buf = malloc(COPY_BUF_SIZE);
        _cleanup_free_ char *path = malloc(ARCHIVE_PATH_MAX), *norm = malloc(ARCHIVE_PATH_MAX);
        _cleanup_free_ char *ext = NULL, *linkpath = malloc(ARCHIVE_PATH_MAX);
        _cleanup_free_ ArchiveSegment *segs = NULL;
        size_t segs_alloc = 0;
        bool allow_symlinks = limits && limits->allow_symlinks;
        bool allow_hardlinks = limits && limits->allow_hardlinks;
        int r;

        if (!buf || !path || !norm || !linkpath)
                return -ENOMEM;
        ExtHeader x = {.path = path, .linkpath = linkpath};
        ArchiveReader rd = {.fd = in_fd,
                            .buf = buf,
                            .progress = limits ? limits->progress : NULL,
                            .progress_userdata = limits ? limits->progress_userdata : NULL};

        for (;;) {
                TarHeader h;
                r = reader_take(&rd, &h, sizeof(h));
                if (r < 0)
                        return r; /* no end-of-archive marker: truncated */
                if (block_is_zero((const uint8_t *)&h)) {
                        if (ext_pending(&x))
                                return -EBADMSG; /* extended header without its entry */
                        /* End of archive. A second zero block should follow;
                         * accept its absence as GNU tar does. */
                        break;
                }
                if (!header_checksum_ok(&h))
                        return -EBADMSG;

                uint64_t size;
                r = parse_number(h.size, sizeof(h.size), &size);
                if (r < 0)
                        return r;
                char type = h.typeflag;

                if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
                        /* Metadata for the next entry (x, L, K) or for all ('g', ignored). */
                        if (size > ARCHIVE_PAX_MAX)
                                return -EBADMSG;
                        free(ext);
                        ext = malloc(size + 1);
                        if (!ext)
                                return -ENOMEM;
                        r = reader_take(&rd, ext, size);
                        if (r < 0)
                                return r;
                        ext[size] = 0;
                        r = reader_skip(&rd, pad_to_block(size));
                        if (r < 0)
                                return r;
                        if (type == 'x') {
                                r = pax_parse(ext, size, &x);
                                if (r < 0)
                                        return r;
                        } else if (type == 'L' || type == 'K') {
                                size_t l = strnlen(ext, size);
                                if (l == 0 || l >= ARCHIVE_PATH_MAX)
                                        return -ENAMETOOLONG;
                                if (type == 'K' || !x.has_sparse_name) {
                                        memcpy(type == 'L' ? path : linkpath, ext, l);
                                        (type == 'L' ? path : linkpath)[l] = 0;
                                }
                                if (type == 'L')
                                        x.has_path = true;
                                else
                                        x.has_linkpath = true;
                        }
                        /* Bound the number of metadata headers too. */
                        if (++n_meta > max_entries)
                                return -E2BIG;
                        continue;
                }

                if (!x.has_path) {
                        char name[101], prefix[156];
                        field_string(name, h.name, sizeof(h.name));
                        if (memcmp(h.magic, "ustar\0", 6) == 0 && h.prefix[0]) {
                                field_string(prefix, h.prefix, sizeof(h.prefix));
                                snprintf(path, ARCHIVE_PATH_MAX, "%s/%s", prefix, name);
                        } else
                                memcpy(path, name, strlen(name) + 1);
                }
                if (x.has_size)
                        size = x.size;

                ArchiveEntry e = {.size = size};
                uint64_t mode, mtime, uid, gid;
                if (parse_number(h.mode, sizeof(h.mode), &mode) < 0 ||
                    parse_number(h.mtime, sizeof(h.mtime), &mtime) < 0 ||
                    parse_number(h.uid, sizeof(h.uid), &uid) < 0 ||
                    parse_number(h.gid, sizeof(h.gid), &gid) < 0)
                        return -EBADMSG;
                if (x.has_uid)
                        uid = x.uid;
                if (x.has_gid)
                        gid = x.gid;
                if (uid >= UINT32_MAX || gid >= UINT32_MAX) /* (uid_t)-1 means "unchanged" to chown() */
                        return -EBADMSG;
                e.mode = (mode_t)(mode & 07777);
                e.uid = (uid_t)uid;
                e.gid = (gid_t)gid;
                e.mtime = (int64_t)MIN(mtime, (uint64_t)INT64_MAX);

                size_t plen = strlen(path);
                switch (type) {
                case '0':
                case '\0':
                case '7': /* contiguous file: a regular file */
                        /* Old tars mark directories with a trailing slash. */
                        if (plen > 0 && path[plen - 1] == '/' && size == 0)
                                e.type = ARCHIVE_ENTRY_DIRECTORY;
                        else
                                e.type = ARCHIVE_ENTRY_FILE;
                        break;
                case '5':
                        e.type = ARCHIVE_ENTRY_DIRECTORY;
                        size = e.size = 0; /* header only: no data follows, whatever size says */
                        break;
                case '2':   /* symbolic link */
                case '1': { /* hard link */
                        bool hard = type == '1';
                        if (!(hard ? allow_hardlinks : allow_symlinks))
                                return -ENOTSUP;
                        e.type = hard ? ARCHIVE_ENTRY_HARDLINK : ARCHIVE_ENTRY_SYMLINK;
                        size = e.size = 0; /* header only */
                        if (!x.has_linkpath)
                                field_string(linkpath, h.linkname, sizeof(h.linkname));
                        if (hard) {
                                /* The target is another member: the same rules as paths. */
                                char t[ARCHIVE_PATH_MAX];
                                r = archive_path_normalize(linkpath, t);
                                if (r != 0)
                                        return r < 0 ? r : -EINVAL;
                                memcpy(linkpath, t, strlen(t) + 1);
                        } else if (!*linkpath)
                                return -EINVAL;
                        e.link_target = linkpath;
                        break;
                }
                default:
                        /* Devices, FIFOs, GNU specials. */
                        return -ENOTSUP;
                }

                bool sparse = ext_sparse(&x);
                if (sparse) {
                        if (x.has_sparse_other || !x.has_sparse_major || !x.has_sparse_minor ||
                            x.sparse_major != 1 || x.sparse_minor != 0)
                                return -ENOTSUP; /* another sparse format */
                        if (e.type != ARCHIVE_ENTRY_FILE || !x.has_sparse_name || !x.has_sparse_realsize ||
                            x.sparse_realsize > (uint64_t)INT64_MAX)
                                return -EBADMSG;
                }

                r = archive_path_normalize(path, norm);
                if (r < 0)
                        return r;
                if (r == 1 && e.type != ARCHIVE_ENTRY_DIRECTORY)
                        return -EINVAL; /* a file named "." */
                if (++n_entries > max_entries)
                        return -E2BIG;

                /* size: the bytes the entry holds in the archive. */
                ArchiveSegment whole = {.offset = 0, .length = size};
                rd.segs = &whole;
                rd.n_segs = size > 0 ? 1 : 0;
                rd.remaining = size;
                if (sparse) {
                        uint64_t map_bytes = 0;
                        int k = read_sparse_map(&rd, size, x.sparse_realsize, &segs, &segs_alloc, &rd.n_segs,
                                                &map_bytes);
                        if (k < 0)
                                return k;
                        rd.segs = segs;
                        rd.remaining = size - map_bytes;
                        e.size = x.sparse_realsize;
                        e.sparse = true;
                }
                e.data_bytes = rd.remaining;
                rd.idx = 0;
                rd.seg_done = rd.pos = 0;
                rd.size = e.size;
                /* What is stored, not the apparent size of sparse files. */
                if (e.data_bytes > max_total - total)
                        return -EFBIG;
                total += e.data_bytes;
                ext_reset(&x);

                if (r == 0 && f) { /* r == 1: the archive root itself, nothing to do */
                        e.path = norm;
                        r = f(&rd, &e, userdata);
                        if (r < 0)
                                return r;
                }
                r = reader_skip(&rd, rd.remaining + pad_to_block(size));
                if (r < 0)
                        return r;
                rd.remaining = 0;
                rd.segs = NULL;
                rd.n_segs = 0;
        }
        return (int)MIN(n_entries, (uint64_t)INT32_MAX);
}

/* ---- extraction ---- */

typedef struct ExtractContext {
        int dest_fd;
        bool sync;
        uint8_t *buf;
} ExtractContext;

/* Opens (creating if needed) the directory holding path's last component,
 * walking from dest_fd without following symlinks. On success *ret_name
 * points at the last component inside path. */
static int open_parent(int dest_fd, char *path, bool create, int *ret_fd, const char **ret_name) {
        _cleanup_close_ int cur = fcntl(dest_fd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return negative_errno();

        char *p = path;
        unsigned depth = 0;
        for (;;) {
                char *slash = strchr(p, '/');
                if (!slash)
                        break;
                *slash = 0;
                if (++depth > ARCHIVE_DEPTH_MAX) {
                        *slash = '/';
                        return -ELOOP;
                }
                if (create && mkdirat(cur, p, 0755) < 0 && errno != EEXIST) {
                        int r = negative_errno();
                        *slash = '/';
                        return r;
                }
                int next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                int r = next < 0 ? negative_errno() : 0;
                *slash = '/';
                if (r < 0)
                        return r == -ELOOP || r == -ENOTDIR ? -EPERM : r;
                safe_close(cur);
                cur = next;
                p = slash + 1;
        }
        *ret_fd = TAKE_FD(cur);
        *ret_name = p;
        return 0;
}

static int extract_entry(ArchiveReader *rd, const ArchiveEntry *e, void *userdata) {
        if (e->type == ARCHIVE_ENTRY_SYMLINK || e->type == ARCHIVE_ENTRY_HARDLINK)
                return -ENOTSUP; /* checkpoint imports hold no links */
        ExtractContext *c = userdata;
        _cleanup_free_ char *path = strdup(e->path);
        _cleanup_close_ int dir_fd = -EBADF;
        const char *name = NULL;
        int r;

        if (!path)
                return -ENOMEM;
        r = open_parent(c->dest_fd, path, true, &dir_fd, &name);
        if (r < 0)
                return r;

        if (e->type == ARCHIVE_ENTRY_DIRECTORY) {
                mode_t mode = (e->mode & 0755) | 0700;
                if (mkdirat(dir_fd, name, mode) < 0) {
                        if (errno != EEXIST)
                                return negative_errno();
                        /* Created implicitly before, or listed twice: fine,
                         * if it really is a directory and not a link. */
                        struct stat st;
                        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                                return negative_errno();
                        if (!S_ISDIR(st.st_mode))
                                return -EEXIST;
                }
                return 0;
        }

        mode_t mode = e->mode & 0755;
        _cleanup_close_ int fd =
                openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode | 0600);
        if (fd < 0)
                return negative_errno();
        r = archive_reader_copy_to(rd, fd, c->buf, COPY_BUF_SIZE);
        if (r < 0)
                return r;
        if (fchmod(fd, mode) < 0)
                return negative_errno();
        if (c->sync && fsync(fd) < 0)
                return negative_errno();
        return 0;
}

/* NOLINTNEXTLINE(misc-no-recursion): depth bounded by ARCHIVE_DEPTH_MAX */
static int sync_tree(int dir_fd, unsigned depth) {
        if (depth > ARCHIVE_DEPTH_MAX)
                return -ELOOP;
        DIR *d;
        int r = dir_open_fd(dir_fd, &d);
        if (r < 0)
                return r;
        struct dirent *de;
        while ((de = readdir_no_dot(d))) {
                if (de->d_type == DT_UNKNOWN) {
                        struct stat st;
                        if (fstatat(dir_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                                r = negative_errno();
                                break;
                        }
                        if (!S_ISDIR(st.st_mode))
                                continue;
                } else if (de->d_type != DT_DIR)
                        continue;
                int sub = openat(dir_fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (sub < 0) {
                        r = negative_errno();
                        break;
                }
                r = sync_tree(sub, depth + 1);
                safe_close(sub);
                if (r < 0)
                        break;
        }
        closedir(d);
        if (r >= 0 && fsync(dir_fd) < 0)
                r = negative_errno();
        return r;
}

int archive_extract(int in_fd, int dest_fd, const ArchiveLimits *limits, bool sync) {
        _cleanup_free_ uint8_t *buf = malloc(COPY_BUF_SIZE);
        if (!buf)
                return -ENOMEM;
        ExtractContext c = {.dest_fd = dest_fd, .sync = sync, .buf = buf};
        int r = archive_read(in_fd, limits, extract_entry, &c);
        if (r < 0)
                return r;
        if (sync) {
                int k = sync_tree(dest_fd, 0);
                if (k < 0)
                        return k;
        }
        return r;
}
