/*
 * prom_config.c - the receiver's `config` block (Prometheus's own configuration
 * format, a subset) read from the raw YAML node, with file:line:col in every
 * error. Used by validate2 (at `switchyard validate` and load) and by create().
 */
#include "prom_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctx_s {
    const sy_host_api_t *api;
    char *err;
    size_t err_len;
} ctx_t;

static int fail(ctx_t *c, const sy_cfg_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(ctx_t *c, const sy_cfg_node_t *at, const char *fmt, ...)
{
    int n = snprintf(c->err, c->err_len, "%s: ", at ? c->api->cfg_where(at) : "config");
    if (n < 0 || (size_t)n >= c->err_len) return SY_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return SY_EINVAL;
}

/* Prometheus durations: [0-9]+(y|w|d|h|m|s|ms) repeated, largest unit first. */
int prom_duration_ms(const char *s, int64_t *out)
{
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"ms", 1},      {"y", 31536000000}, {"w", 604800000}, {"d", 86400000},
                 {"h", 3600000}, {"m", 60000},       {"s", 1000}};
    int64_t total = 0;
    if (!s || !*s) return -1;
    if (!strcmp(s, "0")) {
        *out = 0;
        return 0;
    }
    while (*s) {
        if (!isdigit((unsigned char)*s)) return -1;
        errno = 0;
        char *e;
        long long v = strtoll(s, &e, 10);
        if (errno) return -1;
        s = e;
        size_t i;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].u);
            if (!strncmp(s, units[i].u, ul) && !(ul == 1 && s[0] == 'm' && s[1] == 's')) {
                s += ul;
                break;
            }
        }
        if (i == sizeof(units) / sizeof(units[0])) return -1;
        if (v > INT64_MAX / units[i].ms / 2) return -1;
        total += v * units[i].ms;
    }
    *out = total;
    return 0;
}

/* Sizes as Prometheus's units.Base2Bytes: 1024, 10KB, 1MB, 2GiB... (KB = KiB). */
static int parse_size(const char *s, uint64_t *out)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (e == s || errno) return -1;
    uint64_t mul = 1;
    if (!*e || !strcmp(e, "B"))
        mul = 1;
    else if (!strcmp(e, "KB") || !strcmp(e, "KiB"))
        mul = 1024;
    else if (!strcmp(e, "MB") || !strcmp(e, "MiB"))
        mul = 1024 * 1024;
    else if (!strcmp(e, "GB") || !strcmp(e, "GiB"))
        mul = 1024ull * 1024 * 1024;
    else
        return -1;
    *out = v * mul;
    return 0;
}

static const char *scalar(ctx_t *c, const sy_cfg_node_t *n)
{
    return c->api->cfg_kind(n) == 's' ? c->api->cfg_scalar(n) : NULL;
}

static int get_string(ctx_t *c, const sy_cfg_node_t *n, const char *key, char **out)
{
    const char *s = scalar(c, n);
    if (!s) return fail(c, n, "'%s' must be a string", key);
    free(*out);
    *out = strdup(s);
    return *out ? 0 : SY_ENOMEM;
}

static int get_bool(ctx_t *c, const sy_cfg_node_t *n, const char *key, bool *out)
{
    const char *s = scalar(c, n);
    if (s && !strcmp(s, "true"))
        *out = true;
    else if (s && !strcmp(s, "false"))
        *out = false;
    else
        return fail(c, n, "'%s' must be true or false", key);
    return 0;
}

static int get_duration(ctx_t *c, const sy_cfg_node_t *n, const char *key, int64_t *out)
{
    const char *s = scalar(c, n);
    if (!s || prom_duration_ms(s, out) != 0)
        return fail(c, n, "'%s': not a valid duration string: \"%s\"", key, s ? s : "");
    return 0;
}

static int get_strlist(ctx_t *c, const sy_cfg_node_t *n, const char *key, char ***out,
                       size_t *count)
{
    if (c->api->cfg_kind(n) != 'l') return fail(c, n, "'%s' must be a list of strings", key);
    size_t len = c->api->cfg_len(n);
    char **v = calloc(len ? len : 1, sizeof(*v));
    if (!v) return SY_ENOMEM;
    *out = v;
    for (size_t i = 0; i < len; i++) {
        const sy_cfg_node_t *item = c->api->cfg_at(n, i, NULL);
        const char *s = scalar(c, item);
        if (!s) return fail(c, item, "'%s' must be a list of strings", key);
        if (!(v[i] = strdup(s))) return SY_ENOMEM;
        *count = i + 1;
    }
    return 0;
}

static int parse_relabel(ctx_t *c, const sy_cfg_node_t *n, prom_relabel_t *r)
{
    if (c->api->cfg_kind(n) != 'm') return fail(c, n, "a relabel config must be a map");
    for (size_t i = 0; i < c->api->cfg_len(n); i++) {
        const char *key;
        const sy_cfg_node_t *v = c->api->cfg_at(n, i, &key);
        int rc = 0;
        if (!strcmp(key, "source_labels"))
            rc = get_strlist(c, v, key, &r->source_labels, &r->nsource);
        else if (!strcmp(key, "separator"))
            rc = get_string(c, v, key, &r->separator);
        else if (!strcmp(key, "regex"))
            rc = get_string(c, v, key, &r->regex);
        else if (!strcmp(key, "target_label"))
            rc = get_string(c, v, key, &r->target_label);
        else if (!strcmp(key, "replacement"))
            rc = get_string(c, v, key, &r->replacement);
        else if (!strcmp(key, "action")) {
            const char *s = scalar(c, v);
            int a = s ? prom_relabel_action_parse(s) : -1;
            if (a < 0) {
                if (s && !strcasecmp(s, "hashmod"))
                    return fail(c, v, "relabel action hashmod is not supported by this receiver");
                return fail(c, v, "unknown relabel action \"%s\"", s ? s : "");
            }
            r->action = (prom_relabel_action_t)a;
        } else
            return fail(c, v,
                        "relabel config has an unknown or unsupported key '%s' (known: "
                        "source_labels, separator, regex, target_label, replacement, action)",
                        key);
        if (rc) return rc;
    }
    char why[400];
    if (prom_relabel_compile(r, why, sizeof(why)) != 0) return fail(c, n, "%s", why);
    return 0;
}

/* A static_configs target: host:port, no scheme, no path. */
static bool valid_target(const char *t)
{
    if (!*t || strstr(t, "://") || strchr(t, '/')) return false;
    for (const char *p = t; *p; p++)
        if (isspace((unsigned char)*p)) return false;
    return true;
}

static int add_target(prom_scrape_config_t *sc, const char *addr, prom_label_t *labels, size_t nl)
{
    prom_static_target_t *g = realloc(sc->targets, (sc->ntargets + 1) * sizeof(*g));
    if (!g) return SY_ENOMEM;
    sc->targets = g;
    prom_static_target_t *t = &g[sc->ntargets++];
    memset(t, 0, sizeof(*t));
    t->address = strdup(addr);
    if (!t->address) return SY_ENOMEM;
    t->labels = calloc(nl ? nl : 1, sizeof(*t->labels));
    if (!t->labels) return SY_ENOMEM;
    for (size_t i = 0; i < nl; i++) {
        t->labels[i].name = strdup(labels[i].name);
        t->labels[i].value = strdup(labels[i].value);
        t->nlabels = i + 1;
        if (!t->labels[i].name || !t->labels[i].value) return SY_ENOMEM;
    }
    return 0;
}

static int parse_static(ctx_t *c, const sy_cfg_node_t *n, prom_scrape_config_t *sc)
{
    if (c->api->cfg_kind(n) != 'l') return fail(c, n, "'static_configs' must be a list");
    for (size_t i = 0; i < c->api->cfg_len(n); i++) {
        const sy_cfg_node_t *g = c->api->cfg_at(n, i, NULL);
        if (c->api->cfg_kind(g) != 'm') return fail(c, g, "a static config must be a map");
        const sy_cfg_node_t *targets = c->api->cfg_get(g, "targets");
        const sy_cfg_node_t *labels = c->api->cfg_get(g, "labels");
        for (size_t k = 0; k < c->api->cfg_len(g); k++) {
            const char *key;
            const sy_cfg_node_t *v = c->api->cfg_at(g, k, &key);
            if (strcmp(key, "targets") && strcmp(key, "labels"))
                return fail(c, v, "static config has an unknown key '%s' (known: targets, labels)",
                            key);
        }
        prom_label_t ls[64];
        size_t nl = 0;
        if (labels && c->api->cfg_kind(labels) != 'n') {
            if (c->api->cfg_kind(labels) != 'm') return fail(c, labels, "'labels' must be a map");
            for (size_t k = 0; k < c->api->cfg_len(labels); k++) {
                const char *key;
                const sy_cfg_node_t *v = c->api->cfg_at(labels, k, &key);
                const char *s = scalar(c, v);
                if (!prom_valid_label_name(key, strlen(key)))
                    return fail(c, v, "\"%s\" is not a valid label name", key);
                if (!s) return fail(c, v, "label '%s' must be a string", key);
                if (nl == sizeof(ls) / sizeof(ls[0])) return fail(c, v, "more than 64 labels");
                ls[nl].name = key;
                ls[nl++].value = s;
            }
        }
        if (!targets || c->api->cfg_kind(targets) == 'n') continue;
        if (c->api->cfg_kind(targets) != 'l') return fail(c, targets, "'targets' must be a list");
        for (size_t k = 0; k < c->api->cfg_len(targets); k++) {
            const sy_cfg_node_t *t = c->api->cfg_at(targets, k, NULL);
            const char *s = scalar(c, t);
            if (!s || !valid_target(s))
                return fail(c, t,
                            "\"%s\" is not a valid target: write host:port, without a scheme "
                            "or path (see scheme and metrics_path)",
                            s ? s : "");
            int rc = add_target(sc, s, ls, nl);
            if (rc) return rc;
        }
    }
    return 0;
}

static int parse_params(ctx_t *c, const sy_cfg_node_t *n, prom_scrape_config_t *sc)
{
    if (c->api->cfg_kind(n) != 'm') return fail(c, n, "'params' must be a map of lists");
    for (size_t i = 0; i < c->api->cfg_len(n); i++) {
        const char *key;
        const sy_cfg_node_t *v = c->api->cfg_at(n, i, &key);
        char **vals = NULL;
        size_t nv = 0;
        int rc = get_strlist(c, v, "params", &vals, &nv);
        for (size_t k = 0; rc == 0 && k < nv; k++) {
            char **grown = realloc(sc->params, (sc->nparams + 1) * 2 * sizeof(char *));
            if (!grown) {
                rc = SY_ENOMEM;
                break;
            }
            sc->params = grown;
            sc->params[sc->nparams * 2] = strdup(key);
            sc->params[sc->nparams * 2 + 1] = vals[k];
            vals[k] = NULL;
            sc->nparams++;
            if (!sc->params[sc->nparams * 2 - 2]) rc = SY_ENOMEM;
        }
        for (size_t k = 0; k < nv; k++)
            free(vals[k]);
        free(vals);
        if (rc) return rc;
    }
    return 0;
}

/* Prometheus's TLS version names ("TLS10".."TLS13") as configtls' ("1.0".."1.3"). */
static int get_tls_version(ctx_t *c, const sy_cfg_node_t *n, const char *key, char **out)
{
    static const char *const names[][2] = {
        {"TLS10", "1.0"}, {"TLS11", "1.1"}, {"TLS12", "1.2"}, {"TLS13", "1.3"}};
    const char *s = scalar(c, n);
    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(s, names[i][0])) return (*out = strdup(names[i][1])) ? 0 : SY_ENOMEM;
    return fail(c, n, "tls_config: unknown %s \"%s\" (TLS10, TLS11, TLS12 or TLS13)", key,
                s ? s : "");
}

/* tls_config: the subset that maps onto libcurl's options. */
static int parse_tls(ctx_t *c, const sy_cfg_node_t *n, prom_scrape_config_t *sc)
{
    if (c->api->cfg_kind(n) != 'm') return fail(c, n, "'tls_config' must be a map");
    syc_tls_client_t *t = &sc->tls;
    for (size_t i = 0; i < c->api->cfg_len(n); i++) {
        const char *key;
        const sy_cfg_node_t *v = c->api->cfg_at(n, i, &key);
        int rc;
        if (!strcmp(key, "ca_file"))
            rc = get_string(c, v, key, &t->ca_file);
        else if (!strcmp(key, "cert_file"))
            rc = get_string(c, v, key, &t->cert_file);
        else if (!strcmp(key, "key_file"))
            rc = get_string(c, v, key, &t->key_file);
        else if (!strcmp(key, "insecure_skip_verify"))
            rc = get_bool(c, v, key, &t->insecure_skip_verify);
        else if (!strcmp(key, "min_version"))
            rc = get_tls_version(c, v, key, &t->min_version);
        else if (!strcmp(key, "max_version"))
            rc = get_tls_version(c, v, key, &t->max_version);
        else
            return fail(c, v,
                        "tls_config key '%s' is unknown or not supported by this receiver "
                        "(supported: ca_file, cert_file, key_file, insecure_skip_verify, "
                        "min_version, max_version)",
                        key);
        if (rc) return rc;
    }
    char why[256];
    if (syc_tls_client_check(t, why, sizeof(why)) != 0) return fail(c, n, "tls_config: %s", why);
    if ((t->cert_file && *t->cert_file) != (t->key_file && *t->key_file))
        return fail(c, n, "tls_config: cert_file and key_file go together");
    return 0;
}

static int parse_scrape(ctx_t *c, const sy_cfg_node_t *n, const prom_config_t *cfg,
                        prom_scrape_config_t *sc)
{
    if (c->api->cfg_kind(n) != 'm') return fail(c, n, "a scrape config must be a map");
    sc->interval_ms = cfg->global_interval_ms;
    sc->timeout_ms = cfg->global_timeout_ms;
    sc->honor_timestamps = true;
    const sy_cfg_node_t *timeout_node = NULL, *interval_node = NULL;
    bool timeout_set = false;
    for (size_t i = 0; i < c->api->cfg_len(n); i++) {
        const char *key;
        const sy_cfg_node_t *v = c->api->cfg_at(n, i, &key);
        int rc = 0;
        if (!strcmp(key, "job_name"))
            rc = get_string(c, v, key, &sc->job_name);
        else if (!strcmp(key, "scrape_interval")) {
            rc = get_duration(c, v, key, &sc->interval_ms);
            interval_node = v;
        } else if (!strcmp(key, "scrape_timeout")) {
            rc = get_duration(c, v, key, &sc->timeout_ms);
            timeout_node = v;
            timeout_set = true;
        } else if (!strcmp(key, "metrics_path"))
            rc = get_string(c, v, key, &sc->metrics_path);
        else if (!strcmp(key, "scheme")) {
            rc = get_string(c, v, key, &sc->scheme);
            if (!rc && strcmp(sc->scheme, "http") && strcmp(sc->scheme, "https"))
                return fail(c, v, "unknown scheme \"%s\" (http or https)", sc->scheme);
        } else if (!strcmp(key, "params"))
            rc = parse_params(c, v, sc);
        else if (!strcmp(key, "honor_labels"))
            rc = get_bool(c, v, key, &sc->honor_labels);
        else if (!strcmp(key, "honor_timestamps"))
            rc = get_bool(c, v, key, &sc->honor_timestamps);
        else if (!strcmp(key, "sample_limit")) {
            const char *s = scalar(c, v);
            char *e = NULL;
            long long l = s ? strtoll(s, &e, 10) : -1;
            if (!s || *e || l < 0) return fail(c, v, "'sample_limit' must be a number >= 0");
            sc->sample_limit = (uint64_t)l;
        } else if (!strcmp(key, "body_size_limit")) {
            const char *s = scalar(c, v);
            if (!s || parse_size(s, &sc->body_size_limit) != 0)
                return fail(c, v, "'body_size_limit' must be a size (1024, 10MB, 1GiB)");
        } else if (!strcmp(key, "static_configs"))
            rc = parse_static(c, v, sc);
        else if (!strcmp(key, "tls_config"))
            rc = parse_tls(c, v, sc);
        else if (!strcmp(key, "metric_relabel_configs")) {
            if (c->api->cfg_kind(v) != 'l') return fail(c, v, "'%s' must be a list", key);
            size_t len = c->api->cfg_len(v);
            sc->rules = calloc(len ? len : 1, sizeof(*sc->rules));
            if (!sc->rules) return SY_ENOMEM;
            for (size_t k = 0; k < len && !rc; k++) {
                sc->nrules = k + 1;
                rc = parse_relabel(c, c->api->cfg_at(v, k, NULL), &sc->rules[k]);
            }
        } else
            return fail(c, v,
                        "scrape config key '%s' is unknown or not supported by this receiver "
                        "(supported: job_name, scrape_interval, scrape_timeout, metrics_path, "
                        "scheme, params, honor_labels, honor_timestamps, sample_limit, "
                        "body_size_limit, static_configs, metric_relabel_configs, tls_config)",
                        key);
        if (rc) return rc;
    }
    if (!sc->job_name || !*sc->job_name) return fail(c, n, "a scrape config needs a job_name");
    if (!sc->metrics_path && !(sc->metrics_path = strdup("/metrics"))) return SY_ENOMEM;
    if (sc->metrics_path[0] != '/')
        return fail(c, n, "metrics_path \"%s\" must start with '/'", sc->metrics_path);
    if (!sc->scheme && !(sc->scheme = strdup("http"))) return SY_ENOMEM;
    if (sc->interval_ms <= 0)
        return fail(c, interval_node ? interval_node : n, "scrape_interval must be above 0");
    /* Prometheus: a timeout longer than the interval is refused when set on the
     * job, and lowered to the interval when it comes from the global default. */
    if (sc->timeout_ms > sc->interval_ms) {
        if (timeout_set)
            return fail(c, timeout_node,
                        "scrape timeout greater than scrape interval for scrape config with job "
                        "name \"%s\"",
                        sc->job_name);
        sc->timeout_ms = sc->interval_ms;
    }
    if (sc->timeout_ms <= 0)
        return fail(c, timeout_node ? timeout_node : n, "scrape_timeout must be above 0");
    return 0;
}

int prom_config_parse(const sy_host_api_t *api, const sy_cfg_node_t *node, prom_config_t *cfg,
                      char *err, size_t err_len)
{
    ctx_t c = {api, err, err_len};
    memset(cfg, 0, sizeof(*cfg));
    cfg->global_interval_ms = 60000;
    cfg->global_timeout_ms = 10000;
    if (!node || api->cfg_kind(node) == 'n')
        return fail(&c, node,
                    "'config' is required: a Prometheus configuration with scrape_configs");
    if (api->cfg_kind(node) != 'm') return fail(&c, node, "'config' must be a map");
    const sy_cfg_node_t *global = api->cfg_get(node, "global");
    if (global && api->cfg_kind(global) != 'n') {
        if (api->cfg_kind(global) != 'm') return fail(&c, global, "'global' must be a map");
        for (size_t i = 0; i < api->cfg_len(global); i++) {
            const char *key;
            const sy_cfg_node_t *v = api->cfg_at(global, i, &key);
            int rc;
            if (!strcmp(key, "scrape_interval"))
                rc = get_duration(&c, v, key, &cfg->global_interval_ms);
            else if (!strcmp(key, "scrape_timeout"))
                rc = get_duration(&c, v, key, &cfg->global_timeout_ms);
            else
                return fail(&c, v,
                            "global key '%s' is unknown or not supported by this receiver "
                            "(supported: scrape_interval, scrape_timeout)",
                            key);
            if (rc) return rc;
        }
    }
    const sy_cfg_node_t *scs = NULL;
    for (size_t i = 0; i < api->cfg_len(node); i++) {
        const char *key;
        const sy_cfg_node_t *v = api->cfg_at(node, i, &key);
        if (!strcmp(key, "scrape_configs"))
            scs = v;
        else if (!strcmp(key, "remote_write") || !strcmp(key, "rule_files") ||
                 !strcmp(key, "remote_read") || !strcmp(key, "alerting"))
            return fail(&c, v, "unsupported features: %s (the prometheus receiver only scrapes)",
                        key);
        else if (strcmp(key, "global"))
            return fail(&c, v,
                        "config key '%s' is unknown or not supported by this receiver "
                        "(supported: global, scrape_configs)",
                        key);
    }
    if (!scs || api->cfg_kind(scs) != 'l' || api->cfg_len(scs) == 0)
        return fail(&c, scs ? scs : node,
                    "no scrape_configs: at least one scrape config is needed");
    size_t n = api->cfg_len(scs);
    cfg->scrapes = calloc(n, sizeof(*cfg->scrapes));
    if (!cfg->scrapes) return SY_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const sy_cfg_node_t *sn = api->cfg_at(scs, i, NULL);
        cfg->nscrapes = i + 1;
        int rc = parse_scrape(&c, sn, cfg, &cfg->scrapes[i]);
        if (rc) return rc;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(cfg->scrapes[k].job_name, cfg->scrapes[i].job_name))
                return fail(&c, sn, "found multiple scrape configs with job name \"%s\"",
                            cfg->scrapes[i].job_name);
    }
    return 0;
}

void prom_config_free(prom_config_t *cfg)
{
    for (size_t i = 0; i < cfg->nscrapes; i++) {
        prom_scrape_config_t *sc = &cfg->scrapes[i];
        free(sc->job_name);
        free(sc->metrics_path);
        free(sc->scheme);
        for (size_t k = 0; k < sc->nparams * 2; k++)
            free(sc->params[k]);
        free(sc->params);
        for (size_t k = 0; k < sc->nrules; k++)
            prom_relabel_free(&sc->rules[k]);
        free(sc->rules);
        for (size_t k = 0; k < sc->ntargets; k++) {
            prom_static_target_t *t = &sc->targets[k];
            free(t->address);
            for (size_t l = 0; l < t->nlabels; l++) {
                free((char *)t->labels[l].name);
                free((char *)t->labels[l].value);
            }
            free(t->labels);
        }
        free(sc->targets);
        free(sc->tls.ca_file);
        free(sc->tls.cert_file);
        free(sc->tls.key_file);
        free(sc->tls.min_version);
        free(sc->tls.max_version);
    }
    free(cfg->scrapes);
    memset(cfg, 0, sizeof(*cfg));
}
