/*
 * hash.c - syc_hash_hex(): one EVP digest, written as hex.
 */
#include <strings.h>

#include <openssl/evp.h>

#include <switchyard/plugin.h>

#include "hash.h"

int syc_hash_hex(const char *algo, const void *data, size_t len, char *out, size_t out_cap)
{
    static const char hex[] = "0123456789abcdef";
    if (out && out_cap) out[0] = '\0';
    if (!algo) return SY_EINVAL;
    if (strcasecmp(algo, "sha3") == 0) algo = "sha3-256";
    const EVP_MD *md = EVP_get_digestbyname(algo);
    if (!md) return SY_EINVAL;
    int size = EVP_MD_get_size(md);
    if (size <= 0 || size > EVP_MAX_MD_SIZE) return SY_EINVAL;
    if (!out || out_cap < (size_t)size * 2 + 1) return SY_ENOMEM;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, digest, &n, md, NULL) != 1) return SY_ENOMEM;
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
    out[2 * n] = '\0';
    return (int)(2 * n);
}
