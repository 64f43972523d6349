/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The runtime options containerd passes in CreateTaskRequest.options (and on
 * the start action's stdin): containerd.runc.v1.Options, honoured;
 * runtimeoptions.v1.Options, an empty Any or anything else, ignored. */

#include <stdbool.h>
#include <stdint.h>

#include "google/protobuf/any.pb-c.h"
#include "runc.h"

#define RUNC_OPTIONS_TYPE "containerd.runc.v1.Options"

typedef struct ShimOptions {
        bool no_pivot_root;
        bool no_new_keyring;
        bool systemd_cgroup;
        uint32_t io_uid;
        uint32_t io_gid;
        char *binary_name;
        char *root;
        char *criu_path;
        char *criu_image_path;
        char *criu_work_path;
        char *shim_cgroup;
} ShimOptions;

void shim_options_done(ShimOptions *o);
/* any may be NULL. Unknown types give default options, not an error. */
int shim_options_from_any(const Google__Protobuf__Any *any, ShimOptions *ret);
/* Same from the raw bytes of a packed Any (the start action's stdin). */
int shim_options_from_bytes(const uint8_t *data, size_t len, ShimOptions *ret);
/* The options as containerd gave them to Create, kept in the bundle (as the
 * runc shim keeps its options.json there) for the `delete` action, a new
 * process run when the shim is gone, which must call the same runc binary
 * with the same root. shim_options_save() writes any (nothing when NULL or
 * not runc's options) to BUNDLE/SHIM_OPTIONS_FILE; shim_options_load()
 * reads it back as shim_options_from_bytes() does (bounded, validated),
 * default options when there is none. */
#define SHIM_OPTIONS_FILE "options.pb"
int shim_options_save(const Google__Protobuf__Any *any, const char *bundle);
int shim_options_load(const char *bundle, ShimOptions *ret);
/* runc's global options for a container of namespace ns in bundle. */
int shim_options_runc_config(const ShimOptions *o, const char *ns, const char *bundle, RuncConfig *ret);
