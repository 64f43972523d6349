/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Image references that name a registry: "HOST[:PORT]/REPO[:TAG][@DIGEST]",
 * in the grammar of the distribution project (docker, containerd, skopeo),
 * with two choices of ours: the registry host is always written out (no
 * implicit docker.io, no "library/" added), and the only digest algorithm is
 * sha256.
 *
 * The rule that tells an image reference from a catalog reference (a
 * checkpoint id, name or Kubernetes "namespace/pod/container"): it has a '/'
 * and its first component contains a '.' or a ':' or is "localhost". A
 * Kubernetes namespace is a DNS label (no '.', no ':'), so the two never
 * overlap: "team-a/web-0/app" is a catalog reference, "registry.local/web:v1"
 * and "127.0.0.1:5000/ckpt/web@sha256:..." are image references. */

#include <stdbool.h>

#define IMAGE_REF_NAME_MAX 255U /* HOST[:PORT]/REPO, as distribution bounds it */
#define IMAGE_REF_TAG_MAX 128U
#define IMAGE_DIGEST_LEN 71U /* "sha256:" and 64 lowercase hex digits */

typedef struct ImageRef {
        char *registry;   /* HOST[:PORT] */
        char *repository; /* path components below the registry, '/'-separated */
        char *tag;        /* NULL if none */
        char *digest;     /* "sha256:<64 hex>", or NULL if none */
} ImageRef;

/* Does ref name a registry image (the rule above)? Says nothing of validity. */
bool image_ref_is_registry(const char *ref);

/* Is s "sha256:" followed by 64 lowercase hex digits? */
bool image_digest_valid(const char *s);

/* Parses and validates s. On -EINVAL, *ret_reason (static string) says why. */
int image_ref_parse(const char *s, ImageRef *ret, const char **ret_reason);
void image_ref_done(ImageRef *r);

/* "HOST/REPO@DIGEST": the reference pinned to a digest (a resolved tag is
 * never looked up again). NULL on allocation failure. Caller frees. */
char *image_ref_pinned(const ImageRef *r, const char *digest);
