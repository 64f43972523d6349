/* SPDX-License-Identifier: Apache-2.0 */
/* The ttrpc server: services, connections, calls and their replies. */
#include "ttrpc-internal.h"

typedef struct Service {
        char *name;
        const TtrpcMethod *methods;
        size_t n_methods;
        void *userdata;
} Service;

typedef struct Conn {
        Channel ch;          /* first: the channel callbacks cast back */
        TtrpcServer *server; /* NULL once closed */
        struct Conn *prev, *next;
} Conn;

struct TtrpcServer {
        sd_event *event;
        sd_event_source *listener, *accept_pause;
        Service *services;
        size_t n_services;
        bool check_peer;
        Conn *conns;
        size_t n_conns;
};

struct TtrpcCall {
        unsigned n_ref; /* the pending reply, and the handler while it runs */
        bool replied;
        Conn *conn;
        uint32_t stream_id;
        Ttrpc__Request *req;
};

static void conn_free(Channel *ch) {
        free(ch);
}

static void conn_closed(Channel *ch) {
        Conn *c = (Conn *)ch;
        if (!c->server)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                c->server->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->server->n_conns--;
        c->server = NULL;
        channel_unref(ch); /* the server's reference */
}

/* Go clients of ttrpc 1.2 refuse a proto3 string that is not UTF-8, which
 * would turn an error reply (runc's stderr, a cut message) into a broken
 * response: replace every byte that is not part of a valid sequence. */
static void utf8_sanitize(char *s) {
        for (unsigned char *p = (unsigned char *)s; *p;) {
                size_t n = *p < 0x80                  ? 1
                           : *p >= 0xc2 && *p <= 0xdf ? 2
                           : *p >= 0xe0 && *p <= 0xef ? 3
                           : *p >= 0xf0 && *p <= 0xf4 ? 4
                                                      : 0;
                size_t i = 1;
                while (i < n && (p[i] & 0xc0) == 0x80)
                        i++;
                /* no overlong 3/4-byte forms, no surrogates, nothing above U+10FFFF */
                if (n == 0 || i < n || (p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
                    (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90)) {
                        *p++ = '?';
                        continue;
                }
                p += n;
        }
}

_printf_(4, 0) static int send_status(Conn *c, uint32_t stream_id, int code, const char *fmt, va_list ap) {
        _cleanup_free_ char *msg = NULL;
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        Ttrpc__Response resp = TTRPC__RESPONSE__INIT;

        if (vasprintf(&msg, fmt, ap) < 0)
                return -ENOMEM;
        if (strlen(msg) > MAX_ERROR_MESSAGE)
                msg[MAX_ERROR_MESSAGE] = 0;
        utf8_sanitize(msg);
        st.code = code;
        st.message = msg;
        resp.status = &st;
        return channel_send(&c->ch, stream_id, TTRPC_TYPE_RESPONSE, &resp.base);
}

_printf_(4, 5) static int conn_send_error(Conn *c, uint32_t stream_id, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = send_status(c, stream_id, code, fmt, ap);
        va_end(ap);
        return r;
}

static void call_unref(TtrpcCall *call) {
        if (--call->n_ref > 0)
                return;
        channel_unref(&call->conn->ch);
        ttrpc__request__free_unpacked(call->req, NULL);
        free(call);
}

static const TtrpcMethod *server_find(TtrpcServer *s, Conn *c, uint32_t stream_id, const Ttrpc__Request *req,
                                      void **ret_userdata) {
        for (size_t i = 0; i < s->n_services; i++) {
                if (!streq(s->services[i].name, req->service))
                        continue;
                for (size_t j = 0; j < s->services[i].n_methods; j++)
                        if (streq(s->services[i].methods[j].name, req->method)) {
                                *ret_userdata = s->services[i].userdata;
                                return &s->services[i].methods[j];
                        }
                (void)conn_send_error(c, stream_id, TTRPC_UNIMPLEMENTED, "method %s", req->method);
                return NULL;
        }
        (void)conn_send_error(c, stream_id, TTRPC_UNIMPLEMENTED, "service %s", req->service);
        return NULL;
}

static void request_freep(Ttrpc__Request **req) {
        if (*req)
                ttrpc__request__free_unpacked(*req, NULL);
}

static void conn_frame(Channel *ch, const TtrpcFrameHeader *h, const uint8_t *data) {
        _cleanup_(request_freep) Ttrpc__Request *req = NULL;
        Conn *c = (Conn *)ch;
        void *userdata = NULL;

        if (h->type != TTRPC_TYPE_REQUEST || !c->server)
                return; /* Data and Response frames are not ours to answer */
        if (h->stream_id % 2 == 0) {
                (void)conn_send_error(c, h->stream_id, TTRPC_INVALID_ARGUMENT,
                                      "StreamID must be odd for client initiated streams");
                return;
        }
        req = ttrpc__request__unpack(NULL, h->length, data);
        if (!req) {
                (void)conn_send_error(c, h->stream_id, TTRPC_INVALID_ARGUMENT,
                                      "unmarshal request error: invalid ttrpc.Request");
                return;
        }
        for (size_t i = 0; i < req->n_metadata; i++)
                for (char *k = req->metadata[i]->key; *k; k++)
                        *k = (char)tolower((unsigned char)*k);

        const TtrpcMethod *m = server_find(c->server, c, h->stream_id, req, &userdata);
        if (!m)
                return;
        ProtobufCMessage *in =
                protobuf_c_message_unpack(m->input, NULL, req->payload.len, req->payload.data);
        if (!in) {
                (void)conn_send_error(c, h->stream_id, TTRPC_INVALID_ARGUMENT,
                                      "unmarshal request error: invalid %s", m->input->name);
                return;
        }
        TtrpcCall *call = new0(TtrpcCall, 1);
        if (!call) {
                (void)conn_send_error(c, h->stream_id, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
                protobuf_c_message_free_unpacked(in, NULL);
                return;
        }
        *call = (TtrpcCall){.n_ref = 2, .conn = c, .stream_id = h->stream_id, .req = TAKE_PTR(req)};
        channel_ref(ch);
        int r = m->handler(call, in, userdata);
        protobuf_c_message_free_unpacked(in, NULL);
        if (r < 0 && !call->replied)
                (void)ttrpc_call_reply_errno(call, r, "%s", strerror(-r));
        call_unref(call);
}

static void conn_oversize(Channel *ch, const TtrpcFrameHeader *h) {
        (void)conn_send_error((Conn *)ch, h->stream_id, TTRPC_RESOURCE_EXHAUSTED, OVERSIZE_FMT,
                              (size_t)h->length, TTRPC_MAX_MESSAGE_SIZE);
}

static const ChannelOps conn_ops = {
        .frame = conn_frame,
        .oversize = conn_oversize,
        .closed = conn_closed,
        .free = conn_free,
};

int ttrpc_server_new(sd_event *event, TtrpcServer **ret) {
        TtrpcServer *s = new0(TtrpcServer, 1);
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->check_peer = true;
        *ret = s;
        return 0;
}

TtrpcServer *ttrpc_server_free(TtrpcServer *s) {
        if (!s)
                return NULL;
        ttrpc_server_stop_listening(s);
        while (s->conns) {
                Conn *c = s->conns;
                channel_close(&c->ch);
                conn_closed(&c->ch);
        }
        for (size_t i = 0; i < s->n_services; i++)
                free(s->services[i].name);
        free(s->services);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

int ttrpc_server_add_service(TtrpcServer *s, const char *service, const TtrpcMethod *methods,
                             size_t n_methods, void *userdata) {
        Service *n = reallocarray(s->services, s->n_services + 1, sizeof(Service));
        if (!n)
                return -ENOMEM;
        s->services = n;
        char *name = strdup(service);
        if (!name)
                return -ENOMEM;
        s->services[s->n_services++] = (Service){name, methods, n_methods, userdata};
        return 0;
}

static int peer_check(int fd) {
        struct ucred uc;
        socklen_t l = sizeof(uc);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &l) < 0)
                return negative_errno();
        if (uc.uid != geteuid() || uc.gid != getegid())
                return -EPERM;
        return 0;
}

int ttrpc_server_add_connection(TtrpcServer *s, int fd) {
        _cleanup_close_ int cfd = fd;
        int r;

        r = fd_nonblock(cfd, true);
        if (r < 0)
                return r;
        if (s->check_peer) {
                r = peer_check(cfd);
                if (r < 0)
                        return r;
        }
        Conn *c = new0(Conn, 1);
        if (!c)
                return -ENOMEM;
        *c = (Conn){.ch = {.ops = &conn_ops, .n_ref = 1, .fd = -EBADF, .out_max = OUT_MAX},
                    .server = s,
                    .next = s->conns};
        r = channel_open(&c->ch, s->event, cfd);
        if (r < 0) {
                free(c);
                return r;
        }
        TAKE_FD(cfd);
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        s->n_conns++;
        return 0;
}

static int server_on_accept_again(sd_event_source *es, uint64_t usec, void *userdata) {
        TtrpcServer *s = userdata;
        (void)sd_event_source_set_enabled(s->listener, SD_EVENT_ON);
        return 0;
}

static int server_on_accept(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        TtrpcServer *s = userdata;
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
                if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                        return 0;
                log_warning_errno(errno, "Failed to accept ttrpc connection: %m");
                /* Out of fds or memory: the socket stays readable, so pause instead of spinning
                 * (with a timer made in advance: a new one might need an fd). */
                if (sd_event_source_set_time_relative(s->accept_pause, 100 * USEC_PER_MSEC) >= 0 &&
                    sd_event_source_set_enabled(s->accept_pause, SD_EVENT_ONESHOT) >= 0)
                        (void)sd_event_source_set_enabled(es, SD_EVENT_OFF);
                return 0;
        }
        int r = ttrpc_server_add_connection(userdata, cfd);
        if (r < 0)
                log_warning_errno(r, "Dropped ttrpc connection: %m");
        return 0;
}

int ttrpc_server_listen_fd(TtrpcServer *s, int fd) {
        _cleanup_close_ int lfd = fd;
        int r;

        if (s->listener)
                return -EBUSY;
        r = fd_nonblock(lfd, true);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(s->event, &s->accept_pause, CLOCK_MONOTONIC, USEC_PER_SEC, 0,
                                       server_on_accept_again, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->accept_pause, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_io(s->event, &s->listener, lfd, EPOLLIN, server_on_accept, s);
        if (r < 0) {
                s->accept_pause = sd_event_source_disable_unref(s->accept_pause);
                return r;
        }
        (void)sd_event_source_set_io_fd_own(s->listener, true);
        TAKE_FD(lfd);
        return 0;
}

void ttrpc_server_set_check_peer(TtrpcServer *s, bool check) {
        s->check_peer = check;
}

void ttrpc_server_stop_listening(TtrpcServer *s) {
        s->listener = sd_event_source_disable_unref(s->listener);
        s->accept_pause = sd_event_source_disable_unref(s->accept_pause);
}

size_t ttrpc_server_connection_count(TtrpcServer *s) {
        return s->n_conns;
}

static int call_finish(TtrpcCall *call, const Ttrpc__Response *resp) {
        int r = 0;
        if (call->conn->server)
                r = channel_send(&call->conn->ch, call->stream_id, TTRPC_TYPE_RESPONSE, &resp->base);
        call->replied = true;
        call_unref(call);
        return r;
}

_printf_(3, 0) static int call_error(TtrpcCall *call, int code, const char *fmt, va_list ap) {
        int r = 0;
        if (call->conn->server)
                r = send_status(call->conn, call->stream_id, code, fmt, ap);
        call->replied = true;
        call_unref(call);
        return r;
}

int ttrpc_call_reply(TtrpcCall *call, const ProtobufCMessage *msg) {
        Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n = msg ? protobuf_c_message_get_packed_size(msg) : 0;

        if (n > TTRPC_MAX_MESSAGE_SIZE - 16) { /* 16 > tag and length of Response.payload */
                (void)ttrpc_call_reply_error(call, TTRPC_RESOURCE_EXHAUSTED, OVERSIZE_FMT, n,
                                             TTRPC_MAX_MESSAGE_SIZE);
                return -EMSGSIZE;
        }
        if (n > 0) {
                buf = malloc(n);
                if (!buf) {
                        (void)ttrpc_call_reply_error(call, TTRPC_RESOURCE_EXHAUSTED, "out of memory");
                        return -ENOMEM;
                }
                protobuf_c_message_pack(msg, buf);
                resp.payload = (ProtobufCBinaryData){n, buf};
        }
        return call_finish(call, &resp);
}

int ttrpc_call_reply_error(TtrpcCall *call, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = call_error(call, code, fmt, ap);
        va_end(ap);
        return r;
}

int ttrpc_call_reply_errno(TtrpcCall *call, int error, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = call_error(call, ttrpc_code_from_errno(error), fmt, ap);
        va_end(ap);
        return r;
}

const char *ttrpc_call_metadata(TtrpcCall *call, const char *key) {
        for (size_t i = 0; i < call->req->n_metadata; i++)
                if (streq(call->req->metadata[i]->key, key))
                        return call->req->metadata[i]->value;
        return NULL;
}

const char *ttrpc_call_method(TtrpcCall *call) {
        return call->req->method;
}

int64_t ttrpc_call_timeout_nano(TtrpcCall *call) {
        return call->req->timeout_nano;
}

bool ttrpc_call_connected(TtrpcCall *call) {
        return call->conn->server != NULL;
}
