/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "archive.h"
#include "test.h"

static void write_file_at(int dfd, const char *name, const void *data, size_t size, mode_t mode) {
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(write_all(fd, data, size));
        ASSERT_OK(fchmod(fd, mode));
}

static int memfd(void) {
        int fd = memfd_create("archive", MFD_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        return fd;
}

static const char long_dir[] = "checkpoint/a-directory-name-that-is-quite-long-indeed-0123456789"
                               "/and-a-second-level-that-makes-it-longer-still-0123456789";

/* The layout of a checkpoint as Podman/CRI-O export it. */
static void make_checkpoint_tree(const char *dir) {
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(dfd >= 0);
        ASSERT_OK(mkdirat(dfd, "checkpoint", 0755));
        write_file_at(dfd, "config.dump", "{\"id\":\"abc\"}\n", 13, 0644);
        write_file_at(dfd, "spec.dump", "{}\n", 3, 0600);
        write_file_at(dfd, "checkpoint/empty.img", "", 0, 0644);
        uint8_t big[70000];
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t)(i * 7 + 3);
        write_file_at(dfd, "checkpoint/pages-1.img", big, sizeof(big), 0644);
        write_file_at(dfd, "checkpoint/tool.sh", "#!/bin/sh\n", 10, 0755);
        ASSERT_OK(mkdirat(dfd, "checkpoint/a-directory-name-that-is-quite-long-indeed-0123456789", 0755));
        ASSERT_OK(mkdirat(dfd, long_dir, 0755));
        char p[512];
        snprintf(p, sizeof(p), "%s/file-with-a-long-name.img", long_dir);
        write_file_at(dfd, p, "deep", 4, 0644);
}

static void assert_file(int dfd, const char *name, const void *data, size_t size, mode_t mode) {
        _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        ASSERT_TRUE(fd >= 0);
        _cleanup_free_ char *buf = NULL;
        size_t n;
        ASSERT_OK(read_full_fd(fd, 1 << 20, &buf, &n));
        ASSERT_EQ(n, size);
        ASSERT_TRUE(memcmp(buf, data, size) == 0);
        struct stat st;
        ASSERT_OK(fstat(fd, &st));
        ASSERT_EQ(st.st_mode & 07777, mode);
}

static int write_archive(const char *dir) {
        int out = memfd();
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_(archive_writer_freep) ArchiveWriter *w = NULL;
        ASSERT_OK(archive_writer_new(out, &w));
        ASSERT_OK(archive_writer_add_tree(w, dfd, NULL));
        ASSERT_OK(archive_writer_finish(w));
        ASSERT_EQ(archive_writer_bytes(w) % 512, 0);
        ASSERT_OK(lseek(out, 0, SEEK_SET));
        return out;
}

TEST(path_normalize) {
        char out[ARCHIVE_PATH_MAX];
        ASSERT_EQ(archive_path_normalize("a/b", out), 0);
        ASSERT_STREQ(out, "a/b");
        ASSERT_EQ(archive_path_normalize("./checkpoint/", out), 0);
        ASSERT_STREQ(out, "checkpoint");
        ASSERT_EQ(archive_path_normalize("a//./b/", out), 0);
        ASSERT_STREQ(out, "a/b");
        ASSERT_EQ(archive_path_normalize("./", out), 1);
        ASSERT_EQ(archive_path_normalize(".", out), 1);
        ASSERT_ERROR(archive_path_normalize("", out), EINVAL);
        ASSERT_ERROR(archive_path_normalize("/etc/passwd", out), EPERM);
        ASSERT_ERROR(archive_path_normalize("..", out), EPERM);
        ASSERT_ERROR(archive_path_normalize("../x", out), EPERM);
        ASSERT_ERROR(archive_path_normalize("a/../../x", out), EPERM);
        ASSERT_ERROR(archive_path_normalize("a/..", out), EPERM);
        ASSERT_ERROR(archive_path_normalize("a\nb", out), EINVAL);
        ASSERT_EQ(archive_path_normalize("a/..b/c..", out), 0); /* not ".." components */
        char longc[300];
        memset(longc, 'x', sizeof(longc) - 1);
        longc[sizeof(longc) - 1] = 0;
        ASSERT_ERROR(archive_path_normalize(longc, out), ENAMETOOLONG);
}

TEST(roundtrip) {
        const char *src = test_tmpdir(), *dst = test_tmpdir();
        make_checkpoint_tree(src);

        _cleanup_close_ int in = write_archive(src);
        _cleanup_close_ int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int n = archive_extract(in, dfd, NULL, true);
        ASSERT_EQ(n, 9); /* 3 directories, 6 files */

        assert_file(dfd, "config.dump", "{\"id\":\"abc\"}\n", 13, 0644);
        assert_file(dfd, "spec.dump", "{}\n", 3, 0600);
        assert_file(dfd, "checkpoint/empty.img", "", 0, 0644);
        assert_file(dfd, "checkpoint/tool.sh", "#!/bin/sh\n", 10, 0755);
        uint8_t big[70000];
        for (size_t i = 0; i < sizeof(big); i++)
                big[i] = (uint8_t)(i * 7 + 3);
        assert_file(dfd, "checkpoint/pages-1.img", big, sizeof(big), 0644);
        char p[512];
        snprintf(p, sizeof(p), "%s/file-with-a-long-name.img", long_dir);
        ASSERT_TRUE(strlen(p) > 100); /* exercised the pax path header */
        assert_file(dfd, p, "deep", 4, 0644);

        /* Extracting again into the same place refuses to overwrite. */
        ASSERT_OK(lseek(in, 0, SEEK_SET));
        ASSERT_ERROR(archive_extract(in, dfd, NULL, false), EEXIST);
}

/* A pod: its own files at the top, each member's checkpoint under
 * members/<container>/ in the single-export layout (stats-dump beside
 * checkpoint/ too); names that would leave members/ are refused. */
TEST(pod_checkpoint_layout) {
        const char *pod = test_tmpdir(), *a = test_tmpdir(), *b = test_tmpdir(), *dst = test_tmpdir();
        make_checkpoint_tree(a);
        make_checkpoint_tree(b);
        _cleanup_close_ int bfd = open(b, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        write_file_at(bfd, "checkpoint/stats-dump", "stats", 5, 0644);
        _cleanup_close_ int pfd = open(pod, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        write_file_at(pfd, "pod.json", "{}", 2, 0600);
        write_file_at(pfd, "kybernate.json", "{}", 2, 0600);

        const char *names[] = {"web", "sidecar"}, *dirs[] = {a, b};
        _cleanup_close_ int out = memfd();
        uint64_t bytes = 0;
        ArchiveSource src = {.path = pod, .member_names = names, .member_dirs = dirs, .n_members = 2};
        ASSERT_OK(archive_write_source(&src, out, NULL, NULL, &bytes));
        ASSERT_TRUE(bytes > 0 && bytes % 512 == 0);
        ASSERT_OK(lseek(out, 0, SEEK_SET));
        _cleanup_close_ int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        /* 2 top files + members/ + 2 x (member dir + 9 entries) + b's stats-dump twice */
        ASSERT_EQ(archive_extract(out, dfd, NULL, false), 2 + 1 + 2 * 10 + 2);
        assert_file(dfd, "pod.json", "{}", 2, 0600);
        assert_file(dfd, "kybernate.json", "{}", 2, 0600);
        assert_file(dfd, "members/web/config.dump", "{\"id\":\"abc\"}\n", 13, 0644);
        assert_file(dfd, "members/sidecar/spec.dump", "{}\n", 3, 0600);
        assert_file(dfd, "members/sidecar/stats-dump", "stats", 5, 0644);
        assert_file(dfd, "members/sidecar/checkpoint/stats-dump", "stats", 5, 0644);
        ASSERT_TRUE(faccessat(dfd, "members/web/stats-dump", F_OK, 0) < 0);
        ASSERT_TRUE(faccessat(dfd, "config.dump", F_OK, 0) < 0);

        const char *bad[] = {"../x"}, *dot[] = {".hidden"};
        _cleanup_close_ int out2 = memfd();
        src.n_members = 1;
        src.member_names = bad;
        ASSERT_ERROR(archive_write_source(&src, out2, NULL, NULL, &bytes), EINVAL);
        src.member_names = dot;
        ASSERT_ERROR(archive_write_source(&src, out2, NULL, NULL, &bytes), EINVAL);
}

static bool have_tar(void) {
        return access("/bin/tar", X_OK) == 0;
}

static int sh(const char *cmd) {
        int s = system(cmd);
        return WIFEXITED(s) ? WEXITSTATUS(s) : 128;
}

/* GNU tar reads what we write, and we read what GNU tar writes (gnu and pax formats). */
TEST(interop_with_gnu_tar) {
        if (!have_tar())
                return_skip("no tar binary");
        const char *src = test_tmpdir(), *dst = test_tmpdir();
        make_checkpoint_tree(src);

        char file[64];
        snprintf(file, sizeof(file), "%s/a.tar", test_tmpdir());
        _cleanup_close_ int out = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        ASSERT_TRUE(out >= 0);
        _cleanup_close_ int sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_(archive_writer_freep) ArchiveWriter *w = NULL;
        ASSERT_OK(archive_writer_new(out, &w));
        ASSERT_OK(archive_writer_add_tree(w, sfd, NULL));
        ASSERT_OK(archive_writer_finish(w));

        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "tar -C %s -xf %s && diff -r %s %s >/dev/null", dst, file, src, dst);
        ASSERT_EQ(sh(cmd), 0);

        const char *formats[] = {"gnu", "pax", "ustar"};
        for (size_t i = 0; i < ELEMENTSOF(formats); i++) {
                const char *d2 = test_tmpdir();
                snprintf(cmd, sizeof(cmd), "tar --format=%s -C %s -cf %s .", formats[i], src, file);
                if (streq(formats[i], "ustar"))
                        /* ustar cannot hold the long path: archive the rest. */
                        snprintf(cmd, sizeof(cmd), "tar --format=ustar -C %s -cf %s config.dump spec.dump",
                                 src, file);
                ASSERT_EQ(sh(cmd), 0);
                _cleanup_close_ int in = open(file, O_RDONLY | O_CLOEXEC);
                _cleanup_close_ int dfd = open(d2, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                ASSERT_OK(archive_extract(in, dfd, NULL, false));
                if (!streq(formats[i], "ustar")) {
                        snprintf(cmd, sizeof(cmd), "diff -r %s %s >/dev/null", src, d2);
                        ASSERT_EQ(sh(cmd), 0);
                } else
                        assert_file(dfd, "spec.dump", "{}\n", 3, 0600);
        }
}

/* Hand-made headers for hostile archives. */
static void put_header(int fd, const char *name, char type, uint64_t size, const char *linkname) {
        uint8_t b[512] = {};
        memcpy(b, name, MIN(strlen(name), (size_t)100));
        snprintf((char *)b + 100, 8, "%07o", 0644);
        snprintf((char *)b + 108, 8, "%07o", 0);
        snprintf((char *)b + 116, 8, "%07o", 0);
        snprintf((char *)b + 124, 12, "%011llo", (unsigned long long)size);
        snprintf((char *)b + 136, 12, "%011o", 0);
        b[156] = (uint8_t)type;
        if (linkname)
                memcpy(b + 157, linkname, strlen(linkname));
        memcpy(b + 257,
               "ustar\0"
               "00",
               8);
        memset(b + 148, ' ', 8);
        unsigned sum = 0;
        for (size_t i = 0; i < 512; i++)
                sum += b[i];
        snprintf((char *)b + 148, 8, "%06o", sum);
        ASSERT_OK(write_all(fd, b, 512));
}

static void put_data(int fd, const void *data, size_t n) {
        uint8_t pad[512] = {};
        ASSERT_OK(write_all(fd, data, n));
        if (n % 512)
                ASSERT_OK(write_all(fd, pad, 512 - n % 512));
}

static void put_end(int fd) {
        uint8_t z[1024] = {};
        ASSERT_OK(write_all(fd, z, sizeof(z)));
}

static int extract_hostile(const char *name, char type, const char *linkname, const char *dst) {
        _cleanup_close_ int fd = memfd();
        put_header(fd, "ok.txt", '0', 2, NULL);
        put_data(fd, "ok", 2);
        put_header(fd, name, type, type == '0' ? 4 : 0, linkname);
        if (type == '0')
                put_data(fd, "evil", 4);
        put_end(fd);
        ASSERT_OK(lseek(fd, 0, SEEK_SET));
        _cleanup_close_ int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return archive_extract(fd, dfd, NULL, false);
}

TEST(traversal_refused) {
        const char *dst, *outside = test_tmpdir();

        struct {
                const char *name;
                char type;
                const char *link;
                int err;
        } cases[] = {
                {"../evil", '0', NULL, EPERM},
                {"a/../../evil", '0', NULL, EPERM},
                {"/tmp/evil", '0', NULL, EPERM},
                {"evil-link", '2', "/etc/passwd", ENOTSUP},
                {"evil-hard", '1', "/etc/passwd", ENOTSUP},
                {"evil-dev", '3', NULL, ENOTSUP},
                {"evil-fifo", '6', NULL, ENOTSUP},
                {".", '0', NULL, EINVAL},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                dst = test_tmpdir();
                ASSERT_ERROR(extract_hostile(cases[i].name, cases[i].type, cases[i].link, dst),
                             cases[i].err);
        }

        /* A symlink already in the destination is not followed, neither as a
         * directory on the way nor as the file itself. */
        dst = test_tmpdir();
        char link[256], target[256];
        snprintf(link, sizeof(link), "%s/sub", dst);
        ASSERT_OK(symlink(outside, link));
        ASSERT_ERROR(extract_hostile("sub/evil", '0', NULL, dst), EPERM);
        snprintf(link, sizeof(link), "%s/file", dst);
        snprintf(target, sizeof(target), "%s/target", outside);
        ASSERT_OK(symlink(target, link));
        ASSERT_ERROR(extract_hostile("file", '0', NULL, dst), EEXIST);
        ASSERT_TRUE(access(target, F_OK) < 0);
        snprintf(target, sizeof(target), "%s/evil", outside);
        ASSERT_TRUE(access(target, F_OK) < 0);
}

TEST(truncated_and_corrupt) {
        const char *src = test_tmpdir();
        make_checkpoint_tree(src);
        _cleanup_close_ int in = write_archive(src);
        _cleanup_free_ char *buf = NULL;
        size_t size;
        ASSERT_OK(read_full_fd(in, 1 << 22, &buf, &size));

        /* Every cut short of the end marker fails; listing needs no disk. */
        for (size_t cut = 0; cut + 1024 < size; cut += 97) {
                _cleanup_close_ int fd = memfd();
                ASSERT_OK(write_all(fd, buf, cut));
                ASSERT_OK(lseek(fd, 0, SEEK_SET));
                int r = archive_read(fd, NULL, NULL, NULL);
                ASSERT_TRUE(r < 0);
        }
        /* A flipped byte in the first header breaks its checksum. */
        buf[10] ^= 0x20;
        _cleanup_close_ int fd = memfd();
        ASSERT_OK(write_all(fd, buf, size));
        ASSERT_OK(lseek(fd, 0, SEEK_SET));
        ASSERT_ERROR(archive_read(fd, NULL, NULL, NULL), EBADMSG);
        buf[10] ^= 0x20;

        /* Limits. */
        ArchiveLimits few = {.max_entries = 3};
        _cleanup_close_ int fd2 = memfd();
        ASSERT_OK(write_all(fd2, buf, size));
        ASSERT_OK(lseek(fd2, 0, SEEK_SET));
        ASSERT_ERROR(archive_read(fd2, &few, NULL, NULL), E2BIG);
        ArchiveLimits small = {.max_total_bytes = 1000};
        ASSERT_OK(lseek(fd2, 0, SEEK_SET));
        ASSERT_ERROR(archive_read(fd2, &small, NULL, NULL), EFBIG);
}

TEST(huge_size_field_refused_cleanly) {
        _cleanup_close_ int fd = memfd();
        /* Claims 8 GiB of data, then ends: truncated, not a crash or a hang. */
        put_header(fd, "big", '0', 1ULL << 33 >> 1, NULL);
        put_end(fd);
        ASSERT_OK(lseek(fd, 0, SEEK_SET));
        ASSERT_ERROR(archive_read(fd, NULL, NULL, NULL), EBADMSG);
}

TEST(pax_size_and_path) {
        _cleanup_close_ int fd = memfd();
        char pax[256];
        const char *rec1 = "path=x/pax-name.txt\n", *rec2 = "size=3\n";
        int n1 = (int)strlen(rec1) + 3, n2 = (int)strlen(rec2) + 3;
        int len = snprintf(pax, sizeof(pax), "%d %s%d %s", n1, rec1, n2, rec2);
        put_header(fd, "PaxHeaders/x", 'x', (uint64_t)len, NULL);
        put_data(fd, pax, (size_t)len);
        put_header(fd, "short-name", '0', 999 /* overridden by pax size */, NULL);
        put_data(fd, "abc", 3);
        put_end(fd);
        ASSERT_OK(lseek(fd, 0, SEEK_SET));

        const char *dst = test_tmpdir();
        _cleanup_close_ int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_EQ(archive_extract(fd, dfd, NULL, false), 1);
        assert_file(dfd, "x/pax-name.txt", "abc", 3, 0644);

        /* A malformed pax record length. */
        _cleanup_close_ int bad = memfd();
        put_header(bad, "PaxHeaders/x", 'x', 8, NULL);
        put_data(bad, "99 path=", 8);
        put_end(bad);
        ASSERT_OK(lseek(bad, 0, SEEK_SET));
        ASSERT_ERROR(archive_read(bad, NULL, NULL, NULL), EBADMSG);
}

TEST(writer_refuses_links_and_specials) {
        const char *src = test_tmpdir();
        _cleanup_close_ int dfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        write_file_at(dfd, "a", "x", 1, 0644);
        ASSERT_OK(symlinkat("/etc/passwd", dfd, "b"));
        _cleanup_close_ int out = memfd();
        _cleanup_(archive_writer_freep) ArchiveWriter *w = NULL;
        ASSERT_OK(archive_writer_new(out, &w));
        ASSERT_ERROR(archive_writer_add_tree(w, dfd, NULL), ENOTSUP);
        ASSERT_ERROR(archive_writer_add_directory(w, "../x", 0755, 0), EPERM);
        ASSERT_ERROR(archive_writer_add_directory(w, "/x", 0755, 0), EPERM);
}

/* A file of 8 GiB or more (pages-*.img of a big container) needs a pax size
 * record: the ustar size field holds 11 octal digits. The file is sparse and
 * the archive goes into a non-blocking pipe, so only its headers are written
 * before the writer stops with EAGAIN. */
TEST(pax_size_for_huge_file) {
        char file[] = "/tmp/test-archive-huge-XXXXXX";
        _cleanup_close_ int fd = mkstemp(file);
        ASSERT_TRUE(fd >= 0);
        (void)unlink(file);
        uint64_t huge = (8ULL << 30) + 1;
        if (ftruncate(fd, (off_t)huge) < 0)
                return_skip("cannot create a sparse 8 GiB file here");

        int p[2];
        ASSERT_OK(pipe2(p, O_CLOEXEC));
        _cleanup_close_ int rd = p[0], wr = p[1];
        ASSERT_OK(fcntl(wr, F_SETFL, O_NONBLOCK));
        _cleanup_(archive_writer_freep) ArchiveWriter *w = NULL;
        ASSERT_OK(archive_writer_new(wr, &w));
        ASSERT_ERROR(archive_writer_add_file(w, "checkpoint/pages-1.img", fd), EAGAIN);

        uint8_t b[3 * 512];
        ASSERT_EQ(read(rd, b, sizeof(b)), (ssize_t)sizeof(b));
        ASSERT_EQ(b[156], 'x');
        ASSERT_NOT_NULL(memmem(b + 512, 512, "size=8589934593\n", 16));
        ASSERT_EQ(b[1024 + 156], '0');
        ASSERT_TRUE(memcmp(b + 1024, "checkpoint/pages-1.img", 22) == 0);
        ASSERT_TRUE(memcmp(b + 1024 + 124, "00000000000", 11) == 0);
}

typedef struct Seen {
        uint64_t calls, last;
        bool decreased;
} Seen;

static void seen_bytes(uint64_t bytes, void *userdata) {
        Seen *s = userdata;
        if (bytes < s->last)
                s->decreased = true;
        s->last = bytes;
        s->calls++;
}

/* The progress callbacks of the writer and the reader count every byte of
 * the archive, growing, and end at its size. */
TEST(progress_counts_archive_bytes) {
        const char *dir = test_tmpdir();
        make_checkpoint_tree(dir);
        _cleanup_close_ int out = memfd();
        Seen w = {};
        uint64_t bytes = 0;
        ASSERT_OK(archive_write_source(&(ArchiveSource){.path = dir}, out, seen_bytes, &w, &bytes));
        ASSERT_TRUE(w.calls > 1);
        ASSERT_FALSE(w.decreased);
        ASSERT_EQ(w.last, bytes);
        ASSERT_EQ(lseek(out, 0, SEEK_END), (off_t)bytes);

        ASSERT_OK(lseek(out, 0, SEEK_SET));
        const char *dest = test_tmpdir();
        _cleanup_close_ int dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(dfd >= 0);
        Seen r = {};
        const ArchiveLimits l = {.progress = seen_bytes, .progress_userdata = &r};
        ASSERT_OK(archive_extract(out, dfd, &l, false));
        ASSERT_TRUE(r.calls >= 1);
        ASSERT_FALSE(r.decreased);
        ASSERT_EQ(r.last, bytes);
}
