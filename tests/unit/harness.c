/* SPDX-License-Identifier: Apache-2.0 */
/* The runner behind test.h. The Makefile links it into every unit test binary
 * (not into libcommon: the programs never carry it), so each test gets main()
 * and the fixtures from here. */
#include <ftw.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test.h"

#define TEST_MAX 512
#define TEST_SKIP_STATUS 77
#define TEST_TMPDIR_MAX 64

static TestCase tests[TEST_MAX];
static size_t n_tests;

/* The directory the runner makes for the test it is about to run and removes
 * once that test's process has ended; test_tmpdir() makes its directories in it. */
static char test_root[32];
static char tmpdirs[TEST_TMPDIR_MAX][48];
static size_t n_tmpdirs;
static sd_event *event;

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

const char *test_tmpdir(void) {
        if (n_tmpdirs >= TEST_TMPDIR_MAX)
                test_fail(__FILE__, __LINE__, "more than %d test_tmpdir() calls in one test",
                          TEST_TMPDIR_MAX);
        char *d = tmpdirs[n_tmpdirs];
        snprintf(d, sizeof(tmpdirs[0]), "%s/XXXXXX", test_root);
        if (!mkdtemp(d))
                test_fail(__FILE__, __LINE__, "mkdtemp(%s): %s", d, strerror(errno));
        n_tmpdirs++;
        return d;
}

sd_event *test_event(void) {
        if (!event) {
                int r = sd_event_new(&event);
                if (r < 0)
                        test_fail(__FILE__, __LINE__, "sd_event_new: %s", strerror(-r));
        }
        return event;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        if (remove(path) < 0)
                fprintf(stderr, "  left behind: %s: %m\n", path);
        return 0;
}

/* Never leaves the file system nor follows a link: a test's mounts live in its
 * own namespace, and a link may point anywhere. */
static void remove_root(void) {
        (void)nftw(test_root, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

static void run_test(const TestCase *t) {
        t->func();
        /* Sources that a test's objects still hold go with the process. */
        event = sd_event_unref(event);
        fflush(NULL);
        _exit(0);
}

int main(int argc, char **argv) {
        unsigned passed = 0, failed = 0, skipped = 0;
        const char *only = argc > 1 ? argv[1] : NULL;

        for (size_t i = 0; i < n_tests; i++) {
                if (only && !strstr(tests[i].name, only))
                        continue;
                snprintf(test_root, sizeof(test_root), "/tmp/kyb-unit.XXXXXX");
                /* Searchable by all: some tests hand a directory to another uid. */
                if (!mkdtemp(test_root) || chmod(test_root, 0755) < 0) {
                        perror("mkdtemp");
                        return 1;
                }
                fflush(NULL);
                pid_t pid = fork();
                if (pid < 0) {
                        perror("fork");
                        return 1;
                }
                if (pid == 0)
                        run_test(&tests[i]);
                int status;
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                        ;
                remove_root();
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
