/* SPDX-License-Identifier: Apache-2.0 */
/* Protocol round trips: requests into a real Manager over a socketpair, and
 * the client library (blocking and sd-event) against a listening Manager. */
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "kyb-client.h"
#include "kybernated/manager.h"
#include "kybernated/server.h"
#include "kybernated/store.h"
#include "mount-util.h"
#include "test.h"

typedef struct Fixture {
        const char *dir;
        Config config;
        sd_event *event;
        Manager *manager;
        Server *server;
        Connection *conn;
        int fd; /* the client's end */
} Fixture;

static void fixture_setup(Fixture *f, uid_t uid, bool reader) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        f->event = test_event();
        f->dir = test_tmpdir();
        ASSERT_OK(config_init(&f->config));
        char p[128];
        snprintf(p, sizeof(p), "%s/store", f->dir);
        ASSERT_OK(config_set(&f->config, "store", p));
        snprintf(p, sizeof(p), "%s/sock", f->dir);
        ASSERT_OK(config_set(&f->config, "socket", p));
        ASSERT_OK(config_set(&f->config, "durable", "no"));
        ASSERT_OK(manager_new(f->event, &f->config, &f->manager));
        ASSERT_OK(manager_open_store(f->manager));
        ASSERT_OK(server_new(f->manager, &f->server));

        int sv[2];
        ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0 ? -errno
                                                                                                : 0);
        struct ucred cred = {.pid = getpid(), .uid = uid, .gid = uid};
        ASSERT_OK(server_add_connection(f->server, sv[0], &cred, reader, &f->conn));
        f->fd = sv[1];
        ASSERT_OK(fd_nonblock(f->fd, false));
}

static void pump(Fixture *f) {
        while (sd_event_run(f->event, 0) > 0)
                ;
}

static void send_raw(Fixture *f, const void *buf, size_t len) {
        ASSERT_EQ(send(f->fd, buf, len, 0), (ssize_t)len);
}

static void send_req(Fixture *f, Kybernate__V1__Request *req) {
        req->has_version = true;
        req->version = KYB_PROTOCOL_VERSION;
        req->has_id = true;
        req->id = 4242;
        ASSERT_OK(kyb_send_message(f->fd, &req->base));
}

/* Next response, running the loop until one arrives (at most ~10 s). */
static Kybernate__V1__Response *recv_resp(Fixture *f) {
        for (int i = 0; i < 1000; i++) {
                pump(f);
                struct pollfd p = {.fd = f->fd, .events = POLLIN};
                if (poll(&p, 1, 0) == 1)
                        break;
                (void)sd_event_run(f->event, 10 * USEC_PER_MSEC);
        }
        uint8_t *buf = NULL;
        size_t len = 0;
        ASSERT_EQ(kyb_recv_datagram(f->fd, &buf, &len), 1);
        Kybernate__V1__Response *r = kybernate__v1__response__unpack(NULL, len, buf);
        free(buf);
        ASSERT_NOT_NULL(r);
        return r;
}

static void insert(Fixture *f, const char *id, const char *name, const char *pod, int64_t created) {
        CatalogEntry e = {.id = (char *)id,
                          .name = (char *)name,
                          .state = CHECKPOINT_READY,
                          .containerd_namespace = (char *)"k8s.io",
                          .k8s_namespace = (char *)"team",
                          .k8s_pod = (char *)pod,
                          .k8s_container = (char *)"app",
                          .container_id = (char *)"cid",
                          .created_ns = created,
                          .size_bytes = 10};
        ASSERT_OK(catalog_insert(f->manager->catalog, &e));
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/store/checkpoints/%s", f->dir, id);
        ASSERT_OK(mkdir_p(dir, 0700));
}

/* A ready pod checkpoint pod_id of team/pod with members <pod_id minus
 * its last digit><1..n> named by ctrs, each with a directory. */
static void insert_pod(Fixture *f, const char *pod_id, const char *name, const char *pod, int64_t created,
                       const char *const *ctrs, size_t n) {
        CatalogEntry e = {.id = (char *)pod_id,
                          .name = (char *)name,
                          .state = CHECKPOINT_READY,
                          .containerd_namespace = (char *)"k8s.io",
                          .k8s_namespace = (char *)"team",
                          .k8s_pod = (char *)pod,
                          .container_id = (char *)"sandbox",
                          .is_pod = true,
                          .created_ns = created,
                          .size_bytes = 10 * n};
        ASSERT_OK(catalog_insert(f->manager->catalog, &e));
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/store/checkpoints/%s", f->dir, pod_id);
        ASSERT_OK(mkdir_p(dir, 0700));
        for (size_t i = 0; i < n; i++) {
                char id[64];
                snprintf(id, sizeof(id), "%.31s%zu", pod_id, i + 1);
                CatalogEntry m = e;
                m.id = id;
                m.name = NULL;
                m.is_pod = false;
                m.pod_id = (char *)pod_id;
                m.k8s_container = (char *)ctrs[i];
                m.container_id = (char *)ctrs[i];
                m.options = CKPT_OPT_TCP_ESTABLISHED;
                m.size_bytes = 10;
                ASSERT_OK(catalog_insert(f->manager->catalog, &m));
                snprintf(dir, sizeof(dir), "%s/store/checkpoints/%s", f->dir, id);
                ASSERT_OK(mkdir_p(dir, 0700));
        }
}

static bool checkpoint_dir_exists(Fixture *f, const char *id) {
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/store/checkpoints/%s", f->dir, id);
        return access(dir, F_OK) >= 0;
}

static void fixture_done(Fixture *f) {
        server_free(f->server);
        manager_free(f->manager);
        config_done(&f->config);
        safe_close(f->fd);
        ASSERT_OK(remove_tree_one_fs(f->dir));
}

TEST(status_round_trip) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__StatusRequest st = KYBERNATE__V1__STATUS_REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_STATUS;
        req.status = &st;
        send_req(&f, &req);
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *r = recv_resp(&f);
        ASSERT_EQ(r->version, KYB_PROTOCOL_VERSION);
        ASSERT_EQ(r->id, 4242);
        ASSERT_EQ(r->error, 0);
        ASSERT_FALSE(r->more);
        ASSERT_EQ(r->result_case, KYBERNATE__V1__RESPONSE__RESULT_STATUS);
        ASSERT_EQ(r->status->protocol_version, 1);
        ASSERT_EQ(r->status->schema_version, CATALOG_SCHEMA_VERSION);
        ASSERT_FALSE(r->status->durable);
        fixture_done(&f);
}

TEST(bad_datagrams_get_errors_and_connection_lives) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
        send_raw(&f, garbage, sizeof(garbage));
        Kybernate__V1__Response *r = recv_resp(&f);
        ASSERT_EQ(r->error, EBADMSG);
        ASSERT_NOT_NULL(r->message);
        kyb_response_free(r);

        static const uint8_t v2[] = {0x08, 0x02, 0x8a, 0x01, 0x00}; /* version 2, status */
        send_raw(&f, v2, sizeof(v2));
        r = recv_resp(&f);
        ASSERT_EQ(r->error, EPROTONOSUPPORT);
        ASSERT_TRUE(strstr(r->message, "version 2") != NULL);
        kyb_response_free(r);

        /* An empty datagram is an empty (version-less) request, not EOF. */
        send_raw(&f, "", 0);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, EPROTONOSUPPORT);
        kyb_response_free(r);

        static const uint8_t noop[] = {0x08, 0x01};
        send_raw(&f, noop, sizeof(noop));
        r = recv_resp(&f);
        ASSERT_EQ(r->error, EOPNOTSUPP);
        kyb_response_free(r);

        size_t big = KYB_MSG_MAX + 100;
        _cleanup_free_ uint8_t *b = calloc(1, big);
        send_raw(&f, b, big);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, EMSGSIZE);
        kyb_response_free(r);

        /* Still serving. */
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__StatusRequest st = KYBERNATE__V1__STATUS_REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_STATUS;
        req.status = &st;
        send_req(&f, &req);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, 0);
        kyb_response_free(r);
        fixture_done(&f);
}

static Kybernate__V1__Response *call_list(Fixture *f, Kybernate__V1__ListRequest *l, size_t *ret_entries,
                                          unsigned *ret_pages) {
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_LIST;
        req.list = l;
        send_req(f, &req);
        size_t n = 0;
        unsigned pages = 0;
        for (;;) {
                Kybernate__V1__Response *r = recv_resp(f);
                if (r->error != 0) {
                        *ret_entries = n;
                        *ret_pages = pages;
                        return r;
                }
                ASSERT_EQ(r->result_case, KYBERNATE__V1__RESPONSE__RESULT_LIST);
                n += r->list->n_entries;
                pages++;
                if (!r->more) {
                        *ret_entries = n;
                        *ret_pages = pages;
                        return r;
                }
                kyb_response_free(r);
        }
}

TEST(list_pages_many_rows) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        ASSERT_OK(catalog_begin(f.manager->catalog));
        for (int i = 0; i < 3000; i++) {
                char id[33], pod[16];
                snprintf(id, sizeof(id), "%032x", i);
                snprintf(pod, sizeof(pod), "pod%d", i % 3);
                CatalogEntry e = {.id = id,
                                  .state = CHECKPOINT_READY,
                                  .k8s_namespace = (char *)"team",
                                  .k8s_pod = pod,
                                  .created_ns = i};
                ASSERT_OK(catalog_insert(f.manager->catalog, &e));
        }
        ASSERT_OK(catalog_commit(f.manager->catalog));

        Kybernate__V1__ListRequest l = KYBERNATE__V1__LIST_REQUEST__INIT;
        size_t n;
        unsigned pages;
        Kybernate__V1__Response *r = call_list(&f, &l, &n, &pages);
        ASSERT_EQ(r->error, 0);
        ASSERT_EQ(n, 3000);
        ASSERT_EQ(r->list->total, 3000);
        ASSERT_TRUE(pages > 1); /* several datagrams, each within KYB_MSG_MAX */
        kyb_response_free(r);

        l.k8s_pod = (char *)"pod1";
        r = call_list(&f, &l, &n, &pages);
        ASSERT_EQ(n, 1000);
        kyb_response_free(r);

        l.k8s_pod = NULL;
        l.has_limit = true;
        l.limit = 5;
        r = call_list(&f, &l, &n, &pages);
        ASSERT_EQ(n, 5);
        ASSERT_EQ(pages, 1);
        kyb_response_free(r);
        fixture_done(&f);
}

static Kybernate__V1__Response *call_ref(Fixture *f, int op, const char *ref, bool flag) {
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__InspectRequest ins = KYBERNATE__V1__INSPECT_REQUEST__INIT;
        Kybernate__V1__DeleteRequest del = KYBERNATE__V1__DELETE_REQUEST__INIT;
        Kybernate__V1__PinRequest pin = KYBERNATE__V1__PIN_REQUEST__INIT;
        req.op_case = (Kybernate__V1__Request__OpCase)op;
        switch (op) {
        case KYBERNATE__V1__REQUEST__OP_INSPECT:
                ins.reference = (char *)ref;
                req.inspect = &ins;
                break;
        case KYBERNATE__V1__REQUEST__OP_DELETE:
                del.reference = (char *)ref;
                del.has_force = true;
                del.force = flag;
                req.delete_ = &del;
                break;
        case KYBERNATE__V1__REQUEST__OP_PIN:
                pin.reference = (char *)ref;
                pin.has_pinned = true;
                pin.pinned = flag;
                req.pin = &pin;
                break;
        }
        send_req(f, &req);
        return recv_resp(f);
}

TEST(inspect_pin_delete) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        insert(&f, "abcdef00000000000000000000000001", "keeper", "p", 100);
        insert(&f, "abcdef00000000000000000000000002", NULL, "p", 200);

        Kybernate__V1__Response *r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_INSPECT, "keeper", false);
        ASSERT_EQ(r->error, 0);
        ASSERT_STREQ(r->inspect->info->id, "abcdef00000000000000000000000001");
        ASSERT_STREQ(r->inspect->info->k8s_pod, "p");
        ASSERT_TRUE(strstr(r->inspect->info->path, "/store/checkpoints/abcdef0") != NULL);
        kyb_response_free(r);

        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_INSPECT, "abcdef", false);
        ASSERT_EQ(r->error, ENOTUNIQ);
        ASSERT_TRUE(strstr(r->message, "ambiguous") != NULL);
        kyb_response_free(r);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_INSPECT, "team/p/app", false);
        ASSERT_EQ(r->error, 0);
        ASSERT_STREQ(r->inspect->info->id, "abcdef00000000000000000000000002"); /* the newest */
        kyb_response_free(r);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_INSPECT, "../etc", false);
        ASSERT_EQ(r->error, EINVAL);
        kyb_response_free(r);

        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_PIN, "keeper", true);
        ASSERT_EQ(r->error, 0);
        ASSERT_TRUE(r->pin->info->pinned);
        kyb_response_free(r);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_DELETE, "keeper", false);
        ASSERT_EQ(r->error, EPERM);
        kyb_response_free(r);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_DELETE, "keeper", true);
        ASSERT_EQ(r->error, 0);
        kyb_response_free(r);
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/store/checkpoints/abcdef00000000000000000000000001", f.dir);
        ASSERT_TRUE(access(dir, F_OK) < 0);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_INSPECT, "keeper", false);
        ASSERT_EQ(r->error, ENOENT);
        kyb_response_free(r);
        fixture_done(&f);
}

TEST(pod_inspect_pin_delete) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        static const char *const ctrs[] = {"app", "side"};
        insert_pod(&f, "ee000000000000000000000000000010", "podck", "web", 100, ctrs, 2);

        /* Inspect of a pod checkpoint lists its members; a member names its pod. */
        Kybernate__V1__Response *r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_INSPECT, "team/web", false);
        ASSERT_EQ(r->error, 0);
        ASSERT_STREQ(r->inspect->info->id, "ee000000000000000000000000000010");
        ASSERT_TRUE(r->inspect->info->is_pod);
        ASSERT_EQ(r->inspect->info->n_members, 2);
        bool app = false, side = false;
        for (size_t i = 0; i < r->inspect->info->n_members; i++) {
                const Kybernate__V1__PodMember *mb = r->inspect->info->members[i];
                if (streq(mb->k8s_container, "app"))
                        app = streq(mb->id, "ee000000000000000000000000000011");
                if (streq(mb->k8s_container, "side"))
                        side = streq(mb->id, "ee000000000000000000000000000012");
        }
        ASSERT_TRUE(app && side);
        kyb_response_free(r);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_INSPECT, "ee000000000000000000000000000012", false);
        ASSERT_EQ(r->error, 0);
        ASSERT_STREQ(r->inspect->info->pod_checkpoint_id, "ee000000000000000000000000000010");
        ASSERT_EQ(r->inspect->info->n_members, 0);
        kyb_response_free(r);

        /* A member is neither pinned nor deleted on its own. */
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_DELETE, "ee000000000000000000000000000011", true);
        ASSERT_EQ(r->error, EPERM);
        ASSERT_NOT_NULL(strstr(r->message, "member of pod checkpoint ee000000000000000000000000000010"));
        kyb_response_free(r);
        ASSERT_TRUE(checkpoint_dir_exists(&f, "ee000000000000000000000000000011"));
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_PIN, "ee000000000000000000000000000011", true);
        ASSERT_EQ(r->error, EPERM);
        ASSERT_NOT_NULL(strstr(r->message, "ee000000000000000000000000000010"));
        kyb_response_free(r);

        /* The pod is pinned as one; deleting it takes its members. */
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_PIN, "podck", true);
        ASSERT_EQ(r->error, 0);
        ASSERT_TRUE(r->pin->info->pinned);
        ASSERT_EQ(r->pin->info->n_members, 2);
        kyb_response_free(r);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_DELETE, "podck", false);
        ASSERT_EQ(r->error, EPERM);
        kyb_response_free(r);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_DELETE, "podck", true);
        ASSERT_EQ(r->error, 0);
        kyb_response_free(r);
        uint64_t n;
        ASSERT_OK(catalog_count(f.manager->catalog, NULL, &n));
        ASSERT_EQ(n, 0);
        ASSERT_FALSE(checkpoint_dir_exists(&f, "ee000000000000000000000000000010"));
        ASSERT_FALSE(checkpoint_dir_exists(&f, "ee000000000000000000000000000011"));
        ASSERT_FALSE(checkpoint_dir_exists(&f, "ee000000000000000000000000000012"));

        /* A member whose pod row is gone may go on its own. */
        insert_pod(&f, "ff000000000000000000000000000010", NULL, "web", 100, ctrs, 1);
        ASSERT_OK(catalog_delete(f.manager->catalog, "ff000000000000000000000000000010"));
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_DELETE, "ff000000000000000000000000000011", false);
        ASSERT_EQ(r->error, 0);
        kyb_response_free(r);
        fixture_done(&f);
}

TEST(prune_decides_on_pods) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        int64_t now = now_realtime_ns();
        int64_t hour = 3600 * (int64_t)NSEC_PER_SEC;
        static const char *const ctrs[] = {"app", "side", "db"};
        /* Three pod checkpoints of team/web (members app, side, db: three
         * rows each in the group "team/web/app" if members counted), the
         * oldest pinned, and two single checkpoints of team/web/app. */
        insert_pod(&f, "a1000000000000000000000000000010", NULL, "web", now - 10 * hour, ctrs, 3);
        insert_pod(&f, "a2000000000000000000000000000010", NULL, "web", now - 9 * hour, ctrs, 3);
        insert_pod(&f, "a3000000000000000000000000000010", NULL, "web", now - 8 * hour, ctrs, 3);
        ASSERT_OK(catalog_set_pinned(f.manager->catalog, "a1000000000000000000000000000010", true));
        insert(&f, "b1000000000000000000000000000001", NULL, "web", now - 7 * hour);
        insert(&f, "b2000000000000000000000000000001", NULL, "web", now - 6 * hour);

        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__PruneRequest pr = KYBERNATE__V1__PRUNE_REQUEST__INIT;
        pr.has_keep_per_container = true;
        pr.keep_per_container = 1;
        pr.has_max_age_sec = true;
        pr.max_age_sec = 0;
        req.op_case = KYBERNATE__V1__REQUEST__OP_PRUNE;
        req.prune = &pr;
        send_req(&f, &req);
        Kybernate__V1__Response *r = recv_resp(&f);
        ASSERT_EQ(r->error, 0);
        /* The pod group keeps its newest (a3) and its pinned one (a1): a2
         * goes with its members; the container group keeps b2. */
        ASSERT_EQ(r->prune->n_deleted, 2);
        kyb_response_free(r);
        uint64_t n;
        ASSERT_OK(catalog_count(f.manager->catalog, NULL, &n));
        ASSERT_EQ(n, 4 + 4 + 1);
        ASSERT_FALSE(checkpoint_dir_exists(&f, "a2000000000000000000000000000010"));
        ASSERT_FALSE(checkpoint_dir_exists(&f, "a2000000000000000000000000000011"));
        ASSERT_FALSE(checkpoint_dir_exists(&f, "a2000000000000000000000000000013"));
        ASSERT_FALSE(checkpoint_dir_exists(&f, "b1000000000000000000000000000001"));
        ASSERT_TRUE(checkpoint_dir_exists(&f, "a1000000000000000000000000000011"));
        ASSERT_TRUE(checkpoint_dir_exists(&f, "a3000000000000000000000000000013"));
        ASSERT_TRUE(checkpoint_dir_exists(&f, "b2000000000000000000000000000001"));
        fixture_done(&f);
}

TEST(prune_round_trip) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        int64_t now = now_realtime_ns();
        for (int i = 0; i < 5; i++) {
                char id[33];
                snprintf(id, sizeof(id), "%032x", i);
                insert(&f, id, NULL, "p", now - (int64_t)(10 - i) * 3600 * (int64_t)NSEC_PER_SEC);
        }
        ASSERT_OK(catalog_set_pinned(f.manager->catalog, "00000000000000000000000000000000", true));

        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__PruneRequest pr = KYBERNATE__V1__PRUNE_REQUEST__INIT;
        pr.has_keep_per_container = true;
        pr.keep_per_container = 2;
        pr.has_max_age_sec = true;
        pr.max_age_sec = 0;
        pr.has_dry_run = true;
        pr.dry_run = true;
        req.op_case = KYBERNATE__V1__REQUEST__OP_PRUNE;
        req.prune = &pr;
        send_req(&f, &req);
        Kybernate__V1__Response *r = recv_resp(&f);
        ASSERT_EQ(r->error, 0);
        ASSERT_EQ(r->prune->n_deleted, 2); /* 5 rows, keep 2, the oldest is pinned */
        ASSERT_EQ(r->prune->freed_bytes, 20);
        kyb_response_free(r);
        uint64_t n;
        ASSERT_OK(catalog_count(f.manager->catalog, NULL, &n));
        ASSERT_EQ(n, 5); /* dry run */

        pr.dry_run = false;
        send_req(&f, &req);
        r = recv_resp(&f);
        ASSERT_EQ(r->prune->n_deleted, 2);
        kyb_response_free(r);
        ASSERT_OK(catalog_count(f.manager->catalog, NULL, &n));
        ASSERT_EQ(n, 3);

        pr.keep_per_container = 0;
        send_req(&f, &req);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, EINVAL); /* would delete everything */
        kyb_response_free(r);
        fixture_done(&f);
}

TEST(peer_credentials) {
        Fixture f = {};
        fixture_setup(&f, 1000, false);
        insert(&f, "abcdef00000000000000000000000001", "x", "p", 1);
        Kybernate__V1__ListRequest l = KYBERNATE__V1__LIST_REQUEST__INIT;
        size_t n;
        unsigned pages;
        Kybernate__V1__Response *r = call_list(&f, &l, &n, &pages);
        ASSERT_EQ(r->error, EPERM);
        ASSERT_TRUE(strstr(r->message, "uid 1000") != NULL);
        kyb_response_free(r);

        /* A member of read_group may read but not change anything. */
        f.conn->reader = true;
        r = call_list(&f, &l, &n, &pages);
        ASSERT_EQ(r->error, 0);
        ASSERT_EQ(n, 1);
        kyb_response_free(r);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_DELETE, "x", true);
        ASSERT_EQ(r->error, EPERM);
        kyb_response_free(r);
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_PIN, "x", true);
        ASSERT_EQ(r->error, EPERM);
        kyb_response_free(r);
        fixture_done(&f);
}

TEST(resolve_verifies_checksum) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        insert(&f, "abcdef00000000000000000000000001", "x", "p", 1);
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/store/checkpoints/abcdef00000000000000000000000001/checkpoint",
                 f.dir);
        ASSERT_OK(mkdir_p(dir, 0700));
        strcat(dir, "/inventory.img");
        ASSERT_OK(write_file_atomic(dir, "INV", 3, 0600));
        uint64_t size;
        char sum[STORE_CHECKSUM_MAX];
        char top[256];
        snprintf(top, sizeof(top), "%s/store/checkpoints/abcdef00000000000000000000000001", f.dir);
        ASSERT_OK(store_checksum(top, NULL, false, &size, sum));
        ASSERT_OK(catalog_set_ready(f.manager->catalog, "abcdef00000000000000000000000001", size, sum));

        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__ResolveRequest res = KYBERNATE__V1__RESOLVE_REQUEST__INIT;
        Kybernate__V1__RestoreTarget t = KYBERNATE__V1__RESTORE_TARGET__INIT;
        t.containerd_namespace = (char *)"k8s.io";
        t.k8s_namespace = (char *)"team";
        res.reference = (char *)"x";
        res.target = &t;
        req.op_case = KYBERNATE__V1__REQUEST__OP_RESOLVE;
        req.resolve = &res;
        send_req(&f, &req);
        Kybernate__V1__Response *r = recv_resp(&f);
        ASSERT_EQ(r->error, 0);
        ASSERT_TRUE(strstr(r->resolve->image_path, "abcdef00000000000000000000000001/checkpoint") != NULL);
        ASSERT_EQ(r->resolve->info->restore_count, 1);
        kyb_response_free(r);

        /* A second request while the first one runs: EBUSY, the first goes on. */
        Kybernate__V1__Request st = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__StatusRequest sr = KYBERNATE__V1__STATUS_REQUEST__INIT;
        st.op_case = KYBERNATE__V1__REQUEST__OP_STATUS;
        st.status = &sr;
        send_req(&f, &req);
        send_req(&f, &st);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, EBUSY);
        kyb_response_free(r);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, 0);
        ASSERT_EQ(r->result_case, KYBERNATE__V1__RESPONSE__RESULT_RESOLVE);
        ASSERT_EQ(r->resolve->info->restore_count, 2);
        kyb_response_free(r);

        /* Another tenant's checkpoint looks missing (see resolve_other_tenant_looks_missing). */
        t.k8s_namespace = (char *)"other-team";
        send_req(&f, &req);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, ENOENT);
        ASSERT_STREQ(r->message, "no checkpoint with id, id prefix or name 'x'");
        kyb_response_free(r);

        t.k8s_namespace = (char *)"team";
        ASSERT_OK(write_file_atomic(dir, "CHANGED", 7, 0600));
        send_req(&f, &req);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, EUCLEAN);
        kyb_response_free(r);

        res.target = NULL;
        send_req(&f, &req);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, EINVAL);
        kyb_response_free(r);
        fixture_done(&f);
}

TEST(resolve_pod_checkpoint_gives_the_member) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        static const char *const ctrs[] = {"app", "side"};
        insert_pod(&f, "ee000000000000000000000000000010", "podck", "web", 100, ctrs, 2);
        char dir[512], top[256];
        snprintf(top, sizeof(top), "%s/store/checkpoints/ee000000000000000000000000000012", f.dir);
        snprintf(dir, sizeof(dir), "%s/checkpoint", top);
        ASSERT_OK(mkdir_p(dir, 0700));
        strcat(dir, "/inventory.img");
        ASSERT_OK(write_file_atomic(dir, "INV", 3, 0600));
        uint64_t size;
        char sum[STORE_CHECKSUM_MAX];
        ASSERT_OK(store_checksum(top, NULL, false, &size, sum));
        ASSERT_OK(catalog_set_ready(f.manager->catalog, "ee000000000000000000000000000012", size, sum));

        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__ResolveRequest res = KYBERNATE__V1__RESOLVE_REQUEST__INIT;
        Kybernate__V1__RestoreTarget t = KYBERNATE__V1__RESTORE_TARGET__INIT;
        t.containerd_namespace = (char *)"k8s.io";
        t.k8s_namespace = (char *)"team";
        t.k8s_pod = (char *)"web-restored";
        t.k8s_container = (char *)"side";
        res.reference = (char *)"team/web";
        res.target = &t;
        req.op_case = KYBERNATE__V1__REQUEST__OP_RESOLVE;
        req.resolve = &res;
        send_req(&f, &req);
        Kybernate__V1__Response *r = recv_resp(&f);
        ASSERT_EQ(r->error, 0);
        ASSERT_TRUE(strstr(r->resolve->image_path, "ee000000000000000000000000000012/checkpoint") != NULL);
        ASSERT_TRUE(strstr(r->resolve->checkpoint_dir, "ee000000000000000000000000000012") != NULL);
        ASSERT_STREQ(r->resolve->info->id, "ee000000000000000000000000000012");
        ASSERT_STREQ(r->resolve->info->pod_checkpoint_id, "ee000000000000000000000000000010");
        ASSERT_TRUE(r->resolve->info->options->tcp_established);
        ASSERT_EQ(r->resolve->info->restore_count, 1);
        kyb_response_free(r);
        CatalogEntry e = {};
        ASSERT_OK(catalog_get(f.manager->catalog, "ee000000000000000000000000000010", &e));
        ASSERT_EQ(e.restore_count, 1); /* counted on the pod too */
        catalog_entry_done(&e);
        ASSERT_OK(catalog_get(f.manager->catalog, "ee000000000000000000000000000011", &e));
        ASSERT_EQ(e.restore_count, 0);
        catalog_entry_done(&e);

        /* A container the pod checkpoint does not have. */
        t.k8s_container = (char *)"db";
        send_req(&f, &req);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, ENOENT);
        ASSERT_NOT_NULL(
                strstr(r->message, "pod checkpoint ee000000000000000000000000000010 has no container db"));
        ASSERT_NOT_NULL(strstr(r->message, "app"));
        ASSERT_NOT_NULL(strstr(r->message, "side"));
        kyb_response_free(r);

        /* Another tenant does not see it at all. */
        t.k8s_container = (char *)"side";
        t.k8s_namespace = (char *)"other-team";
        send_req(&f, &req);
        r = recv_resp(&f);
        ASSERT_EQ(r->error, ENOENT);
        ASSERT_NULL(strstr(r->message, "ee0000"));
        kyb_response_free(r);
        fixture_done(&f);
}

static Kybernate__V1__Response *call_resolve(Fixture *f, const char *ref, const char *k8s_ns,
                                             const char *image) {
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__ResolveRequest res = KYBERNATE__V1__RESOLVE_REQUEST__INIT;
        Kybernate__V1__RestoreTarget t = KYBERNATE__V1__RESTORE_TARGET__INIT;
        t.containerd_namespace = (char *)"k8s.io";
        t.k8s_namespace = (char *)k8s_ns;
        t.image_ref = (char *)image;
        res.reference = (char *)ref;
        res.has_dry_run = res.dry_run = true;
        res.target = &t;
        req.op_case = KYBERNATE__V1__REQUEST__OP_RESOLVE;
        req.resolve = &res;
        send_req(f, &req);
        return recv_resp(f);
}

/* The refusal a reference gets from a tenant that sees no checkpoint at all. */
static void assert_looks_missing(Fixture *f, const char *ref, const char *k8s_ns, const char *hidden_id) {
        Kybernate__V1__Response *r = call_resolve(f, ref, k8s_ns, NULL);
        Kybernate__V1__Response *none = call_resolve(f, ref, "nobody-sees-anything", NULL);
        ASSERT_EQ(none->error, ENOENT);
        ASSERT_EQ(r->error, none->error);
        ASSERT_STREQ(r->message, none->message);
        /* Nothing of the hidden row but what the caller wrote itself. */
        if (!strstr(ref, hidden_id))
                ASSERT_NULL(strstr(r->message, hidden_id));
        if (!strstr(ref, "hidden-name"))
                ASSERT_NULL(strstr(r->message, "hidden-name"));
        kyb_response_free(r);
        kyb_response_free(none);
}

TEST(resolve_other_tenant_looks_missing) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        const char *theirs = "abcdef00000000000000000000000001";
        insert(&f, theirs, "hidden-name", "p", 100); /* tenant "team" */
        CatalogEntry mine = {.id = (char *)"abcdef00000000000000000000000002",
                             .name = (char *)"mine",
                             .state = CHECKPOINT_READY,
                             .containerd_namespace = (char *)"k8s.io",
                             .k8s_namespace = (char *)"other-team",
                             .k8s_pod = (char *)"q",
                             .k8s_container = (char *)"app",
                             .created_ns = 50,
                             .size_bytes = 10};
        ASSERT_OK(catalog_insert(f.manager->catalog, &mine));

        /* By id, short id, name and namespace/pod/container: as if missing. */
        assert_looks_missing(&f, theirs, "other-team", theirs);
        assert_looks_missing(&f, "abcdef000000000000000000000000", "third-team", theirs);
        assert_looks_missing(&f, "hidden-name", "other-team", theirs);
        assert_looks_missing(&f, "team/p/app", "other-team", theirs);
        Kybernate__V1__Response *r = call_resolve(&f, "team/p/app", "other-team", NULL);
        ASSERT_STREQ(r->message, "no ready checkpoint of Kubernetes container team/p/app");
        kyb_response_free(r);

        /* A prefix both share is ambiguous only among what the caller sees:
         * each tenant gets its own, the error names no id either way. */
        r = call_resolve(&f, "abcdef", "other-team", NULL);
        ASSERT_NE(r->error, ENOTUNIQ);
        ASSERT_NULL(strstr(r->message ? r->message : "", theirs));
        kyb_response_free(r);
        r = call_resolve(&f, "abcdef", "team", NULL);
        ASSERT_NE(r->error, ENOTUNIQ);
        ASSERT_NULL(strstr(r->message ? r->message : "", "abcdef00000000000000000000000002"));
        kyb_response_free(r);
        /* The operator (no tenant) still sees both. */
        r = call_ref(&f, KYBERNATE__V1__REQUEST__OP_INSPECT, "abcdef", false);
        ASSERT_EQ(r->error, ENOTUNIQ);
        kyb_response_free(r);
        fixture_done(&f);
}

TEST(resolve_never_quotes_control_characters_of_a_row) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        CatalogEntry e = {.id = (char *)"abcdef00000000000000000000000001",
                          .state = CHECKPOINT_READY,
                          .containerd_namespace = (char *)"k8s.io",
                          .k8s_namespace = (char *)"team",
                          .image_ref = (char *)"busybox\r\n\x1b[31mforged",
                          .size_bytes = 10};
        ASSERT_OK(catalog_insert(f.manager->catalog, &e));
        Kybernate__V1__Response *r = call_resolve(&f, e.id, "team", "nginx");
        ASSERT_EQ(r->error, EMEDIUMTYPE);
        for (const char *p = r->message; *p; p++)
                ASSERT_TRUE((unsigned char)*p >= 0x20 && *p != 0x7f);
        kyb_response_free(r);
        fixture_done(&f);
}

TEST(resolve_host_path_never_reaches_the_store) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        insert(&f, "abcdef00000000000000000000000001", NULL, "p", 1);
        /* A configuration kybernated refuses at start, forced here. */
        ASSERT_OK(config_set(&f.config, "allowed_restore_dirs", f.dir));
        char p[256];
        snprintf(p, sizeof(p), "%s/store/checkpoints/abcdef00000000000000000000000001", f.dir);
        Kybernate__V1__Response *r = call_resolve(&f, p, "other-team", NULL);
        ASSERT_EQ(r->error, EACCES);
        ASSERT_TRUE(strstr(r->message, "checkpoint store") != NULL);
        kyb_response_free(r);
        fixture_done(&f);
}

static Kybernate__V1__Response *call_import(Fixture *f, bool prepare, const char *staging, const char *name,
                                            Kybernate__V1__CheckpointInfo *override) {
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__ImportRequest ir = KYBERNATE__V1__IMPORT_REQUEST__INIT;
        ir.has_prepare = prepare;
        ir.prepare = prepare;
        ir.staging_dir = (char *)staging;
        ir.name = (char *)name;
        ir.override = override;
        req.op_case = KYBERNATE__V1__REQUEST__OP_IMPORT;
        req.import = &ir;
        send_req(f, &req);
        return recv_resp(f);
}

/* A staging directory from Import{prepare}, with CRIU's inventory unless bare. */
static char *staged(Fixture *f, bool bare) {
        Kybernate__V1__Response *r = call_import(f, true, NULL, NULL, NULL);
        ASSERT_EQ(r->error, 0);
        char *dir = strdup(r->import->staging_dir);
        kyb_response_free(r);
        char p[512];
        snprintf(p, sizeof(p), "%s/checkpoint", dir);
        ASSERT_OK(mkdir_p(p, 0700));
        if (!bare) {
                strcat(p, "/inventory.img");
                ASSERT_OK(write_file_atomic(p, "INV", 3, 0600));
        }
        return dir;
}

static void assert_dir_empty(const char *dir) {
        DIR *d = opendir(dir);
        ASSERT_NOT_NULL(d);
        struct dirent *de;
        unsigned n = 0;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(d);
        ASSERT_EQ(n, 0);
}

TEST(refused_imports_leave_staging_empty) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        insert(&f, "abcdef00000000000000000000000001", "taken", "p", 1);
        char staging[256], checkpoints[256];
        snprintf(staging, sizeof(staging), "%s/store/staging", f.dir);
        snprintf(checkpoints, sizeof(checkpoints), "%s/store/checkpoints", f.dir);
        Kybernate__V1__Response *r;
        char p[512];

        /* Not a checkpoint: no CRIU images. */
        _cleanup_free_ char *d1 = staged(&f, true);
        r = call_import(&f, false, d1, NULL, NULL);
        ASSERT_EQ(r->error, EINVAL);
        kyb_response_free(r);
        assert_dir_empty(staging);

        /* Tenant fields refused: a namespace that is no name. */
        _cleanup_free_ char *d2 = staged(&f, false);
        Kybernate__V1__CheckpointInfo o = KYBERNATE__V1__CHECKPOINT_INFO__INIT;
        o.k8s_namespace = (char *)"../team";
        r = call_import(&f, false, d2, NULL, &o);
        ASSERT_EQ(r->error, EINVAL);
        kyb_response_free(r);
        assert_dir_empty(staging);

        /* Bad metadata: an image reference with control characters. */
        _cleanup_free_ char *d3 = staged(&f, false);
        snprintf(p, sizeof(p), "%s/kybernate.json", d3);
        const char *kj = "{\"k8sNamespace\": \"team\", \"imageRef\": \"busybox\\r\\nforged\"}";
        ASSERT_OK(write_file_atomic(p, kj, strlen(kj), 0600));
        r = call_import(&f, false, d3, NULL, NULL);
        ASSERT_EQ(r->error, EINVAL);
        kyb_response_free(r);
        assert_dir_empty(staging);

        /* A name that is taken. */
        _cleanup_free_ char *d4 = staged(&f, false);
        r = call_import(&f, false, d4, "taken", NULL);
        ASSERT_EQ(r->error, EEXIST);
        kyb_response_free(r);
        assert_dir_empty(staging);

        /* The checksum refuses what is not a regular file or directory. */
        _cleanup_free_ char *d5 = staged(&f, false);
        snprintf(p, sizeof(p), "%s/checkpoint/link", d5);
        ASSERT_OK(symlink("/etc/passwd", p) < 0 ? -errno : 0);
        r = call_import(&f, false, d5, NULL, NULL);
        ASSERT_NE(r->error, 0);
        kyb_response_free(r);
        assert_dir_empty(staging);
        uint64_t n;
        ASSERT_OK(catalog_count(f.manager->catalog, NULL, &n));
        ASSERT_EQ(n, 1);

        /* And a good one still goes through. */
        _cleanup_free_ char *d6 = staged(&f, false);
        r = call_import(&f, false, d6, "fine", NULL);
        ASSERT_EQ(r->error, 0);
        ASSERT_EQ(r->import->info->state, KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_READY);
        kyb_response_free(r);
        assert_dir_empty(staging);
        fixture_done(&f);
}

typedef struct AsyncResult {
        bool done;
        int r;
        uint32_t protocol;
} AsyncResult;

static void on_async_done(int r, const Kybernate__V1__Response *resp, void *userdata) {
        AsyncResult *a = userdata;
        a->done = true;
        a->r = r;
        if (resp && resp->result_case == KYBERNATE__V1__RESPONSE__RESULT_STATUS)
                a->protocol = resp->status->protocol_version;
}

TEST(async_client_on_the_same_loop) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        ASSERT_OK(server_listen(f.server, -EBADF));
        struct stat st;
        ASSERT_OK(stat(f.config.socket, &st));
        ASSERT_EQ(st.st_mode & 0777, 0600);

        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__StatusRequest sr = KYBERNATE__V1__STATUS_REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_STATUS;
        req.status = &sr;
        AsyncResult a = {};
        ASSERT_OK(kyb_client_call_async(f.event, f.config.socket, &req, 5 * USEC_PER_SEC, NULL,
                                        on_async_done, &a, NULL));
        for (int i = 0; i < 500 && !a.done; i++)
                (void)sd_event_run(f.event, 10 * USEC_PER_MSEC);
        ASSERT_TRUE(a.done);
        ASSERT_EQ(a.r, 0);
        ASSERT_EQ(a.protocol, 1);

        /* A daemon error arrives as -errno. */
        Kybernate__V1__InspectRequest ir = KYBERNATE__V1__INSPECT_REQUEST__INIT;
        ir.reference = (char *)"nothing-here";
        req.op_case = KYBERNATE__V1__REQUEST__OP_INSPECT;
        req.inspect = &ir;
        a = (AsyncResult){};
        ASSERT_OK(kyb_client_call_async(f.event, f.config.socket, &req, 0, NULL, on_async_done, &a, NULL));
        for (int i = 0; i < 500 && !a.done; i++)
                (void)sd_event_run(f.event, 10 * USEC_PER_MSEC);
        ASSERT_EQ(a.r, -ENOENT);

        /* No daemon: the connect fails right away. */
        ASSERT_ERROR(
                kyb_client_call_async(f.event, "/nonexistent/sock", &req, 0, NULL, on_async_done, &a, NULL),
                ENOENT);

        /* Cancel: done is never called. */
        KybAsyncCall *call = NULL;
        a = (AsyncResult){};
        ASSERT_OK(kyb_client_call_async(f.event, f.config.socket, &req, 0, NULL, on_async_done, &a, &call));
        kyb_async_call_cancel(call);
        for (int i = 0; i < 20; i++)
                (void)sd_event_run(f.event, 1 * USEC_PER_MSEC);
        ASSERT_FALSE(a.done);
        fixture_done(&f);
}

TEST(blocking_client_against_a_daemon_process) {
        const char *dir = test_tmpdir();
        char sock[128];
        snprintf(sock, sizeof(sock), "%s/sock", dir);
        int ready[2];
        ASSERT_OK(pipe(ready) < 0 ? -errno : 0);

        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid == 0) {
                Config c;
                sd_event *e = NULL;
                Manager *m = NULL;
                Server *s = NULL;
                char store[128];
                snprintf(store, sizeof(store), "%s/store", dir);
                if (config_init(&c) < 0 || config_set(&c, "store", store) < 0 ||
                    config_set(&c, "socket", sock) < 0 || sd_event_new(&e) < 0 ||
                    manager_new(e, &c, &m) < 0 || manager_open_store(m) < 0 || server_new(m, &s) < 0 ||
                    server_listen(s, -EBADF) < 0)
                        _exit(1);
                (void)!write(ready[1], "x", 1);
                (void)sd_event_loop(e);
                _exit(0);
        }
        char x;
        ASSERT_EQ(read(ready[0], &x, 1), 1);

        setenv(KYB_SOCKET_ENV, sock, 1);
        ASSERT_STREQ(kyb_socket_path(), sock);
        _cleanup_(kyb_client_freep) KybClient *c = NULL;
        ASSERT_OK(kyb_client_connect(NULL, &c));
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__StatusRequest sr = KYBERNATE__V1__STATUS_REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_STATUS;
        req.status = &sr;
        for (int i = 0; i < 3; i++) {
                _cleanup_(kyb_response_freep) Kybernate__V1__Response *r = NULL;
                ASSERT_OK(kyb_client_call(c, &req, NULL, NULL, &r));
                ASSERT_EQ(r->result_case, KYBERNATE__V1__RESPONSE__RESULT_STATUS);
                ASSERT_EQ(r->id, req.id);
        }
        Kybernate__V1__DeleteRequest dr = KYBERNATE__V1__DELETE_REQUEST__INIT;
        dr.reference = (char *)"nope";
        req.op_case = KYBERNATE__V1__REQUEST__OP_DELETE;
        req.delete_ = &dr;
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *r = NULL;
        ASSERT_ERROR(kyb_client_call(c, &req, NULL, NULL, &r), ENOENT);
        ASSERT_NOT_NULL(r);
        ASSERT_TRUE(strstr(r->message, "nope") != NULL);

        kill(pid, SIGKILL);
        (void)waitpid(pid, NULL, 0);
        /* The daemon is gone: a transport error, no response. */
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *r2 = NULL;
        int rr = kyb_client_call(c, &req, NULL, NULL, &r2);
        ASSERT_TRUE(rr == -ECONNRESET || rr == -EPIPE);
        ASSERT_NULL(r2);
        ASSERT_OK(remove_tree_one_fs(dir));
}

TEST(startup_completes_dumped_and_removes_the_rest) {
        Fixture f = {};
        fixture_setup(&f, 0, false);
        char boot[40];
        ASSERT_OK(store_boot_id(boot));

        const char *ids[] = {"aaaa0000000000000000000000000001", "aaaa0000000000000000000000000002",
                             "aaaa0000000000000000000000000003"};
        const char *boots[] = {boot, "00000000-0000-0000-0000-000000000000", ""};
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                CatalogEntry e = {.id = (char *)ids[i],
                                  .state = CHECKPOINT_PENDING,
                                  .created_ns = 1,
                                  .dumped_boot_id = (char *)boots[i]};
                ASSERT_OK(catalog_insert(f.manager->catalog, &e));
                char p[256];
                snprintf(p, sizeof(p), "%s/store/checkpoints/%s/checkpoint", f.dir, ids[i]);
                ASSERT_OK(mkdir_p(p, 0700));
                strcat(p, "/inventory.img");
                ASSERT_OK(write_file_atomic(p, "INV", 3, 0600));
        }
        ASSERT_OK(manager_startup_cleanup(f.manager));

        /* Dumped in this boot: completed. */
        CatalogEntry e = {};
        ASSERT_OK(catalog_get(f.manager->catalog, ids[0], &e));
        ASSERT_EQ(e.state, CHECKPOINT_READY);
        ASSERT_EQ(e.size_bytes, 3);
        ASSERT_TRUE(startswith(e.checksum, "crc32c+sha256:") != NULL);
        catalog_entry_done(&e);
        /* Dumped before a reboot (page cache lost) or never dumped: removed. */
        for (size_t i = 1; i < ELEMENTSOF(ids); i++) {
                ASSERT_ERROR(catalog_get(f.manager->catalog, ids[i], &e), ENOENT);
                char p[256];
                snprintf(p, sizeof(p), "%s/store/checkpoints/%s", f.dir, ids[i]);
                ASSERT_TRUE(access(p, F_OK) < 0);
        }
        fixture_done(&f);
}
