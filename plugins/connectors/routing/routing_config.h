/*
 * routing_config.h - the routing connector's settings and how they become a
 * routing table (routing_table.h).
 */
#ifndef SY_ROUTING_CONFIG_H
#define SY_ROUTING_CONFIG_H

#include <switchyard/plugin.h>

#include "routing_table.h"

typedef struct routing_config_s {
    const sy_cfg_node_t *table;             /* list of {context, statement|condition, pipelines} */
    const sy_cfg_node_t *default_pipelines; /* list of pipeline ids */
    int error_mode;                         /* rt_error_mode_t */
} routing_config_t;

/*
 * Builds the table of c into *t (which it zeroes first). inst may be NULL (at
 * validation): with an instance, a route that repeats an earlier one is logged
 * as ignored, as the collector does. Returns 0, or SY_EINVAL with
 * "file:line:col: table[i]...: <what is wrong>" in err (t is then empty), or
 * SY_ENOMEM.
 */
int routing_config_load(const sy_host_api_t *api, sy_instance_t *inst, const routing_config_t *c,
                        rt_table_t *t, char *err, size_t err_len);

/*
 * Checks that every pipeline that a route or default_pipelines names is one that
 * the connector feeds, for each signal it takes part in (api->connector_pipelines).
 * Returns 0, or SY_EINVAL with "file:line:col: table[i].pipelines[j]: pipeline
 * "x" not found: ..." in err, or SY_ENOMEM. Loop thread, in create().
 */
int routing_config_check_pipelines(const sy_host_api_t *api, sy_instance_t *inst,
                                   const routing_config_t *c, char *err, size_t err_len);

#endif
