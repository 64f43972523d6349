/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target for the parsers of the JSON documents that come from
 * outside: a bundle's config.json (the shim's spec parser, the emptyDir
 * volumes of a pod's members), the JSON of an exec process or of resources in
 * a ttrpc Any, an imported archive's spec.dump, kybernate.json and pod.json,
 * runc's state (`runc state` output and state.json). The first byte picks
 * the parser, (byte & 0x7f) % 9:
 *   0 spec_parse (config.json)
 *   1 spec_process_from_any, spec_resources_from_any and
 *     spec_process_with_terminal (the byte's high bit: terminal)
 *   2 metadata_from_spec, metadata_spec_root_path (spec.dump)
 *   3 metadata_parse_pod_json (pod.json)
 *   4 metadata_read_kybernate_json (kybernate.json)
 *   5 metadata_parse_runc_state, _runc_state_pid, _runc_state_frozen
 *   6 pod_volumes_restore (config.json's emptyDir mounts)
 *   7 cri_scan (state.json, NUL, config.json)
 *   8 metadata_write_kybernate_json over an archive's kybernate.json and
 *     metadata_write_status_dump over its spec.dump (both the document)
 * The rest is the document, handed over in a
 * malloc'd NUL-terminated copy (with its exact length where the parser takes
 * one) so that ASan sees any read past it. Parsers that read a directory get
 * the document as a file of a scratch directory made on the first run and
 * removed at exit. Every result is freed with the project's own functions
 * (leaks count) and checked against what the API promises (abort()). */
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "cjson-util.h"
#include "cri-scan.h"
#include "kybernated/metadata.h"
#include "pod-volumes.h"
#include "shim/spec.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ready;
static char dir[] = "/tmp/fuzz-json-XXXXXX";
static char runc_root[64], bundle[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        (void)remove(path);
        return 0;
}

/* The scratch directory goes when the fuzzer exits normally. */
static void remove_dir(void) {
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void setup(void) {
        char c[80];
        if (!mkdtemp(dir))
                abort();
        atexit(remove_dir);
        snprintf(runc_root, sizeof(runc_root), "%s/runc", dir);
        snprintf(bundle, sizeof(bundle), "%s/bundle", dir);
        snprintf(c, sizeof(c), "%s/c", runc_root);
        if (mkdir(runc_root, 0700) < 0 || mkdir(c, 0700) < 0 || mkdir(bundle, 0700) < 0)
                abort();
}

static void put(const char *d, const char *name, const void *buf, size_t len) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", d, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 || write_all(fd, buf, len) < 0)
                abort();
        close(fd);
}

static void drop(const char *d, const char *name) {
        char path[128];
        snprintf(path, sizeof(path), "%s/%s", d, name);
        (void)unlink(path);
}

/* A string field the parsers promise to set only valid. */
static void check_ident(const char *s) {
        if (s && (!*s || !ident_valid(s, IDENT_MAX_LEN)))
                abort();
}

static void check_text(const char *s, size_t max) {
        if (!s)
                return;
        size_t l = strlen(s);
        if (l == 0 || l > max)
                abort();
        for (; *s; s++)
                if ((unsigned char)*s < 0x20 || *s == 0x7f)
                        abort();
}

static void check_entry(const CatalogEntry *e) {
        check_ident(e->containerd_namespace);
        check_ident(e->k8s_namespace);
        check_ident(e->k8s_pod);
        check_ident(e->k8s_container);
        check_ident(e->container_id);
        if (e->image_ref && (strlen(e->image_ref) > IMAGE_REF_MAX || !image_ref_valid(e->image_ref)))
                abort();
        check_text(e->image_digest, 256);
        check_text(e->runc_version, 256);
        check_text(e->criu_version, 256);
        check_text(e->kernel_version, 256);
}

/* The shim's config.json parser. */
static void fuzz_spec(const char *text, size_t len) {
        Spec s = {};
        if (spec_parse(text, len, &s) < 0)
                return;
        if (s.netns_path && s.netns_path[0] != '/')
                abort();
        size_t nk = 0, nv = 0;
        while (s.annotation_keys && s.annotation_keys[nk])
                nk++;
        while (s.annotation_values && s.annotation_values[nv])
                nv++;
        if (nk != nv)
                abort();
        const char *sb = spec_annotation(&s, "io.kubernetes.cri.sandbox-id");
        if (!sb != !s.sandbox_id || (sb && !streq(sb, s.sandbox_id)))
                abort();
        (void)spec_env(&s, "PATH");
        spec_done(&s);
}

/* An exec process and LinuxResources (JSON in an Any of a ttrpc request),
 * and the shim's rewrite of the process's "terminal". */
static void fuzz_process(const char *text, size_t len, bool terminal) {
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        any.type_url = (char *)"types.containerd.io/opencontainers/runtime-spec/1/Process";
        any.value.data = (uint8_t *)text;
        any.value.len = len;
        char *out = NULL;
        if (spec_process_from_any(&any, &out) >= 0) {
                /* What it returns is valid by its own rules. */
                _cleanup_cjson_ cJSON *j = cJSON_Parse(out);
                const cJSON *args = cJSON_GetObjectItemCaseSensitive(j, "args");
                if (!cJSON_IsObject(j) || !cJSON_IsArray(args) || cJSON_GetArraySize(args) < 1)
                        abort();
                free(out);
                out = NULL;
        }
        if (spec_resources_from_any(&any, &out) >= 0) {
                free(out);
                out = NULL;
        }
        if (spec_process_with_terminal(text, terminal, &out) >= 0) {
                _cleanup_cjson_ cJSON *j = cJSON_Parse(out);
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "terminal");
                if (!cJSON_IsObject(j) || !cJSON_IsBool(t) || cJSON_IsTrue(t) != terminal)
                        abort();
                free(out);
        }
}

/* An imported archive's spec.dump: its annotations and root.path. */
static void fuzz_metadata_spec(const char *text) {
        CatalogEntry e = {};
        if (metadata_from_spec(text, &e) >= 0)
                check_entry(&e);
        catalog_entry_done(&e);

        char *root = NULL;
        if (metadata_spec_root_path(text, &root) >= 0) {
                if (!root || !*root || strlen(root) >= 4096)
                        abort();
                free(root);
        }
}

static bool hex32(const char *s) {
        return s && strlen(s) == 32 && strspn(s, "0123456789abcdef") == 32;
}

/* pod.json of a pod archive. */
static void fuzz_pod_json(const char *text) {
        PodManifest pm = {};
        if (metadata_parse_pod_json(text, &pm) < 0)
                return;
        if (pm.n < 1 || pm.n > POD_MAX_MEMBERS || !pm.sandbox_id ||
            !ident_valid(pm.sandbox_id, IDENT_MAX_LEN))
                abort();
        if (pm.pod_cgroup && pm.pod_cgroup[0] && pm.pod_cgroup[0] != '/')
                abort();
        for (size_t i = 0; i < pm.n; i++) {
                const PodManifestMember *m = &pm.members[i];
                if (!ident_valid(m->container, IDENT_MAX_LEN) || !hex32(m->id) ||
                    !ident_valid(m->container_id, IDENT_MAX_LEN))
                        abort();
                for (size_t k = 0; k < i; k++)
                        if (streq(pm.members[k].container, m->container) || streq(pm.members[k].id, m->id))
                                abort();
        }
        pod_manifest_done(&pm);
}

/* kybernate.json of an archive, read from its directory. */
static void fuzz_kybernate_json(const char *text, size_t len) {
        CatalogEntry e = {};
        put(dir, "kybernate.json", text, len);
        if (metadata_read_kybernate_json(dir, &e) >= 0)
                check_entry(&e);
        catalog_entry_done(&e);
        drop(dir, "kybernate.json");
}

/* An import rewrites an archive's kybernate.json, keeping its "rootfsDiff",
 * and writes status.dump from its spec.dump's annotations. */
static void fuzz_rewrite(const char *text, size_t len) {
        CatalogEntry e = {.id = (char *)"0123456789abcdef0123456789abcdef",
                          .name = (char *)"fuzz",
                          .container_id = (char *)"c",
                          .image_ref = (char *)"docker.io/library/busybox:1"};
        put(dir, "kybernate.json", text, len);
        put(dir, "spec.dump", text, len);
        if (metadata_write_kybernate_json(dir, &e, false) >= 0) {
                CatalogEntry back = {};
                if (metadata_read_kybernate_json(dir, &back) < 0 || !streq_ptr(back.container_id, "c"))
                        abort();
                catalog_entry_done(&back);
        }
        (void)metadata_write_status_dump(dir, &e, false);
        drop(dir, "kybernate.json");
        drop(dir, "spec.dump");
        drop(dir, "status.dump");
}

/* runc's state: `runc state` output or state.json. */
static void fuzz_runc_state(const char *text) {
        char *b = NULL, *created = NULL;
        if (metadata_parse_runc_state(text, &b, &created) >= 0) {
                if (!b || b[0] != '/' || !created)
                        abort();
        }
        free(b);
        free(created);

        pid_t pid = 0;
        if (metadata_runc_state_pid(text, &pid) >= 0 && (pid < 1 || pid > 4194304))
                abort();
        int r = metadata_runc_state_frozen(text);
        if (r > 1)
                abort();
}

/* The emptyDir volumes of a member's config.json: the scratch directory
 * holds no volumes/, so a restore of each finds nothing to do. */
static void fuzz_pod_volumes(const char *text) {
        int r = pod_volumes_restore(dir, text);
        if (r != 0 && r != -EBADMSG && r != -E2BIG && r != -ENOMEM)
                abort();
}

/* A runc root of one container: state.json, a NUL, the bundle's config.json;
 * "@B" in the state stands for the scratch bundle's path. */
static void fuzz_cri_scan(const char *text, size_t len) {
        const char *z = memchr(text, 0, len);
        if (!z)
                return;
        size_t slen = (size_t)(z - text), blen = strlen(bundle);
        char *state = malloc(slen * blen + 1), *p = state;
        if (!state)
                abort();
        for (size_t i = 0; i < slen; i++)
                if (text[i] == '@' && i + 1 < slen && text[i + 1] == 'B') {
                        p = mempcpy(p, bundle, blen);
                        i++;
                } else
                        *p++ = text[i];
        put(runc_root, "c/state.json", state, (size_t)(p - state));
        put(bundle, "config.json", z + 1, len - slen - 1);
        free(state);

        CriContainer *c = NULL;
        size_t n = 0;
        if (cri_scan(runc_root, &c, &n) >= 0) {
                if (n > 1)
                        abort();
                for (size_t i = 0; i < n; i++)
                        if (!c[i].id || !c[i].type || !c[i].sandbox_id ||
                            (c[i].cgroup && !startswith(c[i].cgroup, "/sys/fs/cgroup/")))
                                abort();
                cri_containers_free(c, n);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        if (!ready) {
                setup();
                ready = true;
        }
        uint8_t which = data[0];
        size_t len = size - 1;
        char *text = malloc(len + 1);
        if (!text)
                abort();
        memcpy(text, data + 1, len);
        text[len] = 0;

        switch ((which & 0x7f) % 9) {
        case 0:
                fuzz_spec(text, len);
                break;
        case 1:
                fuzz_process(text, len, which & 0x80); /* the high bit: terminal */
                break;
        case 2:
                fuzz_metadata_spec(text);
                break;
        case 3:
                fuzz_pod_json(text);
                break;
        case 4:
                fuzz_kybernate_json(text, len);
                break;
        case 5:
                fuzz_runc_state(text);
                break;
        case 6:
                fuzz_pod_volumes(text);
                break;
        case 7:
                fuzz_cri_scan(text, len);
                break;
        default:
                fuzz_rewrite(text, len);
                break;
        }
        free(text);
        return 0;
}
