/*
 * http_client.h - a small HTTP/1.1 client for the exporters' hot path: POSTs a
 * request head and a body given as pieces (sy_piece_t, the batch's own memory)
 * with sendmsg() straight from that memory, on persistent keep-alive connections
 * driven by a libuv loop (uv_poll_t on non-blocking sockets), and parses the
 * answer with llhttp.
 *
 * It does plain http:// only: no TLS, no proxy, no redirects, no authentication
 * round trips; the exporters use libcurl (curl_uv.h) for everything else (see
 * plugins/common/otlp_exporter_common.c, which decides).
 *
 * Connections: a call takes an idle connection to its target (host and port) or
 * opens a new one: the name is resolved off the loop (uv_getaddrinfo), every
 * address is tried in turn (non-blocking connect, TCP_NODELAY). One call at a time
 * per connection (no pipelining); once answered with keep-alive the connection
 * goes back to the idle list (at most max_idle are kept; an idle connection the
 * server closes is closed too). A call on a reused connection that fails before
 * any byte of the answer came (the server closed it while idle) is started once
 * more on a new connection, as curl does. Everything runs on the loop's thread.
 */
#ifndef SY_HTTP_CLIENT_H
#define SY_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>
#include <switchyard/plugin.h>
#include <uv.h>

/* The largest response body kept (the OTLP specification's 4 MiB bound, as
 * SYC_CURL_MAX_RESPONSE); more is discarded and marked truncated. */
#define SYC_HC_MAX_RESPONSE (4u << 20)

/* ---- the response parser (also the fuzz target's entry) ------------------------- */

typedef struct syc_hc_resp_s {
    llhttp_t parser;
    int status;      /* of the final answer (1xx answers are skipped) */
    bool complete;   /* the whole answer was read */
    bool keep_alive; /* the connection may carry another request */
    uint8_t *body;
    size_t body_len, body_cap;
    bool body_truncated;
    char retry_after[64];
    char content_type[128];
    char hname[32]; /* the header name being read (truncated: then matches nothing) */
    size_t hname_len;
    int hwhich; /* which wanted header the value belongs to (-1: none) */
    size_t hval_len;
    bool oom;
} syc_hc_resp_t;

/* Ready for a new answer (frees nothing: the body buffer is kept for reuse). */
void syc_hc_resp_init(syc_hc_resp_t *r);

/* Feeds len bytes. Returns 0 when more are needed, 1 when the answer is complete
 * (*used says how many bytes it took; more after it is a protocol error on a
 * connection that carries one request at a time), or -1 when the bytes are not
 * HTTP/1.x (out of memory included): a sentence is in err. */
int syc_hc_resp_feed(syc_hc_resp_t *r, const uint8_t *data, size_t len, size_t *used, char *err,
                     size_t err_len);

/* The peer closed: 1 when that completes the answer (a body that runs to the
 * end of the connection), else -1. */
int syc_hc_resp_eof(syc_hc_resp_t *r);

/* Frees the body. */
void syc_hc_resp_free(syc_hc_resp_t *r);

/* ---- targets --------------------------------------------------------------------- */

typedef struct syc_hc_target_s {
    char *host;     /* without brackets: what getaddrinfo() resolves */
    char *port;     /* decimal */
    char *hostport; /* the Host header's value, as curl writes it */
    char *path;     /* path and query, at least "/" */
} syc_hc_target_t;

/* Parses an http:// URL (curl's URL parser). NULL when it is not one this client
 * sends to: another scheme, user info (curl would authenticate), or out of memory. */
syc_hc_target_t *syc_hc_target_new(const char *url);
void syc_hc_target_free(syc_hc_target_t *t);

/* ---- calls ------------------------------------------------------------------------ */

/* How a call failed; the names say which curl error the exporters report for it
 * (so that the retry decision and the log lines stay those of the curl path). */
typedef enum syc_hc_err_e {
    SYC_HC_OK = 0,
    SYC_HC_RESOLVE,   /* CURLE_COULDNT_RESOLVE_HOST */
    SYC_HC_CONNECT,   /* CURLE_COULDNT_CONNECT */
    SYC_HC_TIMEOUT,   /* CURLE_OPERATION_TIMEDOUT */
    SYC_HC_SEND,      /* CURLE_SEND_ERROR */
    SYC_HC_RECV,      /* CURLE_RECV_ERROR */
    SYC_HC_NOTHING,   /* CURLE_GOT_NOTHING: closed before any byte of an answer */
    SYC_HC_BAD_REPLY, /* CURLE_WEIRD_SERVER_REPLY */
    SYC_HC_NOMEM,     /* CURLE_OUT_OF_MEMORY */
} syc_hc_err_t;

typedef struct syc_hc_s syc_hc_t;
typedef struct syc_hc_call_s syc_hc_call_t;
typedef struct hc_conn_s hc_conn_t;

struct syc_hc_call_s {
    /* Set by the caller before syc_hc_send(); all must stay valid until done. */
    const syc_hc_target_t *target;
    const char *head; /* "POST ... HTTP/1.1\r\n...\r\n\r\n" */
    size_t head_len;
    const sy_piece_t *pieces; /* the body, in order */
    size_t npieces;
    uint64_t timeout_ms; /* the whole call, name resolution included (0: none) */
    void (*done)(syc_hc_call_t *call);
    void *arg;
    /* The outcome, when done is called: err, with a sentence in errmsg, or
     * SYC_HC_OK and the answer in resp. */
    syc_hc_err_t err;
    char errmsg[256];
    syc_hc_resp_t resp;
    /* The client's. */
    hc_conn_t *conn;
    uint64_t started_ms;
    size_t at, off; /* the next byte to write: piece `at` (0 is the head), offset */
    size_t received;
    bool retried;
};

/* A client on `loop`, keeping at most max_idle idle connections. NULL when out
 * of memory. */
syc_hc_t *syc_hc_new(uv_loop_t *loop, size_t max_idle);

/* Starts a call. call->done is called exactly once, later (never from inside this
 * call), unless syc_hc_cancel() comes first. Returns 0, or SY_ENOMEM (nothing is
 * called then). */
int syc_hc_send(syc_hc_t *hc, syc_hc_call_t *call);

/* Stops a call under way without calling done (its connection is closed). */
void syc_hc_cancel(syc_hc_t *hc, syc_hc_call_t *call);

/* Frees the call's answer buffer (after done or cancel). */
void syc_hc_call_free(syc_hc_call_t *call);

/* Connections open (busy or idle), for tests. */
size_t syc_hc_connections(const syc_hc_t *hc);

/* Cancels what runs (no done callbacks), closes every connection and frees hc
 * once the last libuv handle is closed; then closed(arg) if given. */
void syc_hc_close(syc_hc_t *hc, void (*closed)(void *arg), void *arg);

#endif
