/*
 * debug.c - the `debug` exporter: writes what it receives to the console.
 *
 * As the collector's debugexporter: every batch gives one summary line
 * (`Traces {"resource spans": 1, "spans": 2}`) through the host's logger; with
 * `verbosity: normal` one more line per span, data point or log record follows,
 * and with `verbosity: detailed` the full otlptext dump. The text of one batch is
 * formatted into a buffer and written with one fwrite() and fflush(), so that the
 * lines of other threads never land inside it.
 *
 * Threads: consume() runs on the exporter's loop thread; nothing here blocks
 * except the write to stderr (or stdout), which is what a debug exporter is for.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <switchyard/plugin.h>

#include "debug_format.h"

/* The most text one batch may produce; the rest is cut with a note. */
#define OUTPUT_LIMIT ((size_t)64 << 20)

enum { VERBOSITY_BASIC = 0, VERBOSITY_NORMAL = 1, VERBOSITY_DETAILED = 2 };

typedef struct debug_config_s {
    int verbosity;
    int64_t sampling_initial;
    int64_t sampling_thereafter;
    bool use_internal_logger;
} debug_config_t;

typedef struct debug_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const debug_config_t *cfg;
    /* Log sampling, per one-second window (zap's sampler, simplified to one key). */
    uint64_t window_start_ms;
    uint64_t window_count;
    uint64_t sampled_out; /* batches not written because of sampling */
} debug_state_t;

static const char *const verbosity_names[] = {"basic", "normal", "detailed", NULL};

static const sy_config_field_t debug_fields[] = {
    {SY_CFG_FIELD("verbosity", SY_CFG_ENUM, debug_config_t, verbosity), .default_value = "basic",
     .description = "How much to write.", .enum_values = verbosity_names},
    {SY_CFG_FIELD("sampling_initial", SY_CFG_INT, debug_config_t, sampling_initial),
     .default_value = "2", .description = "Batches written each second before sampling starts."},
    {SY_CFG_FIELD("sampling_thereafter", SY_CFG_INT, debug_config_t, sampling_thereafter),
     .default_value = "1",
     .description = "After `sampling_initial` batches in a second, write every Mth. `1` writes all "
                    "(no sampling); `0` writes none."},
    {SY_CFG_FIELD("use_internal_logger", SY_CFG_BOOL, debug_config_t, use_internal_logger),
     .default_value = "true",
     .description = "`true`: write to stderr through the router's logger (its level applies). "
                    "`false`: write to stdout, whatever `service.telemetry.logs` says."},
};

static int debug_validate(const void *config, char *err, size_t err_len)
{
    const debug_config_t *c = config;
    if (c->sampling_initial < 0) {
        snprintf(err, err_len, "sampling_initial must be greater or equal to 0");
        return SY_EINVAL;
    }
    if (c->sampling_thereafter < 0) {
        snprintf(err, err_len, "sampling_thereafter must be greater or equal to 0");
        return SY_EINVAL;
    }
    return SY_OK;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* True if this batch is written: the first sampling_initial of each second, then
 * every sampling_thereafter-th. */
static bool sample(debug_state_t *s)
{
    uint64_t now = monotonic_ms();
    if (now - s->window_start_ms >= 1000) {
        s->window_start_ms = now;
        s->window_count = 0;
    }
    uint64_t n = ++s->window_count;
    uint64_t initial = (uint64_t)s->cfg->sampling_initial;
    uint64_t thereafter = (uint64_t)s->cfg->sampling_thereafter;
    if (n <= initial) return true;
    return thereafter != 0 && (n - initial) % thereafter == 0;
}

/* The host's line prefix ("2026-11-22T04:32:40.123Z<TAB>info<TAB>debug<TAB>"), so
 * the first line of a dump reads like every other log line, as in the collector. */
static void put_prefix(debug_state_t *s, dbg_buf_t *b)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    dbg_buf_printf(b, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\tinfo\t%s\t", tm.tm_year + 1900,
                   tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, s->api->instance_id(s->inst));
}

static void write_out(FILE *f, const dbg_buf_t *b)
{
    if (!b->data || b->len == 0) return;
    fwrite(b->data, 1, b->len, f);
    fflush(f);
}

static int debug_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                        void **state)
{
    /* normal and detailed read batches through the view (ABI 1.1). */
    if (!SY_API_HAS(api, view_build_abort)) return SY_ENOTSUP;
    debug_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    s->window_start_ms = monotonic_ms();
    *state = s;
    return SY_OK;
}

static int debug_start(void *state)
{
    (void)state;
    return SY_OK;
}

/*
 * Writes one batch and releases it. Never fails: a batch that cannot be read is
 * reported in a warning and dropped, as there is nothing to retry.
 */
static int debug_consume(void *state, sy_batch_t *batch)
{
    debug_state_t *s = state;
    const sy_host_api_t *api = s->api;
    bool internal = s->cfg->use_internal_logger;

    /* With the internal logger the host's level applies, as in the collector. */
    if ((internal && !api->log_enabled(s->inst, SY_LOG_INFO)) || !sample(s)) {
        s->sampled_out++;
        api->batch_release(batch);
        return SY_OK;
    }
    sy_batch_info_t info;
    api->batch_info(batch, &info);
    char summary[256];
    dbg_buf_t b;
    dbg_buf_init(&b, OUTPUT_LIMIT);
    b.api = api;
    sy_view_t *view = NULL;
    const uint8_t *bytes = NULL;
    size_t len = 0;
    if (s->cfg->verbosity == VERBOSITY_BASIC) {
        /* Basic verbosity needs only counts: take them from the encoded bytes when
         * the batch has no decoded form yet, rather than decoding every batch (which
         * costs CPU and, under load, hundreds of megabytes of decoded batches in
         * flight). */
        bool counted = false;
        if (info.has_encoded && !info.has_decoded) {
            bytes = api->batch_encoded(batch, &len);
            counted = bytes && dbg_summary_encoded(info.signal, info.items, bytes, len, summary,
                                                   sizeof(summary)) == 0;
        }
        const void *req = counted ? NULL : api->batch_request(batch);
        if (!counted && !req) {
            SY_LOG(api, s->inst, SY_LOG_WARN,
                   "could not decode a batch of %" PRIu64 " items; not written", info.items);
            api->batch_release(batch);
            return SY_OK;
        }
        if (!counted) dbg_summary(info.signal, req, summary, sizeof(summary));
    } else {
        /* normal and detailed read through the view: strings are pointer and
         * length into the encoded bytes (NUL bytes kept), and nothing is decoded. */
        view = api->view_open(batch);
        bytes = view ? api->batch_encoded(batch, &len) : NULL;
        if (!view || !bytes) {
            SY_LOG(api, s->inst, SY_LOG_WARN,
                   "could not read a batch of %" PRIu64 " items; not written", info.items);
            if (view) api->view_close(view);
            api->batch_release(batch);
            return SY_OK;
        }
        dbg_summary_view(&b, info.signal, view, summary, sizeof(summary));
    }

    if (internal)
        api->log(s->inst, SY_LOG_INFO, "%s", summary);
    else {
        put_prefix(s, &b);
        dbg_buf_printf(&b, "%s\n", summary);
    }
    if (view) {
        put_prefix(s, &b);
        if (s->cfg->verbosity == VERBOSITY_DETAILED)
            dbg_format_detailed(&b, info.signal, view, bytes, len);
        else
            dbg_format_normal(&b, info.signal, view);
        api->view_close(view);
        if (b.truncated) {
            /* Lift the bound for the one note that says the text was cut. */
            b.truncated = false;
            b.limit = SIZE_MAX;
            dbg_buf_puts(&b, "\n... (output cut at the size limit)\n");
        }
    }
    write_out(internal ? stderr : stdout, &b);
    dbg_buf_free(&b);
    api->batch_release(batch);
    return SY_OK;
}

static void debug_shutdown(void *state)
{
    debug_state_t *s = state;
    if (s->sampled_out)
        SY_LOG(s->api, s->inst, SY_LOG_DEBUG, "%" PRIu64 " batches were not written (sampling)",
               s->sampled_out);
}

static void debug_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t debug_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "debug",
    .signals = SY_SIGNAL_ALL,
    .flags = 0,
    .version = "0.1.0",
    .description = "Writes telemetry to the console, as the collector's debug exporter.",
    .config_fields = debug_fields,
    .config_field_count = sizeof(debug_fields) / sizeof(debug_fields[0]),
    .config_size = sizeof(debug_config_t),
    .validate = debug_validate,
    .create = debug_create,
    .start = debug_start,
    .consume = debug_consume,
    .shutdown = debug_shutdown,
    .destroy = debug_destroy,
};

SY_PLUGIN_DEFINE(debug_plugin)
