/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl import: the daemon provides a staging directory in its store,
 * the CLI unpacks the archive there with the validating extractor, and the
 * daemon checks and adopts the result. */
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include "archive.h"
#include "ctl.h"

typedef struct ImportOpts {
        char *name;
        bool pin;
} ImportOpts;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)remove(path);
        return 0;
}

/* Compressed archives (Podman's default) are not unpacked here: say so
 * rather than "not a tar archive". */
static int import_refuse_compressed(int in, const char *file) {
        struct stat st;
        uint8_t magic[6] = {};
        if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode) ||
            pread(in, magic, sizeof(magic), 0) != sizeof(magic))
                return CTL_EXIT_OK;
        const char *kind = magic[0] == 0x1f && magic[1] == 0x8b                    ? "gzip"
                           : memcmp(magic, "\x28\xb5\x2f\xfd", 4) == 0             ? "zstd"
                           : memcmp(magic, "\xfd\x37\x7a\x58\x5a\x00", 6) == 0     ? "xz"
                           : magic[0] == 'B' && magic[1] == 'Z' && magic[2] == 'h' ? "bzip2"
                                                                                   : NULL;
        if (!kind)
                return CTL_EXIT_OK;
        ERR("import: %s is %s-compressed; decompress it first, e.g. "
            "'%s -dc %s | kybernatectl import -'\n",
            file, kind, streq(kind, "gzip") ? "gzip" : kind, file);
        return CTL_EXIT_FAILED;
}

/* A taken name would only be refused after unpacking: ask first. */
int ctl_import_check_name(const Ctl *ctl, const char *name) {
        Kybernate__V1__InspectRequest nr = KYBERNATE__V1__INSPECT_REQUEST__INIT;
        nr.reference = (char *)name;
        Kybernate__V1__Request nreq = KYBERNATE__V1__REQUEST__INIT;
        nreq.op_case = KYBERNATE__V1__REQUEST__OP_INSPECT;
        nreq.inspect = &nr;
        _cleanup_(kyb_client_freep) KybClient *c = NULL;
        int x = ctl_connect(ctl, &c);
        if (x != CTL_EXIT_OK)
                return x;
        /* Any failure here (no such checkpoint, most likely) lets the import go on. */
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *nresp = NULL;
        int r = kyb_client_call(c, &nreq, NULL, NULL, &nresp);
        if (r >= 0 && nresp && nresp->result_case == KYBERNATE__V1__RESPONSE__RESULT_INSPECT &&
            nresp->inspect->info && streq_ptr(nresp->inspect->info->name, name)) {
                _cleanup_free_ char *n = strdup_printable(name);
                ERR("import: a checkpoint named '%s' exists already\n", n ? n : "");
                return CTL_EXIT_CONFLICT;
        }
        return CTL_EXIT_OK;
}

/* Unpacks the archive into the staging directory; on failure removes what it
 * unpacked (kybernated would only notice the abandoned directory at its next
 * start). */
static void on_unpack_progress(uint64_t bytes, void *userdata) {
        progress_set(userdata, bytes);
}

static int import_unpack(int in, const char *file, const char *staging, Progress *progress) {
        _cleanup_close_ int dfd = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0) {
                if (progress)
                        progress_fail(progress);
                ERR("import: cannot open staging directory %s: %m\n", staging);
                return ctl_exit_code(negative_errno());
        }
        /* A checkpoint is a few hundred files even for big containers. */
        const ArchiveLimits limits = {.max_entries = 100000,
                                      .progress = progress ? on_unpack_progress : NULL,
                                      .progress_userdata = progress};
        int r = archive_extract(in, dfd, &limits, true);
        if (r >= 0)
                return CTL_EXIT_OK;
        if (progress)
                progress_fail(progress);
        const char *why = r == -EPERM     ? "a member path leaves the archive (absolute or ..)"
                          : r == -ENOTSUP ? "it contains links or special files"
                          : r == -E2BIG   ? "it has more than 100000 members"
                          : r == -EBADMSG ? "it is truncated or not a tar archive"
                                          : strerror(-r);
        ERR("import: refusing %s: %s (%s)\n", file, why, strerror(-r));
        /* NOLINTNEXTLINE(clang-analyzer-deadcode.DeadStores): read by the _cleanup_close_ at scope exit */
        dfd = safe_close(dfd);
        (void)nftw(staging, remove_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
        return r == -EPERM || r == -ENOTSUP || r == -EBADMSG || r == -E2BIG ? CTL_EXIT_FAILED
                                                                            : ctl_exit_code(r);
}

int ctl_import_fd(Ctl *ctl, int in, const char *what, const char *name, bool pin, Progress *progress) {
        /* Step 1: a staging directory inside the store. */
        Kybernate__V1__ImportRequest ir = KYBERNATE__V1__IMPORT_REQUEST__INIT;
        ir.has_prepare = true;
        ir.prepare = true;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        int x = ctl_call(ctl, "import", KYBERNATE__V1__REQUEST__OP_IMPORT, &ir,
                         KYBERNATE__V1__RESPONSE__RESULT__NOT_SET, &resp);
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
        if (progress)
                progress_begin(progress, true, 0, "Unpacking %s into the catalog", what);
        x = import_unpack(in, what, staging, progress);
        if (x != CTL_EXIT_OK)
                return x;
        if (progress)
                progress_end(progress, NULL);

        /* Step 3: the daemon validates and adopts it. */
        Kybernate__V1__ImportRequest ir2 = KYBERNATE__V1__IMPORT_REQUEST__INIT;
        ir2.staging_dir = (char *)staging;
        ir2.name = (char *)name;
        ir2.has_pin = pin;
        ir2.pin = pin;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp2 = NULL;
        const Kybernate__V1__CheckpointInfo *info;
        x = ctl_call_info(ctl, "import", KYBERNATE__V1__REQUEST__OP_IMPORT, &ir2,
                          KYBERNATE__V1__RESPONSE__RESULT_IMPORT, &resp2, &info);
        if (x != CTL_EXIT_OK)
                return x;
        /* A pod checkpoint: its members, container -> id (on stderr: stdout is the id). */
        for (size_t i = 0; !ctl->json && info && info->has_is_pod && info->is_pod && i < info->n_members;
             i++) {
                _cleanup_free_ char *n = strdup_printable(info->members[i]->k8s_container),
                                    *id = strdup_printable(info->members[i]->id);
                fprintf(stderr, "  %s -> %s\n", n ? n : "", id ? id : "");
        }
        return ctl_print_checkpoint_done(ctl, info, "", "");
}

static int verb_import(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        ImportOpts o = {};
        int x = ctl_parse_options(ctl, verb, argc, argv, &o);
        if (x >= 0)
                return x;
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
        x = import_refuse_compressed(in, file);
        if (x == CTL_EXIT_OK && o.name)
                x = ctl_import_check_name(ctl, o.name);
        if (x != CTL_EXIT_OK)
                return x;
        return ctl_import_fd(ctl, in, file, o.name, o.pin, NULL);
}

static const CtlOption import_options[] = {
        {"name", 'N', false, "NAME", "give the imported checkpoint a name", CTL_AT(ImportOpts, name)},
        {"pin", 'P', false, NULL, "pin it", CTL_AT(ImportOpts, pin)},
        {},
};

const CtlVerb ctl_verb_import = {
        CTL_VERB("import", verb_import, "[OPTIONS] FILE", "Import a checkpoint archive into the store."),
        .intro = "Takes archives written by `kybernatectl export`, Podman or CRI-O (uncompressed tar).\n"
                 "A pod checkpoint's archive becomes the pod and its members, all new ids.\n"
                 "Archives with links, devices or paths outside the archive are refused.\n",
        .json = "JSON object of the new checkpoint",
        CTL_ARGS(1, "expected one archive file (or - for standard input)"),
        .options = import_options,
};
