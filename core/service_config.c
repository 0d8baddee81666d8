/*
 * service_config.c - the otelcol configuration model, read from the tree and
 * checked before any plugin is loaded. Messages follow otelcol's wording, with
 * the position of the node at fault in front.
 */
#include "service_config.h"

#include "signals.h"
#include "telemetry_tls.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct section_s {
    const char *key;
    sy_kind_t kind;
} section_t;

static const section_t sections[] = {
    {"receivers", SY_KIND_RECEIVER},   {"processors", SY_KIND_PROCESSOR},
    {"exporters", SY_KIND_EXPORTER},   {"connectors", SY_KIND_CONNECTOR},
    {"extensions", SY_KIND_EXTENSION},
};

const char *sy__component_kind_name(sy_kind_t kind)
{
    switch (kind) {
    case SY_KIND_RECEIVER:
        return "receiver";
    case SY_KIND_PROCESSOR:
        return "processor";
    case SY_KIND_EXPORTER:
        return "exporter";
    case SY_KIND_EXTENSION:
        return "extension";
    case SY_KIND_CONNECTOR:
        return "connector";
    }
    return "component";
}

/* ------------------------------------------------------------------------ */
/* IDs                                                                       */
/* ------------------------------------------------------------------------ */

/* Decodes one UTF-8 code point; returns its length, or 0 if malformed. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = (s[0] & 0xE0) == 0xC0   ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (!len) return 0;
    uint32_t c = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return len;
}

/*
 * True when a code point is in Unicode's separator (Z), other (C) or symbol (S)
 * categories, which otelcol refuses in a name (^[^\pZ\pC\pS]+$). Without a
 * Unicode database this covers ASCII and Latin-1 exactly and the common blocks
 * beyond (spaces, format characters, private use, arrows, math, currency, box
 * drawing, shapes, dingbats, emoji) approximately.
 */
static bool cp_is_zcs(uint32_t c)
{
    if (c < 0x80) return c <= 0x20 || c == 0x7F || strchr("$+<=>^`|~", (int)c);
    if (c <= 0xA0 || c == 0xAD) return true;
    if ((c >= 0xA2 && c <= 0xA9) || c == 0xAC || (c >= 0xAE && c <= 0xB1) || c == 0xB4 ||
        c == 0xB8 || c == 0xD7 || c == 0xF7)
        return true;
    if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
        (c >= 0x205F && c <= 0x206F) || c == 0x3000 || c == 0xFEFF)
        return true;
    if ((c >= 0x20A0 && c <= 0x20CF) || (c >= 0x2100 && c <= 0x214F) ||
        (c >= 0x2190 && c <= 0x2BFF) || (c >= 0xFFF0 && c <= 0xFFFF))
        return true;
    if ((c >= 0xE000 && c <= 0xF8FF) || c >= 0xF0000 || (c >= 0x1F000 && c <= 0x1FAFF)) return true;
    return false;
}

static bool type_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (!first && ((c >= '0' && c <= '9') || c == '_'));
}

static const char *check_type(const char *t, size_t len)
{
    if (len == 0) return "the type must not be empty";
    if (len > 63) return "the type is longer than 63 characters";
    for (size_t i = 0; i < len; i++)
        if (!type_char(t[i], i == 0)) return "the type must match ^[a-zA-Z][0-9a-zA-Z_]{0,62}$";
    return NULL;
}

static const char *check_name(const char *n)
{
    size_t chars = 0;
    if (!*n) return "the name after '/' must not be empty";
    for (const unsigned char *s = (const unsigned char *)n; *s; chars++) {
        uint32_t cp;
        size_t len = utf8_decode(s, &cp);
        if (!len) return "the name is not valid UTF-8";
        if (cp_is_zcs(cp)) return "the name must not contain spaces, control characters or symbols";
        s += len;
    }
    if (chars > 1024) return "the name is longer than 1024 characters";
    return NULL;
}

const char *sy__component_id_check(const char *id)
{
    const char *slash = strchr(id, '/');
    const char *why = check_type(id, slash ? (size_t)(slash - id) : strlen(id));
    return why ? why : slash ? check_name(slash + 1) : NULL;
}

/* ------------------------------------------------------------------------ */
/* Building                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct build_s {
    sy__service_cfg_t *cfg;
    sy__diag_t *diag;
    int errors;
    /* How each connector is used, to find connectors used on one side only. */
    const sy_cfg_node_t **conn_as_exporter, **conn_as_receiver; /* per component */
    const char **conn_exporter_pipeline, **conn_receiver_pipeline;
} build_t;

static void berror(build_t *b, const sy_cfg_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void berror(build_t *b, const sy_cfg_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sy__diag_vadd(b->diag, at, fmt, ap);
    va_end(ap);
    b->errors++;
}

static const char *describe(const sy_cfg_node_t *v, char *buf, size_t len)
{
    switch (sy__cfg_kind(v)) {
    case SY__CFG_MAP:
        return "a map";
    case SY__CFG_LIST:
        return "a list";
    case SY__CFG_NULL:
        return "null";
    default:
        snprintf(buf, len, "\"%.64s\"", sy__cfg_scalar(v));
        return buf;
    }
}

/* Reports the keys of `map` not in `allowed` (NULL-terminated) as otelcol does:
 * "'<where>' has invalid keys: <key>", at each key. */
static void check_keys(build_t *b, const sy_cfg_node_t *map, const char *where,
                       const char *const *allowed)
{
    for (size_t i = 0; i < sy__cfg_len(map); i++) {
        const char *key;
        sy__cfg_at(map, i, &key);
        bool ok = false;
        for (size_t j = 0; allowed[j] && !ok; j++)
            ok = !strcmp(allowed[j], key);
        if (!ok) berror(b, sy__cfg_key_node(map, i), "'%s' has invalid keys: %s", where, key);
    }
}

/* A map, or null (treated as empty); anything else is reported. */
static bool want_map(build_t *b, const sy_cfg_node_t *v, const char *what)
{
    char got[96];
    int k = sy__cfg_kind(v);
    if (k == SY__CFG_MAP || k == SY__CFG_NULL) return true;
    berror(b, v, "'%s': expected a map, got %s", what, describe(v, got, sizeof(got)));
    return false;
}

static int add_component(build_t *b, sy_kind_t kind, const char *id, const sy_cfg_node_t *value,
                         const sy_cfg_node_t *key)
{
    sy__service_cfg_t *cfg = b->cfg;
    sy__component_cfg_t *n = realloc(cfg->components, (cfg->ncomponents + 1) * sizeof(*n));
    if (!n) return -1;
    cfg->components = n;
    sy__component_cfg_t *c = &n[cfg->ncomponents];
    memset(c, 0, sizeof(*c));
    const char *slash = strchr(id, '/');
    c->id = strdup(id);
    c->type = slash ? strndup(id, (size_t)(slash - id)) : strdup(id);
    c->name = slash ? strdup(slash + 1) : NULL;
    c->kind = kind;
    c->node = value;
    c->key = key;
    cfg->ncomponents++;
    return c->id && c->type && (!slash || c->name) ? 0 : -1;
}

static void read_section(build_t *b, const sy_cfg_node_t *sec, const section_t *s)
{
    if (!want_map(b, sec, s->key)) return;
    for (size_t i = 0; i < sy__cfg_len(sec); i++) {
        const char *id;
        const sy_cfg_node_t *v = sy__cfg_at(sec, i, &id);
        const sy_cfg_node_t *key = sy__cfg_key_node(sec, i);
        const char *why = sy__component_id_check(id);
        if (why) {
            berror(b, key, "%s: invalid component ID \"%s\": %s", s->key, id, why);
            continue;
        }
        if (add_component(b, s->kind, id, v, key) < 0) berror(b, key, "out of memory");
    }
}

/* A list of IDs under a pipeline or service.extensions. */
typedef struct idlist_s {
    char ***ids;
    size_t *count;
    const sy_cfg_node_t ***nodes;
} idlist_t;

static int idlist_push(idlist_t l, const char *id, const sy_cfg_node_t *at)
{
    char **ids = realloc(*l.ids, (*l.count + 1) * sizeof(*ids));
    if (!ids) return -1;
    *l.ids = ids;
    const sy_cfg_node_t **nodes = realloc(*l.nodes, (*l.count + 1) * sizeof(*nodes));
    if (!nodes) return -1;
    *l.nodes = nodes;
    if (!(ids[*l.count] = strdup(id))) return -1;
    nodes[*l.count] = at;
    (*l.count)++;
    return 0;
}

static bool idlist_has(idlist_t l, const char *id)
{
    for (size_t i = 0; i < *l.count; i++)
        if (!strcmp((*l.ids)[i], id)) return true;
    return false;
}

static ssize_t find_index(const sy__service_cfg_t *cfg, sy_kind_t kind, const char *id)
{
    for (size_t i = 0; i < cfg->ncomponents; i++)
        if (cfg->components[i].kind == kind && !strcmp(cfg->components[i].id, id))
            return (ssize_t)i;
    return -1;
}

const sy__component_cfg_t *sy__service_cfg_find(const sy__service_cfg_t *cfg, sy_kind_t kind,
                                                const char *id)
{
    ssize_t i = find_index(cfg, kind, id);
    return i < 0 ? NULL : &cfg->components[i];
}

/*
 * Reads one reference list of a pipeline ("receivers", "processors",
 * "exporters") and resolves each ID against the sections it may name.
 */
static void read_refs(build_t *b, const sy_cfg_node_t *pipe, const char *pid, const char *field,
                      sy_kind_t kind, idlist_t out)
{
    const sy_cfg_node_t *list = sy__cfg_get(pipe, field);
    const char *kname = sy__component_kind_name(kind);
    char got[96];

    if (!list || list->kind == SY__CFG_NULL) return;
    if (list->kind != SY__CFG_LIST) {
        berror(b, list, "service::pipelines::%s: '%s' must be a list of component IDs, got %s", pid,
               field, describe(list, got, sizeof(got)));
        return;
    }
    for (size_t i = 0; i < list->len; i++) {
        const sy_cfg_node_t *ref = list->items[i];
        const char *id = sy__cfg_scalar(ref);
        if (!id) {
            berror(b, ref, "service::pipelines::%s: %s[%zu] must be a component ID, got %s", pid,
                   field, i, describe(ref, got, sizeof(got)));
            continue;
        }
        if (idlist_has(out, id)) {
            if (kind == SY_KIND_PROCESSOR)
                berror(b, ref, "service::pipelines::%s: references processor \"%s\" multiple times",
                       pid, id);
            else
                sy__diag_warn(b->diag, ref,
                              "service::pipelines::%s: references %s \"%s\" more than once; "
                              "it is used once",
                              pid, kname, id);
            continue;
        }
        ssize_t own = find_index(b->cfg, kind, id);
        ssize_t conn = kind == SY_KIND_PROCESSOR ? -1 : find_index(b->cfg, SY_KIND_CONNECTOR, id);
        if (own >= 0 && conn >= 0) {
            berror(b, ref,
                   "service::pipelines::%s: ambiguous ID: Found both \"%s\" %s and \"%s\" "
                   "connector. Change one of the components' IDs to eliminate ambiguity (e.g. "
                   "rename \"%s\" connector to \"%s/connector\")",
                   pid, id, kname, id, id, id);
        } else if (own < 0 && conn < 0) {
            berror(b, ref, "service::pipelines::%s: references %s \"%s\" which is not configured",
                   pid, kname, id);
        } else if (conn >= 0) {
            const sy_cfg_node_t **use =
                kind == SY_KIND_EXPORTER ? b->conn_as_exporter : b->conn_as_receiver;
            const char **where =
                kind == SY_KIND_EXPORTER ? b->conn_exporter_pipeline : b->conn_receiver_pipeline;
            if (!use[conn]) {
                use[conn] = ref;
                where[conn] = pid;
            }
        }
        if (idlist_push(out, id, ref) < 0) berror(b, ref, "out of memory");
    }
}

static void read_pipelines(build_t *b, const sy_cfg_node_t *pipes, const sy_cfg_node_t *at)
{
    static const char *const pipeline_keys[] = {"receivers", "processors", "exporters", NULL};
    sy__service_cfg_t *cfg = b->cfg;

    if (!want_map(b, pipes, "service.pipelines")) return;
    if (sy__cfg_len(pipes) == 0) {
        berror(b, pipes ? pipes : at, "service must have at least one pipeline");
        return;
    }
    cfg->pipelines = calloc(pipes->len, sizeof(*cfg->pipelines));
    if (!cfg->pipelines) {
        berror(b, pipes, "out of memory");
        return;
    }
    for (size_t i = 0; i < pipes->len; i++) {
        const char *pid;
        const sy_cfg_node_t *pipe = sy__cfg_at(pipes, i, &pid);
        const sy_cfg_node_t *key = sy__cfg_key_node(pipes, i);
        const char *slash = strchr(pid, '/');
        size_t tlen = slash ? (size_t)(slash - pid) : strlen(pid);
        const syc_signal_info_t *si = syc_signal_by_name(pid, tlen);
        sy_signal_t signal = si ? si->signal : 0;
        if (!signal) {
            berror(b, key,
                   "service::pipelines: invalid pipeline ID \"%s\": the signal must be traces, "
                   "metrics or logs (\"%.*s\" is not supported)",
                   pid, (int)tlen, pid);
            continue;
        }
        const char *why = slash ? check_name(slash + 1) : NULL;
        if (why) {
            berror(b, key, "service::pipelines: invalid pipeline ID \"%s\": %s", pid, why);
            continue;
        }
        char where[1200];
        snprintf(where, sizeof(where), "service.pipelines.%s", pid);
        if (!want_map(b, pipe, where)) continue;

        sy__pipeline_cfg_t *p = &cfg->pipelines[cfg->npipelines++];
        p->signal = signal;
        p->node = key;
        p->id = strdup(pid);
        p->name = slash ? strdup(slash + 1) : NULL;
        if (!p->id || (slash && !p->name)) berror(b, key, "out of memory");
        check_keys(b, pipe, where, pipeline_keys);
        read_refs(b, pipe, pid, "receivers", SY_KIND_RECEIVER,
                  (idlist_t){&p->receivers, &p->nreceivers, &p->receiver_nodes});
        read_refs(b, pipe, pid, "processors", SY_KIND_PROCESSOR,
                  (idlist_t){&p->processors, &p->nprocessors, &p->processor_nodes});
        read_refs(b, pipe, pid, "exporters", SY_KIND_EXPORTER,
                  (idlist_t){&p->exporters, &p->nexporters, &p->exporter_nodes});
        const sy_cfg_node_t *rnode = sy__cfg_get(pipe, "receivers");
        const sy_cfg_node_t *enode = sy__cfg_get(pipe, "exporters");
        if (p->nreceivers == 0 && sy__cfg_len(rnode) == 0)
            berror(b, rnode ? rnode : key,
                   "service::pipelines::%s: must have at least one receiver", pid);
        if (p->nexporters == 0 && sy__cfg_len(enode) == 0)
            berror(b, enode ? enode : key,
                   "service::pipelines::%s: must have at least one exporter", pid);
    }
}

static void read_extensions(build_t *b, const sy_cfg_node_t *list)
{
    sy__service_cfg_t *cfg = b->cfg;
    idlist_t out = {&cfg->extensions, &cfg->nextensions, &cfg->extension_nodes};
    char got[96];

    if (!list || list->kind == SY__CFG_NULL) return;
    if (list->kind != SY__CFG_LIST) {
        berror(b, list, "service::extensions: must be a list of extension IDs, got %s",
               describe(list, got, sizeof(got)));
        return;
    }
    for (size_t i = 0; i < list->len; i++) {
        const sy_cfg_node_t *ref = list->items[i];
        const char *id = sy__cfg_scalar(ref);
        if (!id) {
            berror(b, ref, "service::extensions: item %zu must be an extension ID, got %s", i,
                   describe(ref, got, sizeof(got)));
        } else if (idlist_has(out, id)) {
            berror(b, ref, "service::extensions: references extension \"%s\" multiple times", id);
        } else {
            if (!sy__service_cfg_find(cfg, SY_KIND_EXTENSION, id))
                berror(b, ref,
                       "service::extensions: references extension \"%s\" which is not configured",
                       id);
            if (idlist_push(out, id, ref) < 0) berror(b, ref, "out of memory");
        }
    }
}

/* ------------------------------------------------------------------------ */
/* service.telemetry                                                         */
/* ------------------------------------------------------------------------ */

static int enum_ci(const sy_cfg_node_t *v, const char *const *names)
{
    const char *s = sy__cfg_scalar(v);
    for (int i = 0; s && names[i]; i++)
        if (!strcasecmp(s, names[i])) return i;
    return -1;
}

/* Reads readers[].pull.exporter.prometheus {host, port} into "host:port". */
static void read_readers(build_t *b, const sy_cfg_node_t *readers)
{
    sy__service_cfg_t *cfg = b->cfg;
    char got[96];

    if (readers->kind != SY__CFG_LIST) {
        berror(b, readers, "'service.telemetry.metrics.readers': expected a list, got %s",
               describe(readers, got, sizeof(got)));
        return;
    }
    free(cfg->metrics_address);
    cfg->metrics_address = NULL;
    for (size_t i = 0; i < readers->len; i++) {
        const sy_cfg_node_t *prom = sy__cfg_get(
            sy__cfg_get(sy__cfg_get(readers->items[i], "pull"), "exporter"), "prometheus");
        if (!prom) {
            sy__diag_warn(b->diag, readers->items[i],
                          "service.telemetry.metrics.readers[%zu]: only pull readers with a "
                          "prometheus exporter are supported; this reader is ignored",
                          i);
            continue;
        }
        if (cfg->metrics_address) continue;
        const sy_cfg_node_t *hostn = sy__cfg_get(prom, "host"), *portn = sy__cfg_get(prom, "port");
        const char *host = sy__cfg_scalar(hostn) ? sy__cfg_scalar(hostn) : "localhost";
        const char *ports = sy__cfg_scalar(portn) ? sy__cfg_scalar(portn) : "8888";
        char *end;
        long port = strtol(ports, &end, 10);
        if (*end || port < 1 || port > 65535) {
            berror(b, portn,
                   "'service.telemetry.metrics.readers[%zu].pull.exporter.prometheus.port': "
                   "expected a port number (1-65535), got %s",
                   i, describe(portn, got, sizeof(got)));
            continue;
        }
        bool v6 = strchr(host, ':') && host[0] != '[';
        if (asprintf(&cfg->metrics_address, v6 ? "[%s]:%ld" : "%s:%ld", host, port) < 0) {
            cfg->metrics_address = NULL;
            berror(b, prom, "out of memory");
        }
    }
}

static void read_telemetry(build_t *b, const sy_cfg_node_t *tel)
{
    static const char *const tel_keys[] = {"logs", "metrics", "traces", "resource", NULL};
    static const char *const logs_keys[] = {"level",
                                            "encoding",
                                            "output_paths",
                                            "error_output_paths",
                                            "development",
                                            "disable_caller",
                                            "disable_stacktrace",
                                            "sampling",
                                            "initial_fields",
                                            "processors",
                                            NULL};
    static const char *const metrics_keys[] = {"level", "address", "readers", "views", "tls", NULL};
    static const char *const log_levels[] = {"debug", "info", "warn", "error", NULL};
    static const char *const metric_levels[] = {"none", "basic", "normal", "detailed", NULL};
    sy__service_cfg_t *cfg = b->cfg;
    char got[96];

    if (!want_map(b, tel, "service.telemetry")) return;
    check_keys(b, tel, "service.telemetry", tel_keys);

    const sy_cfg_node_t *logs = sy__cfg_get(tel, "logs");
    if (want_map(b, logs, "service.telemetry.logs")) {
        check_keys(b, logs, "service.telemetry.logs", logs_keys);
        const sy_cfg_node_t *lv = sy__cfg_get(logs, "level");
        if (lv && lv->kind != SY__CFG_NULL) {
            int l = enum_ci(lv, log_levels);
            if (l < 0)
                berror(b, lv,
                       "'service.telemetry.logs.level': expected one of debug, info, warn, "
                       "error, got %s",
                       describe(lv, got, sizeof(got)));
            else
                cfg->log_level = (sy_log_level_t)l;
        }
    }

    const sy_cfg_node_t *metrics = sy__cfg_get(tel, "metrics");
    if (!want_map(b, metrics, "service.telemetry.metrics")) return;
    check_keys(b, metrics, "service.telemetry.metrics", metrics_keys);
    const sy_cfg_node_t *lv = sy__cfg_get(metrics, "level");
    if (lv && lv->kind != SY__CFG_NULL) {
        int l = enum_ci(lv, metric_levels);
        if (l < 0)
            berror(b, lv,
                   "'service.telemetry.metrics.level': expected one of none, basic, normal, "
                   "detailed, got %s",
                   describe(lv, got, sizeof(got)));
        else
            cfg->metrics_level = l;
    }
    const sy_cfg_node_t *addr = sy__cfg_get(metrics, "address");
    const sy_cfg_node_t *readers = sy__cfg_get(metrics, "readers");
    if (addr && addr->kind != SY__CFG_NULL) {
        if (!sy__cfg_scalar(addr)) {
            berror(b, addr, "'service.telemetry.metrics.address': expected host:port, got %s",
                   describe(addr, got, sizeof(got)));
        } else if (readers && readers->kind != SY__CFG_NULL) {
            sy__diag_warn(b->diag, addr,
                          "service.telemetry.metrics.address is ignored because readers is set");
        } else {
            char *a = strdup(sy__cfg_scalar(addr));
            if (!a) {
                berror(b, addr, "out of memory");
            } else {
                free(cfg->metrics_address);
                cfg->metrics_address = a;
            }
        }
    }
    if (readers && readers->kind != SY__CFG_NULL) read_readers(b, readers);
    const sy_cfg_node_t *tls = sy__cfg_get(metrics, "tls");
    if (tls && tls->kind != SY__CFG_NULL) {
        sy__metrics_tls_t t;
        const sy_cfg_node_t *bad = tls;
        char err[512];
        if (sy__metrics_tls_read(tls, &t, &bad, err, sizeof(err)) < 0) {
            berror(b, bad, "%s", err);
        } else {
            sy__metrics_tls_free(&t);
            cfg->metrics_tls = tls;
        }
    }
}

/* ------------------------------------------------------------------------ */

int sy__service_cfg_build(const sy_cfg_node_t *root, sy__service_cfg_t *out, sy__diag_t *diag)
{
    static const char *const top_keys[] = {"receivers",  "processors", "exporters", "connectors",
                                           "extensions", "service",    NULL};
    static const char *const service_keys[] = {"extensions", "pipelines", "telemetry", NULL};
    build_t b = {.cfg = out, .diag = diag};
    char got[96];

    memset(out, 0, sizeof(*out));
    out->log_level = SY_LOG_INFO;
    out->metrics_level = 2;
    if (!(out->metrics_address = strdup("localhost:8888"))) {
        sy__diag_add(diag, root, "out of memory");
        return -1;
    }
    if (root && root->kind != SY__CFG_MAP && root->kind != SY__CFG_NULL) {
        berror(&b, root,
               "the configuration must be a map of receivers, processors, exporters, "
               "connectors, extensions and service, got %s",
               describe(root, got, sizeof(got)));
        return -1;
    }
    check_keys(&b, root, "", top_keys);
    for (size_t s = 0; s < sizeof(sections) / sizeof(sections[0]); s++)
        read_section(&b, sy__cfg_get(root, sections[s].key), &sections[s]);

    /* Connector bookkeeping is per component, sized now that all are known. */
    size_t n = out->ncomponents ? out->ncomponents : 1;
    b.conn_as_exporter = calloc(n, sizeof(*b.conn_as_exporter));
    b.conn_as_receiver = calloc(n, sizeof(*b.conn_as_receiver));
    b.conn_exporter_pipeline = calloc(n, sizeof(*b.conn_exporter_pipeline));
    b.conn_receiver_pipeline = calloc(n, sizeof(*b.conn_receiver_pipeline));
    if (!b.conn_as_exporter || !b.conn_as_receiver || !b.conn_exporter_pipeline ||
        !b.conn_receiver_pipeline) {
        berror(&b, root, "out of memory");
        goto out;
    }

    bool have_receivers = false;
    for (size_t i = 0; i < out->ncomponents; i++)
        have_receivers |= out->components[i].kind == SY_KIND_RECEIVER;
    const sy_cfg_node_t *recv = sy__cfg_get(root, "receivers");
    if (!have_receivers && (!recv || sy__cfg_kind(recv) != SY__CFG_MAP || recv->len == 0))
        berror(&b, recv ? recv : root, "no receiver configuration specified in config");

    const sy_cfg_node_t *service = sy__cfg_get(root, "service");
    if (!want_map(&b, service, "service")) goto out;
    check_keys(&b, service, "service", service_keys);
    read_extensions(&b, sy__cfg_get(service, "extensions"));
    const sy_cfg_node_t *pipes = sy__cfg_get(service, "pipelines");
    read_pipelines(&b, pipes, service ? service : root);
    read_telemetry(&b, sy__cfg_get(service, "telemetry"));
    if (out->metrics_level == 0) {
        free(out->metrics_address);
        out->metrics_address = NULL;
    }

    for (size_t i = 0; i < out->ncomponents; i++) {
        if (b.conn_as_exporter[i] && !b.conn_as_receiver[i])
            berror(&b, b.conn_as_exporter[i],
                   "connector \"%s\" used as exporter in %s pipeline but not used in any "
                   "supported receiver pipeline",
                   out->components[i].id, b.conn_exporter_pipeline[i]);
        if (b.conn_as_receiver[i] && !b.conn_as_exporter[i])
            berror(&b, b.conn_as_receiver[i],
                   "connector \"%s\" used as receiver in %s pipeline but not used in any "
                   "supported exporter pipeline",
                   out->components[i].id, b.conn_receiver_pipeline[i]);
    }
out:
    free(b.conn_as_exporter);
    free(b.conn_as_receiver);
    free(b.conn_exporter_pipeline);
    free(b.conn_receiver_pipeline);
    return b.errors ? -1 : 0;
}

static void free_ids(char **ids, size_t n, const sy_cfg_node_t **nodes)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    free(nodes);
}

void sy__service_cfg_free(sy__service_cfg_t *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < cfg->ncomponents; i++) {
        free(cfg->components[i].id);
        free(cfg->components[i].type);
        free(cfg->components[i].name);
    }
    free(cfg->components);
    for (size_t i = 0; i < cfg->npipelines; i++) {
        sy__pipeline_cfg_t *p = &cfg->pipelines[i];
        free(p->id);
        free(p->name);
        free_ids(p->receivers, p->nreceivers, p->receiver_nodes);
        free_ids(p->processors, p->nprocessors, p->processor_nodes);
        free_ids(p->exporters, p->nexporters, p->exporter_nodes);
    }
    free(cfg->pipelines);
    free_ids(cfg->extensions, cfg->nextensions, cfg->extension_nodes);
    free(cfg->metrics_address);
    memset(cfg, 0, sizeof(*cfg));
}
