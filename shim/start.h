/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Start: runc start for a created init, runc exec for an exec, runc restore
 * (restore.c) for an init created from a checkpoint. */

#include "process.h"

int method_start(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata);

/* Ends a Start whose runc (exec or restore) left a new process behind whose
 * pid it wrote to a file. */
void start_on_spawned(int status, const char *out, size_t len, const char *error, void *userdata);
