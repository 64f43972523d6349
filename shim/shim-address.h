/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Where a shim listens: /run/containerd/s/<hex sha256 of the containerd
 * address joined with namespace and id>, as containerd's own shims do, so
 * that a restarted containerd (or the start action of a pod's next
 * container) finds the same socket. */

#define SHIM_SOCKET_DIR "/run/containerd/s"

/* Lexically cleans a slash-separated path like Go's filepath.Clean. */
int shim_path_clean(const char *path, char **ret);
/* The hash input is Clean(address + "/" + ns + "/" + id). */
int shim_socket_path(const char *address, const char *ns, const char *id, char **ret);
