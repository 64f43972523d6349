/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The shim's state, shared by the Task service (service.c) and the model
 * (process.c) and the verbs below it: the loop, the reaper, the server, the
 * publisher and the containers. One Shim serves every container of a pod (or a
 * single container) in one process. */

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
        struct NetLock *netlocks; /* loopback holds watched until their pod's members run (netlock.h) */
        bool exiting;
        uint64_t exit_deadline_usec;
} Shim;

/* Identifiers containerd accepts: [A-Za-z0-9][A-Za-z0-9_.-]*, at most 76 chars. */
bool shim_valid_id(const char *id);
