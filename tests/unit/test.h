/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* The in-tree unit test harness (tests/unit/harness.c, linked into every unit
 * test binary). TEST(name) registers a test; each one runs in a forked child,
 * so a crash fails that test alone. A test returns normally to pass, fails
 * through ASSERT_*(), and skips with return_skip("why"). Output is one
 * "PASS: x", "FAIL: x" or "SKIP: x" line per test, which tests/run counts, then
 * this binary's own "N passed, N failed, N skipped".
 *
 * Fixtures, each living as long as the test that asks for it:
 *   test_tmpdir()  a new empty directory (mode 0700) under /tmp; every call
 *                  gives another one. The runner removes them with all their
 *                  contents once the test's process has ended, pass or fail.
 *   test_event()   the test's sd-event loop, made on the first call; the same
 *                  loop on later calls. Released when the test returns. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "util.h"

typedef struct TestCase {
        const char *name;
        void (*func)(void);
} TestCase;

void test_register(const char *name, void (*func)(void));
_noreturn_ void test_fail(const char *file, int line, const char *fmt, ...) _printf_(3, 4);
_noreturn_ void test_skip(const char *why);
const char *test_tmpdir(void);
sd_event *test_event(void);

#define TEST(n)                                                            \
        static void test_##n(void);                                        \
        __attribute__((constructor)) static void test_register_##n(void) { \
                test_register(#n, test_##n);                               \
        }                                                                  \
        static void test_##n(void)

#define return_skip(why) test_skip(why)

#define ASSERT_TRUE(expr)                                                          \
        do {                                                                       \
                if (!(expr))                                                       \
                        test_fail(__FILE__, __LINE__, "expected true: %s", #expr); \
        } while (0)
#define ASSERT_FALSE(expr) ASSERT_TRUE(!(expr))
#define ASSERT_OK(expr)                                                                  \
        do {                                                                             \
                long long _r = (long long)(expr);                                        \
                if (_r < 0)                                                              \
                        test_fail(__FILE__, __LINE__, "%s failed: %lld (%s)", #expr, _r, \
                                  strerror((int)-_r));                                   \
        } while (0)
#define ASSERT_ERROR(expr, err)                                                                    \
        do {                                                                                       \
                long long _r = (long long)(expr);                                                  \
                if (_r != -(long long)(err))                                                       \
                        test_fail(__FILE__, __LINE__, "%s = %lld, expected -%s", #expr, _r, #err); \
        } while (0)
#define ASSERT_EQ(a, b)                                                                          \
        do {                                                                                     \
                long long _a = (long long)(a), _b = (long long)(b);                              \
                if (_a != _b)                                                                    \
                        test_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b, _a, _b); \
        } while (0)
#define ASSERT_NE(a, b)                                                                   \
        do {                                                                              \
                long long _a = (long long)(a), _b = (long long)(b);                       \
                if (_a == _b)                                                             \
                        test_fail(__FILE__, __LINE__, "%s != %s: both %lld", #a, #b, _a); \
        } while (0)
#define ASSERT_STREQ(a, b)                                                                  \
        do {                                                                                \
                const char *_a = (a), *_b = (b);                                            \
                if (!streq_ptr(_a, _b))                                                     \
                        test_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                                  _a ? _a : "(null)", _b ? _b : "(null)");                  \
        } while (0)
#define ASSERT_NOT_NULL(p) ASSERT_TRUE((p) != NULL)
#define ASSERT_NULL(p) ASSERT_TRUE((p) == NULL)
