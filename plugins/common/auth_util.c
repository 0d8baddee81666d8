/*
 * auth_util.c - constant-time comparison, header lookup and base64 for the
 * authenticators (see the header).
 */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include <switchyard/plugin.h>

#include "auth_util.h"

bool syc_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    const volatile uint8_t *x = a, *y = b;
    /* A length mismatch makes the result false without ending the loop early; a
     * byte of a past its end is read as 0 (the index wraps onto a, which is never
     * out of bounds when alen > 0). */
    uint8_t diff = alen != blen;
    for (size_t i = 0; i < blen; i++) {
        uint8_t xa = alen ? x[i % alen] : 0;
        diff |= (uint8_t)(xa ^ y[i]);
    }
    return diff == 0;
}

const char *syc_auth_header(const char *const *headers, size_t n, const char *name)
{
    const char *found = NULL;
    for (size_t i = 0; i < n; i++)
        if (headers[2 * i] && strcmp(headers[2 * i], name) == 0) found = headers[2 * i + 1];
    return found;
}

int syc_base64_encode(const void *in, size_t len, char *out, size_t cap)
{
    size_t need = (len + 2) / 3 * 4 + 1;
    if (cap < need || len > (size_t)INT32_MAX / 2) return -1;
    return EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

int syc_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
    if (len % 4 != 0 || len > (size_t)INT32_MAX / 2 || cap < len / 4 * 3) return -1;
    if (len == 0) return 0;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0) return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (in[len - 1] == '=') n--;
    if (in[len - 2] == '=') n--;
    return n;
}

char *syc_ascii_lower(char *s)
{
    for (char *p = s; p && *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    return s;
}

int syc_basic_credentials(const char *value, uint8_t *buf, size_t cap, size_t *user_len,
                          const char **password, size_t *password_len)
{
    if (!value || strncasecmp(value, "Basic ", 6) != 0) return -1;
    const char *b = value + 6;
    while (*b == ' ')
        b++;
    size_t blen = strlen(b);
    while (blen > 0 && b[blen - 1] == ' ')
        blen--;
    int len = syc_base64_decode(b, blen, buf, cap);
    const uint8_t *colon = len > 0 ? memchr(buf, ':', (size_t)len) : NULL;
    if (!colon) return -1;
    *user_len = (size_t)(colon - buf);
    *password = (const char *)colon + 1;
    *password_len = (size_t)len - *user_len - 1;
    return 0;
}

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

int syc_htpasswd_parse(const char *text, syc_htpasswd_entry_fn entry, void *arg, size_t *bad_line)
{
    size_t lineno = 0;
    for (const char *p = text; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        lineno++;
        size_t l = len, lead = 0;
        while (l > 0 && is_blank(p[l - 1]))
            l--;
        while (lead < l && is_blank(p[lead]))
            lead++;
        if (l > lead && p[lead] != '#') {
            const char *colon = memchr(p + lead, ':', l - lead);
            if (!colon || colon == p + lead) {
                *bad_line = lineno;
                return SY_EINVAL;
            }
            int rc = entry(arg, p + lead, (size_t)(colon - p - lead), colon + 1,
                           (size_t)(p + l - colon - 1));
            if (rc < 0) return rc;
        }
        p += len + (end ? 1 : 0);
    }
    return 0;
}
