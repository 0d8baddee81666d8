/*
 * tls_config.c - a plugin's server `tls` block (see tls_config.h).
 */
#include <stdio.h>

#include "tls_config.h"

static bool is_set(const char *s)
{
    return s && *s;
}

bool syc_tls_server_wanted(const syc_tls_server_cfg_t *cfg)
{
    return cfg->present || is_set(cfg->cert_file) || is_set(cfg->key_file) ||
           is_set(cfg->client_ca_file);
}

static syc_tls_settings_t settings_of(const syc_tls_server_cfg_t *cfg)
{
    return (syc_tls_settings_t){
        .cert_file = cfg->cert_file,
        .key_file = cfg->key_file,
        .client_ca_file = cfg->client_ca_file,
        .min_version = cfg->min_version,
        .max_version = cfg->max_version,
        .cipher_suites = &cfg->cipher_suites,
        .http1 = true,
    };
}

int syc_tls_server_cfg_check(const syc_tls_server_cfg_t *cfg, const char *where, char *err,
                             size_t err_len)
{
    if (!syc_tls_server_wanted(cfg)) return 0;
    syc_tls_settings_t set = settings_of(cfg);
    if (syc_tls_settings_check(&set, where, err, err_len) != 0) return SY_EINVAL;
    if (cfg->reload_interval < 0) {
        snprintf(err, err_len, "%s::reload_interval: must not be negative", where);
        return SY_EINVAL;
    }
    return 0;
}

int syc_tls_server_open(syc_tls_server_t *t, const sy_host_api_t *api, sy_instance_t *inst,
                        const syc_tls_server_cfg_t *cfg, const char *where, bool http1)
{
    *t = (syc_tls_server_t){.api = api, .inst = inst, .where = where};
    if (!syc_tls_server_wanted(cfg)) return 0;
    char err[700];
    t->set = settings_of(cfg);
    t->set.http1 = http1;
    t->reload_ns = cfg->reload_interval;
    if (syc_tls_settings_check(&t->set, where, err, sizeof(err)) != 0 ||
        !(t->ctx = syc_tls_ctx_new(&t->set, err, sizeof(err)))) {
        SY_LOG(api, inst, SY_LOG_ERROR, "%s: %s", where, err);
        return SY_EINVAL;
    }
    return 0;
}

/* reload_interval: reads the files again; a failure keeps what was loaded. */
static void on_reload(void *arg)
{
    syc_tls_server_t *t = arg;
    char err[700];
    if (syc_tls_ctx_reload(t->ctx, err, sizeof(err)) != 0)
        SY_LOG(t->api, t->inst, SY_LOG_WARN, "%s: %s; the TLS files loaded before stay in use",
               t->where, err);
    else
        SY_LOG(t->api, t->inst, SY_LOG_DEBUG, "%s: reloaded the TLS files", t->where);
}

void syc_tls_server_attach(syc_tls_server_t *t, syc_http_server_t *server)
{
    if (!t->ctx) return;
    syc_http_server_set_tls(server, t->ctx);
    syc_tls_server_start_reload(t);
}

void syc_tls_server_start_reload(syc_tls_server_t *t)
{
    if (!t->ctx || t->reload_ns <= 0 || t->reload) return;
    uint64_t ms = (uint64_t)t->reload_ns / 1000000u;
    t->reload = t->api->timer_start(t->inst, ms ? ms : 1, ms ? ms : 1, on_reload, t);
    if (!t->reload)
        SY_LOG(t->api, t->inst, SY_LOG_WARN,
               "%s: cannot start the timer of reload_interval: the TLS files will not be "
               "reloaded",
               t->where);
}

void syc_tls_server_stop(syc_tls_server_t *t)
{
    if (t->reload) t->api->timer_stop(t->reload);
    t->reload = NULL;
}

void syc_tls_server_free(syc_tls_server_t *t)
{
    syc_tls_ctx_free(t->ctx);
    t->ctx = NULL;
}
