/* SPDX-License-Identifier: Apache-2.0 */
/* kybernatectl/progress.c: the status and final lines of push and pull. */
#include <fcntl.h>
#include <pty.h>
#include <unistd.h>

#include "kybernatectl/progress.h"
#include "test.h"

#define MIB ((uint64_t)1024 * 1024)
#define SEC ((int64_t)USEC_PER_SEC)

TEST(progress_rate) {
        char b[32];
        ASSERT_STREQ(progress_format_rate(b, sizeof(b), 10 * MIB, 2 * SEC), "5.0 MiB/s");
        ASSERT_STREQ(progress_format_rate(b, sizeof(b), 0, SEC), "0.0 MiB/s");
        /* No time yet counts as 1 ms, not as a division by zero. */
        ASSERT_STREQ(progress_format_rate(b, sizeof(b), MIB, 0), "1000.0 MiB/s");
        ASSERT_STREQ(progress_format_rate(b, sizeof(b), MIB, -5), "1000.0 MiB/s");
}

TEST(progress_final_line) {
        char b[256];
        ASSERT_STREQ(progress_format_final(b, sizeof(b), "Packing checkpoint x", NULL, true, 3 * MIB / 2,
                                           2 * SEC),
                     "Packing checkpoint x: 1.5 MiB in 2.0 s (0.8 MiB/s)");
        ASSERT_STREQ(progress_format_final(b, sizeof(b), "Verifying", "checkpoint abc", true, 512, SEC / 2),
                     "Verifying: checkpoint abc, 512 B in 0.5 s (0.0 MiB/s)");
        ASSERT_STREQ(progress_format_final(b, sizeof(b), "Resolving r", "sha256:00", false, 0, SEC / 5),
                     "Resolving r: sha256:00 in 0.2 s");
        ASSERT_STREQ(progress_format_final(b, sizeof(b), "Step", NULL, false, 99, SEC),
                     "Step: done in 1.0 s");
        /* The bytes counted, even past a total: the final line is what happened. */
        ASSERT_STREQ(progress_format_final(b, sizeof(b), "Big", NULL, true, 3 * 1024 * MIB, 3 * SEC),
                     "Big: 3.0 GiB in 3.0 s (1024.0 MiB/s)");
}

TEST(progress_status_line) {
        char b[256];
        ASSERT_STREQ(progress_format_status(b, sizeof(b), "Fetching img", true, MIB, 4 * MIB, 2 * SEC, 80),
                     "Fetching img  1.0 MiB of 4.0 MiB  0.5 MiB/s  2.0 s");
        /* Past the total (a child's counters include a little of its own): shown as the total. */
        ASSERT_STREQ(
                progress_format_status(b, sizeof(b), "Fetching img", true, 5 * MIB, 4 * MIB, 2 * SEC, 80),
                "Fetching img  4.0 MiB of 4.0 MiB  2.0 MiB/s  2.0 s");
        ASSERT_STREQ(progress_format_status(b, sizeof(b), "Unpacking", true, MIB, 0, 2 * SEC, 80),
                     "Unpacking  1.0 MiB  0.5 MiB/s  2.0 s");
        ASSERT_STREQ(progress_format_status(b, sizeof(b), "Resolving x", false, 0, 0, SEC / 3, 80),
                     "Resolving x  0.3 s");
}

TEST(progress_status_line_fits) {
        char b[512], label[300];
        memset(label, 'a', sizeof(label) - 1);
        label[sizeof(label) - 1] = 0;
        /* A long label is cut (with "...") so the line stays below the width:
         * a line that wraps cannot be redrawn with \r. */
        progress_format_status(b, sizeof(b), label, true, MIB, 4 * MIB, 2 * SEC, 80);
        ASSERT_EQ(strlen(b), 79);
        ASSERT_TRUE(strstr(b, "aaa...  1.0 MiB of 4.0 MiB  0.5 MiB/s  2.0 s"));
        ASSERT_TRUE(endswith(b, "2.0 s"));
        progress_format_status(b, sizeof(b), "short", true, MIB, 4 * MIB, 2 * SEC, 80);
        ASSERT_STREQ(b, "short  1.0 MiB of 4.0 MiB  0.5 MiB/s  2.0 s");

        /* Not cut inside a UTF-8 character ("é" is 2 bytes). */
        char utf[300] = "";
        for (size_t i = 0; i < 100; i++)
                strcat(utf, "\xc3\xa9");
        progress_format_status(b, sizeof(b), utf, false, 0, 0, SEC, 40);
        char *dots = strstr(b, "...");
        ASSERT_TRUE(dots);
        ASSERT_EQ((dots - b) % 2, 0);
        ASSERT_TRUE(strlen(b) <= 39);

        /* Too narrow to cut the label sensibly: the line itself is cut. */
        progress_format_status(b, sizeof(b), label, true, MIB, 4 * MIB, 2 * SEC, 30);
        ASSERT_EQ(strlen(b), 29);
}

/* What the steps wrote to a memory file. */
static char *run_steps(ProgressMode mode, bool fail) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        ASSERT_TRUE(f);
        Progress p;
        progress_init(&p, f, mode);
        progress_begin(&p, true, 4 * MIB, "Fetching %s", "img");
        /* Within PROGRESS_REDRAW_USEC of the first draw: counted, not drawn. */
        progress_set(&p, MIB);
        progress_set(&p, 2 * MIB);
        if (fail)
                progress_fail(&p);
        else {
                progress_set(&p, 4 * MIB);
                progress_end(&p, NULL);
        }
        progress_line(&p, "Pulled in %.1f s", 1.5);
        progress_done(&p);
        fclose(f);
        return buf;
}

static size_t count(const char *s, char c) {
        size_t n = 0;
        for (; *s; s++)
                n += *s == c;
        return n;
}

TEST(progress_lines_mode) {
        _cleanup_free_ char *out = run_steps(PROGRESS_LINES, false);
        /* One line per step, only when it ends, no escapes. */
        ASSERT_TRUE(startswith(out, "Fetching img: 4.0 MiB in "));
        ASSERT_TRUE(strstr(out, " MiB/s)\nPulled in 1.5 s\n"));
        ASSERT_EQ(count(out, '\n'), 2);
        ASSERT_FALSE(strchr(out, '\r'));
        ASSERT_FALSE(strchr(out, '\033'));

        _cleanup_free_ char *failed = run_steps(PROGRESS_LINES, true);
        ASSERT_TRUE(startswith(failed, "Fetching img: failed after "));
        ASSERT_EQ(count(failed, '\n'), 2);
}

TEST(progress_terminal_mode) {
        _cleanup_free_ char *out = run_steps(PROGRESS_TERMINAL, false);
        /* Drawn at once, then (the sets came too fast to redraw) finalised
         * in place with the totals and a newline. */
        ASSERT_TRUE(startswith(out, "\r\033[KFetching img  0 B of 4.0 MiB  "));
        ASSERT_EQ(count(out, '\r'), 2);
        ASSERT_TRUE(strstr(out, "\r\033[KFetching img: 4.0 MiB in "));
        ASSERT_TRUE(endswith(out, " MiB/s)\nPulled in 1.5 s\n"));

        _cleanup_free_ char *failed = run_steps(PROGRESS_TERMINAL, true);
        ASSERT_TRUE(strstr(failed, "\r\033[KFetching img: failed after "));
}

TEST(progress_terminal_redraws) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        ASSERT_TRUE(f);
        Progress p;
        progress_init(&p, f, PROGRESS_TERMINAL);
        progress_begin(&p, true, 0, "Unpacking");
        usleep(PROGRESS_REDRAW_USEC + 20000);
        progress_set(&p, MIB);
        progress_end(&p, NULL);
        progress_done(&p);
        fclose(f);
        _cleanup_free_ char *out = buf;
        ASSERT_EQ(count(out, '\r'), 3);
        ASSERT_TRUE(strstr(out, "\r\033[KUnpacking  1.0 MiB  "));
        ASSERT_TRUE(strstr(out, "\r\033[KUnpacking: 1.0 MiB in 0.2 s ("));
}

TEST(progress_quiet_mode) {
        _cleanup_free_ char *out = run_steps(PROGRESS_QUIET, false);
        ASSERT_STREQ(out, "");
        _cleanup_free_ char *failed = run_steps(PROGRESS_QUIET, true);
        ASSERT_STREQ(failed, "");
}

TEST(progress_mode_detect) {
        ASSERT_EQ(progress_mode(STDERR_FILENO, true), PROGRESS_QUIET);
        int pipefd[2];
        ASSERT_OK(pipe2(pipefd, O_CLOEXEC));
        setenv("TERM", "xterm", 1);
        ASSERT_EQ(progress_mode(pipefd[1], false), PROGRESS_LINES);
        close(pipefd[0]);
        close(pipefd[1]);

        int master, slave;
        if (openpty(&master, &slave, NULL, NULL, NULL) < 0)
                return_skip("no pseudo-terminal");
        ASSERT_EQ(progress_mode(slave, false), PROGRESS_TERMINAL);
        ASSERT_EQ(progress_mode(slave, true), PROGRESS_QUIET);
        setenv("TERM", "dumb", 1);
        ASSERT_EQ(progress_mode(slave, false), PROGRESS_LINES);
        unsetenv("TERM");
        ASSERT_EQ(progress_mode(slave, false), PROGRESS_LINES);
        close(master);
        close(slave);
}
