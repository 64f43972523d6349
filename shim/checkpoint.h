/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the shim needs for checkpoint and restore besides runc: containerd's
 * CheckpointOptions, the restore reference a container's spec names
 * (RESTORE_FROM in its environment or the kybernate.io/restore-from
 * annotation), the identity kybernated checks it against, and blocking file
 * work that runs in a forked child so the loop never waits on a disk. */

#include <stdbool.h>
#include <sys/types.h>

#include "google/protobuf/any.pb-c.h"
#include "kybernate/v1/daemon.pb-c.h"
#include "reaper.h"
#include "spec.h"

#define RESTORE_ENV "RESTORE_FROM"
#define RESTORE_ANNOTATION "kybernate.io/restore-from"
#define CHECKPOINT_OPTIONS_TYPE "containerd.runc.v1.CheckpointOptions"
#define RESTORE_REFERENCE_MAX 512
/* Where CRIU's logs of failed checkpoints and restores are kept for the operator. */
#define CRIU_LOG_DIR "/var/log/kybernate"

typedef struct CheckpointOpts {
        bool exit;
        bool open_tcp;
        bool external_unix_sockets;
        bool terminal;
        bool file_locks;
        char **empty_namespaces;
        char *work_path;
} CheckpointOpts;

/* any may be NULL or empty (ctr task checkpoint sends none to non-runc runtimes). */
int checkpoint_options_from_any(const Google__Protobuf__Any *any, CheckpointOpts *ret);
void checkpoint_options_done(CheckpointOpts *o);

/* The restore reference of a container: NULL (0) when it names none, -EINVAL
 * when the value is empty, overlong or has control characters. */
int restore_reference(const Spec *spec, const char **ret);

/* Fills t (pointers borrowed from spec and the arguments) with the restoring
 * container's identity: containerd namespace, and from the CRI annotations its
 * Kubernetes namespace, pod, container name and image. */
void restore_target_from_spec(const Spec *spec, const char *ns, const char *id,
                              Kybernate__V1__RestoreTarget *t);

/* Runs fn(arg) in a forked child; cb gets 0 or the errno it failed with. */
int fork_call(Reaper *reaper, int (*fn)(const void *arg), const void *arg, ReaperExitFn cb, void *userdata);

/* Hard-links (or, across filesystems, copies) the regular files of directory
 * src into the existing directory dst (CRIU's image directory is flat). Never
 * follows symlinks. Blocking. */
int copy_dir_files(const char *src, const char *dst);

/* Copies <work>/<name> to CRIU_LOG_DIR/<id>-<name> so it outlives the bundle;
 * returns the new path. */
int keep_criu_log(const char *work, const char *name, const char *id, char **ret_path);
