/*
 * telemetry_tls.c - the `tls` block of service.telemetry.metrics (see
 * telemetry_tls.h).
 */
#include "telemetry_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const tls_keys[] = {"cert_file",       "key_file",    "client_ca_file",
                                       "min_version",     "max_version", "cipher_suites",
                                       "reload_interval", NULL};

void sy__metrics_tls_free(sy__metrics_tls_t *t)
{
    free(t->cert_file);
    free(t->key_file);
    free(t->client_ca_file);
    free(t->min_version);
    free(t->max_version);
    for (size_t i = 0; i < t->cipher_suites.count; i++)
        free(t->cipher_suites.items[i]);
    free(t->cipher_suites.items);
    free(t->where);
    memset(t, 0, sizeof(*t));
}

/* A scalar key of the block into *out (NULL when absent). */
static int read_string(const sy_cfg_node_t *tls, const char *key, char **out,
                       const sy_cfg_node_t **bad, char *err, size_t err_len)
{
    const sy_cfg_node_t *n = sy__cfg_get(tls, key);
    if (!n || sy__cfg_kind(n) == SY__CFG_NULL) return 0;
    const char *v = sy__cfg_scalar(n);
    if (!v) {
        *bad = n;
        snprintf(err, err_len, "'service.telemetry.metrics.tls.%s': expected a string", key);
        return -1;
    }
    if (!(*out = strdup(v))) {
        *bad = n;
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

/* A file the server reads: it must be readable now (the collector fails its
 * start the same way). */
static int check_file(const sy_cfg_node_t *tls, const char *key, const char *path,
                      const sy_cfg_node_t **bad, char *err, size_t err_len)
{
    if (!path || access(path, R_OK) == 0) return 0;
    *bad = sy__cfg_get(tls, key);
    snprintf(err, err_len, "'service.telemetry.metrics.tls.%s': cannot read \"%s\": %s", key, path,
             strerror(errno));
    return -1;
}

static int read_all(const sy_cfg_node_t *tls, sy__metrics_tls_t *t, const sy_cfg_node_t **bad,
                    char *err, size_t err_len)
{
    *bad = tls;
    if (sy__cfg_kind(tls) != SY__CFG_MAP && sy__cfg_kind(tls) != SY__CFG_NULL) {
        snprintf(err, err_len, "'service.telemetry.metrics.tls': expected a map");
        return -1;
    }
    for (size_t i = 0; i < sy__cfg_len(tls); i++) {
        const char *key;
        sy__cfg_at(tls, i, &key);
        bool ok = false;
        for (size_t j = 0; tls_keys[j] && !ok; j++)
            ok = !strcmp(tls_keys[j], key);
        if (!ok) {
            *bad = sy__cfg_key_node(tls, i);
            snprintf(err, err_len, "'service.telemetry.metrics.tls' has invalid keys: %s", key);
            return -1;
        }
    }
    if (read_string(tls, "cert_file", &t->cert_file, bad, err, err_len) < 0 ||
        read_string(tls, "key_file", &t->key_file, bad, err, err_len) < 0 ||
        read_string(tls, "client_ca_file", &t->client_ca_file, bad, err, err_len) < 0 ||
        read_string(tls, "min_version", &t->min_version, bad, err, err_len) < 0 ||
        read_string(tls, "max_version", &t->max_version, bad, err, err_len) < 0)
        return -1;
    const sy_cfg_node_t *cs = sy__cfg_get(tls, "cipher_suites");
    if (cs && sy__cfg_kind(cs) != SY__CFG_NULL) {
        if (sy__cfg_kind(cs) != SY__CFG_LIST) {
            *bad = cs;
            snprintf(err, err_len,
                     "'service.telemetry.metrics.tls.cipher_suites': expected a list of names");
            return -1;
        }
        size_t n = sy__cfg_len(cs);
        t->cipher_suites.items = calloc(n ? n : 1, sizeof(char *));
        if (!t->cipher_suites.items) return -1;
        for (size_t i = 0; i < n; i++) {
            const sy_cfg_node_t *item = sy__cfg_at(cs, i, NULL);
            const char *v = sy__cfg_scalar(item);
            if (!v || !(t->cipher_suites.items[i] = strdup(v))) {
                *bad = item;
                snprintf(err, err_len,
                         "'service.telemetry.metrics.tls.cipher_suites[%zu]': expected a name", i);
                return -1;
            }
            t->cipher_suites.count++;
        }
    }
    const sy_cfg_node_t *ri = sy__cfg_get(tls, "reload_interval");
    if (ri && sy__cfg_kind(ri) != SY__CFG_NULL &&
        (!sy__cfg_scalar(ri) || sy__parse_duration(sy__cfg_scalar(ri), &t->reload_ns) != 0 ||
         t->reload_ns < 0)) {
        *bad = ri;
        snprintf(err, err_len,
                 "'service.telemetry.metrics.tls.reload_interval': expected a duration (\"1h\")");
        return -1;
    }
    t->set = (syc_tls_settings_t){.cert_file = t->cert_file,
                                  .key_file = t->key_file,
                                  .client_ca_file = t->client_ca_file,
                                  .min_version = t->min_version,
                                  .max_version = t->max_version,
                                  .cipher_suites = &t->cipher_suites,
                                  .http1 = true};
    *bad = tls;
    if (syc_tls_settings_check(&t->set, "service::telemetry::metrics::tls", err, err_len) != 0)
        return -1;
    if (check_file(tls, "cert_file", t->cert_file, bad, err, err_len) < 0 ||
        check_file(tls, "key_file", t->key_file, bad, err, err_len) < 0 ||
        check_file(tls, "client_ca_file", t->client_ca_file, bad, err, err_len) < 0)
        return -1;
    const char *where = sy__cfg_where(tls);
    if (!(t->where = strdup(where ? where : "service.telemetry.metrics.tls"))) return -1;
    return 0;
}

int sy__metrics_tls_read(const sy_cfg_node_t *tls, sy__metrics_tls_t *out,
                         const sy_cfg_node_t **bad, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    snprintf(err, err_len, "out of memory");
    if (read_all(tls, out, bad, err, err_len) == 0) return 0;
    sy__metrics_tls_free(out);
    return -1;
}
