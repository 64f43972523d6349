/* SPDX-License-Identifier: Apache-2.0 */
#include <signal.h>
#include <sys/wait.h>

#include "kybernated/spawn.h"
#include "kybernated/store.h"
#include "mount-util.h"
#include "test.h"

TEST(capture_and_errors) {
        _cleanup_free_ char *line = NULL;
        char *echo[] = {(char *)"sh", (char *)"-c", (char *)"echo; echo first; echo second", NULL};
        ASSERT_OK(spawn_capture_line(echo, &line));
        ASSERT_STREQ(line, "first");

        char *missing[] = {(char *)"/nonexistent/kybernate-test-binary", NULL};
        pid_t pid;
        ASSERT_ERROR(spawn_logged(missing, NULL, &pid), ENOENT);
        char *fails[] = {(char *)"false", NULL};
        char *l2 = NULL;
        ASSERT_ERROR(spawn_capture_line(fails, &l2), EIO);
}

TEST(logged_output_and_last_line) {
        const char *d = test_tmpdir();
        char log[128];
        snprintf(log, sizeof(log), "%s/out.log", d);
        char *argv[] = {(char *)"sh", (char *)"-c", (char *)"echo one; echo 'two\tand more' >&2", NULL};
        pid_t pid;
        ASSERT_OK(spawn_logged(argv, log, &pid));
        int status;
        ASSERT_EQ(waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        _cleanup_free_ char *last = file_last_line(log);
        ASSERT_STREQ(last, "two and more"); /* control characters flattened */
        ASSERT_NULL(file_last_line("/nonexistent"));
        ASSERT_OK(remove_tree_one_fs(d));
}

typedef struct Result {
        bool done;
        int r;
        uint64_t size;
        char checksum[80];
} Result;

static void on_done(int r, uint64_t size, const char *checksum, void *userdata) {
        Result *res = userdata;
        res->done = true;
        res->r = r;
        res->size = size;
        snprintf(res->checksum, sizeof(res->checksum), "%s", checksum);
}

TEST(checksum_task_matches_inline) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        sd_event *e = test_event();
        const char *d = test_tmpdir();
        char f[128];
        snprintf(f, sizeof(f), "%s/pages-1.img", d);
        ASSERT_OK(write_file_atomic(f, "0123456789", 10, 0600));
        uint64_t size;
        char inline_sum[STORE_CHECKSUM_MAX];
        ASSERT_OK(store_checksum(d, NULL, false, &size, inline_sum));

        for (int sync = 0; sync <= 1; sync++) {
                Result res = {};
                ASSERT_OK(checksum_task_start(e, d, NULL, sync, on_done, &res, NULL));
                for (int i = 0; i < 500 && !res.done; i++)
                        (void)sd_event_run(e, 10 * USEC_PER_MSEC);
                ASSERT_TRUE(res.done);
                ASSERT_EQ(res.r, 0);
                ASSERT_EQ(res.size, 10);
                ASSERT_STREQ(res.checksum, inline_sum);
        }
        /* A missing directory is an error, reported through done. */
        Result res = {};
        ASSERT_OK(checksum_task_start(e, "/nonexistent/dir", NULL, false, on_done, &res, NULL));
        for (int i = 0; i < 500 && !res.done; i++)
                (void)sd_event_run(e, 10 * USEC_PER_MSEC);
        ASSERT_ERROR(res.r, ENOENT);
        /* Freed before it ends: done never runs. */
        ChecksumTask *t = NULL;
        res = (Result){};
        ASSERT_OK(checksum_task_start(e, d, NULL, false, on_done, &res, &t));
        checksum_task_free(t);
        for (int i = 0; i < 20; i++)
                (void)sd_event_run(e, 1 * USEC_PER_MSEC);
        ASSERT_FALSE(res.done);
        ASSERT_OK(remove_tree_one_fs(d));
}
