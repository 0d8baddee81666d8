/*
 * loki_internal.h - what the loki exporter's translation files share (loki_out.c:
 * labels, streams, records; loki_value.c: values as text and JSON; loki_line.c:
 * the json and logfmt lines): the per-batch context and the writers. Internal to
 * the plugin; names lk__.
 */
#ifndef SY_LOKI_INTERNAL_H
#define SY_LOKI_INTERNAL_H

#include "loki_out.h"

#define HINT_ATTRIBUTES "loki.attribute.labels"
#define HINT_RESOURCES  "loki.resource.labels"
#define HINT_TENANT     "loki.tenant"
#define HINT_FORMAT     "loki.format"
#define MAX_DEPTH       32
#define MAX_NAMES       128 /* label names one hint may list */

/* One label before normalization: its attribute name and its value (text in the
 * context's scratch buffer). */
typedef struct label_s {
    const char *name;
    size_t nlen;
    size_t voff, vlen;
} label_t;

typedef struct ctx_s {
    const sy_host_api_t *api;
    const lk_defaults_t *defaults;
    lk_push_t *out;
    bool failed;
    syc_buf_t scratch; /* label values, then the labels strings of one record */
    label_t labels[MAX_NAMES * 3 + 8];
    size_t nlabels;
    /* the record being translated */
    sy_view_node_t *res, *rec;
    char names[8192]; /* label names made from non-string hint values */
    size_t names_used;
    unsigned lookups_left; /* get_attr's budget for one name */
    bool level_added;      /* a `level` attribute made from the severity number */
    const char *level;
} ctx_t;

typedef struct kv_s {
    sy_value_t k, v;
    size_t order;
} kv_t;

/* What a byte becomes in a quoted string: n bytes in e, or 0 to keep it. */
typedef size_t (*escape_fn)(unsigned char ch, char e[6]);

static inline bool str_is(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return len == n && (n == 0 || memcmp(s, lit, n) == 0);
}

static inline void put(ctx_t *c, syc_buf_t *b, const void *p, size_t n)
{
    if (lk_put(b, p, n) < 0) c->failed = true;
}

static inline void puts_(ctx_t *c, syc_buf_t *b, const char *s)
{
    put(c, b, s, strlen(s));
}

/* ---- loki_value.c ---- */

/* v as pcommon's AsString: scalars as syc_value_as_string, maps and arrays as JSON. */
void lk__put_as_string(ctx_t *c, syc_buf_t *b, const sy_value_t *v);
/* A scalar's text (syc_value_as_string). */
void lk__put_scalar_text(ctx_t *c, syc_buf_t *b, const sy_value_t *v);
/* A value as Go's json.Marshal writes pcommon's AsRaw() (maps with sorted keys). */
void lk__put_json_value(ctx_t *c, syc_buf_t *b, const sy_value_t *v, int depth);
/* lk_json_str(), failure noted in c. */
void lk__put_json_str(ctx_t *c, syc_buf_t *b, const char *s, size_t len);
/* kv[0, n) as a JSON object with sorted keys (sorts kv). */
void lk__put_json_object(ctx_t *c, syc_buf_t *b, kv_t *kv, size_t n, int depth);
/* s[0, len) with each byte that `esc` escapes replaced, in runs. */
void lk__put_escaped(ctx_t *c, syc_buf_t *b, const char *s, size_t len, escape_fn esc);
extern const char lk__hex_digits[];

/* ---- loki_line.c ---- */

/* The record's line (c->rec, c->res, the labels in c) in the json or logfmt format. */
void lk__line_json(ctx_t *c, syc_buf_t *b, sy_view_node_t *scope);
void lk__line_logfmt(ctx_t *c, syc_buf_t *b, sy_view_node_t *scope);

#endif
