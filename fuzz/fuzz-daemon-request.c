/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: one datagram into kybernated's request decoder and
 * dispatcher, from root (every operation reachable). Operations that would run
 * programs are disabled (no_spawn); the catalog is a real one in a temporary
 * store, so list/inspect/delete/pin/prune/status run for real. */
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>

#include "kybernated/manager.h"
#include "kybernated/server.h"
#include "log.h"

static sd_event *event;
static Manager *manager;
static Server *server;
static Config config;
static char dir[] = "/tmp/fuzz-daemon.XXXXXX";

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

/* The temporary store goes when the fuzzer exits (-runs, -max_total_time). */
static void remove_store(void) {
        (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void setup(void) {
        char p[128];
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        log_max_level = LOG_CRIT; /* handlers log refusals: keep the output quiet */
        if (!mkdtemp(dir) || config_init(&config) < 0)
                abort();
        atexit(remove_store);
        snprintf(p, sizeof(p), "%s/store", dir);
        if (config_set(&config, "store", p) < 0 || config_set(&config, "durable", "no") < 0 ||
            config_set(&config, "allowed_restore_dirs", "/tmp") < 0)
                abort();
        if (sd_event_new(&event) < 0 || manager_new(event, &config, &manager) < 0 ||
            manager_open_store(manager) < 0 || server_new(manager, &server) < 0)
                abort();
        manager->no_spawn = true;
        /* A few rows to find, pin and delete. */
        for (int i = 0; i < 4; i++) {
                char id[33];
                snprintf(id, sizeof(id), "%032x", 0xabcd0 + i);
                CatalogEntry e = {.id = id,
                                  .name = i == 0 ? (char *)"named" : NULL,
                                  .state = CHECKPOINT_READY,
                                  .containerd_namespace = (char *)"default",
                                  .k8s_namespace = (char *)"ns",
                                  .k8s_pod = (char *)"pod",
                                  .k8s_container = (char *)"c",
                                  .created_ns = i};
                (void)catalog_insert(manager->catalog, &e);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!manager)
                setup();
        if (size > KYB_MSG_MAX)
                return 0;

        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
                abort();
        struct ucred cred = {.pid = getpid(), .uid = 0, .gid = 0};
        Connection *c = NULL;
        if (server_add_connection(server, sv[0], &cred, false, &c) < 0)
                abort();
        server_handle_datagram(c, data, size);
        /* A second request on the same connection exercises the busy path. */
        server_handle_datagram(c, data, size);
        while (sd_event_run(event, 0) > 0)
                ;
        server_drop_connection(server, c);
        /* Drain and decode what came back: responses must always unpack. */
        uint8_t buf[KYB_MSG_MAX];
        ssize_t n;
        while ((n = recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
                Kybernate__V1__Response *r = kybernate__v1__response__unpack(NULL, (size_t)n, buf);
                if (!r)
                        abort();
                kybernate__v1__response__free_unpacked(r, NULL);
        }
        close(sv[1]);
        return 0;
}
