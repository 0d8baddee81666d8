/*
 * debug_format.c - the buffer and the Go spellings the debug exporter's text uses.
 *
 * The collector prints values with pcommon's Value.AsString(), times with Go's
 * time.Time.String(), floats with Go's %v / %f / JSON rules and maps and slices as
 * Go's encoding/json does. This file reproduces those spellings in C; the
 * per-signal layouts are in debug_normal.c and debug_detailed.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "debug_format_internal.h"

/* ------------------------------------------------------------------------ */
/* The buffer                                                                */
/* ------------------------------------------------------------------------ */

void dbg_buf_init(dbg_buf_t *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

void dbg_buf_free(dbg_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* Makes room for n more bytes plus the NUL; false (and truncated) if it cannot. */
static bool reserve(dbg_buf_t *b, size_t n)
{
    if (b->truncated) return false;
    if (n > b->limit || b->len > b->limit - n) {
        b->truncated = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *d = realloc(b->data, cap);
    if (!d) {
        b->truncated = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void dbg_buf_put(dbg_buf_t *b, const char *s, size_t n)
{
    if (!reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void dbg_buf_puts(dbg_buf_t *b, const char *s)
{
    dbg_buf_put(b, s ? s : "", s ? strlen(s) : 0);
}

void dbg_buf_printf(dbg_buf_t *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(small)) {
        dbg_buf_put(b, small, (size_t)n);
        return;
    }
    if (!reserve(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ------------------------------------------------------------------------ */
/* Numbers                                                                   */
/* ------------------------------------------------------------------------ */

/*
 * The shortest decimal digits that read back as v (v finite and > 0), as Go's
 * strconv finds them: digits[0..nd) without a point, and the exponent of the
 * first digit (v = 0.d1d2d3... * 10^(exp10 + 1)).
 */
static int shortest_digits(double v, char digits[24], int *exp10)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    int nd = 0;
    const char *p = tmp;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9' && nd < 23) digits[nd++] = *p;
    *exp10 = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = '\0';
    return nd;
}

/* Appends digits in fixed notation ("0.00123", "1230", "12.5"). */
static void put_fixed(dbg_buf_t *b, const char *digits, int nd, int exp10)
{
    int dp = exp10 + 1; /* digits before the point */
    if (dp <= 0) {
        dbg_buf_puts(b, "0.");
        for (int i = 0; i < -dp; i++)
            dbg_buf_put(b, "0", 1);
        dbg_buf_put(b, digits, (size_t)nd);
    } else if (dp >= nd) {
        dbg_buf_put(b, digits, (size_t)nd);
        for (int i = nd; i < dp; i++)
            dbg_buf_put(b, "0", 1);
    } else {
        dbg_buf_put(b, digits, (size_t)dp);
        dbg_buf_put(b, ".", 1);
        dbg_buf_put(b, digits + dp, (size_t)(nd - dp));
    }
}

/* Appends digits in Go's %e shortest notation ("1.5e+06", "1e-07"). */
static void put_exp(dbg_buf_t *b, const char *digits, int nd, int exp10, bool trim_exp)
{
    dbg_buf_put(b, digits, 1);
    if (nd > 1) {
        dbg_buf_put(b, ".", 1);
        dbg_buf_put(b, digits + 1, (size_t)(nd - 1));
    }
    /* Go writes at least two exponent digits; its JSON encoder trims "e-07" to
     * "e-7" (negative exponents only). */
    if (trim_exp && exp10 < 0 && exp10 > -10)
        dbg_buf_printf(b, "e-%d", -exp10);
    else
        dbg_buf_printf(b, "e%c%02d", exp10 < 0 ? '-' : '+', exp10 < 0 ? -exp10 : exp10);
}

static bool put_special(dbg_buf_t *b, double v)
{
    if (isnan(v)) {
        dbg_buf_puts(b, "NaN");
        return true;
    }
    if (isinf(v)) {
        dbg_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return true;
    }
    return false;
}

void dbg_put_float_v(dbg_buf_t *b, double v)
{
    if (put_special(b, v)) return;
    if (v == 0) {
        dbg_buf_puts(b, signbit(v) ? "-0" : "0");
        return;
    }
    if (v < 0) dbg_buf_put(b, "-", 1);
    char digits[24];
    int exp10;
    int nd = shortest_digits(fabs(v), digits, &exp10);
    /* Go's %v is %g with the shortest digits, which switches to the exponent form
     * below 1e-4 and from 1e6 on (strconv uses precision 6 for that decision). */
    if (exp10 < -4 || exp10 >= 6)
        put_exp(b, digits, nd, exp10, false);
    else
        put_fixed(b, digits, nd, exp10);
}

void dbg_put_float_json(dbg_buf_t *b, double v)
{
    if (put_special(b, v)) return;
    if (v == 0) {
        dbg_buf_puts(b, signbit(v) ? "-0" : "0");
        return;
    }
    if (v < 0) dbg_buf_put(b, "-", 1);
    char digits[24];
    int exp10;
    double a = fabs(v);
    int nd = shortest_digits(a, digits, &exp10);
    /* As ES6 and Go's encoding/json: fixed notation from 1e-6 up to 1e21. */
    if (a < 1e-6 || a >= 1e21)
        put_exp(b, digits, nd, exp10, true);
    else
        put_fixed(b, digits, nd, exp10);
}

void dbg_put_float_f(dbg_buf_t *b, double v)
{
    if (put_special(b, v)) return;
    dbg_buf_printf(b, "%f", v);
}

/* ------------------------------------------------------------------------ */
/* Times and IDs                                                             */
/* ------------------------------------------------------------------------ */

/* Go's time.Time.String() of the UTC time `ns` nanoseconds after the epoch:
 * "2018-12-13 14:51:00.000000001 +0000 UTC", trailing zeros of the fraction cut. */
void dbg_put_time(dbg_buf_t *b, uint64_t ns)
{
    /* pcommon.Timestamp converts through int64, as here. */
    int64_t t = (int64_t)ns;
    int64_t sec = t / 1000000000;
    int64_t frac = t % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        sec -= 1;
    }
    time_t tt = (time_t)sec;
    struct tm tm;
    if (!gmtime_r(&tt, &tm)) {
        dbg_buf_puts(b, "?");
        return;
    }
    dbg_buf_printf(b, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                   tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (frac) {
        char f[16];
        snprintf(f, sizeof(f), "%09lld", (long long)frac);
        size_t n = 9;
        while (n > 0 && f[n - 1] == '0')
            n--;
        dbg_buf_put(b, ".", 1);
        dbg_buf_put(b, f, n);
    }
    dbg_buf_puts(b, " +0000 UTC");
}

/* A trace or span ID as pdata prints it: lower-case hex, empty when all zero. */
void dbg_put_id(dbg_buf_t *b, const sy_value_t *id)
{
    static const char hex[] = "0123456789abcdef";
    if (id->type != SY_VALUE_BYTES || !id->bytes) return;
    size_t n = id->len > 32 ? 32 : id->len; /* IDs are 16 or 8 bytes; bound junk */
    bool zero = true;
    for (size_t i = 0; i < n; i++)
        if (id->bytes[i]) zero = false;
    if (zero) return;
    for (size_t i = 0; i < n; i++) {
        char c[2] = {hex[id->bytes[i] >> 4], hex[id->bytes[i] & 15]};
        dbg_buf_put(b, c, 2);
    }
}

/* ------------------------------------------------------------------------ */
/* Strings and values                                                        */
/* ------------------------------------------------------------------------ */

void dbg_put_str(dbg_buf_t *b, const char *s, size_t n)
{
    if (!s) return;
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\0') continue;
        dbg_buf_put(b, s + from, i - from);
        dbg_buf_put(b, "\\u0000", 6);
        from = i + 1;
    }
    dbg_buf_put(b, s + from, n - from);
}

void dbg_put_sv(dbg_buf_t *b, const sy_value_t *v)
{
    if (v->type == SY_VALUE_STRING) dbg_put_str(b, v->str, v->len);
}

#define VALUE_MAX_DEPTH 32 /* deeper maps and slices are written as "..." */

const char *dbg_value_type(const sy_value_t *v)
{
    switch (v->type) {
    case SY_VALUE_STRING:
        return "Str";
    case SY_VALUE_BOOL:
        return "Bool";
    case SY_VALUE_INT:
        return "Int";
    case SY_VALUE_DOUBLE:
        return "Double";
    case SY_VALUE_ARRAY:
        return "Slice";
    case SY_VALUE_MAP:
        return "Map";
    case SY_VALUE_BYTES:
        return "Bytes";
    default:
        return "Empty";
    }
}

static void put_base64(dbg_buf_t *b, const uint8_t *d, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (!d) return;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)d[i] << 16;
        if (i + 1 < n) w |= (uint32_t)d[i + 1] << 8;
        if (i + 2 < n) w |= d[i + 2];
        char out[4] = {tab[(w >> 18) & 63], tab[(w >> 12) & 63],
                       i + 1 < n ? tab[(w >> 6) & 63] : '=', i + 2 < n ? tab[w & 63] : '='};
        dbg_buf_put(b, out, 4);
    }
}

/* A JSON string as Go's encoding/json writes it, HTML characters escaped (a NUL
 * byte, as every control byte, as \u00XX). */
static void put_json_string(dbg_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    if (!s) n = 0;
    dbg_buf_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            dbg_buf_put(b, e, 2);
        } else if (c == '\n') {
            dbg_buf_puts(b, "\\n");
        } else if (c == '\r') {
            dbg_buf_puts(b, "\\r");
        } else if (c == '\t') {
            dbg_buf_puts(b, "\\t");
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            dbg_buf_put(b, e, 6);
        } else if (c == 0xe2 && i + 2 < n && p[i + 1] == 0x80 &&
                   (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
            dbg_buf_puts(b, p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
            i += 2;
        } else {
            dbg_buf_put(b, (const char *)p + i, 1);
        }
    }
    dbg_buf_put(b, "\"", 1);
}

typedef struct kv_pair_s {
    sy_value_t key, val;
} kv_pair_t;

/* Keys by bytes, as Go compares strings (a NUL is a byte like any other). */
static int compare_keys(const void *a, const void *b)
{
    const sy_value_t *x = &((const kv_pair_t *)a)->key;
    const sy_value_t *y = &((const kv_pair_t *)b)->key;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->str, y->str, n) : 0;
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static void put_json_value(dbg_buf_t *b, const sy_value_t *v, int depth);

/* A map as Go's encoding/json writes map[string]any: keys sorted by bytes. A key
 * given twice is written twice (pcommon's AsRaw keeps the last; rare enough). */
static void put_json_map(dbg_buf_t *b, const sy_value_t *m, int depth)
{
    size_t cap = m->len;
    if (cap == 0) {
        dbg_buf_puts(b, "{}");
        return;
    }
    kv_pair_t *sorted = malloc(cap * sizeof(*sorted));
    if (!sorted) {
        b->truncated = true;
        return;
    }
    size_t n = 0;
    sy_value_iter_t it = {.value = m};
    sy_value_t k, x;
    while (n < cap && b->api->view_value_next(&it, &k, &x) == 1) {
        if (k.type != SY_VALUE_STRING || !k.str)
            k = (sy_value_t){.type = SY_VALUE_STRING, .str = ""};
        sorted[n++] = (kv_pair_t){k, x};
    }
    qsort(sorted, n, sizeof(*sorted), compare_keys);
    dbg_buf_put(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) dbg_buf_put(b, ",", 1);
        put_json_string(b, sorted[i].key.str, sorted[i].key.len);
        dbg_buf_put(b, ":", 1);
        put_json_value(b, &sorted[i].val, depth + 1);
    }
    dbg_buf_put(b, "}", 1);
    free(sorted);
}

static void put_json_value(dbg_buf_t *b, const sy_value_t *v, int depth)
{
    if (depth > VALUE_MAX_DEPTH) {
        dbg_buf_puts(b, "\"...\"");
        return;
    }
    switch (v->type) {
    case SY_VALUE_STRING:
        put_json_string(b, v->str, v->len);
        break;
    case SY_VALUE_BOOL:
        dbg_buf_puts(b, v->b ? "true" : "false");
        break;
    case SY_VALUE_INT:
        dbg_buf_printf(b, "%lld", (long long)v->i);
        break;
    case SY_VALUE_DOUBLE:
        dbg_put_float_json(b, v->d);
        break;
    case SY_VALUE_ARRAY: {
        dbg_buf_put(b, "[", 1);
        sy_value_iter_t it = {.value = v};
        sy_value_t x;
        for (size_t i = 0; b->api->view_value_next(&it, NULL, &x) == 1; i++) {
            if (i) dbg_buf_put(b, ",", 1);
            put_json_value(b, &x, depth + 1);
        }
        dbg_buf_put(b, "]", 1);
        break;
    }
    case SY_VALUE_MAP:
        put_json_map(b, v, depth);
        break;
    case SY_VALUE_BYTES:
        dbg_buf_put(b, "\"", 1);
        put_base64(b, v->bytes, v->len);
        dbg_buf_put(b, "\"", 1);
        break;
    default:
        dbg_buf_puts(b, "null");
        break;
    }
}

void dbg_put_value_string(dbg_buf_t *b, const sy_value_t *v)
{
    switch (v->type) {
    case SY_VALUE_STRING:
        dbg_put_str(b, v->str, v->len);
        break;
    case SY_VALUE_BOOL:
        dbg_buf_puts(b, v->b ? "true" : "false");
        break;
    case SY_VALUE_INT:
        dbg_buf_printf(b, "%lld", (long long)v->i);
        break;
    case SY_VALUE_DOUBLE:
        dbg_put_float_json(b, v->d);
        break;
    case SY_VALUE_ARRAY:
    case SY_VALUE_MAP:
        put_json_value(b, v, 0);
        break;
    case SY_VALUE_BYTES:
        put_base64(b, v->bytes, v->len);
        break;
    default:
        break;
    }
}

void dbg_put_value(dbg_buf_t *b, const sy_value_t *v)
{
    dbg_buf_puts(b, dbg_value_type(v));
    dbg_buf_put(b, "(", 1);
    dbg_put_value_string(b, v);
    dbg_buf_put(b, ")", 1);
}

/* ------------------------------------------------------------------------ */
/* Enum names as pdata's String() methods spell them                         */
/* ------------------------------------------------------------------------ */

const char *dbg_span_kind(int64_t kind)
{
    static const char *const names[] = {"Unspecified", "Internal", "Server",
                                        "Client",      "Producer", "Consumer"};
    return kind >= 0 && kind < 6 ? names[kind] : "";
}

const char *dbg_status_code(int64_t code)
{
    static const char *const names[] = {"Unset", "Ok", "Error"};
    return code >= 0 && code < 3 ? names[code] : "";
}

const char *dbg_temporality(int64_t t)
{
    static const char *const names[] = {"Unspecified", "Delta", "Cumulative"};
    return t >= 0 && t < 3 ? names[t] : "";
}

/* "Info", "Info2", ... as plog.SeverityNumber.String(); into buf (>= 16 bytes). */
const char *dbg_severity(int64_t n, char *buf, size_t len)
{
    static const char *const names[] = {"Trace", "Debug", "Info", "Warn", "Error", "Fatal"};
    if (n == 0) return "Unspecified";
    if (n < 1 || n > 24) return "";
    int group = (int)(n - 1) / 4, step = (int)(n - 1) % 4;
    if (step == 0)
        snprintf(buf, len, "%s", names[group]);
    else
        snprintf(buf, len, "%s%d", names[group], step + 1);
    return buf;
}

/* ------------------------------------------------------------------------ */
/* The wire                                                                  */
/* ------------------------------------------------------------------------ */

/* Reads a varint; returns the bytes used, 0 when truncated. */
static size_t wire_varint(const uint8_t *p, size_t len, uint64_t *v)
{
    *v = 0;
    for (size_t i = 0; i < len && i < 10; i++) {
        *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) return i + 1;
    }
    return 0;
}

/* Calls fn(arg, value, len) for every length-delimited field `field` of one
 * encoded message, skipping the others. Returns the occurrences, or -1 when the
 * bytes are malformed (the host has validated them, so that does not happen). */
long dbg_wire_each(const uint8_t *p, size_t len, uint32_t field,
                   void (*fn)(void *, const uint8_t *, size_t), void *arg)
{
    long n = 0;
    size_t off = 0;
    while (off < len) {
        uint64_t key, v;
        size_t k = wire_varint(p + off, len - off, &key);
        if (!k) return -1;
        off += k;
        switch (key & 7) {
        case 0:
            if (!(k = wire_varint(p + off, len - off, &v))) return -1;
            off += k;
            break;
        case 1:
            off += 8;
            break;
        case 5:
            off += 4;
            break;
        case 2:
            if (!(k = wire_varint(p + off, len - off, &v)) || v > len - off - k) return -1;
            off += k;
            if ((key >> 3) == field) {
                n++;
                if (fn) fn(arg, p + off, (size_t)v);
            }
            off += (size_t)v;
            break;
        default:
            return -1;
        }
        if (off > len) return -1;
    }
    return n;
}
