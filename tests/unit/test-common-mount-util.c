/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>

#include "mount-util.h"
#include "test.h"

static void private_mount_namespace(void) {
        if (geteuid() != 0)
                return_skip("needs root to mount");
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return_skip("cannot make a private mount namespace");
}

static void write_text(const char *dir, const char *name, const char *text) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        ASSERT_OK(write_file_atomic(p, text, strlen(text), 0600));
}

static bool exists(const char *dir, const char *name) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        return access(p, F_OK) == 0;
}

/* Mount points at or below path, as /proc/self/mountinfo lists them. */
static int mounts_below(const char *path) {
        char base[PATH_MAX], line[8192], mp[PATH_MAX];
        int n = 0;
        ASSERT_TRUE(realpath(path, base));
        size_t bl = strlen(base);
        FILE *f = fopen("/proc/self/mountinfo", "re");
        ASSERT_TRUE(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strncmp(mp, base, bl) == 0 &&
                    (mp[bl] == 0 || mp[bl] == '/'))
                        n++;
        fclose(f);
        return n;
}

static int bind_rec(const char *src, const char *dst) {
        return mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0 ? -errno : 0;
}

/* What an interrupted runc restore leaves: <state>/<id>/criu-root, a recursive
 * bind mount of the rootfs, and in the work dir a tmpfs (the cgroup yard) with
 * mounts inside it; plus a mount stacked on another. */
TEST(umount_below_detaches_nested_mounts) {
        private_mount_namespace();
        const char *d = test_tmpdir(), *rootfs = test_tmpdir();
        char state[512], criu_root[600], yard[512], inner[600], stacked[600];

        write_text(rootfs, "precious", "do not delete");
        snprintf(state, sizeof(state), "%s/state/ctr", d);
        snprintf(criu_root, sizeof(criu_root), "%s/criu-root", state);
        snprintf(yard, sizeof(yard), "%s/work/.criu.cgyard.abc", d);
        snprintf(inner, sizeof(inner), "%s/cpu", yard);
        snprintf(stacked, sizeof(stacked), "%s/stacked", d);
        ASSERT_OK(mkdir_p(criu_root, 0700));
        ASSERT_OK(mkdir_p(yard, 0700));
        ASSERT_OK(mkdir_p(stacked, 0700));
        ASSERT_OK(bind_rec(rootfs, criu_root));
        ASSERT_OK(mount("none", yard, "tmpfs", 0, "size=1m") < 0 ? -errno : 0);
        ASSERT_OK(mkdir_p(inner, 0700));
        ASSERT_OK(bind_rec(rootfs, inner));
        ASSERT_OK(mount("none", stacked, "tmpfs", 0, "size=1m") < 0 ? -errno : 0);
        ASSERT_OK(mount("none", stacked, "tmpfs", 0, "size=1m") < 0 ? -errno : 0);
        ASSERT_EQ(mounts_below(d), 5);

        /* Only what is below the given path goes. */
        ASSERT_EQ(umount_below(state), 1);
        ASSERT_EQ(mounts_below(d), 4);
        ASSERT_EQ(umount_below(d), 4);
        ASSERT_EQ(mounts_below(d), 0);
        ASSERT_EQ(umount_below(d), 0);
        ASSERT_TRUE(exists(rootfs, "precious"));

        char gone[600];
        snprintf(gone, sizeof(gone), "%s/does-not-exist", d);
        ASSERT_EQ(umount_below(gone), 0);
}

TEST(remove_tree_one_fs_spares_mounted_files) {
        private_mount_namespace();
        const char *d = test_tmpdir(), *rootfs = test_tmpdir();
        char criu_root[512], yard[512], inner[600], sub[600];

        write_text(rootfs, "precious", "do not delete");
        snprintf(sub, sizeof(sub), "%s/bin", rootfs);
        ASSERT_OK(mkdir_p(sub, 0755));
        write_text(sub, "sh", "#!");
        snprintf(criu_root, sizeof(criu_root), "%s/runc/ctr/criu-root", d);
        snprintf(yard, sizeof(yard), "%s/work/.criu.cgyard.abc", d);
        snprintf(inner, sizeof(inner), "%s/rootfs", yard);
        ASSERT_OK(mkdir_p(criu_root, 0700));
        ASSERT_OK(mkdir_p(yard, 0700));
        ASSERT_OK(bind_rec(rootfs, criu_root));
        ASSERT_OK(mount("none", yard, "tmpfs", 0, "size=1m") < 0 ? -errno : 0);
        ASSERT_OK(mkdir_p(inner, 0700));
        ASSERT_OK(bind_rec(rootfs, inner));
        write_text(d, "state.json", "{}");

        ASSERT_OK(remove_tree_one_fs(d));
        ASSERT_FALSE(exists(d, ""));
        ASSERT_TRUE(exists(rootfs, "precious"));
        ASSERT_TRUE(exists(rootfs, "bin/sh"));
        ASSERT_OK(remove_tree_one_fs(d)); /* already gone: fine */
}

/* A symlink out of the tree is removed, never followed. */
TEST(remove_tree_one_fs_never_follows_symlinks) {
        const char *d = test_tmpdir();
        char sub[512];

        snprintf(sub, sizeof(sub), "%s/a/b", d);
        ASSERT_OK(mkdir_p(sub, 0700));
        write_text(sub, "f", "x");
        char link[512];
        snprintf(link, sizeof(link), "%s/a/up", d);
        ASSERT_OK(symlink("/", link) < 0 ? -errno : 0); /* never followed */
        ASSERT_OK(remove_tree_one_fs(d));
        ASSERT_FALSE(exists(d, ""));
        ASSERT_TRUE(access("/proc/self", F_OK) == 0);
}
