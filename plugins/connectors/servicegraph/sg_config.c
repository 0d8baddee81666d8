/*
 * sg_config.c - the settings the host's field table cannot type:
 * latency_histogram_buckets (a list of Go durations) and
 * virtual_node_peer_attributes (a list whose absence and emptiness differ), read
 * from their raw YAML nodes into the engine's options.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sg_config.h"

static const double default_bounds[] = {0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2,
                                        0.4,   0.8,   1,     1.4,   2,    5,    10,  15};
static const char *const default_peers[] = {"peer.service", "db.name", "db.system"};
static const char *const default_db[] = {"db.name"};

/* Go's time.ParseDuration, in seconds: "1.5s", "100ms", "1m30s", "-2us", "0". */
int sg_parse_duration(const char *s, double *seconds)
{
    static const struct {
        const char *unit;
        double scale;
    } units[] = {{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"\xce\xbcs", 1e-6},
                 {"ms", 1e-3}, {"s", 1},     {"m", 60},           {"h", 3600}};
    const char *p = s;
    double sign = 1, total = 0;
    if (*p == '-' || *p == '+') sign = *p++ == '-' ? -1 : 1;
    if (!strcmp(p, "0")) {
        *seconds = 0;
        return 0;
    }
    if (!*p) return -1;
    while (*p) {
        const char *start = p;
        double v = 0, frac = 0, scale = 1;
        while (*p >= '0' && *p <= '9')
            v = v * 10 + (*p++ - '0');
        bool digits = p > start;
        if (*p == '.') {
            p++;
            const char *fs = p;
            while (*p >= '0' && *p <= '9') {
                scale /= 10;
                frac += (*p++ - '0') * scale;
            }
            digits = digits || p > fs;
        }
        if (!digits) return -1;
        size_t i, n = sizeof(units) / sizeof(units[0]);
        for (i = 0; i < n; i++) {
            size_t ul = strlen(units[i].unit);
            /* "m" must not take the "m" of "ms". */
            if (!strncmp(p, units[i].unit, ul) && !(ul == 1 && p[0] == 'm' && p[1] == 's')) {
                p += ul;
                break;
            }
        }
        if (i == n) return -1;
        total += (v + frac) * units[i].scale;
    }
    *seconds = sign * total;
    return 0;
}

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

int sg_settings_load(sg_settings_t *st, const sy_host_api_t *api, const sg_config_t *c, char *err,
                     size_t err_len)
{
    memset(st, 0, sizeof(*st));
    /* latency_histogram_buckets: absent -> the collector's defaults (seconds). */
    if (!c->latency_buckets || api->cfg_kind(c->latency_buckets) == 'n') {
        st->nbounds = sizeof(default_bounds) / sizeof(default_bounds[0]);
        st->bounds = malloc(sizeof(default_bounds));
        if (!st->bounds) goto oom;
        memcpy(st->bounds, default_bounds, sizeof(default_bounds));
    } else {
        const sy_cfg_node_t *l = c->latency_buckets;
        if (api->cfg_kind(l) != 'l') {
            snprintf(err, err_len,
                     "%s: latency_histogram_buckets: expected a list of durations (1ms, 0.5s)",
                     api->cfg_where(l));
            return SY_EINVAL;
        }
        st->nbounds = api->cfg_len(l);
        st->bounds = calloc(st->nbounds ? st->nbounds : 1, sizeof(double));
        if (!st->bounds) goto oom;
        for (size_t i = 0; i < st->nbounds; i++) {
            const sy_cfg_node_t *it = api->cfg_at(l, i, NULL);
            const char *txt = api->cfg_kind(it) == 's' ? api->cfg_scalar(it) : NULL;
            char *end = NULL;
            double d;
            /* A bare integer is nanoseconds, as mapstructure decodes a time.Duration. */
            long long ns = txt ? strtoll(txt, &end, 10) : 0;
            if (txt && *txt && end && !*end)
                d = (double)ns / 1e9;
            else if (!txt || sg_parse_duration(txt, &d) < 0) {
                snprintf(err, err_len,
                         "%s: latency_histogram_buckets[%zu]: expected a duration such as 5ms "
                         "or 1.5s, got %s",
                         api->cfg_where(it), i, txt ? txt : "a list or map");
                return SY_EINVAL;
            }
            if (i && d <= st->bounds[i - 1]) {
                snprintf(err, err_len,
                         "%s: latency_histogram_buckets must be in increasing order (%s is not "
                         "above the bucket before it)",
                         api->cfg_where(it), txt);
                return SY_EINVAL;
            }
            st->bounds[i] = d;
        }
    }
    /* virtual_node_peer_attributes: absent -> the defaults; [] -> no virtual nodes. */
    const sy_cfg_node_t *pl = c->peer_attrs;
    bool peers_given = pl && api->cfg_kind(pl) != 'n';
    if (peers_given && api->cfg_kind(pl) != 'l') {
        snprintf(err, err_len, "%s: virtual_node_peer_attributes: expected a list of strings",
                 api->cfg_where(pl));
        return SY_EINVAL;
    }
    st->npeer = peers_given ? api->cfg_len(pl) : sizeof(default_peers) / sizeof(default_peers[0]);
    st->peers = calloc(st->npeer ? st->npeer : 1, sizeof(char *));
    if (!st->peers) goto oom;
    for (size_t i = 0; i < st->npeer; i++) {
        const char *txt = default_peers[i < 3 ? i : 0];
        if (peers_given) {
            const sy_cfg_node_t *it = api->cfg_at(pl, i, NULL);
            if (api->cfg_kind(it) != 's') {
                snprintf(err, err_len, "%s: virtual_node_peer_attributes[%zu]: expected a string",
                         api->cfg_where(it), i);
                return SY_EINVAL;
            }
            txt = api->cfg_scalar(it);
        }
        if (!(st->peers[i] = dup_str(txt))) goto oom;
    }
    /* database_name_attributes, or the deprecated database_name_attribute, or db.name. */
    const char *const *db = default_db;
    size_t ndb = 1;
    if (c->db_attrs.count) {
        db = (const char *const *)c->db_attrs.items;
        ndb = c->db_attrs.count;
    } else if (c->db_attr && *c->db_attr) {
        db = (const char *const *)&c->db_attr;
    }
    st->ndb = ndb;
    st->db = calloc(ndb, sizeof(char *));
    if (!st->db) goto oom;
    for (size_t i = 0; i < ndb; i++)
        if (!(st->db[i] = dup_str(db[i]))) goto oom;
    return SY_OK;
oom:
    snprintf(err, err_len, "out of memory");
    return SY_ENOMEM;
}

void sg_settings_free(sg_settings_t *st)
{
    for (size_t i = 0; st->peers && i < st->npeer; i++)
        free(st->peers[i]);
    for (size_t i = 0; st->db && i < st->ndb; i++)
        free(st->db[i]);
    free(st->peers);
    free(st->db);
    free(st->bounds);
    memset(st, 0, sizeof(*st));
}

void sg_settings_opts(const sg_settings_t *st, const sg_config_t *c, sg_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->bounds = st->bounds;
    o->nbounds = st->nbounds;
    o->dims = (const char *const *)c->dimensions.items;
    o->ndims = c->dimensions.count;
    o->peer_attrs = (const char *const *)st->peers;
    o->npeer = st->npeer;
    o->db_attrs = (const char *const *)st->db;
    o->ndb = st->ndb;
    o->virtual_node_extra_label = c->virtual_node_extra_label;
    o->ttl_ns = c->store_ttl;
    o->max_items = c->store_max_items > 0 ? (uint64_t)c->store_max_items : 0;
    o->series_ttl_ns = 15LL * 60 * 1000000000;
}
