/*
 * otlp_json_map.h - what OTLP/JSON calls each protobuf field, shared by the
 * decoder (otlp_json_decode.c) and the encoder (otlp_json_encode.c): the
 * lowerCamelCase key of a field, the lookup of a key in a message type (either
 * spelling), the fields written as hex IDs rather than base64, and the wire
 * facts both directions need (the wire type of a field, varints). Internal to
 * sy_common.
 */
#ifndef SY_COMMON_OTLP_JSON_MAP_H
#define SY_COMMON_OTLP_JSON_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Longest JSON key the codec writes or matches, with its NUL. */
#define SYC__JSON_NAME_MAX 128

/* The JSON (lowerCamelCase) name of field f, written into buf (size bytes). */
const char *syc__json_name(const ProtobufCFieldDescriptor *f, char *buf, size_t size);

/* The field of `desc` whose proto name or JSON name is key[0..len), or NULL. */
const ProtobufCFieldDescriptor *syc__json_find_field(const ProtobufCMessageDescriptor *desc,
                                                     const unsigned char *key, size_t len);

/* Bytes of an ID written in hex (trace_id: 16; span_id, parent_span_id: 8), or 0
 * if f is an ordinary bytes field (base64). Any message's fields of those names
 * are IDs, as the OTLP specification says. */
size_t syc__json_hex_id_size(const ProtobufCFieldDescriptor *f);

/* The wire type a value of `type` has when not packed (0, 1, 2 or 5). */
int syc__wire_type_of(ProtobufCType type);

/* Whether a proto3 singular field has no presence of its own: it is left out
 * of both encodings at its default value. Oneof members, and fields with a has_
 * flag, are written whenever they are set. */
static inline bool syc__field_implicit(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_NONE && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF);
}

/* Whether f is a repeated scalar whose elements pack into one length-delimited
 * run (protobuf-c packs it when the descriptor says so, and reads both forms). */
static inline bool syc__field_packable(const ProtobufCFieldDescriptor *f)
{
    return f->label == PROTOBUF_C_LABEL_REPEATED && syc__wire_type_of(f->type) != 2;
}

/* Bytes the varint of v takes (1..10). */
static inline size_t syc__varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes the varint of v at p (room for 10 bytes); returns its size. */
static inline size_t syc__varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

#endif
