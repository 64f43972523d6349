/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl export: the daemon names the checkpoint directory, the CLI
 * writes the tar archive itself (as the caller, to a file or standard output). */
#include <fcntl.h>
#include <sys/stat.h>

#include "archive.h"
#include "ctl-json.h"
#include "ctl.h"

typedef struct ExportOpts {
        char *output;
        bool force;
} ExportOpts;

/* What the archive holds: one checkpoint directory, or a pod's (its own
 * files at the top, each member's directory under members/<container>/). */
typedef struct ExportSource {
        const char *path;
        const char **names, **dirs; /* a pod's members; NULL for one checkpoint */
        size_t n;
} ExportSource;

static int export_write(const ExportSource *src, int fd, uint64_t *ret_bytes) {
        if (!src->names)
                return archive_write_checkpoint(src->path, fd, ret_bytes);
        return archive_write_pod_checkpoint(src->path, src->names, src->dirs, src->n, fd, NULL, NULL,
                                            ret_bytes);
}

/* Written beside the target and renamed into place, so a failed export leaves
 * no partial archive under its name. */
static int export_to_file(const ExportSource *src, const char *output, uint64_t *ret_bytes) {
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp-XXXXXX", output) < 0)
                return CTL_EXIT_FAILED;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                ERR("export: cannot create %s: %m\n", tmp);
                return ctl_exit_code(negative_errno());
        }
        (void)fchmod(fd, 0600);
        int r = export_write(src, fd, ret_bytes);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r >= 0 && rename(tmp, output) < 0)
                r = negative_errno();
        if (r < 0) {
                (void)unlink(tmp);
                ERR("export: writing %s failed: %s\n", output, strerror(-r));
                return ctl_exit_code(r);
        }
        return CTL_EXIT_OK;
}

int ctl_export_info(const Ctl *ctl, const char *verb, const char *ref, Kybernate__V1__Response **ret,
                    const Kybernate__V1__CheckpointInfo **ret_info) {
        Kybernate__V1__ExportRequest er = KYBERNATE__V1__EXPORT_REQUEST__INIT;
        er.reference = (char *)ref;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        const Kybernate__V1__CheckpointInfo *info;
        int x = ctl_call_info(ctl, verb, KYBERNATE__V1__REQUEST__OP_EXPORT, &er,
                              KYBERNATE__V1__RESPONSE__RESULT_EXPORT, &resp, &info);
        if (x != CTL_EXIT_OK)
                return x;
        if (!info || isempty(info->path) || info->path[0] != '/') {
                ERR("%s: kybernated did not name the checkpoint directory\n", verb);
                return CTL_EXIT_FAILED;
        }
        *ret = TAKE_PTR(resp);
        *ret_info = info;
        return CTL_EXIT_OK;
}

static int verb_export(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        ExportOpts o = {};
        int x = ctl_parse_options(ctl, verb, argc, argv, &o);
        if (x >= 0)
                return x;
        if (!o.output)
                return ctl_usage_error("export", "missing -o FILE (use -o - for standard output)");
        bool to_stdout = streq(o.output, "-");
        if (to_stdout && isatty(STDOUT_FILENO)) {
                ERR("export: refusing to write an archive to a terminal\n");
                return CTL_EXIT_USAGE;
        }
        if (!to_stdout && !o.force && access(o.output, F_OK) == 0) {
                ERR("export: %s exists (use --force to replace it)\n", o.output);
                return CTL_EXIT_CONFLICT;
        }

        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        const Kybernate__V1__CheckpointInfo *info;
        x = ctl_export_info(ctl, "export", argv[optind], &resp, &info);
        if (x != CTL_EXIT_OK)
                return x;

        /* A pod: every member, with its directory, named by its container. */
        const Kybernate__V1__ExportResponse *exp = resp->export;
        _cleanup_free_ const char **names = NULL, **dirs = NULL;
        ExportSource src = {.path = info->path};
        if (info->has_is_pod && info->is_pod) {
                names = calloc(exp->n_members + 1, sizeof(*names));
                dirs = calloc(exp->n_members + 1, sizeof(*dirs));
                if (!names || !dirs)
                        return CTL_EXIT_FAILED;
                for (size_t i = 0; i < exp->n_members; i++) {
                        const Kybernate__V1__CheckpointInfo *mi = exp->members[i];
                        if (isempty(mi->k8s_container) || isempty(mi->path) || mi->path[0] != '/') {
                                ERR("export: kybernated did not name the directory of every member\n");
                                return CTL_EXIT_FAILED;
                        }
                        names[i] = mi->k8s_container;
                        dirs[i] = mi->path;
                }
                if (exp->n_members == 0) {
                        ERR("export: pod checkpoint %s has no members\n", info->id);
                        return CTL_EXIT_FAILED;
                }
                src.names = names;
                src.dirs = dirs;
                src.n = exp->n_members;
        }

        uint64_t bytes = 0;
        if (to_stdout) {
                int r = export_write(&src, STDOUT_FILENO, &bytes);
                if (r < 0) {
                        ERR("export: writing the archive failed: %s\n", strerror(-r));
                        return ctl_exit_code(r);
                }
        } else {
                x = export_to_file(&src, o.output, &bytes);
                if (x != CTL_EXIT_OK)
                        return x;
        }
        if (ctl->json && !to_stdout) {
                cJSON *j = cJSON_CreateObject();
                if (!j)
                        return CTL_EXIT_FAILED;
                cJSON_AddStringToObject(j, "file", o.output);
                cJSON_AddNumberToObject(j, "bytes", (double)bytes);
                cJSON_AddItemToObject(j, "checkpoint", ctl_json_checkpoint(info));
                return ctl_print_json(j);
        }
        char b[32];
        _cleanup_free_ char *id = strdup_printable(info->id);
        fprintf(stderr, "Exported %s%s to %s (%s)\n", src.names ? "pod checkpoint " : "", id ? id : "",
                to_stdout ? "standard output" : o.output, format_bytes(b, sizeof(b), bytes));
        for (size_t i = 0; i < src.n; i++) {
                _cleanup_free_ char *mn = strdup_printable(src.names[i]),
                                    *mid = strdup_printable(exp->members[i]->id);
                fprintf(stderr, "  %s -> %s\n", mn ? mn : "", mid ? mid : "");
        }
        return CTL_EXIT_OK;
}

static const CtlOption export_options[] = {
        {"output", 'o', true, "FILE", "the archive to write (- for standard output)",
         CTL_AT(ExportOpts, output)},
        {"force", 'f', true, NULL, "replace FILE if it exists", CTL_AT(ExportOpts, force)},
        {},
};

const CtlVerb ctl_verb_export = {
        CTL_VERB("export", verb_export, "REF -o FILE", "Write a checkpoint as a tar archive."),
        .intro = "The archive has the layout Podman and CRI-O export (config.dump, spec.dump, checkpoint/,\n"
                 "stats-dump), which `checkpointctl show` reads and `kybernatectl import` takes back.\n"
                 "A pod checkpoint is one archive: pod.json and kybernate.json at the top, each member's\n"
                 "checkpoint under members/CONTAINER/. A pod's member is exported only with its pod.\n",
        CTL_ARGS(1, "expected one checkpoint reference"),
        .options = export_options,
};
