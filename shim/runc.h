/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* runc as asynchronous child processes. Each command is forked with the
 * global options of its container (root, log file, criu, cgroup driver),
 * reaped by the shim's Reaper, and reported to a callback with its exit
 * status, captured stdout and, on failure, runc's own error message (the
 * last error in its JSON log, else its stderr). */

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "reaper.h"

#define RUNC_DEFAULT_ROOT "/run/containerd/runc"

typedef struct RuncConfig {
        char *binary;   /* "runc" unless Options.binary_name */
        char *root;     /* <Options.root or RUNC_DEFAULT_ROOT>/<namespace> */
        char *log_path; /* <bundle>/log.json */
        char *criu;     /* Options.criu_path, or NULL */
        bool systemd_cgroup;
} RuncConfig;

void runc_config_done(RuncConfig *c);
int runc_config_copy(RuncConfig *dst, const RuncConfig *src);

/* status: exit code or 128 + signal; error: NULL on success, else what went wrong. */
typedef void (*RuncDoneFn)(int status, const char *out, size_t out_len, const char *error, void *userdata);

typedef struct RuncSpawn {
        /* The child's stdin, stdout, stderr. -1 means: stdin from /dev/null (or
         * from input below), stdout and stderr captured. */
        int stdio[3];
        const char *input; /* written to stdin, at most RUNC_INPUT_MAX bytes */
        size_t input_len;
} RuncSpawn;

#define RUNC_INPUT_MAX ((size_t)60 * 1024)

int runc_run(sd_event *e, Reaper *reaper, const RuncConfig *cfg, char *const *args, const RuncSpawn *spawn,
             RuncDoneFn cb, void *userdata);

/* Blocking variant for the one-shot `delete` action (no loop running):
 * returns the exit status or a negative errno if it could not run. */
int runc_run_sync(const RuncConfig *cfg, char *const *args);

/* The message of the last error runc logged in the JSON log at path after
 * byte offset; NULL if none. */
char *runc_log_last_error(const char *path, long offset);
