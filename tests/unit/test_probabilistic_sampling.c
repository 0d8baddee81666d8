/*
 * test_probabilistic_sampling.c - the arithmetic of the probabilistic_sampler
 * (plugins/processors/probabilistic_sampler/sampling.c) against the vectors of
 * the collector's pkg/sampling tests (opentelemetry-collector-contrib:
 * probability_test.go ExampleProbabilityToThresholdWithPrecision,
 * ExampleProbabilityToThreshold_rounding, _limitedprecision, _verysmall and
 * TestProbabilityToThresholdWithPrecision; processor/probabilisticsamplerprocessor
 * tracesprocessor_test.go TestEmptyHashFunction), and the tracestate parser and
 * writer on the W3C grammar's edges. The decisions through the real .so are in
 * tests/integration/test_probabilistic_sampler.py.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sampling.h"

static const char *tv(uint64_t th)
{
    static char buf[16];
    ps_threshold_tvalue(th, buf);
    return buf;
}

static const char *tv_prec(double p, int prec)
{
    uint64_t th;
    assert_int_equal(ps_probability_to_threshold(p, prec, &th), 0);
    return tv(th);
}

static void test_hash_vectors(void **state)
{
    (void)state;
    uint8_t zeros[16] = {0};
    assert_int_equal(ps_fnv_hash(NULL, 0, 0) & 0x3fff, 0x3515);
    assert_int_equal(ps_fnv_hash(zeros, 16, 0) & 0x3fff, 0x2455);
    /* FNV-1a of nothing but the seed bytes 0,0,0,0 from the offset basis */
    uint32_t h = 2166136261u;
    for (int i = 0; i < 4; i++)
        h = (h ^ 0) * 16777619u;
    assert_int_equal(ps_fnv_hash(NULL, 0, 0), h);
    /* the randomness keeps the 14-bit decision: R' >= 0x4000 - scaled iff hashed < scaled */
    for (uint32_t seed = 0; seed < 50; seed++) {
        uint8_t id[16];
        for (int i = 0; i < 16; i++)
            id[i] = (uint8_t)(seed * 31 + i * 7);
        uint32_t hashed = ps_fnv_hash(id, 16, seed) & 0x3fff;
        uint64_t r = ps_hash_randomness(id, 16, seed);
        assert_true(r < PS_MAX_ADJUSTED_COUNT);
        for (uint32_t scaled = 1; scaled <= 0x4000; scaled += 97)
            assert_int_equal(r >= ((uint64_t)(0x4000 - scaled) << 42), hashed < scaled);
    }
}

static void test_examples(void **state)
{
    (void)state;
    assert_string_equal(tv_prec(1.0 / 3, 3), "aab");
    assert_string_equal(tv_prec(2.0 / 3, 3), "555");
    assert_string_equal(tv_prec(3.0 / 3, 3), "0");
    assert_string_equal(tv_prec(1.0 / 3, 0), "aaaaaaaaaaaaac");
    /* limited precision: full precision (0) */
    assert_string_equal(tv_prec(15.0 / 16, 0), "1");
    assert_string_equal(tv_prec(nextafter(15.0 / 16, 0), 0), "10000000000008");
    assert_string_equal(tv_prec(0.5, 0), "8");
    assert_string_equal(tv_prec(nextafter(0.5, 0), 0), "80000000000004");
    assert_string_equal(tv_prec(0.25, 0), "c");
    assert_string_equal(tv_prec(nextafter(0.25, 0), 0), "c0000000000002");
    assert_string_equal(tv_prec(1.0 / 8, 0), "e");
    assert_string_equal(tv_prec(nextafter(1.0 / 8, 0), 0), "e0000000000001");
    assert_string_equal(tv_prec(1.0 / 16, 0), "f");
    assert_string_equal(tv_prec(nextafter(1.0 / 16, 0), 0), "f");
    /* very small, precision 3 raised automatically */
    assert_string_equal(tv_prec(ldexp(1, -56), 3), "ffffffffffffff");
    assert_string_equal(tv_prec(ldexp(2, -56), 3), "fffffffffffffe");
    assert_string_equal(tv_prec(ldexp(3, -56), 3), "fffffffffffffd");
    assert_string_equal(tv_prec(ldexp(4, -56), 3), "fffffffffffffc");
    assert_string_equal(tv_prec(ldexp(8, -56), 3), "fffffffffffff8");
    assert_string_equal(tv_prec(ldexp(16, -56), 3), "fffffffffffff");
    uint64_t th;
    assert_int_equal(ps_probability_to_threshold(ldexp(1, -57), 4, &th), -1);
    assert_int_equal(ps_probability_to_threshold(1.0001, 4, &th), -1);
    assert_int_equal(ps_probability_to_threshold(NAN, 4, &th), -1);
}

static void test_precision_table(void **state)
{
    (void)state;
    static const struct {
        double prob;
        const char *exact;
        const char *rounded[10];
    } cases[] = {
        {0, "456789a", {"45678a", "45679", "4568", "456", "45", "4"}},
        {0, "000456789a", {"00045678a", "00045679", "0004568", "000456", "00045", "0004"}},
        {0,
         "0789abcdef",
         {"0789abcdef", "0789abcdf", "0789abce", "0789abd", "0789ac", "0789b", "078a", "079",
          "08"}},
        {0, "12345678", {"1234568", "123456", "12345", "1234", "123", "12", "1"}},
        {0, "0080801", {"00808", "008"}},
    };
    const double probs[] = {1 - ldexp(0x456789a, -28), 1 - ldexp(0x456789a, -40),
                            1 - ldexp(0x789abcdefLL, -40), 1 - ldexp(0x12345678, -32),
                            1 - ldexp(0x80801, -28)};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_string_equal(tv_prec(probs[i], 0), cases[i].exact);
        for (size_t j = 0; cases[i].rounded[j]; j++) {
            const char *want = cases[i].rounded[j];
            int prec = (int)strlen(want);
            while (*want == '0')
                want++, prec--;
            assert_string_equal(tv_prec(probs[i], prec), cases[i].rounded[j]);
        }
    }
    assert_string_equal(tv_prec(1, 4), "0");
}

static void test_values(void **state)
{
    (void)state;
    uint64_t v;
    assert_int_equal(ps_parse_tvalue("8", 1, &v), PS_OK);
    assert_true(v == UINT64_C(0x80000000000000));
    assert_int_equal(ps_parse_tvalue("", 0, &v), PS_ERR_TH_EMPTY);
    assert_int_equal(ps_parse_tvalue("abababababababab", 16, &v), PS_ERR_TH_SIZE);
    assert_int_equal(ps_parse_tvalue("-1", 2, &v), PS_ERR_HEX);
    assert_int_equal(ps_parse_rvalue("FD70A3D70A3D71", 14, &v), PS_OK);
    assert_true(v == UINT64_C(0xfd70a3d70a3d71));
    assert_int_equal(ps_parse_rvalue("abababababababab", 16, &v), PS_ERR_RV_SIZE);
    assert_string_equal(ps_err_text(PS_ERR_RV_SIZE), "r-value must have 14 hex digits");
    assert_string_equal(tv(PS_NEVER_THRESHOLD), "");
    assert_string_equal(tv(0), "0");
    const uint8_t id[16] = {0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe, 0xfe,
                            0xfe, 0x80, 0,    0,    0,    0,    0,    0};
    assert_true(ps_trace_id_randomness(id) == UINT64_C(0x80000000000000));
}

static const char *roundtrip(ps_tracestate_t *ts, const char *in, ps_err_t want_err)
{
    static char out[2048];
    assert_int_equal(ps_tracestate_parse(ts, in, strlen(in)), want_err);
    size_t n = ps_tracestate_serialize(ts, out, sizeof out - 1);
    out[n] = '\0';
    return out;
}

static void test_tracestate(void **state)
{
    (void)state;
    static ps_tracestate_t ts;
    assert_string_equal(roundtrip(&ts, "", PS_OK), "");
    assert_string_equal(roundtrip(&ts, "ot=th:8", PS_OK), "ot=th:8");
    assert_true(ps_tracestate_has_th(&ts) && ts.threshold == UINT64_C(0x80000000000000));
    /* ot goes first; rv before th; other members of ot after them; OWS dropped */
    assert_string_equal(roundtrip(&ts, "a=1 , ot=x:y;th:c;rv:00000000000001,,b@c=2", PS_OK),
                        "ot=rv:00000000000001;th:c;x:y,a=1,b@c=2");
    assert_true(ps_tracestate_has_rv(&ts) && ts.rnd == 1);
    ps_tracestate_clear_th(&ts);
    ps_tracestate_set_rv(&ts, UINT64_C(0xabcdef));
    assert_int_equal(ps_tracestate_update_th(&ts, UINT64_C(0xe668) << 40), 0);
    char w[128];
    size_t wn = ps_tracestate_serialize(&ts, w, sizeof w - 1);
    w[wn] = '\0';
    assert_string_equal(w, "ot=rv:00000000abcdef;th:e668;x:y,a=1,b@c=2");
    assert_int_equal(ps_tracestate_serialize(&ts, w, 10), 0); /* does not fit */
    assert_string_equal(roundtrip(&ts, "ot=th:8", PS_OK), "ot=th:8");
    /* only raising: th 8 cannot become 4 */
    assert_int_equal(ps_tracestate_update_th(&ts, UINT64_C(0x4) << 52), -1);
    assert_int_equal(ps_tracestate_update_th(&ts, UINT64_C(0xc) << 52), 0);
    char out[64];
    size_t n = ps_tracestate_serialize(&ts, out, sizeof out);
    assert_int_equal(n, 7);
    assert_memory_equal(out, "ot=th:c", 7);
    /* errors */
    assert_int_equal(ps_tracestate_parse(&ts, "Ot=th:8", 7), PS_ERR_SYNTAX);
    assert_int_equal(ps_tracestate_parse(&ts, "ot=th:8;", 8), PS_ERR_SYNTAX);
    assert_int_equal(ps_tracestate_parse(&ts, "ot=th:-1", 8), PS_ERR_HEX);
    assert_int_equal(ps_tracestate_parse(&ts, "ot=rv:abababababababab", 22), PS_ERR_RV_SIZE);
    assert_int_equal(ps_tracestate_parse(&ts, "a=b=", 4), PS_ERR_SYNTAX); /* '=' is no value char */
    assert_int_equal(ps_tracestate_parse(&ts, "a= b", 4), PS_OK);
    assert_int_equal(ps_tracestate_parse(&ts, "a=b ,", 5), PS_OK);
    assert_int_equal(ps_tracestate_parse(&ts, "a=,", 3), PS_ERR_SYNTAX);
    assert_int_equal(ps_tracestate_parse(&ts, "1a=b", 4), PS_ERR_SYNTAX);
    assert_int_equal(ps_tracestate_parse(&ts, "1a@b=c", 6), PS_OK);
    /* 31 members pass, the 32nd is refused (the collector counts from 1, >= 32) */
    char big[400] = "";
    for (int i = 0; i < 31; i++)
        strcat(big, i ? ",k=v" : "k=v");
    assert_int_equal(ps_tracestate_parse(&ts, big, strlen(big)), PS_OK);
    assert_int_equal(ts.n_w3c, 31);
    strcat(big, ",k=v");
    assert_int_equal(ps_tracestate_parse(&ts, big, strlen(big)), PS_ERR_SIZE);
    char huge[1100];
    memset(huge, 'a', sizeof huge);
    assert_int_equal(ps_tracestate_parse(&ts, huge, 1025), PS_ERR_SIZE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vectors),    cmocka_unit_test(test_examples),
        cmocka_unit_test(test_precision_table), cmocka_unit_test(test_values),
        cmocka_unit_test(test_tracestate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
