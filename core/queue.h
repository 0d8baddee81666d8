/*
 * Bounded lock-free queues of `void *` items: the only place where threads meet.
 *
 * Two rings live here, both with a power-of-two capacity fixed at init time and
 * no allocation, lock or system call on the push/pop paths:
 *
 * - sy__spsc_t joins one producer thread to one consumer thread. Each side keeps
 *   a private copy of the other side's index and reads the shared one only when
 *   that copy says the ring looks full (producer) or empty (consumer), so in the
 *   steady state a burst costs one release store and no cache-line transfer of
 *   the other side's index.
 * - sy__mpmc_t is Dmitry Vyukov's bounded MPMC ring: every cell carries a
 *   sequence number that says whose turn it is, and producers (consumers) claim
 *   cells by a compare-and-swap on the enqueue (dequeue) position.
 *
 * An MPMC ring can also carry a weight with each item (sy__mpmc_push_weighted):
 * the ring adds it to its own total and to a process-wide one when the item goes
 * in, and takes off exactly that weight when the item comes out, whatever has
 * happened to the item meanwhile. The runtime weighs batches in bytes, which is
 * how every core queue, and all of them together, are bounded in memory.
 *
 * Bursts move as many items as they can and return how many moved; a short
 * count is the back-pressure signal (ring full on push, empty on pop), so a
 * caller never needs a second query. Items are opaque: the queue never reads,
 * frees or dereferences them, and a NULL item is as valid as any other. On
 * destroy, items still in the ring are forgotten, so an owner drains it first.
 *
 * Alignment contract: both structs are aligned to SY_QUEUE_CACHE_LINE so that
 * the hot indices sit on separate cache lines. Static and automatic storage get
 * that for free; a heap-allocated queue (or a struct embedding one) must come
 * from aligned_alloc() or posix_memalign(), since malloc() only guarantees 16.
 */
#ifndef SY_CORE_QUEUE_H
#define SY_CORE_QUEUE_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The destructive-interference size on x86-64 and most arm64 parts. */
#define SY_QUEUE_CACHE_LINE 64

/*
 * Single-producer single-consumer ring. Fields are private. `head` and `tail`
 * are free-running counters (they are never masked, only the slot index is), so
 * `tail - head` is the fill level even after they wrap around SIZE_MAX.
 *
 * Threads: at any moment at most one thread may push and at most one may pop.
 * The roles may move to other threads only across some other happens-before
 * edge (a join, a mutex, a handoff through another queue).
 */
typedef struct sy__spsc_s {
    /* Read-only after init, shared by both sides. */
    void **slots;
    size_t mask;

    /* Producer's line: `tail` is written by the producer and read by the
     * consumer; `head_cache` is the producer's private copy of `head`. */
    alignas(SY_QUEUE_CACHE_LINE) _Atomic size_t tail;
    size_t head_cache;

    /* Consumer's line: `head` is written by the consumer and read by the
     * producer; `tail_cache` is the consumer's private copy of `tail`. */
    alignas(SY_QUEUE_CACHE_LINE) _Atomic size_t head;
    size_t tail_cache;
} sy__spsc_t;

/* One MPMC cell. `seq` equal to the position means "free for the producer of
 * that position", position + 1 means "full, for the consumer of that position". */
typedef struct sy__mpmc_cell_s {
    _Atomic size_t seq;
    void *item;
    size_t weight; /* written and read with `item`, under the same seq edges */
} sy__mpmc_cell_t;

/*
 * Multi-producer multi-consumer ring (Vyukov). Fields are private. Any number
 * of threads may push and pop concurrently.
 *
 * Guarantees: every pushed item is popped exactly once; two items pushed by the
 * same thread and popped by the same thread are popped in push order. There is
 * no FIFO order between different producers, nor across consumers.
 *
 * Caveat: a push can report "full" (a pop "empty") while a thread that has
 * claimed the cell it needs is still between its claim and its release, i.e.
 * a slow peer makes the ring look full or empty for a moment. Callers treat a
 * short burst as "try again later", never as a permanent state.
 */
typedef struct sy__mpmc_s {
    /* Read-only after init. */
    sy__mpmc_cell_t *cells;
    size_t mask;

    /* Next position to claim for a push, contended among producers. */
    alignas(SY_QUEUE_CACHE_LINE) _Atomic size_t enqueue_pos;

    /* Next position to claim for a pop, contended among consumers. */
    alignas(SY_QUEUE_CACHE_LINE) _Atomic size_t dequeue_pos;

    /* The weights of the items in the ring (claimed cells included): added before
     * a weighted push publishes its item, taken off after a pop has read it. */
    alignas(SY_QUEUE_CACHE_LINE) _Atomic int64_t weight;
} sy__mpmc_t;

/*
 * Initializes an SPSC ring for at least `capacity` items: the capacity is
 * rounded up to a power of two. Returns 0, or -1 if `capacity` is 0 or too
 * large, or the slot array cannot be allocated (q is then left unusable, and
 * sy__spsc_destroy() on it is a no-op).
 */
int sy__spsc_init(sy__spsc_t *q, size_t capacity);

/* Frees the slot array. No thread may use the queue any more; items still in
 * it are not freed (the queue does not own them). */
void sy__spsc_destroy(sy__spsc_t *q);

/* Producer only. Pushes items[0..n) in order until the ring is full; returns
 * how many were pushed (0..n), always a prefix of `items`. */
unsigned sy__spsc_push_burst(sy__spsc_t *q, void *const *items, unsigned n);

/* Consumer only. Pops up to `n` items into items[0..) in FIFO order; returns how
 * many were popped (0 when empty). */
unsigned sy__spsc_pop_burst(sy__spsc_t *q, void **items, unsigned n);

/* Any thread. The fill level at some recent instant, in 0..capacity; exact only
 * when neither side is running. Meant for metrics and heuristics. */
size_t sy__spsc_size(const sy__spsc_t *q);

/* Any thread. The rounded-up capacity. */
size_t sy__spsc_capacity(const sy__spsc_t *q);

/*
 * Initializes an MPMC ring for at least `capacity` items: the capacity is
 * rounded up to a power of two, and to at least 2 (with a single cell, "full
 * in this lap" and "free in the next lap" would carry the same sequence
 * number). Returns 0, or -1 as sy__spsc_init().
 */
int sy__mpmc_init(sy__mpmc_t *q, size_t capacity);

/* As sy__spsc_destroy(); the weight of items left in it leaves the process-wide
 * total with them. */
void sy__mpmc_destroy(sy__mpmc_t *q);

/* Any thread. Pushes items[0..n) in order until the ring is (or looks) full;
 * returns how many were pushed, always a prefix of `items`. The items of one
 * burst may interleave with other producers' items. */
unsigned sy__mpmc_push_burst(sy__mpmc_t *q, void *const *items, unsigned n);

/* Any thread. Pops up to `n` items into items[0..); returns how many. */
unsigned sy__mpmc_pop_burst(sy__mpmc_t *q, void **items, unsigned n);

/* Any thread. As sy__spsc_size(). */
size_t sy__mpmc_size(const sy__mpmc_t *q);

/* Any thread. The rounded-up capacity. */
size_t sy__mpmc_capacity(const sy__mpmc_t *q);

/*
 * Any thread. Pushes one item carrying `weight` (at most INT64_MAX): added to
 * the ring's weight and to the process-wide sy__queue_weight_total() before the
 * item becomes visible, so that the pop that takes it off (any pop call) can
 * never drive either below zero. False when the ring is (or looks) full; the
 * weight is then taken back.
 */
bool sy__mpmc_push_weighted(sy__mpmc_t *q, void *item, size_t weight);

/*
 * Any thread. The total weight of the items in q at some recent instant
 * (sy__mpmc_push() items weigh 0). Relaxed, like sy__mpmc_size(): a heuristic
 * for admission, exact only when no thread is pushing or popping.
 */
int64_t sy__mpmc_weight(const sy__mpmc_t *q);

/* Any thread. The weight of the items of every MPMC ring of the process, as
 * sy__mpmc_weight(). */
int64_t sy__queue_weight_total(void);

/* Any thread. Pushes one item; false when the ring is (or looks) full. */
static inline bool sy__mpmc_push(sy__mpmc_t *q, void *item)
{
    return sy__mpmc_push_burst(q, &item, 1) == 1;
}

/* Any thread. Pops one item into *item; false when the ring is (or looks)
 * empty, and *item is then left untouched. */
static inline bool sy__mpmc_pop(sy__mpmc_t *q, void **item)
{
    return sy__mpmc_pop_burst(q, item, 1) == 1;
}

#endif /* SY_CORE_QUEUE_H */
