/*
 * tls_config.h - the collector's server `tls` block (configtls.ServerConfig) for
 * a plugin's HTTP/1.1 server: the config struct and its field-table entries, the
 * check for validate(), and the context a server uses, with its reload timer.
 *
 *   tls:
 *     cert_file: server.pem        # both required once tls is there
 *     key_file: server.key
 *     client_ca_file: ca.pem       # clients must present a certificate it signed
 *     min_version: "1.2"           # default; "1.0".."1.3"
 *     max_version: "1.3"
 *     cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
 *     reload_interval: 1h          # re-reads the three files (0: never)
 *
 * The server side (syc_tls_server_t) lives in the plugin's state; everything
 * runs on the plugin's loop thread but the check.
 */
#ifndef SY_COMMON_TLS_CONFIG_H
#define SY_COMMON_TLS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "http_server.h"
#include "tls_server.h"

typedef struct syc_tls_server_cfg_s {
    bool present; /* the tls key is there */
    char *cert_file, *key_file, *client_ca_file, *min_version, *max_version;
    sy_cfg_strlist_t cipher_suites;
    int64_t reload_interval; /* ns */
} syc_tls_server_cfg_t;

/* The field-table entries of `<prefix>tls` for a syc_tls_server_cfg_t member `m`
 * of config type T; prefix is a string literal ("protocols.http.", or ""). */
#define SYC_TLS_SERVER_FIELDS(T, m, prefix)                                                   \
    {SY_CFG_FIELD(prefix "tls", SY_CFG_PRESENT, T, m.present),                                \
     .description = "Serves TLS when present; cert_file and key_file are then required."},    \
        {SY_CFG_FIELD(prefix "tls.cert_file", SY_CFG_STRING, T, m.cert_file),                 \
         .description = "Server certificate chain (PEM), leaf first."},                       \
        {SY_CFG_FIELD(prefix "tls.key_file", SY_CFG_STRING, T, m.key_file),                   \
         .description = "Its private key (PEM, unencrypted)."},                               \
        {SY_CFG_FIELD(prefix "tls.client_ca_file", SY_CFG_STRING, T, m.client_ca_file),       \
         .description = "CA certificates (PEM): when set, every client must present a "       \
                        "certificate they signed (mutual TLS)."},                             \
        {SY_CFG_FIELD(prefix "tls.min_version", SY_CFG_STRING, T, m.min_version),             \
         .default_value = "1.2", .description = "Lowest TLS version: 1.0, 1.1, 1.2 or 1.3."}, \
        {SY_CFG_FIELD(prefix "tls.max_version", SY_CFG_STRING, T, m.max_version),             \
         .description = "Highest TLS version (unset: 1.3)."},                                 \
        {SY_CFG_FIELD(prefix "tls.cipher_suites", SY_CFG_STRLIST, T, m.cipher_suites),        \
         .description = "TLS 1.2 cipher suites accepted, in Go's names "                      \
                        "(TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ...); unset: OpenSSL's "     \
                        "defaults."},                                                         \
    {                                                                                         \
        SY_CFG_FIELD(prefix "tls.reload_interval", SY_CFG_DURATION, T, m.reload_interval),    \
            .description = "Reads cert_file, key_file and client_ca_file again at this "      \
                           "interval, for new connections (0: never)."                        \
    }

/* Whether TLS is asked for: the tls key, or any of its files. */
bool syc_tls_server_wanted(const syc_tls_server_cfg_t *cfg);

/* Checks the block without reading files, for validate(): `where` starts the
 * message ("protocols::thrift_http::tls"). 0, or SY_EINVAL with a sentence. */
int syc_tls_server_cfg_check(const syc_tls_server_cfg_t *cfg, const char *where, char *err,
                             size_t err_len);

typedef struct syc_tls_server_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const char *where; /* for messages: "protocols.thrift_http.tls" */
    int64_t reload_ns;
    syc_tls_settings_t set;
    syc_tls_ctx_t *ctx; /* NULL: cleartext */
    sy_timer_t *reload;
} syc_tls_server_t;

/*
 * In create(): when cfg asks for TLS, reads the files into t->ctx, so that a bad
 * file fails startup naming it (logged); http1 says what the server speaks over
 * it (true: HTTP/1.1; false: HTTP/2 only, for a gRPC server). Without TLS, t->ctx
 * stays NULL. Returns 0 or SY_EINVAL. `cfg` and `where` must outlive t.
 */
int syc_tls_server_open(syc_tls_server_t *t, const sy_host_api_t *api, sy_instance_t *inst,
                        const syc_tls_server_cfg_t *cfg, const char *where, bool http1);

/* Starts the timer of reload_interval (nothing without TLS or interval); part of
 * syc_tls_server_attach(), for a server that is not a syc_http_server_t. */
void syc_tls_server_start_reload(syc_tls_server_t *t);

/* In start(), once the server listens: serves TLS on it (nothing without TLS) and
 * starts the reload timer of reload_interval. */
void syc_tls_server_attach(syc_tls_server_t *t, syc_http_server_t *server);

/* In shutdown(): stops the reload timer. */
void syc_tls_server_stop(syc_tls_server_t *t);

/* In destroy(): frees the context (connections made from it may outlive it). */
void syc_tls_server_free(syc_tls_server_t *t);

#endif
