/*
 * hash.h - message digests as lowercase hex, for the attributes processor's
 * "hash" action and the redaction processor's hash_function (OpenSSL EVP); and
 * FNV-1a 64, the hash the collector's samplers and Jaeger's model use.
 */
#ifndef SY_COMMON_HASH_H
#define SY_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

/*
 * The digest of data[0, len) with the algorithm named algo, as lowercase hex
 * and a terminating NUL, in out. algo is any digest name OpenSSL knows, in any
 * case ("sha256", "sha1", "md5", "sha512", "sha3-256", "SHA2-256", ...), plus
 * "sha3" for SHA3-256. The collector's attributes processor hashes with
 * SHA2-256 ("sha256"; SHA-1 until v0.75.0).
 *
 * Returns the number of hex characters written (twice the digest size), or
 * SY_EINVAL for an unknown algorithm (out is then ""), or SY_ENOMEM when out_cap
 * is smaller than that number plus one. Thread-safe; allocates what OpenSSL
 * allocates for one digest.
 */
int syc_hash_hex(const char *algo, const void *data, size_t len, char *out, size_t out_cap);

/* FNV-1a 64 (Go's hash/fnv New64a): start from SYC_FNV64_OFFSET, feed bytes in
 * as many calls as wanted. */
#define SYC_FNV64_OFFSET 14695981039346656037ull
static inline uint64_t syc_fnv1a64(uint64_t h, const void *data, size_t len)
{
    const uint8_t *b = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

#endif
