/*
 * config_schema.c - a plugin's field table as JSON Schema (2020-12) and as the
 * Markdown table of its README, for `switchyard components --schema` and
 * `--markdown`. Dotted names become nested objects; min, max and pattern become
 * minimum/maximum, minLength/maxLength, minItems/maxItems and an anchored
 * pattern; unknown keys are refused by the host, so every object has
 * additionalProperties false.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_write.h"

/* A field's pattern as JSON Schema reads it: anchored, as the host checks it. */
static void json_pattern(FILE *out, const char *pattern)
{
    char *anchored = NULL;
    if (asprintf(&anchored, "^(%s)$", pattern) >= 0) sy__json_str(out, anchored);
    free(anchored);
}

/* A default or bound as a JSON value of the field's type where it has one. */
static void json_value(FILE *out, sy_cfg_type_t type, const char *text, bool length)
{
    char *end;
    if (length || type == SY_CFG_INT) {
        long long v = strtoll(text, &end, 0);
        if (*text && !*end) {
            fprintf(out, "%lld", v);
            return;
        }
    } else if (type == SY_CFG_DOUBLE) {
        double v = strtod(text, &end);
        if (*text && !*end) {
            fprintf(out, "%.17g", v);
            return;
        }
    } else if (type == SY_CFG_SIZE) {
        uint64_t v;
        if (sy__parse_size(text, &v) == 0 && strspn(text, "0123456789") == strlen(text)) {
            fprintf(out, "%llu", (unsigned long long)v);
            return;
        }
    } else if (type == SY_CFG_BOOL) {
        if (!strcmp(text, "true") || !strcmp(text, "false")) {
            fputs(text, out);
            return;
        }
    }
    sy__json_str(out, text);
}

static const char *type_name(sy_cfg_type_t type)
{
    switch (type) {
    case SY_CFG_BOOL:
        return "bool";
    case SY_CFG_INT:
        return "int";
    case SY_CFG_DOUBLE:
        return "number";
    case SY_CFG_STRING:
        return "string";
    case SY_CFG_DURATION:
        return "duration";
    case SY_CFG_SIZE:
        return "size";
    case SY_CFG_ENUM:
        return "enum";
    case SY_CFG_PRESENT:
        return "section";
    case SY_CFG_STRLIST:
        return "list of strings";
    case SY_CFG_STRMAP:
        return "map of strings";
    case SY_CFG_RAW:
        return "any";
    }
    return "unknown";
}

/* The constraints of a leaf, for JSON Schema. */
static void json_leaf(FILE *out, const sy_config_field_t *f, const char *indent)
{
    const char *lo = NULL, *hi = NULL; /* keywords of min and max */
    bool length = false;
    fprintf(out, "{\n%s  \"x-switchyard-type\": \"%s\"", indent, type_name(f->type));
    switch (f->type) {
    case SY_CFG_BOOL:
        fprintf(out, ",\n%s  \"type\": \"boolean\"", indent);
        break;
    case SY_CFG_INT:
        fprintf(out, ",\n%s  \"type\": \"integer\"", indent);
        lo = "minimum", hi = "maximum";
        break;
    case SY_CFG_DOUBLE:
        fprintf(out, ",\n%s  \"type\": \"number\"", indent);
        lo = "minimum", hi = "maximum";
        break;
    case SY_CFG_STRING:
        fprintf(out, ",\n%s  \"type\": \"string\"", indent);
        lo = "minLength", hi = "maxLength", length = true;
        break;
    case SY_CFG_DURATION:
        fprintf(out, ",\n%s  \"type\": \"string\"", indent);
        lo = "x-minimum", hi = "x-maximum";
        break;
    case SY_CFG_SIZE:
        fprintf(out, ",\n%s  \"type\": [\"integer\", \"string\"]", indent);
        lo = "x-minimum", hi = "x-maximum";
        break;
    case SY_CFG_ENUM:
        fprintf(out, ",\n%s  \"enum\": [", indent);
        for (size_t i = 0; f->enum_values && f->enum_values[i]; i++) {
            if (i) fputs(", ", out);
            sy__json_str(out, f->enum_values[i]);
        }
        fputc(']', out);
        break;
    case SY_CFG_PRESENT:
        fprintf(out, ",\n%s  \"type\": [\"object\", \"null\"]", indent);
        break;
    case SY_CFG_STRLIST:
        fprintf(out, ",\n%s  \"type\": \"array\",\n%s  \"items\": {\"type\": \"string\"", indent,
                indent);
        if (f->pattern) {
            fputs(", \"pattern\": ", out);
            json_pattern(out, f->pattern);
        }
        fputc('}', out);
        lo = "minItems", hi = "maxItems", length = true;
        break;
    case SY_CFG_STRMAP:
        fprintf(out,
                ",\n%s  \"type\": \"object\",\n%s  \"additionalProperties\": {\"type\": \"string\"",
                indent, indent);
        if (f->pattern) {
            fputs(", \"pattern\": ", out);
            json_pattern(out, f->pattern);
        }
        fputc('}', out);
        lo = "minProperties", hi = "maxProperties", length = true;
        break;
    case SY_CFG_RAW:
        break;
    }
    if (f->pattern && f->type == SY_CFG_STRING) {
        fprintf(out, ",\n%s  \"pattern\": ", indent);
        json_pattern(out, f->pattern);
    }
    if (f->min && lo) {
        fprintf(out, ",\n%s  \"%s\": ", indent, lo);
        json_value(out, f->type, f->min, length);
    }
    if (f->max && hi) {
        fprintf(out, ",\n%s  \"%s\": ", indent, hi);
        json_value(out, f->type, f->max, length);
    }
    if (f->default_value) {
        fprintf(out, ",\n%s  \"default\": ", indent);
        json_value(out, f->type, f->default_value, false);
    }
    if (f->description) {
        fprintf(out, ",\n%s  \"description\": ", indent);
        sy__json_str(out, f->description);
    }
    fprintf(out, "\n%s}", indent);
}

/* The field named exactly `path`, or NULL. */
static const sy_config_field_t *find(const sy_plugin_t *d, const char *path, size_t len)
{
    for (size_t i = 0; i < d->config_field_count; i++)
        if (strlen(d->config_fields[i].name) == len &&
            !strncmp(d->config_fields[i].name, path, len))
            return &d->config_fields[i];
    return NULL;
}

/* Writes the object whose keys are the fields below `prefix` (prefix "" for the
 * component): each child segment once, in table order. */
static void json_object(FILE *out, const sy_plugin_t *d, const char *prefix, int depth,
                        const char *description, const char *title, const char *version)
{
    char indent[64];
    int w = depth * 2 < 60 ? depth * 2 : 60;
    memset(indent, ' ', (size_t)w);
    indent[w] = 0;
    size_t plen = strlen(prefix);
    fputs("{\n", out);
    if (title) {
        fprintf(out,
                "%s  \"$schema\": \"https://json-schema.org/draft/2020-12/schema\",\n%s  "
                "\"title\": ",
                indent, indent);
        sy__json_str(out, title);
        fprintf(out, ",\n%s  \"x-switchyard-version\": ", indent);
        sy__json_str(out, version);
        fputs(",\n", out);
    }
    fprintf(out, "%s  \"type\": [\"object\", \"null\"],\n%s  \"additionalProperties\": false",
            indent, indent);
    if (description) {
        fprintf(out, ",\n%s  \"description\": ", indent);
        sy__json_str(out, description);
    }
    fprintf(out, ",\n%s  \"properties\": {", indent);
    bool first = true;
    for (size_t i = 0; i < d->config_field_count; i++) {
        const char *name = d->config_fields[i].name;
        if (plen && (strncmp(name, prefix, plen) != 0 || name[plen] != '.')) continue;
        const char *seg = name + (plen ? plen + 1 : 0);
        size_t seglen = strcspn(seg, ".");
        size_t full = (size_t)(seg - name) + seglen;
        /* Only the first field of this segment writes it. */
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *other = d->config_fields[j].name;
            seen = !strncmp(other, name, full) && (other[full] == '.' || other[full] == 0);
        }
        if (seen) continue;
        bool below = false;
        for (size_t j = i; j < d->config_field_count && !below; j++) {
            const char *other = d->config_fields[j].name;
            below = !strncmp(other, name, full) && other[full] == '.';
        }
        fprintf(out, "%s\n%s    \"%.*s\": ", first ? "" : ",", indent, (int)seglen, seg);
        first = false;
        const sy_config_field_t *self = find(d, name, full);
        if (below) {
            char *sub = strndup(name, full);
            if (sub)
                json_object(out, d, sub, depth + 2, self ? self->description : NULL, NULL, NULL);
            free(sub);
        } else {
            char in[64];
            int w2 = (depth + 2) * 2 < 60 ? (depth + 2) * 2 : 60;
            memset(in, ' ', (size_t)w2);
            in[w2] = 0;
            json_leaf(out, self, in);
        }
    }
    fprintf(out, "\n%s  }", indent);
    /* Required keys directly in this object. */
    bool any = false;
    for (size_t i = 0; i < d->config_field_count; i++) {
        const sy_config_field_t *f = &d->config_fields[i];
        const char *rest = f->name + (plen ? plen + 1 : 0);
        if (!f->required || (plen && (strncmp(f->name, prefix, plen) || f->name[plen] != '.')) ||
            strchr(rest, '.'))
            continue;
        fprintf(out, "%s", any ? ", " : ",\n");
        if (!any) fprintf(out, "%s  \"required\": [", indent);
        any = true;
        sy__json_str(out, rest);
    }
    if (any) fputc(']', out);
    fprintf(out, "\n%s}", indent);
}

void sy__cfg_schema_json(FILE *out, const sy_plugin_t *d, const char *kind)
{
    char title[256];
    snprintf(title, sizeof(title), "%s %s", kind, d->type);
    json_object(out, d, "", 0, d->description, title, d->version ? d->version : "");
    fputc('\n', out);
}

/* A cell of a Markdown table: | escaped, newlines as spaces. */
static void md_cell(FILE *out, const char *s)
{
    for (; s && *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '\n' || *s == '\r')
            fputc(' ', out);
        else
            fputc(*s, out);
    }
}

void sy__cfg_schema_markdown(FILE *out, const sy_plugin_t *d)
{
    fputs("| key | type | default | description |\n| --- | --- | --- | --- |\n", out);
    for (size_t i = 0; i < d->config_field_count; i++) {
        const sy_config_field_t *f = &d->config_fields[i];
        fputs("| `", out);
        md_cell(out, f->name);
        fputs("` | ", out);
        fputs(type_name(f->type), out);
        if (f->type == SY_CFG_ENUM) {
            fputs(": ", out);
            for (size_t k = 0; f->enum_values && f->enum_values[k]; k++) {
                fprintf(out, "%s`", k ? ", " : "");
                md_cell(out, f->enum_values[k]);
                fputc('`', out);
            }
        }
        fputs(" | ", out);
        if (f->required)
            fputs("required", out);
        else if (f->default_value && *f->default_value) {
            fputc('`', out);
            md_cell(out, f->default_value);
            fputc('`', out);
        } else
            fputs("-", out);
        fputs(" | ", out);
        md_cell(out, f->description);
        bool len = f->type == SY_CFG_STRING;
        bool count = f->type == SY_CFG_STRLIST || f->type == SY_CFG_STRMAP;
        if (f->min || f->max) {
            fprintf(out, " (%s", len ? "length " : count ? "entries " : "");
            if (f->min && f->max) {
                fputc('`', out), md_cell(out, f->min), fputs("` to `", out), md_cell(out, f->max);
                fputc('`', out);
            } else {
                fputs(f->min ? "at least `" : "at most `", out);
                md_cell(out, f->min ? f->min : f->max);
                fputc('`', out);
            }
            fputc(')', out);
        }
        if (f->pattern) {
            fputs(" (matches `", out);
            md_cell(out, f->pattern);
            fputs("`)", out);
        }
        fputs(" |\n", out);
    }
}
