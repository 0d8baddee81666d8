/*
 * otlp.h - private to the otlp receiver: its configuration and state, shared by
 * otlp.c (configuration and lifecycle) and otlp_http.c (the HTTP protocol).
 */
#ifndef SY_RECEIVER_OTLP_H
#define SY_RECEIVER_OTLP_H

#include <stdbool.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "http_server.h"

#define OTLP_SIGNALS 3 /* traces, metrics, logs, in that order below */

typedef struct otlp_config_s {
    bool http;
    char *http_endpoint;
    uint64_t http_max_body;
    char *http_paths[OTLP_SIGNALS];
    sy_cfg_strlist_t cors_origins;
    sy_cfg_strlist_t cors_headers;
    int64_t cors_max_age;
    bool http_include_metadata;

    bool grpc;
    char *grpc_endpoint;
    int64_t grpc_max_recv_msg_size_mib;
    int64_t grpc_max_concurrent_streams;
    const sy_cfg_node_t *grpc_keepalive;
    const sy_cfg_node_t *grpc_tls;
    bool grpc_include_metadata;
} otlp_config_t;

typedef struct otlp_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const otlp_config_t *cfg;
    sy_http_server_t *http;
    bool http_closing;
    /* The URL path of each signal, with a leading '/' (owned). */
    char *paths[OTLP_SIGNALS];
    size_t max_body;
    sy_metric_t *m_requests; /* HTTP requests answered */
    sy_metric_t *m_failed;   /* of which not answered 200 */
} otlp_state_t;

/* The signal of index i (0 traces, 1 metrics, 2 logs). */
sy_signal_t otlp_signal_at(int i);

/* Starts and stops the HTTP protocol (otlp_http.c). Loop thread. */
int otlp_http_start(otlp_state_t *st);
void otlp_http_shutdown(otlp_state_t *st);

#endif
