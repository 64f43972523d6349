/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Pure functions deciding what a reference means, whether a restore is
 * allowed, and what retention deletes. No I/O: unit-tested directly. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"

#define REF_MAX 512
#define ID_LEN 32
#define ID_PREFIX_MIN 4
#define NAME_MAX_LEN 128
#define IDENT_MAX_LEN 253 /* namespaces, pods, containers, container ids */

typedef enum RefKind {
        REF_ID,     /* 32 hex characters */
        REF_PREFIX, /* 4..31 hex characters (also tried as a name) */
        REF_NAME,
        REF_K8S,  /* namespace/pod/container: the newest ready one */
        REF_PATH, /* absolute directory (allowed_restore_dirs only) */
} RefKind;

/* Classifies and validates a reference: -EINVAL with *ret_reason (static
 * string) for empty, overlong, control characters, "..", bad characters. */
int ref_parse(const char *ref, RefKind *ret_kind, const char **ret_reason);
/* Splits "ns/pod/container" into three strings (freed by caller). */
int ref_split_k8s(const char *ref, char **ret_ns, char **ret_pod, char **ret_container);

/* A checkpoint name or a containerd namespace / container id / k8s name:
 * 1..max characters of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool ident_valid(const char *s, size_t max);

/* Is path (absolute, normalized: no "." or ".." components, no "//") strictly
 * below one of the dirs? */
bool path_allowed(const char *path, char *const *dirs);

typedef struct RestoreIdentity {
        const char *containerd_namespace;
        const char *k8s_namespace;
        const char *k8s_pod;
        const char *k8s_container;
        const char *image_ref;
} RestoreIdentity;

/* The tenant rule. 0 if the target may restore checkpoint e; else -EACCES
 * and *ret_reason says which rule refused (static string). */
int tenant_check(const CatalogEntry *e, const RestoreIdentity *target, const char **ret_reason);

/* Image rule: when both the checkpoint and the target name an image, they
 * must be the same image (compared after normalizing "busybox" to
 * "docker.io/library/busybox:latest"; a digest must match exactly). 0, or
 * -EMEDIUMTYPE with a message saying both images. */
int image_check(const CatalogEntry *e, const RestoreIdentity *target, char *msg, size_t msgsize);
/* Normalized image reference (caller frees). */
char *image_normalize(const char *ref);

/* Retention over ready checkpoints. */
typedef struct RetentionItem {
        const char *group; /* one container: see retention_group() */
        int64_t created_ns;
        bool pinned;
        bool prune; /* out */
} RetentionItem;

/* Group key of a row: "k8s:<ns>/<pod>/<container>" for Kubernetes containers,
 * else "ctrd:<namespace>/<container id>". Caller frees. */
char *retention_group(const CatalogEntry *e);

/* Within each group, rank rows newest first; a row is pruned when it is not
 * pinned, its rank is >= keep (keep = 0: the count protects none) and it is
 * older than max_age_ns (0: any age). Items may come in any order. Returns
 * the number marked, or -EINVAL if keep and max_age are both 0 (that would
 * delete everything). */
int retention_select(RetentionItem *items, size_t n, uint32_t keep, int64_t max_age_ns, int64_t now_ns);

/* Parses "30s", "15m", "12h", "7d", "2w" or plain seconds into nanoseconds. */
int parse_duration_ns(const char *s, int64_t *ret);
