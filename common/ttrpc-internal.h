/* SPDX-License-Identifier: Apache-2.0 */
/* What the ttrpc server (ttrpc-server.c) and client (ttrpc-client.c) share:
 * the Channel, one non-blocking socket with a read buffer that cuts frames out
 * of the byte stream and a queue of whole frames to write (ttrpc.c). */
#pragma once

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "google/rpc/status.pb-c.h"
#include "log.h"
#include "ttrpc.h"
#include "ttrpc/ttrpc.pb-c.h"
#include "util.h"

#define READ_CHUNK ((size_t)64 * 1024)
/* A peer that sends requests but does not read the replies is not read from
 * either once this much output is queued. */
#define OUT_MAX ((size_t)16 << 20)
#define MAX_ERROR_MESSAGE ((size_t)16 * 1024)
#define new0(t, n) ((t *)calloc((n), sizeof(t)))
#define OVERSIZE_FMT "message length %zu exceed maximum message size of %u"

/* One whole frame waiting to be written. */
typedef struct OutBuf {
        struct OutBuf *next;
        size_t len, done;
        uint8_t data[];
} OutBuf;

typedef struct Channel Channel;
typedef struct ChannelOps {
        /* A complete frame (length within the limit). */
        void (*frame)(Channel *ch, const TtrpcFrameHeader *h, const uint8_t *data);
        /* An oversize frame whose data has been skipped. */
        void (*oversize)(Channel *ch, const TtrpcFrameHeader *h);
        /* The socket failed or the peer closed it; the channel is closed already. */
        void (*closed)(Channel *ch);
        /* Frees the owner when the last reference is gone. */
        void (*free)(Channel *ch);
} ChannelOps;

/* Embedded first in its owner (Conn, TtrpcClient), which it carries the
 * reference count of, so callbacks can drop the owner safely. */
struct Channel {
        const ChannelOps *ops;
        unsigned n_ref;
        int fd;
        unsigned gen; /* bumped on open and close, so loops notice either */
        sd_event_source *io;
        uint8_t *rbuf;
        size_t rlen, rcap;
        uint32_t discard; /* bytes of an oversize frame still to skip */
        TtrpcFrameHeader discard_hdr;
        OutBuf *out, *out_tail;
        size_t out_bytes, out_max; /* stop reading while more than out_max is queued (0: no limit) */
};

void channel_ref(Channel *ch);
void channel_close(Channel *ch);
void channel_unref(Channel *ch);
int channel_send(Channel *ch, uint32_t stream_id, uint8_t type, const ProtobufCMessage *m);
int channel_open(Channel *ch, sd_event *event, int fd);
