/*
 * Bounded lock-free queues: see queue.h for the contracts.
 *
 * Memory-ordering map. Every item moves through exactly one release/acquire
 * pair on the way in and one on the way out:
 *
 *   SPSC  producer: write slots, then release-store `tail`
 *         consumer: acquire-load `tail`, read slots, then release-store `head`
 *         producer: acquire-load `head` before overwriting the freed slots
 *
 *   MPMC  producer: acquire-load cell.seq == pos, claim pos by CAS (relaxed),
 *                   write cell.item, then release-store cell.seq = pos + 1
 *         consumer: acquire-load cell.seq == pos + 1, claim by CAS (relaxed),
 *                   read cell.item, then release-store cell.seq = pos + capacity
 *
 * The position counters of the MPMC ring carry no data, only the right to a
 * cell: the atomicity of the CAS makes a claim exclusive, and the data edge is
 * always the cell's own sequence number, so the CAS can be relaxed.
 *
 * Weights (MPMC only) carry no data either: the cell's weight travels with its
 * item under the cell's edges, and the ring's and the process's totals are
 * relaxed counters. They never go below zero because a push adds before its
 * release store of cell.seq and the pop that takes the item off subtracts after
 * its acquire load of it, so the add happens before the subtract and precedes
 * it in the counter's modification order.
 */
#include "queue.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

/* The weight held by every MPMC ring of the process: see sy__queue_weight_total(). */
static _Atomic int64_t sy__queue_weight_all;

/*
 * Rounds a requested capacity up to a power of two no smaller than `min`, and
 * returns the byte size of the element array rounded up to whole cache lines
 * (aligned_alloc() wants a multiple of the alignment). Returns 0 if the request
 * is 0 or so large that positions could no longer be compared as signed
 * differences (which the MPMC ring does).
 */
static size_t sy__queue_round(size_t requested, size_t min, size_t elem_size, size_t *capacity)
{
    size_t cap = min;

    if (requested == 0 || requested > (size_t)PTRDIFF_MAX / 2 / elem_size) return 0;
    while (cap < requested)
        cap <<= 1;
    *capacity = cap;
    return (cap * elem_size + SY_QUEUE_CACHE_LINE - 1) & ~(size_t)(SY_QUEUE_CACHE_LINE - 1);
}

/* ------------------------------------------------------------------------ */
/* SPSC                                                                     */
/* ------------------------------------------------------------------------ */

int sy__spsc_init(sy__spsc_t *q, size_t capacity)
{
    size_t cap = 0;
    size_t bytes = sy__queue_round(capacity, 1, sizeof(void *), &cap);

    /* A misaligned queue still works, but UBSan flags every access and the
     * indices may share a line; catch it where the queue is made. */
    assert(((uintptr_t)q & (SY_QUEUE_CACHE_LINE - 1)) == 0);
    q->slots = NULL;
    q->mask = 0;
    if (bytes == 0) return -1;
    /* Slots on their own lines, so that the first and last do not share one
     * with whatever malloc puts next to them. */
    q->slots = aligned_alloc(SY_QUEUE_CACHE_LINE, bytes);
    if (q->slots == NULL) return -1;
    q->mask = cap - 1;
    /* Plain initialization: the threads that use the queue are started (or
     * handed `q`) after this returns, which orders these stores before them. */
    atomic_init(&q->tail, 0);
    atomic_init(&q->head, 0);
    q->head_cache = 0;
    q->tail_cache = 0;
    return 0;
}

void sy__spsc_destroy(sy__spsc_t *q)
{
    free(q->slots);
    q->slots = NULL;
    q->mask = 0;
}

unsigned sy__spsc_push_burst(sy__spsc_t *q, void *const *items, unsigned n)
{
    /* Relaxed: only this thread ever writes `tail`. */
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t cap = q->mask + 1;
    size_t room = cap - (tail - q->head_cache);

    if (room < n) {
        /* The cached head is stale only in the safe direction (the consumer
         * can only have freed more slots since), so refresh it only when it
         * says there is not enough room.
         * Acquire: pairs with the consumer's release store of `head` in
         * sy__spsc_pop_burst(), so its reads of the slots it freed happen
         * before our writes to them below. */
        q->head_cache = atomic_load_explicit(&q->head, memory_order_acquire);
        room = cap - (tail - q->head_cache);
        if (room < n) n = (unsigned)room;
    }
    if (n == 0) return 0;

    /* A masked index per item rather than two memcpy runs: bursts are short,
     * and a libc call per run costs more than the copy itself. */
    void **slots = q->slots;
    size_t mask = q->mask;
    for (unsigned i = 0; i < n; i++)
        slots[(tail + i) & mask] = items[i];

    /* Release: pairs with the consumer's acquire load of `tail` in
     * sy__spsc_pop_burst(), publishing the slot writes above together with
     * the new tail. */
    atomic_store_explicit(&q->tail, tail + n, memory_order_release);
    return n;
}

unsigned sy__spsc_pop_burst(sy__spsc_t *q, void **items, unsigned n)
{
    /* Relaxed: only this thread ever writes `head`. */
    size_t head = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t avail = q->tail_cache - head;

    if (avail < n) {
        /* Acquire: pairs with the producer's release store of `tail` in
         * sy__spsc_push_burst(), so the slot writes up to that tail are
         * visible to the reads below. */
        q->tail_cache = atomic_load_explicit(&q->tail, memory_order_acquire);
        avail = q->tail_cache - head;
        if (avail < n) n = (unsigned)avail;
    }
    if (n == 0) return 0;

    void **slots = q->slots;
    size_t mask = q->mask;
    for (unsigned i = 0; i < n; i++)
        items[i] = slots[(head + i) & mask];

    /* Release: pairs with the producer's acquire load of `head` in
     * sy__spsc_push_burst(): our slot reads above happen before it reuses
     * those slots. */
    atomic_store_explicit(&q->head, head + n, memory_order_release);
    return n;
}

size_t sy__spsc_size(const sy__spsc_t *q)
{
    /* Acquire on `head`: pairs with the consumer's release store of it, which
     * came after the consumer saw `tail` >= that head; so the `tail` we load
     * next is no older, and tail - head cannot go negative. It can exceed the
     * capacity when the two sides run between the loads, hence the clamp. */
    size_t head = atomic_load_explicit(&q->head, memory_order_acquire);
    size_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t used = tail - head;

    return used > q->mask + 1 ? q->mask + 1 : used;
}

size_t sy__spsc_capacity(const sy__spsc_t *q)
{
    return q->mask + 1;
}

/* ------------------------------------------------------------------------ */
/* MPMC                                                                     */
/* ------------------------------------------------------------------------ */

int sy__mpmc_init(sy__mpmc_t *q, size_t capacity)
{
    size_t cap = 0;
    size_t bytes = sy__queue_round(capacity, 2, sizeof(sy__mpmc_cell_t), &cap);

    assert(((uintptr_t)q & (SY_QUEUE_CACHE_LINE - 1)) == 0);
    q->cells = NULL;
    q->mask = 0;
    if (bytes == 0) return -1;
    q->cells = aligned_alloc(SY_QUEUE_CACHE_LINE, bytes);
    if (q->cells == NULL) return -1;
    q->mask = cap - 1;
    /* Cell i starts "free for the producer of position i". As for SPSC, these
     * plain initializations are ordered before any user by thread creation or
     * by whatever hands `q` to the other threads. */
    for (size_t i = 0; i < cap; i++) {
        atomic_init(&q->cells[i].seq, i);
        q->cells[i].item = NULL;
        q->cells[i].weight = 0;
    }
    atomic_init(&q->weight, 0);
    atomic_init(&q->enqueue_pos, 0);
    atomic_init(&q->dequeue_pos, 0);
    return 0;
}

void sy__mpmc_destroy(sy__mpmc_t *q)
{
    /* Items left in the ring are forgotten, and so is their weight. */
    if (q->cells)
        atomic_fetch_sub_explicit(&sy__queue_weight_all,
                                  atomic_load_explicit(&q->weight, memory_order_relaxed),
                                  memory_order_relaxed);
    free(q->cells);
    q->cells = NULL;
    q->mask = 0;
}

/*
 * Claims up to `want` consecutive positions from the counter `pos_p` (the
 * enqueue position when `lag` is 0, the dequeue position when `lag` is 1) and
 * returns how many, storing the first in *start; 0 means the ring is (or looks)
 * full for a producer, empty for a consumer.
 *
 * A cell at position p is ready for the caller when its sequence number is
 * p + lag. We count the ready cells from the current position and claim that
 * whole prefix with one CAS. That is safe because no one but the winner of the
 * CAS from `pos` can claim positions pos..pos+k-1, and the cells' states cannot
 * move on until the claimant releases them: a cell seen ready stays ready.
 */
static size_t sy__mpmc_claim(sy__mpmc_t *q, _Atomic size_t *pos_p, size_t lag, size_t want,
                             size_t *start)
{
    /* Relaxed: the position is only a ticket; data is ordered by cell.seq. */
    size_t pos = atomic_load_explicit(pos_p, memory_order_relaxed);

    if (want > q->mask + 1) want = q->mask + 1;
    for (;;) {
        size_t k = 0;
        ptrdiff_t dif = 0;

        while (k < want) {
            /* Acquire: for a producer, pairs with the release store of
             * cell.seq = p (one lap on) in sy__mpmc_pop_burst(), so the
             * previous consumer's read of cell.item happens before our write;
             * for a consumer, pairs with the release store of cell.seq = p + 1
             * in sy__mpmc_push_burst(), so the producer's write of cell.item
             * is visible to our read. */
            size_t seq =
                atomic_load_explicit(&q->cells[(pos + k) & q->mask].seq, memory_order_acquire);
            dif = (ptrdiff_t)(seq - (pos + k + lag));
            if (dif != 0) break;
            k++;
        }
        if (k > 0) {
            /* Relaxed on success and failure: the CAS decides ownership
             * only; on failure it reloads `pos` and we rescan from there. */
            if (atomic_compare_exchange_weak_explicit(pos_p, &pos, pos + k, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *start = pos;
                return k;
            }
        } else if (dif < 0) {
            /* The first cell is still a lap behind: for a producer it holds
             * an item not yet popped (full), for a consumer it has not been
             * filled yet (empty). */
            return 0;
        } else {
            /* The first cell is ahead: another thread claimed `pos` since we
             * loaded it. Catch up and retry. */
            pos = atomic_load_explicit(pos_p, memory_order_relaxed);
        }
    }
}

/* Pushes items[0..n) with weight[i] each (weight NULL: all 0); see
 * sy__mpmc_push_burst(). */
static unsigned sy__mpmc_push_run(sy__mpmc_t *q, void *const *items, const size_t *weight,
                                  unsigned n)
{
    unsigned done = 0;

    /* Claim in runs until all are in or the ring is full; a later run may
     * land after other producers' items, which the contract allows. */
    while (done < n) {
        size_t start = 0;
        size_t k = sy__mpmc_claim(q, &q->enqueue_pos, 0, n - done, &start);

        if (k == 0) break;
        for (size_t i = 0; i < k; i++) {
            sy__mpmc_cell_t *cell = &q->cells[(start + i) & q->mask];

            cell->item = items[done + i];
            cell->weight = weight ? weight[done + i] : 0;
            /* Release: pairs with the consumer's acquire load of cell.seq in
             * sy__mpmc_claim(), publishing the item written just above. */
            atomic_store_explicit(&cell->seq, start + i + 1, memory_order_release);
        }
        done += (unsigned)k;
    }
    return done;
}

unsigned sy__mpmc_push_burst(sy__mpmc_t *q, void *const *items, unsigned n)
{
    return sy__mpmc_push_run(q, items, NULL, n);
}

bool sy__mpmc_push_weighted(sy__mpmc_t *q, void *item, size_t weight)
{
    int64_t w = weight > (size_t)INT64_MAX ? INT64_MAX : (int64_t)weight;
    size_t carried = (size_t)w; /* what the pop takes off: exactly what was added */

    /* Relaxed: see the top of this file for why the counters cannot go below
     * zero; nothing else is ordered by them. */
    if (w) {
        atomic_fetch_add_explicit(&q->weight, w, memory_order_relaxed);
        atomic_fetch_add_explicit(&sy__queue_weight_all, w, memory_order_relaxed);
    }
    if (sy__mpmc_push_run(q, &item, &carried, 1) == 1) return true;
    if (w) {
        atomic_fetch_sub_explicit(&q->weight, w, memory_order_relaxed);
        atomic_fetch_sub_explicit(&sy__queue_weight_all, w, memory_order_relaxed);
    }
    return false;
}

unsigned sy__mpmc_pop_burst(sy__mpmc_t *q, void **items, unsigned n)
{
    unsigned done = 0;
    int64_t weight = 0;

    while (done < n) {
        size_t start = 0;
        size_t k = sy__mpmc_claim(q, &q->dequeue_pos, 1, n - done, &start);

        if (k == 0) break;
        for (size_t i = 0; i < k; i++) {
            sy__mpmc_cell_t *cell = &q->cells[(start + i) & q->mask];

            items[done + i] = cell->item;
            weight += (int64_t)cell->weight;
            /* Release: pairs with the acquire load of cell.seq by the producer
             * of the next lap in sy__mpmc_claim(): our read of the item happens
             * before its overwrite. The new value, position + capacity, is the
             * next lap's "free" mark. */
            atomic_store_explicit(&cell->seq, start + i + q->mask + 1, memory_order_release);
        }
        done += (unsigned)k;
    }
    if (weight) {
        /* Relaxed, after the acquire loads of the cells' seq: see the top. */
        atomic_fetch_sub_explicit(&q->weight, weight, memory_order_relaxed);
        atomic_fetch_sub_explicit(&sy__queue_weight_all, weight, memory_order_relaxed);
    }
    return done;
}

int64_t sy__mpmc_weight(const sy__mpmc_t *q)
{
    return atomic_load_explicit(&q->weight, memory_order_relaxed);
}

int64_t sy__queue_weight_total(void)
{
    return atomic_load_explicit(&sy__queue_weight_all, memory_order_relaxed);
}

size_t sy__mpmc_size(const sy__mpmc_t *q)
{
    /* Relaxed: the positions are claimed with relaxed CASes, so there is no
     * edge to acquire; the two loads may see the counters at different times
     * and the difference is clamped into 0..capacity. Claimed but not yet
     * published cells count as occupied. */
    size_t deq = atomic_load_explicit(&q->dequeue_pos, memory_order_relaxed);
    size_t enq = atomic_load_explicit(&q->enqueue_pos, memory_order_relaxed);
    ptrdiff_t used = (ptrdiff_t)(enq - deq);

    if (used < 0) return 0;
    return (size_t)used > q->mask + 1 ? q->mask + 1 : (size_t)used;
}

size_t sy__mpmc_capacity(const sy__mpmc_t *q)
{
    return q->mask + 1;
}
