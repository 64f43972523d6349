/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl resolve: a reference resolved as a restore would (a dry run
 * unless --count-restore), for debugging the tenant rules. */
#include "ctl-json.h"
#include "ctl.h"

typedef struct ResolveOpts {
        Kybernate__V1__RestoreTarget *t;
        bool count, quiet, any_target;
} ResolveOpts;

static int resolve_opt(int c, char *arg, void *ud) {
        ResolveOpts *o = ud;
        switch (c) {
        case 'n':
                o->t->containerd_namespace = arg;
                break;
        case 'K':
                o->t->k8s_namespace = arg;
                break;
        case 'p':
                o->t->k8s_pod = arg;
                break;
        case 'c':
                o->t->k8s_container = arg;
                break;
        case 'C':
                o->t->container_id = arg;
                break;
        case 'i':
                o->t->image_ref = arg;
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

static int resolve_print_json(const Kybernate__V1__ResolveResponse *rs) {
        cJSON *j = cJSON_CreateObject();
        if (!j)
                return CTL_EXIT_FAILED;
        cJSON_AddStringToObject(j, "image_path", rs->image_path ? rs->image_path : "");
        cJSON_AddStringToObject(j, "checkpoint_dir", rs->checkpoint_dir ? rs->checkpoint_dir : "");
        if (rs->info)
                cJSON_AddItemToObject(j, "checkpoint", ctl_json_checkpoint(rs->info));
        return ctl_print_json(j);
}

static int verb_resolve(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        Kybernate__V1__RestoreTarget t = KYBERNATE__V1__RESTORE_TARGET__INIT;
        ResolveOpts o = {.t = &t};
        int x = ctl_parse_options(ctl, verb, argc, argv, &o);
        if (x >= 0)
                return x;
        if (argc - optind != 1)
                return ctl_usage_error("resolve", "expected one checkpoint reference");

        Kybernate__V1__ResolveRequest rr = KYBERNATE__V1__RESOLVE_REQUEST__INIT;
        rr.reference = argv[optind];
        rr.target = o.any_target ? &t : NULL;
        rr.has_dry_run = true;
        rr.dry_run = !o.count;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "resolve", KYBERNATE__V1__REQUEST__OP_RESOLVE, &rr,
                     KYBERNATE__V1__RESPONSE__RESULT_RESOLVE, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        const Kybernate__V1__ResolveResponse *rs = resp->resolve;
        if (ctl->json)
                return resolve_print_json(rs);
        if (o.quiet) {
                ctl_print_line("", rs->image_path);
                return CTL_EXIT_OK;
        }
        ctl_kv("Image path:", "%s", or_dash(rs->image_path));
        ctl_kv("Checkpoint dir:", "%s", or_dash(rs->checkpoint_dir));
        if (rs->info) {
                ctl_kv("ID:", "%s", or_dash(rs->info->id));
                ctl_kv("Name:", "%s", or_dash(rs->info->name));
        }
        return CTL_EXIT_OK;
}

static const CtlOption resolve_options[] = {
        {"namespace", required_argument, 'n', true},
        {"k8s-namespace", required_argument, 'K', false},
        {"pod", required_argument, 'p', true},
        {"container", required_argument, 'c', true},
        {"container-id", required_argument, 'C', false},
        {"image-ref", required_argument, 'i', false},
        {"count-restore", no_argument, 'R', false},
        {"quiet", no_argument, 'q', true},
        {},
};

const CtlVerb ctl_verb_resolve = {
        .name = "resolve",
        .run = verb_resolve,
        .args = "[OPTIONS] REF",
        .summary = "Resolve a reference to an image path (debugging).",
        .help = "Resolves REF as a restore would. The target options describe the restoring container;\n"
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
                "      --json                 JSON object\n",
        .options = resolve_options,
        .option = resolve_opt,
};
