/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl: the operator's CLI over the kybernated socket. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "archive.h"
#include "criu-image.h"
#include "ctl-format.h"
#include "ctl-json.h"
#include "kyb-client.h"

typedef struct Ctl {
        const char *socket_path;
        bool json;
} Ctl;

typedef struct Verb {
        const char *name;
        int (*run)(Ctl *ctl, int argc, char **argv);
        const char *args;
        const char *summary;
        const char *help;
} Verb;

static const Verb *verb_find(const char *name);

#define ERR(...) fprintf(stderr, "kybernatectl: " __VA_ARGS__)

static int usage_error(const char *verb, const char *fmt, ...) _printf_(2, 3);
static int usage_error(const char *verb, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "kybernatectl: %s%s", verb ? verb : "", verb ? ": " : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nTry 'kybernatectl %s%s--help'.\n", verb ? verb : "", verb ? " " : "");
        return CTL_EXIT_USAGE;
}

static const char *ctl_socket(const Ctl *ctl) {
        return ctl->socket_path ? ctl->socket_path : kyb_socket_path();
}

static int ctl_connect(const Ctl *ctl, KybClient **ret) {
        const char *path = ctl_socket(ctl);
        int r = kyb_client_connect(path, ret);
        if (r >= 0)
                return CTL_EXIT_OK;
        if (r == -EACCES || r == -EPERM) {
                ERR("permission denied (cannot connect to %s): %s\n"
                    "Run as root or as a member of the group kybernated allows.\n",
                    path, strerror(-r));
                return CTL_EXIT_DENIED;
        }
        ERR("kybernated is not running (cannot connect to %s): %s\n", path, strerror(-r));
        return CTL_EXIT_UNREACHABLE;
}

/* One request on a new connection. Prints the failure and returns an exit
 * code; on success *ret holds the final response. */
static int ctl_call(const Ctl *ctl, const char *verb, Kybernate__V1__Request *req, KybMessageFn on_message,
                    void *userdata, Kybernate__V1__Response **ret) {
        _cleanup_(kyb_client_freep) KybClient *c = NULL;
        Kybernate__V1__Response *resp = NULL;

        int x = ctl_connect(ctl, &c);
        if (x != CTL_EXIT_OK)
                return x;
        int r = kyb_client_call(c, req, on_message, userdata, &resp);
        if (r >= 0) {
                if (!resp) {
                        ERR("%s: kybernated sent no answer\n", verb);
                        return CTL_EXIT_FAILED;
                }
                *ret = resp;
                return CTL_EXIT_OK;
        }
        if (resp) {
                _cleanup_free_ char *m = strdup_printable(resp->message);
                ERR("%s: %s%s(%s)\n", verb, m ? m : "", m && *m ? " " : "", strerror(-r));
                kyb_response_free(resp);
                return ctl_exit_code(r);
        }
        if (r == -ECONNRESET || r == -EPIPE) {
                ERR("%s: kybernated closed the connection (%s)\n", verb, ctl_socket(ctl));
                return CTL_EXIT_UNREACHABLE;
        }
        ERR("%s: talking to kybernated failed: %s\n", verb, strerror(-r));
        return CTL_EXIT_FAILED;
}

/* Parses the common options of a verb: --help and --json. Returns -1 to go
 * on, or an exit code. */
static int verb_getopt(const char *verb, int argc, char **argv, const char *shortopts,
                       const struct option *longopts, Ctl *ctl, int (*handle)(int c, void *ud), void *ud) {
        int c;
        optind = 0; /* full reinitialisation of getopt for this verb's argv */
        while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) >= 0) {
                switch (c) {
                case 'h': {
                        const Verb *v = verb_find(verb);
                        printf("Usage: kybernatectl %s %s\n\n%s\n\n%s", verb, v->args, v->summary, v->help);
                        return CTL_EXIT_OK;
                }
                case 'J':
                        ctl->json = true;
                        break;
                case '?':
                        return usage_error(verb, "invalid option");
                default: {
                        int x = handle ? handle(c, ud) : CTL_EXIT_USAGE;
                        if (x >= 0)
                                return x;
                }
                }
        }
        return -1;
}

#define COMMON_OPTIONS                         \
        {"help", no_argument, NULL, 'h'}, {    \
                "json", no_argument, NULL, 'J' \
        }

static const char *or_dash(const char *s) {
        return isempty(s) ? "-" : s;
}

static char *short_id(char *buf, size_t size, const char *id) {
        snprintf(buf, size, "%.12s", id ? id : "");
        return buf;
}

/* ---- list ---- */

typedef struct ListState {
        Kybernate__V1__Response **pages;
        size_t n_pages;
} ListState;

static void list_state_done(ListState *s) {
        for (size_t i = 0; i < s->n_pages; i++)
                kyb_response_free(s->pages[i]);
        free(s->pages);
}

static int list_page(Kybernate__V1__Response *resp, void *userdata) {
        ListState *s = userdata;
        if (resp->result_case != KYBERNATE__V1__RESPONSE__RESULT_LIST)
                return 0;
        Kybernate__V1__Response **np = reallocarray(s->pages, s->n_pages + 1, sizeof(*np));
        if (!np)
                return -ENOMEM;
        s->pages = np;
        s->pages[s->n_pages++] = resp;
        return 1;
}

typedef struct ListOpts {
        Kybernate__V1__ListRequest *lr;
        bool quiet;
} ListOpts;

static int list_opt(int c, void *ud) {
        ListOpts *o = ud;
        uint64_t v;
        switch (c) {
        case 'n':
                o->lr->containerd_namespace = optarg;
                return -1;
        case 'K':
                o->lr->k8s_namespace = optarg;
                return -1;
        case 'p':
                o->lr->k8s_pod = optarg;
                return -1;
        case 'c':
                o->lr->k8s_container = optarg;
                return -1;
        case 'C':
                o->lr->container_id = optarg;
                return -1;
        case 's':
                o->lr->has_state = true;
                if (streq(optarg, "ready"))
                        o->lr->state = KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_READY;
                else if (streq(optarg, "pending"))
                        o->lr->state = KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_PENDING;
                else if (streq(optarg, "failed"))
                        o->lr->state = KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_FAILED;
                else
                        return usage_error("list", "unknown state '%s' (ready, pending, failed)", optarg);
                return -1;
        case 'l':
                if (parse_uint(optarg, UINT32_MAX, &v) < 0)
                        return usage_error("list", "invalid --limit '%s'", optarg);
                o->lr->has_limit = true;
                o->lr->limit = (uint32_t)v;
                return -1;
        case 'q':
                o->quiet = true;
                return -1;
        }
        return CTL_EXIT_USAGE;
}

static void list_add_row(Table *t, const Kybernate__V1__CheckpointInfo *i, int64_t now_ns) {
        char id[16], created[64], size[32], age[32], k8s[512];
        snprintf(k8s, sizeof(k8s), "%s%s%s%s%s", i->k8s_namespace ? i->k8s_namespace : "",
                 isempty(i->k8s_pod) ? "" : "/", i->k8s_pod ? i->k8s_pod : "",
                 isempty(i->k8s_container) ? "" : "/", i->k8s_container ? i->k8s_container : "");
        format_time_ns(created, sizeof(created), i->created_ns);
        if (i->created_ns > 0 && now_ns >= i->created_ns)
                format_duration(age, sizeof(age), (uint64_t)(now_ns - i->created_ns) / NSEC_PER_SEC);
        else
                age[0] = 0;
        char container[16];
        (void)table_add_row(t, (const char *const[]){
                                       short_id(id, sizeof(id), i->id),
                                       i->name,
                                       kyb_state_to_string(i->state),
                                       i->containerd_namespace,
                                       short_id(container, sizeof(container), i->container_id),
                                       k8s,
                                       created,
                                       age,
                                       format_bytes(size, sizeof(size), i->size_bytes),
                                       i->pinned ? "yes" : "",
                               });
}

static int verb_list(Ctl *ctl, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {"namespace", required_argument, NULL, 'n'},
                {"k8s-namespace", required_argument, NULL, 'K'},
                {"pod", required_argument, NULL, 'p'},
                {"container", required_argument, NULL, 'c'},
                {"container-id", required_argument, NULL, 'C'},
                {"state", required_argument, NULL, 's'},
                {"limit", required_argument, NULL, 'l'},
                {"quiet", no_argument, NULL, 'q'},
                {},
        };
        Kybernate__V1__ListRequest lr = KYBERNATE__V1__LIST_REQUEST__INIT;
        ListOpts o = {.lr = &lr};
        int x = verb_getopt("list", argc, argv, "hn:p:c:ql:", opts, ctl, list_opt, &o);
        if (x >= 0)
                return x;
        if (optind < argc)
                return usage_error("list", "unexpected argument '%s'", argv[optind]);

        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_LIST;
        req.list = &lr;
        _cleanup_(list_state_done) ListState s = {};
        Kybernate__V1__Response *final = NULL;
        x = ctl_call(ctl, "list", &req, list_page, &s, &final);
        if (x != CTL_EXIT_OK)
                return x;
        x = list_page(final, &s);
        if (x <= 0)
                kyb_response_free(final);

        if (ctl->json) {
                /* One object at a time: a tree of 10,000 checkpoints costs more
                 * than the whole transfer. */
                bool first = true;
                fputs("[", stdout);
                for (size_t p = 0; p < s.n_pages; p++)
                        for (size_t k = 0; k < s.pages[p]->list->n_entries; k++) {
                                cJSON *obj = ctl_json_checkpoint(s.pages[p]->list->entries[k]);
                                char *text = obj ? cJSON_Print(obj) : NULL;
                                cJSON_Delete(obj);
                                if (!text)
                                        return CTL_EXIT_FAILED;
                                fputs(first ? "\n" : ",\n", stdout);
                                fputs(text, stdout);
                                cJSON_free(text);
                                first = false;
                        }
                fputs(first ? "]\n" : "\n]\n", stdout);
                return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILED;
        }
        if (o.quiet) {
                for (size_t p = 0; p < s.n_pages; p++)
                        for (size_t k = 0; k < s.pages[p]->list->n_entries; k++) {
                                _cleanup_free_ char *id = strdup_printable(s.pages[p]->list->entries[k]->id);
                                puts(id ? id : "");
                        }
                return CTL_EXIT_OK;
        }

        _cleanup_table_ Table *t = NULL;
        if (table_new(10,
                      (const char *const[]){"ID", "NAME", "STATE", "NAMESPACE", "CONTAINER", "K8S",
                                            "CREATED", "AGE", "SIZE", "PINNED"},
                      &t) < 0)
                return CTL_EXIT_FAILED;
        table_set_right(t, 7);
        table_set_right(t, 8);
        int64_t now = now_realtime_ns();
        for (size_t p = 0; p < s.n_pages; p++)
                for (size_t k = 0; k < s.pages[p]->list->n_entries; k++)
                        list_add_row(t, s.pages[p]->list->entries[k], now);
        if (table_print(t, stdout) < 0)
                return CTL_EXIT_FAILED;
        return CTL_EXIT_OK;
}

/* ---- inspect ---- */

static char *format_usec(char *buf, size_t size, uint32_t us) {
        if (us < 1000)
                snprintf(buf, size, "%" PRIu32 " us", us);
        else if (us < 1000000)
                snprintf(buf, size, "%.3f ms", us / 1000.0);
        else
                snprintf(buf, size, "%.3f s", us / 1000000.0);
        return buf;
}

static void kv(const char *key, const char *fmt, ...) _printf_(2, 3);
static void kv(const char *key, const char *fmt, ...) {
        va_list ap;
        _cleanup_free_ char *v = NULL;
        va_start(ap, fmt);
        if (vasprintf(&v, fmt, ap) < 0)
                v = NULL;
        va_end(ap);
        _cleanup_free_ char *p = strdup_printable(v);
        printf("%-16s %s\n", key, p ? p : "");
}

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

        kv("ID:", "%s", or_dash(i->id));
        kv("Name:", "%s", or_dash(i->name));
        kv("State:", "%s", kyb_state_to_string(i->state));
        kv("Namespace:", "%s", or_dash(i->containerd_namespace));
        kv("Container ID:", "%s", or_dash(i->container_id));
        if (!isempty(i->k8s_namespace) || !isempty(i->k8s_pod) || !isempty(i->k8s_container))
                kv("Kubernetes:", "namespace %s, pod %s, container %s", or_dash(i->k8s_namespace),
                   or_dash(i->k8s_pod), or_dash(i->k8s_container));
        kv("Image:", "%s%s%s", or_dash(i->image_ref), isempty(i->image_digest) ? "" : " @ ",
           i->image_digest ? i->image_digest : "");
        if (i->created_ns > 0 && now >= i->created_ns)
                kv("Created:", "%s (%s ago)", format_time_ns(b1, sizeof(b1), i->created_ns),
                   format_duration(b2, sizeof(b2), (uint64_t)(now - i->created_ns) / NSEC_PER_SEC));
        else
                kv("Created:", "%s", format_time_ns(b1, sizeof(b1), i->created_ns));
        kv("Size:", "%s (%" PRIu64 " bytes)", format_bytes(b1, sizeof(b1), i->size_bytes), i->size_bytes);
        kv("Options:", "%s", options_string(b3, sizeof(b3), i->options));
        kv("runc:", "%s", or_dash(i->runc_version));
        kv("CRIU:", "%s", or_dash(i->criu_version));
        kv("Kernel:", "%s", or_dash(i->kernel_version));
        kv("Checksum:", "%s", or_dash(i->checksum));
        kv("Durable:", "%s", i->durable ? "yes" : "no");
        kv("Pinned:", "%s", i->pinned ? "yes" : "no");
        kv("Cross-namespace:", "%s", i->allow_cross_namespace ? "allowed" : "refused");
        kv("Restores:", "%" PRIu64 "%s%s", i->restore_count, i->last_restored_ns > 0 ? ", last " : "",
           i->last_restored_ns > 0 ? format_time_ns(b1, sizeof(b1), i->last_restored_ns) : "");
        kv("Path:", "%s", or_dash(i->path));
        if (!isempty(i->bundle))
                kv("Bundle:", "%s", i->bundle);
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

/* Reads CRIU's statistics and the process tree of a checkpoint directory.
 * Failures are reported as text (human) and leave the outputs unset. */
static void read_images(const char *path, CriuDumpStats *stats, int *stats_r, CriuTree **tree, int *tree_r,
                        ImageSizes *sizes, int *sizes_r) {
        *stats_r = *tree_r = *sizes_r = -ENOENT;
        if (isempty(path) || path[0] != '/')
                return;
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0) {
                *stats_r = *tree_r = *sizes_r = negative_errno();
                return;
        }
        _cleanup_free_ char *sp = NULL;
        /* The daemon copies stats-dump to the top level, as Podman does;
         * fall back on CRIU's own copy. */
        if (asprintf(&sp, "%s/stats-dump", path) >= 0) {
                *stats_r = criu_stats_load(sp, stats);
                if (*stats_r == -ENOENT) {
                        free(sp);
                        sp = NULL;
                        if (asprintf(&sp, "%s/checkpoint/stats-dump", path) >= 0)
                                *stats_r = criu_stats_load(sp, stats);
                }
        }
        _cleanup_close_ int img = openat(dfd, "checkpoint", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (img < 0) {
                *tree_r = *sizes_r = negative_errno();
                return;
        }
        *tree_r = criu_tree_load_at(img, tree);
        *sizes_r = image_sizes(img, sizes);
}

typedef struct InspectOpts {
        bool verify;
} InspectOpts;

static int inspect_opt(int c, void *ud) {
        InspectOpts *o = ud;
        if (c == 'v') {
                o->verify = true;
                return -1;
        }
        return CTL_EXIT_USAGE;
}

static int verb_inspect(Ctl *ctl, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {"verify", no_argument, NULL, 'v'},
                {},
        };
        InspectOpts o = {};
        int x = verb_getopt("inspect", argc, argv, "h", opts, ctl, inspect_opt, &o);
        if (x >= 0)
                return x;
        if (argc - optind != 1)
                return usage_error("inspect", "expected one checkpoint reference");

        Kybernate__V1__InspectRequest ir = KYBERNATE__V1__INSPECT_REQUEST__INIT;
        ir.reference = argv[optind];
        ir.has_verify = o.verify;
        ir.verify = o.verify;
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_INSPECT;
        req.inspect = &ir;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "inspect", &req, NULL, NULL, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        if (resp->result_case != KYBERNATE__V1__RESPONSE__RESULT_INSPECT || !resp->inspect->info) {
                ERR("inspect: unexpected answer from kybernated\n");
                return CTL_EXIT_FAILED;
        }
        const Kybernate__V1__CheckpointInfo *info = resp->inspect->info;

        CriuDumpStats stats = {};
        _cleanup_criu_tree_ CriuTree *tree = NULL;
        int stats_r, tree_r, sizes_r;
        ImageSizes sizes = {};
        read_images(info->path, &stats, &stats_r, &tree, &tree_r, &sizes, &sizes_r);

        if (ctl->json) {
                cJSON *o2 = cJSON_CreateObject();
                if (!o2)
                        return CTL_EXIT_FAILED;
                cJSON_AddItemToObject(o2, "checkpoint", ctl_json_checkpoint(info));
                if (resp->inspect->has_checksum_ok)
                        cJSON_AddBoolToObject(o2, "checksum_ok", resp->inspect->checksum_ok);
                if (sizes_r >= 0) {
                        cJSON *im = cJSON_AddObjectToObject(o2, "images");
                        if (im) {
                                cJSON_AddNumberToObject(im, "files", (double)sizes.files);
                                cJSON_AddNumberToObject(im, "bytes", (double)sizes.bytes);
                                cJSON_AddNumberToObject(im, "pages_bytes", (double)sizes.pages_bytes);
                        }
                }
                if (stats_r >= 0)
                        cJSON_AddItemToObject(o2, "criu_dump_stats", ctl_json_stats(&stats));
                else
                        cJSON_AddNullToObject(o2, "criu_dump_stats");
                if (tree_r >= 0)
                        cJSON_AddItemToObject(o2, "processes", ctl_json_tree(tree));
                else
                        cJSON_AddNullToObject(o2, "processes");
                return ctl_json_print(o2) < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
        }

        print_info(info);
        if (resp->inspect->has_checksum_ok)
                kv("Verified:", "%s", resp->inspect->checksum_ok ? "checksum matches" : "CHECKSUM MISMATCH");

        char b[64], b2[64];
        if (sizes_r >= 0)
                kv("CRIU images:", "%" PRIu64 " files, %s (memory pages %s)", sizes.files,
                   format_bytes(b, sizeof(b), sizes.bytes), format_bytes(b2, sizeof(b2), sizes.pages_bytes));
        printf("\nCRIU dump statistics:\n");
        if (stats_r >= 0) {
                kv("  Freezing time:", "%s", format_usec(b, sizeof(b), stats.freezing_time_us));
                kv("  Frozen time:", "%s", format_usec(b, sizeof(b), stats.frozen_time_us));
                kv("  Memdump time:", "%s", format_usec(b, sizeof(b), stats.memdump_time_us));
                kv("  Memwrite time:", "%s", format_usec(b, sizeof(b), stats.memwrite_time_us));
                kv("  Pages scanned:", "%" PRIu64, stats.pages_scanned);
                kv("  Pages written:", "%" PRIu64, stats.pages_written);
        } else
                printf("  (unavailable: %s)\n", strerror(-stats_r));

        printf("\nProcess tree:\n");
        if (tree_r >= 0)
                (void)criu_tree_print(tree, stdout, "  ");
        else
                printf("  (unavailable: %s)\n", strerror(-tree_r));
        return CTL_EXIT_OK;
}

/* ---- delete, pin, unpin ---- */

typedef struct DeleteOpts {
        bool force;
} DeleteOpts;

static int delete_opt(int c, void *ud) {
        DeleteOpts *o = ud;
        if (c == 'f') {
                o->force = true;
                return -1;
        }
        return CTL_EXIT_USAGE;
}

static int verb_delete(Ctl *ctl, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {"force", no_argument, NULL, 'f'},
                {},
        };
        DeleteOpts o = {};
        int x = verb_getopt("delete", argc, argv, "hf", opts, ctl, delete_opt, &o);
        if (x >= 0)
                return x;
        if (optind >= argc)
                return usage_error("delete", "expected at least one checkpoint reference");

        int worst = CTL_EXIT_OK;
        cJSON *a = ctl->json ? cJSON_CreateArray() : NULL;
        for (int i = optind; i < argc; i++) {
                Kybernate__V1__DeleteRequest dr = KYBERNATE__V1__DELETE_REQUEST__INIT;
                dr.reference = argv[i];
                dr.has_force = o.force;
                dr.force = o.force;
                Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
                req.op_case = KYBERNATE__V1__REQUEST__OP_DELETE;
                req.delete_ = &dr;
                _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
                x = ctl_call(ctl, "delete", &req, NULL, NULL, &resp);
                if (x != CTL_EXIT_OK) {
                        if (worst == CTL_EXIT_OK || x == CTL_EXIT_UNREACHABLE)
                                worst = x;
                        if (x == CTL_EXIT_UNREACHABLE)
                                break;
                        continue;
                }
                const Kybernate__V1__CheckpointInfo *info =
                        resp->result_case == KYBERNATE__V1__RESPONSE__RESULT_DELETE ? resp->delete_->info
                                                                                    : NULL;
                if (a && info)
                        cJSON_AddItemToArray(a, ctl_json_checkpoint(info));
                else if (!a) {
                        _cleanup_free_ char *id = strdup_printable(info ? info->id : argv[i]);
                        printf("Deleted %s\n", id ? id : "");
                }
        }
        if (a)
                (void)ctl_json_print(a);
        return worst;
}

static int pin_common(Ctl *ctl, int argc, char **argv, bool pin) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {},
        };
        const char *verb = pin ? "pin" : "unpin";
        int x = verb_getopt(verb, argc, argv, "h", opts, ctl, NULL, NULL);
        if (x >= 0)
                return x;
        if (argc - optind != 1)
                return usage_error(verb, "expected one checkpoint reference");

        Kybernate__V1__PinRequest pr = KYBERNATE__V1__PIN_REQUEST__INIT;
        pr.reference = argv[optind];
        pr.has_pinned = true;
        pr.pinned = pin;
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_PIN;
        req.pin = &pr;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, verb, &req, NULL, NULL, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        const Kybernate__V1__CheckpointInfo *info =
                resp->result_case == KYBERNATE__V1__RESPONSE__RESULT_PIN ? resp->pin->info : NULL;
        if (ctl->json && info)
                return ctl_json_print(ctl_json_checkpoint(info)) < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
        _cleanup_free_ char *id = strdup_printable(info ? info->id : argv[optind]);
        printf("%s %s\n", pin ? "Pinned" : "Unpinned", id ? id : "");
        return CTL_EXIT_OK;
}

static int verb_pin(Ctl *ctl, int argc, char **argv) {
        return pin_common(ctl, argc, argv, true);
}

static int verb_unpin(Ctl *ctl, int argc, char **argv) {
        return pin_common(ctl, argc, argv, false);
}

/* ---- prune ---- */

typedef struct PruneOpts {
        Kybernate__V1__PruneRequest *pr;
} PruneOpts;

static int prune_opt(int c, void *ud) {
        PruneOpts *o = ud;
        uint64_t v;
        switch (c) {
        case 'k':
                if (parse_uint(optarg, UINT32_MAX, &v) < 0)
                        return usage_error("prune", "invalid --keep '%s' (a number)", optarg);
                o->pr->has_keep_per_container = true;
                o->pr->keep_per_container = (uint32_t)v;
                return -1;
        case 'o':
                if (parse_duration_sec(optarg, &v) < 0)
                        return usage_error("prune", "invalid --older-than '%s' (e.g. 90s, 15m, 12h, 7d, 2w)",
                                           optarg);
                o->pr->has_max_age_sec = true;
                o->pr->max_age_sec = v;
                return -1;
        case 'n':
                o->pr->has_dry_run = true;
                o->pr->dry_run = true;
                return -1;
        }
        return CTL_EXIT_USAGE;
}

static int verb_prune(Ctl *ctl, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {"keep", required_argument, NULL, 'k'},
                {"older-than", required_argument, NULL, 'o'},
                {"dry-run", no_argument, NULL, 'n'},
                {},
        };
        Kybernate__V1__PruneRequest pr = KYBERNATE__V1__PRUNE_REQUEST__INIT;
        PruneOpts o = {.pr = &pr};
        int x = verb_getopt("prune", argc, argv, "hk:o:n", opts, ctl, prune_opt, &o);
        if (x >= 0)
                return x;
        if (optind < argc)
                return usage_error("prune", "unexpected argument '%s'", argv[optind]);

        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_PRUNE;
        req.prune = &pr;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "prune", &req, NULL, NULL, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        if (resp->result_case != KYBERNATE__V1__RESPONSE__RESULT_PRUNE) {
                ERR("prune: unexpected answer from kybernated\n");
                return CTL_EXIT_FAILED;
        }
        const Kybernate__V1__PruneResponse *p = resp->prune;
        if (ctl->json) {
                cJSON *j = cJSON_CreateObject();
                if (!j)
                        return CTL_EXIT_FAILED;
                cJSON_AddBoolToObject(j, "dry_run", pr.dry_run);
                cJSON_AddNumberToObject(j, "freed_bytes", (double)p->freed_bytes);
                cJSON *a = cJSON_AddArrayToObject(j, "deleted");
                for (size_t i = 0; a && i < p->n_deleted; i++)
                        cJSON_AddItemToArray(a, ctl_json_checkpoint(p->deleted[i]));
                return ctl_json_print(j) < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
        }
        if (p->n_deleted > 0) {
                _cleanup_table_ Table *t = NULL;
                if (table_new(5, (const char *const[]){"ID", "NAME", "CONTAINER", "CREATED", "SIZE"}, &t) <
                    0)
                        return CTL_EXIT_FAILED;
                table_set_right(t, 4);
                for (size_t i = 0; i < p->n_deleted; i++) {
                        const Kybernate__V1__CheckpointInfo *d = p->deleted[i];
                        char id[16], c[16], cr[64], sz[32];
                        (void)table_add_row(t, (const char *const[]){
                                                       short_id(id, sizeof(id), d->id),
                                                       d->name,
                                                       short_id(c, sizeof(c), d->container_id),
                                                       format_time_ns(cr, sizeof(cr), d->created_ns),
                                                       format_bytes(sz, sizeof(sz), d->size_bytes),
                                               });
                }
                (void)table_print(t, stdout);
        }
        char b[32];
        printf("%s %zu checkpoint%s, %s %s\n", pr.dry_run ? "Would delete" : "Deleted", p->n_deleted,
               p->n_deleted == 1 ? "" : "s", pr.dry_run ? "would free" : "freed",
               format_bytes(b, sizeof(b), p->freed_bytes));
        return CTL_EXIT_OK;
}

/* ---- export, import ---- */

typedef struct ExportOpts {
        const char *output;
        bool force;
} ExportOpts;

static int exportopt(int c, void *ud) {
        ExportOpts *o = ud;
        switch (c) {
        case 'o':
                o->output = optarg;
                return -1;
        case 'f':
                o->force = true;
                return -1;
        }
        return CTL_EXIT_USAGE;
}

static int write_export(const char *path, int out_fd, uint64_t *ret_bytes) {
        _cleanup_close_ int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return negative_errno();
        _cleanup_(archive_writer_freep) ArchiveWriter *w = NULL;
        int r = archive_writer_new(out_fd, &w);
        if (r < 0)
                return r;
        r = archive_writer_add_tree(w, dfd, NULL);
        if (r < 0)
                return r;
        /* checkpointctl reads CRIU's statistics from the top level. */
        if (faccessat(dfd, "stats-dump", F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
                _cleanup_close_ int s =
                        openat(dfd, "checkpoint/stats-dump", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
                if (s >= 0) {
                        r = archive_writer_add_file(w, "stats-dump", s);
                        if (r < 0)
                                return r;
                }
        }
        r = archive_writer_finish(w);
        if (r < 0)
                return r;
        *ret_bytes = archive_writer_bytes(w);
        return 0;
}

static int verb_export(Ctl *ctl, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {"output", required_argument, NULL, 'o'},
                {"force", no_argument, NULL, 'f'},
                {},
        };
        ExportOpts o = {};
        int x = verb_getopt("export", argc, argv, "ho:f", opts, ctl, exportopt, &o);
        if (x >= 0)
                return x;
        if (argc - optind != 1)
                return usage_error("export", "expected one checkpoint reference");
        if (!o.output)
                return usage_error("export", "missing -o FILE (use -o - for standard output)");
        bool to_stdout = streq(o.output, "-");
        if (to_stdout && isatty(STDOUT_FILENO)) {
                ERR("export: refusing to write an archive to a terminal\n");
                return CTL_EXIT_USAGE;
        }
        if (!to_stdout && !o.force && access(o.output, F_OK) == 0) {
                ERR("export: %s exists (use --force to replace it)\n", o.output);
                return CTL_EXIT_CONFLICT;
        }

        Kybernate__V1__ExportRequest er = KYBERNATE__V1__EXPORT_REQUEST__INIT;
        er.reference = argv[optind];
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_EXPORT;
        req.export = &er;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "export", &req, NULL, NULL, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        const Kybernate__V1__CheckpointInfo *info =
                resp->result_case == KYBERNATE__V1__RESPONSE__RESULT_EXPORT ? resp->export->info : NULL;
        if (!info || isempty(info->path) || info->path[0] != '/') {
                ERR("export: kybernated did not name the checkpoint directory\n");
                return CTL_EXIT_FAILED;
        }

        uint64_t bytes = 0;
        int r;
        if (to_stdout) {
                r = write_export(info->path, STDOUT_FILENO, &bytes);
                if (r < 0) {
                        ERR("export: writing the archive failed: %s\n", strerror(-r));
                        return ctl_exit_code(r);
                }
        } else {
                /* Written beside the target and renamed into place, so a
                 * failed export leaves no partial archive under its name. */
                _cleanup_free_ char *tmp = NULL;
                if (asprintf(&tmp, "%s.tmp-XXXXXX", o.output) < 0)
                        return CTL_EXIT_FAILED;
                _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
                if (fd < 0) {
                        ERR("export: cannot create %s: %m\n", tmp);
                        return ctl_exit_code(negative_errno());
                }
                (void)fchmod(fd, 0600);
                r = write_export(info->path, fd, &bytes);
                if (r >= 0 && fsync(fd) < 0)
                        r = negative_errno();
                if (r >= 0 && rename(tmp, o.output) < 0)
                        r = negative_errno();
                if (r < 0) {
                        (void)unlink(tmp);
                        ERR("export: writing %s failed: %s\n", o.output, strerror(-r));
                        return ctl_exit_code(r);
                }
        }
        if (ctl->json && !to_stdout) {
                cJSON *j = cJSON_CreateObject();
                if (!j)
                        return CTL_EXIT_FAILED;
                cJSON_AddStringToObject(j, "file", o.output);
                cJSON_AddNumberToObject(j, "bytes", (double)bytes);
                cJSON_AddItemToObject(j, "checkpoint", ctl_json_checkpoint(info));
                return ctl_json_print(j) < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
        }
        char b[32];
        _cleanup_free_ char *id = strdup_printable(info->id);
        fprintf(stderr, "Exported %s to %s (%s)\n", id ? id : "", to_stdout ? "standard output" : o.output,
                format_bytes(b, sizeof(b), bytes));
        return CTL_EXIT_OK;
}

typedef struct ImportOpts {
        const char *name;
        bool pin;
} ImportOpts;

static int import_opt(int c, void *ud) {
        ImportOpts *o = ud;
        switch (c) {
        case 'N':
                o->name = optarg;
                return -1;
        case 'P':
                o->pin = true;
                return -1;
        }
        return CTL_EXIT_USAGE;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)remove(path);
        return 0;
}

static int verb_import(Ctl *ctl, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {"name", required_argument, NULL, 'N'},
                {"pin", no_argument, NULL, 'P'},
                {},
        };
        ImportOpts o = {};
        int x = verb_getopt("import", argc, argv, "h", opts, ctl, import_opt, &o);
        if (x >= 0)
                return x;
        if (argc - optind != 1)
                return usage_error("import", "expected one archive file (or - for standard input)");
        const char *file = argv[optind];

        _cleanup_close_ int in = -EBADF;
        if (streq(file, "-"))
                in = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
        else
                in = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0) {
                ERR("import: cannot open %s: %m\n", file);
                return ctl_exit_code(negative_errno());
        }

        /* Compressed archives (Podman's default) are not unpacked here: say so
         * rather than "not a tar archive". */
        struct stat st;
        uint8_t magic[6] = {};
        if (fstat(in, &st) >= 0 && S_ISREG(st.st_mode) &&
            pread(in, magic, sizeof(magic), 0) == sizeof(magic)) {
                const char *kind = magic[0] == 0x1f && magic[1] == 0x8b                    ? "gzip"
                                   : memcmp(magic, "\x28\xb5\x2f\xfd", 4) == 0             ? "zstd"
                                   : memcmp(magic, "\xfd\x37\x7a\x58\x5a\x00", 6) == 0     ? "xz"
                                   : magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h' ? "bzip2"
                                                                                           : NULL;
                if (kind) {
                        ERR("import: %s is %s-compressed; decompress it first, e.g. "
                            "'%s -dc %s | kybernatectl import -'\n",
                            file, kind, streq(kind, "gzip") ? "gzip" : kind, file);
                        return CTL_EXIT_FAILED;
                }
        }

        /* A taken name would only be refused after unpacking: ask first. */
        if (o.name) {
                Kybernate__V1__InspectRequest nr = KYBERNATE__V1__INSPECT_REQUEST__INIT;
                nr.reference = (char *)o.name;
                Kybernate__V1__Request nreq = KYBERNATE__V1__REQUEST__INIT;
                nreq.op_case = KYBERNATE__V1__REQUEST__OP_INSPECT;
                nreq.inspect = &nr;
                _cleanup_(kyb_client_freep) KybClient *c = NULL;
                x = ctl_connect(ctl, &c);
                if (x != CTL_EXIT_OK)
                        return x;
                _cleanup_(kyb_response_freep) Kybernate__V1__Response *nresp = NULL;
                int r = kyb_client_call(c, &nreq, NULL, NULL, &nresp);
                if (r >= 0 && nresp && nresp->result_case == KYBERNATE__V1__RESPONSE__RESULT_INSPECT &&
                    nresp->inspect->info && streq_ptr(nresp->inspect->info->name, o.name)) {
                        _cleanup_free_ char *n = strdup_printable(o.name);
                        ERR("import: a checkpoint named '%s' exists already\n", n ? n : "");
                        return CTL_EXIT_CONFLICT;
                }
        }

        /* Step 1: a staging directory inside the store. */
        Kybernate__V1__ImportRequest ir = KYBERNATE__V1__IMPORT_REQUEST__INIT;
        ir.has_prepare = true;
        ir.prepare = true;
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_IMPORT;
        req.import = &ir;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "import", &req, NULL, NULL, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        const char *staging = resp->result_case == KYBERNATE__V1__RESPONSE__RESULT_IMPORT
                                      ? resp->import->staging_dir
                                      : NULL;
        if (isempty(staging) || staging[0] != '/') {
                ERR("import: kybernated did not provide a staging directory\n");
                return CTL_EXIT_FAILED;
        }

        /* Step 2: unpack there, with our own validating extractor. */
        _cleanup_close_ int dfd = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) {
                ERR("import: cannot open staging directory %s: %m\n", staging);
                return ctl_exit_code(negative_errno());
        }
        /* A checkpoint is a few hundred files even for big containers. */
        const ArchiveLimits limits = {.max_entries = 100000};
        int r = archive_extract(in, dfd, &limits, true);
        if (r < 0) {
                const char *why = r == -EPERM     ? "a member path leaves the archive (absolute or ..)"
                                  : r == -ENOTSUP ? "it contains links or special files"
                                  : r == -E2BIG   ? "it has more than 100000 members"
                                  : r == -EBADMSG ? "it is truncated or not a tar archive"
                                                  : strerror(-r);
                ERR("import: refusing %s: %s (%s)\n", file, why, strerror(-r));
                /* What we unpacked is ours to remove (kybernated would only
                 * notice the abandoned directory at its next start). */
                dfd = safe_close(dfd);
                (void)nftw(staging, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
                return r == -EPERM || r == -ENOTSUP || r == -EBADMSG || r == -E2BIG ? CTL_EXIT_FAILED
                                                                                    : ctl_exit_code(r);
        }

        /* Step 3: the daemon validates and adopts it. */
        Kybernate__V1__ImportRequest ir2 = KYBERNATE__V1__IMPORT_REQUEST__INIT;
        ir2.staging_dir = (char *)staging;
        ir2.name = (char *)o.name;
        ir2.has_pin = o.pin;
        ir2.pin = o.pin;
        Kybernate__V1__Request req2 = KYBERNATE__V1__REQUEST__INIT;
        req2.op_case = KYBERNATE__V1__REQUEST__OP_IMPORT;
        req2.import = &ir2;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp2 = NULL;
        x = ctl_call(ctl, "import", &req2, NULL, NULL, &resp2);
        if (x != CTL_EXIT_OK)
                return x;
        const Kybernate__V1__CheckpointInfo *info =
                resp2->result_case == KYBERNATE__V1__RESPONSE__RESULT_IMPORT ? resp2->import->info : NULL;
        if (ctl->json && info)
                return ctl_json_print(ctl_json_checkpoint(info)) < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
        _cleanup_free_ char *id = strdup_printable(info ? info->id : "");
        printf("%s\n", id ? id : "");
        return CTL_EXIT_OK;
}

/* ---- checkpoint ---- */

typedef struct CheckpointOpts {
        Kybernate__V1__CheckpointRequest *cr;
        Kybernate__V1__CheckpointOptions *o;
        bool quiet;
} CheckpointOpts;

static int checkpoint_opt(int c, void *ud) {
        CheckpointOpts *co = ud;
        switch (c) {
        case 'n':
                co->cr->containerd_namespace = optarg;
                return -1;
        case 'N':
                co->cr->name = optarg;
                return -1;
        case 'x':
                co->o->leave_running = false;
                return -1;
        case 't':
                co->o->has_tcp_established = co->o->tcp_established = true;
                return -1;
        case 'u':
                co->o->has_ext_unix_sk = co->o->ext_unix_sk = true;
                return -1;
        case 'l':
                co->o->has_file_locks = co->o->file_locks = true;
                return -1;
        case 's':
                co->o->has_shell_job = co->o->shell_job = true;
                return -1;
        case 'P':
                co->cr->has_pin = co->cr->pin = true;
                return -1;
        case 'X':
                co->cr->has_allow_cross_namespace = co->cr->allow_cross_namespace = true;
                return -1;
        case 'r':
                co->cr->runc_root = optarg;
                return -1;
        case 'i':
                co->cr->image_ref = optarg;
                return -1;
        case 'q':
                co->quiet = true;
                return -1;
        }
        return CTL_EXIT_USAGE;
}

static int checkpoint_progress(Kybernate__V1__Response *resp, void *userdata) {
        const CheckpointOpts *co = userdata;
        if (co->quiet || resp->result_case != KYBERNATE__V1__RESPONSE__RESULT_PROGRESS)
                return 0;
        const Kybernate__V1__Progress *p = resp->progress;
        _cleanup_free_ char *stage = strdup_printable(p->stage), *msg = strdup_printable(p->message);
        if (p->has_percent)
                fprintf(stderr, "[%s] %s (%" PRIu32 "%%)\n", stage ? stage : "", msg ? msg : "", p->percent);
        else
                fprintf(stderr, "[%s] %s\n", stage ? stage : "", msg ? msg : "");
        return 0;
}

static int verb_checkpoint(Ctl *ctl, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {"namespace", required_argument, NULL, 'n'},
                {"name", required_argument, NULL, 'N'},
                {"exit", no_argument, NULL, 'x'},
                {"tcp-established", no_argument, NULL, 't'},
                {"ext-unix-sk", no_argument, NULL, 'u'},
                {"file-locks", no_argument, NULL, 'l'},
                {"shell-job", no_argument, NULL, 's'},
                {"pin", no_argument, NULL, 'P'},
                {"allow-cross-namespace", no_argument, NULL, 'X'},
                {"runc-root", required_argument, NULL, 'r'},
                {"image-ref", required_argument, NULL, 'i'},
                {"quiet", no_argument, NULL, 'q'},
                {},
        };
        Kybernate__V1__CheckpointRequest cr = KYBERNATE__V1__CHECKPOINT_REQUEST__INIT;
        Kybernate__V1__CheckpointOptions o = KYBERNATE__V1__CHECKPOINT_OPTIONS__INIT;
        /* The container keeps running unless --exit. */
        o.has_leave_running = true;
        o.leave_running = true;
        CheckpointOpts co = {.cr = &cr, .o = &o};
        int x = verb_getopt("checkpoint", argc, argv, "hn:q", opts, ctl, checkpoint_opt, &co);
        if (x >= 0)
                return x;
        if (argc - optind != 1)
                return usage_error("checkpoint", "expected one container: NAMESPACE/CONTAINER-ID, or "
                                                 "--namespace NS CONTAINER-ID");
        char *target = argv[optind];
        char *slash = strchr(target, '/');
        if (slash) {
                if (cr.containerd_namespace)
                        return usage_error("checkpoint", "give the namespace either with --namespace or "
                                                         "as NAMESPACE/CONTAINER-ID, not both");
                *slash = 0;
                cr.containerd_namespace = target;
                cr.container_id = slash + 1;
        } else
                cr.container_id = target;
        if (isempty(cr.containerd_namespace) || isempty(cr.container_id) || strchr(cr.container_id, '/'))
                return usage_error("checkpoint",
                                   "expected NAMESPACE/CONTAINER-ID or --namespace NS CONTAINER-ID");
        cr.options = &o;
        if (ctl->json)
                co.quiet = true;

        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_CHECKPOINT;
        req.checkpoint = &cr;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "checkpoint", &req, checkpoint_progress, &co, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        const Kybernate__V1__CheckpointInfo *info =
                resp->result_case == KYBERNATE__V1__RESPONSE__RESULT_CHECKPOINT ? resp->checkpoint->info
                                                                                : NULL;
        if (!info) {
                ERR("checkpoint: unexpected answer from kybernated\n");
                return CTL_EXIT_FAILED;
        }
        if (ctl->json)
                return ctl_json_print(ctl_json_checkpoint(info)) < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
        char b[32];
        _cleanup_free_ char *id = strdup_printable(info->id), *path = strdup_printable(info->path);
        if (!co.quiet)
                fprintf(stderr, "Checkpoint %s is %s (%s, %s)\n", id ? id : "",
                        kyb_state_to_string(info->state), format_bytes(b, sizeof(b), info->size_bytes),
                        path ? path : "");
        printf("%s\n", id ? id : "");
        return CTL_EXIT_OK;
}

/* ---- status ---- */

static int verb_status(Ctl *ctl, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {},
        };
        int x = verb_getopt("status", argc, argv, "h", opts, ctl, NULL, NULL);
        if (x >= 0)
                return x;
        if (optind < argc)
                return usage_error("status", "unexpected argument '%s'", argv[optind]);

        Kybernate__V1__StatusRequest sr = KYBERNATE__V1__STATUS_REQUEST__INIT;
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_STATUS;
        req.status = &sr;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "status", &req, NULL, NULL, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        if (resp->result_case != KYBERNATE__V1__RESPONSE__RESULT_STATUS) {
                ERR("status: unexpected answer from kybernated\n");
                return CTL_EXIT_FAILED;
        }
        const Kybernate__V1__StatusResponse *s = resp->status;
        char b1[64], b2[64], b3[64];
        if (ctl->json) {
                cJSON *j = cJSON_CreateObject();
                if (!j)
                        return CTL_EXIT_FAILED;
                cJSON_AddStringToObject(j, "version", s->version ? s->version : "");
                cJSON_AddNumberToObject(j, "protocol_version", s->protocol_version);
                cJSON_AddStringToObject(j, "client_version", KYB_VERSION);
                cJSON_AddStringToObject(j, "socket", ctl_socket(ctl));
                cJSON_AddStringToObject(j, "store_path", s->store_path ? s->store_path : "");
                cJSON_AddNumberToObject(j, "store_bytes", (double)s->store_bytes);
                cJSON_AddNumberToObject(j, "fs_free_bytes", (double)s->fs_free_bytes);
                cJSON_AddNumberToObject(j, "fs_total_bytes", (double)s->fs_total_bytes);
                cJSON_AddNumberToObject(j, "count_ready", (double)s->count_ready);
                cJSON_AddNumberToObject(j, "count_pending", (double)s->count_pending);
                cJSON_AddNumberToObject(j, "count_failed", (double)s->count_failed);
                cJSON_AddNumberToObject(j, "count_pinned", (double)s->count_pinned);
                cJSON_AddNumberToObject(j, "schema_version", s->schema_version);
                cJSON_AddBoolToObject(j, "durable", s->durable);
                cJSON_AddStringToObject(j, "started", format_time_rfc3339(b1, sizeof(b1), s->started_ns));
                cJSON_AddStringToObject(j, "runc_path", s->runc_path ? s->runc_path : "");
                cJSON_AddStringToObject(j, "criu_path", s->criu_path ? s->criu_path : "");
                return ctl_json_print(j) < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
        }
        kv("Daemon:", "kybernated %s (protocol %" PRIu32 ", schema %" PRIu32 ")", or_dash(s->version),
           s->protocol_version, s->schema_version);
        kv("Client:", "kybernatectl %s", KYB_VERSION);
        kv("Socket:", "%s", ctl_socket(ctl));
        int64_t now = now_realtime_ns();
        if (s->started_ns > 0 && now >= s->started_ns)
                kv("Started:", "%s (up %s)", format_time_ns(b1, sizeof(b1), s->started_ns),
                   format_duration(b2, sizeof(b2), (uint64_t)(now - s->started_ns) / NSEC_PER_SEC));
        kv("Store:", "%s", or_dash(s->store_path));
        kv("Store usage:", "%s in checkpoints; filesystem %s free of %s",
           format_bytes(b1, sizeof(b1), s->store_bytes), format_bytes(b2, sizeof(b2), s->fs_free_bytes),
           format_bytes(b3, sizeof(b3), s->fs_total_bytes));
        kv("Checkpoints:", "%" PRIu64 " ready, %" PRIu64 " pending, %" PRIu64 " failed, %" PRIu64 " pinned",
           s->count_ready, s->count_pending, s->count_failed, s->count_pinned);
        kv("Durable:", "%s",
           s->durable ? "yes (images and catalog synced before ready)" : "NO (sync disabled)");
        kv("runc:", "%s", or_dash(s->runc_path));
        kv("CRIU:", "%s", or_dash(s->criu_path));
        return CTL_EXIT_OK;
}

/* ---- resolve ---- */

typedef struct ResolveOpts {
        Kybernate__V1__RestoreTarget *t;
        bool count, quiet, any_target;
} ResolveOpts;

static int resolve_opt(int c, void *ud) {
        ResolveOpts *o = ud;
        switch (c) {
        case 'n':
                o->t->containerd_namespace = optarg;
                break;
        case 'K':
                o->t->k8s_namespace = optarg;
                break;
        case 'p':
                o->t->k8s_pod = optarg;
                break;
        case 'c':
                o->t->k8s_container = optarg;
                break;
        case 'C':
                o->t->container_id = optarg;
                break;
        case 'i':
                o->t->image_ref = optarg;
                break;
        case 'R':
                o->count = true;
                return -1;
        case 'q':
                o->quiet = true;
                return -1;
        default:
                return CTL_EXIT_USAGE;
        }
        o->any_target = true;
        return -1;
}

static int verb_resolve(Ctl *ctl, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                {"namespace", required_argument, NULL, 'n'},
                {"k8s-namespace", required_argument, NULL, 'K'},
                {"pod", required_argument, NULL, 'p'},
                {"container", required_argument, NULL, 'c'},
                {"container-id", required_argument, NULL, 'C'},
                {"image-ref", required_argument, NULL, 'i'},
                {"count-restore", no_argument, NULL, 'R'},
                {"quiet", no_argument, NULL, 'q'},
                {},
        };
        Kybernate__V1__RestoreTarget t = KYBERNATE__V1__RESTORE_TARGET__INIT;
        ResolveOpts o = {.t = &t};
        int x = verb_getopt("resolve", argc, argv, "hn:p:c:q", opts, ctl, resolve_opt, &o);
        if (x >= 0)
                return x;
        if (argc - optind != 1)
                return usage_error("resolve", "expected one checkpoint reference");

        Kybernate__V1__ResolveRequest rr = KYBERNATE__V1__RESOLVE_REQUEST__INIT;
        rr.reference = argv[optind];
        rr.target = o.any_target ? &t : NULL;
        rr.has_dry_run = true;
        rr.dry_run = !o.count;
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_RESOLVE;
        req.resolve = &rr;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "resolve", &req, NULL, NULL, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        if (resp->result_case != KYBERNATE__V1__RESPONSE__RESULT_RESOLVE) {
                ERR("resolve: unexpected answer from kybernated\n");
                return CTL_EXIT_FAILED;
        }
        const Kybernate__V1__ResolveResponse *rs = resp->resolve;
        if (ctl->json) {
                cJSON *j = cJSON_CreateObject();
                if (!j)
                        return CTL_EXIT_FAILED;
                cJSON_AddStringToObject(j, "image_path", rs->image_path ? rs->image_path : "");
                cJSON_AddStringToObject(j, "checkpoint_dir", rs->checkpoint_dir ? rs->checkpoint_dir : "");
                if (rs->info)
                        cJSON_AddItemToObject(j, "checkpoint", ctl_json_checkpoint(rs->info));
                return ctl_json_print(j) < 0 ? CTL_EXIT_FAILED : CTL_EXIT_OK;
        }
        if (o.quiet) {
                _cleanup_free_ char *p = strdup_printable(rs->image_path);
                printf("%s\n", p ? p : "");
                return CTL_EXIT_OK;
        }
        kv("Image path:", "%s", or_dash(rs->image_path));
        kv("Checkpoint dir:", "%s", or_dash(rs->checkpoint_dir));
        if (rs->info) {
                kv("ID:", "%s", or_dash(rs->info->id));
                kv("Name:", "%s", or_dash(rs->info->name));
        }
        return CTL_EXIT_OK;
}

/* ---- verbs table and main ---- */

static const Verb verbs[] = {
        {"list", verb_list, "[OPTIONS]", "List checkpoints as a table or --json.",
         "Options:\n"
         "  -n, --namespace NS         only this containerd namespace\n"
         "      --k8s-namespace NS     only this Kubernetes namespace\n"
         "  -p, --pod POD              only this Kubernetes pod\n"
         "  -c, --container NAME       only this Kubernetes container name\n"
         "      --container-id ID      only this container id\n"
         "      --state STATE          ready, pending or failed\n"
         "  -l, --limit N              at most N rows\n"
         "  -q, --quiet                print the ids only\n"
         "      --json                 JSON array of checkpoints\n"},
        {"inspect", verb_inspect, "[OPTIONS] REF",
         "Show one checkpoint: metadata, CRIU statistics, process tree.",
         "Shows all metadata, sizes, CRIU's dump statistics and the process tree read from the\n"
         "CRIU images.\n"
         "REF is an id, a unique id prefix (4+ characters), a name, or K8S-NS/POD/CONTAINER (newest).\n"
         "Options:\n"
         "      --verify               recompute the checksum and compare\n"
         "      --json                 JSON object\n"},
        {"delete", verb_delete, "[OPTIONS] REF...", "Delete checkpoints.",
         "Options:\n"
         "  -f, --force                also delete pinned checkpoints\n"
         "      --json                 JSON array of the deleted checkpoints\n"},
        {"prune", verb_prune, "[OPTIONS]", "Delete old checkpoints by retention rules.",
         "Per container keep the newest N ready checkpoints and delete the others that are older\n"
         "than a duration. Pinned checkpoints always stay. Options not given take the daemon's\n"
         "configured defaults.\n"
         "Options:\n"
         "      --keep N               keep the newest N per container\n"
         "      --older-than DURATION  only delete those older than this (90s, 15m, 12h, 7d, 2w, 1d12h)\n"
         "  -n, --dry-run              show what would be deleted\n"
         "      --json                 JSON object\n"},
        {"pin", verb_pin, "REF", "Pin a checkpoint.",
         "A pinned checkpoint is kept by prune, and by delete without --force.\n"},
        {"unpin", verb_unpin, "REF", "Unpin a checkpoint.", "Prune may delete it again.\n"},
        {"export", verb_export, "REF -o FILE", "Write a checkpoint as a tar archive.",
         "The archive has the layout Podman and CRI-O export (config.dump, spec.dump, checkpoint/,\n"
         "stats-dump), which `checkpointctl show` reads and `kybernatectl import` takes back.\n"
         "Options:\n"
         "  -o, --output FILE          the archive to write (- for standard output)\n"
         "  -f, --force                replace FILE if it exists\n"},
        {"import", verb_import, "[OPTIONS] FILE", "Import a checkpoint archive into the store.",
         "Takes archives written by `kybernatectl export`, Podman or CRI-O (uncompressed tar).\n"
         "Archives with links, devices or paths outside the archive are refused.\n"
         "Options:\n"
         "      --name NAME            give the imported checkpoint a name\n"
         "      --pin                  pin it\n"
         "      --json                 JSON object of the new checkpoint\n"},
        {"checkpoint", verb_checkpoint, "[OPTIONS] NAMESPACE/CONTAINER-ID | --namespace NS CONTAINER-ID",
         "Checkpoint a running container.",
         "Checkpoints the container CONTAINER-ID of containerd namespace NS. Progress goes to\n"
         "standard error, the new checkpoint's id to standard output.\n"
         "Options:\n"
         "  -n, --namespace NS         containerd namespace\n"
         "      --name NAME            a unique name for the checkpoint\n"
         "      --exit                 stop the container after the checkpoint (default: it keeps running)\n"
         "      --tcp-established      checkpoint established TCP connections\n"
         "      --ext-unix-sk          allow external unix sockets\n"
         "      --file-locks           checkpoint file locks\n"
         "      --shell-job            the container is a shell job (has a terminal)\n"
         "      --pin                  pin the new checkpoint\n"
         "      --allow-cross-namespace  allow restoring it into another namespace\n"
         "      --runc-root DIR        runc state directory (default: from the namespace)\n"
         "      --image-ref REF        record this image reference\n"
         "  -q, --quiet                no progress messages\n"
         "      --json                 JSON object of the new checkpoint\n"},
        {"status", verb_status, "", "Show the daemon's version, store usage and counts.",
         "Options:\n"
         "      --json                 JSON object\n"},
        {"resolve", verb_resolve, "[OPTIONS] REF", "Resolve a reference to an image path (debugging).",
         "Resolves REF as a restore would. The target options describe the restoring container;\n"
         "the tenant rules apply to them.\n"
         "Options:\n"
         "  -n, --namespace NS         target containerd namespace\n"
         "      --k8s-namespace NS     target Kubernetes namespace\n"
         "  -p, --pod POD              target pod\n"
         "  -c, --container NAME       target container name\n"
         "      --container-id ID      target container id\n"
         "      --image-ref REF        target image\n"
         "      --count-restore        count this as a restore (default: a dry run)\n"
         "  -q, --quiet                print the image path only\n"
         "      --json                 JSON object\n"},
};

static const Verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, name))
                        return &verbs[i];
        return NULL;
}

static void help(void) {
        printf("Usage: kybernatectl [--socket PATH] [--json] VERB [OPTIONS] [ARGS]\n\n"
               "The operator's CLI of kybernated, the node's checkpoint daemon.\n\n"
               "Verbs:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                printf("  %-11s %s\n", verbs[i].name, verbs[i].summary);
        }
        printf("\nGlobal options:\n"
               "  -s, --socket PATH          daemon socket (default $%s or %s)\n"
               "      --json                 machine-readable output\n"
               "  -h, --help                 this help; `kybernatectl VERB --help` for a verb\n"
               "      --version              print the version\n"
               "\nExit codes:\n"
               "  0  success\n"
               "  1  the operation failed\n"
               "  2  usage error or invalid argument\n"
               "  3  kybernated is not running or not reachable\n"
               "  4  no such checkpoint\n"
               "  5  permission denied\n"
               "  6  conflict: ambiguous reference, name taken, file exists, busy\n",
               KYB_SOCKET_ENV, KYB_SOCKET_DEFAULT);
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                {"socket", required_argument, NULL, 's'},
                {"json", no_argument, NULL, 'J'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, 'V'},
                {},
        };
        Ctl ctl = {};
        int c;

        /* '+': stop at the verb; its options are parsed by the verb. */
        while ((c = getopt_long(argc, argv, "+s:h", opts, NULL)) >= 0) {
                switch (c) {
                case 's':
                        ctl.socket_path = optarg;
                        break;
                case 'J':
                        ctl.json = true;
                        break;
                case 'h':
                        help();
                        return CTL_EXIT_OK;
                case 'V':
                        printf("kybernatectl %s\n", KYB_VERSION);
                        return CTL_EXIT_OK;
                default:
                        return usage_error(NULL, "invalid option");
                }
        }
        if (optind >= argc) {
                help();
                return CTL_EXIT_USAGE;
        }
        const char *name = argv[optind];
        if (streq(name, "help")) {
                const Verb *v = optind + 1 < argc ? verb_find(argv[optind + 1]) : NULL;
                if (v) {
                        printf("Usage: kybernatectl %s %s\n\n%s\n\n%s", v->name, v->args, v->summary,
                               v->help);
                        return CTL_EXIT_OK;
                }
                help();
                return CTL_EXIT_OK;
        }
        const Verb *v = verb_find(name);
        if (!v)
                return usage_error(NULL, "unknown verb '%s'", name);
        return v->run(&ctl, argc - optind, argv + optind);
}
