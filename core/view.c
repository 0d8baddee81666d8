/*
 * view.c - reading a batch through the view: nodes, fields and attributes as
 * plain C values pointing into the encoded request, with no decoding.
 *
 * Every node is a byte range of the request; its children and its attributes
 * are indexed on first use by one walk of its tags (nodes and index arrays come
 * from the view's arena, one allocation per indexed node, none per read); an
 * attribute's key and value are located once, when its node is indexed. A
 * field is read by walking the tags of its node, which for OTLP's items is a
 * dozen or so fields, unless an edit recorded on the node decides it: reads see
 * the edits (read-your-writes), attributes through the list the commit will
 * write (sy__view_attrs_effective, view_edit.c).
 *
 * The bytes were validated (batch_set_encoded, or packed by protobuf-c), but
 * every read is bounds-checked all the same: a walk that meets bytes that do
 * not parse reports SY_EINVAL and never reads outside the buffer.
 */
#include "view.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_internal.h" /* batch->view: the shared view */
#include "log.h"
#include "view_internal.h"

/* ---- the wire ------------------------------------------------------------------ */

static size_t get_varint(const uint8_t *p, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t max = n < 10 ? n : 10;
    for (size_t i = 0; i < max; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (!(p[i] & 0x80)) {
            *out = v;
            return i + 1;
        }
    }
    return 0;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint32_t get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int sy__pb_next_any(const uint8_t *buf, size_t *pos, size_t end, sy__pbf_t *f)
{
    size_t off = *pos;
    if (off >= end) return 0;
    uint64_t key;
    size_t n = get_varint(buf + off, end - off, &key);
    if (!n || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return -1;
    f->start = off;
    off += n;
    f->num = (uint32_t)(key >> 3);
    f->wt = (int)(key & 7);
    f->vs = off;
    switch (f->wt) {
    case 0:
        n = get_varint(buf + off, end - off, &f->v);
        if (!n) return -1;
        off += n;
        break;
    case 1:
        if (end - off < 8) return -1;
        f->v = get_le64(buf + off);
        off += 8;
        break;
    case 5:
        if (end - off < 4) return -1;
        f->v = get_le32(buf + off);
        off += 4;
        break;
    case 2: {
        uint64_t l;
        n = get_varint(buf + off, end - off, &l);
        if (!n) return -1;
        off += n;
        if (l > end - off) return -1;
        f->vs = off;
        f->v = l;
        off += (size_t)l;
        break;
    }
    default:
        return -1;
    }
    f->ve = off;
    *pos = off;
    return 1;
}

int sy__pb_find(const uint8_t *buf, size_t s, size_t e, uint32_t num, sy__pbf_t *out)
{
    sy__pbf_t f;
    int found = 0, rc;
    while ((rc = sy__pb_next(buf, &s, e, &f)) > 0)
        if (f.num == num) {
            *out = f;
            found = 1;
        }
    return rc < 0 ? -1 : found;
}

size_t sy__varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t sy__varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* ---- the field table ------------------------------------------------------------ */

#define RO true
#define RW false
static const sy__fspec_t span_fields[] = {
    {SY_FIELD_NAME, 5, 0, SY__FT_STR, RW},
    {SY_FIELD_KIND, 6, 0, SY__FT_ENUM, RW},
    {SY_FIELD_TRACE_ID, 1, 0, SY__FT_BYTES, RW},
    {SY_FIELD_SPAN_ID, 2, 0, SY__FT_BYTES, RW},
    {SY_FIELD_PARENT_SPAN_ID, 4, 0, SY__FT_BYTES, RW},
    {SY_FIELD_TRACE_STATE, 3, 0, SY__FT_STR, RW},
    {SY_FIELD_FLAGS, 16, 0, SY__FT_FIXED32, RW},
    {SY_FIELD_STATUS_CODE, SY__F_SUB, 3, SY__FT_ENUM, RW},
    {SY_FIELD_STATUS_MESSAGE, SY__F_SUB, 2, SY__FT_STR, RW},
    {SY_FIELD_START_TIME, 7, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_END_TIME, 8, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_DROPPED_ATTRIBUTES, 10, 0, SY__FT_UVARINT, RW},
    {SY_FIELD_DROPPED_EVENTS, 12, 0, SY__FT_UVARINT, RW},
    {SY_FIELD_DROPPED_LINKS, 14, 0, SY__FT_UVARINT, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t event_fields[] = {
    {SY_FIELD_TIME, 1, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_NAME, 2, 0, SY__FT_STR, RW},
    {SY_FIELD_DROPPED_ATTRIBUTES, 4, 0, SY__FT_UVARINT, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t link_fields[] = {
    {SY_FIELD_TRACE_ID, 1, 0, SY__FT_BYTES, RW},
    {SY_FIELD_SPAN_ID, 2, 0, SY__FT_BYTES, RW},
    {SY_FIELD_TRACE_STATE, 3, 0, SY__FT_STR, RW},
    {SY_FIELD_DROPPED_ATTRIBUTES, 5, 0, SY__FT_UVARINT, RW},
    {SY_FIELD_FLAGS, 6, 0, SY__FT_FIXED32, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t resource_fields[] = {
    {SY_FIELD_SCHEMA_URL, 3, 0, SY__FT_STR, RW},
    {SY_FIELD_DROPPED_ATTRIBUTES, SY__F_SUB, 2, SY__FT_UVARINT, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t scope_fields[] = {
    {SY_FIELD_SCHEMA_URL, 3, 0, SY__FT_STR, RW},
    {SY_FIELD_SCOPE_NAME, SY__F_SUB, 1, SY__FT_STR, RW},
    {SY_FIELD_NAME, SY__F_SUB, 1, SY__FT_STR, RW},
    {SY_FIELD_SCOPE_VERSION, SY__F_SUB, 2, SY__FT_STR, RW},
    {SY_FIELD_DROPPED_ATTRIBUTES, SY__F_SUB, 4, SY__FT_UVARINT, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t metric_fields[] = {
    {SY_FIELD_NAME, 1, 0, SY__FT_STR, RW},
    {SY_FIELD_METRIC_NAME, 1, 0, SY__FT_STR, RW},
    {SY_FIELD_METRIC_DESCRIPTION, 2, 0, SY__FT_STR, RW},
    {SY_FIELD_METRIC_UNIT, 3, 0, SY__FT_STR, RW},
    {SY_FIELD_METRIC_TYPE, 0, 0, SY__FT_MTYPE, RO},
    {SY_FIELD_TEMPORALITY, SY__F_DATA, 2, SY__FT_ENUM, RW},
    {SY_FIELD_MONOTONIC, SY__F_DATA, 3, SY__FT_BOOL, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t number_fields[] = {
    {SY_FIELD_START_TIME, 2, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_TIME, 3, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_VALUE, 4, 6, SY__FT_NUMVAL, RW},
    {SY_FIELD_FLAGS, 8, 0, SY__FT_UVARINT, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t histogram_fields[] = {
    {SY_FIELD_START_TIME, 2, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_TIME, 3, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_COUNT, 4, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_SUM, 5, 0, SY__FT_DOUBLE, RW},
    {SY_FIELD_BUCKET_COUNTS, 6, 0, SY__FT_ARR_FIXED64, RO},
    {SY_FIELD_EXPLICIT_BOUNDS, 7, 0, SY__FT_ARR_DOUBLE, RO},
    {SY_FIELD_FLAGS, 10, 0, SY__FT_UVARINT, RW},
    {SY_FIELD_MIN, 11, 0, SY__FT_DOUBLE, RW},
    {SY_FIELD_MAX, 12, 0, SY__FT_DOUBLE, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t exphist_fields[] = {
    {SY_FIELD_START_TIME, 2, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_TIME, 3, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_COUNT, 4, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_SUM, 5, 0, SY__FT_DOUBLE, RW},
    {SY_FIELD_SCALE, 6, 0, SY__FT_SINT32, RW},
    {SY_FIELD_ZERO_COUNT, 7, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_POSITIVE_OFFSET, 8, 1, SY__FT_SINT32, RO},
    {SY_FIELD_POSITIVE_BUCKETS, 8, 2, SY__FT_ARR_UVARINT, RO},
    {SY_FIELD_NEGATIVE_OFFSET, 9, 1, SY__FT_SINT32, RO},
    {SY_FIELD_NEGATIVE_BUCKETS, 9, 2, SY__FT_ARR_UVARINT, RO},
    {SY_FIELD_FLAGS, 10, 0, SY__FT_UVARINT, RW},
    {SY_FIELD_MIN, 12, 0, SY__FT_DOUBLE, RW},
    {SY_FIELD_MAX, 13, 0, SY__FT_DOUBLE, RW},
    {SY_FIELD_ZERO_THRESHOLD, 14, 0, SY__FT_DOUBLE, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t summary_fields[] = {
    {SY_FIELD_START_TIME, 2, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_TIME, 3, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_COUNT, 4, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_SUM, 5, 0, SY__FT_DOUBLE, RW},
    {SY_FIELD_QUANTILES, 6, 0, SY__FT_QUANT, RO},
    {SY_FIELD_FLAGS, 8, 0, SY__FT_UVARINT, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t exemplar_fields[] = {
    {SY_FIELD_TIME, 2, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_VALUE, 3, 6, SY__FT_NUMVAL, RW},
    {SY_FIELD_SPAN_ID, 4, 0, SY__FT_BYTES, RW},
    {SY_FIELD_TRACE_ID, 5, 0, SY__FT_BYTES, RW},
    {0, 0, 0, 0, 0},
};
static const sy__fspec_t log_fields[] = {
    {SY_FIELD_TIME, 1, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_OBSERVED_TIME, 11, 0, SY__FT_FIXED64, RW},
    {SY_FIELD_SEVERITY_NUMBER, 2, 0, SY__FT_ENUM, RW},
    {SY_FIELD_SEVERITY_TEXT, 3, 0, SY__FT_STR, RW},
    {SY_FIELD_BODY, 5, 0, SY__FT_ANY, RW},
    {SY_FIELD_DROPPED_ATTRIBUTES, 7, 0, SY__FT_UVARINT, RW},
    {SY_FIELD_FLAGS, 8, 0, SY__FT_FIXED32, RW},
    {SY_FIELD_TRACE_ID, 9, 0, SY__FT_BYTES, RW},
    {SY_FIELD_SPAN_ID, 10, 0, SY__FT_BYTES, RW},
    {SY_FIELD_EVENT_NAME, 12, 0, SY__FT_STR, RW},
    {SY_FIELD_NAME, 12, 0, SY__FT_STR, RW},
    {0, 0, 0, 0, 0},
};
#undef RO
#undef RW

const sy__fspec_t *sy__view_spec(int kind, sy_field_t field)
{
    const sy__fspec_t *t;
    switch (kind) {
    case SY_NODE_RESOURCE:
        t = resource_fields;
        break;
    case SY_NODE_SCOPE:
        t = scope_fields;
        break;
    case SY_NODE_SPAN:
        t = span_fields;
        break;
    case SY_NODE_EVENT:
        t = event_fields;
        break;
    case SY_NODE_LINK:
        t = link_fields;
        break;
    case SY_NODE_METRIC:
        t = metric_fields;
        break;
    case SY_NODE_NUMBER_POINT:
        t = number_fields;
        break;
    case SY_NODE_HISTOGRAM_POINT:
        t = histogram_fields;
        break;
    case SY_NODE_EXP_HISTOGRAM_POINT:
        t = exphist_fields;
        break;
    case SY_NODE_SUMMARY_POINT:
        t = summary_fields;
        break;
    case SY_NODE_EXEMPLAR:
        t = exemplar_fields;
        break;
    case SY_NODE_LOG:
        t = log_fields;
        break;
    default:
        return NULL;
    }
    for (; t->field; t++)
        if (t->field == (uint8_t)field) return t;
    return NULL;
}

/* ---- nodes ---------------------------------------------------------------------- */

void *sy__view_alloc(sy_view_t *v, size_t size)
{
    void *p = sy__arena_alloc(&v->arena, size ? size : 1);
    if (p) memset(p, 0, size);
    return p;
}

static void node_init(sy_view_node_t *n, sy_view_t *v, sy_view_node_t *parent, int kind,
                      const sy__pbf_t *f)
{
    memset(n, 0, sizeof(*n));
    n->view = v;
    n->parent = parent;
    n->kind = (uint8_t)kind;
    n->ops_tail = &n->ops;
    if (f) {
        n->fstart = (uint32_t)f->start;
        n->cs = (uint32_t)f->vs;
        n->ce = (uint32_t)f->ve;
        n->field = f->num;
        /* The tag as written (an encoder may pad it); a virtual node has none. */
        size_t i = f->start;
        if (f->vs > f->start)
            while (i < f->vs && (v->buf[i] & 0x80))
                i++;
        n->taglen = (uint8_t)(f->vs > f->start ? i - f->start + 1 : 0);
    }
}

sy_view_node_t *sy__view_node_new(sy_view_t *v, sy_view_node_t *parent, int kind,
                                  const sy__pbf_t *f)
{
    sy_view_node_t *n = sy__arena_alloc(&v->arena, sizeof(*n));
    if (n) node_init(n, v, parent, kind, f);
    return n;
}

static uint32_t sub_field(int kind)
{
    switch (kind) {
    case SY_NODE_RESOURCE:
    case SY_NODE_SCOPE:
        return 1;
    case SY_NODE_SPAN:
        return 15;
    default:
        return 0;
    }
}

static bool is_data_field(uint32_t num)
{
    return num == 5 || num == 7 || num == 9 || num == 10 || num == 11;
}

static int walk_holder(sy_view_node_t *n);

sy_view_node_t *sy__view_sub(sy_view_node_t *n, bool create)
{
    sy_view_t *v = n->view;
    /* A resource's or scope's message is found by the walk that indexes its
     * children, the one walk of their tags both need. */
    if (!(n->flags & SY__VN_SUB) && (n->kind == SY_NODE_RESOURCE || n->kind == SY_NODE_SCOPE))
        (void)walk_holder(n);
    if (!(n->flags & SY__VN_SUB)) {
        n->flags |= SY__VN_SUB;
        sy__pbf_t f, last;
        bool found = false;
        size_t pos = n->cs;
        uint32_t want = sub_field(n->kind);
        while (sy__pb_next(v->buf, &pos, n->ce, &f) > 0) {
            bool hit = n->kind == SY_NODE_METRIC ? is_data_field(f.num) : want && f.num == want;
            if (hit && f.wt == 2) {
                last = f;
                found = true;
            }
        }
        int kind = n->kind == SY_NODE_RESOURCE ? SY__VK_RESOURCE_MSG
                   : n->kind == SY_NODE_SCOPE  ? SY__VK_SCOPE_MSG
                   : n->kind == SY_NODE_SPAN   ? SY__VK_STATUS
                                               : SY__VK_DATA;
        if (found) n->sub = sy__view_node_new(v, n, kind, &last);
        if (found && !n->sub) n->flags &= (uint8_t)~SY__VN_SUB; /* out of memory: retry */
    }
    if (n->sub || !create || n->kind == SY_NODE_METRIC || !sub_field(n->kind)) return n->sub;
    /* A virtual node at the end of n's content, written at commit if edited. */
    sy__pbf_t f = {.num = sub_field(n->kind), .wt = 2, .start = n->ce, .vs = n->ce, .ve = n->ce};
    int kind = n->kind == SY_NODE_RESOURCE ? SY__VK_RESOURCE_MSG
               : n->kind == SY_NODE_SCOPE  ? SY__VK_SCOPE_MSG
                                           : SY__VK_STATUS;
    n->sub = sy__view_node_new(v, n, kind, &f);
    if (n->sub) n->sub->flags |= SY__VN_VIRTUAL;
    return n->sub;
}

sy_view_node_t *sy__view_parent(const sy_view_node_t *n)
{
    sy_view_node_t *p = n->parent;
    while (p && p->kind >= SY__VK_RESOURCE_MSG)
        p = p->parent;
    return p;
}

static uint32_t attr_field(int kind)
{
    switch (kind) {
    case SY_NODE_SPAN:
        return 9;
    case SY_NODE_EVENT:
        return 3;
    case SY_NODE_LINK:
        return 4;
    case SY_NODE_METRIC:
        return 12;
    case SY_NODE_NUMBER_POINT:
        return 7;
    case SY_NODE_HISTOGRAM_POINT:
        return 9;
    case SY_NODE_EXP_HISTOGRAM_POINT:
        return 1;
    case SY_NODE_SUMMARY_POINT:
        return 7;
    case SY_NODE_EXEMPLAR:
        return 7;
    case SY_NODE_LOG:
        return 6;
    default:
        return 0;
    }
}

sy_view_node_t *sy__view_attr_host(sy_view_node_t *n, bool create, uint32_t *field)
{
    if (n->kind == SY_NODE_RESOURCE || n->kind == SY_NODE_SCOPE) {
        *field = n->kind == SY_NODE_RESOURCE ? 1 : 3;
        return sy__view_sub(n, create);
    }
    *field = attr_field(n->kind);
    return *field ? n : NULL;
}

/* What every encoder writes: the key (field 1) then the value (field 2), each
 * under 128 bytes. False when p is laid out otherwise. */
static inline bool attr_parse_usual(const uint8_t *p, size_t len, sy__vattr_t *a)
{
    if (len >= 2 && p[0] == 0x0a && p[1] < 0x80 && (size_t)p[1] + 2 <= len) {
        size_t k = p[1], at = 2 + k;
        if (at == len ||
            (len - at >= 2 && p[at] == 0x12 && p[at + 1] < 0x80 && at + 2 + p[at + 1] == len)) {
            a->bad = false;
            a->key = p + 2;
            a->keylen = (uint32_t)k;
            a->val = at == len ? NULL : p + at + 2;
            a->vallen = at == len ? 0 : p[at + 1];
            return true;
        }
    }
    return false;
}

void sy__view_attr_parse(const uint8_t *p, size_t len, sy__vattr_t *a)
{
    /* A key or value given twice reads as its last occurrence, as protobuf-c
     * decodes it; a key that is absent (or of another wire type) reads as "". */
    if (attr_parse_usual(p, len, a)) return;
    a->bad = false;
    sy__pbf_t f;
    size_t pos = 0;
    int rc;
    a->key = p;
    a->keylen = 0;
    a->val = NULL;
    a->vallen = 0;
    while ((rc = sy__pb_next(p, &pos, len, &f)) > 0) {
        if (f.wt != 2) continue;
        if (f.num == 1) {
            a->key = p + f.vs;
            a->keylen = (uint32_t)(f.ve - f.vs);
        } else if (f.num == 2) {
            a->val = p + f.vs;
            a->vallen = (uint32_t)(f.ve - f.vs);
        }
    }
    a->bad = rc < 0;
}

/* Indexes h's attributes (field `field`, KeyValue messages): one walk of h's
 * tags that parses each KeyValue's key and finds its value, so that reads by
 * index or key, and edits, compare keys without parsing again. */
int sy__view_index_attrs(sy_view_node_t *h, uint32_t field)
{
    if (h->flags & SY__VN_ATTRS) return 0;
    const uint8_t *buf = h->view->buf;
    sy__pbf_t f;
    /* One walk into a stack array holds most nodes' attributes; more than it
     * holds are counted and collected by a second walk. */
    enum { LOCAL = 32 };
    sy__vattr_t local[LOCAL];
    size_t pos = h->cs, end = h->ce;
    uint32_t n = 0, events = 0, links = 0;
    int rc = 0;
    for (;;) {
        size_t start = pos, vs, ve;
        uint32_t num;
        /* The fields of a span, a log or a data point in the usual encoding (a
         * one-byte tag; a length under 128, a one-byte varint or a fixed number)
         * are stepped over here in registers; the rest as sy__pb_next() reads them. */
        uint8_t tag = pos + 1 < end ? buf[pos] : 0;
        if (tag >= 8 && tag < 0x80 && (tag & 7) == 2 && buf[pos + 1] < 0x80 &&
            buf[pos + 1] <= end - pos - 2) {
            num = tag >> 3;
            vs = pos + 2;
            ve = vs + buf[pos + 1];
            pos = ve;
        } else if (tag >= 8 && tag < 0x80 && (tag & 7) == 0 && buf[pos + 1] < 0x80) {
            pos += 2;
            continue;
        } else if (tag >= 8 && tag < 0x80 && (tag & 7) == 1 && end - pos >= 9) {
            pos += 9;
            continue;
        } else {
            if ((rc = sy__pb_next(buf, &pos, end, &f)) <= 0) break;
            if (f.wt != 2) continue;
            num = f.num;
            start = f.start;
            vs = f.vs;
            ve = f.ve;
        }
        if (num == field) {
            if (n < LOCAL) {
                if (!attr_parse_usual(buf + vs, ve - vs, &local[n]))
                    sy__view_attr_parse(buf + vs, ve - vs, &local[n]);
                local[n].start = (uint32_t)start;
                local[n].end = (uint32_t)ve;
            }
            n++;
        }
        events += num == 11;
        links += num == 13;
    }
    if (rc < 0) return SY_EINVAL;
    /* A span's events (11) and links (13) were walked past as well: when it has
     * none, they are indexed already (most spans, and a second walk saved). */
    if (h->kind == SY_NODE_SPAN) {
        if (!events) h->indexed[0] = true;
        if (!links) h->indexed[1] = true;
    }
    sy__vattr_t *a = n ? sy__arena_alloc(&h->view->arena, n * sizeof(*a)) : NULL;
    if (n && !a) return SY_ENOMEM;
    if (n <= LOCAL) {
        if (n) memcpy(a, local, n * sizeof(*a));
    } else {
        pos = h->cs;
        n = 0;
        while (sy__pb_next(buf, &pos, h->ce, &f) > 0)
            if (f.num == field && f.wt == 2) {
                sy__view_attr_parse(buf + f.vs, f.ve - f.vs, &a[n]);
                a[n].start = (uint32_t)f.start;
                a[n].end = (uint32_t)f.ve;
                n++;
            }
    }
    h->attrs = a;
    h->nattrs = n;
    h->flags |= SY__VN_ATTRS;
    return 0;
}

/* Which slot of kids, and which kind of child, a relation is on node n; the
 * field number the children have in the content of `holder`. */
typedef struct rel_s {
    int slot;
    int kind;
    uint32_t field;
    sy_view_node_t *holder;
} rel_t;

static int point_kind(uint32_t data_field)
{
    switch (data_field) {
    case 5:
    case 7:
        return SY_NODE_NUMBER_POINT;
    case 9:
        return SY_NODE_HISTOGRAM_POINT;
    case 10:
        return SY_NODE_EXP_HISTOGRAM_POINT;
    case 11:
        return SY_NODE_SUMMARY_POINT;
    default:
        return 0;
    }
}

static bool rel_of(sy_view_node_t *n, sy_view_rel_t rel, rel_t *r)
{
    r->holder = n;
    switch (n->kind) {
    case SY_NODE_REQUEST:
        *r = (rel_t){0, SY_NODE_RESOURCE, 1, n};
        return rel == SY_VIEW_RESOURCES;
    case SY_NODE_RESOURCE:
        *r = (rel_t){0, SY_NODE_SCOPE, 2, n};
        return rel == SY_VIEW_SCOPES;
    case SY_NODE_SCOPE:
        if (n->view->signal == SY_SIGNAL_METRICS) {
            *r = (rel_t){rel == SY_VIEW_ITEMS ? 1 : 0, SY_NODE_METRIC, 2, n};
            return rel == SY_VIEW_METRICS || rel == SY_VIEW_ITEMS;
        }
        *r = (rel_t){0, n->view->signal == SY_SIGNAL_TRACES ? SY_NODE_SPAN : SY_NODE_LOG, 2, n};
        return rel == SY_VIEW_ITEMS;
    case SY_NODE_SPAN:
        if (rel == SY_VIEW_EVENTS) *r = (rel_t){0, SY_NODE_EVENT, 11, n};
        if (rel == SY_VIEW_LINKS) *r = (rel_t){1, SY_NODE_LINK, 13, n};
        return rel == SY_VIEW_EVENTS || rel == SY_VIEW_LINKS;
    case SY_NODE_METRIC: {
        if (rel != SY_VIEW_ITEMS) return false;
        sy_view_node_t *d = sy__view_sub(n, false);
        *r = (rel_t){0, d ? point_kind(d->field) : 0, 1, d};
        return true;
    }
    case SY_NODE_NUMBER_POINT:
        *r = (rel_t){0, SY_NODE_EXEMPLAR, 5, n};
        return rel == SY_VIEW_EXEMPLARS;
    case SY_NODE_HISTOGRAM_POINT:
        *r = (rel_t){0, SY_NODE_EXEMPLAR, 8, n};
        return rel == SY_VIEW_EXEMPLARS;
    case SY_NODE_EXP_HISTOGRAM_POINT:
        *r = (rel_t){0, SY_NODE_EXEMPLAR, 11, n};
        return rel == SY_VIEW_EXEMPLARS;
    default:
        return false;
    }
}

/* One walk of a resource's or scope's tags that finds its message (the last
 * field 1: Resource, InstrumentationScope) and, unless indexed already, makes
 * its children (field 2: scopes; spans, logs or metrics) in order. A scope of
 * 512 spans is 512 tags, each on a cache line of its own: walked once instead of
 * three times (the message lookup, counting, making). */
/* How far ahead of a walk of children its lines are prefetched. */
#define PREFETCH_AHEAD 4096

static int walk_holder(sy_view_node_t *n)
{
    sy_view_t *v = n->view;
    rel_t r = {0};
    bool need_kids = !n->indexed[0], need_sub = !(n->flags & SY__VN_SUB);
    if (!rel_of(n,
                n->kind == SY_NODE_RESOURCE      ? SY_VIEW_SCOPES
                : v->signal == SY_SIGNAL_METRICS ? SY_VIEW_METRICS
                                                 : SY_VIEW_ITEMS,
                &r) ||
        r.slot != 0 || r.field != 2)
        return SY_ENOTSUP;
    enum { LOCAL = 64 };
    uint32_t local[LOCAL][3], (*at)[3] = local; /* start, vs, ve of each child */
    size_t cap = LOCAL, count = 0;
    sy__pbf_t f, last;
    bool found = false;
    size_t pos = n->cs;
    /* Each child's tag is on a cache line of its own, found only once the
     * previous child's length is read: a chain of misses when the request has
     * left the cache (it waited in a queue). The lines ahead of the walk are
     * asked for in order, so the tags, and the children the caller reads next,
     * arrive while the walk goes on. */
    size_t ahead = pos;
    int rc;
    while ((rc = sy__pb_next(v->buf, &pos, n->ce, &f)) > 0) {
        for (size_t want = pos + PREFETCH_AHEAD < n->ce ? pos + PREFETCH_AHEAD : n->ce;
             ahead < want; ahead += 64)
            __builtin_prefetch(v->buf + ahead);
        if (f.wt != 2) continue;
        if (f.num == 1) {
            last = f;
            found = true;
        } else if (f.num == 2 && need_kids) {
            if (count == cap) {
                uint32_t(*more)[3] = sy__arena_alloc(&v->arena, 2 * cap * sizeof(*more));
                if (!more) return SY_ENOMEM;
                memcpy(more, at, count * sizeof(*more));
                at = more;
                cap *= 2;
            }
            at[count][0] = (uint32_t)f.start;
            at[count][1] = (uint32_t)f.vs;
            at[count][2] = (uint32_t)f.ve;
            count++;
        }
    }
    if (need_sub) {
        /* As the lookup alone: what was found before any bad bytes. */
        n->flags |= SY__VN_SUB;
        int kind = n->kind == SY_NODE_RESOURCE ? SY__VK_RESOURCE_MSG : SY__VK_SCOPE_MSG;
        if (found) n->sub = sy__view_node_new(v, n, kind, &last);
        if (found && !n->sub) n->flags &= (uint8_t)~SY__VN_SUB; /* out of memory: retry */
    }
    if (!need_kids) return 0;
    if (rc < 0) return SY_EINVAL;
    sy_view_node_t **a = NULL;
    if (count) {
        a = sy__arena_alloc(&v->arena, count * sizeof(*a));
        sy_view_node_t *block = sy__arena_alloc(&v->arena, count * sizeof(*block));
        if (!a || !block) return SY_ENOMEM;
        for (size_t k = 0; k < count; k++) {
            sy__pbf_t kf = {.num = 2, .wt = 2, .start = at[k][0], .vs = at[k][1], .ve = at[k][2]};
            kf.v = kf.ve - kf.vs;
            node_init(&block[k], v, n, r.kind, &kf);
            a[k] = &block[k];
        }
    }
    n->kids[0] = a;
    n->nkids[0] = (uint32_t)count;
    n->indexed[0] = true;
    return 0;
}

static int index_kids(sy_view_node_t *n, sy_view_rel_t rel)
{
    rel_t r = {0};
    if (!rel_of(n, rel, &r)) return SY_ENOTSUP;
    if (n->indexed[r.slot]) return 0;
    sy_view_t *v = n->view;
    if (r.slot == 0 && (n->kind == SY_NODE_RESOURCE || n->kind == SY_NODE_SCOPE))
        return walk_holder(n);
    if (r.slot == 1 && n->kind == SY_NODE_SCOPE) {
        /* The data points of every metric of the scope, in order. */
        int rc = index_kids(n, SY_VIEW_METRICS);
        if (rc < 0) return rc;
        size_t total = 0;
        for (uint32_t i = 0; i < n->nkids[0]; i++) {
            if ((rc = index_kids(n->kids[0][i], SY_VIEW_ITEMS)) < 0) return rc;
            total += n->kids[0][i]->nkids[0];
        }
        sy_view_node_t **a = total ? sy__arena_alloc(&v->arena, total * sizeof(*a)) : NULL;
        if (total && !a) return SY_ENOMEM;
        size_t k = 0;
        for (uint32_t i = 0; i < n->nkids[0]; i++)
            for (uint32_t j = 0; j < n->kids[0][i]->nkids[0]; j++)
                a[k++] = n->kids[0][i]->kids[0][j];
        n->kids[1] = a;
        n->nkids[1] = (uint32_t)total;
        n->indexed[1] = true;
        return 0;
    }
    uint32_t count = 0;
    sy__pbf_t f;
    if (r.holder && r.kind) {
        size_t pos = r.holder->cs;
        int rc;
        while ((rc = sy__pb_next(v->buf, &pos, r.holder->ce, &f)) > 0)
            if (f.num == r.field && f.wt == 2) count++;
        if (rc < 0) return SY_EINVAL;
    }
    sy_view_node_t **a = NULL;
    if (count) {
        a = sy__arena_alloc(&v->arena, count * sizeof(*a));
        sy_view_node_t *block = sy__arena_alloc(&v->arena, count * sizeof(*block));
        if (!a || !block) return SY_ENOMEM;
        size_t pos = r.holder->cs;
        uint32_t k = 0;
        while (sy__pb_next(v->buf, &pos, r.holder->ce, &f) > 0)
            if (f.num == r.field && f.wt == 2) {
                node_init(&block[k], v, r.holder, r.kind, &f);
                a[k] = &block[k];
                k++;
            }
    }
    n->kids[r.slot] = a;
    n->nkids[r.slot] = count;
    n->indexed[r.slot] = true;
    return 0;
}

/* ---- values ---------------------------------------------------------------------- */

static const char empty_str[1] = "";

static void value_empty(sy_value_t *out)
{
    memset(out, 0, sizeof(*out));
    out->type = SY_VALUE_EMPTY;
    out->str = empty_str;
}

/* Counts the entries of an ARRAY/MAP value (sets out->len). */
static int value_count(sy_value_t *out)
{
    sy_value_iter_t it = {.value = out};
    size_t n = 0;
    int rc;
    sy_value_t k, val;
    while ((rc = sy__view_value_next(&it, &k, &val)) > 0)
        n++;
    out->len = n;
    return rc < 0 ? SY_EINVAL : 0;
}

static void value_container(sy_value_t *out, sy_value_type_t type, const uint8_t *p, size_t len,
                            uint32_t kind)
{
    value_empty(out);
    out->type = type;
    out->bytes = p;
    out->priv = p;
    out->priv_len = (uint32_t)len;
    out->priv_kind = kind;
}

int sy__view_parse_any(const uint8_t *p, size_t len, sy_value_t *out)
{
    value_empty(out);
    /* The usual value: one string under 128 bytes, or one small int. */
    if (len >= 2 && p[1] < 0x80) {
        if (p[0] == 0x0a && (size_t)p[1] + 2 == len) {
            out->type = SY_VALUE_STRING;
            out->str = (const char *)p + 2;
            out->len = p[1];
            return 0;
        }
        if (p[0] == 0x18 && len == 2) {
            out->type = SY_VALUE_INT;
            out->i = p[1];
            return 0;
        }
    }
    /* One int of up to 9 varint bytes (63 bits: no overflow to handle), such as
     * a port, a size, a thread or row count. */
    if (len >= 3 && len <= 10 && p[0] == 0x18 && p[len - 1] < 0x80) {
        uint64_t x = 0;
        size_t i = 1;
        for (; i < len - 1 && p[i] >= 0x80; i++)
            x |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
        if (i == len - 1) {
            out->type = SY_VALUE_INT;
            out->i = (int64_t)(x | (uint64_t)p[i] << (7 * (i - 1)));
            return 0;
        }
    }
    sy__pbf_t f;
    size_t pos = 0;
    int rc;
    while ((rc = sy__pb_next(p, &pos, len, &f)) > 0) {
        switch (f.num) {
        case 1:
            if (f.wt != 2) break;
            value_empty(out);
            out->type = SY_VALUE_STRING;
            out->str = (const char *)p + f.vs;
            out->len = f.ve - f.vs;
            break;
        case 2:
            if (f.wt != 0) break;
            value_empty(out);
            out->type = SY_VALUE_BOOL;
            out->b = f.v != 0;
            out->i = out->b;
            break;
        case 3:
            if (f.wt != 0) break;
            value_empty(out);
            out->type = SY_VALUE_INT;
            out->i = (int64_t)f.v;
            break;
        case 4: {
            if (f.wt != 1) break;
            value_empty(out);
            out->type = SY_VALUE_DOUBLE;
            memcpy(&out->d, &f.v, sizeof(out->d));
            break;
        }
        case 5:
        case 6:
            if (f.wt != 2) break;
            value_container(out, f.num == 5 ? SY_VALUE_ARRAY : SY_VALUE_MAP, p + f.vs, f.ve - f.vs,
                            f.num == 5 ? SY__PK_ANYARRAY : SY__PK_KVLIST);
            break;
        case 7:
            if (f.wt != 2) break;
            value_empty(out);
            out->type = SY_VALUE_BYTES;
            out->bytes = p + f.vs;
            out->len = f.ve - f.vs;
            break;
        default:
            break;
        }
    }
    if (rc < 0) return SY_EINVAL;
    if (out->type == SY_VALUE_ARRAY || out->type == SY_VALUE_MAP) return value_count(out);
    return 0;
}

int sy__view_parse_kv(const uint8_t *p, size_t len, sy_value_t *key, sy_value_t *val)
{
    sy__pbf_t f, kf = {0}, vf = {0};
    bool hk = false, hv = false;
    size_t pos = 0;
    int rc;
    while ((rc = sy__pb_next(p, &pos, len, &f)) > 0) {
        if (f.num == 1 && f.wt == 2) kf = f, hk = true;
        if (f.num == 2 && f.wt == 2) vf = f, hv = true;
    }
    if (rc < 0) return SY_EINVAL;
    if (key) {
        value_empty(key);
        key->type = SY_VALUE_STRING;
        if (hk) {
            key->str = (const char *)p + kf.vs;
            key->len = kf.ve - kf.vs;
        }
    }
    if (!val) return 0;
    if (!hv) {
        value_empty(val);
        return 0;
    }
    return sy__view_parse_any(p + vf.vs, vf.ve - vf.vs, val);
}

int sy__view_value_next(sy_value_iter_t *it, sy_value_t *key, sy_value_t *val)
{
    const sy_value_t *c = it->value;
    if (!c || (c->type != SY_VALUE_ARRAY && c->type != SY_VALUE_MAP) || !c->priv) return 0;
    const uint8_t *p = c->priv;
    size_t len = c->priv_len;
    uint32_t pk = c->priv_kind & 0xff, field = c->priv_kind >> 8;
    sy__pbf_t f;
    int rc;
    sy_value_t scratch;
    if (!val) val = &scratch;
    for (;;) {
        if (it->sub) {            /* inside a packed run [sub, packed end) of field at pos */
            size_t end = it->pos; /* pos is the end of the packed run while sub != 0 */
            size_t s = it->sub;
            value_empty(val);
            if (key) value_empty(key); /* an ARRAY's entries have no key */
            if (pk == SY__PK_UVARINT) {
                uint64_t x;
                size_t n = get_varint(p + s, end - s, &x);
                if (!n) return SY_EINVAL;
                val->type = SY_VALUE_INT;
                val->i = (int64_t)x;
                s += n;
            } else {
                if (end - s < 8) return SY_EINVAL;
                uint64_t x = get_le64(p + s);
                if (pk == SY__PK_DOUBLE) {
                    val->type = SY_VALUE_DOUBLE;
                    memcpy(&val->d, &x, sizeof(val->d));
                } else {
                    val->type = SY_VALUE_INT;
                    val->i = (int64_t)x;
                }
                s += 8;
            }
            it->sub = s < end ? s : 0;
            it->index++;
            return 1;
        }
        if ((rc = sy__pb_next(p, &it->pos, len, &f)) <= 0) return rc < 0 ? SY_EINVAL : 0;
        if (pk == SY__PK_ANYARRAY || pk == SY__PK_KVLIST || pk == SY__PK_QUANT) {
            uint32_t want = pk == SY__PK_QUANT ? field : 1;
            if (f.num != want || f.wt != 2) continue;
            it->index++;
            if (pk == SY__PK_ANYARRAY) {
                if (key) value_empty(key);
                return sy__view_parse_any(p + f.vs, f.ve - f.vs, val) < 0 ? SY_EINVAL : 1;
            }
            if (pk == SY__PK_KVLIST)
                return sy__view_parse_kv(p + f.vs, f.ve - f.vs, key, val) < 0 ? SY_EINVAL : 1;
            /* ValueAtQuantile: quantile (1) and value (2), both doubles. */
            sy__pbf_t q;
            size_t qp = f.vs;
            if (key) {
                value_empty(key);
                key->type = SY_VALUE_DOUBLE;
            }
            value_empty(val);
            val->type = SY_VALUE_DOUBLE;
            while ((rc = sy__pb_next(p, &qp, f.ve, &q)) > 0) {
                if (q.wt != 1) continue;
                if (q.num == 1 && key) memcpy(&key->d, &q.v, sizeof(key->d));
                if (q.num == 2) memcpy(&val->d, &q.v, sizeof(val->d));
            }
            return rc < 0 ? SY_EINVAL : 1;
        }
        if (f.num != field) continue;
        if (f.wt == 2) { /* packed */
            if (f.ve == f.vs) continue;
            it->sub = f.vs;
            /* pos already points past the run: it doubles as the run's end. */
            if (it->pos != f.ve) return SY_EINVAL;
            continue;
        }
        value_empty(val);
        if (pk == SY__PK_UVARINT && f.wt == 0) {
            val->type = SY_VALUE_INT;
            val->i = (int64_t)f.v;
        } else if (pk != SY__PK_UVARINT && f.wt == 1) {
            val->type = pk == SY__PK_DOUBLE ? SY_VALUE_DOUBLE : SY_VALUE_INT;
            if (pk == SY__PK_DOUBLE)
                memcpy(&val->d, &f.v, sizeof(val->d));
            else
                val->i = (int64_t)f.v;
        } else {
            continue;
        }
        it->index++;
        if (key) value_empty(key);
        return 1;
    }
}

/* ---- reading fields -------------------------------------------------------------- */

static int read_scalar(const uint8_t *buf, const sy__pbf_t *f, int type, sy_value_t *out)
{
    value_empty(out);
    switch (type) {
    case SY__FT_STR:
        if (f->wt != 2) return SY_EINVAL;
        out->type = SY_VALUE_STRING;
        out->str = (const char *)buf + f->vs;
        out->len = f->ve - f->vs;
        return 0;
    case SY__FT_BYTES:
        if (f->wt != 2) return SY_EINVAL;
        out->type = SY_VALUE_BYTES;
        out->bytes = buf + f->vs;
        out->len = f->ve - f->vs;
        return 0;
    case SY__FT_UVARINT:
    case SY__FT_ENUM:
    case SY__FT_SINT32:
    case SY__FT_BOOL:
        if (f->wt != 0) return SY_EINVAL;
        if (type == SY__FT_BOOL) {
            out->type = SY_VALUE_BOOL;
            out->b = f->v != 0;
            out->i = out->b;
            return 0;
        }
        out->type = SY_VALUE_INT;
        if (type == SY__FT_ENUM)
            out->i = (int32_t)(uint32_t)f->v;
        else if (type == SY__FT_SINT32) {
            uint32_t u = (uint32_t)f->v;
            out->i = (int32_t)((u >> 1) ^ (0u - (u & 1)));
        } else
            out->i = (int64_t)f->v;
        return 0;
    case SY__FT_FIXED64:
        if (f->wt != 1) return SY_EINVAL;
        out->type = SY_VALUE_INT;
        out->i = (int64_t)f->v;
        return 0;
    case SY__FT_FIXED32:
        if (f->wt != 5) return SY_EINVAL;
        out->type = SY_VALUE_INT;
        out->i = (int64_t)f->v;
        return 0;
    case SY__FT_DOUBLE:
        if (f->wt != 1) return SY_EINVAL;
        out->type = SY_VALUE_DOUBLE;
        memcpy(&out->d, &f->v, sizeof(out->d));
        return 0;
    case SY__FT_ANY:
        if (f->wt != 2) return SY_EINVAL;
        return sy__view_parse_any(buf + f->vs, f->ve - f->vs, out);
    default:
        return SY_EINVAL;
    }
}

static int get_field(sy_view_node_t *n, const sy__fspec_t *s, sy_value_t *out)
{
    const uint8_t *buf = n->view->buf;
    sy__pbf_t f;
    int rc;
    value_empty(out);
    switch (s->type) {
    case SY__FT_MTYPE: {
        sy_view_node_t *d = sy__view_sub(n, false);
        static const uint8_t types[12] = {[5] = SY_METRIC_TYPE_GAUGE,
                                          [7] = SY_METRIC_TYPE_SUM,
                                          [9] = SY_METRIC_TYPE_HISTOGRAM,
                                          [10] = SY_METRIC_TYPE_EXP_HISTOGRAM,
                                          [11] = SY_METRIC_TYPE_SUMMARY};
        out->type = SY_VALUE_INT;
        out->i = d && d->field < 12 ? types[d->field] : SY_METRIC_TYPE_NONE;
        return 0;
    }
    case SY__FT_NUMVAL: {
        /* The oneof: its last member on the wire wins, or the value set. */
        sy__pbf_t last = {0};
        const sy__vop_t *op = n->nops ? sy__view_field_op(n, s->f1) : NULL;
        if (op) {
            size_t pos = 0;
            if (op->rlen && sy__pb_next(op->repl, &pos, op->rlen, &last) <= 0) return SY_EINVAL;
        } else {
            size_t pos = n->cs;
            while ((rc = sy__pb_next(buf, &pos, n->ce, &f)) > 0)
                if ((f.num == s->f1 || f.num == s->f2) && f.wt == 1) last = f;
            if (rc < 0) return SY_EINVAL;
        }
        if (!last.num) return 0;
        out->type = last.num == s->f1 ? SY_VALUE_DOUBLE : SY_VALUE_INT;
        if (last.num == s->f1)
            memcpy(&out->d, &last.v, sizeof(out->d));
        else
            out->i = (int64_t)last.v;
        return 0;
    }
    case SY__FT_ARR_FIXED64:
    case SY__FT_ARR_DOUBLE:
    case SY__FT_QUANT: {
        uint32_t pk = s->type == SY__FT_ARR_FIXED64  ? SY__PK_FIXED64
                      : s->type == SY__FT_ARR_DOUBLE ? SY__PK_DOUBLE
                                                     : SY__PK_QUANT;
        value_container(out, pk == SY__PK_QUANT ? SY_VALUE_MAP : SY_VALUE_ARRAY, buf + n->cs,
                        n->ce - n->cs, pk | (uint32_t)s->f1 << 8);
        return value_count(out);
    }
    default:
        break;
    }
    size_t cs = n->cs, ce = n->ce;
    uint32_t num = s->f1;
    sy_view_node_t *t = n; /* the node whose content holds the field */
    if (s->f1 == SY__F_SUB || s->f1 == SY__F_DATA) {
        sy_view_node_t *sub = sy__view_sub(n, false);
        if (!sub) return 0;
        t = sub;
        /* A Gauge or Summary has no temporality, only a Sum is monotonic. */
        if (s->f1 == SY__F_DATA && !(sub->field == 7 || (s->field == SY_FIELD_TEMPORALITY &&
                                                         (sub->field == 9 || sub->field == 10))))
            return 0;
        cs = sub->cs;
        ce = sub->ce;
        num = s->f2;
    } else if (s->f2) { /* a field of a sub-message (exponential histogram buckets) */
        if ((rc = sy__pb_find(buf, cs, ce, s->f1, &f)) <= 0) return rc < 0 ? SY_EINVAL : 0;
        if (f.wt != 2) return SY_EINVAL;
        cs = f.vs;
        ce = f.ve;
        num = s->f2;
        if (s->type == SY__FT_ARR_UVARINT) {
            value_container(out, SY_VALUE_ARRAY, buf + cs, ce - cs, SY__PK_UVARINT | num << 8);
            return value_count(out);
        }
        t = NULL; /* read only: never edited */
    }
    /* Read-your-writes: a value set (or removed) and not yet committed. */
    const sy__vop_t *op = t && t->nops ? sy__view_field_op(t, num) : NULL;
    if (op) {
        size_t pos = 0;
        if (!op->rlen) return 0;
        if (sy__pb_next(op->repl, &pos, op->rlen, &f) <= 0) return SY_EINVAL;
        if (read_scalar(op->repl, &f, s->type, out) < 0) value_empty(out);
        return 0;
    }
    if ((rc = sy__pb_find(buf, cs, ce, num, &f)) <= 0) return rc < 0 ? SY_EINVAL : 0;
    /* A wire type that does not fit can only be an unknown field of the same
     * number (the walk checks known fields): it is not this field. */
    if (read_scalar(buf, &f, s->type, out) < 0) value_empty(out);
    return 0;
}

/* The node that has `field`: n, or the nearest enclosing node that does. */
static sy_view_node_t *field_owner(sy_view_node_t *n, sy_field_t field, const sy__fspec_t **spec)
{
    for (; n; n = sy__view_parent(n))
        if ((*spec = sy__view_spec(n->kind, field))) return n;
    return NULL;
}

int sy__view_get(sy_view_node_t *n, sy_field_t field, sy_value_t *out)
{
    const sy__fspec_t *s;
    value_empty(out);
    if (!n) return SY_EINVAL;
    sy_view_node_t *o = field_owner(n, field, &s);
    if (!o) return SY_ENOTSUP;
    return get_field(o, s, out);
}

/* ---- the API ---------------------------------------------------------------------- */

/* View generations: a node is known by (gen, cs, ce) across views (view_build.c). */
static _Atomic uint64_t view_gen;

bool sy__view_share = true;

int sy__view_reset(sy_view_t *v)
{
    if (v->mirror) sy__view_free(v->mirror);
    v->mirror = NULL;
    sy__arena_release(&v->arena);
    v->gen = atomic_fetch_add_explicit(&view_gen, 1, memory_order_relaxed) + 1;
    v->seq = v->cp = v->drops = v->nbad = 0;
    v->stale = false;
    v->undo = NULL;
    size_t len = 0;
    /* Not attached while this runs (the callers see to it): batch_encoded would
     * settle the view itself. */
    const uint8_t *buf = sy__batch_encoded(v->batch, &len);
    v->buf = buf ? buf : (const uint8_t *)empty_str;
    v->len = buf ? len : 0;
    v->base_items = sy__batch_items(v->batch);
    v->base_occ = sy__batch_occurrences(v->batch);
    v->base_trusted = sy__batch_encoded_trusted(v->batch);
    v->root = sy__view_node_new(v, NULL, SY_NODE_REQUEST, NULL);
    if (!v->root) return SY_ENOMEM;
    v->root->ce = (uint32_t)v->len;
    return 0;
}

/*
 * The shared view. A view is attached to its batch only while the batch has one
 * holder (not shared: one reference, not a piece of a split), so only that
 * holder's thread touches the view and the batch; sy__batch_retain() settles it
 * before a second reference exists. The next view_open() of the batch takes the
 * attached view as it is, unless a holder still has it open (then it is settled
 * and the new view reads the bytes).
 */
static sy_view_t *view_new(sy_batch_t *batch)
{
    sy_view_t *v = calloc(1, sizeof(*v));
    if (!v) return NULL;
    v->batch = batch;
    v->signal = sy__batch_signal(batch);
    sy__arena_init(&v->arena, SY__BATCH_MAX_ARENA);
    if (sy__view_reset(v) < 0) { /* reset settled an attached view, if any */
        sy__view_free(v);
        return NULL;
    }
    return v;
}

sy_view_t *sy__view_written(sy_view_t *v)
{
    if (v->attached) sy__view_settle(v->batch); /* v is open: it stays, stale */
    const uint8_t *enc = sy__batch_encoded(v->batch, NULL);
    if (v->mirror && v->mirror->buf == enc) return v->mirror;
    if (v->mirror) sy__view_free(v->mirror);
    v->mirror = view_new(v->batch);
    return v->mirror;
}

sy_view_t *sy__view_open(sy_batch_t *batch)
{
    if (!batch) return NULL;
    sy_view_t *a = batch->view;
    if (a && !a->open) {
        a->open = true;
        return a;
    }
    sy_view_t *v = view_new(batch);
    if (!v) return NULL;
    v->open = true;
    if (sy__view_share && !batch->view && !sy__batch_is_shared(batch)) {
        batch->view = v;
        v->attached = true;
    }
    return v;
}

void sy__view_free(sy_view_t *v)
{
    if (v->mirror) sy__view_free(v->mirror);
    sy__arena_release(&v->arena);
    free(v);
}

/* Lets the view go from its batch: the checkpoint, if any, is written first. */
static void detach_settled(sy_view_t *v)
{
    v->batch->view = NULL;
    v->attached = false;
    if (v->cp && !v->stale) {
        int rc = sy__view_apply(v, v->cp);
        if (rc < 0)
            SY__LOG(SY_LOG_ERROR, NULL,
                    "view: committed edits could not be written into the batch (error %d); the "
                    "batch keeps its bytes from before them",
                    rc);
        v->stale = true;
    }
}

void sy__view_close(sy_view_t *v)
{
    if (!v) return;
    v->open = false;
    if (v->attached) {
        if (v->seq == v->cp && !v->drops) return; /* nothing uncommitted: it stays */
        /* Edits made since the checkpoint were not committed: they go, the
         * checkpoint is written. */
        detach_settled(v);
    }
    sy__view_free(v);
}

void sy__view_settle(sy_batch_t *batch)
{
    sy_view_t *v = batch->view;
    if (!v) return;
    detach_settled(v);
    /* A holder that has it open goes on reading the bytes it read (still in the
     * batch's arena) with every edit; its next commit writes them all. */
    if (!v->open) sy__view_free(v);
}

void sy__view_batch_gone(sy_batch_t *batch)
{
    sy_view_t *v = batch->view;
    if (!v) return;
    batch->view = NULL;
    v->attached = false;
    v->stale = true;
    if (!v->open) sy__view_free(v);
}

sy_view_node_t *sy__view_root(sy_view_t *v)
{
    return v ? v->root : NULL;
}

sy_node_kind_t sy__view_kind(const sy_view_node_t *n)
{
    return n ? (sy_node_kind_t)n->kind : (sy_node_kind_t)0;
}

sy_view_node_t *sy__view_parent_api(const sy_view_node_t *n)
{
    return n ? sy__view_parent(n) : NULL;
}

size_t sy__view_count(sy_view_node_t *n, sy_view_rel_t rel)
{
    if (!n || index_kids(n, rel) < 0) return 0;
    rel_t r = {0};
    rel_of(n, rel, &r);
    return n->nkids[r.slot];
}

sy_view_node_t *sy__view_at(sy_view_node_t *n, sy_view_rel_t rel, size_t i)
{
    if (!n || index_kids(n, rel) < 0) return NULL;
    rel_t r = {0};
    rel_of(n, rel, &r);
    return i < n->nkids[r.slot] ? n->kids[r.slot][i] : NULL;
}

int sy__view_attr_value(const sy__vattr_t *a, sy_value_t *val)
{
    if (a->bad) return SY_EINVAL;
    if (!a->val) {
        value_empty(val);
        return 0;
    }
    return sy__view_parse_any(a->val, a->vallen, val);
}

/* n's attribute host with its attributes indexed, or NULL. */
static sy_view_node_t *indexed_host(sy_view_node_t *n)
{
    uint32_t field;
    sy_view_node_t *h = n ? sy__view_attr_host(n, false, &field) : NULL;
    return h && sy__view_index_attrs(h, field) == 0 ? h : NULL;
}

/* The attributes as they read now: the original ones, or after edits those the
 * commit will write (read-your-writes). */
static const sy__vattr_t *attr_list(sy_view_node_t *h, uint32_t *n)
{
    if (!(h->flags & SY__VN_AEDIT)) {
        *n = h->nattrs;
        return h->attrs;
    }
    if (sy__view_attrs_effective(h) < 0) return NULL;
    *n = h->neff;
    return h->eff;
}

size_t sy__view_attr_count(sy_view_node_t *n)
{
    sy_view_node_t *h = indexed_host(n);
    uint32_t count = 0;
    if (!h || !attr_list(h, &count)) return 0;
    return count;
}

int sy__view_attr_at(sy_view_node_t *n, size_t i, sy_value_t *key, sy_value_t *val)
{
    sy_view_node_t *h = indexed_host(n);
    uint32_t count = 0;
    const sy__vattr_t *a = h ? attr_list(h, &count) : NULL;
    if (!a || i >= count || a[i].bad) return SY_EINVAL;
    if (key) {
        value_empty(key);
        key->type = SY_VALUE_STRING;
        key->str = (const char *)a[i].key;
        key->len = a[i].keylen;
    }
    return val ? sy__view_attr_value(&a[i], val) : 0;
}

long sy__view_attr_find(sy_view_node_t *h, const char *key, size_t keylen)
{
    for (uint32_t i = 0; i < h->nattrs; i++) {
        const sy__vattr_t *a = &h->attrs[i];
        if (a->keylen == keylen && !a->bad && (keylen == 0 || memcmp(a->key, key, keylen) == 0))
            return (long)i;
    }
    return -1;
}

int sy__view_attr_get(sy_view_node_t *n, const char *key, size_t keylen, sy_value_t *val)
{
    value_empty(val);
    uint32_t field;
    sy_view_node_t *h = n ? sy__view_attr_host(n, false, &field) : NULL;
    if (!h) return n ? SY_EAGAIN : SY_EINVAL;
    int rc = sy__view_index_attrs(h, field);
    if (rc < 0) return rc;
    if (h->flags & SY__VN_AEDIT) {
        /* The key's latest edit decides it, as it will once committed. */
        const sy__vop_t *op = sy__view_attr_op(h, key, keylen);
        if (op) {
            if (op->deleted) return SY_EAGAIN;
            sy__pbf_t f;
            size_t pos = 0;
            if (sy__pb_next(op->repl, &pos, op->rlen, &f) <= 0) return SY_EINVAL;
            sy__vattr_t a;
            sy__view_attr_parse(op->repl + f.vs, f.ve - f.vs, &a);
            return sy__view_attr_value(&a, val);
        }
    }
    long i = sy__view_attr_find(h, key, keylen);
    if (i < 0) return SY_EAGAIN;
    return sy__view_attr_value(&h->attrs[i], val);
}
