/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The daemon: one sd-event loop owning the listening socket, the client
 * connections, the catalog and the running operations. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "catalog.h"
#include "config.h"
#include "kyb-client.h"
#include "util.h"

typedef struct Manager Manager;
typedef struct Connection Connection;
typedef struct OutBuf OutBuf;

struct Connection {
        Manager *manager;
        int fd;
        sd_event_source *io;
        struct ucred cred;
        bool privileged; /* uid 0: may mutate */
        bool reader;     /* privileged or member of read_group: may read */
        bool busy;       /* a request is running */
        uint64_t request_id;
        void *op;                    /* the running async operation, if any */
        void (*op_detach)(void *op); /* tells op that this connection is gone */
        OutBuf *out_head, *out_tail;
        size_t out_bytes;
        Connection *next, *prev;
};

struct Manager {
        sd_event *event;
        const Config *config;
        Catalog *catalog;
        int lock_fd; /* flock on <store>/lock: one daemon per store */
        int listen_fd;
        bool listen_fd_owned; /* false when it came from systemd */
        sd_event_source *listen_source;
        Connection *connections;
        unsigned n_connections;
        unsigned n_jobs; /* running checkpoint/verify operations */
        char *checkpoints_dir, *staging_dir, *logs_dir, *catalog_path;
        char *runc_version, *criu_version, *kernel_version;
        int64_t started_ns;
        bool no_spawn; /* tests/fuzzing: refuse operations that run programs */
};

#define CONNECTIONS_MAX 256u
#define OUT_BYTES_MAX (64u << 20)

int manager_new(sd_event *e, const Config *config, Manager **ret);
Manager *manager_free(Manager *m);
static inline void manager_freep(Manager **m) {
        manager_free(*m);
}
/* Creates the store directories, opens the catalog and cleans up what an
 * earlier run left half-done. */
int manager_open_store(Manager *m);
int manager_startup_cleanup(Manager *m);
/* Probes runc/criu/kernel versions (before the loop runs; blocking is fine). */
void manager_probe_versions(Manager *m);
/* fd >= 0: a listening socket from systemd; else bind config->socket. */
int manager_listen(Manager *m, int fd);

/* A connection over fd (takes it) with the given peer credentials. */
int connection_new(Manager *m, int fd, const struct ucred *cred, bool reader, Connection **ret);
void connection_free(Connection *c);
/* Decodes and dispatches one request datagram (the fuzz entry point). */
void connection_handle_datagram(Connection *c, const uint8_t *buf, size_t len);

/* Replies. `final` false sends an intermediate message (more = true). */
int connection_send(Connection *c, Kybernate__V1__Response *resp, bool final);
/* Like connection_send, with `extra` (encoded fields of Response, e.g. a
 * result built incrementally) appended to resp's encoding; protobuf allows
 * fields in any order, so the result is one valid Response. */
int connection_send_encoded(Connection *c, Kybernate__V1__Response *resp, const uint8_t *extra,
                            size_t extra_len, bool final);
int connection_send_error(Connection *c, int error, const char *fmt, ...) _printf_(3, 4);
/* Marks the running request finished (error replies do this too). */
void connection_op_done(Connection *c);

/* Handlers (ops.c, checkpoint.c): each answers through c, now or later. */
void op_checkpoint(Connection *c, const Kybernate__V1__CheckpointRequest *req);
void op_resolve(Connection *c, const Kybernate__V1__ResolveRequest *req);
void op_list(Connection *c, const Kybernate__V1__ListRequest *req);
void op_inspect(Connection *c, const Kybernate__V1__InspectRequest *req);
void op_delete(Connection *c, const Kybernate__V1__DeleteRequest *req);
void op_prune(Connection *c, const Kybernate__V1__PruneRequest *req);
void op_pin(Connection *c, const Kybernate__V1__PinRequest *req);
void op_status(Connection *c, const Kybernate__V1__StatusRequest *req);
void op_export(Connection *c, const Kybernate__V1__ExportRequest *req);
void op_import(Connection *c, const Kybernate__V1__ImportRequest *req);

/* Shared helpers (ops.c). */
int manager_checkpoint_dir(Manager *m, const char *id, char **ret);
void entry_to_info(const CatalogEntry *e, const char *path, Kybernate__V1__CheckpointInfo *info,
                   Kybernate__V1__CheckpointOptions *opts);
/* Finds a catalog row by reference (id, prefix, name, ns/pod/container);
 * on failure *ret_msg explains (static or formatted into msgbuf). */
int manager_lookup(Manager *m, const char *ref, CatalogEntry *ret, char *msgbuf, size_t msgsize);
/* Removes a checkpoint's directory and row. */
int manager_remove_checkpoint(Manager *m, const char *id);
