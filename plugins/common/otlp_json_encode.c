/*
 * otlp_json_encode.c - OTLP/JSON from encoded protobuf, read straight from the
 * wire bytes with the message descriptors: no protobuf-c decode, so a string
 * keeps every byte it has, NUL included (written "\u0000").
 *
 * The output is what protobuf-c would give by unpacking the bytes and writing
 * the struct field by field: keys in descriptor order, every element of a
 * repeated field in one array in wire order (packed and unpacked runs alike),
 * proto3 fields without presence left out at their default value, and a field
 * given more than once resolved as protobuf-c resolves it:
 *  - a scalar, string or bytes field: the last occurrence wins;
 *  - a oneof: the occurrence of a member that comes last wins whole (a message
 *    member too: protobuf-c replaces a oneof's value rather than merging it);
 *  - a singular message field outside a oneof: its occurrences are merged as protobuf defines
 *    it, by reading the concatenation of their bytes as one message (repeated
 *    fields append, scalars last wins, messages merge again). protobuf-c 1.4's
 *    own merge differs in one respect: a scalar field without presence takes
 *    the later occurrence's value even where the later occurrence does not
 *    hold the field (so {code: 2} then {message: "m"} loses the code there and
 *    keeps it here). Encoders never split a message so; the number of merges
 *    is reported so that tests can tell such inputs apart.
 * A message whose fields come in descriptor order with no singular field twice
 * (what every encoder writes) is written in one pass over its bytes; any other
 * goes field by field, one pass over its bytes each.
 * Unknown fields are skipped. Bytes that protobuf-c would refuse (bad varints,
 * lengths past the end, a wire type that does not fit the field) are refused.
 */
#include "otlp_json.h"
#include "otlp_json_map.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct out_s {
    char *data;
    size_t len, cap;
    bool oom;
    unsigned merges; /* singular messages read from more than one occurrence */
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

/* A JSON string of s[0..n): every byte kept, control characters (NUL too)
 * escaped, a byte that is not UTF-8 replaced by U+FFFD. */
static void put_string(out_t *o, const uint8_t *u, size_t n)
{
    static const char hex[] = "0123456789abcdef";
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
    char name[SYC__JSON_NAME_MAX];
    if (!*first) putc_(o, ',');
    *first = false;
    syc__json_name(f, name, sizeof(name));
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

static void put_hex(out_t *o, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!out_reserve(o, 2 * n + 2)) return;
    char *w = o->data + o->len;
    *w++ = '"';
    for (size_t i = 0; i < n; i++) {
        *w++ = hex[p[i] >> 4];
        *w++ = hex[p[i] & 15];
    }
    *w++ = '"';
    o->len += 2 * n + 2;
}

/* ------------------------------------------------------------------------ */
/* Reading the wire                                                          */
/* ------------------------------------------------------------------------ */

/* One field occurrence. */
typedef struct wf_s {
    uint32_t num;
    int wt;
    uint64_t v;         /* wire types 0, 1, 5: the value */
    bool nonzero;       /* wire type 0: some payload bit is set (bool reads this) */
    const uint8_t *val; /* wire type 2: the bytes */
    size_t len;
} wf_t;

/* A varint of at most `limit` bytes (bits past the 64th are dropped, as
 * protobuf-c drops them). Returns its size, or 0 if malformed. */
static size_t read_varint(const uint8_t *p, size_t len, size_t limit, uint64_t *out, bool *nz)
{
    uint64_t v = 0;
    bool any = false;
    size_t max = len < limit ? len : limit;
    for (size_t i = 0; i < max; i++) {
        if (i < 10) v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        any |= (p[i] & 0x7f) != 0;
        if (!(p[i] & 0x80)) {
            *out = v;
            if (nz) *nz = any;
            return i + 1;
        }
    }
    return 0;
}

static uint64_t le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The next field at *off in p[0..len). Returns 1, 0 at the end, -1 if malformed
 * the way protobuf-c refuses. */
static int wire_next(const uint8_t *p, size_t len, size_t *off, wf_t *f)
{
    if (*off >= len) return 0;
    uint64_t key;
    size_t n = read_varint(p + *off, len - *off, 5, &key, NULL);
    if (!n || key >> 3 > 0x1fffffff || key >> 3 == 0) return -1;
    *off += n;
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    f->nonzero = false;
    switch (f->wt) {
    case 0:
        n = read_varint(p + *off, len - *off, 10, &f->v, &f->nonzero);
        if (!n) return -1;
        *off += n;
        return 1;
    case 1:
        if (len - *off < 8) return -1;
        f->v = le(p + *off, 8);
        *off += 8;
        return 1;
    case 5:
        if (len - *off < 4) return -1;
        f->v = le(p + *off, 4);
        *off += 4;
        return 1;
    case 2: {
        uint64_t l;
        n = read_varint(p + *off, len - *off, 5, &l, NULL);
        if (!n || l > INT_MAX) return -1;
        *off += n;
        if (l > len - *off) return -1;
        f->val = p + *off;
        f->len = (size_t)l;
        *off += f->len;
        return 1;
    }
    default:
        return -1;
    }
}

/* Whether occurrence w fits field f as protobuf-c reads it. */
static bool wire_fits(const ProtobufCFieldDescriptor *f, const wf_t *w)
{
    int want = syc__wire_type_of(f->type);
    return w->wt == want || (w->wt == 2 && syc__field_packable(f));
}

/* ------------------------------------------------------------------------ */
/* Values                                                                    */
/* ------------------------------------------------------------------------ */

/* Whether a scalar raw value (varint, fixed32 or fixed64 bits) is the field's
 * default. */
static bool scalar_is_default(const ProtobufCFieldDescriptor *f, uint64_t v, bool nonzero)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return v == 0;
    case PROTOBUF_C_TYPE_FLOAT: {
        uint32_t b = (uint32_t)v;
        float x;
        memcpy(&x, &b, 4);
        return x == 0 && !signbit(x);
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double x;
        memcpy(&x, &v, 8);
        return x == 0 && !signbit(x);
    }
    case PROTOBUF_C_TYPE_BOOL:
        return !nonzero;
    default: /* the 32-bit integers and enums keep the low 32 bits */
        return (uint32_t)v == 0;
    }
}

static void put_scalar(out_t *o, const ProtobufCFieldDescriptor *f, uint64_t v, bool nonzero)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        putf(o, "%" PRId32, (int32_t)(uint32_t)v);
        break;
    case PROTOBUF_C_TYPE_SINT32: {
        uint32_t u = (uint32_t)v;
        putf(o, "%" PRId32, (int32_t)((u >> 1) ^ (uint32_t) - (int32_t)(u & 1)));
        break;
    }
    case PROTOBUF_C_TYPE_ENUM:
        putf(o, "%d", (int)(int32_t)(uint32_t)v);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        putf(o, "%" PRIu32, (uint32_t)v);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        putf(o, "\"%" PRId64 "\"", (int64_t)v);
        break;
    case PROTOBUF_C_TYPE_SINT64:
        putf(o, "\"%" PRId64 "\"", (int64_t)((v >> 1) ^ (uint64_t) - (int64_t)(v & 1)));
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        putf(o, "\"%" PRIu64 "\"", v);
        break;
    case PROTOBUF_C_TYPE_FLOAT: {
        uint32_t b = (uint32_t)v;
        float x;
        memcpy(&x, &b, 4);
        put_double(o, x, 9);
        break;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        double x;
        memcpy(&x, &v, 8);
        put_double(o, x, 17);
        break;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (nonzero)
            put(o, "true", 4);
        else
            put(o, "false", 5);
        break;
    default:
        break;
    }
}

static bool encode_message(out_t *o, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                           size_t len, int depth);

/* Writes one value of field f from occurrence w (not a packed run). */
static bool put_value(out_t *o, const ProtobufCFieldDescriptor *f, const wf_t *w, int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        put_string(o, w->val, w->len);
        break;
    case PROTOBUF_C_TYPE_BYTES:
        if (syc__json_hex_id_size(f))
            put_hex(o, w->val, w->len);
        else
            put_base64(o, w->val, w->len);
        break;
    case PROTOBUF_C_TYPE_MESSAGE:
        return encode_message(o, f->descriptor, w->val, w->len, depth + 1);
    default:
        put_scalar(o, f, w->v, w->nonzero);
        break;
    }
    return !o->oom;
}

/* Whether a singular occurrence is left out: a field without presence at its
 * default value. */
static bool value_omitted(const ProtobufCFieldDescriptor *f, const wf_t *w)
{
    if (!syc__field_implicit(f)) return false;
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
        return w->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return false;
    default:
        return scalar_is_default(f, w->v, w->nonzero);
    }
}

/* The elements of a repeated field in occurrence w, appended to the open array
 * (opened by put_key and '[' before the first element: *n counts them). */
static bool put_elements(out_t *o, const ProtobufCFieldDescriptor *f, const wf_t *w, bool *first,
                         size_t *n, int depth)
{
    if (w->wt == 2 && syc__field_packable(f)) {
        int wt = syc__wire_type_of(f->type);
        size_t size = wt == 1 ? 8 : 4;
        if (wt != 0 && w->len % size) return false;
        size_t off = 0;
        while (off < w->len) {
            wf_t e = {.wt = wt};
            if (wt == 0) {
                size_t k = read_varint(w->val + off, w->len - off, 10, &e.v, &e.nonzero);
                if (!k) return false;
                off += k;
            } else {
                e.v = le(w->val + off, size);
                off += size;
            }
            if ((*n)++ == 0) {
                put_key(o, f, first);
                putc_(o, '[');
            } else {
                putc_(o, ',');
            }
            put_scalar(o, f, e.v, e.nonzero);
        }
        return !o->oom;
    }
    if ((*n)++ == 0) {
        put_key(o, f, first);
        putc_(o, '[');
    } else {
        putc_(o, ',');
    }
    return put_value(o, f, w, depth);
}

/* Field lookup, and whether the occurrence fits it (NULL: unknown, skipped). */
static int lookup(const ProtobufCMessageDescriptor *desc, const wf_t *w,
                  const ProtobufCFieldDescriptor **f)
{
    *f = protobuf_c_message_descriptor_get_field(desc, w->num);
    if (*f && !wire_fits(*f, w)) return -1;
    return 0;
}

/*
 * The one-pass check: fields in descriptor order, a repeated field's
 * occurrences next to each other, no singular field twice and no two members
 * of one oneof. Returns 1 if so, 0 if not, -1 if the bytes are malformed.
 */
static int in_order(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len)
{
    size_t off = 0;
    wf_t w;
    int rc;
    const ProtobufCFieldDescriptor *prev = NULL;
    unsigned oneofs[8];
    size_t noneofs = 0;
    bool ordered = true;
    while ((rc = wire_next(p, len, &off, &w)) > 0) {
        const ProtobufCFieldDescriptor *f;
        if (lookup(desc, &w, &f) < 0) return -1;
        if (!f || !ordered) continue;
        if (prev && f < prev) ordered = false;
        if (f == prev && f->label != PROTOBUF_C_LABEL_REPEATED) ordered = false;
        if (f != prev && (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
            for (size_t i = 0; i < noneofs; i++)
                if (oneofs[i] == f->quantifier_offset) ordered = false;
            if (noneofs < sizeof(oneofs) / sizeof(oneofs[0]))
                oneofs[noneofs++] = f->quantifier_offset;
            else
                ordered = false;
        }
        prev = f;
    }
    if (rc < 0) return -1;
    return ordered ? 1 : 0;
}

/* The one-pass writer for a message that in_order() accepted. */
static bool encode_in_order(out_t *o, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                            size_t len, int depth)
{
    size_t off = 0, n = 0;
    wf_t w;
    bool first = true;
    const ProtobufCFieldDescriptor *open = NULL; /* the repeated field whose array is open */
    while (wire_next(p, len, &off, &w) > 0) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(desc, w.num);
        if (!f) continue;
        if (open && f != open) {
            if (n) putc_(o, ']');
            open = NULL;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (!open) {
                open = f;
                n = 0;
            }
            if (!put_elements(o, f, &w, &first, &n, depth)) return false;
            continue;
        }
        if (value_omitted(f, &w)) continue;
        put_key(o, f, &first);
        if (!put_value(o, f, &w, depth)) return false;
    }
    if (open && n) putc_(o, ']');
    return !o->oom;
}

/* A singular message field (not in a oneof) given more than once: its
 * payloads concatenated, read as one message. */
static bool encode_merged(out_t *o, const ProtobufCFieldDescriptor *f, const uint8_t *p, size_t len,
                          int depth)
{
    size_t off = 0, total = 0;
    wf_t w;
    while (wire_next(p, len, &off, &w) > 0)
        if (w.num == f->id) total += w.len;
    uint8_t *cat = malloc(total ? total : 1);
    if (!cat) {
        o->oom = true;
        return false;
    }
    off = 0;
    size_t at = 0;
    while (wire_next(p, len, &off, &w) > 0)
        if (w.num == f->id) {
            memcpy(cat + at, w.val, w.len);
            at += w.len;
        }
    o->merges++;
    bool ok = encode_message(o, f->descriptor, cat, total, depth + 1);
    free(cat);
    return ok;
}

/* The field-by-field writer: one pass over the message per field. */
static bool encode_by_field(out_t *o, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                            size_t len, int depth)
{
    bool first = true;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        size_t off = 0, n = 0;
        wf_t w;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            while (wire_next(p, len, &off, &w) > 0)
                if (w.num == f->id && !put_elements(o, f, &w, &first, &n, depth)) return false;
            if (n) putc_(o, ']');
            continue;
        }
        /* The last occurrence; for a oneof, the last of any member decides
         * (protobuf-c replaces a oneof's value whole, a message member too). */
        bool oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
        wf_t last = {0};
        bool have = false;
        size_t count = 0;
        while (wire_next(p, len, &off, &w) > 0) {
            if (w.num == f->id) {
                last = w;
                have = true;
                count++;
                continue;
            }
            if (!oneof) continue;
            const ProtobufCFieldDescriptor *g =
                protobuf_c_message_descriptor_get_field(desc, w.num);
            if (g && (g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                g->quantifier_offset == f->quantifier_offset)
                have = false; /* another member replaces this one */
        }
        if (!have || value_omitted(f, &last)) continue;
        put_key(o, f, &first);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && !oneof && count > 1) {
            if (!encode_merged(o, f, p, len, depth)) return false;
        } else if (!put_value(o, f, &last, depth)) {
            return false;
        }
    }
    return !o->oom;
}

static bool encode_message(out_t *o, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                           size_t len, int depth)
{
    if (depth >= SYC_OTLP_JSON_MAX_DEPTH) return false;
    int rc = in_order(desc, p, len);
    if (rc < 0) return false;
    putc_(o, '{');
    if (!(rc ? encode_in_order(o, desc, p, len, depth) : encode_by_field(o, desc, p, len, depth)))
        return false;
    putc_(o, '}');
    return !o->oom;
}

char *syc_otlp_json_from_wire(const ProtobufCMessageDescriptor *desc, const uint8_t *wire,
                              size_t len, size_t *json_len, unsigned *merges)
{
    out_t o = {0};
    if (!encode_message(&o, desc, wire, len, 0) || !out_reserve(&o, 1)) {
        free(o.data);
        return NULL;
    }
    o.data[o.len] = '\0';
    *json_len = o.len;
    if (merges) *merges = o.merges;
    return o.data;
}

char *syc_otlp_json_encode(const ProtobufCMessage *msg, size_t *len)
{
    size_t size = protobuf_c_message_get_packed_size(msg);
    uint8_t stack[1024];
    uint8_t *buf = size <= sizeof(stack) ? stack : malloc(size);
    if (!buf) return NULL;
    protobuf_c_message_pack(msg, buf);
    char *json = syc_otlp_json_from_wire(msg->descriptor, buf, size, len, NULL);
    if (buf != stack) free(buf);
    return json;
}
