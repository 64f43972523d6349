/* SPDX-License-Identifier: Apache-2.0 */
/* The ttrpc client: calls with their stream ids, timeouts and replies. */
#include "ttrpc-internal.h"

typedef struct Pending {
        struct Pending *next;
        TtrpcClient *client;
        uint32_t stream_id;
        sd_event_source *timer;
        TtrpcReplyFn cb;
        void *userdata;
} Pending;

struct TtrpcClient {
        Channel ch; /* first: the channel callbacks cast back */
        bool freed;
        sd_event *event;
        char *path;
        uint32_t next_stream_id;
        Pending *pending;
        size_t n_pending;
};

static void client_free(Channel *ch) {
        TtrpcClient *c = (TtrpcClient *)ch;
        sd_event_unref(c->event);
        free(c->path);
        free(c);
}

static Pending *pending_take(TtrpcClient *c, uint32_t stream_id) {
        for (Pending **p = &c->pending; *p; p = &(*p)->next)
                if ((*p)->stream_id == stream_id) {
                        Pending *found = *p;
                        *p = found->next;
                        c->n_pending--;
                        return found;
                }
        return NULL;
}

/* Runs the callback of a call already unlinked from the list, and frees it. */
static void pending_finish(Pending *p, int code, const char *message, const uint8_t *payload, size_t len) {
        p->timer = sd_event_source_disable_unref(p->timer);
        p->cb(p->client, code, message, payload, len, p->userdata);
        free(p);
}

static void client_fail_all(TtrpcClient *c, int code, const char *message) {
        /* Detach first: callbacks may issue new calls, which must not be failed here. */
        Pending *list = c->pending;
        c->pending = NULL;
        c->n_pending = 0;
        channel_ref(&c->ch);
        while (list) {
                Pending *p = list;
                list = p->next;
                pending_finish(p, code, message, NULL, 0);
        }
        channel_unref(&c->ch);
}

static void client_frame(Channel *ch, const TtrpcFrameHeader *h, const uint8_t *data) {
        TtrpcClient *c = (TtrpcClient *)ch;
        Pending *p;

        if (h->type != TTRPC_TYPE_RESPONSE || !(p = pending_take(c, h->stream_id)))
                return; /* not a reply, or the call timed out meanwhile */
        Ttrpc__Response *resp = ttrpc__response__unpack(NULL, h->length, data);
        if (!resp)
                pending_finish(p, TTRPC_INTERNAL, "unmarshal response error", NULL, 0);
        else if (resp->status && resp->status->code != TTRPC_OK)
                pending_finish(p, resp->status->code, resp->status->message, NULL, 0);
        else
                pending_finish(p, TTRPC_OK, NULL, resp->payload.data, resp->payload.len);
        if (resp)
                ttrpc__response__free_unpacked(resp, NULL);
}

static void client_oversize(Channel *ch, const TtrpcFrameHeader *h) {
        Pending *p = pending_take((TtrpcClient *)ch, h->stream_id);
        if (p)
                pending_finish(p, TTRPC_RESOURCE_EXHAUSTED, "reply exceeds maximum message size", NULL, 0);
}

static const char closed_message[] = "ttrpc: closed";

static void client_closed(Channel *ch) {
        client_fail_all((TtrpcClient *)ch, TTRPC_UNAVAILABLE, closed_message);
}

static const ChannelOps client_ops = {
        .frame = client_frame,
        .oversize = client_oversize,
        .closed = client_closed,
        .free = client_free,
};

/* path NULL: the caller opens the channel, and there is no reconnecting. */
static int client_alloc(sd_event *event, const char *path, TtrpcClient **ret) {
        TtrpcClient *c = new0(TtrpcClient, 1);
        if (!c)
                return -ENOMEM;
        *c = (TtrpcClient){.ch = {.ops = &client_ops, .n_ref = 1, .fd = -EBADF}, .next_stream_id = 1};
        if (path && !(c->path = strdup(path))) {
                free(c);
                return -ENOMEM;
        }
        c->event = sd_event_ref(event);
        *ret = c;
        return 0;
}

int ttrpc_client_new(sd_event *event, const char *address, TtrpcClient **ret) {
        const char *path = startswith(address, "unix://") ?: address;
        if (isempty(path) || strlen(path) >= sizeof(((struct sockaddr_un *)NULL)->sun_path))
                return -EINVAL;
        return client_alloc(event, path, ret);
}

TtrpcClient *ttrpc_client_free(TtrpcClient *c) {
        if (!c)
                return NULL;
        c->freed = true;
        channel_close(&c->ch);
        client_fail_all(c, TTRPC_CANCELLED, "ttrpc: client closed");
        channel_unref(&c->ch);
        return NULL;
}

static int client_connect(TtrpcClient *c) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!c->path)
                return -ENOTCONN;
        strncpy(sa.sun_path, c->path, sizeof(sa.sun_path) - 1);
        if (sa.sun_path[0] == '@') /* abstract namespace */
                sa.sun_path[0] = 0;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return negative_errno();
        /* Unix sockets connect at once or fail (EAGAIN: backlog full). */
        if (connect(fd, (struct sockaddr *)&sa, offsetof(struct sockaddr_un, sun_path) + strlen(c->path)) <
            0)
                return negative_errno();
        r = channel_open(&c->ch, c->event, fd);
        if (r < 0)
                return r;
        TAKE_FD(fd);
        c->next_stream_id = 1;
        return 0;
}

static int client_on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Pending *p = userdata;
        TtrpcClient *c = p->client;

        channel_ref(&c->ch);
        p = pending_take(c, p->stream_id);
        if (p)
                pending_finish(p, TTRPC_DEADLINE_EXCEEDED, "context deadline exceeded", NULL, 0);
        channel_unref(&c->ch);
        return 0;
}

int ttrpc_client_call(TtrpcClient *c, const char *service, const char *method, const ProtobufCMessage *req,
                      const TtrpcKeyValuePair *metadata, size_t n_metadata, uint64_t timeout_usec,
                      TtrpcReplyFn cb, void *userdata) {
        Ttrpc__Request env = TTRPC__REQUEST__INIT;
        size_t n = req ? protobuf_c_message_get_packed_size(req) : 0;
        _cleanup_free_ uint8_t *payload = malloc(n + 1);
        _cleanup_free_ Ttrpc__KeyValue *kvs = new0(Ttrpc__KeyValue, n_metadata + 1);
        _cleanup_free_ Ttrpc__KeyValue **kvp = new0(Ttrpc__KeyValue *, n_metadata + 1);
        Pending *p;
        int r;

        if (c->freed)
                return -ESHUTDOWN;
        if (n > TTRPC_MAX_MESSAGE_SIZE)
                return -EMSGSIZE;
        if (!payload || !kvs || !kvp)
                return -ENOMEM;
        for (size_t i = 0; i < n_metadata; i++) {
                kvs[i] = (Ttrpc__KeyValue)TTRPC__KEY_VALUE__INIT;
                kvs[i].key = (char *)metadata[i].key;
                kvs[i].value = (char *)metadata[i].value;
                kvp[i] = &kvs[i];
        }
        env.service = (char *)service;
        env.method = (char *)method;
        env.payload = (ProtobufCBinaryData){n > 0 ? protobuf_c_message_pack(req, payload) : 0, payload};
        env.timeout_nano = (int64_t)(MIN(timeout_usec, (uint64_t)INT64_MAX / NSEC_PER_USEC) * NSEC_PER_USEC);
        env.n_metadata = n_metadata;
        env.metadata = kvp;
        if (c->ch.fd < 0) {
                r = client_connect(c);
                if (r < 0)
                        return r;
        }
        p = new0(Pending, 1);
        if (!p)
                return -ENOMEM;
        *p = (Pending){.client = c, .stream_id = c->next_stream_id, .cb = cb, .userdata = userdata};
        if (timeout_usec > 0) {
                r = sd_event_add_time_relative(c->event, &p->timer, CLOCK_MONOTONIC, timeout_usec, 0,
                                               client_on_timeout, p);
                if (r < 0) {
                        free(p);
                        return r;
                }
        }
        r = channel_send(&c->ch, p->stream_id, TTRPC_TYPE_REQUEST, &env.base);
        if (r < 0) {
                sd_event_source_disable_unref(p->timer);
                free(p);
                return r;
        }
        c->next_stream_id += 2;
        p->next = c->pending;
        c->pending = p;
        c->n_pending++;
        return 0;
}

size_t ttrpc_client_pending(TtrpcClient *c) {
        return c->n_pending;
}

static void *memdup(const void *p, size_t n) {
        void *q = malloc(n);
        return q ? memcpy(q, p, n) : NULL;
}

typedef struct SyncReply {
        bool done;
        int error, code;
        char *message;
        uint8_t *payload;
        size_t len;
} SyncReply;

static void sync_reply(TtrpcClient *c, int code, const char *message, const uint8_t *payload, size_t len,
                       void *userdata) {
        SyncReply *s = userdata;

        s->done = true;
        s->code = code;
        if (message == closed_message)
                s->error = -ECONNRESET;
        else if ((code != TTRPC_OK && !(s->message = strdup(message))) ||
                 (code == TTRPC_OK && len > 0 && !(s->payload = memdup(payload, len))))
                s->error = -ENOMEM;
        s->len = s->payload ? len : 0;
}

/* A client on a private loop, on a duplicate of fd. */
int ttrpc_call_sync(int fd, const char *service, const char *method, const ProtobufCMessage *req,
                    int *ret_code, char **ret_message, uint8_t **ret_payload, size_t *ret_len) {
        sd_event *e = NULL;
        TtrpcClient *c = NULL;
        SyncReply s = {};
        int r, dfd;

        r = sd_event_new(&e);
        if (r >= 0)
                r = client_alloc(e, NULL, &c);
        if (r >= 0) {
                dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                r = dfd < 0 ? negative_errno() : channel_open(&c->ch, e, dfd);
                if (r < 0)
                        safe_close(dfd);
        }
        if (r >= 0)
                r = ttrpc_client_call(c, service, method, req, NULL, 0, 0, sync_reply, &s);
        while (r >= 0 && !s.done)
                r = sd_event_run(e, UINT64_MAX);
        ttrpc_client_free(c);
        sd_event_unref(e);
        if (r >= 0 && s.error < 0)
                r = s.error;
        if (r >= 0 && ret_code)
                *ret_code = s.code;
        if (r >= 0 && ret_len)
                *ret_len = s.len;
        if (r >= 0 && ret_message)
                *ret_message = TAKE_PTR(s.message);
        if (r >= 0 && ret_payload)
                *ret_payload = TAKE_PTR(s.payload);
        free(s.message);
        free(s.payload);
        return r < 0 ? r : 0;
}
