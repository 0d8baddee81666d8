/*
 * diag.h - a list of configuration errors and warnings.
 *
 * Every message is one line, "file:line:col: text", so that an editor can jump to
 * the node at fault. Warnings are stored in the same list with the prefix
 * "warning: " after the position, and counted in `warnings`; everything else is an
 * error. The list owns its strings. Not thread-safe: one list belongs to one
 * configuration load, on the main thread.
 */
#ifndef SY_CORE_DIAG_H
#define SY_CORE_DIAG_H

#include <stddef.h>
#include <stdio.h>

#include <switchyard/plugin.h>

typedef struct sy__diag_s {
    char **msgs;     /* owned, one line each, no trailing newline */
    size_t count;    /* messages in msgs */
    size_t cap;      /* allocated slots */
    size_t warnings; /* how many of them are warnings */
    size_t errors;   /* how many errors were added (including any dropped) */
} sy__diag_t;

/* The most messages one list keeps; later ones are counted but dropped, so that a
 * pathological file cannot make the report itself unbounded. */
#define SY__DIAG_MAX 1000

void sy__diag_init(sy__diag_t *d);
void sy__diag_free(sy__diag_t *d);

/* Appends an error "file:line:col: <message>" with the position of `at` (no
 * prefix when `at` is NULL). Out of memory drops the message silently, but the
 * error is still counted, so sy__diag_errors() stays truthful. */
void sy__diag_add(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends a warning "file:line:col: warning: <message>". */
void sy__diag_warn(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The number of errors (messages that are not warnings). */
size_t sy__diag_errors(const sy__diag_t *d);

/* Writes every message, one line each. */
void sy__diag_print(const sy__diag_t *d, FILE *out);

#endif /* SY_CORE_DIAG_H */
