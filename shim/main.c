/* SPDX-License-Identifier: Apache-2.0 */
/* containerd-shim-kybernate-v1: the shim binary. containerd runs it three ways
 * (shared/docs/PROTOCOL.md section 3): with the "start" action to launch the
 * long-lived server and print its address, with the "delete" action to clean
 * up after a task, and (launched by start) with no action as the server. */
#include <cJSON.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "bootstrap.h"
#include "containerd/task/v2/shim.pb-c.h"
#include "log.h"
#include "mount.h"
#include "options.h"
#include "reaper.h"
#include "service.h"
#include "shim-address.h"
#include "spec.h"
#include "util.h"

#define START_STDIN_MAX (1u << 20)
#define RUNC_STATE_MAX (4u << 20)
#define SERVER_FD 3

typedef struct Args {
        const char *ns;
        const char *id;
        const char *address; /* containerd's grpc socket */
        const char *publish_binary;
        const char *bundle;
        const char *action;
        bool debug;
        bool version;
} Args;

static int parse_args(int argc, char **argv, Args *a) {
        static const char *const valued[] = {"namespace",      "id",     "address",
                                             "publish-binary", "bundle", "socket"};

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];
                if (arg[0] != '-') {
                        if (a->action)
                                return log_error_errno(-EINVAL, "Unexpected argument '%s'", arg);
                        a->action = arg;
                        continue;
                }
                /* Go's flag package: -name, --name, -name=value, -name value. */
                const char *name = arg + (arg[1] == '-' ? 2 : 1);
                const char *eq = strchr(name, '=');
                size_t nl = eq ? (size_t)(eq - name) : strlen(name);
                const char *value = eq ? eq + 1 : NULL;

                if ((nl == 5 && strncmp(name, "debug", 5) == 0) || (nl == 1 && name[0] == 'v')) {
                        bool on = !value || streq(value, "true") || streq(value, "1");
                        if (name[0] == 'd')
                                a->debug = on;
                        else
                                a->version = on;
                        continue;
                }
                size_t k;
                for (k = 0; k < ELEMENTSOF(valued); k++)
                        if (strlen(valued[k]) == nl && strncmp(name, valued[k], nl) == 0)
                                break;
                if (k == ELEMENTSOF(valued))
                        return log_error_errno(-EINVAL, "Unknown flag %s", arg);
                if (!value) {
                        if (i + 1 >= argc)
                                return log_error_errno(-EINVAL, "Flag %s needs a value", arg);
                        value = argv[++i];
                }
                switch (k) {
                case 0:
                        a->ns = value;
                        break;
                case 1:
                        a->id = value;
                        break;
                case 2:
                        a->address = value;
                        break;
                case 3:
                        a->publish_binary = value; /* tells "start" which containerd runs it */
                        break;
                case 4:
                        a->bundle = value;
                        break;
                default:
                        break; /* -socket: events go through TTRPC_ADDRESS */
                }
        }
        return 0;
}

/* ---- start ------------------------------------------------------------------------------------- */

/* Binds path; a live socket already there (the pod's shim) is reported as 1. */
static int bind_socket(const char *path, int *ret_fd) {
        struct sockaddr_un sa;
        int r = sockaddr_un_set(&sa, path);

        if (r < 0)
                return r;
        r = mkdir_p(SHIM_SOCKET_DIR, 0711);
        if (r < 0)
                return r;
        for (int attempt = 0; attempt < 2; attempt++) {
                _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return negative_errno();
                if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
                        if (chmod(path, 0600) < 0 || listen(fd, SOMAXCONN) < 0)
                                return negative_errno();
                        *ret_fd = TAKE_FD(fd);
                        return 0;
                }
                if (errno != EADDRINUSE)
                        return negative_errno();
                _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        return negative_errno();
                if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return 1;
                (void)unlink(path); /* stale: its shim is gone */
        }
        return -EADDRINUSE;
}

static void adjust_oom_score(pid_t child) {
        _cleanup_free_ char *buf = NULL;
        char path[64], value[16];

        snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)getppid());
        if (read_full_file(path, 32, &buf, NULL) < 0)
                return;
        int score = atoi(buf) + 1;
        if (score > 1000)
                score = 1000;
        snprintf(path, sizeof(path), "/proc/%d/oom_score_adj", (int)child);
        snprintf(value, sizeof(value), "%d", score);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
        /* Lowering it may be refused (the oom_score_adj trap): the shim then keeps the default. */
        if (fd >= 0)
                (void)write_all(fd, value, strlen(value));
}

static void move_to_cgroup(pid_t pid, const char *cgroup) {
        char buf[32];
        _cleanup_free_ char *v2 = NULL;

        snprintf(buf, sizeof(buf), "%d", (int)pid);
        if (strstr(cgroup, ".."))
                return;
        if (asprintf(&v2, "/sys/fs/cgroup/%s/cgroup.procs", cgroup) < 0)
                return;
        if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
                _cleanup_close_ int fd = open(v2, O_WRONLY | O_CLOEXEC);
                if (fd >= 0)
                        (void)write_all(fd, buf, strlen(buf));
                return;
        }
        static const char *const controllers[] = {"memory", "cpu,cpuacct", "pids",    "blkio",
                                                  "cpuset", "devices",     "freezer", "systemd"};
        for (size_t i = 0; i < ELEMENTSOF(controllers); i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "/sys/fs/cgroup/%s/%s/cgroup.procs", controllers[i], cgroup) < 0)
                        return;
                _cleanup_close_ int fd = open(p, O_WRONLY | O_CLOEXEC);
                if (fd >= 0)
                        (void)write_all(fd, buf, strlen(buf));
        }
}

static int spawn_server(const Args *a, int listen_fd, pid_t *ret) {
        _cleanup_free_ char *self = realpath("/proc/self/exe", NULL);
        if (!self)
                return negative_errno();
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                char *argv[] = {self,
                                (char *)"-namespace",
                                (char *)a->ns,
                                (char *)"-id",
                                (char *)a->id,
                                (char *)"-address",
                                (char *)a->address,
                                a->debug ? (char *)"-debug" : NULL,
                                NULL};
                int null = open("/dev/null", O_RDWR | O_CLOEXEC);
                (void)setpgid(0, 0);
                if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
                        _exit(127);
                /* dup2 onto itself keeps O_CLOEXEC, so clear it explicitly */
                if (listen_fd == SERVER_FD ? fd_cloexec(SERVER_FD, false) < 0
                                           : dup2(listen_fd, SERVER_FD) < 0)
                        _exit(127);
                execv(self, argv);
                _exit(127);
        }
        *ret = pid;
        return 0;
}

static int action_start(const Args *a) {
        _cleanup_free_ char *input = NULL, *socket_path = NULL, *uri = NULL, *out = NULL;
        _cleanup_close_ int fd = -EBADF;
        ShimOptions opts = {};
        Spec spec = {};
        size_t len = 0;
        int r;

        /* stdin: the options Any (<= 2.2), BootstrapParams (>= 2.3) or nothing. Optional either way. */
        if (read_full_fd(STDIN_FILENO, START_STDIN_MAX, &input, &len) >= 0)
                (void)shim_options_from_bytes((const uint8_t *)input, len, &opts);
        /* Containers of one pod share the sandbox's shim. */
        (void)spec_load(".", &spec);
        const char *group = spec.sandbox_id ? spec.sandbox_id : a->id;
        r = shim_socket_path(a->address, a->ns, group, &socket_path);
        if (r >= 0 && asprintf(&uri, "unix://%s", socket_path) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = bind_socket(socket_path, &fd);
        if (r == 0) {
                pid_t pid = 0;
                r = spawn_server(a, fd, &pid);
                if (r >= 0) {
                        adjust_oom_score(pid);
                        if (opts.shim_cgroup)
                                move_to_cgroup(pid, opts.shim_cgroup);
                }
        }
        if (r >= 0)
                r = write_file_atomic("address", uri, strlen(uri), 0644);
        /* containerd 2.x gets version 3 (task API v3); 1.x the plain address. */
        if (r >= 0)
                r = bootstrap_output(uri, shim_task_api_version(getppid(), a->publish_binary), &out);
        shim_options_done(&opts);
        spec_done(&spec);
        if (r < 0) {
                /* containerd shows this output as the error */
                printf("failed to start shim: %s", strerror(-r));
                return 1;
        }
        fputs(out, stdout);
        return 0;
}

/* ---- delete ------------------------------------------------------------------------------------ */

/* The runtime options Create of the container in bundle was given (the
 * runc binary and root to call), the defaults without. */
static void load_options(const char *bundle, ShimOptions *ret) {
        int r = shim_options_load(bundle, ret);
        if (r < 0)
                log_warning_errno(r, "Failed to read the runtime options kept in %s, using the defaults: %m",
                                  bundle);
}

/* runc delete --force ID of BUNDLE, as opts say: kills what is left of the container. */
static int force_delete(const char *ns, const char *id, const char *bundle, const ShimOptions *opts) {
        RuncConfig runc = {};

        int r = shim_options_runc_config(opts, ns, bundle, &runc);
        if (r < 0)
                return -EINVAL;
        if (access(bundle, F_OK) < 0) {
                /* containerd removed the bundle already: runc cannot log there */
                free(runc.log_path);
                runc.log_path = NULL;
        }
        char *args[] = {(char *)"delete", (char *)"--force", (char *)id, NULL};
        /* runc delete removes the state directory recursively, and containerd the
         * bundle and work directory after us: never through a mount a killed
         * restore left there. */
        r = mount_detach_runc_leftovers(runc.root, id, bundle, NULL, NULL);
        if (r < 0)
                log_error_errno(
                        r,
                        "Failed to detach the mounts below the directories of %s, not running runc delete: %m",
                        id);
        else {
                if (r > 0)
                        log_warning(
                                "Detached %d mount(s) an interrupted restore left below the directories of %s",
                                r, id);
                r = runc_run_sync(&runc, args);
                if (r != 0 && runc.log_path && access(bundle, F_OK) < 0) {
                        /* containerd removed the bundle meanwhile (a 2.x pod's
                         * container): runc could not open its log there. */
                        free(runc.log_path);
                        runc.log_path = NULL;
                        r = runc_run_sync(&runc, args);
                }
                if (r != 0)
                        log_debug("runc delete --force %s: %d", id, r);
        }
        runc_config_done(&runc);
        return 0;
}

/* in_pod: runc's state.json (STATE) is of a container of pod POD whose bundle
 * is BUNDLE. runc keeps the spec's annotations as labels, and the bundle. */
static bool in_pod(const char *state, const char *pod, const char *bundle) {
        _cleanup_free_ char *want_pod = NULL, *want_bundle = NULL;
        bool pod_ok = false, bundle_ok = false;

        if (asprintf(&want_pod, "io.kubernetes.cri.sandbox-id=%s", pod) < 0 ||
            asprintf(&want_bundle, "bundle=%s", bundle) < 0)
                return false;
        cJSON *root = cJSON_Parse(state);
        const cJSON *labels =
                cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "config"), "labels");
        const cJSON *l;
        cJSON_ArrayForEach(l, labels) {
                if (!cJSON_IsString(l))
                        continue;
                pod_ok = pod_ok || streq(l->valuestring, want_pod);
                bundle_ok = bundle_ok || streq(l->valuestring, want_bundle);
        }
        cJSON_Delete(root);
        return pod_ok && bundle_ok;
}

/* With task API v3, containerd 2.x attaches a pod's containers to the
 * sandbox's shim without running start for them, and when that shim dies it
 * runs delete for the sandbox only (its containers' bundles may be gone
 * already): their processes would live on. So the sandbox's delete, once the
 * pod's shim no longer answers, deletes what runc still has of that pod in
 * this containerd (bundles beside ours), as 1.x does container by container. */
static void delete_orphans_of_pod(const Args *a, const char *bundle) {
        _cleanup_free_ char *sock = NULL, *parent = NULL;
        ShimOptions opts = {};
        RuncConfig runc = {};
        struct sockaddr_un sa;

        if (shim_socket_path(a->address, a->ns, a->id, &sock) < 0 || sockaddr_un_set(&sa, sock) < 0)
                return;
        _cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0 || connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return; /* the pod's shim still serves its containers */
        const char *slash = strrchr(bundle, '/');
        if (!slash || !(parent = strndup(bundle, (size_t)(slash - bundle))))
                return;
        /* A pod's containers have the sandbox's options (one runtime handler);
         * their bundles may be gone already. */
        load_options(bundle, &opts);
        if (shim_options_runc_config(&opts, a->ns, bundle, &runc) < 0) {
                shim_options_done(&opts);
                return;
        }
        _cleanup_close_ int dfd = open(runc.root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        _cleanup_strv_free_ char **names = NULL;
        if (dfd >= 0 && dir_list_sorted(dfd, &names) >= 0)
                STRV_FOREACH (n, names) {
                        _cleanup_free_ char *file = NULL, *state = NULL, *dir = NULL;
                        if (streq(*n, a->id) || asprintf(&file, "%s/%s/state.json", runc.root, *n) < 0 ||
                            read_full_file(file, RUNC_STATE_MAX, &state, NULL) < 0 ||
                            asprintf(&dir, "%s/%s", parent, *n) < 0 || !in_pod(state, a->id, dir))
                                continue;
                        log_info("Deleting container %s of pod %s, whose shim is gone", *n, a->id);
                        (void)force_delete(a->ns, *n, dir, &opts);
                }
        runc_config_done(&runc);
        shim_options_done(&opts);
}

static int action_delete(const Args *a) {
        _cleanup_free_ char *cwd = get_current_dir_name(), *rootfs = NULL, *pidfile = NULL, *buf = NULL,
                            *out = NULL;
        const char *bundle = a->bundle ? a->bundle : cwd;
        uint32_t pid = 0;
        int r;

        if (!bundle)
                return 1;
        /* The pod's containers first: containerd removes their bundles meanwhile. */
        if (!isempty(a->address))
                delete_orphans_of_pod(a, bundle);
        ShimOptions opts = {};
        load_options(bundle, &opts);
        r = force_delete(a->ns, a->id, bundle, &opts);
        shim_options_done(&opts);
        if (r < 0)
                return 1;
        if (asprintf(&rootfs, "%s/rootfs", bundle) >= 0 && (r = mount_unmount_all(rootfs)) < 0)
                log_warning_errno(r, "Failed to unmount %s: %m", rootfs);
        if (asprintf(&pidfile, "%s/init.pid", bundle) >= 0 && read_full_file(pidfile, 64, &buf, NULL) >= 0)
                pid = (uint32_t)strtoul(buf, NULL, 10);

        int64_t now = now_realtime_ns();
        Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
        ts.seconds = now / (int64_t)NSEC_PER_SEC;
        ts.nanos = (int32_t)(now % (int64_t)NSEC_PER_SEC);
        Containerd__Task__V2__DeleteResponse resp = CONTAINERD__TASK__V2__DELETE_RESPONSE__INIT;
        resp.pid = pid;
        resp.exit_status = 128 + SIGKILL;
        resp.exited_at = &ts;
        size_t len = containerd__task__v2__delete_response__get_packed_size(&resp);
        out = malloc(len);
        if (!out)
                return 1;
        containerd__task__v2__delete_response__pack(&resp, (uint8_t *)out);
        return write_all(STDOUT_FILENO, out, len) < 0 ? 1 : 0;
}

/* ---- the server -------------------------------------------------------------------------------- */

/* Shim logs go to the "log" FIFO containerd reads; never block on it. */
static void open_log_fifo(void) {
        int fd = open("log", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
                return;
        if (fd != STDERR_FILENO) {
                (void)dup2(fd, STDERR_FILENO);
                safe_close(fd);
        }
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Shim *shim = userdata;
        log_info("Received signal %d, exiting", (int)si->ssi_signo);
        shim_request_exit(shim);
        return 0;
}

static int socket_path_of(int fd, char **ret) {
        struct sockaddr_un sa = {};
        socklen_t l = sizeof(sa);
        if (getsockname(fd, (struct sockaddr *)&sa, &l) < 0)
                return negative_errno();
        if (l <= offsetof(struct sockaddr_un, sun_path) || sa.sun_path[0] == 0)
                return -EINVAL;
        *ret = strndup(sa.sun_path, l - offsetof(struct sockaddr_un, sun_path));
        return *ret ? 0 : -ENOMEM;
}

static int serve(const Args *a) {
        Shim shim = {};
        _cleanup_free_ char *events_address = NULL;
        sigset_t mask;
        struct stat st;
        int r;

        open_log_fifo();
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
                return log_error_errno(negative_errno(), "Cannot become a subreaper: %m");
        signal(SIGPIPE, SIG_IGN);
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        if (fstat(SERVER_FD, &st) < 0 || !S_ISSOCK(st.st_mode))
                return log_error_errno(-EBADF, "No listening socket on fd %d", SERVER_FD);
        (void)fd_cloexec(SERVER_FD, true);

        const char *ttrpc = getenv("TTRPC_ADDRESS");
        if (isempty(ttrpc) && asprintf(&events_address, "%s.ttrpc", a->address) < 0)
                return log_oom();
        shim.ns = (char *)a->ns;
        shim.id = (char *)a->id;
        (void)socket_path_of(SERVER_FD, &shim.socket_path);

        if ((r = sd_event_default(&shim.event)) < 0 || (r = reaper_new(shim.event, &shim.reaper)) < 0 ||
            (r = ttrpc_server_new(shim.event, &shim.server)) < 0 ||
            (r = publisher_new(shim.event, isempty(ttrpc) ? events_address : ttrpc, a->ns,
                               &shim.publisher)) < 0 ||
            (r = shim_service_register(&shim)) < 0 ||
            (r = ttrpc_server_listen_fd(shim.server, SERVER_FD)) < 0 ||
            (r = sd_event_add_signal(shim.event, NULL, SIGTERM, on_term, &shim)) < 0 ||
            (r = sd_event_add_signal(shim.event, NULL, SIGINT, on_term, &shim)) < 0) {
                log_error_errno(r, "Failed to set up the shim: %m");
                goto out;
        }
        log_debug("Serving %s/%s", a->ns, a->id);
        r = sd_event_loop(shim.event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
out:
        if (shim.socket_path)
                (void)unlink(shim.socket_path);
        shim_service_done(&shim);
        publisher_free(shim.publisher);
        ttrpc_server_free(shim.server);
        reaper_free(shim.reaper);
        sd_event_unref(shim.event);
        free(shim.socket_path);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        Args a = {};

        log_set_ident("containerd-shim-kybernate-v1");
        if (parse_args(argc, argv, &a) < 0)
                return 2;
        if (a.debug)
                log_max_level = LOG_DEBUG;
        if (a.version) {
                printf("containerd-shim-kybernate-v1:\n  Version:  %s\n  Runtime:  io.containerd.kybernate.v1\n",
                       KYB_VERSION);
                return 0;
        }
        if (isempty(a.ns) || !shim_valid_id(a.ns) || isempty(a.id) || !shim_valid_id(a.id)) {
                log_error("-namespace and -id must name a containerd namespace and task");
                return 2;
        }
        if (!a.action) {
                if (isempty(a.address)) {
                        log_error("-address is required");
                        return 2;
                }
                return serve(&a);
        }
        if (streq(a.action, "start")) {
                if (isempty(a.address)) {
                        puts("-address is required");
                        return 2;
                }
                return action_start(&a);
        }
        if (streq(a.action, "delete"))
                return action_delete(&a);
        log_error("Unknown action '%s'", a.action);
        return 2;
}
