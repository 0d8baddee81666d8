/*
 * fuzz_tracestate.c - libFuzzer target for the probabilistic_sampler's W3C
 * tracestate parser and writer and its threshold arithmetic
 * (plugins/processors/probabilistic_sampler/sampling.c).
 *
 * Input: the first 8 bytes are a threshold and a probability to try, the rest a
 * tracestate. Invariants checked (abort on violation): the parser reads only the
 * input; a tracestate that parses is written back within the length bound, and
 * the written one parses again to the same rv, th and members (so a span's
 * tracestate survives the sampler); after setting rv and updating th the result
 * parses with exactly those, unless they took it over the limits of 1024
 * bytes, 32 members or 256 bytes of ot (the collector writes such a tracestate
 * too); a threshold's th value reads
 * back as the threshold; a probability in range gives a threshold <= 2^56.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.tracestate.corpus).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sampling.h"

static ps_tracestate_t a, b;

static void same(const ps_tracestate_t *x, const ps_tracestate_t *y)
{
    if (x->rvalue.len != y->rvalue.len || (x->rvalue.len && x->rnd != y->rnd)) abort();
    if (x->tvalue.len != y->tvalue.len || (x->tvalue.len && x->threshold != y->threshold)) abort();
    if (x->n_ot != y->n_ot || x->n_w3c != y->n_w3c) abort();
    for (size_t i = 0; i < x->n_w3c; i++)
        if (x->w3c[i].key.len != y->w3c[i].key.len ||
            memcmp(x->w3c[i].key.p, y->w3c[i].key.p, x->w3c[i].key.len) ||
            x->w3c[i].value.len != y->w3c[i].value.len ||
            memcmp(x->w3c[i].value.p, y->w3c[i].value.p, x->w3c[i].value.len))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    uint64_t th_try = 0;
    memcpy(&th_try, data, 8);
    data += 8, size -= 8;

    char tvb[16];
    uint64_t th = th_try % (PS_MAX_ADJUSTED_COUNT + 1), back;
    size_t n = ps_threshold_tvalue(th, tvb);
    if (th < PS_MAX_ADJUSTED_COUNT && (ps_parse_tvalue(tvb, n, &back) != PS_OK || back != th))
        abort();
    double p = (double)(th_try >> 11) / (double)(UINT64_C(1) << 53);
    uint64_t pth;
    if (ps_probability_to_threshold(p, (int)(th_try % 15), &pth) == 0 &&
        pth > PS_MAX_ADJUSTED_COUNT)
        abort();

    /* the parser keeps pointers into its input: give it an exact-size copy */
    char *in = malloc(size ? size : 1);
    if (!in) return 0;
    memcpy(in, data, size);
    char out[2048], out2[2048];
    if (ps_tracestate_parse(&a, in, size) == PS_OK) {
        size_t len = ps_tracestate_serialize(&a, out, sizeof out);
        if (len > size) abort(); /* nothing added; whitespace and empty members dropped */
        if (ps_tracestate_parse(&b, out, len) != PS_OK) abort();
        same(&a, &b);
        ps_tracestate_set_rv(&a, th_try & (PS_MAX_ADJUSTED_COUNT - 1));
        uint64_t t = th % PS_MAX_ADJUSTED_COUNT;
        int raised = ps_tracestate_update_th(&a, t);
        len = ps_tracestate_serialize(&a, out2, sizeof out2);
        if (!len || len > size + 40) abort();
        /* Adding rv, th and an ot entry may take it over 1024 bytes, 32 members or
         * an ot value of 256 bytes: the collector writes it all the same, and the
         * next parser refuses it. */
        ps_err_t e = ps_tracestate_parse(&b, out2, len);
        const char *comma = memchr(out2, ',', len);
        size_t ot_len = (comma ? (size_t)(comma - out2) : len) - 3;
        if (e == PS_ERR_SIZE || (e == PS_ERR_SYNTAX && ot_len > 256)) goto done;
        if (e != PS_OK) abort();
        if (!ps_tracestate_has_rv(&b) || b.rnd != (th_try & (PS_MAX_ADJUSTED_COUNT - 1))) abort();
        if (raised == 0 && (!ps_tracestate_has_th(&b) || b.threshold != t)) abort();
    }
done:
    free(in);
    return 0;
}
