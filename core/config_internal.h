/*
 * config_internal.h - what the configuration files (config_node.c,
 * config_yaml.c, config_expand.c, config_merge.c, config_load.c) share and the
 * rest of the core does not use: node construction and surgery, and a growable
 * text buffer. The public interface stays config.h.
 *
 * Ownership follows config.h: a node owns its children, keys and strings.
 */
#ifndef SY_CORE_CONFIG_INTERNAL_H
#define SY_CORE_CONFIG_INTERNAL_H

#include <sys/types.h>

#include "config.h"

/* A new node of `kind` at file:line:col, with no children and no scalar. NULL on
 * out of memory. */
sy_cfg_node_t *sy__cfg_node_new(int kind, const char *file, int line, int col);

/* Appends a list item, taking ownership of it (also on failure). Returns 0 or -1. */
int sy__cfg_list_push(sy_cfg_node_t *list, sy_cfg_node_t *item);

/* Appends a map entry, taking ownership of key and value (also on failure).
 * Returns 0 or -1. */
int sy__cfg_map_push(sy_cfg_node_t *map, sy_cfg_node_t *key, sy_cfg_node_t *value);

/* The index of `key` in a map, or -1 (also when `map` is not a map). */
ssize_t sy__cfg_map_index(const sy_cfg_node_t *map, const char *key);

/* Removes entry i of a map or list, handing its value (and key, when `key` is not
 * NULL) to the caller. */
void sy__cfg_node_remove(sy_cfg_node_t *n, size_t i, sy_cfg_node_t **value, sy_cfg_node_t **key);

/* Copies a subtree; `budget` counts the nodes still allowed and is decremented.
 * NULL on failure (out of memory, or the budget or depth exhausted). */
sy_cfg_node_t *sy__cfg_node_copy(const sy_cfg_node_t *src, size_t *budget, int depth);

/* Moves every position in a subtree to that of `at`. Returns 0 or -1. */
int sy__cfg_node_relocate(sy_cfg_node_t *n, const sy_cfg_node_t *at);

/* A growable NUL-terminated text buffer; `data` is owned by whoever holds it. */
typedef struct sy__cfg_buf_s {
    char *data;
    size_t len, cap;
} sy__cfg_buf_t;

/* Appends n bytes (keeping a NUL after them). Returns 0 or -1 on out of memory. */
int sy__cfg_buf_put(sy__cfg_buf_t *b, const char *s, size_t n);

#endif /* SY_CORE_CONFIG_INTERNAL_H */
