/* SPDX-License-Identifier: Apache-2.0 */
#include "image-ref.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

bool image_ref_is_registry(const char *ref) {
        const char *slash = ref ? strchr(ref, '/') : NULL;
        if (!slash || slash == ref)
                return false;
        size_t n = (size_t)(slash - ref);
        return memchr(ref, '.', n) || memchr(ref, ':', n) || (n == 9 && strncmp(ref, "localhost", 9) == 0);
}

static bool is_lower_hex(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool image_digest_valid(const char *s) {
        if (!s || strncmp(s, "sha256:", 7) != 0 || strlen(s) != IMAGE_DIGEST_LEN)
                return false;
        for (s += 7; *s; s++)
                if (!is_lower_hex(*s))
                        return false;
        return true;
}

/* A DNS label of the host: alphanumerics, '-' inside. */
static bool host_valid(const char *s, size_t n) {
        size_t label = 0;
        if (n == 0)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '.') {
                        if (label == 0 || s[i - 1] == '-')
                                return false;
                        label = 0;
                } else if (isalnum((unsigned char)c) || (c == '-' && label > 0))
                        label++;
                else
                        return false;
        }
        return label > 0 && s[n - 1] != '-';
}

/* HOST or HOST:PORT (port 1..65535, decimal). */
static bool registry_valid(const char *s, size_t n) {
        const char *colon = memchr(s, ':', n);
        if (!colon)
                return host_valid(s, n);
        size_t h = (size_t)(colon - s), p = n - h - 1;
        if (p == 0 || p > 5 || !host_valid(s, h))
                return false;
        unsigned port = 0;
        for (size_t i = h + 1; i < n; i++) {
                if (!isdigit((unsigned char)s[i]))
                        return false;
                port = port * 10 + (unsigned)(s[i] - '0');
        }
        return port >= 1 && port <= 65535 && s[h + 1] != '0';
}

static bool lower_alnum(char c) {
        return isdigit((unsigned char)c) || islower((unsigned char)c);
}

/* One path component: runs of [a-z0-9] joined by '.', '_', "__" or '-'s. */
static bool component_valid(const char *s, size_t n) {
        for (size_t i = 0;;) {
                size_t run = i;
                while (i < n && lower_alnum(s[i]))
                        i++;
                if (i == run)
                        return false; /* empty, or a separator first, last or doubled */
                if (i == n)
                        return true;
                if (s[i] == '.')
                        i++;
                else if (s[i] == '_')
                        i += i + 1 < n && s[i + 1] == '_' ? 2 : 1;
                else if (s[i] == '-')
                        while (i < n && s[i] == '-')
                                i++;
                else
                        return false;
        }
}

static bool repository_valid(const char *s, size_t n) {
        const char *end = s + n;
        if (n == 0)
                return false;
        while (s <= end) {
                const char *slash = memchr(s, '/', (size_t)(end - s));
                const char *stop = slash ? slash : end;
                if (!component_valid(s, (size_t)(stop - s)))
                        return false;
                if (!slash)
                        return true;
                s = slash + 1;
        }
        return false;
}

/* [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool tag_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > IMAGE_REF_TAG_MAX || s[0] == '.' || s[0] == '-')
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
                        return false;
        return true;
}

int image_ref_parse(const char *s, ImageRef *ret, const char **ret_reason) {
        *ret = (ImageRef){};
        if (!image_ref_is_registry(s)) {
                *ret_reason = "not an image reference: it must start with a registry host (with a '.' or a "
                              "port, or localhost), then '/'";
                return -EINVAL;
        }
        const char *at = strchr(s, '@');
        size_t name_end = at ? (size_t)(at - s) : strlen(s);
        if (at && !image_digest_valid(at + 1)) {
                *ret_reason = "the digest must be sha256: and 64 lowercase hex digits";
                return -EINVAL;
        }
        /* A ':' after the last '/' of the name starts the tag. */
        const char *last_slash = memrchr(s, '/', name_end);
        const char *colon = memchr(last_slash, ':', name_end - (size_t)(last_slash - s));
        size_t repo_end = colon ? (size_t)(colon - s) : name_end;
        if (repo_end > IMAGE_REF_NAME_MAX) {
                *ret_reason = "the image name is longer than 255 characters";
                return -EINVAL;
        }
        const char *slash = strchr(s, '/');
        size_t reg_n = (size_t)(slash - s);
        if (!registry_valid(s, reg_n)) {
                *ret_reason = "the registry must be a host name or address, with an optional port";
                return -EINVAL;
        }
        if (!repository_valid(slash + 1, repo_end - reg_n - 1)) {
                *ret_reason = "the repository must be lowercase path components of [a-z0-9] joined by '.', "
                              "'_' or '-'";
                return -EINVAL;
        }
        _cleanup_free_ char *tag = colon ? strndup(colon + 1, name_end - repo_end - 1) : NULL;
        if (colon && (!tag || !tag_valid(tag))) {
                *ret_reason = "the tag must be 1 to 128 characters of [A-Za-z0-9_.-], not starting with '.' "
                              "or '-'";
                return -EINVAL;
        }
        ImageRef r = {
                .registry = strndup(s, reg_n),
                .repository = strndup(slash + 1, repo_end - reg_n - 1),
                .tag = TAKE_PTR(tag),
                .digest = at ? strdup(at + 1) : NULL,
        };
        if (!r.registry || !r.repository || (at && !r.digest)) {
                image_ref_done(&r);
                *ret_reason = "out of memory";
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

void image_ref_done(ImageRef *r) {
        free(r->registry);
        free(r->repository);
        free(r->tag);
        free(r->digest);
        *r = (ImageRef){};
}

char *image_ref_pinned(const ImageRef *r, const char *digest) {
        char *s = NULL;
        return asprintf(&s, "%s/%s@%s", r->registry, r->repository, digest) < 0 ? NULL : s;
}
