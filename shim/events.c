/* SPDX-License-Identifier: Apache-2.0 */
#include "events.h"
#include "containerd/services/events/ttrpc/v1/events.pb-c.h"
#include "log.h"
#include "ttrpc.h"
#include "util.h"

#define FORWARD_TIMEOUT_USEC (5 * USEC_PER_SEC)
/* Backoff doubles from 100 ms up to 2 s; give up after about a minute, as a
 * containerd that stays away that long is not restarting but gone. */
#define RETRY_FIRST_USEC (100 * USEC_PER_MSEC)
#define RETRY_MAX_USEC (2 * USEC_PER_SEC)
#define RETRY_ATTEMPTS 35
#define QUEUE_MAX 4096

typedef struct Event {
        char *topic;
        uint8_t *any_value;
        size_t any_len;
        char *type_url;
        int64_t at_ns;
        unsigned attempts;
        struct Event *next;
} Event;

struct Publisher {
        sd_event *event;
        TtrpcClient *client;
        char *ns;
        Event *head, **tail;
        size_t queued;
        bool in_flight;
        sd_event_source *retry;
};

static void event_free(Event *ev) {
        if (!ev)
                return;
        free(ev->topic);
        free(ev->any_value);
        free(ev->type_url);
        free(ev);
}

static void send_head(Publisher *p);

static void pop_head(Publisher *p) {
        Event *ev = p->head;
        p->head = ev->next;
        if (!p->head)
                p->tail = &p->head;
        p->queued--;
        event_free(ev);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Publisher *p = userdata;
        p->retry = sd_event_source_disable_unref(p->retry);
        send_head(p);
        return 0;
}

/* NOLINTNEXTLINE(misc-no-recursion): pops an event per level, at most one level past a retry */
static void on_reply(TtrpcClient *c, int code, const char *message, const uint8_t *payload, size_t len,
                     void *userdata) {
        Publisher *p = userdata;
        Event *ev = p->head;

        p->in_flight = false;
        if (!ev)
                return;
        if (code == TTRPC_OK) {
                pop_head(p);
                send_head(p);
                return;
        }
        if (code == TTRPC_CANCELLED) /* publisher being freed */
                return;
        if (++ev->attempts >= RETRY_ATTEMPTS) {
                log_error("Dropping event %s after %u attempts: %s", ev->topic, ev->attempts, message);
                pop_head(p);
                send_head(p);
                return;
        }
        uint64_t delay = RETRY_FIRST_USEC << MIN(ev->attempts - 1, 5u);
        delay = MIN(delay, RETRY_MAX_USEC);
        log_debug("Forwarding %s failed (%s), retrying in %llu ms", ev->topic, message,
                  (unsigned long long)(delay / USEC_PER_MSEC));
        if (sd_event_add_time_relative(p->event, &p->retry, CLOCK_MONOTONIC, delay, 0, on_retry, p) < 0)
                log_error("Cannot schedule event retry, %s is stuck", ev->topic);
}

/* NOLINTNEXTLINE(misc-no-recursion): see on_reply */
static void send_head(Publisher *p) {
        Event *ev = p->head;
        if (!ev || p->in_flight || p->retry)
                return;

        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = ev->at_ns / (int64_t)NSEC_PER_SEC;
        ts.nanos = (int32_t)(ev->at_ns % (int64_t)NSEC_PER_SEC);
        Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
        any.type_url = ev->type_url;
        any.value = (ProtobufCBinaryData){.len = ev->any_len, .data = ev->any_value};
        Containerd__Services__Events__Ttrpc__V1__Envelope env =
                CONTAINERD__SERVICES__EVENTS__TTRPC__V1__ENVELOPE__INIT;
        env.timestamp = &ts;
        env.namespace_ = p->ns;
        env.topic = ev->topic;
        env.event = &any;
        Containerd__Services__Events__Ttrpc__V1__ForwardRequest req =
                CONTAINERD__SERVICES__EVENTS__TTRPC__V1__FORWARD_REQUEST__INIT;
        req.envelope = &env;
        const TtrpcKeyValuePair md[] = {{"containerd-namespace-ttrpc", p->ns}};

        p->in_flight = true;
        int r = ttrpc_client_call(p->client, "containerd.services.events.ttrpc.v1.Events", "Forward",
                                  &req.base, md, ELEMENTSOF(md), FORWARD_TIMEOUT_USEC, on_reply, p);
        if (r < 0) {
                p->in_flight = false;
                on_reply(p->client, TTRPC_UNAVAILABLE, strerror(-r), NULL, 0, p);
        }
}

int publisher_publish(Publisher *p, const char *topic, const ProtobufCMessage *event) {
        Event *ev;

        if (p->queued >= QUEUE_MAX)
                return log_error_errno(-ENOBUFS, "Event queue full, dropping %s", topic);
        ev = calloc(1, sizeof(*ev));
        if (!ev)
                return -ENOMEM;
        ev->topic = strdup(topic);
        ev->type_url = strdup(event->descriptor->name); /* bare full name, no type.googleapis.com/ */
        ev->any_len = protobuf_c_message_get_packed_size(event);
        ev->any_value = malloc(ev->any_len ? ev->any_len : 1);
        if (!ev->topic || !ev->type_url || !ev->any_value) {
                event_free(ev);
                return -ENOMEM;
        }
        protobuf_c_message_pack(event, ev->any_value);
        ev->at_ns = now_realtime_ns();
        *p->tail = ev;
        p->tail = &ev->next;
        p->queued++;
        send_head(p);
        return 0;
}

size_t publisher_queued(Publisher *p) {
        return p->queued;
}

int publisher_new(sd_event *e, const char *address, const char *ns, Publisher **ret) {
        Publisher *p = calloc(1, sizeof(*p));
        int r;

        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(e);
        p->tail = &p->head;
        p->ns = strdup(ns);
        if (!p->ns) {
                publisher_free(p);
                return -ENOMEM;
        }
        r = ttrpc_client_new(e, address, &p->client);
        if (r < 0) {
                publisher_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

Publisher *publisher_free(Publisher *p) {
        if (!p)
                return NULL;
        p->retry = sd_event_source_disable_unref(p->retry);
        ttrpc_client_free(p->client);
        while (p->head)
                pop_head(p);
        free(p->ns);
        sd_event_unref(p->event);
        free(p);
        return NULL;
}
