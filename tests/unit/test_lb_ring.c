/*
 * test_lb_ring.c - the loadbalancing exporter's consistent hash ring
 * (plugins/exporters/loadbalancing/lb_ring.c) against the vectors of the
 * collector's own tests (opentelemetry-collector-contrib,
 * exporter/loadbalancingexporter/consistent_hashing_test.go: TestNewHashRing,
 * TestEndpointFor, TestPositionsForEndpoints, TestBinarySearch), so that a key goes
 * to the same backend as in otelcol. The routing through the real .so, checked
 * against an independent Python reimplementation of the ring, is in
 * tests/integration/test_loadbalancing.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lb_ring.h"

/* TestPositionsForEndpoints, weight 5: "Single Endpoint", "Duplicate Endpoint". */
static void test_positions_single(void **state)
{
    (void)state;
    static const uint32_t want[] = {1401, 4175, 14133, 17836, 21667};
    const char *one[] = {"endpoint-1"};
    const char *dup[] = {"endpoint-1", "endpoint-1"};
    lb_ring_t r;
    for (int t = 0; t < 2; t++) {
        assert_int_equal(lb_ring_build_weighted(&r, t ? dup : one, t ? 2 : 1, 5), 0);
        assert_int_equal(r.n, 5);
        for (size_t i = 0; i < 5; i++) {
            assert_int_equal(r.points[i].pos, want[i]);
            assert_int_equal(r.points[i].endpoint, 0); /* the first of the duplicates */
        }
        lb_ring_free(&r);
    }
}

/* TestPositionsForEndpoints, weight 5: "Multiple Endpoints". */
static void test_positions_multiple(void **state)
{
    (void)state;
    static const uint32_t pos[] = {1401,  4175,  10240, 14133, 15002,
                                   17836, 21263, 21667, 26806, 27020};
    static const uint32_t ep[] = {0, 0, 1, 0, 1, 0, 1, 0, 1, 1};
    const char *eps[] = {"endpoint-1", "endpoint-2"};
    lb_ring_t r;
    assert_int_equal(lb_ring_build_weighted(&r, eps, 2, 5), 0);
    assert_int_equal(r.n, 10);
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(r.points[i].pos, pos[i]);
        assert_int_equal(r.points[i].endpoint, ep[i]);
    }
    lb_ring_free(&r);
}

/* TestNewHashRing and TestEndpointFor: the default weight of 100. */
static void test_endpoint_for(void **state)
{
    (void)state;
    const char *eps[] = {"endpoint-1", "endpoint-2"};
    lb_ring_t r;
    assert_int_equal(lb_ring_build(&r, eps, 2), 0);
    assert_int_equal(r.n, 200);
    static const uint8_t a[] = {1, 2, 0, 0}, b[] = {128, 128, 0, 0};
    assert_int_equal(lb_ring_find(&r, a, sizeof(a)), 0);
    assert_int_equal(lb_ring_find(&r, b, sizeof(b)), 1);
    assert_int_equal(lb_ring_find(&r, "ad-service-7", 12), 0);
    assert_int_equal(lb_ring_find(&r, "get-recommendations-1", 21), 1);
    lb_ring_free(&r);
}

/* An empty ring finds nothing; every point is found by a key hashing onto it. */
static void test_empty_and_order(void **state)
{
    (void)state;
    lb_ring_t r;
    assert_int_equal(lb_ring_build(&r, NULL, 0), 0);
    assert_int_equal(lb_ring_find(&r, "x", 1), -1);
    const char *eps[] = {"10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"};
    assert_int_equal(lb_ring_build(&r, eps, 3), 0);
    assert_true(r.n > 280 && r.n <= 300);
    for (size_t i = 1; i < r.n; i++)
        assert_true(r.points[i - 1].pos < r.points[i].pos);
    lb_ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions_single),
        cmocka_unit_test(test_positions_multiple),
        cmocka_unit_test(test_endpoint_for),
        cmocka_unit_test(test_empty_and_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
