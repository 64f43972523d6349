/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The Task service: containers and their processes, driven through runc,
 * answering containerd over ttrpc and publishing its events. One Shim serves
 * every container of a pod (or a single container) in one process. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "events.h"
#include "reaper.h"
#include "ttrpc.h"

typedef struct Container Container;

typedef struct Shim {
        sd_event *event;
        Reaper *reaper;
        TtrpcServer *server;
        Publisher *publisher;
        char *ns;
        char *id;
        char *socket_path; /* our listening socket, removed at exit */
        Container *containers;
        bool exiting;
        uint64_t exit_deadline_usec;
} Shim;

int shim_service_register(Shim *s);
/* Frees every container record (no runc calls); for exit paths. */
void shim_service_done(Shim *s);
/* Asks the loop to exit once queued events are out (bounded wait). */
void shim_request_exit(Shim *s);

/* Identifiers containerd accepts: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 76 chars. */
bool shim_valid_id(const char *id);
