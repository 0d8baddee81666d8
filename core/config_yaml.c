/*
 * config_yaml.c - YAML text to a tree of positioned nodes (sy__cfg_parse_string),
 * and a tree back to YAML text (sy__cfg_to_yaml, for print-config).
 *
 * The parser walks libyaml's event stream and builds the tree itself rather than
 * using libyaml's document API, so that every node keeps its own file:line:col
 * and so that the bounds (depth, node count, alias expansion) are checked as the
 * tree grows. Anchors, aliases, merge keys (<<) and duplicate keys are handled
 * here; nothing in this file reads the environment or the file system.
 */
#include "config_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

/* ------------------------------------------------------------------------ */
/* The YAML parser                                                           */
/* ------------------------------------------------------------------------ */

typedef struct anchor_s {
    char *name;
    const sy_cfg_node_t *node; /* in the tree being built */
} anchor_t;

typedef struct parser_s {
    yaml_parser_t yp;
    const char *name;
    sy__diag_t *diag;
    size_t budget; /* nodes still allowed */
    anchor_t *anchors;
    size_t nanchors, capanchors;
    bool failed; /* an error was reported already */
} parser_t;

static void parse_error_at(parser_t *p, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void parse_error_at(parser_t *p, const yaml_mark_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sy__diag_vreport(p->diag, false, p->name, (int)m->line + 1, (int)m->column + 1, fmt, ap);
    va_end(ap);
    p->failed = true;
}

/* Reports libyaml's own error (syntax, bad encoding), with its position. */
static void parse_yaml_error(parser_t *p)
{
    const yaml_parser_t *yp = &p->yp;
    const char *problem = yp->problem ? yp->problem : "invalid YAML";
    if (yp->context)
        parse_error_at(p, &yp->problem_mark, "%s %s (line %zu, column %zu)", problem, yp->context,
                       yp->context_mark.line + 1, yp->context_mark.column + 1);
    else
        parse_error_at(p, &yp->problem_mark, "%s", problem);
}

static bool next_event(parser_t *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&p->yp, ev)) {
        parse_yaml_error(p);
        return false;
    }
    return true;
}

static sy_cfg_node_t *parser_node_new(parser_t *p, int kind, const yaml_mark_t *m)
{
    if (p->budget == 0) {
        parse_error_at(p, m, "the document has more than %d nodes", SY__CFG_MAX_NODES);
        return NULL;
    }
    p->budget--;
    sy_cfg_node_t *n = sy__cfg_node_new(kind, p->name, (int)m->line + 1, (int)m->column + 1);
    if (!n) parse_error_at(p, m, "out of memory");
    return n;
}

static int anchor_add(parser_t *p, const yaml_char_t *name, const sy_cfg_node_t *node)
{
    if (!name) return 0;
    if (p->nanchors == p->capanchors) {
        size_t ncap = p->capanchors ? p->capanchors * 2 : 8;
        anchor_t *a = realloc(p->anchors, ncap * sizeof(*a));
        if (!a) return -1;
        p->anchors = a;
        p->capanchors = ncap;
    }
    char *copy = strdup((const char *)name);
    if (!copy) return -1;
    /* A later anchor of the same name hides the earlier one, as YAML says. */
    p->anchors[p->nanchors].name = copy;
    p->anchors[p->nanchors].node = node;
    p->nanchors++;
    return 0;
}

static bool plain_is_null(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static sy_cfg_node_t *parse_node(parser_t *p, yaml_event_t *ev, int depth);

static sy_cfg_node_t *parse_scalar(parser_t *p, yaml_event_t *ev, bool as_key)
{
    const char *text = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool quoted =
        ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || (tag && !strcmp(tag, YAML_STR_TAG));
    bool null = !quoted && plain_is_null(text) && !as_key;
    if (!null && !as_key && tag && !strcmp(tag, YAML_NULL_TAG)) null = true;
    if (strlen(text) != ev->data.scalar.length) {
        parse_error_at(p, &ev->start_mark, "a NUL character in a scalar is not supported");
        return NULL;
    }
    sy_cfg_node_t *n = parser_node_new(p, null ? SY__CFG_NULL : SY__CFG_SCALAR, &ev->start_mark);
    if (!n) return NULL;
    n->quoted = quoted;
    if (!null && !(n->scalar = strdup(text))) {
        sy__cfg_free(n);
        parse_error_at(p, &ev->start_mark, "out of memory");
        return NULL;
    }
    return n;
}

static sy_cfg_node_t *parse_alias(parser_t *p, yaml_event_t *ev, int depth)
{
    const char *name = (const char *)ev->data.alias.anchor;
    for (size_t i = p->nanchors; i-- > 0;) {
        if (strcmp(p->anchors[i].name, name) != 0) continue;
        sy_cfg_node_t *n = sy__cfg_node_copy(p->anchors[i].node, &p->budget, depth);
        if (!n)
            parse_error_at(p, &ev->start_mark,
                           "alias *%s expands beyond %d nodes or %d levels of nesting", name,
                           SY__CFG_MAX_NODES, SY__CFG_MAX_DEPTH);
        return n;
    }
    parse_error_at(p, &ev->start_mark, "unknown anchor: *%s is not defined before its use", name);
    return NULL;
}

static sy_cfg_node_t *parse_list(parser_t *p, yaml_event_t *start, int depth)
{
    sy_cfg_node_t *list = parser_node_new(p, SY__CFG_LIST, &start->start_mark);
    if (!list) return NULL;
    for (;;) {
        yaml_event_t ev;
        if (!next_event(p, &ev)) goto fail;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        sy_cfg_node_t *item = parse_node(p, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (!item) goto fail;
        if (sy__cfg_list_push(list, item) < 0) {
            parse_error_at(p, &start->start_mark, "out of memory");
            goto fail;
        }
    }
    if (anchor_add(p, start->data.sequence_start.anchor, list) < 0) {
        parse_error_at(p, &start->start_mark, "out of memory");
        goto fail;
    }
    return list;
fail:
    sy__cfg_free(list);
    return NULL;
}

static int cmp_key_index(const void *a, const void *b, void *map)
{
    const sy_cfg_node_t *m = map;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(m->keys[i], m->keys[j]);
    return c ? c : (i > j) - (i < j);
}

/* Reports every key that appears twice in one map, at its second occurrence.
 * Sorting an index keeps this O(n log n) for any map size. */
static void check_duplicate_keys(parser_t *p, const sy_cfg_node_t *map)
{
    if (map->len < 2) return;
    size_t *idx = malloc(map->len * sizeof(*idx));
    if (!idx) return;
    for (size_t i = 0; i < map->len; i++)
        idx[i] = i;
    qsort_r(idx, map->len, sizeof(*idx), cmp_key_index, (void *)map);
    for (size_t i = 1; i < map->len; i++) {
        if (strcmp(map->keys[idx[i - 1]], map->keys[idx[i]]) != 0) continue;
        const sy_cfg_node_t *first = map->key_nodes[idx[i - 1]];
        sy__diag_add(p->diag, map->key_nodes[idx[i]],
                     "duplicate key \"%s\" in one map (first defined at %s)", map->keys[idx[i]],
                     first->where);
        p->failed = true;
    }
    free(idx);
}

/* Applies YAML merge keys ("<<: *base" or "<<: [*a, *b]"): the entries of the
 * merged maps are added where the map does not set the key itself, earlier maps
 * of a list taking precedence. */
static int apply_merge_keys(parser_t *p, sy_cfg_node_t *map)
{
    for (size_t i = 0; i < map->len;) {
        if (strcmp(map->keys[i], "<<") != 0 || map->key_nodes[i]->quoted) {
            i++;
            continue;
        }
        sy_cfg_node_t *value, *key;
        sy__cfg_node_remove(map, i, &value, &key);
        sy__cfg_free(key);
        size_t nsrc = value->kind == SY__CFG_LIST ? value->len : 1;
        for (size_t s = 0; s < nsrc; s++) {
            sy_cfg_node_t *src = value->kind == SY__CFG_LIST ? value->items[s] : value;
            if (src->kind != SY__CFG_MAP) {
                sy__diag_add(p->diag, src, "a merge key (<<) takes a map or a list of maps");
                p->failed = true;
                break;
            }
            while (src->len > 0) {
                sy_cfg_node_t *v, *k;
                sy__cfg_node_remove(src, 0, &v, &k);
                if (sy__cfg_map_index(map, k->scalar) >= 0) {
                    sy__cfg_free(k);
                    sy__cfg_free(v);
                } else if (sy__cfg_map_push(map, k, v) < 0) {
                    sy__cfg_free(value);
                    return -1;
                }
            }
        }
        sy__cfg_free(value);
    }
    return 0;
}

static sy_cfg_node_t *parse_map(parser_t *p, yaml_event_t *start, int depth)
{
    sy_cfg_node_t *map = parser_node_new(p, SY__CFG_MAP, &start->start_mark);
    bool has_merge = false;
    if (!map) return NULL;
    for (;;) {
        yaml_event_t ev;
        sy_cfg_node_t *key = NULL, *value = NULL;
        if (!next_event(p, &ev)) goto fail;
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (ev.type == YAML_SCALAR_EVENT) {
            key = parse_scalar(p, &ev, true);
            if (key && anchor_add(p, ev.data.scalar.anchor, key) < 0) {
                parse_error_at(p, &ev.start_mark, "out of memory");
                sy__cfg_free(key);
                key = NULL;
            }
        } else if (ev.type == YAML_ALIAS_EVENT) {
            key = parse_alias(p, &ev, depth + 1);
            if (key && key->kind != SY__CFG_SCALAR) {
                parse_error_at(p, &ev.start_mark, "a map key must be a scalar");
                sy__cfg_free(key);
                key = NULL;
            }
        } else {
            parse_error_at(p, &ev.start_mark, "a map key must be a scalar, not a map or a list");
        }
        yaml_event_delete(&ev);
        if (!key) goto fail;
        if (!next_event(p, &ev)) {
            sy__cfg_free(key);
            goto fail;
        }
        value = parse_node(p, &ev, depth + 1);
        yaml_event_delete(&ev);
        if (!value) {
            sy__cfg_free(key);
            goto fail;
        }
        if (!key->quoted && !strcmp(key->scalar, "<<")) has_merge = true;
        if (sy__cfg_map_push(map, key, value) < 0) {
            parse_error_at(p, &start->start_mark, "out of memory");
            goto fail;
        }
    }
    check_duplicate_keys(p, map);
    if (has_merge && apply_merge_keys(p, map) < 0) {
        parse_error_at(p, &start->start_mark, "out of memory");
        goto fail;
    }
    if (anchor_add(p, start->data.mapping_start.anchor, map) < 0) {
        parse_error_at(p, &start->start_mark, "out of memory");
        goto fail;
    }
    return map;
fail:
    sy__cfg_free(map);
    return NULL;
}

/* Builds the node that starts with `ev`, consuming the events up to its end. */
static sy_cfg_node_t *parse_node(parser_t *p, yaml_event_t *ev, int depth)
{
    if (depth > SY__CFG_MAX_DEPTH) {
        parse_error_at(p, &ev->start_mark, "nesting deeper than %d levels", SY__CFG_MAX_DEPTH);
        return NULL;
    }
    switch (ev->type) {
    case YAML_SCALAR_EVENT: {
        sy_cfg_node_t *n = parse_scalar(p, ev, false);
        if (n && anchor_add(p, ev->data.scalar.anchor, n) < 0) {
            parse_error_at(p, &ev->start_mark, "out of memory");
            sy__cfg_free(n);
            return NULL;
        }
        return n;
    }
    case YAML_SEQUENCE_START_EVENT:
        return parse_list(p, ev, depth);
    case YAML_MAPPING_START_EVENT:
        return parse_map(p, ev, depth);
    case YAML_ALIAS_EVENT:
        return parse_alias(p, ev, depth);
    default:
        parse_error_at(p, &ev->start_mark, "unexpected YAML event");
        return NULL;
    }
}

sy_cfg_node_t *sy__cfg_parse_string(const char *name, const char *yaml, size_t len,
                                    sy__diag_t *diag)
{
    parser_t p = {.name = name, .diag = diag, .budget = SY__CFG_MAX_NODES};
    sy_cfg_node_t *root = NULL;
    yaml_event_t ev;
    bool in_doc = false;
    size_t docs = 0;

    if (!yaml_parser_initialize(&p.yp)) {
        sy__diag_add_at(diag, name, 0, 0, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&p.yp, (const unsigned char *)yaml, len);
    yaml_parser_set_encoding(&p.yp, YAML_UTF8_ENCODING);
    for (;;) {
        if (!next_event(&p, &ev)) goto fail;
        yaml_event_type_t type = ev.type;
        if (type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (type == YAML_DOCUMENT_START_EVENT) {
            if (++docs > 1) {
                parse_error_at(&p, &ev.start_mark,
                               "a configuration file holds one YAML document, this is a second");
                yaml_event_delete(&ev);
                goto fail;
            }
            in_doc = true;
        } else if (in_doc && type != YAML_DOCUMENT_END_EVENT && !root) {
            root = parse_node(&p, &ev, 0);
            if (!root) {
                yaml_event_delete(&ev);
                goto fail;
            }
        }
        yaml_event_delete(&ev);
    }
    if (p.failed) goto fail;
    if (!root) {
        yaml_mark_t start = {0};
        root = parser_node_new(&p, SY__CFG_NULL, &start);
        if (!root) goto fail;
    }
    goto out;
fail:
    sy__cfg_free(root);
    root = NULL;
out:
    for (size_t i = 0; i < p.nanchors; i++)
        free(p.anchors[i].name);
    free(p.anchors);
    yaml_parser_delete(&p.yp);
    return root;
}

/* ------------------------------------------------------------------------ */
/* Rendering                                                                 */
/* ------------------------------------------------------------------------ */

static int emit_write(void *data, unsigned char *buffer, size_t size)
{
    return sy__cfg_buf_put(data, (const char *)buffer, size) == 0;
}

static int emit_node(yaml_emitter_t *em, const sy_cfg_node_t *n)
{
    yaml_event_t ev;
    int ok;
    switch (n ? n->kind : SY__CFG_NULL) {
    case SY__CFG_SCALAR:
        ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)n->scalar,
                                          (int)strlen(n->scalar), !n->quoted, 1,
                                          YAML_ANY_SCALAR_STYLE);
        return ok && yaml_emitter_emit(em, &ev) ? 0 : -1;
    case SY__CFG_MAP:
        ok = yaml_mapping_start_event_initialize(
            &ev, NULL, NULL, 1, n->len ? YAML_BLOCK_MAPPING_STYLE : YAML_FLOW_MAPPING_STYLE);
        if (!ok || !yaml_emitter_emit(em, &ev)) return -1;
        for (size_t i = 0; i < n->len; i++) {
            ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)n->keys[i],
                                              (int)strlen(n->keys[i]), 1, 1, YAML_ANY_SCALAR_STYLE);
            if (!ok || !yaml_emitter_emit(em, &ev) || emit_node(em, n->items[i]) < 0) return -1;
        }
        ok = yaml_mapping_end_event_initialize(&ev);
        return ok && yaml_emitter_emit(em, &ev) ? 0 : -1;
    case SY__CFG_LIST:
        ok = yaml_sequence_start_event_initialize(
            &ev, NULL, NULL, 1, n->len ? YAML_BLOCK_SEQUENCE_STYLE : YAML_FLOW_SEQUENCE_STYLE);
        if (!ok || !yaml_emitter_emit(em, &ev)) return -1;
        for (size_t i = 0; i < n->len; i++)
            if (emit_node(em, n->items[i]) < 0) return -1;
        ok = yaml_sequence_end_event_initialize(&ev);
        return ok && yaml_emitter_emit(em, &ev) ? 0 : -1;
    default:
        ok = yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)"null", 4, 1, 0,
                                          YAML_PLAIN_SCALAR_STYLE);
        return ok && yaml_emitter_emit(em, &ev) ? 0 : -1;
    }
}

char *sy__cfg_to_yaml(const sy_cfg_node_t *root)
{
    yaml_emitter_t em;
    yaml_event_t ev;
    sy__cfg_buf_t out = {0};
    bool ok = false;

    if (!yaml_emitter_initialize(&em)) return NULL;
    yaml_emitter_set_output(&em, emit_write, &out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_indent(&em, 2);
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
        !yaml_emitter_emit(&em, &ev))
        goto out;
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(&em, &ev))
        goto out;
    if (emit_node(&em, root) < 0) goto out;
    if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&em, &ev)) goto out;
    if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&em, &ev)) goto out;
    ok = yaml_emitter_flush(&em) != 0;
out:
    yaml_emitter_delete(&em);
    if (!ok) {
        free(out.data);
        return NULL;
    }
    return out.data;
}
