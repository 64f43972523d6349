/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* File work of checkpoint and restore that blocks on a disk: run in a forked
 * child (fork_call) so the loop never waits, or only on a failure path. */

#include "reaper.h"

/* Where CRIU's logs of failed checkpoints and restores are kept for the operator. */
#define CRIU_LOG_DIR "/var/log/kybernate"

/* Runs fn(arg) in a forked child; cb gets 0 or the errno it failed with. */
int fork_call(Reaper *reaper, int (*fn)(const void *arg), const void *arg, ReaperExitFn cb, void *userdata);

/* Hard-links (or, across filesystems, copies) the regular files of directory
 * src into the existing directory dst (CRIU's image directory is flat): all of
 * them, or those named in the NULL-terminated only. Never follows symlinks.
 * Blocking. */
int copy_dir_files(const char *src, const char *dst, char *const *only);

/* Copies <work>/<name> to CRIU_LOG_DIR/<id>-<name> so it outlives the bundle;
 * returns the new path. */
int keep_criu_log(const char *work, const char *name, const char *id, char **ret_path);
