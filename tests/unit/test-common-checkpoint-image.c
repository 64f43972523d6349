/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint-image.h"
#include "test.h"

/* xorshift64*: bytes as random as memhog -r writes. */
static void fill_random(uint8_t *b, size_t n) {
        uint64_t x = 0x9e3779b97f4a7c15u;
        for (size_t i = 0; i < n; i++) {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                b[i] = (uint8_t)((x * 0x2545f4914f6cdd1du) >> 56);
        }
}

TEST(sample_test) {
        static uint8_t b[1 << 20];
        fill_random(b, sizeof(b));
        ASSERT_TRUE(checkpoint_sample_incompressible(b, sizeof(b)));
        /* Random bytes over 128 values only: half the entropy is left to win. */
        for (size_t i = 0; i < sizeof(b); i++)
                b[i] &= 0x7f;
        ASSERT_FALSE(checkpoint_sample_incompressible(b, sizeof(b)));
        /* A heap-like pattern: zeros and small counters. */
        for (size_t i = 0; i < sizeof(b); i++)
                b[i] = i % 8 < 5 ? 0 : (uint8_t)(i / 8);
        ASSERT_FALSE(checkpoint_sample_incompressible(b, sizeof(b)));
        /* Too small to tell: compress. */
        fill_random(b, 1000);
        ASSERT_FALSE(checkpoint_sample_incompressible(b, 1000));
}

static void write_pages(const char *dir, const char *name, bool random, size_t n) {
        _cleanup_free_ char *p = strdup_printf("%s/checkpoint/%s", dir, name);
        _cleanup_free_ uint8_t *b = malloc(n);
        ASSERT_TRUE(p && b);
        if (random)
                fill_random(b, n);
        else
                memset(b, 'k', n);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_TRUE(write(fd, b, n) == (ssize_t)n);
}

TEST(choice_per_checkpoint) {
        const char *d = test_tmpdir();
        _cleanup_free_ char *images = strdup_printf("%s/checkpoint", d);
        ASSERT_TRUE(mkdir(images, 0700) == 0);
        /* No pages at all: the default. */
        ASSERT_EQ((int)checkpoint_image_compression(&(ArchiveSource){.path = d}), (int)OCI_COMPRESSION_ZSTD);
        write_pages(d, "pages-1.img", true, 4 << 20);
        ASSERT_EQ((int)checkpoint_image_compression(&(ArchiveSource){.path = d}), (int)OCI_COMPRESSION_NONE);
        /* Most of the memory compresses: zstd again. */
        write_pages(d, "pages-2.img", false, 12 << 20);
        ASSERT_EQ((int)checkpoint_image_compression(&(ArchiveSource){.path = d}), (int)OCI_COMPRESSION_ZSTD);
        /* Other images do not count. */
        write_pages(d, "pages-2.img", true, 12 << 20);
        write_pages(d, "core-1.img", false, 1 << 20);
        ASSERT_EQ((int)checkpoint_image_compression(&(ArchiveSource){.path = d}), (int)OCI_COMPRESSION_NONE);
        /* A pod: its own directory has no pages, its first member's tell. */
        const char *names[] = {"web"}, *dirs[] = {d};
        ArchiveSource pod = {
                .path = "/nonexistent", .member_names = names, .member_dirs = dirs, .n_members = 1};
        ASSERT_EQ((int)checkpoint_image_compression(&pod), (int)OCI_COMPRESSION_NONE);
        /* No checkpoint/ directory: the default. */
        ASSERT_EQ((int)checkpoint_image_compression(&(ArchiveSource){.path = "/nonexistent"}),
                  (int)OCI_COMPRESSION_ZSTD);
}
