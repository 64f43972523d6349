/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* What the shim needs from OCI JSON: the bundle's config.json (read once at
 * Create), exec process specs and LinuxResources arrive as JSON in an Any. All
 * of it is untrusted input: bounded and validated here. */

#include <stdbool.h>

#include "google/protobuf/any.pb-c.h"

#define SPEC_MAX_SIZE (4u << 20)

typedef struct Spec {
        bool private_pid_ns; /* a new PID namespace (no path to join) */
        char *sandbox_id;    /* io.kubernetes.cri.sandbox-id */
        char *netns_path;    /* the network namespace joined (a pod's), NULL for a new one */
        /* linux.cgroupsPath in systemd's form, SLICE:PREFIX:NAME: what
         * containerd's CRI writes when the pod's cgroup parent is a systemd
         * slice (kubelet's systemd cgroup driver); runc needs --systemd-cgroup
         * for it, which no runtime option of ours says under CRI (containerd
         * sends runc's options only to runtimes of the runc type). */
        bool systemd_cgroup;
        char **env; /* process.env, NULL-terminated */
        char **annotation_keys, **annotation_values;
} Spec;

void spec_done(Spec *s);
int spec_parse(const char *json, size_t len, Spec *ret);
int spec_load(const char *bundle, Spec *ret);
/* Value of NAME=value in process.env, or NULL. */
const char *spec_env(const Spec *s, const char *name);
const char *spec_annotation(const Spec *s, const char *key);

/* Validates an exec process (an OCI "process" object: args non-empty, cwd
 * absolute) and returns it as JSON. */
int spec_process_from_any(const Google__Protobuf__Any *any, char **ret_json);
/* The process JSON with "terminal" set as the request says. */
int spec_process_with_terminal(const char *json, bool terminal, char **ret_json);
/* Validates a LinuxResources object and returns it as JSON for runc update. */
int spec_resources_from_any(const Google__Protobuf__Any *any, char **ret_json);
