/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the tar reader: the input is an archive, read once
 * through the dense view of every entry (sparse holes as zeros), then
 * extracted into a scratch directory that is emptied after every run. Nothing
 * may be created outside it, whatever the input. Seeds: fuzz/corpus/archive
 * (GNU sparse pax 1.0 entries among them). */
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (ftw->level == 0)
                return 0;
        return remove(path) < 0 ? -1 : 0;
}

static char scratch[64];

/* Reads the entry as archive_reader_read() gives it, up to 4 MiB (a sparse
 * entry may claim a huge real size): the bytes must never exceed it. */
static int read_entry(ArchiveReader *rd, const ArchiveEntry *e, void *userdata) {
        static uint8_t buf[64 * 1024];
        uint64_t got = 0;
        if (e->data_bytes > e->size)
                abort();
        while (got < 4U << 20) {
                ssize_t k = archive_reader_read(rd, buf, sizeof(buf));
                if (k < 0)
                        return (int)k;
                if (k == 0)
                        break;
                got += (uint64_t)k;
                if (got > e->size)
                        abort();
        }
        return 0;
}

static void scratch_remove(void) {
        (void)rmdir(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!scratch[0]) {
                snprintf(scratch, sizeof(scratch), "/tmp/fuzz-archive-XXXXXX");
                if (!mkdtemp(scratch))
                        abort();
                atexit(scratch_remove);
        }

        int in = memfd_create("fuzz-archive", MFD_CLOEXEC);
        if (in < 0)
                abort();
        if (write_all(in, data, size) < 0 || lseek(in, 0, SEEK_SET) < 0)
                abort();

        /* Parse only, then extract (with small limits to keep runs fast). */
        ArchiveLimits limits = {.max_entries = 64, .max_total_bytes = 1 << 20};
        (void)archive_read(in, &limits, read_entry, NULL);
        if (lseek(in, 0, SEEK_SET) < 0)
                abort();
        int dfd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                abort();
        (void)archive_extract(in, dfd, &limits, false);
        close(dfd);
        close(in);
        (void)nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        return 0;
}
