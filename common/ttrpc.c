/* SPDX-License-Identifier: Apache-2.0 */
/* ttrpc on sd-event: the frame header, status codes, and the Channel that the
 * server (ttrpc-server.c) and the client (ttrpc-client.c) share: one
 * non-blocking socket with a read buffer that cuts frames out of the byte
 * stream (partial frames, many frames per read, oversize frames skipped) and
 * a queue of whole frames to write, so frames never interleave and the loop
 * never blocks. Wire rules: shared/docs/PROTOCOL.md section 1. */
#include "ttrpc-internal.h"

void ttrpc_header_encode(const TtrpcFrameHeader *h, uint8_t out[TTRPC_HEADER_SIZE]) {
        for (int i = 0; i < 4; i++) {
                out[i] = (uint8_t)(h->length >> (24 - 8 * i));
                out[4 + i] = (uint8_t)(h->stream_id >> (24 - 8 * i));
        }
        out[8] = h->type;
        out[9] = h->flags;
}

void ttrpc_header_decode(const uint8_t in[TTRPC_HEADER_SIZE], TtrpcFrameHeader *ret) {
        *ret = (TtrpcFrameHeader){
                .length = (uint32_t)in[0] << 24 | (uint32_t)in[1] << 16 | (uint32_t)in[2] << 8 | in[3],
                .stream_id = (uint32_t)in[4] << 24 | (uint32_t)in[5] << 16 | (uint32_t)in[6] << 8 | in[7],
                .type = in[8],
                .flags = in[9],
        };
}

static const struct {
        int error, code;
} errno_codes[] = {
        {ECANCELED, TTRPC_CANCELLED},       {EINVAL, TTRPC_INVALID_ARGUMENT},
        {EBADMSG, TTRPC_INVALID_ARGUMENT},  {ETIMEDOUT, TTRPC_DEADLINE_EXCEEDED},
        {ENOENT, TTRPC_NOT_FOUND},          {ESRCH, TTRPC_NOT_FOUND},
        {EEXIST, TTRPC_ALREADY_EXISTS},     {EPERM, TTRPC_PERMISSION_DENIED},
        {EACCES, TTRPC_PERMISSION_DENIED},  {ENOMEM, TTRPC_RESOURCE_EXHAUSTED},
        {ENOSPC, TTRPC_RESOURCE_EXHAUSTED}, {EMSGSIZE, TTRPC_RESOURCE_EXHAUSTED},
        {EBUSY, TTRPC_FAILED_PRECONDITION}, {EALREADY, TTRPC_FAILED_PRECONDITION},
        {ERANGE, TTRPC_OUT_OF_RANGE},       {EOPNOTSUPP, TTRPC_UNIMPLEMENTED},
        {ENOSYS, TTRPC_UNIMPLEMENTED},      {ECONNREFUSED, TTRPC_UNAVAILABLE},
        {ECONNRESET, TTRPC_UNAVAILABLE},    {ENOTCONN, TTRPC_UNAVAILABLE},
        {EPIPE, TTRPC_UNAVAILABLE},         {EAGAIN, TTRPC_UNAVAILABLE},
        {ESHUTDOWN, TTRPC_UNAVAILABLE},
};

int ttrpc_code_from_errno(int e) {
        e = e < 0 ? -e : e;
        if (e == 0)
                return TTRPC_OK;
        for (size_t i = 0; i < ELEMENTSOF(errno_codes); i++)
                if (errno_codes[i].error == e)
                        return errno_codes[i].code;
        return TTRPC_UNKNOWN;
}

static int frame_new(uint32_t stream_id, uint8_t type, const ProtobufCMessage *m, OutBuf **ret) {
        size_t n = m ? protobuf_c_message_get_packed_size(m) : 0;
        if (n > TTRPC_MAX_MESSAGE_SIZE)
                return -EMSGSIZE;
        OutBuf *b = malloc(sizeof(OutBuf) + TTRPC_HEADER_SIZE + n);
        if (!b)
                return -ENOMEM;
        *b = (OutBuf){.len = TTRPC_HEADER_SIZE + n};
        ttrpc_header_encode(&(TtrpcFrameHeader){.length = (uint32_t)n, .stream_id = stream_id, .type = type},
                            b->data);
        if (n > 0)
                protobuf_c_message_pack(m, b->data + TTRPC_HEADER_SIZE);
        *ret = b;
        return 0;
}

void channel_ref(Channel *ch) {
        ch->n_ref++;
}

void channel_close(Channel *ch) {
        if (ch->fd < 0)
                return;
        ch->io = sd_event_source_disable_unref(ch->io);
        ch->fd = safe_close(ch->fd);
        while (ch->out) {
                OutBuf *b = ch->out;
                ch->out = b->next;
                free(b);
        }
        ch->out_tail = NULL;
        ch->out_bytes = 0;
        ch->rlen = 0;
        ch->discard = 0;
        ch->gen++;
}

void channel_unref(Channel *ch) {
        if (--ch->n_ref > 0)
                return;
        channel_close(ch);
        free(ch->rbuf);
        ch->ops->free(ch);
}

static int channel_flush(Channel *ch) {
        while (ch->out) {
                OutBuf *b = ch->out;
                ssize_t n = send_nowait(ch->fd, b->data + b->done, b->len - b->done);
                if (n == -EAGAIN)
                        break;
                if (n < 0)
                        return (int)n;
                b->done += (size_t)n;
                if (b->done < b->len)
                        continue;
                ch->out_bytes -= b->len;
                ch->out = b->next;
                free(b);
        }
        if (!ch->out)
                ch->out_tail = NULL;
        return sd_event_source_set_io_events(
                ch->io,
                (ch->out ? EPOLLOUT : 0) | (ch->out_max == 0 || ch->out_bytes <= ch->out_max ? EPOLLIN : 0));
}

/* Queues one frame. Write errors are left for the io callback to find, so
 * this never calls back into the owner. */
int channel_send(Channel *ch, uint32_t stream_id, uint8_t type, const ProtobufCMessage *m) {
        OutBuf *b;
        int r;

        if (ch->fd < 0)
                return -ENOTCONN;
        r = frame_new(stream_id, type, m, &b);
        if (r < 0)
                return r;
        if (ch->out_tail)
                ch->out_tail->next = b;
        else
                ch->out = b;
        ch->out_tail = b;
        ch->out_bytes += b->len;
        if (ch->out != b && (ch->out_max == 0 || ch->out_bytes <= ch->out_max))
                return 0;          /* EPOLLOUT is on already */
        if (channel_flush(ch) < 0) /* the error shows up again in channel_io */
                (void)sd_event_source_set_io_events(ch->io, EPOLLOUT);
        return 0;
}

static int channel_read(Channel *ch) {
        size_t need = READ_CHUNK, off = 0;
        unsigned gen = ch->gen;

        /* Make room for at least the rest of the frame being assembled. */
        if (ch->discard == 0 && ch->rlen >= TTRPC_HEADER_SIZE) {
                TtrpcFrameHeader h;
                ttrpc_header_decode(ch->rbuf, &h);
                need = MAX(need, TTRPC_HEADER_SIZE + (size_t)h.length - ch->rlen);
        }
        if (ch->rcap - ch->rlen < need) {
                uint8_t *p = realloc(ch->rbuf, ch->rlen + need);
                if (!p)
                        return -ENOMEM;
                ch->rbuf = p;
                ch->rcap = ch->rlen + need;
        }
        ssize_t n = recv(ch->fd, ch->rbuf + ch->rlen, ch->rcap - ch->rlen, MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
        if (n == 0)
                return -ECONNRESET;
        ch->rlen += (size_t)n;

        for (;;) {
                TtrpcFrameHeader h;
                if (ch->discard > 0) {
                        size_t k = MIN((size_t)ch->discard, ch->rlen - off);
                        off += k;
                        ch->discard -= (uint32_t)k;
                        if (ch->discard > 0)
                                break;
                        ch->ops->oversize(ch, &ch->discard_hdr);
                        if (ch->gen != gen)
                                return 0;
                        continue;
                }
                if (ch->rlen - off < TTRPC_HEADER_SIZE)
                        break;
                ttrpc_header_decode(ch->rbuf + off, &h);
                if (h.length > TTRPC_MAX_MESSAGE_SIZE) {
                        off += TTRPC_HEADER_SIZE;
                        ch->discard = h.length;
                        ch->discard_hdr = h;
                        continue;
                }
                if (ch->rlen - off - TTRPC_HEADER_SIZE < h.length)
                        break;
                off += TTRPC_HEADER_SIZE + h.length;
                ch->ops->frame(ch, &h, ch->rbuf + off - h.length);
                if (ch->gen != gen)
                        return 0;
        }
        memmove(ch->rbuf, ch->rbuf + off, ch->rlen - off);
        ch->rlen -= off;
        if (ch->rlen == 0 && ch->rcap > 2 * READ_CHUNK) { /* don't keep a 4 MiB buffer around */
                free(ch->rbuf);
                ch->rbuf = NULL;
                ch->rcap = 0;
        }
        return 0;
}

static int channel_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Channel *ch = userdata;
        unsigned gen = ch->gen;
        int r = 0;

        channel_ref(ch);
        if (revents & EPOLLOUT)
                r = channel_flush(ch);
        if (r >= 0 && (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                r = channel_read(ch);
        if (r < 0 && ch->gen == gen) {
                log_debug_errno(r, "ttrpc connection closed: %m");
                channel_close(ch);
                ch->ops->closed(ch);
        }
        channel_unref(ch);
        return 0; /* never negative: that would disable the source */
}

int channel_open(Channel *ch, sd_event *event, int fd) {
        int r = sd_event_add_io(event, &ch->io, fd, EPOLLIN, channel_io, ch);
        if (r < 0)
                return r;
        ch->fd = fd;
        ch->gen++;
        return 0;
}
