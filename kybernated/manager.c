/* SPDX-License-Identifier: Apache-2.0 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>

#include "log.h"
#include "manager.h"
#include "spawn.h"
#include "store.h"

struct OutBuf {
        OutBuf *next;
        size_t len;
        uint8_t data[];
};

int manager_new(sd_event *e, const Config *config, Manager **ret) {
        Manager *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->config = config;
        m->listen_fd = -EBADF;
        m->lock_fd = -EBADF;
        m->started_ns = now_realtime_ns();
        if (asprintf(&m->checkpoints_dir, "%s/checkpoints", config->store) < 0 ||
            asprintf(&m->staging_dir, "%s/staging", config->store) < 0 ||
            asprintf(&m->logs_dir, "%s/logs", config->store) < 0 ||
            asprintf(&m->catalog_path, "%s/catalog.db", config->store) < 0) {
                manager_free(m);
                return -ENOMEM;
        }
        *ret = m;
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        while (m->connections)
                connection_free(m->connections);
        sd_event_source_disable_unref(m->listen_source);
        if (m->listen_fd_owned)
                safe_close(m->listen_fd);
        catalog_close(m->catalog);
        safe_close(m->lock_fd);
        free(m->checkpoints_dir);
        free(m->staging_dir);
        free(m->logs_dir);
        free(m->catalog_path);
        free(m->runc_version);
        free(m->criu_version);
        free(m->kernel_version);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}

int manager_open_store(Manager *m) {
        int r;
        const char *dirs[] = {m->config->store, m->checkpoints_dir, m->staging_dir, m->logs_dir};
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                r = mkdir_p(dirs[i], 0700);
                if (r < 0)
                        return log_error_errno(r, "Failed to create %s: %m", dirs[i]);
        }
        /* One daemon per store: a second one's start-up clean-up would remove
         * the first one's checkpoints in progress. A POSIX record lock, not
         * flock(): it belongs to this process only, so forked checksum
         * children that outlive a killed daemon for a moment do not hold it. */
        _cleanup_free_ char *lock = NULL;
        if (asprintf(&lock, "%s/lock", m->config->store) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        m->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (m->lock_fd < 0)
                return log_error_errno(negative_errno(), "Failed to open %s: %m", lock);
        struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(m->lock_fd, F_SETLK, &fl) < 0) {
                if (errno == EAGAIN || errno == EACCES)
                        return log_error_errno(-EBUSY, "Another kybernated is using the store %s",
                                               m->config->store);
                return log_error_errno(negative_errno(), "Failed to lock %s: %m", lock);
        }
        r = catalog_open(m->catalog_path, m->config->durable, &m->catalog);
        if (r < 0)
                return log_error_errno(r, "Failed to open catalog %s: %m", m->catalog_path);
        return 0;
}

typedef struct Unfinished {
        char **remove;   /* ids of pending/failed rows to remove */
        char **complete; /* ids whose dump had finished in this boot */
        const char *boot_id;
} Unfinished;

static int strv_push_dup(char ***l, const char *s) {
        size_t n = 0;
        while (*l && (*l)[n])
                n++;
        char **nl = realloc(*l, (n + 2) * sizeof(char *));
        if (!nl)
                return -ENOMEM;
        *l = nl;
        nl[n] = strdup(s);
        nl[n + 1] = NULL;
        return nl[n] ? 0 : -ENOMEM;
}

static int collect_unfinished(const CatalogEntry *e, void *userdata) {
        Unfinished *u = userdata;
        bool done_dumping = e->state == CHECKPOINT_PENDING && !isempty(e->dumped_boot_id) &&
                            streq_ptr(e->dumped_boot_id, u->boot_id);
        return strv_push_dup(done_dumping ? &u->complete : &u->remove, e->id);
}

/* A pending checkpoint whose dump had finished before the daemon died (in
 * this boot, so the page cache still holds every byte written): checksum,
 * sync and mark it ready, as the dead daemon would have. */
static int complete_checkpoint(Manager *m, const char *id) {
        _cleanup_free_ char *dir = NULL;
        uint64_t size;
        char checksum[STORE_CHECKSUM_MAX];
        int r = manager_checkpoint_dir(m, id, &dir);
        if (r < 0)
                return r;
        r = store_checksum(dir, NULL, m->config->durable, &size, checksum);
        if (r < 0)
                return r;
        if (m->config->durable && (r = store_fsync_path(m->checkpoints_dir)) < 0)
                return r;
        return catalog_set_ready(m->catalog, id, size, checksum);
}

int manager_startup_cleanup(Manager *m) {
        char boot_id[40] = "";
        int r;

        (void)store_boot_id(boot_id);

        /* 1. Rows that never became ready: complete those whose dump had
         * finished, remove the others (their directories are incomplete). */
        Unfinished u = {.boot_id = boot_id};
        CatalogFilter f = {.state = CHECKPOINT_PENDING};
        r = catalog_list(m->catalog, &f, collect_unfinished, &u);
        if (r >= 0) {
                f.state = CHECKPOINT_FAILED;
                r = catalog_list(m->catalog, &f, collect_unfinished, &u);
        }
        if (r < 0) {
                strv_free(u.remove);
                strv_free(u.complete);
                return log_error_errno(r, "Failed to list unfinished checkpoints: %m");
        }
        STRV_FOREACH (id, u.complete) {
                r = complete_checkpoint(m, *id);
                if (r >= 0) {
                        log_notice(
                                "Completed checkpoint %s: its dump had finished before kybernated stopped",
                                *id);
                        continue;
                }
                log_warning_errno(r, "Could not complete checkpoint %s (%m), removing it", *id);
                r = strv_push_dup(&u.remove, *id);
                if (r < 0) {
                        strv_free(u.remove);
                        strv_free(u.complete);
                        return log_error_errno(r, "Out of memory");
                }
        }
        STRV_FOREACH (id, u.remove) {
                log_warning("Removing checkpoint %s left unfinished by an earlier run", *id);
                r = manager_remove_checkpoint(m, *id);
                if (r < 0)
                        log_error_errno(r, "Failed to remove unfinished checkpoint %s: %m", *id);
        }
        strv_free(u.remove);
        strv_free(u.complete);

        /* 2. Directories without a row (a crash between mkdir and insert, or
         * after the row was deleted), and leftover staging directories. */
        const char *bases[] = {m->checkpoints_dir, m->staging_dir};
        for (size_t b = 0; b < ELEMENTSOF(bases); b++) {
                DIR *d = opendir(bases[b]);
                if (!d)
                        return log_error_errno(negative_errno(), "Failed to open %s: %m", bases[b]);
                struct dirent *de;
                while ((de = readdir(d))) {
                        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                                continue;
                        if (b == 0) {
                                CatalogEntry e = {};
                                r = catalog_get(m->catalog, de->d_name, &e);
                                catalog_entry_done(&e);
                                if (r >= 0)
                                        continue;
                                if (r != -ENOENT) {
                                        log_error_errno(r, "Failed to look up %s: %m", de->d_name);
                                        continue;
                                }
                        }
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", bases[b], de->d_name) < 0) {
                                closedir(d);
                                return log_error_errno(-ENOMEM, "Out of memory");
                        }
                        log_warning("Removing %s: %s", p, b == 0 ? "no catalog row" : "unfinished import");
                        r = store_remove_tree(p);
                        if (r < 0)
                                log_error_errno(r, "Failed to remove %s: %m", p);
                }
                closedir(d);
        }
        return 0;
}

void manager_probe_versions(Manager *m) {
        char *runc_argv[] = {m->config->runc, (char *)"--version", NULL};
        char *criu_argv[] = {m->config->criu ? m->config->criu : (char *)"criu", (char *)"--version", NULL};
        struct utsname u;

        if (spawn_capture_line(runc_argv, &m->runc_version) < 0)
                log_warning("Could not get the version of %s", m->config->runc);
        if (spawn_capture_line(criu_argv, &m->criu_version) < 0)
                log_warning("Could not get the version of %s", criu_argv[0]);
        if (uname(&u) >= 0)
                m->kernel_version = strdup(u.release);
}

/* ---- connections ---- */

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static void update_events(Connection *c) {
        uint32_t ev = c->out_head ? EPOLLOUT : 0;
        /* Stop reading while the output queue is large: backpressure. */
        if (c->out_bytes < OUT_BYTES_MAX / 2)
                ev |= EPOLLIN | EPOLLRDHUP;
        (void)sd_event_source_set_io_events(c->io, ev);
}

int connection_new(Manager *m, int fd, const struct ucred *cred, bool reader, Connection **ret) {
        Connection *c = calloc(1, sizeof(*c));
        if (!c) {
                safe_close(fd);
                return -ENOMEM;
        }
        c->manager = m;
        c->fd = fd;
        c->cred = *cred;
        c->privileged = cred->uid == 0;
        c->reader = c->privileged || reader;
        int r = sd_event_add_io(m->event, &c->io, fd, EPOLLIN | EPOLLRDHUP, on_connection_io, c);
        if (r < 0) {
                safe_close(fd);
                free(c);
                return r;
        }
        c->next = m->connections;
        if (m->connections)
                m->connections->prev = c;
        m->connections = c;
        m->n_connections++;
        if (ret)
                *ret = c;
        return 0;
}

void connection_free(Connection *c) {
        if (!c)
                return;
        Manager *m = c->manager;
        if (c->op && c->op_detach)
                c->op_detach(c->op);
        if (c->prev)
                c->prev->next = c->next;
        else
                m->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        m->n_connections--;
        while (c->out_head) {
                OutBuf *b = c->out_head;
                c->out_head = b->next;
                free(b);
        }
        sd_event_source_disable_unref(c->io);
        safe_close(c->fd);
        free(c);
}

void connection_op_done(Connection *c) {
        c->busy = false;
        c->op = NULL;
        c->op_detach = NULL;
}

/* Sends queued datagrams until the socket is full. */
static int connection_flush(Connection *c) {
        while (c->out_head) {
                OutBuf *b = c->out_head;
                ssize_t k = send(c->fd, b->data, b->len, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return negative_errno();
                }
                c->out_head = b->next;
                if (!c->out_head)
                        c->out_tail = NULL;
                c->out_bytes -= b->len;
                free(b);
        }
        update_events(c);
        return 0;
}

/* Packs resp into the output queue, tagged with request id `id`. */
/* Packs resp into the output queue, tagged with request id `id`, followed by
 * extra (already encoded fields of Response, may be NULL). */
static int connection_queue(Connection *c, Kybernate__V1__Response *resp, uint64_t id, bool final,
                            const uint8_t *extra, size_t extra_len) {
        resp->has_version = true;
        resp->version = KYB_PROTOCOL_VERSION;
        resp->has_id = true;
        resp->id = id;
        resp->has_more = !final;
        resp->more = !final;
        if (!resp->has_error) {
                resp->has_error = true;
                resp->error = 0;
        }

        size_t len = protobuf_c_message_get_packed_size(&resp->base);
        if (len + extra_len > KYB_MSG_MAX)
                return -EMSGSIZE;
        if (c->out_bytes + len + extra_len > OUT_BYTES_MAX)
                return -ENOBUFS;
        OutBuf *b = malloc(sizeof(OutBuf) + len + extra_len);
        if (!b)
                return -ENOMEM;
        b->next = NULL;
        b->len = protobuf_c_message_pack(&resp->base, b->data);
        if (extra_len > 0) {
                memcpy(b->data + b->len, extra, extra_len);
                b->len += extra_len;
        }
        if (c->out_tail)
                c->out_tail->next = b;
        else
                c->out_head = b;
        c->out_tail = b;
        c->out_bytes += b->len;
        return 0;
}

int connection_send(Connection *c, Kybernate__V1__Response *resp, bool final) {
        return connection_send_encoded(c, resp, NULL, 0, final);
}

int connection_send_encoded(Connection *c, Kybernate__V1__Response *resp, const uint8_t *extra,
                            size_t extra_len, bool final) {
        int r = connection_queue(c, resp, c->request_id, final, extra, extra_len);
        if (final)
                connection_op_done(c);
        if (r < 0) {
                /* A final answer that cannot be queued would leave the client
                 * waiting forever: hang up instead, so it sees the failure. */
                if (final)
                        (void)shutdown(c->fd, SHUT_RDWR);
                return r;
        }
        return connection_flush(c);
}

/* An error answer outside the running request (which stays as it is): for a
 * datagram that arrived while the connection was busy. */
static void connection_send_aside(Connection *c, uint64_t id, int error, const char *message) {
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        resp.has_error = true;
        resp.error = error;
        resp.message = (char *)message;
        if (connection_queue(c, &resp, id, true, NULL, 0) >= 0)
                (void)connection_flush(c);
}

int connection_send_error(Connection *c, int error, const char *fmt, ...) {
        Kybernate__V1__Response resp = KYBERNATE__V1__RESPONSE__INIT;
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (error < 0)
                error = -error;
        if (error == 0)
                error = EIO;
        resp.has_error = true;
        resp.error = error;
        resp.message = msg ? msg : (char *)"out of memory";
        log_debug("Request %" PRIu64 " from uid %u failed: %s", c->request_id, (unsigned)c->cred.uid,
                  resp.message);
        return connection_send(c, &resp, true);
}

static bool op_is_read_only(const Kybernate__V1__Request *req) {
        switch (req->op_case) {
        case KYBERNATE__V1__REQUEST__OP_LIST:
        case KYBERNATE__V1__REQUEST__OP_INSPECT:
        case KYBERNATE__V1__REQUEST__OP_STATUS:
                return true;
        case KYBERNATE__V1__REQUEST__OP_RESOLVE:
                return req->resolve->has_dry_run && req->resolve->dry_run;
        default:
                return false;
        }
}

void connection_handle_datagram(Connection *c, const uint8_t *buf, size_t len) {
        Kybernate__V1__Request *req = kybernate__v1__request__unpack(NULL, len, buf);

        if (c->busy) {
                /* The client broke the one-request-at-a-time rule: tell it,
                 * and let the running request go on. */
                connection_send_aside(c, req && req->has_id ? req->id : 0, EBUSY,
                                      "another request is still running on this connection");
                kyb_request_free(req);
                return;
        }
        c->busy = true;
        c->request_id = req && req->has_id ? req->id : 0;

        if (!req) {
                connection_send_error(c, EBADMSG, "malformed request: not a kybernate.v1.Request message");
                return;
        }
        if (!req->has_version || req->version != KYB_PROTOCOL_VERSION) {
                connection_send_error(c, EPROTONOSUPPORT,
                                      "unsupported protocol version %u (this daemon speaks version %u)",
                                      req->has_version ? req->version : 0, KYB_PROTOCOL_VERSION);
                goto finish;
        }
        if (req->op_case == KYBERNATE__V1__REQUEST__OP__NOT_SET) {
                connection_send_error(c, EOPNOTSUPP, "request names no (known) operation");
                goto finish;
        }
        if (!c->privileged && !(c->reader && op_is_read_only(req))) {
                connection_send_error(c, EPERM, "permission denied: uid %u may not %s (root only%s)",
                                      (unsigned)c->cred.uid,
                                      op_is_read_only(req) ? "read the catalog" : "change the catalog",
                                      op_is_read_only(req) ? " or members of read_group" : "");
                goto finish;
        }

        switch (req->op_case) {
        case KYBERNATE__V1__REQUEST__OP_CHECKPOINT:
                op_checkpoint(c, req->checkpoint);
                break;
        case KYBERNATE__V1__REQUEST__OP_RESOLVE:
                op_resolve(c, req->resolve);
                break;
        case KYBERNATE__V1__REQUEST__OP_LIST:
                op_list(c, req->list);
                break;
        case KYBERNATE__V1__REQUEST__OP_INSPECT:
                op_inspect(c, req->inspect);
                break;
        case KYBERNATE__V1__REQUEST__OP_DELETE:
                op_delete(c, req->delete_);
                break;
        case KYBERNATE__V1__REQUEST__OP_PRUNE:
                op_prune(c, req->prune);
                break;
        case KYBERNATE__V1__REQUEST__OP_PIN:
                op_pin(c, req->pin);
                break;
        case KYBERNATE__V1__REQUEST__OP_STATUS:
                op_status(c, req->status);
                break;
        case KYBERNATE__V1__REQUEST__OP_EXPORT:
                op_export(c, req->export);
                break;
        case KYBERNATE__V1__REQUEST__OP_IMPORT:
                op_import(c, req->import);
                break;
        default:
                connection_send_error(c, EOPNOTSUPP, "unknown operation %d", (int)req->op_case);
        }
finish:
        kyb_request_free(req);
}

static int on_connection_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Connection *c = userdata;
        int r;

        if (revents & EPOLLOUT) {
                r = connection_flush(c);
                if (r < 0)
                        goto close;
        }
        if (revents & EPOLLIN) {
                _cleanup_free_ uint8_t *buf = NULL;
                size_t len = 0;
                r = kyb_recv_datagram(fd, &buf, &len);
                if (r == -EAGAIN)
                        return 0;
                if (r == -EMSGSIZE) {
                        /* The oversized datagram was discarded; answer and go on. */
                        char msg[64];
                        snprintf(msg, sizeof(msg), "request larger than %u bytes refused", KYB_MSG_MAX);
                        connection_send_aside(c, 0, EMSGSIZE, msg);
                        return 0;
                }
                if (r < 0)
                        goto close;
                if (r == 0 && (revents & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)))
                        goto close; /* EOF: the peer is gone */
                /* else an empty datagram: an (invalid) empty request */
                connection_handle_datagram(c, buf, len);
                return 0;
        }
        if (revents & (EPOLLHUP | EPOLLERR))
                goto close;
        return 0;
close:
        /* Never return an error: that would disable this source for good. */
        connection_free(c);
        return 0;
}

static int on_listen(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;

        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_warning_errno(errno, "Failed to accept a connection: %m");
                return 0;
        }
        struct ucred cred;
        socklen_t sl = sizeof(cred);
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &sl) < 0) {
                log_warning_errno(errno, "Failed to read peer credentials: %m");
                safe_close(cfd);
                return 0;
        }
        if (m->n_connections >= CONNECTIONS_MAX) {
                log_warning("Too many connections, refusing pid %d", (int)cred.pid);
                safe_close(cfd);
                return 0;
        }
        bool reader = false;
        gid_t rg = m->config->read_gid;
        if (rg != (gid_t)-1) {
                gid_t groups[256];
                socklen_t gl = sizeof(groups);
                reader = cred.gid == rg;
                if (!reader && getsockopt(cfd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl) >= 0)
                        for (size_t i = 0; i < gl / sizeof(gid_t); i++)
                                if (groups[i] == rg)
                                        reader = true;
        }
        int r = connection_new(m, cfd, &cred, reader, NULL);
        if (r < 0)
                log_warning_errno(r, "Failed to set up a connection: %m");
        return 0;
}

int manager_listen(Manager *m, int fd) {
        int r;

        if (fd >= 0) {
                m->listen_fd = fd;
                m->listen_fd_owned = false;
                r = fd_nonblock(fd, true);
                if (r < 0)
                        return r;
        } else {
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                const char *path = m->config->socket;
                if (strlen(path) >= sizeof(sa.sun_path))
                        return -ENAMETOOLONG;
                strcpy(sa.sun_path, path);

                r = mkdir_parents(path, 0755);
                if (r < 0)
                        return r;
                _cleanup_close_ int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (lfd < 0)
                        return negative_errno();
                /* A socket someone answers on belongs to a running daemon:
                 * do not steal it. A stale one (no listener) is replaced. */
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
                if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) >= 0)
                        return -EADDRINUSE;
                (void)unlink(path);
                /* Bind with a umask so the socket is never briefly world-accessible. */
                mode_t old = umask(0177);
                r = bind(lfd, (struct sockaddr *)&sa, sizeof(sa));
                umask(old);
                if (r < 0)
                        return negative_errno();
                /* Readers of read_group get group access, everyone else none. */
                if (m->config->read_gid != (gid_t)-1) {
                        if (chown(path, 0, m->config->read_gid) < 0 || chmod(path, 0660) < 0)
                                return negative_errno();
                } else if (chmod(path, 0600) < 0)
                        return negative_errno();
                if (listen(lfd, 64) < 0)
                        return negative_errno();
                m->listen_fd = TAKE_FD(lfd);
                m->listen_fd_owned = true;
        }
        return sd_event_add_io(m->event, &m->listen_source, m->listen_fd, EPOLLIN, on_listen, m);
}
