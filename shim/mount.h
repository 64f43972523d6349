/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A containerd.types.Mount, independent of the generated type. */
typedef struct MountSpec {
        const char *type;
        const char *source;
        char *const *options;
        size_t n_options;
} MountSpec;

/* Splits mount options into MS_* flags and the data string mount(2) takes.
 * ret_data is malloc'd (possibly empty). */
int mount_parse_options(char *const *options, size_t n, unsigned long *ret_flags,
                        unsigned long *ret_propagation, char **ret_data);
/* Mounts m on target (containerd's rootfs mounts on <bundle>/rootfs). */
int mount_apply(const MountSpec *m, const char *target);
/* Unmounts everything stacked on path (detaching busy mounts). Not mounted is success. */
int mount_unmount_all(const char *path);

/* Before anything deletes a container's directories: detaches every mount an
 * interrupted runc restore or CRIU left below them, so that nothing deletes
 * through a mount. `runc delete` removes <runc_root>/<id> recursively when it
 * has no state.json, and a killed restore leaves criu-root there, a recursive
 * bind mount of the container's rootfs; CRIU mounts its cgroup yard
 * (.criu.cgyard.*) under its work directory (criu_work, else <bundle>/work,
 * which containerd removes after us); criu_images likewise when given. NULL
 * paths are skipped. Returns how many mounts were detached, or the first
 * error: then something may still be mounted below, and nothing may delete. */
int mount_detach_runc_leftovers(const char *runc_root, const char *id, const char *bundle,
                                const char *criu_work, const char *criu_images);
