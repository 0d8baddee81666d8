/*
 * otlp_json_ref.h - the struct-based OTLP/JSON encoder that Switchyard used before
 * the wire-based one (plugins/common/otlp_json_encode.c), kept as the reference
 * the differential tests compare against: for protobuf-c structs without NUL
 * bytes in strings, syc_otlp_json_from_wire(pack(m)) must equal
 * ref_otlp_json_encode(m) byte for byte. Test code only (static functions).
 */
#ifndef SY_TEST_OTLP_JSON_REF_H
#define SY_TEST_OTLP_JSON_REF_H

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>
#include <switchyard/plugin.h>

#define REF_MAX_DEPTH 64

/* Bytes of one element of a field of type `t` in a protobuf-c struct. */
static size_t ref_type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_FLOAT:
        return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    }
    return 0;
}

/* Bytes expected of an ID field written in hex, or 0 if the field is not one. */
static size_t ref_hex_id_size(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_BYTES) return 0;
    if (strcmp(f->name, "trace_id") == 0) return 16;
    if (strcmp(f->name, "span_id") == 0 || strcmp(f->name, "parent_span_id") == 0) return 8;
    return 0;
}

/* The JSON name of a field, for messages: written into buf. */
static const char *ref_json_name(const ProtobufCFieldDescriptor *f, char *buf, size_t size)
{
    size_t i = 0;
    for (const char *p = f->name; *p && i + 1 < size; p++) {
        if (*p == '_' && p[1]) {
            p++;
            buf[i++] = (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
        } else {
            buf[i++] = *p;
        }
    }
    buf[i] = '\0';
    return buf;
}

typedef struct ref_out_s {
    char *data;
    size_t len, cap;
    bool oom;
} ref_out_t;

static bool ref_out_reserve(ref_out_t *o, size_t more)
{
    if (o->oom) return false;
    if (more <= o->cap - o->len) return true;
    size_t cap = o->cap ? o->cap : 256;
    while (cap - o->len < more) {
        if (cap > SIZE_MAX / 2) {
            o->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(o->data, cap);
    if (!p) {
        o->oom = true;
        return false;
    }
    o->data = p;
    o->cap = cap;
    return true;
}

static void ref_put(ref_out_t *o, const void *s, size_t n)
{
    if (!ref_out_reserve(o, n)) return;
    memcpy(o->data + o->len, s, n);
    o->len += n;
}

static void ref_putc_(ref_out_t *o, char c)
{
    ref_put(o, &c, 1);
}

static void ref_putf(ref_out_t *o, const char *fmt, ...) SY_PRINTF(2, 3);
static void ref_putf(ref_out_t *o, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0) ref_put(o, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t ref_utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((need == 3 && cp < 0x800) || (need == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return need;
}

static void ref_put_string(ref_out_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    ref_putc_(o, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        /* Copy plain ASCII in runs. */
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i) ref_put(o, u + i, run - i);
        i = run;
        if (i >= n) break;
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            ref_put(o, e, 2);
            i++;
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            if (c == '\n')
                ref_put(o, "\\n", 2);
            else if (c == '\r')
                ref_put(o, "\\r", 2);
            else if (c == '\t')
                ref_put(o, "\\t", 2);
            else
                ref_put(o, e, 6);
            i++;
        } else {
            size_t k = ref_utf8_seq(u + i, n - i);
            if (k == 0) {
                ref_put(o, "\xef\xbf\xbd", 3); /* U+FFFD for a byte that is not UTF-8 */
                i++;
            } else {
                ref_put(o, u + i, k);
                i += k;
            }
        }
    }
    ref_putc_(o, '"');
}

static void ref_put_key(ref_out_t *o, const ProtobufCFieldDescriptor *f, bool *first)
{
    char name[128];
    if (!*first) ref_putc_(o, ',');
    *first = false;
    ref_json_name(f, name, sizeof(name));
    ref_putc_(o, '"');
    ref_put(o, name, strlen(name));
    ref_put(o, "\":", 2);
}

static void ref_put_double(ref_out_t *o, double v, int max_precision)
{
    if (isnan(v)) {
        ref_put(o, "\"NaN\"", 5);
        return;
    }
    if (isinf(v)) {
        if (v > 0)
            ref_put(o, "\"Infinity\"", 10);
        else
            ref_put(o, "\"-Infinity\"", 11);
        return;
    }
    char buf[40];
    /* The shortest of the usual precisions that reads back to the same value. */
    for (int p = max_precision - 2; p <= max_precision; p++) {
        snprintf(buf, sizeof(buf), "%.*g", p, v);
        if (max_precision == 9 ? (float)strtod(buf, NULL) == (float)v : strtod(buf, NULL) == v)
            break;
    }
    ref_put(o, buf, strlen(buf));
}

static void ref_put_base64(ref_out_t *o, const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    ref_putc_(o, '"');
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
        ref_put(o, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], '=', '='};
        ref_put(o, q, 4);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], '='};
        ref_put(o, q, 4);
    }
    ref_putc_(o, '"');
}

static bool ref_encode_message(ref_out_t *o, const ProtobufCMessage *m, int depth);

static bool ref_encode_value(ref_out_t *o, const ProtobufCFieldDescriptor *f, const void *slot,
                             int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        ref_putf(o, "%" PRId32, *(const int32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        ref_putf(o, "%d", *(const int *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        ref_putf(o, "%" PRIu32, *(const uint32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        ref_putf(o, "\"%" PRId64 "\"", *(const int64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        ref_putf(o, "\"%" PRIu64 "\"", *(const uint64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        ref_put_double(o, *(const float *)slot, 9);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        ref_put_double(o, *(const double *)slot, 17);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (*(const protobuf_c_boolean *)slot)
            ref_put(o, "true", 4);
        else
            ref_put(o, "false", 5);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        if (s)
            ref_put_string(o, s, strlen(s));
        else
            ref_put(o, "\"\"", 2);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = slot;
        if (ref_hex_id_size(f)) {
            static const char hex[] = "0123456789abcdef";
            ref_putc_(o, '"');
            for (size_t i = 0; i < bd->len; i++) {
                char h[2] = {hex[bd->data[i] >> 4], hex[bd->data[i] & 15]};
                ref_put(o, h, 2);
            }
            ref_putc_(o, '"');
        } else {
            ref_put_base64(o, bd->data, bd->len);
        }
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        if (!sub) {
            ref_put(o, "{}", 2);
            break;
        }
        return ref_encode_message(o, sub, depth + 1);
    }
    }
    return !o->oom;
}

/* True if a proto3 singular field (no presence) holds its default value. */
static bool ref_is_default(const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)slot == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)slot == 0;
    case PROTOBUF_C_TYPE_FLOAT: {
        float v = *(const float *)slot;
        return v == 0 && !signbit(v);
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double v = *(const double *)slot;
        return v == 0 && !signbit(v);
    }
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)slot;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)slot)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(ProtobufCMessage *const *)slot == NULL;
    }
    return true;
}

static bool ref_encode_message(ref_out_t *o, const ProtobufCMessage *m, int depth)
{
    if (depth >= REF_MAX_DEPTH) return false;
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    bool first = true;
    ref_putc_(o, '{');
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        const char *base = (const char *)m;
        const void *slot = base + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0) continue;
            const char *arr = *(char *const *)slot;
            size_t esize = ref_type_size(f->type);
            ref_put_key(o, f, &first);
            ref_putc_(o, '[');
            for (size_t k = 0; k < n; k++) {
                if (k) ref_putc_(o, ',');
                if (!ref_encode_value(o, f, arr + k * esize, depth)) return false;
            }
            ref_putc_(o, ']');
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                   f->type != PROTOBUF_C_TYPE_STRING) {
            if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset)) continue;
        } else if (ref_is_default(f, slot)) {
            continue;
        }
        ref_put_key(o, f, &first);
        if (!ref_encode_value(o, f, slot, depth)) return false;
    }
    ref_putc_(o, '}');
    return !o->oom;
}

static char *ref_otlp_json_encode(const ProtobufCMessage *msg, size_t *len)
{
    ref_out_t o = {0};
    if (!ref_encode_message(&o, msg, 0) || !ref_out_reserve(&o, 1)) {
        free(o.data);
        return NULL;
    }
    o.data[o.len] = '\0';
    *len = o.len;
    return o.data;
}

#endif
