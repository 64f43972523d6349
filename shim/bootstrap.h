/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <sys/types.h>

/* What the "start" action prints (shared/docs/PROTOCOL.md section 3): the
 * shim's ttrpc address plain for containerd 1.x (1.6 would dial a JSON text as
 * the address, 1.7 refuses a version above 2), and for containerd 2.x the JSON
 * bootstrap parameters with version 3, which make it dial the task service as
 * containerd.task.v3.Task and treat the shim as one that serves a whole pod.
 * Which containerd runs us is read from its Go build information: the main
 * package of 2.x is github.com/containerd/containerd/v2/cmd/containerd. */

/* go_binary_main_path: the main package path a Go (>= 1.18) executable
 * records in its .go.buildinfo section ("path\t..." of the module info).
 * -ENOEXEC: not a 64-bit little-endian ELF file; -ENOENT: no .go.buildinfo;
 * -EPROTONOSUPPORT: a layout older than Go 1.18; -EBADMSG: malformed. */
int go_binary_main_path(int fd, char **ret);

/* containerd_major_of_main_path: 2 for ".../containerd/v2/cmd/containerd",
 * 1 for github.com/containerd/containerd/cmd/containerd, 0 when the path is not
 * containerd's (an embedding program: nothing is assumed). */
unsigned containerd_major_of_main_path(const char *path);

/* shim_task_api_version: 3 when the executable of process PARENT (or else the
 * file PUBLISH_BINARY, may be NULL) is containerd 2 or later, 2 otherwise
 * (the answer every containerd understands). */
unsigned shim_task_api_version(pid_t parent, const char *publish_binary);

/* bootstrap_output: what "start" prints for a shim listening at URI
 * ("unix:///run/containerd/s/<hex>") speaking task API VERSION (2 or 3). */
int bootstrap_output(const char *uri, unsigned version, char **ret);
