/*
 * test_auth_util.c - the authenticators' helpers (plugins/common/auth_util.c):
 * base64 against RFC 4648's test vectors, Basic credentials, htpasswd lines, the
 * constant-time comparison and the header lookup.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <switchyard/plugin.h>

#include "auth_util.h"

static void test_base64_rfc4648(void **state)
{
    (void)state;
    /* RFC 4648 section 10. */
    static const char *const vectors[][2] = {
        {"", ""},
        {"f", "Zg=="},
        {"fo", "Zm8="},
        {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="},
        {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"},
    };
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        char out[32];
        uint8_t back[32];
        size_t n = strlen(vectors[i][0]);
        assert_int_equal(syc_base64_encode(vectors[i][0], n, out, sizeof out),
                         (int)strlen(vectors[i][1]));
        assert_string_equal(out, vectors[i][1]);
        assert_int_equal(syc_base64_decode(vectors[i][1], strlen(vectors[i][1]), back, sizeof back),
                         (int)n);
        assert_memory_equal(back, vectors[i][0], n);
    }
    char small[4];
    assert_int_equal(syc_base64_encode("foo", 3, small, sizeof small), -1); /* needs 5 */
    uint8_t b[8];
    assert_int_equal(syc_base64_decode("Zm9", 3, b, sizeof b), -1);  /* not a multiple of 4 */
    assert_int_equal(syc_base64_decode("Zm!v", 4, b, sizeof b), -1); /* not base64 */
    assert_int_equal(syc_base64_decode("Zm9vYmFy", 8, b, 5), -1);    /* cap too small */
}

static void test_basic_credentials(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t ulen, plen;
    const char *pw;
    /* "alice:se:cret": the password keeps every ':' after the first. */
    assert_int_equal(
        syc_basic_credentials("Basic YWxpY2U6c2U6Y3JldA==", buf, sizeof buf, &ulen, &pw, &plen), 0);
    assert_int_equal(ulen, 5);
    assert_memory_equal(buf, "alice", 5);
    assert_int_equal(plen, 7);
    assert_memory_equal(pw, "se:cret", 7);
    /* Scheme in any case, spaces around the token. */
    assert_int_equal(
        syc_basic_credentials("bAsIc   YWxpY2U6  ", buf, sizeof buf, &ulen, &pw, &plen), 0);
    assert_int_equal(ulen, 5);
    assert_int_equal(plen, 0);
    /* Refused: no value, another scheme, no ':', not base64, too large. */
    assert_int_equal(syc_basic_credentials(NULL, buf, sizeof buf, &ulen, &pw, &plen), -1);
    assert_int_equal(
        syc_basic_credentials("Bearer YWxpY2U6eA==", buf, sizeof buf, &ulen, &pw, &plen), -1);
    assert_int_equal(syc_basic_credentials("Basic YWxpY2U=", buf, sizeof buf, &ulen, &pw, &plen),
                     -1);
    assert_int_equal(syc_basic_credentials("Basic %%%%", buf, sizeof buf, &ulen, &pw, &plen), -1);
    assert_int_equal(syc_basic_credentials("Basic YWxpY2U6c2VjcmV0", buf, 4, &ulen, &pw, &plen),
                     -1);
}

typedef struct seen_s {
    char users[4][16];
    char hashes[4][64];
    int n;
} seen_t;

static int record(void *arg, const char *user, size_t ulen, const char *hash, size_t hlen)
{
    seen_t *s = arg;
    if (s->n == 4) return SY_ENOMEM;
    snprintf(s->users[s->n], sizeof s->users[0], "%.*s", (int)ulen, user);
    snprintf(s->hashes[s->n], sizeof s->hashes[0], "%.*s", (int)hlen, hash);
    s->n++;
    return 0;
}

static void test_htpasswd_parse(void **state)
{
    (void)state;
    seen_t s = {0};
    size_t bad = 0;
    assert_int_equal(syc_htpasswd_parse(
                         "# comment\n\n  alice:plain  \r\nbob:{SHA}x:y\ncarol:", record, &s, &bad),
                     0);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.users[0], "alice");
    assert_string_equal(s.hashes[0], "plain");
    assert_string_equal(s.users[1], "bob");
    assert_string_equal(s.hashes[1], "{SHA}x:y");
    assert_string_equal(s.users[2], "carol");
    assert_string_equal(s.hashes[2], "");
    memset(&s, 0, sizeof s);
    assert_int_equal(syc_htpasswd_parse("alice:x\nno-colon\n", record, &s, &bad), SY_EINVAL);
    assert_int_equal(bad, 2);
    assert_int_equal(syc_htpasswd_parse(":x", record, &s, &bad), SY_EINVAL);
    assert_int_equal(bad, 1);
    memset(&s, 0, sizeof s);
    assert_int_equal(syc_htpasswd_parse("a:1\nb:2\nc:3\nd:4\ne:5\n", record, &s, &bad), SY_ENOMEM);
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_true(syc_ct_equal("Bearer t", 8, "Bearer t", 8));
    assert_false(syc_ct_equal("Bearer u", 8, "Bearer t", 8));
    assert_false(syc_ct_equal("Bearer", 6, "Bearer t", 8)); /* a prefix */
    assert_false(syc_ct_equal("Bearer tt", 9, "Bearer t", 8));
    assert_false(syc_ct_equal("", 0, "x", 1));
    assert_true(syc_ct_equal("", 0, "", 0));
    /* A longer guess that repeats the secret is not equal either. */
    assert_false(syc_ct_equal("abab", 4, "ab", 2));
}

static void test_header_lookup(void **state)
{
    (void)state;
    const char *h[] = {"content-type",  "application/json",
                       "authorization", "first",
                       "x-api-key",     "k",
                       "authorization", "last"};
    assert_string_equal(syc_auth_header(h, 4, "authorization"), "last");
    assert_string_equal(syc_auth_header(h, 4, "x-api-key"), "k");
    assert_null(syc_auth_header(h, 4, "Authorization")); /* names are lower case */
    assert_null(syc_auth_header(NULL, 0, "authorization"));
    char name[] = "X-Api-KEY";
    assert_string_equal(syc_ascii_lower(name), "x-api-key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_rfc4648), cmocka_unit_test(test_basic_credentials),
        cmocka_unit_test(test_htpasswd_parse), cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_header_lookup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
