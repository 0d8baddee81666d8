/*
 * router.c - one whole router as a library: scan the plugin path, load the
 * configuration, build the service model and the engine (sy__router_open), start
 * it, and stop and free it. main.c and the in-process tests both use it.
 */
#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "status_json.h"

/* The configuration tree opts names: its YAML document, or its files and --set
 * flags. NULL with the errors in diag. */
static sy_cfg_node_t *load_root(const sy__router_opts_t *opts, sy__diag_t *diag)
{
    if (opts->yaml) return sy__cfg_load_string("<config>", opts->yaml, diag);
    return sy__cfg_load(opts->configs, opts->nconfigs, opts->sets, opts->nsets, diag);
}

/* Frees a configuration generation (its service model may be all zeros). */
static void gen_free(sy__router_gen_t *g)
{
    sy__service_cfg_free(&g->svc);
    sy__cfg_free(g->root);
    free(g);
}

sy__router_t *sy__router_open(const sy__router_opts_t *opts, sy__diag_t *diag)
{
    sy__router_t *r = calloc(1, sizeof(*r));
    if (!r) {
        sy__diag_add(diag, NULL, "out of memory starting the router");
        return NULL;
    }
    if (sy__registry_scan(&r->reg, opts->plugin_dirs, opts->nplugin_dirs) < 0) {
        sy__diag_add(diag, NULL, "out of memory scanning the plugin path");
        goto fail;
    }
    if (!(r->root = load_root(opts, diag))) goto fail;
    r->svc_built = true;
    if (sy__service_cfg_build(r->root, &r->svc, diag) < 0) goto fail;
    sy__log_set_level(r->svc.log_level);
    r->engine = sy__engine_build(&r->svc, &r->reg, diag);
    if (!r->engine) goto fail;
    if (opts->shutdown_timeout_ms) r->engine->shutdown_timeout_ms = opts->shutdown_timeout_ms;
    r->shutdown_timeout_ms = r->engine->shutdown_timeout_ms;
    return r;
fail:
    /* Every way to fail leaves a reason; one that did not (memory ran out while
     * reporting) still gets one. */
    if (!sy__diag_errors(diag)) sy__diag_add(diag, NULL, "out of memory opening the router");
    sy__router_close(r);
    return NULL;
}

int sy__router_start(sy__router_t *r)
{
    if (sy__engine_start(r->engine) < 0) return SY_ERROR;
    r->started = true;
    return SY_OK;
}

bool sy__router_wedged(const sy__router_t *r)
{
    return r && r->engine && r->engine->wedged;
}

int sy__router_reload(sy__router_t *r, const sy__router_opts_t *opts, sy__diag_t *diag)
{
    sy__router_gen_t *gen = calloc(1, sizeof(*gen));
    if (!gen) {
        sy__diag_add(diag, NULL, "out of memory loading the configuration");
        return SY_EINVAL;
    }
    gen->root = load_root(opts, diag);
    sy__engine_t *nu = NULL;
    if (!gen->root || sy__service_cfg_build(gen->root, &gen->svc, diag) < 0 ||
        !(nu = sy__engine_build(&gen->svc, &r->reg, diag))) {
        if (!sy__diag_errors(diag))
            sy__diag_add(diag, NULL, "out of memory loading the configuration");
        gen_free(gen);
        return SY_EINVAL;
    }
    const char *was = r->svc.metrics_address, *now = gen->svc.metrics_address;
    if ((was == NULL) != (now == NULL) || (was && strcmp(was, now) != 0))
        SY__LOG(SY_LOG_WARN, NULL,
                "reload: service.telemetry.metrics changed; the own metrics stay on %s until "
                "a restart",
                was ? was : "(none)");
    nu->shutdown_timeout_ms = r->shutdown_timeout_ms;
    sy__log_set_level(gen->svc.log_level);
    /* Status pages (api->status_json) are told to ask again until the graph is
     * whole; after a stuck component (wedged) they go on being told so. */
    sy__status_graph_lock();
    int rc = sy__engine_reload(r->engine, nu);
    if (rc == SY__ETIMEDOUT) {
        r->engine->wedged = true;
        return rc;
    }
    if (rc == SY_EAGAIN) {
        /* Undone: the old engine got its pools back and runs as before. */
        sy__log_set_level(r->svc.log_level);
        sy__engine_free(nu);
        sy__status_graph_unlock();
        gen_free(gen);
        return SY_ERROR;
    }
    /* The running configuration is the new one; the old is kept (see router.h). */
    sy_cfg_node_t *old_root = r->root;
    sy__service_cfg_t old_svc = r->svc;
    r->root = gen->root;
    r->svc = gen->svc;
    nu->svc = &r->svc;
    gen->root = old_root;
    gen->svc = old_svc;
    gen->next = r->retired;
    r->retired = gen;
    r->engine = nu;
    sy__status_graph_unlock();
    return rc;
}

int sy__router_close(sy__router_t *r)
{
    if (!r) return SY_OK;
    int rc = SY_OK;
    if (r->started) rc = sy__engine_stop(r->engine);
    if (sy__router_wedged(r)) return SY__ETIMEDOUT; /* plugins' code may still run */
    sy__engine_free(r->engine);
    if (r->svc_built) sy__service_cfg_free(&r->svc);
    sy__cfg_free(r->root);
    while (r->retired) {
        sy__router_gen_t *g = r->retired;
        r->retired = g->next;
        gen_free(g);
    }
    sy__registry_free(&r->reg);
    free(r);
    return rc;
}
