/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "manager.h"

/* Start-up, before manager_startup_cleanup(): for every pending checkpoint
 * an earlier run left, kills what still works in its directory (an orphaned
 * CRIU) and resumes the container if the row says it ran when the checkpoint
 * started (paused by us, or frozen by CRIU, when the daemon died). Blocking;
 * logs what it does. Returns the number of containers resumed. */
int recover_thaw_pending(Manager *m);
