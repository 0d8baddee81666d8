/*
 * sg_store.c - the store of edges waiting for their other half, as the
 * collector's servicegraph connector keeps it: a map from (trace ID, span ID) to
 * the edge, and a list in the order the edges were made, whose head is the next
 * to expire (every edge gets the same TTL, so the list is also ordered by expiry).
 * A full store refuses new edges (the span is dropped and counted); it does not
 * evict.
 */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sg.h"

static size_t key_bucket(const sg_store_t *st, const uint8_t key[SG_KEY_LEN])
{
    return (size_t)(syc_fnv1a64(SYC_FNV64_OFFSET, key, SG_KEY_LEN) & (st->nbuckets - 1));
}

int sg_store_init(sg_store_t *st, uint64_t max_items)
{
    memset(st, 0, sizeof(*st));
    /* About two buckets an edge up to max_items, between 64 and 2^20 buckets. */
    size_t n = 64;
    while (n < (1u << 20) && n < max_items * 2)
        n <<= 1;
    st->buckets = calloc(n, sizeof(*st->buckets));
    if (!st->buckets) return SY_ENOMEM;
    st->nbuckets = n;
    return SY_OK;
}

void sg_store_fini(sg_store_t *st, size_t ndims, size_t npeer)
{
    sg_edge_t *e = st->head;
    while (e) {
        sg_edge_t *next = e->next;
        sg_edge_free(e, ndims, npeer);
        e = next;
    }
    free(st->buckets);
    memset(st, 0, sizeof(*st));
}

sg_edge_t *sg_store_find(sg_store_t *st, const uint8_t key[SG_KEY_LEN])
{
    for (sg_edge_t *e = st->buckets[key_bucket(st, key)]; e; e = e->hnext)
        if (!memcmp(e->key, key, SG_KEY_LEN)) return e;
    return NULL;
}

void sg_store_insert(sg_store_t *st, sg_edge_t *e)
{
    size_t b = key_bucket(st, e->key);
    e->hnext = st->buckets[b];
    st->buckets[b] = e;
    e->prev = st->tail;
    e->next = NULL;
    if (st->tail)
        st->tail->next = e;
    else
        st->head = e;
    st->tail = e;
    st->len++;
}

void sg_store_remove(sg_store_t *st, sg_edge_t *e)
{
    sg_edge_t **pp = &st->buckets[key_bucket(st, e->key)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
    if (e->prev)
        e->prev->next = e->next;
    else
        st->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        st->tail = e->prev;
    e->prev = e->next = e->hnext = NULL;
    st->len--;
}

/* One allocation: the edge, then its dimension and peer value slots. */
sg_edge_t *sg_edge_new(const uint8_t key[SG_KEY_LEN], size_t ndims, size_t npeer)
{
    sg_edge_t *e = calloc(1, sizeof(*e) + (2 * ndims + npeer) * sizeof(char *));
    if (!e) return NULL;
    memcpy(e->key, key, SG_KEY_LEN);
    e->dims = (char **)(e + 1);
    e->peers = e->dims + 2 * ndims;
    return e;
}

void sg_edge_free(sg_edge_t *e, size_t ndims, size_t npeer)
{
    if (!e) return;
    for (size_t i = 0; i < 2 * ndims + npeer; i++)
        free(e->dims[i]);
    free(e->client);
    free(e->server);
    free(e);
}

sg_t *sg_new(const sg_opts_t *opts)
{
    sg_t *sg = calloc(1, sizeof(*sg));
    if (!sg) return NULL;
    sg->o = *opts;
    if (sg_store_init(&sg->store, opts->max_items) < 0) goto fail;
    sg->series = sg_series_new();
    if (!sg->series) goto fail;
    return sg;
fail:
    sg_free(sg);
    return NULL;
}

void sg_free(sg_t *sg)
{
    if (!sg) return;
    sg_store_fini(&sg->store, sg->o.ndims, sg->o.npeer);
    sg_series_free(sg->series, sg->o.ndims);
    free(sg);
}

static bool span_id_empty(const sg_edge_t *e)
{
    for (size_t i = 16; i < SG_KEY_LEN; i++)
        if (e->key[i]) return false;
    return true;
}

/* The value of the first peer attribute (in configuration order) the client span
 * had, or "unknown". */
static const char *peer_host(const sg_t *sg, const sg_edge_t *e)
{
    for (size_t i = 0; i < sg->o.npeer; i++)
        if (e->peers[i]) return e->peers[i];
    return "unknown";
}

/*
 * The collector's onExpire with its virtualNode gate on (beta, on by default):
 * when virtual_node_peer_attributes is not empty, an expired edge becomes a
 * "virtual_node" edge; a server span without a parent gets the client "user", and
 * a client span that no server answered gets the server named by its first peer
 * attribute (or "unknown"). Anything else expires unrecorded.
 */
void sg_expire(sg_t *sg, int64_t now_ns)
{
    sg_store_t *st = &sg->store;
    while (st->head && now_ns > st->head->expire_ns) {
        sg_edge_t *e = st->head;
        sg_store_remove(st, e);
        sg->stats.expired_edges++;
        if (sg->o.npeer > 0) {
            e->conn = SG_CONN_VIRTUAL;
            if (!sg_has(e->client) && span_id_empty(e)) {
                free(e->client);
                e->client = strdup("user");
                if (sg->o.virtual_node_extra_label) e->vlabel = SG_VNODE_CLIENT;
                if (sg_has(e->client) && sg_has(e->server) && sg_series_record(sg, e, now_ns) == 0)
                    sg->stats.virtual_edges++;
            }
            if (!sg_has(e->server)) {
                free(e->server);
                e->server = strdup(peer_host(sg, e));
                if (sg->o.virtual_node_extra_label) e->vlabel = SG_VNODE_SERVER;
                if (sg_has(e->client) && sg_has(e->server) && sg_series_record(sg, e, now_ns) == 0)
                    sg->stats.virtual_edges++;
            }
        }
        sg_edge_free(e, sg->o.ndims, sg->o.npeer);
    }
}

const sg_stats_t *sg_stats(const sg_t *sg)
{
    return &sg->stats;
}

size_t sg_store_len(const sg_t *sg)
{
    return sg->store.len;
}
