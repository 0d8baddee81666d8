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
    if (!b->nsettle) return;
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

void sy__settle_expect(sy_batch_t *b, unsigned k)
{
    if (!k) return;
    for (size_t i = 0; i < b->nsettle; i++)
        settle_hold(b->settle[i], k);
}

size_t sy__settle_tokens(const sy_batch_t *b, sy_settle_t **out, size_t max)
{
    for (size_t i = 0; i < b->nsettle && i < max; i++)
        out[i] = b->settle[i];
    return b->nsettle;
}

void sy__settle_done_list(sy_settle_t *const *list, size_t n, int status)
{
    for (size_t i = 0; i < n; i++)
        sy__settle_drop(list[i], status);
}

void sy__settle_done(sy_batch_t *b, int status)
{
    sy__settle_done_list(b->settle, b->nsettle, status);
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
