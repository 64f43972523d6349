/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <time.h>

#include "ctl-format.h"

int ctl_exit_code(int r) {
        if (r >= 0)
                return CTL_EXIT_OK;
        switch (-r) {
        case ENOENT:
        case ESRCH:
                return CTL_EXIT_NOT_FOUND;
        case EACCES:
        case EPERM:
                return CTL_EXIT_DENIED;
        case EINVAL:
        case EPROTONOSUPPORT:
                return CTL_EXIT_USAGE;
        case ECONNREFUSED:
        case ECONNRESET:
        case ENOTCONN:
        case EPIPE:
                return CTL_EXIT_UNREACHABLE;
        case EEXIST:
        case ENOTUNIQ:
        case EBUSY:
                return CTL_EXIT_CONFLICT;
        default:
                return CTL_EXIT_FAILED;
        }
}

static const struct {
        char unit;
        uint64_t sec;
} duration_units[] = {
        {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', (uint64_t)7 * 86400},
};

int parse_duration_sec(const char *s, uint64_t *ret) {
        uint64_t total = 0;
        const char *p = s;
        bool any = false;

        if (!s || !*s)
                return -EINVAL;
        while (*p) {
                uint64_t n = 0;
                const char *start = p;
                while (*p >= '0' && *p <= '9') {
                        uint64_t d = (uint64_t)(*p - '0');
                        if (n > (UINT64_MAX - d) / 10)
                                return -ERANGE;
                        n = n * 10 + d;
                        p++;
                }
                if (p == start)
                        return -EINVAL; /* a unit without a number, a sign, garbage */
                uint64_t mult = 0;
                if (!*p) {
                        if (any)
                                return -EINVAL; /* "1d5": ambiguous */
                        mult = 1;
                } else {
                        for (size_t i = 0; i < ELEMENTSOF(duration_units); i++)
                                if (*p == duration_units[i].unit)
                                        mult = duration_units[i].sec;
                        if (mult == 0)
                                return -EINVAL;
                        p++;
                }
                if (n > UINT64_MAX / mult || total > UINT64_MAX - n * mult)
                        return -ERANGE;
                total += n * mult;
                any = true;
        }
        *ret = total;
        return 0;
}

char *format_usec(char *buf, size_t size, uint64_t us) {
        if (us < 1000)
                snprintf(buf, size, "%" PRIu64 " us", us);
        else if (us < 1000000)
                snprintf(buf, size, "%.3f ms", (double)us / 1000.0);
        else
                snprintf(buf, size, "%.3f s", (double)us / 1000000.0);
        return buf;
}

char *format_duration(char *buf, size_t size, uint64_t sec) {
        static const struct {
                const char *suffix;
                uint64_t sec;
        } units[] = {{"w", (uint64_t)7 * 86400}, {"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}};

        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (sec < units[i].sec && units[i].sec > 1)
                        continue;
                uint64_t a = sec / units[i].sec, rest = sec % units[i].sec;
                if (i + 1 < ELEMENTSOF(units) && units[i].sec >= 3600 && rest / units[i + 1].sec > 0)
                        snprintf(buf, size, "%" PRIu64 "%s %" PRIu64 "%s", a, units[i].suffix,
                                 rest / units[i + 1].sec, units[i + 1].suffix);
                else
                        snprintf(buf, size, "%" PRIu64 "%s", a, units[i].suffix);
                return buf;
        }
        snprintf(buf, size, "0s");
        return buf;
}

char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRIu64 " B", bytes);
                return buf;
        }
        double v = (double)bytes;
        size_t i = 0;
        v /= 1024.0;
        while (v >= 1024.0 && i + 1 < ELEMENTSOF(units)) {
                v /= 1024.0;
                i++;
        }
        snprintf(buf, size, "%.1f %s", v, units[i]);
        return buf;
}

char *format_time_ns(char *buf, size_t size, int64_t ns) {
        struct tm tm;
        time_t t = (time_t)(ns / (int64_t)NSEC_PER_SEC);

        if (ns <= 0 || !localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
        return buf;
}

int parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        uint64_t v = 0;
        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                uint64_t d = (uint64_t)(*p - '0');
                if (v > (max - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

char *strdup_printable(const char *s) {
        if (!s)
                return strdup("");
        char *c = strdup(s);
        if (!c)
                return NULL;
        for (unsigned char *p = (unsigned char *)c; *p; p++) {
                if (*p < 0x20 || *p == 0x7f)
                        *p = '?';
                /* C1 controls in UTF-8 (U+0080..U+009F) can drive terminals too. */
                else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
                        p[0] = '?';
                        p[1] = '?';
                        p++;
                }
        }
        return c;
}

/* ---- table ---- */

struct Table {
        size_t n_columns;
        char **cells; /* rows * n_columns, row 0 = headers */
        size_t n_rows, alloc_rows;
        bool *right;
};

int table_new(size_t n_columns, const char *const *headers, Table **ret) {
        if (n_columns == 0)
                return -EINVAL;
        Table *t = calloc(1, sizeof(Table));
        if (!t)
                return -ENOMEM;
        t->n_columns = n_columns;
        t->right = calloc(n_columns, sizeof(bool));
        if (!t->right) {
                free(t);
                return -ENOMEM;
        }
        int r = table_add_row(t, headers);
        if (r < 0) {
                table_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_rows * t->n_columns; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->right);
        free(t);
        return NULL;
}

void table_set_right(Table *t, size_t column) {
        if (column < t->n_columns)
                t->right[column] = true;
}

int table_add_row(Table *t, const char *const *cells) {
        if (t->n_rows >= t->alloc_rows) {
                size_t na = t->alloc_rows ? t->alloc_rows * 2 : 16;
                char **nc = reallocarray(t->cells, na * t->n_columns, sizeof(char *));
                if (!nc)
                        return -ENOMEM;
                t->cells = nc;
                t->alloc_rows = na;
        }
        char **row = t->cells + t->n_rows * t->n_columns;
        for (size_t c = 0; c < t->n_columns; c++) {
                row[c] = strdup_printable(cells[c] && *cells[c] ? cells[c] : "-");
                if (!row[c]) {
                        for (size_t k = 0; k < c; k++)
                                free(row[k]);
                        return -ENOMEM;
                }
        }
        t->n_rows++;
        return 0;
}

size_t table_rows(const Table *t) {
        return t->n_rows > 0 ? t->n_rows - 1 : 0;
}

/* Display width: UTF-8 continuation bytes take no column. */
static size_t text_width(const char *s) {
        size_t w = 0;
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if ((*p & 0xc0) != 0x80)
                        w++;
        return w;
}

static void put_spaces(FILE *f, size_t n) {
        static const char spaces[] = "                                                                ";
        while (n > 0) {
                size_t k = MIN(n, sizeof(spaces) - 1);
                fwrite_unlocked(spaces, 1, k, f);
                n -= k;
        }
}

int table_print(const Table *t, FILE *f) {
        _cleanup_free_ size_t *width = calloc(t->n_columns * (t->n_rows + 1), sizeof(size_t));
        if (!width)
                return -ENOMEM;
        /* Cell widths are measured once; width[0..n_columns) holds the column maxima. */
        size_t *cw = width + t->n_columns;
        for (size_t r = 0; r < t->n_rows; r++)
                for (size_t c = 0; c < t->n_columns; c++) {
                        size_t w = text_width(t->cells[r * t->n_columns + c]);
                        cw[r * t->n_columns + c] = w;
                        width[c] = MAX(width[c], w);
                }

        for (size_t r = 0; r < t->n_rows; r++) {
                for (size_t c = 0; c < t->n_columns; c++) {
                        const char *s = t->cells[r * t->n_columns + c];
                        size_t pad = width[c] - cw[r * t->n_columns + c];
                        bool last = c + 1 == t->n_columns;
                        if (c > 0)
                                fputs_unlocked("  ", f);
                        if (t->right[c]) {
                                put_spaces(f, pad);
                                fputs_unlocked(s, f);
                        } else {
                                fputs_unlocked(s, f);
                                if (!last)
                                        put_spaces(f, pad);
                        }
                }
                fputc_unlocked('\n', f);
        }
        return ferror(f) ? -EIO : 0;
}
