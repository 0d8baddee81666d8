/*
 * sm_expo.h - a base-2 exponential histogram of positive values (span
 * durations), as the collector's spanmetrics connector keeps one
 * (github.com/lightstep/go-expohisto): it starts at scale 20 and lowers the scale
 * just enough that the occupied buckets fit in max_size; zeros are counted apart.
 */
#ifndef SY_SPANMETRICS_EXPO_H
#define SY_SPANMETRICS_EXPO_H

#include <stdbool.h>
#include <stdint.h>

#define SM_EXPO_MAX_SCALE 20

typedef struct sm_expo_s {
    int32_t scale;
    int32_t offset; /* index of counts[0] */
    uint32_t n;     /* buckets in use, counts[0..n) */
    uint32_t max_size;
    uint64_t *counts; /* max_size of them, allocated at the first value */
    uint64_t zero_count, count;
    double sum, min, max;
} sm_expo_t;

void sm_expo_init(sm_expo_t *h, uint32_t max_size);
/* Records one value (negative values count as zero). false on out of memory. */
bool sm_expo_add(sm_expo_t *h, double v);
/* Forgets every value, keeping the scale and the memory. */
void sm_expo_reset(sm_expo_t *h);
void sm_expo_free(sm_expo_t *h);
/* The bucket index of v > 0 at a scale (exported for the tests). */
int32_t sm_expo_index(double v, int32_t scale);

#endif
