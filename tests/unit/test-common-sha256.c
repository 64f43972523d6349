/* SPDX-License-Identifier: Apache-2.0 */
/* SHA-256 with and without the x86 SHA extensions (checkpoint checksums). */
#include "sha256-accel.h"
#include "sha256.h"
#include "test.h"

static void hex_of(const void *buf, size_t len, size_t chunk, char out[static 65]) {
        Sha256 s;
        uint8_t d[32];
        const uint8_t *p = buf;
        sha256_init(&s);
        for (size_t off = 0; off < len; off += chunk)
                sha256_update(&s, p + off, MIN(chunk, len - off));
        sha256_final(&s, d);
        sha256_to_hex(d, out);
}

TEST(known_vectors) {
        char h[65];
        sha256_hex("", 0, h);
        ASSERT_STREQ(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        sha256_hex("abc", 3, h);
        ASSERT_STREQ(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        sha256_hex(two, strlen(two), h);
        ASSERT_STREQ(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
        _cleanup_free_ char *a = malloc(1000000);
        ASSERT_NOT_NULL(a);
        memset(a, 'a', 1000000);
        hex_of(a, 1000000, 1000000, h);
        ASSERT_STREQ(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        hex_of(a, 1000000, 777, h); /* odd chunks: buffered and bulk paths mixed */
        ASSERT_STREQ(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* The accelerated block function against the portable one, block by block:
 * feeding 63 bytes first keeps sha256_update on its buffered (portable) path. */
TEST(accel_matches_portable) {
        uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
        uint8_t data[64 * 37 + 1];
        srand(1234);
        for (size_t i = 0; i < sizeof(data); i++)
                data[i] = (uint8_t)rand();
        if (!sha256_blocks_accel(h, data + 1, 37))
                return_skip("this CPU has no SHA extensions");

        /* Portable: one byte at a time never reaches the bulk path. */
        Sha256 s;
        sha256_init(&s);
        for (size_t i = 0; i < (size_t)64 * 37; i++)
                sha256_update(&s, data + 1 + i, 1);
        ASSERT_EQ(s.used, 0);
        for (int i = 0; i < 8; i++)
                ASSERT_EQ(s.h[i], h[i]);
}

TEST(streaming_equals_one_shot) {
        static uint8_t buf[200003];
        for (size_t i = 0; i < sizeof(buf); i++)
                buf[i] = (uint8_t)(i * 2654435761u >> 13);
        char one[65], part[65];
        hex_of(buf, sizeof(buf), sizeof(buf), one);
        size_t chunks[] = {1, 3, 63, 64, 65, 127, 4096, 65537};
        for (size_t k = 0; k < ELEMENTSOF(chunks); k++) {
                hex_of(buf, sizeof(buf), chunks[k], part);
                ASSERT_STREQ(one, part);
        }
}
