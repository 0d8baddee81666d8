/*
 * byte_budget.c - see byte_budget.h.
 */
#include "byte_budget.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#define SYC_BUDGET_TRIM_PEAK (8u * 1024u * 1024u)
#define SYC_BUDGET_TRIM_MS   1000u

bool syc_byte_budget_take(syc_byte_budget_t *b, size_t n)
{
    size_t cap = b->limit;
    if (cap && n > SYC_BUDGET_SMALL) cap -= cap / 8; /* the last eighth is for small ones */
    if (cap && (n > cap || b->used > cap - n)) return false;
    b->used += n;
    if (b->used > b->peak) b->peak = b->used;
    return true;
}

void syc_byte_budget_give(syc_byte_budget_t *b, size_t n, uint64_t now_ms)
{
    b->used = n < b->used ? b->used - n : 0;
    if (b->peak < SYC_BUDGET_TRIM_PEAK || b->used >= b->peak / 4) return;
    if (now_ms - b->trimmed_at_ms < SYC_BUDGET_TRIM_MS) return;
    b->trimmed_at_ms = now_ms;
    b->peak = b->used;
#if defined(__GLIBC__)
    /* Large request buffers were just freed: hand the heap's free pages back, so
     * that the process's RSS follows its load down after a burst. */
    malloc_trim(0);
#endif
}
