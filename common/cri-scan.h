/* SPDX-License-Identifier: Apache-2.0 */
#pragma once
/* The containers under a runc root (one containerd namespace) with their CRI
 * identity, from runc's <root>/<id>/state.json and the bundle's config.json
 * annotations: which pod sandbox each belongs to, its name, whether its init
 * process is alive, and its cgroup. What a pod checkpoint (kybernated) and a
 * pod restore (the shim) need to know of a pod's containers. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CRI_CONTAINER_NAME_ANNOTATION "io.kubernetes.cri.container-name"

typedef struct CriContainer {
        char *id;
        char *state;             /* runc's state.json */
        char *type;              /* io.kubernetes.cri.container-type: "sandbox" or "container" */
        char *sandbox_id;        /* io.kubernetes.cri.sandbox-id */
        char *sandbox_name;      /* io.kubernetes.cri.sandbox-name (NULL if absent) */
        char *sandbox_namespace; /* io.kubernetes.cri.sandbox-namespace */
        char *name;              /* CRI_CONTAINER_NAME_ANNOTATION */
        char *cgroup;            /* cgroup_paths: the freezer's (v1) or the unified one (v2); NULL if none */
        int64_t created_ns;      /* when runc wrote its state */
        bool alive;              /* its init process runs */
        int pid;                 /* its init process */
} CriContainer;

#define CRI_SCAN_MAX 4096

/* Every container under runc_root that has the CRI annotations (others are
 * skipped, as are ones that go away meanwhile); at most CRI_SCAN_MAX. */
int cri_scan(const char *runc_root, CriContainer **ret, size_t *ret_n);
void cri_containers_free(CriContainer *c, size_t n);
