/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The server: the listening socket (bound, or from systemd), the client
 * connections it accepted with their peers' credentials, and the decoding,
 * permission check and dispatch of their requests to the operations.
 *
 * Limits, so that a read_group member cannot starve root (the shims and
 * root's kybernatectl are uid 0), all from the configuration:
 * - Connections: non-root peers may hold max_connections together and
 *   max_connections_per_uid each; past that a new one is refused (closed at
 *   once). Root's connections are not counted and never refused, so other
 *   users' connections cannot keep root out.
 * - idle_timeout: a connection with no request running is closed after it
 *   (connection.h); one waiting on a long checkpoint is busy, not idle.
 * - Unread replies: max_reply_queue per connection, max_reply_memory for
 *   all connections together (connection.h says who is dropped when).
 * - Checksum verifications: max_verify_jobs hashing children at once, the
 *   rest queued, and killed when their client goes (ops.h). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "connection.h"
#include "manager.h"

typedef struct Server {
        Manager *manager;
        int listen_fd;
        bool listen_fd_owned; /* false when it came from systemd */
        sd_event_source *listen_source;
        Connection *connections;
        unsigned n_unprivileged;      /* connections of non-root peers */
        size_t out_total;             /* bytes of unread replies of all connections */
        uint64_t refused_logged_usec; /* the last refused connection logged */
        unsigned refused_unlogged;    /* refused since without a log line */
} Server;

int server_new(Manager *m, Server **ret);
/* Drops every connection (their running operations go on detached). */
Server *server_free(Server *s);
static inline void server_freep(Server **s) {
        server_free(*s);
}
/* fd >= 0: a listening socket from systemd; else bind config->socket. */
int server_listen(Server *s, int fd);
/* Stops accepting; the connections stay. */
void server_stop_listening(Server *s);

/* The one place connections come in and go: a connection over fd (takes it,
 * also on failure) with the given peer credentials; `reader` says the peer is
 * in read_group. -EUSERS: a non-root peer over max_connections_per_uid;
 * -EMFILE: non-root peers over max_connections. */
int server_add_connection(Server *s, int fd, const struct ucred *cred, bool reader, Connection **ret);
void server_drop_connection(Server *s, Connection *c);

/* Decodes and dispatches one request datagram (the fuzz entry point). */
void server_handle_datagram(Connection *c, const uint8_t *buf, size_t len);
