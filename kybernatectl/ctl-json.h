/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* JSON renderings of protocol messages and CRIU data for `--json`. */

#include <cJSON.h>

#include "criu-image.h"
#include "kybernate/v1/daemon.pb-c.h"

/* NULL on allocation failure. */
cJSON *ctl_json_checkpoint(const Kybernate__V1__CheckpointInfo *info);
cJSON *ctl_json_tree(const CriuTree *t);
cJSON *ctl_json_stats(const CriuDumpStats *st);
/* Prints j (formatted) and a newline to stdout, then frees it. */
int ctl_json_print(cJSON *j);
