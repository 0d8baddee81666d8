/*
 * fuzz_auth.c - libFuzzer target for what the authenticators decode from clients
 * and configuration (plugins/common/auth_util.c): the value of a Basic
 * Authorization header (syc_basic_credentials), htpasswd text
 * (syc_htpasswd_parse) and base64.
 *
 * Invariants checked (abort on violation): decoded credentials stay inside the
 * buffer, the user holds no ':' and user + ':' + password is the decoded length;
 * every htpasswd entry has a non-empty user without ':' or line break, and a hash
 * without line break, inside the text; base64 of the input decodes back to it;
 * syc_ct_equal agrees with memcmp.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.auth.corpus).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "auth_util.h"

#define FUZZ_MAX 8192u

typedef struct text_s {
    const char *start;
    size_t len;
    size_t entries;
} text_t;

static int check_entry(void *arg, const char *user, size_t user_len, const char *hash,
                       size_t hash_len)
{
    text_t *t = arg;
    if (user < t->start || hash + hash_len > t->start + t->len) abort();
    if (user_len == 0 || memchr(user, ':', user_len) || memchr(user, '\n', user_len)) abort();
    if (memchr(hash, '\n', hash_len)) abort();
    t->entries++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > FUZZ_MAX) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* As an Authorization value. */
    uint8_t cred[FUZZ_MAX];
    size_t ulen = 0, plen = 0;
    const char *pw = NULL;
    if (syc_basic_credentials(text, cred, sizeof cred, &ulen, &pw, &plen) == 0) {
        if ((const uint8_t *)pw != cred + ulen + 1 || cred[ulen] != ':') abort();
        if (memchr(cred, ':', ulen)) abort();
        if ((const uint8_t *)pw + plen > cred + sizeof cred) abort();
    }

    /* As htpasswd text (up to the first NUL, as a YAML string would end). */
    text_t t = {.start = text, .len = strlen(text)};
    size_t bad = 0;
    int rc = syc_htpasswd_parse(text, check_entry, &t, &bad);
    if (rc != 0 && (rc != SY_EINVAL || bad == 0)) abort();

    /* base64 round trip. */
    size_t cap = (size + 2) / 3 * 4 + 1;
    char *b64 = malloc(cap);
    uint8_t *back = malloc(size + 3);
    if (b64 && back) {
        int n = syc_base64_encode(data, size, b64, cap);
        if (n < 0 || (size_t)n != cap - 1) abort();
        int m = syc_base64_decode(b64, (size_t)n, back, size + 3);
        if (m != (int)size || memcmp(back, data, size) != 0) abort();
        /* Any input as base64: never more than 3/4 of it. */
        m = syc_base64_decode(text, size, back, size + 3);
        if (m > (int)(size / 4 * 3)) abort();
    }
    free(b64);
    free(back);

    /* Constant-time comparison against the input's two halves. */
    size_t half = size / 2;
    bool eq = syc_ct_equal(data, half, data + half, size - half);
    if (eq != (half == size - half && memcmp(data, data + half, half) == 0)) abort();
    free(text);
    return 0;
}
