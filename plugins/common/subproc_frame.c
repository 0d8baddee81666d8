/*
 * subproc_frame.c - encoding and parsing the subprocess protocol's frame header
 * (subproc_frame.h). The parser is what reads a child's output, which the router
 * does not trust: every length is bounded before it is used.
 */
#include <stdio.h>

#include <switchyard/plugin.h>

#include "subproc_frame.h"

void syc_spf_header(uint8_t out[SYC_SPF_HEADER], uint8_t type, uint8_t signal, uint64_t seq,
                    size_t payload_len)
{
    uint32_t len = (uint32_t)(payload_len + SYC_SPF_HEADER - 4);
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(len >> (24 - 8 * i));
    out[4] = type;
    out[5] = signal;
    for (int i = 0; i < 8; i++)
        out[6 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

const char *syc_spf_type_name(uint8_t type)
{
    switch (type) {
    case SYC_SPF_HELLO:
        return "hello";
    case SYC_SPF_DATA:
        return "data";
    case SYC_SPF_ACK:
        return "ack";
    case SYC_SPF_NACK:
        return "nack";
    default:
        return "unknown";
    }
}

static int fail(char *err, size_t err_len, const char *what, unsigned long long v)
{
    if (err && err_len) snprintf(err, err_len, what, v);
    return SY_EINVAL;
}

int syc_spf_parse(const uint8_t *buf, size_t len, syc_spf_frame_t *frame, size_t *used, char *err,
                  size_t err_len)
{
    if (len < 4) return 0;
    uint32_t flen =
        (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
    if (flen < SYC_SPF_HEADER - 4)
        return fail(err, err_len, "frame length %llu is shorter than the 10-byte header",
                    (unsigned long long)flen);
    if (flen > SYC_SPF_MAX_PAYLOAD + SYC_SPF_HEADER - 4)
        return fail(err, err_len, "frame length %llu is over the 64 MiB bound",
                    (unsigned long long)flen);
    /* The type and signal are checked as soon as they are there, so that a child
     * writing text by mistake is told at once rather than after 64 MiB. */
    if (len >= 6) {
        uint8_t type = buf[4], signal = buf[5];
        if (type < SYC_SPF_HELLO || type > SYC_SPF_NACK)
            return fail(err, err_len, "unknown frame type %llu", type);
        if (type == SYC_SPF_DATA && signal != SY_SIGNAL_TRACES && signal != SY_SIGNAL_METRICS &&
            signal != SY_SIGNAL_LOGS)
            return fail(err, err_len, "data frame with signal %llu (1, 2 or 4 expected)", signal);
        if (type == SYC_SPF_HELLO && (signal & ~(unsigned)SY_SIGNAL_ALL))
            return fail(err, err_len, "hello frame with signal set %llu (bits 1, 2, 4 expected)",
                        signal);
    }
    if (len < (size_t)flen + 4) return 0;
    frame->type = buf[4];
    frame->signal = buf[5];
    frame->seq = 0;
    for (int i = 0; i < 8; i++)
        frame->seq = frame->seq << 8 | buf[6 + i];
    frame->payload = buf + SYC_SPF_HEADER;
    frame->len = (size_t)flen + 4 - SYC_SPF_HEADER;
    *used = (size_t)flen + 4;
    return 1;
}
