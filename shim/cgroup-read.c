/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded readers and parsers of cgroupfs files, and message helpers, for the
 * cgroup files. See cgroup-internal.h. */
#include <dirent.h>
#include <sys/stat.h>

#include "cgroup-internal.h"

/* ---- small parsing helpers ---------------------------------------------- */

bool is_blank(char c) {
        return c == ' ' || c == '\t' || c == '\r';
}

int parse_u64(const char *s, size_t n, uint64_t *ret) {
        bool neg = false;
        uint64_t v = 0;

        if (n > 0 && s[0] == '-') {
                neg = true;
                s++;
                n--;
        }
        if (n == 0 || n > 32)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EINVAL;
                unsigned d = (unsigned)(s[i] - '0');
                if (!neg) {
                        if (v > (UINT64_MAX - d) / 10)
                                return -ERANGE;
                        v = v * 10 + d;
                }
        }
        *ret = neg ? 0 : v;
        return 0;
}

bool token_eq(const char *s, size_t n, const char *lit) {
        return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

bool next_line(const char **p, const char *end, const char **ret_line, size_t *ret_len) {
        if (*p >= end)
                return false;
        const char *nl = memchr(*p, '\n', (size_t)(end - *p));
        const char *stop = nl ? nl : end;
        *ret_line = *p;
        *ret_len = (size_t)(stop - *p);
        *p = nl ? nl + 1 : end;
        return true;
}

size_t split_fields(const char *line, size_t len, const char *seps, Field f[static CGROUP_FIELDS_MAX]) {
        size_t k = 0, i = 0;

        for (;;) {
                while (i < len && (is_blank(line[i]) || (seps && line[i] && strchr(seps, line[i]))))
                        i++;
                if (i >= len)
                        return k;
                size_t start = i;
                while (i < len && !is_blank(line[i]) && !(seps && line[i] && strchr(seps, line[i])))
                        i++;
                if (k == CGROUP_FIELDS_MAX)
                        return CGROUP_FIELDS_MAX + 1;
                f[k++] = (Field){line + start, i - start};
        }
}

int path_join(char *buf, size_t size, const char *dir, const char *name) {
        int n = snprintf(buf, size, "%s/%s", dir, name);
        if (n < 0 || (size_t)n >= size)
                return -ENAMETOOLONG;
        return 0;
}

int read_text(const char *dir, const char *name, size_t max, char **ret, size_t *ret_size) {
        char p[PATH_MAX];
        int r = path_join(p, sizeof(p), dir, name);
        if (r < 0)
                return r;
        return read_full_file(p, max, ret, ret_size);
}

/* A single-value file: a number, or "max" (v2: UINT64_MAX, v1: 0, as
 * containerd reports them). */
static int read_value(const char *dir, const char *name, bool max_is_infinite, uint64_t *ret) {
        _cleanup_free_ char *t = NULL;
        size_t n;
        int r = read_text(dir, name, CGROUP_VALUE_MAX, &t, &n);
        if (r < 0)
                return r;
        const char *s = t;
        while (n > 0 && (is_blank(s[n - 1]) || s[n - 1] == '\n'))
                n--;
        while (n > 0 && is_blank(*s)) {
                s++;
                n--;
        }
        if (token_eq(s, n, "max")) {
                *ret = max_is_infinite ? UINT64_MAX : 0;
                return 0;
        }
        return parse_u64(s, n, ret);
}

bool fill_value(const char *dir, const char *name, bool max_is_infinite, uint64_t *field) {
        uint64_t v;
        if (!dir || read_value(dir, name, max_is_infinite, &v) < 0)
                return false;
        *field = v;
        return true;
}

size_t kv_apply(const char *text, size_t size, const KeyField *table, size_t n_table, void *msg) {
        const char *p = text, *end = text + size, *line;
        size_t len, applied = 0;

        while (next_line(&p, end, &line, &len)) {
                Field f[CGROUP_FIELDS_MAX];
                uint64_t v;
                if (split_fields(line, len, NULL, f) != 2 || parse_u64(f[1].s, f[1].n, &v) < 0)
                        continue;
                for (size_t i = 0; i < n_table; i++)
                        if (token_eq(f[0].s, f[0].n, table[i].key)) {
                                *(uint64_t *)((char *)msg + table[i].offset) = v;
                                applied++;
                                break;
                        }
        }
        return applied;
}

/* Reads a key-value file into msg; -errno if it cannot be read. */
int kv_file(const char *dir, const char *name, const KeyField *table, size_t n_table, void *msg,
            size_t *ret_applied) {
        _cleanup_free_ char *t = NULL;
        size_t n;
        if (!dir)
                return -ENOENT;
        int r = read_text(dir, name, CGROUP_TEXT_MAX, &t, &n);
        if (r < 0)
                return r;
        size_t a = kv_apply(t, n, table, n_table, msg);
        if (ret_applied)
                *ret_applied = a;
        return 0;
}

int kv_lookup(const char *dir, const char *name, const char *key, uint64_t *ret) {
        struct {
                uint64_t v;
        } box = {0};
        const KeyField t[] = {{key, 0}};
        size_t applied = 0;
        int r = kv_file(dir, name, t, 1, &box, &applied);
        if (r < 0)
                return r;
        if (applied == 0)
                return -ENODATA;
        *ret = box.v;
        return 0;
}

bool dir_exists(const char *d) {
        struct stat st;
        return d && stat(d, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- shared message helpers ----------------------------------------------- */

int ptr_array_push(void ***arr, size_t *n, size_t max, void *item) {
        if (*n >= max)
                return -E2BIG;
        void **a = reallocarray(*arr, *n + 1, sizeof(void *));
        if (!a)
                return -ENOMEM;
        a[(*n)++] = item;
        *arr = a;
        return 0;
}

int hugetlb_sizes(const char *dir, const char *suffix, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        DIR *d = opendir(dir);
        if (!d)
                return negative_errno();
        struct dirent *de;
        int r = 0;
        while ((de = readdir(d))) {
                const char *s = startswith(de->d_name, "hugetlb.");
                if (!s)
                        continue;
                const char *dot = strchr(s, '.');
                if (!dot || dot == s || !streq(dot + 1, suffix) || (size_t)(dot - s) > 16)
                        continue;
                if (n >= CGROUP_HUGETLB_SIZES_MAX)
                        break;
                char **nl = reallocarray(l, n + 2, sizeof(char *));
                if (!nl) {
                        r = -ENOMEM;
                        break;
                }
                l = nl;
                l[n] = strndup(s, (size_t)(dot - s));
                l[n + 1] = NULL;
                if (!l[n]) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        closedir(d);
        if (r < 0)
                return r;
        /* Deterministic order. */
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && strcmp(l[j - 1], l[j]) > 0; j--) {
                        char *t = l[j];
                        l[j] = l[j - 1];
                        l[j - 1] = t;
                }
        *ret = TAKE_PTR(l);
        return (int)n;
}

int pack_any(const ProtobufCMessage *m, const char *type_url, Google__Protobuf__Any **ret) {
        Google__Protobuf__Any *any = NEW_MSG(Google__Protobuf__Any, google__protobuf__any__init);
        if (!any)
                return -ENOMEM;
        size_t n = protobuf_c_message_get_packed_size(m);
        any->type_url = strdup(type_url);
        any->value.data = malloc(n ? n : 1);
        if (!any->type_url || !any->value.data) {
                google__protobuf__any__free_unpacked(any, NULL);
                return -ENOMEM;
        }
        any->value.len = protobuf_c_message_pack(m, any->value.data);
        *ret = any;
        return 0;
}
