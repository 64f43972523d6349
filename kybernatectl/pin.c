/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl pin and unpin: one request that sets or clears the pin. */
#include "ctl.h"

static int verb_pin(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        bool pin = verb == &ctl_verb_pin;
        int x = ctl_parse_options(ctl, verb, argc, argv, NULL);
        if (x >= 0)
                return x;

        Kybernate__V1__PinRequest pr = KYBERNATE__V1__PIN_REQUEST__INIT;
        pr.reference = argv[optind];
        pr.has_pinned = true;
        pr.pinned = pin;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        const Kybernate__V1__CheckpointInfo *info;
        x = ctl_call_info(ctl, verb->name, KYBERNATE__V1__REQUEST__OP_PIN, &pr,
                          KYBERNATE__V1__RESPONSE__RESULT_PIN, &resp, &info);
        if (x != CTL_EXIT_OK)
                return x;
        return ctl_print_checkpoint_done(ctl, info, pin ? "Pinned " : "Unpinned ", argv[optind]);
}

const CtlVerb ctl_verb_pin = {
        CTL_VERB("pin", verb_pin, "REF", "Pin a checkpoint."),
        .intro = "A pinned checkpoint is kept by prune, and by delete without --force.\n",
        CTL_ARGS(1, "expected one checkpoint reference"),
};

const CtlVerb ctl_verb_unpin = {
        CTL_VERB("unpin", verb_pin, "REF", "Unpin a checkpoint."),
        .intro = "Prune may delete it again.\n",
        CTL_ARGS(1, "expected one checkpoint reference"),
};
