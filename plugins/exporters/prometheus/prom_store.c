/*
 * prom_store.c - the accumulated series of the `prometheus` exporter (see
 * prom_store.h). The rules follow the collector's accumulator.go: a point older
 * than the one kept is ignored; a delta monotonic sum whose start is the end of the
 * kept point is added to it, any other delta replaces it (a reset); delta
 * histograms likewise, dropping points that start before the kept one ends; delta
 * non-monotonic sums and sums of unspecified temporality are dropped; a point
 * flagged "no recorded value" removes its series.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom_store.h"

/* Bounds of one point: buckets of a histogram, quantiles of a summary, exemplars. */
#define PROM_MAX_BUCKETS   4096
#define PROM_MAX_QUANTILES 1024
#define PROM_MAX_EXEMPLARS 16

typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint number_dp_t;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint histogram_dp_t;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint summary_dp_t;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar exemplar_t;

#define TEMPORALITY_DELTA \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA
#define TEMPORALITY_CUMULATIVE \
    OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE
#define NO_RECORDED_VALUE \
    OPENTELEMETRY__PROTO__METRICS__V1__DATA_POINT_FLAGS__DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK

/* One attribute with its value already written as a string into `vbuf`. */
struct prom_pair_s {
    const char *key;
    size_t key_len;
    const syc_prom_buf_t *vbuf;
    size_t voff, vlen;
    int prio; /* on equal keys the higher wins: resource attributes over the point's */
};

/* Where the pairs of the current resource, scope and point sit in s->pairs. */
typedef struct ctx_s {
    size_t r_start, r_n; /* resource attributes (resource_to_telemetry_conversion) */
    size_t s_start, s_n; /* scope attributes, sorted */
    size_t d_start, d_n; /* the point's attributes, sorted and without duplicates */
    bool has_job, has_instance;
    size_t job_off, job_len, inst_off, inst_len; /* in s->rvals */
    const Opentelemetry__Proto__Common__V1__InstrumentationScope *scope;
    const char *scope_schema_url;
    size_t prefix_len; /* bytes of s->key that identify resource and scope */
} ctx_t;

/* ------------------------------------------------------------------------ */
/* Hash tables                                                               */
/* ------------------------------------------------------------------------ */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static prom_hnode_t *htab_find(const prom_htab_t *t, uint64_t h, const char *key, size_t len)
{
    if (!t->buckets) return NULL;
    for (prom_hnode_t *n = t->buckets[h & t->mask]; n; n = n->next)
        if (n->hash == h && n->key_len == len && memcmp(n->key, key, len) == 0) return n;
    return NULL;
}

static bool htab_insert(prom_htab_t *t, prom_hnode_t *node)
{
    if (!t->buckets || t->count >= t->mask + 1) {
        size_t nb = t->buckets ? (t->mask + 1) * 2 : 64;
        prom_hnode_t **b = calloc(nb, sizeof(*b));
        if (!b) return false;
        for (size_t i = 0; t->buckets && i <= t->mask; i++) {
            for (prom_hnode_t *n = t->buckets[i], *next; n; n = next) {
                next = n->next;
                n->next = b[n->hash & (nb - 1)];
                b[n->hash & (nb - 1)] = n;
            }
        }
        free(t->buckets);
        t->buckets = b;
        t->mask = nb - 1;
    }
    prom_hnode_t **slot = &t->buckets[node->hash & t->mask];
    node->next = *slot;
    *slot = node;
    t->count++;
    return true;
}

static void htab_remove(prom_htab_t *t, prom_hnode_t *node)
{
    for (prom_hnode_t **p = &t->buckets[node->hash & t->mask]; *p; p = &(*p)->next) {
        if (*p == node) {
            *p = node->next;
            t->count--;
            return;
        }
    }
}

prom_hnode_t *prom_htab_next(const prom_htab_t *t, size_t *bucket, prom_hnode_t *node)
{
    if (!t->buckets) return NULL;
    if (node && node->next) return node->next;
    size_t i = node ? *bucket + 1 : 0;
    for (; i <= t->mask; i++) {
        if (t->buckets[i]) {
            *bucket = i;
            return t->buckets[i];
        }
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Entries                                                                   */
/* ------------------------------------------------------------------------ */

static void series_free(prom_series_t *se)
{
    free(se->bounds);
    free(se->counts);
    free(se->qvalues);
    free(se->exemplars);
    free(se);
}

static void family_release(prom_store_t *s, prom_family_t *f)
{
    if (--f->nseries > 0) return;
    htab_remove(&s->families, &f->node);
    free(f);
}

static void series_remove(prom_store_t *s, prom_series_t *se)
{
    htab_remove(&s->series, &se->node);
    family_release(s, se->family);
    series_free(se);
}

static void target_free(prom_target_t *t)
{
    free(t->labels);
    free(t);
}

static void htab_clear(prom_htab_t *t, void (*free_fn)(void *))
{
    for (size_t i = 0; t->buckets && i <= t->mask; i++) {
        for (prom_hnode_t *n = t->buckets[i], *next; n; n = next) {
            next = n->next;
            free_fn(n);
        }
    }
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

static void series_free_any(void *p)
{
    series_free(p);
}
static void target_free_any(void *p)
{
    target_free(p);
}

void prom_store_init(prom_store_t *s, const prom_store_cfg_t *cfg)
{
    memset(s, 0, sizeof(*s));
    s->cfg = *cfg;
    syc_prom_buf_t *bufs[] = {&s->key,   &s->name,   &s->rvals, &s->svals,
                              &s->dvals, &s->lnames, &s->lvals, &s->tmp};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        syc_prom_buf_init(bufs[i], 0);
}

void prom_store_free(prom_store_t *s)
{
    htab_clear(&s->series, series_free_any);
    htab_clear(&s->families, free);
    htab_clear(&s->targets, target_free_any);
    syc_prom_buf_t *bufs[] = {&s->key,   &s->name,   &s->rvals, &s->svals,
                              &s->dvals, &s->lnames, &s->lvals, &s->tmp};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
        syc_prom_buf_free(bufs[i]);
    free(s->pairs);
    s->pairs = NULL;
}

static void warn(prom_store_t *s, prom_warn_t what, const char *fmt, const char *arg)
{
    if (!s->cfg.warn) return;
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, arg);
    s->cfg.warn(s->cfg.warn_arg, what, msg);
}

/* ------------------------------------------------------------------------ */
/* Attributes and keys                                                       */
/* ------------------------------------------------------------------------ */

static bool pairs_push(prom_store_t *s, const char *key, const syc_prom_buf_t *vbuf, size_t voff,
                       int prio)
{
    if (s->n_pairs == s->cap_pairs) {
        size_t cap = s->cap_pairs ? s->cap_pairs * 2 : 64;
        prom_pair_t *p = realloc(s->pairs, cap * sizeof(*p));
        if (!p) return false;
        s->pairs = p;
        s->cap_pairs = cap;
    }
    s->pairs[s->n_pairs++] = (prom_pair_t){.key = key,
                                           .key_len = strlen(key),
                                           .vbuf = vbuf,
                                           .voff = voff,
                                           .vlen = vbuf->len - voff,
                                           .prio = prio};
    return true;
}

/* Writes the attributes' values into vbuf and their pairs at the end of s->pairs. */
static bool pairs_add_attrs(prom_store_t *s, kv_t *const *attrs, size_t n, syc_prom_buf_t *vbuf,
                            int prio)
{
    for (size_t i = 0; i < n; i++) {
        if (!attrs[i] || !attrs[i]->key) continue;
        size_t off = vbuf->len;
        syc_prom_attr_value(vbuf, attrs[i]->value);
        if (vbuf->failed || !pairs_push(s, attrs[i]->key, vbuf, off, prio)) return false;
    }
    return true;
}

static int pair_cmp(const void *a, const void *b)
{
    const prom_pair_t *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
    return y->prio - x->prio;
}

/* Sorts pairs[start..start+*n) by key and keeps the first (winning) of equal keys. */
static void pairs_sort_unique(prom_store_t *s, size_t start, size_t *n)
{
    prom_pair_t *p = s->pairs + start;
    if (*n > 1) qsort(p, *n, sizeof(*p), pair_cmp);
    size_t o = 0;
    for (size_t i = 0; i < *n; i++) {
        if (o > 0 && p[o - 1].key_len == p[i].key_len &&
            memcmp(p[o - 1].key, p[i].key, p[i].key_len) == 0)
            continue;
        p[o++] = p[i];
    }
    *n = o;
}

static const char *pair_value(const prom_pair_t *p)
{
    return p->vbuf->data + p->voff;
}

/* A length-prefixed field of a key, so that no two distinct inputs meet. */
static void key_put(syc_prom_buf_t *k, const char *p, size_t n)
{
    uint32_t len = (uint32_t)n;
    syc_prom_buf_put(k, &len, sizeof(len));
    syc_prom_buf_put(k, p, n);
}

static void key_put_pairs(syc_prom_buf_t *k, const prom_pair_t *p, size_t n)
{
    key_put(k, (const char *)&n, sizeof(n));
    for (size_t i = 0; i < n; i++) {
        key_put(k, p[i].key, p[i].key_len);
        key_put(k, pair_value(&p[i]), p[i].vlen);
    }
}

/* Finds an attribute of the resource by key. */
static const kv_t *find_attr(kv_t *const *attrs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (attrs[i] && attrs[i]->key && strcmp(attrs[i]->key, key) == 0) return attrs[i];
    return NULL;
}

static bool is_service_attr(const char *k)
{
    return strcmp(k, "service.name") == 0 || strcmp(k, "service.namespace") == 0 ||
           strcmp(k, "service.instance.id") == 0;
}

/* ------------------------------------------------------------------------ */
/* Labels                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct label_s {
    size_t name_off, name_len; /* in s->lnames */
    const char *value;
    size_t value_len;
    size_t order; /* insertion order, for a deterministic join of equal names */
} label_t;

typedef struct labels_s {
    label_t *v;
    size_t n, cap;
    bool failed;
} labels_t;

static void labels_add(prom_store_t *s, labels_t *l, size_t name_off, const char *value,
                       size_t value_len)
{
    if (l->failed || s->lnames.failed) {
        l->failed = true;
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        label_t *v = realloc(l->v, cap * sizeof(*v));
        if (!v) {
            l->failed = true;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n] = (label_t){name_off, s->lnames.len - name_off, value, value_len, l->n};
    l->n++;
}

/* Adds a label whose name is the translation of `key` (skipped if refused). */
static void labels_add_attr(prom_store_t *s, labels_t *l, const char *key, size_t key_len,
                            const char *value, size_t value_len)
{
    size_t off = s->lnames.len;
    if (s->cfg.label_utf8) {
        syc_prom_escape_legacy(&s->lnames, key, key_len, false);
        if (key_len == 0) return;
    } else if (syc_prom_label_name(&s->lnames, key, key_len, false) != 0) {
        return;
    }
    labels_add(s, l, off, value, value_len);
}

static void labels_add_fixed(prom_store_t *s, labels_t *l, const char *name, const char *value,
                             size_t value_len)
{
    size_t off = s->lnames.len;
    syc_prom_buf_str(&s->lnames, name);
    labels_add(s, l, off, value, value_len);
}

static int label_cmp(const void *a, const void *b, void *arg)
{
    const char *names = ((const prom_store_t *)arg)->lnames.data;
    const label_t *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(names + x->name_off, names + y->name_off, n);
    if (c) return c;
    if (x->name_len != y->name_len) return x->name_len < y->name_len ? -1 : 1;
    return x->order < y->order ? -1 : (x->order > y->order);
}

/*
 * Renders the labels sorted by name into s->lvals as `a="x",b="y"`; values of one
 * name that came from several attributes ("a.b" and "a_b") are joined with ';', as
 * Prometheus' own OTLP translator does.
 */
static bool labels_render(prom_store_t *s, labels_t *l)
{
    syc_prom_buf_reset(&s->lvals);
    if (l->failed || s->lnames.failed) return false;
    if (l->n > 1) qsort_r(l->v, l->n, sizeof(*l->v), label_cmp, s);
    const char *names = s->lnames.data;
    for (size_t i = 0; i < l->n; i++) {
        const label_t *x = &l->v[i];
        bool same = i > 0 && l->v[i - 1].name_len == x->name_len &&
                    memcmp(names + l->v[i - 1].name_off, names + x->name_off, x->name_len) == 0;
        if (same) {
            /* Reopen the value: drop the closing quote and append. */
            syc_prom_buf_truncate(&s->lvals, s->lvals.len - 1);
            syc_prom_buf_char(&s->lvals, ';');
        } else {
            if (i > 0) syc_prom_buf_char(&s->lvals, ',');
            syc_prom_buf_put(&s->lvals, names + x->name_off, x->name_len);
            syc_prom_buf_str(&s->lvals, "=\"");
        }
        syc_prom_buf_escaped(&s->lvals, x->value, x->value_len, true);
        syc_prom_buf_char(&s->lvals, '"');
    }
    return !s->lvals.failed;
}

/* The labels of a new series of the current point, rendered into s->lvals. */
static bool series_labels(prom_store_t *s, const ctx_t *c)
{
    labels_t l = {0};
    syc_prom_buf_reset(&s->lnames);
    const prom_pair_t *d = s->pairs + c->d_start;
    for (size_t i = 0; i < c->d_n; i++)
        labels_add_attr(s, &l, d[i].key, d[i].key_len, pair_value(&d[i]), d[i].vlen);
    if (!s->cfg.without_scope_info) {
        const prom_pair_t *sp = s->pairs + c->s_start;
        for (size_t i = 0; i < c->s_n; i++) {
            syc_prom_buf_reset(&s->tmp);
            syc_prom_buf_str(&s->tmp, "otel_scope_");
            syc_prom_buf_put(&s->tmp, sp[i].key, sp[i].key_len);
            if (s->tmp.failed) {
                l.failed = true;
                break;
            }
            labels_add_attr(s, &l, s->tmp.data, s->tmp.len, pair_value(&sp[i]), sp[i].vlen);
        }
        const char *name = c->scope && c->scope->name ? c->scope->name : "";
        const char *version = c->scope && c->scope->version ? c->scope->version : "";
        labels_add_fixed(s, &l, "otel_scope_name", name, strlen(name));
        labels_add_fixed(s, &l, "otel_scope_version", version, strlen(version));
        labels_add_fixed(s, &l, "otel_scope_schema_url", c->scope_schema_url,
                         strlen(c->scope_schema_url));
    }
    if (c->has_job) labels_add_fixed(s, &l, "job", s->rvals.data + c->job_off, c->job_len);
    if (c->has_instance)
        labels_add_fixed(s, &l, "instance", s->rvals.data + c->inst_off, c->inst_len);
    for (size_t i = 0; i < s->cfg.n_const_labels; i++)
        labels_add_fixed(s, &l, s->cfg.const_label_names[i], s->cfg.const_label_values[i],
                         strlen(s->cfg.const_label_values[i]));
    bool ok = labels_render(s, &l);
    free(l.v);
    return ok;
}

/* Updates the target_info entry of a resource that has both job and instance:
 * its attributes but the three service ones, plus job and instance. */
static void target_update(prom_store_t *s, const ctx_t *c, kv_t *const *attrs, size_t n,
                          uint64_t now_ms)
{
    syc_prom_buf_reset(&s->key);
    key_put(&s->key, s->rvals.data + c->job_off, c->job_len);
    key_put(&s->key, s->rvals.data + c->inst_off, c->inst_len);
    if (s->key.failed) return;
    uint64_t h = hash_bytes(s->key.data, s->key.len);
    prom_target_t *t = (prom_target_t *)htab_find(&s->targets, h, s->key.data, s->key.len);

    /* Values go to s->tmp; the resource's own strings stay in s->rvals. */
    labels_t l = {0};
    syc_prom_buf_reset(&s->lnames);
    syc_prom_buf_reset(&s->tmp);
    size_t *offs = n ? calloc(n, sizeof(*offs)) : NULL;
    if (n && !offs) return;
    for (size_t i = 0; i < n; i++) {
        offs[i] = s->tmp.len;
        if (attrs[i] && attrs[i]->key && !is_service_attr(attrs[i]->key))
            syc_prom_attr_value(&s->tmp, attrs[i]->value);
    }
    for (size_t i = 0; i < n && !s->tmp.failed; i++) {
        if (!attrs[i] || !attrs[i]->key || is_service_attr(attrs[i]->key)) continue;
        size_t end = i + 1 < n ? offs[i + 1] : s->tmp.len;
        labels_add_attr(s, &l, attrs[i]->key, strlen(attrs[i]->key), s->tmp.data + offs[i],
                        end - offs[i]);
    }
    free(offs);
    labels_add_fixed(s, &l, "job", s->rvals.data + c->job_off, c->job_len);
    labels_add_fixed(s, &l, "instance", s->rvals.data + c->inst_off, c->inst_len);
    bool ok = !s->tmp.failed && labels_render(s, &l);
    free(l.v);
    if (!ok) return;

    if (!t) {
        t = calloc(1, sizeof(*t) + s->key.len);
        if (!t) return;
        char *key = (char *)(t + 1);
        memcpy(key, s->key.data, s->key.len);
        t->node = (prom_hnode_t){.hash = h, .key = key, .key_len = s->key.len};
        if (!htab_insert(&s->targets, &t->node)) {
            free(t);
            return;
        }
    }
    if (!t->labels || t->labels_len != s->lvals.len ||
        memcmp(t->labels, s->lvals.data, s->lvals.len) != 0) {
        char *p = malloc(s->lvals.len + 1);
        if (p) {
            memcpy(p, s->lvals.data, s->lvals.len + 1);
            free(t->labels);
            t->labels = p;
            t->labels_len = s->lvals.len;
        }
    }
    t->updated_ms = now_ms;
}

/* ------------------------------------------------------------------------ */
/* Series                                                                    */
/* ------------------------------------------------------------------------ */

/* The family of a name, created if new; NULL (and a warning) on a type conflict. */
static prom_family_t *family_get(prom_store_t *s, const metric_t *m, prom_kind_t kind)
{
    const char *name = s->name.data;
    size_t len = s->name.len;
    uint64_t h = hash_bytes(name, len);
    prom_family_t *f = (prom_family_t *)htab_find(&s->families, h, name, len);
    if (f) {
        if (f->kind != kind) {
            warn(s, PROM_WARN_CONFLICT,
                 "instrument type conflict, using existing type definition: %s", f->name);
            return NULL;
        }
        return f;
    }
    const char *help = m->description ? m->description : "";
    size_t help_len = strlen(help);
    f = calloc(1, sizeof(*f) + len + 1 + help_len + 1);
    if (!f) return NULL;
    char *p = (char *)(f + 1);
    memcpy(p, name, len + 1);
    memcpy(p + len + 1, help, help_len + 1);
    f->name = p;
    f->help = p + len + 1;
    f->kind = kind;
    f->node = (prom_hnode_t){.hash = h, .key = p, .key_len = len};
    if (!htab_insert(&s->families, &f->node)) {
        free(f);
        return NULL;
    }
    return f;
}

/* Frees a family that was created for a series that could not be made. */
static void family_drop_if_unused(prom_store_t *s, prom_family_t *f)
{
    if (f->nseries > 0) return;
    htab_remove(&s->families, &f->node);
    free(f);
}

/* Finds or creates the series of the current point (its key is in s->key). *fresh
 * tells whether it was created; NULL when it cannot be (conflict, limit, memory). */
static prom_series_t *series_get(prom_store_t *s, const ctx_t *c, const metric_t *m,
                                 prom_kind_t kind, bool *fresh)
{
    *fresh = false;
    if (s->key.failed) return NULL;
    uint64_t h = hash_bytes(s->key.data, s->key.len);
    prom_series_t *se = (prom_series_t *)htab_find(&s->series, h, s->key.data, s->key.len);
    if (se) return se;
    if (s->cfg.max_series && s->series.count >= s->cfg.max_series) {
        warn(s, PROM_WARN_LIMIT,
             "%s: the exporter holds its maximum number of series; new "
             "series are dropped until old ones expire",
             m->name);
        return NULL;
    }
    prom_family_t *f = family_get(s, m, kind);
    if (!f) return NULL;
    if (!series_labels(s, c)) {
        family_drop_if_unused(s, f);
        return NULL;
    }
    se = calloc(1, sizeof(*se) + s->key.len + s->lvals.len + 1);
    if (!se) {
        family_drop_if_unused(s, f);
        return NULL;
    }
    char *key = (char *)(se + 1);
    memcpy(key, s->key.data, s->key.len);
    char *labels = key + s->key.len;
    memcpy(labels, s->lvals.data, s->lvals.len + 1);
    se->node = (prom_hnode_t){.hash = h, .key = key, .key_len = s->key.len};
    se->labels = labels;
    se->labels_len = s->lvals.len;
    se->family = f;
    if (!htab_insert(&s->series, &se->node)) {
        free(se);
        family_drop_if_unused(s, f);
        return NULL;
    }
    f->nseries++;
    *fresh = true;
    return se;
}

/* Builds the key of the current point: the prefix of resource and scope, the
 * metric, the point's attributes (sorted into pairs[d_start..d_start+d_n)). */
static bool point_key(prom_store_t *s, ctx_t *c, const metric_t *m, int data_case,
                      kv_t *const *attrs, size_t n_attrs)
{
    s->n_pairs = c->d_start;
    syc_prom_buf_reset(&s->dvals);
    if (!pairs_add_attrs(s, attrs, n_attrs, &s->dvals, 0)) return false;
    /* The resource's attributes (resource_to_telemetry_conversion) join the point's;
     * pairs_push may move the array, so copy by index. */
    for (size_t i = 0; i < c->r_n; i++) {
        prom_pair_t p = s->pairs[c->r_start + i];
        if (!pairs_push(s, p.key, p.vbuf, p.voff, p.prio)) return false;
        s->pairs[s->n_pairs - 1] = p;
    }
    c->d_n = s->n_pairs - c->d_start;
    pairs_sort_unique(s, c->d_start, &c->d_n);
    syc_prom_buf_truncate(&s->key, c->prefix_len);
    key_put(&s->key, m->name ? m->name : "", m->name ? strlen(m->name) : 0);
    char type = (char)data_case;
    key_put(&s->key, &type, 1);
    key_put_pairs(&s->key, s->pairs + c->d_start, c->d_n);
    return !s->key.failed;
}

/*
 * The series of one data point: builds its key, removes the series if the point is
 * flagged "no recorded value" (and returns NULL), else finds or creates it. NULL
 * also when the series cannot be had; that point is counted as dropped.
 */
static prom_series_t *point_series(prom_store_t *s, ctx_t *c, const metric_t *m, prom_kind_t kind,
                                   kv_t *const *attrs, size_t n_attrs, uint32_t flags, bool *fresh)
{
    *fresh = false;
    if (!point_key(s, c, m, m->data_case, attrs, n_attrs)) {
        s->dropped_points++;
        return NULL;
    }
    if (flags & NO_RECORDED_VALUE) {
        uint64_t h = hash_bytes(s->key.data, s->key.len);
        prom_hnode_t *node = htab_find(&s->series, h, s->key.data, s->key.len);
        if (node) series_remove(s, (prom_series_t *)node);
        return NULL;
    }
    prom_series_t *se = series_get(s, c, m, kind, fresh);
    if (!se) s->dropped_points++;
    return se;
}

static double number_value(const number_dp_t *dp)
{
    if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT)
        return (double)dp->as_int;
    if (dp->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE)
        return dp->as_double;
    return 0;
}

/* Keeps the point's exemplars (the newest point's), when they are exported. */
static void keep_exemplars(prom_store_t *s, prom_series_t *se, exemplar_t *const *ex, size_t n)
{
    if (!s->cfg.keep_exemplars) return;
    if (n > PROM_MAX_EXEMPLARS) n = PROM_MAX_EXEMPLARS;
    if (n > 0 && !se->exemplars) {
        se->exemplars = calloc(PROM_MAX_EXEMPLARS, sizeof(*se->exemplars));
        if (!se->exemplars) n = 0;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const exemplar_t *e = ex[i];
        if (!e) continue;
        prom_exemplar_t *x = &se->exemplars[o++];
        memset(x, 0, sizeof(*x));
        x->value = e->value_case == OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_INT
                       ? (double)e->as_int
                       : e->as_double;
        x->time_ns = e->time_unix_nano;
        if (e->trace_id.len == 16) {
            memcpy(x->trace_id, e->trace_id.data, 16);
            for (size_t k = 0; k < 16; k++)
                x->has_trace_id |= x->trace_id[k] != 0;
        }
        if (e->span_id.len == 8) {
            memcpy(x->span_id, e->span_id.data, 8);
            for (size_t k = 0; k < 8; k++)
                x->has_span_id |= x->span_id[k] != 0;
        }
    }
    se->n_exemplars = o;
}

/* Makes room for n bounds (and counts or quantile values) in a series. */
static bool series_reserve(prom_series_t *se, size_t n, bool histogram)
{
    if (n <= se->cap && (histogram ? se->counts != NULL : se->qvalues != NULL)) return true;
    size_t cap = n > se->cap ? n : se->cap;
    double *b = realloc(se->bounds, (cap ? cap : 1) * sizeof(*b));
    if (!b) return false;
    se->bounds = b;
    if (histogram) {
        uint64_t *cn = realloc(se->counts, (cap + 1) * sizeof(*cn));
        if (!cn) return false;
        se->counts = cn;
    } else {
        double *q = realloc(se->qvalues, (cap ? cap : 1) * sizeof(*q));
        if (!q) return false;
        se->qvalues = q;
    }
    se->cap = cap;
    return true;
}

static void number_points(prom_store_t *s, ctx_t *c, const metric_t *m, prom_kind_t kind,
                          number_dp_t *const *dps, size_t n, bool delta, size_t *stored,
                          uint64_t now_ms)
{
    for (size_t i = 0; i < n; i++) {
        const number_dp_t *dp = dps[i];
        if (!dp) continue;
        bool fresh;
        prom_series_t *se =
            point_series(s, c, m, kind, dp->attributes, dp->n_attributes, dp->flags, &fresh);
        if (!se) continue;
        double v = number_value(dp);
        uint64_t start = dp->start_time_unix_nano;
        if (!fresh) {
            if (dp->time_unix_nano < se->time_ns) continue; /* older: keep the newest */
            if (delta && start == se->time_ns) {
                v += se->value;
                start = se->start_ns;
            }
        }
        se->value = v;
        se->start_ns = start;
        se->time_ns = dp->time_unix_nano;
        se->updated_ms = now_ms;
        if (kind == PROM_KIND_COUNTER) keep_exemplars(s, se, dp->exemplars, dp->n_exemplars);
        (*stored)++;
    }
}

static bool bounds_valid(const histogram_dp_t *dp)
{
    if (dp->n_explicit_bounds > PROM_MAX_BUCKETS) return false;
    if (dp->n_bucket_counts != 0 && dp->n_bucket_counts != dp->n_explicit_bounds + 1) return false;
    for (size_t i = 0; i < dp->n_explicit_bounds; i++) {
        double b = dp->explicit_bounds[i];
        if (b != b || (i > 0 && !(b > dp->explicit_bounds[i - 1]))) return false;
    }
    return true;
}

static bool same_bounds(const prom_series_t *se, const histogram_dp_t *dp)
{
    if (se->n != dp->n_explicit_bounds) return false;
    for (size_t i = 0; i < se->n; i++)
        if (se->bounds[i] != dp->explicit_bounds[i]) return false;
    return true;
}

static void histogram_points(prom_store_t *s, ctx_t *c, const metric_t *m,
                             histogram_dp_t *const *dps, size_t n, int temporality, size_t *stored,
                             uint64_t now_ms)
{
    for (size_t i = 0; i < n; i++) {
        const histogram_dp_t *dp = dps[i];
        if (!dp) continue;
        if (!bounds_valid(dp)) {
            warn(s, PROM_WARN_DROPPED,
                 "%s: dropped a histogram point whose bounds are not increasing or whose "
                 "bucket counts do not match them",
                 m->name);
            s->dropped_points++;
            continue;
        }
        bool fresh;
        prom_series_t *se = point_series(s, c, m, PROM_KIND_HISTOGRAM, dp->attributes,
                                         dp->n_attributes, dp->flags, &fresh);
        if (!se) continue;
        double sum = dp->_sum_case ? dp->sum : 0;
        bool add = false;
        uint64_t start = dp->start_time_unix_nano;
        if (!fresh) {
            if (temporality == TEMPORALITY_DELTA) {
                if (start != se->time_ns) {
                    if (start <= se->time_ns) {
                        warn(s, PROM_WARN_DROPPED, "%s: dropped misaligned histogram datapoint",
                             m->name);
                        s->dropped_points++;
                        continue;
                    }
                } else {
                    add = same_bounds(se, dp);
                    start = se->start_ns;
                }
            } else if (temporality == TEMPORALITY_CUMULATIVE) {
                if (dp->time_unix_nano < se->time_ns) continue;
            } else {
                continue;
            }
        }
        if (!add && !series_reserve(se, dp->n_explicit_bounds, true)) {
            s->dropped_points++;
            continue;
        }
        if (add) {
            for (size_t k = 0; k < dp->n_bucket_counts; k++)
                se->counts[k] += dp->bucket_counts[k];
            se->count += dp->count;
            se->sum += sum;
        } else {
            se->n = dp->n_explicit_bounds;
            if (se->n) memcpy(se->bounds, dp->explicit_bounds, se->n * sizeof(double));
            for (size_t k = 0; k <= se->n; k++)
                se->counts[k] = dp->n_bucket_counts ? dp->bucket_counts[k] : 0;
            se->count = dp->count;
            se->sum = sum;
        }
        se->start_ns = start;
        if (dp->time_unix_nano > se->time_ns || !add) se->time_ns = dp->time_unix_nano;
        se->updated_ms = now_ms;
        keep_exemplars(s, se, dp->exemplars, dp->n_exemplars);
        (*stored)++;
    }
}

static int quantile_cmp(const void *a, const void *b)
{
    const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *x =
        *(const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *const *)a;
    const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *y =
        *(const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *const *)b;
    return (x->quantile > y->quantile) - (x->quantile < y->quantile);
}

static void summary_points(prom_store_t *s, ctx_t *c, const metric_t *m, summary_dp_t *const *dps,
                           size_t n, size_t *stored, uint64_t now_ms)
{
    for (size_t i = 0; i < n; i++) {
        const summary_dp_t *dp = dps[i];
        if (!dp) continue;
        if (dp->n_quantile_values > PROM_MAX_QUANTILES) {
            s->dropped_points++;
            continue;
        }
        bool fresh;
        prom_series_t *se = point_series(s, c, m, PROM_KIND_SUMMARY, dp->attributes,
                                         dp->n_attributes, dp->flags, &fresh);
        if (!se) continue;
        if (!fresh && dp->time_unix_nano < se->time_ns) continue;
        /* Sorted by quantile; of equal quantiles the last wins, as in a Go map. */
        size_t nq = dp->n_quantile_values;
        Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile **q =
            nq ? malloc(nq * sizeof(*q)) : NULL;
        if ((nq && !q) || !series_reserve(se, nq, false)) {
            free(q);
            s->dropped_points++;
            continue;
        }
        size_t k = 0;
        for (size_t j = 0; j < nq; j++)
            if (dp->quantile_values[j]) q[k++] = dp->quantile_values[j];
        nq = k;
        /* A stable order for equal quantiles: mergesort is not in C; insertion sort
         * keeps the original order of equal keys and nq is bounded. */
        for (size_t a = 1; a < nq; a++) {
            for (size_t b = a; b > 0 && quantile_cmp(&q[b - 1], &q[b]) > 0; b--) {
                void *t = q[b];
                q[b] = q[b - 1];
                q[b - 1] = t;
            }
        }
        size_t o = 0;
        for (size_t j = 0; j < nq; j++) {
            if (o > 0 && se->bounds[o - 1] == q[j]->quantile) {
                se->qvalues[o - 1] = q[j]->value;
                continue;
            }
            se->bounds[o] = q[j]->quantile;
            se->qvalues[o] = q[j]->value;
            o++;
        }
        free(q);
        se->n = o;
        se->count = dp->count;
        se->sum = dp->sum;
        se->start_ns = dp->start_time_unix_nano;
        se->time_ns = dp->time_unix_nano;
        se->updated_ms = now_ms;
        (*stored)++;
    }
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */
/* ------------------------------------------------------------------------ */

static void add_metric(prom_store_t *s, ctx_t *c, const metric_t *m, size_t *stored,
                       uint64_t now_ms)
{
    prom_kind_t kind;
    syc_prom_mtype_t mtype;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        kind = PROM_KIND_GAUGE;
        mtype = SYC_PROM_MT_GAUGE;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        if (!m->sum) return;
        if (m->sum->aggregation_temporality != TEMPORALITY_DELTA &&
            m->sum->aggregation_temporality != TEMPORALITY_CUMULATIVE) {
            s->dropped_points += m->sum->n_data_points;
            return;
        }
        if (m->sum->aggregation_temporality == TEMPORALITY_DELTA && !m->sum->is_monotonic) {
            s->dropped_points += m->sum->n_data_points;
            return;
        }
        kind = m->sum->is_monotonic ? PROM_KIND_COUNTER : PROM_KIND_GAUGE;
        mtype = m->sum->is_monotonic ? SYC_PROM_MT_COUNTER : SYC_PROM_MT_UPDOWN;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        kind = PROM_KIND_HISTOGRAM;
        mtype = SYC_PROM_MT_HISTOGRAM;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        kind = PROM_KIND_SUMMARY;
        mtype = SYC_PROM_MT_SUMMARY;
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        warn(s, PROM_WARN_EXPHISTOGRAM,
             "%s: exponential histograms are not exported by the prometheus exporter "
             "(dropped)",
             m->name);
        if (m->exponential_histogram) s->dropped_points += m->exponential_histogram->n_data_points;
        return;
    default:
        return;
    }
    syc_prom_buf_reset(&s->name);
    if (syc_prom_metric_name(&s->name, &s->cfg.namer, m->name, m->unit, mtype) != 0) {
        warn(s, PROM_WARN_DROPPED,
             "%s: the metric name translates to an invalid Prometheus "
             "name (dropped)",
             m->name);
        return;
    }
    if (s->cfg.namer.utf8 && !syc_prom_is_legacy_name(s->name.data, s->name.len, true)) {
        syc_prom_buf_reset(&s->tmp);
        syc_prom_escape_legacy(&s->tmp, s->name.data, s->name.len, true);
        syc_prom_buf_reset(&s->name);
        syc_prom_buf_put(&s->name, s->tmp.data, s->tmp.len);
    }
    if (s->name.failed) return;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        if (m->gauge)
            number_points(s, c, m, kind, m->gauge->data_points, m->gauge->n_data_points, false,
                          stored, now_ms);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        number_points(s, c, m, kind, m->sum->data_points, m->sum->n_data_points,
                      m->sum->aggregation_temporality == TEMPORALITY_DELTA, stored, now_ms);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        if (m->histogram)
            histogram_points(s, c, m, m->histogram->data_points, m->histogram->n_data_points,
                             m->histogram->aggregation_temporality, stored, now_ms);
        break;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        if (m->summary)
            summary_points(s, c, m, m->summary->data_points, m->summary->n_data_points, stored,
                           now_ms);
        break;
    default:
        break;
    }
}

/* job from service.namespace/service.name, instance from service.instance.id. */
static void resource_identity(prom_store_t *s, ctx_t *c, kv_t *const *attrs, size_t n)
{
    const kv_t *name = find_attr(attrs, n, "service.name");
    const kv_t *ns = find_attr(attrs, n, "service.namespace");
    const kv_t *inst = find_attr(attrs, n, "service.instance.id");
    c->has_job = name != NULL;
    c->has_instance = inst != NULL;
    c->job_off = s->rvals.len;
    if (name) {
        if (ns) {
            syc_prom_attr_value(&s->rvals, ns->value);
            syc_prom_buf_char(&s->rvals, '/');
        }
        syc_prom_attr_value(&s->rvals, name->value);
    }
    c->job_len = s->rvals.len - c->job_off;
    c->inst_off = s->rvals.len;
    if (inst) syc_prom_attr_value(&s->rvals, inst->value);
    c->inst_len = s->rvals.len - c->inst_off;
}

size_t
prom_store_add(prom_store_t *s,
               const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *req,
               uint64_t now_ms)
{
    size_t stored = 0;
    if (!req) return 0;
    for (size_t ri = 0; ri < req->n_resource_metrics; ri++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = req->resource_metrics[ri];
        if (!rm) continue;
        kv_t *const *rattrs = rm->resource ? rm->resource->attributes : NULL;
        size_t rn = rm->resource ? rm->resource->n_attributes : 0;
        ctx_t c = {0};
        syc_prom_buf_reset(&s->rvals);
        s->n_pairs = 0;
        resource_identity(s, &c, rattrs, rn);
        if (c.has_job && c.has_instance) target_update(s, &c, rattrs, rn, now_ms);
        c.r_start = s->n_pairs;
        if (s->cfg.resource_to_telemetry) {
            for (size_t i = 0; i < rn; i++) {
                if (!rattrs[i] || !rattrs[i]->key) continue;
                if (s->cfg.exclude_service_attributes && is_service_attr(rattrs[i]->key)) continue;
                size_t off = s->rvals.len;
                syc_prom_attr_value(&s->rvals, rattrs[i]->value);
                if (!pairs_push(s, rattrs[i]->key, &s->rvals, off, 1)) break;
            }
        }
        c.r_n = s->n_pairs - c.r_start;
        if (s->rvals.failed) continue;
        for (size_t si = 0; si < rm->n_scope_metrics; si++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[si];
            if (!sm) continue;
            c.scope = sm->scope;
            c.scope_schema_url = sm->schema_url ? sm->schema_url : "";
            s->n_pairs = c.r_start + c.r_n;
            syc_prom_buf_reset(&s->svals);
            c.s_start = s->n_pairs;
            if (sm->scope &&
                !pairs_add_attrs(s, sm->scope->attributes, sm->scope->n_attributes, &s->svals, 0))
                continue;
            c.s_n = s->n_pairs - c.s_start;
            pairs_sort_unique(s, c.s_start, &c.s_n);
            s->n_pairs = c.s_start + c.s_n;
            c.d_start = s->n_pairs;
            /* The key prefix: job, instance, scope name, version, schema, attributes. */
            syc_prom_buf_reset(&s->key);
            char flags = (char)((c.has_job ? 1 : 0) | (c.has_instance ? 2 : 0));
            key_put(&s->key, &flags, 1);
            key_put(&s->key, s->rvals.data + c.job_off, c.job_len);
            key_put(&s->key, s->rvals.data + c.inst_off, c.inst_len);
            const char *sname = sm->scope && sm->scope->name ? sm->scope->name : "";
            const char *sver = sm->scope && sm->scope->version ? sm->scope->version : "";
            key_put(&s->key, sname, strlen(sname));
            key_put(&s->key, sver, strlen(sver));
            key_put(&s->key, c.scope_schema_url, strlen(c.scope_schema_url));
            key_put_pairs(&s->key, s->pairs + c.s_start, c.s_n);
            if (s->key.failed) continue;
            c.prefix_len = s->key.len;
            for (size_t mi = 0; mi < sm->n_metrics; mi++)
                if (sm->metrics[mi]) add_metric(s, &c, sm->metrics[mi], &stored, now_ms);
        }
    }
    return stored;
}

void prom_store_expire(prom_store_t *s, uint64_t now_ms)
{
    if (now_ms < s->cfg.expiration_ms) return;
    uint64_t oldest = now_ms - s->cfg.expiration_ms;
    for (size_t i = 0; s->series.buckets && i <= s->series.mask; i++) {
        for (prom_hnode_t *n = s->series.buckets[i], *next; n; n = next) {
            next = n->next;
            prom_series_t *se = (prom_series_t *)n;
            if (se->updated_ms < oldest) series_remove(s, se);
        }
    }
    for (size_t i = 0; s->targets.buckets && i <= s->targets.mask; i++) {
        for (prom_hnode_t *n = s->targets.buckets[i], *next; n; n = next) {
            next = n->next;
            prom_target_t *t = (prom_target_t *)n;
            if (t->updated_ms < oldest) {
                htab_remove(&s->targets, n);
                target_free(t);
            }
        }
    }
}
