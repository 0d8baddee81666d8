/*
 * prom_render.h - writes the store of the `prometheus` exporter in the Prometheus
 * text format 0.0.4 or in OpenMetrics 1.0, as client_golang (which the collector
 * uses) writes them: families sorted by name, series by labels, HELP then TYPE,
 * histogram buckets with cumulative counts and "+Inf", then _sum and _count.
 *
 * Threads: the store's thread.
 */
#ifndef PROM_RENDER_H
#define PROM_RENDER_H

#include <stdbool.h>

#include "prom_buf.h"
#include "prom_store.h"

#define PROM_CONTENT_TYPE_TEXT "text/plain; version=0.0.4; charset=utf-8"
#define PROM_CONTENT_TYPE_OM   "application/openmetrics-text; version=1.0.0; charset=utf-8"

typedef struct prom_render_opts_s {
    bool openmetrics; /* OpenMetrics 1.0 rather than text 0.0.4 */
    bool exemplars;   /* OpenMetrics only: exemplars of counters and histogram buckets */
    bool timestamps;  /* each sample with the time of its point */
    const char *target_info_name; /* "target_info", with the namespace if any */
} prom_render_opts_t;

/* Appends the whole exposition to `out`. Returns 0, or -1 when `out` failed (out of
 * memory or over its bound). */
int prom_render(const prom_store_t *s, const prom_render_opts_t *o, syc_prom_buf_t *out);

/* True if an Accept header value prefers OpenMetrics (as client_golang's
 * NegotiateIncludingOpenMetrics decides: the highest-q acceptable type wins). */
bool prom_accepts_openmetrics(const char *accept);

#endif
