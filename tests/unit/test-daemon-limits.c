/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's limits against a client that hogs it (issue 9, hole 3): a real
 * Server on an sd-event loop, with connections over its listening socket
 * (from a child that became nobody, a read_group member) or socketpairs. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "kyb-client.h"
#include "kybernated/manager.h"
#include "kybernated/ops.h"
#include "kybernated/server.h"
#include "kybernated/store.h"
#include "mount-util.h"
#include "test.h"

#define NOBODY 65534

typedef struct Fixture {
        char dir[64];
        Config config;
        sd_event *event;
        Manager *manager;
        Server *server;
} Fixture;

static void fixture_setup(Fixture *f) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        strcpy(f->dir, "/tmp/test-daemon-limits.XXXXXX");
        ASSERT_NOT_NULL(mkdtemp(f->dir));
        ASSERT_OK(chmod(f->dir, 0755) < 0 ? -errno : 0); /* nobody reaches the socket */
        ASSERT_OK(config_init(&f->config));
        char p[128];
        snprintf(p, sizeof(p), "%s/store", f->dir);
        ASSERT_OK(config_set(&f->config, "store", p));
        snprintf(p, sizeof(p), "%s/sock", f->dir);
        ASSERT_OK(config_set(&f->config, "socket", p));
        ASSERT_OK(config_set(&f->config, "durable", "no"));
        ASSERT_OK(config_set(&f->config, "read_group", "65534"));
}

static void fixture_start(Fixture *f) {
        ASSERT_OK(sd_event_new(&f->event));
        ASSERT_OK(manager_new(f->event, &f->config, &f->manager));
        ASSERT_OK(manager_open_store(f->manager));
        ASSERT_OK(server_new(f->manager, &f->server));
}

static void fixture_done(Fixture *f) {
        server_free(f->server);
        manager_free(f->manager);
        sd_event_unref(f->event);
        config_done(&f->config);
        ASSERT_OK(remove_tree_one_fs(f->dir));
}

static void run_for(Fixture *f, uint64_t usec) {
        uint64_t end = now_monotonic_usec() + usec;
        while (now_monotonic_usec() < end)
                (void)sd_event_run(f->event, 5 * USEC_PER_MSEC);
}

/* A connection over a socketpair as if from uid (a read_group member). */
static int pair_connection(Fixture *f, uid_t uid, Connection **ret) {
        int sv[2];
        ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0 ? -errno
                                                                                                : 0);
        struct ucred cred = {.pid = getpid(), .uid = uid, .gid = uid};
        ASSERT_OK(server_add_connection(f->server, sv[0], &cred, true, ret));
        return sv[1];
}

static void send_req(int fd, Kybernate__V1__Request *req) {
        req->has_version = true;
        req->version = KYB_PROTOCOL_VERSION;
        req->has_id = true;
        req->id = 7;
        ASSERT_OK(kyb_send_message(fd, &req->base));
}

static void send_status(int fd) {
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__StatusRequest sr = KYBERNATE__V1__STATUS_REQUEST__INIT;
        req.op_case = KYBERNATE__V1__REQUEST__OP_STATUS;
        req.status = &sr;
        send_req(fd, &req);
}

/* Runs the loop until fd is readable (at most ~5 s); true if it is. */
static bool wait_readable(Fixture *f, int fd) {
        for (int i = 0; i < 1000; i++) {
                struct pollfd p = {.fd = fd, .events = POLLIN};
                if (poll(&p, 1, 0) == 1)
                        return true;
                (void)sd_event_run(f->event, 5 * USEC_PER_MSEC);
        }
        return false;
}

/* The next response on fd, or NULL if none comes or the peer hung up. */
static Kybernate__V1__Response *recv_resp(Fixture *f, int fd) {
        if (!wait_readable(f, fd))
                return NULL;
        uint8_t *buf = NULL;
        size_t len = 0;
        if (kyb_recv_datagram(fd, &buf, &len) <= 0)
                return NULL;
        Kybernate__V1__Response *r = kybernate__v1__response__unpack(NULL, len, buf);
        free(buf);
        return r;
}

static int connect_socket(const char *path) {
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        strcpy(sa.sun_path, path);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                safe_close(fd);
                return -errno;
        }
        return fd;
}

/* Root connects over the socket and asks for the status: true if answered. */
static bool root_served(Fixture *f) {
        _cleanup_close_ int fd = connect_socket(f->config.socket);
        if (fd < 0)
                return false;
        send_status(fd);
        _cleanup_(kyb_response_freep) Kybernate__V1__Response *r = recv_resp(f, fd);
        return r && r->error == 0 && r->result_case == KYBERNATE__V1__RESPONSE__RESULT_STATUS;
}

/* Child processes of this process (zombies too). */
static int count_children(void) {
        DIR *d = opendir("/proc");
        int n = 0;
        struct dirent *de;
        while (d && (de = readdir(d))) {
                char path[300], buf[512];
                if (!isdigit((unsigned char)de->d_name[0]))
                        continue;
                snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                ssize_t k = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
                if (k <= 0)
                        continue;
                buf[k] = 0;
                const char *rp = strrchr(buf, ')');
                int ppid;
                char state;
                if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == getpid())
                        n++;
        }
        if (d)
                closedir(d);
        return n;
}

/* Runs the loop until the verify counts are these (at most 5 s: a loaded
 * machine may need more than one short turn), then asserts them. */
static void run_until_verify(Fixture *f, unsigned running, unsigned queued) {
        for (int i = 0;
             i < 500 && (f->manager->n_verify_running != running || f->manager->n_verify_queued != queued ||
                         count_children() != (int)running);
             i++)
                run_for(f, 10 * USEC_PER_MSEC);
        ASSERT_EQ(f->manager->n_verify_running, running);
        ASSERT_EQ(f->manager->n_verify_queued, queued);
        ASSERT_EQ(count_children(), (int)running);
}

/* A child that becomes nobody (a read_group member) and opens n connections
 * to path, holding them until killed; reports how many connected on ready. */
static pid_t nobody_connects(const char *path, int n, int ready) {
        pid_t pid = fork();
        ASSERT_TRUE(pid >= 0);
        if (pid > 0)
                return pid;
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        gid_t g = NOBODY;
        if (setgroups(1, &g) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
                _exit(1);
        int ok = 0;
        for (int i = 0; i < n; i++)
                if (connect_socket(path) >= 0)
                        ok++;
        (void)!write(ready, &ok, sizeof(ok));
        pause();
        _exit(0);
}

TEST(nonroot_connections_never_keep_root_out) {
        Fixture f = {};
        fixture_setup(&f);
        fixture_start(&f);
        ASSERT_OK(server_listen(f.server, -EBADF));
        ASSERT_EQ(f.config.max_connections_per_uid, 16);

        /* 300 idle connections of a read_group member (the pattern):
         * it keeps 16, the rest are closed at once. */
        int p[2];
        ASSERT_OK(pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0 ? -errno : 0);
        pid_t pid = nobody_connects(f.config.socket, 300, p[1]);
        int connected = -1;
        for (int i = 0; i < 2000 && read(p[0], &connected, sizeof(connected)) != sizeof(connected); i++)
                (void)sd_event_run(f.event, 5 * USEC_PER_MSEC);
        ASSERT_EQ(connected, 300); /* connect() succeeds; the daemon closes the extra ones */
        run_for(&f, 100 * USEC_PER_MSEC);
        ASSERT_EQ(f.server->n_unprivileged, 16);

        /* Root gets in and is answered every time, also past max_connections
         * with 30 connections of its own held open. */
        int held[30];
        for (int i = 0; i < 30; i++) {
                held[i] = connect_socket(f.config.socket);
                ASSERT_OK(held[i]);
                run_for(&f, 1000);
        }
        for (int i = 0; i < 20; i++)
                ASSERT_TRUE(root_served(&f));
        run_for(&f, 50 * USEC_PER_MSEC);
        ASSERT_EQ(f.server->n_unprivileged, 16);
        ASSERT_EQ(f.manager->n_connections, 16 + 30);
        for (int i = 0; i < 30; i++)
                safe_close(held[i]);

        kill(pid, SIGKILL);
        ASSERT_EQ(waitpid(pid, NULL, 0), pid);
        run_for(&f, 100 * USEC_PER_MSEC);
        ASSERT_EQ(f.manager->n_connections, 0);
        ASSERT_EQ(f.server->n_unprivileged, 0);

        /* max_connections bounds all non-root users together. */
        Connection *c;
        f.config.max_connections = 3;
        int fds[3];
        for (int i = 0; i < 3; i++)
                fds[i] = pair_connection(&f, 1000 + i, &c);
        int sv[2];
        ASSERT_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0 ? -errno : 0);
        struct ucred other = {.pid = 1, .uid = 2000, .gid = 2000};
        ASSERT_ERROR(server_add_connection(f.server, sv[0], &other, true, &c), EMFILE);
        safe_close(sv[1]);
        ASSERT_TRUE(root_served(&f));
        for (int i = 0; i < 3; i++)
                safe_close(fds[i]);
        safe_close(p[0]);
        safe_close(p[1]);
        fixture_done(&f);
}

/* A checkpoint row whose directory holds a 64 GiB sparse file: hashing it
 * takes far longer than the test. */
static void insert_big(Fixture *f, const char *id) {
        CatalogEntry e = {.id = (char *)id,
                          .name = (char *)"big",
                          .state = CHECKPOINT_READY,
                          .containerd_namespace = (char *)"k8s.io",
                          .k8s_namespace = (char *)"team",
                          .k8s_pod = (char *)"p",
                          .k8s_container = (char *)"app",
                          .container_id = (char *)"cid",
                          .created_ns = 1,
                          .size_bytes = 10};
        ASSERT_OK(catalog_insert(f->manager->catalog, &e));
        char path[256];
        snprintf(path, sizeof(path), "%s/store/checkpoints/%s", f->dir, id);
        ASSERT_OK(mkdir_p(path, 0700));
        strcat(path, "/pages-1.img");
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        ASSERT_OK(fd);
        ASSERT_OK(ftruncate(fd, 64LL << 30) < 0 ? -errno : 0);
        ASSERT_OK(catalog_set_ready(f->manager->catalog, id, 10, "sha256:0"));
}

static void send_inspect_verify(int fd) {
        Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
        Kybernate__V1__InspectRequest ir = KYBERNATE__V1__INSPECT_REQUEST__INIT;
        ir.reference = (char *)"big";
        ir.has_verify = true;
        ir.verify = true;
        req.op_case = KYBERNATE__V1__REQUEST__OP_INSPECT;
        req.inspect = &ir;
        send_req(fd, &req);
}

TEST(idle_connections_are_closed) {
        Fixture f = {};
        fixture_setup(&f);
        ASSERT_OK(config_set(&f.config, "idle_timeout", "1"));
        ASSERT_EQ(f.config.idle_timeout_ns, (int64_t)NSEC_PER_SEC);
        f.config.idle_timeout_ns = 300LL * 1000 * 1000; /* 300 ms */
        fixture_start(&f);
        Connection *c;
        int idle = pair_connection(&f, NOBODY, &c);
        int active = pair_connection(&f, NOBODY, &c);
        int root = pair_connection(&f, 0, &c);
        /* busy waits on a long verification: it is not idle. */
        insert_big(&f, "abcdef00000000000000000000000001");
        int busy = pair_connection(&f, 1000, &c);
        send_inspect_verify(busy);

        /* active asks something every 100 ms: each request restarts its timer. */
        for (int i = 0; i < 6; i++) {
                run_for(&f, 100 * USEC_PER_MSEC);
                send_status(active);
                _cleanup_(kyb_response_freep) Kybernate__V1__Response *r = recv_resp(&f, active);
                ASSERT_NOT_NULL(r);
                ASSERT_EQ(r->error, 0);
        }
        /* 600 ms: the idle ones (root's too) are gone: EOF. */
        ASSERT_EQ(f.manager->n_connections, 2);
        ASSERT_EQ(f.manager->n_verify_running, 1);
        char b;
        ASSERT_EQ(recv(idle, &b, 1, MSG_DONTWAIT), 0);
        ASSERT_EQ(recv(root, &b, 1, MSG_DONTWAIT), 0);
        run_for(&f, 400 * USEC_PER_MSEC);
        ASSERT_EQ(f.manager->n_connections, 1);
        ASSERT_EQ(recv(active, &b, 1, MSG_DONTWAIT), 0);
        safe_close(busy);
        run_for(&f, 50 * USEC_PER_MSEC);
        ASSERT_EQ(f.manager->n_connections, 0);
        ASSERT_EQ(f.manager->n_verify_running, 0);
        safe_close(idle);
        safe_close(active);
        safe_close(root);
        fixture_done(&f);
}

/* Sends status requests on fd without reading the replies until the daemon
 * hangs up (at most n); returns how many it sent, and the most unread reply
 * bytes the server held at once in *ret_max. */
static int flood(Fixture *f, int fd, int n, size_t *ret_max) {
        int i;
        *ret_max = 0;
        for (i = 0; i < n; i++) {
                Kybernate__V1__Request req = KYBERNATE__V1__REQUEST__INIT;
                Kybernate__V1__StatusRequest sr = KYBERNATE__V1__STATUS_REQUEST__INIT;
                req.op_case = KYBERNATE__V1__REQUEST__OP_STATUS;
                req.status = &sr;
                req.has_version = true;
                req.version = KYB_PROTOCOL_VERSION;
                int r = kyb_send_message(fd, &req.base);
                if (r == -EPIPE || r == -ECONNRESET)
                        break;
                ASSERT_TRUE(r >= 0 || r == -EAGAIN);
                while (sd_event_run(f->event, 0) > 0)
                        ;
                if (f->server->out_total > *ret_max)
                        *ret_max = f->server->out_total;
                if (!f->server->connections)
                        break;
        }
        return i;
}

TEST(a_client_that_does_not_read_is_dropped) {
        Fixture f = {};
        fixture_setup(&f);
        ASSERT_OK(config_set(&f.config, "max_reply_queue", "256K"));
        ASSERT_ERROR(config_set(&f.config, "max_reply_memory", "100K"), ERANGE);
        fixture_start(&f);
        Connection *c;
        size_t max;

        /* Over the per-connection bound. */
        int fd = pair_connection(&f, NOBODY, &c);
        int sent = flood(&f, fd, 100000, &max);
        ASSERT_TRUE(sent < 100000);
        ASSERT_NULL(f.server->connections);
        ASSERT_TRUE(max <= (size_t)256 * 1024);
        ASSERT_TRUE(max > (size_t)128 * 1024);
        ASSERT_EQ(f.server->out_total, 0);
        safe_close(fd);

        /* Over the bound of all connections: two hogs of 256K each with
         * max_reply_memory 384K; the second is dropped, root is still served
         * (its queue is not bounded by the total). */
        f.config.max_reply_queue = 1 << 20;
        f.config.max_reply_memory = 384 << 10;
        int a = pair_connection(&f, NOBODY, &c);
        int b = pair_connection(&f, 1000, &c);
        int root = pair_connection(&f, 0, &c);
        /* a stays under 256K: stop it early by counting its queue. */
        for (int i = 0; i < 100000 && f.server->out_total < (size_t)256 * 1024; i++) {
                send_status(a);
                while (sd_event_run(f.event, 0) > 0)
                        ;
        }
        ASSERT_EQ(f.manager->n_connections, 3);
        (void)flood(&f, b, 100000, &max);
        ASSERT_TRUE(max <= (size_t)384 * 1024);
        ASSERT_EQ(f.manager->n_connections, 2); /* b is gone */
        send_status(root);
        Kybernate__V1__Response *r = NULL;
        /* root reads its replies: status answers (kernel buffer permitting). */
        r = recv_resp(&f, root);
        ASSERT_NOT_NULL(r);
        ASSERT_EQ(r->error, 0);
        kyb_response_free(r);
        safe_close(a);
        safe_close(b);
        safe_close(root);
        run_for(&f, 50 * USEC_PER_MSEC);
        ASSERT_EQ(f.server->out_total, 0);
        fixture_done(&f);
}

TEST(verify_children_capped_and_killed_on_disconnect) {
        Fixture f = {};
        fixture_setup(&f);
        ASSERT_OK(config_set(&f.config, "max_verify_jobs", "2"));
        fixture_start(&f);
        insert_big(&f, "abcdef00000000000000000000000001");
        ASSERT_EQ(count_children(), 0);

        Connection *c;
        int fds[5];
        for (int i = 0; i < 5; i++) {
                fds[i] = pair_connection(&f, NOBODY, &c);
                send_inspect_verify(fds[i]);
        }
        run_until_verify(&f, 2, 3);

        /* Root's request goes ahead of the waiting ones. */
        int root = pair_connection(&f, 0, &c);
        send_inspect_verify(root);
        run_until_verify(&f, 2, 4);
        ASSERT_EQ(f.manager->verify_queue->conn, c);

        /* The clients of the running ones go: their children are killed and
         * reaped, and two of the waiting ones (root's first) start. */
        safe_close(fds[0]);
        safe_close(fds[1]);
        run_until_verify(&f, 2, 2);
        ASSERT_TRUE(f.manager->verify_queue->conn != c);

        /* Everyone goes: nothing left running, no zombie. */
        for (int i = 2; i < 5; i++)
                safe_close(fds[i]);
        safe_close(root);
        for (int i = 0; i < 50 && (f.manager->n_connections > 0 || count_children() > 0); i++)
                run_for(&f, 100 * USEC_PER_MSEC);
        ASSERT_EQ(f.manager->n_verify_running, 0);
        ASSERT_EQ(f.manager->n_verify_queued, 0);
        ASSERT_EQ(f.manager->n_jobs, 0);
        ASSERT_EQ(count_children(), 0);

        /* A full queue refuses a non-root request with EBUSY, never root's. */
        int many[2 + 64];
        for (int i = 0; i < 2 + 64; i++) {
                many[i] = pair_connection(&f, 3000 + (uid_t)i, &c);
                send_inspect_verify(many[i]);
                while (sd_event_run(f.event, 0) > 0)
                        ;
        }
        ASSERT_EQ(f.manager->n_verify_queued, 64);
        int one = pair_connection(&f, 1000, &c);
        send_inspect_verify(one);
        Kybernate__V1__Response *r = recv_resp(&f, one);
        ASSERT_NOT_NULL(r);
        ASSERT_EQ(r->error, EBUSY);
        kyb_response_free(r);
        root = pair_connection(&f, 0, &c);
        send_inspect_verify(root);
        run_for(&f, 20 * USEC_PER_MSEC);
        ASSERT_EQ(f.manager->n_verify_queued, 65);
        ASSERT_EQ(f.manager->verify_queue->conn, c);
        for (int i = 0; i < 2 + 64; i++)
                safe_close(many[i]);
        safe_close(one);
        safe_close(root);
        /* Each running one killed starts the next waiting one until the
         * loop has seen every hang-up: give a loaded machine 5 s. */
        for (int i = 0; i < 50 && (f.manager->n_connections > 0 || count_children() > 0); i++)
                run_for(&f, 100 * USEC_PER_MSEC);
        ASSERT_EQ(f.manager->n_connections, 0);
        ASSERT_EQ(f.manager->n_verify_running, 0);
        ASSERT_EQ(count_children(), 0);
        fixture_done(&f);
}
