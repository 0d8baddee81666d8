/*
 * loki_out.h - OTLP log records, read through the view (docs/view.md), as Loki
 * streams (loki_out.c: labels, lines, tenants, as the collector's lokiexporter and
 * pkg/translator/loki do), and those streams written as a logproto.PushRequest or
 * as Loki's JSON push body (loki_write.c).
 *
 * Everything a body needs lives in one lk_push_t: the label strings and lines in
 * its text buffer (by offset), the streams and entries in malloc'ed arrays.
 */
#ifndef SY_LOKI_OUT_H
#define SY_LOKI_OUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "attr_actions.h" /* syc_buf_t */

/* Which default labels are set (default_labels_enabled). */
typedef struct lk_defaults_s {
    bool exporter, job, instance, level;
} lk_defaults_t;

typedef struct lk_entry_s {
    int64_t ts_ns;
    size_t seq; /* arrival order: ties in time keep it */
    size_t line_off, line_len;
} lk_entry_t;

typedef struct lk_stream_s {
    uint64_t hash;                   /* of the labels string */
    size_t labels_off, labels_len;   /* {a="b", c="d"} */
    size_t jlabels_off, jlabels_len; /* {"a":"b","c":"d"} */
    lk_entry_t *entries;
    size_t n, cap;
} lk_stream_t;

typedef struct lk_push_s {
    syc_buf_t text; /* label strings and lines */
    lk_stream_t *streams;
    size_t n, cap;
    size_t *index; /* open addressing over streams by hash: slot -> stream + 1 */
    size_t index_cap;
    size_t entries;
    const char *tenant; /* the first record's tenant (lk_tenant), into the batch */
    size_t tenant_len;
    uint64_t dropped;      /* records left out: an unknown loki.format, no label */
    char dropped_why[128]; /* the first reason */
} lk_push_t;

/*
 * Translates every log record of `batch` into `out` (zeroed by the caller):
 * labels from the default labels and the loki.*.labels hints, the line as the
 * loki.format hint says, entries grouped by label set (in order of first
 * appearance) and sorted by time within each stream. Returns 0, SY_ENOMEM, or
 * SY_EINVAL when the batch cannot be read.
 */
int lk_translate(const sy_host_api_t *api, sy_batch_t *batch, const lk_defaults_t *defaults,
                 lk_push_t *out);

void lk_push_free(lk_push_t *p);

/*
 * The tenant of one record (the loki.tenant hint: the resource's, else the
 * record's, names an attribute looked up in the resource, then in the record;
 * only a string counts). *tenant points into the batch; len 0: none.
 */
void lk_tenant(const sy_host_api_t *api, sy_view_node_t *resource, sy_view_node_t *record,
               const char **tenant, size_t *len);

/* syc_buf_put() with the common case (room left) inline: the lines are made of
 * many short appends. Returns 0 or SY_ENOMEM. */
static inline int lk_put(syc_buf_t *b, const void *p, size_t n)
{
    if (n <= b->cap - b->len) {
        if (n) memcpy(b->p + b->len, p, n);
        b->len += n;
        return SY_OK;
    }
    return syc_buf_put(b, p, n);
}

/* The two bodies (uncompressed). Return 0 or SY_ENOMEM. */
int lk_write_proto(const lk_push_t *p, syc_buf_t *b);
int lk_write_json(const lk_push_t *p, syc_buf_t *b);

/* A JSON string literal of s[0, len), quotes included, escaped as Go's
 * encoding/json does (<, >, & as \u003c..., invalid UTF-8 as \ufffd). */
int lk_json_str(syc_buf_t *b, const char *s, size_t len);

#endif
