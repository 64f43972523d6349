/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* JSON files in a checkpoint directory: our kybernate.json (the catalog row),
 * config.dump (the Podman/CRI-O style container config checkpointctl reads)
 * and the identity found in an OCI spec's annotations. */

#include <sys/types.h>

#include "catalog.h"
#include "resolve.h" /* IMAGE_REF_MAX, image_ref_valid() */

#define SPEC_MAX_BYTES (16u << 20)

/* From an OCI spec (config.json/spec.dump): Kubernetes namespace, pod and
 * container names and the image (CRI annotations), set only when present and
 * valid. Fields already set in e are kept. */
int metadata_from_spec(const char *spec_json, CatalogEntry *e);

/* "bundle" and "created" (RFC 3339) from `runc state` output or from runc's
 * <root>/<id>/state.json. */
int metadata_parse_runc_state(const char *json, char **ret_bundle, char **ret_created);

int metadata_write_kybernate_json(const char *dir, const CatalogEntry *e, bool sync);
/* The container's init pid from `runc state` output or state.json. */
int metadata_runc_state_pid(const char *json, pid_t *ret);

/* Whether the container is frozen (paused, or being checkpointed by
 * containerd, which pauses first): 1 or 0, -ENODATA when it cannot be told.
 * `runc state` prints "status"; from state.json the cgroup freezer is read
 * (freezer.state on cgroup v1, cgroup.freeze on v2), at a path below
 * /sys/fs/cgroup only. */
int metadata_runc_state_frozen(const char *json);

/* root.path of an OCI spec, as written (relative to the bundle or absolute). */
int metadata_spec_root_path(const char *spec_json, char **ret);

/* kybernate.json's "rootfsDiff": what was saved of the container's writable
 * layer (rootfs-diff.tar, deleted.files), or why nothing was. Kept when
 * metadata_write_kybernate_json() rewrites the file. */
typedef struct MetadataRootfsDiff {
        bool captured;
        const char *rootfs;   /* the container's root filesystem at checkpoint */
        const char *upperdir; /* its overlay upper directory, if any */
        const char *note;     /* why nothing was captured */
        uint64_t entries, deleted, skipped, bytes;
} MetadataRootfsDiff;
int metadata_set_rootfs_diff(const char *dir, const MetadataRootfsDiff *d, bool sync);

/* Reads identity fields of kybernate.json into e (fields already set kept). */
int metadata_read_kybernate_json(const char *dir, CatalogEntry *e);

/* config.dump: id, name, rootfsImageName, rootfsImage, rootfsImageRef (the
 * base image to pull, metadata_base_image_ref()), runtime, createdTime,
 * checkpointedTime; then status.dump (metadata_write_status_dump()). */
int metadata_write_config_dump(const char *dir, const CatalogEntry *e, const char *created_rfc3339,
                               bool sync);

/* status.dump: the container's status as CRI's ContainerStatus in JSON (the
 * field names of runtime.v1's protobuf), which containerd 2.x's CRI restore
 * reads beside config.dump and spec.dump: id, metadata.name, state RUNNING,
 * image (the reference the container was created from), image_ref (what to
 * pull), the Kubernetes labels we know and the container's annotations from
 * dir/spec.dump (not CRI's own io.kubernetes.cri.*, io.containerd.*). */
int metadata_write_status_dump(const char *dir, const CatalogEntry *e, bool sync);

/* The base image as a pullable reference (config.dump's rootfsImageRef):
 * image_ref pinned to image_digest ("HOST/REPO@DIGEST") when the digest is
 * known and image_ref has a registry host and no digest of its own, else
 * image_ref as it is; *ret NULL when image_ref is empty. */
int metadata_base_image_ref(const char *image_ref, const char *image_digest, char **ret);

/* pod.json, in a pod checkpoint's directory: the sandbox id, the pod's
 * cgroup (may be empty), how long the pod was frozen, and per member its
 * container name, member checkpoint id and container id. The parser takes
 * untrusted text (an imported archive): version 1, 1..POD_MAX_MEMBERS
 * members with distinct valid container names (each names the archive's
 * members/<container>/ directory), ids of 32 lowercase hex characters,
 * valid container and sandbox ids; anything else is -EBADMSG. */
#define POD_MAX_MEMBERS 64
#define POD_JSON_FILE "pod.json"
typedef struct PodManifestMember {
        char *container, *id, *container_id;
} PodManifestMember;
typedef struct PodManifest {
        char *sandbox_id, *pod_cgroup;
        uint64_t frozen_usec;
        PodManifestMember *members;
        size_t n;
} PodManifest;
int metadata_parse_pod_json(const char *text, PodManifest *ret);
int metadata_write_pod_json(const char *dir, const PodManifest *pm, bool sync);
void pod_manifest_done(PodManifest *pm);
