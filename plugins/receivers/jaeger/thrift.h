/*
 * thrift.h - a reader of the two Thrift wire protocols Jaeger speaks: binary
 * (TBinaryProtocol, strict and old-style messages) and compact (TCompactProtocol).
 *
 * One reader, two backends chosen at init: the caller asks for "the next field",
 * "an i64", "a list header" and gets the same answer whichever protocol the bytes
 * are in. Types are reported with the binary protocol's type ids (TH_I64 ...)
 * whatever the protocol, so the decoders of the Jaeger structs are written once.
 *
 * Bounds: every read checks the bytes left; a string or container is refused when
 * its length or element count is larger than the bytes left (each element takes at
 * least one byte on the wire, so an element count can never make a caller allocate
 * more than a small multiple of the input); structs and containers nest at most
 * TH_MAX_DEPTH deep. The first error is kept in `err` (a static sentence) and every
 * later read fails at once, so decoders may check only at the points where they
 * branch. Nothing here allocates.
 *
 * Not thread-safe by itself; one reader belongs to one caller. Any thread.
 */
#ifndef SY_JAEGER_THRIFT_H
#define SY_JAEGER_THRIFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting of structs and containers accepted (Jaeger's own is 4:
 * message args > Batch > Span > Log > Tag, lists between them counted too). */
#define TH_MAX_DEPTH 16

/* Type ids, as the binary protocol writes them. */
typedef enum th_type_e {
    TH_STOP = 0,
    TH_BOOL = 2,
    TH_BYTE = 3,
    TH_DOUBLE = 4,
    TH_I16 = 6,
    TH_I32 = 8,
    TH_I64 = 10,
    TH_STRING = 11,
    TH_STRUCT = 12,
    TH_MAP = 13,
    TH_SET = 14,
    TH_LIST = 15,
} th_type_t;

typedef enum th_proto_e {
    TH_PROTO_BINARY = 0,
    TH_PROTO_COMPACT = 1,
} th_proto_t;

/* Message types of a message header. */
enum { TH_MSG_CALL = 1, TH_MSG_REPLY = 2, TH_MSG_EXCEPTION = 3, TH_MSG_ONEWAY = 4 };

typedef struct th_reader_s {
    const uint8_t *start, *p, *end;
    th_proto_t proto;
    int depth;
    /* compact: the last field id of each open struct (ids are delta-coded) */
    int16_t last_fid[TH_MAX_DEPTH + 1];
    /* compact: a bool field carries its value in its header: -1 none, 0 or 1 */
    int bool_pending;
    const char *err; /* the first error, a static sentence; NULL while all is well */
} th_reader_t;

/* Starts reading data[0..len) in `proto`. */
void th_init(th_reader_t *r, th_proto_t proto, const uint8_t *data, size_t len);

/* Records the first error (later ones are ignored) and returns -1. */
int th_fail(th_reader_t *r, const char *why);

/* Offset of the read position, for messages. */
static inline size_t th_offset(const th_reader_t *r)
{
    return (size_t)(r->p - r->start);
}

/* A message header: name (pointing into the input), type (TH_MSG_*), seqid.
 * Returns 0 or -1. */
int th_message_begin(th_reader_t *r, const uint8_t **name, size_t *name_len, int *type,
                     int32_t *seqid);

/* Struct nesting: begin before the first field, end after TH_STOP. 0 or -1. */
int th_struct_begin(th_reader_t *r);
int th_struct_end(th_reader_t *r);

/* The next field's type and id; *type is TH_STOP after the last one. 0 or -1. */
int th_field_begin(th_reader_t *r, th_type_t *type, int16_t *id);

/* Scalars. 0 or -1. */
int th_read_bool(th_reader_t *r, bool *v);
int th_read_byte(th_reader_t *r, int8_t *v);
int th_read_i16(th_reader_t *r, int16_t *v);
int th_read_i32(th_reader_t *r, int32_t *v);
int th_read_i64(th_reader_t *r, int64_t *v);
int th_read_double(th_reader_t *r, double *v);
/* A string or binary: *p points into the input. 0 or -1. */
int th_read_binary(th_reader_t *r, const uint8_t **p, uint32_t *len);

/* A list or set header (one nesting level; end with th_container_end()).
 * The count is checked against the bytes left. 0 or -1. */
int th_list_begin(th_reader_t *r, th_type_t *elem, uint32_t *count);
int th_container_end(th_reader_t *r);

/* Skips one value of `type` (nested ones too, within the depth bound). 0 or -1. */
int th_skip(th_reader_t *r, th_type_t type);

#endif
