/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/* A pod restored from a pod checkpoint gets its containers back one at a
 * time, as kubelet starts them. A TCP connection between two of them (a
 * client and a server over loopback) comes back in two halves: the first one
 * restored announces itself at once (the kernel sends a window probe when
 * CRIU takes the socket out of repair mode) to a peer that does not exist
 * yet, gets a reset, and the connection is lost. So the restoring pod's
 * loopback TCP is held (a DROP rule for TCP on lo in the pod's network
 * namespace, tagged with the pod checkpoint) from before the first member's
 * restore until every member runs again; TCP then retransmits what was
 * dropped and both halves carry on. Each member's shim takes the hold if it
 * is not there yet, and after its own restore watches the pod's containers
 * (common/cri-scan) until all members run, or NETLOCK_MAX_USEC pass, then
 * drops it. Needs iptables, as CRIU itself does for established TCP. */
#include "shim.h"

#define NETLOCK_MAX_USEC (120 * USEC_PER_SEC)

typedef struct NetLock NetLock;

/* netns: the pod's network namespace; tag: the pod checkpoint id; members:
 * the container names of all its members (n_members of them); sandbox_id and
 * runc_root: where to look for them. */
int netlock_new(const char *netns, const char *tag, char *const *members, size_t n_members,
                const char *sandbox_id, const char *runc_root, NetLock **ret);
NetLock *netlock_free(NetLock *l);
/* For fork_call(): adds the rule, unless it is there (arg: the NetLock). */
int netlock_hold(const void *arg);
/* After this member's restore (whether it worked or not): releases the hold
 * once every member runs, in the background; takes l. */
void netlock_release_when_complete(Shim *s, NetLock *l);
