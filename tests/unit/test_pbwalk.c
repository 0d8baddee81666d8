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
                size_t len = (size_t)(end - at);
                uint8_t copy[1024];
                for (size_t cut = 0; cut <= len; cut++)
                    assert_agrees(at, cut);
                for (size_t i = 0; i < len; i++)
                    for (int flip = 0; flip < 3; flip++) {
                        memcpy(copy, at, len);
                        copy[i] = flip == 0   ? (uint8_t)(copy[i] + 1)
                                  : flip == 1 ? (uint8_t)(copy[i] - 1)
                                              : 0xc3;
                        assert_agrees(copy, len);
                    }
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
