/*
 * telemetry_internal.h - what the telemetry files share and nothing else uses:
 * the registry's data (families of series, each series' value or reader) and the
 * mutex that guards the lists. telemetry_registry.c owns and changes them;
 * telemetry_render.c reads them under the mutex; telemetry.c frees them at
 * shutdown. The public interface stays telemetry.h.
 */
#ifndef SY_TELEMETRY_INTERNAL_H
#define SY_TELEMETRY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "telemetry.h"

/* All metrics of one exposed name. */
typedef struct sy__family_s {
    char *name; /* exposed: prefix and, for counters, "_total" included */
    char *help;
    sy_metric_type_t type;
    sy_metric_t *series;       /* sorted by labels */
    struct sy__family_s *next; /* sorted by name */
} sy__family_t;

struct sy_metric_s {
    /* Relaxed atomics: a sample is one independent number and orders nothing. */
    _Atomic int64_t value;
    sy__family_t *family;
    char *labels; /* "" when none; escaped */
    sy__gauge_fn fn;
    sy__gauge_double_fn dfn;
    void *arg;
    sy_metric_t *next;
};

/* Guards the lists (not the values): taken by registration, unregistration and
 * rendering. */
extern pthread_mutex_t sy__registry_mu;
/* Families sorted by name; guarded by sy__registry_mu. */
extern sy__family_t *sy__families;

/* Unlinks every family and frees them with their series. Every sy_metric_t *
 * handed out is invalid afterwards. Main thread, at exit. */
void sy__metrics_free_all(void);

#endif /* SY_TELEMETRY_INTERNAL_H */
