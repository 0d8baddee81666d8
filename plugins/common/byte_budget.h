/*
 * byte_budget.h - a count of request bytes held by a server (HTTP bodies, gRPC
 * messages), bounded so that clients cannot make it buffer more than configured.
 *
 * A request reserves its bytes from its first byte (by the length it announces:
 * Content-Length, the gRPC length prefix) and gives them back once its memory is
 * freed or handed on. The last eighth of the budget is kept for small requests
 * (SYC_BUDGET_SMALL bytes or fewer), so that a few clients holding large half-sent
 * requests cannot lock out everyone else's ordinary exports.
 *
 * Not thread-safe: one budget belongs to one loop thread.
 */
#ifndef SY_BYTE_BUDGET_H
#define SY_BYTE_BUDGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Requests of at most this many bytes may use the reserved last eighth. */
#define SYC_BUDGET_SMALL (64u * 1024u)

typedef struct syc_byte_budget_s {
    size_t limit; /* 0: unbounded (still counted) */
    size_t used;
    size_t peak;            /* highest `used` since memory was last trimmed */
    uint64_t trimmed_at_ms; /* when it was */
} syc_byte_budget_t;

/* True when `n` more bytes fit (and reserves them); false leaves the budget as is. */
bool syc_byte_budget_take(syc_byte_budget_t *b, size_t n);

/*
 * Gives back `n` bytes. After a burst (a peak of 8 MiB or more) that has mostly
 * ended (less than a quarter of the peak in use) it returns freed heap memory to
 * the operating system (malloc_trim on glibc), at most once a second; `now_ms` is
 * the loop's clock.
 */
void syc_byte_budget_give(syc_byte_budget_t *b, size_t n, uint64_t now_ms);

#endif
