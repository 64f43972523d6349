/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Registries, through skopeo run as a child (as runc is run for containers).
 *
 * Why skopeo and not an HTTP library: a registry client is far more than
 * HTTP. skopeo (containers/image, what Podman, Buildah and CRI-O use) already
 * speaks the OCI distribution API with bearer-token and basic auth, reads the
 * node's credentials in both formats (containers' auth.json and
 * ~/.docker/config.json, credential helpers), the certs.d CA layout,
 * mirrors and retries, and compresses layers (gzip, multi-threaded zstd) on
 * the way. Doing that ourselves over libcurl would add a dependency and
 * thousands of lines of security-sensitive code; a subprocess adds neither,
 * and nothing of it runs in the daemon's address space. What we do not take
 * on trust from it: the digest a tag resolves to is computed here from the
 * manifest's bytes, pulls are by that digest, and the layout a pull leaves
 * is read back and every blob checked against its digest (oci-image.h).
 *
 * Signature policy: skopeo runs with --insecure-policy (containers'
 * policy.json is not consulted); what may be restored is the node's pull
 * rules, applied by the caller, and content is pinned by digest. */

#include <stdbool.h>

#include "image-ref.h"
#include "oci-image.h"

/* The layer compression of a push when none is asked for: see
 * docs/BENCHMARKS.md, "Checkpoint images". */
#define REGISTRY_PUSH_COMPRESSION_DEFAULT OCI_COMPRESSION_ZSTD

typedef struct RegistryOptions {
        const char *skopeo;         /* NULL: "skopeo", searched in PATH */
        const char *authfile;       /* NULL: skopeo's own search (REGISTRY_AUTH_FILE, containers' auth.json,
                                       ~/.docker/config.json) */
        const char *cert_dir;       /* a directory with the CA (*.crt) of the registry; NULL: the certs.d
                                       layout under /etc/containers and /etc/docker */
        bool insecure;              /* no TLS verification (a test registry only) */
        OciCompression compression; /* of the layers a push writes */
        int compression_level;      /* 0: the format's default */
        /* While a push or pull runs skopeo: called about every
         * REGISTRY_PROGRESS_MSEC and once more when it has exited, with the
         * bytes skopeo has read and written so far (every read() and write()
         * of it, files and sockets alike: /proc/PID/io rchar and wchar). A
         * push reads the layout, a pull writes it. NULL: skopeo is only
         * waited for. */
        void (*progress)(uint64_t read_bytes, uint64_t written_bytes, void *userdata);
        void *progress_userdata;
} RegistryOptions;

#define REGISTRY_PROGRESS_MSEC 100

/* The digest of the manifest image names (a tag is resolved once, here):
 * the sha256 of the manifest's bytes as the registry serves them; an image
 * given by digest must have that digest. *ret_error: skopeo's message on
 * failure (caller frees), or NULL. */
int registry_resolve(const RegistryOptions *o, const char *image,
                     char ret_digest[static IMAGE_DIGEST_LEN + 1], char **ret_error);
/* The same, and the sizes of the config and layers the manifest lists,
 * added up, in *ret_blob_bytes (0 when it does not say): what a pull of it
 * will fetch, as the registry claims, for a progress display only. */
int registry_resolve_sized(const RegistryOptions *o, const char *image,
                           char ret_digest[static IMAGE_DIGEST_LEN + 1], uint64_t *ret_blob_bytes,
                           char **ret_error);

/* skopeo copy of an OCI layout directory to a registry image (push), its
 * manifest digest as the registry has it in ret_digest. */
int registry_push(const RegistryOptions *o, const char *layout_dir, const char *image,
                  char ret_digest[static IMAGE_DIGEST_LEN + 1], char **ret_error);

/* skopeo copy of a registry image pinned by digest ("HOST/REPO@sha256:...")
 * into a new OCI layout directory, digests preserved (nothing recompressed or
 * converted, so the layout's manifest is the one pinned). */
int registry_pull(const RegistryOptions *o, const char *pinned_image, const char *layout_dir,
                  char **ret_error);
