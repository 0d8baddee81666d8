/*
 * debug_detailed.c - the debug exporter's `detailed` verbosity text: the
 * collector's otlptext dump, field by field, for traces, metrics and logs.
 *
 * The request is read through the host's view (ABI 1.1): every string is a
 * pointer and a length into the encoded bytes and is written whole, a NUL byte
 * as `\u0000` (dbg_put_str). An absent field reads as EMPTY (0, ""), which is
 * what the decoded form printed for it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug_format_internal.h"

/*
 * "<header>:" and one "     -> key: Type(value)" line per attribute; nothing
 * for no attributes. A header that itself starts with an arrow ("     -> Attributes:")
 * indents its entries by the arrow's indentation, as otlptext does.
 */
static void put_attributes(dbg_buf_t *b, const char *header, sy_view_node_t *node)
{
    const sy_host_api_t *api = b->api;
    size_t n = api->view_attr_count(node);
    if (n == 0) return;
    dbg_buf_printf(b, "%s:\n", header);
    const char *arrow = strstr(header, "->");
    int indent = arrow ? (int)(arrow - header) : 0;
    for (size_t i = 0; i < n; i++) {
        sy_value_t k, v;
        if (api->view_attr_at(node, i, &k, &v) < 0) continue;
        dbg_buf_printf(b, "%*s     -> ", indent, "");
        dbg_put_sv(b, &k);
        dbg_buf_puts(b, ": ");
        dbg_put_value(b, &v);
        dbg_buf_put(b, "\n", 1);
    }
}

/* "    <name padded to 15>: " as otlptext's logAttr. */
static void put_field(dbg_buf_t *b, const char *name)
{
    dbg_buf_printf(b, "    %-15s: ", name);
}

static void put_field_cstr(dbg_buf_t *b, const char *name, const char *value)
{
    put_field(b, name);
    dbg_buf_printf(b, "%s\n", value);
}

static void put_field_sv(dbg_buf_t *b, const char *name, const sy_value_t *v)
{
    put_field(b, name);
    dbg_put_sv(b, v);
    dbg_buf_put(b, "\n", 1);
}

static void put_field_time(dbg_buf_t *b, const char *name, sy_view_node_t *node, sy_field_t f)
{
    put_field(b, name);
    dbg_put_time(b, (uint64_t)dbg_get(b, node, f).i);
    dbg_buf_put(b, "\n", 1);
}

static void put_field_id(dbg_buf_t *b, const char *name, sy_view_node_t *node, sy_field_t f)
{
    sy_value_t id = dbg_get(b, node, f);
    put_field(b, name);
    dbg_put_id(b, &id);
    dbg_buf_put(b, "\n", 1);
}

/* "<label><string>\n" */
static void put_line_sv(dbg_buf_t *b, const char *label, const sy_value_t *v)
{
    dbg_buf_puts(b, label);
    dbg_put_sv(b, v);
    dbg_buf_put(b, "\n", 1);
}

/* ---- entity refs: not in the view, read from the encoded Resource -------------- */

/* One string field of an encoded message, the last occurrence as protobuf reads
 * it: a (pointer, length) pair found by dbg_wire_each. */
typedef struct wire_str_s {
    const uint8_t *p;
    size_t len;
    bool set;
} wire_str_t;

static void take_str(void *arg, const uint8_t *p, size_t len)
{
    *(wire_str_t *)arg = (wire_str_t){p, len, true};
}

typedef struct entity_ctx_s {
    dbg_buf_t *b;
    size_t index;
    bool header;
    bool any_key; /* the keys list header was written */
} entity_ctx_t;

static void put_entity_key(void *arg, const uint8_t *p, size_t len)
{
    entity_ctx_t *c = arg;
    dbg_buf_puts(c->b, "               -> ");
    dbg_put_str(c->b, (const char *)p, len);
    dbg_buf_put(c->b, "\n", 1);
}

static void put_entity_ref(void *arg, const uint8_t *p, size_t len)
{
    entity_ctx_t *c = arg;
    dbg_buf_t *b = c->b;
    if (!c->header) dbg_buf_puts(b, "Resource entity refs:\n");
    c->header = true;
    wire_str_t type = {0}, schema = {0};
    dbg_wire_each(p, len, 2, take_str, &type);
    dbg_wire_each(p, len, 1, take_str, &schema);
    dbg_buf_printf(b, "     -> Entity ref #%zu:\n", c->index++);
    dbg_buf_puts(b, "          -> Type: ");
    if (type.set) dbg_put_str(b, (const char *)type.p, type.len);
    dbg_buf_put(b, "\n", 1);
    if (schema.set && schema.len) {
        dbg_buf_puts(b, "          -> Schema URL: ");
        dbg_put_str(b, (const char *)schema.p, schema.len);
        dbg_buf_put(b, "\n", 1);
    }
    if (dbg_wire_each(p, len, 3, NULL, NULL) > 0) {
        dbg_buf_puts(b, "          -> ID keys:\n");
        dbg_wire_each(p, len, 3, put_entity_key, c);
    }
    if (dbg_wire_each(p, len, 4, NULL, NULL) > 0) {
        dbg_buf_puts(b, "          -> Description keys:\n");
        dbg_wire_each(p, len, 4, put_entity_key, c);
    }
}

static void entity_refs_of_resource(void *arg, const uint8_t *p, size_t len)
{
    dbg_wire_each(p, len, 3, put_entity_ref, arg); /* Resource.entity_refs */
}

/* The i-th ResourceSpans / ResourceMetrics / ResourceLogs of the request. */
typedef struct nth_ctx_s {
    size_t want, at;
    wire_str_t found;
} nth_ctx_t;

static void take_nth(void *arg, const uint8_t *p, size_t len)
{
    nth_ctx_t *c = arg;
    if (c->at++ == c->want) c->found = (wire_str_t){p, len, true};
}

static void put_entity_refs(dbg_buf_t *b, const uint8_t *req, size_t req_len, size_t i)
{
    if (!req) return;
    nth_ctx_t nth = {.want = i};
    dbg_wire_each(req, req_len, 1, take_nth, &nth);
    if (!nth.found.set) return;
    entity_ctx_t c = {.b = b};
    /* ResourceX.resource (every occurrence: protobuf merges them). */
    dbg_wire_each(nth.found.p, nth.found.len, 1, entity_refs_of_resource, &c);
}

/* ---- resources and scopes ------------------------------------------------------ */

static void put_resource(dbg_buf_t *b, const char *what, size_t i, sy_view_node_t *res,
                         const uint8_t *req, size_t req_len)
{
    sy_value_t schema = dbg_get(b, res, SY_FIELD_SCHEMA_URL);
    dbg_buf_printf(b, "%s #%zu\n", what, i);
    put_line_sv(b, "Resource SchemaURL: ", &schema);
    put_attributes(b, "Resource attributes", res);
    put_entity_refs(b, req, req_len, i);
}

static void put_scope(dbg_buf_t *b, const char *what, size_t j, sy_view_node_t *scope)
{
    sy_value_t schema = dbg_get(b, scope, SY_FIELD_SCHEMA_URL);
    sy_value_t name = dbg_get(b, scope, SY_FIELD_SCOPE_NAME);
    sy_value_t version = dbg_get(b, scope, SY_FIELD_SCOPE_VERSION);
    dbg_buf_printf(b, "%s #%zu\n", what, j);
    dbg_buf_printf(b, "%s SchemaURL: ", what);
    dbg_put_sv(b, &schema);
    dbg_buf_puts(b, "\nInstrumentationScope ");
    dbg_put_sv(b, &name);
    dbg_buf_put(b, " ", 1);
    dbg_put_sv(b, &version);
    dbg_buf_put(b, "\n", 1);
    put_attributes(b, "InstrumentationScope attributes", scope);
}

/* ---- traces -------------------------------------------------------------------- */

static void detailed_span(dbg_buf_t *b, sy_view_node_t *sp)
{
    const sy_host_api_t *api = b->api;
    put_field_id(b, "Trace ID", sp, SY_FIELD_TRACE_ID);
    put_field_id(b, "Parent ID", sp, SY_FIELD_PARENT_SPAN_ID);
    put_field_id(b, "ID", sp, SY_FIELD_SPAN_ID);
    sy_value_t name = dbg_get(b, sp, SY_FIELD_NAME);
    put_field_sv(b, "Name", &name);
    put_field_cstr(b, "Kind", dbg_span_kind(dbg_get(b, sp, SY_FIELD_KIND).i));
    sy_value_t ts = dbg_get(b, sp, SY_FIELD_TRACE_STATE);
    if (dbg_sv_set(&ts)) put_field_sv(b, "TraceState", &ts);
    put_field_time(b, "Start time", sp, SY_FIELD_START_TIME);
    put_field_time(b, "End time", sp, SY_FIELD_END_TIME);
    put_field_cstr(b, "Status code", dbg_status_code(dbg_get(b, sp, SY_FIELD_STATUS_CODE).i));
    sy_value_t msg = dbg_get(b, sp, SY_FIELD_STATUS_MESSAGE);
    put_field_sv(b, "Status message", &msg);
    dbg_buf_printf(b, "    DroppedAttributesCount: %u\n",
                   (unsigned)dbg_get(b, sp, SY_FIELD_DROPPED_ATTRIBUTES).i);
    dbg_buf_printf(b, "    DroppedEventsCount: %u\n",
                   (unsigned)dbg_get(b, sp, SY_FIELD_DROPPED_EVENTS).i);
    dbg_buf_printf(b, "    DroppedLinksCount: %u\n",
                   (unsigned)dbg_get(b, sp, SY_FIELD_DROPPED_LINKS).i);
    put_attributes(b, "Attributes", sp);
    size_t nev = api->view_count(sp, SY_VIEW_EVENTS);
    if (nev) dbg_buf_puts(b, "Events:\n");
    for (size_t e = 0; e < nev; e++) {
        sy_view_node_t *ev = api->view_at(sp, SY_VIEW_EVENTS, e);
        sy_value_t evname = dbg_get(b, ev, SY_FIELD_NAME);
        dbg_buf_printf(b, "SpanEvent #%zu\n", e);
        put_line_sv(b, "     -> Name: ", &evname);
        dbg_buf_puts(b, "     -> Timestamp: ");
        dbg_put_time(b, (uint64_t)dbg_get(b, ev, SY_FIELD_TIME).i);
        dbg_buf_printf(b, "\n     -> DroppedAttributesCount: %u\n",
                       (unsigned)dbg_get(b, ev, SY_FIELD_DROPPED_ATTRIBUTES).i);
        put_attributes(b, "     -> Attributes:", ev);
    }
    size_t nln = api->view_count(sp, SY_VIEW_LINKS);
    if (nln) dbg_buf_puts(b, "Links:\n");
    for (size_t l = 0; l < nln; l++) {
        sy_view_node_t *ln = api->view_at(sp, SY_VIEW_LINKS, l);
        sy_value_t tid = dbg_get(b, ln, SY_FIELD_TRACE_ID);
        sy_value_t sid = dbg_get(b, ln, SY_FIELD_SPAN_ID);
        sy_value_t lts = dbg_get(b, ln, SY_FIELD_TRACE_STATE);
        dbg_buf_printf(b, "SpanLink #%zu\n", l);
        dbg_buf_puts(b, "     -> Trace ID: ");
        dbg_put_id(b, &tid);
        dbg_buf_puts(b, "\n     -> ID: ");
        dbg_put_id(b, &sid);
        dbg_buf_puts(b, "\n");
        put_line_sv(b, "     -> TraceState: ", &lts);
        dbg_buf_printf(b, "     -> DroppedAttributesCount: %u\n",
                       (unsigned)dbg_get(b, ln, SY_FIELD_DROPPED_ATTRIBUTES).i);
        put_attributes(b, "     -> Attributes:", ln);
    }
}

/* ---- metrics ------------------------------------------------------------------- */

static void put_exemplars(dbg_buf_t *b, sy_view_node_t *dp)
{
    const sy_host_api_t *api = b->api;
    size_t n = api->view_count(dp, SY_VIEW_EXEMPLARS);
    if (n == 0) return;
    dbg_buf_puts(b, "Exemplars:\n");
    for (size_t i = 0; i < n; i++) {
        sy_view_node_t *e = api->view_at(dp, SY_VIEW_EXEMPLARS, i);
        sy_value_t tid = dbg_get(b, e, SY_FIELD_TRACE_ID);
        sy_value_t sid = dbg_get(b, e, SY_FIELD_SPAN_ID);
        dbg_buf_printf(b, "Exemplar #%zu\n     -> Trace ID: ", i);
        dbg_put_id(b, &tid);
        dbg_buf_puts(b, "\n     -> Span ID: ");
        dbg_put_id(b, &sid);
        dbg_buf_puts(b, "\n     -> Timestamp: ");
        dbg_put_time(b, (uint64_t)dbg_get(b, e, SY_FIELD_TIME).i);
        dbg_buf_put(b, "\n", 1);
        sy_value_t v = dbg_get(b, e, SY_FIELD_VALUE);
        if (v.type == SY_VALUE_INT) {
            dbg_buf_printf(b, "     -> Value: %lld\n", (long long)v.i);
        } else if (v.type == SY_VALUE_DOUBLE) {
            dbg_buf_puts(b, "     -> Value: ");
            dbg_put_float_f(b, v.d);
            dbg_buf_put(b, "\n", 1);
        }
        put_attributes(b, "     -> FilteredAttributes", e);
    }
}

/* The lines every data point kind starts with. */
static void put_point_head(dbg_buf_t *b, const char *kind, size_t i, sy_view_node_t *dp)
{
    dbg_buf_printf(b, "%s #%zu\n", kind, i);
    put_attributes(b, "Data point attributes", dp);
    dbg_buf_puts(b, "StartTimestamp: ");
    dbg_put_time(b, (uint64_t)dbg_get(b, dp, SY_FIELD_START_TIME).i);
    dbg_buf_puts(b, "\nTimestamp: ");
    dbg_put_time(b, (uint64_t)dbg_get(b, dp, SY_FIELD_TIME).i);
    dbg_buf_put(b, "\n", 1);
}

static void put_line_f(dbg_buf_t *b, const char *label, double v)
{
    dbg_buf_printf(b, "%s: ", label);
    dbg_put_float_f(b, v);
    dbg_buf_put(b, "\n", 1);
}

/* Count, and Sum, Min and Max when present, of the histogram kinds. */
static void put_count_sum_min_max(dbg_buf_t *b, sy_view_node_t *dp)
{
    dbg_buf_printf(b, "Count: %llu\n", (unsigned long long)dbg_get(b, dp, SY_FIELD_COUNT).i);
    sy_value_t v = dbg_get(b, dp, SY_FIELD_SUM);
    if (v.type == SY_VALUE_DOUBLE) put_line_f(b, "Sum", v.d);
    v = dbg_get(b, dp, SY_FIELD_MIN);
    if (v.type == SY_VALUE_DOUBLE) put_line_f(b, "Min", v.d);
    v = dbg_get(b, dp, SY_FIELD_MAX);
    if (v.type == SY_VALUE_DOUBLE) put_line_f(b, "Max", v.d);
}

static void detailed_number_point(dbg_buf_t *b, size_t i, sy_view_node_t *dp)
{
    put_point_head(b, "NumberDataPoints", i, dp);
    sy_value_t v = dbg_get(b, dp, SY_FIELD_VALUE);
    if (v.type == SY_VALUE_INT)
        dbg_buf_printf(b, "Value: %lld\n", (long long)v.i);
    else if (v.type == SY_VALUE_DOUBLE)
        put_line_f(b, "Value", v.d);
    put_exemplars(b, dp);
}

static void detailed_histogram_point(dbg_buf_t *b, size_t i, sy_view_node_t *dp)
{
    const sy_host_api_t *api = b->api;
    put_point_head(b, "HistogramDataPoints", i, dp);
    put_count_sum_min_max(b, dp);
    sy_value_t bounds = dbg_get(b, dp, SY_FIELD_EXPLICIT_BOUNDS);
    sy_value_iter_t it = {.value = &bounds};
    sy_value_t x;
    for (size_t k = 0; api->view_value_next(&it, NULL, &x) == 1; k++) {
        dbg_buf_printf(b, "ExplicitBounds #%zu: ", k);
        dbg_put_float_f(b, x.d);
        dbg_buf_put(b, "\n", 1);
    }
    sy_value_t counts = dbg_get(b, dp, SY_FIELD_BUCKET_COUNTS);
    it = (sy_value_iter_t){.value = &counts};
    for (size_t k = 0; api->view_value_next(&it, NULL, &x) == 1; k++)
        dbg_buf_printf(b, "Buckets #%zu, Count: %llu\n", k, (unsigned long long)x.i);
    put_exemplars(b, dp);
}

/* The bucket counts of one side of an exponential histogram, into an array
 * (the negative side is written from its last bucket). NULL when empty. */
static uint64_t *exp_buckets(dbg_buf_t *b, sy_view_node_t *dp, sy_field_t f, size_t *n)
{
    sy_value_t v = dbg_get(b, dp, f);
    *n = 0;
    if (v.type != SY_VALUE_ARRAY || v.len == 0) return NULL;
    uint64_t *out = malloc(v.len * sizeof(*out));
    if (!out) {
        b->truncated = true;
        return NULL;
    }
    sy_value_iter_t it = {.value = &v};
    sy_value_t x;
    while (*n < v.len && b->api->view_value_next(&it, NULL, &x) == 1)
        out[(*n)++] = (uint64_t)x.i;
    return out;
}

static void detailed_exp_histogram_point(dbg_buf_t *b, size_t i, sy_view_node_t *dp)
{
    put_point_head(b, "ExponentialHistogramDataPoints", i, dp);
    put_count_sum_min_max(b, dp);
    /* Bucket bounds as otlptext computes them: exp(index * ln2 / 2^scale). */
    int32_t scale = (int32_t)dbg_get(b, dp, SY_FIELD_SCALE).i;
    double factor = ldexp(M_LN2, -scale);
    int32_t neg_off = (int32_t)dbg_get(b, dp, SY_FIELD_NEGATIVE_OFFSET).i;
    int32_t pos_off = (int32_t)dbg_get(b, dp, SY_FIELD_POSITIVE_OFFSET).i;
    size_t nneg, npos;
    uint64_t *neg = exp_buckets(b, dp, SY_FIELD_NEGATIVE_BUCKETS, &nneg);
    for (size_t k = 0; k < nneg; k++) {
        size_t at = nneg - k - 1;
        double index = (double)neg_off + (double)at;
        dbg_buf_puts(b, "Bucket [");
        dbg_put_float_f(b, -exp((index + 1) * factor));
        dbg_buf_puts(b, ", ");
        dbg_put_float_f(b, -exp(index * factor));
        dbg_buf_printf(b, "), Count: %llu\n", (unsigned long long)neg[at]);
    }
    free(neg);
    uint64_t zero_count = (uint64_t)dbg_get(b, dp, SY_FIELD_ZERO_COUNT).i;
    if (zero_count)
        dbg_buf_printf(b, "Bucket [0, 0], Count: %llu\n", (unsigned long long)zero_count);
    uint64_t *pos = exp_buckets(b, dp, SY_FIELD_POSITIVE_BUCKETS, &npos);
    for (size_t k = 0; k < npos; k++) {
        double index = (double)pos_off + (double)k;
        dbg_buf_puts(b, "Bucket (");
        dbg_put_float_f(b, exp(index * factor));
        dbg_buf_puts(b, ", ");
        dbg_put_float_f(b, exp((index + 1) * factor));
        dbg_buf_printf(b, "], Count: %llu\n", (unsigned long long)pos[k]);
    }
    free(pos);
    put_exemplars(b, dp);
}

static void detailed_summary_point(dbg_buf_t *b, size_t i, sy_view_node_t *dp)
{
    put_point_head(b, "SummaryDataPoints", i, dp);
    dbg_buf_printf(b, "Count: %llu\n", (unsigned long long)dbg_get(b, dp, SY_FIELD_COUNT).i);
    put_line_f(b, "Sum", dbg_get(b, dp, SY_FIELD_SUM).d);
    sy_value_t q = dbg_get(b, dp, SY_FIELD_QUANTILES);
    sy_value_iter_t it = {.value = &q};
    sy_value_t k, v;
    for (size_t n = 0; b->api->view_value_next(&it, &k, &v) == 1; n++) {
        dbg_buf_printf(b, "QuantileValue #%zu: Quantile ", n);
        dbg_put_float_f(b, k.d);
        dbg_buf_puts(b, ", Value ");
        dbg_put_float_f(b, v.d);
        dbg_buf_put(b, "\n", 1);
    }
}

static const char *metric_type(int64_t t)
{
    switch (t) {
    case SY_METRIC_TYPE_GAUGE:
        return "Gauge";
    case SY_METRIC_TYPE_SUM:
        return "Sum";
    case SY_METRIC_TYPE_HISTOGRAM:
        return "Histogram";
    case SY_METRIC_TYPE_EXP_HISTOGRAM:
        return "ExponentialHistogram";
    case SY_METRIC_TYPE_SUMMARY:
        return "Summary";
    default:
        return "Empty";
    }
}

static void detailed_metric(dbg_buf_t *b, sy_view_node_t *m)
{
    const sy_host_api_t *api = b->api;
    sy_value_t name = dbg_get(b, m, SY_FIELD_METRIC_NAME);
    sy_value_t desc = dbg_get(b, m, SY_FIELD_METRIC_DESCRIPTION);
    sy_value_t unit = dbg_get(b, m, SY_FIELD_METRIC_UNIT);
    int64_t type = dbg_get(b, m, SY_FIELD_METRIC_TYPE).i;
    dbg_buf_puts(b, "Descriptor:\n");
    put_line_sv(b, "     -> Name: ", &name);
    put_line_sv(b, "     -> Description: ", &desc);
    put_line_sv(b, "     -> Unit: ", &unit);
    dbg_buf_printf(b, "     -> DataType: %s\n", metric_type(type));
    put_attributes(b, "     -> Metadata", m);
    if (type == SY_METRIC_TYPE_SUM)
        dbg_buf_printf(b, "     -> IsMonotonic: %s\n",
                       dbg_get(b, m, SY_FIELD_MONOTONIC).b ? "true" : "false");
    if (type == SY_METRIC_TYPE_SUM || type == SY_METRIC_TYPE_HISTOGRAM ||
        type == SY_METRIC_TYPE_EXP_HISTOGRAM)
        dbg_buf_printf(b, "     -> AggregationTemporality: %s\n",
                       dbg_temporality(dbg_get(b, m, SY_FIELD_TEMPORALITY).i));
    size_t n = api->view_count(m, SY_VIEW_ITEMS);
    for (size_t i = 0; i < n; i++) {
        sy_view_node_t *dp = api->view_at(m, SY_VIEW_ITEMS, i);
        switch (api->view_kind(dp)) {
        case SY_NODE_NUMBER_POINT:
            detailed_number_point(b, i, dp);
            break;
        case SY_NODE_HISTOGRAM_POINT:
            detailed_histogram_point(b, i, dp);
            break;
        case SY_NODE_EXP_HISTOGRAM_POINT:
            detailed_exp_histogram_point(b, i, dp);
            break;
        case SY_NODE_SUMMARY_POINT:
            detailed_summary_point(b, i, dp);
            break;
        default:
            break;
        }
    }
}

/* ---- logs ---------------------------------------------------------------------- */

static void detailed_log(dbg_buf_t *b, sy_view_node_t *lr)
{
    char sev[16];
    sy_value_t sevtext = dbg_get(b, lr, SY_FIELD_SEVERITY_TEXT);
    sy_value_t event = dbg_get(b, lr, SY_FIELD_EVENT_NAME);
    sy_value_t body = dbg_get(b, lr, SY_FIELD_BODY);
    sy_value_t tid = dbg_get(b, lr, SY_FIELD_TRACE_ID);
    sy_value_t sid = dbg_get(b, lr, SY_FIELD_SPAN_ID);
    int64_t sevnum = dbg_get(b, lr, SY_FIELD_SEVERITY_NUMBER).i;
    dbg_buf_puts(b, "ObservedTimestamp: ");
    dbg_put_time(b, (uint64_t)dbg_get(b, lr, SY_FIELD_OBSERVED_TIME).i);
    dbg_buf_puts(b, "\nTimestamp: ");
    dbg_put_time(b, (uint64_t)dbg_get(b, lr, SY_FIELD_TIME).i);
    dbg_buf_puts(b, "\n");
    put_line_sv(b, "SeverityText: ", &sevtext);
    dbg_buf_printf(b, "SeverityNumber: %s(%d)\n", dbg_severity(sevnum, sev, sizeof(sev)),
                   (int)sevnum);
    if (dbg_sv_set(&event)) put_line_sv(b, "EventName: ", &event);
    dbg_buf_puts(b, "Body: ");
    dbg_put_value(b, &body);
    dbg_buf_put(b, "\n", 1);
    put_attributes(b, "Attributes", lr);
    dbg_buf_puts(b, "Trace ID: ");
    dbg_put_id(b, &tid);
    dbg_buf_puts(b, "\nSpan ID: ");
    dbg_put_id(b, &sid);
    dbg_buf_printf(b, "\nFlags: %u\n", (unsigned)dbg_get(b, lr, SY_FIELD_FLAGS).i);
}

void dbg_format_detailed(dbg_buf_t *b, sy_signal_t signal, sy_view_t *view, const uint8_t *bytes,
                         size_t len)
{
    static const char *const names[][2] = {{"ResourceSpans", "ScopeSpans"},
                                           {"ResourceMetrics", "ScopeMetrics"},
                                           {"ResourceLog", "ScopeLogs"}};
    const char *const *what = signal == SY_SIGNAL_TRACES    ? names[0]
                              : signal == SY_SIGNAL_METRICS ? names[1]
                                                            : names[2];
    const sy_host_api_t *api = b->api;
    sy_view_node_t *root = api->view_root(view);
    size_t nres = api->view_count(root, SY_VIEW_RESOURCES);
    for (size_t i = 0; i < nres; i++) {
        sy_view_node_t *res = api->view_at(root, SY_VIEW_RESOURCES, i);
        put_resource(b, what[0], i, res, bytes, len);
        size_t nsc = api->view_count(res, SY_VIEW_SCOPES);
        for (size_t j = 0; j < nsc; j++) {
            sy_view_node_t *sc = api->view_at(res, SY_VIEW_SCOPES, j);
            put_scope(b, what[1], j, sc);
            if (signal == SY_SIGNAL_METRICS) {
                size_t nm = api->view_count(sc, SY_VIEW_METRICS);
                for (size_t k = 0; k < nm; k++) {
                    dbg_buf_printf(b, "Metric #%zu\n", k);
                    detailed_metric(b, api->view_at(sc, SY_VIEW_METRICS, k));
                }
                continue;
            }
            size_t n = api->view_count(sc, SY_VIEW_ITEMS);
            for (size_t k = 0; k < n; k++) {
                sy_view_node_t *item = api->view_at(sc, SY_VIEW_ITEMS, k);
                if (signal == SY_SIGNAL_TRACES) {
                    dbg_buf_printf(b, "Span #%zu\n", k);
                    detailed_span(b, item);
                } else {
                    dbg_buf_printf(b, "LogRecord #%zu\n", k);
                    detailed_log(b, item);
                }
            }
        }
    }
}
