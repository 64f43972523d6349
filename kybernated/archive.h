/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The tar reader/writer moved to common/ (the shim applies rootfs diffs with
 * it); this header keeps the old include path working. */
#include "common/archive.h"
