/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* One client connection: a SOCK_SEQPACKET socket on the loop, its peer's
 * credentials, the request running on it and the queue of answers going out
 * (with backpressure). The server (server.h) creates, dispatches and drops
 * connections; the operations (ops.h) answer through them. */

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
        size_t out_bytes;
        Connection *next, *prev; /* the owner's list */
};

#define OUT_BYTES_MAX (64u << 20)

/* A connection over fd (takes it, also on failure) on the loop e. */
int connection_new(sd_event *e, int fd, const struct ucred *cred, const ConnectionHandlers *handlers,
                   Connection **ret);
/* Detaches the running operation, drops the queued answers, closes. */
void connection_free(Connection *c);

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
/* Marks the running request finished (error replies do this too). */
void connection_op_done(Connection *c);
