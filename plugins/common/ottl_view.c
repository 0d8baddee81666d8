/*
 * ottl_view.c - the OTTL accessor over the view (see ottl_view.h).
 *
 * Each OTTL field names the node that owns it (the item, its scope, its resource
 * or, for a data point, its metric) and a view field; an absent field reads as
 * the zero of its type ("" for a string, 0 for a number), as pdata does in the
 * collector, except a body, which reads as nil. Attribute maps of nodes are
 * edited through the view's attribute calls; MAP and ARRAY values inside
 * attributes or a body can be read and copied, not edited in place (SY_ENOTSUP).
 */
#include "attr_actions.h"
#include "ottl_view.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Which node owns a field. */
enum { OWN_ITEM, OWN_SCOPE, OWN_RESOURCE, OWN_METRIC };
/* How an absent value reads. */
enum { Z_STR, Z_INT, Z_DBL, Z_BOOL, Z_NIL };

typedef struct field_map_s {
    int owner;
    sy_field_t field; /* 0: an attribute map */
    int zero;
} field_map_t;

static const field_map_t field_map[SYC_OTTL_F_COUNT_] = {
    [SYC_OTTL_F_RESOURCE_ATTRIBUTES] = {OWN_RESOURCE, 0, Z_NIL},
    [SYC_OTTL_F_RESOURCE_DROPPED_ATTRIBUTES_COUNT] = {OWN_RESOURCE, SY_FIELD_DROPPED_ATTRIBUTES,
                                                      Z_INT},
    [SYC_OTTL_F_SCOPE_NAME] = {OWN_SCOPE, SY_FIELD_SCOPE_NAME, Z_STR},
    [SYC_OTTL_F_SCOPE_VERSION] = {OWN_SCOPE, SY_FIELD_SCOPE_VERSION, Z_STR},
    [SYC_OTTL_F_SCOPE_ATTRIBUTES] = {OWN_SCOPE, 0, Z_NIL},
    [SYC_OTTL_F_SCOPE_DROPPED_ATTRIBUTES_COUNT] = {OWN_SCOPE, SY_FIELD_DROPPED_ATTRIBUTES, Z_INT},
    [SYC_OTTL_F_ATTRIBUTES] = {OWN_ITEM, 0, Z_NIL},
    [SYC_OTTL_F_DROPPED_ATTRIBUTES_COUNT] = {OWN_ITEM, SY_FIELD_DROPPED_ATTRIBUTES, Z_INT},
    [SYC_OTTL_F_NAME] = {OWN_ITEM, SY_FIELD_NAME, Z_STR},
    [SYC_OTTL_F_KIND] = {OWN_ITEM, SY_FIELD_KIND, Z_INT},
    [SYC_OTTL_F_TRACE_ID] = {OWN_ITEM, SY_FIELD_TRACE_ID, Z_NIL},
    [SYC_OTTL_F_SPAN_ID] = {OWN_ITEM, SY_FIELD_SPAN_ID, Z_NIL},
    [SYC_OTTL_F_PARENT_SPAN_ID] = {OWN_ITEM, SY_FIELD_PARENT_SPAN_ID, Z_NIL},
    [SYC_OTTL_F_TRACE_STATE] = {OWN_ITEM, SY_FIELD_TRACE_STATE, Z_STR},
    [SYC_OTTL_F_STATUS_CODE] = {OWN_ITEM, SY_FIELD_STATUS_CODE, Z_INT},
    [SYC_OTTL_F_STATUS_MESSAGE] = {OWN_ITEM, SY_FIELD_STATUS_MESSAGE, Z_STR},
    [SYC_OTTL_F_START_TIME_UNIX_NANO] = {OWN_ITEM, SY_FIELD_START_TIME, Z_INT},
    [SYC_OTTL_F_END_TIME_UNIX_NANO] = {OWN_ITEM, SY_FIELD_END_TIME, Z_INT},
    [SYC_OTTL_F_TIME_UNIX_NANO] = {OWN_ITEM, SY_FIELD_TIME, Z_INT},
    [SYC_OTTL_F_OBSERVED_TIME_UNIX_NANO] = {OWN_ITEM, SY_FIELD_OBSERVED_TIME, Z_INT},
    [SYC_OTTL_F_DROPPED_EVENTS_COUNT] = {OWN_ITEM, SY_FIELD_DROPPED_EVENTS, Z_INT},
    [SYC_OTTL_F_DROPPED_LINKS_COUNT] = {OWN_ITEM, SY_FIELD_DROPPED_LINKS, Z_INT},
    [SYC_OTTL_F_SEVERITY_NUMBER] = {OWN_ITEM, SY_FIELD_SEVERITY_NUMBER, Z_INT},
    [SYC_OTTL_F_SEVERITY_TEXT] = {OWN_ITEM, SY_FIELD_SEVERITY_TEXT, Z_STR},
    [SYC_OTTL_F_BODY] = {OWN_ITEM, SY_FIELD_BODY, Z_NIL},
    [SYC_OTTL_F_FLAGS] = {OWN_ITEM, SY_FIELD_FLAGS, Z_INT},
    [SYC_OTTL_F_EVENT_NAME] = {OWN_ITEM, SY_FIELD_EVENT_NAME, Z_STR},
    [SYC_OTTL_F_METRIC_NAME] = {OWN_METRIC, SY_FIELD_METRIC_NAME, Z_STR},
    [SYC_OTTL_F_METRIC_DESCRIPTION] = {OWN_METRIC, SY_FIELD_METRIC_DESCRIPTION, Z_STR},
    [SYC_OTTL_F_METRIC_UNIT] = {OWN_METRIC, SY_FIELD_METRIC_UNIT, Z_STR},
    [SYC_OTTL_F_METRIC_TYPE] = {OWN_METRIC, SY_FIELD_METRIC_TYPE, Z_INT},
    [SYC_OTTL_F_METRIC_AGGREGATION_TEMPORALITY] = {OWN_METRIC, SY_FIELD_TEMPORALITY, Z_INT},
    [SYC_OTTL_F_METRIC_IS_MONOTONIC] = {OWN_METRIC, SY_FIELD_MONOTONIC, Z_BOOL},
    [SYC_OTTL_F_VALUE_INT] = {OWN_ITEM, SY_FIELD_VALUE, Z_INT},
    [SYC_OTTL_F_VALUE_DOUBLE] = {OWN_ITEM, SY_FIELD_VALUE, Z_DBL},
    [SYC_OTTL_F_COUNT] = {OWN_ITEM, SY_FIELD_COUNT, Z_INT},
    [SYC_OTTL_F_SUM] = {OWN_ITEM, SY_FIELD_SUM, Z_DBL},
};

/* A chunk of encoded lists and maps: used bytes, capacity, then the bytes. */
struct syc_ottl_view_chunk_s {
    struct syc_ottl_view_chunk_s *next;
    size_t used, cap;
    unsigned epoch; /* the bind its bytes belong to; another one: all free */
    _Alignas(max_align_t) char data[];
};

#define VIEW_CHUNK 4096u

/* Room for n bytes that do not move until the next bind. */
static char *chunk_alloc(syc_ottl_view_item_t *it, size_t n)
{
    struct syc_ottl_view_chunk_s *c = it->chunks;
    for (; c; c = c->next) {
        if (c->epoch != it->epoch) c->used = 0, c->epoch = it->epoch;
        if (c->cap - c->used >= n) break;
    }
    if (!c) {
        size_t cap = n > VIEW_CHUNK ? n : VIEW_CHUNK;
        if (!(c = malloc(sizeof *c + cap))) return NULL;
        c->used = 0;
        c->cap = cap;
        c->epoch = it->epoch;
        c->next = it->chunks;
        it->chunks = c;
    }
    char *p = c->data + c->used;
    c->used += n;
    return p;
}

void syc_ottl_view_item_free(syc_ottl_view_item_t *it)
{
    for (struct syc_ottl_view_chunk_s *c = it->chunks, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    it->chunks = NULL;
}

void syc_ottl_view_bind(syc_ottl_view_item_t *it, const sy_host_api_t *api, sy_view_node_t *node)
{
    it->epoch++; /* what make_list / make_map built for the last node is free again */
    it->api = api;
    it->node = node;
    it->scope = it->resource = it->metric = NULL;
    it->next = 0;
    for (sy_view_node_t *n = node; n; n = api->view_parent(n)) {
        switch (api->view_kind(n)) {
        case SY_NODE_SCOPE:
            if (!it->scope) it->scope = n;
            break;
        case SY_NODE_RESOURCE:
            if (!it->resource) it->resource = n;
            break;
        case SY_NODE_METRIC:
            if (!it->metric) it->metric = n;
            break;
        default:
            break;
        }
    }
    it->attrs = (syc_ottl_view_map_t){.node = node};
    it->scope_attrs = (syc_ottl_view_map_t){.node = it->scope};
    it->resource_attrs = (syc_ottl_view_map_t){.node = it->resource};
}

static sy_view_node_t *owner_of(const syc_ottl_view_item_t *it, int owner)
{
    switch (owner) {
    case OWN_SCOPE:
        return it->scope;
    case OWN_RESOURCE:
        return it->resource;
    case OWN_METRIC:
        return it->metric;
    default:
        return it->node;
    }
}

/* A view value as OTTL sees it; MAP and ARRAY values get a handle from the ring. */
static void from_view(syc_ottl_view_item_t *it, const sy_value_t *v, syc_ottl_value_t *out)
{
    switch (v->type) {
    case SY_VALUE_STRING:
        *out = (syc_ottl_value_t){.type = SYC_OTTL_STRING, .u.s = {v->str, v->len}};
        break;
    case SY_VALUE_BYTES:
        *out = (syc_ottl_value_t){.type = SYC_OTTL_BYTES, .u.s = {(const char *)v->bytes, v->len}};
        if (v->len == 0) out->type = SYC_OTTL_NIL; /* a nil byte slice counts as nil */
        break;
    case SY_VALUE_BOOL:
        *out = (syc_ottl_value_t){.type = SYC_OTTL_BOOL, .u.b = v->b};
        break;
    case SY_VALUE_INT:
        *out = (syc_ottl_value_t){.type = SYC_OTTL_INT, .u.i = v->i};
        break;
    case SY_VALUE_DOUBLE:
        *out = (syc_ottl_value_t){.type = SYC_OTTL_DOUBLE, .u.d = v->d};
        break;
    case SY_VALUE_ARRAY:
    case SY_VALUE_MAP: {
        syc_ottl_view_map_t *m = &it->pool[it->next++ % SYC_OTTL_VIEW_POOL];
        m->node = NULL;
        m->value = *v;
        *out = (syc_ottl_value_t){.type = v->type == SY_VALUE_MAP ? SYC_OTTL_MAP : SYC_OTTL_SLICE,
                                  .u.map = m};
        break;
    }
    default:
        out->type = SYC_OTTL_NIL;
        break;
    }
}

/* An OTTL value to write through the view. SY_ENOTSUP for a map or slice that is
 * not a value read from the view (an attribute set, which cannot be copied). */
static int to_view(const syc_ottl_value_t *v, sy_value_t *out)
{
    memset(out, 0, sizeof *out);
    switch (v->type) {
    case SYC_OTTL_NIL:
        out->type = SY_VALUE_EMPTY;
        return 0;
    case SYC_OTTL_BOOL:
        out->type = SY_VALUE_BOOL;
        out->b = v->u.b;
        return 0;
    case SYC_OTTL_INT:
        out->type = SY_VALUE_INT;
        out->i = v->u.i;
        return 0;
    case SYC_OTTL_DOUBLE:
        out->type = SY_VALUE_DOUBLE;
        out->d = v->u.d;
        return 0;
    case SYC_OTTL_STRING:
        out->type = SY_VALUE_STRING;
        out->str = v->u.s.ptr;
        out->len = v->u.s.len;
        return 0;
    case SYC_OTTL_BYTES:
        out->type = SY_VALUE_BYTES;
        out->bytes = (const uint8_t *)v->u.s.ptr;
        out->len = v->u.s.len;
        return 0;
    case SYC_OTTL_MAP:
    case SYC_OTTL_SLICE: {
        const syc_ottl_view_map_t *m = v->u.map;
        if (!m || m->node) return SY_ENOTSUP;
        *out = m->value;
        return 0;
    }
    }
    return SY_EINVAL;
}

static int va_get(void *item, syc_ottl_field_t field, syc_ottl_value_t *out)
{
    syc_ottl_view_item_t *it = item;
    if ((unsigned)field >= SYC_OTTL_F_COUNT_) return SY_ENOTSUP;
    const field_map_t *fm = &field_map[field];
    sy_view_node_t *n = owner_of(it, fm->owner);
    if (!n) return SY_ENOTSUP;
    if (fm->field == 0) {
        syc_ottl_view_map_t *m = fm->owner == OWN_RESOURCE ? &it->resource_attrs
                                 : fm->owner == OWN_SCOPE  ? &it->scope_attrs
                                                           : &it->attrs;
        *out = (syc_ottl_value_t){.type = SYC_OTTL_MAP, .u.map = m};
        return 0;
    }
    sy_value_t v;
    int rc = it->api->view_get(n, fm->field, &v);
    if (rc < 0) return rc;
    if (field == SYC_OTTL_F_VALUE_INT || field == SYC_OTTL_F_VALUE_DOUBLE) {
        /* pdata's IntValue() of a double point is 0, and the reverse. */
        bool want_int = field == SYC_OTTL_F_VALUE_INT;
        if (want_int)
            *out =
                (syc_ottl_value_t){.type = SYC_OTTL_INT, .u.i = v.type == SY_VALUE_INT ? v.i : 0};
        else
            *out = (syc_ottl_value_t){.type = SYC_OTTL_DOUBLE,
                                      .u.d = v.type == SY_VALUE_DOUBLE ? v.d : 0.0};
        return 0;
    }
    if (v.type == SY_VALUE_EMPTY) {
        switch (fm->zero) {
        case Z_STR:
            *out = (syc_ottl_value_t){.type = SYC_OTTL_STRING, .u.s = {"", 0}};
            return 0;
        case Z_INT:
            *out = (syc_ottl_value_t){.type = SYC_OTTL_INT, .u.i = 0};
            return 0;
        case Z_DBL:
            *out = (syc_ottl_value_t){.type = SYC_OTTL_DOUBLE, .u.d = 0.0};
            return 0;
        case Z_BOOL:
            *out = (syc_ottl_value_t){.type = SYC_OTTL_BOOL, .u.b = false};
            return 0;
        default:
            out->type = SYC_OTTL_NIL;
            return 0;
        }
    }
    from_view(it, &v, out);
    return 0;
}

static int va_map_get(void *item, void *map, const char *key, size_t len, syc_ottl_value_t *out)
{
    syc_ottl_view_item_t *it = item;
    const syc_ottl_view_map_t *m = map;
    out->type = SYC_OTTL_NIL;
    if (m->node) {
        sy_value_t v;
        int rc = it->api->view_attr_get(m->node, key, len, &v);
        if (rc == SY_EAGAIN) return 0;
        if (rc < 0) return rc;
        from_view(it, &v, out);
        return 0;
    }
    if (m->value.type != SY_VALUE_MAP) return SY_EINVAL;
    sy_value_iter_t iter = {.value = &m->value};
    sy_value_t k, v;
    int rc;
    while ((rc = it->api->view_value_next(&iter, &k, &v)) == 1)
        if (k.len == len && memcmp(k.str, key, len) == 0) {
            from_view(it, &v, out);
            return 0;
        }
    return rc < 0 ? rc : 0;
}

static int va_slice_get(void *item, void *slice, int64_t index, syc_ottl_value_t *out)
{
    syc_ottl_view_item_t *it = item;
    const syc_ottl_view_map_t *m = slice;
    if (m->node || m->value.type != SY_VALUE_ARRAY) return SY_EINVAL;
    if (index < 0 || (size_t)index >= m->value.len) return SY_EINVAL;
    sy_value_iter_t iter = {.value = &m->value};
    sy_value_t v;
    int rc;
    for (int64_t i = 0; (rc = it->api->view_value_next(&iter, NULL, &v)) == 1; i++)
        if (i == index) {
            from_view(it, &v, out);
            return 0;
        }
    return rc < 0 ? rc : SY_EINVAL;
}

static size_t va_map_len(void *item, void *map)
{
    syc_ottl_view_item_t *it = item;
    const syc_ottl_view_map_t *m = map;
    return m->node ? it->api->view_attr_count(m->node) : m->value.len;
}

static size_t va_slice_len(void *item, void *slice)
{
    (void)item;
    return ((const syc_ottl_view_map_t *)slice)->value.len;
}

static int va_set(void *item, syc_ottl_field_t field, const syc_ottl_key_t *keys, size_t nkeys,
                  const syc_ottl_value_t *value)
{
    syc_ottl_view_item_t *it = item;
    if ((unsigned)field >= SYC_OTTL_F_COUNT_) return SY_ENOTSUP;
    const field_map_t *fm = &field_map[field];
    sy_view_node_t *n = owner_of(it, fm->owner);
    if (!n) return SY_ENOTSUP;
    sy_value_t v;
    int rc = to_view(value, &v);
    if (rc < 0) return rc;
    if (fm->field == 0) {
        /* attributes["k"]: one key into the node's attributes. Nested keys would edit
         * a value inside an attribute, which the view cannot do in place. */
        if (nkeys != 1 || keys[0].is_index) return SY_ENOTSUP;
        if (v.type == SY_VALUE_EMPTY) return 0;
        rc = it->api->view_attr_set(n, keys[0].str, keys[0].len, &v, SY_ATTR_UPSERT);
        return rc == SY_EAGAIN ? 0 : rc;
    }
    if (nkeys) return SY_ENOTSUP;
    if (field == SYC_OTTL_F_VALUE_INT && v.type != SY_VALUE_INT) return SY_EINVAL;
    if (field == SYC_OTTL_F_VALUE_DOUBLE && v.type != SY_VALUE_DOUBLE) return SY_EINVAL;
    return it->api->view_set(n, fm->field, &v);
}

static int va_map_delete(void *item, void *map, const char *key, size_t len)
{
    syc_ottl_view_item_t *it = item;
    const syc_ottl_view_map_t *m = map;
    if (!m->node) return SY_ENOTSUP;
    int rc = it->api->view_attr_delete(m->node, key, len);
    return rc == SY_EAGAIN ? 0 : rc;
}

static int va_map_edit(void *item, void *map, syc_ottl_edit_fn fn, void *arg)
{
    syc_ottl_view_item_t *it = item;
    const syc_ottl_view_map_t *m = map;
    if (!m->node) return SY_ENOTSUP;
    const sy_host_api_t *api = it->api;
    size_t n = api->view_attr_count(m->node);
    /* Every attribute is read before the first edit: reads see edits at once
     * (read-your-writes), so a delete would move the ones still to visit. */
    sy_value_t local[32], *kv = n <= 16 ? local : malloc(2 * n * sizeof(*kv));
    if (!kv) return SY_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && rc >= 0; i++)
        rc = api->view_attr_at(m->node, i, &kv[2 * i], &kv[2 * i + 1]);
    for (size_t i = 0; i < n && rc >= 0; i++) {
        sy_value_t k = kv[2 * i], v = kv[2 * i + 1];
        syc_ottl_value_t ov, nv = {.type = SYC_OTTL_NIL};
        from_view(it, &v, &ov);
        const char *nk = NULL;
        size_t nkl = 0;
        switch (fn(arg, k.str, k.len, &ov, &nv, &nk, &nkl)) {
        case SYC_OTTL_EDIT_KEEP:
            rc = 0;
            break;
        case SYC_OTTL_EDIT_DELETE:
            rc = api->view_attr_delete(m->node, k.str, k.len);
            break;
        case SYC_OTTL_EDIT_SET_VALUE: {
            sy_value_t w;
            rc = to_view(&nv, &w);
            if (rc == 0) rc = api->view_attr_set(m->node, k.str, k.len, &w, SY_ATTR_UPSERT);
            break;
        }
        case SYC_OTTL_EDIT_RENAME:
            rc = api->view_attr_rename(m->node, k.str, k.len, nk, nkl);
            break;
        }
        if (rc == SY_EAGAIN) rc = 0;
    }
    if (kv != local) free(kv);
    return rc < 0 ? rc : 0;
}

static int va_dp_has_attr(void *item, const char *key, size_t len, const syc_ottl_value_t *value,
                          bool *out)
{
    syc_ottl_view_item_t *it = item;
    const sy_host_api_t *api = it->api;
    *out = false;
    if (!it->metric) return SY_ENOTSUP;
    size_t n = api->view_count(it->metric, SY_VIEW_ITEMS);
    for (size_t i = 0; i < n && !*out; i++) {
        sy_value_t v;
        if (api->view_attr_get(api->view_at(it->metric, SY_VIEW_ITEMS, i), key, len, &v) != 0)
            continue;
        if (!value) {
            *out = true;
        } else if (value->type == SYC_OTTL_STRING && v.type == SY_VALUE_STRING) {
            *out = v.len == value->u.s.len && memcmp(v.str, value->u.s.ptr, v.len) == 0;
        }
    }
    return 0;
}

/* make_list / make_map: the entries encoded (syc_anyvalue_put_entry), copied into
 * the item's chunks, and made a value by the host (value_container, ABI 1.2). */
static int va_make(syc_ottl_view_item_t *it, const syc_ottl_key_t *keys,
                   const syc_ottl_value_t *values, size_t n, syc_ottl_value_t *out)
{
    const sy_host_api_t *api = it->api;
    if (!SY_API_HAS(api, value_container)) return SY_ENOTSUP;
    syc_buf_t b = {0};
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sy_value_t v, k = {.type = SY_VALUE_STRING};
        if ((rc = to_view(&values[i], &v)) < 0) break;
        if (keys) k.str = keys[i].str, k.len = keys[i].len;
        rc = syc_anyvalue_put_entry(&b, keys ? &k : NULL, &v, NULL, 0);
    }
    char *p = rc == 0 ? chunk_alloc(it, b.len ? b.len : 1) : NULL;
    if (rc == 0 && !p) rc = SY_ENOMEM;
    if (rc == 0) {
        if (b.len) memcpy(p, b.p, b.len);
        syc_ottl_view_map_t *m = &it->pool[it->next++ % SYC_OTTL_VIEW_POOL];
        m->node = NULL;
        rc = api->value_container(keys ? SY_VALUE_MAP : SY_VALUE_ARRAY, (const uint8_t *)p, b.len,
                                  &m->value);
        if (rc == 0)
            *out = (syc_ottl_value_t){.type = keys ? SYC_OTTL_MAP : SYC_OTTL_SLICE, .u.map = m};
    }
    free(b.p);
    return rc;
}

static int va_make_list(void *item, const syc_ottl_value_t *values, size_t n, syc_ottl_value_t *out)
{
    return va_make(item, NULL, values, n, out);
}

static int va_make_map(void *item, const syc_ottl_key_t *keys, const syc_ottl_value_t *values,
                       size_t n, syc_ottl_value_t *out)
{
    return va_make(item, keys, values, n, out);
}

const syc_ottl_accessor_t syc_ottl_view_accessor = {
    .get = va_get,
    .map_get = va_map_get,
    .slice_get = va_slice_get,
    .map_len = va_map_len,
    .slice_len = va_slice_len,
    .set = va_set,
    .map_delete = va_map_delete,
    .map_edit = va_map_edit,
    .datapoint_has_attr = va_dp_has_attr,
    .make_list = va_make_list,
    .make_map = va_make_map,
};

/* ---- walking the nodes of a context ------------------------------------------- */

static int walk_scope(const sy_host_api_t *api, sy_view_node_t *sc, syc_ottl_context_t ctx,
                      syc_ottl_view_visit_fn fn, void *arg)
{
    int rc = 0;
    if (ctx == SYC_OTTL_CTX_METRIC || ctx == SYC_OTTL_CTX_DATAPOINT) {
        size_t nm = api->view_count(sc, SY_VIEW_METRICS);
        for (size_t m = 0; m < nm && rc >= 0; m++) {
            sy_view_node_t *metric = api->view_at(sc, SY_VIEW_METRICS, m);
            if (ctx == SYC_OTTL_CTX_METRIC) {
                rc = fn(metric, arg);
                continue;
            }
            size_t np = api->view_count(metric, SY_VIEW_ITEMS);
            for (size_t p = 0; p < np && rc >= 0; p++)
                rc = fn(api->view_at(metric, SY_VIEW_ITEMS, p), arg);
        }
        return rc;
    }
    size_t ni = api->view_count(sc, SY_VIEW_ITEMS);
    for (size_t i = 0; i < ni && rc >= 0; i++) {
        sy_view_node_t *item = api->view_at(sc, SY_VIEW_ITEMS, i);
        sy_node_kind_t k = api->view_kind(item);
        if (ctx == SYC_OTTL_CTX_SPAN && k == SY_NODE_SPAN) {
            rc = fn(item, arg);
        } else if (ctx == SYC_OTTL_CTX_LOG && k == SY_NODE_LOG) {
            rc = fn(item, arg);
        } else if (ctx == SYC_OTTL_CTX_SPANEVENT && k == SY_NODE_SPAN) {
            size_t ne = api->view_count(item, SY_VIEW_EVENTS);
            for (size_t e = 0; e < ne && rc >= 0; e++)
                rc = fn(api->view_at(item, SY_VIEW_EVENTS, e), arg);
        }
    }
    return rc;
}

int syc_ottl_view_walk(const sy_host_api_t *api, sy_view_node_t *root, syc_ottl_context_t ctx,
                       syc_ottl_view_visit_fn fn, void *arg)
{
    int rc = 0;
    size_t nr = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < nr && rc >= 0; r++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
        if (ctx == SYC_OTTL_CTX_RESOURCE) {
            rc = fn(res, arg);
            continue;
        }
        size_t ns = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t s = 0; s < ns && rc >= 0; s++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, s);
            rc = ctx == SYC_OTTL_CTX_SCOPE ? fn(sc, arg) : walk_scope(api, sc, ctx, fn, arg);
        }
    }
    return rc < 0 ? rc : 0;
}

/* ---- compiling a configured list --------------------------------------------- */

int syc_ottl_list_compile(const sy_host_api_t *api, const sy_cfg_node_t *node, const char *what,
                          syc_ottl_context_t ctx, bool statements, syc_ottl_list_t *list, char *err,
                          size_t err_len)
{
    list->ctx = ctx;
    if (!node || api->cfg_kind(node) == 'n') return 0;
    if (api->cfg_kind(node) != 'l') {
        snprintf(err, err_len, "%s: %s: must be a list of strings", api->cfg_where(node), what);
        return SY_EINVAL;
    }
    size_t n = api->cfg_len(node);
    syc_ottl_prog_t **progs = realloc(list->progs, (list->count + n + 1) * sizeof *progs);
    if (!progs) return SY_ENOMEM;
    list->progs = progs;
    for (size_t i = 0; i < n; i++) {
        const sy_cfg_node_t *el = api->cfg_at(node, i, NULL);
        const char *src = api->cfg_kind(el) == 's' ? api->cfg_scalar(el) : NULL;
        if (!src) {
            snprintf(err, err_len, "%s: %s[%zu]: must be a string", api->cfg_where(el), what, i);
            return SY_EINVAL;
        }
        syc_ottl_error_t e = {0};
        syc_ottl_prog_t *p = statements ? syc_ottl_compile_statement(src, strlen(src), ctx, &e)
                                        : syc_ottl_compile_condition(src, strlen(src), ctx, &e);
        if (!p) {
            snprintf(err, err_len, "%s: %s[%zu]: %s", api->cfg_where(el), what, i, e.msg);
            return SY_EINVAL;
        }
        list->progs[list->count++] = p;
    }
    return 0;
}

int syc_ottl_list_push(syc_ottl_list_t *list, syc_ottl_prog_t *prog)
{
    syc_ottl_prog_t **progs = realloc(list->progs, (list->count + 1) * sizeof *progs);
    if (!progs) {
        syc_ottl_free(prog);
        return SY_ENOMEM;
    }
    list->progs = progs;
    progs[list->count++] = prog;
    return 0;
}

int syc_ottl_context_from_cfg(const sy_host_api_t *api, const sy_cfg_node_t *node, unsigned allowed,
                              const char *what, const char *key, syc_ottl_context_t *ctx, char *err,
                              size_t err_len)
{
    const char *name = api->cfg_kind(node) == 's' ? api->cfg_scalar(node) : NULL;
    if (!name || syc_ottl_context_parse(name, ctx) < 0 || !(allowed & (1u << *ctx))) {
        snprintf(err, err_len, "%s: %s.context: unknown context '%s' for %s", api->cfg_where(node),
                 what, name ? name : "", key);
        return SY_EINVAL;
    }
    return 0;
}

int syc_ottl_list_names(const sy_host_api_t *api, const sy_cfg_node_t *node, const char *what,
                        unsigned *named, char *err, size_t err_len)
{
    if (!node || api->cfg_kind(node) != 'l') return 0; /* compiling reports the shape */
    for (size_t i = 0, n = api->cfg_len(node); i < n; i++) {
        const sy_cfg_node_t *el = api->cfg_at(node, i, NULL);
        const char *src = api->cfg_kind(el) == 's' ? api->cfg_scalar(el) : NULL;
        syc_ottl_error_t e = {0};
        if (src && syc_ottl_context_names(src, strlen(src), named, &e) < 0) {
            snprintf(err, err_len, "%s: %s[%zu]: %s", api->cfg_where(el), what, i, e.msg);
            return SY_EINVAL;
        }
    }
    return 0;
}

void syc_ottl_list_free(syc_ottl_list_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        syc_ottl_free(list->progs[i]);
    free(list->progs);
    list->progs = NULL;
    list->count = 0;
}
