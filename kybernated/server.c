/* SPDX-License-Identifier: Apache-2.0 */
#include <sys/stat.h>
#include <sys/un.h>

#include "connection.h"
#include "log.h"
#include "ops.h"
#include "server.h"

static void on_hangup(Connection *c) {
        server_drop_connection(c->owner, c);
}

static const ConnectionHandlers handlers = {
        .datagram = server_handle_datagram,
        .hangup = on_hangup,
};

int server_new(Manager *m, Server **ret) {
        Server *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->listen_fd = -EBADF;
        *ret = s;
        return 0;
}

Server *server_free(Server *s) {
        if (!s)
                return NULL;
        while (s->connections)
                server_drop_connection(s, s->connections);
        sd_event_source_disable_unref(s->listen_source);
        if (s->listen_fd_owned)
                safe_close(s->listen_fd);
        free(s);
        return NULL;
}

void server_stop_listening(Server *s) {
        (void)sd_event_source_set_enabled(s->listen_source, SD_EVENT_OFF);
}

int server_add_connection(Server *s, int fd, const struct ucred *cred, bool reader, Connection **ret) {
        Manager *m = s->manager;
        const Config *cfg = m->config;
        Connection *c = NULL;
        bool privileged = cred->uid == 0;

        if (!privileged) {
                unsigned same = 0;
                for (Connection *i = s->connections; i; i = i->next)
                        if (i->cred.uid == cred->uid)
                                same++;
                if (same >= cfg->max_connections_per_uid) {
                        safe_close(fd);
                        return -EUSERS;
                }
                if (s->n_unprivileged >= cfg->max_connections) {
                        safe_close(fd);
                        return -EMFILE;
                }
        }
        int r = connection_new(m->event, fd, cred, &handlers, &c);
        if (r < 0)
                return r;
        c->manager = m;
        c->owner = s;
        c->privileged = privileged;
        c->reader = c->privileged || reader;
        c->out_max = cfg->max_reply_queue;
        c->out_total = &s->out_total;
        c->out_total_max = privileged ? 0 : cfg->max_reply_memory;
        if (cfg->idle_timeout_ns > 0) {
                r = connection_set_idle_timeout(c, (uint64_t)cfg->idle_timeout_ns / NSEC_PER_USEC);
                if (r < 0) {
                        connection_free(c);
                        return r;
                }
        }
        if (!privileged)
                s->n_unprivileged++;
        c->next = s->connections;
        if (s->connections)
                s->connections->prev = c;
        s->connections = c;
        m->n_connections++;
        if (ret)
                *ret = c;
        return 0;
}

void server_drop_connection(Server *s, Connection *c) {
        if (!c)
                return;
        if (c->prev)
                c->prev->next = c->next;
        else
                s->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        s->manager->n_connections--;
        if (!c->privileged)
                s->n_unprivileged--;
        connection_free(c);
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

void server_handle_datagram(Connection *c, const uint8_t *buf, size_t len) {
        Kybernate__V1__Request *req = kybernate__v1__request__unpack(NULL, len, buf);

        if (c->busy) {
                /* The client broke the one-request-at-a-time rule: tell it,
                 * and let the running request go on. */
                connection_send_aside(c, req && req->has_id ? req->id : 0, EBUSY,
                                      "another request is still running on this connection");
                kyb_request_free(req);
                return;
        }
        connection_op_begin(c, req && req->has_id ? req->id : 0);

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

static int on_listen(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Server *s = userdata;
        Manager *m = s->manager;

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
        int r = server_add_connection(s, cfd, &cred, reader, NULL);
        if (r == -EUSERS || r == -EMFILE) {
                /* One line a second at most: a client hammering the socket
                 * must not flood the log either. */
                uint64_t now = now_monotonic_usec();
                if (s->refused_logged_usec != 0 && now - s->refused_logged_usec < USEC_PER_SEC) {
                        s->refused_unlogged++;
                        return 0;
                }
                log_warning("Refusing a connection of uid %u (pid %d): %s (%u refused without a word "
                            "before)",
                            (unsigned)cred.uid, (int)cred.pid,
                            r == -EUSERS ? "it has max_connections_per_uid already"
                                         : "non-root users have max_connections already",
                            s->refused_unlogged);
                s->refused_logged_usec = now;
                s->refused_unlogged = 0;
        } else if (r < 0)
                log_warning_errno(r, "Failed to set up a connection: %m");
        return 0;
}

int server_listen(Server *s, int fd) {
        Manager *m = s->manager;
        int r;

        if (fd >= 0) {
                s->listen_fd = fd;
                s->listen_fd_owned = false;
                r = fd_nonblock(fd, true);
                if (r < 0)
                        return r;
        } else {
                struct sockaddr_un sa;
                const char *path = m->config->socket;
                r = sockaddr_un_set(&sa, path);
                if (r < 0)
                        return r;

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
                s->listen_fd = TAKE_FD(lfd);
                s->listen_fd_owned = true;
        }
        return sd_event_add_io(m->event, &s->listen_source, s->listen_fd, EPOLLIN, on_listen, s);
}
