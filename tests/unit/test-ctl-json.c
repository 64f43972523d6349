/* SPDX-License-Identifier: Apache-2.0 */
#include "kybernatectl/ctl-json.h"
#include "test.h"

static const char *get_str(const cJSON *o, const char *k) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
        return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double get_num(const cJSON *o, const char *k) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
        ASSERT_TRUE(cJSON_IsNumber(v));
        return v->valuedouble;
}

TEST(checkpoint_json) {
        Kybernate__V1__CheckpointInfo i = KYBERNATE__V1__CHECKPOINT_INFO__INIT;
        Kybernate__V1__CheckpointOptions o = KYBERNATE__V1__CHECKPOINT_OPTIONS__INIT;
        i.id = (char *)"0123456789abcdef0123456789abcdef";
        i.name = (char *)"with \"quotes\" and \n newline";
        i.state = KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_READY;
        i.created_ns = 1700000000LL * 1000000000LL;
        i.size_bytes = 1ULL << 40;
        i.pinned = true;
        o.leave_running = true;
        o.tcp_established = true;
        i.options = &o;

        cJSON *j = ctl_json_checkpoint(&i);
        ASSERT_NOT_NULL(j);
        ASSERT_STREQ(get_str(j, "id"), "0123456789abcdef0123456789abcdef");
        ASSERT_STREQ(get_str(j, "name"), "with \"quotes\" and \n newline");
        ASSERT_STREQ(get_str(j, "state"), "ready");
        ASSERT_STREQ(get_str(j, "created"), "2023-11-14T22:13:20Z");
        ASSERT_STREQ(get_str(j, "k8s_pod"), ""); /* unset strings are "" */
        ASSERT_EQ((uint64_t)get_num(j, "size_bytes"), 1ULL << 40);
        ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "pinned")));
        const cJSON *opts = cJSON_GetObjectItemCaseSensitive(j, "options");
        ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(opts, "tcp_established")));
        ASSERT_TRUE(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(opts, "file_locks")));

        /* The printed text parses back (escaping is right). */
        char *s = cJSON_PrintUnformatted(j);
        cJSON *back = cJSON_Parse(s);
        ASSERT_NOT_NULL(back);
        ASSERT_STREQ(get_str(back, "name"), "with \"quotes\" and \n newline");
        cJSON_free(s);
        cJSON_Delete(back);
        cJSON_Delete(j);
}

TEST(pod_checkpoint_json) {
        Kybernate__V1__CheckpointInfo i = KYBERNATE__V1__CHECKPOINT_INFO__INIT;
        Kybernate__V1__PodMember a = KYBERNATE__V1__POD_MEMBER__INIT, b = KYBERNATE__V1__POD_MEMBER__INIT;
        Kybernate__V1__PodMember *ms[] = {&a, &b};
        i.id = (char *)"pod0";
        i.has_is_pod = i.is_pod = true;
        i.frozen_usec = 12345;
        a.k8s_container = (char *)"app";
        a.id = (char *)"m1";
        b.k8s_container = (char *)"side";
        b.id = (char *)"m2";
        i.n_members = 2;
        i.members = ms;
        cJSON *j = ctl_json_checkpoint(&i);
        ASSERT_NOT_NULL(j);
        ASSERT_TRUE(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "is_pod")));
        ASSERT_EQ((uint64_t)get_num(j, "frozen_usec"), 12345);
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "members");
        ASSERT_EQ(cJSON_GetArraySize(arr), 2);
        ASSERT_STREQ(get_str(cJSON_GetArrayItem(arr, 1), "k8s_container"), "side");
        ASSERT_STREQ(get_str(cJSON_GetArrayItem(arr, 1), "id"), "m2");
        ASSERT_NULL(get_str(j, "pod_checkpoint_id"));
        cJSON_Delete(j);

        /* A member names its pod; it has no members of its own. */
        Kybernate__V1__CheckpointInfo m = KYBERNATE__V1__CHECKPOINT_INFO__INIT;
        m.id = (char *)"m1";
        m.pod_checkpoint_id = (char *)"pod0";
        j = ctl_json_checkpoint(&m);
        ASSERT_STREQ(get_str(j, "pod_checkpoint_id"), "pod0");
        ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(j, "members"));
        ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(j, "is_pod"));
        cJSON_Delete(j);
}

TEST(tree_json) {
        CriuProcess procs[2] = {
                {.pid = 1, .ppid = 0, .pgid = 1, .sid = 1, .comm = (char *)"sh", .parent = SIZE_MAX},
                {.pid = 8, .ppid = 1, .pgid = 1, .sid = 1, .comm = NULL, .parent = 0, .depth = 1},
        };
        uint32_t th[] = {8, 9};
        procs[1].threads = th;
        procs[1].n_threads = 2;
        CriuTree t = {.procs = procs, .n_procs = 2};

        cJSON *a = ctl_json_tree(&t);
        ASSERT_NOT_NULL(a);
        ASSERT_EQ(cJSON_GetArraySize(a), 2);
        const cJSON *p0 = cJSON_GetArrayItem(a, 0), *p1 = cJSON_GetArrayItem(a, 1);
        ASSERT_STREQ(get_str(p0, "comm"), "sh");
        ASSERT_EQ(get_num(p1, "ppid"), 1);
        ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(p1, "comm")));
        ASSERT_EQ(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(p1, "threads")), 2);
        cJSON_Delete(a);

        CriuDumpStats st = {.freezing_time_us = 5, .pages_written = 7};
        cJSON *s = ctl_json_stats(&st);
        ASSERT_EQ(get_num(s, "freezing_time_us"), 5);
        ASSERT_EQ(get_num(s, "pages_written"), 7);
        ASSERT_NULL(cJSON_GetObjectItemCaseSensitive(s, "irmap_resolve_us"));
        cJSON_Delete(s);
}
