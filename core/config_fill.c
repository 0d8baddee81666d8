/*
 * config_fill.c - filling a plugin's configuration struct from its field table,
 * and the duration and size syntaxes the collector's users write.
 *
 * Like nginx's command tables, each field names the offset it fills; all type
 * checking and defaulting happens here, so a plugin's validate() sees typed
 * values only.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <regex.h>
#include <strings.h>

/* ------------------------------------------------------------------------ */
/* Durations and sizes                                                       */
/* ------------------------------------------------------------------------ */

typedef struct unit_s {
    const char *name;
    uint64_t scale;
} unit_t;

/* Longer names first, so that "ms" is not read as "m" followed by "s". */
static const unit_t duration_units[] = {
    {"ns", 1ull},
    {"us", 1000ull},
    {"\xc2\xb5s", 1000ull}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000ull}, /* U+03BC Greek small mu */
    {"ms", 1000000ull},
    {"s", 1000000000ull},
    {"m", 60ull * 1000000000ull},
    {"h", 3600ull * 1000000000ull},
};

int sy__parse_duration(const char *s, int64_t *ns)
{
    unsigned __int128 total = 0;
    bool neg = false;

    if (!s) return -1;
    if (*s == '-' || *s == '+') neg = *s++ == '-';
    if (!strcmp(s, "0")) {
        *ns = 0;
        return 0;
    }
    if (!*s) return -1;
    while (*s) {
        uint64_t whole = 0, frac = 0, fscale = 1;
        bool digits = false;
        while (*s >= '0' && *s <= '9') {
            uint64_t digit = (uint64_t)(*s++ - '0');
            if (whole > (UINT64_MAX - digit) / 10) return -1;
            whole = whole * 10 + digit;
            digits = true;
        }
        if (*s == '.') {
            s++;
            while (*s >= '0' && *s <= '9') {
                /* Digits past nanosecond precision of an hour are dropped. */
                if (fscale < 1000000000000000000ull) {
                    frac = frac * 10 + (uint64_t)(*s - '0');
                    fscale *= 10;
                }
                s++;
                digits = true;
            }
        }
        if (!digits) return -1;
        const unit_t *u = NULL;
        for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
            size_t len = strlen(duration_units[i].name);
            if (!strncmp(s, duration_units[i].name, len)) {
                u = &duration_units[i];
                s += len;
                break;
            }
        }
        if (!u) return -1; /* a unit is required ("5" is not a duration) */
        total += (unsigned __int128)whole * u->scale + (unsigned __int128)frac * u->scale / fscale;
        if (total > (unsigned __int128)INT64_MAX) return -1;
    }
    *ns = neg ? -(int64_t)total : (int64_t)total;
    return 0;
}

static const unit_t size_units[] = {
    {"", 1ull},
    {"b", 1ull},
    {"kb", 1000ull},
    {"mb", 1000ull * 1000},
    {"gb", 1000ull * 1000 * 1000},
    {"tb", 1000ull * 1000 * 1000 * 1000},
    {"kib", 1ull << 10},
    {"mib", 1ull << 20},
    {"gib", 1ull << 30},
    {"tib", 1ull << 40},
};

int sy__parse_size(const char *s, uint64_t *bytes)
{
    uint64_t n = 0;
    if (!s || !(*s >= '0' && *s <= '9')) return -1;
    while (*s >= '0' && *s <= '9') {
        uint64_t digit = (uint64_t)(*s++ - '0');
        if (n > (UINT64_MAX - digit) / 10) return -1;
        n = n * 10 + digit;
    }
    while (*s == ' ')
        s++;
    for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
        if (strcasecmp(s, size_units[i].name) != 0) continue;
        if (n > UINT64_MAX / size_units[i].scale) return -1;
        *bytes = n * size_units[i].scale;
        return 0;
    }
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Filling                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct fill_s {
    const char *id;
    const sy_config_field_t *fields;
    size_t nfields;
    sy__diag_t *diag;
    int errors;
} fill_t;

static void fill_error(fill_t *f, const sy_cfg_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fill_error(fill_t *f, const sy_cfg_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sy__diag_vadd(f->diag, at, fmt, ap);
    va_end(ap);
    f->errors++;
}

/* Describes a value for "got ...": the scalar quoted (cut at 64 bytes), or its kind. */
static const char *describe(const sy_cfg_node_t *v, char *buf, size_t len)
{
    switch (v->kind) {
    case SY__CFG_MAP:
        return "a map";
    case SY__CFG_LIST:
        return "a list";
    case SY__CFG_NULL:
        return "null";
    default:
        snprintf(buf, len, "\"%.64s%s\"", v->scalar, strlen(v->scalar) > 64 ? "..." : "");
        return buf;
    }
}

static const sy_config_field_t *field_find(const fill_t *f, const char *path)
{
    for (size_t i = 0; i < f->nfields; i++)
        if (!strcmp(f->fields[i].name, path)) return &f->fields[i];
    return NULL;
}

/* True when some field lies below `path` ("protocols" for "protocols.grpc.endpoint"). */
static bool field_is_prefix(const fill_t *f, const char *path)
{
    size_t len = strlen(path);
    for (size_t i = 0; i < f->nfields; i++)
        if (!strncmp(f->fields[i].name, path, len) && f->fields[i].name[len] == '.') return true;
    return false;
}

/* Reports every key of `map` (at dotted `prefix`) that no field names. */
static void check_keys(fill_t *f, const sy_cfg_node_t *map, const char *prefix, int depth)
{
    char got[96];
    for (size_t i = 0; i < map->len; i++) {
        const char *key = map->keys[i];
        const sy_cfg_node_t *v = map->items[i];
        char *path = NULL;
        if (asprintf(&path, "%s%s%s", prefix, *prefix ? "." : "", key) < 0) {
            fill_error(f, map, "out of memory");
            return;
        }
        const sy_config_field_t *field = strchr(key, '.') ? NULL : field_find(f, path);
        bool below = !strchr(key, '.') && field_is_prefix(f, path);
        if (field && field->type != SY_CFG_PRESENT) {
            /* A leaf: its value is checked against its type when filled. */
        } else if (below || field) {
            if (v->kind == SY__CFG_MAP && depth < SY__CFG_MAX_DEPTH)
                check_keys(f, v, path, depth + 1);
            else if (v->kind != SY__CFG_NULL && v->kind != SY__CFG_MAP)
                fill_error(f, v, "'%s.%s': expected a map, got %s", f->id, path,
                           describe(v, got, sizeof(got)));
        } else {
            fill_error(f, map->key_nodes[i], "'%s' has invalid keys: %s", f->id, path);
        }
        free(path);
    }
}

/* Finds the value of a dotted field name below the component's node.
 * *present is true when the last key exists (even with a null value). */
static const sy_cfg_node_t *field_lookup(const sy_cfg_node_t *node, const char *name, bool *present)
{
    const sy_cfg_node_t *cur = node;
    char seg[256];
    *present = false;
    for (const char *c = name;;) {
        const char *dot = strchr(c, '.');
        size_t len = dot ? (size_t)(dot - c) : strlen(c);
        if (len >= sizeof(seg) || !cur || cur->kind != SY__CFG_MAP) return NULL;
        memcpy(seg, c, len);
        seg[len] = '\0';
        cur = sy__cfg_get(cur, seg);
        if (!cur) return NULL;
        if (!dot) break;
        c = dot + 1;
    }
    *present = true;
    return cur;
}

static void free_value(const sy_config_field_t *field, void *cfg)
{
    char *at = (char *)cfg + field->offset;
    switch (field->type) {
    case SY_CFG_STRING: {
        char *s;
        memcpy(&s, at, sizeof(s));
        free(s);
        s = NULL;
        memcpy(at, &s, sizeof(s));
        break;
    }
    case SY_CFG_STRLIST: {
        sy_cfg_strlist_t l;
        memcpy(&l, at, sizeof(l));
        for (size_t i = 0; i < l.count; i++)
            free(l.items[i]);
        free(l.items);
        memset(at, 0, sizeof(l));
        break;
    }
    case SY_CFG_STRMAP: {
        sy_cfg_strmap_t m;
        memcpy(&m, at, sizeof(m));
        for (size_t i = 0; i < m.count; i++) {
            free(m.keys[i]);
            free(m.values[i]);
        }
        free(m.keys);
        free(m.values);
        memset(at, 0, sizeof(m));
        break;
    }
    default:
        break;
    }
}

void sy__cfg_free_struct(const sy_config_field_t *fields, size_t nfields, void *cfg)
{
    if (!cfg) return;
    for (size_t i = 0; i < nfields; i++)
        free_value(&fields[i], cfg);
}

static int parse_int(const char *s, int64_t *out)
{
    char *end;
    int base = 10;
    const char *digits = s;
    bool neg = false;
    if (*digits == '-' || *digits == '+') neg = *digits++ == '-';
    if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
        base = 16, digits += 2;
    else if (digits[0] == '0' && (digits[1] == 'o' || digits[1] == 'O'))
        base = 8, digits += 2;
    if (!((*digits >= '0' && *digits <= '9') || (base == 16 && strchr("abcdefABCDEF", *digits))) ||
        !*digits)
        return -1;
    errno = 0;
    unsigned long long v = strtoull(digits, &end, base);
    if (errno || *end || v > (unsigned long long)INT64_MAX + (neg ? 1 : 0)) return -1;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* YAML 1.2's core schema booleans; yes/no/on/off are strings there, as in otelcol. */
static int parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
        *out = true;
        return 0;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
        *out = false;
        return 0;
    }
    return -1;
}

/* Appends "a, b, c" of an enum's names to buf. */
static void enum_list(const char *const *values, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; values && values[i] && used < len; i++)
        used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "", values[i]);
}

/* Converts a non-null value into the field's C value at its offset. */
static int fill_value(fill_t *f, const sy_config_field_t *field, const sy_cfg_node_t *v, void *cfg)
{
    char *at = (char *)cfg + field->offset;
    char got[96];
    const char *text = v->kind == SY__CFG_SCALAR ? v->scalar : NULL;
    const char *id = f->id, *name = field->name;

    switch (field->type) {
    case SY_CFG_BOOL: {
        bool b;
        if (!text || parse_bool(text, &b) < 0) {
            fill_error(f, v, "'%s.%s': expected true or false, got %s", id, name,
                       describe(v, got, sizeof(got)));
            return -1;
        }
        memcpy(at, &b, sizeof(b));
        return 0;
    }
    case SY_CFG_INT: {
        int64_t i;
        if (!text || parse_int(text, &i) < 0) {
            fill_error(f, v, "'%s.%s': expected an integer, got %s", id, name,
                       describe(v, got, sizeof(got)));
            return -1;
        }
        memcpy(at, &i, sizeof(i));
        return 0;
    }
    case SY_CFG_DOUBLE: {
        char *end;
        double d = text && *text ? strtod(text, &end) : NAN;
        if (!text || !*text || *end || !isfinite(d)) {
            fill_error(f, v, "'%s.%s': expected a number, got %s", id, name,
                       describe(v, got, sizeof(got)));
            return -1;
        }
        memcpy(at, &d, sizeof(d));
        return 0;
    }
    case SY_CFG_STRING: {
        char *s;
        if (!text) {
            fill_error(f, v, "'%s.%s': expected a string, got %s", id, name,
                       describe(v, got, sizeof(got)));
            return -1;
        }
        if (!(s = strdup(text))) goto nomem;
        free_value(field, cfg);
        memcpy(at, &s, sizeof(s));
        return 0;
    }
    case SY_CFG_DURATION: {
        int64_t ns;
        if (!text || sy__parse_duration(text, &ns) < 0) {
            fill_error(f, v, "'%s.%s': expected a duration such as 200ms or 5s, got %s", id, name,
                       describe(v, got, sizeof(got)));
            return -1;
        }
        memcpy(at, &ns, sizeof(ns));
        return 0;
    }
    case SY_CFG_SIZE: {
        uint64_t b;
        if (!text || sy__parse_size(text, &b) < 0) {
            fill_error(f, v,
                       "'%s.%s': expected a size such as 4MiB, 20MB or 1048576 (bytes), got %s", id,
                       name, describe(v, got, sizeof(got)));
            return -1;
        }
        memcpy(at, &b, sizeof(b));
        return 0;
    }
    case SY_CFG_ENUM: {
        for (int i = 0; text && field->enum_values && field->enum_values[i]; i++) {
            if (!strcmp(field->enum_values[i], text)) {
                memcpy(at, &i, sizeof(i));
                return 0;
            }
        }
        char allowed[512];
        enum_list(field->enum_values, allowed, sizeof(allowed));
        fill_error(f, v, "'%s.%s': expected one of %s, got %s", id, name, allowed,
                   describe(v, got, sizeof(got)));
        return -1;
    }
    case SY_CFG_STRLIST: {
        sy_cfg_strlist_t l = {0};
        if (v->kind != SY__CFG_LIST) {
            fill_error(f, v, "'%s.%s': expected a list of strings, got %s", id, name,
                       describe(v, got, sizeof(got)));
            return -1;
        }
        for (size_t i = 0; i < v->len; i++) {
            if (v->items[i]->kind != SY__CFG_SCALAR) {
                fill_error(f, v->items[i], "'%s.%s[%zu]': expected a string, got %s", id, name, i,
                           describe(v->items[i], got, sizeof(got)));
                return -1;
            }
        }
        free_value(field, cfg);
        if (v->len && !(l.items = calloc(v->len, sizeof(*l.items)))) goto nomem;
        for (; l.count < v->len; l.count++) {
            if (!(l.items[l.count] = strdup(v->items[l.count]->scalar))) {
                memcpy(at, &l, sizeof(l));
                goto nomem;
            }
        }
        memcpy(at, &l, sizeof(l));
        return 0;
    }
    case SY_CFG_STRMAP: {
        sy_cfg_strmap_t m = {0};
        if (v->kind != SY__CFG_MAP) {
            fill_error(f, v, "'%s.%s': expected a map of strings, got %s", id, name,
                       describe(v, got, sizeof(got)));
            return -1;
        }
        for (size_t i = 0; i < v->len; i++) {
            int k = v->items[i]->kind;
            if (k != SY__CFG_SCALAR && k != SY__CFG_NULL) {
                fill_error(f, v->items[i], "'%s.%s.%s': expected a string, got %s", id, name,
                           v->keys[i], describe(v->items[i], got, sizeof(got)));
                return -1;
            }
        }
        free_value(field, cfg);
        if (v->len && (!(m.keys = calloc(v->len, sizeof(*m.keys))) ||
                       !(m.values = calloc(v->len, sizeof(*m.values))))) {
            free(m.keys);
            goto nomem;
        }
        memcpy(at, &m, sizeof(m));
        for (size_t i = 0; i < v->len; i++) {
            const char *val = v->items[i]->kind == SY__CFG_SCALAR ? v->items[i]->scalar : "";
            m.keys[i] = strdup(v->keys[i]);
            m.values[i] = strdup(val);
            m.count = i + 1;
            memcpy(at, &m, sizeof(m));
            if (!m.keys[i] || !m.values[i]) goto nomem;
        }
        return 0;
    }
    case SY_CFG_RAW:
    case SY_CFG_PRESENT:
        return 0; /* set by the caller */
    }
    fill_error(f, v, "'%s.%s': the plugin declares an unknown field type %d", id, name,
               (int)field->type);
    return -1;
nomem:
    fill_error(f, v, "'%s.%s': out of memory", id, name);
    return -1;
}

/* Writes a field's default, given as YAML text in the table. */
static int fill_default(fill_t *f, const sy_config_field_t *field, void *cfg)
{
    if (!field->default_value || field->type == SY_CFG_PRESENT || field->type == SY_CFG_RAW)
        return 0;
    sy_cfg_node_t *v = sy__cfg_parse_string("<default>", field->default_value,
                                            strlen(field->default_value), f->diag);
    if (!v) {
        f->errors++;
        return -1;
    }
    int rc = v->kind == SY__CFG_NULL ? 0 : fill_value(f, field, v, cfg);
    sy__cfg_free(v);
    return rc;
}

static void check_limits(fill_t *f, const sy_config_field_t *field, const sy_cfg_node_t *v,
                         const void *cfg);

int sy__cfg_fill(const char *id, const sy_config_field_t *fields, size_t nfields,
                 const sy_cfg_node_t *node, void *out, sy__diag_t *diag)
{
    fill_t f = {.id = id, .fields = fields, .nfields = nfields, .diag = diag};
    char got[96];

    if (node && node->kind == SY__CFG_MAP) {
        check_keys(&f, node, "", 0);
    } else if (node && node->kind != SY__CFG_NULL) {
        fill_error(&f, node, "'%s': expected a map, got %s", id, describe(node, got, sizeof(got)));
        node = NULL;
    }
    for (size_t i = 0; i < nfields; i++) {
        const sy_config_field_t *field = &fields[i];
        bool present;
        const sy_cfg_node_t *v = field_lookup(node, field->name, &present);
        char *at = (char *)out + field->offset;

        fill_default(&f, field, out);
        if (field->type == SY_CFG_PRESENT) {
            memcpy(at, &present, sizeof(present));
        } else if (field->type == SY_CFG_RAW) {
            memcpy(at, &v, sizeof(v));
        } else if (v && v->kind != SY__CFG_NULL) {
            if (fill_value(&f, field, v, out) == 0) check_limits(&f, field, v, out);
        }
        if (field->required && (!v || v->kind == SY__CFG_NULL))
            fill_error(&f, node, "'%s': missing required key '%s'", id, field->name);
    }
    if (f.errors) {
        sy__cfg_free_struct(fields, nfields, out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Bounds and patterns (ABI 1.3), and the checks of a field table at load     */
/* ------------------------------------------------------------------------ */

/* The bytes a field's type writes at its offset; 0 for an unknown type. */
size_t sy__cfg_ctype_size(sy_cfg_type_t type)
{
    switch (type) {
    case SY_CFG_BOOL:
    case SY_CFG_PRESENT:
        return sizeof(bool);
    case SY_CFG_INT:
    case SY_CFG_DURATION:
        return sizeof(int64_t);
    case SY_CFG_SIZE:
        return sizeof(uint64_t);
    case SY_CFG_DOUBLE:
        return sizeof(double);
    case SY_CFG_STRING:
        return sizeof(char *);
    case SY_CFG_ENUM:
        return sizeof(int);
    case SY_CFG_STRLIST:
        return sizeof(sy_cfg_strlist_t);
    case SY_CFG_STRMAP:
        return sizeof(sy_cfg_strmap_t);
    case SY_CFG_RAW:
        return sizeof(const sy_cfg_node_t *);
    }
    return 0;
}

/* A bound or value of a numeric field, or a length or a count, compared as one. */
typedef struct bound_s {
    bool is_double, is_unsigned;
    int64_t i;
    uint64_t u;
    double d;
} bound_t;

static bool bounded_type(sy_cfg_type_t t)
{
    return t == SY_CFG_INT || t == SY_CFG_DOUBLE || t == SY_CFG_DURATION || t == SY_CFG_SIZE ||
           t == SY_CFG_STRING || t == SY_CFG_STRLIST || t == SY_CFG_STRMAP;
}

/* Parses a bound written in the field's syntax (a length or count for strings,
 * lists and maps: a non-negative integer). */
static int parse_bound(sy_cfg_type_t type, const char *text, bound_t *b)
{
    memset(b, 0, sizeof(*b));
    switch (type) {
    case SY_CFG_INT:
        return parse_int(text, &b->i);
    case SY_CFG_DURATION:
        return sy__parse_duration(text, &b->i);
    case SY_CFG_SIZE:
        b->is_unsigned = true;
        return sy__parse_size(text, &b->u);
    case SY_CFG_DOUBLE: {
        char *end;
        b->is_double = true;
        b->d = *text ? strtod(text, &end) : NAN;
        return *text && !*end && isfinite(b->d) ? 0 : -1;
    }
    default:
        return parse_int(text, &b->i) < 0 || b->i < 0 ? -1 : 0;
    }
}

static int bound_cmp(const bound_t *a, const bound_t *b)
{
    if (a->is_double) return a->d < b->d ? -1 : a->d > b->d;
    if (a->is_unsigned) return a->u < b->u ? -1 : a->u > b->u;
    return a->i < b->i ? -1 : a->i > b->i;
}

/* Anchors a field's pattern: the whole value must match. */
static int pattern_compile(const char *pattern, regex_t *re)
{
    char *anchored = NULL;
    if (asprintf(&anchored, "^(%s)$", pattern) < 0) return REG_ESPACE;
    int rc = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
    free(anchored);
    return rc;
}

/* Checks one string against the field's compiled pattern. */
static void check_pattern(fill_t *f, const sy_config_field_t *field, const regex_t *re,
                          const sy_cfg_node_t *at, const char *label, const char *value)
{
    if (regexec(re, value, 0, NULL, 0) == 0) return;
    fill_error(f, at, "'%s.%s%s': \"%.64s%s\" does not match the pattern %s", f->id, field->name,
               label, value, strlen(value) > 64 ? "..." : "", field->pattern);
}

/* Checks a value the user gave (already filled at the field's offset) against
 * the field's min, max and pattern. */
static void check_limits(fill_t *f, const sy_config_field_t *field, const sy_cfg_node_t *v,
                         const void *cfg)
{
    const char *at = (const char *)cfg + field->offset;
    if ((field->min || field->max) && bounded_type(field->type)) {
        bound_t val = {0};
        const char *fmt = "'%s.%s': must be %s %s, got %s";
        switch (field->type) {
        case SY_CFG_INT:
        case SY_CFG_DURATION:
            memcpy(&val.i, at, sizeof(val.i));
            break;
        case SY_CFG_SIZE:
            val.is_unsigned = true;
            memcpy(&val.u, at, sizeof(val.u));
            break;
        case SY_CFG_DOUBLE:
            val.is_double = true;
            memcpy(&val.d, at, sizeof(val.d));
            break;
        case SY_CFG_STRING: {
            char *s;
            memcpy(&s, at, sizeof(s));
            val.i = s ? (int64_t)strlen(s) : 0;
            fmt = "'%s.%s': must be %s %s bytes long, got %s";
            break;
        }
        default: { /* STRLIST, STRMAP: both structs begin with their count */
            size_t n;
            memcpy(&n, at, sizeof(n));
            val.i = (int64_t)n;
            fmt = "'%s.%s': must have %s %s entries, got %s";
            break;
        }
        }
        const char *bounds[2] = {field->min, field->max};
        for (int k = 0; k < 2; k++) {
            bound_t b;
            if (!bounds[k] || parse_bound(field->type, bounds[k], &b) < 0) continue;
            int c = bound_cmp(&val, &b);
            if ((k == 0 && c < 0) || (k == 1 && c > 0)) {
                char got[96];
                if (v->kind == SY__CFG_SCALAR && field->type != SY_CFG_STRING)
                    describe(v, got, sizeof(got));
                else
                    snprintf(got, sizeof(got), "%lld", (long long)val.i);
                sy__diag_add(f->diag, v, fmt, f->id, field->name, k == 0 ? "at least" : "at most",
                             bounds[k], got);
                f->errors++;
                break;
            }
        }
    }
    if (!field->pattern) return;
    regex_t re;
    if (pattern_compile(field->pattern, &re) != 0) return; /* refused at load */
    if (field->type == SY_CFG_STRING && v->kind == SY__CFG_SCALAR) {
        check_pattern(f, field, &re, v, "", v->scalar);
    } else if (field->type == SY_CFG_STRLIST && v->kind == SY__CFG_LIST) {
        for (size_t i = 0; i < v->len; i++) {
            char label[32];
            snprintf(label, sizeof(label), "[%zu]", i);
            check_pattern(f, field, &re, v->items[i], label, v->items[i]->scalar);
        }
    } else if (field->type == SY_CFG_STRMAP && v->kind == SY__CFG_MAP) {
        for (size_t i = 0; i < v->len; i++) {
            if (v->items[i]->kind != SY__CFG_SCALAR) continue;
            char label[300];
            snprintf(label, sizeof(label), ".%.250s", v->keys[i]);
            check_pattern(f, field, &re, v->items[i], label, v->items[i]->scalar);
        }
    }
    regfree(&re);
}

int sy__cfg_check_table(const char *plugin, const sy_config_field_t *fields, size_t nfields,
                        size_t config_size, char *err, size_t err_len)
{
    for (size_t i = 0; i < nfields; i++) {
        const sy_config_field_t *fd = &fields[i];
        if (!fd->name || !*fd->name) {
            snprintf(err, err_len, "plugin %s: config field %zu has no name", plugin, i);
            return SY_ERROR;
        }
        size_t size = sy__cfg_ctype_size(fd->type);
        if (!size) {
            snprintf(err, err_len, "plugin %s: config field '%s' has an unknown type %d", plugin,
                     fd->name, (int)fd->type);
            return SY_ERROR;
        }
        if (fd->offset > config_size || size > config_size - fd->offset) {
            snprintf(err, err_len,
                     "plugin %s: config field '%s' (offset %zu, %zu bytes) does not fit in its "
                     "config struct of config_size %zu bytes: a wrong offsetof() or config_size "
                     "in the plugin",
                     plugin, fd->name, fd->offset, size, config_size);
            return SY_ERROR;
        }
        if (fd->type == SY_CFG_ENUM && (!fd->enum_values || !fd->enum_values[0])) {
            snprintf(err, err_len, "plugin %s: enum config field '%s' has no enum_values", plugin,
                     fd->name);
            return SY_ERROR;
        }
        bound_t b[2];
        const char *bounds[2] = {fd->min, fd->max};
        for (int k = 0; k < 2; k++) {
            if (!bounds[k]) continue;
            if (!bounded_type(fd->type) || parse_bound(fd->type, bounds[k], &b[k]) < 0) {
                snprintf(err, err_len, "plugin %s: config field '%s' has a %s \"%.64s\" that %s",
                         plugin, fd->name, k == 0 ? "min" : "max", bounds[k],
                         bounded_type(fd->type) ? "does not parse as its type"
                                                : "its type does not take");
                return SY_ERROR;
            }
        }
        if (fd->min && fd->max && bound_cmp(&b[0], &b[1]) > 0) {
            snprintf(err, err_len, "plugin %s: config field '%s' has min %s above max %s", plugin,
                     fd->name, fd->min, fd->max);
            return SY_ERROR;
        }
        if (fd->pattern) {
            regex_t re;
            int rc =
                fd->type == SY_CFG_STRING || fd->type == SY_CFG_STRLIST || fd->type == SY_CFG_STRMAP
                    ? pattern_compile(fd->pattern, &re)
                    : -1;
            if (rc != 0) {
                char why[128] = "its type takes no pattern";
                if (rc > 0) regerror(rc, &re, why, sizeof(why));
                snprintf(err, err_len, "plugin %s: config field '%s' has a pattern \"%.64s\": %s",
                         plugin, fd->name, fd->pattern, why);
                return SY_ERROR;
            }
            regfree(&re);
        }
    }
    return SY_OK;
}
