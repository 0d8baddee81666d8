/*
 * zipkin_write.c - Zipkin v2 spans written as the body of POST /api/v2/spans: a
 * JSON array (as zipkin-go's SpanModel marshals it: ids in lower-case hex, a
 * 64-bit trace id as 16 digits, times in microseconds, tags sorted by key) or a
 * zipkin.proto3.ListOfSpans (proto/zipkin/zipkin.proto, encoded here field by
 * field). Also the scratch arena and byte buffer of zipkin_out.h.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zipkin_out.h"

/* ---- arena and buffer ----------------------------------------------------------------- */

struct zo_block_s {
    struct zo_block_s *next;
    size_t used, size;
    max_align_t data[];
};

void *zo_alloc(zo_arena_t *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    struct zo_block_s *b = a->blocks;
    if (!b || b->size - b->used < size) {
        size_t bs = size > 60000 ? size : 60000;
        b = malloc(sizeof(*b) + bs);
        if (!b) {
            a->failed = true;
            return NULL;
        }
        b->size = bs;
        b->used = 0;
        b->next = a->blocks;
        a->blocks = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

void zo_arena_free(zo_arena_t *a)
{
    while (a->blocks) {
        struct zo_block_s *n = a->blocks->next;
        free(a->blocks);
        a->blocks = n;
    }
    a->failed = false;
}

void zo_put(zo_buf_t *b, const void *data, size_t len)
{
    if (b->failed || !len) return;
    if (b->cap - b->len < len) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap - b->len < len)
            ncap *= 2;
        uint8_t *p = realloc(b->p, ncap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

void zo_puts(zo_buf_t *b, const char *s)
{
    zo_put(b, s, strlen(s));
}

void zo_json_str(zo_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    zo_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        zo_put(b, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
        if (c == '"' || c == '\\') {
            e[1] = (char)c;
            zo_put(b, e, 2);
        } else if (c == '\n') {
            zo_put(b, "\\n", 2);
        } else if (c == '\t') {
            zo_put(b, "\\t", 2);
        } else if (c == '\r') {
            zo_put(b, "\\r", 2);
        } else {
            zo_put(b, e, 6);
        }
    }
    zo_put(b, s + run, len - run);
    zo_put(b, "\"", 1);
}

/* ---- JSON -------------------------------------------------------------------------------- */

static const char *const kind_names[] = {NULL, "CLIENT", "SERVER", "PRODUCER", "CONSUMER"};

static void json_hex(zo_buf_t *b, const char *key, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char s[40];
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = hex[p[i] >> 4];
        s[2 * i + 1] = hex[p[i] & 15];
    }
    zo_puts(b, key);
    zo_put(b, "\"", 1);
    zo_put(b, s, 2 * n);
    zo_put(b, "\"", 1);
}

static void json_endpoint(zo_buf_t *b, const char *key, const zo_endpoint_t *e)
{
    if (!e->present) return;
    zo_puts(b, key);
    zo_put(b, "{", 1);
    bool comma = false;
    if (e->service_name.len) {
        zo_puts(b, "\"serviceName\":");
        zo_json_str(b, e->service_name.s, e->service_name.len);
        comma = true;
    }
    if (e->ip.len) {
        zo_puts(b, comma ? "," : "");
        zo_puts(b, e->ipv6 ? "\"ipv6\":" : "\"ipv4\":");
        zo_json_str(b, e->ip.s, e->ip.len);
        comma = true;
    }
    if (e->port) {
        char n[24];
        snprintf(n, sizeof(n), "%s\"port\":%u", comma ? "," : "", (unsigned)e->port);
        zo_puts(b, n);
    }
    zo_put(b, "}", 1);
}

void zo_write_json(const zo_spans_t *spans, zo_buf_t *b)
{
    char num[64];
    zo_put(b, "[", 1);
    for (size_t i = 0; i < spans->n; i++) {
        const zo_span_t *s = &spans->v[i];
        zo_puts(b, i ? ",{" : "{");
        json_hex(b, "\"traceId\":", s->trace_id_128 ? s->trace_id : s->trace_id + 8,
                 s->trace_id_128 ? 16 : 8);
        json_hex(b, ",\"id\":", s->id, 8);
        if (s->has_parent) json_hex(b, ",\"parentId\":", s->parent_id, 8);
        zo_puts(b, ",\"name\":");
        zo_json_str(b, s->name.s, s->name.len);
        if (s->kind) {
            zo_puts(b, ",\"kind\":\"");
            zo_puts(b, kind_names[s->kind]);
            zo_put(b, "\"", 1);
        }
        if (s->timestamp_us) {
            snprintf(num, sizeof(num), ",\"timestamp\":%" PRIu64, s->timestamp_us);
            zo_puts(b, num);
        }
        if (s->duration_us) {
            snprintf(num, sizeof(num), ",\"duration\":%" PRIu64, s->duration_us);
            zo_puts(b, num);
        }
        json_endpoint(b, ",\"localEndpoint\":", &s->local);
        json_endpoint(b, ",\"remoteEndpoint\":", &s->remote);
        if (s->n_annotations) {
            zo_puts(b, ",\"annotations\":[");
            for (size_t k = 0; k < s->n_annotations; k++) {
                snprintf(num, sizeof(num), "%s{\"timestamp\":%" PRIu64 ",\"value\":", k ? "," : "",
                         s->annotations[k].timestamp_us);
                zo_puts(b, num);
                zo_json_str(b, s->annotations[k].value.s, s->annotations[k].value.len);
                zo_put(b, "}", 1);
            }
            zo_put(b, "]", 1);
        }
        if (s->n_tags) {
            zo_puts(b, ",\"tags\":{");
            for (size_t k = 0; k < s->n_tags; k++) {
                if (k) zo_put(b, ",", 1);
                zo_json_str(b, s->tags[k].key.s, s->tags[k].key.len);
                zo_put(b, ":", 1);
                zo_json_str(b, s->tags[k].value.s, s->tags[k].value.len);
            }
            zo_put(b, "}", 1);
        }
        zo_put(b, "}", 1);
    }
    zo_put(b, "]", 1);
}

/* ---- protobuf ------------------------------------------------------------------------------ */

static void pb_varint(zo_buf_t *b, uint64_t v)
{
    uint8_t p[10];
    size_t n = 0;
    do {
        p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    zo_put(b, p, n);
}

static void pb_tag(zo_buf_t *b, unsigned field, unsigned wt)
{
    pb_varint(b, (uint64_t)field << 3 | wt);
}

static void pb_bytes(zo_buf_t *b, unsigned field, const void *p, size_t n)
{
    pb_tag(b, field, 2);
    pb_varint(b, n);
    zo_put(b, p, n);
}

static void pb_fixed64(zo_buf_t *b, unsigned field, uint64_t v)
{
    uint8_t p[8];
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    pb_tag(b, field, 1);
    zo_put(b, p, 8);
}

/* Appends `sub` as a length-delimited field and empties it. */
static void pb_sub(zo_buf_t *b, unsigned field, zo_buf_t *sub)
{
    if (sub->failed) b->failed = true;
    pb_bytes(b, field, sub->p, sub->len);
    sub->len = 0;
}

static void pb_endpoint(zo_buf_t *b, unsigned field, const zo_endpoint_t *e, zo_buf_t *tmp)
{
    if (!e->present) return;
    if (e->service_name.len) pb_bytes(tmp, 1, e->service_name.s, e->service_name.len);
    if (e->ip.len) {
        char text[INET6_ADDRSTRLEN + 1];
        unsigned char bin[16];
        size_t n = e->ip.len < sizeof(text) ? e->ip.len : sizeof(text) - 1;
        memcpy(text, e->ip.s, n);
        text[n] = '\0';
        if (inet_pton(e->ipv6 ? AF_INET6 : AF_INET, text, bin) == 1)
            pb_bytes(tmp, e->ipv6 ? 3 : 2, bin, e->ipv6 ? 16 : 4);
    }
    if (e->port) {
        pb_tag(tmp, 4, 0);
        pb_varint(tmp, e->port);
    }
    pb_sub(b, field, tmp);
}

void zo_write_proto(const zo_spans_t *spans, zo_buf_t *b)
{
    zo_buf_t span = {0}, sub = {0}, sub2 = {0};
    for (size_t i = 0; i < spans->n; i++) {
        const zo_span_t *s = &spans->v[i];
        pb_bytes(&span, 1, s->trace_id_128 ? s->trace_id : s->trace_id + 8,
                 s->trace_id_128 ? 16 : 8);
        if (s->has_parent) pb_bytes(&span, 2, s->parent_id, 8);
        pb_bytes(&span, 3, s->id, 8);
        if (s->kind) {
            pb_tag(&span, 4, 0);
            pb_varint(&span, (uint64_t)s->kind);
        }
        if (s->name.len) pb_bytes(&span, 5, s->name.s, s->name.len);
        if (s->timestamp_us) pb_fixed64(&span, 6, s->timestamp_us);
        if (s->duration_us) {
            pb_tag(&span, 7, 0);
            pb_varint(&span, s->duration_us);
        }
        pb_endpoint(&span, 8, &s->local, &sub);
        pb_endpoint(&span, 9, &s->remote, &sub);
        for (size_t k = 0; k < s->n_annotations; k++) {
            if (s->annotations[k].timestamp_us) pb_fixed64(&sub, 1, s->annotations[k].timestamp_us);
            if (s->annotations[k].value.len)
                pb_bytes(&sub, 2, s->annotations[k].value.s, s->annotations[k].value.len);
            pb_sub(&span, 10, &sub);
        }
        for (size_t k = 0; k < s->n_tags; k++) {
            pb_bytes(&sub2, 1, s->tags[k].key.s, s->tags[k].key.len);
            pb_bytes(&sub2, 2, s->tags[k].value.s, s->tags[k].value.len);
            pb_sub(&span, 11, &sub2);
        }
        pb_sub(b, 1, &span);
    }
    if (sub.failed || sub2.failed) b->failed = true;
    free(span.p);
    free(sub.p);
    free(sub2.p);
}
