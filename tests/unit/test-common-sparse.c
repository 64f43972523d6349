/* SPDX-License-Identifier: Apache-2.0 */
/* Sparse files in the rootfs diff: written as GNU sparse (pax 1.0) entries,
 * read back strictly, applied with their holes; the data limit of the
 * capture; the apply pre-pass. */
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <sched.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "archive.h"
#include "rootfs-diff.h"
#include "test.h"

#define GiB (1ULL << 30)
#define MiB (1ULL << 20)

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

static void rm_tree(const char *dir) {
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static char *join(const char *base, const char *rel) {
        char *p;
        ASSERT_TRUE(asprintf(&p, "%s/%s", base, rel) >= 0);
        return p;
}

static void put_at(const char *base, const char *rel, uint64_t off, const char *data) {
        _cleanup_free_ char *p = join(base, rel);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(pwrite(fd, data, strlen(data), (off_t)off), (ssize_t)strlen(data));
}

static void set_size(const char *base, const char *rel, uint64_t size) {
        _cleanup_free_ char *p = join(base, rel);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(ftruncate(fd, (off_t)size));
}

static void assert_at(const char *base, const char *rel, uint64_t off, const char *data) {
        _cleanup_free_ char *p = join(base, rel);
        _cleanup_close_ int fd = open(p, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        char buf[256] = "";
        size_t n = strlen(data);
        ASSERT_EQ(pread(fd, buf, n, (off_t)off), (ssize_t)n);
        ASSERT_TRUE(memcmp(buf, data, n) == 0);
}

static struct stat stat_of(const char *base, const char *rel) {
        _cleanup_free_ char *p = join(base, rel);
        struct stat st;
        ASSERT_OK(lstat(p, &st));
        return st;
}

static off_t file_size(const char *base, const char *rel) {
        return stat_of(base, rel).st_size;
}

/* Allocated bytes: a sparse file has few. */
static uint64_t disk_bytes(const char *base, const char *rel) {
        return (uint64_t)stat_of(base, rel).st_blocks * 512;
}

static bool exists(const char *base, const char *rel) {
        _cleanup_free_ char *p = join(base, rel);
        struct stat st;
        return lstat(p, &st) >= 0;
}

/* t/upper: a 1 GiB file with data at 0 and at 512 MiB ending in a hole, a
 * 1 GiB file with data at its very end, an all-hole file, a small dense file. */
static void make_sparse_tree(const char *upper) {
        ASSERT_OK(mkdir(upper, 0755));
        put_at(upper, "holes", 0, "head");
        put_at(upper, "holes", 512 * MiB, "middle");
        set_size(upper, "holes", GiB);
        set_size(upper, "tail", GiB - 5);
        put_at(upper, "tail", GiB - 5, "end!\n");
        set_size(upper, "empty", 3 * GiB);
        put_at(upper, "dense", 0, "just data\n");
}

static void assert_sparse_tree(const char *root) {
        ASSERT_EQ(file_size(root, "holes"), GiB);
        assert_at(root, "holes", 0, "head");
        assert_at(root, "holes", 512 * MiB, "middle");
        assert_at(root, "holes", 512 * MiB - 4, "\0\0\0\0");
        assert_at(root, "holes", GiB - 3, "\0\0\0");
        ASSERT_TRUE(disk_bytes(root, "holes") < MiB);
        ASSERT_EQ(file_size(root, "tail"), GiB);
        assert_at(root, "tail", GiB - 5, "end!\n");
        ASSERT_TRUE(disk_bytes(root, "tail") < MiB);
        ASSERT_EQ(file_size(root, "empty"), 3 * GiB);
        ASSERT_TRUE(disk_bytes(root, "empty") < MiB);
        ASSERT_EQ(file_size(root, "dense"), 10);
        assert_at(root, "dense", 0, "just data\n");
}

static bool have_gnu_tar(void) {
        return system("tar --version 2>/dev/null | grep -q 'GNU tar'") == 0;
}

static int run(const char *fmt, ...) _printf_(1, 2);
static int run(const char *fmt, ...) {
        _cleanup_free_ char *cmd = NULL;
        va_list ap;
        va_start(ap, fmt);
        int k = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        ASSERT_TRUE(k >= 0);
        int st = system(cmd);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(capture_keeps_holes_and_apply_recreates_them) {
        char t[] = "/tmp/test-sparse-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(t));
        _cleanup_free_ char *upper = join(t, "upper"), *ckpt = join(t, "ckpt"), *root = join(t, "root");
        make_sparse_tree(upper);
        if (disk_bytes(upper, "holes") >= MiB) {
                rm_tree(t);
                return_skip("/tmp does not keep holes");
        }
        ASSERT_OK(mkdir(ckpt, 0700));
        ASSERT_OK(mkdir(root, 0755));

        RootfsDiffStats stats = {};
        ASSERT_OK(rootfs_diff_capture(upper, false, NULL, ckpt, &stats));
        ASSERT_EQ(stats.entries, 4);
        /* 5 GiB of apparent size, a few bytes of data. */
        ASSERT_TRUE(stats.bytes < MiB);
        ASSERT_EQ(file_size(ckpt, ROOTFS_DIFF_TAR), (off_t)stats.bytes);
        ASSERT_TRUE(stats.data_bytes < MiB);
        ASSERT_TRUE(stats.data_bytes >= 4 + 6 + 5 + 10);

        ASSERT_OK(rootfs_diff_apply(ckpt, root));
        assert_sparse_tree(root);
        rm_tree(t);
}

/* What archive_reader_read() (the dense view) returns for "holes". */
typedef struct DenseCheck {
        uint64_t total, nonzero;
        bool seen;
} DenseCheck;

static int dense_entry(ArchiveReader *rd, const ArchiveEntry *e, void *userdata) {
        DenseCheck *d = userdata;
        if (!streq(e->path, "holes"))
                return 0;
        ASSERT_TRUE(e->sparse);
        ASSERT_EQ(e->size, GiB);
        ASSERT_TRUE(e->data_bytes < MiB);
        d->seen = true;
        static uint8_t buf[1 << 20];
        for (;;) {
                ssize_t k = archive_reader_read(rd, buf, sizeof(buf));
                ASSERT_TRUE(k >= 0);
                if (k == 0)
                        break;
                for (ssize_t i = 0; i < k; i++)
                        d->nonzero += buf[i] != 0;
                d->total += (uint64_t)k;
        }
        return 0;
}

TEST(dense_reader_and_archive_extract) {
        char t[] = "/tmp/test-sparse-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(t));
        _cleanup_free_ char *upper = join(t, "upper"), *ckpt = join(t, "ckpt"), *root = join(t, "root");
        make_sparse_tree(upper);
        ASSERT_OK(mkdir(ckpt, 0700));
        ASSERT_OK(mkdir(root, 0755));
        ASSERT_OK(rootfs_diff_capture(upper, false, NULL, ckpt, NULL));
        _cleanup_free_ char *tar = join(ckpt, ROOTFS_DIFF_TAR);

        _cleanup_close_ int fd = open(tar, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        DenseCheck d = {};
        ArchiveLimits l = {.max_total_bytes = MiB}; /* data counts, not the 5 GiB */
        ASSERT_EQ(archive_read(fd, &l, dense_entry, &d), 4);
        ASSERT_TRUE(d.seen);
        ASSERT_EQ(d.total, GiB);
        ASSERT_EQ(d.nonzero, 10); /* "head", "middle" */

        ASSERT_TRUE(lseek(fd, 0, SEEK_SET) == 0);
        _cleanup_close_ int dfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_OK(archive_extract(fd, dfd, &l, false));
        ASSERT_EQ(file_size(root, "holes"), GiB);
        assert_at(root, "holes", 512 * MiB, "middle");
        ASSERT_TRUE(disk_bytes(root, "holes") < MiB);
        ASSERT_EQ(file_size(root, "empty"), 3 * GiB);
        rm_tree(t);
}

TEST(gnu_tar_reads_our_sparse_entries) {
        if (!have_gnu_tar())
                return_skip("GNU tar not installed");
        char t[] = "/tmp/test-sparse-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(t));
        _cleanup_free_ char *upper = join(t, "upper"), *ckpt = join(t, "ckpt"), *root = join(t, "root");
        make_sparse_tree(upper);
        ASSERT_OK(mkdir(ckpt, 0700));
        ASSERT_OK(mkdir(root, 0755));
        ASSERT_OK(rootfs_diff_capture(upper, false, NULL, ckpt, NULL));

        /* The listing has the real names and sizes, no GNUSparseFile.0/. */
        ASSERT_EQ(run("tar -tvf %s/%s > %s/list 2>&1", ckpt, ROOTFS_DIFF_TAR, t), 0);
        ASSERT_EQ(run("grep -q ' 1073741824 .* holes$' %s/list", t), 0);
        ASSERT_EQ(run("grep -q ' 3221225472 .* empty$' %s/list", t), 0);
        ASSERT_NE(run("grep -q GNUSparseFile %s/list", t), 0);

        ASSERT_EQ(run("tar -xf %s/%s -C %s", ckpt, ROOTFS_DIFF_TAR, root), 0);
        assert_sparse_tree(root);
        rm_tree(t);
}

TEST(we_read_gnu_tar_sparse_entries) {
        if (!have_gnu_tar())
                return_skip("GNU tar not installed");
        char t[] = "/tmp/test-sparse-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(t));
        _cleanup_free_ char *upper = join(t, "upper"), *ckpt = join(t, "ckpt"), *root = join(t, "root");
        make_sparse_tree(upper);
        ASSERT_OK(mkdir(ckpt, 0700));
        ASSERT_OK(mkdir(root, 0755));
        ASSERT_EQ(
                run("tar --format=pax --sparse --sparse-version=1.0 -cf %s/%s -C %s holes tail empty dense",
                    ckpt, ROOTFS_DIFF_TAR, upper),
                0);
        ASSERT_OK(rootfs_diff_apply(ckpt, root));
        assert_sparse_tree(root);

        /* The 0.1 format (map in the pax header) is refused, not misread. */
        _cleanup_free_ char *ckpt2 = join(t, "ckpt2"), *root2 = join(t, "root2");
        ASSERT_OK(mkdir(ckpt2, 0700));
        ASSERT_OK(mkdir(root2, 0755));
        ASSERT_EQ(run("tar --format=pax --sparse --sparse-version=0.1 -cf %s/%s -C %s holes", ckpt2,
                      ROOTFS_DIFF_TAR, upper),
                  0);
        ASSERT_ERROR(rootfs_diff_apply(ckpt2, root2), ENOTSUP);
        ASSERT_FALSE(exists(root2, "holes"));
        rm_tree(t);
}

/* ---- hand-made hostile sparse entries ---- */

static void octal(char *f, size_t len, uint64_t v) {
        snprintf(f, len, "%0*" PRIo64, (int)len - 1, v);
}

/* One 512-byte ustar header. */
static void header(uint8_t *b, const char *name, char type, uint64_t size) {
        memset(b, 0, 512);
        snprintf((char *)b, 100, "%s", name);
        octal((char *)b + 100, 8, 0644);
        octal((char *)b + 108, 8, 0);
        octal((char *)b + 116, 8, 0);
        octal((char *)b + 124, 12, size);
        octal((char *)b + 136, 12, 0);
        b[156] = (uint8_t)type;
        memcpy(b + 257,
               "ustar\0"
               "00",
               8);
        memset(b + 148, ' ', 8);
        unsigned sum = 0;
        for (size_t i = 0; i < 512; i++)
                sum += b[i];
        snprintf((char *)b + 148, 8, "%06o", sum);
}

/* An archive with one file: pax records, then a header of data_len bytes
 * (map text padded to a block, then data). Returns a memfd. */
static int hostile(const char *pax, const char *map, size_t data_len, bool truncate_data) {
        size_t map_len = strlen(map), map_pad = (map_len + 511) / 512 * 512;
        size_t pax_len = strlen(pax), pax_pad = (pax_len + 511) / 512 * 512;
        size_t body = map_pad + data_len, body_pad = (body + 511) / 512 * 512;
        size_t total = 512 + pax_pad + 512 + body_pad + 1024;
        _cleanup_free_ uint8_t *b = calloc(1, total);
        ASSERT_NOT_NULL(b);
        header(b, "PaxHeaders/f", 'x', pax_len);
        memcpy(b + 512, pax, pax_len);
        uint8_t *h = b + 512 + pax_pad;
        header(h, "GNUSparseFile.0/f", '0', body);
        memcpy(h + 512, map, map_len);
        memset(h + 512 + map_pad, 'x', data_len);
        int fd = memfd_create("hostile", MFD_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(write_all(fd, b, truncate_data ? 512 + pax_pad + 512 + map_pad : total));
        ASSERT_TRUE(lseek(fd, 0, SEEK_SET) == 0);
        return fd;
}

#define PAX_1_0(realsize) "22 GNU.sparse.major=1\n22 GNU.sparse.minor=0\n25 GNU.sparse.name=dir/f\n" realsize

static int read_hostile(const char *pax, const char *map, size_t data_len) {
        _cleanup_close_ int fd = hostile(pax, map, data_len, false);
        return archive_read(fd, NULL, NULL, NULL);
}

TEST(sparse_map_checked_strictly) {
        /* A good one first: two segments in a 1000-byte file. */
        ASSERT_EQ(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "2\n0\n10\n500\n20\n", 30), 1);
        /* Ends in a hole with the (size, 0) marker. */
        ASSERT_EQ(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "2\n0\n10\n1000\n0\n", 10), 1);

        /* Out of order, overlapping. */
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "2\n500\n20\n0\n10\n", 30),
                     EBADMSG);
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "2\n0\n10\n5\n20\n", 30),
                     EBADMSG);
        /* Past the real size; offset + length overflowing. */
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "1\n990\n20\n", 20), EBADMSG);
        ASSERT_ERROR(
                read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "1\n18446744073709551615\n2\n", 2),
                EBADMSG);
        /* Numbers too long or not numbers. */
        ASSERT_ERROR(
                read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "1\n0\n123456789012345678901\n", 1),
                EBADMSG);
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "1\n0\n-1\n", 1), EBADMSG);
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "1\n\n1\n", 1), EBADMSG);
        /* The data stored is not what the map says (too little, too much). */
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "1\n0\n10\n", 9), EBADMSG);
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "1\n0\n10\n", 11), EBADMSG);
        /* The map runs past the entry (no data at all). */
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "", 0), EBADMSG);
        /* Too many segments. */
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "99999999\n", 0), E2BIG);
        /* Missing real size, huge real size. */
        ASSERT_ERROR(read_hostile(PAX_1_0(""), "1\n0\n10\n", 10), EBADMSG);
        ASSERT_ERROR(
                read_hostile(PAX_1_0("44 GNU.sparse.realsize=18446744073709551615\n"), "1\n0\n10\n", 10),
                EBADMSG);
        /* Other versions, the 0.x map records. */
        ASSERT_ERROR(read_hostile("22 GNU.sparse.major=2\n22 GNU.sparse.minor=0\n25 GNU.sparse.name=dir/f\n"
                                  "28 GNU.sparse.realsize=1000\n",
                                  "1\n0\n10\n", 10),
                     ENOTSUP);
        ASSERT_ERROR(read_hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n22 GNU.sparse.map=0,1\n"),
                                  "1\n0\n10\n", 10),
                     ENOTSUP);
        /* A truncated archive. */
        _cleanup_close_ int fd = hostile(PAX_1_0("28 GNU.sparse.realsize=1000\n"), "1\n0\n10\n", 10, true);
        ASSERT_ERROR(archive_read(fd, NULL, NULL, NULL), EBADMSG);
}

TEST(sparse_name_wins_over_path) {
        _cleanup_close_ int fd =
                hostile("14 path=other\n" PAX_1_0("28 GNU.sparse.realsize=1000\n"), "1\n0\n10\n", 10, false);
        char t[] = "/tmp/test-sparse-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(t));
        _cleanup_close_ int dfd = open(t, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_EQ(archive_extract(fd, dfd, NULL, false), 1);
        ASSERT_EQ(file_size(t, "dir/f"), 1000);
        assert_at(t, "dir/f", 0, "xxxxxxxxxx\0");
        ASSERT_FALSE(exists(t, "other"));
        rm_tree(t);
}

/* ---- the data limit ---- */

TEST(capture_limit_counts_data_not_holes) {
        char t[] = "/tmp/test-sparse-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(t));
        _cleanup_free_ char *upper = join(t, "upper"), *ckpt = join(t, "ckpt"), *ckpt2 = join(t, "ckpt2");
        make_sparse_tree(upper);
        ASSERT_OK(mkdir(ckpt, 0700));
        ASSERT_OK(mkdir(ckpt2, 0700));
        RootfsDiffStats stats = {};
        /* 5 GiB apparent, some KiB of data: within 1 MiB. */
        ASSERT_OK(rootfs_diff_capture_limited(upper, false, NULL, ckpt, MiB, &stats));
        ASSERT_TRUE(stats.data_bytes < MiB);

        /* 2 MiB of data in a file sorted before the others: over, and the
         * rest is still counted. */
        char big[64 * 1024];
        memset(big, 'b', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        for (unsigned i = 0; i < 32; i++)
                put_at(upper, "big", (uint64_t)i * (sizeof(big) - 1), big);
        uint64_t want = stats.data_bytes + 32 * (sizeof(big) - 1);
        ASSERT_ERROR(rootfs_diff_capture_limited(upper, false, NULL, ckpt2, MiB, &stats), EFBIG);
        ASSERT_EQ(stats.data_bytes, want);
        /* Nothing past the limit was written. */
        ASSERT_TRUE(file_size(ckpt2, ROOTFS_DIFF_TAR) < (off_t)MiB);
        rm_tree(t);
}

/* ---- the apply pre-pass ---- */

TEST(apply_checks_space_before_changing_anything) {
        if (geteuid() != 0)
                return_skip("needs root for a tmpfs");
        if (unshare(CLONE_NEWNS) < 0)
                return_skip("unshare(CLONE_NEWNS) failed");
        ASSERT_OK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
        char t[] = "/tmp/test-sparse-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(t));
        _cleanup_free_ char *upper = join(t, "upper"), *ckpt = join(t, "ckpt"), *root = join(t, "root");
        ASSERT_OK(mkdir(upper, 0755));
        ASSERT_OK(mkdir(ckpt, 0700));
        ASSERT_OK(mkdir(root, 0755));
        /* "a" fits, "b" (sorted after it) does not. */
        put_at(upper, "a", 0, "small\n");
        char blk[4096];
        memset(blk, 'z', sizeof(blk) - 1);
        blk[sizeof(blk) - 1] = 0;
        for (unsigned i = 0; i < 1024; i++)
                put_at(upper, "b", (uint64_t)i * (sizeof(blk) - 1), blk);
        ASSERT_OK(rootfs_diff_capture(upper, false, NULL, ckpt, NULL));
        ASSERT_OK(mount("tmpfs", root, "tmpfs", 0, "size=1m"));
        put_at(root, "keep", 0, "image file\n");

        char msg[512];
        ASSERT_ERROR(rootfs_diff_apply_msg(ckpt, root, msg, sizeof(msg)), ENOSPC);
        ASSERT_TRUE(strstr(msg, "more than") != NULL);
        /* The rootfs is as it was: not even "a". */
        ASSERT_FALSE(exists(root, "a"));
        ASSERT_FALSE(exists(root, "b"));
        assert_at(root, "keep", 0, "image file\n");
        (void)umount2(root, MNT_DETACH);
        rm_tree(t);
}
