/* SPDX-License-Identifier: Apache-2.0 */
/* Feeds the input, as the byte stream of one client connection, to a ttrpc
 * server on a real sd-event loop, then closes the connection and runs the
 * loop until idle. Some methods keep their call and are answered later: half
 * while the connection is still open, half after it closed. */
#include <sys/socket.h>

#include "containerd/task/v2/shim.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "ttrpc.h"
#include "util.h"

#define MAX_DEFERRED 64

static TtrpcCall *deferred[MAX_DEFERRED];
static size_t n_deferred;

static int m_state(TtrpcCall *call, const ProtobufCMessage *m, void *userdata) {
        const Containerd__Task__V2__StateRequest *req = (const void *)m;
        Containerd__Task__V2__StateResponse resp = CONTAINERD__TASK__V2__STATE_RESPONSE__INIT;
        const char *md = ttrpc_call_metadata(call, "containerd-namespace-ttrpc");

        resp.id = req->id;
        resp.exec_id = req->exec_id;
        resp.bundle = (char *)(md ?: "");
        resp.pid = (uint32_t)ttrpc_call_timeout_nano(call);
        return ttrpc_call_reply(call, &resp.base);
}

static int m_empty(TtrpcCall *call, const ProtobufCMessage *m, void *userdata) {
        return ttrpc_call_reply(call, NULL);
}

static int m_fail(TtrpcCall *call, const ProtobufCMessage *m, void *userdata) {
        return -ENOENT;
}

static int m_wait(TtrpcCall *call, const ProtobufCMessage *m, void *userdata) {
        if (n_deferred >= MAX_DEFERRED)
                return -EBUSY;
        deferred[n_deferred++] = call;
        return 0;
}

static const TtrpcMethod methods[] = {
        {"State", &containerd__task__v2__state_request__descriptor, m_state},
        {"Kill", &containerd__task__v2__kill_request__descriptor, m_empty},
        {"Delete", &containerd__task__v2__delete_request__descriptor, m_fail},
        {"Wait", &containerd__task__v2__wait_request__descriptor, m_wait},
        {"Shutdown", &google__protobuf__empty__descriptor, m_empty},
};

static void drain(int fd) {
        uint8_t buf[65536];
        while (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
                ;
}

static void run_idle(sd_event *e, int fd) {
        while (sd_event_run(e, 0) > 0)
                drain(fd);
        drain(fd);
}

static void reply_deferred(size_t from, size_t step) {
        for (size_t i = from; i < n_deferred; i += step)
                if (deferred[i]) {
                        (void)ttrpc_call_reply(deferred[i], NULL);
                        deferred[i] = NULL;
                }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        sd_event *e = NULL;
        TtrpcServer *s = NULL;
        int sv[2];

        if (sd_event_new(&e) < 0)
                abort();
        if (ttrpc_server_new(e, &s) < 0 ||
            ttrpc_server_add_service(s, "containerd.task.v2.Task", methods, ELEMENTSOF(methods), NULL) < 0 ||
            socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0 ||
            ttrpc_server_add_connection(s, sv[0]) < 0)
                abort();

        for (size_t done = 0; done < size;) {
                ssize_t n = send(sv[1], data + done, size - done, MSG_NOSIGNAL);
                if (n > 0)
                        done += (size_t)n;
                else if (n < 0 && errno != EAGAIN)
                        break; /* the server closed the connection */
                run_idle(e, sv[1]);
        }
        run_idle(e, sv[1]);
        reply_deferred(0, 3); /* connection still open */
        run_idle(e, sv[1]);
        (void)shutdown(sv[1], SHUT_WR);
        run_idle(e, sv[1]);
        if (ttrpc_server_connection_count(s) != 0)
                abort();      /* EOF must close the connection */
        reply_deferred(1, 3); /* after close: dropped */
        s = ttrpc_server_free(s);
        reply_deferred(0, 1); /* after the server is gone */
        n_deferred = 0;
        safe_close(sv[1]);
        sd_event_unref(e);
        return 0;
}
