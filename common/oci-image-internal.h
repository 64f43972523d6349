/* SPDX-License-Identifier: Apache-2.0 */
/* What the OCI image layout reader (oci-image.c) and writer
 * (oci-image-write.c) share. */
#pragma once

#include <cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "cjson-util.h"
#include "oci-image.h"
#include "util.h"

#define OCI_DIGEST_PREFIX "sha256:"
#define HASH_CHUNK ((size_t)1 << 17)

/* "sha256:<hex>" of buf. */
void oci_digest_of(const void *buf, size_t len, char ret[static OCI_DIGEST_MAX]);
/* An annotation value: no control characters but tab and newline. */
bool oci_annotation_value_valid(const char *v);
/* Streams fd from its start into sha256, refusing more than max bytes:
 * "sha256:<hex>" and the size. */
int oci_hash_fd(int fd, uint64_t max, char ret_digest[static OCI_DIGEST_MAX], uint64_t *ret_size);
/* 0 and the compression for a layer media type this code takes, else -ENOTSUP. */
int oci_layer_media_type_known(const char *t, OciCompression *ret);
