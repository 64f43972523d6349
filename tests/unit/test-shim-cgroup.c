/* SPDX-License-Identifier: Apache-2.0 */
/* shim/cgroup: discovery from /proc/<pid>/cgroup and paths, Metrics read from
 * fake v1 and v2 trees (decoded back with the generated unpack), robustness
 * against garbage files, the v2 OOM watch on a fake tree, and on this host a
 * real cgroup v1 memory cgroup whose child runs out of memory and a real runc
 * container (stats from its init pid, OOM of an exec). The real tests skip
 * only without root, cgroup v1 memory, runc or a static busybox. */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"
#include "shim/cgroup.h"
#include "test.h"

#define INT_TO_PTR(i) ((void *)(intptr_t)(i))

typedef Io__Containerd__Cgroups__V1__Metrics V1Metrics;
typedef Io__Containerd__Cgroups__V2__Metrics V2Metrics;

/* ---- fake trees ------------------------------------------------------------ */

static void wfile_n(const char *dir, const char *name, const char *content, size_t n) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(write_all(fd, content, n));
}

static void wfile(const char *dir, const char *name, const char *content) {
        wfile_n(dir, name, content, strlen(content));
}

static char *mkdirs(const char *root, const char *sub) {
        char *d;
        ASSERT_TRUE(asprintf(&d, "%s/%s", root, sub) > 0);
        ASSERT_OK(mkdir_p(d, 0755));
        return d;
}

static V1Metrics *stats_v1(const Cgroup *cg) {
        Google__Protobuf__Any *any = NULL;
        ASSERT_OK(cgroup_stats(cg, &any));
        ASSERT_STREQ(any->type_url, "io.containerd.cgroups.v1.Metrics");
        V1Metrics *m = io__containerd__cgroups__v1__metrics__unpack(NULL, any->value.len, any->value.data);
        ASSERT_NOT_NULL(m);
        google__protobuf__any__free_unpacked(any, NULL);
        return m;
}

static V2Metrics *stats_v2(const Cgroup *cg) {
        Google__Protobuf__Any *any = NULL;
        ASSERT_OK(cgroup_stats(cg, &any));
        ASSERT_STREQ(any->type_url, "io.containerd.cgroups.v2.Metrics");
        V2Metrics *m = io__containerd__cgroups__v2__metrics__unpack(NULL, any->value.len, any->value.data);
        ASSERT_NOT_NULL(m);
        google__protobuf__any__free_unpacked(any, NULL);
        return m;
}

/* ---- discovery -------------------------------------------------------------- */

TEST(detect_version) {
        const char *root = test_tmpdir();
        ASSERT_EQ(cgroup_detect_version(root), CGROUP_V1);
        wfile(root, "cgroup.controllers", "cpu io memory pids\n");
        ASSERT_EQ(cgroup_detect_version(root), CGROUP_V2);
        ASSERT_ERROR(cgroup_detect_version("/nonexistent/kyb-cgroup"), ENOENT);
}

TEST(proc_cgroup_v1) {
        const char *root = test_tmpdir();
        char p[PATH_MAX];
        free(mkdirs(root, "memory"));
        free(mkdirs(root, "pids"));
        /* cpu and cpuacct co-mounted without the usual symlinks. */
        free(mkdirs(root, "cpu,cpuacct"));
        free(mkdirs(root, "unified"));

        const char *text = "12:pids:/kybernate/default/c1\n"
                           "11:hugetlb:/\n"
                           "5:cpu,cpuacct:/kybernate/default/c1\n"
                           "4:memory:/kybernate/default/c1\n"
                           "1:name=systemd:/system.slice/containerd.service\n"
                           "0::/system.slice/containerd.service\n";
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        ASSERT_OK(cgroup_new_from_proc_cgroup(root, text, &cg));
        ASSERT_EQ(cgroup_get_version(cg), CGROUP_V1);
        ASSERT_STREQ(cgroup_get_path(cg), "/kybernate/default/c1");
        snprintf(p, sizeof(p), "%s/memory/kybernate/default/c1", root);
        ASSERT_STREQ(cgroup_get_dir(cg, "memory"), p);
        snprintf(p, sizeof(p), "%s/pids/kybernate/default/c1", root);
        ASSERT_STREQ(cgroup_get_dir(cg, "pids"), p);
        snprintf(p, sizeof(p), "%s/cpu,cpuacct/kybernate/default/c1", root);
        ASSERT_STREQ(cgroup_get_dir(cg, "cpu"), p);
        ASSERT_STREQ(cgroup_get_dir(cg, "cpuacct"), p);
        /* "/" adds nothing to the controller's directory. */
        snprintf(p, sizeof(p), "%s/hugetlb", root);
        ASSERT_STREQ(cgroup_get_dir(cg, "hugetlb"), p);
        ASSERT_NULL(cgroup_get_dir(cg, "blkio"));
        ASSERT_NULL(cgroup_get_dir(cg, "name=systemd"));

        /* With symlink-style per-controller directories, those are used. */
        free(mkdirs(root, "cpu"));
        cg = cgroup_free(cg);
        ASSERT_OK(cgroup_new_from_proc_cgroup(root, text, &cg));
        snprintf(p, sizeof(p), "%s/cpu/kybernate/default/c1", root);
        ASSERT_STREQ(cgroup_get_dir(cg, "cpu"), p);
        snprintf(p, sizeof(p), "%s/cpu,cpuacct/kybernate/default/c1", root);
        ASSERT_STREQ(cgroup_get_dir(cg, "cpuacct"), p);
}

TEST(proc_cgroup_v2) {
        const char *root = test_tmpdir();
        char p[PATH_MAX];
        wfile(root, "cgroup.controllers", "memory pids\n");
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        /* A path with ':' in it stays whole. */
        ASSERT_OK(cgroup_new_from_proc_cgroup(root, "0::/kubepods/pod1/cri-containerd:abc\n", &cg));
        ASSERT_EQ(cgroup_get_version(cg), CGROUP_V2);
        ASSERT_STREQ(cgroup_get_path(cg), "/kubepods/pod1/cri-containerd:abc");
        snprintf(p, sizeof(p), "%s/kubepods/pod1/cri-containerd:abc", root);
        ASSERT_STREQ(cgroup_get_dir(cg, "memory"), p);
        ASSERT_STREQ(cgroup_get_dir(cg, NULL), p);
        cg = cgroup_free(cg);
        ASSERT_OK(cgroup_new_from_proc_cgroup(root, "0::/", &cg));
        ASSERT_STREQ(cgroup_get_dir(cg, "pids"), root);
        cg = cgroup_free(cg);
        /* A v1 line on a v2 host is not the unified path. */
        ASSERT_ERROR(cgroup_new_from_proc_cgroup(root, "4:memory:/x\n", &cg), ENOENT);
}

TEST(proc_cgroup_bad) {
        const char *root = test_tmpdir();
        Cgroup *cg = NULL;
        free(mkdirs(root, "memory"));
        ASSERT_ERROR(cgroup_new_from_proc_cgroup(root, "", &cg), ENOENT);
        ASSERT_ERROR(cgroup_new_from_proc_cgroup(root, "garbage\n::\n:::\n\n", &cg), ENOENT);
        ASSERT_ERROR(cgroup_new_from_proc_cgroup(root, "4:memory:/a/../../etc\n", &cg), ENOENT);
        ASSERT_ERROR(cgroup_new_from_proc_cgroup(root, "4:memory:relative\n", &cg), ENOENT);
        ASSERT_ERROR(cgroup_new_from_proc_cgroup(root, "4:../memory:/x\n", &cg), ENOENT);
        ASSERT_NULL(cg);
        /* Overlong input is refused, an overlong line is skipped. */
        size_t big = (size_t)70 * 1024;
        _cleanup_free_ char *t = malloc(big + 1);
        ASSERT_NOT_NULL(t);
        memset(t, 'a', big);
        t[big] = 0;
        ASSERT_ERROR(cgroup_new_from_proc_cgroup(root, t, &cg), EFBIG);
        memcpy(t, "4:memory:/", 10);
        memset(t + 10, 'x', 5000);
        strcpy(t + 5010, "\n4:memory:/ok\n");
        ASSERT_OK(cgroup_new_from_proc_cgroup(root, t, &cg));
        ASSERT_STREQ(cgroup_get_path(cg), "/ok");
        cgroup_free(cg);
        ASSERT_ERROR(cgroup_new_from_pid(root, root, 1, &cg), ENOENT);
}

TEST(from_path) {
        const char *root = test_tmpdir();
        char p[PATH_MAX];
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        ASSERT_OK(cgroup_new_from_path(root, "kybernate/c1", &cg));
        ASSERT_EQ(cgroup_get_version(cg), CGROUP_V1);
        ASSERT_STREQ(cgroup_get_path(cg), "/kybernate/c1");
        snprintf(p, sizeof(p), "%s/blkio/kybernate/c1", root);
        ASSERT_STREQ(cgroup_get_dir(cg, "blkio"), p);
        Cgroup *bad = NULL;
        ASSERT_ERROR(cgroup_new_from_path(root, "/a/../..", &bad), EINVAL);
        ASSERT_ERROR(cgroup_new_from_path(root, "..", &bad), EINVAL);
        /* Nothing exists below: stats say the cgroup is gone. */
        Google__Protobuf__Any *any = NULL;
        ASSERT_ERROR(cgroup_stats(cg, &any), ENOENT);
        ASSERT_NULL(any);
}

TEST(from_pid_self) {
        /* This process's own cgroup on this host, whatever version it is. */
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        int v = cgroup_detect_version(NULL);
        if (v < 0)
                return_skip("no cgroup filesystem at /sys/fs/cgroup");
        ASSERT_OK(cgroup_new_from_pid(NULL, NULL, getpid(), &cg));
        ASSERT_EQ(cgroup_get_version(cg), v);
        ASSERT_NOT_NULL(cgroup_get_dir(cg, "memory"));
        ASSERT_TRUE(startswith(cgroup_get_dir(cg, "memory"), "/sys/fs/cgroup/") != NULL);
        ASSERT_TRUE(access(cgroup_get_dir(cg, "memory"), F_OK) == 0);
        Google__Protobuf__Any *any = NULL;
        ASSERT_OK(cgroup_stats(cg, &any));
        ASSERT_TRUE(any->value.len > 0);
        google__protobuf__any__free_unpacked(any, NULL);
}

/* ---- v1 metrics ---------------------------------------------------------------- */

static const char v1_memory_stat[] = "cache 2916352\n"
                                     "rss 1085440\n"
                                     "rss_huge 2097152\n"
                                     "shmem 0\n"
                                     "mapped_file 4096\n"
                                     "dirty 12288\n"
                                     "writeback 8192\n"
                                     "workingset_refault_file 1292\n"
                                     "swap 0\n"
                                     "pgpgin 29249\n"
                                     "pgpgout 28272\n"
                                     "pgfault 62449\n"
                                     "pgmajfault 13\n"
                                     "inactive_anon 1077248\n"
                                     "active_anon 8192\n"
                                     "inactive_file 831488\n"
                                     "active_file 2084864\n"
                                     "unevictable 1\n"
                                     "hierarchical_memory_limit 9223372036854771712\n"
                                     "hierarchical_memsw_limit 9223372036854771711\n"
                                     "total_cache 3\n"
                                     "total_rss 4\n"
                                     "total_rss_huge 5\n"
                                     "total_shmem 0\n"
                                     "total_mapped_file 6\n"
                                     "total_dirty 7\n"
                                     "total_writeback 8\n"
                                     "total_pgpgin 9\n"
                                     "total_pgpgout 10\n"
                                     "total_pgfault 11\n"
                                     "total_pgmajfault 12\n"
                                     "total_inactive_anon 13\n"
                                     "total_active_anon 14\n"
                                     "total_inactive_file 15\n"
                                     "total_active_file 16\n"
                                     "total_unevictable 17\n";

static const char *make_v1_tree(char **ret_proc) {
        const char *root = test_tmpdir();
        _cleanup_free_ char *mem = mkdirs(root, "memory/kyb/c1");
        wfile(mem, "memory.stat", v1_memory_stat);
        wfile(mem, "memory.usage_in_bytes", "4001792\n");
        wfile(mem, "memory.max_usage_in_bytes", "8392704\n");
        wfile(mem, "memory.limit_in_bytes", "9223372036854771712\n");
        wfile(mem, "memory.failcnt", "3\n");
        wfile(mem, "memory.memsw.usage_in_bytes", "4001793\n");
        wfile(mem, "memory.memsw.max_usage_in_bytes", "8392705\n");
        wfile(mem, "memory.memsw.limit_in_bytes", "16777216\n");
        wfile(mem, "memory.memsw.failcnt", "0\n");
        wfile(mem, "memory.kmem.usage_in_bytes", "12345\n");
        wfile(mem, "memory.kmem.limit_in_bytes", "-1\n"); /* negative: 0 */
        /* memory.kmem.tcp.* and memory.kmem.{max_usage_in_bytes,failcnt} missing: skipped */
        wfile(mem, "memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 2\n");

        _cleanup_free_ char *acct = mkdirs(root, "cpuacct/kyb/c1");
        wfile(acct, "cpuacct.usage", "123456789\n");
        wfile(acct, "cpuacct.usage_percpu", "100 200 300 \n");
        wfile(acct, "cpuacct.stat", "user 150\nsystem 25\n");
        _cleanup_free_ char *cpu = mkdirs(root, "cpu/kyb/c1");
        wfile(cpu, "cpu.stat",
              "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\nnr_bursts 0\nburst_time 0\n");
        _cleanup_free_ char *pids = mkdirs(root, "pids/kyb/c1");
        wfile(pids, "pids.current", "7\n");
        wfile(pids, "pids.max", "max\n");
        _cleanup_free_ char *blkio = mkdirs(root, "blkio/kyb/c1");
        wfile(blkio, "blkio.throttle.io_serviced",
              "254:0 Read 10\n254:0 Write 20\n254:0 Sync 5\n254:0 Async 25\n254:0 Discard 0\n"
              "254:0 Total 30\n8:16 Read 1\nTotal 31\n");
        wfile(blkio, "blkio.throttle.io_service_bytes",
              "254:0 Read 40960\n254:0 Write 81920\nTotal 122880\n");
        _cleanup_free_ char *huge = mkdirs(root, "hugetlb/kyb/c1");
        wfile(huge, "hugetlb.2MB.usage_in_bytes", "2097152\n");
        wfile(huge, "hugetlb.2MB.max_usage_in_bytes", "4194304\n");
        wfile(huge, "hugetlb.2MB.failcnt", "1\n");
        wfile(huge, "hugetlb.2MB.limit_in_bytes", "9223372036854771712\n");
        wfile(huge, "hugetlb.1GB.usage_in_bytes", "0\n");

        char *proc = mkdirs(root, "proc");
        wfile(proc, "partitions",
              "major minor  #blocks  name\n\n 254        0  268435456 vda\n 254  1 1000 vda1\n");
        *ret_proc = proc;
        return root;
}

static void check_v1(const V1Metrics *m) {
        uint64_t hz = (uint64_t)sysconf(_SC_CLK_TCK);

        ASSERT_NOT_NULL(m->memory);
        const Io__Containerd__Cgroups__V1__MemoryStat *mem = m->memory;
        ASSERT_EQ(mem->cache, 2916352);
        ASSERT_EQ(mem->rss, 1085440);
        ASSERT_EQ(mem->rss_huge, 2097152);
        ASSERT_EQ(mem->mapped_file, 4096);
        ASSERT_EQ(mem->dirty, 12288);
        ASSERT_EQ(mem->writeback, 8192);
        ASSERT_EQ(mem->pg_pg_in, 29249);
        ASSERT_EQ(mem->pg_pg_out, 28272);
        ASSERT_EQ(mem->pg_fault, 62449);
        ASSERT_EQ(mem->pg_maj_fault, 13);
        ASSERT_EQ(mem->inactive_anon, 1077248);
        ASSERT_EQ(mem->active_anon, 8192);
        ASSERT_EQ(mem->inactive_file, 831488);
        ASSERT_EQ(mem->active_file, 2084864);
        ASSERT_EQ(mem->unevictable, 1);
        ASSERT_EQ(mem->hierarchical_memory_limit, 9223372036854771712ULL);
        ASSERT_EQ(mem->hierarchical_swap_limit, 9223372036854771711ULL);
        ASSERT_EQ(mem->total_cache, 3);
        ASSERT_EQ(mem->total_rss, 4);
        ASSERT_EQ(mem->total_rss_huge, 5);
        ASSERT_EQ(mem->total_mapped_file, 6);
        ASSERT_EQ(mem->total_dirty, 7);
        ASSERT_EQ(mem->total_writeback, 8);
        ASSERT_EQ(mem->total_pg_pg_in, 9);
        ASSERT_EQ(mem->total_pg_pg_out, 10);
        ASSERT_EQ(mem->total_pg_fault, 11);
        ASSERT_EQ(mem->total_pg_maj_fault, 12);
        ASSERT_EQ(mem->total_inactive_anon, 13);
        ASSERT_EQ(mem->total_active_anon, 14);
        ASSERT_EQ(mem->total_inactive_file, 15);
        ASSERT_EQ(mem->total_active_file, 16);
        ASSERT_EQ(mem->total_unevictable, 17);
        ASSERT_NOT_NULL(mem->usage);
        ASSERT_EQ(mem->usage->usage, 4001792);
        ASSERT_EQ(mem->usage->max, 8392704);
        ASSERT_EQ(mem->usage->limit, 9223372036854771712ULL);
        ASSERT_EQ(mem->usage->failcnt, 3);
        ASSERT_NOT_NULL(mem->swap);
        ASSERT_EQ(mem->swap->usage, 4001793);
        ASSERT_EQ(mem->swap->max, 8392705);
        ASSERT_EQ(mem->swap->limit, 16777216);
        ASSERT_EQ(mem->swap->failcnt, 0);
        ASSERT_NOT_NULL(mem->kernel);
        ASSERT_EQ(mem->kernel->usage, 12345);
        ASSERT_EQ(mem->kernel->limit, 0);
        ASSERT_EQ(mem->kernel->max, 0);
        ASSERT_NOT_NULL(mem->kernel_tcp);
        ASSERT_EQ(mem->kernel_tcp->usage, 0);
        ASSERT_NOT_NULL(m->memory_oom_control);
        ASSERT_EQ(m->memory_oom_control->oom_kill_disable, 1);
        ASSERT_EQ(m->memory_oom_control->under_oom, 0);
        ASSERT_EQ(m->memory_oom_control->oom_kill, 2);

        ASSERT_NOT_NULL(m->cpu);
        ASSERT_NOT_NULL(m->cpu->usage);
        ASSERT_EQ(m->cpu->usage->total, 123456789);
        ASSERT_EQ(m->cpu->usage->user, 150 * NSEC_PER_SEC / hz);
        ASSERT_EQ(m->cpu->usage->kernel, 25 * NSEC_PER_SEC / hz);
        ASSERT_EQ(m->cpu->usage->n_per_cpu, 3);
        ASSERT_EQ(m->cpu->usage->per_cpu[0], 100);
        ASSERT_EQ(m->cpu->usage->per_cpu[1], 200);
        ASSERT_EQ(m->cpu->usage->per_cpu[2], 300);
        ASSERT_NOT_NULL(m->cpu->throttling);
        ASSERT_EQ(m->cpu->throttling->periods, 10);
        ASSERT_EQ(m->cpu->throttling->throttled_periods, 2);
        ASSERT_EQ(m->cpu->throttling->throttled_time, 5000);

        ASSERT_NOT_NULL(m->pids);
        ASSERT_EQ(m->pids->current, 7);
        ASSERT_EQ(m->pids->limit, 0); /* "max" */

        ASSERT_NOT_NULL(m->blkio);
        const Io__Containerd__Cgroups__V1__BlkIOStat *b = m->blkio;
        ASSERT_EQ(b->n_io_serviced_recursive, 7);
        ASSERT_STREQ(b->io_serviced_recursive[0]->op, "Read");
        ASSERT_STREQ(b->io_serviced_recursive[0]->device, "/dev/vda");
        ASSERT_EQ(b->io_serviced_recursive[0]->major, 254);
        ASSERT_EQ(b->io_serviced_recursive[0]->minor, 0);
        ASSERT_EQ(b->io_serviced_recursive[0]->value, 10);
        ASSERT_STREQ(b->io_serviced_recursive[5]->op, "Total");
        ASSERT_EQ(b->io_serviced_recursive[5]->value, 30);
        ASSERT_STREQ(b->io_serviced_recursive[6]->device, ""); /* 8:16 is not in partitions */
        ASSERT_EQ(b->io_serviced_recursive[6]->major, 8);
        ASSERT_EQ(b->io_serviced_recursive[6]->minor, 16);
        ASSERT_EQ(b->n_io_service_bytes_recursive, 2);
        ASSERT_STREQ(b->io_service_bytes_recursive[1]->op, "Write");
        ASSERT_EQ(b->io_service_bytes_recursive[1]->value, 81920);
        ASSERT_EQ(b->n_sectors_recursive, 0);

        ASSERT_EQ(m->n_hugetlb, 2);
        ASSERT_STREQ(m->hugetlb[0]->pagesize, "1GB");
        ASSERT_EQ(m->hugetlb[0]->usage, 0);
        ASSERT_STREQ(m->hugetlb[1]->pagesize, "2MB");
        ASSERT_EQ(m->hugetlb[1]->usage, 2097152);
        ASSERT_EQ(m->hugetlb[1]->max, 4194304);
        ASSERT_EQ(m->hugetlb[1]->failcnt, 1);
}

TEST(stats_v1_fake_tree) {
        _cleanup_free_ char *proc = NULL;
        const char *root = make_v1_tree(&proc);
        _cleanup_cgroup_free_ Cgroup *cg = NULL;

        ASSERT_OK(cgroup_new_from_path(root, "/kyb/c1", &cg));
        ASSERT_OK(cgroup_set_proc_root(cg, proc));
        V1Metrics *m = stats_v1(cg);
        check_v1(m);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

        /* The same cgroup found through /proc/<pid>/cgroup of a fake pid. */
        _cleanup_free_ char *pdir = mkdirs(proc, "4242");
        wfile(pdir, "cgroup",
              "9:hugetlb:/kyb/c1\n8:pids:/kyb/c1\n7:blkio:/kyb/c1\n4:memory:/kyb/c1\n2:cpuacct:/kyb/c1\n"
              "1:cpu:/kyb/c1\n0::/\n");
        cg = cgroup_free(cg);
        ASSERT_OK(cgroup_new_from_pid(root, proc, 4242, &cg));
        m = stats_v1(cg);
        check_v1(m);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

        /* CFQ files, when present, are used instead of the throttle ones. */
        _cleanup_free_ char *blkio = NULL;
        ASSERT_TRUE(asprintf(&blkio, "%s/blkio/kyb/c1", root) > 0);
        wfile(blkio, "blkio.io_serviced_recursive", "254:0 Read 3\n254:0 Write 4\nTotal 7\n");
        wfile(blkio, "blkio.sectors_recursive", "254:0 99\n");
        m = stats_v1(cg);
        ASSERT_EQ(m->blkio->n_io_serviced_recursive, 2);
        ASSERT_EQ(m->blkio->io_serviced_recursive[1]->value, 4);
        ASSERT_EQ(m->blkio->n_io_service_bytes_recursive, 0);
        ASSERT_EQ(m->blkio->n_sectors_recursive, 1);
        ASSERT_STREQ(m->blkio->sectors_recursive[0]->op, "");
        ASSERT_EQ(m->blkio->sectors_recursive[0]->value, 99);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

TEST(stats_v1_partial_tree) {
        /* Only a memory controller, with only usage: everything else is
         * skipped, no error. */
        const char *root = test_tmpdir();
        _cleanup_free_ char *mem = mkdirs(root, "memory/x");
        wfile(mem, "memory.usage_in_bytes", "42\n");
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        ASSERT_OK(cgroup_new_from_path(root, "/x", &cg));
        V1Metrics *m = stats_v1(cg);
        ASSERT_NOT_NULL(m->memory);
        ASSERT_EQ(m->memory->usage->usage, 42);
        ASSERT_EQ(m->memory->cache, 0);
        ASSERT_NULL(m->cpu);
        ASSERT_NULL(m->pids);
        ASSERT_NULL(m->blkio);
        ASSERT_EQ(m->n_hugetlb, 0);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
}

/* ---- v2 metrics ---------------------------------------------------------------- */

static const char *make_v2_tree(char **ret_dir) {
        const char *root = test_tmpdir();
        wfile(root, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
        char *d = mkdirs(root, "kubepods/pod1/c1");
        wfile(d, "memory.current", "5242880\n");
        wfile(d, "memory.max", "max\n");
        wfile(d, "memory.peak", "6000000\n");
        wfile(d, "memory.swap.current", "0\n");
        wfile(d, "memory.swap.max", "1048576\n");
        wfile(d, "memory.stat",
              "anon 1\nfile 2\nkernel 999\nkernel_stack 3\npagetables 998\nsec_pagetables 0\n"
              "percpu 997\nsock 5\nvmalloc 0\nshmem 6\nzswap 0\nzswapped 0\nfile_mapped 7\n"
              "file_dirty 8\nfile_writeback 9\nswapcached 0\nanon_thp 10\nfile_thp 0\nshmem_thp 0\n"
              "inactive_anon 11\nactive_anon 12\ninactive_file 13\nactive_file 14\nunevictable 15\n"
              "slab_reclaimable 16\nslab_unreclaimable 17\nslab 4\nworkingset_refault_anon 39\n"
              "workingset_refault_file 40\nworkingset_activate_anon 41\nworkingset_activate_file 42\n"
              "workingset_restore_anon 0\nworkingset_restore_file 0\nworkingset_nodereclaim 22\n"
              "pgscan 24\npgsteal 25\npgscan_kswapd 0\npgrefill 23\npgactivate 26\npgdeactivate 27\n"
              "pglazyfree 28\npglazyfreed 29\nthp_fault_alloc 30\nthp_collapse_alloc 31\n"
              "pgfault 18\npgmajfault 19\n");
        wfile(d, "memory.events", "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\noom_group_kill 5\n");
        wfile(d, "memory.pressure",
              "some avg10=1.50 avg60=0.25 avg300=0.00 total=777\n"
              "full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n");
        wfile(d, "cpu.stat",
              "usage_usec 1000\nuser_usec 600\nsystem_usec 400\ncore_sched.force_idle_usec 0\n"
              "nr_periods 50\nnr_throttled 3\nthrottled_usec 1234\nnr_bursts 1\nburst_usec 2\n");
        wfile(d, "cpu.pressure", "some avg10=0.50 avg60=0.25 avg300=0.00 total=12345\n");
        wfile(d, "pids.current", "3\n");
        wfile(d, "pids.max", "max\n");
        wfile(d, "io.stat",
              "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
              "253:1 rbytes=1 wbytes=2 rios=3 wios=4\n");
        wfile(d, "hugetlb.2MB.current", "2097152\n");
        wfile(d, "hugetlb.2MB.max", "max\n");
        wfile(d, "hugetlb.2MB.events", "max 5\n");
        wfile(d, "cgroup.events", "populated 1\nfrozen 0\n");
        *ret_dir = d;
        return root;
}

TEST(stats_v2_fake_tree) {
        _cleanup_free_ char *dir = NULL;
        const char *root = make_v2_tree(&dir);
        _cleanup_cgroup_free_ Cgroup *cg = NULL;

        ASSERT_OK(cgroup_new_from_proc_cgroup(root, "0::/kubepods/pod1/c1\n", &cg));
        V2Metrics *m = stats_v2(cg);

        ASSERT_NOT_NULL(m->pids);
        ASSERT_EQ(m->pids->current, 3);
        ASSERT_EQ(m->pids->limit, UINT64_MAX);

        ASSERT_NOT_NULL(m->cpu);
        ASSERT_EQ(m->cpu->usage_usec, 1000);
        ASSERT_EQ(m->cpu->user_usec, 600);
        ASSERT_EQ(m->cpu->system_usec, 400);
        ASSERT_EQ(m->cpu->nr_periods, 50);
        ASSERT_EQ(m->cpu->nr_throttled, 3);
        ASSERT_EQ(m->cpu->throttled_usec, 1234);
        ASSERT_EQ(m->cpu->nr_bursts, 1);
        ASSERT_EQ(m->cpu->burst_usec, 2);
        ASSERT_NOT_NULL(m->cpu->psi);
        ASSERT_NOT_NULL(m->cpu->psi->some);
        ASSERT_NULL(m->cpu->psi->full);
        ASSERT_TRUE(m->cpu->psi->some->avg10 > 0.49 && m->cpu->psi->some->avg10 < 0.51);
        ASSERT_TRUE(m->cpu->psi->some->avg60 > 0.24 && m->cpu->psi->some->avg60 < 0.26);
        ASSERT_EQ(m->cpu->psi->some->total, 12345);

        const Io__Containerd__Cgroups__V2__MemoryStat *mem = m->memory;
        ASSERT_NOT_NULL(mem);
        ASSERT_EQ(mem->anon, 1);
        ASSERT_EQ(mem->file, 2);
        ASSERT_EQ(mem->kernel_stack, 3);
        ASSERT_EQ(mem->slab, 4);
        ASSERT_EQ(mem->sock, 5);
        ASSERT_EQ(mem->shmem, 6);
        ASSERT_EQ(mem->file_mapped, 7);
        ASSERT_EQ(mem->file_dirty, 8);
        ASSERT_EQ(mem->file_writeback, 9);
        ASSERT_EQ(mem->anon_thp, 10);
        ASSERT_EQ(mem->inactive_anon, 11);
        ASSERT_EQ(mem->active_anon, 12);
        ASSERT_EQ(mem->inactive_file, 13);
        ASSERT_EQ(mem->active_file, 14);
        ASSERT_EQ(mem->unevictable, 15);
        ASSERT_EQ(mem->slab_reclaimable, 16);
        ASSERT_EQ(mem->slab_unreclaimable, 17);
        ASSERT_EQ(mem->pgfault, 18);
        ASSERT_EQ(mem->pgmajfault, 19);
        ASSERT_EQ(mem->workingset_refault, 0);
        ASSERT_EQ(mem->workingset_nodereclaim, 22);
        ASSERT_EQ(mem->pgrefill, 23);
        ASSERT_EQ(mem->pgscan, 24);
        ASSERT_EQ(mem->pgsteal, 25);
        ASSERT_EQ(mem->pgactivate, 26);
        ASSERT_EQ(mem->pgdeactivate, 27);
        ASSERT_EQ(mem->pglazyfree, 28);
        ASSERT_EQ(mem->pglazyfreed, 29);
        ASSERT_EQ(mem->thp_fault_alloc, 30);
        ASSERT_EQ(mem->thp_collapse_alloc, 31);
        ASSERT_EQ(mem->workingset_refault_anon, 39);
        ASSERT_EQ(mem->workingset_refault_file, 40);
        ASSERT_EQ(mem->workingset_activate_anon, 41);
        ASSERT_EQ(mem->workingset_activate_file, 42);
        ASSERT_EQ(mem->usage, 5242880);
        ASSERT_EQ(mem->usage_limit, UINT64_MAX);
        ASSERT_EQ(mem->max_usage, 6000000);
        ASSERT_EQ(mem->swap_usage, 0);
        ASSERT_EQ(mem->swap_limit, 1048576);
        ASSERT_EQ(mem->swap_max_usage, 0);
        ASSERT_NOT_NULL(mem->psi);
        ASSERT_EQ(mem->psi->some->total, 777);
        ASSERT_TRUE(mem->psi->some->avg10 > 1.49 && mem->psi->some->avg10 < 1.51);
        ASSERT_EQ(mem->psi->full->total, 5);

        ASSERT_NOT_NULL(m->memory_events);
        ASSERT_EQ(m->memory_events->low, 0);
        ASSERT_EQ(m->memory_events->high, 1);
        ASSERT_EQ(m->memory_events->max, 2);
        ASSERT_EQ(m->memory_events->oom, 3);
        ASSERT_EQ(m->memory_events->oom_kill, 4);
        ASSERT_EQ(m->memory_events->oom_group_kill, 5);

        ASSERT_NOT_NULL(m->io);
        ASSERT_EQ(m->io->n_usage, 2);
        ASSERT_EQ(m->io->usage[0]->major, 8);
        ASSERT_EQ(m->io->usage[0]->minor, 0);
        ASSERT_EQ(m->io->usage[0]->rbytes, 4096);
        ASSERT_EQ(m->io->usage[0]->wbytes, 8192);
        ASSERT_EQ(m->io->usage[0]->rios, 1);
        ASSERT_EQ(m->io->usage[0]->wios, 2);
        ASSERT_EQ(m->io->usage[1]->major, 253);
        ASSERT_EQ(m->io->usage[1]->minor, 1);
        ASSERT_EQ(m->io->usage[1]->wios, 4);
        ASSERT_NULL(m->io->psi);

        ASSERT_EQ(m->n_hugetlb, 1);
        ASSERT_STREQ(m->hugetlb[0]->pagesize, "2MB");
        ASSERT_EQ(m->hugetlb[0]->current, 2097152);
        ASSERT_EQ(m->hugetlb[0]->max, UINT64_MAX);
        ASSERT_EQ(m->hugetlb[0]->failcnt, 5);
        ASSERT_NULL(m->rdma);
        ASSERT_EQ(m->n_network, 0);
        io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);

        /* No memory.events content: no MemoryEvents message. */
        wfile(dir, "memory.events", "");
        m = stats_v2(cg);
        ASSERT_NULL(m->memory_events);
        io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
}

/* ---- robustness ---------------------------------------------------------------- */

static void fill_random(char *buf, size_t n, uint64_t *seed) {
        static const char alphabet[] = "0123456789 :=\n\t-.abcdefghijklmnopqrstuvwxyzRWmaxTotal\0\xff";
        for (size_t i = 0; i < n; i++) {
                *seed = *seed * 6364136223846793005ULL + 1442695040888963407ULL;
                buf[i] = alphabet[(*seed >> 33) % (sizeof(alphabet) - 1)];
        }
}

TEST(stats_garbage_v1) {
        _cleanup_free_ char *proc = NULL;
        const char *root = make_v1_tree(&proc);
        _cleanup_free_ char *mem = NULL, *acct = NULL, *cpu = NULL, *blkio = NULL, *pids = NULL;
        ASSERT_TRUE(asprintf(&mem, "%s/memory/kyb/c1", root) > 0);
        ASSERT_TRUE(asprintf(&acct, "%s/cpuacct/kyb/c1", root) > 0);
        ASSERT_TRUE(asprintf(&cpu, "%s/cpu/kyb/c1", root) > 0);
        ASSERT_TRUE(asprintf(&blkio, "%s/blkio/kyb/c1", root) > 0);
        ASSERT_TRUE(asprintf(&pids, "%s/pids/kyb/c1", root) > 0);

        /* Bad lines are skipped one by one; good ones still count. */
        size_t longn = 100000;
        _cleanup_free_ char *longline = malloc(longn + 256);
        ASSERT_NOT_NULL(longline);
        memset(longline, 'a', longn);
        strcpy(longline + longn, " 5\ncache 100\nrss\nrss 12abc\nrss_huge 1 2\n"
                                 "pgfault 99999999999999999999999\nmapped_file -1\n"
                                 "\t dirty \t 7 \r\n");
        wfile(mem, "memory.stat", longline);
        wfile_n(mem, "memory.failcnt", "1\0002", 3);
        wfile(mem, "memory.usage_in_bytes", "garbage\n");
        wfile(mem, "memory.oom_control", "oom_kill\noom_kill 1 1\nunder_oom 18446744073709551615\n");
        /* Longer than any value: refused, skipped. */
        _cleanup_free_ char *huge = malloc(10001);
        ASSERT_NOT_NULL(huge);
        memset(huge, '9', 10000);
        huge[10000] = 0;
        wfile(mem, "memory.limit_in_bytes", huge);
        wfile(mem, "memory.memsw.usage_in_bytes", "18446744073709551616\n"); /* overflow */
        wfile(acct, "cpuacct.usage_percpu", "1 2 x 3\n");
        wfile(acct, "cpuacct.stat", "user\nsystem 1 2\n");
        wfile(cpu, "cpu.stat", ":::\n\n\n nr_periods   4 \n");
        wfile(pids, "pids.current", "");
        wfile(pids, "pids.max", "maxx\n");
        wfile(blkio, "blkio.throttle.io_serviced",
              "254:0 Read\n:0 Read 1\n254: Read 1\n254:0 Read 1 2 3 4 5 6 7 8 9\nabc:def Read 1\n"
              "254:0 Reaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaad 1\n254:0 Write 9\n");
        wfile(proc, "partitions", "x\n\n1\n254 0 1\n254 zero 1 vdb\n");

        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        ASSERT_OK(cgroup_new_from_path(root, "/kyb/c1", &cg));
        ASSERT_OK(cgroup_set_proc_root(cg, proc));
        V1Metrics *m = stats_v1(cg);
        ASSERT_EQ(m->memory->cache, 100);
        ASSERT_EQ(m->memory->rss, 0);
        ASSERT_EQ(m->memory->rss_huge, 0);
        ASSERT_EQ(m->memory->pg_fault, 0);
        ASSERT_EQ(m->memory->mapped_file, 0);
        ASSERT_EQ(m->memory->dirty, 7);
        ASSERT_EQ(m->memory->usage->usage, 0);
        ASSERT_EQ(m->memory->usage->failcnt, 0);
        ASSERT_EQ(m->memory->usage->limit, 0);
        ASSERT_EQ(m->memory->usage->max, 8392704);
        ASSERT_EQ(m->memory->swap->usage, 0);
        ASSERT_EQ(m->memory_oom_control->oom_kill, 0);
        ASSERT_EQ(m->memory_oom_control->under_oom, UINT64_MAX);
        ASSERT_EQ(m->cpu->usage->n_per_cpu, 0);
        ASSERT_EQ(m->cpu->usage->user, 0);
        ASSERT_EQ(m->cpu->usage->kernel, 0);
        ASSERT_EQ(m->cpu->throttling->periods, 4);
        ASSERT_EQ(m->pids->current, 0);
        ASSERT_EQ(m->pids->limit, 0);
        ASSERT_EQ(m->blkio->n_io_serviced_recursive, 1);
        ASSERT_EQ(m->blkio->io_serviced_recursive[0]->value, 9);
        ASSERT_STREQ(m->blkio->io_serviced_recursive[0]->device, "");
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

        /* A file past the size bound is skipped whole. */
        size_t bign = (size_t)300 * 1024;
        _cleanup_free_ char *big = malloc(bign + 1);
        ASSERT_NOT_NULL(big);
        for (size_t i = 0; i < bign; i += 10)
                memcpy(big + i, "cache 11\n\n", 10);
        big[bign] = 0;
        wfile(mem, "memory.stat", big);
        m = stats_v1(cg);
        ASSERT_EQ(m->memory->cache, 0);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

        /* Random bytes in every multi-line file: no crash, always a valid
         * message. */
        uint64_t seed = 42;
        char buf[2048];
        for (int round = 0; round < 300; round++) {
                size_t n = (size_t)(round * 7) % sizeof(buf);
                const char *files[][2] = {
                        {mem, "memory.stat"},
                        {mem, "memory.oom_control"},
                        {acct, "cpuacct.usage_percpu"},
                        {acct, "cpuacct.stat"},
                        {cpu, "cpu.stat"},
                        {pids, "pids.max"},
                        {blkio, "blkio.throttle.io_serviced"},
                        {proc, "partitions"},
                };
                for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                        fill_random(buf, n, &seed);
                        wfile_n(files[i][0], files[i][1], buf, n);
                }
                m = stats_v1(cg);
                io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
                /* And the same bytes as a /proc/<pid>/cgroup text. */
                fill_random(buf, sizeof(buf) - 1, &seed);
                buf[sizeof(buf) - 1] = 0;
                Cgroup *c2 = NULL;
                if (cgroup_new_from_proc_cgroup(root, buf, &c2) >= 0)
                        cgroup_free(c2);
        }
}

TEST(stats_garbage_v2) {
        _cleanup_free_ char *dir = NULL;
        const char *root = make_v2_tree(&dir);
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        ASSERT_OK(cgroup_new_from_proc_cgroup(root, "0::/kubepods/pod1/c1\n", &cg));

        wfile(dir, "io.stat",
              "::::\n8:0 rbytes=abc wbytes=5\nx:y rbytes=1\n8 rbytes=1\n"
              "1:2 = == rbytes= =5 rios=7 a=b=c\n8:0 rbytes=1 2 3 4 5 6 7 8 9 10\n");
        wfile(dir, "cpu.pressure",
              "some avg10=abc avg60=0 avg300=0 total=1\n"
              "full avg10=1.2.3 avg60=0 avg300=0 total=1\nsome\n"
              "full avg10=. avg60=0 avg300=0 total=1\n");
        wfile(dir, "memory.pressure",
              "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\n"
              "some avg10=1.00 avg60=0.00 avg300=0.00 total=10\n");
        wfile(dir, "memory.events", "oom_kill x\n");
        wfile(dir, "memory.max", "-5\n");
        wfile(dir, "hugetlb.2MB.events", "max\n");
        V2Metrics *m = stats_v2(cg);
        ASSERT_EQ(m->io->n_usage, 2);
        ASSERT_EQ(m->io->usage[0]->rbytes, 0);
        ASSERT_EQ(m->io->usage[0]->wbytes, 5);
        ASSERT_EQ(m->io->usage[1]->major, 1);
        ASSERT_EQ(m->io->usage[1]->rios, 7);
        ASSERT_NULL(m->cpu->psi);
        ASSERT_EQ(m->memory->psi->some->total, 9); /* the first "some" line wins */
        ASSERT_NULL(m->memory_events);
        ASSERT_EQ(m->memory->usage_limit, 0);
        ASSERT_EQ(m->hugetlb[0]->failcnt, 0);
        io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);

        uint64_t seed = 7;
        char buf[1024];
        for (int round = 0; round < 300; round++) {
                size_t n = (size_t)(round * 13) % sizeof(buf);
                const char *files[] = {"memory.stat", "memory.events", "cpu.stat", "cpu.pressure",
                                       "io.stat",     "memory.max",    "pids.max", "hugetlb.2MB.events"};
                for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                        fill_random(buf, n, &seed);
                        wfile_n(dir, files[i], buf, n);
                }
                m = stats_v2(cg);
                io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
        }
}

/* ---- OOM watch, v2 on a fake tree ------------------------------------------- */

typedef struct OomState {
        sd_event *e;
        OomWatch *w;
        const char *dir;
        unsigned calls;
} OomState;

static void on_oom_v2(void *userdata) {
        OomState *s = userdata;
        s->calls++;
}

static int step_v2(sd_event_source *src, uint64_t usec, void *userdata) {
        OomState *s = userdata;
        static int step;
        switch (step++) {
        case 0:
                /* Other counters move: no OOM. */
                wfile(s->dir, "memory.events",
                      "low 0\nhigh 5\nmax 9\noom 0\noom_kill 1\noom_group_kill 0\n");
                break;
        case 1:
                ASSERT_EQ(s->calls, 0);
                wfile(s->dir, "memory.events",
                      "low 0\nhigh 5\nmax 9\noom 1\noom_kill 2\noom_group_kill 0\n");
                break;
        case 2:
                ASSERT_EQ(s->calls, 1);
                wfile(s->dir, "memory.events",
                      "low 0\nhigh 5\nmax 9\noom 3\noom_kill 4\noom_group_kill 0\n");
                break;
        case 3:
                ASSERT_EQ(s->calls, 2);
                ASSERT_TRUE(cgroup_oom_watch_active(s->w));
                wfile(s->dir, "cgroup.events", "populated 0\nfrozen 0\n");
                break;
        default:
                ASSERT_FALSE(cgroup_oom_watch_active(s->w));
                /* Stopped: further changes are not reported. */
                wfile(s->dir, "memory.events", "oom_kill 9\n");
                if (step > 6)
                        return sd_event_exit(s->e, 0);
        }
        return sd_event_source_set_time_relative(src, 50 * USEC_PER_MSEC) < 0
                       ? -EIO
                       : sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
}

TEST(oom_watch_v2_fake_tree) {
        _cleanup_free_ char *dir = NULL;
        const char *root = make_v2_tree(&dir);
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        OomState s = {.dir = dir};

        /* Kills before the watch starts do not count. */
        wfile(dir, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 1\noom_group_kill 0\n");
        ASSERT_OK(cgroup_new_from_path(root, "/kubepods/pod1/c1", &cg));
        s.e = test_event();
        ASSERT_OK(cgroup_oom_watch(s.e, cg, on_oom_v2, &s, &s.w));
        ASSERT_TRUE(cgroup_oom_watch_active(s.w));
        ASSERT_OK(
                sd_event_add_time_relative(s.e, NULL, CLOCK_MONOTONIC, 50 * USEC_PER_MSEC, 0, step_v2, &s));
        ASSERT_OK(sd_event_add_time_relative(s.e, NULL, CLOCK_MONOTONIC, 10 * USEC_PER_SEC, 0, NULL,
                                             INT_TO_PTR(-ETIMEDOUT)));
        ASSERT_OK(sd_event_loop(s.e));
        ASSERT_EQ(s.calls, 2);
        ASSERT_EQ(cgroup_oom_watch_count(s.w), 2);
        cgroup_oom_watch_free(s.w);

        /* A missing cgroup cannot be watched. */
        Cgroup *gone = NULL;
        OomWatch *w = NULL;
        ASSERT_OK(cgroup_new_from_path(root, "/nope", &gone));
        ASSERT_ERROR(cgroup_oom_watch(s.e, gone, on_oom_v2, &s, &w), ENOENT);
        ASSERT_NULL(w);
        cgroup_free(gone);
}

/* ---- real cgroup v1 memory cgroup on this host ------------------------------- */

#define REAL_LIMIT ((uint64_t)16 * 1024 * 1024)

static void real_cgroup_cleanup(const char *dir) {
        /* Kill whatever is left in it, then remove it (a cgroup directory is
         * removed with rmdir once it has no tasks). */
        for (int i = 0; i < 200; i++) {
                char p[PATH_MAX];
                _cleanup_free_ char *procs = NULL;
                snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
                if (read_full_file(p, 65536, &procs, NULL) >= 0)
                        for (char *s = procs, *e; *s; s = e) {
                                long pid = strtol(s, &e, 10);
                                if (e == s)
                                        break;
                                if (pid > 0)
                                        (void)kill((pid_t)pid, SIGKILL);
                        }
                if (rmdir(dir) == 0 || errno == ENOENT)
                        return;
                usleep(10000);
        }
        fprintf(stderr, "  could not remove %s: %m\n", dir);
}

typedef struct RealState {
        unsigned calls;
} RealState;

static void on_oom_real(void *userdata) {
        RealState *s = userdata;
        s->calls++;
}

static void child_main(int go_fd, int ready_fd) {
        char c;
        /* 1: wait to be moved into the cgroup, then charge a few MiB to it. */
        if (read(go_fd, &c, 1) != 1)
                _exit(2);
        size_t small = (size_t)4 * 1024 * 1024;
        char *a = mmap(NULL, small, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (a == MAP_FAILED)
                _exit(3);
        memset(a, 1, small);
        if (write(ready_fd, "r", 1) != 1)
                _exit(4);
        /* 2: on the second go, allocate far past the limit. */
        if (read(go_fd, &c, 1) != 1)
                _exit(5);
        size_t big = (size_t)256 * 1024 * 1024;
        char *b = mmap(NULL, big, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (b == MAP_FAILED)
                _exit(6);
        for (size_t i = 0; i < big; i += 4096)
                b[i] = 1;
        _exit(7); /* survived: the limit did not hold */
}

static void real_v1_body(const char *dir) {
        int go[2], ready[2];
        char p[PATH_MAX], buf[32];
        char c;

        ASSERT_OK(pipe2(go, O_CLOEXEC));
        ASSERT_OK(pipe2(ready, O_CLOEXEC));
        pid_t child = fork();
        ASSERT_TRUE(child >= 0);
        if (child == 0) {
                close(go[1]);
                close(ready[0]);
                child_main(go[0], ready[1]);
        }
        close(go[0]);
        close(ready[1]);

        snprintf(p, sizeof(p), "%s/cgroup.procs", dir);
        snprintf(buf, sizeof(buf), "%d\n", (int)child);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(write_all(fd, buf, strlen(buf)));
        ASSERT_EQ(write(go[1], "g", 1), 1);
        ASSERT_EQ(read(ready[0], &c, 1), 1);

        /* Found from the child's pid, as the shim does with the init pid. */
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        ASSERT_OK(cgroup_new_from_pid(NULL, NULL, child, &cg));
        ASSERT_EQ(cgroup_get_version(cg), CGROUP_V1);
        ASSERT_STREQ(cgroup_get_dir(cg, "memory"), dir);

        V1Metrics *m = stats_v1(cg);
        ASSERT_NOT_NULL(m->memory);
        ASSERT_TRUE(m->memory->usage->usage >= (uint64_t)4 * 1024 * 1024);
        ASSERT_TRUE(m->memory->usage->limit > REAL_LIMIT);
        ASSERT_TRUE(m->memory->total_rss + m->memory->total_cache > 0);
        ASSERT_NOT_NULL(m->cpu);
        ASSERT_NOT_NULL(m->memory_oom_control);
        ASSERT_EQ(m->memory_oom_control->oom_kill, 0);
        fprintf(stderr, "  usage %llu bytes, rss %llu, cpu total %llu ns\n",
                (unsigned long long)m->memory->usage->usage, (unsigned long long)m->memory->total_rss,
                (unsigned long long)m->cpu->usage->total);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

        snprintf(buf, sizeof(buf), "%" PRIu64 "\n", REAL_LIMIT);
        snprintf(p, sizeof(p), "%s/memory.limit_in_bytes", dir);
        _cleanup_close_ int lfd = open(p, O_WRONLY | O_CLOEXEC);
        ASSERT_TRUE(lfd >= 0);
        ASSERT_OK(write_all(lfd, buf, strlen(buf)));
        /* With swap accounting, cap swap too so the child cannot escape. */
        snprintf(p, sizeof(p), "%s/memory.memsw.limit_in_bytes", dir);
        _cleanup_close_ int sfd = open(p, O_WRONLY | O_CLOEXEC);
        if (sfd >= 0)
                (void)write_all(sfd, buf, strlen(buf));

        RealState s = {};
        _cleanup_oom_watch_free_ OomWatch *w = NULL;
        sd_event *e = test_event();
        ASSERT_OK(cgroup_oom_watch(e, cg, on_oom_real, &s, &w));
        ASSERT_EQ(write(go[1], "g", 1), 1);
        uint64_t deadline = now_monotonic_usec() + 20 * USEC_PER_SEC;
        while (s.calls == 0 && now_monotonic_usec() < deadline)
                ASSERT_OK(sd_event_run(e, 100 * USEC_PER_MSEC));
        ASSERT_TRUE(s.calls >= 1);
        ASSERT_TRUE(cgroup_oom_watch_count(w) >= 1);

        int status;
        ASSERT_EQ(waitpid(child, &status, 0), child);
        ASSERT_TRUE(WIFSIGNALED(status));
        ASSERT_EQ(WTERMSIG(status), SIGKILL);

        m = stats_v1(cg);
        fprintf(stderr, "  after OOM: limit %llu, max usage %llu, failcnt %llu, oom_kill %llu\n",
                (unsigned long long)m->memory->usage->limit, (unsigned long long)m->memory->usage->max,
                (unsigned long long)m->memory->usage->failcnt,
                (unsigned long long)m->memory_oom_control->oom_kill);
        ASSERT_EQ(m->memory->usage->limit, REAL_LIMIT);
        ASSERT_TRUE(m->memory->usage->max <= REAL_LIMIT);
        ASSERT_TRUE(m->memory->usage->max > (uint64_t)4 * 1024 * 1024);
        ASSERT_TRUE(m->memory_oom_control->oom_kill >= 1);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

        /* Removing the cgroup stops the watch without another OOM call. */
        unsigned calls = s.calls;
        ASSERT_OK(rmdir(dir));
        for (int i = 0; i < 20 && cgroup_oom_watch_active(w); i++)
                ASSERT_OK(sd_event_run(e, 100 * USEC_PER_MSEC));
        ASSERT_FALSE(cgroup_oom_watch_active(w));
        ASSERT_EQ(s.calls, calls);
        /* Only the memory controller had a cgroup of its own; it is gone from
         * the metrics, the others (the root's here) remain. */
        m = stats_v1(cg);
        ASSERT_NULL(m->memory);
        ASSERT_NOT_NULL(m->cpu);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
        w = cgroup_oom_watch_free(w);
}

TEST(real_v1_memory_stats_and_oom) {
        char dir[128];

        if (geteuid() != 0)
                return_skip("needs root");
        if (cgroup_detect_version(NULL) != CGROUP_V1)
                return_skip("host is not cgroup v1");
        if (access("/sys/fs/cgroup/memory/cgroup.event_control", W_OK) < 0)
                return_skip("cgroup v1 memory controller not mounted or not writable");
        snprintf(dir, sizeof(dir), "/sys/fs/cgroup/memory/kyb-test-%d", (int)getpid());
        if (mkdir(dir, 0755) < 0)
                return_skip("cannot create a memory cgroup");

        /* The body runs in its own process so that the cgroup is removed
         * whatever happens to it. */
        fflush(NULL);
        pid_t body = fork();
        ASSERT_TRUE(body >= 0);
        if (body == 0) {
                real_v1_body(dir);
                fflush(NULL);
                _exit(0);
        }
        int status;
        ASSERT_EQ(waitpid(body, &status, 0), body);
        real_cgroup_cleanup(dir);
        ASSERT_TRUE(access(dir, F_OK) < 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
                return_skip("skipped in body");
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* ---- a real runc container on this host ---------------------------------------- */

#define RUNC_LIMIT (32U * 1024U * 1024U)

static int run_cmd(const char *fmt, ...) _printf_(1, 2);
static int run_cmd(const char *fmt, ...) {
        _cleanup_free_ char *cmd = NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&cmd, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        int status = system(cmd);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Turns `runc spec`'s config.json into a detached busybox sleeper with a
 * memory limit in its own cgroup. */
static void edit_spec(const char *bundle, const char *cgpath) {
        char p[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        snprintf(p, sizeof(p), "%s/config.json", bundle);
        ASSERT_OK(read_full_file(p, 1 << 20, &text, NULL));
        cJSON *spec = cJSON_Parse(text);
        ASSERT_NOT_NULL(spec);
        cJSON *process = cJSON_GetObjectItem(spec, "process");
        ASSERT_NOT_NULL(process);
        cJSON_ReplaceItemInObject(process, "terminal", cJSON_CreateFalse());
        const char *args[] = {"/bin/busybox", "sleep", "1000"};
        cJSON_ReplaceItemInObject(process, "args", cJSON_CreateStringArray(args, 3));
        cJSON *linux_ = cJSON_GetObjectItem(spec, "linux");
        ASSERT_NOT_NULL(linux_);
        cJSON_AddStringToObject(linux_, "cgroupsPath", cgpath);
        cJSON *res = cJSON_GetObjectItem(linux_, "resources");
        ASSERT_NOT_NULL(res);
        cJSON *mem = cJSON_AddObjectToObject(res, "memory");
        cJSON_AddNumberToObject(mem, "limit", RUNC_LIMIT);
        cJSON_AddNumberToObject(mem, "swap", RUNC_LIMIT);
        _cleanup_free_ char *out = cJSON_Print(spec);
        cJSON_Delete(spec);
        ASSERT_NOT_NULL(out);
        wfile(bundle, "config.json", out);
}

static void runc_body(const char *bundle, const char *state, const char *id) {
        char p[PATH_MAX];
        _cleanup_free_ char *pidtext = NULL;

        ASSERT_EQ(
                run_cmd("runc --root %s run -d --bundle %s --pid-file %s/init.pid %s </dev/null >/dev/null "
                        "2>%s/runc.log",
                        state, bundle, bundle, id, bundle),
                0);
        snprintf(p, sizeof(p), "%s/init.pid", bundle);
        ASSERT_OK(read_full_file(p, 64, &pidtext, NULL));
        pid_t pid = (pid_t)atoi(pidtext);
        ASSERT_TRUE(pid > 0);
        /* `runc run -d` can return before runc init (several threads, all
         * counted by pids.current) has exec'd the sleeper: wait for the exec. */
        snprintf(p, sizeof(p), "/proc/%d/comm", (int)pid);
        for (int i = 0; i < 1000; i++) {
                _cleanup_free_ char *comm = NULL;
                if (read_full_file(p, 64, &comm, NULL) >= 0 && startswith(comm, "sleep"))
                        break;
                usleep(10000);
        }

        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        ASSERT_OK(cgroup_new_from_pid(NULL, NULL, pid, &cg));
        snprintf(p, sizeof(p), "/sys/fs/cgroup/memory/%s", id);
        ASSERT_STREQ(cgroup_get_dir(cg, "memory"), p);
        snprintf(p, sizeof(p), "/sys/fs/cgroup/pids/%s", id);
        ASSERT_STREQ(cgroup_get_dir(cg, "pids"), p);

        V1Metrics *m = stats_v1(cg);
        ASSERT_NOT_NULL(m->memory);
        ASSERT_TRUE(m->memory->usage->usage > 0);
        ASSERT_EQ(m->memory->usage->limit, RUNC_LIMIT);
        ASSERT_NOT_NULL(m->pids);
        ASSERT_EQ(m->pids->current, 1);
        ASSERT_NOT_NULL(m->cpu);
        ASSERT_TRUE(m->cpu->usage->total > 0);
        ASSERT_TRUE(m->cpu->usage->n_per_cpu > 0);
        fprintf(stderr, "  runc container: memory %llu / %llu, cpu %llu ns, pids %llu\n",
                (unsigned long long)m->memory->usage->usage, (unsigned long long)m->memory->usage->limit,
                (unsigned long long)m->cpu->usage->total, (unsigned long long)m->pids->current);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);

        /* An exec that allocates past the limit: the watch reports the OOM. */
        RealState s = {};
        _cleanup_oom_watch_free_ OomWatch *w = NULL;
        sd_event *e = test_event();
        ASSERT_OK(cgroup_oom_watch(e, cg, on_oom_real, &s, &w));
        ASSERT_NE(run_cmd("runc --root %s exec %s /bin/busybox sh -c "
                          "'x=$(/bin/busybox head -c 100000000 /dev/zero | /bin/busybox tr \"\\0\" a)' "
                          "</dev/null >/dev/null 2>&1",
                          state, id),
                  0);
        uint64_t deadline = now_monotonic_usec() + 20 * USEC_PER_SEC;
        while (s.calls == 0 && now_monotonic_usec() < deadline)
                ASSERT_OK(sd_event_run(e, 100 * USEC_PER_MSEC));
        ASSERT_TRUE(s.calls >= 1);

        /* Deleting the container removes the cgroup: the watch ends. */
        ASSERT_EQ(run_cmd("runc --root %s delete -f %s >/dev/null 2>&1", state, id), 0);
        for (int i = 0; i < 20 && cgroup_oom_watch_active(w); i++)
                ASSERT_OK(sd_event_run(e, 100 * USEC_PER_MSEC));
        ASSERT_FALSE(cgroup_oom_watch_active(w));
        Google__Protobuf__Any *any = NULL;
        ASSERT_ERROR(cgroup_stats(cg, &any), ENOENT);
        w = cgroup_oom_watch_free(w);
}

TEST(real_runc_container_stats_and_oom) {
        char id[64], cgpath[80], bundle[128], rootfs[192], state[192];

        if (geteuid() != 0)
                return_skip("needs root");
        if (cgroup_detect_version(NULL) != CGROUP_V1)
                return_skip("host is not cgroup v1");
        if (access("/sys/fs/cgroup/memory/cgroup.event_control", W_OK) < 0)
                return_skip("cgroup v1 memory controller not mounted or not writable");
        if (run_cmd("command -v runc >/dev/null") != 0 || access("/bin/busybox", X_OK) < 0)
                return_skip("runc or busybox missing");
        if (run_cmd("file -L /bin/busybox 2>/dev/null | grep -q 'statically linked'") != 0 &&
            run_cmd("ldd /bin/busybox 2>&1 | grep -q 'not a dynamic'") != 0)
                return_skip("busybox is not static");

        snprintf(id, sizeof(id), "kyb-cgroup-runc-%d", (int)getpid());
        snprintf(bundle, sizeof(bundle), "%s", test_tmpdir());
        snprintf(rootfs, sizeof(rootfs), "%s/rootfs/bin", bundle);
        snprintf(state, sizeof(state), "%s/state", bundle);
        ASSERT_OK(mkdir_p(rootfs, 0755));
        ASSERT_EQ(run_cmd("cp /bin/busybox %s/busybox && cd %s && runc spec", rootfs, bundle), 0);
        snprintf(cgpath, sizeof(cgpath), "/%s", id);
        edit_spec(bundle, cgpath);

        fflush(NULL);
        pid_t body = fork();
        ASSERT_TRUE(body >= 0);
        if (body == 0) {
                runc_body(bundle, state, id);
                fflush(NULL);
                _exit(0);
        }
        int status;
        ASSERT_EQ(waitpid(body, &status, 0), body);
        (void)run_cmd("runc --root %s delete -f %s >/dev/null 2>&1", state, id);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
                return_skip("skipped in body");
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
