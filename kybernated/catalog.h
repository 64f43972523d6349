/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The checkpoint catalog: one SQLite database (WAL, versioned schema with
 * migrations). This module is the only one that includes sqlite3.h; every
 * function returns >= 0 or a negative errno (-ENOENT no such row, -EEXIST
 * unique constraint, -ENOTUNIQ ambiguous id prefix, -EBUSY locked, -ENOSPC
 * full disk, -EIO anything else). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CATALOG_SCHEMA_VERSION 8

/* Numbers match kybernate.v1.CheckpointState. */
typedef enum CheckpointState {
        CHECKPOINT_PENDING = 1,
        CHECKPOINT_READY = 2,
        CHECKPOINT_FAILED = 3,
} CheckpointState;

/* CRIU options used (bit mask, stored as is). */
enum {
        CKPT_OPT_LEAVE_RUNNING = 1u << 0,
        CKPT_OPT_TCP_ESTABLISHED = 1u << 1,
        CKPT_OPT_EXT_UNIX_SK = 1u << 2,
        CKPT_OPT_FILE_LOCKS = 1u << 3,
        CKPT_OPT_SHELL_JOB = 1u << 4,
};

typedef struct CatalogEntry {
        char *id;   /* 32 lowercase hex characters */
        char *name; /* NULL or unique */
        CheckpointState state;
        char *containerd_namespace;
        char *k8s_namespace;
        char *k8s_pod;
        char *k8s_container;
        char *container_id;
        char *image_ref;
        char *image_digest;
        int64_t created_ns;
        uint64_t size_bytes;
        char *runc_version;
        char *criu_version;
        char *kernel_version;
        uint32_t options;
        char *checksum;
        uint64_t restore_count;
        bool pinned;
        bool allow_cross_namespace;
        /* schema 2 */
        int64_t last_restored_ns;
        bool durable;
        char *bundle;
        /* schema 4: boot id at the moment runc's dump and our metadata were
         * complete (still pending: not yet checksummed and synced). */
        char *dumped_boot_id;
        /* schema 5: set in the pending row, before `runc pause` or the dump
         * starts, when the container was running (not frozen by someone
         * else): a daemon killed before the dump completed may have left it
         * paused by us or frozen by CRIU, and start-up recovery resumes it
         * (`runc --root runc_root resume`). Cleared when the dump is complete
         * and when our pause failed (the container may be someone else's
         * to freeze). Only pending rows are looked at. */
        bool thaw;
        char *runc_root;
        /* schema 6: the registry image the checkpoint was pulled from,
         * "HOST[:PORT]/REPO@sha256:<64 hex>" (empty for local ones): a
         * restore from the same digest uses the row instead of pulling. */
        char *source_image;
        /* schema 7: push_pending is set in the pending row of a checkpoint
         * taken while push_to is configured (never for imported or pulled
         * ones) and cleared when the push succeeded, which records
         * pushed_image, "HOST[:PORT]/REPO:<id>@sha256:<64 hex>" (empty until
         * then). A ready row still marked is pushed at start-up. */
        bool push_pending;
        char *pushed_image;
        /* schema 8: whole pods. A pod checkpoint (is_pod) has no images of
         * its own: container_id is the pod's sandbox, k8s_container empty,
         * and one member row per container names it in pod_id. Members are
         * made ready together with their pod, in one transaction, and go
         * with it. thaw_cgroup: set in the pending pod row, before the pod's
         * cgroup is frozen, to that cgroup's freezer directory; start-up
         * recovery thaws it (before the members' own thaw marks). frozen_usec:
         * how long the pod's containers were frozen. */
        char *pod_id;
        bool is_pod;
        char *thaw_cgroup;
        uint64_t frozen_usec;
} CatalogEntry;

/* Empty or NULL fields do not filter. */
typedef struct CatalogFilter {
        const char *containerd_namespace;
        const char *k8s_namespace;
        const char *k8s_pod;
        const char *k8s_container;
        const char *container_id;
        const char *pod_id; /* the members of that pod checkpoint */
        int state;          /* 0 = any */
        uint32_t limit;     /* 0 = none */
} CatalogFilter;

typedef struct CatalogCounts {
        uint64_t ready, pending, failed, pinned;
        uint64_t bytes;
} CatalogCounts;

typedef struct Catalog Catalog;

/* path ":memory:" gives a private in-memory database. durable: commits are
 * fsync'ed (synchronous=FULL) rather than only ordered (NORMAL). */
int catalog_open(const char *path, bool durable, Catalog **ret);
/* Tests: migrates only up to version (to test later migrations). */
int catalog_open_at_version(const char *path, bool durable, int version, Catalog **ret);
Catalog *catalog_close(Catalog *c);
static inline void catalog_closep(Catalog **c) {
        catalog_close(*c);
}
int catalog_schema_version(Catalog *c);

void catalog_entry_done(CatalogEntry *e);
int catalog_entry_copy(const CatalogEntry *src, CatalogEntry *ret);

int catalog_insert(Catalog *c, const CatalogEntry *e);
int catalog_get(Catalog *c, const char *id, CatalogEntry *ret);
int catalog_get_by_name(Catalog *c, const char *name, CatalogEntry *ret);
/* Ready or not, the one row whose id starts with prefix (-ENOTUNIQ if several). */
int catalog_get_by_prefix(Catalog *c, const char *prefix, CatalogEntry *ret);
/* The newest ready row of that Kubernetes container. */
/* The newest ready row pulled from source_image ("HOST/REPO@sha256:..."). */
int catalog_get_by_source_image(Catalog *c, const char *source_image, CatalogEntry *ret);
int catalog_get_newest(Catalog *c, const char *k8s_namespace, const char *k8s_pod, const char *k8s_container,
                       CatalogEntry *ret);

int catalog_set_ready(Catalog *c, const char *id, uint64_t size_bytes, const char *checksum);
int catalog_set_state(Catalog *c, const char *id, CheckpointState state);
/* Records a successful push (pushed_image as in CatalogEntry) and clears push_pending. */
int catalog_set_pushed(Catalog *c, const char *id, const char *pushed_image);
/* Records that the dump is complete (files written, not necessarily synced). */
int catalog_set_dumped(Catalog *c, const char *id, const char *boot_id);
/* The pod checkpoint pod_id and all its members ready, in one transaction;
 * sizes and checksums of the members (n of them, ids[i]) as for
 * catalog_set_ready(); the pod's size is their sum. */
int catalog_set_pod_ready(Catalog *c, const char *pod_id, uint64_t frozen_usec, size_t n,
                          const char *const *ids, const uint64_t *sizes, const char *const *checksums);
/* Sets or clears the pending pod row's thaw_cgroup mark. */
int catalog_set_thaw_cgroup(Catalog *c, const char *id, const char *cgroup);
/* Sets or clears the pending row's thaw mark. */
int catalog_set_thaw(Catalog *c, const char *id, bool thaw);
int catalog_set_pinned(Catalog *c, const char *id, bool pinned);
int catalog_record_restore(Catalog *c, const char *id, int64_t now_ns);
int catalog_delete(Catalog *c, const char *id);

/* Calls cb for each matching row, newest first. The row's strings belong to
 * SQLite and are valid only during the call (copy with catalog_entry_copy()).
 * cb returns < 0 to stop (that value is returned). Returns the number of rows
 * visited otherwise. */
typedef int (*CatalogRowFn)(const CatalogEntry *e, void *userdata);
int catalog_list(Catalog *c, const CatalogFilter *f, CatalogRowFn cb, void *userdata);
/* Calls cb for each ready row still to push, oldest first (as catalog_list()). */
int catalog_list_push_pending(Catalog *c, CatalogRowFn cb, void *userdata);
int catalog_count(Catalog *c, const CatalogFilter *f, uint64_t *ret);
int catalog_counts(Catalog *c, CatalogCounts *ret);

/* Raw SQL without parameters (tests, maintenance). */
int catalog_exec(Catalog *c, const char *sql);
int catalog_begin(Catalog *c);
int catalog_commit(Catalog *c);
int catalog_rollback(Catalog *c);
