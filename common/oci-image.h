/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A checkpoint as an OCI image, in an OCI image layout directory (oci-layout,
 * index.json, blobs/sha256/<hex>) that `skopeo copy oci:DIR docker://REF`
 * pushes and `skopeo copy docker://REF@DIGEST oci:DIR` fetches.
 *
 * The image has one layer: the checkpoint archive (common/archive.h, the
 * layout Podman, CRI-O and the kubelet checkpoint API use), so the files of a
 * mounted image are the files of the archive, which is how Podman, CRI-O and
 * containerd 2.1-2.3 restore from a checkpoint image.
 *
 * Writing: config and manifest blobs, then index.json last (the commit point),
 * each written to a temporary file and renamed; the layer file is hashed and
 * renamed into blobs/sha256. With OciImageWrite.durable, every file and the
 * directories are fsynced too; without it, nothing is (a staging layout that
 * skopeo copies and the caller removes needs no sync: for a 1 GiB layer the
 * fsync alone took seconds, see docs/BENCHMARKS.md, "Across nodes"). Output is
 * deterministic: the same input gives the same manifest digest.
 *
 * Pushing: `skopeo copy` gzips an uncompressed layer on its way to docker://
 * or oci: destinations, which changes the layer and manifest digests; with
 * --preserve-digests (skopeo 1.9) it keeps our bytes and our manifest digest.
 * The same holds for a pull into oci:DIR: with --preserve-digests the layout's
 * manifest digest is the pinned one, which the caller compares with
 * OciImage.manifest_digest (checked with a docker-registry on 127.0.0.1).
 *
 * Reading: every byte of the layout is untrusted. JSON files are bounded and
 * read once (hashed and parsed from the same buffer); objects with duplicate
 * keys and strings with NUL escapes are refused (a Go reader takes the last
 * duplicate, cJSON the first: they must never disagree on what they saw).
 * index.json names exactly one manifest; each descriptor's digest is
 * "sha256:" and 64 lowercase hex digits (nothing else becomes part of a path);
 * each blob is a regular file opened with O_NOFOLLOW below blobs/sha256, of
 * exactly the descriptor's size, whose sha256 matches. The layer is returned as
 * an open fd to the very file that was verified.
 *
 * Errors: -EBADMSG malformed or not matching its digest/size, -EFBIG over a
 * limit, -ENOTSUP a valid layout this code does not take (media types, more
 * than one manifest or layer, foreign layers), -ELOOP a symlink where a file
 * or directory must be, -ENOENT a missing file. A human-readable reason is
 * returned through ret_error when it is not NULL (common/ does not log). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OCI_DIGEST_MAX 72 /* "sha256:" + 64 hex + NUL */

#define OCI_MEDIA_TYPE_INDEX "application/vnd.oci.image.index.v1+json"
#define OCI_MEDIA_TYPE_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define OCI_MEDIA_TYPE_CONFIG "application/vnd.oci.image.config.v1+json"
#define OCI_MEDIA_TYPE_LAYER "application/vnd.oci.image.layer.v1.tar"
#define OCI_MEDIA_TYPE_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define OCI_MEDIA_TYPE_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define DOCKER_MEDIA_TYPE_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define DOCKER_MEDIA_TYPE_CONFIG "application/vnd.docker.container.image.v1+json"
#define DOCKER_MEDIA_TYPE_LAYER "application/vnd.docker.image.rootfs.diff.tar"
#define DOCKER_MEDIA_TYPE_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"

#define OCI_ANNOTATION_REF_NAME "org.opencontainers.image.ref.name"
#define OCI_ANNOTATION_CREATED "org.opencontainers.image.created"

/* Checkpoint image annotation keys of the other runtimes. All of them are
 * MANIFEST annotations: each reader takes the annotations of the manifest the
 * image reference resolves to, none reads the image config's labels (and an
 * OCI config has no annotations), so oci_checkpoint_annotations() output goes
 * into OciImageWrite.annotations only.
 *
 * CRI-O (cri-o/cri-o): server/container_restore.go checkIfCheckpointOCIImage()
 * treats an image as a checkpoint when its manifest annotations hold
 * io.kubernetes.cri-o.annotations.checkpoint.name (any value; it is the
 * container's name, logged). The annotations come from
 * internal/storage/image.go, which reads them only when the manifest's media
 * type is the OCI one (a Docker schema 2 manifest is never recognised). The
 * other keys are defined in internal/annotations/checkpoint.go and only
 * written by tools (buildah), not read. */
#define CRIO_CHECKPOINT_NAME "io.kubernetes.cri-o.annotations.checkpoint.name"
#define CRIO_CHECKPOINT_ROOTFS_IMAGE_NAME "io.kubernetes.cri-o.annotations.checkpoint.rootfsImageName"
#define CRIO_CHECKPOINT_CRIU_VERSION "io.kubernetes.cri-o.annotations.checkpoint.criu.version"

/* containerd 2.1 to 2.3 (containerd/containerd, commit 9e6beafd5 "Support
 * container restore through CRI/Kubernetes"; deprecated in 2.3, removed in
 * 2.4 by 91be73ba6): internal/cri/server/container_checkpoint_linux.go
 * checkIfCheckpointOCIImage() reads the blob the image's target descriptor
 * points to (our manifest, or an index if one is pushed) and treats the image
 * as a checkpoint when its annotations hold org.criu.checkpoint.container.name
 * (any value; logged). The key is checkpointctl's (lib/annotations.go, the
 * org.criu.checkpoint.* set, written by `checkpointctl build` in
 * internal/oci_image_build.go through `buildah config --annotation`, i.e.
 * manifest annotations); containerd reads no other of them. */
#define CRIU_CHECKPOINT_CONTAINER_NAME "org.criu.checkpoint.container.name"
#define CRIU_CHECKPOINT_POD_NAME "org.criu.checkpoint.pod.name"
#define CRIU_CHECKPOINT_POD_NAMESPACE "org.criu.checkpoint.pod.namespace"
#define CRIU_CHECKPOINT_ENGINE_NAME "org.criu.checkpoint.engine.name"
#define CRIU_CHECKPOINT_ENGINE_VERSION "org.criu.checkpoint.engine.version"
#define CRIU_CHECKPOINT_ROOTFS_IMAGE_NAME "org.criu.checkpoint.rootfsImageName"
#define CRIU_CHECKPOINT_RUNTIME_NAME "org.criu.checkpoint.runtime.name"
#define CRIU_CHECKPOINT_CRIU_VERSION "org.criu.checkpoint.criu.version"
#define CRIU_CHECKPOINT_HOST_ARCH "org.criu.checkpoint.host.arch"
#define CRIU_CHECKPOINT_HOST_KERNEL "org.criu.checkpoint.host.kernel"

/* Podman (containers/podman): cmd/podman/utils/utils.go IsCheckpointImage()
 * (`podman container restore IMAGE`) and pkg/domain/infra/abi/containers.go
 * ContainerRun (`podman run IMAGE`) treat an image as a checkpoint when its
 * annotations hold io.podman.annotations.checkpoint.runtime.name; restore
 * refuses it unless the value equals the host's OCI runtime name ("runc",
 * "crun"). The annotations are the OCI manifest's (vendor
 * go.podman.io/common/libimage/inspect.go: Annotations =
 * ociManifest.Annotations, for an OCI manifest only, as in CRI-O). The keys
 * are in libpod/define/annotations.go, written by
 * libpod/container_internal_common.go addCheckpointImageMetadata(); the CRIU
 * version there is CRIU's number (major*10000+minor*100+sublevel). */
#define PODMAN_CHECKPOINT_RUNTIME_NAME "io.podman.annotations.checkpoint.runtime.name"
#define PODMAN_CHECKPOINT_NAME "io.podman.annotations.checkpoint.name"
#define PODMAN_CHECKPOINT_ROOTFS_IMAGE_NAME "io.podman.annotations.checkpoint.rootfsImageName"
#define PODMAN_CHECKPOINT_CRIU_VERSION "io.podman.annotations.checkpoint.criu.version"
#define PODMAN_CHECKPOINT_HOST_ARCH "io.podman.annotations.checkpoint.host.arch"
#define PODMAN_CHECKPOINT_HOST_KERNEL "io.podman.annotations.checkpoint.host.kernel"

/* Ours, read by kybernated when it pulls a checkpoint image. */
#define KYB_CHECKPOINT_PREFIX "io.kybernate.checkpoint."
#define KYB_CHECKPOINT_ID KYB_CHECKPOINT_PREFIX "id"
#define KYB_CHECKPOINT_CREATED KYB_CHECKPOINT_PREFIX "created"
#define KYB_CHECKPOINT_K8S_NAMESPACE KYB_CHECKPOINT_PREFIX "namespace"
#define KYB_CHECKPOINT_POD KYB_CHECKPOINT_PREFIX "pod"
#define KYB_CHECKPOINT_CONTAINER KYB_CHECKPOINT_PREFIX "container"
#define KYB_CHECKPOINT_CONTAINERD_NAMESPACE KYB_CHECKPOINT_PREFIX "containerd-namespace"
#define KYB_CHECKPOINT_IMAGE KYB_CHECKPOINT_PREFIX "image"
#define KYB_CHECKPOINT_IMAGE_DIGEST KYB_CHECKPOINT_PREFIX "image-digest"
#define KYB_CHECKPOINT_CHECKSUM KYB_CHECKPOINT_PREFIX "checksum"
#define KYB_CHECKPOINT_CRIU_VERSION KYB_CHECKPOINT_PREFIX "criu-version"
#define KYB_CHECKPOINT_KERNEL KYB_CHECKPOINT_PREFIX "kernel"
#define KYB_CHECKPOINT_RUNTIME KYB_CHECKPOINT_PREFIX "runtime"
#define KYB_CHECKPOINT_VERSION KYB_CHECKPOINT_PREFIX "kybernate-version"
/* A pod checkpoint's image (its layer the pod's archive, archive.h): its
 * members' container names, comma-separated. Such an image carries none of
 * the other runtimes' keys. */
#define KYB_CHECKPOINT_POD_MEMBERS KYB_CHECKPOINT_PREFIX "pod-members"

/* Annotation keys: 1 to 255 bytes of [A-Za-z0-9._/-]; values: UTF-8 bytes
 * without control characters but tab and newline. */
#define OCI_ANNOTATION_KEY_MAX 255

typedef struct OciAnnotation {
        char *key;
        char *value;
} OciAnnotation;

void oci_annotations_free(OciAnnotation *a, size_t n);

typedef enum OciCompression {
        OCI_COMPRESSION_NONE,
        OCI_COMPRESSION_GZIP,
        OCI_COMPRESSION_ZSTD,
} OciCompression;

/* "none", "gzip", "zstd". */
int oci_compression_from_string(const char *s, OciCompression *ret);
const char *oci_compression_to_string(OciCompression c);

typedef struct OciImageWrite {
        /* The layer, a file on the layout directory's file system (relative
         * to dir_fd, or absolute): hashed (and fsynced if durable), then
         * renamed into blobs/sha256/<hex>. */
        const char *layer_path;
        /* NULL: an uncompressed tar (OCI_MEDIA_TYPE_LAYER), whose digest is
         * its diff_id. Otherwise one of the OCI layer types, and diff_id the
         * digest of the uncompressed tar. */
        const char *layer_media_type;
        const char *layer_diff_id;
        const OciAnnotation *annotations; /* the manifest's */
        size_t n_annotations;
        const char *created; /* RFC 3339, for the config */
        const char *architecture, *os;
        const char *ref_name; /* index.json's OCI_ANNOTATION_REF_NAME, or NULL */
        bool durable;         /* fsync every file and directory (see the top) */
} OciImageWrite;

int oci_image_write(int dir_fd, const OciImageWrite *w, char ret_manifest_digest[static OCI_DIGEST_MAX]);

typedef struct OciImageLimits {
        uint64_t max_layer_bytes;
        size_t max_json_bytes;       /* index.json, oci-layout, manifest, config each */
        size_t max_annotations;      /* in the manifest */
        size_t max_annotation_bytes; /* one value */
} OciImageLimits;

#define OCI_IMAGE_LIMITS_DEFAULT                                 \
        ((OciImageLimits){.max_layer_bytes = UINT64_C(64) << 30, \
                          .max_json_bytes = (size_t)1 << 20,     \
                          .max_annotations = 256,                \
                          .max_annotation_bytes = 4096})

typedef struct OciImage {
        char manifest_digest[OCI_DIGEST_MAX];
        char *manifest_media_type;
        char layer_digest[OCI_DIGEST_MAX];
        /* The config's rootfs.diff_ids[0]: equal to layer_digest for an
         * uncompressed layer (checked); for a compressed one the caller checks
         * it against the sha256 of what it decompresses. */
        char layer_diff_id[OCI_DIGEST_MAX];
        char *layer_path; /* "blobs/sha256/<hex>", relative to the layout directory */
        char *layer_media_type;
        OciCompression layer_compression;
        uint64_t layer_size;
        int layer_fd;            /* the verified blob, open read-only at offset 0 */
        char *architecture, *os; /* the config's, or NULL */
        /* The manifest's annotations only (no runtime reads config labels;
         * the config's labels are not returned). */
        OciAnnotation *annotations;
        size_t n_annotations;
} OciImage;

/* *ret is reset first, so oci_image_done() may be called after a failure too;
 * *ret_error (if not NULL) is set on failure only, to be freed. */
int oci_image_read(int dir_fd, const OciImageLimits *l, OciImage *ret, char **ret_error);
void oci_image_done(OciImage *img);
const char *oci_annotation_get(const OciImage *img, const char *key);
/* A pulled checkpoint image: the layout in the directory path, read as
 * oci_image_read() does with the default limits, whose manifest must be the
 * one digest pinned (-EBADMSG otherwise) and which must carry one of the keys
 * the runtimes detect a checkpoint image by, or KYB_CHECKPOINT_POD_MEMBERS
 * (-EMEDIUMTYPE otherwise). Errors
 * as oci_image_read(); *ret_error says why. */
int oci_image_read_pinned(const char *path, const char *digest, OciImage *ret, char **ret_error);
/* The layer as an uncompressed tar: a new fd of the verified blob itself, or
 * the output of gzip/zstd reading it (*ret_pid, to be reaped by the caller;
 * 0 if none). Authenticity comes from the compressed blob's digest, pinned
 * through the manifest's. */
int oci_image_layer_tar(const OciImage *img, int *ret_fd, pid_t *ret_pid);
/* Ended by archive_decompress_end() (archive.h). */

/* What one checkpoint's image says about it. Strings may be NULL (the keys
 * are then left out) but container_name, which the runtimes' detection keys
 * carry, unless pod_members is set (a pod's image: only our keys). */
typedef struct OciCheckpointInfo {
        const char *checkpoint_id;
        const char *created; /* RFC 3339 */
        const char *k8s_namespace, *pod_name, *container_name;
        const char *containerd_namespace;
        const char *image_ref, *image_digest; /* the container's original image */
        const char *checksum;                 /* the checkpoint's content checksum */
        uint32_t criu_version;                /* CRIU's number (31900 is 3.19), 0 unknown */
        const char *kernel_version;           /* uname -r */
        const char *runtime_name;             /* NULL: "runc" */
        const char *architecture;             /* GOARCH style, e.g. "amd64" */
        const char *kybernate_version;
        const char *pod_members; /* a pod's: its containers, "a,b,c" */
} OciCheckpointInfo;

/* The full annotation set for one checkpoint's manifest: each runtime's
 * detection key and the ecosystem keys, then ours. Free with
 * oci_annotations_free(). */
int oci_checkpoint_annotations(const OciCheckpointInfo *info, OciAnnotation **ret, size_t *ret_n);
/* True for a syntactically valid annotation key. */
bool oci_annotation_key_valid(const char *key);
