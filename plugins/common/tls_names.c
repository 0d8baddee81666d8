/*
 * tls_names.c - configtls versions and cipher suite names (see tls_names.h).
 */
#include <stdio.h>
#include <string.h>

#include "tls_names.h"

int syc_tls_version_rank(const char *v)
{
    static const char *const names[] = {"1.0", "1.1", "1.2", "1.3"};
    if (!v || !*v) return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(v, names[i]) == 0) return (int)i + 1;
    return -1;
}

/* Go's tls.CipherSuites() (the suites it does not call insecure) and OpenSSL's
 * name of each; NULL for the TLS 1.3 suites, which neither side lets a list
 * configure. */
static const struct {
    const char *go, *openssl;
} suites_table[] = {
    {"TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"},
    {"TLS_RSA_WITH_AES_256_CBC_SHA", "AES256-SHA"},
    {"TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256"},
    {"TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "ECDHE-ECDSA-AES128-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "ECDHE-ECDSA-AES256-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "ECDHE-RSA-AES128-SHA"},
    {"TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"},
    {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
    {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
    {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
    {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {"TLS_AES_128_GCM_SHA256", NULL},
    {"TLS_AES_256_GCM_SHA384", NULL},
    {"TLS_CHACHA20_POLY1305_SHA256", NULL},
};

int syc_tls_cipher_list(const sy_cfg_strlist_t *suites, const char *key, char *out, size_t out_len,
                        char *err, size_t err_len)
{
    size_t len = 0;
    if (out_len) out[0] = '\0';
    for (size_t i = 0; suites && i < suites->count; i++) {
        const char *name = suites->items[i] ? suites->items[i] : "";
        size_t j = 0, n = sizeof(suites_table) / sizeof(suites_table[0]);
        while (j < n && strcmp(name, suites_table[j].go) != 0)
            j++;
        if (j == n) {
            snprintf(err, err_len,
                     "%s: invalid TLS cipher suite: \"%.100s\" (expected Go's names, such as "
                     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)",
                     key, name);
            return SY_EINVAL;
        }
        const char *o = suites_table[j].openssl;
        if (!o) continue;
        int w = snprintf(out + len, out_len - len, "%s%s", len ? ":" : "", o);
        if (w < 0 || (size_t)w >= out_len - len) {
            snprintf(err, err_len, "%s: too many cipher suites", key);
            return SY_EINVAL;
        }
        len += (size_t)w;
    }
    return 0;
}
