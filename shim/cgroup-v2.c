/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup v2 statistics as containerd's io.containerd.cgroups.v2.Metrics. */
#include "cgroup-internal.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"

/* ---- cgroup v2 -------------------------------------------------------------- */

typedef Io__Containerd__Cgroups__V2__Metrics V2Metrics;
typedef Io__Containerd__Cgroups__V2__MemoryStat V2Memory;
typedef Io__Containerd__Cgroups__V2__CPUStat V2Cpu;
typedef Io__Containerd__Cgroups__V2__MemoryEvents V2Events;

#define V2M(k) \
        { #k, offsetof(V2Memory, k) }
static const KeyField v2_memory_keys[] = {
        V2M(anon),
        V2M(file),
        V2M(kernel_stack),
        V2M(slab),
        V2M(sock),
        V2M(shmem),
        V2M(file_mapped),
        V2M(file_dirty),
        V2M(file_writeback),
        V2M(anon_thp),
        V2M(inactive_anon),
        V2M(active_anon),
        V2M(inactive_file),
        V2M(active_file),
        V2M(unevictable),
        V2M(slab_reclaimable),
        V2M(slab_unreclaimable),
        V2M(pgfault),
        V2M(pgmajfault),
        V2M(workingset_refault),
        V2M(workingset_activate),
        V2M(workingset_nodereclaim),
        V2M(pgrefill),
        V2M(pgscan),
        V2M(pgsteal),
        V2M(pgactivate),
        V2M(pgdeactivate),
        V2M(pglazyfree),
        V2M(pglazyfreed),
        V2M(thp_fault_alloc),
        V2M(thp_collapse_alloc),
        V2M(workingset_refault_anon),
        V2M(workingset_refault_file),
        V2M(workingset_activate_anon),
        V2M(workingset_activate_file),
};

#define V2C(k) \
        { #k, offsetof(V2Cpu, k) }
static const KeyField v2_cpu_keys[] = {
        V2C(usage_usec),   V2C(user_usec),      V2C(system_usec), V2C(nr_periods),
        V2C(nr_throttled), V2C(throttled_usec), V2C(nr_bursts),   V2C(burst_usec),
};

#define V2E(k) \
        { #k, offsetof(V2Events, k) }
static const KeyField v2_events_keys[] = {
        V2E(low), V2E(high), V2E(max), V2E(oom), V2E(oom_kill), V2E(oom_group_kill),
};

/* A decimal with an optional fraction ("0.25"), strictly. */
static int parse_decimal(const char *s, size_t n, double *ret) {
        double v = 0, scale = 1;
        bool dot = false, digits = false;
        if (n == 0 || n > 32)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '.' && !dot) {
                        dot = true;
                        continue;
                }
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                digits = true;
                if (dot) {
                        scale /= 10;
                        v += (s[i] - '0') * scale;
                } else
                        v = v * 10 + (s[i] - '0');
        }
        if (!digits)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* A *.pressure file: "some avg10=.. avg60=.. avg300=.. total=..", "full ...".
 * *ret stays NULL when the file is absent or has no valid line. */
static int v2_psi(const char *dir, const char *name, Io__Containerd__Cgroups__V2__PSIStats **ret) {
        _cleanup_free_ char *t = NULL;
        size_t n, len;
        const char *p, *line;

        *ret = NULL;
        if (read_text(dir, name, CGROUP_TEXT_MAX, &t, &n) < 0)
                return 0;
        Io__Containerd__Cgroups__V2__PSIStats *psi =
                NEW_MSG(Io__Containerd__Cgroups__V2__PSIStats, io__containerd__cgroups__v2__psistats__init);
        if (!psi)
                return -ENOMEM;
        p = t;
        while (next_line(&p, t + n, &line, &len)) {
                Field f[CGROUP_FIELDS_MAX];
                size_t k = split_fields(line, len, NULL, f);
                Io__Containerd__Cgroups__V2__PSIData **slot;
                if (k != 5)
                        continue;
                if (token_eq(f[0].s, f[0].n, "some"))
                        slot = &psi->some;
                else if (token_eq(f[0].s, f[0].n, "full"))
                        slot = &psi->full;
                else
                        continue;
                Io__Containerd__Cgroups__V2__PSIData d = IO__CONTAINERD__CGROUPS__V2__PSIDATA__INIT;
                bool ok = true;
                for (size_t i = 1; i < k && ok; i++) {
                        const char *eq = memchr(f[i].s, '=', f[i].n);
                        if (!eq) {
                                ok = false;
                                break;
                        }
                        size_t kl = (size_t)(eq - f[i].s), vl = f[i].n - kl - 1;
                        if (token_eq(f[i].s, kl, "avg10"))
                                ok = parse_decimal(eq + 1, vl, &d.avg10) >= 0;
                        else if (token_eq(f[i].s, kl, "avg60"))
                                ok = parse_decimal(eq + 1, vl, &d.avg60) >= 0;
                        else if (token_eq(f[i].s, kl, "avg300"))
                                ok = parse_decimal(eq + 1, vl, &d.avg300) >= 0;
                        else if (token_eq(f[i].s, kl, "total"))
                                ok = parse_u64(eq + 1, vl, &d.total) >= 0;
                }
                if (!ok || *slot)
                        continue;
                *slot = NEW_MSG(Io__Containerd__Cgroups__V2__PSIData,
                                io__containerd__cgroups__v2__psidata__init);
                if (!*slot) {
                        io__containerd__cgroups__v2__psistats__free_unpacked(psi, NULL);
                        return -ENOMEM;
                }
                (*slot)->avg10 = d.avg10;
                (*slot)->avg60 = d.avg60;
                (*slot)->avg300 = d.avg300;
                (*slot)->total = d.total;
        }
        if (!psi->some && !psi->full) {
                io__containerd__cgroups__v2__psistats__free_unpacked(psi, NULL);
                return 0;
        }
        *ret = psi;
        return 0;
}

/* io.stat: "maj:min rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N". */
static int v2_io(const char *dir, V2Metrics *m) {
        _cleanup_free_ char *t = NULL;
        size_t n, len;
        const char *p, *line;
        int r;

        Io__Containerd__Cgroups__V2__IOStat *io =
                NEW_MSG(Io__Containerd__Cgroups__V2__IOStat, io__containerd__cgroups__v2__iostat__init);
        if (!io)
                return -ENOMEM;
        m->io = io;
        r = v2_psi(dir, "io.pressure", &io->psi);
        if (r < 0)
                return r;
        if (read_text(dir, "io.stat", CGROUP_TEXT_MAX, &t, &n) < 0)
                return 0;
        p = t;
        while (next_line(&p, t + n, &line, &len)) {
                Field f[CGROUP_FIELDS_MAX];
                size_t k = split_fields(line, len, NULL, f);
                uint64_t maj, min;
                if (k < 1 || k > CGROUP_FIELDS_MAX)
                        continue;
                const char *colon = memchr(f[0].s, ':', f[0].n);
                if (!colon || parse_u64(f[0].s, (size_t)(colon - f[0].s), &maj) < 0 ||
                    parse_u64(colon + 1, f[0].n - (size_t)(colon - f[0].s) - 1, &min) < 0)
                        continue;
                Io__Containerd__Cgroups__V2__IOEntry *e = NEW_MSG(
                        Io__Containerd__Cgroups__V2__IOEntry, io__containerd__cgroups__v2__ioentry__init);
                if (!e)
                        return -ENOMEM;
                e->major = maj;
                e->minor = min;
                for (size_t i = 1; i < k; i++) {
                        const char *eq = memchr(f[i].s, '=', f[i].n);
                        uint64_t v;
                        if (!eq || parse_u64(eq + 1, f[i].n - (size_t)(eq - f[i].s) - 1, &v) < 0)
                                continue;
                        size_t kl = (size_t)(eq - f[i].s);
                        if (token_eq(f[i].s, kl, "rbytes"))
                                e->rbytes = v;
                        else if (token_eq(f[i].s, kl, "wbytes"))
                                e->wbytes = v;
                        else if (token_eq(f[i].s, kl, "rios"))
                                e->rios = v;
                        else if (token_eq(f[i].s, kl, "wios"))
                                e->wios = v;
                }
                r = ptr_array_push((void ***)&io->usage, &io->n_usage, CGROUP_BLKIO_ENTRIES_MAX, e);
                if (r < 0) {
                        free(e);
                        return r == -E2BIG ? 0 : r;
                }
        }
        return 0;
}

static int v2_hugetlb(const char *dir, V2Metrics *m) {
        _cleanup_strv_free_ char **sizes = NULL;
        int r = hugetlb_sizes(dir, "current", &sizes);
        if (r <= 0)
                return 0;
        STRV_FOREACH (s, sizes) {
                Io__Containerd__Cgroups__V2__HugeTlbStat *h =
                        NEW_MSG(Io__Containerd__Cgroups__V2__HugeTlbStat,
                                io__containerd__cgroups__v2__huge_tlb_stat__init);
                if (!h)
                        return -ENOMEM;
                char name[96];
                snprintf(name, sizeof(name), "hugetlb.%s.current", *s);
                fill_value(dir, name, true, &h->current);
                snprintf(name, sizeof(name), "hugetlb.%s.max", *s);
                fill_value(dir, name, true, &h->max);
                snprintf(name, sizeof(name), "hugetlb.%s.events", *s);
                (void)kv_lookup(dir, name, "max", &h->failcnt);
                h->pagesize = strdup(*s);
                r = !h->pagesize ? -ENOMEM
                                 : ptr_array_push((void ***)&m->hugetlb, &m->n_hugetlb,
                                                  CGROUP_HUGETLB_SIZES_MAX, h);
                if (r < 0) {
                        io__containerd__cgroups__v2__huge_tlb_stat__free_unpacked(h, NULL);
                        return r < 0 ? r : -ENOMEM;
                }
        }
        return 0;
}

static int v2_stats(const Cgroup *cg, V2Metrics *m) {
        const char *dir = cg->unified;
        int r;

        if (!dir_exists(dir))
                return -ENOENT;

        m->pids =
                NEW_MSG(Io__Containerd__Cgroups__V2__PidsStat, io__containerd__cgroups__v2__pids_stat__init);
        if (!m->pids)
                return -ENOMEM;
        fill_value(dir, "pids.current", true, &m->pids->current);
        fill_value(dir, "pids.max", true, &m->pids->limit);

        m->cpu = NEW_MSG(V2Cpu, io__containerd__cgroups__v2__cpustat__init);
        if (!m->cpu)
                return -ENOMEM;
        (void)kv_file(dir, "cpu.stat", v2_cpu_keys, ELEMENTSOF(v2_cpu_keys), m->cpu, NULL);
        r = v2_psi(dir, "cpu.pressure", &m->cpu->psi);
        if (r < 0)
                return r;

        m->memory = NEW_MSG(V2Memory, io__containerd__cgroups__v2__memory_stat__init);
        if (!m->memory)
                return -ENOMEM;
        (void)kv_file(dir, "memory.stat", v2_memory_keys, ELEMENTSOF(v2_memory_keys), m->memory, NULL);
        fill_value(dir, "memory.current", true, &m->memory->usage);
        fill_value(dir, "memory.max", true, &m->memory->usage_limit);
        fill_value(dir, "memory.peak", true, &m->memory->max_usage);
        fill_value(dir, "memory.swap.current", true, &m->memory->swap_usage);
        fill_value(dir, "memory.swap.max", true, &m->memory->swap_limit);
        fill_value(dir, "memory.swap.peak", true, &m->memory->swap_max_usage);
        r = v2_psi(dir, "memory.pressure", &m->memory->psi);
        if (r < 0)
                return r;

        V2Events ev = IO__CONTAINERD__CGROUPS__V2__MEMORY_EVENTS__INIT;
        size_t applied = 0;
        if (kv_file(dir, "memory.events", v2_events_keys, ELEMENTSOF(v2_events_keys), &ev, &applied) >= 0 &&
            applied > 0) {
                m->memory_events = NEW_MSG(V2Events, io__containerd__cgroups__v2__memory_events__init);
                if (!m->memory_events)
                        return -ENOMEM;
                m->memory_events->low = ev.low;
                m->memory_events->high = ev.high;
                m->memory_events->max = ev.max;
                m->memory_events->oom = ev.oom;
                m->memory_events->oom_kill = ev.oom_kill;
                m->memory_events->oom_group_kill = ev.oom_group_kill;
        }

        r = v2_io(dir, m);
        if (r < 0)
                return r;
        return v2_hugetlb(dir, m);
}

int cgroup_v2_stats(const Cgroup *cg, Google__Protobuf__Any **ret) {
        V2Metrics *m = NEW_MSG(V2Metrics, io__containerd__cgroups__v2__metrics__init);
        if (!m)
                return -ENOMEM;
        int r = v2_stats(cg, m);
        if (r >= 0)
                r = pack_any(&m->base, CGROUP_V2_METRICS_TYPE_URL, ret);
        io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
        return r;
}
