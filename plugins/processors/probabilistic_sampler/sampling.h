/*
 * sampling.h - the arithmetic of OpenTelemetry consistent probability sampling
 * (thresholds and randomness of 56 bits, the `th` and `rv` values) and the W3C
 * `tracestate` with its `ot=` entry, as the collector's pkg/sampling does them,
 * for the probabilistic_sampler processor. Nothing here allocates.
 */
#ifndef PS_SAMPLING_H
#define PS_SAMPLING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 2^56: one past the largest randomness; as a threshold it never samples. */
#define PS_MAX_ADJUSTED_COUNT (UINT64_C(1) << 56)
#define PS_NEVER_THRESHOLD    PS_MAX_ADJUSTED_COUNT
#define PS_ALWAYS_THRESHOLD   UINT64_C(0)
/* The randomness given to items that have none: sampled at every probability. */
#define PS_ALL_RANDOMNESS (PS_MAX_ADJUSTED_COUNT - 1)
#define PS_HEX_DIGITS     14

/* Why a tracestate or a threshold was refused (the collector's error texts). */
typedef enum ps_err_e {
    PS_OK = 0,
    PS_ERR_SIZE,     /* "invalid tracestate size" */
    PS_ERR_SYNTAX,   /* "invalid syntax" */
    PS_ERR_RV_SIZE,  /* "r-value must have 14 hex digits" */
    PS_ERR_TH_SIZE,  /* "t-value exceeds 14 hex digits" */
    PS_ERR_TH_EMPTY, /* "t-value is empty" */
    PS_ERR_HEX,      /* "invalid syntax" (a digit that is not hex) */
} ps_err_t;

const char *ps_err_text(ps_err_t e);

/* The FNV-1a 32-bit hash of the 4 little-endian bytes of seed, then data. */
uint32_t ps_fnv_hash(const uint8_t *data, size_t len, uint32_t seed);
/* The collector's 56-bit randomness made of that hash (hash_seed mode): the
 * 14 bits it compares, as R' = 0x3fff - (hash & 0x3fff), on top. */
uint64_t ps_hash_randomness(const uint8_t *data, size_t len, uint32_t seed);
/* The least significant 7 bytes of a 16-byte trace id, big-endian. */
uint64_t ps_trace_id_randomness(const uint8_t id[16]);

/* ProbabilityToThresholdWithPrecision: 0 and a threshold, or -1 when the
 * probability is outside [2^-56, 1]. precision 1..14 (0: 14). */
int ps_probability_to_threshold(double fraction, int precision, uint64_t *out);
double ps_threshold_probability(uint64_t th);
/* The `th` value of a threshold: "0" for always, trailing zeros dropped, "" for
 * never. buf holds at least 15 bytes; returns the length. */
size_t ps_threshold_tvalue(uint64_t th, char *buf);
/* 14 lowercase hex digits; buf holds at least 15 bytes. */
void ps_randomness_rvalue(uint64_t rnd, char *buf);
ps_err_t ps_parse_tvalue(const char *s, size_t len, uint64_t *out);
ps_err_t ps_parse_rvalue(const char *s, size_t len, uint64_t *out);

/* A slice of the input string. */
typedef struct ps_str_s {
    const char *p;
    size_t len;
} ps_str_t;

typedef struct ps_kv_s {
    ps_str_t key, value;
} ps_kv_t;

#define PS_MAX_W3C_MEMBERS 32
#define PS_MAX_OT_MEMBERS  128 /* 256 bytes hold at most 128 "k:" members */

/*
 * A parsed tracestate, as the collector's W3CTraceState: the `ot` entry's rv, th
 * and other members, and the other vendors' entries, in order. On an error the
 * state holds what the collector's parser had kept by then.
 */
typedef struct ps_tracestate_s {
    ps_str_t rvalue; /* empty: no rv */
    uint64_t rnd;
    ps_str_t tvalue; /* empty: no th; points into tbuf once updated */
    uint64_t threshold;
    char tbuf[16];
    char rbuf[16];
    size_t n_ot, n_w3c;
    ps_kv_t ot[PS_MAX_OT_MEMBERS];
    ps_kv_t w3c[PS_MAX_W3C_MEMBERS];
} ps_tracestate_t;

/* Parses a W3C tracestate; PS_OK or the first error (later ones are dropped, as
 * only the fact of an error matters to the sampler). */
ps_err_t ps_tracestate_parse(ps_tracestate_t *ts, const char *s, size_t len);
bool ps_tracestate_has_rv(const ps_tracestate_t *ts);
bool ps_tracestate_has_th(const ps_tracestate_t *ts);
void ps_tracestate_set_rv(ps_tracestate_t *ts, uint64_t rnd);
void ps_tracestate_clear_th(ps_tracestate_t *ts);
/* UpdateTValueWithSampling: -1 (nothing changed) when it would raise the
 * sampling probability of an existing th. */
int ps_tracestate_update_th(ps_tracestate_t *ts, uint64_t th);
/* Writes the tracestate (the `ot` entry first); returns its length, or 0 when it
 * does not fit in cap (cap 2048 always fits a parsed one). */
size_t ps_tracestate_serialize(const ps_tracestate_t *ts, char *out, size_t cap);

#endif
