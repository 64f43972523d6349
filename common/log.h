/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Logging to stderr (which a shim points at containerd's log FIFO, and a
 * systemd service at the journal). Only top layers log; library code returns
 * errors. log_*_errno() return the negative errno so that handlers can write
 * return log_error_errno(r, "Failed to ...: %m"). */

#include <errno.h>
#include <syslog.h>

#include "util.h"

extern int log_max_level;
extern const char *log_ident;

void log_set_ident(const char *ident);
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) _printf_(5, 6);

#define log_full_errno(level, error, ...)                                                     \
        ({                                                                                    \
                int _l = (level), _e = (error);                                               \
                (_l <= log_max_level) ? log_internal(_l, _e, __FILE__, __LINE__, __VA_ARGS__) \
                                      : (_e > 0 ? -_e : _e);                                  \
        })

#define log_debug(...) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory")
