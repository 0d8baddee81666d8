/*
 * ts_adaptive.c - the `adaptive` policy (ts_adaptive.h): per-service rate
 * estimates and probabilities, the error and latency rules, and its metrics.
 */
#include "ts_adaptive.h"

#include "hash.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Name of the shared controller of services beyond max_services. */
#define OVERFLOW_NAME "(other)"

typedef struct svc_s {
    char *name;
    size_t len;
    uint64_t hash;
    uint64_t offered;  /* ordinary traces in the current interval */
    uint64_t first_ns; /* when it was first seen, if within the current interval */
    double log_rate;   /* the estimate: EWMA of log(offered traces per second) */
    double x_prev;     /* the last interval's measured log rate */
    double d_prev[2];  /* the slopes (per second) of the two intervals before */
    int nd;            /* how many of d_prev are known */
    double p;          /* the probability in force */
    bool has_estimate;
    bool used; /* seen at least once (the overflow bucket may never be) */
} svc_t;

struct ts_adaptive_s {
    ts_adaptive_cfg_t cfg;
    char *salt;
    size_t salt_len;
    double tau_s; /* time constant: settle_time / 4 */
    svc_t *svcs;  /* [0] is the overflow bucket */
    size_t nsvcs, cap_svcs;
    uint32_t *slots; /* open addressing: index into svcs + 1, 0 empty */
    size_t nslots;
    uint64_t interval_start_ns;
    bool started;
    /* metrics: counts since the last flush */
    uint64_t n_errors, n_slow, n_kept, n_not_kept, n_overflow;
    sy_metric_t *m_errors, *m_slow, *m_kept, *m_not_kept, *m_overflow;
    sy_metric_t *m_services, *m_pmin, *m_pmax;
};

/* splitmix64's finaliser: spreads the FNV-1a hash of IDs that differ only in
 * their last bytes over the high bits that the threshold compares. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double clampd(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

int ts_adaptive_parse_duration(const char *s, uint64_t *ns)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1},  {"us", 1e3}, {"µs", 1e3},  {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    double total = 0;
    if (!s || !*s) return -1;
    while (*s) {
        char *end;
        double v = strtod(s, &end);
        if (end == s || v < 0 || !isfinite(v)) return -1;
        s = end;
        size_t best = 0;
        double mul = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t n = strlen(units[i].unit);
            if (n > best && !strncmp(s, units[i].unit, n)) {
                best = n;
                mul = units[i].ns;
            }
        }
        if (!best) return -1;
        s += best;
        total += v * mul;
    }
    if (total >= 1.8e19) return -1;
    *ns = (uint64_t)total;
    return 0;
}

ts_adaptive_t *ts_adaptive_new(const ts_adaptive_cfg_t *cfg)
{
    ts_adaptive_t *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->cfg = *cfg;
    const char *salt = cfg->salt && cfg->salt[0] ? cfg->salt : "adaptive";
    a->salt = strdup(salt);
    a->salt_len = strlen(salt);
    a->cfg.salt = a->salt;
    a->tau_s = (double)cfg->settle_ns / 1e9 / 4.0;
    a->cap_svcs = (size_t)cfg->max_services + 1;
    a->nslots = 16;
    while (a->nslots < 2 * a->cap_svcs)
        a->nslots *= 2;
    a->svcs = calloc(a->cap_svcs, sizeof *a->svcs);
    a->slots = calloc(a->nslots, sizeof *a->slots);
    if (!a->salt || !a->svcs || !a->slots || !(a->svcs[0].name = strdup(OVERFLOW_NAME))) {
        ts_adaptive_free(a);
        return NULL;
    }
    a->svcs[0].len = strlen(OVERFLOW_NAME);
    a->svcs[0].p = cfg->max_p;
    a->nsvcs = 1;
    return a;
}

void ts_adaptive_free(ts_adaptive_t *a)
{
    if (!a) return;
    for (size_t i = 0; a->svcs && i < a->nsvcs; i++)
        free(a->svcs[i].name);
    free(a->svcs);
    free(a->slots);
    free(a->salt);
    free(a);
}

/* The service's controller, created on first sight; the overflow bucket when
 * max_services are tracked already (or out of memory). */
static svc_t *svc_get(ts_adaptive_t *a, const char *name, size_t len, uint64_t now)
{
    uint64_t h = syc_fnv1a64(SYC_FNV64_OFFSET, name, len);
    size_t mask = a->nslots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t k = a->slots[i];
        if (!k) {
            if (a->nsvcs >= a->cap_svcs) break;
            svc_t *s = &a->svcs[a->nsvcs];
            if (!(s->name = malloc(len + 1))) break;
            memcpy(s->name, name, len);
            s->name[len] = '\0';
            s->len = len;
            s->hash = h;
            s->p = a->cfg.max_p;
            s->first_ns = now;
            s->used = true;
            a->slots[i] = (uint32_t)++a->nsvcs;
            return s;
        }
        svc_t *s = &a->svcs[k - 1];
        if (s->hash == h && s->len == len && !memcmp(s->name, name, len)) return s;
    }
    a->n_overflow++;
    a->svcs[0].used = true;
    return &a->svcs[0];
}

/*
 * The trend of a ramp: when the measured log rate moved the same way in each of
 * the last three intervals, the smallest of the three slopes; otherwise 0. A
 * step moves it in one interval only (the others are flat), so a step gets no
 * trend and keeps the first-order response below (monotone, no overshoot),
 * while a steady ramp gets its own slope, which removes the lag a first-order
 * filter has on a ramp (kept ~ T * exp(g * (tau + interval)) without it).
 */
static double trend(double d0, double d1, double d2)
{
    if (d0 > 0 && d1 > 0 && d2 > 0) return fmin(d0, fmin(d1, d2));
    if (d0 < 0 && d1 < 0 && d2 < 0) return fmax(d0, fmax(d1, d2));
    return 0;
}

/* Closes the interval [interval_start, now): each service's measured rate
 * (floored at the target, below which p is max_probability anyway, so that the
 * log stays finite and an idle service is not far below when it wakes) moves
 * its log-rate estimate by alpha = 1 - exp(-dt / tau). */
static void roll(ts_adaptive_t *a, uint64_t now)
{
    for (size_t i = 0; i < a->nsvcs; i++) {
        svc_t *s = &a->svcs[i];
        if (!s->used) continue;
        uint64_t from = s->first_ns > a->interval_start_ns ? s->first_ns : a->interval_start_ns;
        s->first_ns = 0;
        double dt = (double)(now - from) / 1e9;
        if (dt <= 0) continue;
        double rate = (double)s->offered / dt;
        s->offered = 0;
        double lr = log(rate > a->cfg.target ? rate : a->cfg.target);
        double g = 0; /* the trend in force: log rate per second */
        if (!s->has_estimate) {
            s->log_rate = lr; /* the first measurement stands on its own */
            s->has_estimate = true;
        } else {
            double d = (lr - s->x_prev) / dt;
            if (s->nd == 2) g = trend(d, s->d_prev[0], s->d_prev[1]);
            s->d_prev[1] = s->d_prev[0];
            s->d_prev[0] = d;
            if (s->nd < 2) s->nd++;
            double alpha = a->tau_s > 0 ? 1.0 - exp(-dt / a->tau_s) : 1.0;
            double pred = s->log_rate + g * dt; /* where the trend alone takes it */
            s->log_rate = pred + alpha * (lr - pred);
        }
        s->x_prev = lr;
        /* p applies to the next interval, g * dt further along a ramp */
        s->p = clampd(a->cfg.target / exp(s->log_rate + g * dt), a->cfg.min_p, a->cfg.max_p);
    }
    a->interval_start_ns = now;
}

static int64_t span_int(ts_eval_t *ev, sy_view_node_t *n, sy_field_t f)
{
    sy_value_t v;
    if (ev->api->view_get(n, f, &v) != 0 || v.type != SY_VALUE_INT) return 0;
    return v.i;
}

static bool is_root(ts_eval_t *ev, sy_view_node_t *n)
{
    sy_value_t v;
    if (ev->api->view_get(n, SY_FIELD_PARENT_SPAN_ID, &v) != 0 || v.type != SY_VALUE_BYTES)
        return true;
    for (size_t i = 0; i < v.len; i++)
        if (v.bytes[i]) return false;
    return true;
}

/* service.name of the root span's resource (the first span's when no span is
 * a root); "" when absent. */
static void service_of(ts_eval_t *ev, const ts_trace_data_t *t, const char **name, size_t *len)
{
    sy_view_node_t *span = t->spans[0].node;
    for (size_t i = 0; i < t->nspans; i++)
        if (is_root(ev, t->spans[i].node)) {
            span = t->spans[i].node;
            break;
        }
    *name = "";
    *len = 0;
    sy_view_node_t *scope = ev->api->view_parent(span);
    sy_view_node_t *res = scope ? ev->api->view_parent(scope) : NULL;
    sy_value_t v;
    if (res && ev->api->view_attr_get(res, "service.name", 12, &v) == 0 &&
        v.type == SY_VALUE_STRING) {
        *name = v.str;
        *len = v.len;
    }
}

/* Decisions come in batches on the processor's one-second timer, whose ticks
 * may be a little less than a second apart as the clock reads them: an
 * interval closes at the batch that comes within half a tick (at most half an
 * interval) of its end, so that it holds a whole number of ticks and a
 * one-second interval does not close only every other tick. */
static uint64_t roll_slack(const ts_adaptive_t *a)
{
    uint64_t half = a->cfg.interval_ns / 2;
    return half < 500000000u ? half : 500000000u;
}

ts_decision_t ts_adaptive_eval(ts_adaptive_t *a, ts_eval_t *ev, const ts_trace_data_t *t)
{
    uint64_t now = ev->now_ns;
    if (!a->started) {
        a->started = true;
        a->interval_start_ns = now;
    } else if (now + roll_slack(a) >= a->interval_start_ns + a->cfg.interval_ns) {
        roll(a, now);
    }
    if (t->nspans == 0) return TS_NOT_SAMPLED;
    /* The always-keep rules: one pass over the spans. */
    uint64_t lo = 0, hi = 0;
    for (size_t i = 0; i < t->nspans; i++) {
        sy_view_node_t *n = t->spans[i].node;
        if (a->cfg.keep_errors && span_int(ev, n, SY_FIELD_STATUS_CODE) == 2) {
            a->n_errors++;
            return TS_SAMPLED;
        }
        uint64_t s = (uint64_t)span_int(ev, n, SY_FIELD_START_TIME);
        uint64_t e = (uint64_t)span_int(ev, n, SY_FIELD_END_TIME);
        if (lo == 0 || s < lo) lo = s;
        if (e > hi) hi = e;
    }
    if (a->cfg.latency_ms > 0 && hi > lo && (hi - lo) / 1000000u >= (uint64_t)a->cfg.latency_ms) {
        a->n_slow++;
        return TS_SAMPLED;
    }
    const char *name;
    size_t len;
    service_of(ev, t, &name, &len);
    svc_t *s = svc_get(a, name, len, now);
    s->offered++;
    uint64_t h = mix64(ts_hash_trace_id(a->salt, a->salt_len, t->id));
    bool keep;
    if (s->p >= 1.0)
        keep = true;
    else {
        double thr = s->p * 18446744073709551616.0; /* p * 2^64 < 2^64 */
        keep = thr >= 18446744073709551615.0 ? true : h < (uint64_t)thr;
    }
    if (keep)
        a->n_kept++;
    else
        a->n_not_kept++;
    return keep ? TS_SAMPLED : TS_NOT_SAMPLED;
}

void ts_adaptive_register_metrics(ts_adaptive_t *a, const sy_host_api_t *api, sy_instance_t *in,
                                  const char *pn)
{
    char name[192];
#define REG(field, what, help, kind)                                                     \
    do {                                                                                 \
        snprintf(name, sizeof name, "processor_tail_sampling_adaptive_%s_%s", what, pn); \
        a->field = api->metric_register(in, name, help, kind);                           \
    } while (0)
    REG(m_errors, "kept_errors", "Traces kept because a span has an error status.",
        SY_METRIC_COUNTER);
    REG(m_slow, "kept_slow", "Traces kept because they last latency_threshold_ms or longer.",
        SY_METRIC_COUNTER);
    REG(m_kept, "kept_target", "Ordinary traces kept by the per-service probability.",
        SY_METRIC_COUNTER);
    REG(m_not_kept, "not_kept", "Ordinary traces not kept.", SY_METRIC_COUNTER);
    REG(m_overflow, "overflow_traces",
        "Ordinary traces of services beyond max_services (sharing one controller).",
        SY_METRIC_COUNTER);
    REG(m_services, "services", "Services tracked (the overflow bucket, once used, included).",
        SY_METRIC_GAUGE);
    REG(m_pmin, "probability_min_ppm",
        "Lowest probability in force over the services seen, in millionths.", SY_METRIC_GAUGE);
    REG(m_pmax, "probability_max_ppm",
        "Highest probability in force over the services seen, in millionths.", SY_METRIC_GAUGE);
#undef REG
}

void ts_adaptive_flush_metrics(ts_adaptive_t *a, const sy_host_api_t *api)
{
    struct {
        sy_metric_t *m;
        uint64_t *n;
    } c[] = {{a->m_errors, &a->n_errors},
             {a->m_slow, &a->n_slow},
             {a->m_kept, &a->n_kept},
             {a->m_not_kept, &a->n_not_kept},
             {a->m_overflow, &a->n_overflow}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        if (c[i].m && *c[i].n) api->metric_add(c[i].m, (int64_t)*c[i].n);
        *c[i].n = 0;
    }
    double pmin = a->cfg.max_p, pmax = a->cfg.min_p;
    bool any = false;
    for (size_t i = 0; i < a->nsvcs; i++) {
        if (!a->svcs[i].used) continue; /* the overflow bucket, unused */
        any = true;
        if (a->svcs[i].p < pmin) pmin = a->svcs[i].p;
        if (a->svcs[i].p > pmax) pmax = a->svcs[i].p;
    }
    if (!any) pmin = pmax = a->cfg.max_p;
    if (a->m_services) api->metric_set(a->m_services, (int64_t)a->nsvcs - !a->svcs[0].used);
    if (a->m_pmin) api->metric_set(a->m_pmin, (int64_t)llround(pmin * 1e6));
    if (a->m_pmax) api->metric_set(a->m_pmax, (int64_t)llround(pmax * 1e6));
}
