/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The store's files: ids, safe removal, content checksums, durability.
 *
 * <store>/catalog.db            the catalog
 * <store>/checkpoints/<id>/     one checkpoint, as checkpointctl reads it:
 *     checkpoint/               CRIU images
 *     config.dump spec.dump     container config (Podman/CRI-O style) and OCI spec
 *     stats-dump                CRIU's dump statistics (copied from checkpoint/)
 *     kybernate.json            our metadata (not covered by the checksum)
 * <store>/staging/<random>/     imports being unpacked
 * <store>/logs/<id>-*.log       logs of failed checkpoints */

#include <stdbool.h>
#include <stdint.h>

#define STORE_METADATA_FILE "kybernate.json"

/* 32 random lowercase hex characters + NUL. */
int store_new_id(char ret[static 33]);

/* Size of and checksum over the regular files below dir (see daemon.proto for
 * the definition), skipping the top-level kybernate.json: "crc32c+sha256:<64
 * hex>", or with the algorithm of like when given (so rows written with the
 * earlier plain "sha256:" still verify; -EOPNOTSUPP for an unknown one). With
 * sync, every file and directory is fsync'ed as well. Anything but regular
 * files and directories (symlinks, devices, fifos) fails with -EINVAL, another
 * filesystem below with -EXDEV. */
#define STORE_CHECKSUM_MAX 80
int store_checksum(const char *dir, const char *like, bool sync, uint64_t *ret_size,
                   char ret_checksum[static STORE_CHECKSUM_MAX]);

/* fsyncs every regular file and directory below dir (and dir), staying on
 * its filesystem. */
int store_sync_tree(const char *dir);

/* This boot's id (/proc/sys/kernel/random/boot_id): files written before a
 * daemon crash but in this boot are still whole in the page cache. */
int store_boot_id(char ret[static 40]);

/* fsync a directory by path. */
int store_fsync_path(const char *path);
