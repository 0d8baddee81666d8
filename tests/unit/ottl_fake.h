/*
 * ottl_fake.h - an in-memory telemetry item and the OTTL accessor over it, for
 * tests/unit/test_ottl.c and tests/fuzz/fuzz_ottl.c. One item carries every field
 * any context has (span, span event, log, metric, data point, resource, scope);
 * maps are small fixed arrays, so nothing here allocates either.
 */
#ifndef SY_TEST_OTTL_FAKE_H
#define SY_TEST_OTTL_FAKE_H

#include <stdbool.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "ottl.h"

#define FAKE_MAP_CAP 16
#define FAKE_STR_CAP 128
#define FAKE_NMAPS   8

typedef struct fake_entry_s {
    char key[FAKE_STR_CAP];
    size_t key_len;
    syc_ottl_value_t v;
    char sval[FAKE_STR_CAP]; /* string and bytes values live here */
} fake_entry_t;

typedef struct fake_map_s {
    int n;
    fake_entry_t e[FAKE_MAP_CAP];
} fake_map_t;

typedef struct fake_slice_s {
    int n;
    syc_ottl_value_t v[4];
} fake_slice_t;

typedef struct fake_item_s {
    syc_ottl_value_t field[SYC_OTTL_F_COUNT_];
    char fstr[SYC_OTTL_F_COUNT_][FAKE_STR_CAP];
    fake_map_t maps[FAKE_NMAPS]; /* 0 attributes, 1 resource, 2 scope, 3 body map, 4.. nested */
    fake_slice_t slice;
    fake_slice_t built;  /* the last list make_list built (Split, list literals) */
    fake_map_t dp_attrs; /* the union of the metric's data point attributes */
    int sets;            /* how many times set() ran */
} fake_item_t;

static inline void fake_copy_value(syc_ottl_value_t *dst, char *store, const syc_ottl_value_t *v)
{
    *dst = *v;
    if (v->type == SYC_OTTL_STRING || v->type == SYC_OTTL_BYTES) {
        size_t n = v->u.s.len < FAKE_STR_CAP - 1 ? v->u.s.len : FAKE_STR_CAP - 1;
        memmove(store, v->u.s.ptr, n); /* may alias (truncate_all) */
        store[n] = '\0';
        dst->u.s.ptr = store;
        dst->u.s.len = n;
    }
}

static inline int fake_find(fake_map_t *m, const char *key, size_t len)
{
    for (int i = 0; i < m->n; i++)
        if (m->e[i].key_len == len && memcmp(m->e[i].key, key, len) == 0) return i;
    return -1;
}

static inline int fake_put(fake_map_t *m, const char *key, size_t len, const syc_ottl_value_t *v)
{
    if (len >= FAKE_STR_CAP) return SY_EINVAL;
    int i = fake_find(m, key, len);
    if (i < 0) {
        if (m->n == FAKE_MAP_CAP) return SY_ENOMEM;
        i = m->n++;
        memcpy(m->e[i].key, key, len);
        m->e[i].key[len] = '\0';
        m->e[i].key_len = len;
    }
    fake_copy_value(&m->e[i].v, m->e[i].sval, v);
    return 0;
}

static inline void fake_remove(fake_map_t *m, int i)
{
    memmove(&m->e[i], &m->e[i + 1], (size_t)(m->n - i - 1) * sizeof m->e[0]);
    m->n--;
}

static inline void fake_put_str(fake_map_t *m, const char *key, const char *s)
{
    syc_ottl_value_t v = {.type = SYC_OTTL_STRING, .u.s = {s, strlen(s)}};
    fake_put(m, key, strlen(key), &v);
}

static inline void fake_put_int(fake_map_t *m, const char *key, int64_t i)
{
    syc_ottl_value_t v = {.type = SYC_OTTL_INT, .u.i = i};
    fake_put(m, key, strlen(key), &v);
}

static inline void fake_set_field(fake_item_t *it, syc_ottl_field_t f, const syc_ottl_value_t *v)
{
    fake_copy_value(&it->field[f], it->fstr[f], v);
}

static inline void fake_set_str(fake_item_t *it, syc_ottl_field_t f, const char *s)
{
    syc_ottl_value_t v = {.type = SYC_OTTL_STRING, .u.s = {s, strlen(s)}};
    fake_set_field(it, f, &v);
}

static inline void fake_set_int(fake_item_t *it, syc_ottl_field_t f, int64_t i)
{
    it->field[f] = (syc_ottl_value_t){.type = SYC_OTTL_INT, .u.i = i};
}

static inline int fake_get(void *item, syc_ottl_field_t field, syc_ottl_value_t *out)
{
    fake_item_t *it = item;
    if ((unsigned)field >= SYC_OTTL_F_COUNT_) return SY_ENOTSUP;
    *out = it->field[field];
    return 0;
}

static inline int fake_map_get(void *item, void *map, const char *key, size_t len,
                               syc_ottl_value_t *out)
{
    (void)item;
    fake_map_t *m = map;
    int i = fake_find(m, key, len);
    if (i < 0)
        out->type = SYC_OTTL_NIL;
    else
        *out = m->e[i].v;
    return 0;
}

static inline int fake_slice_get(void *item, void *slice, int64_t index, syc_ottl_value_t *out)
{
    (void)item;
    fake_slice_t *s = slice;
    if (index < 0 || index >= s->n) return SY_EINVAL;
    *out = s->v[index];
    return 0;
}

static inline size_t fake_map_len(void *item, void *map)
{
    (void)item;
    return (size_t)((fake_map_t *)map)->n;
}

static inline size_t fake_slice_len(void *item, void *slice)
{
    (void)item;
    return (size_t)((fake_slice_t *)slice)->n;
}

static inline int fake_set(void *item, syc_ottl_field_t field, const syc_ottl_key_t *keys,
                           size_t nkeys, const syc_ottl_value_t *value)
{
    fake_item_t *it = item;
    it->sets++;
    if (nkeys == 0) {
        if (value->type == SYC_OTTL_MAP || value->type == SYC_OTTL_SLICE) return SY_ENOTSUP;
        fake_set_field(it, field, value);
        return 0;
    }
    syc_ottl_value_t cur = it->field[field];
    for (size_t k = 0; k + 1 < nkeys; k++) {
        if (cur.type != SYC_OTTL_MAP || keys[k].is_index) return SY_EINVAL;
        fake_map_get(item, cur.u.map, keys[k].str, keys[k].len, &cur);
    }
    if (cur.type != SYC_OTTL_MAP || keys[nkeys - 1].is_index) return SY_EINVAL;
    if (value->type == SYC_OTTL_MAP || value->type == SYC_OTTL_SLICE) return SY_ENOTSUP;
    return fake_put(cur.u.map, keys[nkeys - 1].str, keys[nkeys - 1].len, value);
}

static inline int fake_map_delete(void *item, void *map, const char *key, size_t len)
{
    (void)item;
    int i = fake_find(map, key, len);
    if (i >= 0) fake_remove(map, i);
    return 0;
}

static inline int fake_map_edit(void *item, void *map, syc_ottl_edit_fn fn, void *arg)
{
    (void)item;
    fake_map_t *m = map;
    for (int i = 0; i < m->n;) {
        syc_ottl_value_t nv;
        const char *nk = NULL;
        size_t nkl = 0;
        switch (fn(arg, m->e[i].key, m->e[i].key_len, &m->e[i].v, &nv, &nk, &nkl)) {
        case SYC_OTTL_EDIT_KEEP:
            i++;
            break;
        case SYC_OTTL_EDIT_DELETE:
            fake_remove(m, i);
            break;
        case SYC_OTTL_EDIT_SET_VALUE:
            fake_copy_value(&m->e[i].v, m->e[i].sval, &nv);
            i++;
            break;
        case SYC_OTTL_EDIT_RENAME: {
            if (nkl >= FAKE_STR_CAP) return SY_EINVAL;
            int j = fake_find(m, nk, nkl);
            char tmp[FAKE_STR_CAP];
            memcpy(tmp, nk, nkl);
            if (j >= 0 && j != i) {
                fake_remove(m, j);
                if (j < i) i--;
            }
            memcpy(m->e[i].key, tmp, nkl);
            m->e[i].key[nkl] = '\0';
            m->e[i].key_len = nkl;
            i++;
            break;
        }
        }
    }
    return 0;
}

static inline int fake_dp_has_attr(void *item, const char *key, size_t len,
                                   const syc_ottl_value_t *value, bool *out)
{
    fake_item_t *it = item;
    int i = fake_find(&it->dp_attrs, key, len);
    *out = i >= 0;
    if (i >= 0 && value) {
        const syc_ottl_value_t *v = &it->dp_attrs.e[i].v;
        *out = v->type == SYC_OTTL_STRING && v->u.s.len == value->u.s.len &&
               memcmp(v->u.s.ptr, value->u.s.ptr, v->u.s.len) == 0;
    }
    return 0;
}

/* Lists of up to 4 values; the values are kept as they are (their strings live
 * in the program, the item or the scratch for the evaluation). */
static inline int fake_make_list(void *item, const syc_ottl_value_t *values, size_t n,
                                 syc_ottl_value_t *out)
{
    fake_item_t *it = item;
    if (n > 4) return SY_ENOMEM;
    it->built.n = (int)n;
    for (size_t i = 0; i < n; i++)
        it->built.v[i] = values[i];
    *out = (syc_ottl_value_t){.type = SYC_OTTL_SLICE, .u.slice = &it->built};
    return 0;
}

static const syc_ottl_accessor_t fake_accessor = {
    .get = fake_get,
    .map_get = fake_map_get,
    .slice_get = fake_slice_get,
    .map_len = fake_map_len,
    .slice_len = fake_slice_len,
    .set = fake_set,
    .map_delete = fake_map_delete,
    .map_edit = fake_map_edit,
    .datapoint_has_attr = fake_dp_has_attr,
    .make_list = fake_make_list,
};

/* A span/log/data point with every field filled in, maps wired to their fields. */
static inline void fake_item_init(fake_item_t *it)
{
    memset(it, 0, sizeof *it);
    it->field[SYC_OTTL_F_ATTRIBUTES] =
        (syc_ottl_value_t){.type = SYC_OTTL_MAP, .u.map = &it->maps[0]};
    it->field[SYC_OTTL_F_RESOURCE_ATTRIBUTES] =
        (syc_ottl_value_t){.type = SYC_OTTL_MAP, .u.map = &it->maps[1]};
    it->field[SYC_OTTL_F_SCOPE_ATTRIBUTES] =
        (syc_ottl_value_t){.type = SYC_OTTL_MAP, .u.map = &it->maps[2]};
    static const unsigned char trace_id[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                               0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
    static const unsigned char span_id[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
    it->field[SYC_OTTL_F_TRACE_ID] =
        (syc_ottl_value_t){.type = SYC_OTTL_BYTES, .u.s = {(const char *)trace_id, 16}};
    it->field[SYC_OTTL_F_SPAN_ID] =
        (syc_ottl_value_t){.type = SYC_OTTL_BYTES, .u.s = {(const char *)span_id, 8}};
    fake_set_str(it, SYC_OTTL_F_NAME, "GET /api/users");
    fake_set_int(it, SYC_OTTL_F_KIND, 2); /* SERVER */
    fake_set_int(it, SYC_OTTL_F_STATUS_CODE, 2);
    fake_set_str(it, SYC_OTTL_F_STATUS_MESSAGE, "boom");
    fake_set_int(it, SYC_OTTL_F_START_TIME_UNIX_NANO, 1700000000000000000);
    fake_set_int(it, SYC_OTTL_F_END_TIME_UNIX_NANO, 1700000000500000000);
    fake_set_int(it, SYC_OTTL_F_TIME_UNIX_NANO, 1700000000100000000);
    fake_set_int(it, SYC_OTTL_F_SEVERITY_NUMBER, 13); /* WARN */
    fake_set_str(it, SYC_OTTL_F_SEVERITY_TEXT, "WARN");
    fake_set_str(it, SYC_OTTL_F_BODY, "user password=hunter2 logged in");
    fake_set_str(it, SYC_OTTL_F_SCOPE_NAME, "io.opentelemetry.http");
    fake_set_str(it, SYC_OTTL_F_SCOPE_VERSION, "1.2.3");
    fake_set_str(it, SYC_OTTL_F_METRIC_NAME, "http.server.duration");
    fake_set_int(it, SYC_OTTL_F_METRIC_TYPE, 3); /* HISTOGRAM */
    fake_set_str(it, SYC_OTTL_F_METRIC_UNIT, "ms");
    fake_set_int(it, SYC_OTTL_F_VALUE_INT, 42);
    it->field[SYC_OTTL_F_VALUE_DOUBLE] = (syc_ottl_value_t){.type = SYC_OTTL_DOUBLE, .u.d = 0.25};

    fake_put_str(&it->maps[0], "http.method", "GET");
    fake_put_int(&it->maps[0], "http.status_code", 503);
    syc_ottl_value_t d = {.type = SYC_OTTL_DOUBLE, .u.d = 1.5};
    fake_put(&it->maps[0], "ratio", 5, &d);
    syc_ottl_value_t b = {.type = SYC_OTTL_BOOL, .u.b = true};
    fake_put(&it->maps[0], "grpc", 4, &b);
    fake_put_str(&it->maps[0], "db.password", "secret");
    syc_ottl_value_t nested = {.type = SYC_OTTL_MAP, .u.map = &it->maps[4]};
    fake_put(&it->maps[0], "nested", 6, &nested);
    fake_put_str(&it->maps[4], "inner", "deep");
    it->slice.n = 2;
    it->slice.v[0] = (syc_ottl_value_t){.type = SYC_OTTL_STRING, .u.s = {"first", 5}};
    it->slice.v[1] = (syc_ottl_value_t){.type = SYC_OTTL_INT, .u.i = 7};
    syc_ottl_value_t sl = {.type = SYC_OTTL_SLICE, .u.slice = &it->slice};
    fake_put(&it->maps[0], "list", 4, &sl);

    fake_put_str(&it->maps[1], "service.name", "checkout");
    fake_put_str(&it->maps[1], "host.name", "pod-7f9c");
    fake_put_str(&it->maps[2], "lib", "otel");
    fake_put_str(&it->dp_attrs, "http.method", "GET");
}

#endif
