/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/* The Checkpoint operation (checkpoint.c), and its use by a pod checkpoint
 * (pod.c): one job per container of the pod, each a "member" that the pod
 * freezes, starts, thaws and makes ready. */
#include <stdint.h>

#include "ops.h"

typedef struct CheckpointJob CheckpointJob;

/* What a member tells its pod. dumped: once, when runc checkpoint is done
 * (r = 0; the container is still frozen) or the member failed before that
 * (r < 0). done: once, last, when its files are complete and synced (r = 0,
 * size and checksum for catalog_set_pod_ready()) or it failed (r < 0,
 * error; its row and directory are removed already). The job is freed
 * after done returns. */
typedef struct CheckpointMemberHooks {
        void (*dumped)(void *userdata, int r);
        void (*done)(void *userdata, int r, uint64_t size, const char *checksum, const char *error);
} CheckpointMemberHooks;

/* Checks the parts of a Checkpoint request common to one container and a
 * pod (name, runc_root, image_ref, not disabled); replies and returns false
 * if one is wrong. */
bool checkpoint_request_valid(Connection *c, const Kybernate__V1__CheckpointRequest *req);
/* The CKPT_OPT_* of a request. */
uint32_t checkpoint_request_options(const Kybernate__V1__CheckpointRequest *req);

/* A member job for container_id (state_json: runc's state.json of it), its
 * pending row inserted with pod_id, the thaw mark set if it runs; it waits
 * for checkpoint_member_dump(). *ret_id: its checkpoint id (to free). */
int checkpoint_member_new(Manager *m, const char *pod_id, const char *containerd_namespace,
                          const char *container_id, const char *runc_root, const char *state_json,
                          uint32_t options, const CheckpointMemberHooks *hooks, void *userdata,
                          CheckpointJob **ret, char **ret_id);
/* The pod has frozen the member's container: capture its writable layer,
 * dump it (left frozen: the pod thaws or stops it). */
void checkpoint_member_dump(CheckpointJob *j);
/* Ends a member that has not started its dump: row and directory removed,
 * hooks called. */
void checkpoint_member_cancel(CheckpointJob *j, const char *why);
