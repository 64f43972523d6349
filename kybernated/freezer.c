/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <limits.h>
#include <unistd.h>

#include "freezer.h"
#include "resolve.h"
#include "util.h"

#define CGROUP_ROOT "/sys/fs/cgroup"

bool freezer_path_valid(const char *dir) {
        return dir && !streq(dir, CGROUP_ROOT) && strlen(dir) < PATH_MAX - 32 &&
               path_allowed(dir, (char *[]){(char *)CGROUP_ROOT, NULL});
}

static int write_control(const char *file, const char *value) {
        _cleanup_close_ int fd = open(file, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        return write_all(fd, value, strlen(value));
}

/* The control file of dir and whether it is v1's. */
static int control_file(const char *dir, char **ret, bool *ret_v1) {
        if (!freezer_path_valid(dir))
                return -EINVAL;
        _cleanup_free_ char *v1 = NULL;
        if (asprintf(&v1, "%s/freezer.state", dir) < 0)
                return -ENOMEM;
        if (access(v1, F_OK) >= 0) {
                *ret = TAKE_PTR(v1);
                *ret_v1 = true;
                return 0;
        }
        *ret_v1 = false;
        return asprintf(ret, "%s/cgroup.freeze", dir) < 0 ? -ENOMEM : 0;
}

int freezer_is_frozen(const char *dir) {
        _cleanup_free_ char *file = NULL, *text = NULL, *events = NULL;
        bool v1;
        int r = control_file(dir, &file, &v1);
        if (r < 0)
                return r;
        if (v1) {
                r = read_full_file(file, 64, &text, NULL);
                return r < 0 ? r : startswith(text, "FROZEN") != NULL;
        }
        /* v2: cgroup.freeze is what was asked; cgroup.events says whether
         * every process has stopped. */
        if (asprintf(&events, "%s/cgroup.events", dir) < 0)
                return -ENOMEM;
        r = read_full_file(events, 4096, &text, NULL);
        if (r < 0)
                return r;
        return strstr(text, "frozen 1") != NULL;
}

int freezer_set(const char *dir, bool frozen, uint64_t timeout_usec) {
        _cleanup_free_ char *file = NULL;
        bool v1;
        int r = control_file(dir, &file, &v1);
        if (r < 0)
                return r;
        const char *value = v1 ? (frozen ? "FROZEN" : "THAWED") : (frozen ? "1" : "0");
        r = write_control(file, value);
        if (r < 0 || !frozen)
                return r;
        /* v1 says FREEZING until the last task has stopped. */
        uint64_t deadline = now_monotonic_usec() + timeout_usec;
        for (unsigned delay = 100;; delay = delay < 10000 ? delay * 2 : delay) {
                r = freezer_is_frozen(dir);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (now_monotonic_usec() >= deadline)
                        return -ETIMEDOUT;
                (void)usleep(delay);
        }
}
