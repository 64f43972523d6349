/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <sys/wait.h>

#include "kybernated/catalog.h"
#include "test.h"

static CatalogEntry entry(const char *id, const char *name, const char *ns, const char *pod,
                          int64_t created) {
        return (CatalogEntry){
                .id = (char *)id,
                .name = (char *)name,
                .state = CHECKPOINT_READY,
                .containerd_namespace = (char *)"k8s.io",
                .k8s_namespace = (char *)ns,
                .k8s_pod = (char *)pod,
                .k8s_container = (char *)"app",
                .container_id = (char *)"c1",
                .image_ref = (char *)"docker.io/library/busybox:latest",
                .created_ns = created,
                .size_bytes = 1000,
                .options = CKPT_OPT_LEAVE_RUNNING | CKPT_OPT_FILE_LOCKS,
                .checksum = (char *)"sha256:00",
                .bundle = (char *)"/run/bundle",
                .durable = true,
        };
}

static int count_cb(const CatalogEntry *e, void *userdata) {
        (*(int *)userdata)++;
        return 0;
}

TEST(open_memory_schema) {
        _cleanup_(catalog_closep) Catalog *c = NULL;
        ASSERT_OK(catalog_open(":memory:", true, &c));
        ASSERT_EQ(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
}

TEST(migration_from_v1_keeps_rows) {
        char db[256];
        snprintf(db, sizeof(db), "%s/catalog.db", test_tmpdir());

        Catalog *c = NULL;
        ASSERT_OK(catalog_open_at_version(db, true, 1, &c));
        ASSERT_EQ(catalog_schema_version(c), 1);
        ASSERT_OK(catalog_exec(c, "INSERT INTO checkpoints (id, state, created_ns, k8s_namespace) "
                                  "VALUES ('0123456789abcdef0123456789abcdef', 2, 42, 'old')"));
        catalog_close(c);

        ASSERT_OK(catalog_open(db, true, &c));
        ASSERT_EQ(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
        CatalogEntry e = {};
        ASSERT_OK(catalog_get(c, "0123456789abcdef0123456789abcdef", &e));
        ASSERT_STREQ(e.k8s_namespace, "old");
        ASSERT_EQ(e.created_ns, 42);
        ASSERT_STREQ(e.bundle, ""); /* v2 column with its default */
        ASSERT_EQ(e.last_restored_ns, 0);
        catalog_entry_done(&e);
        catalog_close(c);

        /* A catalog from a newer daemon is refused. */
        ASSERT_OK(catalog_open(db, true, &c));
        ASSERT_OK(catalog_exec(c, "UPDATE schema_version SET version = 99"));
        catalog_close(c);
        ASSERT_ERROR(catalog_open(db, true, &c), EPROTONOSUPPORT);
}

TEST(insert_get_fields) {
        _cleanup_(catalog_closep) Catalog *c = NULL;
        ASSERT_OK(catalog_open(":memory:", false, &c));
        CatalogEntry in = entry("aaaa0000000000000000000000000001", "first", "tenant-a", "pod-a", 100);
        in.pinned = true;
        in.allow_cross_namespace = true;
        in.restore_count = 3;
        ASSERT_OK(catalog_insert(c, &in));

        CatalogEntry e = {};
        ASSERT_OK(catalog_get(c, in.id, &e));
        ASSERT_STREQ(e.id, in.id);
        ASSERT_STREQ(e.name, "first");
        ASSERT_EQ(e.state, CHECKPOINT_READY);
        ASSERT_STREQ(e.containerd_namespace, "k8s.io");
        ASSERT_STREQ(e.k8s_namespace, "tenant-a");
        ASSERT_STREQ(e.k8s_pod, "pod-a");
        ASSERT_STREQ(e.k8s_container, "app");
        ASSERT_STREQ(e.image_ref, "docker.io/library/busybox:latest");
        ASSERT_EQ(e.created_ns, 100);
        ASSERT_EQ(e.size_bytes, 1000);
        ASSERT_EQ(e.options, CKPT_OPT_LEAVE_RUNNING | CKPT_OPT_FILE_LOCKS);
        ASSERT_TRUE(e.pinned);
        ASSERT_TRUE(e.allow_cross_namespace);
        ASSERT_TRUE(e.durable);
        ASSERT_EQ(e.restore_count, 3);
        ASSERT_STREQ(e.bundle, "/run/bundle");

        CatalogEntry copy = {};
        ASSERT_OK(catalog_entry_copy(&e, &copy));
        ASSERT_STREQ(copy.image_ref, e.image_ref);
        catalog_entry_done(&copy);
        catalog_entry_done(&e);

        ASSERT_ERROR(catalog_get(c, "aaaa0000000000000000000000000002", &e), ENOENT);
        /* Same id, and same name, are refused. */
        ASSERT_ERROR(catalog_insert(c, &in), EEXIST);
        CatalogEntry dup = entry("aaaa0000000000000000000000000002", "first", "x", "y", 1);
        ASSERT_ERROR(catalog_insert(c, &dup), EEXIST);
        /* Unnamed rows do not collide. */
        CatalogEntry u1 = entry("aaaa0000000000000000000000000003", NULL, "x", "y", 1);
        CatalogEntry u2 = entry("aaaa0000000000000000000000000004", "", "x", "y", 1);
        ASSERT_OK(catalog_insert(c, &u1));
        ASSERT_OK(catalog_insert(c, &u2));
        ASSERT_OK(catalog_get(c, u2.id, &e));
        ASSERT_NULL(e.name);
        catalog_entry_done(&e);
}

TEST(lookups) {
        _cleanup_(catalog_closep) Catalog *c = NULL;
        ASSERT_OK(catalog_open(":memory:", false, &c));
        CatalogEntry a = entry("abcd0000000000000000000000000001", "one", "t", "p", 100);
        CatalogEntry b = entry("abcd1000000000000000000000000002", "two", "t", "p", 200);
        CatalogEntry d = entry("ffff0000000000000000000000000003", NULL, "t", "p", 300);
        d.state = CHECKPOINT_PENDING;
        ASSERT_OK(catalog_insert(c, &a));
        ASSERT_OK(catalog_insert(c, &b));
        ASSERT_OK(catalog_insert(c, &d));

        CatalogEntry e = {};
        ASSERT_OK(catalog_get_by_name(c, "two", &e));
        ASSERT_STREQ(e.id, b.id);
        catalog_entry_done(&e);
        ASSERT_ERROR(catalog_get_by_name(c, "three", &e), ENOENT);

        ASSERT_ERROR(catalog_get_by_prefix(c, "abcd", &e), ENOTUNIQ);
        ASSERT_OK(catalog_get_by_prefix(c, "abcd1", &e));
        ASSERT_STREQ(e.id, b.id);
        catalog_entry_done(&e);
        ASSERT_ERROR(catalog_get_by_prefix(c, "abce", &e), ENOENT);
        ASSERT_ERROR(catalog_get_by_prefix(c, "ab%d", &e), EINVAL); /* no LIKE wildcards */
        ASSERT_ERROR(catalog_get_by_prefix(c, "", &e), EINVAL);

        /* Newest ready one: the pending row is newer but does not count. */
        ASSERT_OK(catalog_get_newest(c, "t", "p", "app", &e));
        ASSERT_STREQ(e.id, b.id);
        catalog_entry_done(&e);
        ASSERT_ERROR(catalog_get_newest(c, "t", "p", "other", &e), ENOENT);
}

TEST(updates) {
        _cleanup_(catalog_closep) Catalog *c = NULL;
        ASSERT_OK(catalog_open(":memory:", false, &c));
        CatalogEntry a = entry("abcd0000000000000000000000000001", NULL, "t", "p", 100);
        a.state = CHECKPOINT_PENDING;
        a.size_bytes = 0;
        ASSERT_OK(catalog_insert(c, &a));

        CatalogEntry e = {};
        ASSERT_OK(catalog_set_ready(c, a.id, 12345, "sha256:ff"));
        ASSERT_OK(catalog_get(c, a.id, &e));
        ASSERT_EQ(e.state, CHECKPOINT_READY);
        ASSERT_EQ(e.size_bytes, 12345);
        ASSERT_STREQ(e.checksum, "sha256:ff");
        catalog_entry_done(&e);

        ASSERT_OK(catalog_set_pinned(c, a.id, true));
        ASSERT_OK(catalog_record_restore(c, a.id, 777));
        ASSERT_OK(catalog_record_restore(c, a.id, 888));
        ASSERT_OK(catalog_set_state(c, a.id, CHECKPOINT_FAILED));
        ASSERT_OK(catalog_get(c, a.id, &e));
        ASSERT_TRUE(e.pinned);
        ASSERT_EQ(e.restore_count, 2);
        ASSERT_EQ(e.last_restored_ns, 888);
        ASSERT_EQ(e.state, CHECKPOINT_FAILED);
        catalog_entry_done(&e);

        ASSERT_OK(catalog_delete(c, a.id));
        ASSERT_ERROR(catalog_delete(c, a.id), ENOENT);
        ASSERT_ERROR(catalog_set_pinned(c, a.id, false), ENOENT);
        ASSERT_ERROR(catalog_record_restore(c, a.id, 1), ENOENT);
        ASSERT_ERROR(catalog_set_ready(c, a.id, 1, "x"), ENOENT);
}

/* The pending row's thaw mark and runc root: written with the insert (before
 * the pause), cleared by a failed pause and by the completed dump; a catalog
 * of schema 4 gets the columns with "nothing to thaw". */
TEST(thaw_mark) {
        _cleanup_(catalog_closep) Catalog *c = NULL;
        ASSERT_OK(catalog_open(":memory:", true, &c));
        CatalogEntry a = entry("abcd0000000000000000000000000002", NULL, "t", "p", 100);
        a.state = CHECKPOINT_PENDING;
        a.thaw = true;
        a.runc_root = (char *)"/run/containerd/runc/k8s.io";
        ASSERT_OK(catalog_insert(c, &a));

        CatalogEntry e = {}, copy = {};
        ASSERT_OK(catalog_get(c, a.id, &e));
        ASSERT_TRUE(e.thaw);
        ASSERT_STREQ(e.runc_root, "/run/containerd/runc/k8s.io");
        ASSERT_OK(catalog_entry_copy(&e, &copy));
        ASSERT_STREQ(copy.runc_root, e.runc_root);
        catalog_entry_done(&copy);
        catalog_entry_done(&e);

        ASSERT_OK(catalog_set_thaw(c, a.id, false));
        ASSERT_OK(catalog_get(c, a.id, &e));
        ASSERT_FALSE(e.thaw);
        catalog_entry_done(&e);
        ASSERT_OK(catalog_set_thaw(c, a.id, true));
        ASSERT_OK(catalog_set_dumped(c, a.id, "boot"));
        ASSERT_OK(catalog_get(c, a.id, &e));
        ASSERT_FALSE(e.thaw);
        ASSERT_STREQ(e.dumped_boot_id, "boot");
        catalog_entry_done(&e);
        ASSERT_ERROR(catalog_set_thaw(c, "abcd0000000000000000000000000009", true), ENOENT);

        char path[] = "/tmp/test-daemon-catalog.XXXXXX";
        ASSERT_NOT_NULL(mkdtemp(path));
        char db[256];
        snprintf(db, sizeof(db), "%s/catalog.db", path);
        Catalog *old = NULL;
        ASSERT_OK(catalog_open_at_version(db, true, 4, &old));
        ASSERT_OK(catalog_exec(old, "INSERT INTO checkpoints (id, state, created_ns) "
                                    "VALUES ('0123456789abcdef0123456789abcdef', 1, 42)"));
        catalog_close(old);
        ASSERT_OK(catalog_open(db, true, &old));
        ASSERT_EQ(catalog_schema_version(old), CATALOG_SCHEMA_VERSION);
        ASSERT_OK(catalog_get(old, "0123456789abcdef0123456789abcdef", &e));
        ASSERT_FALSE(e.thaw);
        ASSERT_STREQ(e.runc_root, "");
        catalog_entry_done(&e);
        catalog_close(old);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system %s", path);
        ASSERT_EQ(system(cmd), 0);
}

/* A catalog in the new temporary directory path (a mkdtemp() template)
 * holding one ready row 0123456789abcdef0123456789abcdef written by schema
 * version, migrated to the current schema; that row as it reads now in *ret. */
static Catalog *migrated_from(char *path, int version, CatalogEntry *ret) {
        ASSERT_NOT_NULL(mkdtemp(path));
        char db[256];
        snprintf(db, sizeof(db), "%s/catalog.db", path);
        Catalog *c = NULL;
        ASSERT_OK(catalog_open_at_version(db, true, version, &c));
        ASSERT_OK(catalog_exec(c, "INSERT INTO checkpoints (id, state, created_ns) "
                                  "VALUES ('0123456789abcdef0123456789abcdef', 2, 42)"));
        catalog_close(c);
        ASSERT_OK(catalog_open(db, true, &c));
        ASSERT_EQ(catalog_schema_version(c), CATALOG_SCHEMA_VERSION);
        ASSERT_OK(catalog_get(c, "0123456789abcdef0123456789abcdef", ret));
        return c;
}

static void remove_dir(const char *path) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system %s", path);
        ASSERT_EQ(system(cmd), 0);
}

TEST(source_image) {
        const char *img = "reg.local:5000/ckpt/web@sha256:"
                          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char path[] = "/tmp/test-daemon-catalog.XXXXXX";
        /* A row of schema 5 gets an empty source image. */
        CatalogEntry e = {};
        Catalog *c = migrated_from(path, 5, &e);
        ASSERT_STREQ(e.source_image, "");
        catalog_entry_done(&e);
        ASSERT_ERROR(catalog_get_by_source_image(c, img, &e), ENOENT);
        ASSERT_ERROR(catalog_get_by_source_image(c, "", &e), EINVAL);

        /* Pending rows are not found; the newest ready one is. */
        CatalogEntry p = {.id = (char *)"aaaa0000000000000000000000000001",
                          .state = CHECKPOINT_PENDING,
                          .created_ns = 100,
                          .source_image = (char *)img};
        ASSERT_OK(catalog_insert(c, &p));
        ASSERT_ERROR(catalog_get_by_source_image(c, img, &e), ENOENT);
        ASSERT_OK(catalog_set_ready(c, p.id, 10, "sha256:00"));
        ASSERT_OK(catalog_get_by_source_image(c, img, &e));
        ASSERT_STREQ(e.id, p.id);
        ASSERT_STREQ(e.source_image, img);
        CatalogEntry copy = {};
        ASSERT_OK(catalog_entry_copy(&e, &copy));
        ASSERT_STREQ(copy.source_image, img);
        catalog_entry_done(&copy);
        catalog_entry_done(&e);
        ASSERT_ERROR(catalog_get_by_source_image(
                             c,
                             "reg.local:5000/ckpt/other@sha256:"
                             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                             &e),
                     ENOENT);
        catalog_close(c);
        remove_dir(path);
}

static int collect_ids(const CatalogEntry *e, void *userdata) {
        char *buf = userdata;
        strcat(buf, e->id);
        strcat(buf, " ");
        return 0;
}

TEST(push_pending) {
        char path[] = "/tmp/test-daemon-catalog.XXXXXX";
        /* A row of schema 6 is not to push and was never pushed. */
        CatalogEntry e = {};
        Catalog *c = migrated_from(path, 6, &e);
        ASSERT_FALSE(e.push_pending);
        ASSERT_STREQ(e.pushed_image, "");
        catalog_entry_done(&e);

        /* Marked rows are listed once ready, oldest first, until pushed. */
        char ids[256] = "";
        CatalogEntry p1 = {.id = (char *)"aaaa0000000000000000000000000001",
                           .state = CHECKPOINT_PENDING,
                           .created_ns = 200,
                           .push_pending = true};
        CatalogEntry p2 = {.id = (char *)"aaaa0000000000000000000000000002",
                           .state = CHECKPOINT_PENDING,
                           .created_ns = 100,
                           .push_pending = true};
        ASSERT_OK(catalog_insert(c, &p1));
        ASSERT_OK(catalog_insert(c, &p2));
        ASSERT_EQ(catalog_list_push_pending(c, collect_ids, ids), 0);
        ASSERT_OK(catalog_set_ready(c, p1.id, 10, "sha256:00"));
        ASSERT_OK(catalog_set_ready(c, p2.id, 10, "sha256:00"));
        ASSERT_EQ(catalog_list_push_pending(c, collect_ids, ids), 2);
        ASSERT_STREQ(ids, "aaaa0000000000000000000000000002 aaaa0000000000000000000000000001 ");
        const char *img = "reg.local:5000/ckpt/node-a:aaaa0000000000000000000000000001@sha256:"
                          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        ASSERT_ERROR(catalog_set_pushed(c, p1.id, ""), EINVAL);
        ASSERT_ERROR(catalog_set_pushed(c, "bbbb0000000000000000000000000001", img), ENOENT);
        ASSERT_OK(catalog_set_pushed(c, p1.id, img));
        ids[0] = 0;
        ASSERT_EQ(catalog_list_push_pending(c, collect_ids, ids), 1);
        ASSERT_STREQ(ids, "aaaa0000000000000000000000000002 ");
        ASSERT_OK(catalog_get(c, p1.id, &e));
        ASSERT_FALSE(e.push_pending);
        ASSERT_STREQ(e.pushed_image, img);
        CatalogEntry copy = {};
        ASSERT_OK(catalog_entry_copy(&e, &copy));
        ASSERT_STREQ(copy.pushed_image, img);
        catalog_entry_done(&copy);
        catalog_entry_done(&e);
        catalog_close(c);
        remove_dir(path);
}

typedef struct Seen {
        int n;
        int64_t last_created;
        bool ordered;
} Seen;

static int order_cb(const CatalogEntry *e, void *userdata) {
        Seen *s = userdata;
        if (s->n > 0 && e->created_ns > s->last_created)
                s->ordered = false;
        s->last_created = e->created_ns;
        s->n++;
        return 0;
}

static int stop_cb(const CatalogEntry *e, void *userdata) {
        return -ECANCELED;
}

TEST(list_filters_counts_10000_rows) {
        _cleanup_(catalog_closep) Catalog *c = NULL;
        ASSERT_OK(catalog_open(":memory:", false, &c));
        ASSERT_OK(catalog_begin(c));
        for (int i = 0; i < 10000; i++) {
                char id[33], ns[16], pod[16];
                snprintf(id, sizeof(id), "%032x", i);
                snprintf(ns, sizeof(ns), "ns%d", i % 10);
                snprintf(pod, sizeof(pod), "pod%d", i % 100);
                CatalogEntry e = entry(id, NULL, ns, pod, 1000 + i);
                e.pinned = i % 1000 == 0;
                e.state = i % 500 == 0 ? CHECKPOINT_PENDING : CHECKPOINT_READY;
                ASSERT_OK(catalog_insert(c, &e));
        }
        ASSERT_OK(catalog_commit(c));

        Seen s = {.ordered = true};
        uint64_t t0 = now_monotonic_usec();
        ASSERT_EQ(catalog_list(c, NULL, order_cb, &s), 10000);
        uint64_t t_all = now_monotonic_usec() - t0;
        ASSERT_EQ(s.n, 10000);
        ASSERT_TRUE(s.ordered);
        ASSERT_EQ(s.last_created, 1000);

        int n = 0;
        CatalogFilter f = {.k8s_namespace = "ns3"};
        t0 = now_monotonic_usec();
        ASSERT_EQ(catalog_list(c, &f, count_cb, &n), 1000);
        uint64_t t_filtered = now_monotonic_usec() - t0;
        f = (CatalogFilter){.k8s_namespace = "ns3", .k8s_pod = "pod13", .k8s_container = "app"};
        n = 0;
        ASSERT_EQ(catalog_list(c, &f, count_cb, &n), 100);
        f = (CatalogFilter){.containerd_namespace = "k8s.io", .limit = 7};
        ASSERT_EQ(catalog_list(c, &f, NULL, NULL), 7);
        f = (CatalogFilter){.state = CHECKPOINT_PENDING};
        ASSERT_EQ(catalog_list(c, &f, NULL, NULL), 20);
        f = (CatalogFilter){.container_id = "nope"};
        ASSERT_EQ(catalog_list(c, &f, NULL, NULL), 0);
        ASSERT_ERROR(catalog_list(c, NULL, stop_cb, NULL), ECANCELED);

        uint64_t cnt;
        f = (CatalogFilter){.k8s_pod = "pod7"};
        ASSERT_OK(catalog_count(c, &f, &cnt));
        ASSERT_EQ(cnt, 100);
        CatalogCounts counts;
        ASSERT_OK(catalog_counts(c, &counts));
        ASSERT_EQ(counts.ready, 9980);
        ASSERT_EQ(counts.pending, 20);
        ASSERT_EQ(counts.pinned, 10);
        ASSERT_EQ(counts.bytes, 10000 * 1000);
        printf("list of 10000 rows: %" PRIu64 " us, filtered (1000 rows): %" PRIu64 " us\n", t_all,
               t_filtered);
        /* Generous bounds (sanitizer builds are slow); the benchmark measures. */
        ASSERT_TRUE(t_all < 2 * USEC_PER_SEC);
}

TEST(store_bytes_count_pod_members_once) {
        _cleanup_(catalog_closep) Catalog *c = NULL;
        ASSERT_OK(catalog_open(":memory:", false, &c));
        CatalogEntry pod = entry("bbbb0000000000000000000000000001", NULL, "ns", "web", 100);
        pod.is_pod = true;
        pod.k8s_container = (char *)"";
        pod.size_bytes = 3000; /* its members' sum */
        ASSERT_OK(catalog_insert(c, &pod));
        for (int i = 0; i < 3; i++) {
                char id[48];
                snprintf(id, sizeof(id), "bbbb00000000000000000000000000%02d", i + 2);
                CatalogEntry m = entry(id, NULL, "ns", "web", 100);
                m.pod_id = pod.id;
                ASSERT_OK(catalog_insert(c, &m));
        }
        CatalogEntry single = entry("cccc0000000000000000000000000001", NULL, "ns", "web", 50);
        ASSERT_OK(catalog_insert(c, &single));
        CatalogCounts counts;
        ASSERT_OK(catalog_counts(c, &counts));
        ASSERT_EQ(counts.bytes, 4000);
        ASSERT_EQ(counts.ready, 5);
        uint64_t n;
        CatalogFilter f = {.pod_id = "bbbb0000000000000000000000000001"};
        ASSERT_OK(catalog_count(c, &f, &n));
        ASSERT_EQ(n, 3);
}

TEST(concurrent_readers_file_db) {
        char db[256];
        snprintf(db, sizeof(db), "%s/catalog.db", test_tmpdir());
        Catalog *w = NULL;
        ASSERT_OK(catalog_open(db, false, &w));

        pid_t readers[3];
        for (size_t k = 0; k < ELEMENTSOF(readers); k++) {
                readers[k] = fork();
                ASSERT_TRUE(readers[k] >= 0);
                if (readers[k] == 0) {
                        Catalog *rc = NULL;
                        if (catalog_open(db, false, &rc) < 0)
                                _exit(2);
                        uint64_t last = 0;
                        for (int i = 0; i < 300; i++) {
                                CatalogCounts counts;
                                if (catalog_counts(rc, &counts) < 0)
                                        _exit(3);
                                /* Batches of 10 commit atomically: readers see whole batches. */
                                if (counts.ready < last || counts.ready % 10 != 0)
                                        _exit(4);
                                last = counts.ready;
                        }
                        catalog_close(rc);
                        _exit(0);
                }
        }
        for (int b = 0; b < 50; b++) {
                ASSERT_OK(catalog_begin(w));
                for (int i = 0; i < 10; i++) {
                        char id[33];
                        snprintf(id, sizeof(id), "%032x", b * 10 + i);
                        CatalogEntry e = entry(id, NULL, "t", "p", b * 10 + i);
                        ASSERT_OK(catalog_insert(w, &e));
                }
                ASSERT_OK(catalog_commit(w));
        }
        for (size_t k = 0; k < ELEMENTSOF(readers); k++) {
                int status;
                ASSERT_EQ(waitpid(readers[k], &status, 0), readers[k]);
                ASSERT_TRUE(WIFEXITED(status));
                ASSERT_EQ(WEXITSTATUS(status), 0);
        }
        catalog_close(w);
}
