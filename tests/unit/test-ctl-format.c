/* SPDX-License-Identifier: Apache-2.0 */
#include <time.h>

#include "kybernatectl/ctl-format.h"
#include "test.h"

TEST(duration_parse) {
        uint64_t s;
        ASSERT_OK(parse_duration_sec("90", &s));
        ASSERT_EQ(s, 90);
        ASSERT_OK(parse_duration_sec("90s", &s));
        ASSERT_EQ(s, 90);
        ASSERT_OK(parse_duration_sec("15m", &s));
        ASSERT_EQ(s, 900);
        ASSERT_OK(parse_duration_sec("12h", &s));
        ASSERT_EQ(s, 12 * 3600);
        ASSERT_OK(parse_duration_sec("7d", &s));
        ASSERT_EQ(s, 7 * 86400);
        ASSERT_OK(parse_duration_sec("2w", &s));
        ASSERT_EQ(s, 14 * 86400);
        ASSERT_OK(parse_duration_sec("1d12h30m", &s));
        ASSERT_EQ(s, 86400 + 12 * 3600 + 1800);
        ASSERT_OK(parse_duration_sec("0", &s));
        ASSERT_EQ(s, 0);
}

TEST(duration_parse_errors) {
        uint64_t s = 42;
        ASSERT_ERROR(parse_duration_sec("", &s), EINVAL);
        ASSERT_ERROR(parse_duration_sec(NULL, &s), EINVAL);
        ASSERT_ERROR(parse_duration_sec("d", &s), EINVAL);
        ASSERT_ERROR(parse_duration_sec("-1d", &s), EINVAL);
        ASSERT_ERROR(parse_duration_sec("7x", &s), EINVAL);
        ASSERT_ERROR(parse_duration_sec("7 d", &s), EINVAL);
        ASSERT_ERROR(parse_duration_sec("1d5", &s), EINVAL);
        ASSERT_ERROR(parse_duration_sec("7D", &s), EINVAL);
        ASSERT_ERROR(parse_duration_sec("99999999999999999999", &s), ERANGE);
        ASSERT_ERROR(parse_duration_sec("40000000000000w", &s), ERANGE);
        ASSERT_ERROR(parse_duration_sec("18446744073709551615s1s", &s), ERANGE);
        ASSERT_EQ(s, 42); /* untouched on error */
}

TEST(duration_format) {
        char b[32];
        ASSERT_STREQ(format_usec(b, sizeof(b), 850), "850 us");
        ASSERT_STREQ(format_usec(b, sizeof(b), 12345), "12.345 ms");
        ASSERT_STREQ(format_usec(b, sizeof(b), 1500000), "1.500 s");
        ASSERT_STREQ(format_duration(b, sizeof(b), 0), "0s");
        ASSERT_STREQ(format_duration(b, sizeof(b), 45), "45s");
        ASSERT_STREQ(format_duration(b, sizeof(b), 185), "3m");
        ASSERT_STREQ(format_duration(b, sizeof(b), 5 * 3600 + 120), "5h 2m");
        ASSERT_STREQ(format_duration(b, sizeof(b), 2 * 86400 + 3 * 3600), "2d 3h");
        ASSERT_STREQ(format_duration(b, sizeof(b), 3 * 604800 + 86400 + 5), "3w 1d");
        ASSERT_STREQ(format_duration(b, sizeof(b), 86400), "1d");
}

TEST(bytes_format) {
        char b[32];
        ASSERT_STREQ(format_bytes(b, sizeof(b), 0), "0 B");
        ASSERT_STREQ(format_bytes(b, sizeof(b), 1023), "1023 B");
        ASSERT_STREQ(format_bytes(b, sizeof(b), 1536), "1.5 KiB");
        ASSERT_STREQ(format_bytes(b, sizeof(b), (uint64_t)17 * 1024 * 1024), "17.0 MiB");
        ASSERT_STREQ(format_bytes(b, sizeof(b), 1ULL << 30), "1.0 GiB");
        ASSERT_STREQ(format_bytes(b, sizeof(b), UINT64_MAX), "16.0 EiB");
}

TEST(time_format) {
        char b[64];
        ASSERT_STREQ(format_time_rfc3339(b, sizeof(b), 0), "");
        ASSERT_STREQ(format_time_rfc3339(b, sizeof(b), 1700000000LL * 1000000000LL + 5),
                     "2023-11-14T22:13:20Z");
        ASSERT_STREQ(format_time_ns(b, sizeof(b), 0), "-");
        setenv("TZ", "UTC", 1);
        tzset();
        ASSERT_STREQ(format_time_ns(b, sizeof(b), 1700000000LL * 1000000000LL), "2023-11-14 22:13:20");
}

TEST(uint_parse) {
        uint64_t v;
        ASSERT_OK(parse_uint("10", 100, &v));
        ASSERT_EQ(v, 10);
        ASSERT_ERROR(parse_uint("101", 100, &v), ERANGE);
        ASSERT_ERROR(parse_uint("-1", 100, &v), EINVAL);
        ASSERT_ERROR(parse_uint("", 100, &v), EINVAL);
        ASSERT_ERROR(parse_uint("1x", 100, &v), EINVAL);
        ASSERT_OK(parse_uint("4294967295", UINT32_MAX, &v));
        ASSERT_ERROR(parse_uint("4294967296", UINT32_MAX, &v), ERANGE);
}

TEST(exit_codes) {
        ASSERT_EQ(ctl_exit_code(0), 0);
        ASSERT_EQ(ctl_exit_code(-ENOENT), CTL_EXIT_NOT_FOUND);
        ASSERT_EQ(ctl_exit_code(-EACCES), CTL_EXIT_DENIED);
        ASSERT_EQ(ctl_exit_code(-EPERM), CTL_EXIT_DENIED);
        ASSERT_EQ(ctl_exit_code(-EINVAL), CTL_EXIT_USAGE);
        ASSERT_EQ(ctl_exit_code(-ECONNREFUSED), CTL_EXIT_UNREACHABLE);
        ASSERT_EQ(ctl_exit_code(-ENOTUNIQ), CTL_EXIT_CONFLICT);
        ASSERT_EQ(ctl_exit_code(-EIO), CTL_EXIT_FAILED);
}

static char *print_table(Table *t) {
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);
        ASSERT_NOT_NULL(f);
        ASSERT_OK(table_print(t, f));
        fclose(f);
        return out;
}

TEST(table_basic) {
        _cleanup_table_ Table *t = NULL;
        ASSERT_OK(table_new(3, (const char *const[]){"ID", "NAME", "SIZE"}, &t));
        table_set_right(t, 2);
        ASSERT_OK(table_add_row(t, (const char *const[]){"abc", "first", "1.0 KiB"}));
        ASSERT_OK(table_add_row(t, (const char *const[]){"d", NULL, "12 B"}));
        ASSERT_EQ(table_rows(t), 2);
        _cleanup_free_ char *out = print_table(t);
        ASSERT_STREQ(out, "ID   NAME      SIZE\n"
                          "abc  first  1.0 KiB\n"
                          "d    -         12 B\n");
}

TEST(table_sanitizes_and_counts_utf8) {
        _cleanup_table_ Table *t = NULL;
        ASSERT_OK(table_new(2, (const char *const[]){"A", "B"}, &t));
        ASSERT_OK(table_add_row(t, (const char *const[]){"x\033[2Jy", "end"}));
        ASSERT_OK(table_add_row(t, (const char *const[]){"\xc3\xa9t\xc3\xa9", "z"})); /* "été": 3 columns */
        _cleanup_free_ char *out = print_table(t);
        ASSERT_STREQ(out, "A       B\n"
                          "x?[2Jy  end\n"
                          "\xc3\xa9t\xc3\xa9     z\n");
}

TEST(table_empty) {
        _cleanup_table_ Table *t = NULL;
        ASSERT_OK(table_new(1, (const char *const[]){"ID"}, &t));
        ASSERT_EQ(table_rows(t), 0);
        _cleanup_free_ char *out = print_table(t);
        ASSERT_STREQ(out, "ID\n");
        ASSERT_ERROR(table_new(0, NULL, &t), EINVAL);
}

TEST(printable) {
        _cleanup_free_ char *a = strdup_printable("ok\tno\x7f\xc2\x9b!");
        ASSERT_STREQ(a, "ok?no???"
                        "!");
        _cleanup_free_ char *b = strdup_printable(NULL);
        ASSERT_STREQ(b, "");
}
