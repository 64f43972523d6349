/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The operations. Each handler answers its request through c, now or later:
 * one that runs on sets c->op and c->op_detach, which the connection calls
 * when the client goes away. A checkpoint or import goes on without it; a
 * checksum verification (start_verify) is cancelled: dropped from the queue,
 * or its hashing child killed and reaped. */

#include <stdbool.h>

#include "catalog.h"
#include "connection.h"
#include "manager.h"
#include "resolve.h"
#include "spawn.h"

/* checkpoint.c */
void op_checkpoint(Connection *c, const Kybernate__V1__CheckpointRequest *req);
/* op_checkpoint() of a whole pod (req->pod set): pod.c. */
void op_pod_checkpoint(Connection *c, const Kybernate__V1__CheckpointRequest *req);
/* ops-catalog.c */
void op_list(Connection *c, const Kybernate__V1__ListRequest *req);
void op_inspect(Connection *c, const Kybernate__V1__InspectRequest *req);
void op_delete(Connection *c, const Kybernate__V1__DeleteRequest *req);
void op_prune(Connection *c, const Kybernate__V1__PruneRequest *req);
void op_pin(Connection *c, const Kybernate__V1__PinRequest *req);
void op_status(Connection *c, const Kybernate__V1__StatusRequest *req);
/* ops-resolve.c */
void op_resolve(Connection *c, const Kybernate__V1__ResolveRequest *req);
/* The Resolve reply for row e (taken), found or pulled for target t: it
 * must be ready and pass the tenant rule; a pod checkpoint gives its member
 * of t's container name; then the image rule (unless ignore_image) and the
 * checksum verification (start_verify_member()). */
void resolve_reply(Connection *c, CatalogEntry *e, const RestoreIdentity *t, bool ignore_image,
                   bool count_restore);
/* ops-pull.c: a Resolve whose reference is a registry image (REF_IMAGE), or
 * push_to:<id> for an id this node does not have: then not_found is the
 * answer of a local lookup, given (ENOENT, with the reason) when the node does
 * not pull (no pull_allow rule) or the registry has no such image; NULL
 * otherwise. */
void op_resolve_image(Connection *c, const char *image, const RestoreIdentity *t, bool ignore_image,
                      bool count_restore, const char *not_found);
/* ops-transfer.c */
void op_export(Connection *c, const Kybernate__V1__ExportRequest *req);
void op_import(Connection *c, const Kybernate__V1__ImportRequest *req);

/* Shared by the handlers (ops.c). */
static inline char *nn(const char *s) {
        return (char *)(s ? s : "");
}
void entry_to_info(const CatalogEntry *e, const char *path, Kybernate__V1__CheckpointInfo *info,
                   Kybernate__V1__CheckpointOptions *opts);
/* manager_lookup(), answering the client with the reason when it fails. */
int lookup_or_reply(Connection *c, const char *reference, CatalogEntry *ret);
/* Sends a response carrying one CheckpointInfo in the result `kind`. */
void reply_info(Connection *c, int kind, const CatalogEntry *e);
/* An adopted checkpoint (import, pull) is ready, of size bytes and checksum:
 * its row first, then e and the kybernate.json in its dir say so. */
int adopt_ready(Manager *m, CatalogEntry *e, const char *dir, uint64_t size, const char *checksum);
/* The members of a pod checkpoint as CheckpointInfo.members (PodMember
 * {k8s_container, id}), newest first; the strings are copies, freed by
 * pod_members_done(). */
typedef struct PodMembers {
        Kybernate__V1__PodMember *items;
        Kybernate__V1__PodMember **ptrs;
        size_t n, alloc;
} PodMembers;
int pod_members_load(Catalog *cat, const char *pod_id, PodMembers *ret);
void pod_members_attach(PodMembers *pm, Kybernate__V1__CheckpointInfo *info);
void pod_members_done(PodMembers *pm);

/* Verifies e's checksum (taking e), then answers with the result `kind`
 * (resolve, inspect or export); count_restore records a restore. At most
 * config->max_verify_jobs hashing children run at once; the rest wait in a
 * queue, root's requests ahead of the others'; a non-root request finding 64
 * (VERIFY_QUEUE_MAX) already waiting gets EBUSY. */
#define VERIFY_QUEUE_MAX 64u
void start_verify(Connection *c, CatalogEntry *e, int kind, bool count_restore);
/* The same for e, a member of pod checkpoint pod_id (NULL: start_verify()):
 * a restore is counted on both. */
void start_verify_member(Connection *c, CatalogEntry *e, const char *pod_id, int kind, bool count_restore);
/* Export of pod checkpoint e (taking e and its n ready members, an array
 * freed with them): each member verified in turn, one hashing child at a
 * time; the reply carries the pod and every member with its path. */
void start_verify_pod_export(Connection *c, CatalogEntry *e, CatalogEntry *members, size_t n);
/* Whether e is a member of a pod checkpoint that is still in the catalog
 * (a member whose pod row is gone is on its own again): ops-catalog.c. */
bool member_of_pod(Manager *m, const CatalogEntry *e);

/* ops-transfer.c, for import and pull: a checkpoint unpacked into the staging
 * directory sd. staging_identity() fills e's identity from its kybernate.json
 * (fields e has already are kept), then its spec.dump (a Kubernetes
 * container's that names no containerd namespace gets CRI's, k8s.io); fails
 * only on an invalid kybernate.json. staging_adopt() gives e a new id, inserts it
 * (pending; -EEXIST for a taken name), moves sd to the checkpoint's directory
 * (*ret_dir) and drops the kybernate.json that described another store's row;
 * on failure no row is left and sd stays where it was. */
#define CRI_CONTAINERD_NAMESPACE "k8s.io"
int staging_identity(const char *sd, CatalogEntry *e);
/* What sd holds: a pod checkpoint's archive (pod.json at the top), one
 * checkpoint (checkpoint/inventory.img a regular file), else -EMEDIUMTYPE. */
enum { STAGING_CHECKPOINT, STAGING_POD };
int staging_kind(const char *sd);
int staging_adopt(Manager *m, const char *sd, CatalogEntry *e, char **ret_dir);

/* ops-transfer.c, for import and pull: the pod checkpoint archive unpacked
 * in the staging directory sd, which it takes (moved into the store, or
 * removed), becomes a pod row (name, pin and source_image as p says) and its
 * members, each checksummed, ready together. With p->target, the pod's
 * identity must pass the tenant rule for it before anything is adopted.
 * done is called once, maybe before pod_import() returns: with c (NULL: none
 * was given, or it went away) let go, and either r < 0 and what failed
 * (nothing of the import is left) or the ready pod row. */
typedef struct PodImportParams {
        const char *name;
        bool pin;
        const char *source_image;
        const RestoreIdentity *target;
} PodImportParams;
typedef void (*PodImportDone)(Connection *c, int r, const char *what, CatalogEntry *pod, void *userdata);
void pod_import(Manager *m, Connection *c, const char *sd, const PodImportParams *p, PodImportDone done,
                void *userdata);

/* One verification: waiting in m->verify_queue (task NULL) or running. */
struct VerifyOp {
        Manager *manager;
        Connection *conn;
        int kind; /* the Response result case */
        CatalogEntry entry;
        char *path;
        bool count_restore; /* resolve, not dry run */
        char *pod_id;       /* entry is a member of this pod checkpoint: counted too */
        bool privileged;    /* root's: queued ahead, never refused for a full queue */
        ChecksumTask *task; /* running */
        VerifyOp *next;     /* queued */
        /* Export of a pod checkpoint (entry): its members and their
         * directories, verified one after the other (checked so far). */
        CatalogEntry *members;
        char **member_paths;
        size_t n_members, checked;
};
