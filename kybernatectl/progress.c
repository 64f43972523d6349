/* SPDX-License-Identifier: Apache-2.0 */
#include "progress.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "ctl-format.h"

#define MIB (1024.0 * 1024.0)
#define WIDTH_DEFAULT 80U
#define LABEL_MIN 16U /* below this the label is not cut, the whole line is */

ProgressMode progress_mode(int fd, bool quiet) {
        if (quiet)
                return PROGRESS_QUIET;
        /* No TERM (a service, sudo without env) is as dumb: no escapes. */
        const char *term = getenv("TERM");
        if (!isatty(fd) || isempty(term) || streq(term, "dumb"))
                return PROGRESS_LINES;
        return PROGRESS_TERMINAL;
}

void progress_init(Progress *p, FILE *out, ProgressMode mode) {
        *p = (Progress){.out = out, .mode = mode, .width = WIDTH_DEFAULT};
        struct winsize ws;
        if (mode == PROGRESS_TERMINAL && ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
                p->width = ws.ws_col;
}

void progress_done(Progress *p) {
        free(p->label);
        p->label = NULL;
}

char *progress_format_rate(char *buf, size_t size, uint64_t bytes, int64_t usec) {
        if (usec < (int64_t)USEC_PER_MSEC)
                usec = (int64_t)USEC_PER_MSEC;
        snprintf(buf, size, "%.1f MiB/s", (double)bytes / MIB / ((double)usec / (double)USEC_PER_SEC));
        return buf;
}

static double seconds(int64_t usec) {
        return usec > 0 ? (double)usec / (double)USEC_PER_SEC : 0.0;
}

char *progress_format_status(char *buf, size_t size, const char *label, bool counting, uint64_t done,
                             uint64_t total, int64_t usec, unsigned width) {
        char stats[128], b[32], t[32], rate[32];
        /* A total is what was expected: a count past it shows as the total. */
        if (total > 0 && done > total)
                done = total;
        if (!counting)
                snprintf(stats, sizeof(stats), "%.1f s", seconds(usec));
        else if (total > 0)
                snprintf(stats, sizeof(stats), "%s of %s  %s  %.1f s", format_bytes(b, sizeof(b), done),
                         format_bytes(t, sizeof(t), total),
                         progress_format_rate(rate, sizeof(rate), done, usec), seconds(usec));
        else
                snprintf(stats, sizeof(stats), "%s  %s  %.1f s", format_bytes(b, sizeof(b), done),
                         progress_format_rate(rate, sizeof(rate), done, usec), seconds(usec));

        /* One column is left free: a line as wide as the terminal wraps on
         * some, and \r then redraws only its second half. */
        size_t max = width > 1 ? width - 1 : 0, len = strlen(label), room = 0;
        if (max > strlen(stats) + 2)
                room = max - strlen(stats) - 2;
        if (len > room && room >= LABEL_MIN) {
                len = room - 3;
                /* Not in the middle of a UTF-8 sequence. */
                while (len > 0 && ((unsigned char)label[len] & 0xc0) == 0x80)
                        len--;
                snprintf(buf, size, "%.*s...  %s", (int)len, label, stats);
        } else
                snprintf(buf, size, "%s  %s", label, stats);
        if (strlen(buf) > max)
                buf[max] = 0;
        return buf;
}

char *progress_format_final(char *buf, size_t size, const char *label, const char *result, bool counting,
                            uint64_t done, int64_t usec) {
        char b[32], rate[32];
        if (!counting)
                snprintf(buf, size, "%s: %s in %.1f s", label, result ? result : "done", seconds(usec));
        else
                snprintf(buf, size, "%s: %s%s%s in %.1f s (%s)", label, result ? result : "",
                         result ? ", " : "", format_bytes(b, sizeof(b), done), seconds(usec),
                         progress_format_rate(rate, sizeof(rate), done, usec));
        return buf;
}

static void draw(Progress *p, int64_t now) {
        char line[1024];
        progress_format_status(line, sizeof(line), p->label, p->counting, p->done, p->total,
                               now - p->start_usec, p->width);
        fprintf(p->out, "\r\033[K%s", line);
        fflush(p->out);
        p->drawn_usec = now;
}

/* What begins a step and what prints a line share: a running step ends
 * first (as failed), then the text is formatted and made safe for a
 * terminal. NULL when quiet, or out of memory. */
static char *next_text(Progress *p, const char *fmt, va_list ap) {
        if (p->mode == PROGRESS_QUIET)
                return NULL;
        progress_fail(p);
        _cleanup_free_ char *s = strdup_vprintf(fmt, ap);
        return strdup_printable(s ? s : "");
}

void progress_begin(Progress *p, bool counting, uint64_t total, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        p->label = next_text(p, fmt, ap);
        va_end(ap);
        if (!p->label)
                return;
        p->counting = counting;
        p->done = 0;
        p->total = total;
        p->start_usec = now_monotonic_usec();
        if (p->mode == PROGRESS_TERMINAL)
                draw(p, p->start_usec);
}

void progress_set(Progress *p, uint64_t done) {
        if (!p->label)
                return;
        p->done = done;
        if (p->mode != PROGRESS_TERMINAL)
                return;
        int64_t now = now_monotonic_usec();
        if (now - p->drawn_usec >= (int64_t)PROGRESS_REDRAW_USEC)
                draw(p, now);
}

static void finish(Progress *p, const char *line) {
        fprintf(p->out, "%s%s\n", p->mode == PROGRESS_TERMINAL ? "\r\033[K" : "", line);
        fflush(p->out);
        progress_done(p);
}

void progress_end(Progress *p, const char *result) {
        if (!p->label)
                return;
        char line[1024];
        _cleanup_free_ char *r = result ? strdup_printable(result) : NULL;
        progress_format_final(line, sizeof(line), p->label, r, p->counting, p->done,
                              now_monotonic_usec() - p->start_usec);
        finish(p, line);
}

void progress_fail(Progress *p) {
        if (!p->label)
                return;
        char line[1024];
        snprintf(line, sizeof(line), "%s: failed after %.1f s", p->label,
                 seconds(now_monotonic_usec() - p->start_usec));
        finish(p, line);
}

void progress_line(Progress *p, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *l = next_text(p, fmt, ap);
        va_end(ap);
        if (l)
                fprintf(p->out, "%s\n", l);
}
