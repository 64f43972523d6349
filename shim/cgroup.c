/* SPDX-License-Identifier: Apache-2.0 */
/* Container cgroups: discovery, and the statistics of either version. See
 * cgroup.h. */
#include <limits.h>
#include <sys/stat.h>

#include "cgroup-internal.h"

static const char *const controller_names[_CTRL_MAX] = {
        [CTRL_MEMORY] = "memory", [CTRL_CPU] = "cpu",     [CTRL_CPUACCT] = "cpuacct",
        [CTRL_PIDS] = "pids",     [CTRL_BLKIO] = "blkio", [CTRL_HUGETLB] = "hugetlb",
};

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

int cgroup_stats(const Cgroup *cg, Google__Protobuf__Any **ret) {
        if (!cg || !ret)
                return -EINVAL;
        return cg->version == CGROUP_V2 ? cgroup_v2_stats(cg, ret) : cgroup_v1_stats(cg, ret);
}
