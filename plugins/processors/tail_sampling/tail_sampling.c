/*
 * tail_sampling.c - the `tail_sampling` processor: holds the spans of each trace
 * until decision_wait has passed since its first span, then asks the configured
 * policies (ts_policy.c) whether to keep the whole trace, as the collector's
 * tailsamplingprocessor does.
 *
 * The store. Spans are held still encoded: an incoming batch is kept whole
 * (its reference, and a view of it left open), and each pending trace holds
 * (view node, batch) references to its spans. A kept batch is released when its
 * last span has been decided. Sampled traces are copied out with the view
 * builder into new batches, a trace never split across two of them; nothing is
 * ever decoded. Memory is bounded by num_traces and by max_bytes (the retained
 * batches' encoded bytes plus an estimate of the index); past either bound the
 * trace that would be decided first is decided now, and counted.
 *
 * Time. Decisions run on the processor's own one-second timer, never on
 * incoming traffic: every tick decides the traces whose wait has passed, in
 * arrival order. A span of a trace already decided follows the decision through
 * the decision caches (when they are sized) or starts a new trace (when not), as
 * in the collector. At shutdown every pending trace is decided (or dropped, with
 * drop_pending_traces_on_shutdown) and what is kept is emitted before the
 * pipeline drains.
 *
 * Threads: every callback and the timer run on the pipeline's loop thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/plugin.h>

#include "ottl_view.h"
#include "ts_adaptive.h"
#include "ts_idmap.h"
#include "ts_policy.h"

#define NIL UINT32_MAX
/* What a held span costs beyond its encoded bytes, counted against max_bytes:
 * its view node and attribute index, our reference to it, its share of the
 * trace's slot. Measured: RSS grows by about 785 bytes per held span of 437
 * encoded bytes (bench/configs/otlp_http_tailsampling.yaml). */
#define TS_SPAN_OVERHEAD 320u
/* A sampled output batch is closed once it holds this many spans (whole
 * traces only). */
#define TS_OUT_SPANS 8192u

enum { STRATEGY_TRACE_COMPLETE, STRATEGY_SPAN_INGEST };
static const char *const strategies[] = {"trace-complete", "span-ingest", NULL};

typedef struct ts_config_s {
    int64_t decision_wait;
    int64_t num_traces;
    int64_t expected_new_traces_per_sec;
    int64_t sampled_cache_size;
    int64_t non_sampled_cache_size;
    const sy_cfg_node_t *policies;
    bool sample_on_first_match;
    bool block_on_overflow;
    bool drop_pending_traces_on_shutdown;
    int64_t decision_wait_after_root_received;
    uint64_t maximum_trace_size_bytes;
    int sampling_strategy;
    uint64_t max_bytes;
} ts_config_t;

static const sy_config_field_t ts_fields[] = {
    {.name = "decision_wait",
     .type = SY_CFG_DURATION,
     .offset = offsetof(ts_config_t, decision_wait),
     .default_value = "30s",
     .description = "Wait from the first span of a trace until its sampling decision."},
    {.name = "num_traces",
     .type = SY_CFG_INT,
     .offset = offsetof(ts_config_t, num_traces),
     .default_value = "50000",
     .description = "Traces held at most; beyond it the oldest is decided early."},
    {.name = "expected_new_traces_per_sec",
     .type = SY_CFG_INT,
     .offset = offsetof(ts_config_t, expected_new_traces_per_sec),
     .default_value = "0",
     .description = "Expected new traces per second: sizes the trace table up front."},
    {.name = "decision_cache.sampled_cache_size",
     .type = SY_CFG_INT,
     .offset = offsetof(ts_config_t, sampled_cache_size),
     .default_value = "0",
     .description = "Trace IDs whose keep decision is remembered for late spans (0: none)."},
    {.name = "decision_cache.non_sampled_cache_size",
     .type = SY_CFG_INT,
     .offset = offsetof(ts_config_t, non_sampled_cache_size),
     .default_value = "0",
     .description = "Trace IDs whose drop decision is remembered for late spans (0: none)."},
    {.name = "policies",
     .type = SY_CFG_RAW,
     .offset = offsetof(ts_config_t, policies),
     .required = true,
     .description = "The sampling policies (see the plugin's README)."},
    {.name = "sample_on_first_match",
     .type = SY_CFG_BOOL,
     .offset = offsetof(ts_config_t, sample_on_first_match),
     .default_value = "false",
     .description = "Stop evaluating policies at the first that samples."},
    {.name = "block_on_overflow",
     .type = SY_CFG_BOOL,
     .offset = offsetof(ts_config_t, block_on_overflow),
     .default_value = "false",
     .description = "At num_traces or max_bytes, refuse receivers (back-pressure) rather than "
                    "decide the oldest traces early."},
    {.name = "drop_pending_traces_on_shutdown",
     .type = SY_CFG_BOOL,
     .offset = offsetof(ts_config_t, drop_pending_traces_on_shutdown),
     .default_value = "false",
     .description = "At shutdown, drop undecided traces instead of deciding them."},
    {.name = "decision_wait_after_root_received",
     .type = SY_CFG_DURATION,
     .offset = offsetof(ts_config_t, decision_wait_after_root_received),
     .default_value = "0s",
     .description = "When set, a trace is decided this long after its root span arrived, if "
                    "that is sooner than decision_wait."},
    {.name = "maximum_trace_size_bytes",
     .type = SY_CFG_SIZE,
     .offset = offsetof(ts_config_t, maximum_trace_size_bytes),
     .default_value = "0",
     .description = "A trace larger than this is dropped before its decision (0: no limit)."},
    {.name = "sampling_strategy",
     .type = SY_CFG_ENUM,
     .offset = offsetof(ts_config_t, sampling_strategy),
     .default_value = "trace-complete",
     .enum_values = strategies,
     .description = "trace-complete (the only one supported)."},
    {.name = "max_bytes",
     .type = SY_CFG_SIZE,
     .offset = offsetof(ts_config_t, max_bytes),
     .default_value = "256MiB",
     .description = "Switchyard's bound on the memory of held traces; beyond it the oldest "
                    "are decided early."},
};

/* One incoming batch, kept while any of its spans is pending. */
typedef struct ts_held_s {
    sy_batch_t *batch;
    sy_view_t *view;
    uint64_t bytes;      /* counted against max_bytes */
    uint32_t span_bytes; /* average encoded bytes of its spans */
    uint32_t refs;       /* pending spans (+1 while consume walks it) */
} ts_held_t;

enum { L_WAIT, L_ROOT, L_COUNT };

/* Spans of a trace held in its slot; a larger trace moves them to the heap. */
#define TS_INLINE_SPANS 8u

typedef struct ts_trace_s {
    uint8_t id[16];
    uint64_t deadline_ms;
    uint64_t bytes;
    ts_span_t *spans; /* NULL: they are in inl (see spans_of()); else on the heap */
    ts_span_t inl[TS_INLINE_SPANS];
    uint32_t nspans, cap;
    uint32_t prev, next; /* in its list; next is the free list link when unused */
    uint8_t list;
    bool live;
    bool too_large; /* dropped for maximum_trace_size_bytes: its later spans follow */
} ts_trace_t;

/* A policy's counts, added to its series once a tick. */
typedef struct ts_pmetrics_s {
    sy_metric_t *sampled, *not_sampled;             /* traces */
    sy_metric_t *spans_sampled, *spans_not_sampled; /* spans (ABI 1.7 hosts) */
    uint64_t n_sampled, n_not_sampled, n_spans_sampled, n_spans_not_sampled;
} ts_pmetrics_t;

/* A histogram of the collector's, as its sum and count (the host's registry
 * has no buckets); added to the counters once a tick. */
typedef struct ts_hist_s {
    sy_metric_t *sum, *count;
    uint64_t n_sum, n_count;
} ts_hist_t;

typedef struct ts_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const ts_config_t *cfg;
    ts_policies_t pols;
    ts_pmetrics_t *pm;
    ts_eval_t ev;

    ts_idmap_t index;   /* trace ID -> slot in traces */
    uint32_t last_slot; /* the slot trace_get() returned last (spans of a trace come together) */
    ts_trace_t *traces;
    uint32_t cap, free_head, live;
    uint32_t head[L_COUNT], tail[L_COUNT];
    uint64_t held_bytes, held_spans;
    ts_cache_t sampled, not_sampled;

    sy_view_builder_t *out;
    uint32_t out_spans;
    sy_timer_t *timer;
    bool refusing;
    bool stopped; /* shutdown() ran: what still comes is decided at once */

    sy_metric_t *m_traces, *m_bytes, *m_spans;
    sy_metric_t *m_sampled, *m_not_sampled, *m_dropped;
    sy_metric_t *m_early, *m_late_sampled, *m_late_not_sampled, *m_new, *m_errors;
    sy_metric_t *m_too_large, *m_too_large_spans, *m_shutdown_dropped, *m_lost;
    sy_metric_t *m_global_not; /* global_count_traces_sampled{sampled="false"} (ABI 1.7) */
    ts_hist_t h_decision;      /* sampling_decision_latency, microseconds a trace */
    ts_hist_t h_timer;         /* sampling_decision_timer_latency, milliseconds a tick */
    ts_hist_t h_late_age;      /* sampling_late_span_age, seconds */
    /* Counts of the hot path, added to their metrics once a tick. */
    uint64_t n_sampled, n_not_sampled, n_dropped, n_new, n_early;
} ts_state_t;

/* A trace's spans: in its slot (spans NULL) or on the heap. Not kept across a
 * slot_new(), which may move the slots. */
static ts_span_t *spans_of(ts_trace_t *t)
{
    return t->spans ? t->spans : t->inl;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void count(ts_state_t *s, sy_metric_t *m, uint64_t n)
{
    if (m && n) s->api->metric_add(m, (int64_t)n);
}

static void hist_flush(ts_state_t *s, ts_hist_t *h)
{
    count(s, h->sum, h->n_sum);
    count(s, h->count, h->n_count);
    h->n_sum = h->n_count = 0;
}

/* ---- retained batches ---------------------------------------------------------- */

static void held_unref(ts_state_t *s, ts_held_t *h)
{
    if (--h->refs) return;
    s->held_bytes -= h->bytes;
    s->api->view_close(h->view);
    s->api->batch_release(h->batch);
    free(h);
}

/* ---- the trace table ------------------------------------------------------------ */

static void list_unlink(ts_state_t *s, uint32_t i)
{
    ts_trace_t *t = &s->traces[i];
    if (t->prev != NIL)
        s->traces[t->prev].next = t->next;
    else
        s->head[t->list] = t->next;
    if (t->next != NIL)
        s->traces[t->next].prev = t->prev;
    else
        s->tail[t->list] = t->prev;
}

static void list_append(ts_state_t *s, uint32_t i, uint8_t list)
{
    ts_trace_t *t = &s->traces[i];
    t->list = list;
    t->next = NIL;
    t->prev = s->tail[list];
    if (t->prev != NIL)
        s->traces[t->prev].next = i;
    else
        s->head[list] = i;
    s->tail[list] = i;
}

/* A new, empty trace slot, or NIL when out of memory. */
static uint32_t slot_new(ts_state_t *s)
{
    if (s->free_head == NIL) {
        uint32_t cap = s->cap ? s->cap * 2 : 1024;
        ts_trace_t *t = realloc(s->traces, (size_t)cap * sizeof *t);
        if (!t) return NIL;
        s->traces = t;
        for (uint32_t i = cap; i-- > s->cap;) {
            t[i] = (ts_trace_t){.next = s->free_head};
            s->free_head = i;
        }
        s->cap = cap;
    }
    uint32_t i = s->free_head;
    s->free_head = s->traces[i].next;
    return i;
}

/* Releases a trace's spans and slot; the caller has taken what it needed. */
static void trace_free(ts_state_t *s, uint32_t i)
{
    ts_trace_t *t = &s->traces[i];
    list_unlink(s, i);
    ts_idmap_del(&s->index, t->id);
    ts_span_t *sp = spans_of(t);
    for (uint32_t k = 0; k < t->nspans; k++)
        held_unref(s, sp[k].held);
    s->held_spans -= t->nspans;
    free(t->spans);
    t->spans = NULL;
    t->nspans = t->cap = 0;
    t->live = false;
    t->next = s->free_head;
    s->free_head = i;
    s->live--;
}

/* ---- output ----------------------------------------------------------------------- */

static void out_flush(ts_state_t *s)
{
    if (!s->out) return;
    uint32_t n = s->out_spans;
    sy_batch_t *b = s->api->view_build_finish(s->out);
    s->out = NULL;
    s->out_spans = 0;
    if (!b) {
        count(s, s->m_lost, n);
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "out of memory: %" PRIu32 " sampled spans lost", n);
        return;
    }
    if (s->api->emit(s->inst, b) != SY_OK) {
        s->api->batch_release(b);
        count(s, s->m_lost, n);
        SY_LOG(s->api, s->inst, SY_LOG_WARN, "%" PRIu32 " sampled spans not taken downstream", n);
    }
}

/* Copies spans into the current output batch (opened on demand). */
static void out_add(ts_state_t *s, const ts_span_t *spans, uint32_t n)
{
    if (s->out && s->out_spans + n > TS_OUT_SPANS) out_flush(s);
    if (!s->out && !(s->out = s->api->view_build(s->inst, SY_SIGNAL_TRACES))) {
        count(s, s->m_lost, n);
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "out of memory: %" PRIu32 " sampled spans lost", n);
        return;
    }
    for (uint32_t k = 0; k < n; k++)
        if (s->api->view_build_add(s->out, spans[k].node) < 0) count(s, s->m_lost, 1);
    s->out_spans += n;
}

/* ---- deciding ----------------------------------------------------------------------- */

/* The collector's makeDecision: every policy is asked (drop policies first; a
 * Dropped stops, and with sample_on_first_match so does a Sampled); then Dropped
 * wins, then InvertNotSampled, then Sampled, then InvertSampled when no policy
 * said NotSampled. A policy that fails is counted and left out. */
static ts_decision_t make_decision(ts_state_t *s, const ts_trace_data_t *td)
{
    bool seen[TS_DECISION_COUNT_] = {false};
    for (size_t i = 0; i < s->pols.count; i++) {
        ts_decision_t d;
        if (ts_policy_eval(s->pols.list[i], &s->ev, td, &d) < 0) {
            count(s, s->m_errors, 1);
            continue;
        }
        if (d == TS_SAMPLED || d == TS_INVERT_SAMPLED) {
            s->pm[i].n_sampled++;
            s->pm[i].n_spans_sampled += td->nspans;
        } else {
            s->pm[i].n_not_sampled++;
            s->pm[i].n_spans_not_sampled += td->nspans;
        }
        seen[d] = true;
        if (d == TS_DROPPED) break;
        if (s->cfg->sample_on_first_match && d == TS_SAMPLED) break;
    }
    if (seen[TS_DROPPED]) return TS_DROPPED;
    if (seen[TS_INVERT_NOT_SAMPLED]) return TS_NOT_SAMPLED;
    if (seen[TS_SAMPLED]) return TS_SAMPLED;
    if (seen[TS_INVERT_SAMPLED] && !seen[TS_NOT_SAMPLED]) return TS_SAMPLED;
    return TS_NOT_SAMPLED;
}

/* Decides trace i, emits it when sampled, remembers the decision and frees it. */
static void decide(ts_state_t *s, uint32_t i)
{
    ts_trace_t *t = &s->traces[i];
    if (t->too_large) { /* already dropped and counted: its slot only kept its ID */
        trace_free(s, i);
        return;
    }
    ts_trace_data_t td = {t->id, spans_of(t), t->nspans, t->bytes};
    uint64_t t0 = now_ns();
    ts_decision_t d = make_decision(s, &td);
    s->h_decision.n_sum += (now_ns() - t0) / 1000u;
    s->h_decision.n_count++;
    uint32_t when = (uint32_t)(s->ev.now_ns / 1000000000u);
    if (d == TS_SAMPLED) {
        out_add(s, spans_of(t), t->nspans);
        s->n_sampled++;
        (void)ts_cache_put_at(&s->sampled, t->id, when); /* out of memory: the cache misses it */
    } else {
        if (d == TS_DROPPED)
            s->n_dropped++;
        else
            s->n_not_sampled++;
        (void)ts_cache_put_at(&s->not_sampled, t->id, when);
    }
    trace_free(s, i);
}

/* The trace that would be decided first: the earlier of the two list heads. */
static uint32_t oldest(ts_state_t *s)
{
    uint32_t a = s->head[L_WAIT], b = s->head[L_ROOT];
    if (a == NIL) return b;
    if (b == NIL) return a;
    return s->traces[a].deadline_ms <= s->traces[b].deadline_ms ? a : b;
}

static bool over_bounds(ts_state_t *s, uint32_t extra_traces)
{
    return (uint64_t)s->live + extra_traces > (uint64_t)s->cfg->num_traces ||
           s->held_bytes > s->cfg->max_bytes;
}

/* Decides the oldest traces early until the bounds hold (with block_on_overflow,
 * only past a quarter more than them: below that, receivers are refused). */
static void enforce_bounds(ts_state_t *s, uint32_t extra_traces, uint32_t keep)
{
    if (s->cfg->block_on_overflow) {
        if (over_bounds(s, extra_traces) && !s->refusing) {
            s->refusing = true;
            s->api->pipeline_refuse(s->inst, true);
        }
        uint64_t hard_traces = (uint64_t)s->cfg->num_traces + (uint64_t)s->cfg->num_traces / 4;
        uint64_t hard_bytes = s->cfg->max_bytes + s->cfg->max_bytes / 4;
        while (s->live && oldest(s) != keep &&
               ((uint64_t)s->live + extra_traces > hard_traces || s->held_bytes > hard_bytes)) {
            decide(s, oldest(s));
            s->n_early++;
        }
        return;
    }
    while (s->live && oldest(s) != keep && over_bounds(s, extra_traces)) {
        decide(s, oldest(s));
        s->n_early++;
    }
}

static void flush_metrics(ts_state_t *s)
{
    for (size_t i = 0; i < s->pols.count; i++) {
        ts_pmetrics_t *pm = &s->pm[i];
        count(s, pm->sampled, pm->n_sampled);
        count(s, pm->not_sampled, pm->n_not_sampled);
        count(s, pm->spans_sampled, pm->n_spans_sampled);
        count(s, pm->spans_not_sampled, pm->n_spans_not_sampled);
        pm->n_sampled = pm->n_not_sampled = pm->n_spans_sampled = pm->n_spans_not_sampled = 0;
        if (ts_policy_adaptive(s->pols.list[i]))
            ts_adaptive_flush_metrics(ts_policy_adaptive(s->pols.list[i]), s->api);
    }
    if (s->m_traces) s->api->metric_set(s->m_traces, s->live);
    if (s->m_bytes) s->api->metric_set(s->m_bytes, (int64_t)s->held_bytes);
    if (s->m_spans) s->api->metric_set(s->m_spans, (int64_t)s->held_spans);
    count(s, s->m_sampled, s->n_sampled);
    count(s, s->m_not_sampled, s->n_not_sampled);
    count(s, s->m_dropped, s->n_dropped);
    count(s, s->m_global_not, s->n_not_sampled + s->n_dropped);
    count(s, s->m_new, s->n_new);
    count(s, s->m_early, s->n_early);
    s->n_sampled = s->n_not_sampled = s->n_dropped = s->n_new = s->n_early = 0;
    hist_flush(s, &s->h_decision);
    hist_flush(s, &s->h_timer);
    hist_flush(s, &s->h_late_age);
}

static void on_tick(void *arg)
{
    ts_state_t *s = arg;
    uint64_t now = now_ns();
    s->ev.now_ns = now;
    uint64_t now_ms = now / 1000000u;
    for (int l = 0; l < L_COUNT; l++)
        while (s->head[l] != NIL && s->traces[s->head[l]].deadline_ms <= now_ms)
            decide(s, s->head[l]);
    out_flush(s);
    if (s->refusing && !over_bounds(s, 1)) { /* room for one more trace again */
        s->refusing = false;
        s->api->pipeline_refuse(s->inst, false);
    }
    s->h_timer.n_sum += (now_ns() - now) / 1000000u;
    s->h_timer.n_count++;
    flush_metrics(s);
}

/* ---- taking spans ------------------------------------------------------------------------ */

static int trace_add_span(ts_state_t *s, ts_trace_t *t, sy_view_node_t *node, ts_held_t *h)
{
    if (t->nspans == TS_INLINE_SPANS && !t->spans) { /* out of the slot */
        ts_span_t *sp = malloc((size_t)TS_INLINE_SPANS * 2 * sizeof *sp);
        if (!sp) return SY_ENOMEM;
        memcpy(sp, t->inl, sizeof t->inl);
        t->spans = sp;
        t->cap = TS_INLINE_SPANS * 2;
    } else if (t->spans && t->nspans == t->cap) {
        ts_span_t *sp = realloc(t->spans, (size_t)t->cap * 2 * sizeof *sp);
        if (!sp) return SY_ENOMEM;
        t->spans = sp;
        t->cap *= 2;
    }
    spans_of(t)[t->nspans++] = (ts_span_t){node, h};
    t->bytes += h->span_bytes;
    h->refs++;
    s->held_spans++;
    return 0;
}

/* The pending trace of id, made when new (NIL when out of memory). */
static uint32_t trace_get(ts_state_t *s, const uint8_t id[16], uint64_t now_ms)
{
    /* The trace of the span before, still pending: the map's entry for the ID is
     * this slot (one pending trace per ID; a freed slot is not live), without a
     * lookup in a table of num_traces IDs that is mostly out of the cache. */
    uint32_t last = s->last_slot;
    if (last < s->cap && s->traces[last].live && !memcmp(s->traces[last].id, id, 16)) return last;
    /* One probe finds the trace or makes its entry. */
    bool added;
    uint32_t *slot = ts_idmap_get_or_add(&s->index, id, &added);
    if (!slot) return NIL;
    if (!added) return s->last_slot = *slot;
    uint32_t i = slot_new(s);
    if (i == NIL) {
        ts_idmap_del(&s->index, id);
        return NIL;
    }
    *slot = i;
    ts_trace_t *t = &s->traces[i];
    t->deadline_ms = now_ms + (uint64_t)s->cfg->decision_wait / 1000000u;
    t->bytes = 0;
    t->live = true;
    t->too_large = false;
    memcpy(t->id, id, 16);
    list_append(s, i, L_WAIT);
    s->live++;
    s->n_new++;
    enforce_bounds(s, 0, i); /* makes room for it: the oldest others are decided */
    return s->last_slot = i;
}

/* A root span (no parent) shortens the wait to decision_wait_after_root_received. */
static void root_seen(ts_state_t *s, uint32_t i, sy_view_node_t *span, uint64_t now_ms)
{
    ts_trace_t *t = &s->traces[i];
    if (t->list == L_ROOT) return;
    sy_value_t v;
    if (s->api->view_get(span, SY_FIELD_PARENT_SPAN_ID, &v) != 0 || v.len != 0) return;
    uint64_t d = now_ms + (uint64_t)s->cfg->decision_wait_after_root_received / 1000000u;
    if (d >= t->deadline_ms) return;
    list_unlink(s, i);
    t->deadline_ms = d;
    list_append(s, i, L_ROOT);
}

/* A span of a trace decided at `when` (seconds) arrived now. */
static void late_age(ts_state_t *s, uint32_t when)
{
    uint32_t now_s = (uint32_t)(s->ev.now_ns / 1000000000u);
    s->h_late_age.n_sum += now_s > when ? now_s - when : 0;
    s->h_late_age.n_count++;
}

/* One span of the batch being taken. */
static void take_span(ts_state_t *s, ts_held_t *h, sy_view_node_t *span, uint64_t now_ms)
{
    static const uint8_t zero[16];
    sy_value_t v;
    const uint8_t *id = zero;
    if (s->api->view_get(span, SY_FIELD_TRACE_ID, &v) == 0 && v.type == SY_VALUE_BYTES &&
        v.len == 16)
        id = v.bytes;
    uint32_t when;
    if (s->sampled.cap && ts_cache_find(&s->sampled, id, &when)) {
        ts_span_t one = {span, h};
        out_add(s, &one, 1);
        count(s, s->m_late_sampled, 1);
        late_age(s, when);
        return;
    }
    if (s->not_sampled.cap && ts_cache_find(&s->not_sampled, id, &when)) {
        count(s, s->m_late_not_sampled, 1);
        late_age(s, when);
        return;
    }
    uint32_t i = trace_get(s, id, now_ms);
    if (i != NIL && s->traces[i].too_large) {
        count(s, s->m_too_large_spans, 1);
        return;
    }
    if (i == NIL || trace_add_span(s, &s->traces[i], span, h) < 0) {
        count(s, s->m_lost, 1);
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "out of memory: a span could not be held");
        return;
    }
    ts_trace_t *t = &s->traces[i];
    if (s->cfg->maximum_trace_size_bytes && t->bytes > s->cfg->maximum_trace_size_bytes) {
        /* Too large to decide on: its spans are dropped now, and the trace stays
         * (without spans) until its decision time so that its later spans are
         * dropped too rather than kept as a part of it. */
        (void)ts_cache_put(&s->not_sampled, t->id);
        count(s, s->m_too_large, 1);
        count(s, s->m_too_large_spans, t->nspans);
        ts_span_t *sp = spans_of(t);
        for (uint32_t k = 0; k < t->nspans; k++)
            held_unref(s, sp[k].held);
        s->held_spans -= t->nspans;
        t->nspans = 0;
        t->too_large = true;
        return;
    }
    if (s->cfg->decision_wait_after_root_received) root_seen(s, i, span, now_ms);
}

static int ts_consume(void *state, sy_batch_t *batch)
{
    ts_state_t *s = state;
    const sy_host_api_t *api = s->api;
    sy_batch_info_t info;
    api->batch_info(batch, &info);
    if (info.signal != SY_SIGNAL_TRACES || info.items == 0) return api->emit(s->inst, batch);
    ts_held_t *h = calloc(1, sizeof *h);
    if (!h) return SY_ENOMEM;
    if (!(h->view = api->view_open(batch))) {
        free(h);
        return SY_ENOMEM; /* the batch is still the caller's */
    }
    size_t len = 0;
    api->batch_encoded(batch, &len);
    h->batch = batch;
    h->refs = 1; /* ours while we walk it: deciding early must not free it under us */
    h->span_bytes = (uint32_t)(len / info.items);
    h->bytes = len + info.items * TS_SPAN_OVERHEAD;
    s->held_bytes += h->bytes;

    uint64_t now = now_ns();
    s->ev.now_ns = now;
    uint64_t now_ms = now / 1000000u;
    sy_view_node_t *root = api->view_root(h->view);
    size_t nr = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < nr; r++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
        size_t nsc = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t c = 0; c < nsc; c++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, c);
            size_t n = api->view_count(sc, SY_VIEW_ITEMS);
            for (size_t i = 0; i < n; i++)
                take_span(s, h, api->view_at(sc, SY_VIEW_ITEMS, i), now_ms);
        }
    }
    held_unref(s, h);
    enforce_bounds(s, 0, NIL);
    if (s->stopped) { /* no timer any more: nothing may wait for it */
        for (uint32_t i; (i = oldest(s)) != NIL;)
            decide(s, i);
        out_flush(s);
    }
    /* Otherwise what was decided early (for the bounds) stays in the output batch
     * until it is full or the next tick: the builder then finds the header of a
     * request's resource and scope once for all its kept traces (copying it walks
     * the whole scope), however many requests decide them. */
    return SY_OK;
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static int ts_validate(const void *config, char *err, size_t err_len)
{
    const ts_config_t *c = config;
    if (c->decision_wait <= 0) {
        snprintf(err, err_len, "decision_wait must be greater than 0");
        return SY_EINVAL;
    }
    if (c->num_traces <= 0 || c->num_traces > (int64_t)UINT32_MAX / 2) {
        snprintf(err, err_len, "num_traces must be between 1 and %u", UINT32_MAX / 2);
        return SY_EINVAL;
    }
    if (c->sampled_cache_size < 0 || c->non_sampled_cache_size < 0 ||
        c->expected_new_traces_per_sec < 0) {
        snprintf(err, err_len,
                 "decision_cache sizes and expected_new_traces_per_sec must not be "
                 "negative");
        return SY_EINVAL;
    }
    if (c->sampling_strategy == STRATEGY_SPAN_INGEST) {
        snprintf(err, err_len,
                 "sampling_strategy span-ingest is not supported; use "
                 "trace-complete (the default)");
        return SY_EINVAL;
    }
    if (c->max_bytes == 0) {
        snprintf(err, err_len, "max_bytes must be greater than 0");
        return SY_EINVAL;
    }
    return SY_OK;
}

static int ts_start(void *state)
{
    ts_state_t *s = state;
    s->timer = s->api->timer_start(s->inst, 1000, 1000, on_tick, s);
    if (!s->timer) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "could not start the decision timer");
        return SY_ERROR;
    }
    return SY_OK;
}

/* Decides (or drops) everything still pending, and emits what is kept: the
 * pipeline drains it to the exporters before it stops. */
static void ts_shutdown(void *state)
{
    ts_state_t *s = state;
    if (s->timer) s->api->timer_stop(s->timer);
    s->timer = NULL;
    s->stopped = true;
    s->ev.now_ns = now_ns();
    uint64_t dropped = 0;
    uint32_t i;
    while ((i = oldest(s)) != NIL) {
        if (s->cfg->drop_pending_traces_on_shutdown) {
            dropped += !s->traces[i].too_large;
            trace_free(s, i);
        } else {
            decide(s, i);
        }
    }
    out_flush(s);
    count(s, s->m_shutdown_dropped, dropped);
    if (dropped)
        SY_LOG(s->api, s->inst, SY_LOG_INFO,
               "dropped %" PRIu64 " undecided traces at shutdown (drop_pending_traces_on_shutdown)",
               dropped);
    if (s->refusing) s->api->pipeline_refuse(s->inst, false);
    s->refusing = false;
    flush_metrics(s);
}

static void ts_destroy(void *state)
{
    ts_state_t *s = state;
    if (!s) return;
    uint32_t i;
    while (s->traces && (i = oldest(s)) != NIL)
        trace_free(s, i);
    if (s->out) s->api->view_build_abort(s->out);
    free(s->traces);
    ts_idmap_free(&s->index);
    ts_cache_free(&s->sampled);
    ts_cache_free(&s->not_sampled);
    ts_policies_free(&s->pols);
    free(s->pm);
    syc_ottl_scratch_free(s->ev.scratch);
    free(s);
}

/* A metric name from a policy name: [A-Za-z0-9_] kept, anything else '_'. */
static void metric_name(char *out, size_t cap, const char *prefix, const char *policy)
{
    size_t n = (size_t)snprintf(out, cap, "%s", prefix);
    for (const char *p = policy; *p && n + 1 < cap; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_';
        out[n++] = ok ? ch : '_';
    }
    out[n] = '\0';
}

/* The collector's labelled metrics (ABI 1.7 hosts): per policy
 * count_traces_sampled and count_spans_sampled{policy,sampled}, and
 * global_count_traces_sampled and early_releases_from_cache_decision{sampled}.
 * Every series is looked up here, once. */
static void register_labelled(ts_state_t *s)
{
    const sy_host_api_t *api = s->api;
    sy_instance_t *in = s->inst;
    static const char *const sampled_name[] = {"sampled"};
    static const char *const yes1[] = {"true"}, *const no1[] = {"false"};
    sy_labelled_metric_t *g = api->metric_register_labelled(
        in, "processor_tail_sampling_global_count_traces_sampled",
        "Global count of traces that were sampled or not by at least one policy.",
        SY_METRIC_COUNTER, sampled_name, 1);
    s->m_sampled = api->metric_series(g, yes1);
    s->m_global_not = api->metric_series(g, no1);
    sy_labelled_metric_t *e = api->metric_register_labelled(
        in, "processor_tail_sampling_early_releases_from_cache_decision",
        "Spans released at once because a decision cache holds their trace (sampled: emitted, "
        "not: dropped).",
        SY_METRIC_COUNTER, sampled_name, 1);
    s->m_late_sampled = api->metric_series(e, yes1);
    s->m_late_not_sampled = api->metric_series(e, no1);
    static const char *const names[] = {"policy", "sampled"};
    sy_labelled_metric_t *tr = api->metric_register_labelled(
        in, "processor_tail_sampling_count_traces_sampled",
        "Count of traces that were sampled or not per sampling policy.", SY_METRIC_COUNTER, names,
        2);
    sy_labelled_metric_t *sp = api->metric_register_labelled(
        in, "processor_tail_sampling_count_spans_sampled",
        "Count of spans that were sampled or not per sampling policy.", SY_METRIC_COUNTER, names,
        2);
    for (size_t i = 0; i < s->pols.count; i++) {
        const char *policy = ts_policy_name(s->pols.list[i]);
        const char *yes[] = {policy, "true"}, *no[] = {policy, "false"};
        s->pm[i].sampled = api->metric_series(tr, yes);
        s->pm[i].not_sampled = api->metric_series(tr, no);
        s->pm[i].spans_sampled = api->metric_series(sp, yes);
        s->pm[i].spans_not_sampled = api->metric_series(sp, no);
    }
}

/* Before ABI 1.7: a metric per policy, its name made from the policy's. */
static void register_per_policy_names(ts_state_t *s)
{
    const sy_host_api_t *api = s->api;
    sy_instance_t *in = s->inst;
    s->m_sampled = api->metric_register(in, "processor_tail_sampling_global_count_traces_sampled",
                                        "Traces sampled (kept and emitted).", SY_METRIC_COUNTER);
    s->m_late_sampled = api->metric_register(
        in, "processor_tail_sampling_early_releases_from_cache_decision_sampled",
        "Late spans emitted because the sampled cache holds their trace.", SY_METRIC_COUNTER);
    s->m_late_not_sampled = api->metric_register(
        in, "processor_tail_sampling_early_releases_from_cache_decision_not_sampled",
        "Late spans dropped because the non-sampled cache holds their trace.", SY_METRIC_COUNTER);
    for (size_t i = 0; i < s->pols.count; i++) {
        char name[160], pn[96];
        metric_name(pn, sizeof pn, "", ts_policy_name(s->pols.list[i]));
        /* Two names that differ only in characters made '_' get their index. */
        for (size_t j = 0; j < i; j++) {
            char other[96];
            metric_name(other, sizeof other, "", ts_policy_name(s->pols.list[j]));
            if (!strcmp(other, pn)) {
                size_t n = strlen(pn);
                snprintf(pn + n, sizeof pn - n, "_%zu", i);
                break;
            }
        }
        metric_name(name, sizeof name, "processor_tail_sampling_count_traces_sampled_", pn);
        s->pm[i].sampled =
            api->metric_register(in, name, "Traces this policy sampled.", SY_METRIC_COUNTER);
        metric_name(name, sizeof name, "processor_tail_sampling_count_traces_not_sampled_", pn);
        s->pm[i].not_sampled =
            api->metric_register(in, name, "Traces this policy did not sample.", SY_METRIC_COUNTER);
    }
}

static void register_metrics(ts_state_t *s)
{
    const sy_host_api_t *api = s->api;
    sy_instance_t *in = s->inst;
#define C(name, help) api->metric_register(in, name, help, SY_METRIC_COUNTER)
#define G(name, help) api->metric_register(in, name, help, SY_METRIC_GAUGE)
    s->m_traces = G("processor_tail_sampling_sampling_traces_on_memory",
                    "Traces held, waiting for their decision.");
    s->m_spans = G("processor_tail_sampling_sampling_spans_on_memory", "Spans held.");
    s->m_bytes = G("processor_tail_sampling_sampling_bytes_on_memory",
                   "Bytes held, as counted against max_bytes.");
    s->m_not_sampled =
        C("processor_tail_sampling_global_count_traces_not_sampled", "Traces not sampled.");
    s->m_dropped = C("processor_tail_sampling_global_count_traces_dropped",
                     "Traces dropped by a drop policy.");
    s->m_early = C("processor_tail_sampling_sampling_trace_dropped_too_early",
                   "Traces decided before decision_wait because num_traces or max_bytes was "
                   "reached.");
    s->m_new = C("processor_tail_sampling_new_trace_id_received", "Traces started.");
    s->m_errors = C("processor_tail_sampling_sampling_policy_evaluation_error",
                    "Policy evaluations that failed.");
    s->m_too_large = C("processor_tail_sampling_traces_over_maximum_size",
                       "Traces dropped because they grew past maximum_trace_size_bytes.");
    s->m_too_large_spans = C("processor_tail_sampling_spans_over_maximum_size",
                             "Spans dropped with their trace for maximum_trace_size_bytes.");
    s->m_shutdown_dropped = C("processor_tail_sampling_traces_dropped_on_shutdown",
                              "Undecided traces dropped at shutdown.");
    s->m_lost = C("processor_tail_sampling_spans_lost",
                  "Spans that could not be held or emitted (out of memory).");
    s->h_decision.sum = C("processor_tail_sampling_sampling_decision_latency_sum",
                          "Microseconds spent deciding traces (all policies), summed.");
    s->h_decision.count = C("processor_tail_sampling_sampling_decision_latency_count",
                            "Traces decided (the count of sampling_decision_latency).");
    s->h_timer.sum = C("processor_tail_sampling_sampling_decision_timer_latency_sum",
                       "Milliseconds the decision timer's runs took, summed.");
    s->h_timer.count = C("processor_tail_sampling_sampling_decision_timer_latency_count",
                         "Runs of the decision timer.");
    s->h_late_age.sum = C("processor_tail_sampling_sampling_late_span_age_sum",
                          "Seconds from a trace's decision to the arrival of its late spans, "
                          "summed.");
    s->h_late_age.count = C("processor_tail_sampling_sampling_late_span_age_count",
                            "Late spans (spans of a trace already decided and cached).");
#undef C
#undef G
    if (SY_API_HAS(api, metric_series) && api->metric_register_labelled && api->metric_series)
        register_labelled(s);
    else
        register_per_policy_names(s);
    for (size_t i = 0; i < s->pols.count; i++) {
        char pn[96];
        metric_name(pn, sizeof pn, "", ts_policy_name(s->pols.list[i]));
        if (ts_policy_adaptive(s->pols.list[i]))
            ts_adaptive_register_metrics(ts_policy_adaptive(s->pols.list[i]), api, in, pn);
    }
}

static int ts_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    if (!SY_API_HAS(api, pipeline_refuse)) {
        api->log(inst, SY_LOG_ERROR, "needs a host with plugin ABI 1.1 (the view)");
        return SY_ENOTSUP;
    }
    const ts_config_t *cfg = config;
    ts_state_t *s = calloc(1, sizeof *s);
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = cfg;
    s->free_head = NIL;
    for (int l = 0; l < L_COUNT; l++)
        s->head[l] = s->tail[l] = NIL;
    char err[768] = "";
    int rc = ts_policies_parse(api, cfg->policies, &s->pols, err, sizeof err);
    if (rc < 0) {
        api->log(inst, SY_LOG_ERROR, "%s", err[0] ? err : "out of memory parsing the policies");
        ts_destroy(s);
        return rc;
    }
    /* Sized for what decision_wait will hold at the expected rate, within num_traces. */
    uint64_t expect = (uint64_t)cfg->expected_new_traces_per_sec *
                      (uint64_t)(cfg->decision_wait / 1000000000 + 1);
    if (expect > (uint64_t)cfg->num_traces) expect = (uint64_t)cfg->num_traces;
    s->ev.api = api;
    s->ev.inst = inst;
    if (!(s->pm = calloc(s->pols.count, sizeof *s->pm)) ||
        !(s->ev.scratch = syc_ottl_scratch_new(SYC_OTTL_SCRATCH_DEFAULT)) ||
        ts_idmap_init(&s->index, expect ? expect : 1024) < 0 ||
        ts_cache_init(&s->sampled, (size_t)cfg->sampled_cache_size) < 0 ||
        ts_cache_init(&s->not_sampled, (size_t)cfg->non_sampled_cache_size) < 0) {
        api->log(inst, SY_LOG_ERROR, "out of memory");
        ts_destroy(s);
        return SY_ENOMEM;
    }
    register_metrics(s);
    *state = s;
    return SY_OK;
}

static const sy_plugin_t ts_descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "tail_sampling",
    .signals = SY_SIGNAL_TRACES,
    .version = "1.0",
    .description = "Keeps or drops whole traces by policies, decided decision_wait after their "
                   "first span.",
    .config_fields = ts_fields,
    .config_field_count = sizeof(ts_fields) / sizeof(ts_fields[0]),
    .config_size = sizeof(ts_config_t),
    .validate = ts_validate,
    .create = ts_create,
    .start = ts_start,
    .consume = ts_consume,
    .shutdown = ts_shutdown,
    .destroy = ts_destroy,
};
SY_PLUGIN_DEFINE(ts_descriptor)
