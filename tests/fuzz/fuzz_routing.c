/*
 * Fuzz target: the routing connector's decision and regrouping
 * (plugins/connectors/routing/routing_table.c) over any request the wire walk
 * accepts.
 *
 * Input: byte 0 picks the signal, byte 1 the table (which contexts its routes
 * use, whether there are default_pipelines, the error mode), the rest is the
 * request body. Properties:
 *  - routing never fails but under error_mode propagate (then only with a
 *    condition's run-time error recorded);
 *  - every item is accounted for once: matched + to_default + dropped = items,
 *    the batch's item count;
 *  - a split makes at most one batch per destination, in destination order, each
 *    holding the items it says and accepted again by the full validation walk
 *    (set_encoded of its bytes); their items and the dropped ones add up to the
 *    batch's; a whole decision names a destination of the table or none.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "engine.h"
#include "routing_table.h"

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_routing: property violated: %s\n", what);
        abort();
    }
}

typedef struct route_src_s {
    const char *context, *condition;
    const char *pipeline;
} route_src_t;

/* Routes of every context, on fields and attributes the seeds have; some fail
 * at run time on some data (a division by an attribute). */
static const route_src_t routes_all[] = {
    {"span", "attributes[\"k\"] == \"x\" or kind == SPAN_KIND_SERVER", "p/span"},
    {"log", "severity_number >= SEVERITY_NUMBER_ERROR", "p/log"},
    {"datapoint", "attributes[\"id\"] != nil and value_int > 2", "p/point"},
    {"metric", "name == \"m1\" or IsMatch(name, \"^queue\")", "p/metric"},
    {"resource", "attributes[\"tenant\"] == \"acme\"", "p/acme"},
    {"resource", "10 / attributes[\"n\"] > 1", "p/div"},
    {"resource", "attributes[\"service.name\"] != nil", "p/acme"},
};

static int build_table(rt_table_t *t, unsigned sel)
{
    memset(t, 0, sizeof *t);
    t->error_mode = (rt_error_mode_t)(sel % 3);
    size_t n = sizeof routes_all / sizeof routes_all[0];
    for (size_t i = 0; i < n; i++) {
        /* bits 2..: which routes; resource-only tables take the fast path */
        if (sel & 4 && strcmp(routes_all[i].context, "resource") != 0) continue;
        if (sel & 8 && i % 2) continue;
        const char *p = routes_all[i].pipeline;
        char err[256];
        if (rt_table_add(t, routes_all[i].context, NULL, routes_all[i].condition, &p, 1, err,
                         sizeof err) < 0) {
            fprintf(stderr, "fuzz_routing: %s\n", err);
            abort();
        }
    }
    static const char *const def[] = {"p/default"};
    if (rt_table_set_default(t, def, sel & 16 ? 0 : 1) < 0) return -1;
    return rt_table_finish(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    static const sy_signal_t signals[3] = {SY_SIGNAL_TRACES, SY_SIGNAL_METRICS, SY_SIGNAL_LOGS};
    sy_signal_t signal = signals[data[0] % 3];
    const uint8_t *body = data + 2;
    size_t len = size - 2;
    sy_batch_t *b = sy__batch_new(signal, "fuzz");
    uint8_t *copy = sy__batch_alloc(b, len ? len : 1);
    memcpy(copy, body, len);
    if (sy__batch_set_encoded(b, copy, len, NULL, 0) < 0) {
        sy__batch_release(b);
        return 0;
    }
    const sy_host_api_t *api = sy__host_api();
    sy_batch_info_t info;
    api->batch_info(b, &info);

    rt_table_t t;
    rt_runner_t r;
    check(build_table(&t, data[1]) == 0, "the table builds");
    check(rt_runner_init(&r) == 0, "the runner starts");
    rt_result_t res;
    int rc = rt_route(&t, &r, api, NULL, b, &res);
    if (rc < 0) {
        check(t.error_mode == RT_EM_PROPAGATE && res.errors > 0,
              "routing fails only for a condition under propagate");
        goto out;
    }
    check(rc == 0, "routing returns 0");
    check(res.items == info.items, "every item of the batch is routed");
    check(res.matched + res.to_default + res.dropped == res.items,
          "matched + default + dropped = items");
    if (t.default_dest != RT_DROP) check(res.dropped == 0, "nothing dropped with a default");
    if (res.whole) {
        check(res.nouts == 0, "a whole decision builds nothing");
        check(res.whole_dest == RT_DROP ||
                  (res.whole_dest >= 0 && (size_t)res.whole_dest < t.ndests),
              "a whole decision names a destination");
        check(res.whole_dest != RT_DROP || res.dropped == res.items,
              "a batch dropped whole counts every item dropped");
        goto out;
    }
    check(res.nouts >= 1 && res.nouts <= t.ndests, "at most one batch per destination");
    uint64_t sum = 0;
    int last = -1;
    for (size_t i = 0; i < res.nouts; i++) {
        const rt_out_t *o = &res.outs[i];
        check(o->dest > last && (size_t)o->dest < t.ndests, "outputs in destination order");
        last = o->dest;
        sy_batch_info_t oi;
        api->batch_info(o->batch, &oi);
        check(oi.signal == signal, "an output has the batch's signal");
        check(oi.items == o->items && o->items > 0, "an output holds the items it says");
        size_t olen = 0;
        const uint8_t *bytes = api->batch_encoded(o->batch, &olen);
        check(bytes != NULL, "an output has encoded bytes");
        sy_batch_t *again = sy__batch_new(signal, "fuzz");
        uint8_t *c2 = sy__batch_alloc(again, olen ? olen : 1);
        memcpy(c2, bytes, olen);
        check(sy__batch_set_encoded(again, c2, olen, NULL, 0) == 0,
              "an output passes the validation walk");
        api->batch_info(again, &oi);
        check(oi.items == o->items, "the walk counts an output's items");
        sy__batch_release(again);
        sum += o->items;
        api->batch_release(o->batch);
    }
    check(sum + res.dropped == res.items, "outputs + dropped = items");
out:
    rt_runner_free(&r);
    rt_table_free(&t);
    sy__batch_release(b);
    return 0;
}
