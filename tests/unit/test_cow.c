/*
 * Copy-on-write: a batch that someone else can see is never changed in place.
 *
 * The router tests load the real plugins (testgen, testsink, testmutate in two
 * builds, and the real batch processor) and feed one receiver to several
 * pipelines: a pipeline without processors must deliver exactly what an
 * identical, independent generator delivers (same span hashes, same bytes), and a
 * pipeline with the mutating processor must see every span renamed exactly once,
 * also behind `batch` with send_batch_max_size, whose pieces point into the
 * batch that the other pipelines read. A processor without SY_PLUGIN_MUTATES_DATA
 * is refused (NULL, a metric, a log line naming it) and changes nothing.
 *
 * The unit tests below them check sy__batch_is_shared on split pieces and their
 * parent, the depth of sy__batch_copy, and the refusal rule with stand-in
 * instances.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "batch.h"
#include "cow.h"
#include "engine.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "router.h"
#include "telemetry.h"

/* ---- running a router ------------------------------------------------------ */

typedef struct report_s {
    unsigned long long batches, items, distinct, duplicates, out_of_range, undecodable;
    unsigned long long names[3], span_hash, bytes_hash;
} report_t;

static void run_router(const char *yaml)
{
    const char *dirs[] = {SY_TEST_KIT_DIR, SY_TEST_PLUGIN_DIR};
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml = yaml, .plugin_dirs = dirs, .nplugin_dirs = 2};
    sy__router_t *r = sy__router_open(&opts, &diag);
    if (!r) sy__diag_print(&diag, stderr);
    assert_non_null(r);
    assert_int_equal(sy__router_start(r), 0);
    usleep(300000);
    /* Closing drains: every generated batch reaches its sink before the reports
     * are written. */
    assert_int_equal(sy__router_close(r), 0);
    sy__diag_free(&diag);
}

static void report_path(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "/tmp/sy_cow_%s.%d", name, (int)getpid());
}

static report_t read_report(const char *name)
{
    char path[128];
    report_path(path, sizeof(path), name);
    report_t r;
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int n =
        fscanf(f,
               "batches=%llu items=%llu distinct=%llu duplicates=%llu out_of_range=%llu "
               "undecodable=%llu names0=%llu names1=%llu names2=%llu span_hash=%llu "
               "bytes_hash=%llu",
               &r.batches, &r.items, &r.distinct, &r.duplicates, &r.out_of_range, &r.undecodable,
               &r.names[0], &r.names[1], &r.names[2], &r.span_hash, &r.bytes_hash);
    fclose(f);
    unlink(path);
    assert_int_equal(n, 11);
    fprintf(stderr,
            "%s: batches=%llu items=%llu distinct=%llu names0=%llu names1=%llu names2=%llu "
            "span_hash=%llu bytes_hash=%llu\n",
            name, r.batches, r.items, r.distinct, r.names[0], r.names[1], r.names[2], r.span_hash,
            r.bytes_hash);
    return r;
}

/* The value of a metric of the process-wide registry: registering the same name
 * and labels again returns the metric the plugin or the core registered. */
static int64_t metric(const char *name, const char *processor, const char *pipeline)
{
    char labels[256];
    assert_non_null(sy__metric_labels(labels, sizeof(labels), "processor", processor, "pipeline",
                                      pipeline, NULL));
    return sy__metric_value(sy__metric_register(name, "", SY_METRIC_COUNTER, labels));
}

/* A YAML document built line by line. */
typedef struct yaml_s {
    char text[4096];
    size_t len;
} yaml_t;

static void add(yaml_t *y, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(yaml_t *y, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(y->text + y->len, sizeof(y->text) - y->len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(y->text) - y->len);
    y->len += (size_t)n;
}

/* An exporter entry: every sink decodes, checks and digests what it gets. */
static void add_sink(yaml_t *y, const char *name, const char *extra)
{
    char path[128];
    report_path(path, sizeof(path), name);
    add(y, "  testsink/%s: {report_path: %s, verify: true, max_seq: 1000, digest: true%s}\n", name,
        path, extra);
}

/* A pipeline entry: processors is a YAML list body ("" for none). */
static void add_pipeline(yaml_t *y, const char *name, const char *receiver, const char *processors,
                         const char *sink)
{
    add(y, "    traces/%s: {receivers: [%s], processors: [%s], exporters: [testsink/%s]}\n", name,
        receiver, processors, sink);
}

/* The pipeline fed alone by the twin generator: what unchanged data looks like. */
static void expect_unchanged(const report_t *got, const report_t *ref, unsigned long long items)
{
    assert_int_equal(got->items, items);
    assert_int_equal(got->distinct, items);
    assert_int_equal(got->duplicates, 0);
    assert_int_equal(got->undecodable, 0);
    assert_int_equal(got->names[0], items);
    assert_int_equal(got->names[1], 0);
    assert_int_equal(got->names[2], 0);
    assert_int_equal(got->span_hash, ref->span_hash);
}

static void expect_renamed_once(const report_t *got, const report_t *ref, unsigned long long items)
{
    assert_int_equal(got->items, items);
    assert_int_equal(got->distinct, items);
    assert_int_equal(got->duplicates, 0);
    assert_int_equal(got->undecodable, 0);
    assert_int_equal(got->names[0], 0);
    assert_int_equal(got->names[1], items);
    assert_int_equal(got->names[2], 0);
    assert_true(got->span_hash != ref->span_hash);
}

/* (a) One receiver, two pipelines: the mutating processor gets a private copy,
 * and the other pipeline delivers byte for byte what the generator made. */
static void test_fan_out_mutation_stays_private(void **state)
{
    (void)state;
    yaml_t y = {0};
    add(&y, "receivers:\n"
            "  testgen/a: {count: 20, spans: 7}\n"
            "  testgen/aref: {count: 20, spans: 7}\n"
            "processors:\n"
            "  testmutate/a:\n"
            "exporters:\n");
    add_sink(&y, "a_plain", ", delay: 1ms"); /* slow: reads after the mutator ran */
    add_sink(&y, "a_mut", "");
    add_sink(&y, "a_ref", "");
    add(&y, "service:\n  telemetry: {logs: {level: warn}}\n  pipelines:\n");
    add_pipeline(&y, "a_plain", "testgen/a", "", "a_plain");
    add_pipeline(&y, "a_mut", "testgen/a", "testmutate/a", "a_mut");
    add_pipeline(&y, "a_ref", "testgen/aref", "", "a_ref");
    run_router(y.text);
    report_t ref = read_report("a_ref"), plain = read_report("a_plain"), mut = read_report("a_mut");
    assert_int_equal(ref.batches, 20);
    assert_int_equal(ref.names[0], 140);
    expect_unchanged(&plain, &ref, 140);
    assert_int_equal(plain.batches, 20);
    assert_int_equal(plain.bytes_hash, ref.bytes_hash);
    expect_renamed_once(&mut, &ref, 140);
    assert_int_equal(mut.batches, 20);
    assert_int_equal(metric("testmutate_mutated_batches", "testmutate/a", "traces/a_mut"), 20);
    assert_int_equal(metric("testmutate_mutated_spans", "testmutate/a", "traces/a_mut"), 140);
    assert_int_equal(metric("testmutate_refused_batches", "testmutate/a", "traces/a_mut"), 0);
    assert_int_equal(metric("batch_mutation_refused", "testmutate/a", "traces/a_mut"), 0);
}

/* (b) The same behind the real batch processor cutting batches to
 * send_batch_max_size. Without buffering, the pieces point straight into the
 * batch the other pipelines hold. With buffering, a first batch of 7 reaches
 * send_batch_size alone and is cut as it came (shared); the remainder kept until
 * the next flush is a piece, merged with the next batch and cut again. Both
 * mutating pipelines end with the same renamed spans, each renamed once. */
static void test_split_pieces_mutation_stays_private(void **state)
{
    (void)state;
    yaml_t y = {0};
    add(&y, "receivers:\n"
            "  testgen/b: {count: 20, spans: 7}\n"
            "  testgen/bref: {count: 20, spans: 7}\n"
            "processors:\n"
            "  batch/b_nobuf: {timeout: 0s, send_batch_size: 1, send_batch_max_size: 3}\n"
            "  batch/b_buf: {send_batch_size: 4, send_batch_max_size: 5, timeout: 10s}\n"
            "  testmutate/b1:\n"
            "  testmutate/b2:\n"
            "exporters:\n");
    add_sink(&y, "b_plain", ", delay: 1ms");
    add_sink(&y, "b_nobuf", "");
    add_sink(&y, "b_buf", "");
    add_sink(&y, "b_ref", "");
    add(&y, "service:\n  telemetry: {logs: {level: warn}}\n  pipelines:\n");
    add_pipeline(&y, "b_plain", "testgen/b", "", "b_plain");
    add_pipeline(&y, "b_nobuf", "testgen/b", "batch/b_nobuf, testmutate/b1", "b_nobuf");
    add_pipeline(&y, "b_buf", "testgen/b", "batch/b_buf, testmutate/b2", "b_buf");
    add_pipeline(&y, "b_ref", "testgen/bref", "", "b_ref");
    run_router(y.text);
    report_t ref = read_report("b_ref"), plain = read_report("b_plain"),
             nobuf = read_report("b_nobuf"), buf = read_report("b_buf");
    expect_unchanged(&plain, &ref, 140);
    assert_int_equal(plain.batches, 20);
    assert_int_equal(plain.bytes_hash, ref.bytes_hash);
    expect_renamed_once(&nobuf, &ref, 140);
    assert_int_equal(nobuf.batches, 60); /* 7 spans: 3 + 3 + 1 */
    expect_renamed_once(&buf, &ref, 140);
    assert_true(buf.batches >= 28); /* at most 5 spans each */
    assert_int_equal(nobuf.span_hash, buf.span_hash);
    assert_int_equal(metric("testmutate_mutated_spans", "testmutate/b1", "traces/b_nobuf"), 140);
    assert_int_equal(metric("testmutate_mutated_batches", "testmutate/b1", "traces/b_nobuf"), 60);
    assert_int_equal(metric("testmutate_refused_batches", "testmutate/b1", "traces/b_nobuf"), 0);
    assert_int_equal(metric("testmutate_mutated_spans", "testmutate/b2", "traces/b_buf"), 140);
    assert_int_equal(metric("testmutate_refused_batches", "testmutate/b2", "traces/b_buf"), 0);
}

/* Captures what is written to stderr (the log) while a router runs. */
static char *run_router_capturing_log(const char *yaml)
{
    fflush(stderr);
    FILE *f = tmpfile();
    assert_non_null(f);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
    run_router(yaml);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    assert_true(size >= 0);
    rewind(f);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    buf[fread(buf, 1, (size_t)size, f)] = '\0';
    fclose(f);
    return buf;
}

/* (c) Without SY_PLUGIN_MUTATES_DATA: refused on a shared batch (fan-out) and on
 * an unshared one alike, logged with the instance's ID, counted per instance, and
 * nothing changes anywhere, not even the encoded bytes. The same plugin may change
 * a batch it made itself. */
static void test_mutation_without_flag_refused(void **state)
{
    (void)state;
    yaml_t y = {0};
    add(&y, "receivers:\n"
            "  testgen/c: {count: 10, spans: 5}\n"
            "  testgen/csolo: {count: 10, spans: 5}\n"
            "  testgen/cref: {count: 10, spans: 5}\n"
            "processors:\n"
            "  testmutate_noflag/c:\n"
            "  testmutate_noflag/csolo:\n"
            "  testmutate_noflag/cown: {own_copy: true}\n"
            "exporters:\n");
    add_sink(&y, "c_plain", ", delay: 1ms");
    add_sink(&y, "c_noflag", "");
    add_sink(&y, "c_own", "");
    add_sink(&y, "c_solo", "");
    add_sink(&y, "c_ref", "");
    add(&y, "service:\n  telemetry: {logs: {level: warn}}\n  pipelines:\n");
    add_pipeline(&y, "c_plain", "testgen/c", "", "c_plain");
    /* Shared by fan-out: refused because shared (and unflagged). */
    add_pipeline(&y, "c_noflag", "testgen/c", "testmutate_noflag/c", "c_noflag");
    /* Its own copy, made with batch_merge: allowed. */
    add_pipeline(&y, "c_own", "testgen/c", "testmutate_noflag/cown", "c_own");
    /* Fed alone, so the batch is not shared: refused for the missing flag. */
    add_pipeline(&y, "c_solo", "testgen/csolo", "testmutate_noflag/csolo", "c_solo");
    add_pipeline(&y, "c_ref", "testgen/cref", "", "c_ref");
    char *log = run_router_capturing_log(y.text);
    fprintf(stderr, "captured log:\n%s", log);
    assert_non_null(strstr(log, "batch_request_mut refused for plugin testmutate_noflag/c"));
    assert_non_null(strstr(log, "SY_PLUGIN_MUTATES_DATA"));
    free(log);

    report_t ref = read_report("c_ref"), plain = read_report("c_plain"),
             noflag = read_report("c_noflag"), solo = read_report("c_solo"),
             own = read_report("c_own");
    assert_int_equal(ref.names[0], 50);
    expect_unchanged(&plain, &ref, 50);
    assert_int_equal(plain.bytes_hash, ref.bytes_hash);
    /* Refused: the batch goes on as it came, encoded bytes included. */
    expect_unchanged(&noflag, &ref, 50);
    assert_int_equal(noflag.bytes_hash, ref.bytes_hash);
    expect_unchanged(&solo, &ref, 50);
    assert_int_equal(solo.bytes_hash, ref.bytes_hash);
    expect_renamed_once(&own, &ref, 50);

    assert_int_equal(metric("testmutate_refused_batches", "testmutate_noflag/c", "traces/c_noflag"),
                     10);
    assert_int_equal(metric("testmutate_mutated_batches", "testmutate_noflag/c", "traces/c_noflag"),
                     0);
    assert_int_equal(
        metric("testmutate_refused_batches", "testmutate_noflag/csolo", "traces/c_solo"), 10);
    assert_int_equal(metric("testmutate_refused_batches", "testmutate_noflag/cown", "traces/c_own"),
                     0);
    assert_int_equal(metric("testmutate_mutated_batches", "testmutate_noflag/cown", "traces/c_own"),
                     10);

    /* The router's own counter, as /metrics shows it. */
    char *text = sy__metrics_render(NULL);
    assert_non_null(text);
    assert_non_null(strstr(text, "switchyard_batch_mutation_refused_total{processor="
                                 "\"testmutate_noflag/c\",pipeline=\"traces/c_noflag\"} 10\n"));
    assert_non_null(strstr(text, "switchyard_batch_mutation_refused_total{processor="
                                 "\"testmutate_noflag/csolo\",pipeline=\"traces/c_solo\"} 10\n"));
    assert_null(strstr(text, "switchyard_batch_mutation_refused_total{processor="
                             "\"testmutate_noflag/cown\""));
    free(text);
}

/* ---- the core's functions directly ------------------------------------------ */

/* An encoded traces batch of `n` spans named "span", as a receiver makes one. */
static sy_batch_t *make_traces(size_t n, const char *origin)
{
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_TRACES, origin);
    assert_non_null(b);
    Opentelemetry__Proto__Trace__V1__Span spans[16], *ptrs[16];
    uint8_t ids[16][8];
    assert_true(n <= 16);
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__span__init(&spans[i]);
        memset(ids[i], 0, 8);
        ids[i][7] = (uint8_t)i;
        spans[i].span_id.data = ids[i];
        spans[i].span_id.len = 8;
        spans[i].name = "span";
        ptrs[i] = &spans[i];
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = n;
    ss.spans = ptrs;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    size_t len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *buf = sy__batch_alloc(b, len);
    assert_non_null(buf);
    protobuf_c_message_pack(&req.base, buf);
    char err[128];
    assert_int_equal(sy__batch_set_encoded(b, buf, len, err, sizeof(err)), 0);
    return b;
}

/* Every span name of a decoded traces request, checked against `want`. */
static void
expect_names(const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req,
             const char *want, size_t count)
{
    assert_non_null(req);
    size_t seen = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++)
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss =
                req->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++, seen++)
                assert_string_equal(ss->spans[k]->name, want);
        }
    assert_int_equal(seen, count);
}

static void rename_all(Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req,
                       char *name)
{
    for (size_t i = 0; i < req->n_resource_spans; i++)
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++)
            for (size_t k = 0; k < req->resource_spans[i]->scope_spans[j]->n_spans; k++)
                req->resource_spans[i]->scope_spans[j]->spans[k]->name = name;
}

/* Pieces of a split share their parent's structs and are shared; the parent is
 * shared through the pieces' references; a copy of a piece owns all its memory
 * and outlives the parent and the pieces. */
static void test_split_sharing_and_deep_copy(void **state)
{
    (void)state;
    sy_batch_t *parent = make_traces(7, "recv");
    assert_false(sy__batch_is_shared(parent));
    sy__batch_retain(parent); /* the reference the split takes over */
    assert_true(sy__batch_is_shared(parent));
    sy_batch_t *rest = parent;
    sy_batch_t *head = sy__batch_split("batch", &rest, 3);
    assert_non_null(head);
    assert_non_null(rest);
    /* Ours, and one of each piece. */
    assert_int_equal(sy__batch_refs(parent), 3);
    assert_true(sy__batch_is_shared(parent));
    assert_int_equal(sy__batch_refs(head), 1);
    assert_int_equal(sy__batch_refs(rest), 1);
    assert_true(sy__batch_is_shared(head));
    assert_true(sy__batch_is_shared(rest));
    assert_null(sy__batch_request_mut(head));
    assert_null(sy__batch_request_mut(rest));
    assert_null(sy__batch_request_mut(parent));

    /* The remainder split again is a parent of pieces, and still shared once its
     * holder lets go of it. */
    sy_batch_t *rest2 = rest;
    sy_batch_t *mid = sy__batch_split("batch", &rest2, 2);
    assert_non_null(mid);
    assert_int_equal(sy__batch_refs(rest), 2);
    assert_true(sy__batch_is_shared(rest2));

    sy_batch_t *copy = sy__batch_copy(head);
    assert_non_null(copy);
    assert_false(sy__batch_is_shared(copy));
    assert_int_equal(sy__batch_items(copy), 3);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req =
        sy__batch_request_mut(copy);
    assert_non_null(req);
    char *name = sy__batch_alloc(copy, 8);
    strcpy(name, "changed");
    rename_all(req, name);

    expect_names(sy__batch_request(head), "span", 3);
    expect_names(sy__batch_request(parent), "span", 7);
    expect_names(sy__batch_request(mid), "span", 2);
    expect_names(sy__batch_request(rest2), "span", 2);

    /* Everything else gone: the copy still reads (ASan would see a reference into
     * freed memory), decoded and packed again. */
    sy__batch_release(head);
    sy__batch_release(mid);
    sy__batch_release(rest2);
    sy__batch_release(parent);
    size_t len = 0;
    const uint8_t *enc = sy__batch_encoded(copy, &len);
    assert_non_null(enc);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *again =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                         enc);
    expect_names(again, "changed", 3);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(again,
                                                                                            NULL);
    sy__batch_release(copy);
}

/* The rule of batch_request_mut with stand-in instances: who is current, the
 * flag, the batch's origin, and sharing. */
static void test_request_mut_rule(void **state)
{
    (void)state;
    sy_plugin_t noflag_plugin = {.kind = SY_KIND_PROCESSOR, .flags = 0};
    sy_plugin_t flag_plugin = {.kind = SY_KIND_PROCESSOR, .flags = SY_PLUGIN_MUTATES_DATA};
    sy_instance_t *noflag = calloc(1, sizeof(*noflag)), *flag = calloc(1, sizeof(*flag));
    assert_non_null(noflag);
    assert_non_null(flag);
    noflag->plugin = &noflag_plugin;
    noflag->id = "fake/noflag";
    noflag->labels = "processor=\"fake/noflag\",pipeline=\"traces/fake\"";
    flag->plugin = &flag_plugin;
    flag->id = "fake/flag";
    flag->labels = "processor=\"fake/flag\",pipeline=\"traces/fake\"";

    /* No instance current: a receiver building its own batch. */
    assert_null(sy__consumer_current());
    sy_batch_t *b = make_traces(2, "recv");
    assert_non_null(sy__cow_request_mut(b));
    sy__batch_release(b);

    /* A processor without the flag: not a batch it was handed, ... */
    assert_null(sy__consumer_enter(noflag));
    b = make_traces(2, "recv");
    assert_null(sy__cow_request_mut(b));
    sy_batch_info_t info;
    sy__batch_info(b, &info);
    assert_true(info.has_encoded); /* refused: nothing dropped either */
    assert_int_equal(metric("batch_mutation_refused", "fake/noflag", "traces/fake"), 1);
    sy__batch_release(b);
    /* ... not one made by another instance of the same ID, ... */
    char other_id[] = "fake/noflag";
    b = make_traces(2, other_id);
    assert_null(sy__cow_request_mut(b));
    sy__batch_release(b);
    /* ... but one it made itself. */
    b = make_traces(2, noflag->id);
    assert_non_null(sy__cow_request_mut(b));
    sy__batch_release(b);
    assert_int_equal(metric("batch_mutation_refused", "fake/noflag", "traces/fake"), 2);

    /* A processor with the flag, called from the first one's emit(). */
    assert_ptr_equal(sy__consumer_enter(flag), noflag);
    b = make_traces(2, "recv");
    assert_non_null(sy__cow_request_mut(b));
    sy__batch_retain(b);
    assert_null(sy__cow_request_mut(b)); /* shared: not even with the flag */
    assert_int_equal(metric("batch_mutation_refused", "fake/flag", "traces/fake"), 1);
    sy__batch_release(b);
    sy__batch_release(b);
    sy__consumer_leave(noflag);
    assert_ptr_equal(sy__consumer_current(), noflag);
    sy__consumer_leave(NULL);
    assert_null(sy__consumer_current());

    /* Shared with no instance current is refused too, and counted unlabelled. */
    b = make_traces(2, "recv");
    sy__batch_retain(b);
    assert_null(sy__cow_request_mut(b));
    sy__batch_release(b);
    sy__batch_release(b);
    free(noflag);
    free(flag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First: the refusal log is rate-limited process-wide, and this test reads
         * it. */
        cmocka_unit_test(test_mutation_without_flag_refused),
        cmocka_unit_test(test_fan_out_mutation_stays_private),
        cmocka_unit_test(test_split_pieces_mutation_stays_private),
        cmocka_unit_test(test_split_sharing_and_deep_copy),
        cmocka_unit_test(test_request_mut_rule),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    sy__telemetry_shutdown();
    return rc;
}
