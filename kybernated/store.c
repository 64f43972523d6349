/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "crc32c.h"
#include "sha256.h"
#include "store.h"
#include "util.h"

int store_new_id(char ret[static 33]) {
        uint8_t b[16];
        size_t got = 0;
        while (got < sizeof(b)) {
                ssize_t k = getrandom(b + got, sizeof(b) - got, 0);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                got += (size_t)k;
        }
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(ret + 2 * i, 3, "%02x", b[i]);
        return 0;
}

int store_boot_id(char ret[static 40]) {
        _cleanup_free_ char *text = NULL;
        int r = read_full_file("/proc/sys/kernel/random/boot_id", 128, &text, NULL);
        if (r < 0)
                return r;
        size_t l = strcspn(text, "\n");
        if (l == 0 || l >= 40)
                return -EBADMSG;
        memcpy(ret, text, l);
        ret[l] = 0;
        return 0;
}

int store_fsync_path(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return fsync(fd) < 0 ? negative_errno() : 0;
}

typedef struct FileList {
        char **paths;
        size_t n, alloc;
} FileList;

static void file_list_done(FileList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->paths[i]);
        free(l->paths);
}

/* Collects relative paths of regular files below fd; fsyncs directories
 * when asked (their entries must be durable too). */
/* NOLINTNEXTLINE(misc-no-recursion): depth bounded (64) */
static int collect(int fd, const char *rel, dev_t dev, bool sync, FileList *l, int depth) {
        if (depth > 64)
                return -ELOOP;
        DIR *d;
        int r = dir_open_fd(fd, &d);
        if (r < 0)
                return r;
        struct dirent *de;
        while ((de = readdir_no_dot(d))) {
                if (depth == 0 && streq(de->d_name, STORE_METADATA_FILE))
                        continue;
                struct stat st;
                if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        r = negative_errno();
                        break;
                }
                if (st.st_dev != dev) {
                        r = -EXDEV;
                        break;
                }
                char *p;
                if (asprintf(&p, "%s%s%s", rel, *rel ? "/" : "", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_free_ char *pp = p;
                        _cleanup_close_ int sub =
                                openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0) {
                                r = negative_errno();
                                break;
                        }
                        r = collect(sub, pp, dev, sync, l, depth + 1);
                        if (r < 0)
                                break;
                } else if (S_ISREG(st.st_mode)) {
                        if (GREEDY_REALLOC(l->paths, l->alloc, l->n + 1, 64) < 0) {
                                free(p);
                                r = -ENOMEM;
                                break;
                        }
                        l->paths[l->n++] = p;
                } else {
                        /* CRIU and runc write only regular files; anything else
                         * (a symlink to a host file, a device) is refused. */
                        free(p);
                        r = -EINVAL;
                        break;
                }
        }
        if (r >= 0 && sync && fsync(fd) < 0)
                r = negative_errno();
        closedir(d);
        return r;
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The top directory of a checkpoint and its device, for collect(). */
static int open_tree(const char *dir, dev_t *ret_dev) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        *ret_dev = st.st_dev;
        return TAKE_FD(fd);
}

int store_sync_tree(const char *dir) {
        dev_t dev;
        _cleanup_close_ int fd = open_tree(dir, &dev);
        if (fd < 0)
                return fd;
        FileList l = {}, again = {};
        int r = collect(fd, "", dev, false, &l, 0);
        /* Write-back of every file is started first, so their blocks are
         * allocated in one journal transaction and the first fsync commits it
         * for all: the fsyncs that follow mostly wait for data already on its
         * way, instead of each committing a transaction of its own. */
        for (size_t i = 0; r >= 0 && i < l.n; i++) {
                _cleanup_close_ int f = openat(fd, l.paths[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (f >= 0)
                        (void)sync_file_range(f, 0, 0, SYNC_FILE_RANGE_WRITE);
        }
        for (size_t i = 0; r >= 0 && i < l.n; i++) {
                _cleanup_close_ int f = openat(fd, l.paths[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (f < 0 || fsync(f) < 0)
                        r = negative_errno();
        }
        /* Then the directories (collect fsyncs each one it walks). */
        if (r >= 0)
                r = collect(fd, "", dev, true, &again, 0);
        file_list_done(&l);
        file_list_done(&again);
        return r;
}

enum { SUM_SHA256, SUM_CRC32C_SHA256 };
#define BLOCK ((size_t)1 << 20)
#define BUF_BLOCKS ((size_t)4)
#define PARALLEL_MIN_BLOCKS 64

static void put_le(Sha256 *h, uint64_t v, size_t n) {
        uint8_t le[8];
        for (size_t k = 0; k < n; k++)
                le[k] = (uint8_t)(v >> (8 * k));
        sha256_update(h, le, n);
}

static int hash_file_sha256(Sha256 *h, int fd, uint8_t *buf, uint64_t *ret_size) {
        uint64_t got = 0;
        ssize_t k;
        do {
                k = read_full_at(fd, buf, BUF_BLOCKS * BLOCK, -1);
                if (k < 0)
                        return (int)k;
                sha256_update(h, buf, (size_t)k);
                got += (uint64_t)k;
        } while ((size_t)k == BUF_BLOCKS * BLOCK);
        *ret_size = got;
        return 0;
}

/* Blocks [first, end) of a file of size bytes: their CRC-32Cs into crcs[first..]. */
typedef struct BlockRange {
        int fd;
        uint64_t first, end, size;
        uint32_t *crcs;
        uint8_t *buf; /* BUF_BLOCKS * BLOCK bytes */
        int r;
} BlockRange;

static void *crc_range(void *userdata) {
        BlockRange *g = userdata;
        uint64_t stop = MIN(g->end * BLOCK, g->size);
        for (uint64_t b = g->first; b < g->end; b += BUF_BLOCKS) {
                size_t want = (size_t)MIN((uint64_t)BUF_BLOCKS * BLOCK, stop - b * BLOCK);
                ssize_t k = read_full_at(g->fd, g->buf, want, (off_t)(b * BLOCK));
                if (k != (ssize_t)want) {
                        g->r = k < 0 ? (int)k : -EIO; /* shrank while we read it */
                        return NULL;
                }
                size_t i = 0;
                uint32_t *out = g->crcs + b;
                for (; i + BUF_BLOCKS * BLOCK <= want; i += BUF_BLOCKS * BLOCK, out += 4) {
                        const uint8_t *p[4] = {g->buf + i, g->buf + i + BLOCK, g->buf + i + 2 * BLOCK,
                                               g->buf + i + 3 * BLOCK};
                        crc32c_x4(p, BLOCK, out);
                }
                for (; i < want; i += BLOCK)
                        *out++ = crc32c(0, g->buf + i, MIN(BLOCK, want - i));
        }
        g->r = 0;
        return NULL;
}

static unsigned usable_cpus(void) {
        cpu_set_t set;
        return sched_getaffinity(0, sizeof(set), &set) < 0 ? 1 : (unsigned)CPU_COUNT(&set);
}

/* The CRC-32C of every MiB of the file, in order, into h. Big files are split
 * between two threads (reading from the page cache and the CRCs both scale):
 * this is on the path of every restore. */
static int hash_file_blocks(Sha256 *h, int fd, uint64_t size, uint8_t *buf) {
        uint64_t n = (size + BLOCK - 1) / BLOCK;
        _cleanup_free_ uint32_t *crcs = malloc(MAX(n, 1u) * sizeof(uint32_t));
        _cleanup_free_ uint8_t *buf2 = NULL;
        if (!crcs)
                return -ENOMEM;
        BlockRange g[2] = {{.fd = fd, .first = 0, .end = n, .size = size, .crcs = crcs, .buf = buf}};
        pthread_t helper;
        bool two = false;
        if (n >= PARALLEL_MIN_BLOCKS && usable_cpus() > 1 && (buf2 = malloc(BUF_BLOCKS * BLOCK))) {
                uint64_t half = n / 2 / BUF_BLOCKS * BUF_BLOCKS;
                g[1] = (BlockRange){
                        .fd = fd, .first = half, .end = n, .size = size, .crcs = crcs, .buf = buf2};
                g[0].end = half;
                two = pthread_create(&helper, NULL, crc_range, &g[1]) == 0;
                if (!two)
                        g[0].end = n;
        }
        crc_range(&g[0]);
        if (two)
                (void)pthread_join(helper, NULL);
        if (g[0].r < 0 || (two && g[1].r < 0))
                return g[0].r < 0 ? g[0].r : g[1].r;
        uint8_t extra;
        if (pread(fd, &extra, 1, (off_t)size) != 0)
                return -EIO; /* grew while we read it */
        for (uint64_t i = 0; i < n; i++)
                /* NOLINTNEXTLINE(clang-analyzer-core.CallAndMessage): crc_range() set all n */
                put_le(h, crcs[i], 4);
        return 0;
}

int store_checksum(const char *dir, const char *like, bool sync, uint64_t *ret_size,
                   char ret_checksum[static STORE_CHECKSUM_MAX]) {
        int kind;
        if (!like || startswith(like, "crc32c+sha256:"))
                kind = SUM_CRC32C_SHA256;
        else if (startswith(like, "sha256:"))
                kind = SUM_SHA256;
        else
                return -EOPNOTSUPP;

        dev_t dev;
        _cleanup_close_ int fd = open_tree(dir, &dev);
        if (fd < 0)
                return fd;

        FileList l = {};
        _cleanup_free_ uint8_t *buf = NULL;
        int r = collect(fd, "", dev, sync, &l, 0);
        if (r < 0)
                goto finish;
        if (l.n > 0) /* an empty directory has no list: qsort(NULL, ...) is undefined */
                qsort(l.paths, l.n, sizeof(char *), strcmp_ptr);

        Sha256 h;
        sha256_init(&h);
        uint64_t total = 0;
        buf = malloc(BUF_BLOCKS * BLOCK);
        if (!buf) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < l.n; i++) {
                _cleanup_close_ int f = openat(fd, l.paths[i], O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
                if (f < 0) {
                        r = negative_errno();
                        goto finish;
                }
                struct stat fst;
                if (fstat(f, &fst) < 0) {
                        r = negative_errno();
                        goto finish;
                }
                sha256_update(&h, l.paths[i], strlen(l.paths[i]) + 1);
                put_le(&h, (uint64_t)fst.st_size, 8);
                uint64_t got = (uint64_t)fst.st_size;
                if (kind == SUM_SHA256)
                        r = hash_file_sha256(&h, f, buf, &got);
                else
                        r = hash_file_blocks(&h, f, got, buf);
                if (r < 0)
                        goto finish;
                if (got != (uint64_t)fst.st_size) {
                        r = -EIO; /* changed while we read it */
                        goto finish;
                }
                if (sync && fsync(f) < 0) {
                        r = negative_errno();
                        goto finish;
                }
                total += got;
        }
        uint8_t digest[32];
        char hex[65];
        sha256_final(&h, digest);
        sha256_to_hex(digest, hex);
        snprintf(ret_checksum, STORE_CHECKSUM_MAX, "%s:%s", kind == SUM_SHA256 ? "sha256" : "crc32c+sha256",
                 hex);
        *ret_size = total;
        r = 0;
finish:
        file_list_done(&l);
        return r;
}
