/*
 * routing_config.c - the routing connector's configuration: the `table` list and
 * `default_pipelines` read from their YAML nodes into a routing table, every
 * error pointing at the node at fault (file:line:col), and the check that each
 * pipeline named is one the connector feeds.
 */
#include "routing_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reads a list of pipeline ids (strings) into a new array of n pointers into the
 * config; SY_EINVAL with err for anything else. */
static int read_ids(const sy_host_api_t *api, const sy_cfg_node_t *node, const char *what,
                    const char ***out, size_t *n, char *err, size_t err_len)
{
    *out = NULL;
    *n = 0;
    if (!node || api->cfg_kind(node) == 'n') return 0;
    if (api->cfg_kind(node) != 'l') {
        snprintf(err, err_len, "%s: %s: must be a list of pipeline ids", api->cfg_where(node),
                 what);
        return SY_EINVAL;
    }
    size_t len = api->cfg_len(node);
    if (len == 0) return 0;
    const char **ids = calloc(len, sizeof *ids);
    if (!ids) return SY_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        const sy_cfg_node_t *el = api->cfg_at(node, i, NULL);
        if (api->cfg_kind(el) != 's' || !api->cfg_scalar(el)[0]) {
            snprintf(err, err_len, "%s: %s[%zu]: must be a pipeline id such as traces/name",
                     api->cfg_where(el), what, i);
            free(ids);
            return SY_EINVAL;
        }
        ids[i] = api->cfg_scalar(el);
    }
    *out = ids;
    *n = len;
    return 0;
}

/* The scalar of an optional string key of a route; SY_EINVAL when it is not one. */
static int read_string(const sy_host_api_t *api, const sy_cfg_node_t *v, const char *what,
                       const char *key, const char **out, char *err, size_t err_len)
{
    *out = NULL;
    if (!v || api->cfg_kind(v) == 'n') return 0;
    if (api->cfg_kind(v) != 's') {
        snprintf(err, err_len, "%s: %s.%s: must be a string", api->cfg_where(v), what, key);
        return SY_EINVAL;
    }
    *out = api->cfg_scalar(v);
    return 0;
}

/* One element of `table`, added to t. */
static int load_route(const sy_host_api_t *api, sy_instance_t *inst, const sy_cfg_node_t *el,
                      const char *what, rt_table_t *t, char *err, size_t err_len)
{
    if (api->cfg_kind(el) != 'm') {
        snprintf(err, err_len,
                 "%s: %s: must be a map with statement or condition, pipelines and an optional "
                 "context",
                 api->cfg_where(el), what);
        return SY_EINVAL;
    }
    static const char *const keys[] = {"context", "statement", "condition", "pipelines"};
    const sy_cfg_node_t *v[4] = {NULL};
    for (size_t j = 0, n = api->cfg_len(el); j < n; j++) {
        const char *key = NULL;
        const sy_cfg_node_t *val = api->cfg_at(el, j, &key);
        size_t k = 0;
        while (k < 4 && strcmp(key, keys[k]) != 0)
            k++;
        if (k == 4) {
            snprintf(err, err_len,
                     "%s: %s: unknown key '%s' (valid: context, statement, condition, pipelines)",
                     api->cfg_where(val), what, key);
            return SY_EINVAL;
        }
        v[k] = val;
    }
    const char *context, *statement, *condition;
    int rc;
    if ((rc = read_string(api, v[0], what, "context", &context, err, err_len)) < 0 ||
        (rc = read_string(api, v[1], what, "statement", &statement, err, err_len)) < 0 ||
        (rc = read_string(api, v[2], what, "condition", &condition, err, err_len)) < 0)
        return rc;
    char sub[96];
    snprintf(sub, sizeof sub, "%s.pipelines", what);
    const char **ids;
    size_t nids;
    if ((rc = read_ids(api, v[3], sub, &ids, &nids, err, err_len)) < 0) return rc;
    char msg[400] = "";
    rc = rt_table_add(t, context, statement, condition, ids, nids, msg, sizeof msg);
    if (rc < 0 && msg[0]) {
        /* Point at the text the message's column counts in, else at the route. */
        const sy_cfg_node_t *at = statement ? v[1] : condition ? v[2] : el;
        if (strncmp(msg, "invalid context", 15) == 0 || strstr(msg, "request context")) at = v[0];
        snprintf(err, err_len, "%s: %s: %s", api->cfg_where(at), what, msg);
    } else if (rc == 1 && inst) {
        /* The collector's warning for the same case. */
        char list[256] = "";
        for (size_t i = 0; i < nids; i++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                     ids[i]);
        SY_LOG(api, inst, SY_LOG_WARN,
               "%s: statement \"%s\" already exists in the routing table, the route with target "
               "pipeline(s) \"%s\" will be ignored",
               api->cfg_where(el), statement ? statement : condition, list);
    }
    free(ids);
    return rc < 0 ? rc : 0;
}

int routing_config_load(const sy_host_api_t *api, sy_instance_t *inst, const routing_config_t *c,
                        rt_table_t *t, char *err, size_t err_len)
{
    memset(t, 0, sizeof *t);
    t->error_mode = (rt_error_mode_t)c->error_mode;
    const sy_cfg_node_t *table = c->table;
    if (table && api->cfg_kind(table) != 'l' && api->cfg_kind(table) != 'n') {
        snprintf(err, err_len, "%s: table: must be a list of routes", api->cfg_where(table));
        return SY_EINVAL;
    }
    if (!table || api->cfg_kind(table) == 'n' || api->cfg_len(table) == 0) {
        snprintf(err, err_len, "%s%sinvalid routing table: the routing table is empty",
                 table ? api->cfg_where(table) : "", table ? ": " : "");
        return SY_EINVAL;
    }
    int rc = 0;
    for (size_t i = 0, n = api->cfg_len(table); i < n && rc == 0; i++) {
        char what[32];
        snprintf(what, sizeof what, "table[%zu]", i);
        rc = load_route(api, inst, api->cfg_at(table, i, NULL), what, t, err, err_len);
    }
    const char **ids = NULL;
    size_t nids = 0;
    if (rc == 0)
        rc = read_ids(api, c->default_pipelines, "default_pipelines", &ids, &nids, err, err_len);
    if (rc == 0) rc = rt_table_set_default(t, ids, nids);
    free(ids);
    if (rc == 0) rc = rt_table_finish(t);
    if (rc < 0) rt_table_free(t);
    return rc;
}

/* Whether every id of the list `node` is among fed[0..nfed); SY_EINVAL naming the
 * first that is not. */
static int check_list(const sy_host_api_t *api, const sy_cfg_node_t *node, const char *what,
                      const char *signal, const char *const *fed, size_t nfed, const char *self,
                      char *err, size_t err_len)
{
    if (!node || api->cfg_kind(node) != 'l') return 0;
    for (size_t i = 0, n = api->cfg_len(node); i < n; i++) {
        const sy_cfg_node_t *el = api->cfg_at(node, i, NULL);
        const char *id = api->cfg_scalar(el);
        bool found = false;
        for (size_t j = 0; j < nfed && !found; j++)
            found = strcmp(fed[j], id) == 0;
        if (found) continue;
        char list[400] = "";
        for (size_t j = 0; j < nfed; j++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "",
                     fed[j]);
        snprintf(err, err_len,
                 "%s: %s[%zu]: pipeline \"%s\" not found: it is not a %s pipeline with \"%s\" "
                 "among its receivers (the %s pipelines this connector feeds: %s)",
                 api->cfg_where(el), what, i, id, signal, self, signal, nfed ? list : "none");
        return SY_EINVAL;
    }
    return 0;
}

int routing_config_check_pipelines(const sy_host_api_t *api, sy_instance_t *inst,
                                   const routing_config_t *c, char *err, size_t err_len)
{
    static const struct {
        sy_signal_t signal;
        const char *name;
    } sigs[] = {
        {SY_SIGNAL_TRACES, "traces"}, {SY_SIGNAL_METRICS, "metrics"}, {SY_SIGNAL_LOGS, "logs"}};
    uint32_t in = api->signals(inst);
    const char *self = api->instance_id(inst);
    for (size_t k = 0; k < 3; k++) {
        if (!(in & sigs[k].signal)) continue;
        size_t nfed = api->connector_pipelines(inst, sigs[k].signal, NULL, 0);
        const char **fed = calloc(nfed ? nfed : 1, sizeof *fed);
        if (!fed) return SY_ENOMEM;
        nfed = api->connector_pipelines(inst, sigs[k].signal, fed, nfed);
        int rc = 0;
        for (size_t i = 0, n = api->cfg_len(c->table); i < n && rc == 0; i++) {
            char what[48];
            snprintf(what, sizeof what, "table[%zu].pipelines", i);
            const sy_cfg_node_t *route = api->cfg_at(c->table, i, NULL);
            rc = check_list(api, api->cfg_get(route, "pipelines"), what, sigs[k].name, fed, nfed,
                            self, err, err_len);
        }
        if (rc == 0)
            rc = check_list(api, c->default_pipelines, "default_pipelines", sigs[k].name, fed, nfed,
                            self, err, err_len);
        free(fed);
        if (rc < 0) return rc;
    }
    return 0;
}
