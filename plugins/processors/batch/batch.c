/*
 * batch.c - the `batch` processor: gathers items into larger batches.
 *
 * Semantics follow the collector's batchprocessor. Incoming batches are held (by
 * reference, never copied) per signal until either
 *   - the items held reach send_batch_size: they are merged and sent, cut into
 *     pieces of at most send_batch_max_size items when that is set, and what is
 *     left under send_batch_size stays held; or
 *   - `timeout` has passed since the first item of the current batch arrived:
 *     everything held is sent (again in pieces of at most send_batch_max_size).
 * With timeout 0 nothing is held: every batch is sent at once, only cut to
 * send_batch_max_size. shutdown() sends everything still held.
 *
 * Threads: all callbacks and the timers run on the instance's loop thread (the
 * worker of its pipeline), so the state needs no locks.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#define NSIGNALS 3
/* When this many batches are held for one signal they are merged into one, so
 * that a small send_batch_size-less configuration (timeout only) holding many
 * tiny batches keeps a bounded array. */
#define HELD_COMPACT_AT 64
/* The collector stores both sizes as uint32. */
#define SIZE_LIMIT UINT32_MAX

typedef struct batch_config_s {
    int64_t send_batch_size;
    int64_t send_batch_max_size;
    int64_t timeout; /* nanoseconds */
    const sy_cfg_node_t *metadata_keys;
    int64_t metadata_cardinality_limit;
} batch_config_t;

typedef struct batch_state_s batch_state_t;

/* What is held for one signal. */
typedef struct pending_s {
    batch_state_t *owner;
    sy_batch_t **held; /* references we own, in arrival order */
    size_t nheld;
    size_t cap;
    uint64_t items;    /* items in held[] */
    sy_timer_t *timer; /* running while items > 0 and timeout > 0 */
} pending_t;

struct batch_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const batch_config_t *cfg;
    uint64_t size;     /* send_batch_size */
    uint64_t max_size; /* send_batch_max_size, 0 = no cap */
    uint64_t timeout_ms;
    bool stopped; /* shutdown() ran: pass batches straight on */
    pending_t pending[NSIGNALS];

    sy_metric_t *m_send_size;    /* gauge: items of the last batch sent */
    sy_metric_t *m_timeout_send; /* counter: sends triggered by the timeout */
    sy_metric_t *m_size_send;    /* counter: sends triggered by send_batch_size */
    sy_metric_t *m_failed_items; /* counter: items lost because emit failed */
};

typedef enum trigger_e { TRIGGER_SIZE, TRIGGER_TIMEOUT } trigger_t;

static const sy_config_field_t batch_fields[] = {
    {SY_CFG_FIELD("send_batch_size", SY_CFG_INT, batch_config_t, send_batch_size),
     .default_value = "8192", .min = "0",
     .max = "4294967295", /* SIZE_LIMIT: the collector's uint32 */
     .description = "Number of items after which a batch is sent regardless of the timeout. A "
                    "trigger, not a cap: a batch may hold more. `0` sends on the timeout only."},
    {SY_CFG_FIELD("send_batch_max_size", SY_CFG_INT, batch_config_t, send_batch_max_size),
     .default_value = "0", .min = "0", .max = "4294967295",
     .description = "Upper limit of a batch's items; larger batches are split. `0` means no limit; "
                    "otherwise it must be at least `send_batch_size`."},
    {SY_CFG_FIELD("timeout", SY_CFG_DURATION, batch_config_t, timeout), .default_value = "200ms",
     .description = "Time after the first item of a batch at which it is sent regardless of its "
                    "size. `0` sends every batch immediately (only cut to `send_batch_max_size`)."},
    {SY_CFG_FIELD("metadata_keys", SY_CFG_RAW, batch_config_t, metadata_keys),
     .description = "Accepted for compatibility and ignored (see below)."},
    {SY_CFG_FIELD("metadata_cardinality_limit", SY_CFG_INT, batch_config_t,
                  metadata_cardinality_limit),
     .default_value = "1000", .description = "Accepted for compatibility and ignored."},
};

static int signal_index(sy_signal_t signal)
{
    switch (signal) {
    case SY_SIGNAL_TRACES:
        return 0;
    case SY_SIGNAL_METRICS:
        return 1;
    case SY_SIGNAL_LOGS:
        return 2;
    }
    return -1;
}

static uint64_t batch_items(const batch_state_t *s, const sy_batch_t *b)
{
    sy_batch_info_t info;
    s->api->batch_info(b, &info);
    return info.items;
}

static int batch_validate(const void *config, char *err, size_t err_len)
{
    const batch_config_t *c = config;
    /* send_batch_size and send_batch_max_size are bounded by the field table
     * (0 to SIZE_LIMIT); the host refused a value outside with its position. */
    if (c->send_batch_max_size > 0 && c->send_batch_max_size < c->send_batch_size) {
        snprintf(err, err_len, "send_batch_max_size must be greater or equal to send_batch_size");
        return SY_EINVAL;
    }
    if (c->timeout < 0) {
        snprintf(err, err_len, "timeout must be greater or equal to 0");
        return SY_EINVAL;
    }
    if (c->metadata_cardinality_limit < 0) {
        snprintf(err, err_len, "metadata_cardinality_limit must be greater or equal to 0");
        return SY_EINVAL;
    }
    return SY_OK;
}

/*
 * Sends one batch downstream and accounts for it. Takes the reference in every
 * case: when emit() fails (only while the router shuts down) the batch is
 * released here and its items are counted as failed.
 */
static void send_one(batch_state_t *s, sy_batch_t *b, trigger_t trigger)
{
    uint64_t items = batch_items(s, b);
    int rc = s->api->emit(s->inst, b);
    if (rc != SY_OK) {
        s->api->batch_release(b);
        if (s->m_failed_items) s->api->metric_add(s->m_failed_items, (int64_t)items);
        SY_LOG(s->api, s->inst, SY_LOG_WARN,
               "dropped a batch of %" PRIu64 " items: the next component refused it (%d)", items,
               rc);
        return;
    }
    if (s->m_send_size) s->api->metric_set(s->m_send_size, (int64_t)items);
    sy_metric_t *m = trigger == TRIGGER_SIZE ? s->m_size_send : s->m_timeout_send;
    if (m) s->api->metric_add(m, 1);
}

/*
 * Sends `b` (a reference we own) in pieces of at most max_size items, while at
 * least `keep_below` items are left; returns what is left (NULL when nothing),
 * still owned by the caller. keep_below 0 or 1 sends everything.
 */
static sy_batch_t *send_pieces(batch_state_t *s, sy_batch_t *b, uint64_t keep_below,
                               trigger_t trigger)
{
    while (b && batch_items(s, b) >= (keep_below ? keep_below : 1)) {
        if (s->max_size == 0) {
            send_one(s, b, trigger);
            return NULL;
        }
        sy_batch_t *rest = b;
        sy_batch_t *piece = s->api->batch_split(s->inst, &rest, s->max_size);
        if (!piece) {
            /* Out of memory while splitting: sending the batch whole breaks the
             * size cap but loses nothing. */
            SY_LOG(s->api, s->inst, SY_LOG_WARN,
                   "could not split a batch of %" PRIu64 " items; sending it whole",
                   batch_items(s, b));
            send_one(s, b, trigger);
            return NULL;
        }
        send_one(s, piece, trigger);
        b = rest;
    }
    return b;
}

/*
 * Sends held[0..n) (references we own), merged in as few groups as the host
 * allows: a merge fails when its result would be too large to decode (or out of
 * memory), and then each half is tried on its own, down to single batches.
 */
static void send_in_groups(batch_state_t *s, sy_batch_t **held, size_t n, trigger_t trigger)
{
    sy_batch_t *m = n == 1 ? held[0] : s->api->batch_merge(s->inst, held, n);
    if (m) {
        if (n > 1)
            for (size_t i = 0; i < n; i++)
                s->api->batch_release(held[i]);
        sy_batch_t *left = send_pieces(s, m, 0, trigger);
        if (left) s->api->batch_release(left); /* an empty remainder */
        return;
    }
    send_in_groups(s, held, n / 2, trigger);
    send_in_groups(s, held + n / 2, n - n / 2, trigger);
}

/*
 * Merges every batch held for `p` into one reference and empties p->held.
 * Returns NULL when nothing is held. If merging fails (the merge would be too
 * large to decode, or out of memory), the held batches are sent in smaller
 * merged groups, so that nothing is lost and every batch sent still decodes.
 */
static sy_batch_t *take_merged(batch_state_t *s, pending_t *p, trigger_t trigger)
{
    sy_batch_t *out = NULL;
    if (p->nheld == 1) {
        out = p->held[0];
    } else if (p->nheld > 1) {
        out = s->api->batch_merge(s->inst, p->held, p->nheld);
        if (out) {
            for (size_t i = 0; i < p->nheld; i++)
                s->api->batch_release(p->held[i]);
        } else {
            SY_LOG(s->api, s->inst, SY_LOG_DEBUG,
                   "could not merge %zu batches into one (too large to decode, or out of "
                   "memory); sending them in smaller groups",
                   p->nheld);
            send_in_groups(s, p->held, p->nheld, trigger);
        }
    }
    p->nheld = 0;
    p->items = 0;
    return out;
}

static void stop_timer(batch_state_t *s, pending_t *p)
{
    if (p->timer) {
        s->api->timer_stop(p->timer);
        p->timer = NULL;
    }
}

/* Appends a reference to p->held; false on out of memory (nothing changed). */
static bool hold(pending_t *p, sy_batch_t *b, uint64_t items)
{
    if (p->nheld == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        sy_batch_t **held = realloc(p->held, cap * sizeof(*held));
        if (!held) return false;
        p->held = held;
        p->cap = cap;
    }
    p->held[p->nheld++] = b;
    p->items += items;
    return true;
}

/* Replaces many held batches by their merge, to keep p->held short. */
static void compact(batch_state_t *s, pending_t *p)
{
    sy_batch_t *m = s->api->batch_merge(s->inst, p->held, p->nheld);
    if (!m) return; /* keep them apart; hold() grows the array instead */
    for (size_t i = 0; i < p->nheld; i++)
        s->api->batch_release(p->held[i]);
    p->held[0] = m;
    p->nheld = 1;
}

static void on_timeout(void *arg);

static void start_timer(batch_state_t *s, pending_t *p)
{
    if (p->timer || s->timeout_ms == 0) return;
    p->timer = s->api->timer_start(s->inst, s->timeout_ms, 0, on_timeout, p);
    if (!p->timer)
        SY_LOG(s->api, s->inst, SY_LOG_WARN,
               "could not start the batch timer; items are sent by size or at shutdown");
}

/* Sends everything held for `p`, in pieces of at most send_batch_max_size. */
static void flush_all(batch_state_t *s, pending_t *p, trigger_t trigger)
{
    stop_timer(s, p);
    sy_batch_t *m = take_merged(s, p, trigger);
    if (m) send_pieces(s, m, 0, trigger);
}

/* The timer of one signal fired: `timeout` passed since its first held item. */
static void on_timeout(void *arg)
{
    pending_t *p = arg;
    batch_state_t *s = p->owner;
    flush_all(s, p, TRIGGER_TIMEOUT);
}

/*
 * The held items reached send_batch_size: sends full batches and keeps the rest
 * (fewer than send_batch_size items), whose own timeout starts now.
 */
static void flush_by_size(batch_state_t *s, pending_t *p)
{
    stop_timer(s, p);
    sy_batch_t *m = take_merged(s, p, TRIGGER_SIZE);
    sy_batch_t *rest = m ? send_pieces(s, m, s->size, TRIGGER_SIZE) : NULL;
    if (rest) {
        if (!hold(p, rest, batch_items(s, rest))) {
            send_one(s, rest, TRIGGER_SIZE); /* cannot hold it: do not lose it */
            return;
        }
        start_timer(s, p);
    }
}

static int batch_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                        void **state)
{
    const batch_config_t *cfg = config;
    batch_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = cfg;
    s->size = (uint64_t)cfg->send_batch_size;
    s->max_size = (uint64_t)cfg->send_batch_max_size;
    /* Round up, so that a sub-millisecond timeout still buffers. */
    s->timeout_ms = (uint64_t)(cfg->timeout / 1000000) + (cfg->timeout % 1000000 != 0);
    for (int i = 0; i < NSIGNALS; i++)
        s->pending[i].owner = s;

    s->m_send_size =
        api->metric_register(inst, "processor_batch_batch_send_size",
                             "Number of items in the last batch sent.", SY_METRIC_GAUGE);
    s->m_timeout_send = api->metric_register(
        inst, "processor_batch_timeout_trigger_send",
        "Number of times a batch was sent because of the timeout.", SY_METRIC_COUNTER);
    s->m_size_send = api->metric_register(
        inst, "processor_batch_batch_size_trigger_send",
        "Number of times a batch was sent because it reached send_batch_size.", SY_METRIC_COUNTER);
    s->m_failed_items = api->metric_register(
        inst, "processor_batch_emit_failed_items",
        "Items dropped because the next component refused them during shutdown.",
        SY_METRIC_COUNTER);

    if (cfg->metadata_keys && api->cfg_kind(cfg->metadata_keys) != 'n')
        SY_LOG(api, inst, SY_LOG_INFO,
               "metadata_keys is accepted for compatibility and ignored: batches carry no "
               "client metadata");
    *state = s;
    return SY_OK;
}

static int batch_start(void *state)
{
    (void)state;
    return SY_OK;
}

static int batch_consume(void *state, sy_batch_t *batch)
{
    batch_state_t *s = state;
    sy_batch_info_t info;
    s->api->batch_info(batch, &info);
    int idx = signal_index(info.signal);
    if (idx < 0) return SY_EINVAL;
    if (info.items == 0) {
        s->api->batch_release(batch); /* nothing in it worth sending */
        return SY_OK;
    }
    if (s->stopped || s->timeout_ms == 0) {
        /* No buffering: send now, only cut to send_batch_max_size. */
        send_pieces(s, batch, 0, TRIGGER_SIZE);
        return SY_OK;
    }
    pending_t *p = &s->pending[idx];
    if (p->nheld >= HELD_COMPACT_AT) compact(s, p);
    /* Held for a while: its bytes now, so that a view the processors before left
     * with it (docs/view.md, the shared view) is written and freed rather than
     * kept while the batch waits. The merge would ask for them anyway. */
    s->api->batch_encoded(batch, NULL);
    if (!hold(p, batch, info.items)) return SY_ENOMEM; /* still the caller's */
    if (s->size > 0 && p->items >= s->size) {
        flush_by_size(s, p);
        return SY_OK;
    }
    start_timer(s, p);
    return SY_OK;
}

/* Sends everything held and stops the timers; later batches pass straight on. */
static void batch_shutdown(void *state)
{
    batch_state_t *s = state;
    for (int i = 0; i < NSIGNALS; i++)
        flush_all(s, &s->pending[i], TRIGGER_TIMEOUT);
    s->stopped = true;
}

static void batch_destroy(void *state)
{
    batch_state_t *s = state;
    for (int i = 0; i < NSIGNALS; i++) {
        pending_t *p = &s->pending[i];
        /* Only left when shutdown() never ran; the timers are gone with the loop. */
        for (size_t j = 0; j < p->nheld; j++)
            s->api->batch_release(p->held[j]);
        free(p->held);
    }
    free(s);
}

static const sy_plugin_t batch_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "batch",
    .signals = SY_SIGNAL_ALL,
    .flags = 0,
    .version = "0.1.0",
    .description = "Gathers items into batches by size and time, as the collector's batch "
                   "processor.",
    SY_CFG_TABLE(batch_fields),
    .config_size = sizeof(batch_config_t),
    .validate = batch_validate,
    .create = batch_create,
    .start = batch_start,
    .consume = batch_consume,
    .shutdown = batch_shutdown,
    .destroy = batch_destroy,
};

SY_PLUGIN_DEFINE(batch_plugin)
