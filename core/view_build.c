/*
 * view_build.c - making a new batch out of items of other batches, still encoded.
 *
 * An item is copied with what encloses it: its resource and scope (and, for a
 * data point, its metric and the metric's Gauge/Sum/... without the other
 * points). Each of those is kept as a "header": every field of the message but
 * its children (a ResourceSpans without its ScopeSpans, a Metric without its
 * data points), copied once per distinct header. Items whose headers are the
 * same bytes as an earlier item's go into the same group, whichever batch they
 * came from, so regrouping by trace ID (tail sampling, load balancing) gives
 * one ResourceSpans per service rather than one per span.
 *
 * Everything is copied into the builder's own buffer when added (the source
 * batch may go right after), and written once more, with its length prefixes,
 * into the new batch's arena at finish. The builder's memory is malloc'd in
 * doubling steps: no allocation per item.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "settle.h"
#include "view_internal.h"

#define NONE UINT32_MAX

typedef struct bgroup_s {
    size_t hoff, hlen; /* header bytes in data */
    size_t hlen1;      /* metrics: bytes of hoff.. that are the Metric's; the rest its data's */
    uint64_t hash;
    uint32_t field;        /* metrics: the data field (5 gauge, 7 sum, ...) */
    uint32_t next;         /* next sibling group */
    uint32_t first, last;  /* children: groups, or items at the last level */
    size_t size, datasize; /* content sizes, computed at finish */
} bgroup_t;

typedef struct bitem_s {
    size_t off, len;
    uint32_t next;
} bitem_t;

/* The group the last item's resource (scope, metric data) went into: the next
 * item mostly has the same one, found again without copying its header (a walk
 * of all its children's tags). A node is known by its view's generation, which
 * no other view shares and a commit changes, and its bytes in that buffer. */
typedef struct bmemo_s {
    uint64_t gen;
    uint32_t cs, ce;
    uint32_t group;
} bmemo_t;

struct sy_view_builder_s {
    const char *origin;
    sy_signal_t signal;
    bool failed;
    uint8_t *data;
    size_t len, cap;
    bgroup_t *g;
    size_t ng, capg;
    bitem_t *it;
    size_t nit, capit;
    uint32_t first, last; /* resource groups */
    bmemo_t mres, mscope, mdata;
    /* The settle tokens of the batches items came from (settle.c), held by an
     * empty batch until the result takes them; the last sources, not to take
     * the same tokens again for every item. */
    sy_batch_t *settle;
    const sy_batch_t *settle_seen[4];
};

/* The result carries the tokens of every batch an item came from. */
static void settle_from(sy_view_builder_t *b, const sy_batch_t *src)
{
    if (!sy__settle_has(src)) return;
    for (size_t i = 0; i < 4; i++)
        if (b->settle_seen[i] == src) return;
    memmove(b->settle_seen + 1, b->settle_seen, 3 * sizeof(b->settle_seen[0]));
    b->settle_seen[0] = src;
    if (!b->settle && !(b->settle = sy__batch_new(b->signal, b->origin))) {
        b->failed = true;
        return;
    }
    if (sy__settle_inherit(b->settle, src) < 0) b->failed = true;
}

static bool grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q) return false;
    *p = q;
    *cap = c;
    return true;
}

sy_view_builder_t *sy__view_build(const char *origin, sy_signal_t signal)
{
    if (!sy__signal_request_descriptor(signal)) return NULL;
    sy_view_builder_t *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    b->origin = origin;
    b->signal = signal;
    b->first = b->last = NONE;
    /* Never NULL, so that offsets into it are always defined (headers may be empty). */
    if (!grow((void **)&b->data, &b->cap, 256, 1)) {
        free(b);
        return NULL;
    }
    return b;
}

void sy__view_build_abort(sy_view_builder_t *b)
{
    if (!b) return;
    sy__batch_release(b->settle);
    free(b->data);
    free(b->g);
    free(b->it);
    free(b);
}

/* Appends every field of n's content but the ones `skip` says to data. */
static bool copy_header(sy_view_builder_t *b, const sy_view_node_t *n, bool (*skip)(uint32_t))
{
    const uint8_t *buf = n->view->buf;
    sy__pbf_t f;
    size_t pos = n->cs, run = n->cs;
    int rc;
    for (;;) {
        size_t at = pos;
        rc = sy__pb_next(buf, &pos, n->ce, &f);
        if (rc <= 0 || skip(f.num)) {
            /* Flush the run of kept fields before this one. */
            size_t l = at - run;
            if (l) {
                if (!grow((void **)&b->data, &b->cap, b->len + l, 1)) return false;
                memcpy(b->data + b->len, buf + run, l);
                b->len += l;
            }
            run = pos;
            if (rc <= 0) return rc == 0;
        }
    }
}

static bool skip_children(uint32_t num)
{
    return num == 2;
}

static bool skip_points(uint32_t num)
{
    return num == 1;
}

static bool skip_data(uint32_t num)
{
    return num == 5 || num == 7 || num == 9 || num == 10 || num == 11;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* The group under the list (*first, *last) whose header is data[start, len):
 * found (and the copy dropped), or added. NONE on out of memory. */
static uint32_t group_of(sy_view_builder_t *b, uint32_t parent, size_t start, size_t hlen1,
                         uint32_t field)
{
    /* Indices, not pointers, into b->g: adding a group may move it. */
#define FIRST (parent == NONE ? b->first : b->g[parent].first)
#define LAST  (parent == NONE ? b->last : b->g[parent].last)
    size_t hlen = b->len - start;
    uint64_t h = hash_bytes(b->data + start, hlen, 0xcbf29ce484222325ull ^ field);
    /* The most recent group first: consecutive items mostly share it. */
    uint32_t last = LAST;
    if (last != NONE) {
        bgroup_t *g = &b->g[last];
        if (g->hash == h && g->hlen == hlen && g->hlen1 == hlen1 && g->field == field &&
            memcmp(b->data + g->hoff, b->data + start, hlen) == 0) {
            b->len = start;
            return last;
        }
    }
    for (uint32_t i = FIRST; i != NONE; i = b->g[i].next) {
        bgroup_t *g = &b->g[i];
        if (g->hash == h && g->hlen == hlen && g->hlen1 == hlen1 && g->field == field &&
            memcmp(b->data + g->hoff, b->data + start, hlen) == 0) {
            b->len = start;
            return i;
        }
    }
    if (!grow((void **)&b->g, &b->capg, b->ng + 1, sizeof(*b->g))) return NONE;
    uint32_t k = (uint32_t)b->ng++;
    b->g[k] = (bgroup_t){.hoff = start,
                         .hlen = hlen,
                         .hlen1 = hlen1,
                         .hash = h,
                         .field = field,
                         .next = NONE,
                         .first = NONE,
                         .last = NONE};
    if (last != NONE)
        b->g[last].next = k;
    else if (parent == NONE)
        b->first = k;
    else
        b->g[parent].first = k;
    if (parent == NONE)
        b->last = k;
    else
        b->g[parent].last = k;
    return k;
#undef FIRST
#undef LAST
}

static bool is_item(sy_signal_t signal, int kind)
{
    switch (signal) {
    case SY_SIGNAL_TRACES:
        return kind == SY_NODE_SPAN;
    case SY_SIGNAL_LOGS:
        return kind == SY_NODE_LOG;
    case SY_SIGNAL_METRICS:
        return kind >= SY_NODE_NUMBER_POINT && kind <= SY_NODE_SUMMARY_POINT;
    default:
        return false;
    }
}

static bool memo_hit(const bmemo_t *m, const sy_view_node_t *n)
{
    return m->gen == n->view->gen && m->cs == n->cs && m->ce == n->ce;
}

static void memo_set(bmemo_t *m, const sy_view_node_t *n, uint32_t group)
{
    *m = (bmemo_t){.gen = n->view->gen, .cs = n->cs, .ce = n->ce, .group = group};
}

/* The relation that lists a node of `kind` in its logical parent. */
static sy_view_rel_t rel_in_parent(int kind)
{
    switch (kind) {
    case SY_NODE_RESOURCE:
        return SY_VIEW_RESOURCES;
    case SY_NODE_SCOPE:
        return SY_VIEW_SCOPES;
    case SY_NODE_METRIC:
        return SY_VIEW_METRICS;
    default:
        return SY_VIEW_ITEMS;
    }
}

/* The same node in view m, a view of the bytes n's view's checkpoint was written
 * to: found by its place (the index in each relation from the request down),
 * which a checkpoint does not change (it holds no drop). */
static sy_view_node_t *same_in(sy_view_t *m, sy_view_node_t *n)
{
    sy_view_node_t *p = sy__view_parent(n);
    if (!p) return sy__view_root(m);
    sy_view_node_t *mp = same_in(m, p);
    if (!mp) return NULL;
    sy_view_rel_t rel = rel_in_parent(n->kind);
    for (size_t i = 0, c = sy__view_count(p, rel); i < c; i++)
        if (sy__view_at(p, rel, i) == n) return sy__view_at(mp, rel, i);
    return NULL;
}

int sy__view_build_add(sy_view_builder_t *b, const sy_view_node_t *item)
{
    if (!b || !item || b->failed) return b && b->failed ? SY_ENOMEM : SY_EINVAL;
    if (item->view->signal != b->signal || !is_item(b->signal, item->kind)) return SY_EINVAL;
    settle_from(b, item->view->batch);
    if (item->view->cp) {
        /* Committed edits of the shared view that its buffer does not hold: the
         * item is copied from the bytes they are written to. */
        sy_view_t *m = sy__view_written(item->view);
        if (!m) return SY_ENOMEM;
        if (!(item = same_in(m, (sy_view_node_t *)item))) return SY_EINVAL;
    }
    bool metrics = b->signal == SY_SIGNAL_METRICS;
    const sy_view_node_t *data = metrics ? item->parent : NULL;
    const sy_view_node_t *metric = metrics ? data->parent : NULL;
    const sy_view_node_t *scope = metrics ? metric->parent : item->parent;
    const sy_view_node_t *res = scope->parent;
    size_t start;
    uint32_t leaf;
    /* A node's bytes lie inside its parent's: a hit on the innermost level
     * implies the same parents, so their groups need no look-up either. */
    if (metrics && memo_hit(&b->mdata, data)) {
        leaf = b->mdata.group;
    } else if (!metrics && memo_hit(&b->mscope, scope)) {
        leaf = b->mscope.group;
    } else {
        uint32_t r = b->mres.group;
        if (!memo_hit(&b->mres, res)) {
            start = b->len;
            if (!copy_header(b, res, skip_children)) goto fail;
            r = group_of(b, NONE, start, 0, 0);
            if (r == NONE) goto fail;
            memo_set(&b->mres, res, r);
        }
        uint32_t s = b->mscope.group;
        if (!memo_hit(&b->mscope, scope)) {
            start = b->len;
            if (!copy_header(b, scope, skip_children)) goto fail;
            s = group_of(b, r, start, 0, 0);
            if (s == NONE) goto fail;
            memo_set(&b->mscope, scope, s);
        }
        leaf = s;
        if (metrics) {
            start = b->len;
            if (!copy_header(b, metric, skip_data)) goto fail;
            size_t hlen1 = b->len - start;
            if (!copy_header(b, data, skip_points)) goto fail;
            leaf = group_of(b, s, start, hlen1, data->field);
            if (leaf == NONE) goto fail;
            memo_set(&b->mdata, data, leaf);
        }
    }
    size_t l = item->ce - item->cs;
    if (!grow((void **)&b->data, &b->cap, b->len + l, 1) ||
        !grow((void **)&b->it, &b->capit, b->nit + 1, sizeof(*b->it)))
        goto fail;
    memcpy(b->data + b->len, item->view->buf + item->cs, l);
    uint32_t k = (uint32_t)b->nit++;
    b->it[k] = (bitem_t){.off = b->len, .len = l, .next = NONE};
    b->len += l;
    bgroup_t *g = &b->g[leaf];
    if (g->last != NONE)
        b->it[g->last].next = k;
    else
        g->first = k;
    g->last = k;
    return 0;
fail:
    /* Groups made before the failure stay (possibly empty; they encode fine),
     * but the builder refuses more and finish gives NULL. */
    b->failed = true;
    return SY_ENOMEM;
}

static size_t field_size(size_t content)
{
    return 1 + sy__varint_size(content) + content; /* every tag here is one byte */
}

static uint8_t *put_field(uint8_t *p, uint32_t field, size_t content)
{
    *p++ = (uint8_t)(field << 3 | 2);
    return p + sy__varint_put(p, content);
}

static uint8_t *put_bytes(uint8_t *p, const uint8_t *src, size_t n)
{
    if (n) memcpy(p, src, n);
    return p + n;
}

/* Content sizes of group k at `level` (0 resource, 1 scope, 2 metric). */
static size_t size_group(sy_view_builder_t *b, uint32_t k, int level, int leaf_level)
{
    bgroup_t *g = &b->g[k];
    size_t kids = 0;
    if (level == leaf_level) {
        for (uint32_t i = g->first; i != NONE; i = b->it[i].next)
            kids += field_size(b->it[i].len);
    } else {
        for (uint32_t i = g->first; i != NONE; i = b->g[i].next)
            kids += field_size(size_group(b, i, level + 1, leaf_level));
    }
    if (level == 2) {
        g->datasize = (g->hlen - g->hlen1) + kids;
        g->size = g->hlen1 + field_size(g->datasize);
    } else {
        g->size = g->hlen + kids;
    }
    return g->size;
}

static uint8_t *write_group(sy_view_builder_t *b, uint32_t k, int level, int leaf_level, uint8_t *p)
{
    bgroup_t *g = &b->g[k];
    if (level == 2) {
        p = put_bytes(p, b->data + g->hoff, g->hlen1);
        p = put_field(p, g->field, g->datasize);
        p = put_bytes(p, b->data + g->hoff + g->hlen1, g->hlen - g->hlen1);
    } else {
        p = put_bytes(p, b->data + g->hoff, g->hlen);
    }
    if (level == leaf_level) {
        /* Spans and log records are field 2 of their scope; points field 1 of
         * their Gauge/Sum/... */
        uint32_t field = level == 2 ? 1 : 2;
        for (uint32_t i = g->first; i != NONE; i = b->it[i].next) {
            p = put_field(p, field, b->it[i].len);
            p = put_bytes(p, b->data + b->it[i].off, b->it[i].len);
        }
    } else {
        for (uint32_t i = g->first; i != NONE; i = b->g[i].next) {
            p = put_field(p, 2, b->g[i].size); /* scopes of a resource, metrics of a scope */
            p = write_group(b, i, level + 1, leaf_level, p);
        }
    }
    return p;
}

sy_batch_t *sy__view_build_finish(sy_view_builder_t *b)
{
    if (!b) return NULL;
    sy_batch_t *out = NULL;
    if (b->failed) goto done;
    int leaf_level = b->signal == SY_SIGNAL_METRICS ? 2 : 1;
    size_t total = 0;
    for (uint32_t i = b->first; i != NONE; i = b->g[i].next)
        total += field_size(size_group(b, i, 0, leaf_level));
    out = sy__batch_new(b->signal, b->origin);
    if (!out) goto done;
    uint8_t *buf = sy__batch_alloc(out, total ? total : 1);
    if (!buf) goto fail;
    uint8_t *p = buf;
    for (uint32_t i = b->first; i != NONE; i = b->g[i].next) {
        p = put_field(p, 1, b->g[i].size);
        p = write_group(b, i, 0, leaf_level, p);
    }
    if ((size_t)(p - buf) != total) goto fail;
    if (sy__batch_set_encoded(out, buf, total, NULL, 0) < 0) goto fail;
    if (b->settle && sy__settle_inherit(out, b->settle) < 0) goto fail;
    goto done;
fail:
    sy__batch_release(out);
    out = NULL;
done:
    sy__view_build_abort(b);
    return out;
}
