/*
 * prom_buf.c - the growable, bounded text buffer and the number formats of the
 * exposition formats (see prom_buf.h).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_buf.h"

#define PROM_BUF_DEFAULT_MAX ((size_t)1 << 30)

void syc_prom_buf_init(syc_prom_buf_t *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max ? max : PROM_BUF_DEFAULT_MAX;
}

void syc_prom_buf_free(syc_prom_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void syc_prom_buf_reset(syc_prom_buf_t *b)
{
    b->len = 0;
    b->failed = false;
    if (b->data) b->data[0] = '\0';
}

void syc_prom_buf_truncate(syc_prom_buf_t *b, size_t len)
{
    if (b->failed || len > b->len) return;
    b->len = len;
    if (b->data) b->data[len] = '\0';
}

static bool syc_prom_buf_reserve(syc_prom_buf_t *b, size_t n)
{
    if (b->failed) return false;
    if (n > b->max || b->len > b->max - n) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + n + 1;
    if (need <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

uint8_t *syc_prom_buf_extend(syc_prom_buf_t *b, size_t n)
{
    if (!syc_prom_buf_reserve(b, n)) return NULL;
    uint8_t *p = (uint8_t *)b->data + b->len;
    b->len += n;
    b->data[b->len] = '\0';
    return p;
}

void syc_prom_buf_put(syc_prom_buf_t *b, const void *p, size_t n)
{
    if (!syc_prom_buf_reserve(b, n)) return;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void syc_prom_buf_str(syc_prom_buf_t *b, const char *s)
{
    syc_prom_buf_put(b, s, strlen(s));
}

void syc_prom_buf_char(syc_prom_buf_t *b, char c)
{
    syc_prom_buf_put(b, &c, 1);
}

void syc_prom_buf_u64(syc_prom_buf_t *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRIu64, v);
    syc_prom_buf_put(b, tmp, (size_t)n);
}

void syc_prom_buf_i64(syc_prom_buf_t *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%" PRId64, v);
    syc_prom_buf_put(b, tmp, (size_t)n);
}

char *syc_prom_buf_take(syc_prom_buf_t *b, size_t *len)
{
    if (b->failed || !syc_prom_buf_reserve(b, 0)) {
        syc_prom_buf_free(b);
        b->failed = false;
        return NULL;
    }
    char *p = b->data;
    if (len) *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

/*
 * The shortest decimal digits that read back as `v` (positive, finite, not zero):
 * digits[0..*nd) without trailing zeros and the decimal exponent of the first
 * digit, so v ~ 0.d1d2... * 10^(*dp). Found as the smallest %e precision that
 * round-trips, which is the same digit string as Go's shortest formatting for all
 * but rare ties.
 */
static void shortest_digits(double v, char digits[20], int *nd, int *dp)
{
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
        if (p == 17 || strtod(tmp, NULL) == v) break;
    }
    int n = 0;
    const char *s = tmp;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && n < 19) digits[n++] = *s;
    int e = (*s == 'e') ? atoi(s + 1) : 0;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *nd = n;
    *dp = e + 1;
}

/* Go's %e form of shortest digits: d[.ddd]e±XX (two exponent digits at least). */
static void put_exp_form(syc_prom_buf_t *b, const char *digits, int nd, int dp, bool pad_exp)
{
    syc_prom_buf_char(b, digits[0]);
    if (nd > 1) {
        syc_prom_buf_char(b, '.');
        syc_prom_buf_put(b, digits + 1, (size_t)nd - 1);
    }
    int e = dp - 1;
    char tmp[12];
    int n = snprintf(tmp, sizeof(tmp), pad_exp ? "e%c%02d" : "e%c%d", e < 0 ? '-' : '+',
                     e < 0 ? -e : e);
    syc_prom_buf_put(b, tmp, (size_t)n);
}

/* Go's %f form of shortest digits, with exactly the fraction digits needed. */
static void put_fixed_form(syc_prom_buf_t *b, const char *digits, int nd, int dp)
{
    if (dp > 0) {
        for (int i = 0; i < dp; i++)
            syc_prom_buf_char(b, i < nd ? digits[i] : '0');
    } else {
        syc_prom_buf_char(b, '0');
    }
    int frac = nd - dp;
    if (frac > 0) {
        syc_prom_buf_char(b, '.');
        for (int i = 0; i < frac; i++) {
            int k = dp + i;
            syc_prom_buf_char(b, (k >= 0 && k < nd) ? digits[k] : '0');
        }
    }
}

/* NaN and the infinities as both exposition formats write them; false otherwise. */
static bool put_special(syc_prom_buf_t *b, double v)
{
    if (isnan(v)) {
        syc_prom_buf_str(b, "NaN");
        return true;
    }
    if (isinf(v)) {
        syc_prom_buf_str(b, v > 0 ? "+Inf" : "-Inf");
        return true;
    }
    return false;
}

void syc_prom_buf_float_text(syc_prom_buf_t *b, double v)
{
    if (put_special(b, v)) return;
    if (v == 0) {
        syc_prom_buf_str(b, signbit(v) ? "-0" : "0");
        return;
    }
    if (v < 0) {
        syc_prom_buf_char(b, '-');
        v = -v;
    }
    char digits[20];
    int nd, dp;
    shortest_digits(v, digits, &nd, &dp);
    int e = dp - 1;
    /* Go's 'g' with the shortest precision takes %e when the exponent is below -4
     * or at least 6 (process_start_time_seconds 1.712345678e+09). */
    if (e < -4 || e >= 6)
        put_exp_form(b, digits, nd, dp, true);
    else
        put_fixed_form(b, digits, nd, dp);
}

void syc_prom_buf_float_om(syc_prom_buf_t *b, double v)
{
    size_t start = b->len;
    syc_prom_buf_float_text(b, v);
    if (b->failed || isnan(v) || isinf(v)) return;
    if (!memchr(b->data + start, '.', b->len - start) &&
        !memchr(b->data + start, 'e', b->len - start))
        syc_prom_buf_str(b, ".0");
}

void syc_prom_buf_float_attr(syc_prom_buf_t *b, double v)
{
    if (put_special(b, v)) return;
    if (v == 0) {
        syc_prom_buf_char(b, '0');
        return;
    }
    if (v < 0) {
        syc_prom_buf_char(b, '-');
        v = -v;
    }
    char digits[20];
    int nd, dp;
    shortest_digits(v, digits, &nd, &dp);
    if (v < 1e-6 || v >= 1e21)
        put_exp_form(b, digits, nd, dp, false);
    else
        put_fixed_form(b, digits, nd, dp);
}

size_t syc_prom_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    unsigned cp = c & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

void syc_prom_buf_escaped(syc_prom_buf_t *b, const char *s, size_t n, bool quote)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0; /* bytes at p[i - run .. i) to copy unchanged */
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        const char *esc = NULL;
        size_t len = 1;
        if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '"' && quote)
            esc = "\\\"";
        else if (c >= 0x80 && (len = syc_prom_utf8_len(p + i, n - i)) == 0)
            esc = "\xEF\xBF\xBD";
        if (!esc) {
            run += len;
            i += len;
            continue;
        }
        syc_prom_buf_put(b, p + i - run, run);
        run = 0;
        syc_prom_buf_str(b, esc);
        i++;
    }
    syc_prom_buf_put(b, p + i - run, run);
}
