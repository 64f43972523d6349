/* SPDX-License-Identifier: Apache-2.0 */
/* What the capture (rootfs-diff.c) and the apply (rootfs-diff-apply.c) of a
 * writable layer share. */
#pragma once

#include <sys/types.h>

/* openat2() of path below dir_fd, never leaving it: no "..", no symlink, no
 * magic link, no other file system (O_CLOEXEC | O_NOFOLLOW added). */
int rootfs_open_beneath(int dir_fd, const char *path, int flags, mode_t mode);
