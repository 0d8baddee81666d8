/*
 * engine.c - building the graph from the configuration, starting it, stopping it.
 */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <unistd.h>

#include "batch.h"
#include "cow.h"
#include "log.h"
#include "signals.h"
#include "telemetry.h"

static char *signal_set_names(uint32_t signals)
{
    char buf[64] = "";
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++) {
        if (!(signals & syc_signal_table[i].signal)) continue;
        if (buf[0]) strcat(buf, ", ");
        strcat(buf, syc_signal_table[i].name);
    }
    return strdup(buf[0] ? buf : "none");
}

/* ---- building -------------------------------------------------------------- */

/* Instances and pipelines embed queues, whose hot indices are cache-line aligned:
 * they must come from an aligned allocation, not plain malloc. */
static void *zalloc_aligned(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, size) != 0) return NULL;
    memset(p, 0, size);
    return p;
}

static sy_instance_t *find_shared(sy__engine_t *e, sy_kind_t kind, const char *id)
{
    for (size_t i = 0; i < e->ninstances; i++)
        if (e->instances[i]->kind == kind && e->instances[i]->kind != SY_KIND_PROCESSOR &&
            strcmp(e->instances[i]->id, id) == 0)
            return e->instances[i];
    return NULL;
}

static int add_ptr(void ***arr, size_t *n, void *p)
{
    void **a = realloc(*arr, (*n + 1) * sizeof(void *));
    if (!a) return SY_ENOMEM;
    a[(*n)++] = p;
    *arr = a;
    return SY_OK;
}

/*
 * Makes the instance of component `id` of `kind`: finds and loads its plugin,
 * fills and validates its configuration. A processor gets one instance per
 * pipeline (sharing one configuration struct); the others one per ID. Returns
 * NULL after adding the reason to diag.
 */
static sy_instance_t *make_instance(sy__engine_t *e, sy_kind_t kind, const char *id,
                                    sy__pipeline_t *p, size_t index, sy__diag_t *diag)
{
    const sy__component_cfg_t *comp = sy__service_cfg_find(e->svc, kind, id);
    if (!comp) return NULL; /* a dangling reference: service_config reported it */

    sy_instance_t *twin = NULL; /* the same processor in an earlier pipeline */
    if (p) {
        for (size_t i = 0; i < e->ninstances && !twin; i++)
            if (e->instances[i]->cfg == comp) twin = e->instances[i];
        if (twin && !twin->config) return NULL; /* it failed there: reported once */
    }

    sy__plugin_file_t *file = twin ? twin->file : sy__registry_find(e->reg, kind, comp->type);
    if (!file) {
        char *valid = sy__registry_types(e->reg, kind);
        char *dirs = sy__registry_dirs(e->reg);
        sy__diag_add(diag, comp->key,
                     "unknown type: \"%s\" for id: \"%s\" (valid values: %s); no %s_%s.so in "
                     "the plugin path searched: %s (add a directory with --plugin-dir or "
                     "SWITCHYARD_PLUGIN_PATH)",
                     comp->type, id, valid ? valid : "[]", sy__kind_name(kind), comp->type,
                     dirs ? dirs : "(none)");
        free(valid);
        free(dirs);
        return NULL;
    }
    char err[512];
    if (sy__registry_load(file, err, sizeof(err)) < 0) {
        sy__diag_add(diag, comp->key, "%s", err);
        return NULL;
    }

    sy_instance_t *inst = zalloc_aligned(sizeof(*inst));
    if (!inst) {
        sy__diag_add(diag, comp->key, "'%s': out of memory", id);
        return NULL;
    }
    inst->engine = e;
    inst->kind = kind;
    inst->file = file;
    inst->plugin = &file->desc;
    inst->cfg = comp;
    if (kind == SY_KIND_PROCESSOR) {
        inst->proc.pipeline = p;
        inst->proc.index = index;
    }
    inst->id = strdup(id);
    char labels[512];
    if (p)
        inst->labels = sy__metric_labels(labels, sizeof(labels), sy__kind_name(kind), id,
                                         "pipeline", p->id, NULL)
                           ? strdup(labels)
                           : NULL;
    else
        inst->labels = sy__metric_labels(labels, sizeof(labels), sy__kind_name(kind), id, NULL)
                           ? strdup(labels)
                           : NULL;
    if (!inst->id || !inst->labels || add_ptr((void ***)&e->instances, &e->ninstances, inst)) {
        free(inst->id);
        free(inst->labels);
        free(inst);
        sy__diag_add(diag, comp->key, "'%s': out of memory", id);
        return NULL;
    }

    if (twin) {
        inst->config = twin->config; /* read-only and shared; the first owns it */
        return inst;
    }
    const sy_plugin_t *d = inst->plugin;
    void *config = calloc(1, d->config_size ? d->config_size : 1);
    if (!config) {
        sy__diag_add(diag, comp->key, "'%s': out of memory", id);
        return NULL;
    }
    if (sy__cfg_fill(id, d->config_fields, d->config_field_count, comp->node, config, diag) < 0) {
        sy__cfg_free_struct(d->config_fields, d->config_field_count, config);
        free(config);
        return NULL;
    }
    /* validate(), then validate2() (ABI 1.3) with the host API and the node. */
    for (int pass = 0; pass < 2; pass++) {
        err[0] = 0;
        int rc = SY_OK;
        if (pass == 0 && d->validate)
            rc = d->validate(config, err, sizeof(err));
        else if (pass == 1 && d->validate2)
            rc = d->validate2(sy__host_api(),
                              comp->node && sy__host_api()->cfg_kind(comp->node) == 'm' ? comp->node
                                                                                        : NULL,
                              config, err, sizeof(err));
        if (rc < 0) {
            sy__diag_add(diag, comp->node ? comp->node : comp->key, "'%s': %s", id,
                         err[0] ? err : "invalid configuration");
            sy__cfg_free_struct(d->config_fields, d->config_field_count, config);
            free(config);
            return NULL;
        }
    }
    inst->config = config;
    inst->config_owner = true;
    return inst;
}

static bool check_signal(sy_instance_t *inst, const sy__pipeline_t *p, const sy_cfg_node_t *at,
                         sy__diag_t *diag)
{
    if (inst->plugin->signals & p->signal) return true;
    char *has = signal_set_names(inst->plugin->signals);
    sy__diag_add(diag, at, "service::pipelines::%s: %s \"%s\" does not support %s (it supports %s)",
                 p->id, sy__kind_name(inst->kind), inst->id, sy__signal_name(p->signal),
                 has ? has : "none");
    free(has);
    return false;
}

/* Whether a pipeline's receiver or exporter `id` names a connector (service_config
 * refused an ID that names both). */
static bool is_connector(const sy__service_cfg_t *svc, sy_kind_t kind, const char *id)
{
    return !sy__service_cfg_find(svc, kind, id) && sy__service_cfg_find(svc, SY_KIND_CONNECTOR, id);
}

/* A connector as the receiver of pipeline p: it must make p's signal from one of
 * the signals it takes. */
static bool check_output(sy_instance_t *c, const sy__pipeline_t *p, const sy_cfg_node_t *at,
                         sy__diag_t *diag)
{
    uint32_t out = 0;
    for (int i = 0; i < 3; i++)
        if (c->plugin->signals & syc_signal_table[i].signal) out |= c->plugin->connects[i];
    if (out & p->signal) return true;
    char *has = signal_set_names(out);
    sy__diag_add(diag, at,
                 "service::pipelines::%s: connector \"%s\" cannot be a receiver of %s (it "
                 "makes %s)",
                 p->id, c->id, sy__signal_name(p->signal), has ? has : "none");
    free(has);
    return false;
}

/* Whether connector c makes signal `to` from signal `from`. */
static bool connects(const sy_instance_t *c, sy_signal_t from, sy_signal_t to)
{
    return (c->plugin->signals & from) && (c->plugin->connects[sy__signal_index(from)] & to);
}

/*
 * As the collector: a connector used as exporter in a pipeline must feed at least
 * one pipeline whose signal it makes from that one, and a connector used as a
 * receiver must be fed by at least one pipeline of a signal it makes that one
 * from. Pairs it does not support are simply not connected.
 */
static void check_connector_pairs(sy__engine_t *e, sy__diag_t *diag)
{
    for (size_t pi = 0; pi < e->npipelines; pi++) {
        sy__pipeline_t *p = e->pipelines[pi];
        const sy__pipeline_cfg_t *pc = p->cfg;
        for (size_t i = 0; i < pc->nexporters; i++) {
            sy_instance_t *c = find_shared(e, SY_KIND_CONNECTOR, pc->exporters[i]);
            if (!c || !is_connector(e->svc, SY_KIND_EXPORTER, pc->exporters[i])) continue;
            bool ok = false;
            for (size_t j = 0; j < c->recv.noutputs && !ok; j++)
                ok = connects(c, p->signal, c->recv.outputs[j]->signal);
            if (!ok)
                sy__diag_add(diag, pc->exporter_nodes[i],
                             "connector \"%s\" used as exporter in %s pipeline but not used in "
                             "any supported receiver pipeline",
                             c->id, p->id);
        }
        for (size_t i = 0; i < pc->nreceivers; i++) {
            sy_instance_t *c = find_shared(e, SY_KIND_CONNECTOR, pc->receivers[i]);
            if (!c || !is_connector(e->svc, SY_KIND_RECEIVER, pc->receivers[i])) continue;
            bool ok = false;
            for (size_t j = 0; j < c->exp.nfeeders && !ok; j++)
                ok = connects(c, c->exp.feeders[j]->signal, p->signal);
            if (!ok)
                sy__diag_add(diag, pc->receiver_nodes[i],
                             "connector \"%s\" used as receiver in %s pipeline but not used in "
                             "any supported exporter pipeline",
                             c->id, p->id);
        }
    }
}

/* Depth-first search over pipelines joined by connectors: 1 on the path, 2 done. */
static bool find_cycle(sy__engine_t *e, size_t pi, unsigned char *mark, size_t *path, size_t depth,
                       sy__diag_t *diag)
{
    mark[pi] = 1;
    path[depth] = pi;
    sy__pipeline_t *p = e->pipelines[pi];
    for (size_t i = 0; i < p->nexporters; i++) {
        sy_instance_t *c = p->exporters[i];
        if (c->kind != SY_KIND_CONNECTOR) continue;
        for (size_t j = 0; j < c->recv.noutputs; j++) {
            size_t qi = 0;
            while (qi < e->npipelines && e->pipelines[qi] != c->recv.outputs[j])
                qi++;
            if (qi == e->npipelines || mark[qi] == 2) continue;
            if (mark[qi] == 1) {
                /* The cycle: from where q sits on the path back to p, then q. */
                char chain[1024] = "";
                size_t len = 0, from = 0;
                while (path[from] != qi)
                    from++;
                for (size_t k = from; k <= depth && len < sizeof(chain); k++)
                    len += (size_t)snprintf(chain + len, sizeof(chain) - len, "pipeline %s -> ",
                                            e->pipelines[path[k]]->id);
                if (len < sizeof(chain))
                    snprintf(chain + len, sizeof(chain) - len, "pipeline %s", e->pipelines[qi]->id);
                const sy_cfg_node_t *at = p->cfg->node;
                for (size_t k = 0; k < p->cfg->nexporters; k++)
                    if (!strcmp(p->cfg->exporters[k], c->id)) at = p->cfg->exporter_nodes[k];
                sy__diag_add(diag, at,
                             "cycle detected: connector \"%s\" closes a loop of pipelines (%s); "
                             "data would flow around it forever",
                             c->id, chain);
                return true;
            }
            if (find_cycle(e, qi, mark, path, depth + 1, diag)) return true;
        }
    }
    mark[pi] = 2;
    return false;
}

static void check_cycles(sy__engine_t *e, sy__diag_t *diag)
{
    unsigned char *mark = calloc(e->npipelines + 1, 1);
    size_t *path = calloc(e->npipelines + 1, sizeof(size_t));
    for (size_t i = 0; mark && path && i < e->npipelines; i++)
        if (!mark[i] && find_cycle(e, i, mark, path, 0, diag)) break;
    free(mark);
    free(path);
}

static sy_instance_t *shared_instance(sy__engine_t *e, sy_kind_t kind, const char *id,
                                      sy__diag_t *diag, bool *reported)
{
    sy_instance_t *inst = find_shared(e, kind, id);
    if (inst) return inst;
    /* Remember failures so that a component referenced by several pipelines is
     * reported once. */
    for (size_t i = 0; reported && i < e->svc->ncomponents; i++)
        if ((e->svc->components[i].kind == kind ||
             e->svc->components[i].kind == SY_KIND_CONNECTOR) &&
            strcmp(e->svc->components[i].id, id) == 0 && reported[i])
            return NULL;
    inst = make_instance(e, kind, id, NULL, 0, diag);
    if (!inst && reported)
        for (size_t i = 0; i < e->svc->ncomponents; i++)
            if ((e->svc->components[i].kind == kind ||
                 e->svc->components[i].kind == SY_KIND_CONNECTOR) &&
                strcmp(e->svc->components[i].id, id) == 0)
                reported[i] = true;
    return inst;
}

sy__engine_t *sy__engine_build(sy__service_cfg_t *svc, sy__registry_t *reg, sy__diag_t *diag)
{
    sy__engine_t *e = calloc(1, sizeof(*e));
    if (!e) return NULL;
    e->svc = svc;
    e->reg = reg;
    e->shutdown_timeout_ms = 10000;
    size_t errors_before = sy__diag_errors(diag);
    bool *reported = calloc(svc->ncomponents + 1, sizeof(bool));
    if (!reported) goto oom;

    for (size_t pi = 0; pi < svc->npipelines; pi++) {
        const sy__pipeline_cfg_t *pc = &svc->pipelines[pi];
        sy__pipeline_t *p = zalloc_aligned(sizeof(*p));
        if (!p || add_ptr((void ***)&e->pipelines, &e->npipelines, p)) {
            free(p);
            goto oom;
        }
        p->engine = e;
        p->cfg = pc;
        p->id = strdup(pc->id);
        p->signal = pc->signal;
        if (!p->id) goto oom;

        for (size_t i = 0; i < pc->nreceivers; i++) {
            bool conn = is_connector(svc, SY_KIND_RECEIVER, pc->receivers[i]);
            sy_instance_t *r = shared_instance(e, conn ? SY_KIND_CONNECTOR : SY_KIND_RECEIVER,
                                               pc->receivers[i], diag, reported);
            if (!r) continue;
            if (conn ? !check_output(r, p, pc->receiver_nodes[i], diag)
                     : !check_signal(r, p, pc->receiver_nodes[i], diag))
                continue;
            if (!conn) r->signals |= p->signal;
            if (add_ptr((void ***)&r->recv.outputs, &r->recv.noutputs, p) < 0) goto oom;
            if (conn && add_ptr((void ***)&p->upstream, &p->nupstream, r) < 0) goto oom;
        }
        for (size_t i = 0; i < pc->nprocessors; i++) {
            sy_instance_t *x =
                make_instance(e, SY_KIND_PROCESSOR, pc->processors[i], p, p->nprocessors, diag);
            if (!x || !check_signal(x, p, pc->processor_nodes[i], diag)) continue;
            x->signals |= p->signal;
            if (add_ptr((void ***)&p->processors, &p->nprocessors, x) < 0) goto oom;
        }
        for (size_t i = 0; i < pc->nexporters; i++) {
            bool conn = is_connector(svc, SY_KIND_EXPORTER, pc->exporters[i]);
            sy_instance_t *x = shared_instance(e, conn ? SY_KIND_CONNECTOR : SY_KIND_EXPORTER,
                                               pc->exporters[i], diag, reported);
            if (!x || !check_signal(x, p, pc->exporter_nodes[i], diag)) continue;
            x->signals |= p->signal;
            if (add_ptr((void ***)&p->exporters, &p->nexporters, x) < 0 ||
                add_ptr((void ***)&x->exp.feeders, &x->exp.nfeeders, p) < 0)
                goto oom;
        }
    }
    for (size_t i = 0; i < svc->nextensions; i++)
        shared_instance(e, SY_KIND_EXTENSION, svc->extensions[i], diag, reported);
    if (sy__diag_errors(diag) == errors_before) {
        check_connector_pairs(e, diag);
        check_cycles(e, diag);
    }
    /* What each connector and each pipeline behind one waits for at shutdown (set
     * here, not at start, so that a start that fails halfway stops the same way). */
    for (size_t i = 0; i < e->ninstances; i++)
        if (e->instances[i]->kind == SY_KIND_CONNECTOR)
            atomic_store(&e->instances[i]->exp.feeders_live, e->instances[i]->exp.nfeeders);
    for (size_t i = 0; i < e->npipelines; i++)
        atomic_store(&e->pipelines[i]->upstream_live, e->pipelines[i]->nupstream);

    free(reported);
    reported = NULL;
    if (sy__diag_errors(diag) > errors_before) goto fail;
    return e;
oom:
    sy__diag_add(diag, NULL, "out of memory building the pipelines");
fail:
    free(reported);
    sy__engine_free(e);
    return NULL;
}

/* ---- worker pools ------------------------------------------------------------- */

size_t sy__engine_pool_max(void)
{
    /* Enough to keep every core busy in each role, and a few more for plugins that
     * spend time on blocking file I/O (the file exporter), never more than 8. */
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = cpus > 0 ? (size_t)cpus : 2;
    if (n < 2) n = 2;
    return n > 8 ? 8 : n;
}

static size_t role_members(const sy__engine_t *e, sy__role_t role)
{
    if (role == SY__ROLE_PIPELINE) return e->npipelines;
    size_t n = 0;
    for (size_t i = 0; i < e->ninstances; i++) {
        sy_kind_t k = e->instances[i]->kind;
        if ((role == SY__ROLE_RECEIVER && k == SY_KIND_RECEIVER) ||
            (role == SY__ROLE_EXPORTER && k == SY_KIND_EXPORTER) ||
            (role == SY__ROLE_EXTENSION && k == SY_KIND_EXTENSION))
            n++;
    }
    return n;
}

/* Which worker of the pipelines' pool the n-th pipeline (or connector) lives on. */
static sy__thread_t *pool_worker(sy__engine_t *e, size_t n)
{
    return &e->pools[SY__ROLE_PIPELINE][n % e->npools[SY__ROLE_PIPELINE]]->thread;
}

/* The next worker of a pool, round robin. */
static sy__thread_t *next_worker(sy__engine_t *e, sy__role_t role)
{
    size_t first = e->first_free[role], n = e->npools[role] - first;
    return &e->pools[role][first + e->next_slot[role]++ % n]->thread;
}

/* Run on a worker once its loop has ended: destroys what lived there. */
static void worker_exit(void *arg)
{
    sy__worker_t *w = arg;
    sy__engine_t *e = w->engine;
    for (size_t i = 0; i < w->nretired; i++)
        sy__instance_destroy(w->retired[i]);
    if (w->role == SY__ROLE_PIPELINE) {
        for (size_t i = 0; i < e->npipelines; i++) {
            sy__pipeline_t *p = e->pipelines[i];
            if (p->thread != &w->thread) continue;
            for (size_t j = 0; j < p->nprocessors; j++)
                sy__instance_destroy(p->processors[j]);
        }
        for (size_t i = 0; i < e->ninstances; i++) {
            sy_instance_t *x = e->instances[i];
            if (x->kind == SY_KIND_CONNECTOR && x->thread == &w->thread) sy__instance_destroy(x);
        }
        return;
    }
    for (size_t i = 0; i < e->ninstances; i++) {
        sy_instance_t *x = e->instances[i];
        if (x->kind != SY_KIND_PROCESSOR && x->thread == &w->thread) sy__instance_destroy(x);
    }
}

/* Starts n more workers in the pool of `role`. */
int sy__engine_add_workers(sy__engine_t *e, sy__role_t role, size_t n)
{
    static const char *const names[] = {"recv", "pipe", "exp", "ext"};
    if (n == 0) return SY_OK;
    sy__worker_t **grown = realloc(e->pools[role], (e->npools[role] + n) * sizeof(*grown));
    if (!grown) return SY_ENOMEM;
    e->pools[role] = grown;
    for (size_t i = 0; i < n; i++) {
        sy__worker_t *w = calloc(1, sizeof(*w));
        if (!w) return SY_ENOMEM;
        e->pools[role][e->npools[role]++] = w;
        char name[32];
        snprintf(name, sizeof(name), "sy-%s-%u", names[role], e->worker_seq[role]++);
        w->engine = e;
        w->role = role;
        w->thread.on_exit = worker_exit;
        w->thread.exit_arg = w;
        /* A receiver answers its client first, then wakes the pipelines: the
         * answer does not wait behind them for the CPU (sy__wake_send). */
        w->thread.defer_wakes = role == SY__ROLE_RECEIVER;
        w->thread.batch_sched = role == SY__ROLE_PIPELINE || role == SY__ROLE_EXPORTER;
        if (sy__thread_start(&w->thread, name) < 0) {
            SY__LOG(SY_LOG_ERROR, NULL, "cannot start worker thread %s: %s", name, strerror(errno));
            return SY_ERROR;
        }
    }
    return SY_OK;
}

/* Grows the pool of `role` to serve `members` components: a worker each, up to
 * sy__engine_pool_max() (one for the extensions). */
int sy__engine_grow_pool(sy__engine_t *e, sy__role_t role, size_t members)
{
    size_t max = role == SY__ROLE_EXTENSION ? 1 : sy__engine_pool_max();
    size_t want = members < max ? members : max;
    return want > e->npools[role] ? sy__engine_add_workers(e, role, want - e->npools[role]) : SY_OK;
}

static int start_workers(sy__engine_t *e)
{
    for (int r = 0; r < SY__ROLE_COUNT; r++) {
        int rc = sy__engine_grow_pool(e, (sy__role_t)r, role_members(e, (sy__role_t)r));
        if (rc == SY_ENOMEM) SY__LOG(SY_LOG_ERROR, NULL, "out of memory starting worker threads");
        if (rc < 0) return rc;
    }
    return SY_OK;
}

/* ---- starting ------------------------------------------------------------------ */

/* The deadline for a call into a plugin while starting. */
static uint64_t start_deadline(const sy__engine_t *e)
{
    return sy__now_ms() + e->shutdown_timeout_ms;
}

/* Notes a call or a worker that missed its deadline: from now on nothing that a
 * stuck thread can reach is freed. */
static int check_call(sy__engine_t *e, int rc, const char *what, const char *id)
{
    if (rc == SY__ETIMEDOUT) {
        e->wedged = true;
        SY__LOG(SY_LOG_ERROR, id,
                "%s did not return within the deadline; its thread is left "
                "running and the router will exit",
                what);
    }
    return rc;
}

static void create_start_here(sy_instance_t *inst)
{
    const sy_plugin_t *d = inst->plugin;
    if (!inst->created) {
        inst->start_rc = d->create(sy__host_api(), inst, inst->config, &inst->state);
        if (inst->start_rc < 0) {
            SY__LOG(SY_LOG_ERROR, inst->id, "failed to create (error %d)", inst->start_rc);
            return;
        }
        inst->created = true;
    }
    inst->start_rc = SY_OK;
    if (d->start) inst->start_rc = d->start(inst->state);
    if (inst->start_rc < 0) {
        SY__LOG(SY_LOG_ERROR, inst->id, "failed to start (error %d)", inst->start_rc);
        return;
    }
    inst->started = true;
}

static void do_create_start(void *arg)
{
    sy_instance_t *inst = arg;
    sy_instance_t *prev = sy__consumer_enter(inst);
    create_start_here(inst);
    sy__consumer_leave(prev);
}

/* Plugin callbacks run with their instance marked as current (cow.c), so that
 * whatever they do through the host API is attributed to them. */
void sy__instance_shutdown(sy_instance_t *inst)
{
    sy_instance_t *prev = sy__consumer_enter(inst);
    if (inst->started && inst->plugin->shutdown) inst->plugin->shutdown(inst->state);
    sy__consumer_leave(prev);
    inst->started = false;
    sy__instance_close_timers(inst);
}

void sy__instance_destroy(sy_instance_t *inst)
{
    sy_instance_t *prev = sy__consumer_enter(inst);
    if (inst->created) inst->plugin->destroy(inst->state);
    sy__consumer_leave(prev);
    inst->created = false;
    inst->state = NULL;
}

static void do_create_only(void *arg)
{
    sy_instance_t *inst = arg;
    sy_instance_t *prev = sy__consumer_enter(inst);
    inst->start_rc = inst->plugin->create(sy__host_api(), inst, inst->config, &inst->state);
    if (inst->start_rc < 0)
        SY__LOG(SY_LOG_ERROR, inst->id, "failed to create (error %d)", inst->start_rc);
    else
        inst->created = true;
    sy__consumer_leave(prev);
}

int sy__engine_create_only(sy_instance_t *inst)
{
    if (inst->created) return SY_OK;
    inst->start_rc = SY_ERROR;
    int rc = sy__thread_call(inst->thread, do_create_only, inst, start_deadline(inst->engine));
    if (check_call(inst->engine, rc, "create", inst->id) < 0) return rc;
    return inst->start_rc;
}

int sy__engine_create_start(sy_instance_t *inst)
{
    inst->start_rc = SY_ERROR;
    int rc = sy__thread_call(inst->thread, do_create_start, inst, start_deadline(inst->engine));
    if (check_call(inst->engine, rc, "create/start", inst->id) < 0) return rc;
    return inst->start_rc;
}

/* start() once more for an instance whose create() worked and whose start()
 * failed (reload.c: its old self had not let go of its files yet). */
static void do_start_again(void *arg)
{
    sy_instance_t *inst = arg;
    sy_instance_t *prev = sy__consumer_enter(inst);
    inst->start_rc = inst->plugin->start ? inst->plugin->start(inst->state) : SY_OK;
    if (inst->start_rc >= 0) inst->started = true;
    sy__consumer_leave(prev);
}

int sy__engine_start_again(sy_instance_t *inst)
{
    if (!inst->created || inst->started) return inst->started ? SY_OK : SY_ERROR;
    inst->start_rc = SY_ERROR;
    int rc = sy__thread_call(inst->thread, do_start_again, inst, start_deadline(inst->engine));
    if (check_call(inst->engine, rc, "start", inst->id) < 0) return rc;
    return inst->start_rc;
}

static void register_metrics(sy_instance_t *inst)
{
    const char *ok = NULL, *failed = NULL;
    if (inst->kind == SY_KIND_RECEIVER) {
        ok = "receiver_accepted_";
        failed = "receiver_refused_";
    } else if (inst->kind == SY_KIND_EXPORTER) {
        ok = "exporter_sent_";
        failed = "exporter_send_failed_";
    } else if (inst->kind == SY_KIND_CONNECTOR) {
        ok = "connector_consumed_";
        failed = "connector_failed_";
    } else {
        return;
    }
    if (inst->kind == SY_KIND_CONNECTOR) {
        /* What it emitted, per signal of the pipelines it feeds. */
        for (size_t j = 0; j < inst->recv.noutputs; j++) {
            int i = sy__signal_index(inst->recv.outputs[j]->signal);
            if (inst->metrics[i].emitted) continue;
            char name[96], help[160];
            snprintf(name, sizeof(name), "connector_emitted_%s", syc_signal_table[i].item_metric);
            snprintf(help, sizeof(help),
                     "Number of %s the connector handed to the pipelines it feeds.",
                     syc_signal_table[i].item_metric);
            inst->metrics[i].emitted =
                sy__metric_register(name, help, SY_METRIC_COUNTER, inst->labels);
        }
    }
    for (int i = 0; i < SYC_SIGNAL_COUNT; i++) {
        if (!(inst->signals & syc_signal_table[i].signal)) continue;
        const char *items = syc_signal_table[i].item_metric;
        char name[96], help[160];
        snprintf(name, sizeof(name), "%s%s", ok, items);
        snprintf(help, sizeof(help), "Number of %s the %s %s.", items, sy__kind_name(inst->kind),
                 inst->kind == SY_KIND_RECEIVER   ? "accepted and passed on"
                 : inst->kind == SY_KIND_EXPORTER ? "handed to its backend"
                                                  : "took from the pipelines it ends");
        inst->metrics[i].ok = sy__metric_register(name, help, SY_METRIC_COUNTER, inst->labels);
        snprintf(name, sizeof(name), "%s%s", failed, items);
        snprintf(help, sizeof(help), "Number of %s the %s %s.", items, sy__kind_name(inst->kind),
                 inst->kind == SY_KIND_RECEIVER   ? "refused (the client was told to retry)"
                 : inst->kind == SY_KIND_EXPORTER ? "failed to send"
                                                  : "failed to process");
        inst->metrics[i].failed = sy__metric_register(name, help, SY_METRIC_COUNTER, inst->labels);
        if (inst->kind == SY_KIND_RECEIVER) continue;
        snprintf(name, sizeof(name), "%s_enqueue_failed_%s", sy__kind_name(inst->kind), items);
        snprintf(help, sizeof(help),
                 "Number of %s a pipeline could not hand to the exporter (out of memory, "
                 "or the shutdown deadline).",
                 items);
        inst->metrics[i].enqueue_failed =
            sy__metric_register(name, help, SY_METRIC_COUNTER, inst->labels);
    }
}

static void register_processor_metrics(sy_instance_t *x)
{
    const char *items = syc_signal_info(x->proc.pipeline->signal)->item_metric;
    static const struct {
        const char *what, *help;
    } names[4] = {
        {"incoming", "handed to the processor"},
        {"outgoing", "the processor passed on"},
        {"refused", "in batches the processor refused (its consume failed)"},
        {"dropped", "the router could not hand to the processor (out of memory)"},
    };
    sy_metric_t **out[4] = {&x->proc.pmetrics.incoming, &x->proc.pmetrics.outgoing,
                            &x->proc.pmetrics.refused, &x->proc.pmetrics.dropped};
    for (int i = 0; i < 4; i++) {
        char name[96], help[160];
        snprintf(name, sizeof(name), "processor_%s_%s", names[i].what, items);
        snprintf(help, sizeof(help), "Number of %s %s.", items, names[i].help);
        *out[i] = sy__metric_register(name, help, SY_METRIC_COUNTER, x->labels);
    }
}

static int64_t queue_size_fn(void *arg)
{
    return (int64_t)sy__mpmc_size(arg);
}

static int64_t queue_capacity_fn(void *arg)
{
    return (int64_t)sy__mpmc_capacity(arg);
}

/* The gauges read the queue at scrape time, so they are unregistered before the
 * queue is freed (see unregister_queue_metrics). */
static void register_queue_metrics(sy__mpmc_t *q, const char *labels, sy_metric_t *out[2])
{
    out[0] = sy__metric_register_fn("queue_size", "Batches waiting in the queue.", SY_METRIC_GAUGE,
                                    labels, queue_size_fn, q);
    out[1] = sy__metric_register_fn("queue_capacity", "Capacity of the queue, in batches.",
                                    SY_METRIC_GAUGE, labels, queue_capacity_fn, q);
}

/* Process-wide: what the queues hold in bytes, and the budget they share. Global
 * functions without an argument, so never unregistered. */
static int64_t queue_bytes_fn(void *arg)
{
    (void)arg;
    return sy__queue_weight_total();
}

static int64_t queue_budget_fn(void *arg)
{
    (void)arg;
    return sy__queue_budget();
}

static void register_budget_metrics(void)
{
    sy__metric_register_fn("queue_bytes", "Bytes of batches held by all core queues.",
                           SY_METRIC_GAUGE, NULL, queue_bytes_fn, NULL);
    sy__metric_register_fn("queue_budget_bytes",
                           "Bytes of batches all core queues may hold together (the default, "
                           "a memory_limiter's bound, or SWITCHYARD_QUEUE_BUDGET).",
                           SY_METRIC_GAUGE, NULL, queue_budget_fn, NULL);
}

static void unregister_queue_metrics(sy_metric_t *m[2], const sy__mpmc_t *q)
{
    for (int i = 0; i < 2; i++)
        if (m[i]) sy__metric_unregister_bound(m[i], q);
    m[0] = m[1] = NULL;
}

static void exporter_open_call(void *arg)
{
    sy_instance_t *x = arg;
    x->start_rc = sy__exporter_open(x);
}

/* Opens an exporter's (or a connector's) queue and handles on a worker: its own
 * for an exporter, the pool's n-th for a connector; then creates and starts its
 * plugin, unless `start` is false (a reload starts it later: what the pipelines
 * push meanwhile waits in the queue). */
int sy__engine_open_exporter(sy_instance_t *x, size_t n, bool start)
{
    if (sy__mpmc_init(&x->exp.queue, SY__EXPORTER_QUEUE_CAPACITY) < 0) return SY_ENOMEM;
    x->exp.queue_ready = true;
    bool conn = x->kind == SY_KIND_CONNECTOR;
    char labels[256];
    snprintf(labels, sizeof(labels), "%s,queue=\"%s\"", x->labels, sy__kind_name(x->kind));
    register_queue_metrics(&x->exp.queue, labels, x->exp.queue_metrics);
    register_metrics(x);
    /* A connector lives on a pipeline worker: it is stopped with the pipelines,
     * between those it ends and those it feeds (runtime.c). */
    x->thread = conn ? pool_worker(x->engine, n) : next_worker(x->engine, SY__ROLE_EXPORTER);

    x->start_rc = SY_ERROR;
    int rc = sy__thread_call(x->thread, exporter_open_call, x, start_deadline(x->engine));
    if (check_call(x->engine, rc, "opening the exporter", x->id) < 0) return rc;
    if (x->start_rc < 0) return x->start_rc;
    /* consume() is not called before start() returned: on_wake checks `started`,
     * which is set on the same thread. */
    if (!start) {
        x->deferred = true;
        return SY_OK;
    }
    return sy__engine_create_start(x);
}

/* A receiver or an extension, on the next worker of its pool. */
int sy__engine_start_instance(sy_instance_t *x)
{
    bool recv = x->kind == SY_KIND_RECEIVER;
    if (recv) register_metrics(x);
    x->thread = next_worker(x->engine, recv ? SY__ROLE_RECEIVER : SY__ROLE_EXTENSION);
    return sy__engine_create_start(x);
}

static void pipeline_open_call(void *arg)
{
    sy__pipeline_t *p = arg;
    p->open_rc = sy__pipeline_open(p);
}

int sy__engine_start_pipeline(sy__pipeline_t *p, size_t n)
{
    /* The ring has one spare slot for every receiver worker that may push at the
     * same time as another passes its room check (runtime.c, sy__receiver_emit);
     * in a reload, the old engine's receivers are on the same workers. */
    sy__engine_t *e = p->engine;
    size_t spare = e->npools[SY__ROLE_RECEIVER];
    if (p->nupstream) spare += e->npools[SY__ROLE_PIPELINE]; /* connectors push too */
    p->in_limit = SY__PIPELINE_QUEUE_CAPACITY;
    if (sy__mpmc_init(&p->in, SY__PIPELINE_QUEUE_CAPACITY + spare) < 0) return SY_ENOMEM;
    p->queue_ready = true;
    char labels[256];
    if (sy__metric_labels(labels, sizeof(labels), "pipeline", p->id, "queue", "pipeline", NULL))
        register_queue_metrics(&p->in, labels, p->queue_metrics);
    sy__thread_t *w = pool_worker(e, n);
    p->thread = w;
    p->open_rc = SY_ERROR;
    int rc = sy__thread_call(w, pipeline_open_call, p, start_deadline(e));
    if (check_call(e, rc, "opening the pipeline", p->id) < 0) return rc;
    if (p->open_rc < 0) {
        SY__LOG(SY_LOG_ERROR, p->id, "cannot open the pipeline's handles");
        return p->open_rc;
    }
    for (size_t i = 0; i < p->nprocessors; i++) {
        sy_instance_t *x = p->processors[i];
        x->thread = w;
        register_processor_metrics(x);
        if ((rc = sy__engine_create_start(x)) < 0) return rc;
    }
    atomic_store_explicit(&p->accepting, true, memory_order_release);
    return SY_OK;
}

void sy__engine_log_pipeline(const sy__pipeline_t *p)
{
    char line[1024];
    size_t len = 0;
    const sy__pipeline_cfg_t *c = p->cfg;
    len += (size_t)snprintf(line + len, sizeof(line) - len, "receivers [");
    for (size_t i = 0; i < c->nreceivers && len < sizeof(line); i++)
        len +=
            (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "", c->receivers[i]);
    if (len < sizeof(line))
        len += (size_t)snprintf(line + len, sizeof(line) - len, "] -> processors [");
    for (size_t i = 0; i < c->nprocessors && len < sizeof(line); i++)
        len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "",
                                c->processors[i]);
    if (len < sizeof(line))
        len += (size_t)snprintf(line + len, sizeof(line) - len, "] -> exporters [");
    for (size_t i = 0; i < c->nexporters && len < sizeof(line); i++)
        len +=
            (size_t)snprintf(line + len, sizeof(line) - len, "%s%s", i ? " " : "", c->exporters[i]);
    if (len < sizeof(line)) snprintf(line + len, sizeof(line) - len, "]");
    SY__LOG(SY_LOG_INFO, NULL, "Pipeline %s is running: %s", p->id, line);
}

int sy__engine_start(sy__engine_t *e)
{
    sy__engine_set_status(SY_STATUS_STARTING);
    sy__queue_budget_reset(); /* memory_limiters of this engine set it again */
    register_budget_metrics();
    if (start_workers(e) < 0) goto fail;
    /* Extensions first (health_check answers 503 while starting), then exporters,
     * the pipelines with their processors, and the receivers last, so that nothing
     * is sent to a component that is not running. */
    for (size_t i = 0; i < e->ninstances; i++) {
        sy_instance_t *x = e->instances[i];
        if (x->kind == SY_KIND_EXTENSION && sy__engine_start_instance(x) < 0) goto fail;
    }
    for (size_t i = 0; i < e->ninstances; i++) {
        sy_instance_t *x = e->instances[i];
        if (x->kind == SY_KIND_EXPORTER && sy__engine_open_exporter(x, 0, true) < 0) goto fail;
    }
    /* Connectors before the pipelines that feed them; they emit only once data
     * flows (or from their timers, into pipelines that may not be open yet: such
     * an emit is told to retry). */
    for (size_t i = 0, next_conn = 0; i < e->ninstances; i++) {
        sy_instance_t *x = e->instances[i];
        if (x->kind == SY_KIND_CONNECTOR && sy__engine_open_exporter(x, next_conn++, true) < 0)
            goto fail;
    }
    for (size_t i = 0; i < e->npipelines; i++)
        if (sy__engine_start_pipeline(e->pipelines[i], i) < 0) goto fail;
    for (size_t i = 0; i < e->ninstances; i++) {
        sy_instance_t *x = e->instances[i];
        if (x->kind == SY_KIND_RECEIVER && sy__engine_start_instance(x) < 0) goto fail;
    }
    for (size_t i = 0; i < e->npipelines; i++)
        sy__engine_log_pipeline(e->pipelines[i]);
    sy__engine_set_status(SY_STATUS_READY);
    SY__LOG(SY_LOG_INFO, NULL, "Everything is ready. Begin running and processing data.");
    return SY_OK;
fail:
    sy__engine_stop(e);
    return SY_ERROR;
}

/* ---- stopping ---------------------------------------------------------------------- */

/* The argument of the *_on functions a stop runs on each worker. */
typedef struct sy__role_call_s {
    sy__engine_t *e;
    sy__thread_t *worker;
} sy__role_call_t;

static void shutdown_instances_on(void *arg)
{
    sy__role_call_t *c = arg;
    for (size_t i = 0; i < c->e->ninstances; i++) {
        sy_instance_t *x = c->e->instances[i];
        if (x->kind != SY_KIND_PROCESSOR && x->thread == c->worker) sy__instance_shutdown(x);
    }
}

/* A pipeline fed by connectors waits until they have drained (runtime.c wakes it). */
void sy__engine_drain_pipelines_on(void *arg)
{
    sy__role_call_t *c = arg;
    for (size_t i = 0; i < c->e->npipelines; i++) {
        sy__pipeline_t *p = c->e->pipelines[i];
        if (p->thread != c->worker) continue;
        if (!p->nupstream) {
            sy__pipeline_begin_drain(p);
        } else {
            atomic_store(&p->stop_requested, true);
            if (atomic_load(&p->drain_go) && !p->draining) sy__pipeline_begin_drain(p);
        }
    }
}

static void drain_exporters_on(void *arg)
{
    sy__role_call_t *c = arg;
    for (size_t i = 0; i < c->e->ninstances; i++) {
        sy_instance_t *x = c->e->instances[i];
        if (x->kind == SY_KIND_EXPORTER && x->thread == c->worker) sy__exporter_begin_drain(x);
    }
}

/*
 * Stops the workers of one role: runs `begin` on each
 * (which starts the shutdown of every component there), then waits until each
 * worker's loop has ended, all by `deadline`. The call objects live on the heap
 * and are leaked on a timeout, since a stuck worker may still read them.
 */
int sy__engine_stop_workers(sy__engine_t *e, sy__role_t role, sy__thread_fn begin,
                            uint64_t deadline)
{
    for (size_t i = 0; i < e->npools[role] && !e->wedged; i++) {
        sy__worker_t *wk = e->pools[role][i];
        if (!wk->thread.started) continue;
        sy__thread_t *w = &wk->thread;
        sy__role_call_t *c = malloc(sizeof(*c));
        if (!c) {
            SY__LOG(SY_LOG_ERROR, NULL, "out of memory stopping %s", w->name);
            continue;
        }
        *c = (sy__role_call_t){.e = e, .worker = w};
        int rc = sy__thread_call(w, begin, c, deadline);
        if (check_call(e, rc, "shutdown", w->name) == SY__ETIMEDOUT) return rc;
        free(c);
    }
    for (size_t i = 0; i < e->npools[role] && !e->wedged; i++) {
        sy__thread_t *w = &e->pools[role][i]->thread;
        if (check_call(e, sy__thread_stop(w, deadline), "closing the components", w->name) ==
            SY__ETIMEDOUT)
            return SY__ETIMEDOUT;
    }
    return SY_OK;
}

/* Waits for the workers a reload left to end (their retired instances close). */
static int stop_dying(sy__engine_t *e, uint64_t deadline)
{
    for (size_t i = 0; i < e->ndying && !e->wedged; i++)
        if (check_call(e, sy__thread_stop(&e->dying[i]->thread, deadline),
                       "closing stopped components", e->dying[i]->thread.name) == SY__ETIMEDOUT)
            return SY__ETIMEDOUT;
    return SY_OK;
}

int sy__engine_stop(sy__engine_t *e)
{
    sy__engine_set_status(SY_STATUS_STOPPING);
    SY__LOG(SY_LOG_INFO, NULL, "Shutdown: stopping receivers, draining pipelines and exporters.");
    if (e->wedged) return SY__ETIMEDOUT; /* a start call is still stuck */
    /* One deadline for the whole stop. Components give up what they still hold at
     * it (their own timers, on their workers); the main thread waits half a second
     * longer for them to have done so before it calls a worker stuck. */
    e->deadline_ms = sy__now_ms() + e->shutdown_timeout_ms;
    uint64_t hard = e->deadline_ms + 500;
    for (size_t i = 0; i < e->npipelines; i++)
        sy__pipeline_never_started(e->pipelines[i]);
    if (sy__engine_stop_workers(e, SY__ROLE_RECEIVER, shutdown_instances_on, hard) < 0 ||
        sy__engine_stop_workers(e, SY__ROLE_PIPELINE, sy__engine_drain_pipelines_on, hard) < 0 ||
        sy__engine_stop_workers(e, SY__ROLE_EXPORTER, drain_exporters_on, hard) < 0 ||
        sy__engine_stop_workers(e, SY__ROLE_EXTENSION, shutdown_instances_on, hard) < 0 ||
        stop_dying(e, hard) < 0) {
        SY__LOG(SY_LOG_ERROR, NULL,
                "shutdown deadline (%llu ms) missed: a component is stuck; data it holds is lost",
                (unsigned long long)e->shutdown_timeout_ms);
        return SY__ETIMEDOUT;
    }
    uint64_t lost = atomic_load(&e->lost_at_stop);
    if (lost) {
        SY__LOG(SY_LOG_ERROR, NULL,
                "%llu acknowledged items could not be delivered by the shutdown deadline",
                (unsigned long long)lost);
        return SY_ERROR;
    }
    return SY_OK;
}

static void free_pipeline(sy__pipeline_t *p)
{
    unregister_queue_metrics(p->queue_metrics, &p->in);
    if (p->queue_ready) {
        void *b;
        while (sy__mpmc_pop(&p->in, &b))
            sy__batch_release(b);
        sy__mpmc_destroy(&p->in);
    }
    for (size_t j = 0; j < p->npending; j++)
        sy__batch_release(p->pending[j].batch);
    free(p->pending);
    free(p->processors);
    free(p->exporters);
    free(p->upstream);
    free(p->id);
    free(p);
}

void sy__engine_free_instance(sy_instance_t *x)
{
    bool exp = x->kind == SY_KIND_EXPORTER || x->kind == SY_KIND_CONNECTOR;
    if (exp) unregister_queue_metrics(x->exp.queue_metrics, &x->exp.queue);
    if (exp && x->exp.queue_ready) {
        while (x->exp.backlog_pos < x->exp.backlog_n)
            sy__batch_release(x->exp.backlog[x->exp.backlog_pos++]);
        void *b;
        while (sy__mpmc_pop(&x->exp.queue, &b))
            sy__batch_release(b);
        sy__mpmc_destroy(&x->exp.queue);
    }
    if (exp) {
        while (x->exp.inherit_pos < x->exp.inherit_n)
            sy__batch_release(x->exp.inherit[x->exp.inherit_pos++]);
        free(x->exp.inherit);
    }
    if (x->config_owner) {
        sy__cfg_free_struct(x->plugin->config_fields, x->plugin->config_field_count, x->config);
        free(x->config);
    }
    free(x->recv.outputs);
    if (exp) free(x->exp.feeders);
    free(x->id);
    free(x->labels);
    free(x);
}

/* Stops a worker if it still runs (waiting as long as it takes), then frees it
 * and the instances retired to it. */
void sy__engine_free_worker(sy__worker_t *w)
{
    if (w->thread.started) sy__thread_stop(&w->thread, 0);
    for (size_t j = 0; j < w->nretired; j++)
        sy__engine_free_instance(w->retired[j]);
    free(w->retired);
    free(w);
}

void sy__engine_free(sy__engine_t *e)
{
    if (!e) return;
    if (e->wedged) return; /* a thread may still be inside; leave its memory alone */
    for (int r = 0; r < SY__ROLE_COUNT; r++) {
        for (size_t i = 0; i < e->npools[r]; i++)
            sy__engine_free_worker(e->pools[r][i]);
        free(e->pools[r]);
    }
    for (size_t i = 0; i < e->ndying; i++)
        sy__engine_free_worker(e->dying[i]);
    free(e->dying);
    for (size_t i = 0; i < e->npipelines; i++)
        free_pipeline(e->pipelines[i]);
    free(e->pipelines);
    for (size_t i = 0; i < e->ninstances; i++)
        sy__engine_free_instance(e->instances[i]);
    free(e->instances);
    free(e);
}
