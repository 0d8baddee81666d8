/*
 * router.h - one whole router: configuration, plugin registry and engine.
 *
 * What main() does, as a library, so that tests can run a real router in-process
 * (real loader, real plugins, real threads) from a YAML string.
 */
#ifndef SY_CORE_ROUTER_H
#define SY_CORE_ROUTER_H

#include "config.h"
#include "diag.h"
#include "engine.h"
#include "loader.h"
#include "service_config.h"

typedef struct sy__router_s {
    sy__registry_t reg;
    sy_cfg_node_t *root;
    sy__service_cfg_t svc;
    bool svc_built;
    sy__engine_t *engine;
    bool started;
} sy__router_t;

typedef struct sy__router_opts_s {
    const char *const *configs; /* files, merged in order */
    size_t nconfigs;
    const char *yaml; /* or: one in-memory document (then configs is ignored) */
    const char *const *sets;
    size_t nsets;
    const char *const *plugin_dirs;
    size_t nplugin_dirs;
    uint64_t shutdown_timeout_ms; /* 0: the default, 10 s */
} sy__router_opts_t;

/* Loads and checks everything (no thread starts). NULL with errors in diag. */
sy__router_t *sy__router_open(const sy__router_opts_t *opts, sy__diag_t *diag);
int sy__router_start(sy__router_t *r);
/* Stops (if started) and frees. Returns what sy__engine_stop() returned. When a
 * thread was left stuck inside a plugin (sy__router_wedged), nothing is freed and
 * nothing unloaded: the process should then leave with _exit(). */
int sy__router_close(sy__router_t *r);
/* True once a component missed the shutdown deadline and its thread still runs. */
bool sy__router_wedged(const sy__router_t *r);

#endif
