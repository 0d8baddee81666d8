/*
 * prom_otlp.c - one scrape into OTLP metrics; see prom_otlp.h and README.md.
 *
 * Three passes over the scrape's arena: samples get their final label set (target
 * labels, then metric_relabel_configs), are grouped into resources (job,
 * instance), metrics (name) and points (labels without le / quantile), and the
 * groups are written as protobuf-c structs. Series state (start times, last
 * values, staleness) lives in malloc'ed entries that outlive the scrape.
 */
#include "prom_otlp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue any_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint ndp_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hdp_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sdp_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile vaq_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm_t;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm_t;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req_t;

#define NO_RECORDED_VALUE 1u

/* The OTLP shape a point takes. */
typedef enum kind_e {
    K_GAUGE = 1,
    K_SUM_MONOTONIC, /* counter */
    K_SUM,           /* info, stateset: cumulative, not monotonic */
    K_HISTOGRAM,
    K_SUMMARY,
} kind_t;

/* What one sample contributes to its point. */
typedef enum role_e { R_VALUE, R_BUCKET, R_QUANTILE, R_SUM, R_COUNT, R_CREATED } role_t;

typedef struct bound_s {
    double at; /* le or quantile */
    double v;
} bound_t;

typedef struct pt_s {
    const char *key; /* job \0 instance \0 name \0 (label \1 value \0)* */
    size_t keylen;
    prom_label_t *attrs;
    size_t nattrs;
    uint64_t ts_ns;
    bool has_value, has_sum, has_count, has_created, stale;
    bool explicit_ts; /* the page gave its timestamp: no staleness, as Prometheus */
    double value, sum, count, created_s;
    bound_t *b;
    size_t nb, cb;
    uint64_t start_ns;
    struct pt_s *next;
} pt_t;

typedef struct met_s {
    const char *name;
    kind_t kind;
    const prom_meta_t *meta;
    pt_t *first, *last;
    struct met_s *next;
} met_t;

typedef struct res_s {
    const char *job, *instance;
    met_t *first, *last;
    struct res_s *next;
} res_t;

/* The state a series keeps between scrapes (malloc'ed; key owns its bytes). */
typedef struct series_s {
    char *key;
    size_t keylen;
    kind_t kind;
    uint32_t gen;
    bool no_stale; /* written with explicit timestamps */
    uint64_t start_ns;
    double last_a, last_b; /* counter value; or count and sum */
} series_t;

typedef struct build_s {
    const prom_target_t *t;
    prom_series_state_t *st;
    const prom_doc_t *doc;
    prom_arena_t *a;
    uint64_t scrape_ns;
    prom_stats_t *stats;
    res_t *res_first, *res_last;
    prom_map_t res_map, met_map, pt_map;
    res_t *last_res; /* of the last sample placed */
    met_t *last_met;
    bool oom;
} build_t;

/* ---- keys ---------------------------------------------------------------------- */

typedef struct key_s {
    char *p;
    size_t n, cap;
} skey_t;

static bool key_add(build_t *b, skey_t *k, const char *s, size_t n)
{
    if (k->n + n + 1 > k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 128;
        while (cap < k->n + n + 1)
            cap *= 2;
        char *p = prom_arena_alloc(b->a, cap);
        if (!p) return false;
        if (k->n) memcpy(p, k->p, k->n);
        k->p = p;
        k->cap = cap;
    }
    memcpy(k->p + k->n, s, n);
    k->n += n;
    return true;
}

static bool key_str(build_t *b, skey_t *k, const char *s, char sep)
{
    return key_add(b, k, s, strlen(s)) && key_add(b, k, &sep, 1);
}

/* ---- grouping ------------------------------------------------------------------ */

static res_t *get_res(build_t *b, const char *job, const char *instance)
{
    skey_t k = {0};
    if (!key_str(b, &k, job, '\0') || !key_str(b, &k, instance, '\0')) return NULL;
    res_t *r = prom_map_get(&b->res_map, k.p, k.n);
    if (r) return r;
    r = prom_arena_alloc(b->a, sizeof(*r));
    if (!r) return NULL;
    memset(r, 0, sizeof(*r));
    r->job = job;
    r->instance = instance;
    if (prom_map_put(&b->res_map, k.p, k.n, r) != 0) return NULL;
    if (b->res_last)
        b->res_last->next = r;
    else
        b->res_first = r;
    b->res_last = r;
    return r;
}

static met_t *get_met(build_t *b, res_t *r, const char *name, kind_t kind, const prom_meta_t *meta)
{
    skey_t k = {0};
    if (!key_str(b, &k, r->job, '\0') || !key_str(b, &k, r->instance, '\0') ||
        !key_str(b, &k, name, '\0'))
        return NULL;
    met_t *m = prom_map_get(&b->met_map, k.p, k.n);
    if (m) return m;
    m = prom_arena_alloc(b->a, sizeof(*m));
    if (!m) return NULL;
    memset(m, 0, sizeof(*m));
    m->name = prom_arena_strndup(b->a, name, strlen(name));
    m->kind = kind;
    m->meta = meta;
    if (!m->name || prom_map_put(&b->met_map, k.p, k.n, m) != 0) return NULL;
    if (r->last)
        r->last->next = m;
    else
        r->first = m;
    r->last = m;
    return m;
}

/* The point of a metric with these attributes, made on first use. */
static pt_t *get_pt(build_t *b, met_t *m, res_t *r, prom_label_t *attrs, size_t nattrs)
{
    skey_t k = {0};
    if (!key_str(b, &k, r->job, '\0') || !key_str(b, &k, r->instance, '\0') ||
        !key_str(b, &k, m->name, '\0'))
        return NULL;
    for (size_t i = 0; i < nattrs; i++)
        if (!key_str(b, &k, attrs[i].name, '\1') || !key_str(b, &k, attrs[i].value, '\0'))
            return NULL;
    pt_t *p = prom_map_get(&b->pt_map, k.p, k.n);
    if (p) return p;
    p = prom_arena_alloc(b->a, sizeof(*p));
    if (!p) return NULL;
    memset(p, 0, sizeof(*p));
    p->key = k.p;
    p->keylen = k.n;
    p->attrs = attrs;
    p->nattrs = nattrs;
    if (prom_map_put(&b->pt_map, k.p, k.n, p) != 0) return NULL;
    if (m->last)
        m->last->next = p;
    else
        m->first = p;
    m->last = p;
    return p;
}

static bool ends_with(const char *s, size_t n, const char *suffix, size_t *base)
{
    size_t sl = strlen(suffix);
    if (n <= sl || memcmp(s + n - sl, suffix, sl)) return false;
    *base = n - sl;
    return true;
}

/*
 * The collector's metadataForMetric: the sample's own name when it has metadata;
 * else the name without one of the suffixes of a family whose metadata is known;
 * else an unknown (gauge) metric of its own name. Counters keep the sample's name
 * (foo_total); histograms and summaries take the family's.
 */
static bool classify(build_t *b, const char *name, const char **metric, kind_t *kind, role_t *role,
                     const prom_meta_t **meta)
{
    static const char *const suffixes[] = {"_count", "_bucket",  "_sum",
                                           "_total", "_created", "_info"};
    size_t n = strlen(name);
    const prom_meta_t *m = b->doc ? prom_doc_meta(b->doc, name) : NULL;
    const char *suffix = NULL;
    if (!m) {
        for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]) && !m; i++) {
            size_t base;
            if (!ends_with(name, n, suffixes[i], &base)) continue;
            m = prom_map_get(&b->doc->meta_index, name, base);
            if (m) suffix = suffixes[i];
        }
    }
    *meta = m;
    *metric = name;
    *role = R_VALUE;
    prom_type_t type = m ? m->type : PROM_UNKNOWN;
    switch (type) {
    case PROM_COUNTER:
        *kind = K_SUM_MONOTONIC;
        if (suffix && !strcmp(suffix, "_created")) {
            /* OpenMetrics: foo_created is the start of foo_total. */
            size_t fl = strlen(m->name);
            char *t = prom_arena_alloc(b->a, fl + 7);
            if (!t) {
                b->oom = true;
                return false;
            }
            memcpy(t, m->name, fl);
            memcpy(t + fl, "_total", 7);
            *metric = t;
            *role = R_CREATED;
        }
        return true;
    case PROM_GAUGE:
    case PROM_UNKNOWN:
        *kind = K_GAUGE;
        if (suffix) *metric = m->name;
        return true;
    case PROM_INFO:
    case PROM_STATESET:
        *kind = K_SUM;
        return true;
    case PROM_HISTOGRAM:
    case PROM_SUMMARY:
        *kind = type == PROM_HISTOGRAM ? K_HISTOGRAM : K_SUMMARY;
        *metric = m->name;
        if (!suffix) {
            *role = R_QUANTILE; /* a summary's quantiles carry the family's name */
            return type == PROM_SUMMARY;
        }
        if (!strcmp(suffix, "_sum"))
            *role = R_SUM;
        else if (!strcmp(suffix, "_count"))
            *role = R_COUNT;
        else if (!strcmp(suffix, "_created"))
            *role = R_CREATED;
        else if (!strcmp(suffix, "_bucket") && type == PROM_HISTOGRAM)
            *role = R_BUCKET;
        else
            return false;
        return true;
    case PROM_GAUGEHISTOGRAM:
        return false; /* the collector drops them too */
    }
    return false;
}

/* The label set of one sample after target labels and relabeling; 0 dropped. */
static int final_labels(build_t *b, const prom_sample_t *s, prom_labels_t *ls)
{
    const prom_target_t *t = b->t;
    for (size_t i = 0; i < s->nlabels; i++)
        if (prom_labels_set(ls, s->labels[i].name, s->labels[i].value) != 0) return -1;
    /* Target labels: job, instance and the static labels. */
    const size_t ntl = t->nlabels + 2;
    for (size_t i = 0; i < ntl; i++) {
        const char *name = i == 0 ? "job" : i == 1 ? "instance" : t->labels[i - 2].name;
        const char *value = i == 0 ? t->job : i == 1 ? t->instance : t->labels[i - 2].value;
        const char *exposed = prom_labels_get(ls, name);
        if (exposed && t->honor_labels) continue;
        if (exposed) {
            /* honor_labels false: the exposed value moves to exported_<name>. */
            char *moved = prom_arena_alloc(b->a, strlen(name) + 10);
            if (!moved) return -1;
            strcpy(moved, name);
            do {
                size_t ml = strlen(moved);
                char *next = prom_arena_alloc(b->a, ml + 10);
                if (!next) return -1;
                memcpy(next, "exported_", 9);
                memcpy(next + 9, moved, ml + 1);
                moved = next;
            } while (prom_labels_get(ls, moved));
            if (prom_labels_set(ls, moved, exposed) != 0) return -1;
        }
        if (prom_labels_set(ls, name, value) != 0) return -1;
    }
    if (prom_labels_set(ls, "__name__", s->name) != 0) return -1;
    int rc = prom_relabel_apply(t->rules, t->nrules, ls);
    if (rc <= 0) return rc;
    const char *name = prom_labels_get(ls, "__name__");
    return name && *name ? 1 : 0;
}

static bool add_bound(build_t *b, pt_t *p, double at, double v)
{
    if (p->nb == p->cb) {
        size_t cap = p->cb ? p->cb * 2 : 16;
        bound_t *g = prom_arena_alloc(b->a, cap * sizeof(*g));
        if (!g) return false;
        if (p->nb) memcpy(g, p->b, p->nb * sizeof(*g));
        p->b = g;
        p->cb = cap;
    }
    p->b[p->nb].at = at;
    p->b[p->nb++].v = v;
    return true;
}

static bool parse_bound(const char *s, double *out)
{
    if (!s) return false;
    char *e;
    double v = strtod(s, &e);
    if (e == s || *e) return false;
    *out = v;
    return true;
}

/* One sample into its point. Returns -1 on out of memory, 0 when the sample fits
 * nowhere (counted as dropped), 1 when placed. */
static int place(build_t *b, const prom_sample_t *s, prom_labels_t *ls)
{
    const char *name = prom_labels_get(ls, "__name__");
    const char *job = prom_labels_get(ls, "job");
    const char *instance = prom_labels_get(ls, "instance");
    const char *metric;
    kind_t kind;
    role_t role;
    const prom_meta_t *meta;
    if (!classify(b, name, &metric, &kind, &role, &meta)) return b->oom ? -1 : 0;
    const char *skip = kind == K_HISTOGRAM ? "le" : kind == K_SUMMARY ? "quantile" : NULL;
    double at = 0;
    if ((role == R_BUCKET || role == R_QUANTILE) && !parse_bound(prom_labels_get(ls, skip), &at))
        return 0; /* a bucket without le, a quantile without quantile */
    prom_label_t *attrs = prom_arena_alloc(b->a, (ls->n ? ls->n : 1) * sizeof(*attrs));
    if (!attrs) return -1;
    size_t na = 0;
    for (size_t i = 0; i < ls->n; i++) {
        const char *ln = ls->v[i].name;
        if (!strcmp(ln, "__name__") || !strcmp(ln, "job") || !strcmp(ln, "instance") ||
            (skip && !strcmp(ln, skip)))
            continue;
        attrs[na++] = ls->v[i];
    }
    /* The samples of a family come together: the last metric is most often it. */
    res_t *r;
    met_t *m;
    job = job ? job : "";
    instance = instance ? instance : "";
    if (b->last_met && !strcmp(b->last_met->name, metric) && !strcmp(b->last_res->job, job) &&
        !strcmp(b->last_res->instance, instance)) {
        r = b->last_res;
        m = b->last_met;
    } else {
        r = get_res(b, job, instance);
        m = r ? get_met(b, r, metric, kind, meta) : NULL;
        if (!m) return -1;
        b->last_res = r;
        b->last_met = m;
    }
    if (m->kind != kind) return 0;
    pt_t *p = get_pt(b, m, r, attrs, na);
    if (!p) return -1;
    uint64_t ts =
        s->has_ts && b->t->honor_timestamps ? (uint64_t)s->ts_ms * 1000000u : b->scrape_ns;
    if (role != R_CREATED && !p->has_value) {
        p->has_value = true;
        p->ts_ns = ts;
        p->explicit_ts = s->has_ts && b->t->honor_timestamps;
    }
    switch (role) {
    case R_VALUE:
        p->value = s->value;
        break;
    case R_BUCKET:
    case R_QUANTILE:
        if (!add_bound(b, p, at, s->value)) return -1;
        break;
    case R_SUM:
        p->sum = s->value;
        p->has_sum = true;
        break;
    case R_COUNT:
        p->count = s->value;
        p->has_count = true;
        break;
    case R_CREATED:
        p->created_s = s->value;
        p->has_created = true;
        break;
    }
    return 1;
}

/* ---- series state -------------------------------------------------------------- */

static uint64_t labels_hash(const prom_labels_t *ls)
{
    uint64_t h = SYC_FNV64_OFFSET;
    for (size_t i = 0; i < ls->n; i++) {
        h = syc_fnv1a64(h, ls->v[i].name, strlen(ls->v[i].name) + 1);
        h = syc_fnv1a64(h, ls->v[i].value, strlen(ls->v[i].value) + 1);
    }
    return h;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, c = *(const uint64_t *)y;
    return a < c ? -1 : a > c;
}

static void series_free(series_t *s)
{
    free(s->key);
    free(s);
}

/* Start time of a cumulative point and the bookkeeping of its series. */
static int track(build_t *b, met_t *m, pt_t *p)
{
    prom_series_state_t *st = b->st;
    series_t *s = prom_map_get(&st->series, p->key, p->keylen);
    double a = m->kind == K_SUM_MONOTONIC || m->kind == K_SUM ? p->value : p->count;
    double bb = m->kind == K_HISTOGRAM || m->kind == K_SUMMARY ? p->sum : 0;
    bool cumulative = m->kind != K_GAUGE;
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s) return -1;
        s->key = malloc(p->keylen);
        if (!s->key) {
            free(s);
            return -1;
        }
        memcpy(s->key, p->key, p->keylen);
        s->keylen = p->keylen;
        s->kind = m->kind;
        s->start_ns = p->ts_ns;
        if (prom_map_put(&st->series, s->key, s->keylen, s) != 0) {
            series_free(s);
            return -1;
        }
    } else {
        /* A cumulative value that went down: the series was reset. */
        if (cumulative && (a < s->last_a || bb < s->last_b)) s->start_ns = p->ts_ns;
        s->kind = m->kind;
    }
    s->gen = st->gen;
    s->no_stale = p->explicit_ts;
    s->last_a = a;
    s->last_b = bb;
    if (!cumulative)
        p->start_ns = 0;
    else if (p->has_created && isfinite(p->created_s) && p->created_s > 0 &&
             p->created_s < 1.8e10) {
        /* Seconds and fraction apart: a double holds no nanoseconds at 1.7e18. */
        double secs = floor(p->created_s);
        p->start_ns = (uint64_t)secs * 1000000000u + (uint64_t)llround((p->created_s - secs) * 1e9);
    } else
        p->start_ns = s->start_ns;
    return 0;
}

/* Series of the previous scrape that this one did not see: one stale point each,
 * then forgotten; the others are kept. Rebuilds the map without them. */
static int sweep(build_t *b)
{
    prom_series_state_t *st = b->st;
    prom_map_t kept = {0};
    int rc = 0;
    size_t gone = 0;
    for (size_t i = 0; i < st->series.cap; i++)
        if (st->series.slots[i].key && ((series_t *)st->series.slots[i].value)->gen != st->gen)
            gone++;
    if (gone == 0) return 0; /* the usual scrape: the same series as the last */
    for (size_t i = 0; i < st->series.cap; i++) {
        series_t *s = st->series.slots[i].value;
        if (!st->series.slots[i].key) continue;
        if (s->gen == st->gen) {
            if (prom_map_put(&kept, s->key, s->keylen, s) != 0) rc = -1;
            continue;
        }
        if (rc == 0 && !s->no_stale) {
            /* Decode the key back into job, instance, name and attributes. */
            char *k = prom_arena_alloc(b->a, s->keylen + 1);
            if (!k)
                rc = -1;
            else {
                memcpy(k, s->key, s->keylen);
                k[s->keylen] = '\0';
                const char *job = k, *instance = job + strlen(job) + 1;
                const char *name = instance + strlen(instance) + 1;
                const char *q = name + strlen(name) + 1, *end = k + s->keylen;
                size_t na = 0;
                /* Each label is name \1 value \0: names hold no \1 and values no
                 * NUL (the parser refuses it), so the first \1 splits. */
                for (const char *x = q; x < end; x++)
                    if (*x == '\0') na++;
                prom_label_t *attrs = prom_arena_alloc(b->a, (na ? na : 1) * sizeof(*attrs));
                if (!attrs) rc = -1;
                for (size_t j = 0; rc == 0 && j < na; j++) {
                    char *sep = strchr(q, '\1');
                    *sep = '\0';
                    attrs[j].name = q;
                    attrs[j].value = sep + 1;
                    q = sep + 1 + strlen(sep + 1) + 1;
                }
                res_t *r = rc == 0 ? get_res(b, job, instance) : NULL;
                met_t *m = r ? get_met(b, r, name, s->kind, NULL) : NULL;
                pt_t *p = m && m->kind == s->kind ? get_pt(b, m, r, attrs, na) : NULL;
                if (!r || !m)
                    rc = -1;
                else if (p && !p->has_value) {
                    p->stale = true;
                    p->has_value = true;
                    p->ts_ns = b->scrape_ns;
                    p->start_ns = s->kind == K_GAUGE ? 0 : s->start_ns;
                    b->stats->stale++;
                }
            }
        }
        series_free(s);
    }
    prom_map_free(&st->series);
    st->series = kept;
    return rc;
}

void prom_series_state_free(prom_series_state_t *st)
{
    free(st->sample_hashes);
    st->sample_hashes = NULL;
    for (size_t i = 0; i < st->series.cap; i++)
        if (st->series.slots[i].key) series_free(st->series.slots[i].value);
    prom_map_free(&st->series);
}

/* ---- writing protobuf-c structs -------------------------------------------------- */

static void *zalloc(build_t *b, size_t n)
{
    void *p = prom_arena_alloc(b->a, n);
    if (p)
        memset(p, 0, n);
    else
        b->oom = true;
    return p;
}

static kv_t *str_kv(build_t *b, const char *key, const char *value)
{
    kv_t *kv = zalloc(b, sizeof(*kv));
    any_t *v = zalloc(b, sizeof(*v));
    if (!kv || !v) return NULL;
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = (char *)key;
    kv->value = v;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)value;
    return kv;
}

static kv_t **attrs_kv(build_t *b, const prom_label_t *attrs, size_t n)
{
    kv_t **out = zalloc(b, (n ? n : 1) * sizeof(*out));
    for (size_t i = 0; out && i < n; i++)
        if (!(out[i] = str_kv(b, attrs[i].name, attrs[i].value))) return NULL;
    return out;
}

static int cmp_bound(const void *x, const void *y)
{
    double a = ((const bound_t *)x)->at, c = ((const bound_t *)y)->at;
    return a < c ? -1 : a > c ? 1 : 0;
}

static uint64_t to_u64(double v)
{
    if (!(v > 0)) return 0;
    if (v >= 1.8e19) return UINT64_MAX;
    return (uint64_t)llround(v);
}

static void *write_point(build_t *b, met_t *m, pt_t *p)
{
    kv_t **attrs = attrs_kv(b, p->attrs, p->nattrs);
    if (!attrs) return NULL;
    uint32_t flags = p->stale ? NO_RECORDED_VALUE : 0;
    if (m->kind == K_HISTOGRAM) {
        hdp_t *d = zalloc(b, sizeof(*d));
        if (!d) return NULL;
        opentelemetry__proto__metrics__v1__histogram_data_point__init(d);
        d->n_attributes = p->nattrs;
        d->attributes = attrs;
        d->start_time_unix_nano = p->start_ns;
        d->time_unix_nano = p->ts_ns;
        d->flags = flags;
        if (p->stale) return d;
        if (p->nb) qsort(p->b, p->nb, sizeof(*p->b), cmp_bound);
        size_t finite = 0;
        double inf_count = -1;
        for (size_t i = 0; i < p->nb; i++)
            if (isinf(p->b[i].at) && p->b[i].at > 0)
                inf_count = p->b[i].v;
            else
                finite++;
        double total = p->has_count ? p->count : inf_count >= 0 ? inf_count : 0;
        d->count = to_u64(total);
        if (p->has_sum) {
            d->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
            d->sum = p->sum;
        }
        if (p->nb) {
            d->explicit_bounds = zalloc(b, (finite ? finite : 1) * sizeof(double));
            d->bucket_counts = zalloc(b, (finite + 1) * sizeof(uint64_t));
            if (!d->explicit_bounds || !d->bucket_counts) return NULL;
            double prev = 0;
            size_t j = 0;
            for (size_t i = 0; i < p->nb; i++) {
                if (isinf(p->b[i].at) && p->b[i].at > 0) continue;
                d->explicit_bounds[j] = p->b[i].at;
                d->bucket_counts[j++] = to_u64(p->b[i].v - prev);
                prev = p->b[i].v;
            }
            d->bucket_counts[j] = to_u64(total - prev);
            d->n_explicit_bounds = finite;
            d->n_bucket_counts = finite + 1;
        }
        return d;
    }
    if (m->kind == K_SUMMARY) {
        sdp_t *d = zalloc(b, sizeof(*d));
        if (!d) return NULL;
        opentelemetry__proto__metrics__v1__summary_data_point__init(d);
        d->n_attributes = p->nattrs;
        d->attributes = attrs;
        d->start_time_unix_nano = p->start_ns;
        d->time_unix_nano = p->ts_ns;
        d->flags = flags;
        if (p->stale) return d;
        d->count = to_u64(p->count);
        d->sum = p->has_sum ? p->sum : 0;
        if (p->nb) {
            d->quantile_values = zalloc(b, p->nb * sizeof(vaq_t *));
            if (!d->quantile_values) return NULL;
            for (size_t i = 0; i < p->nb; i++) {
                vaq_t *q = zalloc(b, sizeof(*q));
                if (!q) return NULL;
                opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(q);
                q->quantile = p->b[i].at;
                q->value = p->b[i].v;
                d->quantile_values[i] = q;
            }
            d->n_quantile_values = p->nb;
        }
        return d;
    }
    ndp_t *d = zalloc(b, sizeof(*d));
    if (!d) return NULL;
    opentelemetry__proto__metrics__v1__number_data_point__init(d);
    d->n_attributes = p->nattrs;
    d->attributes = attrs;
    d->start_time_unix_nano = p->start_ns;
    d->time_unix_nano = p->ts_ns;
    d->flags = flags;
    if (!p->stale) {
        d->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        d->as_double = p->value;
    }
    return d;
}

static metric_t *write_metric(build_t *b, met_t *m)
{
    size_t n = 0;
    for (pt_t *p = m->first; p; p = p->next)
        if (p->has_value) n++;
    if (!n) return NULL;
    metric_t *out = zalloc(b, sizeof(*out));
    void **points = zalloc(b, n * sizeof(void *));
    if (!out || !points) return NULL;
    opentelemetry__proto__metrics__v1__metric__init(out);
    out->name = (char *)m->name;
    if (m->meta && m->meta->help) out->description = (char *)m->meta->help;
    if (m->meta && m->meta->unit) out->unit = (char *)m->meta->unit;
    size_t i = 0;
    for (pt_t *p = m->first; p; p = p->next)
        if (p->has_value && !(points[i++] = write_point(b, m, p))) return NULL;
    b->stats->points += n;
    switch (m->kind) {
    case K_GAUGE: {
        Opentelemetry__Proto__Metrics__V1__Gauge *g = zalloc(b, sizeof(*g));
        if (!g) return NULL;
        opentelemetry__proto__metrics__v1__gauge__init(g);
        g->n_data_points = n;
        g->data_points = (ndp_t **)points;
        out->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        out->gauge = g;
        break;
    }
    case K_SUM_MONOTONIC:
    case K_SUM: {
        Opentelemetry__Proto__Metrics__V1__Sum *s = zalloc(b, sizeof(*s));
        if (!s) return NULL;
        opentelemetry__proto__metrics__v1__sum__init(s);
        s->n_data_points = n;
        s->data_points = (ndp_t **)points;
        s->aggregation_temporality =
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        s->is_monotonic = m->kind == K_SUM_MONOTONIC;
        out->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        out->sum = s;
        break;
    }
    case K_HISTOGRAM: {
        Opentelemetry__Proto__Metrics__V1__Histogram *h = zalloc(b, sizeof(*h));
        if (!h) return NULL;
        opentelemetry__proto__metrics__v1__histogram__init(h);
        h->n_data_points = n;
        h->data_points = (hdp_t **)points;
        h->aggregation_temporality =
            OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE;
        out->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        out->histogram = h;
        break;
    }
    case K_SUMMARY: {
        Opentelemetry__Proto__Metrics__V1__Summary *s = zalloc(b, sizeof(*s));
        if (!s) return NULL;
        opentelemetry__proto__metrics__v1__summary__init(s);
        s->n_data_points = n;
        s->data_points = (sdp_t **)points;
        out->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
        out->summary = s;
        break;
    }
    }
    return out;
}

/* Resource attributes as the collector's CreateResource writes them (with the
 * legacy attributes removed, the default since v0.128). */
static rm_t *write_resource(build_t *b, res_t *r, const char *scope_version)
{
    size_t nm = 0;
    for (met_t *m = r->first; m; m = m->next)
        nm++;
    rm_t *rm = zalloc(b, sizeof(*rm));
    sm_t *sm = zalloc(b, sizeof(*sm));
    sm_t **sms = zalloc(b, sizeof(*sms));
    metric_t **metrics = zalloc(b, (nm ? nm : 1) * sizeof(*metrics));
    Opentelemetry__Proto__Resource__V1__Resource *res = zalloc(b, sizeof(*res));
    Opentelemetry__Proto__Common__V1__InstrumentationScope *scope = zalloc(b, sizeof(*scope));
    kv_t **attrs = zalloc(b, 5 * sizeof(*attrs));
    if (!rm || !sm || !sms || !metrics || !res || !scope || !attrs) return NULL;
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    opentelemetry__proto__resource__v1__resource__init(res);
    opentelemetry__proto__common__v1__instrumentation_scope__init(scope);
    /* host:port, [v6]:port or a bare host. */
    const char *inst = r->instance;
    const char *colon = strrchr(inst, ':');
    const char *host = inst, *port = "";
    size_t hl = strlen(inst);
    if (colon && (inst[0] != '[' || colon[-1] == ']') &&
        (inst[0] == '[' || memchr(inst, ':', (size_t)(colon - inst)) == NULL)) {
        hl = (size_t)(colon - inst);
        port = colon + 1;
        if (inst[0] == '[') {
            host = inst + 1;
            hl -= 2;
        }
    }
    char *h = prom_arena_strndup(b->a, host, hl);
    if (!h) return NULL;
    /* isDiscernibleHost: not empty, not localhost, not a loopback or unspecified IP. */
    bool discernible = *h && strcmp(h, "localhost") && strncmp(h, "127.", 4) && strcmp(h, "::1") &&
                       strcmp(h, "0.0.0.0") && strcmp(h, "::");
    size_t na = 0;
    if (!(attrs[na++] = str_kv(b, "service.name", r->job))) return NULL;
    if (discernible && !(attrs[na++] = str_kv(b, "server.address", h))) return NULL;
    if (!(attrs[na++] = str_kv(b, "service.instance.id", r->instance))) return NULL;
    if (!(attrs[na++] = str_kv(b, "server.port", port))) return NULL;
    if (!(attrs[na++] = str_kv(b, "url.scheme", b->t->scheme))) return NULL;
    res->attributes = attrs;
    res->n_attributes = na;
    scope->name = PROM_SCOPE_NAME;
    scope->version = (char *)scope_version;
    sm->scope = scope;
    size_t i = 0;
    for (met_t *m = r->first; m; m = m->next) {
        metric_t *mt = write_metric(b, m);
        if (mt)
            metrics[i++] = mt;
        else if (b->oom)
            return NULL;
    }
    sm->metrics = metrics;
    sm->n_metrics = i;
    sms[0] = sm;
    rm->resource = res;
    rm->scope_metrics = sms;
    rm->n_scope_metrics = 1;
    return rm;
}

/* up, scrape_duration_seconds, scrape_samples_scraped,
 * scrape_samples_post_metric_relabeling, scrape_series_added: gauges of the target. */
static int add_scrape_metrics(build_t *b, bool up, double duration_s)
{
    const prom_target_t *t = b->t;
    res_t *r = get_res(b, t->job, t->instance);
    if (!r) return -1;
    const struct {
        const char *name, *help, *unit;
        double v;
    } gauges[] = {
        {"up", "The scraping was successful", NULL, up ? 1 : 0},
        {"scrape_duration_seconds", "Duration of the scrape", "seconds", duration_s},
        {"scrape_samples_scraped", "The number of samples the target exposed", NULL,
         (double)b->stats->scraped},
        {"scrape_samples_post_metric_relabeling",
         "The number of samples remaining after metric relabeling was applied", NULL,
         (double)b->stats->post_relabel},
        {"scrape_series_added", "The approximate number of new series in this scrape", NULL,
         (double)b->stats->added},
    };
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
        prom_meta_t *meta = zalloc(b, sizeof(*meta));
        if (!meta) return -1;
        meta->name = gauges[i].name;
        meta->type = PROM_GAUGE;
        meta->help = gauges[i].help;
        meta->unit = gauges[i].unit;
        met_t *m = get_met(b, r, gauges[i].name, K_GAUGE, meta);
        if (!m) return -1;
        if (m->first) continue; /* the target exposes a metric of that name itself */
        pt_t *p = get_pt(b, m, r, t->labels, t->nlabels);
        if (!p) return -1;
        p->has_value = true;
        p->value = gauges[i].v;
        p->ts_ns = b->scrape_ns;
    }
    return 0;
}

void *prom_build(const prom_target_t *t, prom_series_state_t *st, const prom_doc_t *doc,
                 uint64_t scrape_ns, double duration_s, const char *scope_version,
                 prom_arena_t *arena, prom_stats_t *stats)
{
    build_t b = {.t = t, .st = st, .doc = doc, .a = arena, .scrape_ns = scrape_ns, .stats = stats};
    memset(stats, 0, sizeof(*stats));
    st->gen++;
    req_t *req = NULL;
    uint64_t *hashes = NULL;
    if (doc) {
        stats->scraped = doc->nsamples;
        hashes = malloc((doc->nsamples ? doc->nsamples : 1) * sizeof(*hashes));
        if (!hashes) goto out;
        for (size_t i = 0; i < doc->nsamples; i++) {
            prom_labels_t ls = {.arena = arena};
            int rc = final_labels(&b, &doc->samples[i], &ls);
            if (rc < 0) goto out;
            if (rc == 0) continue;
            hashes[stats->post_relabel++] = labels_hash(&ls);
            rc = place(&b, &doc->samples[i], &ls);
            if (rc < 0) goto out;
            if (rc == 0) stats->dropped++;
        }
        for (res_t *r = b.res_first; r; r = r->next)
            for (met_t *m = r->first; m; m = m->next)
                for (pt_t *p = m->first; p; p = p->next)
                    if (p->has_value && track(&b, m, p) != 0) goto out;
        /* scrape_series_added: Prometheus counts series of samples (each bucket is
         * one) that its scrape cache did not hold; here, those the last
         * successful scrape did not have. */
        qsort(hashes, stats->post_relabel, sizeof(*hashes), cmp_u64);
        for (size_t i = 0; i < stats->post_relabel; i++)
            if ((i == 0 || hashes[i] != hashes[i - 1]) &&
                (!st->nsample_hashes || !bsearch(&hashes[i], st->sample_hashes, st->nsample_hashes,
                                                 sizeof(*hashes), cmp_u64)))
                stats->added++;
        free(st->sample_hashes);
        st->sample_hashes = hashes;
        st->nsample_hashes = stats->post_relabel;
        hashes = NULL;
    }
    if (sweep(&b) != 0 || add_scrape_metrics(&b, doc != NULL, duration_s) != 0) goto out;
    size_t nr = 0;
    for (res_t *r = b.res_first; r; r = r->next)
        nr++;
    req = zalloc(&b, sizeof(*req));
    rm_t **rms = zalloc(&b, (nr ? nr : 1) * sizeof(*rms));
    if (!req || !rms) {
        req = NULL;
        goto out;
    }
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(req);
    size_t i = 0;
    for (res_t *r = b.res_first; r; r = r->next)
        if (!(rms[i++] = write_resource(&b, r, scope_version))) {
            req = NULL;
            goto out;
        }
    req->resource_metrics = rms;
    req->n_resource_metrics = nr;
out:
    free(hashes);
    prom_map_free(&b.res_map);
    prom_map_free(&b.met_map);
    prom_map_free(&b.pt_map);
    return req;
}
