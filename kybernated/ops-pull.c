/* SPDX-License-Identifier: Apache-2.0 */
/* Resolve of a registry image (REF_IMAGE): the image is pulled into the
 * catalog once, then resolved as a local checkpoint.
 *
 * Nothing touches the network unless a pull_allow rule lets the target's
 * namespace restore from the image's repository. Then, in steps, each
 * blocking one in a forked child (spawn_fork()) whose result comes back
 * through its pipe:
 *   1. resolve (child): the tag to the digest of the manifest's bytes
 *      (registry_resolve()); skipped for a reference with a digest;
 *   2. cache (parent): a ready row pulled from HOST/REPO@DIGEST is used as
 *      it is;
 *   3. fetch (child): skopeo copies exactly that digest into an OCI layout in
 *      the store's staging directory; the layout is read back as untrusted
 *      input (oci_image_read(): every blob against its digest), must be a
 *      checkpoint image whose manifest is the pinned digest and whose
 *      namespace annotations are the target's (image_tenant_check()), and
 *      its layer is unpacked by the validating extractor into a second
 *      staging directory, with the limits of kybernatectl import;
 *   4. adopt (parent): the tenant rule (the checkpoint's own namespaces, from
 *      its metadata, against the target's; a foreign checkpoint naming none
 *      takes the target's, which pull_allow allowed) and the image rule,
 *      then a row as op_import makes one, recording the source image, and
 *      its checksum (child);
 *   5. the checksum verification and the Resolve reply of a local checkpoint
 *      (resolve_reply()).
 * A pod checkpoint's image (its layer the pod's archive) is adopted in step 4
 * as an import of that archive is (pod_import(): the tenant rule on the pod
 * first, then the pod row, recording the image, and its members, each
 * checksummed); the reply is the member of the target container's name. The
 * other containers of the new pod find the pod row by the image (step 2).
 * A failure at any step leaves no row and no staging files. A client that
 * goes away during steps 1 and 3 kills the child (skopeo and the
 * decompressor die with it) and the staging files are removed; once the row
 * exists (step 4) the checksum goes on without it, as an import does, and the
 * row stays in the catalog for the next restore.
 *
 * A Resolve of a full checkpoint id no row has, on a node with push_to
 * (push.h), comes here as the image push_to:<id> with the local lookup's
 * answer (not_found): a node without pull_allow rules gives that answer
 * without asking the registry, and so does a failed step 1 (no such tag). */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "archive.h"
#include "image-ref.h"
#include "log.h"
#include "metadata.h"
#include "mount-util.h"
#include "oci-image.h"
#include "ops.h"
#include "registry.h"
#include "resolve.h"
#include "spawn.h"
#include "store.h"

typedef enum PullStep {
        PULL_STEP_RESOLVE,
        PULL_STEP_WAIT, /* for another op fetching the same digest */
        PULL_STEP_FETCH,
        PULL_STEP_CHECKSUM,
} PullStep;

typedef struct PullOp {
        Manager *manager;
        struct PullOp *next;   /* in manager->pulls */
        sd_event_source *wake; /* the digest's fetcher ended: look again (PULL_STEP_WAIT) */
        Connection *conn;
        PullStep step;
        sd_event_source *child; /* owns the running child: unref kills and reaps it */
        int result_fd;
        ImageRef ref;
        char *image;     /* as the request named it */
        char *not_found; /* push_to:<id>: the local lookup's answer (op_resolve_image()) */
        char *pinned;    /* HOST[:PORT]/REPO@sha256:... */
        char digest[IMAGE_DIGEST_LEN + 1];
        char *layout;  /* <staging>/<id>: the OCI layout skopeo writes */
        char *staging; /* <staging>/<id>: the unpacked checkpoint */
        /* The target, copied (the request goes away). */
        char *t_containerd_namespace, *t_k8s_namespace, *t_k8s_pod, *t_k8s_container, *t_image_ref;
        bool ignore_image, count_restore;
        CatalogEntry entry; /* the adopted row (step 4) */
        char *dir;
        int64_t step_usec;   /* when the running step started: its log line's time and rate */
        char *want_checksum; /* the image's own io.kybernate.checkpoint.checksum, if it has one */
} PullOp;

/* A checksum of a kind the store computes (store_checksum()): at most 128
 * bytes of [a-z0-9:+-]. */
static bool checksum_token_valid(const char *s) {
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789:+-");
        return n <= 128 && s[n] == 0 && (startswith(s, "sha256:") || startswith(s, "crc32c+sha256:"));
}

static RestoreIdentity pull_target(const PullOp *op) {
        return (RestoreIdentity){
                .containerd_namespace = op->t_containerd_namespace,
                .k8s_namespace = op->t_k8s_namespace,
                .k8s_pod = op->t_k8s_pod,
                .k8s_container = op->t_k8s_container,
                .image_ref = op->t_image_ref,
        };
}

static void pull_fetch(PullOp *op);

static int pull_wake(sd_event_source *s, void *userdata) {
        PullOp *op = userdata;
        op->wake = sd_event_source_disable_unref(op->wake);
        pull_fetch(op);
        return 0;
}

/* An op that fetched a digest ends (pulled, failed or cancelled): those
 * waiting for the same digest look again, at the cache first. */
static void pull_wake_waiters(const PullOp *op) {
        for (PullOp *w = op->manager->pulls; w; w = w->next)
                if (w != op && w->step == PULL_STEP_WAIT && !w->wake && streq_ptr(w->pinned, op->pinned) &&
                    sd_event_add_defer(op->manager->event, &w->wake, pull_wake, w) < 0)
                        w->wake = NULL; /* it waits for the next fetcher of the digest, or its client */
}

static PullOp *pull_op_free(PullOp *op) {
        if (!op)
                return NULL;
        Manager *m = op->manager;
        for (PullOp **p = &m->pulls; *p; p = &(*p)->next)
                if (*p == op) {
                        *p = op->next;
                        break;
                }
        if (op->step == PULL_STEP_FETCH || op->step == PULL_STEP_CHECKSUM)
                pull_wake_waiters(op);
        sd_event_source_disable_unref(op->wake);
        m->n_jobs--;
        if (op->child) {
                (void)sd_event_source_send_child_signal(op->child, SIGKILL, NULL, 0);
                sd_event_source_disable_unref(op->child);
        }
        safe_close(op->result_fd);
        remove_tree_one_fs_free(&op->layout);
        remove_tree_one_fs_free(&op->staging);
        image_ref_done(&op->ref);
        free(op->image);
        free(op->not_found);
        free(op->pinned);
        free(op->t_containerd_namespace);
        free(op->t_k8s_namespace);
        free(op->t_k8s_pod);
        free(op->t_k8s_container);
        free(op->t_image_ref);
        catalog_entry_done(&op->entry);
        free(op->dir);
        free(op->want_checksum);
        free(op);
        return NULL;
}

#define MIB (1024.0 * 1024.0)

/* The running step's time so far, at least 1 ms (a rate divides by it). */
static double pull_seconds(const PullOp *op) {
        int64_t usec = now_monotonic_usec() - op->step_usec;
        return usec > 1000 ? (double)usec / 1e6 : 1e-3;
}

static void pull_progress(PullOp *op, const char *stage, const char *fmt, ...) _printf_(3, 4);
static void pull_progress(PullOp *op, const char *stage, const char *fmt, ...) {
        if (!op->conn)
                return;
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = strdup_vprintf(fmt, ap);
        va_end(ap);
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        Kybernate__V1__Progress p = KYBERNATE__V1__PROGRESS__INIT;
        p.stage = (char *)stage;
        p.message = msg;
        resp.result_case = KYBERNATE__V1__RESPONSE__RESULT_PROGRESS;
        resp.progress = &p;
        (void)connection_send(op->conn, &resp, false);
}

/* The op leaves its connection (before a reply, which marks the request done). */
static Connection *pull_op_release(PullOp *op) {
        Connection *c = op->conn;
        if (c) {
                c->op = NULL;
                c->op_detach = NULL;
        }
        op->conn = NULL;
        return c;
}

static void pull_fail(PullOp *op, int r, const char *fmt, ...) _printf_(3, 4);
static void pull_fail(PullOp *op, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *msg = strdup_vprintf(fmt, ap);
        va_end(ap);
        log_warning("Resolve of image %s failed: %s", op->image, msg ? msg : strerror(-r));
        Connection *c = pull_op_release(op);
        if (c)
                connection_send_error(c, r, "%s", msg ? msg : strerror(-r));
        pull_op_free(op);
}

static void pull_detach(void *userdata) {
        PullOp *op = userdata;
        op->conn = NULL;
        /* Steps 1 and 3 stop here (the child killed, the staging removed);
         * the checksum of an adopted row goes on (see the top). */
        if (op->step != PULL_STEP_CHECKSUM) {
                log_info("Pull of %s cancelled: the client went away", op->image);
                pull_op_free(op);
        }
}

/* Step 2: a ready row from the pinned image already? 1 and the request
 * answered (or handed to the verification), 0 if not. */
static int pull_try_cache(Connection *c, const char *pinned, const RestoreIdentity *t, bool ignore_image,
                          bool count_restore) {
        CatalogEntry e = {};
        int r = catalog_get_by_source_image(c->manager->catalog, pinned, &e);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                connection_send_error(c, r, "catalog lookup failed: %s", strerror(-r));
                return 1;
        }
        log_info("Image %s is checkpoint %s already (cached, not pulled again)", pinned, e.id);
        resolve_reply(c, &e, t, ignore_image, count_restore);
        return 1;
}

/* ---- the children ---- */

static void resolve_child(void *userdata, int result_fd) {
        const PullOp *op = userdata;
        spawn_close_fds_but(result_fd);
        RegistryOptions ro;
        config_registry_options(op->manager->config, &ro);
        char digest[IMAGE_DIGEST_LEN + 1];
        _cleanup_free_ char *err = NULL;
        int r = registry_resolve(&ro, op->image, digest, &err);
        spawn_report(result_fd, r, r >= 0 ? digest : err ? err : strerror(-r));
}

/* Step 3 in the child: fetch, validate, unpack. 0, or a negative errno and
 * *ret_msg saying why. */
static int fetch(const PullOp *op, char **ret_msg) {
        RegistryOptions ro;
        config_registry_options(op->manager->config, &ro);
        _cleanup_free_ char *err = NULL;
        int r = registry_pull(&ro, op->pinned, op->layout, &err);
        if (r < 0) {
                *ret_msg = strdup_printf("pulling %s failed: %s", op->pinned, err ? err : strerror(-r));
                return r;
        }
        OciImage img;
        r = oci_image_read_pinned(op->layout, op->digest, &img, &err);
        if (r < 0) {
                *ret_msg = strdup_printf("refusing %s: %s", op->pinned, err ? err : strerror(-r));
                return r;
        }
        RestoreIdentity t = pull_target(op);
        const char *reason = NULL;
        r = image_tenant_check(&img, &t, &reason);
        if (r < 0) {
                oci_image_done(&img);
                *ret_msg = strdup_printf("restore from image %s refused: %s", op->pinned, reason);
                return r;
        }
        _cleanup_close_ int in = -EBADF;
        pid_t pid = 0;
        uint64_t layer_bytes = img.layer_size;
        /* Our content checksum, checked against the adopted copy's (step 4):
         * a checkpoint damaged before it was pushed is refused here. */
        const char *sum = oci_annotation_get(&img, KYB_CHECKPOINT_CHECKSUM);
        _cleanup_free_ char *want = sum && checksum_token_valid(sum) ? strdup(sum) : NULL;
        r = oci_image_layer_tar(&img, &in, &pid);
        oci_image_done(&img);
        if (r < 0) {
                *ret_msg = strdup_printf("cannot decompress the layer of %s: %s", op->pinned, strerror(-r));
                return r;
        }
        _cleanup_close_ int dfd = open(op->staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
                r = negative_errno();
        /* The limits of kybernatectl import: a checkpoint is a few hundred
         * files even for big containers. */
        const ArchiveLimits alimits = {.max_entries = 100000};
        if (r >= 0)
                r = archive_extract(in, dfd, &alimits, op->manager->config->durable);
        int e = archive_decompress_end(TAKE_FD(in), pid, r >= 0);
        if (r >= 0)
                r = e;
        if (r < 0) {
                const char *why = r == -EPERM     ? "a member path leaves the archive (absolute or ..)"
                                  : r == -ENOTSUP ? "it contains links or special files"
                                  : r == -E2BIG   ? "it has more than 100000 members"
                                  : r == -EBADMSG ? "it is truncated or not a (compressed) tar archive"
                                                  : strerror(-r);
                *ret_msg = strdup_printf("refusing the layer of %s: %s", op->pinned, why);
                return r;
        }
        /* The layer's bytes for the log line, and the checksum to expect. */
        *ret_msg = strdup_printf("%" PRIu64 " %s", layer_bytes, want ? want : "");
        return 0;
}

static void fetch_child(void *userdata, int result_fd) {
        const PullOp *op = userdata;
        spawn_close_fds_but(result_fd);
        _cleanup_free_ char *msg = NULL;
        int r = fetch(op, &msg);
        spawn_report(result_fd, r, msg);
}

static int pull_start_child(PullOp *op, void (*fn)(void *userdata, int result_fd),
                            sd_event_child_handler_t handler) {
        int r = spawn_fork_watched(op->manager->event, fn, op, handler, &op->child, &op->result_fd);
        if (r >= 0)
                op->step_usec = now_monotonic_usec();
        return r;
}

/* ---- step 4: adoption ---- */

static void pull_adopted(int r, uint64_t size, const char *checksum, void *userdata) {
        PullOp *op = userdata;
        Manager *m = op->manager;
        CatalogEntry *e = &op->entry;
        Connection *c = pull_op_release(op);

        if (r >= 0 && op->want_checksum && !streq(op->want_checksum, checksum)) {
                (void)manager_remove_checkpoint(m, e->id);
                log_warning("Pull of %s refused: its content checksum is %s, the image says %s", op->pinned,
                            checksum, op->want_checksum);
                if (c)
                        connection_send_error(c, EBADMSG,
                                              "refusing %s: its content checksum is %s, its annotation "
                                              "io.kybernate.checkpoint.checksum says %s (damaged before it "
                                              "was pushed)",
                                              op->pinned, checksum, op->want_checksum);
                pull_op_free(op);
                return;
        }
        if (r >= 0)
                r = adopt_ready(m, e, op->dir, size, checksum);
        if (r < 0) {
                (void)manager_remove_checkpoint(m, e->id);
                if (c)
                        connection_send_error(c, r, "adopting the pulled checkpoint failed: %s",
                                              strerror(-r));
                pull_op_free(op);
                return;
        }
        log_info("Pulled %s as checkpoint %s (%" PRIu64 " bytes, checksum in %.1f s, %.1f MiB/s)",
                 op->pinned, e->id, size, pull_seconds(op), (double)size / MIB / pull_seconds(op));
        if (c && e->checksum) {
                RestoreIdentity t = pull_target(op);
                CatalogEntry taken = *e;
                *e = (CatalogEntry){};
                /* The rules passed before the row was made; checked again on
                 * the row as it is now, like any resolve. */
                resolve_reply(c, &taken, &t, op->ignore_image, op->count_restore);
        } else if (c)
                connection_send_error(c, ENOMEM, "out of memory");
        pull_op_free(op);
}

/* The pod checkpoint of a pod image is in (or failed): the request's
 * container resolves to its member. */
static void pull_pod_adopted(Connection *unused, int r, const char *what, CatalogEntry *pod,
                             void *userdata) {
        PullOp *op = userdata;
        if (r < 0) {
                pull_fail(op, r, "adopting the pulled pod checkpoint failed: %s: %s", what, strerror(-r));
                return;
        }
        log_info("Pulled %s as pod checkpoint %s (%" PRIu64 " bytes, checksums in %.1f s)", op->pinned,
                 pod->id, pod->size_bytes, pull_seconds(op));
        Connection *c = pull_op_release(op);
        CatalogEntry e = {};
        if (c && catalog_entry_copy(pod, &e) < 0)
                connection_send_error(c, ENOMEM, "out of memory");
        else if (c) {
                RestoreIdentity t = pull_target(op);
                resolve_reply(c, &e, &t, op->ignore_image, op->count_restore);
        }
        pull_op_free(op);
}

/* A pod image (our push of a pod checkpoint): its layer is the pod's
 * archive, adopted as an import of it is, the pod recording the image. */
static void pull_adopt_pod(PullOp *op) {
        RestoreIdentity t = pull_target(op);
        PodImportParams p = {.source_image = op->pinned, .target = &t};
        _cleanup_free_ char *sd = TAKE_PTR(op->staging);
        op->step = PULL_STEP_CHECKSUM;
        op->step_usec = now_monotonic_usec();
        pull_progress(op, "checksum", "adopting the pod checkpoint of %s", op->pinned);
        pod_import(op->manager, NULL, sd, &p, pull_pod_adopted, op);
}

static void pull_adopt(PullOp *op) {
        Manager *m = op->manager;
        const char *sd = op->staging;
        RestoreIdentity t = pull_target(op);

        int r = staging_kind(sd);
        if (r == -ENOMEM) {
                pull_fail(op, ENOMEM, "out of memory");
                return;
        }
        if (r == STAGING_POD) {
                pull_adopt_pod(op);
                return;
        }
        if (r < 0) {
                pull_fail(op, EMEDIUMTYPE,
                          "refusing %s: its layer holds no CRIU images (checkpoint/inventory.img missing)",
                          op->pinned);
                return;
        }

        /* Identity: the archive's kybernate.json, then its spec (as import). */
        CatalogEntry *e = &op->entry;
        *e = (CatalogEntry){
                .state = CHECKPOINT_PENDING, .created_ns = now_realtime_ns(), .durable = m->config->durable};
        r = staging_identity(sd, e);
        if (r < 0) {
                pull_fail(op, r, "refusing %s: kybernate.json in its layer is invalid: %s", op->pinned,
                          strerror(-r));
                return;
        }
        /* A foreign checkpoint (Podman's --create-image, checkpointctl) names
         * no tenant: pull_allow let the target's namespaces restore from this
         * repository, so the row takes them. One that names a tenant (ours,
         * or Kubernetes annotations in its spec.dump) is checked below. */
        if (isempty(e->containerd_namespace) && isempty(e->k8s_namespace)) {
                char **field[] = {&e->containerd_namespace, &e->k8s_namespace};
                const char *value[] = {t.containerd_namespace, t.k8s_namespace};
                for (size_t i = 0; i < ELEMENTSOF(field); i++) {
                        free(*field[i]);
                        *field[i] = value[i] ? strdup(value[i]) : NULL;
                        if (value[i] && !*field[i]) {
                                pull_fail(op, ENOMEM, "out of memory");
                                return;
                        }
                }
        }

        /* The tenant and image rules before any row exists. */
        const char *why = NULL;
        if (tenant_check(e, &t, &why) < 0) {
                pull_fail(op, EACCES, "restore from image %s refused: %s", op->pinned, why);
                return;
        }
        if (!op->ignore_image) {
                char msg[1024];
                r = image_check(e, &t, msg, sizeof(msg));
                if (r < 0) {
                        pull_fail(op, -r, "restore from image %s refused: %s", op->pinned, msg);
                        return;
                }
        }

        e->source_image = strdup(op->pinned);
        r = e->source_image ? staging_adopt(m, sd, e, &op->dir) : -ENOMEM;
        if (r < 0) {
                pull_fail(op, r, "adopting the pulled checkpoint failed: %s", strerror(-r));
                return;
        }
        free(op->staging); /* moved */
        op->staging = NULL;
        op->step = PULL_STEP_CHECKSUM;
        op->step_usec = now_monotonic_usec();
        pull_progress(op, "checksum", "computing the checksum of checkpoint %s", e->id);
        r = checksum_task_start(m->event, op->dir, op->want_checksum, m->config->durable, pull_adopted, op,
                                NULL);
        if (r < 0) {
                (void)manager_remove_checkpoint(m, e->id);
                pull_fail(op, r, "adopting the pulled checkpoint failed: %s", strerror(-r));
        }
}

/* ---- steps 1 and 3 ---- */

static int on_fetch_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        PullOp *op = userdata;
        op->child = sd_event_source_disable_unref(op->child);
        _cleanup_free_ char *msg = NULL;
        int r = spawn_read_report(&op->result_fd, si, &msg);
        remove_tree_one_fs_free(&op->layout);
        if (r < 0) {
                pull_fail(op, r, "%s", msg ? msg : strerror(-r));
                return 0;
        }
        char *end = NULL;
        uint64_t bytes = msg ? strtoull(msg, &end, 10) : 0;
        if (end && *end == ' ' && checksum_token_valid(end + 1))
                op->want_checksum = strdup(end + 1);
        log_info("Fetched, verified and unpacked %s: %" PRIu64 " bytes in %.1f s (%.1f MiB/s)", op->pinned,
                 bytes, pull_seconds(op), (double)bytes / MIB / pull_seconds(op));
        pull_adopt(op);
        return 0;
}

static int pull_staging_dir(Manager *m, char **ret) {
        char id[ID_LEN + 1];
        int r = store_new_id(id);
        if (r < 0)
                return r;
        _cleanup_free_ char *d = strdup_printf("%s/%s", m->staging_dir, id);
        if (!d)
                return -ENOMEM;
        if (mkdir(d, 0700) < 0)
                return negative_errno();
        *ret = TAKE_PTR(d);
        return 0;
}

static void pull_fetch(PullOp *op) {
        Connection *c = op->conn;
        RestoreIdentity t = pull_target(op);
        free(op->pinned);
        op->pinned = image_ref_pinned(&op->ref, op->digest);
        if (!op->pinned) {
                pull_fail(op, ENOMEM, "out of memory");
                return;
        }
        /* Step 2: pulled before? The op is done with either way. */
        if (c) {
                pull_op_release(op);
                if (pull_try_cache(c, op->pinned, &t, op->ignore_image, op->count_restore) > 0) {
                        pull_op_free(op);
                        return;
                }
                op->conn = c;
                c->op = op;
                c->op_detach = pull_detach;
        }
        /* Another request fetching the same digest: one pull for both. */
        for (const PullOp *f = op->manager->pulls; f; f = f->next)
                if (f != op && (f->step == PULL_STEP_FETCH || f->step == PULL_STEP_CHECKSUM) &&
                    streq_ptr(f->pinned, op->pinned)) {
                        log_info("%s is being pulled for another request already: waiting for it",
                                 op->pinned);
                        op->step = PULL_STEP_WAIT;
                        pull_progress(op, "fetch", "waiting for the pull of %s under way", op->pinned);
                        return;
                }
        /* The layout directory is created by skopeo, the checkpoint one here;
         * both in the store's staging, which start-up clean-up empties. */
        int r = pull_staging_dir(op->manager, &op->staging);
        if (r >= 0)
                r = pull_staging_dir(op->manager, &op->layout);
        if (r >= 0 && rmdir(op->layout) < 0)
                r = negative_errno();
        if (r < 0) {
                pull_fail(op, r, "creating a staging directory failed: %s", strerror(-r));
                return;
        }
        op->step = PULL_STEP_FETCH;
        pull_progress(op, "fetch", "pulling %s", op->pinned);
        r = pull_start_child(op, fetch_child, on_fetch_exit);
        if (r < 0) {
                pull_fail(op, r, "starting the pull failed: %s", strerror(-r));
                return;
        }
}

static int on_resolve_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        PullOp *op = userdata;
        op->child = sd_event_source_disable_unref(op->child);
        _cleanup_free_ char *msg = NULL;
        int r = spawn_read_report(&op->result_fd, si, &msg);
        if (r >= 0 && !image_digest_valid(msg))
                r = -EIO;
        if (r < 0 && op->not_found) {
                /* Not pushed there (or the registry cannot say): as if there were no push_to. */
                pull_fail(op, ENOENT, "%s (not in the registry either: %s: %s)", op->not_found, op->image,
                          msg ? msg : strerror(-r));
                return 0;
        }
        if (r < 0) {
                pull_fail(op, r, "resolving %s failed: %s", op->image, msg ? msg : strerror(-r));
                return 0;
        }
        memcpy(op->digest, msg, IMAGE_DIGEST_LEN + 1);
        log_info("Resolved %s to %s in %.1f s", op->image, op->digest, pull_seconds(op));
        pull_fetch(op);
        return 0;
}

void op_resolve_image(Connection *c, const char *image, const RestoreIdentity *t, bool ignore_image,
                      bool count_restore, const char *not_found) {
        Manager *m = c->manager;
        const Config *cfg = m->config;
        ImageRef ref;
        const char *why = NULL;

        if (image_ref_parse(image, &ref, &why) < 0) {
                connection_send_error(c, EINVAL, "invalid image reference: %s", why);
                return;
        }
        _cleanup_free_ char *repository = strdup_printf("%s/%s", ref.registry, ref.repository);
        const char *ns = pull_target_namespace(t);
        if (!repository) {
                image_ref_done(&ref);
                connection_send_error(c, ENOMEM, "out of memory");
                return;
        }
        /* Before any network access. A node that pulls nothing answers for an
         * id as it would without push_to. */
        if (not_found && (cfg->n_pull_rules == 0 || m->no_spawn)) {
                image_ref_done(&ref);
                connection_send_error(c, ENOENT, "%s", not_found);
                return;
        }
        if (cfg->n_pull_rules == 0 || !pull_allowed(cfg->pull_rules, cfg->n_pull_rules, repository, ns)) {
                image_ref_done(&ref);
                if (not_found)
                        connection_send_error(c, EACCES,
                                              "%s; its image %s (push_to) may not be pulled: restore from "
                                              "image repository %s into namespace %s refused: no pull_allow "
                                              "rule allows it",
                                              not_found, image, repository, ns ? ns : "(none)");
                else if (cfg->n_pull_rules == 0)
                        connection_send_error(c, EACCES,
                                              "restore from image repository %s into namespace %s refused: "
                                              "pulling is off on this node (no pull_allow rule configured)",
                                              repository, ns ? ns : "(none)");
                else
                        connection_send_error(c, EACCES,
                                              "restore from image repository %s into namespace %s refused: "
                                              "no pull_allow rule allows it",
                                              repository, ns ? ns : "(none)");
                return;
        }
        if (m->no_spawn) {
                image_ref_done(&ref);
                connection_send_error(c, EOPNOTSUPP, "pulling disabled in this instance");
                return;
        }

        PullOp *op = calloc(1, sizeof(*op));
        if (!op) {
                image_ref_done(&ref);
                connection_send_error(c, ENOMEM, "out of memory");
                return;
        }
        op->manager = m;
        op->next = m->pulls;
        m->pulls = op;
        op->conn = c;
        op->result_fd = -EBADF;
        op->ref = ref;
        op->ignore_image = ignore_image;
        op->count_restore = count_restore;
        m->n_jobs++;
        const char *src[] = {image,      t->containerd_namespace, t->k8s_namespace,
                             t->k8s_pod, t->k8s_container,        t->image_ref,
                             not_found};
        char **dst[] = {&op->image,     &op->t_containerd_namespace, &op->t_k8s_namespace,
                        &op->t_k8s_pod, &op->t_k8s_container,        &op->t_image_ref,
                        &op->not_found};
        for (size_t i = 0; i < ELEMENTSOF(src); i++)
                if (src[i] && !(*dst[i] = strdup(src[i]))) {
                        op->conn = NULL;
                        pull_op_free(op);
                        connection_send_error(c, ENOMEM, "out of memory");
                        return;
                }
        c->op = op;
        c->op_detach = pull_detach;
        if (ref.digest) {
                /* Pinned already: the digest is the reference's own. */
                memcpy(op->digest, ref.digest, IMAGE_DIGEST_LEN + 1);
                pull_fetch(op);
                return;
        }
        op->step = PULL_STEP_RESOLVE;
        pull_progress(op, "resolve", "resolving %s", image);
        int r = pull_start_child(op, resolve_child, on_resolve_exit);
        if (r < 0)
                pull_fail(op, r, "starting the pull failed: %s", strerror(-r));
}
