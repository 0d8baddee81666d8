/*
 * otlp_grpc.c - OTLP/gRPC for the otlp receiver: HTTP/2 over cleartext TCP
 * (h2c with prior knowledge, as gRPC clients speak it) on the instance's loop,
 * through nghttp2's server session, answering as the collector's otlpreceiver
 * (grpc-go) does:
 *
 *   POST /opentelemetry.proto.collector.{trace,metrics,logs}.v1.
 *        {Trace,Metrics,Logs}Service/Export, content-type application/grpc[+proto]
 *     OK (0)                 an empty Export*ServiceResponse, then grpc-status 0
 *     INVALID_ARGUMENT (3)   undecodable message, corrupt compression, bad framing
 *     RESOURCE_EXHAUSTED (8) message over max_recv_msg_size_mib; or the pipeline's
 *                            queue is full (then with a google.rpc.RetryInfo of 1s
 *                            in grpc-status-details-bin)
 *     UNIMPLEMENTED (12)     another service or method, a signal no pipeline of
 *                            this receiver carries, an unknown grpc-encoding
 *     UNAVAILABLE (14)       the router is shutting down
 *   another content-type: HTTP 415 with grpc-status 3, as grpc-go answers it.
 *
 * Errors are "trailers-only" answers (one HEADERS frame with END_STREAM). The
 * message bytes land in the batch's arena as they arrive (the framing parser asks
 * for the whole message once its length is known) and are handed on encoded: the
 * core validates them and counts their items without decoding.
 *
 * Writes: nghttp2_session_mem_send() output is copied into write requests of up
 * to 64 KiB; while more than write_buffer_size bytes are in flight the connection
 * stops both producing and reading, so a slow client cannot make us buffer.
 *
 * TLS (when tls is set): tls_module.c (plugins/common) sits between the socket and nghttp2. What is
 * read is fed to it and what it decrypts goes to nghttp2; each write request of
 * nghttp2's output is encrypted whole. Until the handshake has completed (with
 * ALPN "h2") nghttp2 is not asked for output, so its SETTINGS wait. A failed
 * handshake (a cleartext client among them) is counted, logged at debug (and at
 * warn at most once a minute), its alert sent, and the connection closed.
 *
 * Guards (README "Keys"): a message's bytes count against the connection's and
 * the server's budgets from its length prefix, before a byte of it is stored; a
 * call that does not fit is answered RESOURCE_EXHAUSTED with RetryInfo at once.
 * One timer per server (the sweep, a quarter of the shortest deadline) walks the
 * connections: calls whose message is late are reset, idle and old connections
 * get a GOAWAY, keepalive PINGs go out and unanswered ones close the connection.
 * Past max_connections a connection gets SETTINGS and a GOAWAY, and is closed.
 * nghttp2 enforces max_concurrent_streams itself (REFUSED_STREAM), also before
 * the client has acknowledged our SETTINGS.
 *
 * Everything runs on the instance's loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "answer.h"
#include "byte_budget.h"
#include "endpoint.h"
#include "compress.h"
#include "grpc_frame.h"
#include "signals.h"
#include "otlp.h"
#include "otlp_settle.h"

#define MIB                  (1024u * 1024u)
#define WRITE_CHUNK          (64u * 1024u)
#define STREAM_WINDOW        (1u * MIB)
#define CONNECTION_WINDOW    (4u * MIB)
#define DEFAULT_STREAMS      100u
#define MAX_HEADER_VALUE     512u
#define RETRY_DELAY_MS       1000u
#define TLS_WARN_INTERVAL_MS 60000u
#define TLS_RECORD_MAX       16384u /* largest plaintext of one TLS record */
#define SERVICE_PREFIX       "/opentelemetry.proto.collector."
#define CT_GRPC              "application/grpc"
#define NS_PER_MS            1000000
#define REFUSED_LINGER_MS    1000u /* a connection refused for max_connections lives this long */
#define TERMINATED_LINGER_MS 5000u /* a final GOAWAY not written by then: closed anyway */
#define SWEEP_MIN_MS         50u
#define SWEEP_MAX_MS         1000u
#define GRPC_ACCEPT_ENCODING "identity,deflate,gzip,zstd,snappy"
#define AUTH_METADATA_MAX    (16u * 1024u)
#define AUTH_METADATA_PAIRS  64u

typedef struct grpc_conn_s grpc_conn_t;

/* One call: what its headers said, its message, and how it was answered. */
typedef struct grpc_stream_s {
    grpc_conn_t *conn;
    struct grpc_stream_s *prev, *next;
    int32_t id;
    char path[MAX_HEADER_VALUE];
    char method[16];
    char content_type[MAX_HEADER_VALUE];
    char encoding[64];
    int sig;           /* index of the signal, -1 until the headers were checked */
    bool answered;     /* a response was submitted; later input is ignored */
    bool have_message; /* the one message of this unary call is complete */
    syc_grpc_message_t message;
    syc_grpc_parser_t parser;
    sy_batch_t *batch;  /* created when the message's length is known */
    size_t body_sent;   /* bytes of the framed empty response handed to nghttp2 */
    uint64_t opened_ms; /* uv_now() at its HEADERS */
    size_t reserved;    /* message bytes counted against the budgets */
    bool over_budget;   /* the message did not fit in the budgets */
    /* With an authenticator: the call's metadata (headers but the pseudo-headers)
     * as "name\0value\0" pairs, at most AUTH_METADATA_MAX bytes. */
    char *meta;
    size_t meta_len, meta_cap, meta_n;
    otlp_wait_t *wait;     /* its answer waits for the data to be settled */
    syc_emit_park_t *park; /* held while a pipeline's queue is full (queue_wait) */
} grpc_stream_t;

struct grpc_conn_s {
    otlp_grpc_server_t *server;
    struct grpc_conn_s *prev, *next;
    uv_tcp_t tcp;
    nghttp2_session *session;
    syc_tls_conn_t *tls; /* NULL on cleartext */
    grpc_stream_t *streams;
    size_t in_flight; /* bytes handed to uv_write and not yet written */
    size_t nstreams;  /* calls open (grpc_stream_t) */
    size_t reserved;  /* message bytes of its calls counted against the budgets */
    uint64_t created_ms, idle_since_ms, last_read_ms, ping_sent_ms, goaway_ms;
    bool ping_outstanding;   /* a keepalive PING of ours awaits its ACK */
    uint64_t client_ping_ms; /* when the client's last PING came */
    unsigned ping_strikes;   /* client PINGs against enforcement_policy */
    bool aged;               /* max_connection_age's GOAWAY was sent */
    bool terminated;         /* a final GOAWAY is queued; closes once it is written */
    bool refused;            /* over max_connections: GOAWAY, then closed */
    bool reading;
    bool draining; /* writes what is queued, then closes; reads no more */
    bool closing;
};

struct otlp_grpc_server_s {
    otlp_state_t *st;
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listener_open;
    bool closing;
    grpc_conn_t *conns;
    nghttp2_session_callbacks *callbacks;
    nghttp2_option *option;
    size_t max_message;
    size_t write_limit;
    /* Connection guards (milliseconds; 0: none), checked by the sweep timer. */
    uv_timer_t sweep;
    bool sweep_open;
    uint64_t idle_ms, age_ms, grace_ms, ka_time_ms, ka_timeout_ms, read_ms;
    uint64_t ping_min_ms; /* enforcement_policy.min_time; 0: not enforced */
    bool ping_without_calls;
    size_t max_connections;
    size_t nconns, nrefused;
    syc_byte_budget_t budget; /* message bytes in flight, all connections */
    size_t conn_budget;       /* message bytes in flight, one connection */
    /* One read buffer for every connection: a read is consumed whole by
     * nghttp2_session_mem_recv() before the loop reads anything else. */
    uint8_t *read_buf;
    size_t read_buf_len;
    /* TLS: decrypted bytes, consumed whole by nghttp2 like read_buf. */
    uint8_t *plain_buf;
    uint64_t tls_failures;
    uint64_t tls_warned_at; /* uv_now() of the last warning */
    bool tls_warned;
};

typedef struct write_req_s {
    uv_write_t req;
    grpc_conn_t *conn;
    size_t len;
    uint8_t data[];
} write_req_t;

static void conn_flush(grpc_conn_t *c);
static void conn_close(grpc_conn_t *c);
static void server_check_done(otlp_grpc_server_t *s);

/* ------------------------------------------------------------------------ */
/* Answers                                                                   */
/* ------------------------------------------------------------------------ */

#define NV(n, v)                                                                               \
    {                                                                                          \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME \
    }

/* A call held for room (queue_wait) that goes away first: never emitted, so its
 * settle wait is given up too. */
static void stream_unpark(grpc_stream_t *s)
{
    if (!s->park) return;
    otlp_emit_cancel(s->conn->server->st, s->park);
    s->park = NULL;
    otlp_settle_emitted(s->wait, SY_ECLOSED);
    s->wait = NULL;
}

/* Gives the call's memory back: its batch (when not handed on) and its bytes in
 * flight. Called once the call is answered; its later input is ignored. */
static void stream_release(grpc_stream_t *s)
{
    grpc_conn_t *c = s->conn;
    otlp_grpc_server_t *srv = c->server;
    stream_unpark(s);
    if (s->batch) srv->st->api->batch_release(s->batch);
    s->batch = NULL;
    if (s->reserved) {
        c->reserved -= s->reserved;
        syc_byte_budget_give(&srv->budget, s->reserved, uv_now(srv->loop));
        s->reserved = 0;
    }
}

static void count_answer(grpc_stream_t *s, int code)
{
    otlp_state_t *st = s->conn->server->st;
    st->api->metric_add(st->m_grpc_calls, 1);
    if (code != SYC_GRPC_OK) st->api->metric_add(st->m_grpc_failed, 1);
}

/*
 * Answers a call with a status and no message ("trailers-only"): one HEADERS
 * frame that ends the stream. http_status is 200 except for a request that is not
 * gRPC at all (415). With retry, grpc-status-details-bin carries RetryInfo.
 */
static void answer_error(grpc_stream_t *s, int http_status, int code, const char *message,
                         bool retry)
{
    otlp_state_t *st = s->conn->server->st;
    if (s->answered) return;
    s->answered = true;
    count_answer(s, code);
    SY_LOG(st->api, st->inst, SY_LOG_DEBUG, "gRPC call %.200s answered %s: %s", s->path,
           syc_grpc_code_name(code), message);
    char status_text[8], code_text[8], msg[600], details[800];
    snprintf(status_text, sizeof(status_text), "%d", http_status);
    snprintf(code_text, sizeof(code_text), "%d", code);
    syc_grpc_message_encode(message, msg, sizeof(msg));
    nghttp2_nv nva[6] = {
        NV(":status", status_text),
        NV("content-type", CT_GRPC),
        NV("grpc-status", code_text),
        NV("grpc-message", msg),
    };
    size_t n = 4;
    if (retry &&
        syc_grpc_status_details_retry(code, message, RETRY_DELAY_MS, details, sizeof(details)) > 0)
        nva[n++] = (nghttp2_nv)NV("grpc-status-details-bin", details);
    if (nghttp2_submit_response(s->conn->session, s->id, nva, n, NULL) != 0)
        nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id,
                                  NGHTTP2_INTERNAL_ERROR);
    stream_release(s);
}

/* Hands nghttp2 the framed empty Export*ServiceResponse, then the trailers. */
static ssize_t read_response(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                             size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                             void *user_data)
{
    (void)user_data;
    grpc_stream_t *s = source->ptr;
    uint8_t frame[SYC_GRPC_FRAME_HEADER];
    syc_grpc_frame_header(frame, false, 0);
    size_t n = sizeof(frame) - s->body_sent;
    if (n > length) n = length;
    memcpy(buf, frame + s->body_sent, n);
    s->body_sent += n;
    if (s->body_sent == sizeof(frame)) {
        nghttp2_nv trailers[] = {NV("grpc-status", "0")};
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (nghttp2_submit_trailer(session, stream_id, trailers, 1) == 0)
            *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

static void answer_ok(grpc_stream_t *s)
{
    s->answered = true;
    s->conn->ping_strikes = 0;
    count_answer(s, SYC_GRPC_OK);
    nghttp2_nv nva[] = {
        NV(":status", "200"),
        NV("content-type", CT_GRPC),
        NV("grpc-accept-encoding", GRPC_ACCEPT_ENCODING),
    };
    nghttp2_data_provider body = {.source.ptr = s, .read_callback = read_response};
    if (nghttp2_submit_response(s->conn->session, s->id, nva, 3, &body) != 0)
        nghttp2_submit_rst_stream(s->conn->session, NGHTTP2_FLAG_NONE, s->id,
                                  NGHTTP2_INTERNAL_ERROR);
    stream_release(s);
}

/* ------------------------------------------------------------------------ */
/* Calls                                                                     */
/* ------------------------------------------------------------------------ */

/* Memory for the message (and its decompressed form): the call's batch arena. */
static void *stream_alloc(void *ctx, size_t size)
{
    grpc_stream_t *s = ctx;
    otlp_state_t *st = s->conn->server->st;
    if (!s->batch) s->batch = st->api->batch_new(st->inst, otlp_signal_at(s->sig));
    return s->batch ? st->api->batch_alloc(s->batch, size ? size : 1) : NULL;
}

/* Memory for the message itself, asked for by the parser once its length prefix is
 * in: counted against the connection's and the server's budgets first, so that a
 * half-sent message holds no more than they allow. */
static void *stream_alloc_message(void *ctx, size_t size)
{
    grpc_stream_t *s = ctx;
    grpc_conn_t *c = s->conn;
    otlp_grpc_server_t *srv = c->server;
    if (size > srv->conn_budget - c->reserved || !syc_byte_budget_take(&srv->budget, size)) {
        s->over_budget = true;
        return NULL;
    }
    s->reserved += size;
    c->reserved += size;
    return stream_alloc(ctx, size);
}

/* Keeps one metadata entry for the authenticator; past the bounds the rest is
 * left out (a call that needs it then fails to authenticate). */
static void stream_keep_metadata(grpc_stream_t *s, const uint8_t *name, size_t namelen,
                                 const uint8_t *value, size_t valuelen)
{
    size_t need = namelen + valuelen + 2;
    if (s->meta_n >= AUTH_METADATA_PAIRS || need > AUTH_METADATA_MAX - s->meta_len) return;
    if (s->meta_len + need > s->meta_cap) {
        size_t cap = s->meta_cap ? s->meta_cap : 256;
        while (cap < s->meta_len + need)
            cap *= 2;
        char *m = realloc(s->meta, cap);
        if (!m) return;
        s->meta = m;
        s->meta_cap = cap;
    }
    memcpy(s->meta + s->meta_len, name, namelen);
    s->meta[s->meta_len + namelen] = '\0';
    memcpy(s->meta + s->meta_len + namelen + 1, value, valuelen);
    s->meta[s->meta_len + need - 1] = '\0';
    s->meta_len += need;
    s->meta_n++;
}

/* Asks the authenticator about the call's metadata; answers UNAUTHENTICATED
 * (with a message that tells nothing of what was sent) when it refuses. */
static bool stream_authenticated(grpc_stream_t *s)
{
    otlp_state_t *st = s->conn->server->st;
    if (!syc_auth_guard_on(&st->grpc_auth)) return true;
    const char *pairs[2 * AUTH_METADATA_PAIRS];
    const char *p = s->meta;
    for (size_t i = 0; i < s->meta_n; i++) {
        pairs[2 * i] = p;
        p += strlen(p) + 1;
        pairs[2 * i + 1] = p;
        p += strlen(p) + 1;
    }
    /* Names are lower case: HTTP/2 requires it and nghttp2 refuses a request
     * header that is not. */
    if (syc_auth_guard_check(&st->grpc_auth, pairs, s->meta_n)) return true;
    answer_error(s, 200, SYC_GRPC_UNAUTHENTICATED, SYC_AUTH_GRPC_MESSAGE, false);
    return false;
}

/* The request's headers are complete: refuses what is not an Export call. */
static void stream_check_headers(grpc_stream_t *s)
{
    otlp_grpc_server_t *srv = s->conn->server;
    otlp_state_t *st = srv->st;
    char msg[700];
    size_t ct_len = strlen(CT_GRPC);
    /* grpc-go: application/grpc, optionally followed by "+subtype" or ";params". */
    if (strncasecmp(s->content_type, CT_GRPC, ct_len) != 0 ||
        (s->content_type[ct_len] != '\0' && s->content_type[ct_len] != '+' &&
         s->content_type[ct_len] != ';')) {
        snprintf(msg, sizeof(msg), "invalid gRPC request content-type \"%s\"", s->content_type);
        answer_error(s, 415, SYC_GRPC_INVALID_ARGUMENT, msg, false);
        return;
    }
    if (strcmp(s->method, "POST") != 0) {
        snprintf(msg, sizeof(msg), "invalid gRPC request method \"%s\"", s->method);
        answer_error(s, 200, SYC_GRPC_INTERNAL, msg, false);
        return;
    }
    if (!stream_authenticated(s)) return;
    const char *slash = s->path[0] == '/' ? strchr(s->path + 1, '/') : NULL;
    if (!slash) {
        snprintf(msg, sizeof(msg), "malformed method name: \"%s\"", s->path);
        answer_error(s, 200, SYC_GRPC_UNIMPLEMENTED, msg, false);
        return;
    }
    size_t service_len = (size_t)(slash - s->path - 1);
    if (st->custom_service) {
        if (strlen(st->custom_service) == service_len &&
            strncmp(st->custom_service, s->path + 1, service_len) == 0) {
            if (strcmp(slash + 1, st->custom_method) != 0) {
                snprintf(msg, sizeof(msg), "unknown method %s for service %s", slash + 1,
                         st->custom_service);
                answer_error(s, 200, SYC_GRPC_UNIMPLEMENTED, msg, false);
                return;
            }
            s->sig = 0;
            syc_grpc_parser_init(&s->parser, srv->max_message, stream_alloc_message, s);
            return;
        }
        snprintf(msg, sizeof(msg), "unknown service %.*s", (int)service_len, s->path + 1);
        answer_error(s, 200, SYC_GRPC_UNIMPLEMENTED, msg, false);
        return;
    }
    uint32_t wanted = st->api->signals(st->inst);
    for (int i = 0; i < OTLP_SIGNALS; i++) {
        /* As in the collector, a service is registered only for a signal that a
         * pipeline of this receiver carries. */
        if (!(wanted & otlp_signal_at(i)) ||
            strlen(syc_signal_by_index(i)->grpc_service) != service_len ||
            strncmp(syc_signal_by_index(i)->grpc_service, s->path + 1, service_len) != 0)
            continue;
        if (strcmp(slash + 1, "Export") != 0) {
            snprintf(msg, sizeof(msg), "unknown method %s for service %s", slash + 1,
                     syc_signal_by_index(i)->grpc_service);
            answer_error(s, 200, SYC_GRPC_UNIMPLEMENTED, msg, false);
            return;
        }
        s->sig = i;
        syc_grpc_parser_init(&s->parser, srv->max_message, stream_alloc_message, s);
        return;
    }
    snprintf(msg, sizeof(msg), "unknown service %.*s", (int)service_len, s->path + 1);
    answer_error(s, 200, SYC_GRPC_UNIMPLEMENTED, msg, false);
}

static void stream_data(grpc_stream_t *s, const uint8_t *data, size_t len)
{
    char msg[200];
    while (len > 0 && !s->answered) {
        size_t used;
        syc_grpc_message_t m;
        uint64_t declared = 0;
        int rc = syc_grpc_parser_feed(&s->parser, data, len, &used, &m, &declared);
        data += used;
        len -= used;
        if (rc == SYC_GRPC_PARSE_MESSAGE) {
            if (s->have_message) {
                answer_error(s, 200, SYC_GRPC_INVALID_ARGUMENT,
                             "grpc: more than one request message in a unary call", false);
                return;
            }
            s->have_message = true;
            s->message = m;
        } else if (rc == SY_ENOMEM && declared > s->parser.max_message) {
            snprintf(msg, sizeof(msg), "grpc: received message larger than max (%llu vs. %zu)",
                     (unsigned long long)declared, s->parser.max_message);
            answer_error(s, 200, SYC_GRPC_RESOURCE_EXHAUSTED, msg, false);
        } else if (rc == SY_ENOMEM && s->over_budget) {
            otlp_grpc_guard_count(s->conn->server->st, OTLP_GRPC_GUARD_INFLIGHT);
            snprintf(msg, sizeof(msg),
                     "too many request bytes in flight (max_inflight_bytes %zu, %zu per "
                     "connection); retry later",
                     s->conn->server->budget.limit, s->conn->server->conn_budget);
            answer_error(s, 200, SYC_GRPC_RESOURCE_EXHAUSTED, msg, true);
        } else if (rc == SY_ENOMEM) {
            answer_error(s, 200, SYC_GRPC_RESOURCE_EXHAUSTED, "out of memory", false);
        } else if (rc == SY_EINVAL) {
            answer_error(s, 200, SYC_GRPC_INVALID_ARGUMENT,
                         "grpc: invalid compressed flag in the message header", false);
        }
    }
}

/* The answer of a call that waited for its data to be settled (otlp_settle.c):
 * OK, or UNAVAILABLE with RetryInfo. Loop thread, outside nghttp2's callbacks. */
static void grpc_settled(void *owner, void *ctx, int tag, int status)
{
    (void)owner;
    (void)tag;
    grpc_stream_t *s = ctx;
    grpc_conn_t *c = s->conn;
    s->wait = NULL;
    if (c->closing) return;
    s->answered = false;
    if (status == SY_OK)
        answer_ok(s);
    else
        answer_error(s, 200, SYC_GRPC_UNAVAILABLE,
                     status == SY_ETIMEDOUT ? "the data was not written to the persistent queue "
                                              "within settle_timeout"
                                            : "the data could not be written to the persistent "
                                              "queue",
                     true);
    conn_flush(c);
}

/* The second half of a call, once emit() (perhaps after a wait for room) took
 * its batch or refused it. */
static void grpc_emitted(grpc_stream_t *s, int rc)
{
    s->park = NULL;
    otlp_settle_emitted(s->wait, rc);
    if (rc == SY_OK) {
        s->batch = NULL; /* handed over */
        if (s->wait) {
            /* Answered once settled (grpc_settled); input from now on is ignored. */
            s->answered = true;
            stream_release(s);
            return;
        }
        answer_ok(s);
    } else {
        s->wait = NULL;
        const syc_answer_t *a = syc_answer_for(rc);
        answer_error(s, 200, a->grpc_code, a->message, a->retry);
    }
}

/* The same for a call that was held: from the receiver's timer, outside
 * nghttp2's callbacks, so the answer is written here. */
static void grpc_emitted_later(const syc_emit_req_t *er, int rc)
{
    grpc_stream_t *s = er->ctx;
    grpc_conn_t *c = s->conn;
    grpc_emitted(s, rc);
    conn_flush(c);
}

/* The client ended its side: decodes the one message and hands it on. */
static void stream_end(grpc_stream_t *s)
{
    otlp_state_t *st = s->conn->server->st;
    const sy_host_api_t *api = st->api;
    char err[512];
    if (s->answered) return;
    if (!s->have_message || !syc_grpc_parser_idle(&s->parser)) {
        answer_error(s, 200, SYC_GRPC_INVALID_ARGUMENT,
                     !syc_grpc_parser_idle(&s->parser)
                         ? "grpc: the stream ended inside a message"
                         : "grpc: the call ended without a request message",
                     false);
        return;
    }
    const uint8_t *data = s->message.data;
    size_t len = s->message.len;
    const uint8_t *zdata = NULL; /* the compressed message, kept as the batch's twin */
    if (s->message.compressed) {
        uint8_t *out;
        int rc = syc_grpc_decompress(s->encoding, data, len, s->parser.max_message, stream_alloc, s,
                                     &out, &len, err, sizeof(err));
        if (rc != 0) {
            if (rc == SY_ENOMEM)
                snprintf(err, sizeof(err),
                         "grpc: received message after decompression larger than max (%zu)",
                         s->parser.max_message);
            answer_error(s, 200,
                         rc == SY_ENOTSUP  ? SYC_GRPC_UNIMPLEMENTED
                         : rc == SY_ENOMEM ? SYC_GRPC_RESOURCE_EXHAUSTED
                                           : SYC_GRPC_INVALID_ARGUMENT,
                         err, false);
            return;
        }
        if (syc_encoding_twin(syc_encoding_parse(s->encoding)) && !st->custom_handle &&
            otlp_twin_wanted(st, s->sig))
            zdata = data;
        data = out;
    }
    if (!s->batch && !stream_alloc(s, 1)) {
        answer_error(s, 200, SYC_GRPC_UNAVAILABLE, "out of memory", true);
        return;
    }
    int set = st->custom_handle ? st->custom_handle(st, s->batch, data, len, err, sizeof(err))
                                : api->batch_set_encoded(s->batch, data, len, err, sizeof(err));
    if (set == SY_ENOMEM) {
        answer_error(s, 200, SYC_GRPC_RESOURCE_EXHAUSTED, err, false);
        return;
    }
    if (set != 0) {
        char msg[600];
        snprintf(msg, sizeof(msg), "grpc: error unmarshalling request: %s", err);
        answer_error(s, 200, SYC_GRPC_INVALID_ARGUMENT, msg, false);
        return;
    }
    /* The message as it came (in the batch's arena), for an exporter compressing
     * the same way (ABI 1.7; see otlp_http.c keep_twin()). */
    if (zdata && s->message.len && SY_API_HAS(api, batch_set_compressed))
        api->batch_set_compressed(s->batch, syc_encoding_name(syc_encoding_parse(s->encoding)),
                                  zdata, s->message.len);
    if (otlp_check_items(st, s->batch, err, sizeof(err)) != 0) {
        answer_error(s, 200, SYC_GRPC_RESOURCE_EXHAUSTED, err, false);
        return;
    }
    s->wait = otlp_settle_begin(st, s->batch, grpc_settled, s, 0);
    syc_emit_req_t er = {.batch = s->batch, .owner = st, .ctx = s};
    int rc = otlp_emit(st, &er, grpc_emitted_later, &s->park);
    if (rc != SYC_EMIT_PARKED) grpc_emitted(s, rc);
    /* Held (queue_wait): grpc_emitted_later() answers, or stream_release() gives
     * it up when the call goes away first. */
}

static void stream_free(grpc_stream_t *s)
{
    grpc_conn_t *c = s->conn;
    otlp_settle_forget(s->wait); /* the client went away: no answer */
    s->wait = NULL;
    stream_release(s);
    free(s->meta);
    if (--c->nstreams == 0) c->idle_since_ms = uv_now(c->server->loop);
    if (s->prev)
        s->prev->next = s->next;
    else
        c->streams = s->next;
    if (s->next) s->next->prev = s->prev;
    free(s);
}

/* ------------------------------------------------------------------------ */
/* nghttp2 callbacks                                                         */
/* ------------------------------------------------------------------------ */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    grpc_conn_t *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    grpc_stream_t *s = calloc(1, sizeof(*s));
    if (!s) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets this stream only */
    s->conn = c;
    s->id = frame->hd.stream_id;
    s->sig = -1;
    s->opened_ms = uv_now(c->server->loop);
    c->nstreams++;
    s->next = c->streams;
    if (c->streams) c->streams->prev = s;
    c->streams = s;
    nghttp2_session_set_stream_user_data(session, s->id, s);
    return 0;
}

/* Copies a header value, truncated to the destination (a longer value cannot
 * match anything we accept anyway). */
static void copy_value(char *dst, size_t cap, const uint8_t *value, size_t len)
{
    if (len >= cap) len = cap - 1;
    memcpy(dst, value, len);
    dst[len] = '\0';
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    (void)flags;
    (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    grpc_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s) return 0;
#define IS(n) (namelen == sizeof(n) - 1 && memcmp(name, n, namelen) == 0)
    if (IS(":path"))
        copy_value(s->path, sizeof(s->path), value, valuelen);
    else if (IS(":method"))
        copy_value(s->method, sizeof(s->method), value, valuelen);
    else if (IS("content-type"))
        copy_value(s->content_type, sizeof(s->content_type), value, valuelen);
    else if (IS("grpc-encoding"))
        copy_value(s->encoding, sizeof(s->encoding), value, valuelen);
    if (namelen > 0 && name[0] != ':' && syc_auth_guard_on(&s->conn->server->st->grpc_auth))
        stream_keep_metadata(s, name, namelen, value, valuelen);
#undef IS
    return 0;
}

/*
 * keepalive.enforcement_policy, as grpc-go applies it: a client PING sooner than
 * min_time after the previous one, or on a connection without calls when
 * permit_without_stream is false, is a strike; the third strike ends the
 * connection with GOAWAY ENHANCE_YOUR_CALM "too_many_pings". Answering a call
 * forgives the strikes (grpc-go resets them when it sends headers or data).
 */
static void conn_client_ping(grpc_conn_t *c)
{
    otlp_grpc_server_t *srv = c->server;
    if (!srv->ping_min_ms || c->terminated) return;
    uint64_t now = uv_now(srv->loop);
    bool too_soon = c->client_ping_ms && now - c->client_ping_ms < srv->ping_min_ms;
    c->client_ping_ms = now;
    if (!too_soon && (c->nstreams > 0 || srv->ping_without_calls)) return;
    if (++c->ping_strikes <= 2) return;
    static const char why[] = "too_many_pings";
    otlp_grpc_guard_count(srv->st, OTLP_GRPC_GUARD_PINGS);
    c->terminated = true;
    c->goaway_ms = now;
    /* Calls under way may finish; the sweep closes the connection once the
     * GOAWAY is written. */
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session),
                          NGHTTP2_ENHANCE_YOUR_CALM, (const uint8_t *)why, sizeof(why) - 1);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    grpc_conn_t *c = user_data;
    if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK))
        c->ping_outstanding = false;
    else if (frame->hd.type == NGHTTP2_PING)
        conn_client_ping(c);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    grpc_stream_t *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (!s) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        stream_check_headers(s);
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) stream_end(s);
    return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                         const uint8_t *data, size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    grpc_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s && !s->answered && s->sig >= 0) stream_data(s, data, len);
    return 0;
}

/* Counts the streams nghttp2 refuses by itself (over max_concurrent_streams). */
static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    (void)session;
    grpc_conn_t *c = user_data;
    if (frame->hd.type == NGHTTP2_RST_STREAM &&
        frame->rst_stream.error_code == NGHTTP2_REFUSED_STREAM)
        otlp_grpc_guard_count(c->server->st, OTLP_GRPC_GUARD_STREAMS);
    /* A GOAWAY for an HTTP/2 error, ours (conn_recv()) or nghttp2's own (its
     * RST_STREAM rate limit, flow control, frame size); not the guards' GOAWAYs. */
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
        !c->terminated && !c->refused)
        otlp_grpc_guard_count(c->server->st, OTLP_GRPC_GUARD_PROTOCOL);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                           void *user_data)
{
    (void)error_code;
    (void)user_data;
    grpc_stream_t *s = nghttp2_session_get_stream_user_data(session, stream_id);
    if (s) stream_free(s);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                               */
/* ------------------------------------------------------------------------ */

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    grpc_conn_t *c = handle->data;
    buf->base = (char *)c->server->read_buf;
    buf->len = c->server->read_buf_len;
}

static void conn_set_reading(grpc_conn_t *c, bool on);

/* Hands HTTP/2 bytes (as read, or decrypted) to nghttp2. */
static void conn_recv(grpc_conn_t *c, const uint8_t *data, size_t len)
{
    ssize_t rc = nghttp2_session_mem_recv(c->session, data, len);
    if (rc < 0) {
        SY_LOG(c->server->st->api, c->server->st->inst, SY_LOG_DEBUG,
               "closing a gRPC connection: %s", nghttp2_strerror((int)rc));
        /* A GOAWAY may be queued: send it, then close (want_read is off now). A
         * flood (acks the peer never reads) is ENHANCE_YOUR_CALM, as grpc-go says. */
        nghttp2_session_terminate_session(c->session, rc == NGHTTP2_ERR_FLOODED
                                                          ? NGHTTP2_ENHANCE_YOUR_CALM
                                                          : NGHTTP2_PROTOCOL_ERROR);
        conn_set_reading(c, false);
    }
}

/* Counts a failed handshake; logs it at debug, and at warn at most once every
 * TLS_WARN_INTERVAL_MS so that a port scanner cannot flood the log. */
static void tls_handshake_failed(grpc_conn_t *c, const char *why)
{
    otlp_grpc_server_t *s = c->server;
    otlp_state_t *st = s->st;
    char peer[INET6_ADDRSTRLEN + 8] = "?";
    struct sockaddr_storage addr;
    int alen = sizeof(addr);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&addr, &alen) == 0) {
        if (addr.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&addr, peer, sizeof(peer));
        else
            uv_ip4_name((struct sockaddr_in *)&addr, peer, sizeof(peer));
    }
    st->api->metric_add(st->m_grpc_tls_failed, 1);
    s->tls_failures++;
    uint64_t now = uv_now(s->loop);
    bool warn = !s->tls_warned || now - s->tls_warned_at >= TLS_WARN_INTERVAL_MS;
    if (warn) {
        s->tls_warned = true;
        s->tls_warned_at = now;
    }
    SY_LOG(st->api, st->inst, warn ? SY_LOG_WARN : SY_LOG_DEBUG,
           "TLS handshake with gRPC client %s failed: %s (%llu failed so far%s)", peer, why,
           (unsigned long long)s->tls_failures,
           warn ? "; the next ones within a minute are logged at debug" : "");
}

/* Feeds ciphertext to the TLS layer and hands what it decrypts to nghttp2. A
 * failure (handshake or later) or the client's close_notify drains the
 * connection: the alert or GOAWAY queued is sent, then the socket closed. */
static void conn_recv_tls(grpc_conn_t *c, const uint8_t *data, size_t len)
{
    otlp_grpc_server_t *s = c->server;
    char err[300];
    if (syc_tls_conn_feed(c->tls, data, len) != 0) {
        conn_close(c);
        return;
    }
    for (;;) {
        bool was_established = syc_tls_conn_established(c->tls);
        ssize_t n = syc_tls_conn_read(c->tls, s->plain_buf, TLS_RECORD_MAX, err, sizeof(err));
        if (n > 0) {
            conn_recv(c, s->plain_buf, (size_t)n);
            if (c->closing || !nghttp2_session_want_read(c->session)) return;
            continue;
        }
        if (n == 0) return;
        if (n == SY_ECLOSED)
            SY_LOG(s->st->api, s->st->inst, SY_LOG_DEBUG, "a gRPC client closed its TLS session");
        else if (!was_established)
            tls_handshake_failed(c, err);
        else
            SY_LOG(s->st->api, s->st->inst, SY_LOG_DEBUG, "closing a gRPC connection: TLS: %s",
                   err);
        c->draining = true;
        conn_set_reading(c, false);
        return;
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    grpc_conn_t *c = stream->data;
    if (nread == 0 || c->closing || c->draining) return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->last_read_ms = uv_now(c->server->loop);
    c->ping_outstanding = false; /* the peer is alive */
    if (c->tls)
        conn_recv_tls(c, (const uint8_t *)buf->base, (size_t)nread);
    else
        conn_recv(c, (const uint8_t *)buf->base, (size_t)nread);
    conn_flush(c);
}

static void conn_set_reading(grpc_conn_t *c, bool on)
{
    if (c->closing || c->reading == on) return;
    if (on) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            conn_close(c);
            return;
        }
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->reading = on;
}

static void on_write(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    grpc_conn_t *c = w->conn;
    c->in_flight -= w->len;
    free(w);
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
}

/* Hands a write request to the socket (taking it). 0, or -1 when the
 * connection is closing. */
static int conn_write(grpc_conn_t *c, write_req_t *w)
{
    w->conn = c;
    uv_buf_t buf = uv_buf_init((char *)w->data, (unsigned)w->len);
    /* Written at once when the socket takes it all: a write request that
     * completes costs libuv an epoll_ctl (see conn_flush in plugins/common/http_server.c). */
    int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
    if (n == (int)w->len) {
        free(w);
        return 0;
    }
    if (n < 0 && n != UV_EAGAIN) {
        free(w);
        conn_close(c);
        return -1;
    }
    if (n > 0) { /* the rest when the socket has room */
        buf.base += n;
        buf.len -= (size_t)n;
    }
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
        free(w);
        conn_close(c);
        return -1;
    }
    c->in_flight += w->len;
    return 0;
}

/* Writes the ciphertext the TLS layer holds (handshake records, alerts, frames
 * just encrypted), in one request. 0, or -1 when the connection is closing. */
static int conn_write_tls(grpc_conn_t *c)
{
    size_t n = syc_tls_conn_pending(c->tls);
    if (n == 0) return 0;
    write_req_t *w = malloc(sizeof(*w) + n);
    if (!w) {
        conn_close(c);
        return -1;
    }
    w->len = syc_tls_conn_take(c->tls, w->data, n);
    return conn_write(c, w);
}

/*
 * Sends what nghttp2 has to send, in writes of up to WRITE_CHUNK bytes (encrypted
 * when on TLS), while less than write_limit bytes are in flight; reads only while
 * below that limit too. Closes the connection once nghttp2 wants neither to read
 * nor to write, or once a draining connection has written everything.
 */
static void conn_flush(grpc_conn_t *c)
{
    size_t limit = c->server->write_limit;
    if (c->closing || (c->tls && conn_write_tls(c) != 0)) return;
    if (c->draining) {
        if (c->in_flight == 0) conn_close(c);
        return;
    }
    if (c->tls && !syc_tls_conn_established(c->tls)) {
        /* The handshake: nghttp2 waits, the client's next flight is read. */
        conn_set_reading(c, c->in_flight < limit);
        return;
    }
    while (!c->closing && c->in_flight < limit) {
        write_req_t *w = NULL;
        size_t cap = 0;
        for (;;) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(c->session, &data);
            if (n < 0) {
                free(w);
                conn_close(c);
                return;
            }
            if (n == 0) break;
            size_t len = w ? w->len : 0;
            if (len + (size_t)n > cap) {
                size_t want = len + (size_t)n > WRITE_CHUNK ? len + (size_t)n : WRITE_CHUNK;
                write_req_t *grown = realloc(w, sizeof(*w) + want);
                if (!grown) {
                    free(w);
                    conn_close(c);
                    return;
                }
                if (!w) grown->len = 0;
                w = grown;
                cap = want;
            }
            memcpy(w->data + w->len, data, (size_t)n);
            w->len += (size_t)n;
            if (w->len >= WRITE_CHUNK) break;
        }
        if (!w) break;
        if (c->tls) {
            int rc = syc_tls_conn_write(c->tls, w->data, w->len);
            free(w);
            if (rc != 0) {
                conn_close(c);
                return;
            }
            if (conn_write_tls(c) != 0) return;
        } else if (conn_write(c, w) != 0) {
            return;
        }
    }
    if (c->closing) return;
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
        if (c->in_flight == 0) conn_close(c);
        return;
    }
    conn_set_reading(c, c->in_flight < limit && nghttp2_session_want_read(c->session));
}

static void on_conn_closed(uv_handle_t *handle)
{
    grpc_conn_t *c = handle->data;
    otlp_grpc_server_t *s = c->server;
    while (c->streams)
        stream_free(c->streams);
    nghttp2_session_del(c->session);
    syc_tls_conn_free(c->tls);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    if (c->refused) s->nrefused--;
    free(c);
    server_check_done(s);
}

static void conn_close(grpc_conn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    for (grpc_stream_t *s = c->streams; s; s = s->next)
        stream_unpark(s); /* nobody to answer: not emitted */
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* The first bytes of a connection: the server's SETTINGS and a wider window. */
static int conn_submit_settings(grpc_conn_t *c)
{
    const otlp_config_t *cfg = c->server->st->cfg;
    uint32_t streams =
        cfg->grpc_max_concurrent_streams > 0 && cfg->grpc_max_concurrent_streams <= INT32_MAX
            ? (uint32_t)cfg->grpc_max_concurrent_streams
            : DEFAULT_STREAMS;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 64u * 1024u},
    };
    int rc = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings,
                                     sizeof(settings) / sizeof(settings[0]));
    if (rc == 0)
        rc = nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                                   CONNECTION_WINDOW);
    return rc;
}

static void on_connection(uv_stream_t *listener, int status)
{
    otlp_grpc_server_t *s = listener->data;
    if (status < 0 || s->closing) return;
    grpc_conn_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    c->server = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    c->created_ms = c->idle_since_ms = c->last_read_ms = uv_now(s->loop);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (s->max_connections && s->nrefused >= s->max_connections &&
        s->nconns - 1 - s->nrefused >= s->max_connections) {
        /* A flood past twice the cap: closed before any session memory is taken
         * (libuv accepts a whole backlog in one go, and closes later). */
        otlp_grpc_guard_count(s->st, OTLP_GRPC_GUARD_MAX_CONNECTIONS);
        conn_close(c);
        return;
    }
    if (nghttp2_session_server_new2(&c->session, s->callbacks, c, s->option) != 0 ||
        (s->st->tls && !(c->tls = syc_tls_conn_new(s->st->tls)))) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (conn_submit_settings(c) != 0) {
        conn_close(c);
        return;
    }
    if (s->max_connections && s->nconns - 1 - s->nrefused >= s->max_connections) {
        otlp_grpc_guard_count(s->st, OTLP_GRPC_GUARD_MAX_CONNECTIONS);
        if (s->nrefused >= s->max_connections) {
            conn_close(c); /* a flood: not even an answer */
            return;
        }
        /* SETTINGS and a GOAWAY that accepts no stream; the sweep closes it. */
        static const char why[] = "too many connections (max_connections)";
        c->refused = true;
        s->nrefused++;
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE, 0, NGHTTP2_ENHANCE_YOUR_CALM,
                              (const uint8_t *)why, sizeof(why) - 1);
    }
    conn_flush(c); /* sends the SETTINGS (after the TLS handshake) and starts reading */
}

/* ------------------------------------------------------------------------ */
/* Guards: one timer per server walks the connections                       */
/* ------------------------------------------------------------------------ */

/* Resets the calls whose request message is not in within read_timeout, and
 * the answered ones the client leaves open as long (RST_STREAM NO_ERROR). */
static void conn_sweep_streams(grpc_conn_t *c, uint64_t now)
{
    otlp_grpc_server_t *srv = c->server;
    for (grpc_stream_t *s = c->streams; s; s = s->next) {
        if (now - s->opened_ms < srv->read_ms || s->park) continue; /* held: it is all in */
        if (!s->answered) {
            otlp_grpc_guard_count(srv->st, OTLP_GRPC_GUARD_READ_TIMEOUT);
            SY_LOG(srv->st->api, srv->st->inst, SY_LOG_DEBUG,
                   "gRPC call %.200s reset: its message was not in within read_timeout", s->path);
            s->answered = true;
            stream_release(s);
            nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        } else if (nghttp2_session_get_stream_local_close(c->session, s->id) == 1 &&
                   now - s->opened_ms >= 2 * srv->read_ms) {
            nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_NO_ERROR);
            s->opened_ms = now; /* once */
        }
    }
}

/* Ends the connection with a GOAWAY (closed once it is written). */
static void conn_terminate(grpc_conn_t *c)
{
    c->terminated = true;
    c->goaway_ms = uv_now(c->server->loop);
    if (c->tls && !syc_tls_conn_established(c->tls))
        conn_close(c); /* no HTTP/2 yet to say goodbye in */
    else
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
}

static void conn_sweep(grpc_conn_t *c, uint64_t now)
{
    otlp_grpc_server_t *srv = c->server;
    if (c->refused) {
        if (now - c->created_ms >= REFUSED_LINGER_MS) conn_close(c);
        return;
    }
    /* Closed once the final GOAWAY is out; a client that does not read it is not
     * waited for long. */
    if (c->terminated &&
        ((!nghttp2_session_want_write(c->session) && c->in_flight == 0 && c->nstreams == 0) ||
         now - c->goaway_ms >= TERMINATED_LINGER_MS))
        conn_close(c);
    if (c->draining || c->terminated) return;
    if (srv->read_ms) conn_sweep_streams(c, now);
    if (srv->idle_ms && c->nstreams == 0 && now - c->idle_since_ms >= srv->idle_ms) {
        otlp_grpc_guard_count(srv->st, OTLP_GRPC_GUARD_IDLE);
        conn_terminate(c);
    } else if (srv->age_ms && !c->aged && now - c->created_ms >= srv->age_ms) {
        /* Calls under way finish; new ones are refused and go to a new connection. */
        otlp_grpc_guard_count(srv->st, OTLP_GRPC_GUARD_AGE);
        static const char why[] = "max_connection_age";
        c->aged = true;
        c->goaway_ms = now;
        nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                              (const uint8_t *)why, sizeof(why) - 1);
    } else if (c->aged &&
               (c->nstreams == 0 || (srv->grace_ms && now - c->goaway_ms >= srv->grace_ms))) {
        conn_terminate(c);
    } else if (srv->ka_time_ms && !c->ping_outstanding &&
               now - c->last_read_ms >= srv->ka_time_ms &&
               (!c->tls || syc_tls_conn_established(c->tls))) {
        c->ping_outstanding = true;
        c->ping_sent_ms = now;
        nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL);
    } else if (c->ping_outstanding && srv->ka_timeout_ms &&
               now - c->ping_sent_ms >= srv->ka_timeout_ms) {
        otlp_grpc_guard_count(srv->st, OTLP_GRPC_GUARD_KEEPALIVE);
        conn_close(c);
        return;
    }
    if (!c->closing) conn_flush(c);
}

static void on_sweep(uv_timer_t *t)
{
    otlp_grpc_server_t *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (grpc_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (!c->closing) conn_sweep(c, now);
    }
}

/* The sweep's period: a quarter of the shortest deadline, within 50 ms..1 s. */
static uint64_t sweep_period(const otlp_grpc_server_t *s)
{
    const uint64_t all[] = {s->idle_ms,    s->age_ms,        s->grace_ms,
                            s->ka_time_ms, s->ka_timeout_ms, s->read_ms};
    uint64_t p = SWEEP_MAX_MS * 4;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        if (all[i] && all[i] < p) p = all[i];
    p /= 4;
    return p < SWEEP_MIN_MS ? SWEEP_MIN_MS : p > SWEEP_MAX_MS ? SWEEP_MAX_MS : p;
}

static void on_sweep_closed(uv_handle_t *handle)
{
    otlp_grpc_server_t *s = handle->data;
    s->sweep_open = false;
    server_check_done(s);
}

/* ------------------------------------------------------------------------ */
/* The server                                                                */
/* ------------------------------------------------------------------------ */

static void server_free(otlp_grpc_server_t *s)
{
    if (!s) return;
    if (s->callbacks) nghttp2_session_callbacks_del(s->callbacks);
    if (s->option) nghttp2_option_del(s->option);
    free(s->read_buf);
    free(s->plain_buf);
    free(s);
}

static void server_check_done(otlp_grpc_server_t *s)
{
    if (!s->closing || s->listener_open || s->sweep_open || s->conns) return;
    if (s->st->grpc == s) s->st->grpc = NULL;
    server_free(s);
}

static void on_listener_closed(uv_handle_t *handle)
{
    otlp_grpc_server_t *s = handle->data;
    s->listener_open = false;
    server_check_done(s);
}

/* Resolves "host:port" (":port" for every interface, "localhost" as 127.0.0.1,
 * "[v6]:port"); a host name through a synchronous lookup, which is acceptable
 * because the server starts before its loop runs. */
static int server_callbacks(otlp_grpc_server_t *s)
{
    if (nghttp2_session_callbacks_new(&s->callbacks) != 0) return SY_ENOMEM;
    nghttp2_session_callbacks_set_on_begin_headers_callback(s->callbacks, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(s->callbacks, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(s->callbacks, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(s->callbacks, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(s->callbacks, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(s->callbacks, on_frame_send);
    if (nghttp2_option_new(&s->option) != 0) return SY_ENOMEM;
    /* Bounds what a peer can make us queue: SETTINGS/PING acks it never reads. */
    nghttp2_option_set_max_outbound_ack(s->option, 1000);
    return 0;
}

int otlp_grpc_validate(const otlp_config_t *cfg, char *err, size_t err_len)
{
    char why[300];
    if (syc_http_endpoint_check(cfg->grpc_endpoint, why, sizeof(why)) != 0) {
        snprintf(err, err_len, "protocols::grpc::endpoint: %s", why);
        return SY_EINVAL;
    }
    if (cfg->grpc_transport && strcmp(cfg->grpc_transport, "tcp") != 0 &&
        strcmp(cfg->grpc_transport, "tcp4") != 0 && strcmp(cfg->grpc_transport, "tcp6") != 0) {
        snprintf(err, err_len,
                 "protocols::grpc::transport: \"%s\" is not supported (tcp, tcp4 or tcp6)",
                 cfg->grpc_transport);
        return SY_EINVAL;
    }
    if (cfg->grpc_max_recv_msg_size_mib < 0 || cfg->grpc_max_recv_msg_size_mib > 2047) {
        snprintf(err, err_len,
                 "protocols::grpc::max_recv_msg_size_mib: must be between 0 and 2047, got %lld",
                 (long long)cfg->grpc_max_recv_msg_size_mib);
        return SY_EINVAL;
    }
    if (cfg->grpc_max_connections < 0 || cfg->grpc_read_timeout < 0) {
        snprintf(err, err_len,
                 "protocols::grpc: max_connections and read_timeout must not be negative");
        return SY_EINVAL;
    }
    if (cfg->grpc_max_concurrent_streams < 0 || cfg->grpc_max_concurrent_streams > INT32_MAX) {
        snprintf(err, err_len, "protocols::grpc::max_concurrent_streams: out of range: %lld",
                 (long long)cfg->grpc_max_concurrent_streams);
        return SY_EINVAL;
    }
    const int64_t durations[] = {cfg->ka_max_connection_idle,
                                 cfg->ka_max_connection_age,
                                 cfg->ka_max_connection_age_grace,
                                 cfg->ka_time,
                                 cfg->ka_timeout,
                                 cfg->ka_min_time};
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        if (durations[i] < 0) {
            snprintf(err, err_len, "protocols::grpc::keepalive: durations must not be negative");
            return SY_EINVAL;
        }
    }
    return 0;
}

int otlp_grpc_start(otlp_state_t *st)
{
    const otlp_config_t *cfg = st->cfg;
    char err[512];
    struct sockaddr_storage addr;
    uv_loop_t *loop = st->api->loop(st->inst);
    memset(&addr, 0, sizeof(addr));
    if (syc_endpoint_resolve(loop, cfg->grpc_endpoint, &addr, NULL, 0, err, sizeof(err)) != 0)
        goto fail_log;

    otlp_grpc_server_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, sizeof(err), "out of memory");
        goto fail_log;
    }
    s->st = st;
    s->loop = loop;
    /* 0 means the default (4 MiB), as in the collector. */
    s->max_message =
        (size_t)(cfg->grpc_max_recv_msg_size_mib > 0 ? cfg->grpc_max_recv_msg_size_mib : 4) * MIB;
    /* Clamped: a tiny buffer would only slow us down, a huge one waste memory. */
    s->read_buf_len =
        cfg->grpc_read_buffer_size ? (size_t)cfg->grpc_read_buffer_size : 512u * 1024u;
    if (s->read_buf_len < 16u * 1024u) s->read_buf_len = 16u * 1024u;
    if (s->read_buf_len > 4u * MIB) s->read_buf_len = 4u * MIB;
    s->write_limit =
        cfg->grpc_write_buffer_size ? (size_t)cfg->grpc_write_buffer_size : WRITE_CHUNK;
    if (s->write_limit < WRITE_CHUNK) s->write_limit = WRITE_CHUNK;
    if (s->write_limit > 4u * MIB) s->write_limit = 4u * MIB;
    s->idle_ms = (uint64_t)cfg->ka_max_connection_idle / NS_PER_MS;
    s->age_ms = (uint64_t)cfg->ka_max_connection_age / NS_PER_MS;
    s->grace_ms = (uint64_t)cfg->ka_max_connection_age_grace / NS_PER_MS;
    s->ka_time_ms = (uint64_t)cfg->ka_time / NS_PER_MS;
    s->ka_timeout_ms = (uint64_t)cfg->ka_timeout / NS_PER_MS;
    s->read_ms = (uint64_t)cfg->grpc_read_timeout / NS_PER_MS;
    s->ping_min_ms = (uint64_t)cfg->ka_min_time / NS_PER_MS;
    s->ping_without_calls = cfg->ka_permit_without_stream;
    s->max_connections = (size_t)cfg->grpc_max_connections;
    s->budget.limit = (size_t)cfg->grpc_max_inflight;
    /* One connection may hold a quarter of the budget, and at least one message. */
    s->conn_budget = s->budget.limit ? s->budget.limit / 4 : SIZE_MAX;
    if (s->conn_budget < s->max_message) s->conn_budget = s->max_message;
    s->read_buf = malloc(s->read_buf_len);
    if (st->tls) s->plain_buf = malloc(TLS_RECORD_MAX);
    if (!s->read_buf || (st->tls && !s->plain_buf) || server_callbacks(s) != 0) {
        snprintf(err, sizeof(err), "out of memory");
        server_free(s);
        goto fail_log;
    }

    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    s->listener_open = true;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    /* The HTTP server's backlog: a connection flood must not leave real clients
     * waiting for SYN retransmissions (a second and more) behind a full queue. */
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc != 0) {
        snprintf(err, sizeof(err), "listen tcp %s: %s", cfg->grpc_endpoint, uv_strerror(rc));
        s->closing = true;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        goto fail_log;
    }
    st->grpc = s;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    s->sweep_open = true;
    uint64_t period = sweep_period(s);
    uv_timer_start(&s->sweep, on_sweep, period, period);
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    int port = 0;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) == 0)
        port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    SY_LOG(st->api, st->inst, SY_LOG_INFO, "Starting GRPC server on endpoint %s (port %d%s)",
           cfg->grpc_endpoint, port, st->tls ? ", TLS" : "");
    return 0;
fail_log:
    SY_LOG(st->api, st->inst, SY_LOG_ERROR, "cannot start the gRPC server: %s", err);
    return SY_ERROR;
}

/* Writes the GOAWAY nghttp2 has queued (and a close_notify on TLS) now, best
 * effort, before the connection is closed at shutdown. */
static void conn_goodbye(grpc_conn_t *c)
{
    const uint8_t *data;
    ssize_t n;
    if (c->tls && !syc_tls_conn_established(c->tls)) return;
    while ((n = nghttp2_session_mem_send(c->session, &data)) > 0) {
        if (c->tls) {
            if (syc_tls_conn_write(c->tls, data, (size_t)n) != 0) return;
            continue;
        }
        uv_buf_t buf = uv_buf_init((char *)data, (unsigned)n);
        if (uv_try_write((uv_stream_t *)&c->tcp, &buf, 1) != n) return;
    }
    if (!c->tls) return;
    syc_tls_conn_close_notify(c->tls);
    uint8_t out[4096];
    size_t got;
    while ((got = syc_tls_conn_take(c->tls, out, sizeof(out))) > 0) {
        uv_buf_t buf = uv_buf_init((char *)out, (unsigned)got);
        if (uv_try_write((uv_stream_t *)&c->tcp, &buf, 1) != (int)got) return;
    }
}

void otlp_grpc_shutdown(otlp_state_t *st)
{
    otlp_grpc_server_t *s = st->grpc;
    otlp_settle_close(st); /* answers the calls still waiting for the disk */
    if (!s || s->closing) return;
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
    uv_close((uv_handle_t *)&s->sweep, on_sweep_closed);
    /* Every call is answered by now (otlp_settle_close), so nothing is pending: tell each
     * client with a GOAWAY written now, best effort, and close. */
    for (grpc_conn_t *c = s->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing) continue;
        nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
        if (c->in_flight == 0 && !c->draining) conn_goodbye(c);
        conn_close(c);
    }
}
