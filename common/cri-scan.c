/* SPDX-License-Identifier: Apache-2.0 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>

#include "cri-scan.h"
#include "util.h"

#define RUNC_STATE_MAX (4u << 20)
#define SPEC_MAX (16u << 20)
#define IDENT_MAX 253

static bool ident_ok(const char *s) {
        size_t l = strlen(s);
        return l > 0 && l <= IDENT_MAX &&
               strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == l;
}

static char *annotation(const cJSON *ann, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(ann, key);
        return cJSON_IsString(v) && ident_ok(v->valuestring) ? strdup(v->valuestring) : NULL;
}

/* The bundle (the config's label "bundle=...", the last if several), init
 * pid and cgroup of a state.json. */
static int parse_state(CriContainer *c, char **ret_bundle) {
        cJSON *st = cJSON_Parse(c->state);
        const cJSON *labels =
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "config"), "labels");
        const cJSON *l, *pid = cJSON_GetObjectItemCaseSensitive(st, "init_process_pid");
        const cJSON *paths = cJSON_GetObjectItemCaseSensitive(st, "cgroup_paths");
        const cJSON *v1 = cJSON_GetObjectItemCaseSensitive(paths, "freezer");
        const cJSON *cg = cJSON_IsString(v1) ? v1 : cJSON_GetObjectItemCaseSensitive(paths, "");
        int r = -EBADMSG;
        cJSON_ArrayForEach(l, labels) {
                const char *b = cJSON_IsString(l) ? startswith(l->valuestring, "bundle=") : NULL;
                if (b && b[0] == '/') {
                        free(*ret_bundle);
                        r = (*ret_bundle = strdup(b)) ? 0 : -ENOMEM;
                }
        }
        if (cJSON_IsNumber(pid) && pid->valuedouble >= 1 && pid->valuedouble <= 4194304) {
                c->pid = (int)pid->valuedouble;
                c->alive = kill(c->pid, 0) >= 0;
        }
        if (r >= 0 && cJSON_IsString(cg) && startswith(cg->valuestring, "/sys/fs/cgroup/") &&
            !strstr(cg->valuestring, "/../") && !(c->cgroup = strdup(cg->valuestring)))
                r = -ENOMEM;
        cJSON_Delete(st);
        return r;
}

static void container_done(CriContainer *c) {
        free(c->id);
        free(c->state);
        free(c->type);
        free(c->sandbox_id);
        free(c->sandbox_name);
        free(c->sandbox_namespace);
        free(c->name);
        free(c->cgroup);
}

/* -ENOENT: not a CRI container, or gone meanwhile. */
static int container_read(const char *runc_root, const char *id, CriContainer *ret) {
        _cleanup_free_ char *state_path = NULL, *bundle = NULL, *spec_path = NULL, *spec = NULL;
        CriContainer c = {};
        struct stat st;

        if (!ident_ok(id) || asprintf(&state_path, "%s/%s/state.json", runc_root, id) < 0)
                return -ENOENT;
        if (read_full_file(state_path, RUNC_STATE_MAX, &c.state, NULL) < 0 || parse_state(&c, &bundle) < 0 ||
            asprintf(&spec_path, "%s/config.json", bundle) < 0 ||
            read_full_file(spec_path, SPEC_MAX, &spec, NULL) < 0) {
                container_done(&c);
                return -ENOENT;
        }
        cJSON *o = cJSON_Parse(spec);
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(o, "annotations");
        c.type = annotation(ann, "io.kubernetes.cri.container-type");
        c.sandbox_id = annotation(ann, "io.kubernetes.cri.sandbox-id");
        c.sandbox_name = annotation(ann, "io.kubernetes.cri.sandbox-name");
        c.sandbox_namespace = annotation(ann, "io.kubernetes.cri.sandbox-namespace");
        c.name = annotation(ann, CRI_CONTAINER_NAME_ANNOTATION);
        cJSON_Delete(o);
        c.id = strdup(id);
        if (stat(state_path, &st) >= 0)
                c.created_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        if (!c.id || !c.type || !c.sandbox_id) {
                container_done(&c);
                return -ENOENT;
        }
        *ret = c;
        return 0;
}

void cri_containers_free(CriContainer *c, size_t n) {
        for (size_t i = 0; c && i < n; i++)
                container_done(&c[i]);
        free(c);
}

int cri_scan(const char *runc_root, CriContainer **ret, size_t *ret_n) {
        DIR *d = opendir(runc_root);
        if (!d)
                return negative_errno();
        CriContainer *all = NULL;
        size_t n = 0;
        struct dirent *de;
        int r = 0;
        while (r >= 0 && (de = readdir_no_dot(d))) {
                CriContainer c;
                if (n >= CRI_SCAN_MAX)
                        r = -E2BIG;
                else if (container_read(runc_root, de->d_name, &c) >= 0) {
                        CriContainer *m = reallocarray(all, n + 1, sizeof(*m));
                        if (!m) {
                                container_done(&c);
                                r = -ENOMEM;
                        } else {
                                all = m;
                                all[n++] = c;
                        }
                }
        }
        closedir(d);
        if (r < 0) {
                cri_containers_free(all, n);
                return r;
        }
        *ret = all;
        *ret_n = n;
        return 0;
}
