/* SPDX-License-Identifier: Apache-2.0 */
/* What the Checkpoint operation's steps (checkpoint.c) and its job with its
 * ends (checkpoint-job.c) share; no other file includes it. */
#pragma once

#include "checkpoint.h"
#include "rootfs-diff.h"
#include "runc-args.h"

typedef struct CheckpointJob {
        Manager *manager;
        Connection *conn; /* NULL once the client went away; the job goes on */
        CatalogEntry entry;
        char *dir; /* <store>/checkpoints/<id> */
        char *runc_root;
        char *created; /* container creation time from runc state */
        bool row_inserted;
        sd_event_source *child;
        int64_t started_usec;
        /* the container's root filesystem and what is saved of it */
        char *rootfs;
        RootfsOverlay overlay; /* .upperdir NULL: nothing to capture */
        char *rootfs_note;     /* why not */
        char *spec;            /* the OCI spec, read before the dump: containerd may remove the
                                * bundle as soon as an --exit dump has stopped the container */
        RootfsDiffStats diff_stats;
        int capture_fd; /* result pipe of the capture child */
        bool we_paused; /* resume the container before the job ends */
        int fail_error; /* a failure waiting for that resume */
        char *fail_what;
        /* A member of a pod checkpoint (checkpoint.h): frozen, thawed and
         * made ready by the pod, told of its progress through these. */
        const CheckpointMemberHooks *hooks;
        void *hooks_userdata;
        bool member;        /* a pod's (hooks set once its row is in) */
        bool member_dumped; /* hooks->dumped called */
} CheckpointJob;

/* A new job for container_id under runc_root (NULL: the namespace's
 * default), with its id, directory and work directory; NULL with *ret_error
 * set (a negative errno) when that failed. */
CheckpointJob *job_new(Manager *m, const char *containerd_namespace, const char *container_id,
                       const char *runc_root, uint32_t options, int *ret_error);
void job_free(CheckpointJob *j);
/* <dir>/rel, NULL when out of memory. */
char *job_path(CheckpointJob *j, const char *rel);
/* A Progress message to the client, if it is still there. */
void job_progress(CheckpointJob *j, const char *stage, const char *message);

/* runc and the global options every runc of this job gets. */
void job_add_runc(const CheckpointJob *j, Argv *a);
/* Starts the runc command in a, output to work/runc.log, handler on its exit. */
int job_spawn(CheckpointJob *j, Argv *a, sd_event_child_handler_t handler);
/* runc <verb> of the container (pause, resume). */
int job_spawn_runc(CheckpointJob *j, const char *verb, sd_event_child_handler_t handler);

/* After the dump (and the rootfs capture): resumes the container if we
 * paused it, then metadata, checksum, sync, the row ready and the reply (or
 * the pod told); frees the job. */
void job_finish(CheckpointJob *j);
/* Ends the job with an error: resumes the container if we paused it, keeps
 * the logs, removes files and row, replies (or tells the pod); frees the
 * job. */
void job_fail(CheckpointJob *j, int error, const char *what);
