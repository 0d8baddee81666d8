/*
 * diag.c - the list of configuration errors and warnings.
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

/* Formats "where: [warning: ]message" and appends it. Returns false when the
 * message could not be stored (bound reached or out of memory). */
static bool diag_vappend(sy__diag_t *d, const sy_cfg_node_t *at, const char *prefix,
                         const char *fmt, va_list ap)
{
    char *body = NULL, *line = NULL;

    if (d->count >= SY__DIAG_MAX) return false;
    if (d->count == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        char **n = realloc(d->msgs, ncap * sizeof(*n));
        if (!n) return false;
        d->msgs = n;
        d->cap = ncap;
    }
    if (vasprintf(&body, fmt, ap) < 0) return false;
    int rc = at ? asprintf(&line, "%s: %s%s", at->where, prefix, body)
                : asprintf(&line, "%s%s", prefix, body);
    free(body);
    if (rc < 0) return false;
    d->msgs[d->count++] = line;
    return true;
}

void sy__diag_add(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vappend(d, at, "", fmt, ap);
    va_end(ap);
    d->errors++;
}

void sy__diag_warn(sy__diag_t *d, const sy_cfg_node_t *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (diag_vappend(d, at, "warning: ", fmt, ap)) d->warnings++;
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
    if (d->errors + d->warnings > d->count)
        fprintf(out, "(%zu more messages not shown)\n", d->errors + d->warnings - d->count);
}
