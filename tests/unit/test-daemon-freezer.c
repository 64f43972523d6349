/* SPDX-License-Identifier: Apache-2.0 */
/* kybernated/freezer.c on the machine's real cgroups: a process counting into
 * shared memory is moved into a new cgroup, frozen (it stops counting and
 * the cgroup says frozen), thawed (it counts again). Once with the v1
 * freezer and once with cgroup v2's cgroup.freeze: on a cgroup v1 (hybrid)
 * host the v2 hierarchy is /sys/fs/cgroup/unified, where freezing needs no
 * controller, so the v2 path runs here too. Needs root; a hierarchy the host
 * lacks is skipped. */
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kybernated/freezer.h"
#include "test.h"
#include "util.h"

/* A child counting into *counter, in a new cgroup below parent (the root of
 * a hierarchy); *ret_dir that cgroup. 0 when not root or without it. */
static pid_t start_counter(const char *parent, volatile uint64_t *counter, char **ret_dir) {
        _cleanup_free_ char *probe = strdup_printf("%s/cgroup.procs", parent);
        if (geteuid() != 0 || !probe || access(probe, F_OK) < 0)
                return 0;
        char *dir = strdup_printf("%s/kybernate-test-freezer-%d", parent, (int)getpid());
        if (!dir || mkdir(dir, 0755) < 0) {
                free(dir);
                return -1;
        }
        pid_t pid = fork();
        if (pid == 0) {
                for (;;)
                        (*counter)++;
        }
        _cleanup_free_ char *procs = strdup_printf("%s/cgroup.procs", dir);
        char num[32];
        snprintf(num, sizeof(num), "%d", (int)pid);
        _cleanup_close_ int fd = procs ? open(procs, O_WRONLY | O_CLOEXEC) : -EBADF;
        if (pid < 0 || fd < 0 || write_all(fd, num, strlen(num)) < 0) {
                if (pid > 0)
                        kill(pid, SIGKILL);
                rmdir(dir);
                free(dir);
                return -1;
        }
        *ret_dir = dir;
        return pid;
}

static uint64_t advance(volatile uint64_t *counter) {
        uint64_t a = *counter;
        usleep(100 * 1000);
        return *counter - a;
}

static void freeze_thaw(const char *parent) {
        volatile uint64_t *counter =
                mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        ASSERT_TRUE(counter != MAP_FAILED);
        *counter = 0;
        _cleanup_free_ char *dir = NULL;
        pid_t pid = start_counter(parent, counter, &dir);
        if (pid == 0)
                return_skip("needs root and the cgroup hierarchy");
        ASSERT_TRUE(pid > 0);
        ASSERT_TRUE(advance(counter) > 0);
        ASSERT_EQ(freezer_is_frozen(dir), 0);

        ASSERT_OK(freezer_set(dir, true, 5 * USEC_PER_SEC));
        ASSERT_EQ(freezer_is_frozen(dir), 1);
        ASSERT_EQ(advance(counter), 0);                      /* stopped */
        ASSERT_OK(freezer_set(dir, true, 5 * USEC_PER_SEC)); /* again: no change */

        ASSERT_OK(freezer_set(dir, false, 0));
        ASSERT_EQ(freezer_is_frozen(dir), 0);
        ASSERT_TRUE(advance(counter) > 0); /* counting again */

        /* Killed while frozen (what a pod checkpoint with --exit does). */
        ASSERT_OK(freezer_set(dir, true, 5 * USEC_PER_SEC));
        ASSERT_OK(kill(pid, SIGKILL));
        ASSERT_OK(freezer_set(dir, false, 0));
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        ASSERT_OK(rmdir(dir));
        munmap((void *)counter, sizeof(uint64_t));
}

TEST(v1_freezer) {
        freeze_thaw("/sys/fs/cgroup/freezer");
}

/* The v2 hierarchy: the whole of /sys/fs/cgroup on a v2 host, else the
 * hybrid's unified mount point. */
TEST(v2_cgroup_freeze) {
        if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) >= 0)
                freeze_thaw("/sys/fs/cgroup");
        else
                freeze_thaw("/sys/fs/cgroup/unified");
}

TEST(paths_refused) {
        ASSERT_ERROR(freezer_set("/sys/fs/cgroup", true, 0), EINVAL);
        ASSERT_ERROR(freezer_set("/sys/fs/cgroup/../../etc", true, 0), EINVAL);
        ASSERT_ERROR(freezer_set("/tmp", true, 0), EINVAL);
        ASSERT_ERROR(freezer_is_frozen("relative/dir"), EINVAL);
}
