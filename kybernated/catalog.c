/* SPDX-License-Identifier: Apache-2.0 */
#include <sqlite3.h>
#include <stdio.h>

#include "catalog.h"
#include "util.h"

struct Catalog {
        sqlite3 *db;
        bool durable;
};

/* Each migration brings the schema from version i to i + 1. */
static const char *const migrations[CATALOG_SCHEMA_VERSION] = {
        /* 0 -> 1 */
        "CREATE TABLE checkpoints ("
        " id TEXT PRIMARY KEY NOT NULL,"
        " name TEXT UNIQUE,"
        " state INTEGER NOT NULL,"
        " containerd_namespace TEXT NOT NULL DEFAULT '',"
        " k8s_namespace TEXT NOT NULL DEFAULT '',"
        " k8s_pod TEXT NOT NULL DEFAULT '',"
        " k8s_container TEXT NOT NULL DEFAULT '',"
        " container_id TEXT NOT NULL DEFAULT '',"
        " image_ref TEXT NOT NULL DEFAULT '',"
        " image_digest TEXT NOT NULL DEFAULT '',"
        " created_ns INTEGER NOT NULL,"
        " size_bytes INTEGER NOT NULL DEFAULT 0,"
        " runc_version TEXT NOT NULL DEFAULT '',"
        " criu_version TEXT NOT NULL DEFAULT '',"
        " kernel_version TEXT NOT NULL DEFAULT '',"
        " options INTEGER NOT NULL DEFAULT 0,"
        " checksum TEXT NOT NULL DEFAULT '',"
        " restore_count INTEGER NOT NULL DEFAULT 0,"
        " pinned INTEGER NOT NULL DEFAULT 0,"
        " allow_cross_namespace INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX checkpoints_created ON checkpoints(created_ns);"
        "CREATE INDEX checkpoints_ctrd ON checkpoints(containerd_namespace, created_ns);"
        "CREATE INDEX checkpoints_k8s ON checkpoints(k8s_namespace, k8s_pod, k8s_container, created_ns);"
        "CREATE INDEX checkpoints_container ON checkpoints(container_id, created_ns);",
        /* 1 -> 2 */
        "ALTER TABLE checkpoints ADD COLUMN last_restored_ns INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE checkpoints ADD COLUMN durable INTEGER NOT NULL DEFAULT 0;"
        "ALTER TABLE checkpoints ADD COLUMN bundle TEXT NOT NULL DEFAULT '';"
        "CREATE INDEX checkpoints_state ON checkpoints(state);",
        /* 2 -> 3: listing orders by (created_ns, id): one index for both
         * spares a sort of the whole table on every list. */
        "CREATE INDEX checkpoints_created_id ON checkpoints(created_ns, id); DROP INDEX checkpoints_created;",
        /* 3 -> 4: boot id recorded once runc's dump is complete (see catalog.h) */
        "ALTER TABLE checkpoints ADD COLUMN dumped_boot_id TEXT NOT NULL DEFAULT '';",
        /* 4 -> 5: a pending checkpoint of a running container (which it pauses
         * or CRIU freezes) and where runc keeps it: what start-up recovery
         * needs to thaw it after a crash (see catalog.h) */
        ("ALTER TABLE checkpoints ADD COLUMN thaw INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE checkpoints ADD COLUMN runc_root TEXT NOT NULL DEFAULT '';"),
        /* 5 -> 6: the registry image a pulled checkpoint came from, looked up
         * by a restore from that image (see catalog.h) */
        ("ALTER TABLE checkpoints ADD COLUMN source_image TEXT NOT NULL DEFAULT '';"
         "CREATE INDEX checkpoints_source ON checkpoints(source_image) WHERE source_image != '';"),
        /* 6 -> 7: a checkpoint to push to the push_to repository, and where
         * it was pushed (see catalog.h) */
        ("ALTER TABLE checkpoints ADD COLUMN push_pending INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE checkpoints ADD COLUMN pushed_image TEXT NOT NULL DEFAULT '';"
         "CREATE INDEX checkpoints_push ON checkpoints(created_ns) WHERE push_pending != 0;"),
        /* 7 -> 8: pod checkpoints and their members (see catalog.h) */
        ("ALTER TABLE checkpoints ADD COLUMN pod_id TEXT NOT NULL DEFAULT '';"
         "ALTER TABLE checkpoints ADD COLUMN is_pod INTEGER NOT NULL DEFAULT 0;"
         "ALTER TABLE checkpoints ADD COLUMN thaw_cgroup TEXT NOT NULL DEFAULT '';"
         "ALTER TABLE checkpoints ADD COLUMN frozen_usec INTEGER NOT NULL DEFAULT 0;"
         "CREATE INDEX checkpoints_pod ON checkpoints(pod_id) WHERE pod_id != '';"),
};

#define COLUMNS                                                                                         \
        "id, name, state, containerd_namespace, k8s_namespace, k8s_pod, k8s_container, container_id, "  \
        "image_ref, image_digest, created_ns, size_bytes, runc_version, criu_version, kernel_version, " \
        "options, checksum, restore_count, pinned, allow_cross_namespace, last_restored_ns, durable, "  \
        "bundle, dumped_boot_id, thaw, runc_root, source_image, push_pending, pushed_image, pod_id, "   \
        "is_pod, thaw_cgroup, frozen_usec"

static int sqlite_to_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
                return -EBADMSG;
        case SQLITE_TOOBIG:
                return -E2BIG;
        case SQLITE_MISUSE:
        case SQLITE_RANGE:
                return -EINVAL;
        default:
                return -EIO;
        }
}

static void finalizep(sqlite3_stmt **s) {
        sqlite3_finalize(*s);
}
#define _cleanup_stmt_ _cleanup_(finalizep)

static int exec(Catalog *c, const char *sql) {
        return sqlite_to_errno(sqlite3_exec(c->db, sql, NULL, NULL, NULL));
}

static int prepare(Catalog *c, const char *sql, sqlite3_stmt **ret) {
        return sqlite_to_errno(sqlite3_prepare_v2(c->db, sql, -1, ret, NULL));
}

/* A change to a pending row need not survive power loss: after a reboot
 * every pending row is removed (its dump cannot be completed from a page
 * cache that is gone). Committed without fsync it still survives a crash of
 * the daemon, and a checkpoint costs two fsyncs fewer; the change that makes
 * a row ready is fsync'ed when durable. */
static int step_pending_change(Catalog *c, sqlite3_stmt *s) {
        if (c->durable && exec(c, "PRAGMA synchronous=NORMAL") < 0)
                return -EIO;
        int r = sqlite_to_errno(sqlite3_step(s));
        if (c->durable && exec(c, "PRAGMA synchronous=FULL") < 0 && r >= 0)
                r = -EIO;
        return r;
}

int catalog_exec(Catalog *c, const char *sql) {
        return exec(c, sql);
}

int catalog_begin(Catalog *c) {
        return exec(c, "BEGIN IMMEDIATE");
}
int catalog_commit(Catalog *c) {
        return exec(c, "COMMIT");
}
int catalog_rollback(Catalog *c) {
        return exec(c, "ROLLBACK");
}

static int read_version(Catalog *c, int *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(c, "SELECT version FROM schema_version", &s);
        if (r < 0)
                return r;
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
                *ret = sqlite3_column_int(s, 0);
                return 0;
        }
        if (rc == SQLITE_DONE) {
                *ret = 0;
                return 0;
        }
        r = sqlite_to_errno(rc);
        return r < 0 ? r : -EIO; /* never 0 without *ret */
}

static int migrate(Catalog *c, int target) {
        int r, version;

        r = exec(c, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
        if (r < 0)
                return r;
        r = catalog_begin(c);
        if (r < 0)
                return r;
        r = read_version(c, &version);
        if (r < 0)
                goto fail;
        if (version > CATALOG_SCHEMA_VERSION) {
                r = -EPROTONOSUPPORT; /* written by a newer kybernated */
                goto fail;
        }
        for (int v = version; v < target; v++) {
                r = exec(c, migrations[v]);
                if (r < 0)
                        goto fail;
        }
        if (version < target) {
                char sql[96];
                snprintf(sql, sizeof(sql),
                         "DELETE FROM schema_version; INSERT INTO schema_version VALUES (%d)", target);
                r = exec(c, sql);
                if (r < 0)
                        goto fail;
        }
        return catalog_commit(c);
fail:
        (void)catalog_rollback(c);
        return r;
}

int catalog_open(const char *path, bool durable, Catalog **ret) {
        return catalog_open_at_version(path, durable, CATALOG_SCHEMA_VERSION, ret);
}

int catalog_open_at_version(const char *path, bool durable, int version, Catalog **ret) {
        int r;

        if (version < 1 || version > CATALOG_SCHEMA_VERSION)
                return -EINVAL;

        Catalog *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->durable = durable;
        int rc = sqlite3_open_v2(path, &c->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                         SQLITE_OPEN_EXRESCODE,
                                 NULL);
        if (rc != SQLITE_OK) {
                r = sqlite_to_errno(rc);
                goto fail;
        }
        sqlite3_busy_timeout(c->db, 5000);
        if (!streq(path, ":memory:")) {
                r = exec(c, "PRAGMA journal_mode=WAL");
                if (r < 0)
                        goto fail;
        }
        r = exec(c, durable ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        if (r < 0)
                goto fail;
        r = migrate(c, version);
        if (r < 0)
                goto fail;
        *ret = c;
        return 0;
fail:
        catalog_close(c);
        return r;
}

Catalog *catalog_close(Catalog *c) {
        if (!c)
                return NULL;
        sqlite3_close_v2(c->db);
        free(c);
        return NULL;
}

int catalog_schema_version(Catalog *c) {
        int v, r = read_version(c, &v);
        return r < 0 ? r : v;
}

void catalog_entry_done(CatalogEntry *e) {
        if (!e)
                return;
        char **strs[] = {&e->id,
                         &e->name,
                         &e->containerd_namespace,
                         &e->k8s_namespace,
                         &e->k8s_pod,
                         &e->k8s_container,
                         &e->container_id,
                         &e->image_ref,
                         &e->image_digest,
                         &e->runc_version,
                         &e->criu_version,
                         &e->kernel_version,
                         &e->checksum,
                         &e->bundle,
                         &e->dumped_boot_id,
                         &e->runc_root,
                         &e->source_image,
                         &e->pushed_image,
                         &e->pod_id,
                         &e->thaw_cgroup};
        for (size_t i = 0; i < ELEMENTSOF(strs); i++)
                free(*strs[i]);
        *e = (CatalogEntry){};
}

static int dup_or_null(const char *s, char **ret) {
        *ret = NULL;
        if (!s)
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int catalog_entry_copy(const CatalogEntry *src, CatalogEntry *ret) {
        CatalogEntry e = *src;
        int r = 0;
        r |= dup_or_null(src->id, &e.id);
        r |= dup_or_null(src->name, &e.name);
        r |= dup_or_null(src->containerd_namespace, &e.containerd_namespace);
        r |= dup_or_null(src->k8s_namespace, &e.k8s_namespace);
        r |= dup_or_null(src->k8s_pod, &e.k8s_pod);
        r |= dup_or_null(src->k8s_container, &e.k8s_container);
        r |= dup_or_null(src->container_id, &e.container_id);
        r |= dup_or_null(src->image_ref, &e.image_ref);
        r |= dup_or_null(src->image_digest, &e.image_digest);
        r |= dup_or_null(src->runc_version, &e.runc_version);
        r |= dup_or_null(src->criu_version, &e.criu_version);
        r |= dup_or_null(src->kernel_version, &e.kernel_version);
        r |= dup_or_null(src->checksum, &e.checksum);
        r |= dup_or_null(src->bundle, &e.bundle);
        r |= dup_or_null(src->dumped_boot_id, &e.dumped_boot_id);
        r |= dup_or_null(src->runc_root, &e.runc_root);
        r |= dup_or_null(src->source_image, &e.source_image);
        r |= dup_or_null(src->pod_id, &e.pod_id);
        r |= dup_or_null(src->thaw_cgroup, &e.thaw_cgroup);
        r |= dup_or_null(src->pushed_image, &e.pushed_image);
        if (r < 0) {
                catalog_entry_done(&e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

static const char *nz(const char *s) {
        return s ? s : "";
}

static int bind_text(sqlite3_stmt *s, int i, const char *v) {
        return sqlite_to_errno(sqlite3_bind_text(s, i, nz(v), -1, SQLITE_TRANSIENT));
}

int catalog_insert(Catalog *c, const CatalogEntry *e) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(
                c,
                "INSERT INTO checkpoints (" COLUMNS ") VALUES "
                "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
                "?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33)",
                &s);
        if (r < 0)
                return r;
        if (isempty(e->id))
                return -EINVAL;
        r = 0;
        r |= bind_text(s, 1, e->id);
        if (isempty(e->name))
                r |= sqlite_to_errno(sqlite3_bind_null(s, 2));
        else
                r |= bind_text(s, 2, e->name);
        r |= sqlite_to_errno(sqlite3_bind_int(s, 3, e->state));
        r |= bind_text(s, 4, e->containerd_namespace);
        r |= bind_text(s, 5, e->k8s_namespace);
        r |= bind_text(s, 6, e->k8s_pod);
        r |= bind_text(s, 7, e->k8s_container);
        r |= bind_text(s, 8, e->container_id);
        r |= bind_text(s, 9, e->image_ref);
        r |= bind_text(s, 10, e->image_digest);
        r |= sqlite_to_errno(sqlite3_bind_int64(s, 11, e->created_ns));
        r |= sqlite_to_errno(sqlite3_bind_int64(s, 12, (sqlite3_int64)e->size_bytes));
        r |= bind_text(s, 13, e->runc_version);
        r |= bind_text(s, 14, e->criu_version);
        r |= bind_text(s, 15, e->kernel_version);
        r |= sqlite_to_errno(sqlite3_bind_int64(s, 16, e->options));
        r |= bind_text(s, 17, e->checksum);
        r |= sqlite_to_errno(sqlite3_bind_int64(s, 18, (sqlite3_int64)e->restore_count));
        r |= sqlite_to_errno(sqlite3_bind_int(s, 19, e->pinned));
        r |= sqlite_to_errno(sqlite3_bind_int(s, 20, e->allow_cross_namespace));
        r |= sqlite_to_errno(sqlite3_bind_int64(s, 21, e->last_restored_ns));
        r |= sqlite_to_errno(sqlite3_bind_int(s, 22, e->durable));
        r |= bind_text(s, 23, e->bundle);
        r |= bind_text(s, 24, e->dumped_boot_id);
        r |= sqlite_to_errno(sqlite3_bind_int(s, 25, e->thaw));
        r |= bind_text(s, 26, e->runc_root);
        r |= bind_text(s, 27, e->source_image);
        r |= sqlite_to_errno(sqlite3_bind_int(s, 28, e->push_pending));
        r |= bind_text(s, 29, e->pushed_image);
        r |= bind_text(s, 30, e->pod_id);
        r |= sqlite_to_errno(sqlite3_bind_int(s, 31, e->is_pod));
        r |= bind_text(s, 32, e->thaw_cgroup);
        r |= sqlite_to_errno(sqlite3_bind_int64(s, 33, (sqlite3_int64)e->frozen_usec));
        if (r < 0)
                return -EINVAL;
        return e->state == CHECKPOINT_PENDING ? step_pending_change(c, s) : sqlite_to_errno(sqlite3_step(s));
}

/* borrow: point into SQLite's row buffer (valid until the next step) instead
 * of copying; list callbacks use that, saving ~15 allocations per row. */
static int col_text_full(sqlite3_stmt *s, int i, bool borrow, char **ret) {
        const unsigned char *t = sqlite3_column_text(s, i);
        const char *v = t ? (const char *)t : (sqlite3_column_type(s, i) == SQLITE_NULL ? NULL : "");
        if (borrow) {
                *ret = (char *)v;
                return 0;
        }
        return dup_or_null(v, ret);
}

static int row_to_entry_full(sqlite3_stmt *s, bool borrow, CatalogEntry *ret) {
        CatalogEntry e = {};
        int r = 0;
#define col_text(s, i, ret) col_text_full(s, i, borrow, ret)

        r |= col_text(s, 0, &e.id);
        r |= col_text(s, 1, &e.name);
        e.state = (CheckpointState)sqlite3_column_int(s, 2);
        r |= col_text(s, 3, &e.containerd_namespace);
        r |= col_text(s, 4, &e.k8s_namespace);
        r |= col_text(s, 5, &e.k8s_pod);
        r |= col_text(s, 6, &e.k8s_container);
        r |= col_text(s, 7, &e.container_id);
        r |= col_text(s, 8, &e.image_ref);
        r |= col_text(s, 9, &e.image_digest);
        e.created_ns = sqlite3_column_int64(s, 10);
        e.size_bytes = (uint64_t)sqlite3_column_int64(s, 11);
        r |= col_text(s, 12, &e.runc_version);
        r |= col_text(s, 13, &e.criu_version);
        r |= col_text(s, 14, &e.kernel_version);
        e.options = (uint32_t)sqlite3_column_int64(s, 15);
        r |= col_text(s, 16, &e.checksum);
        e.restore_count = (uint64_t)sqlite3_column_int64(s, 17);
        e.pinned = sqlite3_column_int(s, 18) != 0;
        e.allow_cross_namespace = sqlite3_column_int(s, 19) != 0;
        e.last_restored_ns = sqlite3_column_int64(s, 20);
        e.durable = sqlite3_column_int(s, 21) != 0;
        r |= col_text(s, 22, &e.bundle);
        r |= col_text(s, 23, &e.dumped_boot_id);
        e.thaw = sqlite3_column_int(s, 24) != 0;
        r |= col_text(s, 25, &e.runc_root);
        r |= col_text(s, 26, &e.source_image);
        e.push_pending = sqlite3_column_int(s, 27) != 0;
        r |= col_text(s, 28, &e.pushed_image);
        r |= col_text(s, 29, &e.pod_id);
        e.is_pod = sqlite3_column_int(s, 30) != 0;
        r |= col_text(s, 31, &e.thaw_cgroup);
        e.frozen_usec = (uint64_t)sqlite3_column_int64(s, 32);
#undef col_text
        if (r < 0) {
                catalog_entry_done(&e);
                return -ENOMEM;
        }
        *ret = e;
        return 0;
}

static int row_to_entry(sqlite3_stmt *s, CatalogEntry *ret) {
        return row_to_entry_full(s, false, ret);
}

/* Runs a one-text-parameter SELECT returning at most... rows; -ENOTUNIQ when
 * it returns more than one and unique is asked. */
static int get_one(Catalog *c, const char *sql, const char *const *params, size_t n_params, bool unique,
                   CatalogEntry *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(c, sql, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_params; i++) {
                r = bind_text(s, (int)i + 1, params[i]);
                if (r < 0)
                        return r;
        }
        int rc = sqlite3_step(s);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sqlite_to_errno(rc);
        CatalogEntry e = {};
        r = row_to_entry(s, &e);
        if (r < 0)
                return r;
        if (unique) {
                rc = sqlite3_step(s);
                if (rc == SQLITE_ROW) {
                        catalog_entry_done(&e);
                        return -ENOTUNIQ;
                }
        }
        *ret = e;
        return 0;
}

int catalog_get(Catalog *c, const char *id, CatalogEntry *ret) {
        return get_one(c, "SELECT " COLUMNS " FROM checkpoints WHERE id = ?1", &id, 1, false, ret);
}

int catalog_get_by_name(Catalog *c, const char *name, CatalogEntry *ret) {
        if (isempty(name))
                return -EINVAL;
        return get_one(c, "SELECT " COLUMNS " FROM checkpoints WHERE name = ?1", &name, 1, false, ret);
}

int catalog_get_by_prefix(Catalog *c, const char *prefix, CatalogEntry *ret) {
        /* Ids are hex, so a range scan on the primary key is exact (no LIKE wildcards). */
        char upper[80];
        size_t l = strlen(prefix);
        if (l == 0 || l >= sizeof(upper))
                return -EINVAL;
        for (size_t i = 0; i < l; i++)
                if (!strchr("0123456789abcdef", prefix[i]))
                        return -EINVAL;
        memcpy(upper, prefix, l);
        upper[l] = '\x7f';
        upper[l + 1] = 0;
        const char *params[] = {prefix, upper};
        return get_one(c, "SELECT " COLUMNS " FROM checkpoints WHERE id >= ?1 AND id < ?2 LIMIT 2", params,
                       2, true, ret);
}

int catalog_get_by_source_image(Catalog *c, const char *source_image, CatalogEntry *ret) {
        if (isempty(source_image))
                return -EINVAL;
        return get_one(c,
                       "SELECT " COLUMNS " FROM checkpoints WHERE source_image = ?1 AND state = 2 "
                       "ORDER BY created_ns DESC, id DESC LIMIT 1",
                       &source_image, 1, false, ret);
}

int catalog_get_newest(Catalog *c, const char *k8s_namespace, const char *k8s_pod, const char *k8s_container,
                       CatalogEntry *ret) {
        const char *params[] = {k8s_namespace, k8s_pod, k8s_container};
        return get_one(c,
                       "SELECT " COLUMNS " FROM checkpoints WHERE k8s_namespace = ?1 AND k8s_pod = ?2 AND "
                       "k8s_container = ?3 AND state = 2 ORDER BY created_ns DESC, id DESC LIMIT 1",
                       params, 3, false, ret);
}

/* Runs an UPDATE/DELETE with id as ?1; -ENOENT if no row changed. */
static int change_one_full(Catalog *c, const char *sql, const char *id, int64_t a, const char *b,
                           bool pending) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(c, sql, &s);
        if (r < 0)
                return r;
        r = bind_text(s, 1, id);
        if (r < 0)
                return r;
        int n = sqlite3_bind_parameter_count(s);
        if (n >= 2 && (r = sqlite_to_errno(sqlite3_bind_int64(s, 2, a))) < 0)
                return r;
        if (n >= 3 && (r = bind_text(s, 3, b)) < 0)
                return r;
        r = pending ? step_pending_change(c, s) : sqlite_to_errno(sqlite3_step(s));
        if (r < 0)
                return r;
        return sqlite3_changes(c->db) > 0 ? 0 : -ENOENT;
}

static int change_one(Catalog *c, const char *sql, const char *id, int64_t a, const char *b) {
        return change_one_full(c, sql, id, a, b, false);
}

int catalog_set_ready(Catalog *c, const char *id, uint64_t size_bytes, const char *checksum) {
        return change_one(c,
                          "UPDATE checkpoints SET state = 2, size_bytes = ?2, checksum = ?3 WHERE id = ?1",
                          id, (int64_t)size_bytes, checksum);
}

/* The dump is complete: the container runs again (resumed, or left running
 * by CRIU) or is gone (--exit), so nothing is left to thaw. */
int catalog_set_dumped(Catalog *c, const char *id, const char *boot_id) {
        return change_one_full(c, "UPDATE checkpoints SET dumped_boot_id = ?3, thaw = 0 WHERE id = ?1", id,
                               0, boot_id, true);
}

int catalog_set_thaw(Catalog *c, const char *id, bool thaw) {
        return change_one_full(c, "UPDATE checkpoints SET thaw = ?2 WHERE id = ?1", id, thaw, NULL, true);
}

int catalog_set_thaw_cgroup(Catalog *c, const char *id, const char *cgroup) {
        return change_one_full(c, "UPDATE checkpoints SET thaw_cgroup = ?3 WHERE id = ?1", id, 0, cgroup,
                               true);
}

int catalog_set_pod_ready(Catalog *c, const char *pod_id, uint64_t frozen_usec, size_t n,
                          const char *const *ids, const uint64_t *sizes, const char *const *checksums) {
        uint64_t total = 0;
        int r = catalog_begin(c);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = catalog_set_ready(c, ids[i], sizes[i], checksums[i]);
                total += sizes[i];
        }
        if (r >= 0)
                r = change_one(c,
                               "UPDATE checkpoints SET state = 2, size_bytes = ?2, thaw_cgroup = '' "
                               "WHERE id = ?1 AND is_pod != 0",
                               pod_id, (int64_t)total, NULL);
        if (r >= 0)
                r = change_one(c, "UPDATE checkpoints SET frozen_usec = ?2 WHERE id = ?1", pod_id,
                               (int64_t)frozen_usec, NULL);
        if (r < 0) {
                (void)catalog_rollback(c);
                return r;
        }
        return catalog_commit(c);
}

int catalog_set_pushed(Catalog *c, const char *id, const char *pushed_image) {
        if (isempty(pushed_image))
                return -EINVAL;
        return change_one(c, "UPDATE checkpoints SET push_pending = 0, pushed_image = ?3 WHERE id = ?1", id,
                          0, pushed_image);
}

int catalog_list_push_pending(Catalog *c, CatalogRowFn cb, void *userdata) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(c,
                        "SELECT " COLUMNS " FROM checkpoints WHERE push_pending != 0 AND state = 2 "
                        "ORDER BY created_ns, id",
                        &s);
        if (r < 0)
                return r;
        int rc, n = 0;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                CatalogEntry e = {};
                (void)row_to_entry_full(s, true, &e); /* borrowing cannot fail */
                r = cb(&e, userdata);
                if (r < 0)
                        return r;
                n++;
        }
        return rc == SQLITE_DONE ? n : sqlite_to_errno(rc);
}

int catalog_set_state(Catalog *c, const char *id, CheckpointState state) {
        return change_one(c, "UPDATE checkpoints SET state = ?2 WHERE id = ?1", id, state, NULL);
}

int catalog_set_pinned(Catalog *c, const char *id, bool pinned) {
        return change_one(c, "UPDATE checkpoints SET pinned = ?2 WHERE id = ?1", id, pinned, NULL);
}

int catalog_record_restore(Catalog *c, const char *id, int64_t now_ns) {
        return change_one(c,
                          "UPDATE checkpoints SET restore_count = restore_count + 1, last_restored_ns = ?2 "
                          "WHERE id = ?1",
                          id, now_ns, NULL);
}

int catalog_delete(Catalog *c, const char *id) {
        return change_one(c, "DELETE FROM checkpoints WHERE id = ?1", id, 0, NULL);
}

/* Builds "WHERE ..." for a filter; binds in the same order. */
static int filter_sql(const CatalogFilter *f, char *buf, size_t size) {
        static const char *const cols[] = {"containerd_namespace", "k8s_namespace", "k8s_pod",
                                           "k8s_container",        "container_id",  "pod_id"};
        const char *vals[] = {f->containerd_namespace, f->k8s_namespace, f->k8s_pod,
                              f->k8s_container,        f->container_id,  f->pod_id};
        size_t n = 0;
        int k = 0;

        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(cols); i++) {
                if (isempty(vals[i]))
                        continue;
                n += (size_t)snprintf(buf + n, size - n, "%s %s = ?%d", k ? " AND" : " WHERE", cols[i],
                                      k + 1);
                k++;
        }
        if (f->state)
                n += (size_t)snprintf(buf + n, size - n, "%s state = %d", k ? " AND" : " WHERE", f->state);
        return n < size ? 0 : -ENOBUFS;
}

/* Prepares sql (built around filter_sql()'s WHERE clause) and binds f's values to it. */
static int prepare_filtered(Catalog *c, const char *sql, const CatalogFilter *f, sqlite3_stmt **ret) {
        const char *vals[] = {f->containerd_namespace, f->k8s_namespace, f->k8s_pod,
                              f->k8s_container,        f->container_id,  f->pod_id};
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int k = 1, r;

        r = prepare(c, sql, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(vals); i++) {
                if (isempty(vals[i]))
                        continue;
                r = bind_text(s, k++, vals[i]);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

int catalog_list(Catalog *c, const CatalogFilter *f, CatalogRowFn cb, void *userdata) {
        static const CatalogFilter none = {};
        char where[512], sql[1024];
        int r, rc, n = 0;

        if (!f)
                f = &none;
        r = filter_sql(f, where, sizeof(where));
        if (r < 0)
                return r;
        if (f->limit)
                snprintf(sql, sizeof(sql),
                         "SELECT " COLUMNS " FROM checkpoints%s ORDER BY created_ns DESC, id DESC LIMIT %u",
                         where, f->limit);
        else
                snprintf(sql, sizeof(sql),
                         "SELECT " COLUMNS " FROM checkpoints%s ORDER BY created_ns DESC, id DESC", where);

        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        r = prepare_filtered(c, sql, f, &s);
        if (r < 0)
                return r;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
                CatalogEntry e = {};
                (void)row_to_entry_full(s, true, &e); /* borrowing cannot fail */
                r = cb ? cb(&e, userdata) : 0;
                if (r < 0)
                        return r;
                n++;
        }
        if (rc != SQLITE_DONE)
                return sqlite_to_errno(rc);
        return n;
}

int catalog_count(Catalog *c, const CatalogFilter *f, uint64_t *ret) {
        static const CatalogFilter none = {};
        char where[512], sql[640];
        int r;

        if (!f)
                f = &none;
        r = filter_sql(f, where, sizeof(where));
        if (r < 0)
                return r;
        snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM checkpoints%s", where);
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        r = prepare_filtered(c, sql, f, &s);
        if (r < 0)
                return r;
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return sqlite_to_errno(rc);
        *ret = (uint64_t)sqlite3_column_int64(s, 0);
        return 0;
}

int catalog_counts(Catalog *c, CatalogCounts *ret) {
        _cleanup_stmt_ sqlite3_stmt *s = NULL;
        int r = prepare(c,
                        "SELECT COALESCE(SUM(state = 2), 0), COALESCE(SUM(state = 1), 0), "
                        "COALESCE(SUM(state = 3), 0), COALESCE(SUM(pinned), 0), "
                        /* a pod checkpoint's size is its members': counted once */
                        "COALESCE(SUM(CASE WHEN is_pod != 0 THEN 0 ELSE size_bytes END), 0) "
                        "FROM checkpoints",
                        &s);
        if (r < 0)
                return r;
        int rc = sqlite3_step(s);
        if (rc != SQLITE_ROW)
                return sqlite_to_errno(rc);
        *ret = (CatalogCounts){
                .ready = (uint64_t)sqlite3_column_int64(s, 0),
                .pending = (uint64_t)sqlite3_column_int64(s, 1),
                .failed = (uint64_t)sqlite3_column_int64(s, 2),
                .pinned = (uint64_t)sqlite3_column_int64(s, 3),
                .bytes = (uint64_t)sqlite3_column_int64(s, 4),
        };
        return 0;
}
