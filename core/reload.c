/*
 * reload.c - applying a new configuration to the running router without losing
 * or duplicating anything it acknowledged.
 *
 * The new engine is built (and so checked) in full before anything changes. A
 * receiver, exporter or extension whose configuration is the same in both (same
 * plugin, same settings, the same signals, and no reference to an extension that
 * changed) is kept: the running instance moves into the new engine untouched,
 * its sockets open. Everything else of the new engine starts beside the old one:
 *
 *   1. the new engine adopts the old one's receiver, exporter and extension
 *      worker pools (kept components live there) and starts its own pipelines'
 *      pool; added extensions start, then the new exporters (queues open, plugin
 *      not yet started: see 5), connectors and pipelines with their processors;
 *   2. each kept receiver is switched to the new pipelines on its own thread, so
 *      every batch it accepts goes either to the old pipelines or to the new;
 *      a kept exporter is fed by both generations meanwhile;
 *   3. receivers that changed or went away stop (their port closes), and the new
 *      ones that replace them start;
 *   4. the old pipelines drain, in chain order through their connectors, into
 *      the old exporters and the kept ones; the old exporters that are not kept
 *      then drain their queues to their backends and stop;
 *   5. extensions that changed or went away stop, their new versions start, and
 *      then the new exporters' plugins (an exporter that listens, such as the
 *      prometheus exporter, can bind its port only once its old self is gone);
 *      what the new pipelines gave them meanwhile waited in their queues.
 *
 * A failure in 1 (a new component does not start) undoes what had started and
 * leaves the old engine running as it was. Instances stopped on a worker that
 * goes on running are destroyed only when that worker ends (the contract of
 * destroy(): no handles left on its loop). Main thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "log.h"

/* ---- what is kept -------------------------------------------------------------- */

static bool node_null(const sy_cfg_node_t *n)
{
    return !n || n->kind == SY__CFG_NULL || (n->kind == SY__CFG_MAP && n->len == 0);
}

/* Whether two configuration trees say the same (positions do not matter). */
static bool node_equal(const sy_cfg_node_t *a, const sy_cfg_node_t *b)
{
    if (node_null(a) || node_null(b)) return node_null(a) && node_null(b);
    if (a->kind != b->kind) return false;
    if (a->kind == SY__CFG_SCALAR) return a->quoted == b->quoted && !strcmp(a->scalar, b->scalar);
    if (a->len != b->len) return false;
    for (size_t i = 0; i < a->len; i++) {
        if (a->kind == SY__CFG_MAP && strcmp(a->keys[i], b->keys[i]) != 0) return false;
        if (!node_equal(a->items[i], b->items[i])) return false;
    }
    return true;
}

/* Whether a scalar anywhere under n is `id` (how a component names an extension:
 * `auth: {authenticator: basicauth/in}`). */
static bool node_mentions(const sy_cfg_node_t *n, const char *id)
{
    if (!n) return false;
    if (n->kind == SY__CFG_SCALAR) return !strcmp(n->scalar, id);
    for (size_t i = 0; i < n->len; i++)
        if (node_mentions(n->items[i], id)) return true;
    return false;
}

static sy_instance_t *find_old(sy__engine_t *old, const sy_instance_t *y)
{
    for (size_t i = 0; i < old->ninstances; i++) {
        sy_instance_t *x = old->instances[i];
        if (x->kind == y->kind && !strcmp(x->id, y->id)) return x;
    }
    return NULL;
}

static bool keepable_kind(sy_kind_t k)
{
    return k == SY_KIND_RECEIVER || k == SY_KIND_EXPORTER || k == SY_KIND_EXTENSION;
}

/* Whether old extension ext goes on in nu (decided in decide()'s first pass). */
static bool ext_kept(const sy__engine_t *nu, const sy_instance_t *ext)
{
    for (size_t k = 0; k < nu->ninstances; k++)
        if (nu->instances[k]->keep == ext) return true;
    return false;
}

/* Sets y->keep for every instance of nu whose running twin in old can go on. */
static void decide(sy__engine_t *old, sy__engine_t *nu)
{
    for (int pass = 0; pass < 2; pass++) { /* extensions first: the others look at them */
        for (size_t i = 0; i < nu->ninstances; i++) {
            sy_instance_t *y = nu->instances[i];
            if (!keepable_kind(y->kind) || (y->kind == SY_KIND_EXTENSION) != (pass == 0)) continue;
            sy_instance_t *x = find_old(old, y);
            if (!x || !x->started || x->file != y->file || x->signals != y->signals ||
                !node_equal(x->cfg->node, y->cfg->node))
                continue;
            bool uses_changed = false;
            for (size_t j = 0; j < old->ninstances && !uses_changed && pass == 1; j++) {
                sy_instance_t *ext = old->instances[j];
                uses_changed = ext->kind == SY_KIND_EXTENSION && !ext_kept(nu, ext) &&
                               node_mentions(y->cfg->node, ext->id);
            }
            if (!uses_changed) y->keep = x;
        }
    }
}

/* The old instance that y stands for, or y. */
static sy_instance_t *resolved(sy_instance_t *y)
{
    return y->keep ? y->keep : y;
}

/* ---- moving between threads ------------------------------------------------------ */

typedef struct swap_s {
    sy_instance_t *x;
    sy__pipeline_t **outputs; /* receiver: its new outputs */
    size_t noutputs;
    sy__pipeline_t **feeders; /* exporter: its new feeders */
    size_t nfeeders;
} swap_t;

/* On the receiver's worker: from its next emit on, it feeds the new pipelines. */
static void swap_outputs_on(void *arg)
{
    swap_t *s = arg;
    sy__pipeline_t **prev = s->x->recv.outputs;
    s->x->recv.outputs = s->outputs;
    s->x->recv.noutputs = s->noutputs;
    s->outputs = prev;
}

/* On the exporter's worker: the pipelines it wakes when it makes room. */
static void swap_feeders_on(void *arg)
{
    swap_t *s = arg;
    sy__pipeline_t **prev = s->x->exp.feeders;
    s->x->exp.feeders = s->feeders;
    s->x->exp.nfeeders = s->nfeeders;
    s->feeders = prev;
    sy__exporter_ready(s->x); /* whoever waited is woken */
}

static int call_on(sy__engine_t *e, sy_instance_t *x, sy__thread_fn fn, void *arg)
{
    int rc = sy__thread_call(x->thread, fn, arg, sy__now_ms() + e->shutdown_timeout_ms);
    if (rc == SY__ETIMEDOUT) {
        e->wedged = true;
        SY__LOG(SY_LOG_ERROR, x->id, "did not answer within the shutdown timeout");
    }
    return rc;
}

/* Stops an instance on its worker. A receiver that stopped has no outputs left:
 * a late emit (a request that was already in flight) is refused, so the client
 * is told, rather than going to pipelines that are about to be freed. */
static void shutdown_on(void *arg)
{
    sy_instance_t *x = arg;
    sy__instance_shutdown(x);
    if (x->kind == SY_KIND_RECEIVER) x->recv.noutputs = 0;
}

static void drain_one_on(void *arg)
{
    sy__exporter_begin_drain(arg);
}

static void hand_over_begin_on(void *arg)
{
    sy__exporter_hand_over_begin(arg);
}

/* Removes x from e's instances (it is retired to its worker or moved). */
static void unlist(sy__engine_t *e, sy_instance_t *x)
{
    for (size_t i = 0; i < e->ninstances; i++) {
        if (e->instances[i] != x) continue;
        memmove(&e->instances[i], &e->instances[i + 1],
                (e->ninstances - i - 1) * sizeof(*e->instances));
        e->ninstances--;
        return;
    }
}

/* The worker of e's pools that runs thread t. */
static sy__worker_t *worker_of(sy__engine_t *e, const sy__thread_t *t)
{
    for (int r = 0; r < SY__ROLE_COUNT; r++)
        for (size_t i = 0; i < e->npools[r]; i++)
            if (&e->pools[r][i]->thread == t) return e->pools[r][i];
    return NULL;
}

/* x was stopped on a worker that goes on running: destroyed when it ends. */
static int retire(sy__engine_t *owner, sy__engine_t *from, sy_instance_t *x)
{
    sy__worker_t *w = worker_of(owner, x->thread);
    sy_instance_t **grown = w ? realloc(w->retired, (w->nretired + 1) * sizeof(*grown)) : NULL;
    if (!grown) return SY_ENOMEM; /* left listed: freed with its engine */
    w->retired = grown;
    w->retired[w->nretired++] = x;
    unlist(from, x);
    x->engine = owner; /* what its late callbacks reach through the host API */
    return SY_OK;
}

/* Waits until exporter x has drained and shut down, or the deadline passed. */
static bool wait_finished(sy_instance_t *x, uint64_t deadline)
{
    while (!atomic_load(&x->finished)) {
        if (sy__now_ms() > deadline) return false;
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return true;
}

/* ---- the steps -------------------------------------------------------------------- */

/* The roles whose workers a reload's new engine adopts, with their components' kind. */
static const struct {
    sy__role_t role;
    sy_kind_t kind;
} kept_roles[] = {{SY__ROLE_RECEIVER, SY_KIND_RECEIVER},
                  {SY__ROLE_EXPORTER, SY_KIND_EXPORTER},
                  {SY__ROLE_EXTENSION, SY_KIND_EXTENSION}};

/* Moves the receiver, exporter and extension pools of `from` to `to`, with the
 * workers still dying from earlier reloads. */
static void move_pools(sy__engine_t *from, sy__engine_t *to)
{
    for (size_t i = 0; i < 3; i++) {
        sy__role_t r = kept_roles[i].role;
        to->pools[r] = from->pools[r];
        to->npools[r] = from->npools[r];
        to->worker_seq[r] = from->worker_seq[r];
        to->first_free[r] = to->next_slot[r] = 0;
        from->pools[r] = NULL;
        from->npools[r] = 0;
        for (size_t j = 0; j < to->npools[r]; j++)
            to->pools[r][j]->engine = to;
    }
    to->dying = from->dying;
    to->ndying = from->ndying;
    from->dying = NULL;
    from->ndying = 0;
    for (size_t j = 0; j < to->ndying; j++)
        to->dying[j]->engine = to;
}

/* Joins and frees the dying workers whose loops have ended. */
static void reap(sy__engine_t *e)
{
    size_t kept = 0;
    for (size_t i = 0; i < e->ndying; i++) {
        if (sy__thread_try_join(&e->dying[i]->thread))
            sy__engine_free_worker(e->dying[i]);
        else
            e->dying[kept++] = e->dying[i];
    }
    e->ndying = kept;
}

/* Workers of the kept roles that nothing of e runs on any more are asked to end
 * (once the instances retired to them have closed their handles) and move to the
 * dying list: a router reloaded every minute for months keeps no more threads or
 * stopped components than it runs. */
static void prune(sy__engine_t *e)
{
    for (size_t k = 0; k < 3; k++) {
        sy__role_t r = kept_roles[k].role;
        size_t kept = 0;
        for (size_t i = 0; i < e->npools[r]; i++) {
            sy__worker_t *w = e->pools[r][i];
            bool live = false;
            for (size_t j = 0; j < e->ninstances && !live; j++)
                live = e->instances[j]->thread == &w->thread;
            sy__worker_t **grown =
                live ? NULL : realloc(e->dying, (e->ndying + 1) * sizeof(*grown));
            if (live || !grown ||
                sy__thread_stop_begin(&w->thread, sy__now_ms() + e->shutdown_timeout_ms) < 0) {
                if (grown) e->dying = grown;
                e->pools[r][kept++] = w;
                continue;
            }
            e->dying = grown;
            e->dying[e->ndying++] = w;
        }
        e->npools[r] = kept;
        e->first_free[r] = e->next_slot[r] = 0;
    }
}

/* Step 1. Starts nu's new parts beside old; SY_OK or a failure (undone by the
 * caller with undo_start). New receivers, exporters and extensions get workers
 * of their own, after the adopted ones, so that the old workers end (prune) once
 * nothing kept runs on them. */
static int start_new(sy__engine_t *old, sy__engine_t *nu)
{
    reap(old);
    move_pools(old, nu);
    for (size_t k = 0; k < 3; k++) {
        sy__role_t r = kept_roles[k].role;
        size_t fresh = 0;
        for (size_t i = 0; i < nu->ninstances; i++)
            fresh += nu->instances[i]->kind == kept_roles[k].kind && !nu->instances[i]->keep;
        size_t max = r == SY__ROLE_EXTENSION ? 1 : sy__engine_pool_max();
        nu->first_free[r] = nu->npools[r];
        if (sy__engine_add_workers(nu, r, fresh < max ? fresh : max) < 0) return SY_ERROR;
    }
    if (sy__engine_grow_pool(nu, SY__ROLE_PIPELINE, nu->npipelines) < 0) return SY_ERROR;
    /* Pipelines of nu push to the kept exporters themselves. */
    for (size_t i = 0; i < nu->npipelines; i++) {
        sy__pipeline_t *p = nu->pipelines[i];
        for (size_t j = 0; j < p->nexporters; j++)
            p->exporters[j] = resolved(p->exporters[j]);
    }
    /* Added extensions (a changed one waits for its old self to stop: step 5). */
    for (size_t i = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (y->kind != SY_KIND_EXTENSION || y->keep || find_old(old, y)) continue;
        if (sy__engine_start_instance(y) < 0) return SY_ERROR;
    }
    for (size_t i = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (y->kind == SY_KIND_EXPORTER && !y->keep && sy__engine_open_exporter(y, 0, false) < 0)
            return SY_ERROR;
    }
    /* An exporter that changed (same id, same plugin, no fewer signals) is
     * created now, beside its old self, so that the old one can hand it what is
     * left in its queues when it drains (step 4): the core's queue here
     * (runtime.c), the plugin's sending queue in exporterhelper.c. Its start()
     * waits for step 5 as before. */
    for (size_t i = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (y->kind != SY_KIND_EXPORTER || y->keep) continue;
        sy_instance_t *x = find_old(old, y);
        if (!x || x->plugin != y->plugin || (x->signals & ~y->signals)) continue;
        if (sy__engine_create_only(y) < 0) return SY_ERROR;
        x->exp.successor = y;
    }
    for (size_t i = 0, n = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (y->kind == SY_KIND_CONNECTOR && sy__engine_open_exporter(y, n++, true) < 0)
            return SY_ERROR;
    }
    for (size_t i = 0; i < nu->npipelines; i++)
        if (sy__engine_start_pipeline(nu->pipelines[i], i) < 0) return SY_ERROR;
    return SY_OK;
}

/* Undoes start_new: nothing of nu has received a client's data yet. */
static void undo_start(sy__engine_t *old, sy__engine_t *nu)
{
    for (size_t i = 0; i < old->ninstances; i++)
        if (old->instances[i]->kind == SY_KIND_EXPORTER) old->instances[i]->exp.successor = NULL;
    nu->deadline_ms = sy__now_ms() + nu->shutdown_timeout_ms;
    uint64_t hard = nu->deadline_ms + 500;
    for (size_t i = 0; i < nu->npipelines; i++)
        sy__pipeline_never_started(nu->pipelines[i]);
    if (sy__engine_stop_workers(nu, SY__ROLE_PIPELINE, sy__engine_drain_pipelines_on, hard) < 0)
        return;
    for (size_t i = nu->ninstances; i-- > 0;) {
        sy_instance_t *y = nu->instances[i];
        if (y->keep || !y->thread || y->kind == SY_KIND_CONNECTOR || y->kind == SY_KIND_PROCESSOR)
            continue;
        if (y->kind == SY_KIND_EXPORTER) {
            if (call_on(nu, y, drain_one_on, y) < 0) return;
            wait_finished(y, hard);
        } else if (call_on(nu, y, shutdown_on, y) < 0) {
            return;
        }
        retire(nu, nu, y);
    }
    move_pools(nu, old);
    prune(old); /* the workers made for what was undone */
}

/* Step 2: kept receivers to the new pipelines, kept exporters fed by both. */
static int switch_traffic(sy__engine_t *nu)
{
    for (size_t i = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (!y->keep) continue;
        sy_instance_t *x = y->keep;
        if (y->kind == SY_KIND_RECEIVER) {
            swap_t s = {.x = x, .outputs = y->recv.outputs, .noutputs = y->recv.noutputs};
            if (call_on(nu, x, swap_outputs_on, &s) < 0) return SY_ERROR;
            y->recv.outputs = s.outputs; /* the old outputs, freed with y */
            y->recv.noutputs = 0;
        } else if (y->kind == SY_KIND_EXPORTER) {
            size_t n = x->exp.nfeeders + y->exp.nfeeders;
            sy__pipeline_t **both = malloc((n ? n : 1) * sizeof(*both));
            if (!both) return SY_ENOMEM;
            memcpy(both, x->exp.feeders, x->exp.nfeeders * sizeof(*both));
            memcpy(both + x->exp.nfeeders, y->exp.feeders, y->exp.nfeeders * sizeof(*both));
            swap_t s = {.x = x, .feeders = both, .nfeeders = n};
            if (call_on(nu, x, swap_feeders_on, &s) < 0) return SY_ERROR;
            free(s.feeders); /* the old list */
        }
    }
    return SY_OK;
}

/* Moves each kept instance into nu in place of y, which is freed. A kept
 * exporter goes on waking both generations' pipelines (switch_traffic) until the
 * old ones have drained: its new feeders are handed back in *later (n of them),
 * for finish_feeders. */
static void adopt_kept(sy__engine_t *old, sy__engine_t *nu, swap_t **later, size_t *n)
{
    *later = calloc(nu->ninstances ? nu->ninstances : 1, sizeof(**later));
    *n = 0;
    for (size_t i = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (!y->keep) continue;
        sy_instance_t *x = y->keep;
        unlist(old, x);
        x->engine = nu;
        x->cfg = y->cfg;
        nu->instances[i] = x;
        if (x->kind == SY_KIND_EXPORTER && *later) {
            (*later)[(*n)++] =
                (swap_t){.x = x, .feeders = y->exp.feeders, .nfeeders = y->exp.nfeeders};
            y->exp.feeders = NULL;
        }
        y->keep = NULL;
        sy__engine_free_instance(y);
    }
}

/* Kept exporters: only nu's pipelines feed them now that the old ones are gone. */
static int finish_feeders(sy__engine_t *nu, swap_t *later, size_t n)
{
    int rc = SY_OK;
    for (size_t i = 0; i < n; i++) {
        if (rc == SY_OK && call_on(nu, later[i].x, swap_feeders_on, &later[i]) < 0)
            rc = SY__ETIMEDOUT;
        free(later[i].feeders); /* the union, or (after a timeout) the new list */
    }
    free(later);
    return rc;
}

int sy__engine_reload(sy__engine_t *old, sy__engine_t *nu)
{
    nu->shutdown_timeout_ms = old->shutdown_timeout_ms;
    decide(old, nu);
    sy__queue_budget_reset(); /* the new memory_limiters bound it again */
    if (start_new(old, nu) < 0) {
        SY__LOG(SY_LOG_ERROR, NULL,
                "reload: a component of the new configuration did not start; the running "
                "configuration stays");
        undo_start(old, nu);
        return SY_EAGAIN;
    }
    /* From here on there is no way back: every failure is logged and the rest goes on. */
    int rc = SY_OK;
    if (switch_traffic(nu) < 0) rc = SY_ERROR;

    /* The kept instances move into nu now: new receivers' and exporters'
     * extension_get() finds the kept extensions there. */
    swap_t *later;
    size_t nlater;
    adopt_kept(old, nu, &later, &nlater);

    /* Step 3: receivers that are not kept stop; their replacements start. */
    for (size_t i = old->ninstances; i-- > 0;) {
        sy_instance_t *x = old->instances[i];
        if (x->kind != SY_KIND_RECEIVER) continue;
        if (call_on(nu, x, shutdown_on, x) < 0) return SY__ETIMEDOUT;
        retire(nu, old, x);
    }
    /* Extensions a new receiver needs may only start in step 5. */
    for (size_t i = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (y->kind != SY_KIND_RECEIVER || y->thread) continue; /* kept: running */
        bool waits = false;
        for (size_t j = 0; j < nu->ninstances && !waits; j++) {
            sy_instance_t *ext = nu->instances[j];
            /* An extension whose old version still runs (it changed) starts in step 5. */
            waits = ext->kind == SY_KIND_EXTENSION && !ext->thread && find_old(old, ext) &&
                    node_mentions(y->cfg->node, ext->id);
        }
        if (!waits && sy__engine_start_instance(y) < 0) rc = SY_ERROR;
    }

    /* Step 4: the old pipelines drain (connectors in chain order), then the old
     * exporters that are not kept. */
    old->deadline_ms = sy__now_ms() + old->shutdown_timeout_ms;
    uint64_t hard = old->deadline_ms + 500;
    /* An exporter replaced by a new instance of itself passes what the old
     * pipelines still give it straight to that one (which starts in step 5):
     * a full queue behind a backend that is down does not hold the drain up. */
    for (size_t i = 0; i < old->ninstances; i++) {
        sy_instance_t *x = old->instances[i];
        if (x->kind == SY_KIND_EXPORTER && x->exp.successor &&
            call_on(nu, x, hand_over_begin_on, x) < 0)
            return SY__ETIMEDOUT;
    }
    for (size_t i = 0; i < old->npipelines; i++)
        sy__pipeline_never_started(old->pipelines[i]);
    if (sy__engine_stop_workers(old, SY__ROLE_PIPELINE, sy__engine_drain_pipelines_on, hard) < 0)
        return SY__ETIMEDOUT;
    for (size_t i = old->ninstances; i-- > 0;) {
        sy_instance_t *x = old->instances[i];
        if (x->kind != SY_KIND_EXPORTER) continue;
        if (call_on(nu, x, drain_one_on, x) < 0) return SY__ETIMEDOUT;
        if (!wait_finished(x, hard)) {
            SY__LOG(SY_LOG_ERROR, x->id, "reload: did not drain within the shutdown timeout");
            old->wedged = true;
            return SY__ETIMEDOUT;
        }
        retire(nu, old, x);
    }
    if (finish_feeders(nu, later, nlater) < 0) return SY__ETIMEDOUT;

    /* Step 5: extensions that changed or went away, their new versions, then the
     * new exporters' plugins and the receivers that waited for an extension. */
    for (size_t i = old->ninstances; i-- > 0;) {
        sy_instance_t *x = old->instances[i];
        if (x->kind != SY_KIND_EXTENSION) continue;
        if (call_on(nu, x, shutdown_on, x) < 0) return SY__ETIMEDOUT;
        retire(nu, old, x);
    }
    for (size_t i = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (y->kind == SY_KIND_EXTENSION && !y->thread && sy__engine_start_instance(y) < 0)
            rc = SY_ERROR;
    }
    for (size_t i = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (y->kind != SY_KIND_EXPORTER || !y->deferred) continue;
        y->deferred = false;
        /* Its old self may still be letting go of something the new one needs
         * (a persistent queue's files are closed once its last request in flight
         * has ended): a failed start() is tried again until the deadline of the
         * old engine's drain (a failed create() is not). */
        int src = sy__engine_create_start(y);
        while (src < 0 && src != SY__ETIMEDOUT && y->created && !nu->wedged &&
               sy__now_ms() + 50 < hard) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
            src = sy__engine_start_again(y);
        }
        if (src < 0) {
            rc = SY_ERROR;
            continue;
        }
        sy__exporter_ready(y); /* any thread: what waited in its queue goes */
    }
    for (size_t i = 0; i < nu->ninstances; i++) {
        sy_instance_t *y = nu->instances[i];
        if (y->kind == SY_KIND_RECEIVER && !y->thread && sy__engine_start_instance(y) < 0)
            rc = SY_ERROR;
    }
    uint64_t lost = atomic_load(&old->lost_at_stop);
    if (lost) {
        SY__LOG(SY_LOG_ERROR, NULL,
                "reload: %llu acknowledged items could not be handed on by the deadline",
                (unsigned long long)lost);
        rc = SY_ERROR;
    }
    for (size_t i = 0; i < nu->npipelines; i++)
        sy__engine_log_pipeline(nu->pipelines[i]);
    sy__engine_free(old);
    prune(nu);
    return rc;
}
