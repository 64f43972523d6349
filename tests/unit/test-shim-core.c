/* SPDX-License-Identifier: Apache-2.0 */
/* The shim's pure logic: socket addresses, exit statuses, option and spec
 * decoding, mount options, identifiers, SHA-256. */
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>

#include "containerd/runc/options/oci.pb-c.h"
#include "containerd/runtimeoptions/v1/api.pb-c.h"
#include "sha256.h"
#include "shim/mount.h"
#include "shim/options.h"
#include "shim/reaper.h"
#include "shim/service.h"
#include "shim/shim-address.h"
#include "shim/spec.h"
#include "test.h"

TEST(sha256_vectors) {
        char hex[65];
        sha256_hex("abc", 3, hex);
        ASSERT_STREQ(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        sha256_hex("", 0, hex);
        ASSERT_STREQ(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        /* streaming in odd pieces across block boundaries */
        char a[1000];
        memset(a, 'a', sizeof(a));
        Sha256 s;
        uint8_t d[32];
        sha256_init(&s);
        for (size_t off = 0; off < sizeof(a); off += 37)
                sha256_update(&s, a + off, MIN((size_t)37, sizeof(a) - off));
        sha256_final(&s, d);
        sha256_to_hex(d, hex);
        ASSERT_STREQ(hex, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST(socket_address_hash) {
        _cleanup_free_ char *p = NULL, *q = NULL;
        ASSERT_OK(shim_socket_path("/run/containerd/containerd.sock", "default", "foo", &p));
        ASSERT_STREQ(p,
                     "/run/containerd/s/0ef8ff6eee5e57db347888bf5cbc6792a6072d2620834fa5d518ce50f84567bf");
        /* filepath.Join cleans the path first: a trailing slash hashes the same */
        ASSERT_OK(shim_socket_path("/run/containerd/containerd.sock/", "default", "foo", &q));
        ASSERT_STREQ(p, q);
}

TEST(path_clean) {
        static const char *const cases[][2] = {
                {"/a//b/", "/a/b"}, {"/a/./b", "/a/b"},    {"/a/b/../c", "/a/c"},
                {"/../a", "/a"},    {"a/../../b", "../b"}, {"", "."},
                {"/", "/"},         {"a/b/..", "a"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *c = NULL;
                ASSERT_OK(shim_path_clean(cases[i][0], &c));
                ASSERT_STREQ(c, cases[i][1]);
        }
}

TEST(exit_status_mapping) {
        ASSERT_EQ(reaper_exit_status(W_EXITCODE(3, 0)), 3);
        ASSERT_EQ(reaper_exit_status(W_EXITCODE(0, 0)), 0);
        ASSERT_EQ(reaper_exit_status(SIGKILL), 137);
        ASSERT_EQ(reaper_exit_status(SIGTERM), 143);
}

TEST(valid_ids) {
        ASSERT_TRUE(shim_valid_id("c1"));
        ASSERT_TRUE(shim_valid_id("k8s.io"));
        ASSERT_TRUE(shim_valid_id("a_b-c.d"));
        ASSERT_FALSE(shim_valid_id(""));
        ASSERT_FALSE(shim_valid_id(NULL));
        ASSERT_FALSE(shim_valid_id("../x"));
        ASSERT_FALSE(shim_valid_id("a/b"));
        ASSERT_FALSE(shim_valid_id("-a"));
        char long_id[80];
        memset(long_id, 'a', sizeof(long_id) - 1);
        long_id[79] = 0;
        ASSERT_FALSE(shim_valid_id(long_id));
}

/* The Any and its bytes both static: the Any never points into a returned stack frame. */
static Google__Protobuf__Any *pack_options(const Containerd__Runc__V1__Options *o) {
        static Google__Protobuf__Any any;
        static uint8_t buf[512];
        google__protobuf__any__init(&any);
        any.type_url = (char *)RUNC_OPTIONS_TYPE;
        any.value.len = containerd__runc__v1__options__pack(o, buf);
        any.value.data = buf;
        return &any;
}

TEST(options_runc) {
        Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
        ShimOptions so;
        RuncConfig rc;

        o.binary_name = (char *)"myrunc";
        o.root = (char *)"/run/alt";
        o.systemd_cgroup = true;
        o.io_uid = 1000;
        o.criu_path = (char *)"/usr/local/sbin/criu";
        ASSERT_OK(shim_options_from_any(pack_options(&o), &so));
        ASSERT_STREQ(so.binary_name, "myrunc");
        ASSERT_EQ(so.io_uid, 1000);
        ASSERT_TRUE(so.systemd_cgroup);
        ASSERT_OK(shim_options_runc_config(&so, "k8s.io", "/b", &rc));
        ASSERT_STREQ(rc.root, "/run/alt/k8s.io");
        ASSERT_STREQ(rc.binary, "myrunc");
        ASSERT_STREQ(rc.log_path, "/b/log.json");
        ASSERT_STREQ(rc.criu, "/usr/local/sbin/criu");
        runc_config_done(&rc);
        shim_options_done(&so);

        /* a relative root is refused */
        o.root = (char *)"relative";
        ASSERT_ERROR(shim_options_from_any(pack_options(&o), &so), EINVAL);
}

/* Kept in the bundle at Create, read back by the delete action. */
TEST(options_kept_in_bundle) {
        Containerd__Runc__V1__Options o = CONTAINERD__RUNC__V1__OPTIONS__INIT;
        ShimOptions so;
        const char *d = test_tmpdir();
        _cleanup_free_ char *file = strdup_printf("%s/" SHIM_OPTIONS_FILE, d);

        ASSERT_OK(shim_options_load(d, &so)); /* none kept: the defaults */
        ASSERT_NULL(so.root);
        ASSERT_OK(shim_options_save(NULL, d)); /* no options: nothing kept */
        ASSERT_TRUE(access(file, F_OK) < 0);
        o.binary_name = (char *)"/usr/local/bin/myrunc";
        o.root = (char *)"/run/alt";
        ASSERT_OK(shim_options_save(pack_options(&o), d));
        ASSERT_OK(shim_options_load(d, &so));
        ASSERT_STREQ(so.binary_name, "/usr/local/bin/myrunc");
        ASSERT_STREQ(so.root, "/run/alt");
        shim_options_done(&so);

        /* what is kept is checked as containerd's own bytes are */
        o.root = (char *)"relative";
        ASSERT_OK(shim_options_save(pack_options(&o), d));
        ASSERT_ERROR(shim_options_load(d, &so), EINVAL);
        ASSERT_OK(unlink(file));
        ASSERT_OK(rmdir(d));
}

TEST(options_absent_empty_unknown) {
        ShimOptions so;
        RuncConfig rc;
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;

        ASSERT_OK(shim_options_from_any(NULL, &so));
        ASSERT_NULL(so.binary_name);
        ASSERT_OK(shim_options_from_any(&any, &so)); /* a restore's empty Any */
        ASSERT_OK(shim_options_runc_config(&so, "default", "/b", &rc));
        ASSERT_STREQ(rc.root, "/run/containerd/runc/default");
        ASSERT_STREQ(rc.binary, "runc");
        ASSERT_NULL(rc.criu);
        runc_config_done(&rc);

        /* runtimeoptions.v1.Options (CRI, ctr --runtime-config-path) is ignored */
        Runtimeoptions__V1__Options ro = RUNTIMEOPTIONS__V1__OPTIONS__INIT;
        uint8_t buf[128];
        ro.config_path = (char *)"/etc/x.toml";
        any.type_url = (char *)"runtimeoptions.v1.Options";
        any.value.len = runtimeoptions__v1__options__pack(&ro, buf);
        any.value.data = buf;
        ASSERT_OK(shim_options_from_any(&any, &so));
        ASSERT_NULL(so.root);

        /* garbage under the runc type is an error, not silently defaults */
        uint8_t junk[] = {0xff, 0xff, 0xff};
        any.type_url = (char *)RUNC_OPTIONS_TYPE;
        any.value.len = sizeof(junk);
        any.value.data = junk;
        ASSERT_ERROR(shim_options_from_any(&any, &so), EBADMSG);

        /* the start action's stdin: packed Any, nothing, or not an Any at all */
        ASSERT_OK(shim_options_from_bytes(NULL, 0, &so));
        ASSERT_OK(shim_options_from_bytes((const uint8_t *)"\x0a\x02", 2, &so));
}

/* linux.cgroupsPath: containerd's CRI writes SLICE:cri-containerd:ID under
 * kubelet's systemd driver, a path under its cgroupfs driver. */
TEST(spec_systemd_cgroups_path) {
        static const struct {
                const char *path;
                bool systemd;
        } cases[] = {
                {"kubepods-besteffort-pod1.slice:cri-containerd:abc", true},
                {":cri-containerd:abc", true}, /* runc's default slice */
                {"system.slice:docker:abc", true},
                {"/kubepods/besteffort/pod1/abc", false},
                {"kubepods/pod1/abc", false},
                {"a.slice:b", false},
                {"a.slice:b:", false},
                {"a.slice:b:c:d", false},
                {"kubepods.slice/x.slice:b:c", false},
                {"notaslice:b:c", false},
                {".slice:b:c", false},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *json =
                        strdup_printf("{\"linux\":{\"cgroupsPath\":\"%s\"}}", cases[i].path);
                Spec s;
                ASSERT_OK(spec_parse(json, strlen(json), &s));
                if (s.systemd_cgroup != cases[i].systemd)
                        fprintf(stderr, "cgroupsPath %s\n", cases[i].path);
                ASSERT_EQ(s.systemd_cgroup, cases[i].systemd);
                spec_done(&s);
        }
        Spec s;
        ASSERT_OK(spec_parse("{\"linux\":{\"cgroupsPath\":7}}", 27, &s));
        ASSERT_FALSE(s.systemd_cgroup);
        spec_done(&s);
}

TEST(spec_parse) {
        static const char json[] =
                "{\"process\":{\"env\":[\"PATH=/bin\",\"RESTORE_FROM=ns/pod/c\"]},"
                "\"annotations\":{\"io.kubernetes.cri.sandbox-id\":\"sb1\",\"x\":\"y\"},"
                "\"linux\":{\"namespaces\":[{\"type\":\"network\",\"path\":\"/proc/1/ns/net\"},{\"type\":\"pid\"}]}}";
        Spec s;
        ASSERT_OK(spec_parse(json, strlen(json), &s));
        ASSERT_TRUE(s.private_pid_ns);
        ASSERT_STREQ(s.sandbox_id, "sb1");
        ASSERT_STREQ(spec_env(&s, "RESTORE_FROM"), "ns/pod/c");
        ASSERT_STREQ(spec_env(&s, "PATH"), "/bin");
        ASSERT_NULL(spec_env(&s, "PAT"));
        ASSERT_STREQ(spec_annotation(&s, "x"), "y");
        spec_done(&s);

        static const char shared[] =
                "{\"linux\":{\"namespaces\":[{\"type\":\"pid\",\"path\":\"/proc/9/ns/pid\"}]}}";
        ASSERT_OK(spec_parse(shared, strlen(shared), &s));
        ASSERT_FALSE(s.private_pid_ns);
        ASSERT_NULL(s.sandbox_id);
        spec_done(&s);

        ASSERT_ERROR(spec_parse("[1,2", 4, &s), EBADMSG);
        ASSERT_ERROR(spec_parse("\"str\"", 5, &s), EBADMSG);
}

static Google__Protobuf__Any json_any(const char *json) {
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        any.type_url = (char *)"types.containerd.io/opencontainers/runtime-spec/1/Process";
        any.value.data = (uint8_t *)json;
        any.value.len = strlen(json);
        return any;
}

TEST(exec_process_spec) {
        _cleanup_free_ char *out = NULL, *t = NULL;
        Google__Protobuf__Any ok = json_any("{\"args\":[\"echo\",\"hi\"],\"cwd\":\"/\",\"terminal\":true}");
        ASSERT_OK(spec_process_from_any(&ok, &out));
        ASSERT_OK(spec_process_with_terminal(out, false, &t));
        ASSERT_NOT_NULL(strstr(t, "\"terminal\":false"));
        ASSERT_NULL(strstr(t, "\"terminal\":true"));

        static const char *const bad[] = {"{\"args\":[]}",  "{\"args\":\"echo\"}",
                                          "{\"args\":[1]}", "{\"args\":[\"x\"],\"cwd\":\"rel\"}",
                                          "not json",       "[]"};
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *x = NULL;
                Google__Protobuf__Any a = json_any(bad[i]);
                ASSERT_TRUE(spec_process_from_any(&a, &x) < 0);
                ASSERT_NULL(x);
        }
        char *x = NULL;
        ASSERT_TRUE(spec_process_from_any(NULL, &x) < 0);
}

TEST(mount_options) {
        char *opts[] = {(char *)"ro",          (char *)"nosuid",   (char *)"lowerdir=/a:/b",
                        (char *)"upperdir=/u", (char *)"rprivate", (char *)"rw",
                        (char *)"ro"};
        unsigned long flags, prop;
        _cleanup_free_ char *data = NULL;
        ASSERT_OK(mount_parse_options(opts, ELEMENTSOF(opts), &flags, &prop, &data));
        ASSERT_EQ(flags, MS_RDONLY | MS_NOSUID);
        ASSERT_EQ(prop, MS_PRIVATE | MS_REC);
        ASSERT_STREQ(data, "lowerdir=/a:/b,upperdir=/u");

        /* more data than mount(2) takes is refused, not truncated */
        char big[5000];
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        char *bopts[] = {big};
        char *d2 = NULL;
        ASSERT_ERROR(mount_parse_options(bopts, 1, &flags, &prop, &d2), E2BIG);
}
