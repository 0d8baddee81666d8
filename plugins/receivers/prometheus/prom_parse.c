/*
 * prom_parse.c - the Prometheus text format 0.0.4 and OpenMetrics 1.0, line by line.
 *
 * What is accepted follows Prometheus's own parsers (model/textparse): the text
 * format lets blanks run anywhere between tokens, treats "#" lines other than HELP
 * and TYPE as comments, and takes millisecond timestamps; OpenMetrics adds UNIT,
 * more types, second timestamps with fractions, exemplars (read and dropped) and a
 * mandatory "# EOF" with nothing after it. Label values and help texts are
 * unescaped (\\, \" and \n; any other escape is kept as written) and must be
 * UTF-8. Any error refuses the whole document, as a failed scrape in Prometheus.
 */
#include "prom_parse.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "utf8.h"

/* ---- arena --------------------------------------------------------------------- */

struct prom_chunk_s {
    prom_chunk_t *next;
    size_t pad; /* keeps data 16-byte aligned */
    _Alignas(16) unsigned char data[];
};

void *prom_arena_alloc(prom_arena_t *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0) size = 16;
    if (a->limit && (size > a->limit || a->total > a->limit - size)) return NULL;
    if (!a->head || a->cap - a->used < size) {
        size_t cap = size > 16384 ? size : 16384;
        prom_chunk_t *c = malloc(sizeof(*c) + cap);
        if (!c) return NULL;
        c->next = a->head;
        a->head = c;
        a->used = 0;
        a->cap = cap;
    }
    void *p = a->head->data + a->used;
    a->used += size;
    a->total += size;
    return p;
}

char *prom_arena_strndup(prom_arena_t *a, const char *s, size_t n)
{
    char *p = prom_arena_alloc(a, n + 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void prom_arena_free(prom_arena_t *a)
{
    prom_chunk_t *c = a->head;
    while (c) {
        prom_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    memset(a, 0, sizeof(*a));
}

/* ---- map ----------------------------------------------------------------------- */

static uint64_t map_hash(const char *key, size_t len)
{
    return syc_fnv1a64(SYC_FNV64_OFFSET, key, len);
}

static prom_map_entry_t *map_find(const prom_map_t *m, const char *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        prom_map_entry_t *e = &m->slots[i];
        if (!e->key) return e;
        if (e->hash == h && e->len == len && !memcmp(e->key, key, len)) return e;
    }
}

void *prom_map_get(const prom_map_t *m, const char *key, size_t len)
{
    if (!m->count) return NULL;
    prom_map_entry_t *e = map_find(m, key, len, map_hash(key, len));
    return e->key ? e->value : NULL;
}

int prom_map_put(prom_map_t *m, const char *key, size_t len, void *value)
{
    if ((m->count + 1) * 4 > m->cap * 3) { /* keep the load under 3/4 */
        size_t cap = m->cap ? m->cap * 2 : 16;
        prom_map_entry_t *slots = calloc(cap, sizeof(*slots));
        if (!slots) return -1;
        prom_map_t grown = {slots, cap, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].key) {
                *map_find(&grown, m->slots[i].key, m->slots[i].len, m->slots[i].hash) = m->slots[i];
                grown.count++;
            }
        free(m->slots);
        *m = grown;
    }
    uint64_t h = map_hash(key, len);
    prom_map_entry_t *e = map_find(m, key, len, h);
    if (!e->key) {
        e->key = key;
        e->len = len;
        e->hash = h;
        m->count++;
    }
    e->value = value;
    return 0;
}

void prom_map_free(prom_map_t *m)
{
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

/* ---- names --------------------------------------------------------------------- */

static bool name_start(char c, bool colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool name_char(char c, bool colon)
{
    return name_start(c, colon) || (c >= '0' && c <= '9');
}

bool prom_valid_metric_name(const char *s, size_t n)
{
    if (!n || !name_start(s[0], true)) return false;
    for (size_t i = 1; i < n; i++)
        if (!name_char(s[i], true)) return false;
    return true;
}

bool prom_valid_label_name(const char *s, size_t n)
{
    if (!n || !name_start(s[0], false)) return false;
    for (size_t i = 1; i < n; i++)
        if (!name_char(s[i], false)) return false;
    return true;
}

static const char *const type_names[] = {
    [PROM_UNKNOWN] = "unknown",   [PROM_COUNTER] = "counter",
    [PROM_GAUGE] = "gauge",       [PROM_HISTOGRAM] = "histogram",
    [PROM_SUMMARY] = "summary",   [PROM_INFO] = "info",
    [PROM_STATESET] = "stateset", [PROM_GAUGEHISTOGRAM] = "gaugehistogram",
};

const char *prom_type_name(prom_type_t t)
{
    return (unsigned)t < sizeof(type_names) / sizeof(type_names[0]) ? type_names[t] : "?";
}

/* ---- the line scanner ---------------------------------------------------------- */

typedef struct scan_s {
    prom_doc_t *doc;
    const char *p, *end; /* the current line, without its '\n' */
    size_t line;
    size_t max_samples;
    char *err;
    size_t err_len;
} scan_t;

static int fail(scan_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(scan_t *s, const char *fmt, ...)
{
    int n = snprintf(s->err, s->err_len, "line %zu: ", s->line);
    if (n < 0 || (size_t)n >= s->err_len) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err + n, s->err_len - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int oom(scan_t *s)
{
    return fail(s, "out of memory (the document is over the parser's bound)");
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* The text format lets blanks run; OpenMetrics wants exactly one space. */
static size_t skip_blanks(scan_t *s)
{
    const char *start = s->p;
    while (s->p < s->end && blank(*s->p))
        s->p++;
    return (size_t)(s->p - start);
}

static int need_separator(scan_t *s, const char *what)
{
    size_t n = skip_blanks(s);
    if (n == 0 || (s->doc->openmetrics && (n != 1 || s->p[-1] != ' ')))
        return fail(s, "expected a single space before %s", what);
    return 0;
}

static const char *scan_name(scan_t *s, bool colon, size_t *len)
{
    const char *start = s->p;
    if (s->p >= s->end || !name_start(*s->p, colon)) return NULL;
    while (s->p < s->end && name_char(*s->p, colon))
        s->p++;
    *len = (size_t)(s->p - start);
    return start;
}

/* Unescapes raw[0, n) into the arena: \\ \" \n (and, for label values in the text
 * format, any other escape kept as written). */
static char *unescape(scan_t *s, const char *raw, size_t n, size_t *out_len)
{
    char *out = prom_arena_alloc(&s->doc->arena, n + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (raw[i] == '\\' && i + 1 < n) {
            char c = raw[i + 1];
            if (c == '\\' || c == '"' || c == 'n') {
                out[o++] = c == 'n' ? '\n' : c;
                i++;
                continue;
            }
        }
        out[o++] = raw[i];
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static int parse_double(scan_t *s, const char *tok, size_t n, double *out, const char *what)
{
    char buf[64];
    if (n == 0 || n >= sizeof(buf))
        return fail(s, "invalid %s \"%.*s\"", what, (int)(n > 40 ? 40 : n), tok);
    memcpy(buf, tok, n);
    buf[n] = '\0';
    /* strtod takes hexadecimal without an exponent and blanks first; Go's
     * ParseFloat, which Prometheus uses, does not. */
    for (size_t i = 0; i < n; i++)
        if (buf[i] == 'x' || buf[i] == 'X' || blank(buf[i]))
            return fail(s, "invalid %s \"%s\"", what, buf);
    char *e;
    errno = 0;
    double v = strtod(buf, &e);
    if (*e != '\0') return fail(s, "invalid %s \"%s\"", what, buf);
    *out = v;
    return 0;
}

static const char *scan_token(scan_t *s, size_t *len)
{
    const char *start = s->p;
    while (s->p < s->end && !blank(*s->p))
        s->p++;
    *len = (size_t)(s->p - start);
    return start;
}

/* {name="value",...}: labels into the arena. The text format allows a trailing
 * comma; OpenMetrics does too since 1.0. */
static int scan_labels(scan_t *s, prom_label_t **labels, size_t *nlabels)
{
    prom_label_t tmp[PROM_MAX_LABELS];
    size_t n = 0;
    s->p++; /* '{' */
    for (;;) {
        if (!s->doc->openmetrics) skip_blanks(s);
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            break;
        }
        size_t nl;
        const char *name = scan_name(s, false, &nl);
        if (!name) return fail(s, "expected a label name or '}'");
        if (!s->doc->openmetrics) skip_blanks(s);
        if (s->p >= s->end || *s->p != '=') return fail(s, "expected '=' after label name");
        s->p++;
        if (!s->doc->openmetrics) skip_blanks(s);
        if (s->p >= s->end || *s->p != '"') return fail(s, "expected '\"' to start a label value");
        const char *v = ++s->p;
        while (s->p < s->end && *s->p != '"') {
            if (*s->p == '\\') s->p++;
            s->p++;
        }
        if (s->p >= s->end) return fail(s, "unterminated label value");
        size_t vlen;
        char *value = unescape(s, v, (size_t)(s->p - v), &vlen);
        if (!value) return oom(s);
        s->p++;
        if (!syc_utf8_valid((const uint8_t *)value, vlen))
            return fail(s, "invalid UTF-8 label value");
        for (size_t i = 0; i < n; i++)
            if (strlen(tmp[i].name) == nl && !memcmp(tmp[i].name, name, nl))
                return fail(s, "duplicate label name \"%.*s\"", (int)nl, name);
        if (n == PROM_MAX_LABELS) return fail(s, "more than %d labels", PROM_MAX_LABELS);
        tmp[n].name = prom_arena_strndup(&s->doc->arena, name, nl);
        if (!tmp[n].name) return oom(s);
        tmp[n++].value = value;
        if (!s->doc->openmetrics) skip_blanks(s);
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            continue;
        }
        if (s->p < s->end && *s->p == '}') {
            s->p++;
            break;
        }
        return fail(s, "expected ',' or '}' after a label value");
    }
    *nlabels = n;
    *labels = NULL;
    if (n) {
        *labels = prom_arena_alloc(&s->doc->arena, n * sizeof(**labels));
        if (!*labels) return oom(s);
        memcpy(*labels, tmp, n * sizeof(**labels));
    }
    return 0;
}

static prom_meta_t *meta_get_or_add(scan_t *s, const char *name, size_t nl)
{
    prom_doc_t *d = s->doc;
    prom_meta_t *m = prom_map_get(&d->meta_index, name, nl);
    if (m) return m;
    if (d->nmetas == d->metas_cap) {
        /* Metas live in arena blocks that never move: the index points at them. */
        size_t cap = d->metas_cap ? d->metas_cap * 2 : 64;
        prom_meta_t *block = prom_arena_alloc(&d->arena, cap * sizeof(*block));
        if (!block) return NULL;
        d->metas = block; /* the newest block; older ones stay valid */
        d->metas_cap = cap;
        d->nmetas = 0;
    }
    m = &d->metas[d->nmetas++];
    memset(m, 0, sizeof(*m));
    m->name = prom_arena_strndup(&d->arena, name, nl);
    if (!m->name || prom_map_put(&d->meta_index, m->name, nl, m) != 0) return NULL;
    return m;
}

static int parse_type(scan_t *s, const char *t, size_t n, prom_type_t *out)
{
    static const struct {
        const char *name;
        prom_type_t type;
        bool om_only, text_only;
    } types[] = {
        {"counter", PROM_COUNTER, false, false},
        {"gauge", PROM_GAUGE, false, false},
        {"histogram", PROM_HISTOGRAM, false, false},
        {"summary", PROM_SUMMARY, false, false},
        {"untyped", PROM_UNKNOWN, false, true},
        {"unknown", PROM_UNKNOWN, true, false},
        {"info", PROM_INFO, true, false},
        {"stateset", PROM_STATESET, true, false},
        {"gaugehistogram", PROM_GAUGEHISTOGRAM, true, false},
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strlen(types[i].name) != n || memcmp(types[i].name, t, n)) continue;
        if ((types[i].om_only && !s->doc->openmetrics) ||
            (types[i].text_only && s->doc->openmetrics))
            break;
        *out = types[i].type;
        return 0;
    }
    return fail(s, "invalid metric type \"%.*s\"", (int)(n > 40 ? 40 : n), t);
}

/* "# HELP name text", "# TYPE name type", "# UNIT name unit", "# EOF"; other
 * comments are skipped. */
static int parse_comment(scan_t *s, bool *eof)
{
    s->p++; /* '#' */
    const char *after_hash = s->p;
    size_t n = skip_blanks(s);
    size_t kl;
    const char *kw = scan_token(s, &kl);
    if (n == 1 && kl == 3 && !memcmp(kw, "EOF", 3) && s->p == s->end && s->doc->openmetrics) {
        *eof = true;
        return 0;
    }
    enum { K_HELP, K_TYPE, K_UNIT, K_OTHER } k = K_OTHER;
    if (n >= 1 && kl == 4 && !memcmp(kw, "HELP", 4)) k = K_HELP;
    if (n >= 1 && kl == 4 && !memcmp(kw, "TYPE", 4)) k = K_TYPE;
    if (n >= 1 && kl == 4 && !memcmp(kw, "UNIT", 4) && s->doc->openmetrics) k = K_UNIT;
    if (k == K_OTHER) {
        if (s->doc->openmetrics) {
            s->p = after_hash;
            return fail(
                s, "invalid comment: OpenMetrics allows only # HELP, # TYPE, # UNIT and # EOF");
        }
        return 0; /* a comment */
    }
    if (need_separator(s, "the metric name") != 0) return -1;
    size_t nl;
    const char *name = scan_name(s, true, &nl);
    if (!name) return fail(s, "invalid metric name in # %.4s", kw);
    prom_meta_t *m = meta_get_or_add(s, name, nl);
    if (!m) return oom(s);
    /* The text after the name: one separator, then everything (HELP may be empty). */
    const char *text = s->p;
    if (s->p < s->end) {
        if (!blank(*s->p)) return fail(s, "invalid metric name in # %.4s", kw);
        size_t b = skip_blanks(s);
        if (s->doc->openmetrics && b != 1 && k != K_HELP)
            return fail(s, "expected a single space after the metric name");
        if (s->doc->openmetrics && k == K_HELP) s->p = text + 1;
        text = s->p;
    }
    size_t tl = (size_t)(s->end - text);
    if (k == K_TYPE) {
        while (tl && blank(text[tl - 1]) && !s->doc->openmetrics)
            tl--;
        prom_type_t t = PROM_UNKNOWN;
        if (parse_type(s, text, tl, &t) != 0) return -1;
        if (m->has_type) {
            if (s->doc->openmetrics)
                return fail(s, "second # TYPE line for metric \"%s\"", m->name);
            return 0; /* the text format keeps the first */
        }
        m->type = t;
        m->has_type = true;
    } else if (k == K_HELP) {
        if (m->help) {
            if (s->doc->openmetrics)
                return fail(s, "second # HELP line for metric \"%s\"", m->name);
            return 0;
        }
        size_t hl;
        char *h = unescape(s, text, tl, &hl);
        if (!h) return oom(s);
        if (!syc_utf8_valid((const uint8_t *)h, hl)) return fail(s, "invalid UTF-8 help text");
        m->help = h;
    } else {
        if (m->unit) return fail(s, "second # UNIT line for metric \"%s\"", m->name);
        /* OpenMetrics: the family name must end with _<unit>. */
        if (tl && (nl <= tl + 1 || name[nl - tl - 1] != '_' || memcmp(name + nl - tl, text, tl)))
            return fail(s, "unit \"%.*s\" not a suffix of metric \"%s\"", (int)(tl > 40 ? 40 : tl),
                        text, m->name);
        if (!syc_utf8_valid((const uint8_t *)text, tl)) return fail(s, "invalid UTF-8 unit");
        m->unit = prom_arena_strndup(&s->doc->arena, text, tl);
        if (!m->unit) return oom(s);
    }
    return 0;
}

/* OpenMetrics exemplar: " # {labels} value [timestamp]", read and dropped. */
static int skip_exemplar(scan_t *s)
{
    s->p++; /* '#' */
    if (need_separator(s, "an exemplar") != 0) return -1;
    if (s->p >= s->end || *s->p != '{') return fail(s, "expected '{' to start an exemplar");
    prom_label_t *labels;
    size_t n;
    if (scan_labels(s, &labels, &n) != 0) return -1;
    if (need_separator(s, "the exemplar value") != 0) return -1;
    size_t tl;
    const char *tok = scan_token(s, &tl);
    double v;
    if (parse_double(s, tok, tl, &v, "exemplar value") != 0) return -1;
    if (s->p < s->end) {
        if (need_separator(s, "the exemplar timestamp") != 0) return -1;
        tok = scan_token(s, &tl);
        if (parse_double(s, tok, tl, &v, "exemplar timestamp") != 0) return -1;
    }
    if (s->p != s->end) return fail(s, "unexpected text after the exemplar");
    return 0;
}

static int parse_sample(scan_t *s)
{
    prom_doc_t *d = s->doc;
    if (s->max_samples && d->nsamples >= s->max_samples)
        return fail(s, "more than sample_limit (%zu) samples", s->max_samples);
    size_t nl;
    const char *name = scan_name(s, true, &nl);
    if (!name) return fail(s, "invalid metric name");
    prom_sample_t smp = {0};
    smp.name = prom_arena_strndup(&d->arena, name, nl);
    if (!smp.name) return oom(s);
    const char *after_name = s->p;
    if (!d->openmetrics) skip_blanks(s);
    if (s->p < s->end && *s->p == '{') {
        if (scan_labels(s, &smp.labels, &smp.nlabels) != 0) return -1;
    } else {
        s->p = after_name;
    }
    if (need_separator(s, "the value") != 0) return -1;
    size_t tl;
    const char *tok = scan_token(s, &tl);
    if (parse_double(s, tok, tl, &smp.value, "value") != 0) return -1;
    if (!d->openmetrics)
        skip_blanks(s);
    else if (s->p < s->end && need_separator(s, "the timestamp") != 0)
        return -1;
    if (s->p < s->end && *s->p != '#') {
        tok = scan_token(s, &tl);
        if (d->openmetrics) {
            double secs;
            if (parse_double(s, tok, tl, &secs, "timestamp") != 0) return -1;
            if (!isfinite(secs) || fabs(secs) > 9.2e15)
                return fail(s, "invalid timestamp \"%.*s\"", (int)(tl > 40 ? 40 : tl), tok);
            smp.ts_ms = (int64_t)llround(secs * 1000.0);
        } else {
            char buf[32];
            if (tl == 0 || tl >= sizeof(buf))
                return fail(s, "invalid timestamp \"%.*s\"", (int)(tl > 40 ? 40 : tl), tok);
            memcpy(buf, tok, tl);
            buf[tl] = '\0';
            char *e;
            errno = 0;
            long long ts = strtoll(buf, &e, 10);
            if (*e != '\0' || errno == ERANGE) return fail(s, "invalid timestamp \"%s\"", buf);
            smp.ts_ms = ts;
        }
        smp.has_ts = true;
        if (!d->openmetrics)
            skip_blanks(s);
        else if (s->p < s->end && need_separator(s, "an exemplar") != 0)
            return -1;
    }
    if (s->p < s->end) {
        if (!d->openmetrics || *s->p != '#')
            return fail(s, "unexpected text after the %s", smp.has_ts ? "timestamp" : "value");
        if (skip_exemplar(s) != 0) return -1;
    }
    if (d->nsamples == d->samples_cap) {
        size_t cap = d->samples_cap ? d->samples_cap * 2 : 256;
        prom_sample_t *grown = realloc(d->samples, cap * sizeof(*grown));
        if (!grown) return oom(s);
        d->samples = grown;
        d->samples_cap = cap;
    }
    d->samples[d->nsamples++] = smp;
    return 0;
}

int prom_parse(prom_doc_t *doc, const char *data, size_t len, bool openmetrics, size_t max_samples,
               char *err, size_t err_len)
{
    doc->openmetrics = openmetrics;
    doc->arena.limit = PROM_MAX_ARENA;
    scan_t s = {.doc = doc, .max_samples = max_samples, .err = err, .err_len = err_len};
    const char *p = data, *end = data + len;
    bool eof = false;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        s.line++;
        s.p = p;
        s.end = line_end;
        p = nl ? nl + 1 : end;
        if (eof) return fail(&s, "unexpected data after # EOF");
        if (memchr(s.p, '\0', (size_t)(s.end - s.p))) return fail(&s, "NUL byte in the document");
        if (!openmetrics) skip_blanks(&s);
        if (s.p == s.end) {
            if (openmetrics) return fail(&s, "empty line (not allowed in OpenMetrics)");
            continue;
        }
        int rc = *s.p == '#' ? parse_comment(&s, &eof) : parse_sample(&s);
        if (rc != 0) return -1;
        if (eof && nl && p < end) {
            s.line++;
            return fail(&s, "unexpected data after # EOF");
        }
    }
    if (openmetrics && !eof) {
        s.line++;
        return fail(&s, "the document does not end with # EOF");
    }
    return 0;
}

const prom_meta_t *prom_doc_meta(const prom_doc_t *doc, const char *name)
{
    return prom_map_get(&doc->meta_index, name, strlen(name));
}

void prom_doc_free(prom_doc_t *doc)
{
    free(doc->samples);
    prom_map_free(&doc->meta_index);
    prom_arena_free(&doc->arena);
    memset(doc, 0, sizeof(*doc));
}
