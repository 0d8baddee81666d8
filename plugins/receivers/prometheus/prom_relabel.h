/*
 * prom_relabel.h - label sets and Prometheus relabeling (metric_relabel_configs).
 *
 * The semantics are Prometheus's (model/relabel): the source labels' values are
 * joined with the separator and matched against the regex, anchored at both ends;
 * replacement and target_label expand $1, ${1}, $name and ${name} as Go's
 * regexp.Expand does ($$ is a dollar, a malformed reference is kept as text, an
 * unknown group is empty). Regexes are PCRE2 (Prometheus uses RE2: the common
 * syntax is the same; RE2 has no backreferences or lookaround, PCRE2 does).
 */
#ifndef SY_PROM_RELABEL_H
#define SY_PROM_RELABEL_H

#include <stdbool.h>
#include <stddef.h>

#include "prom_parse.h"

/* A label set sorted by name, its array and strings in an arena. */
typedef struct prom_labels_s {
    prom_label_t *v;
    size_t n, cap;
    prom_arena_t *arena;
} prom_labels_t;

const char *prom_labels_get(const prom_labels_t *ls, const char *name);
/* Sets name=value (copied into the arena); an empty value deletes the label.
 * Returns 0 or -1 on out of memory. */
int prom_labels_set(prom_labels_t *ls, const char *name, const char *value);
void prom_labels_del(prom_labels_t *ls, const char *name);

typedef enum prom_relabel_action_e {
    PROM_RL_REPLACE = 0,
    PROM_RL_KEEP,
    PROM_RL_DROP,
    PROM_RL_KEEPEQUAL,
    PROM_RL_DROPEQUAL,
    PROM_RL_LABELMAP,
    PROM_RL_LABELDROP,
    PROM_RL_LABELKEEP,
    PROM_RL_LOWERCASE,
    PROM_RL_UPPERCASE,
} prom_relabel_action_t;

typedef struct prom_relabel_s {
    prom_relabel_action_t action;
    char **source_labels; /* malloc'ed, like every string here */
    size_t nsource;
    char *separator;    /* default ";" */
    char *regex;        /* as written; default "(.*)" */
    char *target_label; /* NULL when absent */
    char *replacement;  /* default "$1" */
    void *re;           /* pcre2_code_8 * of ^(?:regex)\z */
    void *md;           /* pcre2_match_data_8 * */
} prom_relabel_t;

/* The action of a name ("replace", "keep", ...); -1 when unknown. */
int prom_relabel_action_parse(const char *name);

/* Compiles r->regex (setting defaults first) and checks the combination of keys
 * that the action needs. Returns 0, or -1 with a sentence in err. */
int prom_relabel_compile(prom_relabel_t *r, char *err, size_t err_len);
void prom_relabel_free(prom_relabel_t *r);

/* Applies rules[0, n) in order. Returns 1 when the label set is kept, 0 when a
 * keep/drop rule dropped it, -1 on out of memory. */
int prom_relabel_apply(prom_relabel_t *rules, size_t n, prom_labels_t *ls);

#endif
