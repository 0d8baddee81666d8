/*
 * emit_wait.h - a receiver holds a request while the pipeline in front of it is
 * full for the moment, instead of refusing it at once.
 *
 * The collector's receivers call the next consumer and wait for it; a request
 * is refused only by a processor that refuses on purpose (memory_limiter) or
 * when the client gives up. Switchyard hands batches to pipelines through
 * bounded queues, which a burst fills for a few milliseconds even when the
 * router has the CPU for it (ten exporters of a first tier sending at once, a
 * pipeline thread descheduled): refusing then makes the client back off for
 * about a second. So a receiver whose emit() is refused because a queue is
 * full (ABI 1.8 emit_may_wait()) parks the request, already read and held in
 * its memory, and emits it again every millisecond, oldest first, until the
 * queue takes it or `queue_wait` (default 100 ms) has passed; only then is the client told to
 * retry. Nothing new is read into memory for it: a parked request keeps the
 * bytes it already had (bounded by the receiver's bytes in flight), and a
 * memory_limiter's refusal is still answered at once.
 *
 * A receiver embeds a syc_emit_wait_t (syc_emit_wait_init() in create()), and per
 * request calls syc_emit() where it called api->emit(): the result is emit()'s
 * (answer as before), or SYC_EMIT_PARKED, after which done(req, rc) comes later
 * on the loop thread with SY_OK (the batch was handed over) or the refusal (the
 * caller still owns the batch: SY_EAGAIN past queue_wait or when a processor
 * refuses, SY_ECLOSED at shutdown). syc_emit_cancel() takes a parked request back
 * (the client went away: done() is not called, the batch is the caller's).
 * Loop thread only.
 */
#ifndef SY_COMMON_EMIT_WAIT_H
#define SY_COMMON_EMIT_WAIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#define SYC_EMIT_PARKED       1       /* syc_emit(): done() answers later */
#define SYC_EMIT_WAIT_DEFAULT "100ms" /* queue_wait's default */

/* What a parked request's answer needs, given back to done() as it was given. */
typedef struct syc_emit_req_s {
    sy_batch_t *batch;
    void *owner, *ctx, *aux;
    int tag;
} syc_emit_req_t;

typedef void (*syc_emit_done_fn)(const syc_emit_req_t *req, int rc);
typedef struct syc_emit_park_s syc_emit_park_t;

typedef struct syc_emit_wait_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    uint64_t max_ms;          /* 0: never park */
    struct uv_timer_s *timer; /* made at the first park; freed once closed */
    syc_emit_park_t *head, *tail;
    size_t parked;
    sy_metric_t *m_parked;  /* requests that were parked (may be NULL) */
    sy_metric_t *m_expired; /* parked requests refused after queue_wait (may be NULL) */
    bool closed;
} syc_emit_wait_t;

/* The config field of a receiver's `queue_wait` (int64_t nanoseconds). */
#define SYC_EMIT_WAIT_FIELD(T, m)                                                                \
    {                                                                                            \
        .name = "queue_wait", .type = SY_CFG_DURATION, .offset = offsetof(T, m),                 \
        .default_value = SYC_EMIT_WAIT_DEFAULT,                                                  \
        .description = "How long a request, already read, waits for room when the queue of a "   \
                       "pipeline it feeds is full for the moment, before the client is told to " \
                       "retry (HTTP 429 / gRPC RESOURCE_EXHAUSTED); 0: told at once. A "         \
                       "memory_limiter's refusal is answered at once."                           \
    }

/* Registers a receiver's two counters, <prefix>_queue_waits and
 * <prefix>_queue_wait_expired ("receiver_zipkin"), `what` naming what is held
 * in their help ("requests", "gRPC PostSpans calls"). In create(). */
void syc_emit_wait_metrics(const sy_host_api_t *api, sy_instance_t *inst, const char *prefix,
                           const char *what, sy_metric_t **m_parked, sy_metric_t **m_expired);

/* max_ns <= 0: never park. The metrics may be NULL. */
void syc_emit_wait_init(syc_emit_wait_t *w, const sy_host_api_t *api, sy_instance_t *inst,
                        int64_t max_ns, sy_metric_t *m_parked, sy_metric_t *m_expired);

/* api->emit(), or park the batch (SYC_EMIT_PARKED, *park set) when the refusal is
 * a full queue, or when requests of the same signal are parked already (they go
 * first). */
int syc_emit(syc_emit_wait_t *w, const syc_emit_req_t *req, syc_emit_done_fn done,
             syc_emit_park_t **park);

/* Takes a parked request back: done() is not called; the batch is the caller's. */
void syc_emit_cancel(syc_emit_wait_t *w, syc_emit_park_t *park);

/* Shutdown: done(ctx, SY_ECLOSED) for every parked request; later syc_emit()
 * calls park nothing. Idempotent. */
void syc_emit_wait_close(syc_emit_wait_t *w);

#endif
