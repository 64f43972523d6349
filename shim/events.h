/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Publishes task events to containerd (Events/Forward over ttrpc at
 * $TTRPC_ADDRESS). Events are queued and sent one at a time, so they arrive
 * in the order they were published; a failed send is retried with backoff
 * (containerd may be restarting), and no RPC ever waits for a send. */

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

typedef struct Publisher Publisher;

int publisher_new(sd_event *e, const char *address, const char *ns, Publisher **ret);
Publisher *publisher_free(Publisher *p);
/* Queues event (a containerd.events.* message) under topic, e.g. "/tasks/exit". */
int publisher_publish(Publisher *p, const char *topic, const ProtobufCMessage *event);
/* Number of events not yet delivered. */
size_t publisher_queued(Publisher *p);
