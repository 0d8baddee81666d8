/*
 * sg_config.h - the servicegraph connector's configuration struct (filled by the
 * host from the field table in servicegraph.c) and the settings resolved from it.
 */
#ifndef SY_SERVICEGRAPH_SG_CONFIG_H
#define SY_SERVICEGRAPH_SG_CONFIG_H

#include "sg.h"

typedef struct sg_config_s {
    const sy_cfg_node_t *latency_buckets; /* latency_histogram_buckets */
    sy_cfg_strlist_t dimensions;
    int64_t store_ttl; /* ns */
    int64_t store_max_items;
    int64_t cache_loop;              /* ns */
    int64_t store_expiration_loop;   /* ns */
    const sy_cfg_node_t *peer_attrs; /* virtual_node_peer_attributes */
    bool virtual_node_extra_label;
    int64_t metrics_flush_interval;   /* ns; 0: on every batch */
    int64_t metrics_timestamp_offset; /* ns */
    char *db_attr;                    /* database_name_attribute (deprecated) */
    sy_cfg_strlist_t db_attrs;        /* database_name_attributes */
    int64_t exponential_histogram_max_size;
    char *metrics_exporter; /* deprecated in the collector, ignored */
} sg_config_t;

/* What the raw nodes and the fallbacks resolve to (owned, freed by
 * sg_settings_free). */
typedef struct sg_settings_s {
    double *bounds;
    size_t nbounds;
    char **peers;
    size_t npeer;
    char **db;
    size_t ndb;
} sg_settings_t;

/* Go's time.ParseDuration, in seconds. Returns 0 or -1. */
int sg_parse_duration(const char *s, double *seconds);

/* Resolves the settings. Returns 0, or SY_EINVAL / SY_ENOMEM with a sentence in
 * err (starting with the file:line:col of the node at fault). On error *st still
 * needs sg_settings_free. Only api->cfg_* is called. */
int sg_settings_load(sg_settings_t *st, const sy_host_api_t *api, const sg_config_t *c, char *err,
                     size_t err_len);
void sg_settings_free(sg_settings_t *st);

/* The engine's options from both; they point into st and c. */
void sg_settings_opts(const sg_settings_t *st, const sg_config_t *c, sg_opts_t *o);

#endif
