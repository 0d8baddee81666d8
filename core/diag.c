/*
 * diag.c - the list of configuration errors and warnings, and the one place
 * their text ("file:line:col: [warning: ]message") is formatted.
 */
#include "diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

void sy__diag_init(sy__diag_t *d)
{
    memset(d, 0, sizeof(*d));
}

void sy__diag_free(sy__diag_t *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->msgs[i]);
    free(d->msgs);
    memset(d, 0, sizeof(*d));
}

char *sy__diag_where(const char *file, int line, int col)
{
    char *where = NULL;
    return asprintf(&where, "%s:%d:%d", file, line, col) < 0 ? NULL : where;
}

/* Formats the line and appends it. Returns false when the message could not be
 * stored: the bound was reached (*nomem false) or memory ran out (*nomem true). */
static bool diag_vappend(sy__diag_t *d, const char *file, int line, int col, const char *prefix,
                         const char *fmt, va_list ap, bool *nomem)
{
    char *body = NULL, *text = NULL;
    int rc;

    *nomem = false;
    if (d->count >= SY__DIAG_MAX) return false;
    *nomem = true;
    if (d->count == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        char **n = realloc(d->msgs, ncap * sizeof(*n));
        if (!n) return false;
        d->msgs = n;
        d->cap = ncap;
    }
    if (vasprintf(&body, fmt, ap) < 0) return false;
    if (!file)
        rc = asprintf(&text, "%s%s", prefix, body);
    else if (line <= 0)
        rc = asprintf(&text, "%s: %s%s", file, prefix, body);
    else
        rc = asprintf(&text, "%s:%d:%d: %s%s", file, line, col, prefix, body);
    free(body);
    if (rc < 0) return false;
    d->msgs[d->count++] = text;
    *nomem = false;
    return true;
}

void sy__diag_vreport(sy__diag_t *d, bool warning, const char *file, int line, int col,
                      const char *fmt, va_list ap)
{
    bool nomem;
    bool stored = diag_vappend(d, file, line, col, warning ? "warning: " : "", fmt, ap, &nomem);
    if (nomem) d->lost++;
    if (!warning)
        d->errors++;
    else if (stored)
        d->warnings++;
}

void sy__diag_add_at(sy__diag_t *d, const char *file, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sy__diag_vreport(d, false, file, line, col, fmt, ap);
    va_end(ap);
}

void sy__diag_vadd(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, va_list ap)
{
    sy__diag_vreport(d, false, at ? at->file : NULL, at ? at->line : 0, at ? at->col : 0, fmt, ap);
}

void sy__diag_add(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sy__diag_vadd(d, at, fmt, ap);
    va_end(ap);
}

void sy__diag_warn(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sy__diag_vreport(d, true, at ? at->file : NULL, at ? at->line : 0, at ? at->col : 0, fmt, ap);
    va_end(ap);
}

size_t sy__diag_errors(const sy__diag_t *d)
{
    return d->errors;
}

void sy__diag_print(const sy__diag_t *d, FILE *out)
{
    for (size_t i = 0; i < d->count; i++)
        fprintf(out, "%s\n", d->msgs[i]);
    if (d->lost)
        fprintf(out, "out of memory: %zu configuration message%s could not be stored\n", d->lost,
                d->lost == 1 ? "" : "s");
    if (d->errors + d->warnings > d->count)
        fprintf(out, "(%zu more messages not shown)\n", d->errors + d->warnings - d->count);
}
