/* SPDX-License-Identifier: Apache-2.0 */
/* common/runc-args: the exact runc command lines of the shim and kybernated. */
#include "runc-args.h"
#include "test.h"

/* Compares a list with the expected strings and frees it. */
#define ASSERT_STRV(got, ...)                                 \
        do {                                                  \
                const char *_want[] = {__VA_ARGS__, NULL};    \
                char **_got = (got);                          \
                assert_argv(__FILE__, __LINE__, _got, _want); \
                free(_got);                                   \
        } while (0)
/* Takes a's list and compares it. */
#define ASSERT_ARGV(a, ...)                        \
        do {                                       \
                char **_list = NULL;               \
                ASSERT_OK(argv_take((a), &_list)); \
                ASSERT_STRV(_list, __VA_ARGS__);   \
        } while (0)

static void assert_argv(const char *file, int line, char **got, const char **want) {
        size_t i = 0;
        for (; got[i] && want[i]; i++)
                if (!streq(got[i], want[i]))
                        test_fail(file, line, "argument %zu: \"%s\", expected \"%s\"", i, got[i], want[i]);
        if (got[i] || want[i])
                test_fail(file, line, "argument %zu: \"%s\", expected \"%s\"", i, got[i] ? got[i] : "(end)",
                          want[i] ? want[i] : "(end)");
}

TEST(global_options) {
        /* The shim's: its runc with a JSON log it reads errors from. */
        RuncGlobalOptions shim = {.binary = "/usr/bin/runc",
                                  .root = "/run/containerd/runc/k8s.io",
                                  .log_path = "/run/b/log.json",
                                  .log_format = "json",
                                  .criu = "/usr/sbin/criu",
                                  .systemd_cgroup = true};
        char *kill[] = {(char *)"kill", (char *)"--all", (char *)"c1", (char *)"SIGKILL", NULL};
        char **argv = NULL;
        ASSERT_OK(runc_argv(&shim, kill, &argv));
        ASSERT_STRV(argv, "/usr/bin/runc", "--root", "/run/containerd/runc/k8s.io", "--log",
                    "/run/b/log.json", "--log-format", "json", "--criu", "/usr/sbin/criu",
                    "--systemd-cgroup", "kill", "--all", "c1", "SIGKILL");

        /* The daemon's pause: only a root. */
        RuncGlobalOptions daemon = {.root = "/run/containerd/runc/default"};
        Argv a = {};
        runc_add_global(&a, &daemon);
        argv_add(&a, "pause");
        argv_add(&a, "c1");
        ASSERT_ARGV(&a, "runc", "--root", "/run/containerd/runc/default", "pause", "c1");
}

TEST(checkpoint) {
        RuncGlobalOptions g = {.binary = "runc", .root = "/r", .criu = "/c"};
        RuncCheckpointOptions o = {.criu = {.image_path = "/s/x/checkpoint", .work_path = "/s/x/work"},
                                   .leave_running = true};
        Argv a = {};
        runc_add_global(&a, &g);
        runc_add_checkpoint(&a, &o, "c1");
        ASSERT_ARGV(&a, "runc", "--root", "/r", "--criu", "/c", "checkpoint", "--image-path",
                    "/s/x/checkpoint", "--work-path", "/s/x/work", "--leave-running", "c1");

        /* Every option, without globals (the shim adds its own when it runs the list). */
        char *ns[] = {(char *)"network", (char *)"ipc", NULL};
        o = (RuncCheckpointOptions){.criu = {.image_path = "/i",
                                             .tcp_established = true,
                                             .ext_unix_sk = true,
                                             .shell_job = true,
                                             .file_locks = true,
                                             .empty_ns = ns}};
        runc_add_checkpoint(&a, &o, "c2");
        ASSERT_ARGV(&a, "checkpoint", "--image-path", "/i", "--tcp-established", "--ext-unix-sk",
                    "--shell-job", "--file-locks", "--empty-ns", "network", "--empty-ns", "ipc", "c2");
}

TEST(restore) {
        RuncRestoreOptions o = {.criu = {.image_path = "/b/checkpoint", .work_path = "/b/work"},
                                .bundle = "/b",
                                .pid_file = "/b/init.pid",
                                .console_socket = "/tmp/console.sock",
                                .detach = true,
                                .no_pivot = true,
                                .no_subreaper = true};
        Argv a = {};
        runc_add_restore(&a, &o, "c1");
        ASSERT_ARGV(&a, "restore", "--image-path", "/b/checkpoint", "--work-path", "/b/work", "--bundle",
                    "/b", "--pid-file", "/b/init.pid", "--console-socket", "/tmp/console.sock", "--detach",
                    "--no-pivot", "--no-subreaper", "c1");

        o = (RuncRestoreOptions){.criu = {.image_path = "/i", .tcp_established = true}, .detach = true};
        runc_add_restore(&a, &o, "c2");
        ASSERT_ARGV(&a, "restore", "--image-path", "/i", "--tcp-established", "--detach", "c2");
}

TEST(long_lists_grow) {
        /* Far more than any fixed array held: nothing is dropped. */
        enum { N = 300 };
        char names[N][16];
        char *ns[N + 1];
        for (int i = 0; i < N; i++) {
                snprintf(names[i], sizeof(names[i]), "ns%d", i);
                ns[i] = names[i];
        }
        ns[N] = NULL;
        RuncCheckpointOptions o = {.criu = {.image_path = "/i", .empty_ns = ns}};
        Argv a = {};
        runc_add_checkpoint(&a, &o, "c1");
        char **argv = NULL;
        ASSERT_OK(argv_take(&a, &argv));
        ASSERT_STREQ(argv[0], "checkpoint");
        for (int i = 0; i < N; i++) {
                ASSERT_STREQ(argv[3 + 2 * i], "--empty-ns");
                ASSERT_STREQ(argv[4 + 2 * i], names[i]);
        }
        ASSERT_STREQ(argv[3 + 2 * N], "c1");
        ASSERT_NULL(argv[4 + 2 * N]);
        free(argv);
        ASSERT_NULL(a.v); /* taken */
}

TEST(missing_values_are_errors) {
        Argv a = {};
        char **argv = NULL;

        /* No container id: the list would end early. */
        RuncCheckpointOptions o = {.criu = {.image_path = "/i"}};
        runc_add_checkpoint(&a, &o, NULL);
        ASSERT_ERROR(argv_take(&a, &argv), EINVAL);
        ASSERT_NULL(argv);
        /* No image path: runc would dump into its working directory. */
        o.criu.image_path = NULL;
        runc_add_checkpoint(&a, &o, "c1");
        argv_add(&a, "more"); /* the failure sticks */
        ASSERT_ERROR(argv_take(&a, &argv), EINVAL);
        RuncRestoreOptions ro = {};
        runc_add_restore(&a, &ro, "c1");
        ASSERT_ERROR(argv_take(&a, &argv), EINVAL);
        /* Empty. */
        ASSERT_ERROR(argv_take(&a, &argv), EINVAL);
        char *none[] = {NULL};
        RuncGlobalOptions g = {};
        ASSERT_OK(runc_argv(&g, none, &argv));
        ASSERT_STRV(argv, "runc");
}
