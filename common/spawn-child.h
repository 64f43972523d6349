/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Child processes, started one way by every program. The child gets a clean
 * start whatever the caller had set: every signal back to its default action
 * and none blocked (the daemon blocks SIGCHLD for sd-event and ignores
 * SIGPIPE; so does the shim), and, when asked, a parent-death signal.
 *
 * spawn_exec() also gives the child exactly the stdin, stdout and stderr asked
 * for (and, when asked, fds 3, 4, ...), marks every other fd close-on-exec (so nothing of the caller's leaks
 * into runc, CRIU or the containers they start), and reports a failure before
 * or of exec() to the caller as a negative errno, through a close-on-exec pipe,
 * instead of a child that exits 127. The caller reaps the child (waitpid(),
 * sd_event_add_child(), the shim's Reaper); on a reported failure the child has
 * been reaped already. */

#include <stdbool.h>
#include <sys/types.h>

/* stdio[] value for /dev/null. */
#define SPAWN_NULL (-1)

/* At most this many fds beyond stdio (SpawnOptions.fds). */
#define SPAWN_FDS_MAX 8

typedef struct SpawnOptions {
        /* The child's fds 0, 1 and 2: any fds of the caller (the same one
         * more than once, or ones that are 0..2 already, are fine), or
         * SPAWN_NULL. Every caller must set all three: {0, 0, 0} means the
         * caller's stdin three times. spawn_call() ignores them. */
        int stdio[3];
        /* Further fds the child gets as 3, 4, ... in this order: n_fds (at
         * most SPAWN_FDS_MAX) fds of the caller, as stdio[] (no SPAWN_NULL).
         * Every fd above them is still closed at exec. spawn_call() ignores
         * them. */
        const int *fds;
        size_t n_fds;
        /* Sent to the child when the thread that spawned it exits
         * (PR_SET_PDEATHSIG); 0 for none. The child does not start should the
         * caller have died already. Not inherited by the child's own children:
         * a container runc starts is not affected. */
        int parent_death_signal;
        /* setsid(): the child leads a new session and process group, so
         * signals to the caller's group (a ^C in a terminal) miss it. */
        bool new_session;
        /* chdir() before exec; NULL: the caller's. */
        const char *cwd;
        /* The environment (NULL-terminated "NAME=value"); NULL: the caller's. */
        char *const *env;
} SpawnOptions;

/* Starts argv[0] (searched in PATH unless it contains a slash) with argv.
 * Returns 0 and the child's pid, or a negative errno: the fork failed, or the
 * child could not set up its fds or directory, or exec() failed (-ENOENT for
 * a missing program). */
int spawn_exec(char *const argv[], const SpawnOptions *o, pid_t *ret_pid);

/* Forks a child that runs fn(userdata) and _exit()s: 0 when fn returned >= 0,
 * else -r (at most 125). Signal state and parent-death signal as with
 * spawn_exec(); the child keeps the caller's fds as they are (fn runs on a copy
 * of the caller's memory and may use them) and its directory and environment.
 * In a multi-threaded caller fn may only use async-signal-safe functions. */
int spawn_call(int (*fn)(void *userdata), void *userdata, const SpawnOptions *o, pid_t *ret_pid);
