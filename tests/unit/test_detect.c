/*
 * test_detect.c - the redaction detectors (plugins/common/detect.c and its
 * scanners): a table of positive and negative cases per detector, overlaps
 * between detectors, NUL bytes, strings that end at the end of their buffer,
 * truncated output, the Luhn check, and the hex digests of hash.c.
 *
 * Every input is copied into a heap block of exactly its length, so that under
 * ASan a scanner reading one byte too far fails the test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "detect.h"
#include "hash.h"

static const char *const all_names[] = {"card", "email", "bearer", "ipv4", "ipv6", "url_password"};

/* A set of the detectors named in a comma-separated list, or all of them. */
static syc_detect_set_t *set_of(const char *list)
{
    char err[256];
    if (strcmp(list, "all") == 0) {
        syc_detect_set_t *set = syc_detect_compile(all_names, 6, err, sizeof err);
        assert_non_null(set);
        return set;
    }
    char copy[128];
    const char *names[8];
    size_t n = 0;
    snprintf(copy, sizeof copy, "%s", list);
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && n < 8;
         tok = strtok_r(NULL, ",", &save))
        names[n++] = tok;
    syc_detect_set_t *set = syc_detect_compile(names, n, err, sizeof err);
    if (!set) fail_msg("compile %s: %s", list, err);
    return set;
}

/* The invariants every result keeps: in bounds, sorted, non-overlapping, and
 * the redacted length as the ranges say. Returns the redacted string. */
static char *redact_checked(const syc_detect_set_t *set, const char *s, size_t len)
{
    char *in = malloc(len ? len : 1);
    assert_non_null(in);
    memcpy(in, s, len);
    syc_detect_match_t m[64];
    size_t n = syc_detect_find(set, in, len, m, 64);
    assert_true(n <= 64);
    size_t expect = len;
    for (size_t i = 0; i < n; i++) {
        assert_true(m[i].len > 0);
        assert_true(m[i].offset <= len && m[i].len <= len - m[i].offset);
        if (i) assert_true(m[i].offset >= m[i - 1].offset + m[i - 1].len);
        assert_true((unsigned)m[i].kind < SYC_DETECT_KINDS);
        expect = expect - m[i].len + 4;
    }
    assert_int_equal(syc_detect_find(set, in, len, NULL, 0), n);
    size_t need = syc_detect_redact(set, in, len, NULL, 0, NULL);
    assert_int_equal(need, expect);
    char *out = malloc(need + 1);
    assert_non_null(out);
    assert_int_equal(syc_detect_redact(set, in, len, out, need, "****"), need);
    out[need] = '\0';
    /* The same through the ranges. */
    char *again = malloc(need ? need : 1);
    assert_non_null(again);
    assert_int_equal(syc_detect_apply(in, len, m, n, again, need, NULL), need);
    assert_memory_equal(out, again, need);
    free(again);
    free(in);
    return out;
}

typedef struct detect_case_s {
    const char *detectors;
    const char *in;
    const char *out; /* NULL: unchanged */
} detect_case_t;

static const detect_case_t cases[] = {
    /* card: Visa, Mastercard, Amex, Discover test numbers */
    {"card", "4111111111111111", "****"},
    {"card", "card 4111 1111 1111 1111 ok", "card **** ok"},
    {"card", "4111-1111-1111-1111", "****"},
    {"card", "amex 3782 822463 10005.", "amex ****."},
    {"card", "5555555555554444", "****"},
    {"card", "5105-1051-0510-5100", "****"},
    {"card", "371449635398431", "****"},
    {"card", "6011111111111117", "****"},
    {"card", "paid with 4012888888881881, thanks", "paid with ****, thanks"},
    {"card", "qty 2 4111 1111 1111 1111", "qty 2 ****"},
    {"card", "cards: 4111111111111111,5555555555554444", "cards: ****,****"},
    {"card", "4111111111111111 2024", "**** 2024"},
    {"card", "x1 4111 1111 1111 1111", "x1 ****"},
    {"card", "4111111111111112", NULL},            /* Luhn fails */
    {"card", "4111 1111 1111 1112", NULL},         /* Luhn fails */
    {"card", "99994111111111111111", NULL},        /* in a longer run */
    {"card", "41111111111111110000", NULL},        /* in a longer run */
    {"card", "id=x4111111111111111", NULL},        /* glued to a word */
    {"card", "order_4111111111111111", NULL},      /* glued to a word */
    {"card", "4111111111111111abc", NULL},         /* glued to a word */
    {"card", "3.4111111111111111", NULL},          /* a decimal */
    {"card", "411111111111", NULL},                /* 12 digits */
    {"card", "1 2 3 4 5 6 7 8 9 0 1 2 6 4", NULL}, /* a list */
    {"card", "tel +1 415 555 2671", NULL},         /* a phone number */
    {"card", "4111  1111 1111 1111", NULL},        /* two spaces */
    /* email */
    {"email", "contact bob@example.com today", "contact **** today"},
    {"email", "Mail: Jane.Doe+tag@mail.example.co.uk.", "Mail: ****."},
    {"email", "<alice_smith@sub-domain.example.org>", "<****>"},
    {"email", "x: first.last@example.com, second@example.net", "x: ****, ****"},
    {"email", "..bob@example.com", "..****"},
    {"email", "mailto:joe@example.io", "mailto:****"},
    {"email", "user@localhost", NULL},
    {"email", "a@b.c", NULL},
    {"email", "@example.com", NULL},
    {"email", "foo@bar", NULL},
    {"email", "version 1.2@3.4", NULL},
    {"email", "bob.@example.com", NULL},
    {"email", "bob@-example.com", NULL},
    {"email", "no at sign here.", NULL},
    /* bearer and key shapes */
    {"bearer", "Authorization: Bearer abc123.def456-ghi", "Authorization: Bearer ****"},
    {"bearer", "bearer mF_9.B5f-4.1JqM", "bearer ****"},
    {"bearer", "Basic dXNlcjpwYXNzd29yZA==", "Basic ****"},
    {"bearer", "Authorization: Basic dXNlcjpwYXNz", "Authorization: Basic ****"},
    {"bearer", "token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_nature-x", "token=****"},
    {"bearer", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "****"},
    {"bearer", "key AKIAIOSFODNN7EXAMPLE end", "key **** end"},
    {"bearer", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "****"},
    {"bearer", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "****"},
    {"bearer", "xoxb-123456789012-abcdefABCDEF", "****"},
    {"bearer", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "****"},
    {"bearer", "k=AIzaSyA-1234567890abcdefghijklmnopqrstu", "k=****"},
    {"bearer", "GET /v1?api_key=s3cr3t&x=1", "GET /v1?api_key=****&x=1"},
    {"bearer", "{\"apiKey\": \"abc-123\"}", "{\"apiKey\": \"****\"}"},
    {"bearer", "X-API-Key: 0123abcd", "X-API-Key: ****"},
    {"bearer", "Bearer authentication is required", NULL},
    {"bearer", "Basic auth failed for dXNlcjpwYXNz", NULL},
    {"bearer", "use Basic dXNlcjpwYXNz here", NULL},
    {"bearer", "eyJhbGciOiJ", NULL},
    {"bearer", "AKIAIOSFODNN7EXAMPL", NULL},
    {"bearer", "XAKIAIOSFODNN7EXAMPLE", NULL},
    {"bearer", "sk_test_4eC39HqLyjWDarjtT1zdp7dc", NULL},
    {"bearer", "myapikey=1", NULL},
    {"bearer", "api_keys=3", NULL},
    {"bearer", "ghp_short", NULL},
    /* ipv4 */
    {"ipv4", "client 192.168.1.10 connected", "client **** connected"},
    {"ipv4", "10.0.0.1:8080", "****:8080"},
    {"ipv4", "net 10.0.0.0/8", "net ****/8"},
    {"ipv4", "255.255.255.255", "****"},
    {"ipv4", "ip=8.8.8.8.", "ip=****."},
    {"ipv4", "256.1.1.1", NULL},
    {"ipv4", "version 1.2.3", NULL},
    {"ipv4", "1.2.3.4.5", NULL},
    {"ipv4", "v1.2.3.4", NULL},
    {"ipv4", "01.2.3.4", NULL},
    {"ipv4", "1.2.3.4a", NULL},
    {"ipv4", "10.0.19041.1", NULL},
    {"ipv4", "3.14.15.92.65", NULL},
    /* ipv6 */
    {"ipv6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334", "****"},
    {"ipv6", "addr 2001:db8::1 up", "addr **** up"},
    {"ipv6", "[::1]:8080", "[****]:8080"},
    {"ipv6", "fe80::", "****"},
    {"ipv6", "::ffff:192.0.2.128", "****"},
    {"ipv6", "fe80::1%eth0", "****%eth0"},
    {"ipv6", "1:2:3:4:5:6:7:8", "****"},
    {"ipv6", "12:34:56", NULL},
    {"ipv6", "00:1a:2b:3c:4d:5e", NULL},
    {"ipv6", "std::vector", NULL},
    {"ipv6", "1:2:3:4:5:6:7:8:9", NULL},
    {"ipv6", "1::2::3", NULL},
    {"ipv6", "::", NULL},
    {"ipv6", "12345::1", NULL},
    /* url_password */
    {"url_password", "postgres://admin:hunter2@db.internal:5432/app",
     "postgres://admin:****@db.internal:5432/app"},
    {"url_password", "https://user:p%40ss@example.com/path", "https://user:****@example.com/path"},
    {"url_password", "redis://:s3cret@cache:6379", "redis://:****@cache:6379"},
    {"url_password", "amqp://guest:gu@st@rabbit/", "amqp://guest:****@rabbit/"},
    {"url_password", "https://user@example.com/", NULL},
    {"url_password", "https://example.com/a:b@c", NULL},
    {"url_password", "http://host:8080/", NULL},
    {"url_password", "https://user:@example.com/", NULL},
    /* several detectors: who wins an overlap */
    {"all", "https://bob:pw@example.com", "https://bob:****@example.com"},
    {"email", "https://bob:pw@example.com", "https://bob:****"},
    {"all", "user bob@example.com from 10.1.2.3 paid with 4111 1111 1111 1111",
     "user **** from **** paid with ****"},
    {"all", "::ffff:10.0.0.1", "****"},
    {"ipv4", "::ffff:10.0.0.1", "::ffff:****"},
    {"all", "plain words only", NULL},
    {"all", "", NULL},
    {"all", "api_key=4111111111111111", "api_key=****"},
};

static void test_table(void **state)
{
    (void)state;
    size_t positives = 0, negatives = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const detect_case_t *c = &cases[i];
        syc_detect_set_t *set = set_of(c->detectors);
        char *out = redact_checked(set, c->in, strlen(c->in));
        const char *want = c->out ? c->out : c->in;
        if (strcmp(out, want) != 0)
            fail_msg("case %zu [%s] \"%s\": got \"%s\", want \"%s\"", i, c->detectors, c->in, out,
                     want);
        c->out ? positives++ : negatives++;
        /* Every prefix, each in a block of exactly its size. */
        for (size_t n = 0; n < strlen(c->in); n++)
            free(redact_checked(set, c->in, n));
        free(out);
        syc_detect_free(set);
    }
    assert_true(positives >= 40 && negatives >= 40);
}

static void test_kinds(void **state)
{
    (void)state;
    syc_detect_set_t *set = set_of("all");
    static const char s[] = "a 4111111111111111 b@example.com Bearer tok3n-123 10.0.0.1 fe80::1 "
                            "ftp://u:pw@h";
    syc_detect_match_t m[8];
    assert_int_equal(syc_detect_find(set, s, sizeof s - 1, m, 8), 6);
    static const syc_detect_kind_t want[] = {SYC_DETECT_CARD,   SYC_DETECT_EMAIL,
                                             SYC_DETECT_BEARER, SYC_DETECT_IPV4,
                                             SYC_DETECT_IPV6,   SYC_DETECT_URL_PASSWORD};
    for (int i = 0; i < 6; i++)
        assert_int_equal(m[i].kind, want[i]);
    assert_int_equal(m[0].offset, 2);
    assert_int_equal(m[0].len, 16);
    assert_string_equal(syc_detect_name(m[5].kind), "url_password");
    /* Only the first max are written; the total is returned. */
    assert_int_equal(syc_detect_find(set, s, sizeof s - 1, m, 2), 6);
    syc_detect_free(set);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    syc_detect_set_t *set = set_of("all");
    static const char s[] = "x\0bob@example.com\0"
                            "4111111111111111\0"
                            "10.0.0.1";
    size_t len = sizeof s - 1;
    char *out = redact_checked(set, s, len);
    static const char want[] = "x\0****\0****\0****";
    assert_memory_equal(out, want, sizeof want - 1);
    free(out);
    /* A NUL is a boundary: it ends an address and the digits around it are two runs. */
    static const char split[] = "41111111\0"
                                "11111111";
    out = redact_checked(set, split, sizeof split - 1);
    assert_memory_equal(out, split, sizeof split - 1);
    free(out);
    syc_detect_free(set);
}

/* The prefilter counts digits 8 bytes at a time in a register below 64 bytes
 * and with a vectorized loop from 64 on: cards and addresses at every position
 * and length around those steps, among bytes with the high bit set (0xB0 is
 * '0' | 0x80, 0xAE is '.' | 0x80, 0xC0 '@' | 0x80) that must not count. */
static void test_prefilter_lengths(void **state)
{
    (void)state;
    syc_detect_set_t *card = set_of("card"), *ip = set_of("ipv4"), *mail = set_of("email");
    static const char pad[] = "\xb0\xae\xc0\xba\xaf\xb9";
    char s[160];
    for (size_t lead = 0; lead < 80; lead++) {
        for (size_t i = 0; i < lead; i++)
            s[i] = lead % 3 ? pad[i % 6] : "xy. "[i % 4];
        s[lead] = ' ';
        size_t at = lead + 1;
        memcpy(s + at, "4111111111111111", 16);
        syc_detect_match_t m;
        assert_int_equal(syc_detect_find(card, s, at + 16, &m, 1), 1);
        assert_int_equal(m.offset, at);
        /* 12 digits: no card, whatever the high-bit bytes around them. */
        assert_int_equal(syc_detect_find(card, s, at + 12, &m, 1), 0);
        memcpy(s + at, "10.0.0.1", 8);
        assert_int_equal(syc_detect_find(ip, s, at + 8, &m, 1), 1);
        assert_int_equal(m.offset, at);
        memcpy(s + at, "a@b.io", 6);
        assert_int_equal(syc_detect_find(mail, s, at + 6, &m, 1), 1);
        assert_int_equal(m.offset, at);
    }
    /* Digits with the high bit set are not digits: 13 of them hold no card. */
    memset(s, 0xb4, 20);
    assert_int_equal(syc_detect_find(card, s, 20, NULL, 0), 0);
    syc_detect_free(card);
    syc_detect_free(ip);
    syc_detect_free(mail);
}

static void test_truncated_output(void **state)
{
    (void)state;
    syc_detect_set_t *set = set_of("email");
    static const char s[] = "to bob@example.com now";
    char out[8];
    memset(out, 'Z', sizeof out);
    size_t need = syc_detect_redact(set, s, sizeof s - 1, out, 5, "[x]");
    assert_int_equal(need, strlen("to [x] now"));
    assert_memory_equal(out, "to [x", 5);
    assert_int_equal(out[5], 'Z');
    syc_detect_free(set);
}

static void test_compile_errors(void **state)
{
    (void)state;
    char err[256];
    const char *bad[] = {"card", "ssn"};
    assert_null(syc_detect_compile(bad, 2, err, sizeof err));
    assert_non_null(strstr(err, "\"ssn\""));
    assert_non_null(strstr(err, "url_password"));
    syc_detect_set_t *none = syc_detect_compile(NULL, 0, err, sizeof err);
    assert_non_null(none);
    assert_int_equal(syc_detect_find(none, "bob@example.com", 15, NULL, 0), 0);
    assert_false(syc_detect_has(none, SYC_DETECT_EMAIL));
    syc_detect_free(none);
    const char *dup[] = {"email", "email"};
    syc_detect_set_t *set = syc_detect_compile(dup, 2, err, sizeof err);
    assert_true(syc_detect_has(set, SYC_DETECT_EMAIL));
    assert_false(syc_detect_has(set, SYC_DETECT_CARD));
    syc_detect_free(set);
}

static void test_luhn(void **state)
{
    (void)state;
    assert_true(syc_luhn_valid("4111111111111111", 16));
    assert_true(syc_luhn_valid("378282246310005", 15));
    assert_true(syc_luhn_valid("79927398713", 11));
    assert_true(syc_luhn_valid("0", 1));
    assert_false(syc_luhn_valid("79927398710", 11));
    assert_false(syc_luhn_valid("4111 1111", 9));
    assert_false(syc_luhn_valid("", 0));
    /* One in ten 16-digit numbers passes: the false-positive rate the docs quote. */
    unsigned pass = 0;
    char d[17];
    for (unsigned i = 0; i < 10000; i++) {
        snprintf(d, sizeof d, "%016u", i * 7919u + 12345u);
        pass += syc_luhn_valid(d, 16);
    }
    assert_true(pass > 900 && pass < 1100);
}

static void test_hash_hex(void **state)
{
    (void)state;
    char out[129];
    assert_int_equal(syc_hash_hex("sha256", "abc", 3, out, sizeof out), 64);
    assert_string_equal(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(syc_hash_hex("SHA256", "", 0, out, sizeof out), 64);
    assert_string_equal(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(syc_hash_hex("sha1", "abc", 3, out, sizeof out), 40);
    assert_string_equal(out, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_int_equal(syc_hash_hex("md5", "abc", 3, out, sizeof out), 32);
    assert_string_equal(out, "900150983cd24fb0d6963f7d28e17f72");
    assert_int_equal(syc_hash_hex("sha3", "abc", 3, out, sizeof out), 64);
    assert_string_equal(out, "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
    assert_int_equal(syc_hash_hex("sha512", "abc", 3, out, sizeof out), 128);
    assert_int_equal(syc_hash_hex("crc9", "abc", 3, out, sizeof out), SY_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(syc_hash_hex("sha256", "abc", 3, out, 64), SY_ENOMEM);
    /* NUL bytes are data. */
    assert_int_equal(syc_hash_hex("sha256", "a\0b", 3, out, sizeof out), 64);
    char other[65];
    syc_hash_hex("sha256", "a", 1, other, sizeof other);
    assert_string_not_equal(out, other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),          cmocka_unit_test(test_kinds),
        cmocka_unit_test(test_nul_bytes),      cmocka_unit_test(test_truncated_output),
        cmocka_unit_test(test_compile_errors), cmocka_unit_test(test_luhn),
        cmocka_unit_test(test_hash_hex),       cmocka_unit_test(test_prefilter_lengths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
