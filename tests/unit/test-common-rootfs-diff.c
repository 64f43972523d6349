/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "archive.h"
#include "rootfs-diff.h"
#include "test.h"

/* ---- helpers ---- */

static char *join(const char *base, const char *rel) {
        char *p;
        ASSERT_TRUE(asprintf(&p, "%s/%s", base, rel) >= 0);
        return p;
}

static void put(const char *base, const char *rel, const char *data) {
        _cleanup_free_ char *p = join(base, rel);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(write_all(fd, data, strlen(data)));
}

static void mk(const char *base, const char *rel) {
        _cleanup_free_ char *p = join(base, rel);
        ASSERT_OK(mkdir_p(p, 0755));
}

static char *slurp(const char *base, const char *rel) {
        _cleanup_free_ char *p = join(base, rel);
        char *data = NULL;
        if (read_full_file(p, 1 << 20, &data, NULL) < 0)
                return NULL;
        return data;
}

static bool exists(const char *base, const char *rel) {
        _cleanup_free_ char *p = join(base, rel);
        struct stat st;
        return lstat(p, &st) >= 0;
}

/* Mounts made in the test die with its private mount namespace. */
static void private_mounts(void) {
        if (geteuid() != 0)
                return_skip("needs root for overlay mounts");
        if (unshare(CLONE_NEWNS) < 0)
                return_skip("unshare(CLONE_NEWNS) failed");
        ASSERT_OK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
}

static void mount_overlay_opts(const char *t, const char *upper, const char *work, const char *merged,
                               const char *extra) {
        char opts[1024];
        snprintf(opts, sizeof(opts), "lowerdir=%s/lower,upperdir=%s/%s,workdir=%s/%s%s", t, t, upper, t,
                 work, extra);
        char m[512];
        snprintf(m, sizeof(m), "%s/%s", t, merged);
        if (mount("overlay", m, "overlay", 0, opts) < 0)
                return_skip("overlay mount failed");
}

static void mount_overlay(const char *t, const char *upper, const char *work, const char *merged) {
        mount_overlay_opts(t, upper, work, merged, "");
}

/* ---- mountinfo ---- */

TEST(find_overlay_in_mountinfo) {
        const char *mi = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
                         "90 22 0:50 / /run/b\\040x/rootfs rw,relatime - overlay overlay "
                         "rw,lowerdir=/l1:/l2,upperdir=/var/up\\054per\\040dir,workdir=/var/work,userxattr\n"
                         "91 22 0:51 / /run/plain rw - tmpfs tmpfs rw\n"
                         "92 22 0:52 / /run/ro rw - overlay overlay rw,lowerdir=/a:/b\n";
        RootfsOverlay o = {};
        ASSERT_EQ(rootfs_find_overlay(mi, "/run/b x/rootfs", &o), 1);
        ASSERT_STREQ(o.upperdir, "/var/up,per dir");
        ASSERT_TRUE(o.userxattr);
        ASSERT_STREQ(o.fstype, "overlay");
        ASSERT_EQ(rootfs_find_overlay(mi, "/run/plain", &o), 0);
        ASSERT_NULL(o.upperdir);
        ASSERT_STREQ(o.fstype, "tmpfs");
        ASSERT_EQ(rootfs_find_overlay(mi, "/run/ro", &o), 0); /* no upper directory */
        ASSERT_ERROR(rootfs_find_overlay(mi, "/nowhere", &o), ENOENT);
        ASSERT_ERROR(rootfs_find_overlay("garbage\n", "/", &o), EBADMSG);
        rootfs_overlay_done(&o);

        /* Stacked mounts: the last one is on top. */
        const char *stacked = "1 0 0:1 / /x rw - overlay o rw,upperdir=/u1,workdir=/w\n"
                              "2 1 0:2 / /x rw - tmpfs t rw\n";
        ASSERT_EQ(rootfs_find_overlay(stacked, "/x", &o), 0);
        ASSERT_STREQ(o.fstype, "tmpfs");
        rootfs_overlay_done(&o);
}

/* ---- a real overlay, captured and applied ---- */

TEST(capture_and_apply_real_overlay) {
        const char *t = test_tmpdir();
        private_mounts();
        mk(t, "lower/etc");
        mk(t, "lower/olddir/sub");
        mk(t, "lower/opq");
        mk(t, "lower/bin");
        put(t, "lower/etc/motd", "hello\n");
        put(t, "lower/etc/keep", "kept\n");
        put(t, "lower/old", "to be deleted\n");
        put(t, "lower/olddir/sub/f", "x");
        put(t, "lower/opq/a.txt", "hidden by the opaque dir\n");
        put(t, "lower/bin/tool", "tool v1\n");
        for (const char *d = "upper\0work\0merged\0upper2\0work2\0merged2\0ckpt\0"; *d; d += strlen(d) + 1)
                mk(t, d);
        mount_overlay(t, "upper", "work", "merged");

        char m[512], p[1024], q[1024];
        snprintf(m, sizeof(m), "%s/merged", t);
        /* The container's changes. */
        mk(m, "data/new/nested");
        put(m, "data/new/nested/file.txt", "nested content\n");
        put(m, "etc/motd", "hello, modified\n");
        snprintf(p, sizeof(p), "%s/old", m);
        ASSERT_OK(unlink(p));
        snprintf(p, sizeof(p), "%s/olddir/sub/f", m);
        ASSERT_OK(unlink(p));
        snprintf(p, sizeof(p), "%s/olddir/sub", m);
        ASSERT_OK(rmdir(p));
        snprintf(p, sizeof(p), "%s/olddir", m);
        ASSERT_OK(rmdir(p));
        snprintf(p, sizeof(p), "%s/opq/a.txt", m);
        ASSERT_OK(unlink(p));
        snprintf(p, sizeof(p), "%s/opq", m);
        ASSERT_OK(rmdir(p));
        ASSERT_OK(mkdir(p, 0750)); /* overlay makes it opaque */
        put(m, "opq/b.txt", "new in opaque\n");
        snprintf(p, sizeof(p), "%s/link", m);
        ASSERT_OK(symlink("/etc/motd", p));
        snprintf(p, sizeof(p), "%s/data/new/rel", m);
        ASSERT_OK(symlink("../../etc/keep", p));
        put(m, "bin/tool", "tool v2\n");
        snprintf(p, sizeof(p), "%s/bin/tool", m);
        ASSERT_OK(chown(p, 1234, 5678));
        ASSERT_OK(chmod(p, 04755));
        struct timespec ts[2] = {{.tv_sec = 1000000000}, {.tv_sec = 1000000000}};
        ASSERT_OK(utimensat(AT_FDCWD, p, ts, 0));

        /* Capture, as the daemon does, from the mountinfo entry. */
        _cleanup_free_ char *mi = NULL;
        ASSERT_OK(read_full_file("/proc/self/mountinfo", 16 << 20, &mi, NULL));
        RootfsOverlay o = {};
        ASSERT_EQ(rootfs_find_overlay(mi, m, &o), 1);
        snprintf(p, sizeof(p), "%s/upper", t);
        ASSERT_STREQ(o.upperdir, p);
        snprintf(q, sizeof(q), "%s/ckpt", t);
        RootfsDiffStats stats = {};
        ASSERT_OK(rootfs_diff_capture(o.upperdir, o.userxattr, m, q, &stats));
        ASSERT_EQ(stats.deleted, 3); /* old, olddir, opq */
        ASSERT_TRUE(stats.entries >= 9);
        ASSERT_EQ(stats.skipped, 0);
        rootfs_overlay_done(&o);
        /* Capturing twice into the same place is refused, not merged. */
        ASSERT_ERROR(rootfs_diff_capture(p, false, m, q, NULL), EEXIST);

        _cleanup_free_ char *del = slurp(q, "deleted.files");
        ASSERT_NOT_NULL(del);
        ASSERT_STREQ(del, "[\"/old\",\"/olddir\",\"/opq\"]");

        /* The archive: the whole writable layer and nothing else. */
        ASSERT_TRUE(exists(q, "rootfs-diff.tar"));

        /* Apply onto a fresh overlay of the same image. */
        mount_overlay(t, "upper2", "work2", "merged2");
        char m2[512];
        snprintf(m2, sizeof(m2), "%s/merged2", t);
        char err[512];
        int r = rootfs_diff_apply_msg(q, m2, err, sizeof(err));
        if (r < 0)
                test_fail(__FILE__, __LINE__, "apply: %s", err);

        _cleanup_free_ char *s1 = slurp(m2, "data/new/nested/file.txt"), *s2 = slurp(m2, "etc/motd"),
                            *s3 = slurp(m2, "etc/keep"), *s4 = slurp(m2, "opq/b.txt"),
                            *s5 = slurp(m2, "bin/tool");
        ASSERT_STREQ(s1, "nested content\n");
        ASSERT_STREQ(s2, "hello, modified\n");
        ASSERT_STREQ(s3, "kept\n");
        ASSERT_STREQ(s4, "new in opaque\n");
        ASSERT_STREQ(s5, "tool v2\n");
        ASSERT_FALSE(exists(m2, "old"));
        ASSERT_FALSE(exists(m2, "olddir"));
        ASSERT_FALSE(exists(m2, "opq/a.txt"));

        char target[256];
        snprintf(p, sizeof(p), "%s/link", m2);
        ssize_t k = readlink(p, target, sizeof(target) - 1);
        ASSERT_TRUE(k > 0);
        target[k] = 0;
        ASSERT_STREQ(target, "/etc/motd");
        snprintf(p, sizeof(p), "%s/data/new/rel", m2);
        k = readlink(p, target, sizeof(target) - 1);
        ASSERT_TRUE(k > 0);
        target[k] = 0;
        ASSERT_STREQ(target, "../../etc/keep");

        struct stat st;
        snprintf(p, sizeof(p), "%s/bin/tool", m2);
        ASSERT_OK(lstat(p, &st));
        ASSERT_EQ(st.st_uid, 1234);
        ASSERT_EQ(st.st_gid, 5678);
        ASSERT_EQ(st.st_mode & 07777, 04755);
        ASSERT_EQ(st.st_mtim.tv_sec, 1000000000);
        snprintf(p, sizeof(p), "%s/opq", m2);
        ASSERT_OK(lstat(p, &st));
        ASSERT_EQ(st.st_mode & 07777, 0750);

        /* Applying again (a second restore of the same checkpoint into the
         * same rootfs) converges to the same state. */
        ASSERT_OK(rootfs_diff_apply(q, m2));
        _cleanup_free_ char *s6 = slurp(m2, "etc/motd");
        ASSERT_STREQ(s6, "hello, modified\n");
}

/* A directory renamed in the container (overlay keeps a redirect to its
 * lower name) and a file whose mode alone changed (metacopy: only its
 * metadata in the upper layer): both are saved with their content, which
 * the capture reads from the merged rootfs. */
TEST(capture_redirect_and_metacopy) {
        const char *t = test_tmpdir();
        private_mounts();
        mk(t, "lower/dir");
        put(t, "lower/dir/a.txt", "in the renamed dir\n");
        put(t, "lower/big", "data below\n");
        for (const char *d = "upper\0work\0merged\0upper2\0work2\0merged2\0ckpt\0"; *d; d += strlen(d) + 1)
                mk(t, d);
        mount_overlay_opts(t, "upper", "work", "merged", ",redirect_dir=on,metacopy=on");

        char m[512], p[1024], q[1024];
        snprintf(m, sizeof(m), "%s/merged", t);
        snprintf(p, sizeof(p), "%s/dir", m);
        snprintf(q, sizeof(q), "%s/moved", m);
        ASSERT_OK(rename(p, q));
        snprintf(p, sizeof(p), "%s/big", m);
        ASSERT_OK(chmod(p, 0600));
        char val[256];
        snprintf(p, sizeof(p), "%s/upper/moved", t);
        snprintf(q, sizeof(q), "%s/upper/big", t);
        if (getxattr(p, "trusted.overlay.redirect", val, sizeof(val)) < 0 ||
            getxattr(q, "trusted.overlay.metacopy", val, sizeof(val)) < 0)
                return_skip("this kernel's overlay made no redirect or metacopy");

        snprintf(p, sizeof(p), "%s/upper", t);
        snprintf(q, sizeof(q), "%s/ckpt", t);
        RootfsDiffStats stats = {};
        ASSERT_OK(rootfs_diff_capture(p, false, m, q, &stats));
        /* Without the merged rootfs the content cannot be found. */
        snprintf(m, sizeof(m), "%s/nowhere", t);
        snprintf(p, sizeof(p), "%s/ckpt2", t);
        mk(t, "ckpt2");
        snprintf(q, sizeof(q), "%s/upper", t);
        ASSERT_ERROR(rootfs_diff_capture(q, false, m, p, NULL), ENOTSUP);

        snprintf(q, sizeof(q), "%s/ckpt", t);
        mount_overlay(t, "upper2", "work2", "merged2");
        char m2[512], err[512];
        snprintf(m2, sizeof(m2), "%s/merged2", t);
        if (rootfs_diff_apply_msg(q, m2, err, sizeof(err)) < 0)
                test_fail(__FILE__, __LINE__, "apply: %s", err);
        _cleanup_free_ char *s1 = slurp(m2, "moved/a.txt"), *s2 = slurp(m2, "big");
        ASSERT_STREQ(s1, "in the renamed dir\n");
        ASSERT_STREQ(s2, "data below\n");
        ASSERT_FALSE(exists(m2, "dir"));
        struct stat st;
        snprintf(p, sizeof(p), "%s/big", m2);
        ASSERT_OK(lstat(p, &st));
        ASSERT_EQ(st.st_mode & 07777, 0600);
}

TEST(no_diff_files_is_nothing_to_do) {
        const char *t = test_tmpdir();
        mk(t, "ckpt");
        mk(t, "root");
        char c[512], r[512];
        snprintf(c, sizeof(c), "%s/ckpt", t);
        snprintf(r, sizeof(r), "%s/root", t);
        ASSERT_OK(rootfs_diff_apply(c, r));
        ASSERT_ERROR(rootfs_diff_apply(c, "/nonexistent-rootfs"), ENOENT);
}

/* ---- hostile input ---- */

typedef struct RawEntry {
        const char *name;
        char type;
        const char *link;
        const char *data;
} RawEntry;

static void put_octal(char *f, size_t len, unsigned long long v) {
        f[len - 1] = 0;
        for (size_t i = len - 1; i > 0; i--, v >>= 3)
                f[i - 1] = (char)('0' + (v & 7));
}

/* A tar written by hand: the writer would refuse these names. */
static void write_raw_tar(const char *path, const RawEntry *entries, size_t n) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        for (size_t i = 0; i < n; i++) {
                char h[512] = {};
                size_t size = entries[i].data ? strlen(entries[i].data) : 0;
                memcpy(h, entries[i].name, strlen(entries[i].name));
                put_octal(h + 100, 8, 0644);
                put_octal(h + 108, 8, getuid());
                put_octal(h + 116, 8, getgid());
                put_octal(h + 124, 12, size);
                put_octal(h + 136, 12, 1000);
                h[156] = entries[i].type;
                if (entries[i].link)
                        memcpy(h + 157, entries[i].link, strlen(entries[i].link));
                memcpy(h + 257,
                       "ustar\0"
                       "00",
                       8);
                memset(h + 148, ' ', 8);
                unsigned sum = 0;
                for (size_t k = 0; k < 512; k++)
                        sum += (unsigned char)h[k];
                snprintf(h + 148, 8, "%06o", sum);
                ASSERT_OK(write_all(fd, h, 512));
                if (size > 0) {
                        char block[512] = {};
                        memcpy(block, entries[i].data, size);
                        ASSERT_OK(write_all(fd, block, 512));
                }
        }
        char zero[1024] = {};
        ASSERT_OK(write_all(fd, zero, sizeof(zero)));
}

typedef struct Hostile {
        const char *t;
        char ckpt[128], root[128], outside[128];
} Hostile;

static void hostile_setup(Hostile *h) {
        h->t = test_tmpdir();
        snprintf(h->ckpt, sizeof(h->ckpt), "%s/ckpt", h->t);
        snprintf(h->root, sizeof(h->root), "%s/root", h->t);
        snprintf(h->outside, sizeof(h->outside), "%s/outside", h->t);
        mk(h->t, "ckpt");
        mk(h->t, "root/etc");
        mk(h->t, "outside");
        put(h->outside, "victim", "precious\n");
        put(h->root, "etc/keep", "kept\n");
}

/* Nothing outside the rootfs was touched: the victim is there, nothing new. */
static void assert_outside_intact(const Hostile *h) {
        _cleanup_free_ char *v = slurp(h->outside, "victim");
        ASSERT_STREQ(v, "precious\n");
        DIR *d = opendir(h->outside);
        ASSERT_NOT_NULL(d);
        struct dirent *de;
        int n = 0;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        ASSERT_EQ(n, 1);
        ASSERT_FALSE(exists(h->t, "evil"));
        ASSERT_FALSE(exists("/", "evil-kybernate-test"));
}

static int apply_tar(const Hostile *h, const RawEntry *e, size_t n) {
        char p[256];
        snprintf(p, sizeof(p), "%s/rootfs-diff.tar", h->ckpt);
        write_raw_tar(p, e, n);
        return rootfs_diff_apply(h->ckpt, h->root);
}

TEST(hostile_absolute_and_dotdot_paths) {
        Hostile h = {};
        hostile_setup(&h);
        const RawEntry abs[] = {{"ok", '0', NULL, "fine"}, {"/evil-kybernate-test", '0', NULL, "x"}};
        ASSERT_ERROR(apply_tar(&h, abs, ELEMENTSOF(abs)), EPERM);
        ASSERT_FALSE(exists(h.root, "ok")); /* validated before anything is written */
        const RawEntry dotdot[] = {{"../evil", '0', NULL, "x"}};
        ASSERT_ERROR(apply_tar(&h, dotdot, ELEMENTSOF(dotdot)), EPERM);
        const RawEntry deep[] = {{"etc/../../outside/victim", '0', NULL, "owned"}};
        ASSERT_ERROR(apply_tar(&h, deep, ELEMENTSOF(deep)), EPERM);
        assert_outside_intact(&h);
}

TEST(hostile_symlink_then_file_through_it) {
        Hostile h = {};
        hostile_setup(&h);
        const RawEntry viaabs[] = {{"s", '2', h.outside, NULL}, {"s/pwned", '0', NULL, "x"}};
        ASSERT_ERROR(apply_tar(&h, viaabs, ELEMENTSOF(viaabs)), EPERM);
        const RawEntry viarel[] = {{"r", '2', "../outside", NULL}, {"r/victim", '0', NULL, "owned"}};
        ASSERT_ERROR(apply_tar(&h, viarel, ELEMENTSOF(viarel)), EPERM);
        /* A symlink to a directory, then a directory entry through it. */
        const RawEntry dir[] = {{"d", '2', "/", NULL}, {"d/tmp/", '5', NULL, NULL}};
        ASSERT_ERROR(apply_tar(&h, dir, ELEMENTSOF(dir)), EPERM);
        /* A symlink that was in the image already. */
        char p[256];
        snprintf(p, sizeof(p), "%s/imglink", h.root);
        ASSERT_OK(symlink(h.outside, p));
        const RawEntry img[] = {{"imglink/victim", '0', NULL, "owned"}};
        ASSERT_ERROR(apply_tar(&h, img, ELEMENTSOF(img)), EPERM);
        /* A symlink replaced by a file is fine: the link itself goes, not its target. */
        const RawEntry replace[] = {{"imglink", '0', NULL, "now a file"}};
        ASSERT_OK(apply_tar(&h, replace, ELEMENTSOF(replace)));
        _cleanup_free_ char *s = slurp(h.root, "imglink");
        ASSERT_STREQ(s, "now a file");
        assert_outside_intact(&h);
}

TEST(hostile_devices_fifos) {
        Hostile h = {};
        hostile_setup(&h);
        const RawEntry dev[] = {{"null", '3', NULL, NULL}};
        ASSERT_ERROR(apply_tar(&h, dev, ELEMENTSOF(dev)), ENOTSUP);
        const RawEntry fifo[] = {{"fifo", '6', NULL, NULL}};
        ASSERT_ERROR(apply_tar(&h, fifo, ELEMENTSOF(fifo)), ENOTSUP);
        ASSERT_FALSE(exists(h.root, "null"));
        ASSERT_FALSE(exists(h.root, "fifo"));
        assert_outside_intact(&h);
}

TEST(hardlinks_stay_inside) {
        Hostile h = {};
        hostile_setup(&h);
        char target[256];
        snprintf(target, sizeof(target), "%s/victim", h.outside);
        const RawEntry abs[] = {{"hl", '1', target, NULL}};
        ASSERT_ERROR(apply_tar(&h, abs, ELEMENTSOF(abs)), EPERM);
        const RawEntry dotdot[] = {{"hl", '1', "../outside/victim", NULL}};
        ASSERT_ERROR(apply_tar(&h, dotdot, ELEMENTSOF(dotdot)), EPERM);
        /* Through a symlink of the archive, or of the image. */
        const RawEntry via[] = {{"s", '2', h.outside, NULL}, {"hl", '1', "s/victim", NULL}};
        ASSERT_ERROR(apply_tar(&h, via, ELEMENTSOF(via)), EPERM);
        /* To a symlink (whose target is outside): refused, not linked. */
        const RawEntry tolink[] = {{"s2", '2', target, NULL}, {"hl", '1', "s2", NULL}};
        ASSERT_ERROR(apply_tar(&h, tolink, ELEMENTSOF(tolink)), EPERM);
        ASSERT_FALSE(exists(h.root, "hl"));
        /* Inside: one inode, two names. */
        const RawEntry ok[] = {
                {"f", '0', NULL, "shared"}, {"etc/hl", '1', "f", NULL}, {"etc/keep", '1', "./f", NULL}};
        ASSERT_OK(apply_tar(&h, ok, ELEMENTSOF(ok)));
        struct stat a, b, c;
        _cleanup_free_ char *pf = join(h.root, "f"), *ph = join(h.root, "etc/hl"),
                            *pk = join(h.root, "etc/keep");
        ASSERT_OK(lstat(pf, &a));
        ASSERT_OK(lstat(ph, &b));
        ASSERT_OK(lstat(pk, &c));
        ASSERT_EQ(a.st_ino, b.st_ino);
        ASSERT_EQ(a.st_ino, c.st_ino);
        ASSERT_EQ(a.st_nlink, 3);
        assert_outside_intact(&h);
}

static int apply_deleted(const Hostile *h, const char *json) {
        put(h->ckpt, "deleted.files", json);
        return rootfs_diff_apply(h->ckpt, h->root);
}

TEST(hostile_deleted_files) {
        Hostile h = {};
        hostile_setup(&h);
        ASSERT_ERROR(apply_deleted(&h, "[\"/etc/keep\", \"/../outside/victim\"]"), EPERM);
        ASSERT_TRUE(exists(h.root, "etc/keep")); /* checked before anything is removed */
        ASSERT_ERROR(apply_deleted(&h, "[\"/etc/../../outside\"]"), EPERM);
        ASSERT_ERROR(apply_deleted(&h, "[\"/\"]"), EPERM);
        ASSERT_ERROR(apply_deleted(&h, "[\"a\\nb\"]"), EINVAL);
        ASSERT_ERROR(apply_deleted(&h, "{\"x\": 1}"), EBADMSG);
        ASSERT_ERROR(apply_deleted(&h, "[1]"), EBADMSG);
        ASSERT_ERROR(apply_deleted(&h, "not json"), EBADMSG);
        char p[256];
        snprintf(p, sizeof(p), "%s/lnk", h.root);
        ASSERT_OK(symlink(h.outside, p));
        ASSERT_ERROR(apply_deleted(&h, "[\"/lnk/victim\"]"), EPERM);
        /* Deleting the symlink itself removes the link, not its target. */
        ASSERT_OK(apply_deleted(&h, "[\"/lnk\", \"/missing/path\", \"/etc/keep\"]"));
        ASSERT_FALSE(exists(h.root, "lnk"));
        ASSERT_FALSE(exists(h.root, "etc/keep"));
        ASSERT_FALSE(exists(h.root, "missing"));
        assert_outside_intact(&h);
}

TEST(import_refuses_links_still) {
        /* kybernatectl import's reader (no allow_symlinks) keeps refusing links. */
        char p[64];
        snprintf(p, sizeof(p), "%s/a.tar", test_tmpdir());
        const RawEntry e[] = {{"s", '2', "/etc", NULL}, {"h", '1', "s", NULL}};
        write_raw_tar(p, e, 1);
        _cleanup_close_ int in = open(p, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(in >= 0);
        ASSERT_ERROR(archive_read(in, NULL, NULL, NULL), ENOTSUP);
        ASSERT_OK(lseek(in, 0, SEEK_SET));
        ArchiveLimits allow = {.allow_symlinks = true};
        ASSERT_EQ(archive_read(in, &allow, NULL, NULL), 1);
        write_raw_tar(p, e + 1, 1);
        _cleanup_close_ int in2 = open(p, O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(in2 >= 0);
        ASSERT_ERROR(archive_read(in2, &allow, NULL, NULL), ENOTSUP);
        ASSERT_OK(lseek(in2, 0, SEEK_SET));
        allow.allow_hardlinks = true;
        ASSERT_EQ(archive_read(in2, &allow, NULL, NULL), 1);
}

/* containerd 2.x writes rootfs-diff.tar gzip-compressed (kubelet's checkpoint
 * archive): applied the same, and refused the same. */
TEST(gzip_compressed_diff) {
        Hostile h = {};
        hostile_setup(&h);
        char p[256], cmd[1200];
        snprintf(p, sizeof(p), "%s/rootfs-diff.tar", h.ckpt);
        const RawEntry ok[] = {{"etc/new", '0', NULL, "from the checkpoint\n"}};
        write_raw_tar(p, ok, ELEMENTSOF(ok));
        snprintf(cmd, sizeof(cmd), "gzip -n < '%s' > '%s.gz' && mv '%s.gz' '%s'", p, p, p, p);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_OK(rootfs_diff_apply(h.ckpt, h.root));
        _cleanup_free_ char *s = slurp(h.root, "etc/new");
        ASSERT_STREQ(s, "from the checkpoint\n");

        const RawEntry bad[] = {{"ok2", '0', NULL, "fine"}, {"../evil", '0', NULL, "x"}};
        write_raw_tar(p, bad, ELEMENTSOF(bad));
        snprintf(cmd, sizeof(cmd), "zstd -q -f --rm '%s' -o '%s.zst' && mv '%s.zst' '%s'", p, p, p, p);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_ERROR(rootfs_diff_apply(h.ckpt, h.root), EPERM);
        ASSERT_FALSE(exists(h.root, "ok2")); /* validated before anything is written */

        /* Cut short: refused, nothing written. */
        write_raw_tar(p, ok, ELEMENTSOF(ok));
        snprintf(cmd, sizeof(cmd), "gzip -n < '%s' | head -c 40 > '%s.gz' && mv '%s.gz' '%s'", p, p, p, p);
        ASSERT_EQ(system(cmd), 0);
        ASSERT_TRUE(rootfs_diff_apply(h.ckpt, h.root) < 0);
        assert_outside_intact(&h);
}
