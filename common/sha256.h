/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Plain FIPS 180-4 SHA-256, streaming: used for shim socket addresses and
 * checkpoint content checksums, so no crypto library is needed. */
typedef struct Sha256 {
        uint32_t h[8];
        uint64_t len;
        uint8_t buf[64];
        size_t used;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t len);
void sha256_final(Sha256 *s, uint8_t out[32]);
void sha256_to_hex(const uint8_t digest[32], char ret[static 65]);
