/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The server: the listening socket (bound, or from systemd), the client
 * connections it accepted with their peers' credentials, and the decoding,
 * permission check and dispatch of their requests to the operations. */

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
} Server;

#define CONNECTIONS_MAX 256u

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

/* The one place connections come in and go: a connection over fd (takes it)
 * with the given peer credentials; `reader` says the peer is in read_group. */
int server_add_connection(Server *s, int fd, const struct ucred *cred, bool reader, Connection **ret);
void server_drop_connection(Server *s, Connection *c);

/* Decodes and dispatches one request datagram (the fuzz entry point). */
void server_handle_datagram(Connection *c, const uint8_t *buf, size_t len);
