/*
 * fuzz_ottl.c - libFuzzer target for the OTTL compiler and evaluator
 * (plugins/common/ottl_lex.c, ottl_parse.c, ottl_eval.c).
 *
 * The first byte of the input picks the context, the second whether the rest is
 * a condition or a statement. Whatever compiles is then evaluated (or run) on the
 * in-memory item of tests/unit/ottl_fake.h, with a small scratch so that its
 * bound is hit too. Invariants checked (abort on violation): a refused input has
 * a message "col N: ..." with N inside the input (or just past its end); compiling
 * is deterministic; evaluation returns 0 or a SY_E… code; context inference
 * (syc_ottl_infer_context) returns 0 with a context it was allowed, SY_EAGAIN or
 * SY_EINVAL with a message, and a context it infers compiles the same input or
 * refuses it with a well-formed error.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.ottl.corpus).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/ottl_fake.h"

static size_t count_chars(const uint8_t *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += (p[i] & 0xC0) != 0x80;
    return c;
}

static syc_ottl_prog_t *compile(const char *src, size_t n, syc_ottl_context_t ctx, bool stmt,
                                syc_ottl_error_t *err)
{
    return stmt ? syc_ottl_compile_statement(src, n, ctx, err)
                : syc_ottl_compile_condition(src, n, ctx, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static syc_ottl_scratch_t *scratch;
    if (!scratch && !(scratch = syc_ottl_scratch_new(512))) abort();
    if (size < 2) return 0;
    syc_ottl_context_t ctx = (syc_ottl_context_t)(data[0] % SYC_OTTL_CTX_COUNT_);
    bool stmt = data[1] & 1;
    const char *src = (const char *)data + 2;
    size_t n = size - 2;

    syc_ottl_error_t err;
    unsigned allowed = (unsigned)data[1] >> 1 | 1u; /* a few contexts, always resource */
    syc_ottl_context_t inferred;
    int irc = syc_ottl_infer_context(src, n, allowed, &inferred, &err);
    if (irc == 0) {
        if (!(allowed & (1u << inferred))) abort();
    } else if ((irc != SY_EAGAIN && irc != SY_EINVAL) || !err.msg[0]) {
        abort();
    }

    syc_ottl_prog_t *p = compile(src, n, ctx, stmt, &err);
    if (!p) {
        int col = 0;
        if (sscanf(err.msg, "col %d:", &col) != 1 || col != err.col || col < 1 ||
            (size_t)col > count_chars(data + 2, n) + 1) {
            fprintf(stderr, "bad error: col %d, \"%s\"\n", err.col, err.msg);
            abort();
        }
        syc_ottl_prog_t *again = compile(src, n, ctx, stmt, &err);
        if (again) abort();
        return 0;
    }
    syc_ottl_error_t err2;
    syc_ottl_prog_t *again = compile(src, n, ctx, stmt, &err2);
    if (!again) abort();
    syc_ottl_free(again);

    static fake_item_t item;
    fake_item_init(&item);
    int rc;
    if (stmt) {
        bool applied;
        rc = syc_ottl_exec_statement(p, &fake_accessor, &item, scratch, &applied);
    } else {
        bool out;
        rc = syc_ottl_eval_condition(p, &fake_accessor, &item, scratch, &out);
    }
    if (rc != 0 && rc != SY_EINVAL && rc != SY_ENOMEM && rc != SY_ENOTSUP) abort();
    syc_ottl_free(p);
    return 0;
}
