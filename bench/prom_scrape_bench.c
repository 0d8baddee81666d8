/*
 * prom_scrape_bench.c - the prometheus receiver's work per scrape, without the
 * HTTP: parse a saved page (text format or OpenMetrics), map it to OTLP with the
 * series state of one target (start times, staleness), pack the request.
 *
 *   curl -s 127.0.0.1:9100/metrics > node.txt
 *   build/bin/prom_scrape_bench node.txt 2000 [openmetrics]
 *
 * Prints samples per second end to end and for the parser alone.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "prom_otlp.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s PAGE ITERATIONS [openmetrics]\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *page = malloc(n > 0 ? (size_t)n : 1);
    if (!page || fread(page, 1, (size_t)n, f) != (size_t)n) return 1;
    fclose(f);
    int iters = atoi(argv[2]);
    bool om = argc > 3 && !strcmp(argv[3], "openmetrics");
    prom_label_t statics[] = {{"env", "bench"}};
    prom_target_t t = {.job = "node",
                       .instance = "10.0.0.1:9100",
                       .scheme = "http",
                       .labels = statics,
                       .nlabels = 1,
                       .honor_timestamps = true};
    prom_series_state_t st = {0};
    size_t samples = 0, points = 0, bytes = 0;
    double parse_s = 0, t0 = now_s();
    for (int i = 0; i < iters; i++) {
        prom_doc_t doc = {0};
        char err[256];
        double a = now_s();
        if (prom_parse(&doc, page, (size_t)n, om, 0, err, sizeof(err)) != 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        parse_s += now_s() - a;
        prom_arena_t arena = {0};
        prom_stats_t stats;
        void *req = prom_build(&t, &st, &doc, (uint64_t)(i + 1) * 1000000000u, 0.01, "bench",
                               &arena, &stats);
        if (!req) return 1;
        size_t len = protobuf_c_message_get_packed_size(req);
        uint8_t *buf = malloc(len);
        if (!buf) return 1;
        protobuf_c_message_pack(req, buf);
        free(buf);
        bytes += len;
        samples += doc.nsamples;
        points += stats.points;
        prom_arena_free(&arena);
        prom_doc_free(&doc);
    }
    double total = now_s() - t0;
    printf("%d scrapes of %ld bytes (%zu samples, %zu OTLP points, %zu bytes of OTLP each): "
           "%.0f samples/s end to end (parse, map, pack), %.2f ms per scrape; parser alone "
           "%.0f samples/s, %.1f MB/s\n",
           iters, n, samples / (size_t)iters, points / (size_t)iters, bytes / (size_t)iters,
           (double)samples / total, total * 1000 / iters, (double)samples / parse_s,
           (double)n * iters / parse_s / 1e6);
    prom_series_state_free(&st);
    free(page);
    return 0;
}
