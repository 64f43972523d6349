/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Functions deciding what a reference means, whether a restore is allowed,
 * and what retention deletes. Pure and unit-tested directly, except
 * resolve_lookup() (reads the catalog) and the path checks (realpath, stat). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog.h"
#include "oci-image.h"

#define REF_MAX 512
#define ID_LEN 32
#define ID_PREFIX_MIN 4
#define NAME_MAX_LEN 128
#define IDENT_MAX_LEN 253 /* namespaces, pods, containers, container ids */
#define IMAGE_REF_MAX 1024

typedef enum RefKind {
        REF_ID,     /* 32 hex characters */
        REF_PREFIX, /* 4..31 hex characters (also tried as a name) */
        REF_NAME,
        REF_K8S,   /* namespace/pod/container: the newest ready one (never a pod's member) */
        REF_POD,   /* namespace/pod: the newest ready pod checkpoint of that pod */
        REF_PATH,  /* absolute directory (allowed_restore_dirs only) */
        REF_IMAGE, /* registry image: "HOST[:PORT]/REPO[:TAG][@DIGEST]" (common/image-ref.h) */
} RefKind;

/* Classifies and validates a reference: -EINVAL with *ret_reason (static
 * string) for empty, overlong, control characters, "..", bad characters. */
int ref_parse(const char *ref, RefKind *ret_kind, const char **ret_reason);
/* Splits "ns/pod/container" into three strings (freed by caller). */
int ref_split_k8s(const char *ref, char **ret_ns, char **ret_pod, char **ret_container);
/* Splits "ns/pod" into two strings (freed by caller). */
int ref_split_pod(const char *ref, char **ret_ns, char **ret_pod);

/* A checkpoint name or a containerd namespace / container id / k8s name:
 * 1..max characters of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool ident_valid(const char *s, size_t max);

/* An image reference as we record and quote it: 1..IMAGE_REF_MAX printable
 * ASCII characters, no space (so never a control character in a message). */
bool image_ref_valid(const char *s);

/* Is path (absolute, normalized: no "." or ".." components, no "//") strictly
 * below one of the dirs? */
bool path_allowed(const char *path, char *const *dirs);

/* Are a and b (absolute, normalized) the same directory, or is one below
 * the other? "/" overlaps everything. */
bool path_overlaps(const char *a, const char *b);

/* path with its longest existing leading part resolved by realpath() and the
 * rest (not yet created) appended, so a store that does not exist yet still
 * compares right. path must be absolute and normalized. Caller frees. */
int path_resolve_existing(const char *path, char **ret);

/* Is the directory real (resolved, absolute) the store, inside it or above
 * it, by name (after resolving store) or by identity: a bind mount of the
 * store or of its checkpoints/ or staging/ anywhere on the way also counts. */
bool path_in_store(const char *real, const char *store);

/* A reference that is a host path (REF_PATH): strictly below one of dirs,
 * free of symlinks (its realpath is itself), a directory, and never in the
 * store (path_in_store()). 0 and *ret_image_path (its checkpoint/
 * subdirectory if it has one, else path; caller frees), or a negative errno
 * and *ret_reason (static string). */
int host_path_check(const char *path, char *const *dirs, const char *store, char **ret_image_path,
                    const char **ret_reason);

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

/* The tenant rule on a pulled image's own annotations: each namespace it
 * names (ours, and checkpointctl's org.criu.checkpoint.pod.namespace, which
 * containerd 2.x and `checkpointctl build` write) must be the target's, so an
 * image whose annotations and metadata disagree is refused whichever of them
 * was tampered with. Absent annotations (a foreign image) pass: the pull
 * rules and tenant_check() on its metadata decide. 0, or -EACCES and
 * *ret_reason (static string). */
int image_tenant_check(const OciImage *img, const RestoreIdentity *target, const char **ret_reason);

/* Image rule: when both the checkpoint and the target name an image, they
 * must be the same image (compared after normalizing "busybox" to
 * "docker.io/library/busybox:latest"; a digest must match exactly). 0, or
 * -EMEDIUMTYPE with a message saying both images; an image reference that is
 * not image_ref_valid() never matches and is not quoted. */
int image_check(const CatalogEntry *e, const RestoreIdentity *target, char *msg, size_t msgsize);
/* Normalized image reference (caller frees). */
char *image_normalize(const char *ref);

/* Finds the row a reference (not a path) names. scope NULL: any row (the
 * operator's verbs). Otherwise only rows scope may restore (tenant_check())
 * exist: another tenant's checkpoint fails exactly as a missing one does
 * (-ENOENT, the same message), "ns/pod/container" gives the newest ready
 * row the scope sees, and an id prefix is ambiguous only among those. On
 * failure *msg says why, quoting nothing but ref. */
int resolve_lookup(Catalog *cat, const char *ref, const RestoreIdentity *scope, CatalogEntry *ret, char *msg,
                   size_t msgsize);

/* The member of pod checkpoint pod (a row with is_pod) that restores into
 * target: the one whose k8s_container is the target's container name, and
 * that target may restore (tenant_check(), as the pod row itself). -ENOENT
 * when the pod has no such member, -EINVAL when the target names no
 * container; *msg then names the pod checkpoint, the container asked for and
 * the containers the pod checkpoint has. */
int resolve_pod_member(Catalog *cat, const CatalogEntry *pod, const RestoreIdentity *target,
                       CatalogEntry *ret, char *msg, size_t msgsize);

/* Pull rules (config key pull_allow): which registry repositories a restore
 * may pull a checkpoint image from, into which namespaces. A rule is
 * "REPOSITORY_PREFIX=NAMESPACES": the prefix is HOST[:PORT] or
 * HOST[:PORT]/REPO (no tag, no digest) and matches whole path components
 * ("reg.local/ckpt/team-a" matches reg.local/ckpt/team-a and
 * reg.local/ckpt/team-a/web, never reg.local/ckpt/team-ab); NAMESPACES is a
 * comma-separated list of namespaces, or "*" for any. No rule: pulling off. */
typedef struct PullRule {
        char *prefix;
        char **namespaces; /* NULL-terminated; {"*"} for any */
} PullRule;

/* Parses a space-separated list of rules (an empty value: no rules). On
 * -EINVAL *ret_reason (static string) says what is wrong. */
int pull_rules_parse(const char *value, PullRule **ret, size_t *ret_n, const char **ret_reason);
void pull_rules_free(PullRule *rules, size_t n);
/* Does a rule allow repository ("HOST[:PORT]/REPO", no tag or digest) into
 * namespace ns? */
bool pull_allowed(const PullRule *rules, size_t n, const char *repository, const char *ns);
/* The namespace a restore target is matched by: its Kubernetes namespace,
 * else its containerd namespace (NULL if neither). */
const char *pull_target_namespace(const RestoreIdentity *t);

/* Retention over ready checkpoints. */
typedef struct RetentionItem {
        const char *group; /* one container: see retention_group() */
        int64_t created_ns;
        bool pinned;
        bool prune; /* out */
} RetentionItem;

/* Group key of a row: "k8s:<ns>/<pod>/<container>" for Kubernetes containers,
 * "pod:<ns>/<pod>" for pod checkpoints (those of a sandbox without Kubernetes
 * names: "pod:ctrd:<namespace>/<sandbox id>"), else "ctrd:<namespace>/<container
 * id>". Members of a pod checkpoint are not retention items: they go with
 * their pod. Caller frees. */
char *retention_group(const CatalogEntry *e);

/* Within each group, rank rows newest first; a row is pruned when it is not
 * pinned, its rank is >= keep (keep = 0: the count protects none) and it is
 * older than max_age_ns (0: any age). Items may come in any order. Returns
 * the number marked, or -EINVAL if keep and max_age are both 0 (that would
 * delete everything). */
int retention_select(RetentionItem *items, size_t n, uint32_t keep, int64_t max_age_ns, int64_t now_ns);

/* Parses "30s", "15m", "12h", "7d", "2w" or plain seconds into nanoseconds. */
int parse_duration_ns(const char *s, int64_t *ret);
