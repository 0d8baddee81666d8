/*
 * probabilistic_sampler.c - the `probabilistic_sampler` processor: keeps a share
 * of spans and log records, making the decisions the collector's
 * probabilisticsamplerprocessor makes (same keys, same defaults, same hash, same
 * thresholds, same tracestate and sampling attributes written on what it keeps).
 *
 * Each batch is read and edited through the view only: per item the trace id,
 * the tracestate (spans) or the sampling attributes (logs) and the priority
 * attribute are read; dropped items are view_drop()ped, kept ones get their `th`
 * (and `rv` in hash_seed mode), and the batch is committed once. A batch left
 * with nothing is released rather than emitted.
 *
 * The decision itself (ps_decide) is the collector's commonShouldSampleLogic;
 * the randomness of each mode is in span_item() and log_item().
 */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <switchyard/plugin.h>

#include "probabilistic_sampler.h"
#include "sampling.h"

static const sy_config_field_t ps_fields[] = {
    {.name = "sampling_percentage",
     .type = SY_CFG_DOUBLE,
     .offset = offsetof(ps_config_t, sampling_percentage),
     .default_value = "0",
     .description = "Percentage of items kept (a float32, as the collector's); 0 keeps none, "
                    "100 or more keeps all."},
    {.name = "hash_seed",
     .type = SY_CFG_INT,
     .offset = offsetof(ps_config_t, hash_seed),
     .default_value = "0",
     .description = "Seed of the FNV hash of the hash_seed mode (an unsigned 32-bit integer); "
                    "every collector of one tier must use the same."},
    {.name = "mode",
     .type = SY_CFG_STRING,
     .offset = offsetof(ps_config_t, mode),
     .description = "hash_seed (the default), proportional or equalizing."},
    {.name = "fail_closed",
     .type = SY_CFG_BOOL,
     .offset = offsetof(ps_config_t, fail_closed),
     .default_value = "true",
     .description = "Drop items whose sampling information is missing or invalid (true), or "
                    "keep them (false)."},
    {.name = "sampling_precision",
     .type = SY_CFG_INT,
     .offset = offsetof(ps_config_t, sampling_precision),
     .default_value = "4",
     .description = "Hex digits of the threshold written in th (1..14)."},
    {.name = "attribute_source",
     .type = SY_CFG_STRING,
     .offset = offsetof(ps_config_t, attribute_source),
     .default_value = "traceID",
     .description = "Logs: traceID or record (randomness from from_attribute)."},
    {.name = "from_attribute",
     .type = SY_CFG_STRING,
     .offset = offsetof(ps_config_t, from_attribute),
     .description = "Logs: the record attribute hashed when the trace id is absent or "
                    "attribute_source is record (hash_seed mode)."},
    {.name = "sampling_priority",
     .type = SY_CFG_STRING,
     .offset = offsetof(ps_config_t, sampling_priority),
     .description = "Logs: a record attribute holding a percentage that replaces "
                    "sampling_percentage for that record."},
};

/* Sampler kinds: the collector's neverSampler, hashingSampler, equalizingSampler
 * and proportionalSampler. */
enum { K_NEVER, K_HASH, K_EQUALIZING, K_PROPORTIONAL };

/* The `policy` of the collector's count metrics. */
enum {
    P_TRACE_ID_HASH,
    P_TRACE_ID_W3C,
    P_SAMPLING_RANDOMNESS,
    P_SAMPLING_PRIORITY,
    P_MISSING_RANDOMNESS,
    P_ATTRIBUTE, /* logs: the from_attribute's name */
    P_COUNT
};
static const char *const policy_names[P_COUNT] = {
    "trace_id_hash",     "trace_id_w3c",       "sampling_randomness",
    "sampling_priority", "missing_randomness", "attribute",
};

/* Why an item has no usable sampling information. */
enum { E_NONE, E_PARSE, E_RV_IN_USE, E_TH_IN_USE, E_MISSING, E_INCONSISTENT };
static const char *const err_texts[] = {
    [E_RV_IN_USE] = "item has sampling randomness, equalizing or proportional mode recommended",
    [E_TH_IN_USE] = "item has sampling threshold, equalizing or proportional mode recommended",
    [E_MISSING] = "missing randomness",
    [E_INCONSISTENT] = "inconsistent arriving threshold: item should not have been sampled",
};

enum { SIG_TRACES, SIG_LOGS, SIG_COUNT };

typedef struct ps_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const ps_config_t *cfg;
    int kind;
    uint64_t fixed_th; /* hash_seed and equalizing */
    double ratio;      /* proportional */
    int precision;
    uint32_t seed;
    bool logs_trace_id; /* attribute_source: traceID */
    sy_metric_t *counts[SIG_COUNT][P_COUNT][2];
    struct timespec last_log;
    uint64_t suppressed;
    ps_tracestate_t ts; /* scratch of one span */
} ps_state_t;

/* One item on its way through ps_decide. */
typedef struct ps_item_s {
    uint64_t rnd;
    int policy;
    bool missing;
    bool carrier; /* its sampling information may be updated */
    bool has_th;
    uint64_t th;
    int err;
    ps_err_t perr;
    bool prio; /* a priority replaces the threshold */
    uint64_t prio_th;
    /* out */
    bool sampled, cleared, write_th;
    uint64_t threshold;
} ps_item_t;

/* What one batch did: counts by policy, and its first error for the log. */
typedef struct ps_run_s {
    uint64_t counts[P_COUNT][2];
    uint64_t errors;
    int first_err;
    ps_err_t first_perr;
    bool info; /* an error the collector logs at info level (a parse error) */
    bool edits;
    bool no_priority; /* the request holds no "sampling.priority" bytes at all */
    uint64_t dropped;
} ps_run_t;

/* Keeps the first error, or the first parse error: the line is logged at the
 * level of the worst and says what that one was. */
static void note_error(ps_run_t *run, int err, ps_err_t perr)
{
    if (run->errors++ == 0 || (err == E_PARSE && !run->info))
        run->first_err = err, run->first_perr = perr;
    if (err == E_PARSE) run->info = true;
}

/* The collector's decide(). */
static uint64_t mode_threshold(const ps_state_t *s, const ps_item_t *it)
{
    switch (s->kind) {
    case K_NEVER:
        return PS_NEVER_THRESHOLD;
    case K_HASH:
        return s->fixed_th;
    case K_EQUALIZING:
        return it->has_th && s->fixed_th < it->th ? it->th : s->fixed_th;
    default: {
        double incoming = it->has_th ? ps_threshold_probability(it->th) : 1.0;
        uint64_t th;
        if (ps_probability_to_threshold(incoming * s->ratio, s->precision, &th) < 0)
            return PS_NEVER_THRESHOLD;
        return th;
    }
    }
}

/* commonShouldSampleLogic: the consistency check, fail_closed, the mode's
 * threshold, the priority, the decision, and whether th is to be written. */
static void ps_decide(const ps_state_t *s, ps_item_t *it, ps_run_t *run)
{
    if (it->err == E_NONE) {
        if (it->missing) {
            it->err = E_MISSING;
        } else if (it->carrier && it->has_th && it->rnd < it->th) {
            /* A th the randomness does not pass is a lie: cleared, as the spec says. */
            it->has_th = false;
            it->cleared = true;
            it->err = E_INCONSISTENT;
        }
    }
    uint64_t threshold;
    if (it->err != E_NONE) {
        note_error(run, it->err, it->perr);
        threshold = s->cfg->fail_closed ? PS_NEVER_THRESHOLD : PS_ALWAYS_THRESHOLD;
    } else {
        threshold = mode_threshold(s, it);
    }
    if (it->prio) {
        threshold = it->prio_th;
        it->policy = P_SAMPLING_PRIORITY;
    }
    uint64_t rnd = it->missing ? PS_ALL_RANDOMNESS : it->rnd;
    it->sampled = rnd >= threshold;
    it->threshold = threshold;
    if (it->sampled && it->carrier) {
        /* updateThreshold: a th may only be raised (probability only lowered). */
        if (it->has_th && it->th > threshold) {
            note_error(run, E_NONE, PS_OK); /* "cannot raise existing sampling probability" */
        } else {
            it->write_th = true;
        }
    }
    run->counts[it->policy][it->sampled]++;
}

static bool id_empty(const sy_value_t *v)
{
    if (v->type != SY_VALUE_BYTES || v->len != 16) return true;
    for (int i = 0; i < 16; i++)
        if (v->bytes[i]) return false;
    return true;
}

#define PRIORITY_KEY "sampling.priority"

/* parseSpanSamplingPriority: 0 drop, 1 keep, -1 no say. */
static int span_priority(const sy_host_api_t *api, sy_view_node_t *span)
{
    sy_value_t v;
    if (api->view_attr_get(span, PRIORITY_KEY, sizeof PRIORITY_KEY - 1, &v) != 0) return -1;
    double d;
    switch (v.type) {
    case SY_VALUE_INT:
        return v.i == 0 ? 0 : v.i > 0 ? 1 : -1;
    case SY_VALUE_DOUBLE:
        d = v.d;
        break;
    case SY_VALUE_STRING: {
        /* strconv.ParseFloat: the whole string, no spaces; out of range is an error */
        char buf[64];
        if (v.len == 0 || v.len >= sizeof buf || v.str[0] == ' ' || v.str[0] == '\t' ||
            v.str[0] == '\n' || v.str[0] == '\r' || v.str[0] == '\f' || v.str[0] == '\v')
            return -1;
        memcpy(buf, v.str, v.len);
        buf[v.len] = '\0';
        char *end;
        errno = 0;
        d = strtod(buf, &end);
        if (*end || (errno == ERANGE && isinf(d))) return -1;
        break;
    }
    default:
        return -1;
    }
    return d == 0 ? 0 : d > 0 ? 1 : -1;
}

/* One span: its randomness and carrier (randomnessFromSpan of each mode), given
 * its trace id and priority (span_priority()). */
static void span_item(ps_state_t *s, sy_view_node_t *span, const sy_value_t *tid, int prio,
                      ps_item_t *it, const char **ts_raw, size_t *ts_len)
{
    const sy_host_api_t *api = s->api;
    sy_value_t tsv;
    if (api->view_get(span, SY_FIELD_TRACE_STATE, &tsv) < 0 || tsv.type != SY_VALUE_STRING)
        tsv.len = 0, tsv.str = "";
    *ts_raw = tsv.str;
    *ts_len = tsv.len;
    ps_tracestate_t *ts = &s->ts;
    ps_err_t perr = ps_tracestate_parse(ts, tsv.str, tsv.len);
    bool empty = id_empty(tid);
    it->perr = perr;
    switch (s->kind) {
    case K_NEVER:
        /* Randomness that is never used; the carrier even when it did not parse. */
        it->rnd = PS_ALL_RANDOMNESS;
        it->policy = P_SAMPLING_PRIORITY;
        it->carrier = true;
        it->err = perr ? E_PARSE : E_NONE;
        break;
    case K_HASH:
        it->policy = empty ? P_MISSING_RANDOMNESS : P_TRACE_ID_HASH;
        it->missing = empty;
        if (!empty) it->rnd = ps_hash_randomness(tid->bytes, 16, s->seed);
        if (perr) {
            it->err = E_PARSE;
        } else if (ps_tracestate_has_rv(ts)) {
            it->err = E_RV_IN_USE;
        } else if (ps_tracestate_has_th(ts)) {
            it->err = E_TH_IN_USE;
        } else {
            ps_tracestate_set_rv(ts, empty ? PS_ALL_RANDOMNESS : it->rnd);
            it->carrier = true;
        }
        break;
    default:
        if (perr) {
            it->err = E_PARSE;
            it->missing = true;
            it->policy = P_MISSING_RANDOMNESS;
            break;
        }
        it->carrier = true;
        if (ps_tracestate_has_rv(ts)) {
            it->rnd = ts->rnd;
            it->policy = P_SAMPLING_RANDOMNESS;
        } else if (!empty) {
            it->rnd = ps_trace_id_randomness(tid->bytes);
            it->policy = P_TRACE_ID_W3C;
        } else {
            it->missing = true;
            it->policy = P_MISSING_RANDOMNESS;
        }
        break;
    }
    it->has_th = it->carrier && ps_tracestate_has_th(ts);
    it->th = ts->threshold;
    if (prio >= 0) {
        it->prio = true;
        it->prio_th = prio ? PS_ALWAYS_THRESHOLD : PS_NEVER_THRESHOLD;
    }
}

/*
 * The spans whose fate is known without their tracestate: a priority of 0, and,
 * under fail_closed in hash_seed mode (or at 0 %), a hash under the threshold
 * without a priority that keeps. Whatever the tracestate says, the collector
 * drops them with the same policy: not reading it saves a walk of each (most)
 * dropped span. Only the log line of a tracestate error of such a span is lost.
 */
static bool drop_early(ps_state_t *s, const sy_value_t *tid, int prio, ps_run_t *run)
{
    int policy;
    if (prio == 0) {
        policy = P_SAMPLING_PRIORITY;
    } else if (prio < 0 && s->cfg->fail_closed && s->kind == K_NEVER) {
        policy = P_SAMPLING_PRIORITY;
    } else if (prio < 0 && s->cfg->fail_closed && s->kind == K_HASH) {
        if (id_empty(tid)) {
            note_error(run, E_MISSING, PS_OK);
            policy = P_MISSING_RANDOMNESS;
        } else if (ps_hash_randomness(tid->bytes, 16, s->seed) < s->fixed_th) {
            policy = P_TRACE_ID_HASH;
        } else {
            return false;
        }
    } else {
        return false;
    }
    run->counts[policy][0]++;
    return true;
}

static int visit_span(ps_state_t *s, sy_view_node_t *span, ps_run_t *run)
{
    const sy_host_api_t *api = s->api;
    sy_value_t tid;
    if (api->view_get(span, SY_FIELD_TRACE_ID, &tid) < 0) tid.type = SY_VALUE_EMPTY;
    int prio = run->no_priority ? -1 : span_priority(api, span);
    if (drop_early(s, &tid, prio, run)) {
        run->dropped++;
        return api->view_drop(span);
    }
    ps_item_t it = {0};
    const char *raw;
    size_t raw_len;
    span_item(s, span, &tid, prio, &it, &raw, &raw_len);
    ps_decide(s, &it, run);
    if (!it.sampled) {
        run->dropped++;
        return api->view_drop(span);
    }
    if (!it.carrier) return 0;
    ps_tracestate_t *ts = &s->ts;
    if (it.cleared) ps_tracestate_clear_th(ts);
    if (it.write_th) ps_tracestate_update_th(ts, it.threshold);
    char out[2048];
    size_t n = ps_tracestate_serialize(ts, out, sizeof out);
    if (n == raw_len && memcmp(out, raw, n) == 0) return 0;
    sy_value_t v = {.type = n ? SY_VALUE_STRING : SY_VALUE_EMPTY, .str = out, .len = n};
    run->edits = true;
    return api->view_set(span, SY_FIELD_TRACE_STATE, &v);
}

/* ---- logs ---------------------------------------------------------------- */

/* The value of a string attribute, or NULL. */
static const char *str_attr(const sy_host_api_t *api, sy_view_node_t *n, const char *key,
                            size_t *len)
{
    sy_value_t v;
    if (api->view_attr_get(n, key, strlen(key), &v) != 0 || v.type != SY_VALUE_STRING || v.len == 0)
        return NULL;
    *len = v.len;
    return v.str;
}

/* getBytesFromValue for the types whose text the collector's AsString gives
 * plainly; 0 for the others (see the README). */
static size_t attr_bytes(const sy_value_t *v, char *buf, size_t cap, const uint8_t **out)
{
    switch (v->type) {
    case SY_VALUE_BYTES:
        *out = v->bytes;
        return v->len;
    case SY_VALUE_STRING:
        *out = (const uint8_t *)v->str;
        return v->len;
    case SY_VALUE_INT:
        *out = (const uint8_t *)buf;
        return (size_t)snprintf(buf, cap, "%" PRId64, v->i);
    case SY_VALUE_BOOL:
        *out = (const uint8_t *)(v->b ? "true" : "false");
        return v->b ? 4 : 5;
    default:
        return 0;
    }
}

/* logRecordToPriorityThreshold */
static void log_priority(const ps_state_t *s, sy_view_node_t *log, ps_item_t *it)
{
    const char *key = s->cfg->sampling_priority;
    sy_value_t v;
    if (!key || !*key || s->api->view_attr_get(log, key, strlen(key), &v) != 0) return;
    double min_prob = v.type == SY_VALUE_DOUBLE ? v.d / 100.0
                      : v.type == SY_VALUE_INT  ? (double)v.i / 100.0
                                                : 0.0;
    uint64_t th;
    if (min_prob != 0 && ps_probability_to_threshold(min_prob, s->precision, &th) == 0) {
        it->prio = true;
        it->prio_th = th;
    }
}

static int visit_log(ps_state_t *s, sy_view_node_t *log, ps_run_t *run)
{
    const sy_host_api_t *api = s->api;
    ps_item_t it = {0};
    sy_value_t tid;
    if (api->view_get(log, SY_FIELD_TRACE_ID, &tid) < 0) tid.type = SY_VALUE_EMPTY;
    bool empty = id_empty(&tid);

    /* newLogRecordCarrier: sampling.threshold and sampling.randomness, if strings */
    bool has_rv = false;
    uint64_t rv = 0;
    size_t len;
    const char *str = str_attr(api, log, "sampling.threshold", &len);
    if (str) {
        ps_err_t e = ps_parse_tvalue(str, len, &it.th);
        if (e)
            it.perr = e;
        else
            it.has_th = true;
    }
    if ((str = str_attr(api, log, "sampling.randomness", &len))) {
        ps_err_t e = ps_parse_rvalue(str, len, &rv);
        if (e) {
            if (!it.perr) it.perr = e;
        } else {
            has_rv = true;
        }
    }
    bool set_rv = false;
    switch (s->kind) {
    case K_NEVER:
        it.rnd = PS_ALL_RANDOMNESS;
        it.policy = P_SAMPLING_PRIORITY;
        it.carrier = true;
        it.err = it.perr ? E_PARSE : E_NONE;
        break;
    case K_HASH: {
        it.missing = true;
        it.policy = P_MISSING_RANDOMNESS;
        if (s->logs_trace_id && !empty) {
            it.rnd = ps_hash_randomness(tid.bytes, 16, s->seed);
            it.missing = false;
            it.policy = P_TRACE_ID_HASH;
        }
        const char *from = s->cfg->from_attribute;
        sy_value_t v;
        if (it.missing && from && *from && api->view_attr_get(log, from, strlen(from), &v) == 0) {
            char buf[32];
            const uint8_t *b;
            size_t n = attr_bytes(&v, buf, sizeof buf, &b);
            if (n > 0) {
                it.rnd = ps_hash_randomness(b, n, s->seed);
                it.missing = false;
                it.policy = P_ATTRIBUTE;
            }
        }
        if (it.perr) {
            it.err = E_PARSE;
        } else if (has_rv) {
            it.err = E_RV_IN_USE;
        } else if (it.has_th) {
            it.err = E_TH_IN_USE;
        } else {
            it.carrier = true;
            set_rv = !it.missing;
        }
        break;
    }
    default:
        it.missing = true;
        it.policy = P_MISSING_RANDOMNESS;
        if (it.perr) {
            it.err = E_PARSE;
        } else {
            it.carrier = true;
            if (has_rv) {
                it.rnd = rv, it.missing = false, it.policy = P_SAMPLING_RANDOMNESS;
            } else if (!empty) {
                it.rnd = ps_trace_id_randomness(tid.bytes);
                it.missing = false;
                it.policy = P_TRACE_ID_W3C;
            }
        }
        break;
    }
    if (!it.carrier) it.has_th = false;
    log_priority(s, log, &it);
    ps_decide(s, &it, run);
    if (!it.sampled) {
        run->dropped++;
        return api->view_drop(log);
    }
    int rc = 0;
    char buf[16];
    if (set_rv) {
        ps_randomness_rvalue(it.rnd, buf);
        sy_value_t v = {.type = SY_VALUE_STRING, .str = buf, .len = PS_HEX_DIGITS};
        rc = api->view_attr_set(log, "sampling.randomness", 19, &v, SY_ATTR_UPSERT);
        run->edits = true;
    }
    if (rc >= 0 && it.cleared) {
        rc = api->view_attr_delete(log, "sampling.threshold", 18);
        run->edits = true;
    }
    if (rc >= 0 && it.write_th) {
        size_t n = ps_threshold_tvalue(it.threshold, buf);
        sy_value_t v = {.type = SY_VALUE_STRING, .str = buf, .len = n};
        if (!(it.has_th && it.th == it.threshold)) {
            rc = api->view_attr_set(log, "sampling.threshold", 18, &v, SY_ATTR_UPSERT);
            run->edits = true;
        }
    }
    return rc < 0 && rc != SY_EAGAIN ? rc : 0;
}

/* ---- the batch ------------------------------------------------------------- */

static double seconds_since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* One line a second at most: the collector logs every item (debug, or info for a
 * tracestate that does not parse), which would flood. */
static void log_errors(ps_state_t *s, const ps_run_t *run, int sig)
{
    if (run->errors == 0) return;
    sy_log_level_t level = run->info ? SY_LOG_INFO : SY_LOG_DEBUG;
    if (!s->api->log_enabled(s->inst, level)) return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (s->last_log.tv_sec && seconds_since(&s->last_log, &now) < 1.0) {
        s->suppressed += run->errors;
        return;
    }
    const char *what = run->first_err == E_PARSE  ? ps_err_text(run->first_perr)
                       : run->first_err == E_NONE ? "cannot raise existing sampling probability"
                                                  : err_texts[run->first_err];
    s->api->log(s->inst, level,
                "%s sampler: %s (%" PRIu64 " items of this batch; %" PRIu64
                " more since the last message)",
                sig == SIG_TRACES ? "traces" : "logs", what, run->errors, s->suppressed);
    s->suppressed = 0;
    s->last_log = now;
}

/*
 * Whether any span of the batch may carry a "sampling.priority" attribute. A
 * protobuf string is its bytes as they are, so a request without these 17 bytes
 * anywhere has no attribute of that key, and no span needs its attributes
 * indexed to look for it (most traffic: the lookup was about a third of the
 * sampler's time). When the bytes are there (as a key, or inside any other
 * string) every span is looked up as before. The view reads the same encoded
 * bytes, so asking for them here costs nothing more.
 *
 * 16 places at a time: the key's first byte at each and its last byte 16
 * further (glibc's memmem took three times as long here); SSE2's byte mask
 * where there is one, GCC's vector extension elsewhere.
 */
static bool has_priority_key(const sy_host_api_t *api, sy_batch_t *batch)
{
    size_t len = 0;
    const uint8_t *enc = api->batch_encoded(batch, &len);
    if (!enc) return true;
    enum { M = sizeof PRIORITY_KEY - 1 };
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i first = _mm_set1_epi8('s'), last = _mm_set1_epi8('y');
    for (; i + (M - 1) + 16 <= len; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(enc + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(enc + i + (M - 1)));
        unsigned hit = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last)));
        for (; hit; hit &= hit - 1)
            if (memcmp(enc + i + (unsigned)__builtin_ctz(hit), PRIORITY_KEY, M) == 0) return true;
    }
#else
    typedef uint8_t v16 __attribute__((vector_size(16)));
    typedef int8_t v16s __attribute__((vector_size(16)));
    const v16 zero = {0};
    const v16 first = zero + (uint8_t)'s', last = zero + (uint8_t)'y';
    for (; i + (M - 1) + 16 <= len; i += 16) {
        v16 a, b;
        memcpy(&a, enc + i, 16);
        memcpy(&b, enc + i + (M - 1), 16);
        v16s hit = (a == first) & (b == last);
        uint64_t h[2];
        memcpy(h, &hit, 16);
        if (!(h[0] | h[1])) continue;
        for (size_t k = 0; k < 16; k++)
            if (hit[k] && memcmp(enc + i + k, PRIORITY_KEY, M) == 0) return true;
    }
#endif
    return i < len && memmem(enc + i, len - i, PRIORITY_KEY, M) != NULL;
}

static int ps_consume(void *state, sy_batch_t *batch)
{
    ps_state_t *s = state;
    const sy_host_api_t *api = s->api;
    sy_batch_info_t info;
    api->batch_info(batch, &info);
    int sig = info.signal == SY_SIGNAL_LOGS ? SIG_LOGS : SIG_TRACES;
    if (info.signal != SY_SIGNAL_TRACES && info.signal != SY_SIGNAL_LOGS)
        return api->emit(s->inst, batch);

    ps_run_t run = {0};
    if (sig == SIG_TRACES) run.no_priority = !has_priority_key(api, batch);
    sy_view_t *v = api->view_open(batch);
    if (!v) return SY_ENOMEM; /* the batch is still the caller's */
    int rc = 0;
    sy_view_node_t *root = api->view_root(v);
    size_t nr = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t r = 0; r < nr && rc >= 0; r++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, r);
        size_t nc = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t c = 0; c < nc && rc >= 0; c++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, c);
            size_t ni = api->view_count(sc, SY_VIEW_ITEMS);
            for (size_t i = 0; i < ni && rc >= 0; i++) {
                sy_view_node_t *item = api->view_at(sc, SY_VIEW_ITEMS, i);
                rc = sig == SIG_TRACES ? visit_span(s, item, &run) : visit_log(s, item, &run);
            }
        }
    }
    /* Nothing kept: no need to write the empty request, the batch just goes. */
    bool none_kept = rc >= 0 && run.dropped == info.items;
    if (rc >= 0 && !none_kept && (run.dropped || run.edits)) rc = api->view_commit(v);
    api->view_close(v);
    if (rc < 0) {
        SY_LOG(api, s->inst, SY_LOG_ERROR, "failed sampling batch (error %d)", rc);
        return rc;
    }
    for (int p = 0; p < P_COUNT; p++)
        for (int k = 0; k < 2; k++)
            if (run.counts[p][k] && s->counts[sig][p][k])
                api->metric_add(s->counts[sig][p][k], (int64_t)run.counts[p][k]);
    log_errors(s, &run, sig);
    if (!none_kept) api->batch_info(batch, &info);
    if (none_kept || info.items == 0) {
        api->batch_release(batch); /* nothing was kept: nothing to send */
        return SY_OK;
    }
    return api->emit(s->inst, batch);
}

/* ---- configuration and life cycle ----------------------------------------- */

static int mode_of(const char *m)
{
    if (!m || !*m || !strcmp(m, "hash_seed")) return K_HASH;
    if (!strcmp(m, "equalizing")) return K_EQUALIZING;
    if (!strcmp(m, "proportional")) return K_PROPORTIONAL;
    return -1;
}

/* The percentage as the collector's float32 field holds it (too large: Inf). */
static float pct_f32(double d)
{
    if (d > FLT_MAX) return INFINITY;
    if (d < -FLT_MAX) return -INFINITY;
    return (float)d;
}

/* The collector's Config.Validate, with its messages. */
static int ps_validate(const void *config, char *err, size_t err_len)
{
    const ps_config_t *c = config;
    float pct = pct_f32(c->sampling_percentage);
    double ratio = (double)pct / 100.0;
    if (isinf(pct) || isnan(pct)) {
        snprintf(err, err_len, "sampling rate is invalid: %s%%", pct > 0 ? "+Inf" : "-Inf");
        return SY_EINVAL;
    }
    if (ratio < 0) {
        snprintf(err, err_len, "sampling rate is negative: %f%%", (double)pct);
        return SY_EINVAL;
    }
    if (ratio > 0 && ratio < 1.0 / (double)PS_MAX_ADJUSTED_COUNT) {
        snprintf(err, err_len, "sampling rate is too small: %g%%", (double)pct);
        return SY_EINVAL;
    }
    if (c->attribute_source && *c->attribute_source && strcmp(c->attribute_source, "traceID") &&
        strcmp(c->attribute_source, "record")) {
        snprintf(err, err_len, "invalid attribute source: %s. Expected: traceID or record",
                 c->attribute_source);
        return SY_EINVAL;
    }
    if (c->sampling_precision == 0) {
        snprintf(err, err_len, "invalid sampling precision: 0");
        return SY_EINVAL;
    }
    if (c->sampling_precision > PS_HEX_DIGITS) {
        snprintf(err, err_len, "sampling precision is too great, should be <= 14: %" PRId64,
                 c->sampling_precision);
        return SY_EINVAL;
    }
    if (c->sampling_precision < 0) {
        snprintf(err, err_len, "sampling precision must be between 1 and 14: %" PRId64,
                 c->sampling_precision);
        return SY_EINVAL;
    }
    if (mode_of(c->mode) < 0) {
        snprintf(err, err_len, "unsupported sampler mode \"%s\"", c->mode);
        return SY_EINVAL;
    }
    if (c->hash_seed < 0 || c->hash_seed > UINT32_MAX) {
        snprintf(err, err_len, "hash_seed must be an unsigned 32-bit integer, got %" PRId64,
                 c->hash_seed);
        return SY_EINVAL;
    }
    return SY_OK;
}

/* makeSampler. An unset mode is hash_seed, whatever else is set. */
static void make_sampler(ps_state_t *s)
{
    const ps_config_t *c = s->cfg;
    float pct = pct_f32(c->sampling_percentage);
    if (pct > 100) pct = 100;
    s->kind = mode_of(c->mode);
    s->precision = (int)c->sampling_precision;
    s->seed = (uint32_t)c->hash_seed;
    s->logs_trace_id = c->attribute_source && !strcmp(c->attribute_source, "traceID");
    if (pct == 0) {
        s->kind = K_NEVER;
        return;
    }
    double ratio = (double)pct / 100;
    if (ratio < 1.0 / (double)PS_MAX_ADJUSTED_COUNT) ratio = 1.0 / (double)PS_MAX_ADJUSTED_COUNT;
    s->ratio = ratio;
    if (s->kind == K_EQUALIZING) {
        (void)ps_probability_to_threshold(ratio, s->precision, &s->fixed_th);
    } else if (s->kind == K_HASH) {
        /* uint32(pct * percentageScaleFactor): a float32 product, truncated */
        volatile float product = pct * 163.84f;
        uint32_t scaled = (uint32_t)product;
        if (scaled == 0) {
            s->kind = K_NEVER;
            return;
        }
        s->fixed_th = (uint64_t)(0x4000 - scaled) << 42;
    }
}

static void ps_destroy(void *state)
{
    free(state);
}

static void register_counts(ps_state_t *s, int sig)
{
    const char *what = sig == SIG_TRACES ? "traces" : "logs";
    for (int p = 0; p < P_COUNT; p++) {
        if (p == P_ATTRIBUTE && sig == SIG_TRACES) continue;
        for (int k = 0; k < 2; k++) {
            char name[160], help[200];
            snprintf(name, sizeof name, "processor_probabilistic_sampler_count_%s_%s_%s", what,
                     k ? "sampled" : "not_sampled", policy_names[p]);
            snprintf(help, sizeof help,
                     "%s the probabilistic sampler %s (the collector's "
                     "count_%s_sampled{policy=\"%s\",sampled=\"%s\"}).",
                     sig == SIG_TRACES ? "Spans" : "Log records", k ? "kept" : "dropped", what,
                     policy_names[p], k ? "true" : "false");
            s->counts[sig][p][k] = s->api->metric_register(s->inst, name, help, SY_METRIC_COUNTER);
        }
    }
}

static int ps_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    if (!SY_API_HAS(api, view_build_abort)) {
        api->log(inst, SY_LOG_ERROR, "needs a host with plugin ABI 1.1 (the view)");
        return SY_ENOTSUP;
    }
    ps_state_t *s = calloc(1, sizeof *s);
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    make_sampler(s);
    /* A processor has one instance per pipeline: count only what it can see. */
    uint32_t sig = api->signals(inst);
    if (sig & SY_SIGNAL_TRACES) register_counts(s, SIG_TRACES);
    if (sig & SY_SIGNAL_LOGS) register_counts(s, SIG_LOGS);
    *state = s;
    return SY_OK;
}

static const sy_plugin_t ps_descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "probabilistic_sampler",
    .signals = SY_SIGNAL_TRACES | SY_SIGNAL_LOGS,
    .flags = SY_PLUGIN_MUTATES_DATA,
    .version = "1.0",
    .description = "Keeps a share of spans and log records, with the collector's decisions.",
    .config_fields = ps_fields,
    .config_field_count = sizeof(ps_fields) / sizeof(ps_fields[0]),
    .config_size = sizeof(ps_config_t),
    .validate = ps_validate,
    .create = ps_create,
    .consume = ps_consume,
    .destroy = ps_destroy,
};
SY_PLUGIN_DEFINE(ps_descriptor)
