/*
 * settle.c - settle tokens (see settle.h): counted holds, and how batches and
 * exporters take and let go of them.
 */
#include "settle.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "batch_internal.h"
#include "engine.h"

struct sy_settle_s {
    atomic_uint pending;
    atomic_int status; /* 0, or the first failure */
    void (*done)(void *ud, int status);
    void *ud;
};

sy_settle_t *sy__settle_new(void (*done)(void *ud, int status), void *ud)
{
    if (!done) return NULL;
    sy_settle_t *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    atomic_init(&t->pending, 1);
    atomic_init(&t->status, 0);
    t->done = done;
    t->ud = ud;
    return t;
}

static void settle_hold(sy_settle_t *t, unsigned n)
{
    atomic_fetch_add_explicit(&t->pending, n, memory_order_relaxed);
}

void sy__settle_drop(sy_settle_t *t, int status)
{
    if (!t) return;
    if (status < 0) {
        int expected = 0;
        atomic_compare_exchange_strong(&t->status, &expected, status);
    }
    /* acq_rel: every holder's writes happen before done() (as a batch's refs). */
    if (atomic_fetch_sub_explicit(&t->pending, 1, memory_order_acq_rel) != 1) return;
    t->done(t->ud, atomic_load(&t->status));
    free(t);
}

bool sy__settle_has(const sy_batch_t *b)
{
    return b->nsettle != 0;
}

static int settle_append(sy_batch_t *b, sy_settle_t *const *list, size_t n)
{
    if (!n) return SY_OK;
    sy_settle_t **np = realloc(b->settle, (b->nsettle + n) * sizeof(*np));
    if (!np) return SY_ENOMEM;
    b->settle = np;
    for (size_t i = 0; i < n; i++) {
        settle_hold(list[i], 1);
        b->settle[b->nsettle++] = list[i];
    }
    return SY_OK;
}

int sy__settle_attach(sy_batch_t *b, sy_settle_t *t)
{
    if (!b || !t) return SY_EINVAL;
    if (atomic_load(&b->settle_let_go)) return SY_EINVAL; /* too late: already emitted */
    return settle_append(b, &t, 1);
}

int sy__settle_inherit(sy_batch_t *dst, const sy_batch_t *src)
{
    if (!src->nsettle) return SY_OK;
    int rc = settle_append(dst, src->settle, src->nsettle);
    if (rc == SY_OK && atomic_load(&dst->settle_routes) == 0) atomic_store(&dst->settle_routes, 1);
    return rc;
}

void sy__settle_routes(sy_batch_t *b, unsigned n)
{
    if (b->nsettle) atomic_store(&b->settle_routes, n);
}

static void settle_let_go(sy_batch_t *b, int status)
{
    if (atomic_exchange(&b->settle_let_go, true)) return;
    for (size_t i = 0; i < b->nsettle; i++)
        sy__settle_drop(b->settle[i], status);
}

void sy__settle_route_end(sy_batch_t *b)
{
    if (!b->nsettle || atomic_load(&b->settle_sealed)) return;
    unsigned r = atomic_load(&b->settle_routes);
    while (r > 0 && !atomic_compare_exchange_weak(&b->settle_routes, &r, r - 1)) {
    }
    if (r <= 1) settle_let_go(b, SY_OK);
}

void sy__settle_batch_free(sy_batch_t *b)
{
    if (!b->settle) return;
    settle_let_go(b, SY_OK); /* dropped on the way: nothing more to wait for */
    free(b->settle);
    b->settle = NULL;
    b->nsettle = 0;
}

/*
 * Obligations are counted per batch as well as on its tokens, so that only as
 * many exporters settle a batch as it was handed to: a batch that a connector
 * emitted again (sealed) reaches more exporters than it was expected at, and
 * those find no obligation left to settle. Its tokens are then kept by the
 * batch's hold until it is freed, which is after every exporter let go of it.
 * expect() runs on a route that still holds (settle_routes > 0), which keeps the
 * tokens alive; a claim finds them alive through the obligation it claims.
 */
void sy__settle_expect(sy_batch_t *b, unsigned k)
{
    if (!k || !b->nsettle || atomic_load(&b->settle_sealed) || atomic_load(&b->settle_let_go))
        return;
    atomic_fetch_add(&b->settle_obl, k);
    for (size_t i = 0; i < b->nsettle; i++)
        settle_hold(b->settle[i], k);
}

size_t sy__settle_claim(sy_batch_t *b, sy_settle_t **out, size_t max)
{
    if (!b->nsettle) return 0;
    unsigned o = atomic_load(&b->settle_obl);
    do {
        if (o == 0) return 0;
    } while (!atomic_compare_exchange_weak(&b->settle_obl, &o, o - 1));
    sy__settle_copy(b, out, max);
    return b->nsettle;
}

void sy__settle_copy(const sy_batch_t *b, sy_settle_t **out, size_t max)
{
    for (size_t i = 0; i < b->nsettle && i < max; i++)
        out[i] = b->settle[i];
}

void sy__settle_claimed_drop(sy_batch_t *b, int status)
{
    sy__settle_done_list(b->settle, b->nsettle, status);
}

void sy__settle_unclaim(sy_batch_t *b)
{
    atomic_fetch_add(&b->settle_obl, 1);
}

void sy__settle_seal(sy_batch_t *b)
{
    if (b->nsettle) atomic_store(&b->settle_sealed, true);
}

void sy__settle_fail(sy_batch_t *b, int status)
{
    for (size_t i = 0; i < b->nsettle; i++) {
        int expected = 0;
        atomic_compare_exchange_strong(&b->settle[i]->status, &expected, status);
    }
}

void sy__settle_done_list(sy_settle_t *const *list, size_t n, int status)
{
    for (size_t i = 0; i < n; i++)
        sy__settle_drop(list[i], status);
}

void sy__settle_done(sy_batch_t *b, int status)
{
    if (sy__settle_claim(b, NULL, 0)) sy__settle_claimed_drop(b, status);
}

bool sy__settle_wanted(sy_instance_t *inst)
{
    if (!inst || inst->kind != SY_KIND_RECEIVER) return false;
    for (size_t i = 0; i < inst->recv.noutputs; i++) {
        const sy__pipeline_t *p = inst->recv.outputs[i];
        for (size_t j = 0; j < p->nexporters; j++)
            if (atomic_load_explicit(&p->exporters[j]->exp.durable, memory_order_relaxed))
                return true;
    }
    return false;
}

void sy__settle_durable(sy_instance_t *inst)
{
    if (inst && inst->kind == SY_KIND_EXPORTER)
        atomic_store_explicit(&inst->exp.durable, true, memory_order_relaxed);
}
