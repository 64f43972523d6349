/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A bounded, validating reader of the few CRIU image files that describe a
 * checkpoint: pstree.img (the process tree), core-<pid>.img (each task's
 * command name), inventory.img and the stats-dump service file. Nothing in an
 * image is trusted: every file, entry and count has a limit, magic numbers are
 * checked, and the tree must be consistent (unique pids, parents before
 * children, one root).
 *
 * An image file is a little-endian u32 IMG_COMMON_MAGIC (IMG_SERVICE_MAGIC for
 * stats-*), a u32 per-type magic (inventory.img has only the per-type magic),
 * then entries, each a little-endian u32 length and that many bytes of
 * protobuf. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

/* From CRIU's criu/include/magic.h. */
#define CRIU_IMG_COMMON_MAGIC 0x54564319U
#define CRIU_IMG_SERVICE_MAGIC 0x55105940U
#define CRIU_INVENTORY_MAGIC 0x58313116U
#define CRIU_PSTREE_MAGIC 0x50273030U
#define CRIU_CORE_MAGIC 0x55053847U
#define CRIU_STATS_MAGIC 0x57093306U

/* Limits. A file larger than these is refused rather than read. */
#define CRIU_IMAGE_FILE_MAX ((size_t)64 * 1024 * 1024)
#define CRIU_IMAGE_ENTRY_MAX ((size_t)16 * 1024 * 1024)
#define CRIU_TREE_PROCS_MAX 65536U
#define CRIU_TREE_THREADS_MAX 65536U
/* The kernel's TASK_COMM_LEN is 16; a longer name in an image is cut. */
#define CRIU_COMM_MAX 16U

typedef enum CriuImageKind {
        CRIU_IMAGE_INVENTORY, /* only the type magic, no head magic */
        CRIU_IMAGE_COMMON,    /* IMG_COMMON_MAGIC + type magic */
        CRIU_IMAGE_SERVICE,   /* IMG_SERVICE_MAGIC + type magic (stats-*) */
} CriuImageKind;

/* Called once per entry with its protobuf payload; a negative return stops
 * the walk and is returned by criu_image_foreach(). */
typedef int (*CriuImageEntryFunc)(const uint8_t *data, size_t size, void *userdata);

/* Checks the header of buf and calls f for every entry, up to max_entries
 * (-E2BIG beyond). Returns the number of entries, -EBADMSG on a wrong magic or
 * truncated entry. */
int criu_image_foreach(const void *buf, size_t size, CriuImageKind kind, uint32_t magic, size_t max_entries,
                       CriuImageEntryFunc f, void *userdata);

typedef struct CriuProcess {
        uint32_t pid, ppid, pgid, sid;
        uint32_t *threads; /* thread ids, as CRIU lists them (the main thread included) */
        size_t n_threads;
        char *comm;    /* from core-<pid>.img; NULL when that file is absent; printable ASCII only */
        size_t parent; /* index of the parent in CriuTree.procs; (size_t)-1 for the root */
        size_t depth;  /* 0 for the root */
} CriuProcess;

typedef struct CriuTree {
        CriuProcess *procs; /* in image order: parents before children, root first */
        size_t n_procs;
} CriuTree;

CriuTree *criu_tree_free(CriuTree *t);
static inline void criu_tree_freep(CriuTree **t) {
        criu_tree_free(*t);
}
#define _cleanup_criu_tree_ _cleanup_(criu_tree_freep)

/* Parses the bytes of pstree.img and validates the tree (-EBADMSG if not a
 * tree). comm is left NULL. */
int criu_pstree_parse(const void *buf, size_t size, CriuTree **ret);
/* Parses the bytes of core-<pid>.img into the task's command name (sanitised:
 * non-printable bytes become '?'). -ENODATA if the image carries none. */
int criu_core_parse_comm(const void *buf, size_t size, char **ret);

typedef struct CriuDumpStats {
        uint32_t freezing_time_us, frozen_time_us, memdump_time_us, memwrite_time_us;
        uint64_t pages_scanned, pages_skipped_parent, pages_written, pages_lazy;
        bool has_irmap_resolve;
        uint32_t irmap_resolve_us;
} CriuDumpStats;

/* Parses the bytes of stats-dump. -ENODATA if it holds no dump statistics. */
int criu_stats_parse(const void *buf, size_t size, CriuDumpStats *ret);

typedef struct CriuInventory {
        uint32_t img_version;
        bool has_dump_uptime;
        uint64_t dump_uptime;
        bool has_lsmtype;
        uint32_t lsmtype;
        bool tcp_close;
} CriuInventory;

int criu_inventory_parse(const void *buf, size_t size, CriuInventory *ret);

/* Reads a whole image file below dir_fd (O_NOFOLLOW, regular files only, at
 * most max bytes; -EFBIG beyond). */
int criu_image_read_at(int dir_fd, const char *name, size_t max, char **ret, size_t *ret_size);

/* Loads the process tree of the CRIU image directory dir_fd: pstree.img plus
 * the comm of every process from its core-<pid>.img (a missing or unreadable
 * core image leaves comm NULL; a malformed pstree fails). */
int criu_tree_load_at(int dir_fd, CriuTree **ret);
int criu_tree_load(const char *dir, CriuTree **ret);
/* Reads the stats-dump file at path. */
int criu_stats_load(const char *path, CriuDumpStats *ret);
int criu_inventory_load_at(int dir_fd, CriuInventory *ret);

/* Writes the tree as indented lines "PID  COMMAND" (two spaces per level),
 * prefix before each line. */
int criu_tree_print(const CriuTree *t, FILE *f, const char *prefix);

/* For tests and tools that build images: appends a header or an entry to a
 * growing buffer. */
int criu_image_append_header(char **buf, size_t *size, CriuImageKind kind, uint32_t magic);
int criu_image_append_entry(char **buf, size_t *size, const void *data, size_t len);
