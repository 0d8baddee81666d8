/*
 * runtime.c - how batches move: receivers -> pipeline queue -> processors ->
 * fan-out -> exporter queues -> exporters, and how each stage drains at shutdown.
 *
 * Back-pressure runs backwards along the same path. An exporter that declines a
 * batch (SY_EAGAIN) stops being fed; its queue fills; a pipeline that cannot hand
 * a batch to every exporter queue keeps it pending, takes nothing more from its
 * own queue and waits to be woken by the exporter that makes room; that queue
 * fills; and a receiver's emit() then fails with SY_EAGAIN, which the receiver
 * turns into its protocol's "retry later". Nothing is dropped on the way: what a
 * stage cannot carry (out of memory, a processor's refusal, the shutdown
 * deadline) is counted where it happens, so that for every component items in =
 * items out + refused + dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "cow.h"
#include "engine.h"
#include "log.h"
#include "settle.h"
#include "signals.h"
#include "telemetry.h"
#include "view.h"

#define SY__BURST 64

int sy__signal_index(sy_signal_t signal)
{
    const syc_signal_info_t *si = syc_signal_info(signal);
    return si ? si->index : 0;
}

static void count(sy_metric_t *m, uint64_t n)
{
    if (m && n) sy__metric_add(m, (int64_t)n);
}

/*
 * A queue is full when it holds `limit` batches; or, while it holds anything at
 * all, SY__QUEUE_MAX_ITEMS items (spans, data points, log records), or a quarter
 * of the queue budget in bytes of batches, or when every core queue of the
 * process together holds the whole budget (SY__QUEUE_BUDGET_BYTES, or the
 * environment's SWITCHYARD_QUEUE_BUDGET). An empty queue always takes one batch,
 * however large: so a batch larger than a limit is never refused for ever, and a
 * queue whose consumer is stuck cannot starve the other queues of the process for
 * longer than their own share of the budget lasts.
 *
 * Items are counted beside the ring (a batch's item count never changes while it
 * is queued: a shared batch is read-only): added before the push and taken back
 * if the push fails, so the count never goes below zero. Bytes are the batch's
 * memory when it goes in (sy__batch_bytes), carried by the ring with the item, so
 * that exactly that is taken off when it comes out even if the batch grew in the
 * meantime (a lazy decode by another holder). The checks and the pushes of
 * concurrent producers may interleave, so a limit can be passed by the batches
 * they push at the same moment; never by more.
 */
#define SY__QUEUE_BUDGET_BYTES ((int64_t)16 << 20)
#define SY__QUEUE_SHARE        4 /* one queue may hold budget / SY__QUEUE_SHARE */

/* SWITCHYARD_QUEUE_BUDGET (a size, "48MiB"; 0: no byte bound at all), or -1 when
 * it is not set. Read once; a value that does not parse is logged and ignored. */
static int64_t env_queue_budget(void)
{
    static _Atomic int64_t env_budget = -2; /* -2: not read yet */
    int64_t b = atomic_load_explicit(&env_budget, memory_order_relaxed);
    if (b != -2) return b;
    b = -1;
    const char *env = getenv("SWITCHYARD_QUEUE_BUDGET");
    uint64_t v = 0;
    if (env && *env) {
        if (sy__parse_size(env, &v) == 0 && v <= (uint64_t)INT64_MAX)
            b = v ? (int64_t)v : INT64_MAX;
        else
            SY__LOG(SY_LOG_WARN, "service",
                    "SWITCHYARD_QUEUE_BUDGET=%s is not a size such as 64MiB; ignored", env);
    }
    /* Relaxed: every thread computes the same value; a race only repeats it. */
    atomic_store_explicit(&env_budget, b, memory_order_relaxed);
    return b;
}

/* The smallest bound a memory_limiter asked for (api->queue_budget_limit), or -1. */
static _Atomic int64_t limiter_budget = -1;

/* The process-wide budget: SWITCHYARD_QUEUE_BUDGET when set, else the smallest
 * bound a memory_limiter asked for, else SY__QUEUE_BUDGET_BYTES. */
int64_t sy__queue_budget(void)
{
    int64_t b = env_queue_budget();
    if (b >= 0) return b;
    b = atomic_load_explicit(&limiter_budget, memory_order_relaxed);
    return b > 0 ? b : SY__QUEUE_BUDGET_BYTES;
}

void sy__queue_budget_limit(int64_t bytes)
{
    if (bytes <= 0) return;
    int64_t cur = atomic_load(&limiter_budget);
    while ((cur < 0 || bytes < cur) &&
           !atomic_compare_exchange_weak(&limiter_budget, &cur, bytes)) {
    }
}

void sy__queue_budget_reset(void)
{
    atomic_store(&limiter_budget, -1);
}

static bool queue_full(sy__mpmc_t *q, size_t limit, const _Atomic int64_t *items)
{
    size_t n = sy__mpmc_size(q);
    if (n >= limit) return true;
    if (n == 0) return false;
    int64_t budget = sy__queue_budget();
    return atomic_load_explicit(items, memory_order_relaxed) >= SY__QUEUE_MAX_ITEMS ||
           sy__mpmc_weight(q) >= budget / SY__QUEUE_SHARE || sy__queue_weight_total() >= budget;
}

static bool queue_push(sy__mpmc_t *q, _Atomic int64_t *items, sy_batch_t *b)
{
    int64_t n = (int64_t)sy__batch_items(b);
    atomic_fetch_add_explicit(items, n, memory_order_relaxed);
    if (sy__mpmc_push_weighted(q, b, sy__batch_bytes(b))) return true;
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

/*
 * Hands a batch to every pipeline of its signal that the receiver feeds, or to
 * none. All of them are checked for room first, against a logical limit that
 * leaves one ring slot for every worker that may be producing at the same time
 * (engine.c sizes the rings so): however such checks interleave, every push that
 * follows a successful check finds a free slot, so a batch is never left in some
 * pipelines but not others.
 */
/* Whether pipeline p is one of those named (all, when pipelines is NULL). */
static bool output_wanted(const char *const *pipelines, size_t n, const sy__pipeline_t *p)
{
    if (!pipelines) return true;
    for (size_t i = 0; i < n; i++)
        if (pipelines[i] && !strcmp(pipelines[i], p->id)) return true;
    return false;
}

/*
 * The second half of a receiver's or a connector's emit, once every target has
 * been checked for room: pushes the batch to each output of its signal that is
 * wanted, one reference per pipeline, the caller's going to the one at `last`.
 * SY_OK, or SY_EAGAIN (logged) if a push failed after all.
 */
static int push_outputs(sy_instance_t *inst, sy_batch_t *batch, const char *const *pipelines,
                        size_t n, size_t last)
{
    sy_signal_t signal = sy__batch_signal(batch);
    sy__view_settle(batch); /* a view it was made or edited with stays on this thread */
    for (size_t i = 0; i < inst->recv.noutputs; i++) {
        sy__pipeline_t *p = inst->recv.outputs[i];
        if (p->signal != signal || !output_wanted(pipelines, n, p)) continue;
        if (i != last) sy__batch_retain(batch);
        if (!queue_push(&p->in, &p->in_items, batch)) {
            /* Cannot happen while the ring has its spare slots; if it did, the
             * pipelines served so far keep the batch and the client's retry
             * duplicates it there. Said loudly rather than hidden. */
            if (i != last) sy__batch_release(batch);
            SY__LOG(SY_LOG_ERROR, inst->id, "pipeline %s: queue full after the room check", p->id);
            return SY_EAGAIN;
        }
        sy__wake_send(&p->wake);
    }
    return SY_OK;
}

int sy__receiver_emit(sy_instance_t *inst, sy_batch_t *batch)
{
    sy_signal_t signal = sy__batch_signal(batch);
    uint64_t items = sy__batch_items(batch);
    sy__signal_metrics_t *m = &inst->metrics[sy__signal_index(signal)];
    /* A refusal for the moment is counted when the batch is freed, not here: a
     * receiver that holds the request and emits it again (queue_wait) counts
     * it once, and not at all if a later emit takes it. */
    sy__batch_refused_by(batch, NULL);
    if (sy__engine_status() == SY_STATUS_STOPPING) {
        count(m->failed, items);
        return SY_ECLOSED;
    }

    size_t n = 0, last = 0;
    for (size_t i = 0; i < inst->recv.noutputs; i++) {
        sy__pipeline_t *p = inst->recv.outputs[i];
        if (p->signal != signal) continue;
        if (queue_full(&p->in, p->in_limit, &p->in_items) ||
            atomic_load_explicit(&p->refusing, memory_order_relaxed)) {
            sy__batch_refused_by(batch, m->failed);
            return SY_EAGAIN;
        }
        n++;
        last = i;
    }
    if (n == 0) return SY_ENOTSUP;
    sy__settle_routes(batch, (unsigned)n);
    int rc = push_outputs(inst, batch, NULL, 0, last);
    count(rc == SY_OK ? m->ok : m->failed, items);
    return rc;
}

/*
 * Whether the receiver may hold a refused batch of `signal` and emit it again
 * (emit_may_wait(), ABI 1.8): no pipeline of that signal it feeds is refusing on
 * a processor's word (memory_limiter), and the engine is not stopping. A queue
 * that is full is; it empties as its pipeline works.
 */
bool sy__receiver_may_wait(sy_instance_t *inst, sy_signal_t signal)
{
    if (!inst || inst->kind != SY_KIND_RECEIVER || sy__engine_status() == SY_STATUS_STOPPING)
        return false;
    for (size_t i = 0; i < inst->recv.noutputs; i++) {
        sy__pipeline_t *p = inst->recv.outputs[i];
        if (p->signal == signal && atomic_load_explicit(&p->refusing, memory_order_relaxed))
            return false;
    }
    return true;
}

/* compressed_wanted() (ABI 1.8): an exporter of a pipeline of `signal` that the
 * receiver feeds may send a compressed twin as it is. */
bool sy__receiver_compressed_wanted(sy_instance_t *inst, sy_signal_t signal)
{
    if (!inst || inst->kind != SY_KIND_RECEIVER) return false;
    for (size_t i = 0; i < inst->recv.noutputs; i++) {
        const sy__pipeline_t *p = inst->recv.outputs[i];
        if (p->signal != signal) continue;
        for (size_t j = 0; j < p->nexporters; j++)
            if (p->exporters[j]->plugin->flags & SY_PLUGIN_SENDS_COMPRESSED) return true;
    }
    return false;
}

/* ---- pipelines ------------------------------------------------------------- */

static void pipeline_finish(sy__pipeline_t *p);

/* Counts a batch as never having reached exporters first..nexporters-1. */
static void enqueue_failed(sy__pipeline_t *p, size_t first, sy_batch_t *batch)
{
    uint64_t items = sy__batch_items(batch);
    int si = sy__signal_index(p->signal);
    for (size_t i = first; i < p->nexporters; i++) {
        count(p->exporters[i]->metrics[si].enqueue_failed, items);
        sy__settle_done(batch, SY_EAGAIN); /* its client is told to retry */
    }
    if (sy__engine_status() == SY_STATUS_STOPPING)
        atomic_fetch_add(&p->engine->lost_at_stop, items);
}

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

/*
 * Whether exporter x's queue has room; when it has not, leaves word that this
 * pipeline waits, and looks again. The exporter takes the word back with an
 * exchange after every pop (exporter_made_room). Both sides use read-modify-writes
 * on the one flag, so they are totally ordered on it: if the exporter's exchange
 * comes first, ours reads from it (acquire after its release), so the pop that
 * preceded it happens before our second look, which then sees the room; if ours
 * comes first, the exporter's exchange reads `true` and wakes us. (A plain store
 * and load would need a fence on each side, which ThreadSanitizer cannot follow.)
 */
static bool exporter_has_room(sy_instance_t *x)
{
    if (!queue_full(&x->exp.queue, sy__mpmc_capacity(&x->exp.queue), &x->exp.queue_items))
        return true;
    atomic_exchange_explicit(&x->exp.has_waiter, true, memory_order_acq_rel);
    return !queue_full(&x->exp.queue, sy__mpmc_capacity(&x->exp.queue), &x->exp.queue_items);
}

/* Hands pending batches to the exporter queues, in order. Returns true when
 * nothing is left pending. Pipeline thread, the only producer of these queues
 * besides other pipelines' threads, each of which checks before it pushes; a
 * push can still lose a race for the last slot, and then checks again. */
static bool pending_flush(sy__pipeline_t *p)
{
    size_t done = 0;
    for (; done < p->npending; done++) {
        sy__pending_t *pe = &p->pending[done];
        while (pe->next < p->nexporters) {
            sy_instance_t *x = p->exporters[pe->next];
            bool last = pe->next + 1 == p->nexporters;
            if (!exporter_has_room(x)) goto blocked;
            if (!last) sy__batch_retain(pe->batch);
            if (!queue_push(&x->exp.queue, &x->exp.queue_items, pe->batch)) {
                /* Another pipeline took the last slot since the check: check again,
                 * which leaves word for the exporter if there is still no room. */
                if (!last) sy__batch_release(pe->batch);
                continue;
            }
            sy__wake_send(&x->exp.wake);
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

/* The end of the processor chain. Always takes the batch: it is kept pending
 * until every exporter queue has taken it, or counted as failed to enqueue. */
static void fan_out(sy__pipeline_t *p, sy_batch_t *batch)
{
    /* The processors' shared view ends here: the exporters read bytes. */
    sy__view_settle(batch);
    if (sy__settle_has(batch)) {
        /* Settled by each exporter's consume(); the batch's own route ends here. */
        sy__settle_expect(batch, (unsigned)p->nexporters);
        sy__settle_route_end(batch);
    }
    if (pending_add(p, batch) < 0) {
        SY__LOG(SY_LOG_ERROR, p->id, "out of memory: %llu items not handed to the exporters",
                (unsigned long long)sy__batch_items(batch));
        enqueue_failed(p, 0, batch);
        sy__batch_release(batch);
        return;
    }
    pending_flush(p);
}

/* Runs `batch` through processors index.. and on to the fan-out. Always takes the
 * batch: what cannot go on is counted at the stage where it stopped. */
static void run_chain(sy__pipeline_t *p, size_t index, sy_batch_t *batch)
{
    if (index >= p->nprocessors) {
        fan_out(p, batch);
        return;
    }
    sy_instance_t *proc = p->processors[index];
    uint64_t items = sy__batch_items(batch);
    count(proc->proc.pmetrics.incoming, items);
    if ((proc->plugin->flags & SY_PLUGIN_MUTATES_DATA) && sy__batch_is_shared(batch)) {
        /* Shared batches are read-only: a processor that changes data gets its own. */
        sy_batch_t *copy = sy__batch_copy(batch);
        if (copy) sy__settle_route_end(batch); /* its tokens go on in the copy */
        sy__batch_release(batch);
        if (!copy) {
            count(proc->proc.pmetrics.dropped, items);
            SY__LOG_RATELIMITED(&proc->proc.refusal_log, 10000, SY_LOG_WARN, proc->id,
                                "out of memory copying a shared batch: %llu items dropped",
                                (unsigned long long)items);
            return;
        }
        batch = copy;
    }
    sy_instance_t *prev = sy__consumer_enter(proc);
    int rc = proc->plugin->consume(proc->state, batch);
    sy__consumer_leave(prev);
    if (rc < 0) {
        count(proc->proc.pmetrics.refused, items);
        SY__LOG_RATELIMITED(&proc->proc.refusal_log, 10000, SY_LOG_WARN, proc->id,
                            "processor refused a batch of %llu items (error %d)",
                            (unsigned long long)items, rc);
        sy__settle_fail(batch, rc); /* its clients are told to retry */
        sy__batch_release(batch);
    }
}

int sy__processor_emit(sy_instance_t *inst, sy_batch_t *batch)
{
    count(inst->proc.pmetrics.outgoing, sy__batch_items(batch));
    run_chain(inst->proc.pipeline, inst->proc.index + 1, batch);
    return SY_OK;
}

/* A processor asks that receivers be refused (or no longer): counted per pipeline,
 * so that two processors that both ask must both stop asking. Relaxed: the flag
 * guards no data; a receiver that reads it a moment late only takes one more
 * batch, which the pipeline carries as usual. */
void sy__processor_refuse(sy_instance_t *inst, bool refuse)
{
    if (atomic_exchange(&inst->proc.refusing, refuse) == refuse) return;
    if (refuse)
        atomic_fetch_add_explicit(&inst->proc.pipeline->refusing, 1, memory_order_relaxed);
    else
        atomic_fetch_sub_explicit(&inst->proc.pipeline->refusing, 1, memory_order_relaxed);
}

static void connectors_ready(sy__pipeline_t *p);

void sy__pipeline_on_wake(void *arg)
{
    sy__pipeline_t *p = arg;
    if (p->nupstream && !p->draining && atomic_load(&p->drain_go) &&
        atomic_load(&p->stop_requested)) {
        sy__pipeline_begin_drain(p);
        return;
    }
    if (p->npending && !pending_flush(p)) return; /* the exporter wakes us */
    if (p->draining) {
        if (!p->npending) pipeline_finish(p);
        return;
    }
    void *items[SY__BURST];
    unsigned n = sy__mpmc_pop_burst(&p->in, items, SY__BURST);
    queue_popped(&p->in_items, items, n);
    if (n) connectors_ready(p);
    for (unsigned i = 0; i < n; i++)
        run_chain(p, 0, items[i]);
    /* More may be queued: come back on the next loop turn rather than hog it, so
     * that timers (the batch processor's) and other pipelines on this worker get
     * their turn. Not while something is pending: the exporter wakes us then. */
    if (n == SY__BURST && !p->npending) sy__wake_send(&p->wake);
}

static void on_pipeline_deadline(uv_timer_t *t)
{
    sy__pipeline_t *p = t->data;
    if (p->npending) {
        uint64_t lost = 0;
        for (size_t i = 0; i < p->npending; i++) {
            lost += sy__batch_items(p->pending[i].batch);
            enqueue_failed(p, p->pending[i].next, p->pending[i].batch);
            sy__batch_release(p->pending[i].batch);
        }
        SY__LOG(SY_LOG_ERROR, p->id,
                "exporters did not take %zu batches (%llu items) within the shutdown timeout",
                p->npending, (unsigned long long)lost);
        p->npending = 0;
    }
    pipeline_finish(p);
}

/* On the pipeline's worker, before any receiver starts. */
int sy__pipeline_open(sy__pipeline_t *p)
{
    if (uv_timer_init(&p->thread->loop, &p->deadline) != 0) return SY_ERROR;
    p->deadline.data = p;
    p->deadline_ready = true;
    if (sy__wake_open(&p->wake, p->thread, sy__pipeline_on_wake, p) < 0) return SY_ERROR;
    p->wake_ready = true;
    return SY_OK;
}

/* Closes the pipeline's own handles; its worker's loop can then end. */
static void connector_feeder_done(sy_instance_t *c);

static void pipeline_finish(sy__pipeline_t *p)
{
    if (p->drained) return;
    p->drained = true;
    for (size_t i = 0; i < p->nexporters; i++)
        if (p->exporters[i]->kind == SY_KIND_CONNECTOR) connector_feeder_done(p->exporters[i]);
    if (p->wake_ready) sy__wake_close(&p->wake);
    if (p->deadline_ready) {
        uv_timer_stop(&p->deadline);
        uv_close((uv_handle_t *)&p->deadline, NULL);
    }
}

/*
 * On the pipeline's worker at shutdown, after the receivers have stopped: pushes
 * everything queued through the chain, lets each processor flush in order, and
 * then finishes as soon as the exporter queues have taken everything, or at the
 * engine's deadline (what is left is counted as failed to enqueue).
 */
void sy__pipeline_begin_drain(sy__pipeline_t *p)
{
    if (p->draining || !p->wake_ready) {
        pipeline_finish(p);
        return;
    }
    void *items[SY__BURST];
    unsigned n;
    while ((n = sy__mpmc_pop_burst(&p->in, items, SY__BURST)) > 0) {
        queue_popped(&p->in_items, items, n);
        connectors_ready(p);
        for (unsigned i = 0; i < n; i++)
            run_chain(p, 0, items[i]);
    }
    for (size_t i = 0; i < p->nprocessors; i++)
        sy__instance_shutdown(p->processors[i]);
    p->draining = true;
    if (pending_flush(p)) {
        pipeline_finish(p);
        return;
    }
    uint64_t now = sy__now_ms();
    uint64_t left = p->engine->deadline_ms > now ? p->engine->deadline_ms - now : 0;
    uv_timer_start(&p->deadline, on_pipeline_deadline, left, 0);
}

/* ---- exporters --------------------------------------------------------------- */

static void exporter_finish(sy_instance_t *x);

/* The settle tokens of a batch being delivered, kept aside: consume() may free it. */
typedef struct settle_list_s {
    sy_settle_t *small[8];
    sy_settle_t **list;
    size_t n;
} settle_list_t;

/* Claims the exporter's obligation on the batch (none: sl->n == 0). */
static void settle_list_take(settle_list_t *sl, sy_batch_t *batch)
{
    sl->list = sl->small;
    sl->n = sy__settle_claim(batch, sl->small, 8);
    if (sl->n <= 8) return;
    sl->list = malloc(sl->n * sizeof(*sl->list));
    if (!sl->list) { /* cannot keep them aside: settled now, as failed (retried) */
        sl->list = sl->small;
        sl->n = 0;
        sy__settle_claimed_drop(batch, SY_ENOMEM);
        return;
    }
    sy__settle_copy(batch, sl->list, sl->n);
}

static void settle_list_end(settle_list_t *sl, sy_batch_t *batch, int rc)
{
    if (rc == SY_EAGAIN)
        sy__settle_unclaim(batch); /* still ours: offered again */
    else
        sy__settle_done_list(sl->list, sl->n, rc < 0 ? rc : SY_OK);
    if (sl->list != sl->small) free(sl->list);
}

static int deliver(sy_instance_t *x, sy_batch_t *batch)
{
    sy_signal_t signal = sy__batch_signal(batch);
    uint64_t items = sy__batch_items(batch);
    settle_list_t sl = {.n = 0};
    if (sy__settle_has(batch)) {
        settle_list_take(&sl, batch);
        /* A connector may emit this very batch on: its exporters there were not
         * expected, and its tokens are then held until it is freed. */
        if (x->kind == SY_KIND_CONNECTOR) sy__settle_seal(batch);
    }
    sy_instance_t *prev = sy__consumer_enter(x);
    int rc = x->plugin->consume(x->state, batch);
    sy__consumer_leave(prev);
    /* Taken (for a durable exporter: written), or failed; not a refusal. The
     * batch may be gone by now: the claimed tokens are settled from the list. */
    if (sl.n) settle_list_end(&sl, batch, rc);
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
    if (!sent && sy__engine_status() == SY_STATUS_STOPPING)
        atomic_fetch_add(&x->engine->lost_at_stop, items);
}

/* After a pop: wakes the pipelines if one of them waits for room (the other half
 * of exporter_has_room's handshake). */
static void exporter_made_room(sy_instance_t *x)
{
    /* Always the exchange, never a cheaper load first: a load may read a stale
     * `false` and lose the wake-up. One per burst popped. */
    if (!atomic_exchange_explicit(&x->exp.has_waiter, false, memory_order_acq_rel)) return;
    for (size_t i = 0; i < x->exp.nfeeders; i++)
        sy__wake_send(&x->exp.feeders[i]->wake);
}

static bool backlog_refill(sy_instance_t *x)
{
    if (x->exp.backlog_pos < x->exp.backlog_n) return true;
    x->exp.backlog_pos = 0;
    if (x->exp.inherit_pos < x->exp.inherit_n) {
        /* Handed over by the old instance at a reload: offered first. */
        size_t n = x->exp.inherit_n - x->exp.inherit_pos;
        if (n > SY__EXPORTER_BURST) n = SY__EXPORTER_BURST;
        memcpy(x->exp.backlog, &x->exp.inherit[x->exp.inherit_pos], n * sizeof(void *));
        x->exp.inherit_pos += n;
        x->exp.backlog_n = (unsigned)n;
        if (x->exp.inherit_pos == x->exp.inherit_n) {
            free(x->exp.inherit);
            x->exp.inherit = NULL;
            x->exp.inherit_pos = x->exp.inherit_n = 0;
        }
        return true;
    }
    x->exp.backlog_n = sy__mpmc_pop_burst(&x->exp.queue, x->exp.backlog, SY__EXPORTER_BURST);
    if (x->exp.backlog_n == 0) return false;
    queue_popped(&x->exp.queue_items, x->exp.backlog, x->exp.backlog_n);
    exporter_made_room(x);
    return true;
}

static long exporter_hand_over(sy_instance_t *x, sy_instance_t *y);

void sy__exporter_on_wake(void *arg)
{
    sy_instance_t *x = arg;
    if (x->kind == SY_KIND_CONNECTOR && !x->exp.draining && atomic_load(&x->exp.drain_go)) {
        sy__exporter_begin_drain(x);
        return;
    }
    if (!x->started) return;
    if (x->exp.handing) {
        /* Reload: everything goes to the successor (see sy__exporter_hand_over_begin). */
        if (exporter_hand_over(x, x->exp.successor) >= 0) return;
        x->exp.handing = false; /* no memory: x takes it itself */
    }
    for (int rounds = 0; rounds < 4; rounds++) {
        if (!backlog_refill(x)) {
            if (x->exp.draining) exporter_finish(x);
            return;
        }
        while (x->exp.backlog_pos < x->exp.backlog_n) {
            /* Assume the exporter will decline before asking it: a ready() that it
             * calls from another thread after deciding to decline then always lands
             * after this store, so it cannot be lost. Relaxed on both sides would
             * lose nothing either (one variable), but release/acquire also orders
             * the plugin's own state before the wake-up. */
            atomic_store_explicit(&x->exp.blocked, true, memory_order_release);
            if (deliver(x, x->exp.backlog[x->exp.backlog_pos]) == SY_EAGAIN) {
                if (atomic_load_explicit(&x->exp.blocked, memory_order_acquire)) return;
                continue; /* ready() came while it declined: offer it again */
            }
            atomic_store_explicit(&x->exp.blocked, false, memory_order_release);
            x->exp.backlog_pos++;
        }
    }
    /* More may be queued: yield to the loop's other handles, then come back. */
    sy__wake_send(&x->exp.wake);
}

void sy__exporter_ready(sy_instance_t *inst)
{
    atomic_store_explicit(&inst->exp.blocked, false, memory_order_release);
    sy__wake_send(&inst->exp.wake);
}

/* Releases whatever the exporter never took (shutdown deadline passed), counting it
 * as failed. Returns the items dropped. Exporter's worker. */
static uint64_t exporter_abandon(sy_instance_t *x)
{
    uint64_t lost = 0;
    backlog_refill(x); /* what was handed over from a predecessor, if any */
    for (;;) {
        while (x->exp.backlog_pos < x->exp.backlog_n) {
            sy_batch_t *b = x->exp.backlog[x->exp.backlog_pos++];
            uint64_t items = sy__batch_items(b);
            count(x->metrics[sy__signal_index(sy__batch_signal(b))].failed, items);
            lost += items;
            sy__settle_done(b, SY_EAGAIN);
            sy__batch_release(b);
        }
        x->exp.backlog_pos = x->exp.backlog_n = 0;
        if (backlog_refill(x)) continue;
        break;
    }
    atomic_fetch_add(&x->engine->lost_at_stop, lost);
    return lost;
}

/* Reload: moves everything x's queue holds, in order, to the end of its
 * successor's inherited list (x's worker; the successor's plugin has not started,
 * and the main thread's wait for x->finished orders this before its start).
 * Returns the batches moved, or -1 without memory (what was not moved stays and x
 * drains it as if it had no successor). */
static long exporter_hand_over(sy_instance_t *x, sy_instance_t *y)
{
    long moved = 0;
    uint64_t items = 0;
    size_t cap = y->exp.inherit_n;
    for (;;) {
        while (x->exp.backlog_pos < x->exp.backlog_n) {
            if (y->exp.inherit_n == cap) {
                size_t ncap = cap ? 2 * cap : 64;
                void **grown = realloc(y->exp.inherit, ncap * sizeof(*grown));
                if (!grown) return -1; /* the rest stays: x drains it itself */
                y->exp.inherit = grown;
                cap = ncap;
            }
            void *b = x->exp.backlog[x->exp.backlog_pos++];
            items += sy__batch_items(b);
            y->exp.inherit[y->exp.inherit_n++] = b;
            moved++;
        }
        x->exp.backlog_pos = 0;
        x->exp.backlog_n = sy__mpmc_pop_burst(&x->exp.queue, x->exp.backlog, SY__EXPORTER_BURST);
        queue_popped(&x->exp.queue_items, x->exp.backlog, x->exp.backlog_n);
        if (!x->exp.backlog_n) break;
        exporter_made_room(x);
    }
    if (moved)
        SY__LOG(SY_LOG_INFO, x->id,
                "reload: %ld batches (%llu items) not yet taken by the old instance are handed "
                "to the new one",
                moved, (unsigned long long)items);
    return moved;
}

static void on_exporter_deadline(uv_timer_t *t)
{
    sy_instance_t *x = t->data;
    uint64_t lost = exporter_abandon(x);
    if (lost)
        SY__LOG(SY_LOG_ERROR, x->id,
                "shutdown timeout: %llu items were never sent and are counted as failed",
                (unsigned long long)lost);
    exporter_finish(x);
}

/* On the exporter's worker, before any pipeline starts. */
int sy__exporter_open(sy_instance_t *x)
{
    if (uv_timer_init(&x->thread->loop, &x->exp.deadline) != 0) return SY_ERROR;
    x->exp.deadline.data = x;
    x->exp.deadline_ready = true;
    return sy__wake_open(&x->exp.wake, x->thread, sy__exporter_on_wake, x);
}

/* Everything the exporter was given has been taken (or abandoned): its plugin
 * finishes or abandons what is in flight, and the host's handles close. */
static void connector_drained(sy_instance_t *c);

static void exporter_finish(sy_instance_t *x)
{
    if (x->exp.drained) return;
    x->exp.drained = true;
    sy__instance_shutdown(x);
    if (x->kind == SY_KIND_CONNECTOR) connector_drained(x);
    sy__wake_close(&x->exp.wake);
    if (x->exp.deadline_ready) {
        uv_timer_stop(&x->exp.deadline);
        uv_close((uv_handle_t *)&x->exp.deadline, NULL);
    }
    atomic_store(&x->finished, true);
}

void sy__exporter_hand_over_begin(sy_instance_t *x)
{
    if (!x->exp.successor || !x->started || x->exp.draining) return;
    x->exp.handing = exporter_hand_over(x, x->exp.successor) >= 0;
}

/* On the exporter's worker at shutdown, after every pipeline has finished. */
void sy__exporter_begin_drain(sy_instance_t *x)
{
    if (x->exp.draining) return;
    x->exp.draining = true;
    if (!x->started) {
        exporter_abandon(x);
        exporter_finish(x);
        return;
    }
    /* A reload with a successor: it takes the queue; the plugin's shutdown()
     * hands its own queue on (exporterhelper.c) and finishes what is in flight. */
    if (x->exp.successor && exporter_hand_over(x, x->exp.successor) >= 0) {
        exporter_finish(x);
        return;
    }
    if (x->exp.backlog_pos == x->exp.backlog_n && sy__mpmc_size(&x->exp.queue) == 0) {
        exporter_finish(x);
        return;
    }
    uint64_t now = sy__now_ms();
    uint64_t left = x->engine->deadline_ms > now ? x->engine->deadline_ms - now : 0;
    uv_timer_start(&x->exp.deadline, on_exporter_deadline, left, 0);
    sy__exporter_on_wake(x);
}

/* ---- connectors ------------------------------------------------------------------ */

/*
 * A connector is an exporter of the pipelines it ends and a receiver of those it
 * feeds, on a pipeline worker. At shutdown the chain drains in order: each
 * pipeline it ends finishes (connector_feeder_done), then the connector takes what
 * is left in its queue and its plugin's shutdown() emits what it holds, and only
 * then do the pipelines it feeds begin to drain (connector_drained). Cycles are
 * refused when the engine is built, so this always ends.
 */

/* One of the pipelines the connector ends has finished (on that pipeline's worker). */
static void connector_feeder_done(sy_instance_t *c)
{
    if (atomic_fetch_sub(&c->exp.feeders_live, 1) != 1) return;
    atomic_store(&c->exp.drain_go, true);
    if (c->exp.wake.thread) sy__wake_send(&c->exp.wake);
}

/* The connector has drained (on its worker): the pipelines it feeds may drain. */
static void connector_drained(sy_instance_t *c)
{
    for (size_t i = 0; i < c->recv.noutputs; i++) {
        sy__pipeline_t *p = c->recv.outputs[i];
        if (atomic_fetch_sub(&p->upstream_live, 1) != 1) continue;
        atomic_store(&p->drain_go, true);
        if (p->wake_ready) sy__wake_send(&p->wake);
    }
}

/* A pipeline that never started (the start failed before it) counts as drained
 * for the connectors it ends. Main thread, at stop, before any worker drains. */
void sy__pipeline_never_started(sy__pipeline_t *p)
{
    if (p->thread) return;
    p->drained = true;
    for (size_t i = 0; i < p->nexporters; i++)
        if (p->exporters[i]->kind == SY_KIND_CONNECTOR) connector_feeder_done(p->exporters[i]);
}

/* After the pipeline took from its queue: connectors that found it full retry. */
static void connectors_ready(sy__pipeline_t *p)
{
    if (!p->nupstream) return;
    if (!atomic_exchange_explicit(&p->conn_waiting, false, memory_order_acq_rel)) return;
    for (size_t i = 0; i < p->nupstream; i++)
        sy__exporter_ready(p->upstream[i]);
}

/* Whether pipeline p can take one more batch now. A full one is told that a
 * connector waits, and checked once more: it may have emptied in between. */
static bool connector_room(sy__pipeline_t *p)
{
    /* A connector's timer may fire while the engine still starts the pipelines. */
    if (!atomic_load_explicit(&p->accepting, memory_order_acquire)) return false;
    if (!queue_full(&p->in, p->in_limit, &p->in_items) &&
        !atomic_load_explicit(&p->refusing, memory_order_relaxed))
        return true;
    atomic_store_explicit(&p->conn_waiting, true, memory_order_release);
    return !queue_full(&p->in, p->in_limit, &p->in_items) &&
           !atomic_load_explicit(&p->refusing, memory_order_relaxed);
}

int sy__connector_emit(sy_instance_t *inst, sy_batch_t *batch, const char *const *pipelines,
                       size_t n)
{
    sy_signal_t signal = sy__batch_signal(batch);
    /* Every name must be a pipeline of the batch's signal that the connector feeds. */
    for (size_t k = 0; pipelines && k < n; k++) {
        bool found = false;
        for (size_t i = 0; i < inst->recv.noutputs && !found; i++)
            found = pipelines[k] && inst->recv.outputs[i]->signal == signal &&
                    !strcmp(pipelines[k], inst->recv.outputs[i]->id);
        if (!found) {
            SY__LOG(SY_LOG_ERROR, inst->id,
                    "emit_to: \"%s\" is not a %s pipeline this connector feeds",
                    pipelines[k] ? pipelines[k] : "(null)", sy__signal_name(signal));
            return SY_EINVAL;
        }
    }
    size_t count_out = 0, last = 0;
    for (size_t i = 0; i < inst->recv.noutputs; i++) {
        sy__pipeline_t *p = inst->recv.outputs[i];
        if (p->signal != signal || !output_wanted(pipelines, n, p)) continue;
        if (!connector_room(p)) return SY_EAGAIN;
        count_out++;
        last = i;
    }
    if (count_out == 0) return pipelines ? SY_EINVAL : SY_ENOTSUP;
    uint64_t items = sy__batch_items(batch);
    int rc = push_outputs(inst, batch, pipelines, n, last);
    if (rc == SY_OK) count(inst->metrics[sy__signal_index(signal)].emitted, items);
    return rc;
}

size_t sy__connector_pipelines(sy_instance_t *inst, sy_signal_t signal, const char **ids,
                               size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < inst->recv.noutputs; i++) {
        if (inst->recv.outputs[i]->signal != signal) continue;
        if (ids && n < max) ids[n] = inst->recv.outputs[i]->id;
        n++;
    }
    return n;
}
