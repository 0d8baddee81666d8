/*
 * filter_legacy.c - the legacy include/exclude blocks as one OTTL condition (see
 * filter_legacy.h). Within a block every property given must match (and); within
 * a list of names any may (or); every attribute listed must match. strict
 * compares for equality, regexp matches anywhere in the value (Go's
 * regexp.MatchString, as the collector's filterset does). Regexes are checked
 * one by one so that an error names the value at fault.
 */
#include "filter_legacy.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ottl.h"

typedef struct sbuf_s {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf_t;

static void sb_add(sbuf_t *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 256) + n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* s as an OTTL string literal. */
static void sb_quoted(sbuf_t *b, const char *s)
{
    sb_add(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') sb_add(b, "\\", 1);
        if (*s == '\n') {
            sb_add(b, "\\n", 2);
            continue;
        }
        sb_add(b, s, 1);
    }
    sb_add(b, "\"", 1);
}

typedef struct ctx_s {
    const sy_host_api_t *api;
    bool regexp;
    char *err;
    size_t err_len;
} ctx_t;

static int fail(ctx_t *c, const sy_cfg_node_t *at, const char *fmt, ...) SY_PRINTF(3, 4);
static int fail(ctx_t *c, const sy_cfg_node_t *at, const char *fmt, ...)
{
    int n = snprintf(c->err, c->err_len, "%s: ", c->api->cfg_where(at));
    if (n < 0 || (size_t)n >= c->err_len) return SY_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return SY_EINVAL;
}

static const char *scalar(ctx_t *c, const sy_cfg_node_t *n)
{
    return n && c->api->cfg_kind(n) == 's' ? c->api->cfg_scalar(n) : NULL;
}

/* `path` matches value v: equality (strict) or IsMatch (regexp). */
static int match_value(ctx_t *c, sbuf_t *b, const char *path, const sy_cfg_node_t *vn,
                       const char *key)
{
    const char *v = scalar(c, vn);
    if (!v) return fail(c, vn, "%s: expected a string", key);
    if (c->regexp) {
        sbuf_t probe = {0};
        sb_str(&probe, "IsMatch(\"\", ");
        sb_quoted(&probe, v);
        sb_str(&probe, ")");
        if (probe.oom) return SY_ENOMEM;
        syc_ottl_error_t e;
        syc_ottl_prog_t *p = syc_ottl_compile_condition(probe.p, probe.len, SYC_OTTL_CTX_SPAN, &e);
        free(probe.p);
        if (!p) {
            const char *why = strstr(e.msg, "IsMatch: "); /* past the probe's own words */
            return fail(c, vn, "%s: invalid regex \"%s\": %s", key, v, why ? why + 9 : e.msg);
        }
        syc_ottl_free(p);
        sb_str(b, "IsMatch(");
        sb_str(b, path);
        sb_str(b, ", ");
        sb_quoted(b, v);
        sb_str(b, ")");
        return 0;
    }
    /* A YAML scalar has no type here: a value that reads as an int or a bool
     * matches that too, as the collector's typed attribute values do. */
    sb_str(b, "(");
    sb_str(b, path);
    sb_str(b, " == ");
    sb_quoted(b, v);
    char *end;
    strtoll(v, &end, 10);
    bool is_int = *v && *end == '\0';
    if (is_int || !strcmp(v, "true") || !strcmp(v, "false")) {
        sb_str(b, " or ");
        sb_str(b, path);
        sb_str(b, " == ");
        sb_str(b, v);
    }
    sb_str(b, ")");
    return 0;
}

/* A list of names: (path matches any). */
static int name_list(ctx_t *c, sbuf_t *b, const char *path, const sy_cfg_node_t *list,
                     const char *key)
{
    const sy_host_api_t *api = c->api;
    if (api->cfg_kind(list) != 'l' || api->cfg_len(list) == 0)
        return fail(c, list, "%s: expected a non-empty list", key);
    sb_str(b, "(");
    for (size_t i = 0; i < api->cfg_len(list); i++) {
        if (i) sb_str(b, " or ");
        int rc = match_value(c, b, path, api->cfg_at(list, i, NULL), key);
        if (rc < 0) return rc;
    }
    sb_str(b, ")");
    return 0;
}

/* A list of {key, value}: every one matches (a key without a value: present). */
static int attr_list(ctx_t *c, sbuf_t *b, const char *map, const sy_cfg_node_t *list,
                     const char *key)
{
    const sy_host_api_t *api = c->api;
    if (api->cfg_kind(list) != 'l' || api->cfg_len(list) == 0)
        return fail(c, list, "%s: expected a non-empty list of {key, value}", key);
    sb_str(b, "(");
    for (size_t i = 0; i < api->cfg_len(list); i++) {
        const sy_cfg_node_t *el = api->cfg_at(list, i, NULL);
        if (api->cfg_kind(el) != 'm') return fail(c, el, "%s: expected {key, value}", key);
        const char *k = scalar(c, api->cfg_get(el, "key"));
        if (!k) return fail(c, el, "%s: key is required", key);
        for (size_t j = 0; j < api->cfg_len(el); j++) {
            const char *name;
            api->cfg_at(el, j, &name);
            if (strcmp(name, "key") && strcmp(name, "value"))
                return fail(c, api->cfg_at(el, j, NULL), "%s: unknown key '%s'", key, name);
        }
        sbuf_t path = {0};
        sb_str(&path, map);
        sb_str(&path, "[");
        sb_quoted(&path, k);
        sb_str(&path, "]");
        if (path.oom) return SY_ENOMEM;
        if (i) sb_str(b, " and ");
        const sy_cfg_node_t *vn = api->cfg_get(el, "value");
        int rc = 0;
        if (!vn || api->cfg_kind(vn) == 'n') {
            sb_str(b, path.p);
            sb_str(b, " != nil");
        } else {
            rc = match_value(c, b, path.p, vn, key);
        }
        free(path.p);
        if (rc < 0) return rc;
    }
    sb_str(b, ")");
    return 0;
}

/* severity_number: {min: INFO, match_undefined: false}. */
static int severity(ctx_t *c, sbuf_t *b, const sy_cfg_node_t *node, const char *key)
{
    const sy_host_api_t *api = c->api;
    const char *min = api->cfg_kind(node) == 'm' ? scalar(c, api->cfg_get(node, "min")) : NULL;
    if (!min) return fail(c, node, "%s: expected {min: <severity>, match_undefined: bool}", key);
    const char *mu = scalar(c, api->cfg_get(node, "match_undefined"));
    sbuf_t e = {0};
    sb_str(&e, "severity_number >= SEVERITY_NUMBER_");
    for (const char *p = min; *p; p++) {
        char u = *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        sb_add(&e, &u, 1);
    }
    if (e.oom) return SY_ENOMEM;
    syc_ottl_error_t err;
    syc_ottl_prog_t *p = syc_ottl_compile_condition(e.p, e.len, SYC_OTTL_CTX_LOG, &err);
    if (!p) {
        free(e.p);
        return fail(c, api->cfg_get(node, "min"), "%s.min: unknown severity '%s'", key, min);
    }
    syc_ottl_free(p);
    sb_str(b, "(");
    sb_str(b, e.p);
    if (mu && !strcmp(mu, "true")) sb_str(b, " or severity_number == 0");
    sb_str(b, ")");
    free(e.p);
    return 0;
}

/* One include or exclude block: (every property given matches). */
static int block(ctx_t *c, filter_legacy_kind_t kind, const char *what, const char *side,
                 const sy_cfg_node_t *node, sbuf_t *b)
{
    const sy_host_api_t *api = c->api;
    char key[128];
    if (api->cfg_kind(node) != 'm') {
        snprintf(key, sizeof key, "%s.%s", what, side);
        return fail(c, node, "%s: expected a map", key);
    }
    const char *mt = scalar(c, api->cfg_get(node, "match_type"));
    if (!mt) {
        snprintf(key, sizeof key, "%s.%s.match_type", what, side);
        return fail(c, node, "%s: is required (strict or regexp)", key);
    }
    if (!strcmp(mt, "strict")) {
        c->regexp = false;
    } else if (!strcmp(mt, "regexp")) {
        c->regexp = true;
    } else {
        snprintf(key, sizeof key, "%s.%s.match_type", what, side);
        return fail(c, api->cfg_get(node, "match_type"),
                    "%s: '%s' is not supported (strict or regexp)", key, mt);
    }
    size_t props = 0;
    sb_str(b, "(");
    for (size_t i = 0; i < api->cfg_len(node); i++) {
        const char *name;
        const sy_cfg_node_t *v = api->cfg_at(node, i, &name);
        snprintf(key, sizeof key, "%s.%s.%s", what, side, name);
        if (!strcmp(name, "match_type")) continue;
        if (props++) sb_str(b, " and ");
        int rc;
        if (kind == FL_SPANS && !strcmp(name, "services"))
            rc = name_list(c, b, "resource.attributes[\"service.name\"]", v, key);
        else if (kind == FL_SPANS && !strcmp(name, "span_names"))
            rc = name_list(c, b, "name", v, key);
        else if (kind == FL_SPANS && !strcmp(name, "attributes"))
            rc = attr_list(c, b, "attributes", v, key);
        else if (kind == FL_SPANS && !strcmp(name, "resources"))
            rc = attr_list(c, b, "resource.attributes", v, key);
        else if (kind == FL_LOGS && !strcmp(name, "record_attributes"))
            rc = attr_list(c, b, "attributes", v, key);
        else if (kind == FL_LOGS && !strcmp(name, "resource_attributes"))
            rc = attr_list(c, b, "resource.attributes", v, key);
        else if (kind == FL_LOGS && !strcmp(name, "bodies"))
            rc = name_list(c, b, "body", v, key);
        else if (kind == FL_LOGS && !strcmp(name, "severity_texts"))
            rc = name_list(c, b, "severity_text", v, key);
        else if (kind == FL_LOGS && !strcmp(name, "severity_number"))
            rc = severity(c, b, v, key);
        else if (kind == FL_METRICS && !strcmp(name, "metric_names"))
            rc = name_list(c, b, "name", v, key);
        else if (kind == FL_METRICS && !strcmp(name, "resource_attributes"))
            rc = attr_list(c, b, "resource.attributes", v, key);
        else
            rc = fail(c, v, "%s: not supported (see the filter processor's README)", key);
        if (rc < 0) return rc;
    }
    if (props == 0) {
        snprintf(key, sizeof key, "%s.%s", what, side);
        return fail(c, node, "%s: names no property to match", key);
    }
    sb_str(b, ")");
    return 0;
}

int filter_legacy_condition(const sy_host_api_t *api, filter_legacy_kind_t kind, const char *what,
                            const sy_cfg_node_t *include, const sy_cfg_node_t *exclude, char **out,
                            char *err, size_t err_len)
{
    *out = NULL;
    if (include && api->cfg_kind(include) == 'n') include = NULL;
    if (exclude && api->cfg_kind(exclude) == 'n') exclude = NULL;
    if (!include && !exclude) return 0;
    ctx_t c = {.api = api, .err = err, .err_len = err_len};
    sbuf_t b = {0};
    int rc = 0;
    if (include) {
        sb_str(&b, "not ");
        rc = block(&c, kind, what, "include", include, &b);
    }
    if (rc == 0 && exclude) {
        if (include) sb_str(&b, " or ");
        rc = block(&c, kind, what, "exclude", exclude, &b);
    }
    if (rc == 0 && b.oom) rc = SY_ENOMEM;
    if (rc < 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    return 0;
}
