/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl resolve: a reference resolved as a restore would (a dry run
 * unless --count-restore), for debugging the tenant rules. */
#include "ctl-json.h"
#include "ctl.h"

typedef struct ResolveOpts {
        Kybernate__V1__RestoreTarget t;
        bool count, quiet;
} ResolveOpts;

/* Whether a target option was given (even an empty one). */
static bool resolve_any_target(const Kybernate__V1__RestoreTarget *t) {
        return t->containerd_namespace || t->k8s_namespace || t->k8s_pod || t->k8s_container ||
               t->container_id || t->image_ref;
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
        ResolveOpts o = {.t = KYBERNATE__V1__RESTORE_TARGET__INIT};
        int x = ctl_parse_options(ctl, verb, argc, argv, &o);
        if (x >= 0)
                return x;

        Kybernate__V1__ResolveRequest rr = KYBERNATE__V1__RESOLVE_REQUEST__INIT;
        rr.reference = argv[optind];
        rr.target = resolve_any_target(&o.t) ? &o.t : NULL;
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
        {"namespace", 'n', true, "NS", "target containerd namespace",
         CTL_AT(ResolveOpts, t.containerd_namespace)},
        {"k8s-namespace", 'K', false, "NS", "target Kubernetes namespace",
         CTL_AT(ResolveOpts, t.k8s_namespace)},
        {"pod", 'p', true, "POD", "target pod", CTL_AT(ResolveOpts, t.k8s_pod)},
        {"container", 'c', true, "NAME", "target container name", CTL_AT(ResolveOpts, t.k8s_container)},
        {"container-id", 'C', false, "ID", "target container id", CTL_AT(ResolveOpts, t.container_id)},
        {"image-ref", 'i', false, "REF", "target image", CTL_AT(ResolveOpts, t.image_ref)},
        {"count-restore", 'R', false, NULL, "count this as a restore (default: a dry run)",
         CTL_AT(ResolveOpts, count)},
        {"quiet", 'q', true, NULL, "print the image path only", CTL_AT(ResolveOpts, quiet)},
        {},
};

const CtlVerb ctl_verb_resolve = {
        CTL_VERB("resolve", verb_resolve, "[OPTIONS] REF",
                 "Resolve a reference to an image path (debugging)."),
        .intro = "Resolves REF as a restore would. The target options describe the restoring container;\n"
                 "the tenant rules apply to them.\n",
        .json = "JSON object",
        CTL_ARGS(1, "expected one checkpoint reference"),
        .options = resolve_options,
};
