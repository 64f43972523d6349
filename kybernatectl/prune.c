/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl prune: the daemon applies the retention rules (ours or its
 * configured ones) and names what it deleted. */
#include "ctl-json.h"
#include "ctl.h"

static int prune_opt(int c, char *arg, void *ud) {
        Kybernate__V1__PruneRequest *pr = ud;
        uint64_t v;
        switch (c) {
        case 'k':
                if (parse_uint(arg, UINT32_MAX, &v) < 0)
                        return ctl_usage_error("prune", "invalid --keep '%s' (a number)", arg);
                pr->has_keep_per_container = true;
                pr->keep_per_container = (uint32_t)v;
                return -1;
        case 'o':
                if (parse_duration_sec(arg, &v) < 0)
                        return ctl_usage_error(
                                "prune", "invalid --older-than '%s' (e.g. 90s, 15m, 12h, 7d, 2w)", arg);
                pr->has_max_age_sec = true;
                pr->max_age_sec = v;
                return -1;
        case 'n':
                pr->has_dry_run = true;
                pr->dry_run = true;
                return -1;
        }
        return CTL_EXIT_USAGE;
}

static int prune_print_json(const Kybernate__V1__PruneResponse *p, bool dry_run) {
        cJSON *j = cJSON_CreateObject();
        if (!j)
                return CTL_EXIT_FAILED;
        cJSON_AddBoolToObject(j, "dry_run", dry_run);
        cJSON_AddNumberToObject(j, "freed_bytes", (double)p->freed_bytes);
        cJSON *a = cJSON_AddArrayToObject(j, "deleted");
        for (size_t i = 0; a && i < p->n_deleted; i++)
                cJSON_AddItemToArray(a, ctl_json_checkpoint(p->deleted[i]));
        return ctl_print_json(j);
}

static int prune_print(const Kybernate__V1__PruneResponse *p, bool dry_run) {
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
        printf("%s %zu checkpoint%s, %s %s\n", dry_run ? "Would delete" : "Deleted", p->n_deleted,
               p->n_deleted == 1 ? "" : "s", dry_run ? "would free" : "freed",
               format_bytes(b, sizeof(b), p->freed_bytes));
        return CTL_EXIT_OK;
}

static int verb_prune(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        Kybernate__V1__PruneRequest pr = KYBERNATE__V1__PRUNE_REQUEST__INIT;
        int x = ctl_parse_options(ctl, verb, argc, argv, &pr);
        if (x >= 0)
                return x;

        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "prune", KYBERNATE__V1__REQUEST__OP_PRUNE, &pr,
                     KYBERNATE__V1__RESPONSE__RESULT_PRUNE, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        if (ctl->json)
                return prune_print_json(resp->prune, pr.dry_run);
        return prune_print(resp->prune, pr.dry_run);
}

static const CtlOption prune_options[] = {
        {"keep", 'k', CTL_SHORT_UNLISTED, "N", "keep the newest N per container", 0},
        {"older-than", 'o', CTL_SHORT_UNLISTED, "DURATION",
         "only delete those older than this (90s, 15m, 12h, 7d, 2w, 1d12h)", 0},
        {"dry-run", 'n', true, NULL, "show what would be deleted", 0},
        {},
};

const CtlVerb ctl_verb_prune = {
        CTL_VERB("prune", verb_prune, "[OPTIONS]", "Delete old checkpoints by retention rules."),
        .intro = "Per container keep the newest N ready checkpoints and delete the others that are older\n"
                 "than a duration. Pinned checkpoints always stay. Options not given take the daemon's\n"
                 "configured defaults.\n",
        .json = "JSON object",
        .options = prune_options,
        .option = prune_opt,
};
