/*
 * view.h - the view: reading and changing a batch's encoded request through
 * opaque nodes and plain C values (ABI 1.1). These are the functions the host
 * API table hands to plugins; the contracts are written at the table's members
 * in include/switchyard/plugin.h, the design in docs/view.md.
 */
#ifndef SY_CORE_VIEW_H
#define SY_CORE_VIEW_H

#include <switchyard/plugin.h>

sy_view_t *sy__view_open(sy_batch_t *batch);
void sy__view_close(sy_view_t *view);
sy_view_node_t *sy__view_root(sy_view_t *view);
sy_node_kind_t sy__view_kind(const sy_view_node_t *node);
sy_view_node_t *sy__view_parent_api(const sy_view_node_t *node);
size_t sy__view_count(sy_view_node_t *node, sy_view_rel_t rel);
sy_view_node_t *sy__view_at(sy_view_node_t *node, sy_view_rel_t rel, size_t i);
int sy__view_get(sy_view_node_t *node, sy_field_t field, sy_value_t *out);
size_t sy__view_attr_count(sy_view_node_t *node);
int sy__view_attr_at(sy_view_node_t *node, size_t i, sy_value_t *key, sy_value_t *val);
int sy__view_attr_get(sy_view_node_t *node, const char *key, size_t keylen, sy_value_t *val);
int sy__view_value_next(sy_value_iter_t *it, sy_value_t *key, sy_value_t *val);

/* Edits (view_edit.c). */
int sy__view_set(sy_view_node_t *node, sy_field_t field, const sy_value_t *val);
int sy__view_attr_set(sy_view_node_t *node, const char *key, size_t keylen, const sy_value_t *val,
                      sy_attr_mode_t mode);
int sy__view_attr_delete(sy_view_node_t *node, const char *key, size_t keylen);
int sy__view_attr_rename(sy_view_node_t *node, const char *key, size_t keylen, const char *new_key,
                         size_t new_keylen);
int sy__view_drop(sy_view_node_t *node);
int sy__view_commit(sy_view_t *view);

/* The shared view (view.c): a view stays attached to its batch between
 * processors. sy__view_settle() writes its checkpointed edits into the batch and
 * lets it go: called before anything but the view reads or shares the batch
 * (batch.c's accessors, retain, the exporters' fan-out). sy__view_batch_gone():
 * the batch is being freed. */
void sy__view_settle(sy_batch_t *batch);
void sy__view_batch_gone(sy_batch_t *batch);

/* The builder (view_build.c). `origin` is the making instance's ID. */
sy_view_builder_t *sy__view_build(const char *origin, sy_signal_t signal);
int sy__view_build_add(sy_view_builder_t *builder, const sy_view_node_t *item);
sy_batch_t *sy__view_build_finish(sy_view_builder_t *builder);
void sy__view_build_abort(sy_view_builder_t *builder);

#endif
