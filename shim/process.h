/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The shim's model: a Container, its init and exec Processes and their exits,
 * and the Op that carries an RPC across a runc or kybernated call. Internal to
 * the Task verbs (service.c, create.c, restore.c, start.c, checkpoint.c). */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "containerd/types/task.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "io.h"
#include "kybernate/v1/daemon.pb-c.h"
#include "options.h"
#include "runc.h"
#include "shim.h"
#include "spec.h"
#include "ttrpc.h"

enum {
        ST_CREATED = CONTAINERD__V1__TYPES__STATUS__CREATED,
        ST_RUNNING = CONTAINERD__V1__TYPES__STATUS__RUNNING,
        ST_STOPPED = CONTAINERD__V1__TYPES__STATUS__STOPPED,
        ST_PAUSED = CONTAINERD__V1__TYPES__STATUS__PAUSED,
};

typedef struct Process {
        Container *c;
        struct Process *next; /* execs only */
        char *id;             /* container id for init, exec id for execs */
        bool init;
        pid_t pid;
        int state;
        bool starting; /* Start in flight: an exit reaped meanwhile waits for it */
        bool started;
        bool reaped;    /* the reaper saw it die */
        bool exited;    /* exit finalized: output drained, waiters answered, event queued */
        bool exit_held; /* init only: its exit waits for running execs */
        uint32_t exit_status;
        int64_t exited_at_ns;
        ProcessIO *io;
        char *stdin_path, *stdout_path, *stderr_path;
        bool terminal;
        char *spec_json; /* execs: the OCI process, as given */
        TtrpcCall **waiters;
        size_t n_waiters, alloc_waiters;
} Process;

struct Container {
        Shim *shim;
        Container *next;
        char *id;
        char *bundle;
        char *rootfs;
        RuncConfig runc;
        ShimOptions opts;
        Spec spec;
        Process *init;
        Process *execs;
        char *checkpoint;        /* restore from these images at Start */
        char *checkpoint_dir;    /* kybernated's checkpoint directory, for a RESTORE_FROM restore */
        bool restore_tcp;        /* the dump kept established TCP connections */
        struct NetLock *netlock; /* a pod member's hold on the pod's loopback TCP (netlock.h) */
        bool rootfs_mounted;
        bool deleting;
        Cgroup *cgroup; /* known once the init has a pid */
        OomWatch *oom;
};

/* An RPC that waits for runc: the call and whom it concerns, looked up again
 * when runc is done since the container may be gone by then. */
typedef struct Op {
        Shim *shim;
        TtrpcCall *call;
        char *cid;
        char *eid;
        char *tmp_path; /* a file to remove when done */
        /* Checkpoint: where containerd wants the images, and what to report. */
        char *path;
        char *checkpoint_id;
        char *images;          /* the checkpoint's directory in kybernated's store */
        const char *src, *dst; /* for a child that applies files */
        char *work;            /* CRIU's work directory, for its log (containerd's, when it gives one) */
        /* Restore: what Create does once the checkpoint is resolved and applied. */
        void (*restore_ready)(struct Op *op, Container *c);
} Op;

Container *container_find(Shim *s, const char *id);
Process *exec_find(Container *c, const char *eid);
void process_free(Process *p);
void container_free(Container *c);
void container_remove(Shim *s, Container *c);
/* mount_detach_runc_leftovers() for c: before every `runc delete` of c, and
 * after a failed restore. */
int container_detach_leftovers(Container *c);
/* Looks up the process a request names; replies NotFound itself when absent. */
Process *lookup(Shim *s, TtrpcCall *call, const char *cid, const char *eid);
bool execs_running(Container *c);
/* The state containerd sees: a reaped process is stopped, a running one in a paused container paused. */
int process_state(Process *p);

Op *op_new(Shim *s, TtrpcCall *call, const char *cid, const char *eid);
void op_free(Op *op);
/* The process an Op names, looked up again; NULL when the container went away. */
Process *op_process(Op *op);
/* Runs runc for op (capturing its output unless spawn says otherwise); frees op when it cannot. */
int run_op(Container *c, Op *op, char *const *args, const RuncSpawn *spawn, RuncDoneFn cb);

Google__Protobuf__Timestamp timestamp_of(const Process *p);
void publish(Shim *s, const char *topic, const ProtobufCMessage *m);

int process_new(Container *c, const char *id, bool init, const char *in, const char *out, const char *err,
                bool terminal, Process **ret);
/* The reaper reports p's exit to on_process_exit. */
int process_watch(Process *p);
void on_process_exit(pid_t pid, int status, int64_t at, void *userdata);
int read_pid_file(const char *path, pid_t *ret);
/* The runc process arguments for creating or restoring p. */
void io_args(Process *p, char **args, size_t *n);

void container_load_cgroup(Container *c);
void container_watch_oom(Container *c);

/* kybernated's failures as containerd sees them. */
int code_of_daemon_error(int r);
const char *daemon_message(int r, const Kybernate__V1__Response *resp);
