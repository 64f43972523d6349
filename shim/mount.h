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
