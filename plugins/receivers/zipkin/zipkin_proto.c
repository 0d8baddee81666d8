/*
 * zipkin_proto.c - zipkin.proto3.ListOfSpans (proto/zipkin/zipkin.proto) into
 * zk_span_t: protobuf-c unpacks into the caller's arena, then each span is
 * checked as zipkin-go's proto parser checks it (trace id of 8 or 16 bytes, span
 * ids of 8, parent id absent or 8) and its addresses turned into text. Strings
 * must be UTF-8 (proto3 says so; OTLP needs it).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "utf8.h"
#include "zipkin/zipkin.pb-c.h"
#include "zipkin_model.h"

static void *pb_alloc(void *data, size_t size)
{
    const zk_alloc_t *a = data;
    return a->fn(a->ctx, size ? size : 1);
}

static void pb_free(void *data, void *ptr)
{
    (void)data; /* arena memory goes with the batch */
    (void)ptr;
}

static bool str_ok(const char *s, zk_str_t *out)
{
    size_t n = s ? strlen(s) : 0;
    if (n && !syc_utf8_valid((const uint8_t *)s, n)) return false;
    *out = (zk_str_t){n ? s : "", n};
    return true;
}

/* An address of 4 or 16 bytes as canonical text in the arena. */
static int ip_text(const ProtobufCBinaryData *b, const zk_alloc_t *alloc, zk_str_t *out)
{
    if (b->len == 0) return 0;
    char text[INET6_ADDRSTRLEN];
    if (b->len == 4)
        inet_ntop(AF_INET, b->data, text, sizeof(text));
    else if (b->len == 16)
        inet_ntop(AF_INET6, b->data, text, sizeof(text));
    else
        return -1;
    size_t n = strlen(text);
    const char *c = zk_strdup(alloc, text, n);
    if (!c) return -2;
    *out = (zk_str_t){c, n};
    return 0;
}

static int endpoint(const Zipkin__Proto3__Endpoint *e, const zk_alloc_t *alloc, zk_endpoint_t *out,
                    const char *which, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    if (!e) return 0;
    out->present = true;
    if (!str_ok(e->service_name, &out->service_name)) {
        snprintf(err, err_len, "%s.service_name is not valid UTF-8", which);
        return SY_EINVAL;
    }
    int a = ip_text(&e->ipv4, alloc, &out->ipv4);
    int b = a == 0 ? ip_text(&e->ipv6, alloc, &out->ipv6) : 0;
    if (a == -2 || b == -2) {
        snprintf(err, err_len, "out of memory");
        return SY_ENOMEM;
    }
    if (a || b) {
        snprintf(err, err_len, "%s.%s has %zu bytes, not %s", which, a ? "ipv4" : "ipv6",
                 a ? e->ipv4.len : e->ipv6.len, a ? "4" : "16");
        return SY_EINVAL;
    }
    if (e->port < 0 || e->port > 65535) {
        snprintf(err, err_len, "%s.port %d is out of range", which, (int)e->port);
        return SY_EINVAL;
    }
    out->port = e->port;
    return 0;
}

static bool zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return false;
    return true;
}

static int one_span(const Zipkin__Proto3__Span *ps, const zk_alloc_t *alloc, zk_span_t *sp,
                    char *err, size_t err_len)
{
    memset(sp, 0, sizeof(*sp));
    if (ps->trace_id.len != 8 && ps->trace_id.len != 16) {
        snprintf(err, err_len, "invalid trace_id: has length %zu yet wanted length 8 or 16",
                 ps->trace_id.len);
        return SY_EINVAL;
    }
    memcpy(sp->trace_id + 16 - ps->trace_id.len, ps->trace_id.data, ps->trace_id.len);
    if (ps->id.len != 8) {
        snprintf(err, err_len, "invalid id: has length %zu yet wanted length 8", ps->id.len);
        return SY_EINVAL;
    }
    memcpy(sp->id, ps->id.data, 8);
    if (zero(sp->trace_id, 16) || zero(sp->id, 8)) {
        snprintf(err, err_len, "%s is zero", zero(sp->id, 8) ? "id" : "trace_id");
        return SY_EINVAL;
    }
    if (ps->parent_id.len) {
        if (ps->parent_id.len != 8) {
            snprintf(err, err_len, "invalid parent_id: has length %zu yet wanted length 8",
                     ps->parent_id.len);
            return SY_EINVAL;
        }
        memcpy(sp->parent_id, ps->parent_id.data, 8);
        sp->has_parent = !zero(sp->parent_id, 8);
    }
    if (!str_ok(ps->name, &sp->name)) {
        snprintf(err, err_len, "name is not valid UTF-8");
        return SY_EINVAL;
    }
    sp->kind = ps->kind >= 1 && ps->kind <= 4 ? (int)ps->kind : ZK_KIND_NONE;
    sp->timestamp_us = (int64_t)ps->timestamp;
    sp->duration_us = ps->duration > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)ps->duration;
    sp->debug = ps->debug;
    sp->shared = ps->shared;
    int rc = endpoint(ps->local_endpoint, alloc, &sp->local, "local_endpoint", err, err_len);
    if (rc == 0)
        rc = endpoint(ps->remote_endpoint, alloc, &sp->remote, "remote_endpoint", err, err_len);
    if (rc) return rc;
    if (ps->n_annotations) {
        sp->annotations = alloc->fn(alloc->ctx, ps->n_annotations * sizeof(zk_annotation_t));
        if (!sp->annotations) goto nomem;
        memset(sp->annotations, 0, ps->n_annotations * sizeof(zk_annotation_t));
        for (size_t i = 0; i < ps->n_annotations; i++) {
            zk_annotation_t *a = &sp->annotations[i];
            a->timestamp_us = (int64_t)ps->annotations[i]->timestamp;
            if (!str_ok(ps->annotations[i]->value, &a->value)) {
                snprintf(err, err_len, "annotations[%zu].value is not valid UTF-8", i);
                return SY_EINVAL;
            }
        }
        sp->n_annotations = ps->n_annotations;
    }
    if (ps->n_tags) {
        sp->tags = alloc->fn(alloc->ctx, ps->n_tags * sizeof(zk_tag_t));
        if (!sp->tags) goto nomem;
        for (size_t i = 0; i < ps->n_tags; i++) {
            zk_tag_t *t = &sp->tags[i];
            memset(t, 0, sizeof(*t));
            if (!str_ok(ps->tags[i]->key, &t->key) || !str_ok(ps->tags[i]->value, &t->value)) {
                snprintf(err, err_len, "tags[%zu] is not valid UTF-8", i);
                return SY_EINVAL;
            }
        }
        sp->n_tags = ps->n_tags;
    }
    return 0;
nomem:
    snprintf(err, err_len, "out of memory");
    return SY_ENOMEM;
}

int zk_proto_decode(const uint8_t *data, size_t len, const zk_alloc_t *alloc, zk_spans_t *out,
                    char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    ProtobufCAllocator pa = {.alloc = pb_alloc, .free = pb_free, .allocator_data = (void *)alloc};
    Zipkin__Proto3__ListOfSpans *list = zipkin__proto3__list_of_spans__unpack(&pa, len, data);
    if (!list) {
        snprintf(err, err_len, "zipkinV2: malformed protobuf: not a zipkin.proto3.ListOfSpans");
        return SY_EINVAL;
    }
    if (list->n_spans > ZK_MAX_SPANS) {
        snprintf(err, err_len, "zipkinV2: more than %u spans", ZK_MAX_SPANS);
        return SY_EINVAL;
    }
    if (!list->n_spans) return 0;
    out->v = calloc(list->n_spans, sizeof(zk_span_t));
    if (!out->v) {
        snprintf(err, err_len, "out of memory");
        return SY_ENOMEM;
    }
    out->cap = list->n_spans;
    for (size_t i = 0; i < list->n_spans; i++) {
        char why[300];
        int rc = one_span(list->spans[i], alloc, &out->v[i], why, sizeof(why));
        if (rc) {
            snprintf(err, err_len, "zipkinV2: span %zu: %s", i, why);
            zk_spans_free(out);
            return rc;
        }
        out->n++;
    }
    return 0;
}
