/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The plumbing every verb of kybernatectl shares: the verb and option tables,
 * option parsing, one request to kybernated and its errors, and a few output
 * helpers. Each verb lives in its own file (list.c, inspect.c, ...); main.c
 * holds the table of verbs and the global options. */

#include <cJSON.h>
#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

#include "archive.h"
#include "ctl-format.h"
#include "kyb-client.h"
#include "progress.h"

#define ERR(...) fprintf(stderr, "kybernatectl: " __VA_ARGS__)

/* The global options, and --json of a verb. */
typedef struct Ctl {
        const char *socket_path;
        bool json;
} Ctl;

/* One option of a verb, besides --help and --json that all have. key is what
 * the verb's option function gets; with has_short it is also the short option
 * (-key), which --help lists unless has_short is CTL_SHORT_UNLISTED. An option
 * with a metavar takes an argument, which --help calls so; help is the text of
 * its line there. An option with a place (CTL_AT) needs no function: its
 * argument (a char *) or true (a bool) is stored there, in the verb's
 * userdata. */
typedef struct CtlOption {
        const char *name;
        int key;
        int has_short;       /* false, true or CTL_SHORT_UNLISTED */
        const char *metavar; /* NULL: no argument */
        const char *help;
        size_t at; /* 0 or CTL_AT() */
} CtlOption;
#define CTL_SHORT_UNLISTED 2
#define CTL_AT(type, field) (offsetof(type, field) + 1)

#define CTL_OPTIONS_MAX 16

typedef struct CtlVerb CtlVerb;
struct CtlVerb {
        const char *name;
        int (*run)(Ctl *ctl, const CtlVerb *verb, int argc, char **argv);
        const char *args;
        const char *summary;
        /* --help: the text before the options (each line ends with a newline),
         * and the line of --json (NULL: not listed). The options are listed
         * from the table. */
        const char *intro;
        const char *json;
        /* How many arguments after the options: exactly n (0, 1, 2...), -1 for one or more,
         * or -2 for any (the verb checks);
         * and what a wrong count is told (with 0: "unexpected argument"). */
        int n_args;
        const char *args_error;
        const CtlOption *options; /* ends with an entry without a name */
        /* Takes one option of the table (arg is its argument or NULL). Returns
         * -1 to go on, or an exit code. */
        int (*option)(int key, char *arg, void *userdata);
};
/* The first fields of a verb, and its number of arguments with the error. */
#define CTL_VERB(name_, run_, args_, summary_) \
        .name = (name_), .run = (run_), .args = (args_), .summary = (summary_)
#define CTL_ARGS(n_, error_) .n_args = (n_), .args_error = (error_)

/* The verbs, one file each (pin.c holds pin and unpin). */
extern const CtlVerb ctl_verb_list, ctl_verb_inspect, ctl_verb_delete, ctl_verb_prune, ctl_verb_pin,
        ctl_verb_unpin, ctl_verb_export, ctl_verb_import, ctl_verb_checkpoint, ctl_verb_status,
        ctl_verb_resolve, ctl_verb_push, ctl_verb_pull;

/* import.c: an archive read from in (what names it in messages) unpacked
 * into a staging directory kybernated provides, then adopted as a checkpoint
 * (name and pin as given); prints its id (or JSON). Returns an exit code.
 * progress (NULL: none) shows the unpacking as a step, "Unpacking WHAT into
 * the catalog", ended before the result is printed. */
int ctl_import_fd(Ctl *ctl, int in, const char *what, const char *name, bool pin, Progress *progress);
/* export.c: a checkpoint to write out (export, push): kybernated verified
 * it and named its directory (and a pod's, its members' by container). */
typedef struct CtlExport {
        Kybernate__V1__Response *resp;
        const Kybernate__V1__CheckpointInfo *info; /* in resp, with an absolute path */
        const Kybernate__V1__ExportResponse *exp;  /* in resp: a pod's members */
        ArchiveSource src;
} CtlExport;
/* Asks kybernated for checkpoint ref (an export request). Returns an exit
 * code; ctl_export_done() frees *ret in any case. */
int ctl_export_info(const Ctl *ctl, const char *verb, const char *ref, CtlExport *ret);
void ctl_export_done(CtlExport *e);
/* Refuses (CTL_EXIT_CONFLICT, with a message) a name a checkpoint has. */
int ctl_import_check_name(const Ctl *ctl, const char *name);

/* Prints "kybernatectl: [VERB: ]message" and the hint to --help; returns
 * CTL_EXIT_USAGE. */
int ctl_usage_error(const char *verb, const char *fmt, ...) _printf_(2, 3);

/* The verb's --help text. */
void ctl_verb_help(const CtlVerb *v);

/* Parses the options of a verb: --help, --json and those of its table, and
 * checks the number of arguments. argv[0] is the verb; afterwards optind is
 * the first argument. Returns -1 to go on, or an exit code (0 after --help). */
int ctl_parse_options(Ctl *ctl, const CtlVerb *v, int argc, char **argv, void *userdata);

const char *ctl_socket(const Ctl *ctl);
/* Connects to kybernated; prints the failure. Returns an exit code. */
int ctl_connect(const Ctl *ctl, KybClient **ret);

/* One request on a new connection: op and payload, one of the request's
 * oneof. Prints the failure and returns an exit code; on success *ret holds
 * the final response. With expect other than RESULT__NOT_SET, an answer of
 * another kind is a failure ("unexpected answer"). */
int ctl_call_full(const Ctl *ctl, const char *verb, Kybernate__V1__Request__OpCase op, void *payload,
                  Kybernate__V1__Response__ResultCase expect, KybMessageFn on_message, void *userdata,
                  Kybernate__V1__Response **ret);
static inline int ctl_call(const Ctl *ctl, const char *verb, Kybernate__V1__Request__OpCase op,
                           void *payload, Kybernate__V1__Response__ResultCase expect,
                           Kybernate__V1__Response **ret) {
        return ctl_call_full(ctl, verb, op, payload, expect, NULL, NULL, ret);
}
/* The checkpoint a response of kind result describes (delete, pin,
 * checkpoint, export, import), or NULL: another kind, or none sent. */
const Kybernate__V1__CheckpointInfo *ctl_response_info(const Kybernate__V1__Response *resp,
                                                       Kybernate__V1__Response__ResultCase result);
/* ctl_call() of a request whose answer describes one checkpoint: *ret_info
 * is that checkpoint (in *ret), or NULL when the answer is of another kind
 * than result or names none. */
int ctl_call_info(const Ctl *ctl, const char *verb, Kybernate__V1__Request__OpCase op, void *payload,
                  Kybernate__V1__Response__ResultCase result, Kybernate__V1__Response **ret,
                  const Kybernate__V1__CheckpointInfo **ret_info);
/* The end of a verb that changed one checkpoint: with --json its object,
 * else prefix and its id (fallback when kybernated named none). Returns
 * an exit code. */
int ctl_print_checkpoint_done(const Ctl *ctl, const Kybernate__V1__CheckpointInfo *info, const char *prefix,
                              const char *fallback);
/* Prints "VERB: unexpected answer from kybernated"; returns CTL_EXIT_FAILED. */
int ctl_unexpected(const char *verb);

/* Prints j (formatted) and frees it; returns an exit code. */
int ctl_print_json(cJSON *j);
int ctl_print_checkpoint_json(const Kybernate__V1__CheckpointInfo *info);
/* Prints prefix, s made safe for a terminal, and a newline. */
void ctl_print_line(const char *prefix, const char *s);
/* "Key:   value" lines of inspect, status and resolve; the value made safe. */
void ctl_kv(const char *key, const char *fmt, ...) _printf_(2, 3);

const char *or_dash(const char *s);
/* The first 12 characters of an id, as the tables show it. */
char *short_id(char *buf, size_t size, const char *id);
