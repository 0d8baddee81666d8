/*
 * grpc_frame.h - the parts of gRPC over HTTP/2 that are not HTTP/2 itself,
 * shared by the otlp receiver (server) and the otlp exporter (client):
 *
 *   - the length-prefixed message framing of a stream's DATA (one byte
 *     compressed flag, four bytes big-endian length, the message), parsed
 *     incrementally with a bound on the message length;
 *   - the grpc-timeout header ("100m", "5S", ...);
 *   - status codes, their names, and the percent-encoding of grpc-message;
 *   - grpc-status-details-bin: a google.rpc.Status carrying a google.rpc.RetryInfo,
 *     built for an answer and read back from one.
 *
 * Nothing here does I/O or keeps global state; every function may be called from
 * any thread on its own data.
 */
#ifndef SY_GRPC_FRAME_H
#define SY_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compress.h"

/* The bytes before every message: compressed flag and big-endian length. */
#define SYC_GRPC_FRAME_HEADER 5

/* The status codes of gRPC (doc/statuscodes.md). */
typedef enum syc_grpc_code_e {
    SYC_GRPC_OK = 0,
    SYC_GRPC_CANCELLED = 1,
    SYC_GRPC_UNKNOWN = 2,
    SYC_GRPC_INVALID_ARGUMENT = 3,
    SYC_GRPC_DEADLINE_EXCEEDED = 4,
    SYC_GRPC_NOT_FOUND = 5,
    SYC_GRPC_ALREADY_EXISTS = 6,
    SYC_GRPC_PERMISSION_DENIED = 7,
    SYC_GRPC_RESOURCE_EXHAUSTED = 8,
    SYC_GRPC_FAILED_PRECONDITION = 9,
    SYC_GRPC_ABORTED = 10,
    SYC_GRPC_OUT_OF_RANGE = 11,
    SYC_GRPC_UNIMPLEMENTED = 12,
    SYC_GRPC_INTERNAL = 13,
    SYC_GRPC_UNAVAILABLE = 14,
    SYC_GRPC_DATA_LOSS = 15,
    SYC_GRPC_UNAUTHENTICATED = 16,
} syc_grpc_code_t;

/* The upper-case name of a code ("INVALID_ARGUMENT"); "UNKNOWN" for others. */
const char *syc_grpc_code_name(int code);

/* True when the OTLP specification lets a client retry a request that failed with
 * `code`: CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE,
 * DATA_LOSS, and RESOURCE_EXHAUSTED only when the status carried RetryInfo. */
bool syc_grpc_code_retryable(int code, bool has_retry_info);

/* ------------------------------------------------------------------------ */
/* Message framing                                                           */
/* ------------------------------------------------------------------------ */

/* Writes the five header bytes of a message of `len` bytes. */
void syc_grpc_frame_header(uint8_t out[SYC_GRPC_FRAME_HEADER], bool compressed, uint32_t len);

/*
 * An incremental parser of the messages in one stream's DATA. Message bodies go
 * into memory from alloc(ctx, length), asked for once per message when its header
 * is complete (never for more than max_message bytes) and never freed by the
 * parser: the caller's allocator decides their lifetime (a batch arena, or
 * malloc-and-track). A zero-length message asks for nothing and points at a
 * static empty buffer.
 */
typedef struct syc_grpc_parser_s {
    /* Set by syc_grpc_parser_init(); read-only afterwards. */
    size_t max_message;
    syc_alloc_fn alloc;
    void *alloc_ctx;
    /* Private. */
    uint8_t header[SYC_GRPC_FRAME_HEADER];
    uint8_t header_len;
    bool compressed;
    uint32_t length;
    uint8_t *body;
    size_t body_len;
    int error; /* the error that killed the parser, returned again; 0 while alive */
} syc_grpc_parser_t;

/* One complete message: valid as long as the allocator's memory is. */
typedef struct syc_grpc_message_s {
    bool compressed;
    const uint8_t *data;
    size_t len;
} syc_grpc_message_t;

enum {
    SYC_GRPC_PARSE_MORE = 0,    /* all input consumed, no message completed */
    SYC_GRPC_PARSE_MESSAGE = 1, /* *out holds a message; input may remain */
};

void syc_grpc_parser_init(syc_grpc_parser_t *p, size_t max_message, syc_alloc_fn alloc, void *ctx);

/*
 * Consumes input from data[0..len), setting *used to the bytes taken. Returns
 * SYC_GRPC_PARSE_MESSAGE as soon as a message is complete (call again with the
 * rest), SYC_GRPC_PARSE_MORE when everything was consumed without completing one,
 * or an error after which the parser is dead (and returns it again):
 *   SY_ENOMEM  the declared length exceeds max_message (*declared is set to it,
 *              when declared is not NULL) or the allocator failed;
 *   SY_EINVAL  the flag byte is neither 0 nor 1.
 */
int syc_grpc_parser_feed(syc_grpc_parser_t *p, const uint8_t *data, size_t len, size_t *used,
                         syc_grpc_message_t *out, uint64_t *declared);

/* True when the parser stands between messages (no partial header or body), as
 * it must when the stream ends. */
bool syc_grpc_parser_idle(const syc_grpc_parser_t *p);

/*
 * Decompresses a message that had the compressed flag, sent with the
 * grpc-encoding `encoding` ("gzip", "deflate", "zstd" or "identity"; identity
 * with the flag set is an error, as the gRPC spec says), into memory from
 * alloc(ctx, ...), bounded by max_out. Returns 0; SY_ENOTSUP for an encoding
 * not supported (answer UNIMPLEMENTED); SY_EINVAL for corrupt data (INTERNAL in
 * grpc-go, INVALID_ARGUMENT here); SY_ENOMEM over max_out (RESOURCE_EXHAUSTED).
 * err gets a sentence in every failure.
 */
int syc_grpc_decompress(const char *encoding, const uint8_t *in, size_t in_len, size_t max_out,
                        syc_alloc_fn alloc, void *ctx, uint8_t **out, size_t *out_len, char *err,
                        size_t err_len);

/* ------------------------------------------------------------------------ */
/* Headers                                                                   */
/* ------------------------------------------------------------------------ */

/* Parses a grpc-timeout value (1 to 8 digits and a unit H, M, S, m, u or n) into
 * milliseconds, rounding up. Returns 0 or SY_EINVAL. */
int syc_grpc_timeout_parse(const char *value, uint64_t *ms);

/* Percent-encodes a grpc-message value (bytes outside 0x20..0x7e and '%'),
 * truncating to fit out[out_len] with its NUL. Returns the length written. */
size_t syc_grpc_message_encode(const char *message, char *out, size_t out_len);

/* Decodes a percent-encoded grpc-message in place (bad escapes are kept). */
void syc_grpc_message_decode(char *message);

/*
 * Writes into out (NUL-terminated) the grpc-status-details-bin value of a
 * google.rpc.Status {code, message, details: [Any(google.rpc.RetryInfo
 * {retry_delay: retry_ms})]}, in unpadded base64 as gRPC emits it. Returns the
 * length, or 0 when out is too small.
 */
size_t syc_grpc_status_details_retry(int code, const char *message, uint64_t retry_ms, char *out,
                                     size_t out_len);

/*
 * Reads a grpc-status-details-bin value (base64, padded or not): returns true and
 * sets *retry_ms when the Status carries a google.rpc.RetryInfo. Bounded by the
 * value's length; never fails on bad input, it only returns false.
 */
bool syc_grpc_status_details_retry_delay(const char *value, size_t len, uint64_t *retry_ms);

#endif
