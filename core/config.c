/*
 * config.c - YAML files into a tree of positioned nodes; merging, env expansion,
 * --set overrides and rendering back to YAML. Filling plugin structs from the
 * tree lives in config_fill.c.
 *
 * The parser walks libyaml's event stream and builds the tree itself rather than
 * using libyaml's document API, so that every node keeps its own file:line:col
 * and so that the bounds (depth, node count, alias expansion) are checked as the
 * tree grows.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

/* ------------------------------------------------------------------------ */
/* Nodes                                                                     */
/* ------------------------------------------------------------------------ */

static sy_cfg_node_t *node_new(int kind, const char *file, int line, int col)
{
    sy_cfg_node_t *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->kind = kind;
    n->line = line;
    n->col = col;
    n->file = strdup(file);
    if (!n->file || asprintf(&n->where, "%s:%d:%d", file, line, col) < 0) {
        free(n->file);
        free(n);
        return NULL;
    }
    return n;
}

void sy__cfg_free(sy_cfg_node_t *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->len; i++) {
        sy__cfg_free(n->items[i]);
        if (n->key_nodes) sy__cfg_free(n->key_nodes[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->key_nodes);
    free(n->scalar);
    free(n->file);
    free(n->where);
    free(n);
}

/* Makes room for one more entry. Returns 0 or -1. */
static int node_reserve(sy_cfg_node_t *n)
{
    if (n->len < n->cap) return 0;
    size_t ncap = n->cap ? n->cap * 2 : 4;
    sy_cfg_node_t **items = realloc(n->items, ncap * sizeof(*items));
    if (!items) return -1;
    n->items = items;
    if (n->kind == SY__CFG_MAP) {
        char **keys = realloc(n->keys, ncap * sizeof(*keys));
        if (!keys) return -1;
        n->keys = keys;
        sy_cfg_node_t **kn = realloc(n->key_nodes, ncap * sizeof(*kn));
        if (!kn) return -1;
        n->key_nodes = kn;
    }
    n->cap = ncap;
    return 0;
}

/* Appends a list item, taking ownership of it (also on failure). */
static int list_push(sy_cfg_node_t *list, sy_cfg_node_t *item)
{
    if (node_reserve(list) < 0) {
        sy__cfg_free(item);
        return -1;
    }
    list->items[list->len++] = item;
    return 0;
}

/* Appends a map entry, taking ownership of key and value (also on failure). */
static int map_push(sy_cfg_node_t *map, sy_cfg_node_t *key, sy_cfg_node_t *value)
{
    if (node_reserve(map) < 0) {
        sy__cfg_free(key);
        sy__cfg_free(value);
        return -1;
    }
    map->key_nodes[map->len] = key;
    map->keys[map->len] = key->scalar;
    map->items[map->len] = value;
    map->len++;
    return 0;
}

static ssize_t map_index(const sy_cfg_node_t *map, const char *key)
{
    if (!map || map->kind != SY__CFG_MAP) return -1;
    for (size_t i = 0; i < map->len; i++)
        if (strcmp(map->keys[i], key) == 0) return (ssize_t)i;
    return -1;
}

/* Removes entry i of a map or list, handing its value (and key) to the caller. */
static void node_remove(sy_cfg_node_t *n, size_t i, sy_cfg_node_t **value, sy_cfg_node_t **key)
{
    *value = n->items[i];
    if (key) *key = n->key_nodes ? n->key_nodes[i] : NULL;
    memmove(&n->items[i], &n->items[i + 1], (n->len - i - 1) * sizeof(*n->items));
    if (n->kind == SY__CFG_MAP) {
        memmove(&n->keys[i], &n->keys[i + 1], (n->len - i - 1) * sizeof(*n->keys));
        memmove(&n->key_nodes[i], &n->key_nodes[i + 1], (n->len - i - 1) * sizeof(*n->key_nodes));
    }
    n->len--;
}

/* Copies a subtree; `budget` counts the nodes still allowed. NULL on failure
 * (out of memory, or the budget or depth exhausted). */
static sy_cfg_node_t *node_copy(const sy_cfg_node_t *src, size_t *budget, int depth)
{
    if (*budget == 0 || depth > SY__CFG_MAX_DEPTH) return NULL;
    (*budget)--;
    sy_cfg_node_t *n = node_new(src->kind, src->file, src->line, src->col);
    if (!n) return NULL;
    n->quoted = src->quoted;
    if (src->scalar && !(n->scalar = strdup(src->scalar))) goto fail;
    for (size_t i = 0; i < src->len; i++) {
        sy_cfg_node_t *v = node_copy(src->items[i], budget, depth + 1);
        if (!v) goto fail;
        if (src->kind == SY__CFG_MAP) {
            sy_cfg_node_t *k = node_copy(src->key_nodes[i], budget, depth + 1);
            if (!k) {
                sy__cfg_free(v);
                goto fail;
            }
            if (map_push(n, k, v) < 0) goto fail;
        } else if (list_push(n, v) < 0) {
            goto fail;
        }
    }
    return n;
fail:
    sy__cfg_free(n);
    return NULL;
}

/* Moves every position in a subtree to that of `at` (values that came from an
 * environment variable have no position of their own). */
static int node_relocate(sy_cfg_node_t *n, const sy_cfg_node_t *at)
{
    char *file = strdup(at->file), *where = strdup(at->where);
    if (!file || !where) {
        free(file);
        free(where);
        return -1;
    }
    free(n->file);
    free(n->where);
    n->file = file;
    n->where = where;
    n->line = at->line;
    n->col = at->col;
    for (size_t i = 0; i < n->len; i++) {
        if (node_relocate(n->items[i], at) < 0) return -1;
        if (n->key_nodes && node_relocate(n->key_nodes[i], at) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */
/* ------------------------------------------------------------------------ */

const sy_cfg_node_t *sy__cfg_get(const sy_cfg_node_t *map, const char *key)
{
    ssize_t i = map_index(map, key);
    return i < 0 ? NULL : map->items[i];
}

const sy_cfg_node_t *sy__cfg_at(const sy_cfg_node_t *node, size_t i, const char **key)
{
    if (key) *key = NULL;
    if (!node || (node->kind != SY__CFG_MAP && node->kind != SY__CFG_LIST) || i >= node->len)
        return NULL;
    if (key && node->kind == SY__CFG_MAP) *key = node->keys[i];
    return node->items[i];
}

const sy_cfg_node_t *sy__cfg_key_node(const sy_cfg_node_t *map, size_t i)
{
    if (!map || map->kind != SY__CFG_MAP || i >= map->len) return NULL;
    return map->key_nodes[i];
}

int sy__cfg_kind(const sy_cfg_node_t *node)
{
    return node ? node->kind : SY__CFG_NULL;
}

const char *sy__cfg_where(const sy_cfg_node_t *node)
{
    return node ? node->where : "";
}

const char *sy__cfg_scalar(const sy_cfg_node_t *node)
{
    return node && node->kind == SY__CFG_SCALAR ? node->scalar : NULL;
}

size_t sy__cfg_len(const sy_cfg_node_t *node)
{
    return node && (node->kind == SY__CFG_MAP || node->kind == SY__CFG_LIST) ? node->len : 0;
}

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
    char *msg = NULL;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    sy__diag_add(p->diag, NULL, "%s:%zu:%zu: %s", p->name, m->line + 1, m->column + 1,
                 rc < 0 ? "error" : msg);
    if (rc >= 0) free(msg);
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
    sy_cfg_node_t *n = node_new(kind, p->name, (int)m->line + 1, (int)m->column + 1);
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
        sy_cfg_node_t *n = node_copy(p->anchors[i].node, &p->budget, depth);
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
        if (list_push(list, item) < 0) {
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
        node_remove(map, i, &value, &key);
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
                node_remove(src, 0, &v, &k);
                if (map_index(map, k->scalar) >= 0) {
                    sy__cfg_free(k);
                    sy__cfg_free(v);
                } else if (map_push(map, k, v) < 0) {
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
        if (map_push(map, key, value) < 0) {
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
        sy__diag_add(diag, NULL, "%s: out of memory", name);
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
/* Environment references                                                    */
/* ------------------------------------------------------------------------ */

typedef struct buf_s {
    char *data;
    size_t len, cap;
} buf_t;

static int buf_put(buf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 64;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *d = realloc(b->data, ncap);
        if (!d) return -1;
        b->data = d;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static bool is_env_name(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool is_scheme(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

/*
 * Resolves the reference "${body}" (body is the text between the braces) into
 * out. Returns 0 or -1 (error reported at `at`).
 */
static int expand_reference(const char *body, size_t n, const sy_cfg_node_t *at, sy__diag_t *d,
                            buf_t *out)
{
    const char *name = body, *def = NULL;
    size_t name_len = n, def_len = 0;
    const char *colon = memchr(body, ':', n);

    if (colon) {
        size_t pre = (size_t)(colon - body);
        if (pre + 1 < n && colon[1] == '-' && is_env_name(body, pre)) {
            /* ${VAR:-default}: the default scheme, with a default value. */
            name_len = pre;
            def = colon + 2;
            def_len = n - pre - 2;
        } else if (pre == 3 && !memcmp(body, "env", 3)) {
            /* ${env:VAR} or ${env:VAR:-default}. */
            name = colon + 1;
            name_len = n - pre - 1;
            for (size_t i = 0; i + 1 < name_len; i++) {
                if (name[i] == ':' && name[i + 1] == '-') {
                    def = name + i + 2;
                    def_len = name_len - i - 2;
                    name_len = i;
                    break;
                }
            }
        } else if (is_scheme(body, pre)) {
            sy__diag_add(d, at,
                         "unsupported reference \"${%.*s}\": scheme \"%.*s\" is not supported "
                         "(only env is; write $$ for a literal $)",
                         (int)n, body, (int)pre, body);
            return -1;
        }
    }
    if (!is_env_name(name, name_len)) {
        sy__diag_add(d, at,
                     "invalid environment variable name \"%.*s\" in \"${%.*s}\": a name must "
                     "match ^[a-zA-Z_][a-zA-Z0-9_]*$",
                     (int)name_len, name, (int)n, body);
        return -1;
    }
    char var[256];
    if (name_len >= sizeof(var)) {
        sy__diag_add(d, at, "environment variable name in \"${%.*s}\" is too long", (int)n, body);
        return -1;
    }
    memcpy(var, name, name_len);
    var[name_len] = '\0';
    const char *val = getenv(var);
    if (!val && def) return buf_put(out, def, def_len);
    if (!val) {
        sy__diag_warn(d, at,
                      "environment variable \"%s\" is not set; it expands to an empty string", var);
        return buf_put(out, "", 0);
    }
    return buf_put(out, val, strlen(val));
}

/*
 * Expands one scalar. *single tells whether the whole scalar was exactly one
 * reference. Returns 0 with *out allocated, or -1.
 */
static int expand_scalar(const char *s, const sy_cfg_node_t *at, sy__diag_t *d, char **out,
                         bool *single)
{
    buf_t b = {0};
    size_t nrefs = 0;
    bool literal = false;

    if (buf_put(&b, "", 0) < 0) goto nomem;
    for (const char *c = s; *c;) {
        const char *dollar = strchr(c, '$');
        if (!dollar) {
            literal = true;
            if (buf_put(&b, c, strlen(c)) < 0) goto nomem;
            break;
        }
        if (dollar > c) {
            literal = true;
            if (buf_put(&b, c, (size_t)(dollar - c)) < 0) goto nomem;
        }
        if (dollar[1] == '$') {
            literal = true;
            if (buf_put(&b, "$", 1) < 0) goto nomem;
            c = dollar + 2;
        } else if (dollar[1] == '{') {
            const char *end = strchr(dollar + 2, '}');
            if (!end) {
                sy__diag_add(d, at,
                             "malformed reference \"%s\": no closing '}' (write $$ for a "
                             "literal $)",
                             dollar);
                goto fail;
            }
            if (expand_reference(dollar + 2, (size_t)(end - dollar - 2), at, d, &b) < 0) goto fail;
            nrefs++;
            c = end + 1;
        } else {
            /* A lone $ (or $VAR, which otelcol no longer expands) stays as it is. */
            literal = true;
            if (buf_put(&b, "$", 1) < 0) goto nomem;
            c = dollar + 1;
        }
    }
    *single = nrefs == 1 && !literal;
    *out = b.data;
    return 0;
nomem:
    sy__diag_add(d, at, "out of memory");
fail:
    free(b.data);
    return -1;
}

/* The value of a whole-scalar reference, read as YAML: a scalar, null, or a flow
 * list or map ("[a, b]"). Anything else (block YAML, a parse error) is taken as a
 * string, so that a value like "a: b" stays the text it is. NULL means "use the
 * text". */
static sy_cfg_node_t *typed_value(const char *text, const sy_cfg_node_t *at)
{
    const char *t = text + strspn(text, " \t");
    sy__diag_t scratch;
    sy__diag_init(&scratch);
    sy_cfg_node_t *v = sy__cfg_parse_string(at->file, text, strlen(text), &scratch);
    sy__diag_free(&scratch);
    if (!v) return NULL;
    if ((v->kind == SY__CFG_MAP && *t != '{') || (v->kind == SY__CFG_LIST && *t != '[') ||
        node_relocate(v, at) < 0) {
        sy__cfg_free(v);
        return NULL;
    }
    return v;
}

int sy__cfg_expand_env(sy_cfg_node_t **np, sy__diag_t *diag)
{
    sy_cfg_node_t *n = *np;
    int rc = 0;

    if (n->kind == SY__CFG_MAP || n->kind == SY__CFG_LIST) {
        for (size_t i = 0; i < n->len; i++)
            if (sy__cfg_expand_env(&n->items[i], diag) < 0) rc = -1;
        return rc;
    }
    if (n->kind != SY__CFG_SCALAR || !strchr(n->scalar, '$')) return 0;

    char *text;
    bool single;
    if (expand_scalar(n->scalar, n, diag, &text, &single) < 0) return -1;
    if (single && !n->quoted) {
        sy_cfg_node_t *v = typed_value(text, n);
        if (v) {
            free(text);
            sy__cfg_free(n);
            *np = v;
            return 0;
        }
        n->quoted = true; /* the text is a string whatever it looks like */
    }
    free(n->scalar);
    n->scalar = text;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Loading, merging, --set                                                   */
/* ------------------------------------------------------------------------ */

void sy__cfg_merge(sy_cfg_node_t **dst, sy_cfg_node_t *src)
{
    sy_cfg_node_t *d = *dst;
    if (!d || d->kind != SY__CFG_MAP || src->kind != SY__CFG_MAP) {
        sy__cfg_free(d);
        *dst = src;
        return;
    }
    while (src->len > 0) {
        sy_cfg_node_t *v, *k;
        node_remove(src, 0, &v, &k);
        ssize_t i = map_index(d, k->scalar);
        if (i >= 0) {
            sy__cfg_merge(&d->items[i], v);
            sy__cfg_free(k);
        } else {
            map_push(d, k, v); /* on out of memory the entry is dropped */
        }
    }
    sy__cfg_free(src);
}

static char *read_file(const char *path, size_t *len, sy__diag_t *diag)
{
    char *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) goto syserr;
    if (!S_ISREG(st.st_mode)) {
        sy__diag_add(diag, NULL, "%s: cannot read config file: not a regular file", path);
        goto fail;
    }
    if ((uint64_t)st.st_size > SY__CFG_MAX_FILE) {
        sy__diag_add(diag, NULL, "%s: config file is larger than %u MiB", path,
                     SY__CFG_MAX_FILE >> 20);
        goto fail;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) goto syserr;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) goto syserr;
        if (r == 0) break;
        got += (size_t)r;
    }
    data[got] = '\0';
    *len = got;
    close(fd);
    return data;
syserr:
    sy__diag_add(diag, NULL, "%s: cannot read config file: %s", path, strerror(errno));
fail:
    free(data);
    if (fd >= 0) close(fd);
    return NULL;
}

/* Finds or makes the map at key `seg` of map *slot, replacing a non-map value. */
static sy_cfg_node_t **set_descend(sy_cfg_node_t **slot, const char *seg, size_t seglen,
                                   const sy_cfg_node_t *pos)
{
    if (!*slot || (*slot)->kind != SY__CFG_MAP) {
        sy_cfg_node_t *m = node_new(SY__CFG_MAP, pos->file, pos->line, pos->col);
        if (!m) return NULL;
        sy__cfg_free(*slot);
        *slot = m;
    }
    sy_cfg_node_t *map = *slot;
    for (size_t i = 0; i < map->len; i++)
        if (strlen(map->keys[i]) == seglen && !memcmp(map->keys[i], seg, seglen))
            return &map->items[i];
    sy_cfg_node_t *k = node_new(SY__CFG_SCALAR, pos->file, pos->line, pos->col);
    sy_cfg_node_t *v = node_new(SY__CFG_NULL, pos->file, pos->line, pos->col);
    if (!k || !v || !(k->scalar = strndup(seg, seglen))) {
        sy__cfg_free(k);
        sy__cfg_free(v);
        return NULL;
    }
    if (map_push(map, k, v) < 0) return NULL;
    return &map->items[map->len - 1];
}

#define SET_MAX_SEGMENTS 64

int sy__cfg_apply_set(sy_cfg_node_t **root, const char *set, size_t index, sy__diag_t *diag)
{
    const char *eq = strchr(set, '=');
    const char *seg[SET_MAX_SEGMENTS];
    size_t seglen[SET_MAX_SEGMENTS], nseg = 0;
    sy_cfg_node_t *pos = node_new(SY__CFG_NULL, "--set", (int)index + 1, 1);
    sy_cfg_node_t *value = NULL;
    int rc = -1;

    if (!pos) goto nomem;
    if (!eq || eq == set) {
        sy__diag_add(diag, pos,
                     "--set \"%s\": expected key=value, such as processors::batch::timeout=2s",
                     set);
        goto out;
    }
    /* "::" is otelcol's separator; "." is accepted when the key has no "::". */
    const char *dc = strstr(set, "::");
    const char *sep = dc && dc < eq ? "::" : ".";
    size_t seplen = strlen(sep);
    for (const char *c = set;;) {
        const char *e = strstr(c, sep);
        if (!e || e > eq) e = eq;
        if (e == c || nseg == SET_MAX_SEGMENTS) {
            sy__diag_add(diag, pos, "--set \"%s\": %s", set,
                         e == c ? "empty key in the path" : "the path is too deep");
            goto out;
        }
        seg[nseg] = c;
        seglen[nseg++] = (size_t)(e - c);
        if (e == eq) break;
        c = e + seplen;
    }
    /* The value is YAML of its own (a scalar, or a flow list or map), placed at
     * "--set:<which --set>:<column of the value>". */
    sy__diag_t vdiag;
    sy__diag_init(&vdiag);
    value = sy__cfg_parse_string("--set", eq + 1, strlen(eq + 1), &vdiag);
    sy__diag_free(&vdiag);
    if (!value) {
        sy__diag_add(diag, pos, "--set \"%s\": the value is not valid YAML", set);
        goto out;
    }
    sy_cfg_node_t *vpos = node_new(SY__CFG_NULL, "--set", (int)index + 1, (int)(eq - set) + 2);
    int moved = vpos ? node_relocate(value, vpos) : -1;
    sy__cfg_free(vpos);
    if (moved < 0) goto nomem;

    sy_cfg_node_t **slot = root;
    for (size_t i = 0; i < nseg; i++)
        if (!(slot = set_descend(slot, seg[i], seglen[i], pos))) goto nomem;
    sy__cfg_free(*slot);
    *slot = value;
    value = NULL;
    rc = 0;
    goto out;
nomem:
    sy__diag_add(diag, NULL, "--set \"%s\": out of memory", set);
out:
    sy__cfg_free(value);
    sy__cfg_free(pos);
    return rc;
}

sy_cfg_node_t *sy__cfg_load_string(const char *name, const char *yaml, sy__diag_t *diag)
{
    sy_cfg_node_t *root = sy__cfg_parse_string(name, yaml, strlen(yaml), diag);
    if (root && sy__cfg_expand_env(&root, diag) < 0) {
        sy__cfg_free(root);
        return NULL;
    }
    return root;
}

sy_cfg_node_t *sy__cfg_load(const char *const *files, size_t nfiles, const char *const *sets,
                            size_t nsets, sy__diag_t *diag)
{
    sy_cfg_node_t *root = NULL;
    bool failed = false;

    for (size_t i = 0; i < nfiles; i++) {
        size_t len;
        char *text = read_file(files[i], &len, diag);
        if (!text) {
            failed = true;
            continue;
        }
        sy_cfg_node_t *doc = sy__cfg_parse_string(files[i], text, len, diag);
        free(text);
        if (!doc) {
            failed = true;
            continue;
        }
        /* An empty file adds nothing; it does not wipe what came before. */
        if (doc->kind == SY__CFG_NULL && root) {
            sy__cfg_free(doc);
            continue;
        }
        sy__cfg_merge(&root, doc);
    }
    if (!failed && !root) {
        sy__diag_add(diag, NULL, "no configuration: give at least one --config file");
        failed = true;
    }
    if (failed) goto fail;
    if (sy__cfg_expand_env(&root, diag) < 0) goto fail;
    for (size_t i = 0; i < nsets; i++)
        if (sy__cfg_apply_set(&root, sets[i], i, diag) < 0) failed = true;
    if (failed) goto fail;
    return root;
fail:
    sy__cfg_free(root);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Rendering                                                                 */
/* ------------------------------------------------------------------------ */

static int emit_write(void *data, unsigned char *buffer, size_t size)
{
    return buf_put(data, (const char *)buffer, size) == 0;
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
    buf_t out = {0};
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
