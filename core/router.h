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

/* A configuration a reload replaced: kept until the router closes, since the
 * components that went on running were configured from it. */
typedef struct sy__router_gen_s {
    sy_cfg_node_t *root;
    sy__service_cfg_t svc;
    struct sy__router_gen_s *next;
} sy__router_gen_t;

typedef struct sy__router_s {
    sy__registry_t reg;
    sy_cfg_node_t *root;
    sy__service_cfg_t svc;
    bool svc_built;
    sy__engine_t *engine;
    bool started;
    sy__router_gen_t *retired;
    uint64_t shutdown_timeout_ms;
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
/*
 * Loads the configuration again (the same files and --set flags, or opts->yaml)
 * and applies it to the running router (reload.c): components whose settings did
 * not change go on untouched, the rest are replaced without losing anything
 * acknowledged. Returns SY_OK; SY_EINVAL when the new configuration does not
 * load or check (errors in diag; nothing changed); SY_ERROR when a new component
 * failed to start before traffic moved (nothing changed) or after (the new
 * configuration runs without it; logged); SY__ETIMEDOUT when a component is
 * stuck (the process should leave). Main thread.
 */
int sy__router_reload(sy__router_t *r, const sy__router_opts_t *opts, sy__diag_t *diag);
/* Stops (if started) and frees. Returns what sy__engine_stop() returned. When a
 * thread was left stuck inside a plugin (sy__router_wedged), nothing is freed and
 * nothing unloaded: the process should then leave with _exit(). */
int sy__router_close(sy__router_t *r);
/* True once a component missed the shutdown deadline and its thread still runs. */
bool sy__router_wedged(const sy__router_t *r);

#endif
