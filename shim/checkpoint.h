/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Checkpoint: through kybernated (the images then copied to the path
 * containerd gave), or with runc alone when kybernated is not running; and
 * containerd's CheckpointOptions. */

#include <stdbool.h>

#include "google/protobuf/any.pb-c.h"
#include "ttrpc.h"

#define CHECKPOINT_OPTIONS_TYPE "containerd.runc.v1.CheckpointOptions"

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

int method_checkpoint(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata);
