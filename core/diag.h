/*
 * diag.h - a list of configuration errors and warnings, and the one formatter
 * for them.
 *
 * Every message is one line, "file:line:col: text", so that an editor can jump to
 * the node at fault; "file: text" when only the file is known (it cannot be read),
 * and "text" when nothing is. Warnings are stored in the same list with the
 * prefix "warning: " after the position, and counted in `warnings`; everything
 * else is an error. Every configuration diagnostic in the core is made by
 * sy__diag_vreport(), and node positions (sy__cfg_where) by sy__diag_where(), so
 * the shape is written down once. The list owns its strings. Not thread-safe: one
 * list belongs to one configuration load, on the main thread.
 */
#ifndef SY_CORE_DIAG_H
#define SY_CORE_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <switchyard/plugin.h>

typedef struct sy__diag_s {
    char **msgs;     /* owned, one line each, no trailing newline */
    size_t count;    /* messages in msgs */
    size_t cap;      /* allocated slots */
    size_t warnings; /* how many of them are warnings */
    size_t errors;   /* how many errors were added (including any dropped) */
    size_t lost;     /* messages not stored for lack of memory (also counted above) */
} sy__diag_t;

/* The most messages one list keeps; later ones are counted but dropped, so that a
 * pathological file cannot make the report itself unbounded. */
#define SY__DIAG_MAX 1000

void sy__diag_init(sy__diag_t *d);
void sy__diag_free(sy__diag_t *d);

/*
 * The formatter every diagnostic goes through: appends "file:line:col: " (or
 * "file: " when line is 0, or nothing when file is NULL), "warning: " for a
 * warning, then the message. Out of memory drops the message, but it is still
 * counted (in `errors` for an error, and in `lost`), so sy__diag_errors() stays
 * truthful and sy__diag_print() can say that something was lost.
 */
void sy__diag_vreport(sy__diag_t *d, bool warning, const char *file, int line, int col,
                      const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* An error at file:line:col (line 0: the file as a whole; file NULL: no
 * position), for errors that have a position but no node (libyaml's marks, a
 * file that cannot be read). */
void sy__diag_add_at(sy__diag_t *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Appends an error "file:line:col: <message>" with the position of `at` (no
 * position when `at` is NULL). */
void sy__diag_add(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* sy__diag_add() with a va_list, for callers that wrap it. */
void sy__diag_vadd(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Appends a warning "file:line:col: warning: <message>". */
void sy__diag_warn(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "file:line:col", the position of a node as every diagnostic shows it; NULL on
 * out of memory. The caller frees it. */
char *sy__diag_where(const char *file, int line, int col);

/* The number of errors (messages that are not warnings). */
size_t sy__diag_errors(const sy__diag_t *d);

/* Writes every message, one line each, then a line for any that were dropped
 * (over SY__DIAG_MAX, or for lack of memory). */
void sy__diag_print(const sy__diag_t *d, FILE *out);

#endif /* SY_CORE_DIAG_H */
