/*
 * loadgen_hist.h - a log-linear latency histogram (HdrHistogram's layout): values
 * below 2^LG_HIST_SUB_BITS are counted exactly, larger ones in buckets whose width
 * is 1/2^LG_HIST_SUB_BITS of their power of two, so every reported value is within
 * about 1.6 % of the truth. Fixed size, no allocation; one thread.
 */
#ifndef LOADGEN_HIST_H
#define LOADGEN_HIST_H

#include <stdint.h>

#define LG_HIST_SUB_BITS 6
#define LG_HIST_SUB      (1u << LG_HIST_SUB_BITS)
#define LG_HIST_BUCKETS  ((64 - LG_HIST_SUB_BITS + 1) * LG_HIST_SUB)

typedef struct lg_hist_s {
    uint64_t count;
    uint64_t max;
    uint64_t buckets[LG_HIST_BUCKETS];
} lg_hist_t;

/* Counts one value (nanoseconds, or any unit). */
void lg_hist_record(lg_hist_t *h, uint64_t value);

/* The value at quantile q (0..1): the upper edge of the bucket holding it, capped
 * at the largest value recorded. 0 when nothing was recorded. */
uint64_t lg_hist_quantile(const lg_hist_t *h, double q);

#endif
