/*
 * telemetry_render.c - the registry in the Prometheus text format 0.0.4: # HELP
 * and # TYPE per family, one line per series, numbers written so that they read
 * back exactly.
 */
#include "telemetry_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sy__buf_s {
    char *data;
    size_t len, cap;
    bool failed;
} sy__buf_t;

static void sy__buf_put(sy__buf_t *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void sy__buf_str(sy__buf_t *b, const char *s)
{
    sy__buf_put(b, s, strlen(s));
}

/* HELP text escapes '\' and newline (and nothing else) in format 0.0.4. */
static void sy__buf_help(sy__buf_t *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            sy__buf_put(b, "\\\\", 2);
        else if (*s == '\n')
            sy__buf_put(b, "\\n", 2);
        else
            sy__buf_put(b, s, 1);
    }
}

/* Writes a double as the shortest decimal that reads back the same. */
static void sy__format_double(char *out, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(out, cap, "%.*g", prec, v);
        if (strtod(out, NULL) == v) return;
    }
}

static void sy__render_sample(sy__buf_t *b, const sy__family_t *f, const sy_metric_t *m)
{
    char num[64];
    sy__buf_str(b, f->name);
    if (m->labels[0] != '\0') {
        sy__buf_put(b, "{", 1);
        sy__buf_str(b, m->labels);
        sy__buf_put(b, "}", 1);
    }
    if (m->dfn != NULL)
        sy__format_double(num, sizeof num, m->dfn(m->arg));
    else
        snprintf(num, sizeof num, "%" PRId64, sy__metric_value(m));
    sy__buf_put(b, " ", 1);
    sy__buf_str(b, num);
    sy__buf_put(b, "\n", 1);
}

char *sy__metrics_render(size_t *len)
{
    sy__buf_t b = {0};
    sy__buf_put(&b, "", 0); /* an empty registry renders as "" rather than NULL */
    pthread_mutex_lock(&sy__registry_mu);
    for (const sy__family_t *f = sy__families; f != NULL; f = f->next) {
        sy__buf_str(&b, "# HELP ");
        sy__buf_str(&b, f->name);
        sy__buf_put(&b, " ", 1);
        sy__buf_help(&b, f->help);
        sy__buf_str(&b, "\n# TYPE ");
        sy__buf_str(&b, f->name);
        sy__buf_str(&b, f->type == SY_METRIC_COUNTER ? " counter\n" : " gauge\n");
        for (const sy_metric_t *m = f->series; m != NULL; m = m->next)
            sy__render_sample(&b, f, m);
    }
    pthread_mutex_unlock(&sy__registry_mu);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    if (len != NULL) *len = b.len;
    return b.data;
}
