/*
 * ottl.h - the OpenTelemetry Transformation Language (OTTL) as the filter,
 * transform and sampling processors share it: a condition (a boolean expression)
 * or a statement (an editor call with an optional `where` condition) is compiled
 * once, for one context (span, log, datapoint, ...), into a read-only program; the
 * program is then evaluated against any number of telemetry items.
 *
 * Evaluation knows nothing about the data model. The caller hands it a table of
 * callbacks (syc_ottl_accessor_t) that read a field of the current item, look up
 * and edit attribute maps. The evaluator never allocates: it recurses over a tree
 * whose depth the compiler bounds (SYC_OTTL_MAX_DEPTH), and the strings that
 * converters build (String, Concat, replace_pattern) go to a caller-owned scratch
 * (syc_ottl_scratch_t), one per thread.
 *
 * Threads: a compiled program is immutable and may be evaluated from several
 * threads at once, each with its own scratch. The grammar, contexts and functions
 * are described in docs/ottl.md.
 */
#ifndef SY_COMMON_OTTL_H
#define SY_COMMON_OTTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* How deeply parentheses, `not`, calls and lists may nest, and how many keys a
 * path may have (`attributes["a"]["b"]` has two). Bounds the evaluator's stack. */
#define SYC_OTTL_MAX_DEPTH 32
#define SYC_OTTL_MAX_KEYS  8

/* The context a program is compiled for: which item it runs on, hence which paths
 * and enums it may name. */
typedef enum syc_ottl_context_e {
    SYC_OTTL_CTX_RESOURCE,
    SYC_OTTL_CTX_SCOPE,
    SYC_OTTL_CTX_SPAN,
    SYC_OTTL_CTX_SPANEVENT,
    SYC_OTTL_CTX_METRIC,
    SYC_OTTL_CTX_DATAPOINT,
    SYC_OTTL_CTX_LOG,
    SYC_OTTL_CTX_COUNT_
} syc_ottl_context_t;

/* The name of a context as configs spell it ("span", "datapoint", ...), and the
 * reverse; syc_ottl_context_parse returns -1 for an unknown name. */
const char *syc_ottl_context_name(syc_ottl_context_t ctx);
int syc_ottl_context_parse(const char *name, syc_ottl_context_t *out);

/*
 * The fields a path can name. A path is one field plus zero or more keys; the
 * field says which object it belongs to (the item, its resource, its scope or, for
 * a data point, its metric), so one accessor can serve every context. The same
 * field is reached by different spellings in different contexts: `name` in the
 * metric context and `metric.name` in the datapoint context are both
 * SYC_OTTL_F_METRIC_NAME. Entries are only ever added at the end.
 */
typedef enum syc_ottl_field_e {
    SYC_OTTL_F_RESOURCE_ATTRIBUTES,
    SYC_OTTL_F_RESOURCE_DROPPED_ATTRIBUTES_COUNT,
    SYC_OTTL_F_SCOPE_NAME,
    SYC_OTTL_F_SCOPE_VERSION,
    SYC_OTTL_F_SCOPE_ATTRIBUTES,
    SYC_OTTL_F_SCOPE_DROPPED_ATTRIBUTES_COUNT,
    SYC_OTTL_F_ATTRIBUTES, /* the item's own attributes */
    SYC_OTTL_F_DROPPED_ATTRIBUTES_COUNT,
    SYC_OTTL_F_NAME, /* span or span event name */
    SYC_OTTL_F_KIND,
    SYC_OTTL_F_TRACE_ID, /* bytes (16) */
    SYC_OTTL_F_SPAN_ID,  /* bytes (8) */
    SYC_OTTL_F_PARENT_SPAN_ID,
    SYC_OTTL_F_TRACE_STATE,
    SYC_OTTL_F_STATUS_CODE,
    SYC_OTTL_F_STATUS_MESSAGE,
    SYC_OTTL_F_START_TIME_UNIX_NANO,
    SYC_OTTL_F_END_TIME_UNIX_NANO,
    SYC_OTTL_F_TIME_UNIX_NANO,
    SYC_OTTL_F_OBSERVED_TIME_UNIX_NANO,
    SYC_OTTL_F_DROPPED_EVENTS_COUNT,
    SYC_OTTL_F_DROPPED_LINKS_COUNT,
    SYC_OTTL_F_SEVERITY_NUMBER,
    SYC_OTTL_F_SEVERITY_TEXT,
    SYC_OTTL_F_BODY,
    SYC_OTTL_F_FLAGS,
    SYC_OTTL_F_EVENT_NAME,
    SYC_OTTL_F_METRIC_NAME,
    SYC_OTTL_F_METRIC_DESCRIPTION,
    SYC_OTTL_F_METRIC_UNIT,
    SYC_OTTL_F_METRIC_TYPE, /* METRIC_DATA_TYPE_* */
    SYC_OTTL_F_METRIC_AGGREGATION_TEMPORALITY,
    SYC_OTTL_F_METRIC_IS_MONOTONIC,
    SYC_OTTL_F_VALUE_INT,
    SYC_OTTL_F_VALUE_DOUBLE,
    SYC_OTTL_F_COUNT,
    SYC_OTTL_F_SUM,
    SYC_OTTL_F_COUNT_
} syc_ottl_field_t;

/* The name of a field, for diagnostics ("resource.attributes"). */
const char *syc_ottl_field_name(syc_ottl_field_t field);

/* A value as OTTL sees it. Strings and bytes point into the item (or into a
 * program or scratch) and are valid until the item or scratch changes; the
 * evaluator never keeps them past one call. Map and slice handles are the
 * accessor's own, passed back to its callbacks unchanged. */
typedef enum syc_ottl_type_e {
    SYC_OTTL_NIL,
    SYC_OTTL_BOOL,
    SYC_OTTL_INT,
    SYC_OTTL_DOUBLE,
    SYC_OTTL_STRING,
    SYC_OTTL_BYTES,
    SYC_OTTL_MAP,
    SYC_OTTL_SLICE
} syc_ottl_type_t;

typedef struct syc_ottl_value_s {
    syc_ottl_type_t type;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *ptr;
            size_t len;
        } s; /* SYC_OTTL_STRING and SYC_OTTL_BYTES */
        void *map;
        void *slice;
    } u;
} syc_ottl_value_t;

/* A path as the accessor receives it for set(): the field, then its keys, each a
 * string (map key) or an int (slice index). */
typedef struct syc_ottl_key_s {
    bool is_index;
    int64_t index;
    const char *str;
    size_t len;
} syc_ottl_key_t;

/* What a map_edit visitor asks for one entry. */
typedef enum syc_ottl_edit_e {
    SYC_OTTL_EDIT_KEEP,
    SYC_OTTL_EDIT_DELETE,
    SYC_OTTL_EDIT_SET_VALUE, /* replace the value with *new_value */
    SYC_OTTL_EDIT_RENAME     /* move the value to key new_key (replacing what was there) */
} syc_ottl_edit_t;

/* Called once per map entry by map_edit. new_key and new_value point into the
 * evaluator's scratch; the accessor copies them before the next call. */
typedef syc_ottl_edit_t (*syc_ottl_edit_fn)(void *arg, const char *key, size_t key_len,
                                            const syc_ottl_value_t *value,
                                            syc_ottl_value_t *new_value, const char **new_key,
                                            size_t *new_key_len);

/*
 * The data model, as callbacks on the caller's item. Every callback returns 0 or
 * a negative SY_E… code (SY_ENOTSUP when the item has no such field, SY_EINVAL for
 * a value of the wrong type); an error stops the evaluation, which returns it.
 * Callbacks the program does not need may be NULL (editors need the editing ones;
 * conditions only get, map_get, slice_get, map_len, slice_len). Entries are only
 * ever added at the end.
 */
typedef struct syc_ottl_accessor_s {
    /* The value of a field of the item; a missing optional field reads as nil. */
    int (*get)(void *item, syc_ottl_field_t field, syc_ottl_value_t *out);
    /* The value under key in a map; a missing key reads as nil. */
    int (*map_get)(void *item, void *map, const char *key, size_t key_len, syc_ottl_value_t *out);
    /* The element at index of a slice; SY_EINVAL when out of range. */
    int (*slice_get)(void *item, void *slice, int64_t index, syc_ottl_value_t *out);
    size_t (*map_len)(void *item, void *map);
    size_t (*slice_len)(void *item, void *slice);
    /* set(): store value at field[keys...]; with keys, the last key names the map
     * entry (created if missing) or slice element. The accessor copies value. */
    int (*set)(void *item, syc_ottl_field_t field, const syc_ottl_key_t *keys, size_t nkeys,
               const syc_ottl_value_t *value);
    /* Removes key from map; a missing key is not an error. */
    int (*map_delete)(void *item, void *map, const char *key, size_t key_len);
    /* Visits every entry of map once, in its order, applying what fn returns. */
    int (*map_edit)(void *item, void *map, syc_ottl_edit_fn fn, void *arg);
    /* Metric context: whether any data point of the metric has attribute key
     * (with value, when value is not NULL). */
    int (*datapoint_has_attr)(void *item, const char *key, size_t key_len,
                              const syc_ottl_value_t *value, bool *out);
    /* A new list (SLICE) of values[0, n), or map (MAP) of keys[i] -> values[i],
     * that the other callbacks and set() accept (Split, list and map literals in
     * set()). The accessor copies what it needs; the handle stays valid until the
     * item is bound to another node. NULL: such values are SY_ENOTSUP at run
     * time. */
    int (*make_list)(void *item, const syc_ottl_value_t *values, size_t n, syc_ottl_value_t *out);
    int (*make_map)(void *item, const syc_ottl_key_t *keys, const syc_ottl_value_t *values,
                    size_t n, syc_ottl_value_t *out);
} syc_ottl_accessor_t;

/* A compile error: the 1-based column (in characters) inside the source, and the
 * message, "col 17: expected ')' after arguments of IsMatch". */
typedef struct syc_ottl_error_s {
    int col;
    char msg[256];
} syc_ottl_error_t;

typedef struct syc_ottl_prog_s syc_ottl_prog_t;

/*
 * Compiles a condition (syc_ottl_compile_condition) or a statement
 * (syc_ottl_compile_statement) of src[0..len) for ctx. Regexes are compiled here,
 * with PCRE2's JIT where available. Returns the program, owned by the caller (free
 * it with syc_ottl_free), or NULL with *err filled in.
 */
syc_ottl_prog_t *syc_ottl_compile_condition(const char *src, size_t len, syc_ottl_context_t ctx,
                                            syc_ottl_error_t *err);
syc_ottl_prog_t *syc_ottl_compile_statement(const char *src, size_t len, syc_ottl_context_t ctx,
                                            syc_ottl_error_t *err);
void syc_ottl_free(syc_ottl_prog_t *prog);

/*
 * The context of a statement or condition written with context-prefixed paths,
 * as the collector infers it (transform's flat *_statements, filter's
 * *_conditions): the most specific context any path names, in the order log,
 * datapoint, spanevent, span, metric, scope (or instrumentation_scope),
 * resource. `allowed` is the bit set (1u << ctx) of the contexts the caller can
 * run. Returns 0 with *out; SY_EAGAIN when no path names a context (the caller
 * may fall back to a default); SY_EINVAL when the context is not allowed or the
 * text does not lex, with *err filled in.
 */
int syc_ottl_infer_context(const char *src, size_t len, unsigned allowed, syc_ottl_context_t *out,
                           syc_ottl_error_t *err);
/* The two halves, for a group of statements and conditions that share one
 * context: adds the contexts the paths of src name to *named, and
 * SYC_OTTL_CTX_UNNAMED when a path has no context name (SY_EINVAL with *err
 * when src does not lex), then picks from a union of such sets. Paths with and
 * without a context name in one set are an error, as in the collector; a set
 * with no context name at all is SY_EAGAIN (the caller's default). Pass pick
 * the *err of names (or a zeroed one) so that it can name the path at fault. */
#define SYC_OTTL_CTX_UNNAMED (1u << 30)
int syc_ottl_context_names(const char *src, size_t len, unsigned *named, syc_ottl_error_t *err);
int syc_ottl_context_pick(unsigned named, unsigned allowed, syc_ottl_context_t *out,
                          syc_ottl_error_t *err);

/* Whether the program is a statement (else a condition), and its context. */
bool syc_ottl_is_statement(const syc_ottl_prog_t *prog);
syc_ottl_context_t syc_ottl_prog_context(const syc_ottl_prog_t *prog);

/*
 * Per-thread evaluation state: a PCRE2 match data and a byte buffer for the
 * strings converters and editors build. syc_ottl_scratch_new returns NULL when out
 * of memory; a scratch is used by one thread at a time.
 */
typedef struct syc_ottl_scratch_s syc_ottl_scratch_t;
#define SYC_OTTL_SCRATCH_DEFAULT (16u * 1024u)
syc_ottl_scratch_t *syc_ottl_scratch_new(size_t bytes);
void syc_ottl_scratch_free(syc_ottl_scratch_t *scratch);

/*
 * Evaluates a condition on item: *out is its truth. Returns 0, or a negative SY_E…
 * code for a run-time error (a callback's error; a value of the wrong type for a
 * converter, SY_EINVAL; the scratch too small, SY_ENOMEM). What an error means
 * (drop, keep, log) is the caller's error_mode.
 */
int syc_ottl_eval_condition(const syc_ottl_prog_t *prog, const syc_ottl_accessor_t *acc, void *item,
                            syc_ottl_scratch_t *scratch, bool *out);

/*
 * Runs a statement on item: the editor runs when the `where` condition (if any)
 * holds; *applied (may be NULL) says whether it ran. Returns as above.
 */
int syc_ottl_exec_statement(const syc_ottl_prog_t *prog, const syc_ottl_accessor_t *acc, void *item,
                            syc_ottl_scratch_t *scratch, bool *applied);

/*
 * A double as Go's encoding/json (and pcommon.Value.AsString) writes it: the
 * shortest digits that read back, plain unless |d| < 1e-6 or >= 1e21, where it is
 * exponent form ("1e-7", "1e+21"). Returns the length written to buf (NUL
 * terminated), or 0 for NaN and the infinities, which have no such form.
 */
size_t syc_ottl_format_double(double d, char *buf, size_t cap);

#endif
