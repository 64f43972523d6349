/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* runc's command line, written in one place for the shim and kybernated:
 *
 *   runc [global options] <command> [command options] <container id>
 *
 * Lists are built in an Argv, which grows as needed and borrows its strings:
 * they must outlive the list (in practice: until the child is spawned). */

#include <stdbool.h>
#include <stddef.h>

/* A NULL-terminated argument list. The first failure sticks (later adds do
 * nothing) and is returned by argv_take(), so a run of adds is checked once:
 * out of memory, or -EINVAL for a NULL string (which would end the list early
 * without a word). Zero-initialized is empty. */
typedef struct Argv {
        char **v;
        size_t n, cap;
        int error;
} Argv;

void argv_add(Argv *a, const char *s);
/* opt and value, or nothing when value is NULL. */
void argv_add_value(Argv *a, const char *opt, const char *value);
/* The flag opt when on, else nothing. */
void argv_add_flag(Argv *a, const char *opt, bool on);
/* Every string of the NULL-terminated l (which may be NULL). */
void argv_add_strv(Argv *a, char *const *l);
/* Hands the NULL-terminated list over (free() the array only, not the
 * strings), or returns the first failure; either way a is empty again. */
int argv_take(Argv *a, char ***ret);
void argv_done(Argv *a);

#define RUNC_BINARY "runc"

typedef struct RuncGlobalOptions {
        const char *binary;     /* argv[0], searched in PATH; NULL: "runc" */
        const char *root;       /* --root: the state directory */
        const char *log_path;   /* --log */
        const char *log_format; /* --log-format: "json" or "text" */
        const char *criu;       /* --criu: the CRIU binary */
        bool systemd_cgroup;    /* --systemd-cgroup */
} RuncGlobalOptions;

/* What runc hands on to CRIU: the same options for checkpoint and restore. */
typedef struct RuncCriuOptions {
        const char *image_path; /* --image-path (required) */
        const char *work_path;  /* --work-path: CRIU's logs and work files */
        bool tcp_established;   /* --tcp-established */
        bool ext_unix_sk;       /* --ext-unix-sk */
        bool shell_job;         /* --shell-job */
        bool file_locks;        /* --file-locks */
        char *const *empty_ns;  /* --empty-ns for each (NULL-terminated; NULL: none) */
} RuncCriuOptions;

typedef struct RuncCheckpointOptions {
        RuncCriuOptions criu;
        bool leave_running; /* --leave-running; without it the dump ends the container */
} RuncCheckpointOptions;

typedef struct RuncRestoreOptions {
        RuncCriuOptions criu;
        const char *bundle;         /* --bundle */
        const char *pid_file;       /* --pid-file */
        const char *console_socket; /* --console-socket */
        bool detach;                /* --detach */
        bool no_pivot;              /* --no-pivot */
        bool no_subreaper;          /* --no-subreaper */
} RuncRestoreOptions;

/* argv[0] and the global options. */
void runc_add_global(Argv *a, const RuncGlobalOptions *g);
/* "checkpoint", its options and the container id (always the last argument). */
void runc_add_checkpoint(Argv *a, const RuncCheckpointOptions *o, const char *id);
/* "restore", its options and the container id (always the last argument). */
void runc_add_restore(Argv *a, const RuncRestoreOptions *o, const char *id);

/* argv[0], the global options, then args (a command and its arguments):
 * the whole list for runc <args>. */
int runc_argv(const RuncGlobalOptions *g, char *const *args, char ***ret);
