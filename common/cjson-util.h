/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The _cleanup_ of a cJSON tree (cJSON_Delete takes NULL). */
#include <cJSON.h>

#include "util.h"

static inline void cjson_deletep(cJSON **j) {
        cJSON_Delete(*j);
}
#define _cleanup_cjson_ _cleanup_(cjson_deletep)
