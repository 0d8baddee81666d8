/*
 * otlp_json.h - the OTLP/JSON encoding ("OTLP/HTTP JSON encoding" of the OTLP
 * specification), driven by protobuf-c descriptors so that one codec serves every
 * message type.
 *
 * What differs from plain proto3 JSON, as OTLP requires: trace and span IDs
 * (fields trace_id, span_id, parent_span_id of any message) are hex strings rather
 * than base64; enums are written as integers (names are accepted too); keys are
 * lowerCamelCase (the proto names are accepted too); 64-bit integers are written as
 * strings (numbers are accepted too); unknown keys are ignored.
 */
#ifndef SY_OTLP_JSON_H
#define SY_OTLP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Nesting of JSON objects and arrays that the decoder accepts. */
#define SYC_OTLP_JSON_MAX_DEPTH 64

/*
 * Decodes OTLP/JSON of message type `desc` into a new message. Every allocation
 * (message structs, repeated arrays, strings, bytes) comes from `alloc`, which is
 * treated as an arena: nothing is ever freed piecewise, so growing a repeated field
 * abandons its smaller array. The memory the decoder takes is bounded (16 MiB plus
 * 32 times the input size); a document needing more is refused.
 * Returns NULL with a sentence in err (naming the field and byte offset when it can)
 * on invalid input or out of memory; what was allocated until then stays with the
 * arena. Any thread; no global state.
 */
ProtobufCMessage *syc_otlp_json_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *json,
                                       size_t len, ProtobufCAllocator *alloc, char *err,
                                       size_t err_len);

/*
 * Encodes a message as OTLP/JSON on one line without a trailing newline, into a
 * buffer from malloc() that the caller frees; *len is set to its length (the
 * buffer is also NUL-terminated). Fields holding their default value are left out,
 * except members of a oneof that is set. Invalid UTF-8 in strings is replaced by
 * U+FFFD. Returns NULL on out of memory or if messages nest deeper than
 * SYC_OTLP_JSON_MAX_DEPTH.
 */
char *syc_otlp_json_encode(const ProtobufCMessage *msg, size_t *len);

#endif
