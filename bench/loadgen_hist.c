/*
 * loadgen_hist.c - the log-linear latency histogram of loadgen_hist.h.
 */
#include "loadgen_hist.h"

/* The bucket of v: exact below LG_HIST_SUB; above, the top LG_HIST_SUB_BITS bits
 * after the leading one select the sub-bucket of v's power of two. */
static unsigned bucket_of(uint64_t v)
{
    if (v < LG_HIST_SUB) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - LG_HIST_SUB_BITS;
    return (shift + 1) * LG_HIST_SUB + (unsigned)((v >> shift) & (LG_HIST_SUB - 1));
}

/* The largest value that falls in bucket i. */
static uint64_t bucket_upper(unsigned i)
{
    if (i < LG_HIST_SUB) return i;
    unsigned shift = i / LG_HIST_SUB - 1;
    uint64_t sub = i % LG_HIST_SUB;
    uint64_t low = (LG_HIST_SUB + sub) << shift;
    return low + ((uint64_t)1 << shift) - 1;
}

void lg_hist_record(lg_hist_t *h, uint64_t value)
{
    h->buckets[bucket_of(value)]++;
    h->count++;
    if (value > h->max) h->max = value;
}

uint64_t lg_hist_quantile(const lg_hist_t *h, double q)
{
    if (h->count == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    /* The rank of the wanted value, 1-based: ceil(q * count), at least 1. */
    uint64_t rank = (uint64_t)(q * (double)h->count);
    if ((double)rank < q * (double)h->count) rank++;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->buckets[i];
        if (seen >= rank) {
            uint64_t v = bucket_upper(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
