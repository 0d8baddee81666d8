/*
 * sg_series.c - completed edges aggregated into series (one per client, server,
 * connection_type, failed and dimension values, as the collector's metric key),
 * and the cumulative OTLP metrics request written from them with a small
 * protobuf writer (the output only: the input is read through the view).
 */
#include <stdlib.h>
#include <string.h>

#include "attr_actions.h"
#include "hash.h"
#include "sg.h"

typedef struct sg_series_s {
    struct sg_series_s *hnext;       /* hash chain */
    struct sg_series_s *prev, *next; /* in the order they were made */
    uint64_t hash;
    char *key;
    size_t keylen;
    /* Labels: a copy of the edge's. */
    char *client, *server;
    uint8_t conn, vlabel;
    bool failed;
    char **dims; /* 2 * ndims, as the edge's */
    int64_t total, failed_total;
    uint64_t ccount, scount;
    double csum, ssum;
    uint64_t *cbuckets, *sbuckets; /* nbounds + 1 each */
    int64_t last_updated;
} sg_series_t;

#define SG_SERIES_BUCKETS 1024

struct sg_series_tab_s {
    sg_series_t *buckets[SG_SERIES_BUCKETS];
    sg_series_t *head, *tail;
    size_t len;
};

static const char *const conn_names[] = {"", "messaging_system", "database", "virtual_node"};
static const char *const vnode_names[] = {"", "client", "server"};

sg_series_tab_t *sg_series_new(void)
{
    return calloc(1, sizeof(sg_series_tab_t));
}

static void series_free(sg_series_t *s, size_t ndims)
{
    for (size_t i = 0; i < 2 * ndims; i++)
        free(s->dims[i]);
    free(s->key);
    free(s->client);
    free(s->server);
    free(s->cbuckets);
    free(s);
}

void sg_series_free(sg_series_tab_t *t, size_t ndims)
{
    if (!t) return;
    sg_series_t *s = t->head;
    while (s) {
        sg_series_t *next = s->next;
        series_free(s, ndims);
        s = next;
    }
    free(t);
}

size_t sg_series_len(const sg_t *sg)
{
    return sg->series->len;
}

/* The collector's buildMetricKey, written unambiguously: every part with its
 * length (dimension names are fixed by the configuration, so their index is
 * enough). */
static int put_part(syc_buf_t *b, const char *s)
{
    uint32_t n = s ? (uint32_t)strlen(s) + 1 : 0; /* 0: absent, 1: "" */
    if (syc_buf_put(b, &n, sizeof(n)) < 0) return SY_ENOMEM;
    return n > 1 ? syc_buf_put(b, s, n - 1) : SY_OK;
}

static int series_key(const sg_t *sg, const sg_edge_t *e, syc_buf_t *b)
{
    uint8_t flags[2] = {e->conn, e->failed};
    if (put_part(b, e->client) < 0 || put_part(b, e->server) < 0 ||
        syc_buf_put(b, flags, sizeof(flags)) < 0)
        return SY_ENOMEM;
    for (size_t i = 0; i < 2 * sg->o.ndims; i++)
        if (put_part(b, e->dims[i]) < 0) return SY_ENOMEM;
    return SY_OK;
}

static char *dup_or_null(const char *s, bool *fail)
{
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *fail = true;
    return d;
}

static sg_series_t *series_make(const sg_t *sg, const sg_edge_t *e, syc_buf_t *key, uint64_t h)
{
    size_t nb = sg->o.nbounds + 1;
    sg_series_t *s = calloc(1, sizeof(*s) + 2 * sg->o.ndims * sizeof(char *));
    if (!s) return NULL;
    s->dims = (char **)(s + 1);
    bool fail = false;
    s->hash = h;
    s->key = key->p;
    s->keylen = key->len;
    key->p = NULL;
    s->client = dup_or_null(e->client, &fail);
    s->server = dup_or_null(e->server, &fail);
    for (size_t i = 0; i < 2 * sg->o.ndims; i++)
        s->dims[i] = dup_or_null(e->dims[i], &fail);
    s->conn = e->conn;
    s->failed = e->failed;
    s->cbuckets = calloc(2 * nb, sizeof(uint64_t));
    if (!s->cbuckets || fail) {
        series_free(s, sg->o.ndims);
        return NULL;
    }
    s->sbuckets = s->cbuckets + nb;
    return s;
}

/* sort.SearchFloat64s: the first bound >= d (so d on a bound counts in it, as
 * Prometheus' `le`), nbounds past the last. */
static size_t bucket_of(const double *bounds, size_t n, double d)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (bounds[mid] < d)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int sg_series_record(sg_t *sg, const sg_edge_t *e, int64_t now_ns)
{
    sg_series_tab_t *t = sg->series;
    syc_buf_t key = {0};
    if (series_key(sg, e, &key) < 0) {
        free(key.p);
        return SY_ENOMEM;
    }
    uint64_t h = syc_fnv1a64(SYC_FNV64_OFFSET, key.p, key.len);
    sg_series_t **slot = &t->buckets[h % SG_SERIES_BUCKETS];
    sg_series_t *s = *slot;
    while (s && !(s->hash == h && s->keylen == key.len && !memcmp(s->key, key.p, key.len)))
        s = s->hnext;
    if (!s) {
        s = series_make(sg, e, &key, h);
        if (!s) {
            free(key.p);
            return SY_ENOMEM;
        }
        s->hnext = *slot;
        *slot = s;
        s->prev = t->tail;
        if (t->tail)
            t->tail->next = s;
        else
            t->head = s;
        t->tail = s;
        t->len++;
    }
    free(key.p);
    /* The virtual_node label is not part of the key: the latest edge's wins. */
    s->vlabel = e->vlabel;
    s->last_updated = now_ns;
    s->total++;
    if (e->failed) s->failed_total++;
    size_t nb = sg->o.nbounds;
    s->scount++;
    s->ssum += e->server_lat;
    s->sbuckets[bucket_of(sg->o.bounds, nb, e->server_lat)]++;
    s->ccount++;
    s->csum += e->client_lat;
    s->cbuckets[bucket_of(sg->o.bounds, nb, e->client_lat)]++;
    return SY_OK;
}

void sg_clean_series(sg_t *sg, int64_t now_ns)
{
    sg_series_tab_t *t = sg->series;
    sg_series_t *s = t->head;
    while (s) {
        sg_series_t *next = s->next;
        if (s->last_updated + sg->o.series_ttl_ns < now_ns) {
            sg_series_t **pp = &t->buckets[s->hash % SG_SERIES_BUCKETS];
            while (*pp != s)
                pp = &(*pp)->hnext;
            *pp = s->hnext;
            if (s->prev)
                s->prev->next = s->next;
            else
                t->head = s->next;
            if (s->next)
                s->next->prev = s->prev;
            else
                t->tail = s->prev;
            t->len--;
            sg->stats.series_expired++;
            series_free(s, sg->o.ndims);
        }
        s = next;
    }
}

/* ---- a protobuf writer for the output --------------------------------------- */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2 };

static int pb_varint(syc_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        tmp[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return syc_buf_put(b, tmp, n);
}

static int pb_tag(syc_buf_t *b, uint32_t field, int wt)
{
    return pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wt);
}

static int pb_len(syc_buf_t *b, uint32_t field, const void *p, size_t n)
{
    if (pb_tag(b, field, WT_LEN) < 0 || pb_varint(b, n) < 0) return SY_ENOMEM;
    return n ? syc_buf_put(b, p, n) : SY_OK;
}

static int pb_str(syc_buf_t *b, uint32_t field, const char *s)
{
    return pb_len(b, field, s, strlen(s));
}

/* A nested message: its bytes (in m, which is emptied) under field of b. */
static int pb_msg(syc_buf_t *b, uint32_t field, syc_buf_t *m)
{
    int rc = pb_len(b, field, m->p, m->len);
    free(m->p);
    *m = (syc_buf_t){0};
    return rc;
}

static int pb_fixed64(syc_buf_t *b, uint32_t field, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    if (pb_tag(b, field, WT_I64) < 0) return SY_ENOMEM;
    return syc_buf_put(b, le, sizeof(le));
}

static uint64_t double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof(u));
    return u;
}

/* A packed repeated fixed64 or double: the values' 8 bytes each, little-endian. */
static int pb_packed64(syc_buf_t *b, uint32_t field, const uint64_t *v, size_t n)
{
    if (pb_tag(b, field, WT_LEN) < 0 || pb_varint(b, 8 * n) < 0) return SY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        uint8_t le[8];
        for (int k = 0; k < 8; k++)
            le[k] = (uint8_t)(v[i] >> (8 * k));
        if (syc_buf_put(b, le, sizeof(le)) < 0) return SY_ENOMEM;
    }
    return SY_OK;
}

/* KeyValue{key, AnyValue{string_value}} or {bool_value}, under field of b. */
static int pb_kv(syc_buf_t *b, uint32_t field, const char *key, const char *str, int boolean)
{
    syc_buf_t av = {0}, kv = {0};
    int rc = str ? pb_str(&av, 1, str)
                 : (pb_tag(&av, 2, WT_VARINT) < 0 ? SY_ENOMEM : pb_varint(&av, boolean != 0));
    if (rc == 0) rc = pb_str(&kv, 1, key);
    if (rc == 0) rc = pb_msg(&kv, 2, &av);
    if (rc == 0) rc = pb_msg(b, field, &kv);
    free(av.p);
    free(kv.p);
    return rc;
}

/* The collector's buildDimensions: client, server, connection_type, failed, the
 * dimensions present (client_<dim>, server_<dim>), and virtual_node when
 * virtual_node_extra_label is on. */
static int pb_labels(const sg_t *sg, const sg_series_t *s, syc_buf_t *b, uint32_t field)
{
    int rc = pb_kv(b, field, "client", s->client ? s->client : "", 0);
    if (rc == 0) rc = pb_kv(b, field, "server", s->server ? s->server : "", 0);
    if (rc == 0) rc = pb_kv(b, field, "connection_type", conn_names[s->conn], 0);
    if (rc == 0) rc = pb_kv(b, field, "failed", NULL, s->failed);
    for (size_t i = 0; i < sg->o.ndims && rc == 0; i++) {
        for (int side = 0; side < 2 && rc == 0; side++) {
            const char *v = s->dims[2 * i + side];
            if (!v) continue;
            char *name = malloc(strlen(sg->o.dims[i]) + 8);
            if (!name) return SY_ENOMEM;
            strcpy(name, side ? "server_" : "client_");
            strcat(name, sg->o.dims[i]);
            rc = pb_kv(b, field, name, v, 0);
            free(name);
        }
    }
    if (rc == 0 && sg->o.virtual_node_extra_label)
        rc = pb_kv(b, field, "virtual_node", vnode_names[s->vlabel], 0);
    return rc;
}

typedef struct times_s {
    uint64_t start, now;
} times_t;

/* One cumulative monotonic Sum of as_int points: request_total (failed_only
 * false) or request_failed_total (only the failed series). */
static int metric_sum(const sg_t *sg, syc_buf_t *scope, const char *name, bool failed_only,
                      const times_t *t)
{
    syc_buf_t sum = {0}, pt = {0}, m = {0};
    int rc = SY_OK, points = 0;
    for (sg_series_t *s = sg->series->head; s && rc == 0; s = s->next) {
        if (failed_only && !s->failed_total) continue;
        int64_t v = failed_only ? s->failed_total : s->total;
        rc = pb_labels(sg, s, &pt, 7);
        if (rc == 0) rc = pb_fixed64(&pt, 2, t->start);
        if (rc == 0) rc = pb_fixed64(&pt, 3, t->now);
        if (rc == 0) rc = pb_fixed64(&pt, 6, (uint64_t)v); /* as_int, sfixed64 */
        if (rc == 0) rc = pb_msg(&sum, 1, &pt);
        points++;
    }
    if (rc == 0 && points) {
        rc = pb_tag(&sum, 2, WT_VARINT) < 0 ? SY_ENOMEM : pb_varint(&sum, 2); /* cumulative */
        if (rc == 0) rc = pb_tag(&sum, 3, WT_VARINT) < 0 ? SY_ENOMEM : pb_varint(&sum, 1);
        if (rc == 0) rc = pb_str(&m, 1, name);
        if (rc == 0) rc = pb_msg(&m, 7, &sum);
        if (rc == 0) rc = pb_msg(scope, 2, &m);
    }
    free(sum.p);
    free(pt.p);
    free(m.p);
    return rc;
}

/* One cumulative Histogram, unit "s": the server side or the client side. */
static int metric_hist(const sg_t *sg, syc_buf_t *scope, const char *name, bool server,
                       const times_t *t)
{
    syc_buf_t h = {0}, pt = {0}, m = {0};
    int rc = SY_OK;
    size_t nb = sg->o.nbounds;
    uint64_t *bounds = malloc((nb ? nb : 1) * sizeof(uint64_t));
    if (!bounds) return SY_ENOMEM;
    for (size_t i = 0; i < nb; i++)
        bounds[i] = double_bits(sg->o.bounds[i]);
    for (sg_series_t *s = sg->series->head; s && rc == 0; s = s->next) {
        rc = pb_labels(sg, s, &pt, 9);
        if (rc == 0) rc = pb_fixed64(&pt, 2, t->start);
        if (rc == 0) rc = pb_fixed64(&pt, 3, t->now);
        if (rc == 0) rc = pb_fixed64(&pt, 4, server ? s->scount : s->ccount);
        if (rc == 0) rc = pb_fixed64(&pt, 5, double_bits(server ? s->ssum : s->csum));
        if (rc == 0) rc = pb_packed64(&pt, 6, server ? s->sbuckets : s->cbuckets, nb + 1);
        if (rc == 0 && nb) rc = pb_packed64(&pt, 7, bounds, nb);
        if (rc == 0) rc = pb_msg(&h, 1, &pt);
    }
    if (rc == 0) rc = pb_tag(&h, 2, WT_VARINT) < 0 ? SY_ENOMEM : pb_varint(&h, 2);
    if (rc == 0) rc = pb_str(&m, 1, name);
    if (rc == 0) rc = pb_str(&m, 3, "s");
    if (rc == 0) rc = pb_msg(&m, 9, &h);
    if (rc == 0) rc = pb_msg(scope, 2, &m);
    free(bounds);
    free(h.p);
    free(pt.p);
    free(m.p);
    return rc;
}

int sg_encode(sg_t *sg, uint64_t start_unix_ns, uint64_t time_unix_ns, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (!sg->series->len) return SY_OK; /* the collector skips an empty flush */
    times_t t = {start_unix_ns, time_unix_ns};
    syc_buf_t scope = {0}, is = {0}, rm = {0}, req = {0};
    int rc = pb_str(&is, 1, "traces_service_graph");
    if (rc == 0) rc = pb_msg(&scope, 1, &is);
    if (rc == 0) rc = metric_sum(sg, &scope, "traces_service_graph_request_total", false, &t);
    if (rc == 0) rc = metric_sum(sg, &scope, "traces_service_graph_request_failed_total", true, &t);
    if (rc == 0) rc = metric_hist(sg, &scope, "traces_service_graph_request_server", true, &t);
    if (rc == 0) rc = metric_hist(sg, &scope, "traces_service_graph_request_client", false, &t);
    if (rc == 0) rc = pb_len(&rm, 1, NULL, 0); /* an empty Resource */
    if (rc == 0) rc = pb_msg(&rm, 2, &scope);
    if (rc == 0) rc = pb_msg(&req, 1, &rm);
    free(scope.p);
    free(is.p);
    free(rm.p);
    if (rc < 0) {
        free(req.p);
        return SY_ENOMEM;
    }
    *out = (uint8_t *)req.p;
    *len = req.len;
    return SY_OK;
}
