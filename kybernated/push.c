/* SPDX-License-Identifier: Apache-2.0 */
/* push_to: see push.h. */
#include <inttypes.h>

#include "checkpoint-image.h"
#include "image-ref.h"
#include "log.h"
#include "mount-util.h"
#include "ops.h"
#include "push.h"
#include "registry.h"
#include "resolve.h"
#include "spawn.h"
#include "store.h"

#define PUSH_RETRY_FIRST_USEC (30 * USEC_PER_SEC)
#define PUSH_RETRY_MAX_USEC (30 * 60 * USEC_PER_SEC)

struct Pusher {
        Manager *manager;
        char **queue; /* ids, in the order they became ready; NULL-terminated */
        size_t n_queue;
        /* The push running (child set), or waiting for its retry (retry set). */
        CatalogEntry entry;
        char *dir;              /* the checkpoint's directory */
        char **member_names;    /* a pod's members (NULL-terminated, or NULL) */
        char **member_dirs;     /* and their directories */
        char *image;            /* push_to:<id> */
        char *layout;           /* <staging>/<random>: the OCI layout the child writes */
        sd_event_source *child; /* owns the child: unref kills and reaps it */
        int result_fd;
        sd_event_source *retry;
        uint64_t backoff_usec;
};

static void push_next(Pusher *p);

/* Done with the current checkpoint (pushed, gone, or to retry later). */
static void push_clear(Pusher *p) {
        p->child = sd_event_source_disable_unref(p->child);
        p->result_fd = safe_close(p->result_fd);
        remove_tree_one_fs_free(&p->layout);
        catalog_entry_done(&p->entry);
        free(p->dir);
        free(p->image);
        p->dir = p->image = NULL;
        strv_free(p->member_names);
        strv_free(p->member_dirs);
        p->member_names = p->member_dirs = NULL;
}

Pusher *pusher_free(Pusher *p) {
        if (!p)
                return NULL;
        push_clear(p);
        p->retry = sd_event_source_disable_unref(p->retry);
        strv_free(p->queue);
        free(p);
        return NULL;
}

static bool queued(const Pusher *p, const char *id) {
        if (p->entry.id && streq(p->entry.id, id))
                return true;
        for (size_t i = 0; i < p->n_queue; i++)
                if (streq(p->queue[i], id))
                        return true;
        return false;
}

static int enqueue(Pusher *p, const char *id, bool front) {
        if (queued(p, id))
                return 0;
        char *s = strdup(id);
        char **q = s ? reallocarray(p->queue, p->n_queue + 2, sizeof(char *)) : NULL;
        if (!q) {
                free(s);
                return -ENOMEM;
        }
        p->queue = q;
        if (front)
                memmove(q + 1, q, p->n_queue * sizeof(char *));
        q[front ? 0 : p->n_queue] = s;
        q[++p->n_queue] = NULL;
        return 0;
}

static char *dequeue(Pusher *p) {
        if (p->n_queue == 0)
                return NULL;
        char *id = p->queue[0];
        memmove(p->queue, p->queue + 1, p->n_queue * sizeof(char *)); /* with the NULL */
        p->n_queue--;
        return id;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Pusher *p = userdata;
        p->retry = sd_event_source_disable_unref(p->retry);
        push_next(p);
        return 0;
}

/* The current push failed: the checkpoint goes back to the head of the queue
 * and the queue waits (the registry is likely down for the others too). */
static void push_failed(Pusher *p, const char *why) {
        Manager *m = p->manager;
        uint64_t delay = p->backoff_usec ? p->backoff_usec : PUSH_RETRY_FIRST_USEC;
        p->backoff_usec = delay * 2 > PUSH_RETRY_MAX_USEC ? PUSH_RETRY_MAX_USEC : delay * 2;
        log_warning("Push of checkpoint %s to %s failed: %s; the checkpoint stays ready here, the push is "
                    "retried in %" PRIu64 " s and at the next start",
                    p->entry.id, p->image, why, delay / USEC_PER_SEC);
        int r = enqueue(p, p->entry.id, true);
        push_clear(p);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &p->retry, CLOCK_MONOTONIC, delay, USEC_PER_SEC,
                                               on_retry, p);
        if (r < 0)
                log_warning("Cannot schedule the retry of a push (%s): it is done at the next start",
                            strerror(-r));
}

static void push_child(void *userdata, int result_fd) {
        const Pusher *p = userdata;
        spawn_close_fds_but(result_fd);
        Kybernate__V1__CheckpointInfo info;
        Kybernate__V1__CheckpointOptions opts;
        entry_to_info(&p->entry, p->dir, &info, &opts);
        ArchiveSource src = {.path = p->dir,
                             .member_names = (const char *const *)p->member_names,
                             .member_dirs = (const char *const *)p->member_dirs,
                             .n_members = strv_length(p->member_names)};
        char local[OCI_DIGEST_MAX];
        uint64_t bytes = 0;
        int r = checkpoint_image_write(&info, &src, p->layout, local, NULL, NULL, &bytes);
        if (r < 0) {
                _cleanup_free_ char *msg = strdup_printf("packing the image failed: %s", strerror(-r));
                spawn_report(result_fd, r, msg);
                return;
        }
        RegistryOptions ro;
        config_registry_options(p->manager->config, &ro);
        ro.compression = checkpoint_image_compression(&src);
        char digest[IMAGE_DIGEST_LEN + 1];
        _cleanup_free_ char *err = NULL;
        r = registry_push(&ro, p->layout, p->image, digest, &err);
        spawn_report(result_fd, r, r >= 0 ? digest : err ? err : strerror(-r));
}

static int on_push_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Pusher *p = userdata;
        p->child = sd_event_source_disable_unref(p->child);
        _cleanup_free_ char *msg = NULL;
        int r = spawn_read_report(&p->result_fd, si, &msg);
        if (r >= 0 && !image_digest_valid(msg)) {
                r = -EIO;
                free(msg);
                msg = strdup("skopeo reported no valid digest");
        }
        if (r < 0) {
                push_failed(p, msg ? msg : strerror(-r));
                push_next(p);
                return 0;
        }
        _cleanup_free_ char *pushed = strdup_printf("%s@%s", p->image, msg);
        r = pushed ? catalog_set_pushed(p->manager->catalog, p->entry.id, pushed) : -ENOMEM;
        if (r == -ENOENT)
                log_info("Pushed checkpoint %s to %s, but it was deleted meanwhile", p->entry.id, pushed);
        else if (r < 0) {
                _cleanup_free_ char *why =
                        strdup_printf("recording it in the catalog failed: %s", strerror(-r));
                push_failed(p, why ? why : strerror(-r));
                push_next(p);
                return 0;
        } else
                log_info("Pushed checkpoint %s to %s", p->entry.id, pushed);
        p->backoff_usec = 0;
        push_clear(p);
        push_next(p);
        return 0;
}

/* A pod is pushed whole (checkpoint_image_write()): its members' container
 * names and directories. */
static int push_pod_members(Pusher *p) {
        _cleanup_(pod_members_done) PodMembers pm = {};
        int r = pod_members_load(p->manager->catalog, p->entry.id, &pm);
        if (r < 0)
                return r;
        if (pm.n == 0)
                return -ENOENT;
        p->member_names = calloc(pm.n + 1, sizeof(char *));
        p->member_dirs = calloc(pm.n + 1, sizeof(char *));
        if (!p->member_names || !p->member_dirs)
                return -ENOMEM;
        for (size_t i = 0; i < pm.n; i++) {
                if (!(p->member_names[i] = strdup(pm.items[i].k8s_container)))
                        return -ENOMEM;
                r = manager_checkpoint_dir(p->manager, pm.items[i].id, &p->member_dirs[i]);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Starts the push of the next queued checkpoint that is still ready and
 * marked, unless one runs or the queue waits for a retry. */
static void push_next(Pusher *p) {
        Manager *m = p->manager;
        while (!p->child && !p->retry && p->n_queue > 0) {
                _cleanup_free_ char *id = dequeue(p);
                int r = catalog_get(m->catalog, id, &p->entry);
                if (r < 0 || p->entry.state != CHECKPOINT_READY || !p->entry.push_pending) {
                        if (r < 0 && r != -ENOENT)
                                log_warning("Push of checkpoint %s skipped: catalog lookup failed: %s", id,
                                            strerror(-r));
                        catalog_entry_done(&p->entry);
                        continue; /* deleted, or pushed already */
                }
                char rnd[ID_LEN + 1];
                r = manager_checkpoint_dir(m, id, &p->dir);
                if (r >= 0 && p->entry.is_pod)
                        r = push_pod_members(p);
                if (r >= 0 && !(p->image = strdup_printf("%s:%s", m->config->push_to, id)))
                        r = -ENOMEM;
                if (r >= 0)
                        r = store_new_id(rnd);
                if (r >= 0 && !(p->layout = strdup_printf("%s/push-%s", m->staging_dir, rnd)))
                        r = -ENOMEM;
                if (r >= 0)
                        r = spawn_fork_watched(m->event, push_child, p, on_push_exit, &p->child,
                                               &p->result_fd);
                if (r < 0) {
                        if (!p->image)
                                p->image = strdup(m->config->push_to);
                        _cleanup_free_ char *why = strdup_printf("starting it failed: %s", strerror(-r));
                        push_failed(p, why ? why : strerror(-r));
                        return;
                }
                log_info("Pushing checkpoint %s to %s", id, p->image);
        }
}

static Pusher *pusher_get(Manager *m) {
        if (!m->config->push_to || m->no_spawn)
                return NULL;
        if (!m->pusher) {
                m->pusher = calloc(1, sizeof(Pusher));
                if (!m->pusher)
                        return NULL;
                m->pusher->manager = m;
                m->pusher->result_fd = -EBADF;
        }
        return m->pusher;
}

void push_checkpoint(Manager *m, const char *id) {
        Pusher *p = pusher_get(m);
        if (!p)
                return;
        int r = enqueue(p, id, false);
        if (r < 0)
                log_warning("Cannot queue the push of checkpoint %s (%s): it is done at the next start", id,
                            strerror(-r));
        push_next(p);
}

static int queue_row(const CatalogEntry *e, void *userdata) {
        return enqueue(userdata, e->id, false);
}

int push_start(Manager *m) {
        Pusher *p = pusher_get(m);
        if (!p)
                return m->config->push_to && !m->no_spawn ? -ENOMEM : 0;
        int r = catalog_list_push_pending(m->catalog, queue_row, p);
        if (r < 0)
                return log_warning_errno(r, "Cannot list the checkpoints still to push: %m");
        if (r > 0)
                log_info("%d checkpoint(s) still to push to %s", r, m->config->push_to);
        push_next(p);
        return 0;
}
