/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* kybernated settings: defaults, then /etc/kybernate/kybernated.conf (simple
 * "key = value" lines, '#' comments), then command-line flags. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CONFIG_PATH_DEFAULT "/etc/kybernate/kybernated.conf"
#define STORE_PATH_DEFAULT "/var/lib/kybernate"
#define RUNC_ROOT_BASE_DEFAULT "/run/containerd/runc"
#define MAX_ROOTFS_DIFF_BYTES_DEFAULT (10ULL << 30)
#define MAX_CONNECTIONS_DEFAULT 256u
#define MAX_CONNECTIONS_PER_UID_DEFAULT 16u
#define IDLE_TIMEOUT_NS_DEFAULT (60LL * 1000000000LL)
#define MAX_REPLY_QUEUE_DEFAULT (16ULL << 20)
#define MAX_REPLY_MEMORY_DEFAULT (64ULL << 20)
/* The smallest reply bound accepted: two of the largest messages. */
#define REPLY_QUEUE_MIN (256ULL << 10)

typedef struct PullRule PullRule;

typedef struct Config {
        char *store;                 /* store = /var/lib/kybernate */
        char *socket;                /* socket = /run/kybernate/kybernated.sock */
        char *runc;                  /* runc = runc (found in PATH) */
        char *criu;                  /* criu = (empty: runc finds criu in PATH) */
        char *runc_root_base;        /* runc_root_base = /run/containerd/runc */
        uint32_t keep_per_container; /* keep_per_container = 3 */
        int64_t max_age_ns;          /* max_age = 7d (0 = no age limit) */
        bool durable;                /* durable = yes */
        char **allowed_restore_dirs; /* allowed_restore_dirs = /a:/b (colon or comma separated) */
        char *read_group;            /* read_group = (none) */
        gid_t read_gid;              /* resolved read_group, (gid_t)-1 if none */
        /* max_rootfs_diff_bytes = 10G: file data of the writable layer a
         * checkpoint stores (holes of sparse files not counted; 0 = no limit) */
        uint64_t max_rootfs_diff_bytes;

        /* Limits against clients that hog the daemon (see server.h). Root
         * (uid 0: the shims, root's kybernatectl) is never refused a
         * connection and never counted against these two: */
        uint32_t max_connections;         /* max_connections = 256: of all non-root uids together */
        uint32_t max_connections_per_uid; /* max_connections_per_uid = 16: of one non-root uid */
        /* idle_timeout = 60s: a connection with no request running is closed
         * after this long (0 = never) */
        int64_t idle_timeout_ns;
        /* max_reply_queue = 16M: replies queued for one connection that it
         * has not read yet; over it the connection is dropped */
        uint64_t max_reply_queue;
        /* max_reply_memory = 64M: replies queued for all connections
         * together; a non-root connection whose reply would go over it is
         * dropped (root's replies are counted but bounded only by
         * max_reply_queue) */
        uint64_t max_reply_memory;
        /* max_verify_jobs = (number of CPUs): checksum verifications (resolve,
         * inspect --verify, export) hashing at once; more wait in a queue */
        uint32_t max_verify_jobs;

        /* Restores from registry images (resolve.h, PullRule). Off unless
         * configured: pull_allow = REPOSITORY_PREFIX=NAMESPACES ... */
        PullRule *pull_rules;
        size_t n_pull_rules;
        char *registry_authfile; /* registry_authfile = (skopeo's own search) */
        char *registry_cert_dir; /* registry_cert_dir = (the certs.d layout) */
        bool registry_insecure;  /* registry_insecure = no (test registries only) */
        /* push_to = HOST[:PORT]/REPO (none): every checkpoint taken is pushed
         * as HOST[:PORT]/REPO:<id> (push.h), and a Resolve of an id this node
         * does not have pulls that image (under pull_allow) */
        char *push_to;

        /* Why the last config_set() failed, when it says more than its errno
         * (static string), else NULL. */
        const char *error;
} Config;

typedef struct RegistryOptions RegistryOptions;
/* What the registry_* keys say, as common/registry.h takes it (pushes
 * compress with REGISTRY_PUSH_COMPRESSION_DEFAULT); strings borrowed from c. */
void config_registry_options(const Config *c, RegistryOptions *ret);

int config_init(Config *c);
void config_done(Config *c);
/* Parses text (the file's content); on error *ret_line is the bad line. */
int config_parse(Config *c, const char *text, unsigned *ret_line);
/* Loads path; a missing file is fine unless required. */
int config_load(Config *c, const char *path, bool required, unsigned *ret_line);
int config_set(Config *c, const char *key, const char *value);
/* Whether the settings can be used together: an allowed_restore_dirs entry
 * that is the store, inside it or above it (compared by name, with symlinks
 * resolved on both sides) would let any tenant restore any checkpoint by
 * path, with no tenant rule and no checksum: -EINVAL and *ret_dir is that
 * entry. */
int config_check(const Config *c, const char **ret_dir);
