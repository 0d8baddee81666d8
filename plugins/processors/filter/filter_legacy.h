/*
 * filter_legacy.h - the collector's legacy `include` / `exclude` blocks of the
 * filter processor (spans, logs, metrics, with match_type strict | regexp),
 * translated into one OTTL condition that is true of the items to drop.
 */
#ifndef SY_FILTER_LEGACY_H
#define SY_FILTER_LEGACY_H

#include <stddef.h>

#include <switchyard/plugin.h>

typedef enum filter_legacy_kind_e { FL_SPANS, FL_LOGS, FL_METRICS } filter_legacy_kind_t;

/*
 * Builds the condition for the `include` and `exclude` nodes (either may be NULL)
 * of `what` ("spans", "logs", "metrics"): an item is dropped when an include
 * block is given and it does not match it, or an exclude block is given and it
 * matches it. *out is a malloc'd NUL-terminated condition (the caller frees it),
 * or NULL when neither block is given. Returns 0, SY_ENOMEM, or SY_EINVAL with
 * "file:line:col: <key>: message" in err (an unknown key, a bad match_type, an
 * invalid regex).
 */
int filter_legacy_condition(const sy_host_api_t *api, filter_legacy_kind_t kind, const char *what,
                            const sy_cfg_node_t *include, const sy_cfg_node_t *exclude, char **out,
                            char *err, size_t err_len);

#endif
