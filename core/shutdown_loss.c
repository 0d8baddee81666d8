/*
 * shutdown_loss.c - the count of items exporters gave up while the router was
 * stopping (see engine.h). One process-wide counter: a process runs one router.
 */
#include <stdatomic.h>

#include "engine.h"

/* Relaxed: the counter orders nothing; it is read after every exporter thread
 * has been joined, and the join orders the adds before the read. */
static _Atomic uint64_t shutdown_loss;

void sy__shutdown_loss_add(uint64_t items)
{
    atomic_fetch_add_explicit(&shutdown_loss, items, memory_order_relaxed);
}

uint64_t sy__shutdown_loss(void)
{
    return atomic_load_explicit(&shutdown_loss, memory_order_relaxed);
}

void sy__shutdown_loss_reset(void)
{
    atomic_store_explicit(&shutdown_loss, 0, memory_order_relaxed);
}
