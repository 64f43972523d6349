/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "kyb-client.h"
#include "util.h"

struct KybClient {
        int fd;
        uint64_t next_id;
};

struct KybAsyncCall {
        int fd;
        sd_event_source *io;
        sd_event_source *timer;
        uint8_t *out; /* packed request, sent once the socket is writable */
        size_t out_len;
        uint64_t id;
        KybMessageFn on_message;
        KybDoneFn done;
        void *userdata;
};

const char *kyb_socket_path(void) {
        const char *p = getenv(KYB_SOCKET_ENV);
        return isempty(p) ? KYB_SOCKET_DEFAULT : p;
}

const char *kyb_state_to_string(Kybernate__V1__CheckpointState s) {
        switch (s) {
        case KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_PENDING:
                return "pending";
        case KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_READY:
                return "ready";
        case KYBERNATE__V1__CHECKPOINT_STATE__CHECKPOINT_STATE_FAILED:
                return "failed";
        default:
                return "unknown";
        }
}

Kybernate__V1__Response *kyb_response_free(Kybernate__V1__Response *r) {
        if (r)
                kybernate__v1__response__free_unpacked(r, NULL);
        return NULL;
}

Kybernate__V1__Request *kyb_request_free(Kybernate__V1__Request *r) {
        if (r)
                kybernate__v1__request__free_unpacked(r, NULL);
        return NULL;
}

int kyb_send_message(int fd, const ProtobufCMessage *m) {
        size_t len = protobuf_c_message_get_packed_size(m);
        if (len > KYB_MSG_MAX)
                return -EMSGSIZE;
        _cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
        if (!buf)
                return -ENOMEM;
        protobuf_c_message_pack(m, buf);
        for (;;) {
                ssize_t k = send(fd, buf, len, MSG_NOSIGNAL);
                if (k >= 0)
                        return (size_t)k == len ? 0 : -EIO;
                if (errno != EINTR)
                        return negative_errno();
        }
}

int kyb_recv_datagram(int fd, uint8_t **ret, size_t *ret_len) {
        ssize_t n;
        uint8_t dummy;

        /* MSG_TRUNC with MSG_PEEK reports the datagram's real size. */
        do
                n = recv(fd, &dummy, 1, MSG_PEEK | MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return negative_errno();
        if (n == 0) {
                /* EOF, or an empty datagram: consume it either way. */
                (void)recv(fd, &dummy, 1, MSG_DONTWAIT);
                *ret = NULL;
                *ret_len = 0;
                return 0;
        }
        if ((size_t)n > KYB_MSG_MAX) {
                (void)recv(fd, &dummy, 1, MSG_DONTWAIT); /* discards the whole datagram */
                return -EMSGSIZE;
        }
        _cleanup_free_ uint8_t *buf = malloc((size_t)n);
        if (!buf)
                return -ENOMEM;
        ssize_t k;
        do
                k = recv(fd, buf, (size_t)n, 0);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return negative_errno();
        *ret_len = (size_t)k;
        *ret = TAKE_PTR(buf);
        return 1;
}

static int connect_socket(const char *path, bool nonblock, int *ret_fd) {
        struct sockaddr_un sa;

        if (!path)
                path = kyb_socket_path();
        int r = sockaddr_un_set(&sa, path);
        if (r < 0)
                return r;

        _cleanup_close_ int fd =
                socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int kyb_client_connect(const char *path, KybClient **ret) {
        _cleanup_close_ int fd = -EBADF;
        int r = connect_socket(path, false, &fd);
        if (r < 0)
                return r;
        KybClient *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->fd = TAKE_FD(fd);
        c->next_id = 1;
        *ret = c;
        return 0;
}

KybClient *kyb_client_free(KybClient *c) {
        if (!c)
                return NULL;
        safe_close(c->fd);
        free(c);
        return NULL;
}

int kyb_client_fd(KybClient *c) {
        return c->fd;
}

/* Decodes one response datagram; -EBADMSG if it is not one. */
static int decode_response(const uint8_t *buf, size_t len, Kybernate__V1__Response **ret) {
        Kybernate__V1__Response *resp = kybernate__v1__response__unpack(NULL, len, buf);
        if (!resp)
                return -EBADMSG;
        *ret = resp;
        return 0;
}

static int response_result(const Kybernate__V1__Response *resp) {
        if (resp->has_error && resp->error != 0)
                return resp->error > 0 ? -resp->error : resp->error;
        return 0;
}

int kyb_client_call(KybClient *c, Kybernate__V1__Request *req, KybMessageFn on_message, void *userdata,
                    Kybernate__V1__Response **ret) {
        int r;

        *ret = NULL;
        req->has_version = true;
        req->version = KYB_PROTOCOL_VERSION;
        req->has_id = true;
        req->id = c->next_id++;

        r = kyb_send_message(c->fd, &req->base);
        if (r < 0)
                return r == -EPIPE ? -ECONNRESET : r;

        for (;;) {
                _cleanup_free_ uint8_t *buf = NULL;
                size_t len = 0;
                _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;

                r = kyb_recv_datagram(c->fd, &buf, &len);
                if (r < 0)
                        return r;
                if (r == 0)
                        return -ECONNRESET;
                r = decode_response(buf, len, &resp);
                if (r < 0)
                        return r;
                if (resp->has_id && resp->id != req->id)
                        continue; /* a stale answer from an aborted call */
                if (resp->more) {
                        if (!on_message)
                                continue;
                        r = on_message(resp, userdata);
                        if (r < 0)
                                return r;
                        if (r > 0)
                                TAKE_PTR(resp);
                        continue;
                }
                r = response_result(resp);
                *ret = TAKE_PTR(resp);
                return r;
        }
}

/* ---- async ---- */

static KybAsyncCall *async_call_free(KybAsyncCall *call) {
        if (!call)
                return NULL;
        sd_event_source_disable_unref(call->io);
        sd_event_source_disable_unref(call->timer);
        safe_close(call->fd);
        free(call->out);
        free(call);
        return NULL;
}

KybAsyncCall *kyb_async_call_cancel(KybAsyncCall *call) {
        return async_call_free(call);
}

static void async_finish(KybAsyncCall *call, int r, const Kybernate__V1__Response *resp) {
        KybDoneFn done = call->done;
        void *userdata = call->userdata;
        /* Free first: done may well cancel other work or free its userdata. */
        async_call_free(call);
        done(r, resp, userdata);
}

static int async_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        async_finish(userdata, -ETIMEDOUT, NULL);
        return 0;
}

static int async_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        KybAsyncCall *call = userdata;
        int r;

        if (call->out) {
                if (!(revents & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
                        return 0;
                ssize_t k = send(fd, call->out, call->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        async_finish(call, errno == EPIPE ? -ECONNRESET : negative_errno(), NULL);
                        return 0;
                }
                free(call->out);
                call->out = NULL;
                r = sd_event_source_set_io_events(s, EPOLLIN);
                if (r < 0)
                        async_finish(call, r, NULL);
                return 0;
        }

        for (;;) {
                _cleanup_free_ uint8_t *buf = NULL;
                size_t len = 0;
                _cleanup_(kyb_response_freep) Kybernate__V1__Response *resp = NULL;

                r = kyb_recv_datagram(fd, &buf, &len);
                if (r == -EAGAIN)
                        return 0;
                if (r < 0) {
                        async_finish(call, r, NULL);
                        return 0;
                }
                if (r == 0) {
                        async_finish(call, -ECONNRESET, NULL);
                        return 0;
                }
                r = decode_response(buf, len, &resp);
                if (r < 0) {
                        async_finish(call, r, NULL);
                        return 0;
                }
                if (resp->more) {
                        if (call->on_message) {
                                r = call->on_message(resp, call->userdata);
                                if (r > 0)
                                        TAKE_PTR(resp);
                                if (r < 0) {
                                        async_finish(call, r, NULL);
                                        return 0;
                                }
                        }
                        continue;
                }
                async_finish(call, response_result(resp), resp);
                return 0;
        }
}

int kyb_client_call_async(sd_event *e, const char *path, Kybernate__V1__Request *req, uint64_t timeout_usec,
                          KybMessageFn on_message, KybDoneFn done, void *userdata, KybAsyncCall **ret) {
        int r;

        if (!e || !req || !done)
                return -EINVAL;

        KybAsyncCall *call = calloc(1, sizeof(*call));
        if (!call)
                return -ENOMEM;
        call->fd = -EBADF;
        call->on_message = on_message;
        call->done = done;
        call->userdata = userdata;

        req->has_version = true;
        req->version = KYB_PROTOCOL_VERSION;
        req->has_id = true;
        req->id = 1;

        size_t len = protobuf_c_message_get_packed_size(&req->base);
        if (len > KYB_MSG_MAX) {
                r = -EMSGSIZE;
                goto fail;
        }
        call->out = malloc(len ? len : 1);
        if (!call->out) {
                r = -ENOMEM;
                goto fail;
        }
        call->out_len = len;
        protobuf_c_message_pack(&req->base, call->out);

        r = connect_socket(path, true, &call->fd);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(e, &call->io, call->fd, EPOLLOUT, async_on_io, call);
        if (r < 0)
                goto fail;
        if (timeout_usec > 0) {
                r = sd_event_add_time_relative(e, &call->timer, CLOCK_MONOTONIC, timeout_usec, 0,
                                               async_on_timer, call);
                if (r < 0)
                        goto fail;
        }
        if (ret)
                *ret = call;
        return 0;
fail:
        async_call_free(call);
        return r;
}
