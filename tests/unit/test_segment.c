/*
 * test_segment.c - file_storage's segment records (plugins/common/segment.c): what
 * a walk hands out of clean, damaged and torn segments, record by record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "segment.h"

#define MAX_RECS 16

typedef struct got_s {
    const uint8_t *buf;
    size_t n;
    uint64_t id[MAX_RECS], weight[MAX_RECS];
    char data[MAX_RECS][32];
} got_t;

static void on_rec(void *arg, const syc_seg_rec_t *rec)
{
    got_t *g = arg;
    assert_true(g->n < MAX_RECS);
    g->id[g->n] = rec->id;
    g->weight[g->n] = rec->weight;
    assert_true(rec->len < sizeof(g->data[0]));
    memcpy(g->data[g->n], g->buf + rec->data_offset, rec->len);
    g->data[g->n][rec->len] = '\0';
    g->n++;
}

/* Writes records with ids first.. and the given data; returns the length and each
 * record's offset in offs. */
static size_t build(uint8_t *buf, uint64_t first, const char *const *data, size_t n, size_t *offs)
{
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(data[i]);
        offs[i] = pos;
        syc_seg_header(buf + pos, first + i, 10 * (i + 1), data[i], len);
        memcpy(buf + pos + SYC_SEG_HEADER, data[i], len);
        pos += SYC_SEG_HEADER + len;
    }
    return pos;
}

static const char *const three[] = {"first record", "second", "the third one"};

static uint64_t walk(const uint8_t *buf, size_t len, uint64_t first, got_t *g)
{
    memset(g, 0, sizeof(*g));
    g->buf = buf;
    return syc_seg_walk(buf, len, first, on_rec, g);
}

static void test_clean(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t offs[3];
    size_t len = build(buf, 7, three, 3, offs);
    got_t g;
    assert_int_equal(walk(buf, len, 7, &g), 0);
    assert_int_equal(g.n, 3);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(g.id[i], 7 + i);
        assert_int_equal(g.weight[i], 10 * (i + 1));
        assert_string_equal(g.data[i], three[i]);
    }
    assert_int_equal(walk(buf, 0, 1, &g), 0);
    assert_int_equal(g.n, 0);
    syc_seg_rec_t rec;
    assert_int_equal(syc_seg_next(buf, len, len, &rec), SYC_SEG_END);
}

static void test_bad_checksum(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t offs[3];
    size_t len = build(buf, 1, three, 3, offs);
    buf[offs[1] + SYC_SEG_HEADER + 2] ^= 0x20; /* "second" -> "seCond" */
    syc_seg_rec_t rec;
    assert_int_equal(syc_seg_next(buf, len, offs[1], &rec), SYC_SEG_CORRUPT);
    got_t g;
    assert_int_equal(walk(buf, len, 1, &g), 1);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.id[0], 1);
    assert_int_equal(g.id[1], 3);
    assert_string_equal(g.data[1], "the third one");
}

static void test_torn_tail(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t offs[3];
    size_t len = build(buf, 1, three, 3, offs);
    got_t g;
    /* Cut inside the last record's data, then inside its header. */
    size_t cuts[2] = {len - 4, offs[2] + 10};
    for (int c = 0; c < 2; c++) {
        syc_seg_rec_t rec;
        assert_int_equal(syc_seg_next(buf, cuts[c], offs[2], &rec), SYC_SEG_TRUNCATED);
        assert_int_equal(walk(buf, cuts[c], 1, &g), 1);
        assert_int_equal(g.n, 2);
        assert_int_equal(g.id[1], 2);
    }
}

static void test_bad_length_resyncs(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t offs[3];
    got_t g;
    /* A length that cannot be, and one that points past the end: the records
     * after it are found again by their checksums. */
    const uint8_t lens[2][4] = {{0xff, 0xff, 0xff, 0xff}, {0xf0, 0, 0, 0}};
    for (int c = 0; c < 2; c++) {
        size_t len = build(buf, 1, three, 3, offs);
        memcpy(buf, lens[c], 4);
        assert_int_equal(walk(buf, len, 1, &g), 1);
        assert_int_equal(g.n, 2);
        assert_int_equal(g.id[0], 2);
        assert_string_equal(g.data[0], "second");
        assert_int_equal(g.id[1], 3);
    }
}

static void test_ids_must_grow(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t offs[3];
    size_t len = build(buf, 5, three, 3, offs);
    got_t g;
    /* A segment named for id 6 whose first record says 5: not this segment's. */
    assert_int_equal(walk(buf, len, 6, &g), 1);
    assert_int_equal(g.n, 2);
    assert_int_equal(g.id[0], 6);
    /* The same record twice in a row: the copy is skipped. */
    uint8_t twice[256];
    size_t first_len = offs[1];
    memcpy(twice, buf, first_len);
    memcpy(twice + first_len, buf, first_len);
    assert_int_equal(walk(twice, 2 * first_len, 5, &g), 1);
    assert_int_equal(g.n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),         cmocka_unit_test(test_bad_checksum),
        cmocka_unit_test(test_torn_tail),     cmocka_unit_test(test_bad_length_resyncs),
        cmocka_unit_test(test_ids_must_grow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
