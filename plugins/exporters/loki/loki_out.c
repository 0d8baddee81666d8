/*
 * loki_out.c - OTLP log records as Loki stream entries, read through the view
 * only (no protobuf-c), as the collector's lokiexporter (pkg/translator/loki,
 * LogsToLokiRequests and LogToLokiEntry) makes them:
 *
 * - labels: exporter="OTLP", job = service.namespace/service.name, instance =
 *   service.instance.id (each unless default_labels_enabled turns it off); the
 *   resource attributes named by the loki.resource.labels hint (of the resource
 *   or of the record), the record attributes named by loki.attribute.labels, and
 *   level from the severity number (added to the attribute hint, the record's own
 *   `level` attribute winning). A name that is not found directly is looked up
 *   as a path into map values ("a.b.c": a map "a.b" holding "c", or "a" holding
 *   "b.c", ...). Names are normalized as Prometheus label names (anything but a
 *   letter or digit becomes '_', a leading digit gets "key_", a single leading
 *   '_' gets "key").
 * - the promoted attributes and the four hint attributes are left out of the line.
 * - the line: loki.format json (the default), logfmt or raw; any other value
 *   leaves the record out (counted), as does a record that ends up with no label.
 * - the timestamp: the record's time, else its observed time, else now.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hash.h"
#include "loki_internal.h"

enum { FMT_JSON, FMT_LOGFMT, FMT_RAW, FMT_BAD };

static const char *const level_names[25] = {
    "UNSPECIFIED", "TRACE",  "TRACE2", "TRACE3", "TRACE4", "DEBUG",  "DEBUG2", "DEBUG3", "DEBUG4",
    "INFO",        "INFO2",  "INFO3",  "INFO4",  "WARN",   "WARN2",  "WARN3",  "WARN4",  "ERROR",
    "ERROR2",      "ERROR3", "ERROR4", "FATAL",  "FATAL2", "FATAL3", "FATAL4"};

/* ---- attributes ------------------------------------------------------------------ */

/* The entry `key` of a MAP value. */
static bool map_get(ctx_t *c, const sy_value_t *map, const char *key, size_t len, sy_value_t *out)
{
    sy_value_iter_t it = {.value = map};
    sy_value_t k, x;
    bool found = false;
    while (c->api->view_value_next(&it, &k, &x) == 1)
        if (k.len == len && (!len || !memcmp(k.str, key, len))) {
            *out = x; /* the last one, as pcommon's Get would find the first: rare */
            found = true;
            break;
        }
    return found;
}

/* An attribute of `node` (or entry of `map` when node is NULL) by name, or by
 * path into nested maps (getAttribute of pkg/translator/loki). The synthetic
 * `level` attribute of the record counts as one of its attributes. */
static bool get_attr(ctx_t *c, sy_view_node_t *node, const sy_value_t *map, const char *name,
                     size_t len, int depth, sy_value_t *out)
{
    if (node) {
        if (c->api->view_attr_get(node, name, len, out) == SY_OK) return true;
        if (node == c->rec && c->level_added && str_is(name, len, "level")) {
            *out = (sy_value_t){.type = SY_VALUE_STRING, .str = c->level, .len = strlen(c->level)};
            return true;
        }
    } else if (map_get(c, map, name, len, out)) {
        return true;
    }
    /* Every split of the name at a dot is tried, recursively (getAttribute): a
     * budget of lookups per name keeps a name of many dots from costing more. */
    if (depth > 8 || c->lookups_left == 0) return false;
    c->lookups_left--;
    for (size_t i = len; i-- > 0;) {
        if (name[i] != '.') continue;
        sy_value_t left;
        if (get_attr(c, node, map, name, i, depth + 1, &left) && left.type == SY_VALUE_MAP)
            return get_attr(c, NULL, &left, name + i + 1, len - i - 1, depth + 1, out);
    }
    return false;
}

/* Adds (or replaces: a later source wins, as model.LabelSet.Merge) one label. */
static void label_set(ctx_t *c, const char *name, size_t nlen, const sy_value_t *v)
{
    size_t voff = c->scratch.len;
    lk__put_as_string(c, &c->scratch, v);
    size_t vlen = c->scratch.len - voff;
    for (size_t i = 0; i < c->nlabels; i++)
        if (c->labels[i].nlen == nlen && !memcmp(c->labels[i].name, name, nlen)) {
            c->labels[i].voff = voff;
            c->labels[i].vlen = vlen;
            return;
        }
    if (c->nlabels < sizeof(c->labels) / sizeof(c->labels[0]))
        c->labels[c->nlabels++] = (label_t){name, nlen, voff, vlen};
}

static void label_text(ctx_t *c, const char *name, const char *value, size_t vlen)
{
    sy_value_t v = {.type = SY_VALUE_STRING, .str = value, .len = vlen};
    label_set(c, name, strlen(name), &v);
}

/* One name of a hint: trimmed of blanks, looked up, made a label when found. */
static void hint_name(ctx_t *c, sy_view_node_t *attrs, const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\v' || *s == '\f'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' ||
                   s[len - 1] == '\r' || s[len - 1] == '\v' || s[len - 1] == '\f'))
        len--;
    sy_value_t v;
    c->lookups_left = 64;
    if (get_attr(c, attrs, NULL, s, len, 0, &v)) label_set(c, s, len, &v);
}

/* A name given as a value that is not a string (an element of an array hint):
 * its text, kept in the record's name buffer, which does not move. */
static void hint_value_name(ctx_t *c, sy_view_node_t *attrs, const sy_value_t *v)
{
    syc_buf_t t = {0};
    lk__put_as_string(c, &t, v);
    if (!c->failed && t.len <= sizeof(c->names) - c->names_used) {
        char *name = c->names + c->names_used;
        if (t.len) memcpy(name, t.p, t.len);
        c->names_used += t.len;
        hint_name(c, attrs, name, t.len);
    }
    free(t.p);
}

/* The labels a hint value names (a comma-separated string, an array of names, or
 * anything else as its text), looked up in the attributes of `attrs`. */
static void hint_labels(ctx_t *c, const sy_value_t *hint, sy_view_node_t *attrs, bool add_level)
{
    if (hint && hint->type == SY_VALUE_STRING) {
        const char *s = hint->str;
        size_t len = hint->len, start = 0;
        for (size_t i = 0; i <= len; i++)
            if (i == len || s[i] == ',') {
                hint_name(c, attrs, s + start, i - start);
                start = i + 1;
            }
    } else if (hint && hint->type == SY_VALUE_ARRAY) {
        sy_value_iter_t it = {.value = hint};
        sy_value_t k, x;
        while (c->api->view_value_next(&it, &k, &x) == 1)
            hint_value_name(c, attrs, &x); /* fmt's %v of the raw value */
    } else if (hint && hint->type != SY_VALUE_EMPTY) {
        hint_value_name(c, attrs, hint); /* "trying to make the most of bad data" */
    }
    if (add_level) hint_name(c, attrs, "level", 5);
}

/* ---- label names and the labels string ------------------------------------------------ */

typedef struct norm_s {
    char name[256];
    size_t nlen;
    size_t voff, vlen;
    size_t order;
} norm_t;

static int norm_cmp(const void *a, const void *b)
{
    const norm_t *x = a, *y = b;
    size_t n = x->nlen < y->nlen ? x->nlen : y->nlen;
    int r = memcmp(x->name, y->name, n);
    if (r) return r;
    if (x->nlen != y->nlen) return x->nlen < y->nlen ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* prometheustranslator.NormalizeLabel, for ASCII: letters and digits stay, any
 * other character (a UTF-8 sequence counts as one) becomes '_'; a leading digit
 * gets "key_", one leading '_' (not two) gets "key". Names longer than 200 bytes
 * are cut. */
static void normalize(const char *s, size_t len, norm_t *n)
{
    char tmp[256];
    size_t o = 0;
    for (size_t i = 0; i < len && o < 200; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')) {
            tmp[o++] = (char)ch;
        } else {
            tmp[o++] = '_';
            if (ch >= 0xc0)
                while (i + 1 < len && ((unsigned char)s[i + 1] & 0xc0) == 0x80)
                    i++;
        }
    }
    const char *prefix = "";
    if (o && tmp[0] >= '0' && tmp[0] <= '9')
        prefix = "key_";
    else if (o && tmp[0] == '_' && !(o > 1 && tmp[1] == '_'))
        prefix = "key";
    size_t pl = strlen(prefix);
    memcpy(n->name, prefix, pl);
    memcpy(n->name + pl, tmp, o);
    n->nlen = pl + o;
}

/* The one-letter escapes of Go's strconv.Quote. */
static const char go_esc[0x60] = {
    ['"'] = '"',  ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't',
    ['\b'] = 'b', ['\f'] = 'f',  ['\a'] = 'a', ['\v'] = 'v'};

/* Go's strconv.Quote, for ASCII: one-letter escapes, other control bytes \xNN. */
static size_t go_escape(unsigned char ch, char e[6])
{
    if (ch < sizeof(go_esc) && go_esc[ch]) {
        e[0] = '\\';
        e[1] = go_esc[ch];
        return 2;
    }
    if (ch >= 0x20 && ch != 0x7f) return 0;
    memcpy(e, "\\x", 2);
    e[2] = lk__hex_digits[ch >> 4];
    e[3] = lk__hex_digits[ch & 15];
    return 4;
}

/* A label value as Go's strconv.Quote writes it, quotes included. */
static void put_go_quoted(ctx_t *c, syc_buf_t *b, const char *s, size_t len)
{
    put(c, b, "\"", 1);
    lk__put_escaped(c, b, s, len, go_escape);
    put(c, b, "\"", 1);
}

static long stream_find_add(ctx_t *c, const char *labels, size_t llen, const char *jl, size_t jlen);

/* Finds or makes the stream of the labels in c->labels; returns its index or -1. */
static long stream_of(ctx_t *c)
{
    norm_t *n = calloc(c->nlabels ? c->nlabels : 1, sizeof(*n));
    if (!n) {
        c->failed = true;
        return -1;
    }
    for (size_t i = 0; i < c->nlabels; i++) {
        normalize(c->labels[i].name, c->labels[i].nlen, &n[i]);
        n[i].voff = c->labels[i].voff;
        n[i].vlen = c->labels[i].vlen;
        n[i].order = i;
    }
    if (c->nlabels > 1) qsort(n, c->nlabels, sizeof(*n), norm_cmp);
    /* {a="b", c="d"} and {"a":"b","c":"d"}; the values are read from the scratch. */
    syc_buf_t ls = {0}, js = {0};
    put(c, &ls, "{", 1);
    put(c, &js, "{", 1);
    size_t written = 0;
    for (size_t i = 0; i < c->nlabels && !c->failed; i++) {
        /* Two names that normalize alike: the later source wins. */
        if (i + 1 < c->nlabels && n[i + 1].nlen == n[i].nlen &&
            !memcmp(n[i + 1].name, n[i].name, n[i].nlen))
            continue;
        if (written++) {
            put(c, &ls, ", ", 2);
            put(c, &js, ",", 1);
        }
        const char *val = c->scratch.p ? c->scratch.p + n[i].voff : "";
        put(c, &ls, n[i].name, n[i].nlen);
        put(c, &ls, "=", 1);
        put_go_quoted(c, &ls, val, n[i].vlen);
        lk__put_json_str(c, &js, n[i].name, n[i].nlen);
        put(c, &js, ":", 1);
        lk__put_json_str(c, &js, val, n[i].vlen);
    }
    put(c, &ls, "}", 1);
    put(c, &js, "}", 1);
    free(n);
    long found = c->failed ? -1 : stream_find_add(c, ls.p, ls.len, js.p, js.len);
    free(ls.p);
    free(js.p);
    return found;
}

/* The stream of labels[0, llen) (JSON form jl[0, jlen)), found or made. */
static long stream_find_add(ctx_t *c, const char *labels, size_t llen, const char *jl, size_t jlen)
{
    lk_push_t *p = c->out;
    uint64_t h = syc_fnv1a64(SYC_FNV64_OFFSET, labels, llen);

    if (p->n * 2 >= p->index_cap) { /* grow and rehash the index */
        size_t ncap = p->index_cap ? p->index_cap * 2 : 64;
        size_t *idx = calloc(ncap, sizeof(*idx));
        if (!idx) {
            c->failed = true;
            return -1;
        }
        for (size_t i = 0; i < p->n; i++) {
            size_t s = p->streams[i].hash & (ncap - 1);
            while (idx[s])
                s = (s + 1) & (ncap - 1);
            idx[s] = i + 1;
        }
        free(p->index);
        p->index = idx;
        p->index_cap = ncap;
    }
    size_t s = h & (p->index_cap - 1);
    for (; p->index[s]; s = (s + 1) & (p->index_cap - 1)) {
        lk_stream_t *st = &p->streams[p->index[s] - 1];
        if (st->hash == h && st->labels_len == llen &&
            !memcmp(p->text.p + st->labels_off, labels, llen))
            return (long)(p->index[s] - 1);
    }
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 16;
        lk_stream_t *v = realloc(p->streams, ncap * sizeof(*v));
        if (!v) {
            c->failed = true;
            return -1;
        }
        p->streams = v;
        p->cap = ncap;
    }
    lk_stream_t *st = &p->streams[p->n];
    *st = (lk_stream_t){.hash = h};
    st->labels_off = p->text.len;
    st->labels_len = llen;
    put(c, &p->text, labels, llen);
    st->jlabels_off = p->text.len;
    st->jlabels_len = jlen;
    put(c, &p->text, jl, jlen);
    if (c->failed) return -1;
    p->index[s] = p->n + 1;
    return (long)p->n++;
}

/* ---- records --------------------------------------------------------------------------- */

static int format_of(ctx_t *c, sy_value_t *fv)
{
    if (c->api->view_attr_get(c->res, HINT_FORMAT, strlen(HINT_FORMAT), fv) != SY_OK &&
        c->api->view_attr_get(c->rec, HINT_FORMAT, strlen(HINT_FORMAT), fv) != SY_OK)
        return FMT_JSON;
    if (fv->type == SY_VALUE_STRING) {
        if (str_is(fv->str, fv->len, "json")) return FMT_JSON;
        if (str_is(fv->str, fv->len, "logfmt")) return FMT_LOGFMT;
        if (str_is(fv->str, fv->len, "raw")) return FMT_RAW;
    }
    return FMT_BAD;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void translate_record(ctx_t *c, sy_view_node_t *scope)
{
    const sy_host_api_t *api = c->api;
    lk_push_t *p = c->out;
    c->scratch.len = 0;
    c->nlabels = 0;
    c->names_used = 0;
    c->level_added = false;

    sy_value_t v, sev;
    api->view_get(c->rec, SY_FIELD_SEVERITY_NUMBER, &sev);
    if (c->defaults->level && sev.type == SY_VALUE_INT && sev.i > 0 && sev.i <= 24) {
        /* addLogLevelAttributeAndHint: `level` joins the attribute hint; the
         * record's own `level` attribute, when it has one, is the value. */
        c->level = level_names[sev.i];
        c->level_added = true;
    }
    sy_value_t fv;
    int format = format_of(c, &fv);
    if (format == FMT_BAD) {
        if (!p->dropped) {
            syc_buf_t t = {0};
            lk__put_as_string(c, &t, &fv);
            snprintf(p->dropped_why, sizeof(p->dropped_why),
                     "invalid format %.*s. Expected one of: json, logfmt, raw",
                     (int)(t.len > 60 ? 60 : t.len), t.p ? t.p : "");
            free(t.p);
        }
        p->dropped++;
        return;
    }

    if (c->defaults->exporter) label_text(c, "exporter", "OTLP", 4);
    if (c->defaults->job && api->view_attr_get(c->res, "service.name", 12, &v) == SY_OK) {
        sy_value_t ns;
        syc_buf_t t = {0};
        if (api->view_attr_get(c->res, "service.namespace", 17, &ns) == SY_OK) {
            lk__put_as_string(c, &t, &ns);
            put(c, &t, "/", 1);
        }
        lk__put_as_string(c, &t, &v);
        if (!c->failed) label_text(c, "job", t.p ? t.p : "", t.len);
        free(t.p);
    }
    if (c->defaults->instance && api->view_attr_get(c->res, "service.instance.id", 19, &v) == SY_OK)
        label_set(c, "instance", 8, &v);
    if (api->view_attr_get(c->res, HINT_RESOURCES, strlen(HINT_RESOURCES), &v) == SY_OK)
        hint_labels(c, &v, c->res, false);
    if (api->view_attr_get(c->rec, HINT_RESOURCES, strlen(HINT_RESOURCES), &v) == SY_OK)
        hint_labels(c, &v, c->res, false);
    bool has_hint =
        api->view_attr_get(c->rec, HINT_ATTRIBUTES, strlen(HINT_ATTRIBUTES), &v) == SY_OK;
    if (has_hint || c->level_added) hint_labels(c, has_hint ? &v : NULL, c->rec, c->level_added);
    if (c->failed) return;
    if (!c->nlabels) {
        /* Loki refuses a whole push holding a stream without labels: leave the
         * record out instead (all default labels off and no hint found). */
        if (!p->dropped)
            snprintf(p->dropped_why, sizeof(p->dropped_why),
                     "no labels (Loki needs at least one: enable a default label or add a hint)");
        p->dropped++;
        return;
    }

    long si = stream_of(c);
    if (si < 0) return;

    int64_t ts = 0;
    if (api->view_get(c->rec, SY_FIELD_TIME, &v) == SY_OK && v.i) ts = v.i;
    if (!ts && api->view_get(c->rec, SY_FIELD_OBSERVED_TIME, &v) == SY_OK && v.i) ts = v.i;
    if (!ts) ts = now_ns();

    size_t line_off = p->text.len;
    if (format == FMT_JSON) {
        lk__line_json(c, &p->text, scope);
    } else if (format == FMT_LOGFMT) {
        syc_buf_t l = {0};
        lk__line_logfmt(c, &l, scope);
        put(c, &p->text, l.p, l.len);
        free(l.p);
    } else {
        sy_value_t body;
        api->view_get(c->rec, SY_FIELD_BODY, &body);
        lk__put_as_string(c, &p->text, &body);
    }
    if (c->failed) return;
    lk_stream_t *st = &p->streams[si];
    if (st->n == st->cap) {
        size_t ncap = st->cap ? st->cap * 2 : 8;
        lk_entry_t *e = realloc(st->entries, ncap * sizeof(*e));
        if (!e) {
            c->failed = true;
            return;
        }
        st->entries = e;
        st->cap = ncap;
    }
    st->entries[st->n++] = (lk_entry_t){ts, p->entries, line_off, p->text.len - line_off};
    p->entries++;
}

static int entry_cmp(const void *a, const void *b)
{
    const lk_entry_t *x = a, *y = b;
    if (x->ts_ns != y->ts_ns) return x->ts_ns < y->ts_ns ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int lk_translate(const sy_host_api_t *api, sy_batch_t *batch, const lk_defaults_t *defaults,
                 lk_push_t *out)
{
    sy_view_t *view = api->view_open(batch);
    if (!view) return SY_ENOMEM;
    ctx_t *c = calloc(1, sizeof(*c));
    if (!c) {
        api->view_close(view);
        return SY_ENOMEM;
    }
    c->api = api;
    c->defaults = defaults;
    c->out = out;
    sy_view_node_t *root = api->view_root(view);
    size_t nr = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < nr && !c->failed; r++) {
        c->res = api->view_at(root, SY_VIEW_RESOURCES, r);
        size_t ns = api->view_count(c->res, SY_VIEW_SCOPES);
        for (size_t s = 0; s < ns && !c->failed; s++) {
            sy_view_node_t *scope = api->view_at(c->res, SY_VIEW_SCOPES, s);
            size_t ni = api->view_count(scope, SY_VIEW_ITEMS);
            for (size_t i = 0; i < ni && !c->failed; i++) {
                c->rec = api->view_at(scope, SY_VIEW_ITEMS, i);
                if (!out->tenant) lk_tenant(api, c->res, c->rec, &out->tenant, &out->tenant_len);
                translate_record(c, scope);
            }
        }
    }
    for (size_t i = 0; i < out->n; i++)
        if (out->streams[i].n > 1)
            qsort(out->streams[i].entries, out->streams[i].n, sizeof(lk_entry_t), entry_cmp);
    int rc = c->failed ? SY_ENOMEM : SY_OK;
    free(c->scratch.p);
    free(c);
    api->view_close(view);
    return rc;
}

void lk_push_free(lk_push_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->streams[i].entries);
    free(p->streams);
    free(p->index);
    free(p->text.p);
    memset(p, 0, sizeof(*p));
}

void lk_tenant(const sy_host_api_t *api, sy_view_node_t *resource, sy_view_node_t *record,
               const char **tenant, size_t *len)
{
    sy_value_t hint, t;
    *tenant = "";
    *len = 0;
    if (api->view_attr_get(resource, HINT_TENANT, strlen(HINT_TENANT), &hint) != SY_OK &&
        api->view_attr_get(record, HINT_TENANT, strlen(HINT_TENANT), &hint) != SY_OK)
        return;
    /* hintAttr.Str(): "" unless a string */
    const char *name = hint.type == SY_VALUE_STRING ? hint.str : "";
    size_t nlen = hint.type == SY_VALUE_STRING ? hint.len : 0;
    if (api->view_attr_get(resource, name, nlen, &t) != SY_OK &&
        api->view_attr_get(record, name, nlen, &t) != SY_OK)
        return;
    if (t.type == SY_VALUE_STRING) {
        *tenant = t.str;
        *len = t.len;
    }
}
