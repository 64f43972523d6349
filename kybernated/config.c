/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <grp.h>

#include "config.h"
#include "image-ref.h"
#include "kyb-client.h"
#include "registry.h"
#include "resolve.h"
#include "util.h"

void config_registry_options(const Config *c, RegistryOptions *ret) {
        *ret = (RegistryOptions){
                .authfile = c->registry_authfile,
                .cert_dir = c->registry_cert_dir,
                .insecure = c->registry_insecure,
                .compression = REGISTRY_PUSH_COMPRESSION_DEFAULT,
        };
}

int config_init(Config *c) {
        *c = (Config){
                .keep_per_container = 3,
                .max_age_ns = (int64_t)(7 * 86400) * (int64_t)NSEC_PER_SEC,
                .durable = true,
                .read_gid = (gid_t)-1,
                .max_rootfs_diff_bytes = MAX_ROOTFS_DIFF_BYTES_DEFAULT,
                .max_connections = MAX_CONNECTIONS_DEFAULT,
                .max_connections_per_uid = MAX_CONNECTIONS_PER_UID_DEFAULT,
                .idle_timeout_ns = IDLE_TIMEOUT_NS_DEFAULT,
                .max_reply_queue = MAX_REPLY_QUEUE_DEFAULT,
                .max_reply_memory = MAX_REPLY_MEMORY_DEFAULT,
        };
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        c->max_verify_jobs = cpus > 0 ? (uint32_t)cpus : 1;
        if (free_and_strdup(&c->store, STORE_PATH_DEFAULT) < 0 ||
            free_and_strdup(&c->socket, KYB_SOCKET_DEFAULT) < 0 || free_and_strdup(&c->runc, "runc") < 0 ||
            free_and_strdup(&c->runc_root_base, RUNC_ROOT_BASE_DEFAULT) < 0)
                return -ENOMEM;
        return 0;
}

void config_done(Config *c) {
        free(c->store);
        free(c->socket);
        free(c->runc);
        free(c->criu);
        free(c->runc_root_base);
        free(c->read_group);
        strv_free(c->allowed_restore_dirs);
        pull_rules_free(c->pull_rules, c->n_pull_rules);
        free(c->registry_authfile);
        free(c->registry_cert_dir);
        free(c->push_to);
        *c = (Config){};
}

static int parse_bool(const char *v, bool *ret) {
        if (streq(v, "yes") || streq(v, "true") || streq(v, "1") || streq(v, "on"))
                *ret = true;
        else if (streq(v, "no") || streq(v, "false") || streq(v, "0") || streq(v, "off"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

/* A byte count: digits with an optional K, M, G or T (powers of 1024). */
static int parse_bytes(const char *v, uint64_t *ret) {
        char *end;
        if (isempty(v) || !isdigit((unsigned char)v[0]))
                return -EINVAL;
        errno = 0;
        unsigned long long n = strtoull(v, &end, 10);
        if (errno)
                return -EINVAL;
        unsigned shift = 0;
        if (*end) {
                const char *units = "KMGT", *u = strchr(units, toupper((unsigned char)*end));
                if (!u || end[1])
                        return -EINVAL;
                shift = 10 * (unsigned)(u - units + 1);
        }
        if (shift && n > (UINT64_MAX >> shift))
                return -ERANGE;
        *ret = (uint64_t)n << shift;
        return 0;
}

/* A positive count, at most max. */
static int parse_count(const char *v, uint32_t max, uint32_t *ret) {
        char *end;
        if (isempty(v) || !isdigit((unsigned char)v[0]))
                return -EINVAL;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        if (errno || *end || n == 0 || n > max)
                return -EINVAL;
        *ret = (uint32_t)n;
        return 0;
}

static int parse_dirs(const char *v, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        _cleanup_free_ char *copy = strdup(v);
        if (!copy)
                return -ENOMEM;
        char *save = NULL;
        for (char *t = strtok_r(copy, ":, \t", &save); t; t = strtok_r(NULL, ":, \t", &save)) {
                /* Only absolute, normalized directories. */
                RefKind kind;
                const char *reason;
                if (ref_parse(t, &kind, &reason) < 0 || kind != REF_PATH)
                        return -EINVAL;
                char **nl = realloc(l, (n + 2) * sizeof(char *));
                if (!nl)
                        return -ENOMEM;
                l = nl;
                l[n] = strdup(t);
                l[n + 1] = NULL;
                if (!l[n])
                        return -ENOMEM;
                n++;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

/* An optional absolute path: empty unsets it. */
static int set_path_or_none(char **p, const char *v) {
        if (isempty(v)) {
                free(*p);
                *p = NULL;
                return 0;
        }
        return v[0] == '/' ? free_and_strdup(p, v) : -EINVAL;
}

int config_set(Config *c, const char *key, const char *v) {
        int r;
        c->error = NULL;
        if (streq(key, "pull_allow")) {
                PullRule *rules = NULL;
                size_t n = 0;
                r = pull_rules_parse(v, &rules, &n, &c->error);
                if (r < 0)
                        return r;
                pull_rules_free(c->pull_rules, c->n_pull_rules);
                c->pull_rules = rules;
                c->n_pull_rules = n;
                return 0;
        }
        if (streq(key, "registry_authfile") || streq(key, "registry_cert_dir")) {
                r = set_path_or_none(
                        streq(key, "registry_authfile") ? &c->registry_authfile : &c->registry_cert_dir, v);
                if (r < 0)
                        c->error = "registry_authfile and registry_cert_dir take an absolute path";
                return r;
        }
        if (streq(key, "push_to")) {
                if (isempty(v)) {
                        free(c->push_to);
                        c->push_to = NULL;
                        return 0;
                }
                ImageRef ir;
                r = image_ref_parse(v, &ir, &c->error);
                bool plain = r >= 0 && !ir.tag && !ir.digest;
                image_ref_done(&ir);
                if (r < 0)
                        return r;
                if (!plain) {
                        c->error = "push_to is HOST[:PORT]/REPOSITORY, without a tag or digest (the tag is "
                                   "the checkpoint's id)";
                        return -EINVAL;
                }
                return free_and_strdup(&c->push_to, v);
        }
        if (streq(key, "registry_insecure"))
                return parse_bool(v, &c->registry_insecure);
        if (streq(key, "store"))
                return v[0] == '/' ? free_and_strdup(&c->store, v) : -EINVAL;
        if (streq(key, "socket"))
                return v[0] == '/' ? free_and_strdup(&c->socket, v) : -EINVAL;
        if (streq(key, "runc"))
                return isempty(v) ? -EINVAL : free_and_strdup(&c->runc, v);
        if (streq(key, "criu")) {
                if (isempty(v)) {
                        free(c->criu);
                        c->criu = NULL;
                        return 0;
                }
                return free_and_strdup(&c->criu, v);
        }
        if (streq(key, "runc_root_base"))
                return v[0] == '/' ? free_and_strdup(&c->runc_root_base, v) : -EINVAL;
        if (streq(key, "keep_per_container")) {
                char *end;
                errno = 0;
                unsigned long n = strtoul(v, &end, 10);
                if (errno || *end || isempty(v) || n > UINT32_MAX)
                        return -EINVAL;
                c->keep_per_container = (uint32_t)n;
                return 0;
        }
        if (streq(key, "max_age")) {
                int64_t ns;
                r = parse_duration_ns(v, &ns);
                if (r < 0)
                        return r;
                c->max_age_ns = ns;
                return 0;
        }
        if (streq(key, "durable"))
                return parse_bool(v, &c->durable);
        if (streq(key, "max_rootfs_diff_bytes"))
                return parse_bytes(v, &c->max_rootfs_diff_bytes);
        if (streq(key, "max_connections"))
                return parse_count(v, 65536, &c->max_connections);
        if (streq(key, "max_connections_per_uid"))
                return parse_count(v, 65536, &c->max_connections_per_uid);
        if (streq(key, "max_verify_jobs"))
                return parse_count(v, 1024, &c->max_verify_jobs);
        if (streq(key, "idle_timeout"))
                return parse_duration_ns(v, &c->idle_timeout_ns);
        if (streq(key, "max_reply_queue") || streq(key, "max_reply_memory")) {
                uint64_t n;
                r = parse_bytes(v, &n);
                if (r < 0)
                        return r;
                if (n < REPLY_QUEUE_MIN || n > SIZE_MAX / 2)
                        return -ERANGE;
                *(streq(key, "max_reply_queue") ? &c->max_reply_queue : &c->max_reply_memory) = n;
                return 0;
        }
        if (streq(key, "allowed_restore_dirs")) {
                char **l = NULL;
                r = parse_dirs(v, &l);
                if (r < 0)
                        return r;
                strv_free(c->allowed_restore_dirs);
                c->allowed_restore_dirs = l;
                return 0;
        }
        if (streq(key, "read_group")) {
                if (isempty(v)) {
                        free(c->read_group);
                        c->read_group = NULL;
                        c->read_gid = (gid_t)-1;
                        return 0;
                }
                struct group *g = getgrnam(v);
                if (!g) {
                        char *end;
                        errno = 0;
                        unsigned long n = strtoul(v, &end, 10);
                        if (errno || *end || n >= (gid_t)-1)
                                return -ESRCH;
                        c->read_gid = (gid_t)n;
                } else
                        c->read_gid = g->gr_gid;
                return free_and_strdup(&c->read_group, v);
        }
        return -ENOKEY;
}

int config_check(const Config *c, const char **ret_dir) {
        _cleanup_free_ char *store = NULL;
        *ret_dir = NULL;
        int r = path_resolve_existing(c->store, &store);
        if (r < 0)
                return r;
        STRV_FOREACH (d, c->allowed_restore_dirs) {
                _cleanup_free_ char *real = NULL;
                r = path_resolve_existing(*d, &real);
                if (r < 0)
                        return r;
                if (path_overlaps(*d, c->store) || path_overlaps(real, store) || path_overlaps(*d, store) ||
                    path_overlaps(real, c->store)) {
                        *ret_dir = *d;
                        return -EINVAL;
                }
        }
        return 0;
}

static char *strip(char *s) {
        while (isspace((unsigned char)*s))
                s++;
        size_t l = strlen(s);
        while (l > 0 && isspace((unsigned char)s[l - 1]))
                s[--l] = 0;
        return s;
}

int config_parse(Config *c, const char *text, unsigned *ret_line) {
        _cleanup_free_ char *copy = strdup(text);
        if (!copy)
                return -ENOMEM;
        unsigned line = 0;
        char *save = NULL;
        /* strtok_r skips empty lines, so count lines by hand. */
        char *p = copy;
        while (p) {
                char *nl = strchr(p, '\n');
                if (nl)
                        *nl = 0;
                line++;
                char *s = strip(p);
                p = nl ? nl + 1 : NULL;
                if (*s == 0 || *s == '#' || *s == ';')
                        continue;
                char *eq = strchr(s, '=');
                if (!eq) {
                        *ret_line = line;
                        return -EINVAL;
                }
                *eq = 0;
                int r = config_set(c, strip(s), strip(eq + 1));
                if (r < 0) {
                        *ret_line = line;
                        return r;
                }
        }
        (void)save;
        return 0;
}

int config_load(Config *c, const char *path, bool required, unsigned *ret_line) {
        _cleanup_free_ char *text = NULL;
        *ret_line = 0;
        int r = read_full_file(path, (size_t)64 * 1024, &text, NULL);
        if (r == -ENOENT && !required)
                return 0;
        if (r < 0)
                return r;
        return config_parse(c, text, ret_line);
}
