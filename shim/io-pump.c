/* SPDX-License-Identifier: Apache-2.0 */
/* The copiers of a process's stdio: one Pump per direction, with
 * backpressure. See io-internal.h. */
#include <sys/epoll.h>

#include "io-internal.h"
#include "log.h"
#include "util.h"

/* ---------------------------------------------------------------- pumps */

static void pump_clear_pending(Pump *p) {
        free(p->pending);
        p->pending = NULL;
        p->pending_off = p->pending_len = 0;
}

static bool pump_stalled(const Pump *p) {
        return p->pending_off < p->pending_len;
}

Pump *pump_free(Pump *p) {
        if (!p)
                return NULL;
        p->src_ev = sd_event_source_disable_unref(p->src_ev);
        p->dst_ev = sd_event_source_disable_unref(p->dst_ev);
        p->src_fd = safe_close(p->src_fd);
        p->dst_fd = safe_close(p->dst_fd);
        pump_clear_pending(p);
        free(p);
        return NULL;
}

void pump_finish(Pump *p) {
        if (!p || p->done)
                return;
        p->done = true;
        p->src_ev = sd_event_source_disable_unref(p->src_ev);
        p->dst_ev = sd_event_source_disable_unref(p->dst_ev);
        p->src_fd = safe_close(p->src_fd);
        p->dst_fd = safe_close(p->dst_fd);
        pump_clear_pending(p);
}

void pump_drop_sink(Pump *p) {
        if (!p || p->done)
                return;
        p->broken = true;
        pump_clear_pending(p);
        p->dst_ev = sd_event_source_disable_unref(p->dst_ev);
        p->dst_fd = safe_close(p->dst_fd);
        (void)sd_event_source_set_enabled(p->src_ev, p->eof ? SD_EVENT_OFF : SD_EVENT_ON);
}

static void pump_update(Pump *p) {
        if (p->done)
                return;
        bool stalled = pump_stalled(p);
        (void)sd_event_source_set_enabled(p->src_ev, !p->eof && !stalled ? SD_EVENT_ON : SD_EVENT_OFF);
        if (p->dst_ev)
                (void)sd_event_source_set_enabled(p->dst_ev, stalled ? SD_EVENT_ON : SD_EVENT_OFF);
}

/* Writes what the sink takes now. Returns how much of len is dealt with:
 * written, or dropped because the sink broke. */
static size_t pump_write(Pump *p, const uint8_t *data, size_t len) {
        size_t done = 0;

        while (!p->broken && done < len) {
                ssize_t n = write(p->dst_fd, data + done, len - done);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN && p->dst_ev)
                        break;
                if (n <= 0) {
                        /* EPIPE (the reader is gone for good), EIO (console gone), ENOSPC...:
                         * drop what we have and keep draining the source. */
                        log_warning_errno(n < 0 ? errno : EIO, "%s: %s: write failed, dropping output: %m",
                                          p->io->id, p->name);
                        p->broken = true;
                        break;
                }
                done += (size_t)n;
        }
        return p->broken ? len : done;
}

void pump_flush(Pump *p) {
        if (!pump_stalled(p))
                return;
        p->pending_off += pump_write(p, p->pending + p->pending_off, p->pending_len - p->pending_off);
        if (!pump_stalled(p))
                pump_clear_pending(p);
}

/* Finishes once the source hit EOF and everything read was written. */
static void pump_progress(Pump *p) {
        if (p->eof && !pump_stalled(p)) {
                log_debug("%s: %s: copy finished", p->io->id, p->name);
                pump_finish(p);
                process_io_check_drained(p->io);
                return;
        }
        pump_update(p);
}

static int pump_src_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        uint8_t buf[PROCESS_IO_BUFFER_SIZE];
        Pump *p = userdata;

        if (pump_stalled(p)) {
                pump_update(p);
                return 0;
        }
        ssize_t n = read(fd, buf, sizeof(buf));
        if (n == 0)
                p->eof = true;
        else if (n < 0) {
                if (errno == EIO)
                        p->eof = true; /* pty master: the slave side is closed */
                else if (errno != EAGAIN && errno != EINTR) {
                        log_warning_errno(errno, "%s: %s: read failed: %m", p->io->id, p->name);
                        p->eof = true;
                }
        } else {
                size_t w = pump_write(p, buf, (size_t)n);
                if (w < (size_t)n) {
                        p->pending = malloc((size_t)n - w);
                        if (!p->pending)
                                log_warning("%s: %s: out of memory, dropping output", p->io->id, p->name);
                        else {
                                memcpy(p->pending, buf + w, (size_t)n - w);
                                p->pending_off = 0;
                                p->pending_len = (size_t)n - w;
                        }
                }
        }
        pump_progress(p);
        return 0;
}

static int pump_dst_cb(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Pump *p = userdata;

        pump_flush(p);
        pump_progress(p);
        return 0;
}

int pump_new(ProcessIO *io, const char *name, int src_fd, int dst_fd, Pump **ret) {
        Pump *p = calloc(1, sizeof(Pump));
        int r;

        if (!p) {
                safe_close(src_fd);
                safe_close(dst_fd);
                return -ENOMEM;
        }
        *p = (Pump){.io = io, .name = name, .src_fd = src_fd, .dst_fd = dst_fd};
        r = fd_nonblock(src_fd, true);
        if (r < 0)
                goto fail;
        r = fd_nonblock(dst_fd, true);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(io->event, &p->src_ev, src_fd, EPOLLIN, pump_src_cb, p);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(io->event, &p->dst_ev, dst_fd, EPOLLOUT, pump_dst_cb, p);
        if (r == -EPERM)
                p->dst_ev = NULL; /* regular file or /dev/null: always writable */
        else if (r < 0)
                goto fail;
        (void)sd_event_source_set_description(p->src_ev, name);
        pump_update(p);
        *ret = p;
        return 0;
fail:
        pump_free(p);
        return r;
}
