/*
 * Settle tokens (core/settle.c): a token is done exactly once, when every batch
 * carrying it has reached its fan-outs (or was dropped) and every exporter it was
 * handed to has settled it, through merge, split, copy, drop and fan-out; and
 * concurrently, from several threads (in the "stress" label: runs under TSan).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "batch.h"
#include "batch_internal.h"
#include "settle.h"
#include "view.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#define THREADS    4
#define PER_THREAD 2000

typedef struct done_s {
    atomic_int calls;
    atomic_int status;
} done_t;

static void on_done(void *ud, int status)
{
    done_t *d = ud;
    atomic_store(&d->status, status);
    atomic_fetch_add(&d->calls, 1);
}

/* A batch of `n` spans (one resource, one scope), encoded. */
static sy_batch_t *make_batch(size_t n)
{
    Opentelemetry__Proto__Trace__V1__Span spans[32], *sp[32];
    char names[32][24];
    assert_true(n <= 32);
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__span__init(&spans[i]);
        snprintf(names[i], sizeof(names[i]), "s%zu", i);
        spans[i].name = names[i];
        sp[i] = &spans[i];
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans
        ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT,
        *ssp = &ss;
    ss.spans = sp;
    ss.n_spans = n;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    rs.scope_spans = &ssp;
    rs.n_scope_spans = 1;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = &rsp;
    req.n_resource_spans = 1;
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "test");
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = sy__batch_alloc(b, len);
    protobuf_c_message_pack(&req.base, buf);
    char err[128];
    assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof(err)), SY_OK);
    return b;
}

/* A receiver's request: a token on a batch, emitted to `routes` pipelines, the
 * maker's hold let go. */
static sy_batch_t *emitted(done_t *d, size_t n, unsigned routes)
{
    sy_batch_t *b = make_batch(n);
    sy_settle_t *t = sy__settle_new(on_done, d);
    assert_non_null(t);
    assert_int_equal(sy__settle_attach(b, t), SY_OK);
    sy__settle_routes(b, routes);
    sy__settle_drop(t, SY_OK);
    return b;
}

/* The end of a pipeline's chain: handed to k exporters, the route ends. */
static void fan_out(sy_batch_t *b, unsigned k)
{
    sy__settle_expect(b, k);
    sy__settle_route_end(b);
}

static void test_straight_to_two_exporters(void **state)
{
    (void)state;
    done_t d = {0};
    sy_batch_t *b = emitted(&d, 3, 1);
    assert_int_equal(atomic_load(&d.calls), 0);
    fan_out(b, 2);
    assert_int_equal(atomic_load(&d.calls), 0);
    sy__settle_done(b, SY_OK); /* the first exporter wrote it */
    assert_int_equal(atomic_load(&d.calls), 0);
    sy__settle_done(b, SY_OK);
    assert_int_equal(atomic_load(&d.calls), 1);
    assert_int_equal(atomic_load(&d.status), SY_OK);
    sy__batch_release(b); /* the batch lives on in memory: nothing more happens */
    assert_int_equal(atomic_load(&d.calls), 1);
}

static void test_failure_is_reported(void **state)
{
    (void)state;
    done_t d = {0};
    sy_batch_t *b = emitted(&d, 2, 1);
    fan_out(b, 2);
    sy__settle_done(b, SY_EAGAIN); /* abandoned at shutdown, or failed */
    sy__settle_done(b, SY_OK);
    assert_int_equal(atomic_load(&d.calls), 1);
    assert_int_equal(atomic_load(&d.status), SY_EAGAIN);
    sy__batch_release(b);
}

static void test_dropped_by_a_processor(void **state)
{
    (void)state;
    done_t d = {0};
    sy_batch_t *b = emitted(&d, 2, 1);
    sy__batch_release(b); /* a filter dropped it all */
    assert_int_equal(atomic_load(&d.calls), 1);
    assert_int_equal(atomic_load(&d.status), SY_OK);
}

static void test_merge_carries_every_token(void **state)
{
    (void)state;
    done_t d1 = {0}, d2 = {0};
    sy_batch_t *in[2] = {emitted(&d1, 2, 1), emitted(&d2, 3, 1)};
    sy_batch_t *m = sy__batch_merge("batch", in, 2);
    assert_non_null(m);
    assert_int_equal(m->nsettle, 2);
    sy__batch_release(in[0]);
    sy__batch_release(in[1]);
    assert_int_equal(atomic_load(&d1.calls) + atomic_load(&d2.calls), 0);
    fan_out(m, 1);
    assert_int_equal(atomic_load(&d1.calls) + atomic_load(&d2.calls), 0);
    sy__settle_done(m, SY_OK);
    assert_int_equal(atomic_load(&d1.calls), 1);
    assert_int_equal(atomic_load(&d2.calls), 1);
    sy__batch_release(m);
}

static void test_split_pieces_inherit(void **state)
{
    (void)state;
    done_t d = {0};
    sy_batch_t *b = emitted(&d, 10, 1);
    sy_batch_t *head = sy__batch_split("batch", &b, 4);
    assert_non_null(head);
    assert_non_null(b); /* the rest */
    assert_int_equal(sy__batch_items(head), 4);
    assert_int_equal(sy__batch_items(b), 6);
    fan_out(head, 1);
    sy__settle_done(head, SY_OK);
    sy__batch_release(head);
    assert_int_equal(atomic_load(&d.calls), 0); /* the rest is still on its way */
    sy_batch_t *mid = sy__batch_split("batch", &b, 3);
    fan_out(mid, 1);
    sy__settle_done(mid, SY_OK);
    assert_int_equal(atomic_load(&d.calls), 0);
    fan_out(b, 1);
    assert_int_equal(atomic_load(&d.calls), 0);
    sy__settle_done(b, SY_OK);
    assert_int_equal(atomic_load(&d.calls), 1);
    assert_int_equal(atomic_load(&d.status), SY_OK);
    sy__batch_release(mid);
    sy__batch_release(b);
}

static void test_copy_inherits(void **state)
{
    (void)state;
    done_t d = {0};
    sy_batch_t *b = emitted(&d, 2, 1);
    sy__batch_retain(b); /* shared: another holder keeps the original */
    sy_batch_t *c = sy__batch_copy(b);
    assert_non_null(c);
    sy__settle_route_end(b); /* as run_chain does: the copy replaces it */
    sy__batch_release(b);
    assert_int_equal(atomic_load(&d.calls), 0);
    fan_out(c, 1);
    sy__settle_done(c, SY_OK);
    assert_int_equal(atomic_load(&d.calls), 1);
    sy__batch_release(c);
    sy__batch_release(b);
    assert_int_equal(atomic_load(&d.calls), 1);
}

static void test_fan_out_to_two_pipelines(void **state)
{
    (void)state;
    done_t d = {0};
    sy_batch_t *b = emitted(&d, 2, 2);
    sy__batch_retain(b); /* one reference per pipeline */
    fan_out(b, 1);       /* pipeline A */
    sy__settle_done(b, SY_OK);
    assert_int_equal(atomic_load(&d.calls), 0); /* pipeline B has not finished */
    fan_out(b, 1);                              /* pipeline B */
    assert_int_equal(atomic_load(&d.calls), 0);
    sy__settle_done(b, SY_OK);
    assert_int_equal(atomic_load(&d.calls), 1);
    sy__batch_release(b);
    sy__batch_release(b);
}

static void test_attach_after_emit_refused(void **state)
{
    (void)state;
    done_t d = {0}, d2 = {0};
    sy_batch_t *b = emitted(&d, 1, 1);
    fan_out(b, 0); /* a pipeline without exporters: settled at once */
    assert_int_equal(atomic_load(&d.calls), 1);
    sy_settle_t *t = sy__settle_new(on_done, &d2);
    assert_int_equal(sy__settle_attach(b, t), SY_EINVAL);
    sy__settle_drop(t, SY_OK);
    assert_int_equal(atomic_load(&d2.calls), 1);
    sy__batch_release(b);
}

/* ---- threads ---------------------------------------------------------------------- */

static void *settler(void *arg)
{
    sy_batch_t *b = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        sy_settle_t *list[8];
        size_t n = sy__settle_claim(b, list, 8); /* as deliver() does */
        assert_int_equal(n, 4);
        sy__settle_done_list(list, n, SY_OK);
    }
    return NULL;
}

static void test_threads_settle_once(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        done_t d[4] = {{0}};
        sy_batch_t *in[4];
        for (int i = 0; i < 4; i++)
            in[i] = emitted(&d[i], 2, 1);
        sy_batch_t *m = sy__batch_merge("batch", in, 4);
        assert_non_null(m);
        for (int i = 0; i < 4; i++)
            sy__batch_release(in[i]);
        sy__settle_expect(m, THREADS * PER_THREAD);
        pthread_t th[THREADS];
        for (int i = 0; i < THREADS; i++)
            assert_int_equal(pthread_create(&th[i], NULL, settler, m), 0);
        sy__settle_route_end(m); /* the fan-out's end, meanwhile */
        for (int i = 0; i < THREADS; i++)
            pthread_join(th[i], NULL);
        sy_settle_t *none[1];
        assert_int_equal(sy__settle_claim(m, none, 1), 0); /* every obligation settled */
        for (int i = 0; i < 4; i++) {
            assert_int_equal(atomic_load(&d[i].calls), 1);
            assert_int_equal(atomic_load(&d[i].status), SY_OK);
        }
        sy__batch_release(m);
    }
}

/* A connector emits the very batch it was given into another pipeline: that
 * pipeline's exporters find no obligation, and the token waits for the batch's
 * end (every holder let go), never settling twice nor early. */
static void test_connector_reemits(void **state)
{
    (void)state;
    done_t d = {0};
    sy_batch_t *b = emitted(&d, 2, 1);
    fan_out(b, 1); /* pipeline A: the connector */
    sy_settle_t *list[8];
    size_t n = sy__settle_claim(b, list, 8);
    assert_int_equal(n, 1);
    sy__settle_seal(b);
    sy__batch_retain(b); /* the connector emits it to pipeline B */
    sy__settle_done_list(list, n, SY_OK);
    assert_int_equal(atomic_load(&d.calls), 1); /* A's route had ended: settled */
    fan_out(b, 1);                              /* pipeline B: nothing expected */
    assert_int_equal(sy__settle_claim(b, list, 8), 0);
    sy__batch_release(b);
    sy__batch_release(b);
    assert_int_equal(atomic_load(&d.calls), 1);
}

/* A processor that builds a new batch from items of held batches (tail_sampling,
 * through the view builder): the result carries the sources' tokens. */
static void test_view_builder_carries(void **state)
{
    (void)state;
    done_t d1 = {0}, d2 = {0};
    sy_batch_t *src[2] = {emitted(&d1, 3, 1), emitted(&d2, 2, 1)};
    sy_view_builder_t *vb = sy__view_build("tail_sampling", SY_SIGNAL_TRACES);
    assert_non_null(vb);
    sy_view_t *v[2];
    for (int i = 0; i < 2; i++) {
        v[i] = sy__view_open(src[i]);
        assert_non_null(v[i]);
        sy_view_node_t *res = sy__view_at(sy__view_root(v[i]), SY_VIEW_RESOURCES, 0);
        sy_view_node_t *sc = sy__view_at(res, SY_VIEW_SCOPES, 0);
        for (size_t k = 0; k < 2; k++) /* the same source twice: its tokens taken once */
            assert_int_equal(sy__view_build_add(vb, sy__view_at(sc, SY_VIEW_ITEMS, k)), SY_OK);
    }
    sy_batch_t *out = sy__view_build_finish(vb);
    assert_non_null(out);
    assert_int_equal(sy__batch_items(out), 4);
    assert_int_equal(out->nsettle, 2);
    for (int i = 0; i < 2; i++) {
        sy__view_close(v[i]);
        sy__batch_release(src[i]); /* the sources are let go of after the decision */
    }
    assert_int_equal(atomic_load(&d1.calls) + atomic_load(&d2.calls), 0);
    fan_out(out, 1);
    sy__settle_done(out, SY_OK);
    assert_int_equal(atomic_load(&d1.calls), 1);
    assert_int_equal(atomic_load(&d2.calls), 1);
    sy__batch_release(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_straight_to_two_exporters),
        cmocka_unit_test(test_failure_is_reported),
        cmocka_unit_test(test_dropped_by_a_processor),
        cmocka_unit_test(test_merge_carries_every_token),
        cmocka_unit_test(test_split_pieces_inherit),
        cmocka_unit_test(test_copy_inherits),
        cmocka_unit_test(test_fan_out_to_two_pipelines),
        cmocka_unit_test(test_attach_after_emit_refused),
        cmocka_unit_test(test_threads_settle_once),
        cmocka_unit_test(test_connector_reemits),
        cmocka_unit_test(test_view_builder_carries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
