/*
 * loadgen_payload.h - the requests loadgen sends, encoded once at start: OTLP
 * ExportTraceServiceRequests built with the protobuf-c generated types, and
 * optionally gzip-compressed. Knows nothing of the transport that carries them.
 */
#ifndef LOADGEN_PAYLOAD_H
#define LOADGEN_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LG_MAX_SPANS    1000000 /* spans in one request */
#define LG_MAX_ATTRS    128     /* attributes on one span */
#define LG_MAX_DISTINCT 64      /* distinct requests cycled */

typedef struct lg_payload_opts_s {
    unsigned spans;     /* spans per request */
    unsigned attrs;     /* attributes per span, alternately string and int */
    unsigned distinct;  /* how many different requests to build */
    bool gzip;          /* compress the bodies */
    bool zstd;          /* zstd-compress the bodies instead (level 3) */
    uint64_t seed;      /* for the IDs and values */
    const char *header; /* one more request header line ("Authorization: Bearer t"), or NULL */
    bool sequence;      /* remember where each span ID is, for lg_payload_number() */
    bool unique_traces; /* with sequence: lg_payload_number() also numbers the trace IDs */
} lg_payload_opts_t;

/* One encoded request. The body is what goes on the wire: the serialized
 * ExportTraceServiceRequest, or its gzip compression. */
typedef struct lg_payload_s {
    unsigned index;     /* position in the set */
    uint8_t *body;      /* owned by the set */
    size_t len;         /* bytes of body */
    size_t raw_len;     /* bytes of the serialized protobuf, before compression */
    unsigned spans;     /* spans it holds */
    bool gzip;          /* the body is gzip-compressed */
    bool zstd;          /* the body is zstd-compressed */
    size_t *span_id_at; /* with opts.sequence: offset of each span's 8 ID bytes in body */
    bool unique_traces; /* opts.unique_traces: the trace ID precedes each span ID */
} lg_payload_t;

typedef struct lg_payload_set_s {
    lg_payload_t *items;
    unsigned count;
    const char *header; /* opts->header: sent with every HTTP request */
} lg_payload_set_t;

/* Builds opts->distinct requests into *set. Returns 0, or -1 with a message in
 * err. On failure *set is empty and needs no free. */
int lg_payload_build(const lg_payload_opts_t *opts, lg_payload_set_t *set, char *err,
                     size_t err_len);

/* With opts.sequence (uncompressed bodies): copies p's body into out (p->len bytes)
 * with span i's ID set to client (16 bits, big-endian), seq (32 bits) and i (16
 * bits), so that a sink can tell which request of which client each span came in.
 * With opts.unique_traces, the first 6 bytes of each span's trace ID are set to
 * client and seq too, so that no trace ID comes back in a later request. */
void lg_payload_number(const lg_payload_t *p, uint8_t *out, uint16_t client, uint32_t seq);

/* Frees what lg_payload_build made; an empty set is fine. */
void lg_payload_free(lg_payload_set_t *set);

#endif
