/*
 * redaction_walk.h - the redaction processor inside map and array values: log
 * bodies (as the collector's processLogBody / redactLogBodyRecursive) and, beyond
 * the collector, attribute values that are maps or arrays. Every key inside is
 * checked as an attribute key (ignored, not allowed, blocked key pattern) and
 * every scalar inside as a value (allowed_values, blocked_values, detectors), and
 * the container is written anew, encoded, when anything inside changed.
 *
 * What was done is reported by the path of each entry ("user.card",
 * "items.[2]"), the collector's spelling, in the summary lists below.
 */
#ifndef SY_REDACTION_WALK_H
#define SY_REDACTION_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "redaction_rules.h"

/* How deep a map or array may nest before it is masked whole (fails closed). */
#define RD_MAX_DEPTH 32

/* A key or path for the summary: points into the batch (p set), or into the
 * walk's path store at off (p NULL until rd_walk_fix()). */
typedef struct rd_key_s {
    const char *p;
    size_t len;
    size_t off;
} rd_key_t;

typedef struct rd_keylist_s {
    rd_key_t *k;
    size_t n, cap;
} rd_keylist_t;

/* The summary lists a walk adds to. */
typedef struct rd_lists_s {
    rd_keylist_t *redacted, *masked, *allowed, *ignored;
} rd_lists_t;

typedef struct rd_walk_s {
    const sy_host_api_t *api;
    rd_rules_t *rules;
    syc_buf_t level[RD_MAX_DEPTH + 1]; /* encoded content of the container at each depth */
    syc_buf_t path;                    /* the path of the entry being looked at */
    syc_buf_t store;                   /* the paths put into the lists */
    syc_buf_t text;                    /* a scalar as a string */
    uint64_t detected;                 /* detector matches */
    bool oom;
} rd_walk_t;

/* Appends (p, len) to l; sets *oom when out of memory. */
void rd_keylist_push(rd_keylist_t *l, const char *p, size_t len, bool *oom);

/*
 * Walks the ARRAY or MAP value v (as read from a view), whose own path is
 * prefix[0, plen) (empty for a body). Adds what it did to the lists. Returns 1
 * when something inside changed, with the new value in *out (its encoded content
 * in w->level[0], valid until the next walk), 0 when nothing did, or SY_ENOMEM.
 */
int rd_walk(rd_walk_t *w, const sy_value_t *v, const char *prefix, size_t plen,
            const rd_lists_t *lists, sy_value_t *out);

/* Points the path entries of l (p NULL) into the path store. */
void rd_walk_fix(rd_walk_t *w, rd_keylist_t *l);

/* Forgets the paths stored (at the start of a node). */
void rd_walk_reset(rd_walk_t *w);

void rd_walk_free(rd_walk_t *w);

#endif
