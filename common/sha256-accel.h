/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Hardware SHA-256 (x86 SHA extensions), used by sha256.c when the CPU has
 * them: several times faster than the portable code, which matters for
 * checksumming gigabytes of checkpoint images. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The 64 round constants (FIPS 180-4, 4.2.2), defined in sha256.c. */
extern const uint32_t sha256_k[64];

/* Processes n 64-byte blocks into state h. Returns false (and does nothing)
 * when the CPU lacks the instructions. */
bool sha256_blocks_accel(uint32_t h[8], const uint8_t *p, size_t n);
