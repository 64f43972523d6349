/* SPDX-License-Identifier: Apache-2.0 */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "image-ref.h"
#include "resolve.h"
#include "util.h"

static bool is_hex(const char *s) {
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

bool ident_valid(const char *s, size_t max) {
        if (isempty(s) || strlen(s) > max || s[0] == '.' || s[0] == '-')
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char)*s) && !strchr("._-", *s))
                        return false;
        return true;
}

static bool has_dotdot_component(const char *s) {
        for (const char *p = s; (p = strstr(p, "..")); p += 2) {
                bool start = p == s || p[-1] == '/';
                bool end = p[2] == 0 || p[2] == '/';
                if (start && end)
                        return true;
        }
        return false;
}

int ref_parse(const char *ref, RefKind *ret_kind, const char **ret_reason) {
        const char *reason = NULL;

        if (isempty(ref))
                reason = "empty reference";
        else if (strlen(ref) > REF_MAX)
                reason = "reference too long";
        else {
                for (const char *p = ref; *p; p++)
                        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
                                reason = "reference contains control characters";
                                break;
                        }
        }
        if (!reason && has_dotdot_component(ref))
                reason = "reference contains a '..' component";
        if (reason) {
                *ret_reason = reason;
                return -EINVAL;
        }

        if (ref[0] == '/') {
                if (strstr(ref, "//") || strstr(ref, "/./") || endswith(ref, "/.")) {
                        *ret_reason = "path is not normalized";
                        return -EINVAL;
                }
                *ret_kind = REF_PATH;
                return 0;
        }
        if (image_ref_is_registry(ref)) {
                ImageRef img;
                int r = image_ref_parse(ref, &img, ret_reason);
                if (r < 0)
                        return r;
                image_ref_done(&img);
                *ret_kind = REF_IMAGE;
                return 0;
        }
        if (strchr(ref, '/')) {
                _cleanup_free_ char *ns = NULL, *pod = NULL, *ctr = NULL;
                if (ref_split_k8s(ref, &ns, &pod, &ctr) >= 0)
                        *ret_kind = REF_K8S;
                else if (ref_split_pod(ref, &ns, &pod) >= 0)
                        *ret_kind = REF_POD;
                else {
                        *ret_reason = "reference with '/' must be namespace/pod or namespace/pod/container";
                        return -EINVAL;
                }
                return 0;
        }
        if (!ident_valid(ref, NAME_MAX_LEN) && !(strlen(ref) == ID_LEN && is_hex(ref))) {
                *ret_reason = "reference has characters outside [A-Za-z0-9._-]";
                return -EINVAL;
        }
        if (is_hex(ref) && strlen(ref) == ID_LEN)
                *ret_kind = REF_ID;
        else if (is_hex(ref) && strlen(ref) >= ID_PREFIX_MIN && strlen(ref) < ID_LEN)
                *ret_kind = REF_PREFIX;
        else
                *ret_kind = REF_NAME;
        return 0;
}

int ref_split_k8s(const char *ref, char **ret_ns, char **ret_pod, char **ret_container) {
        const char *a = strchr(ref, '/');
        if (!a)
                return -EINVAL;
        const char *b = strchr(a + 1, '/');
        if (!b || strchr(b + 1, '/'))
                return -EINVAL;
        _cleanup_free_ char *ns = strndup(ref, (size_t)(a - ref));
        _cleanup_free_ char *pod = strndup(a + 1, (size_t)(b - a - 1));
        _cleanup_free_ char *ctr = strdup(b + 1);
        if (!ns || !pod || !ctr)
                return -ENOMEM;
        if (!ident_valid(ns, IDENT_MAX_LEN) || !ident_valid(pod, IDENT_MAX_LEN) ||
            !ident_valid(ctr, IDENT_MAX_LEN))
                return -EINVAL;
        *ret_ns = TAKE_PTR(ns);
        *ret_pod = TAKE_PTR(pod);
        *ret_container = TAKE_PTR(ctr);
        return 0;
}

int ref_split_pod(const char *ref, char **ret_ns, char **ret_pod) {
        const char *a = strchr(ref, '/');
        if (!a || strchr(a + 1, '/'))
                return -EINVAL;
        _cleanup_free_ char *ns = strndup(ref, (size_t)(a - ref));
        _cleanup_free_ char *pod = strdup(a + 1);
        if (!ns || !pod)
                return -ENOMEM;
        if (!ident_valid(ns, IDENT_MAX_LEN) || !ident_valid(pod, IDENT_MAX_LEN))
                return -EINVAL;
        *ret_ns = TAKE_PTR(ns);
        *ret_pod = TAKE_PTR(pod);
        return 0;
}

bool path_allowed(const char *path, char *const *dirs) {
        RefKind kind;
        const char *reason;

        if (ref_parse(path, &kind, &reason) < 0 || kind != REF_PATH)
                return false;
        STRV_FOREACH (d, (char **)dirs) {
                size_t l = strlen(*d);
                while (l > 1 && (*d)[l - 1] == '/')
                        l--;
                if (l == 0 || (*d)[0] != '/')
                        continue;
                if (l == 1) /* "/" allows everything absolute */
                        return path[1] != 0;
                if (strncmp(path, *d, l) == 0 && path[l] == '/' && path[l + 1] != 0)
                        return true;
        }
        return false;
}

bool image_ref_valid(const char *s) {
        if (isempty(s) || strlen(s) > IMAGE_REF_MAX)
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
                        return false;
        return true;
}

/* Length of a normalized absolute path without trailing slashes ("/" is 0). */
static size_t path_len(const char *p) {
        size_t l = strlen(p);
        while (l > 0 && p[l - 1] == '/')
                l--;
        return l;
}

/* Is a (length la) equal to or below b (length lb)? */
static bool path_below_or_at(const char *a, size_t la, const char *b, size_t lb) {
        return la >= lb && strncmp(a, b, lb) == 0 && (la == lb || a[lb] == '/');
}

bool path_overlaps(const char *a, const char *b) {
        size_t la = path_len(a), lb = path_len(b);
        return path_below_or_at(a, la, b, lb) || path_below_or_at(b, lb, a, la);
}

int path_resolve_existing(const char *path, char **ret) {
        if (isempty(path) || path[0] != '/' || has_dotdot_component(path))
                return -EINVAL;
        _cleanup_free_ char *head = strdup(path);
        if (!head)
                return -ENOMEM;
        /* Cut components off the end until what is left exists. */
        size_t cut = strlen(head);
        for (;;) {
                char real[PATH_MAX];
                if (realpath(cut == 0 ? "/" : head, real)) {
                        const char *rest = path + cut;
                        while (*rest == '/')
                                rest++;
                        char *s = NULL;
                        bool root = streq(real, "/");
                        if (asprintf(&s, "%s%s%s", root && *rest ? "" : real, *rest ? "/" : "", rest) < 0)
                                return -ENOMEM;
                        *ret = s;
                        return 0;
                }
                if (errno != ENOENT && errno != ENOTDIR)
                        return negative_errno();
                char *slash = strrchr(head, '/');
                if (!slash || cut == 0)
                        return -ENOENT;
                *slash = 0;
                cut = (size_t)(slash - head);
        }
}

bool path_in_store(const char *real, const char *store) {
        _cleanup_free_ char *store_real = NULL;
        if (path_overlaps(real, store))
                return true;
        if (path_resolve_existing(store, &store_real) < 0 || path_overlaps(real, store_real))
                return true; /* a store we cannot place is never a host path's neighbour */

        /* By identity: real or one of its ancestors is the store, its
         * checkpoints/ or its staging/ (reached through a bind mount). */
        struct stat marks[3];
        size_t n = 0;
        static const char *const subs[] = {"", "/checkpoints", "/staging"};
        for (size_t i = 0; i < ELEMENTSOF(subs); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s%s", store_real, subs[i]) < 0)
                        return true;
                if (stat(p, &marks[n]) >= 0)
                        n++;
        }
        _cleanup_free_ char *walk = strdup(real);
        if (!walk)
                return true;
        for (;;) {
                struct stat st;
                if (stat(isempty(walk) ? "/" : walk, &st) >= 0)
                        for (size_t i = 0; i < n; i++)
                                if (st.st_dev == marks[i].st_dev && st.st_ino == marks[i].st_ino)
                                        return true;
                char *slash = strrchr(walk, '/');
                if (!slash || isempty(walk))
                        return false;
                *slash = 0;
        }
}

int host_path_check(const char *path, char *const *dirs, const char *store, char **ret_image_path,
                    const char **ret_reason) {
        if (!path_allowed(path, dirs)) {
                *ret_reason = "host paths must be below a directory listed in allowed_restore_dirs";
                return -EACCES;
        }
        /* Refuse symlinks on the way: the allowed prefix must be what is used. */
        char real[PATH_MAX];
        if (!realpath(path, real)) {
                int r = -errno;
                *ret_reason = r == -ENOENT ? "no such directory" : "it cannot be resolved";
                return r;
        }
        if (!streq(real, path) || !path_allowed(real, dirs)) {
                *ret_reason = "it resolves elsewhere (a symlink on the way)";
                return -EACCES;
        }
        if (path_in_store(real, store)) {
                *ret_reason = "it is in the checkpoint store: name a stored checkpoint by id or name";
                return -EACCES;
        }
        struct stat st;
        if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
                *ret_reason = "not a directory";
                return -ENOTDIR;
        }
        _cleanup_free_ char *sub = NULL;
        if (asprintf(&sub, "%s/checkpoint", real) < 0)
                return -ENOMEM;
        if (lstat(sub, &st) >= 0 && S_ISLNK(st.st_mode)) {
                *ret_reason = "its checkpoint/ is a symlink";
                return -EACCES;
        }
        bool has_sub = lstat(sub, &st) >= 0 && S_ISDIR(st.st_mode);
        char *image = has_sub ? TAKE_PTR(sub) : strdup(real);
        if (!image)
                return -ENOMEM;
        *ret_image_path = image;
        return 0;
}

int tenant_check(const CatalogEntry *e, const RestoreIdentity *t, const char **ret_reason) {
        if (e->allow_cross_namespace)
                return 0;
        if (!isempty(e->k8s_namespace) || !isempty(t->k8s_namespace)) {
                if (!streq_ptr(e->k8s_namespace ? e->k8s_namespace : "",
                               t->k8s_namespace ? t->k8s_namespace : "")) {
                        *ret_reason =
                                "tenant rule: the restoring container's Kubernetes namespace differs from "
                                "the checkpoint's";
                        return -EACCES;
                }
        }
        if (!streq_ptr(e->containerd_namespace ? e->containerd_namespace : "",
                       t->containerd_namespace ? t->containerd_namespace : "")) {
                *ret_reason = "tenant rule: the restoring container's containerd namespace differs from the "
                              "checkpoint's";
                return -EACCES;
        }
        return 0;
}

int image_tenant_check(const OciImage *img, const RestoreIdentity *t, const char **ret_reason) {
        const struct {
                const char *key, *target, *reason;
        } rules[] = {
                {KYB_CHECKPOINT_K8S_NAMESPACE, t->k8s_namespace,
                 "tenant rule: the image's Kubernetes namespace annotation differs from the restoring container's"},
                {CRIU_CHECKPOINT_POD_NAMESPACE, t->k8s_namespace,
                 "tenant rule: the image's pod namespace annotation differs from the restoring container's"},
                {KYB_CHECKPOINT_CONTAINERD_NAMESPACE, t->containerd_namespace,
                 "tenant rule: the image's containerd namespace annotation differs from the restoring "
                 "container's"},
        };
        for (size_t i = 0; i < ELEMENTSOF(rules); i++) {
                const char *v = oci_annotation_get(img, rules[i].key);
                if (!isempty(v) && !streq_ptr(v, rules[i].target)) {
                        *ret_reason = rules[i].reason;
                        return -EACCES;
                }
        }
        return 0;
}

void pull_rules_free(PullRule *rules, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(rules[i].prefix);
                strv_free(rules[i].namespaces);
        }
        free(rules);
}

/* HOST[:PORT] alone, or HOST[:PORT]/REPO without tag or digest. */
static bool pull_prefix_valid(const char *prefix) {
        if (strlen(prefix) > IMAGE_REF_NAME_MAX || endswith(prefix, "/"))
                return false;
        _cleanup_free_ char *probe = strchr(prefix, '/') ? strdup(prefix) : strdup_printf("%s/x", prefix);
        if (!probe || !image_ref_is_registry(probe))
                return false;
        ImageRef ir;
        const char *why;
        if (image_ref_parse(probe, &ir, &why) < 0)
                return false;
        bool ok = !ir.tag && !ir.digest;
        image_ref_done(&ir);
        return ok;
}

static int pull_rule_parse(char *rule, PullRule *ret, const char **ret_reason) {
        char *eq = strchr(rule, '=');
        if (!eq) {
                *ret_reason = "a pull_allow rule is REPOSITORY_PREFIX=NAMESPACES (no '=' found)";
                return -EINVAL;
        }
        *eq = 0;
        if (!pull_prefix_valid(rule)) {
                *ret_reason = "a pull_allow repository prefix must be HOST[:PORT] or HOST[:PORT]/REPO, "
                              "without tag or digest (HOST with a '.' or a port, or localhost)";
                return -EINVAL;
        }
        _cleanup_strv_free_ char **l = NULL;
        size_t n = 0;
        const char *p = eq + 1;
        for (;;) {
                size_t len = strcspn(p, ",");
                _cleanup_free_ char *ns = strndup(p, len);
                if (!ns)
                        return -ENOMEM;
                bool star = streq(ns, "*");
                if (!star && !ident_valid(ns, IDENT_MAX_LEN)) {
                        *ret_reason = "pull_allow namespaces are a comma-separated list of namespaces "
                                      "([A-Za-z0-9._-], not empty) or *";
                        return -EINVAL;
                }
                if (star && (n > 0 || p[len] == ',')) {
                        *ret_reason = "pull_allow: * stands alone, not in a list of namespaces";
                        return -EINVAL;
                }
                char **nl = realloc(l, (n + 2) * sizeof(char *));
                if (!nl)
                        return -ENOMEM;
                l = nl;
                l[n++] = TAKE_PTR(ns);
                l[n] = NULL;
                if (!p[len])
                        break;
                p += len + 1;
        }
        char *prefix = strdup(rule);
        if (!prefix)
                return -ENOMEM;
        *ret = (PullRule){.prefix = prefix, .namespaces = TAKE_PTR(l)};
        return 0;
}

int pull_rules_parse(const char *value, PullRule **ret, size_t *ret_n, const char **ret_reason) {
        _cleanup_free_ char *copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        PullRule *rules = NULL;
        size_t n = 0;
        char *save = NULL;
        for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
                PullRule *nr = realloc(rules, (n + 1) * sizeof(PullRule));
                if (!nr) {
                        pull_rules_free(rules, n);
                        return -ENOMEM;
                }
                rules = nr;
                int r = pull_rule_parse(t, &rules[n], ret_reason);
                if (r < 0) {
                        pull_rules_free(rules, n);
                        return r;
                }
                n++;
        }
        *ret = rules;
        *ret_n = n;
        return 0;
}

bool pull_allowed(const PullRule *rules, size_t n, const char *repository, const char *ns) {
        if (isempty(repository) || isempty(ns))
                return false;
        for (size_t i = 0; i < n; i++) {
                const char *rest = startswith(repository, rules[i].prefix);
                if (!rest || (*rest && *rest != '/'))
                        continue;
                STRV_FOREACH (x, rules[i].namespaces)
                        if (streq(*x, "*") || streq(*x, ns))
                                return true;
        }
        return false;
}

const char *pull_target_namespace(const RestoreIdentity *t) {
        if (!isempty(t->k8s_namespace))
                return t->k8s_namespace;
        return isempty(t->containerd_namespace) ? NULL : t->containerd_namespace;
}

char *image_normalize(const char *ref) {
        /* The first component is a registry if it has a '.' or ':' or is
         * "localhost"; else the image is on docker.io, and a single
         * component lives in "library/". No tag and no digest: ":latest". */
        const char *slash = strchr(ref, '/');
        bool has_registry =
                slash &&
                (memchr(ref, '.', (size_t)(slash - ref)) || memchr(ref, ':', (size_t)(slash - ref)) ||
                 ((size_t)(slash - ref) == strlen("localhost") && startswith(ref, "localhost")));
        const char *prefix = has_registry ? "" : slash ? "docker.io/" : "docker.io/library/";
        const char *last = strrchr(ref, '/');
        last = last ? last + 1 : ref;
        bool tagged = strchr(last, ':') || strchr(ref, '@');
        char *s = NULL;
        if (asprintf(&s, "%s%s%s", prefix, ref, tagged ? "" : ":latest") < 0)
                return NULL;
        return s;
}

int image_check(const CatalogEntry *e, const RestoreIdentity *t, char *msg, size_t msgsize) {
        if (isempty(e->image_ref) || isempty(t->image_ref))
                return 0;
        /* Neither is quoted unless valid: both end up in messages to
         * containerd and the kubelet. */
        if (!image_ref_valid(e->image_ref) || !image_ref_valid(t->image_ref)) {
                snprintf(msg, msgsize,
                         "image mismatch: the %s image reference is not 1-%d printable ASCII characters",
                         image_ref_valid(e->image_ref) ? "restoring container's" : "checkpoint's",
                         IMAGE_REF_MAX);
                return -EMEDIUMTYPE;
        }
        _cleanup_free_ char *a = image_normalize(e->image_ref);
        _cleanup_free_ char *b = image_normalize(t->image_ref);
        if (!a || !b)
                return -ENOMEM;
        if (streq(a, b))
                return 0;
        snprintf(msg, msgsize,
                 "image mismatch: the checkpoint was taken from %s, the restoring container runs %s",
                 e->image_ref, t->image_ref);
        return -EMEDIUMTYPE;
}

static bool visible_to(const CatalogEntry *e, const RestoreIdentity *scope) {
        const char *reason;
        return !scope || tenant_check(e, scope, &reason) >= 0;
}

/* A catalog_get*() result seen by scope: a row scope may not see is -ENOENT. */
static int scoped(int r, const RestoreIdentity *scope, CatalogEntry *ret) {
        if (r >= 0 && !visible_to(ret, scope)) {
                catalog_entry_done(ret);
                return -ENOENT;
        }
        return r;
}

typedef enum ScanRows {
        SCAN_ALL,
        SCAN_SINGLE, /* no pod checkpoint and no member of one */
        SCAN_PODS,   /* pod checkpoints only */
} ScanRows;

typedef struct Scan {
        const RestoreIdentity *scope;
        const char *prefix; /* NULL: every row */
        ScanRows rows;
        bool first_only;
        unsigned n;
        CatalogEntry found;
} Scan;

#define SCAN_STOP (-ECANCELED)

static bool scan_wants(const Scan *s, const CatalogEntry *e) {
        switch (s->rows) {
        case SCAN_SINGLE:
                return !e->is_pod && isempty(e->pod_id);
        case SCAN_PODS:
                return e->is_pod;
        default:
                return true;
        }
}

static int scan_row(const CatalogEntry *e, void *userdata) {
        Scan *s = userdata;
        if ((s->prefix && !startswith(e->id, s->prefix)) || !scan_wants(s, e) || !visible_to(e, s->scope))
                return 0;
        if (s->n++ > 0)
                return SCAN_STOP; /* a second one: ambiguous */
        int r = catalog_entry_copy(e, &s->found);
        if (r < 0)
                return r;
        return s->first_only ? SCAN_STOP : 0;
}

/* The one visible row matching f (and prefix): -ENOENT, -ENOTUNIQ (two or
 * more, unless first_only: then the first, i.e. the newest). */
static int scan(Catalog *cat, const CatalogFilter *f, const char *prefix, ScanRows rows, bool first_only,
                const RestoreIdentity *scope, CatalogEntry *ret) {
        Scan s = {.scope = scope, .prefix = prefix, .rows = rows, .first_only = first_only};
        int r = catalog_list(cat, f, scan_row, &s);
        if (r < 0 && r != SCAN_STOP) {
                catalog_entry_done(&s.found);
                return r;
        }
        if (s.n == 0)
                return -ENOENT;
        if (s.n > 1 && !first_only) {
                catalog_entry_done(&s.found);
                return -ENOTUNIQ;
        }
        *ret = s.found;
        return 0;
}

int resolve_lookup(Catalog *cat, const char *ref, const RestoreIdentity *scope, CatalogEntry *ret, char *msg,
                   size_t msgsize) {
        RefKind kind;
        const char *reason = NULL;
        int r = ref_parse(ref, &kind, &reason);
        if (r < 0) {
                snprintf(msg, msgsize, "invalid reference: %s", reason);
                return r;
        }
        switch (kind) {
        case REF_ID:
                r = scoped(catalog_get(cat, ref, ret), scope, ret);
                if (r == -ENOENT)
                        r = scoped(catalog_get_by_name(cat, ref, ret), scope, ret);
                break;
        case REF_PREFIX:
                if (scope) /* counted among the rows scope sees only */
                        r = scan(cat, &(CatalogFilter){}, ref, SCAN_ALL, false, scope, ret);
                else
                        r = catalog_get_by_prefix(cat, ref, ret);
                if (r == -ENOENT)
                        r = scoped(catalog_get_by_name(cat, ref, ret), scope, ret);
                if (r == -ENOTUNIQ) {
                        snprintf(msg, msgsize, "id prefix '%s' is ambiguous: give more characters", ref);
                        return r;
                }
                break;
        case REF_NAME:
                r = scoped(catalog_get_by_name(cat, ref, ret), scope, ret);
                break;
        case REF_K8S: {
                _cleanup_free_ char *ns = NULL, *pod = NULL, *ctr = NULL;
                r = ref_split_k8s(ref, &ns, &pod, &ctr);
                if (r >= 0) {
                        /* The newest of the container's own checkpoints: a
                         * member of a pod checkpoint is restored through its
                         * pod (or by its id). */
                        CatalogFilter f = {.k8s_namespace = ns,
                                           .k8s_pod = pod,
                                           .k8s_container = ctr,
                                           .state = CHECKPOINT_READY};
                        r = scan(cat, &f, NULL, SCAN_SINGLE, true, scope, ret);
                }
                if (r == -ENOENT) {
                        snprintf(msg, msgsize, "no ready checkpoint of Kubernetes container %s", ref);
                        return r;
                }
                break;
        }
        case REF_POD: {
                _cleanup_free_ char *ns = NULL, *pod = NULL;
                r = ref_split_pod(ref, &ns, &pod);
                if (r >= 0) {
                        CatalogFilter f = {.k8s_namespace = ns, .k8s_pod = pod, .state = CHECKPOINT_READY};
                        r = scan(cat, &f, NULL, SCAN_PODS, true, scope, ret);
                }
                if (r == -ENOENT) {
                        snprintf(msg, msgsize, "no ready pod checkpoint of Kubernetes pod %s", ref);
                        return r;
                }
                break;
        }
        case REF_PATH:
                snprintf(msg, msgsize, "a path is not a catalog reference");
                return -EINVAL;
        case REF_IMAGE:
                snprintf(msg, msgsize, "no checkpoint of this node comes from image %s", ref);
                return -ENOENT;
        }
        if (r == -ENOENT)
                snprintf(msg, msgsize, "no checkpoint with id, id prefix or name '%s'", ref);
        else if (r < 0)
                snprintf(msg, msgsize, "catalog lookup failed: %s", strerror(-r));
        return r;
}

typedef struct Members {
        const RestoreIdentity *target;
        char names[512];
        size_t n_names;
        bool found;
        CatalogEntry member;
} Members;

static int member_row(const CatalogEntry *e, void *userdata) {
        Members *m = userdata;
        if (!visible_to(e, m->target))
                return 0;
        const char *name = ident_valid(e->k8s_container, IDENT_MAX_LEN) ? e->k8s_container : "?";
        size_t l = strlen(m->names);
        if (l < sizeof(m->names) - 1)
                snprintf(m->names + l, sizeof(m->names) - l, "%s%s", m->n_names > 0 ? ", " : "", name);
        m->n_names++;
        if (m->found || isempty(m->target->k8s_container) ||
            !streq_ptr(e->k8s_container, m->target->k8s_container))
                return 0;
        int r = catalog_entry_copy(e, &m->member);
        if (r < 0)
                return r;
        m->found = true;
        return 0;
}

int resolve_pod_member(Catalog *cat, const CatalogEntry *pod, const RestoreIdentity *target,
                       CatalogEntry *ret, char *msg, size_t msgsize) {
        Members m = {.target = target};
        CatalogFilter f = {.pod_id = pod->id};
        int r = catalog_list(cat, &f, member_row, &m);
        if (r < 0) {
                catalog_entry_done(&m.member);
                snprintf(msg, msgsize, "catalog lookup failed: %s", strerror(-r));
                return r;
        }
        const char *names = m.n_names > 0 ? m.names : "none";
        if (isempty(target->k8s_container)) {
                snprintf(msg, msgsize,
                         "pod checkpoint %s restores Kubernetes containers by name, and the restoring "
                         "container has none (the pod checkpoint has: %s)",
                         pod->id, names);
                return -EINVAL;
        }
        if (!m.found) {
                snprintf(msg, msgsize, "pod checkpoint %s has no container %s (it has: %s)", pod->id,
                         ident_valid(target->k8s_container, IDENT_MAX_LEN) ? target->k8s_container
                                                                           : "with that name",
                         names);
                return -ENOENT;
        }
        *ret = m.member;
        return 0;
}

char *retention_group(const CatalogEntry *e) {
        char *s = NULL;
        int r;
        if (e->is_pod && !isempty(e->k8s_namespace))
                r = asprintf(&s, "pod:%s/%s", e->k8s_namespace, e->k8s_pod ? e->k8s_pod : "");
        else if (e->is_pod)
                r = asprintf(&s, "pod:ctrd:%s/%s", e->containerd_namespace ? e->containerd_namespace : "",
                             e->container_id ? e->container_id : "");
        else if (!isempty(e->k8s_namespace))
                r = asprintf(&s, "k8s:%s/%s/%s", e->k8s_namespace, e->k8s_pod ? e->k8s_pod : "",
                             e->k8s_container ? e->k8s_container : "");
        else
                r = asprintf(&s, "ctrd:%s/%s", e->containerd_namespace ? e->containerd_namespace : "",
                             e->container_id ? e->container_id : "");
        return r < 0 ? NULL : s;
}

static int item_cmp(const void *a, const void *b) {
        const RetentionItem *x = *(const RetentionItem *const *)a, *y = *(const RetentionItem *const *)b;
        int c = strcmp(x->group, y->group);
        if (c != 0)
                return c;
        return x->created_ns > y->created_ns ? -1 : x->created_ns < y->created_ns ? 1 : 0;
}

int retention_select(RetentionItem *items, size_t n, uint32_t keep, int64_t max_age_ns, int64_t now_ns) {
        if (keep == 0 && max_age_ns <= 0)
                return -EINVAL;
        if (n == 0)
                return 0;
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
        _cleanup_free_ RetentionItem **order = calloc(n, sizeof(*order));
        if (!order)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                order[i] = &items[i];
                items[i].prune = false;
        }
        /* NOLINTNEXTLINE(bugprone-sizeof-expression): an array of pointers */
        qsort(order, n, sizeof(*order), item_cmp);

        int marked = 0;
        uint64_t rank = 0;
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && !streq(order[i]->group, order[i - 1]->group))
                        rank = 0;
                RetentionItem *it = order[i];
                bool protected_by_count = rank < keep;
                bool old_enough = max_age_ns <= 0 || now_ns - it->created_ns > max_age_ns;
                rank++;
                if (it->pinned || protected_by_count || !old_enough)
                        continue;
                it->prune = true;
                marked++;
        }
        return marked;
}

int parse_duration_ns(const char *s, int64_t *ret) {
        char *end;
        if (isempty(s) || !isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0)
                return -ERANGE;
        uint64_t mult;
        if (streq(end, "") || streq(end, "s"))
                mult = 1;
        else if (streq(end, "m"))
                mult = 60;
        else if (streq(end, "h"))
                mult = 3600;
        else if (streq(end, "d"))
                mult = 86400;
        else if (streq(end, "w"))
                mult = (uint64_t)7 * 86400;
        else
                return -EINVAL;
        if (v > (uint64_t)INT64_MAX / NSEC_PER_SEC / mult)
                return -ERANGE;
        *ret = (int64_t)(v * mult * NSEC_PER_SEC);
        return 0;
}
