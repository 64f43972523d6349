/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the cgroup files (cgroup.c discovery, cgroup-v1.c and cgroup-v2.c
 * statistics, cgroup-oom.c) share: the Cgroup record and the bounded readers
 * and parsers of cgroupfs files (cgroup-read.c). Internal to them. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cgroup.h"

/* Multi-line files (memory.stat, blkio.*, io.stat, cpuacct.usage_percpu,
 * /proc/<pid>/cgroup, /proc/partitions) and single-value files. */
#define CGROUP_TEXT_MAX ((size_t)256 * 1024)
#define CGROUP_PROC_CGROUP_MAX ((size_t)64 * 1024)
#define CGROUP_VALUE_MAX 64U
/* Sanity bounds on repeated fields. */
#define CGROUP_PERCPU_MAX 8192U
#define CGROUP_BLKIO_ENTRIES_MAX 4096U
#define CGROUP_HUGETLB_SIZES_MAX 16U
#define CGROUP_FIELDS_MAX 8U

enum {
        CTRL_MEMORY,
        CTRL_CPU,
        CTRL_CPUACCT,
        CTRL_PIDS,
        CTRL_BLKIO,
        CTRL_HUGETLB,
        _CTRL_MAX,
};

struct Cgroup {
        CgroupVersion version;
        char *root;
        char *proc_root;
        char *path;            /* inside the hierarchy */
        char *unified;         /* v2: absolute directory */
        char *dirs[_CTRL_MAX]; /* v1: absolute directory per controller, NULL if unknown */
};

typedef struct Field {
        const char *s;
        size_t n;
} Field;

typedef struct KeyField {
        const char *key;
        size_t offset;
} KeyField;

/* NOLINTBEGIN(bugprone-macro-parentheses): type is a type name */
#define NEW_MSG(type, init_fn)                   \
        ({                                       \
                type *_m = malloc(sizeof(type)); \
                if (_m)                          \
                        init_fn(_m);             \
                _m;                              \
        })
/* NOLINTEND(bugprone-macro-parentheses) */

bool is_blank(char c);

/* Strict decimal: optional '-', then 1..32 digits and nothing else. Values
 * past UINT64_MAX are -ERANGE; negative values (the kernel prints -1 for some
 * unset limits) read as 0, as containerd does. */
int parse_u64(const char *s, size_t n, uint64_t *ret);

bool token_eq(const char *s, size_t n, const char *lit);

/* Iterates the lines of [*p, end); returns false at the end. The line
 * excludes the newline. */
bool next_line(const char **p, const char *end, const char **ret_line, size_t *ret_len);

/* Splits a line at blanks (and at extra separator characters in seps, if
 * any). Returns the number of fields, or CGROUP_FIELDS_MAX + 1 if there are
 * more than fit. */
size_t split_fields(const char *line, size_t len, const char *seps, Field f[static CGROUP_FIELDS_MAX]);

int path_join(char *buf, size_t size, const char *dir, const char *name);

int read_text(const char *dir, const char *name, size_t max, char **ret, size_t *ret_size);

/* Reads a value into *field if the file exists and parses; returns whether
 * it did. */
bool fill_value(const char *dir, const char *name, bool max_is_infinite, uint64_t *field);

/* Applies "key value" lines to the uint64 fields of msg named by table.
 * Lines that do not have exactly two fields or whose value does not parse are
 * skipped. Returns the number of lines applied. */
size_t kv_apply(const char *text, size_t size, const KeyField *table, size_t n_table, void *msg);

/* Reads a key-value file into msg; -errno if it cannot be read. */
int kv_file(const char *dir, const char *name, const KeyField *table, size_t n_table, void *msg,
            size_t *ret_applied);

/* One key of a key-value file. */
int kv_lookup(const char *dir, const char *name, const char *key, uint64_t *ret);

bool dir_exists(const char *d);

/* Appends to a repeated-message field (array of pointers) with a bound. */
int ptr_array_push(void ***arr, size_t *n, size_t max, void *item);

/* Hugetlb page sizes present in a directory: names "hugetlb.<size>.<suffix>".
 * Returns a sorted, NULL-terminated list. */
int hugetlb_sizes(const char *dir, const char *suffix, char ***ret);

int pack_any(const ProtobufCMessage *m, const char *type_url, Google__Protobuf__Any **ret);

/* The statistics of a v1 or v2 cgroup, packed (see cgroup_stats()). */
int cgroup_v1_stats(const Cgroup *cg, Google__Protobuf__Any **ret);
int cgroup_v2_stats(const Cgroup *cg, Google__Protobuf__Any **ret);
