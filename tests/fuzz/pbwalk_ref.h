/*
 * pbwalk_ref.h - the wire walk of core/pbwalk.c as it was before it was made
 * fast (commit 70819bf), kept as a reference oracle: ref_pb_walk() must make the
 * same accept/reject decision, count the same items and compute the same
 * decoded-size bound as sy__pb_walk() for every input. Straightforward rather
 * than fast: per tag a field lookup, a wire-type switch and tests of the field's
 * type, label and flags, and the estimate's counts kept whether asked for or not.
 * Included by the unit test and the fuzz target; everything here is static.
 */
#ifndef SY_TEST_PBWALK_REF_H
#define SY_TEST_PBWALK_REF_H

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "batch.h"
#include "opentelemetry/proto/logs/v1/logs.pb-c.h"
#include "utf8.h"
#include "opentelemetry/proto/metrics/v1/metrics.pb-c.h"
#include "opentelemetry/proto/trace/v1/trace.pb-c.h"

/*
 * Field lookup by number is the walk's hottest step (a binary search per tag in
 * protobuf-c). OTLP's field numbers are small, so every message type reachable
 * from the three export requests gets a table indexed by field number, holding
 * the field and, for a message field, the table of its type. The tables are built
 * once (pthread_once) and read-only afterwards. Larger field numbers, and types
 * not reached from the requests, fall back to protobuf-c's search.
 */
#define REF_PB_FAST_FIELDS 32
#define REF_PB_MAX_SCHEMAS 64

typedef struct ref_schema_s ref_schema_t;
struct ref_schema_s {
    const ProtobufCMessageDescriptor *desc;
    const ProtobufCFieldDescriptor *field[REF_PB_FAST_FIELDS];
    const ref_schema_t *sub[REF_PB_FAST_FIELDS];
};

static ref_schema_t ref_schemas[REF_PB_MAX_SCHEMAS];
static size_t ref_nschemas;
static size_t ref_max_sizeof_message; /* of every type reached (4096 if the table filled) */
static pthread_once_t ref_schemas_once = PTHREAD_ONCE_INIT;

static const ref_schema_t *ref_schema_find(const ProtobufCMessageDescriptor *d)
{
    for (size_t i = 0; i < ref_nschemas; i++)
        if (ref_schemas[i].desc == d) return &ref_schemas[i];
    return NULL;
}

/* Adds d and, depth first, every message type it reaches (while room lasts). */
static ref_schema_t *ref_schema_add(const ProtobufCMessageDescriptor *d)
{
    ref_schema_t *s = (ref_schema_t *)ref_schema_find(d);
    if (s) return s;
    if (ref_nschemas == REF_PB_MAX_SCHEMAS) return NULL;
    s = &ref_schemas[ref_nschemas++];
    s->desc = d;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->id >= REF_PB_FAST_FIELDS) continue;
        s->field[f->id] = f;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) s->sub[f->id] = ref_schema_add(f->descriptor);
    }
    return s;
}

static void ref_schemas_init(void)
{
    for (int sig = SY_SIGNAL_TRACES; sig <= SY_SIGNAL_LOGS; sig <<= 1)
        ref_schema_add(sy__signal_request_descriptor((sy_signal_t)sig));
    for (size_t i = 0; i < ref_nschemas; i++)
        if (ref_schemas[i].desc->sizeof_message > ref_max_sizeof_message)
            ref_max_sizeof_message = ref_schemas[i].desc->sizeof_message;
    if (ref_nschemas == REF_PB_MAX_SCHEMAS) ref_max_sizeof_message = 4096;
}

typedef struct ref_walk_s {
    const ProtobufCMessageDescriptor *item[4]; /* messages that count as items */
    bool estimate;                             /* compute `mem`; otherwise only note `merges` */
    bool merges;  /* a singular message field occurred twice in one message */
    uint64_t mem; /* what protobuf_c_message_unpack() would allocate (see below) */
    char *err;
    size_t err_len;
} ref_walk_t;

/* Reads a varint of at most `limit` bytes; returns the bytes used, or 0 if it is
 * truncated or longer. protobuf-c reads values with up to 10 bytes, but tags and
 * length prefixes with up to 5, and refuses longer ones: so must we. */
static size_t ref_read_varint_max(const uint8_t *p, size_t len, size_t limit, uint64_t *out)
{
    if (len && p[0] < 0x80) { /* most tags and lengths fit in one byte */
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

static size_t ref_read_varint(const uint8_t *p, size_t len, uint64_t *out)
{
    return ref_read_varint_max(p, len, 10, out);
}

/* The wire type a scalar field of `type` is written with when not packed. */
static int ref_wire_type_of(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL:
    case PROTOBUF_C_TYPE_ENUM:
        return 0;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    default:
        return 2;
    }
}

static int ref_fail(ref_walk_t *w, const ProtobufCMessageDescriptor *desc, const char *what,
                    uint32_t field)
{
    if (w->err && w->err_len)
        snprintf(w->err, w->err_len, "malformed protobuf in %s: %s (field %u)", desc->name, what,
                 field);
    return -1;
}

static int ref_fail_utf8(ref_walk_t *w, const ProtobufCMessageDescriptor *desc,
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
 * The walk charges every occurrence REF_PB_PER_FIELD (an array element, a record,
 * rounding) plus the length of what is copied, so the estimate is an upper
 * bound, not a guess, and costs one add per string in the loop.
 */
#define REF_PB_ROUND16(n)     (((uint64_t)(n) + 15) & ~(uint64_t)15)
#define REF_PB_SCAN_ON_STACK  16
#define REF_PB_SCAN_PER_FIELD 64
#define REF_PB_PER_FIELD      48
#define REF_PB_ESTIMATE_CAP   ((uint64_t)1 << 60) /* far past any bound */

/*
 * Whether the string s[0..n) is UTF-8, knowing that `room` bytes from s are
 * readable (the rest of the enclosing message). Most OTLP strings are short
 * ASCII keys and values: a string of at most 16 bytes with 16 readable is
 * checked with one unaligned 16-byte load and a mask, without a branch on its
 * length; anything else goes to syc_utf8_valid().
 */
static inline bool ref_string_is_utf8(const uint8_t *s, size_t n, size_t room)
{
#if defined(__SSE2__)
    if (n <= 16 && room >= 16) {
        unsigned high = (unsigned)_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)s));
        if (!(high & (unsigned)((1u << n) - 1))) return true;
    }
#else
    (void)room;
#endif
    return syc_utf8_valid(s, n);
}

/* A packed array of scalars must hold whole elements. Adds its decoded size to
 * the estimate. Returns 0 or -1. */
static int ref_check_packed(ref_walk_t *w, const ProtobufCMessageDescriptor *desc,
                            const ProtobufCFieldDescriptor *f, const uint8_t *p, size_t len)
{
    int wt = ref_wire_type_of(f->type);
    if (wt == 1 && len % 8)
        return ref_fail(w, desc, "packed 64-bit array of partial length", f->id);
    if (wt == 5 && len % 4)
        return ref_fail(w, desc, "packed 32-bit array of partial length", f->id);
    if (wt == 0) {
        size_t off = 0, n_elems = 0;
        while (off < len) {
            uint64_t v;
            size_t n = ref_read_varint(p + off, len - off, &v);
            if (!n) return ref_fail(w, desc, "bad varint in packed array", f->id);
            off += n;
            n_elems++;
        }
        if (w->estimate) w->mem += 8 * (uint64_t)n_elems; /* elements widen to 8 */
    }
    return 0;
}

/*
 * Walks one message; adds the items in it to *items. Items are counted as
 * protobuf-c will decode them: a field of a oneof that occurs more than once
 * (the same member again, or another member) replaces what came before, so only
 * the last occurrence of each oneof counts; a repeated field, and a singular
 * message field that protobuf-c merges, count every occurrence.
 */
static int ref_walk_message(ref_walk_t *w, const ref_schema_t *schema,
                            const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
                            int depth, uint64_t *items)
{
    if (depth > SY__PB_MAX_DEPTH) return ref_fail(w, desc, "nesting too deep", 0);
    uint64_t total = 0;
    for (int i = 0; i < 4 && w->item[i]; i++)
        if (w->item[i] == desc) total++;
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
    uint64_t mem_at_start = w->mem;
    uint64_t occurrences = 0, copied = 0;
    const bool estimate = w->estimate;

    size_t off = 0;
    while (off < len) {
        occurrences++;
        uint64_t key;
        size_t n = ref_read_varint_max(p + off, len - off, 5, &key);
        if (!n) return ref_fail(w, desc, "truncated or overlong tag", 0);
        off += n;
        uint32_t field = (uint32_t)(key >> 3);
        int wt = (int)(key & 7);
        if (key >> 3 > 0x1fffffff || field == 0)
            return ref_fail(w, desc, "invalid field number", 0);

        const uint8_t *val = p + off;
        size_t vlen = 0;
        switch (wt) {
        case 0: {
            uint64_t v;
            n = ref_read_varint(val, len - off, &v);
            if (!n) return ref_fail(w, desc, "truncated varint", field);
            off += n;
            break;
        }
        case 1:
            if (len - off < 8) return ref_fail(w, desc, "truncated fixed64", field);
            off += 8;
            break;
        case 5:
            if (len - off < 4) return ref_fail(w, desc, "truncated fixed32", field);
            off += 4;
            break;
        case 2: {
            uint64_t l;
            n = ref_read_varint_max(val, len - off, 5, &l);
            if (!n) return ref_fail(w, desc, "truncated or overlong length", field);
            if (l > INT_MAX) return ref_fail(w, desc, "length over 2 GiB", field);
            off += n;
            if (l > len - off)
                return ref_fail(w, desc, "length past the end of the message", field);
            val = p + off;
            vlen = (size_t)l;
            off += vlen;
            break;
        }
        default:
            return ref_fail(w, desc, "unsupported wire type", field);
        }

        const ProtobufCFieldDescriptor *f;
        const ref_schema_t *sub;
        if (schema && field < REF_PB_FAST_FIELDS) {
            f = schema->field[field];
            sub = schema->sub[field];
        } else {
            f = protobuf_c_message_descriptor_get_field(desc, field);
            sub = f && f->type == PROTOBUF_C_TYPE_MESSAGE ? ref_schema_find(f->descriptor) : NULL;
        }
        if (!f) {                /* unknown fields are kept by protobuf-c and skipped here */
            copied += vlen + 16; /* the copy includes the length prefix (<= 5 bytes) */
            continue;
        }
        int want = ref_wire_type_of(f->type);
        if (wt == want) {
            if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
                copied += vlen; /* 0 but for strings and bytes */
                if (f->type == PROTOBUF_C_TYPE_STRING &&
                    !ref_string_is_utf8(val, vlen, (size_t)(p + len - val)))
                    return ref_fail_utf8(w, desc, f);
                continue;
            }
            uint64_t subitems = 0;
            if (ref_walk_message(w, sub, f->descriptor, val, vlen, depth + 1, &subitems) < 0)
                return -1;
            if (f->label != PROTOBUF_C_LABEL_REPEATED) {
                /* A singular message field (a oneof member too) given again is
                 * merged into what came before: protobuf-c allocates every repeated
                 * array of both anew, and never frees into an arena. The earlier
                 * occurrences cost at most what this message has cost so far, so
                 * that is charged again: a field repeated many times grows the
                 * estimate at least quadratically, and the bound refuses it.
                 * Encoders never repeat a singular field, so this costs nothing
                 * but a bit test on real traffic. */
                uint64_t bit = (uint64_t)1 << (field < 63 ? field : 63);
                if (singles_seen & bit) {
                    bool oneof = false;
                    const ProtobufCMessageDescriptor *fd = f->descriptor;
                    for (unsigned i = 0; i < fd->n_fields; i++)
                        if (fd->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) oneof = true;
                    if (field < 63 && oneof)
                        return ref_fail(w, desc,
                                        "a singular field holding a oneof given more than once",
                                        field);
                    w->merges = true;
                    if (estimate && w->mem < REF_PB_ESTIMATE_CAP)
                        w->mem += w->mem - mem_at_start; /* doubles: capped, never wraps */
                }
                singles_seen |= bit;
            }
            if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)) {
                total += subitems;
                continue;
            }
            size_t k = 0;
            while (k < noneofs && oneofs[k].qoff != f->quantifier_offset)
                k++;
            if (k == noneofs) {
                if (noneofs == sizeof(oneofs) / sizeof(oneofs[0]))
                    return ref_fail(w, desc, "too many oneofs", field);
                oneofs[noneofs++].qoff = f->quantifier_offset;
            }
            oneofs[k].items = subitems; /* the last occurrence replaces the earlier ones */
            continue;
        }
        /* A repeated scalar may also arrive packed. */
        if (wt == 2 && f->label == PROTOBUF_C_LABEL_REPEATED && want != 2) {
            copied += vlen;
            if (ref_check_packed(w, desc, f, val, vlen) < 0) return -1;
            continue;
        }
        return ref_fail(w, desc, "wire type does not match the field's type", field);
    }
    for (size_t k = 0; k < noneofs; k++)
        total += oneofs[k].items;
    *items += total;
    if (estimate) {
        w->mem += REF_PB_ROUND16(desc->sizeof_message) + copied + REF_PB_PER_FIELD * occurrences;
        if (occurrences > REF_PB_SCAN_ON_STACK) w->mem += REF_PB_SCAN_PER_FIELD * occurrences;
    }
    return 0;
}

static void ref_item_descriptors(const ProtobufCMessageDescriptor *desc,
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

static int ref_pb_walk(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                       bool estimate, sy__pb_stats_t *stats, char *err, size_t err_len)
{
    ref_walk_t w = {.err = err, .err_len = err_len, .estimate = estimate};
    ref_item_descriptors(desc, w.item);
    uint64_t n = 0;
    pthread_once(&ref_schemas_once, ref_schemas_init);
    int rc = ref_walk_message(&w, ref_schema_find(desc), desc, data, len, 0, &n);
    if (stats) {
        stats->items = rc == 0 ? n : 0;
        stats->decoded_exact = estimate;
        if (rc != 0)
            stats->decoded_bytes = 0;
        else if (estimate)
            stats->decoded_bytes = w.mem;
        else if (w.merges)
            stats->decoded_bytes = UINT64_MAX; /* unknown: walk again with the estimate */
        else
            /* Every field occurrence takes at least 2 bytes on the wire and costs
             * at most a struct, its per-field charge, its scan record and 16
             * bytes of copy overhead; every other byte copied costs one. */
            stats->decoded_bytes =
                (uint64_t)len * ((REF_PB_ROUND16(ref_max_sizeof_message) + REF_PB_PER_FIELD +
                                  REF_PB_SCAN_PER_FIELD + 16 + 1) /
                                 2) +
                REF_PB_ROUND16(desc->sizeof_message);
    }
    return rc;
}

/*
 * Walks data[0..len) as a `desc` with sy__pb_walk() and with the reference, with
 * and without the estimate, and compares the answer, the items, the decoded-size
 * bound and the error sentence. Returns NULL if they all agree, or what differs.
 */
static const char *pbwalk_differs(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                                  size_t len)
{
    /* The plain walk takes shortcuts (the attribute fast path) that the estimating
     * walk does not: both must count the same field occurrences, which bound the
     * decoded size of what the receivers accept. */
    sy__pb_stats_t plain, est;
    int rp = sy__pb_walk(desc, data, len, false, &plain, NULL, 0);
    int re = sy__pb_walk(desc, data, len, true, &est, NULL, 0);
    if (rp != re) return "accept/reject, plain and estimating walks";
    if (rp == 0 && plain.occurrences != est.occurrences) return "occurrences";
    for (int estimate = 0; estimate < 2; estimate++) {
        sy__pb_stats_t a, b;
        char ea[256] = "", eb[256] = "";
        int ra = sy__pb_walk(desc, data, len, estimate, &a, ea, sizeof(ea));
        int rb = ref_pb_walk(desc, data, len, estimate, &b, eb, sizeof(eb));
        if (ra != rb) return "accept/reject";
        if (a.items != b.items) return "items";
        if (a.decoded_bytes != b.decoded_bytes) return "decoded_bytes";
        if (a.decoded_exact != b.decoded_exact) return "decoded_exact";
        if (strcmp(ea, eb) != 0) return "error sentence";
    }
    return NULL;
}

#endif
