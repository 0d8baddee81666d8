/*
 * sampling.c - thresholds, randomness and the tracestate of OpenTelemetry
 * consistent probability sampling ("TraceState: Probability Sampling" of the
 * OpenTelemetry specification, and the collector's pkg/sampling, whose decisions
 * the probabilistic_sampler must repeat exactly).
 *
 * A threshold T and a randomness R are 56-bit numbers; an item is kept when
 * R >= T. T = 2^56 * (1 - p) for probability p, written in `th` as up to 14 hex
 * digits without trailing zeros; R is the trace id's last 7 bytes, or `rv`.
 */
#include "sampling.h"

#include <math.h>
#include <string.h>

const char *ps_err_text(ps_err_t e)
{
    switch (e) {
    case PS_OK:
        return "ok";
    case PS_ERR_SIZE:
        return "invalid tracestate size";
    case PS_ERR_RV_SIZE:
        return "r-value must have 14 hex digits";
    case PS_ERR_TH_SIZE:
        return "t-value exceeds 14 hex digits";
    case PS_ERR_TH_EMPTY:
        return "t-value is empty";
    case PS_ERR_SYNTAX:
    case PS_ERR_HEX:
        break;
    }
    return "invalid syntax";
}

uint32_t ps_fnv_hash(const uint8_t *data, size_t len, uint32_t seed)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 4; i++) {
        h ^= (seed >> (8 * i)) & 0xff;
        h *= 16777619u;
    }
    for (size_t i = 0; i < len; i++) {
        h ^= data[i];
        h *= 16777619u;
    }
    return h;
}

/* The collector's randomnessFromBytes: it keeps the old decision (hash & 0x3fff <
 * percent * 163.84) while looking like a spec randomness: R' = 0x3fff - hashed on
 * top, so that R' >= 0x4000 - scaled exactly when hashed < scaled. */
uint64_t ps_hash_randomness(const uint8_t *data, size_t len, uint32_t seed)
{
    uint32_t h32 = ps_fnv_hash(data, len, seed);
    uint64_t hashed = h32 & 0x3fff;
    uint64_t rprime14 = 0x3fff - hashed;
    uint64_t unused18 = h32 >> 14;
    uint64_t mixed28 = unused18 ^ (unused18 << 10);
    return (rprime14 << 42) | (mixed28 << 14) | hashed;
}

uint64_t ps_trace_id_randomness(const uint8_t id[16])
{
    uint64_t r = 0;
    for (int i = 9; i < 16; i++)
        r = r << 8 | id[i];
    return r;
}

int ps_probability_to_threshold(double fraction, int precision, uint64_t *out)
{
    if (precision == 0) precision = PS_HEX_DIGITS;
    if (!(fraction >= 1.0 / (double)PS_MAX_ADJUSTED_COUNT && fraction <= 1)) {
        *out = PS_ALWAYS_THRESHOLD;
        return -1;
    }
    if (fraction == 1) {
        *out = PS_ALWAYS_THRESHOLD;
        return 0;
    }
    /* More digits near either extreme: one per leading hex 0 (or f). C and Go
     * both truncate integer division towards zero. */
    int exp_f, exp_r;
    (void)frexp(fraction, &exp_f);
    (void)frexp(1 - fraction, &exp_r);
    int a = precision + exp_f / -4, b = precision + exp_r / -4;
    precision = a > b ? a : b;
    if (precision > PS_HEX_DIGITS) precision = PS_HEX_DIGITS;

    uint64_t scaled = (uint64_t)round(fraction * (double)PS_MAX_ADJUSTED_COUNT);
    uint64_t th = PS_MAX_ADJUSTED_COUNT - scaled;
    int shift = 4 * (PS_HEX_DIGITS - precision);
    if (shift != 0) {
        th += UINT64_C(1) << (shift - 1);
        th >>= shift;
        th <<= shift;
    }
    *out = th;
    return 0;
}

double ps_threshold_probability(uint64_t th)
{
    return (double)(PS_MAX_ADJUSTED_COUNT - th) / (double)PS_MAX_ADJUSTED_COUNT;
}

static const char hexdig[] = "0123456789abcdef";

void ps_randomness_rvalue(uint64_t rnd, char *buf)
{
    for (int i = PS_HEX_DIGITS - 1; i >= 0; i--) {
        buf[i] = hexdig[rnd & 0xf];
        rnd >>= 4;
    }
    buf[PS_HEX_DIGITS] = '\0';
}

size_t ps_threshold_tvalue(uint64_t th, char *buf)
{
    if (th == PS_ALWAYS_THRESHOLD) {
        memcpy(buf, "0", 2);
        return 1;
    }
    if (th >= PS_MAX_ADJUSTED_COUNT) {
        buf[0] = '\0';
        return 0;
    }
    ps_randomness_rvalue(th, buf);
    size_t n = PS_HEX_DIGITS;
    while (n > 0 && buf[n - 1] == '0')
        n--;
    buf[n] = '\0';
    return n;
}

/* strconv.ParseUint(s, 16, 64) of at most 14 digits: either case. */
static ps_err_t parse_hex(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return PS_ERR_HEX;
        v = v << 4 | d;
    }
    *out = v;
    return PS_OK;
}

ps_err_t ps_parse_tvalue(const char *s, size_t len, uint64_t *out)
{
    if (len > PS_HEX_DIGITS) return PS_ERR_TH_SIZE;
    if (len == 0) return PS_ERR_TH_EMPTY;
    uint64_t v;
    ps_err_t e = parse_hex(s, len, &v);
    if (e) return e;
    *out = v << (4 * (PS_HEX_DIGITS - len));
    return PS_OK;
}

ps_err_t ps_parse_rvalue(const char *s, size_t len, uint64_t *out)
{
    if (len != PS_HEX_DIGITS) return PS_ERR_RV_SIZE;
    return parse_hex(s, len, out);
}

/* ---- the tracestate ------------------------------------------------------- */

static bool lc_alpha(char c)
{
    return c >= 'a' && c <= 'z';
}
static bool lc_alnum(char c)
{
    return lc_alpha(c) || (c >= '0' && c <= '9');
}
static bool key_char(char c)
{
    return lc_alnum(c) || c == '_' || c == '-' || c == '*' || c == '/';
}
static bool nonblank_char(char c)
{
    return (c >= 0x21 && c <= 0x2b) || (c >= 0x2d && c <= 0x3c) || (c >= 0x3e && c <= 0x7e);
}
static bool ot_value_char(char c)
{
    return lc_alnum(c) || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-';
}

static ps_str_t trim_ows(ps_str_t s)
{
    while (s.len && (s.p[0] == ' ' || s.p[0] == '\t'))
        s.p++, s.len--;
    while (s.len && (s.p[s.len - 1] == ' ' || s.p[s.len - 1] == '\t'))
        s.len--;
    return s;
}

static const char *find(const char *p, size_t len, char c)
{
    return len ? memchr(p, c, len) : NULL;
}

/* Cuts the next member off *rest at sep. */
static ps_str_t next_member(ps_str_t *rest, char sep)
{
    const char *at = find(rest->p, rest->len, sep);
    ps_str_t m = {rest->p, at ? (size_t)(at - rest->p) : rest->len};
    if (at) {
        rest->len -= m.len + 1;
        rest->p = at + 1;
    } else {
        rest->p += rest->len;
        rest->len = 0;
    }
    return m;
}

static bool valid_key_chars(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!key_char(p[i])) return false;
    return true;
}

static bool valid_w3c_key(ps_str_t k)
{
    const char *at = find(k.p, k.len, '@');
    if (at) {
        size_t tl = (size_t)(at - k.p), sl = k.len - tl - 1;
        if (tl == 0 || sl == 0 || !lc_alnum(k.p[0]) || !lc_alpha(at[1])) return false;
        return valid_key_chars(k.p + 1, tl - 1) && valid_key_chars(at + 2, sl - 1);
    }
    return k.len && lc_alpha(k.p[0]) && valid_key_chars(k.p + 1, k.len - 1);
}

static bool valid_w3c_value(ps_str_t v)
{
    if (v.len == 0 || v.len > 256 || !nonblank_char(v.p[v.len - 1])) return false;
    for (size_t i = 0; i + 1 < v.len; i++)
        if (v.p[i] != ' ' && !nonblank_char(v.p[i])) return false;
    return true;
}

/* isValidW3CTraceState */
static bool valid_w3c(ps_str_t in)
{
    while (in.len) {
        ps_str_t m = trim_ows(next_member(&in, ','));
        if (m.len == 0) continue;
        const char *eq = find(m.p, m.len, '=');
        if (!eq || eq == m.p) return false;
        ps_str_t k = {m.p, (size_t)(eq - m.p)}, v = {eq + 1, m.len - k.len - 1};
        if (!valid_w3c_key(k) || !valid_w3c_value(v)) return false;
    }
    return true;
}

/* isValidOTelTraceState */
static bool valid_ot(ps_str_t in)
{
    if (in.len == 0 || in.p[in.len - 1] == ';') return false;
    while (in.len) {
        ps_str_t m = next_member(&in, ';');
        const char *colon = find(m.p, m.len, ':');
        if (!colon || colon == m.p || !lc_alpha(m.p[0])) return false;
        for (const char *c = m.p + 1; c < colon; c++)
            if (!lc_alnum(*c)) return false;
        for (const char *c = colon + 1; c < m.p + m.len; c++)
            if (!ot_value_char(*c)) return false;
    }
    return true;
}

static void keep_first(ps_err_t *err, ps_err_t e)
{
    if (*err == PS_OK) *err = e;
}

/* NewOpenTelemetryTraceState: replaces the ot part of ts. */
static ps_err_t parse_ot(ps_tracestate_t *ts, ps_str_t in)
{
    ts->rvalue = (ps_str_t){0};
    ts->tvalue = (ps_str_t){0};
    ts->rnd = 0;
    ts->threshold = PS_ALWAYS_THRESHOLD;
    ts->n_ot = 0;
    if (in.len > 256) return PS_ERR_SIZE;
    if (!valid_ot(in)) return PS_ERR_SYNTAX;
    ps_err_t err = PS_OK;
    while (in.len) {
        ps_str_t m = next_member(&in, ';');
        const char *colon = find(m.p, m.len, ':');
        ps_str_t k = {m.p, (size_t)(colon - m.p)}, v = {colon + 1, m.len - k.len - 1};
        if (k.len == 2 && !memcmp(k.p, "rv", 2)) {
            ps_err_t e = ps_parse_rvalue(v.p, v.len, &ts->rnd);
            ts->rvalue = e ? (ps_str_t){0} : v;
            if (e) ts->rnd = 0, keep_first(&err, e);
        } else if (k.len == 2 && !memcmp(k.p, "th", 2)) {
            ps_err_t e = ps_parse_tvalue(v.p, v.len, &ts->threshold);
            ts->tvalue = e ? (ps_str_t){0} : v;
            if (e) ts->threshold = PS_ALWAYS_THRESHOLD, keep_first(&err, e);
        } else if (ts->n_ot < PS_MAX_OT_MEMBERS) {
            ts->ot[ts->n_ot++] = (ps_kv_t){k, v};
        }
    }
    return err;
}

ps_err_t ps_tracestate_parse(ps_tracestate_t *ts, const char *s, size_t len)
{
    ts->rvalue = ts->tvalue = (ps_str_t){0};
    ts->rnd = 0;
    ts->threshold = PS_ALWAYS_THRESHOLD;
    ts->n_ot = ts->n_w3c = 0;
    ps_str_t in = {s, len};
    if (len == 0) return PS_OK;
    if (len > 1024) return PS_ERR_SIZE;
    if (!valid_w3c(in)) return PS_ERR_SYNTAX;
    ps_err_t err = PS_OK;
    size_t items = 0;
    while (in.len) {
        /* The collector counts empty members too, and refuses the 32nd. */
        if (++items >= PS_MAX_W3C_MEMBERS) {
            keep_first(&err, PS_ERR_SIZE);
            return err;
        }
        ps_str_t m = trim_ows(next_member(&in, ','));
        if (m.len == 0) continue;
        const char *eq = find(m.p, m.len, '=');
        ps_str_t k = {m.p, (size_t)(eq - m.p)}, v = {eq + 1, m.len - k.len - 1};
        if (k.len > 256) {
            keep_first(&err, PS_ERR_SIZE);
            continue;
        }
        const char *at = find(k.p, k.len, '@');
        if (at && ((size_t)(at - k.p) > 241 || k.len - (size_t)(at - k.p) - 1 > 14)) {
            keep_first(&err, PS_ERR_SIZE);
            continue;
        }
        if (k.len == 2 && !memcmp(k.p, "ot", 2)) {
            ps_err_t e = parse_ot(ts, v);
            if (e) keep_first(&err, e);
        } else {
            ts->w3c[ts->n_w3c++] = (ps_kv_t){k, v};
        }
    }
    return err;
}

bool ps_tracestate_has_rv(const ps_tracestate_t *ts)
{
    return ts->rvalue.len != 0;
}
bool ps_tracestate_has_th(const ps_tracestate_t *ts)
{
    return ts->tvalue.len != 0;
}

void ps_tracestate_set_rv(ps_tracestate_t *ts, uint64_t rnd)
{
    ts->rnd = rnd;
    ps_randomness_rvalue(rnd, ts->rbuf);
    ts->rvalue = (ps_str_t){ts->rbuf, PS_HEX_DIGITS};
}

void ps_tracestate_clear_th(ps_tracestate_t *ts)
{
    ts->tvalue = (ps_str_t){0};
    ts->threshold = PS_ALWAYS_THRESHOLD;
}

int ps_tracestate_update_th(ps_tracestate_t *ts, uint64_t th)
{
    if (ts->tvalue.len && ts->threshold > th) return -1;
    ts->threshold = th;
    ts->tvalue = (ps_str_t){ts->tbuf, ps_threshold_tvalue(th, ts->tbuf)};
    return 0;
}

typedef struct {
    char *out;
    size_t cap, len;
    bool overflow;
} wbuf_t;

static void put(wbuf_t *w, const char *p, size_t n)
{
    if (w->len + n > w->cap) {
        w->overflow = true;
        return;
    }
    memcpy(w->out + w->len, p, n);
    w->len += n;
}

static void put_kv(wbuf_t *w, size_t *count, char sep, const char *k, size_t kl, char eq,
                   ps_str_t v)
{
    if ((*count)++) put(w, &sep, 1);
    put(w, k, kl);
    put(w, &eq, 1);
    put(w, v.p, v.len);
}

size_t ps_tracestate_serialize(const ps_tracestate_t *ts, char *out, size_t cap)
{
    wbuf_t w = {out, cap, 0, false};
    size_t n = 0, m = 0;
    if (ts->rvalue.len || ts->tvalue.len || ts->n_ot) {
        put(&w, "ot=", 3);
        n = 1;
        if (ts->rvalue.len) put_kv(&w, &m, ';', "rv", 2, ':', ts->rvalue);
        if (ts->tvalue.len) put_kv(&w, &m, ';', "th", 2, ':', ts->tvalue);
        for (size_t i = 0; i < ts->n_ot; i++)
            put_kv(&w, &m, ';', ts->ot[i].key.p, ts->ot[i].key.len, ':', ts->ot[i].value);
    }
    for (size_t i = 0; i < ts->n_w3c; i++)
        put_kv(&w, &n, ',', ts->w3c[i].key.p, ts->w3c[i].key.len, '=', ts->w3c[i].value);
    return w.overflow ? 0 : w.len;
}
