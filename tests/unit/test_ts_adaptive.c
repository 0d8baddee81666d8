/*
 * test_ts_adaptive.c - the controller of the tail_sampling `adaptive` policy
 * (plugins/processors/tail_sampling/ts_adaptive.c) on fake traces and a fake
 * clock, without noise from real time:
 *
 *  - a step of the offered rate: the probability of every interval (read
 *    through the policy's gauge, in millionths) is the one docs/sampling.md's
 *    equations give, falls monotonically, and is within 4.3 % (in the kept
 *    rate) of the target settle_time after the first interval at the new rate;
 *    the traces kept in each interval are within 5 sd of the binomial count;
 *  - a step down mirrors it from below;
 *  - a ramp up or down: the kept rate is back at the target (3 %) within six
 *    intervals while the load still moves, and there again one interval after it
 *    stops (that one interval is off by the ramp's step, e^-g);
 *  - error and slow traces are kept and not counted against the target;
 *  - an idle service returns to max_probability; min/max_probability clamp;
 *  - services beyond max_services share the overflow controller;
 *  - decision ticks a little under a second apart still close an interval each;
 *  - the duration parser.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ts_adaptive.h"

#define SEC 1000000000ull

/* ---- a fake view: resource <- scope <- span ------------------------------------- */

typedef struct fnode_s {
    struct fnode_s *parent;
    const char *service; /* resources only */
    int64_t status, start, end;
    bool child;
} fnode_t;

static sy_view_node_t *f_parent(const sy_view_node_t *n)
{
    return (sy_view_node_t *)((const fnode_t *)n)->parent;
}

static int f_get(sy_view_node_t *n, sy_field_t f, sy_value_t *v)
{
    static const uint8_t parent_id[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const fnode_t *x = (const fnode_t *)n;
    memset(v, 0, sizeof *v);
    switch (f) {
    case SY_FIELD_STATUS_CODE:
        v->type = SY_VALUE_INT;
        v->i = x->status;
        return 0;
    case SY_FIELD_START_TIME:
        v->type = SY_VALUE_INT;
        v->i = x->start;
        return 0;
    case SY_FIELD_END_TIME:
        v->type = SY_VALUE_INT;
        v->i = x->end;
        return 0;
    case SY_FIELD_PARENT_SPAN_ID:
        if (x->child) {
            v->type = SY_VALUE_BYTES;
            v->bytes = parent_id;
            v->len = 8;
        }
        return 0;
    default:
        return 0;
    }
}

static int f_attr(sy_view_node_t *n, const char *key, size_t keylen, sy_value_t *v)
{
    const fnode_t *x = (const fnode_t *)n;
    if (!x->service || keylen != 12 || memcmp(key, "service.name", 12)) return -1;
    memset(v, 0, sizeof *v);
    v->type = SY_VALUE_STRING;
    v->str = x->service;
    v->len = strlen(x->service);
    return 0;
}

/* ---- fake metrics: a registered name and its last value ---------------------------- */

typedef struct fmetric_s {
    char name[160];
    int64_t value;
} fmetric_t;

static fmetric_t metrics[16];
static size_t nmetrics;

static sy_metric_t *f_register(sy_instance_t *in, const char *name, const char *help,
                               sy_metric_type_t type)
{
    (void)in, (void)help, (void)type;
    assert_true(nmetrics < 16);
    snprintf(metrics[nmetrics].name, sizeof metrics[nmetrics].name, "%s", name);
    metrics[nmetrics].value = 0;
    return (sy_metric_t *)&metrics[nmetrics++];
}

static void f_add(sy_metric_t *m, int64_t d)
{
    ((fmetric_t *)m)->value += d;
}

static void f_set(sy_metric_t *m, int64_t v)
{
    ((fmetric_t *)m)->value = v;
}

static int64_t metric_value(const char *what)
{
    char name[160];
    snprintf(name, sizeof name, "processor_tail_sampling_adaptive_%s_p", what);
    for (size_t i = 0; i < nmetrics; i++)
        if (!strcmp(metrics[i].name, name)) return metrics[i].value;
    fail_msg("metric %s not registered", name);
    return -1;
}

/* ---- the fixture ---------------------------------------------------------------------- */

typedef struct fx_s {
    sy_host_api_t api;
    ts_eval_t ev;
    ts_adaptive_t *a;
    fnode_t res[4], scope[4];
    uint64_t rng;
} fx_t;

static ts_adaptive_cfg_t default_cfg(void)
{
    ts_adaptive_cfg_t c = {.target = 50,
                           .latency_ms = 1000,
                           .keep_errors = true,
                           .settle_ns = 5 * SEC,
                           .interval_ns = SEC,
                           .min_p = 0,
                           .max_p = 1,
                           .max_services = 1000,
                           .salt = NULL};
    return c;
}

static void fx_init(fx_t *fx, const ts_adaptive_cfg_t *cfg)
{
    static const char *const names[4] = {"alpha", "beta", "gamma", "delta"};
    memset(fx, 0, sizeof *fx);
    nmetrics = 0;
    fx->api.view_parent = f_parent;
    fx->api.view_get = f_get;
    fx->api.view_attr_get = f_attr;
    fx->api.metric_register = f_register;
    fx->api.metric_add = f_add;
    fx->api.metric_set = f_set;
    fx->ev.api = &fx->api;
    for (int i = 0; i < 4; i++) {
        fx->res[i].service = names[i];
        fx->scope[i].parent = &fx->res[i];
    }
    fx->rng = 0x9e3779b97f4a7c15ull;
    assert_non_null(fx->a = ts_adaptive_new(cfg));
    ts_adaptive_register_metrics(fx->a, &fx->api, NULL, "p");
}

static uint64_t rnd(fx_t *fx)
{
    fx->rng ^= fx->rng << 13;
    fx->rng ^= fx->rng >> 7;
    fx->rng ^= fx->rng << 17;
    return fx->rng;
}

enum { ORDINARY, ERROR_TRACE, SLOW_TRACE };

/* Decides one trace of two spans (root, child) of service `svc` at `now`;
 * returns whether it was kept. */
static bool decide(fx_t *fx, int svc, int kind, uint64_t now)
{
    uint8_t id[16];
    uint64_t a = rnd(fx), b = rnd(fx);
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 8);
    int64_t dur_ms = kind == SLOW_TRACE ? 1500 : 20;
    fnode_t root = {.parent = &fx->scope[svc], .start = 1000000, .end = 1000000 + dur_ms * 1000000};
    fnode_t child = {.parent = &fx->scope[svc],
                     .start = 2000000,
                     .end = 3000000,
                     .child = true,
                     .status = kind == ERROR_TRACE ? 2 : 0};
    /* The child first: the service comes from the root all the same. */
    ts_span_t spans[2] = {{(sy_view_node_t *)&child, NULL}, {(sy_view_node_t *)&root, NULL}};
    ts_trace_data_t t = {id, spans, 2, 0};
    fx->ev.now_ns = now;
    return ts_adaptive_eval(fx->a, &fx->ev, &t) == TS_SAMPLED;
}

/* One decision batch of n ordinary traces of svc at `now`; returns how many
 * were kept; then the metrics are flushed, as the processor does after a tick. */
static unsigned batch(fx_t *fx, int svc, unsigned n, uint64_t now)
{
    unsigned kept = 0;
    for (unsigned i = 0; i < n; i++)
        kept += decide(fx, svc, ORDINARY, now);
    ts_adaptive_flush_metrics(fx->a, &fx->api);
    return kept;
}

/* docs/sampling.md: L <- L + alpha (ln max(r, T) - L), p = clamp(T / e^L). */
static double model_step(double *L, bool *has, double rate, double target, double dt, double tau)
{
    double x = log(rate > target ? rate : target);
    if (!*has)
        *L = x;
    else
        *L += (1 - exp(-dt / tau)) * (x - *L);
    *has = true;
    double p = target / exp(*L);
    return p > 1 ? 1 : p;
}

static void check_binomial(unsigned kept, unsigned n, double p)
{
    double mean = n * p, sd = sqrt(n * p * (1 - p));
    if (fabs(kept - mean) > 5 * sd + 1)
        fail_msg("kept %u of %u, expected %.1f ± %.1f (p %.5f)", kept, n, mean, 5 * sd, p);
}

/* A step 200 -> 2000 traces/s then 2000 -> 200. */
static void test_step_follows_the_equations(void **state)
{
    (void)state;
    fx_t fx;
    ts_adaptive_cfg_t cfg = default_cfg();
    fx_init(&fx, &cfg);
    double L = 0, tau = 5.0 / 4.0;
    bool has = false;
    double p_model = 1.0; /* before the first interval closes */
    double prev = 2.0;
    for (int k = 0; k < 40; k++) {
        unsigned n = (k >= 10 && k < 25) ? 2000 : 200;
        unsigned kept = batch(&fx, 0, n, (uint64_t)k * SEC);
        /* The batch of interval k was decided with the probability set when
         * interval k-1 closed (at this very batch). */
        if (k > 0)
            p_model = model_step(&L, &has, (k - 1 >= 10 && k - 1 < 25) ? 2000 : 200, 50, 1.0, tau);
        int64_t ppm = metric_value("probability_max_ppm");
        if (llabs(ppm - llround(p_model * 1e6)) > 1)
            fail_msg("interval %d: probability %lld ppm, the equations give %.0f", k,
                     (long long)ppm, p_model * 1e6);
        check_binomial(kept, n, p_model);
        double kept_rate = p_model * n; /* expected kept per second */
        if (k >= 11 && k < 25) {
            assert_true(p_model <= prev + 1e-12);                  /* monotone after a rise */
            if (k >= 10 + 5) assert_true(kept_rate <= 50 * 1.044); /* settle_time */
            assert_true(kept_rate >= 50);                          /* from above: no undershoot */
        }
        if (k >= 26) {
            assert_true(p_model >= prev - 1e-12); /* monotone after a fall */
            assert_true(kept_rate <= 50);         /* from below: no overshoot */
            if (k >= 25 + 5) assert_true(kept_rate >= 50 / 1.044);
        }
        prev = p_model;
    }
    assert_int_equal(metric_value("services"), 1);
    ts_adaptive_free(fx.a);
}

/* A ramp: the offered rate grows by e^0.087 a second (200 -> 2500 traces/s in
 * 29 s), then holds. A first-order filter alone keeps about 1.2 x the target all
 * along the ramp; with the trend (three rising intervals in a row) the kept rate
 * returns to the target while the load still climbs. A ramp down mirrors it. */
static void ramp(double g, double start)
{
    fx_t fx;
    ts_adaptive_cfg_t cfg = default_cfg();
    fx_init(&fx, &cfg);
    double peak = 0;
    for (int k = 0; k < 50; k++) {
        int j = k < 10 ? 0 : k < 39 ? k - 10 : 29;
        unsigned n = (unsigned)lround(start * exp(g * j));
        unsigned kept = batch(&fx, 0, n, (uint64_t)k * SEC);
        double p = (double)metric_value("probability_max_ppm") / 1e6;
        check_binomial(kept, n, p);
        double ratio = p * n / 50; /* expected kept over the target */
        if (k >= 10 && k < 17 && ratio > peak) peak = ratio;
        /* the first interval after the ramp: p still expected one more step of
         * it (the only deviation, and the mirror of the ramp's first intervals) */
        double lo = k == 40 && g > 0 ? exp(-g) : 1, hi = k == 40 && g < 0 ? exp(-g) : 1;
        /* from the 6th interval of the ramp to the end of the run */
        if (k >= 16 && (ratio > hi * 1.03 || ratio < lo / 1.03))
            fail_msg("g %.3f, interval %d: %u offered, kept %.3f x the target", g, k, n, ratio);
    }
    /* the transient at its start stays under the first-order filter's lag */
    if (g > 0 && peak > exp(g * (5.0 / 4.0 + 1.0)) * 1.01)
        fail_msg("ramp start: kept %.3f x the target", peak);
    ts_adaptive_free(fx.a);
}

static void test_ramp_follows_the_trend(void **state)
{
    (void)state;
    ramp(0.087, 200);
    ramp(-0.087, 2500);
}

static void test_errors_and_slow_not_counted(void **state)
{
    (void)state;
    fx_t fx;
    ts_adaptive_cfg_t cfg = default_cfg();
    fx_init(&fx, &cfg);
    for (int k = 0; k < 5; k++) {
        for (int i = 0; i < 3000; i++) {
            assert_true(decide(&fx, 1, ERROR_TRACE, (uint64_t)k * SEC));
            assert_true(decide(&fx, 1, SLOW_TRACE, (uint64_t)k * SEC));
        }
        /* 20 ordinary traces/s: under the target, all kept. */
        assert_int_equal(batch(&fx, 1, 20, (uint64_t)k * SEC), 20);
    }
    assert_int_equal(metric_value("kept_errors"), 15000);
    assert_int_equal(metric_value("kept_slow"), 15000);
    assert_int_equal(metric_value("kept_target"), 100);
    assert_int_equal(metric_value("not_kept"), 0);
    assert_int_equal(metric_value("probability_min_ppm"), 1000000);
    ts_adaptive_free(fx.a);

    /* keep_errors false, no latency rule: they are ordinary traces. */
    cfg.keep_errors = false;
    cfg.latency_ms = 0;
    fx_init(&fx, &cfg);
    unsigned kept = 0;
    for (int k = 0; k < 10; k++)
        for (int i = 0; i < 1000; i++)
            kept += decide(&fx, 0, i % 2 ? ERROR_TRACE : SLOW_TRACE, (uint64_t)k * SEC);
    assert_true(kept < 1000 + 9 * 1000 / 10);
    ts_adaptive_flush_metrics(fx.a, &fx.api);
    assert_int_equal(metric_value("kept_errors"), 0);
    assert_int_equal(metric_value("kept_slow"), 0);
    ts_adaptive_free(fx.a);
}

static void test_idle_service_and_clamps(void **state)
{
    (void)state;
    fx_t fx;
    ts_adaptive_cfg_t cfg = default_cfg();
    cfg.min_p = 0.1;
    cfg.max_p = 0.8;
    fx_init(&fx, &cfg);
    batch(&fx, 0, 5000, 0);
    assert_int_equal(metric_value("probability_max_ppm"), 800000); /* max before a measure */
    batch(&fx, 0, 5000, SEC);
    assert_int_equal(metric_value("probability_max_ppm"), 100000); /* 50/5000 clamped */
    /* Idle (another service keeps the clock going): back to max_probability. */
    for (int k = 2; k < 40; k++)
        batch(&fx, 1, 10, (uint64_t)k * SEC);
    assert_int_equal(metric_value("probability_min_ppm"), 800000);
    assert_int_equal(metric_value("services"), 2);
    ts_adaptive_free(fx.a);
}

static void test_overflow_bucket(void **state)
{
    (void)state;
    fx_t fx;
    ts_adaptive_cfg_t cfg = default_cfg();
    cfg.max_services = 2;
    fx_init(&fx, &cfg);
    for (int k = 0; k < 20; k++) {
        batch(&fx, 0, 1000, (uint64_t)k * SEC);
        batch(&fx, 1, 100, (uint64_t)k * SEC);
        batch(&fx, 2, 300, (uint64_t)k * SEC); /* beyond max_services */
        batch(&fx, 3, 300, (uint64_t)k * SEC); /* shares the overflow controller */
    }
    assert_int_equal(metric_value("overflow_traces"), 20 * 600);
    assert_int_equal(metric_value("services"), 3);
    /* alpha 1000/s: 50/1000; the overflow bucket 600/s: 50/600. */
    assert_true(llabs(metric_value("probability_min_ppm") - 50000) <= 1);
    assert_true(llabs(metric_value("probability_max_ppm") - 500000) <= 1); /* beta 100/s */
    ts_adaptive_free(fx.a);
}

/* Ticks 999.9 ms apart by the clock: every tick closes an interval of about one
 * second, so the rate is measured per tick, not per two. */
static void test_ticks_under_a_second(void **state)
{
    (void)state;
    fx_t fx;
    ts_adaptive_cfg_t cfg = default_cfg();
    cfg.settle_ns = SEC; /* tau 0.25 s: alpha ~ 1, the probability follows each interval */
    fx_init(&fx, &cfg);
    uint64_t tick = SEC - 100000;
    for (int k = 0; k < 6; k++)
        batch(&fx, 0, k < 3 ? 500 : 1000, (uint64_t)k * tick);
    /* The last interval held the 1000 traces of tick 4 alone. */
    int64_t ppm = metric_value("probability_max_ppm");
    assert_true(ppm > 49000 && ppm < 52000);
    ts_adaptive_free(fx.a);
}

static void test_durations(void **state)
{
    (void)state;
    uint64_t ns = 0;
    assert_int_equal(ts_adaptive_parse_duration("10s", &ns), 0);
    assert_true(ns == 10 * SEC);
    assert_int_equal(ts_adaptive_parse_duration("1m30s", &ns), 0);
    assert_true(ns == 90 * SEC);
    assert_int_equal(ts_adaptive_parse_duration("250ms", &ns), 0);
    assert_true(ns == 250000000u);
    assert_int_equal(ts_adaptive_parse_duration("1.5h", &ns), 0);
    assert_true(ns == 5400 * SEC);
    assert_int_equal(ts_adaptive_parse_duration("", &ns), -1);
    assert_int_equal(ts_adaptive_parse_duration("10", &ns), -1);
    assert_int_equal(ts_adaptive_parse_duration("soon", &ns), -1);
    assert_int_equal(ts_adaptive_parse_duration("-1s", &ns), -1);
    assert_int_equal(ts_adaptive_parse_duration("5x", &ns), -1);
    assert_int_equal(ts_adaptive_parse_duration("1e30h", &ns), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_follows_the_equations),
        cmocka_unit_test(test_ramp_follows_the_trend),
        cmocka_unit_test(test_errors_and_slow_not_counted),
        cmocka_unit_test(test_idle_service_and_clamps),
        cmocka_unit_test(test_overflow_bucket),
        cmocka_unit_test(test_ticks_under_a_second),
        cmocka_unit_test(test_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
