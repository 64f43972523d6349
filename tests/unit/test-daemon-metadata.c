/* SPDX-License-Identifier: Apache-2.0 */
#include <cJSON.h>

#include "kybernated/metadata.h"
#include "kybernated/store.h"
#include "mount-util.h"
#include "test.h"

TEST(runc_state_both_formats) {
        _cleanup_free_ char *b1 = NULL, *c1 = NULL, *b2 = NULL, *c2 = NULL;
        ASSERT_OK(metadata_parse_runc_state(
                "{\"id\":\"x\",\"bundle\":\"/run/b\",\"created\":\"2026-01-01T00:00:00Z\"}", &b1, &c1));
        ASSERT_STREQ(b1, "/run/b");
        ASSERT_STREQ(c1, "2026-01-01T00:00:00Z");
        ASSERT_OK(
                metadata_parse_runc_state("{\"id\":\"x\",\"created\":\"t\",\"config\":{\"labels\":[\"a=b\","
                                          "\"bundle=/var/run/bundle\"]}}",
                                          &b2, &c2));
        ASSERT_STREQ(b2, "/var/run/bundle");
        char *b, *c;
        ASSERT_ERROR(metadata_parse_runc_state("{\"bundle\":\"relative\"}", &b, &c), EBADMSG);
        ASSERT_ERROR(metadata_parse_runc_state("not json", &b, &c), EBADMSG);
        ASSERT_ERROR(metadata_parse_runc_state("{}", &b, &c), EBADMSG);
}

/* Frozen or not: `runc state`'s status, else state.json's freezer cgroup,
 * read only below /sys/fs/cgroup. */
TEST(runc_state_frozen) {
        ASSERT_EQ(metadata_runc_state_frozen("{\"status\":\"paused\"}"), 1);
        ASSERT_EQ(metadata_runc_state_frozen("{\"status\":\"running\"}"), 0);
        ASSERT_ERROR(metadata_runc_state_frozen("{\"cgroup_paths\":{\"freezer\":\"/etc\"}}"), ENODATA);
        ASSERT_ERROR(
                metadata_runc_state_frozen("{\"cgroup_paths\":{\"freezer\":\"/sys/fs/cgroup/../../etc\"}}"),
                ENODATA);
        ASSERT_ERROR(
                metadata_runc_state_frozen("{\"cgroup_paths\":{\"\":\"/sys/fs/cgroup/no/such/group\"}}"),
                ENODATA);
        ASSERT_ERROR(metadata_runc_state_frozen("{}"), ENODATA);
        ASSERT_ERROR(metadata_runc_state_frozen("[1"), EBADMSG);
}

TEST(spec_annotations) {
        CatalogEntry e = {};
        ASSERT_OK(metadata_from_spec("{\"annotations\":{"
                                     "\"io.kubernetes.cri.sandbox-namespace\":\"team\","
                                     "\"io.kubernetes.cri.sandbox-name\":\"web-0\","
                                     "\"io.kubernetes.cri.container-name\":\"nginx\","
                                     "\"io.kubernetes.cri.image-name\":\"docker.io/library/nginx:1.25\"}}",
                                     &e));
        ASSERT_STREQ(e.k8s_namespace, "team");
        ASSERT_STREQ(e.k8s_pod, "web-0");
        ASSERT_STREQ(e.k8s_container, "nginx");
        ASSERT_STREQ(e.image_ref, "docker.io/library/nginx:1.25");
        catalog_entry_done(&e);

        /* CRI-O / dockershim style keys. */
        ASSERT_OK(metadata_from_spec(
                "{\"annotations\":{\"io.kubernetes.pod.namespace\":\"ns2\","
                "\"io.kubernetes.pod.name\":\"p2\",\"io.kubernetes.container.name\":\"c2\"}}",
                &e));
        ASSERT_STREQ(e.k8s_namespace, "ns2");
        ASSERT_STREQ(e.k8s_pod, "p2");
        ASSERT_STREQ(e.k8s_container, "c2");
        catalog_entry_done(&e);

        /* Invalid names are ignored, not trusted. */
        ASSERT_OK(metadata_from_spec("{\"annotations\":{\"io.kubernetes.cri.sandbox-namespace\":\"../x\"}}",
                                     &e));
        ASSERT_NULL(e.k8s_namespace);
        /* No annotations: nothing set; not JSON: an error. */
        ASSERT_OK(metadata_from_spec("{}", &e));
        ASSERT_ERROR(metadata_from_spec("[", &e), EBADMSG);
        catalog_entry_done(&e);
}

TEST(kybernate_json_round_trip) {
        const char *d = test_tmpdir();
        CatalogEntry e = {.id = (char *)"0123456789abcdef0123456789abcdef",
                          .containerd_namespace = (char *)"default",
                          .k8s_namespace = (char *)"team",
                          .k8s_pod = (char *)"p",
                          .k8s_container = (char *)"c",
                          .container_id = (char *)"cid",
                          .image_ref = (char *)"img:1",
                          .created_ns = 1700000000123456789LL,
                          .options = CKPT_OPT_TCP_ESTABLISHED | CKPT_OPT_FILE_LOCKS};
        ASSERT_OK(metadata_write_kybernate_json(d, &e, false));
        ASSERT_OK(metadata_write_config_dump(d, &e, "2026-01-01T00:00:00Z", false));

        CatalogEntry back = {};
        ASSERT_OK(metadata_read_kybernate_json(d, &back));
        ASSERT_STREQ(back.containerd_namespace, "default");
        ASSERT_STREQ(back.k8s_namespace, "team");
        ASSERT_STREQ(back.container_id, "cid");
        ASSERT_STREQ(back.image_ref, "img:1");
        ASSERT_EQ(back.options, CKPT_OPT_TCP_ESTABLISHED | CKPT_OPT_FILE_LOCKS);
        catalog_entry_done(&back);

        char p[256];
        _cleanup_free_ char *text = NULL;
        snprintf(p, sizeof(p), "%s/config.dump", d);
        ASSERT_OK(read_full_file(p, 65536, &text, NULL));
        ASSERT_TRUE(strstr(text, "\"id\":\t\"cid\"") || strstr(text, "\"id\": \"cid\"") ||
                    strstr(text, "cid"));
        ASSERT_TRUE(strstr(text, "\"createdTime\"") != NULL);
        ASSERT_TRUE(strstr(text, "2026-01-01T00:00:00Z") != NULL);
        ASSERT_TRUE(strstr(text, "\"rootfsImageName\"") != NULL);

        ASSERT_OK(store_sync_tree(d));
        ASSERT_OK(remove_tree_one_fs(d));
}

/* An import rewrites the archive's kybernate.json keeping its rootfsDiff:
 * only the members we write, so that what was 10 KiB (fuzz-json's input: a
 * subtree nested 990 deep, indented when printed) is no longer over the
 * 1 MiB its reader takes. */
TEST(kybernate_json_rewrite_rootfs_diff) {
        const char *d = test_tmpdir();
        char p[512];
        snprintf(p, sizeof(p), "%s/kybernate.json", d);
        size_t cap = 64 * 1024, n = 0;
        _cleanup_free_ char *text = malloc(cap);
        ASSERT_NOT_NULL(text);
        n += (size_t)snprintf(text + n, cap - n,
                              "{\"containerId\":\"old\",\"rootfsDiff\":{\"captured\":true,"
                              "\"upperdir\":\"/var/lib/u\",\"note\":\"a\\nb\",\"entries\":7,"
                              "\"rootfs\":{\"not\":\"a string\"},\"deep\":");
        for (int i = 0; i < 990; i++)
                n += (size_t)snprintf(text + n, cap - n, "{\"\":");
        n += (size_t)snprintf(text + n, cap - n, "{");
        for (int i = 0; i < 1100; i++)
                n += (size_t)snprintf(text + n, cap - n, "%s\"\":0", i ? "," : "");
        for (int i = 0; i < 991; i++)
                n += (size_t)snprintf(text + n, cap - n, "}");
        n += (size_t)snprintf(text + n, cap - n, "}}");
        ASSERT_TRUE(n < cap - 1);
        ASSERT_OK(write_file_replace(p, text, n, 0600, false));

        CatalogEntry e = {.id = (char *)"0123456789abcdef0123456789abcdef", .container_id = (char *)"cid"};
        ASSERT_OK(metadata_write_kybernate_json(d, &e, false));
        CatalogEntry back = {};
        ASSERT_OK(metadata_read_kybernate_json(d, &back));
        ASSERT_STREQ(back.container_id, "cid");
        catalog_entry_done(&back);

        _cleanup_free_ char *out = NULL;
        size_t len;
        ASSERT_OK(read_full_file(p, 1 << 20, &out, &len));
        ASSERT_TRUE(len < 4096);
        cJSON *j = cJSON_Parse(out);
        const cJSON *diff = cJSON_GetObjectItemCaseSensitive(j, "rootfsDiff");
        ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(diff, "captured")));
        ASSERT_STREQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(diff, "upperdir")), "/var/lib/u");
        ASSERT_EQ(cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(diff, "entries")), 7);
        ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(diff, "deep"));
        ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(diff, "rootfs"));
        ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(diff, "note")); /* a control character */
        cJSON_Delete(j);
        ASSERT_OK(remove_tree_one_fs(d));
}

/* config.dump's rootfsImageRef: what containerd 2.x pulls as the base image. */
TEST(base_image_ref) {
        static const char dig[] = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char *s;
        ASSERT_OK(metadata_base_image_ref("127.0.0.1:5000/kyb/busybox:v1", dig, &s));
        ASSERT_STREQ(s, "127.0.0.1:5000/kyb/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef"
                        "0123456789abcdef");
        free(s);
        /* No digest known: the tag as recorded. */
        ASSERT_OK(metadata_base_image_ref("docker.io/library/nginx:1.25", NULL, &s));
        ASSERT_STREQ(s, "docker.io/library/nginx:1.25");
        free(s);
        ASSERT_OK(metadata_base_image_ref("docker.io/library/nginx:1.25", "sha256:short", &s));
        ASSERT_STREQ(s, "docker.io/library/nginx:1.25");
        free(s);
        /* A reference with its own digest is kept. */
        ASSERT_OK(metadata_base_image_ref(
                "r.io/a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                "abcdef",
                dig, &s));
        ASSERT_TRUE(startswith(s, "r.io/a@sha256:"));
        free(s);
        /* No registry host: kept as is. */
        ASSERT_OK(metadata_base_image_ref("busybox:1", dig, &s));
        ASSERT_STREQ(s, "busybox:1");
        free(s);
        ASSERT_OK(metadata_base_image_ref(NULL, dig, &s));
        ASSERT_NULL(s);
}

static cJSON *read_dump(const char *d, const char *f) {
        char p[512];
        _cleanup_free_ char *text = NULL;
        snprintf(p, sizeof(p), "%s/%s", d, f);
        if (read_full_file(p, 1 << 20, &text, NULL) < 0)
                return NULL;
        return cJSON_Parse(text);
}

static const char *str_at(const cJSON *o, const char *a, const char *b) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
        if (b)
                v = cJSON_GetObjectItemCaseSensitive(v, b);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* status.dump (CRI's ContainerStatus as containerd 2.x reads it) beside
 * config.dump, whose rootfsImageRef is a pullable reference. */
TEST(status_dump) {
        const char *d = test_tmpdir();
        char p[512];
        snprintf(p, sizeof(p), "%s/spec.dump", d);
        static const char spec[] = "{\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"abc\","
                                   "\"io.containerd.x\":\"y\",\"io.kubernetes.container.hash\":\"1234\"}}";
        ASSERT_OK(write_file_replace(p, spec, strlen(spec), 0600, false));
        CatalogEntry e = {.id = (char *)"0123456789abcdef0123456789abcdef",
                          .k8s_namespace = (char *)"team",
                          .k8s_pod = (char *)"web-0",
                          .k8s_container = (char *)"main",
                          .container_id = (char *)"cid",
                          .image_ref = (char *)"127.0.0.1:5000/kyb/busybox:v1",
                          .image_digest =
                                  (char *)"sha256:0123456789abcdef0123456789abcdef0123456789abcdef01234"
                                          "56789abcdef",
                          .created_ns = 1700000000123456789LL};
        ASSERT_OK(metadata_write_config_dump(d, &e, "2026-01-01T00:00:00Z", false));

        cJSON *c = read_dump(d, "config.dump"), *st = read_dump(d, "status.dump");
        ASSERT_NOT_NULL(c);
        ASSERT_NOT_NULL(st);
        static const char pinned[] =
                "127.0.0.1:5000/kyb/busybox@sha256:0123456789abcdef0123456789abcdef01234567"
                "89abcdef0123456789abcdef";
        ASSERT_STREQ(str_at(c, "rootfsImageRef", NULL), pinned);
        ASSERT_STREQ(str_at(c, "rootfsImageName", NULL), "127.0.0.1:5000/kyb/busybox:v1");
        ASSERT_STREQ(str_at(st, "id", NULL), "cid");
        ASSERT_STREQ(str_at(st, "metadata", "name"), "main");
        ASSERT_EQ(cJSON_GetObjectItemCaseSensitive(st, "state")->valueint, 1);
        ASSERT_STREQ(str_at(st, "image", "image"), "127.0.0.1:5000/kyb/busybox:v1");
        ASSERT_STREQ(str_at(st, "image_ref", NULL), pinned);
        ASSERT_STREQ(str_at(st, "labels", "io.kubernetes.pod.namespace"), "team");
        ASSERT_STREQ(str_at(st, "labels", "io.kubernetes.pod.name"), "web-0");
        ASSERT_STREQ(str_at(st, "labels", "io.kubernetes.container.name"), "main");
        /* The container's annotations, not CRI's own. */
        ASSERT_STREQ(str_at(st, "annotations", "io.kubernetes.container.hash"), "1234");
        ASSERT_NULL(str_at(st, "annotations", "io.kubernetes.cri.sandbox-id"));
        ASSERT_NULL(str_at(st, "annotations", "io.containerd.x"));
        cJSON_Delete(c);
        cJSON_Delete(st);

        /* A plain container (no spec.dump, no Kubernetes names). */
        ASSERT_OK(unlink(p) < 0 ? -errno : 0);
        CatalogEntry plain = {.id = e.id, .container_id = (char *)"c2", .created_ns = 1};
        ASSERT_OK(metadata_write_config_dump(d, &plain, NULL, false));
        st = read_dump(d, "status.dump");
        ASSERT_NOT_NULL(st);
        ASSERT_STREQ(str_at(st, "metadata", "name"), "c2");
        ASSERT_STREQ(str_at(st, "image_ref", NULL), "");
        ASSERT_TRUE(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(st, "annotations")));
        cJSON_Delete(st);
        ASSERT_OK(remove_tree_one_fs(d));
}

#define ID1 "0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210"

/* pod.json as written, and as an imported archive may carry it. */
TEST(pod_json_round_trip) {
        const char *dir = test_tmpdir();
        PodManifestMember mm[] = {
                {.container = (char *)"web", .id = (char *)ID1, .container_id = (char *)"c1"},
                {.container = (char *)"side", .id = (char *)ID2, .container_id = (char *)"c2"}};
        PodManifest w = {.sandbox_id = (char *)"sb",
                         .pod_cgroup = (char *)"/kubepods/pod1",
                         .frozen_usec = 1234,
                         .members = mm,
                         .n = 2};
        ASSERT_OK(metadata_write_pod_json(dir, &w, false));
        _cleanup_free_ char *path = strdup_printf("%s/pod.json", dir), *text = NULL;
        ASSERT_OK(read_full_file(path, 1 << 20, &text, NULL));
        PodManifest r = {};
        ASSERT_OK(metadata_parse_pod_json(text, &r));
        ASSERT_STREQ(r.sandbox_id, "sb");
        ASSERT_STREQ(r.pod_cgroup, "/kubepods/pod1");
        ASSERT_EQ(r.frozen_usec, 1234u);
        ASSERT_EQ(r.n, 2u);
        ASSERT_STREQ(r.members[0].container, "web");
        ASSERT_STREQ(r.members[0].id, ID1);
        ASSERT_STREQ(r.members[1].container, "side");
        ASSERT_STREQ(r.members[1].container_id, "c2");
        pod_manifest_done(&r);
        ASSERT_EQ(r.n, 0u);
}

TEST(pod_json_refused) {
        static const char *const bad[] = {
                "not json",
                "[]",
                "{\"version\":2,\"sandboxId\":\"sb\",\"members\":[{\"container\":\"a\",\"id\":\"" ID1
                "\",\"containerId\":\"c\"}]}",
                /* no members */
                "{\"version\":1,\"sandboxId\":\"sb\",\"members\":[]}",
                /* a container name that would leave members/ */
                "{\"version\":1,\"sandboxId\":\"sb\",\"members\":[{\"container\":\"..\",\"id\":\"" ID1
                "\",\"containerId\":\"c\"}]}",
                "{\"version\":1,\"sandboxId\":\"sb\",\"members\":[{\"container\":\"a/b\",\"id\":\"" ID1
                "\",\"containerId\":\"c\"}]}",
                /* a bad member id */
                "{\"version\":1,\"sandboxId\":\"sb\",\"members\":[{\"container\":\"a\",\"id\":\"XYZ\","
                "\"containerId\":\"c\"}]}",
                /* the same container twice */
                "{\"version\":1,\"sandboxId\":\"sb\",\"members\":[{\"container\":\"a\",\"id\":\"" ID1
                "\",\"containerId\":\"c\"},{\"container\":\"a\",\"id\":\"" ID2 "\",\"containerId\":\"d\"}]}",
                /* no sandbox id, a member missing its container id, a negative freeze */
                "{\"version\":1,\"members\":[{\"container\":\"a\",\"id\":\"" ID1
                "\",\"containerId\":\"c\"}]}",
                "{\"version\":1,\"sandboxId\":\"sb\",\"members\":[{\"container\":\"a\",\"id\":\"" ID1
                "\"}]}",
                "{\"version\":1,\"sandboxId\":\"sb\",\"frozenUsec\":-1,\"members\":[{\"container\":\"a\","
                "\"id\":\"" ID1 "\",\"containerId\":\"c\"}]}",
                "{\"version\":1,\"sandboxId\":\"sb\",\"podCgroup\":\"relative\",\"members\":[{\"container\":"
                "\"a\",\"id\":\"" ID1 "\",\"containerId\":\"c\"}]}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                PodManifest r = {};
                ASSERT_ERROR(metadata_parse_pod_json(bad[i], &r), EBADMSG);
                ASSERT_EQ(r.n, 0u);
        }
        /* 65 members: more than a pod checkpoint ever has. */
        _cleanup_free_ char *many = strdup("{\"version\":1,\"sandboxId\":\"sb\",\"members\":[");
        for (int i = 0; i <= POD_MAX_MEMBERS; i++) {
                char *n = strdup_printf("%s%s{\"container\":\"c%d\",\"id\":\"%032x\",\"containerId\":\"x\"}",
                                        many, i ? "," : "", i, i);
                ASSERT_NOT_NULL(n);
                free(many);
                many = n;
        }
        char *all = strdup_printf("%s]}", many);
        PodManifest r = {};
        ASSERT_ERROR(metadata_parse_pod_json(all, &r), EBADMSG);
        free(all);
}
