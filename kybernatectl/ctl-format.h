/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Parsing and formatting helpers of kybernatectl: durations, sizes, times,
 * exit codes, and a plain text table. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

/* Exit codes (documented in `kybernatectl --help`). */
enum {
        CTL_EXIT_OK = 0,
        CTL_EXIT_FAILED = 1,      /* the operation failed */
        CTL_EXIT_USAGE = 2,       /* bad command line or invalid argument */
        CTL_EXIT_UNREACHABLE = 3, /* kybernated not running or not reachable */
        CTL_EXIT_NOT_FOUND = 4,   /* no such checkpoint */
        CTL_EXIT_DENIED = 5,      /* permission denied */
        CTL_EXIT_CONFLICT = 6,    /* ambiguous reference, name taken, busy */
};

/* Maps a negative errno (from the daemon or locally) to an exit code. */
int ctl_exit_code(int r);

/* Parses "90", "90s", "15m", "12h", "7d", "2w" and sums like "1d12h" into
 * seconds. -EINVAL on anything else (empty, unknown unit, negative, a unit
 * without a number), -ERANGE on overflow. */
int parse_duration_sec(const char *s, uint64_t *ret);
/* Formats seconds briefly: "45s", "3m", "5h 2m", "2d 3h", "3w 1d". */
char *format_duration(char *buf, size_t size, uint64_t sec);
/* Microseconds: "850 us", "12.345 ms", "1.500 s". */
char *format_usec(char *buf, size_t size, uint64_t us);
/* "512 B", "1.5 KiB", "17.0 MiB", "1.0 GiB". */
char *format_bytes(char *buf, size_t size, uint64_t bytes);
/* Local time "YYYY-MM-DD HH:MM:SS" of nanoseconds since the epoch; "-" for 0. */
char *format_time_ns(char *buf, size_t size, int64_t ns);
/* Parses a non-negative decimal integer that fits in max. */
int parse_uint(const char *s, uint64_t max, uint64_t *ret);
/* A copy of s safe to print on a terminal: control characters (and DEL,
 * and C1 controls) become '?'; NULL becomes "". */
char *strdup_printable(const char *s);

typedef struct Table Table;

int table_new(size_t n_columns, const char *const *headers, Table **ret);
Table *table_free(Table *t);
static inline void table_freep(Table **t) {
        table_free(*t);
}
#define _cleanup_table_ _cleanup_(table_freep)
/* Right-aligns a column (numbers, sizes). */
void table_set_right(Table *t, size_t column);
/* Copies cells (n_columns of them; NULL prints as "-"), sanitised. */
int table_add_row(Table *t, const char *const *cells);
size_t table_rows(const Table *t);
/* Columns separated by two spaces, no trailing blanks. */
int table_print(const Table *t, FILE *f);
