/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What push and pull say on stderr while they work, one step at a time.
 *
 * On a terminal (stderr a tty, TERM set and not "dumb") the running step is
 * one status line redrawn in place (\r, erase line; at most every
 * PROGRESS_REDRAW_USEC): its name, the bytes done (of the total when known),
 * the rate and the time so far, cut to the terminal's width. Otherwise
 * nothing is shown while a step runs. Either way a step ends in exactly one
 * line with its totals, "NAME: 40.0 MiB in 1.3 s (30.1 MiB/s)", or
 * "NAME: failed after 1.3 s" before the error is printed. Quiet: nothing. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define PROGRESS_REDRAW_USEC (200 * USEC_PER_MSEC)

typedef enum ProgressMode {
        PROGRESS_QUIET,
        PROGRESS_LINES,
        PROGRESS_TERMINAL,
} ProgressMode;

typedef struct Progress {
        FILE *out;
        ProgressMode mode;
        unsigned width; /* the terminal's columns */
        char *label;    /* the running step's (printable); NULL: none runs */
        bool counting;  /* the step counts bytes */
        uint64_t done;  /* bytes so far, at most total when that is known */
        uint64_t total; /* 0: unknown */
        int64_t start_usec, drawn_usec;
} Progress;

/* PROGRESS_QUIET when quiet, PROGRESS_TERMINAL when fd is a terminal and
 * TERM names one that is not "dumb", else PROGRESS_LINES. */
ProgressMode progress_mode(int fd, bool quiet);
void progress_init(Progress *p, FILE *out, ProgressMode mode);
/* Frees the label of a step that never ended (a failure path); usable as
 * _cleanup_(progress_done). */
void progress_done(Progress *p);

/* Starts a step (ending one still running as failed). counting: the step
 * reports bytes with progress_set(), of total (0: unknown). */
void progress_begin(Progress *p, bool counting, uint64_t total, const char *fmt, ...) _printf_(4, 5);
void progress_set(Progress *p, uint64_t done);
/* Ends the step with its line: result (NULL: none, else e.g. a digest) and
 * its totals. */
void progress_end(Progress *p, const char *result);
/* Ends the step as failed (nothing if none runs). */
void progress_fail(Progress *p);
/* One line outside any step. */
void progress_line(Progress *p, const char *fmt, ...) _printf_(2, 3);

/* The formatting, on its own for the tests. */

/* "30.1 MiB/s" for bytes in usec (at least 1 ms counted). */
char *progress_format_rate(char *buf, size_t size, uint64_t bytes, int64_t usec);
/* The status line of a running step, at most width - 1 columns (the label
 * cut and ending in "..." if need be): "NAME  12.0 MiB of 40.0 MiB  30.1 MiB/s
 * 1.3 s", without "of ..." when the total is unknown and without bytes and
 * rate for a step that does not count them. */
char *progress_format_status(char *buf, size_t size, const char *label, bool counting, uint64_t done,
                             uint64_t total, int64_t usec, unsigned width);
/* The line a step ends with: "NAME: [RESULT, ]40.0 MiB in 1.3 s (30.1 MiB/s)"
 * for a step that counts bytes, "NAME: RESULT in 1.3 s" ("done" for no
 * result) for one that does not. */
char *progress_format_final(char *buf, size_t size, const char *label, const char *result, bool counting,
                            uint64_t done, int64_t usec);
