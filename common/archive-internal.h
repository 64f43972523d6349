/* SPDX-License-Identifier: Apache-2.0 */
/* What the tar reader (archive-read.c) and writer (archive-write.c) share. */
#pragma once

#include "archive.h"

/* The ustar header (POSIX.1-1988), 512 bytes. */
typedef struct TarHeader {
        char name[100];
        char mode[8];
        char uid[8];
        char gid[8];
        char size[12];
        char mtime[12];
        char chksum[8];
        char typeflag;
        char linkname[100];
        char magic[6];
        char version[2];
        char uname[32];
        char gname[32];
        char devmajor[8];
        char devminor[8];
        char prefix[155];
        char pad[12];
} TarHeader;
_Static_assert(sizeof(TarHeader) == ARCHIVE_BLOCK_SIZE, "tar header is one block");

#define COPY_BUF_SIZE ((size_t)128 * 1024)
/* Largest size the 11 octal digits of a ustar size field hold. */
#define USTAR_SIZE_MAX 077777777777ULL

static inline uint64_t pad_to_block(uint64_t n) {
        return (ARCHIVE_BLOCK_SIZE - n % ARCHIVE_BLOCK_SIZE) % ARCHIVE_BLOCK_SIZE;
}
