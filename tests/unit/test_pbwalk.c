/*
 * test_pbwalk.c - the wire walk (core/pbwalk.c) against its reference.
 *
 * The walk decides with per-type tables and a vectorised ASCII test what the
 * straightforward walk of tests/fuzz/pbwalk_ref.h decides with a field search
 * per tag. These tests feed both the fuzz seeds, many mutations of them, and
 * strings with a high bit at every position around the 16-byte block edges, and
 * require the same answer, items, decoded-size bound and error sentence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/pbwalk_ref.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

/* The three requests, a type reached from them, and one that is not (which the
 * walk handles without its tables). */
static const ProtobufCMessageDescriptor *descs[5];

static void descs_init(void)
{
    descs[0] = sy__signal_request_descriptor(SY_SIGNAL_TRACES);
    descs[1] = sy__signal_request_descriptor(SY_SIGNAL_METRICS);
    descs[2] = sy__signal_request_descriptor(SY_SIGNAL_LOGS);
    descs[3] = &opentelemetry__proto__common__v1__any_value__descriptor;
    descs[4] =
        &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor;
}

static void assert_agrees(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++) {
        const char *differs = pbwalk_differs(descs[i], data, len);
        if (differs)
            fail_msg("%s, %zu bytes: walk and reference differ: %s", descs[i]->name, len, differs);
    }
}

/* Every prefix of data[0..len) and every single-byte change (one up, one down,
 * a high byte) agree with the reference. */
static void assert_edits_agree(const uint8_t *data, size_t len)
{
    uint8_t copy[1024];
    assert_true(len <= sizeof(copy));
    for (size_t cut = 0; cut <= len; cut++)
        assert_agrees(data, cut);
    for (size_t i = 0; i < len; i++)
        for (int flip = 0; flip < 3; flip++) {
            memcpy(copy, data, len);
            copy[i] = flip == 0   ? (uint8_t)(copy[i] + 1)
                      : flip == 1 ? (uint8_t)(copy[i] - 1)
                                  : 0xc3;
            assert_agrees(copy, len);
        }
}

typedef struct seed_s {
    uint8_t *data;
    size_t len;
} seed_t;

/* Reads tests/fuzz/corpus/otlp_proto (found from this file's path); the first
 * byte of a seed picks the fuzz target's signal and is dropped. */
static size_t load_seeds(seed_t *seeds, size_t max)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    char *slash = strrchr(dir, '/');
    assert_non_null(slash);
    snprintf(slash, sizeof(dir) - (size_t)(slash - dir), "/../fuzz/corpus/otlp_proto");
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while (n < max && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1400];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        uint8_t buf[65536];
        size_t got = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        if (got < 1) continue;
        seeds[n].len = got - 1;
        seeds[n].data = malloc(got);
        assert_non_null(seeds[n].data);
        memcpy(seeds[n].data, buf + 1, got - 1);
        n++;
    }
    closedir(d);
    assert_true(n >= 3);
    return n;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void test_seeds_agree(void **state)
{
    (void)state;
    seed_t seeds[64];
    size_t n = load_seeds(seeds, 64);
    for (size_t i = 0; i < n; i++) {
        assert_agrees(seeds[i].data, seeds[i].len);
        /* Every prefix: truncation inside every tag, length and string. */
        for (size_t cut = 0; cut < seeds[i].len && cut < 2048; cut++)
            assert_agrees(seeds[i].data, cut);
        free(seeds[i].data);
    }
}

/* Random edits of the seeds: bytes changed (often to a high-bit byte, which
 * breaks UTF-8 or makes a varint longer), slices duplicated (which repeats
 * fields, singular ones too) and removed. */
static void test_mutations_agree(void **state)
{
    (void)state;
    seed_t seeds[64];
    size_t n = load_seeds(seeds, 64);
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    enum { MAX = 1 << 16 };
    uint8_t *buf = malloc(MAX);
    assert_non_null(buf);
    for (int round = 0; round < 30000; round++) {
        const seed_t *s = &seeds[rng_next(&rng) % n];
        size_t len = s->len;
        memcpy(buf, s->data, len);
        int edits = 1 + (int)(rng_next(&rng) % 4);
        for (int e = 0; e < edits && len > 0; e++) {
            size_t at = rng_next(&rng) % len;
            switch (rng_next(&rng) % 5) {
            case 0:
                buf[at] = (uint8_t)rng_next(&rng);
                break;
            case 1:
                buf[at] = (uint8_t)(0x80 | rng_next(&rng));
                break;
            case 2: { /* duplicate a slice in place */
                size_t sl = 1 + rng_next(&rng) % 64;
                if (at + sl > len) sl = len - at;
                if (len + sl > MAX) break;
                memmove(buf + at + sl, buf + at, len - at);
                len += sl;
                break;
            }
            case 3: { /* remove a slice */
                size_t sl = 1 + rng_next(&rng) % 16;
                if (at + sl > len) sl = len - at;
                memmove(buf + at, buf + at + sl, len - at - sl);
                len -= sl;
                break;
            }
            default:
                len = at;
                break;
            }
        }
        assert_agrees(buf, len);
    }
    free(buf);
    for (size_t i = 0; i < n; i++)
        free(seeds[i].data);
}

/*
 * An AnyValue holding one string_value of n bytes, ASCII but for one byte `c` at
 * position k (none if k >= n), followed by `pad` bytes of an unknown varint field
 * (so that the string is, or is not, at the end of the buffer).
 */
static size_t any_value_string(uint8_t *out, size_t n, size_t k, uint8_t c, size_t pad)
{
    size_t o = 0;
    out[o++] = 0x0a; /* field 1 (string_value), length-delimited */
    out[o++] = (uint8_t)n;
    for (size_t i = 0; i < n; i++)
        out[o++] = i == k ? c : (uint8_t)('a' + i % 26);
    for (size_t i = 0; i + 1 < pad; i += 2) {
        out[o++] = 15 << 3; /* field 15, varint: unknown */
        out[o++] = 0;
    }
    return o;
}

static void test_string_edges_agree(void **state)
{
    (void)state;
    static const uint8_t highs[] = {0x80, 0xc3, 0xe2, 0xf0, 0xff};
    uint8_t buf[256];
    for (size_t n = 0; n <= 70; n++)
        for (size_t k = 0; k <= n; k++)
            for (size_t h = 0; h < sizeof(highs); h++)
                for (size_t pad = 0; pad <= 20; pad += 10) {
                    size_t len = any_value_string(buf, n, k, highs[h], pad);
                    assert_agrees(buf, len);
                    sy__pb_stats_t st;
                    int rc = sy__pb_walk(descs[3], buf, len, false, &st, NULL, 0);
                    assert_int_equal(rc == 0, k >= n); /* one lone high byte is never UTF-8 */
                }
    /* A valid two-byte sequence at every position: accepted. */
    for (size_t n = 2; n <= 70; n++)
        for (size_t k = 0; k + 1 < n; k++) {
            size_t len = any_value_string(buf, n, k, 0xc3, 0);
            buf[2 + k + 1] = 0xa9; /* U+00E9 */
            assert_agrees(buf, len);
            assert_int_equal(sy__pb_walk(descs[3], buf, len, false, NULL, NULL, 0), 0);
        }
}

/* Writes tag, varint length and body[0..n) before `at` in a buffer filled from
 * the end; returns the new start. */
static uint8_t *wrap(uint8_t *at, uint8_t tag, size_t n)
{
    uint8_t len[10];
    size_t k = 0;
    do {
        len[k++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
        n >>= 7;
    } while (n);
    at -= k;
    memcpy(at, len, k);
    *--at = tag;
    return at;
}

/* AnyValues nested in ArrayValues, around the depth limit: the same answer (and
 * the limit's error sentence) from both walks, accepted up to the limit. */
static void test_depth_limit_agrees(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    uint8_t *end = buf + sizeof(buf);
    bool accepted = false, refused = false;
    for (int levels = 1; levels <= 40; levels++) {
        uint8_t *p = end;
        *--p = 'x';
        p = wrap(p, 0x0a, 1); /* AnyValue.string_value: depth 2 * levels */
        for (int i = 0; i < levels; i++) {
            p = wrap(p, 0x0a, (size_t)(end - p)); /* ArrayValue.values */
            p = wrap(p, 0x2a, (size_t)(end - p)); /* AnyValue.array_value */
        }
        assert_agrees(p, (size_t)(end - p));
        int rc = sy__pb_walk(descs[3], p, (size_t)(end - p), false, NULL, NULL, 0);
        assert_int_equal(rc == 0, 2 * levels <= SY__PB_MAX_DEPTH);
        accepted |= rc == 0;
        refused |= rc != 0;
    }
    assert_true(accepted && refused);
}

/* A singular field holding a oneof given twice is refused: protobuf-c 1.4 fails to
 * merge two occurrences of KeyValue.value when neither sets a member, so such a
 * request would be acknowledged and then never decode. With a member set in one
 * of them protobuf-c merges fine, but the walk refuses every repeat of such a
 * field alike (no encoder writes one). A repeated Span.status (no oneof) is still
 * merged and accepted. */
static void test_repeated_oneof_holder_refused(void **state)
{
    (void)state;
    descs_init();
    const ProtobufCMessageDescriptor *kv = &opentelemetry__proto__common__v1__key_value__descriptor;
    static const uint8_t empty_twice[] = {0x0a, 1, 'k', 0x12, 0, 0x12, 0};
    static const uint8_t int_then_empty[] = {0x0a, 1, 'k', 0x12, 2, 0x18, 1, 0x12, 0};
    static const uint8_t once[] = {0x0a, 1, 'k', 0x12, 2, 0x18, 1};
    char err[256] = "";
    uint64_t items;
    assert_int_equal(
        sy__pb_validate(kv, empty_twice, sizeof(empty_twice), &items, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "a singular field holding a oneof given more than once"));
    assert_int_equal(
        sy__pb_validate(kv, int_then_empty, sizeof(int_then_empty), &items, err, sizeof(err)), -1);
    assert_int_equal(sy__pb_validate(kv, once, sizeof(once), &items, err, sizeof(err)), 0);
    /* Span{status: {}, status: {code: 2}}: merged, accepted, and protobuf-c agrees. */
    const ProtobufCMessageDescriptor *span = &opentelemetry__proto__trace__v1__span__descriptor;
    static const uint8_t status_twice[] = {0x7a, 0, 0x7a, 2, 0x18, 2};
    assert_int_equal(
        sy__pb_validate(span, status_twice, sizeof(status_twice), &items, err, sizeof(err)), 0);
    ProtobufCMessage *m = protobuf_c_message_unpack(span, NULL, sizeof(status_twice), status_twice);
    assert_non_null(m);
    protobuf_c_message_free_unpacked(m, NULL);
    assert_agrees(empty_twice, sizeof(empty_twice));
    assert_agrees(status_twice, sizeof(status_twice));
}

/* Attributes of every shape the walk's fast path takes (string, bool, int and
 * double values; keys and strings with one- and two-byte lengths) and of shapes
 * it leaves to the generic walk (other values, fields out of order or repeated,
 * unknown fields), in a span: every prefix and every single-byte change agree
 * with the reference, and count the same occurrences as the estimating walk. */
static void test_attribute_shapes_agree(void **state)
{
    (void)state;
    static const uint8_t values[][12] = {
        {2, 0x0a, 0x00},                   /* empty string */
        {4, 0x0a, 0x02, 'o', 'k'},         /* string */
        {2, 0x10, 0x01},                   /* bool */
        {4, 0x18, 0xff, 0xff, 0x03},       /* int, a 3-byte varint */
        {9, 0x21, 1, 2, 3, 4, 5, 6, 7, 8}, /* double */
        {2, 0x2a, 0x00},                   /* empty array: generic */
        {4, 0x0a, 0x00, 0x10, 0x01},       /* two members of the oneof: generic */
        {3, 0x38, 0x01, 0x00},             /* unknown wire type 0 field: generic */
        {0},                               /* empty AnyValue: generic */
    };
    uint8_t buf[1024], *end = buf + sizeof(buf);
    char text[300];
    for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++)
        for (size_t klen = 0; klen <= 200; klen += 67)
            for (size_t slen = 0; slen <= 160; slen += 80) {
                uint8_t *at = end;
                uint8_t any[300];
                size_t alen;
                if (slen && v == 1) { /* a longer string value */
                    memset(text, 's', slen);
                    any[0] = 0x0a;
                    uint8_t *w = wrap(any + sizeof(any) - slen, 0x0a, slen);
                    memcpy(any + sizeof(any) - slen, text, slen);
                    alen = (size_t)(any + sizeof(any) - w);
                    memmove(any, w, alen);
                } else {
                    alen = values[v][0];
                    memcpy(any, values[v] + 1, alen);
                }
                at -= alen;
                memcpy(at, any, alen);
                at = wrap(at, 0x12, alen); /* KeyValue.value */
                memset(text, 'k', klen);
                at -= klen;
                memcpy(at, text, klen);
                at = wrap(at, 0x0a, klen);               /* KeyValue.key */
                at = wrap(at, 0x4a, (size_t)(end - at)); /* Span.attributes */
                static const uint8_t name[] = {0x2a, 0x01, 'n'};
                at -= sizeof(name);
                memcpy(at, name, sizeof(name));
                at = wrap(at, 0x12, (size_t)(end - at)); /* ScopeSpans.spans */
                at = wrap(at, 0x12, (size_t)(end - at)); /* ResourceSpans.scope_spans */
                at = wrap(at, 0x0a, (size_t)(end - at)); /* request.resource_spans */
                assert_edits_agree(at, (size_t)(end - at));
            }
}

/* Wraps span[0..n) (a Span's fields) into a trace request at the end of
 * buf[0..size), so that the span's last field ends the buffer; returns the
 * request's start. */
static uint8_t *trace_request(uint8_t *buf, size_t size, const uint8_t *span, size_t n)
{
    uint8_t *end = buf + size, *at = end - n;
    assert_true(n + 16 <= size);
    memcpy(at, span, n);
    at = wrap(at, 0x12, (size_t)(end - at));   /* ScopeSpans.spans */
    at = wrap(at, 0x12, (size_t)(end - at));   /* ResourceSpans.scope_spans */
    return wrap(at, 0x0a, (size_t)(end - at)); /* request.resource_spans */
}

/*
 * Messages the walk takes through its flat path (walk_flat(): Status, and
 * ValueAtQuantile in a summary) and through its one-dispatch loop (IDs, a
 * two-byte tag, fixed-size fields), in valid and broken shapes: every prefix and
 * every single-byte change agree with the reference, and the plain walk counts the
 * occurrences the estimating one does.
 */
static void test_flat_messages_agree(void **state)
{
    (void)state;
    static const uint8_t statuses[][16] = {
        {0},                                     /* Status {} */
        {2, 0x18, 0x01},                         /* code OK */
        {5, 0x12, 0x01, 'x', 0x18, 0x02},        /* message, code ERROR */
        {4, 0x12, 0x02, 0xc3, 0xa9},             /* message "é" */
        {3, 0x12, 0x01, 0xff},                   /* message not UTF-8: refused */
        {11, 0x18, 0x80, 0x80, 0x80, 0x80, 0x80, /* code, a 10-byte varint */
         0x80, 0x80, 0x80, 0x80, 0x01},
        {12, 0x18, 0x80, 0x80, 0x80, 0x80, 0x80, /* code, an 11-byte varint: refused */
         0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
        {2, 0x08, 0x01},                   /* reserved field 1: unknown, kept */
        {3, 0x1a, 0x01, 0x00},             /* code as length-delimited: refused */
        {3, 0x82, 0x01, 0x00},             /* field 16, a two-byte tag: unknown */
        {9, 0x19, 1, 2, 3, 4, 5, 6, 7, 8}, /* code as fixed64: refused */
        {2, 0x12, 0x05},                   /* message past the end: refused */
    };
    uint8_t span[128], buf[512];
    for (size_t v = 0; v < sizeof(statuses) / sizeof(statuses[0]); v++)
        for (int twice = 0; twice < 2; twice++) {
            size_t n = 0;
            span[n++] = 0x0a; /* trace_id */
            span[n++] = 16;
            for (int i = 0; i < 16; i++)
                span[n++] = (uint8_t)(0xf0 + i);
            span[n++] = 0x12; /* span_id */
            span[n++] = 8;
            for (int i = 0; i < 8; i++)
                span[n++] = (uint8_t)(0x80 + i);
            span[n++] = 0x85; /* flags: field 16, fixed32, a two-byte tag */
            span[n++] = 0x01;
            memcpy(span + n, "\x01\x01\x00\x00", 4);
            n += 4;
            span[n++] = 0x2a; /* name */
            span[n++] = 1;
            span[n++] = 'n';
            span[n++] = 0x39; /* start_time_unix_nano: fixed64 */
            memset(span + n, 0x81, 8);
            n += 8;
            for (int k = 0; k <= twice; k++) { /* status, once or twice (merged) */
                span[n++] = 0x7a;
                span[n++] = statuses[v][0];
                memcpy(span + n, statuses[v] + 1, statuses[v][0]);
                n += statuses[v][0];
            }
            uint8_t *req = trace_request(buf, sizeof(buf), span, n);
            size_t len = (size_t)(buf + sizeof(buf) - req);
            assert_edits_agree(req, len);
            char err[256] = "";
            int rc = sy__pb_walk(descs[0], req, len, false, NULL, err, sizeof(err));
            assert_int_equal(rc == 0, v != 4 && v != 6 && v != 8 && v != 10 && v != 11);
            if (v == 4) assert_non_null(strstr(err, "Status.message"));
        }

    /* A summary data point's quantiles: ValueAtQuantile{quantile, value}, two
     * doubles, also with a value cut short and an unknown field. */
    static const uint8_t quantiles[][24] = {
        {18, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x11, 1, 2, 3, 4, 5, 6, 7, 8},
        {9, 0x11, 1, 2, 3, 4, 5, 6, 7, 8},
        {7, 0x11, 1, 2, 3, 4, 5, 6},                    /* refused */
        {11, 0x09, 1, 2, 3, 4, 5, 6, 7, 8, 0x20, 0x7f}, /* field 4: unknown */
        {0},
    };
    for (size_t v = 0; v < sizeof(quantiles) / sizeof(quantiles[0]); v++) {
        uint8_t *end = buf + sizeof(buf), *at = end;
        for (int k = 0; k < 3; k++) { /* three quantiles */
            at -= quantiles[v][0];
            memcpy(at, quantiles[v] + 1, quantiles[v][0]);
            at = wrap(at, 0x32, quantiles[v][0]); /* SummaryDataPoint.quantile_values */
        }
        at = wrap(at, 0x0a, (size_t)(end - at)); /* Summary.data_points */
        at = wrap(at, 0x5a, (size_t)(end - at)); /* Metric.summary */
        at = wrap(at, 0x12, (size_t)(end - at)); /* ScopeMetrics.metrics */
        at = wrap(at, 0x12, (size_t)(end - at)); /* ResourceMetrics.scope_metrics */
        at = wrap(at, 0x0a, (size_t)(end - at)); /* request.resource_metrics */
        size_t len = (size_t)(end - at);
        assert_edits_agree(at, len);
        uint64_t items = 0;
        int rc = sy__pb_validate(descs[1], at, len, &items, NULL, 0);
        assert_int_equal(rc == 0, v != 2);
        if (rc == 0) assert_int_equal(items, 1);
    }
}

/* Writes an attribute (Span.attributes, tag 0x4a) with a key of klen bytes (its
 * last one 0xff with key_high) and the AnyValue any[0..alen) to out; returns the
 * bytes written. */
static size_t attribute(uint8_t *out, size_t klen, bool key_high, const uint8_t *any, size_t alen)
{
    uint8_t tmp[600], *end = tmp + sizeof(tmp), *at = end - alen;
    memcpy(at, any, alen);
    at = wrap(at, 0x12, alen); /* KeyValue.value */
    at -= klen;
    for (size_t i = 0; i < klen; i++)
        at[i] = (uint8_t)('a' + i % 26);
    if (klen && key_high) at[klen - 1] = 0xff;
    at = wrap(at, 0x0a, klen);               /* KeyValue.key */
    at = wrap(at, 0x4a, (size_t)(end - at)); /* Span.attributes */
    memcpy(out, at, (size_t)(end - at));
    return (size_t)(end - at);
}

/*
 * The attribute fast path's compact shape (every length under 128) at its edges:
 * attributes of 127 to 132 bytes, keys and string values of every length around
 * the 16- and 32-byte blocks of the ASCII test, a high byte or a two-byte
 * character at their first and last byte, ints of one to eleven bytes, bools and
 * doubles of the right and wrong lengths, each in a run of three attributes (the
 * middle one changed) that ends the buffer: the walk agrees with the reference.
 */
static void test_compact_attributes_agree(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 100, 120};
    const size_t nlens = sizeof(lens) / sizeof(lens[0]);
    uint8_t any[300], span[1024], buf[2048];
    static const uint8_t plain[] = {0x0a, 0x02, 'o', 'k'};
    for (size_t ki = 0; ki < nlens; ki++)
        for (size_t vi = 0; vi < nlens + 8; vi++) {
            /* string values of the listed lengths, then ones that make the
             * KeyValue 126 to 133 bytes long, around the compact shape's edge */
            size_t klen = lens[ki];
            size_t slen = vi < nlens ? lens[vi] : 128 + (vi - nlens) - 8 - klen;
            if (vi >= nlens && klen > 110) continue;
            for (int mark = 0; mark < 5; mark++) {
                size_t alen = 0;
                any[alen++] = 0x0a;
                any[alen++] = (uint8_t)slen; /* under 128: one byte */
                for (size_t i = 0; i < slen; i++)
                    any[alen++] = (uint8_t)('A' + i % 26);
                if (slen && mark == 1) any[2] = 0xc3;            /* high first byte */
                if (slen && mark == 2) any[2 + slen - 1] = 0x80; /* high last byte */
                if (slen >= 2 && mark == 3) {                    /* "é" at the end */
                    any[2 + slen - 2] = 0xc3;
                    any[2 + slen - 1] = 0xa9;
                }
                size_t n = 0;
                n += attribute(span + n, 3, false, plain, sizeof(plain));
                n += attribute(span + n, klen, mark == 4, any, alen);
                size_t last = attribute(span + n, 5, false, plain, sizeof(plain));
                n += last;
                uint8_t *req = trace_request(buf, sizeof(buf), span, n);
                assert_agrees(req, (size_t)(buf + sizeof(buf) - req));
                /* and as the last attribute, ending the buffer */
                n -= last;
                req = trace_request(buf, sizeof(buf), span, n);
                assert_agrees(req, (size_t)(buf + sizeof(buf) - req));
            }
        }
    /* Numbers: an int or bool of 1 to 11 varint bytes (also with no end bit, or
     * with the varint ending at the first byte), a double of 7 to 9 bytes. */
    for (size_t klen = 0; klen <= 40; klen += 8)
        for (int type = 0; type < 3; type++)
            for (size_t nb = 1; nb <= 11; nb++)
                for (int ends = 0; ends < 3; ends++) {
                    size_t alen = 0;
                    if (type == 2) {
                        if (nb < 7 || nb > 10) continue;
                        any[alen++] = 0x21;
                        memset(any + alen, 0xee, nb - 1);
                        alen += nb - 1;
                    } else {
                        any[alen++] = type == 0 ? 0x18 : 0x10;
                        for (size_t i = 0; i < nb; i++)
                            any[alen++] = ends == 2 ? (i == 0 ? 0x01 : 0x81) /* ends early */
                                          : i + 1 < nb || !ends ? 0x81
                                                                : 0x01;
                    }
                    size_t n = attribute(span, klen, false, any, alen);
                    n += attribute(span + n, 2, false, plain, sizeof(plain));
                    uint8_t *req = trace_request(buf, sizeof(buf), span, n);
                    size_t len = (size_t)(buf + sizeof(buf) - req);
                    assert_agrees(req, len);
                    if (klen == 8 && type == 0) assert_edits_agree(req, len);
                }
}

/* KeyValues nested in kvlist values (and AnyValues in arrays, to reach every
 * depth) around the depth limit: the attribute fast path stops where the generic
 * walk's bound is, with the same answer and sentence. */
static void test_attribute_depth_agrees(void **state)
{
    (void)state;
    static uint8_t buf[4096];
    uint8_t *end = buf + sizeof(buf);
    bool accepted = false, refused = false;
    for (int arrays = 0; arrays <= 2; arrays++)
        for (int levels = 18; levels <= 24; levels++) {
            uint8_t *p = end;
            *--p = 'v';
            p = wrap(p, 0x0a, 1); /* AnyValue.string_value */
            for (int i = 0; i < levels; i++) {
                p = wrap(p, 0x12, (size_t)(end - p)); /* KeyValue.value */
                *--p = 'k';
                p = wrap(p, 0x0a, 1);                 /* KeyValue.key */
                p = wrap(p, 0x0a, (size_t)(end - p)); /* KeyValueList.values */
                p = wrap(p, 0x32, (size_t)(end - p)); /* AnyValue.kvlist_value */
            }
            for (int i = 0; i < arrays; i++) {
                p = wrap(p, 0x0a, (size_t)(end - p)); /* ArrayValue.values */
                p = wrap(p, 0x2a, (size_t)(end - p)); /* AnyValue.array_value */
            }
            assert_agrees(p, (size_t)(end - p));
            int rc = sy__pb_walk(descs[3], p, (size_t)(end - p), false, NULL, NULL, 0);
            assert_int_equal(rc == 0, 3 * levels + 2 * arrays <= SY__PB_MAX_DEPTH);
            accepted |= rc == 0;
            refused |= rc != 0;
        }
    assert_true(accepted && refused);
}

/* Tags of two bytes (fields 16 to 2047) and more, lengths of one, two and three
 * bytes, non-minimal encodings of both, and a two-byte tag of field 0: the same
 * answer and sentence as the reference. */
static void test_tags_and_lengths_agree(void **state)
{
    (void)state;
    uint8_t span[17000], buf[17200];
    static const uint8_t tags[][7] = {
        {2, 0x80, 0x00},
        {2, 0x87, 0x00},
        {2, 0x88, 0x00},
        {2, 0xaa, 0x00}, /* fields 0, 1, 5 */
        {2, 0x80, 0x01},
        {2, 0x85, 0x01},
        {2, 0x82, 0x01},
        {2, 0xfa, 0x7f}, /* 16, 2047 */
        {3, 0x80, 0x80, 0x01},
        {3, 0xaa, 0x80, 0x00},
        {5, 0xf8, 0xff, 0xff, 0xff, 0x0f},
        {6, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
        {1, 0x80},
    };
    static const size_t slens[] = {0, 5, 127, 128, 200, 16383, 16384};
    for (size_t t = 0; t < sizeof(tags) / sizeof(tags[0]); t++)
        for (size_t si = 0; si < sizeof(slens) / sizeof(slens[0]); si++)
            for (int minimal = 0; minimal < 2; minimal++) {
                size_t n = 0, slen = slens[si];
                span[n++] = 0x2a; /* name, its length minimal or padded to 3 bytes */
                size_t l = slen;
                for (int k = 0; k < 3 && (l || k == 0 || !minimal); k++) {
                    bool more = minimal ? l > 0x7f : k < 2;
                    span[n++] = (uint8_t)((l & 0x7f) | (more ? 0x80 : 0));
                    l >>= 7;
                    if (!more) break;
                }
                memset(span + n, 'n', slen);
                n += slen;
                memcpy(span + n, tags[t] + 1, tags[t][0]); /* then the tag, and a value */
                n += tags[t][0];
                int wt = tags[t][1] & 7;
                if (wt == 0) span[n++] = 0x05;
                if (wt == 2) {
                    span[n++] = 0x01;
                    span[n++] = 'x';
                }
                if (wt == 5) {
                    memset(span + n, 0, 4);
                    n += 4;
                }
                uint8_t *req = trace_request(buf, sizeof(buf), span, n);
                size_t len = (size_t)(buf + sizeof(buf) - req);
                assert_agrees(req, len);
                if (slen <= 5) assert_edits_agree(req, len);
            }
}

int main(void)
{
    descs_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seeds_agree),
        cmocka_unit_test(test_mutations_agree),
        cmocka_unit_test(test_string_edges_agree),
        cmocka_unit_test(test_depth_limit_agrees),
        cmocka_unit_test(test_repeated_oneof_holder_refused),
        cmocka_unit_test(test_attribute_shapes_agree),
        cmocka_unit_test(test_flat_messages_agree),
        cmocka_unit_test(test_compact_attributes_agree),
        cmocka_unit_test(test_attribute_depth_agrees),
        cmocka_unit_test(test_tags_and_lengths_agree),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
