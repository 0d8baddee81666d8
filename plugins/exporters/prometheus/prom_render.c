/*
 * prom_render.c - the exposition formats (see prom_render.h).
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "prom_render.h"

static int series_cmp(const void *a, const void *b)
{
    const prom_series_t *x = *(const prom_series_t *const *)a;
    const prom_series_t *y = *(const prom_series_t *const *)b;
    int c = strcmp(x->family->name, y->family->name);
    if (c) return c;
    return strcmp(x->labels, y->labels);
}

static int target_cmp(const void *a, const void *b)
{
    const prom_target_t *x = *(const prom_target_t *const *)a;
    const prom_target_t *y = *(const prom_target_t *const *)b;
    return strcmp(x->labels, y->labels);
}

static void put_value(syc_prom_buf_t *out, const prom_render_opts_t *o, double v)
{
    if (o->openmetrics)
        syc_prom_buf_float_om(out, v);
    else
        syc_prom_buf_float_text(out, v);
}

/* Counts are integers in OpenMetrics and floats (of integral value) in text. */
static void put_count(syc_prom_buf_t *out, const prom_render_opts_t *o, uint64_t v)
{
    if (o->openmetrics)
        syc_prom_buf_u64(out, v);
    else
        syc_prom_buf_float_text(out, (double)v);
}

static void put_timestamp(syc_prom_buf_t *out, const prom_render_opts_t *o, uint64_t time_ns)
{
    if (!o->timestamps) return;
    syc_prom_buf_char(out, ' ');
    if (o->openmetrics)
        syc_prom_buf_float_om(out, (double)(time_ns / 1000000) / 1000.0);
    else
        syc_prom_buf_i64(out, (int64_t)(time_ns / 1000000));
}

/* name<suffix>{labels[,extra="v"]} */
static void put_series(syc_prom_buf_t *out, const prom_render_opts_t *o, const char *name,
                       const char *suffix, const prom_series_t *se, const char *extra,
                       double extra_value)
{
    syc_prom_buf_str(out, name);
    syc_prom_buf_str(out, suffix);
    if (se->labels_len == 0 && !extra) return;
    syc_prom_buf_char(out, '{');
    syc_prom_buf_put(out, se->labels, se->labels_len);
    if (extra) {
        if (se->labels_len) syc_prom_buf_char(out, ',');
        syc_prom_buf_str(out, extra);
        syc_prom_buf_str(out, "=\"");
        put_value(out, o, extra_value);
        syc_prom_buf_char(out, '"');
    }
    syc_prom_buf_char(out, '}');
}

static void put_hex(syc_prom_buf_t *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        syc_prom_buf_char(out, hex[p[i] >> 4]);
        syc_prom_buf_char(out, hex[p[i] & 15]);
    }
}

/* " # {span_id="..",trace_id=".."} value [timestamp]" */
static void put_exemplar(syc_prom_buf_t *out, const prom_exemplar_t *e)
{
    syc_prom_buf_str(out, " # {");
    if (e->has_span_id) {
        syc_prom_buf_str(out, "span_id=\"");
        put_hex(out, e->span_id, 8);
        syc_prom_buf_char(out, '"');
    }
    if (e->has_trace_id) {
        if (e->has_span_id) syc_prom_buf_char(out, ',');
        syc_prom_buf_str(out, "trace_id=\"");
        put_hex(out, e->trace_id, 16);
        syc_prom_buf_char(out, '"');
    }
    syc_prom_buf_str(out, "} ");
    syc_prom_buf_float_om(out, e->value);
    if (e->time_ns) {
        syc_prom_buf_char(out, ' ');
        syc_prom_buf_float_om(out, (double)e->time_ns / 1e9);
    }
}

static void put_header(syc_prom_buf_t *out, const prom_render_opts_t *o, const char *name,
                       size_t name_len, const char *help, const char *type)
{
    syc_prom_buf_str(out, "# HELP ");
    syc_prom_buf_put(out, name, name_len);
    syc_prom_buf_char(out, ' ');
    syc_prom_buf_escaped(out, help, strlen(help), o->openmetrics);
    syc_prom_buf_str(out, "\n# TYPE ");
    syc_prom_buf_put(out, name, name_len);
    syc_prom_buf_char(out, ' ');
    syc_prom_buf_str(out, type);
    syc_prom_buf_char(out, '\n');
}

static void put_family_header(syc_prom_buf_t *out, const prom_render_opts_t *o,
                              const prom_family_t *f)
{
    static const char *const types[] = {"gauge", "counter", "histogram", "summary"};
    size_t len = strlen(f->name);
    /* OpenMetrics names a counter family without its "_total". */
    if (o->openmetrics && f->kind == PROM_KIND_COUNTER && len > 6 &&
        strcmp(f->name + len - 6, "_total") == 0)
        len -= 6;
    put_header(out, o, f->name, len, f->help, types[f->kind]);
}

static void put_counter(syc_prom_buf_t *out, const prom_render_opts_t *o, const prom_series_t *se)
{
    const char *name = se->family->name;
    size_t len = strlen(name);
    bool has_total = len > 6 && strcmp(name + len - 6, "_total") == 0;
    /* OpenMetrics counters always end in _total. */
    put_series(out, o, name, (o->openmetrics && !has_total) ? "_total" : "", se, NULL, 0);
    syc_prom_buf_char(out, ' ');
    put_value(out, o, se->value);
    put_timestamp(out, o, se->time_ns);
    if (o->openmetrics && o->exemplars && se->n_exemplars)
        put_exemplar(out, &se->exemplars[se->n_exemplars - 1]);
    syc_prom_buf_char(out, '\n');
}

/* The _sum and _count lines of a histogram or summary. */
static void put_sum_count(syc_prom_buf_t *out, const prom_render_opts_t *o, const char *name,
                          const prom_series_t *se)
{
    put_series(out, o, name, "_sum", se, NULL, 0);
    syc_prom_buf_char(out, ' ');
    put_value(out, o, se->sum);
    put_timestamp(out, o, se->time_ns);
    syc_prom_buf_char(out, '\n');
    put_series(out, o, name, "_count", se, NULL, 0);
    syc_prom_buf_char(out, ' ');
    put_count(out, o, se->count);
    put_timestamp(out, o, se->time_ns);
    syc_prom_buf_char(out, '\n');
}

static void put_histogram(syc_prom_buf_t *out, const prom_render_opts_t *o, const prom_series_t *se)
{
    const char *name = se->family->name;
    /* The exemplar of each bucket: the last one whose value is at most its bound
     * and above the previous bound; values above every bound go to +Inf. */
    uint64_t cum = 0;
    for (size_t i = 0; i <= se->n; i++) {
        bool inf = i == se->n;
        cum += se->counts ? se->counts[i] : 0;
        put_series(out, o, name, "_bucket", se, "le", inf ? INFINITY : se->bounds[i]);
        syc_prom_buf_char(out, ' ');
        put_count(out, o, inf ? se->count : cum);
        put_timestamp(out, o, se->time_ns);
        if (o->openmetrics && o->exemplars) {
            const prom_exemplar_t *ex = NULL;
            for (size_t k = 0; k < se->n_exemplars; k++) {
                double v = se->exemplars[k].value;
                bool in = inf ? (se->n == 0 || v > se->bounds[se->n - 1])
                              : (v <= se->bounds[i] && (i == 0 || v > se->bounds[i - 1]));
                if (in) ex = &se->exemplars[k];
            }
            if (ex) put_exemplar(out, ex);
        }
        syc_prom_buf_char(out, '\n');
    }
    put_sum_count(out, o, name, se);
}

static void put_summary(syc_prom_buf_t *out, const prom_render_opts_t *o, const prom_series_t *se)
{
    const char *name = se->family->name;
    for (size_t i = 0; i < se->n; i++) {
        put_series(out, o, name, "", se, "quantile", se->bounds[i]);
        syc_prom_buf_char(out, ' ');
        put_value(out, o, se->qvalues[i]);
        put_timestamp(out, o, se->time_ns);
        syc_prom_buf_char(out, '\n');
    }
    put_sum_count(out, o, name, se);
}

static void put_targets(syc_prom_buf_t *out, const prom_render_opts_t *o, prom_target_t **t,
                        size_t n)
{
    if (n == 0) return;
    put_header(out, o, o->target_info_name, strlen(o->target_info_name), "Target metadata",
               "gauge");
    for (size_t i = 0; i < n; i++) {
        syc_prom_buf_str(out, o->target_info_name);
        syc_prom_buf_char(out, '{');
        syc_prom_buf_put(out, t[i]->labels, t[i]->labels_len);
        syc_prom_buf_str(out, "} ");
        put_value(out, o, 1);
        syc_prom_buf_char(out, '\n');
    }
}

int prom_render(const prom_store_t *s, const prom_render_opts_t *o, syc_prom_buf_t *out)
{
    size_t ns = s->series.count, nt = s->targets.count;
    prom_series_t **series = ns ? malloc(ns * sizeof(*series)) : NULL;
    prom_target_t **targets = nt ? malloc(nt * sizeof(*targets)) : NULL;
    if ((ns && !series) || (nt && !targets)) {
        free(series);
        free(targets);
        return -1;
    }
    size_t b = 0, k = 0;
    for (prom_hnode_t *n = prom_htab_next(&s->series, &b, NULL); n && k < ns;
         n = prom_htab_next(&s->series, &b, n))
        series[k++] = (prom_series_t *)n;
    ns = k;
    b = k = 0;
    for (prom_hnode_t *n = prom_htab_next(&s->targets, &b, NULL); n && k < nt;
         n = prom_htab_next(&s->targets, &b, n))
        targets[k++] = (prom_target_t *)n;
    nt = k;
    if (ns > 1) qsort(series, ns, sizeof(*series), series_cmp);
    if (nt > 1) qsort(targets, nt, sizeof(*targets), target_cmp);

    bool targets_done = false;
    const prom_family_t *family = NULL;
    for (size_t i = 0; i < ns; i++) {
        const prom_series_t *se = series[i];
        if (se->family != family) {
            family = se->family;
            if (!targets_done && strcmp(o->target_info_name, family->name) < 0) {
                put_targets(out, o, targets, nt);
                targets_done = true;
            }
            put_family_header(out, o, family);
        }
        switch (family->kind) {
        case PROM_KIND_GAUGE:
            put_series(out, o, family->name, "", se, NULL, 0);
            syc_prom_buf_char(out, ' ');
            put_value(out, o, se->value);
            put_timestamp(out, o, se->time_ns);
            syc_prom_buf_char(out, '\n');
            break;
        case PROM_KIND_COUNTER:
            put_counter(out, o, se);
            break;
        case PROM_KIND_HISTOGRAM:
            put_histogram(out, o, se);
            break;
        case PROM_KIND_SUMMARY:
            put_summary(out, o, se);
            break;
        }
    }
    if (!targets_done) put_targets(out, o, targets, nt);
    if (o->openmetrics) syc_prom_buf_str(out, "# EOF\n");
    free(series);
    free(targets);
    return out->failed ? -1 : 0;
}

/* One media range of an Accept header. */
typedef struct accept_s {
    int kind; /* 1 OpenMetrics, 2 text 0.0.4, 0 other */
    double q;
    size_t order;
} accept_t;

static int accept_cmp(const void *a, const void *b)
{
    const accept_t *x = a, *y = b;
    if (x->q != y->q) return x->q > y->q ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

static size_t trim(const char **p, size_t n)
{
    while (n && isspace((unsigned char)**p)) {
        (*p)++;
        n--;
    }
    while (n && isspace((unsigned char)(*p)[n - 1]))
        n--;
    return n;
}

bool prom_accepts_openmetrics(const char *accept)
{
    if (!accept) return false;
    accept_t v[32];
    size_t n = 0;
    const char *p = accept;
    while (*p && n < 32) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *item = p;
        p = end ? end + 1 : p + len;
        /* type;param;param */
        const char *semi = memchr(item, ';', len);
        const char *type = item;
        size_t tlen = trim(&type, semi ? (size_t)(semi - item) : len);
        accept_t a = {.kind = 0, .q = 1.0, .order = n};
        const char *version = NULL;
        size_t vlen = 0;
        while (semi) {
            const char *param = semi + 1;
            size_t rest = len - (size_t)(param - item);
            semi = memchr(param, ';', rest);
            size_t plen = trim(&param, semi ? (size_t)(semi - param) : rest);
            if (plen > 2 && strncasecmp(param, "q=", 2) == 0)
                a.q = strtod(param + 2, NULL);
            else if (plen > 8 && strncasecmp(param, "version=", 8) == 0) {
                version = param + 8;
                vlen = plen - 8;
            }
        }
        if (tlen == 28 && strncasecmp(type, "application/openmetrics-text", 28) == 0) {
            if (!version || (vlen == 5 && (memcmp(version, "0.0.1", 5) == 0 ||
                                           memcmp(version, "1.0.0", 5) == 0)))
                a.kind = 1;
        } else if (tlen == 10 && strncasecmp(type, "text/plain", 10) == 0) {
            if (!version || (vlen == 5 && memcmp(version, "0.0.4", 5) == 0)) a.kind = 2;
        }
        if (a.q > 0) v[n++] = a;
    }
    if (n > 1) qsort(v, n, sizeof(v[0]), accept_cmp);
    for (size_t i = 0; i < n; i++)
        if (v[i].kind) return v[i].kind == 1;
    return false;
}
