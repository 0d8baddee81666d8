/*
 * otlp_settle.h - answering a request only once its data is settled (written to
 * every persistent queue it reaches; docs/reliability.md): the receiver's side of
 * the host's settle tokens (ABI 1.6), shared by OTLP/HTTP and OTLP/gRPC.
 *
 * otlp_settle_begin() makes a wait for a batch when the host says the receiver's
 * pipelines have a durable exporter (NULL otherwise, or on an older host: answer
 * at once, as without one). After api->emit(), otlp_settle_emitted() either keeps
 * the wait (SY_OK: the answer comes later through `answer`, on the loop thread) or
 * drops it (the caller answers the refusal itself). `answer(st, ctx, tag, status)` gets
 * SY_OK, or < 0 when an exporter failed it, or SY_ETIMEDOUT when it was not
 * settled within settle_timeout, or SY_ECLOSED at shutdown. The waits are
 * plugins/common/settle_wait.c's (otlp_settle.c adapts them to the receiver).
 *
 * Also here: the requests held while a pipeline's queue is full (queue_wait,
 * plugins/common/emit_wait.c), on the same receiver state.
 */
#ifndef SY_RECEIVER_OTLP_SETTLE_H
#define SY_RECEIVER_OTLP_SETTLE_H

#include <switchyard/plugin.h>

#include "emit_wait.h"
#include "settle_wait.h"

struct otlp_state_s;
typedef syc_settle_wait_t otlp_wait_t;
/* answer(owner, ctx, tag, status): owner is the receiver's otlp_state_t. */
typedef syc_settle_answer_fn otlp_settle_answer_fn;

#define OTLP_SETTLE_DEFAULT_MS SYC_SETTLE_DEFAULT_MS
#define SY_ETIMEDOUT           SYC_SETTLE_TIMEDOUT /* answer(): not within settle_timeout */

otlp_wait_t *otlp_settle_begin(struct otlp_state_s *st, sy_batch_t *batch,
                               otlp_settle_answer_fn answer, void *ctx, int tag);
void otlp_settle_emitted(otlp_wait_t *w, int rc);
/* The request is gone (its client went away): the answer is not given. */
void otlp_settle_forget(otlp_wait_t *w);
/* Shutdown: answers every wait still open (SY_ECLOSED) and closes the handles;
 * tokens settled later are let go of quietly. Loop thread; idempotent. */
void otlp_settle_close(struct otlp_state_s *st);

/* api->emit() through the receiver's queue_wait (plugins/common/emit_wait.h):
 * emit()'s result, or SYC_EMIT_PARKED (done(req, rc) later, on the loop thread). */
int otlp_emit(struct otlp_state_s *st, const syc_emit_req_t *req, syc_emit_done_fn done,
              syc_emit_park_t **park);
/* Takes a held request back (its client went away): done() is not called. */
void otlp_emit_cancel(struct otlp_state_s *st, syc_emit_park_t *park);
/* Shutdown: the held requests are answered SY_ECLOSED. Loop thread; idempotent. */
void otlp_emit_close(struct otlp_state_s *st);

#endif
