/* SPDX-License-Identifier: Apache-2.0 */
/* The writing half of oci-image.h: an image layout from a layer file, and the
 * checkpoint annotations its manifest carries (the reader is oci-image.c). */
#include <cJSON.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "image-ref.h"
#include "oci-image-internal.h"
#include "oci-image.h"
#include "sha256.h"
#include "util.h"

/* ---- writing ---- */

static int fsync_dir_at(int dir_fd, const char *path) {
        _cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return fsync(fd) < 0 ? negative_errno() : 0;
}

/* Writes name in dir_fd atomically: a temporary name, fsync if durable, rename. */
static int write_at_atomic(int dir_fd, const char *name, const void *buf, size_t len, bool durable) {
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, ".%s.tmp", name) < 0)
                return -ENOMEM;
        (void)unlinkat(dir_fd, tmp, 0);
        _cleanup_close_ int fd =
                openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return negative_errno();
        int r = write_all(fd, buf, len);
        if (r >= 0 && durable && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                r = negative_errno();
        if (r < 0)
                (void)unlinkat(dir_fd, tmp, 0);
        return r;
}

static int mkdir_at(int dir_fd, const char *path) {
        if (mkdirat(dir_fd, path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

/* Writes a JSON document as a blob; its digest and size go to ret_*. */
static int write_json_blob(int sha_fd, const cJSON *j, bool durable, char ret_digest[static OCI_DIGEST_MAX],
                           size_t *ret_size) {
        _cleanup_free_ char *text = cJSON_PrintUnformatted(j);
        if (!text)
                return -ENOMEM;
        size_t len = strlen(text);
        oci_digest_of(text, len, ret_digest);
        int r = write_at_atomic(sha_fd, ret_digest + strlen(OCI_DIGEST_PREFIX), text, len, durable);
        if (r < 0)
                return r;
        *ret_size = len;
        return 0;
}

static cJSON *descriptor_new(const char *media_type, const char *digest, uint64_t size) {
        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddStringToObject(d, "mediaType", media_type) ||
            !cJSON_AddStringToObject(d, "digest", digest) ||
            !cJSON_AddNumberToObject(d, "size", (double)size)) {
                cJSON_Delete(d);
                return NULL;
        }
        return d;
}

static const char *const compression_names[] = {
        [OCI_COMPRESSION_NONE] = "none",
        [OCI_COMPRESSION_GZIP] = "gzip",
        [OCI_COMPRESSION_ZSTD] = "zstd",
};

int oci_compression_from_string(const char *s, OciCompression *ret) {
        for (size_t i = 0; i < ELEMENTSOF(compression_names); i++)
                if (streq_ptr(s, compression_names[i])) {
                        *ret = (OciCompression)i;
                        return 0;
                }
        return -EINVAL;
}

const char *oci_compression_to_string(OciCompression c) {
        return (size_t)c < ELEMENTSOF(compression_names) ? compression_names[c] : NULL;
}

int oci_layer_media_type_known(const char *t, OciCompression *ret) {
        static const struct {
                const char *type;
                OciCompression c;
        } types[] = {
                {OCI_MEDIA_TYPE_LAYER, OCI_COMPRESSION_NONE},
                {OCI_MEDIA_TYPE_LAYER_GZIP, OCI_COMPRESSION_GZIP},
                {OCI_MEDIA_TYPE_LAYER_ZSTD, OCI_COMPRESSION_ZSTD},
                {DOCKER_MEDIA_TYPE_LAYER, OCI_COMPRESSION_NONE},
                {DOCKER_MEDIA_TYPE_LAYER_GZIP, OCI_COMPRESSION_GZIP},
        };
        for (size_t i = 0; i < ELEMENTSOF(types); i++)
                if (streq(t, types[i].type)) {
                        if (ret)
                                *ret = types[i].c;
                        return 0;
                }
        return -ENOTSUP;
}

static int annotations_to_json(const OciAnnotation *a, size_t n, cJSON **ret) {
        _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
        if (!o)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                if (!oci_annotation_key_valid(a[i].key) || !a[i].value ||
                    !oci_annotation_value_valid(a[i].value))
                        return -EINVAL;
                if (cJSON_GetObjectItemCaseSensitive(o, a[i].key))
                        return -EINVAL; /* duplicate */
                if (!cJSON_AddStringToObject(o, a[i].key, a[i].value))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(o);
        return 0;
}

int oci_image_write(int dir_fd, const OciImageWrite *w, char ret_manifest_digest[static OCI_DIGEST_MAX]) {
        int r;

        if (!w || !w->layer_path || !w->created || !w->architecture || !w->os)
                return -EINVAL;
        const char *layer_type = w->layer_media_type ? w->layer_media_type : OCI_MEDIA_TYPE_LAYER;
        OciCompression comp;
        if (oci_layer_media_type_known(layer_type, &comp) < 0 ||
            !startswith(layer_type, "application/vnd.oci."))
                return -EINVAL;
        if (comp != OCI_COMPRESSION_NONE && !image_digest_valid(w->layer_diff_id))
                return -EINVAL;

        r = mkdir_at(dir_fd, "blobs");
        if (r < 0)
                return r;
        r = mkdir_at(dir_fd, "blobs/sha256");
        if (r < 0)
                return r;
        _cleanup_close_ int sha_fd =
                openat(dir_fd, "blobs/sha256", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sha_fd < 0)
                return negative_errno();

        /* The layer: hashed, synced if durable, renamed into place. */
        char layer_digest[OCI_DIGEST_MAX];
        uint64_t layer_size;
        {
                _cleanup_close_ int fd = openat(dir_fd, w->layer_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return negative_errno();
                struct stat st;
                if (fstat(fd, &st) < 0)
                        return negative_errno();
                if (!S_ISREG(st.st_mode))
                        return -EINVAL;
                r = oci_hash_fd(fd, UINT64_MAX, layer_digest, &layer_size);
                if (r < 0)
                        return r;
                if (w->durable && fsync(fd) < 0)
                        return negative_errno();
        }
        if (renameat(dir_fd, w->layer_path, sha_fd, layer_digest + strlen(OCI_DIGEST_PREFIX)) < 0)
                return negative_errno();
        const char *diff_id = comp == OCI_COMPRESSION_NONE ? layer_digest : w->layer_diff_id;

        /* The config. */
        _cleanup_cjson_ cJSON *config = cJSON_CreateObject();
        if (!config)
                return -ENOMEM;
        cJSON *rootfs = cJSON_AddObjectToObject(config, "rootfs");
        cJSON *diff_ids = rootfs ? cJSON_AddArrayToObject(rootfs, "diff_ids") : NULL;
        if (!cJSON_AddStringToObject(config, "created", w->created) ||
            !cJSON_AddStringToObject(config, "architecture", w->architecture) ||
            !cJSON_AddStringToObject(config, "os", w->os) || !cJSON_AddObjectToObject(config, "config") ||
            !diff_ids || !cJSON_AddStringToObject(rootfs, "type", "layers") ||
            !cJSON_AddItemToArray(diff_ids, cJSON_CreateString(diff_id)))
                return -ENOMEM;
        char config_digest[OCI_DIGEST_MAX];
        size_t config_size;
        r = write_json_blob(sha_fd, config, w->durable, config_digest, &config_size);
        if (r < 0)
                return r;

        /* The manifest. */
        _cleanup_cjson_ cJSON *manifest = cJSON_CreateObject();
        if (!manifest)
                return -ENOMEM;
        cJSON *layers = NULL;
        if (!cJSON_AddNumberToObject(manifest, "schemaVersion", 2) ||
            !cJSON_AddStringToObject(manifest, "mediaType", OCI_MEDIA_TYPE_MANIFEST) ||
            !cJSON_AddItemToObject(manifest, "config",
                                   descriptor_new(OCI_MEDIA_TYPE_CONFIG, config_digest, config_size)) ||
            !(layers = cJSON_AddArrayToObject(manifest, "layers")) ||
            !cJSON_AddItemToArray(layers, descriptor_new(layer_type, layer_digest, layer_size)))
                return -ENOMEM;
        if (w->n_annotations > 0) {
                cJSON *a = NULL;
                r = annotations_to_json(w->annotations, w->n_annotations, &a);
                if (r < 0)
                        return r;
                if (!cJSON_AddItemToObject(manifest, "annotations", a)) {
                        cJSON_Delete(a);
                        return -ENOMEM;
                }
        }
        char manifest_digest[OCI_DIGEST_MAX];
        size_t manifest_size;
        r = write_json_blob(sha_fd, manifest, w->durable, manifest_digest, &manifest_size);
        if (r < 0)
                return r;
        if (w->durable && fsync(sha_fd) < 0)
                return negative_errno();

        /* oci-layout, then index.json: the layout exists once index.json does. */
        static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
        r = write_at_atomic(dir_fd, "oci-layout", layout, strlen(layout), w->durable);
        if (r < 0)
                return r;
        _cleanup_cjson_ cJSON *index = cJSON_CreateObject();
        if (!index)
                return -ENOMEM;
        cJSON *manifests = NULL, *desc = NULL;
        if (!cJSON_AddNumberToObject(index, "schemaVersion", 2) ||
            !cJSON_AddStringToObject(index, "mediaType", OCI_MEDIA_TYPE_INDEX) ||
            !(manifests = cJSON_AddArrayToObject(index, "manifests")) ||
            !(desc = descriptor_new(OCI_MEDIA_TYPE_MANIFEST, manifest_digest, manifest_size)))
                return -ENOMEM;
        if (!cJSON_AddItemToArray(manifests, desc)) {
                cJSON_Delete(desc);
                return -ENOMEM;
        }
        if (w->ref_name) {
                OciAnnotation ref = {.key = (char *)OCI_ANNOTATION_REF_NAME, .value = (char *)w->ref_name};
                cJSON *a = NULL;
                r = annotations_to_json(&ref, 1, &a);
                if (r < 0)
                        return r;
                if (!cJSON_AddItemToObject(desc, "annotations", a)) {
                        cJSON_Delete(a);
                        return -ENOMEM;
                }
        }
        _cleanup_free_ char *index_text = cJSON_PrintUnformatted(index);
        if (!index_text)
                return -ENOMEM;
        r = write_at_atomic(dir_fd, "index.json", index_text, strlen(index_text), w->durable);
        if (r < 0)
                return r;
        if (w->durable) {
                r = fsync_dir_at(dir_fd, ".");
                if (r < 0)
                        return r;
        }

        memcpy(ret_manifest_digest, manifest_digest, OCI_DIGEST_MAX);
        return 0;
}

/* ---- checkpoint annotations ---- */

static int push(OciAnnotation **a, size_t *n, const char *key, const char *value) {
        if (!value)
                return 0;
        OciAnnotation *b = reallocarray(*a, *n + 1, sizeof(OciAnnotation));
        if (!b)
                return -ENOMEM;
        *a = b;
        b[*n] = (OciAnnotation){.key = strdup(key), .value = strdup(value)};
        (*n)++;
        return b[*n - 1].key && b[*n - 1].value ? 0 : -ENOMEM;
}

/* The number of other runtimes' keys at the start of the set below. */
#define FOREIGN_KEYS 19

int oci_checkpoint_annotations(const OciCheckpointInfo *info, OciAnnotation **ret, size_t *ret_n) {
        if (!info || (!info->container_name && !info->pod_members))
                return -EINVAL;
        /* A pod's image is ours alone: no runtime restores a pod from one
         * image, so none is told it holds a checkpoint (the foreign keys are
         * the first ones of the set). */
        size_t first = info->pod_members ? FOREIGN_KEYS : 0;
        const char *runtime = info->runtime_name ?: "runc";
        char criu[16] = "";
        if (info->criu_version > 0)
                snprintf(criu, sizeof(criu), "%" PRIu32, info->criu_version);
        const char *criu_or_null = info->criu_version > 0 ? criu : NULL;

        const struct {
                const char *key, *value;
        } set[] = {
                /* Detection keys first: CRI-O, containerd 2.1-2.3, Podman. */
                {CRIO_CHECKPOINT_NAME, info->container_name},
                {CRIU_CHECKPOINT_CONTAINER_NAME, info->container_name},
                {PODMAN_CHECKPOINT_RUNTIME_NAME, runtime},
                /* The rest of each family's set, for tools that show them. */
                {CRIO_CHECKPOINT_ROOTFS_IMAGE_NAME, info->image_ref},
                {CRIO_CHECKPOINT_CRIU_VERSION, criu_or_null},
                {CRIU_CHECKPOINT_POD_NAME, info->pod_name},
                {CRIU_CHECKPOINT_POD_NAMESPACE, info->k8s_namespace},
                {CRIU_CHECKPOINT_ENGINE_NAME, "kybernate"},
                {CRIU_CHECKPOINT_ENGINE_VERSION, info->kybernate_version},
                {CRIU_CHECKPOINT_ROOTFS_IMAGE_NAME, info->image_ref},
                {CRIU_CHECKPOINT_RUNTIME_NAME, runtime},
                {CRIU_CHECKPOINT_CRIU_VERSION, criu_or_null},
                {CRIU_CHECKPOINT_HOST_ARCH, info->architecture},
                {CRIU_CHECKPOINT_HOST_KERNEL, info->kernel_version},
                {PODMAN_CHECKPOINT_NAME, info->container_name},
                {PODMAN_CHECKPOINT_ROOTFS_IMAGE_NAME, info->image_ref},
                {PODMAN_CHECKPOINT_CRIU_VERSION, criu_or_null},
                {PODMAN_CHECKPOINT_HOST_ARCH, info->architecture},
                {PODMAN_CHECKPOINT_HOST_KERNEL, info->kernel_version},
                /* Ours (FOREIGN_KEYS above). */
                {KYB_CHECKPOINT_ID, info->checkpoint_id},
                {KYB_CHECKPOINT_POD_MEMBERS, info->pod_members},
                {KYB_CHECKPOINT_CREATED, info->created},
                {KYB_CHECKPOINT_K8S_NAMESPACE, info->k8s_namespace},
                {KYB_CHECKPOINT_POD, info->pod_name},
                {KYB_CHECKPOINT_CONTAINER, info->container_name},
                {KYB_CHECKPOINT_CONTAINERD_NAMESPACE, info->containerd_namespace},
                {KYB_CHECKPOINT_IMAGE, info->image_ref},
                {KYB_CHECKPOINT_IMAGE_DIGEST, info->image_digest},
                {KYB_CHECKPOINT_CHECKSUM, info->checksum},
                {KYB_CHECKPOINT_CRIU_VERSION, criu_or_null},
                {KYB_CHECKPOINT_KERNEL, info->kernel_version},
                {KYB_CHECKPOINT_RUNTIME, runtime},
                {KYB_CHECKPOINT_VERSION, info->kybernate_version},
                {OCI_ANNOTATION_CREATED, info->created},
        };

        OciAnnotation *a = NULL;
        size_t n = 0;
        for (size_t i = first; i < ELEMENTSOF(set); i++) {
                if (set[i].value && !oci_annotation_value_valid(set[i].value)) {
                        oci_annotations_free(a, n);
                        return -EINVAL;
                }
                int r = push(&a, &n, set[i].key, set[i].value);
                if (r < 0) {
                        oci_annotations_free(a, n);
                        return r;
                }
        }
        *ret = a;
        *ret_n = n;
        return 0;
}
