/* SPDX-License-Identifier: Apache-2.0 */
/* ttrpc server and client on sd-event. Both sides share a Channel: one
 * non-blocking socket with a read buffer that cuts frames out of the byte
 * stream (partial frames, many frames per read, oversize frames skipped) and
 * a queue of whole frames to write, so frames never interleave and the loop
 * never blocks. Wire rules: shared/docs/PROTOCOL.md section 1. */
#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "google/rpc/status.pb-c.h"
#include "log.h"
#include "ttrpc.h"
#include "ttrpc/ttrpc.pb-c.h"
#include "util.h"

#define READ_CHUNK ((size_t)64 * 1024)
/* A peer that sends requests but does not read the replies is not read from
 * either once this much output is queued. */
#define OUT_MAX ((size_t)16 << 20)
#define MAX_ERROR_MESSAGE ((size_t)16 * 1024)
#define new0(t, n) ((t *)calloc((n), sizeof(t)))
#define OVERSIZE_FMT "message length %zu exceed maximum message size of %u"

void ttrpc_header_encode(const TtrpcFrameHeader *h, uint8_t out[TTRPC_HEADER_SIZE]) {
        for (int i = 0; i < 4; i++) {
                out[i] = (uint8_t)(h->length >> (24 - 8 * i));
                out[4 + i] = (uint8_t)(h->stream_id >> (24 - 8 * i));
        }
        out[8] = h->type;
        out[9] = h->flags;
}

void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], TtrpcFrameHeader *ret) {
        *ret = (TtrpcFrameHeader){
                .length = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3],
                .stream_id = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 | (uint32_t)in[6] << 8 | in[7],
                .type = in[8],
                .flags = in[9],
        };
}

static const struct {
        int error, code;
} errno_codes[] = {
        {ECANCELED, TTRPC_CANCELLED},       {EINVAL, TTRPC_INVALID_ARGUMENT},
        {EBADMSG, TTRPC_INVALID_ARGUMENT},  {ETIMEDOUT, TTRPC_DEADLINE_EXCEEDED},
        {ENOENT, TTRPC_NOT_FOUND},          {ESRCH, TTRPC_NOT_FOUND},
        {EEXIST, TTRPC_ALREADY_EXISTS},     {EPERM, TTRPC_PERMISSION_DENIED},
        {EACCES, TTRPC_PERMISSION_DENIED},  {ENOMEM, TTRPC_RESOURCE_EXHAUSTED},
        {ENOSPC, TTRPC_RESOURCE_EXHAUSTED}, {EMSGSIZE, TTRPC_RESOURCE_EXHAUSTED},
        {EBUSY, TTRPC_FAILED_PRECONDITION}, {EALREADY, TTRPC_FAILED_PRECONDITION},
        {ERANGE, TTRPC_OUT_OF_RANGE},       {EOPNOTSUPP, TTRPC_UNIMPLEMENTED},
        {ENOSYS, TTRPC_UNIMPLEMENTED},      {ECONNREFUSED, TTRPC_UNAVAILABLE},
        {ECONNRESET, TTRPC_UNAVAILABLE},    {ENOTCONN, TTRPC_UNAVAILABLE},
        {EPIPE, TTRPC_UNAVAILABLE},         {EAGAIN, TTRPC_UNAVAILABLE},
        {ESHUTDOWN, TTRPC_UNAVAILABLE},
};

int ttrpc_code_from_errno(int e) {
        e = e < 0 ? -e : e;
        if (e == 0)
                return TTRPC_OK;
        for (size_t i = 0; i < ELEMENTSOF(errno_codes); i++)
                if (errno_codes[i].error == e)
                        return errno_codes[i].code;
        return TTRPC_UNKNOWN;
}

/* One whole frame waiting to be written. */
typedef struct OutBuf {
        struct OutBuf *next;
        size_t len, done;
        uint8_t data[];
} OutBuf;

static int frame_new(uint32_t stream_id, uint8_t type, const ProtobufCMessage *m, OutBuf **ret) {
        size_t n = m ? protobuf_c_message_get_packed_size(m) : 0;
        if (n > TTRPC_MAX_MESSAGE_SIZE)
                return -EMSGSIZE;
        OutBuf *b = malloc(sizeof(OutBuf) + TTRPC_HEADER_SIZE + n);
        if (!b)
                return -ENOMEM;
        *b = (OutBuf){.len = TTRPC_HEADER_SIZE + n};
        ttrpc_header_encode(&(TtrpcFrameHeader){.length = (uint32_t)n, .stream_id = stream_id, .type = type},
                            b->data);
        if (n > 0)
                protobuf_c_message_pack(m, b->data + TTRPC_HEADER_SIZE);
        *ret = b;
        return 0;
}

typedef struct Channel Channel;
typedef struct ChannelOps {
        /* A complete frame (length within the limit). */
        void (*frame)(Channel *ch, const TtrpcFrameHeader *h, const uint8_t *data);
        /* An oversize frame whose data has been skipped. */
        void (*oversize)(Channel *ch, const TtrpcFrameHeader *h);
        /* The socket failed or the peer closed it; the channel is closed already. */
        void (*closed)(Channel *ch);
        /* Frees the owner when the last reference is gone. */
        void (*free)(Channel *ch);
} ChannelOps;

/* Embedded first in its owner (Conn, TtrpcClient), which it carries the
 * reference count of, so callbacks can drop the owner safely. */
struct Channel {
        const ChannelOps *ops;
        unsigned n_ref;
        int fd;
        unsigned gen; /* bumped on open and close, so loops notice either */
        sd_event_source *io;
        uint8_t *rbuf;
        size_t rlen, rcap;
        uint32_t discard; /* bytes of an oversize frame still to skip */
        TtrpcFrameHeader discard_hdr;
        OutBuf *out, *out_tail;
        size_t out_bytes, out_max; /* stop reading while more than out_max is queued (0: no limit) */
};

static void channel_ref(Channel *ch) {
        ch->n_ref++;
}

static void channel_close(Channel *ch) {
        if (ch->fd < 0)
                return;
        ch->io = sd_event_source_disable_unref(ch->io);
        ch->fd = safe_close(ch->fd);
        while (ch->out) {
                OutBuf *b = ch->out;
                ch->out = b->next;
                free(b);
        }
        ch->out_tail = NULL;
        ch->out_bytes = 0;
        ch->rlen = 0;
        ch->discard = 0;
        ch->gen++;
}

static void channel_unref(Channel *ch) {
        if (--ch->n_ref > 0)
                return;
        channel_close(ch);
        free(ch->rbuf);
        ch->ops->free(ch);
}

static int channel_flush(Channel *ch) {
        while (ch->out) {
                OutBuf *b = ch->out;
                ssize_t n = send(ch->fd, b->data + b->done, b->len - b->done, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return negative_errno();
                }
                b->done += (size_t)n;
                if (b->done < b->len)
                        continue;
                ch->out_bytes -= b->len;
                ch->out = b->next;
                free(b);
        }
        if (!ch->out)
                ch->out_tail = NULL;
        return sd_event_source_set_io_events(
                ch->io,
                (ch->out ? EPOLLOUT : 0) | (ch->out_max == 0 || ch->out_bytes <= ch->out_max ? EPOLLIN : 0));
}

/* Queues one frame. Write errors are left for the io callback to find, so
 * this never calls back into the owner. */
static int channel_send(Channel *ch, uint32_t stream_id, uint8_t type, const ProtobufCMessage *m) {
        OutBuf *b;
        int r;

        if (ch->fd < 0)
                return -ENOTCONN;
        r = frame_new(stream_id, type, m, &b);
        if (r < 0)
                return r;
        if (ch->out_tail)
                ch->out_tail->next = b;
        else
                ch->out = b;
        ch->out_tail = b;
        ch->out_bytes += b->len;
        if (ch->out != b && (ch->out_max == 0 || ch->out_bytes <= ch->out_max))
                return 0;          /* EPOLLOUT is on already */
        if (channel_flush(ch) < 0) /* the error shows up again in channel_io */
                (void)sd_event_source_set_io_events(ch->io, EPOLLOUT);
        return 0;
}

static int channel_read(Channel *ch) {
        size_t need = READ_CHUNK, off = 0;
        unsigned gen = ch->gen;

        /* Make room for at least the rest of the frame being assembled. */
        if (ch->discard == 0 && ch->rlen >= TTRPC_HEADER_SIZE) {
                TtrpcFrameHeader h;
                ttrpc_header_decode(ch->rbuf, &h);
                need = MAX(need, TTRPC_HEADER_SIZE + (size_t)h.length - ch->rlen);
        }
        if (ch->rcap - ch->rlen < need) {
                uint8_t *p = realloc(ch->rbuf, ch->rlen + need);
                if (!p)
                        return -ENOMEM;
                ch->rbuf = p;
                ch->rcap = ch->rlen + need;
        }
        ssize_t n = recv(ch->fd, ch->rbuf + ch->rlen, ch->rcap - ch->rlen, MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
        if (n == 0)
                return -ECONNRESET;
        ch->rlen += (size_t)n;

        for (;;) {
                TtrpcFrameHeader h;
                if (ch->discard > 0) {
                        size_t k = MIN((size_t)ch->discard, ch->rlen - off);
                        off += k;
                        ch->discard -= (uint32_t)k;
                        if (ch->discard > 0)
                                break;
                        ch->ops->oversize(ch, &ch->discard_hdr);
                        if (ch->gen != gen)
                                return 0;
                        continue;
                }
                if (ch->rlen - off < TTRPC_HEADER_SIZE)
                        break;
                ttrpc_header_decode(ch->rbuf + off, &h);
                if (h.length > TTRPC_MAX_MESSAGE_SIZE) {
                        off += TTRPC_HEADER_SIZE;
                        ch->discard = h.length;
                        ch->discard_hdr = h;
                        continue;
                }
                if (ch->rlen - off - TTRPC_HEADER_SIZE < h.length)
                        break;
                off += TTRPC_HEADER_SIZE + h.length;
                ch->ops->frame(ch, &h, ch->rbuf + off - h.length);
                if (ch->gen != gen)
                        return 0;
        }
        memmove(ch->rbuf, ch->rbuf + off, ch->rlen - off);
        ch->rlen -= off;
        if (ch->rlen == 0 && ch->rcap > 2 * READ_CHUNK) { /* don't keep a 4 MiB buffer around */
                free(ch->rbuf);
                ch->rbuf = NULL;
                ch->rcap = 0;
        }
        return 0;
}

static int channel_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Channel *ch = userdata;
        unsigned gen = ch->gen;
        int r = 0;

        channel_ref(ch);
        if (revents & EPOLLOUT)
                r = channel_flush(ch);
        if (r >= 0 && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                r = channel_read(ch);
        if (r < 0 && ch->gen == gen) {
                log_debug_errno(r, "ttrpc connection closed: %m");
                channel_close(ch);
                ch->ops->closed(ch);
        }
        channel_unref(ch);
        return 0; /* never negative: that would disable the source */
}

static int channel_open(Channel *ch, sd_event *event, int fd) {
        int r = sd_event_add_io(event, &ch->io, fd, EPOLLIN, channel_io, ch);
        if (r < 0)
                return r;
        ch->fd = fd;
        ch->gen++;
        return 0;
}

/* ---- server ---- */

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

/* ---- client ---- */

typedef struct Pending {
        struct Pending *next;
        TtrpcClient *client;
        uint32_t stream_id;
        sd_event_source *timer;
        TtrpcReplyFn cb;
        void *userdata;
} Pending;

struct TtrpcClient {
        Channel ch; /* first: the channel callbacks cast back */
        bool freed;
        sd_event *event;
        char *path;
        uint32_t next_stream_id;
        Pending *pending;
        size_t n_pending;
};

static void client_free(Channel *ch) {
        TtrpcClient *c = (TtrpcClient *)ch;
        sd_event_unref(c->event);
        free(c->path);
        free(c);
}

static Pending *pending_take(TtrpcClient *c, uint32_t stream_id) {
        for (Pending **p = &c->pending; *p; p = &(*p)->next)
                if ((*p)->stream_id == stream_id) {
                        Pending *found = *p;
                        *p = found->next;
                        c->n_pending--;
                        return found;
                }
        return NULL;
}

/* Runs the callback of a call already unlinked from the list, and frees it. */
static void pending_finish(Pending *p, int code, const char *message, const uint8_t *payload, size_t len) {
        p->timer = sd_event_source_disable_unref(p->timer);
        p->cb(p->client, code, message, payload, len, p->userdata);
        free(p);
}

static void client_fail_all(TtrpcClient *c, int code, const char *message) {
        /* Detach first: callbacks may issue new calls, which must not be failed here. */
        Pending *list = c->pending;
        c->pending = NULL;
        c->n_pending = 0;
        channel_ref(&c->ch);
        while (list) {
                Pending *p = list;
                list = p->next;
                pending_finish(p, code, message, NULL, 0);
        }
        channel_unref(&c->ch);
}

static void client_frame(Channel *ch, const TtrpcFrameHeader *h, const uint8_t *data) {
        TtrpcClient *c = (TtrpcClient *)ch;
        Pending *p;

        if (h->type != TTRPC_TYPE_RESPONSE || !(p = pending_take(c, h->stream_id)))
                return; /* not a reply, or the call timed out meanwhile */
        Ttrpc__Response *resp = ttrpc__response__unpack(NULL, h->length, data);
        if (!resp)
                pending_finish(p, TTRPC_INTERNAL, "unmarshal response error", NULL, 0);
        else if (resp->status && resp->status->code != TTRPC_OK)
                pending_finish(p, resp->status->code, resp->status->message, NULL, 0);
        else
                pending_finish(p, TTRPC_OK, NULL, resp->payload.data, resp->payload.len);
        if (resp)
                ttrpc__response__free_unpacked(resp, NULL);
}

static void client_oversize(Channel *ch, const TtrpcFrameHeader *h) {
        Pending *p = pending_take((TtrpcClient *)ch, h->stream_id);
        if (p)
                pending_finish(p, TTRPC_RESOURCE_EXHAUSTED, "reply exceeds maximum message size", NULL, 0);
}

static const char closed_message[] = "ttrpc: closed";

static void client_closed(Channel *ch) {
        client_fail_all((TtrpcClient *)ch, TTRPC_UNAVAILABLE, closed_message);
}

static const ChannelOps client_ops = {
        .frame = client_frame,
        .oversize = client_oversize,
        .closed = client_closed,
        .free = client_free,
};

/* path NULL: the caller opens the channel, and there is no reconnecting. */
static int client_alloc(sd_event *event, const char *path, TtrpcClient **ret) {
        TtrpcClient *c = new0(TtrpcClient, 1);
        if (!c)
                return -ENOMEM;
        *c = (TtrpcClient){.ch = {.ops = &client_ops, .n_ref = 1, .fd = -EBADF}, .next_stream_id = 1};
        if (path && !(c->path = strdup(path))) {
                free(c);
                return -ENOMEM;
        }
        c->event = sd_event_ref(event);
        *ret = c;
        return 0;
}

int ttrpc_client_new(sd_event *event, const char *address, TtrpcClient **ret) {
        const char *path = startswith(address, "unix://") ?: address;
        if (isempty(path) || strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
                return -EINVAL;
        return client_alloc(event, path, ret);
}

TtrpcClient *ttrpc_client_free(TtrpcClient *c) {
        if (!c)
                return NULL;
        c->freed = true;
        channel_close(&c->ch);
        client_fail_all(c, TTRPC_CANCELLED, "ttrpc: client closed");
        channel_unref(&c->ch);
        return NULL;
}

static int client_connect(TtrpcClient *c) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!c->path)
                return -ENOTCONN;
        strncpy(sa.sun_path, c->path, sizeof(sa.sun_path) - 1);
        if (sa.sun_path[0] == '@') /* abstract namespace */
                sa.sun_path[0] = 0;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* Unix sockets connect at once or fail (EAGAIN: backlog full). */
        if (connect(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + strlen(c->path)) <
            0)
                return negative_errno();
        r = channel_open(&c->ch, c->event, fd);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        c->next_stream_id = 1;
        return 0;
}

static int client_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Pending *p = userdata;
        TtrpcClient *c = p->client;

        channel_ref(&c->ch);
        p = pending_take(c, p->stream_id);
        if (p)
                pending_finish(p, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded", NULL, 0);
        channel_unref(&c->ch);
        return 0;
}

int ttrpc_client_call(TtrpcClient *c, const char *service, const char *method, const ProtobufCMessage *req,
                      const TtrpcKeyValuePair *metadata, size_t n_metadata, uint64_t timeout_usec,
                      TtrpcReplyFn cb, void *userdata) {
        Ttrpc__Request env = TTRPC__REQUEST__INIT;
        size_t n = req ? protobuf_c_message_get_packed_size(req) : 0;
        _cleanup_free_ uint8_t *payload = malloc(n + 1);
        _cleanup_free_ Ttrpc__KeyValue *kvs = new0(Ttrpc__KeyValue, n_metadata + 1);
        _cleanup_free_ Ttrpc__KeyValue **kvp = new0(Ttrpc__KeyValue *, n_metadata + 1);
        Pending *p;
        int r;

        if (c->freed)
                return -ESHUTDOWN;
        if (n > TTRPC_MAX_MESSAGE_SIZE)
                return -EMSGSIZE;
        if (!payload || !kvs || !kvp)
                return -ENOMEM;
        for (size_t i = 0; i < n_metadata; i++) {
                kvs[i] = (Ttrpc__KeyValue)TTRPC__KEY_VALUE__INIT;
                kvs[i].key = (char *)metadata[i].key;
                kvs[i].value = (char *)metadata[i].value;
                kvp[i] = &kvs[i];
        }
        env.service = (char *)service;
        env.method = (char *)method;
        env.payload = (ProtobufCBinaryData){n > 0 ? protobuf_c_message_pack(req, payload) : 0, payload};
        env.timeout_nano = (int64_t)(MIN(timeout_usec, (uint64_t)INT64_MAX / NSEC_PER_USEC) * NSEC_PER_USEC);
        env.n_metadata = n_metadata;
        env.metadata = kvp;
        if (c->ch.fd < 0) {
                r = client_connect(c);
                if (r < 0)
                        return r;
        }
        p = new0(Pending, 1);
        if (!p)
                return -ENOMEM;
        *p = (Pending){.client = c, .stream_id = c->next_stream_id, .cb = cb, .userdata = userdata};
        if (timeout_usec > 0) {
                r = sd_event_add_time_relative(c->event, &p->timer, CLOCK_MONOTONIC, timeout_usec, 0,
                                               client_on_timeout, p);
                if (r < 0) {
                        free(p);
                        return r;
                }
        }
        r = channel_send(&c->ch, p->stream_id, TTRPC_TYPE_REQUEST, &env.base);
        if (r < 0) {
                sd_event_source_disable_unref(p->timer);
                free(p);
                return r;
        }
        c->next_stream_id += 2;
        p->next = c->pending;
        c->pending = p;
        c->n_pending++;
        return 0;
}

size_t ttrpc_client_pending(TtrpcClient *c) {
        return c->n_pending;
}

static void *memdup(const void *p, size_t n) {
        void *q = malloc(n);
        return q ? memcpy(q, p, n) : NULL;
}

typedef struct SyncReply {
        bool done;
        int error, code;
        char *message;
        uint8_t *payload;
        size_t len;
} SyncReply;

static void sync_reply(TtrpcClient *c, int code, const char *message, const uint8_t *payload, size_t len,
                       void *userdata) {
        SyncReply *s = userdata;

        s->done = true;
        s->code = code;
        if (message == closed_message)
                s->error = -ECONNRESET;
        else if ((code != TTRPC_OK && !(s->message = strdup(message))) ||
                 (code == TTRPC_OK && len > 0 && !(s->payload = memdup(payload, len))))
                s->error = -ENOMEM;
        s->len = s->payload ? len : 0;
}

/* A client on a private loop, on a duplicate of fd. */
int ttrpc_call_sync(int fd, const char *service, const char *method, const ProtobufCMessage *req,
                    int *ret_code, char **ret_message, uint8_t **ret_payload, size_t *ret_len) {
        sd_event *e = NULL;
        TtrpcClient *c = NULL;
        SyncReply s = {};
        int r, dfd;

        r = sd_event_new(&e);
        if (r >= 0)
                r = client_alloc(e, NULL, &c);
        if (r >= 0) {
                dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                r = dfd < 0 ? negative_errno() : channel_open(&c->ch, e, dfd);
                if (r < 0)
                        safe_close(dfd);
        }
        if (r >= 0)
                r = ttrpc_client_call(c, service, method, req, NULL, 0, 0, sync_reply, &s);
        while (r >= 0 && !s.done)
                r = sd_event_run(e, UINT64_MAX);
        ttrpc_client_free(c);
        sd_event_unref(e);
        if (r >= 0 && s.error < 0)
                r = s.error;
        if (r >= 0 && ret_code)
                *ret_code = s.code;
        if (r >= 0 && ret_len)
                *ret_len = s.len;
        if (r >= 0 && ret_message)
                *ret_message = TAKE_PTR(s.message);
        if (r >= 0 && ret_payload)
                *ret_payload = TAKE_PTR(s.payload);
        free(s.message);
        free(s.payload);
        return r < 0 ? r : 0;
}
