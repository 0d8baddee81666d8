/*
 * otlp_tls_settings.c - the checks of the TLS settings that need no OpenSSL (see
 * otlp_tls.h and otlp_tls_module.h). Built into the receiver, so that validate()
 * and a configuration without TLS never map the TLS module, and into the module,
 * whose table lists otlp_tls_settings_check() too.
 */
#include <stdio.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "otlp_tls_module.h"

static bool is_set(const char *s)
{
    return s && *s;
}

int otlp_tls_version_rank(const char *v)
{
    static const char *const names[] = {"1.0", "1.1", "1.2", "1.3"};
    if (!is_set(v)) return 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(v, names[i]) == 0) return (int)i + 1;
    return -1;
}

int otlp_tls_settings_check(const otlp_tls_settings_t *set, const char *prefix, char *err,
                            size_t err_len)
{
    if (!is_set(set->cert_file) || !is_set(set->key_file)) {
        snprintf(err, err_len,
                 "%s: a TLS server needs both cert_file and key_file (remove tls for "
                 "cleartext h2c)",
                 prefix);
        return SY_EINVAL;
    }
    int min = otlp_tls_version_rank(set->min_version);
    int max = otlp_tls_version_rank(set->max_version);
    if (min < 0 || max < 0) {
        snprintf(err, err_len, "%s: invalid TLS %s: unsupported TLS version: \"%.20s\"", prefix,
                 min < 0 ? "min_version" : "max_version",
                 min < 0 ? set->min_version : set->max_version);
        return SY_EINVAL;
    }
    if (min == 0) min = OTLP_TLS_RANK_DEFAULT_MIN;
    if (max != 0 && max < min) {
        snprintf(err, err_len,
                 "%s: invalid TLS configuration: min_version cannot be greater "
                 "than max_version",
                 prefix);
        return SY_EINVAL;
    }
    return 0;
}
