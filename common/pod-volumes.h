/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/* The emptyDir volumes of a pod's containers, carried by a pod checkpoint.
 * kubelet backs an emptyDir with a directory of the node,
 * <kubelet root>/pods/<pod uid>/volumes/kubernetes.io~empty-dir/<name>, bind
 * mounted into each container that names it; a new pod gets new, empty ones.
 * A pod checkpoint's member saves each emptyDir it mounts, at the frozen
 * instant, as volumes/<name>.tar in its checkpoint directory; a restore fills
 * the new pod's emptyDir of the same name from it, only while that directory
 * is still empty (the first member restored with it does so: the others
 * find it filled, possibly by a container already running again). */
#include <stdbool.h>
#include <stddef.h>

#define POD_VOLUME_DIR "volumes"

/* The emptyDir name in a bind mount source, or NULL (not an emptyDir, or a
 * name that is not a plain [A-Za-z0-9._-] identifier). Points into source. */
const char *pod_volume_name(const char *source);
/* For each emptyDir mount of the OCI spec: dest_dir/volumes/<name>.tar. */
int pod_volumes_capture(const char *spec_json, const char *dest_dir);
/* For each emptyDir mount of the OCI spec whose source is empty and which
 * checkpoint_dir/volumes holds: its files back. Validated as any archive
 * (no paths outside, no links, no devices). */
int pod_volumes_restore(const char *checkpoint_dir, const char *spec_json);
