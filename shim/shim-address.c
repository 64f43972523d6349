/* SPDX-License-Identifier: Apache-2.0 */
#include "shim-address.h"
#include "util.h"

int shim_path_clean(const char *path, char **ret) {
        size_t l = strlen(path);
        bool rooted = path[0] == '/';
        char *out = malloc(l + 2);
        size_t n = 0;

        if (!out)
                return -ENOMEM;
        if (rooted)
                out[n++] = '/';
        for (const char *p = path; *p;) {
                while (*p == '/')
                        p++;
                const char *e = strchrnul(p, '/');
                size_t sl = (size_t)(e - p);
                if (sl == 0 || (sl == 1 && p[0] == '.')) {
                        /* empty or "." element: drop */
                } else if (sl == 2 && p[0] == '.' && p[1] == '.') {
                        size_t base = rooted ? 1 : 0;
                        if (n > base) {
                                while (n > base && out[n - 1] != '/')
                                        n--;
                                if (n > base)
                                        n--; /* the slash before the dropped element */
                        } else if (!rooted) {
                                if (n > 0)
                                        out[n++] = '/';
                                out[n++] = '.', out[n++] = '.';
                        }
                } else {
                        if (n > (rooted ? 1u : 0u))
                                out[n++] = '/';
                        memcpy(out + n, p, sl);
                        n += sl;
                }
                p = e;
        }
        if (n == 0)
                out[n++] = '.';
        out[n] = 0;
        *ret = out;
        return 0;
}

int shim_socket_path(const char *address, const char *ns, const char *id, char **ret) {
        _cleanup_free_ char *joined = NULL, *clean = NULL;
        char hex[65];

        if (asprintf(&joined, "%s/%s/%s", address, ns, id) < 0)
                return -ENOMEM;
        int r = shim_path_clean(joined, &clean);
        if (r < 0)
                return r;
        sha256_hex(clean, strlen(clean), hex);
        return asprintf(ret, SHIM_SOCKET_DIR "/%s", hex) < 0 ? -ENOMEM : 0;
}
