/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* kybernated settings: defaults, then /etc/kybernate/kybernated.conf (simple
 * "key = value" lines, '#' comments), then command-line flags. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define CONFIG_PATH_DEFAULT "/etc/kybernate/kybernated.conf"
#define STORE_PATH_DEFAULT "/var/lib/kybernate"
#define RUNC_ROOT_BASE_DEFAULT "/run/containerd/runc"
#define MAX_ROOTFS_DIFF_BYTES_DEFAULT (10ULL << 30)

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
} Config;

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
