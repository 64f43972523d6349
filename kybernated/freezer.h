/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/* Freezing a cgroup directly, as `runc pause` does for one container: the
 * v1 freezer (freezer.state) or the v2 cgroup.freeze, told apart by which
 * file the directory has. A pod checkpoint freezes the pod's cgroup (every
 * container of the pod at one instant) and then each container's own, so
 * that each stays frozen, in the state `runc pause` leaves, when the pod's
 * is thawed again. Only directories below /sys/fs/cgroup are touched. */
#include <stdbool.h>
#include <stdint.h>

/* Whether dir is a normalized absolute path below /sys/fs/cgroup. */
bool freezer_path_valid(const char *dir);
/* Freezes or thaws dir; frozen: waits until the whole cgroup is frozen, at
 * most timeout_usec (-ETIMEDOUT). */
int freezer_set(const char *dir, bool frozen, uint64_t timeout_usec);
/* 1 frozen, 0 not, < 0 cannot tell. */
int freezer_is_frozen(const char *dir);
