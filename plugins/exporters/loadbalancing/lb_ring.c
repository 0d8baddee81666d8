/*
 * lb_ring.c - the collector's consistent hash ring (see lb_ring.h for the rules).
 * zlib's crc32() is the IEEE polynomial, the one Go's crc32.NewIEEE() computes.
 */
#include "lb_ring.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static uint32_t crc_ieee(const void *data, size_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    const Bytef *p = data;
    while (len > 0) {
        uInt chunk = len > 0x40000000u ? 0x40000000u : (uInt)len;
        c = crc32(c, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return (uint32_t)c;
}

static int point_cmp(const void *a, const void *b)
{
    const lb_ring_point_t *x = a, *y = b;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

int lb_ring_build(lb_ring_t *ring, const char *const *endpoints, size_t n)
{
    return lb_ring_build_weighted(ring, endpoints, n, LB_RING_WEIGHT);
}

int lb_ring_build_weighted(lb_ring_t *ring, const char *const *endpoints, size_t n, unsigned weight)
{
    ring->points = NULL;
    ring->n = 0;
    if (n == 0) return 0;
    bool *taken = calloc(LB_RING_POSITIONS, sizeof(*taken));
    lb_ring_point_t *pts = malloc(n * (weight ? weight : 1) * sizeof(*pts));
    if (!taken || !pts) {
        free(taken);
        free(pts);
        return -1;
    }
    size_t k = 0;
    for (size_t e = 0; e < n; e++) {
        uint32_t base = crc_ieee(endpoints[e], strlen(endpoints[e]));
        for (unsigned i = 0; i < weight; i++) {
            /* crc32(endpoint || byte(i)), continuing the endpoint's crc by one byte. */
            unsigned char b = (unsigned char)i;
            uint32_t pos = (uint32_t)crc32(base, &b, 1) % LB_RING_POSITIONS;
            if (taken[pos]) continue;
            taken[pos] = true;
            pts[k++] = (lb_ring_point_t){.pos = pos, .endpoint = (uint32_t)e};
        }
    }
    free(taken);
    /* Positions are unique, so the order is total and qsort's instability is moot. */
    qsort(pts, k, sizeof(*pts), point_cmp);
    ring->points = pts;
    ring->n = k;
    return 0;
}

long lb_ring_find(const lb_ring_t *ring, const void *key, size_t len)
{
    if (ring->n == 0) return -1;
    uint32_t pos = crc_ieee(key, len) % LB_RING_POSITIONS;
    /* The first point at or after pos (lower bound), else the first point. */
    size_t lo = 0, hi = ring->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid].pos < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == ring->n) lo = 0;
    return (long)ring->points[lo].endpoint;
}

void lb_ring_free(lb_ring_t *ring)
{
    free(ring->points);
    ring->points = NULL;
    ring->n = 0;
}
