/*
 * sm_expo.c - the exponential histogram of the spanmetrics connector (sm_expo.h).
 *
 * Bucket i at scale s holds the values in (base^i, base^(i+1)] with base =
 * 2^(2^-s): upper bounds are inclusive, as the OTLP data model says. An exact
 * power of two is recognised from its mantissa so that it lands in the bucket it
 * bounds, not one above by a rounding of the logarithm.
 */
#include "sm_expo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sm_expo_init(sm_expo_t *h, uint32_t max_size)
{
    memset(h, 0, sizeof(*h));
    h->scale = SM_EXPO_MAX_SCALE;
    h->max_size = max_size < 2 ? 2 : max_size;
}

void sm_expo_free(sm_expo_t *h)
{
    free(h->counts);
    h->counts = NULL;
}

void sm_expo_reset(sm_expo_t *h)
{
    if (h->counts) memset(h->counts, 0, sizeof(uint64_t) * h->max_size);
    h->n = 0;
    h->offset = 0;
    h->zero_count = h->count = 0;
    h->sum = h->min = h->max = 0;
}

/* floor(x / 2^k) for a signed x (an arithmetic shift, written portably). */
static int32_t shift_down(int32_t x, int k)
{
    if (k <= 0) return x;
    if (x >= 0) return x >> k;
    return -(int32_t)((((uint32_t) - (x + 1)) >> k) + 1);
}

int32_t sm_expo_index(double v, int32_t scale)
{
    int exp;
    double frac = frexp(v, &exp); /* v = frac * 2^exp, frac in [0.5, 1) */
    bool pow2 = frac == 0.5;
    if (scale <= 0) {
        int32_t i = pow2 ? exp - 2 : exp - 1; /* at scale 0 */
        return shift_down(i, -scale);
    }
    if (pow2) return (int32_t)((int64_t)(exp - 1) * ((int64_t)1 << scale) - 1);
    double factor = ldexp(1.0 / M_LN2, scale);
    return (int32_t)floor(log(v) * factor);
}

/* Lowers the scale by `change`, merging buckets. */
static void downscale(sm_expo_t *h, int change)
{
    if (change <= 0) return;
    if (h->n) {
        int32_t new_off = shift_down(h->offset, change);
        uint32_t last = 0;
        for (uint32_t i = 0; i < h->n; i++) {
            uint64_t c = h->counts[i];
            h->counts[i] = 0;
            uint32_t j = (uint32_t)(shift_down(h->offset + (int32_t)i, change) - new_off);
            h->counts[j] += c; /* j <= i: reading ahead of the writes */
            last = j;
        }
        h->offset = new_off;
        h->n = last + 1;
    }
    h->scale -= change;
}

bool sm_expo_add(sm_expo_t *h, double v)
{
    if (!h->counts) {
        h->counts = calloc(h->max_size, sizeof(uint64_t));
        if (!h->counts) return false;
    }
    h->count++;
    if (h->count == 1 || v < h->min) h->min = v;
    if (h->count == 1 || v > h->max) h->max = v;
    if (!(v > 0)) {
        h->zero_count++;
        return true;
    }
    h->sum += v;
    int32_t idx = sm_expo_index(v, h->scale);
    if (h->n == 0) {
        h->offset = idx;
        h->n = 1;
        h->counts[0] = 1;
        return true;
    }
    int32_t lo = idx < h->offset ? idx : h->offset;
    int32_t top = h->offset + (int32_t)h->n - 1;
    int32_t hi = idx > top ? idx : top;
    int change = 0;
    while ((int64_t)shift_down(hi, change) - shift_down(lo, change) + 1 > (int64_t)h->max_size)
        change++;
    if (change) {
        downscale(h, change);
        idx = shift_down(idx, change);
    }
    if (idx < h->offset) {
        uint32_t by = (uint32_t)(h->offset - idx);
        memmove(h->counts + by, h->counts, sizeof(uint64_t) * h->n);
        memset(h->counts, 0, sizeof(uint64_t) * by);
        h->offset = idx;
        h->n += by;
    } else if (idx >= h->offset + (int32_t)h->n) {
        h->n = (uint32_t)(idx - h->offset) + 1;
    }
    h->counts[idx - h->offset]++;
    return true;
}
