/*
 * settle_wait.h - a receiver's side of the host's settle tokens (ABI 1.6):
 * answering a request only once its data is settled, i.e. written to every
 * persistent queue it reaches (docs/reliability.md). Shared by the receivers that
 * answer over HTTP (zipkin, jaeger thrift_http); the otlp receiver has its own
 * copy in otlp_settle.c, written first.
 *
 * A receiver embeds a syc_settle_t, fills it with syc_settle_init() in create(),
 * and per request: w = syc_settle_begin(...) before api->emit() (NULL: answer at
 * once, as without a persistent queue: the host says none of the receiver's
 * pipelines has a durable exporter, or is older than 1.6), then
 * syc_settle_emitted(w, rc) after it, whatever it returned. With rc == SY_OK and
 * w != NULL the answer comes later through answer(owner, ctx, tag, status), on the
 * loop thread: SY_OK, < 0 when an exporter failed or gave the data up,
 * SYC_SETTLE_TIMEDOUT past the timeout, SY_ECLOSED at shutdown. Otherwise the
 * caller answers itself.
 */
#ifndef SY_COMMON_SETTLE_WAIT_H
#define SY_COMMON_SETTLE_WAIT_H

#include <stdbool.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#define SYC_SETTLE_DEFAULT_MS 5000
#define SYC_SETTLE_TIMEDOUT   (-1000) /* answer(): not settled within the timeout */

typedef void (*syc_settle_answer_fn)(void *owner, void *ctx, int tag, int status);
typedef struct syc_settle_wait_s syc_settle_wait_t;

typedef struct syc_settle_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    uint64_t timeout_ms;
    sy_metric_t *m_timeouts, *m_failed; /* may be NULL */
    struct syc_settle_hub_s *hub;       /* made at the first wait */
    bool closed;
} syc_settle_t;

/* timeout_ns <= 0: SYC_SETTLE_DEFAULT_MS. The metrics count the requests answered
 * with a timeout and with a failure. */
void syc_settle_init(syc_settle_t *s, const sy_host_api_t *api, sy_instance_t *inst,
                     int64_t timeout_ns, sy_metric_t *m_timeouts, sy_metric_t *m_failed);

/* The config field of a receiver's `settle_timeout` (int64_t nanoseconds). */
#define SYC_SETTLE_TIMEOUT_FIELD(T, m)                                                          \
    {                                                                                           \
        .name = "settle_timeout", .type = SY_CFG_DURATION, .offset = offsetof(T, m),            \
        .default_value = "5s",                                                                  \
        .description = "With a persistent queue (sending_queue.storage) on an exporter of the " \
                       "receiver's pipelines: how long a request's answer waits for its data "  \
                       "to be written there; HTTP 503 with Retry-After beyond (the client "     \
                       "retries)."                                                              \
    }

/* Loop thread. */
syc_settle_wait_t *syc_settle_begin(syc_settle_t *s, sy_batch_t *batch, syc_settle_answer_fn answer,
                                    void *owner, void *ctx, int tag);
void syc_settle_emitted(syc_settle_wait_t *w, int rc);
/* The request is gone: its answer is not given. */
void syc_settle_forget(syc_settle_wait_t *w);
/* Shutdown: answers every wait still open (SY_ECLOSED) and closes the handles;
 * tokens settled later are let go of quietly. Loop thread; idempotent. */
void syc_settle_close(syc_settle_t *s);

#endif
