/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Parsing of the stdio strings containerd sends in Create and Exec
 * (PROTOCOL.md section 6). Each of stdin, stdout and stderr is one of:
 *
 *   ""                       nothing (the stream goes to /dev/null)
 *   /abs/path, fifo:///abs   a FIFO created by the client (or a regular file)
 *   file:///abs/path         a log file (created by the shim)
 *   binary:///abs/bin?k=v    a logging binary, query pairs become arguments
 *
 * The scheme is case-insensitive. The path of file:// and binary:// URIs and
 * the query of binary:// are percent-decoded ('+' is a space in the query, as
 * in Go's url.QueryUnescape). Only the first value of a repeated key is kept,
 * keys keep the order of their first appearance. Anything else (relative
 * paths, a host part, unknown schemes, bad escapes, NUL bytes, oversize
 * input) is -EINVAL. These strings come from outside the shim: every limit
 * below is enforced. */

#include <stddef.h>

#define STDIO_URI_MAX 8192
#define STDIO_URI_ARGS_MAX 64 /* key and value strings together */

typedef enum StdioKind {
        STDIO_NONE,
        STDIO_PATH, /* a plain path or fifo:// URI: a FIFO or a regular file */
        STDIO_FILE,
        STDIO_BINARY,
} StdioKind;

typedef struct StdioURI {
        StdioKind kind;
        char *path;  /* absolute, decoded; NULL for STDIO_NONE */
        char **args; /* STDIO_BINARY only: k1, v1, k2, v2, ..., NULL (never NULL itself for binary) */
        size_t n_args;
} StdioURI;

/* Parses s (NULL counts as ""). On success *ret owns its strings; release
 * them with stdio_uri_done(). On failure *ret is left empty. */
int stdio_uri_parse(const char *s, StdioURI *ret);
void stdio_uri_done(StdioURI *u);
const char *stdio_kind_to_string(StdioKind k);
