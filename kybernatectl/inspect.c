/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl inspect: one checkpoint's metadata, with CRIU's statistics and
 * the process tree read from its images here (the daemon does not parse them). */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "criu-image.h"
#include "ctl-json.h"
#include "ctl.h"

static char *options_string(char *buf, size_t size, const Kybernate__V1__CheckpointOptions *o) {
        snprintf(buf, size, "%s%s%s%s%s", o && o->leave_running ? "leave-running " : "exit ",
                 o && o->tcp_established ? "tcp-established " : "",
                 o && o->ext_unix_sk ? "ext-unix-sk " : "", o && o->file_locks ? "file-locks " : "",
                 o && o->shell_job ? "shell-job " : "");
        size_t n = strlen(buf);
        if (n > 0 && buf[n - 1] == ' ')
                buf[n - 1] = 0;
        return buf;
}

static void print_info(const Kybernate__V1__CheckpointInfo *i) {
        char b1[64], b2[64], b3[256];
        int64_t now = now_realtime_ns();

        ctl_kv("ID:", "%s", or_dash(i->id));
        ctl_kv("Name:", "%s", or_dash(i->name));
        ctl_kv("State:", "%s", kyb_state_to_string(i->state));
        ctl_kv("Namespace:", "%s", or_dash(i->containerd_namespace));
        ctl_kv("Container ID:", "%s", or_dash(i->container_id));
        if (!isempty(i->k8s_namespace) || !isempty(i->k8s_pod) || !isempty(i->k8s_container))
                ctl_kv("Kubernetes:", "namespace %s, pod %s, container %s", or_dash(i->k8s_namespace),
                       or_dash(i->k8s_pod), or_dash(i->k8s_container));
        ctl_kv("Image:", "%s%s%s", or_dash(i->image_ref), isempty(i->image_digest) ? "" : " @ ",
               i->image_digest ? i->image_digest : "");
        if (i->created_ns > 0 && now >= i->created_ns)
                ctl_kv("Created:", "%s (%s ago)", format_time_ns(b1, sizeof(b1), i->created_ns),
                       format_duration(b2, sizeof(b2), (uint64_t)(now - i->created_ns) / NSEC_PER_SEC));
        else
                ctl_kv("Created:", "%s", format_time_ns(b1, sizeof(b1), i->created_ns));
        ctl_kv("Size:", "%s (%" PRIu64 " bytes)", format_bytes(b1, sizeof(b1), i->size_bytes),
               i->size_bytes);
        ctl_kv("Options:", "%s", options_string(b3, sizeof(b3), i->options));
        ctl_kv("runc:", "%s", or_dash(i->runc_version));
        ctl_kv("CRIU:", "%s", or_dash(i->criu_version));
        ctl_kv("Kernel:", "%s", or_dash(i->kernel_version));
        ctl_kv("Checksum:", "%s", or_dash(i->checksum));
        ctl_kv("Durable:", "%s", i->durable ? "yes" : "no");
        ctl_kv("Pinned:", "%s", i->pinned ? "yes" : "no");
        ctl_kv("Cross-namespace:", "%s", i->allow_cross_namespace ? "allowed" : "refused");
        ctl_kv("Restores:", "%" PRIu64 "%s%s", i->restore_count, i->last_restored_ns > 0 ? ", last " : "",
               i->last_restored_ns > 0 ? format_time_ns(b1, sizeof(b1), i->last_restored_ns) : "");
        ctl_kv("Path:", "%s", or_dash(i->path));
        if (!isempty(i->bundle))
                ctl_kv("Bundle:", "%s", i->bundle);
        if (!isempty(i->source_image))
                ctl_kv("Pulled from:", "%s", i->source_image);
        if (!isempty(i->pushed_image))
                ctl_kv("Pushed to:", "%s", i->pushed_image);
        else if (i->push_pending)
                ctl_kv("Pushed to:", "(push pending)");
        if (!isempty(i->pod_checkpoint_id))
                ctl_kv("Pod checkpoint:", "%s (this is one of its members)", i->pod_checkpoint_id);
        if (i->is_pod) {
                ctl_kv("Pod checkpoint:", "yes, of %zu containers", i->n_members);
                ctl_kv("Frozen:", "%s", format_usec(b1, sizeof(b1), i->frozen_usec));
        }
}

/* A pod checkpoint's members: container name -> checkpoint id. */
static void print_members(const Kybernate__V1__CheckpointInfo *i) {
        printf("\nMembers:\n");
        for (size_t k = 0; k < i->n_members; k++) {
                _cleanup_free_ char *ctr = strdup_printable(i->members[k]->k8s_container);
                _cleanup_free_ char *id = strdup_printable(i->members[k]->id);
                printf("  %-24s %s\n", ctr ? ctr : "", id ? id : "");
        }
        if (i->n_members == 0)
                printf("  (none)\n");
}

typedef struct ImageSizes {
        uint64_t files, bytes, pages_bytes;
} ImageSizes;

/* Sums the regular files of the CRIU image directory (not recursive: CRIU
 * writes a flat directory). */
static int image_sizes(int img_fd, ImageSizes *ret) {
        ImageSizes z = {};
        DIR *d;
        int r = dir_open_fd(img_fd, &d);
        if (r < 0)
                return r;
        struct dirent *de;
        while ((de = readdir(d))) {
                struct stat st;
                if (fstatat(img_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
                        continue;
                z.files++;
                z.bytes += (uint64_t)st.st_size;
                if (startswith(de->d_name, "pages-"))
                        z.pages_bytes += (uint64_t)st.st_size;
        }
        closedir(d);
        *ret = z;
        return 0;
}

/* What inspect reads from a checkpoint directory; each part with the error
 * that kept it unset. */
typedef struct Images {
        CriuDumpStats stats;
        CriuTree *tree;
        ImageSizes sizes;
        int stats_r, tree_r, sizes_r;
} Images;

static void images_done(Images *im) {
        criu_tree_freep(&im->tree);
}

/* Reads CRIU's statistics and the process tree of a checkpoint directory.
 * Failures are reported as text (human) and leave the outputs unset. */
static void read_images(const char *path, Images *im) {
        im->stats_r = im->tree_r = im->sizes_r = -ENOENT;
        if (isempty(path) || path[0] != '/')
                return;
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                im->stats_r = im->tree_r = im->sizes_r = negative_errno();
                return;
        }
        _cleanup_free_ char *sp = NULL;
        /* The daemon copies stats-dump to the top level, as Podman does;
         * fall back on CRIU's own copy. */
        if (asprintf(&sp, "%s/stats-dump", path) >= 0) {
                im->stats_r = criu_stats_load(sp, &im->stats);
                if (im->stats_r == -ENOENT) {
                        free(sp);
                        sp = NULL;
                        if (asprintf(&sp, "%s/checkpoint/stats-dump", path) >= 0)
                                im->stats_r = criu_stats_load(sp, &im->stats);
                }
        }
        _cleanup_close_ int img = openat(dfd, "checkpoint", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (img < 0) {
                im->tree_r = im->sizes_r = negative_errno();
                return;
        }
        im->tree_r = criu_tree_load_at(img, &im->tree);
        im->sizes_r = image_sizes(img, &im->sizes);
}

static int inspect_print_json(const Kybernate__V1__InspectResponse *ir, const Images *im) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return CTL_EXIT_FAILED;
        cJSON_AddItemToObject(o, "checkpoint", ctl_json_checkpoint(ir->info));
        if (ir->has_checksum_ok)
                cJSON_AddBoolToObject(o, "checksum_ok", ir->checksum_ok);
        if (im->sizes_r >= 0) {
                cJSON *s = cJSON_AddObjectToObject(o, "images");
                if (s) {
                        cJSON_AddNumberToObject(s, "files", (double)im->sizes.files);
                        cJSON_AddNumberToObject(s, "bytes", (double)im->sizes.bytes);
                        cJSON_AddNumberToObject(s, "pages_bytes", (double)im->sizes.pages_bytes);
                }
        }
        if (im->stats_r >= 0)
                cJSON_AddItemToObject(o, "criu_dump_stats", ctl_json_stats(&im->stats));
        else
                cJSON_AddNullToObject(o, "criu_dump_stats");
        if (im->tree_r >= 0)
                cJSON_AddItemToObject(o, "processes", ctl_json_tree(im->tree));
        else
                cJSON_AddNullToObject(o, "processes");
        return ctl_print_json(o);
}

static void inspect_print(const Kybernate__V1__InspectResponse *ir, const Images *im) {
        print_info(ir->info);
        if (ir->has_checksum_ok)
                ctl_kv("Verified:", "%s", ir->checksum_ok ? "checksum matches" : "CHECKSUM MISMATCH");
        if (ir->info->is_pod) {
                /* No images of its own: each member has its own (inspect it by id). */
                print_members(ir->info);
                return;
        }

        char b[64], b2[64];
        if (im->sizes_r >= 0)
                ctl_kv("CRIU images:", "%" PRIu64 " files, %s (memory pages %s)", im->sizes.files,
                       format_bytes(b, sizeof(b), im->sizes.bytes),
                       format_bytes(b2, sizeof(b2), im->sizes.pages_bytes));
        printf("\nCRIU dump statistics:\n");
        if (im->stats_r >= 0) {
                const CriuDumpStats *st = &im->stats;
                ctl_kv("  Freezing time:", "%s", format_usec(b, sizeof(b), st->freezing_time_us));
                ctl_kv("  Frozen time:", "%s", format_usec(b, sizeof(b), st->frozen_time_us));
                ctl_kv("  Memdump time:", "%s", format_usec(b, sizeof(b), st->memdump_time_us));
                ctl_kv("  Memwrite time:", "%s", format_usec(b, sizeof(b), st->memwrite_time_us));
                ctl_kv("  Pages scanned:", "%" PRIu64, st->pages_scanned);
                ctl_kv("  Pages written:", "%" PRIu64, st->pages_written);
        } else
                printf("  (unavailable: %s)\n", strerror(-im->stats_r));

        printf("\nProcess tree:\n");
        if (im->tree_r >= 0)
                (void)criu_tree_print(im->tree, stdout, "  ");
        else
                printf("  (unavailable: %s)\n", strerror(-im->tree_r));
}

typedef struct InspectOpts {
        bool verify;
} InspectOpts;

static int verb_inspect(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        InspectOpts o = {};
        int x = ctl_parse_options(ctl, verb, argc, argv, &o);
        if (x >= 0)
                return x;

        Kybernate__V1__InspectRequest ir = KYBERNATE__V1__INSPECT_REQUEST__INIT;
        ir.reference = argv[optind];
        ir.has_verify = o.verify;
        ir.verify = o.verify;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "inspect", KYBERNATE__V1__REQUEST__OP_INSPECT, &ir,
                     KYBERNATE__V1__RESPONSE__RESULT_INSPECT, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        if (!resp->inspect->info)
                return ctl_unexpected("inspect");

        _cleanup_(images_done) Images im = {};
        read_images(resp->inspect->info->path, &im);
        if (ctl->json)
                return inspect_print_json(resp->inspect, &im);
        inspect_print(resp->inspect, &im);
        return CTL_EXIT_OK;
}

static const CtlOption inspect_options[] = {
        {"verify", 'v', false, NULL, "recompute the checksum and compare", CTL_AT(InspectOpts, verify)},
        {},
};

const CtlVerb ctl_verb_inspect = {
        CTL_VERB("inspect", verb_inspect, "[OPTIONS] REF",
                 "Show one checkpoint: metadata, CRIU statistics, process tree."),
        .intro = "Shows all metadata, sizes, CRIU's dump statistics and the process tree read from the\n"
                 "CRIU images.\n"
                 "REF is an id, a unique id prefix (4+ characters), a name, K8S-NS/POD/CONTAINER (newest)\n"
                 "or K8S-NS/POD (newest pod checkpoint: its members, container name and id).\n",
        .json = "JSON object",
        CTL_ARGS(1, "expected one checkpoint reference"),
        .options = inspect_options,
};
