/*
 * lb_ring.h - the consistent hash ring of the collector's loadbalancing exporter
 * (opentelemetry-collector-contrib, exporter/loadbalancingexporter/
 * consistent_hashing.go), reproduced exactly so that a fleet mixing Switchyard and
 * otelcol sends one routing key to the same backend:
 *
 *  - the ring has 36000 positions ("360 degrees with two decimal places");
 *  - each endpoint, in the order the resolver gives them (sorted), gets 100 points:
 *    point i is crc32-IEEE(endpoint bytes followed by the one byte i) % 36000; a
 *    position already taken (by an earlier endpoint, or an earlier point of the
 *    same one) is skipped;
 *  - the points are sorted by position;
 *  - a key (the 16 trace-id bytes, a service name, ...) goes to the first point
 *    whose position is >= crc32-IEEE(key) % 36000, wrapping to the first point.
 *
 * Endpoints are referred to by their index in the list the ring was built from.
 */
#ifndef LB_RING_H
#define LB_RING_H

#include <stddef.h>
#include <stdint.h>

enum { LB_RING_POSITIONS = 36000, LB_RING_WEIGHT = 100 };

typedef struct lb_ring_point_s {
    uint32_t pos;
    uint32_t endpoint; /* index into the list given to lb_ring_build() */
} lb_ring_point_t;

typedef struct lb_ring_s {
    lb_ring_point_t *points; /* sorted by pos */
    size_t n;
} lb_ring_t;

/* Builds the ring of `n` endpoints (NUL-terminated, in resolver order). Returns 0 or
 * -1 when out of memory (the ring is then empty). An empty list makes an empty ring. */
int lb_ring_build(lb_ring_t *ring, const char *const *endpoints, size_t n);

/* The same with `weight` points per endpoint instead of 100 (the collector's tests
 * use 5). */
int lb_ring_build_weighted(lb_ring_t *ring, const char *const *endpoints, size_t n,
                           unsigned weight);

/* The endpoint index of a key, or -1 on an empty ring. */
long lb_ring_find(const lb_ring_t *ring, const void *key, size_t len);

void lb_ring_free(lb_ring_t *ring);

#endif
