/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <stdarg.h>

#include "connection.h"
#include "log.h"

struct OutBuf {
        OutBuf *next;
        size_t len;
        uint8_t data[];
};

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static void update_events(Connection *c) {
        uint32_t ev = c->out_head ? EPOLLOUT : 0;
        /* Stop reading while the output queue is large: backpressure. */
        if (c->out_bytes < OUT_BYTES_MAX / 2)
                ev |= EPOLLIN | EPOLLRDHUP;
        (void)sd_event_source_set_io_events(c->io, ev);
}

int connection_new(sd_event *e, int fd, const struct ucred *cred, const ConnectionHandlers *handlers,
                   Connection **ret) {
        Connection *c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->handlers = handlers;
        c->fd = fd;
        c->cred = *cred;
        int r = sd_event_add_io(e, &c->io, fd, EPOLLIN | EPOLLRDHUP, on_connection_io, c);
        if (r < 0) {
                safe_close(fd);
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

void connection_free(Connection *c) {
        if (!c)
                return;
        if (c->op && c->op_detach)
                c->op_detach(c->op);
        while (c->out_head) {
                OutBuf *b = c->out_head;
                c->out_head = b->next;
                free(b);
        }
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        free(c);
}

void connection_op_done(Connection *c) {
        c->busy = false;
        c->op = NULL;
        c->op_detach = NULL;
}

/* Sends queued datagrams until the socket is full. */
static int connection_flush(Connection *c) {
        while (c->out_head) {
                OutBuf *b = c->out_head;
                ssize_t k = send(c->fd, b->data, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return negative_errno();
                }
                c->out_head = b->next;
                if (!c->out_head)
                        c->out_tail = NULL;
                c->out_bytes -= b->len;
                free(b);
        }
        update_events(c);
        return 0;
}

/* Packs resp into the output queue, tagged with request id `id`, followed by
 * extra (already encoded fields of Response, may be NULL). */
static int connection_queue(Connection *c, Kybernate__V1__Response *resp, uint64_t id, bool final,
                            const uint8_t *extra, size_t extra_len) {
        resp->has_version = true;
        resp->version = KYB_PROTOCOL_VERSION;
        resp->has_id = true;
        resp->id = id;
        resp->has_more = !final;
        resp->more = !final;
        if (!resp->has_error) {
                resp->has_error = true;
                resp->error = 0;
        }

        size_t len = protobuf_c_message_get_packed_size(&resp->base);
        if (len + extra_len > KYB_MSG_MAX)
                return -EMSGSIZE;
        if (c->out_bytes + len + extra_len > OUT_BYTES_MAX)
                return -ENOBUFS;
        OutBuf *b = malloc(sizeof(OutBuf) + len + extra_len);
        if (!b)
                return -ENOMEM;
        b->next = NULL;
        b->len = protobuf_c_message_pack(&resp->base, b->data);
        if (extra_len > 0) {
                memcpy(b->data + b->len, extra, extra_len);
                b->len += extra_len;
        }
        if (c->out_tail)
                c->out_tail->next = b;
        else
                c->out_head = b;
        c->out_tail = b;
        c->out_bytes += b->len;
        return 0;
}

int connection_send(Connection *c, Kybernate__V1__Response *resp, bool final) {
        return connection_send_encoded(c, resp, NULL, 0, final);
}

int connection_send_encoded(Connection *c, Kybernate__V1__Response *resp, const uint8_t *extra,
                            size_t extra_len, bool final) {
        int r = connection_queue(c, resp, c->request_id, final, extra, extra_len);
        if (final)
                connection_op_done(c);
        if (r < 0) {
                /* A final answer that cannot be queued would leave the client
                 * waiting forever: hang up instead, so it sees the failure. */
                if (final)
                        (void)shutdown(c->fd, SHUT_RDWR);
                return r;
        }
        return connection_flush(c);
}

void connection_send_aside(Connection *c, uint64_t id, int error, const char *message) {
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        resp.has_error = true;
        resp.error = error;
        resp.message = (char *)message;
        if (connection_queue(c, &resp, id, true, NULL, 0) >= 0)
                (void)connection_flush(c);
}

int connection_send_error(Connection *c, int error, const char *fmt, ...) {
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (error < 0)
                error = -error;
        if (error == 0)
                error = EIO;
        resp.has_error = true;
        resp.error = error;
        resp.message = msg ? msg : (char *)"out of memory";
        log_debug("Request %" PRIu64 " from uid %u failed: %s", c->request_id, (unsigned)c->cred.uid,
                  resp.message);
        return connection_send(c, &resp, true);
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;
        int r;

        if (revents & EPOLLOUT) {
                r = connection_flush(c);
                if (r < 0)
                        goto close;
        }
        if (revents & EPOLLIN) {
                _cleanup_free_ uint8_t *buf = NULL;
                size_t len = 0;
                r = kyb_recv_datagram(fd, &buf, &len);
                if (r == -EAGAIN)
                        return 0;
                if (r == -EMSGSIZE) {
                        /* The oversized datagram was discarded; answer and go on. */
                        char msg[64];
                        snprintf(msg, sizeof(msg), "request larger than %zu bytes refused", KYB_MSG_MAX);
                        connection_send_aside(c, 0, EMSGSIZE, msg);
                        return 0;
                }
                if (r < 0)
                        goto close;
                if (r == 0 && (revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
                        goto close; /* EOF: the peer is gone */
                /* else an empty datagram: an (invalid) empty request */
                c->handlers->datagram(c, buf, len);
                return 0;
        }
        if (revents & (EPOLLHUP | EPOLLERR))
                goto close;
        return 0;
close:
        /* Never return an error: that would disable this source for good. */
        c->handlers->hangup(c);
        return 0;
}
