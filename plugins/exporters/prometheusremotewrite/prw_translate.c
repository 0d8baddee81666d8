/*
 * prw_translate.c - OTLP metrics into remote write requests (see the header).
 *
 * The WriteRequest is written by hand with a small protobuf writer: its schema
 * (proto/prometheus/) is four messages of strings, doubles and varints, and each
 * series is encoded once, its labels first, so that the encoded labels are also
 * the key that gathers the samples of one series.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "otlp_json_map.h" /* syc__varint_size, syc__varint_put */
#include "prw_translate.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest metrics_req_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Common__V1__AnyValue anyvalue_t;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint number_dp_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint histogram_dp_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint summary_dp_t;

#define CUMULATIVE \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define NO_RECORDED_VALUE \
    OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

/* prometheus.MetricMetadata.MetricType */
enum { MT_COUNTER = 1, MT_GAUGE = 2, MT_HISTOGRAM = 3, MT_SUMMARY = 5 };

/* Prometheus' stale marker (value.StaleNaN): a NaN that PromQL never returns. */
static const uint64_t STALE_NAN_BITS = 0x7ff0000000000002ull;

/* Bounds of one point, as the prometheus exporter's. */
#define PRW_MAX_BUCKETS   4096
#define PRW_MAX_QUANTILES 1024

/* ---- protobuf writing ----------------------------------------------------------- */

static void put_varint(syc_prom_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    syc_prom_buf_put(b, tmp, syc__varint_put(tmp, v));
}

/* A length-delimited field: tag (field number, wire type 2), length, bytes. */
static void put_bytes(syc_prom_buf_t *b, unsigned field, const void *p, size_t n)
{
    put_varint(b, (uint64_t)field << 3 | 2);
    put_varint(b, n);
    syc_prom_buf_put(b, p, n);
}

/* A length-delimited field (number < 16) written at w, which has room; returns
 * the end. */
static uint8_t *put_raw(uint8_t *w, unsigned field, const void *p, size_t n)
{
    *w++ = (uint8_t)(field << 3 | 2);
    w += syc__varint_put(w, n);
    memcpy(w, p, n);
    return w + n;
}

/* ---- labels of one series --------------------------------------------------------- */

typedef struct label_s {
    size_t name_off, name_len; /* in t->names */
    size_t val_off, val_len;   /* in t->vals */
} label_t;

/* One series of the request: its encoded labels and the samples gathered so far. */
typedef struct sample_s {
    double value;
    int64_t ts_ms;
} sample_t;

typedef struct series_s {
    struct series_s *next; /* in its hash bucket */
    uint64_t hash;
    uint8_t *labels; /* encoded `Label labels = 1` fields, sorted by name */
    size_t labels_len;
    sample_t *samples;
    size_t n, cap;
} series_t;

typedef struct attr_ref_s {
    const char *key;
    const anyvalue_t *value;
} attr_ref_t;

typedef struct tr_s {
    const prw_cfg_t *cfg;
    prw_stats_t *st;
    bool failed;
    /* series by encoded labels, and in order of appearance */
    series_t **buckets;
    size_t mask;
    series_t **order;
    size_t n_series, cap_series;
    /* the label set being built */
    label_t *l;
    size_t nl, capl;
    syc_prom_buf_t names, vals, enc, tmp, meta;
    size_t *meta_ends; /* end offset of each metadata entry in `meta` */
    size_t n_meta, cap_meta;
    attr_ref_t *attrs;
    size_t n_attrs, cap_attrs;
    /* the current resource */
    const resource_t *res;
    bool has_job, has_instance;
    syc_prom_buf_t job, instance;
    int64_t newest_ms; /* of the resource's points, for target_info */
} tr_t;

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *n = realloc(*p, c * size);
    if (!n) return false;
    *p = n;
    *cap = c;
    return true;
}

static const anyvalue_t *get_attr(kv_t *const *attrs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (attrs[i] && attrs[i]->key && strcmp(attrs[i]->key, key) == 0) return attrs[i]->value;
    return NULL;
}

static bool is_identifying(const char *k)
{
    return strcmp(k, "service.name") == 0 || strcmp(k, "service.namespace") == 0 ||
           strcmp(k, "service.instance.id") == 0;
}

static label_t *label_find(tr_t *t, const char *name, size_t len)
{
    for (size_t i = 0; i < t->nl; i++)
        if (t->l[i].name_len == len && memcmp(t->names.data + t->l[i].name_off, name, len) == 0)
            return &t->l[i];
    return NULL;
}

enum { L_JOIN, L_SET, L_IF_ABSENT };

/*
 * Adds the label name[0..len) = value[0..vlen): L_JOIN appends ";value" to a label
 * of that name (two attribute keys that translate to one name), L_SET replaces it,
 * L_IF_ABSENT leaves it.
 */
/* The encoded size of a Label's fields (name = 1, value = 2). */
static size_t label_inner(const label_t *x)
{
    return 1 + syc__varint_size(x->name_len) + x->name_len + 1 + syc__varint_size(x->val_len) +
           x->val_len;
}

static void label_add(tr_t *t, const char *name, size_t len, const char *value, size_t vlen,
                      int mode)
{
    label_t *x = label_find(t, name, len);
    if (x && mode == L_IF_ABSENT) return;
    if (x && mode == L_JOIN) {
        /* Copied out first: appending to t->vals may move what x points at. */
        char *old = malloc(x->val_len + 1);
        if (!old) {
            t->failed = true;
            return;
        }
        memcpy(old, t->vals.data + x->val_off, x->val_len);
        size_t off = t->vals.len;
        syc_prom_buf_put(&t->vals, old, x->val_len);
        free(old);
        syc_prom_buf_char(&t->vals, ';');
        syc_prom_buf_put(&t->vals, value, vlen);
        x->val_off = off;
        x->val_len = t->vals.len - off;
        return;
    }
    size_t voff = t->vals.len;
    syc_prom_buf_put(&t->vals, value, vlen);
    if (x) {
        x->val_off = voff;
        x->val_len = vlen;
        return;
    }
    if (!grow((void **)&t->l, &t->capl, t->nl + 1, sizeof(*t->l))) {
        t->failed = true;
        return;
    }
    size_t noff = t->names.len;
    syc_prom_buf_put(&t->names, name, len);
    t->l[t->nl++] = (label_t){noff, len, voff, vlen};
}

static int attr_cmp(const void *a, const void *b)
{
    return strcmp(((const attr_ref_t *)a)->key, ((const attr_ref_t *)b)->key);
}

/* Adds attributes (sorted by key first, so that a ';' join is deterministic),
 * each under its translated name; keys that translate to nothing are left out. */
static void labels_from_attrs(tr_t *t)
{
    attr_ref_t *a = t->attrs;
    size_t n = t->n_attrs;
    if (!n) return; /* t->attrs may still be NULL */
    if (n > 1) qsort(a, n, sizeof(*a), attr_cmp);
    for (size_t i = 0; i < n; i++) {
        syc_prom_buf_reset(&t->tmp);
        if (syc_prom_label_name(&t->tmp, a[i].key, strlen(a[i].key), false) != 0) continue;
        size_t vstart = t->tmp.len;
        syc_prom_attr_value(&t->tmp, a[i].value);
        if (t->tmp.failed) {
            t->failed = true;
            return;
        }
        label_add(t, t->tmp.data, vstart, t->tmp.data + vstart, t->tmp.len - vstart, L_JOIN);
    }
}

static void attrs_push(tr_t *t, kv_t *const *attrs, size_t n, bool replace, bool skip_ident)
{
    size_t base = t->n_attrs;
    for (size_t i = 0; i < n; i++) {
        if (!attrs[i] || !attrs[i]->key) continue;
        if (skip_ident && is_identifying(attrs[i]->key)) continue;
        bool done = false;
        for (size_t j = 0; replace && j < base; j++) {
            if (strcmp(t->attrs[j].key, attrs[i]->key) == 0) {
                t->attrs[j].value = attrs[i]->value;
                done = true;
            }
        }
        if (done) continue;
        if (!grow((void **)&t->attrs, &t->cap_attrs, t->n_attrs + 1, sizeof(*t->attrs))) {
            t->failed = true;
            return;
        }
        t->attrs[t->n_attrs++] = (attr_ref_t){attrs[i]->key, attrs[i]->value};
    }
}

/* Starts the labels of a series: the attributes, job and instance, the external
 * labels. For a point's series (`of_point`), its attributes (and with
 * resource_to_telemetry the resource's); for target_info, the resource's but the
 * identifying ones. */
static void labels_begin(tr_t *t, bool of_point, kv_t *const *point, size_t n_point)
{
    t->nl = 0;
    syc_prom_buf_reset(&t->names);
    syc_prom_buf_reset(&t->vals);
    t->n_attrs = 0;
    const resource_t *r = t->res;
    if (of_point) {
        attrs_push(t, point, n_point, false, false);
        /* resource_to_telemetry_conversion: the resource's attributes overwrite
         * the point's, as the collector's resourcetotelemetry wrapper does. */
        if (t->cfg->resource_to_telemetry && r)
            attrs_push(t, r->attributes, r->n_attributes, true, false);
    } else if (r) {
        attrs_push(t, r->attributes, r->n_attributes, false, true);
    }
    labels_from_attrs(t);
    if (t->has_job) label_add(t, "job", 3, t->job.data, t->job.len, L_SET);
    if (t->has_instance) label_add(t, "instance", 8, t->instance.data, t->instance.len, L_SET);
    for (size_t i = 0; i < t->cfg->n_external; i++)
        label_add(t, t->cfg->external_names[i], strlen(t->cfg->external_names[i]),
                  t->cfg->external_values[i], strlen(t->cfg->external_values[i]), L_IF_ABSENT);
}

static int label_cmp(const void *a, const void *b, void *arg)
{
    const char *names = arg;
    const label_t *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(names + x->name_off, names + y->name_off, n);
    if (c) return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* A hash of the encoded labels, 8 bytes a step (a byte-wise FNV was a tenth of the
 * translation's time); only for the table of one request, never stored. */
static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 29);
}

static bool table_grow(tr_t *t)
{
    size_t nb = t->buckets ? (t->mask + 1) * 2 : 64;
    series_t **b = calloc(nb, sizeof(*b));
    if (!b) return false;
    for (size_t i = 0; i < t->n_series; i++) {
        series_t *s = t->order[i];
        s->next = b[s->hash & (nb - 1)];
        b[s->hash & (nb - 1)] = s;
    }
    free(t->buckets);
    t->buckets = b;
    t->mask = nb - 1;
    return true;
}

/* Sets name[0..len) = value[0..vlen) in the label array `a` of *n entries (room
 * for one more), replacing a label of that name; the strings go to the ends of
 * t->names and t->vals, which emit() cuts back afterwards. */
static void copy_set(tr_t *t, label_t *a, size_t *n, const char *name, size_t len,
                     const char *value, size_t vlen)
{
    size_t voff = t->vals.len;
    syc_prom_buf_put(&t->vals, value, vlen);
    for (size_t i = 0; i < *n; i++) {
        if (a[i].name_len == len && memcmp(t->names.data + a[i].name_off, name, len) == 0) {
            a[i].val_off = voff;
            a[i].val_len = vlen;
            return;
        }
    }
    size_t noff = t->names.len;
    syc_prom_buf_put(&t->names, name, len);
    a[(*n)++] = (label_t){noff, len, voff, vlen};
}

/*
 * Ends the labels begun by labels_begin() with __name__ = name[0..len) and, when
 * extra_name is set, one more label (le, quantile) that overrides an attribute of
 * that name, on a copy (the common labels serve the point's next series); encodes
 * them sorted (labels with empty values left out, as Prometheus ignores them) and
 * adds a sample to that series.
 */
static void emit(tr_t *t, const char *name, size_t len, const char *extra_name,
                 const char *extra_val, size_t extra_len, double value, int64_t ts_ms)
{
    if (t->failed || t->names.failed || t->vals.failed ||
        !grow((void **)&t->l, &t->capl, t->nl * 2 + 2, sizeof(*t->l))) {
        t->failed = true;
        return;
    }
    size_t keep_names = t->names.len, keep_vals = t->vals.len;
    label_t *a = t->l + t->nl;
    size_t n = t->nl;
    memcpy(a, t->l, n * sizeof(*a));
    if (extra_name) copy_set(t, a, &n, extra_name, strlen(extra_name), extra_val, extra_len);
    copy_set(t, a, &n, "__name__", 8, name, len);
    if (t->names.failed || t->vals.failed) {
        t->failed = true;
        return;
    }
    qsort_r(a, n, sizeof(*a), label_cmp, t->names.data);
    /* Sized first, then written in place: one bounds check for the whole set. */
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i].val_len == 0) continue;
        size_t inner = label_inner(&a[i]);
        total += 1 + syc__varint_size(inner) + inner;
    }
    syc_prom_buf_reset(&t->enc);
    uint8_t *w = syc_prom_buf_extend(&t->enc, total);
    for (size_t i = 0; w && i < n; i++) {
        const label_t *x = &a[i];
        if (x->val_len == 0) continue;
        *w++ = 1 << 3 | 2;
        w += syc__varint_put(w, label_inner(x));
        w = put_raw(w, 1, t->names.data + x->name_off, x->name_len);
        w = put_raw(w, 2, t->vals.data + x->val_off, x->val_len);
    }
    syc_prom_buf_truncate(&t->names, keep_names);
    syc_prom_buf_truncate(&t->vals, keep_vals);
    if (t->enc.failed) {
        t->failed = true;
        return;
    }
    uint64_t h = hash_bytes((const uint8_t *)t->enc.data, t->enc.len);
    series_t *s = NULL;
    for (s = t->buckets ? t->buckets[h & t->mask] : NULL; s; s = s->next)
        if (s->hash == h && s->labels_len == t->enc.len &&
            memcmp(s->labels, t->enc.data, t->enc.len) == 0)
            break;
    if (!s) {
        if ((!t->buckets || t->n_series >= t->mask + 1) && !table_grow(t)) goto fail;
        if (!grow((void **)&t->order, &t->cap_series, t->n_series + 1, sizeof(*t->order)))
            goto fail;
        s = calloc(1, sizeof(*s) + t->enc.len);
        if (!s) goto fail;
        s->labels = (uint8_t *)(s + 1);
        memcpy(s->labels, t->enc.data, t->enc.len);
        s->labels_len = t->enc.len;
        s->hash = h;
        s->next = t->buckets[h & t->mask];
        t->buckets[h & t->mask] = s;
        t->order[t->n_series++] = s;
    }
    if (!grow((void **)&s->samples, &s->cap, s->n + 1, sizeof(*s->samples))) goto fail;
    s->samples[s->n++] = (sample_t){value, ts_ms};
    if (ts_ms > t->newest_ms) t->newest_ms = ts_ms;
    return;
fail:
    t->failed = true;
}

/* ---- numbers ------------------------------------------------------------------------ */

void prw_float_label(syc_prom_buf_t *b, double v)
{
    if (isnan(v)) {
        syc_prom_buf_str(b, "NaN");
        return;
    }
    if (isinf(v)) {
        syc_prom_buf_str(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* The shortest digits that read back as v, then written without an exponent. */
    char e[40];
    for (int p = 0; p <= 17; p++) {
        snprintf(e, sizeof(e), "%.*e", p, v);
        if (strtod(e, NULL) == v) break;
    }
    const char *s = e;
    if (*s == '-') {
        syc_prom_buf_char(b, '-');
        s++;
    }
    char digits[24];
    size_t nd = 0;
    for (; *s && *s != 'e'; s++)
        if (*s >= '0' && *s <= '9' && nd < sizeof(digits)) digits[nd++] = *s;
    int exp = *s == 'e' ? atoi(s + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    if (nd == 1 && digits[0] == '0') exp = 0;
    if (exp >= 0) {
        for (int i = 0; i <= exp; i++)
            syc_prom_buf_char(b, (size_t)i < nd ? digits[i] : '0');
        if (nd > (size_t)exp + 1) {
            syc_prom_buf_char(b, '.');
            syc_prom_buf_put(b, digits + exp + 1, nd - (size_t)exp - 1);
        }
    } else {
        syc_prom_buf_str(b, "0.");
        for (int i = 0; i < -exp - 1; i++)
            syc_prom_buf_char(b, '0');
        syc_prom_buf_put(b, digits, nd);
    }
}

static double number_value(const number_dp_t *p)
{
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
        return (double)p->as_int;
    if (p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
        return p->as_double;
    return 0;
}

static double stale_or(uint32_t flags, double v)
{
    if (!(flags & NO_RECORDED_VALUE)) return v;
    double nan;
    memcpy(&nan, &STALE_NAN_BITS, sizeof(nan));
    return nan;
}

static int64_t ms_of(uint64_t ns)
{
    return (int64_t)(ns / 1000000u);
}

/* ---- metrics ------------------------------------------------------------------------ */

/* Writes the metric's Prometheus name into `out`; false when it translates to
 * nothing (the collector drops such a metric). */
static bool metric_name(tr_t *t, const metric_t *m, syc_prom_mtype_t type, syc_prom_buf_t *out)
{
    syc_prom_buf_reset(out);
    return syc_prom_metric_name(out, &t->cfg->namer, m->name ? m->name : "", m->unit ? m->unit : "",
                                type) == 0;
}

static void metadata_add(tr_t *t, const metric_t *m, const char *family, size_t len, int type)
{
    size_t help_len = m->description ? strlen(m->description) : 0;
    size_t unit_len = m->unit ? strlen(m->unit) : 0;
    size_t inner = 2 + (len ? 1 + syc__varint_size(len) + len : 0) +
                   (help_len ? 1 + syc__varint_size(help_len) + help_len : 0) +
                   (unit_len ? 1 + syc__varint_size(unit_len) + unit_len : 0);
    put_varint(&t->meta, 3 << 3 | 2);
    put_varint(&t->meta, inner);
    put_varint(&t->meta, 1 << 3);
    put_varint(&t->meta, (uint64_t)type);
    if (len) put_bytes(&t->meta, 2, family, len);
    if (help_len) put_bytes(&t->meta, 4, m->description, help_len);
    if (unit_len) put_bytes(&t->meta, 5, m->unit, unit_len);
    if (!grow((void **)&t->meta_ends, &t->cap_meta, t->n_meta + 1, sizeof(*t->meta_ends))) {
        t->failed = true;
        return;
    }
    t->meta_ends[t->n_meta++] = t->meta.len;
    t->st->metadata++;
}

/* The name of a histogram's or summary's series: base + suffix, into dst. */
static void suffixed(syc_prom_buf_t *dst, const syc_prom_buf_t *base, const char *suffix)
{
    syc_prom_buf_reset(dst);
    syc_prom_buf_put(dst, base->data, base->len);
    syc_prom_buf_str(dst, suffix);
}

static void add_histogram(tr_t *t, const histogram_dp_t *p, const syc_prom_buf_t *base,
                          syc_prom_buf_t *name)
{
    labels_begin(t, true, p->attributes, p->n_attributes);
    int64_t ts = ms_of(p->time_unix_nano);
    uint32_t f = p->flags;
    syc_prom_buf_t lb;
    syc_prom_buf_init(&lb, 0);
    suffixed(name, base, "_bucket");
    uint64_t cum = 0;
    size_t nb = p->n_explicit_bounds < PRW_MAX_BUCKETS ? p->n_explicit_bounds : PRW_MAX_BUCKETS;
    for (size_t i = 0; i < nb && !t->failed; i++) {
        if (i < p->n_bucket_counts) cum += p->bucket_counts[i];
        syc_prom_buf_reset(&lb);
        prw_float_label(&lb, p->explicit_bounds[i]);
        emit(t, name->data, name->len, "le", lb.data, lb.len, stale_or(f, (double)cum), ts);
    }
    syc_prom_buf_free(&lb);
    emit(t, name->data, name->len, "le", "+Inf", 4, stale_or(f, (double)p->count), ts);
    if (p->_sum_case) {
        suffixed(name, base, "_sum");
        emit(t, name->data, name->len, NULL, NULL, 0, stale_or(f, p->sum), ts);
    }
    suffixed(name, base, "_count");
    emit(t, name->data, name->len, NULL, NULL, 0, stale_or(f, (double)p->count), ts);
}

static void add_summary(tr_t *t, const summary_dp_t *p, const syc_prom_buf_t *base,
                        syc_prom_buf_t *name)
{
    labels_begin(t, true, p->attributes, p->n_attributes);
    int64_t ts = ms_of(p->time_unix_nano);
    uint32_t f = p->flags;
    syc_prom_buf_t qb;
    syc_prom_buf_init(&qb, 0);
    size_t nq = p->n_quantile_values < PRW_MAX_QUANTILES ? p->n_quantile_values : PRW_MAX_QUANTILES;
    for (size_t i = 0; i < nq && !t->failed; i++) {
        const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q =
            p->quantile_values[i];
        if (!q) continue;
        syc_prom_buf_reset(&qb);
        prw_float_label(&qb, q->quantile);
        emit(t, base->data, base->len, "quantile", qb.data, qb.len, stale_or(f, q->value), ts);
    }
    syc_prom_buf_free(&qb);
    suffixed(name, base, "_sum");
    emit(t, name->data, name->len, NULL, NULL, 0, stale_or(f, p->sum), ts);
    suffixed(name, base, "_count");
    emit(t, name->data, name->len, NULL, NULL, 0, stale_or(f, (double)p->count), ts);
}

static void add_metric(tr_t *t, const metric_t *m, syc_prom_buf_t *base, syc_prom_buf_t *name)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        bool gauge = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        size_t n =
            gauge ? (m->gauge ? m->gauge->n_data_points : 0) : (m->sum ? m->sum->n_data_points : 0);
        number_dp_t **pts = gauge ? (m->gauge ? m->gauge->data_points : NULL)
                                  : (m->sum ? m->sum->data_points : NULL);
        if (!gauge && (!m->sum || m->sum->aggregation_temporality != CUMULATIVE)) {
            t->st->dropped_temporal += n;
            return;
        }
        syc_prom_mtype_t type = gauge                  ? SYC_PROM_MT_GAUGE
                                : m->sum->is_monotonic ? SYC_PROM_MT_COUNTER
                                                       : SYC_PROM_MT_UPDOWN;
        if (!metric_name(t, m, type, base)) {
            t->st->dropped_invalid += n;
            return;
        }
        for (size_t i = 0; i < n && !t->failed; i++) {
            if (!pts[i]) continue;
            labels_begin(t, true, pts[i]->attributes, pts[i]->n_attributes);
            emit(t, base->data, base->len, NULL, NULL, 0,
                 stale_or(pts[i]->flags, number_value(pts[i])), ms_of(pts[i]->time_unix_nano));
        }
        if (t->cfg->send_metadata)
            metadata_add(t, m, base->data, base->len,
                         type == SYC_PROM_MT_COUNTER ? MT_COUNTER : MT_GAUGE);
        return;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
        size_t n = m->histogram ? m->histogram->n_data_points : 0;
        if (!n) return;
        if (m->histogram->aggregation_temporality != CUMULATIVE) {
            t->st->dropped_temporal += n;
            return;
        }
        if (!metric_name(t, m, SYC_PROM_MT_HISTOGRAM, base)) {
            t->st->dropped_invalid += n;
            return;
        }
        for (size_t i = 0; i < n && !t->failed; i++)
            if (m->histogram->data_points[i])
                add_histogram(t, m->histogram->data_points[i], base, name);
        if (t->cfg->send_metadata) metadata_add(t, m, base->data, base->len, MT_HISTOGRAM);
        return;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: {
        size_t n = m->summary ? m->summary->n_data_points : 0;
        if (!n) return;
        if (!metric_name(t, m, SYC_PROM_MT_SUMMARY, base)) {
            t->st->dropped_invalid += n;
            return;
        }
        for (size_t i = 0; i < n && !t->failed; i++)
            if (m->summary->data_points[i]) add_summary(t, m->summary->data_points[i], base, name);
        if (t->cfg->send_metadata) metadata_add(t, m, base->data, base->len, MT_SUMMARY);
        return;
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        t->st->dropped_exphist +=
            m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
        return;
    default:
        return;
    }
}

/* Reads job and instance of the current resource, as the collector does:
 * job = service.namespace "/" service.name (or service.name alone). */
static void resource_begin(tr_t *t, const resource_t *r)
{
    t->res = r;
    t->newest_ms = 0;
    syc_prom_buf_reset(&t->job);
    syc_prom_buf_reset(&t->instance);
    kv_t *const *a = r ? r->attributes : NULL;
    size_t n = r ? r->n_attributes : 0;
    const anyvalue_t *name = get_attr(a, n, "service.name");
    const anyvalue_t *ns = get_attr(a, n, "service.namespace");
    const anyvalue_t *inst = get_attr(a, n, "service.instance.id");
    t->has_job = name != NULL;
    t->has_instance = inst != NULL;
    if (t->has_job) {
        if (ns) {
            syc_prom_attr_value(&t->job, ns);
            syc_prom_buf_char(&t->job, '/');
        }
        syc_prom_attr_value(&t->job, name);
    }
    if (t->has_instance) syc_prom_attr_value(&t->instance, inst);
    if (t->job.failed || t->instance.failed) t->failed = true;
}

/* target_info of the current resource: when it has attributes beyond the three
 * identifying ones, and points. */
static void resource_end(tr_t *t)
{
    const resource_t *r = t->res;
    if (!t->cfg->target_info || !r || t->newest_ms == 0) return;
    size_t other = 0;
    for (size_t i = 0; i < r->n_attributes; i++)
        if (r->attributes[i] && r->attributes[i]->key && !is_identifying(r->attributes[i]->key))
            other++;
    if (!other) return;
    labels_begin(t, false, NULL, 0);
    syc_prom_buf_reset(&t->tmp);
    if (t->cfg->namer.ns && *t->cfg->namer.ns) {
        syc_prom_buf_str(&t->tmp, t->cfg->namer.ns);
        syc_prom_buf_char(&t->tmp, '_');
    }
    syc_prom_buf_str(&t->tmp, "target_info");
    if (t->tmp.failed) {
        t->failed = true;
        return;
    }
    emit(t, t->tmp.data, t->tmp.len, NULL, NULL, 0, 1.0, t->newest_ms);
}

/* ---- requests ---------------------------------------------------------------------- */

static int sample_cmp(const void *a, const void *b)
{
    const sample_t *x = a, *y = b;
    return x->ts_ms < y->ts_ms ? -1 : x->ts_ms > y->ts_ms;
}

/* The encoded size of a series' TimeSeries body. */
static size_t series_body_len(const series_t *s)
{
    size_t n = s->labels_len;
    for (size_t i = 0; i < s->n; i++) {
        size_t inner =
            9 + (s->samples[i].ts_ms ? 1 + syc__varint_size((uint64_t)s->samples[i].ts_ms) : 0);
        n += 1 + syc__varint_size(inner) + inner;
    }
    return n;
}

static void put_series(syc_prom_buf_t *b, const series_t *s, size_t body)
{
    uint8_t *w = syc_prom_buf_extend(b, 1 + syc__varint_size(body) + body);
    if (!w) return;
    *w++ = 1 << 3 | 2;
    w += syc__varint_put(w, body);
    memcpy(w, s->labels, s->labels_len);
    w += s->labels_len;
    for (size_t i = 0; i < s->n; i++) {
        int64_t ts = s->samples[i].ts_ms;
        *w++ = 2 << 3 | 2;
        *w++ = (uint8_t)(9 + (ts ? 1 + syc__varint_size((uint64_t)ts) : 0)); /* < 128 */
        *w++ = 1 << 3 | 1; /* value: fixed64, little-endian */
        uint64_t bits;
        memcpy(&bits, &s->samples[i].value, sizeof(bits));
        for (int k = 0; k < 8; k++)
            *w++ = (uint8_t)(bits >> (8 * k));
        if (ts) {
            *w++ = 2 << 3;
            w += syc__varint_put(w, (uint64_t)ts);
        }
    }
}

typedef struct cutter_s {
    syc_prom_buf_t cur;
    prw_part_t *parts;
    size_t n, cap;
    size_t max;
    bool failed;
} cutter_t;

static void cut(cutter_t *c)
{
    if (!c->cur.len) return;
    if (c->cur.failed || !grow((void **)&c->parts, &c->cap, c->n + 1, sizeof(*c->parts))) {
        c->failed = true;
        return;
    }
    size_t len;
    char *d = syc_prom_buf_take(&c->cur, &len);
    if (!d) {
        c->failed = true;
        return;
    }
    c->parts[c->n++] = (prw_part_t){(uint8_t *)d, len};
}

/* Makes room for an entry of `len` bytes: starts a new part when it would not fit. */
static void room_for(cutter_t *c, size_t len)
{
    if (c->cur.len && c->cur.len + len > c->max) cut(c);
}

static void tr_free(tr_t *t)
{
    for (size_t i = 0; i < t->n_series; i++) {
        free(t->order[i]->samples);
        free(t->order[i]);
    }
    free(t->order);
    free(t->buckets);
    free(t->l);
    free(t->attrs);
    free(t->meta_ends);
    syc_prom_buf_t *bufs[] = {&t->names, &t->vals, &t->enc,     &t->tmp,
                              &t->meta,  &t->job,  &t->instance};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        syc_prom_buf_free(bufs[i]);
}

void prw_parts_free(prw_part_t *parts, size_t n)
{
    for (size_t i = 0; parts && i < n; i++)
        free(parts[i].data);
    free(parts);
}

int prw_translate(const prw_cfg_t *cfg, const metrics_req_t *req, size_t max_bytes,
                  prw_part_t **parts, size_t *nparts, prw_stats_t *st)
{
    tr_t t = {.cfg = cfg, .st = st};
    syc_prom_buf_t *bufs[] = {&t.names, &t.vals, &t.enc, &t.tmp, &t.meta, &t.job, &t.instance};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        syc_prom_buf_init(bufs[i], 0);
    syc_prom_buf_t base, name;
    syc_prom_buf_init(&base, 0);
    syc_prom_buf_init(&name, 0);
    *parts = NULL;
    *nparts = 0;

    for (size_t r = 0; req && r < req->n_resource_metrics && !t.failed; r++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[r];
        if (!rm) continue;
        resource_begin(&t, rm->resource);
        for (size_t s = 0; s < rm->n_scope_metrics && !t.failed; s++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[s];
            for (size_t m = 0; sm && m < sm->n_metrics && !t.failed; m++)
                if (sm->metrics[m]) add_metric(&t, sm->metrics[m], &base, &name);
        }
        if (!t.failed) resource_end(&t);
    }
    syc_prom_buf_free(&base);
    syc_prom_buf_free(&name);

    cutter_t c = {.max = max_bytes ? max_bytes : SIZE_MAX};
    syc_prom_buf_init(&c.cur, 0);
    for (size_t i = 0; i < t.n_series && !t.failed && !c.failed; i++) {
        series_t *s = t.order[i];
        if (s->n > 1) qsort(s->samples, s->n, sizeof(*s->samples), sample_cmp);
        size_t body = series_body_len(s);
        room_for(&c, 1 + syc__varint_size(body) + body);
        put_series(&c.cur, s, body);
        st->series++;
        st->samples += s->n;
    }
    for (size_t i = 0, start = 0; i < t.n_meta && !t.failed && !c.failed; i++) {
        room_for(&c, t.meta_ends[i] - start);
        syc_prom_buf_put(&c.cur, t.meta.data + start, t.meta_ends[i] - start);
        start = t.meta_ends[i];
    }
    if (!t.failed && !c.failed) cut(&c);
    bool failed = t.failed || c.failed || c.cur.failed;
    tr_free(&t);
    syc_prom_buf_free(&c.cur);
    if (failed) {
        prw_parts_free(c.parts, c.n);
        return SY_ENOMEM;
    }
    *parts = c.parts;
    *nparts = c.n;
    return SY_OK;
}
