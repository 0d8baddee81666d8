/*
 * ts_policy.h - the sampling policies of the tail_sampling processor: parsed
 * from the `policies` list as the collector's tailsamplingprocessor spells them,
 * and evaluated on one held trace (its spans are view nodes of retained
 * batches, still encoded).
 *
 * Decisions are the collector's (internal/sampling/policy.go): a policy says
 * Sampled or NotSampled; the attribute filters with invert_match say
 * InvertSampled or InvertNotSampled; drop says Dropped; an evaluation error is
 * reported as a negative return. The processor combines them (tail_sampling.c).
 * One thread: the rate limiters and the OTTL scratch are the policy's state.
 */
#ifndef TS_POLICY_H
#define TS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "ottl_view.h"

typedef enum ts_decision_e {
    TS_UNSPECIFIED = 0,
    TS_SAMPLED,
    TS_NOT_SAMPLED,
    TS_DROPPED,
    TS_INVERT_SAMPLED,
    TS_INVERT_NOT_SAMPLED,
    TS_DECISION_COUNT_
} ts_decision_t;

/* One held span: its node in the view of a retained batch. */
typedef struct ts_span_s {
    sy_view_node_t *node;
    struct ts_held_s *held;
} ts_span_t;

/* What a policy sees of a trace. */
typedef struct ts_trace_data_s {
    const uint8_t *id; /* 16 bytes */
    const ts_span_t *spans;
    size_t nspans;
    uint64_t bytes; /* estimated encoded size of its spans */
} ts_trace_data_t;

/* Evaluation state shared by every policy of one processor instance. */
typedef struct ts_eval_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    syc_ottl_scratch_t *scratch;
    syc_ottl_view_item_t item;
    uint64_t now_ns; /* monotonic, for the rate limiters */
} ts_eval_t;

typedef struct ts_policy_s ts_policy_t;

/* Every policy of the `policies` list, drop policies first (they win, and the
 * collector evaluates them first so that it can stop early). */
typedef struct ts_policies_s {
    ts_policy_t **list;
    size_t count;
} ts_policies_t;

/*
 * Parses the `policies` node (a SY_CFG_RAW list). On error fills err with
 * "file:line:col: policies[i]...: what is wrong" (the collector's wording where it
 * has one) and returns SY_EINVAL; SY_ENOMEM. Whatever was parsed is freed by
 * ts_policies_free in every case.
 */
int ts_policies_parse(const sy_host_api_t *api, const sy_cfg_node_t *node, ts_policies_t *out,
                      char *err, size_t err_len);
void ts_policies_free(ts_policies_t *ps);

/* The policy's name as configured, and its type's name. */
const char *ts_policy_name(const ts_policy_t *p);
const char *ts_policy_type_name(const ts_policy_t *p);
bool ts_policy_is_drop(const ts_policy_t *p);

/* The state of an `adaptive` policy (ts_adaptive.h), NULL for any other type. */
struct ts_adaptive_s *ts_policy_adaptive(ts_policy_t *p);

/* Evaluates p on the trace: 0 with *out set, or a negative SY_E* (an OTTL
 * condition that failed under error_mode propagate). */
int ts_policy_eval(ts_policy_t *p, ts_eval_t *ev, const ts_trace_data_t *t, ts_decision_t *out);

/* The collector's probabilistic policy: FNV-1a 64 of the salt then the trace ID,
 * kept when at most floor(2^64-1 * percentage / 100). Exposed for the tests'
 * known-answer checks through the processor. */
uint64_t ts_hash_trace_id(const char *salt, size_t salt_len, const uint8_t id[16]);
uint64_t ts_threshold(double percentage);

#endif
