/*
 * prom_config.h - the receiver's `config` block: Prometheus's configuration
 * format, the subset this receiver implements (README.md lists it).
 */
#ifndef SY_PROM_CONFIG_H
#define SY_PROM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "curl_uv.h"
#include "prom_relabel.h"

typedef struct prom_static_target_s {
    char *address;        /* host:port */
    prom_label_t *labels; /* malloc'ed names and values */
    size_t nlabels;
} prom_static_target_t;

typedef struct prom_scrape_config_s {
    char *job_name;
    int64_t interval_ms, timeout_ms;
    char *metrics_path;
    char *scheme;
    char **params; /* name, value, name, value ... (nparams pairs) */
    size_t nparams;
    bool honor_labels, honor_timestamps;
    uint64_t sample_limit;    /* 0: none */
    uint64_t body_size_limit; /* 0: the receiver's bound */
    prom_static_target_t *targets;
    size_t ntargets;
    prom_relabel_t *rules;
    size_t nrules;
    /* tls_config: ca_file, cert_file, key_file, insecure_skip_verify, min_version
     * and max_version (Prometheus's TLS12 spelling, stored as configtls' "1.2"),
     * for https targets. */
    syc_tls_client_t tls;
} prom_scrape_config_t;

typedef struct prom_config_s {
    int64_t global_interval_ms, global_timeout_ms;
    prom_scrape_config_t *scrapes;
    size_t nscrapes;
} prom_config_t;

/* Reads `node` (the receiver's `config` map). Returns 0, or SY_EINVAL with
 * "file:line:col: sentence" in err, or SY_ENOMEM; free with prom_config_free()
 * whatever the result. Main or loop thread (api->cfg_* only). */
int prom_config_parse(const sy_host_api_t *api, const sy_cfg_node_t *node, prom_config_t *cfg,
                      char *err, size_t err_len);
void prom_config_free(prom_config_t *cfg);

/* A Prometheus duration ("1m30s", "500ms", "1d") in milliseconds; -1 if invalid. */
int prom_duration_ms(const char *s, int64_t *out);

#endif
