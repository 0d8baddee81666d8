/*
 * jaeger_decode.c - decoders of the Jaeger Thrift structs (jaeger.thrift) and of
 * the agent's emitBatch message (agent.thrift), in either protocol.
 *
 * As Apache Thrift's generated Go code (which the collector runs) does: a field
 * whose id is unknown, or whose type is not the one the IDL gives, is skipped; a
 * required field that is missing fails the whole struct. A list of the wrong
 * element type is skipped like a field of the wrong type.
 */
#include <stdio.h>
#include <string.h>

#include "jaeger_model.h"

#define FIELD(id, type) ((uint32_t)(uint16_t)(id) << 8 | (uint32_t)(type))

typedef struct dec_s {
    th_reader_t r;
    ProtobufCAllocator *alloc;
} dec_t;

static int missing(dec_t *d, const char *sentence)
{
    return th_fail(&d->r, sentence);
}

/* Room for n elements of `size` bytes; n is bounded by the input's length. */
static void *array(dec_t *d, uint32_t n, size_t size)
{
    if (n == 0) return NULL;
    void *p = d->alloc->alloc(d->alloc->allocator_data, (size_t)n * size);
    if (!p) th_fail(&d->r, "out of memory");
    return p;
}

/* The fewest bytes a valid element takes in either protocol (its required
 * fields, each at least a one-byte header and a one-byte value, and the stop
 * byte): a list whose count could not fit is refused before its array is
 * allocated, which keeps what a packet makes us allocate to a small multiple of
 * its length. */
enum { MIN_TAG = 5, MIN_LOG = 5, MIN_REF = 9, MIN_SPAN = 17 };

/* Reads a list header for a field typed list<struct> whose elements take at
 * least `min` bytes. Returns 1 with the count when the elements are structs, 0
 * when the list was of another type (skipped), -1 on error. */
static int struct_list(dec_t *d, uint32_t *n, size_t min)
{
    th_type_t elem;
    if (th_list_begin(&d->r, &elem, n) != 0) return -1;
    if (elem == TH_STRUCT) {
        if ((uint64_t)*n * min > (uint64_t)(d->r.end - d->r.p))
            return th_fail(&d->r, "a list count is larger than the data left");
        return 1;
    }
    for (uint32_t i = 0; i < *n; i++)
        if (th_skip(&d->r, elem) != 0) return -1;
    return th_container_end(&d->r) != 0 ? -1 : 0;
}

static int read_tag(dec_t *d, jg_tag_t *t)
{
    th_reader_t *r = &d->r;
    bool has_key = false, has_type = false;
    th_type_t ft;
    int16_t id;
    memset(t, 0, sizeof(*t));
    if (th_struct_begin(r) != 0) return -1;
    for (;;) {
        if (th_field_begin(r, &ft, &id) != 0) return -1;
        if (ft == TH_STOP) break;
        int rc;
        switch (FIELD(id, ft)) {
        case FIELD(1, TH_STRING):
            rc = th_read_binary(r, &t->key.p, &t->key.len);
            has_key = true;
            break;
        case FIELD(2, TH_I32):
            rc = th_read_i32(r, &t->vtype);
            has_type = true;
            break;
        case FIELD(3, TH_STRING):
            rc = th_read_binary(r, &t->vstr.p, &t->vstr.len);
            break;
        case FIELD(4, TH_DOUBLE):
            rc = th_read_double(r, &t->vdouble);
            break;
        case FIELD(5, TH_BOOL):
            rc = th_read_bool(r, &t->vbool);
            break;
        case FIELD(6, TH_I64):
            rc = th_read_i64(r, &t->vlong);
            break;
        case FIELD(7, TH_STRING):
            rc = th_read_binary(r, &t->vbinary.p, &t->vbinary.len);
            break;
        default:
            rc = th_skip(r, ft);
        }
        if (rc != 0) return -1;
    }
    if (th_struct_end(r) != 0) return -1;
    if (!has_key) return missing(d, "required field Tag.key is not set");
    if (!has_type) return missing(d, "required field Tag.vType is not set");
    return 0;
}

static int read_tags(dec_t *d, jg_tags_t *tags)
{
    uint32_t n;
    int kind = struct_list(d, &n, MIN_TAG);
    if (kind <= 0) return kind;
    tags->v = array(d, n, sizeof(jg_tag_t));
    if (n && !tags->v) return -1;
    for (uint32_t i = 0; i < n; i++)
        if (read_tag(d, &tags->v[i]) != 0) return -1;
    tags->n = n;
    tags->present = true;
    return th_container_end(&d->r);
}

static int read_log(dec_t *d, jg_log_t *l)
{
    th_reader_t *r = &d->r;
    bool has_ts = false;
    th_type_t ft;
    int16_t id;
    memset(l, 0, sizeof(*l));
    if (th_struct_begin(r) != 0) return -1;
    for (;;) {
        if (th_field_begin(r, &ft, &id) != 0) return -1;
        if (ft == TH_STOP) break;
        int rc;
        switch (FIELD(id, ft)) {
        case FIELD(1, TH_I64):
            rc = th_read_i64(r, &l->timestamp);
            has_ts = true;
            break;
        case FIELD(2, TH_LIST):
            rc = read_tags(d, &l->fields);
            break;
        default:
            rc = th_skip(r, ft);
        }
        if (rc != 0) return -1;
    }
    if (th_struct_end(r) != 0) return -1;
    if (!has_ts) return missing(d, "required field Log.timestamp is not set");
    if (!l->fields.present) return missing(d, "required field Log.fields is not set");
    return 0;
}

static int read_ref(dec_t *d, jg_ref_t *ref)
{
    th_reader_t *r = &d->r;
    unsigned seen = 0;
    th_type_t ft;
    int16_t id;
    memset(ref, 0, sizeof(*ref));
    if (th_struct_begin(r) != 0) return -1;
    for (;;) {
        if (th_field_begin(r, &ft, &id) != 0) return -1;
        if (ft == TH_STOP) break;
        int rc;
        switch (FIELD(id, ft)) {
        case FIELD(1, TH_I32):
            rc = th_read_i32(r, &ref->type);
            break;
        case FIELD(2, TH_I64):
            rc = th_read_i64(r, &ref->trace_id_low);
            break;
        case FIELD(3, TH_I64):
            rc = th_read_i64(r, &ref->trace_id_high);
            break;
        case FIELD(4, TH_I64):
            rc = th_read_i64(r, &ref->span_id);
            break;
        default:
            rc = th_skip(r, ft);
            id = 0;
        }
        if (rc != 0) return -1;
        if (id >= 1 && id <= 4) seen |= 1u << id;
    }
    if (th_struct_end(r) != 0) return -1;
    if (seen != 0x1e) return missing(d, "a required field of SpanRef is not set");
    return 0;
}

static int read_span_lists(dec_t *d, jg_span_t *s, int16_t id)
{
    uint32_t n;
    int kind;
    if (id == 10) return read_tags(d, &s->tags);
    kind = struct_list(d, &n, id == 6 ? MIN_REF : MIN_LOG);
    if (kind <= 0) return kind;
    if (id == 6) {
        s->refs = array(d, n, sizeof(jg_ref_t));
        if (n && !s->refs) return -1;
        for (uint32_t i = 0; i < n; i++)
            if (read_ref(d, &s->refs[i]) != 0) return -1;
        s->n_refs = n;
        s->refs_present = true;
    } else {
        s->logs = array(d, n, sizeof(jg_log_t));
        if (n && !s->logs) return -1;
        for (uint32_t i = 0; i < n; i++)
            if (read_log(d, &s->logs[i]) != 0) return -1;
        s->n_logs = n;
        s->logs_present = true;
    }
    return th_container_end(&d->r);
}

static int read_span(dec_t *d, jg_span_t *s)
{
    th_reader_t *r = &d->r;
    unsigned seen = 0;
    th_type_t ft;
    int16_t id;
    memset(s, 0, sizeof(*s));
    if (th_struct_begin(r) != 0) return -1;
    for (;;) {
        if (th_field_begin(r, &ft, &id) != 0) return -1;
        if (ft == TH_STOP) break;
        int rc;
        switch (FIELD(id, ft)) {
        case FIELD(1, TH_I64):
            rc = th_read_i64(r, &s->trace_id_low);
            break;
        case FIELD(2, TH_I64):
            rc = th_read_i64(r, &s->trace_id_high);
            break;
        case FIELD(3, TH_I64):
            rc = th_read_i64(r, &s->span_id);
            break;
        case FIELD(4, TH_I64):
            rc = th_read_i64(r, &s->parent_span_id);
            break;
        case FIELD(5, TH_STRING):
            rc = th_read_binary(r, &s->operation_name.p, &s->operation_name.len);
            break;
        case FIELD(7, TH_I32):
            rc = th_read_i32(r, &s->flags);
            break;
        case FIELD(8, TH_I64):
            rc = th_read_i64(r, &s->start_time);
            break;
        case FIELD(9, TH_I64):
            rc = th_read_i64(r, &s->duration);
            break;
        case FIELD(6, TH_LIST):
        case FIELD(10, TH_LIST):
        case FIELD(11, TH_LIST):
            rc = read_span_lists(d, s, id);
            break;
        default:
            rc = th_skip(r, ft);
            id = 0;
        }
        if (rc != 0) return -1;
        if (id >= 1 && id <= 9) seen |= 1u << id;
    }
    if (th_struct_end(r) != 0) return -1;
    /* Required: 1-5 and 7-9 (6, references, is optional). */
    if ((seen & 0x3be) != 0x3be) return missing(d, "a required field of Span is not set");
    return 0;
}

static int read_process(dec_t *d, jg_batch_t *b)
{
    th_reader_t *r = &d->r;
    bool has_name = false;
    th_type_t ft;
    int16_t id;
    if (th_struct_begin(r) != 0) return -1;
    for (;;) {
        if (th_field_begin(r, &ft, &id) != 0) return -1;
        if (ft == TH_STOP) break;
        int rc;
        switch (FIELD(id, ft)) {
        case FIELD(1, TH_STRING):
            rc = th_read_binary(r, &b->service_name.p, &b->service_name.len);
            has_name = true;
            break;
        case FIELD(2, TH_LIST):
            rc = read_tags(d, &b->process_tags);
            break;
        default:
            rc = th_skip(r, ft);
        }
        if (rc != 0) return -1;
    }
    if (th_struct_end(r) != 0) return -1;
    if (!has_name) return missing(d, "required field Process.serviceName is not set");
    return 0;
}

static int read_batch(dec_t *d, jg_batch_t *b)
{
    th_reader_t *r = &d->r;
    bool has_process = false, has_spans = false;
    th_type_t ft;
    int16_t id;
    uint32_t n;
    memset(b, 0, sizeof(*b));
    if (th_struct_begin(r) != 0) return -1;
    for (;;) {
        if (th_field_begin(r, &ft, &id) != 0) return -1;
        if (ft == TH_STOP) break;
        int rc = 0;
        if (FIELD(id, ft) == FIELD(1, TH_STRUCT)) {
            rc = read_process(d, b);
            has_process = true;
        } else if (FIELD(id, ft) == FIELD(2, TH_LIST)) {
            int kind = struct_list(d, &n, MIN_SPAN);
            if (kind < 0) return -1;
            if (kind == 1) {
                b->spans = array(d, n, sizeof(jg_span_t));
                if (n && !b->spans) return -1;
                for (uint32_t i = 0; i < n; i++)
                    if (read_span(d, &b->spans[i]) != 0) return -1;
                b->n_spans = n;
                has_spans = true;
                rc = th_container_end(r);
            }
        } else {
            rc = th_skip(r, ft); /* seqNo, stats and anything newer */
        }
        if (rc != 0) return -1;
    }
    if (th_struct_end(r) != 0) return -1;
    if (!has_process) return missing(d, "required field Batch.process is not set");
    if (!has_spans) return missing(d, "required field Batch.spans is not set");
    return 0;
}

static void explain(const dec_t *d, char *err, size_t err_len)
{
    snprintf(err, err_len, "%s (at byte %zu)", d->r.err ? d->r.err : "malformed", th_offset(&d->r));
}

int jg_decode_batch(th_proto_t proto, const uint8_t *data, size_t len, ProtobufCAllocator *alloc,
                    jg_batch_t *batch, char *err, size_t err_len)
{
    dec_t d = {.alloc = alloc};
    th_init(&d.r, proto, data, len);
    if (read_batch(&d, batch) == 0) return 0;
    explain(&d, err, err_len);
    return -1;
}

jg_agent_result_t jg_decode_agent(th_proto_t proto, const uint8_t *data, size_t len,
                                  ProtobufCAllocator *alloc, jg_batch_t *batch, char *err,
                                  size_t err_len)
{
    static const char emit_batch[] = "emitBatch", emit_zipkin[] = "emitZipkinBatch";
    dec_t d = {.alloc = alloc};
    th_reader_t *r = &d.r;
    const uint8_t *name;
    size_t name_len;
    int type;
    int32_t seqid;
    th_init(r, proto, data, len);
    if (th_message_begin(r, &name, &name_len, &type, &seqid) != 0) goto malformed;
    if (type != TH_MSG_CALL && type != TH_MSG_ONEWAY) {
        th_fail(r, "not a call: unexpected message type");
        goto malformed;
    }
    if (name_len == sizeof(emit_zipkin) - 1 && memcmp(name, emit_zipkin, name_len) == 0)
        return JG_AGENT_ZIPKIN;
    if (name_len != sizeof(emit_batch) - 1 || memcmp(name, emit_batch, name_len) != 0) {
        snprintf(err, err_len, "%.*s", (int)(name_len > 64 ? 64 : name_len), (const char *)name);
        return JG_AGENT_UNKNOWN;
    }
    /* emitBatch_args { 1: Batch batch } */
    bool has_batch = false;
    th_type_t ft;
    int16_t id;
    if (th_struct_begin(r) != 0) goto malformed;
    for (;;) {
        if (th_field_begin(r, &ft, &id) != 0) goto malformed;
        if (ft == TH_STOP) break;
        int rc;
        if (FIELD(id, ft) == FIELD(1, TH_STRUCT)) {
            rc = read_batch(&d, batch);
            has_batch = true;
        } else {
            rc = th_skip(r, ft);
        }
        if (rc != 0) goto malformed;
    }
    if (!has_batch) {
        th_fail(r, "emitBatch without its batch argument");
        goto malformed;
    }
    return JG_AGENT_BATCH;
malformed:
    explain(&d, err, err_len);
    return JG_AGENT_MALFORMED;
}
