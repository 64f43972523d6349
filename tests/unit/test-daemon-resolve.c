/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "crc32c.h"
#include "kybernated/config.h"
#include "kybernated/resolve.h"
#include "kybernated/store.h"
#include "mount-util.h"
#include "sha256.h"
#include "test.h"

static RefKind kind_of(const char *ref) {
        RefKind k = (RefKind)-1;
        const char *reason = NULL;
        if (ref_parse(ref, &k, &reason) < 0)
                return (RefKind)-1;
        return k;
}

static const char *reason_of(const char *ref) {
        RefKind k;
        const char *reason = NULL;
        return ref_parse(ref, &k, &reason) < 0 ? reason : NULL;
}

TEST(ref_kinds) {
        ASSERT_EQ(kind_of("0123456789abcdef0123456789abcdef"), REF_ID);
        ASSERT_EQ(kind_of("0123"), REF_PREFIX);
        ASSERT_EQ(kind_of("0123456789abcdef0123456789abcde"), REF_PREFIX);
        ASSERT_EQ(kind_of("012"), REF_NAME); /* too short for a prefix */
        ASSERT_EQ(kind_of("my-checkpoint.v2"), REF_NAME);
        ASSERT_EQ(kind_of("ns/pod/container"), REF_K8S);
        ASSERT_EQ(kind_of("/var/lib/checkpoints/x"), REF_PATH);
        /* A registry host (a '.', a port or localhost) first: an image. */
        ASSERT_EQ(kind_of("registry.local/ckpt/web:v1"), REF_IMAGE);
        ASSERT_EQ(kind_of("127.0.0.1:5000/ckpt/web@sha256:"
                          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
                  REF_IMAGE);
        ASSERT_EQ(kind_of("localhost/web"), REF_IMAGE);
        ASSERT_EQ(kind_of("default/web.v2/app"), REF_K8S); /* a pod name may have dots */
        ASSERT_EQ(kind_of("default/web-0"), REF_POD);
        ASSERT_EQ(kind_of("team-a/web.v2"), REF_POD);
}

TEST(ref_refusals) {
        ASSERT_STREQ(reason_of(""), "empty reference");
        ASSERT_NOT_NULL(reason_of(NULL));
        ASSERT_STREQ(reason_of(".."), "reference contains a '..' component");
        ASSERT_STREQ(reason_of("../etc"), "reference contains a '..' component");
        ASSERT_STREQ(reason_of("/allowed/../etc"), "reference contains a '..' component");
        ASSERT_STREQ(reason_of("ns/../x"), "reference contains a '..' component");
        ASSERT_STREQ(reason_of("a\tb"), "reference contains control characters");
        ASSERT_STREQ(reason_of("a\x7f"), "reference contains control characters");
        ASSERT_STREQ(reason_of("/a//b"), "path is not normalized");
        ASSERT_STREQ(reason_of("/a/./b"), "path is not normalized");
        ASSERT_STREQ(reason_of("/a/."), "path is not normalized");
        ASSERT_NULL(reason_of("a/b")); /* namespace/pod: a pod checkpoint */
        ASSERT_NOT_NULL(reason_of("a/b/c/d"));
        ASSERT_NOT_NULL(reason_of("a/"));
        ASSERT_NOT_NULL(reason_of("ns/-pod"));
        ASSERT_NOT_NULL(reason_of("ns//c"));
        ASSERT_NOT_NULL(reason_of("name with space"));
        ASSERT_NOT_NULL(reason_of("-dash"));
        ASSERT_NOT_NULL(reason_of(".hidden"));
        char big[REF_MAX + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        ASSERT_STREQ(reason_of(big), "reference too long");
        ASSERT_NULL(reason_of("a..b")); /* ".." inside a name is not a path component */
        ASSERT_NOT_NULL(strstr(reason_of("registry.local/Web"), "repository"));
        ASSERT_NOT_NULL(strstr(reason_of("registry.local/web@sha256:12"), "digest"));
}

TEST(split_k8s) {
        _cleanup_free_ char *ns = NULL, *pod = NULL, *ctr = NULL;
        ASSERT_OK(ref_split_k8s("default/web-0/nginx", &ns, &pod, &ctr));
        ASSERT_STREQ(ns, "default");
        ASSERT_STREQ(pod, "web-0");
        ASSERT_STREQ(ctr, "nginx");
        char *a, *b, *c;
        ASSERT_ERROR(ref_split_k8s("default/web-0", &a, &b, &c), EINVAL);
        ASSERT_ERROR(ref_split_k8s("a/b/c/d", &a, &b, &c), EINVAL);
        ASSERT_ERROR(ref_split_k8s("a//c", &a, &b, &c), EINVAL);
}

TEST(split_pod) {
        _cleanup_free_ char *ns = NULL, *pod = NULL;
        ASSERT_OK(ref_split_pod("default/web-0", &ns, &pod));
        ASSERT_STREQ(ns, "default");
        ASSERT_STREQ(pod, "web-0");
        char *a, *b;
        ASSERT_ERROR(ref_split_pod("default/web-0/nginx", &a, &b), EINVAL);
        ASSERT_ERROR(ref_split_pod("default/", &a, &b), EINVAL);
        ASSERT_ERROR(ref_split_pod("/web", &a, &b), EINVAL);
        ASSERT_ERROR(ref_split_pod("nopod", &a, &b), EINVAL);
}

/* A pod checkpoint (id P...) of team/web with members app and side, an
 * older one with member app only, a single checkpoint of team/web/app
 * between them, and another tenant's pod checkpoint of the same names. */
static void insert_row(Catalog *c, const char *id, const char *name, const char *k8s_ns, const char *ctr,
                       const char *pod_id, bool is_pod, int64_t created) {
        CatalogEntry e = {.id = (char *)id,
                          .name = (char *)name,
                          .state = CHECKPOINT_READY,
                          .containerd_namespace = (char *)"k8s.io",
                          .k8s_namespace = (char *)k8s_ns,
                          .k8s_pod = (char *)"web",
                          .k8s_container = (char *)ctr,
                          .container_id = (char *)(is_pod ? "sandbox" : "cid"),
                          .pod_id = (char *)pod_id,
                          .is_pod = is_pod,
                          .created_ns = created};
        ASSERT_OK(catalog_insert(c, &e));
}

static Catalog *pod_catalog(void) {
        Catalog *c = NULL;
        ASSERT_OK(catalog_open(":memory:", false, &c));
        insert_row(c, "a0000000000000000000000000000001", "old-pod", "team", NULL, NULL, true, 100);
        insert_row(c, "a0000000000000000000000000000002", NULL, "team", "app",
                   "a0000000000000000000000000000001", false, 100);
        insert_row(c, "b0000000000000000000000000000001", "single", "team", "app", NULL, false, 200);
        insert_row(c, "c0000000000000000000000000000001", "new-pod", "team", NULL, NULL, true, 300);
        insert_row(c, "c0000000000000000000000000000002", NULL, "team", "app",
                   "c0000000000000000000000000000001", false, 300);
        insert_row(c, "c0000000000000000000000000000003", NULL, "team", "side",
                   "c0000000000000000000000000000001", false, 300);
        insert_row(c, "d0000000000000000000000000000001", "their-pod", "other", NULL, NULL, true, 400);
        insert_row(c, "d0000000000000000000000000000002", NULL, "other", "app",
                   "d0000000000000000000000000000001", false, 400);
        return c;
}

TEST(resolve_pod_references) {
        _cleanup_(catalog_closep) Catalog *c = pod_catalog();
        RestoreIdentity team = {
                .containerd_namespace = "k8s.io", .k8s_namespace = "team", .k8s_container = "app"};
        CatalogEntry e = {};
        char msg[512];

        /* namespace/pod: the newest ready pod checkpoint of that pod. */
        ASSERT_OK(resolve_lookup(c, "team/web", &team, &e, msg, sizeof(msg)));
        ASSERT_STREQ(e.id, "c0000000000000000000000000000001");
        ASSERT_TRUE(e.is_pod);
        catalog_entry_done(&e);
        ASSERT_OK(resolve_lookup(c, "team/web", NULL, &e, msg, sizeof(msg)));
        ASSERT_STREQ(e.id, "c0000000000000000000000000000001");
        catalog_entry_done(&e);
        ASSERT_ERROR(resolve_lookup(c, "team/nopod", &team, &e, msg, sizeof(msg)), ENOENT);
        ASSERT_STREQ(msg, "no ready pod checkpoint of Kubernetes pod team/nopod");
        /* Another tenant's pod checkpoint is not seen. */
        ASSERT_ERROR(resolve_lookup(c, "other/web", &team, &e, msg, sizeof(msg)), ENOENT);

        /* namespace/pod/container: the container's own checkpoints only,
         * never a member of a pod checkpoint (newer here). */
        ASSERT_OK(resolve_lookup(c, "team/web/app", &team, &e, msg, sizeof(msg)));
        ASSERT_STREQ(e.id, "b0000000000000000000000000000001");
        catalog_entry_done(&e);
        ASSERT_OK(resolve_lookup(c, "team/web/app", NULL, &e, msg, sizeof(msg)));
        ASSERT_STREQ(e.id, "b0000000000000000000000000000001");
        catalog_entry_done(&e);
        ASSERT_ERROR(resolve_lookup(c, "team/web/side", &team, &e, msg, sizeof(msg)), ENOENT);
        ASSERT_ERROR(resolve_lookup(c, "team/web/side", NULL, &e, msg, sizeof(msg)), ENOENT);

        /* A member by its own id, a pod checkpoint by name. */
        ASSERT_OK(resolve_lookup(c, "c0000000000000000000000000000003", &team, &e, msg, sizeof(msg)));
        ASSERT_STREQ(e.pod_id, "c0000000000000000000000000000001");
        catalog_entry_done(&e);
        ASSERT_OK(resolve_lookup(c, "old-pod", &team, &e, msg, sizeof(msg)));
        ASSERT_STREQ(e.id, "a0000000000000000000000000000001");
        catalog_entry_done(&e);
}

TEST(resolve_pod_member_by_container_name) {
        _cleanup_(catalog_closep) Catalog *c = pod_catalog();
        RestoreIdentity t = {
                .containerd_namespace = "k8s.io", .k8s_namespace = "team", .k8s_container = "side"};
        CatalogEntry pod = {}, e = {};
        char msg[512];

        ASSERT_OK(resolve_lookup(c, "new-pod", &t, &pod, msg, sizeof(msg)));
        ASSERT_OK(resolve_pod_member(c, &pod, &t, &e, msg, sizeof(msg)));
        ASSERT_STREQ(e.id, "c0000000000000000000000000000003");
        ASSERT_STREQ(e.k8s_container, "side");
        catalog_entry_done(&e);
        t.k8s_container = "app";
        ASSERT_OK(resolve_pod_member(c, &pod, &t, &e, msg, sizeof(msg)));
        ASSERT_STREQ(e.id, "c0000000000000000000000000000002");
        catalog_entry_done(&e);

        /* No member of that name: the pod checkpoint, the name and the names it has. */
        t.k8s_container = "db";
        ASSERT_ERROR(resolve_pod_member(c, &pod, &t, &e, msg, sizeof(msg)), ENOENT);
        ASSERT_NOT_NULL(strstr(msg, "pod checkpoint c0000000000000000000000000000001 has no container db"));
        ASSERT_NOT_NULL(strstr(msg, "app"));
        ASSERT_NOT_NULL(strstr(msg, "side"));
        /* A name that is no identifier is not quoted. */
        t.k8s_container = "x\ny";
        ASSERT_ERROR(resolve_pod_member(c, &pod, &t, &e, msg, sizeof(msg)), ENOENT);
        ASSERT_NULL(strstr(msg, "x\ny"));
        t.k8s_container = "";
        ASSERT_ERROR(resolve_pod_member(c, &pod, &t, &e, msg, sizeof(msg)), EINVAL);
        ASSERT_NOT_NULL(strstr(msg, "c0000000000000000000000000000001"));
        catalog_entry_done(&pod);

        /* The older pod checkpoint has no member side. */
        t.k8s_container = "side";
        ASSERT_OK(resolve_lookup(c, "old-pod", &t, &pod, msg, sizeof(msg)));
        ASSERT_ERROR(resolve_pod_member(c, &pod, &t, &e, msg, sizeof(msg)), ENOENT);
        ASSERT_NOT_NULL(strstr(msg, "(it has: app)"));
        /* A member the target may not restore is not there for it. */
        catalog_entry_done(&pod);
        ASSERT_OK(resolve_lookup(c, "their-pod", NULL, &pod, msg, sizeof(msg)));
        t.k8s_container = "app";
        ASSERT_ERROR(resolve_pod_member(c, &pod, &t, &e, msg, sizeof(msg)), ENOENT);
        catalog_entry_done(&pod);
}

TEST(allowed_dirs) {
        char *dirs[] = {(char *)"/srv/ckpt", (char *)"/mnt/import/", NULL};
        ASSERT_TRUE(path_allowed("/srv/ckpt/one", dirs));
        ASSERT_TRUE(path_allowed("/srv/ckpt/a/b", dirs));
        ASSERT_TRUE(path_allowed("/mnt/import/x", dirs));
        ASSERT_FALSE(path_allowed("/srv/ckpt", dirs)); /* the directory itself: strictly below */
        ASSERT_FALSE(path_allowed("/srv/ckpt2/x", dirs));
        ASSERT_FALSE(path_allowed("/srv/ckpt/../etc", dirs));
        ASSERT_FALSE(path_allowed("/etc/shadow", dirs));
        ASSERT_FALSE(path_allowed("srv/ckpt/x", dirs));
        ASSERT_FALSE(path_allowed("/srv/ckpt//x", dirs));
        ASSERT_FALSE(path_allowed("/srv/ckpt/x", NULL));
}

TEST(tenant_rules) {
        CatalogEntry k8s = {.containerd_namespace = (char *)"k8s.io", .k8s_namespace = (char *)"team-a"};
        CatalogEntry plain = {.containerd_namespace = (char *)"default", .k8s_namespace = (char *)""};
        const char *why = NULL;

        RestoreIdentity same = {.containerd_namespace = "k8s.io", .k8s_namespace = "team-a"};
        ASSERT_OK(tenant_check(&k8s, &same, &why));

        RestoreIdentity other_ns = {.containerd_namespace = "k8s.io", .k8s_namespace = "team-b"};
        ASSERT_ERROR(tenant_check(&k8s, &other_ns, &why), EACCES);
        ASSERT_TRUE(strstr(why, "Kubernetes namespace") != NULL);

        /* A non-Kubernetes container may not take a Kubernetes checkpoint, nor the reverse. */
        RestoreIdentity no_k8s = {.containerd_namespace = "k8s.io"};
        ASSERT_ERROR(tenant_check(&k8s, &no_k8s, &why), EACCES);
        RestoreIdentity k8s_into_plain = {.containerd_namespace = "default", .k8s_namespace = "team-a"};
        ASSERT_ERROR(tenant_check(&plain, &k8s_into_plain, &why), EACCES);
        ASSERT_TRUE(strstr(why, "Kubernetes namespace") != NULL);

        RestoreIdentity plain_same = {.containerd_namespace = "default"};
        ASSERT_OK(tenant_check(&plain, &plain_same, &why));
        RestoreIdentity plain_other = {.containerd_namespace = "other"};
        ASSERT_ERROR(tenant_check(&plain, &plain_other, &why), EACCES);
        ASSERT_TRUE(strstr(why, "containerd namespace") != NULL);
        RestoreIdentity empty = {};
        ASSERT_ERROR(tenant_check(&plain, &empty, &why), EACCES);

        /* Same k8s namespace, other containerd namespace: still refused. */
        RestoreIdentity other_ctrd = {.containerd_namespace = "other", .k8s_namespace = "team-a"};
        ASSERT_ERROR(tenant_check(&k8s, &other_ctrd, &why), EACCES);

        /* The operator's override. */
        k8s.allow_cross_namespace = true;
        ASSERT_OK(tenant_check(&k8s, &other_ns, &why));
}

TEST(image_tenant_rules) {
        OciAnnotation a[] = {
                {(char *)KYB_CHECKPOINT_K8S_NAMESPACE, (char *)"team-a"},
                {(char *)CRIU_CHECKPOINT_POD_NAMESPACE, (char *)"team-a"},
                {(char *)KYB_CHECKPOINT_CONTAINERD_NAMESPACE, (char *)"k8s.io"},
        };
        OciImage img = {.annotations = a, .n_annotations = ELEMENTSOF(a)};
        const char *why = NULL;

        RestoreIdentity same = {.containerd_namespace = "k8s.io", .k8s_namespace = "team-a"};
        ASSERT_OK(image_tenant_check(&img, &same, &why));
        RestoreIdentity other_ns = {.containerd_namespace = "k8s.io", .k8s_namespace = "team-b"};
        ASSERT_ERROR(image_tenant_check(&img, &other_ns, &why), EACCES);
        ASSERT_TRUE(strstr(why, "Kubernetes namespace annotation") != NULL);
        RestoreIdentity no_k8s = {.containerd_namespace = "k8s.io"};
        ASSERT_ERROR(image_tenant_check(&img, &no_k8s, &why), EACCES);
        RestoreIdentity other_ctrd = {.containerd_namespace = "default", .k8s_namespace = "team-a"};
        ASSERT_ERROR(image_tenant_check(&img, &other_ctrd, &why), EACCES);
        ASSERT_TRUE(strstr(why, "containerd namespace annotation") != NULL);

        /* checkpointctl's key alone (containerd 2.x, checkpointctl build) counts too. */
        img.annotations = a + 1;
        img.n_annotations = 1;
        ASSERT_ERROR(image_tenant_check(&img, &other_ns, &why), EACCES);
        ASSERT_TRUE(strstr(why, "pod namespace annotation") != NULL);
        ASSERT_OK(image_tenant_check(&img, &same, &why));

        /* A foreign image without them: the pull rules and the metadata decide. */
        img.n_annotations = 0;
        ASSERT_OK(image_tenant_check(&img, &other_ns, &why));
}

#define SEC ((int64_t)NSEC_PER_SEC)

TEST(retention_keep_newest_per_group) {
        RetentionItem it[] = {
                {.group = "a", .created_ns = 10 * SEC}, {.group = "a", .created_ns = 30 * SEC},
                {.group = "a", .created_ns = 20 * SEC}, {.group = "a", .created_ns = 40 * SEC},
                {.group = "b", .created_ns = 5 * SEC},
        };
        /* keep 2, any age: a@10 and a@20 go; b has one only. */
        ASSERT_EQ(retention_select(it, ELEMENTSOF(it), 2, 0, 100 * SEC), 2);
        ASSERT_TRUE(it[0].prune);
        ASSERT_FALSE(it[1].prune);
        ASSERT_TRUE(it[2].prune);
        ASSERT_FALSE(it[3].prune);
        ASSERT_FALSE(it[4].prune);

        /* keep 1, older than 65 s (now 100 s): a@20, a@10 old enough; a@30 is
         * 70 s old too; b@5 is the newest of b, kept by the count. */
        ASSERT_EQ(retention_select(it, ELEMENTSOF(it), 1, 65 * SEC, 100 * SEC), 3);
        ASSERT_TRUE(it[0].prune && it[1].prune && it[2].prune);
        ASSERT_FALSE(it[3].prune || it[4].prune);

        /* Exactly max_age old is not "older than". */
        RetentionItem edge[] = {{.group = "x", .created_ns = 50 * SEC},
                                {.group = "x", .created_ns = 60 * SEC}};
        ASSERT_EQ(retention_select(edge, 2, 1, 50 * SEC, 100 * SEC), 0);
        ASSERT_EQ(retention_select(edge, 2, 1, 49 * SEC, 100 * SEC), 1);
        ASSERT_TRUE(edge[0].prune);
}

TEST(retention_pinned_and_limits) {
        RetentionItem it[] = {
                {.group = "a", .created_ns = 1 * SEC, .pinned = true},
                {.group = "a", .created_ns = 2 * SEC},
                {.group = "a", .created_ns = 3 * SEC},
        };
        /* keep 0 means the count protects none: only age decides; pinned stays. */
        ASSERT_EQ(retention_select(it, 3, 0, 1, 100 * SEC), 2);
        ASSERT_FALSE(it[0].prune);
        /* Pinned rows still take a rank: keep 1 keeps a@3, a@2 goes. */
        ASSERT_EQ(retention_select(it, 3, 1, 0, 100 * SEC), 1);
        ASSERT_TRUE(it[1].prune);
        /* keep 0 and no age limit would delete everything: refused. */
        ASSERT_ERROR(retention_select(it, 3, 0, 0, 100 * SEC), EINVAL);
        ASSERT_EQ(retention_select(NULL, 0, 3, 0, 0), 0);
}

TEST(retention_group_keys) {
        CatalogEntry k = {.k8s_namespace = (char *)"ns",
                          .k8s_pod = (char *)"p",
                          .k8s_container = (char *)"c",
                          .containerd_namespace = (char *)"k8s.io",
                          .container_id = (char *)"abc"};
        CatalogEntry d = {.containerd_namespace = (char *)"default", .container_id = (char *)"abc"};
        _cleanup_free_ char *gk = retention_group(&k);
        _cleanup_free_ char *gd = retention_group(&d);
        ASSERT_STREQ(gk, "k8s:ns/p/c");
        ASSERT_STREQ(gd, "ctrd:default/abc");
        CatalogEntry pk = {.k8s_namespace = (char *)"ns",
                           .k8s_pod = (char *)"p",
                           .containerd_namespace = (char *)"k8s.io",
                           .container_id = (char *)"sandbox",
                           .is_pod = true};
        CatalogEntry pd = {
                .containerd_namespace = (char *)"k8s.io", .container_id = (char *)"sandbox", .is_pod = true};
        _cleanup_free_ char *gpk = retention_group(&pk);
        _cleanup_free_ char *gpd = retention_group(&pd);
        ASSERT_STREQ(gpk, "pod:ns/p");
        ASSERT_STREQ(gpd, "pod:ctrd:k8s.io/sandbox");
}

TEST(durations) {
        int64_t ns;
        ASSERT_OK(parse_duration_ns("90", &ns));
        ASSERT_EQ(ns, 90 * SEC);
        ASSERT_OK(parse_duration_ns("15m", &ns));
        ASSERT_EQ(ns, 900 * SEC);
        ASSERT_OK(parse_duration_ns("7d", &ns));
        ASSERT_EQ(ns, SEC * 7 * 86400);
        ASSERT_OK(parse_duration_ns("2w", &ns));
        ASSERT_EQ(ns, SEC * 14 * 86400);
        ASSERT_ERROR(parse_duration_ns("", &ns), EINVAL);
        ASSERT_ERROR(parse_duration_ns("-1d", &ns), EINVAL);
        ASSERT_ERROR(parse_duration_ns("3y", &ns), EINVAL);
        ASSERT_ERROR(parse_duration_ns("99999999999999w", &ns), ERANGE);
}

TEST(config_file) {
        Config c;
        unsigned line = 0;
        ASSERT_OK(config_init(&c));
        ASSERT_STREQ(c.store, "/var/lib/kybernate");
        ASSERT_TRUE(c.durable);
        ASSERT_OK(config_parse(&c,
                               "# comment\n"
                               "store = /srv/kyb\n"
                               "\n"
                               "keep_per_container=5\n"
                               "max_age = 12h\n"
                               "durable = no\n"
                               "criu = /usr/local/sbin/criu\n"
                               "allowed_restore_dirs = /srv/a:/srv/b, /srv/c\n"
                               "read_group = 0\n",
                               &line));
        ASSERT_STREQ(c.store, "/srv/kyb");
        ASSERT_EQ(c.keep_per_container, 5);
        ASSERT_EQ(c.max_age_ns, SEC * 12 * 3600);
        ASSERT_FALSE(c.durable);
        ASSERT_STREQ(c.criu, "/usr/local/sbin/criu");
        ASSERT_STREQ(c.allowed_restore_dirs[0], "/srv/a");
        ASSERT_STREQ(c.allowed_restore_dirs[2], "/srv/c");
        ASSERT_NULL(c.allowed_restore_dirs[3]);
        ASSERT_EQ(c.read_gid, 0);

        ASSERT_ERROR(config_parse(&c, "store = /x\nnonsense\n", &line), EINVAL);
        ASSERT_EQ(line, 2);
        ASSERT_ERROR(config_parse(&c, "unknown_key = 1\n", &line), ENOKEY);
        ASSERT_ERROR(config_parse(&c, "store = relative\n", &line), EINVAL);
        ASSERT_ERROR(config_parse(&c, "durable = perhaps\n", &line), EINVAL);
        ASSERT_ERROR(config_parse(&c, "allowed_restore_dirs = /a/../b\n", &line), EINVAL);
        ASSERT_ERROR(config_parse(&c, "keep_per_container = -1\n", &line), EINVAL);
        config_done(&c);
}

TEST(store_ids) {
        char a[33], b[33];
        ASSERT_OK(store_new_id(a));
        ASSERT_OK(store_new_id(b));
        ASSERT_EQ(strlen(a), 32);
        ASSERT_EQ(strspn(a, "0123456789abcdef"), 32);
        ASSERT_TRUE(strcmp(a, b) != 0);
}

static void write_text(const char *dir, const char *name, const char *text) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        ASSERT_OK(write_file_atomic(p, text, strlen(text), 0600));
}

static void le(Sha256 *h, uint64_t v, size_t n) {
        for (size_t k = 0; k < n; k++) {
                uint8_t b = (uint8_t)(v >> (8 * k));
                sha256_update(h, &b, 1);
        }
}

/* One file of the checksum's stream: path, NUL, size, then the bytes or
 * the CRC-32C of every MiB of them. */
static void feed_file(Sha256 *h, const char *path, const void *data, size_t n, bool blocks) {
        sha256_update(h, path, strlen(path) + 1);
        le(h, n, 8);
        if (!blocks) {
                sha256_update(h, data, n);
                return;
        }
        for (size_t off = 0; off < n; off += 1 << 20)
                le(h, crc32c(0, (const uint8_t *)data + off, MIN((size_t)1 << 20, n - off)), 4);
}

static void digest_hex(Sha256 *h, const char *prefix, char ret[static 80]) {
        uint8_t d[32];
        char hex[65];
        sha256_final(h, d);
        sha256_to_hex(d, hex);
        snprintf(ret, 80, "%s%s", prefix, hex);
}

/* Big enough for the four-block path, the single blocks after it, a short
 * tail, and two threads (from 64 MiB on; the second takes the blocks from 32);
 * and an empty file. */
TEST(store_checksum_blocks) {
        const char *d = test_tmpdir();
        size_t n = 70 * (1 << 20) + 12345;
        _cleanup_free_ uint8_t *data = malloc(n);
        ASSERT_NOT_NULL(data);
        for (size_t i = 0; i < n; i++)
                data[i] = (uint8_t)(i * 2654435761u >> 13);
        char p[512];
        snprintf(p, sizeof(p), "%s/empty.img", d); /* no blocks at all */
        ASSERT_OK(write_file_atomic(p, "", 0, 0600));
        snprintf(p, sizeof(p), "%s/pages-1.img", d);
        ASSERT_OK(write_file_atomic(p, data, n, 0600));

        uint64_t size;
        char sum[STORE_CHECKSUM_MAX], want[80];
        ASSERT_OK(store_checksum(d, NULL, false, &size, sum));
        ASSERT_EQ(size, n);
        Sha256 h;
        sha256_init(&h);
        feed_file(&h, "empty.img", "", 0, true);
        feed_file(&h, "pages-1.img", data, n, true);
        digest_hex(&h, "crc32c+sha256:", want);
        ASSERT_STREQ(sum, want);

        /* one bit flipped in a block of the second thread */
        data[50 * (1 << 20) + 7] ^= 0x10;
        ASSERT_OK(write_file_atomic(p, data, n, 0600));
        ASSERT_OK(store_checksum(d, NULL, false, &size, want));
        ASSERT_TRUE(strcmp(sum, want) != 0);
        ASSERT_OK(remove_tree_one_fs(d));
}

/* Nothing but the metadata file (which is not covered): no files at all, the
 * digest of nothing. The empty list used to reach qsort() as NULL, which
 * UBSan (make asan) reports: qsort's array is declared nonnull. */
TEST(store_checksum_empty_directory) {
        const char *d = test_tmpdir();
        write_text(d, "kybernate.json", "{}");

        uint64_t size = 1;
        char sum[STORE_CHECKSUM_MAX], want[80];
        ASSERT_OK(store_checksum(d, NULL, false, &size, sum));
        ASSERT_EQ(size, 0);
        Sha256 h;
        sha256_init(&h);
        digest_hex(&h, "crc32c+sha256:", want);
        ASSERT_STREQ(sum, want);
        ASSERT_OK(store_checksum(d, "sha256:", false, &size, sum));
        ASSERT_EQ(size, 0);
}

TEST(store_checksum_defined_order) {
        const char *d = test_tmpdir();
        char sub[512];
        snprintf(sub, sizeof(sub), "%s/checkpoint", d);
        ASSERT_OK(mkdir_p(sub, 0700));
        write_text(d, "config.dump", "{}");
        write_text(sub, "pages-1.img", "PAGES");
        write_text(d, "kybernate.json", "{\"not\":\"covered\"}");

        uint64_t size;
        char sum1[STORE_CHECKSUM_MAX], sum2[STORE_CHECKSUM_MAX], sum3[STORE_CHECKSUM_MAX], want[80];
        ASSERT_OK(store_checksum(d, NULL, true, &size, sum1));
        ASSERT_EQ(size, 7);
        /* daemon.proto's definition, computed here independently */
        Sha256 h;
        sha256_init(&h);
        feed_file(&h, "checkpoint/pages-1.img", "PAGES", 5, true);
        feed_file(&h, "config.dump", "{}", 2, true);
        digest_hex(&h, "crc32c+sha256:", want);
        ASSERT_STREQ(sum1, want);

        /* Rows written with the earlier plain SHA-256 still verify. */
        ASSERT_OK(store_checksum(d, "sha256:00", false, &size, sum2));
        sha256_init(&h);
        feed_file(&h, "checkpoint/pages-1.img", "PAGES", 5, false);
        feed_file(&h, "config.dump", "{}", 2, false);
        digest_hex(&h, "sha256:", want);
        ASSERT_STREQ(sum2, want);
        ASSERT_ERROR(store_checksum(d, "md5:00", false, &size, sum2), EOPNOTSUPP);

        /* kybernate.json is not covered. */
        write_text(d, "kybernate.json", "{\"changed\":true}");
        ASSERT_OK(store_checksum(d, NULL, false, &size, sum2));
        ASSERT_STREQ(sum1, sum2);

        /* Any content change is. */
        write_text(sub, "pages-1.img", "PAGEZ");
        ASSERT_OK(store_checksum(d, NULL, false, &size, sum3));
        ASSERT_TRUE(strcmp(sum1, sum3) != 0);

        /* A symlink (to a host file, say) is refused. */
        char link[600];
        snprintf(link, sizeof(link), "%s/evil.img", sub);
        ASSERT_OK(symlink("/etc/passwd", link) < 0 ? -errno : 0);
        ASSERT_ERROR(store_checksum(d, NULL, false, &size, sum3), EINVAL);

        ASSERT_OK(remove_tree_one_fs(d));
        ASSERT_TRUE(access(d, F_OK) < 0);
        ASSERT_OK(remove_tree_one_fs(d)); /* already gone: fine */
}

TEST(remove_tree_one_fs_never_crosses_mounts) {
        if (geteuid() != 0)
                return_skip("needs root to mount");
        if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return_skip("cannot make a private mount namespace");

        const char *d = test_tmpdir(), *victim = test_tmpdir();
        write_text(victim, "precious", "do not delete");

        /* A work dir with a bind mount of the victim below it, as an
         * interrupted CRIU run leaves behind. */
        char work[512], mnt[600];
        snprintf(work, sizeof(work), "%s/work/criu-root", d);
        ASSERT_OK(mkdir_p(work, 0700));
        snprintf(mnt, sizeof(mnt), "%s/rootfs", work);
        ASSERT_OK(mkdir_p(mnt, 0700));
        ASSERT_OK(mount(victim, mnt, NULL, MS_BIND, NULL) < 0 ? -errno : 0);
        write_text(d, "file", "x");

        ASSERT_OK(remove_tree_one_fs(d));
        ASSERT_TRUE(access(d, F_OK) < 0);
        char precious[600];
        snprintf(precious, sizeof(precious), "%s/precious", victim);
        ASSERT_OK(access(precious, F_OK) < 0 ? -errno : 0);

        ASSERT_OK(remove_tree_one_fs(victim));
}

TEST(image_rule) {
        _cleanup_free_ char *n1 = image_normalize("busybox");
        _cleanup_free_ char *n2 = image_normalize("library/busybox:1.36");
        _cleanup_free_ char *n3 = image_normalize("quay.io/org/app@sha256:abc");
        _cleanup_free_ char *n4 = image_normalize("localhost:5000/app");
        _cleanup_free_ char *n5 = image_normalize("localhost/app:v1");
        ASSERT_STREQ(n1, "docker.io/library/busybox:latest");
        ASSERT_STREQ(n2, "docker.io/library/busybox:1.36");
        ASSERT_STREQ(n3, "quay.io/org/app@sha256:abc");
        ASSERT_STREQ(n4, "localhost:5000/app:latest");
        ASSERT_STREQ(n5, "localhost/app:v1");

        CatalogEntry e = {.image_ref = (char *)"docker.io/library/busybox:latest"};
        RestoreIdentity same = {.image_ref = "busybox"};
        RestoreIdentity other = {.image_ref = "nginx:1.25"};
        RestoreIdentity unknown = {};
        char msg[512];
        ASSERT_OK(image_check(&e, &same, msg, sizeof(msg)));
        ASSERT_OK(image_check(&e, &unknown, msg, sizeof(msg)));
        ASSERT_ERROR(image_check(&e, &other, msg, sizeof(msg)), EMEDIUMTYPE);
        ASSERT_TRUE(strstr(msg, "nginx:1.25") != NULL);
        ASSERT_TRUE(strstr(msg, "busybox") != NULL);
}

static bool has_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

TEST(image_ref_printable_only) {
        ASSERT_TRUE(image_ref_valid("busybox"));
        ASSERT_TRUE(image_ref_valid("quay.io/org/app@sha256:abc"));
        ASSERT_FALSE(image_ref_valid(""));
        ASSERT_FALSE(image_ref_valid("busybox\n"));
        ASSERT_FALSE(image_ref_valid("busy\tbox"));
        ASSERT_FALSE(image_ref_valid("busybox\x1b[2J"));
        ASSERT_FALSE(image_ref_valid("busy box"));
        ASSERT_FALSE(image_ref_valid("busybox\x7f"));
        ASSERT_FALSE(image_ref_valid("b\xc3\xa4"));
        char big[IMAGE_REF_MAX + 2];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        ASSERT_FALSE(image_ref_valid(big));
        big[IMAGE_REF_MAX] = 0;
        ASSERT_TRUE(image_ref_valid(big));

        /* A catalog row or a target with control characters never matches,
         * and the refusal does not quote them. */
        char msg[512];
        CatalogEntry bad = {.image_ref = (char *)"busybox\r\nX-Injected: 1"};
        RestoreIdentity same = {.image_ref = "busybox"};
        ASSERT_ERROR(image_check(&bad, &same, msg, sizeof(msg)), EMEDIUMTYPE);
        ASSERT_FALSE(has_control(msg));
        ASSERT_TRUE(strstr(msg, "checkpoint's") != NULL);
        CatalogEntry good = {.image_ref = (char *)"busybox"};
        RestoreIdentity evil = {.image_ref = "busybox\x1b]0;pwned\x07"};
        ASSERT_ERROR(image_check(&good, &evil, msg, sizeof(msg)), EMEDIUMTYPE);
        ASSERT_FALSE(has_control(msg));
        ASSERT_TRUE(strstr(msg, "restoring container's") != NULL);
}

TEST(paths_overlap) {
        ASSERT_TRUE(path_overlaps("/var/lib/kybernate", "/var/lib/kybernate"));
        ASSERT_TRUE(path_overlaps("/var/lib/kybernate/checkpoints", "/var/lib/kybernate"));
        ASSERT_TRUE(path_overlaps("/var/lib", "/var/lib/kybernate"));
        ASSERT_TRUE(path_overlaps("/", "/var/lib/kybernate"));
        ASSERT_TRUE(path_overlaps("/var/lib/kybernate/", "/var/lib/kybernate"));
        ASSERT_FALSE(path_overlaps("/var/lib/kybernate2", "/var/lib/kybernate"));
        ASSERT_FALSE(path_overlaps("/srv/ckpt", "/var/lib/kybernate"));
}

/* A temporary tree: <d>/allowed, and <d>/store when tree_make_store(). */
static void tree_setup(char *d) {
        ASSERT_NOT_NULL(mkdtemp(d));
        char p[256];
        snprintf(p, sizeof(p), "%s/allowed", d);
        ASSERT_OK(mkdir_p(p, 0700));
}

static void tree_make_store(const char *d) {
        char p[256];
        snprintf(p, sizeof(p), "%s/store/checkpoints/0123456789abcdef0123456789abcdef/checkpoint", d);
        ASSERT_OK(mkdir_p(p, 0700));
        snprintf(p, sizeof(p), "%s/store/staging", d);
        ASSERT_OK(mkdir_p(p, 0700));
}

static int check_dirs(const char *store, const char *dirs, const char **ret_dir) {
        Config c;
        ASSERT_OK(config_init(&c));
        ASSERT_OK(config_set(&c, "store", store));
        ASSERT_OK(config_set(&c, "allowed_restore_dirs", dirs));
        int r = config_check(&c, ret_dir);
        static char bad[256];
        if (*ret_dir) { /* it points into c */
                snprintf(bad, sizeof(bad), "%s", *ret_dir);
                *ret_dir = bad;
        }
        config_done(&c);
        return r;
}

TEST(config_refuses_restore_dirs_over_the_store) {
        char d[] = "/tmp/test-daemon-cfgstore.XXXXXX";
        tree_setup(d);
        char store[128], dirs[1024], p[512], q[512];
        const char *bad = NULL;
        snprintf(store, sizeof(store), "%s/store", d);

        /* The store does not exist yet: compared by name. */
        snprintf(dirs, sizeof(dirs), "%s/allowed", d);
        ASSERT_OK(check_dirs(store, dirs, &bad));
        ASSERT_ERROR(check_dirs(store, d, &bad), EINVAL); /* contains it */
        ASSERT_STREQ(bad, d);
        ASSERT_ERROR(check_dirs(store, store, &bad), EINVAL); /* is it */
        snprintf(dirs, sizeof(dirs), "%s/allowed:%s/checkpoints", d, store);
        ASSERT_ERROR(check_dirs(store, dirs, &bad), EINVAL); /* inside it */
        snprintf(p, sizeof(p), "%s/checkpoints", store);
        ASSERT_STREQ(bad, p);
        ASSERT_ERROR(check_dirs(store, "/", &bad), EINVAL);

        /* Through symlinks, on either side. */
        tree_make_store(d);
        snprintf(p, sizeof(p), "%s/link", d);
        ASSERT_OK(symlink(store, p) < 0 ? -errno : 0);
        snprintf(dirs, sizeof(dirs), "%s/link/checkpoints", d);
        ASSERT_ERROR(check_dirs(store, dirs, &bad), EINVAL);
        snprintf(q, sizeof(q), "%s/allowed", d);
        ASSERT_OK(check_dirs(p, q, &bad)); /* store given as the link */
        snprintf(dirs, sizeof(dirs), "%s/store/checkpoints", d);
        ASSERT_ERROR(check_dirs(p, dirs, &bad), EINVAL);
        snprintf(dirs, sizeof(dirs), "%s/link/not-yet/created", d);
        ASSERT_ERROR(check_dirs(store, dirs, &bad), EINVAL);
        ASSERT_OK(remove_tree_one_fs(d));
}

TEST(host_path_never_in_the_store) {
        char d[] = "/tmp/test-daemon-hostpath.XXXXXX";
        tree_setup(d);
        tree_make_store(d);
        char store[128], p[512], q[512];
        snprintf(store, sizeof(store), "%s/store", d);
        char *dirs[] = {d, NULL}; /* a configuration config_check() refuses, here on purpose */
        char *image = NULL;
        const char *why = NULL;

        /* An ordinary checkpoint directory below an allowed dir. */
        snprintf(p, sizeof(p), "%s/allowed/ok/checkpoint", d);
        ASSERT_OK(mkdir_p(p, 0700));
        snprintf(q, sizeof(q), "%s/allowed/ok", d);
        ASSERT_OK(host_path_check(q, dirs, store, &image, &why));
        ASSERT_STREQ(image, p);
        free(image);
        image = NULL;

        /* The store's own checkpoint, its directories, the store itself. */
        snprintf(p, sizeof(p), "%s/checkpoints/0123456789abcdef0123456789abcdef", store);
        ASSERT_ERROR(host_path_check(p, dirs, store, &image, &why), EACCES);
        ASSERT_TRUE(strstr(why, "checkpoint store") != NULL);
        snprintf(p, sizeof(p), "%s/checkpoints", store);
        ASSERT_ERROR(host_path_check(p, dirs, store, &image, &why), EACCES);
        ASSERT_ERROR(host_path_check(store, dirs, store, &image, &why), EACCES);
        ASSERT_ERROR(host_path_check(d, dirs, store, &image, &why), EACCES); /* above the store */

        /* A symlink into the store, as the path or as its checkpoint/. */
        snprintf(p, sizeof(p), "%s/checkpoints/0123456789abcdef0123456789abcdef", store);
        snprintf(q, sizeof(q), "%s/allowed/ln", d);
        ASSERT_OK(symlink(p, q) < 0 ? -errno : 0);
        ASSERT_ERROR(host_path_check(q, dirs, store, &image, &why), EACCES);
        snprintf(q, sizeof(q), "%s/allowed/sub", d);
        ASSERT_OK(mkdir_p(q, 0700));
        strcat(p, "/checkpoint");
        strcat(q, "/checkpoint");
        ASSERT_OK(symlink(p, q) < 0 ? -errno : 0);
        snprintf(q, sizeof(q), "%s/allowed/sub", d);
        ASSERT_ERROR(host_path_check(q, dirs, store, &image, &why), EACCES);
        /* A store given through a symlink still counts as the store. */
        snprintf(q, sizeof(q), "%s/store-link", d);
        ASSERT_OK(symlink(store, q) < 0 ? -errno : 0);
        snprintf(p, sizeof(p), "%s/checkpoints/0123456789abcdef0123456789abcdef", store);
        ASSERT_ERROR(host_path_check(p, dirs, q, &image, &why), EACCES);
        ASSERT_NULL(image);

        /* A bind mount of the store's checkpoints/ below an allowed dir. */
        if (geteuid() == 0 && unshare(CLONE_NEWNS) >= 0 &&
            mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) >= 0) {
                char allowed[512];
                snprintf(allowed, sizeof(allowed), "%s/allowed", d);
                char *only[] = {allowed, NULL};
                snprintf(q, sizeof(q), "%s/allowed/bm", d);
                ASSERT_OK(mkdir_p(q, 0700));
                snprintf(p, sizeof(p), "%s/checkpoints", store);
                ASSERT_OK(mount(p, q, NULL, MS_BIND, NULL) < 0 ? -errno : 0);
                strcat(q, "/0123456789abcdef0123456789abcdef");
                ASSERT_ERROR(host_path_check(q, only, store, &image, &why), EACCES);
                ASSERT_TRUE(strstr(why, "checkpoint store") != NULL);
        }
        ASSERT_OK(remove_tree_one_fs(d));
}

static bool rules_allow(const char *value, const char *repository, const char *ns) {
        PullRule *rules = NULL;
        size_t n = 0;
        const char *why = NULL;
        if (pull_rules_parse(value, &rules, &n, &why) < 0)
                return false;
        bool ok = pull_allowed(rules, n, repository, ns);
        pull_rules_free(rules, n);
        return ok;
}

static const char *rules_reason(const char *value) {
        PullRule *rules = NULL;
        size_t n = 0;
        const char *why = NULL;
        if (pull_rules_parse(value, &rules, &n, &why) >= 0) {
                pull_rules_free(rules, n);
                return ""; /* strstr() finds nothing in it */
        }
        return why;
}

TEST(pull_rules_parse) {
        PullRule *rules = NULL;
        size_t n = 99;
        const char *why = NULL;
        ASSERT_OK(pull_rules_parse("", &rules, &n, &why));
        ASSERT_EQ(n, 0u);
        pull_rules_free(rules, n);
        ASSERT_OK(pull_rules_parse("  reg.local/ckpt/team-a=team-a,team-b\t127.0.0.1:5000=*  ", &rules, &n,
                                   &why));
        ASSERT_EQ(n, 2u);
        ASSERT_STREQ(rules[0].prefix, "reg.local/ckpt/team-a");
        ASSERT_STREQ(rules[0].namespaces[0], "team-a");
        ASSERT_STREQ(rules[0].namespaces[1], "team-b");
        ASSERT_NULL(rules[0].namespaces[2]);
        ASSERT_STREQ(rules[1].prefix, "127.0.0.1:5000");
        ASSERT_STREQ(rules[1].namespaces[0], "*");
        pull_rules_free(rules, n);

        /* Each kind of bad rule, with its reason. */
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/ckpt"), "no '=' found"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/ckpt="), "namespaces"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/ckpt=a,,b"), "namespaces"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/ckpt=a,"), "namespaces"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/ckpt=a/b"), "namespaces"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/ckpt=a,*"), "stands alone"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/ckpt=*,a"), "stands alone"));
        ASSERT_NOT_NULL(strstr(rules_reason("=a"), "repository prefix"));
        ASSERT_NOT_NULL(strstr(rules_reason("ckpt/team-a=a"), "repository prefix")); /* no registry host */
        ASSERT_NOT_NULL(strstr(rules_reason("team-a=a"), "repository prefix"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/ckpt/=a"), "repository prefix"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/ckpt:v1=a"), "repository prefix"));
        ASSERT_NOT_NULL(
                strstr(rules_reason("reg.local/ckpt@sha256:"
                                    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef=a"),
                       "repository prefix"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/Ckpt=a"), "repository prefix"));
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local//ckpt=a"), "repository prefix"));
        /* One bad rule spoils the list. */
        ASSERT_NOT_NULL(strstr(rules_reason("reg.local/a=x reg.local/b"), "no '=' found"));
}

TEST(pull_rules_match) {
        const char *rules = "reg.local/ckpt/team-a=team-a,shared reg.local:5000=* localhost/x=dev";
        /* Whole path components. */
        ASSERT_TRUE(rules_allow(rules, "reg.local/ckpt/team-a", "team-a"));
        ASSERT_TRUE(rules_allow(rules, "reg.local/ckpt/team-a/web", "team-a"));
        ASSERT_TRUE(rules_allow(rules, "reg.local/ckpt/team-a/web", "shared"));
        ASSERT_FALSE(rules_allow(rules, "reg.local/ckpt/team-ab", "team-a"));
        ASSERT_FALSE(rules_allow(rules, "reg.local/ckpt", "team-a"));
        ASSERT_FALSE(rules_allow(rules, "reg.local/ckpt/team-a/web", "team-b"));
        ASSERT_FALSE(rules_allow(rules, "reg.local/ckpt/team-a/web", "team"));
        ASSERT_FALSE(rules_allow(rules, "other.local/ckpt/team-a", "team-a"));
        /* A host prefix: the registry's every repository; the port is part of it. */
        ASSERT_TRUE(rules_allow(rules, "reg.local:5000/anything/deep", "any-ns"));
        ASSERT_FALSE(rules_allow(rules, "reg.local:50000/anything", "any-ns"));
        ASSERT_FALSE(rules_allow(rules, "reg.local/anything", "any-ns"));
        ASSERT_TRUE(rules_allow(rules, "localhost/x/y", "dev"));
        ASSERT_FALSE(rules_allow(rules, "localhost/xy", "dev"));
        /* No namespace, no rules: never. */
        ASSERT_FALSE(rules_allow(rules, "reg.local:5000/a", ""));
        ASSERT_FALSE(rules_allow(rules, "reg.local:5000/a", NULL));
        ASSERT_FALSE(rules_allow("", "reg.local:5000/a", "default"));
        ASSERT_FALSE(pull_allowed(NULL, 0, "reg.local:5000/a", "default"));

        /* The target's Kubernetes namespace first, else its containerd one. */
        RestoreIdentity t = {.containerd_namespace = "k8s.io", .k8s_namespace = "team-a"};
        ASSERT_STREQ(pull_target_namespace(&t), "team-a");
        t.k8s_namespace = "";
        ASSERT_STREQ(pull_target_namespace(&t), "k8s.io");
        t.containerd_namespace = NULL;
        ASSERT_NULL(pull_target_namespace(&t));
}

TEST(config_pull_keys) {
        Config c;
        unsigned line = 0;
        ASSERT_OK(config_init(&c));
        ASSERT_EQ(c.n_pull_rules, 0u); /* pulling is off by default */
        ASSERT_FALSE(c.registry_insecure);
        ASSERT_OK(config_parse(&c,
                               "pull_allow = reg.local/ckpt=a,b 127.0.0.1:5000=*\n"
                               "registry_authfile = /etc/kybernate/auth.json\n"
                               "registry_cert_dir = /etc/kybernate/certs\n"
                               "registry_insecure = yes\n",
                               &line));
        ASSERT_EQ(c.n_pull_rules, 2u);
        ASSERT_TRUE(pull_allowed(c.pull_rules, c.n_pull_rules, "reg.local/ckpt/web", "b"));
        ASSERT_STREQ(c.registry_authfile, "/etc/kybernate/auth.json");
        ASSERT_STREQ(c.registry_cert_dir, "/etc/kybernate/certs");
        ASSERT_TRUE(c.registry_insecure);
        /* A bad rule is a configuration error on its line, saying why; the
         * rules before it stay. */
        ASSERT_ERROR(config_parse(&c, "\n# rules\npull_allow = reg.local/ckpt=a ckpt=b\n", &line), EINVAL);
        ASSERT_EQ(line, 3u);
        ASSERT_NOT_NULL(c.error);
        ASSERT_NOT_NULL(strstr(c.error, "pull_allow"));
        ASSERT_EQ(c.n_pull_rules, 2u);
        ASSERT_ERROR(config_set(&c, "registry_cert_dir", "certs"), EINVAL);
        ASSERT_ERROR(config_set(&c, "registry_insecure", "maybe"), EINVAL);
        /* An empty value turns pulling off again. */
        ASSERT_OK(config_set(&c, "pull_allow", ""));
        ASSERT_EQ(c.n_pull_rules, 0u);
        config_done(&c);
}

TEST(config_push_to) {
        Config c;
        ASSERT_OK(config_init(&c));
        ASSERT_NULL(c.push_to); /* nothing is pushed by default */
        ASSERT_OK(config_set(&c, "push_to", "127.0.0.1:5000/ckpt/node-a"));
        ASSERT_STREQ(c.push_to, "127.0.0.1:5000/ckpt/node-a");
        ASSERT_OK(config_set(&c, "push_to", "reg.local/ckpt"));
        ASSERT_STREQ(c.push_to, "reg.local/ckpt");
        /* A repository: no tag (the checkpoint id is the tag), no digest, a registry host. */
        ASSERT_ERROR(config_set(&c, "push_to", "reg.local/ckpt:v1"), EINVAL);
        ASSERT_NOT_NULL(c.error);
        ASSERT_NOT_NULL(strstr(c.error, "push_to"));
        ASSERT_ERROR(
                config_set(
                        &c, "push_to",
                        "reg.local/ckpt@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
                EINVAL);
        ASSERT_ERROR(config_set(&c, "push_to", "ckpt/node-a"), EINVAL);
        ASSERT_NOT_NULL(c.error);
        ASSERT_ERROR(config_set(&c, "push_to", "reg.local/Ckpt"), EINVAL);
        ASSERT_STREQ(c.push_to, "reg.local/ckpt"); /* unchanged by the refusals */
        ASSERT_OK(config_set(&c, "push_to", ""));
        ASSERT_NULL(c.push_to);
        config_done(&c);
}
