/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Create: a fresh container through runc create, or one that restores at
 * Start (containerd's checkpoint, or a RESTORE_FROM resolved in restore.c). */

#include "process.h"

int method_create(TtrpcCall *call, const ProtobufCMessage *msg, void *userdata);

/* Answers Create with the init's pid and publishes TaskCreate. */
void create_reply(Op *op, Container *c);
