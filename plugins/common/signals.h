/*
 * signals.h - the one place that names the three signals: their config names,
 * item names (for metrics and for sentences), OTLP request descriptors, HTTP paths
 * and gRPC services. The core and the plugins both read this table; nothing else
 * spells these out.
 */
#ifndef SY_COMMON_SIGNALS_H
#define SY_COMMON_SIGNALS_H

#include <protobuf-c/protobuf-c.h>
#include <switchyard/plugin.h>

#define SYC_SIGNAL_COUNT 3

typedef struct syc_signal_info_s {
    sy_signal_t signal;
    int index;                /* 0, 1, 2: traces, metrics, logs */
    const char *name;         /* "traces": pipeline IDs, config, logs */
    const char *item_metric;  /* "spans", "metric_points", "log_records": metric names */
    const char *item_text;    /* "spans", "metric data points", "log records": sentences */
    const char *http_path;    /* "/v1/traces": OTLP/HTTP */
    const char *grpc_service; /* "opentelemetry.proto.collector.trace.v1.TraceService" */
    const ProtobufCMessageDescriptor *request;  /* Export*ServiceRequest */
    const ProtobufCMessageDescriptor *response; /* Export*ServiceResponse */
} syc_signal_info_t;

/* The table, in index order. */
extern const syc_signal_info_t syc_signal_table[SYC_SIGNAL_COUNT];

/* The entry of `signal` (one of SY_SIGNAL_*); NULL for anything else. */
const syc_signal_info_t *syc_signal_info(sy_signal_t signal);

/* The entry whose index, name or gRPC service matches; NULL if none does. */
const syc_signal_info_t *syc_signal_by_index(int index);
const syc_signal_info_t *syc_signal_by_name(const char *name, size_t len);
const syc_signal_info_t *syc_signal_by_grpc_service(const char *service, size_t len);

#endif
