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
            fill_value(&f, field, v, out);
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
