/*
 * http_server.h - a small HTTP/1.1 server on a libuv loop, parsed with llhttp.
 *
 * Shared by the core (its metrics endpoint) and by plugins (the otlp receiver,
 * health_check), which link it statically from sy_common. One server lives on one
 * loop and is used only from that loop's thread.
 *
 * Connections are kept alive and pipelined requests are answered in order. A body
 * larger than `max_body` is refused with 413 before it is read in full; a request
 * line or headers that llhttp rejects get 400 and the connection is closed.
 * Deadlines, a connection cap and a bytes-in-flight budget (syc_http_limits_t)
 * keep slow or greedy clients from holding connections and memory.
 */
#ifndef SY_HTTP_SERVER_H
#define SY_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct syc_http_server_s syc_http_server_t;
typedef struct syc_http_conn_s syc_http_conn_t;

/* One request, valid until the handler's response has been passed to
 * syc_http_respond(). Header values are NULL when the header is absent. */
typedef struct syc_http_request_s {
    const char *method;           /* "POST" */
    const char *path;             /* "/v1/traces", without the query */
    const char *query;            /* after '?', or NULL */
    const char *content_type;     /* as sent, parameters included */
    const char *content_encoding; /* "gzip", ... */
    const char *accept;
    const char *origin;                         /* for CORS */
    const char *access_control_request_method;  /* CORS preflight */
    const char *access_control_request_headers; /* CORS preflight */
    const uint8_t *body;
    size_t body_len;
    syc_http_conn_t *conn; /* pass to syc_http_respond() */
    /* With syc_http_server_keep_all_headers(): every header of the request in
     * order, as nheaders (name, value) pairs: headers[2i] the lower-case name,
     * headers[2i+1] the value. NULL and 0 otherwise. */
    const char *const *headers;
    size_t nheaders;
    /* With syc_http_server_set_body_alloc(): what the owner's alloc set for the
     * memory `body` is in, now the handler's to keep or free; NULL otherwise. */
    void *body_owner;
} syc_http_request_t;

/* Called on the loop thread once per complete request. The handler answers with
 * syc_http_respond(), now or later on the same thread (exactly once). */
typedef void (*syc_http_handler_fn)(void *arg, syc_http_request_t *req);

/*
 * Listens on `endpoint` ("host:port"; "localhost" and "0.0.0.0" and "[::1]"
 * allowed; port 0 picks a free port, see syc_http_server_port()). Returns NULL with a
 * sentence in err on failure (address in use, bad endpoint).
 */
syc_http_server_t *syc_http_server_start(uv_loop_t *loop, const char *endpoint, size_t max_body,
                                         syc_http_handler_fn handler, void *arg, char *err,
                                         size_t err_len);

/* Checks the syntax of an endpoint as syc_http_server_start() takes it ("host:port",
 * "[v6]:port", ":port"; port 0..65535) without resolving the host, for a plugin's
 * validate(). Returns 0, or -1 with a sentence in err. Any thread. */
int syc_http_endpoint_check(const char *endpoint, char *err, size_t err_len);

/* The port actually bound (useful with port 0). */
int syc_http_server_port(const syc_http_server_t *server);

/*
 * Answers a request. `extra_headers` is NULL or lines each ending in "\r\n"
 * ("Retry-After: 1\r\n"). The body is copied. Content-Length is always sent.
 */
void syc_http_respond(syc_http_request_t *req, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t body_len);

/*
 * Called on the loop thread when the server refuses a request whose headers it has
 * read (413 for a body over max_body), so that the answer can be written in the
 * protocol's terms. The handler should call syc_http_respond() on `req` (whose body
 * is empty) before returning; otherwise the server answers in plain text. The
 * connection is closed after the answer either way.
 */
typedef void (*syc_http_error_fn)(void *arg, syc_http_request_t *req, int status,
                                  const char *message);
void syc_http_server_set_error_handler(syc_http_server_t *server, syc_http_error_fn fn, void *arg);

/*
 * Called on the loop thread when a request's headers are complete, before any of
 * its body is read (and before "100 Continue" is sent): returns 0 to go on, or an
 * HTTP status to refuse the request with. A refused request is answered through
 * the error handler (syc_http_server_set_error_handler(), with that status) as
 * the server's own refusals are, and its connection is closed after the answer.
 * `req` has no body; it is valid during the call only.
 */
typedef int (*syc_http_head_fn)(void *arg, const syc_http_request_t *req);
void syc_http_server_set_head_check(syc_http_server_t *server, syc_http_head_fn fn, void *arg);

/* Serves TLS (HTTP/1.1 over it) on connections accepted from now on, with a
 * context made by syc_tls_ctx_new() with settings whose http1 is true; NULL goes
 * back to cleartext. The context stays the caller's and must outlive the server
 * (syc_tls_ctx_reload() on it applies to later connections). */
struct syc_tls_ctx_s;
void syc_http_server_set_tls(syc_http_server_t *server, struct syc_tls_ctx_s *ctx);

/*
 * Lets the owner give the memory a request's body is read into, so that a body
 * it keeps (the otlp receiver forwards protobuf bodies as they are) arrives where
 * it stays, without a copy: the socket is read straight into it. Called on the
 * loop thread when the headers of a request with a Content-Length above 0 are
 * complete (and accepted), before any of its body is read: returns `len` bytes
 * and sets *owner (non-NULL) to what holds them, or returns NULL for the
 * server's own buffer. The handler then finds req->body in that memory and
 * req->body_owner set, and owns it from then on. A request that never reaches
 * the handler (refused, timed out, its connection closed) gives it back through
 * release(arg, owner). Not used on TLS connections, whose plaintext is
 * decrypted into the server's buffer anyway.
 */
typedef void *(*syc_http_body_alloc_fn)(void *arg, const syc_http_request_t *req, size_t len,
                                        void **owner);
typedef void (*syc_http_body_release_fn)(void *arg, void *owner);
void syc_http_server_set_body_alloc(syc_http_server_t *server, syc_http_body_alloc_fn alloc,
                                    syc_http_body_release_fn release, void *arg);

/* Keeps every header of a request (names of at most 39 bytes) in req->headers,
 * for an owner that authenticates requests; off by default, which keeps only the
 * fields of syc_http_request_t. Applies to requests that start later. */
void syc_http_server_keep_all_headers(syc_http_server_t *server, bool on);

/* Closes connections that stay silent (and have no request with the handler) for
 * `ms` milliseconds; 0, the default, never does. Applies to new connections. */
void syc_http_server_set_idle_timeout(syc_http_server_t *server, uint64_t ms);

/* The guards that close connections or refuse requests, for the owner's metrics. */
typedef enum syc_http_guard_e {
    SYC_HTTP_GUARD_HEADER_TIMEOUT,  /* headers not complete within read_header_timeout: 408 */
    SYC_HTTP_GUARD_BODY_TIMEOUT,    /* body not complete within read_timeout: 408 */
    SYC_HTTP_GUARD_IDLE,            /* no request within idle_timeout: closed */
    SYC_HTTP_GUARD_MAX_CONNECTIONS, /* over max_connections: 503 and closed */
    SYC_HTTP_GUARD_INFLIGHT,        /* body over the bytes-in-flight budget: 503 */
    SYC_HTTP_GUARD_MALFORMED,       /* HTTP that does not parse, headers too large, or a
                                       request cut short by the client: 400/431, closed */
    SYC_HTTP_GUARD_COUNT
} syc_http_guard_t;

/*
 * What a server allows its clients; 0 in a field means no bound. Deadlines run
 * from the first byte of a request and are not extended by later bytes (a client
 * sending a byte at a time is cut off like a silent one): the request line and
 * headers must be in within read_header_ms, the whole request within read_ms. Body
 * bytes in flight (announced by Content-Length, or received when chunked) are
 * counted from the first byte against max_inflight_bytes for the whole server; a
 * request that does not fit is refused with 503 and Retry-After. Past
 * max_connections a new connection gets 503 and is closed. guard(arg, which) is
 * called on the loop thread whenever one of these acts.
 */
typedef struct syc_http_limits_s {
    uint64_t read_header_ms; /* default 10 s */
    uint64_t read_ms;        /* default 30 s */
    uint64_t idle_ms;        /* default 0 */
    size_t max_connections;
    size_t max_inflight_bytes;
    void (*guard)(void *arg, syc_http_guard_t which);
    void *guard_arg;
} syc_http_limits_t;

/* Replaces the server's limits (copied); applies to requests that start later. */
void syc_http_server_set_limits(syc_http_server_t *server, const syc_http_limits_t *limits);

/* Bytes of request bodies the server holds now (reserved as described above). */
size_t syc_http_server_inflight(const syc_http_server_t *server);

/* Stops listening and closes every connection; `done(arg)` runs on the loop thread
 * once every handle is closed and the server has been freed. A request still with
 * the handler keeps its connection's memory until it is answered (the answer is
 * dropped), so `done` waits for every outstanding syc_http_respond(). */
void syc_http_server_close(syc_http_server_t *server, void (*done)(void *arg), void *arg);

#endif
