/*
 * otlp_json_decode.c - OTLP/JSON to encoded protobuf, written as yajl's event
 * parser reads the document: no protobuf-c structs in between, so a string keeps
 * its full length (a "\u0000" in it stays a NUL byte) and the result goes on as
 * the bytes of a protobuf request would (validated and counted by the host).
 *
 * The bytes are what protobuf-c's pack would write for the message the JSON
 * describes, when each key occurs once: fields in the order the document gives
 * them (descriptor order for our own encoder's output), repeated scalars packed
 * when the descriptor says so, fields without presence left out at their
 * default value. A key given twice: a scalar's later value wins (a later
 * default is then written explicitly, so that it does override), a repeated
 * field's arrays append, and a message field's later object replaces the
 * earlier one whole, as the struct decoder this replaced had it (its bytes are
 * taken out of the body: see sub_remove; protojson refuses duplicate keys).
 *
 * Length prefixes: a nested message's length is known only at its closing
 * brace, and the varint that holds it takes 1 to 5 bytes. The content is
 * therefore written without prefixes into one growing buffer, and each nested
 * message (and packed array) records a "splice": where its prefix goes and,
 * once closed, its length, which counts the prefixes of the messages inside it
 * (each frame adds them up as its children close). Splices are recorded in
 * order of position. At the end one pass copies the content between splices
 * and writes each prefix: one copy of the request, no second parse, no
 * memmove per nesting level, and varints of minimal size as pack writes them.
 */
#include "otlp_json.h"
#include "otlp_json_map.h"
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
 * input byte (the encoded request, the splices and their bookkeeping). */
#define SY__JSON_MEM_BASE   ((size_t)16 << 20)
#define SY__JSON_MEM_FACTOR 32u
/* yajl's own buffers (strings with escapes, its state stack) stay below this much
 * plus the input size. */
#define SY__YAJL_MEM_BASE ((size_t)1 << 20)
/* Longest number, as text, that the decoder converts. */
#define SY__NUM_MAX 64
/* A frame without a length prefix of its own (the root, an unpacked array). */
#define NO_SPLICE SIZE_MAX

typedef enum frame_kind_e {
    FRAME_MESSAGE = 1, /* an object being encoded as a message of type `desc` */
    FRAME_ARRAY = 2,   /* the array of repeated field `field` */
} frame_kind_t;

/* Where a singular message field of a message lies in the body, so that the
 * same key given again can take its place (the later object wins whole, as
 * the struct decoder had it: two occurrences on the wire would be merged, and
 * protobuf-c 1.4 fails to merge two occurrences of a message whose oneof is
 * unset). */
typedef struct sub_s {
    const ProtobufCFieldDescriptor *field;
    size_t tag_at, end;      /* its bytes in the body, tag included */
    size_t sp_first, sp_end; /* its splices */
    size_t prefix_bytes;     /* what it added to the parent's extra */
} sub_t;

/* Singular message fields remembered per message: OTLP messages have at most
 * three (a span's status; a record's body; a metric's data). */
#define SUBS_MAX 6

typedef struct frame_s {
    frame_kind_t kind;
    const ProtobufCMessageDescriptor *desc; /* FRAME_MESSAGE */
    /* FRAME_MESSAGE: the field whose value comes next (after its key), or NULL.
     * FRAME_ARRAY: the repeated field. */
    const ProtobufCFieldDescriptor *field;
    bool packed;    /* FRAME_ARRAY: elements go into one length-delimited run */
    size_t start;   /* where the content begins in the body */
    size_t tag_at;  /* where its tag begins (a packed run's is taken back if empty) */
    size_t splice;  /* the splice of its length prefix, or NO_SPLICE */
    size_t extra;   /* bytes of the length prefixes inside it */
    uint64_t wrote; /* FRAME_MESSAGE: singular fields written (bit per field index) */
    /* A singular message field's own frame: its field (NULL otherwise). */
    const ProtobufCFieldDescriptor *self;
    sub_t subs[SUBS_MAX]; /* FRAME_MESSAGE: its singular message fields so far */
    unsigned nsubs;
} frame_t;

/* Where a length prefix goes in the body, and the length it holds. */
typedef struct splice_s {
    size_t at, len;
} splice_t;

typedef struct decoder_s {
    uint8_t *body; /* the request without its length prefixes */
    size_t len, cap;
    splice_t *splices;
    size_t nsplices, splice_cap;
    size_t used, limit; /* bytes held in body and splices, and the bound */
    size_t root_extra;  /* prefix bytes in the whole request, once the root closed */
    const ProtobufCMessageDescriptor *root_desc;
    bool root_seen;
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

static const char *json_name(const ProtobufCFieldDescriptor *f, char *buf, size_t size)
{
    return syc__json_name(f, buf, size);
}

/* ------------------------------------------------------------------------ */
/* Writing the body                                                          */
/* ------------------------------------------------------------------------ */

/* Grows *buf (of *cap elements of esize bytes) to hold `need`, within the bound. */
static bool grow(decoder_t *d, void **buf, size_t *cap, size_t esize, size_t need)
{
    if (need <= *cap) return true;
    size_t ncap = *cap ? *cap : 256;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 4 / esize) goto too_big;
        ncap *= 2;
    }
    size_t more = (ncap - *cap) * esize;
    if (more > d->limit - d->used) goto too_big;
    void *p = realloc(*buf, ncap * esize);
    if (!p) {
        fail(d, "out of memory");
        return false;
    }
    *buf = p;
    *cap = ncap;
    d->used += more;
    return true;
too_big:
    fail(d, "the decoded request would need more than %zu bytes", d->limit);
    return false;
}

static uint8_t *body_grow(decoder_t *d, size_t n);

/* Room for n more bytes of body; a pointer to them, or NULL after fail(). */
static inline uint8_t *body_room(decoder_t *d, size_t n)
{
    if (n <= d->cap - d->len) return d->body + d->len;
    return body_grow(d, n);
}

static uint8_t *body_grow(decoder_t *d, size_t n)
{
    if (n > SIZE_MAX - d->len) {
        fail(d, "the decoded request would need more than %zu bytes", d->limit);
        return NULL;
    }
    if (!grow(d, (void **)&d->body, &d->cap, 1, d->len + n)) return NULL;
    return d->body + d->len;
}

static bool put_varint(decoder_t *d, uint64_t v)
{
    uint8_t *p = body_room(d, 10);
    if (!p) return false;
    d->len += syc__varint_put(p, v);
    return true;
}

static bool put_tag(decoder_t *d, const ProtobufCFieldDescriptor *f, int wt)
{
    return put_varint(d, (uint64_t)f->id << 3 | (unsigned)wt);
}

static bool put_fixed(decoder_t *d, uint64_t v, size_t n)
{
    uint8_t *p = body_room(d, n);
    if (!p) return false;
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    d->len += n;
    return true;
}

/* Records where the length prefix of a frame that starts now goes. */
static bool splice_open(decoder_t *d, frame_t *fr)
{
    if (!grow(d, (void **)&d->splices, &d->splice_cap, sizeof(splice_t), d->nsplices + 1))
        return false;
    fr->splice = d->nsplices;
    d->splices[d->nsplices++] = (splice_t){d->len, 0};
    fr->start = d->len;
    return true;
}

/* Pops the top frame: fixes its length and hands the prefix bytes inside it,
 * and its own, to the frame around it. */
static void frame_close(decoder_t *d)
{
    frame_t *fr = &d->stack[--d->depth];
    size_t extra = fr->extra;
    if (fr->packed && d->len == fr->start) { /* an empty packed run: not written */
        d->len = fr->tag_at;
        d->nsplices--;
        return;
    }
    if (fr->splice != NO_SPLICE) {
        size_t len = d->len - fr->start + fr->extra;
        d->splices[fr->splice].len = len;
        extra += syc__varint_size(len);
    }
    if (d->depth == 0) {
        d->root_extra = extra;
        return;
    }
    frame_t *parent = &d->stack[d->depth - 1];
    parent->extra += extra;
    if (fr->self && parent->nsubs < SUBS_MAX)
        parent->subs[parent->nsubs++] =
            (sub_t){fr->self, fr->tag_at, d->len, fr->splice, d->nsplices, extra};
}

/* Takes out of the body the earlier object of singular message field f of the
 * message in frame fr (the top frame), before the same key's new object.
 * Returns false after fail() if it cannot (not remembered). */
static bool sub_remove(decoder_t *d, frame_t *fr, const ProtobufCFieldDescriptor *f)
{
    char name[SYC__JSON_NAME_MAX];
    unsigned k = 0;
    while (k < fr->nsubs && fr->subs[k].field != f)
        k++;
    if (k == fr->nsubs) {
        fail(d, "field \"%s\": given twice", json_name(f, name, sizeof(name)));
        return false;
    }
    sub_t sub = fr->subs[k];
    size_t bytes = sub.end - sub.tag_at, nsp = sub.sp_end - sub.sp_first;
    memmove(d->body + sub.tag_at, d->body + sub.end, d->len - sub.end);
    d->len -= bytes;
    memmove(d->splices + sub.sp_first, d->splices + sub.sp_end,
            (d->nsplices - sub.sp_end) * sizeof(splice_t));
    d->nsplices -= nsp;
    for (size_t i = sub.sp_first; i < d->nsplices; i++)
        d->splices[i].at -= bytes;
    fr->extra -= sub.prefix_bytes;
    fr->subs[k] = fr->subs[--fr->nsubs];
    for (unsigned i = 0; i < fr->nsubs; i++)
        if (fr->subs[i].tag_at > sub.tag_at) {
            fr->subs[i].tag_at -= bytes;
            fr->subs[i].end -= bytes;
            fr->subs[i].sp_first -= nsp;
            fr->subs[i].sp_end -= nsp;
        }
    return true;
}

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

/* Parsing JSON values */
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

/* How a value is written: a singular field (tag; left out at its default when
 * the field has no presence), an element of an unpacked repeated field (tag), or
 * an element of a packed run (no tag). */
typedef enum put_mode_e { PUT_FIELD, PUT_ELEMENT, PUT_PACKED } put_mode_t;

/* Whether singular field f of the message in frame fr may have been written. */
static bool wrote(const frame_t *fr, const ProtobufCFieldDescriptor *f)
{
    size_t i = (size_t)(f - fr->desc->fields);
    return i >= 64 || (fr->wrote >> i & 1);
}

static void mark_wrote(frame_t *fr, const ProtobufCFieldDescriptor *f)
{
    size_t i = (size_t)(f - fr->desc->fields);
    if (i < 64) fr->wrote |= (uint64_t)1 << i;
}

/* A default value of a field without presence is left out, as pack leaves it
 * out, unless the key came before with another value (the later one wins). */
static bool omitted(const frame_t *fr, const ProtobufCFieldDescriptor *f, put_mode_t mode,
                    bool zero)
{
    return mode == PUT_FIELD && zero && syc__field_implicit(f) && !wrote(fr, f);
}

/* Decoded length of base64 text of `len` characters (padding stripped), or
 * SIZE_MAX if it is not base64. */
static size_t base64_size(const unsigned char *s, size_t len)
{
    if (len % 4 == 1) return SIZE_MAX;
    for (size_t i = 0; i < len; i++)
        if (b64val(s[i]) < 0) return SIZE_MAX;
    return len / 4 * 3 + (len % 4 == 2 ? 1 : len % 4 == 3 ? 2 : 0);
}

static void base64_decode(const unsigned char *s, size_t len, uint8_t *out)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 6) | (uint32_t)b64val(s[i]);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
}

/* A length-delimited value: tag (unless packed, which never holds these),
 * length, bytes. */
static bool put_delimited(decoder_t *d, const ProtobufCFieldDescriptor *f, size_t n, uint8_t **data)
{
    if (!put_tag(d, f, 2) || !put_varint(d, n)) return false;
    if (!(*data = body_room(d, n))) return false;
    d->len += n;
    return true;
}

/*
 * Writes one scalar JSON value of field f (a number, bool, enum, string or
 * bytes field) of the message in frame fr (for PUT_FIELD; the array's frame
 * otherwise). Returns 1 (yajl: continue) or 0 after fail().
 */
static int store_scalar(decoder_t *d, frame_t *fr, const ProtobufCFieldDescriptor *f,
                        put_mode_t mode, jkind_t kind, const unsigned char *s, size_t len,
                        bool bval)
{
    char name[SYC__JSON_NAME_MAX], t[SY__NUM_MAX];
    int64_t iv = 0;
    uint64_t uv = 0;
    double dv = 0;
    int wt = 0;        /* how the value goes on the wire */
    uint64_t v = 0;    /* varint value, or the bits of a fixed-size value */
    bool zero = false; /* the value is the field's default, for pack */

    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) ||
            !parse_int(t, INT32_MIN, INT32_MAX, &iv))
            goto bad_number;
        if (f->type == PROTOBUF_C_TYPE_INT32) {
            v = (uint64_t)iv; /* negative: ten bytes, as int32 is sign-extended */
        } else if (f->type == PROTOBUF_C_TYPE_SINT32) {
            int32_t x = (int32_t)iv;
            v = ((uint32_t)x << 1) ^ (uint32_t)(x < 0 ? -1 : 0);
        } else {
            wt = 5;
            v = (uint32_t)(int32_t)iv;
        }
        zero = iv == 0;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) ||
            !parse_uint(t, UINT32_MAX, &uv))
            goto bad_number;
        wt = f->type == PROTOBUF_C_TYPE_FIXED32 ? 5 : 0;
        v = uv;
        zero = uv == 0;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) ||
            !parse_int(t, INT64_MIN, INT64_MAX, &iv))
            goto bad_number;
        if (f->type == PROTOBUF_C_TYPE_SINT64)
            v = ((uint64_t)iv << 1) ^ (uint64_t)(iv < 0 ? -1 : 0);
        else
            v = (uint64_t)iv;
        wt = f->type == PROTOBUF_C_TYPE_SFIXED64 ? 1 : 0;
        zero = iv == 0;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) ||
            !parse_uint(t, UINT64_MAX, &uv))
            goto bad_number;
        wt = f->type == PROTOBUF_C_TYPE_FIXED64 ? 1 : 0;
        v = uv;
        zero = uv == 0;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE:
        if ((kind != J_NUMBER && kind != J_STRING) || !num_text(s, len, t) || !parse_double(t, &dv))
            goto bad_number;
        if (f->type == PROTOBUF_C_TYPE_FLOAT) {
            float x = (float)dv;
            uint32_t b;
            memcpy(&b, &x, 4);
            wt = 5;
            v = b;
            zero = x == 0; /* pack leaves -0 out too */
        } else {
            wt = 1;
            memcpy(&v, &dv, 8);
            zero = dv == 0;
        }
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (kind != J_BOOL) goto bad_type;
        v = bval;
        zero = !bval;
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumValue *ev = NULL;
        if (kind == J_STRING) {
            if (!num_text(s, len, t)) goto bad_enum;
            ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, t);
        } else if (kind != J_NUMBER) {
            goto bad_type;
        } else if (!num_text(s, len, t)) {
            goto bad_enum;
        }
        if (ev) {
            iv = ev->value;
        } else if (!parse_int(t, INT32_MIN, INT32_MAX, &iv)) {
            /* Open enums: any int32 is kept, as proto3 does. */
            goto bad_enum;
        }
        v = (uint64_t)iv;
        zero = iv == 0;
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (kind != J_STRING) goto bad_type;
        /* After unescaping: catches what yajl's loose check lets through
         * (overlong forms, encoded surrogates, code points past U+10FFFF). */
        if (!syc_utf8_valid(s, len))
            return fail(d, "field \"%s\": invalid UTF-8: OTLP strings must be valid UTF-8",
                        json_name(f, name, sizeof(name)));
        if (omitted(fr, f, mode, len == 0)) return 1;
        uint8_t *p;
        if (!put_delimited(d, f, len, &p)) return 0;
        if (len) memcpy(p, s, len);
        if (mode == PUT_FIELD) mark_wrote(fr, f);
        return 1;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        if (kind != J_STRING) goto bad_type;
        size_t id_size = syc__json_hex_id_size(f);
        uint8_t *p;
        if (id_size) {
            if (len != 0 && len != id_size * 2) /* an empty ID is "not set" */
                return fail(d, "field \"%s\": invalid ID: expected %zu hex digits, got %zu",
                            json_name(f, name, sizeof(name)), id_size * 2, len);
            for (size_t i = 0; i < len; i++)
                if (hexval(s[i]) < 0)
                    return fail(d, "field \"%s\": invalid ID: \"%.*s\" is not hex",
                                json_name(f, name, sizeof(name)), (int)len, (const char *)s);
            if (omitted(fr, f, mode, len == 0)) return 1;
            if (!put_delimited(d, f, len / 2, &p)) return 0;
            for (size_t i = 0; i < len / 2; i++)
                p[i] = (uint8_t)(hexval(s[2 * i]) << 4 | hexval(s[2 * i + 1]));
        } else {
            while (len > 0 && s[len - 1] == '=')
                len--;
            size_t n = base64_size(s, len);
            if (n == SIZE_MAX)
                return fail(d, "field \"%s\": invalid base64", json_name(f, name, sizeof(name)));
            if (omitted(fr, f, mode, n == 0)) return 1;
            if (!put_delimited(d, f, n, &p)) return 0;
            base64_decode(s, len, p);
        }
        if (mode == PUT_FIELD) mark_wrote(fr, f);
        return 1;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        goto bad_type;
    }
    if (omitted(fr, f, mode, zero)) return 1;
    if (mode != PUT_PACKED && !put_tag(d, f, wt)) return 0;
    if (!(wt == 0 ? put_varint(d, v) : put_fixed(d, v, wt == 1 ? 8 : 4))) return 0;
    if (mode == PUT_FIELD) mark_wrote(fr, f);
    return 1;
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

/* ------------------------------------------------------------------------ */
/* yajl's events                                                             */
/* ------------------------------------------------------------------------ */

/* One scalar event from yajl. */
static int on_scalar(decoder_t *d, jkind_t kind, const unsigned char *s, size_t len, bool bval)
{
    char name[SYC__JSON_NAME_MAX];
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
        return store_scalar(d, top, top->field, top->packed ? PUT_PACKED : PUT_ELEMENT, kind, s,
                            len, bval);
    }
    const ProtobufCFieldDescriptor *f = top->field;
    top->field = NULL;
    if (!f) return fail(d, "value without a key");
    if (kind == J_NULL) return 1; /* null is the default value */
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return fail(d, "field \"%s\": expected an array, got %s", json_name(f, name, sizeof(name)),
                    jkind_name(kind));
    return store_scalar(d, top, f, PUT_FIELD, kind, s, len, bval);
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

/* The next frame, its bookkeeping cleared (not its sub records, which nsubs
 * says are empty: a frame is pushed per object, and clearing them all would
 * cost more than the object). */
static frame_t *frame_next(decoder_t *d, frame_kind_t kind)
{
    frame_t *fr = &d->stack[d->depth];
    fr->kind = kind;
    fr->desc = NULL;
    fr->field = NULL;
    fr->packed = false;
    fr->start = fr->tag_at = 0;
    fr->splice = NO_SPLICE;
    fr->extra = 0;
    fr->wrote = 0;
    fr->self = NULL;
    fr->nsubs = 0;
    return fr;
}

static int cb_start_map(void *ctx)
{
    decoder_t *d = ctx;
    char name[SYC__JSON_NAME_MAX];
    if (d->depth + d->skip >= SYC_OTLP_JSON_MAX_DEPTH)
        return fail(d, "JSON nested deeper than %d levels", SYC_OTLP_JSON_MAX_DEPTH);
    if (skipping_container(d)) return 1;
    frame_t *fr = frame_next(d, FRAME_MESSAGE);
    if (d->depth == 0) {
        if (d->root_seen) return fail(d, "more than one JSON value");
        d->root_seen = true;
        fr->desc = d->root_desc;
    } else {
        frame_t *top = &d->stack[d->depth - 1];
        const ProtobufCFieldDescriptor *f = top->field;
        if (!f) return fail(d, "value without a key");
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            return fail(d, "field \"%s\": unexpected object", json_name(f, name, sizeof(name)));
        if (top->kind == FRAME_MESSAGE && f->label == PROTOBUF_C_LABEL_REPEATED)
            return fail(d, "field \"%s\": expected an array, got an object",
                        json_name(f, name, sizeof(name)));
        if (top->kind == FRAME_MESSAGE) {
            size_t i = (size_t)(f - top->desc->fields);
            if (i < 64 && (top->wrote >> i & 1) && !sub_remove(d, top, f)) return 0;
            mark_wrote(top, f);
            top->field = NULL;
            fr->self = f;
        }
        fr->tag_at = d->len;
        if (!put_tag(d, f, 2) || !splice_open(d, fr)) return 0;
        fr->desc = f->descriptor;
    }
    d->depth++;
    return 1;
}

static int cb_map_key(void *ctx, const unsigned char *key, size_t len)
{
    decoder_t *d = ctx;
    if (d->skip > 0) return 1;
    frame_t *top = &d->stack[d->depth - 1];
    top->field = syc__json_find_field(top->desc, key, len);
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
    frame_close(d);
    return 1;
}

static int cb_start_array(void *ctx)
{
    decoder_t *d = ctx;
    char name[SYC__JSON_NAME_MAX];
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
    /* A key given twice appends to what the first gave: protobuf-c reads two
     * runs of one repeated field as one array. */
    frame_t *fr = frame_next(d, FRAME_ARRAY);
    fr->field = f;
    if (syc__field_packable(f) && (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED)) {
        fr->packed = true;
        fr->tag_at = d->len;
        if (!put_tag(d, f, 2) || !splice_open(d, fr)) return 0;
    }
    d->depth++;
    return 1;
}

static int cb_end_array(void *ctx)
{
    decoder_t *d = ctx;
    if (d->skip > 0) {
        d->skip--;
        return 1;
    }
    frame_close(d);
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

/* The request with its length prefixes, from alloc (or malloc). */
static uint8_t *assemble(decoder_t *d, ProtobufCAllocator *alloc, size_t *out_len)
{
    size_t total = d->len + d->root_extra;
    uint8_t *out =
        alloc ? alloc->alloc(alloc->allocator_data, total ? total : 1) : malloc(total ? total : 1);
    if (!out) {
        fail(d, "out of memory");
        return NULL;
    }
    size_t from = 0, w = 0;
    for (size_t i = 0; i < d->nsplices; i++) {
        const splice_t *s = &d->splices[i];
        if (s->at > from) memcpy(out + w, d->body + from, s->at - from);
        w += s->at - from;
        w += syc__varint_put(out + w, s->len);
        from = s->at;
    }
    if (d->len > from) memcpy(out + w, d->body + from, d->len - from);
    w += d->len - from;
    *out_len = w;
    return out;
}

uint8_t *syc_otlp_json_to_wire(const ProtobufCMessageDescriptor *desc, const uint8_t *json,
                               size_t len, ProtobufCAllocator *alloc, size_t *wire_len, char *err,
                               size_t err_len)
{
    decoder_t d;
    memset(&d, 0, sizeof(d));
    d.root_desc = desc;
    d.limit = len > (SIZE_MAX - SY__JSON_MEM_BASE) / SY__JSON_MEM_FACTOR
                  ? SIZE_MAX
                  : SY__JSON_MEM_BASE + len * SY__JSON_MEM_FACTOR;
    d.err = err;
    d.err_len = err_len;
    if (err && err_len) err[0] = '\0';
    uint8_t *out = NULL;
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

    /* The encoded request is usually about half the JSON: start there, so that
     * the body grows once or twice rather than a dozen times. */
    if (!grow(&d, (void **)&d.body, &d.cap, 1, len / 2 < d.limit / 2 ? len / 2 + 64 : 64))
        goto done;

    yajl_mem_t mem = {0, len > SIZE_MAX - SY__YAJL_MEM_BASE ? SIZE_MAX : SY__YAJL_MEM_BASE + len};
    yajl_alloc_funcs funcs = {ymem_malloc, ymem_realloc, ymem_free, &mem};
    d.yajl = yajl_alloc(&decoder_callbacks, &funcs, &d);
    if (!d.yajl) {
        fail(&d, "out of memory");
        goto done;
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
    if (!d.failed && !d.root_seen) fail(&d, "empty JSON document");
    if (!d.failed) out = assemble(&d, alloc, wire_len);
done:
    if (d.yajl) yajl_free(d.yajl);
    free(d.body);
    free(d.splices);
    return d.failed ? NULL : out;
}

ProtobufCMessage *syc_otlp_json_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *json,
                                       size_t len, ProtobufCAllocator *alloc, char *err,
                                       size_t err_len)
{
    size_t n;
    uint8_t *wire = syc_otlp_json_to_wire(desc, json, len, NULL, &n, err, err_len);
    if (!wire) return NULL;
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, alloc, n, wire);
    free(wire);
    if (!m && err && err_len) snprintf(err, err_len, "out of memory");
    return m;
}
