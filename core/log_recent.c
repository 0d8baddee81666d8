/*
 * log_recent.c - the last warnings and errors of each component, kept for the
 * status page (api->status_json(), the zpages extension): "what went wrong
 * lately" next to the component that said it.
 *
 * One small ring per component ID that has ever logged at warn or error level,
 * allocated the first time it does; a component that never complains costs
 * nothing. Components are found by their ID in a small hash table. Both are
 * guarded by one mutex, taken only on the warn/error path (which the core and
 * well-behaved plugins rate-limit) and by readers, and never held while calling
 * anything else.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SY__LOG_RECENT_BUCKETS 64
/* At most this many components get a ring; later ones are not recorded (a
 * plugin logging under made-up IDs cannot grow the table without bound). */
#define SY__LOG_RECENT_MAX_COMPONENTS 4096

typedef struct recent_ring_s {
    struct recent_ring_s *next; /* in its bucket */
    char *component;
    unsigned head;  /* where the next record goes */
    unsigned count; /* records held, at most SY__LOG_RECENT_PER_COMPONENT */
    sy__log_recent_t rec[SY__LOG_RECENT_PER_COMPONENT];
} recent_ring_t;

static pthread_mutex_t recent_mu = PTHREAD_MUTEX_INITIALIZER;
static recent_ring_t *recent_buckets[SY__LOG_RECENT_BUCKETS]; /* guarded by recent_mu */
static size_t recent_components;                              /* guarded by recent_mu */

/* FNV-1a: the IDs are short and few. */
static unsigned recent_bucket(const char *component)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)component; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % SY__LOG_RECENT_BUCKETS;
}

/* The ring of `component`, made when `create` is set. recent_mu held. */
static recent_ring_t *recent_find(const char *component, bool create)
{
    unsigned b = recent_bucket(component);
    for (recent_ring_t *r = recent_buckets[b]; r; r = r->next)
        if (strcmp(r->component, component) == 0) return r;
    if (!create || recent_components >= SY__LOG_RECENT_MAX_COMPONENTS) return NULL;
    recent_ring_t *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->component = strdup(component);
    if (!r->component) {
        free(r);
        return NULL;
    }
    r->next = recent_buckets[b];
    recent_buckets[b] = r;
    recent_components++;
    return r;
}

void sy__log_recent_add(const char *component, sy_log_level_t level, int64_t time_unix_ms,
                        const char *message, size_t len)
{
    if (level < SY_LOG_WARN) return;
    const char *c = component ? component : "service";
    if (len >= SY__LOG_RECENT_MSG_MAX) len = SY__LOG_RECENT_MSG_MAX - 1;
    pthread_mutex_lock(&recent_mu);
    recent_ring_t *r = recent_find(c, true);
    if (r) {
        sy__log_recent_t *e = &r->rec[r->head];
        e->time_unix_ms = time_unix_ms;
        e->level = level;
        memcpy(e->message, message, len);
        e->message[len] = '\0';
        r->head = (r->head + 1) % SY__LOG_RECENT_PER_COMPONENT;
        if (r->count < SY__LOG_RECENT_PER_COMPONENT) r->count++;
    }
    pthread_mutex_unlock(&recent_mu);
}

size_t sy__log_recent(const char *component, sy__log_recent_t *out, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&recent_mu);
    recent_ring_t *r = recent_find(component ? component : "service", false);
    if (r) {
        /* Oldest first: the ring's oldest record sits at head once it is full. */
        unsigned first =
            (r->head + SY__LOG_RECENT_PER_COMPONENT - r->count) % SY__LOG_RECENT_PER_COMPONENT;
        size_t skip = r->count > max ? r->count - max : 0; /* keep the newest */
        for (size_t i = skip; i < r->count; i++)
            out[n++] = r->rec[(first + i) % SY__LOG_RECENT_PER_COMPONENT];
    }
    pthread_mutex_unlock(&recent_mu);
    return n;
}

void sy__log_recent_reset(void)
{
    pthread_mutex_lock(&recent_mu);
    for (size_t b = 0; b < SY__LOG_RECENT_BUCKETS; b++) {
        while (recent_buckets[b]) {
            recent_ring_t *r = recent_buckets[b];
            recent_buckets[b] = r->next;
            free(r->component);
            free(r);
        }
    }
    recent_components = 0;
    pthread_mutex_unlock(&recent_mu);
}
