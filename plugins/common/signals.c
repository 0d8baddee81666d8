/*
 * signals.c - the signal table (see signals.h).
 */
#include "signals.h"

#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

const syc_signal_info_t syc_signal_table[SYC_SIGNAL_COUNT] = {
    {
        .signal = SY_SIGNAL_TRACES,
        .index = 0,
        .name = "traces",
        .item_metric = "spans",
        .item_text = "spans",
        .http_path = "/v1/traces",
        .grpc_service = "opentelemetry.proto.collector.trace.v1.TraceService",
        .request =
            &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor,
        .response =
            &opentelemetry__proto__collector__trace__v1__export_trace_service_response__descriptor,
    },
    {
        .signal = SY_SIGNAL_METRICS,
        .index = 1,
        .name = "metrics",
        .item_metric = "metric_points",
        .item_text = "metric data points",
        .http_path = "/v1/metrics",
        .grpc_service = "opentelemetry.proto.collector.metrics.v1.MetricsService",
        .request =
            &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        .response =
            &opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__descriptor,
    },
    {
        .signal = SY_SIGNAL_LOGS,
        .index = 2,
        .name = "logs",
        .item_metric = "log_records",
        .item_text = "log records",
        .http_path = "/v1/logs",
        .grpc_service = "opentelemetry.proto.collector.logs.v1.LogsService",
        .request =
            &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor,
        .response =
            &opentelemetry__proto__collector__logs__v1__export_logs_service_response__descriptor,
    },
};

const syc_signal_info_t *syc_signal_info(sy_signal_t signal)
{
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++)
        if (syc_signal_table[i].signal == signal) return &syc_signal_table[i];
    return NULL;
}

const syc_signal_info_t *syc_signal_by_index(int index)
{
    return index >= 0 && index < SYC_SIGNAL_COUNT ? &syc_signal_table[index] : NULL;
}

const syc_signal_info_t *syc_signal_by_name(const char *name, size_t len)
{
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++)
        if (strlen(syc_signal_table[i].name) == len &&
            memcmp(syc_signal_table[i].name, name, len) == 0)
            return &syc_signal_table[i];
    return NULL;
}

const syc_signal_info_t *syc_signal_by_grpc_service(const char *service, size_t len)
{
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++)
        if (strlen(syc_signal_table[i].grpc_service) == len &&
            memcmp(syc_signal_table[i].grpc_service, service, len) == 0)
            return &syc_signal_table[i];
    return NULL;
}
