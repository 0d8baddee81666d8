/*
 * jaeger_grpc.c - the jaeger receiver's `grpc` protocol: the collector's
 * jaeger.api_v2.CollectorService/PostSpans, served by the otlp receiver's gRPC
 * server (../otlp/otlp_grpc.c, compiled into this plugin) through its custom
 * service hook: the same HTTP/2 handling, connection guards, deadlines and byte
 * budgets, answered with the same status codes (UNIMPLEMENTED for another
 * method or service, INVALID_ARGUMENT for a message that does not decode,
 * RESOURCE_EXHAUSTED / UNAVAILABLE when the pipeline pushes back) and an empty
 * PostSpansResponse on success.
 *
 * A PostSpansRequest is unpacked by protobuf-c into the call's batch arena,
 * converted to the receiver's Jaeger structs (jaeger_model.h) as the collector's
 * ProtoToTraces reads them (regrouped by process, see jaeger_proto_convert())
 * and translated by jaeger_otlp.c, with the proto path's rules (jg_span_t.proto).
 *
 * Everything runs on the instance's loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jaeger.h"
#include "jaeger_model.h"
#include "signals.h"
#include "otlp.h"
#include "otlp_settle.h"

#include "jaeger/api_v2/collector.pb-c.h"

/* Symbols otlp_grpc.c takes from otlp.c, which this plugin does not compile. */
void otlp_grpc_guard_count(otlp_state_t *st, otlp_grpc_guard_t which)
{
    st->api->metric_add(st->m_grpc_guard[which], 1);
}

sy_signal_t otlp_signal_at(int i)
{
    return syc_signal_by_index(i)->signal;
}

/* The jaeger receiver has no authenticator (grpc_auth stays NULL), so this is
 * never called. */
void otlp_auth_refused(otlp_state_t *st, bool grpc)
{
    (void)st;
    (void)grpc;
}

int otlp_check_items(const otlp_state_t *st, sy_batch_t *batch, char *err, size_t err_len)
{
    (void)st;
    (void)batch;
    (void)err;
    (void)err_len;
    return 0;
}

/* The collector's `PostSpans` handler: decode, translate, hand on. */
static int post_spans(otlp_state_t *ost, sy_batch_t *batch, const uint8_t *data, size_t len,
                      char *err, size_t err_len)
{
    jaeger_state_t *st = ost->custom_ctx;
    ProtobufCAllocator *alloc = st->api->batch_allocator(batch);
    size_t spans = 0;
    char why[300];
    void *req = NULL;
    int rc = jaeger_proto_translate(data, len, alloc, &req, &spans, why, sizeof(why));
    if (rc == SY_EINVAL) {
        st->api->metric_add(st->m_grpc_invalid, 1);
        jaeger_ratelog(st, &st->log_grpc, "grpc: PostSpans refused: %s", why);
        snprintf(err, err_len, "%s", why);
        return rc;
    }
    if (rc != SY_OK) {
        snprintf(err, err_len, "out of memory");
        return rc;
    }
    if (st->api->batch_set_decoded(batch, req) != 0) {
        snprintf(err, err_len, "the translated request was refused");
        return SY_ERROR;
    }
    return SY_OK;
}

static const char *const guard_names[OTLP_GRPC_GUARD_COUNT] = {
    "idle",     "age",     "keepalive", "read_timeout", "max_connections",
    "inflight", "streams", "pings",     "protocol",
};

int jaeger_grpc_create(jaeger_state_t *st)
{
    const sy_host_api_t *api = st->api;
    otlp_config_t *oc = calloc(1, sizeof(*oc));
    otlp_state_t *ost = calloc(1, sizeof(*ost));
    if (!oc || !ost) {
        free(oc);
        free(ost);
        return SY_ENOMEM;
    }
    oc->grpc = true;
    oc->grpc_endpoint = st->cfg->grpc_endpoint;
    /* With a persistent queue behind, a call is answered once its spans are
     * written there (otlp_grpc.c's settle wait, as for OTLP/gRPC). */
    oc->settle_timeout = st->cfg->settle_timeout;
    /* A call waits for room in a full queue as an OTLP/gRPC call does. */
    oc->queue_wait = st->cfg->queue_wait;
    ost->api = api;
    ost->inst = st->inst;
    ost->cfg = oc;
    ost->m_grpc_calls = api->metric_register(st->inst, "receiver_jaeger_grpc_calls",
                                             "grpc PostSpans calls answered.", SY_METRIC_COUNTER);
    ost->m_grpc_failed =
        api->metric_register(st->inst, "receiver_jaeger_grpc_failed_calls",
                             "grpc calls answered with another status than OK.", SY_METRIC_COUNTER);
    st->m_grpc_invalid = api->metric_register(st->inst, "receiver_jaeger_grpc_invalid_requests",
                                              "grpc PostSpans messages that did not decode or "
                                              "translate (answered INVALID_ARGUMENT).",
                                              SY_METRIC_COUNTER);
    for (int i = 0; i < OTLP_GRPC_GUARD_COUNT; i++) {
        char name[96];
        snprintf(name, sizeof(name), "receiver_jaeger_grpc_guard_%s", guard_names[i]);
        ost->m_grpc_guard[i] = api->metric_register(
            st->inst, name, "grpc connections or calls a connection guard acted on.",
            SY_METRIC_COUNTER);
    }
    ost->m_grpc_auth_failed =
        api->metric_register(st->inst, "receiver_jaeger_grpc_auth_failures",
                             "grpc calls answered UNAUTHENTICATED: their authenticator refused "
                             "them.",
                             SY_METRIC_COUNTER);
    ost->m_settle_timeouts = api->metric_register(
        st->inst, "receiver_jaeger_grpc_settle_timeouts",
        "grpc PostSpans calls answered UNAVAILABLE: their spans were not written to the "
        "persistent queue within settle_timeout.",
        SY_METRIC_COUNTER);
    ost->m_settle_failed = api->metric_register(
        st->inst, "receiver_jaeger_grpc_settle_failed",
        "grpc PostSpans calls answered UNAVAILABLE: an exporter failed or gave up their spans "
        "before they were written, or the receiver stopped.",
        SY_METRIC_COUNTER);
    syc_emit_wait_metrics(api, st->inst, "receiver_jaeger_grpc", "gRPC PostSpans calls",
                          &ost->m_queue_waits, &ost->m_queue_wait_expired);
    ost->tls = st->grpc_tls.ctx; /* NULL: h2c; jaeger.c frees it */
    ost->custom_service = "jaeger.api_v2.CollectorService";
    ost->custom_method = "PostSpans";
    ost->custom_handle = post_spans;
    ost->custom_ctx = st;
    st->grpc_cfg = oc;
    st->grpc = ost;
    return SY_OK;
}

int jaeger_grpc_start(jaeger_state_t *st)
{
    otlp_state_t *ost = st->grpc;
    if (syc_auth_guard_init(&ost->grpc_auth, st->api, st->inst, "protocols.grpc.auth",
                            st->cfg->grpc_authenticator, ost->m_grpc_auth_failed, "gRPC",
                            "receiver_jaeger_grpc_auth_failures") != 0)
        return SY_ERROR;
    if (otlp_grpc_start(ost) != 0) return SY_ERROR;
    syc_tls_server_start_reload(&st->grpc_tls);
    return SY_OK;
}

void jaeger_grpc_shutdown(jaeger_state_t *st)
{
    syc_tls_server_stop(&st->grpc_tls);
    if (st->grpc) otlp_emit_close(st->grpc); /* held calls: answered UNAVAILABLE */
    if (st->grpc) otlp_grpc_shutdown(st->grpc);
}

void jaeger_grpc_free(jaeger_state_t *st)
{
    free(st->grpc);
    free(st->grpc_cfg);
    st->grpc = NULL;
    st->grpc_cfg = NULL;
}
