/*
 * otlp.h - private to the otlp receiver: its configuration and state, shared by
 * otlp.c (configuration and lifecycle), otlp_http.c (the HTTP protocol) and
 * otlp_grpc.c (the gRPC protocol).
 */
#ifndef SY_RECEIVER_OTLP_H
#define SY_RECEIVER_OTLP_H

#include <stdbool.h>
#include <stdint.h>

#include <switchyard/auth.h>
#include <switchyard/plugin.h>

#include "auth_server.h"
#include "emit_wait.h"
#include "http_server.h"
#include "settle_wait.h"
#include "tls_config.h"
#include "tls_server.h"

#define OTLP_SIGNALS 3 /* traces, metrics, logs, in that order below */

typedef struct otlp_config_s {
    int64_t max_items_per_request; /* 0: no bound besides the core's decoded size */
    bool http;
    char *http_endpoint;
    uint64_t http_max_body;
    char *http_paths[OTLP_SIGNALS];
    sy_cfg_strlist_t cors_origins;
    sy_cfg_strlist_t cors_headers;
    int64_t cors_max_age;
    bool http_include_metadata;
    /* Connection guards (nanoseconds for durations; 0: no bound). */
    int64_t http_read_header_timeout;
    int64_t http_read_timeout;
    int64_t http_idle_timeout;
    int64_t http_max_connections;
    uint64_t http_max_inflight;
    char *http_authenticator;      /* protocols.http.auth.authenticator: an extension's id */
    syc_tls_server_cfg_t http_tls; /* protocols.http.tls */

    bool grpc;
    char *grpc_endpoint;
    char *grpc_transport;
    int64_t grpc_max_recv_msg_size_mib;
    int64_t grpc_max_concurrent_streams;
    uint64_t grpc_read_buffer_size;
    uint64_t grpc_write_buffer_size;
    /* keepalive.server_parameters (nanoseconds; 0: not set) */
    int64_t ka_max_connection_idle;
    int64_t ka_max_connection_age;
    int64_t ka_max_connection_age_grace;
    int64_t ka_time;
    int64_t ka_timeout;
    /* keepalive.enforcement_policy */
    int64_t ka_min_time;
    bool ka_permit_without_stream;
    syc_tls_server_cfg_t grpc_tls; /* protocols.grpc.tls: present turns TLS on */
    bool grpc_include_metadata;
    int64_t grpc_read_timeout; /* nanoseconds: a call's message must be in by then */
    int64_t grpc_max_connections;
    uint64_t grpc_max_inflight;
    char *grpc_authenticator; /* protocols.grpc.auth.authenticator */
    int64_t settle_timeout;   /* nanoseconds: how long an answer waits for the disk */
    int64_t queue_wait;       /* nanoseconds: how long a request waits for a full queue */
} otlp_config_t;

typedef struct otlp_grpc_server_s otlp_grpc_server_t;

/* The guards of the gRPC server, for its metrics (names in otlp.c). */
typedef enum otlp_grpc_guard_e {
    OTLP_GRPC_GUARD_IDLE,            /* GOAWAY after max_connection_idle */
    OTLP_GRPC_GUARD_AGE,             /* GOAWAY after max_connection_age */
    OTLP_GRPC_GUARD_KEEPALIVE,       /* no PING ack within keepalive timeout: closed */
    OTLP_GRPC_GUARD_READ_TIMEOUT,    /* a call's message not in within read_timeout: reset */
    OTLP_GRPC_GUARD_MAX_CONNECTIONS, /* over max_connections: GOAWAY, closed */
    OTLP_GRPC_GUARD_INFLIGHT,        /* message over the bytes-in-flight budget */
    OTLP_GRPC_GUARD_STREAMS,         /* a stream over max_concurrent_streams: refused */
    OTLP_GRPC_GUARD_PINGS,           /* PINGs against enforcement_policy: GOAWAY */
    OTLP_GRPC_GUARD_PROTOCOL,        /* an HTTP/2 error or a frame flood: GOAWAY, closed */
    OTLP_GRPC_GUARD_COUNT
} otlp_grpc_guard_t;

typedef struct otlp_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const otlp_config_t *cfg;
    syc_http_server_t *http;
    bool http_closing;
    /* The URL path of each signal, with a leading '/' (owned). */
    char *paths[OTLP_SIGNALS];
    size_t max_body;
    sy_metric_t *m_requests; /* HTTP requests answered */
    sy_metric_t *m_failed;   /* of which not answered 200 */
    otlp_grpc_server_t *grpc;
    sy_metric_t *m_grpc_calls;  /* gRPC calls answered */
    sy_metric_t *m_grpc_failed; /* of which not answered OK */
    /* TLS on the gRPC port: the settings, the context read in create() (NULL
     * without tls) and its reload timer; failed handshakes. */
    syc_tls_server_t grpc_tls;
    syc_tls_ctx_t *tls; /* grpc_tls.ctx, or the owner's (the jaeger receiver) */
    sy_metric_t *m_grpc_tls_failed;
    /* What each connection guard did (syc_http_guard_t order for HTTP). */
    sy_metric_t *m_http_guard[SYC_HTTP_GUARD_COUNT];
    sy_metric_t *m_grpc_guard[OTLP_GRPC_GUARD_COUNT];
    /* Another gRPC service instead of OTLP's, for a plugin that compiles
     * otlp_grpc.c into itself (the jaeger receiver): when `service` is set, the
     * server serves only /<service>/<method>, answers UNIMPLEMENTED to anything
     * else, and hands each call's message to `handle` instead of decoding it as
     * OTLP. `handle` fills `batch` (a traces batch, whose arena holds `data`) with
     * batch_set_decoded() and returns SY_OK, or returns SY_EINVAL (answered
     * INVALID_ARGUMENT "grpc: error unmarshalling request: <err>") or another SY_E*
     * (answered as the otlp receiver answers it). NULL: the OTLP services. */
    const char *custom_service, *custom_method;
    int (*custom_handle)(struct otlp_state_s *st, sy_batch_t *batch, const uint8_t *data,
                         size_t len, char *err, size_t err_len);
    void *custom_ctx;
    /* The authenticators of each protocol (without one requests are not
     * authenticated), resolved in start(), with what they refused. */
    syc_auth_guard_t http_auth, grpc_auth;
    syc_tls_server_t http_tls; /* TLS on the HTTP port */
    sy_metric_t *m_http_auth_failed, *m_grpc_auth_failed;
    /* Answers held until the data is settled (otlp_settle.c; set up at first use). */
    syc_settle_t settle;
    sy_metric_t *m_settle_timeouts, *m_settle_failed;
    /* Requests held while a pipeline's queue is full (queue_wait; otlp_settle.c,
     * set up at first use). */
    syc_emit_wait_t emitq;
    bool emitq_ready;
    sy_metric_t *m_queue_waits, *m_queue_wait_expired;
} otlp_state_t;

/* Counts one action of a gRPC guard. Loop thread. */
void otlp_grpc_guard_count(otlp_state_t *st, otlp_grpc_guard_t which);

/* The signal of index i (0 traces, 1 metrics, 2 logs). */
sy_signal_t otlp_signal_at(int i);

/* Whether to keep the bytes a client compressed beside a batch of signal index
 * sig (the compressed twin, ABI 1.7): an exporter behind the receiver may send
 * them (ABI 1.8 compressed_wanted(); on a 1.7 host, always). */
bool otlp_twin_wanted(const otlp_state_t *st, int sig);

/* Checks a filled batch against max_items_per_request. Returns 0, or -1 with a
 * sentence in err (the caller answers 413 / RESOURCE_EXHAUSTED). */
int otlp_check_items(const otlp_state_t *st, sy_batch_t *batch, char *err, size_t err_len);

/* Starts and stops the HTTP protocol (otlp_http.c). Loop thread. */
int otlp_http_start(otlp_state_t *st);
void otlp_http_shutdown(otlp_state_t *st);

/* Checks the gRPC settings for validate() (otlp_grpc.c). Any thread. */
int otlp_grpc_validate(const otlp_config_t *cfg, char *err, size_t err_len);

/* Starts and stops the gRPC protocol (otlp_grpc.c). Loop thread. Shutting down
 * closes every handle; the server frees itself when the last one has closed. */
int otlp_grpc_start(otlp_state_t *st);
void otlp_grpc_shutdown(otlp_state_t *st);

#endif
