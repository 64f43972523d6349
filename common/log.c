/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

int log_max_level = LOG_INFO;
const char *log_ident = "kybernate";

void log_set_ident(const char *ident) {
        log_ident = ident;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        static const char *const names[] = {"emerg",   "alert",  "crit", "error",
                                            "warning", "notice", "info", "debug"};
        int saved = errno, e = error < 0 ? -error : error;
        char msg[2048];
        va_list ap;

        /* %m in fmt refers to the error passed in, not to whatever errno is now. */
        errno = e;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);

        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s[%d] %s: %s\n", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000, log_ident,
                (int)getpid(), names[level & 7], msg);
        if (log_max_level >= LOG_DEBUG)
                fprintf(stderr, "  at %s:%d\n", file, line);
        fflush(stderr);
        errno = saved;
        return -e;
}
