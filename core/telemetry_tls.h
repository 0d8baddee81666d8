/*
 * telemetry_tls.h - TLS on the router's own /metrics endpoint:
 *
 *   service:
 *     telemetry:
 *       metrics:
 *         address: 0.0.0.0:8888        # or readers[].pull.exporter.prometheus
 *         tls:                         # the collector's configtls server block
 *           cert_file: server.pem
 *           key_file: server.key
 *           client_ca_file: ca.pem     # clients must present a certificate it signed
 *           min_version: "1.2"
 *           max_version: "1.3"
 *           cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
 *           reload_interval: 1h
 *
 * sy__metrics_tls_read() checks such a block (service_config.c, for every
 * configuration including `validate`) and keeps a copy for the server
 * (telemetry.c). Main thread.
 */
#ifndef SY_CORE_TELEMETRY_TLS_H
#define SY_CORE_TELEMETRY_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "config.h"
#include "tls_server.h"

typedef struct sy__metrics_tls_s {
    syc_tls_settings_t set; /* its strings point into the members below */
    char *cert_file, *key_file, *client_ca_file, *min_version, *max_version;
    sy_cfg_strlist_t cipher_suites;
    int64_t reload_ns;
    char *where; /* "file:line:col" of the tls block, for messages */
} sy__metrics_tls_t;

/* Reads and checks the block at `tls` (files readable, versions, cipher suites)
 * into *out. Returns 0, or -1 with a sentence in err and *bad the node at fault
 * (out is then freed). */
int sy__metrics_tls_read(const sy_cfg_node_t *tls, sy__metrics_tls_t *out,
                         const sy_cfg_node_t **bad, char *err, size_t err_len);

void sy__metrics_tls_free(sy__metrics_tls_t *t);

#endif
