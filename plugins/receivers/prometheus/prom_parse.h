/*
 * prom_parse.h - the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0
 * text format, parsed into samples and metric metadata.
 *
 * No plugin API here: the parser, the arena and the string map are plain C so that
 * the unit tests and the fuzz target drive them directly. Everything a parse makes
 * lives in the document's arena and is freed with prom_doc_free().
 */
#ifndef SY_PROM_PARSE_H
#define SY_PROM_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- a bump arena of malloc'ed chunks ----------------------------------------- */

typedef struct prom_chunk_s prom_chunk_t;
typedef struct prom_arena_s {
    prom_chunk_t *head;
    size_t used, cap; /* of head */
    size_t total;     /* bytes handed out, for the size bound */
    size_t limit;     /* 0: no bound */
} prom_arena_t;

/* 16-byte aligned memory freed with prom_arena_free(); NULL when out of memory or
 * over arena->limit. */
void *prom_arena_alloc(prom_arena_t *a, size_t size);
char *prom_arena_strndup(prom_arena_t *a, const char *s, size_t n);
void prom_arena_free(prom_arena_t *a);

/* ---- an open-addressing map from byte strings to pointers --------------------- */

typedef struct prom_map_entry_s {
    const char *key; /* not owned */
    size_t len;
    uint64_t hash;
    void *value;
} prom_map_entry_t;

typedef struct prom_map_s {
    prom_map_entry_t *slots;
    size_t cap, count; /* cap is a power of two or 0 */
} prom_map_t;

void *prom_map_get(const prom_map_t *m, const char *key, size_t len);
/* Sets key -> value (the key's bytes must outlive the map). Returns 0 or -1 on out
 * of memory. */
int prom_map_put(prom_map_t *m, const char *key, size_t len, void *value);
void prom_map_free(prom_map_t *m);

/* ---- the document ------------------------------------------------------------- */

typedef enum prom_type_e {
    PROM_UNKNOWN = 0, /* "untyped" in the text format, "unknown" in OpenMetrics */
    PROM_COUNTER,
    PROM_GAUGE,
    PROM_HISTOGRAM,
    PROM_SUMMARY,
    PROM_INFO,
    PROM_STATESET,
    PROM_GAUGEHISTOGRAM,
} prom_type_t;

typedef struct prom_label_s {
    const char *name;
    const char *value; /* unescaped, NUL-terminated (a NUL inside is kept as is) */
} prom_label_t;

typedef struct prom_meta_s {
    const char *name; /* the family name of # TYPE / # HELP / # UNIT */
    prom_type_t type;
    bool has_type;    /* a # TYPE line was seen */
    const char *help; /* unescaped; NULL when absent */
    const char *unit; /* OpenMetrics # UNIT; NULL when absent */
} prom_meta_t;

typedef struct prom_sample_s {
    const char *name;
    prom_label_t *labels; /* in the order written */
    size_t nlabels;
    double value;
    bool has_ts;
    int64_t ts_ms; /* the text format's milliseconds; OpenMetrics seconds * 1000 */
} prom_sample_t;

typedef struct prom_doc_s {
    prom_arena_t arena;
    prom_meta_t *metas;
    size_t nmetas, metas_cap;
    prom_sample_t *samples;
    size_t nsamples, samples_cap;
    prom_map_t meta_index; /* family name -> prom_meta_t * */
    bool openmetrics;
} prom_doc_t;

/* Bounds of one parse, beyond the body size the caller bounds. */
#define PROM_MAX_LABELS 256 /* labels of one sample */
#define PROM_MAX_ARENA  (256u << 20)

/*
 * Parses data[0, len) in the text format 0.0.4, or OpenMetrics 1.0 when
 * `openmetrics` (which then must end with "# EOF"). `doc` must be zeroed; free it
 * with prom_doc_free() whatever the result. `max_samples` bounds the samples (0: no
 * bound). Returns 0, or -1 with a sentence naming the line in err (the whole
 * document is refused, as Prometheus fails the scrape).
 */
int prom_parse(prom_doc_t *doc, const char *data, size_t len, bool openmetrics, size_t max_samples,
               char *err, size_t err_len);

/* The metadata of a family name, or NULL. */
const prom_meta_t *prom_doc_meta(const prom_doc_t *doc, const char *name);

void prom_doc_free(prom_doc_t *doc);

const char *prom_type_name(prom_type_t t);

/* Whether s is a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*) or label name
 * ([a-zA-Z_][a-zA-Z0-9_]*). */
bool prom_valid_metric_name(const char *s, size_t n);
bool prom_valid_label_name(const char *s, size_t n);

#endif
