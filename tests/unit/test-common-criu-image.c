/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "criu-image.h"
#include "criu/images.pb-c.h"
#include "test.h"

/* Builds images in memory with the generated encoders, as CRIU would write them. */

static void add_pstree(char **buf, size_t *size, uint32_t pid, uint32_t ppid, const uint32_t *threads,
                       size_t n_threads) {
        Criu__PstreeEntry e = CRIU__PSTREE_ENTRY__INIT;
        e.has_pid = e.has_ppid = e.has_pgid = e.has_sid = true;
        e.pid = pid;
        e.ppid = ppid;
        e.pgid = pid;
        e.sid = 1;
        e.threads = (uint32_t *)threads;
        e.n_threads = n_threads;
        uint8_t tmp[4096];
        size_t len = criu__pstree_entry__pack(&e, tmp);
        ASSERT_OK(criu_image_append_entry(buf, size, tmp, len));
}

static void make_core(char **buf, size_t *size, const char *comm) {
        Criu__CoreEntry c = CRIU__CORE_ENTRY__INIT;
        Criu__TaskCoreEntry tc = CRIU__TASK_CORE_ENTRY__INIT;
        c.has_mtype = true;
        c.mtype = 1;
        tc.comm = (char *)comm;
        tc.has_task_state = true;
        tc.task_state = 1;
        c.tc = &tc;
        uint8_t tmp[4096];
        size_t len = criu__core_entry__pack(&c, tmp);
        ASSERT_OK(criu_image_append_header(buf, size, CRIU_IMAGE_COMMON, CRIU_CORE_MAGIC));
        ASSERT_OK(criu_image_append_entry(buf, size, tmp, len));
}

static void write_at(int dfd, const char *name, const void *buf, size_t size) {
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(write_all(fd, buf, size));
}

TEST(magic_values) {
        /* The numbers in CRIU's criu/include/magic.h. */
        ASSERT_EQ(CRIU_IMG_COMMON_MAGIC, 0x54564319);
        ASSERT_EQ(CRIU_IMG_SERVICE_MAGIC, 0x55105940);
        ASSERT_EQ(CRIU_PSTREE_MAGIC, 0x50273030);
        ASSERT_EQ(CRIU_CORE_MAGIC, 0x55053847);
        ASSERT_EQ(CRIU_INVENTORY_MAGIC, 0x58313116);
        ASSERT_EQ(CRIU_STATS_MAGIC, 0x57093306);
}

TEST(pstree_roundtrip) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        uint32_t th1[] = {1}, th2[] = {7, 8, 9};

        ASSERT_OK(criu_image_append_header(&buf, &size, CRIU_IMAGE_COMMON, CRIU_PSTREE_MAGIC));
        /* Header bytes are little-endian. */
        ASSERT_EQ((uint8_t)buf[0], 0x19);
        ASSERT_EQ((uint8_t)buf[3], 0x54);
        add_pstree(&buf, &size, 1, 0, th1, 1);
        add_pstree(&buf, &size, 7, 1, th2, 3);
        add_pstree(&buf, &size, 12, 7, NULL, 0);
        add_pstree(&buf, &size, 13, 1, NULL, 0);

        _cleanup_criu_tree_ CriuTree *t = NULL;
        ASSERT_OK(criu_pstree_parse(buf, size, &t));
        ASSERT_EQ(t->n_procs, 4);
        ASSERT_EQ(t->procs[0].pid, 1);
        ASSERT_EQ(t->procs[0].ppid, 0);
        ASSERT_EQ(t->procs[0].depth, 0);
        ASSERT_EQ(t->procs[1].pid, 7);
        ASSERT_EQ(t->procs[1].n_threads, 3);
        ASSERT_EQ(t->procs[1].threads[2], 9);
        ASSERT_EQ(t->procs[1].parent, 0);
        ASSERT_EQ(t->procs[2].depth, 2);
        ASSERT_EQ(t->procs[2].parent, 1);
        ASSERT_EQ(t->procs[3].depth, 1);
        ASSERT_EQ(t->procs[1].pgid, 7);
        ASSERT_EQ(t->procs[1].sid, 1);
        ASSERT_NULL(t->procs[0].comm);
}

TEST(pstree_bad_trees) {
        struct {
                uint32_t pid, ppid;
        } cases[][3] = {
                {{1, 5}, {0, 0}, {0, 0}}, /* root with a parent */
                {{1, 0}, {2, 9}, {0, 0}}, /* unknown parent */
                {{1, 0}, {1, 1}, {0, 0}}, /* duplicate pid */
                {{1, 0}, {2, 3}, {3, 1}}, /* child before parent */
                {{1, 0}, {2, 0}, {0, 0}}, /* two roots */
                {{0, 0}, {0, 0}, {0, 0}}, /* pid 0 */
        };
        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                _cleanup_free_ char *buf = NULL;
                size_t size = 0;
                ASSERT_OK(criu_image_append_header(&buf, &size, CRIU_IMAGE_COMMON, CRIU_PSTREE_MAGIC));
                for (size_t i = 0; i < 3; i++) {
                        if (i > 0 && cases[c][i].pid == 0)
                                break;
                        add_pstree(&buf, &size, cases[c][i].pid, cases[c][i].ppid, NULL, 0);
                }
                CriuTree *t = NULL;
                ASSERT_ERROR(criu_pstree_parse(buf, size, &t), EBADMSG);
                ASSERT_NULL(t);
        }
}

TEST(pstree_empty_and_truncated) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        CriuTree *t = NULL;

        ASSERT_ERROR(criu_pstree_parse("", 0, &t), EBADMSG);
        ASSERT_OK(criu_image_append_header(&buf, &size, CRIU_IMAGE_COMMON, CRIU_PSTREE_MAGIC));
        ASSERT_ERROR(criu_pstree_parse(buf, size, &t), EBADMSG); /* no entries: no root */
        add_pstree(&buf, &size, 1, 0, NULL, 0);
        ASSERT_OK(criu_pstree_parse(buf, size, &t));
        t = criu_tree_free(t);
        /* Every truncation of the file is refused, never read past. */
        for (size_t cut = 0; cut < size; cut++) {
                int r = criu_pstree_parse(buf, cut, &t);
                ASSERT_TRUE(r < 0);
        }
        /* Wrong head magic, wrong type magic, service magic. */
        buf[0] ^= 1;
        ASSERT_ERROR(criu_pstree_parse(buf, size, &t), EBADMSG);
        buf[0] ^= 1;
        buf[4] ^= 1;
        ASSERT_ERROR(criu_pstree_parse(buf, size, &t), EBADMSG);
}

TEST(entry_length_bounds) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        CriuTree *t = NULL;

        ASSERT_OK(criu_image_append_header(&buf, &size, CRIU_IMAGE_COMMON, CRIU_PSTREE_MAGIC));
        uint8_t huge[4] = {0xff, 0xff, 0xff, 0xff};
        char *p = realloc(buf, size + 4);
        ASSERT_NOT_NULL(p);
        buf = p;
        memcpy(buf + size, huge, 4);
        size += 4;
        ASSERT_ERROR(criu_pstree_parse(buf, size, &t), EBADMSG);
        /* Garbage protobuf payload. */
        size -= 4;
        const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        ASSERT_OK(criu_image_append_entry(&buf, &size, junk, sizeof(junk)));
        ASSERT_ERROR(criu_pstree_parse(buf, size, &t), EBADMSG);
        /* Too many entries for the caller's limit. */
        ASSERT_ERROR(criu_image_foreach(buf, size, CRIU_IMAGE_COMMON, CRIU_PSTREE_MAGIC, 0, NULL, NULL),
                     E2BIG);
}

TEST(core_comm) {
        _cleanup_free_ char *buf = NULL, *comm = NULL;
        size_t size = 0;

        make_core(&buf, &size, "sleep");
        ASSERT_OK(criu_core_parse_comm(buf, size, &comm));
        ASSERT_STREQ(comm, "sleep");
}

TEST(core_comm_sanitized_and_bounded) {
        _cleanup_free_ char *buf = NULL, *comm = NULL;
        size_t size = 0;

        make_core(&buf, &size, "a\033[31mbcdefghijklmnopqrstuvwxyz");
        ASSERT_OK(criu_core_parse_comm(buf, size, &comm));
        ASSERT_EQ(strlen(comm), CRIU_COMM_MAX);
        ASSERT_STREQ(comm, "a?[31mbcdefghijk");
}

TEST(core_without_comm) {
        _cleanup_free_ char *buf = NULL, *comm = NULL;
        size_t size = 0;
        Criu__CoreEntry c = CRIU__CORE_ENTRY__INIT;
        uint8_t tmp[64];
        size_t len = criu__core_entry__pack(&c, tmp);
        ASSERT_OK(criu_image_append_header(&buf, &size, CRIU_IMAGE_COMMON, CRIU_CORE_MAGIC));
        ASSERT_OK(criu_image_append_entry(&buf, &size, tmp, len));
        ASSERT_ERROR(criu_core_parse_comm(buf, size, &comm), ENODATA);
        /* A pstree magic is not a core image. */
        _cleanup_free_ char *b2 = NULL;
        size_t s2 = 0;
        ASSERT_OK(criu_image_append_header(&b2, &s2, CRIU_IMAGE_COMMON, CRIU_PSTREE_MAGIC));
        ASSERT_ERROR(criu_core_parse_comm(b2, s2, &comm), EBADMSG);
}

TEST(stats_dump) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        Criu__StatsEntry s = CRIU__STATS_ENTRY__INIT;
        Criu__DumpStatsEntry d = CRIU__DUMP_STATS_ENTRY__INIT;
        d.has_freezing_time = d.has_frozen_time = d.has_memdump_time = d.has_memwrite_time = true;
        d.has_pages_scanned = d.has_pages_written = d.has_pages_skipped_parent = d.has_pages_lazy = true;
        d.freezing_time = 1234;
        d.frozen_time = 5678;
        d.memdump_time = 90;
        d.memwrite_time = 12;
        d.pages_scanned = 1ULL << 33;
        d.pages_written = 4096;
        s.dump = &d;
        uint8_t tmp[256];
        size_t len = criu__stats_entry__pack(&s, tmp);
        ASSERT_OK(criu_image_append_header(&buf, &size, CRIU_IMAGE_SERVICE, CRIU_STATS_MAGIC));
        ASSERT_OK(criu_image_append_entry(&buf, &size, tmp, len));

        CriuDumpStats st;
        ASSERT_OK(criu_stats_parse(buf, size, &st));
        ASSERT_EQ(st.freezing_time_us, 1234);
        ASSERT_EQ(st.frozen_time_us, 5678);
        ASSERT_EQ(st.memdump_time_us, 90);
        ASSERT_EQ(st.memwrite_time_us, 12);
        ASSERT_EQ(st.pages_scanned, 1ULL << 33);
        ASSERT_EQ(st.pages_written, 4096);
        ASSERT_FALSE(st.has_irmap_resolve);

        /* stats-* carry the service head magic, not the common one. */
        _cleanup_free_ char *b2 = NULL;
        size_t s2 = 0;
        ASSERT_OK(criu_image_append_header(&b2, &s2, CRIU_IMAGE_COMMON, CRIU_STATS_MAGIC));
        ASSERT_OK(criu_image_append_entry(&b2, &s2, tmp, len));
        ASSERT_ERROR(criu_stats_parse(b2, s2, &st), EBADMSG);
}

TEST(inventory) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        Criu__InventoryEntry e = CRIU__INVENTORY_ENTRY__INIT;
        e.has_img_version = true;
        e.img_version = 2;
        e.has_dump_uptime = true;
        e.dump_uptime = 123456789;
        uint8_t tmp[256];
        size_t len = criu__inventory_entry__pack(&e, tmp);
        ASSERT_OK(criu_image_append_header(&buf, &size, CRIU_IMAGE_INVENTORY, CRIU_INVENTORY_MAGIC));
        ASSERT_EQ(size, 4); /* inventory.img has no head magic */
        ASSERT_OK(criu_image_append_entry(&buf, &size, tmp, len));
        CriuInventory inv;
        ASSERT_OK(criu_inventory_parse(buf, size, &inv));
        ASSERT_EQ(inv.img_version, 2);
        ASSERT_TRUE(inv.has_dump_uptime);
        ASSERT_EQ(inv.dump_uptime, 123456789);
}

TEST(load_directory) {
        char dir[] = "/tmp/test-criu-image-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(dir));
        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(dfd >= 0);

        _cleanup_free_ char *ps = NULL, *c1 = NULL, *c2 = NULL;
        size_t ps_size = 0, c1_size = 0, c2_size = 0;
        ASSERT_OK(criu_image_append_header(&ps, &ps_size, CRIU_IMAGE_COMMON, CRIU_PSTREE_MAGIC));
        add_pstree(&ps, &ps_size, 1, 0, NULL, 0);
        add_pstree(&ps, &ps_size, 8, 1, NULL, 0);
        add_pstree(&ps, &ps_size, 9, 1, NULL, 0);
        write_at(dfd, "pstree.img", ps, ps_size);
        make_core(&c1, &c1_size, "sh");
        write_at(dfd, "core-1.img", c1, c1_size);
        make_core(&c2, &c2_size, "sleep");
        write_at(dfd, "core-8.img", c2, c2_size);
        /* core-9.img is a symlink: not followed, so that process has no name. */
        ASSERT_OK(symlinkat("core-8.img", dfd, "core-9.img"));

        _cleanup_criu_tree_ CriuTree *t = NULL;
        ASSERT_OK(criu_tree_load(dir, &t));
        ASSERT_EQ(t->n_procs, 3);
        ASSERT_STREQ(t->procs[0].comm, "sh");
        ASSERT_STREQ(t->procs[1].comm, "sleep");
        ASSERT_NULL(t->procs[2].comm);

        _cleanup_free_ char *out = NULL;
        size_t out_size = 0;
        FILE *f = open_memstream(&out, &out_size);
        ASSERT_NOT_NULL(f);
        ASSERT_OK(criu_tree_print(t, f, "> "));
        fclose(f);
        ASSERT_STREQ(out, "> 1  sh\n>   8  sleep\n>   9  ?\n");

        /* A symlinked pstree.img is refused. */
        ASSERT_OK(renameat(dfd, "pstree.img", dfd, "real-pstree"));
        ASSERT_OK(symlinkat("real-pstree", dfd, "pstree.img"));
        CriuTree *t2 = NULL;
        ASSERT_ERROR(criu_tree_load(dir, &t2), ELOOP);

        (void)unlinkat(dfd, "pstree.img", 0);
        (void)unlinkat(dfd, "real-pstree", 0);
        (void)unlinkat(dfd, "core-1.img", 0);
        (void)unlinkat(dfd, "core-8.img", 0);
        (void)unlinkat(dfd, "core-9.img", 0);
        (void)rmdir(dir);
}

static const char *find_criu(void) {
        static const char *const paths[] = {"/usr/local/sbin/criu", "/usr/sbin/criu"};
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (access(paths[i], X_OK) == 0)
                        return paths[i];
        return NULL;
}

static int run_quiet(char *const argv[]) {
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (null >= 0) {
                        dup2(null, 1);
                        dup2(null, 2);
                }
                execv(argv[0], argv);
                _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* A real dump of a small process tree, when a working CRIU is installed. */
TEST(real_criu_dump) {
        const char *criu = find_criu();
        if (!criu)
                return_skip("criu not installed");
        if (geteuid() != 0)
                return_skip("needs root");
        if (run_quiet((char *const[]){(char *)criu, "check", NULL}) != 0)
                return_skip("criu check fails on this machine");

        char dir[] = "/tmp/test-criu-dump-XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(dir));

        /* The dumped tree: a session leader sh with a sleep child, detached
         * from our stdio (CRIU cannot dump a tree holding our pipes). */
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                setsid();
                int null = open("/dev/null", O_RDWR);
                dup2(null, 0);
                dup2(null, 1);
                dup2(null, 2);
                for (int fd = 3; fd < 1024; fd++)
                        close(fd);
                execl("/bin/sh", "sh", "-c", "sleep 1000; true", NULL);
                _exit(127);
        }
        usleep(300 * 1000);
        char pidstr[32];
        snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
        int rc = run_quiet(
                (char *const[]){(char *)criu, "dump", "-t", pidstr, "-D", dir, "--shell-job", NULL});
        if (rc != 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                test_fail(__FILE__, __LINE__, "criu dump failed: %d", rc);
        }
        waitpid(pid, NULL, 0); /* dump kills the tree */

        _cleanup_criu_tree_ CriuTree *t = NULL;
        ASSERT_OK(criu_tree_load(dir, &t));
        ASSERT_EQ(t->n_procs, 2);
        ASSERT_EQ(t->procs[0].pid, (uint32_t)pid);
        ASSERT_STREQ(t->procs[0].comm, "sh");
        ASSERT_STREQ(t->procs[1].comm, "sleep");
        ASSERT_EQ(t->procs[1].ppid, (uint32_t)pid);

        char path[256];
        snprintf(path, sizeof(path), "%s/stats-dump", dir);
        CriuDumpStats st;
        ASSERT_OK(criu_stats_load(path, &st));
        ASSERT_TRUE(st.pages_scanned > 0);

        _cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        CriuInventory inv;
        ASSERT_OK(criu_inventory_load_at(dfd, &inv));
        ASSERT_EQ(inv.img_version, 2);

        char *const rm[] = {"/bin/rm", "-rf", "--one-file-system", dir, NULL};
        run_quiet(rm);
}
