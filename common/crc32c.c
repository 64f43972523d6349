/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <string.h>

#include "crc32c.h"

#define POLY 0x82f63b78u /* 0x1edc6f41 reflected */

static uint32_t table[256];

static void table_init(void) {
        if (table[1])
                return;
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
                table[i] = c;
        }
}

/* Works on the inverted register, as the instructions do. */
static uint32_t update_sw(uint32_t c, const uint8_t *p, size_t n) {
        table_init();
        while (n--)
                c = table[(c ^ *p++) & 0xff] ^ (c >> 8);
        return c;
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>

static bool cpu_has_crc(void) {
        static int cached = -1;
        unsigned a, b, c, d;
        if (cached < 0)
                cached = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSE4_2);
        return cached;
}

static inline uint64_t load64(const uint8_t *p) {
        uint64_t w;
        memcpy(&w, p, sizeof(w));
        return w;
}

__attribute__((target("sse4.2"))) static uint32_t update_hw(uint32_t c, const uint8_t *p, size_t n) {
        uint64_t c64 = c;
        for (; n >= 8; n -= 8, p += 8)
                c64 = _mm_crc32_u64(c64, load64(p));
        c = (uint32_t)c64;
        for (; n > 0; n--)
                c = _mm_crc32_u8(c, *p++);
        return c;
}

__attribute__((target("sse4.2"))) static void x4_hw(const uint8_t *const p[4], size_t n, uint32_t ret[4]) {
        uint64_t a = ~0u, b = ~0u, c = ~0u, d = ~0u;
        size_t i = 0;
        for (; i + 8 <= n; i += 8) {
                a = _mm_crc32_u64(a, load64(p[0] + i));
                b = _mm_crc32_u64(b, load64(p[1] + i));
                c = _mm_crc32_u64(c, load64(p[2] + i));
                d = _mm_crc32_u64(d, load64(p[3] + i));
        }
        ret[0] = ~update_hw((uint32_t)a, p[0] + i, n - i);
        ret[1] = ~update_hw((uint32_t)b, p[1] + i, n - i);
        ret[2] = ~update_hw((uint32_t)c, p[2] + i, n - i);
        ret[3] = ~update_hw((uint32_t)d, p[3] + i, n - i);
}
#endif

uint32_t crc32c(uint32_t crc, const void *p, size_t n) {
#if defined(__x86_64__)
        if (cpu_has_crc())
                return ~update_hw(~crc, p, n);
#endif
        return crc32c_portable(crc, p, n);
}

uint32_t crc32c_portable(uint32_t crc, const void *p, size_t n) {
        return ~update_sw(~crc, p, n);
}

void crc32c_x4(const uint8_t *const p[4], size_t n, uint32_t ret[4]) {
#if defined(__x86_64__)
        if (cpu_has_crc()) {
                x4_hw(p, n, ret);
                return;
        }
#endif
        for (int i = 0; i < 4; i++)
                ret[i] = crc32c(0, p[i], n);
}
