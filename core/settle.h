/*
 * settle.h - settle tokens: acknowledging a request only once its data is where
 * it must be (docs/reliability.md, "Acknowledged after the durable write").
 *
 * A receiver makes a token for a request (api->settle_new), attaches it to the
 * request's batch (api->settle_attach) and lets go of its own hold once it has
 * emitted the batch (api->settle_release). The token counts holds; when the last
 * is let go, its done(ud, status) runs once, on whichever thread let go last.
 *
 * Who holds a token besides its maker:
 *  - a batch that carries it, one hold per entry in the batch's list, until the
 *    batch has reached the fan-out of every pipeline it was emitted to (its
 *    "routes"), or is freed (dropped by a processor, or at the end of its life),
 *    whichever comes first;
 *  - an exporter queue that was given the batch, until that exporter's consume()
 *    returned SY_OK (an exporter with a persistent queue returns it once the
 *    append has returned), or until it fails or is abandoned (status SY_EAGAIN);
 *  - the batches made from it: a merge carries the union of its inputs' lists, a
 *    split piece and a copy inherit the list of their source, and the source's
 *    route ends there.
 */
#ifndef SY_CORE_SETTLE_H
#define SY_CORE_SETTLE_H

#include <stdbool.h>
#include <stddef.h>

#include <switchyard/plugin.h>

typedef struct sy_settle_s sy_settle_t;

sy_settle_t *sy__settle_new(void (*done)(void *ud, int status), void *ud);
/* Lets go of one hold; status < 0 marks the token failed (the first failure is
 * what done() gets). */
void sy__settle_drop(sy_settle_t *t, int status);

/* Batches (core only). */
bool sy__settle_has(const sy_batch_t *b);
int sy__settle_attach(sy_batch_t *b, sy_settle_t *t);
/* dst takes a hold on every token of src (dst a new batch made from src). */
int sy__settle_inherit(sy_batch_t *dst, const sy_batch_t *src);
/* The batch is emitted to n pipelines. */
void sy__settle_routes(sy_batch_t *b, unsigned n);
/* One of its routes ended (the fan-out, a split or a copy replacing it). */
void sy__settle_route_end(sy_batch_t *b);
/* The batch is freed: lets go of what it still holds. */
void sy__settle_batch_free(sy_batch_t *b);

/* Exporter obligations: the batch is handed to k exporters. */
void sy__settle_expect(sy_batch_t *b, unsigned k);
/* Claims one of the batch's exporter obligations, before consume() (which may
 * free the batch): 0 when there is none to claim (no tokens, or a batch a
 * connector emitted again), else the number of tokens, of which at most max are
 * copied to out; settle them with sy__settle_done_list() after consume(), or give
 * the claim back with sy__settle_unclaim() (SY_EAGAIN: offered again). */
size_t sy__settle_claim(sy_batch_t *b, sy_settle_t **out, size_t max);
void sy__settle_unclaim(sy_batch_t *b);
/* All of the batch's tokens (at most max), without claiming. */
void sy__settle_copy(const sy_batch_t *b, sy_settle_t **out, size_t max);
/* Settles a claimed obligation from the batch itself (still alive). */
void sy__settle_claimed_drop(sy_batch_t *b, int status);
/* Claims and settles one obligation (an exporter is done with the batch). */
void sy__settle_done(sy_batch_t *b, int status);
/* The batch goes to a connector, which may emit it again: no more obligations. */
void sy__settle_seal(sy_batch_t *b);
/* Marks the batch's tokens failed (their clients are told to retry). */
void sy__settle_fail(sy_batch_t *b, int status);
void sy__settle_done_list(sy_settle_t *const *list, size_t n, int status);

/* Whether receiver `inst` feeds a pipeline with a durable exporter. */
bool sy__settle_wanted(sy_instance_t *inst);
/* An exporter whose consume() returning SY_OK means written to its persistent queue. */
void sy__settle_durable(sy_instance_t *inst);

#endif
