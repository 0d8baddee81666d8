/*
 * ottl_view.h - the OTTL accessor (ottl.h) over the view of a batch (ABI 1.1,
 * docs/view.md): OTTL paths of every context resolve to view nodes, fields and
 * attributes, values convert between sy_value_t and syc_ottl_value_t, and the
 * editors write through view_set / view_attr_set / view_attr_delete /
 * view_attr_rename. The filter and transform processors share it.
 *
 * Reads see the batch as it was when the view was opened or last committed
 * (edits are recorded and applied by view_commit), so a statement does not see
 * what an earlier statement of the same batch changed.
 *
 * Ownership: a syc_ottl_view_item_t is the caller's (usually on its stack, or in
 * its state); it holds no memory of its own and is valid while its view is open
 * and until the view is committed. One thread at a time, as the view.
 */
#ifndef SY_COMMON_OTTL_VIEW_H
#define SY_COMMON_OTTL_VIEW_H

#include <switchyard/plugin.h>

#include "ottl.h"

/* How many nested map and slice values (kvlists and arrays inside attributes or a
 * body) one evaluation may hold at once; handles are reused in a ring. */
#define SYC_OTTL_VIEW_POOL 64

/* A map or slice handle: the attributes of a node (node set), or a MAP/ARRAY value
 * read from the view (node NULL), which is read-only. */
typedef struct syc_ottl_view_map_s {
    sy_view_node_t *node;
    sy_value_t value;
} syc_ottl_view_map_t;

/* The item the accessor callbacks receive as `void *item`. */
typedef struct syc_ottl_view_item_s {
    const sy_host_api_t *api;
    sy_view_node_t *node;     /* the item of the context: span, event, log, point, ... */
    sy_view_node_t *scope;    /* the enclosing scope (NULL in the resource context) */
    sy_view_node_t *resource; /* the enclosing resource */
    sy_view_node_t *metric;   /* a data point's metric, or the metric itself */
    syc_ottl_view_map_t attrs, scope_attrs, resource_attrs;
    syc_ottl_view_map_t pool[SYC_OTTL_VIEW_POOL];
    unsigned next;
    /* Lists and maps the program builds (Split, literals), encoded: chunks that
     * never move, reused from one bind to the next. Freed by
     * syc_ottl_view_item_free(). */
    struct syc_ottl_view_chunk_s *chunks;
    unsigned epoch; /* counts binds */
} syc_ottl_view_item_t;

/* An item starts zeroed (`syc_ottl_view_item_t it = {0};` or calloc). */

/* Frees what the item allocated (the built lists and maps); the item may be bound
 * again afterwards. */
void syc_ottl_view_item_free(syc_ottl_view_item_t *it);

/* The accessor: every callback, editors included. */
extern const syc_ottl_accessor_t syc_ottl_view_accessor;

/* Points item at node (a resource, scope, span, event, log, metric or data point)
 * and finds its enclosing nodes. */
void syc_ottl_view_bind(syc_ottl_view_item_t *item, const sy_host_api_t *api, sy_view_node_t *node);

/* Calls fn(node, arg) for every node of the context ctx in the request under
 * root, in order: resources, scopes, spans (and their events), metrics (and their
 * points), log records. Stops at the first negative return of fn and returns it;
 * otherwise 0. The contexts of another signal visit nothing. */
typedef int (*syc_ottl_view_visit_fn)(sy_view_node_t *node, void *arg);
int syc_ottl_view_walk(const sy_host_api_t *api, sy_view_node_t *root, syc_ottl_context_t ctx,
                       syc_ottl_view_visit_fn fn, void *arg);

/* A list of compiled programs of one context. */
typedef struct syc_ottl_list_s {
    syc_ottl_context_t ctx;
    size_t count;
    syc_ottl_prog_t **progs;
} syc_ottl_list_t;

/*
 * Compiles every string of the YAML list `node` (a SY_CFG_RAW node; NULL or null
 * gives an empty list) as a condition, or a statement when statements is true,
 * for ctx, appending them to *list. On a compile error, or an element that is not
 * a string, fills err with "file:line:col: <what>[i]: col N: message" (the place
 * of the element, then the column inside it) and returns SY_EINVAL; SY_ENOMEM.
 * What is appended before an error stays in the list; free it with
 * syc_ottl_list_free.
 */
int syc_ottl_list_compile(const sy_host_api_t *api, const sy_cfg_node_t *node, const char *what,
                          syc_ottl_context_t ctx, bool statements, syc_ottl_list_t *list, char *err,
                          size_t err_len);
void syc_ottl_list_free(syc_ottl_list_t *list);

/* Appends prog to list; on SY_ENOMEM prog is freed. */
int syc_ottl_list_push(syc_ottl_list_t *list, syc_ottl_prog_t *prog);

/* The `context:` of a group (a scalar node) as a context among `allowed` (bit
 * set); SY_EINVAL with "file:line:col: <what>.context: unknown context 'x' for
 * <key>" otherwise. */
int syc_ottl_context_from_cfg(const sy_host_api_t *api, const sy_cfg_node_t *node, unsigned allowed,
                              const char *what, const char *key, syc_ottl_context_t *ctx, char *err,
                              size_t err_len);

/* Adds to *named the contexts that the paths of every string of the YAML list
 * `node` start with (syc_ottl_context_names), for inferring a group's context.
 * Returns 0, or SY_EINVAL with "file:line:col: <what>[i]: col N: message". */
int syc_ottl_list_names(const sy_host_api_t *api, const sy_cfg_node_t *node, const char *what,
                        unsigned *named, char *err, size_t err_len);

#endif
