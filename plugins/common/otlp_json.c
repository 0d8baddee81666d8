/*
 * otlp_json.c - OTLP/JSON decoding (yajl's event parser filling protobuf-c
 * messages through their descriptors) and encoding (a walk of the descriptors).
 * See otlp_json.h for the rules.
 */
#include "otlp_json.h"
#include "utf8.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>
#include <yajl/yajl_parse.h>

/* The decoder's own memory bound: this much plus SY__JSON_MEM_FACTOR bytes per
 * input byte (an empty span "{}," costs about 75 bytes of structs). */
#define SY__JSON_MEM_BASE   ((size_t)16 << 20)
#define SY__JSON_MEM_FACTOR 32u
/* yajl's own buffers (strings with escapes, its state stack) stay below this much
 * plus the input size. */
#define SY__YAJL_MEM_BASE ((size_t)1 << 20)
/* Longest number, as text, that the decoder converts. */
#define SY__NUM_MAX 64

/* ------------------------------------------------------------------------ */
/* Field helpers shared by both directions                                   */
/* ------------------------------------------------------------------------ */

/* Bytes of one element of a field of type `t` in a protobuf-c struct. */
static size_t type_size(ProtobufCType t)
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
static size_t hex_id_size(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_BYTES) return 0;
    if (strcmp(f->name, "trace_id") == 0) return 16;
    if (strcmp(f->name, "span_id") == 0 || strcmp(f->name, "parent_span_id") == 0) return 8;
    return 0;
}

/* True if `key` is the proto name of the field or its lowerCamelCase JSON name. */
static bool field_name_matches(const char *name, const unsigned char *key, size_t len)
{
    size_t i = 0;
    bool exact = true;
    for (const char *p = name; *p; p++, i++)
        if (i >= len || key[i] != (unsigned char)*p) {
            exact = false;
            break;
        }
    if (exact && i == len) return true;
    i = 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (c == '_' && p[1]) {
            p++;
            c = (p[0] >= 'a' && p[0] <= 'z') ? (char)(p[0] - 'a' + 'A') : p[0];
        }
        if (i >= len || key[i] != (unsigned char)c) return false;
        i++;
    }
    return i == len;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *desc,
                                                  const unsigned char *key, size_t len)
{
    if (len == 0) return NULL;
    /* Both spellings of a name start with the same character: a cheap filter. */
    for (unsigned i = 0; i < desc->n_fields; i++)
        if ((unsigned char)desc->fields[i].name[0] == key[0] &&
            field_name_matches(desc->fields[i].name, key, len))
            return &desc->fields[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Decoding                                                                  */
/* ------------------------------------------------------------------------ */

typedef enum frame_kind_e {
    FRAME_MESSAGE = 1, /* an object being decoded into `msg` */
    FRAME_ARRAY = 2,   /* the array of repeated field `field` of `msg` */
} frame_kind_t;

typedef struct frame_s {
    frame_kind_t kind;
    ProtobufCMessage *msg;
    /* FRAME_MESSAGE: the field whose value comes next (after its key), or NULL.
     * FRAME_ARRAY: the repeated field. */
    const ProtobufCFieldDescriptor *field;
    size_t cap; /* FRAME_ARRAY: elements the current array has room for */
} frame_t;

typedef struct decoder_s {
    ProtobufCAllocator *alloc;
    size_t used, limit; /* bytes taken from alloc, and the bound */
    const ProtobufCMessageDescriptor *root_desc;
    ProtobufCMessage *root;
    frame_t stack[SYC_OTLP_JSON_MAX_DEPTH];
    int depth;       /* frames in use */
    int skip;        /* nesting inside a value that is being ignored */
    bool skip_value; /* the next value belongs to an unknown key */
    yajl_handle yajl;
    char *err;
    size_t err_len;
    bool failed;
} decoder_t;

static int fail(decoder_t *d, const char *fmt, ...) SY_PRINTF(2, 3);
static int fail(decoder_t *d, const char *fmt, ...)
{
    if (d->failed) return 0;
    d->failed = true;
    if (d->err && d->err_len) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(d->err, d->err_len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < d->err_len && d->yajl)
            snprintf(d->err + n, d->err_len - (size_t)n, " (at offset %zu)",
                     yajl_get_bytes_consumed(d->yajl));
    }
    return 0; /* yajl: cancel parsing */
}

/* The JSON name of a field, for messages: written into buf. */
static const char *json_name(const ProtobufCFieldDescriptor *f, char *buf, size_t size)
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

static void *dec_alloc(decoder_t *d, size_t size)
{
    if (size > d->limit - d->used) {
        fail(d, "the decoded request would need more than %zu bytes", d->limit);
        return NULL;
    }
    void *p = d->alloc->alloc(d->alloc->allocator_data, size ? size : 1);
    if (!p) {
        fail(d, "out of memory");
        return NULL;
    }
    d->used += size;
    return p;
}

static ProtobufCMessage *new_message(decoder_t *d, const ProtobufCMessageDescriptor *desc)
{
    ProtobufCMessage *m = dec_alloc(d, desc->sizeof_message);
    if (!m) return NULL;
    if (desc->message_init)
        desc->message_init(m);
    else
        protobuf_c_message_init(desc, m);
    return m;
}

/* Records that a singular field was set: its oneof case or its has_ flag. */
static void mark_present(ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f)
{
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        *(uint32_t *)((char *)msg + f->quantifier_offset) = f->id;
    } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
               f->type != PROTOBUF_C_TYPE_STRING) {
        *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
    }
}

/* Appends one zeroed element to the repeated field of the top array frame and
 * returns where it is. */
static void *array_push(decoder_t *d, frame_t *fr)
{
    const ProtobufCFieldDescriptor *f = fr->field;
    size_t *n = (size_t *)((char *)fr->msg + f->quantifier_offset);
    void **arr = (void **)((char *)fr->msg + f->offset);
    size_t esize = type_size(f->type);
    if (*n >= fr->cap) {
        size_t cap = fr->cap ? fr->cap * 2 : 4;
        if (cap > (SIZE_MAX / 2) / esize) {
            fail(d, "too many elements");
            return NULL;
        }
        void *grown = dec_alloc(d, cap * esize);
        if (!grown) return NULL;
        if (*n) memcpy(grown, *arr, *n * esize);
        *arr = grown;
        fr->cap = cap;
    }
    char *slot = (char *)*arr + *n * esize;
    memset(slot, 0, esize);
    (*n)++;
    return slot;
}

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int b64val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

/* Decodes standard or URL-safe base64, padded or not, into the arena. */
static int decode_base64(decoder_t *d, const unsigned char *s, size_t len, ProtobufCBinaryData *out)
{
    while (len > 0 && s[len - 1] == '=')
        len--;
    if (len % 4 == 1) return -1;
    uint8_t *buf = dec_alloc(d, len / 4 * 3 + 3);
    if (!buf) return -2;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64val(s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = buf;
    out->len = o;
    return 0;
}

/* Copies a JSON number or numeric string into a NUL-terminated buffer. */
static bool num_text(const unsigned char *s, size_t len, char *buf)
{
    if (len == 0 || len >= SY__NUM_MAX) return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return true;
}

static bool parse_double(const char *t, double *out)
{
    if (strcmp(t, "NaN") == 0) {
        *out = NAN;
        return true;
    }
    if (strcmp(t, "Infinity") == 0) {
        *out = INFINITY;
        return true;
    }
    if (strcmp(t, "-Infinity") == 0) {
        *out = -INFINITY;
        return true;
    }
    /* JSON number syntax only: no hex floats, "inf" spellings or blanks. */
    for (const char *p = t; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == '-' || *p == '+' || *p == '.' || *p == 'e' ||
              *p == 'E'))
            return false;
    char *end;
    errno = 0;
    double v = strtod(t, &end);
    if (end == t || *end || (errno == ERANGE && isinf(v))) return false;
    *out = v;
    return true;
}

/* An integer in [min, max] (signed) from its text, also as an integral exponent
 * form ("1e3") as protojson accepts. */
static bool parse_int(const char *t, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    if (*t == '+' || *t == ' ') return false;
    long long v = strtoll(t, &end, 10);
    if (end != t && *end == '\0') {
        if (errno == ERANGE || v < min || v > max) return false;
        *out = v;
        return true;
    }
    double dv;
    if (!parse_double(t, &dv) || !isfinite(dv) || dv != floor(dv) || dv < (double)min ||
        dv >= -(double)INT64_MIN || dv > (double)max)
        return false;
    *out = (int64_t)dv;
    return true;
}

static bool parse_uint(const char *t, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*t == '-' || *t == '+' || *t == ' ') return false;
    unsigned long long v = strtoull(t, &end, 10);
    if (end != t && *end == '\0') {
        if (errno == ERANGE || v > max) return false;
        *out = v;
        return true;
    }
    double dv;
    if (!parse_double(t, &dv) || !isfinite(dv) || dv != floor(dv) || dv < 0 ||
        dv >= 18446744073709551616.0 || dv > (double)max)
        return false;
    *out = (uint64_t)dv;
    return true;
}

typedef enum jkind_e { J_NULL, J_BOOL, J_NUMBER, J_STRING } jkind_t;

static const char *jkind_name(jkind_t k)
{
    switch (k) {
    case J_NULL:
        return "null";
    case J_BOOL:
        return "a boolean";
    case J_NUMBER:
        return "a number";
    case J_STRING:
        return "a string";
    }
    return "?";
}

/*
 * Stores one scalar JSON value into `slot`, the storage of field f (a singular
 * field's member or one element of a repeated field's array). Returns 1 (yajl:
 * continue) or 0 after fail().
 */
static int store_scalar(decoder_t *d, const ProtobufCFieldDescriptor *f, void *slot, jkind_t kind,
                        const unsigned char *s, size_t len, bool bval)
{
    char name[128], t[SY__NUM_MAX];
    int64_t iv;
    uint64_t uv;
    double dv;

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) ||
            !parse_int(t, INT32_MIN, INT32_MAX, &iv))
            goto bad_number;
        *(int32_t *)slot = (int32_t)iv;
        return 1;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) ||
            !parse_uint(t, UINT32_MAX, &uv))
            goto bad_number;
        *(uint32_t *)slot = (uint32_t)uv;
        return 1;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) ||
            !parse_int(t, INT64_MIN, INT64_MAX, &iv))
            goto bad_number;
        *(int64_t *)slot = iv;
        return 1;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) ||
            !parse_uint(t, UINT64_MAX, &uv))
            goto bad_number;
        *(uint64_t *)slot = uv;
        return 1;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) || !parse_double(t, &dv))
            goto bad_number;
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)slot = (float)dv;
        else
            *(double *)slot = dv;
        return 1;
    case PROTOBUF_C_TYPE_BOOL:
        if (kind != J_BOOL) goto bad_type;
        *(protobuf_c_boolean *)slot = bval;
        return 1;
    case PROTOBUF_C_TYPE_ENUM:
        if (kind == J_STRING) {
            if (!num_text(s, len, t)) goto bad_enum;
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, t);
            if (ev) {
                *(int *)slot = ev->value;
                return 1;
            }
        } else if (kind != J_NUMBER) {
            goto bad_type;
        } else if (!num_text(s, len, t)) {
            goto bad_enum;
        }
        /* Open enums: any int32 is kept, as proto3 does. */
        if (!parse_int(t, INT32_MIN, INT32_MAX, &iv)) goto bad_enum;
        *(int *)slot = (int)iv;
        return 1;
    case PROTOBUF_C_TYPE_STRING: {
        if (kind != J_STRING) goto bad_type;
        /* After unescaping: catches what yajl's loose check lets through
         * (overlong forms, encoded surrogates, code points past U+10FFFF). */
        if (!syc_utf8_valid(s, len))
            return fail(d, "field \"%s\": invalid UTF-8: OTLP strings must be valid UTF-8",
                        json_name(f, name, sizeof(name)));
        char *str = dec_alloc(d, len + 1);
        if (!str) return 0;
        memcpy(str, s, len);
        str[len] = '\0';
        *(char **)slot = str;
        return 1;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (kind != J_STRING) goto bad_type;
        ProtobufCBinaryData *bd = slot;
        size_t id_size = hex_id_size(f);
        if (id_size) {
            if (len == 0) { /* an empty ID is "not set" */
                bd->data = NULL;
                bd->len = 0;
                return 1;
            }
            if (len != id_size * 2)
                return fail(d, "field \"%s\": invalid ID: expected %zu hex digits, got %zu",
                            json_name(f, name, sizeof(name)), id_size * 2, len);
            uint8_t *b = dec_alloc(d, id_size);
            if (!b) return 0;
            for (size_t i = 0; i < id_size; i++) {
                int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
                if (hi < 0 || lo < 0)
                    return fail(d, "field \"%s\": invalid ID: \"%.*s\" is not hex",
                                json_name(f, name, sizeof(name)), (int)len, (const char *)s);
                b[i] = (uint8_t)(hi << 4 | lo);
            }
            bd->data = b;
            bd->len = id_size;
            return 1;
        }
        int rc = decode_base64(d, s, len, bd);
        if (rc == -1)
            return fail(d, "field \"%s\": invalid base64", json_name(f, name, sizeof(name)));
        return rc == 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        goto bad_type;
    }
bad_type:
    return fail(d, "field \"%s\": unexpected %s", json_name(f, name, sizeof(name)),
                jkind_name(kind));
bad_number:
    if (kind != J_NUMBER && kind != J_STRING) goto bad_type;
    return fail(d, "field \"%s\": invalid number \"%.*s\"", json_name(f, name, sizeof(name)),
                len > 40 ? 40 : (int)len, (const char *)s);
bad_enum:
    return fail(d, "field \"%s\": invalid enum value \"%.*s\"", json_name(f, name, sizeof(name)),
                len > 40 ? 40 : (int)len, (const char *)s);
}

/* One scalar event from yajl. */
static int on_scalar(decoder_t *d, jkind_t kind, const unsigned char *s, size_t len, bool bval)
{
    char name[128];
    if (d->skip > 0) return 1;
    if (d->skip_value) {
        d->skip_value = false;
        return 1;
    }
    if (d->depth == 0) return fail(d, "expected a JSON object, got %s", jkind_name(kind));
    frame_t *top = &d->stack[d->depth - 1];
    if (top->kind == FRAME_ARRAY) {
        if (kind == J_NULL)
            return fail(d, "field \"%s\": null in an array",
                        json_name(top->field, name, sizeof(name)));
        if (top->field->type == PROTOBUF_C_TYPE_MESSAGE)
            return fail(d, "field \"%s\": expected an object, got %s",
                        json_name(top->field, name, sizeof(name)), jkind_name(kind));
        void *slot = array_push(d, top);
        if (!slot) return 0;
        return store_scalar(d, top->field, slot, kind, s, len, bval);
    }
    const ProtobufCFieldDescriptor *f = top->field;
    top->field = NULL;
    if (!f) return fail(d, "value without a key");
    if (kind == J_NULL) return 1; /* null is the default value */
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return fail(d, "field \"%s\": expected an array, got %s", json_name(f, name, sizeof(name)),
                    jkind_name(kind));
    if (!store_scalar(d, f, (char *)top->msg + f->offset, kind, s, len, bval)) return 0;
    mark_present(top->msg, f);
    return 1;
}

static int cb_null(void *ctx)
{
    return on_scalar(ctx, J_NULL, NULL, 0, false);
}

static int cb_boolean(void *ctx, int b)
{
    return on_scalar(ctx, J_BOOL, NULL, 0, b != 0);
}

static int cb_number(void *ctx, const char *s, size_t len)
{
    return on_scalar(ctx, J_NUMBER, (const unsigned char *)s, len, false);
}

static int cb_string(void *ctx, const unsigned char *s, size_t len)
{
    return on_scalar(ctx, J_STRING, s, len, false);
}

/* Starts ignoring a value if it is one (unknown key, or nested in one). */
static bool skipping_container(decoder_t *d)
{
    if (d->skip > 0 || d->skip_value) {
        d->skip_value = false;
        d->skip++;
        return true;
    }
    return false;
}

static int cb_start_map(void *ctx)
{
    decoder_t *d = ctx;
    char name[128];
    if (d->depth + d->skip >= SYC_OTLP_JSON_MAX_DEPTH)
        return fail(d, "JSON nested deeper than %d levels", SYC_OTLP_JSON_MAX_DEPTH);
    if (skipping_container(d)) return 1;
    ProtobufCMessage *child;
    if (d->depth == 0) {
        if (d->root) return fail(d, "more than one JSON value");
        child = d->root = new_message(d, d->root_desc);
        if (!child) return 0;
    } else {
        frame_t *top = &d->stack[d->depth - 1];
        const ProtobufCFieldDescriptor *f = top->field;
        if (!f) return fail(d, "value without a key");
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            return fail(d, "field \"%s\": unexpected object", json_name(f, name, sizeof(name)));
        if (top->kind == FRAME_MESSAGE && f->label == PROTOBUF_C_LABEL_REPEATED)
            return fail(d, "field \"%s\": expected an array, got an object",
                        json_name(f, name, sizeof(name)));
        child = new_message(d, f->descriptor);
        if (!child) return 0;
        if (top->kind == FRAME_ARRAY) {
            ProtobufCMessage **slot = array_push(d, top);
            if (!slot) return 0;
            *slot = child;
        } else {
            *(ProtobufCMessage **)((char *)top->msg + f->offset) = child;
            mark_present(top->msg, f);
            top->field = NULL;
        }
    }
    d->stack[d->depth++] = (frame_t){FRAME_MESSAGE, child, NULL, 0};
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    decoder_t *d = ctx;
    if (d->skip > 0) return 1;
    frame_t *top = &d->stack[d->depth - 1];
    top->field = find_field(top->msg->descriptor, key, len);
    if (!top->field) d->skip_value = true; /* unknown keys are ignored */
    return 1;
}

static int cb_end_map(void *ctx)
{
    decoder_t *d = ctx;
    if (d->skip > 0) {
        d->skip--;
        return 1;
    }
    d->depth--;
    return 1;
}

static int cb_start_array(void *ctx)
{
    decoder_t *d = ctx;
    char name[128];
    if (d->depth + d->skip >= SYC_OTLP_JSON_MAX_DEPTH)
        return fail(d, "JSON nested deeper than %d levels", SYC_OTLP_JSON_MAX_DEPTH);
    if (skipping_container(d)) return 1;
    if (d->depth == 0) return fail(d, "expected a JSON object, got an array");
    frame_t *top = &d->stack[d->depth - 1];
    const ProtobufCFieldDescriptor *f = top->field;
    if (top->kind == FRAME_ARRAY)
        return fail(d, "field \"%s\": unexpected array in an array",
                    json_name(f, name, sizeof(name)));
    if (!f) return fail(d, "value without a key");
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
        return fail(d, "field \"%s\": unexpected array", json_name(f, name, sizeof(name)));
    top->field = NULL;
    /* A key given twice appends to what the first gave; the first array's room
     * is unknown here, so the next element reallocates. */
    size_t n = *(size_t *)((char *)top->msg + f->quantifier_offset);
    d->stack[d->depth++] = (frame_t){FRAME_ARRAY, top->msg, f, n};
    return 1;
}

static int cb_end_array(void *ctx)
{
    decoder_t *d = ctx;
    if (d->skip > 0) {
        d->skip--;
        return 1;
    }
    d->depth--;
    return 1;
}

static const yajl_callbacks decoder_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

/* yajl's allocator: malloc with a size header so that its use is bounded. */
typedef struct yajl_mem_s {
    size_t used, limit;
} yajl_mem_t;

static void *ymem_malloc(void *ctx, size_t size)
{
    yajl_mem_t *m = ctx;
    if (size > m->limit - m->used || size > SIZE_MAX - 16) return NULL;
    size_t *p = malloc(size + 16);
    if (!p) return NULL;
    p[0] = size;
    m->used += size;
    return (char *)p + 16;
}

static void ymem_free(void *ctx, void *ptr)
{
    yajl_mem_t *m = ctx;
    if (!ptr) return;
    size_t *p = (size_t *)((char *)ptr - 16);
    m->used -= p[0];
    free(p);
}

static void *ymem_realloc(void *ctx, void *ptr, size_t size)
{
    yajl_mem_t *m = ctx;
    if (!ptr) return ymem_malloc(ctx, size);
    size_t *p = (size_t *)((char *)ptr - 16);
    size_t old = p[0];
    if (size > old && (size - old > m->limit - m->used || size > SIZE_MAX - 16)) return NULL;
    size_t *q = realloc(p, size + 16);
    if (!q) return NULL;
    m->used = m->used - old + size;
    q[0] = size;
    return (char *)q + 16;
}

ProtobufCMessage *syc_otlp_json_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *json,
                                       size_t len, ProtobufCAllocator *alloc, char *err,
                                       size_t err_len)
{
    decoder_t d;
    memset(&d, 0, sizeof(d));
    d.alloc = alloc;
    d.root_desc = desc;
    d.limit = len > (SIZE_MAX - SY__JSON_MEM_BASE) / SY__JSON_MEM_FACTOR
                  ? SIZE_MAX
                  : SY__JSON_MEM_BASE + len * SY__JSON_MEM_FACTOR;
    d.err = err;
    d.err_len = err_len;
    if (err && err_len) err[0] = '\0';
    /* yajl turns a lone high surrogate escape into '?', so escapes are checked
     * before it sees them. */
    size_t bad_at;
    if (!syc_json_surrogates_valid(json, len, &bad_at)) {
        fail(&d,
             "invalid UTF-8: unpaired UTF-16 surrogate escape \"%.6s\" (at offset %zu); "
             "OTLP strings must be valid UTF-8",
             (const char *)json + bad_at, bad_at);
        return NULL;
    }

    yajl_mem_t mem = {0, len > SIZE_MAX - SY__YAJL_MEM_BASE ? SIZE_MAX : SY__YAJL_MEM_BASE + len};
    yajl_alloc_funcs funcs = {ymem_malloc, ymem_realloc, ymem_free, &mem};
    d.yajl = yajl_alloc(&decoder_callbacks, &funcs, &d);
    if (!d.yajl) {
        fail(&d, "out of memory");
        return NULL;
    }
    yajl_status st = yajl_parse(d.yajl, json, len);
    if (st == yajl_status_ok) st = yajl_complete_parse(d.yajl);
    if (st != yajl_status_ok && !d.failed) {
        unsigned char *msg = yajl_get_error(d.yajl, 0, json, len);
        size_t at = yajl_get_bytes_consumed(d.yajl);
        yajl_handle h = d.yajl;
        d.yajl = NULL; /* the offset is added here, not by fail() */
        if (msg) {
            /* yajl ends its message with a newline. */
            size_t n = strlen((const char *)msg);
            while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
                n--;
            fail(&d, "invalid JSON: %.*s (at offset %zu)", (int)n, (const char *)msg, at);
            yajl_free_error(h, msg);
        } else {
            fail(&d, "invalid JSON (at offset %zu)", at);
        }
        d.yajl = h;
    }
    if (!d.failed && !d.root) fail(&d, "empty JSON document");
    yajl_free(d.yajl);
    return d.failed ? NULL : d.root;
}

/* ------------------------------------------------------------------------ */
/* Encoding                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct out_s {
    char *data;
    size_t len, cap;
    bool oom;
} out_t;

static bool out_reserve(out_t *o, size_t more)
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

static void put(out_t *o, const void *s, size_t n)
{
    if (!out_reserve(o, n)) return;
    memcpy(o->data + o->len, s, n);
    o->len += n;
}

static void putc_(out_t *o, char c)
{
    put(o, &c, 1);
}

static void putf(out_t *o, const char *fmt, ...) SY_PRINTF(2, 3);
static void putf(out_t *o, const char *fmt, ...)
{
    char buf[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n > 0) put(o, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
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

static void put_string(out_t *o, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    putc_(o, '"');
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        /* Copy plain ASCII in runs. */
        while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
            run++;
        if (run > i) put(o, u + i, run - i);
        i = run;
        if (i >= n) break;
        unsigned char c = u[i];
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(o, e, 2);
            i++;
        } else if (c < 0x20) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            if (c == '\n')
                put(o, "\\n", 2);
            else if (c == '\r')
                put(o, "\\r", 2);
            else if (c == '\t')
                put(o, "\\t", 2);
            else
                put(o, e, 6);
            i++;
        } else {
            size_t k = utf8_seq(u + i, n - i);
            if (k == 0) {
                put(o, "\xef\xbf\xbd", 3); /* U+FFFD for a byte that is not UTF-8 */
                i++;
            } else {
                put(o, u + i, k);
                i += k;
            }
        }
    }
    putc_(o, '"');
}

static void put_key(out_t *o, const ProtobufCFieldDescriptor *f, bool *first)
{
    char name[128];
    if (!*first) putc_(o, ',');
    *first = false;
    json_name(f, name, sizeof(name));
    putc_(o, '"');
    put(o, name, strlen(name));
    put(o, "\":", 2);
}

static void put_double(out_t *o, double v, int max_precision)
{
    if (isnan(v)) {
        put(o, "\"NaN\"", 5);
        return;
    }
    if (isinf(v)) {
        if (v > 0)
            put(o, "\"Infinity\"", 10);
        else
            put(o, "\"-Infinity\"", 11);
        return;
    }
    char buf[40];
    /* The shortest of the usual precisions that reads back to the same value. */
    for (int p = max_precision - 2; p <= max_precision; p++) {
        snprintf(buf, sizeof(buf), "%.*g", p, v);
        if (max_precision == 9 ? (float)strtod(buf, NULL) == (float)v : strtod(buf, NULL) == v)
            break;
    }
    put(o, buf, strlen(buf));
}

static void put_base64(out_t *o, const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    putc_(o, '"');
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
        put(o, q, 4);
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], '=', '='};
        put(o, q, 4);
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], '='};
        put(o, q, 4);
    }
    putc_(o, '"');
}

static bool encode_message(out_t *o, const ProtobufCMessage *m, int depth);

static bool encode_value(out_t *o, const ProtobufCFieldDescriptor *f, const void *slot, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        putf(o, "%" PRId32, *(const int32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_ENUM:
        putf(o, "%d", *(const int *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        putf(o, "%" PRIu32, *(const uint32_t *)slot);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        putf(o, "\"%" PRId64 "\"", *(const int64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        putf(o, "\"%" PRIu64 "\"", *(const uint64_t *)slot);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        put_double(o, *(const float *)slot, 9);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        put_double(o, *(const double *)slot, 17);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (*(const protobuf_c_boolean *)slot)
            put(o, "true", 4);
        else
            put(o, "false", 5);
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        if (s)
            put_string(o, s, strlen(s));
        else
            put(o, "\"\"", 2);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = slot;
        if (hex_id_size(f)) {
            static const char hex[] = "0123456789abcdef";
            putc_(o, '"');
            for (size_t i = 0; i < bd->len; i++) {
                char h[2] = {hex[bd->data[i] >> 4], hex[bd->data[i] & 15]};
                put(o, h, 2);
            }
            putc_(o, '"');
        } else {
            put_base64(o, bd->data, bd->len);
        }
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        if (!sub) {
            put(o, "{}", 2);
            break;
        }
        return encode_message(o, sub, depth + 1);
    }
    }
    return !o->oom;
}

/* True if a proto3 singular field (no presence) holds its default value. */
static bool is_default(const ProtobufCFieldDescriptor *f, const void *slot)
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

static bool encode_message(out_t *o, const ProtobufCMessage *m, int depth)
{
    if (depth >= SYC_OTLP_JSON_MAX_DEPTH) return false;
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    bool first = true;
    putc_(o, '{');
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        const char *base = (const char *)m;
        const void *slot = base + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0) continue;
            const char *arr = *(char *const *)slot;
            size_t esize = type_size(f->type);
            put_key(o, f, &first);
            putc_(o, '[');
            for (size_t k = 0; k < n; k++) {
                if (k) putc_(o, ',');
                if (!encode_value(o, f, arr + k * esize, depth)) return false;
            }
            putc_(o, ']');
            continue;
        }
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
        } else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                   f->type != PROTOBUF_C_TYPE_STRING) {
            if (!*(const protobuf_c_boolean *)(base + f->quantifier_offset)) continue;
        } else if (is_default(f, slot)) {
            continue;
        }
        put_key(o, f, &first);
        if (!encode_value(o, f, slot, depth)) return false;
    }
    putc_(o, '}');
    return !o->oom;
}

char *syc_otlp_json_encode(const ProtobufCMessage *msg, size_t *len)
{
    out_t o = {0};
    if (!encode_message(&o, msg, 0) || !out_reserve(&o, 1)) {
        free(o.data);
        return NULL;
    }
    o.data[o.len] = '\0';
    *len = o.len;
    return o.data;
}
