/*
 * otlp_settle.c - the otlp receiver's settle waits (see otlp_settle.h): the shared
 * plugins/common/settle_wait.c, on the receiver's state. The syc_settle_t is set up
 * at the first use, so that every owner of an otlp_state_t (the otlp receiver, the
 * jaeger receiver's gRPC server, the fuzz targets) gets it from its configuration
 * and metrics without a step of its own.
 */
#include "otlp_settle.h"

#include "otlp.h"

static syc_settle_t *settle_of(otlp_state_t *st)
{
    if (!st->settle.api)
        syc_settle_init(&st->settle, st->api, st->inst, st->cfg->settle_timeout,
                        st->m_settle_timeouts, st->m_settle_failed);
    return &st->settle;
}

otlp_wait_t *otlp_settle_begin(otlp_state_t *st, sy_batch_t *batch, otlp_settle_answer_fn answer,
                               void *ctx, int tag)
{
    return syc_settle_begin(settle_of(st), batch, answer, st, ctx, tag);
}

void otlp_settle_emitted(otlp_wait_t *w, int rc)
{
    syc_settle_emitted(w, rc);
}

void otlp_settle_forget(otlp_wait_t *w)
{
    syc_settle_forget(w);
}

void otlp_settle_close(otlp_state_t *st)
{
    syc_settle_close(settle_of(st));
}

static syc_emit_wait_t *emitq_of(otlp_state_t *st)
{
    if (!st->emitq_ready) {
        syc_emit_wait_init(&st->emitq, st->api, st->inst, st->cfg->queue_wait, st->m_queue_waits,
                           st->m_queue_wait_expired);
        st->emitq_ready = true;
    }
    return &st->emitq;
}

int otlp_emit(otlp_state_t *st, const syc_emit_req_t *req, syc_emit_done_fn done,
              syc_emit_park_t **park)
{
    return syc_emit(emitq_of(st), req, done, park);
}

void otlp_emit_cancel(otlp_state_t *st, syc_emit_park_t *park)
{
    syc_emit_cancel(emitq_of(st), park);
}

void otlp_emit_close(otlp_state_t *st)
{
    syc_emit_wait_close(emitq_of(st));
}

bool otlp_twin_wanted(const otlp_state_t *st, int sig)
{
    const sy_host_api_t *api = st->api;
    if (!SY_API_HAS(api, batch_set_compressed)) return false;
    if (!SY_API_HAS(api, compressed_wanted) || !api->compressed_wanted) return true;
    return api->compressed_wanted(st->inst, otlp_signal_at(sig));
}
