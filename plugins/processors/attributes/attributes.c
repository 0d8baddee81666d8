/*
 * attributes.c - the `attributes` processor: the collector's attribute actions
 * on span, log record and data point attributes, with include/exclude, through
 * the view only (no protobuf-c).
 *
 * One view per batch and one commit, only when an action changed something; a
 * batch with nothing to change is emitted as it came.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "attr_actions.h"

typedef struct attr_config_s {
    const sy_cfg_node_t *actions;
    const sy_cfg_node_t *include;
    const sy_cfg_node_t *exclude;
} attr_config_t;

/* One string to match: the text itself (strict) or its regex (regexp). */
typedef struct pat_s {
    char *text;
    pcre2_code *re;
    pcre2_match_data *md;
} pat_t;

typedef struct patlist_s {
    pat_t *v;
    size_t n;
} patlist_t;

/* An attribute to match: key, and value (strict: typed equality; regexp: a
 * regex on a string value) when given. */
typedef struct kvmatch_s {
    char *key;
    bool has_value;
    sy_value_t value;
    char *value_text;
    pat_t re;
} kvmatch_t;

typedef struct kvlist_s {
    kvmatch_t *v;
    size_t n;
} kvlist_t;

/* The collector's MatchProperties: every property given must match. */
typedef struct match_s {
    bool set, regexp;
    patlist_t services, span_names, log_bodies, log_severity_texts, metric_names;
    kvlist_t attributes, resources;
} match_t;

typedef struct attr_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    syc_attr_actions_t *actions;
    match_t include, exclude;
    sy_metric_t *m_commit_failed;
} attr_state_t;

static const sy_config_field_t attr_fields[] = {
    {.name = "actions",
     .type = SY_CFG_RAW,
     .offset = offsetof(attr_config_t, actions),
     .required = true,
     .description = "The actions, applied in order: each has key or pattern, action, and "
                    "value / from_attribute / converted_type as the action needs."},
    {.name = "include",
     .type = SY_CFG_RAW,
     .offset = offsetof(attr_config_t, include),
     .description = "Only items matching these properties are changed."},
    {.name = "exclude",
     .type = SY_CFG_RAW,
     .offset = offsetof(attr_config_t, exclude),
     .description = "Items matching these properties are left alone."},
};

/* --- include / exclude --------------------------------------------------------- */

static void pat_free(pat_t *p)
{
    free(p->text);
    pcre2_match_data_free(p->md);
    pcre2_code_free(p->re);
}

static void match_free(match_t *m)
{
    patlist_t *lists[] = {&m->services, &m->span_names, &m->log_bodies, &m->log_severity_texts,
                          &m->metric_names};
    for (size_t l = 0; l < 5; l++) {
        for (size_t i = 0; i < lists[l]->n; i++)
            pat_free(&lists[l]->v[i]);
        free(lists[l]->v);
    }
    kvlist_t *kvs[] = {&m->attributes, &m->resources};
    for (size_t l = 0; l < 2; l++) {
        for (size_t i = 0; i < kvs[l]->n; i++) {
            free(kvs[l]->v[i].key);
            free(kvs[l]->v[i].value_text);
            pat_free(&kvs[l]->v[i].re);
        }
        free(kvs[l]->v);
    }
}

static int pat_init(const sy_host_api_t *api, const sy_cfg_node_t *at, const char *text,
                    bool regexp, pat_t *p, char *err, size_t err_len)
{
    if (!(p->text = strdup(text))) return SY_ENOMEM;
    if (!regexp) return SY_OK;
    int ec;
    PCRE2_SIZE off;
    p->re = pcre2_compile((PCRE2_SPTR)text, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    if (!p->re) {
        char msg[200];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(err, err_len, "%s: error parsing regexp \"%s\": %s", api->cfg_where(at), text,
                 msg);
        return SY_EINVAL;
    }
    if (!(p->md = pcre2_match_data_create_from_pattern(p->re, NULL))) return SY_ENOMEM;
    return SY_OK;
}

static bool pat_matches(const pat_t *p, const char *s, size_t len)
{
    if (!p->re) return strlen(p->text) == len && !memcmp(p->text, s, len);
    return pcre2_match(p->re, (PCRE2_SPTR)s, len, 0, 0, p->md, NULL) >= 0;
}

static bool patlist_any(const patlist_t *l, const char *s, size_t len)
{
    for (size_t i = 0; i < l->n; i++)
        if (pat_matches(&l->v[i], s, len)) return true;
    return false;
}

static int parse_strlist(const sy_host_api_t *api, const sy_cfg_node_t *n, bool regexp,
                         patlist_t *out, char *err, size_t err_len)
{
    if (api->cfg_kind(n) != 'l') {
        snprintf(err, err_len, "%s: expected a list of strings", api->cfg_where(n));
        return SY_EINVAL;
    }
    if (!(out->v = calloc(api->cfg_len(n) + 1, sizeof(pat_t)))) return SY_ENOMEM;
    for (size_t i = 0; i < api->cfg_len(n); i++) {
        const sy_cfg_node_t *s = api->cfg_at(n, i, NULL);
        if (api->cfg_kind(s) != 's') {
            snprintf(err, err_len, "%s: expected a string", api->cfg_where(s));
            return SY_EINVAL;
        }
        out->n = i + 1;
        int rc = pat_init(api, s, api->cfg_scalar(s), regexp, &out->v[i], err, err_len);
        if (rc < 0) return rc;
    }
    return SY_OK;
}

static int parse_kvlist(const sy_host_api_t *api, const sy_cfg_node_t *n, bool regexp,
                        kvlist_t *out, char *err, size_t err_len)
{
    if (api->cfg_kind(n) != 'l') {
        snprintf(err, err_len, "%s: expected a list of {key, value}", api->cfg_where(n));
        return SY_EINVAL;
    }
    if (!(out->v = calloc(api->cfg_len(n) + 1, sizeof(kvmatch_t)))) return SY_ENOMEM;
    for (size_t i = 0; i < api->cfg_len(n); i++) {
        const sy_cfg_node_t *m = api->cfg_at(n, i, NULL);
        kvmatch_t *kv = &out->v[i];
        out->n = i + 1;
        const sy_cfg_node_t *k = api->cfg_kind(m) == 'm' ? api->cfg_get(m, "key") : NULL;
        if (!k || api->cfg_kind(k) != 's' || !*api->cfg_scalar(k)) {
            snprintf(err, err_len, "%s: error creating processor. Attribute key is required",
                     api->cfg_where(m));
            return SY_EINVAL;
        }
        for (size_t j = 0; j < api->cfg_len(m); j++) {
            const char *name = NULL;
            const sy_cfg_node_t *x = api->cfg_at(m, j, &name);
            if (!name || (strcmp(name, "key") && strcmp(name, "value"))) {
                snprintf(err, err_len, "%s: has invalid keys: %s", api->cfg_where(x),
                         name ? name : "?");
                return SY_EINVAL;
            }
        }
        if (!(kv->key = strdup(api->cfg_scalar(k)))) return SY_ENOMEM;
        const sy_cfg_node_t *v = api->cfg_get(m, "value");
        if (!v || api->cfg_kind(v) == 'n') continue;
        if (api->cfg_kind(v) != 's') {
            snprintf(err, err_len, "%s: attribute value must be a scalar", api->cfg_where(v));
            return SY_EINVAL;
        }
        kv->has_value = true;
        if (!(kv->value_text = strdup(api->cfg_scalar(v)))) return SY_ENOMEM;
        syc_attr_value_from_cfg(api, v, kv->value_text, &kv->value);
        if (regexp) {
            if (kv->value.type != SY_VALUE_STRING) {
                snprintf(err, err_len,
                         "%s: error creating processor. %s=%s for \"regexp\" match_type must be "
                         "a string",
                         api->cfg_where(v), kv->key, kv->value_text);
                return SY_EINVAL;
            }
            int rc = pat_init(api, v, kv->value_text, true, &kv->re, err, err_len);
            if (rc < 0) return rc;
        }
    }
    return SY_OK;
}

/* Which properties each signal can match on, as the collector's filterspan,
 * filterlog and filtermetric accept them. */
static int check_signals(const match_t *m, uint32_t signals, const sy_host_api_t *api,
                         const sy_cfg_node_t *at, char *err, size_t err_len)
{
    const char *bad = NULL;
    if ((signals & SY_SIGNAL_TRACES) &&
        (m->log_bodies.n || m->log_severity_texts.n || m->metric_names.n))
        bad = m->metric_names.n ? "metric_names should not be specified for trace spans"
                                : "log_bodies and log_severity_texts should not be specified "
                                  "for trace spans";
    else if ((signals & SY_SIGNAL_LOGS) && (m->services.n || m->span_names.n))
        bad = "neither services nor span_names should be specified for log records";
    else if ((signals & SY_SIGNAL_LOGS) && m->metric_names.n)
        bad = "metric_names should not be specified for log records";
    else if ((signals & SY_SIGNAL_METRICS) &&
             (m->services.n || m->span_names.n || m->log_bodies.n || m->log_severity_texts.n ||
              m->attributes.n))
        bad = "only metric_names and resources can be specified for metrics";
    if (!bad) return SY_OK;
    snprintf(err, err_len, "%s: %s", api->cfg_where(at), bad);
    return SY_EINVAL;
}

static int parse_match(const sy_host_api_t *api, const sy_cfg_node_t *n, match_t *m, char *err,
                       size_t err_len)
{
    if (!n || api->cfg_kind(n) == 'n') return SY_OK;
    if (api->cfg_kind(n) != 'm') {
        snprintf(err, err_len, "%s: expected a map", api->cfg_where(n));
        return SY_EINVAL;
    }
    m->set = true;
    const sy_cfg_node_t *mt = api->cfg_get(n, "match_type");
    const char *type = mt && api->cfg_kind(mt) == 's' ? api->cfg_scalar(mt) : "";
    if (strcmp(type, "strict") && strcmp(type, "regexp")) {
        snprintf(err, err_len,
                 "%s: unrecognized match_type: '%s', valid types are: [regexp strict]",
                 api->cfg_where(mt ? mt : n), type);
        return SY_EINVAL;
    }
    m->regexp = !strcmp(type, "regexp");
    struct {
        const char *name;
        patlist_t *list;
    } lists[] = {{"services", &m->services},
                 {"span_names", &m->span_names},
                 {"log_bodies", &m->log_bodies},
                 {"log_severity_texts", &m->log_severity_texts},
                 {"metric_names", &m->metric_names}};
    size_t props = 0;
    for (size_t i = 0; i < api->cfg_len(n); i++) {
        const char *key = NULL;
        const sy_cfg_node_t *v = api->cfg_at(n, i, &key);
        int rc = SY_EINVAL;
        bool known = false;
        if (!key) continue;
        if (!strcmp(key, "match_type")) continue;
        for (size_t l = 0; l < 5; l++)
            if (!strcmp(key, lists[l].name)) {
                known = true;
                rc = parse_strlist(api, v, m->regexp, lists[l].list, err, err_len);
            }
        if (!strcmp(key, "attributes") || !strcmp(key, "resources")) {
            known = true;
            rc = parse_kvlist(api, v, m->regexp,
                              !strcmp(key, "attributes") ? &m->attributes : &m->resources, err,
                              err_len);
        }
        if (!known) {
            snprintf(err, err_len,
                     "%s: has invalid keys: %s (supported: match_type, services, span_names, "
                     "attributes, resources, log_bodies, log_severity_texts, metric_names)",
                     api->cfg_where(v), key);
            return SY_EINVAL;
        }
        if (rc < 0) return rc;
        props++;
    }
    if (props == 0) {
        snprintf(err, err_len,
                 "%s: at least one of \"services\", \"span_names\", \"attributes\", "
                 "\"resources\", \"log_bodies\", \"log_severity_texts\" or \"metric_names\" "
                 "must be specified",
                 api->cfg_where(n));
        return SY_EINVAL;
    }
    return SY_OK;
}

/* Every listed attribute is present on the node (and its value matches). */
static bool kv_all(const sy_host_api_t *api, const kvlist_t *l, sy_view_node_t *node)
{
    for (size_t i = 0; i < l->n; i++) {
        const kvmatch_t *kv = &l->v[i];
        sy_value_t v;
        if (api->view_attr_get(node, kv->key, strlen(kv->key), &v) < 0) return false;
        if (!kv->has_value) continue;
        if (kv->re.re) {
            if (v.type != SY_VALUE_STRING || !pat_matches(&kv->re, v.str, v.len)) return false;
        } else if (!syc_attr_value_equal(&kv->value, &v)) {
            return false;
        }
    }
    return true;
}

static bool field_any(const sy_host_api_t *api, const patlist_t *l, sy_view_node_t *node,
                      sy_field_t field)
{
    sy_value_t v;
    if (api->view_get(node, field, &v) < 0 || v.type != SY_VALUE_STRING) return false;
    return patlist_any(l, v.str, v.len);
}

static bool match_item(const sy_host_api_t *api, const match_t *m, sy_view_node_t *res,
                       sy_view_node_t *item)
{
    if (m->services.n) {
        sy_value_t v;
        if (api->view_attr_get(res, "service.name", 12, &v) < 0 || v.type != SY_VALUE_STRING ||
            !patlist_any(&m->services, v.str, v.len))
            return false;
    }
    if (m->span_names.n && !field_any(api, &m->span_names, item, SY_FIELD_NAME)) return false;
    if (m->log_bodies.n && !field_any(api, &m->log_bodies, item, SY_FIELD_BODY)) return false;
    if (m->log_severity_texts.n &&
        !field_any(api, &m->log_severity_texts, item, SY_FIELD_SEVERITY_TEXT))
        return false;
    if (m->metric_names.n && !field_any(api, &m->metric_names, item, SY_FIELD_METRIC_NAME))
        return false;
    if (m->attributes.n && !kv_all(api, &m->attributes, item)) return false;
    if (m->resources.n && !kv_all(api, &m->resources, res)) return false;
    return true;
}

/* --- the processor ------------------------------------------------------------- */

static void attr_destroy(void *state)
{
    attr_state_t *s = state;
    if (!s) return;
    syc_attr_actions_free(s->actions);
    match_free(&s->include);
    match_free(&s->exclude);
    free(s);
}

static int attr_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    const attr_config_t *c = config;
    if (!SY_API_HAS(api, view_build_abort)) return SY_ENOTSUP; /* host older than 1.1 */
    attr_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    char err[512] = "";
    int rc = SY_EINVAL;
    if (!(s->actions = syc_attr_actions_parse(api, c->actions, "actions", err, sizeof(err))))
        goto fail;
    uint32_t signals = api->signals(inst);
    if ((rc = parse_match(api, c->include, &s->include, err, sizeof(err))) < 0) goto fail;
    if (s->include.set &&
        (rc = check_signals(&s->include, signals, api, c->include, err, sizeof(err))) < 0)
        goto fail;
    if ((rc = parse_match(api, c->exclude, &s->exclude, err, sizeof(err))) < 0) goto fail;
    if (s->exclude.set &&
        (rc = check_signals(&s->exclude, signals, api, c->exclude, err, sizeof(err))) < 0)
        goto fail;
    s->m_commit_failed = api->metric_register(
        inst, "processor_attributes_commit_failed",
        "Batches passed on unchanged because their edits could not be applied.", SY_METRIC_COUNTER);
    *state = s;
    return SY_OK;
fail:
    if (err[0]) api->log(inst, SY_LOG_ERROR, "%s", err);
    attr_destroy(s);
    return rc < 0 ? rc : SY_EINVAL;
}

static int attr_consume(void *state, sy_batch_t *batch)
{
    attr_state_t *s = state;
    const sy_host_api_t *api = s->api;
    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM; /* the batch is still the caller's */
    sy_view_node_t *root = api->view_root(v);
    int edits = 0, rc = SY_OK;
    size_t nres = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < nres && rc >= 0; r++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
        size_t nsc = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t c = 0; c < nsc && rc >= 0; c++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, c);
            size_t n = api->view_count(sc, SY_VIEW_ITEMS);
            for (size_t i = 0; i < n && rc >= 0; i++) {
                sy_view_node_t *item = api->view_at(sc, SY_VIEW_ITEMS, i);
                if (s->include.set && !match_item(api, &s->include, res, item)) continue;
                if (s->exclude.set && match_item(api, &s->exclude, res, item)) continue;
                rc = syc_attr_actions_apply(s->actions, api, item);
                if (rc > 0) edits += rc;
            }
        }
    }
    if (rc >= 0 && edits > 0) rc = api->view_commit(v);
    api->view_close(v);
    if (rc < 0) {
        SY_LOG(api, s->inst, SY_LOG_WARN, "attribute actions not applied to a batch (error %d)",
               rc);
        api->metric_add(s->m_commit_failed, 1);
    }
    /* emit()'s ownership rule is consume()'s: on an error the batch goes back to
     * the host with it (released here, it would be lost uncounted). */
    return api->emit(s->inst, batch);
}

static const sy_plugin_t attr_descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "attributes",
    .signals = SY_SIGNAL_TRACES | SY_SIGNAL_METRICS | SY_SIGNAL_LOGS,
    .flags = SY_PLUGIN_MUTATES_DATA,
    .version = "1.0",
    .description = "Inserts, updates, deletes, hashes, extracts and converts attributes of "
                   "spans, log records and data points.",
    .config_fields = attr_fields,
    .config_field_count = sizeof(attr_fields) / sizeof(attr_fields[0]),
    .config_size = sizeof(attr_config_t),
    .create = attr_create,
    .consume = attr_consume,
    .destroy = attr_destroy,
};
SY_PLUGIN_DEFINE(attr_descriptor)
