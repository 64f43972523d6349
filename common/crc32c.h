/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* CRC-32C (Castagnoli polynomial, reflected, as iSCSI, ext4 and btrfs use it),
 * with the SSE 4.2 crc32 instruction when the CPU has it. Checkpoint content
 * checksums are built from it (kybernated/store.c): at several GB/s it costs a
 * fraction of what CRIU spends writing or reading the same bytes. */

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of n bytes, continuing from crc (0 to start):
 * crc32c(crc32c(0, a, na), b, nb) == crc32c(0, ab, na + nb). */
uint32_t crc32c(uint32_t crc, const void *p, size_t n);

/* The same without the instruction (what other CPUs get; for tests). */
uint32_t crc32c_portable(uint32_t crc, const void *p, size_t n);

/* The CRC-32C of each of four n-byte buffers at once (ret[i] = crc32c(0, p[i], n)),
 * interleaved so the instruction's latency is hidden: about three times the
 * speed of four crc32c() calls. */
void crc32c_x4(const uint8_t *const p[4], size_t n, uint32_t ret[4]);
