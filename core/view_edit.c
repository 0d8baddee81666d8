/*
 * view_edit.c - recording edits in the view and applying them in one pass.
 *
 * An edit is an op of the node whose content it changes (view_internal.h): a
 * replaced byte range, or a changed child. Recording an edit registers its node,
 * and each enclosing node up to the request, as a changed child of its parent,
 * once; so at commit the changed nodes form a tree below the request, and every
 * node outside it is copied whole.
 *
 * Commit walks that tree twice. The first walk sorts each node's ops by offset
 * and computes its new content length bottom up: a child's field grows or
 * shrinks by the change of its content plus the change in size of its length
 * prefix (a varint: 1 byte up to 127, 2 up to 16383, ...). The first walk also
 * drops a scope, metric or resource all of whose items, points or scopes were
 * dropped. The second walk writes: for each node, memcpy of the bytes up to the
 * next op, then the op's bytes (a replacement, or the child's tag, its new
 * length prefix and, recursively, its content), then the rest. The result goes
 * into the batch's arena; it is not walked again when the batch's bytes were
 * trusted (see sy__view_commit), else it goes through batch_set_encoded(), which
 * validates it and counts its items like any request a receiver accepts.
 *
 * Attribute ops carry the key they decide, so the state of a key (present or
 * not, and with which value) is its latest op, or else the original bytes;
 * INSERT/UPDATE/rename test that state, not only the original bytes, and reads
 * of the node go through the same state (read-your-writes, view.c).
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_internal.h" /* batch->view: the shared view */
#include "cow.h"
#include "log.h"
#include "opentelemetry/proto/logs/v1/logs.pb-c.h"
#include "opentelemetry/proto/metrics/v1/metrics.pb-c.h"
#include "opentelemetry/proto/trace/v1/trace.pb-c.h"
#include "utf8.h"
#include "view_internal.h"

/* Before an edit changes op in place: when op is checkpointed (a commit of the
 * shared view took it, docs/view.md), its state goes to the undo list once, so
 * that the checkpoint can still be written without the holder's later edits. */
static int op_save(sy_view_node_t *n, sy__vop_t *op)
{
    sy_view_t *v = n->view;
    if (op->seq > v->cp || op->saved_cp == v->cp) return 0;
    sy__vundo_t *u = sy__view_alloc(v, sizeof(*u));
    if (!u) return SY_ENOMEM;
    op->saved_cp = v->cp;
    v->seq++; /* an edit since the checkpoint, though it makes no op */
    u->op = op;
    u->node = n;
    u->saved = *op;
    u->next = v->undo;
    v->undo = u;
    return 0;
}

/* Swaps each saved op with its saved state (the checkpoint's state and back):
 * each op is in the list once, so the order does not matter. */
static void undo_swap(sy_view_t *v)
{
    for (sy__vundo_t *u = v->undo; u; u = u->next) {
        sy__vop_t cur = *u->op;
        sy__vop_t *next = u->op->next;
        *u->op = u->saved;
        u->op->next = next;
        u->saved = cur;
        u->node->flags &= (uint8_t)~SY__VN_SORTED; /* seq may differ: sort again */
    }
}

/* Sets what committing op needs, keeping the view's count of ops that would be
 * refused (a checkpoint needs no walk to know it has none). */
static void op_check(sy_view_t *v, sy__vop_t *op, uint8_t check)
{
    v->nbad = v->nbad + (check == SY__VC_BAD) - (op->check == SY__VC_BAD);
    op->check = check;
}

static sy__vop_t *op_new(sy_view_node_t *n)
{
    sy__vop_t *op = sy__view_alloc(n->view, sizeof(*op));
    if (!op) return NULL;
    op->seq = ++n->view->seq;
    *n->ops_tail = op;
    n->ops_tail = &op->next;
    n->nops++;
    n->flags &= (uint8_t)~SY__VN_SORTED;
    return op;
}

/* Registers n and its enclosing nodes as changed, each once. */
static int mark_dirty(sy_view_node_t *n)
{
    for (; n->parent && !(n->flags & SY__VN_LINKED); n = n->parent) {
        sy__vop_t *op = op_new(n->parent);
        if (!op) return SY_ENOMEM;
        op->child = n;
        op->start = n->fstart;
        op->end = n->ce;
        n->flags |= SY__VN_LINKED;
    }
    return 0;
}

static uint8_t *copy_bytes(sy_view_t *v, const void *p, size_t len)
{
    uint8_t *c = sy__arena_alloc(&v->arena, len ? len : 1);
    if (c && len) memcpy(c, p, len);
    return c;
}

static size_t put_tag(uint8_t *p, uint32_t field, int wt)
{
    return sy__varint_put(p, (uint64_t)field << 3 | (uint64_t)wt);
}

static size_t put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return (size_t)n;
}

/* ---- checking what a plugin supplied -------------------------------------------- */

/* How deep n's content sits in the request (the request's content is depth 0):
 * the depth the validation walk would reach it at. */
static int node_depth(const sy_view_node_t *n)
{
    int d = 0;
    for (; n->parent; n = n->parent)
        d++;
    return d;
}

static uint8_t utf8_check(const void *s, size_t len)
{
    return syc_utf8_valid(s, len) ? SY__VC_OK : SY__VC_BAD;
}

/* What committing val, written as an AnyValue whose content sits at depth
 * any_depth, needs. A string must be UTF-8. An ARRAY or MAP is copied encoded
 * from where it was read, and a plugin could hand any bytes in its private
 * fields: its content is walked here as the commit's walk would (depth bound
 * included), which costs its length and nothing more. */
static uint8_t value_check(const sy_value_t *val, int any_depth)
{
    if (val->type == SY_VALUE_STRING) return utf8_check(val->str, val->len);
    if (val->type != SY_VALUE_ARRAY && val->type != SY_VALUE_MAP) return SY__VC_OK;
    const ProtobufCMessageDescriptor *d =
        val->type == SY_VALUE_ARRAY ? &opentelemetry__proto__common__v1__array_value__descriptor
                                    : &opentelemetry__proto__common__v1__key_value_list__descriptor;
    const uint8_t *p = val->priv;
    bool merges = false;
    if (!p && val->priv_len) return SY__VC_BAD;
    if (p && sy__pb_check_at(NULL, d, p, val->priv_len, any_depth + 1, p + val->priv_len, NULL,
                             &merges) < 0)
        return SY__VC_BAD;
    return merges ? SY__VC_WALK : SY__VC_OK;
}

static uint8_t worst(uint8_t a, uint8_t b)
{
    return a > b ? a : b;
}

/* ---- encoding values ------------------------------------------------------------ */

int sy__view_encode_any(const sy_value_t *val, uint8_t *buf, size_t *len)
{
    uint8_t tmp[16];
    size_t n = 0;
    uint8_t *p = buf ? buf : tmp;
    switch (val->type) {
    case SY_VALUE_EMPTY:
        break;
    case SY_VALUE_STRING:
    case SY_VALUE_BYTES: {
        const void *src = val->type == SY_VALUE_STRING ? (const void *)val->str : val->bytes;
        if (!src && val->len) return SY_EINVAL;
        n += put_tag(p, val->type == SY_VALUE_STRING ? 1 : 7, 2);
        n += sy__varint_put(p + n, val->len);
        if (buf && val->len) memcpy(buf + n, src, val->len);
        n += val->len;
        break;
    }
    case SY_VALUE_BOOL:
        n += put_tag(p, 2, 0);
        n += sy__varint_put(p + n, val->b ? 1 : 0);
        break;
    case SY_VALUE_INT:
        n += put_tag(p, 3, 0);
        n += sy__varint_put(p + n, (uint64_t)val->i);
        break;
    case SY_VALUE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &val->d, sizeof(bits));
        n += put_tag(p, 4, 1);
        n += put_le(p + n, bits, 8);
        break;
    }
    case SY_VALUE_ARRAY:
    case SY_VALUE_MAP: {
        /* Only as read from a view: the container's encoded content is copied. */
        uint32_t pk = val->priv_kind & 0xff;
        if (!val->priv || (val->type == SY_VALUE_ARRAY && pk != SY__PK_ANYARRAY) ||
            (val->type == SY_VALUE_MAP && pk != SY__PK_KVLIST))
            return SY_EINVAL;
        n += put_tag(p, val->type == SY_VALUE_ARRAY ? 5 : 6, 2);
        n += sy__varint_put(p + n, val->priv_len);
        if (buf) memcpy(buf + n, val->priv, val->priv_len);
        n += val->priv_len;
        break;
    }
    default:
        return SY_EINVAL;
    }
    *len = n;
    return 0;
}

/* A length-delimited field: tag, length, then `parts` concatenated. */
typedef struct part_s {
    const void *p;
    size_t len;
} part_t;

static uint8_t *encode_ld(sy_view_t *v, uint32_t field, const part_t *parts, int nparts,
                          size_t *out_len)
{
    size_t body = 0;
    for (int i = 0; i < nparts; i++)
        body += parts[i].len;
    size_t total = sy__varint_size((uint64_t)field << 3) + sy__varint_size(body) + body;
    uint8_t *buf = sy__arena_alloc(&v->arena, total);
    if (!buf) return NULL;
    size_t n = put_tag(buf, field, 2);
    n += sy__varint_put(buf + n, body);
    for (int i = 0; i < nparts; i++) {
        if (parts[i].len) memcpy(buf + n, parts[i].p, parts[i].len);
        n += parts[i].len;
    }
    *out_len = n;
    return buf;
}

/* A KeyValue field: key, then value (an AnyValue's encoded content). */
static uint8_t *encode_kv(sy_view_t *v, uint32_t field, const char *key, size_t keylen,
                          const uint8_t *any, size_t anylen, size_t *out_len)
{
    uint8_t h1[16], h2[16];
    size_t n1 = put_tag(h1, 1, 2);
    n1 += sy__varint_put(h1 + n1, keylen);
    size_t n2 = put_tag(h2, 2, 2);
    n2 += sy__varint_put(h2 + n2, anylen);
    part_t parts[4] = {{h1, n1}, {key, keylen}, {h2, n2}, {any, anylen}};
    return encode_ld(v, field, parts, 4, out_len);
}

/* The bytes of a scalar field of spec type `type` holding val; SY_EINVAL when the
 * value's type does not fit. */
static int encode_field(sy_view_node_t *t, int type, uint32_t num, uint32_t num2,
                        const sy_value_t *val, uint8_t **out, size_t *out_len, uint8_t *check)
{
    sy_view_t *v = t->view;
    uint8_t tmp[32];
    size_t n = 0;
    *check = SY__VC_OK;
    switch (type) {
    case SY__FT_STR:
    case SY__FT_BYTES: {
        const void *src;
        if (val->type == SY_VALUE_STRING)
            src = val->str;
        else if (val->type == SY_VALUE_BYTES && type == SY__FT_BYTES)
            src = val->bytes;
        else
            return SY_EINVAL;
        if (!src && val->len) return SY_EINVAL;
        if (type == SY__FT_STR) *check = utf8_check(src, val->len);
        part_t part = {src, val->len};
        *out = encode_ld(v, num, &part, 1, out_len);
        return *out ? 0 : SY_ENOMEM;
    }
    case SY__FT_ANY: {
        size_t alen;
        int rc = sy__view_encode_any(val, NULL, &alen);
        if (rc < 0) return rc;
        uint8_t *any = sy__arena_alloc(&v->arena, alen ? alen : 1);
        if (!any) return SY_ENOMEM;
        sy__view_encode_any(val, any, &alen);
        *check = value_check(val, node_depth(t) + 1);
        part_t part = {any, alen};
        *out = encode_ld(v, num, &part, 1, out_len);
        return *out ? 0 : SY_ENOMEM;
    }
    case SY__FT_UVARINT:
    case SY__FT_ENUM:
    case SY__FT_SINT32:
    case SY__FT_BOOL: {
        uint64_t x;
        if (type == SY__FT_BOOL && val->type == SY_VALUE_BOOL)
            x = val->b;
        else if (val->type != SY_VALUE_INT)
            return SY_EINVAL;
        else if (type == SY__FT_UVARINT && val->i < 0)
            return SY_EINVAL;
        else if ((type == SY__FT_ENUM || type == SY__FT_SINT32) &&
                 (val->i < INT32_MIN || val->i > INT32_MAX))
            return SY_EINVAL;
        else if (type == SY__FT_SINT32)
            x = ((uint32_t)val->i << 1) ^ (uint32_t)(val->i < 0 ? -1 : 0);
        else if (type == SY__FT_BOOL)
            x = val->i != 0;
        else
            x = (uint64_t)val->i;
        n = put_tag(tmp, num, 0);
        n += sy__varint_put(tmp + n, x);
        break;
    }
    case SY__FT_FIXED64:
        if (val->type != SY_VALUE_INT) return SY_EINVAL;
        n = put_tag(tmp, num, 1);
        n += put_le(tmp + n, (uint64_t)val->i, 8);
        break;
    case SY__FT_FIXED32:
        if (val->type != SY_VALUE_INT || val->i < 0 || val->i > (int64_t)UINT32_MAX)
            return SY_EINVAL;
        n = put_tag(tmp, num, 5);
        n += put_le(tmp + n, (uint64_t)val->i, 4);
        break;
    case SY__FT_DOUBLE:
    case SY__FT_NUMVAL: {
        uint64_t bits;
        if (type == SY__FT_NUMVAL && val->type == SY_VALUE_INT) {
            n = put_tag(tmp, num2, 1);
            n += put_le(tmp + n, (uint64_t)val->i, 8);
            break;
        }
        double d;
        if (val->type == SY_VALUE_DOUBLE)
            d = val->d;
        else if (val->type == SY_VALUE_INT)
            d = (double)val->i;
        else
            return SY_EINVAL;
        memcpy(&bits, &d, sizeof(bits));
        n = put_tag(tmp, num, 1);
        n += put_le(tmp + n, bits, 8);
        break;
    }
    default:
        return SY_ENOTSUP;
    }
    *out = copy_bytes(v, tmp, n);
    *out_len = n;
    return *out ? 0 : SY_ENOMEM;
}

/* ---- field edits ------------------------------------------------------------------ */

/* Makes field `num` (or its oneof sibling num2) of t hold exactly `bytes` (none
 * when len is 0): the last occurrence is replaced, earlier ones deleted. */
static int set_field(sy_view_node_t *t, uint32_t num, uint32_t num2, const uint8_t *bytes,
                     size_t len, uint8_t check)
{
    sy__vop_t *found = NULL;
    for (sy__vop_t *op = t->ops; op; op = op->next)
        if (!op->child && !op->is_attr && op->field == num && (!found || op->seq > found->seq))
            found = op;
    if (found) {
        if (op_save(t, found) < 0) return SY_ENOMEM;
        found->repl = bytes;
        found->rlen = (uint32_t)len;
        op_check(t->view, found, check);
        return 0;
    }
    const uint8_t *buf = t->view->buf;
    sy__pbf_t f, last = {0};
    size_t pos = t->cs;
    int rc;
    if (!(t->flags & SY__VN_VIRTUAL)) {
        while ((rc = sy__pb_next(buf, &pos, t->ce, &f)) > 0) {
            if (f.num != num && (!num2 || f.num != num2)) continue;
            if (last.num) { /* an earlier occurrence: deleted */
                sy__vop_t *op = op_new(t);
                if (!op) return SY_ENOMEM;
                op->start = (uint32_t)last.start;
                op->end = (uint32_t)last.ve;
                op->field = num;
            }
            last = f;
        }
        if (rc < 0) return SY_EINVAL;
    }
    sy__vop_t *op = op_new(t);
    if (!op) return SY_ENOMEM;
    op->field = num;
    op->start = last.num ? (uint32_t)last.start : t->ce;
    op->end = last.num ? (uint32_t)last.ve : t->ce;
    op->repl = bytes;
    op->rlen = (uint32_t)len;
    op_check(t->view, op, check);
    return mark_dirty(t);
}

int sy__view_set(sy_view_node_t *n, sy_field_t field, const sy_value_t *val)
{
    if (!n || !val) return SY_EINVAL;
    const sy__fspec_t *s = NULL;
    sy_view_node_t *o = n;
    for (; o; o = sy__view_parent(o))
        if ((s = sy__view_spec(o->kind, field))) break;
    if (!o) return SY_ENOTSUP;
    if (s->ro) return SY_ENOTSUP;
    sy_view_node_t *t = o;
    uint32_t num = s->f1, num2 = s->type == SY__FT_NUMVAL ? s->f2 : 0;
    if (s->f1 == SY__F_SUB || s->f1 == SY__F_DATA) {
        t = sy__view_sub(o, s->f1 == SY__F_SUB);
        if (!t) return s->f1 == SY__F_SUB ? SY_ENOMEM : SY_ENOTSUP;
        num = s->f2;
        /* Only Sum, Histogram and ExponentialHistogram have a temporality, only
         * Sum is monotonic. */
        if (s->f1 == SY__F_DATA && !(t->field == 7 || (field == SY_FIELD_TEMPORALITY &&
                                                       (t->field == 9 || t->field == 10))))
            return SY_ENOTSUP;
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    uint8_t check = SY__VC_OK;
    if (val->type != SY_VALUE_EMPTY) {
        int rc = encode_field(t, s->type, num, num2, val, &bytes, &len, &check);
        if (rc < 0) return rc;
    }
    return set_field(t, num, num2, bytes, len, check);
}

/* ---- attribute edits ---------------------------------------------------------------- */

typedef struct attr_state_s {
    sy_view_node_t *h;
    uint32_t field;
    sy__vop_t *op; /* the latest op deciding the key, if any */
    long orig;     /* its first original occurrence, or -1 */
    bool present;
} attr_state_t;

static int attr_state(sy_view_node_t *n, bool create, const char *key, size_t keylen,
                      attr_state_t *st)
{
    memset(st, 0, sizeof(*st));
    st->orig = -1;
    st->h = sy__view_attr_host(n, create, &st->field);
    if (!st->h) return create && st->field ? SY_ENOMEM : 0;
    int rc = sy__view_index_attrs(st->h, st->field);
    if (rc < 0) return rc;
    st->op = sy__view_attr_op(st->h, key, keylen);
    st->orig = sy__view_attr_find(st->h, key, keylen);
    st->present = st->op ? !st->op->deleted : st->orig >= 0;
    return 0;
}

sy__vop_t *sy__view_attr_op(sy_view_node_t *h, const char *key, size_t keylen)
{
    sy__vop_t *found = NULL;
    for (sy__vop_t *op = h->ops; op; op = op->next)
        if (op->is_attr && op->keylen == keylen && (!found || op->seq > found->seq) &&
            memcmp(op->key, key, keylen) == 0)
            found = op;
    return found;
}

const sy__vop_t *sy__view_field_op(const sy_view_node_t *t, uint32_t num)
{
    const sy__vop_t *found = NULL;
    for (const sy__vop_t *op = t->ops; op; op = op->next)
        if (!op->child && !op->is_attr && op->field == num && (!found || op->seq > found->seq))
            found = op;
    return found;
}

/* The byte range of the h's i-th original attribute field. */
static void attr_range(sy_view_node_t *h, long i, uint32_t *start, uint32_t *end)
{
    *start = h->attrs[i].start;
    *end = h->attrs[i].end;
}

/* h's attributes read through its edits from now on, and the list is stale. */
static void attrs_edited(sy_view_node_t *h)
{
    h->flags = (uint8_t)((h->flags | SY__VN_AEDIT) & ~SY__VN_EFF);
}

static int seq_cmp(const void *a, const void *b)
{
    const sy__vop_t *x = *(const sy__vop_t *const *)a, *y = *(const sy__vop_t *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * The attributes as the commit will write them: each original attribute, or the
 * op that covers its range (replaced, renamed, or gone), in place; then the new
 * ones, in the order they were first recorded (an op's seq is renewed when it is
 * set again, so the order is that of the ops' positions on commit: inserts at the
 * end sort by seq). Built into h->eff when read after an edit; kept until the next.
 */
int sy__view_attrs_effective(sy_view_node_t *h)
{
    if (h->flags & SY__VN_EFF) return 0;
    sy_view_t *v = h->view;
    uint32_t nops = 0;
    for (const sy__vop_t *op = h->ops; op; op = op->next)
        nops += op->is_attr;
    /* A plugin that reads while it edits rebuilds the list after each edit: the
     * list's block is reused while it is large enough, and the scratch arrays
     * are on the stack for up to LOCAL attributes and ops. */
    enum { LOCAL = 32 };
    const sy__vop_t *cover_local[LOCAL];
    sy__vop_t *ins_local[LOCAL];
    size_t cap = (size_t)h->nattrs + nops;
    sy__vattr_t *out = h->eff;
    if (cap > h->effcap) {
        out = sy__arena_alloc(&v->arena, cap * sizeof(*out));
        if (!out) return SY_ENOMEM;
        h->effcap = (uint32_t)cap;
    }
    const sy__vop_t **cover =
        h->nattrs <= LOCAL ? cover_local : sy__arena_alloc(&v->arena, h->nattrs * sizeof(*cover));
    sy__vop_t **ins = nops <= LOCAL ? ins_local : sy__arena_alloc(&v->arena, nops * sizeof(*ins));
    if (!cover || !ins) return SY_ENOMEM;
    memset(cover, 0, h->nattrs * sizeof(*cover));
    uint32_t nins = 0;
    for (sy__vop_t *op = h->ops; op; op = op->next) {
        if (!op->is_attr) continue;
        if (op->start == op->end) { /* an insert at the end */
            ins[nins++] = op;
            continue;
        }
        /* The original attribute whose range it covers (they are in order). */
        uint32_t lo = 0, hi = h->nattrs;
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (h->attrs[mid].start < op->start)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < h->nattrs && h->attrs[lo].start == op->start &&
            (!cover[lo] || op->seq > cover[lo]->seq))
            cover[lo] = op;
    }
    qsort(ins, nins, sizeof(*ins), seq_cmp);
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->nattrs + nins; i++) {
        const sy__vop_t *op = i < h->nattrs ? cover[i] : ins[i - h->nattrs];
        if (!op) {
            out[n++] = h->attrs[i];
            continue;
        }
        if (op->deleted || !op->rlen) continue;
        sy__pbf_t f;
        size_t pos = 0;
        if (sy__pb_next(op->repl, &pos, op->rlen, &f) <= 0) return SY_EINVAL;
        sy__view_attr_parse(op->repl + f.vs, f.ve - f.vs, &out[n]);
        out[n].start = out[n].end = 0;
        n++;
    }
    h->eff = out;
    h->neff = n;
    h->flags |= SY__VN_EFF;
    return 0;
}

static sy__vop_t *attr_op(sy_view_node_t *h, const char *key, size_t keylen)
{
    sy__vop_t *op = op_new(h);
    if (!op) return NULL;
    op->is_attr = true;
    op->key = copy_bytes(h->view, key, keylen);
    op->keylen = (uint32_t)keylen;
    op->start = op->end = h->ce;
    return op->key ? op : NULL;
}

/* Deletes every original occurrence of key that no op covers yet; `from` is the
 * first one (attr_state's orig), or -1 when there is none. */
static int delete_uncovered(sy_view_node_t *h, const char *key, size_t keylen, long from)
{
    for (uint32_t i = from < 0 ? h->nattrs : (uint32_t)from; i < h->nattrs; i++) {
        const sy__vattr_t *a = &h->attrs[i];
        if (a->bad || a->keylen != keylen || memcmp(a->key, key, keylen) != 0) continue;
        uint32_t start = a->start, end = a->end;
        bool covered = false;
        for (sy__vop_t *op = h->ops; op && !covered; op = op->next)
            covered = op->is_attr && op->start == start && op->end == end;
        if (covered) continue;
        sy__vop_t *op = attr_op(h, key, keylen);
        if (!op) return SY_ENOMEM;
        op->start = start;
        op->end = end;
        op->deleted = true;
    }
    return 0;
}

int sy__view_attr_set(sy_view_node_t *n, const char *key, size_t keylen, const sy_value_t *val,
                      sy_attr_mode_t mode)
{
    if (!n || !val || (!key && keylen)) return SY_EINVAL;
    attr_state_t st;
    int rc = attr_state(n, true, key, keylen, &st);
    if (rc < 0) return rc;
    if (!st.h) return SY_ENOTSUP;
    if ((mode == SY_ATTR_INSERT && st.present) || (mode == SY_ATTR_UPDATE && !st.present))
        return SY_EAGAIN;
    sy_view_t *v = n->view;
    size_t alen, kvlen;
    if ((rc = sy__view_encode_any(val, NULL, &alen)) < 0) return rc;
    uint8_t *any = sy__arena_alloc(&v->arena, alen ? alen : 1);
    if (!any) return SY_ENOMEM;
    sy__view_encode_any(val, any, &alen);
    uint8_t *kv = encode_kv(v, st.field, key, keylen, any, alen, &kvlen);
    if (!kv) return SY_ENOMEM;
    sy__vop_t *op = st.op;
    if (!op) {
        if (!(op = attr_op(st.h, key, keylen))) return SY_ENOMEM;
        if (st.orig >= 0) attr_range(st.h, st.orig, &op->start, &op->end);
    } else {
        if (op_save(st.h, op) < 0) return SY_ENOMEM;
        op->seq = ++v->seq;
    }
    op->repl = kv;
    op->rlen = (uint32_t)kvlen;
    op->deleted = false;
    /* The KeyValue's content sits one level below h's, its AnyValue's two. */
    op->vcheck = value_check(val, node_depth(st.h) + 2);
    op_check(v, op, worst(utf8_check(key, keylen), op->vcheck));
    attrs_edited(st.h);
    return mark_dirty(st.h);
}

int sy__view_attr_delete(sy_view_node_t *n, const char *key, size_t keylen)
{
    if (!n || (!key && keylen)) return SY_EINVAL;
    attr_state_t st;
    int rc = attr_state(n, false, key, keylen, &st);
    if (rc < 0) return rc;
    if (!st.h || !st.present) return SY_EAGAIN;
    if (st.op) {
        if (op_save(st.h, st.op) < 0) return SY_ENOMEM;
        st.op->repl = NULL;
        st.op->rlen = 0;
        st.op->deleted = true;
        op_check(n->view, st.op, SY__VC_OK);
        st.op->vcheck = SY__VC_OK;
    }
    if ((rc = delete_uncovered(st.h, key, keylen, st.orig)) < 0) return rc;
    attrs_edited(st.h);
    return mark_dirty(st.h);
}

int sy__view_attr_rename(sy_view_node_t *n, const char *key, size_t keylen, const char *nkey,
                         size_t nkeylen)
{
    if (!n || (!key && keylen) || (!nkey && nkeylen)) return SY_EINVAL;
    attr_state_t st;
    int rc = attr_state(n, false, key, keylen, &st);
    if (rc < 0) return rc;
    if (!st.h || !st.present) return SY_EAGAIN;
    if (keylen == nkeylen && memcmp(key, nkey, keylen) == 0) return 0;
    sy_view_t *v = n->view;
    /* The value's encoded AnyValue, from the op that set it or the original. */
    sy__vattr_t a = st.op ? (sy__vattr_t){0} : st.h->attrs[st.orig];
    if (st.op) {
        sy__pbf_t f;
        size_t pos = 0;
        if (sy__pb_next(st.op->repl, &pos, st.op->rlen, &f) <= 0) return SY_EINVAL;
        sy__view_attr_parse(st.op->repl + f.vs, f.ve - f.vs, &a);
    }
    if (a.bad) return SY_EINVAL;
    const uint8_t *any = a.val;
    size_t anylen = a.vallen;
    rc = sy__view_attr_delete(n, nkey, nkeylen);
    if (rc < 0 && rc != SY_EAGAIN) return rc;
    size_t len;
    uint8_t *kv = encode_kv(v, st.field, nkey, nkeylen, any, anylen, &len);
    uint8_t *k2 = copy_bytes(v, nkey, nkeylen);
    if (!kv || !k2) return SY_ENOMEM;
    sy__vop_t *op = st.op;
    if (!op) {
        if (!(op = attr_op(st.h, key, keylen))) return SY_ENOMEM;
        attr_range(st.h, st.orig, &op->start, &op->end);
    } else if (op_save(st.h, op) < 0) {
        return SY_ENOMEM;
    }
    op->key = k2;
    op->keylen = (uint32_t)nkeylen;
    op->repl = kv;
    op->rlen = (uint32_t)len;
    op->deleted = false;
    op->seq = ++v->seq;
    /* The value is the op's own (checked when set) or the original bytes. */
    op_check(v, op, worst(utf8_check(nkey, nkeylen), op->vcheck));
    /* The old key is absent now: a tombstone decides it, and any other original
     * occurrence of it goes. */
    sy__vop_t *tomb = attr_op(st.h, key, keylen);
    if (!tomb) return SY_ENOMEM;
    tomb->deleted = true;
    if ((rc = delete_uncovered(st.h, key, keylen, st.orig)) < 0) return rc;
    attrs_edited(st.h);
    return mark_dirty(st.h);
}

/* ---- drops ---------------------------------------------------------------------------- */

int sy__view_drop(sy_view_node_t *n)
{
    if (!n || n->kind == SY_NODE_REQUEST || n->kind >= SY__VK_RESOURCE_MSG) return SY_EINVAL;
    if (n->flags & SY__VN_DROPPED) return 0;
    n->flags |= SY__VN_DROPPED;
    n->view->drops++;
    /* Counted against the parent whose kids[0] holds n (a data point against its
     * metric, a metric against its scope, a scope against its resource). */
    sy_view_node_t *p = sy__view_parent(n);
    bool counted = p && !(n->kind == SY_NODE_LINK || n->kind == SY_NODE_EXEMPLAR);
    if (counted) p->ndropped++;
    return mark_dirty(n);
}

/* ---- commit ----------------------------------------------------------------------------- */

static int op_cmp(const void *a, const void *b)
{
    const sy__vop_t *x = *(const sy__vop_t *const *)a, *y = *(const sy__vop_t *const *)b;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool auto_drops(const sy_view_node_t *n)
{
    return (n->kind == SY_NODE_SCOPE || n->kind == SY_NODE_RESOURCE || n->kind == SY_NODE_METRIC) &&
           n->indexed[0] && n->nkids[0] > 0 && n->ndropped >= n->nkids[0];
}

/* What the first walk learns besides lengths: the items dropped (counted only
 * when `count`) and the worst check of the ops that will be written. */
typedef struct tally_s {
    bool count;
    uint32_t bound; /* ops after it are skipped; below UINT32_MAX, drops too */
    uint64_t removed;
    uint64_t added; /* at most this many field occurrences written anew */
    uint8_t check;
} tally_t;

/* The message type of a resource, scope or metric of the view's signal. */
static const ProtobufCMessageDescriptor *container_desc(sy_signal_t signal, int kind)
{
    static const ProtobufCMessageDescriptor *const t[3][2] = {
        {&opentelemetry__proto__trace__v1__resource_spans__descriptor,
         &opentelemetry__proto__trace__v1__scope_spans__descriptor},
        {&opentelemetry__proto__metrics__v1__resource_metrics__descriptor,
         &opentelemetry__proto__metrics__v1__scope_metrics__descriptor},
        {&opentelemetry__proto__logs__v1__resource_logs__descriptor,
         &opentelemetry__proto__logs__v1__scope_logs__descriptor},
    };
    int s = signal == SY_SIGNAL_TRACES ? 0 : signal == SY_SIGNAL_METRICS ? 1 : 2;
    if (kind == SY_NODE_METRIC) return &opentelemetry__proto__metrics__v1__metric__descriptor;
    return t[s][kind == SY_NODE_SCOPE];
}

/* The items that dropping node c (not yet counted in any other way) removes: one
 * for a span, log record or data point, none for an event, link or exemplar, and
 * for a resource, scope or metric what the validation walk counts in it. */
static int items_in(const sy_view_node_t *c, uint64_t *items)
{
    switch (c->kind) {
    case SY_NODE_RESOURCE:
    case SY_NODE_SCOPE:
    case SY_NODE_METRIC: {
        sy__pb_stats_t st;
        const sy_view_t *v = c->view;
        if (sy__pb_check_at(sy__signal_request_descriptor(v->signal),
                            container_desc(v->signal, c->kind), v->buf + c->cs, c->ce - c->cs,
                            node_depth(c), v->buf + v->len, &st, NULL) < 0)
            return SY_EINVAL;
        *items = st.items;
        return 0;
    }
    case SY_NODE_EVENT:
    case SY_NODE_LINK:
    case SY_NODE_EXEMPLAR:
        *items = 0;
        return 0;
    default:
        *items = 1;
        return 0;
    }
}

/* First walk: sorts n's ops and computes n->newlen. */
static int calc(sy_view_node_t *n, int depth, tally_t *tally)
{
    if (depth > 64) return SY_EINVAL;
    if (!(n->flags & SY__VN_SORTED)) {
        n->opv = n->nops ? sy__arena_alloc(&n->view->arena, n->nops * sizeof(*n->opv)) : NULL;
        if (n->nops && !n->opv) return SY_ENOMEM;
        size_t k = 0;
        bool sorted = true; /* usually: a plugin edits items in the order it reads them */
        for (sy__vop_t *op = n->ops; op; op = op->next) {
            if (k && op_cmp(&n->opv[k - 1], &op) > 0) sorted = false;
            n->opv[k++] = op;
        }
        if (!sorted) qsort(n->opv, n->nops, sizeof(*n->opv), op_cmp);
        n->flags |= SY__VN_SORTED;
    }
    int64_t len = (int64_t)(n->ce - n->cs);
    tally_t mine = {.count = tally->count, .bound = tally->bound};
    bool all = tally->bound == UINT32_MAX;
    for (uint32_t i = 0; i < n->nops; i++) {
        sy__vop_t *op = n->opv[i];
        if (op->seq > tally->bound) continue;
        sy_view_node_t *c = op->child;
        if (!c) {
            len += (int64_t)op->rlen - (int64_t)(op->end - op->start);
            mine.check = worst(mine.check, op->check);
            /* Every field occurrence takes at least 2 bytes. */
            mine.added += (op->rlen + 1) / 2;
            continue;
        }
        int rc;
        if (all && (c->flags & SY__VN_DROPPED)) { /* dropped by the plugin */
            uint64_t items = 0;
            if (mine.count && (rc = items_in(c, &items)) < 0) return rc;
            mine.removed += items;
        } else {
            tally_t sub = {.count = mine.count, .bound = mine.bound};
            if ((rc = calc(c, depth + 1, &sub)) < 0) return rc;
            mine.removed += sub.removed;
            /* Nothing of a node dropped for being left empty is written; a
             * virtual node written is one occurrence more. */
            if (!all || !(c->flags & SY__VN_DROPPED)) {
                mine.check = worst(mine.check, sub.check);
                mine.added += sub.added + ((c->flags & SY__VN_VIRTUAL) ? 1 : 0);
            }
        }
        int64_t orig = (int64_t)(c->ce - c->fstart);
        if (all && (c->flags & SY__VN_DROPPED)) {
            len -= orig;
            continue;
        }
        size_t tag =
            (c->flags & SY__VN_VIRTUAL) ? sy__varint_size((uint64_t)c->field << 3) : c->taglen;
        len += (int64_t)(tag + sy__varint_size(c->newlen) + c->newlen) - orig;
    }
    if (len < 0) return SY_EINVAL;
    n->newlen = (size_t)len;
    tally->removed += mine.removed;
    tally->added += mine.added;
    tally->check = worst(tally->check, mine.check);
    if (all && auto_drops(n)) {
        n->flags |= SY__VN_DROPPED;
        sy_view_node_t *p = sy__view_parent(n);
        if (p) p->ndropped++;
    }
    return 0;
}

/* Second walk: writes n's new content at out; returns the end, or NULL when the
 * ops overlap (which would be a bug here, not bad input). */
static uint8_t *emit(const sy_view_node_t *n, const uint8_t *buf, uint8_t *out, uint32_t bound)
{
    size_t pos = n->cs;
    bool all = bound == UINT32_MAX;
    for (uint32_t i = 0; i < n->nops; i++) {
        const sy__vop_t *op = n->opv[i];
        if (op->seq > bound) continue;
        if (op->start < pos || op->end > n->ce) return NULL;
        memcpy(out, buf + pos, op->start - pos);
        out += op->start - pos;
        const sy_view_node_t *c = op->child;
        if (!c) {
            if (op->rlen) memcpy(out, op->repl, op->rlen);
            out += op->rlen;
        } else if (!all || !(c->flags & SY__VN_DROPPED)) {
            if (c->flags & SY__VN_VIRTUAL) {
                out += put_tag(out, c->field, 2);
            } else {
                memcpy(out, buf + c->fstart, c->taglen);
                out += c->taglen;
            }
            out += sy__varint_put(out, c->newlen);
            if (!(out = emit(c, buf, out, bound))) return NULL;
        }
        pos = op->end;
    }
    memcpy(out, buf + pos, n->ce - pos);
    return out + (n->ce - pos);
}

/*
 * The commit trusts what it wrote when the batch's bytes were trusted (validated
 * with no singular field merged, sy__batch_encoded_trusted): untouched ranges are
 * those bytes, lengths and tags are the view's own, and every value a plugin
 * supplied was checked when it was recorded (UTF-8 of strings and keys, ARRAY/MAP
 * content walked at the depth it goes to). So the result is not walked again: its
 * items are the batch's minus those dropped, its decoded-size bound follows from
 * its length. tests/fuzz/fuzz_view.c holds it to the walk: for random edits, the
 * walk accepts the committed bytes and counts the same items. Bytes packed from
 * a decoded request, or a copied value holding a merged field, take the walk.
 */
int sy__view_apply(sy_view_t *v, uint32_t bound)
{
    bool part = bound != UINT32_MAX && v->undo;
    if (part) undo_swap(v); /* the checkpointed ops as they were */
    tally_t tally = {.count = v->base_trusted, .bound = bound};
    int rc = calc(v->root, 0, &tally);
    if (rc < 0) goto out;
    if (tally.check == SY__VC_BAD) {
        SY__LOG(SY_LOG_ERROR, NULL,
                "view_commit: the edited request was refused: a string set through the view is "
                "not valid UTF-8, or an ARRAY/MAP value is malformed");
        rc = SY_EINVAL;
        goto out;
    }
    size_t len = v->root->newlen;
    if (len > INT32_MAX) { /* the walk's bound on any length */
        rc = SY_ENOMEM;
        goto out;
    }
    uint8_t *out = sy__batch_alloc(v->batch, len ? len : 1);
    if (!out) {
        rc = SY_ENOMEM;
        goto out;
    }
    uint8_t *end = emit(v->root, v->buf, out, bound);
    if (!end || (size_t)(end - out) != len) {
        rc = SY_EINVAL;
        goto out;
    }
    char err[256];
    uint64_t items = v->base_items;
    /* Occurrences: the old ones (a drop only removes some) and the new ones. */
    uint64_t occ = v->base_occ;
    occ = occ == UINT64_MAX || tally.added > UINT64_MAX - occ ? UINT64_MAX : occ + tally.added;
    if (tally.count && tally.check == SY__VC_OK && tally.removed <= items)
        rc =
            sy__batch_set_trusted(v->batch, out, len, items - tally.removed, occ, err, sizeof(err));
    else
        rc = sy__batch_set_encoded(v->batch, out, len, err, sizeof(err));
    if (rc < 0) SY__LOG(SY_LOG_ERROR, NULL, "view_commit: the edited request was refused: %s", err);
out:
    if (part) undo_swap(v); /* and back to the holder's */
    return rc;
}

/* The view may stay attached to its batch (docs/view.md: one holder, nothing
 * settled it while open). */
static bool may_share(const sy_view_t *v)
{
    return sy__view_share && !v->stale && (v->attached || !v->batch->view) &&
           !sy__batch_is_shared(v->batch);
}

static void attach(sy_view_t *v)
{
    if (v->attached || !may_share(v)) return;
    v->batch->view = v;
    v->attached = true;
}

static void detach(sy_view_t *v)
{
    if (!v->attached) return;
    v->batch->view = NULL;
    v->attached = false;
}

/*
 * A commit whose edits drop nothing, on a view that may stay with its batch, is
 * a checkpoint: checked as the write would check it (the first walk only), and
 * written when a consumer other than the view needs the bytes
 * (sy__view_settle). Otherwise it writes everything now, as before the shared
 * view. A refused commit discards the edits since the checkpoint (the
 * checkpoint itself is written, and the view starts again on those bytes).
 */
int sy__view_commit(sy_view_t *v)
{
    if (!v) return SY_EINVAL;
    if (v->seq == v->cp && !v->drops) { /* nothing new (a drop of a linked node adds no op) */
        attach(v);
        return 0;
    }
    int rc;
    if (!sy__cow_may_change(v->batch, "view_commit")) {
        rc = SY_EAGAIN;
        goto fail;
    }
    if (!v->drops && may_share(v)) {
        /* Without drops every op is written: the count of refused ones says
         * it; the first walk makes sure when there are any. */
        tally_t tally = {.bound = UINT32_MAX};
        if (v->nbad && (rc = calc(v->root, 0, &tally)) < 0) goto fail;
        if (v->nbad && tally.check == SY__VC_BAD) {
            SY__LOG(SY_LOG_ERROR, NULL,
                    "view_commit: the edited request was refused: a string set through the view "
                    "is not valid UTF-8, or an ARRAY/MAP value is malformed");
            rc = SY_EINVAL;
            goto fail;
        }
        v->cp = v->seq;
        v->undo = NULL;
        attach(v);
        return 0;
    }
    detach(v);
    if ((rc = sy__view_apply(v, UINT32_MAX)) < 0) goto fail;
    if ((rc = sy__view_reset(v)) == 0) attach(v);
    return rc;
fail:
    detach(v);
    if (v->cp && !v->stale) {
        int wrc = sy__view_apply(v, v->cp);
        if (wrc < 0)
            SY__LOG(SY_LOG_ERROR, NULL,
                    "view: committed edits could not be written into the batch (error %d)", wrc);
    }
    sy__view_reset(v);
    attach(v);
    return rc;
}
