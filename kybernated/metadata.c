/* SPDX-License-Identifier: Apache-2.0 */
#include <cJSON.h>
#include <limits.h>
#include <stdio.h>
#include <time.h>

#include "cjson-util.h"
#include "image-ref.h"
#include "metadata.h"
#include "resolve.h"
#include "util.h"

static const char *get_str(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Validators of a field's value (1..max characters). */
typedef bool (*ValidFn)(const char *v, size_t max);

static bool valid_ident(const char *v, size_t max) {
        return ident_valid(v, max);
}

static bool valid_image(const char *v, size_t max) {
        return strlen(v) <= max && image_ref_valid(v);
}

/* Free text (versions, digests): no control characters. */
static bool valid_text(const char *v, size_t max) {
        if (strlen(v) > max)
                return false;
        for (; *v; v++)
                if ((unsigned char)*v < 0x20 || *v == 0x7f)
                        return false;
        return true;
}

/* Sets *field from the first annotation among keys that is valid. */
static int set_from(char **field, const cJSON *ann, const char *const *keys, size_t max, ValidFn valid) {
        if (!isempty(*field))
                return 0;
        for (; *keys; keys++) {
                const char *v = get_str(ann, *keys);
                if (isempty(v) || strlen(v) > max)
                        continue;
                if (!valid(v, max))
                        continue;
                char *s = strdup(v);
                if (!s)
                        return -ENOMEM;
                free(*field);
                *field = s;
                return 0;
        }
        return 0;
}

int metadata_from_spec(const char *spec_json, CatalogEntry *e) {
        _cleanup_cjson_ cJSON *spec = cJSON_Parse(spec_json);
        if (!cJSON_IsObject(spec))
                return -EBADMSG;
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(spec, "annotations");
        if (!cJSON_IsObject(ann))
                return 0;
        static const char *const ns[] = {"io.kubernetes.cri.sandbox-namespace",
                                         "io.kubernetes.pod.namespace", NULL};
        static const char *const pod[] = {"io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name", NULL};
        static const char *const ctr[] = {"io.kubernetes.cri.container-name", "io.kubernetes.container.name",
                                          NULL};
        static const char *const img[] = {"io.kubernetes.cri.image-name", "io.kubernetes.cri-o.ImageName",
                                          NULL};
        int r = 0;
        r |= set_from(&e->k8s_namespace, ann, ns, IDENT_MAX_LEN, valid_ident);
        r |= set_from(&e->k8s_pod, ann, pod, IDENT_MAX_LEN, valid_ident);
        r |= set_from(&e->k8s_container, ann, ctr, IDENT_MAX_LEN, valid_ident);
        r |= set_from(&e->image_ref, ann, img, IMAGE_REF_MAX, valid_image);
        return r < 0 ? -ENOMEM : 0;
}

int metadata_parse_runc_state(const char *json, char **ret_bundle, char **ret_created) {
        _cleanup_cjson_ cJSON *st = cJSON_Parse(json);
        if (!cJSON_IsObject(st))
                return -EBADMSG;
        /* `runc state` prints "bundle"; runc's own state.json keeps it as the
         * label "bundle=..." of its config. */
        const char *bundle = get_str(st, "bundle");
        const cJSON *labels =
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(st, "config"), "labels");
        const cJSON *l;
        if (!bundle && cJSON_IsArray(labels))
                cJSON_ArrayForEach(l, labels) {
                        if (cJSON_IsString(l) && startswith(l->valuestring, "bundle="))
                                bundle = l->valuestring + strlen("bundle=");
                }
        const char *created = get_str(st, "created");
        if (isempty(bundle) || bundle[0] != '/')
                return -EBADMSG;
        *ret_bundle = strdup(bundle);
        *ret_created = strdup(created ? created : "");
        if (!*ret_bundle || !*ret_created)
                return -ENOMEM;
        return 0;
}

int metadata_runc_state_pid(const char *json, pid_t *ret) {
        _cleanup_cjson_ cJSON *st = cJSON_Parse(json);
        if (!cJSON_IsObject(st))
                return -EBADMSG;
        /* `runc state` prints "pid"; state.json keeps "init_process_pid". */
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(st, "pid");
        if (!cJSON_IsNumber(v))
                v = cJSON_GetObjectItemCaseSensitive(st, "init_process_pid");
        if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 4194304)
                return -ENOENT;
        *ret = (pid_t)v->valuedouble;
        return 0;
}

int metadata_runc_state_frozen(const char *json) {
        _cleanup_cjson_ cJSON *st = cJSON_Parse(json);
        if (!cJSON_IsObject(st))
                return -EBADMSG;
        const cJSON *status = cJSON_GetObjectItemCaseSensitive(st, "status");
        if (cJSON_IsString(status))
                return streq(status->valuestring, "paused");

        const cJSON *paths = cJSON_GetObjectItemCaseSensitive(st, "cgroup_paths");
        const cJSON *v1 = cJSON_GetObjectItemCaseSensitive(paths, "freezer");
        const cJSON *v2 = cJSON_GetObjectItemCaseSensitive(paths, "");
        const cJSON *dir = cJSON_IsString(v1) ? v1 : v2;
        if (!cJSON_IsString(dir) ||
            !path_allowed(dir->valuestring, (char *[]){(char *)"/sys/fs/cgroup", NULL}))
                return -ENODATA;
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/%s", dir->valuestring, dir == v1 ? "freezer.state" : "cgroup.freeze") < 0)
                return -ENOMEM;
        if (read_full_file(path, 64, &text, NULL) < 0)
                return -ENODATA;
        return dir == v1 ? startswith(text, "FROZEN") != NULL : startswith(text, "1") != NULL;
}

static int write_json(const char *dir, const char *file, cJSON *o, bool sync) {
        _cleanup_free_ char *text = cJSON_Print(o);
        _cleanup_free_ char *path = NULL;
        if (!text || asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        /* The directory is synced by the caller. */
        return write_file_replace(path, text, strlen(text), 0600, sync);
}

/* dir/file parsed, or NULL if absent or invalid. */
static cJSON *read_json(const char *dir, const char *file) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return NULL;
        if (read_full_file(path, 1 << 20, &text, NULL) < 0)
                return NULL;
        return cJSON_Parse(text);
}

static void rfc3339(int64_t ns, char buf[static 40]) {
        time_t t = (time_t)(ns / (int64_t)NSEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, 40 - n, ".%09lldZ", (long long)(ns % (int64_t)NSEC_PER_SEC));
}

/* old's "rootfsDiff" into o: only the members metadata_set_rootfs_diff()
 * writes, with their types, strings as paths or free text. An imported
 * archive's kybernate.json is untrusted: kept whole, a 10 KiB subtree nested
 * 990 deep printed (indented) to more than the 1 MiB its readers take. */
static int rootfs_diff_copy(const cJSON *old, cJSON *o) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(old, "rootfsDiff");
        if (!cJSON_IsObject(d))
                return 0;
        cJSON *n = cJSON_AddObjectToObject(o, "rootfsDiff");
        if (!n)
                return -ENOMEM;
        const cJSON *captured = cJSON_GetObjectItemCaseSensitive(d, "captured");
        if (cJSON_IsBool(captured) && !cJSON_AddBoolToObject(n, "captured", cJSON_IsTrue(captured)))
                return -ENOMEM;
        static const char *const strs[] = {"rootfs", "upperdir", "note"};
        for (size_t i = 0; i < ELEMENTSOF(strs); i++) {
                const char *v = get_str(d, strs[i]);
                if (v && valid_text(v, PATH_MAX) && !cJSON_AddStringToObject(n, strs[i], v))
                        return -ENOMEM;
        }
        static const char *const nums[] = {"entries", "deleted", "skipped", "archiveBytes"};
        for (size_t i = 0; i < ELEMENTSOF(nums); i++) {
                const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, nums[i]);
                if (cJSON_IsNumber(v) && !cJSON_AddNumberToObject(n, nums[i], v->valuedouble))
                        return -ENOMEM;
        }
        return 0;
}

int metadata_write_kybernate_json(const char *dir, const CatalogEntry *e, bool sync) {
        _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
        if (!o)
                return -ENOMEM;
        char created[40];
        rfc3339(e->created_ns, created);
        struct {
                const char *k, *v;
        } strs[] = {
                {"id", e->id},
                {"name", e->name},
                {"containerdNamespace", e->containerd_namespace},
                {"k8sNamespace", e->k8s_namespace},
                {"k8sPod", e->k8s_pod},
                {"k8sContainer", e->k8s_container},
                {"containerId", e->container_id},
                {"imageRef", e->image_ref},
                {"imageDigest", e->image_digest},
                {"created", created},
                {"runcVersion", e->runc_version},
                {"criuVersion", e->criu_version},
                {"kernelVersion", e->kernel_version},
                {"bundle", e->bundle},
        };
        cJSON_AddNumberToObject(o, "version", 1);
        for (size_t i = 0; i < ELEMENTSOF(strs); i++)
                if (!cJSON_AddStringToObject(o, strs[i].k, strs[i].v ? strs[i].v : ""))
                        return -ENOMEM;
        cJSON_AddNumberToObject(o, "createdNs", (double)e->created_ns);
        cJSON *opts = cJSON_AddObjectToObject(o, "options");
        if (!opts)
                return -ENOMEM;
        cJSON_AddBoolToObject(opts, "leaveRunning", !!(e->options & CKPT_OPT_LEAVE_RUNNING));
        cJSON_AddBoolToObject(opts, "tcpEstablished", !!(e->options & CKPT_OPT_TCP_ESTABLISHED));
        cJSON_AddBoolToObject(opts, "extUnixSk", !!(e->options & CKPT_OPT_EXT_UNIX_SK));
        cJSON_AddBoolToObject(opts, "fileLocks", !!(e->options & CKPT_OPT_FILE_LOCKS));
        cJSON_AddBoolToObject(opts, "shellJob", !!(e->options & CKPT_OPT_SHELL_JOB));
        cJSON_AddBoolToObject(o, "allowCrossNamespace", e->allow_cross_namespace);
        /* Rewritten (import): what the checkpoint recorded about its rootfs stays. */
        _cleanup_cjson_ cJSON *old = read_json(dir, "kybernate.json");
        int r = rootfs_diff_copy(old, o);
        if (r < 0)
                return r;
        return write_json(dir, "kybernate.json", o, sync);
}

int metadata_spec_root_path(const char *spec_json, char **ret) {
        _cleanup_cjson_ cJSON *spec = cJSON_Parse(spec_json);
        if (!spec)
                return -EBADMSG;
        const char *p = get_str(cJSON_GetObjectItemCaseSensitive(spec, "root"), "path");
        if (isempty(p) || strlen(p) >= 4096)
                return -ENOENT;
        char *s = strdup(p);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int metadata_set_rootfs_diff(const char *dir, const MetadataRootfsDiff *d, bool sync) {
        _cleanup_cjson_ cJSON *o = read_json(dir, "kybernate.json");
        if (!o || !cJSON_IsObject(o))
                return -EBADMSG;
        cJSON_DeleteItemFromObjectCaseSensitive(o, "rootfsDiff");
        cJSON *r = cJSON_AddObjectToObject(o, "rootfsDiff");
        if (!r || !cJSON_AddBoolToObject(r, "captured", d->captured) ||
            !cJSON_AddStringToObject(r, "rootfs", d->rootfs ? d->rootfs : "") ||
            (d->upperdir && !cJSON_AddStringToObject(r, "upperdir", d->upperdir)) ||
            (d->note && !cJSON_AddStringToObject(r, "note", d->note)))
                return -ENOMEM;
        if (d->captured && (!cJSON_AddNumberToObject(r, "entries", (double)d->entries) ||
                            !cJSON_AddNumberToObject(r, "deleted", (double)d->deleted) ||
                            !cJSON_AddNumberToObject(r, "skipped", (double)d->skipped) ||
                            !cJSON_AddNumberToObject(r, "archiveBytes", (double)d->bytes)))
                return -ENOMEM;
        return write_json(dir, "kybernate.json", o, sync);
}

static int take(char **field, const cJSON *o, const char *key, size_t max, ValidFn valid) {
        const char *v = get_str(o, key);
        if (!isempty(*field) || isempty(v) || strlen(v) > max)
                return 0;
        if (!valid(v, max))
                return -EINVAL;
        char *s = strdup(v);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

int metadata_read_kybernate_json(const char *dir, CatalogEntry *e) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/kybernate.json", dir) < 0)
                return -ENOMEM;
        int r = read_full_file(path, 1 << 20, &text, NULL);
        if (r < 0)
                return r;
        _cleanup_cjson_ cJSON *o = cJSON_Parse(text);
        if (!cJSON_IsObject(o))
                return -EBADMSG;
        r = 0;
        r = r < 0 ? r : take(&e->containerd_namespace, o, "containerdNamespace", IDENT_MAX_LEN, valid_ident);
        r = r < 0 ? r : take(&e->k8s_namespace, o, "k8sNamespace", IDENT_MAX_LEN, valid_ident);
        r = r < 0 ? r : take(&e->k8s_pod, o, "k8sPod", IDENT_MAX_LEN, valid_ident);
        r = r < 0 ? r : take(&e->k8s_container, o, "k8sContainer", IDENT_MAX_LEN, valid_ident);
        r = r < 0 ? r : take(&e->container_id, o, "containerId", IDENT_MAX_LEN, valid_ident);
        r = r < 0 ? r : take(&e->image_ref, o, "imageRef", IMAGE_REF_MAX, valid_image);
        r = r < 0 ? r : take(&e->image_digest, o, "imageDigest", 256, valid_text);
        r = r < 0 ? r : take(&e->runc_version, o, "runcVersion", 256, valid_text);
        r = r < 0 ? r : take(&e->criu_version, o, "criuVersion", 256, valid_text);
        r = r < 0 ? r : take(&e->kernel_version, o, "kernelVersion", 256, valid_text);
        if (r < 0)
                return r;
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(o, "options");
        if (cJSON_IsObject(opts)) {
                static const struct {
                        const char *k;
                        uint32_t bit;
                } bits[] = {{"leaveRunning", CKPT_OPT_LEAVE_RUNNING},
                            {"tcpEstablished", CKPT_OPT_TCP_ESTABLISHED},
                            {"extUnixSk", CKPT_OPT_EXT_UNIX_SK},
                            {"fileLocks", CKPT_OPT_FILE_LOCKS},
                            {"shellJob", CKPT_OPT_SHELL_JOB}};
                for (size_t i = 0; i < ELEMENTSOF(bits); i++)
                        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, bits[i].k)))
                                e->options |= bits[i].bit;
        }
        return 0;
}

int metadata_base_image_ref(const char *image_ref, const char *image_digest, char **ret) {
        *ret = NULL;
        if (isempty(image_ref))
                return 0;
        ImageRef r = {};
        const char *why;
        char *s = NULL;
        /* A reference that already names its digest, or one that cannot be
         * parsed here (no registry host written out: as recorded), is kept;
         * a tag is pinned to the digest when we know it. */
        if (!isempty(image_digest) && image_digest_valid(image_digest) && !strchr(image_ref, '@') &&
            image_ref_parse(image_ref, &r, &why) >= 0) {
                s = image_ref_pinned(&r, image_digest);
                image_ref_done(&r);
        } else
                s = strdup(image_ref);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* CRI's container state CONTAINER_RUNNING (runtime.v1 ContainerState). */
#define CRI_CONTAINER_RUNNING 1

/* The Kubernetes labels CRI puts on a container (kubelet's, from the pod). */
static int add_labels(cJSON *o, const CatalogEntry *e) {
        cJSON *l = cJSON_AddObjectToObject(o, "labels");
        if (!l)
                return -ENOMEM;
        const struct {
                const char *k, *v;
        } kv[] = {
                {"io.kubernetes.pod.namespace", e->k8s_namespace},
                {"io.kubernetes.pod.name", e->k8s_pod},
                {"io.kubernetes.container.name", e->k8s_container},
        };
        for (size_t i = 0; i < ELEMENTSOF(kv); i++)
                if (!isempty(kv[i].v) && !cJSON_AddStringToObject(l, kv[i].k, kv[i].v))
                        return -ENOMEM;
        return 0;
}

/* The container's own annotations, as far as the spec has them: those CRI
 * copied from the container's config (its runtime's allow-list), not the
 * ones it adds itself (io.kubernetes.cri.*, io.containerd.*). */
static int add_annotations(cJSON *o, const char *dir) {
        cJSON *a = cJSON_AddObjectToObject(o, "annotations");
        if (!a)
                return -ENOMEM;
        _cleanup_free_ char *path = NULL, *text = NULL;
        if (asprintf(&path, "%s/spec.dump", dir) < 0)
                return -ENOMEM;
        if (read_full_file(path, SPEC_MAX_BYTES, &text, NULL) < 0)
                return 0;
        _cleanup_cjson_ cJSON *spec = cJSON_Parse(text);
        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(spec, "annotations"), *v;
        if (!cJSON_IsObject(ann))
                return 0;
        cJSON_ArrayForEach(v, ann) {
                if (!cJSON_IsString(v) || !v->string || startswith(v->string, "io.kubernetes.cri.") ||
                    startswith(v->string, "io.containerd."))
                        continue;
                if (!cJSON_AddStringToObject(a, v->string, v->valuestring))
                        return -ENOMEM;
        }
        return 0;
}

int metadata_write_status_dump(const char *dir, const CatalogEntry *e, bool sync) {
        _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *ref = NULL;
        if (!o || metadata_base_image_ref(e->image_ref, e->image_digest, &ref) < 0)
                return -ENOMEM;
        const char *name = !isempty(e->k8s_container) ? e->k8s_container : e->container_id;
        cJSON *md, *img;
        if (!cJSON_AddStringToObject(o, "id", e->container_id ? e->container_id : "") ||
            !(md = cJSON_AddObjectToObject(o, "metadata")) ||
            !cJSON_AddStringToObject(md, "name", name ? name : "") ||
            !cJSON_AddNumberToObject(o, "state", CRI_CONTAINER_RUNNING) ||
            !(img = cJSON_AddObjectToObject(o, "image")) ||
            !cJSON_AddStringToObject(img, "image", e->image_ref ? e->image_ref : "") ||
            !cJSON_AddStringToObject(img, "user_specified_image", e->image_ref ? e->image_ref : "") ||
            !cJSON_AddStringToObject(o, "image_ref", ref ? ref : ""))
                return -ENOMEM;
        int r = add_labels(o, e);
        if (r >= 0)
                r = add_annotations(o, dir);
        if (r < 0)
                return r;
        return write_json(dir, "status.dump", o, sync);
}

int metadata_write_config_dump(const char *dir, const CatalogEntry *e, const char *created_rfc3339,
                               bool sync) {
        _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
        _cleanup_free_ char *ref = NULL;
        if (!o || metadata_base_image_ref(e->image_ref, e->image_digest, &ref) < 0)
                return -ENOMEM;
        char now[40];
        rfc3339(e->created_ns, now);
        const char *name = !isempty(e->k8s_container) ? e->k8s_container : e->container_id;
        if (!cJSON_AddStringToObject(o, "id", e->container_id ? e->container_id : "") ||
            !cJSON_AddStringToObject(o, "name", name ? name : "") ||
            !cJSON_AddStringToObject(o, "rootfsImage", e->image_ref ? e->image_ref : "") ||
            !cJSON_AddStringToObject(o, "rootfsImageRef", ref ? ref : "") ||
            !cJSON_AddStringToObject(o, "rootfsImageName", e->image_ref ? e->image_ref : "") ||
            !cJSON_AddStringToObject(o, "runtime", "runc") ||
            !cJSON_AddStringToObject(o, "createdTime", !isempty(created_rfc3339) ? created_rfc3339 : now) ||
            !cJSON_AddStringToObject(o, "checkpointedTime", now))
                return -ENOMEM;
        int r = write_json(dir, "config.dump", o, sync);
        if (r < 0)
                return r;
        /* containerd 2.x's CRI restore reads it beside config.dump. */
        return metadata_write_status_dump(dir, e, sync);
}

void pod_manifest_done(PodManifest *pm) {
        for (size_t i = 0; i < pm->n; i++) {
                free(pm->members[i].container);
                free(pm->members[i].id);
                free(pm->members[i].container_id);
        }
        free(pm->members);
        free(pm->sandbox_id);
        free(pm->pod_cgroup);
        *pm = (PodManifest){};
}

static bool valid_id(const char *v) {
        return v && strlen(v) == 32 && strspn(v, "0123456789abcdef") == 32;
}

static int dup_valid(const cJSON *o, const char *key, bool (*valid)(const char *v), char **ret) {
        const char *v = get_str(o, key);
        if (!v || !valid(v))
                return -EBADMSG;
        *ret = strdup(v);
        return *ret ? 0 : -ENOMEM;
}

static bool valid_name(const char *v) {
        return ident_valid(v, IDENT_MAX_LEN);
}

static bool valid_cgroup(const char *v) {
        return strlen(v) < PATH_MAX && valid_text(v, PATH_MAX) && (!*v || v[0] == '/');
}

int metadata_parse_pod_json(const char *text, PodManifest *ret) {
        PodManifest pm = {};
        _cleanup_cjson_ cJSON *o = cJSON_Parse(text);
        const cJSON *version = cJSON_GetObjectItemCaseSensitive(o, "version");
        const cJSON *frozen = cJSON_GetObjectItemCaseSensitive(o, "frozenUsec");
        const cJSON *members = cJSON_GetObjectItemCaseSensitive(o, "members");
        if (!cJSON_IsObject(o) || !cJSON_IsNumber(version) || version->valuedouble != 1 ||
            !cJSON_IsArray(members))
                return -EBADMSG;
        int n = cJSON_GetArraySize(members);
        if (n < 1 || n > POD_MAX_MEMBERS)
                return -EBADMSG;
        pm.members = calloc((size_t)n, sizeof(*pm.members));
        int r = pm.members ? 0 : -ENOMEM;
        if (r >= 0)
                r = dup_valid(o, "sandboxId", valid_name, &pm.sandbox_id);
        if (r >= 0 && get_str(o, "podCgroup"))
                r = dup_valid(o, "podCgroup", valid_cgroup, &pm.pod_cgroup);
        if (r >= 0 && frozen) {
                if (!cJSON_IsNumber(frozen) || frozen->valuedouble < 0 || frozen->valuedouble > 1e15)
                        r = -EBADMSG;
                else
                        pm.frozen_usec = (uint64_t)frozen->valuedouble;
        }
        const cJSON *m;
        cJSON_ArrayForEach(m, members) {
                if (r < 0)
                        break;
                PodManifestMember *x = &pm.members[pm.n++];
                r = cJSON_IsObject(m) ? 0 : -EBADMSG;
                if (r >= 0)
                        r = dup_valid(m, "container", valid_name, &x->container);
                if (r >= 0)
                        r = dup_valid(m, "id", valid_id, &x->id);
                if (r >= 0)
                        r = dup_valid(m, "containerId", valid_name, &x->container_id);
                for (size_t i = 0; r >= 0 && i + 1 < pm.n; i++)
                        if (streq(pm.members[i].container, x->container) || streq(pm.members[i].id, x->id))
                                r = -EBADMSG;
        }
        if (r < 0) {
                pod_manifest_done(&pm);
                return r;
        }
        *ret = pm;
        return 0;
}

int metadata_write_pod_json(const char *dir, const PodManifest *pm, bool sync) {
        _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
        cJSON *members = cJSON_AddArrayToObject(o, "members");
        if (!members || !cJSON_AddNumberToObject(o, "version", 1) ||
            !cJSON_AddStringToObject(o, "sandboxId", pm->sandbox_id ? pm->sandbox_id : "") ||
            !cJSON_AddStringToObject(o, "podCgroup", pm->pod_cgroup ? pm->pod_cgroup : "") ||
            !cJSON_AddNumberToObject(o, "frozenUsec", (double)pm->frozen_usec))
                return -ENOMEM;
        for (size_t i = 0; i < pm->n; i++) {
                cJSON *e = cJSON_CreateObject();
                if (!e || !cJSON_AddItemToArray(members, e) ||
                    !cJSON_AddStringToObject(e, "container", pm->members[i].container) ||
                    !cJSON_AddStringToObject(e, "id", pm->members[i].id) ||
                    !cJSON_AddStringToObject(e, "containerId", pm->members[i].container_id))
                        return -ENOMEM;
        }
        return write_json(dir, POD_JSON_FILE, o, sync);
}
