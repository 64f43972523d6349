/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl checkpoint: progress messages to standard error while the
 * daemon works, the new checkpoint's id to standard output. */
#include <inttypes.h>

#include "ctl-json.h"
#include "ctl.h"

typedef struct CheckpointOpts {
        Kybernate__V1__CheckpointRequest cr;
        Kybernate__V1__CheckpointOptions o;
        bool quiet;
} CheckpointOpts;

/* containerd's namespace of Kubernetes pods (CRI's), --pod's default. */
#define POD_CONTAINERD_NAMESPACE "k8s.io"

static int checkpoint_opt(int c, char *arg, void *ud) {
        CheckpointOpts *co = ud;
        switch (c) {
        case 'x':
                co->o.leave_running = false;
                return -1;
        case 't':
                co->o.has_tcp_established = co->o.tcp_established = true;
                return -1;
        case 'u':
                co->o.has_ext_unix_sk = co->o.ext_unix_sk = true;
                return -1;
        case 'l':
                co->o.has_file_locks = co->o.file_locks = true;
                return -1;
        case 's':
                co->o.has_shell_job = co->o.shell_job = true;
                return -1;
        case 'P':
                co->cr.has_pin = co->cr.pin = true;
                return -1;
        case 'X':
                co->cr.has_allow_cross_namespace = co->cr.allow_cross_namespace = true;
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

/* NAMESPACE/CONTAINER-ID, or CONTAINER-ID with --namespace. */
static int checkpoint_target(Kybernate__V1__CheckpointRequest *cr, char *target) {
        char *slash = strchr(target, '/');
        if (slash) {
                if (cr->containerd_namespace)
                        return ctl_usage_error("checkpoint", "give the namespace either with --namespace or "
                                                             "as NAMESPACE/CONTAINER-ID, not both");
                *slash = 0;
                cr->containerd_namespace = target;
                cr->container_id = slash + 1;
        } else
                cr->container_id = target;
        if (isempty(cr->containerd_namespace) || isempty(cr->container_id) || strchr(cr->container_id, '/'))
                return ctl_usage_error("checkpoint",
                                       "expected NAMESPACE/CONTAINER-ID or --namespace NS CONTAINER-ID");
        return CTL_EXIT_OK;
}

/* --pod K8S-NAMESPACE/POD or --pod SANDBOX-ID, and no container. */
static int checkpoint_pod_target(Kybernate__V1__CheckpointRequest *cr, int argc, char **argv) {
        if (optind < argc)
                return ctl_usage_error("checkpoint", "--pod checkpoints the whole pod: give no container");
        if (isempty(cr->pod) || cr->pod[0] == '/' ||
            strchr(strchr(cr->pod, '/') ? strchr(cr->pod, '/') + 1 : "", '/'))
                return ctl_usage_error("checkpoint", "expected --pod K8S-NAMESPACE/POD or --pod SANDBOX-ID");
        if (isempty(cr->containerd_namespace))
                cr->containerd_namespace = (char *)POD_CONTAINERD_NAMESPACE;
        return CTL_EXIT_OK;
}

static void print_pod_member(const char *container, const char *id) {
        _cleanup_free_ char *c = strdup_printable(container), *i = strdup_printable(id);
        fprintf(stderr, "  %s -> %s\n", c ? c : "", i ? i : "");
}

/* The members of a pod checkpoint, from its info or else the reply's list. */
static void print_pod_members(const Kybernate__V1__CheckpointResponse *ck) {
        const Kybernate__V1__CheckpointInfo *info = ck->info;
        char b[32];
        fprintf(stderr, "Pod checkpoint %s: frozen for %s, %zu containers:\n", info->id ? info->id : "",
                format_usec(b, sizeof(b), info->frozen_usec),
                info->n_members ? info->n_members : ck->n_members);
        for (size_t k = 0; k < info->n_members; k++)
                print_pod_member(info->members[k]->k8s_container, info->members[k]->id);
        if (info->n_members == 0)
                for (size_t k = 0; k < ck->n_members; k++)
                        print_pod_member(ck->members[k]->k8s_container, ck->members[k]->id);
}

/* The checkpoint's object; a pod checkpoint's also lists its members as
 * "member_checkpoints" when the reply carries them whole. */
static int checkpoint_print_json(const Kybernate__V1__CheckpointResponse *ck) {
        cJSON *o = ctl_json_checkpoint(ck->info);
        if (o && ck->info->is_pod && ck->n_members > 0) {
                cJSON *a = cJSON_AddArrayToObject(o, "member_checkpoints");
                for (size_t k = 0; a && k < ck->n_members; k++)
                        cJSON_AddItemToArray(a, ctl_json_checkpoint(ck->members[k]));
        }
        return ctl_print_json(o);
}

static int verb_checkpoint(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        CheckpointOpts co = {
                .cr = KYBERNATE__V1__CHECKPOINT_REQUEST__INIT,
                .o = KYBERNATE__V1__CHECKPOINT_OPTIONS__INIT,
        };
        /* The container keeps running unless --exit. */
        co.o.has_leave_running = true;
        co.o.leave_running = true;
        int x = ctl_parse_options(ctl, verb, argc, argv, &co);
        if (x >= 0)
                return x;
        if (co.cr.pod)
                x = checkpoint_pod_target(&co.cr, argc, argv);
        else if (argc - optind != 1)
                return ctl_usage_error("checkpoint", "%s", verb->args_error);
        else
                x = checkpoint_target(&co.cr, argv[optind]);
        if (x != CTL_EXIT_OK)
                return x;
        co.cr.options = &co.o;
        if (ctl->json)
                co.quiet = true;

        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call_full(ctl, "checkpoint", KYBERNATE__V1__REQUEST__OP_CHECKPOINT, &co.cr,
                          KYBERNATE__V1__RESPONSE__RESULT__NOT_SET, checkpoint_progress, &co, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        const Kybernate__V1__CheckpointInfo *info =
                resp->result_case == KYBERNATE__V1__RESPONSE__RESULT_CHECKPOINT ? resp->checkpoint->info
                                                                                : NULL;
        if (!info)
                return ctl_unexpected("checkpoint");
        if (ctl->json)
                return checkpoint_print_json(resp->checkpoint);
        char b[32];
        _cleanup_free_ char *id = strdup_printable(info->id), *path = strdup_printable(info->path);
        if (!co.quiet)
                fprintf(stderr, "Checkpoint %s is %s (%s, %s)\n", id ? id : "",
                        kyb_state_to_string(info->state), format_bytes(b, sizeof(b), info->size_bytes),
                        path ? path : "");
        if (!co.quiet && info->is_pod)
                print_pod_members(resp->checkpoint);
        printf("%s\n", id ? id : "");
        return CTL_EXIT_OK;
}

static const CtlOption checkpoint_options[] = {
        {"namespace", 'n', true, "NS", "containerd namespace",
         CTL_AT(CheckpointOpts, cr.containerd_namespace)},
        {"name", 'N', false, "NAME", "a unique name for the checkpoint", CTL_AT(CheckpointOpts, cr.name)},
        {"pod", 'p', false, "NS/POD", "the whole pod K8S-NAMESPACE/POD (or a SANDBOX-ID) at one instant",
         CTL_AT(CheckpointOpts, cr.pod)},
        {"exit", 'x', false, NULL, "stop the container after the checkpoint (default: it keeps running)", 0},
        {"tcp-established", 't', false, NULL, "checkpoint established TCP connections", 0},
        {"ext-unix-sk", 'u', false, NULL, "allow external unix sockets", 0},
        {"file-locks", 'l', false, NULL, "checkpoint file locks", 0},
        {"shell-job", 's', false, NULL, "the container is a shell job (has a terminal)", 0},
        {"pin", 'P', false, NULL, "pin the new checkpoint", 0},
        {"allow-cross-namespace", 'X', false, NULL, "allow restoring it into another namespace", 0},
        {"runc-root", 'r', false, "DIR", "runc state directory (default: from the namespace)",
         CTL_AT(CheckpointOpts, cr.runc_root)},
        {"image-ref", 'i', false, "REF", "record this image reference",
         CTL_AT(CheckpointOpts, cr.image_ref)},
        {"quiet", 'q', true, NULL, "no progress messages", CTL_AT(CheckpointOpts, quiet)},
        {},
};

const CtlVerb ctl_verb_checkpoint = {
        CTL_VERB("checkpoint", verb_checkpoint,
                 "[OPTIONS] NAMESPACE/CONTAINER-ID | --namespace NS CONTAINER-ID | --pod K8S-NS/POD",
                 "Checkpoint a running container, or a whole pod."),
        .intro = "Checkpoints the container CONTAINER-ID of containerd namespace NS. Progress goes to\n"
                 "standard error, the new checkpoint's id to standard output.\n"
                 "With --pod, every running container of the pod, frozen together (containerd namespace\n"
                 "k8s.io unless --namespace): the pod checkpoint's id to standard output, its members\n"
                 "(container name -> checkpoint id) and how long the pod was frozen to standard error.\n",
        .json = "JSON object of the new checkpoint",
        CTL_ARGS(-2, "expected one container: NAMESPACE/CONTAINER-ID, or --namespace NS CONTAINER-ID"),
        .options = checkpoint_options,
        .option = checkpoint_opt,
};
