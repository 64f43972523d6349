/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The Task service: containers and their processes, driven through runc,
 * answering containerd over ttrpc and publishing its events. */

#include "shim.h"

int shim_service_register(Shim *s);
/* Frees every container record (no runc calls); for exit paths. */
void shim_service_done(Shim *s);
/* Asks the loop to exit once queued events are out (bounded wait). */
void shim_request_exit(Shim *s);
