/*
 * loki_value.c - OTLP values as the loki exporter writes them: as text (pcommon's
 * AsString), as JSON (Go's encoding/json of pcommon's AsRaw: maps with sorted
 * keys, bytes in base64, <, >, & escaped), and escaped runs of bytes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loki_internal.h"

void lk__put_scalar_text(ctx_t *c, syc_buf_t *b, const sy_value_t *v)
{
    char small[64];
    char *buf = small;
    size_t cap = syc_value_as_string_cap(v);
    if (cap > sizeof(small)) {
        buf = malloc(cap);
        if (!buf) {
            c->failed = true;
            return;
        }
    } else {
        cap = sizeof(small);
    }
    const char *s;
    size_t n;
    if (syc_value_as_string(v, buf, cap, &s, &n) == SY_OK) put(c, b, s, n);
    if (buf != small) free(buf);
}

void lk__put_as_string(ctx_t *c, syc_buf_t *b, const sy_value_t *v)
{
    if (v->type == SY_VALUE_ARRAY || v->type == SY_VALUE_MAP)
        lk__put_json_value(c, b, v, 0);
    else
        lk__put_scalar_text(c, b, v);
}

/* The one-letter escapes of Go's encoding/json. */
static const char json_esc[0x60] = {['"'] = '"',  ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r',
                                    ['\t'] = 't', ['\b'] = 'b',  ['\f'] = 'f'};

int lk_json_str(syc_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s;
    if (lk_put(b, "\"", 1) < 0) return SY_ENOMEM;
    size_t start = 0, i = 0;
    while (i < len) {
        uint8_t ch = p[i];
        char esc[8];
        size_t elen = 0, adv = 1;
        if (ch < 0x80) {
            if (ch >= 0x20 && ch != '"' && ch != '\\' && ch != '<' && ch != '>' && ch != '&') {
                i++;
                continue;
            }
            if (ch < sizeof(json_esc) && json_esc[ch]) {
                esc[0] = '\\';
                esc[1] = json_esc[ch];
                elen = 2;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[ch >> 4];
                esc[5] = hex[ch & 15];
                elen = 6;
            }
        } else {
            /* Valid UTF-8 passes, but U+2028/U+2029 (escaped by Go); anything else
             * is one invalid byte, written as U+FFFD. */
            size_t n = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc2 ? 2 : 0;
            bool ok = n && ch < 0xf5 && i + n <= len;
            for (size_t k = 1; ok && k < n; k++)
                ok = (p[i + k] & 0xc0) == 0x80;
            if (ok && n == 3) {
                uint32_t cp =
                    (uint32_t)(ch & 15) << 12 | (uint32_t)(p[i + 1] & 63) << 6 | (p[i + 2] & 63);
                ok = cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff);
                if (ok && (cp == 0x2028 || cp == 0x2029)) {
                    memcpy(esc, cp == 0x2028 ? "\\u2028" : "\\u2029", 6);
                    elen = 6;
                    adv = 3;
                }
            } else if (ok && n == 4) {
                uint32_t cp = (uint32_t)(ch & 7) << 18 | (uint32_t)(p[i + 1] & 63) << 12;
                ok = cp >= 0x10000 && cp <= 0x10ffff;
            }
            if (ok && !elen) {
                i += n;
                continue;
            }
            if (!ok) {
                memcpy(esc, "\\ufffd", 6);
                elen = 6;
            }
        }
        if (lk_put(b, s + start, i - start) < 0 || lk_put(b, esc, elen) < 0) return SY_ENOMEM;
        i += adv;
        start = i;
    }
    if (lk_put(b, s + start, len - start) < 0 || lk_put(b, "\"", 1) < 0) return SY_ENOMEM;
    return SY_OK;
}

void lk__put_json_str(ctx_t *c, syc_buf_t *b, const char *s, size_t len)
{
    if (lk_json_str(b, s, len) < 0) c->failed = true;
}

static int kv_cmp(const void *a, const void *b)
{
    const kv_t *x = a, *y = b;
    size_t n = x->k.len < y->k.len ? x->k.len : y->k.len;
    int r = n ? memcmp(x->k.str, y->k.str, n) : 0;
    if (r) return r;
    if (x->k.len != y->k.len) return x->k.len < y->k.len ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* Writes entries as a JSON object with sorted keys (Go's map order); of a key
 * given twice the last one. */
void lk__put_json_object(ctx_t *c, syc_buf_t *b, kv_t *kv, size_t n, int depth)
{
    if (n > 1) qsort(kv, n, sizeof(*kv), kv_cmp);
    put(c, b, "{", 1);
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n && kv[i + 1].k.len == kv[i].k.len &&
            (!kv[i].k.len || !memcmp(kv[i + 1].k.str, kv[i].k.str, kv[i].k.len)))
            continue;
        if (!first) put(c, b, ",", 1);
        first = false;
        lk__put_json_str(c, b, kv[i].k.str, kv[i].k.len);
        put(c, b, ":", 1);
        lk__put_json_value(c, b, &kv[i].v, depth + 1);
    }
    put(c, b, "}", 1);
}

/* A value as Go's json.Marshal writes pcommon's AsRaw(): maps with sorted keys,
 * bytes in base64, doubles as Go writes them (NaN and the infinities, which Go
 * refuses, as null). */
void lk__put_json_value(ctx_t *c, syc_buf_t *b, const sy_value_t *v, int depth)
{
    switch (v->type) {
    case SY_VALUE_STRING:
        lk__put_json_str(c, b, v->str, v->len);
        return;
    case SY_VALUE_BYTES:
        put(c, b, "\"", 1);
        lk__put_scalar_text(c, b, v);
        put(c, b, "\"", 1);
        return;
    case SY_VALUE_DOUBLE:
        if (isnan(v->d) || isinf(v->d)) {
            puts_(c, b, "null");
            return;
        }
        lk__put_scalar_text(c, b, v);
        return;
    case SY_VALUE_INT:
    case SY_VALUE_BOOL:
        lk__put_scalar_text(c, b, v);
        return;
    case SY_VALUE_ARRAY:
    case SY_VALUE_MAP:
        break;
    default:
        puts_(c, b, "null");
        return;
    }
    if (depth > MAX_DEPTH) {
        puts_(c, b, "null");
        return;
    }
    sy_value_iter_t it = {.value = v};
    sy_value_t k, x;
    if (v->type == SY_VALUE_ARRAY) {
        put(c, b, "[", 1);
        for (size_t i = 0; c->api->view_value_next(&it, &k, &x) == 1; i++) {
            if (i) put(c, b, ",", 1);
            lk__put_json_value(c, b, &x, depth + 1);
        }
        put(c, b, "]", 1);
        return;
    }
    kv_t *kv = v->len ? calloc(v->len, sizeof(*kv)) : NULL;
    size_t n = 0;
    if (v->len && !kv) {
        c->failed = true;
        return;
    }
    while (n < v->len && c->api->view_value_next(&it, &k, &x) == 1) {
        kv[n] = (kv_t){k, x, n};
        n++;
    }
    lk__put_json_object(c, b, kv, n, depth);
    free(kv);
}

const char lk__hex_digits[] = "0123456789abcdef";

/* s[0, len) with each byte that `esc` escapes replaced, in runs. */
void lk__put_escaped(ctx_t *c, syc_buf_t *b, const char *s, size_t len, escape_fn esc)
{
    size_t start = 0;
    char e[6];
    for (size_t i = 0; i < len; i++) {
        size_t n = esc((unsigned char)s[i], e);
        if (!n) continue;
        put(c, b, s + start, i - start);
        put(c, b, e, n);
        start = i + 1;
    }
    put(c, b, s + start, len - start);
}
