/* SPDX-License-Identifier: Apache-2.0 */
#include "sha256-accel.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

static bool cpu_has_sha(void) {
        static int cached = -1;
        unsigned a, b, c, d;
        if (cached >= 0)
                return cached;
        cached = 0;
        if (__get_cpuid(1, &a, &b, &c, &d) && (c & bit_SSSE3) && (c & bit_SSE4_1) &&
            __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA))
                cached = 1;
        return cached;
}

/* The SHA-NI round instruction works on the state split as ABEF and CDGH;
 * each group of four rounds adds the schedule words to K and runs two
 * double rounds. The schedule for rounds 16..63 is computed with msg1/msg2:
 * W[g] = msg2(msg1(W[g-4], W[g-3]) + (W[g-2]:W[g-1] shifted by one word), W[g-1]). */
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks(uint32_t h[8], const uint8_t *p, size_t n) {
        const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
        __m128i dcba = _mm_loadu_si128((const __m128i *)&h[0]);
        __m128i hgfe = _mm_loadu_si128((const __m128i *)&h[4]);
        __m128i badc = _mm_shuffle_epi32(dcba, 0xb1);
        __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1b);
        __m128i abef = _mm_alignr_epi8(badc, efgh, 8);
        __m128i cdgh = _mm_blend_epi16(efgh, badc, 0xf0);

        for (; n > 0; n--, p += 64) {
                __m128i abef0 = abef, cdgh0 = cdgh, w[4];
                for (size_t g = 0; g < 16; g++) {
                        if (g < 4)
                                w[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)),
                                                        bswap);
                        else {
                                __m128i t = _mm_sha256msg1_epu32(w[g & 3], w[(g - 3) & 3]);
                                t = _mm_add_epi32(t, _mm_alignr_epi8(w[(g - 1) & 3], w[(g - 2) & 3], 4));
                                w[g & 3] = _mm_sha256msg2_epu32(t, w[(g - 1) & 3]);
                        }
                        __m128i m =
                                _mm_add_epi32(w[g & 3], _mm_loadu_si128((const __m128i *)&sha256_k[4 * g]));
                        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, m);
                        m = _mm_shuffle_epi32(m, 0x0e);
                        abef = _mm_sha256rnds2_epu32(abef, cdgh, m);
                }
                abef = _mm_add_epi32(abef, abef0);
                cdgh = _mm_add_epi32(cdgh, cdgh0);
        }

        __m128i feba = _mm_shuffle_epi32(abef, 0x1b);
        __m128i dchg = _mm_shuffle_epi32(cdgh, 0xb1);
        _mm_storeu_si128((__m128i *)&h[0], _mm_blend_epi16(feba, dchg, 0xf0));
        _mm_storeu_si128((__m128i *)&h[4], _mm_alignr_epi8(dchg, feba, 8));
}

bool sha256_blocks_accel(uint32_t h[8], const uint8_t *p, size_t n) {
        if (!cpu_has_sha())
                return false;
        blocks(h, p, n);
        return true;
}

#else

bool sha256_blocks_accel(uint32_t h[8], const uint8_t *p, size_t n) {
        return false;
}

#endif
