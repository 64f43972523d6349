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

/* Written beside the target and renamed into place, so a failed export leaves
 * no partial archive under its name. */
static int export_to_file(const ArchiveSource *src, const char *output, uint64_t *ret_bytes) {
        _cleanup_free_ char *tmp = NULL;
        if (asprintf(&tmp, "%s.tmp-XXXXXX", output) < 0)
                return CTL_EXIT_FAILED;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                ERR("export: cannot create %s: %m\n", tmp);
                return ctl_exit_code(negative_errno());
        }
        (void)fchmod(fd, 0600);
        int r = archive_write_source(src, fd, NULL, NULL, ret_bytes);
        if (r >= 0 && fsync(fd) < 0)
                r = negative_errno();
        r = tmp_file_commit(tmp, output, r);
        if (r < 0) {
                ERR("export: writing %s failed: %s\n", output, strerror(-r));
                return ctl_exit_code(r);
        }
        return CTL_EXIT_OK;
}

void ctl_export_done(CtlExport *e) {
        free((void *)e->src.member_names);
        free((void *)e->src.member_dirs);
        kyb_response_freep(&e->resp);
        *e = (CtlExport){};
}

int ctl_export_info(const Ctl *ctl, const char *verb, const char *ref, CtlExport *ret) {
        Kybernate__V1__ExportRequest er = KYBERNATE__V1__EXPORT_REQUEST__INIT;
        er.reference = (char *)ref;
        *ret = (CtlExport){};
        int x = ctl_call_info(ctl, verb, KYBERNATE__V1__REQUEST__OP_EXPORT, &er,
                              KYBERNATE__V1__RESPONSE__RESULT_EXPORT, &ret->resp, &ret->info);
        if (x != CTL_EXIT_OK)
                return x;
        const Kybernate__V1__CheckpointInfo *info = ret->info;
        if (!info || isempty(info->path) || info->path[0] != '/') {
                ERR("%s: kybernated did not name the checkpoint directory\n", verb);
                return CTL_EXIT_FAILED;
        }
        ret->exp = ret->resp->export;
        ret->src.path = info->path;
        if (!info->has_is_pod || !info->is_pod)
                return CTL_EXIT_OK;
        /* A pod: every member, with its directory, named by its container. */
        const Kybernate__V1__ExportResponse *exp = ret->exp;
        if (exp->n_members == 0) {
                ERR("%s: pod checkpoint %s has no members\n", verb, info->id);
                return CTL_EXIT_FAILED;
        }
        const char **names = calloc(exp->n_members, sizeof(*names));
        const char **dirs = calloc(exp->n_members, sizeof(*dirs));
        ret->src.member_names = names;
        ret->src.member_dirs = dirs;
        if (!names || !dirs)
                return CTL_EXIT_FAILED;
        for (size_t i = 0; i < exp->n_members; i++) {
                const Kybernate__V1__CheckpointInfo *mi = exp->members[i];
                if (isempty(mi->k8s_container) || isempty(mi->path) || mi->path[0] != '/') {
                        ERR("%s: kybernated did not name the directory of every member\n", verb);
                        return CTL_EXIT_FAILED;
                }
                names[i] = mi->k8s_container;
                dirs[i] = mi->path;
        }
        ret->src.n_members = exp->n_members;
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

        _cleanup_(ctl_export_done) CtlExport ex = {};
        x = ctl_export_info(ctl, "export", argv[optind], &ex);
        if (x != CTL_EXIT_OK)
                return x;
        const Kybernate__V1__CheckpointInfo *info = ex.info;
        const ArchiveSource *src = &ex.src;

        uint64_t bytes = 0;
        if (to_stdout) {
                int r = archive_write_source(src, STDOUT_FILENO, NULL, NULL, &bytes);
                if (r < 0) {
                        ERR("export: writing the archive failed: %s\n", strerror(-r));
                        return ctl_exit_code(r);
                }
        } else {
                x = export_to_file(src, o.output, &bytes);
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
        fprintf(stderr, "Exported %s%s to %s (%s)\n", src->member_names ? "pod checkpoint " : "",
                id ? id : "", to_stdout ? "standard output" : o.output, format_bytes(b, sizeof(b), bytes));
        for (size_t i = 0; i < src->n_members; i++) {
                _cleanup_free_ char *mn = strdup_printable(src->member_names[i]),
                                    *mid = strdup_printable(ex.exp->members[i]->id);
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
