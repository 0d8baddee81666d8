/*
 * test_tls_names.c - configtls names in OpenSSL's terms (plugins/common/tls_names.c):
 * version ranks and the mapping of Go's cipher suite names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <switchyard/plugin.h>

#include "tls_names.h"

static void test_version_rank(void **state)
{
    (void)state;
    assert_int_equal(syc_tls_version_rank(NULL), 0);
    assert_int_equal(syc_tls_version_rank(""), 0);
    assert_int_equal(syc_tls_version_rank("1.0"), 1);
    assert_int_equal(syc_tls_version_rank("1.2"), 3);
    assert_int_equal(syc_tls_version_rank("1.3"), 4);
    assert_int_equal(syc_tls_version_rank("1.4"), -1);
    assert_int_equal(syc_tls_version_rank("TLS12"), -1);
}

static int list_of(const char **names, size_t n, char *out, size_t out_len, char *err,
                   size_t err_len)
{
    sy_cfg_strlist_t l = {.count = n, .items = (char **)names};
    return syc_tls_cipher_list(&l, "tls.cipher_suites", out, out_len, err, err_len);
}

static void test_cipher_mapping(void **state)
{
    (void)state;
    char out[256], err[256];
    const char *two[] = {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                         "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"};
    assert_int_equal(list_of(two, 2, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
    const char *rsa[] = {"TLS_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_128_CBC_SHA"};
    assert_int_equal(list_of(rsa, 2, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "AES256-GCM-SHA384:AES128-SHA");
    /* TLS 1.3 names: accepted, nothing to configure. */
    const char *v13[] = {"TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"};
    assert_int_equal(list_of(v13, 2, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "");
    const char *mixed[] = {"TLS_AES_256_GCM_SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA"};
    assert_int_equal(list_of(mixed, 2, out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "ECDHE-ECDSA-AES256-SHA");
    assert_int_equal(syc_tls_cipher_list(NULL, "k", out, sizeof out, err, sizeof err), 0);
    assert_string_equal(out, "");
}

static void test_cipher_refused(void **state)
{
    (void)state;
    char out[256], err[256];
    /* Go calls these insecure: configtls refuses them. */
    const char *names[] = {"TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
                           "ECDHE-RSA-AES128-GCM-SHA256", "tls_ecdhe_rsa_with_aes_128_gcm_sha256",
                           ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *one[] = {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", names[i]};
        assert_int_equal(list_of(one, 2, out, sizeof out, err, sizeof err), SY_EINVAL);
        char want[200];
        snprintf(want, sizeof want, "tls.cipher_suites: invalid TLS cipher suite: \"%s\"",
                 names[i]);
        assert_non_null(strstr(err, want));
    }
    /* A list longer than the buffer is refused, not cut. */
    const char *many[] = {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                          "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"};
    assert_int_equal(list_of(many, 2, out, 40, err, sizeof err), SY_EINVAL);
    assert_non_null(strstr(err, "too many cipher suites"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_rank),
        cmocka_unit_test(test_cipher_mapping),
        cmocka_unit_test(test_cipher_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
