/*
 * config_node.c - the configuration tree's nodes: making, freeing, growing,
 * copying and relocating them, the read-only accessors the rest of the core uses,
 * and the small text buffer the other config files build strings in.
 *
 * Everything that produces a tree (config_yaml.c), rewrites one
 * (config_expand.c, config_merge.c) or reads files into one (config_load.c)
 * goes through the helpers here, declared in config_internal.h.
 */
#include "config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sy_cfg_node_t *sy__cfg_node_new(int kind, const char *file, int line, int col)
{
    sy_cfg_node_t *n = calloc(1, sizeof(*n));
    if (!n) return NULL;
    n->kind = kind;
    n->line = line;
    n->col = col;
    n->file = strdup(file);
    if (!n->file || !(n->where = sy__diag_where(file, line, col))) {
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
int sy__cfg_list_push(sy_cfg_node_t *list, sy_cfg_node_t *item)
{
    if (node_reserve(list) < 0) {
        sy__cfg_free(item);
        return -1;
    }
    list->items[list->len++] = item;
    return 0;
}

/* Appends a map entry, taking ownership of key and value (also on failure). */
int sy__cfg_map_push(sy_cfg_node_t *map, sy_cfg_node_t *key, sy_cfg_node_t *value)
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

ssize_t sy__cfg_map_index(const sy_cfg_node_t *map, const char *key)
{
    if (!map || map->kind != SY__CFG_MAP) return -1;
    for (size_t i = 0; i < map->len; i++)
        if (strcmp(map->keys[i], key) == 0) return (ssize_t)i;
    return -1;
}

/* Removes entry i of a map or list, handing its value (and key) to the caller. */
void sy__cfg_node_remove(sy_cfg_node_t *n, size_t i, sy_cfg_node_t **value, sy_cfg_node_t **key)
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
sy_cfg_node_t *sy__cfg_node_copy(const sy_cfg_node_t *src, size_t *budget, int depth)
{
    if (*budget == 0 || depth > SY__CFG_MAX_DEPTH) return NULL;
    (*budget)--;
    sy_cfg_node_t *n = sy__cfg_node_new(src->kind, src->file, src->line, src->col);
    if (!n) return NULL;
    n->quoted = src->quoted;
    if (src->scalar && !(n->scalar = strdup(src->scalar))) goto fail;
    for (size_t i = 0; i < src->len; i++) {
        sy_cfg_node_t *v = sy__cfg_node_copy(src->items[i], budget, depth + 1);
        if (!v) goto fail;
        if (src->kind == SY__CFG_MAP) {
            sy_cfg_node_t *k = sy__cfg_node_copy(src->key_nodes[i], budget, depth + 1);
            if (!k) {
                sy__cfg_free(v);
                goto fail;
            }
            if (sy__cfg_map_push(n, k, v) < 0) goto fail;
        } else if (sy__cfg_list_push(n, v) < 0) {
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
int sy__cfg_node_relocate(sy_cfg_node_t *n, const sy_cfg_node_t *at)
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
        if (sy__cfg_node_relocate(n->items[i], at) < 0) return -1;
        if (n->key_nodes && sy__cfg_node_relocate(n->key_nodes[i], at) < 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Accessors                                                                 */
/* ------------------------------------------------------------------------ */

const sy_cfg_node_t *sy__cfg_get(const sy_cfg_node_t *map, const char *key)
{
    ssize_t i = sy__cfg_map_index(map, key);
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
/* Text buffer                                                              */
/* ------------------------------------------------------------------------ */

int sy__cfg_buf_put(sy__cfg_buf_t *b, const char *s, size_t n)
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
