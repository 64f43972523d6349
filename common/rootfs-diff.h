/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A container's writable layer, saved beside its checkpoint and applied to the
 * fresh root filesystem of the container restored from it, in the files
 * Podman and CRI-O use:
 *
 *   rootfs-diff.tar   the overlay upper directory: directories, regular files
 *                     and symlinks with mode (07777), owner and mtime; paths
 *                     relative to the rootfs.
 *   deleted.files     a JSON array of absolute paths ("/etc/motd") removed
 *                     from the image: overlay whiteouts (char device 0/0) and
 *                     opaque directories (trusted.overlay.opaque = "y", which
 *                     is also archived with its new contents). Written only
 *                     when not empty.
 *
 * Capture reads the upper directory. Files copied up with metacopy=on carry
 * only metadata there; their data is read from the merged rootfs. A directory
 * renamed with redirect_dir=on is captured as deleted + its whole merged
 * content. Sockets, FIFOs and devices in the upper directory are skipped
 * (counted). Extended attributes (file capabilities, SELinux labels) are not
 * kept. Hard links become separate files.
 *
 * Sparse files are archived with their holes (GNU sparse, pax format 1.0: see
 * archive.h) and applied as sparse files. A limit on the file data stored
 * (holes not counted) keeps a huge writable layer from filling the store.
 *
 * Apply is strictly confined to the rootfs: every path is resolved below it
 * component by component with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV), so neither a symlink already in
 * the image nor one from the archive is ever followed (an upper directory has
 * none on the way to its entries); symlinks from the archive are created,
 * never followed; a hard link (Podman's archives have them) must name a
 * regular file found the same way; devices and FIFOs are refused.
 *
 * Before anything is changed, a pre-pass reads all of deleted.files and the
 * whole archive: every path, header, type, size and sparse map, the data
 * through to the end marker (a truncated archive changes nothing), symlink
 * targets, hard links to themselves, and that the file data fits in the free
 * space of the rootfs's filesystem. What depends on the rootfs's contents is
 * only found while applying, and then leaves the rootfs partly changed: a path
 * under a symlink or on another filesystem of the image (-EPERM), a hard link
 * whose target is missing or not a regular file, I/O errors and a filesystem
 * that fills up after all (metadata, other writers). The rootfs is the fresh
 * one of the container being restored, which then fails to start; nothing
 * outside the rootfs is ever changed. Deletions run first, then the archive is
 * extracted (an entry replaces whatever is at its path), then directory mtimes
 * are set. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROOTFS_DIFF_TAR "rootfs-diff.tar"
#define ROOTFS_DELETED_FILES "deleted.files"
#define ROOTFS_DIFF_MAX_ENTRIES 1000000U
#define ROOTFS_DELETED_MAX_BYTES (64U << 20)
#define ROOTFS_DIFF_DEPTH_MAX 256U
#define ROOTFS_DIFF_DIR_BYTES_MAX (256U << 20) /* paths of directories kept for their mtimes */

typedef struct RootfsOverlay {
        char *upperdir;
        bool userxattr; /* overlay mounted with userxattr: user.overlay.* instead of trusted.overlay.* */
        char *fstype;   /* of the mount found at the rootfs, for messages */
} RootfsOverlay;

void rootfs_overlay_done(RootfsOverlay *o);

/* Finds the topmost mount at mount_point (absolute, no symlinks) in the text
 * of /proc/<pid>/mountinfo. Returns 1 with o->upperdir set if it is an
 * overlay with an upper directory, 0 if it is another filesystem or an
 * overlay without one (o->fstype says which), -ENOENT if nothing is mounted
 * there, -EBADMSG for unparsable text. */
int rootfs_find_overlay(const char *mountinfo, const char *mount_point, RootfsOverlay *o);

typedef struct RootfsDiffStats {
        uint64_t entries;    /* archived entries */
        uint64_t deleted;    /* paths in deleted.files */
        uint64_t skipped;    /* sockets, FIFOs, devices */
        uint64_t bytes;      /* size of rootfs-diff.tar */
        uint64_t data_bytes; /* file data in it (holes of sparse files not counted) */
} RootfsDiffStats;

/* Writes dest_dir/rootfs-diff.tar (always) and dest_dir/deleted.files (when
 * something was deleted) from the overlay upper directory upperdir. merged is
 * the mounted rootfs (for metacopy/redirect entries; NULL: such entries fail
 * with -ENOTSUP). The files must not exist yet. Blocking: run it outside an
 * event loop. */
int rootfs_diff_capture(const char *upperdir, bool userxattr, const char *merged, const char *dest_dir,
                        RootfsDiffStats *ret_stats);
/* Same, storing at most max_data_bytes of file data (0: no limit). Over it,
 * the capture fails with -EFBIG after counting the rest: ret_stats (filled on
 * failure too) then has the whole layer's data_bytes. The files written so far
 * are left for the caller to remove. */
int rootfs_diff_capture_limited(const char *upperdir, bool userxattr, const char *merged,
                                const char *dest_dir, uint64_t max_data_bytes, RootfsDiffStats *ret_stats);

/* Applies checkpoint_dir/deleted.files then checkpoint_dir/rootfs-diff.tar to
 * the directory rootfs (absent files: nothing to do). Returns 0, or a
 * negative errno: -EPERM for a path that would leave rootfs or runs through a
 * symlink or a hard link to something else than a regular file, -ENOTSUP for
 * devices/FIFOs, -EBADMSG for a malformed
 * archive or list, -E2BIG/-EFBIG over the limits, -ENOSPC if the file data
 * does not fit in the rootfs's free space. Blocking (the shim runs it
 * in a forked child). */
int rootfs_diff_apply(const char *checkpoint_dir, const char *rootfs);

/* Same, and on failure writes a one-line explanation naming the file and
 * path at fault into errbuf (if not NULL). */
int rootfs_diff_apply_msg(const char *checkpoint_dir, const char *rootfs, char *errbuf, size_t errlen);
