/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the OCI image layout reader. The input is three parts
 * split at NUL bytes: index.json, the manifest and the config. Digests cannot
 * be guessed, so the harness fills them in: in the manifest "@C"/"@c" become
 * the config's digest/size and "@L"/"@l" the layer's (a fixed blob), in
 * index.json "@M"/"@m" the manifest's. The files go to a scratch layout
 * directory made on the first run. */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "oci-image.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LAYER "fuzz layer"

static int dir_fd = -EBADF;
static char dir_path[] = "/tmp/fuzz-oci-image-XXXXXX";
static char layer_digest[OCI_DIGEST_MAX];

/* The scratch layout goes when the fuzzer exits normally. */
static void remove_layout(void) {
        char name[128];
        snprintf(name, sizeof(name), "blobs/sha256/%s", layer_digest + 7);
        (void)unlinkat(dir_fd, name, 0);
        (void)unlinkat(dir_fd, "index.json", 0);
        (void)unlinkat(dir_fd, "oci-layout", 0);
        (void)unlinkat(dir_fd, "blobs/sha256", AT_REMOVEDIR);
        (void)unlinkat(dir_fd, "blobs", AT_REMOVEDIR);
        (void)rmdir(dir_path);
}

static void digest_of(const void *buf, size_t len, char ret[static OCI_DIGEST_MAX]) {
        char hex[65];
        sha256_hex(buf, len, hex);
        snprintf(ret, OCI_DIGEST_MAX, "sha256:%s", hex);
}

static void put(const char *name, const void *buf, size_t len) {
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                abort();
        if (write_all(fd, buf, len) < 0)
                abort();
        close(fd);
}

static void put_blob(const void *buf, size_t len, char ret_digest[static OCI_DIGEST_MAX]) {
        char name[128];
        digest_of(buf, len, ret_digest);
        snprintf(name, sizeof(name), "blobs/sha256/%s", ret_digest + 7);
        put(name, buf, len);
}

/* text with "@X" replaced by x_digest and "@x" by x_size, for X in keys. */
static char *expand(const uint8_t *p, size_t len, const char *keys, const char *const *digests,
                    const size_t *sizes, size_t *ret_len) {
        size_t cap = len * 40 + 1, n = 0;
        char *out = malloc(cap);
        if (!out)
                abort();
        for (size_t i = 0; i < len; i++) {
                int c = i + 1 < len && p[i] == '@' ? p[i + 1] & 0xdf : 0;
                const char *k = c ? strchr(keys, c) : NULL;
                if (k) {
                        size_t j = (size_t)(k - keys);
                        n += (size_t)(p[i + 1] >= 'a' ? sprintf(out + n, "%zu", sizes[j])
                                                      : sprintf(out + n, "%s", digests[j]));
                        i++;
                } else
                        out[n++] = (char)p[i];
        }
        *ret_len = n;
        return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (dir_fd < 0) {
                if (!mkdtemp(dir_path))
                        abort();
                dir_fd = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dir_fd < 0 || mkdirat(dir_fd, "blobs", 0700) < 0 ||
                    mkdirat(dir_fd, "blobs/sha256", 0700) < 0)
                        abort();
                put("oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
                put_blob(LAYER, strlen(LAYER), layer_digest);
                atexit(remove_layout);
        }

        const uint8_t *parts[3] = {data, NULL, NULL};
        size_t lens[3] = {size, 0, 0};
        for (int i = 0; i < 2; i++) {
                const uint8_t *z = memchr(parts[i], 0, lens[i]);
                if (!z)
                        return 0;
                parts[i + 1] = z + 1;
                lens[i + 1] = lens[i] - (size_t)(z + 1 - parts[i]);
                lens[i] = (size_t)(z - parts[i]);
        }

        char config_digest[OCI_DIGEST_MAX], manifest_digest[OCI_DIGEST_MAX];
        put_blob(parts[2], lens[2], config_digest);
        size_t mlen, ilen;
        const char *md[] = {config_digest, layer_digest};
        const size_t ms[] = {lens[2], strlen(LAYER)};
        char *manifest = expand(parts[1], lens[1], "CL", md, ms, &mlen);
        put_blob(manifest, mlen, manifest_digest);
        const char *id[] = {manifest_digest};
        const size_t is[] = {mlen};
        char *index = expand(parts[0], lens[0], "M", id, is, &ilen);
        put("index.json", index, ilen);

        OciImageLimits l = OCI_IMAGE_LIMITS_DEFAULT;
        l.max_json_bytes = 1 << 16;
        OciImage img;
        char *why = NULL;
        int r = oci_image_read(dir_fd, &l, &img, &why);
        if (r >= 0) {
                (void)oci_annotation_get(&img, CRIO_CHECKPOINT_NAME);
                if (img.layer_fd < 0)
                        abort();
        } else if (!why && r != -ENOMEM)
                abort(); /* every refusal says why */
        oci_image_done(&img);
        free(why);

        /* The manifest and config blobs go; the layer stays for the next run. */
        char name[128];
        snprintf(name, sizeof(name), "blobs/sha256/%s", manifest_digest + 7);
        if (!streq(manifest_digest, layer_digest))
                (void)unlinkat(dir_fd, name, 0);
        if (!streq(config_digest, layer_digest) && !streq(config_digest, manifest_digest)) {
                snprintf(name, sizeof(name), "blobs/sha256/%s", config_digest + 7);
                (void)unlinkat(dir_fd, name, 0);
        }
        free(manifest);
        free(index);
        return 0;
}
