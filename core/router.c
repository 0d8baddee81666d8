#include "router.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

sy__router_t *sy__router_open(const sy__router_opts_t *opts, sy__diag_t *diag)
{
    sy__router_t *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    if (sy__registry_scan(&r->reg, opts->plugin_dirs, opts->nplugin_dirs) < 0) {
        sy__diag_add(diag, NULL, "out of memory scanning the plugin path");
        goto fail;
    }
    if (opts->yaml)
        r->root = sy__cfg_load_string("<config>", opts->yaml, diag);
    else
        r->root = sy__cfg_load(opts->configs, opts->nconfigs, opts->sets, opts->nsets, diag);
    if (!r->root) goto fail;
    r->svc_built = true;
    if (sy__service_cfg_build(r->root, &r->svc, diag) < 0) goto fail;
    sy__log_set_level(r->svc.log_level);
    r->engine = sy__engine_build(&r->svc, &r->reg, diag);
    if (!r->engine) goto fail;
    return r;
fail:
    sy__router_close(r);
    return NULL;
}

int sy__router_start(sy__router_t *r)
{
    sy__shutdown_loss_reset();
    if (sy__engine_start(r->engine) < 0) return SY_ERROR;
    r->started = true;
    return SY_OK;
}

int sy__router_close(sy__router_t *r)
{
    if (!r) return SY_OK;
    int rc = SY_OK;
    if (r->started) {
        rc = sy__engine_stop(r->engine);
        uint64_t lost = sy__shutdown_loss();
        if (lost) {
            SY__LOG(SY_LOG_ERROR, NULL,
                    "Shutdown: %llu items were not delivered by the shutdown deadline and are "
                    "counted as failed",
                    (unsigned long long)lost);
            rc = SY_ERROR;
        }
    }
    sy__engine_free(r->engine);
    if (r->svc_built) sy__service_cfg_free(&r->svc);
    sy__cfg_free(r->root);
    sy__registry_free(&r->reg);
    free(r);
    return rc;
}
