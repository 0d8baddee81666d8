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

/*
 * Decodes the value of an Authorization header of the Basic scheme ("Basic "
 * case-insensitive, then base64 of "user:password", spaces around it allowed)
 * into buf[0, cap): the user is buf[0, *user_len), the password
 * (*password)[0, *password_len), after the first ':'. Returns 0, or -1 for
 * another scheme, bad base64, no ':' or a cap too small. Any thread.
 */
int syc_basic_credentials(const char *value, uint8_t *buf, size_t cap, size_t *user_len,
                          const char **password, size_t *password_len);

/* One htpasswd entry: user[0, user_len) and hash[0, hash_len), neither holding a
 * line break; the user is not empty and holds no ':'. Returns 0 to go on, or a
 * negative SY_E* that stops the parse and is returned. */
typedef int (*syc_htpasswd_entry_fn)(void *arg, const char *user, size_t user_len, const char *hash,
                                     size_t hash_len);

/*
 * Calls entry() for each "user:hash" line of htpasswd text, in order. Blank lines
 * and lines whose first non-blank byte is '#' are skipped; white space around a
 * line and a trailing '\r' are dropped. Returns 0, or SY_EINVAL with the 1-based
 * number of the line that is not "user:hash" in *bad_line, or what entry()
 * returned.
 */
int syc_htpasswd_parse(const char *text, syc_htpasswd_entry_fn entry, void *arg, size_t *bad_line);

/* Lower-cases s in place and returns it. */
char *syc_ascii_lower(char *s);

#endif
