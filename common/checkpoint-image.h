/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* One catalog checkpoint packed as an OCI image layout (oci-image.h): its
 * directory, or a pod's with its members, as the one layer (what export
 * writes), the manifest annotated with what the runtimes and our pull read
 * (oci_checkpoint_annotations()). What `kybernatectl push` and kybernated's
 * push_to both push with registry_push(). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive.h"
#include "kybernate/v1/daemon.pb-c.h"
#include "oci-image.h"

/* Writes the image of checkpoint info, whose files src names (its
 * directory, or a pod's with its members': the layer is then the pod's
 * archive and the manifest says KYB_CHECKPOINT_POD_MEMBERS), into the new
 * directory layout (created 0700; its parent must exist). progress (NULL:
 * none) is told the layer's bytes written so far. The manifest's digest in
 * ret_digest, the layer's size in *ret_bytes. */
int checkpoint_image_write(const Kybernate__V1__CheckpointInfo *info, const ArchiveSource *src,
                           const char *layout, char ret_digest[static OCI_DIGEST_MAX],
                           ArchiveProgressFunc progress, void *progress_userdata, uint64_t *ret_bytes);

/* The layer compression a push of src uses unless told: zstd, or none when
 * the checkpoint's memory pages (checkpoint/pages-*.img below its directory;
 * a pod's: below its first member's, its memory being its members') look
 * incompressible: a 1 MiB sample spread over them has its bytes as evenly
 * spread as random data's (a chi-square test of the byte counts). For such
 * memory zstd and gzip win nothing back and the push and pull are slower
 * (docs/BENCHMARKS.md, "Across nodes"). */
OciCompression checkpoint_image_compression(const ArchiveSource *src);
/* The test behind it: a sample of n bytes whose byte counts are even
 * (sum of (count - n/256)^2 / (n/256) below n/16). */
bool checkpoint_sample_incompressible(const uint8_t *buf, size_t n);
