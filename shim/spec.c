/* SPDX-License-Identifier: Apache-2.0 */
#include <cJSON.h>

#include "cjson-util.h"
#include "spec.h"
#include "util.h"

#define SPEC_LIST_MAX 4096

void spec_done(Spec *s) {
        free(s->sandbox_id);
        free(s->netns_path);
        strv_free(s->env);
        strv_free(s->annotation_keys);
        strv_free(s->annotation_values);
        *s = (Spec){};
}

static int strv_push(char ***l, size_t *n, const char *v) {
        if (*n >= SPEC_LIST_MAX)
                return -E2BIG;
        char **x = reallocarray(*l, *n + 2, sizeof(char *));
        if (!x)
                return -ENOMEM;
        *l = x;
        x[*n] = strdup(v);
        if (!x[*n])
                return -ENOMEM;
        x[++*n] = NULL;
        return 0;
}

/* The path the namespace of type `which` is joined at, NULL for a new one
 * (or none); *ret_listed: the spec lists that type. */
static const char *namespace_path(const cJSON *root, const char *which, bool *ret_listed) {
        const cJSON *linux_ = cJSON_GetObjectItemCaseSensitive(root, "linux");
        const cJSON *nss = cJSON_GetObjectItemCaseSensitive(linux_, "namespaces");
        const cJSON *ns;
        *ret_listed = false;
        cJSON_ArrayForEach(ns, nss) {
                const cJSON *type = cJSON_GetObjectItemCaseSensitive(ns, "type");
                const cJSON *path = cJSON_GetObjectItemCaseSensitive(ns, "path");
                if (cJSON_IsString(type) && streq(type->valuestring, which)) {
                        *ret_listed = true;
                        return cJSON_IsString(path) && !isempty(path->valuestring) ? path->valuestring
                                                                                   : NULL;
                }
        }
        return NULL;
}

/* SLICE:PREFIX:NAME, SLICE empty or a unit name ending in .slice, no '/'. */
static bool systemd_cgroups_path(const char *p) {
        const char *c1 = p ? strchr(p, ':') : NULL, *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || strchr(c2 + 1, ':') || strchr(p, '/') || c2[1] == 0)
                return false;
        size_t slice = (size_t)(c1 - p);
        return slice == 0 || (slice > 6 && memcmp(c1 - 6, ".slice", 6) == 0);
}

int spec_parse(const char *json, size_t len, Spec *ret) {
        _cleanup_cjson_ cJSON *root = cJSON_ParseWithLength(json, len);
        Spec s = {};
        size_t n_env = 0, n_ann = 0, n_val = 0;
        int r = 0;

        if (!cJSON_IsObject(root))
                return -EBADMSG;
        bool listed;
        s.private_pid_ns = !namespace_path(root, "pid", &listed) && listed;
        const char *netns = namespace_path(root, "network", &listed);
        if (netns && netns[0] == '/' && !(s.netns_path = strdup(netns))) {
                r = -ENOMEM;
                goto fail;
        }
        const cJSON *cgp = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "linux"),
                                                            "cgroupsPath");
        s.systemd_cgroup = cJSON_IsString(cgp) && systemd_cgroups_path(cgp->valuestring);
        const cJSON *env =
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "process"), "env");
        const cJSON *e;
        cJSON_ArrayForEach(e, env) {
                if (cJSON_IsString(e) && (r = strv_push(&s.env, &n_env, e->valuestring)) < 0)
                        goto fail;
        }
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(root, "annotations");
        cJSON_ArrayForEach(e, ann) {
                if (!cJSON_IsString(e) || !e->string)
                        continue;
                if ((r = strv_push(&s.annotation_keys, &n_ann, e->string)) < 0 ||
                    (r = strv_push(&s.annotation_values, &n_val, e->valuestring)) < 0)
                        goto fail;
        }
        const char *sb = spec_annotation(&s, "io.kubernetes.cri.sandbox-id");
        if (sb && !(s.sandbox_id = strdup(sb))) {
                r = -ENOMEM;
                goto fail;
        }
        *ret = s;
        return 0;
fail:
        spec_done(&s);
        return r;
}

int spec_load(const char *bundle, Spec *ret) {
        _cleanup_free_ char *path = NULL, *json = NULL;
        size_t len;
        int r;

        if (asprintf(&path, "%s/config.json", bundle) < 0)
                return -ENOMEM;
        r = read_full_file(path, SPEC_MAX_SIZE, &json, &len);
        if (r < 0)
                return r;
        return spec_parse(json, len, ret);
}

const char *spec_env(const Spec *s, const char *name) {
        size_t l = strlen(name);
        STRV_FOREACH (e, s->env)
                if (strncmp(*e, name, l) == 0 && (*e)[l] == '=')
                        return *e + l + 1;
        return NULL;
}

const char *spec_annotation(const Spec *s, const char *key) {
        for (size_t i = 0; s->annotation_keys && s->annotation_keys[i]; i++)
                if (streq(s->annotation_keys[i], key))
                        return s->annotation_values[i];
        return NULL;
}

static int any_json(const Google__Protobuf__Any *any, cJSON **ret) {
        if (!any || any->value.len == 0 || any->value.len > SPEC_MAX_SIZE)
                return -EINVAL;
        cJSON *j = cJSON_ParseWithLength((const char *)any->value.data, any->value.len);
        if (!cJSON_IsObject(j)) {
                cJSON_Delete(j);
                return -EBADMSG;
        }
        *ret = j;
        return 0;
}

static int print_json(cJSON *j, char **ret) {
        char *s = cJSON_PrintUnformatted(j);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int spec_process_from_any(const Google__Protobuf__Any *any, char **ret_json) {
        _cleanup_cjson_ cJSON *j = NULL;
        int r = any_json(any, &j);
        if (r < 0)
                return r;
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(j, "args");
        const cJSON *cwd = cJSON_GetObjectItemCaseSensitive(j, "cwd");
        if (!cJSON_IsArray(args) || cJSON_GetArraySize(args) == 0)
                return -EINVAL;
        const cJSON *a;
        cJSON_ArrayForEach(a, args) if (!cJSON_IsString(a)) return -EINVAL;
        if (cwd && (!cJSON_IsString(cwd) || cwd->valuestring[0] != '/'))
                return -EINVAL;
        return print_json(j, ret_json);
}

int spec_process_with_terminal(const char *json, bool terminal, char **ret_json) {
        _cleanup_cjson_ cJSON *j = cJSON_Parse(json);
        if (!cJSON_IsObject(j))
                return -EBADMSG;
        cJSON_DeleteItemFromObjectCaseSensitive(j, "terminal");
        if (!cJSON_AddBoolToObject(j, "terminal", terminal))
                return -ENOMEM;
        return print_json(j, ret_json);
}

int spec_resources_from_any(const Google__Protobuf__Any *any, char **ret_json) {
        _cleanup_cjson_ cJSON *j = NULL;
        int r = any_json(any, &j);
        if (r < 0)
                return r;
        return print_json(j, ret_json);
}
