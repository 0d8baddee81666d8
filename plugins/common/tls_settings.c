/*
 * syc_tls_settings.c - the checks of the TLS settings that need no OpenSSL (see
 * otlp_tls.h and syc_tls_module.h; the names are tls_names.c's). Built into the receiver, so that
 * validate() and a configuration without TLS never map the TLS module, and into the module, whose
 * table lists syc_tls_settings_check() too.
 */
#include <stdio.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "tls_module.h"
#include "tls_names.h"

static bool is_set(const char *s)
{
    return s && *s;
}

int syc_tls_settings_check(syc_tls_settings_t *set, const char *prefix, char *err, size_t err_len)
{
    if (!is_set(set->cert_file) || !is_set(set->key_file)) {
        snprintf(err, err_len,
                 "%s: a TLS server needs both cert_file and key_file (remove tls for "
                 "cleartext)",
                 prefix);
        return SY_EINVAL;
    }
    int min = syc_tls_version_rank(set->min_version);
    int max = syc_tls_version_rank(set->max_version);
    if (min < 0 || max < 0) {
        snprintf(err, err_len, "%s: invalid TLS %s: unsupported TLS version: \"%.20s\"", prefix,
                 min < 0 ? "min_version" : "max_version",
                 min < 0 ? set->min_version : set->max_version);
        return SY_EINVAL;
    }
    if (min == 0) min = SYC_TLS_RANK_DEFAULT_MIN;
    if (max != 0 && max < min) {
        snprintf(err, err_len,
                 "%s: invalid TLS configuration: min_version cannot be greater "
                 "than max_version",
                 prefix);
        return SY_EINVAL;
    }
    char key[128];
    snprintf(key, sizeof(key), "%s::cipher_suites", prefix);
    return syc_tls_cipher_list(set->cipher_suites, key, set->cipher_list, sizeof(set->cipher_list),
                               err, err_len);
}
