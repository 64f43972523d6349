/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "mount-util.h"
#include "util.h"

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape_octal(char *s) {
        char *w = s;
        for (char *p = s; *p; p++) {
                if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' && p[2] >= '0' && p[2] <= '7' &&
                    p[3] >= '0' && p[3] <= '7') {
                        *w++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 + (p[3] - '0'));
                        p += 3;
                } else
                        *w++ = *p;
        }
        *w = 0;
}

static bool path_at_or_below(const char *p, const char *base, size_t bl) {
        return strncmp(p, base, bl) == 0 && (p[bl] == 0 || p[bl] == '/');
}

int umount_below(const char *path) {
        char base[PATH_MAX];
        if (!realpath(path, base))
                return errno == ENOENT ? 0 : negative_errno();
        size_t bl = strlen(base);

        /* Repeat until no mount is left below: detaching a mount can reveal
         * one that was hidden under it. */
        int total = 0;
        for (int round = 0; round < 64; round++) {
                _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
                if (!f)
                        return negative_errno();
                char line[8192], best[PATH_MAX] = "";
                size_t best_len = 0;
                while (fgets(line, sizeof(line), f)) {
                        char mp[PATH_MAX];
                        /* id parent major:minor root mountpoint ... */
                        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1)
                                continue;
                        unescape_octal(mp);
                        size_t l = strlen(mp);
                        if (path_at_or_below(mp, base, bl) && l >= best_len) {
                                memcpy(best, mp, l + 1);
                                best_len = l;
                        }
                }
                if (best_len == 0)
                        return total;
                if (umount2(best, MNT_DETACH | UMOUNT_NOFOLLOW) < 0)
                        return negative_errno();
                total++;
        }
        return -ELOOP;
}

/* Deletes the contents of dir fd (not fd itself), staying on dev. */
/* NOLINTNEXTLINE(misc-no-recursion): depth bounded (256) */
static int rm_contents(int fd, dev_t dev, int depth) {
        if (depth > 256)
                return -ELOOP;
        DIR *d;
        int ret = dir_open_fd(fd, &d);
        if (ret < 0)
                return ret;
        struct dirent *de;
        while ((errno = 0, de = readdir_no_dot(d))) {
                struct stat st;
                if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                        if (errno != ENOENT && ret == 0)
                                ret = negative_errno();
                        continue;
                }
                if (st.st_dev != dev) {
                        ret = -EXDEV; /* a mount point we could not detach: leave it alone */
                        continue;
                }
                if (S_ISDIR(st.st_mode)) {
                        _cleanup_close_ int sub =
                                openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                        if (sub < 0) {
                                if (ret == 0)
                                        ret = negative_errno();
                                continue;
                        }
                        struct stat sst;
                        if (fstat(sub, &sst) < 0 || sst.st_dev != dev || sst.st_ino != st.st_ino) {
                                ret = -EXDEV;
                                continue;
                        }
                        int r = rm_contents(sub, dev, depth + 1);
                        if (r < 0 && ret == 0)
                                ret = r;
                        if (unlinkat(fd, de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT && ret == 0)
                                ret = negative_errno();
                } else if (unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT && ret == 0)
                        ret = negative_errno();
        }
        closedir(d);
        return ret;
}

int remove_tree_one_fs(const char *path) {
        int r = umount_below(path);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                if (errno == ENOTDIR || errno == ELOOP)
                        return unlink(path) < 0 ? negative_errno() : 0;
                return negative_errno();
        }
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        r = rm_contents(fd, st.st_dev, 0);
        if (r < 0)
                return r;
        if (rmdir(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}
