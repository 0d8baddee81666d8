/*
 * service_config.h - the collector's configuration model (components, pipelines,
 * service.extensions, service.telemetry), read from a loaded tree and checked for
 * everything that does not need the plugins themselves.
 *
 * Ownership: strings and arrays belong to the sy__service_cfg_t and are freed by
 * sy__service_cfg_free(); node pointers point into the tree it was built from,
 * which must outlive it. Main thread.
 */
#ifndef SY_CORE_SERVICE_CONFIG_H
#define SY_CORE_SERVICE_CONFIG_H

#include <stddef.h>

#include <switchyard/plugin.h>

#include "config.h"
#include "diag.h"

typedef struct sy__component_cfg_s {
    char *id;                  /* "otlp/2" */
    char *type;                /* "otlp" */
    char *name;                /* "2", or NULL when the ID has no name */
    sy_kind_t kind;            /* the section it is declared in */
    const sy_cfg_node_t *node; /* the component's value (may be NULL or null) */
    const sy_cfg_node_t *key;  /* where it is declared (its key) */
} sy__component_cfg_t;

typedef struct sy__pipeline_cfg_s {
    char *id; /* "traces/2" */
    sy_signal_t signal;
    char *name; /* "2", or NULL */
    /* Component IDs in the order written, duplicates of receivers and exporters
     * dropped (with a warning); each with the node of the reference, for errors.
     * A receiver or exporter may name a connector. */
    char **receivers;
    size_t nreceivers;
    const sy_cfg_node_t **receiver_nodes;
    char **processors;
    size_t nprocessors;
    const sy_cfg_node_t **processor_nodes;
    char **exporters;
    size_t nexporters;
    const sy_cfg_node_t **exporter_nodes;
    const sy_cfg_node_t *node; /* the pipeline's key */
} sy__pipeline_cfg_t;

typedef struct sy__service_cfg_s {
    /* Every receiver, processor, exporter, connector and extension declared. */
    sy__component_cfg_t *components;
    size_t ncomponents;
    sy__pipeline_cfg_t *pipelines;
    size_t npipelines;
    /* service.extensions, in order. */
    char **extensions;
    size_t nextensions;
    const sy_cfg_node_t **extension_nodes;
    /* service.telemetry.logs.level: debug|info|warn|error; default info. */
    sy_log_level_t log_level;
    /* service.telemetry.metrics.address, or "host:port" of the first
     * readers[].pull.exporter.prometheus; default "localhost:8888"; NULL when the
     * metrics level is none (or no reader can be served). */
    char *metrics_address;
    /* service.telemetry.metrics.tls (telemetry_tls.h), checked; NULL: plain HTTP.
     * Points into the configuration tree. */
    const sy_cfg_node_t *metrics_tls;
    /* 0 none, 1 basic, 2 normal (default), 3 detailed. */
    int metrics_level;
} sy__service_cfg_t;

/*
 * Builds the model from a loaded tree (NULL or null: an empty configuration) and
 * checks it: top-level and service keys, component and pipeline IDs, pipelines
 * that are empty or refer to undeclared components, duplicates, connectors used
 * on one side only, and the telemetry settings. Keeps going after an error to
 * report as many as it can, each with the file:line:col of the node at fault.
 * Returns 0, or -1 with errors in diag; *out is filled either way (as far as it
 * could be) and must be freed with sy__service_cfg_free().
 */
int sy__service_cfg_build(const sy_cfg_node_t *root, sy__service_cfg_t *out, sy__diag_t *diag);
void sy__service_cfg_free(sy__service_cfg_t *cfg);

/* The component of a kind with that ID, or NULL. */
const sy__component_cfg_t *sy__service_cfg_find(const sy__service_cfg_t *cfg, sy_kind_t kind,
                                                const char *id);

/* Checks a component ID ("type[/name]") as otelcol does. Returns NULL when it is
 * valid, else a sentence saying what is wrong (static storage). */
const char *sy__component_id_check(const char *id);

/* "receiver", "processor", ... */
const char *sy__component_kind_name(sy_kind_t kind);

#endif /* SY_CORE_SERVICE_CONFIG_H */
