/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>

#include "connection.h"
#include "log.h"

struct OutBuf {
        OutBuf *next;
        size_t len;
        uint8_t data[];
};

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* What a queued buffer counts against the bounds: its whole allocation. */
static size_t outbuf_cost(size_t len) {
        return sizeof(OutBuf) + len;
}

static void update_events(Connection *c) {
        /* Always reading: a peer that sends on without reading its replies
         * makes the queue grow to its bound and is dropped there (a peer
         * that follows the protocol has read every reply before it sends). */
        uint32_t ev = EPOLLIN | EPOLLRDHUP | (c->out_head ? EPOLLOUT : 0);
        (void)sd_event_source_set_io_events(c->io, ev);
}

static void connection_clear_queue(Connection *c) {
        while (c->out_head) {
                OutBuf *b = c->out_head;
                c->out_head = b->next;
                free(b);
        }
        c->out_tail = NULL;
        if (c->out_total)
                *c->out_total -= c->out_bytes;
        c->out_bytes = 0;
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
        connection_clear_queue(c);
        sd_event_source_disable_unref(c->idle);
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        free(c);
}

static int on_idle(sd_event_source *s, uint64_t usec, void *userdata) {
        Connection *c = userdata;
        if (c->busy)
                return 0;
        log_debug("Closing the idle connection of uid %u", (unsigned)c->cred.uid);
        c->handlers->hangup(c);
        return 0;
}

static void idle_arm(Connection *c) {
        if (!c->idle)
                return;
        uint64_t now;
        sd_event *e = sd_event_source_get_event(c->idle);
        if (sd_event_now(e, CLOCK_MONOTONIC, &now) < 0)
                return;
        (void)sd_event_source_set_time(c->idle, now + c->idle_usec);
        (void)sd_event_source_set_enabled(c->idle, SD_EVENT_ONESHOT);
}

int connection_set_idle_timeout(Connection *c, uint64_t usec) {
        c->idle_usec = usec;
        c->idle = sd_event_source_disable_unref(c->idle);
        if (usec == 0)
                return 0;
        int r = sd_event_add_time_relative(sd_event_source_get_event(c->io), &c->idle, CLOCK_MONOTONIC, usec,
                                           0, on_idle, c);
        if (r < 0)
                return r;
        if (c->busy)
                (void)sd_event_source_set_enabled(c->idle, SD_EVENT_OFF);
        return 0;
}

void connection_op_begin(Connection *c, uint64_t request_id) {
        c->busy = true;
        c->request_id = request_id;
        if (c->idle)
                (void)sd_event_source_set_enabled(c->idle, SD_EVENT_OFF);
}

void connection_op_done(Connection *c) {
        c->busy = false;
        c->op = NULL;
        c->op_detach = NULL;
        idle_arm(c);
}

/* Over a bound: free the queue now and hang up; the peer sees EOF and the
 * server drops the connection on the hang-up. */
static void connection_overflow(Connection *c, size_t want) {
        log_warning("Disconnecting uid %u (pid %d): %zu bytes of replies it does not read, %zu more would "
                    "go over the bound (%zu for the connection, %zu for all)",
                    (unsigned)c->cred.uid, (int)c->cred.pid, c->out_bytes, want,
                    c->out_max ? c->out_max : (size_t)OUT_BYTES_MAX, c->out_total_max);
        connection_clear_queue(c);
        /* Give the freed heap back rather than keep the flood's high mark. */
        (void)malloc_trim(0);
        c->dead = true;
        (void)shutdown(c->fd, SHUT_RDWR);
}

/* Sends queued datagrams until the socket is full. */
static int connection_flush(Connection *c) {
        while (c->out_head) {
                OutBuf *b = c->out_head;
                ssize_t k = send_nowait(c->fd, b->data, b->len);
                if (k == -EAGAIN)
                        break;
                if (k < 0)
                        return (int)k;
                c->out_head = b->next;
                if (!c->out_head)
                        c->out_tail = NULL;
                c->out_bytes -= outbuf_cost(b->len);
                if (c->out_total)
                        *c->out_total -= outbuf_cost(b->len);
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
        if (c->dead)
                return -ECONNRESET;
        size_t cost = outbuf_cost(len + extra_len);
        size_t max = c->out_max ? c->out_max : OUT_BYTES_MAX;
        if (c->out_bytes + cost > max ||
            (c->out_total && c->out_total_max && *c->out_total + cost > c->out_total_max)) {
                connection_overflow(c, cost);
                return -ENOBUFS;
        }
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
        c->out_bytes += outbuf_cost(b->len);
        if (c->out_total)
                *c->out_total += outbuf_cost(b->len);
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
        va_list ap;

        va_start(ap, fmt);
        _cleanup_free_ char *msg = strdup_vprintf(fmt, ap);
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

        if (c->dead)
                goto close;
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
