/*
 * exporterhelper.h - what the OTLP exporters share, as the collector's
 * exporterhelper defines it: `timeout`, `retry_on_failure` (exponential back-off
 * with randomization, Retry-After / RetryInfo honoured, max_elapsed_time) and
 * `sending_queue` (queue_size, num_consumers, sizer requests|items|bytes,
 * block_on_overflow), independent of the transport. The sizer and queue_size are
 * the collector's: queue_size (default 1000) is counted in requests (the default),
 * items (spans, data points, log records) or bytes (the serialized, uncompressed
 * protobuf request). Only the queue counts, as in the collector: the up to
 * num_consumers requests being sent or backing off are outside it.
 *
 * A plugin embeds syc_xh_config_t in its configuration struct and lists its fields
 * with SYC_XH_CONFIG_FIELDS(); it makes one syc_xh_t in create() and hands every batch
 * to syc_xh_consume(). The helper queues requests, starts at most num_consumers at a
 * time through ops->send(), waits and retries as the transport's verdict says, and
 * reports each batch's outcome with api->exporter_outcome() (the plugin sets
 * SY_PLUGIN_REPORTS_OUTCOME). Everything runs on the instance's loop thread.
 *
 * With `sending_queue.storage: <id>` the queue is persistent (see "Persistent
 * queue" in exporterhelper.c and docs/reliability.md): consume() writes the
 * request to the storage extension's queue (one per signal) before it takes the
 * batch, the consumers read requests back from it, and a request is confirmed
 * there once the backend accepted it or it failed for good; what is not confirmed
 * when the router stops or dies is sent by the next run first.
 *
 * Deliberate difference from the collector: a full sending queue pushes back to
 * the pipeline (consume returns SY_EAGAIN and the helper calls api->ready() when
 * there is room), unless `block_on_overflow: false` is written explicitly, which
 * drops and counts as the collector does by default.
 */
#ifndef SY_EXPORTERHELPER_H
#define SY_EXPORTERHELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

enum { SYC_XH_SIZER_REQUESTS = 0, SYC_XH_SIZER_ITEMS = 1, SYC_XH_SIZER_BYTES = 2 };

/* The helper's part of a plugin's configuration, filled by the host from the
 * fields of SYC_XH_CONFIG_FIELDS(). */
typedef struct syc_xh_config_s {
    int64_t timeout_ns;
    bool retry_enabled;
    int64_t initial_interval_ns;
    int64_t max_interval_ns;
    int64_t max_elapsed_ns; /* 0: retry for ever */
    double multiplier;
    double randomization_factor;
    bool queue_enabled;
    int64_t num_consumers;
    int64_t queue_size;
    int sizer;                  /* SYC_XH_SIZER_* */
    bool block_on_overflow;     /* value, default true here (see above) */
    bool block_on_overflow_set; /* the key was written */
    char *storage;              /* persistent queue: the id of a storage extension */
    uint64_t max_bytes;         /* the queue's bound in bytes whatever the sizer (0: none) */
} syc_xh_config_t;

extern const char *const syc_xh_sizer_names[]; /* "requests", "items", "bytes", NULL */

/* The field table entries for a syc_xh_config_t member `m` of config type `T`. */
#define SYC_XH_CONFIG_FIELDS(T, m) SYC_XH_RETRY_FIELDS(T, m), SYC_XH_QUEUE_FIELDS(T, m)

/* `timeout` and `retry_on_failure` only, for an exporter whose queue has keys of
 * its own (prometheusremotewrite's remote_write_queue). */
#define SYC_XH_RETRY_FIELDS(T, m)                                                         \
    {.name = "timeout",                                                                   \
     .type = SY_CFG_DURATION,                                                             \
     .offset = offsetof(T, m.timeout_ns),                                                 \
     .default_value = "5s",                                                               \
     .description = "Time one export attempt may take."},                                 \
        {.name = "retry_on_failure.enabled",                                              \
         .type = SY_CFG_BOOL,                                                             \
         .offset = offsetof(T, m.retry_enabled),                                          \
         .default_value = "true",                                                         \
         .description = "Retry failures that the OTLP specification calls retryable."},   \
        {.name = "retry_on_failure.initial_interval",                                     \
         .type = SY_CFG_DURATION,                                                         \
         .offset = offsetof(T, m.initial_interval_ns),                                    \
         .default_value = "5s",                                                           \
         .description = "Wait before the first retry."},                                  \
        {.name = "retry_on_failure.max_interval",                                         \
         .type = SY_CFG_DURATION,                                                         \
         .offset = offsetof(T, m.max_interval_ns),                                        \
         .default_value = "30s",                                                          \
         .description = "Upper bound of the wait between retries."},                      \
        {.name = "retry_on_failure.max_elapsed_time",                                     \
         .type = SY_CFG_DURATION,                                                         \
         .offset = offsetof(T, m.max_elapsed_ns),                                         \
         .default_value = "300s",                                                         \
         .description = "Give a request up when its next attempt would start later than " \
                        "this after its first (0: never give up)."},                      \
        {.name = "retry_on_failure.multiplier",                                           \
         .type = SY_CFG_DOUBLE,                                                           \
         .offset = offsetof(T, m.multiplier),                                             \
         .default_value = "1.5",                                                          \
         .description = "Factor by which the wait grows after each retry."},              \
    {                                                                                     \
        .name = "retry_on_failure.randomization_factor", .type = SY_CFG_DOUBLE,           \
        .offset = offsetof(T, m.randomization_factor), .default_value = "0.5",            \
        .description = "Each wait is drawn from [wait*(1-f), wait*(1+f)]."                \
    }

/* The `sending_queue` entries. */
#define SYC_XH_QUEUE_FIELDS(T, m)                                                                \
    {.name = "sending_queue.enabled",                                                            \
     .type = SY_CFG_BOOL,                                                                        \
     .offset = offsetof(T, m.queue_enabled),                                                     \
     .default_value = "true",                                                                    \
     .description = "Queue requests in memory and send several at once."},                       \
        {.name = "sending_queue.num_consumers",                                                  \
         .type = SY_CFG_INT,                                                                     \
         .offset = offsetof(T, m.num_consumers),                                                 \
         .default_value = "10",                                                                  \
         .description = "Requests in flight at once (waiting to retry included)."},              \
        {.name = "sending_queue.queue_size",                                                     \
         .type = SY_CFG_INT,                                                                     \
         .offset = offsetof(T, m.queue_size),                                                    \
         .default_value = "1000",                                                                \
         .description = "Capacity of the queue, in units of the sizer."},                        \
        {.name = "sending_queue.sizer",                                                          \
         .type = SY_CFG_ENUM,                                                                    \
         .offset = offsetof(T, m.sizer),                                                         \
         .default_value = "requests",                                                            \
         .enum_values = syc_xh_sizer_names,                                                      \
         .description = "What queue_size counts: requests, items (spans, data points, log "      \
                        "records) or bytes (of the serialized request, uncompressed)."},         \
        {.name = "sending_queue.block_on_overflow",                                              \
         .type = SY_CFG_BOOL,                                                                    \
         .offset = offsetof(T, m.block_on_overflow),                                             \
         .default_value = "true",                                                                \
         .description = "When the queue is full, push back to the pipeline (true, the "          \
                        "default here) or drop and count (false, the collector's default)."},    \
        {.name = "sending_queue.block_on_overflow",                                              \
         .type = SY_CFG_PRESENT,                                                                 \
         .offset = offsetof(T, m.block_on_overflow_set),                                         \
         .description = "(whether block_on_overflow was written)"},                              \
        {.name = "sending_queue.storage",                                                        \
         .type = SY_CFG_STRING,                                                                  \
         .offset = offsetof(T, m.storage),                                                       \
         .description = "ID of a storage extension (file_storage) that makes the queue "         \
                        "persistent: requests are written to disk before they are taken."},      \
    {                                                                                            \
        .name = "sending_queue.max_bytes", .type = SY_CFG_SIZE,                                  \
        .offset = offsetof(T, m.max_bytes), .default_value = "16MiB",                            \
        .description = "The in-memory queue's bound in bytes of serialized requests, whatever "  \
                       "the sizer: full at queue_size or at this, whichever comes first (0: no " \
                       "bound but queue_size). Not a key of the collector's."                    \
    }

/* The field table entries of the collector's client `tls` block, for a
 * syc_tls_client_t (curl_uv.h) member `m` of config type `T`. */
#define SYC_XH_TLS_FIELDS(T, m)                                                             \
    {.name = "tls.insecure",                                                                \
     .type = SY_CFG_BOOL,                                                                   \
     .offset = offsetof(T, m.insecure),                                                     \
     .default_value = "false",                                                              \
     .description = "gRPC: plaintext HTTP/2 (h2c) instead of TLS. An http:// endpoint is "  \
                    "plaintext anyway."},                                                   \
        {.name = "tls.ca_file",                                                             \
         .type = SY_CFG_STRING,                                                             \
         .offset = offsetof(T, m.ca_file),                                                  \
         .description = "CA certificates (PEM) that verify the server."},                   \
        {.name = "tls.cert_file",                                                           \
         .type = SY_CFG_STRING,                                                             \
         .offset = offsetof(T, m.cert_file),                                                \
         .description = "Client certificate (PEM), for mutual TLS."},                       \
        {.name = "tls.key_file",                                                            \
         .type = SY_CFG_STRING,                                                             \
         .offset = offsetof(T, m.key_file),                                                 \
         .description = "Client private key (PEM), for mutual TLS."},                       \
        {.name = "tls.min_version",                                                         \
         .type = SY_CFG_STRING,                                                             \
         .offset = offsetof(T, m.min_version),                                              \
         .default_value = "1.2",                                                            \
         .description = "Lowest TLS version offered: 1.0, 1.1, 1.2 or 1.3."},               \
        {.name = "tls.max_version",                                                         \
         .type = SY_CFG_STRING,                                                             \
         .offset = offsetof(T, m.max_version),                                              \
         .description = "Highest TLS version offered (unset: 1.3)."},                       \
        {.name = "tls.insecure_skip_verify",                                                \
         .type = SY_CFG_BOOL,                                                               \
         .offset = offsetof(T, m.insecure_skip_verify),                                     \
         .default_value = "false",                                                          \
         .description = "Do not verify the server's certificate or name."},                 \
        {SY_CFG_FIELD("tls.cipher_suites", SY_CFG_STRLIST, T, m.cipher_suites),             \
         .description = "TLS 1.2 cipher suites offered, in Go's names "                     \
                        "(TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...); unset: the "         \
                        "library's defaults."},                                             \
        {SY_CFG_FIELD("tls.reload_interval", SY_CFG_DURATION, T, m.reload_interval),        \
         .description = "ca_file, cert_file and key_file are kept in memory this long, "    \
                        "then read again (0: read for every new connection)."},             \
    {                                                                                       \
        .name = "tls.server_name_override", .type = SY_CFG_STRING,                          \
        .offset = offsetof(T, m.server_name_override),                                      \
        .description = "Name to verify the server's certificate against (also sent as SNI " \
                       "and :authority)."                                                   \
    }

/* Checks ranges and combinations of a syc_xh_config_t; SY_EINVAL with a sentence. */
int syc_xh_config_validate(const syc_xh_config_t *cfg, char *err, size_t err_len);

typedef struct syc_xh_s syc_xh_t;

/* One request: one batch on its way to the backend, through its attempts. The
 * transport may keep its own per-request state in `transport`. */
typedef struct syc_xh_req_s syc_xh_req_t;
struct syc_xh_req_s {
    sy_batch_t *batch; /* the helper's reference */
    sy_signal_t signal;
    uint64_t items;
    uint64_t bytes;
    void *transport; /* the transport's, freed by ops->req_free() */
    /* The helper's own fields below. */
    syc_xh_t *owner;
    syc_xh_req_t *prev, *next;
    uint64_t first_attempt_ms;
    uint64_t interval_ms; /* the current back-off interval, before randomization */
    uint64_t due_ms;      /* waiting: when the next attempt starts (loop time) */
    unsigned attempts;
    int where;          /* queued, sending, waiting to retry */
    bool stored;        /* read from the persistent queue: confirmed when done */
    uint64_t record_id; /* its record there */
};

/* What one attempt came to. */
typedef enum syc_xh_verdict_e {
    SYC_XH_SENT = 0,      /* delivered (maybe partially: see rejected) */
    SYC_XH_RETRYABLE = 1, /* the OTLP specification says retry */
    SYC_XH_PERMANENT = 2, /* do not retry: drop, log and count */
} syc_xh_verdict_t;

typedef struct syc_xh_result_s {
    syc_xh_verdict_t verdict;
    int64_t retry_after_ms; /* a delay the server asked for (Retry-After, RetryInfo); <0: none */
    uint64_t rejected;      /* partial success: items the backend refused */
    char message[512];      /* why, for the log line */
} syc_xh_result_t;

/* The transport. All three are called on the loop thread. */
typedef struct syc_xh_ops_s {
    /* Starts one attempt of `req`; reports it later with syc_xh_attempt_done(), never
     * from inside this call. A negative return fails the request permanently
     * (the transport has logged why). */
    int (*send)(void *ctx, syc_xh_req_t *req);
    /* Stops an attempt under way without reporting it (shutdown deadline). */
    void (*abort)(void *ctx, syc_xh_req_t *req);
    /* The helper is done with `req`: free req->transport. */
    void (*req_free)(void *ctx, syc_xh_req_t *req);
} syc_xh_ops_t;

/*
 * Makes the helper of one exporter instance. `cfg` must outlive it. Registers the
 * queue metrics (exporter_queue_size, exporter_queue_capacity,
 * exporter_enqueue_failed_*, exporter_retries). Returns NULL with a sentence in err.
 */
syc_xh_t *syc_xh_new(const sy_host_api_t *api, sy_instance_t *inst, const syc_xh_config_t *cfg,
                     const syc_xh_ops_t *ops, void *ctx, char *err, size_t err_len);

/* Opens the helper's timers on the loop and, with `sending_queue.storage`, the
 * persistent queue (the plugin's start()). Returns 0, SY_ERROR (no timer) or
 * SY_EINVAL (the storage is not there or its queue does not open: logged). */
int syc_xh_start(syc_xh_t *xh);

/*
 * Takes one batch (the plugin's consume()). SY_OK: the reference is the helper's
 * (queued, or dropped and counted when the queue is full and configured to drop).
 * SY_EAGAIN: the queue is full; the helper calls api->ready() when there is room.
 * SY_ECLOSED: shutting down.
 */
int syc_xh_consume(syc_xh_t *xh, sy_batch_t *batch);

/*
 * Takes n batches as n requests, all or none (a plugin that splits one batch it
 * was handed, e.g. by tenant): SY_OK, every reference is the helper's (when out
 * of memory half way, the rest are counted as failed and released); SY_EAGAIN,
 * none was taken (the queue has no room for all of them; ready() follows);
 * SY_ECLOSED: shutting down, none taken.
 */
int syc_xh_consume_all(syc_xh_t *xh, sy_batch_t *const *batches, size_t n);

/* The transport's ctx given to syc_xh_new(), for a request's callbacks. */
void *syc_xh_req_ctx(const syc_xh_req_t *req);

/* Reports the end of one attempt started by ops->send(). */
void syc_xh_attempt_done(syc_xh_req_t *req, const syc_xh_result_t *result);

/*
 * Begins stopping: takes nothing new, gives requests waiting to retry one last
 * attempt now, sends what is queued, and after `deadline_ms` aborts what is still
 * under way and counts it, with the queue's rest, as failed. Once nothing is left it
 * closes its timers and calls drained(arg) (possibly from inside this call); the
 * transport then closes its handles.
 */
void syc_xh_shutdown(syc_xh_t *xh, uint64_t deadline_ms, void (*drained)(void *arg), void *arg);

/* Frees the helper (after drained was called). */
void syc_xh_free(syc_xh_t *xh);

/* ---- OTLP pieces both exporters use -------------------------------------------- */

enum {
    SYC_XH_COMPRESS_GZIP = 0,
    SYC_XH_COMPRESS_ZSTD = 1,
    SYC_XH_COMPRESS_NONE = 2,
    SYC_XH_COMPRESS_SNAPPY = 3,
    SYC_XH_COMPRESS_DEFLATE = 4, /* zlib format, Content-Encoding: deflate */
    SYC_XH_COMPRESS_ZLIB = 5,    /* zlib format, Content-Encoding: zlib */
};
/* "gzip", "zstd", "none", "snappy", "deflate", "zlib", NULL (HTTP exporters) */
extern const char *const syc_xh_compression_names[];
/* "gzip", "zstd", "none", "snappy", NULL: what grpc-encoding can name */
extern const char *const syc_xh_grpc_compression_names[];

/* The `compression_params.level` field of an exporter's config struct (int64_t). */
#define SYC_XH_COMPRESSION_LEVEL_FIELD(cfg_type, member)                                       \
    {                                                                                          \
        .name = "compression_params.level", .type = SY_CFG_INT,                                \
        .offset = offsetof(cfg_type, member), .default_value = "0",                            \
        .description = "Compression level; 0 is the codec's default (gzip/deflate/zlib: 1 of " \
                       "libdeflate's 1-12, zstd: 1 of 1-22; snappy has none)."                 \
    }

/* Checks `compression_params.level` against `compression`: 0 or SY_EINVAL. */
int syc_xh_compression_check(int compression, int64_t level, char *err, size_t err_len);

/* The Content-Encoding / grpc-encoding value of `compression` ("gzip"). */
const char *syc_xh_compression_name(int compression);

/*
 * Compresses in[0..len) with `compression` (not SYC_XH_COMPRESS_NONE) at `level`
 * (0: the default) into a malloc() buffer that starts with `prefix` uninitialised
 * bytes (room for a gRPC frame header). Returns 0 with *out / *out_len (prefix
 * included), or SY_ENOMEM.
 */
int syc_xh_compress(int compression, int level, size_t prefix, const uint8_t *in, size_t len,
                    uint8_t **out, size_t *out_len);

/* The name of a signal's items, for log lines ("spans"). */
const char *syc_xh_item_name(sy_signal_t signal);

/*
 * Reads partial_success from an Export{Trace,Metrics,Logs}ServiceResponse of
 * `signal`, encoded as protobuf (json false) or OTLP/JSON. Sets *rejected and copies
 * its error_message into msg. An empty body is a full success. Returns 0, or
 * SY_EINVAL when the body does not decode (the caller treats the export as done).
 */
int syc_xh_partial_success(sy_signal_t signal, const uint8_t *body, size_t len, bool json,
                           uint64_t *rejected, char *msg, size_t msg_len);

/*
 * The message of a google.rpc.Status in protobuf (json false) or JSON, for log lines
 * about refused requests; when it does not decode, the body's first printable bytes.
 */
void syc_xh_rpc_status(const uint8_t *body, size_t len, bool json, char *msg, size_t msg_len);

#endif
