/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Clean-up that never deletes through a mount. An interrupted runc restore
 * leaves <runc root>/<id>/criu-root (a recursive bind mount of the container's
 * root filesystem) and CRIU's cgroup yard (.criu.cgyard.*) under its work
 * directory: a recursive removal that walks into them deletes the container's
 * files (or cgroups). Detach first, then remove without leaving the filesystem. */

#include <stdlib.h>

/* Detaches (MNT_DETACH | UMOUNT_NOFOLLOW) every mount point at or below path,
 * deepest first, read again from /proc/self/mountinfo after each one (a
 * detached mount can reveal one hidden under it). path is resolved with
 * realpath first; a path that does not exist has nothing below it. Returns
 * how many mounts were detached. */
int umount_below(const char *path);

/* Removes path recursively without ever leaving its filesystem: umount_below()
 * first, then a walker that skips anything on another device and never follows
 * symlinks. -ENOENT is not an error. Returns -EXDEV if something was left
 * because it was on another device. */
int remove_tree_one_fs(const char *path);

/* For _cleanup_: remove_tree_one_fs(*path) unless *path is NULL (disarmed). */
static inline void remove_tree_one_fsp(const char **path) {
        if (*path)
                (void)remove_tree_one_fs(*path);
}

/* remove_tree_one_fs(*path), then frees *path and sets it to NULL (nothing
 * if it is NULL): a staging directory an object owns. */
static inline void remove_tree_one_fs_free(char **path) {
        if (*path) {
                (void)remove_tree_one_fs(*path);
                free(*path);
                *path = NULL;
        }
}
