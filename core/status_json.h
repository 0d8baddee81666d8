/*
 * status_json.h - the document behind api->status_json() (ABI 1.5): the running
 * router's pipelines, components, counters, last errors and process figures as
 * JSON (docs/status.md).
 */
#ifndef SY_CORE_STATUS_JSON_H
#define SY_CORE_STATUS_JSON_H

#include <stddef.h>

#include <switchyard/plugin.h>

/*
 * Builds the document for the engine that `inst` belongs to. On SY_OK *out is a
 * malloc()ed NUL-terminated string the caller frees, *len (if len is not NULL)
 * its length. SY_EINVAL for NULL arguments, SY_ENOMEM; SY_EAGAIN, at once,
 * while a reload holds the graph (sy__status_graph_lock()). Any thread while the
 * engine runs.
 */
int sy__status_json(sy_instance_t *inst, char **out, size_t *len);

/*
 * Excludes sy__status_json() from the engine's graph while a reload changes it
 * (instances move between engines, the old engine is freed): between lock and
 * unlock, sy__status_json() does not wait but answers SY_EAGAIN, so a status page
 * on a loop thread never blocks on a reload. Lock waits for a document being
 * built to finish (it reads for well under a millisecond). Main thread.
 */
void sy__status_graph_lock(void);
void sy__status_graph_unlock(void);

#endif
