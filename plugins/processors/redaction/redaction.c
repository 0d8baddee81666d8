/*
 * redaction.c - the `redaction` processor: deletes attributes whose keys are not
 * allowed and masks values that match blocked patterns, as the collector's
 * redactionprocessor does, on resource, scope, span, span event, log record
 * and data point attributes and on string log bodies. Beyond the collector, the
 * detectors of plugins/common/detect.h (cards, e-mails, credentials, IPs, URL
 * passwords) can mask what they find in every value checked.
 *
 * It reads and edits a batch through the view only (docs/view.md): the edits of
 * a whole batch are applied by one view_commit(), and a batch with nothing to
 * change is emitted as it came, without a commit.
 *
 * The order of the decisions on one attribute is the collector's: an ignored key
 * is left alone; a key not allowed (with allow_all_keys false) is deleted; a
 * value matching allowed_values is left alone; a key matching
 * blocked_key_patterns has its whole value masked; otherwise the matches of
 * blocked_values (and of the detectors) are masked. The `redaction.*` summary
 * attributes are written as the collector writes them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "attr_actions.h"
#include "redaction_rules.h"
#include "redaction_walk.h"

typedef struct rd_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const rd_config_t *cfg;
    rd_rules_t rules;
    rd_keylist_t redacted, masked, allowed, ignored, merge;
    rd_walk_t walk; /* inside maps and arrays */
    syc_buf_t join, url;
    size_t edits; /* edits recorded on the current view */
    bool oom;
    sy_metric_t *m_redacted, *m_masked, *m_allowed, *m_ignored, *m_detected, *m_url;
    /* What the current batch adds to each of those counters: added to them
     * once a batch, not once a node (atomic adds, five a span otherwise). */
    int64_t n_redacted, n_masked, n_allowed, n_ignored, n_detected, n_url;
} rd_state_t;

static const char *const rd_hash_names[] = {"none",        "md5",         "sha1", "sha3",
                                            "hmac-sha256", "hmac-sha512", NULL};
static const char *const rd_summary_names[] = {"silent", "info", "debug", NULL};

static const sy_config_field_t rd_fields[] = {
    {.name = "allow_all_keys",
     .type = SY_CFG_BOOL,
     .offset = offsetof(rd_config_t, allow_all_keys),
     .default_value = "false",
     .description = "Keep every attribute key; allowed_keys is then not used."},
    {.name = "allowed_keys",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(rd_config_t, allowed_keys),
     .description = "Attribute keys kept; every other key is deleted (empty: all are deleted) "
                    "unless allow_all_keys is true."},
    {.name = "ignored_keys",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(rd_config_t, ignored_keys),
     .description = "Attribute keys kept and never checked or masked."},
    {.name = "blocked_key_patterns",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(rd_config_t, blocked_key_patterns),
     .description = "Regexes; the whole value of a key that matches one is masked."},
    {.name = "blocked_values",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(rd_config_t, blocked_values),
     .description = "Regexes; the matching parts of values are masked."},
    {.name = "allowed_values",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(rd_config_t, allowed_values),
     .description = "Regexes; a value matching one is not masked."},
    {.name = "detectors",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(rd_config_t, detectors),
     .description = "Detectors masking what they find in every checked value: card, email, "
                    "bearer, ipv4, ipv6, url_password (none by default)."},
    {.name = "hash_function",
     .type = SY_CFG_ENUM,
     .offset = offsetof(rd_config_t, hash_function),
     .default_value = "none",
     .description = "Replace a masked match by its hex digest instead of ****.",
     .enum_values = rd_hash_names},
    {.name = "hmac_key",
     .type = SY_CFG_STRING,
     .offset = offsetof(rd_config_t, hmac_key),
     .description = "The key of hash_function hmac-sha256 and hmac-sha512."},
    {.name = "summary",
     .type = SY_CFG_ENUM,
     .offset = offsetof(rd_config_t, summary),
     .default_value = "silent",
     .description = "The redaction.* attributes written: debug (keys and counts), info (counts), "
                    "silent (none).",
     .enum_values = rd_summary_names},
    {.name = "redact_all_types",
     .type = SY_CFG_BOOL,
     .offset = offsetof(rd_config_t, redact_all_types),
     .default_value = "false",
     .description = "Check int, double, bool and bytes values too, as their string form "
                    "(a masked one becomes a string)."},
    {.name = "ignored_key_patterns",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(rd_config_t, ignored_key_patterns),
     .description = "Regexes; a key matching one is treated as an ignored key."},
    {.name = "url_sanitizer.enabled",
     .type = SY_CFG_BOOL,
     .offset = offsetof(rd_config_t, url_enabled),
     .default_value = "false",
     .description = "Replace the identifiers in URL paths by * and drop query strings."},
    {.name = "url_sanitizer.attributes",
     .type = SY_CFG_STRLIST,
     .offset = offsetof(rd_config_t, url_attributes),
     .description = "Attribute keys whose values are sanitized as URLs."},
    {.name = "url_sanitizer.sanitize_span_name",
     .type = SY_CFG_BOOL,
     .offset = offsetof(rd_config_t, url_span_name),
     .default_value = "true",
     .description = "Sanitize the names of client and server spans that look like HTTP."},
    {.name = "url_sanitizer.sanitize_log_body",
     .type = SY_CFG_BOOL,
     .offset = offsetof(rd_config_t, url_log_body),
     .default_value = "true",
     .description = "Sanitize string log bodies as URLs."},
    {.name = "db_sanitizer",
     .type = SY_CFG_RAW,
     .offset = offsetof(rd_config_t, db_sanitizer),
     .description = "Not supported: refused when it enables anything."},
};

static int rd_validate(const void *config, char *err, size_t err_len)
{
    rd_rules_t r = {0};
    int rc = rd_rules_init(&r, config, err, err_len);
    rd_rules_free(&r);
    return rc < 0 ? SY_EINVAL : SY_OK;
}

/* The attributes the processor writes: always allowed, so that a second
 * redaction processor downstream keeps (and adds to) them, as the collector. */
static const char *const rd_summary_keys[] = {
    "redaction.redacted.keys",      "redaction.redacted.count",     "redaction.masked.keys",
    "redaction.masked.count",       "redaction.allowed.keys",       "redaction.allowed.count",
    "redaction.ignored.count",      "redaction.body.redacted.keys", "redaction.body.redacted.count",
    "redaction.body.masked.keys",   "redaction.body.masked.count",  "redaction.body.allowed.keys",
    "redaction.body.allowed.count", "redaction.body.ignored.count",
};

static bool is_summary_key(const char *k, size_t len)
{
    if (len < 10 || memcmp(k, "redaction.", 10) != 0) return false;
    for (size_t i = 0; i < sizeof(rd_summary_keys) / sizeof(rd_summary_keys[0]); i++)
        if (strlen(rd_summary_keys[i]) == len && memcmp(rd_summary_keys[i], k, len) == 0)
            return true;
    return false;
}

static void keylist_push(rd_state_t *s, rd_keylist_t *l, const char *p, size_t len)
{
    rd_keylist_push(l, p, len, &s->oom);
}

/* Go's sort.Strings order: bytewise, a prefix first. */
static int key_cmp(const void *a, const void *b)
{
    const rd_key_t *x = a, *y = b;
    int c = memcmp(x->p, y->p, x->len < y->len ? x->len : y->len);
    if (c) return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

static void record(rd_state_t *s, int rc)
{
    if (rc == SY_OK)
        s->edits++;
    else if (rc == SY_ENOMEM)
        s->oom = true;
}

/*
 * The collector's addMetaAttrs: with summary debug, keys_attr gets the sorted,
 * comma-joined keys (merged with what an earlier processor wrote there); with
 * info or debug, count_attr gets their number (added to an earlier count).
 */
static void add_meta(rd_state_t *s, sy_view_node_t *node, const rd_keylist_t *keys,
                     const char *keys_attr, const char *count_attr)
{
    const sy_host_api_t *api = s->api;
    if (keys->n == 0 || s->cfg->summary == RD_SUMMARY_SILENT) return;
    sy_value_t old, v;
    if (s->cfg->summary == RD_SUMMARY_DEBUG && keys_attr) {
        rd_keylist_t *m = &s->merge;
        m->n = 0;
        for (size_t i = 0; i < keys->n; i++)
            keylist_push(s, m, keys->k[i].p, keys->k[i].len);
        if (api->view_attr_get(node, keys_attr, strlen(keys_attr), &old) == SY_OK &&
            old.type == SY_VALUE_STRING && old.len > 0) {
            size_t from = 0;
            for (size_t i = 0; i <= old.len; i++)
                if (i == old.len || old.str[i] == ',') {
                    keylist_push(s, m, old.str + from, i - from);
                    from = i + 1;
                }
        }
        if (s->oom) return;
        qsort(m->k, m->n, sizeof(*m->k), key_cmp);
        s->join.len = 0;
        for (size_t i = 0; i < m->n; i++)
            if ((i > 0 && syc_buf_put(&s->join, ",", 1) < 0) ||
                syc_buf_put(&s->join, m->k[i].p, m->k[i].len) < 0)
                s->oom = true;
        v = (sy_value_t){
            .type = SY_VALUE_STRING, .str = s->join.p ? s->join.p : "", .len = s->join.len};
        record(s, api->view_attr_set(node, keys_attr, strlen(keys_attr), &v, SY_ATTR_UPSERT));
    }
    int64_t count = (int64_t)keys->n;
    if (api->view_attr_get(node, count_attr, strlen(count_attr), &old) == SY_OK &&
        old.type == SY_VALUE_INT)
        count += old.i;
    v = (sy_value_t){.type = SY_VALUE_INT, .i = count};
    record(s, api->view_attr_set(node, count_attr, strlen(count_attr), &v, SY_ATTR_UPSERT));
}

static void set_string_attr(rd_state_t *s, sy_view_node_t *node, const sy_value_t *key,
                            const char *val, size_t len)
{
    sy_value_t v = {.type = SY_VALUE_STRING, .str = val, .len = len};
    record(s, s->api->view_attr_set(node, key->str, key->len, &v, SY_ATTR_UPSERT));
}

/* The lists a walk inside a map or array adds to: the node's own. */
static rd_lists_t node_lists(rd_state_t *s)
{
    return (rd_lists_t){&s->redacted, &s->masked, &s->allowed, &s->ignored};
}

static void clear_lists(rd_state_t *s)
{
    s->redacted.n = s->masked.n = s->allowed.n = s->ignored.n = 0;
    rd_walk_reset(&s->walk);
}

/* v as the collector's Value.AsString(), in num (cap bytes) or, for long bytes
 * values, in s->join. Maps and arrays read as "". Returns 0 or SY_ENOMEM (s->oom
 * set). */
static int as_string(rd_state_t *s, const sy_value_t *v, char *num, size_t cap, const char **str,
                     size_t *len)
{
    size_t need = syc_value_as_string_cap(v);
    char *buf = num;
    if (need > cap) {
        if (s->join.cap < need) {
            char *p = realloc(s->join.p, need);
            if (!p) {
                s->oom = true;
                return SY_ENOMEM;
            }
            s->join.p = p;
            s->join.cap = need;
        }
        buf = s->join.p;
        cap = s->join.cap;
    }
    if (syc_value_as_string(v, buf, cap, str, len) < 0) {
        *str = "";
        *len = 0;
    }
    return SY_OK;
}

/* The url_sanitizer on str, when on and asked for (key listed, or a body).
 * Returns 1 with the new string in s->url when it changed, 0, or SY_ENOMEM. */
static int sanitize_url(rd_state_t *s, const char *str, size_t len)
{
    if (len == 0) return 0;
    if (rd_url_sanitize(str, len, &s->url) < 0) return SY_ENOMEM;
    return s->url.len != len || memcmp(s->url.p, str, len) != 0;
}

/*
 * blocked_values and the detectors on str, then (when url is true) the URL
 * sanitizer: the collector's processStringValueFor{Attribute,LogBody}. Returns
 * 1 with the new string in *out (scratch, valid until the next value), 0 when
 * nothing changed, or SY_ENOMEM (s->oom set).
 */
static int mask_string(rd_state_t *s, const char *str, size_t len, bool url, const char **out,
                       size_t *out_len, uint64_t *detected)
{
    int rc = rd_mask_value(&s->rules, str, len, out, out_len, detected);
    if (rc == 0) *out = str, *out_len = len;
    if (rc >= 0 && url) {
        int u = sanitize_url(s, *out, *out_len);
        if (u > 0) {
            s->n_url++;
            *out = s->url.p, *out_len = s->url.len, rc = 1;
        }
        if (u < 0) rc = u;
    }
    if (rc < 0) s->oom = true;
    return rc;
}

/*
 * One attribute value, as the collector's processAttrs after the key checks:
 * allowed_values, blocked_key_patterns, blocked_values (then our detectors),
 * then the url_sanitizer for the keys it lists.
 */
static void process_value(rd_state_t *s, sy_view_node_t *node, const sy_value_t *k,
                          const sy_value_t *v, uint64_t *detected)
{
    rd_rules_t *r = &s->rules;
    const rd_config_t *cfg = s->cfg;
    /* Value.Str(): a value of another type reads as ""; with redact_all_types,
     * Value.AsString(). */
    const char *str = "";
    size_t len = 0;
    char num[64];
    if (v->type == SY_VALUE_STRING || cfg->redact_all_types) {
        int rc = as_string(s, v, num, sizeof(num), &str, &len);
        if (rc == SY_ENOMEM) return;
    }
    if (r->allowed_values.n && rd_regex_any(r, &r->allowed_values, str, len)) {
        keylist_push(s, &s->allowed, k->str, k->len);
        return;
    }
    const char *out;
    size_t out_len;
    if (r->blocked_keys.n && rd_regex_any(r, &r->blocked_keys, k->str, k->len)) {
        keylist_push(s, &s->masked, k->str, k->len);
        if (rd_mask_whole(r, str, len, &out, &out_len) < 0)
            s->oom = true;
        else
            set_string_attr(s, node, k, out, out_len);
        return;
    }
    bool url = cfg->url_enabled && rd_key_in(&r->url_attributes, k->str, k->len);
    int rc = mask_string(s, str, len, url, &out, &out_len, detected);
    if (rc > 0) {
        keylist_push(s, &s->masked, k->str, k->len);
        set_string_attr(s, node, k, out, out_len);
    }
}

/* Writes the summary of one node's lists, under the attribute names of `what`
 * ("" for attributes, "body." for a log body). */
static void add_summaries(rd_state_t *s, sy_view_node_t *node, bool body)
{
    rd_walk_fix(&s->walk, &s->redacted);
    rd_walk_fix(&s->walk, &s->masked);
    rd_walk_fix(&s->walk, &s->allowed);
    if (body) {
        add_meta(s, node, &s->redacted, "redaction.body.redacted.keys",
                 "redaction.body.redacted.count");
        add_meta(s, node, &s->masked, "redaction.body.masked.keys", "redaction.body.masked.count");
        add_meta(s, node, &s->allowed, "redaction.body.allowed.keys",
                 "redaction.body.allowed.count");
        add_meta(s, node, &s->ignored, NULL, "redaction.body.ignored.count");
    } else {
        add_meta(s, node, &s->redacted, "redaction.redacted.keys", "redaction.redacted.count");
        add_meta(s, node, &s->masked, "redaction.masked.keys", "redaction.masked.count");
        add_meta(s, node, &s->allowed, "redaction.allowed.keys", "redaction.allowed.count");
        add_meta(s, node, &s->ignored, NULL, "redaction.ignored.count");
    }
    s->n_redacted += (int64_t)s->redacted.n;
    s->n_masked += (int64_t)s->masked.n;
    s->n_allowed += (int64_t)s->allowed.n;
    s->n_ignored += (int64_t)s->ignored.n;
}

/* The collector's processAttrs, on the attributes of one node. Beyond the
 * collector, a map or array value is looked inside, as a log body is. */
static void process_attrs(rd_state_t *s, sy_view_node_t *node)
{
    const sy_host_api_t *api = s->api;
    rd_rules_t *r = &s->rules;
    size_t n = api->view_attr_count(node);
    if (n == 0) return;
    clear_lists(s);
    uint64_t detected = 0;
    rd_lists_t lists = node_lists(s);
    for (size_t i = 0; i < n && !s->oom; i++) {
        sy_value_t k, v;
        if (api->view_attr_at(node, i, &k, &v) != SY_OK) continue;
        if ((r->ignored.n || r->ignored_key_patterns.n) && rd_key_ignored(r, k.str, k.len)) {
            keylist_push(s, &s->ignored, k.str, k.len);
            continue;
        }
        if (!s->cfg->allow_all_keys && !rd_key_in(&r->allowed, k.str, k.len) &&
            !is_summary_key(k.str, k.len)) {
            keylist_push(s, &s->redacted, k.str, k.len);
            continue;
        }
        if ((v.type == SY_VALUE_MAP || v.type == SY_VALUE_ARRAY) &&
            !rd_regex_any(r, &r->blocked_keys, k.str, k.len)) {
            sy_value_t nv;
            s->walk.detected = 0;
            int rc = rd_walk(&s->walk, &v, k.str, k.len, &lists, &nv);
            detected += s->walk.detected;
            if (rc < 0)
                s->oom = true;
            else if (rc > 0)
                record(s, api->view_attr_set(node, k.str, k.len, &nv, SY_ATTR_UPSERT));
            continue;
        }
        process_value(s, node, &k, &v, &detected);
    }
    for (size_t i = 0; i < s->redacted.n; i++)
        if (s->redacted.k[i].p) /* a top-level key (paths inside values have p NULL) */
            record(s, api->view_attr_delete(node, s->redacted.k[i].p, s->redacted.k[i].len));
    add_summaries(s, node, false);
    s->n_detected += (int64_t)detected;
}

/* The collector's processLogBody: a map or array body is walked entry by entry
 * (redactLogBodyRecursive); any other body is read with AsString(), allowed,
 * masked (and, with url_sanitizer.sanitize_log_body, sanitized as a URL when it
 * is a string). */
static void process_body(rd_state_t *s, sy_view_node_t *log)
{
    const sy_host_api_t *api = s->api;
    rd_rules_t *r = &s->rules;
    sy_value_t b;
    if (api->view_get(log, SY_FIELD_BODY, &b) != SY_OK || b.type == SY_VALUE_EMPTY) return;
    clear_lists(s);
    uint64_t detected = 0;
    if (b.type == SY_VALUE_MAP || b.type == SY_VALUE_ARRAY) {
        rd_lists_t lists = node_lists(s);
        sy_value_t nv;
        s->walk.detected = 0;
        int rc = rd_walk(&s->walk, &b, "", 0, &lists, &nv);
        detected = s->walk.detected;
        if (rc < 0)
            s->oom = true;
        else if (rc > 0)
            record(s, api->view_set(log, SY_FIELD_BODY, &nv));
    } else {
        char num[64];
        const char *str;
        size_t len;
        if (as_string(s, &b, num, sizeof(num), &str, &len) < 0) return;
        rd_key_t body = {"body", 4, 0};
        if (rd_regex_any(r, &r->allowed_values, str, len)) {
            keylist_push(s, &s->allowed, body.p, body.len);
        } else {
            const char *out;
            size_t out_len;
            bool url = b.type == SY_VALUE_STRING && s->cfg->url_enabled && s->cfg->url_log_body;
            int rc = mask_string(s, str, len, url, &out, &out_len, &detected);
            if (rc > 0) {
                sy_value_t v = {.type = SY_VALUE_STRING, .str = out, .len = out_len};
                record(s, api->view_set(log, SY_FIELD_BODY, &v));
                keylist_push(s, &s->masked, body.p, body.len);
            }
        }
    }
    s->n_detected += (int64_t)detected;
    add_summaries(s, log, true);
}

/* The URL sanitizer on the name of a client or server span that looks like
 * HTTP (an http.* or url.full attribute, or a '/' in the name), as the
 * collector; a name that would become nothing but stars is kept. */
static const char *const rd_http_keys[] = {
    "http.route",
    "http.request.method",
    "http.request.method_original",
    "http.response.status_code",
    "url.full",
    "http.scheme",
    "http.target",
    "http.method",
    "http.url",
};

static void sanitize_span_name(rd_state_t *s, sy_view_node_t *span)
{
    const sy_host_api_t *api = s->api;
    sy_value_t kind, name, v;
    if (api->view_get(span, SY_FIELD_KIND, &kind) != SY_OK || (kind.i != 2 && kind.i != 3))
        return; /* SPAN_KIND_SERVER, SPAN_KIND_CLIENT */
    if (api->view_get(span, SY_FIELD_NAME, &name) != SY_OK || name.type != SY_VALUE_STRING ||
        name.len == 0)
        return;
    bool http = memchr(name.str, '/', name.len) != NULL;
    for (size_t i = 0; !http && i < sizeof(rd_http_keys) / sizeof(rd_http_keys[0]); i++)
        http = api->view_attr_get(span, rd_http_keys[i], strlen(rd_http_keys[i]), &v) == SY_OK;
    if (!http) return;
    int u = sanitize_url(s, name.str, name.len);
    if (u < 0) s->oom = true;
    if (u <= 0 || rd_url_fully_redacted(s->url.p, s->url.len)) return;
    sy_value_t nv = {.type = SY_VALUE_STRING, .str = s->url.p, .len = s->url.len};
    record(s, api->view_set(span, SY_FIELD_NAME, &nv));
    s->n_url++;
}

static void process_item(rd_state_t *s, sy_view_node_t *item)
{
    const sy_host_api_t *api = s->api;
    process_attrs(s, item);
    switch (api->view_kind(item)) {
    case SY_NODE_SPAN:
        for (size_t e = 0, ne = api->view_count(item, SY_VIEW_EVENTS); e < ne; e++)
            process_attrs(s, api->view_at(item, SY_VIEW_EVENTS, e));
        if (s->cfg->url_enabled && s->cfg->url_span_name) sanitize_span_name(s, item);
        break;
    case SY_NODE_LOG:
        process_body(s, item);
        break;
    default: /* data points: attributes only, as the collector */
        break;
    }
}

/* Adds what the batch counted to the processor's counters. */
static void flush_counts(rd_state_t *s)
{
    sy_metric_t *const m[] = {s->m_redacted, s->m_masked,   s->m_allowed,
                              s->m_ignored,  s->m_detected, s->m_url};
    const int64_t n[] = {s->n_redacted, s->n_masked,   s->n_allowed,
                         s->n_ignored,  s->n_detected, s->n_url};
    for (size_t i = 0; i < sizeof(n) / sizeof(n[0]); i++)
        if (n[i]) s->api->metric_add(m[i], n[i]);
}

static int rd_consume(void *state, sy_batch_t *batch)
{
    rd_state_t *s = state;
    const sy_host_api_t *api = s->api;
    sy_view_t *view = api->view_open(batch);
    if (!view) return SY_ENOMEM; /* the batch is still the caller's */
    s->edits = 0;
    s->oom = false;
    s->n_redacted = s->n_masked = s->n_allowed = s->n_ignored = s->n_detected = s->n_url = 0;
    sy_view_node_t *root = api->view_root(view);
    for (size_t ri = 0, nr = api->view_count(root, SY_VIEW_RESOURCES); ri < nr; ri++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, ri);
        process_attrs(s, res);
        for (size_t si = 0, ns = api->view_count(res, SY_VIEW_SCOPES); si < ns; si++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, si);
            process_attrs(s, sc);
            for (size_t ii = 0, ni = api->view_count(sc, SY_VIEW_ITEMS); ii < ni; ii++)
                process_item(s, api->view_at(sc, SY_VIEW_ITEMS, ii));
        }
    }
    int rc = SY_OK;
    if (s->oom) {
        /* Emitting a batch half redacted, or unredacted, could leak what the
         * processor is there to remove: refuse it instead. */
        SY_LOG(api, s->inst, SY_LOG_ERROR, "out of memory while redacting; batch refused");
        rc = SY_ENOMEM;
    } else if (s->edits > 0) {
        rc = api->view_commit(view);
        if (rc < 0) SY_LOG(api, s->inst, SY_LOG_ERROR, "redaction not applied (%d)", rc);
    }
    api->view_close(view);
    flush_counts(s);
    if (rc < 0) return rc;
    return api->emit(s->inst, batch);
}

/* Whether a db_sanitizer node turns anything on: an `enabled` key that is not
 * false anywhere inside it. */
static bool db_sanitizer_enabled(const sy_host_api_t *api, const sy_cfg_node_t *node)
{
    if (!node) return false;
    int kind = api->cfg_kind(node);
    if (kind == 's') return false;
    if (kind != 'm' && kind != 'l') return false;
    for (size_t i = 0, n = api->cfg_len(node); i < n; i++) {
        const char *key = NULL;
        const sy_cfg_node_t *c = api->cfg_at(node, i, &key);
        if (key && strcmp(key, "enabled") == 0 && api->cfg_kind(c) == 's') {
            const char *v = api->cfg_scalar(c);
            if (v && strcmp(v, "false") != 0) return true;
        } else if (db_sanitizer_enabled(api, c)) {
            return true;
        }
    }
    return false;
}

static int rd_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    if (!SY_API_HAS(api, value_container)) {
        SY_LOG(api, inst, SY_LOG_ERROR, "this host lacks value_container (plugin ABI 1.2)");
        return SY_ENOTSUP;
    }
    rd_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    char err[512];
    if (db_sanitizer_enabled(api, s->cfg->db_sanitizer)) {
        SY_LOG(api, inst, SY_LOG_ERROR,
               "%s: db_sanitizer is not supported: the collector's SQL, Redis, Memcached, MongoDB, "
               "OpenSearch and Elasticsearch obfuscators have no equivalent here; remove the key "
               "or set its 'enabled' flags to false",
               api->cfg_where(s->cfg->db_sanitizer));
        free(s);
        return SY_EINVAL;
    }
    int rc = rd_rules_init(&s->rules, s->cfg, err, sizeof(err));
    if (rc < 0) {
        SY_LOG(api, inst, SY_LOG_ERROR, "%s", err);
        free(s);
        return rc;
    }
    s->m_redacted = api->metric_register(inst, "redaction_attributes_redacted",
                                         "Attributes deleted because their key is not allowed.",
                                         SY_METRIC_COUNTER);
    s->m_masked = api->metric_register(
        inst, "redaction_values_masked",
        "Attribute values and log bodies masked or hashed (blocked_key_patterns, blocked_values, "
        "detectors).",
        SY_METRIC_COUNTER);
    s->m_allowed = api->metric_register(inst, "redaction_values_allowed",
                                        "Attribute values left alone as they match allowed_values.",
                                        SY_METRIC_COUNTER);
    s->m_ignored = api->metric_register(inst, "redaction_attributes_ignored",
                                        "Attributes left alone as their key is in ignored_keys.",
                                        SY_METRIC_COUNTER);
    s->m_detected = api->metric_register(inst, "redaction_detector_matches",
                                         "Ranges masked by the detectors.", SY_METRIC_COUNTER);
    s->m_url = api->metric_register(inst, "redaction_urls_sanitized",
                                    "Attribute values, log bodies and span names changed by the "
                                    "url_sanitizer.",
                                    SY_METRIC_COUNTER);
    s->walk.api = api;
    s->walk.rules = &s->rules;
    *state = s;
    return SY_OK;
}

static void rd_destroy(void *state)
{
    rd_state_t *s = state;
    rd_rules_free(&s->rules);
    free(s->redacted.k);
    free(s->masked.k);
    free(s->allowed.k);
    free(s->merge.k);
    free(s->ignored.k);
    free(s->join.p);
    free(s->url.p);
    rd_walk_free(&s->walk);
    free(s);
}

/* ABI 1.3: the same refusal as create()'s, at `switchyard validate` time, where
 * the raw node can be read. create() keeps its check for hosts before 1.3. */
static int rd_validate2(const sy_host_api_t *api, const sy_cfg_node_t *node, const void *config,
                        char *err, size_t err_len)
{
    (void)node;
    const rd_config_t *c = config;
    if (!db_sanitizer_enabled(api, c->db_sanitizer)) return SY_OK;
    snprintf(err, err_len,
             "%s: db_sanitizer is not supported: the collector's SQL, Redis, Memcached, MongoDB, "
             "OpenSearch and Elasticsearch obfuscators have no equivalent here; remove the key "
             "or set its 'enabled' flags to false",
             api->cfg_where(c->db_sanitizer));
    return SY_EINVAL;
}

static const sy_plugin_t rd_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "redaction",
    .signals = SY_SIGNAL_ALL,
    .flags = SY_PLUGIN_MUTATES_DATA,
    .version = "0.1.0",
    .description = "Deletes attributes not allowed and masks blocked values and detected secrets.",
    .config_fields = rd_fields,
    .config_field_count = sizeof(rd_fields) / sizeof(rd_fields[0]),
    .config_size = sizeof(rd_config_t),
    .validate = rd_validate,
    .validate2 = rd_validate2,
    .create = rd_create,
    .consume = rd_consume,
    .destroy = rd_destroy,
};

SY_PLUGIN_DEFINE(rd_plugin)
