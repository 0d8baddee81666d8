/*
 * compress_bench - the compression codecs of plugins/common/compress.c on the load
 * generator's request (bench/loadgen_payload.c: 512 spans x 10 attributes, about
 * 225 KB of protobuf): for each codec and level, compression and decompression
 * speed in MB of uncompressed data per CPU-second (this thread's CPU time), and
 * the compression ratio. The figures chose the exporters' default levels
 * (docs/benchmarks.md, "Compression codecs"). For comparison, zlib's deflate (what
 * the exporters used before) at levels 1 and 6 (decompressed with libdeflate).
 *
 *   compress_bench [--spans 512] [--attrs 10] [--seconds 1]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "compress.h"
#include "loadgen_payload.h"

/* This thread's CPU time: on a shared machine, time spent waiting for a CPU is not
 * counted, so the figures are per CPU-second like the router's. */
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *heap_alloc(void *ctx, size_t size)
{
    /* The bench keeps one block and reuses it: ctx is the block, big enough. */
    (void)size;
    return ctx;
}

/* zlib's one-shot gzip, the previous exporter path, for comparison. */
static size_t zlib_gzip(const uint8_t *in, size_t len, int level, uint8_t *out, size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    int rc = deflate(&zs, Z_FINISH);
    size_t n = cap - zs.avail_out;
    deflateEnd(&zs);
    return rc == Z_STREAM_END ? n : 0;
}

static void row(const char *name, int level, const lg_payload_t *p, double seconds,
                uint8_t *scratch, size_t scratch_len)
{
    size_t total_in = 0, clen = 0;
    unsigned n = 0;
    uint8_t *c = NULL;
    double t0 = now(), t;
    do {
        free(c);
        c = NULL;
        if (level < 0 && strcmp(name, "zlib-gzip") == 0) {
            c = malloc(compressBound(p->len) + 64);
            clen = zlib_gzip(p->body, p->len, -level, c, compressBound(p->len) + 64);
        } else if (syc_compress(syc_encoding_parse(name), level, 0, p->body, p->len, &c, &clen) !=
                   0) {
            clen = 0;
        }
        if (clen == 0) {
            fprintf(stderr, "%s level %d: compression failed\n", name, level);
            exit(1);
        }
        total_in += p->len;
        n++;
        t = now() - t0;
    } while (t < seconds);
    double cmbs = (double)total_in / t / 1e6;
    double cms = t / n * 1e3;

    syc_encoding_t enc =
        strcmp(name, "zlib-gzip") == 0 ? SYC_ENCODING_GZIP : syc_encoding_parse(name);
    total_in = 0;
    n = 0;
    t0 = now();
    do {
        uint8_t *out;
        size_t out_len;
        char err[128];
        if (syc_decompress(enc, c, clen, scratch_len - 1, heap_alloc, scratch, &out, &out_len, err,
                           sizeof(err)) != 0 ||
            out_len != p->len || memcmp(out, p->body, out_len) != 0) {
            fprintf(stderr, "%s level %d: round trip failed: %s\n", name, level, err);
            exit(1);
        }
        total_in += p->len;
        n++;
        t = now() - t0;
    } while (t < seconds);
    double dmbs = (double)total_in / t / 1e6;
    printf("| %s | %d | %zu | %.2f | %.0f | %.3f | %.0f |\n", name, level < 0 ? -level : level,
           clen, (double)p->len / (double)clen, cmbs, cms, dmbs);
    free(c);
}

int main(int argc, char **argv)
{
    lg_payload_opts_t o = {.spans = 512, .attrs = 10, .distinct = 1, .seed = 1};
    double seconds = 1;
    static const struct option longs[] = {{"spans", required_argument, NULL, 's'},
                                          {"attrs", required_argument, NULL, 'a'},
                                          {"seconds", required_argument, NULL, 't'},
                                          {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "s:a:t:", longs, NULL)) != -1) {
        if (ch == 's')
            o.spans = (unsigned)atoi(optarg);
        else if (ch == 'a')
            o.attrs = (unsigned)atoi(optarg);
        else if (ch == 't')
            seconds = atof(optarg);
        else {
            fprintf(stderr, "usage: compress_bench [--spans N] [--attrs N] [--seconds S]\n");
            return 2;
        }
    }
    lg_payload_set_t set;
    char err[256];
    if (lg_payload_build(&o, &set, err, sizeof(err)) < 0) {
        fprintf(stderr, "compress_bench: %s\n", err);
        return 1;
    }
    const lg_payload_t *p = &set.items[0];
    /* Room for the decompressed request; the allocator hands out this one block. */
    size_t scratch_len = p->len * 2 + 65536;
    uint8_t *scratch = malloc(scratch_len);
    if (!scratch) return 1;

    printf("request: %u spans x %u attributes, %zu bytes of protobuf\n\n", p->spans, o.attrs,
           p->len);
    printf("| codec | level | compressed bytes | ratio | compress MB/s | ms per request | "
           "decompress MB/s |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- |\n");
    static const int ld_levels[] = {1, 2, 4, 6, 9, 12};
    for (size_t i = 0; i < sizeof(ld_levels) / sizeof(ld_levels[0]); i++)
        row("gzip", ld_levels[i], p, seconds, scratch, scratch_len);
    row("zlib-gzip", -1, p, seconds, scratch, scratch_len);
    row("zlib-gzip", -6, p, seconds, scratch, scratch_len);
    row("deflate", 6, p, seconds, scratch, scratch_len);
    static const int zstd_levels[] = {1, 2, 3, 5, 9};
    for (size_t i = 0; i < sizeof(zstd_levels) / sizeof(zstd_levels[0]); i++)
        row("zstd", zstd_levels[i], p, seconds, scratch, scratch_len);
    row("snappy", 0, p, seconds, scratch, scratch_len);
    free(scratch);
    lg_payload_free(&set);
    return 0;
}
