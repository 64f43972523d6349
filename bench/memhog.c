/* SPDX-License-Identifier: Apache-2.0 */
/* memhog [-r] MIB: touches MIB MiB of anonymous memory (every page written, with
 * a non-zero pattern so nothing is a zero page), then prints a counter once
 * a second, forever. The process the checkpoint benchmarks dump: its memory
 * stays resident and dirty, as a real workload's would. The pattern compresses
 * to almost nothing; with -r every byte is pseudo-random (xorshift64*), which
 * no compressor shrinks: the two ends for benchmarks of compressed images.
 *
 * Build it static (it runs in a busybox root filesystem):
 *   cc -static -O2 -o memhog bench/memhog.c */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The memory escapes through this, so no store to it can be optimized away. */
unsigned char *volatile memhog_keep;

int main(int argc, char **argv) {
        bool random = argc == 3 && strcmp(argv[1], "-r") == 0;
        if (argc != 2 && !random) {
                fprintf(stderr, "usage: %s [-r] MIB\n", argv[0]);
                return 2;
        }
        const char *arg = argv[argc - 1];
        char *end;
        errno = 0;
        unsigned long mib = strtoul(arg, &end, 10);
        if (errno || *end || end == arg || mib > (1ul << 20)) {
                fprintf(stderr, "memhog: invalid size '%s' (MiB, at most 1048576)\n", arg);
                return 2;
        }
        size_t size = (size_t)mib << 20;
        unsigned char *p = NULL;
        if (size > 0) {
                p = malloc(size);
                if (!p) {
                        fprintf(stderr, "memhog: cannot allocate %lu MiB\n", mib);
                        return 1;
                }
                if (random) {
                        uint64_t x = 0x9e3779b97f4a7c15ull;
                        for (size_t off = 0; off + sizeof(x) <= size; off += sizeof(x)) {
                                x ^= x >> 12;
                                x ^= x << 25;
                                x ^= x >> 27;
                                uint64_t v = x * 0x2545f4914f6cdd1dull;
                                memcpy(p + off, &v, sizeof(v));
                        }
                } else {
                        memset(p, 0x5a, size);
                        /* Distinct content per page (no two pages alike). */
                        for (size_t off = 0; off < size; off += 4096)
                                memcpy(p + off, &off, sizeof(off));
                }
                memhog_keep = p;
        }
        for (unsigned long i = 0;; i++) {
                printf("%lu\n", i);
                fflush(stdout);
                sleep(1);
        }
}
