/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The daemon's shared state: the configuration, the store and its catalog,
 * and counters of what is running. The server (server.h) and the operations
 * (ops.h) work on it; it knows neither of them. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "catalog.h"
#include "config.h"
#include "util.h"

typedef struct VerifyOp VerifyOp;

typedef struct Manager {
        sd_event *event;
        const Config *config;
        Catalog *catalog;
        int lock_fd;            /* flock on <store>/lock: one daemon per store */
        unsigned n_connections; /* open client connections (the server counts them) */
        unsigned n_jobs;        /* running checkpoint/verify operations */
        /* Checksum verifications (ops.c): hashing children running (at most
         * config->max_verify_jobs) and the queue of those waiting, root's
         * first. */
        unsigned n_verify_running, n_verify_queued;
        VerifyOp *verify_queue;
        char *checkpoints_dir, *staging_dir, *logs_dir, *catalog_path;
        char *runc_version, *criu_version, *kernel_version;
        int64_t started_ns;
        bool no_spawn;         /* tests/fuzzing: refuse operations that run programs */
        struct Pusher *pusher; /* push_to (push.h): NULL until the first push */
        struct PullOp *pulls;  /* registry pulls under way (ops-pull.c) */
} Manager;

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

/* The directory of checkpoint `id` in the store. */
int manager_checkpoint_dir(Manager *m, const char *id, char **ret);
/* Finds a catalog row by reference (id, prefix, name, ns/pod/container);
 * on failure *ret_msg explains (static or formatted into msgbuf). */
int manager_lookup(Manager *m, const char *ref, CatalogEntry *ret, char *msgbuf, size_t msgsize);
/* Removes a checkpoint's directory and row. */
int manager_remove_checkpoint(Manager *m, const char *id);
