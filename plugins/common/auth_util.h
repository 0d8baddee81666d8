/*
 * auth_util.h - what the authenticator extensions share (bearertokenauth,
 * basicauth) and the components that use them: a comparison whose time does not
 * depend on where two secrets differ, the lookup of a header among the pairs
 * sy_auth_server_t.authenticate() receives, and base64.
 */
#ifndef SY_COMMON_AUTH_UTIL_H
#define SY_COMMON_AUTH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Whether a[0, alen) equals b[0, blen), reading every byte of b whatever a holds:
 * the time depends on blen only (pass the expected secret as b), not on where
 * the two differ nor on alen. Any thread.
 */
bool syc_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* The value of the last header named `name` (lower case) among n (name, value)
 * pairs, or NULL. */
const char *syc_auth_header(const char *const *headers, size_t n, const char *name);

/* Base64 (RFC 4648, with padding) of in[0, len) into out, NUL-terminated. Returns
 * the length written, or -1 when cap is smaller than 4 * ceil(len / 3) + 1. */
int syc_base64_encode(const void *in, size_t len, char *out, size_t cap);

/* Decodes base64 with padding (no line breaks) into out[0, cap). Returns the
 * number of bytes, or -1 for bytes that are not base64 or a cap too small. */
int syc_base64_decode(const char *in, size_t len, uint8_t *out, size_t cap);

/* Lower-cases s in place and returns it. */
char *syc_ascii_lower(char *s);

#endif
