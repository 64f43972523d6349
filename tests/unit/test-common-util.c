/* SPDX-License-Identifier: Apache-2.0 */
/* common/util.c helpers without a test file of their own. */
#include <fcntl.h>
#include <sys/mman.h>

#include "test.h"
#include "util.h"

TEST(sockaddr_un_set_bounds) {
        struct sockaddr_un sa;
        char path[sizeof(sa.sun_path) + 1];

        /* The longest path that fits leaves room for the NUL. */
        memset(path, 'a', sizeof(path));
        path[0] = '/';
        path[sizeof(sa.sun_path) - 1] = 0;
        memset(&sa, 0x55, sizeof(sa));
        ASSERT_OK(sockaddr_un_set(&sa, path));
        ASSERT_EQ(sa.sun_family, AF_UNIX);
        ASSERT_STREQ(sa.sun_path, path);

        /* One more byte (sun_path full, no NUL) and longer are refused, untouched. */
        path[sizeof(sa.sun_path) - 1] = 'a';
        path[sizeof(sa.sun_path)] = 0;
        memset(&sa, 0x55, sizeof(sa));
        ASSERT_ERROR(sockaddr_un_set(&sa, path), ENAMETOOLONG);
        ASSERT_EQ(((unsigned char *)&sa)[0], 0x55);

        ASSERT_OK(sockaddr_un_set(&sa, "/run/kybernate.sock"));
        ASSERT_STREQ(sa.sun_path, "/run/kybernate.sock");
}

TEST(read_full_at_and_fd) {
        _cleanup_close_ int fd = memfd_create("read-full", MFD_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(write_all(fd, "0123456789", 10));

        /* At an offset: the file position is not used; a short file gives what is there. */
        char b[16] = {};
        ASSERT_EQ(read_full_at(fd, b, 4, 3), 4);
        ASSERT_TRUE(memcmp(b, "3456", 4) == 0);
        ASSERT_EQ(read_full_at(fd, b, sizeof(b), 8), 2);
        ASSERT_TRUE(memcmp(b, "89", 2) == 0);
        ASSERT_EQ(read_full_at(fd, b, sizeof(b), 10), 0);
        /* At the file position: it moves. */
        ASSERT_EQ(lseek(fd, 6, SEEK_SET), 6);
        ASSERT_EQ(read_full_at(fd, b, 3, -1), 3);
        ASSERT_TRUE(memcmp(b, "678", 3) == 0);
        ASSERT_EQ(read_full_at(fd, b, 3, -1), 1);
        ASSERT_EQ(b[0], '9');

        /* read_full_fd: up to max bytes, exactly max is refused. */
        _cleanup_free_ char *all = NULL;
        size_t n = 0;
        ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
        ASSERT_OK(read_full_fd(fd, 11, &all, &n));
        ASSERT_EQ(n, 10u);
        ASSERT_STREQ(all, "0123456789");
        ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
        char *none = NULL;
        ASSERT_ERROR(read_full_fd(fd, 10, &none, NULL), EFBIG);
        ASSERT_NULL(none);

        /* A pipe's short reads are joined. */
        int p[2];
        ASSERT_OK(pipe2(p, O_CLOEXEC));
        _cleanup_close_ int r = p[0];
        ASSERT_OK(write_all(p[1], "ab", 2));
        ASSERT_OK(write_all(p[1], "cd", 2));
        close(p[1]);
        _cleanup_free_ char *piped = NULL;
        ASSERT_OK(read_full_fd(r, 4096, &piped, &n));
        ASSERT_STREQ(piped, "abcd");
}

TEST(fd_flags_set_and_clear) {
        int p[2];
        ASSERT_OK(pipe2(p, 0));
        _cleanup_close_ int r = p[0], w = p[1];

        ASSERT_OK(fd_cloexec(r, true));
        ASSERT_TRUE(fcntl(r, F_GETFD) & FD_CLOEXEC);
        ASSERT_OK(fd_cloexec(r, true)); /* already so */
        ASSERT_TRUE(fcntl(r, F_GETFD) & FD_CLOEXEC);
        ASSERT_OK(fd_cloexec(r, false));
        ASSERT_FALSE(fcntl(r, F_GETFD) & FD_CLOEXEC);

        /* The status flags: O_NONBLOCK only, the descriptor flags untouched. */
        ASSERT_OK(fd_nonblock(w, true));
        ASSERT_TRUE(fcntl(w, F_GETFL) & O_NONBLOCK);
        ASSERT_FALSE(fcntl(w, F_GETFD) & FD_CLOEXEC);
        ASSERT_OK(fd_nonblock(w, false));
        ASSERT_FALSE(fcntl(w, F_GETFL) & O_NONBLOCK);

        ASSERT_ERROR(fd_cloexec(-1, true), EBADF);
        ASSERT_ERROR(fd_nonblock(-1, true), EBADF);
}

TEST(greedy_realloc_doubles_and_keeps) {
        _cleanup_free_ int *a = NULL;
        size_t alloc = 0;

        ASSERT_OK(GREEDY_REALLOC(a, alloc, 1, 4));
        ASSERT_TRUE(a != NULL && alloc == 4);
        for (int i = 0; i < 4; i++)
                a[i] = i;
        int *before = a;
        ASSERT_OK(GREEDY_REALLOC(a, alloc, 4, 4)); /* room already */
        ASSERT_TRUE(a == before && alloc == 4);
        ASSERT_OK(GREEDY_REALLOC(a, alloc, 9, 4)); /* 4 -> 8 -> 16 */
        ASSERT_TRUE(alloc == 16);
        for (int i = 0; i < 4; i++)
                ASSERT_TRUE(a[i] == i);
        ASSERT_ERROR(GREEDY_REALLOC(a, alloc, SIZE_MAX / 2, 4), ENOMEM);
        ASSERT_TRUE(alloc == 16 && a[3] == 3);

        _cleanup_strv_free_ char **l = NULL;
        ASSERT_TRUE(strv_length(l) == 0);
        ASSERT_OK(strv_push_dup(&l, "a"));
        ASSERT_OK(strv_push_dup(&l, "b"));
        ASSERT_TRUE(strv_length(l) == 2 && streq(l[1], "b") && !l[2]);
        ASSERT_TRUE(strv_contains(l, "b") && !strv_contains(l, "c") && !strv_contains(NULL, "a"));
}

TEST(tmp_file_commit_renames_or_removes) {
        const char *d = test_tmpdir();
        _cleanup_free_ char *tmp = NULL, *path = NULL, *data = NULL;
        ASSERT_TRUE(asprintf(&tmp, "%s/f.tmp", d) >= 0 && asprintf(&path, "%s/f", d) >= 0);

        /* Written well: it takes path's place. */
        ASSERT_OK(write_file_replace(tmp, "new", 3, 0600, false));
        ASSERT_OK(tmp_file_commit(tmp, path, 0));
        ASSERT_TRUE(access(tmp, F_OK) < 0 && errno == ENOENT);
        ASSERT_OK(read_full_file(path, 16, &data, NULL));
        ASSERT_STREQ(data, "new");

        /* Writing failed: the temporary file goes, path stays, the error is returned. */
        ASSERT_OK(write_file_replace(tmp, "bad", 3, 0600, false));
        ASSERT_ERROR(tmp_file_commit(tmp, path, -EIO), EIO);
        ASSERT_TRUE(access(tmp, F_OK) < 0 && errno == ENOENT);
        free(data);
        data = NULL;
        ASSERT_OK(read_full_file(path, 16, &data, NULL));
        ASSERT_STREQ(data, "new");

        /* The rename fails (no such directory): its error, and the temporary file goes. */
        _cleanup_free_ char *nowhere = NULL;
        ASSERT_TRUE(asprintf(&nowhere, "%s/missing/f", d) >= 0);
        ASSERT_OK(write_file_replace(tmp, "x", 1, 0600, false));
        ASSERT_ERROR(tmp_file_commit(tmp, nowhere, 0), ENOENT);
        ASSERT_TRUE(access(tmp, F_OK) < 0 && errno == ENOENT);
}
