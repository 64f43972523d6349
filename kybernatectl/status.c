/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl status: the daemon's version, store usage and counts. */
#include <inttypes.h>

#include "ctl-json.h"
#include "ctl.h"

static int status_print_json(const Ctl *ctl, const Kybernate__V1__StatusResponse *s) {
        char b[64];
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
        cJSON_AddStringToObject(j, "started", format_time_rfc3339(b, sizeof(b), s->started_ns));
        cJSON_AddStringToObject(j, "runc_path", s->runc_path ? s->runc_path : "");
        cJSON_AddStringToObject(j, "criu_path", s->criu_path ? s->criu_path : "");
        return ctl_print_json(j);
}

static void status_print(const Ctl *ctl, const Kybernate__V1__StatusResponse *s) {
        char b1[64], b2[64], b3[64];
        ctl_kv("Daemon:", "kybernated %s (protocol %" PRIu32 ", schema %" PRIu32 ")", or_dash(s->version),
               s->protocol_version, s->schema_version);
        ctl_kv("Client:", "kybernatectl %s", KYB_VERSION);
        ctl_kv("Socket:", "%s", ctl_socket(ctl));
        int64_t now = now_realtime_ns();
        if (s->started_ns > 0 && now >= s->started_ns)
                ctl_kv("Started:", "%s (up %s)", format_time_ns(b1, sizeof(b1), s->started_ns),
                       format_duration(b2, sizeof(b2), (uint64_t)(now - s->started_ns) / NSEC_PER_SEC));
        ctl_kv("Store:", "%s", or_dash(s->store_path));
        ctl_kv("Store usage:", "%s in checkpoints; filesystem %s free of %s",
               format_bytes(b1, sizeof(b1), s->store_bytes), format_bytes(b2, sizeof(b2), s->fs_free_bytes),
               format_bytes(b3, sizeof(b3), s->fs_total_bytes));
        ctl_kv("Checkpoints:",
               "%" PRIu64 " ready, %" PRIu64 " pending, %" PRIu64 " failed, %" PRIu64 " pinned",
               s->count_ready, s->count_pending, s->count_failed, s->count_pinned);
        ctl_kv("Durable:", "%s",
               s->durable ? "yes (images and catalog synced before ready)" : "NO (sync disabled)");
        ctl_kv("runc:", "%s", or_dash(s->runc_path));
        ctl_kv("CRIU:", "%s", or_dash(s->criu_path));
}

static int verb_status(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        int x = ctl_parse_options(ctl, verb, argc, argv, NULL);
        if (x >= 0)
                return x;

        Kybernate__V1__StatusRequest sr = KYBERNATE__V1__STATUS_REQUEST__INIT;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;
        x = ctl_call(ctl, "status", KYBERNATE__V1__REQUEST__OP_STATUS, &sr,
                     KYBERNATE__V1__RESPONSE__RESULT_STATUS, &resp);
        if (x != CTL_EXIT_OK)
                return x;
        if (ctl->json)
                return status_print_json(ctl, resp->status);
        status_print(ctl, resp->status);
        return CTL_EXIT_OK;
}

const CtlVerb ctl_verb_status = {
        CTL_VERB("status", verb_status, "", "Show the daemon's version, store usage and counts."),
        .json = "JSON object",
};
