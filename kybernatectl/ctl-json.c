/* SPDX-License-Identifier: Apache-2.0 */
#include "ctl-json.h"
#include "ctl-format.h"
#include "kyb-client.h"

static void add_str(cJSON *o, const char *key, const char *v) {
        cJSON_AddStringToObject(o, key, v ? v : "");
}

static void add_u64(cJSON *o, const char *key, uint64_t v) {
        /* cJSON numbers are doubles: exact up to 2^53, enough for sizes and
         * counts; nanosecond times go out as strings below. */
        cJSON_AddNumberToObject(o, key, (double)v);
}

static void add_time(cJSON *o, const char *key, int64_t ns) {
        char buf[64];
        add_str(o, key, format_time_rfc3339(buf, sizeof(buf), ns));
}

cJSON *ctl_json_checkpoint(const Kybernate__V1__CheckpointInfo *i) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        add_str(o, "id", i->id);
        add_str(o, "name", i->name);
        add_str(o, "state", kyb_state_to_string(i->state));
        add_str(o, "containerd_namespace", i->containerd_namespace);
        add_str(o, "container_id", i->container_id);
        add_str(o, "k8s_namespace", i->k8s_namespace);
        add_str(o, "k8s_pod", i->k8s_pod);
        add_str(o, "k8s_container", i->k8s_container);
        add_str(o, "image_ref", i->image_ref);
        add_str(o, "image_digest", i->image_digest);
        add_time(o, "created", i->created_ns);
        add_u64(o, "created_unix", (uint64_t)MAX(i->created_ns, 0) / NSEC_PER_SEC);
        add_u64(o, "size_bytes", i->size_bytes);
        add_str(o, "runc_version", i->runc_version);
        add_str(o, "criu_version", i->criu_version);
        add_str(o, "kernel_version", i->kernel_version);
        cJSON *opts = cJSON_AddObjectToObject(o, "options");
        if (opts) {
                const Kybernate__V1__CheckpointOptions *p = i->options;
                cJSON_AddBoolToObject(opts, "leave_running", p && p->leave_running);
                cJSON_AddBoolToObject(opts, "tcp_established", p && p->tcp_established);
                cJSON_AddBoolToObject(opts, "ext_unix_sk", p && p->ext_unix_sk);
                cJSON_AddBoolToObject(opts, "file_locks", p && p->file_locks);
                cJSON_AddBoolToObject(opts, "shell_job", p && p->shell_job);
        }
        add_str(o, "checksum", i->checksum);
        add_u64(o, "restore_count", i->restore_count);
        add_time(o, "last_restored", i->last_restored_ns);
        cJSON_AddBoolToObject(o, "pinned", i->pinned);
        cJSON_AddBoolToObject(o, "allow_cross_namespace", i->allow_cross_namespace);
        cJSON_AddBoolToObject(o, "durable", i->durable);
        add_str(o, "path", i->path);
        add_str(o, "bundle", i->bundle);
        if (!isempty(i->source_image))
                add_str(o, "source_image", i->source_image);
        if (!isempty(i->pushed_image))
                add_str(o, "pushed_image", i->pushed_image);
        if (i->push_pending)
                cJSON_AddBoolToObject(o, "push_pending", true);
        /* Whole pods: a pod checkpoint, its members; a member, its pod. */
        if (i->is_pod) {
                cJSON_AddBoolToObject(o, "is_pod", true);
                add_u64(o, "frozen_usec", i->frozen_usec);
                cJSON *ms = cJSON_AddArrayToObject(o, "members");
                for (size_t k = 0; ms && k < i->n_members; k++) {
                        cJSON *m = cJSON_CreateObject();
                        if (!m)
                                break;
                        add_str(m, "k8s_container", i->members[k]->k8s_container);
                        add_str(m, "id", i->members[k]->id);
                        cJSON_AddItemToArray(ms, m);
                }
        }
        if (!isempty(i->pod_checkpoint_id))
                add_str(o, "pod_checkpoint_id", i->pod_checkpoint_id);
        return o;
}

cJSON *ctl_json_tree(const CriuTree *t) {
        cJSON *a = cJSON_CreateArray();
        if (!a)
                return NULL;
        for (size_t i = 0; i < t->n_procs; i++) {
                const CriuProcess *p = &t->procs[i];
                cJSON *o = cJSON_CreateObject();
                if (!o)
                        break;
                add_u64(o, "pid", p->pid);
                add_u64(o, "ppid", p->ppid);
                add_u64(o, "pgid", p->pgid);
                add_u64(o, "sid", p->sid);
                if (p->comm)
                        add_str(o, "comm", p->comm);
                else
                        cJSON_AddNullToObject(o, "comm");
                cJSON *th = cJSON_AddArrayToObject(o, "threads");
                for (size_t k = 0; th && k < p->n_threads; k++)
                        cJSON_AddItemToArray(th, cJSON_CreateNumber(p->threads[k]));
                cJSON_AddItemToArray(a, o);
        }
        return a;
}

cJSON *ctl_json_stats(const CriuDumpStats *st) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        add_u64(o, "freezing_time_us", st->freezing_time_us);
        add_u64(o, "frozen_time_us", st->frozen_time_us);
        add_u64(o, "memdump_time_us", st->memdump_time_us);
        add_u64(o, "memwrite_time_us", st->memwrite_time_us);
        add_u64(o, "pages_scanned", st->pages_scanned);
        add_u64(o, "pages_skipped_parent", st->pages_skipped_parent);
        add_u64(o, "pages_written", st->pages_written);
        add_u64(o, "pages_lazy", st->pages_lazy);
        if (st->has_irmap_resolve)
                add_u64(o, "irmap_resolve_us", st->irmap_resolve_us);
        return o;
}

int ctl_json_print(cJSON *j) {
        if (!j)
                return -ENOMEM;
        char *s = cJSON_Print(j);
        cJSON_Delete(j);
        if (!s)
                return -ENOMEM;
        puts(s);
        cJSON_free(s);
        return fflush(stdout) == 0 ? 0 : -EIO;
}
