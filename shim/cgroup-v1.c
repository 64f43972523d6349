/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup v1 statistics as containerd's io.containerd.cgroups.v1.Metrics. */
#include <unistd.h>

#include "cgroup-internal.h"
#include "containerd/cgroups/v1/metrics.pb-c.h"

/* ---- cgroup v1 -------------------------------------------------------------- */

typedef Io__Containerd__Cgroups__V1__Metrics V1Metrics;
typedef Io__Containerd__Cgroups__V1__MemoryStat V1Memory;
typedef Io__Containerd__Cgroups__V1__MemoryEntry V1MemoryEntry;
typedef Io__Containerd__Cgroups__V1__BlkIOEntry V1BlkIOEntry;

#define V1M(k, f) \
        { k, offsetof(V1Memory, f) }
static const KeyField v1_memory_keys[] = {
        V1M("cache", cache),
        V1M("rss", rss),
        V1M("rss_huge", rss_huge),
        V1M("mapped_file", mapped_file),
        V1M("dirty", dirty),
        V1M("writeback", writeback),
        V1M("pgpgin", pg_pg_in),
        V1M("pgpgout", pg_pg_out),
        V1M("pgfault", pg_fault),
        V1M("pgmajfault", pg_maj_fault),
        V1M("inactive_anon", inactive_anon),
        V1M("active_anon", active_anon),
        V1M("inactive_file", inactive_file),
        V1M("active_file", active_file),
        V1M("unevictable", unevictable),
        V1M("hierarchical_memory_limit", hierarchical_memory_limit),
        V1M("hierarchical_memsw_limit", hierarchical_swap_limit),
        V1M("total_cache", total_cache),
        V1M("total_rss", total_rss),
        V1M("total_rss_huge", total_rss_huge),
        V1M("total_mapped_file", total_mapped_file),
        V1M("total_dirty", total_dirty),
        V1M("total_writeback", total_writeback),
        V1M("total_pgpgin", total_pg_pg_in),
        V1M("total_pgpgout", total_pg_pg_out),
        V1M("total_pgfault", total_pg_fault),
        V1M("total_pgmajfault", total_pg_maj_fault),
        V1M("total_inactive_anon", total_inactive_anon),
        V1M("total_active_anon", total_active_anon),
        V1M("total_inactive_file", total_inactive_file),
        V1M("total_active_file", total_active_file),
        V1M("total_unevictable", total_unevictable),
};

static const KeyField v1_oom_keys[] = {
        {"oom_kill_disable", offsetof(Io__Containerd__Cgroups__V1__MemoryOomControl, oom_kill_disable)},
        {"under_oom", offsetof(Io__Containerd__Cgroups__V1__MemoryOomControl, under_oom)},
        {"oom_kill", offsetof(Io__Containerd__Cgroups__V1__MemoryOomControl, oom_kill)},
};

static const KeyField v1_throttle_keys[] = {
        {"nr_periods", offsetof(Io__Containerd__Cgroups__V1__Throttle, periods)},
        {"nr_throttled", offsetof(Io__Containerd__Cgroups__V1__Throttle, throttled_periods)},
        {"throttled_time", offsetof(Io__Containerd__Cgroups__V1__Throttle, throttled_time)},
};

static int v1_memory_entry(const char *dir, const char *prefix, V1MemoryEntry **ret) {
        static const struct {
                const char *suffix;
                size_t offset;
        } files[] = {
                {"usage_in_bytes", offsetof(V1MemoryEntry, usage)},
                {"max_usage_in_bytes", offsetof(V1MemoryEntry, max)},
                {"failcnt", offsetof(V1MemoryEntry, failcnt)},
                {"limit_in_bytes", offsetof(V1MemoryEntry, limit)},
        };
        V1MemoryEntry *e = NEW_MSG(V1MemoryEntry, io__containerd__cgroups__v1__memory_entry__init);
        if (!e)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char name[64];
                snprintf(name, sizeof(name), "%s.%s", prefix, files[i].suffix);
                fill_value(dir, name, false, (uint64_t *)((char *)e + files[i].offset));
        }
        *ret = e;
        return 0;
}

static int v1_memory(const char *dir, V1Metrics *m) {
        _cleanup_free_ char *t = NULL;
        size_t n;
        int r;

        V1Memory *mem = NEW_MSG(V1Memory, io__containerd__cgroups__v1__memory_stat__init);
        if (!mem)
                return -ENOMEM;
        m->memory = mem;
        if (read_text(dir, "memory.stat", CGROUP_TEXT_MAX, &t, &n) >= 0)
                kv_apply(t, n, v1_memory_keys, ELEMENTSOF(v1_memory_keys), mem);
        if ((r = v1_memory_entry(dir, "memory", &mem->usage)) < 0 ||
            (r = v1_memory_entry(dir, "memory.memsw", &mem->swap)) < 0 ||
            (r = v1_memory_entry(dir, "memory.kmem", &mem->kernel)) < 0 ||
            (r = v1_memory_entry(dir, "memory.kmem.tcp", &mem->kernel_tcp)) < 0)
                return r;

        Io__Containerd__Cgroups__V1__MemoryOomControl *oc =
                NEW_MSG(Io__Containerd__Cgroups__V1__MemoryOomControl,
                        io__containerd__cgroups__v1__memory_oom_control__init);
        if (!oc)
                return -ENOMEM;
        m->memory_oom_control = oc;
        (void)kv_file(dir, "memory.oom_control", v1_oom_keys, ELEMENTSOF(v1_oom_keys), oc, NULL);
        return 0;
}

/* Clock ticks to nanoseconds without overflow. */
static uint64_t ticks_to_ns(uint64_t ticks, uint64_t hz) {
        if (hz == 0)
                return 0;
        return (ticks / hz) * NSEC_PER_SEC + (ticks % hz) * NSEC_PER_SEC / hz;
}

static int v1_cpu(const char *cpu_dir, const char *acct_dir, V1Metrics *m) {
        Io__Containerd__Cgroups__V1__CPUStat *cpu =
                NEW_MSG(Io__Containerd__Cgroups__V1__CPUStat, io__containerd__cgroups__v1__cpustat__init);
        if (!cpu)
                return -ENOMEM;
        m->cpu = cpu;
        cpu->usage =
                NEW_MSG(Io__Containerd__Cgroups__V1__CPUUsage, io__containerd__cgroups__v1__cpuusage__init);
        cpu->throttling =
                NEW_MSG(Io__Containerd__Cgroups__V1__Throttle, io__containerd__cgroups__v1__throttle__init);
        if (!cpu->usage || !cpu->throttling)
                return -ENOMEM;

        if (acct_dir) {
                _cleanup_free_ char *t = NULL;
                size_t n;
                uint64_t v;

                fill_value(acct_dir, "cpuacct.usage", false, &cpu->usage->total);
                long hz = sysconf(_SC_CLK_TCK);
                if (hz > 0) {
                        if (kv_lookup(acct_dir, "cpuacct.stat", "user", &v) >= 0)
                                cpu->usage->user = ticks_to_ns(v, (uint64_t)hz);
                        if (kv_lookup(acct_dir, "cpuacct.stat", "system", &v) >= 0)
                                cpu->usage->kernel = ticks_to_ns(v, (uint64_t)hz);
                }
                if (read_text(acct_dir, "cpuacct.usage_percpu", CGROUP_TEXT_MAX, &t, &n) >= 0) {
                        /* Space-separated numbers; any bad token discards the list. */
                        uint64_t *a = NULL;
                        size_t k = 0;
                        bool ok = true;
                        for (size_t i = 0; i < n && ok;) {
                                while (i < n && (is_blank(t[i]) || t[i] == '\n'))
                                        i++;
                                if (i >= n)
                                        break;
                                size_t s = i;
                                while (i < n && !is_blank(t[i]) && t[i] != '\n')
                                        i++;
                                if (parse_u64(t + s, i - s, &v) < 0 || k >= CGROUP_PERCPU_MAX) {
                                        ok = false;
                                        break;
                                }
                                uint64_t *na = reallocarray(a, k + 1, sizeof(uint64_t));
                                if (!na) {
                                        free(a);
                                        return -ENOMEM;
                                }
                                a = na;
                                a[k++] = v;
                        }
                        if (ok && k > 0) {
                                cpu->usage->per_cpu = a;
                                cpu->usage->n_per_cpu = k;
                        } else
                                free(a);
                }
        }
        if (cpu_dir)
                (void)kv_file(cpu_dir, "cpu.stat", v1_throttle_keys, ELEMENTSOF(v1_throttle_keys),
                              cpu->throttling, NULL);
        return 0;
}

static int v1_pids(const char *dir, V1Metrics *m) {
        Io__Containerd__Cgroups__V1__PidsStat *p =
                NEW_MSG(Io__Containerd__Cgroups__V1__PidsStat, io__containerd__cgroups__v1__pids_stat__init);
        if (!p)
                return -ENOMEM;
        m->pids = p;
        fill_value(dir, "pids.current", false, &p->current);
        fill_value(dir, "pids.max", false, &p->limit);
        return 0;
}

typedef struct Device {
        uint64_t major, minor;
        char name[64];
} Device;

/* /proc/partitions: two header lines, then "major minor #blocks name". */
static size_t load_partitions(const char *proc_root, Device **ret) {
        _cleanup_free_ char *t = NULL;
        size_t n, k = 0, lineno = 0;
        Device *d = NULL;
        const char *p, *line;
        size_t len;

        *ret = NULL;
        if (read_text(proc_root, "partitions", CGROUP_TEXT_MAX, &t, &n) < 0)
                return 0;
        p = t;
        while (next_line(&p, t + n, &line, &len)) {
                Field f[CGROUP_FIELDS_MAX];
                uint64_t maj, min;
                if (lineno++ < 2)
                        continue;
                if (split_fields(line, len, NULL, f) != 4 || parse_u64(f[0].s, f[0].n, &maj) < 0 ||
                    parse_u64(f[1].s, f[1].n, &min) < 0 || f[3].n + 6 > sizeof(d->name) ||
                    k >= CGROUP_BLKIO_ENTRIES_MAX)
                        continue;
                Device *nd = reallocarray(d, k + 1, sizeof(Device));
                if (!nd)
                        break;
                d = nd;
                d[k].major = maj;
                d[k].minor = min;
                snprintf(d[k].name, sizeof(d[k].name), "/dev/%.*s", (int)f[3].n, f[3].s);
                k++;
        }
        *ret = d;
        return k;
}

static const char *device_name(const Device *d, size_t n, uint64_t major, uint64_t minor) {
        for (size_t i = 0; i < n; i++)
                if (d[i].major == major && d[i].minor == minor)
                        return d[i].name;
        return "";
}

/* One blkio.* file: "maj:min op value", "maj:min value", "Total value". */
static int v1_blkio_file(const char *dir, const char *name, const Device *devs, size_t n_devs,
                         V1BlkIOEntry ***entries, size_t *n_entries) {
        _cleanup_free_ char *t = NULL;
        size_t n, len;
        const char *p, *line;

        if (read_text(dir, name, CGROUP_TEXT_MAX, &t, &n) < 0)
                return 0;
        p = t;
        while (next_line(&p, t + n, &line, &len)) {
                Field f[CGROUP_FIELDS_MAX];
                uint64_t maj, min, v;
                size_t k = split_fields(line, len, ":", f);
                if (k != 3 && k != 4)
                        continue; /* "Total N", blank or garbage */
                if (parse_u64(f[0].s, f[0].n, &maj) < 0 || parse_u64(f[1].s, f[1].n, &min) < 0 ||
                    parse_u64(f[k - 1].s, f[k - 1].n, &v) < 0 || (k == 4 && f[2].n > 32))
                        continue;
                V1BlkIOEntry *e = NEW_MSG(V1BlkIOEntry, io__containerd__cgroups__v1__blk_ioentry__init);
                if (!e)
                        return -ENOMEM;
                e->major = maj;
                e->minor = min;
                e->value = v;
                e->op = k == 4 ? strndup(f[2].s, f[2].n) : strdup("");
                e->device = strdup(device_name(devs, n_devs, maj, min));
                int r = !e->op || !e->device
                                ? -ENOMEM
                                : ptr_array_push((void ***)entries, n_entries, CGROUP_BLKIO_ENTRIES_MAX, e);
                if (r < 0) {
                        io__containerd__cgroups__v1__blk_ioentry__free_unpacked(e, NULL);
                        return r == -E2BIG ? 0 : r;
                }
        }
        return 0;
}

static int v1_blkio(const Cgroup *cg, const char *dir, V1Metrics *m) {
        Io__Containerd__Cgroups__V1__BlkIOStat *b = NEW_MSG(Io__Containerd__Cgroups__V1__BlkIOStat,
                                                            io__containerd__cgroups__v1__blk_iostat__init);
        if (!b)
                return -ENOMEM;
        m->blkio = b;

        Device *devs = NULL;
        size_t n_devs = load_partitions(cg->proc_root, &devs);
        const struct {
                const char *file;
                V1BlkIOEntry ***entries;
                size_t *n;
        } cfq[] =
                {
                        {"blkio.sectors_recursive", &b->sectors_recursive, &b->n_sectors_recursive},
                        {"blkio.io_service_bytes_recursive", &b->io_service_bytes_recursive,
                         &b->n_io_service_bytes_recursive},
                        {"blkio.io_serviced_recursive", &b->io_serviced_recursive,
                         &b->n_io_serviced_recursive},
                        {"blkio.io_queued_recursive", &b->io_queued_recursive, &b->n_io_queued_recursive},
                        {"blkio.io_service_time_recursive", &b->io_service_time_recursive,
                         &b->n_io_service_time_recursive},
                        {"blkio.io_wait_time_recursive", &b->io_wait_time_recursive,
                         &b->n_io_wait_time_recursive},
                        {"blkio.io_merged_recursive", &b->io_merged_recursive, &b->n_io_merged_recursive},
                        {"blkio.time_recursive", &b->io_time_recursive, &b->n_io_time_recursive},
                },
          throttle[] = {
                  {"blkio.throttle.io_serviced", &b->io_serviced_recursive, &b->n_io_serviced_recursive},
                  {"blkio.throttle.io_service_bytes", &b->io_service_bytes_recursive,
                   &b->n_io_service_bytes_recursive},
          };
        size_t total = 0;
        int r = 0;

        /* The CFQ files where the kernel has them, else the throttle files
         * (as containerd does when CFQ reports nothing). */
        for (size_t i = 0; i < ELEMENTSOF(cfq) && r >= 0; i++) {
                r = v1_blkio_file(dir, cfq[i].file, devs, n_devs, cfq[i].entries, cfq[i].n);
                total += *cfq[i].n;
        }
        if (r >= 0 && total == 0)
                for (size_t i = 0; i < ELEMENTSOF(throttle) && r >= 0; i++)
                        r = v1_blkio_file(dir, throttle[i].file, devs, n_devs, throttle[i].entries,
                                          throttle[i].n);
        free(devs);
        return r;
}

static int v1_hugetlb(const char *dir, V1Metrics *m) {
        _cleanup_strv_free_ char **sizes = NULL;
        int r = hugetlb_sizes(dir, "usage_in_bytes", &sizes);
        if (r <= 0)
                return 0;
        STRV_FOREACH (s, sizes) {
                Io__Containerd__Cgroups__V1__HugetlbStat *h =
                        NEW_MSG(Io__Containerd__Cgroups__V1__HugetlbStat,
                                io__containerd__cgroups__v1__hugetlb_stat__init);
                if (!h)
                        return -ENOMEM;
                char name[96];
                snprintf(name, sizeof(name), "hugetlb.%s.usage_in_bytes", *s);
                fill_value(dir, name, false, &h->usage);
                snprintf(name, sizeof(name), "hugetlb.%s.max_usage_in_bytes", *s);
                fill_value(dir, name, false, &h->max);
                snprintf(name, sizeof(name), "hugetlb.%s.failcnt", *s);
                fill_value(dir, name, false, &h->failcnt);
                h->pagesize = strdup(*s);
                r = !h->pagesize ? -ENOMEM
                                 : ptr_array_push((void ***)&m->hugetlb, &m->n_hugetlb,
                                                  CGROUP_HUGETLB_SIZES_MAX, h);
                if (r < 0) {
                        io__containerd__cgroups__v1__hugetlb_stat__free_unpacked(h, NULL);
                        return r < 0 ? r : -ENOMEM;
                }
        }
        return 0;
}

static int v1_stats(const Cgroup *cg, V1Metrics *m) {
        const char *dir[_CTRL_MAX];
        bool any = false;
        int r;

        for (size_t i = 0; i < _CTRL_MAX; i++) {
                dir[i] = dir_exists(cg->dirs[i]) ? cg->dirs[i] : NULL;
                any = any || dir[i];
        }
        if (!any)
                return -ENOENT;
        if (dir[CTRL_HUGETLB] && (r = v1_hugetlb(dir[CTRL_HUGETLB], m)) < 0)
                return r;
        if (dir[CTRL_PIDS] && (r = v1_pids(dir[CTRL_PIDS], m)) < 0)
                return r;
        if ((dir[CTRL_CPU] || dir[CTRL_CPUACCT]) && (r = v1_cpu(dir[CTRL_CPU], dir[CTRL_CPUACCT], m)) < 0)
                return r;
        if (dir[CTRL_MEMORY] && (r = v1_memory(dir[CTRL_MEMORY], m)) < 0)
                return r;
        if (dir[CTRL_BLKIO] && (r = v1_blkio(cg, dir[CTRL_BLKIO], m)) < 0)
                return r;
        return 0;
}

int cgroup_v1_stats(const Cgroup *cg, Google__Protobuf__Any **ret) {
        V1Metrics *m = NEW_MSG(V1Metrics, io__containerd__cgroups__v1__metrics__init);
        if (!m)
                return -ENOMEM;
        int r = v1_stats(cg, m);
        if (r >= 0)
                r = pack_any(&m->base, CGROUP_V1_METRICS_TYPE_URL, ret);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
        return r;
}
