/*
 * ottl_eval.c - evaluates a compiled OTTL program against one item through the
 * caller's accessor: comparisons with OTTL's rules (nil, int/double mixing, strings
 * and bytes compared bytewise, bool false < true, everything else only (un)equal),
 * the converters and the editors.
 *
 * Nothing here allocates. Recursion follows the tree, whose depth the compiler
 * bounds; strings that converters and editors build go to the scratch buffer,
 * which is reset at the start of each evaluation; regex matches use the scratch's
 * PCRE2 match data and a match limit, so that no pattern can run away.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "hash.h"
#include "ottl_internal.h"

struct syc_ottl_scratch_s {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    size_t used, cap;
    char *buf;
};

/* Enough for any pattern an operator writes; a pathological one errors out. */
#define MATCH_LIMIT 1000000u
#define DEPTH_LIMIT 10000u

syc_ottl_scratch_t *syc_ottl_scratch_new(size_t bytes)
{
    syc_ottl_scratch_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->cap = bytes ? bytes : SYC_OTTL_SCRATCH_DEFAULT;
    s->buf = malloc(s->cap);
    s->md = pcre2_match_data_create(32, NULL);
    s->mctx = pcre2_match_context_create(NULL);
    if (!s->buf || !s->md || !s->mctx) {
        syc_ottl_scratch_free(s);
        return NULL;
    }
    pcre2_set_match_limit(s->mctx, MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, DEPTH_LIMIT);
    return s;
}

void syc_ottl_scratch_free(syc_ottl_scratch_t *s)
{
    if (!s) return;
    pcre2_match_data_free(s->md);
    pcre2_match_context_free(s->mctx);
    free(s->buf);
    free(s);
}

typedef struct eval_s {
    const syc_ottl_accessor_t *acc;
    void *item;
    syc_ottl_scratch_t *s;
} eval_t;

static int eval_value(eval_t *ev, const syc__ottl_node_t *n, syc_ottl_value_t *out);
static int eval_string_fn(eval_t *ev, const syc__ottl_node_t *n, const syc_ottl_value_t *v,
                          syc_ottl_value_t *out);
static int eval_split(eval_t *ev, const syc__ottl_node_t *n, const syc_ottl_value_t *v,
                      syc_ottl_value_t *out);
static int eval_container(eval_t *ev, const syc__ottl_node_t *n, syc_ottl_value_t *out);
static int eval_bool(eval_t *ev, const syc__ottl_node_t *n, bool *out);

/* ---- strings in the scratch ---- */

static int scratch_put(eval_t *ev, const void *p, size_t len)
{
    syc_ottl_scratch_t *s = ev->s;
    if (s->cap - s->used < len) return SY_ENOMEM;
    memmove(s->buf + s->used, p, len); /* p may lie in the scratch, at or after used */
    s->used += len;
    return 0;
}

/* n bytes of the scratch aligned for any value, or NULL when it is full. */
static void *scratch_alloc(eval_t *ev, size_t n)
{
    syc_ottl_scratch_t *s = ev->s;
    size_t at = (s->used + _Alignof(max_align_t) - 1) & ~(size_t)(_Alignof(max_align_t) - 1);
    if (at > s->cap || s->cap - at < n) return NULL;
    s->used = at + n;
    return s->buf + at;
}

/* A double as the collector's StringLikeGetter writes it (Go's encoding/json):
 * the shortest digits that read back, plain unless |d| < 1e-6 or >= 1e21, where
 * it is exponent form with at least one exponent digit ("1e-7", "1e+21"). NaN and
 * the infinities have no such form: 0 (the caller reports a type error). */
size_t syc_ottl_format_double(double d, char *buf, size_t cap)
{
    if (isnan(d) || isinf(d)) return 0;
    char e[40];
    int prec = 0;
    for (; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec, d);
        if (strtod(e, NULL) == d) break;
    }
    double abs = fabs(d);
    if (abs != 0 && (abs < 1e-6 || abs >= 1e21)) {
        char *x = strchr(e, 'e');
        /* C writes at least two exponent digits; Go's JSON drops a leading 0. */
        if (x && x[2] == '0' && x[3]) memmove(x + 2, x + 3, strlen(x + 3) + 1);
        return (size_t)snprintf(buf, cap, "%s", e);
    }
    const char *x = strchr(e, 'e');
    int exp = x ? atoi(x + 1) : 0;
    int decimals = prec - exp > 0 ? prec - exp : 0;
    return (size_t)snprintf(buf, cap, "%.*f", decimals, d);
}

/*
 * v as a string the way OTTL's StringLikeGetter reads it: strings as they are,
 * bytes as lowercase hex, numbers and bools formatted. Formatted text goes to the
 * scratch. Returns 1 for nil (no string), 0, or an error for maps and slices.
 */
static int string_like(eval_t *ev, const syc_ottl_value_t *v, const char **p, size_t *len)
{
    char tmp[64];
    size_t n;
    switch (v->type) {
    case SYC_OTTL_NIL:
        return 1;
    case SYC_OTTL_STRING:
        *p = v->u.s.ptr;
        *len = v->u.s.len;
        return 0;
    case SYC_OTTL_BYTES: {
        syc_ottl_scratch_t *s = ev->s;
        if (s->cap - s->used < 2 * v->u.s.len) return SY_ENOMEM;
        static const char hex[] = "0123456789abcdef";
        char *o = s->buf + s->used;
        for (size_t i = 0; i < v->u.s.len; i++) {
            o[2 * i] = hex[(unsigned char)v->u.s.ptr[i] >> 4];
            o[2 * i + 1] = hex[(unsigned char)v->u.s.ptr[i] & 15];
        }
        s->used += 2 * v->u.s.len;
        *p = o;
        *len = 2 * v->u.s.len;
        return 0;
    }
    case SYC_OTTL_BOOL:
        n = (size_t)snprintf(tmp, sizeof tmp, "%s", v->u.b ? "true" : "false");
        break;
    case SYC_OTTL_INT:
        n = (size_t)snprintf(tmp, sizeof tmp, "%" PRId64, v->u.i);
        break;
    case SYC_OTTL_DOUBLE:
        n = syc_ottl_format_double(v->u.d, tmp, sizeof tmp);
        if (n == 0) return SY_EINVAL;
        break;
    default:
        return SY_EINVAL; /* maps and slices would be JSON: not supported yet */
    }
    size_t at = ev->s->used;
    int rc = scratch_put(ev, tmp, n);
    if (rc) return rc;
    *p = ev->s->buf + at;
    *len = n;
    return 0;
}

/* ---- comparison ---- */

static bool cmp_order(int c, syc__ottl_cmp_t op)
{
    switch (op) {
    case CMP_EQ:
        return c == 0;
    case CMP_NE:
        return c != 0;
    case CMP_LT:
        return c < 0;
    case CMP_LE:
        return c <= 0;
    case CMP_GT:
        return c > 0;
    case CMP_GE:
        return c >= 0;
    }
    return false;
}

static int cmp_bytes(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* Values of types that do not compare: only != holds. */
static bool unequal(syc__ottl_cmp_t op)
{
    return op == CMP_NE;
}

static bool is_nil_like(const syc_ottl_value_t *v)
{
    /* A nil byte slice is nil ([]byte(nil) == nil in the collector). */
    return v->type == SYC_OTTL_NIL || (v->type == SYC_OTTL_BYTES && v->u.s.ptr == NULL);
}

static bool compare(const syc_ottl_value_t *a, const syc_ottl_value_t *b, syc__ottl_cmp_t op)
{
    bool an = is_nil_like(a), bn = is_nil_like(b);
    if (an || bn) {
        if (an && bn) return op == CMP_EQ;
        return unequal(op);
    }
    if (a->type == SYC_OTTL_INT && b->type == SYC_OTTL_INT)
        return cmp_order(a->u.i < b->u.i ? -1 : a->u.i > b->u.i, op);
    if ((a->type == SYC_OTTL_INT || a->type == SYC_OTTL_DOUBLE) &&
        (b->type == SYC_OTTL_INT || b->type == SYC_OTTL_DOUBLE)) {
        double x = a->type == SYC_OTTL_INT ? (double)a->u.i : a->u.d;
        double y = b->type == SYC_OTTL_INT ? (double)b->u.i : b->u.d;
        switch (op) { /* NaN: every comparison but != is false, as in Go */
        case CMP_EQ:
            return x == y;
        case CMP_NE:
            return x != y;
        case CMP_LT:
            return x < y;
        case CMP_LE:
            return x <= y;
        case CMP_GT:
            return x > y;
        case CMP_GE:
            return x >= y;
        }
        return false;
    }
    if (a->type != b->type) return unequal(op);
    switch (a->type) {
    case SYC_OTTL_BOOL:
        return cmp_order((int)a->u.b - (int)b->u.b, op);
    case SYC_OTTL_STRING:
    case SYC_OTTL_BYTES:
        return cmp_order(cmp_bytes(a->u.s.ptr, a->u.s.len, b->u.s.ptr, b->u.s.len), op);
    case SYC_OTTL_MAP:
    case SYC_OTTL_SLICE: /* identity, and only == and != */
        if (op == CMP_EQ) return a->u.map == b->u.map;
        if (op == CMP_NE) return a->u.map != b->u.map;
        return false;
    default:
        return false;
    }
}

/* ---- paths ---- */

static int apply_keys(eval_t *ev, syc_ottl_value_t *v, const syc_ottl_key_t *keys, size_t nkeys)
{
    for (size_t k = 0; k < nkeys; k++) {
        if (v->type == SYC_OTTL_NIL) return 0; /* a missing key: nil all the way down */
        int rc;
        if (keys[k].is_index) {
            if (v->type != SYC_OTTL_SLICE || !ev->acc->slice_get) return SY_EINVAL;
            rc = ev->acc->slice_get(ev->item, v->u.slice, keys[k].index, v);
        } else {
            if (v->type != SYC_OTTL_MAP || !ev->acc->map_get) return SY_EINVAL;
            rc = ev->acc->map_get(ev->item, v->u.map, keys[k].str, keys[k].len, v);
        }
        if (rc) return rc;
    }
    return 0;
}

static int eval_path(eval_t *ev, const syc__ottl_node_t *n, syc_ottl_value_t *out)
{
    out->type = SYC_OTTL_NIL;
    int rc = ev->acc->get(ev->item, n->u.path.field, out);
    if (rc) return rc;
    return apply_keys(ev, out, n->u.path.keys, n->u.path.nkeys);
}

/* ---- converters ---- */

/* 1 on a match, 0 on none, or an error (match limit, bad UTF-8 is not one). */
static int regex_match(eval_t *ev, const syc__ottl_regex_t *re, const char *s, size_t len)
{
    int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, ev->s->md, ev->s->mctx);
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    return SY_EINVAL;
}

static int convert_int(const syc_ottl_value_t *v, syc_ottl_value_t *out)
{
    out->type = SYC_OTTL_INT;
    switch (v->type) {
    case SYC_OTTL_INT:
        out->u.i = v->u.i;
        return 0;
    case SYC_OTTL_DOUBLE:
        if (!(v->u.d > -9223372036854775808.0 && v->u.d < 9223372036854775808.0)) break;
        out->u.i = (int64_t)v->u.d; /* truncation toward zero, as Go's int64() */
        return 0;
    case SYC_OTTL_BOOL:
        out->u.i = v->u.b;
        return 0;
    case SYC_OTTL_STRING: {
        char buf[32];
        if (v->u.s.len == 0 || v->u.s.len >= sizeof buf) break;
        memcpy(buf, v->u.s.ptr, v->u.s.len);
        buf[v->u.s.len] = '\0';
        char *end;
        errno = 0;
        long long x = strtoll(buf, &end, 10);
        if (*end || errno || buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n') break;
        out->u.i = x;
        return 0;
    }
    default:
        break;
    }
    out->type = SYC_OTTL_NIL;
    return 0;
}

static int convert_double(const syc_ottl_value_t *v, syc_ottl_value_t *out)
{
    out->type = SYC_OTTL_DOUBLE;
    switch (v->type) {
    case SYC_OTTL_INT:
        out->u.d = (double)v->u.i;
        return 0;
    case SYC_OTTL_DOUBLE:
        out->u.d = v->u.d;
        return 0;
    case SYC_OTTL_BOOL:
        out->u.d = v->u.b ? 1.0 : 0.0;
        return 0;
    case SYC_OTTL_STRING: {
        char buf[64];
        if (v->u.s.len == 0 || v->u.s.len >= sizeof buf) break;
        memcpy(buf, v->u.s.ptr, v->u.s.len);
        buf[v->u.s.len] = '\0';
        if (buf[0] == ' ' || buf[0] == '\t' || buf[0] == '\n') break;
        char *end;
        double d = strtod(buf, &end);
        if (*end) break;
        out->u.d = d;
        return 0;
    }
    default:
        break;
    }
    out->type = SYC_OTTL_NIL;
    return 0;
}

/* The value type an Is* converter tests for. */
static syc_ottl_type_t is_type_of(int fn)
{
    switch (fn) {
    case FN_ISSTRING:
        return SYC_OTTL_STRING;
    case FN_ISINT:
        return SYC_OTTL_INT;
    case FN_ISDOUBLE:
        return SYC_OTTL_DOUBLE;
    case FN_ISBOOL:
        return SYC_OTTL_BOOL;
    case FN_ISMAP:
        return SYC_OTTL_MAP;
    default:
        return SYC_OTTL_SLICE; /* FN_ISLIST */
    }
}

static int eval_call(eval_t *ev, const syc__ottl_node_t *n, syc_ottl_value_t *out)
{
    syc__ottl_node_t *const *args = n->u.call.args;
    syc_ottl_value_t v = {.type = SYC_OTTL_NIL};
    int rc;
    int fn = n->u.call.fn;
    if (fn != FN_CONCAT && fn != FN_HASATTRKEYONDATAPOINT && fn != FN_HASATTRONDATAPOINT &&
        (rc = eval_value(ev, args[0], &v)))
        return rc;
    out->type = SYC_OTTL_BOOL;
    switch (fn) {
    case FN_ISMATCH: {
        const char *p;
        size_t len;
        size_t mark = ev->s->used;
        rc = string_like(ev, &v, &p, &len);
        if (rc == 1 || rc == SY_EINVAL) { /* nil, maps and slices never match */
            out->u.b = false;
            return 0;
        }
        if (rc) return rc;
        rc = regex_match(ev, n->u.call.re, p, len);
        ev->s->used = mark;
        if (rc < 0) return rc;
        out->u.b = rc == 1;
        return 0;
    }
    case FN_ISSTRING:
    case FN_ISINT:
    case FN_ISDOUBLE:
    case FN_ISBOOL:
    case FN_ISMAP:
    case FN_ISLIST:
        out->u.b = v.type == is_type_of(fn);
        return 0;
    case FN_LEN:
        out->type = SYC_OTTL_INT;
        if (v.type == SYC_OTTL_STRING || v.type == SYC_OTTL_BYTES)
            out->u.i = (int64_t)v.u.s.len;
        else if (v.type == SYC_OTTL_MAP && ev->acc->map_len)
            out->u.i = (int64_t)ev->acc->map_len(ev->item, v.u.map);
        else if (v.type == SYC_OTTL_SLICE && ev->acc->slice_len)
            out->u.i = (int64_t)ev->acc->slice_len(ev->item, v.u.slice);
        else
            return SY_EINVAL;
        return 0;
    case FN_CONCAT: {
        const syc__ottl_node_t *list = args[0];
        const syc_ottl_value_t *delim = &args[1]->u.lit;
        size_t start = ev->s->used;
        for (size_t i = 0; i < list->u.list.n; i++) {
            size_t mark = ev->s->used;
            if ((rc = eval_value(ev, list->u.list.items[i], &v))) return rc;
            const char *p = "<nil>";
            size_t len = 5;
            rc = string_like(ev, &v, &p, &len);
            if (rc < 0) return rc;
            /* The piece may sit in the scratch after mark; move it down to mark. */
            ev->s->used = mark;
            if ((rc = scratch_put(ev, p, len))) return rc;
            if (i + 1 < list->u.list.n && (rc = scratch_put(ev, delim->u.s.ptr, delim->u.s.len)))
                return rc;
        }
        out->type = SYC_OTTL_STRING;
        out->u.s.ptr = ev->s->buf + start;
        out->u.s.len = ev->s->used - start;
        return 0;
    }
    case FN_HASATTRKEYONDATAPOINT:
    case FN_HASATTRONDATAPOINT: {
        if (!ev->acc->datapoint_has_attr) return SY_ENOTSUP;
        const syc_ottl_value_t *key = &args[0]->u.lit;
        const syc_ottl_value_t *val = fn == FN_HASATTRONDATAPOINT ? &args[1]->u.lit : NULL;
        return ev->acc->datapoint_has_attr(ev->item, key->u.s.ptr, key->u.s.len, val, &out->u.b);
    }
    case FN_INT:
        return convert_int(&v, out);
    case FN_DOUBLE:
        return convert_double(&v, out);
    case FN_STRING: {
        const char *p;
        size_t len;
        rc = string_like(ev, &v, &p, &len);
        if (rc == 1) {
            out->type = SYC_OTTL_NIL;
            return 0;
        }
        if (rc) return rc;
        out->type = SYC_OTTL_STRING;
        out->u.s.ptr = p;
        out->u.s.len = len;
        return 0;
    }
    case FN_TOLOWERCASE:
    case FN_TOUPPERCASE:
    case FN_SUBSTRING:
    case FN_SHA256:
    case FN_SHA1:
    case FN_MD5:
        return eval_string_fn(ev, n, &v, out);
    case FN_SPLIT:
        return eval_split(ev, n, &v, out);
    default:
        return SY_EINVAL;
    }
}

/* A string argument of a converter that takes only strings (OTTL's StringGetter). */
static int want_string(const syc_ottl_value_t *v, const char **p, size_t *len)
{
    if (v->type != SYC_OTTL_STRING) return SY_EINVAL;
    *p = v->u.s.ptr;
    *len = v->u.s.len;
    return 0;
}

/* A list or map literal (set()'s value), built by the accessor from the values of
 * its items. The values array lives in the scratch. */
static int eval_container(eval_t *ev, const syc__ottl_node_t *n, syc_ottl_value_t *out)
{
    bool is_map = n->kind == N_MAPLIT;
    size_t count = is_map ? n->u.maplit.n : n->u.list.n;
    syc__ottl_node_t *const *items = is_map ? n->u.maplit.values : n->u.list.items;
    if (is_map ? !ev->acc->make_map : !ev->acc->make_list) return SY_ENOTSUP;
    syc_ottl_value_t *vals = scratch_alloc(ev, (count ? count : 1) * sizeof *vals);
    if (!vals) return SY_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        int rc = eval_value(ev, items[i], &vals[i]);
        if (rc) return rc;
    }
    return is_map ? ev->acc->make_map(ev->item, n->u.maplit.keys, vals, count, out)
                  : ev->acc->make_list(ev->item, vals, count, out);
}

/* The width of the UTF-8 sequence at p (1 for a stray byte or a cut sequence). */
static size_t utf8_step(const char *p, size_t left)
{
    unsigned char c = (unsigned char)p[0];
    size_t w = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    return w > left ? 1 : w;
}

/* Split(target, delimiter) as Go's strings.Split: the pieces between the
 * delimiters (an empty delimiter: every UTF-8 sequence), as a list the accessor
 * builds. */
static int eval_split(eval_t *ev, const syc__ottl_node_t *n, const syc_ottl_value_t *v,
                      syc_ottl_value_t *out)
{
    const char *p;
    size_t len;
    int rc;
    if ((rc = want_string(v, &p, &len))) return rc;
    if (!ev->acc->make_list) return SY_ENOTSUP;
    const syc_ottl_value_t *d = &n->u.call.args[1]->u.lit;
    size_t dl = d->u.s.len, count = 0;
    /* Count the pieces first, to take the array from the scratch in one go. */
    for (size_t i = 0; i <= len;) {
        size_t step = 1;
        if (dl == 0) {
            if (i == len) break;
            step = utf8_step(p + i, len - i);
            count++;
            i += step;
            continue;
        }
        const char *hit = i < len ? memmem(p + i, len - i, d->u.s.ptr, dl) : NULL;
        count++;
        if (!hit) break;
        i = (size_t)(hit - p) + dl;
    }
    syc_ottl_value_t *vals = scratch_alloc(ev, (count ? count : 1) * sizeof *vals);
    if (!vals) return SY_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; k < count;) {
        size_t end;
        if (dl == 0) {
            end = i + utf8_step(p + i, len - i);
        } else {
            const char *hit = i < len ? memmem(p + i, len - i, d->u.s.ptr, dl) : NULL;
            end = hit ? (size_t)(hit - p) : len;
        }
        vals[k++] = (syc_ottl_value_t){.type = SYC_OTTL_STRING, .u.s = {p + i, end - i}};
        i = dl == 0 ? end : end + dl;
    }
    return ev->acc->make_list(ev->item, vals, count, out);
}

/* l op r as OTTL's math: both ints (wrapping as Go's int64) or both doubles;
 * anything else, and a division by zero, is a run-time error. */
static int eval_math(eval_t *ev, const syc__ottl_node_t *n, syc_ottl_value_t *out)
{
    syc_ottl_value_t a, b;
    int rc;
    if ((rc = eval_value(ev, n->u.math.l, &a)) || (rc = eval_value(ev, n->u.math.r, &b))) return rc;
    if (a.type == SYC_OTTL_INT && b.type == SYC_OTTL_INT) {
        uint64_t x = (uint64_t)a.u.i, y = (uint64_t)b.u.i;
        out->type = SYC_OTTL_INT;
        switch (n->u.math.op) {
        case '+':
            out->u.i = (int64_t)(x + y);
            return 0;
        case '-':
            out->u.i = (int64_t)(x - y);
            return 0;
        case '*':
            out->u.i = (int64_t)(x * y);
            return 0;
        default:
            if (b.u.i == 0) return SY_EINVAL;
            out->u.i = (b.u.i == -1) ? (int64_t)(0 - x) : a.u.i / b.u.i; /* MinInt64 / -1 wraps */
            return 0;
        }
    }
    if (a.type == SYC_OTTL_DOUBLE && b.type == SYC_OTTL_DOUBLE) {
        out->type = SYC_OTTL_DOUBLE;
        switch (n->u.math.op) {
        case '+':
            out->u.d = a.u.d + b.u.d;
            return 0;
        case '-':
            out->u.d = a.u.d - b.u.d;
            return 0;
        case '*':
            out->u.d = a.u.d * b.u.d;
            return 0;
        default:
            if (b.u.d == 0) return SY_EINVAL;
            out->u.d = a.u.d / b.u.d;
            return 0;
        }
    }
    return SY_EINVAL;
}

/* The string converters: case, Substring, digests. The result goes to the scratch. */
static int eval_string_fn(eval_t *ev, const syc__ottl_node_t *n, const syc_ottl_value_t *v,
                          syc_ottl_value_t *out)
{
    const char *p;
    size_t len;
    int rc;
    if ((rc = want_string(v, &p, &len))) return rc;
    size_t at = ev->s->used;
    switch (n->u.call.fn) {
    case FN_TOLOWERCASE:
    case FN_TOUPPERCASE: {
        if ((rc = scratch_put(ev, p, len))) return rc;
        bool lower = n->u.call.fn == FN_TOLOWERCASE;
        for (char *c = ev->s->buf + at; c < ev->s->buf + ev->s->used; c++) {
            if (lower && *c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
            if (!lower && *c >= 'a' && *c <= 'z') *c = (char)(*c - 'a' + 'A');
        }
        break;
    }
    case FN_SUBSTRING: {
        syc_ottl_value_t start, count;
        if ((rc = eval_value(ev, n->u.call.args[1], &start)) ||
            (rc = eval_value(ev, n->u.call.args[2], &count)))
            return rc;
        if (start.type != SYC_OTTL_INT || count.type != SYC_OTTL_INT) return SY_EINVAL;
        /* As the collector: start >= 0, length > 0, start + length within the
         * target (in bytes). */
        if (start.u.i < 0 || count.u.i <= 0 || (uint64_t)start.u.i > len ||
            (uint64_t)count.u.i > len - (uint64_t)start.u.i)
            return SY_EINVAL;
        out->type = SYC_OTTL_STRING;
        out->u.s.ptr = p + start.u.i;
        out->u.s.len = (size_t)count.u.i;
        return 0;
    }
    default: {
        static const char *const algs[] = {[FN_SHA256 - FN_SHA256] = "sha256",
                                           [FN_SHA1 - FN_SHA256] = "sha1",
                                           [FN_MD5 - FN_SHA256] = "md5"};
        char hex[129];
        int hn = syc_hash_hex(algs[n->u.call.fn - FN_SHA256], p, len, hex, sizeof hex);
        if (hn < 0) return hn;
        if ((rc = scratch_put(ev, hex, (size_t)hn))) return rc;
        break;
    }
    }
    out->type = SYC_OTTL_STRING;
    out->u.s.ptr = ev->s->buf + at;
    out->u.s.len = ev->s->used - at;
    return 0;
}

static int eval_value(eval_t *ev, const syc__ottl_node_t *n, syc_ottl_value_t *out)
{
    switch (n->kind) {
    case N_MATH:
        return eval_math(ev, n, out);
    case N_LITERAL:
        *out = n->u.lit;
        return 0;
    case N_PATH:
        return eval_path(ev, n, out);
    case N_CALL:
        return eval_call(ev, n, out);
    case N_LIST:
    case N_MAPLIT:
        return eval_container(ev, n, out);
    default:
        out->type = SYC_OTTL_BOOL;
        return eval_bool(ev, n, &out->u.b);
    }
}

static int eval_bool(eval_t *ev, const syc__ottl_node_t *n, bool *out)
{
    int rc;
    /* and/or chains lean right (see parse_chain): walk them without recursing. */
    while (n->kind == N_AND || n->kind == N_OR) {
        if ((rc = eval_bool(ev, n->u.bin.l, out))) return rc;
        if (*out == (n->kind == N_OR)) return 0; /* false and ..., true or ... */
        n = n->u.bin.r;
    }
    switch (n->kind) {
    case N_NOT:
        if ((rc = eval_bool(ev, n->u.not_, out))) return rc;
        *out = !*out;
        return 0;
    case N_CMP: {
        syc_ottl_value_t a, b;
        if ((rc = eval_value(ev, n->u.cmp.l, &a)) || (rc = eval_value(ev, n->u.cmp.r, &b)))
            return rc;
        *out = compare(&a, &b, n->u.cmp.op);
        return 0;
    }
    default: {
        syc_ottl_value_t v;
        if ((rc = eval_value(ev, n, &v))) return rc;
        if (v.type != SYC_OTTL_BOOL) return SY_EINVAL;
        *out = v.u.b;
        return 0;
    }
    }
}

/* ---- editors ---- */

typedef struct edit_arg_s {
    eval_t *ev;
    const syc__ottl_node_t *call;
    int rc;              /* the first error inside a visitor */
    int64_t keep_others; /* limit: how many non-priority keys may stay */
    bool key_mode;       /* replace_all_patterns */
} edit_arg_t;

static bool in_strlist(const syc__ottl_node_t *list, const char *key, size_t len)
{
    for (size_t i = 0; i < list->u.list.n; i++) {
        const syc_ottl_value_t *s = &list->u.list.items[i]->u.lit;
        if (s->u.s.len == len && memcmp(s->u.s.ptr, key, len) == 0) return true;
    }
    return false;
}

/* Replaces every match of the call's regex in s; returns 1 and the result in the
 * scratch when something matched, 0 when nothing did, or an error. */
static int substitute(eval_t *ev, const syc__ottl_node_t *call, const syc_ottl_value_t *repl,
                      const char *s, size_t len, const char **out, size_t *out_len)
{
    syc_ottl_scratch_t *sc = ev->s;
    PCRE2_SIZE cap = sc->cap - sc->used;
    int rc = pcre2_substitute(call->u.call.re->code, (PCRE2_SPTR)s, len, 0,
                              PCRE2_SUBSTITUTE_GLOBAL | PCRE2_SUBSTITUTE_UNKNOWN_UNSET |
                                  PCRE2_SUBSTITUTE_UNSET_EMPTY,
                              sc->md, sc->mctx, (PCRE2_SPTR)repl->u.s.ptr, repl->u.s.len,
                              (PCRE2_UCHAR *)(sc->buf + sc->used), &cap);
    if (rc == PCRE2_ERROR_NOMEMORY) return SY_ENOMEM;
    if (rc < 0) return SY_EINVAL;
    if (rc == 0) return 0;
    *out = sc->buf + sc->used;
    *out_len = cap;
    sc->used += cap;
    return 1;
}

static syc_ottl_edit_t edit_visit(void *arg, const char *key, size_t key_len,
                                  const syc_ottl_value_t *value, syc_ottl_value_t *new_value,
                                  const char **new_key, size_t *new_key_len)
{
    edit_arg_t *ea = arg;
    eval_t *ev = ea->ev;
    const syc__ottl_node_t *call = ea->call;
    syc__ottl_node_t *const *args = call->u.call.args;
    if (ea->rc) return SYC_OTTL_EDIT_KEEP;
    ev->s->used = 0; /* the accessor has copied what the previous entry produced */
    int rc;
    switch (call->u.call.fn) {
    case FN_DELETE_MATCHING_KEYS:
        rc = regex_match(ev, call->u.call.re, key, key_len);
        if (rc < 0) break;
        return rc ? SYC_OTTL_EDIT_DELETE : SYC_OTTL_EDIT_KEEP;
    case FN_KEEP_KEYS:
        return in_strlist(args[1], key, key_len) ? SYC_OTTL_EDIT_KEEP : SYC_OTTL_EDIT_DELETE;
    case FN_LIMIT:
        if (in_strlist(args[2], key, key_len)) return SYC_OTTL_EDIT_KEEP;
        if (ea->keep_others > 0) {
            ea->keep_others--;
            return SYC_OTTL_EDIT_KEEP;
        }
        return SYC_OTTL_EDIT_DELETE;
    case FN_TRUNCATE_ALL: {
        int64_t limit = args[1]->u.lit.u.i;
        if (value->type != SYC_OTTL_STRING || (int64_t)value->u.s.len <= limit)
            return SYC_OTTL_EDIT_KEEP;
        *new_value = *value; /* aliases the current value: the accessor shrinks in place */
        new_value->u.s.len = (size_t)limit;
        return SYC_OTTL_EDIT_SET_VALUE;
    }
    case FN_REPLACE_ALL_PATTERNS: {
        const char *res;
        size_t len;
        if (ea->key_mode) {
            rc = substitute(ev, call, &args[3]->u.lit, key, key_len, &res, &len);
            if (rc <= 0) break;
            *new_key = res;
            *new_key_len = len;
            return SYC_OTTL_EDIT_RENAME;
        }
        if (value->type != SYC_OTTL_STRING) return SYC_OTTL_EDIT_KEEP;
        rc = substitute(ev, call, &args[3]->u.lit, value->u.s.ptr, value->u.s.len, &res, &len);
        if (rc <= 0) break;
        new_value->type = SYC_OTTL_STRING;
        new_value->u.s.ptr = res;
        new_value->u.s.len = len;
        return SYC_OTTL_EDIT_SET_VALUE;
    }
    default:
        rc = SY_EINVAL;
        break;
    }
    if (rc < 0) ea->rc = rc;
    return SYC_OTTL_EDIT_KEEP;
}

/* The map an editor's first argument names: 0 with *map, 1 when the path is nil
 * (nothing to edit), or an error. */
static int target_map(eval_t *ev, const syc__ottl_node_t *path, void **map)
{
    syc_ottl_value_t v;
    int rc = eval_path(ev, path, &v);
    if (rc) return rc;
    if (v.type == SYC_OTTL_NIL) return 1;
    if (v.type != SYC_OTTL_MAP) return SY_EINVAL;
    *map = v.u.map;
    return 0;
}

static int run_editor(eval_t *ev, const syc__ottl_node_t *call)
{
    syc__ottl_node_t *const *args = call->u.call.args;
    const syc_ottl_accessor_t *acc = ev->acc;
    const syc__ottl_node_t *target = args[0];
    syc_ottl_value_t v;
    void *map = NULL;
    int rc;

    switch (call->u.call.fn) {
    case FN_SET:
        if ((rc = eval_value(ev, args[1], &v))) return rc;
        if (v.type == SYC_OTTL_NIL) return 0; /* no field takes nil: set does nothing */
        if (!acc->set) return SY_ENOTSUP;
        return acc->set(ev->item, target->u.path.field, target->u.path.keys, target->u.path.nkeys,
                        &v);
    case FN_REPLACE_PATTERN: {
        if ((rc = eval_path(ev, target, &v))) return rc;
        if (v.type != SYC_OTTL_STRING) return 0;
        const char *res;
        size_t len;
        rc = substitute(ev, call, &args[2]->u.lit, v.u.s.ptr, v.u.s.len, &res, &len);
        if (rc <= 0) return rc;
        if (!acc->set) return SY_ENOTSUP;
        v.u.s.ptr = res;
        v.u.s.len = len;
        return acc->set(ev->item, target->u.path.field, target->u.path.keys, target->u.path.nkeys,
                        &v);
    }
    case FN_DELETE_KEY: {
        if ((rc = target_map(ev, target, &map))) return rc > 0 ? 0 : rc;
        if (!acc->map_delete) return SY_ENOTSUP;
        const syc_ottl_value_t *key = &args[1]->u.lit;
        return acc->map_delete(ev->item, map, key->u.s.ptr, key->u.s.len);
    }
    default:
        break;
    }

    /* The editors that visit every entry of a map. */
    if ((rc = target_map(ev, target, &map))) return rc > 0 ? 0 : rc;
    if (!acc->map_edit) return SY_ENOTSUP;
    edit_arg_t ea = {.ev = ev, .call = call};
    if (call->u.call.fn == FN_LIMIT) {
        int64_t limit = args[1]->u.lit.u.i;
        if (!acc->map_len) return SY_ENOTSUP;
        if ((int64_t)acc->map_len(ev->item, map) <= limit) return 0;
        /* Priority keys present stay and count against the limit. */
        const syc__ottl_node_t *prio = args[2];
        int64_t present = 0;
        for (size_t i = 0; i < prio->u.list.n; i++) {
            const syc_ottl_value_t *k = &prio->u.list.items[i]->u.lit;
            if (in_strlist(&(syc__ottl_node_t){.kind = N_LIST,
                                               .u.list = {.n = i, .items = prio->u.list.items}},
                           k->u.s.ptr, k->u.s.len))
                continue; /* listed twice */
            syc_ottl_value_t got;
            if (!acc->map_get) return SY_ENOTSUP;
            if ((rc = acc->map_get(ev->item, map, k->u.s.ptr, k->u.s.len, &got))) return rc;
            if (got.type != SYC_OTTL_NIL) present++;
        }
        ea.keep_others = limit - present;
    }
    if (call->u.call.fn == FN_REPLACE_ALL_PATTERNS)
        ea.key_mode = args[1]->u.lit.u.s.len == 3; /* "key" (the compiler allows key|value) */
    rc = acc->map_edit(ev->item, map, edit_visit, &ea);
    return rc ? rc : ea.rc;
}

/* ---- entry points ---- */

int syc_ottl_eval_condition(const syc_ottl_prog_t *prog, const syc_ottl_accessor_t *acc, void *item,
                            syc_ottl_scratch_t *scratch, bool *out)
{
    eval_t ev = {.acc = acc, .item = item, .s = scratch};
    scratch->used = 0;
    *out = false;
    if (!prog->cond) {
        *out = true;
        return 0;
    }
    return eval_bool(&ev, prog->cond, out);
}

int syc_ottl_exec_statement(const syc_ottl_prog_t *prog, const syc_ottl_accessor_t *acc, void *item,
                            syc_ottl_scratch_t *scratch, bool *applied)
{
    eval_t ev = {.acc = acc, .item = item, .s = scratch};
    bool run = true;
    int rc;
    if (applied) *applied = false;
    scratch->used = 0;
    if (!prog->editor) return SY_EINVAL;
    if (prog->cond && (rc = eval_bool(&ev, prog->cond, &run))) return rc;
    if (!run) return 0;
    scratch->used = 0;
    if ((rc = run_editor(&ev, prog->editor))) return rc;
    if (applied) *applied = true;
    return 0;
}
