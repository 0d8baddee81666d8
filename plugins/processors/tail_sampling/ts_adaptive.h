/*
 * ts_adaptive.h - the `adaptive` policy of the tail_sampling processor: keeps a
 * target number of ordinary traces per second for each service whatever the
 * offered load, and always keeps traces with an error status and traces over a
 * latency threshold (those are not counted against the target).
 *
 * The controller is open-loop (feed-forward): per service it estimates the
 * offered rate of ordinary traces with an exponentially weighted average of the
 * log of the rate measured over each adjust_interval, and keeps a trace when a
 * hash of its trace ID falls under p = clamp(target / estimate, min, max). The
 * estimate does not depend on what was kept, so there is no loop to oscillate;
 * after a step of the offered rate the log error shrinks by exp(-4) within
 * settle_time (docs/sampling.md has the equations).
 *
 * One thread: the state is the policy's, touched only on the pipeline's loop.
 */
#ifndef TS_ADAPTIVE_H
#define TS_ADAPTIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "ts_policy.h"

/* The parsed settings (ts_policy.c fills them from the `adaptive` map). */
typedef struct ts_adaptive_cfg_s {
    double target;        /* target_traces_per_second, > 0 */
    int64_t latency_ms;   /* latency_threshold_ms; 0: no latency rule */
    bool keep_errors;     /* keep_errors (default true) */
    uint64_t settle_ns;   /* settle_time (default 10s) */
    uint64_t interval_ns; /* adjust_interval (default 1s) */
    double min_p, max_p;  /* min_probability (0), max_probability (1) */
    int64_t max_services; /* max_services (1000): services tracked on their own */
    const char *salt;     /* hash_salt (default "adaptive"); copied */
} ts_adaptive_cfg_t;

typedef struct ts_adaptive_s ts_adaptive_t;

/* Returns the policy state, or NULL when out of memory. */
ts_adaptive_t *ts_adaptive_new(const ts_adaptive_cfg_t *cfg);
void ts_adaptive_free(ts_adaptive_t *a);

/* Decides one trace at ev->now_ns: TS_SAMPLED or TS_NOT_SAMPLED. */
ts_decision_t ts_adaptive_eval(ts_adaptive_t *a, ts_eval_t *ev, const ts_trace_data_t *t);

/* Parses a Go-style duration ("1s", "250ms", "1m30s", "2h") into ns; -1 when it
 * is not one. */
int ts_adaptive_parse_duration(const char *s, uint64_t *ns);

/* The policy's own metrics, named with the policy's metric-safe name `pn`
 * (registered once at create; flushed once a second by the processor). */
void ts_adaptive_register_metrics(ts_adaptive_t *a, const sy_host_api_t *api, sy_instance_t *in,
                                  const char *pn);
void ts_adaptive_flush_metrics(ts_adaptive_t *a, const sy_host_api_t *api);

#endif
