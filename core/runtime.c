/*
 * runtime.c - how batches move: receivers -> pipeline queue -> processors ->
 * fan-out -> exporter queues -> exporters.
 *
 * Back-pressure runs backwards along the same path. An exporter that declines a
 * batch (SY_EAGAIN) stops being fed; its queue fills; a pipeline that cannot hand
 * a batch to every exporter queue keeps it pending and takes nothing more from its
 * own queue; that queue fills; and a receiver's emit() then fails with SY_EAGAIN,
 * which the receiver turns into its protocol's "retry later". Nothing is dropped
 * on the way.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "engine.h"
#include "log.h"
#include "telemetry.h"

#define SY__BURST    64
#define SY__RETRY_MS 2

typedef struct sy__pending_s {
    sy_batch_t *batch; /* one reference, for the exporters not yet served */
    size_t next;       /* the first exporter that has not taken it yet */
} sy__pending_t;

int sy__signal_index(sy_signal_t signal)
{
    switch (signal) {
    case SY_SIGNAL_TRACES:
        return 0;
    case SY_SIGNAL_METRICS:
        return 1;
    case SY_SIGNAL_LOGS:
        return 2;
    }
    return 0;
}

static void count(sy_metric_t *m, uint64_t n)
{
    if (m) sy__metric_add(m, (int64_t)n);
}

/*
 * A queue is full when it holds its capacity in batches, or SY__QUEUE_MAX_ITEMS
 * items (spans, data points, log records) while it holds anything at all: a
 * bound on memory as well as on count, since a merged batch can hold thousands of
 * items. Items rather than bytes because a batch's item count never changes while
 * it is queued (a shared batch is read-only), so what is added at push is exactly
 * what is taken off at pop. Added before the push and taken back if the push
 * fails, so the count never goes below zero.
 */
static bool queue_full(sy__mpmc_t *q, const _Atomic int64_t *items)
{
    size_t n = sy__mpmc_size(q);
    return n >= sy__mpmc_capacity(q) ||
           (n > 0 && atomic_load_explicit(items, memory_order_relaxed) >= SY__QUEUE_MAX_ITEMS);
}

static bool queue_push(sy__mpmc_t *q, _Atomic int64_t *items, sy_batch_t *b)
{
    int64_t n = (int64_t)sy__batch_items(b);
    atomic_fetch_add_explicit(items, n, memory_order_relaxed);
    if (sy__mpmc_push(q, b)) return true;
    atomic_fetch_sub_explicit(items, n, memory_order_relaxed);
    return false;
}

static void queue_popped(_Atomic int64_t *items, void *const *batches, unsigned n)
{
    int64_t total = 0;
    for (unsigned i = 0; i < n; i++)
        total += (int64_t)sy__batch_items(batches[i]);
    if (total) atomic_fetch_sub_explicit(items, total, memory_order_relaxed);
}

/* ---- receivers ----------------------------------------------------------- */

int sy__receiver_emit(sy_instance_t *inst, sy_batch_t *batch)
{
    sy_signal_t signal = sy__batch_signal(batch);
    uint64_t items = sy__batch_items(batch);
    sy__signal_metrics_t *m = &inst->metrics[sy__signal_index(signal)];
    if (sy__engine_status() == SY_STATUS_STOPPING) {
        count(m->failed, items);
        return SY_ECLOSED;
    }

    /* Which pipelines take this signal, and do they all have room? Checking first
     * keeps a refusal from leaving the batch in some pipelines but not others in
     * the common case; a race with another receiver can still fill a queue in
     * between, in which case the client's retry duplicates the batch in the
     * pipelines that took it (as the collector's fan-out does). */
    sy__pipeline_t *targets[16];
    size_t n = 0;
    for (size_t i = 0; i < inst->noutputs && n < 16; i++) {
        sy__pipeline_t *p = inst->outputs[i];
        if (p->signal != signal) continue;
        if (queue_full(&p->in, &p->in_items)) {
            count(m->failed, items);
            return SY_EAGAIN;
        }
        targets[n++] = p;
    }
    if (n == 0) return SY_ENOTSUP;

    /* One reference per pipeline: the caller's goes to the last one. */
    for (size_t i = 0; i < n; i++) {
        if (i + 1 < n) sy__batch_retain(batch);
        if (!queue_push(&targets[i]->in, &targets[i]->in_items, batch)) {
            if (i + 1 < n) sy__batch_release(batch);
            for (size_t j = 0; j < i; j++)
                sy__thread_wake(&targets[j]->thread);
            count(m->failed, items);
            return SY_EAGAIN;
        }
        sy__thread_wake(&targets[i]->thread);
    }
    count(m->ok, items);
    return SY_OK;
}

/* ---- pipelines ------------------------------------------------------------- */

static int pending_add(sy__pipeline_t *p, sy_batch_t *batch)
{
    if (p->npending == p->cap_pending) {
        size_t cap = p->cap_pending ? p->cap_pending * 2 : 8;
        sy__pending_t *np = realloc(p->pending, cap * sizeof(*np));
        if (!np) return SY_ENOMEM;
        p->pending = np;
        p->cap_pending = cap;
    }
    p->pending[p->npending].batch = batch;
    p->pending[p->npending].next = 0;
    p->npending++;
    return SY_OK;
}

/* Hands pending batches to the exporter queues, in order. Returns true when
 * nothing is left pending. */
static bool pending_flush(sy__pipeline_t *p)
{
    size_t done = 0;
    for (; done < p->npending; done++) {
        sy__pending_t *pe = &p->pending[done];
        while (pe->next < p->nexporters) {
            sy_instance_t *x = p->exporters[pe->next];
            bool last = pe->next + 1 == p->nexporters;
            if (!last) sy__batch_retain(pe->batch);
            if (queue_full(&x->queue, &x->queue_items) ||
                !queue_push(&x->queue, &x->queue_items, pe->batch)) {
                if (!last) sy__batch_release(pe->batch);
                goto blocked;
            }
            sy__thread_wake(x->thread);
            pe->next++;
        }
        if (p->nexporters == 0) sy__batch_release(pe->batch);
    }
blocked:
    if (done) {
        memmove(p->pending, p->pending + done, (p->npending - done) * sizeof(p->pending[0]));
        p->npending -= done;
    }
    return p->npending == 0;
}

static void on_retry(uv_timer_t *t)
{
    sy__pipeline_t *p = t->data;
    p->retry_armed = false;
    sy__pipeline_on_wake(p);
}

static void arm_retry(sy__pipeline_t *p)
{
    if (p->retry_armed || p->stopping) return;
    p->retry_armed = true;
    uv_timer_start(&p->retry, on_retry, SY__RETRY_MS, 0);
}

/* The end of the processor chain. Always takes the batch: it is kept pending
 * until every exporter queue has taken it. */
static int fan_out(sy__pipeline_t *p, sy_batch_t *batch)
{
    if (pending_add(p, batch) < 0) return SY_ENOMEM;
    if (!pending_flush(p)) arm_retry(p);
    return SY_OK;
}

static int run_chain(sy__pipeline_t *p, size_t index, sy_batch_t *batch)
{
    if (index >= p->nprocessors) return fan_out(p, batch);
    sy_instance_t *proc = p->processors[index];
    if ((proc->plugin->flags & SY_PLUGIN_MUTATES_DATA) && sy__batch_refs(batch) > 1) {
        /* Shared batches are read-only: a processor that changes data gets its own. */
        sy_batch_t *copy = sy__batch_copy(batch);
        if (!copy) return SY_ENOMEM;
        sy__batch_release(batch);
        batch = copy;
    }
    int rc = proc->plugin->consume(proc->state, batch);
    if (rc < 0) {
        SY__LOG(SY_LOG_WARN, proc->id, "processor refused a batch of %llu items (error %d)",
                (unsigned long long)sy__batch_items(batch), rc);
        sy__batch_release(batch);
    }
    return SY_OK;
}

int sy__processor_emit(sy_instance_t *inst, sy_batch_t *batch)
{
    return run_chain(inst->pipeline, inst->index + 1, batch);
}

void sy__pipeline_on_wake(void *arg)
{
    sy__pipeline_t *p = arg;
    if (p->npending && !pending_flush(p)) {
        arm_retry(p);
        return;
    }
    void *items[SY__BURST];
    unsigned n = sy__mpmc_pop_burst(&p->in, items, SY__BURST);
    queue_popped(&p->in_items, items, n);
    for (unsigned i = 0; i < n; i++)
        run_chain(p, 0, items[i]);
    if (p->npending) {
        arm_retry(p);
        return;
    }
    /* More may be queued: come back on the next loop turn rather than hog it, so
     * that timers (the batch processor's) keep firing under load. */
    if (n == SY__BURST) sy__thread_wake(&p->thread);
}

int sy__pipeline_init(sy__pipeline_t *p)
{
    if (uv_timer_init(&p->thread.loop, &p->retry) != 0) return SY_ERROR;
    p->retry.data = p;
    return SY_OK;
}

/* On the pipeline thread at shutdown, after the receivers have stopped: pushes
 * everything queued through the chain, lets each processor flush in order, and
 * waits (bounded) until the exporter queues have taken everything. */
void sy__pipeline_drain(void *arg)
{
    sy__pipeline_t *p = arg;
    void *items[SY__BURST];
    unsigned n;
    while ((n = sy__mpmc_pop_burst(&p->in, items, SY__BURST)) > 0) {
        queue_popped(&p->in_items, items, n);
        for (unsigned i = 0; i < n; i++)
            run_chain(p, 0, items[i]);
    }
    for (size_t i = 0; i < p->nprocessors; i++) {
        sy_instance_t *proc = p->processors[i];
        if (proc->started && proc->plugin->shutdown) proc->plugin->shutdown(proc->state);
        proc->started = false;
        sy__instance_close_timers(proc);
    }
    uint64_t waited = 0;
    while (!pending_flush(p) && waited < p->engine->shutdown_timeout_ms) {
        uv_sleep(SY__RETRY_MS);
        waited += SY__RETRY_MS;
    }
    if (p->npending) {
        uint64_t lost = 0;
        for (size_t i = 0; i < p->npending; i++) {
            lost += sy__batch_items(p->pending[i].batch);
            sy__batch_release(p->pending[i].batch);
        }
        SY__LOG(SY_LOG_ERROR, p->id,
                "exporters did not take %zu batches (%llu items) within the shutdown timeout",
                p->npending, (unsigned long long)lost);
        p->npending = 0;
    }
    p->stopping = true;
    uv_timer_stop(&p->retry);
    uv_close((uv_handle_t *)&p->retry, NULL);
}

/* ---- exporters --------------------------------------------------------------- */

static int deliver(sy_instance_t *x, sy_batch_t *batch)
{
    sy_signal_t signal = sy__batch_signal(batch);
    uint64_t items = sy__batch_items(batch);
    int rc = x->plugin->consume(x->state, batch);
    if (rc == SY_EAGAIN) return rc;
    sy__signal_metrics_t *m = &x->metrics[sy__signal_index(signal)];
    if (rc < 0) {
        count(m->failed, items);
        SY__LOG(SY_LOG_ERROR, x->id, "exporter failed a batch of %llu items (error %d)",
                (unsigned long long)items, rc);
        sy__batch_release(batch);
        return rc;
    }
    if (!(x->plugin->flags & SY_PLUGIN_REPORTS_OUTCOME)) count(m->ok, items);
    return SY_OK;
}

void sy__exporter_outcome(sy_instance_t *x, sy_signal_t signal, uint64_t items, bool sent)
{
    sy__signal_metrics_t *m = &x->metrics[sy__signal_index(signal)];
    count(sent ? m->ok : m->failed, items);
    if (!sent && sy__engine_status() == SY_STATUS_STOPPING) sy__shutdown_loss_add(items);
}

void sy__exporter_on_wake(void *arg)
{
    sy_instance_t *x = arg;
    if (!x->started) return;
    for (int rounds = 0; rounds < 4; rounds++) {
        if (x->backlog_pos == x->backlog_n) {
            x->backlog_pos = 0;
            x->backlog_n = sy__mpmc_pop_burst(&x->queue, x->backlog, SY__EXPORTER_BURST);
            queue_popped(&x->queue_items, x->backlog, x->backlog_n);
            if (x->backlog_n == 0) return;
        }
        while (x->backlog_pos < x->backlog_n) {
            /* Assume the exporter will decline before asking it: a ready() that it
             * calls from another thread after deciding to decline then always lands
             * after this store, so it cannot be lost. Relaxed on both sides would
             * lose nothing either (one variable), but release/acquire also orders
             * the plugin's own state before the wake-up. */
            atomic_store_explicit(&x->blocked, true, memory_order_release);
            if (deliver(x, x->backlog[x->backlog_pos]) == SY_EAGAIN) {
                if (atomic_load_explicit(&x->blocked, memory_order_acquire)) return;
                continue; /* ready() came while it declined: offer it again */
            }
            atomic_store_explicit(&x->blocked, false, memory_order_release);
            x->backlog_pos++;
        }
    }
    /* More may be queued: yield to the loop's other handles, then come back. */
    sy__thread_wake(x->thread);
}

void sy__exporter_ready(sy_instance_t *inst)
{
    atomic_store_explicit(&inst->blocked, false, memory_order_release);
    sy__thread_wake(inst->thread);
}

size_t sy__exporter_backlog(const sy_instance_t *x)
{
    return (x->backlog_n - x->backlog_pos) + sy__mpmc_size(&x->queue);
}

/* Releases whatever an exporter never took (shutdown deadline passed), counting it
 * as failed. Returns the items dropped. Exporter thread. */
uint64_t sy__exporter_abandon(sy_instance_t *x)
{
    uint64_t lost = 0;
    for (;;) {
        while (x->backlog_pos < x->backlog_n) {
            sy_batch_t *b = x->backlog[x->backlog_pos++];
            uint64_t items = sy__batch_items(b);
            count(x->metrics[sy__signal_index(sy__batch_signal(b))].failed, items);
            lost += items;
            sy__batch_release(b);
        }
        x->backlog_pos = 0;
        x->backlog_n = sy__mpmc_pop_burst(&x->queue, x->backlog, SY__EXPORTER_BURST);
        queue_popped(&x->queue_items, x->backlog, x->backlog_n);
        if (!x->backlog_n) return lost;
    }
}
