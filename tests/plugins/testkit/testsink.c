/*
 * exporter "testsink" (tests only): takes batches, optionally slowly, and writes
 * a report at shutdown: batches, items, and (with verify) how many distinct span
 * sequence numbers (see testgen) it saw and how many arrivals repeated one seen
 * before. With `counts_path` (and verify) it also writes, at shutdown, one byte
 * per sequence number 0..max_seq-1: how many times that span arrived (255 means
 * 255 or more), so that a test can check the multiplicity of every span when one
 * receiver reaches the sink along several pipelines.
 *
 * With `digest` it also reports, for traces, what the copy-on-write tests need to
 * tell changed data from unchanged: how many span names carry no, one, or more
 * than one "mut." prefix (see testmutate); a sum of hashes of every packed span,
 * which does not depend on how spans were batched; and a chained hash of every
 * batch's encoded bytes in order. These come after the fields other tests read,
 * and like them are decimal integers (the integration tests parse every field so).
 *
 * With `delay` it holds each batch that long before taking the next, declining
 * (SY_EAGAIN) while it is busy and calling api->ready() when done: the slow
 * exporter that the back-pressure tests need.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

typedef struct cfg_s {
    int64_t delay_ns;
    char *report_path;
    bool verify;
    int64_t max_seq;
    char *counts_path;
    char *gate_path;
    bool digest;
} cfg_t;

static const sy_config_field_t fields[] = {
    {SY_CFG_FIELD("delay", SY_CFG_DURATION, cfg_t, delay_ns), .default_value = "0s",
     .description = "time per batch"},
    {SY_CFG_FIELD("report_path", SY_CFG_STRING, cfg_t, report_path),
     .description = "file the report is written to at shutdown"},
    {SY_CFG_FIELD("verify", SY_CFG_BOOL, cfg_t, verify), .default_value = "false",
     .description = "decode and check span sequence numbers"},
    {SY_CFG_FIELD("max_seq", SY_CFG_INT, cfg_t, max_seq), .default_value = "1000000",
     .description = "highest sequence number expected"},
    {SY_CFG_FIELD("gate_path", SY_CFG_STRING, cfg_t, gate_path),
     .description = "decline every batch until this file exists (a test opens the gate)"},
    {SY_CFG_FIELD("counts_path", SY_CFG_STRING, cfg_t, counts_path),
     .description =
         "file the arrivals of each sequence number are written to at shutdown (with verify)"},
    {SY_CFG_FIELD("digest", SY_CFG_BOOL, cfg_t, digest), .default_value = "false",
     .description = "count renamed spans and hash the spans and bytes seen"},
};

typedef struct sink_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const cfg_t *cfg;
    sy_timer_t *timer;
    sy_batch_t *busy;
    uint64_t batches, items, distinct, duplicates, out_of_range, undecodable;
    uint8_t *seen;     /* arrivals of each sequence number, saturating at 255 */
    uint64_t names[3]; /* spans whose name has 0, 1, 2 or more "mut." prefixes */
    uint64_t span_hash, bytes_hash;
    sy_timer_t *gate_timer; /* polls for gate_path while the gate is shut */
    bool gate_open;
} sink_t;

#define FNV_OFFSET 14695981039346656037ull

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void digest(sink_t *s, sy_batch_t *b)
{
    size_t len = 0;
    const uint8_t *enc = s->api->batch_encoded(b, &len);
    if (enc) s->bytes_hash = fnv1a(s->bytes_hash, enc, len);
    const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
        s->api->batch_request(b);
    if (!req) return;
    for (size_t i = 0; i < req->n_resource_spans; i++)
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                req->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                const char *name = ss->spans[k]->name ? ss->spans[k]->name : "";
                int prefixes = 0;
                while (strncmp(name, "mut.", 4) == 0) {
                    name += 4;
                    prefixes++;
                }
                s->names[prefixes < 2 ? prefixes : 2]++;
                size_t n = protobuf_c_message_get_packed_size(&ss->spans[k]->base);
                uint8_t *buf = malloc(n ? n : 1);
                if (!buf) continue;
                protobuf_c_message_pack(&ss->spans[k]->base, buf);
                s->span_hash += fnv1a(FNV_OFFSET, buf, n);
                free(buf);
            }
        }
}

static void take(sink_t *s, sy_batch_t *b)
{
    sy_batch_info_t info;
    s->api->batch_info(b, &info);
    s->batches++;
    s->items += info.items;
    if (s->cfg->digest && info.signal == SY_SIGNAL_TRACES) digest(s, b);
    if (s->cfg->verify && info.signal == SY_SIGNAL_TRACES) {
        const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
            s->api->batch_request(b);
        if (!req) {
            s->undecodable++;
        } else {
            for (size_t i = 0; i < req->n_resource_spans; i++)
                for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
                    const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                        req->resource_spans[i]->scope_spans[j];
                    for (size_t k = 0; k < ss->n_spans; k++) {
                        const ProtobufCBinaryData *id = &ss->spans[k]->span_id;
                        uint64_t seq = 0;
                        for (size_t x = 0; x < id->len && x < 8; x++)
                            seq = seq << 8 | id->data[x];
                        if (seq >= (uint64_t)s->cfg->max_seq) {
                            s->out_of_range++;
                        } else {
                            if (s->seen[seq])
                                s->duplicates++;
                            else
                                s->distinct++;
                            if (s->seen[seq] < UINT8_MAX) s->seen[seq]++;
                        }
                    }
                }
        }
    }
    s->api->batch_release(b);
}

static void done_waiting(void *arg)
{
    sink_t *s = arg;
    s->timer = NULL;
    sy_batch_t *b = s->busy;
    s->busy = NULL;
    if (b) take(s, b);
    s->api->ready(s->inst);
}

/* While the gate is shut, look for its file every 10 ms; once it is there, the
 * host is told to offer the declined batch again. */
static void gate_check(void *arg)
{
    sink_t *s = arg;
    if (access(s->cfg->gate_path, F_OK) != 0) return;
    s->gate_open = true;
    s->api->timer_stop(s->gate_timer);
    s->gate_timer = NULL;
    s->api->ready(s->inst);
}

static int sink_consume(void *state, sy_batch_t *b)
{
    sink_t *s = state;
    if (s->cfg->gate_path && !s->gate_open) {
        if (access(s->cfg->gate_path, F_OK) == 0) {
            s->gate_open = true;
        } else {
            if (!s->gate_timer) s->gate_timer = s->api->timer_start(s->inst, 10, 10, gate_check, s);
            return SY_EAGAIN;
        }
    }
    if (s->cfg->delay_ns <= 0) {
        take(s, b);
        return SY_OK;
    }
    if (s->busy) return SY_EAGAIN;
    s->busy = b;
    s->timer =
        s->api->timer_start(s->inst, (uint64_t)(s->cfg->delay_ns / 1000000), 0, done_waiting, s);
    return SY_OK;
}

static int sink_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    sink_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    s->bytes_hash = FNV_OFFSET;
    if (s->cfg->verify && !(s->seen = calloc((size_t)s->cfg->max_seq, 1))) {
        free(s);
        return SY_ENOMEM;
    }
    *state = s;
    return SY_OK;
}

static void sink_shutdown(void *state)
{
    sink_t *s = state;
    if (s->timer) s->api->timer_stop(s->timer);
    s->timer = NULL;
    if (s->gate_timer) s->api->timer_stop(s->gate_timer);
    s->gate_timer = NULL;
    if (s->busy) take(s, s->busy); /* finishing in-flight work is what a drain means */
    s->busy = NULL;
    if (s->cfg->report_path) {
        FILE *f = fopen(s->cfg->report_path, "w");
        if (f) {
            fprintf(f,
                    "batches=%llu items=%llu distinct=%llu duplicates=%llu out_of_range=%llu "
                    "undecodable=%llu names0=%llu names1=%llu names2=%llu span_hash=%llu "
                    "bytes_hash=%llu\n",
                    (unsigned long long)s->batches, (unsigned long long)s->items,
                    (unsigned long long)s->distinct, (unsigned long long)s->duplicates,
                    (unsigned long long)s->out_of_range, (unsigned long long)s->undecodable,
                    (unsigned long long)s->names[0], (unsigned long long)s->names[1],
                    (unsigned long long)s->names[2], (unsigned long long)s->span_hash,
                    (unsigned long long)s->bytes_hash);
            fclose(f);
        }
    }
    if (s->cfg->counts_path && s->seen) {
        FILE *f = fopen(s->cfg->counts_path, "wb");
        if (f) {
            fwrite(s->seen, 1, (size_t)s->cfg->max_seq, f);
            fclose(f);
        }
    }
}

static void sink_destroy(void *state)
{
    sink_t *s = state;
    free(s->seen);
    free(s);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "testsink",
    .signals = SY_SIGNAL_ALL,
    .version = "test",
    .description = "Test exporter: counts and checks what it is given, optionally slowly.",
    .config_fields = fields,
    .config_field_count = sizeof(fields) / sizeof(fields[0]),
    .config_size = sizeof(cfg_t),
    .create = sink_create,
    .consume = sink_consume,
    .shutdown = sink_shutdown,
    .destroy = sink_destroy,
};

SY_PLUGIN_DEFINE(descriptor)
