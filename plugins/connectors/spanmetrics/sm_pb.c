/*
 * sm_pb.c - the protobuf writes of the spanmetrics connector (see sm_pb.h).
 */
#include "sm_pb.h"

#include <stdlib.h>
#include <string.h>

bool sm_buf_reserve(sm_buf_t *b, size_t n)
{
    if (b->failed) return false;
    if (b->cap - b->len >= n) return true;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void sm_buf_free(sm_buf_t *b)
{
    free(b->data);
    *b = (sm_buf_t){0};
}

void sm_buf_put(sm_buf_t *b, const void *data, size_t n)
{
    if (!n || !sm_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, data, n);
    b->len += n;
}

static size_t varint_encode(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

void sm_pb_varint(sm_buf_t *b, uint64_t v)
{
    if (!sm_buf_reserve(b, 10)) return;
    b->len += varint_encode(b->data + b->len, v);
}

void sm_pb_tag(sm_buf_t *b, uint32_t field, uint32_t wire)
{
    sm_pb_varint(b, ((uint64_t)field << 3) | wire);
}

void sm_pb_uint(sm_buf_t *b, uint32_t field, uint64_t v)
{
    sm_pb_tag(b, field, 0);
    sm_pb_varint(b, v);
}

void sm_pb_fixed64(sm_buf_t *b, uint32_t field, uint64_t v)
{
    sm_pb_tag(b, field, 1);
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    sm_buf_put(b, le, 8);
}

void sm_pb_double(sm_buf_t *b, uint32_t field, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    sm_pb_fixed64(b, field, u);
}

void sm_pb_bytes(sm_buf_t *b, uint32_t field, const void *p, size_t n)
{
    sm_pb_tag(b, field, 2);
    sm_pb_varint(b, n);
    sm_buf_put(b, p, n);
}

size_t sm_pb_begin(sm_buf_t *b, uint32_t field)
{
    sm_pb_tag(b, field, 2);
    if (!sm_buf_reserve(b, 1)) return 0;
    b->data[b->len++] = 0;
    return b->len;
}

void sm_pb_end(sm_buf_t *b, size_t start)
{
    if (b->failed) return;
    size_t n = b->len - start;
    uint8_t pre[10];
    size_t pl = varint_encode(pre, n);
    if (pl > 1) {
        if (!sm_buf_reserve(b, pl - 1)) return;
        memmove(b->data + start + pl - 1, b->data + start, n);
        b->len += pl - 1;
    }
    memcpy(b->data + start - 1, pre, pl);
}
