/* SPDX-License-Identifier: Apache-2.0 */
/* CRC-32C (checkpoint content checksums): known values, chaining, the
 * instruction path against the portable one and a bitwise reference. */
#include "crc32c.h"
#include "test.h"

static uint32_t bitwise(const uint8_t *p, size_t n) {
        uint32_t c = ~0u;
        for (size_t i = 0; i < n; i++) {
                c ^= p[i];
                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        }
        return ~c;
}

TEST(known_values) {
        uint8_t b[32];
        ASSERT_EQ(crc32c(0, "123456789", 9), 0xe3069283u);
        ASSERT_EQ(crc32c_portable(0, "123456789", 9), 0xe3069283u);
        ASSERT_EQ(crc32c(0, "", 0), 0u);
        memset(b, 0, sizeof(b)); /* RFC 3720, B.4 */
        ASSERT_EQ(crc32c(0, b, sizeof(b)), 0x8a9136aau);
        memset(b, 0xff, sizeof(b));
        ASSERT_EQ(crc32c(0, b, sizeof(b)), 0x62a8ab43u);
        for (int i = 0; i < 32; i++)
                b[i] = (uint8_t)i;
        ASSERT_EQ(crc32c(0, b, sizeof(b)), 0x46dd794eu);
}

TEST(paths_agree) {
        static uint8_t buf[4 * 4099 + 64];
        uint32_t seed = 12345;
        for (size_t i = 0; i < sizeof(buf); i++) {
                seed = seed * 1103515245u + 12345u;
                buf[i] = (uint8_t)(seed >> 16);
        }
        for (size_t off = 0; off < 8; off++)
                for (size_t n = 0; n < 100; n++) {
                        uint32_t want = bitwise(buf + off, n);
                        ASSERT_EQ(crc32c(0, buf + off, n), want);
                        ASSERT_EQ(crc32c_portable(0, buf + off, n), want);
                        /* chained at every split point gives the same */
                        for (size_t k = 0; k <= n; k += 7)
                                ASSERT_EQ(crc32c(crc32c(0, buf + off, k), buf + off + k, n - k), want);
                }
        for (size_t n = 0; n <= 4099; n += n < 40 ? 1 : 509) {
                const uint8_t *p[4] = {buf + 1, buf + 4099 + 2, buf + (size_t)2 * 4099 + 3,
                                       buf + (size_t)3 * 4099};
                uint32_t got[4];
                crc32c_x4(p, n, got);
                for (int i = 0; i < 4; i++)
                        ASSERT_EQ(got[i], bitwise(p[i], n));
        }
}
