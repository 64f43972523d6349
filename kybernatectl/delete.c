/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl delete: one request per reference; goes on after a failure
 * (unless kybernated is unreachable) and exits with the first one. */
#include "ctl-json.h"
#include "ctl.h"

typedef struct DeleteOpts {
        bool force;
} DeleteOpts;

static int verb_delete(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        DeleteOpts o = {};
        int x = ctl_parse_options(ctl, verb, argc, argv, &o);
        if (x >= 0)
                return x;

        int worst = CTL_EXIT_OK;
        cJSON *a = ctl->json ? cJSON_CreateArray() : NULL;
        for (int i = optind; i < argc; i++) {
                Kybernate__V1__DeleteRequest dr = KYBERNATE__V1__DELETE_REQUEST__INIT;
                dr.reference = argv[i];
                dr.has_force = o.force;
                dr.force = o.force;
                _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
                const Kybernate__V1__CheckpointInfo *info;
                x = ctl_call_info(ctl, "delete", KYBERNATE__V1__REQUEST__OP_DELETE, &dr,
                                  KYBERNATE__V1__RESPONSE__RESULT_DELETE, &resp, &info);
                if (x != CTL_EXIT_OK) {
                        if (worst == CTL_EXIT_OK || x == CTL_EXIT_UNREACHABLE)
                                worst = x;
                        if (x == CTL_EXIT_UNREACHABLE)
                                break;
                        continue;
                }
                if (a && info)
                        cJSON_AddItemToArray(a, ctl_json_checkpoint(info));
                else if (!a)
                        ctl_print_line("Deleted ", info ? info->id : argv[i]);
        }
        if (a)
                (void)ctl_json_print(a);
        return worst;
}

static const CtlOption delete_options[] = {
        {"force", 'f', true, NULL, "also delete pinned checkpoints", CTL_AT(DeleteOpts, force)},
        {},
};

const CtlVerb ctl_verb_delete = {
        CTL_VERB("delete", verb_delete, "[OPTIONS] REF...", "Delete checkpoints."),
        .json = "JSON array of the deleted checkpoints",
        CTL_ARGS(-1, "expected at least one checkpoint reference"),
        .options = delete_options,
};
