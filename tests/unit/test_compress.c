/*
 * test_compress.c - plugins/common/compress.c: every codec at every level round
 * trips (gzip, deflate = zlib format, zstd, block snappy), the exact bound, bombs
 * stopped at the bound with the memory used bounded (gzip whose trailer lies, zstd
 * with and without a content size, snappy declaring a huge length: refused before
 * allocating), truncated, corrupt and trailing data refused, and the per-thread
 * contexts used from several threads (and freed when they exit: ASan's leak check).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <pthread.h>
#include <snappy-c.h>
#include <switchyard/plugin.h>
#include <zlib.h>
#include <zstd.h>

#include "compress.h"

/* An allocator that counts what it hands out and frees it all at once. */
typedef struct track_s {
    void **blocks;
    size_t n, cap;
    size_t total;
} track_t;

static void *track_alloc(void *ctx, size_t size)
{
    track_t *t = ctx;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->blocks = realloc(t->blocks, t->cap * sizeof(void *));
        assert_non_null(t->blocks);
    }
    void *p = malloc(size ? size : 1);
    assert_non_null(p);
    t->blocks[t->n++] = p;
    t->total += size;
    return p;
}

static void track_reset(track_t *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->blocks[i]);
    free(t->blocks);
    memset(t, 0, sizeof(*t));
}

typedef struct result_s {
    int rc;
    uint8_t *out;
    size_t len;
    char err[256];
} result_t;

static result_t dec(track_t *t, syc_encoding_t enc, const uint8_t *in, size_t len, size_t max)
{
    result_t r;
    track_reset(t);
    r.rc = syc_decompress(enc, in, len, max, track_alloc, t, &r.out, &r.len, r.err, sizeof(r.err));
    return r;
}

/* Text-like data that compresses about as well as telemetry does. */
static uint8_t *sample(size_t n)
{
    uint8_t *p = malloc(n);
    assert_non_null(p);
    uint64_t x = 88172645463325252ULL;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[i] = (i % 64) < 40 ? (uint8_t)("service.name=checkout span "[i % 27]) : (uint8_t)(x % 16);
    }
    return p;
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(syc_encoding_parse("zlib"), SYC_ENCODING_DEFLATE);
    assert_int_equal(syc_encoding_parse(" Snappy"), SYC_ENCODING_SNAPPY);
    assert_int_equal(syc_encoding_parse("x-snappy-framed"), SYC_ENCODING_UNKNOWN);
    assert_int_equal(syc_encoding_parse("lz4"), SYC_ENCODING_UNKNOWN);
    assert_string_equal(syc_encoding_name(SYC_ENCODING_SNAPPY), "snappy");
    assert_int_equal(syc_compress_default_level(SYC_ENCODING_GZIP), 1);
    assert_int_equal(syc_compress_default_level(SYC_ENCODING_ZSTD), 1);
    char err[128];
    assert_int_equal(syc_compress_level_check(SYC_ENCODING_GZIP, 12, err, sizeof(err)), 0);
    assert_int_equal(syc_compress_level_check(SYC_ENCODING_GZIP, -1, err, sizeof(err)), 0);
    assert_int_equal(syc_compress_level_check(SYC_ENCODING_GZIP, 13, err, sizeof(err)), SY_EINVAL);
    assert_string_equal(err,
                        "invalid compression level 13 for gzip: 1 to 12, or -1 or 0 (default)");
    assert_int_equal(syc_compress_level_check(SYC_ENCODING_DEFLATE, -2, err, sizeof(err)),
                     SY_EINVAL);
    assert_int_equal(syc_compress_level_check(SYC_ENCODING_ZSTD, 22, err, sizeof(err)), 0);
    assert_int_equal(syc_compress_level_check(SYC_ENCODING_ZSTD, 23, err, sizeof(err)), SY_EINVAL);
    assert_string_equal(err,
                        "invalid compression level 23 for zstd: 1 to 22, or -1 or 0 (default)");
    assert_int_equal(syc_compress_level_check(SYC_ENCODING_SNAPPY, 0, err, sizeof(err)), 0);
    assert_int_equal(syc_compress_level_check(SYC_ENCODING_SNAPPY, 1, err, sizeof(err)), SY_EINVAL);
    assert_string_equal(err, "compression level 1 is not supported for snappy");
    uint8_t *out;
    size_t out_len;
    assert_int_equal(
        syc_compress(SYC_ENCODING_IDENTITY, 0, 0, (const uint8_t *)"x", 1, &out, &out_len),
        SY_EINVAL);
    assert_int_equal(
        syc_compress(SYC_ENCODING_GZIP, 13, 0, (const uint8_t *)"x", 1, &out, &out_len), SY_EINVAL);
}

/* Compresses plain with prefix bytes, checks the prefix is left alone and the data
 * decompresses to plain with the bound exactly its size, and not one byte less. */
static void round_trip(syc_encoding_t enc, int level, const uint8_t *plain, size_t n)
{
    track_t t = {0};
    uint8_t *c;
    size_t clen;
    assert_int_equal(syc_compress(enc, level, 5, plain, n, &c, &clen), 0);
    assert_true(clen > 5);
    memset(c, 0xA5, 5);
    result_t r = dec(&t, enc, c + 5, clen - 5, n);
    if (r.rc != 0) fail_msg("%s level %d: %s", syc_encoding_name(enc), level, r.err);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.out, plain, n);
    /* What it allocated: about the output (gzip's trailer gives the size). */
    assert_true(t.total <= 2 * n + 8192);
    r = dec(&t, enc, c + 5, clen - 5, n - 1);
    assert_int_equal(r.rc, SY_ENOMEM);
    assert_string_equal(
        r.err, n == 100000 ? "decompressed body is larger than the limit of 99999 bytes" : r.err);
    for (int i = 0; i < 5; i++)
        assert_int_equal(c[i], 0xA5);
    free(c);
    track_reset(&t);
}

static void test_round_trips(void **state)
{
    (void)state;
    size_t n = 100000;
    uint8_t *plain = sample(n);
    for (int level = -1; level <= 12; level++) {
        round_trip(SYC_ENCODING_GZIP, level, plain, n);
        round_trip(SYC_ENCODING_DEFLATE, level, plain, n);
    }
    for (int level = -1; level <= ZSTD_maxCLevel(); level++)
        round_trip(SYC_ENCODING_ZSTD, level, plain, n);
    round_trip(SYC_ENCODING_SNAPPY, 0, plain, n);
    /* Level 1 is faster than level 9 and not smaller. */
    uint8_t *a, *b;
    size_t alen, blen;
    assert_int_equal(syc_compress(SYC_ENCODING_GZIP, 1, 0, plain, n, &a, &alen), 0);
    assert_int_equal(syc_compress(SYC_ENCODING_GZIP, 9, 0, plain, n, &b, &blen), 0);
    assert_true(alen >= blen);
    assert_int_equal(a[0], 0x1f);
    assert_int_equal(a[1], 0x8b);
    free(a);
    free(b);
    /* deflate is the zlib format (RFC 1950): zlib's uncompress reads it. */
    assert_int_equal(syc_compress(SYC_ENCODING_DEFLATE, 0, 0, plain, n, &a, &alen), 0);
    uLongf zl = n;
    uint8_t *z = malloc(n);
    assert_int_equal(uncompress(z, &zl, a, alen), Z_OK);
    assert_int_equal(zl, n);
    assert_memory_equal(z, plain, n);
    free(z);
    free(a);
    /* An empty input round trips too. */
    track_t t = {0};
    for (syc_encoding_t e = SYC_ENCODING_GZIP; e <= SYC_ENCODING_SNAPPY; e++) {
        assert_int_equal(syc_compress(e, 0, 0, plain, 0, &a, &alen), 0);
        result_t r = dec(&t, e, a, alen, 10);
        assert_int_equal(r.rc, 0);
        assert_int_equal(r.len, 0);
        free(a);
    }
    track_reset(&t);
    free(plain);
}

/* gzip: several members (the last one's trailer says a small size, so the output
 * must grow), a trailer that claims 4 GiB, a bomb, trailing data, corruption. */
static void test_gzip(void **state)
{
    (void)state;
    track_t t = {0};
    size_t n = 100000;
    uint8_t *plain = sample(n);
    uint8_t *big, *small;
    size_t blen, slen;
    assert_int_equal(syc_compress(SYC_ENCODING_GZIP, 0, 0, plain, n, &big, &blen), 0);
    assert_int_equal(syc_compress(SYC_ENCODING_GZIP, 0, 0, plain, 10, &small, &slen), 0);
    uint8_t *two = malloc(blen + slen);
    memcpy(two, big, blen);
    memcpy(two + blen, small, slen);
    result_t r = dec(&t, SYC_ENCODING_GZIP, two, blen + slen, n + 10);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.len, n + 10);
    assert_memory_equal(r.out, plain, n);
    assert_memory_equal(r.out + n, plain, 10);
    r = dec(&t, SYC_ENCODING_GZIP, two, blen + slen, n + 9);
    assert_int_equal(r.rc, SY_ENOMEM);

    /* Trailing bytes that are not another member. */
    memcpy(two + blen, "garbage!", 8);
    r = dec(&t, SYC_ENCODING_GZIP, two, blen + 8, 2 * n);
    assert_int_equal(r.rc, SY_EINVAL);
    assert_string_equal(r.err, "gzip: trailing data after the end of the stream");

    /* Truncated anywhere, or a flipped byte: 400, never a crash. */
    for (size_t cut = 0; cut < blen; cut += blen / 37 + 1) {
        r = dec(&t, SYC_ENCODING_GZIP, big, cut, n);
        assert_int_equal(r.rc, SY_EINVAL);
    }
    memcpy(two, big, blen);
    two[blen / 2] ^= 0x55;
    r = dec(&t, SYC_ENCODING_GZIP, two, blen, n);
    assert_int_equal(r.rc, SY_EINVAL);
    assert_string_equal(r.err, "gzip: invalid or truncated compressed data");

    /* A trailer claiming 4 GiB - 1 makes no 4 GiB allocation: the first is capped
     * by the bound (and by what DEFLATE can expand the input to). */
    memcpy(two, big, blen);
    memset(two + blen - 4, 0xff, 4);
    r = dec(&t, SYC_ENCODING_GZIP, two, blen, 1 << 20);
    assert_int_equal(r.rc, SY_EINVAL); /* the size does not match */
    assert_true(t.total <= (1u << 20) + 1);

    /* 256 MiB of zeros, about 250 KB compressed, against a 1 MiB bound: refused
     * with at most twice the bound allocated. */
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY), Z_OK);
    static uint8_t zeros[1 << 20];
    size_t cap = 1 << 20;
    uint8_t *bomb = malloc(cap);
    zs.next_out = bomb;
    zs.avail_out = (uInt)cap;
    for (int i = 0; i < 256; i++) {
        zs.next_in = zeros;
        zs.avail_in = sizeof(zeros);
        assert_int_equal(deflate(&zs, i == 255 ? Z_FINISH : Z_NO_FLUSH),
                         i == 255 ? Z_STREAM_END : Z_OK);
    }
    size_t bomb_len = zs.total_out;
    deflateEnd(&zs);
    assert_true(bomb_len < 300000);
    r = dec(&t, SYC_ENCODING_GZIP, bomb, bomb_len, 1 << 20);
    assert_int_equal(r.rc, SY_ENOMEM);
    assert_string_equal(r.err, "decompressed body is larger than the limit of 1048576 bytes");
    assert_true(t.total <= 2 * ((1u << 20) + 1));

    free(bomb);
    free(two);
    free(big);
    free(small);
    free(plain);
    track_reset(&t);
}

static void test_deflate(void **state)
{
    (void)state;
    track_t t = {0};
    size_t n = 100000;
    uint8_t *plain = sample(n);
    /* Raw deflate (no zlib header) is accepted as "deflate" too. */
    uint8_t raw[120000];
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = plain;
    zs.avail_in = (uInt)n;
    zs.next_out = raw;
    zs.avail_out = sizeof(raw);
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t rlen = zs.total_out;
    deflateEnd(&zs);
    result_t r = dec(&t, SYC_ENCODING_DEFLATE, raw, rlen, n);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.out, plain, n);
    /* No size hint: the output grows from 4x the input, bounded. */
    r = dec(&t, SYC_ENCODING_DEFLATE, raw, rlen, n - 1);
    assert_int_equal(r.rc, SY_ENOMEM);
    assert_true(t.total <= 2 * n + 8192);
    r = dec(&t, SYC_ENCODING_DEFLATE, raw, rlen / 2, n);
    assert_int_equal(r.rc, SY_EINVAL);
    assert_string_equal(r.err, "deflate: invalid or truncated compressed data");
    free(plain);
    track_reset(&t);
}

/* zstd: a frame without its content size (streamed, bounded as it grows), a
 * declared size over the bound (refused before allocating), a declared size that
 * lies, several frames, corruption. */
static void test_zstd(void **state)
{
    (void)state;
    track_t t = {0};
    size_t n = 100000;
    uint8_t *plain = sample(n);
    size_t cap = ZSTD_compressBound(n) * 2;
    uint8_t *c = malloc(cap);
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0)));
    size_t clen = ZSTD_compress2(cc, c, cap, plain, n);
    assert_false(ZSTD_isError(clen));
    assert_int_equal(ZSTD_getFrameContentSize(c, clen), ZSTD_CONTENTSIZE_UNKNOWN);
    result_t r = dec(&t, SYC_ENCODING_ZSTD, c, clen, n);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.len, n);
    assert_memory_equal(r.out, plain, n);
    r = dec(&t, SYC_ENCODING_ZSTD, c, clen, n - 1);
    assert_int_equal(r.rc, SY_ENOMEM);
    assert_true(t.total <= 2 * n + 8192);

    /* 64 MiB of zeros without a content size against a 1 MiB bound. */
    uint8_t *zeros = calloc(1, 64u << 20);
    size_t zlen = ZSTD_compress2(cc, c, cap, zeros, 64u << 20);
    assert_false(ZSTD_isError(zlen));
    assert_true(zlen < 100000);
    r = dec(&t, SYC_ENCODING_ZSTD, c, zlen, 1 << 20);
    assert_int_equal(r.rc, SY_ENOMEM);
    assert_string_equal(r.err, "decompressed body is larger than the limit of 1048576 bytes");
    assert_true(t.total <= 2 * ((1u << 20) + 1));
    /* With its content size (64 MiB) declared: refused before any allocation. */
    zlen = ZSTD_compress(c, cap, zeros, 64u << 20, 1);
    assert_false(ZSTD_isError(zlen));
    r = dec(&t, SYC_ENCODING_ZSTD, c, zlen, 1 << 20);
    assert_int_equal(r.rc, SY_ENOMEM);
    assert_int_equal(t.total, 0);
    free(zeros);

    /* A declared size smaller than the data: an error, within the declared size. */
    clen = ZSTD_compress(c, cap, plain, n, 1);
    uint8_t *lie = malloc(clen);
    memcpy(lie, c, clen);
    /* The frame header (RFC 8878 3.1.1.1): magic, descriptor, [window], dictionary
     * ID, then the content size, 4 bytes for 100000 (flag 2). */
    uint8_t fhd = c[4];
    assert_int_equal(fhd >> 6, 2);
    static const size_t did_size[4] = {0, 1, 2, 4};
    size_t hdr = 5 + ((fhd & 0x20) ? 0 : 1) + did_size[fhd & 3] + 4;
    lie[hdr - 4] = 0x10;
    lie[hdr - 3] = 0;
    lie[hdr - 2] = 0;
    lie[hdr - 1] = 0;
    r = dec(&t, SYC_ENCODING_ZSTD, lie, clen, n);
    assert_int_equal(r.rc, SY_EINVAL);
    assert_true(t.total <= 17);
    free(lie);

    /* Two frames back to back (the first without its size): streamed. */
    size_t a = ZSTD_compress2(cc, c, cap, plain, n);
    size_t b = ZSTD_compress(c + a, cap - a, plain, 10, 1);
    r = dec(&t, SYC_ENCODING_ZSTD, c, a + b, n + 10);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.len, n + 10);
    /* Truncated, not zstd, trailing garbage. */
    r = dec(&t, SYC_ENCODING_ZSTD, c, a / 2, n);
    assert_int_equal(r.rc, SY_EINVAL);
    r = dec(&t, SYC_ENCODING_ZSTD, (const uint8_t *)"not zstd at all", 15, n);
    assert_int_equal(r.rc, SY_EINVAL);
    assert_string_equal(r.err, "zstd: not a zstd frame");
    clen = ZSTD_compress(c, cap, plain, n, 1);
    memcpy(c + clen, "junk", 4);
    r = dec(&t, SYC_ENCODING_ZSTD, c, clen + 4, 2 * n);
    assert_int_equal(r.rc, SY_EINVAL);
    ZSTD_freeCCtx(cc);
    free(c);
    free(plain);
    track_reset(&t);
}

/* Block snappy: a declared length over the bound or beyond what the input could
 * produce is refused before allocating; corrupt and truncated data are errors. */
static void test_snappy(void **state)
{
    (void)state;
    track_t t = {0};
    /* 4 GiB - 1 declared (snappy's largest), then a few bytes. */
    const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x61};
    result_t r = dec(&t, SYC_ENCODING_SNAPPY, huge, sizeof(huge), 20u << 20);
    assert_int_equal(r.rc, SY_ENOMEM);
    assert_string_equal(r.err, "decompressed body is larger than the limit of 20971520 bytes");
    assert_int_equal(t.total, 0);
    /* 1 MiB declared for 8 bytes, within the bound: impossible, refused. */
    const uint8_t lie[] = {0x80, 0x80, 0x40, 0x00, 0x61, 0x62, 0x63, 0x64};
    r = dec(&t, SYC_ENCODING_SNAPPY, lie, sizeof(lie), 20u << 20);
    assert_int_equal(r.rc, SY_EINVAL);
    assert_string_equal(r.err,
                        "snappy: declared length 1048576 is impossible for 8 bytes of input");
    assert_int_equal(t.total, 0);
    /* A length over 32 bits, and a bad varint. */
    const uint8_t over[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x00, 0x61};
    r = dec(&t, SYC_ENCODING_SNAPPY, over, sizeof(over), 20u << 20);
    assert_int_equal(r.rc, SY_EINVAL);
    assert_int_equal(t.total, 0);
    const uint8_t bad[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    r = dec(&t, SYC_ENCODING_SNAPPY, bad, sizeof(bad), 100);
    assert_int_equal(r.rc, SY_EINVAL);
    assert_string_equal(r.err, "snappy: invalid length header");

    size_t n = 100000;
    uint8_t *plain = sample(n);
    uint8_t *c;
    size_t clen;
    assert_int_equal(syc_compress(SYC_ENCODING_SNAPPY, 0, 0, plain, n, &c, &clen), 0);
    r = dec(&t, SYC_ENCODING_SNAPPY, c, clen - 7, n);
    assert_int_equal(r.rc, SY_EINVAL);
    assert_string_equal(r.err, "snappy: invalid or truncated compressed data");
    /* What libsnappy writes is what we read, and the other way round. */
    size_t ulen = n;
    uint8_t *u = malloc(n);
    assert_int_equal(snappy_uncompress((const char *)c, clen, (char *)u, &ulen), SNAPPY_OK);
    assert_memory_equal(u, plain, n);
    free(u);
    free(c);
    free(plain);
    track_reset(&t);
}

/* The per-thread contexts from several threads at once. */
static void *worker(void *arg)
{
    const uint8_t *plain = arg;
    for (int i = 0; i < 20; i++) {
        static const syc_encoding_t encs[] = {SYC_ENCODING_GZIP, SYC_ENCODING_DEFLATE,
                                              SYC_ENCODING_ZSTD, SYC_ENCODING_SNAPPY};
        syc_encoding_t e = encs[i % 4];
        uint8_t *c;
        size_t clen;
        if (syc_compress(e, e == SYC_ENCODING_SNAPPY ? 0 : i % 3, 0, plain, 50000, &c, &clen) != 0)
            return (void *)1;
        track_t t = {0};
        result_t r = dec(&t, e, c, clen, 50000);
        bool ok = r.rc == 0 && r.len == 50000 && memcmp(r.out, plain, 50000) == 0;
        track_reset(&t);
        free(c);
        if (!ok) return (void *)1;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    uint8_t *plain = sample(50000);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, plain), 0);
    for (int i = 0; i < 4; i++) {
        void *res;
        assert_int_equal(pthread_join(th[i], &res), 0);
        assert_null(res);
    }
    free(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),   cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_gzip),    cmocka_unit_test(test_deflate),
        cmocka_unit_test(test_zstd),    cmocka_unit_test(test_snappy),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
