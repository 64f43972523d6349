/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* One catalog checkpoint packed as an OCI image layout (oci-image.h): its
 * directory as the one layer (archive_write_checkpoint(), what export
 * writes), the manifest annotated with what the runtimes and our pull read
 * (oci_checkpoint_annotations()). What `kybernatectl push` and kybernated's
 * push_to both push with registry_push(). */

#include <stdint.h>

#include "archive.h"
#include "kybernate/v1/daemon.pb-c.h"
#include "oci-image.h"

/* Writes the image of checkpoint info (info->path its directory) into the new
 * directory layout (created 0700; its parent must exist). progress (NULL:
 * none) is told the layer's bytes written so far. The manifest's digest in
 * ret_digest, the layer's size in *ret_bytes. */
int checkpoint_image_write(const Kybernate__V1__CheckpointInfo *info, const char *layout,
                           char ret_digest[static OCI_DIGEST_MAX], ArchiveProgressFunc progress,
                           void *progress_userdata, uint64_t *ret_bytes);
