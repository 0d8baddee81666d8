/*
 * ottl_parse.c - compiles OTTL conditions and statements into a tree in one arena
 * (recursive descent, one token of lookahead beyond the current one). Everything
 * that can be known before the data is checked here, so that a config with a bad
 * statement fails at load: which paths and enums the context has, which functions
 * exist, their argument count and kinds (literal, path, list), and each regex,
 * compiled once with PCRE2 (JIT when available).
 *
 * Precedence, lowest first: `or`, `and`, `not`, comparison. A boolean term is a
 * comparison, `true`/`false`, a converter returning a bool, or a parenthesized
 * condition. Errors name what was expected and the 1-based column (in
 * characters) of the token at fault; the first error wins.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "ottl_internal.h"

/* ---- arena ---- */

struct syc__ottl_chunk_s {
    syc__ottl_chunk_t *next;
    _Alignas(max_align_t) unsigned char data[];
};

#define ARENA_CHUNK 4096u

void *syc__ottl_arena_alloc(syc__ottl_arena_t *a, size_t size)
{
    size = (size + _Alignof(max_align_t) - 1) & ~(size_t)(_Alignof(max_align_t) - 1);
    if (!a->head || a->cap - a->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        syc__ottl_chunk_t *c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->next = a->head;
        a->head = c;
        a->used = 0;
        a->cap = cap;
    }
    void *p = a->head->data + a->used;
    a->used += size;
    memset(p, 0, size);
    return p;
}

void syc__ottl_arena_free(syc__ottl_arena_t *a)
{
    for (syc__ottl_chunk_t *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
    a->used = a->cap = 0;
}

/* ---- contexts, fields, paths, enums ---- */

static const char *const context_names[SYC_OTTL_CTX_COUNT_] = {
    "resource", "scope", "span", "spanevent", "metric", "datapoint", "log"};

const char *syc_ottl_context_name(syc_ottl_context_t ctx)
{
    return (unsigned)ctx < SYC_OTTL_CTX_COUNT_ ? context_names[ctx] : "?";
}

int syc_ottl_context_parse(const char *name, syc_ottl_context_t *out)
{
    for (int i = 0; i < SYC_OTTL_CTX_COUNT_; i++)
        if (strcmp(name, context_names[i]) == 0) {
            *out = (syc_ottl_context_t)i;
            return 0;
        }
    return -1;
}

#define R   (1u << SYC_OTTL_CTX_RESOURCE)
#define C   (1u << SYC_OTTL_CTX_SCOPE)
#define S   (1u << SYC_OTTL_CTX_SPAN)
#define E   (1u << SYC_OTTL_CTX_SPANEVENT)
#define M   (1u << SYC_OTTL_CTX_METRIC)
#define D   (1u << SYC_OTTL_CTX_DATAPOINT)
#define L   (1u << SYC_OTTL_CTX_LOG)
#define IT  (S | E | M | D | L) /* the contexts of an item below a scope */
#define ALL (R | C | IT)

/* Every spelling of a path, per context. A path written with its context's name
 * first (`span.name` in the span context) is also accepted. */
static const struct path_def {
    unsigned ctx_mask;
    const char *text;
    syc_ottl_field_t field;
    bool keyed; /* takes ["key"] / [0] */
} paths[] = {
    {IT | C, "resource.attributes", SYC_OTTL_F_RESOURCE_ATTRIBUTES, true},
    {IT | C, "resource.dropped_attributes_count", SYC_OTTL_F_RESOURCE_DROPPED_ATTRIBUTES_COUNT,
     false},
    {R, "attributes", SYC_OTTL_F_RESOURCE_ATTRIBUTES, true},
    {R, "dropped_attributes_count", SYC_OTTL_F_RESOURCE_DROPPED_ATTRIBUTES_COUNT, false},
    {IT, "instrumentation_scope.name", SYC_OTTL_F_SCOPE_NAME, false},
    {IT, "instrumentation_scope.version", SYC_OTTL_F_SCOPE_VERSION, false},
    {IT, "instrumentation_scope.attributes", SYC_OTTL_F_SCOPE_ATTRIBUTES, true},
    {IT, "instrumentation_scope.dropped_attributes_count",
     SYC_OTTL_F_SCOPE_DROPPED_ATTRIBUTES_COUNT, false},
    {C, "name", SYC_OTTL_F_SCOPE_NAME, false},
    {C, "version", SYC_OTTL_F_SCOPE_VERSION, false},
    {C, "attributes", SYC_OTTL_F_SCOPE_ATTRIBUTES, true},
    {C, "dropped_attributes_count", SYC_OTTL_F_SCOPE_DROPPED_ATTRIBUTES_COUNT, false},
    {S | E | D | L, "attributes", SYC_OTTL_F_ATTRIBUTES, true},
    {S | E | L, "dropped_attributes_count", SYC_OTTL_F_DROPPED_ATTRIBUTES_COUNT, false},
    {S | E, "name", SYC_OTTL_F_NAME, false},
    {S, "kind", SYC_OTTL_F_KIND, false},
    {S | L, "trace_id", SYC_OTTL_F_TRACE_ID, false},
    {S | L, "span_id", SYC_OTTL_F_SPAN_ID, false},
    {S, "parent_span_id", SYC_OTTL_F_PARENT_SPAN_ID, false},
    {S, "trace_state", SYC_OTTL_F_TRACE_STATE, false},
    {S, "status.code", SYC_OTTL_F_STATUS_CODE, false},
    {S, "status.message", SYC_OTTL_F_STATUS_MESSAGE, false},
    {S | D, "start_time_unix_nano", SYC_OTTL_F_START_TIME_UNIX_NANO, false},
    {S, "end_time_unix_nano", SYC_OTTL_F_END_TIME_UNIX_NANO, false},
    {E | D | L, "time_unix_nano", SYC_OTTL_F_TIME_UNIX_NANO, false},
    {L, "observed_time_unix_nano", SYC_OTTL_F_OBSERVED_TIME_UNIX_NANO, false},
    {S, "dropped_events_count", SYC_OTTL_F_DROPPED_EVENTS_COUNT, false},
    {S, "dropped_links_count", SYC_OTTL_F_DROPPED_LINKS_COUNT, false},
    {L, "severity_number", SYC_OTTL_F_SEVERITY_NUMBER, false},
    {L, "severity_text", SYC_OTTL_F_SEVERITY_TEXT, false},
    {L, "body", SYC_OTTL_F_BODY, true},
    {D | L, "flags", SYC_OTTL_F_FLAGS, false},
    {L, "event_name", SYC_OTTL_F_EVENT_NAME, false},
    {M, "name", SYC_OTTL_F_METRIC_NAME, false},
    {M, "description", SYC_OTTL_F_METRIC_DESCRIPTION, false},
    {M, "unit", SYC_OTTL_F_METRIC_UNIT, false},
    {M, "type", SYC_OTTL_F_METRIC_TYPE, false},
    {M, "aggregation_temporality", SYC_OTTL_F_METRIC_AGGREGATION_TEMPORALITY, false},
    {M, "is_monotonic", SYC_OTTL_F_METRIC_IS_MONOTONIC, false},
    {D, "metric.name", SYC_OTTL_F_METRIC_NAME, false},
    {D, "metric.description", SYC_OTTL_F_METRIC_DESCRIPTION, false},
    {D, "metric.unit", SYC_OTTL_F_METRIC_UNIT, false},
    {D, "metric.type", SYC_OTTL_F_METRIC_TYPE, false},
    {D, "metric.aggregation_temporality", SYC_OTTL_F_METRIC_AGGREGATION_TEMPORALITY, false},
    {D, "metric.is_monotonic", SYC_OTTL_F_METRIC_IS_MONOTONIC, false},
    {D, "value_int", SYC_OTTL_F_VALUE_INT, false},
    {D, "value_double", SYC_OTTL_F_VALUE_DOUBLE, false},
    {D, "count", SYC_OTTL_F_COUNT, false},
    {D, "sum", SYC_OTTL_F_SUM, false},
};

static const char *const field_names[SYC_OTTL_F_COUNT_] = {
    [SYC_OTTL_F_RESOURCE_ATTRIBUTES] = "resource.attributes",
    [SYC_OTTL_F_RESOURCE_DROPPED_ATTRIBUTES_COUNT] = "resource.dropped_attributes_count",
    [SYC_OTTL_F_SCOPE_NAME] = "instrumentation_scope.name",
    [SYC_OTTL_F_SCOPE_VERSION] = "instrumentation_scope.version",
    [SYC_OTTL_F_SCOPE_ATTRIBUTES] = "instrumentation_scope.attributes",
    [SYC_OTTL_F_SCOPE_DROPPED_ATTRIBUTES_COUNT] = "instrumentation_scope.dropped_attributes_count",
    [SYC_OTTL_F_ATTRIBUTES] = "attributes",
    [SYC_OTTL_F_DROPPED_ATTRIBUTES_COUNT] = "dropped_attributes_count",
    [SYC_OTTL_F_NAME] = "name",
    [SYC_OTTL_F_KIND] = "kind",
    [SYC_OTTL_F_TRACE_ID] = "trace_id",
    [SYC_OTTL_F_SPAN_ID] = "span_id",
    [SYC_OTTL_F_PARENT_SPAN_ID] = "parent_span_id",
    [SYC_OTTL_F_TRACE_STATE] = "trace_state",
    [SYC_OTTL_F_STATUS_CODE] = "status.code",
    [SYC_OTTL_F_STATUS_MESSAGE] = "status.message",
    [SYC_OTTL_F_START_TIME_UNIX_NANO] = "start_time_unix_nano",
    [SYC_OTTL_F_END_TIME_UNIX_NANO] = "end_time_unix_nano",
    [SYC_OTTL_F_TIME_UNIX_NANO] = "time_unix_nano",
    [SYC_OTTL_F_OBSERVED_TIME_UNIX_NANO] = "observed_time_unix_nano",
    [SYC_OTTL_F_DROPPED_EVENTS_COUNT] = "dropped_events_count",
    [SYC_OTTL_F_DROPPED_LINKS_COUNT] = "dropped_links_count",
    [SYC_OTTL_F_SEVERITY_NUMBER] = "severity_number",
    [SYC_OTTL_F_SEVERITY_TEXT] = "severity_text",
    [SYC_OTTL_F_BODY] = "body",
    [SYC_OTTL_F_FLAGS] = "flags",
    [SYC_OTTL_F_EVENT_NAME] = "event_name",
    [SYC_OTTL_F_METRIC_NAME] = "metric.name",
    [SYC_OTTL_F_METRIC_DESCRIPTION] = "metric.description",
    [SYC_OTTL_F_METRIC_UNIT] = "metric.unit",
    [SYC_OTTL_F_METRIC_TYPE] = "metric.type",
    [SYC_OTTL_F_METRIC_AGGREGATION_TEMPORALITY] = "metric.aggregation_temporality",
    [SYC_OTTL_F_METRIC_IS_MONOTONIC] = "metric.is_monotonic",
    [SYC_OTTL_F_VALUE_INT] = "value_int",
    [SYC_OTTL_F_VALUE_DOUBLE] = "value_double",
    [SYC_OTTL_F_COUNT] = "count",
    [SYC_OTTL_F_SUM] = "sum",
};

const char *syc_ottl_field_name(syc_ottl_field_t field)
{
    return (unsigned)field < SYC_OTTL_F_COUNT_ ? field_names[field] : "?";
}

static const struct path_def *path_lookup(syc_ottl_context_t ctx, const char *text)
{
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if ((paths[i].ctx_mask & (1u << ctx)) && strcmp(paths[i].text, text) == 0) return &paths[i];
    return NULL;
}

/* Enums, per context, as the collector's contexts define them. */
static const struct enum_def {
    unsigned ctx_mask;
    const char *name;
    int64_t value;
} enums[] = {
    {S, "SPAN_KIND_UNSPECIFIED", 0},
    {S, "SPAN_KIND_INTERNAL", 1},
    {S, "SPAN_KIND_SERVER", 2},
    {S, "SPAN_KIND_CLIENT", 3},
    {S, "SPAN_KIND_PRODUCER", 4},
    {S, "SPAN_KIND_CONSUMER", 5},
    {S, "STATUS_CODE_UNSET", 0},
    {S, "STATUS_CODE_OK", 1},
    {S, "STATUS_CODE_ERROR", 2},
    {M | D, "METRIC_DATA_TYPE_NONE", 0},
    {M | D, "METRIC_DATA_TYPE_GAUGE", 1},
    {M | D, "METRIC_DATA_TYPE_SUM", 2},
    {M | D, "METRIC_DATA_TYPE_HISTOGRAM", 3},
    {M | D, "METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM", 4},
    {M | D, "METRIC_DATA_TYPE_SUMMARY", 5},
    {M | D, "AGGREGATION_TEMPORALITY_UNSPECIFIED", 0},
    {M | D, "AGGREGATION_TEMPORALITY_DELTA", 1},
    {M | D, "AGGREGATION_TEMPORALITY_CUMULATIVE", 2},
};

/* SEVERITY_NUMBER_UNSPECIFIED, then TRACE, TRACE2..TRACE4, DEBUG.. up to FATAL4. */
static bool severity_lookup(const char *name, size_t len, int64_t *out)
{
    static const char prefix[] = "SEVERITY_NUMBER_";
    static const char *const levels[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};
    size_t plen = sizeof prefix - 1;
    if (len <= plen || memcmp(name, prefix, plen) != 0) return false;
    name += plen;
    len -= plen;
    if (len == 11 && memcmp(name, "UNSPECIFIED", 11) == 0) {
        *out = 0;
        return true;
    }
    for (int l = 0; l < 6; l++) {
        size_t n = strlen(levels[l]);
        if (len < n || memcmp(name, levels[l], n) != 0) continue;
        if (len == n) {
            *out = 1 + 4 * l;
            return true;
        }
        if (len == n + 1 && name[n] >= '2' && name[n] <= '4') {
            *out = 1 + 4 * l + (name[n] - '1');
            return true;
        }
    }
    return false;
}

static bool enum_lookup(syc_ottl_context_t ctx, const char *name, size_t len, int64_t *out)
{
    if (ctx == SYC_OTTL_CTX_LOG && severity_lookup(name, len, out)) return true;
    for (size_t i = 0; i < sizeof enums / sizeof enums[0]; i++)
        if ((enums[i].ctx_mask & (1u << ctx)) && strlen(enums[i].name) == len &&
            memcmp(enums[i].name, name, len) == 0) {
            *out = enums[i].value;
            return true;
        }
    return false;
}

/* ---- functions ---- */

const syc__ottl_func_t syc__ottl_funcs[FN_COUNT_] = {
    [FN_ISMATCH] = {"IsMatch", false, SYC_OTTL_BOOL, 2, {ARG_VALUE, ARG_REGEX}, ALL},
    [FN_ISSTRING] = {"IsString", false, SYC_OTTL_BOOL, 1, {ARG_VALUE}, ALL},
    [FN_ISINT] = {"IsInt", false, SYC_OTTL_BOOL, 1, {ARG_VALUE}, ALL},
    [FN_ISDOUBLE] = {"IsDouble", false, SYC_OTTL_BOOL, 1, {ARG_VALUE}, ALL},
    [FN_ISBOOL] = {"IsBool", false, SYC_OTTL_BOOL, 1, {ARG_VALUE}, ALL},
    [FN_ISMAP] = {"IsMap", false, SYC_OTTL_BOOL, 1, {ARG_VALUE}, ALL},
    [FN_ISLIST] = {"IsList", false, SYC_OTTL_BOOL, 1, {ARG_VALUE}, ALL},
    [FN_LEN] = {"Len", false, SYC_OTTL_INT, 1, {ARG_VALUE}, ALL},
    [FN_CONCAT] = {"Concat", false, SYC_OTTL_STRING, 2, {ARG_LIST, ARG_STRING}, ALL},
    [FN_HASATTRKEYONDATAPOINT] =
        {"HasAttrKeyOnDatapoint", false, SYC_OTTL_BOOL, 1, {ARG_STRING}, M},
    [FN_HASATTRONDATAPOINT] =
        {"HasAttrOnDatapoint", false, SYC_OTTL_BOOL, 2, {ARG_STRING, ARG_STRING}, M},
    [FN_INT] = {"Int", false, SYC_OTTL_NIL, 1, {ARG_VALUE}, ALL},
    [FN_DOUBLE] = {"Double", false, SYC_OTTL_NIL, 1, {ARG_VALUE}, ALL},
    [FN_STRING] = {"String", false, SYC_OTTL_NIL, 1, {ARG_VALUE}, ALL},
    [FN_TOLOWERCASE] = {"ToLowerCase", false, SYC_OTTL_STRING, 1, {ARG_VALUE}, ALL},
    [FN_TOUPPERCASE] = {"ToUpperCase", false, SYC_OTTL_STRING, 1, {ARG_VALUE}, ALL},
    [FN_SUBSTRING] =
        {"Substring", false, SYC_OTTL_STRING, 3, {ARG_VALUE, ARG_VALUE, ARG_VALUE}, ALL},
    [FN_SHA256] = {"SHA256", false, SYC_OTTL_STRING, 1, {ARG_VALUE}, ALL},
    [FN_SHA1] = {"SHA1", false, SYC_OTTL_STRING, 1, {ARG_VALUE}, ALL},
    [FN_MD5] = {"MD5", false, SYC_OTTL_STRING, 1, {ARG_VALUE}, ALL},
    [FN_SPLIT] = {"Split", false, SYC_OTTL_SLICE, 2, {ARG_VALUE, ARG_STRING}, ALL},
    [FN_SET] = {"set", true, SYC_OTTL_NIL, 2, {ARG_PATH, ARG_ANY}, ALL},
    [FN_DELETE_KEY] = {"delete_key", true, SYC_OTTL_NIL, 2, {ARG_PATH, ARG_STRING}, ALL},
    [FN_DELETE_MATCHING_KEYS] =
        {"delete_matching_keys", true, SYC_OTTL_NIL, 2, {ARG_PATH, ARG_REGEX}, ALL},
    [FN_KEEP_KEYS] = {"keep_keys", true, SYC_OTTL_NIL, 2, {ARG_PATH, ARG_STRLIST}, ALL},
    [FN_REPLACE_PATTERN] =
        {"replace_pattern", true, SYC_OTTL_NIL, 3, {ARG_PATH, ARG_REGEX, ARG_REPL}, ALL},
    [FN_REPLACE_ALL_PATTERNS] = {"replace_all_patterns",
                                 true,
                                 SYC_OTTL_NIL,
                                 4,
                                 {ARG_PATH, ARG_MODE, ARG_REGEX, ARG_REPL},
                                 ALL},
    [FN_TRUNCATE_ALL] = {"truncate_all", true, SYC_OTTL_NIL, 2, {ARG_PATH, ARG_INT}, ALL},
    [FN_LIMIT] = {"limit", true, SYC_OTTL_NIL, 3, {ARG_PATH, ARG_INT, ARG_STRLIST}, ALL},
};

static int func_lookup(const char *name, size_t len)
{
    for (int i = 0; i < FN_COUNT_; i++)
        if (strlen(syc__ottl_funcs[i].name) == len &&
            memcmp(syc__ottl_funcs[i].name, name, len) == 0)
            return i;
    return -1;
}

/* ---- the parser ---- */

typedef struct parser_s {
    syc__ottl_lexer_t lx;
    syc__ottl_token_t tok; /* current */
    syc__ottl_token_t la;  /* lookahead, when has_la */
    bool has_la;
    syc_ottl_prog_t *prog;
    syc_ottl_error_t *err;
    bool failed;
    int depth;
} parser_t;

/* The 1-based column of byte offset off: UTF-8 continuation bytes do not count. */
static int column_of(const parser_t *p, size_t off)
{
    int col = 1;
    for (size_t i = 0; i < off && i < p->lx.len; i++)
        if (((unsigned char)p->lx.src[i] & 0xC0) != 0x80) col++;
    return col;
}

static void *fail(parser_t *p, size_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void *fail(parser_t *p, size_t off, const char *fmt, ...)
{
    if (p->failed) return NULL;
    p->failed = true;
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->err->col = column_of(p, off);
    snprintf(p->err->msg, sizeof p->err->msg, "col %d: %s", p->err->col, msg);
    return NULL;
}

/* Advances; a lexer error fails the parse at its offset. */
static bool next(parser_t *p)
{
    if (p->has_la) {
        p->tok = p->la;
        p->has_la = false;
    } else {
        syc__ottl_lex_next(&p->lx, &p->tok);
    }
    if (p->tok.type == TOK_ERROR) {
        /* The message lives in the lexer's buffer; fail() copies it. */
        fail(p, p->tok.off, "%s", p->tok.text);
        return false;
    }
    return true;
}

static const syc__ottl_token_t *peek(parser_t *p)
{
    if (!p->has_la) {
        syc__ottl_lex_next(&p->lx, &p->la);
        p->has_la = true;
    }
    return &p->la;
}

static bool tok_is_word(const syc__ottl_token_t *t, const char *w)
{
    return t->type == TOK_IDENT && t->len == strlen(w) && memcmp(t->text, w, t->len) == 0;
}

static syc__ottl_node_t *new_node(parser_t *p, syc__ottl_node_kind_t kind, size_t off)
{
    syc__ottl_node_t *n = syc__ottl_arena_alloc(&p->prog->arena, sizeof *n);
    if (!n) return fail(p, off, "out of memory");
    n->kind = kind;
    n->off = off;
    return n;
}

static bool enter(parser_t *p)
{
    if (++p->depth > SYC_OTTL_MAX_DEPTH) {
        fail(p, p->tok.off, "expression nested too deeply (limit %d)", SYC_OTTL_MAX_DEPTH);
        return false;
    }
    return true;
}

static syc__ottl_node_t *parse_or(parser_t *p);
static syc__ottl_node_t *parse_value(parser_t *p, bool allow_list);
static syc__ottl_node_t *parse_maplit(parser_t *p);
static syc__ottl_node_t *parse_call(parser_t *p, int fn);

static bool is_cmp(syc__ottl_tok_t t)
{
    return t == TOK_EQ || t == TOK_NE || t == TOK_LT || t == TOK_LE || t == TOK_GT || t == TOK_GE;
}

/* A path from the identifier at p->tok: ident(.ident)* then keys. */
static syc__ottl_node_t *parse_path(parser_t *p)
{
    size_t start = p->tok.off;
    char text[128];
    size_t n = 0;
    for (;;) {
        if (n + p->tok.len + 2 > sizeof text) return fail(p, start, "path too long");
        memcpy(text + n, p->tok.text, p->tok.len);
        n += p->tok.len;
        text[n] = '\0';
        if (!next(p)) return NULL;
        if (p->tok.type != TOK_DOT) break;
        if (!next(p)) return NULL;
        if (p->tok.type != TOK_IDENT) return fail(p, p->tok.off, "expected a field name after '.'");
        text[n++] = '.';
    }
    syc_ottl_context_t ctx = p->prog->ctx;
    const struct path_def *def = path_lookup(ctx, text);
    const char *ctxname = context_names[ctx];
    size_t cl = strlen(ctxname);
    if (!def && strncmp(text, ctxname, cl) == 0 && text[cl] == '.')
        def = path_lookup(ctx, text + cl + 1);
    if (!def && strncmp(text, "scope.", 6) == 0) {
        /* The context-prefixed spelling of instrumentation_scope.* (and, in the
         * scope context, of the scope's own fields). */
        char alt[sizeof text + 16];
        snprintf(alt, sizeof alt, "instrumentation_scope.%s", text + 6);
        def = ctx == SYC_OTTL_CTX_SCOPE ? path_lookup(ctx, text + 6) : path_lookup(ctx, alt);
    }
    if (!def) return fail(p, start, "unknown path '%s' in the %s context", text, ctxname);

    syc__ottl_node_t *node = new_node(p, N_PATH, start);
    if (!node) return NULL;
    node->u.path.field = def->field;
    while (p->tok.type == TOK_LBRACK) {
        if (!def->keyed) return fail(p, p->tok.off, "path '%s' cannot be indexed", text);
        if (node->u.path.nkeys == SYC_OTTL_MAX_KEYS)
            return fail(p, p->tok.off, "more than %d keys in a path", SYC_OTTL_MAX_KEYS);
        if (!next(p)) return NULL;
        syc_ottl_key_t *key = &node->u.path.keys[node->u.path.nkeys++];
        if (p->tok.type == TOK_STRING) {
            key->str = p->tok.text;
            key->len = p->tok.len;
        } else if (p->tok.type == TOK_INT) {
            key->is_index = true;
            key->index = p->tok.i;
        } else {
            return fail(p, p->tok.off, "expected a string or int key inside '[ ]'");
        }
        if (!next(p)) return NULL;
        if (p->tok.type != TOK_RBRACK) return fail(p, p->tok.off, "expected ']' after key");
        if (!next(p)) return NULL;
    }
    return node;
}

/* A list: '[' value (',' value)* ']' (an empty list is allowed). */
static syc__ottl_node_t *parse_list(parser_t *p)
{
    syc__ottl_node_t *node = new_node(p, N_LIST, p->tok.off);
    if (!node || !next(p)) return NULL;
    syc__ottl_node_t *items[64];
    size_t n = 0;
    if (p->tok.type != TOK_RBRACK) {
        for (;;) {
            if (n == sizeof items / sizeof items[0])
                return fail(p, p->tok.off, "more than 64 items in a list");
            if (!(items[n++] = parse_value(p, false))) return NULL;
            if (p->tok.type == TOK_RBRACK) break;
            if (p->tok.type != TOK_COMMA) return fail(p, p->tok.off, "expected ',' or ']' in list");
            if (!next(p)) return NULL;
        }
    }
    if (!next(p)) return NULL;
    node->u.list.n = n;
    node->u.list.items = syc__ottl_arena_alloc(&p->prog->arena, (n ? n : 1) * sizeof *items);
    if (!node->u.list.items) return fail(p, node->off, "out of memory");
    memcpy(node->u.list.items, items, n * sizeof *items);
    return node;
}

/* A map literal: '{' string ':' value (',' string ':' value)* '}' (or '{}'). */
static syc__ottl_node_t *parse_maplit(parser_t *p)
{
    syc__ottl_node_t *node = new_node(p, N_MAPLIT, p->tok.off);
    if (!node || !next(p)) return NULL;
    syc_ottl_key_t keys[64];
    syc__ottl_node_t *values[64];
    size_t n = 0;
    if (p->tok.type != TOK_RBRACE) {
        for (;;) {
            if (n == 64) return fail(p, p->tok.off, "more than 64 entries in a map literal");
            if (p->tok.type != TOK_STRING)
                return fail(p, p->tok.off, "expected a string key in a map literal");
            keys[n] = (syc_ottl_key_t){.str = p->tok.text, .len = p->tok.len};
            if (!next(p)) return NULL;
            if (p->tok.type != TOK_COLON) return fail(p, p->tok.off, "expected ':' after key");
            if (!next(p) || !(values[n++] = parse_value(p, true))) return NULL;
            if (p->tok.type == TOK_RBRACE) break;
            if (p->tok.type != TOK_COMMA)
                return fail(p, p->tok.off, "expected ',' or '}' in map literal");
            if (!next(p)) return NULL;
        }
    }
    if (!next(p)) return NULL;
    node->u.maplit.n = n;
    node->u.maplit.keys = syc__ottl_arena_alloc(&p->prog->arena, (n ? n : 1) * sizeof *keys);
    node->u.maplit.values = syc__ottl_arena_alloc(&p->prog->arena, (n ? n : 1) * sizeof *values);
    if (!node->u.maplit.keys || !node->u.maplit.values) return fail(p, node->off, "out of memory");
    memcpy(node->u.maplit.keys, keys, n * sizeof *keys);
    memcpy(node->u.maplit.values, values, n * sizeof *values);
    return node;
}

static syc__ottl_node_t *literal(parser_t *p, syc_ottl_type_t type)
{
    syc__ottl_node_t *node = new_node(p, N_LITERAL, p->tok.off);
    if (!node) return NULL;
    node->u.lit.type = type;
    if (type == SYC_OTTL_INT) node->u.lit.u.i = p->tok.i;
    if (type == SYC_OTTL_DOUBLE) node->u.lit.u.d = p->tok.d;
    if (type == SYC_OTTL_STRING || type == SYC_OTTL_BYTES) {
        node->u.lit.u.s.ptr = p->tok.text;
        node->u.lit.u.s.len = p->tok.len;
    }
    return next(p) ? node : NULL;
}

/* A primary value: literal, enum, path, converter call or (where allowed) list. */
static syc__ottl_node_t *parse_primary(parser_t *p, bool allow_list)
{
    if (!enter(p)) return NULL;
    syc__ottl_node_t *node = NULL;
    syc__ottl_token_t t = p->tok;
    switch (t.type) {
    case TOK_STRING:
        node = literal(p, SYC_OTTL_STRING);
        break;
    case TOK_INT:
        node = literal(p, SYC_OTTL_INT);
        break;
    case TOK_FLOAT:
        node = literal(p, SYC_OTTL_DOUBLE);
        break;
    case TOK_BYTES:
        node = literal(p, SYC_OTTL_BYTES);
        break;
    case TOK_LBRACK:
        if (!allow_list) return fail(p, t.off, "lists are only supported as function arguments");
        node = parse_list(p);
        break;
    case TOK_LBRACE:
        if (!allow_list) return fail(p, t.off, "map literals are only supported as set()'s value");
        node = parse_maplit(p);
        break;
    case TOK_IDENT: {
        if (tok_is_word(&t, "true") || tok_is_word(&t, "false")) {
            node = literal(p, SYC_OTTL_BOOL);
            if (node) node->u.lit.u.b = t.text[0] == 't';
            break;
        }
        if (tok_is_word(&t, "nil")) {
            node = literal(p, SYC_OTTL_NIL);
            break;
        }
        if (tok_is_word(&t, "and") || tok_is_word(&t, "or") || tok_is_word(&t, "not") ||
            tok_is_word(&t, "where"))
            return fail(p, t.off, "expected a value, found keyword '%.*s'", (int)t.len, t.text);
        const syc__ottl_token_t *la = peek(p);
        bool upper = t.text[0] >= 'A' && t.text[0] <= 'Z';
        if (la->type == TOK_LPAREN) {
            int fn = func_lookup(t.text, t.len);
            if (fn < 0)
                return fail(p, t.off, "unknown %s '%.*s'", upper ? "converter" : "function",
                            (int)t.len, t.text);
            if (syc__ottl_funcs[fn].editor)
                return fail(p, t.off, "editor '%s' can only start a statement",
                            syc__ottl_funcs[fn].name);
            node = parse_call(p, fn);
            break;
        }
        if (upper) {
            int64_t v;
            if (!enum_lookup(p->prog->ctx, t.text, t.len, &v))
                return fail(p, t.off, "unknown enum '%.*s' in the %s context", (int)t.len, t.text,
                            context_names[p->prog->ctx]);
            node = literal(p, SYC_OTTL_INT);
            if (node) node->u.lit.u.i = v;
            break;
        }
        node = parse_path(p);
        break;
    }
    default:
        return fail(p, t.off, "expected a value");
    }
    p->depth--;
    return node;
}

/*
 * Whether the current token is an operator of the level (+ and -, or * and /),
 * in *op. The lexer reads `- 1` as an operator but `-1` as a negative literal;
 * after an operand a signed literal is the operator and an unsigned literal, so
 * `x -1` is `x - 1` (the token is rewritten in place, past its sign).
 */
static bool math_op(parser_t *p, bool additive, char *op)
{
    syc__ottl_token_t *t = &p->tok;
    char c = t->off < p->lx.len ? p->lx.src[t->off] : 0;
    if (t->type == TOK_MATH) {
        *op = c;
        return additive == (c == '+' || c == '-');
    }
    if (!additive || (t->type != TOK_INT && t->type != TOK_FLOAT) || (c != '+' && c != '-'))
        return false;
    *op = c;
    if (c == '-') {
        if (t->type == TOK_INT)
            t->i = (int64_t)(0 - (uint64_t)t->i);
        else
            t->d = -t->d;
    }
    t->off++;
    return true;
}

static syc__ottl_node_t *parse_math(parser_t *p, bool allow_list);

/* An operand of a math expression: a primary or a parenthesized math expression. */
static syc__ottl_node_t *parse_factor(parser_t *p, bool allow_list)
{
    if (p->tok.type != TOK_LPAREN) return parse_primary(p, allow_list);
    size_t start = p->tok.off;
    if (!enter(p) || !next(p)) return NULL;
    syc__ottl_node_t *node = parse_math(p, false);
    if (!node) return NULL;
    if (p->tok.type != TOK_RPAREN)
        return fail(p, p->tok.off, "expected ')' to close '(' at col %d", column_of(p, start));
    if (!next(p)) return NULL;
    p->depth--;
    return node;
}

/* A math operand must be something that can be a number. */
static bool check_math_operand(parser_t *p, const syc__ottl_node_t *n)
{
    if (n->kind == N_LIST || n->kind == N_MAPLIT)
        return fail(p, n->off, "a list or map cannot be used in a math expression"), false;
    if (n->kind == N_LITERAL && n->u.lit.type != SYC_OTTL_INT && n->u.lit.type != SYC_OTTL_DOUBLE)
        return fail(p, n->off, "math expressions take int and float operands"), false;
    if (n->kind == N_CALL) {
        syc_ottl_type_t r = syc__ottl_funcs[n->u.call.fn].returns;
        if (r == SYC_OTTL_BOOL || r == SYC_OTTL_STRING || r == SYC_OTTL_SLICE)
            return fail(p, n->off, "%s does not return a number",
                        syc__ottl_funcs[n->u.call.fn].name),
                   false;
    }
    return true;
}

/* One level of a math expression: operands of the next level joined by this
 * level's operators, leaning left (1 - 2 - 3 is (1 - 2) - 3). */
static syc__ottl_node_t *parse_math_level(parser_t *p, bool additive, bool allow_list)
{
    syc__ottl_node_t *l =
        additive ? parse_math_level(p, false, allow_list) : parse_factor(p, allow_list);
    char op;
    while (l && math_op(p, additive, &op)) {
        syc__ottl_node_t *n = new_node(p, N_MATH, p->tok.off);
        if (!n || !check_math_operand(p, l)) return NULL;
        if (p->tok.type == TOK_MATH && !next(p)) return NULL; /* a signed literal stays */
        n->u.math.op = op;
        n->u.math.l = l;
        n->u.math.r = additive ? parse_math_level(p, false, false) : parse_factor(p, false);
        if (!n->u.math.r || !check_math_operand(p, n->u.math.r)) return NULL;
        l = n;
    }
    return l;
}

static syc__ottl_node_t *parse_math(parser_t *p, bool allow_list)
{
    return parse_math_level(p, true, allow_list);
}

/* A value: a math expression of primaries (a single primary most of the time). */
static syc__ottl_node_t *parse_value(parser_t *p, bool allow_list)
{
    return parse_math(p, allow_list);
}

/* Checks a replacement string: '$' is followed by '$', digits, {name} or a name. */
static const char *check_replacement(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '$') continue;
        if (++i >= len) return "'$' at the end of the replacement";
        char c = s[i];
        if (c == '$') continue;
        if (c == '{') {
            size_t j = i + 1;
            while (j < len && s[j] != '}') {
                char d = s[j];
                if (!((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || (d >= '0' && d <= '9') ||
                      d == '_'))
                    return "invalid group name in '${...}'";
                j++;
            }
            if (j >= len || j == i + 1) return "unterminated or empty '${...}'";
            i = j;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return "'$' must be followed by a group number, a name, '{name}' or '$'";
    }
    return NULL;
}

static syc__ottl_regex_t *compile_regex(parser_t *p, const syc__ottl_node_t *arg, const char *what)
{
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)arg->u.lit.u.s.ptr, arg->u.lit.u.s.len,
                                     PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &errcode, &erroff, NULL);
    if (!code) {
        PCRE2_UCHAR buf[120];
        pcre2_get_error_message(errcode, buf, sizeof buf);
        return fail(p, arg->off, "invalid regex in %s: %s at offset %zu", what, (char *)buf,
                    (size_t)erroff);
    }
    /* Without JIT support (or memory for it) matching falls back to the interpreter. */
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    syc__ottl_regex_t *re = syc__ottl_arena_alloc(&p->prog->arena, sizeof *re);
    if (!re) {
        pcre2_code_free(code);
        return fail(p, arg->off, "out of memory");
    }
    re->code = code;
    re->next = p->prog->regexes;
    p->prog->regexes = re;
    return re;
}

/* Checks argument i of a call against what the function takes. */
static bool check_arg(parser_t *p, syc__ottl_node_t *call, int i)
{
    const syc__ottl_func_t *f = &syc__ottl_funcs[call->u.call.fn];
    syc__ottl_node_t *a = call->u.call.args[i];
    bool is_str = a->kind == N_LITERAL && a->u.lit.type == SYC_OTTL_STRING;
    char what[64];
    snprintf(what, sizeof what, "argument %d of %s", i + 1, f->name);
    switch (f->args[i]) {
    case ARG_VALUE:
        if (a->kind == N_LIST) return fail(p, a->off, "%s cannot be a list", what), false;
        if (a->kind == N_MAPLIT) return fail(p, a->off, "%s cannot be a map literal", what), false;
        return true;
    case ARG_ANY:
        return true;
    case ARG_PATH:
        if (a->kind != N_PATH) return fail(p, a->off, "%s must be a path", what), false;
        return true;
    case ARG_STRING:
        if (!is_str) return fail(p, a->off, "%s must be a string literal", what), false;
        return true;
    case ARG_REGEX:
        if (!is_str) return fail(p, a->off, "%s must be a string literal (a regex)", what), false;
        call->u.call.re = compile_regex(p, a, what);
        return call->u.call.re != NULL;
    case ARG_REPL: {
        if (!is_str) return fail(p, a->off, "%s must be a string literal", what), false;
        const char *bad = check_replacement(a->u.lit.u.s.ptr, a->u.lit.u.s.len);
        if (bad) return fail(p, a->off, "invalid replacement in %s: %s", what, bad), false;
        return true;
    }
    case ARG_INT:
        if (a->kind != N_LITERAL || a->u.lit.type != SYC_OTTL_INT || a->u.lit.u.i < 0)
            return fail(p, a->off, "%s must be a non-negative int literal", what), false;
        return true;
    case ARG_STRLIST:
        if (a->kind != N_LIST) return fail(p, a->off, "%s must be a list of strings", what), false;
        for (size_t k = 0; k < a->u.list.n; k++) {
            const syc__ottl_node_t *it = a->u.list.items[k];
            if (it->kind != N_LITERAL || it->u.lit.type != SYC_OTTL_STRING)
                return fail(p, it->off, "%s must be a list of string literals", what), false;
        }
        return true;
    case ARG_LIST:
        if (a->kind != N_LIST) return fail(p, a->off, "%s must be a list", what), false;
        return true;
    case ARG_MODE:
        if (!is_str || !((a->u.lit.u.s.len == 3 && memcmp(a->u.lit.u.s.ptr, "key", 3) == 0) ||
                         (a->u.lit.u.s.len == 5 && memcmp(a->u.lit.u.s.ptr, "value", 5) == 0)))
            return fail(p, a->off, "%s must be \"key\" or \"value\"", what), false;
        return true;
    }
    return false;
}

/* A call from the function name at p->tok (the '(' is the lookahead). */
static syc__ottl_node_t *parse_call(parser_t *p, int fn)
{
    const syc__ottl_func_t *f = &syc__ottl_funcs[fn];
    size_t start = p->tok.off;
    syc_ottl_context_t ctx = p->prog->ctx;
    if (!(f->ctx_mask & (1u << ctx)))
        return fail(p, start, "%s is not available in the %s context", f->name, context_names[ctx]);
    syc__ottl_node_t *node = new_node(p, N_CALL, start);
    if (!node || !next(p) || !next(p)) return NULL; /* the name, then '(' */
    syc__ottl_node_t *args[8];
    int n = 0;
    if (p->tok.type != TOK_RPAREN) {
        for (;;) {
            if (n == 8) return fail(p, p->tok.off, "too many arguments to %s", f->name);
            if (p->tok.type == TOK_IDENT && peek(p)->type == TOK_ASSIGN)
                return fail(p, p->tok.off, "named arguments are not supported yet");
            if (!(args[n++] = parse_value(p, true))) return NULL;
            if (p->tok.type == TOK_RPAREN) break;
            if (p->tok.type != TOK_COMMA)
                return fail(p, p->tok.off, "expected ')' after arguments of %s", f->name);
            if (!next(p)) return NULL;
        }
    }
    if (n != f->nargs)
        return fail(p, start, "%s takes %d argument%s, got %d", f->name, f->nargs,
                    f->nargs == 1 ? "" : "s", n);
    node->u.call.fn = fn;
    node->u.call.nargs = (uint8_t)n;
    node->u.call.args = syc__ottl_arena_alloc(&p->prog->arena, (size_t)n * sizeof *args + 1);
    if (!node->u.call.args) return fail(p, start, "out of memory");
    memcpy(node->u.call.args, args, (size_t)n * sizeof *args);
    for (int i = 0; i < n; i++)
        if (!check_arg(p, node, i)) return NULL;
    if (fn == FN_LIMIT && (int64_t)args[2]->u.list.n > args[1]->u.lit.u.i)
        return fail(p, args[2]->off, "limit: %zu priority keys exceed the limit of %lld",
                    args[2]->u.list.n, (long long)args[1]->u.lit.u.i);
    if (!next(p)) return NULL; /* ')' */
    return node;
}

/*
 * `( condition )` at p->tok, if that is what it is: `(a + 1) * 2 > 3` also starts
 * with '(' but is a math operand. The parser tries the condition first and,
 * when that does not parse or is followed by an operator, rewinds to the '('
 * (NULL, p->failed false) for the caller to read a value.
 */
static syc__ottl_node_t *parse_group(parser_t *p, syc_ottl_error_t *group_err)
{
    parser_t saved = *p;
    syc_ottl_error_t saved_err = *p->err;
    syc__ottl_node_t *node = NULL;
    if (next(p) && (node = parse_or(p)) && p->tok.type == TOK_RPAREN && next(p)) {
        char op;
        syc__ottl_token_t t = p->tok;
        bool math = math_op(p, true, &op) || math_op(p, false, &op);
        p->tok = t;
        if (!math && !is_cmp(p->tok.type)) return node;
    }
    if (!p->failed && node && p->tok.type != TOK_RPAREN)
        fail(p, p->tok.off, "expected ')' to close '(' at col %d", column_of(p, saved.tok.off));
    if (p->failed) *group_err = *p->err;
    *p = saved;
    *p->err = saved_err;
    return NULL;
}

/* A boolean term: not term | ( condition ) | value op value | bool value. */
static syc__ottl_node_t *parse_term(parser_t *p)
{
    if (!enter(p)) return NULL;
    syc__ottl_node_t *node;
    size_t start = p->tok.off;
    syc_ottl_error_t group_err = {0};
    if (tok_is_word(&p->tok, "not")) {
        node = new_node(p, N_NOT, start);
        if (!node || !next(p) || !(node->u.not_ = parse_term(p))) return NULL;
    } else if (p->tok.type == TOK_LPAREN && (node = parse_group(p, &group_err))) {
        /* a parenthesized condition */
    } else {
        syc__ottl_node_t *l = parse_value(p, false);
        if (!l) {
            /* Neither reading parsed: the condition's error, if it had one,
             * says more than the value's. */
            if (group_err.msg[0]) *p->err = group_err;
            return NULL;
        }
        if (is_cmp(p->tok.type)) {
            node = new_node(p, N_CMP, p->tok.off);
            if (!node) return NULL;
            node->u.cmp.op = (syc__ottl_cmp_t)(p->tok.type - TOK_EQ);
            node->u.cmp.l = l;
            if (!next(p) || !(node->u.cmp.r = parse_value(p, false))) return NULL;
        } else if ((l->kind == N_LITERAL && l->u.lit.type == SYC_OTTL_BOOL) ||
                   (l->kind == N_CALL && syc__ottl_funcs[l->u.call.fn].returns == SYC_OTTL_BOOL)) {
            node = l;
        } else {
            return fail(p, p->tok.off, "expected a comparison operator");
        }
    }
    p->depth--;
    return node;
}

/*
 * A chain `a and b and c` (or `or`) is built leaning right, AND(a, AND(b, c)), so
 * that the evaluator walks it with a loop rather than recursion however long the
 * chain is; the order of evaluation (and short-circuiting) stays left to right.
 */
static syc__ottl_node_t *parse_chain(parser_t *p, syc__ottl_node_kind_t kind, const char *word,
                                     syc__ottl_node_t *(*operand)(parser_t *))
{
    syc__ottl_node_t *first = operand(p);
    syc__ottl_node_t **slot = &first; /* where the next operand goes */
    while (first && tok_is_word(&p->tok, word)) {
        syc__ottl_node_t *n = new_node(p, kind, p->tok.off);
        if (!n || !next(p)) return NULL;
        n->u.bin.l = *slot;
        *slot = n;
        if (!(n->u.bin.r = operand(p))) return NULL;
        slot = &n->u.bin.r;
    }
    return first;
}

static syc__ottl_node_t *parse_and(parser_t *p)
{
    return parse_chain(p, N_AND, "and", parse_term);
}

/* Only parse_term recurses into parse_or, and parse_term counts the depth. */
static syc__ottl_node_t *parse_or(parser_t *p)
{
    return parse_chain(p, N_OR, "or", parse_and);
}

static syc_ottl_prog_t *compile(const char *src, size_t len, syc_ottl_context_t ctx,
                                syc_ottl_error_t *err, bool statement)
{
    err->col = 0;
    err->msg[0] = '\0';
    if ((unsigned)ctx >= SYC_OTTL_CTX_COUNT_) {
        snprintf(err->msg, sizeof err->msg, "unknown context");
        return NULL;
    }
    syc_ottl_prog_t *prog = calloc(1, sizeof *prog);
    if (!prog) {
        snprintf(err->msg, sizeof err->msg, "out of memory");
        return NULL;
    }
    prog->ctx = ctx;
    prog->is_statement = statement;
    parser_t p = {.lx = {.src = src, .len = len, .arena = &prog->arena}, .prog = prog, .err = err};
    if (!next(&p)) goto fail;
    if (statement) {
        syc__ottl_token_t t = p.tok;
        int fn = t.type == TOK_IDENT ? func_lookup(t.text, t.len) : -1;
        if (t.type != TOK_IDENT || peek(&p)->type != TOK_LPAREN) {
            fail(&p, t.off, "expected an editor call such as set(...)");
            goto fail;
        }
        if (fn < 0) {
            fail(&p, t.off, "unknown editor '%.*s'", (int)t.len, t.text);
            goto fail;
        }
        if (!syc__ottl_funcs[fn].editor) {
            fail(&p, t.off, "'%s' is a converter; a statement starts with an editor",
                 syc__ottl_funcs[fn].name);
            goto fail;
        }
        if (!(prog->editor = parse_call(&p, fn))) goto fail;
        if (tok_is_word(&p.tok, "where")) {
            if (!next(&p) || !(prog->cond = parse_or(&p))) goto fail;
            if (p.tok.type != TOK_EOF) {
                fail(&p, p.tok.off, "expected 'and', 'or' or end of statement");
                goto fail;
            }
        } else if (p.tok.type != TOK_EOF) {
            fail(&p, p.tok.off, "expected 'where' or end of statement");
            goto fail;
        }
    } else {
        if (p.tok.type == TOK_EOF) {
            fail(&p, p.tok.off, "expected a condition");
            goto fail;
        }
        if (!(prog->cond = parse_or(&p))) goto fail;
        if (p.tok.type != TOK_EOF) {
            fail(&p, p.tok.off, "expected 'and', 'or' or end of condition");
            goto fail;
        }
    }
    return prog;
fail:
    if (!p.failed) fail(&p, p.tok.off, "invalid input");
    syc_ottl_free(prog);
    return NULL;
}

syc_ottl_prog_t *syc_ottl_compile_condition(const char *src, size_t len, syc_ottl_context_t ctx,
                                            syc_ottl_error_t *err)
{
    return compile(src, len, ctx, err, false);
}

syc_ottl_prog_t *syc_ottl_compile_statement(const char *src, size_t len, syc_ottl_context_t ctx,
                                            syc_ottl_error_t *err)
{
    return compile(src, len, ctx, err, true);
}

void syc_ottl_free(syc_ottl_prog_t *prog)
{
    if (!prog) return;
    for (syc__ottl_regex_t *re = prog->regexes; re; re = re->next)
        pcre2_code_free(re->code);
    syc__ottl_arena_free(&prog->arena);
    free(prog);
}

/* Contexts from the most specific to the least: inference picks the first one a
 * statement names. */
static const syc_ottl_context_t infer_order[] = {
    SYC_OTTL_CTX_LOG,    SYC_OTTL_CTX_DATAPOINT, SYC_OTTL_CTX_SPANEVENT, SYC_OTTL_CTX_SPAN,
    SYC_OTTL_CTX_METRIC, SYC_OTTL_CTX_SCOPE,     SYC_OTTL_CTX_RESOURCE,
};

/* Whether the identifier t, followed by `follow`, starts a path: not a call, an
 * enum (upper case), a keyword or a named argument. */
static bool starts_path(const syc__ottl_token_t *t, syc__ottl_tok_t follow)
{
    static const char *const words[] = {"and", "or", "not", "where", "true", "false", "nil"};
    if (follow == TOK_LPAREN || follow == TOK_ASSIGN || (t->text[0] >= 'A' && t->text[0] <= 'Z'))
        return false;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (tok_is_word(t, words[i])) return false;
    return true;
}

int syc_ottl_context_names(const char *src, size_t len, unsigned *named, syc_ottl_error_t *err)
{
    syc__ottl_arena_t arena = {0};
    syc__ottl_lexer_t lx = {.src = src, .len = len, .arena = &arena};
    syc__ottl_token_t prev = {.type = TOK_EOF}, tok;
    syc__ottl_tok_t before = TOK_EOF; /* the type of the token before prev */
    size_t bare_off = 0;              /* the first path without a context name */
    bool bare = false;
    for (;;) {
        syc__ottl_lex_next(&lx, &tok);
        if (tok.type == TOK_ERROR) break;
        /* prev, an identifier not after a '.', followed by tok: a path's start? */
        if (prev.type == TOK_IDENT && before != TOK_DOT && starts_path(&prev, tok.type)) {
            char name[32];
            size_t n = prev.len < sizeof name - 1 ? prev.len : sizeof name - 1;
            memcpy(name, prev.text, n);
            name[n] = '\0';
            syc_ottl_context_t c;
            if (strcmp(name, "instrumentation_scope") == 0) strcpy(name, "scope");
            if (tok.type == TOK_DOT && syc_ottl_context_parse(name, &c) == 0) {
                *named |= 1u << c;
            } else if (!bare) {
                bare = true;
                bare_off = prev.off;
            }
        }
        if (tok.type == TOK_EOF) break;
        before = prev.type;
        prev = tok;
    }
    syc__ottl_arena_free(&arena);
    syc_ottl_prog_t dummy = {0};
    parser_t p = {.lx = {.src = src, .len = len}, .err = err, .prog = &dummy};
    if (tok.type == TOK_ERROR) {
        fail(&p, tok.off, "%s", tok.text);
        return SY_EINVAL;
    }
    if (bare) {
        *named |= SYC_OTTL_CTX_UNNAMED;
        /* Kept for the caller, in case the other paths name a context. */
        size_t n = 0; /* the path's first name; src is not NUL-terminated */
        while (bare_off + n < len && n < 40 && !strchr(".[ ),=<>!", src[bare_off + n]))
            n++;
        fail(&p, bare_off,
             "a path without a context name ('%.*s') next to paths with one: write every path "
             "with its context (span., resource., log., ...)",
             (int)n, src + bare_off);
    }
    return 0;
}

int syc_ottl_context_pick(unsigned named, unsigned allowed, syc_ottl_context_t *out,
                          syc_ottl_error_t *err)
{
    bool mixed = (named & SYC_OTTL_CTX_UNNAMED) && (named & ~SYC_OTTL_CTX_UNNAMED);
    if (mixed && err->msg[0]) return SY_EINVAL; /* the message of syc_ottl_context_names */
    err->col = 0;
    err->msg[0] = '\0';
    if (mixed) {
        err->col = 1;
        snprintf(err->msg, sizeof err->msg,
                 "col 1: some paths have a context name and some do not: write every path with "
                 "its context (span., resource., log., ...)");
        return SY_EINVAL;
    }
    for (size_t i = 0; i < sizeof infer_order / sizeof infer_order[0]; i++) {
        syc_ottl_context_t c = infer_order[i];
        if (!(named & (1u << c))) continue;
        if (!(allowed & (1u << c))) {
            err->col = 1;
            snprintf(err->msg, sizeof err->msg,
                     "col 1: the %s context (inferred from the '%s.' paths) is not available here",
                     context_names[c], context_names[c]);
            return SY_EINVAL;
        }
        *out = c;
        return 0;
    }
    err->col = 1;
    snprintf(err->msg, sizeof err->msg,
             "col 1: cannot infer the context: no path starts with a context name (write "
             "span.attributes[...], resource.attributes[...], log.body, metric.name, ...)");
    return SY_EAGAIN;
}

int syc_ottl_infer_context(const char *src, size_t len, unsigned allowed, syc_ottl_context_t *out,
                           syc_ottl_error_t *err)
{
    unsigned named = 0;
    int rc = syc_ottl_context_names(src, len, &named, err);
    return rc < 0 ? rc : syc_ottl_context_pick(named, allowed, out, err);
}

bool syc_ottl_is_statement(const syc_ottl_prog_t *prog)
{
    return prog->is_statement;
}

syc_ottl_context_t syc_ottl_prog_context(const syc_ottl_prog_t *prog)
{
    return prog->ctx;
}
