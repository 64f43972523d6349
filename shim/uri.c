/* SPDX-License-Identifier: Apache-2.0 */
#include <limits.h>
#include <strings.h>

#include "uri.h"
#include "util.h"

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Decodes n bytes of s. A decoded NUL is refused: it would silently truncate
 * a path or an argument. */
static int unescape(const char *s, size_t n, bool plus_is_space, char **ret) {
        _cleanup_free_ char *out = malloc(n + 1);
        size_t k = 0;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '%') {
                        if (i + 2 >= n)
                                return -EINVAL;
                        int h = unhex(s[i + 1]), l = unhex(s[i + 2]);
                        if (h < 0 || l < 0)
                                return -EINVAL;
                        c = (char)(h << 4 | l);
                        if (c == 0)
                                return -EINVAL;
                        i += 2;
                } else if (c == '+' && plus_is_space)
                        c = ' ';
                out[k++] = c;
        }
        out[k] = 0;
        *ret = TAKE_PTR(out);
        return 0;
}

static int validate_path(const char *p) {
        size_t l = strlen(p);
        if (l == 0 || p[0] != '/' || l >= PATH_MAX)
                return -EINVAL;
        return 0;
}

void stdio_uri_done(StdioURI *u) {
        if (!u)
                return;
        free(u->path);
        strv_free(u->args);
        *u = (StdioURI){};
}

const char *stdio_kind_to_string(StdioKind k) {
        switch (k) {
        case STDIO_NONE:
                return "none";
        case STDIO_PATH:
                return "fifo";
        case STDIO_FILE:
                return "file";
        case STDIO_BINARY:
                return "binary";
        }
        return "?";
}

static int parse_query(const char *q, StdioURI *u) {
        size_t n_alloc = STDIO_URI_ARGS_MAX + 1;

        u->args = calloc(n_alloc, sizeof(char *));
        if (!u->args)
                return -ENOMEM;
        u->n_args = 0;

        while (q && *q) {
                const char *amp = strchr(q, '&');
                size_t len = amp ? (size_t)(amp - q) : strlen(q);
                const char *eq = memchr(q, '=', len);
                _cleanup_free_ char *k = NULL, *v = NULL;
                int r;

                if (len > 0) {
                        size_t klen = eq ? (size_t)(eq - q) : len;
                        r = unescape(q, klen, true, &k);
                        if (r < 0)
                                return r;
                        r = unescape(eq ? eq + 1 : q + len, eq ? len - klen - 1 : 0, true, &v);
                        if (r < 0)
                                return r;
                        if (isempty(k))
                                return -EINVAL;

                        bool dup = false;
                        for (size_t i = 0; i < u->n_args; i += 2)
                                if (streq(u->args[i], k))
                                        dup = true;
                        if (!dup) {
                                if (u->n_args + 2 > STDIO_URI_ARGS_MAX)
                                        return -EINVAL;
                                u->args[u->n_args++] = TAKE_PTR(k);
                                u->args[u->n_args++] = TAKE_PTR(v);
                        }
                }
                q = amp ? amp + 1 : NULL;
        }
        return 0;
}

int stdio_uri_parse(const char *s, StdioURI *ret) {
        _cleanup_(stdio_uri_done) StdioURI u = {};
        const char *rest;
        int r;

        *ret = (StdioURI){};
        if (isempty(s))
                return 0;
        if (strlen(s) >= STDIO_URI_MAX)
                return -EINVAL;

        if (s[0] == '/') {
                /* A plain path is used verbatim, as containerd's runc shim does. */
                r = validate_path(s);
                if (r < 0)
                        return r;
                u.path = strdup(s);
                if (!u.path)
                        return -ENOMEM;
                u.kind = STDIO_PATH;
                *ret = u;
                u = (StdioURI){};
                return 0;
        }

        const char *colon = strstr(s, "://");
        if (!colon)
                return -EINVAL;
        size_t slen = (size_t)(colon - s);
        rest = colon + 3;
        if (slen == 4 && strncasecmp(s, "fifo", 4) == 0)
                u.kind = STDIO_PATH;
        else if (slen == 4 && strncasecmp(s, "file", 4) == 0)
                u.kind = STDIO_FILE;
        else if (slen == 6 && strncasecmp(s, "binary", 6) == 0)
                u.kind = STDIO_BINARY;
        else
                return -EINVAL;

        /* No host part: the path starts right after "scheme://". */
        if (rest[0] != '/')
                return -EINVAL;
        if (strchr(rest, '#'))
                return -EINVAL;
        const char *qm = strchr(rest, '?');
        if (qm && u.kind != STDIO_BINARY)
                return -EINVAL;

        size_t plen = qm ? (size_t)(qm - rest) : strlen(rest);
        r = unescape(rest, plen, false, &u.path);
        if (r < 0)
                return r;
        r = validate_path(u.path);
        if (r < 0)
                return r;

        if (u.kind == STDIO_BINARY) {
                r = parse_query(qm ? qm + 1 : NULL, &u);
                if (r < 0)
                        return r;
        }

        *ret = u;
        u = (StdioURI){};
        return 0;
}
