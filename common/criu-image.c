/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>

#include "criu-image.h"
#include "criu/images.pb-c.h"

static uint32_t read_le32(const uint8_t *p) {
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void write_le32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t)v;
        p[1] = (uint8_t)(v >> 8);
        p[2] = (uint8_t)(v >> 16);
        p[3] = (uint8_t)(v >> 24);
}

int criu_image_foreach(const void *buf, size_t size, CriuImageKind kind, uint32_t magic, size_t max_entries,
                       CriuImageEntryFunc f, void *userdata) {
        const uint8_t *p = buf;
        size_t off = 0, n = 0;
        int r;

        if (!buf && size > 0)
                return -EINVAL;
        if (size > CRIU_IMAGE_FILE_MAX)
                return -EFBIG;

        if (kind != CRIU_IMAGE_INVENTORY) {
                uint32_t head = kind == CRIU_IMAGE_SERVICE ? CRIU_IMG_SERVICE_MAGIC : CRIU_IMG_COMMON_MAGIC;
                if (size - off < 4 || read_le32(p + off) != head)
                        return -EBADMSG;
                off += 4;
        }
        if (size - off < 4 || read_le32(p + off) != magic)
                return -EBADMSG;
        off += 4;

        while (off < size) {
                if (size - off < 4)
                        return -EBADMSG;
                uint32_t len = read_le32(p + off);
                off += 4;
                if (len > CRIU_IMAGE_ENTRY_MAX || len > size - off)
                        return -EBADMSG;
                if (n >= max_entries)
                        return -E2BIG;
                if (f) {
                        r = f(p + off, len, userdata);
                        if (r < 0)
                                return r;
                }
                off += len;
                n++;
        }
        return (int)MIN(n, (size_t)INT32_MAX);
}

CriuTree *criu_tree_free(CriuTree *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_procs; i++) {
                free(t->procs[i].threads);
                free(t->procs[i].comm);
        }
        free(t->procs);
        free(t);
        return NULL;
}

typedef struct PstreeParse {
        CriuTree *tree;
        size_t alloc;
} PstreeParse;

static int pstree_entry_cb(const uint8_t *data, size_t size, void *userdata) {
        PstreeParse *s = userdata;
        CriuTree *t = s->tree;

        Criu__PstreeEntry *e = criu__pstree_entry__unpack(NULL, size, data);
        if (!e)
                return -EBADMSG;

        int r = 0;
        if (!e->has_pid || !e->has_ppid || e->pid == 0 || e->n_threads > CRIU_TREE_THREADS_MAX) {
                r = -EBADMSG;
                goto out;
        }
        for (size_t i = 0; i < e->n_threads; i++)
                if (e->threads[i] == 0) {
                        r = -EBADMSG;
                        goto out;
                }

        if (GREEDY_REALLOC(t->procs, s->alloc, t->n_procs + 1, 16) < 0) {
                r = -ENOMEM;
                goto out;
        }

        CriuProcess *proc = &t->procs[t->n_procs];
        *proc = (CriuProcess){
                .pid = e->pid,
                .ppid = e->ppid,
                .pgid = e->has_pgid ? e->pgid : 0,
                .sid = e->has_sid ? e->sid : 0,
                .parent = SIZE_MAX,
        };
        if (e->n_threads > 0) {
                proc->threads = TAKE_PTR(e->threads);
                proc->n_threads = e->n_threads;
                e->n_threads = 0;
        }
        t->n_procs++;
out:
        /* e->threads was malloc()ed by protobuf-c's default allocator, so
         * taking it is fine; free_unpacked then sees n_threads == 0. */
        criu__pstree_entry__free_unpacked(e, NULL);
        return r;
}

typedef struct PidIndex {
        uint32_t pid;
        size_t idx;
} PidIndex;

static int pid_index_cmp(const void *a, const void *b) {
        const PidIndex *x = a, *y = b;
        return x->pid < y->pid ? -1 : x->pid > y->pid ? 1 : 0;
}

static const PidIndex *pid_index_find(const PidIndex *index, size_t n, uint32_t pid) {
        PidIndex key = {.pid = pid};
        return bsearch(&key, index, n, sizeof(PidIndex), pid_index_cmp);
}

static int tree_link(CriuTree *t) {
        if (t->n_procs == 0)
                return -EBADMSG;

        _cleanup_free_ PidIndex *index = calloc(t->n_procs, sizeof(PidIndex));
        if (!index)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_procs; i++)
                index[i] = (PidIndex){.pid = t->procs[i].pid, .idx = i};
        qsort(index, t->n_procs, sizeof(PidIndex), pid_index_cmp);
        for (size_t i = 1; i < t->n_procs; i++)
                if (index[i].pid == index[i - 1].pid)
                        return -EBADMSG; /* duplicate pid */

        /* CRIU writes the tree depth first: the root (ppid 0) comes first and
         * every parent before its children. Requiring that makes cycles
         * impossible. */
        if (t->procs[0].ppid != 0)
                return -EBADMSG;
        t->procs[0].parent = SIZE_MAX;
        t->procs[0].depth = 0;
        for (size_t i = 1; i < t->n_procs; i++) {
                CriuProcess *p = &t->procs[i];
                const PidIndex *parent = p->ppid ? pid_index_find(index, t->n_procs, p->ppid) : NULL;
                if (!parent || parent->idx >= i)
                        return -EBADMSG;
                p->parent = parent->idx;
                p->depth = t->procs[parent->idx].depth + 1;
        }
        return 0;
}

int criu_pstree_parse(const void *buf, size_t size, CriuTree **ret) {
        _cleanup_(criu_tree_freep) CriuTree *t = calloc(1, sizeof(CriuTree));
        if (!t)
                return -ENOMEM;
        PstreeParse s = {.tree = t};

        int r = criu_image_foreach(buf, size, CRIU_IMAGE_COMMON, CRIU_PSTREE_MAGIC, CRIU_TREE_PROCS_MAX,
                                   pstree_entry_cb, &s);
        if (r < 0)
                return r;
        r = tree_link(t);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

static char *comm_sanitize(const char *s) {
        size_t n = strnlen(s, CRIU_COMM_MAX);
        char *c = malloc(n + 1);
        if (!c)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];
                c[i] = (char)(ch >= 0x20 && ch < 0x7f ? ch : '?');
        }
        c[n] = 0;
        return c;
}

typedef struct CoreParse {
        char *comm;
        bool done;
} CoreParse;

static int core_entry_cb(const uint8_t *data, size_t size, void *userdata) {
        CoreParse *s = userdata;

        if (s->done) /* only the first entry describes the task */
                return 0;
        s->done = true;

        Criu__CoreEntry *e = criu__core_entry__unpack(NULL, size, data);
        if (!e)
                return -EBADMSG;

        const char *comm = NULL;
        if (e->tc && e->tc->comm)
                comm = e->tc->comm;
        else if (e->thread_core && e->thread_core->comm)
                comm = e->thread_core->comm;

        int r = 0;
        if (comm) {
                s->comm = comm_sanitize(comm);
                if (!s->comm)
                        r = -ENOMEM;
        }
        criu__core_entry__free_unpacked(e, NULL);
        return r;
}

int criu_core_parse_comm(const void *buf, size_t size, char **ret) {
        CoreParse s = {};
        int r = criu_image_foreach(buf, size, CRIU_IMAGE_COMMON, CRIU_CORE_MAGIC, 1, core_entry_cb, &s);
        if (r < 0) {
                free(s.comm);
                return r;
        }
        if (!s.comm)
                return -ENODATA;
        *ret = s.comm;
        return 0;
}

/* Images of one entry (stats, inventory): fn fills out and returns 1, or 0
 * when the entry holds nothing of it (-ENODATA for the image). */
typedef int (*SingleEntryFn)(const uint8_t *data, size_t size, void *out);

typedef struct SingleParse {
        SingleEntryFn fn;
        void *out;
        bool found;
} SingleParse;

static int single_entry_cb(const uint8_t *data, size_t size, void *userdata) {
        SingleParse *s = userdata;
        int r = s->fn(data, size, s->out);
        if (r < 0)
                return r;
        if (r > 0)
                s->found = true;
        return 0;
}

static int parse_single(const void *buf, size_t size, CriuImageKind kind, uint32_t magic, SingleEntryFn fn,
                        void *out) {
        SingleParse s = {.fn = fn, .out = out};
        int r = criu_image_foreach(buf, size, kind, magic, 1, single_entry_cb, &s);
        if (r < 0)
                return r;
        return s.found ? 0 : -ENODATA;
}

static int stats_entry(const uint8_t *data, size_t size, void *out) {
        CriuDumpStats *stats = out;
        int found = 0;

        Criu__StatsEntry *e = criu__stats_entry__unpack(NULL, size, data);
        if (!e)
                return -EBADMSG;
        if (e->dump) {
                const Criu__DumpStatsEntry *d = e->dump;
                *stats = (CriuDumpStats){
                        .freezing_time_us = d->freezing_time,
                        .frozen_time_us = d->frozen_time,
                        .memdump_time_us = d->memdump_time,
                        .memwrite_time_us = d->memwrite_time,
                        .pages_scanned = d->pages_scanned,
                        .pages_skipped_parent = d->pages_skipped_parent,
                        .pages_written = d->pages_written,
                        .pages_lazy = d->pages_lazy,
                        .has_irmap_resolve = d->has_irmap_resolve,
                        .irmap_resolve_us = d->irmap_resolve,
                };
                found = 1;
        }
        criu__stats_entry__free_unpacked(e, NULL);
        return found;
}

int criu_stats_parse(const void *buf, size_t size, CriuDumpStats *ret) {
        CriuDumpStats st = {};
        int r = parse_single(buf, size, CRIU_IMAGE_SERVICE, CRIU_STATS_MAGIC, stats_entry, &st);
        if (r < 0)
                return r;
        *ret = st;
        return 0;
}

static int inventory_entry(const uint8_t *data, size_t size, void *out) {
        CriuInventory *inv = out;

        Criu__InventoryEntry *e = criu__inventory_entry__unpack(NULL, size, data);
        if (!e)
                return -EBADMSG;
        int r = -EBADMSG;
        if (e->has_img_version) {
                *inv = (CriuInventory){
                        .img_version = e->img_version,
                        .has_dump_uptime = e->has_dump_uptime,
                        .dump_uptime = e->dump_uptime,
                        .has_lsmtype = e->has_lsmtype,
                        .lsmtype = e->lsmtype,
                        .tcp_close = e->has_tcp_close && e->tcp_close,
                };
                r = 1;
        }
        criu__inventory_entry__free_unpacked(e, NULL);
        return r;
}

int criu_inventory_parse(const void *buf, size_t size, CriuInventory *ret) {
        CriuInventory inv = {};
        int r = parse_single(buf, size, CRIU_IMAGE_INVENTORY, CRIU_INVENTORY_MAGIC, inventory_entry, &inv);
        if (r < 0)
                return r;
        *ret = inv;
        return 0;
}

/* A regular file of at most max bytes, path relative to dir_fd. */
static int read_regular_at(int dir_fd, const char *path, size_t max, char **ret, size_t *ret_size) {
        struct stat st;

        _cleanup_close_ int fd =
                openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        if ((uint64_t)st.st_size > max)
                return -EFBIG;
        return read_full_fd(fd, max, ret, ret_size);
}

int criu_image_read_at(int dir_fd, const char *name, size_t max, char **ret, size_t *ret_size) {
        if (strchr(name, '/') || streq(name, ".") || streq(name, ".."))
                return -EINVAL;
        return read_regular_at(dir_fd, name, max, ret, ret_size);
}

int criu_tree_load_at(int dir_fd, CriuTree **ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r;

        r = criu_image_read_at(dir_fd, "pstree.img", CRIU_IMAGE_FILE_MAX, &buf, &size);
        if (r < 0)
                return r;
        _cleanup_(criu_tree_freep) CriuTree *t = NULL;
        r = criu_pstree_parse(buf, size, &t);
        if (r < 0)
                return r;

        for (size_t i = 0; i < t->n_procs; i++) {
                char name[32];
                _cleanup_free_ char *core = NULL;
                size_t core_size;

                snprintf(name, sizeof(name), "core-%" PRIu32 ".img", t->procs[i].pid);
                /* A missing or damaged core image costs the name, not the tree. */
                if (criu_image_read_at(dir_fd, name, CRIU_IMAGE_FILE_MAX, &core, &core_size) < 0)
                        continue;
                (void)criu_core_parse_comm(core, core_size, &t->procs[i].comm);
        }
        *ret = TAKE_PTR(t);
        return 0;
}

int criu_tree_load(const char *dir, CriuTree **ret) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        return criu_tree_load_at(fd, ret);
}

int criu_stats_load(const char *path, CriuDumpStats *ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r = read_regular_at(AT_FDCWD, path, (size_t)1024 * 1024, &buf, &size);
        if (r < 0)
                return r;
        return criu_stats_parse(buf, size, ret);
}

int criu_inventory_load_at(int dir_fd, CriuInventory *ret) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r = criu_image_read_at(dir_fd, "inventory.img", (size_t)1024 * 1024, &buf, &size);
        if (r < 0)
                return r;
        return criu_inventory_parse(buf, size, ret);
}

int criu_tree_print(const CriuTree *t, FILE *f, const char *prefix) {
        for (size_t i = 0; i < t->n_procs; i++) {
                const CriuProcess *p = &t->procs[i];
                /* Deep trees are shown flat beyond 32 levels to bound the width. */
                int indent = (int)MIN(p->depth, (size_t)32) * 2;
                fprintf(f, "%s%*s%" PRIu32 "  %s", prefix ? prefix : "", indent, "", p->pid,
                        p->comm ? p->comm : "?");
                if (p->n_threads > 1)
                        fprintf(f, " (%zu threads)", p->n_threads);
                fputc('\n', f);
        }
        return ferror(f) ? -EIO : 0;
}

int criu_image_append_header(char **buf, size_t *size, CriuImageKind kind, uint32_t magic) {
        uint8_t h[8];
        size_t n = 0;

        if (kind != CRIU_IMAGE_INVENTORY) {
                write_le32(h, kind == CRIU_IMAGE_SERVICE ? CRIU_IMG_SERVICE_MAGIC : CRIU_IMG_COMMON_MAGIC);
                n = 4;
        }
        write_le32(h + n, magic);
        n += 4;

        char *p = realloc(*buf, *size + n);
        if (!p)
                return -ENOMEM;
        memcpy(p + *size, h, n);
        *buf = p;
        *size += n;
        return 0;
}

int criu_image_append_entry(char **buf, size_t *size, const void *data, size_t len) {
        if (len > CRIU_IMAGE_ENTRY_MAX)
                return -E2BIG;
        char *p = realloc(*buf, *size + 4 + len);
        if (!p)
                return -ENOMEM;
        write_le32((uint8_t *)p + *size, (uint32_t)len);
        if (len > 0)
                memcpy(p + *size + 4, data, len);
        *buf = p;
        *size += 4 + len;
        return 0;
}
