/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* A container's cgroup: where it is, its metrics in containerd's format, and
 * OOM notification.
 *
 * Finding it: from the container's init pid (/proc/<pid>/cgroup) or from a
 * path inside the hierarchy (the OCI cgroupsPath). A host whose cgroup root
 * holds cgroup.controllers is cgroup v2 (unified at the root); any other is
 * cgroup v1, one directory per controller under the root (a hybrid host's
 * empty v2 at <root>/unified is ignored, as containerd does).
 *
 * Stats: cgroup_stats() packs an io.containerd.cgroups.v1.Metrics or
 * io.containerd.cgroups.v2.Metrics into a google.protobuf.Any (bare type URL,
 * ready for StatsResponse.stats). Files that are missing are skipped; lines
 * that do not parse are skipped; every read is bounded.
 *
 * OOM: cgroup_oom_watch() adds an sd-event source that calls a handler each
 * time the kernel reports an OOM in the cgroup (v1: eventfd registered on
 * memory.oom_control; v2: inotify on memory.events, when oom_kill grows). The
 * watch stops by itself once the cgroup is removed (v1) or empty (v2).
 *
 * All I/O here is on cgroupfs/procfs, which answer at once: nothing blocks
 * the event loop for long. Functions return >= 0 or a negative errno and do
 * not log. */

#include <sys/types.h>

#include <systemd/sd-event.h>

#include "google/protobuf/any.pb-c.h"
#include "util.h"

#define CGROUP_ROOT_DEFAULT "/sys/fs/cgroup"
#define CGROUP_PROC_ROOT_DEFAULT "/proc"
#define CGROUP_V1_METRICS_TYPE_URL "io.containerd.cgroups.v1.Metrics"
#define CGROUP_V2_METRICS_TYPE_URL "io.containerd.cgroups.v2.Metrics"

typedef enum CgroupVersion {
        CGROUP_V1 = 1,
        CGROUP_V2 = 2,
} CgroupVersion;

typedef struct Cgroup Cgroup;
typedef struct OomWatch OomWatch;

/* Called from the event loop once per OOM notification. It may free the
 * watch (cgroup_oom_watch_free) from inside the call. */
typedef void (*CgroupOomHandler)(void *userdata);

/* CGROUP_V1 or CGROUP_V2 for the cgroup filesystem at root (NULL: the
 * default); -ENOENT if root does not exist. */
int cgroup_detect_version(const char *root);

/* The cgroup of a process: reads <proc_root>/<pid>/cgroup. root and proc_root
 * may be NULL for the defaults. -ENOENT if the process is gone or has no
 * usable line for this host's version. */
int cgroup_new_from_pid(const char *root, const char *proc_root, pid_t pid, Cgroup **ret);

/* The same from the text of a /proc/<pid>/cgroup file (bounded to 64 KiB). */
int cgroup_new_from_proc_cgroup(const char *root, const char *text, Cgroup **ret);

/* From a path inside the hierarchy, e.g. "/kybernate/default/c1" (v1: the
 * same path under each controller). Relative paths are taken from the root;
 * ".." components are refused (-EINVAL). */
int cgroup_new_from_path(const char *root, const char *path, Cgroup **ret);

/* Where /proc/partitions is read from (for blkio device names); default
 * "/proc". */
int cgroup_set_proc_root(Cgroup *cg, const char *proc_root);

Cgroup *cgroup_free(Cgroup *cg);
static inline void cgroup_freep(Cgroup **cg) {
        cgroup_free(*cg);
}
#define _cleanup_cgroup_free_ _cleanup_(cgroup_freep)

CgroupVersion cgroup_get_version(const Cgroup *cg);
/* The path inside the hierarchy ("/a/b"): v2 the unified path, v1 the
 * memory controller's (or the first one found). */
const char *cgroup_get_path(const Cgroup *cg);
/* Absolute directory of a controller ("memory", "cpu", "cpuacct", "pids",
 * "blkio", "hugetlb") on v1, NULL if unknown; on v2 the unified directory,
 * whatever the name. */
const char *cgroup_get_dir(const Cgroup *cg, const char *controller);

/* Reads the metrics and returns them packed in a newly allocated Any (type
 * URL CGROUP_V{1,2}_METRICS_TYPE_URL). Free with
 * google__protobuf__any__free_unpacked(any, NULL). -ENOENT if none of the
 * cgroup's directories exists any more (the container is gone). */
int cgroup_stats(const Cgroup *cg, Google__Protobuf__Any **ret);

/* Starts watching for OOM events; handler(userdata) runs on the loop e.
 * v1: -ENOENT if there is no memory controller directory. */
int cgroup_oom_watch(sd_event *e, const Cgroup *cg, CgroupOomHandler handler, void *userdata,
                     OomWatch **ret);
/* Number of OOM notifications delivered so far. */
uint64_t cgroup_oom_watch_count(const OomWatch *w);
/* False once the watch has stopped by itself (cgroup removed or empty). */
bool cgroup_oom_watch_active(const OomWatch *w);
OomWatch *cgroup_oom_watch_free(OomWatch *w);
static inline void cgroup_oom_watch_freep(OomWatch **w) {
        cgroup_oom_watch_free(*w);
}
#define _cleanup_oom_watch_free_ _cleanup_(cgroup_oom_watch_freep)
