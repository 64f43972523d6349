/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* One client connection: a SOCK_SEQPACKET socket on the loop, its peer's
 * credentials, the request running on it and the queue of answers going out.
 * The server (server.h) creates, dispatches and drops connections; the
 * operations (ops.h) answer through them.
 *
 * Bounds (set by the server from the configuration):
 * - Replies the peer does not read wait in the output queue. Each queued
 *   reply is accounted with its allocation (sizeof(OutBuf) + bytes). When a
 *   reply would take the queue over out_max, or the sum of all queues
 *   (*out_total) over out_total_max (0: not bounded, for root), the queue is
 *   freed at once, the socket shut down and the connection marked dead: the
 *   server drops it on the hang-up that follows. So memory for unread replies
 *   is at most max_reply_memory for non-root peers together, plus
 *   max_reply_queue per root connection.
 * - A connection with no request running (not busy) for idle_usec is handed
 *   to handlers->hangup (idle_usec 0: never). A request in flight (a long
 *   checkpoint) keeps it open however long it runs. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "kyb-client.h"
#include "util.h"

typedef struct Manager Manager;
typedef struct Connection Connection;
typedef struct OutBuf OutBuf;

/* What the owner of a connection does with it. */
typedef struct ConnectionHandlers {
        /* A datagram arrived (an empty one too: an invalid empty request). */
        void (*datagram)(Connection *c, const uint8_t *buf, size_t len);
        /* The peer hung up or the socket failed: the owner drops c. */
        void (*hangup)(Connection *c);
} ConnectionHandlers;

struct Connection {
        Manager *manager; /* the daemon state its requests work on */
        void *owner;      /* the server that accepted it */
        const ConnectionHandlers *handlers;
        int fd;
        sd_event_source *io;
        struct ucred cred; /* the peer: SO_PEERCRED when it connected */
        bool privileged;   /* uid 0: may mutate */
        bool reader;       /* privileged or member of read_group: may read */
        bool busy;         /* a request is running */
        uint64_t request_id;
        void *op;                    /* the running async operation, if any */
        void (*op_detach)(void *op); /* tells op that this connection is gone */
        OutBuf *out_head, *out_tail;
        size_t out_bytes;        /* accounted bytes in the output queue */
        size_t out_max;          /* bound on out_bytes (0: OUT_BYTES_MAX) */
        size_t *out_total;       /* the sum over all connections (may be NULL) */
        size_t out_total_max;    /* bound on *out_total for this one (0: none) */
        bool dead;               /* shut down for going over a bound; being dropped */
        uint64_t idle_usec;      /* 0: no idle timeout */
        sd_event_source *idle;   /* the idle timer, armed while not busy */
        Connection *next, *prev; /* the owner's list */
};

/* The per-connection bound when out_max is 0. */
#define OUT_BYTES_MAX (64u << 20)

/* A connection over fd (takes it, also on failure) on the loop e. */
int connection_new(sd_event *e, int fd, const struct ucred *cred, const ConnectionHandlers *handlers,
                   Connection **ret);
/* Detaches the running operation, drops the queued answers, closes. */
void connection_free(Connection *c);

/* Arms the idle timeout (usec 0: none) on the connection's loop. */
int connection_set_idle_timeout(Connection *c, uint64_t usec);
/* A request starts: busy, its id, the idle timer stopped. */
void connection_op_begin(Connection *c, uint64_t request_id);

/* Replies. `final` false sends an intermediate message (more = true). */
int connection_send(Connection *c, Kybernate__V1__Response *resp, bool final);
/* Like connection_send, with `extra` (encoded fields of Response, e.g. a
 * result built incrementally) appended to resp's encoding; protobuf allows
 * fields in any order, so the result is one valid Response. */
int connection_send_encoded(Connection *c, Kybernate__V1__Response *resp, const uint8_t *extra,
                            size_t extra_len, bool final);
int connection_send_error(Connection *c, int error, const char *fmt, ...) _printf_(3, 4);
/* An error answer to request `id` outside the running request (which stays
 * as it is): for a datagram that arrived while the connection was busy. */
void connection_send_aside(Connection *c, uint64_t id, int error, const char *message);
/* Marks the running request finished (error replies do this too) and
 * re-arms the idle timer. */
void connection_op_done(Connection *c);
