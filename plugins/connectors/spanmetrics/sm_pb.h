/*
 * sm_pb.h - a growable byte buffer and the protobuf wire writes the spanmetrics
 * connector needs to encode its ExportMetricsServiceRequest (the output only: spans
 * are read through the view, never decoded).
 *
 * A nested message is written in place: sm_pb_begin() leaves one byte for its
 * length and returns where the content starts; sm_pb_end() writes the length and,
 * when it needs more than one byte, moves the content up. Errors (out of memory)
 * stick in buf->failed and every later write is a no-op, so a caller checks once.
 */
#ifndef SY_SPANMETRICS_PB_H
#define SY_SPANMETRICS_PB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sm_buf_s {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} sm_buf_t;

/* Makes room for n more bytes; false (and failed set) on out of memory. */
bool sm_buf_reserve(sm_buf_t *b, size_t n);
void sm_buf_free(sm_buf_t *b);
void sm_buf_put(sm_buf_t *b, const void *data, size_t n);

void sm_pb_varint(sm_buf_t *b, uint64_t v);
/* A field's tag: wire type 0 varint, 1 fixed64, 2 length-delimited. */
void sm_pb_tag(sm_buf_t *b, uint32_t field, uint32_t wire);
void sm_pb_uint(sm_buf_t *b, uint32_t field, uint64_t v);               /* varint, also 0 */
void sm_pb_fixed64(sm_buf_t *b, uint32_t field, uint64_t v);            /* fixed64 / sfixed64 */
void sm_pb_double(sm_buf_t *b, uint32_t field, double v);               /* double */
void sm_pb_bytes(sm_buf_t *b, uint32_t field, const void *p, size_t n); /* string, bytes */
/* Starts a length-delimited field; returns the offset to hand to sm_pb_end(). */
size_t sm_pb_begin(sm_buf_t *b, uint32_t field);
void sm_pb_end(sm_buf_t *b, size_t start);

/* sint32 zig-zag. */
static inline uint64_t sm_pb_zigzag32(int32_t v)
{
    return (uint32_t)((uint32_t)v << 1) ^ (uint32_t)(v >> 31);
}

#endif
