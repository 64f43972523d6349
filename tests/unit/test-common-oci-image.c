/* SPDX-License-Identifier: Apache-2.0 */
/* OCI image layouts: our writer's output read back, and every way a hostile
 * layout is refused (hand-built layouts, each wrong in one place). */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "image-ref.h"
#include "oci-image.h"
#include "test.h"

#define LAYER "a checkpoint archive stands in here: the reader never looks inside the layer"

static int open_dir(const char *path) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ASSERT_TRUE(fd >= 0);
        return fd;
}

static void put_file(int dfd, const char *name, const void *buf, size_t len) {
        (void)unlinkat(dfd, name, 0);
        _cleanup_close_ int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_OK(write_all(fd, buf, len));
}

static void digest_of(const void *buf, size_t len, char ret[static OCI_DIGEST_MAX]) {
        char hex[65];
        sha256_hex(buf, len, hex);
        snprintf(ret, OCI_DIGEST_MAX, "sha256:%s", hex);
}

static void blob_name(const char *digest, char ret[static 128]) {
        snprintf(ret, 128, "blobs/sha256/%.64s", digest + strlen("sha256:"));
}

static void put_blob(int dfd, const void *buf, size_t len, char ret_digest[static OCI_DIGEST_MAX]) {
        char name[128];
        digest_of(buf, len, ret_digest);
        blob_name(ret_digest, name);
        put_file(dfd, name, buf, len);
}

/* A hand-built layout, right unless a field says otherwise. */
typedef struct Spec {
        const char *layer_type;     /* NULL: OCI tar */
        const char *manifest_type;  /* NULL: OCI manifest (in the descriptor and the manifest) */
        const char *config_type;    /* NULL: OCI config */
        const char *config;         /* NULL: a right one */
        const char *annotations;    /* raw JSON object, or NULL */
        const char *layer_extra;    /* raw JSON appended to the layer descriptor */
        const char *manifest_extra; /* raw JSON appended to the manifest */
        const char *layer_digest;   /* NULL: the layer's own */
        const char *manifest_digest;
        int index_copies; /* manifests listed in index.json; 0 is 1 */
} Spec;

typedef struct Built {
        char layer[OCI_DIGEST_MAX], config[OCI_DIGEST_MAX], manifest[OCI_DIGEST_MAX];
} Built;

static void build(int dfd, const Spec *s, Built *b) {
        ASSERT_TRUE(mkdirat(dfd, "blobs", 0755) == 0 || errno == EEXIST);
        ASSERT_TRUE(mkdirat(dfd, "blobs/sha256", 0755) == 0 || errno == EEXIST);
        put_file(dfd, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
        put_blob(dfd, LAYER, strlen(LAYER), b->layer);
        const char *layer_digest = s->layer_digest ?: b->layer;

        char config[512];
        if (s->config)
                snprintf(config, sizeof(config), "%s", s->config);
        else
                snprintf(config, sizeof(config),
                         "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{},"
                         "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\"]}}",
                         b->layer);
        put_blob(dfd, config, strlen(config), b->config);

        const char *mt = s->manifest_type ?: OCI_MEDIA_TYPE_MANIFEST;
        _cleanup_free_ char *manifest = NULL;
        ASSERT_TRUE(asprintf(&manifest,
                             "{\"schemaVersion\":2,\"mediaType\":\"%s\","
                             "\"config\":{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},"
                             "\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu%s}]%s%s%s}",
                             mt, s->config_type ?: OCI_MEDIA_TYPE_CONFIG, b->config, strlen(config),
                             s->layer_type ?: OCI_MEDIA_TYPE_LAYER, layer_digest, strlen(LAYER),
                             s->layer_extra ?: "", s->annotations ? ",\"annotations\":" : "",
                             s->annotations ?: "", s->manifest_extra ?: "") > 0);
        put_blob(dfd, manifest, strlen(manifest), b->manifest);

        char desc[512];
        snprintf(desc, sizeof(desc), "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}", mt,
                 s->manifest_digest ?: b->manifest, strlen(manifest));
        char index[2048] = "{\"schemaVersion\":2,\"manifests\":[";
        for (int i = 0; i < MAX(s->index_copies, 1); i++) {
                if (i > 0)
                        strcat(index, ",");
                strcat(index, desc);
        }
        strcat(index, "]}");
        put_file(dfd, "index.json", index, strlen(index));
}

/* Reads the layout and checks the answer is err (0: success), with a reason. */
static int read_expect(int dfd, const OciImageLimits *l, int err) {
        OciImage img = {.layer_fd = -EBADF};
        _cleanup_free_ char *why = NULL;
        int r = oci_image_read(dfd, l, &img, &why);
        if (r < 0) {
                ASSERT_NOT_NULL(why);
                ASSERT_EQ(img.layer_fd, -EBADF);
                ASSERT_TRUE(!img.annotations && !img.layer_path);
        }
        oci_image_done(&img);
        ASSERT_EQ(r, err);
        return r;
}

static int build_and_read(const Spec *s, const OciImageLimits *l, int err) {
        _cleanup_close_ int dfd = open_dir(test_tmpdir());
        Built b;
        build(dfd, s, &b);
        OciImageLimits def = OCI_IMAGE_LIMITS_DEFAULT;
        return read_expect(dfd, l ?: &def, err);
}

/* Our writer's layout, with the checkpoint annotations. */
static void write_image(int dfd, char manifest_digest[static OCI_DIGEST_MAX]) {
        put_file(dfd, "layer.tar", LAYER, strlen(LAYER));
        OciCheckpointInfo info = {
                .checkpoint_id = "0123abcd",
                .created = "2026-12-06T00:00:00Z",
                .k8s_namespace = "team-a",
                .pod_name = "counter",
                .container_name = "count",
                .containerd_namespace = "k8s.io",
                .image_ref = "docker.io/library/busybox:1.36",
                .image_digest = "sha256:0000000000000000000000000000000000000000000000000000000000000001",
                .checksum = "sha256:00000000000000000000000000000000000000000000000000000000000000ff",
                .criu_version = 31900,
                .kernel_version = "6.1.0-test",
                .architecture = "amd64",
                .kybernate_version = "0.1.0",
        };
        OciAnnotation *a = NULL;
        size_t n = 0;
        ASSERT_OK(oci_checkpoint_annotations(&info, &a, &n));
        OciImageWrite w = {
                .layer_path = "layer.tar",
                .annotations = a,
                .n_annotations = n,
                .created = "2026-12-06T00:00:00Z",
                .architecture = "amd64",
                .os = "linux",
                .ref_name = "latest",
        };
        int r = oci_image_write(dfd, &w, manifest_digest);
        oci_annotations_free(a, n);
        ASSERT_OK(r);
}

TEST(write_read_round_trip) {
        _cleanup_close_ int dfd = open_dir(test_tmpdir());
        char digest[OCI_DIGEST_MAX];
        write_image(dfd, digest);
        ASSERT_TRUE(image_digest_valid(digest));
        ASSERT_TRUE(faccessat(dfd, "layer.tar", F_OK, 0) < 0); /* renamed into blobs */

        OciImageLimits l = OCI_IMAGE_LIMITS_DEFAULT;
        OciImage img = {.layer_fd = -EBADF};
        _cleanup_free_ char *why = NULL;
        ASSERT_OK(oci_image_read(dfd, &l, &img, &why));
        ASSERT_NULL(why);
        ASSERT_STREQ(img.manifest_digest, digest);
        ASSERT_STREQ(img.manifest_media_type, OCI_MEDIA_TYPE_MANIFEST);
        ASSERT_STREQ(img.layer_media_type, OCI_MEDIA_TYPE_LAYER);
        ASSERT_EQ(img.layer_compression, OCI_COMPRESSION_NONE);
        ASSERT_EQ(img.layer_size, strlen(LAYER));
        char layer_digest[OCI_DIGEST_MAX], path[128];
        digest_of(LAYER, strlen(LAYER), layer_digest);
        ASSERT_STREQ(img.layer_digest, layer_digest);
        ASSERT_STREQ(img.layer_diff_id, layer_digest);
        blob_name(layer_digest, path);
        ASSERT_STREQ(img.layer_path, path);
        ASSERT_STREQ(img.architecture, "amd64");
        ASSERT_STREQ(img.os, "linux");

        /* The fd is the verified layer, at its start. */
        char buf[256];
        ssize_t n = read(img.layer_fd, buf, sizeof(buf));
        ASSERT_EQ(n, (ssize_t)strlen(LAYER));
        ASSERT_TRUE(memcmp(buf, LAYER, (size_t)n) == 0);

        /* Each runtime's detection key, where it reads it: the manifest. */
        ASSERT_STREQ(oci_annotation_get(&img, CRIO_CHECKPOINT_NAME), "count");
        ASSERT_STREQ(oci_annotation_get(&img, CRIU_CHECKPOINT_CONTAINER_NAME), "count");
        ASSERT_STREQ(oci_annotation_get(&img, PODMAN_CHECKPOINT_RUNTIME_NAME), "runc");
        ASSERT_STREQ(oci_annotation_get(&img, PODMAN_CHECKPOINT_CRIU_VERSION), "31900");
        ASSERT_STREQ(oci_annotation_get(&img, KYB_CHECKPOINT_K8S_NAMESPACE), "team-a");
        ASSERT_STREQ(oci_annotation_get(&img, KYB_CHECKPOINT_POD), "counter");
        ASSERT_STREQ(oci_annotation_get(&img, KYB_CHECKPOINT_CONTAINERD_NAMESPACE), "k8s.io");
        ASSERT_STREQ(oci_annotation_get(&img, KYB_CHECKPOINT_IMAGE), "docker.io/library/busybox:1.36");
        ASSERT_STREQ(oci_annotation_get(&img, KYB_CHECKPOINT_ID), "0123abcd");
        ASSERT_STREQ(oci_annotation_get(&img, KYB_CHECKPOINT_KERNEL), "6.1.0-test");
        ASSERT_NULL(oci_annotation_get(&img, "io.kybernate.checkpoint.nothing"));
        oci_image_done(&img);
        ASSERT_EQ(img.layer_fd, -EBADF);
        oci_image_done(&img); /* twice is fine */

        /* index.json names it with the ref name. */
        _cleanup_free_ char *index = NULL;
        _cleanup_close_ int ifd = openat(dfd, "index.json", O_RDONLY | O_CLOEXEC);
        ASSERT_TRUE(ifd >= 0);
        ASSERT_OK(read_full_fd(ifd, 65536, &index, NULL));
        ASSERT_NOT_NULL(strstr(index, "\"org.opencontainers.image.ref.name\":\"latest\""));
        ASSERT_NOT_NULL(strstr(index, digest));
}

TEST(write_is_deterministic) {
        _cleanup_close_ int a = open_dir(test_tmpdir());
        _cleanup_close_ int b = open_dir(test_tmpdir());
        char da[OCI_DIGEST_MAX], db[OCI_DIGEST_MAX];
        write_image(a, da);
        write_image(b, db);
        ASSERT_STREQ(da, db);
        /* Writing again into the same layout (a retry) works too. */
        write_image(a, db);
        ASSERT_STREQ(da, db);
}

TEST(write_compressed_layer) {
        _cleanup_close_ int dfd = open_dir(test_tmpdir());
        put_file(dfd, "layer.tar.zst", LAYER, strlen(LAYER));
        const char *diff = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
        OciImageWrite w = {.layer_path = "layer.tar.zst",
                           .layer_media_type = OCI_MEDIA_TYPE_LAYER_ZSTD,
                           .created = "2026-12-06T00:00:00Z",
                           .architecture = "arm64",
                           .os = "linux"};
        char digest[OCI_DIGEST_MAX];
        ASSERT_ERROR(oci_image_write(dfd, &w, digest), EINVAL); /* no diff_id */
        w.layer_diff_id = diff;
        ASSERT_OK(oci_image_write(dfd, &w, digest));
        OciImageLimits l = OCI_IMAGE_LIMITS_DEFAULT;
        OciImage img = {.layer_fd = -EBADF};
        ASSERT_OK(oci_image_read(dfd, &l, &img, NULL));
        ASSERT_EQ(img.layer_compression, OCI_COMPRESSION_ZSTD);
        ASSERT_STREQ(img.layer_diff_id, diff);
        ASSERT_EQ(img.n_annotations, 0);
        oci_image_done(&img);
}

TEST(write_refuses_bad_annotations) {
        _cleanup_close_ int dfd = open_dir(test_tmpdir());
        put_file(dfd, "layer.tar", LAYER, strlen(LAYER));
        OciAnnotation dup[] = {{"a.b", "1"}, {"a.b", "2"}};
        OciAnnotation bad_key[] = {{"a b", "1"}};
        OciAnnotation bad_value[] = {{"a.b", "x\001y"}};
        OciImageWrite w = {.layer_path = "layer.tar",
                           .created = "2026-12-06T00:00:00Z",
                           .architecture = "amd64",
                           .os = "linux"};
        char digest[OCI_DIGEST_MAX];
        w.annotations = dup, w.n_annotations = 2;
        ASSERT_ERROR(oci_image_write(dfd, &w, digest), EINVAL);
        put_file(dfd, "layer.tar", LAYER, strlen(LAYER));
        w.annotations = bad_key, w.n_annotations = 1;
        ASSERT_ERROR(oci_image_write(dfd, &w, digest), EINVAL);
        put_file(dfd, "layer.tar", LAYER, strlen(LAYER));
        w.annotations = bad_value;
        ASSERT_ERROR(oci_image_write(dfd, &w, digest), EINVAL);
        ASSERT_TRUE(faccessat(dfd, "index.json", F_OK, 0) < 0); /* nothing committed */
}

TEST(checkpoint_annotations) {
        OciCheckpointInfo info = {.container_name = "c", .runtime_name = "crun"};
        OciAnnotation *a = NULL;
        size_t n = 0;
        ASSERT_OK(oci_checkpoint_annotations(&info, &a, &n));
        bool crio = false, criu = false, podman = false, kyb = false, pod = false;
        for (size_t i = 0; i < n; i++) {
                ASSERT_TRUE(oci_annotation_key_valid(a[i].key));
                for (size_t j = i + 1; j < n; j++)
                        ASSERT_FALSE(streq(a[i].key, a[j].key));
                crio |= streq(a[i].key, CRIO_CHECKPOINT_NAME) && streq(a[i].value, "c");
                criu |= streq(a[i].key, CRIU_CHECKPOINT_CONTAINER_NAME) && streq(a[i].value, "c");
                podman |= streq(a[i].key, PODMAN_CHECKPOINT_RUNTIME_NAME) && streq(a[i].value, "crun");
                kyb |= streq(a[i].key, KYB_CHECKPOINT_CONTAINER) && streq(a[i].value, "c");
                pod |= streq(a[i].key, KYB_CHECKPOINT_POD); /* NULL fields are left out */
        }
        ASSERT_TRUE(crio && criu && podman && kyb && !pod);
        oci_annotations_free(a, n);
        info.container_name = NULL;
        ASSERT_ERROR(oci_checkpoint_annotations(&info, &a, &n), EINVAL);
        info.container_name = "bad\033[2J";
        ASSERT_ERROR(oci_checkpoint_annotations(&info, &a, &n), EINVAL);
}

/* A pod's image: our keys only (every one of them: the set's first
 * FOREIGN_KEYS are exactly the other runtimes'), with its members. */
TEST(pod_checkpoint_annotations) {
        OciCheckpointInfo info = {.checkpoint_id = "x", .pod_name = "p", .pod_members = "a,b"};
        OciAnnotation *a = NULL;
        size_t n = 0;
        ASSERT_OK(oci_checkpoint_annotations(&info, &a, &n));
        bool members = false, id = false, runtime = false;
        for (size_t i = 0; i < n; i++) {
                ASSERT_TRUE(startswith(a[i].key, KYB_CHECKPOINT_PREFIX) ||
                            streq(a[i].key, OCI_ANNOTATION_CREATED));
                members |= streq(a[i].key, KYB_CHECKPOINT_POD_MEMBERS) && streq(a[i].value, "a,b");
                id |= streq(a[i].key, KYB_CHECKPOINT_ID) && streq(a[i].value, "x");
                runtime |= streq(a[i].key, KYB_CHECKPOINT_RUNTIME);
        }
        ASSERT_TRUE(members && id && runtime);
        oci_annotations_free(a, n);
}

TEST(hand_built_layout_reads) {
        build_and_read(&(Spec){.annotations = "{\"a.b\":\"one\",\"c/d\":\"two\\nlines\"}"}, NULL, 0);
        /* Docker schema 2, as a registry may serve it. */
        build_and_read(&(Spec){.manifest_type = DOCKER_MEDIA_TYPE_MANIFEST,
                               .config_type = DOCKER_MEDIA_TYPE_CONFIG,
                               .layer_type = DOCKER_MEDIA_TYPE_LAYER},
                       NULL, 0);
}

/* Overwrites a blob in place (its name, i.e. its digest, unchanged). */
static void tamper(int dfd, const char *digest, const char *what, size_t len) {
        char name[128];
        blob_name(digest, name);
        put_file(dfd, name, what, len);
}

TEST(refuses_digest_mismatch_of_each_blob) {
        for (int which = 0; which < 3; which++) {
                _cleanup_close_ int dfd = open_dir(test_tmpdir());
                Built b;
                build(dfd, &(Spec){}, &b);
                const char *d = which == 0 ? b.layer : which == 1 ? b.config : b.manifest;
                /* Same size, other bytes. */
                char name[128];
                blob_name(d, name);
                _cleanup_free_ char *text = NULL;
                size_t len;
                _cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
                ASSERT_TRUE(fd >= 0);
                ASSERT_OK(read_full_fd(fd, 1 << 20, &text, &len));
                text[len / 2] ^= 0x01;
                tamper(dfd, d, text, len);
                OciImageLimits l = OCI_IMAGE_LIMITS_DEFAULT;
                read_expect(dfd, &l, -EBADMSG);
        }
}

TEST(refuses_size_mismatch_and_truncation) {
        _cleanup_close_ int dfd = open_dir(test_tmpdir());
        Built b;
        build(dfd, &(Spec){}, &b);
        OciImageLimits l = OCI_IMAGE_LIMITS_DEFAULT;
        tamper(dfd, b.layer, LAYER "x", strlen(LAYER) + 1);
        read_expect(dfd, &l, -EBADMSG);
        tamper(dfd, b.layer, LAYER, strlen(LAYER) - 3); /* truncated */
        read_expect(dfd, &l, -EBADMSG);
        tamper(dfd, b.layer, "", 0);
        read_expect(dfd, &l, -EBADMSG);
        tamper(dfd, b.layer, LAYER, strlen(LAYER));
        read_expect(dfd, &l, 0);
        /* A truncated manifest. */
        char name[128];
        blob_name(b.manifest, name);
        _cleanup_close_ int mfd = openat(dfd, name, O_WRONLY | O_CLOEXEC);
        ASSERT_TRUE(mfd >= 0);
        ASSERT_OK(ftruncate(mfd, 10));
        read_expect(dfd, &l, -EBADMSG);
}

TEST(refuses_symlinks_and_special_files) {
        OciImageLimits l = OCI_IMAGE_LIMITS_DEFAULT;
        {
                _cleanup_close_ int dfd = open_dir(test_tmpdir());
                Built b;
                build(dfd, &(Spec){}, &b);
                char name[128];
                blob_name(b.layer, name);
                put_file(dfd, "real-layer", LAYER, strlen(LAYER));
                ASSERT_OK(unlinkat(dfd, name, 0));
                ASSERT_OK(symlinkat("../../real-layer", dfd, name));
                read_expect(dfd, &l, -ELOOP);
                /* A FIFO never blocks the reader. */
                ASSERT_OK(unlinkat(dfd, name, 0));
                ASSERT_OK(mkfifoat(dfd, name, 0600));
                read_expect(dfd, &l, -EBADMSG);
                /* A directory. */
                ASSERT_OK(unlinkat(dfd, name, 0));
                ASSERT_OK(mkdirat(dfd, name, 0700));
                read_expect(dfd, &l, -EBADMSG);
        }
        {
                /* blobs/ a symlink to a layout elsewhere. */
                const char *other = test_tmpdir();
                _cleanup_close_ int ofd = open_dir(other);
                Built b;
                build(ofd, &(Spec){}, &b);
                _cleanup_close_ int dfd = open_dir(test_tmpdir());
                build(dfd, &(Spec){}, &b);
                ASSERT_OK(renameat(dfd, "blobs", dfd, "old-blobs"));
                _cleanup_free_ char *target = NULL;
                ASSERT_TRUE(asprintf(&target, "%s/blobs", other) > 0);
                ASSERT_OK(symlinkat(target, dfd, "blobs"));
                read_expect(dfd, &l, -ELOOP);
        }
        {
                _cleanup_close_ int dfd = open_dir(test_tmpdir());
                Built b;
                build(dfd, &(Spec){}, &b);
                ASSERT_OK(renameat(dfd, "index.json", dfd, "real-index.json"));
                ASSERT_OK(symlinkat("real-index.json", dfd, "index.json"));
                read_expect(dfd, &l, -ELOOP);
                ASSERT_OK(unlinkat(dfd, "index.json", 0));
                read_expect(dfd, &l, -ENOENT);
        }
}

#define HEX64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

TEST(refuses_bad_digests) {
        build_and_read(&(Spec){.manifest_digest = "sha256:../../../../etc/passwd"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.manifest_digest = "sha256:../" HEX64}, NULL, -EBADMSG);
        build_and_read(&(Spec){.layer_digest = "sha256:" HEX64 "/../x"}, NULL, -EBADMSG);
        build_and_read(
                &(Spec){.layer_digest =
                                "sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"},
                NULL, -EBADMSG);
        build_and_read(&(Spec){.layer_digest = "sha256:" HEX64 "0"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.layer_digest = "sha256:"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.layer_digest = "sha512:" HEX64 HEX64}, NULL, -ENOTSUP);
        build_and_read(&(Spec){.layer_digest = "/etc/passwd"}, NULL, -ENOTSUP);
        /* Valid, but no such blob. */
        build_and_read(
                &(Spec){.layer_digest = "sha256:" HEX64,
                        .config = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" HEX64 "\"]}}"},
                NULL, -ENOENT);
        /* The layer's diff_id in the config is not the layer's digest. */
        build_and_read(&(Spec){.layer_digest = "sha256:" HEX64}, NULL, -EBADMSG);
        /* The config's diff_id must be the uncompressed layer's digest. */
        build_and_read(
                &(Spec){.config = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:" HEX64 "\"]}}"},
                NULL, -EBADMSG);
        build_and_read(&(Spec){.config = "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}"}, NULL,
                       -EBADMSG);
}

TEST(refuses_oversize) {
        OciImageLimits l = OCI_IMAGE_LIMITS_DEFAULT;
        l.max_json_bytes = 100; /* the manifest is larger */
        build_and_read(&(Spec){}, &l, -EFBIG);
        l = OCI_IMAGE_LIMITS_DEFAULT;
        l.max_json_bytes = 20; /* even oci-layout is larger */
        build_and_read(&(Spec){}, &l, -EFBIG);
        l = OCI_IMAGE_LIMITS_DEFAULT;
        l.max_layer_bytes = strlen(LAYER) - 1;
        build_and_read(&(Spec){}, &l, -EFBIG);
        l.max_layer_bytes = strlen(LAYER);
        build_and_read(&(Spec){}, &l, 0);

        l = OCI_IMAGE_LIMITS_DEFAULT;
        l.max_annotations = 2;
        build_and_read(&(Spec){.annotations = "{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}"}, &l, -EFBIG);
        build_and_read(&(Spec){.annotations = "{\"a\":\"1\",\"b\":\"2\"}"}, &l, 0);
        l.max_annotation_bytes = 3;
        build_and_read(&(Spec){.annotations = "{\"a\":\"1234\"}"}, &l, -EFBIG);

        /* A descriptor size beyond what JSON numbers hold exactly. */
        build_and_read(&(Spec){.layer_extra = ",\"size\":1e300"}, NULL, -EBADMSG);
}

TEST(refuses_malformed_json) {
        /* Duplicate keys: a Go reader would see the other one. */
        build_and_read(&(Spec){.annotations = "{\"a\":\"1\",\"a\":\"2\"}"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.manifest_extra = ",\"schemaVersion\":2"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.layer_extra = ",\"digest\":\"sha256:" HEX64 "\""}, NULL, -EBADMSG);
        /* A NUL escape would cut a string short. */
        build_and_read(&(Spec){.annotations = "{\"a\":\"x\\u0000y\"}"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.annotations = "{\"a\":\"\\u001b[2J\"}"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.annotations = "{\"a b\":\"1\"}"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.annotations = "{\"a\":1}"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.annotations = "[]"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.layer_extra = ",\"size\":-1"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.layer_extra = ",\"size\":1.5"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.layer_extra = ",\"size\":\"12\""}, NULL, -EBADMSG);
        build_and_read(&(Spec){.config = "not json"}, NULL, -EBADMSG);
        build_and_read(&(Spec){.manifest_extra = "}{\"x\":1"}, NULL, -EBADMSG);         /* data after it */
        build_and_read(&(Spec){.annotations = "{\"a\":\"\xff\"}"}, NULL, -EBADMSG);     /* not UTF-8 */
        build_and_read(&(Spec){.annotations = "{\"a\":\"\xc0\xaf\"}"}, NULL, -EBADMSG); /* overlong */
        build_and_read(&(Spec){.annotations = "{\"a\":\"\xed\xa0\x80\"}"}, NULL, -EBADMSG); /* surrogate */
        build_and_read(&(Spec){.annotations = "{\"a\":\"caf\xc3\xa9 \xf0\x9f\x90\xa7\"}"}, NULL, 0);
        build_and_read(&(Spec){.config = "[1,2]"}, NULL, -EBADMSG);

        OciImageLimits l = OCI_IMAGE_LIMITS_DEFAULT;
        _cleanup_close_ int dfd = open_dir(test_tmpdir());
        Built b;
        build(dfd, &(Spec){}, &b);
        put_file(dfd, "index.json", "{\"schemaVersion\":2,\"manifests\":[", 33);
        read_expect(dfd, &l, -EBADMSG);
        put_file(dfd, "index.json", "{\"schemaVersion\":1,\"manifests\":[]}", 34);
        read_expect(dfd, &l, -EBADMSG);
        put_file(dfd, "index.json", "{\"schemaVersion\":2}", 19);
        read_expect(dfd, &l, -EBADMSG);
        put_file(dfd, "oci-layout", "{\"imageLayoutVersion\":\"2.0.0\"}", 30);
        read_expect(dfd, &l, -ENOTSUP);
}

TEST(refuses_unsupported) {
        build_and_read(&(Spec){.index_copies = 2}, NULL, -ENOTSUP);
        build_and_read(&(Spec){.layer_type = "application/vnd.oci.image.layer.v1.tar+lz4"}, NULL, -ENOTSUP);
        build_and_read(&(Spec){.layer_type = "application/vnd.oci.image.layer.nondistributable.v1.tar"},
                       NULL, -ENOTSUP);
        /* A Docker layer type in an OCI manifest, and the other way round. */
        build_and_read(&(Spec){.layer_type = DOCKER_MEDIA_TYPE_LAYER_GZIP}, NULL, -ENOTSUP);
        build_and_read(&(Spec){.manifest_type = DOCKER_MEDIA_TYPE_MANIFEST,
                               .config_type = DOCKER_MEDIA_TYPE_CONFIG},
                       NULL, -ENOTSUP);
        build_and_read(&(Spec){.manifest_type = OCI_MEDIA_TYPE_INDEX}, NULL, -ENOTSUP);
        build_and_read(&(Spec){.config_type = "application/vnd.example.config+json"}, NULL, -ENOTSUP);
        build_and_read(&(Spec){.layer_extra = ",\"urls\":[\"https://example.com/layer\"]"}, NULL, -ENOTSUP);
}

TEST(refuses_two_layers) {
        _cleanup_close_ int dfd = open_dir(test_tmpdir());
        Built b;
        build(dfd, &(Spec){}, &b);
        char config[512], manifest[1024], index[512], cd[OCI_DIGEST_MAX], md[OCI_DIGEST_MAX];
        snprintf(config, sizeof(config), "{\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"%s\",\"%s\"]}}",
                 b.layer, b.layer);
        put_blob(dfd, config, strlen(config), cd);
        snprintf(manifest, sizeof(manifest),
                 "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"config\":{\"mediaType\":\"%s\",\"digest\":"
                 "\"%s\",\"size\":%zu},\"layers\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu},"
                 "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
                 OCI_MEDIA_TYPE_MANIFEST, OCI_MEDIA_TYPE_CONFIG, cd, strlen(config), OCI_MEDIA_TYPE_LAYER,
                 b.layer, strlen(LAYER), OCI_MEDIA_TYPE_LAYER, b.layer, strlen(LAYER));
        put_blob(dfd, manifest, strlen(manifest), md);
        snprintf(
                index, sizeof(index),
                "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu}]}",
                OCI_MEDIA_TYPE_MANIFEST, md, strlen(manifest));
        put_file(dfd, "index.json", index, strlen(index));
        OciImageLimits l = OCI_IMAGE_LIMITS_DEFAULT;
        read_expect(dfd, &l, -ENOTSUP);
}

TEST(read_pinned) {
        _cleanup_free_ char *dir = strdup(test_tmpdir());
        ASSERT_NOT_NULL(dir);
        _cleanup_close_ int dfd = open_dir(dir);
        char digest[OCI_DIGEST_MAX];
        write_image(dfd, digest);
        OciImage img;
        _cleanup_free_ char *why = NULL;
        ASSERT_OK(oci_image_read_pinned(dir, digest, &img, &why));
        ASSERT_STREQ(img.manifest_digest, digest);
        ASSERT_TRUE(img.layer_fd >= 0);
        oci_image_done(&img);

        /* Another manifest than the one pinned. */
        ASSERT_EQ(oci_image_read_pinned(
                          dir, "sha256:0000000000000000000000000000000000000000000000000000000000000000",
                          &img, &why),
                  -EBADMSG);
        ASSERT_NOT_NULL(strstr(why, "not sha256:0000"));
        ASSERT_EQ(img.layer_fd, -EBADF);
        free(why);
        why = NULL;

        /* A valid image without a checkpoint annotation. */
        _cleanup_free_ char *dir2 = strdup(test_tmpdir());
        ASSERT_NOT_NULL(dir2);
        _cleanup_close_ int dfd2 = open_dir(dir2);
        Built b;
        build(dfd2, &(Spec){}, &b);
        ASSERT_EQ(oci_image_read_pinned(dir2, b.manifest, &img, &why), -EMEDIUMTYPE);
        ASSERT_NOT_NULL(strstr(why, "not a checkpoint image"));
        free(why);
        why = NULL;

        ASSERT_EQ(oci_image_read_pinned("/nonexistent-layout", digest, &img, &why), -ENOENT);
        ASSERT_NOT_NULL(why);
}

/* A child writing n bytes into a pipe, then exiting with code: a decompressor
 * that goes on after the tar reader stopped. */
static pid_t writer(uint64_t n, int code, int *ret_fd) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                char buf[4096] = {};
                for (uint64_t done = 0; done < n;) {
                        size_t k = n - done < sizeof(buf) ? (size_t)(n - done) : sizeof(buf);
                        if (write(p[1], buf, k) != (ssize_t)k)
                                _exit(3); /* EPIPE: SIGPIPE is ignored below */
                        done += k;
                }
                _exit(code);
        }
        close(p[1]);
        *ret_fd = p[0];
        return pid;
}

TEST(layer_end) {
        /* As zstd -dc: ignoring SIGPIPE turns a closed pipe into exit 3. */
        signal(SIGPIPE, SIG_IGN);
        int fd;
        /* The padding after the end-of-archive blocks is read, not cut off. */
        pid_t pid = writer(256 * 1024, 0, &fd);
        ASSERT_TRUE(pid > 0);
        ASSERT_OK(archive_decompress_end(fd, pid, true));
        /* More than ARCHIVE_TRAILER_MAX after the archive: refused. */
        pid = writer(ARCHIVE_TRAILER_MAX + 4096, 0, &fd);
        ASSERT_ERROR(archive_decompress_end(fd, pid, true), EBADMSG);
        /* A decompressor that fails: refused. */
        pid = writer(10, 1, &fd);
        ASSERT_ERROR(archive_decompress_end(fd, pid, true), EBADMSG);
        /* An incomplete read: the decompressor is stopped, nothing to say. */
        pid = writer(UINT64_C(1) << 30, 0, &fd);
        ASSERT_OK(archive_decompress_end(fd, pid, false));
        signal(SIGPIPE, SIG_DFL);
}
