/* SPDX-License-Identifier: Apache-2.0 */
#include "oci-image.h"
#include "oci-image-internal.h"

#include <cJSON.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "archive.h"
#include "image-ref.h"
#include "sha256.h"
#include "spawn-child.h"
#include "util.h"

/* JSON numbers are doubles: sizes above 2^53 cannot be exact. */
#define JSON_MAX_EXACT_INT (UINT64_C(1) << 53)

bool oci_annotation_key_valid(const char *key) {
        size_t n = key ? strlen(key) : 0;
        if (n == 0 || n > OCI_ANNOTATION_KEY_MAX)
                return false;
        for (const char *p = key; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      *p == '.' || *p == '_' || *p == '-' || *p == '/'))
                        return false;
        return true;
}

void oci_digest_of(const void *buf, size_t len, char ret[static OCI_DIGEST_MAX]) {
        char hex[65];
        sha256_hex(buf, len, hex);
        snprintf(ret, OCI_DIGEST_MAX, "%s%s", OCI_DIGEST_PREFIX, hex);
}

bool oci_annotation_value_valid(const char *v) {
        for (const unsigned char *p = (const unsigned char *)v; *p; p++)
                if ((*p < 0x20 && *p != '\t' && *p != '\n') || *p == 0x7f)
                        return false;
        return true;
}

void oci_annotations_free(OciAnnotation *a, size_t n) {
        for (size_t i = 0; a && i < n; i++) {
                free(a[i].key);
                free(a[i].value);
        }
        free(a);
}

_printf_(2, 3) static int fail(char **ret_error, const char *fmt, ...) {
        if (ret_error && !*ret_error) {
                va_list ap;
                va_start(ap, fmt);
                *ret_error = strdup_vprintf(fmt, ap);
                va_end(ap);
        }
        return 0;
}
/* Records why and answers r. */
#define FAIL(r, ...) (fail(ret_error, __VA_ARGS__), (r))

/* ---- reading ---- */

/* Streams fd from its start into sha256, refusing more than max bytes. */
int oci_hash_fd(int fd, uint64_t max, char ret_digest[static OCI_DIGEST_MAX], uint64_t *ret_size) {
        _cleanup_free_ uint8_t *buf = malloc(HASH_CHUNK);
        if (!buf)
                return -ENOMEM;
        Sha256 s;
        sha256_init(&s);
        uint64_t total = 0;
        for (;;) {
                ssize_t n = read_full_at(fd, buf, HASH_CHUNK, (off_t)total);
                if (n < 0)
                        return (int)n;
                if (n == 0)
                        break;
                total += (uint64_t)n;
                if (total > max)
                        return -EFBIG;
                sha256_update(&s, buf, (size_t)n);
        }
        uint8_t d[32];
        char hex[65];
        sha256_final(&s, d);
        sha256_to_hex(d, hex);
        snprintf(ret_digest, OCI_DIGEST_MAX, "%s%s", OCI_DIGEST_PREFIX, hex);
        *ret_size = total;
        return 0;
}

/* Opens name in dir_fd as a regular file, never through a symlink and never
 * blocking on a FIFO. */
static int open_regular_at(int dir_fd, const char *name, struct stat *ret_st) {
        _cleanup_close_ int fd =
                openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, ret_st) < 0)
                return negative_errno();
        if (!S_ISREG(ret_st->st_mode))
                return -EBADMSG;
        return TAKE_FD(fd);
}

/* Opens a directory, never through a symlink: -ELOOP for one (O_DIRECTORY
 * answers ENOTDIR before O_NOFOLLOW's ELOOP). */
static int open_dir_at(int dir_fd, const char *name) {
        int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
                return fd;
        int r = negative_errno();
        struct stat st;
        if (r == -ENOTDIR && fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
                return -ELOOP;
        return r;
}

/* Reads a whole small file (bounded) from dir_fd/name. */
static int read_small_at(int dir_fd, const char *name, size_t max, char **ret, size_t *ret_size,
                         char **ret_error) {
        struct stat st;
        _cleanup_close_ int fd = open_regular_at(dir_fd, name, &st);
        if (fd < 0)
                return FAIL(fd, "%s: %s", name, fd == -EBADMSG ? "not a regular file" : strerror(-fd));
        if ((uint64_t)st.st_size > max)
                return FAIL(-EFBIG, "%s: %" PRIu64 " bytes, more than the limit of %zu", name,
                            (uint64_t)st.st_size, max);
        int r = read_full_fd(fd, max, ret, ret_size);
        if (r == -EFBIG)
                return FAIL(r, "%s: more than the limit of %zu bytes", name, max);
        if (r < 0)
                return FAIL(r, "%s: %s", name, strerror(-r));
        return 0;
}

/* Duplicate keys anywhere in the tree are refused: readers that take the
 * first and readers that take the last must not see different documents. */
/* NOLINTNEXTLINE(misc-no-recursion): depth bounded (64) */
static bool json_has_duplicates(const cJSON *j, unsigned depth) {
        if (depth > 64)
                return true;
        const cJSON *a, *b;
        cJSON_ArrayForEach(a, j) {
                if (cJSON_IsObject(j))
                        for (b = a->next; b; b = b->next)
                                if (streq(a->string, b->string))
                                        return true;
                if ((cJSON_IsObject(a) || cJSON_IsArray(a)) && json_has_duplicates(a, depth + 1))
                        return true;
        }
        return false;
}

/* Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF):
 * Go's decoder would turn anything else into U+FFFD and see other strings. */
static bool utf8_valid(const unsigned char *p, size_t len) {
        for (size_t i = 0; i < len;) {
                unsigned char c = p[i];
                size_t n;
                uint32_t cp;
                if (c < 0x80) {
                        i++;
                        continue;
                } else if (c >= 0xc2 && c <= 0xdf)
                        n = 1, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3, cp = c & 0x07;
                else
                        return false;
                if (len - i <= n)
                        return false;
                for (size_t k = 1; k <= n; k++) {
                        if ((p[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i + k] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += n + 1;
        }
        return true;
}

static int json_parse(const char *text, size_t len, const char *what, cJSON **ret, char **ret_error) {
        /* A \u0000 escape would silently cut a string short in cJSON. */
        if (memmem(text, len, "\\u0000", 6))
                return FAIL(-EBADMSG, "%s: NUL escape in a string", what);
        if (memchr(text, '\0', len))
                return FAIL(-EBADMSG, "%s: NUL byte", what);
        if (!utf8_valid((const unsigned char *)text, len))
                return FAIL(-EBADMSG, "%s: not UTF-8", what);
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(text, len, &end, false);
        if (!j)
                return FAIL(-EBADMSG, "%s: not valid JSON", what);
        /* Nothing but white space may follow the document. */
        while (end && end < text + len && strchr(" \t\r\n", *end))
                end++;
        if (end != text + len) {
                cJSON_Delete(j);
                return FAIL(-EBADMSG, "%s: data after the JSON document", what);
        }
        if (!cJSON_IsObject(j) || json_has_duplicates(j, 0)) {
                cJSON_Delete(j);
                return FAIL(-EBADMSG, "%s: not a JSON object, or an object with a duplicate key", what);
        }
        *ret = j;
        return 0;
}

static const char *json_str(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A non-negative integer below 2^53. */
static int json_uint(const cJSON *o, const char *key, uint64_t *ret) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
        if (!cJSON_IsNumber(v))
                return -EBADMSG;
        double d = v->valuedouble;
        if (!(d >= 0) || d >= (double)JSON_MAX_EXACT_INT || (double)(uint64_t)d != d)
                return -EBADMSG;
        *ret = (uint64_t)d;
        return 0;
}

typedef struct Descriptor {
        const char *media_type;
        const char *digest;
        uint64_t size;
        const cJSON *annotations;
} Descriptor;

static int descriptor_parse(const cJSON *j, const char *what, Descriptor *ret, char **ret_error) {
        if (!cJSON_IsObject(j))
                return FAIL(-EBADMSG, "%s: descriptor is not an object", what);
        ret->media_type = json_str(j, "mediaType");
        ret->digest = json_str(j, "digest");
        if (!ret->media_type)
                return FAIL(-EBADMSG, "%s: descriptor without a mediaType", what);
        if (!ret->digest)
                return FAIL(-EBADMSG, "%s: descriptor without a digest", what);
        if (!image_digest_valid(ret->digest))
                return FAIL(startswith(ret->digest, OCI_DIGEST_PREFIX) ? -EBADMSG : -ENOTSUP,
                            "%s: digest is not sha256: and 64 lowercase hex digits", what);
        if (json_uint(j, "size", &ret->size) < 0)
                return FAIL(-EBADMSG, "%s: descriptor size is not a non-negative integer", what);
        if (cJSON_GetObjectItemCaseSensitive(j, "urls"))
                return FAIL(-ENOTSUP, "%s: descriptor with urls (a foreign blob)", what);
        ret->annotations = cJSON_GetObjectItemCaseSensitive(j, "annotations");
        if (ret->annotations && !cJSON_IsObject(ret->annotations))
                return FAIL(-EBADMSG, "%s: annotations are not an object", what);
        return 0;
}

/* The one descriptor of the array key of obj (the index's manifests, the
 * manifest's layers): where names obj in messages, one_only ends the one
 * about another count, what names the descriptor. */
static int descriptor_parse_only(const cJSON *obj, const char *where, const char *key, const char *one_only,
                                 const char *what, Descriptor *ret, char **ret_error) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, key);
        if (!cJSON_IsArray(a))
                return FAIL(-EBADMSG, "%s: no %s array", where, key);
        int n = cJSON_GetArraySize(a);
        if (n != 1)
                return FAIL(-ENOTSUP, "%s: %d %s, %s", where, n, key, one_only);
        return descriptor_parse(cJSON_GetArrayItem(a, 0), what, ret, ret_error);
}

/* Opens a descriptor's blob, checks its size and sha256; returns the fd. */
static int blob_open_verified(int sha_fd, const Descriptor *d, uint64_t max, const char *what,
                              char **ret_error) {
        const char *hex = d->digest + strlen(OCI_DIGEST_PREFIX);
        if (d->size > max)
                return FAIL(-EFBIG, "%s: %" PRIu64 " bytes, more than the limit of %" PRIu64, what, d->size,
                            max);
        struct stat st;
        _cleanup_close_ int fd = open_regular_at(sha_fd, hex, &st);
        if (fd == -ELOOP)
                return FAIL(fd, "%s: blob %s is a symlink", what, d->digest);
        if (fd == -EBADMSG)
                return FAIL(fd, "%s: blob %s is not a regular file", what, d->digest);
        if (fd < 0)
                return FAIL(fd, "%s: blob %s: %s", what, d->digest, strerror(-fd));
        if ((uint64_t)st.st_size != d->size)
                return FAIL(-EBADMSG, "%s: blob %s has %" PRIu64 " bytes, its descriptor says %" PRIu64,
                            what, d->digest, (uint64_t)st.st_size, d->size);
        char digest[OCI_DIGEST_MAX];
        uint64_t size;
        int r = oci_hash_fd(fd, d->size, digest, &size);
        if (r == -EFBIG)
                return FAIL(-EBADMSG, "%s: blob %s grew while it was read", what, d->digest);
        if (r < 0)
                return FAIL(r, "%s: blob %s: %s", what, d->digest, strerror(-r));
        if (size != d->size)
                return FAIL(-EBADMSG, "%s: blob %s is truncated (%" PRIu64 " of %" PRIu64 " bytes)", what,
                            d->digest, size, d->size);
        if (!streq(digest, d->digest))
                return FAIL(-EBADMSG, "%s: blob content does not match its digest %s (it is %s)", what,
                            d->digest, digest);
        r = fd_nonblock(fd, false); /* opened non-blocking only so a FIFO could not hang us */
        if (r < 0)
                return FAIL(r, "%s: blob %s: %s", what, d->digest, strerror(-r));
        return TAKE_FD(fd);
}

/* Reads a JSON blob: bounded, read once, hashed and parsed from one buffer. */
static int blob_read_json(int sha_fd, const Descriptor *d, size_t max, const char *what, cJSON **ret,
                          char **ret_error) {
        if (d->size > max)
                return FAIL(-EFBIG, "%s: %" PRIu64 " bytes, more than the limit of %zu", what, d->size, max);
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_small_at(sha_fd, d->digest + strlen(OCI_DIGEST_PREFIX), max, &text, &len, ret_error);
        if (r < 0)
                return r;
        if (len != d->size)
                return FAIL(-EBADMSG, "%s: blob %s has %zu bytes, its descriptor says %" PRIu64, what,
                            d->digest, len, d->size);
        char digest[OCI_DIGEST_MAX];
        oci_digest_of(text, len, digest);
        if (!streq(digest, d->digest))
                return FAIL(-EBADMSG, "%s: blob content does not match its digest %s (it is %s)", what,
                            d->digest, digest);
        return json_parse(text, len, what, ret, ret_error);
}

static int annotations_parse(const cJSON *o, const OciImageLimits *l, OciAnnotation **ret, size_t *ret_n,
                             char **ret_error) {
        size_t n = (size_t)cJSON_GetArraySize(o);
        if (n > l->max_annotations)
                return FAIL(-EFBIG, "manifest: %zu annotations, more than the limit of %zu", n,
                            l->max_annotations);
        OciAnnotation *a = n > 0 ? calloc(n, sizeof(OciAnnotation)) : NULL;
        if (n > 0 && !a)
                return -ENOMEM;
        size_t i = 0;
        int r = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, o) {
                if (i >= n || !a) { /* never: n counted these */
                        r = -EBADMSG;
                        break;
                }
                if (!oci_annotation_key_valid(e->string)) {
                        r = FAIL(-EBADMSG, "manifest: invalid annotation key");
                        break;
                }
                if (!cJSON_IsString(e)) {
                        r = FAIL(-EBADMSG, "manifest: annotation %s is not a string", e->string);
                        break;
                }
                if (strlen(e->valuestring) > l->max_annotation_bytes) {
                        r = FAIL(-EFBIG, "manifest: annotation %s longer than %zu bytes", e->string,
                                 l->max_annotation_bytes);
                        break;
                }
                if (!oci_annotation_value_valid(e->valuestring)) {
                        r = FAIL(-EBADMSG, "manifest: annotation %s has control characters", e->string);
                        break;
                }
                a[i].key = strdup(e->string);
                a[i].value = strdup(e->valuestring);
                i++;
                if (!a[i - 1].key || !a[i - 1].value) {
                        r = -ENOMEM;
                        break;
                }
        }
        if (r < 0) {
                oci_annotations_free(a, i);
                return r;
        }
        *ret = a;
        *ret_n = i;
        return 0;
}

static int read_layout_version(int dir_fd, const OciImageLimits *l, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = read_small_at(dir_fd, "oci-layout", l->max_json_bytes, &text, &len, ret_error);
        if (r < 0)
                return r;
        _cleanup_cjson_ cJSON *j = NULL;
        r = json_parse(text, len, "oci-layout", &j, ret_error);
        if (r < 0)
                return r;
        const char *v = json_str(j, "imageLayoutVersion");
        if (!v)
                return FAIL(-EBADMSG, "oci-layout: no imageLayoutVersion");
        if (!startswith(v, "1."))
                return FAIL(-ENOTSUP, "oci-layout: version %s is not 1.x", v);
        return 0;
}

void oci_image_done(OciImage *img) {
        if (!img)
                return;
        free(img->manifest_media_type);
        free(img->layer_path);
        free(img->layer_media_type);
        free(img->architecture);
        free(img->os);
        safe_close(img->layer_fd);
        oci_annotations_free(img->annotations, img->n_annotations);
        *img = (OciImage){.layer_fd = -EBADF};
}

static void oci_image_donep(OciImage **img) {
        oci_image_done(*img);
}

int oci_image_read(int dir_fd, const OciImageLimits *l, OciImage *ret, char **ret_error) {
        int r;

        if (!l || !ret)
                return -EINVAL;
        /* Safe to pass to oci_image_done() whatever happens. */
        *ret = (OciImage){.layer_fd = -EBADF};
        if (ret_error)
                *ret_error = NULL;
        OciImage img = {.layer_fd = -EBADF};
        /* Releases img on every failure; disarmed once ret owns it. */
        _cleanup_(oci_image_donep) OciImage *release = &img;

        r = read_layout_version(dir_fd, l, ret_error);
        if (r < 0)
                return r;

        /* index.json: exactly one manifest. A pull writes a fresh layout for
         * one digest, so more than one means it is not ours to guess. */
        _cleanup_cjson_ cJSON *index = NULL;
        {
                _cleanup_free_ char *text = NULL;
                size_t len;
                r = read_small_at(dir_fd, "index.json", l->max_json_bytes, &text, &len, ret_error);
                if (r < 0)
                        return r;
                r = json_parse(text, len, "index.json", &index, ret_error);
                if (r < 0)
                        return r;
        }
        uint64_t schema;
        if (json_uint(index, "schemaVersion", &schema) < 0 || schema != 2)
                return FAIL(-EBADMSG, "index.json: schemaVersion is not 2");
        const char *index_type = json_str(index, "mediaType");
        if (index_type && !streq(index_type, OCI_MEDIA_TYPE_INDEX))
                return FAIL(-ENOTSUP, "index.json: media type %s", index_type);
        Descriptor md;
        r = descriptor_parse_only(index, "index.json", "manifests", "exactly one expected", "index.json",
                                  &md, ret_error);
        if (r < 0)
                return r;
        if (!streq(md.media_type, OCI_MEDIA_TYPE_MANIFEST) &&
            !streq(md.media_type, DOCKER_MEDIA_TYPE_MANIFEST))
                return FAIL(-ENOTSUP, "index.json: manifest media type %s is not an image manifest",
                            md.media_type);

        _cleanup_close_ int blobs_fd = open_dir_at(dir_fd, "blobs");
        if (blobs_fd < 0)
                return FAIL(blobs_fd, "blobs: %s", strerror(-blobs_fd));
        _cleanup_close_ int sha_fd = open_dir_at(blobs_fd, "sha256");
        if (sha_fd < 0)
                return FAIL(sha_fd, "blobs/sha256: %s", strerror(-sha_fd));

        /* The manifest. */
        _cleanup_cjson_ cJSON *manifest = NULL;
        r = blob_read_json(sha_fd, &md, l->max_json_bytes, "manifest", &manifest, ret_error);
        if (r < 0)
                return r;
        if (json_uint(manifest, "schemaVersion", &schema) < 0 || schema != 2)
                return FAIL(-EBADMSG, "manifest: schemaVersion is not 2");
        const char *mt = json_str(manifest, "mediaType");
        if (mt ? !streq(mt, md.media_type) : streq(md.media_type, DOCKER_MEDIA_TYPE_MANIFEST))
                return FAIL(-EBADMSG, "manifest: its mediaType %s is not its descriptor's %s",
                            mt ?: "(none)", md.media_type);
        bool docker = streq(md.media_type, DOCKER_MEDIA_TYPE_MANIFEST);

        Descriptor cd;
        r = descriptor_parse(cJSON_GetObjectItemCaseSensitive(manifest, "config"), "manifest config", &cd,
                             ret_error);
        if (r < 0)
                return r;
        if (!streq(cd.media_type, docker ? DOCKER_MEDIA_TYPE_CONFIG : OCI_MEDIA_TYPE_CONFIG))
                return FAIL(-ENOTSUP, "manifest: config media type %s", cd.media_type);

        Descriptor ld;
        r = descriptor_parse_only(manifest, "manifest", "layers", "a checkpoint image has exactly one",
                                  "manifest layer", &ld, ret_error);
        if (r < 0)
                return r;
        if (oci_layer_media_type_known(ld.media_type, &img.layer_compression) < 0 ||
            docker != !!startswith(ld.media_type, "application/vnd.docker."))
                return FAIL(-ENOTSUP, "manifest: layer media type %s", ld.media_type);

        const cJSON *ann = cJSON_GetObjectItemCaseSensitive(manifest, "annotations");
        if (ann && !cJSON_IsObject(ann))
                return FAIL(-EBADMSG, "manifest: annotations are not an object");
        if (ann) {
                r = annotations_parse(ann, l, &img.annotations, &img.n_annotations, ret_error);
                if (r < 0)
                        return r;
        }

        /* The config: its diff_id is the uncompressed layer's digest. */
        _cleanup_cjson_ cJSON *config = NULL;
        r = blob_read_json(sha_fd, &cd, l->max_json_bytes, "config", &config, ret_error);
        if (r < 0)
                return r;
        const cJSON *rootfs = cJSON_GetObjectItemCaseSensitive(config, "rootfs");
        const cJSON *diff_ids = cJSON_GetObjectItemCaseSensitive(rootfs, "diff_ids");
        if (!streq_ptr(json_str(rootfs, "type"), "layers") || !cJSON_IsArray(diff_ids))
                return FAIL(-EBADMSG, "config: no rootfs of type layers");
        if (cJSON_GetArraySize(diff_ids) != 1)
                return FAIL(-EBADMSG, "config: %d diff_ids for one layer", cJSON_GetArraySize(diff_ids));
        const cJSON *diff_id = cJSON_GetArrayItem(diff_ids, 0);
        if (!cJSON_IsString(diff_id) || !image_digest_valid(diff_id->valuestring))
                return FAIL(-EBADMSG, "config: diff_id is not a sha256 digest");
        if (img.layer_compression == OCI_COMPRESSION_NONE && !streq(diff_id->valuestring, ld.digest))
                return FAIL(-EBADMSG, "config: diff_id %s is not the uncompressed layer's digest %s",
                            diff_id->valuestring, ld.digest);
        const char *arch = json_str(config, "architecture"), *os = json_str(config, "os");
        if ((arch && !(img.architecture = strdup(arch))) || (os && !(img.os = strdup(os))))
                return -ENOMEM;

        /* The layer, last: the largest. */
        r = blob_open_verified(sha_fd, &ld, l->max_layer_bytes, "layer", ret_error);
        if (r < 0)
                return r;
        img.layer_fd = r;

        memcpy(img.manifest_digest, md.digest, OCI_DIGEST_MAX);
        memcpy(img.layer_digest, ld.digest, OCI_DIGEST_MAX);
        memcpy(img.layer_diff_id, diff_id->valuestring, OCI_DIGEST_MAX);
        img.layer_size = ld.size;
        if (asprintf(&img.layer_path, "blobs/sha256/%s", ld.digest + strlen(OCI_DIGEST_PREFIX)) < 0) {
                img.layer_path = NULL;
                return -ENOMEM;
        }
        if (!(img.layer_media_type = strdup(ld.media_type)) ||
            !(img.manifest_media_type = strdup(md.media_type)))
                return -ENOMEM;

        *ret = *TAKE_PTR(release);
        return 0;
}

const char *oci_annotation_get(const OciImage *img, const char *key) {
        for (size_t i = 0; img && i < img->n_annotations; i++)
                if (streq(img->annotations[i].key, key))
                        return img->annotations[i].value;
        return NULL;
}

static bool is_checkpoint(const OciImage *img) {
        return oci_annotation_get(img, CRIO_CHECKPOINT_NAME) ||
               oci_annotation_get(img, PODMAN_CHECKPOINT_NAME) ||
               oci_annotation_get(img, CRIU_CHECKPOINT_CONTAINER_NAME) ||
               oci_annotation_get(img, KYB_CHECKPOINT_POD_MEMBERS);
}

int oci_image_read_pinned(const char *path, const char *digest, OciImage *ret, char **ret_error) {
        *ret = (OciImage){.layer_fd = -EBADF};
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) {
                int r = negative_errno();
                *ret_error = strdup_printf("cannot open %s: %s", path, strerror(-r));
                return r;
        }
        const OciImageLimits limits = OCI_IMAGE_LIMITS_DEFAULT;
        int r = oci_image_read(dfd, &limits, ret, ret_error);
        if (r >= 0 && !streq(ret->manifest_digest, digest)) {
                *ret_error =
                        strdup_printf("the fetched manifest is %s, not %s", ret->manifest_digest, digest);
                r = -EBADMSG;
        } else if (r >= 0 && !is_checkpoint(ret)) {
                *ret_error = strdup("it is not a checkpoint image (no checkpoint annotation)");
                r = -EMEDIUMTYPE;
        }
        if (r < 0)
                oci_image_done(ret);
        return r;
}

int oci_image_layer_tar(const OciImage *img, int *ret_fd, pid_t *ret_pid) {
        *ret_pid = 0;
        if (img->layer_compression == OCI_COMPRESSION_NONE) {
                *ret_fd = fcntl(img->layer_fd, F_DUPFD_CLOEXEC, 3);
                return *ret_fd < 0 ? negative_errno() : 0;
        }
        return archive_decompress(img->layer_fd,
                                  img->layer_compression == OCI_COMPRESSION_GZIP ? "gzip" : "zstd", ret_fd,
                                  ret_pid);
}
