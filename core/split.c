/*
 * split.c - counting the items of a decoded request and splitting it.
 *
 * The three OTLP requests have the same shape: resources, then scopes, then the
 * items (spans, log records; for metrics one more level, the metric, whose data
 * points sit in whichever of gauge/sum/histogram/... is set). Each signal is
 * described here as a path of field names, and one generic walk, driven by the
 * protobuf-c descriptors, counts and slices all three.
 *
 * Slicing is shallow: a slice of a request is a new tree of message structs that
 * point at the original item structs (and at runs of the original pointer
 * arrays), allocated in the new batch's arena. The new batch keeps a reference to
 * the batch it was cut from, so that the shared structs stay alive.
 */
#include <string.h>

#include "batch_internal.h"
#include "settle.h"

#define ONEOF_STEP "*" /* a path step that follows whichever oneof message is set */

static const char *const trace_path[] = {"resource_spans", "scope_spans", "spans", NULL};
static const char *const log_path[] = {"resource_logs", "scope_logs", "log_records", NULL};
static const char *const metric_path[] = {"resource_metrics", "scope_metrics", "metrics",
                                          ONEOF_STEP,         "data_points",   NULL};

static const char *const *signal_path(sy_signal_t signal)
{
    switch (signal) {
    case SY_SIGNAL_TRACES:
        return trace_path;
    case SY_SIGNAL_METRICS:
        return metric_path;
    case SY_SIGNAL_LOGS:
        return log_path;
    }
    return NULL;
}

static size_t *field_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (size_t *)((char *)m + f->quantifier_offset);
}

static void ***field_array(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    return (void ***)((char *)m + f->offset);
}

/* The oneof message member that is set in `m`, or NULL. */
static const ProtobufCFieldDescriptor *oneof_set(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (!(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) || f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        uint32_t which = *(const uint32_t *)((const char *)m + f->quantifier_offset);
        if (which == f->id && *(void **)((char *)m + f->offset)) return f;
    }
    return NULL;
}

static uint64_t count_at(const ProtobufCMessage *m, const char *const *path)
{
    if (!*path) return 1;
    if (strcmp(*path, ONEOF_STEP) == 0) {
        const ProtobufCFieldDescriptor *f = oneof_set(m);
        return f ? count_at(*(ProtobufCMessage **)((char *)m + f->offset), path + 1) : 0;
    }
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, *path);
    if (!f) return 0;
    size_t n = *field_count(m, f);
    if (!path[1]) return n;
    void **items = *field_array(m, f);
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += count_at(items[i], path + 1);
    return total;
}

uint64_t sy__request_count_items(sy_signal_t signal, const void *request)
{
    const char *const *path = signal_path(signal);
    return path && request ? count_at(request, path) : 0;
}

static ProtobufCMessage *shallow_copy(sy__arena_t *a, const ProtobufCMessage *m)
{
    ProtobufCMessage *c = sy__arena_alloc(a, m->descriptor->sizeof_message);
    if (c) memcpy(c, m, m->descriptor->sizeof_message);
    return c;
}

/*
 * Returns `m` cut down to its items [start, start + count), in order. A part with
 * no items at all (an empty resource entry) goes with the slice whose relative
 * start is 0, so that it appears in exactly one slice.
 */
static ProtobufCMessage *slice_at(sy__arena_t *a, const ProtobufCMessage *m,
                                  const char *const *path, uint64_t start, uint64_t count,
                                  uint64_t total)
{
    if (start == 0 && count == total) return (ProtobufCMessage *)m;
    if (strcmp(*path, ONEOF_STEP) == 0) {
        const ProtobufCFieldDescriptor *f = oneof_set(m);
        ProtobufCMessage *c = shallow_copy(a, m);
        if (!c || !f) return c;
        ProtobufCMessage *child = *(ProtobufCMessage **)((char *)m + f->offset);
        ProtobufCMessage *sub = slice_at(a, child, path + 1, start, count, total);
        if (!sub) return NULL;
        *(ProtobufCMessage **)((char *)c + f->offset) = sub;
        return c;
    }
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, *path);
    ProtobufCMessage *c = shallow_copy(a, m);
    if (!c || !f) return c;
    size_t n = *field_count(m, f);
    void **items = *field_array(m, f);
    if (!path[1]) {
        /* The items themselves: a run of the original pointer array. */
        *field_array(c, f) = items + start;
        *field_count(c, f) = (size_t)count;
        return c;
    }
    void **out = sy__arena_alloc(a, (n ? n : 1) * sizeof(void *));
    if (!out) return NULL;
    size_t nout = 0;
    uint64_t pos = 0, end = start + count;
    for (size_t i = 0; i < n; i++) {
        uint64_t k = count_at(items[i], path + 1);
        if (k == 0) {
            if (start == 0) out[nout++] = items[i];
            continue;
        }
        if (pos < end && pos + k > start) {
            uint64_t s = start > pos ? start - pos : 0;
            uint64_t e = end < pos + k ? end - pos : k;
            ProtobufCMessage *sub = slice_at(a, items[i], path + 1, s, e - s, k);
            if (!sub) return NULL;
            out[nout++] = sub;
        }
        pos += k;
    }
    *field_array(c, f) = out;
    *field_count(c, f) = nout;
    return c;
}

/* A new batch holding items [start, start + count) of `src`'s decoded request. */
static sy_batch_t *slice_batch(const char *origin, sy_batch_t *src, const void *req, uint64_t start,
                               uint64_t count)
{
    sy_batch_t *b = sy__batch_new(src->signal, origin);
    if (!b) return NULL;
    b->dec = slice_at(&b->arena, req, signal_path(src->signal), start, count, src->items);
    if (!b->dec) {
        sy__batch_release(b);
        return NULL;
    }
    b->items = count;
    if (sy__settle_inherit(b, src) < 0) {
        sy__batch_release(b);
        return NULL;
    }
    sy__batch_retain(src);
    b->parents[0] = src;
    b->nparents = 1;
    return b;
}

sy_batch_t *sy__batch_split(const char *origin, sy_batch_t **bp, uint64_t max_items)
{
    sy_batch_t *b = *bp;
    if (max_items == 0 || b->items <= max_items) {
        *bp = NULL;
        return b;
    }
    const void *req = sy__batch_request(b);
    if (!req) return NULL;
    sy_batch_t *head = slice_batch(origin, b, req, 0, max_items);
    sy_batch_t *rest = head ? slice_batch(origin, b, req, max_items, b->items - max_items) : NULL;
    if (!rest) {
        sy__batch_release(head);
        return NULL;
    }
    sy__settle_route_end(b); /* its tokens go on in the pieces */
    sy__batch_release(b);
    *bp = rest;
    return head;
}
