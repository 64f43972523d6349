/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* push_to: every checkpoint this node takes goes to the registry repository
 * push_to as the image push_to:<checkpoint id>, in the background, so that a
 * node that does not have it resolves the id by pulling that image
 * (ops-pull.c).
 *
 * The checkpoint's row is marked push_pending when it is inserted (catalog.h)
 * and the mark is cleared, with the image and its digest recorded in
 * pushed_image, only once the registry has the image: a daemon killed
 * mid-push, or a push that failed, leaves the mark, and the push is done
 * again at the next start (push_start()) and, while the daemon runs, after a
 * delay that doubles with each failure (30 s up to 30 min). Imported and
 * pulled checkpoints are never marked. A pod checkpoint is pushed whole, as
 * one image of its archive (the pod row marked, its members not).
 *
 * One push runs at a time, in a forked child (the event loop never waits):
 * the checkpoint is packed as kybernatectl push packs it
 * (checkpoint_image_write()) into an OCI layout in the store's staging
 * directory (which start-up empties), and skopeo pushes it (registry_push()).
 * The daemon does not wait for a running push when it exits: the child is
 * killed and the mark stays. */

#include "manager.h"

typedef struct Pusher Pusher;

/* At start-up, once the store is clean: queues every ready row still marked.
 * Nothing to do without push_to. */
int push_start(Manager *m);
/* Checkpoint id became ready: queue its push if its row is marked. */
void push_checkpoint(Manager *m, const char *id);
/* Kills a running push (its mark stays) and frees the queue. */
Pusher *pusher_free(Pusher *p);
