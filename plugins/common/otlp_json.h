/*
 * otlp_json.h - the OTLP/JSON encoding ("OTLP/HTTP JSON encoding" of the OTLP
 * specification), driven by protobuf-c descriptors so that one codec serves every
 * message type. Both directions work on encoded protobuf, not on protobuf-c
 * structs, so strings keep every byte, NUL included: OTLP strings may hold any
 * valid UTF-8, U+0000 too, and a NUL-terminated char * cannot.
 *
 * What differs from plain proto3 JSON, as OTLP requires: trace and span IDs
 * (fields trace_id, span_id, parent_span_id of any message) are hex strings rather
 * than base64; enums are written as integers (names are accepted too); keys are
 * lowerCamelCase (the proto names are accepted too); 64-bit integers are written as
 * strings (numbers are accepted too); unknown keys are ignored.
 *
 * otlp_json_decode.c reads JSON, otlp_json_encode.c writes it, otlp_json_map.c
 * holds the field names and special cases both share.
 */
#ifndef SY_OTLP_JSON_H
#define SY_OTLP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Nesting of JSON objects and arrays that the decoder accepts, and of messages
 * that the encoder writes. */
#define SYC_OTLP_JSON_MAX_DEPTH 64

/*
 * Decodes OTLP/JSON of message type `desc` into its protobuf encoding: what
 * protobuf_c_message_pack() would write for the message the document describes
 * (see otlp_json_decode.c for keys given twice). The result comes from `alloc`
 * (one allocation, never freed piecewise) or from malloc() if alloc is NULL, and
 * *wire_len is set to its length. The memory the decoder takes meanwhile is
 * bounded (16 MiB plus 32 times the input size, plus yajl's 1 MiB plus the input
 * size); a document needing more is refused.
 * Returns NULL with a sentence in err (naming the field and byte offset when it can)
 * on invalid input or out of memory. Any thread; no global state.
 */
uint8_t *syc_otlp_json_to_wire(const ProtobufCMessageDescriptor *desc, const uint8_t *json,
                               size_t len, ProtobufCAllocator *alloc, size_t *wire_len, char *err,
                               size_t err_len);

/*
 * Decodes OTLP/JSON into a protobuf-c message whose memory all comes from `alloc`
 * (syc_otlp_json_to_wire(), then protobuf_c_message_unpack()). The struct form
 * cuts a string at its first NUL: use the wire form where strings matter.
 * Returns NULL with a sentence in err on invalid input or out of memory.
 */
ProtobufCMessage *syc_otlp_json_decode(const ProtobufCMessageDescriptor *desc, const uint8_t *json,
                                       size_t len, ProtobufCAllocator *alloc, char *err,
                                       size_t err_len);

/*
 * Encodes the protobuf encoding of a message of type `desc` as OTLP/JSON on one
 * line without a trailing newline, into a buffer from malloc() that the caller
 * frees; *json_len is set to its length (the buffer is also NUL-terminated).
 * The JSON is what encoding protobuf-c's decode of the bytes field by field
 * gives (see otlp_json_encode.c): keys in descriptor order, fields holding
 * their default value left out except members of a oneof that is set. Strings
 * are written byte for byte with control characters (NUL too) escaped; a byte
 * that is not UTF-8 is replaced by U+FFFD. If merges is not NULL, it is set to
 * the number of singular message fields that occurred more than once and were
 * merged (for tests). Returns NULL on out of memory, on bytes that
 * protobuf_c_message_unpack() would refuse, or if messages nest deeper than
 * SYC_OTLP_JSON_MAX_DEPTH. Any thread; no global state.
 */
char *syc_otlp_json_from_wire(const ProtobufCMessageDescriptor *desc, const uint8_t *wire,
                              size_t len, size_t *json_len, unsigned *merges);

/*
 * Encodes a message as OTLP/JSON: protobuf_c_message_pack(), then
 * syc_otlp_json_from_wire(). For small messages built in code (a google.rpc.Status);
 * telemetry goes through the wire form. Returns NULL on out of memory or if messages
 * nest deeper than SYC_OTLP_JSON_MAX_DEPTH.
 */
char *syc_otlp_json_encode(const ProtobufCMessage *msg, size_t *len);

#endif
