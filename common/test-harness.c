/* SPDX-License-Identifier: Apache-2.0 */
/* The runner behind tests/unit/test.h. It lives in libcommon so every unit test
 * binary gets main() from here; programs never reference it, so the linker
 * leaves it out of them. */
#include <stdarg.h>
#include <sys/wait.h>

#include "../tests/unit/test.h"

#define TEST_MAX 512
#define TEST_SKIP_STATUS 77

static TestCase tests[TEST_MAX];
static size_t n_tests;

void test_register(const char *name, void (*func)(void)) {
        if (n_tests >= TEST_MAX) {
                fprintf(stderr, "too many tests\n");
                abort();
        }
        tests[n_tests++] = (TestCase){name, func};
}

void test_fail(const char *file, int line, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "  %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        _exit(1);
}

void test_skip(const char *why) {
        fprintf(stderr, "  skipped: %s\n", why);
        _exit(TEST_SKIP_STATUS);
}

int main(int argc, char **argv) {
        unsigned passed = 0, failed = 0, skipped = 0;
        const char *only = argc > 1 ? argv[1] : NULL;

        for (size_t i = 0; i < n_tests; i++) {
                if (only && !strstr(tests[i].name, only))
                        continue;
                fflush(NULL);
                pid_t pid = fork();
                if (pid < 0) {
                        perror("fork");
                        return 1;
                }
                if (pid == 0) {
                        tests[i].func();
                        fflush(NULL);
                        _exit(0);
                }
                int status;
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                        printf("PASS: %s\n", tests[i].name);
                        passed++;
                } else if (WIFEXITED(status) && WEXITSTATUS(status) == TEST_SKIP_STATUS) {
                        printf("SKIP: %s\n", tests[i].name);
                        skipped++;
                } else {
                        if (WIFSIGNALED(status))
                                fprintf(stderr, "  killed by signal %d\n", WTERMSIG(status));
                        printf("FAIL: %s\n", tests[i].name);
                        failed++;
                }
                fflush(stdout);
        }
        printf("%u passed, %u failed, %u skipped\n", passed, failed, skipped);
        return failed ? 1 : 0;
}
