/*
 * pbwalk.c - validating and counting encoded protobuf without decoding it.
 *
 * The receiver path forwards the bytes a client sent; it must still answer 400
 * for bytes that would not decode later, and it must know how many spans, data
 * points or log records a request holds. This walk does both in one pass over the
 * tags and lengths, guided by the protobuf-c descriptors: it accepts exactly what
 * protobuf_c_message_unpack() accepts (wire types that fit the field's type,
 * well-formed varints, lengths inside the buffer, packed arrays of whole
 * elements), and in addition bounds the nesting depth, which protobuf-c does not,
 * refuses strings that are not UTF-8 (which OTLP requires and protobuf-c does not
 * check), and estimates the memory a decode would take.
 */
#include "batch.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "opentelemetry/proto/logs/v1/logs.pb-c.h"
#include "otlp_json_map.h" /* syc__wire_type_of */
#include "utf8.h"
#include "opentelemetry/proto/metrics/v1/metrics.pb-c.h"
#include "opentelemetry/proto/trace/v1/trace.pb-c.h"

#define PB_LIKELY(x)   __builtin_expect(!!(x), 1)
#define PB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define PB_COLD        __attribute__((cold, noinline))
#define PB_INLINE      static inline __attribute__((always_inline))

/*
 * What one field occurrence asks of the walk. It depends only on the field's
 * descriptor and the wire type the occurrence arrived with, so it is decided once
 * per (field, wire type) when the tables are built. The action says how the value
 * is laid out too, so the loop reads a tag, looks up its action and dispatches
 * once: the wire type is looked at separately only on PB_OTHER, which no valid
 * message of a known type takes but for its unknown fields.
 */
typedef enum {
    PB_OTHER,          /* no such field (protobuf-c keeps a copy of it), a wire type
                        * that does not fit the field's type (refused), or none at all */
    PB_VARINT,         /* a number in its own wire type: nothing more to check */
    PB_FIXED64,        /* the same, 8 bytes */
    PB_FIXED32,        /* the same, 4 bytes */
    PB_BYTES,          /* length-delimited from here on: copied */
    PB_STRING,         /* copied, and must be UTF-8 */
    PB_MSG_REPEATED,   /* walked; every occurrence's items count */
    PB_KV_REPEATED,    /* the same, of KeyValues: walk_kv_fast() first */
    PB_MSG_SINGULAR,   /* walked; merged into the earlier one if given again */
    PB_MSG_ONEOF,      /* as singular, and only the last member of its oneof counts */
    PB_PACKED_VARINT,  /* a repeated scalar, packed: whole varints */
    PB_PACKED_FIXED64, /* a repeated scalar, packed: whole 8-byte elements */
    PB_PACKED_FIXED32, /* a repeated scalar, packed: whole 4-byte elements */
    PB_SLOW,           /* not in a table: the field is looked up and classified */
} pb_action_t;

/*
 * Field lookup by number was the walk's hottest step (a binary search per tag in
 * protobuf-c). OTLP's field numbers are small, so every message type reachable
 * from the three export requests gets a table indexed by tag (field number and
 * wire type) holding the action, and by field number holding the field and, for
 * a message field, the table of its type. The tables are built once
 * (pthread_once) and read-only afterwards. Larger field numbers, and types not
 * reached from the requests, take the same decisions through protobuf-c's search
 * and classify().
 */
#define PB_FAST_FIELDS 32
#define PB_MAX_SCHEMAS 64 /* at most 64: walk_t.item_mask has a bit per table */

typedef struct pb_schema_s pb_schema_t;
typedef struct pb_field_s {
    const ProtobufCFieldDescriptor *f; /* NULL: no such field */
    const pb_schema_t *sub;            /* the table of a message field's type, or NULL */
    bool flat;                         /* sub is flat: see walk_flat() */
} pb_field_t;
struct pb_schema_s {
    const ProtobufCMessageDescriptor *desc;
    unsigned index;                     /* in schemas[] */
    uint8_t action[PB_FAST_FIELDS * 8]; /* pb_action_t by tag, field << 3 | wire type */
    pb_field_t field[PB_FAST_FIELDS];
};

static pb_schema_t schemas[PB_MAX_SCHEMAS];
static size_t nschemas;
static size_t max_sizeof_message; /* of every type reached (4096 if the table filled) */
static pthread_once_t schemas_once = PTHREAD_ONCE_INIT;

/* The table of types that have none: every tag takes the slow path. */
static pb_schema_t no_table;

static const pb_schema_t *schema_find(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < nschemas; i++)
        if (schemas[i].desc == d) return &schemas[i];
    return NULL;
}

/*
 * What an occurrence of field f (NULL if the message has no such field) with
 * wire type wt (0, 1, 2 or 5) asks: what protobuf_c_message_unpack() accepts is
 * the field's own wire type, or for a repeated scalar also a packed array.
 */
static pb_action_t classify(const ProtobufCFieldDescriptor *f, int wt)
{
    if (!f) return PB_OTHER;
    int want = syc__wire_type_of(f->type);
    if (wt == want) {
        switch (f->type) {
        case PROTOBUF_C_TYPE_MESSAGE:
            if (f->label == PROTOBUF_C_LABEL_REPEATED)
                return f->descriptor == &opentelemetry__proto__common__v1__key_value__descriptor
                           ? PB_KV_REPEATED
                           : PB_MSG_REPEATED;
            return (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? PB_MSG_ONEOF : PB_MSG_SINGULAR;
        case PROTOBUF_C_TYPE_STRING:
            return PB_STRING;
        case PROTOBUF_C_TYPE_BYTES:
            return PB_BYTES;
        default:
            return want == 0 ? PB_VARINT : want == 1 ? PB_FIXED64 : PB_FIXED32;
        }
    }
    if (wt == 2 && f->label == PROTOBUF_C_LABEL_REPEATED && want != 2)
        return want == 0 ? PB_PACKED_VARINT : want == 1 ? PB_PACKED_FIXED64 : PB_PACKED_FIXED32;
    return PB_OTHER;
}

/* Whether messages of type d hold only singular numbers, strings and bytes, in
 * fields 1 to 15 (one-byte tags): Status, ValueAtQuantile. See walk_flat(). */
static bool is_flat(const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].id >= 16 || d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE ||
            d->fields[i].label == PROTOBUF_C_LABEL_REPEATED)
            return false;
    return true;
}

/* Adds d and, depth first, every message type it reaches (while room lasts). */
static pb_schema_t *schema_add(const ProtobufCMessageDescriptor *d)
{
    pb_schema_t *s = (pb_schema_t *)schema_find(d);
    if (s) return s;
    if (nschemas == PB_MAX_SCHEMAS) return NULL;
    s = &schemas[nschemas];
    s->index = (unsigned)nschemas++;
    s->desc = d;
    memset(s->action, PB_OTHER, sizeof(s->action));
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->id >= PB_FAST_FIELDS) continue;
        s->field[f->id].f = f;
        for (int wt = 0; wt < 8; wt++)
            s->action[f->id << 3 | (unsigned)wt] = (uint8_t)classify(f, wt);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            s->field[f->id].sub = schema_add(f->descriptor);
            s->field[f->id].flat = s->field[f->id].sub && is_flat(f->descriptor);
        }
    }
    return s;
}

static void schemas_init(void)
{
    memset(no_table.action, PB_SLOW, sizeof(no_table.action));
    for (int sig = SY_SIGNAL_TRACES; sig <= SY_SIGNAL_LOGS; sig <<= 1)
        schema_add(sy__signal_request_descriptor((sy_signal_t)sig));
    for (size_t i = 0; i < nschemas; i++)
        if (schemas[i].desc->sizeof_message > max_sizeof_message)
            max_sizeof_message = schemas[i].desc->sizeof_message;
    if (nschemas == PB_MAX_SCHEMAS) max_sizeof_message = 4096;
}

typedef struct walk_s {
    const ProtobufCMessageDescriptor *item[4]; /* messages that count as items */
    uint64_t item_mask; /* the same, as a bit per table index (pb_schema_t.index) */
    const uint8_t *end; /* of the whole buffer: reads up to it are safe */
    bool merges;        /* a singular message field occurred twice in one message */
    uint64_t occ;       /* field occurrences (tags) walked, at every depth */
    uint64_t mem;       /* what protobuf_c_message_unpack() would allocate (see below) */
    char *err;
    size_t err_len;
} walk_t;

/* Reads a varint of at most `limit` bytes; returns the bytes used, or 0 if it is
 * truncated or longer. protobuf-c reads values with up to 10 bytes, but tags and
 * length prefixes with up to 5, and refuses longer ones: so must we. */
PB_INLINE size_t read_varint_max(const uint8_t *p, size_t len, size_t limit, uint64_t *out)
{
    if (PB_LIKELY(len && p[0] < 0x80)) { /* most tags and lengths fit in one byte */
        *out = p[0];
        return 1;
    }
    uint64_t v = 0;
    size_t max = len < limit ? len : limit;
    for (size_t i = 0; i < max; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

PB_INLINE size_t read_varint(const uint8_t *p, size_t len, uint64_t *out)
{
    return read_varint_max(p, len, 10, out);
}

/* Skips a varint value (at most 10 bytes) that starts at p, before end; returns
 * where the next field starts, or NULL if it is truncated or longer. */
PB_INLINE const uint8_t *skip_varint(const uint8_t *p, const uint8_t *end)
{
    if (PB_LIKELY(p < end && p[0] < 0x80)) return p + 1;
    uint64_t v;
    size_t n = read_varint(p, (size_t)(end - p), &v);
    return n ? p + n : NULL;
}

/*
 * Reads the length prefix of a length-delimited value at *q, before end: sets
 * *val and *vlen to the value and moves *q past it. Returns NULL, or what is
 * wrong, in the words of the error message. Lengths of up to 16383 bytes (one or
 * two bytes) are read without a loop.
 */
PB_INLINE const char *take_length(const uint8_t **q, const uint8_t *end, const uint8_t **val,
                                  size_t *vlen)
{
    const uint8_t *p = *q;
    uint64_t l;
    if (PB_LIKELY(p < end && p[0] < 0x80)) {
        l = p[0];
        p += 1;
    } else if (PB_LIKELY(end - p >= 2 && p[1] < 0x80)) {
        l = (p[0] & 0x7fu) | (uint64_t)p[1] << 7;
        p += 2;
    } else {
        size_t n = read_varint_max(p, (size_t)(end - p), 5, &l);
        if (PB_UNLIKELY(!n)) return "truncated or overlong length";
        if (PB_UNLIKELY(l > INT_MAX)) return "length over 2 GiB";
        p += n;
    }
    if (PB_UNLIKELY(l > (size_t)(end - p))) return "length past the end of the message";
    *val = p;
    *vlen = (size_t)l;
    *q = p + l;
    return NULL;
}

/*
 * Whether messages of this type hold a oneof. A singular field of such a type
 * given twice is refused: protobuf-c 1.4 merges the two occurrences and fails
 * when neither sets a member of the oneof (KeyValue{value: {}, value: {}}), so
 * such a request could be acknowledged and then never decode. No encoder writes a
 * singular field twice; the rule costs nothing on real traffic (only a repeat
 * reaches it).
 */
static PB_COLD bool has_oneof(const ProtobufCMessageDescriptor *d)
{
    for (unsigned i = 0; d && i < d->n_fields; i++)
        if (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) return true;
    return false;
}

/* Error formatting stays out of the loop's way: out of line, in a cold section. */
static PB_COLD int fail(walk_t *w, const ProtobufCMessageDescriptor *desc, const char *what,
                        uint32_t field)
{
    if (w->err && w->err_len)
        snprintf(w->err, w->err_len, "malformed protobuf in %s: %s (field %u)", desc->name, what,
                 field);
    return -1;
}

static PB_COLD int fail_utf8(walk_t *w, const ProtobufCMessageDescriptor *desc,
                             const ProtobufCFieldDescriptor *f)
{
    if (w->err && w->err_len)
        snprintf(w->err, w->err_len,
                 "invalid UTF-8 in string field %s.%s (field %u): OTLP strings must be valid "
                 "UTF-8",
                 desc->name, f->name, f->id);
    return -1;
}

/*
 * The decoded-size estimate. protobuf-c's unpack, into a batch arena that never
 * frees, allocates per message its struct and, when the message has more than 16
 * field occurrences, slabs of 32-byte scan records doubling in size (at most 64
 * bytes per occurrence in all); per repeated field an array (8 bytes an element
 * at most); per string len + 1 bytes; per bytes field len bytes; per unknown
 * field a 24-byte record and a copy of its value with its length prefix. The arena
 * rounds every allocation up to 16.
 * The walk charges every occurrence PB_PER_FIELD (an array element, a record,
 * rounding) plus the length of what is copied, so the estimate is an upper
 * bound, not a guess, and costs one add per string in the loop.
 */
#define PB_ROUND16(n)     (((uint64_t)(n) + 15) & ~(uint64_t)15)
#define PB_SCAN_ON_STACK  16
#define PB_SCAN_PER_FIELD 64
#define PB_PER_FIELD      48
#define PB_ESTIMATE_CAP   ((uint64_t)1 << 60) /* far past any bound */

/*
 * Whether s[0..n) is all ASCII, knowing that `room` bytes from s are readable
 * (the rest of the buffer); false also when that cannot be told cheaply (a short
 * run at the very end of the buffer). Most OTLP strings are ASCII: a run of at
 * most 16 bytes with 16 readable is checked with one unaligned 16-byte load and a
 * mask, without a branch on its length; a longer one by OR-ing its 16-byte blocks
 * (the last one overlapping: up to 64 bytes without a loop) and testing the high
 * bits once. Without SSE2, 8 bytes at a time through memcpy.
 */
PB_INLINE bool is_ascii(const uint8_t *s, size_t n, size_t room)
{
#if defined(__SSE2__)
    if (PB_LIKELY(n <= 16)) {
        if (PB_UNLIKELY(room < 16)) return false;
        unsigned high = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)s));
        return !(high & ((1u << n) - 1));
    }
    __m128i any = _mm_loadu_si128((const __m128i *)s);
    size_t last = n - 16; /* the offset of the last block */
    if (PB_LIKELY(n <= 32)) {
        /* two blocks, overlapping: most keys and values */
    } else if (n <= 64) {
        /* Four blocks, overlapping, with no gap between them: no loop. */
        any = _mm_or_si128(any, _mm_loadu_si128((const __m128i *)(s + 16)));
        any = _mm_or_si128(any, _mm_loadu_si128((const __m128i *)(s + last - 16)));
    } else {
        for (size_t i = 16; i < last; i += 16)
            any = _mm_or_si128(any, _mm_loadu_si128((const __m128i *)(s + i)));
    }
    any = _mm_or_si128(any, _mm_loadu_si128((const __m128i *)(s + last)));
    return !_mm_movemask_epi8(any);
#else
    (void)room;
    uint64_t any = 0, word;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&word, s + i, 8);
        any |= word;
    }
    for (; i < n; i++)
        any |= s[i];
    return !(any & 0x8080808080808080ull);
#endif
}

/*
 * Whether the string s[0..n) is UTF-8, `room` as for is_ascii(). Only a string
 * with a high bit, or a short one at the very end of the buffer, goes to
 * syc_utf8_valid(), which decides: ASCII is always valid, so the answer is the
 * same.
 */
PB_INLINE bool string_is_utf8(const uint8_t *s, size_t n, size_t room)
{
    return PB_LIKELY(is_ascii(s, n, room)) || syc_utf8_valid(s, n);
}

/* A packed array of scalars must hold whole elements. With `estimate`, adds its
 * decoded size to the estimate. Returns 0 or -1. */
static int check_packed(walk_t *w, const ProtobufCMessageDescriptor *desc,
                        const ProtobufCFieldDescriptor *f, pb_action_t act, const uint8_t *p,
                        size_t len, bool estimate)
{
    if (act == PB_PACKED_FIXED64 && len % 8)
        return fail(w, desc, "packed 64-bit array of partial length", f->id);
    if (act == PB_PACKED_FIXED32 && len % 4)
        return fail(w, desc, "packed 32-bit array of partial length", f->id);
    if (act == PB_PACKED_VARINT) {
        size_t off = 0, n_elems = 0;
        while (off < len) {
            uint64_t v;
            size_t n = read_varint(p + off, len - off, &v);
            if (!n) return fail(w, desc, "bad varint in packed array", f->id);
            off += n;
            n_elems++;
        }
        if (estimate) w->mem += 8 * (uint64_t)n_elems; /* elements widen to 8 */
    }
    return 0;
}

/* Whether a message of type desc, which has no table, counts as an item. */
static PB_COLD uint64_t is_item_slow(const walk_t *w, const ProtobufCMessageDescriptor *desc)
{
    for (int i = 0; i < 4 && w->item[i]; i++)
        if (w->item[i] == desc) return 1;
    return 0;
}

/*
 * The attribute most telemetry is made of, walked without the generic loop:
 * KeyValue{key: a string, value: AnyValue{one string, bool, int or double}}, each
 * field once and in that order. Nine in ten messages of a typical request are a
 * KeyValue or its AnyValue, and the generic walk spends more on entering and
 * leaving them (two calls, their locals, the oneof and merge bookkeeping) than on
 * their bytes. Returns true when p[0..len) is that shape and valid (it holds three
 * occurrences: the caller counts them); false to let the generic walk decide,
 * errors included (so that an error reads the same either way). The caller has
 * checked that the KeyValue and its AnyValue are within the depth bound;
 * `buf_end` is the end of the buffer (reads up to it are safe).
 * Decides exactly as walk_message() would: tests/unit/test_pbwalk.c and
 * fuzz_otlp_proto compare both with the reference walk.
 */
PB_INLINE bool walk_kv_fast(const uint8_t *p, size_t len, const uint8_t *buf_end)
{
    const uint8_t *const end = p + len;
    uint64_t l;
    size_t n;
    if (PB_UNLIKELY(len < 4 || p[0] != 0x0A)) return false;
    /*
     * The compact shape first, in fewer steps: an attribute under 132 bytes, so
     * that every length in it is under 128 and takes one byte. Anything it does
     * not accept is decided by the general code below.
     */
    size_t klen = p[1]; /* the key's length */
    if (PB_LIKELY(len < 4 + 0x80 && klen + 4 <= len)) {
        const uint8_t *tag = p + 2 + klen, *any = tag + 2;
        size_t alen = len - 4 - klen; /* the AnyValue's length, under 128 */
        if (PB_LIKELY(tag[0] == 0x12 && tag[1] == alen && alen != 0)) {
            bool ok;
            switch (any[0]) {
            case 0x0A: /* string_value */
                ok = alen >= 2 && any[1] == alen - 2 &&
                     is_ascii(any + 2, alen - 2, (size_t)(buf_end - (any + 2)));
                break;
            case 0x10: /* bool_value */
            case 0x18: /* int_value */
                ok = read_varint(any + 1, alen - 1, &l) == alen - 1;
                break;
            case 0x21: /* double_value */
                ok = alen == 9;
                break;
            default:
                return false;
            }
            if (PB_LIKELY(ok && is_ascii(p + 2, klen, (size_t)(buf_end - (p + 2))))) return true;
        }
    }
    /* key: field 1, a string */
    if (!(n = read_varint_max(p + 1, len - 1, 5, &l)) || l > (size_t)(end - p - 1 - n))
        return false;
    const uint8_t *key = p + 1 + n, *q = key + l;
    size_t key_len = (size_t)l;
    /* value: field 2, an AnyValue running to the end */
    if (end - q < 2 || q[0] != 0x12) return false;
    if (!(n = read_varint_max(q + 1, (size_t)(end - q - 1), 5, &l)) ||
        l != (uint64_t)(end - q - 1 - n) || l == 0)
        return false;
    const uint8_t *v = q + 1 + n;
    size_t vlen = (size_t)l;
    uint64_t x;
    switch (v[0]) {
    case 0x0A: /* string_value */
        if (!(n = read_varint_max(v + 1, vlen - 1, 5, &l)) || l != vlen - 1 - n ||
            !string_is_utf8(v + 1 + n, (size_t)l, (size_t)(buf_end - (v + 1 + n))))
            return false;
        break;
    case 0x10: /* bool_value */
    case 0x18: /* int_value */
        if (!(n = read_varint(v + 1, vlen - 1, &x)) || n != vlen - 1) return false;
        break;
    case 0x21: /* double_value */
        if (vlen != 9) return false;
        break;
    default:
        return false;
    }
    if (!string_is_utf8(key, key_len, (size_t)(buf_end - key))) return false;
    return true;
}

/*
 * A message of a flat type (is_flat(): Status, ValueAtQuantile) walked without
 * the generic loop and its bookkeeping (a call, the oneof and merge records):
 * one-byte tags, numbers and strings, each in its own wire type. Returns the
 * items in it (whether its type counts as one), having counted its occurrences;
 * -1 to let the generic walk decide anything else, errors included (so that an
 * error reads the same either way). `depth` is the message's.
 */
PB_INLINE int64_t walk_flat(walk_t *w, const pb_schema_t *s, const uint8_t *p, size_t len,
                            int depth)
{
    if (PB_UNLIKELY(depth > SY__PB_MAX_DEPTH)) return -1;
    const uint8_t *q = p, *const end = p + len, *val;
    size_t vlen;
    uint64_t occurrences = 0;
    while (q < end) {
        uint8_t key = *q++;
        occurrences++;
        switch (key < 0x80 ? (pb_action_t)s->action[key] : PB_OTHER) {
        case PB_VARINT:
            if (!(q = skip_varint(q, end))) return -1;
            continue;
        case PB_FIXED64:
            if (end - q < 8) return -1;
            q += 8;
            continue;
        case PB_FIXED32:
            if (end - q < 4) return -1;
            q += 4;
            continue;
        case PB_BYTES:
            if (take_length(&q, end, &val, &vlen)) return -1;
            continue;
        case PB_STRING:
            if (take_length(&q, end, &val, &vlen) ||
                !string_is_utf8(val, vlen, (size_t)(w->end - val)))
                return -1;
            continue;
        default:
            return -1;
        }
    }
    w->occ += occurrences;
    return (int64_t)((w->item_mask >> s->index) & 1);
}

static int64_t walk_plain(walk_t *w, const pb_schema_t *schema,
                          const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                          int depth);
static int64_t walk_estimated(walk_t *w, const pb_schema_t *schema,
                              const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                              int depth);

/* Walks the message val[0..vlen) that field pf holds; returns its items, or -1. */
PB_INLINE int64_t walk_field(walk_t *w, const pb_field_t *pf, const uint8_t *val, size_t vlen,
                             int depth, const bool estimate)
{
    if (estimate) return walk_estimated(w, pf->sub, pf->f->descriptor, val, vlen, depth);
    int64_t items = pf->flat ? walk_flat(w, pf->sub, val, vlen, depth) : -1;
    return items >= 0 ? items : walk_plain(w, pf->sub, pf->f->descriptor, val, vlen, depth);
}

/*
 * Walks one message of type desc (whose table is schema, or NULL); returns the
 * items in it, or -1. Items are counted as protobuf-c will decode them: a field
 * of a oneof that occurs more than once (the same member again, or another
 * member) replaces what came before, so only the last occurrence of each oneof
 * counts; a repeated field, and a singular message field that protobuf-c merges,
 * count every occurrence.
 * `estimate` is a constant in each of the two copies, walk_plain() and
 * walk_estimated(): the plain walk, the one on every request, keeps no counts
 * for the estimate at all.
 */
PB_INLINE int64_t walk_message(walk_t *w, const pb_schema_t *schema,
                               const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                               int depth, const bool estimate)
{
    if (PB_UNLIKELY(depth > SY__PB_MAX_DEPTH)) return fail(w, desc, "nesting too deep", 0);
    uint64_t total =
        PB_LIKELY(schema != NULL) ? (w->item_mask >> schema->index) & 1 : is_item_slow(w, desc);
    if (PB_UNLIKELY(!schema)) schema = &no_table;
    /* Items under each oneof seen so far, keyed by the oneof's case offset. */
    struct {
        unsigned qoff;
        uint64_t items;
    } oneofs[8];
    size_t noneofs = 0;
    /* Singular message fields seen so far (bit per field number, the last bit
     * shared by numbers from 63 up), and the estimate when this message began,
     * for the cost of protobuf-c merging a field given again (see below). */
    uint64_t singles_seen = 0;
    uint64_t mem_at_start = estimate ? w->mem : 0;
    uint64_t occurrences = 0, copied = 0;

    const uint8_t *q = p, *const end = p + len; /* the cursor, and the message's end */
    while (q < end) {
        occurrences++;
        uint64_t key = *q;
        pb_action_t act;
        if (PB_LIKELY(key < 0x80)) { /* a one-byte tag: fields 1 to 15 */
            if (PB_UNLIKELY(key < 8)) return fail(w, desc, "invalid field number", 0);
            act = (pb_action_t)schema->action[key];
            q++;
        } else if (PB_LIKELY(end - q >= 2 && q[1] < 0x80)) { /* two bytes: up to field 2047 */
            key = (key & 0x7f) | (uint64_t)q[1] << 7;
            if (PB_UNLIKELY(key < 8)) return fail(w, desc, "invalid field number", 0);
            act = key < PB_FAST_FIELDS * 8 ? (pb_action_t)schema->action[key] : PB_SLOW;
            q += 2;
        } else {
            size_t n = read_varint_max(q, (size_t)(end - q), 5, &key);
            if (PB_UNLIKELY(!n)) return fail(w, desc, "truncated or overlong tag", 0);
            q += n;
            if (PB_UNLIKELY(key >> 3 > 0x1fffffff || key >> 3 == 0))
                return fail(w, desc, "invalid field number", 0);
            act = key < PB_FAST_FIELDS * 8 ? (pb_action_t)schema->action[key] : PB_SLOW;
        }
        uint32_t field = (uint32_t)(key >> 3);
        /* (a field past the table takes the slow path, and its own pf) */
        const pb_field_t *pf = &schema->field[field % PB_FAST_FIELDS];
        pb_field_t slow;
        if (PB_UNLIKELY(act == PB_SLOW)) {
            slow.f = protobuf_c_message_descriptor_get_field(desc, field);
            slow.sub = slow.f && slow.f->type == PROTOBUF_C_TYPE_MESSAGE
                           ? schema_find(slow.f->descriptor)
                           : NULL;
            slow.flat = false;
            act = classify(slow.f, (int)(key & 7));
            pf = &slow;
        }

        /* The value: skipped for a number, checked for a string or bytes, found
         * (val, vlen) for the rest. */
        const uint8_t *val = q;
        size_t vlen = 0;
        const char *bad;
        switch (act) {
        case PB_VARINT:
            if (PB_UNLIKELY(!(q = skip_varint(q, end))))
                return fail(w, desc, "truncated varint", field);
            continue;
        case PB_FIXED64:
            if (PB_UNLIKELY(end - q < 8)) return fail(w, desc, "truncated fixed64", field);
            q += 8;
            continue;
        case PB_FIXED32:
            if (PB_UNLIKELY(end - q < 4)) return fail(w, desc, "truncated fixed32", field);
            q += 4;
            continue;
        case PB_STRING:
            if (PB_UNLIKELY((bad = take_length(&q, end, &val, &vlen))))
                return fail(w, desc, bad, field);
            if (estimate) copied += vlen;
            if (PB_UNLIKELY(!string_is_utf8(val, vlen, (size_t)(w->end - val))))
                return fail_utf8(w, desc, pf->f);
            continue;
        case PB_BYTES:
            if (PB_UNLIKELY((bad = take_length(&q, end, &val, &vlen))))
                return fail(w, desc, bad, field);
            if (estimate) copied += vlen;
            continue;
        case PB_OTHER:
            switch (key & 7) {
            case 0:
                if (PB_UNLIKELY(!(q = skip_varint(q, end))))
                    return fail(w, desc, "truncated varint", field);
                break;
            case 1:
                if (PB_UNLIKELY(end - q < 8)) return fail(w, desc, "truncated fixed64", field);
                q += 8;
                break;
            case 5:
                if (PB_UNLIKELY(end - q < 4)) return fail(w, desc, "truncated fixed32", field);
                q += 4;
                break;
            case 2:
                if (PB_UNLIKELY((bad = take_length(&q, end, &val, &vlen))))
                    return fail(w, desc, bad, field);
                break;
            default:
                return fail(w, desc, "unsupported wire type", field);
            }
            if (PB_UNLIKELY(pf->f != NULL))
                return fail(w, desc, "wire type does not match the field's type", field);
            /* unknown fields are kept by protobuf-c and skipped here */
            if (estimate) copied += vlen + 16; /* the copy includes the length prefix */
            continue;
        default: /* a message or a packed array */
            if (PB_UNLIKELY((bad = take_length(&q, end, &val, &vlen))))
                return fail(w, desc, bad, field);
            break;
        }

        int64_t sub;
        switch (act) {
        case PB_KV_REPEATED:
            /* No items in an attribute. Attributes come in runs: the rest of the
             * run (the same one-byte tag again) is walked here, without going
             * back to the top of the loop, while each one takes the fast path. */
            if (!estimate && depth + 2 <= SY__PB_MAX_DEPTH) {
                bool fast;
                while ((fast = walk_kv_fast(val, vlen, w->end)) &&
                       (occurrences += 3, key < 0x80 && q < end && *q == key)) {
                    occurrences++;
                    q++;
                    if (PB_UNLIKELY((bad = take_length(&q, end, &val, &vlen))))
                        return fail(w, desc, bad, field);
                }
                if (fast) continue;
            }
            /* fall through */
        case PB_MSG_REPEATED:
            sub = walk_field(w, pf, val, vlen, depth + 1, estimate);
            if (PB_UNLIKELY(sub < 0)) return -1;
            total += (uint64_t)sub;
            continue;
        case PB_MSG_SINGULAR:
        case PB_MSG_ONEOF: {
            sub = walk_field(w, pf, val, vlen, depth + 1, estimate);
            if (PB_UNLIKELY(sub < 0)) return -1;
            /* A singular message field (a oneof member too) given again is
             * merged into what came before: protobuf-c allocates every repeated
             * array of both anew, and never frees into an arena. The earlier
             * occurrences cost at most what this message has cost so far, so
             * that is charged again: a field repeated many times grows the
             * estimate at least quadratically, and the bound refuses it.
             * Encoders never repeat a singular field, so this costs nothing
             * but a bit test on real traffic. */
            uint64_t bit = (uint64_t)1 << (field < 63 ? field : 63);
            if (PB_UNLIKELY(singles_seen & bit)) {
                if (field < 63 && has_oneof(pf->f->descriptor))
                    return fail(w, desc, "a singular field holding a oneof given more than once",
                                field);
                w->merges = true;
                if (estimate && w->mem < PB_ESTIMATE_CAP)
                    w->mem += w->mem - mem_at_start; /* doubles: capped, never wraps */
            }
            singles_seen |= bit;
            if (act == PB_MSG_SINGULAR) {
                total += (uint64_t)sub;
                continue;
            }
            size_t k = 0;
            while (k < noneofs && oneofs[k].qoff != pf->f->quantifier_offset)
                k++;
            if (k == noneofs) {
                if (PB_UNLIKELY(noneofs == sizeof(oneofs) / sizeof(oneofs[0])))
                    return fail(w, desc, "too many oneofs", field);
                oneofs[noneofs++].qoff = pf->f->quantifier_offset;
            }
            oneofs[k].items = (uint64_t)sub; /* the last occurrence replaces the earlier ones */
            continue;
        }
        case PB_PACKED_VARINT:
        case PB_PACKED_FIXED64:
        case PB_PACKED_FIXED32:
            if (estimate) copied += vlen;
            if (check_packed(w, desc, pf->f, act, val, vlen, estimate) < 0) return -1;
            continue;
        default:
            __builtin_unreachable(); /* the others were handled above */
        }
    }
    for (size_t k = 0; k < noneofs; k++)
        total += oneofs[k].items;
    w->occ += occurrences;
    if (estimate) {
        w->mem += PB_ROUND16(desc->sizeof_message) + copied + PB_PER_FIELD * occurrences;
        if (occurrences > PB_SCAN_ON_STACK) w->mem += PB_SCAN_PER_FIELD * occurrences;
    }
    return (int64_t)total;
}

static int64_t walk_plain(walk_t *w, const pb_schema_t *schema,
                          const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                          int depth)
{
    return walk_message(w, schema, desc, p, len, depth, false);
}

static int64_t walk_estimated(walk_t *w, const pb_schema_t *schema,
                              const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                              int depth)
{
    return walk_message(w, schema, desc, p, len, depth, true);
}

static void item_descriptors(const ProtobufCMessageDescriptor *desc,
                             const ProtobufCMessageDescriptor *item[4])
{
    memset(item, 0, 4 * sizeof(item[0]));
    const char *name = desc->name;
    if (strstr(name, "Trace")) {
        item[0] = &opentelemetry__proto__trace__v1__span__descriptor;
    } else if (strstr(name, "Metrics")) {
        item[0] = &opentelemetry__proto__metrics__v1__number_data_point__descriptor;
        item[1] = &opentelemetry__proto__metrics__v1__histogram_data_point__descriptor;
        item[2] = &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor;
        item[3] = &opentelemetry__proto__metrics__v1__summary_data_point__descriptor;
    } else if (strstr(name, "Logs")) {
        item[0] = &opentelemetry__proto__logs__v1__log_record__descriptor;
    }
}

int sy__pb_walk(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                bool estimate, sy__pb_stats_t *stats, char *err, size_t err_len)
{
    walk_t w = {.err = err, .err_len = err_len, .end = len ? data + len : data};
    item_descriptors(desc, w.item);
    pthread_once(&schemas_once, schemas_init);
    for (int i = 0; i < 4 && w.item[i]; i++) {
        const pb_schema_t *s = schema_find(w.item[i]);
        if (s) w.item_mask |= (uint64_t)1 << s->index;
    }
    const pb_schema_t *schema = schema_find(desc);
    int64_t n = estimate ? walk_estimated(&w, schema, desc, data, len, 0)
                         : walk_plain(&w, schema, desc, data, len, 0);
    int rc = n < 0 ? -1 : 0;
    if (stats) {
        stats->items = rc == 0 ? (uint64_t)n : 0;
        stats->occurrences = rc == 0 ? w.occ : 0;
        stats->decoded_exact = estimate;
        if (rc != 0)
            stats->decoded_bytes = 0;
        else if (estimate)
            stats->decoded_bytes = w.mem;
        else if (w.merges)
            stats->decoded_bytes = UINT64_MAX; /* unknown: walk again with the estimate */
        else
            /* By length only: what callers compared against the reference walk
             * see; sy__batch_set_encoded tightens it with the occurrences. */
            stats->decoded_bytes = sy__pb_cheap_bound(desc, len, UINT64_MAX);
    }
    return rc;
}

uint64_t sy__pb_cheap_bound(const ProtobufCMessageDescriptor *desc, size_t len,
                            uint64_t occurrences)
{
    pthread_once(&schemas_once, schemas_init);
    /* What one field occurrence can cost at most: the struct of the message it
     * holds, its per-field charge, its scan record, and 16 bytes of copy overhead
     * (an unknown field's). */
    uint64_t per_occ = PB_ROUND16(max_sizeof_message) + PB_PER_FIELD + PB_SCAN_PER_FIELD + 16;
    uint64_t root = PB_ROUND16(desc->sizeof_message);
    /* Every occurrence takes at least 2 bytes on the wire; every other byte
     * copied costs one. */
    uint64_t by_len = (uint64_t)len * ((per_occ + 1) / 2) + root;
    if (occurrences == UINT64_MAX || occurrences > len) return by_len;
    /* With the occurrences counted: the estimate charges each message its struct
     * (one per occurrence of a message field, and the root), each occurrence its
     * charges, copies at most every byte once, and widens a packed varint's
     * elements (at least a byte each) to 8 bytes: at most 9 bytes a byte. */
    uint64_t by_occ = occurrences * per_occ + 9 * (uint64_t)len + root;
    return by_occ < by_len ? by_occ : by_len;
}

int sy__pb_check_at(const ProtobufCMessageDescriptor *request,
                    const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                    int depth, const uint8_t *buf_end, sy__pb_stats_t *stats, bool *merges)
{
    walk_t w = {.end = buf_end};
    if (request)
        item_descriptors(request, w.item);
    else
        memset(w.item, 0, sizeof(w.item));
    pthread_once(&schemas_once, schemas_init);
    for (int i = 0; i < 4 && w.item[i]; i++) {
        const pb_schema_t *s = schema_find(w.item[i]);
        if (s) w.item_mask |= (uint64_t)1 << s->index;
    }
    int64_t n = walk_plain(&w, schema_find(desc), desc, data, len, depth);
    if (stats) {
        stats->items = n < 0 ? 0 : (uint64_t)n;
        stats->occurrences = w.occ;
    }
    if (merges) *merges = w.merges;
    return n < 0 ? -1 : 0;
}

int sy__pb_validate(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                    uint64_t *items, char *err, size_t err_len)
{
    sy__pb_stats_t st;
    int rc = sy__pb_walk(desc, data, len, false, &st, err, err_len);
    if (items) *items = st.items;
    return rc;
}
