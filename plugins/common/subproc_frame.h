/*
 * subproc_frame.h - the frames of the subprocess protocol (docs/subprocess.md):
 * what the `subprocess` processor and exporter exchange with their child over its
 * stdin and stdout.
 *
 *   u32 length (big-endian): the bytes that follow, 10 + payload length
 *   u8  type: SYC_SPF_HELLO, DATA, ACK or NACK
 *   u8  signal: DATA: 1 traces, 2 metrics, 4 logs (sy_signal_t); HELLO: a set of
 *       them; ACK and NACK: 0
 *   u64 sequence number (big-endian): of the request a DATA, ACK or NACK is about
 *   payload: DATA an encoded OTLP Export*ServiceRequest of the signal; HELLO the
 *       protocol name and version; NACK a message; ACK nothing
 */
#ifndef SYC_SUBPROC_FRAME_H
#define SYC_SUBPROC_FRAME_H

#include <stddef.h>
#include <stdint.h>

enum {
    SYC_SPF_HELLO = 1,
    SYC_SPF_DATA = 2,
    SYC_SPF_ACK = 3,
    SYC_SPF_NACK = 4,
};

#define SYC_SPF_HEADER      14u /* length, type, signal, sequence number */
#define SYC_SPF_MAX_PAYLOAD (64u << 20)
/* What a HELLO payload starts with; a later major changes the digit. */
#define SYC_SPF_VERSION "switchyard-subprocess/1"

typedef struct syc_spf_frame_s {
    uint8_t type;
    uint8_t signal;
    uint64_t seq;
    const uint8_t *payload; /* points into the buffer parsed */
    size_t len;
} syc_spf_frame_t;

/* Writes the header of a frame with `payload_len` bytes of payload. */
void syc_spf_header(uint8_t out[SYC_SPF_HEADER], uint8_t type, uint8_t signal, uint64_t seq,
                    size_t payload_len);

/*
 * Reads one frame from the start of buf[0..len). Returns 1 and fills *frame and
 * *used (the frame's bytes) when a whole frame is there, 0 when more bytes are
 * needed, SY_EINVAL with a sentence in err when the bytes cannot be a frame (a
 * length under 10 or over SYC_SPF_MAX_PAYLOAD + 10, an unknown type, a signal the
 * type does not allow). The payload is not checked further here.
 */
int syc_spf_parse(const uint8_t *buf, size_t len, syc_spf_frame_t *frame, size_t *used, char *err,
                  size_t err_len);

/* "hello", "data", "ack", "nack" or "unknown". */
const char *syc_spf_type_name(uint8_t type);

#endif
