/*
 * processor_bench - what the filter and transform processors cost per span, on
 * one core, in-process: the work their consume() does (the OTTL accessor over
 * the view, plugins/common/ottl_view.c, with conditions and statements compiled
 * once, drops or edits, one view_commit), on a batch made as a receiver makes one
 * (copy + walk). The first row is that copy + walk alone, so the processor's own
 * cost is the difference. Emitting downstream is not included; the bytes are
 * asked for at the end, as an exporter or a merge would (a commit of the shared
 * view is written then, docs/view.md). The last row runs a transform and then a
 * filter on the same batch, the second processor opening the view the first
 * committed, as a pipeline runs them.
 *
 *   processor_bench [--spans 512] [--attrs 10] [--seconds 2] [--iterations N] [--row R]
 *
 * The request is the load generator's (bench/loadgen_payload.c): 512 spans with
 * 10 attributes each, about 440 bytes a span.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "engine.h"
#include "loadgen_payload.h"
#include "ottl.h"
#include "ottl_view.h"

static const sy_host_api_t *api;
static syc_ottl_scratch_t *scratch;
typedef struct progset_s {
    syc_ottl_prog_t *progs[4];
    size_t nprogs;
    bool statements;
} progset_t;
static progset_t sets[2]; /* [1]: the second processor of the chain row */
static progset_t *cur = &sets[0];
static syc_ottl_view_item_t item;
static uint64_t kept;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "processor_bench: %s failed\n", what);
    exit(1);
}

static sy_batch_t *receive(const lg_payload_t *p)
{
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "bench");
    uint8_t *body = sy__batch_alloc(b, p->len);
    memcpy(body, p->body, p->len);
    if (sy__batch_set_encoded(b, body, p->len, NULL, 0) < 0) die("set_encoded");
    return b;
}

/* The filter's visit (any condition true: drop), or the transform's (every
 * statement in order). */
static int visit(sy_view_node_t *span, void *arg)
{
    (void)arg;
    syc_ottl_view_bind(&item, api, span);
    for (size_t i = 0; i < cur->nprogs; i++) {
        if (cur->statements) {
            if (syc_ottl_exec_statement(cur->progs[i], &syc_ottl_view_accessor, &item, scratch,
                                        NULL) < 0)
                die("statement");
            continue;
        }
        bool t = false;
        if (syc_ottl_eval_condition(cur->progs[i], &syc_ottl_view_accessor, &item, scratch, &t) < 0)
            die("condition");
        if (t) return api->view_drop(span);
    }
    return 0;
}

/* One processor's consume(): open, walk, commit, close. */
static void process(sy_batch_t *b, progset_t *set)
{
    cur = set;
    sy_view_t *v = api->view_open(b);
    if (syc_ottl_view_walk(api, api->view_root(v), SYC_OTTL_CTX_SPAN, visit, NULL) < 0) die("walk");
    if (api->view_commit(v) < 0) die("commit");
    api->view_close(v);
}

static void step(const lg_payload_t *p)
{
    sy_batch_t *b = receive(p);
    for (int i = 0; i < 2; i++)
        if (sets[i].nprogs) process(b, &sets[i]);
    if (!api->batch_encoded(b, NULL)) die("batch_encoded"); /* as an exporter would */
    sy_batch_info_t info;
    api->batch_info(b, &info);
    kept += info.items;
    sy__batch_release(b);
}

static void setup_set(progset_t *set, bool stmts, const char *const *src)
{
    for (size_t i = 0; i < set->nprogs; i++)
        syc_ottl_free(set->progs[i]);
    set->nprogs = 0;
    set->statements = stmts;
    for (; src && *src; src++) {
        syc_ottl_error_t err;
        set->progs[set->nprogs] =
            stmts ? syc_ottl_compile_statement(*src, strlen(*src), SYC_OTTL_CTX_SPAN, &err)
                  : syc_ottl_compile_condition(*src, strlen(*src), SYC_OTTL_CTX_SPAN, &err);
        if (!set->progs[set->nprogs]) {
            fprintf(stderr, "%s: %s\n", *src, err.msg);
            exit(1);
        }
        set->nprogs++;
    }
}

static void setup(bool stmts, const char *const *src)
{
    setup_set(&sets[0], stmts, src);
}

static unsigned long iterations; /* fixed number of batches a row instead of a time */
static int only = -1, row_index; /* one row only (0 the baseline, then in order) */

static void run(const char *name, const lg_payload_t *p, double seconds)
{
    if (only >= 0 && row_index++ != only) return;
    unsigned long calls = 0;
    kept = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < 8 && (!iterations || calls < iterations); i++, calls++)
            step(p);
        t = now();
    } while (iterations ? calls < iterations : t - t0 < seconds);
    double spans = (double)calls * p->spans;
    printf("%-58s %7.0f ns/span  %5.1f%% kept\n", name, (t - t0) / spans * 1e9,
           100.0 * (double)kept / spans);
}

int main(int argc, char **argv)
{
    lg_payload_opts_t opts = {.spans = 512, .attrs = 10, .distinct = 1, .seed = 1};
    double seconds = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--spans"))
            opts.spans = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--attrs"))
            opts.attrs = (unsigned)atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--iterations"))
            iterations = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--row"))
            only = atoi(argv[i + 1]);
    }
    lg_payload_set_t set;
    char err[256];
    if (lg_payload_build(&opts, &set, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    const lg_payload_t *p = &set.items[0];
    api = sy__host_api();
    scratch = syc_ottl_scratch_new(SYC_OTTL_SCRATCH_DEFAULT);
    printf("request: %u spans x %u attributes, %zu bytes\n", p->spans, opts.attrs, p->len);

    run("baseline: copy + walk (as received)", p, seconds);
    static const char *const f1[] = {"attributes[\"http.request.method\"] == \"DELETE\"", NULL};
    setup(false, f1);
    run("filter: 1 condition, attribute == string", p, seconds);
    static const char *const f2[] = {
        "name == \"health\"", "attributes[\"http.response.status_code\"] >= 500",
        "IsMatch(attributes[\"url.path\"], \"^/api/v1/users/[0-9]+/orders/9[0-9]*$\")", NULL};
    setup(false, f2);
    run("filter: 3 conditions (string, int, regex)", p, seconds);
    static const char *const t1[] = {"set(attributes[\"env\"], \"prod\")", NULL};
    setup(true, t1);
    run("transform: set one attribute", p, seconds);
    static const char *const t2[] = {
        "set(attributes[\"env\"], \"prod\")", "delete_key(attributes, \"thread.id\")",
        "replace_pattern(attributes[\"url.path\"], \"users/[0-9]+\", \"users/{id}\")",
        "set(name, \"db\") where attributes[\"db.system\"] == \"postgresql\"", NULL};
    setup(true, t2);
    run("transform: set, delete_key, replace_pattern, set where", p, seconds);
    static const char *const t3[] = {"delete_key(attributes, \"thread.id\")", NULL};
    setup(true, t3);
    run("transform: delete_key", p, seconds);
    setup_set(&sets[1], false, f1);
    run("chain: transform delete_key, then filter 1 condition", p, seconds);
    setup_set(&sets[1], false, NULL);
    setup(false, NULL);
    syc_ottl_scratch_free(scratch);
    lg_payload_free(&set);
    return 0;
}
