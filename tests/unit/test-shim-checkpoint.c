/* SPDX-License-Identifier: Apache-2.0 */
/* Checkpoint options, restore references and the identity sent to kybernated. */
#include <fcntl.h>
#include <sys/stat.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "shim/blocking.h"
#include "shim/checkpoint.h"
#include "shim/restore.h"
#include "shim/spec.h"
#include "test.h"

TEST(checkpoint_options) {
        CheckpointOpts o;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        Containerd__Runc__V1__CheckpointOptions m = CONTAINERD__RUNC__V1__CHECKPOINT_OPTIONS__INIT;
        char *ns[] = {(char *)"network"};
        uint8_t buf[256];

        /* ctr task checkpoint sends nothing to a non-runc runtime: defaults (leave running) */
        ASSERT_OK(checkpoint_options_from_any(NULL, &o));
        ASSERT_FALSE(o.exit);
        ASSERT_OK(checkpoint_options_from_any(&any, &o));
        ASSERT_FALSE(o.exit);

        m.exit = true;
        m.file_locks = true;
        m.open_tcp = true;
        m.n_empty_namespaces = 1;
        m.empty_namespaces = ns;
        m.work_path = (char *)"/tmp/w";
        any.type_url = (char *)CHECKPOINT_OPTIONS_TYPE;
        any.value.len = containerd__runc__v1__checkpoint_options__pack(&m, buf);
        any.value.data = buf;
        ASSERT_OK(checkpoint_options_from_any(&any, &o));
        ASSERT_TRUE(o.exit);
        ASSERT_TRUE(o.file_locks);
        ASSERT_TRUE(o.open_tcp);
        ASSERT_FALSE(o.external_unix_sockets);
        ASSERT_STREQ(o.empty_namespaces[0], "network");
        ASSERT_NULL(o.empty_namespaces[1]);
        ASSERT_STREQ(o.work_path, "/tmp/w");
        checkpoint_options_done(&o);

        m.work_path = (char *)"relative";
        any.value.len = containerd__runc__v1__checkpoint_options__pack(&m, buf);
        ASSERT_ERROR(checkpoint_options_from_any(&any, &o), EINVAL);

        /* containerd 2.x refuses other types; so do we, rather than ignore --exit */
        any.type_url = (char *)"containerd.runc.v1.Options";
        ASSERT_ERROR(checkpoint_options_from_any(&any, &o), EINVAL);
        any.type_url = (char *)CHECKPOINT_OPTIONS_TYPE;
        any.value.len = 3;
        memcpy(buf, "\xff\xff\xff", 3);
        ASSERT_ERROR(checkpoint_options_from_any(&any, &o), EBADMSG);
}

static void parse(const char *json, Spec *s) {
        ASSERT_OK(spec_parse(json, strlen(json), s));
}

TEST(restore_reference_sources) {
        Spec s;
        const char *ref;

        parse("{\"process\":{\"env\":[\"A=1\"]}}", &s);
        ASSERT_EQ(restore_reference(&s, &ref), 0);
        ASSERT_NULL(ref);
        spec_done(&s);

        parse("{\"process\":{\"env\":[\"RESTORE_FROM=ns/pod/c\"]},"
              "\"annotations\":{\"kybernate.io/restore-from\":\"other\"}}",
              &s);
        ASSERT_EQ(restore_reference(&s, &ref), 1);
        ASSERT_STREQ(ref, "ns/pod/c"); /* the environment wins over the annotation */
        spec_done(&s);

        parse("{\"annotations\":{\"kybernate.io/restore-from\":\"abcd1234\"}}", &s);
        ASSERT_EQ(restore_reference(&s, &ref), 1);
        ASSERT_STREQ(ref, "abcd1234");
        spec_done(&s);

        /* A pod's annotation reaches its sandbox too: the sandbox is never restored. */
        parse("{\"annotations\":{\"kybernate.io/restore-from\":\"team/web\","
              "\"io.kubernetes.cri.container-type\":\"sandbox\"}}",
              &s);
        ASSERT_EQ(restore_reference(&s, &ref), 0);
        ASSERT_NULL(ref);
        spec_done(&s);
        parse("{\"annotations\":{\"kybernate.io/restore-from\":\"team/web\","
              "\"io.kubernetes.cri.container-type\":\"container\"}}",
              &s);
        ASSERT_EQ(restore_reference(&s, &ref), 1);
        ASSERT_STREQ(ref, "team/web");
        spec_done(&s);

        /* empty, control characters, overlong: refused before any daemon is asked */
        parse("{\"process\":{\"env\":[\"RESTORE_FROM=\"]}}", &s);
        ASSERT_ERROR(restore_reference(&s, &ref), EINVAL);
        spec_done(&s);
        parse("{\"process\":{\"env\":[\"RESTORE_FROM=a\\nb\"]}}", &s);
        ASSERT_ERROR(restore_reference(&s, &ref), EINVAL);
        spec_done(&s);
        char big[RESTORE_REFERENCE_MAX + 64];
        int n = snprintf(big, sizeof(big), "{\"process\":{\"env\":[\"RESTORE_FROM=");
        memset(big + n, 'a', RESTORE_REFERENCE_MAX + 1);
        strcpy(big + n + RESTORE_REFERENCE_MAX + 1, "\"]}}");
        parse(big, &s);
        ASSERT_ERROR(restore_reference(&s, &ref), EINVAL);
        spec_done(&s);
}

TEST(restore_target_identity) {
        Spec s;
        Kybernate__V1__RestoreTarget t;

        parse("{\"annotations\":{\"io.kubernetes.cri.sandbox-namespace\":\"team-a\","
              "\"io.kubernetes.cri.sandbox-name\":\"web-0\",\"io.kubernetes.cri.container-name\":\"app\","
              "\"io.kubernetes.cri.image-name\":\"docker.io/library/busybox:1\"}}",
              &s);
        restore_target_from_spec(&s, "k8s.io", "c123", &t);
        ASSERT_STREQ(t.containerd_namespace, "k8s.io");
        ASSERT_STREQ(t.container_id, "c123");
        ASSERT_STREQ(t.k8s_namespace, "team-a");
        ASSERT_STREQ(t.k8s_pod, "web-0");
        ASSERT_STREQ(t.k8s_container, "app");
        ASSERT_STREQ(t.image_ref, "docker.io/library/busybox:1");
        spec_done(&s);

        /* outside Kubernetes: only the containerd namespace identifies the tenant */
        parse("{}", &s);
        restore_target_from_spec(&s, "default", "x", &t);
        ASSERT_STREQ(t.k8s_namespace, "");
        ASSERT_STREQ(t.image_ref, "");
        spec_done(&s);
}

TEST(copy_dir_files_flat) {
        const char *src = test_tmpdir(), *dst = test_tmpdir();
        char path[256];
        snprintf(path, sizeof(path), "%s/pages-1.img", src);
        ASSERT_OK(write_file_atomic(path, "pages", 5, 0600));
        snprintf(path, sizeof(path), "%s/link", src);
        ASSERT_OK(symlink("/etc/shadow", path)); /* never followed or copied */
        ASSERT_OK(copy_dir_files(src, dst, NULL));
        _cleanup_free_ char *data = NULL;
        snprintf(path, sizeof(path), "%s/pages-1.img", dst);
        ASSERT_OK(read_full_file(path, 64, &data, NULL));
        ASSERT_STREQ(data, "pages");
        /* same filesystem: a hard link, not a second copy of a large image */
        struct stat a, b;
        ASSERT_OK(stat(path, &b));
        snprintf(path, sizeof(path), "%s/pages-1.img", src);
        ASSERT_OK(stat(path, &a));
        ASSERT_EQ(a.st_ino, b.st_ino);
        snprintf(path, sizeof(path), "%s/link", dst);
        struct stat st;
        ASSERT_EQ(lstat(path, &st), -1);
}

TEST(copy_dir_files_only_named) {
        const char *src = test_tmpdir(), *dst = test_tmpdir();
        char path[256];
        struct stat st;
        static const char *const files[] = {"dump.log", "stats-dump", "kybernate.json"};
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof(path), "%s/%s", src, files[i]);
                ASSERT_OK(write_file_atomic(path, files[i], strlen(files[i]), 0600));
        }
        char *const only[] = {(char *)"stats-dump", (char *)"dump.log", (char *)"absent", NULL};
        ASSERT_OK(copy_dir_files(src, dst, only));
        snprintf(path, sizeof(path), "%s/stats-dump", dst);
        ASSERT_OK(stat(path, &st));
        snprintf(path, sizeof(path), "%s/dump.log", dst);
        ASSERT_OK(stat(path, &st));
        snprintf(path, sizeof(path), "%s/kybernate.json", dst);
        ASSERT_EQ(stat(path, &st), -1);
        snprintf(path, sizeof(path), "%s/absent", dst);
        ASSERT_EQ(stat(path, &st), -1);
}
