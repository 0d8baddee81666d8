/*
 * fuzz_subproc_frame.c - libFuzzer target for the subprocess protocol's frame
 * parser (plugins/common/subproc_frame.c), which reads what a child process writes
 * to its stdout: bytes the router does not trust.
 *
 * The input is parsed as a stream of frames, as the supervisor reads it. Invariants
 * checked (abort on violation): a frame lies inside the input, its payload ends
 * where the frame ends and is at most SYC_SPF_MAX_PAYLOAD; its type is one of the
 * four; a DATA frame has one signal, a HELLO only signal bits; the header written
 * back by syc_spf_header() for its fields is the header read; and every prefix of
 * the bytes of a frame that parsed asks for more bytes rather than failing or
 * producing a frame (the parser answers the same however the pipe splits a frame).
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.subproc_frame.corpus).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "subproc_frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    while (pos < size) {
        syc_spf_frame_t f;
        size_t used = 0;
        char err[128];
        int rc = syc_spf_parse(data + pos, size - pos, &f, &used, err, sizeof(err));
        if (rc < 0) {
            if (!err[0]) abort();
            break;
        }
        if (rc == 0) break;
        if (used < SYC_SPF_HEADER || used > size - pos) abort();
        if (f.payload != data + pos + SYC_SPF_HEADER || f.len != used - SYC_SPF_HEADER) abort();
        if (f.len > SYC_SPF_MAX_PAYLOAD) abort();
        if (f.type < SYC_SPF_HELLO || f.type > SYC_SPF_NACK) abort();
        if (f.type == SYC_SPF_DATA && f.signal != SY_SIGNAL_TRACES &&
            f.signal != SY_SIGNAL_METRICS && f.signal != SY_SIGNAL_LOGS)
            abort();
        if (f.type == SYC_SPF_HELLO && (f.signal & ~(unsigned)SY_SIGNAL_ALL)) abort();
        uint8_t header[SYC_SPF_HEADER];
        syc_spf_header(header, f.type, f.signal, f.seq, f.len);
        if (memcmp(header, data + pos, SYC_SPF_HEADER) != 0) abort();
        for (size_t cut = 0; cut < used; cut += 1 + cut / 2) {
            syc_spf_frame_t g;
            size_t u2 = 0;
            if (syc_spf_parse(data + pos, cut, &g, &u2, err, sizeof(err)) != 0) abort();
        }
        if (strcmp(syc_spf_type_name(f.type), "unknown") == 0) abort();
        pos += used;
    }
    return 0;
}
