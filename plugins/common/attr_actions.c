/*
 * attr_actions.c - the attribute action engine (see attr_actions.h).
 *
 * Parsing follows the collector's attraction package: its checks, in its order,
 * with its messages, prefixed with the file:line:col of the action at fault.
 *
 * Applying: the node's attributes are copied into a scratch table of entries
 * (key and value still pointing into the batch), the actions change the table,
 * and the entries that differ from the batch become view edits: a delete for an
 * original attribute that is gone, an upsert for one whose value changed or that
 * is new. Strings the engine makes (digests, converted values) live in a pool
 * freed at the end of each apply: view_attr_set() copies what it is given.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr_actions.h"
#include "ottl.h"
#include "hash.h"

typedef enum {
    ACT_INSERT,
    ACT_UPDATE,
    ACT_UPSERT,
    ACT_DELETE,
    ACT_HASH,
    ACT_EXTRACT,
    ACT_CONVERT,
} act_kind_t;

static const char *const act_names[] = {"insert", "update",  "upsert", "delete",
                                        "hash",   "extract", "convert"};

typedef enum { CONV_INT, CONV_DOUBLE, CONV_STRING } conv_t;

typedef struct action_s {
    act_kind_t kind;
    char *key; /* NULL when only pattern is set */
    size_t key_len;
    char *from_attribute;
    bool has_value;
    sy_value_t value; /* str points into value_text; a list or map into value_enc */
    char *value_text;
    syc_buf_t value_enc; /* the encoded content of a list or map value */
    pcre2_code *re;      /* keys (delete, hash) or the value (extract) */
    pcre2_match_data *md;
    conv_t conv;
} action_t;

typedef struct entry_s {
    sy_value_t key; /* STRING */
    sy_value_t val;
    bool orig;    /* read from the batch */
    bool dirty;   /* value differs from the batch's */
    bool deleted; /* gone */
} entry_t;

typedef struct pool_blk_s {
    struct pool_blk_s *next;
    size_t used, cap;
    char data[];
} pool_blk_t;

struct syc_attr_actions_s {
    action_t *acts;
    size_t count;
    /* Scratch of one apply. */
    entry_t *ents;
    size_t n, cap;
    pool_blk_t *pool;
};

/* --- pool ------------------------------------------------------------------ */

static char *pool_alloc(syc_attr_actions_t *a, size_t n)
{
    pool_blk_t *b = a->pool;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 4096 ? n : 4096;
        b = malloc(sizeof(*b) + cap);
        if (!b) return NULL;
        b->next = a->pool;
        b->used = 0;
        b->cap = cap;
        a->pool = b;
    }
    char *p = b->data + b->used;
    b->used += n;
    return p;
}

static void pool_reset(syc_attr_actions_t *a)
{
    while (a->pool) {
        pool_blk_t *next = a->pool->next;
        free(a->pool);
        a->pool = next;
    }
}

/* --- values ------------------------------------------------------------------ */

static bool all_digits(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return false;
    return true;
}

void syc_attr_value_from_yaml(const char *text, sy_value_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "TRUE")) {
        out->type = SY_VALUE_BOOL;
        out->b = true;
        return;
    }
    if (!strcmp(text, "false") || !strcmp(text, "False") || !strcmp(text, "FALSE")) {
        out->type = SY_VALUE_BOOL;
        return;
    }
    const char *p = text + (text[0] == '-' || text[0] == '+');
    if (all_digits(p)) {
        errno = 0;
        long long v = strtoll(text, NULL, 10);
        if (errno == 0) {
            out->type = SY_VALUE_INT;
            out->i = v;
            return;
        }
    }
    /* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? as YAML 1.2 floats. */
    const char *q = p;
    size_t mant = 0;
    while (isdigit((unsigned char)*q))
        q++, mant++;
    if (*q == '.') {
        q++;
        while (isdigit((unsigned char)*q))
            q++, mant++;
    }
    if (mant && (*q == 'e' || *q == 'E')) {
        const char *e = q + 1;
        if (*e == '-' || *e == '+') e++;
        if (isdigit((unsigned char)*e)) {
            while (isdigit((unsigned char)*e))
                e++;
            q = e;
        }
    }
    if (mant && !*q) {
        out->type = SY_VALUE_DOUBLE;
        out->d = strtod(text, NULL);
        return;
    }
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
        out->type = SY_VALUE_DOUBLE;
        out->d = text[0] == '-' ? -INFINITY : INFINITY;
        return;
    }
    if (!strcmp(text, ".nan") || !strcmp(text, ".NaN") || !strcmp(text, ".NAN")) {
        out->type = SY_VALUE_DOUBLE;
        out->d = NAN;
        return;
    }
    out->type = SY_VALUE_STRING;
    out->str = text;
    out->len = strlen(text);
}

bool syc_attr_value_equal(const sy_value_t *a, const sy_value_t *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case SY_VALUE_EMPTY:
        return true;
    case SY_VALUE_STRING:
        return a->len == b->len && !memcmp(a->str, b->str, a->len);
    case SY_VALUE_BYTES:
        return a->len == b->len && !memcmp(a->bytes, b->bytes, a->len);
    case SY_VALUE_BOOL:
        return a->b == b->b;
    case SY_VALUE_INT:
        return a->i == b->i;
    case SY_VALUE_DOUBLE:
        return a->d == b->d;
    default:
        return false; /* arrays and maps are not compared */
    }
}

/* --- parsing ------------------------------------------------------------------ */

void syc_attr_value_from_cfg(const sy_host_api_t *api, const sy_cfg_node_t *n, const char *text,
                             sy_value_t *out)
{
    if (SY_API_HAS(api, cfg_quoted) && api->cfg_quoted(n)) {
        memset(out, 0, sizeof(*out));
        out->type = SY_VALUE_STRING;
        out->str = text;
        out->len = strlen(text);
        return;
    }
    syc_attr_value_from_yaml(text, out);
}

/* Appends the entries of the list or map node n to b, encoded as an ArrayValue's
 * or KeyValueList's content (as pcommon's FromRaw makes them: a null is an empty
 * value, nested lists and maps recurse). Depth-bounded by the config loader. */
static int encode_container(const sy_host_api_t *api, const sy_cfg_node_t *n, syc_buf_t *b)
{
    bool is_map = api->cfg_kind(n) == 'm';
    for (size_t i = 0, len = api->cfg_len(n); i < len; i++) {
        const char *key = NULL;
        const sy_cfg_node_t *c = api->cfg_at(n, i, &key);
        sy_value_t k = {.type = SY_VALUE_STRING, .str = key, .len = key ? strlen(key) : 0};
        sy_value_t v = {.type = SY_VALUE_EMPTY};
        int rc, kind = api->cfg_kind(c);
        if (kind == 'm' || kind == 'l') {
            syc_buf_t inner = {0};
            if ((rc = encode_container(api, c, &inner)) == 0) {
                v.type = kind == 'm' ? SY_VALUE_MAP : SY_VALUE_ARRAY;
                rc = syc_anyvalue_put_entry(b, is_map ? &k : NULL, &v, inner.p ? inner.p : "",
                                            inner.len);
            }
            free(inner.p);
            if (rc < 0) return rc;
            continue;
        }
        if (kind == 's') syc_attr_value_from_cfg(api, c, api->cfg_scalar(c), &v);
        if ((rc = syc_anyvalue_put_entry(b, is_map ? &k : NULL, &v, NULL, 0)) < 0) return rc;
    }
    return SY_OK;
}

/* The `value` of an action: a scalar typed as the collector's YAML decoding types
 * it, or a list (ARRAY) or map (MAP), as pcommon's FromRaw. */
static int value_from_config(const sy_host_api_t *api, const sy_cfg_node_t *w_val, action_t *t,
                             char *err, size_t err_len)
{
    int kind = api->cfg_kind(w_val);
    if (kind == 's') {
        if (!(t->value_text = strdup(api->cfg_scalar(w_val)))) return SY_ENOMEM;
        syc_attr_value_from_cfg(api, w_val, t->value_text, &t->value);
        return SY_OK;
    }
    if (!SY_API_HAS(api, value_container)) {
        snprintf(err, err_len, "%s: a list or map \"value\" needs a host of plugin ABI 1.2",
                 api->cfg_where(w_val));
        return SY_EINVAL;
    }
    int rc = encode_container(api, w_val, &t->value_enc);
    if (rc < 0) return rc;
    const char *p = t->value_enc.p ? t->value_enc.p : "";
    rc = api->value_container(kind == 'm' ? SY_VALUE_MAP : SY_VALUE_ARRAY, (const uint8_t *)p,
                              t->value_enc.len, &t->value);
    if (rc < 0) snprintf(err, err_len, "%s: \"value\" could not be encoded", api->cfg_where(w_val));
    return rc;
}

static void act_free(action_t *t)
{
    free(t->key);
    free(t->from_attribute);
    free(t->value_text);
    free(t->value_enc.p);
    pcre2_match_data_free(t->md);
    pcre2_code_free(t->re);
}

void syc_attr_actions_free(syc_attr_actions_t *a)
{
    if (!a) return;
    for (size_t i = 0; i < a->count; i++)
        act_free(&a->acts[i]);
    free(a->acts);
    free(a->ents);
    pool_reset(a);
    free(a);
}

SY_PRINTF(5, 6)
static int fail(const sy_host_api_t *api, const sy_cfg_node_t *at, char *err, size_t err_len,
                const char *fmt, ...)
{
    int n = snprintf(err, err_len, "%s: ", api->cfg_where(at));
    if (n < 0 || (size_t)n >= err_len) return SY_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + n, err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return SY_EINVAL;
}

/* A scalar string member of an action, or NULL when absent or empty. Sets *bad
 * when the member is present but not a scalar. */
static const char *scalar_of(const sy_host_api_t *api, const sy_cfg_node_t *m, const char *key,
                             const sy_cfg_node_t **where)
{
    const sy_cfg_node_t *n = api->cfg_get(m, key);
    *where = n;
    if (!n || api->cfg_kind(n) != 's') return NULL;
    const char *s = api->cfg_scalar(n);
    return s && *s ? s : NULL;
}

static pcre2_code *compile(const char *pattern, char *msg, size_t msg_len)
{
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    if (!re) pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, msg_len);
    return re;
}

static int parse_one(const sy_host_api_t *api, const sy_cfg_node_t *m, size_t i, action_t *t,
                     char *err, size_t err_len)
{
    static const char *const known[] = {
        "key",          "value",  "pattern",        "from_attribute",
        "from_context", "action", "converted_type", NULL};
    if (api->cfg_kind(m) != 'm')
        return fail(api, m, err, err_len, "the %zu-th actions must be a map", i);
    for (size_t j = 0; j < api->cfg_len(m); j++) {
        const char *k = NULL;
        const sy_cfg_node_t *v = api->cfg_at(m, j, &k);
        bool ok = false;
        for (size_t q = 0; known[q]; q++)
            ok = ok || (k && !strcmp(k, known[q]));
        if (!ok) return fail(api, v, err, err_len, "has invalid keys: %s", k ? k : "?");
    }
    const sy_cfg_node_t *w_key, *w_pat, *w_from, *w_ctx, *w_act, *w_conv;
    const char *key = scalar_of(api, m, "key", &w_key);
    const char *pattern = scalar_of(api, m, "pattern", &w_pat);
    const char *from = scalar_of(api, m, "from_attribute", &w_from);
    const char *ctx = scalar_of(api, m, "from_context", &w_ctx);
    const char *action = scalar_of(api, m, "action", &w_act);
    const char *conv = scalar_of(api, m, "converted_type", &w_conv);
    const sy_cfg_node_t *w_val = api->cfg_get(m, "value");
    bool has_value = w_val && api->cfg_kind(w_val) != 'n';

    if (key && pattern && (!action || strcasecmp(action, "extract") != 0))
        return fail(api, m, err, err_len,
                    "error creating AttrProc. Either field \"key\" or \"pattern\" can be set. "
                    "Both were specified at the %zu-th actions",
                    i);
    if (!key && !pattern)
        return fail(api, m, err, err_len,
                    "error creating AttrProc due to missing required field (\"key\" or "
                    "\"pattern\") at the %zu-th actions",
                    i);
    int kind = -1;
    for (int q = 0; q < (int)(sizeof(act_names) / sizeof(act_names[0])); q++)
        if (action && !strcasecmp(action, act_names[q])) kind = q;
    if (kind < 0)
        return fail(api, w_act ? w_act : m, err, err_len,
                    "error creating AttrProc due to unsupported action \"%s\" at the %zu-th "
                    "actions",
                    action ? action : "", i);
    t->kind = (act_kind_t)kind;
    char msg[256];
    switch (t->kind) {
    case ACT_INSERT:
    case ACT_UPDATE:
    case ACT_UPSERT: {
        if (pattern)
            return fail(api, w_pat, err, err_len,
                        "error creating AttrProc. Action \"%s\" does not support \"pattern\" "
                        "field. This must be specified with \"key\" field at the %zu-th actions",
                        act_names[kind], i);
        int sources = has_value + (from != NULL) + (ctx != NULL);
        if (sources == 0)
            return fail(api, m, err, err_len,
                        "error creating AttrProc due to missing field \"value\", "
                        "\"from_attribute\" or \"from_context\" for action \"%s\" at the %zu-th "
                        "actions",
                        act_names[kind], i);
        if (sources > 1)
            return fail(api, m, err, err_len,
                        "error creating AttrProc due to multiple value sources being set for "
                        "action \"%s\" at the %zu-th actions",
                        act_names[kind], i);
        if (ctx)
            return fail(api, w_ctx, err, err_len,
                        "from_context is not supported at the %zu-th actions: the collector "
                        "reads it from the request's client info (metadata.<header> from a "
                        "receiver with include_metadata, auth.<attribute> from an "
                        "authenticator extension, client.address), and Switchyard receivers "
                        "do not pass request metadata along with a batch, so the attribute "
                        "could never be set; use value or from_attribute",
                        i);
        if (has_value) {
            int rc = value_from_config(api, w_val, t, err, err_len);
            if (rc < 0) return rc;
            t->has_value = true;
        }
        if (from && !(t->from_attribute = strdup(from))) return SY_ENOMEM;
        break;
    }
    case ACT_DELETE:
    case ACT_HASH:
        if (has_value || from || ctx)
            return fail(api, m, err, err_len,
                        "error creating AttrProc. Action \"%s\" does not use \"value\", "
                        "\"from_attribute\" or \"from_context\" field. These must not be "
                        "specified for %zu-th action",
                        act_names[kind], i);
        if (pattern) {
            if (!(t->re = compile(pattern, msg, sizeof(msg))))
                return fail(api, w_pat, err, err_len,
                            "error creating AttrProc. Field \"pattern\" has invalid pattern: "
                            "\"%s\" to be set at the %zu-th actions: %s",
                            pattern, i, msg);
        }
        break;
    case ACT_EXTRACT: {
        if (!key)
            return fail(api, m, err, err_len,
                        "error creating AttrProc due to missing required field \"key\" at the "
                        "%zu-th actions",
                        i);
        if (has_value || from || ctx)
            return fail(api, m, err, err_len,
                        "error creating AttrProc. Action \"extract\" does not use \"value\", "
                        "\"from_attribute\" or \"from_context\" field. These must not be "
                        "specified for %zu-th action",
                        i);
        if (!pattern)
            return fail(api, m, err, err_len,
                        "error creating AttrProc due to missing required field \"pattern\" for "
                        "action \"extract\" at the %zu-th actions",
                        i);
        if (!(t->re = compile(pattern, msg, sizeof(msg))))
            return fail(api, w_pat, err, err_len,
                        "error creating AttrProc. Field \"pattern\" has invalid pattern: \"%s\" "
                        "to be set at the %zu-th actions: %s",
                        pattern, i, msg);
        uint32_t names = 0;
        pcre2_pattern_info(t->re, PCRE2_INFO_NAMECOUNT, &names);
        if (names == 0)
            return fail(api, w_pat, err, err_len,
                        "error creating AttrProc. Field \"pattern\" contains no named matcher "
                        "groups at the %zu-th actions",
                        i);
        break;
    }
    case ACT_CONVERT:
        if (!key)
            return fail(api, m, err, err_len,
                        "error creating AttrProc due to missing required field \"key\" for "
                        "action \"convert\" at the %zu-th actions",
                        i);
        if (conv && !strcmp(conv, "int"))
            t->conv = CONV_INT;
        else if (conv && !strcmp(conv, "double"))
            t->conv = CONV_DOUBLE;
        else if (conv && !strcmp(conv, "string"))
            t->conv = CONV_STRING;
        else
            return fail(api, w_conv ? w_conv : m, err, err_len,
                        "error creating AttrProc due to invalid value \"%s\" in field "
                        "\"converted_type\" for action \"convert\" at the %zu-th actions "
                        "(valid values: int, double, string)",
                        conv ? conv : "", i);
        break;
    }
    if (key) {
        if (!(t->key = strdup(key))) return SY_ENOMEM;
        t->key_len = strlen(key);
    }
    if (t->re && !(t->md = pcre2_match_data_create_from_pattern(t->re, NULL))) return SY_ENOMEM;
    return SY_OK;
}

syc_attr_actions_t *syc_attr_actions_parse(const sy_host_api_t *api, const sy_cfg_node_t *list,
                                           const char *what, char *err, size_t err_len)
{
    syc_attr_actions_t *a = NULL;
    if (!list || api->cfg_kind(list) == 'n' ||
        (api->cfg_kind(list) == 'l' && api->cfg_len(list) == 0)) {
        if (list)
            fail(api, list, err, err_len,
                 "error creating AttrProc due to missing required field \"%s\"", what);
        else
            snprintf(err, err_len, "error creating AttrProc due to missing required field \"%s\"",
                     what);
        return NULL;
    }
    if (api->cfg_kind(list) != 'l') {
        fail(api, list, err, err_len, "%s must be a list of actions", what);
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (!a) goto nomem;
    a->acts = calloc(api->cfg_len(list), sizeof(action_t));
    if (!a->acts) goto nomem;
    for (size_t i = 0; i < api->cfg_len(list); i++) {
        int rc = parse_one(api, api->cfg_at(list, i, NULL), i, &a->acts[i], err, err_len);
        a->count = i + 1;
        if (rc == SY_ENOMEM) goto nomem;
        if (rc < 0) goto fail;
    }
    return a;
nomem:
    snprintf(err, err_len, "out of memory");
fail:
    syc_attr_actions_free(a);
    return NULL;
}

/* --- applying ------------------------------------------------------------------ */

static entry_t *find(syc_attr_actions_t *a, const char *key, size_t len)
{
    for (size_t i = 0; i < a->n; i++) {
        entry_t *e = &a->ents[i];
        if (!e->deleted && e->key.len == len && !memcmp(e->key.str, key, len)) return e;
    }
    return NULL;
}

/* Appends an entry for a new key (its text must outlive the apply). */
static entry_t *append(syc_attr_actions_t *a, const char *key, size_t len)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        entry_t *e = realloc(a->ents, cap * sizeof(*e));
        if (!e) return NULL;
        a->ents = e;
        a->cap = cap;
    }
    entry_t *e = &a->ents[a->n++];
    memset(e, 0, sizeof(*e));
    e->key.type = SY_VALUE_STRING;
    e->key.str = key;
    e->key.len = len;
    return e;
}

static bool key_matches(action_t *t, const sy_value_t *key)
{
    return pcre2_match(t->re, (PCRE2_SPTR)key->str, key->len, 0, 0, t->md, NULL) >= 0;
}

static void set_string(entry_t *e, const char *s, size_t len)
{
    memset(&e->val, 0, sizeof(e->val));
    e->val.type = SY_VALUE_STRING;
    e->val.str = s;
    e->val.len = len;
    e->dirty = true;
}

/* The collector's sha2Hasher: strings as their bytes, ints and doubles as 8
 * little-endian bytes, bools as one byte; any other value becomes "". */
static int hash_entry(syc_attr_actions_t *a, entry_t *e)
{
    uint8_t buf[8];
    const void *data = buf;
    size_t len = 0;
    uint64_t u = 0;
    switch (e->val.type) {
    case SY_VALUE_STRING:
        data = e->val.str;
        len = e->val.len;
        break;
    case SY_VALUE_BOOL:
        buf[0] = e->val.b ? 1 : 0;
        len = 1;
        break;
    case SY_VALUE_INT:
        u = (uint64_t)e->val.i;
        goto le;
    case SY_VALUE_DOUBLE:
        memcpy(&u, &e->val.d, 8);
    le:
        for (int i = 0; i < 8; i++)
            buf[i] = (uint8_t)(u >> (8 * i));
        len = 8;
        break;
    default:
        break;
    }
    if (len == 0) {
        set_string(e, "", 0);
        return SY_OK;
    }
    char *out = pool_alloc(a, 65);
    if (!out) return SY_ENOMEM;
    int n = syc_hash_hex("sha256", data, len, out, 65);
    if (n < 0) return n;
    set_string(e, out, (size_t)n);
    return SY_OK;
}

static int convert_entry(syc_attr_actions_t *a, entry_t *e, conv_t to)
{
    sy_value_t *v = &e->val;
    switch (to) {
    case CONV_INT:
        if (v->type == SY_VALUE_DOUBLE) {
            /* Go's int64(f) on amd64: out of range and NaN give the minimum. */
            int64_t i =
                (isnan(v->d) || v->d >= 9223372036854775808.0 || v->d < -9223372036854775808.0)
                    ? INT64_MIN
                    : (int64_t)v->d;
            v->type = SY_VALUE_INT, v->i = i, e->dirty = true;
        } else if (v->type == SY_VALUE_BOOL) {
            v->type = SY_VALUE_INT, v->i = v->b ? 1 : 0, e->dirty = true;
        } else if (v->type == SY_VALUE_STRING) {
            char tmp[32];
            if (v->len == 0 || v->len >= sizeof(tmp)) return SY_OK;
            memcpy(tmp, v->str, v->len);
            tmp[v->len] = '\0';
            const char *p = tmp + (tmp[0] == '-' || tmp[0] == '+');
            if (!all_digits(p)) return SY_OK;
            errno = 0;
            long long n = strtoll(tmp, NULL, 10);
            if (errno) return SY_OK; /* out of range: unchanged, as the collector */
            memset(v, 0, sizeof(*v));
            v->type = SY_VALUE_INT, v->i = n, e->dirty = true;
        }
        return SY_OK;
    case CONV_DOUBLE:
        if (v->type == SY_VALUE_INT) {
            v->type = SY_VALUE_DOUBLE, v->d = (double)v->i, e->dirty = true;
        } else if (v->type == SY_VALUE_BOOL) {
            v->type = SY_VALUE_DOUBLE, v->d = v->b ? 1.0 : 0.0, e->dirty = true;
        } else if (v->type == SY_VALUE_STRING) {
            char tmp[64];
            if (v->len == 0 || v->len >= sizeof(tmp) || isspace((unsigned char)v->str[0]))
                return SY_OK;
            memcpy(tmp, v->str, v->len);
            tmp[v->len] = '\0';
            char *end;
            errno = 0;
            double d = strtod(tmp, &end);
            if (*end || errno == ERANGE) return SY_OK;
            memset(v, 0, sizeof(*v));
            v->type = SY_VALUE_DOUBLE, v->d = d, e->dirty = true;
        }
        return SY_OK;
    case CONV_STRING: {
        if (v->type == SY_VALUE_STRING || v->type == SY_VALUE_ARRAY || v->type == SY_VALUE_MAP)
            return SY_OK; /* arrays and maps are left as they are */
        size_t cap = syc_value_as_string_cap(v);
        char *buf = pool_alloc(a, cap);
        const char *out;
        size_t n;
        if (!buf) return SY_ENOMEM;
        int rc = syc_value_as_string(v, buf, cap, &out, &n);
        if (rc < 0) return rc;
        set_string(e, out, n);
        return SY_OK;
    }
    }
    return SY_OK;
}

static int extract(syc_attr_actions_t *a, action_t *t, entry_t *src)
{
    if (src->val.type != SY_VALUE_STRING) return SY_OK;
    /* The matched text may move when the table grows: copy the subject first. */
    const char *subject = src->val.str;
    size_t slen = src->val.len;
    int rc = pcre2_match(t->re, (PCRE2_SPTR)subject, slen, 0, 0, t->md, NULL);
    if (rc < 0) return SY_OK;
    uint32_t count = 0, size = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(t->re, PCRE2_INFO_NAMECOUNT, &count);
    pcre2_pattern_info(t->re, PCRE2_INFO_NAMEENTRYSIZE, &size);
    pcre2_pattern_info(t->re, PCRE2_INFO_NAMETABLE, &table);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
    uint32_t groups = 0;
    pcre2_pattern_info(t->re, PCRE2_INFO_CAPTURECOUNT, &groups);
    /* The name table is sorted by name; the collector writes in group order. */
    for (uint32_t g = 1, i = 0; g <= groups; g++)
        for (i = 0; i < count; i++) {
            const uint8_t *ent = table + (size_t)i * size;
            int group = (ent[0] << 8) | ent[1];
            if ((uint32_t)group != g) continue;
            const char *name = (const char *)ent + 2;
            const char *val = "";
            size_t vlen = 0;
            if (group < rc && ov[2 * group] != PCRE2_UNSET) {
                val = subject + ov[2 * group];
                vlen = ov[2 * group + 1] - ov[2 * group];
            }
            entry_t *e = find(a, name, strlen(name));
            if (!e && !(e = append(a, name, strlen(name)))) return SY_ENOMEM;
            set_string(e, val, vlen);
        }
    return SY_OK;
}

static int set_from_source(syc_attr_actions_t *a, action_t *t, entry_t *e, bool *set)
{
    if (t->has_value) {
        e->val = t->value;
    } else {
        entry_t *from = find(a, t->from_attribute, strlen(t->from_attribute));
        if (!from) return SY_OK;
        e->val = from->val;
    }
    e->dirty = true;
    *set = true;
    return SY_OK;
}

static int apply_one(syc_attr_actions_t *a, action_t *t)
{
    entry_t *e = t->key ? find(a, t->key, t->key_len) : NULL;
    switch (t->kind) {
    case ACT_INSERT:
    case ACT_UPDATE:
    case ACT_UPSERT: {
        if (e && t->kind == ACT_INSERT) return SY_OK;
        if (!e && t->kind == ACT_UPDATE) return SY_OK;
        /* Absent source: nothing happens (checked before the entry is made). */
        if (!t->has_value && !find(a, t->from_attribute, strlen(t->from_attribute))) return SY_OK;
        if (!e && !(e = append(a, t->key, t->key_len))) return SY_ENOMEM;
        bool set = false;
        return set_from_source(a, t, e, &set);
    }
    case ACT_DELETE:
        if (e) e->deleted = true;
        if (t->re)
            for (size_t i = 0; i < a->n; i++)
                if (!a->ents[i].deleted && key_matches(t, &a->ents[i].key))
                    a->ents[i].deleted = true;
        return SY_OK;
    case ACT_HASH:
        if (e) {
            int rc = hash_entry(a, e);
            if (rc < 0) return rc;
        }
        if (t->re)
            for (size_t i = 0; i < a->n; i++)
                if (!a->ents[i].deleted && key_matches(t, &a->ents[i].key)) {
                    int rc = hash_entry(a, &a->ents[i]);
                    if (rc < 0) return rc;
                }
        return SY_OK;
    case ACT_EXTRACT:
        return e ? extract(a, t, e) : SY_OK;
    case ACT_CONVERT:
        return e ? convert_entry(a, e, t->conv) : SY_OK;
    }
    return SY_OK;
}

int syc_attr_actions_apply(syc_attr_actions_t *a, const sy_host_api_t *api, sy_view_node_t *node)
{
    a->n = 0;
    size_t count = api->view_attr_count(node);
    for (size_t i = 0; i < count; i++) {
        sy_value_t k, v;
        if (api->view_attr_at(node, i, &k, &v) < 0) continue;
        /* A key given twice reads as its first: keep the first only. */
        if (find(a, k.str, k.len)) continue;
        entry_t *e = append(a, k.str, k.len);
        if (!e) return SY_ENOMEM;
        e->key = k;
        e->val = v;
        e->orig = true;
    }
    int rc = SY_OK, edits = 0;
    for (size_t i = 0; i < a->count && rc >= 0; i++)
        rc = apply_one(a, &a->acts[i]);
    /* Deletes first, so that a key deleted and then inserted again is written. */
    for (size_t i = 0; i < a->n && rc >= 0; i++) {
        entry_t *e = &a->ents[i];
        if (!e->orig || !e->deleted) continue;
        int r = api->view_attr_delete(node, e->key.str, e->key.len);
        if (r < 0 && r != SY_EAGAIN) rc = r;
        edits++;
    }
    for (size_t i = 0; i < a->n && rc >= 0; i++) {
        entry_t *e = &a->ents[i];
        if (e->deleted || !e->dirty) continue;
        int r = api->view_attr_set(node, e->key.str, e->key.len, &e->val, SY_ATTR_UPSERT);
        if (r < 0) rc = r;
        edits++;
    }
    pool_reset(a);
    return rc < 0 ? rc : edits;
}
