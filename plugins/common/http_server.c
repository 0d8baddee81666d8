/*
 * http_server.c - HTTP/1.1 on a libuv loop with llhttp. See http_server.h.
 *
 * Each connection parses with llhttp and pauses the parser at the end of every
 * request, so that exactly one request per connection is with the handler at a
 * time and pipelined requests are answered in order: bytes after the paused
 * request wait in the connection's `pending` buffer (and the socket is not read)
 * until the handler has answered. Buffers (headers, body, input, output) belong to
 * the connection and are reused from one request to the next.
 *
 * A connection that must close after its answer (an error, "Connection: close")
 * shuts down its write side once the answer is out, then reads and discards what
 * the client still sends for a short while: closing at once with unread data would
 * reset the connection and could destroy the answer before the client reads it.
 */
#include "http_server.h"

#include "byte_budget.h"
#include "endpoint.h"
#include "tls_server.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <llhttp.h>

/* Bytes of request line plus headers accepted in one request. */
#define SY__HTTP_MAX_HEADER_BYTES (64u * 1024u)
/* Size of a connection's socket read buffer. */
#define SY__HTTP_READ_SIZE (64u * 1024u)
/* The first read of a request on a connection whose bodies are large: room for
 * the head of most requests, and little of the body (see `large_bodies`). */
#define SY__HTTP_HEAD_READ (4u * 1024u)
/* Unsent answers above which a connection stops reading (a client that pipelines
 * without reading its answers). */
#define SY__HTTP_OUT_HIGH (256u * 1024u)
/* A body buffer larger than this is given back after its request is answered, so
 * that one large request does not pin its memory for the connection's life. */
#define SY__HTTP_KEEP_BODY (1u << 20)
/* How long a closing connection keeps discarding input after its last answer. */
#define SY__HTTP_DRAIN_MS 2000u
/* Deadlines of a server whose owner sets none (syc_http_limits_t). */
#define SY__HTTP_READ_HEADER_MS 10000u
#define SY__HTTP_READ_MS        30000u

/* Headers the server keeps; the rest are skipped. */
enum {
    HDR_CONTENT_TYPE,
    HDR_CONTENT_ENCODING,
    HDR_ACCEPT,
    HDR_ORIGIN,
    HDR_EXPECT,
    HDR_ACR_METHOD,  /* access-control-request-method */
    HDR_ACR_HEADERS, /* access-control-request-headers */
    HDR_COUNT
};
static const char *const kept_headers[HDR_COUNT] = {
    "content-type",
    "content-encoding",
    "accept",
    "origin",
    "expect",
    "access-control-request-method",
    "access-control-request-headers",
};
#define NO_OFFSET ((size_t)-1)

typedef struct buf_s {
    char *data;
    size_t len, cap;
} buf_t;

struct syc_http_server_s {
    uv_loop_t *loop;
    uv_tcp_t listener;
    llhttp_settings_t settings;
    size_t max_body;
    syc_http_handler_fn handler;
    void *arg;
    syc_http_error_fn error_handler;
    void *error_arg;
    syc_http_head_fn head_check;
    void *head_arg;
    syc_http_body_alloc_fn body_alloc; /* syc_http_server_set_body_alloc() */
    syc_http_body_release_fn body_release;
    void *body_arg;
    syc_http_limits_t limits;
    syc_byte_budget_t budget; /* request bodies in flight */
    syc_http_conn_t *conns;   /* doubly linked */
    size_t nconns;            /* every connection, refused ones included */
    size_t nrefused;          /* connections answered 503 for max_connections */
    int port;
    bool keep_all_headers; /* syc_http_server_keep_all_headers() */
    syc_tls_ctx_t *tls;    /* syc_http_server_set_tls(): the owner's; NULL: cleartext */
    bool closing;
    bool listener_closed;
    void (*done)(void *arg);
    void *done_arg;
};

struct syc_http_conn_s {
    uv_tcp_t tcp;
    uv_timer_t timer; /* idle timeout, read deadlines, then the drain deadline */
    uv_write_t write_req;
    uv_shutdown_t shutdown_req;
    llhttp_t parser;
    syc_http_server_t *server;
    syc_http_conn_t *prev, *next;

    /* The request being parsed: NUL-terminated strings in `hdr` at offsets. */
    buf_t hdr;
    size_t url_off;
    size_t header_off[HDR_COUNT];
    char field[40]; /* the header name being read, lower case */
    size_t field_len;
    int cur_header;   /* index into kept_headers, or -1 */
    size_t value_off; /* where the current kept header's value starts in hdr */
    size_t header_bytes;
    /* With keep_all_headers: every header as (name, value) offsets into hdr, and the
     * pointers handed out in req.headers. */
    buf_t all_off;
    buf_t all_ptrs;
    size_t name_off; /* where the current header's name starts in hdr */
    bool cur_all;    /* the current header is kept in all_off */
    buf_t body;
    /* The body's memory when the owner gave it (body_alloc): ext.cap bytes, the
     * Content-Length, ext.len of them read; the owner's handle for it. */
    buf_t ext;
    void *ext_owner;
    /* The last request's body was larger than SY__HTTP_READ_SIZE: the next
     * request's first read takes SY__HTTP_HEAD_READ bytes only, so that little
     * of its body lands in `in` to be copied into `ext` (on_alloc). */
    bool large_bodies;
    size_t reserved;    /* body bytes counted against the server's budget */
    uint64_t req_start; /* uv_now() at the request's first byte */
    int refuse_status;  /* set by a callback that refuses the request */
    bool refuse_head;   /* ... by the owner's head check */
    const char *refuse_msg;
    syc_http_request_t req;

    buf_t in;      /* a full-size read buffer */
    buf_t pending; /* input after a paused request, from pending_off */
    size_t pending_off;
    buf_t out[2]; /* out[writing_idx] is being written; the other collects */
    int writing_idx;
    bool writing;
    /* TLS: the session (NULL in cleartext), the ciphertext being written (out[]
     * then holds plaintext only) and the plaintext of one decryption. */
    syc_tls_conn_t *tls;
    buf_t tls_out;
    bool writing_tls; /* the write under way is tls_out's */

    int handles_open;
    bool awaiting;     /* a request is with the handler */
    bool in_dispatch;  /* inside the handler call */
    bool paused;       /* parser paused and reading stopped until an answer */
    bool out_blocked;  /* reading stopped until the output drains */
    bool close_after;  /* close once the answers are out */
    bool shutting;     /* write side shut, discarding input */
    bool closing;      /* uv_close called */
    bool in_request;   /* between a request's first byte and its dispatch */
    bool headers_done; /* the request's headers are complete */
    bool refused;      /* over max_connections: answered 503, closing */
};

/* ------------------------------------------------------------------------ */

static bool buf_reserve(buf_t *b, size_t more)
{
    if (more <= b->cap - b->len) return true;
    size_t cap = b->cap ? b->cap : 512;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2) return false;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) return false;
    b->data = p;
    b->cap = cap;
    return true;
}

static bool buf_append(buf_t *b, const void *data, size_t n)
{
    if (!buf_reserve(b, n)) return false;
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    return true;
}

static bool buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (n < 0) return false;
    if ((size_t)n >= b->cap - b->len) {
        if (!buf_reserve(b, (size_t)n + 1)) return false;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return true;
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Request Entity Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

static void guard_fired(syc_http_server_t *s, syc_http_guard_t which)
{
    if (s->limits.guard) s->limits.guard(s->limits.guard_arg, which);
}

/* Gives the request body's bytes back to the budget, and its buffer to the heap
 * when it is large (so that one large request does not pin its memory for the
 * connection's life). */
/* Gives memory the owner lent for a body that will not reach the handler back. */
static void conn_drop_ext(syc_http_conn_t *c)
{
    if (!c->ext_owner) return;
    void *owner = c->ext_owner;
    c->ext_owner = NULL;
    memset(&c->ext, 0, sizeof(c->ext));
    c->server->body_release(c->server->body_arg, owner);
}

static void conn_release_body(syc_http_conn_t *c)
{
    if (c->body.cap > SY__HTTP_KEEP_BODY) {
        free(c->body.data);
        memset(&c->body, 0, sizeof(c->body));
    }
    if (c->reserved) {
        size_t n = c->reserved;
        c->reserved = 0;
        syc_byte_budget_give(&c->server->budget, n, uv_now(c->server->loop));
    }
}

/* ------------------------------------------------------------------------ */
/* Closing                                                                   */
/* ------------------------------------------------------------------------ */

static void server_check_done(syc_http_server_t *s)
{
    if (!s->closing || !s->listener_closed || s->nconns > 0) return;
    void (*done)(void *) = s->done;
    void *arg = s->done_arg;
    free(s);
    if (done) done(arg);
}

static void conn_maybe_free(syc_http_conn_t *c)
{
    if (c->handles_open > 0 || c->awaiting) return;
    syc_http_server_t *s = c->server;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    if (c->refused) s->nrefused--;
    conn_drop_ext(c);
    conn_release_body(c);
    free(c->hdr.data);
    free(c->all_off.data);
    free(c->all_ptrs.data);
    free(c->body.data);
    free(c->in.data);
    free(c->pending.data);
    free(c->out[0].data);
    free(c->out[1].data);
    free(c->tls_out.data);
    syc_tls_conn_free(c->tls);
    free(c);
    server_check_done(s);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    syc_http_conn_t *c = h->data;
    c->handles_open--;
    conn_maybe_free(c);
}

static void conn_close(syc_http_conn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

static void on_drain_timeout(uv_timer_t *t)
{
    conn_close(t->data);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void on_shutdown(uv_shutdown_t *req, int status)
{
    syc_http_conn_t *c = req->data;
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Keep reading (and discarding) until the client closes or the deadline. Reading
     * may have stopped while the last answer was awaited (input after it was kept
     * unparsed): it starts again, or the client's close would go unseen. */
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    uv_timer_start(&c->timer, on_drain_timeout, SY__HTTP_DRAIN_MS, 0);
}

/* ------------------------------------------------------------------------ */
/* Writing                                                                   */
/* ------------------------------------------------------------------------ */

static void conn_flush(syc_http_conn_t *c);
static void conn_resume(syc_http_conn_t *c);

static void on_write(uv_write_t *req, int status)
{
    syc_http_conn_t *c = req->data;
    c->writing = false;
    if (c->writing_tls)
        c->tls_out.len = 0;
    else
        c->out[c->writing_idx].len = 0;
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_flush(c);
    if (c->out_blocked && !c->writing) {
        c->out_blocked = false;
        conn_resume(c);
    }
}

/* TLS: encrypts what was collected (once the handshake is done) and writes the
 * ciphertext, handshake records included. Returns true when a write started or
 * nothing is left to write; false when there is nothing to write at all. */
static bool conn_flush_tls(syc_http_conn_t *c)
{
    int idx = c->writing_idx ^ 1;
    if (c->out[idx].len && syc_tls_conn_established(c->tls)) {
        if (syc_tls_conn_write(c->tls, (const uint8_t *)c->out[idx].data, c->out[idx].len) != 0) {
            conn_close(c);
            return true;
        }
        c->out[idx].len = 0;
    }
    size_t pend = syc_tls_conn_pending(c->tls);
    if (pend == 0) return c->out[idx].len != 0; /* plaintext waits for the handshake */
    if (!buf_reserve(&c->tls_out, pend)) {
        conn_close(c);
        return true;
    }
    c->tls_out.len = syc_tls_conn_take(c->tls, (uint8_t *)c->tls_out.data, pend);
    c->writing = true;
    c->writing_tls = true;
    uv_buf_t b = uv_buf_init(c->tls_out.data, (unsigned)c->tls_out.len);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        c->writing = false;
        conn_close(c);
    }
    return true;
}

/* Starts writing what has been collected, if no write is under way. When all is
 * written and the connection is to close, shuts its write side down. */
static void conn_flush(syc_http_conn_t *c)
{
    if (c->writing || c->closing) return;
    if (c->tls && conn_flush_tls(c)) return;
    int idx = c->writing_idx ^ 1;
    if (c->out[idx].len == 0) {
        if (c->close_after && !c->awaiting && !c->shutting) {
            c->shutting = true;
            c->shutdown_req.data = c;
            if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
                conn_close(c);
        }
        return;
    }
    c->writing_idx = idx;
    uv_buf_t b = uv_buf_init(c->out[idx].data, (unsigned)c->out[idx].len);
    /*
     * Most answers fit in the socket at once: written here, without a write
     * request. A write request that completes makes libuv queue the socket's
     * watcher as changed (it stops POLLOUT, which was never started), and its
     * next poll re-arms the descriptor: one epoll_ctl per answer.
     */
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == (int)b.len) {
        c->out[idx].len = 0;
        if (c->close_after && !c->awaiting && !c->shutting) conn_flush(c); /* shuts down */
        return;
    }
    if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    if (n > 0) { /* the rest when the socket has room */
        b.base += n;
        b.len -= (size_t)n;
    }
    c->writing = true;
    c->writing_tls = false;
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0) {
        c->writing = false;
        conn_close(c);
    }
}

/* Appends one response to the connection's output. */
/* A response to HEAD (head_only) carries the Content-Length of the body it would
 * have had, and no body: RFC 9110 section 9.3.2. */
static void conn_queue_response(syc_http_conn_t *c, int status, const char *content_type,
                                const char *extra_headers, const void *body, size_t body_len,
                                bool head_only)
{
    buf_t *o = &c->out[c->writing_idx ^ 1];
    bool ok = buf_printf(o, "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n", status,
                         reason_phrase(status), body_len);
    if (ok && content_type) ok = buf_printf(o, "Content-Type: %s\r\n", content_type);
    if (ok && extra_headers) ok = buf_append(o, extra_headers, strlen(extra_headers));
    if (ok && c->close_after) ok = buf_append(o, "Connection: close\r\n", 19);
    if (ok) ok = buf_append(o, "\r\n", 2);
    if (ok && !head_only) ok = buf_append(o, body, body_len);
    if (!ok) conn_close(c); /* out of memory: nothing sensible can be sent */
}

/* ------------------------------------------------------------------------ */
/* Parsing                                                                   */
/* ------------------------------------------------------------------------ */

static syc_http_conn_t *conn_of(llhttp_t *p)
{
    return p->data;
}

static int refuse(syc_http_conn_t *c, int status, const char *msg)
{
    c->refuse_status = status;
    c->refuse_msg = msg;
    return HPE_USER;
}

static int count_header_bytes(syc_http_conn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > SY__HTTP_MAX_HEADER_BYTES)
        return refuse(c, 431, "request line and headers are too large");
    return 0;
}

/* The smaller of two bounds where 0 means none. */
static uint64_t min_bound(uint64_t a, uint64_t b)
{
    return !a ? b : !b ? a : a < b ? a : b;
}

static void on_read_deadline(uv_timer_t *t);

/* Arms the connection's timer to fire `limit_ms` after the request's first byte
 * (stops it for 0). */
static void conn_arm_read_deadline(syc_http_conn_t *c, uint64_t limit_ms)
{
    if (!limit_ms) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = uv_now(c->server->loop);
    uint64_t end = c->req_start + limit_ms;
    uv_timer_start(&c->timer, on_read_deadline, end > now ? end - now : 0, 0);
}

static int on_message_begin(llhttp_t *p)
{
    syc_http_conn_t *c = conn_of(p);
    const syc_http_limits_t *lim = &c->server->limits;
    c->in_request = true;
    c->headers_done = false;
    c->req_start = uv_now(c->server->loop);
    conn_arm_read_deadline(c, min_bound(lim->read_header_ms, lim->read_ms));
    c->hdr.len = 0;
    c->body.len = 0;
    c->header_bytes = 0;
    c->url_off = 0;
    c->field_len = 0;
    c->cur_header = -1;
    c->cur_all = false;
    c->all_off.len = 0;
    for (int i = 0; i < HDR_COUNT; i++)
        c->header_off[i] = NO_OFFSET;
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len)
{
    syc_http_conn_t *c = conn_of(p);
    if (count_header_bytes(c, len)) return HPE_USER;
    return buf_append(&c->hdr, at, len) ? 0 : refuse(c, 500, "out of memory");
}

static int on_url_complete(llhttp_t *p)
{
    syc_http_conn_t *c = conn_of(p);
    return buf_append(&c->hdr, "", 1) ? 0 : refuse(c, 500, "out of memory");
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    syc_http_conn_t *c = conn_of(p);
    if (count_header_bytes(c, len)) return HPE_USER;
    for (size_t i = 0; i < len; i++) {
        if (c->field_len < sizeof(c->field) - 1) {
            char ch = at[i];
            c->field[c->field_len] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
        }
        c->field_len++;
    }
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    syc_http_conn_t *c = conn_of(p);
    c->cur_header = -1;
    c->cur_all = false;
    if (c->field_len < sizeof(c->field)) {
        c->field[c->field_len] = '\0';
        for (int i = 0; i < HDR_COUNT; i++)
            if (strcmp(c->field, kept_headers[i]) == 0) c->cur_header = i;
        /* Every header is kept too (its lower-case name first), for an owner that
         * authenticates requests; a name longer than `field` is not. The bytes are
         * bounded by SY__HTTP_MAX_HEADER_BYTES like the rest of the head. */
        if (c->server->keep_all_headers) {
            c->name_off = c->hdr.len;
            if (!buf_append(&c->hdr, c->field, c->field_len + 1))
                return refuse(c, 500, "out of memory");
            c->cur_all = true;
        }
    }
    c->field_len = 0;
    c->value_off = c->hdr.len;
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    syc_http_conn_t *c = conn_of(p);
    if (count_header_bytes(c, len)) return HPE_USER;
    if (c->cur_header < 0 && !c->cur_all) return 0;
    return buf_append(&c->hdr, at, len) ? 0 : refuse(c, 500, "out of memory");
}

static int on_header_value_complete(llhttp_t *p)
{
    syc_http_conn_t *c = conn_of(p);
    if (c->cur_header < 0 && !c->cur_all) return 0;
    if (!buf_append(&c->hdr, "", 1)) return refuse(c, 500, "out of memory");
    if (c->cur_header >= 0)
        c->header_off[c->cur_header] = c->value_off; /* the last of repeated headers wins */
    if (c->cur_all) {
        size_t pair[2] = {c->name_off, c->value_off};
        if (!buf_append(&c->all_off, pair, sizeof(pair))) return refuse(c, 500, "out of memory");
    }
    c->cur_header = -1;
    c->cur_all = false;
    return 0;
}

static const char *hdr_value(syc_http_conn_t *c, int h)
{
    return c->header_off[h] == NO_OFFSET ? NULL : c->hdr.data + c->header_off[h];
}

/* Fills c->req from what was parsed; valid until the answer. */
static void build_request(syc_http_conn_t *c)
{
    syc_http_request_t *r = &c->req;
    memset(r, 0, sizeof(*r));
    r->method = llhttp_method_name((llhttp_method_t)llhttp_get_method(&c->parser));
    if (c->hdr.len > 0) {
        char *url = c->hdr.data + c->url_off;
        char *q = strchr(url, '?');
        if (q) {
            *q = '\0';
            r->query = q + 1;
        }
        r->path = url;
    } else {
        r->path = "";
    }
    r->content_type = hdr_value(c, HDR_CONTENT_TYPE);
    r->content_encoding = hdr_value(c, HDR_CONTENT_ENCODING);
    r->accept = hdr_value(c, HDR_ACCEPT);
    r->origin = hdr_value(c, HDR_ORIGIN);
    r->access_control_request_method = hdr_value(c, HDR_ACR_METHOD);
    r->access_control_request_headers = hdr_value(c, HDR_ACR_HEADERS);
    r->body = (const uint8_t *)(c->ext_owner ? c->ext.data : c->body.data);
    r->body_len = c->ext_owner ? c->ext.len : c->body.len;
    r->conn = c;
    /* hdr no longer grows: its offsets become pointers. */
    size_t n = c->all_off.len / (2 * sizeof(size_t));
    if (n && buf_reserve(&c->all_ptrs, n * 2 * sizeof(char *))) {
        const size_t *off = (const size_t *)(void *)c->all_off.data;
        const char **ptrs = (const char **)(void *)c->all_ptrs.data;
        for (size_t i = 0; i < 2 * n; i++)
            ptrs[i] = c->hdr.data + off[i];
        r->headers = ptrs;
        r->nheaders = n;
    }
}

static int on_headers_complete(llhttp_t *p)
{
    syc_http_conn_t *c = conn_of(p);
    size_t max = c->server->max_body;
    /* The owner's look at the head (authentication) comes first: a request it
     * refuses has none of its body read or counted. */
    if (c->server->head_check) {
        build_request(c);
        int status = c->server->head_check(c->server->head_arg, &c->req);
        /* build_request() cut the query off the path; put it back for the next. */
        if (c->req.query) ((char *)c->req.query)[-1] = '?';
        if (status) {
            c->refuse_head = true;
            return refuse(c, status, "refused before its body");
        }
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > max)
        return refuse(c, 413, "request body is too large");
    c->headers_done = true;
    /* The announced body counts from now, before a byte of it is read. */
    if (p->flags & F_CONTENT_LENGTH) {
        if (!syc_byte_budget_take(&c->server->budget, (size_t)p->content_length)) {
            guard_fired(c->server, SYC_HTTP_GUARD_INFLIGHT);
            return refuse(c, 503, "too many request bytes in flight (max_inflight_bytes)");
        }
        c->reserved = (size_t)p->content_length;
    }
    c->large_bodies = (p->flags & F_CONTENT_LENGTH) && p->content_length > SY__HTTP_READ_SIZE;
    conn_arm_read_deadline(c, c->server->limits.read_ms);
    const char *expect = hdr_value(c, HDR_EXPECT);
    if (expect && strcasecmp(expect, "100-continue") == 0) {
        buf_t *o = &c->out[c->writing_idx ^ 1];
        if (!buf_append(o, "HTTP/1.1 100 Continue\r\n\r\n", 25)) return refuse(c, 500, "oom");
        conn_flush(c);
    }
    /* The owner's memory for a body it keeps; else room for the whole announced
     * body at once, reused by later requests. */
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0 && c->server->body_alloc &&
        !c->tls) {
        build_request(c);
        void *owner = NULL;
        char *mem =
            c->server->body_alloc(c->server->body_arg, &c->req, (size_t)p->content_length, &owner);
        if (c->req.query) ((char *)c->req.query)[-1] = '?'; /* for the dispatch's build */
        if (mem && owner) {
            c->ext = (buf_t){mem, 0, (size_t)p->content_length};
            c->ext_owner = owner;
            return 0;
        }
    }
    if ((p->flags & F_CONTENT_LENGTH) && !buf_reserve(&c->body, (size_t)p->content_length))
        return refuse(c, 500, "out of memory");
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    syc_http_conn_t *c = conn_of(p);
    if (len > c->server->max_body - c->body.len) return refuse(c, 413, "request body is too large");
    /* A chunked body counts as it arrives. */
    if (!(p->flags & F_CONTENT_LENGTH)) {
        if (!syc_byte_budget_take(&c->server->budget, len)) {
            guard_fired(c->server, SYC_HTTP_GUARD_INFLIGHT);
            return refuse(c, 503, "too many request bytes in flight (max_inflight_bytes)");
        }
        c->reserved += len;
    }
    if (c->ext_owner) {
        /* Read straight into it (on_alloc), or a part that came with the headers. */
        if (len > c->ext.cap - c->ext.len) return refuse(c, 413, "request body is too large");
        if (at != c->ext.data + c->ext.len) memcpy(c->ext.data + c->ext.len, at, len);
        c->ext.len += len;
        return 0;
    }
    return buf_append(&c->body, at, len) ? 0 : refuse(c, 500, "out of memory");
}

static int on_message_complete(llhttp_t *p)
{
    (void)p;
    return HPE_PAUSED; /* handled by conn_process() once llhttp_execute returns */
}

/* Answers a request the server refuses itself and closes the connection. */
static void conn_refuse(syc_http_conn_t *c, int status, const char *msg, bool headers_known)
{
    c->close_after = true;
    conn_drop_ext(c); /* the body will not reach the handler */
    if (headers_known && c->server->error_handler) {
        build_request(c);
        c->req.body = NULL;
        c->req.body_len = 0;
        c->awaiting = true;
        c->in_dispatch = true;
        c->server->error_handler(c->server->error_arg, &c->req, status, msg);
        c->in_dispatch = false;
        if (!c->awaiting) return; /* answered */
        c->awaiting = false;
    }
    char body[160];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, msg);
    conn_queue_response(c, status, "text/plain; charset=utf-8",
                        status == 503 ? "Retry-After: 1\r\n" : NULL, body, (size_t)n, false);
    conn_flush(c);
}

/* Keeps unparsed input for later (it may already be in `pending`). */
static bool conn_keep_pending(syc_http_conn_t *c, const char *data, size_t len)
{
    buf_t *pb = &c->pending;
    if (pb->data && data >= pb->data && data <= pb->data + pb->len) {
        c->pending_off = (size_t)(data - pb->data);
        return true;
    }
    pb->len = 0;
    c->pending_off = 0;
    return buf_append(pb, data, len);
}

/* Parses input, dispatching each complete request in turn. */
static void conn_process(syc_http_conn_t *c, const char *data, size_t len)
{
    while (!c->closing && !c->close_after) {
        llhttp_errno_t e = llhttp_execute(&c->parser, data, len);
        if (e == HPE_OK) {
            if (c->pending.data && data >= c->pending.data &&
                data <= c->pending.data + c->pending.len)
                c->pending.len = c->pending_off = 0;
            return;
        }
        if (e != HPE_PAUSED) {
            bool headers_known =
                c->refuse_status == 413 || c->refuse_status == 503 || c->refuse_head;
            if (!headers_known) guard_fired(c->server, SYC_HTTP_GUARD_MALFORMED);
            if (c->refuse_status)
                conn_refuse(c, c->refuse_status, c->refuse_msg, headers_known);
            else if (e == HPE_PAUSED_H2_UPGRADE) /* the HTTP/2 preface */
                conn_refuse(c, 505, "HTTP/2 is not served on this port, only HTTP/1.1", false);
            else if (e == HPE_INVALID_VERSION)
                conn_refuse(c, 505, "HTTP version not supported, only HTTP/1.x", false);
            else
                conn_refuse(c, 400, llhttp_get_error_reason(&c->parser), false);
            return;
        }
        const char *pos = llhttp_get_error_pos(&c->parser);
        size_t used = pos ? (size_t)(pos - data) : len;
        data += used;
        len -= used;

        c->in_request = false;
        uv_timer_stop(&c->timer); /* the handler has it; idle again once answered */
        build_request(c);
        if (c->ext_owner) { /* the body's memory is the handler's now */
            c->req.body_owner = c->ext_owner;
            c->ext_owner = NULL;
            memset(&c->ext, 0, sizeof(c->ext));
        }
        if (!llhttp_should_keep_alive(&c->parser)) c->close_after = true;
        if (c->server->closing) c->close_after = true;
        c->awaiting = true;
        c->in_dispatch = true;
        c->server->handler(c->server->arg, &c->req);
        c->in_dispatch = false;
        if (c->closing) return;
        llhttp_resume(&c->parser);
        if (c->awaiting || c->out[c->writing_idx ^ 1].len > SY__HTTP_OUT_HIGH) {
            /* Wait for the answer (or for the output to drain) before parsing on. */
            if (c->awaiting)
                c->paused = true;
            else
                c->out_blocked = true;
            if (len > 0 && !conn_keep_pending(c, data, len)) {
                conn_close(c);
                return;
            }
            if (len == 0) c->pending.len = c->pending_off = 0;
            uv_read_stop((uv_stream_t *)&c->tcp);
            return;
        }
        if (len == 0) {
            if (c->pending.data && data >= c->pending.data &&
                data <= c->pending.data + c->pending.len)
                c->pending.len = c->pending_off = 0;
            return;
        }
    }
}

/* Continues after an answer or drained output: parses what was kept, then reads. */
static void conn_resume(syc_http_conn_t *c)
{
    if (c->closing || c->paused || c->out_blocked || c->shutting) return;
    if (c->pending.len > c->pending_off) {
        conn_process(c, c->pending.data + c->pending_off, c->pending.len - c->pending_off);
        if (c->closing || c->paused || c->out_blocked || c->close_after) return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_idle_timeout(uv_timer_t *t)
{
    syc_http_conn_t *c = t->data;
    if (c->awaiting || c->in_request || c->close_after) return;
    guard_fired(c->server, SYC_HTTP_GUARD_IDLE);
    conn_close(c);
}

static void conn_arm_idle(syc_http_conn_t *c)
{
    if (c->server->limits.idle_ms)
        uv_timer_start(&c->timer, on_idle_timeout, c->server->limits.idle_ms, 0);
    else
        uv_timer_stop(&c->timer);
}

/* A request did not arrive in time: 408, then the connection closes. */
static void on_read_deadline(uv_timer_t *t)
{
    syc_http_conn_t *c = t->data;
    if (c->awaiting || !c->in_request || c->close_after || c->closing) return;
    bool headers_known = c->headers_done;
    guard_fired(c->server,
                headers_known ? SYC_HTTP_GUARD_BODY_TIMEOUT : SYC_HTTP_GUARD_HEADER_TIMEOUT);
    c->in_request = false;
    conn_refuse(c, 408,
                headers_known ? "request body not received within read_timeout"
                              : "request headers not received within read_header_timeout",
                headers_known);
    conn_release_body(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    syc_http_conn_t *c = h->data;
    if (c->ext_owner && c->ext.len < c->ext.cap) {
        /* The rest of a body the owner keeps, straight where it stays; no more,
         * so that a pipelined request's bytes do not land in it. */
        size_t room = c->ext.cap - c->ext.len;
        *buf = uv_buf_init(c->ext.data + c->ext.len, (unsigned)(room < UINT_MAX ? room : UINT_MAX));
        return;
    }
    if (!c->in.data) {
        c->in.data = malloc(SY__HTTP_READ_SIZE);
        c->in.cap = c->in.data ? SY__HTTP_READ_SIZE : 0;
    }
    size_t cap = c->large_bodies && c->in.cap > SY__HTTP_HEAD_READ ? SY__HTTP_HEAD_READ : c->in.cap;
    *buf = uv_buf_init(c->in.data, (unsigned)cap);
}

/*
 * TLS: hands ciphertext to the session and parses all the plaintext it gives,
 * then writes what the session has to say (handshake records, answers). The
 * plaintext is drained in full even when a request pauses the parser, into the
 * pending buffer that conn_resume() parses later, since the session would not
 * hand it over again once the socket stops reading.
 */
static void conn_read_tls(syc_http_conn_t *c, const uint8_t *data, size_t len)
{
    static __thread uint8_t plain[16384];
    char err[256];
    if (syc_tls_conn_feed(c->tls, data, len) != 0) {
        conn_close(c);
        return;
    }
    for (;;) {
        ssize_t n = syc_tls_conn_read(c->tls, plain, sizeof(plain), err, sizeof(err));
        if (n < 0) {
            conn_flush(c); /* an alert, if the session made one */
            conn_close(c);
            return;
        }
        if (n == 0) break;
        if (c->closing) return;
        if (c->paused || c->out_blocked || c->close_after) {
            /* Kept for conn_resume(), after what an earlier pause kept. */
            if (!c->close_after && !buf_append(&c->pending, plain, (size_t)n)) {
                conn_close(c);
                return;
            }
            continue;
        }
        conn_process(c, (const char *)plain, (size_t)n);
    }
    conn_flush(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    syc_http_conn_t *c = stream->data;
    if (c->closing) return;
    if (nread < 0) {
        if (nread == UV_EOF && c->in_request && !c->awaiting && !c->close_after && !c->tls) {
            /* The client ended its side within a request: it may still read the 400. */
            guard_fired(c->server, SYC_HTTP_GUARD_MALFORMED);
            c->in_request = false;
            uv_read_stop(stream);
            conn_refuse(c, 400, "the request ended before it was complete", c->headers_done);
            conn_release_body(c);
            return;
        }
        /* End of input or an error: a request with the handler is answered into
         * the void (syc_http_respond() then frees the connection). */
        conn_close(c);
        return;
    }
    if (nread == 0) return;
    if (c->shutting) return; /* discarding input until the client closes */
    /* No timer is restarted here: deadlines run from a request's first byte. */
    if (c->tls) {
        conn_read_tls(c, (const uint8_t *)c->in.data, (size_t)nread);
        return;
    }
    conn_process(c, buf->base, (size_t)nread); /* c->in, or a body read in place */
}

static void on_connection(uv_stream_t *listener, int status)
{
    syc_http_server_t *s = listener->data;
    if (status < 0 || s->closing) return;
    syc_http_conn_t *c = calloc(1, sizeof(*c));
    if (!c) return;
    c->server = s;
    c->writing_idx = 0;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (s->tls && !(c->tls = syc_tls_conn_new(s->tls))) {
        conn_close(c);
        return;
    }
    llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
    c->parser.data = c;
    size_t active = s->nconns - 1 - s->nrefused;
    if (s->limits.max_connections && active >= s->limits.max_connections) {
        guard_fired(s, SYC_HTTP_GUARD_MAX_CONNECTIONS);
        if (s->nrefused >= s->limits.max_connections) {
            conn_close(c); /* a flood: not even an answer */
            return;
        }
        /* Answered at once, then closed like any refused request. */
        c->refused = true;
        s->nrefused++;
        c->close_after = true;
        static const char msg[] = "503 too many connections (max_connections); retry later\n";
        conn_queue_response(c, 503, "text/plain; charset=utf-8", "Retry-After: 1\r\n", msg,
                            sizeof(msg) - 1, false);
        conn_flush(c);
        if (!c->closing && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
            conn_close(c);
        return;
    }
    conn_arm_idle(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) conn_close(c);
}

/* ------------------------------------------------------------------------ */
/* Public functions                                                          */
/* ------------------------------------------------------------------------ */

void syc_http_respond(syc_http_request_t *req, int status, const char *content_type,
                      const char *extra_headers, const void *body, size_t body_len)
{
    syc_http_conn_t *c = req->conn;
    if (!c || !c->awaiting) return; /* answered already */
    c->awaiting = false;
    if (c->closing) {
        conn_maybe_free(c);
        return;
    }
    conn_release_body(c);
    conn_arm_idle(c);
    if (c->server->closing) c->close_after = true;
    bool head_only = req->method && strcmp(req->method, "HEAD") == 0;
    conn_queue_response(c, status, content_type, extra_headers, body, body_len, head_only);
    conn_flush(c);
    if (!c->in_dispatch) {
        c->paused = false;
        conn_resume(c);
    }
}

int syc_http_endpoint_check(const char *endpoint, char *err, size_t err_len)
{
    char host[256];
    int port;
    return syc_endpoint_split(endpoint, host, sizeof(host), &port, err, err_len) == 0 ? 0 : -1;
}

static void on_listener_closed(uv_handle_t *h)
{
    syc_http_server_t *s = h->data;
    s->listener_closed = true;
    server_check_done(s);
}

syc_http_server_t *syc_http_server_start(uv_loop_t *loop, const char *endpoint, size_t max_body,
                                         syc_http_handler_fn handler, void *arg, char *err,
                                         size_t err_len)
{
    struct sockaddr_storage addr;
    char shown[300];
    if (syc_endpoint_resolve(loop, endpoint, &addr, shown, sizeof(shown), err, err_len) != 0)
        return NULL;
    syc_http_server_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->loop = loop;
    s->max_body = max_body;
    s->limits.read_header_ms = SY__HTTP_READ_HEADER_MS;
    s->limits.read_ms = SY__HTTP_READ_MS;
    s->handler = handler;
    s->arg = arg;
    llhttp_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_url_complete = on_url_complete;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_field_complete = on_header_field_complete;
    s->settings.on_header_value = on_header_value;
    s->settings.on_header_value_complete = on_header_value_complete;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;

    int rc = uv_tcp_init(loop, &s->listener);
    if (rc != 0) {
        snprintf(err, err_len, "listen tcp %s: %s", shown, uv_strerror(rc));
        free(s);
        return NULL;
    }
    s->listener.data = s;
    const char *stage = "bind";
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0) {
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
        /* libuv reports some bind errors only when listening. */
        if (rc != 0 && rc != UV_EADDRINUSE && rc != UV_EACCES && rc != UV_EADDRNOTAVAIL)
            stage = "listen";
    }
    if (rc != 0) {
        snprintf(err, err_len, "listen tcp %s: %s: %s", shown, stage, uv_strerror(rc));
        s->closing = true;
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        return NULL;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &blen) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    return s;
}

int syc_http_server_port(const syc_http_server_t *server)
{
    return server->port;
}

void syc_http_server_set_error_handler(syc_http_server_t *server, syc_http_error_fn fn, void *arg)
{
    server->error_handler = fn;
    server->error_arg = arg;
}

void syc_http_server_set_body_alloc(syc_http_server_t *server, syc_http_body_alloc_fn alloc,
                                    syc_http_body_release_fn release, void *arg)
{
    server->body_alloc = alloc;
    server->body_release = release;
    server->body_arg = arg;
}

void syc_http_server_set_head_check(syc_http_server_t *server, syc_http_head_fn fn, void *arg)
{
    server->head_check = fn;
    server->head_arg = arg;
}

void syc_http_server_set_tls(syc_http_server_t *server, syc_tls_ctx_t *ctx)
{
    server->tls = ctx;
}

void syc_http_server_keep_all_headers(syc_http_server_t *server, bool on)
{
    server->keep_all_headers = on;
}

void syc_http_server_set_idle_timeout(syc_http_server_t *server, uint64_t ms)
{
    server->limits.idle_ms = ms;
}

void syc_http_server_set_limits(syc_http_server_t *server, const syc_http_limits_t *limits)
{
    server->limits = *limits;
    server->budget.limit = limits->max_inflight_bytes;
}

size_t syc_http_server_inflight(const syc_http_server_t *server)
{
    return server->budget.used;
}

void syc_http_server_close(syc_http_server_t *server, void (*done)(void *arg), void *arg)
{
    server->closing = true;
    server->done = done;
    server->done_arg = arg;
    uv_close((uv_handle_t *)&server->listener, on_listener_closed);
    for (syc_http_conn_t *c = server->conns; c; c = c->next)
        conn_close(c);
}
