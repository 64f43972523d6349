/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for rootfs_diff_apply(): the input is a deleted.files list
 * (its length in the first two bytes) and a rootfs-diff.tar (the rest),
 * applied to a scratch rootfs holding symlinks that point out of it. Nothing
 * may ever appear in, or vanish from, the directory beside the rootfs. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "rootfs-diff.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[64], ckpt[96], root[96], outside[96];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (ftw->level == 0)
                return 0;
        return remove(path) < 0 ? -1 : 0;
}

static void empty_dir(const char *dir) {
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void remove_all(void) {
        empty_dir(scratch);
        (void)rmdir(scratch);
}

static void put(const char *dir, const char *name, const void *buf, size_t n) {
        char p[160];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write_all(fd, buf, n) < 0)
                abort();
        close(fd);
}

/* outside/ must hold exactly its sentinel, unchanged. */
static void check_outside(void) {
        DIR *d = opendir(outside);
        if (!d)
                abort();
        struct dirent *de;
        int n = 0;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        char p[160];
        snprintf(p, sizeof(p), "%s/sentinel", outside);
        _cleanup_free_ char *s = NULL;
        if (n != 1 || read_full_file(p, 64, &s, NULL) < 0 || !streq(s, "keep"))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!scratch[0]) {
                snprintf(scratch, sizeof(scratch), "/tmp/fuzz-rootfs-XXXXXX");
                if (!mkdtemp(scratch))
                        abort();
                snprintf(ckpt, sizeof(ckpt), "%s/ckpt", scratch);
                snprintf(root, sizeof(root), "%s/root", scratch);
                snprintf(outside, sizeof(outside), "%s/outside", scratch);
                if (mkdir(ckpt, 0700) < 0 || mkdir(root, 0755) < 0 || mkdir(outside, 0700) < 0)
                        abort();
                put(outside, "sentinel", "keep", 4);
                atexit(remove_all);
        }
        empty_dir(ckpt);
        empty_dir(root);
        char p[160];
        snprintf(p, sizeof(p), "%s/up", root);
        if (symlink("../outside", p) < 0)
                abort();
        snprintf(p, sizeof(p), "%s/abs", root);
        if (symlink(outside, p) < 0)
                abort();
        snprintf(p, sizeof(p), "%s/abs-dir", root);
        if (mkdir(p, 0755) < 0)
                abort();

        if (size >= 2) {
                size_t n = MIN((size_t)(data[0] | data[1] << 8), size - 2);
                if (n > 0)
                        put(ckpt, "deleted.files", data + 2, n);
                put(ckpt, "rootfs-diff.tar", data + 2 + n, size - 2 - n);
        }
        (void)rootfs_diff_apply(ckpt, root);
        check_outside();
        return 0;
}
