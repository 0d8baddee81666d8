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
 * its length. SY_EINVAL for NULL arguments, SY_ENOMEM. Any thread while the
 * engine runs (see status_json.c for what a reload must exclude).
 */
int sy__status_json(sy_instance_t *inst, char **out, size_t *len);

#endif
