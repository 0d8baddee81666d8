/*
 * test_otlp_json_wire.c - the wire-based OTLP/JSON codec
 * (plugins/common/otlp_json_{decode,encode,map}.c):
 *  - differential: random requests of all three signals, generated field by
 *    field from the descriptors (every AnyValue kind, histograms, exponential
 *    histograms, summaries, events, links, status...), packed by protobuf-c:
 *    syc_otlp_json_from_wire() of the bytes equals the struct encoder this
 *    replaced (tests/unit/otlp_json_ref.h) byte for byte, and
 *    syc_otlp_json_to_wire() of that JSON gives back protobuf-c's bytes;
 *  - strings byte for byte both ways: NUL, multi-byte UTF-8, control
 *    characters, empty and very long strings, bytes fields;
 *  - wire that no encoder writes but protobuf-c reads: fields out of order, a
 *    singular field twice, a message field twice (merged), oneof members
 *    replacing each other, packed and unpacked runs, unknown fields; and wire
 *    that protobuf-c refuses;
 *  - a JSON key given twice.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_json.h"
#include "otlp_json_ref.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define TRACE_REQ_DESC \
    (&opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor)
#define METRICS_REQ_DESC \
    (&opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor)
#define LOGS_REQ_DESC \
    (&opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor)

/* ------------------------------------------------------------------------ */
/* An arena for generated messages: every block freed at the end of a test   */
/* ------------------------------------------------------------------------ */

typedef struct rec_s {
    void **ptrs;
    size_t n, cap;
} rec_t;

static rec_t g_rec;

static void *rec_alloc(void *data, size_t size)
{
    rec_t *r = data;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        void **p = realloc(r->ptrs, cap * sizeof(*p));
        assert_non_null(p);
        r->ptrs = p;
        r->cap = cap;
    }
    void *m = calloc(1, size ? size : 1);
    assert_non_null(m);
    r->ptrs[r->n++] = m;
    return m;
}

static void rec_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

static ProtobufCAllocator g_alloc = {rec_alloc, rec_free, &g_rec};

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_rec.n; i++)
        free(g_rec.ptrs[i]);
    free(g_rec.ptrs);
    memset(&g_rec, 0, sizeof(g_rec));
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Random messages from descriptors                                          */
/* ------------------------------------------------------------------------ */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static unsigned pick(unsigned n)
{
    return (unsigned)(rnd() % n);
}

/* Appends the UTF-8 of code point cp. */
static size_t put_cp(char *p, uint32_t cp)
{
    if (cp < 0x80) {
        p[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (char)(0xc0 | cp >> 6);
        p[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (char)(0xe0 | cp >> 12);
        p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        p[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    p[0] = (char)(0xf0 | cp >> 18);
    p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    p[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A random valid UTF-8 string without NUL (the struct form cannot hold one):
 * ASCII, JSON's specials, control characters, 2-, 3- and 4-byte sequences. */
static char *gen_string(void)
{
    unsigned n = pick(8) == 0 ? 0 : pick(24);
    char *s = rec_alloc(&g_rec, (size_t)n * 4 + 1);
    size_t k = 0;
    for (unsigned i = 0; i < n; i++) {
        uint32_t cp;
        switch (pick(8)) {
        case 0:
            cp = 1 + pick(0x1f); /* control characters */
            break;
        case 1:
            cp = "\"\\/\x7f"[pick(4)];
            break;
        case 2:
            cp = 0x80 + pick(0x780);
            break;
        case 3:
            cp = 0x800 + pick(0xd800 - 0x800);
            break;
        case 4:
            cp = 0x10000 + pick(0x100000);
            break;
        default:
            cp = 0x20 + pick(0x5f);
            break;
        }
        k += put_cp(s + k, cp);
    }
    s[k] = '\0';
    return s;
}

static double gen_double(bool may_be_negative_zero)
{
    static const double pool[] = {0.0,      1.0,        -1.5, 0.1,    1e300,    -1e-300,
                                  4.9e-324, 123456.789, 1e21, 3.0e-5, 1.0 / 3.0};
    switch (pick(6)) {
    case 0:
        return NAN;
    case 1:
        return pick(2) ? INFINITY : -INFINITY;
    case 2:
        return may_be_negative_zero ? -0.0 : 0.0;
    case 3: {
        uint64_t bits = rnd();
        double d;
        memcpy(&d, &bits, 8);
        if (isnan(d)) d = 2.5;
        return d;
    }
    default:
        return pool[pick(sizeof(pool) / sizeof(pool[0]))];
    }
}

static uint64_t gen_u64(void)
{
    switch (pick(4)) {
    case 0:
        return 0;
    case 1:
        return pick(300);
    case 2:
        return UINT64_MAX - pick(3);
    default:
        return rnd() >> pick(64);
    }
}

static void gen_message(ProtobufCMessage *m, const ProtobufCMessageDescriptor *desc, int depth);

/* One value of field f at slot. `implicit`: a field without presence (-0.0
 * would differ there: the struct encoder writes it, pack leaves it out). */
static void gen_value(const ProtobufCFieldDescriptor *f, void *slot, int depth, bool implicit)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)slot = (uint32_t)gen_u64();
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        *(int *)slot = pick(4) ? e->values[pick(e->n_values)].value : (int)(int32_t)rnd();
        break;
    }
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)slot = gen_u64();
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)slot = (float)gen_double(!implicit);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)slot = gen_double(!implicit);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)slot = pick(2);
        break;
    case PROTOBUF_C_TYPE_STRING:
        *(char **)slot = gen_string();
        break;
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *bd = slot;
        size_t id = ref_hex_id_size(f);
        size_t n = id ? (pick(5) ? id : 0) : pick(20);
        bd->len = n;
        bd->data = NULL; /* empty bytes: NULL, as unpack gives them */
        if (n) {
            bd->data = rec_alloc(&g_rec, n);
            for (size_t i = 0; i < n; i++)
                bd->data[i] = (uint8_t)rnd();
        }
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessageDescriptor *sd = f->descriptor;
        ProtobufCMessage *sub = rec_alloc(&g_rec, sd->sizeof_message);
        gen_message(sub, sd, depth + 1);
        *(ProtobufCMessage **)slot = sub;
        break;
    }
    }
}

static void gen_message(ProtobufCMessage *m, const ProtobufCMessageDescriptor *desc, int depth)
{
    protobuf_c_message_init(desc, m);
    unsigned oneofs_done[8];
    size_t noneofs = 0;
    for (unsigned i = 0; i < desc->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc->fields[i];
        char *base = (char *)m;
        bool deep = f->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 7;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            bool done = false;
            for (size_t k = 0; k < noneofs; k++)
                done |= oneofs_done[k] == f->quantifier_offset;
            if (done) continue;
            oneofs_done[noneofs++] = f->quantifier_offset;
            /* One member of the oneof, or none. */
            unsigned members = 0;
            for (unsigned j = i; j < desc->n_fields; j++)
                if ((desc->fields[j].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                    desc->fields[j].quantifier_offset == f->quantifier_offset)
                    members++;
            unsigned choice = pick(members + 1);
            if (choice == members) continue;
            for (unsigned j = i; j < desc->n_fields; j++) {
                const ProtobufCFieldDescriptor *g = &desc->fields[j];
                if (!(g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
                    g->quantifier_offset != f->quantifier_offset || choice-- != 0)
                    continue;
                if (g->type == PROTOBUF_C_TYPE_MESSAGE && depth >= 7) break;
                *(uint32_t *)(base + g->quantifier_offset) = g->id;
                gen_value(g, base + g->offset, depth, false);
                break;
            }
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = deep ? 0 : pick(4);
            size_t esize = ref_type_size(f->type);
            *(size_t *)(base + f->quantifier_offset) = n;
            if (!n) continue;
            char *arr = rec_alloc(&g_rec, n * esize);
            *(void **)(base + f->offset) = arr;
            for (size_t k = 0; k < n; k++)
                gen_value(f, arr + k * esize, depth, false);
            continue;
        }
        if (deep || pick(3) == 0) continue;
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
            f->type != PROTOBUF_C_TYPE_STRING)
            *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
        gen_value(f, base + f->offset, depth, f->label == PROTOBUF_C_LABEL_NONE);
    }
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = rec_alloc(&g_rec, *len);
    assert_int_equal(protobuf_c_message_pack(m, buf), *len);
    return buf;
}

static void dump(const char *what, const void *p, size_t n)
{
    fprintf(stderr, "%s (%zu):", what, n);
    for (size_t i = 0; i < n && i < 400; i++)
        fprintf(stderr, " %02x", ((const uint8_t *)p)[i]);
    fprintf(stderr, "\n");
}

/* ------------------------------------------------------------------------ */
/* Differential                                                              */
/* ------------------------------------------------------------------------ */

static void differential(const ProtobufCMessageDescriptor *desc, int rounds)
{
    for (int r = 0; r < rounds; r++) {
        ProtobufCMessage *m = rec_alloc(&g_rec, desc->sizeof_message);
        gen_message(m, desc, 0);
        size_t wlen, rlen, jlen, w2len;
        uint8_t *wire = pack(m, &wlen);
        char *ref = ref_otlp_json_encode(m, &rlen);
        assert_non_null(ref);
        unsigned merges = 99;
        char *json = syc_otlp_json_from_wire(desc, wire, wlen, &jlen, &merges);
        assert_non_null(json);
        assert_int_equal(merges, 0);
        if (jlen != rlen || memcmp(json, ref, rlen) != 0)
            fail_msg("round %d of %s: from_wire differs\nref: %s\nnew: %s", r, desc->name, ref,
                     json);
        char err[256];
        uint8_t *w2 = syc_otlp_json_to_wire(desc, (const uint8_t *)json, jlen, NULL, &w2len, err,
                                            sizeof(err));
        if (!w2) fail_msg("round %d of %s: to_wire refused %s: %s", r, desc->name, json, err);
        if (w2len != wlen || memcmp(w2, wire, wlen) != 0) {
            dump("pack", wire, wlen);
            dump("to_wire", w2, w2len);
            fail_msg("round %d of %s: to_wire differs from pack for %s", r, desc->name, json);
        }
        free(w2);
        free(json);
        free(ref);
    }
}

static void test_differential(void **state)
{
    (void)state;
    differential(TRACE_REQ_DESC, 400);
    differential(METRICS_REQ_DESC, 400);
    differential(LOGS_REQ_DESC, 400);
}

/* ------------------------------------------------------------------------ */
/* Strings and bytes, byte for byte                                          */
/* ------------------------------------------------------------------------ */

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;

/* A logs request whose one record has body stringValue s[0..n), built on the
 * wire by hand (structs cannot hold a NUL). */
static size_t logs_with_body(uint8_t *out, const void *s, size_t n, int value_field)
{
    /* AnyValue{value_field: s} in LogRecord.body (5) in ScopeLogs.log_records (2)
     * in ResourceLogs.scope_logs (2) in request.resource_logs (1). */
    uint8_t tmp[4][64];
    size_t sizes[4];
    uint8_t *body = malloc(n + 64);
    size_t k = 0;
    body[k++] = (uint8_t)(value_field << 3 | 2);
    uint64_t v = n;
    do {
        body[k++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        v >>= 7;
    } while (v);
    memcpy(body + k, s, n);
    k += n;
    static const uint8_t tags[4] = {5 << 3 | 2, 2 << 3 | 2, 2 << 3 | 2, 1 << 3 | 2};
    size_t inner = k;
    for (int lvl = 0; lvl < 4; lvl++) {
        size_t h = 0;
        tmp[lvl][h++] = tags[lvl];
        v = inner;
        do {
            tmp[lvl][h++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
            v >>= 7;
        } while (v);
        sizes[lvl] = h;
        inner += h;
    }
    size_t o = 0;
    for (int lvl = 3; lvl >= 0; lvl--) {
        memcpy(out + o, tmp[lvl], sizes[lvl]);
        o += sizes[lvl];
    }
    memcpy(out + o, body, k);
    o += k;
    free(body);
    return o;
}

static const char logs_prefix[] =
    "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{\"stringValue\":";
static const char logs_suffix[] = "}}]}]}]}";

/* String s[0..n) in a log body: from_wire writes JSON string `want` (with its
 * quotes), to_wire of that gives the same bytes back. */
static void string_both_ways(const void *s, size_t n, const char *want)
{
    uint8_t *wire = malloc(n + 128);
    size_t wlen = logs_with_body(wire, s, n, 1);
    size_t jlen;
    char *json = syc_otlp_json_from_wire(LOGS_REQ_DESC, wire, wlen, &jlen, NULL);
    assert_non_null(json);
    size_t want_len = strlen(logs_prefix) + strlen(want) + strlen(logs_suffix);
    char *expect = malloc(want_len + 1);
    snprintf(expect, want_len + 1, "%s%s%s", logs_prefix, want, logs_suffix);
    if (jlen != want_len || memcmp(json, expect, jlen) != 0)
        fail_msg("from_wire: expected %.200s, got %.200s", expect, json);
    char err[256];
    size_t w2len;
    uint8_t *w2 =
        syc_otlp_json_to_wire(LOGS_REQ_DESC, (const uint8_t *)json, jlen, NULL, &w2len, err, 256);
    if (!w2) fail_msg("to_wire: %s", err);
    assert_int_equal(w2len, wlen);
    assert_memory_equal(w2, wire, wlen);
    free(w2);
    free(expect);
    free(json);
    free(wire);
}

#define MB "h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80"

static void test_strings(void **state)
{
    (void)state;
    string_both_ways("a\0b", 3, "\"a\\u0000b\"");
    string_both_ways("\0", 1, "\"\\u0000\"");
    string_both_ways("\0\0x\0", 4, "\"\\u0000\\u0000x\\u0000\"");
    string_both_ways("", 0, "\"\""); /* a oneof member: kept even empty */
    string_both_ways(MB, sizeof(MB) - 1,
                     "\"h\xc3\xa9llo \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80\"");
    string_both_ways("\x01\x1f\t\n\r\b\f\x7f", 8, "\"\\u0001\\u001f\\t\\n\\r\\u0008\\u000c\x7f\"");
    string_both_ways("q\"b\\s/", 6, "\"q\\\"b\\\\s/\"");
    string_both_ways("\xe2\x80\xa8\xef\xbb\xbf", 6, "\"\xe2\x80\xa8\xef\xbb\xbf\"");

    /* A very long string, NULs spread through it. */
    size_t n = (size_t)3 << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)(i % 4099 == 0 ? 0 : 'a' + i % 26);
    char *want = malloc(n * 6 + 3);
    size_t k = 0;
    want[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (big[i]) {
            want[k++] = big[i];
        } else {
            memcpy(want + k, "\\u0000", 6);
            k += 6;
        }
    }
    want[k++] = '"';
    want[k] = '\0';
    string_both_ways(big, n, want);
    free(want);
    free(big);

    /* Bytes: base64, every byte value; an empty bytesValue (a oneof member). */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    uint8_t wire[600];
    size_t wlen = logs_with_body(wire, all, sizeof(all), 7);
    size_t jlen;
    char *json = syc_otlp_json_from_wire(LOGS_REQ_DESC, wire, wlen, &jlen, NULL);
    assert_non_null(json);
    assert_non_null(strstr(json, "{\"bytesValue\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBka"));
    char err[256];
    size_t w2len;
    uint8_t *w2 =
        syc_otlp_json_to_wire(LOGS_REQ_DESC, (const uint8_t *)json, jlen, NULL, &w2len, err, 256);
    assert_non_null(w2);
    assert_int_equal(w2len, wlen);
    assert_memory_equal(w2, wire, wlen);
    free(w2);
    free(json);
    wlen = logs_with_body(wire, "", 0, 7);
    json = syc_otlp_json_from_wire(LOGS_REQ_DESC, wire, wlen, &jlen, NULL);
    assert_string_equal(json, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":{"
                              "\"bytesValue\":\"\"}}]}]}]}");
    free(json);

    /* Not UTF-8 on the wire: replaced by U+FFFD in JSON (the receivers refuse
     * such strings; a processor could still write one). */
    wlen = logs_with_body(wire, "a\xff\xc3", 3, 1);
    json = syc_otlp_json_from_wire(LOGS_REQ_DESC, wire, wlen, &jlen, NULL);
    assert_non_null(strstr(json, "\"a\xef\xbf\xbd\xef\xbf\xbd\""));
    free(json);
}

/* JSON -> wire keeps what the struct decoder cut: a key, a span name and an
 * attribute value with NULs, as protobuf-c would pack them were they whole. */
static void test_json_nul_to_wire(void **state)
{
    (void)state;
    const char *json =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\\u0000b\","
        "\"attributes\":[{\"key\":\"k\\u0000\",\"value\":{\"stringValue\":\"\\u0000v\"}}]}]}]}]}";
    char err[256];
    size_t n;
    uint8_t *w = syc_otlp_json_to_wire(TRACE_REQ_DESC, (const uint8_t *)json, strlen(json), NULL,
                                       &n, err, sizeof(err));
    assert_non_null(w);
    /* Request{1: ResourceSpans{2: ScopeSpans{2: Span{name(5)="a\0b",
     * attributes(9)=KeyValue{key(1)="k\0", value(2)=AnyValue{1: "\0v"}}}}}} */
    static const uint8_t want[] = {0x0a, 21,   0x12, 19,  0x12, 17,   0x2a, 3,    'a', 0, 'b', 0x4a,
                                   10,   0x0a, 2,    'k', 0,    0x12, 4,    0x0a, 2,   0, 'v'};
    assert_int_equal(n, sizeof(want));
    assert_memory_equal(w, want, sizeof(want));
    size_t jlen;
    char *back = syc_otlp_json_from_wire(TRACE_REQ_DESC, w, n, &jlen, NULL);
    assert_string_equal(back, json);
    free(back);
    free(w);

    /* Into an allocator: one block from it. */
    size_t before = g_rec.n;
    w = syc_otlp_json_to_wire(TRACE_REQ_DESC, (const uint8_t *)json, strlen(json), &g_alloc, &n,
                              err, sizeof(err));
    assert_non_null(w);
    assert_int_equal(g_rec.n, before + 1);
    assert_memory_equal(w, want, sizeof(want));
}

/* ------------------------------------------------------------------------ */
/* Wire that encoders do not write                                           */
/* ------------------------------------------------------------------------ */

/* from_wire(wire) equals the reference encoder of protobuf-c's unpack. */
static void like_unpack(const ProtobufCMessageDescriptor *desc, const uint8_t *wire, size_t n,
                        unsigned want_merges)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &g_alloc, n, wire);
    assert_non_null(m);
    size_t rlen, jlen;
    char *ref = ref_otlp_json_encode(m, &rlen);
    unsigned merges;
    char *json = syc_otlp_json_from_wire(desc, wire, n, &jlen, &merges);
    assert_non_null(json);
    if (strcmp(ref, json) != 0) fail_msg("ref: %s\nnew: %s", ref, json);
    assert_int_equal(merges, want_merges);
    free(ref);
    free(json);
}

static void test_unusual_wire(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *span = &opentelemetry__proto__trace__v1__span__descriptor;
    const ProtobufCMessageDescriptor *any =
        &opentelemetry__proto__common__v1__any_value__descriptor;
    const ProtobufCMessageDescriptor *hdp =
        &opentelemetry__proto__metrics__v1__histogram_data_point__descriptor;
    /* Out of order; name twice (last wins); kind twice, the last 0 (left out). */
    static const uint8_t w1[] = {0x30, 2, 0x2a, 1, 'x', 0x12, 8, 1,   2,    3,
                                 4,    5, 6,    7, 8,   0x2a, 1, 'y', 0x30, 0};
    like_unpack(span, w1, sizeof(w1), 0);
    /* status (15) twice: merged as protobuf defines it (code from the first,
     * message from the second); protobuf-c 1.4's own merge takes a field without
     * presence from the later occurrence even when it does not hold it (code 0
     * here), which is the one place where the two differ. attributes (9) split
     * by another field; an unknown field (99, varint). */
    static const uint8_t w2[] = {0x7a, 2, 0x18, 2,    0x4a, 3,    0x0a, 1,   'a',
                                 0x2a, 1, 'n',  0x4a, 3,    0x0a, 1,    'b', 0x98,
                                 0x06, 7, 0x7a, 3,    0x12, 1,    'm'};
    size_t jlen;
    unsigned merges;
    char *json = syc_otlp_json_from_wire(span, w2, sizeof(w2), &jlen, &merges);
    assert_string_equal(json, "{\"name\":\"n\",\"attributes\":[{\"key\":\"a\"},{\"key\":\"b\"}],"
                              "\"status\":{\"message\":\"m\",\"code\":2}}");
    assert_int_equal(merges, 1);
    free(json);
    /* The same without the code: protobuf-c agrees. */
    static const uint8_t w2b[] = {0x7a, 2, 0x12, 0,    0x4a, 3,    0x0a, 1,   'a',
                                  0x2a, 1, 'n',  0x4a, 3,    0x0a, 1,    'b', 0x98,
                                  0x06, 7, 0x7a, 3,    0x12, 1,    'm'};
    like_unpack(span, w2b, sizeof(w2b), 1);
    /* AnyValue: string, then int, then string again: the last string only. */
    static const uint8_t w3[] = {0x0a, 1, 'a', 0x18, 5, 0x0a, 1, 'b'};
    like_unpack(any, w3, sizeof(w3), 0);
    /* AnyValue: kvlist twice (merged), an int between the two: the last only. */
    static const uint8_t w4[] = {0x32, 5,    0x0a, 3,    0x0a, 1,    'a', 0x18,
                                 1,    0x32, 5,    0x0a, 3,    0x0a, 1,   'b'};
    like_unpack(any, w4, sizeof(w4), 0);
    static const uint8_t w5[] = {0x32, 5, 0x0a, 3, 0x0a, 1, 'a', 0x32, 5, 0x0a, 3, 0x0a, 1, 'b'};
    like_unpack(any, w5, sizeof(w5), 0); /* a oneof member twice: the last whole */
    /* Histogram bucket_counts (6, fixed64): packed, unpacked, packed; a oneof
     * double (sum, 5) explicitly 0; explicit_bounds (7) empty packed run. */
    static const uint8_t w6[] = {0x32, 8, 1,    0, 0, 0,    0, 0,    0, 0, 0x31, 2, 0, 0,
                                 0,    0, 0,    0, 0, 0x3a, 0, 0x29, 0, 0, 0,    0, 0, 0,
                                 0,    0, 0x32, 8, 3, 0,    0, 0,    0, 0, 0,    0};
    like_unpack(hdp, w6, sizeof(w6), 0);

    /* Refused as protobuf-c refuses them. */
    static const uint8_t bad[][4] = {
        {0x2a, 5, 'a', 0}, /* length past the end */
        {0x28, 0x80, 0, 0} /* kind: varint cut short (3 bytes read) */,
        {0x2d, 1, 0, 0}, /* name with wire type 5 */
        {0x00, 0, 0, 0}, /* field number 0 */
        {0x2b, 0, 0, 0}, /* a group */
    };
    size_t lens[] = {3, 2, 4, 2, 2};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        assert_null(protobuf_c_message_unpack(span, NULL, lens[i], bad[i]));
        assert_null(syc_otlp_json_from_wire(span, bad[i], lens[i], &jlen, NULL));
    }
}

/* A key given twice: a scalar's later value wins, even a default one; arrays
 * append; a later object replaces the earlier one whole. */
static void test_json_duplicate_keys(void **state)
{
    (void)state;
    const char *json =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"a\",\"kind\":3,"
        "\"kind\":0,\"name\":\"\",\"attributes\":[{\"key\":\"x\"}],\"attributes\":["
        "{\"key\":\"y\"}],\"status\":{\"code\":2},\"status\":{\"message\":\"m\"},"
        "\"name\":\"b\"}]}]}]}";
    char err[256];
    size_t n, jlen;
    uint8_t *w = syc_otlp_json_to_wire(TRACE_REQ_DESC, (const uint8_t *)json, strlen(json), NULL,
                                       &n, err, sizeof(err));
    assert_non_null(w);
    char *back = syc_otlp_json_from_wire(TRACE_REQ_DESC, w, n, &jlen, NULL);
    assert_string_equal(back, "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"b\","
                              "\"attributes\":[{\"key\":\"x\"},{\"key\":\"y\"}],\"status\":{"
                              "\"message\":\"m\"}}]}]}]}");
    free(back);
    free(w);

    /* Nested objects replaced, with siblings after them and objects inside
     * them: the bytes left are exactly what protobuf-c packs (found by
     * fuzz_otlp_body: two empty AnyValues for one key made bytes that
     * protobuf-c 1.4 cannot merge). */
    static const char *const dups[][2] = {
        {"{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"value\":{\"x\":1},\"key\":\"k\","
         "\"value\":{}}]}}]}",
         "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":{}}]}}]}"},
        {"{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"value\":{\"kvlistValue\":{"
         "\"values\":[{\"key\":\"a\",\"value\":{\"intValue\":\"1\"}}]}},\"key\":\"k\",\"value\":{"
         "\"arrayValue\":{\"values\":[{\"stringValue\":\"s\"}]}},\"value\":{\"boolValue\":true}}],"
         "\"droppedAttributesCount\":3},\"resource\":{\"droppedAttributesCount\":4},"
         "\"schemaUrl\":\"u\"}]}",
         "{\"resourceLogs\":[{\"resource\":{\"droppedAttributesCount\":4},\"schemaUrl\":\"u\"}]}"},
    };
    for (size_t i = 0; i < sizeof(dups) / sizeof(dups[0]); i++) {
        w = syc_otlp_json_to_wire(LOGS_REQ_DESC, (const uint8_t *)dups[i][0], strlen(dups[i][0]),
                                  NULL, &n, err, sizeof(err));
        if (!w) fail_msg("%s: %s", dups[i][0], err);
        ProtobufCMessage *m = protobuf_c_message_unpack(LOGS_REQ_DESC, &g_alloc, n, w);
        assert_non_null(m);
        size_t plen;
        uint8_t *packed = pack(m, &plen);
        assert_int_equal(plen, n);
        assert_memory_equal(packed, w, n);
        back = syc_otlp_json_from_wire(LOGS_REQ_DESC, w, n, &jlen, NULL);
        assert_string_equal(back, dups[i][1]);
        free(back);
        free(w);
    }
}

/* Errors of the JSON decoder keep their wording (test_otlp_json.c has the rest). */
static void test_errors(void **state)
{
    (void)state;
    char err[256];
    size_t n;
    const char *bad =
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\\ud800\"}]}]}]}";
    assert_null(syc_otlp_json_to_wire(TRACE_REQ_DESC, (const uint8_t *)bad, strlen(bad), NULL, &n,
                                      err, sizeof(err)));
    assert_non_null(strstr(err, "unpaired UTF-16 surrogate escape"));
    bad = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"name\":\"\xc0\xaf\"}]}]}]}";
    assert_null(syc_otlp_json_to_wire(TRACE_REQ_DESC, (const uint8_t *)bad, strlen(bad), NULL, &n,
                                      err, sizeof(err)));
    assert_non_null(strstr(err, "field \"name\": invalid UTF-8"));
    bad = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"0102\"}]}]}]}";
    assert_null(syc_otlp_json_to_wire(TRACE_REQ_DESC, (const uint8_t *)bad, strlen(bad), NULL, &n,
                                      err, sizeof(err)));
    assert_non_null(strstr(err, "\"traceId\": invalid ID: expected 32 hex digits, got 4"));
    assert_null(
        syc_otlp_json_to_wire(TRACE_REQ_DESC, (const uint8_t *)"", 0, NULL, &n, err, sizeof(err)));
    assert_non_null(strstr(err, "invalid JSON"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_differential, teardown),
        cmocka_unit_test_teardown(test_strings, teardown),
        cmocka_unit_test_teardown(test_json_nul_to_wire, teardown),
        cmocka_unit_test_teardown(test_unusual_wire, teardown),
        cmocka_unit_test_teardown(test_json_duplicate_keys, teardown),
        cmocka_unit_test_teardown(test_errors, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
