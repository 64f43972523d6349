/* SPDX-License-Identifier: Apache-2.0 */
/* Container cgroups: discovery, metrics (containerd's cgroups v1/v2 Metrics
 * messages) and OOM watches. See cgroup.h. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "cgroup.h"
#include "containerd/cgroups/v1/metrics.pb-c.h"
#include "containerd/cgroups/v2/metrics.pb-c.h"

/* Multi-line files (memory.stat, blkio.*, io.stat, cpuacct.usage_percpu,
 * /proc/<pid>/cgroup, /proc/partitions) and single-value files. */
#define CGROUP_TEXT_MAX (256U * 1024U)
#define CGROUP_PROC_CGROUP_MAX (64U * 1024U)
#define CGROUP_VALUE_MAX 64U
/* Sanity bounds on repeated fields. */
#define CGROUP_PERCPU_MAX 8192U
#define CGROUP_BLKIO_ENTRIES_MAX 4096U
#define CGROUP_HUGETLB_SIZES_MAX 16U
#define CGROUP_FIELDS_MAX 8U

enum {
        CTRL_MEMORY,
        CTRL_CPU,
        CTRL_CPUACCT,
        CTRL_PIDS,
        CTRL_BLKIO,
        CTRL_HUGETLB,
        _CTRL_MAX,
};

static const char *const controller_names[_CTRL_MAX] = {
        [CTRL_MEMORY] = "memory", [CTRL_CPU] = "cpu",     [CTRL_CPUACCT] = "cpuacct",
        [CTRL_PIDS] = "pids",     [CTRL_BLKIO] = "blkio", [CTRL_HUGETLB] = "hugetlb",
};

struct Cgroup {
        CgroupVersion version;
        char *root;
        char *proc_root;
        char *path;            /* inside the hierarchy */
        char *unified;         /* v2: absolute directory */
        char *dirs[_CTRL_MAX]; /* v1: absolute directory per controller, NULL if unknown */
};

/* ---- small parsing helpers ---------------------------------------------- */

static bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

/* Strict decimal: optional '-', then 1..32 digits and nothing else. Values
 * past UINT64_MAX are -ERANGE; negative values (the kernel prints -1 for some
 * unset limits) read as 0, as containerd does. */
static int parse_u64(const char *s, size_t n, uint64_t *ret) {
        bool neg = false;
        uint64_t v = 0;

        if (n > 0 && s[0] == '-') {
                neg = true;
                s++;
                n--;
        }
        if (n == 0 || n > 32)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                unsigned d = (unsigned)(s[i] - '0');
                if (!neg) {
                        if (v > (UINT64_MAX - d) / 10)
                                return -ERANGE;
                        v = v * 10 + d;
                }
        }
        *ret = neg ? 0 : v;
        return 0;
}

static bool token_eq(const char *s, size_t n, const char *lit) {
        return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* Iterates the lines of [*p, end); returns false at the end. The line
 * excludes the newline. */
static bool next_line(const char **p, const char *end, const char **ret_line, size_t *ret_len) {
        if (*p >= end)
                return false;
        const char *nl = memchr(*p, '\n', (size_t)(end - *p));
        const char *stop = nl ? nl : end;
        *ret_line = *p;
        *ret_len = (size_t)(stop - *p);
        *p = nl ? nl + 1 : end;
        return true;
}

typedef struct Field {
        const char *s;
        size_t n;
} Field;

/* Splits a line at blanks (and at extra separator characters in seps, if
 * any). Returns the number of fields, or CGROUP_FIELDS_MAX + 1 if there are
 * more than fit. */
static size_t split_fields(const char *line, size_t len, const char *seps,
                           Field f[static CGROUP_FIELDS_MAX]) {
        size_t k = 0, i = 0;

        for (;;) {
                while (i < len && (is_blank(line[i]) || (seps && line[i] && strchr(seps, line[i]))))
                        i++;
                if (i >= len)
                        return k;
                size_t start = i;
                while (i < len && !is_blank(line[i]) && !(seps && line[i] && strchr(seps, line[i])))
                        i++;
                if (k == CGROUP_FIELDS_MAX)
                        return CGROUP_FIELDS_MAX + 1;
                f[k++] = (Field){line + start, i - start};
        }
}

static int path_join(char *buf, size_t size, const char *dir, const char *name) {
        int n = snprintf(buf, size, "%s/%s", dir, name);
        if (n < 0 || (size_t)n >= size)
                return -ENAMETOOLONG;
        return 0;
}

static int read_text(const char *dir, const char *name, size_t max, char **ret, size_t *ret_size) {
        char p[PATH_MAX];
        int r = path_join(p, sizeof(p), dir, name);
        if (r < 0)
                return r;
        return read_full_file(p, max, ret, ret_size);
}

/* A single-value file: a number, or "max" (v2: UINT64_MAX, v1: 0, as
 * containerd reports them). */
static int read_value(const char *dir, const char *name, bool max_is_infinite, uint64_t *ret) {
        _cleanup_free_ char *t = NULL;
        size_t n;
        int r = read_text(dir, name, CGROUP_VALUE_MAX, &t, &n);
        if (r < 0)
                return r;
        const char *s = t;
        while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\n'))
                n--;
        while (n > 0 && is_blank(*s)) {
                s++;
                n--;
        }
        if (token_eq(s, n, "max")) {
                *ret = max_is_infinite ? UINT64_MAX : 0;
                return 0;
        }
        return parse_u64(s, n, ret);
}

/* Reads a value into *field if the file exists and parses; returns whether
 * it did. */
static bool fill_value(const char *dir, const char *name, bool max_is_infinite, uint64_t *field) {
        uint64_t v;
        if (!dir || read_value(dir, name, max_is_infinite, &v) < 0)
                return false;
        *field = v;
        return true;
}

typedef struct KeyField {
        const char *key;
        size_t offset;
} KeyField;

/* Applies "key value" lines to the uint64 fields of msg named by table.
 * Lines that do not have exactly two fields or whose value does not parse are
 * skipped. Returns the number of lines applied. */
static size_t kv_apply(const char *text, size_t size, const KeyField *table, size_t n_table, void *msg) {
        const char *p = text, *end = text + size, *line;
        size_t len, applied = 0;

        while (next_line(&p, end, &line, &len)) {
                Field f[CGROUP_FIELDS_MAX];
                uint64_t v;
                if (split_fields(line, len, NULL, f) != 2 || parse_u64(f[1].s, f[1].n, &v) < 0)
                        continue;
                for (size_t i = 0; i < n_table; i++)
                        if (token_eq(f[0].s, f[0].n, table[i].key)) {
                                *(uint64_t *)((char *)msg + table[i].offset) = v;
                                applied++;
                                break;
                        }
        }
        return applied;
}

/* Reads a key-value file into msg; -errno if it cannot be read. */
static int kv_file(const char *dir, const char *name, const KeyField *table, size_t n_table, void *msg,
                   size_t *ret_applied) {
        _cleanup_free_ char *t = NULL;
        size_t n;
        if (!dir)
                return -ENOENT;
        int r = read_text(dir, name, CGROUP_TEXT_MAX, &t, &n);
        if (r < 0)
                return r;
        size_t a = kv_apply(t, n, table, n_table, msg);
        if (ret_applied)
                *ret_applied = a;
        return 0;
}

/* One key of a key-value file. */
static int kv_lookup(const char *dir, const char *name, const char *key, uint64_t *ret) {
        struct {
                uint64_t v;
        } box = {0};
        const KeyField t[] = {{key, 0}};
        size_t applied = 0;
        int r = kv_file(dir, name, t, 1, &box, &applied);
        if (r < 0)
                return r;
        if (applied == 0)
                return -ENODATA;
        *ret = box.v;
        return 0;
}

static bool valid_hierarchy_path(const char *path) {
        if (strlen(path) >= PATH_MAX / 2)
                return false;
        /* Refuse ".." components: a path must stay below the root. */
        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                if (e - p == 2 && p[0] == '.' && p[1] == '.')
                        return false;
                p = e;
        }
        for (const char *p = path; *p; p++)
                if (*p == '\n')
                        return false;
        return true;
}

/* ---- discovery ------------------------------------------------------------ */

int cgroup_detect_version(const char *root) {
        char p[PATH_MAX];
        struct stat st;
        int r;

        root = root ?: CGROUP_ROOT_DEFAULT;
        if (stat(root, &st) < 0)
                return negative_errno();
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        r = path_join(p, sizeof(p), root, "cgroup.controllers");
        if (r < 0)
                return r;
        return access(p, F_OK) == 0 ? CGROUP_V2 : CGROUP_V1;
}

static int cgroup_alloc(const char *root, CgroupVersion v, const char *path, Cgroup **ret) {
        Cgroup *cg = calloc(1, sizeof(Cgroup));
        if (!cg)
                return -ENOMEM;
        cg->version = v;
        cg->root = strdup(root);
        cg->proc_root = strdup(CGROUP_PROC_ROOT_DEFAULT);
        cg->path = strdup(path);
        if (!cg->root || !cg->proc_root || !cg->path) {
                cgroup_free(cg);
                return -ENOMEM;
        }
        *ret = cg;
        return 0;
}

static int dir_under(const char *root, const char *sub, const char *path, char **ret) {
        char *d;
        int n;
        /* path starts with '/'; "/" itself adds nothing. */
        const char *rest = streq(path, "/") ? "" : path;
        if (isempty(sub))
                n = asprintf(&d, "%s%s", root, rest);
        else
                n = asprintf(&d, "%s/%s%s", root, sub, rest);
        if (n < 0)
                return -ENOMEM;
        if (strlen(d) >= PATH_MAX) {
                free(d);
                return -ENAMETOOLONG;
        }
        *ret = d;
        return 0;
}

/* v1: the directory of a controller: <root>/<name> if it exists (a plain
 * mount or a symlink such as cpu -> cpu,cpuacct), else <root>/<mount> (the
 * comma-joined list from /proc/<pid>/cgroup). */
static int v1_controller_dir(const char *root, const char *name, const char *mount, const char *path,
                             char **ret) {
        char base[PATH_MAX];
        int r = path_join(base, sizeof(base), root, name);
        if (r < 0)
                return r;
        if (access(base, F_OK) == 0 || !mount)
                return dir_under(root, name, path, ret);
        return dir_under(root, mount, path, ret);
}

int cgroup_new_from_path(const char *root, const char *path, Cgroup **ret) {
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        _cleanup_free_ char *abs = NULL;
        int v, r;

        if (!path || !ret)
                return -EINVAL;
        root = root ?: CGROUP_ROOT_DEFAULT;
        if (path[0] != '/') {
                if (asprintf(&abs, "/%s", path) < 0)
                        return -ENOMEM;
                path = abs;
        }
        if (!valid_hierarchy_path(path))
                return -EINVAL;
        v = cgroup_detect_version(root);
        if (v < 0)
                return v;
        r = cgroup_alloc(root, (CgroupVersion)v, path, &cg);
        if (r < 0)
                return r;
        if (v == CGROUP_V2) {
                r = dir_under(root, "", path, &cg->unified);
                if (r < 0)
                        return r;
        } else {
                for (size_t i = 0; i < _CTRL_MAX; i++) {
                        r = v1_controller_dir(root, controller_names[i], NULL, path, &cg->dirs[i]);
                        if (r < 0)
                                return r;
                }
        }
        *ret = TAKE_PTR(cg);
        return 0;
}

int cgroup_new_from_proc_cgroup(const char *root, const char *text, Cgroup **ret) {
        _cleanup_cgroup_free_ Cgroup *cg = NULL;
        const char *p, *end, *line;
        size_t len;
        int v, r;

        if (!text || !ret)
                return -EINVAL;
        root = root ?: CGROUP_ROOT_DEFAULT;
        size_t size = strnlen(text, CGROUP_PROC_CGROUP_MAX + 1);
        if (size > CGROUP_PROC_CGROUP_MAX)
                return -EFBIG;
        v = cgroup_detect_version(root);
        if (v < 0)
                return v;

        p = text;
        end = text + size;
        while (next_line(&p, end, &line, &len)) {
                /* hierarchy-id:controller-list:path; the path may itself hold ':'. */
                const char *c1 = memchr(line, ':', len);
                if (!c1)
                        continue;
                const char *c2 = memchr(c1 + 1, ':', (size_t)(line + len - c1 - 1));
                if (!c2)
                        continue;
                _cleanup_free_ char *id = strndup(line, (size_t)(c1 - line));
                _cleanup_free_ char *ctrls = strndup(c1 + 1, (size_t)(c2 - c1 - 1));
                _cleanup_free_ char *path = strndup(c2 + 1, (size_t)(line + len - c2 - 1));
                if (!id || !ctrls || !path)
                        return -ENOMEM;
                if (path[0] != '/' || !valid_hierarchy_path(path))
                        continue;

                if (v == CGROUP_V2) {
                        if (!streq(id, "0") || !isempty(ctrls))
                                continue;
                        cg = cgroup_free(cg);
                        r = cgroup_alloc(root, CGROUP_V2, path, &cg);
                        if (r < 0)
                                return r;
                        r = dir_under(root, "", path, &cg->unified);
                        if (r < 0)
                                return r;
                        continue;
                }

                if (isempty(ctrls) || strchr(ctrls, '/') || streq(ctrls, ".") || streq(ctrls, ".."))
                        continue;
                /* v1: every controller of this hierarchy that we read. */
                char *save = NULL;
                _cleanup_free_ char *list = strdup(ctrls);
                if (!list)
                        return -ENOMEM;
                for (char *c = strtok_r(list, ",", &save); c; c = strtok_r(NULL, ",", &save))
                        for (size_t i = 0; i < _CTRL_MAX; i++) {
                                if (!streq(c, controller_names[i]))
                                        continue;
                                if (!cg) {
                                        r = cgroup_alloc(root, CGROUP_V1, path, &cg);
                                        if (r < 0)
                                                return r;
                                }
                                free(cg->dirs[i]);
                                cg->dirs[i] = NULL;
                                r = v1_controller_dir(root, c, ctrls, path, &cg->dirs[i]);
                                if (r < 0)
                                        return r;
                                if (i == CTRL_MEMORY) {
                                        char *dup = strdup(path);
                                        if (!dup)
                                                return -ENOMEM;
                                        free(cg->path);
                                        cg->path = dup;
                                }
                        }
        }
        if (!cg)
                return -ENOENT;
        *ret = TAKE_PTR(cg);
        return 0;
}

int cgroup_new_from_pid(const char *root, const char *proc_root, pid_t pid, Cgroup **ret) {
        _cleanup_free_ char *text = NULL;
        char p[PATH_MAX];
        int r;

        if (pid <= 0 || !ret)
                return -EINVAL;
        proc_root = proc_root ?: CGROUP_PROC_ROOT_DEFAULT;
        r = snprintf(p, sizeof(p), "%s/%d/cgroup", proc_root, (int)pid);
        if (r < 0 || (size_t)r >= sizeof(p))
                return -ENAMETOOLONG;
        r = read_full_file(p, CGROUP_PROC_CGROUP_MAX, &text, NULL);
        if (r < 0)
                return r == -ESRCH ? -ENOENT : r;
        Cgroup *cg;
        r = cgroup_new_from_proc_cgroup(root, text, &cg);
        if (r < 0)
                return r;
        r = cgroup_set_proc_root(cg, proc_root);
        if (r < 0) {
                cgroup_free(cg);
                return r;
        }
        *ret = cg;
        return 0;
}

int cgroup_set_proc_root(Cgroup *cg, const char *proc_root) {
        if (!cg || !proc_root)
                return -EINVAL;
        char *d = strdup(proc_root);
        if (!d)
                return -ENOMEM;
        free(cg->proc_root);
        cg->proc_root = d;
        return 0;
}

Cgroup *cgroup_free(Cgroup *cg) {
        if (!cg)
                return NULL;
        free(cg->root);
        free(cg->proc_root);
        free(cg->path);
        free(cg->unified);
        for (size_t i = 0; i < _CTRL_MAX; i++)
                free(cg->dirs[i]);
        free(cg);
        return NULL;
}

CgroupVersion cgroup_get_version(const Cgroup *cg) {
        return cg->version;
}

const char *cgroup_get_path(const Cgroup *cg) {
        return cg->path;
}

const char *cgroup_get_dir(const Cgroup *cg, const char *controller) {
        if (cg->version == CGROUP_V2)
                return cg->unified;
        for (size_t i = 0; i < _CTRL_MAX; i++)
                if (controller && streq(controller, controller_names[i]))
                        return cg->dirs[i];
        return NULL;
}

static bool dir_exists(const char *d) {
        struct stat st;
        return d && stat(d, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- shared message helpers ----------------------------------------------- */

#define NEW_MSG(type, init_fn)                   \
        ({                                       \
                type *_m = malloc(sizeof(type)); \
                if (_m)                          \
                        init_fn(_m);             \
                _m;                              \
        })

/* Appends to a repeated-message field (array of pointers) with a bound. */
static int ptr_array_push(void ***arr, size_t *n, size_t max, void *item) {
        if (*n >= max)
                return -E2BIG;
        void **a = reallocarray(*arr, *n + 1, sizeof(void *));
        if (!a)
                return -ENOMEM;
        a[(*n)++] = item;
        *arr = a;
        return 0;
}

/* Hugetlb page sizes present in a directory: names "hugetlb.<size>.<suffix>".
 * Returns a sorted, NULL-terminated list. */
static int hugetlb_sizes(const char *dir, const char *suffix, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        DIR *d = opendir(dir);
        if (!d)
                return negative_errno();
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                const char *s = startswith(de->d_name, "hugetlb.");
                if (!s)
                        continue;
                const char *dot = strchr(s, '.');
                if (!dot || dot == s || !streq(dot + 1, suffix) || (size_t)(dot - s) > 16)
                        continue;
                if (n >= CGROUP_HUGETLB_SIZES_MAX)
                        break;
                char **nl = reallocarray(l, n + 2, sizeof(char *));
                if (!nl) {
                        r = -ENOMEM;
                        break;
                }
                l = nl;
                l[n] = strndup(s, (size_t)(dot - s));
                l[n + 1] = NULL;
                if (!l[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0)
                return r;
        /* Deterministic order. */
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && strcmp(l[j - 1], l[j]) > 0; j--) {
                        char *t = l[j];
                        l[j] = l[j - 1];
                        l[j - 1] = t;
                }
        *ret = TAKE_PTR(l);
        return (int)n;
}

static int pack_any(const ProtobufCMessage *m, const char *type_url, Google__Protobuf__Any **ret) {
        Google__Protobuf__Any *any = NEW_MSG(Google__Protobuf__Any, google__protobuf__any__init);
        if (!any)
                return -ENOMEM;
        size_t n = protobuf_c_message_get_packed_size(m);
        any->type_url = strdup(type_url);
        any->value.data = malloc(n ? n : 1);
        if (!any->type_url || !any->value.data) {
                google__protobuf__any__free_unpacked(any, NULL);
                return -ENOMEM;
        }
        any->value.len = protobuf_c_message_pack(m, any->value.data);
        *ret = any;
        return 0;
}

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

int cgroup_stats(const Cgroup *cg, Google__Protobuf__Any **ret) {
        int r;

        if (!cg || !ret)
                return -EINVAL;
        if (cg->version == CGROUP_V2) {
                V2Metrics *m = NEW_MSG(V2Metrics, io__containerd__cgroups__v2__metrics__init);
                if (!m)
                        return -ENOMEM;
                r = v2_stats(cg, m);
                if (r >= 0)
                        r = pack_any(&m->base, CGROUP_V2_METRICS_TYPE_URL, ret);
                io__containerd__cgroups__v2__metrics__free_unpacked(m, NULL);
                return r;
        }
        V1Metrics *m = NEW_MSG(V1Metrics, io__containerd__cgroups__v1__metrics__init);
        if (!m)
                return -ENOMEM;
        r = v1_stats(cg, m);
        if (r >= 0)
                r = pack_any(&m->base, CGROUP_V1_METRICS_TYPE_URL, ret);
        io__containerd__cgroups__v1__metrics__free_unpacked(m, NULL);
        return r;
}

/* ---- OOM watches ------------------------------------------------------------ */

struct OomWatch {
        CgroupVersion version;
        sd_event_source *source;
        char *dir; /* memory (v1) or unified (v2) directory */
        CgroupOomHandler handler;
        void *userdata;
        uint64_t count;
        uint64_t last_oom_kill; /* v2 */
};

static void oom_watch_stop(OomWatch *w) {
        /* Safe from inside the source's own callback: sd-event defers the free. */
        w->source = sd_event_source_disable_unref(w->source);
}

static int oom_v1_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        OomWatch *w = userdata;
        uint64_t n;

        ssize_t k = read(fd, &n, sizeof(n));
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        /* The kernel also signals the eventfd when the cgroup goes away. */
        if (k != (ssize_t)sizeof(n) || !dir_exists(w->dir)) {
                oom_watch_stop(w);
                return 0;
        }
        w->count++;
        /* Last: the handler may free w. */
        w->handler(w->userdata);
        return 0;
}

/* Reads memory.events' oom_kill and cgroup.events' populated. */
static void oom_v2_read(const OomWatch *w, uint64_t *oom_kill, bool *populated) {
        uint64_t v;
        if (kv_lookup(w->dir, "memory.events", "oom_kill", &v) >= 0)
                *oom_kill = v;
        if (kv_lookup(w->dir, "cgroup.events", "populated", &v) >= 0)
                *populated = v != 0;
        else if (!dir_exists(w->dir))
                *populated = false;
}

static int oom_v2_handler(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        OomWatch *w = userdata;
        union {
                struct inotify_event ev;
                char buf[4096];
        } u;
        bool gone = false;

        /* Drain; the events themselves only say "look again". */
        for (;;) {
                ssize_t k = read(fd, &u, sizeof(u));
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (k == 0)
                        break;
                for (ssize_t off = 0; off + (ssize_t)sizeof(struct inotify_event) <= k;) {
                        const struct inotify_event *e = (const struct inotify_event *)(u.buf + off);
                        if (e->mask & (IN_IGNORED | IN_DELETE_SELF))
                                gone = true;
                        off += (ssize_t)sizeof(struct inotify_event) + e->len;
                }
        }

        uint64_t oom_kill = w->last_oom_kill;
        bool populated = true;
        oom_v2_read(w, &oom_kill, &populated);
        bool fire = oom_kill > w->last_oom_kill;
        w->last_oom_kill = oom_kill;
        if (!populated || gone)
                oom_watch_stop(w);
        if (fire) {
                w->count++;
                w->handler(w->userdata); /* last: may free w */
        }
        return 0;
}

static int oom_watch_v1(sd_event *e, OomWatch *w) {
        _cleanup_close_ int efd = -EBADF, ofd = -EBADF, cfd = -EBADF;
        char p[PATH_MAX], buf[64];
        int r;

        efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0)
                return negative_errno();
        r = path_join(p, sizeof(p), w->dir, "memory.oom_control");
        if (r < 0)
                return r;
        ofd = open(p, O_RDONLY | O_CLOEXEC);
        if (ofd < 0)
                return negative_errno();
        r = path_join(p, sizeof(p), w->dir, "cgroup.event_control");
        if (r < 0)
                return r;
        cfd = open(p, O_WRONLY | O_CLOEXEC);
        if (cfd < 0)
                return negative_errno();
        int n = snprintf(buf, sizeof(buf), "%d %d", efd, ofd);
        r = write_all(cfd, buf, (size_t)n);
        if (r < 0)
                return r;
        r = sd_event_add_io(e, &w->source, efd, EPOLLIN, oom_v1_handler, w);
        if (r < 0)
                return r;
        (void)sd_event_source_set_io_fd_own(w->source, true);
        TAKE_FD(efd);
        (void)sd_event_source_set_description(w->source, "cgroup-oom-v1");
        return 0;
}

static int oom_watch_v2(sd_event *e, OomWatch *w) {
        _cleanup_close_ int ifd = -EBADF;
        char p[PATH_MAX];
        bool populated = true;
        int r;

        ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ifd < 0)
                return negative_errno();
        r = path_join(p, sizeof(p), w->dir, "memory.events");
        if (r < 0)
                return r;
        if (inotify_add_watch(ifd, p, IN_MODIFY) < 0)
                return negative_errno();
        r = path_join(p, sizeof(p), w->dir, "cgroup.events");
        if (r < 0)
                return r;
        if (inotify_add_watch(ifd, p, IN_MODIFY) < 0)
                return negative_errno();
        /* Only kills after this point count. */
        oom_v2_read(w, &w->last_oom_kill, &populated);
        r = sd_event_add_io(e, &w->source, ifd, EPOLLIN, oom_v2_handler, w);
        if (r < 0)
                return r;
        (void)sd_event_source_set_io_fd_own(w->source, true);
        TAKE_FD(ifd);
        (void)sd_event_source_set_description(w->source, "cgroup-oom-v2");
        return 0;
}

int cgroup_oom_watch(sd_event *e, const Cgroup *cg, CgroupOomHandler handler, void *userdata,
                     OomWatch **ret) {
        _cleanup_oom_watch_free_ OomWatch *w = NULL;
        int r;

        if (!e || !cg || !handler || !ret)
                return -EINVAL;
        const char *dir = cg->version == CGROUP_V2 ? cg->unified : cg->dirs[CTRL_MEMORY];
        if (!dir_exists(dir))
                return -ENOENT;
        w = calloc(1, sizeof(OomWatch));
        if (!w)
                return -ENOMEM;
        w->version = cg->version;
        w->handler = handler;
        w->userdata = userdata;
        w->dir = strdup(dir);
        if (!w->dir)
                return -ENOMEM;
        r = cg->version == CGROUP_V2 ? oom_watch_v2(e, w) : oom_watch_v1(e, w);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}

uint64_t cgroup_oom_watch_count(const OomWatch *w) {
        return w ? w->count : 0;
}

bool cgroup_oom_watch_active(const OomWatch *w) {
        return w && w->source;
}

OomWatch *cgroup_oom_watch_free(OomWatch *w) {
        if (!w)
                return NULL;
        oom_watch_stop(w);
        free(w->dir);
        free(w);
        return NULL;
}
