/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl list: the checkpoints as a table, ids or JSON, page by page. */
#include "ctl-json.h"
#include "ctl.h"

typedef struct ListState {
        Kybernate__V1__Response **pages;
        size_t n_pages, alloc_pages;
} ListState;

static void list_state_done(ListState *s) {
        for (size_t i = 0; i < s->n_pages; i++)
                kyb_response_free(s->pages[i]);
        free(s->pages);
}

static int list_page(Kybernate__V1__Response *resp, void *userdata) {
        ListState *s = userdata;
        if (resp->result_case != KYBERNATE__V1__RESPONSE__RESULT_LIST)
                return 0;
        if (GREEDY_REALLOC(s->pages, s->alloc_pages, s->n_pages + 1, 4) < 0)
                return -ENOMEM;
        s->pages[s->n_pages++] = resp;
        return 1;
}

typedef struct ListOpts {
        Kybernate__V1__ListRequest lr;
        bool quiet;
} ListOpts;

static int list_opt(int c, char *arg, void *ud) {
        ListOpts *o = ud;
        uint64_t v;
        switch (c) {
        case 's':
                o->lr.has_state = true;
                if (streq(arg, "ready"))
                        o->lr.state = KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_READY;
                else if (streq(arg, "pending"))
                        o->lr.state = KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_PENDING;
                else if (streq(arg, "failed"))
                        o->lr.state = KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_FAILED;
                else
                        return ctl_usage_error("list", "unknown state '%s' (ready, pending, failed)", arg);
                return -1;
        case 'l':
                if (parse_uint(arg, UINT32_MAX, &v) < 0)
                        return ctl_usage_error("list", "invalid --limit '%s'", arg);
                o->lr.has_limit = true;
                o->lr.limit = (uint32_t)v;
                return -1;
        }
        return CTL_EXIT_USAGE;
}

/* A pod checkpoint's row says "pod" for its container; its members follow it,
 * indented (under: true); a member whose pod is not listed names it. */
static void list_add_row(Table *t, const Kybernate__V1__CheckpointInfo *i, bool under, int64_t now_ns) {
        char id[24], created[64], size[32], age[32], k8s[512], pod[32];
        snprintf(k8s, sizeof(k8s), "%s%s%s%s%s", i->k8s_namespace ? i->k8s_namespace : "",
                 isempty(i->k8s_pod) ? "" : "/", i->k8s_pod ? i->k8s_pod : "",
                 isempty(i->k8s_container) ? "" : "/", i->k8s_container ? i->k8s_container : "");
        format_time_ns(created, sizeof(created), i->created_ns);
        if (i->created_ns > 0 && now_ns >= i->created_ns)
                format_duration(age, sizeof(age), (uint64_t)(now_ns - i->created_ns) / NSEC_PER_SEC);
        else
                age[0] = 0;
        char container[16], sid[16];
        const char *name = i->name;
        if (under)
                snprintf(id, sizeof(id), "  %s", short_id(sid, sizeof(sid), i->id));
        else
                short_id(id, sizeof(id), i->id);
        if (!under && isempty(name) && !isempty(i->pod_checkpoint_id)) {
                snprintf(pod, sizeof(pod), "(pod %s)", short_id(sid, sizeof(sid), i->pod_checkpoint_id));
                name = pod;
        }
        (void)table_add_row(
                t, (const char *const[]){
                           id,
                           name,
                           kyb_state_to_string(i->state),
                           i->containerd_namespace,
                           i->is_pod ? "pod" : short_id(container, sizeof(container), i->container_id),
                           k8s,
                           created,
                           age,
                           format_bytes(size, sizeof(size), i->size_bytes),
                           i->pinned ? "yes" : "",
                   });
}

/* One object at a time: a tree of 10,000 checkpoints costs more than the
 * whole transfer. */
static int list_print_json(const ListState *s) {
        bool first = true;
        fputs("[", stdout);
        for (size_t p = 0; p < s->n_pages; p++)
                for (size_t k = 0; k < s->pages[p]->list->n_entries; k++) {
                        cJSON *obj = ctl_json_checkpoint(s->pages[p]->list->entries[k]);
                        char *text = obj ? cJSON_Print(obj) : NULL;
                        cJSON_Delete(obj);
                        if (!text)
                                return CTL_EXIT_FAILED;
                        fputs(first ? "\n" : ",\n", stdout);
                        fputs(text, stdout);
                        cJSON_free(text);
                        first = false;
                }
        fputs(first ? "]\n" : "\n]\n", stdout);
        return fflush(stdout) == 0 ? CTL_EXIT_OK : CTL_EXIT_FAILED;
}

static const char *info_id(const Kybernate__V1__CheckpointInfo *i) {
        return i->id ? i->id : "";
}

static const char *info_pod(const Kybernate__V1__CheckpointInfo *i) {
        return i->pod_checkpoint_id ? i->pod_checkpoint_id : "";
}

static int cmp_by_id(const void *a, const void *b) {
        return strcmp(info_id(*(const Kybernate__V1__CheckpointInfo *const *)a),
                      info_id(*(const Kybernate__V1__CheckpointInfo *const *)b));
}

static int cmp_by_pod(const void *a, const void *b) {
        const Kybernate__V1__CheckpointInfo *x = *(const Kybernate__V1__CheckpointInfo *const *)a,
                                            *y = *(const Kybernate__V1__CheckpointInfo *const *)b;
        int c = strcmp(info_pod(x), info_pod(y));
        return c != 0 ? c : strcmp(info_id(x), info_id(y));
}

/* The first of v[0..n) (sorted by key()) whose key is k, or n. */
static size_t find_first(const Kybernate__V1__CheckpointInfo *const *v, size_t n, const char *k,
                         const char *(*key)(const Kybernate__V1__CheckpointInfo *)) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(key(v[mid]), k) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < n && streq(key(v[lo]), k) ? lo : n;
}

static int list_print_table(const ListState *s) {
        _cleanup_table_ Table *t = NULL;
        if (table_new(10,
                      (const char *const[]){"ID", "NAME", "STATE", "NAMESPACE", "CONTAINER", "K8S",
                                            "CREATED", "AGE", "SIZE", "PINNED"},
                      &t) < 0)
                return CTL_EXIT_FAILED;
        table_set_right(t, 7);
        table_set_right(t, 8);
        int64_t now = now_realtime_ns();
        size_t n = 0, n_pods = 0, n_members = 0;
        for (size_t p = 0; p < s->n_pages; p++)
                n += s->pages[p]->list->n_entries;
        /* The pods listed and the members listed, sorted by their pod's id. */
        _cleanup_free_ const Kybernate__V1__CheckpointInfo **pods = calloc(n + 1, sizeof(*pods));
        _cleanup_free_ const Kybernate__V1__CheckpointInfo **members = calloc(n + 1, sizeof(*members));
        if (!pods || !members)
                return CTL_EXIT_FAILED;
        for (size_t p = 0; p < s->n_pages; p++)
                for (size_t k = 0; k < s->pages[p]->list->n_entries; k++) {
                        const Kybernate__V1__CheckpointInfo *i = s->pages[p]->list->entries[k];
                        if (i->is_pod)
                                pods[n_pods++] = i;
                        else if (!isempty(i->pod_checkpoint_id))
                                members[n_members++] = i;
                }
        qsort(pods, n_pods, sizeof(*pods), cmp_by_id);
        qsort(members, n_members, sizeof(*members), cmp_by_pod);
        for (size_t p = 0; p < s->n_pages; p++)
                for (size_t k = 0; k < s->pages[p]->list->n_entries; k++) {
                        const Kybernate__V1__CheckpointInfo *i = s->pages[p]->list->entries[k];
                        if (!i->is_pod && !isempty(i->pod_checkpoint_id) &&
                            find_first(pods, n_pods, i->pod_checkpoint_id, info_id) < n_pods)
                                continue; /* shown under its pod */
                        list_add_row(t, i, false, now);
                        if (!i->is_pod)
                                continue;
                        for (size_t m = find_first(members, n_members, i->id, info_pod);
                             m < n_members && streq_ptr(members[m]->pod_checkpoint_id, i->id); m++)
                                list_add_row(t, members[m], true, now);
                }
        if (table_print(t, stdout) < 0)
                return CTL_EXIT_FAILED;
        return CTL_EXIT_OK;
}

static int verb_list(Ctl *ctl, const CtlVerb *verb, int argc, char **argv) {
        ListOpts o = {.lr = KYBERNATE__V1__LIST_REQUEST__INIT};
        int x = ctl_parse_options(ctl, verb, argc, argv, &o);
        if (x >= 0)
                return x;

        _cleanup_(list_state_done) ListState s = {};
        Kybernate__V1__Response *final = NULL;
        x = ctl_call_full(ctl, "list", KYBERNATE__V1__REQUEST__OP_LIST, &o.lr,
                          KYBERNATE__V1__RESPONSE__RESULT__NOT_SET, list_page, &s, &final);
        if (x != CTL_EXIT_OK)
                return x;
        x = list_page(final, &s);
        if (x <= 0)
                kyb_response_free(final);

        if (ctl->json)
                return list_print_json(&s);
        if (o.quiet) {
                for (size_t p = 0; p < s.n_pages; p++)
                        for (size_t k = 0; k < s.pages[p]->list->n_entries; k++)
                                ctl_print_line("", s.pages[p]->list->entries[k]->id);
                return CTL_EXIT_OK;
        }
        return list_print_table(&s);
}

static const CtlOption list_options[] = {
        {"namespace", 'n', true, "NS", "only this containerd namespace",
         CTL_AT(ListOpts, lr.containerd_namespace)},
        {"k8s-namespace", 'K', false, "NS", "only this Kubernetes namespace",
         CTL_AT(ListOpts, lr.k8s_namespace)},
        {"pod", 'p', true, "POD", "only this Kubernetes pod", CTL_AT(ListOpts, lr.k8s_pod)},
        {"container", 'c', true, "NAME", "only this Kubernetes container name",
         CTL_AT(ListOpts, lr.k8s_container)},
        {"container-id", 'C', false, "ID", "only this container id", CTL_AT(ListOpts, lr.container_id)},
        {"state", 's', false, "STATE", "ready, pending or failed", 0},
        {"limit", 'l', true, "N", "at most N rows", 0},
        {"quiet", 'q', true, NULL, "print the ids only", CTL_AT(ListOpts, quiet)},
        {},
};

const CtlVerb ctl_verb_list = {
        CTL_VERB("list", verb_list, "[OPTIONS]", "List checkpoints as a table or --json."),
        .json = "JSON array of checkpoints",
        .options = list_options,
        .option = list_opt,
};
