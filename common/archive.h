/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Tar archives of checkpoint directories, in the layout Podman and CRI-O
 * export and `checkpointctl show` reads (config.dump, spec.dump, checkpoint/
 * with the CRIU images, stats-dump, ...).
 *
 * Writing: POSIX ustar, with a pax extended header for a path longer than 100
 * bytes or a file of 8 GiB or more. Only directories and regular files are
 * archived; anything else in the tree fails the export (-ENOTSUP) and symlinks
 * are never followed. archive_writer_add_entry() (the rootfs diff) adds
 * symlinks too and keeps owners and setuid/setgid/sticky bits.
 *
 * Sparse files: archive_writer_add_entry() finds the holes of a regular file
 * with SEEK_DATA/SEEK_HOLE and, if it has any, stores only the data as a GNU
 * sparse file in pax format 1.0 (GNU.sparse.major=1, minor=0, name, realsize;
 * the map of data segments at the start of the entry's data), which GNU tar,
 * bsdtar and Go's archive/tar (Podman, CRI-O) read. A map that ends in a hole
 * ends with the segment (realsize, 0), as GNU tar writes and needs.
 *
 * Reading: ustar, pax ('x' path/size/linkpath/uid/gid, GNU.sparse.* 1.0, 'g'
 * ignored) and GNU ('L'/'K' long names, base-256 numbers) headers. The sparse
 * map is untrusted input and checked strictly (at most
 * ARCHIVE_SPARSE_MAX_SEGMENTS segments, in order, not overlapping, within the
 * real size, their lengths adding up to exactly the data stored); other
 * sparse formats (pax 0.0/0.1, old GNU 'S' entries) fail with -ENOTSUP. Only directories and
 * regular files are accepted, plus symlinks and hard links when the caller
 * sets ArchiveLimits.allow_symlinks / allow_hardlinks (kybernatectl import
 * does not); devices and FIFOs fail the read with -ENOTSUP. A hard link's
 * target is normalised and checked like a path. A path that is
 * absolute, contains "..", or would leave the destination is refused with
 * -EPERM. A truncated archive, a bad header checksum or a missing end marker
 * is -EBADMSG. Extraction never follows a symlink (every component is opened
 * with O_NOFOLLOW) and never overwrites (a duplicate entry is -EEXIST). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "util.h"

#define ARCHIVE_BLOCK_SIZE 512U
#define ARCHIVE_PATH_MAX 4096U
#define ARCHIVE_NAME_MAX 255U
#define ARCHIVE_DEPTH_MAX 64U
#define ARCHIVE_PAX_MAX ((size_t)64 * 1024)
#define ARCHIVE_SPARSE_MAX_SEGMENTS ((size_t)256 * 1024)

/* Told how many bytes of the archive were read or written so far, after
 * each read() or write of at most 128 KiB: for a progress display. */
typedef void (*ArchiveProgressFunc)(uint64_t bytes, void *userdata);

typedef struct ArchiveLimits {
        uint64_t max_entries; /* 0: ARCHIVE_DEFAULT_MAX_ENTRIES */
        uint64_t
                max_total_bytes; /* sum of the file data stored (sparse files: without holes); 0: no limit */
        bool allow_symlinks;     /* pass symlink entries to the callback (never archive_extract) */
        bool allow_hardlinks;    /* pass hard link entries to the callback (never archive_extract) */
        ArchiveProgressFunc progress; /* NULL: none */
        void *progress_userdata;
} ArchiveLimits;
#define ARCHIVE_DEFAULT_MAX_ENTRIES 1000000U

typedef enum ArchiveEntryType {
        ARCHIVE_ENTRY_FILE,
        ARCHIVE_ENTRY_DIRECTORY,
        ARCHIVE_ENTRY_SYMLINK,  /* only with ArchiveLimits.allow_symlinks */
        ARCHIVE_ENTRY_HARDLINK, /* only with ArchiveLimits.allow_hardlinks */
} ArchiveEntryType;

/* A run of data in a sparse file. */
typedef struct ArchiveSegment {
        uint64_t offset, length;
} ArchiveSegment;

typedef struct ArchiveEntry {
        const char *path; /* normalised: relative, no "." or ".." components, no trailing '/' */
        ArchiveEntryType type;
        uint64_t size;       /* apparent size (a sparse file's real size) */
        uint64_t data_bytes; /* data stored: size, or less for a sparse file */
        bool sparse;
        mode_t mode; /* permission bits, with setuid/setgid/sticky (07777) */
        uid_t uid;
        gid_t gid;
        int64_t mtime;
        const char *link_target; /* symlinks: the target as stored (never normalised); hard
                                  * links: the normalised member path; else NULL */
} ArchiveEntry;

typedef struct ArchiveReader ArchiveReader;

/* Called per entry. It may read the entry's data with archive_reader_read();
 * whatever it leaves is skipped. A negative return stops archive_read(). */
typedef int (*ArchiveEntryFunc)(ArchiveReader *r, const ArchiveEntry *e, void *userdata);

/* Reads an archive from in_fd (a file or a pipe). Returns the number of
 * entries (capped at INT32_MAX) or a negative errno. */
int archive_read(int in_fd, const ArchiveLimits *limits, ArchiveEntryFunc f, void *userdata);
/* Reads up to n bytes of the current entry's content (a sparse file's holes
 * as zeros): returns the count (0 at the end of the entry) or -EBADMSG if the
 * archive ends early. */
ssize_t archive_reader_read(ArchiveReader *r, void *buf, size_t n);
/* Reads up to n bytes of the entry's stored data only, skipping holes: the
 * count, with the file offset they belong at in *ret_offset, or 0 at the end.
 * Use one of the two readers per entry, not both. */
ssize_t archive_reader_read_data(ArchiveReader *r, void *buf, size_t n, uint64_t *ret_offset);
/* Writes the entry's data into the empty regular file fd at its offsets and
 * sets its size: holes stay holes. buf (size bytes) is scratch space. */
int archive_reader_copy_to(ArchiveReader *r, int fd, void *buf, size_t size);

/* Extracts in_fd into the (existing, ideally empty) directory dest_fd. Files
 * get their mode & 0755 and are fsync'ed when sync is set, as are the
 * directories. */
int archive_extract(int in_fd, int dest_fd, const ArchiveLimits *limits, bool sync);

/* Checks and normalises an archive member path into out (ARCHIVE_PATH_MAX
 * bytes). Returns 0, or 1 if the path names the archive root itself ("." or
 * "./"), -EPERM for absolute paths or "..", -ENAMETOOLONG, -EINVAL for empty
 * names or control characters. */
int archive_path_normalize(const char *in, char out[static ARCHIVE_PATH_MAX]);

typedef struct ArchiveWriter ArchiveWriter;

int archive_writer_new(int out_fd, ArchiveWriter **ret);
ArchiveWriter *archive_writer_free(ArchiveWriter *w);
static inline void archive_writer_freep(ArchiveWriter **w) {
        archive_writer_free(*w);
}
int archive_writer_add_directory(ArchiveWriter *w, const char *path, mode_t mode, int64_t mtime);
/* Adds the regular file open at fd (its current size and mode) as path. */
int archive_writer_add_file(ArchiveWriter *w, const char *path, int fd);
/* Adds path with st's type, mode & 07777, owner and mtime: a directory, the
 * regular file open at fd (st->st_size bytes; sparse if it has holes), or a
 * symlink to link_target. Other types: -ENOTSUP. */
int archive_writer_add_entry(ArchiveWriter *w, const char *path, const struct stat *st, int fd,
                             const char *link_target);
/* Adds every directory and regular file below dir_fd, sorted by name, under
 * prefix (NULL or "" for the top level). */
int archive_writer_add_tree(ArchiveWriter *w, int dir_fd, const char *prefix);
/* One level of a tree as an archive takes it: fn for each entry of dir_fd in
 * name order (bytewise), with its member path (prefix/name, or name when
 * prefix is ""; -ENAMETOOLONG from ARCHIVE_PATH_MAX on) and its lstat.
 * Stops at fn's first error. Recursion, and its depth, are fn's. */
typedef int (*ArchiveWalkFn)(int dir_fd, const char *name, const char *path, const struct stat *st,
                             void *userdata);
int archive_walk_sorted(int dir_fd, const char *prefix, ArchiveWalkFn fn, void *userdata);
/* Writes the end-of-archive marker. The archive is incomplete without it. */
int archive_writer_finish(ArchiveWriter *w);
/* Bytes written so far. */
uint64_t archive_writer_bytes(const ArchiveWriter *w);
/* Calls fn (NULL: none) after each write. */
void archive_writer_set_progress(ArchiveWriter *w, ArchiveProgressFunc fn, void *userdata);

/* What an export archive or a checkpoint image's layer holds: one
 * checkpoint's directory, or a pod checkpoint's (path its own directory,
 * member_names and member_dirs its members'). */
typedef struct ArchiveSource {
        const char *path;
        const char *const *member_names; /* NULL: one checkpoint */
        const char *const *member_dirs;
        size_t n_members;
} ArchiveSource;
/* src as one archive to out_fd, telling fn (NULL: none) the bytes written as
 * it goes; the archive's size in *ret_bytes. What `kybernatectl export`
 * writes and a checkpoint image's layer holds.
 *
 * One checkpoint: its whole directory, in the layout Podman and CRI-O export
 * (CRIU's stats-dump also at the top level, where checkpointctl reads it).
 * A pod: the files of the pod's own directory (pod.json, kybernate.json) at
 * the top, and each member's checkpoint directory member_dirs[i], in the
 * layout above, under members/<member_names[i]>/ (a container name: no '/',
 * not starting with '.', else -EINVAL). */
#define ARCHIVE_POD_MEMBERS_DIR "members"
int archive_write_source(const ArchiveSource *src, int out_fd, ArchiveProgressFunc fn, void *userdata,
                         uint64_t *ret_bytes);
/* Limits the file data archive_writer_add_entry() stores (holes not counted)
 * to max bytes (0: no limit). The entry that goes over it and all later ones
 * are only counted, not written, and archive_writer_finish() fails with
 * -EFBIG; archive_writer_data_bytes() then says how much it would have been. */
void archive_writer_set_max_data(ArchiveWriter *w, uint64_t max);
uint64_t archive_writer_data_bytes(const ArchiveWriter *w);

/* Compressed tar streams, through gzip/zstd run as a child (spawn-child).
 * archive_compression() tells by the first bytes of fd (read with pread, the
 * offset untouched): "gzip", "zstd", or NULL for anything else (a plain tar).
 * archive_decompress() starts `TOOL -dc` reading fd from its start: *ret_fd
 * the pipe of its output, *ret_pid the child. archive_decompress_end() ends
 * it: takes fd (closes it) and reaps pid (0: none). A tar reader stops at
 * the end-of-archive blocks, before the decompressor has written the padding
 * after them: with complete (the archive was read whole), the rest is read
 * first, at most ARCHIVE_TRAILER_MAX bytes, so that the decompressor is not
 * killed by a closed pipe; then -EBADMSG if there was more, or if it did not
 * exit 0. Without complete it is killed. */
#define ARCHIVE_TRAILER_MAX (UINT64_C(1) << 20)
const char *archive_compression(int fd);
int archive_decompress(int fd, const char *tool, int *ret_fd, pid_t *ret_pid);
int archive_decompress_end(int fd, pid_t pid, bool complete);
