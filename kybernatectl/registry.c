/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl push and pull: a checkpoint as an OCI image in a registry.
 *
 * push: kybernated verifies the checkpoint and names its directory (as for
 * export); the CLI packs it as the one layer of an OCI image layout in a
 * temporary directory, with the annotations each runtime reads, and skopeo
 * copies that to the registry (common/registry.h says why skopeo).
 *
 * pull: the tag is resolved to a digest once (the sha256 of the manifest's
 * bytes), skopeo fetches exactly that digest into a temporary layout, the
 * layout is read back as untrusted input (every blob against its digest), and
 * its layer is imported as `kybernatectl import` does: unpacked by the
 * validating extractor into a staging directory kybernated provides, then
 * checked and adopted by kybernated. */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "archive.h"
#include "checkpoint-image.h"
#include "ctl.h"
#include "image-ref.h"
#include "mount-util.h"
#include "oci-image.h"
#include "registry.h"
#include "spawn-child.h"

typedef struct RegistryOpts {
        char *authfile;
        char *cert_dir;
        char *compression;
        char *name;
        bool insecure;
        bool quiet;
        bool pin;
} RegistryOpts;

/* skopeo's counters as a step's bytes: what it read (push) or wrote (pull),
 * which include a little of its own (configuration, requests): never more
 * than the step's total. */
static void on_skopeo_read(uint64_t read_bytes, uint64_t written_bytes, void *userdata) {
        Progress *p = userdata;
        progress_set(p, p->total > 0 && read_bytes > p->total ? p->total : read_bytes);
}

static void on_skopeo_written(uint64_t read_bytes, uint64_t written_bytes, void *userdata) {
        Progress *p = userdata;
        progress_set(p, p->total > 0 && written_bytes > p->total ? p->total : written_bytes);
}

static void on_archive_written(uint64_t bytes, void *userdata) {
        progress_set(userdata, bytes);
}

/* Parses the verb's options into o and what they say of the registry into
 * ret. Returns -1 to go on, or an exit code. */
static int registry_options(Ctl *ctl, const CtlVerb *verb, int argc, char **argv, RegistryOpts *o,
                            RegistryOptions *ret) {
        int x = ctl_parse_options(ctl, verb, argc, argv, o);
        if (x >= 0)
                return x;
        *ret = (RegistryOptions){
                .authfile = o->authfile,
                .cert_dir = o->cert_dir,
                .insecure = o->insecure,
                .compression = REGISTRY_PUSH_COMPRESSION_DEFAULT,
        };
        if (o->compression && oci_compression_from_string(o->compression, &ret->compression) < 0)
                return ctl_usage_error(verb->name, "--compression must be none, gzip or zstd");
        return -1;
}

/* A temporary directory and the image layout's path in it; work_dir_done()
 * removes the directory with all in it. */
typedef struct WorkDir {
        char *dir, *layout;
} WorkDir;

static void work_dir_done(WorkDir *w) {
        remove_tree_one_fs_free(&w->dir);
        free(w->layout);
        w->layout = NULL;
}

static int work_dir_make(const char *verb, WorkDir *w) {
        const char *base = getenv("TMPDIR");
        _cleanup_free_ char *t =
                strdup_printf("%s/kybernate-%s-XXXXXX", isempty(base) ? "/var/tmp" : base, verb);
        if (!t)
                return CTL_EXIT_FAILED;
        if (!mkdtemp(t)) {
                ERR("%s: cannot create a temporary directory %s: %m\n", verb, t);
                return ctl_exit_code(negative_errno());
        }
        w->layout = strdup_printf("%s/layout", t);
        w->dir = TAKE_PTR(t);
        return w->layout ? CTL_EXIT_OK : CTL_EXIT_FAILED;
}

/* A step skopeo ran failed: the step ends, the error (skopeo's words, or
 * r's) names what it was about. Returns CTL_EXIT_FAILED. */
static int skopeo_failed(Progress *pr, const char *verb, const char *what, const char *err, int r) {
        progress_fail(pr);
        ERR("%s: %s: %s\n", verb, what, err ? err : strerror(-r));
        return CTL_EXIT_FAILED;
}

static int verb_push(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        RegistryOpts o = {};
        RegistryOptions ro;
        int x = registry_options(ctl, verb, argc, argv, &o, &ro);
        if (x >= 0)
                return x;
        const char *ref = argv[optind], *image = argv[optind + 1];
        ImageRef ir;
        const char *why = NULL;
        if (image_ref_parse(image, &ir, &why) < 0)
                return ctl_usage_error("push", "%s: %s", image, why);
        bool has_digest = ir.digest;
        image_ref_done(&ir);
        if (has_digest)
                return ctl_usage_error("push", "%s: a push names a tag, not a digest", image);

        _cleanup_(ctl_export_done) CtlExport ex = {};
        x = ctl_export_info(ctl, "push", ref, &ex);
        if (x != CTL_EXIT_OK)
                return x;
        const Kybernate__V1__CheckpointInfo *info = ex.info;
        if (isempty(info->id)) {
                ERR("push: kybernated did not name the checkpoint directory\n");
                return CTL_EXIT_FAILED;
        }

        _cleanup_(work_dir_done) WorkDir work = {};
        x = work_dir_make("push", &work);
        if (x != CTL_EXIT_OK)
                return x;

        int64_t t0 = now_monotonic_usec();
        _cleanup_(progress_done) Progress pr;
        progress_init(&pr, stderr, progress_mode(STDERR_FILENO, o.quiet));
        progress_begin(&pr, true, info->has_size_bytes ? info->size_bytes : 0, "Packing %scheckpoint %s",
                       ex.src.member_names ? "pod " : "", info->id);
        char local[OCI_DIGEST_MAX];
        uint64_t bytes = 0;
        if (!o.compression)
                ro.compression = checkpoint_image_compression(&ex.src);
        int r = checkpoint_image_write(info, &ex.src, work.layout, local, on_archive_written, &pr, &bytes);
        if (r < 0) {
                progress_fail(&pr);
                ERR("push: writing the image of %s failed: %s\n", info->id, strerror(-r));
                return ctl_exit_code(r);
        }
        progress_set(&pr, bytes);
        progress_end(&pr, NULL);
        /* skopeo reads the layer (and compresses it on the way). */
        progress_begin(&pr, true, bytes, "Pushing %s to %s (layer %s)", info->id, image,
                       oci_compression_to_string(ro.compression));
        ro.progress = on_skopeo_read;
        ro.progress_userdata = &pr;
        char digest[IMAGE_DIGEST_LEN + 1];
        _cleanup_free_ char *err = NULL;
        r = registry_push(&ro, work.layout, image, digest, &err);
        if (r < 0)
                return skopeo_failed(&pr, "push", image, err, r);
        progress_end(&pr, NULL);
        progress_line(&pr, "Pushed %s (%s) in %.1f s", image, digest,
                      (double)(now_monotonic_usec() - t0) / 1e6);
        if (ctl->json) {
                cJSON *j = cJSON_CreateObject();
                if (!j)
                        return CTL_EXIT_FAILED;
                cJSON_AddStringToObject(j, "image", image);
                cJSON_AddStringToObject(j, "digest", digest);
                cJSON_AddNumberToObject(j, "layer_bytes", (double)bytes);
                cJSON_AddStringToObject(j, "compression", oci_compression_to_string(ro.compression));
                cJSON_AddStringToObject(j, "checkpoint", info->id);
                cJSON_AddBoolToObject(j, "pod", ex.src.member_names != NULL);
                return ctl_print_json(j);
        }
        printf("%s\n", digest);
        return CTL_EXIT_OK;
}

static int pull_import(Ctl *ctl, const RegistryOpts *o, Progress *pr, const char *layout, const char *pinned,
                       const char *digest) {
        OciImage img;
        _cleanup_free_ char *err = NULL;
        progress_begin(pr, true, 0, "Verifying the digests of %s", pinned);
        int r = oci_image_read_pinned(layout, digest, &img, &err);
        if (r < 0) {
                progress_fail(pr);
                ERR("pull: refusing %s: %s\n", pinned, err ? err : strerror(-r));
                return CTL_EXIT_FAILED;
        }
        progress_set(pr, img.layer_size);
        const char *name = oci_annotation_get(&img, KYB_CHECKPOINT_ID);
        _cleanup_free_ char *id = name ? strdup_printf("checkpoint %s", name) : NULL;
        progress_end(pr, id);
        _cleanup_close_ int in = -EBADF;
        pid_t pid = 0;
        r = oci_image_layer_tar(&img, &in, &pid);
        oci_image_done(&img);
        if (r < 0) {
                ERR("pull: cannot decompress the layer of %s: %s\n", pinned, strerror(-r));
                return ctl_exit_code(r);
        }
        int x = ctl_import_fd(ctl, in, pinned, o->name, o->pin, pr);
        if (archive_decompress_end(TAKE_FD(in), pid, x == CTL_EXIT_OK) < 0 && x == CTL_EXIT_OK)
                ERR("pull: the layer of %s goes on after its archive, or its decompressor failed after the "
                    "import\n",
                    pinned);
        return x;
}

static int verb_pull(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        RegistryOpts o = {};
        RegistryOptions ro;
        int x = registry_options(ctl, verb, argc, argv, &o, &ro);
        if (x >= 0)
                return x;
        if (o.compression)
                return ctl_usage_error("pull", "--compression is an option of push");
        const char *image = argv[optind];
        ImageRef ir;
        const char *why = NULL;
        if (image_ref_parse(image, &ir, &why) < 0)
                return ctl_usage_error("pull", "%s: %s", image, why);
        if (o.name) {
                x = ctl_import_check_name(ctl, o.name);
                if (x != CTL_EXIT_OK) {
                        image_ref_done(&ir);
                        return x;
                }
        }

        int64_t t0 = now_monotonic_usec();
        _cleanup_(progress_done) Progress pr;
        progress_init(&pr, stderr, progress_mode(STDERR_FILENO, o.quiet));
        char digest[IMAGE_DIGEST_LEN + 1];
        uint64_t blob_bytes = 0;
        _cleanup_free_ char *err = NULL;
        progress_begin(&pr, false, 0, "Resolving %s", image);
        int r = registry_resolve_sized(&ro, image, digest, &blob_bytes, &err);
        _cleanup_free_ char *pinned = r >= 0 ? image_ref_pinned(&ir, digest) : NULL;
        image_ref_done(&ir);
        if (r < 0)
                return skopeo_failed(&pr, "pull", image, err, r);
        progress_end(&pr, digest);
        if (!pinned)
                return CTL_EXIT_FAILED;

        _cleanup_(work_dir_done) WorkDir work = {};
        x = work_dir_make("pull", &work);
        if (x != CTL_EXIT_OK)
                return x;
        /* skopeo writes the blobs into the layout. */
        progress_begin(&pr, true, blob_bytes, "Fetching %s", pinned);
        ro.progress = on_skopeo_written;
        ro.progress_userdata = &pr;
        r = registry_pull(&ro, pinned, work.layout, &err);
        if (r < 0)
                return skopeo_failed(&pr, "pull", pinned, err, r);
        progress_end(&pr, NULL);
        x = pull_import(ctl, &o, &pr, work.layout, pinned, digest);
        if (x == CTL_EXIT_OK)
                progress_line(&pr, "Pulled in %.1f s", (double)(now_monotonic_usec() - t0) / 1e6);
        return x;
}

/* The options push and pull share. */
/* clang-format off */
#define REGISTRY_OPTIONS \
        {"authfile", 'A', false, "FILE", "registry credentials (auth.json or docker config.json format)", \
         CTL_AT(RegistryOpts, authfile)}, \
        {"cert-dir", 'C', false, "DIR", "the registry's CA certificates (*.crt)", CTL_AT(RegistryOpts, cert_dir)}, \
        {"insecure", 'I', false, NULL, "no TLS verification (test registries only)", CTL_AT(RegistryOpts, insecure)}, \
        {"quiet", 'q', true, NULL, "print only the result", CTL_AT(RegistryOpts, quiet)}
/* clang-format on */

static const CtlOption push_options[] = {
        REGISTRY_OPTIONS,
        {"compression", 'Z', false, "none|gzip|zstd",
         "layer compression (default: zstd, none for memory that does not compress)",
         CTL_AT(RegistryOpts, compression)},
        {},
};

static const CtlOption pull_options[] = {
        REGISTRY_OPTIONS,
        {"name", 'N', false, "NAME", "give the pulled checkpoint a name", CTL_AT(RegistryOpts, name)},
        {"pin", 'P', false, NULL, "pin it", CTL_AT(RegistryOpts, pin)},
        {},
};

const CtlVerb ctl_verb_push = {
        CTL_VERB("push", verb_push, "[OPTIONS] REF IMAGE",
                 "Push a checkpoint to a registry as an OCI image."),
        .intro = "IMAGE is HOST[:PORT]/REPOSITORY[:TAG]. The image's one layer is the checkpoint archive\n"
                 "(as export writes it), annotated so Podman, CRI-O and containerd 2.x recognise it.\n"
                 "A pod checkpoint is pushed whole, as one image of its archive (only Kybernate\n"
                 "restores it: a new pod names the image in kybernate.io/restore-from).\n"
                 "Prints the image's digest. Credentials and CAs are the node's unless given.\n"
                 "A layer the registry holds already is reused as it is stored there, whatever\n"
                 "--compression says (skopeo reuses blobs it knows).\n",
        .json = "JSON object: image, digest, layer_bytes, compression, checkpoint, pod",
        CTL_ARGS(2, "expected a checkpoint reference and an image"),
        .options = push_options,
};

const CtlVerb ctl_verb_pull = {
        CTL_VERB("pull", verb_pull, "[OPTIONS] IMAGE", "Pull a checkpoint image into the store."),
        .intro =
                "IMAGE is HOST[:PORT]/REPOSITORY[:TAG] or ...@sha256:DIGEST. A tag is resolved to a digest\n"
                "once; every blob is checked against its digest and the layer is imported as\n"
                "`kybernatectl import` does. Prints the new checkpoint's id.\n",
        .json = "JSON object of the new checkpoint",
        CTL_ARGS(1, "expected one image"),
        .options = pull_options,
};
