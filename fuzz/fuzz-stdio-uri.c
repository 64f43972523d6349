/* SPDX-License-Identifier: Apache-2.0 */
/* Feeds the input, as a NUL-terminated string, to the parser of the stdio
 * paths/URIs containerd sends in Create and Exec, and checks the invariants
 * of what it accepts. */
#include <limits.h>

#include "shim/uri.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *s = malloc(size + 1);
        StdioURI u;

        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;

        if (stdio_uri_parse(s, &u) < 0) {
                if (u.kind != STDIO_NONE || u.path || u.args)
                        abort();
                return 0;
        }
        if (u.kind == STDIO_NONE) {
                if (u.path || u.args)
                        abort();
                return 0;
        }
        if (!u.path || u.path[0] != '/' || strlen(u.path) >= PATH_MAX)
                abort();
        if (u.kind == STDIO_BINARY) {
                if (!u.args || u.n_args % 2 != 0 || u.n_args > STDIO_URI_ARGS_MAX || u.args[u.n_args])
                        abort();
                for (size_t i = 0; i < u.n_args; i++)
                        if (!u.args[i] || (i % 2 == 0 && !u.args[i][0]))
                                abort();
        } else if (u.args)
                abort();
        stdio_uri_done(&u);
        return 0;
}
