/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The shim is a child subreaper: every child (runc commands, container inits
 * reparented to us, exec'd processes) is reaped here, once, by a SIGCHLD
 * handler that loops wait4(-1, WNOHANG). Each exit goes to whoever registered
 * for that pid. An exit that arrives before anyone registered (a container
 * init that dies before runc's pid file is read) is kept for a while and
 * handed over at registration. */

#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

typedef struct Reaper Reaper;

/* status: exit code, or 128 + signal number. exited_at: realtime ns. */
typedef void (*ReaperExitFn)(pid_t pid, int status, int64_t exited_at_ns, void *userdata);

int reaper_new(sd_event *e, Reaper **ret);
Reaper *reaper_free(Reaper *r);
/* Registers for pid's exit; if it already exited, cb runs from a deferred
 * event source (never from inside this call). */
int reaper_watch(Reaper *r, pid_t pid, ReaperExitFn cb, void *userdata);
void reaper_unwatch(Reaper *r, pid_t pid);
/* Decodes a wait status the way containerd expects (128 + signal). */
int reaper_exit_status(int wstatus);
