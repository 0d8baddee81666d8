/*
 * test_exporterhelper.c - the exporter helper's queue and retry state machine
 * (plugins/common/exporterhelper.c), driven through a fake host API and a fake
 * transport whose attempts the test ends by hand.
 *
 * Each test runs a private libuv loop; back-off intervals are a few
 * milliseconds with no randomization, so the retries happen on time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <uv.h>

#include "batch.h"
#include "exporterhelper.h"

/* ---- the fake host ------------------------------------------------------------ */

#define MAX_METRICS 16
#define MAX_PENDING 16

typedef struct fake_metric_s {
    const char *name;
    int64_t value;
} fake_metric_t;

typedef struct fake_s {
    uv_loop_t loop;
    fake_metric_t metrics[MAX_METRICS];
    size_t nmetrics;
    uint64_t sent, failed; /* items, from exporter_outcome */
    unsigned ready_calls;
    unsigned sends, aborts;
    syc_xh_req_t *pending[MAX_PENDING]; /* attempts under way, oldest first */
    size_t npending;
    bool drained;
    syc_xh_config_t cfg;
    syc_xh_t *xh;
} fake_t;

static fake_t *F; /* the fake of the running test */

static bool f_log_enabled(const sy_instance_t *inst, sy_log_level_t level)
{
    (void)inst;
    (void)level;
    return false;
}

static void f_log(const sy_instance_t *inst, sy_log_level_t level, const char *fmt, ...)
{
    (void)inst;
    (void)level;
    (void)fmt;
}

static void *f_loop(const sy_instance_t *inst)
{
    (void)inst;
    return &F->loop;
}

static uint32_t f_signals(const sy_instance_t *inst)
{
    (void)inst;
    return SY_SIGNAL_TRACES;
}

static sy_metric_t *f_metric_register(sy_instance_t *inst, const char *name, const char *help,
                                      sy_metric_type_t type)
{
    (void)inst;
    (void)help;
    (void)type;
    assert_true(F->nmetrics < MAX_METRICS);
    F->metrics[F->nmetrics].name = name;
    F->metrics[F->nmetrics].value = 0;
    return (sy_metric_t *)&F->metrics[F->nmetrics++];
}

static void f_metric_add(sy_metric_t *m, int64_t delta)
{
    ((fake_metric_t *)m)->value += delta;
}

static void f_metric_set(sy_metric_t *m, int64_t value)
{
    ((fake_metric_t *)m)->value = value;
}

static int64_t metric(const char *name)
{
    for (size_t i = 0; i < F->nmetrics; i++)
        if (strcmp(F->metrics[i].name, name) == 0) return F->metrics[i].value;
    fail_msg("no metric %s", name);
    return -1;
}

static void f_outcome(sy_instance_t *inst, sy_signal_t signal, uint64_t items, bool sent)
{
    (void)inst;
    assert_int_equal(signal, SY_SIGNAL_TRACES);
    if (sent)
        F->sent += items;
    else
        F->failed += items;
}

static void f_ready(sy_instance_t *inst)
{
    (void)inst;
    F->ready_calls++;
}

static const sy_host_api_t fake_api = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_host_api_t),
    .log_enabled = f_log_enabled,
    .log = f_log,
    .loop = f_loop,
    .signals = f_signals,
    .batch_release = sy__batch_release,
    .batch_info = sy__batch_info,
    .batch_encoded = sy__batch_encoded,
    .ready = f_ready,
    .metric_register = f_metric_register,
    .metric_add = f_metric_add,
    .metric_set = f_metric_set,
    .exporter_outcome = f_outcome,
};

/* ---- the fake transport ------------------------------------------------------- */

static int t_send(void *ctx, syc_xh_req_t *req)
{
    (void)ctx;
    assert_true(F->npending < MAX_PENDING);
    F->pending[F->npending++] = req;
    F->sends++;
    return 0;
}

static void drop_pending(syc_xh_req_t *req)
{
    for (size_t i = 0; i < F->npending; i++)
        if (F->pending[i] == req) {
            memmove(&F->pending[i], &F->pending[i + 1],
                    (F->npending - i - 1) * sizeof(F->pending[0]));
            F->npending--;
            return;
        }
    fail_msg("request not pending");
}

static void t_abort(void *ctx, syc_xh_req_t *req)
{
    (void)ctx;
    drop_pending(req);
    F->aborts++;
}

static void t_req_free(void *ctx, syc_xh_req_t *req)
{
    (void)ctx;
    (void)req;
}

static const syc_xh_ops_t fake_ops = {.send = t_send, .abort = t_abort, .req_free = t_req_free};

/* Ends the oldest attempt under way with `verdict`. */
static void answer(syc_xh_verdict_t verdict)
{
    assert_true(F->npending > 0);
    syc_xh_req_t *req = F->pending[0];
    drop_pending(req);
    syc_xh_result_t res = {.verdict = verdict, .retry_after_ms = -1};
    snprintf(res.message, sizeof(res.message), "fake verdict %d", (int)verdict);
    syc_xh_attempt_done(req, &res);
}

/* Runs the loop until `cond` holds or `ms` pass; returns whether it held. */
static bool run_until(bool (*cond)(void), uint64_t ms)
{
    uint64_t end = uv_hrtime() / 1000000 + ms;
    while (!cond()) {
        if (uv_hrtime() / 1000000 > end) return false;
        uv_run(&F->loop, UV_RUN_NOWAIT);
        uv_sleep(1);
    }
    return true;
}

static bool has_pending(void)
{
    return F->npending > 0;
}

static bool is_drained(void)
{
    return F->drained;
}

/* ---- fixtures ----------------------------------------------------------------- */

/* A traces batch of `spans` empty spans, encoded. */
static sy_batch_t *make_batch(unsigned spans)
{
    assert_true(spans < 60);
    uint8_t buf[256];
    size_t inner = 2 * spans, n = 0;
    buf[n++] = 0x0a; /* resource_spans */
    buf[n++] = (uint8_t)(inner + 2);
    buf[n++] = 0x12; /* scope_spans */
    buf[n++] = (uint8_t)inner;
    for (unsigned i = 0; i < spans; i++) {
        buf[n++] = 0x12; /* spans: an empty Span */
        buf[n++] = 0x00;
    }
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, "test");
    uint8_t *data = sy__batch_alloc(b, n);
    memcpy(data, buf, n);
    char err[256];
    assert_int_equal(sy__batch_set_encoded(b, data, n, err, sizeof(err)), SY_OK);
    assert_int_equal(sy__batch_items(b), spans);
    return b;
}

static int setup(void **state)
{
    static fake_t fake;
    memset(&fake, 0, sizeof(fake));
    F = &fake;
    assert_int_equal(uv_loop_init(&F->loop), 0);
    F->cfg = (syc_xh_config_t){
        .timeout_ns = 1000000000,
        .retry_enabled = true,
        .initial_interval_ns = 20 * 1000000,
        .max_interval_ns = 40 * 1000000,
        .max_elapsed_ns = 10 * 1000000000LL,
        .multiplier = 2.0,
        .randomization_factor = 0.0,
        .queue_enabled = true,
        .num_consumers = 1,
        .queue_size = 2,
        .sizer = SYC_XH_SIZER_REQUESTS,
        .block_on_overflow = true,
    };
    *state = F;
    return 0;
}

/* Makes the helper once the test has adjusted the configuration. */
static void start(void)
{
    char err[256];
    assert_int_equal(syc_xh_config_validate(&F->cfg, err, sizeof(err)), SY_OK);
    F->xh = syc_xh_new(&fake_api, (sy_instance_t *)F, &F->cfg, &fake_ops, F, err, sizeof(err));
    assert_non_null(F->xh);
    assert_int_equal(syc_xh_start(F->xh), SY_OK);
}

static void on_drained(void *arg)
{
    ((fake_t *)arg)->drained = true;
}

/* Stops the helper (deadline 0: whatever is left is given up), frees it and the
 * loop. */
static int teardown(void **state)
{
    (void)state;
    if (F->xh) {
        if (!F->drained) syc_xh_shutdown(F->xh, 0, on_drained, F);
        assert_true(run_until(is_drained, 1000));
        syc_xh_free(F->xh);
    }
    uv_run(&F->loop, UV_RUN_DEFAULT); /* the close callbacks */
    assert_int_equal(uv_loop_close(&F->loop), 0);
    return 0;
}

/* ---- tests -------------------------------------------------------------------- */

/* A retryable failure waits the back-off interval, is counted by exporter_retries
 * and by exporter_queue_size while it waits, then is sent again. */
static void retry_with_backoff(void **state)
{
    (void)state;
    start();
    assert_int_equal(syc_xh_consume(F->xh, make_batch(3)), SY_OK);
    assert_int_equal(F->sends, 1);
    assert_int_equal(metric("exporter_queue_size"), 0); /* in flight, not waiting */

    uint64_t t0 = uv_hrtime();
    answer(SYC_XH_RETRYABLE);
    assert_int_equal(metric("exporter_retries"), 1);
    assert_int_equal(metric("exporter_queue_size"), 1); /* waiting for its retry */
    assert_int_equal(F->npending, 0);

    assert_true(run_until(has_pending, 2000));
    uint64_t waited_ms = (uv_hrtime() - t0) / 1000000;
    assert_true(waited_ms >= 19); /* initial_interval 20 ms, no randomization */
    assert_int_equal(F->sends, 2);
    assert_int_equal(metric("exporter_queue_size"), 0);

    answer(SYC_XH_SENT);
    assert_int_equal(F->sent, 3);
    assert_int_equal(F->failed, 0);
}

/* The next attempt would start past max_elapsed_time: the request is given up and
 * its items are counted as failed. */
static void give_up_after_max_elapsed(void **state)
{
    (void)state;
    F->cfg.max_elapsed_ns = 50 * 1000000; /* waits are 20 then 40 ms */
    start();
    assert_int_equal(syc_xh_consume(F->xh, make_batch(4)), SY_OK);
    answer(SYC_XH_RETRYABLE); /* 0 + 20 <= 50: retried */
    assert_true(run_until(has_pending, 2000));
    assert_int_equal(F->sends, 2);
    answer(SYC_XH_RETRYABLE); /* ~20 + 40 > 50: given up */
    assert_int_equal(F->failed, 4);
    assert_int_equal(F->sent, 0);
    assert_int_equal(metric("exporter_retries"), 1);
    assert_int_equal(metric("exporter_queue_size"), 0);
    assert_int_equal(F->npending, 0);
}

/* A permanent error is not retried. */
static void permanent_not_retried(void **state)
{
    (void)state;
    start();
    assert_int_equal(syc_xh_consume(F->xh, make_batch(5)), SY_OK);
    answer(SYC_XH_PERMANENT);
    assert_int_equal(F->failed, 5);
    assert_int_equal(metric("exporter_retries"), 0);
    uv_sleep(30);
    uv_run(&F->loop, UV_RUN_NOWAIT);
    assert_int_equal(F->sends, 1);
}

/* One consumer and room for two: the fourth batch is pushed back (SY_EAGAIN, the
 * caller keeps it), and ready() comes once a slot frees. */
static void queue_full_pushes_back(void **state)
{
    (void)state;
    start();
    assert_int_equal(syc_xh_consume(F->xh, make_batch(1)), SY_OK); /* sending */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(1)), SY_OK); /* queued */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(1)), SY_OK); /* queued */
    assert_int_equal(metric("exporter_queue_size"), 2);
    sy_batch_t *fourth = make_batch(1);
    assert_int_equal(syc_xh_consume(F->xh, fourth), SY_EAGAIN);
    assert_int_equal(F->ready_calls, 0);

    answer(SYC_XH_SENT); /* the next queued one starts: room for one */
    assert_int_equal(F->ready_calls, 1);
    assert_int_equal(metric("exporter_queue_size"), 1);
    assert_int_equal(syc_xh_consume(F->xh, fourth), SY_OK);
    for (int i = 0; i < 3; i++)
        answer(SYC_XH_SENT);
    assert_int_equal(F->sent, 4);
    assert_int_equal(F->failed, 0);
}

/* With block_on_overflow: false written, a full queue drops and counts. */
static void queue_full_drops_when_configured(void **state)
{
    (void)state;
    F->cfg.block_on_overflow = false;
    F->cfg.block_on_overflow_set = true;
    start();
    for (int i = 0; i < 3; i++)
        assert_int_equal(syc_xh_consume(F->xh, make_batch(2)), SY_OK);
    assert_int_equal(syc_xh_consume(F->xh, make_batch(2)), SY_OK); /* dropped */
    assert_int_equal(metric("exporter_enqueue_failed_spans"), 2);
    assert_int_equal(F->failed, 2);
}

/* Shutdown with a request backing off and one queued: the waiting one gets its
 * last attempt at once; what is still held at the deadline is aborted and counted
 * as failed, and then the helper reports drained. */
static void shutdown_counts_held_items_failed(void **state)
{
    (void)state;
    F->cfg.num_consumers = 1;
    start();
    assert_int_equal(syc_xh_consume(F->xh, make_batch(3)), SY_OK);
    assert_int_equal(syc_xh_consume(F->xh, make_batch(6)), SY_OK); /* queued */
    answer(SYC_XH_RETRYABLE);                                      /* backing off */
    assert_int_equal(metric("exporter_queue_size"), 2);            /* 1 queued + 1 waiting */

    syc_xh_shutdown(F->xh, 30, on_drained, F);
    assert_int_equal(F->sends, 2); /* the last attempt, now rather than after the wait */
    assert_false(F->drained);
    sy_batch_t *late = make_batch(1);
    assert_int_equal(syc_xh_consume(F->xh, late), SY_ECLOSED); /* the caller keeps it */
    sy__batch_release(late);

    answer(SYC_XH_RETRYABLE); /* while closing: no more retries */
    assert_int_equal(F->failed, 3);
    /* The queued one is sent; the backend never answers; the deadline passes. */
    assert_int_equal(F->npending, 1);
    assert_true(run_until(is_drained, 2000));
    assert_int_equal(F->aborts, 1);
    assert_int_equal(F->failed, 9);
    assert_int_equal(F->sent, 0);
    assert_int_equal(metric("exporter_queue_size"), 0);
}

/* The bytes sizer counts each request's serialized size (make_batch(n) is 4 + 2n
 * bytes), packing one that only has its decoded form; a request larger than the
 * whole queue is taken when the queue is empty; a full queue pushes back. */
static void bytes_sizer_counts_serialized_bytes(void **state)
{
    (void)state;
    F->cfg.sizer = SYC_XH_SIZER_BYTES;
    F->cfg.queue_size = 30;
    start();
    assert_int_equal(syc_xh_consume(F->xh, make_batch(5)), SY_OK); /* sending: 14 bytes */
    assert_int_equal(metric("exporter_queue_size"), 0);
    assert_int_equal(syc_xh_consume(F->xh, make_batch(5)), SY_OK); /* queued: 14 */
    sy_batch_t *decoded = make_batch(5);
    assert_non_null(sy__batch_request_mut(decoded)); /* drops the encoded form */
    sy_batch_info_t info;
    sy__batch_info(decoded, &info);
    assert_false(info.has_encoded);
    assert_int_equal(syc_xh_consume(F->xh, decoded), SY_OK); /* packed: 14, queued 28 */
    assert_int_equal(metric("exporter_queue_size"), 28);
    sy_batch_t *small = make_batch(1); /* 6 bytes: 34 > 30 */
    assert_int_equal(syc_xh_consume(F->xh, small), SY_EAGAIN);
    assert_int_equal(metric("exporter_queue_size"), 28);

    answer(SYC_XH_SENT); /* the next one starts: 14 left queued, room again */
    assert_int_equal(F->ready_calls, 1);
    assert_int_equal(metric("exporter_queue_size"), 14);
    assert_int_equal(syc_xh_consume(F->xh, small), SY_OK);
    assert_int_equal(metric("exporter_queue_size"), 20);
    for (int i = 0; i < 3; i++)
        answer(SYC_XH_SENT);
    assert_int_equal(metric("exporter_queue_size"), 0);

    /* 44 bytes, more than the queue holds: taken since the queue is empty. */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(20)), SY_OK); /* sending */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(20)), SY_OK); /* queued: 44 */
    assert_int_equal(metric("exporter_queue_size"), 44);
    sy_batch_t *more = make_batch(1);
    assert_int_equal(syc_xh_consume(F->xh, more), SY_EAGAIN);
    sy__batch_release(more);
    answer(SYC_XH_SENT);
    answer(SYC_XH_SENT);
    assert_int_equal(F->sent, 5 + 5 + 5 + 1 + 20 + 20);
    assert_int_equal(F->failed, 0);
}

/* syc_xh_consume_all: pieces of one batch are taken together or not at all. One
 * consumer, room for two: three pieces do not fit behind one in flight (SY_EAGAIN,
 * none taken, ready() later), two do; all are sent and counted. */
static void consume_all_or_none(void **state)
{
    (void)state;
    start();
    assert_int_equal(syc_xh_consume(F->xh, make_batch(1)), SY_OK); /* sending */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(1)), SY_OK); /* queued */
    sy_batch_t *three[3] = {make_batch(2), make_batch(3), make_batch(4)};
    assert_int_equal(syc_xh_consume_all(F->xh, three, 3), SY_EAGAIN);
    assert_int_equal(metric("exporter_queue_size"), 1); /* none of the three taken */
    answer(SYC_XH_SENT);
    answer(SYC_XH_SENT);
    assert_int_equal(F->ready_calls, 1);
    /* An empty queue takes them all, even more than its capacity (as one large
     * request is taken when the queue is empty). */
    assert_int_equal(syc_xh_consume_all(F->xh, three, 3), SY_OK);
    assert_int_equal(metric("exporter_queue_size"), 2); /* one sending, two queued */
    for (int i = 0; i < 3; i++)
        answer(SYC_XH_SENT);
    assert_int_equal(F->sent, 2 + 2 + 3 + 4);
    assert_int_equal(F->failed, 0);
    syc_xh_shutdown(F->xh, 0, on_drained, F);
    sy_batch_t *late = make_batch(1);
    assert_int_equal(syc_xh_consume_all(F->xh, &late, 1), SY_ECLOSED); /* the caller keeps it */
    sy__batch_release(late);
}

static const char *f_instance_id(const sy_instance_t *inst)
{
    (void)inst;
    return "otlphttp"; /* both instances: a reload's old and new one */
}

static bool succ_drained;

static void on_succ_drained(void *arg)
{
    (void)arg;
    succ_drained = true;
}

static bool succ_is_drained(void)
{
    return succ_drained;
}

/* Reload (exporterhelper.c "Handover"): a helper made later with the same instance
 * id is the successor. The old one, shutting down, hands it what is queued or
 * backing off at once and an attempt under way once it fails retryably, instead of
 * giving them up; the successor sends them once started. Nothing is counted as
 * failed; the old one counts what it handed in exporter_queue_handed_over_items. */
static void handover_to_successor(void **state)
{
    (void)state;
    static sy_host_api_t api;
    api = fake_api;
    api.instance_id = f_instance_id;
    char err[256];
    F->cfg.num_consumers = 2;
    F->cfg.queue_size = 4;
    F->xh = syc_xh_new(&api, (sy_instance_t *)F, &F->cfg, &fake_ops, F, err, sizeof(err));
    assert_non_null(F->xh);
    assert_int_equal(syc_xh_start(F->xh), SY_OK);
    assert_int_equal(syc_xh_consume(F->xh, make_batch(1)), SY_OK); /* sending */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(2)), SY_OK); /* sending */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(3)), SY_OK); /* queued */
    answer(SYC_XH_RETRYABLE);                                      /* 1: backing off */
    assert_int_equal(F->npending, 1);                              /* 2: under way */

    syc_xh_config_t cfg2 = F->cfg;
    syc_xh_t *succ =
        syc_xh_new(&api, (sy_instance_t *)&cfg2, &cfg2, &fake_ops, F, err, sizeof(err));
    assert_non_null(succ);
    succ_drained = false;

    syc_xh_shutdown(F->xh, 1000, on_drained, F);
    assert_int_equal(F->sends, 2); /* no last attempt: the waiting one was handed */
    assert_false(F->drained);      /* 2 is still under way */
    answer(SYC_XH_RETRYABLE);      /* fails while closing: handed too, not given up */
    assert_true(F->drained);
    assert_int_equal(F->failed, 0);
    assert_int_equal(metric("exporter_queue_handed_over_items"), 1 + 2 + 3);

    assert_int_equal(syc_xh_start(succ), SY_OK);
    assert_true(run_until(has_pending, 1000)); /* adopted on the loop's next turn */
    assert_int_equal(F->npending, 2);          /* its two consumers */
    while (F->npending)
        answer(SYC_XH_SENT);
    assert_int_equal(F->sent, 1 + 2 + 3);
    assert_int_equal(F->failed, 0);
    syc_xh_shutdown(succ, 0, on_succ_drained, NULL);
    assert_true(run_until(succ_is_drained, 1000));
    syc_xh_free(succ);
}

/* sending_queue.max_bytes bounds a queue counted in requests as well: full at
 * whichever bound comes first; an empty queue still takes one request. */
static void max_bytes_bounds_a_request_queue(void **state)
{
    (void)state;
    F->cfg.queue_size = 1000;
    F->cfg.max_bytes = 30;
    start();
    assert_int_equal(syc_xh_consume(F->xh, make_batch(5)), SY_OK); /* sending: 14 bytes */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(5)), SY_OK); /* queued: 14 */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(5)), SY_OK); /* queued: 28 */
    assert_int_equal(metric("exporter_queue_size"), 2);            /* in requests */
    sy_batch_t *small = make_batch(1);                             /* 6 bytes: 34 > 30 */
    assert_int_equal(syc_xh_consume(F->xh, small), SY_EAGAIN);
    answer(SYC_XH_SENT); /* one leaves the queue: 14 bytes queued */
    assert_int_equal(F->ready_calls, 1);
    assert_int_equal(syc_xh_consume(F->xh, small), SY_OK);
    for (int i = 0; i < 3; i++)
        answer(SYC_XH_SENT);
    /* 44 bytes alone, over the bound: taken since the queue is empty. */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(20)), SY_OK); /* sending */
    assert_int_equal(syc_xh_consume(F->xh, make_batch(20)), SY_OK); /* queued: 44 */
    sy_batch_t *more = make_batch(1);
    assert_int_equal(syc_xh_consume(F->xh, more), SY_EAGAIN);
    sy__batch_release(more);
    answer(SYC_XH_SENT);
    answer(SYC_XH_SENT);
    assert_int_equal(F->sent, 5 + 5 + 5 + 1 + 20 + 20);
    assert_int_equal(F->failed, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(retry_with_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(give_up_after_max_elapsed, setup, teardown),
        cmocka_unit_test_setup_teardown(permanent_not_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_full_pushes_back, setup, teardown),
        cmocka_unit_test_setup_teardown(queue_full_drops_when_configured, setup, teardown),
        cmocka_unit_test_setup_teardown(shutdown_counts_held_items_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(consume_all_or_none, setup, teardown),
        cmocka_unit_test_setup_teardown(bytes_sizer_counts_serialized_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(max_bytes_bounds_a_request_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(handover_to_successor, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
