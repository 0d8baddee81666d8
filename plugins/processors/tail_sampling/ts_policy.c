/*
 * ts_policy.c - the sampling policies (ts_policy.h): parsing the `policies`
 * list and evaluating one policy on one trace, as the collector's
 * tailsamplingprocessor/internal/sampling does.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "ts_policy.h"
#include "ts_adaptive.h"
#include "ts_strcache.h"
#include "ts_tracestate.h"

#include "hash.h"

#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The policy types, in the order the README lists them. */
enum {
    P_ALWAYS,
    P_LATENCY,
    P_STATUS,
    P_STRING,
    P_NUMERIC,
    P_BOOL,
    P_PROB,
    P_RATE,
    P_SPAN_COUNT,
    P_TRACE_STATE,
    P_OTTL,
    P_AND,
    P_NOT,
    P_DROP,
    P_BYTES,
    P_FLAGS,
    P_COMPOSITE,
    P_ADAPTIVE, /* Switchyard's own (ts_adaptive.h) */
    P_COUNT_
};

static const char *const type_names[P_COUNT_] = {
    "always_sample",
    "latency",
    "status_code",
    "string_attribute",
    "numeric_attribute",
    "boolean_attribute",
    "probabilistic",
    "rate_limiting",
    "span_count",
    "trace_state",
    "ottl_condition",
    "and",
    "not",
    "drop",
    "bytes_limiting",
    "trace_flags",
    "composite",
    "adaptive",
};

/* Where a policy sits decides which types it may be: the collector's
 * PolicyCfg (top), CompositeSubPolicyCfg (shared + and) and
 * AndSubPolicyCfg / NotSubPolicyCfg (shared). */
enum { LVL_TOP, LVL_COMPOSITE, LVL_SHARED };

enum { EM_IGNORE, EM_SILENT, EM_PROPAGATE };

struct ts_policy_s {
    char *name;
    int type;
    /* latency */
    int64_t lo_ms, hi_ms;
    /* status_code: bit per code (0 UNSET, 1 OK, 2 ERROR) */
    unsigned status_mask;
    /* string / numeric / boolean attribute, trace_state */
    char *key;
    size_t keylen;
    bool invert;
    bool bval;
    int64_t min, max;
    char **values;
    size_t *value_lens;
    size_t nvalues;
    pcre2_code **re;
    pcre2_match_data *md;
    ts_strcache_t *re_cache; /* cache_max_size: value -> matched by any regex */
    /* probabilistic */
    char *salt;
    uint64_t threshold;
    /* rate_limiting, bytes_limiting: a token bucket, full at start */
    double rate, burst, tokens;
    uint64_t last_ns;
    bool bucket_started;
    /* span_count */
    int64_t min_spans, max_spans;
    /* ottl_condition */
    syc_ottl_list_t span_conds, event_conds;
    int error_mode;
    /* and, not, drop, composite */
    ts_policy_t **subs;
    size_t nsubs;
    /* composite */
    int64_t max_total;
    int64_t *allocated, *used;
    int64_t cur_second;
    /* adaptive */
    ts_adaptive_t *adaptive;
};

/* ---- parsing ------------------------------------------------------------------ */

typedef struct pctx_s {
    const sy_host_api_t *api;
    char *err;
    size_t err_len;
    const sy_cfg_node_t *policy; /* the policy being parsed: the place of errors without one */
} pctx_t;

static int fail(pctx_t *c, const sy_cfg_node_t *at, const char *path, const char *fmt, ...)
    SY_PRINTF(4, 5);
static int fail(pctx_t *c, const sy_cfg_node_t *at, const char *path, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(c->err, c->err_len, "%s: %s: %s", c->api->cfg_where(at ? at : c->policy), path, msg);
    return SY_EINVAL;
}

/* path + a suffix made by fmt, into out (truncated when longer: only a message). */
static void sub_path(char *out, size_t cap, const char *path, const char *fmt, ...) SY_PRINTF(4, 5);
static void sub_path(char *out, size_t cap, const char *path, const char *fmt, ...)
{
    size_t n = (size_t)snprintf(out, cap, "%s", path);
    if (n >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out + n, cap - n, fmt, ap);
    va_end(ap);
}

/* Refuses keys of a map that are not in `allowed` (NULL-terminated), with the
 * collector's wording. */
static int check_keys(pctx_t *c, const sy_cfg_node_t *map, const char *path,
                      const char *const *allowed)
{
    size_t n = c->api->cfg_len(map);
    for (size_t i = 0; i < n; i++) {
        const char *key = NULL;
        const sy_cfg_node_t *v = c->api->cfg_at(map, i, &key);
        bool ok = false;
        for (const char *const *a = allowed; *a && key; a++)
            if (strcmp(*a, key) == 0) ok = true;
        if (!ok)
            return fail(c, v ? v : map, path, "'%s' has invalid keys: %s", path, key ? key : "?");
    }
    return 0;
}

/* A map under key (absent or null: NULL, which reads as empty). */
static int get_map(pctx_t *c, const sy_cfg_node_t *parent, const char *key, const char *path,
                   const sy_cfg_node_t **out)
{
    const sy_cfg_node_t *n = c->api->cfg_get(parent, key);
    *out = NULL;
    if (!n || c->api->cfg_kind(n) == 'n') return 0;
    if (c->api->cfg_kind(n) != 'm') return fail(c, n, path, "%s: expected a map", key);
    *out = n;
    return 0;
}

static const char *scalar_of(pctx_t *c, const sy_cfg_node_t *map, const char *key,
                             const sy_cfg_node_t **node)
{
    *node = c->api->cfg_get(map, key);
    if (!*node || c->api->cfg_kind(*node) == 'n') return NULL;
    return c->api->cfg_scalar(*node);
}

static int get_int(pctx_t *c, const sy_cfg_node_t *map, const char *key, const char *path,
                   int64_t *out)
{
    const sy_cfg_node_t *n;
    const char *s = scalar_of(c, map, key, &n);
    if (!n || c->api->cfg_kind(n) == 'n') return 0;
    if (!s) return fail(c, n, path, "%s: expected an integer", key);
    char buf[64];
    size_t j = 0;
    for (const char *p = s; *p && j + 1 < sizeof buf; p++)
        if (*p != '_') buf[j++] = *p; /* YAML 1.1 digit separators: 100_000 */
    buf[j] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || end == buf || *end)
        return fail(c, n, path, "%s: expected an integer, got \"%s\"", key, s);
    *out = v;
    return 0;
}

static int get_double(pctx_t *c, const sy_cfg_node_t *map, const char *key, const char *path,
                      double *out)
{
    const sy_cfg_node_t *n;
    const char *s = scalar_of(c, map, key, &n);
    if (!n || c->api->cfg_kind(n) == 'n') return 0;
    char *end = NULL;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || *end || !isfinite(v))
        return fail(c, n, path, "%s: expected a number", key);
    *out = v;
    return 0;
}

static int get_bool(pctx_t *c, const sy_cfg_node_t *map, const char *key, const char *path,
                    bool *out)
{
    const sy_cfg_node_t *n;
    const char *s = scalar_of(c, map, key, &n);
    if (!n || c->api->cfg_kind(n) == 'n') return 0;
    if (s && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")))
        *out = true;
    else if (s && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")))
        *out = false;
    else
        return fail(c, n, path, "%s: expected true or false", key);
    return 0;
}

/* A string (copied; NULL when absent). */
static int get_str(pctx_t *c, const sy_cfg_node_t *map, const char *key, const char *path,
                   char **out)
{
    const sy_cfg_node_t *n;
    const char *s = scalar_of(c, map, key, &n);
    if (!n || c->api->cfg_kind(n) == 'n') return 0;
    if (!s) return fail(c, n, path, "%s: expected a string", key);
    free(*out);
    if (!(*out = strdup(s))) return SY_ENOMEM;
    return 0;
}

/* A list of strings (copied), with their lengths. */
static int get_strlist(pctx_t *c, const sy_cfg_node_t *map, const char *key, const char *path,
                       char ***out, size_t **lens, size_t *count)
{
    const sy_cfg_node_t *n = c->api->cfg_get(map, key);
    if (!n || c->api->cfg_kind(n) == 'n') return 0;
    if (c->api->cfg_kind(n) != 'l') return fail(c, n, path, "%s: expected a list", key);
    size_t len = c->api->cfg_len(n);
    char **v = calloc(len ? len : 1, sizeof *v);
    size_t *l = calloc(len ? len : 1, sizeof *l);
    if (!v || !l) {
        free(v);
        free(l);
        return SY_ENOMEM;
    }
    *out = v;
    *lens = l;
    for (size_t i = 0; i < len; i++) {
        const sy_cfg_node_t *e = c->api->cfg_at(n, i, NULL);
        const char *s = c->api->cfg_scalar(e);
        if (!s) {
            *count = i;
            return fail(c, e ? e : n, path, "%s[%zu]: expected a string", key, i);
        }
        if (!(v[i] = strdup(s))) {
            *count = i;
            return SY_ENOMEM;
        }
        l[i] = strlen(s);
    }
    *count = len;
    return 0;
}

static void policy_free(ts_policy_t *p)
{
    if (!p) return;
    free(p->name);
    free(p->key);
    for (size_t i = 0; i < p->nvalues; i++) {
        free(p->values[i]);
        if (p->re && p->re[i]) pcre2_code_free(p->re[i]);
    }
    free(p->values);
    free(p->value_lens);
    free(p->re);
    if (p->md) pcre2_match_data_free(p->md);
    ts_strcache_free(p->re_cache);
    free(p->salt);
    syc_ottl_list_free(&p->span_conds);
    syc_ottl_list_free(&p->event_conds);
    for (size_t i = 0; i < p->nsubs; i++)
        policy_free(p->subs[i]);
    free(p->subs);
    free(p->allocated);
    free(p->used);
    ts_adaptive_free(p->adaptive);
    free(p);
}

static int parse_policy(pctx_t *c, const sy_cfg_node_t *n, const char *path, int level,
                        ts_policy_t **out);

/* The keys a policy map may hold: name, type and every sub-configuration. */
static const char *const policy_keys[] = {"name",
                                          "type",
                                          "latency",
                                          "numeric_attribute",
                                          "probabilistic",
                                          "status_code",
                                          "string_attribute",
                                          "rate_limiting",
                                          "bytes_limiting",
                                          "span_count",
                                          "trace_state",
                                          "boolean_attribute",
                                          "ottl_condition",
                                          "trace_flags",
                                          "and",
                                          "not",
                                          "drop",
                                          "composite",
                                          "adaptive",
                                          NULL};

/* Parses the list under `key` of map `cfg` into p->subs. */
static int parse_subs(pctx_t *c, ts_policy_t *p, const sy_cfg_node_t *cfg, const char *key,
                      const char *path, int level)
{
    const sy_cfg_node_t *list = c->api->cfg_get(cfg, key);
    if (!list || c->api->cfg_kind(list) != 'l' || c->api->cfg_len(list) == 0)
        return fail(c, list ? list : cfg, path, "%s: expected a non-empty list of policies", key);
    size_t n = c->api->cfg_len(list);
    if (!(p->subs = calloc(n, sizeof *p->subs))) return SY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        char sub[256];
        sub_path(sub, sizeof sub, path, ".%s[%zu]", key, i);
        int rc = parse_policy(c, c->api->cfg_at(list, i, NULL), sub, level, &p->subs[i]);
        if (rc < 0) return rc;
        p->nsubs = i + 1;
    }
    return 0;
}

static int parse_status(pctx_t *c, ts_policy_t *p, const sy_cfg_node_t *cfg, const char *path)
{
    char **codes = NULL;
    size_t *lens = NULL, n = 0;
    int rc = get_strlist(c, cfg, "status_codes", path, &codes, &lens, &n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (!strcmp(codes[i], "UNSET"))
            p->status_mask |= 1u << 0;
        else if (!strcmp(codes[i], "OK"))
            p->status_mask |= 1u << 1;
        else if (!strcmp(codes[i], "ERROR"))
            p->status_mask |= 1u << 2;
        else
            rc = fail(c, cfg, path, "unknown status code \"%s\", supported: OK, ERROR, UNSET",
                      codes[i]);
    }
    if (rc == 0 && n == 0)
        rc = fail(c, cfg ? cfg : NULL, path, "expected at least one status code to filter on");
    for (size_t i = 0; i < n; i++)
        free(codes[i]);
    free(codes);
    free(lens);
    return rc;
}

static int compile_regexes(pctx_t *c, ts_policy_t *p, const sy_cfg_node_t *cfg, const char *path)
{
    if (!(p->re = calloc(p->nvalues ? p->nvalues : 1, sizeof *p->re))) return SY_ENOMEM;
    for (size_t i = 0; i < p->nvalues; i++) {
        int ec;
        PCRE2_SIZE off;
        p->re[i] =
            pcre2_compile((PCRE2_SPTR)p->values[i], p->value_lens[i], PCRE2_UTF, &ec, &off, NULL);
        if (!p->re[i]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            return fail(c, cfg, path, "values[%zu]: invalid regular expression \"%s\": %s", i,
                        p->values[i], (const char *)msg);
        }
        pcre2_jit_compile(p->re[i], PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    }
    if (!(p->md = pcre2_match_data_create(1, NULL))) return SY_ENOMEM;
    return 0;
}

/* The keys of each sub-configuration. */
static const char *const k_latency[] = {"threshold_ms", "upper_threshold_ms", NULL};
static const char *const k_status[] = {"status_codes", NULL};
static const char *const k_string[] = {
    "key", "values", "enabled_regex_matching", "cache_max_size", "invert_match", NULL};
static const char *const k_numeric[] = {"key", "min_value", "max_value", "invert_match", NULL};
static const char *const k_bool[] = {"key", "value", "invert_match", NULL};
static const char *const k_prob[] = {"hash_salt", "sampling_percentage", NULL};
static const char *const k_rate[] = {"spans_per_second", "burst_capacity", NULL};
static const char *const k_bytes[] = {"bytes_per_second", "burst_capacity", NULL};
static const char *const k_span_count[] = {"min_spans", "max_spans", NULL};
static const char *const k_trace_state[] = {"key", "values", NULL};
static const char *const k_ottl[] = {"error_mode", "span", "spanevent", NULL};
static const char *const k_and[] = {"and_sub_policy", NULL};
static const char *const k_not[] = {"not_sub_policy", NULL};
static const char *const k_drop[] = {"drop_sub_policy", NULL};
static const char *const k_composite[] = {"max_total_spans_per_second", "policy_order",
                                          "composite_sub_policy", "rate_allocation", NULL};
static const char *const k_adaptive[] = {"target_traces_per_second",
                                         "latency_threshold_ms",
                                         "keep_errors",
                                         "settle_time",
                                         "adjust_interval",
                                         "min_probability",
                                         "max_probability",
                                         "max_services",
                                         "hash_salt",
                                         NULL};
static const char *const k_none[] = {NULL};

static const char *const *const type_keys[P_COUNT_] = {
    [P_ALWAYS] = k_none,
    [P_LATENCY] = k_latency,
    [P_STATUS] = k_status,
    [P_STRING] = k_string,
    [P_NUMERIC] = k_numeric,
    [P_BOOL] = k_bool,
    [P_PROB] = k_prob,
    [P_RATE] = k_rate,
    [P_SPAN_COUNT] = k_span_count,
    [P_TRACE_STATE] = k_trace_state,
    [P_OTTL] = k_ottl,
    [P_AND] = k_and,
    [P_NOT] = k_not,
    [P_DROP] = k_drop,
    [P_BYTES] = k_bytes,
    [P_FLAGS] = k_none,
    [P_COMPOSITE] = k_composite,
    [P_ADAPTIVE] = k_adaptive,
};

static void bucket_init(ts_policy_t *p, int64_t rate, int64_t burst)
{
    p->rate = (double)rate;
    p->burst = (double)(burst > 0 ? burst : 2 * rate); /* the collector's default: 2x */
    p->tokens = p->burst;
}

static int parse_composite(pctx_t *c, ts_policy_t *p, const sy_cfg_node_t *cfg, const char *path)
{
    int rc = get_int(c, cfg, "max_total_spans_per_second", path, &p->max_total);
    if (rc == 0) rc = parse_subs(c, p, cfg, "composite_sub_policy", path, LVL_COMPOSITE);
    if (rc < 0) return rc;
    if (!(p->allocated = calloc(p->nsubs, sizeof *p->allocated)) ||
        !(p->used = calloc(p->nsubs, sizeof *p->used)))
        return SY_ENOMEM;
    /* policy_order must name sub-policies; like the collector, the sub-policies
     * are then evaluated in the order composite_sub_policy lists them. */
    char **order = NULL;
    size_t *olens = NULL, norder = 0;
    rc = get_strlist(c, cfg, "policy_order", path, &order, &olens, &norder);
    for (size_t i = 0; rc == 0 && i < norder; i++) {
        bool found = false;
        for (size_t j = 0; j < p->nsubs; j++)
            if (!strcmp(order[i], p->subs[j]->name)) found = true;
        if (!found)
            rc = fail(c, cfg, path,
                      "policy_order names \"%s\", which is not a composite_sub_policy", order[i]);
    }
    for (size_t i = 0; i < norder; i++)
        free(order[i]);
    free(order);
    free(olens);
    if (rc < 0) return rc;
    /* rate_allocation: percent of max_total_spans_per_second; a percent of 0 or
     * less gets an equal share; a sub-policy not listed gets nothing (the
     * collector's getRateAllocationMap). */
    const sy_cfg_node_t *ra = c->api->cfg_get(cfg, "rate_allocation");
    size_t nra = ra && c->api->cfg_kind(ra) == 'l' ? c->api->cfg_len(ra) : 0;
    if (ra && c->api->cfg_kind(ra) != 'l' && c->api->cfg_kind(ra) != 'n')
        return fail(c, ra, path, "rate_allocation: expected a list");
    int64_t equal = p->nsubs ? p->max_total / (int64_t)p->nsubs : 0;
    for (size_t i = 0; i < nra; i++) {
        char sub[256];
        sub_path(sub, sizeof sub, path, ".rate_allocation[%zu]", i);
        const sy_cfg_node_t *e = c->api->cfg_at(ra, i, NULL);
        static const char *const k_ra[] = {"policy", "percent", NULL};
        if (c->api->cfg_kind(e) != 'm') return fail(c, e ? e : ra, sub, "expected a map");
        char *name = NULL;
        int64_t pct = 0;
        if ((rc = check_keys(c, e, sub, k_ra)) < 0 ||
            (rc = get_str(c, e, "policy", sub, &name)) < 0 ||
            (rc = get_int(c, e, "percent", sub, &pct)) < 0) {
            free(name);
            return rc;
        }
        bool found = false;
        for (size_t j = 0; name && j < p->nsubs; j++)
            if (!strcmp(name, p->subs[j]->name)) {
                p->allocated[j] = pct > 0 ? pct * p->max_total / 100 : equal;
                found = true;
            }
        if (!found)
            rc = fail(c, e, sub, "policy \"%s\" is not a composite_sub_policy", name ? name : "");
        free(name);
        if (rc < 0) return rc;
    }
    return 0;
}

/* A duration key (Go syntax: "10s", "500ms"), kept in *ns when present. */
static int get_duration(pctx_t *c, const sy_cfg_node_t *map, const char *key, const char *path,
                        uint64_t *ns)
{
    const sy_cfg_node_t *n;
    const char *s = scalar_of(c, map, key, &n);
    if (!n || c->api->cfg_kind(n) == 'n') return 0;
    if (ts_adaptive_parse_duration(s, ns) < 0)
        return fail(c, n, path, "%s: expected a duration such as 10s or 500ms, got \"%s\"", key,
                    s ? s : "");
    return 0;
}

/* The adaptive policy's settings (ts_adaptive.h; README "adaptive"). */
static int parse_adaptive(pctx_t *c, ts_policy_t *p, const sy_cfg_node_t *cfg, const char *path)
{
    ts_adaptive_cfg_t a = {.keep_errors = true,
                           .settle_ns = 10000000000u,
                           .interval_ns = 1000000000u,
                           .min_p = 0.0,
                           .max_p = 1.0,
                           .max_services = 1000};
    char *salt = NULL;
    const sy_cfg_node_t *tn = cfg ? c->api->cfg_get(cfg, "target_traces_per_second") : NULL;
    int rc;
    if ((rc = get_double(c, cfg, "target_traces_per_second", path, &a.target)) < 0 ||
        (rc = get_int(c, cfg, "latency_threshold_ms", path, &a.latency_ms)) < 0 ||
        (rc = get_bool(c, cfg, "keep_errors", path, &a.keep_errors)) < 0 ||
        (rc = get_duration(c, cfg, "settle_time", path, &a.settle_ns)) < 0 ||
        (rc = get_duration(c, cfg, "adjust_interval", path, &a.interval_ns)) < 0 ||
        (rc = get_double(c, cfg, "min_probability", path, &a.min_p)) < 0 ||
        (rc = get_double(c, cfg, "max_probability", path, &a.max_p)) < 0 ||
        (rc = get_int(c, cfg, "max_services", path, &a.max_services)) < 0 ||
        (rc = get_str(c, cfg, "hash_salt", path, &salt)) < 0)
        goto done;
    if (!tn || a.target <= 0)
        rc = fail(c, tn ? tn : cfg, path, "target_traces_per_second must be greater than 0");
    else if (a.latency_ms < 0)
        rc = fail(c, cfg, path, "latency_threshold_ms must not be negative");
    else if (a.interval_ns < 1000000u)
        rc = fail(c, cfg, path, "adjust_interval must be at least 1ms");
    else if (a.settle_ns < a.interval_ns)
        rc = fail(c, cfg, path, "settle_time must be at least adjust_interval");
    else if (!(a.min_p >= 0 && a.min_p <= a.max_p && a.max_p <= 1 && a.max_p > 0))
        rc = fail(c, cfg, path,
                  "min_probability and max_probability must satisfy 0 <= min <= max <= 1, max > 0");
    else if (a.max_services < 1 || a.max_services > 1000000)
        rc = fail(c, cfg, path, "max_services must be between 1 and 1000000");
    if (rc == 0) {
        a.salt = salt;
        if (!(p->adaptive = ts_adaptive_new(&a))) rc = SY_ENOMEM;
    }
done:
    free(salt);
    return rc;
}

static int parse_type(pctx_t *c, ts_policy_t *p, const sy_cfg_node_t *cfg, const char *path)
{
    int rc = 0;
    switch (p->type) {
    case P_ALWAYS:
    case P_FLAGS:
        return 0;
    case P_LATENCY:
        if ((rc = get_int(c, cfg, "threshold_ms", path, &p->lo_ms)) < 0) return rc;
        if ((rc = get_int(c, cfg, "upper_threshold_ms", path, &p->hi_ms)) < 0) return rc;
        if (p->hi_ms != 0 && p->hi_ms < p->lo_ms)
            return fail(c, cfg, path,
                        "upper_threshold_ms (%lld) must be greater than threshold_ms (%lld)",
                        (long long)p->hi_ms, (long long)p->lo_ms);
        return 0;
    case P_STATUS:
        return parse_status(c, p, cfg, path);
    case P_STRING: {
        bool regex = false;
        int64_t cache = 0;
        if ((rc = get_str(c, cfg, "key", path, &p->key)) < 0 ||
            (rc = get_strlist(c, cfg, "values", path, &p->values, &p->value_lens, &p->nvalues)) <
                0 ||
            (rc = get_bool(c, cfg, "enabled_regex_matching", path, &regex)) < 0 ||
            (rc = get_int(c, cfg, "cache_max_size", path, &cache)) < 0 ||
            (rc = get_bool(c, cfg, "invert_match", path, &p->invert)) < 0)
            return rc;
        if (cache > TS_REGEX_CACHE_MAX)
            return fail(c, cfg, path, "cache_max_size (%lld) must be at most %d", (long long)cache,
                        TS_REGEX_CACHE_MAX);
        if (!regex) return 0;
        /* the collector's filterset regexp cache: 128 entries unless set above 0 */
        if (!(p->re_cache = ts_strcache_new(cache > 0 ? (size_t)cache : TS_REGEX_CACHE_DEFAULT)))
            return SY_ENOMEM;
        return compile_regexes(c, p, cfg, path);
    }
    case P_NUMERIC: {
        int64_t lo = 0, hi = 0;
        if ((rc = get_str(c, cfg, "key", path, &p->key)) < 0 ||
            (rc = get_int(c, cfg, "min_value", path, &lo)) < 0 ||
            (rc = get_int(c, cfg, "max_value", path, &hi)) < 0 ||
            (rc = get_bool(c, cfg, "invert_match", path, &p->invert)) < 0)
            return rc;
        /* As the collector: a bound of 0 is no bound. */
        p->min = lo != 0 ? lo : INT64_MIN;
        p->max = hi != 0 ? hi : INT64_MAX;
        if (lo == 0 && hi == 0)
            return fail(c, cfg, path, "numeric_attribute needs min_value or max_value");
        if (p->max < p->min) return fail(c, cfg, path, "max_value must be greater than min_value");
        return 0;
    }
    case P_BOOL:
        if ((rc = get_str(c, cfg, "key", path, &p->key)) < 0 ||
            (rc = get_bool(c, cfg, "value", path, &p->bval)) < 0 ||
            (rc = get_bool(c, cfg, "invert_match", path, &p->invert)) < 0)
            return rc;
        return 0;
    case P_PROB: {
        double pct = 0;
        if ((rc = get_str(c, cfg, "hash_salt", path, &p->salt)) < 0 ||
            (rc = get_double(c, cfg, "sampling_percentage", path, &pct)) < 0)
            return rc;
        if (pct < 0) return fail(c, cfg, path, "sampling_percentage must not be negative");
        if (!p->salt || !p->salt[0]) {
            free(p->salt);
            if (!(p->salt = strdup("default-hash-seed"))) return SY_ENOMEM;
        }
        p->threshold = ts_threshold(pct);
        return 0;
    }
    case P_RATE:
    case P_BYTES: {
        int64_t rate = 0, burst = 0;
        const char *k = p->type == P_RATE ? "spans_per_second" : "bytes_per_second";
        if ((rc = get_int(c, cfg, k, path, &rate)) < 0 ||
            (rc = get_int(c, cfg, "burst_capacity", path, &burst)) < 0)
            return rc;
        if (rate <= 0) return fail(c, cfg, path, "%s must be greater than 0", k);
        if (burst < 0) return fail(c, cfg, path, "burst_capacity must not be negative");
        bucket_init(p, rate, burst);
        return 0;
    }
    case P_SPAN_COUNT:
        if ((rc = get_int(c, cfg, "min_spans", path, &p->min_spans)) < 0 ||
            (rc = get_int(c, cfg, "max_spans", path, &p->max_spans)) < 0)
            return rc;
        if (p->max_spans != 0 && p->max_spans < p->min_spans)
            return fail(c, cfg, path, "max_spans must be greater than or equal to min_spans");
        return 0;
    case P_TRACE_STATE:
        if ((rc = get_str(c, cfg, "key", path, &p->key)) < 0 ||
            (rc = get_strlist(c, cfg, "values", path, &p->values, &p->value_lens, &p->nvalues)) < 0)
            return rc;
        return 0;
    case P_OTTL: {
        char *mode = NULL;
        if ((rc = get_str(c, cfg, "error_mode", path, &mode)) < 0) return rc;
        p->error_mode = EM_PROPAGATE;
        if (mode && !strcmp(mode, "ignore"))
            p->error_mode = EM_IGNORE;
        else if (mode && !strcmp(mode, "silent"))
            p->error_mode = EM_SILENT;
        else if (mode && strcmp(mode, "propagate"))
            rc = fail(c, cfg, path, "error_mode: \"%s\" is not one of ignore, silent, propagate",
                      mode);
        free(mode);
        if (rc < 0) return rc;
        char what[300];
        sub_path(what, sizeof what, path, ".span");
        if ((rc = syc_ottl_list_compile(c->api, c->api->cfg_get(cfg, "span"), what,
                                        SYC_OTTL_CTX_SPAN, false, &p->span_conds, c->err,
                                        c->err_len)) < 0)
            return rc;
        sub_path(what, sizeof what, path, ".spanevent");
        if ((rc = syc_ottl_list_compile(c->api, c->api->cfg_get(cfg, "spanevent"), what,
                                        SYC_OTTL_CTX_SPANEVENT, false, &p->event_conds, c->err,
                                        c->err_len)) < 0)
            return rc;
        if (p->span_conds.count + p->event_conds.count == 0)
            return fail(c, cfg, path, "at least one span or spanevent condition is needed");
        return 0;
    }
    case P_AND:
        return parse_subs(c, p, cfg, "and_sub_policy", path, LVL_SHARED);
    case P_DROP:
        return parse_subs(c, p, cfg, "drop_sub_policy", path, LVL_SHARED);
    case P_NOT: {
        const sy_cfg_node_t *sub = c->api->cfg_get(cfg, "not_sub_policy");
        if (!sub || c->api->cfg_kind(sub) != 'm')
            return fail(c, sub ? sub : cfg, path, "not_sub_policy: expected a policy");
        if (!(p->subs = calloc(1, sizeof *p->subs))) return SY_ENOMEM;
        char subpath[256];
        sub_path(subpath, sizeof subpath, path, ".not_sub_policy");
        if ((rc = parse_policy(c, sub, subpath, LVL_SHARED, &p->subs[0])) < 0) return rc;
        p->nsubs = 1;
        return 0;
    }
    case P_COMPOSITE:
        return parse_composite(c, p, cfg, path);
    case P_ADAPTIVE:
        return parse_adaptive(c, p, cfg, path);
    }
    return 0;
}

static bool type_allowed(int type, int level)
{
    if (level == LVL_TOP) return true;
    if (type == P_ADAPTIVE) return false; /* its per-second budget is its own */
    if (type == P_COMPOSITE || type == P_DROP || type == P_NOT) return false;
    return level == LVL_COMPOSITE || type != P_AND;
}

static int parse_policy(pctx_t *c, const sy_cfg_node_t *n, const char *path, int level,
                        ts_policy_t **out)
{
    *out = NULL;
    if (!n || c->api->cfg_kind(n) != 'm') return fail(c, n, path, "expected a policy (a map)");
    int rc = check_keys(c, n, path, policy_keys);
    if (rc < 0) return rc;
    const sy_cfg_node_t *outer = c->policy;
    c->policy = n;
    ts_policy_t *p = calloc(1, sizeof *p);
    if (!p) {
        c->policy = outer;
        return SY_ENOMEM;
    }
    *out = p;
    char *type = NULL;
    if ((rc = get_str(c, n, "name", path, &p->name)) < 0 ||
        (rc = get_str(c, n, "type", path, &type)) < 0)
        goto done;
    if (!p->name || !p->name[0]) {
        rc = fail(c, n, path, "policy name cannot be empty");
        goto done;
    }
    p->type = -1;
    for (int t = 0; type && t < P_COUNT_; t++)
        if (!strcmp(type, type_names[t])) p->type = t;
    if (p->type < 0 || !type_allowed(p->type, level)) {
        rc = fail(c, n, path,
                  "failed to create policy evaluator for \"%s\": unknown sampling "
                  "policy type %s",
                  p->name, type ? type : "(none)");
        goto done;
    }
    const sy_cfg_node_t *cfg = NULL;
    char sub[256];
    sub_path(sub, sizeof sub, path, ".%s", type);
    if ((rc = get_map(c, n, type, path, &cfg)) < 0) goto done;
    if (cfg && (rc = check_keys(c, cfg, sub, type_keys[p->type])) < 0) goto done;
    rc = parse_type(c, p, cfg, sub);
    p->keylen = p->key ? strlen(p->key) : 0;
done:
    c->policy = outer;
    free(type);
    return rc;
}

int ts_policies_parse(const sy_host_api_t *api, const sy_cfg_node_t *node, ts_policies_t *out,
                      char *err, size_t err_len)
{
    pctx_t c = {api, err, err_len, node};
    memset(out, 0, sizeof *out);
    if (!node || api->cfg_kind(node) != 'l' || api->cfg_len(node) == 0)
        return fail(&c, node, "policies", "at least one policy is required");
    size_t n = api->cfg_len(node);
    if (!(out->list = calloc(n, sizeof *out->list))) return SY_ENOMEM;
    ts_policy_t **parsed = calloc(n, sizeof *parsed);
    if (!parsed) return SY_ENOMEM;
    int rc = 0;
    size_t got = 0;
    for (; got < n; got++) {
        char path[64];
        snprintf(path, sizeof path, "policies[%zu]", got);
        rc = parse_policy(&c, api->cfg_at(node, got, NULL), path, LVL_TOP, &parsed[got]);
        if (rc < 0) {
            got++; /* the half-parsed one is freed too */
            break;
        }
        for (size_t j = 0; j < got; j++)
            if (!strcmp(parsed[j]->name, parsed[got]->name)) {
                rc = fail(&c, api->cfg_at(node, got, NULL), path, "duplicate policy name \"%s\"",
                          parsed[got]->name);
                break;
            }
        if (rc < 0) {
            got++;
            break;
        }
    }
    /* Drop policies first, then the others, each in their configured order. */
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < got; i++)
            if (parsed[i] && (parsed[i]->type == P_DROP) == (pass == 0))
                out->list[out->count++] = parsed[i];
    free(parsed);
    return rc;
}

void ts_policies_free(ts_policies_t *ps)
{
    for (size_t i = 0; i < ps->count; i++)
        policy_free(ps->list[i]);
    free(ps->list);
    memset(ps, 0, sizeof *ps);
}

const char *ts_policy_name(const ts_policy_t *p)
{
    return p->name;
}

const char *ts_policy_type_name(const ts_policy_t *p)
{
    return p->type >= 0 && p->type < P_COUNT_ ? type_names[p->type] : "?";
}

ts_adaptive_t *ts_policy_adaptive(ts_policy_t *p)
{
    return p->type == P_ADAPTIVE ? p->adaptive : NULL;
}

bool ts_policy_is_drop(const ts_policy_t *p)
{
    return p->type == P_DROP;
}

/* ---- evaluation ------------------------------------------------------------------ */

uint64_t ts_hash_trace_id(const char *salt, size_t salt_len, const uint8_t id[16])
{
    return syc_fnv1a64(syc_fnv1a64(SYC_FNV64_OFFSET, salt, salt_len), id, 16);
}

/* The collector multiplies MaxUint64 by the ratio as a big.Float of 64 bits of
 * mantissa (rounded to nearest even) and truncates to an integer; long double on
 * x86-64 has exactly that mantissa. */
uint64_t ts_threshold(double percentage)
{
    long double v = (long double)UINT64_MAX * (long double)(percentage / 100.0);
    if (v <= 0) return 0;
    if (v >= (long double)UINT64_MAX) return UINT64_MAX;
    return (uint64_t)v;
}

static sy_view_node_t *resource_of(const sy_host_api_t *api, sy_view_node_t *span)
{
    sy_view_node_t *scope = api->view_parent(span);
    return scope ? api->view_parent(scope) : NULL;
}

/* The string as pdata's Value.Str() reads it: "" for any other type. */
static bool attr_str(ts_eval_t *ev, sy_view_node_t *node, const ts_policy_t *p, sy_value_t *v)
{
    if (ev->api->view_attr_get(node, p->key, p->keylen, v) != 0) return false;
    if (v->type != SY_VALUE_STRING) {
        v->str = "";
        v->len = 0;
    }
    return true;
}

static bool string_matches(ts_policy_t *p, const char *s, size_t len)
{
    if (p->re) {
        bool hit;
        if (p->re_cache && ts_strcache_get(p->re_cache, s, len, &hit)) return hit;
        hit = false;
        for (size_t i = 0; i < p->nvalues && !hit; i++)
            hit = pcre2_match(p->re[i], (PCRE2_SPTR)s, len, 0, 0, p->md, NULL) >= 0;
        if (p->re_cache) ts_strcache_put(p->re_cache, s, len, hit);
        return hit;
    }
    for (size_t i = 0; i < p->nvalues; i++)
        if (p->value_lens[i] && p->value_lens[i] == len && !memcmp(p->values[i], s, len))
            return true;
    return false;
}

/* Whether an attribute filter matches a resource (is_span false) or a span. */
static bool attr_matches(ts_policy_t *p, ts_eval_t *ev, sy_view_node_t *node, bool is_span)
{
    sy_value_t v;
    switch (p->type) {
    case P_STRING:
        if (!attr_str(ev, node, p, &v)) return false;
        if (is_span && v.len == 0) return false; /* the collector skips empty span values */
        return string_matches(p, v.str, v.len);
    case P_NUMERIC: {
        if (ev->api->view_attr_get(node, p->key, p->keylen, &v) != 0) return false;
        int64_t x = v.type == SY_VALUE_INT ? v.i : 0; /* pdata Value.Int() */
        return x >= p->min && x <= p->max;
    }
    case P_BOOL:
        if (ev->api->view_attr_get(node, p->key, p->keylen, &v) != 0) return false;
        return (v.type == SY_VALUE_BOOL && v.b) == p->bval;
    }
    return false;
}

/* hasResourceOrSpanWithCondition and its inverted form: any resource or span
 * that matches decides. */
static ts_decision_t eval_attr(ts_policy_t *p, ts_eval_t *ev, const ts_trace_data_t *t)
{
    bool matched = false;
    sy_view_node_t *last_res = NULL;
    for (size_t i = 0; i < t->nspans && !matched; i++) {
        sy_view_node_t *res = resource_of(ev->api, t->spans[i].node);
        if (res && res != last_res) {
            last_res = res;
            if (attr_matches(p, ev, res, false)) matched = true;
        }
        if (!matched && attr_matches(p, ev, t->spans[i].node, true)) matched = true;
    }
    if (p->invert) return matched ? TS_INVERT_NOT_SAMPLED : TS_INVERT_SAMPLED;
    return matched ? TS_SAMPLED : TS_NOT_SAMPLED;
}

static int64_t get_int_field(ts_eval_t *ev, sy_view_node_t *n, sy_field_t f)
{
    sy_value_t v;
    if (ev->api->view_get(n, f, &v) != 0 || v.type != SY_VALUE_INT) return 0;
    return v.i;
}

static ts_decision_t eval_latency(ts_policy_t *p, ts_eval_t *ev, const ts_trace_data_t *t)
{
    uint64_t lo = 0, hi = 0;
    for (size_t i = 0; i < t->nspans; i++) {
        uint64_t s = (uint64_t)get_int_field(ev, t->spans[i].node, SY_FIELD_START_TIME);
        uint64_t e = (uint64_t)get_int_field(ev, t->spans[i].node, SY_FIELD_END_TIME);
        if (lo == 0 || s < lo) lo = s;
        if (hi == 0 || e > hi) hi = e;
        /* The collector checks the running duration after every span. */
        int64_t ms = (int64_t)(hi - lo) / 1000000;
        if (p->hi_ms == 0 ? ms >= p->lo_ms : (p->lo_ms < ms && ms <= p->hi_ms)) return TS_SAMPLED;
    }
    return TS_NOT_SAMPLED;
}

static ts_decision_t eval_trace_state(ts_policy_t *p, ts_eval_t *ev, const ts_trace_data_t *t)
{
    for (size_t i = 0; i < t->nspans; i++) {
        sy_value_t v;
        if (ev->api->view_get(t->spans[i].node, SY_FIELD_TRACE_STATE, &v) != 0 ||
            v.type != SY_VALUE_STRING)
            continue;
        const char *val;
        size_t vlen;
        if (!ts_tracestate_get(v.str, v.len, p->key, p->keylen, &val, &vlen)) continue;
        for (size_t k = 0; k < p->nvalues; k++)
            /* A list member is at most 256 characters: longer values never match. */
            if (p->value_lens[k] && p->keylen + p->value_lens[k] < 256 &&
                p->value_lens[k] == vlen && !memcmp(p->values[k], val, vlen))
                return TS_SAMPLED;
    }
    return TS_NOT_SAMPLED;
}

/* One OTTL list on one node: true when any condition holds. */
static int ottl_any(ts_policy_t *p, ts_eval_t *ev, const syc_ottl_list_t *l, sy_view_node_t *node,
                    bool *out)
{
    *out = false;
    syc_ottl_view_bind(&ev->item, ev->api, node);
    for (size_t i = 0; i < l->count; i++) {
        bool t = false;
        int rc = syc_ottl_eval_condition(l->progs[i], &syc_ottl_view_accessor, &ev->item,
                                         ev->scratch, &t);
        if (rc < 0) {
            if (p->error_mode == EM_PROPAGATE) return rc;
            if (p->error_mode == EM_IGNORE)
                SY_LOG(ev->api, ev->inst, SY_LOG_WARN,
                       "policy %s: failed evaluating condition %zu (error %d); treated as false",
                       p->name, i, rc);
            continue;
        }
        if (t) {
            *out = true;
            return 0;
        }
    }
    return 0;
}

static int eval_ottl(ts_policy_t *p, ts_eval_t *ev, const ts_trace_data_t *t, ts_decision_t *out)
{
    *out = TS_NOT_SAMPLED;
    for (size_t i = 0; i < t->nspans; i++) {
        sy_view_node_t *span = t->spans[i].node;
        bool hit;
        int rc = ottl_any(p, ev, &p->span_conds, span, &hit);
        if (rc < 0 || hit) {
            if (hit) *out = TS_SAMPLED;
            return rc;
        }
        if (!p->event_conds.count) continue;
        size_t ne = ev->api->view_count(span, SY_VIEW_EVENTS);
        for (size_t k = 0; k < ne; k++) {
            rc = ottl_any(p, ev, &p->event_conds, ev->api->view_at(span, SY_VIEW_EVENTS, k), &hit);
            if (rc < 0 || hit) {
                if (hit) *out = TS_SAMPLED;
                return rc;
            }
        }
    }
    return 0;
}

/* golang.org/x/time/rate's AllowN: the bucket refills continuously up to burst. */
static bool bucket_take(ts_policy_t *p, uint64_t now_ns, double n)
{
    if (p->bucket_started && now_ns > p->last_ns) {
        p->tokens += (double)(now_ns - p->last_ns) / 1e9 * p->rate;
        if (p->tokens > p->burst) p->tokens = p->burst;
    }
    p->bucket_started = true;
    p->last_ns = now_ns;
    if (n > p->burst || p->tokens < n) return false;
    p->tokens -= n;
    return true;
}

static int eval_composite(ts_policy_t *p, ts_eval_t *ev, const ts_trace_data_t *t,
                          ts_decision_t *out)
{
    int64_t second = (int64_t)(ev->now_ns / 1000000000u);
    if (second != p->cur_second) {
        p->cur_second = second;
        memset(p->used, 0, p->nsubs * sizeof *p->used);
    }
    *out = TS_NOT_SAMPLED;
    for (size_t i = 0; i < p->nsubs; i++) {
        ts_decision_t d;
        int rc = ts_policy_eval(p->subs[i], ev, t, &d);
        if (rc < 0) return rc;
        if (d != TS_SAMPLED && d != TS_INVERT_SAMPLED) continue;
        int64_t would = p->used[i] + (int64_t)t->nspans;
        if (would <= p->allocated[i] && would <= p->max_total) {
            p->used[i] = would;
            *out = TS_SAMPLED;
        }
        return 0; /* over its allocation: not sampled, and no later sub-policy is asked */
    }
    return 0;
}

int ts_policy_eval(ts_policy_t *p, ts_eval_t *ev, const ts_trace_data_t *t, ts_decision_t *out)
{
    switch (p->type) {
    case P_ALWAYS:
        *out = TS_SAMPLED;
        return 0;
    case P_LATENCY:
        *out = eval_latency(p, ev, t);
        return 0;
    case P_STATUS:
        for (size_t i = 0; i < t->nspans; i++) {
            int64_t code = get_int_field(ev, t->spans[i].node, SY_FIELD_STATUS_CODE);
            if (code >= 0 && code <= 2 && (p->status_mask & (1u << code))) {
                *out = TS_SAMPLED;
                return 0;
            }
        }
        *out = TS_NOT_SAMPLED;
        return 0;
    case P_STRING:
    case P_NUMERIC:
    case P_BOOL:
        *out = eval_attr(p, ev, t);
        return 0;
    case P_PROB:
        *out = ts_hash_trace_id(p->salt, strlen(p->salt), t->id) <= p->threshold ? TS_SAMPLED
                                                                                 : TS_NOT_SAMPLED;
        return 0;
    case P_RATE:
        *out = bucket_take(p, ev->now_ns, (double)t->nspans) ? TS_SAMPLED : TS_NOT_SAMPLED;
        return 0;
    case P_BYTES:
        *out = bucket_take(p, ev->now_ns, (double)t->bytes) ? TS_SAMPLED : TS_NOT_SAMPLED;
        return 0;
    case P_SPAN_COUNT: {
        int64_t n = (int64_t)t->nspans;
        bool in = n >= p->min_spans && (p->max_spans == 0 || n <= p->max_spans);
        *out = in ? TS_SAMPLED : TS_NOT_SAMPLED;
        return 0;
    }
    case P_TRACE_STATE:
        *out = eval_trace_state(p, ev, t);
        return 0;
    case P_FLAGS:
        for (size_t i = 0; i < t->nspans; i++)
            if (get_int_field(ev, t->spans[i].node, SY_FIELD_FLAGS) & 0x1) {
                *out = TS_SAMPLED;
                return 0;
            }
        *out = TS_NOT_SAMPLED;
        return 0;
    case P_OTTL:
        return eval_ottl(p, ev, t, out);
    case P_AND:
    case P_DROP:
        for (size_t i = 0; i < p->nsubs; i++) {
            ts_decision_t d;
            int rc = ts_policy_eval(p->subs[i], ev, t, &d);
            if (rc < 0) return rc;
            if (d == TS_NOT_SAMPLED || d == TS_INVERT_NOT_SAMPLED) {
                *out = TS_NOT_SAMPLED;
                return 0;
            }
        }
        *out = p->type == P_AND ? TS_SAMPLED : TS_DROPPED;
        return 0;
    case P_NOT: {
        int rc = ts_policy_eval(p->subs[0], ev, t, out);
        if (rc < 0) return rc;
        if (*out == TS_SAMPLED)
            *out = TS_NOT_SAMPLED;
        else if (*out == TS_NOT_SAMPLED)
            *out = TS_SAMPLED;
        return 0;
    }
    case P_COMPOSITE:
        return eval_composite(p, ev, t, out);
    case P_ADAPTIVE:
        *out = ts_adaptive_eval(p->adaptive, ev, t);
        return 0;
    }
    *out = TS_NOT_SAMPLED;
    return 0;
}
