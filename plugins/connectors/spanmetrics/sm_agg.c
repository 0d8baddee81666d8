/*
 * sm_agg.c - the aggregation of the spanmetrics connector (see sm_agg.h).
 *
 * Layout: resources in an array (in the order first seen), each with an array of
 * its series; one open-addressing table finds a resource by its key bytes, one
 * finds a series by (resource, attribute bytes). Tables are rebuilt after a flush
 * removed anything, which is the only time anything is removed.
 */
#include "sm_agg.h"

#include <stdlib.h>
#include <string.h>

#include "sm_expo.h"

typedef struct sm_exemplar_s {
    uint8_t trace_id[16], span_id[8];
    double value;
} sm_exemplar_t;

typedef struct sm_resource_s sm_resource_t;

typedef struct sm_series_s {
    sm_resource_t *res;
    uint64_t hash;
    uint8_t *attrs; /* each attribute as (varint length, KeyValue bytes) */
    size_t attrs_len;
    int64_t start_ns;
    uint64_t calls;
    bool event;   /* a series of the events metric (no histogram) */
    bool emitted; /* a cumulative sum is first written as 0 (as the collector) */
    bool touched; /* counted since the last flush */
    /* explicit histogram */
    uint64_t *buckets; /* nbounds + 1 */
    uint64_t hcount;
    double hsum;
    sm_expo_t expo;
    sm_exemplar_t *ex; /* room for opts->max_exemplars, made at the first */
    size_t nex, capex;
} sm_series_t;

struct sm_resource_s {
    uint64_t hash;
    uint8_t *key; /* the identifying attributes, sorted by key */
    size_t key_len;
    uint8_t *attrs; /* Resource message content: every attribute, as first seen */
    size_t attrs_len;
    int64_t last_seen_ns;
    sm_series_t **series;
    size_t nseries, capseries;
    size_t normal[2];         /* series that are not an overflow one: calls, events */
    sm_series_t *overflow[2]; /* of calls/duration, of events */
    bool evict;               /* beyond resource_metrics_cache_size at this flush */
};

struct sm_agg_s {
    const sm_opts_t *o;
    sm_resource_t **res;
    size_t nres, capres;
    void **rtab; /* resources by hash */
    size_t rcap;
    void **stab; /* series by hash */
    size_t scap, nseries;
    sm_buf_t scratch, rkey, rattrs;
    struct kv_ref {
        const char *k;
        size_t klen;
        size_t off, len;
    } * refs;
    size_t caprefs;
};

/* ---- tables ---------------------------------------------------------------------------- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

/* A hash of bytes read 8 at a time (FNV-1a's byte loop cost a fifth of the time
 * spent per span on loadgen's spans). */
static uint64_t hash_bytes(uint64_t seed, const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ull);
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, p, n);
        h = (h ^ w) * 0x94d049bb133111ebull;
        h ^= h >> 29;
    }
    return mix(h);
}

static bool tab_grow(void ***tab, size_t *cap, size_t want, uint64_t (*hash_of)(const void *))
{
    if (want * 2 <= *cap) return true;
    size_t ncap = *cap ? *cap : 64;
    while (want * 2 > ncap)
        ncap *= 2;
    void **nt = calloc(ncap, sizeof(void *));
    if (!nt) return false;
    for (size_t i = 0; i < *cap; i++) {
        void *p = (*tab)[i];
        if (!p) continue;
        size_t j = hash_of(p) & (ncap - 1);
        while (nt[j])
            j = (j + 1) & (ncap - 1);
        nt[j] = p;
    }
    free(*tab);
    *tab = nt;
    *cap = ncap;
    return true;
}

static uint64_t res_hash_of(const void *p)
{
    return ((const sm_resource_t *)p)->hash;
}
static uint64_t series_hash_of(const void *p)
{
    return ((const sm_series_t *)p)->hash;
}

static void tab_insert(void **tab, size_t cap, void *p, uint64_t h)
{
    size_t j = h & (cap - 1);
    while (tab[j])
        j = (j + 1) & (cap - 1);
    tab[j] = p;
}

/* ---- encoding values read from the view ---------------------------------------------- */

/* Writes an AnyValue's content (without its own tag and length). */
static void put_anyvalue(sm_buf_t *b, const sy_host_api_t *api, const sy_value_t *v)
{
    switch (v->type) {
    case SY_VALUE_STRING:
        sm_pb_bytes(b, 1, v->str, v->len);
        break;
    case SY_VALUE_BOOL:
        sm_pb_uint(b, 2, v->b ? 1 : 0);
        break;
    case SY_VALUE_INT:
        sm_pb_uint(b, 3, (uint64_t)v->i);
        break;
    case SY_VALUE_DOUBLE:
        sm_pb_double(b, 4, v->d);
        break;
    case SY_VALUE_BYTES:
        sm_pb_bytes(b, 7, v->bytes, v->len);
        break;
    case SY_VALUE_ARRAY:
    case SY_VALUE_MAP: {
        bool map = v->type == SY_VALUE_MAP;
        size_t outer = sm_pb_begin(b, map ? 6 : 5);
        sy_value_iter_t it = {.value = v};
        sy_value_t k, x;
        while (api->view_value_next(&it, &k, &x) == 1) {
            size_t entry = sm_pb_begin(b, 1);
            if (map) {
                sm_pb_bytes(b, 1, k.str, k.len);
                size_t inner = sm_pb_begin(b, 2);
                put_anyvalue(b, api, &x);
                sm_pb_end(b, inner);
            } else {
                put_anyvalue(b, api, &x);
            }
            sm_pb_end(b, entry);
        }
        sm_pb_end(b, outer);
        break;
    }
    default:
        break; /* EMPTY: an AnyValue holding nothing */
    }
}

/* Appends one attribute as (varint length, KeyValue bytes): what follows the tag
 * of an `attributes` field. */
static void put_kv(sm_buf_t *b, const sy_host_api_t *api, const char *k, size_t klen,
                   const sy_value_t *v)
{
    size_t at = b->len + 1; /* sm_pb_begin writes a tag first: write the length alone */
    if (!sm_buf_reserve(b, 1)) return;
    b->data[b->len++] = 0;
    sm_pb_bytes(b, 1, k, klen);
    size_t inner = sm_pb_begin(b, 2);
    put_anyvalue(b, api, v);
    sm_pb_end(b, inner);
    sm_pb_end(b, at);
}

static void put_kv_str(sm_buf_t *b, const char *k, const char *s, size_t len)
{
    sy_value_t v = {.type = SY_VALUE_STRING, .str = s, .len = len};
    put_kv(b, NULL, k, strlen(k), &v);
}

/* Writes stored attributes (varint length, KeyValue)* as repeated field `field`. */
static void write_attrs(sm_buf_t *out, uint32_t field, const uint8_t *p, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        uint64_t n = 0;
        size_t start = pos;
        for (int shift = 0; pos < len; shift += 7) {
            uint8_t c = p[pos++];
            n |= (uint64_t)(c & 0x7f) << shift;
            if (!(c & 0x80)) break;
        }
        sm_pb_tag(out, field, 2);
        sm_buf_put(out, p + start, (pos - start) + n);
        pos += n;
    }
}

/* ---- resources ------------------------------------------------------------------------- */

static bool key_wanted(const sm_opts_t *o, const char *k, size_t klen)
{
    if (!o->nkey_attrs) return true;
    for (size_t i = 0; i < o->nkey_attrs; i++)
        if (strlen(o->key_attrs[i]) == klen && memcmp(o->key_attrs[i], k, klen) == 0) return true;
    return false;
}

static int ref_cmp(const void *x, const void *y)
{
    const struct kv_ref *a = x, *b = y;
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->k, b->k, n);
    if (c) return c;
    return a->klen < b->klen ? -1 : a->klen > b->klen;
}

/* The resource of a ResourceSpans node, made when new. NULL on out of memory. */
static sm_resource_t *resource_of(sm_agg_t *a, const sy_host_api_t *api, sy_view_node_t *rnode,
                                  int64_t now_ns)
{
    const sm_opts_t *o = a->o;
    a->rattrs.len = 0;
    a->rkey.len = 0;
    size_t n = api->view_attr_count(rnode), nref = 0;
    if (n > a->caprefs) {
        struct kv_ref *r = realloc(a->refs, n * sizeof(*r));
        if (!r) return NULL;
        a->refs = r;
        a->caprefs = n;
    }
    for (size_t i = 0; i < n; i++) {
        sy_value_t k, v;
        if (api->view_attr_at(rnode, i, &k, &v) != 0) continue;
        size_t off = a->rattrs.len;
        put_kv(&a->rattrs, api, k.str, k.len, &v);
        if (key_wanted(o, k.str, k.len))
            a->refs[nref++] = (struct kv_ref){k.str, k.len, off, a->rattrs.len - off};
    }
    qsort(a->refs, nref, sizeof(*a->refs), ref_cmp);
    for (size_t i = 0; i < nref; i++)
        sm_buf_put(&a->rkey, a->rattrs.data + a->refs[i].off, a->refs[i].len);
    if (a->rattrs.failed || a->rkey.failed) {
        a->rattrs.failed = a->rkey.failed = false;
        return NULL;
    }
    uint64_t h = hash_bytes(0, a->rkey.data, a->rkey.len);
    if (a->rcap) {
        for (size_t j = h & (a->rcap - 1); a->rtab[j]; j = (j + 1) & (a->rcap - 1)) {
            sm_resource_t *r = a->rtab[j];
            if (r->hash == h && r->key_len == a->rkey.len &&
                (!r->key_len || memcmp(r->key, a->rkey.data, r->key_len) == 0)) {
                r->last_seen_ns = now_ns;
                return r;
            }
        }
    }
    if (!tab_grow(&a->rtab, &a->rcap, a->nres + 1, res_hash_of)) return NULL;
    if (a->nres == a->capres) {
        size_t cap = a->capres ? a->capres * 2 : 16;
        sm_resource_t **nr = realloc(a->res, cap * sizeof(*nr));
        if (!nr) return NULL;
        a->res = nr;
        a->capres = cap;
    }
    sm_resource_t *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->key = malloc(a->rkey.len ? a->rkey.len : 1);
    r->attrs = malloc(a->rattrs.len ? a->rattrs.len : 1);
    if (!r->key || !r->attrs) {
        free(r->key);
        free(r->attrs);
        free(r);
        return NULL;
    }
    memcpy(r->key, a->rkey.data, a->rkey.len);
    r->key_len = a->rkey.len;
    memcpy(r->attrs, a->rattrs.data, a->rattrs.len);
    r->attrs_len = a->rattrs.len;
    r->hash = h;
    r->last_seen_ns = now_ns;
    a->res[a->nres++] = r;
    tab_insert(a->rtab, a->rcap, r, h);
    return r;
}

/* ---- series ---------------------------------------------------------------------------- */

static void series_free(sm_series_t *s)
{
    if (!s) return;
    free(s->attrs);
    free(s->buckets);
    sm_expo_free(&s->expo);
    free(s->ex);
    free(s);
}

static sm_series_t *series_new(sm_agg_t *a, sm_resource_t *r, bool event, const uint8_t *attrs,
                               size_t len, uint64_t h, int64_t now_ns)
{
    const sm_opts_t *o = a->o;
    sm_series_t *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->attrs = malloc(len ? len : 1);
    if (!s->attrs) goto fail;
    memcpy(s->attrs, attrs, len);
    s->attrs_len = len;
    s->res = r;
    s->hash = h;
    s->start_ns = now_ns;
    s->event = event;
    if (!o->hist_disable && !event) {
        if (o->exponential) {
            sm_expo_init(&s->expo, (uint32_t)o->max_size);
        } else {
            s->buckets = calloc(o->nbounds + 1, sizeof(uint64_t));
            if (!s->buckets) goto fail;
        }
    }
    if (r->nseries == r->capseries) {
        size_t cap = r->capseries ? r->capseries * 2 : 16;
        sm_series_t **ns = realloc(r->series, cap * sizeof(*ns));
        if (!ns) goto fail;
        r->series = ns;
        r->capseries = cap;
    }
    if (!tab_grow(&a->stab, &a->scap, a->nseries + 1, series_hash_of)) goto fail;
    r->series[r->nseries++] = s;
    tab_insert(a->stab, a->scap, s, h);
    a->nseries++;
    return s;
fail:
    series_free(s);
    return NULL;
}

static uint64_t series_hash(const sm_resource_t *r, bool event, const uint8_t *attrs, size_t len)
{
    return hash_bytes((uint64_t)(uintptr_t)r ^ (event ? 0x9e3779b97f4a7c15ull : 0), attrs, len);
}

static sm_series_t *series_find(sm_agg_t *a, const sm_resource_t *r, bool event,
                                const uint8_t *attrs, size_t len, uint64_t h)
{
    if (!a->scap) return NULL;
    for (size_t j = h & (a->scap - 1); a->stab[j]; j = (j + 1) & (a->scap - 1)) {
        sm_series_t *s = a->stab[j];
        if (s->hash == h && s->res == r && s->event == event && s->attrs_len == len &&
            (!len || memcmp(s->attrs, attrs, len) == 0))
            return s;
    }
    return NULL;
}

static void add_exemplar(const sm_opts_t *o, sm_series_t *s, const sy_value_t *tid,
                         const sy_value_t *sid, double value)
{
    if (s->nex >= o->max_exemplars) return; /* 0: none, as the collector */
    if (s->nex == s->capex) {
        size_t cap = o->max_exemplars;
        sm_exemplar_t *e = realloc(s->ex, cap * sizeof(*e));
        if (!e) return; /* an exemplar is a sample: going without one loses no count */
        s->ex = e;
        s->capex = cap;
    }
    sm_exemplar_t *e = &s->ex[s->nex++];
    memset(e, 0, sizeof(*e));
    memcpy(e->trace_id, tid->bytes, tid->len < 16 ? tid->len : 16);
    if (sid->type == SY_VALUE_BYTES) memcpy(e->span_id, sid->bytes, sid->len < 8 ? sid->len : 8);
    e->value = value;
}

static const char *const kind_names[] = {
    "SPAN_KIND_UNSPECIFIED", "SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",      "SPAN_KIND_PRODUCER", "SPAN_KIND_CONSUMER",
};
static const char *const status_names[] = {"STATUS_CODE_UNSET", "STATUS_CODE_OK",
                                           "STATUS_CODE_ERROR"};

static bool all_zero(const sy_value_t *v)
{
    if (v->type != SY_VALUE_BYTES || v->len == 0) return true;
    for (size_t i = 0; i < v->len; i++)
        if (v->bytes[i]) return false;
    return true;
}

/* Appends the dimensions: each looked up in the span's attributes, then the
 * event's (for the events metric), then the resource's; else its default. */
static void put_dims(sm_buf_t *b, const sy_host_api_t *api, const sm_dim_t *dims, size_t n,
                     sy_view_node_t *span, sy_view_node_t *event, sy_view_node_t *rnode)
{
    for (size_t d = 0; d < n; d++) {
        const sm_dim_t *dim = &dims[d];
        sy_value_t v;
        if (api->view_attr_get(span, dim->name, dim->len, &v) == 0 ||
            (event && api->view_attr_get(event, dim->name, dim->len, &v) == 0) ||
            api->view_attr_get(rnode, dim->name, dim->len, &v) == 0) {
            put_kv(b, api, dim->name, dim->len, &v);
        } else if (dim->def) {
            sy_value_t dv = {.type = SY_VALUE_STRING, .str = dim->def, .len = dim->def_len};
            put_kv(b, api, dim->name, dim->len, &dv);
        }
    }
}

/* The series of resource r (of the events metric or not) whose attributes are
 * b's bytes, made when new; past aggregation_cardinality_limit, the resource's
 * otel.metric.overflow series. NULL on out of memory. */
static sm_series_t *series_of(sm_agg_t *a, const sy_host_api_t *api, sm_resource_t *r, bool event,
                              sm_buf_t *b, int64_t now_ns, sm_consume_stats_t *st)
{
    const sm_opts_t *o = a->o;
    if (b->failed) {
        b->failed = false;
        return NULL;
    }
    uint64_t h = series_hash(r, event, b->data, b->len);
    sm_series_t *s = series_find(a, r, event, b->data, b->len, h);
    if (s) return s;
    if (!o->cardinality_limit || r->normal[event] < o->cardinality_limit) {
        s = series_new(a, r, event, b->data, b->len, h, now_ns);
        if (s) r->normal[event]++;
        return s;
    }
    st->overflow++;
    if (!r->overflow[event]) {
        sm_buf_t ob = {0};
        sy_value_t t = {.type = SY_VALUE_BOOL, .b = true};
        put_kv(&ob, api, "otel.metric.overflow", 20, &t);
        if (!ob.failed)
            r->overflow[event] = series_new(a, r, event, ob.data, ob.len,
                                            series_hash(r, event, ob.data, ob.len), now_ns);
        sm_buf_free(&ob);
    }
    return r->overflow[event];
}

static void count_exemplar(const sm_opts_t *o, const sy_host_api_t *api, sm_series_t *s,
                           sy_view_node_t *span, double duration)
{
    if (!o->exemplars) return;
    sy_value_t tid = {0}, sid = {0};
    api->view_get(span, SY_FIELD_TRACE_ID, &tid);
    api->view_get(span, SY_FIELD_SPAN_ID, &sid);
    if (!all_zero(&tid)) add_exemplar(o, s, &tid, &sid, duration);
}

/* Counts one span of resource r (and its events, with events.enabled). */
static int count_span(sm_agg_t *a, const sy_host_api_t *api, sm_resource_t *r,
                      sy_view_node_t *rnode, sy_view_node_t *span, const sy_value_t *service,
                      int64_t now_ns, sm_consume_stats_t *st)
{
    const sm_opts_t *o = a->o;
    sy_value_t name = {0}, kind = {0}, status = {0}, start = {0}, end = {0};
    api->view_get(span, SY_FIELD_NAME, &name);
    api->view_get(span, SY_FIELD_KIND, &kind);
    api->view_get(span, SY_FIELD_STATUS_CODE, &status);
    api->view_get(span, SY_FIELD_START_TIME, &start);
    api->view_get(span, SY_FIELD_END_TIME, &end);
    double duration = 0; /* an end before the start counts as 0, as the collector */
    if (end.i > start.i) duration = (double)((uint64_t)end.i - (uint64_t)start.i) / o->ns_per_unit;

    /* The four defaults, shared by the span's series and its events' */
    sm_buf_t *b = &a->scratch;
    b->len = 0;
    if (!o->excl_service) put_kv(b, api, "service.name", 12, service);
    if (!o->excl_name)
        put_kv_str(b, "span.name", name.type == SY_VALUE_STRING ? name.str : "",
                   name.type == SY_VALUE_STRING ? name.len : 0);
    if (!o->excl_kind) {
        int64_t k = kind.i >= 0 && kind.i <= 5 ? kind.i : 0;
        put_kv_str(b, "span.kind", kind_names[k], strlen(kind_names[k]));
    }
    if (!o->excl_status) {
        int64_t c = status.i >= 0 && status.i <= 2 ? status.i : 0;
        put_kv_str(b, "status.code", status_names[c], strlen(status_names[c]));
    }
    size_t base = b->len;
    put_dims(b, api, o->dims, o->ndims, span, NULL, rnode);
    sm_series_t *s = series_of(a, api, r, false, b, now_ns, st);
    if (!s) return SY_ENOMEM;
    s->touched = true;
    s->calls++;
    if (!o->hist_disable) {
        if (o->exponential) {
            if (!sm_expo_add(&s->expo, duration)) return SY_ENOMEM;
        } else {
            size_t lo = 0, hi = o->nbounds; /* the first bound >= duration */
            while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (o->bounds[mid] < duration)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            s->buckets[lo]++;
            s->hcount++;
            s->hsum += duration;
        }
    }
    count_exemplar(o, api, s, span, duration);
    st->spans++;
    if (!o->events) return SY_OK;
    size_t nev = api->view_count(span, SY_VIEW_EVENTS);
    for (size_t e = 0; e < nev; e++) {
        sy_view_node_t *ev = api->view_at(span, SY_VIEW_EVENTS, e);
        b->len = base;
        put_dims(b, api, o->dims, o->ndims, span, ev, rnode);
        put_dims(b, api, o->edims, o->nedims, span, ev, rnode);
        sm_series_t *es = series_of(a, api, r, true, b, now_ns, st);
        if (!es) return SY_ENOMEM;
        es->touched = true;
        es->calls++;
        count_exemplar(o, api, es, span, duration);
        st->events++;
    }
    return SY_OK;
}

int sm_agg_consume(sm_agg_t *a, const sy_host_api_t *api, sy_batch_t *batch, int64_t now_ns,
                   sm_consume_stats_t *st)
{
    *st = (sm_consume_stats_t){0};
    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM;
    int rc = SY_OK;
    sy_view_node_t *root = api->view_root(v);
    size_t nr = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t i = 0; i < nr && rc == SY_OK; i++) {
        sy_view_node_t *rnode = api->view_at(root, SY_VIEW_RESOURCES, i);
        size_t nsc = api->view_count(rnode, SY_VIEW_SCOPES);
        sy_value_t service;
        if (api->view_attr_get(rnode, "service.name", 12, &service) != 0) {
            for (size_t c = 0; c < nsc; c++)
                st->no_service +=
                    api->view_count(api->view_at(rnode, SY_VIEW_SCOPES, c), SY_VIEW_ITEMS);
            continue;
        }
        if (service.type != SY_VALUE_STRING)
            service = (sy_value_t){.type = SY_VALUE_STRING, .str = ""};
        sm_resource_t *r = resource_of(a, api, rnode, now_ns);
        if (!r) {
            rc = SY_ENOMEM;
            break;
        }
        for (size_t c = 0; c < nsc && rc == SY_OK; c++) {
            sy_view_node_t *sc = api->view_at(rnode, SY_VIEW_SCOPES, c);
            size_t ns = api->view_count(sc, SY_VIEW_ITEMS);
            for (size_t k = 0; k < ns && rc == SY_OK; k++)
                rc = count_span(a, api, r, rnode, api->view_at(sc, SY_VIEW_ITEMS, k), &service,
                                now_ns, st);
        }
    }
    api->view_close(v);
    return rc;
}

/* ---- output ---------------------------------------------------------------------------- */

static void write_exemplars(sm_buf_t *out, uint32_t field, const sm_series_t *s, int64_t now_ns)
{
    for (size_t i = 0; i < s->nex; i++) {
        const sm_exemplar_t *e = &s->ex[i];
        size_t m = sm_pb_begin(out, field);
        sm_pb_fixed64(out, 2, (uint64_t)now_ns); /* the flush time, as the collector */
        sm_pb_double(out, 3, e->value);
        sm_pb_bytes(out, 4, e->span_id, 8);
        sm_pb_bytes(out, 5, e->trace_id, 16);
        sm_pb_end(out, m);
    }
}

static bool series_due(const sm_opts_t *o, const sm_series_t *s)
{
    return !o->delta || s->touched; /* delta: only what was counted since the last flush */
}

/* Whether r has a series (of the events metric or not) to write now. */
static bool any_due(const sm_opts_t *o, const sm_resource_t *r, bool event)
{
    for (size_t k = 0; k < r->nseries; k++)
        if (r->series[k]->event == event && series_due(o, r->series[k])) return true;
    return false;
}

/* The calls metric, or the events metric: monotonic sums of counts. */
static void write_sum(const sm_opts_t *o, sm_buf_t *out, const sm_resource_t *r, bool event,
                      int64_t now_ns, uint64_t *points)
{
    const char *name = event ? o->name_events : o->name_calls;
    size_t m = sm_pb_begin(out, 2); /* ScopeMetrics.metrics */
    sm_pb_bytes(out, 1, name, strlen(name));
    size_t sum = sm_pb_begin(out, 7);
    for (size_t i = 0; i < r->nseries; i++) {
        const sm_series_t *s = r->series[i];
        if (s->event != event || !series_due(o, s)) continue;
        size_t dp = sm_pb_begin(out, 1);
        write_attrs(out, 7, s->attrs, s->attrs_len);
        sm_pb_fixed64(out, 2, (uint64_t)s->start_ns);
        sm_pb_fixed64(out, 3, (uint64_t)now_ns);
        sm_pb_fixed64(out, 6, (!o->delta && !s->emitted) ? 0 : s->calls); /* as_int */
        write_exemplars(out, 5, s, now_ns);
        sm_pb_end(out, dp);
        (*points)++;
    }
    sm_pb_uint(out, 2, o->delta ? 1 : 2);
    sm_pb_uint(out, 3, 1); /* monotonic */
    sm_pb_end(out, sum);
    sm_pb_end(out, m);
}

static void write_duration(const sm_opts_t *o, sm_buf_t *out, const sm_resource_t *r,
                           int64_t now_ns, uint64_t *points)
{
    size_t m = sm_pb_begin(out, 2);
    sm_pb_bytes(out, 1, o->name_duration, strlen(o->name_duration));
    sm_pb_bytes(out, 3, o->unit, strlen(o->unit));
    size_t hist = sm_pb_begin(out, o->exponential ? 10 : 9);
    for (size_t i = 0; i < r->nseries; i++) {
        const sm_series_t *s = r->series[i];
        if (s->event || !series_due(o, s)) continue;
        size_t dp = sm_pb_begin(out, 1);
        sm_pb_fixed64(out, 2, (uint64_t)s->start_ns);
        sm_pb_fixed64(out, 3, (uint64_t)now_ns);
        if (o->exponential) {
            const sm_expo_t *e = &s->expo;
            write_attrs(out, 1, s->attrs, s->attrs_len);
            sm_pb_fixed64(out, 4, e->count);
            sm_pb_double(out, 5, e->sum);
            sm_pb_uint(out, 6, sm_pb_zigzag32(e->scale));
            sm_pb_fixed64(out, 7, e->zero_count);
            size_t pos = sm_pb_begin(out, 8);
            sm_pb_uint(out, 1, sm_pb_zigzag32(e->offset));
            if (e->n) {
                size_t packed = sm_pb_begin(out, 2);
                for (uint32_t b = 0; b < e->n; b++)
                    sm_pb_varint(out, e->counts[b]);
                sm_pb_end(out, packed);
            }
            sm_pb_end(out, pos);
            write_exemplars(out, 11, s, now_ns);
            if (e->count) {
                sm_pb_double(out, 12, e->min);
                sm_pb_double(out, 13, e->max);
            }
        } else {
            write_attrs(out, 9, s->attrs, s->attrs_len);
            sm_pb_fixed64(out, 4, s->hcount);
            sm_pb_double(out, 5, s->hsum);
            size_t bc = sm_pb_begin(out, 6);
            for (size_t b = 0; b <= o->nbounds; b++) {
                uint8_t le[8];
                for (int k = 0; k < 8; k++)
                    le[k] = (uint8_t)(s->buckets[b] >> (8 * k));
                sm_buf_put(out, le, 8);
            }
            sm_pb_end(out, bc);
            if (o->nbounds) {
                size_t eb = sm_pb_begin(out, 7);
                sm_buf_put(out, o->bounds, o->nbounds * sizeof(double)); /* little-endian hosts */
                sm_pb_end(out, eb);
            }
            write_exemplars(out, 8, s, now_ns);
        }
        sm_pb_end(out, dp);
        (*points)++;
    }
    sm_pb_uint(out, 2, o->delta ? 1 : 2);
    sm_pb_end(out, hist);
    sm_pb_end(out, m);
}

int sm_agg_build(sm_agg_t *a, int64_t now_ns, sm_buf_t *out, uint64_t *points)
{
    const sm_opts_t *o = a->o;
    out->len = 0;
    out->failed = false;
    *points = 0;
    for (size_t i = 0; i < a->nres; i++) {
        const sm_resource_t *r = a->res[i];
        bool calls = any_due(o, r, false), events = o->events && any_due(o, r, true);
        if (!calls && !events) continue;
        size_t rm = sm_pb_begin(out, 1); /* ResourceMetrics */
        size_t res = sm_pb_begin(out, 1);
        write_attrs(out, 1, r->attrs, r->attrs_len);
        sm_pb_end(out, res);
        size_t sm = sm_pb_begin(out, 2);
        size_t scope = sm_pb_begin(out, 1);
        sm_pb_bytes(out, 1, "spanmetricsconnector", 20);
        sm_pb_end(out, scope);
        if (calls) write_sum(o, out, r, false, now_ns, points);
        if (calls && !o->hist_disable) write_duration(o, out, r, now_ns, points);
        if (events) write_sum(o, out, r, true, now_ns, points);
        sm_pb_end(out, sm);
        sm_pb_end(out, rm);
    }
    if (out->failed) {
        out->len = 0;
        out->failed = false;
        return SY_ENOMEM;
    }
    return SY_OK;
}

/* ---- after a flush ---------------------------------------------------------------------- */

static void resource_free(sm_resource_t *r)
{
    for (size_t i = 0; i < r->nseries; i++)
        series_free(r->series[i]);
    free(r->series);
    free(r->key);
    free(r->attrs);
    free(r);
}

static int by_last_seen(const void *x, const void *y)
{
    const sm_resource_t *a = *(sm_resource_t *const *)x, *b = *(sm_resource_t *const *)y;
    return a->last_seen_ns < b->last_seen_ns ? -1 : a->last_seen_ns > b->last_seen_ns;
}

static void rebuild_tables(sm_agg_t *a)
{
    if (a->rcap) memset(a->rtab, 0, a->rcap * sizeof(void *));
    if (a->scap) memset(a->stab, 0, a->scap * sizeof(void *));
    a->nseries = 0;
    for (size_t i = 0; i < a->nres; i++) {
        sm_resource_t *r = a->res[i];
        tab_insert(a->rtab, a->rcap, r, r->hash);
        for (size_t k = 0; k < r->nseries; k++) {
            tab_insert(a->stab, a->scap, r->series[k], r->series[k]->hash);
            a->nseries++;
        }
    }
}

uint64_t sm_agg_flushed(sm_agg_t *a, int64_t now_ns)
{
    const sm_opts_t *o = a->o;
    uint64_t dropped = 0;
    bool removed = false;
    for (size_t i = 0; i < a->nres; i++) {
        sm_resource_t *r = a->res[i];
        size_t keep = 0;
        for (size_t k = 0; k < r->nseries; k++) {
            sm_series_t *s = r->series[k];
            s->nex = 0;
            if (o->delta) {
                if (!s->touched) { /* nothing since the last flush: forgotten */
                    if (s == r->overflow[s->event])
                        r->overflow[s->event] = NULL;
                    else
                        r->normal[s->event]--;
                    series_free(s);
                    dropped++;
                    removed = true;
                    continue;
                }
                s->calls = s->hcount = 0;
                s->hsum = 0;
                if (s->buckets) memset(s->buckets, 0, (o->nbounds + 1) * sizeof(uint64_t));
                sm_expo_reset(&s->expo);
                s->start_ns = now_ns; /* the next point covers (now, next flush] */
            } else if (s->touched) {
                s->emitted = true;
            }
            s->touched = false;
            r->series[keep++] = s;
        }
        r->nseries = keep;
    }
    /* Expired resources (cumulative: delta forgets series above), then the least
     * recently seen beyond resource_metrics_cache_size. */
    size_t keep = 0;
    for (size_t i = 0; i < a->nres; i++) {
        sm_resource_t *r = a->res[i];
        bool expired = o->expiration_ns > 0 && now_ns - r->last_seen_ns >= o->expiration_ns;
        if (expired || r->nseries == 0) {
            dropped += r->nseries;
            resource_free(r);
            removed = true;
            continue;
        }
        a->res[keep++] = r;
    }
    a->nres = keep;
    if (o->resource_cache_size && a->nres > o->resource_cache_size) {
        sm_resource_t **sorted = malloc(a->nres * sizeof(*sorted));
        if (sorted) {
            memcpy(sorted, a->res, a->nres * sizeof(*sorted));
            qsort(sorted, a->nres, sizeof(*sorted), by_last_seen);
            size_t evict = a->nres - o->resource_cache_size;
            for (size_t i = 0; i < evict; i++)
                sorted[i]->evict = true;
            free(sorted);
            keep = 0;
            for (size_t i = 0; i < a->nres; i++) {
                sm_resource_t *r = a->res[i];
                if (r->evict) {
                    dropped += r->nseries;
                    resource_free(r);
                    continue;
                }
                a->res[keep++] = r;
            }
            a->nres = keep;
            removed = true;
        }
    }
    if (removed) rebuild_tables(a);
    return dropped;
}

/* ---- life ------------------------------------------------------------------------------- */

sm_agg_t *sm_agg_new(const sm_opts_t *opts)
{
    sm_agg_t *a = calloc(1, sizeof(*a));
    if (!a) return NULL;
    a->o = opts;
    return a;
}

void sm_agg_free(sm_agg_t *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->nres; i++)
        resource_free(a->res[i]);
    free(a->res);
    free(a->rtab);
    free(a->stab);
    free(a->refs);
    sm_buf_free(&a->scratch);
    sm_buf_free(&a->rkey);
    sm_buf_free(&a->rattrs);
    free(a);
}

size_t sm_agg_series(const sm_agg_t *a)
{
    return a->nseries;
}
size_t sm_agg_resources(const sm_agg_t *a)
{
    return a->nres;
}
