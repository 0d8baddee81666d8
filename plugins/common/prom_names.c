/*
 * prom_names.c - OTLP names to Prometheus names (see prom_names.h). The rules are
 * those of github.com/prometheus/otlptranslator, which the collector's prometheus
 * exporter uses; the comments name the function of that package each piece follows.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prom_names.h"

/* A name longer than this is cut: Prometheus has no limit, but we bound memory. */
#define PROM_NAME_MAX 4096
/* Arrays and maps in label values nest at most this deep; deeper levels are null. */
#define PROM_JSON_DEPTH 16

typedef struct unit_map_s {
    const char *otel;
    const char *prom;
} unit_map_t;

/* unitMap: UCUM units to Prometheus base-unit words. */
static const unit_map_t unit_map[] = {
    {"d", "days"},
    {"h", "hours"},
    {"min", "minutes"},
    {"s", "seconds"},
    {"ms", "milliseconds"},
    {"us", "microseconds"},
    {"ns", "nanoseconds"},
    {"By", "bytes"},
    {"KiBy", "kibibytes"},
    {"MiBy", "mebibytes"},
    {"GiBy", "gibibytes"},
    {"TiBy", "tibibytes"},
    {"KBy", "kilobytes"},
    {"MBy", "megabytes"},
    {"GBy", "gigabytes"},
    {"TBy", "terabytes"},
    {"m", "meters"},
    {"V", "volts"},
    {"A", "amperes"},
    {"J", "joules"},
    {"W", "watts"},
    {"g", "grams"},
    {"Cel", "celsius"},
    {"Hz", "hertz"},
    {"1", ""},
    {"%", "percent"},
};

/* perUnitMap: the unit after '/' ("By/s" is bytes per second). */
static const unit_map_t per_unit_map[] = {
    {"s", "second"}, {"m", "minute"}, {"h", "hour"}, {"d", "day"},
    {"w", "week"},   {"mo", "month"}, {"y", "year"},
};

static const char *const strategy_names[] = {
    "UnderscoreEscapingWithSuffixes",
    "UnderscoreEscapingWithoutSuffixes",
    "NoUTF8EscapingWithSuffixes",
    "NoTranslation",
};

int syc_prom_strategy_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(strategy_names) / sizeof(strategy_names[0])); i++)
        if (strcmp(s, strategy_names[i]) == 0) return i;
    return -1;
}

syc_prom_namer_t syc_prom_namer_for(int strategy, bool add_metric_suffixes, const char *ns)
{
    syc_prom_namer_t n = {.ns = ns ? ns : "", .suffixes = add_metric_suffixes, .utf8 = false};
    switch (strategy) {
    case SYC_PROM_UNDERSCORE_ESCAPING_WITH_SUFFIXES:
        n.suffixes = true;
        break;
    case SYC_PROM_UNDERSCORE_ESCAPING_WITHOUT_SUFFIXES:
        n.suffixes = false;
        break;
    case SYC_PROM_NO_UTF8_ESCAPING_WITH_SUFFIXES:
        n.suffixes = true;
        n.utf8 = true;
        break;
    case SYC_PROM_NO_TRANSLATION:
        n.suffixes = false;
        n.utf8 = true;
        break;
    default:
        break;
    }
    return n;
}

/* isValidCompliantMetricChar: [a-zA-Z0-9:] (the underscore separates tokens). */
static bool is_metric_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':';
}

static bool is_label_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static const char *map_get(const unit_map_t *map, size_t n, const char *key, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(map[i].otel) == len && memcmp(map[i].otel, key, len) == 0) return map[i].prom;
    return NULL;
}

/* A slice of a string. */
typedef struct span_s {
    const char *p;
    size_t n;
} span_t;

static span_t trim_space(const char *p, size_t n)
{
    while (n > 0 &&
           (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\v' || *p == '\f')) {
        p++;
        n--;
    }
    while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\n' || p[n - 1] == '\r' ||
                     p[n - 1] == '\v' || p[n - 1] == '\f'))
        n--;
    return (span_t){p, n};
}

static bool has_brace(span_t s)
{
    return memchr(s.p, '{', s.n) || memchr(s.p, '}', s.n);
}

/*
 * buildUnitSuffixes: the main unit (before '/') and the per unit (after it, as
 * "per_<word>"), mapped but not cleaned, appended to `main` and `per`.
 */
static void unit_suffixes(const char *unit, syc_prom_buf_t *main, syc_prom_buf_t *per)
{
    size_t len = strlen(unit);
    const char *slash = memchr(unit, '/', len);
    size_t main_len = slash ? (size_t)(slash - unit) : len;
    span_t m = trim_space(unit, main_len);
    if (m.n > 0 && !has_brace(m)) {
        const char *w = map_get(unit_map, sizeof(unit_map) / sizeof(unit_map[0]), m.p, m.n);
        if (w)
            syc_prom_buf_str(main, w);
        else
            syc_prom_buf_put(main, m.p, m.n);
    }
    if (slash && slash[1] != '\0') {
        span_t q = trim_space(slash + 1, len - main_len - 1);
        if (q.n > 0 && !has_brace(q)) {
            const char *w =
                map_get(per_unit_map, sizeof(per_unit_map) / sizeof(per_unit_map[0]), q.p, q.n);
            syc_prom_buf_str(per, "per_");
            if (w)
                syc_prom_buf_str(per, w);
            else
                syc_prom_buf_put(per, q.p, q.n);
        }
    }
}

/* cleanUpUnit: invalid characters to '_', runs of '_' to one, one leading '_' off. */
static void clean_unit(syc_prom_buf_t *b)
{
    if (b->failed || b->len == 0) return;
    size_t o = 0;
    for (size_t i = 0; i < b->len; i++) {
        char c = is_metric_char((unsigned char)b->data[i]) ? b->data[i] : '_';
        if (c == '_' && o > 0 && b->data[o - 1] == '_') continue;
        b->data[o++] = c;
    }
    size_t skip = (o > 0 && b->data[0] == '_') ? 1 : 0;
    memmove(b->data, b->data + skip, o - skip);
    syc_prom_buf_truncate(b, o - skip);
}

void syc_prom_unit_name(syc_prom_buf_t *out, const char *unit, bool utf8)
{
    syc_prom_buf_t main, per;
    syc_prom_buf_init(&main, PROM_NAME_MAX);
    syc_prom_buf_init(&per, PROM_NAME_MAX);
    unit_suffixes(unit, &main, &per);
    if (!utf8) {
        clean_unit(&main);
        clean_unit(&per);
    }
    size_t start = out->len;
    syc_prom_buf_put(out, main.data, main.len);
    if (main.len && per.len) syc_prom_buf_char(out, '_');
    syc_prom_buf_put(out, per.data, per.len);
    /* UnitNamer.Build trims one leading and one trailing underscore. */
    if (!out->failed && out->len > start && out->data[start] == '_') {
        memmove(out->data + start, out->data + start + 1, out->len - start - 1);
        syc_prom_buf_truncate(out, out->len - 1);
    }
    if (!out->failed && out->len > start && out->data[out->len - 1] == '_')
        syc_prom_buf_truncate(out, out->len - 1);
    syc_prom_buf_free(&main);
    syc_prom_buf_free(&per);
}

/* The token list of normalizeName; tokens point into the name or into buffers that
 * live as long as the list. */
typedef struct tokens_s {
    span_t *v;
    size_t n, cap;
} tokens_t;

static bool tokens_add(tokens_t *t, const char *p, size_t n)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        span_t *v = realloc(t->v, cap * sizeof(*v));
        if (!v) return false;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = (span_t){p, n};
    return true;
}

static bool tokens_contains(const tokens_t *t, const char *p, size_t n)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->v[i].n == n && memcmp(t->v[i].p, p, n) == 0) return true;
    return false;
}

static void tokens_remove(tokens_t *t, const char *word)
{
    size_t n = strlen(word), o = 0;
    for (size_t i = 0; i < t->n; i++)
        if (!(t->v[i].n == n && memcmp(t->v[i].p, word, n) == 0)) t->v[o++] = t->v[i];
    t->n = o;
}

/* strings.FieldsFunc(s, !valid) as spans. */
static bool tokens_split(tokens_t *t, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && !is_metric_char((unsigned char)s[i]))
            i++;
        size_t start = i;
        while (i < len && is_metric_char((unsigned char)s[i]))
            i++;
        if (i > start && !tokens_add(t, s + start, i - start)) return false;
    }
    return true;
}

/* Joins the fields of `s` between characters outside [a-zA-Z0-9:_] with '_'. */
static void put_fields(syc_prom_buf_t *out, const char *s, size_t len)
{
    bool first = true;
    size_t i = 0;
    while (i < len) {
        while (i < len && !(is_metric_char((unsigned char)s[i]) || s[i] == '_'))
            i++;
        size_t start = i;
        while (i < len && (is_metric_char((unsigned char)s[i]) || s[i] == '_'))
            i++;
        if (i > start) {
            if (!first) syc_prom_buf_char(out, '_');
            syc_prom_buf_put(out, s + start, i - start);
            first = false;
        }
    }
}

/* normalizeName: the name in tokens, unit tokens, "_total", "_ratio", namespace. */
static void normalize_name(syc_prom_buf_t *out, const syc_prom_namer_t *nm, const char *name,
                           const char *unit, syc_prom_mtype_t type)
{
    tokens_t t = {0};
    syc_prom_buf_t main, per, ns;
    syc_prom_buf_init(&main, PROM_NAME_MAX);
    syc_prom_buf_init(&per, PROM_NAME_MAX);
    syc_prom_buf_init(&ns, PROM_NAME_MAX);
    bool ok = true;

    if (nm->ns[0] != '\0') {
        put_fields(&ns, nm->ns, strlen(nm->ns));
        ok = ns.failed || ns.len == 0 || tokens_add(&t, ns.data, ns.len);
    }
    size_t first_name_token = t.n;
    ok = ok && tokens_split(&t, name, strlen(name));

    unit_suffixes(unit, &main, &per);
    clean_unit(&main);
    clean_unit(&per);
    /* addUnitTokens, against the name's own tokens. */
    tokens_t name_tokens = {t.v ? t.v + first_name_token : NULL, t.n - first_name_token, 0};
    size_t main_n = main.failed ? 0 : main.len, per_n = per.failed ? 0 : per.len;
    if (main_n && tokens_contains(&name_tokens, main.data, main_n)) main_n = 0;
    if (per_n == 4 && memcmp(per.data, "per_", 4) == 0) {
        per_n = 0;
    } else {
        if (per_n && per.data[per_n - 1] == '_') per_n--;
        if (per_n && tokens_contains(&name_tokens, per.data, per_n)) per_n = 0;
    }
    if (per_n && main_n && main.data[main_n - 1] == '_') main_n--;
    if (ok && main_n) ok = tokens_add(&t, main.data, main_n);
    if (ok && per_n) ok = tokens_add(&t, per.data, per_n);

    if (ok && type == SYC_PROM_MT_COUNTER) {
        tokens_remove(&t, "total");
        ok = tokens_add(&t, "total", 5);
    }
    if (ok && type == SYC_PROM_MT_GAUGE && strcmp(unit, "1") == 0) {
        tokens_remove(&t, "ratio");
        ok = tokens_add(&t, "ratio", 5);
    }
    /* The namespace token, if any, is the first one; it was added first. */
    if (ok) {
        size_t start = out->len;
        for (size_t i = 0; i < t.n; i++) {
            if (i > 0) syc_prom_buf_char(out, '_');
            syc_prom_buf_put(out, t.v[i].p, t.v[i].n);
        }
        if (!out->failed && out->len > start && is_digit((unsigned char)out->data[start])) {
            syc_prom_buf_char(out, '_'); /* room for the prefix, then shift */
            if (!out->failed) {
                memmove(out->data + start + 1, out->data + start, out->len - start - 1);
                out->data[start] = '_';
            }
        }
    } else {
        out->failed = true;
    }
    free(t.v);
    syc_prom_buf_free(&main);
    syc_prom_buf_free(&per);
    syc_prom_buf_free(&ns);
}

/* trimSuffixAndDelimiter on out[start..). */
static void trim_suffix_delim(syc_prom_buf_t *out, size_t start, const char *suffix, size_t n)
{
    size_t len = out->len - start;
    if (len > n + 1 && memcmp(out->data + out->len - n, suffix, n) == 0)
        syc_prom_buf_truncate(out, out->len - n - 1);
}

/* buildMetricName: UTF-8 allowed; suffixes appended unless already there. */
static void utf8_name(syc_prom_buf_t *out, const syc_prom_namer_t *nm, const char *name,
                      const char *unit, syc_prom_mtype_t type)
{
    size_t start = out->len;
    if (nm->ns[0] != '\0') {
        syc_prom_buf_str(out, nm->ns);
        syc_prom_buf_char(out, '_');
    }
    syc_prom_buf_str(out, name);
    if (!nm->suffixes || out->failed) return;
    bool ratio = strcmp(unit, "1") == 0 && type == SYC_PROM_MT_GAUGE;
    bool total = type == SYC_PROM_MT_COUNTER;
    if (ratio) trim_suffix_delim(out, start, "ratio", 5);
    if (total) trim_suffix_delim(out, start, "total", 5);
    syc_prom_buf_t main, per;
    syc_prom_buf_init(&main, PROM_NAME_MAX);
    syc_prom_buf_init(&per, PROM_NAME_MAX);
    unit_suffixes(unit, &main, &per);
    if (per.len && !per.failed) trim_suffix_delim(out, start, per.data, per.len);
    if (main.len && !main.failed) {
        size_t len = out->len - start;
        if (!(len >= main.len &&
              memcmp(out->data + out->len - main.len, main.data, main.len) == 0)) {
            syc_prom_buf_char(out, '_');
            syc_prom_buf_put(out, main.data, main.len);
        }
    }
    if (per.len && !per.failed) {
        syc_prom_buf_char(out, '_');
        syc_prom_buf_put(out, per.data, per.len);
    }
    if (total) syc_prom_buf_str(out, "_total");
    if (ratio) syc_prom_buf_str(out, "_ratio");
    syc_prom_buf_free(&main);
    syc_prom_buf_free(&per);
}

/* True if out[start..) is empty, or made of underscores only while differing from
 * the input: buildCompliantMetricName refuses those. */
static bool refused(const syc_prom_buf_t *out, size_t start, const char *in, size_t in_len)
{
    size_t len = out->len - start;
    if (len == 0) return true;
    if (len == in_len && memcmp(out->data + start, in, len) == 0) return false;
    for (size_t i = start; i < out->len; i++)
        if (out->data[i] != '_') return false;
    return true;
}

int syc_prom_metric_name(syc_prom_buf_t *out, const syc_prom_namer_t *nm, const char *name,
                         const char *unit, syc_prom_mtype_t type)
{
    size_t start = out->len;
    if (!name) name = "";
    if (!unit) unit = "";
    if (nm->utf8) {
        utf8_name(out, nm, name, unit, type);
        if (out->failed || out->len == start) goto fail;
        return 0;
    }
    if (nm->suffixes) {
        normalize_name(out, nm, name, unit, type);
    } else {
        if (nm->ns[0] != '\0') {
            put_fields(out, nm->ns, strlen(nm->ns));
            syc_prom_buf_char(out, '_');
            put_fields(out, name, strlen(name));
        } else {
            put_fields(out, name, strlen(name));
            if (!out->failed && out->len > start && is_digit((unsigned char)out->data[start])) {
                syc_prom_buf_char(out, '_');
                if (!out->failed) {
                    memmove(out->data + start + 1, out->data + start, out->len - start - 1);
                    out->data[start] = '_';
                }
            }
        }
    }
    if (out->failed || refused(out, start, name, strlen(name))) goto fail;
    return 0;
fail:
    if (!out->failed) syc_prom_buf_truncate(out, start);
    return -1;
}

/* True if s[0..n) is made of underscores only. */
static bool underscores_only(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '_') return false;
    return true;
}

/*
 * LabelNamer.Build of the current otlptranslator, whose defaults the collector
 * uses: every run of characters outside [a-zA-Z0-9] (a multi-byte character counts
 * as one) becomes one '_'; a reserved name "__x__" keeps its double underscores
 * around the sanitized inside; a leading digit gets "key_" before it; a name made
 * of underscores only is refused.
 */
int syc_prom_label_name(syc_prom_buf_t *out, const char *key, size_t n, bool utf8)
{
    size_t start = out->len;
    if (n == 0) return -1;
    if (utf8) {
        if (underscores_only(key, n)) return -1;
        syc_prom_buf_put(out, key, n);
        return out->failed ? -1 : 0;
    }
    bool reserved =
        n > 4 && key[0] == '_' && key[1] == '_' && key[n - 2] == '_' && key[n - 1] == '_';
    const unsigned char *p = (const unsigned char *)key;
    size_t i = 0, end = n;
    if (reserved) {
        i = 2;
        end = n - 2;
        syc_prom_buf_str(out, "__");
    } else if (is_digit(p[0])) {
        syc_prom_buf_str(out, "key_");
    }
    bool prev_underscore = false;
    while (i < end) {
        size_t len = p[i] < 0x80 ? 1 : syc_prom_utf8_len(p + i, end - i);
        if (len == 0) len = 1;
        if (len == 1 && is_label_char(p[i]) && p[i] != '_') {
            syc_prom_buf_char(out, (char)p[i]);
            prev_underscore = false;
        } else if (!prev_underscore) {
            syc_prom_buf_char(out, '_');
            prev_underscore = true;
        }
        i += len;
    }
    if (reserved) syc_prom_buf_str(out, "__");
    if (out->failed || underscores_only(out->data + start, out->len - start)) {
        if (!out->failed) syc_prom_buf_truncate(out, start);
        return -1;
    }
    return 0;
}

static bool is_legacy_rune(unsigned char c, size_t i, bool metric)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (metric && c == ':') ||
           (c >= '0' && c <= '9' && i > 0);
}

bool syc_prom_is_legacy_name(const char *name, size_t n, bool metric)
{
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++)
        if (!is_legacy_rune((unsigned char)name[i], i, metric)) return false;
    return true;
}

void syc_prom_escape_legacy(syc_prom_buf_t *out, const char *name, size_t n, bool metric)
{
    const unsigned char *p = (const unsigned char *)name;
    for (size_t i = 0; i < n;) {
        size_t len = p[i] < 0x80 ? 1 : syc_prom_utf8_len(p + i, n - i);
        if (len == 0) len = 1;
        syc_prom_buf_char(out, (len == 1 && is_legacy_rune(p[i], i, metric)) ? (char)p[i] : '_');
        i += len;
    }
}

/* ------------------------------------------------------------------------ */
/* Attribute values                                                          */
/* ------------------------------------------------------------------------ */

static void put_base64(syc_prom_buf_t *out, const uint8_t *p, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < n) v |= (uint32_t)p[i + 1] << 8;
        if (i + 2 < n) v |= p[i + 2];
        char q[4] = {tbl[v >> 18], tbl[(v >> 12) & 63], i + 1 < n ? tbl[(v >> 6) & 63] : '=',
                     i + 2 < n ? tbl[v & 63] : '='};
        syc_prom_buf_put(out, q, 4);
    }
}

/* A JSON string as Go's encoding/json writes it (HTML characters escaped too). */
static void put_json_string(syc_prom_buf_t *out, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    syc_prom_buf_char(out, '"');
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t len = syc_prom_utf8_len(p + i, n - i);
            if (len == 0) {
                syc_prom_buf_str(out, "\\ufffd");
                i++;
            } else {
                syc_prom_buf_put(out, p + i, len);
                i += len;
            }
            continue;
        }
        if (c == '"' || c == '\\') {
            syc_prom_buf_char(out, '\\');
            syc_prom_buf_char(out, (char)c);
        } else if (c == '\n') {
            syc_prom_buf_str(out, "\\n");
        } else if (c == '\r') {
            syc_prom_buf_str(out, "\\r");
        } else if (c == '\t') {
            syc_prom_buf_str(out, "\\t");
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            syc_prom_buf_put(out, u, 6);
        } else {
            syc_prom_buf_char(out, (char)c);
        }
        i++;
    }
    syc_prom_buf_char(out, '"');
}

static int kv_cmp(const void *a, const void *b)
{
    const Opentelemetry__Proto__Common__V1__KeyValue *x =
        *(const Opentelemetry__Proto__Common__V1__KeyValue *const *)a;
    const Opentelemetry__Proto__Common__V1__KeyValue *y =
        *(const Opentelemetry__Proto__Common__V1__KeyValue *const *)b;
    return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static void put_json_value(syc_prom_buf_t *out, const Opentelemetry__Proto__Common__V1__AnyValue *v,
                           int depth)
{
    if (!v || depth > PROM_JSON_DEPTH) {
        syc_prom_buf_str(out, "null");
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        put_json_string(out, v->string_value, strlen(v->string_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        syc_prom_buf_char(out, '"');
        put_base64(out, v->bytes_value.data, v->bytes_value.len);
        syc_prom_buf_char(out, '"');
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        const Opentelemetry__Proto__Common__V1__ArrayValue *a = v->array_value;
        syc_prom_buf_char(out, '[');
        for (size_t i = 0; a && i < a->n_values; i++) {
            if (i) syc_prom_buf_char(out, ',');
            put_json_value(out, a->values[i], depth + 1);
        }
        syc_prom_buf_char(out, ']');
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE: {
        const Opentelemetry__Proto__Common__V1__KeyValueList *l = v->kvlist_value;
        size_t n = l ? l->n_values : 0;
        /* Go's encoding/json sorts map keys; sort a copy of the pointers. */
        Opentelemetry__Proto__Common__V1__KeyValue **kv = n ? malloc(n * sizeof(*kv)) : NULL;
        if (n && !kv) {
            out->failed = true;
            return;
        }
        if (n) memcpy(kv, l->values, n * sizeof(*kv));
        if (n > 1) qsort(kv, n, sizeof(*kv), kv_cmp);
        syc_prom_buf_char(out, '{');
        for (size_t i = 0; i < n; i++) {
            if (i) syc_prom_buf_char(out, ',');
            const char *k = kv[i] && kv[i]->key ? kv[i]->key : "";
            put_json_string(out, k, strlen(k));
            syc_prom_buf_char(out, ':');
            put_json_value(out, kv[i] ? kv[i]->value : NULL, depth + 1);
        }
        syc_prom_buf_char(out, '}');
        free(kv);
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET:
        syc_prom_buf_str(out, "null");
        break;
    default:
        syc_prom_attr_value(out, v);
        break;
    }
}

void syc_prom_attr_value(syc_prom_buf_t *out, const Opentelemetry__Proto__Common__V1__AnyValue *v)
{
    if (!v) return;
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        syc_prom_buf_str(out, v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        syc_prom_buf_str(out, v->bool_value ? "true" : "false");
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        syc_prom_buf_i64(out, v->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        syc_prom_buf_float_attr(out, v->double_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        put_base64(out, v->bytes_value.data, v->bytes_value.len);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        put_json_value(out, v, 0);
        break;
    default:
        break;
    }
}
