/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Child processes: runc runs, and checksum computations moved out of the
 * event loop into a forked child. The caller must have SIGCHLD blocked
 * (sd_event_add_child() requires it). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

/* Starts argv[0] (PATH search) with stdin from /dev/null and stdout and
 * stderr appended to log_path (/dev/null if NULL), in a session of its own,
 * with SIGKILL should the daemon die (spawn_exec()). */
int spawn_logged(char *const argv[], const char *log_path, pid_t *ret_pid);

/* Runs argv to completion (blocking: startup only) and returns the first
 * non-empty line of its output (stdout and stderr). */
int spawn_capture_line(char *const argv[], char **ret);

/* The last non-empty line of a (log) file, at most 512 bytes; NULL if none. */
char *file_last_line(const char *path);

/* Forks a child that runs fn(userdata, result_fd) and _exit()s; it gets
 * SIGKILL should the daemon die (spawn_call()). fn writes its result to
 * result_fd, the write end of a pipe whose read end is returned in *ret_fd for
 * the parent to read once the child has exited. */
int spawn_fork(void (*fn)(void *userdata, int result_fd), void *userdata, int *ret_fd, pid_t *ret_pid);

/* The message a spawn_fork() child reports with its result, at most. */
#define SPAWN_REPORT_MAX 2048

/* spawn_fork() with the child watched from loop e: handler runs when it
 * exits (it reads the result with spawn_read_report()). *ret_source owns the
 * child: unreffing it before the exit kills and reaps it. */
int spawn_fork_watched(sd_event *e, void (*fn)(void *userdata, int result_fd), void *userdata,
                       sd_event_child_handler_t handler, sd_event_source **ret_source, int *ret_fd);
/* In the child: its result r (0 or a negative errno) and a message (a digest,
 * or why it failed) as one line of printable text to result_fd. */
void spawn_report(int result_fd, int r, const char *msg);
/* In the parent, once the child (si) exited: reads and closes *fd. The
 * child's r, its message in *ret_msg (a new string; says why when the child
 * reported nothing readable, -EIO then). */
int spawn_read_report(int *fd, const siginfo_t *si, char **ret_msg);

/* In a forked child: closes every fd but stdio and keep (the result pipe),
 * so no client socket stays open in it. */
void spawn_close_fds_but(int keep);

typedef void (*ChecksumDoneFn)(int r, uint64_t size, const char *checksum, void *userdata);
typedef struct ChecksumTask ChecksumTask;

/* Forks a child that computes store_checksum(dir, like, sync) and calls done
 * from the loop with the result. done is called exactly once unless the task is
 * freed first (then the child is killed and reaped at once). The task frees itself after done. */
int checksum_task_start(sd_event *e, const char *dir, const char *like, bool sync, ChecksumDoneFn done,
                        void *userdata, ChecksumTask **ret);
ChecksumTask *checksum_task_free(ChecksumTask *t);
