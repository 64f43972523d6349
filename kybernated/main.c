/* SPDX-License-Identifier: Apache-2.0 */
/* kybernated: the node's checkpoint daemon. */
#include <getopt.h>
#include <signal.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "log.h"
#include "manager.h"
#include "push.h"
#include "recover.h"
#include "server.h"

#define EXIT_WAIT_USEC (300 * USEC_PER_SEC)

static void help(void) {
        printf("Usage: kybernated [OPTIONS]\n\n"
               "The Kybernate node checkpoint daemon.\n\n"
               "  -c --config=PATH          configuration file (default " CONFIG_PATH_DEFAULT ")\n"
               "  -s --store=DIR            checkpoint store (default " STORE_PATH_DEFAULT ")\n"
               "  -S --socket=PATH          listening socket (default " KYB_SOCKET_DEFAULT ";\n"
               "                            ignored under socket activation)\n"
               "     --runc=PATH            runc binary (default: runc in PATH)\n"
               "     --criu=PATH            criu binary handed to runc --criu (default: criu in PATH)\n"
               "     --runc-root-base=DIR   runc roots of containerd namespaces (default " RUNC_ROOT_BASE_DEFAULT
               ")\n"
               "     --durable=yes|no       fsync checkpoints before they are ready (default yes)\n"
               "     --read-group=GROUP     group allowed to list/inspect/status\n"
               "     --foreground           run in the foreground (the default; for symmetry)\n"
               "  -d --debug                debug logging\n"
               "  -h --help                 this help\n"
               "     --version              print the version\n");
}

typedef struct ExitState {
        Manager *manager;
        Server *server;
        sd_event_source *timer;
        uint64_t deadline;
} ExitState;

static int on_exit_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        ExitState *st = userdata;
        if (st->manager->n_jobs == 0 || usec >= st->deadline) {
                if (st->manager->n_jobs > 0)
                        log_warning("Exiting with %u operations still running", st->manager->n_jobs);
                return sd_event_exit(sd_event_source_get_event(s), 0);
        }
        (void)sd_event_source_set_time(s, usec + 100 * USEC_PER_MSEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        ExitState *st = userdata;
        Manager *m = st->manager;
        sd_event *e = sd_event_source_get_event(s);

        if (st->timer) /* second signal: leave now */
                return sd_event_exit(e, 0);
        (void)sd_notify(false, "STOPPING=1");
        log_info("Received %s, finishing %u running operations", strsignal((int)si->ssi_signo), m->n_jobs);
        /* Stop accepting; running checkpoints finish so no runc is orphaned. */
        server_stop_listening(st->server);
        uint64_t now;
        (void)sd_event_now(e, CLOCK_MONOTONIC, &now);
        st->deadline = now + EXIT_WAIT_USEC;
        return sd_event_add_time(e, &st->timer, CLOCK_MONOTONIC, now, 0, on_exit_poll, st);
}

int main(int argc, char *argv[]) {
        enum {
                ARG_RUNC = 0x100,
                ARG_CRIU,
                ARG_RUNC_ROOT_BASE,
                ARG_DURABLE,
                ARG_READ_GROUP,
                ARG_FOREGROUND,
                ARG_VERSION
        };
        static const struct option options[] = {
                {"config", required_argument, NULL, 'c'},
                {"store", required_argument, NULL, 's'},
                {"socket", required_argument, NULL, 'S'},
                {"runc", required_argument, NULL, ARG_RUNC},
                {"criu", required_argument, NULL, ARG_CRIU},
                {"runc-root-base", required_argument, NULL, ARG_RUNC_ROOT_BASE},
                {"durable", required_argument, NULL, ARG_DURABLE},
                {"read-group", required_argument, NULL, ARG_READ_GROUP},
                {"foreground", no_argument, NULL, ARG_FOREGROUND},
                {"debug", no_argument, NULL, 'd'},
                {"help", no_argument, NULL, 'h'},
                {"version", no_argument, NULL, ARG_VERSION},
                {},
        };
        struct {
                int key;
                const char *name;
                const char *value;
        } overrides[16];
        size_t n_overrides = 0;
        const char *config_path = CONFIG_PATH_DEFAULT;
        bool config_required = false;
        int c, r;

        log_set_ident("kybernated");
        while ((c = getopt_long(argc, argv, "c:s:S:dh", options, NULL)) >= 0) {
                const char *key = NULL;
                switch (c) {
                case 'c':
                        config_path = optarg;
                        config_required = true;
                        break;
                case 's':
                        key = "store";
                        break;
                case 'S':
                        key = "socket";
                        break;
                case ARG_RUNC:
                        key = "runc";
                        break;
                case ARG_CRIU:
                        key = "criu";
                        break;
                case ARG_RUNC_ROOT_BASE:
                        key = "runc_root_base";
                        break;
                case ARG_DURABLE:
                        key = "durable";
                        break;
                case ARG_READ_GROUP:
                        key = "read_group";
                        break;
                case ARG_FOREGROUND:
                        break;
                case 'd':
                        log_max_level = LOG_DEBUG;
                        break;
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("kybernated %s (protocol %u)\n", KYB_VERSION, KYB_PROTOCOL_VERSION);
                        return 0;
                default:
                        return 2;
                }
                if (key && n_overrides < ELEMENTSOF(overrides))
                        overrides[n_overrides++] = (typeof(overrides[0])){c, key, optarg};
        }
        if (optind < argc) {
                log_error("Unexpected argument: %s", argv[optind]);
                return 2;
        }

        Config config;
        if (config_init(&config) < 0)
                return log_error_errno(-ENOMEM, "Out of memory"), 1;
        unsigned line = 0;
        r = config_load(&config, config_path, config_required, &line);
        if (r < 0) {
                if (config.error)
                        log_error("Failed to load %s%s%u: %s", config_path, line ? " line " : "", line,
                                  config.error);
                else
                        log_error_errno(r, "Failed to load %s%s%u: %m", config_path, line ? " line " : "",
                                        line);
                return 1;
        }
        for (size_t i = 0; i < n_overrides; i++) {
                r = config_set(&config, overrides[i].name, overrides[i].value);
                if (r < 0) {
                        log_error_errno(r, "Invalid value for --%s: %s", overrides[i].name,
                                        overrides[i].value);
                        return 2;
                }
        }
        /* Clients find a test daemon through the same variable they use. */
        if (getenv(KYB_SOCKET_ENV) && !isempty(getenv(KYB_SOCKET_ENV))) {
                bool socket_given = false;
                for (size_t i = 0; i < n_overrides; i++)
                        socket_given |= overrides[i].key == 'S';
                if (!socket_given)
                        (void)config_set(&config, "socket", getenv(KYB_SOCKET_ENV));
        }

        const char *bad_dir = NULL;
        r = config_check(&config, &bad_dir);
        if (r < 0) {
                if (bad_dir)
                        log_error(
                                "allowed_restore_dirs entry %s is the checkpoint store %s, inside it or "
                                "above it: any tenant could restore any checkpoint by path, with no tenant "
                                "rule and no checksum. Refusing to start",
                                bad_dir, config.store);
                else
                        log_error_errno(r, "Invalid store %s: %m", config.store);
                return 1;
        }

        /* sd-event needs SIGCHLD blocked for child watches; TERM/INT become events. */
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        sd_event *e = NULL;
        r = sd_event_default(&e);
        if (r < 0)
                return log_error_errno(r, "Failed to create the event loop: %m"), 1;

        Manager *m = NULL;
        r = manager_new(e, &config, &m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m"), 1;
        r = manager_open_store(m);
        if (r < 0)
                return 1;
        /* Thaws containers a killed checkpoint left frozen, before the clean-up
         * removes the rows that say which. */
        (void)recover_thaw_pending(m);
        r = manager_startup_cleanup(m);
        if (r < 0)
                return 1;
        manager_probe_versions(m);
        /* Checkpoints whose push a kill or a failure left undone. */
        (void)push_start(m);

        int fd = -EBADF;
        int n = sd_listen_fds(true);
        if (n > 1)
                return log_error("Expected one socket from systemd, got %d", n), 1;
        if (n == 1) {
                fd = SD_LISTEN_FDS_START;
                if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0)
                        return log_error(
                                       "The socket from systemd is not a listening AF_UNIX SOCK_SEQPACKET socket"),
                               1;
        }
        Server *server = NULL;
        r = server_new(m, &server);
        if (r >= 0)
                r = server_listen(server, fd);
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s: %m",
                                       fd >= 0 ? "the socket from systemd" : config.socket),
                       1;

        ExitState st = {.manager = m, .server = server};
        (void)sd_event_add_signal(e, NULL, SIGTERM, on_term, &st);
        (void)sd_event_add_signal(e, NULL, SIGINT, on_term, &st);

        log_info("kybernated %s ready: store %s, socket %s%s, runc %s (%s), criu %s (%s)%s", KYB_VERSION,
                 config.store, fd >= 0 ? "from systemd " : "", fd >= 0 ? "" : config.socket, config.runc,
                 m->runc_version ? m->runc_version : "version unknown", config.criu ? config.criu : "criu",
                 m->criu_version ? m->criu_version : "version unknown",
                 config.durable ? "" : "; durable=no: checkpoints are NOT synced before they are ready");
        (void)sd_notify(false, "READY=1\nSTATUS=Serving");

        r = sd_event_loop(e);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        sd_event_source_disable_unref(st.timer);
        server_free(server);
        manager_free(m);
        sd_event_unref(e);
        config_done(&config);
        return r < 0 ? 1 : 0;
}
