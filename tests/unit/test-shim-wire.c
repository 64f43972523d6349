/* SPDX-License-Identifier: Apache-2.0 */
/* The real shim binary, in server mode, fed raw ttrpc frames: bad input gets
 * the documented error on its stream and the shim keeps serving. */
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "test.h"
#include "ttrpc.h"
#include "ttrpc/ttrpc.pb-c.h"

typedef struct Server {
        pid_t pid;
        const char *dir;
        char path[128];
} Server;

static void server_start(Server *s) {
        const char *build = getenv("BUILD");
        char bin[512];

        if (!build)
                return_skip("BUILD is not set (run through tests/run)");
        snprintf(bin, sizeof(bin), "%s/containerd-shim-kybernate-v1", build);
        if (access(bin, X_OK) < 0)
                test_fail(__FILE__, __LINE__, "%s not built", bin);
        s->dir = test_tmpdir();
        snprintf(s->path, sizeof(s->path), "%s/s.sock", s->dir);

        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa;
        ASSERT_OK(sockaddr_un_set(&sa, s->path));
        ASSERT_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
        ASSERT_OK(listen(fd, 16));
        s->pid = fork();
        ASSERT_TRUE(s->pid >= 0);
        if (s->pid == 0) {
                if (chdir(s->dir) < 0)
                        _exit(126);
                if (fd == 3)
                        fd_cloexec(3, false);
                else
                        dup2(fd, 3);
                setenv("TTRPC_ADDRESS", "/nonexistent/containerd.sock.ttrpc", 1);
                execl(bin, bin, "-namespace", "wire", "-id", "wire", "-address",
                      "/nonexistent/containerd.sock", NULL);
                _exit(127);
        }
        close(fd);
}

static void server_stop(Server *s) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
}

static int client(Server *s) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa;
        ASSERT_OK(sockaddr_un_set(&sa, s->path));
        ASSERT_OK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)));
        struct timeval tv = {.tv_sec = 10};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        return fd;
}

static void send_frame(int fd, uint32_t sid, uint8_t type, const void *data, uint32_t len) {
        uint8_t h[TTRPC_HEADER_SIZE];
        TtrpcFrameHeader hdr = {.length = len, .stream_id = sid, .type = type};
        ttrpc_header_encode(&hdr, h);
        ASSERT_OK(write_all(fd, h, sizeof(h)));
        if (len)
                ASSERT_OK(write_all(fd, data, len));
}

static void read_exact(int fd, void *buf, size_t len) {
        size_t got = 0;
        while (got < len) {
                ssize_t k = read(fd, (char *)buf + got, len - got);
                if (k <= 0)
                        test_fail(__FILE__, __LINE__, "connection closed or timed out after %zu bytes", got);
                got += (size_t)k;
        }
}

/* Reads one response frame; returns its decoded Response (caller frees). */
static Ttrpc__Response *read_response(int fd, uint32_t expect_sid) {
        uint8_t h[TTRPC_HEADER_SIZE];
        TtrpcFrameHeader hdr;
        read_exact(fd, h, sizeof(h));
        ttrpc_header_decode(h, &hdr);
        ASSERT_EQ(hdr.stream_id, expect_sid);
        ASSERT_EQ(hdr.type, TTRPC_TYPE_RESPONSE);
        ASSERT_EQ(hdr.flags, 0);
        uint8_t *data = malloc(hdr.length + 1);
        read_exact(fd, data, hdr.length);
        Ttrpc__Response *r = ttrpc__response__unpack(NULL, hdr.length, data);
        free(data);
        ASSERT_NOT_NULL(r);
        return r;
}

static void send_request(int fd, uint32_t sid, const char *service, const char *method,
                         const ProtobufCMessage *m, const uint8_t *raw, size_t raw_len) {
        Ttrpc__Request req = TTRPC__REQUEST__INIT;
        uint8_t payload[4096], frame[8192];
        req.service = (char *)service;
        req.method = (char *)method;
        if (m) {
                req.payload.len = protobuf_c_message_pack(m, payload);
                req.payload.data = payload;
        } else if (raw) {
                req.payload.len = raw_len;
                req.payload.data = (uint8_t *)raw;
        }
        size_t len = ttrpc__request__pack(&req, frame);
        send_frame(fd, sid, TTRPC_TYPE_REQUEST, frame, (uint32_t)len);
}

static void expect_error(int fd, uint32_t sid, int code, const char *message) {
        Ttrpc__Response *r = read_response(fd, sid);
        ASSERT_NOT_NULL(r->status);
        ASSERT_EQ(r->status->code, code);
        if (message)
                ASSERT_STREQ(r->status->message, message);
        ttrpc__response__free_unpacked(r, NULL);
}

static void expect_connect_ok(int fd, uint32_t sid, pid_t shim) {
        Containerd__Task__V2__ConnectRequest c = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
        c.id = (char *)"unknown";
        send_request(fd, sid, "containerd.task.v2.Task", "Connect", &c.base, NULL, 0);
        Ttrpc__Response *r = read_response(fd, sid);
        ASSERT_TRUE(!r->status || r->status->code == 0);
        Containerd__Task__V2__ConnectResponse *cr =
                containerd__task__v2__connect_response__unpack(NULL, r->payload.len, r->payload.data);
        ASSERT_NOT_NULL(cr);
        ASSERT_EQ(cr->shim_pid, shim);
        ASSERT_EQ(cr->task_pid, 0); /* unknown ids are not an error for Connect */
        containerd__task__v2__connect_response__free_unpacked(cr, NULL);
        ttrpc__response__free_unpacked(r, NULL);
}

TEST(wire_errors_keep_serving) {
        Server s;
        server_start(&s);
        int fd = client(&s);

        expect_connect_ok(fd, 1, s.pid);

        /* even stream id */
        Containerd__Task__V2__ConnectRequest c = CONTAINERD__TASK__V2__CONNECT_REQUEST__INIT;
        send_request(fd, 2, "containerd.task.v2.Task", "Connect", &c.base, NULL, 0);
        expect_error(fd, 2, TTRPC_INVALID_ARGUMENT, "StreamID must be odd for client initiated streams");

        /* unknown service and method */
        send_request(fd, 3, "foo.Bar", "Connect", &c.base, NULL, 0);
        expect_error(fd, 3, TTRPC_UNIMPLEMENTED, "service foo.Bar");
        send_request(fd, 5, "containerd.task.v2.Task", "Nope", &c.base, NULL, 0);
        expect_error(fd, 5, TTRPC_UNIMPLEMENTED, "method Nope");

        /* garbage envelope and garbage payload */
        static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
        send_frame(fd, 7, TTRPC_TYPE_REQUEST, junk, sizeof(junk));
        expect_error(fd, 7, TTRPC_INVALID_ARGUMENT, NULL);
        send_request(fd, 9, "containerd.task.v2.Task", "Create", NULL, junk, sizeof(junk));
        expect_error(fd, 9, TTRPC_INVALID_ARGUMENT, NULL);

        /* unknown container: NotFound, which containerd relies on after a failed Create */
        Containerd__Task__V2__StateRequest st = CONTAINERD__TASK__V2__STATE_REQUEST__INIT;
        st.id = (char *)"nope";
        send_request(fd, 11, "containerd.task.v2.Task", "State", &st.base, NULL, 0);
        expect_error(fd, 11, TTRPC_NOT_FOUND, "container not created: not found");
        Containerd__Task__V2__DeleteRequest del = CONTAINERD__TASK__V2__DELETE_REQUEST__INIT;
        del.id = (char *)"nope";
        send_request(fd, 13, "containerd.task.v2.Task", "Delete", &del.base, NULL, 0);
        expect_error(fd, 13, TTRPC_NOT_FOUND, NULL);

        /* containerd 2.x asks for containerd.task.v3.Task: same messages, same answers */
        send_request(fd, 21, "containerd.task.v3.Task", "State", &st.base, NULL, 0);
        expect_error(fd, 21, TTRPC_NOT_FOUND, "container not created: not found");
        Containerd__Task__V2__StatsRequest stats = CONTAINERD__TASK__V2__STATS_REQUEST__INIT;
        stats.id = (char *)"nope";
        send_request(fd, 23, "containerd.task.v2.Task", "Stats", &stats.base, NULL, 0);
        expect_error(fd, 23, TTRPC_NOT_FOUND, NULL);

        /* an invalid id is refused before anything touches the file system */
        Containerd__Task__V2__CreateTaskRequest cr = CONTAINERD__TASK__V2__CREATE_TASK_REQUEST__INIT;
        cr.id = (char *)"../../etc";
        cr.bundle = (char *)"/tmp";
        send_request(fd, 15, "containerd.task.v2.Task", "Create", &cr.base, NULL, 0);
        expect_error(fd, 15, TTRPC_INVALID_ARGUMENT, NULL);

        /* oversize: the data is discarded, the stream gets ResourceExhausted, the connection lives */
        size_t big = TTRPC_MAX_MESSAGE_SIZE + 100;
        uint8_t *zeros = calloc(1, big);
        send_frame(fd, 17, TTRPC_TYPE_REQUEST, zeros, (uint32_t)big);
        free(zeros);
        expect_error(fd, 17, TTRPC_RESOURCE_EXHAUSTED,
                     "message length 4194404 exceed maximum message size of 4194304");
        expect_connect_ok(fd, 19, s.pid);

        /* a truncated frame and a hang-up do not take the shim down */
        uint8_t half[6] = {0, 0, 0, 50, 0, 0};
        ASSERT_OK(write_all(fd, half, sizeof(half)));
        close(fd);
        fd = client(&s);
        expect_connect_ok(fd, 1, s.pid);
        close(fd);
        server_stop(&s);
}

TEST(wire_shutdown_exits) {
        Server s;
        int status;
        server_start(&s);
        int fd = client(&s);
        Containerd__Task__V2__ShutdownRequest sd = CONTAINERD__TASK__V2__SHUTDOWN_REQUEST__INIT;
        sd.id = (char *)"wire";
        send_request(fd, 1, "containerd.task.v2.Task", "Shutdown", &sd.base, NULL, 0);
        Ttrpc__Response *r = read_response(fd, 1);
        ASSERT_NULL(r->status);
        ttrpc__response__free_unpacked(r, NULL);
        /* with no containers the shim exits (events flushed or given up within ~3 s) */
        for (int i = 0; i < 100; i++) {
                if (waitpid(s.pid, &status, WNOHANG) == s.pid) {
                        ASSERT_TRUE(WIFEXITED(status));
                        ASSERT_EQ(WEXITSTATUS(status), 0);
                        ASSERT_EQ(access(s.path, F_OK), -1); /* socket removed */
                        close(fd);
                        return;
                }
                usleep(100 * 1000);
        }
        close(fd);
        server_stop(&s);
        test_fail(__FILE__, __LINE__, "shim did not exit after Shutdown");
}
