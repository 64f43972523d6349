/* SPDX-License-Identifier: Apache-2.0 */
/* Archive paths: the normalisation both the reader and the writer apply. */
#include <limits.h>

#include "archive-internal.h"

int archive_path_normalize(const char *in, char out[static ARCHIVE_PATH_MAX]) {
        size_t o = 0;
        const char *p = in;

        if (!in || !*in)
                return -EINVAL;
        if (*in == '/')
                return -EPERM;
        for (const char *c = in; *c; c++)
                if ((unsigned char)*c < 0x20 || *c == 0x7f)
                        return -EINVAL;

        while (*p) {
                while (*p == '/')
                        p++;
                if (!*p)
                        break;
                size_t len = strcspn(p, "/");
                if (len == 1 && p[0] == '.') {
                        p += len;
                        continue;
                }
                if (len == 2 && p[0] == '.' && p[1] == '.')
                        return -EPERM;
                if (len > ARCHIVE_NAME_MAX)
                        return -ENAMETOOLONG;
                if (o + (o > 0) + len + 1 > ARCHIVE_PATH_MAX)
                        return -ENAMETOOLONG;
                if (o > 0)
                        out[o++] = '/';
                memcpy(out + o, p, len);
                o += len;
                p += len;
        }
        out[o] = 0;
        return o == 0 ? 1 : 0;
}
