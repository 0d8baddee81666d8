/*
 * jaeger.h - private to the jaeger receiver: configuration and state shared by
 * jaeger.c (configuration, lifecycle, the common path from Thrift bytes to an
 * emitted batch), jaeger_udp.c (the agent's UDP protocols) and jaeger_http.c
 * (thrift_http).
 */
#ifndef SY_RECEIVER_JAEGER_H
#define SY_RECEIVER_JAEGER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <switchyard/plugin.h>
#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "auth_server.h"
#include "http_server.h"
#include "emit_wait.h"
#include "settle_wait.h"
#include "tls_config.h"
#include "thrift.h"

/* How long a UDP worker retries a batch the pipeline refused as full before it
 * drops it (milliseconds). */
#define JAEGER_UDP_EMIT_WAIT_MS 100

/* The two UDP protocols, in this order everywhere. */
enum { JG_COMPACT = 0, JG_BINARY = 1, JG_UDP_PROTOCOLS = 2 };

typedef struct jaeger_udp_config_s {
    bool enabled;
    char *endpoint;
    int64_t queue_size;
    int64_t max_packet_size;
    int64_t workers;
    uint64_t socket_buffer_size; /* 0: the OS default */
} jaeger_udp_config_t;

typedef struct jaeger_config_s {
    jaeger_udp_config_t udp[JG_UDP_PROTOCOLS];
    bool http;
    char *http_endpoint;
    uint64_t http_max_body;
    char *http_authenticator;      /* protocols.thrift_http.auth.authenticator */
    syc_tls_server_cfg_t http_tls; /* protocols.thrift_http.tls */
    bool grpc;
    char *grpc_endpoint;
    char *grpc_authenticator;      /* protocols.grpc.auth.authenticator */
    syc_tls_server_cfg_t grpc_tls; /* protocols.grpc.tls */
    int64_t settle_timeout;        /* thrift_http: waiting for a persistent queue */
    int64_t queue_wait;            /* grpc: how long a call waits for a full queue */
} jaeger_config_t;

typedef struct jaeger_state_s jaeger_state_t;

/* A reusable bump allocator for the decoded Jaeger structs, which live only until
 * they are translated: one per worker thread (and one for thrift_http), reset
 * after each packet, so their memory stays warm instead of growing each batch's
 * arena. Allocations beyond its block are malloc'ed and freed at reset; the block
 * grows to the largest packet's need, up to JAEGER_SCRATCH_KEEP. */
#define JAEGER_SCRATCH_KEEP ((size_t)8 << 20)
typedef struct jaeger_scratch_s {
    ProtobufCAllocator pb; /* allocator_data points back at the scratch */
    uint8_t *base;
    size_t cap, used, need;
    void **extra;
    size_t n_extra, cap_extra;
} jaeger_scratch_t;

void jaeger_scratch_init(jaeger_scratch_t *s);
void jaeger_scratch_reset(jaeger_scratch_t *s);
void jaeger_scratch_free(jaeger_scratch_t *s);

/* A packet waiting for a worker. */
typedef struct jaeger_packet_s {
    size_t len;
    uint8_t data[];
} jaeger_packet_t;

/* A warning logged at most once per interval, with what was counted meanwhile. */
typedef struct jaeger_ratelog_s {
    _Atomic uint64_t last_ns; /* monotonic time of the last warning; 0: never */
    _Atomic uint64_t since;   /* events since then */
} jaeger_ratelog_t;

/* One UDP protocol: its socket on the loop thread, a bounded queue of packets
 * and the worker threads that decode, translate and emit them. */
typedef struct jaeger_udp_s {
    jaeger_state_t *st;
    const jaeger_udp_config_t *cfg;
    th_proto_t proto;
    const char *name; /* "thrift_compact" */
    uv_udp_t handle;
    bool open;     /* handle initialized (closed in shutdown) */
    uint8_t *recv; /* one receive buffer of max_packet_size bytes */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    jaeger_packet_t **ring; /* queue_size slots */
    size_t cap, head, count;
    int idle; /* workers waiting on cv */
    bool stopping;
    pthread_t *threads;
    int nthreads;
    bool sync_ready; /* mu and cv initialized */

    sy_metric_t *m_received, *m_queue_full, *m_refused, *m_spans_refused, *m_invalid,
        *m_read_errors, *m_queue_len;
    jaeger_ratelog_t log_refused, log_queue_full, log_invalid;
} jaeger_udp_t;

struct jaeger_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const jaeger_config_t *cfg;
    jaeger_udp_t *udp[JG_UDP_PROTOCOLS];
    atomic_bool stopping; /* shutdown() began: workers no longer wait to emit */
    syc_http_server_t *http;
    bool http_closing;
    jaeger_scratch_t http_scratch;
    sy_metric_t *m_http_requests, *m_http_failed, *m_http_auth_failed;
    jaeger_ratelog_t log_http;
    syc_auth_guard_t http_auth; /* protocols.thrift_http.auth */
    syc_tls_server_t http_tls;  /* protocols.thrift_http.tls */
    syc_settle_t http_settle;   /* thrift_http answers after the durable write */
    sy_metric_t *m_http_settle_timeouts, *m_http_settle_failed;
    syc_emit_wait_t http_emitq; /* thrift_http requests held while a queue is full */
    sy_metric_t *m_http_queue_waits, *m_http_queue_wait_expired;
    syc_tls_server_t grpc_tls; /* protocols.grpc.tls (HTTP/2) */
    /* grpc (jaeger_grpc.c): the otlp receiver's gRPC server's state and config */
    struct otlp_state_s *grpc;
    struct otlp_config_s *grpc_cfg;
    sy_metric_t *m_grpc_invalid;
    jaeger_ratelog_t log_grpc;
};

/* What became of one Batch handed to jaeger_emit(). */
typedef struct jaeger_outcome_s {
    int rc;       /* SY_OK, or the SY_E* of the failure */
    size_t spans; /* spans in the batch */
    char err[300];
    /* thrift_http: set before the call, the request whose answer may wait for the
     * durable write (settle_wait.h); `wait` is then that wait, or NULL (answer
     * now). Its emit goes through queue_wait (emit_wait.h): rc SYC_EMIT_PARKED
     * means jaeger_http_emitted() answers later. */
    void *settle_req;
    syc_settle_wait_t *wait;
} jaeger_outcome_t;

/*
 * Decodes Thrift bytes (an agent message when `agent`, else a bare Batch) into
 * `scratch` (reset before returning), translates it to OTLP into a new batch and
 * emits it; a refusal for a full queue (SY_EAGAIN) is retried every millisecond
 * for up to wait_ms. Returns SY_OK; SY_EINVAL
 * (undecodable, or an agent method other than emitBatch; err says why);
 * SY_ENOMEM; or emit's SY_EAGAIN / SY_ECLOSED (the pipeline refused; nothing was
 * kept). Any thread of the receiver's own.
 */
/* thrift_http: the answer of a request that waited for the durable write. */
void jaeger_http_settled(void *owner, void *ctx, int tag, int status);
/* thrift_http: the answer of a request once emit() took it or refused it (after
 * a wait for room when it was held). */
void jaeger_http_emitted(const syc_emit_req_t *er, int rc);

void jaeger_emit(jaeger_state_t *st, jaeger_scratch_t *scratch, th_proto_t proto, bool agent,
                 unsigned wait_ms, const uint8_t *data, size_t len, jaeger_outcome_t *out);

/* Logs a warning at most every 10 s per `rl`, saying how many events happened
 * since the last one. Any thread. */
void jaeger_ratelog(jaeger_state_t *st, jaeger_ratelog_t *rl, const char *fmt, ...) SY_PRINTF(3, 4);

/* UDP (jaeger_udp.c). Loop thread. */
int jaeger_udp_start(jaeger_state_t *st, int which);
void jaeger_udp_shutdown(jaeger_udp_t *u);
void jaeger_udp_free(jaeger_udp_t *u);

/* thrift_http (jaeger_http.c). Loop thread. */
int jaeger_http_start(jaeger_state_t *st);
void jaeger_http_shutdown(jaeger_state_t *st);

/* grpc (jaeger_grpc.c). create() then start(), loop thread; free() in destroy. */
int jaeger_grpc_create(jaeger_state_t *st);
int jaeger_grpc_start(jaeger_state_t *st);
void jaeger_grpc_shutdown(jaeger_state_t *st);
void jaeger_grpc_free(jaeger_state_t *st);

#endif
