/*
 * loadgen_grpc.c - the OTLP/gRPC transport of loadgen: HTTP/2 over cleartext TCP
 * with prior knowledge (h2c, as gRPC clients speak it) through nghttp2's client
 * session, unary calls of
 *
 *   POST /opentelemetry.proto.collector.trace.v1.TraceService/Export
 *   content-type: application/grpc, te: trailers [, grpc-encoding: gzip]
 *
 * whose DATA is the gRPC message: a 5-byte prefix (compressed flag, big-endian
 * length) and the pre-encoded request of the payload set. The answer is read for
 * :status and the grpc-status trailer (or the trailers-only HEADERS of an error);
 * the response message itself is discarded.
 *
 * Connections and streams: one TCP connection (a "session" here) carries one or
 * more lg_conn_t, each a stream slot with at most one call in flight
 * (conn_open makes the session and its first slot, conn_share adds slots), so
 * `--connections N --streams S` keeps N x S calls in flight on N connections.
 *
 * Writes: nghttp2_session_send() hands frames to send_cb() and, for DATA, to
 * send_data_cb() (NGHTTP2_DATA_FLAG_NO_COPY), which copy them into the
 * session's one output buffer; that buffer is written with a single uv_write,
 * and nothing more is taken from nghttp2 until that write completes, so the
 * buffer stays under OUT_CAP plus one frame. Submitting a call only schedules a
 * flush (an idle handle), so the calls submitted in one loop turn go out in one
 * write, and a failure never re-enters the driver from inside its own send.
 *
 * Memory: the session's buffers grow during the first calls and are reused;
 * nghttp2's own per-stream objects come from a free-list allocator owned by the
 * client (pool_*), so a steady run makes no malloc per call. A session that
 * breaks reports the calls in flight as LG_ERROR, closes, and reconnects after
 * RECONNECT_MS.
 *
 * Threading: everything runs on the driver's loop.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "loadgen_transport.h"

#define RECONNECT_MS   10
#define READ_BUF       (64u * 1024u)
#define OUT_CAP        (256u * 1024u) /* output taken from nghttp2 per write, plus a frame */
#define STREAM_WINDOW  (1u << 20)     /* our receive window: answers are small */
#define GRPC_PREFIX    5
#define DEFAULT_PATH   "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define MAX_AUTHORITY  300
#define POOL_CLASSES   13 /* free lists for blocks of 16 B .. 64 KiB */
#define POOL_MIN_SHIFT 4

/* ------------------------------------------------------------------------ */
/* A free-list allocator for nghttp2                                         */
/* ------------------------------------------------------------------------ */

/* Each block carries its size class in a header of 16 bytes (keeping the
 * alignment malloc gives); freed blocks of a class are kept for reuse, larger
 * blocks go straight to malloc and free. One thread: the loop's. */
typedef union pool_hdr_u {
    union pool_hdr_u *next; /* while free */
    unsigned cls;           /* while in use: the class, or POOL_CLASSES when unpooled */
    max_align_t align;
} pool_hdr_t;

typedef struct pool_s {
    pool_hdr_t *free[POOL_CLASSES];
} pool_t;

static unsigned pool_class(size_t size)
{
    unsigned cls = 0;
    while (cls < POOL_CLASSES && ((size_t)1 << (cls + POOL_MIN_SHIFT)) < size)
        cls++;
    return cls;
}

static void *pool_malloc(size_t size, void *user)
{
    pool_t *pool = user;
    unsigned cls = pool_class(size);
    pool_hdr_t *h;
    if (cls < POOL_CLASSES && pool->free[cls]) {
        h = pool->free[cls];
        pool->free[cls] = h->next;
    } else {
        size_t cap = cls < POOL_CLASSES ? (size_t)1 << (cls + POOL_MIN_SHIFT) : size;
        if (cap > SIZE_MAX - sizeof(*h) || !(h = malloc(sizeof(*h) + cap))) return NULL;
    }
    h->cls = cls;
    return h + 1;
}

static void pool_free(void *ptr, void *user)
{
    pool_t *pool = user;
    if (!ptr) return;
    pool_hdr_t *h = (pool_hdr_t *)ptr - 1;
    unsigned cls = h->cls;
    if (cls >= POOL_CLASSES) {
        free(h);
        return;
    }
    h->next = pool->free[cls];
    pool->free[cls] = h;
}

static void *pool_calloc(size_t n, size_t size, void *user)
{
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = pool_malloc(n * size, user);
    if (p) memset(p, 0, n * size);
    return p;
}

static void *pool_realloc(void *ptr, size_t size, void *user)
{
    if (!ptr) return pool_malloc(size, user);
    pool_hdr_t *h = (pool_hdr_t *)ptr - 1;
    if (h->cls < POOL_CLASSES && size <= (size_t)1 << (h->cls + POOL_MIN_SHIFT)) return ptr;
    if (h->cls >= POOL_CLASSES) {
        pool_hdr_t *n = realloc(h, sizeof(*h) + size);
        return n ? n + 1 : NULL;
    }
    void *p = pool_malloc(size, user);
    if (!p) return NULL;
    memcpy(p, ptr, (size_t)1 << (h->cls + POOL_MIN_SHIFT));
    pool_free(ptr, user);
    return p;
}

static void pool_destroy(pool_t *pool)
{
    for (unsigned i = 0; i < POOL_CLASSES; i++) {
        while (pool->free[i]) {
            pool_hdr_t *h = pool->free[i];
            pool->free[i] = h->next;
            free(h);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Client, session and stream slots                                          */
/* ------------------------------------------------------------------------ */

struct lg_client_s {
    uv_loop_t *loop;
    const lg_target_t *target;
    lg_events_t events;
    const lg_payload_set_t *set;
    uint8_t (*prefixes)[GRPC_PREFIX]; /* the gRPC message prefix of each payload */
    char path[sizeof(((lg_target_t *)0)->path)];
    char authority[MAX_AUTHORITY];
    nghttp2_nv nv[8]; /* the request headers, the same for every call */
    size_t nv_len;
    nghttp2_session_callbacks *callbacks;
    nghttp2_mem mem;
    pool_t pool;
};

typedef struct session_s session_t;

/* One stream slot. Owned by its session and freed with it, so nghttp2's stream
 * user data never dangles. */
struct lg_conn_s {
    session_t *s;
    void *user;
    const lg_payload_t *p; /* the call in flight */
    size_t sent;           /* bytes of its gRPC message (prefix + body) sent */
    int32_t stream_id;
    int http_status; /* -1 until read */
    int grpc_status; /* -1 until read */
    bool in_flight;
    bool closed; /* conn_close was called */
};

struct session_s {
    lg_client_t *client;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_timer_t retry;
    uv_idle_t kick; /* a flush (or a deferred break) at the next loop turn */
    nghttp2_session *ng;
    lg_conn_t **slots;
    unsigned nslots, open_slots;
    uint8_t *out; /* frames taken from nghttp2, written as one buffer */
    size_t out_len, out_cap;
    const char *pending_break; /* a break decided where it could not be done */
    bool tcp_open;             /* tcp is initialised and not closed */
    bool connected;            /* the HTTP/2 session is up */
    bool writing;              /* write_req is in use */
    bool finishing;            /* every slot was closed: do not reconnect */
    int open_handles;
    uint8_t rbuf[READ_BUF];
};

static void start_connect(session_t *s);
static void flush(session_t *s);

static void maybe_free(session_t *s)
{
    if (!s->finishing || s->open_handles > 0) return;
    for (unsigned i = 0; i < s->nslots; i++)
        free(s->slots[i]);
    free(s->slots);
    free(s->out);
    free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
    session_t *s = h->data;
    s->open_handles--;
    maybe_free(s);
}

static void on_retry(uv_timer_t *t)
{
    start_connect(t->data);
}

static void on_tcp_closed(uv_handle_t *h)
{
    session_t *s = h->data;
    s->open_handles--;
    /* nghttp2 is deleted only here, never inside one of its callbacks. */
    if (s->ng) {
        nghttp2_session_del(s->ng);
        s->ng = NULL;
    }
    if (s->finishing) {
        maybe_free(s);
        return;
    }
    uv_timer_start(&s->retry, on_retry, RECONNECT_MS, 0);
}

/* Drops the connection: the calls in flight failed. Reconnects unless finishing.
 * Not called from inside nghttp2 or from the driver's send (it re-enters the
 * driver through on_done). */
static void conn_break(session_t *s, const char *message)
{
    if (!s->tcp_open) return;
    s->tcp_open = false;
    s->connected = false;
    s->pending_break = NULL;
    uv_idle_stop(&s->kick);
    bool told = false;
    for (unsigned i = 0; i < s->nslots; i++) {
        lg_conn_t *c = s->slots[i];
        if (c->closed) continue;
        if (c->in_flight) {
            c->in_flight = false;
            s->client->events.on_done(c->user, LG_ERROR, 0);
        } else if (!told && !s->finishing) {
            told = true;
            s->client->events.on_conn_error(c->user, message);
        }
    }
    uv_close((uv_handle_t *)&s->tcp, on_tcp_closed);
}

static void on_kick(uv_idle_t *h)
{
    session_t *s = h->data;
    uv_idle_stop(h);
    if (s->pending_break) {
        conn_break(s, s->pending_break);
        return;
    }
    flush(s);
}

static void schedule_flush(session_t *s)
{
    if (!s->finishing) uv_idle_start(&s->kick, on_kick);
}

static void on_write(uv_write_t *req, int status)
{
    session_t *s = req->data;
    s->writing = false;
    s->out_len = 0;
    if (status < 0) {
        conn_break(s, uv_strerror(status));
        return;
    }
    flush(s);
}

/* Takes what nghttp2 has to send (up to OUT_CAP) and writes it, unless a write
 * is already in flight: its completion flushes again. */
static void flush(session_t *s)
{
    if (!s->connected || s->writing || s->finishing || !s->ng) return;
    int rc = nghttp2_session_send(s->ng);
    if (rc != 0) {
        conn_break(s, nghttp2_strerror(rc));
        return;
    }
    if (s->out_len > 0) {
        uv_buf_t buf = uv_buf_init((char *)s->out, (unsigned)s->out_len);
        s->writing = true;
        rc = uv_write(&s->write_req, (uv_stream_t *)&s->tcp, &buf, 1, on_write);
        if (rc < 0) {
            s->writing = false;
            s->out_len = 0;
            conn_break(s, uv_strerror(rc));
        }
        return;
    }
    if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng))
        conn_break(s, "the server ended the HTTP/2 session (GOAWAY)");
}

/* Makes room for n more bytes of output. Returns 0 or -1. */
static int out_reserve(session_t *s, size_t n)
{
    if (s->out_len + n <= s->out_cap) return 0;
    size_t cap = s->out_cap ? s->out_cap : 64u * 1024u;
    while (cap < s->out_len + n)
        cap *= 2;
    uint8_t *p = realloc(s->out, cap);
    if (!p) return -1;
    s->out = p;
    s->out_cap = cap;
    return 0;
}

static ssize_t send_cb(nghttp2_session *ng, const uint8_t *data, size_t len, int flags, void *user)
{
    session_t *s = user;
    (void)ng;
    (void)flags;
    if (s->out_len >= OUT_CAP) return NGHTTP2_ERR_WOULDBLOCK;
    if (out_reserve(s, len) < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(s->out + s->out_len, data, len);
    s->out_len += len;
    return (ssize_t)len;
}

/* The length of the next DATA frame of a call; send_data_cb writes it. */
static ssize_t data_read_cb(nghttp2_session *ng, int32_t stream_id, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user)
{
    const lg_conn_t *c = source->ptr;
    (void)ng;
    (void)stream_id;
    (void)buf;
    (void)user;
    size_t left = GRPC_PREFIX + c->p->len - c->sent;
    size_t n = left < length ? left : length;
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == left) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Copies a DATA frame: nghttp2's 9-byte frame header, then `length` bytes of
 * the call's message from where the last frame ended. */
static int send_data_cb(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user)
{
    session_t *s = user;
    lg_conn_t *c = source->ptr;
    (void)ng;
    if (frame->data.padlen > 0) return NGHTTP2_ERR_CALLBACK_FAILURE; /* never asked for */
    if (s->out_len >= OUT_CAP) return NGHTTP2_ERR_WOULDBLOCK;
    if (length > GRPC_PREFIX + c->p->len - c->sent) return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (out_reserve(s, 9 + length) < 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    uint8_t *dst = s->out + s->out_len;
    memcpy(dst, framehd, 9);
    dst += 9;
    size_t n = length;
    if (c->sent < GRPC_PREFIX) {
        size_t k = GRPC_PREFIX - c->sent < n ? GRPC_PREFIX - c->sent : n;
        memcpy(dst, s->client->prefixes[c->p->index] + c->sent, k);
        dst += k;
        c->sent += k;
        n -= k;
    }
    memcpy(dst, c->p->body + (c->sent - GRPC_PREFIX), n);
    c->sent += n;
    s->out_len += 9 + length;
    return 0;
}

/* A slot of this session whose call is the stream, or NULL. */
static lg_conn_t *stream_slot(nghttp2_session *ng, int32_t stream_id)
{
    lg_conn_t *c = nghttp2_session_get_stream_user_data(ng, stream_id);
    if (!c || c->closed || !c->in_flight || c->stream_id != stream_id) return NULL;
    return c;
}

/* A small non-negative decimal, or -1. */
static int parse_code(const uint8_t *v, size_t len)
{
    if (len == 0 || len > 4) return -1;
    int code = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') return -1;
        code = code * 10 + (v[i] - '0');
    }
    return code;
}

static int on_header_cb(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user)
{
    (void)flags;
    (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    lg_conn_t *c = stream_slot(ng, frame->hd.stream_id);
    if (!c) return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        c->http_status = parse_code(value, valuelen);
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        c->grpc_status = parse_code(value, valuelen);
    return 0;
}

/* How a finished call went, from its grpc-status or, without one, its HTTP
 * status mapped as gRPC clients map it (429, 502, 503, 504: UNAVAILABLE). */
static lg_outcome_t call_outcome(const lg_conn_t *c, uint32_t error_code, int *status)
{
    if (c->grpc_status >= 0) {
        *status = c->grpc_status;
        if (c->grpc_status == 0) return LG_ACCEPTED;
        if (c->grpc_status == 8 || c->grpc_status == 14) return LG_REFUSED;
        return LG_FAILED;
    }
    *status = c->http_status > 0 ? c->http_status : 0;
    if (c->http_status == 429 || (c->http_status >= 502 && c->http_status <= 504))
        return LG_REFUSED;
    if (c->http_status > 0) return LG_FAILED; /* answered without a grpc-status */
    if (error_code == NGHTTP2_REFUSED_STREAM) return LG_REFUSED; /* not processed */
    return LG_ERROR;
}

static int on_stream_close_cb(nghttp2_session *ng, int32_t stream_id, uint32_t error_code,
                              void *user)
{
    session_t *s = user;
    lg_conn_t *c = stream_slot(ng, stream_id);
    if (!c) return 0;
    int status;
    lg_outcome_t outcome = call_outcome(c, error_code, &status);
    c->in_flight = false;
    s->client->events.on_done(c->user, outcome, status);
    /* on_done may have ended the run and closed this slot. */
    if (!c->closed && s->connected && !s->finishing) s->client->events.on_idle(c->user);
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    session_t *s = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)s->rbuf, sizeof(s->rbuf));
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    session_t *s = stream->data;
    if (nread == 0) return;
    if (nread < 0) {
        conn_break(s,
                   nread == UV_EOF ? "the server closed the connection" : uv_strerror((int)nread));
        return;
    }
    if (!s->ng) return;
    ssize_t rc = nghttp2_session_mem_recv(s->ng, (const uint8_t *)buf->base, (size_t)nread);
    if (rc < 0) {
        conn_break(s, nghttp2_strerror((int)rc));
        return;
    }
    /* Settings acknowledgements, window updates and the calls submitted by the
     * callbacks above go out now. */
    flush(s);
}

static void on_connect(uv_connect_t *req, int status)
{
    session_t *s = req->data;
    if (status < 0) {
        if (status != UV_ECANCELED) conn_break(s, uv_strerror(status));
        return;
    }
    if (!s->tcp_open) return;
    lg_client_t *cl = s->client;
    const char *failed = NULL;
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
    };
    int rc = nghttp2_session_client_new3(&s->ng, cl->callbacks, s, NULL, &cl->mem);
    if (rc == 0)
        rc = nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, settings,
                                     sizeof(settings) / sizeof(settings[0]));
    if (rc != 0) failed = nghttp2_strerror(rc);
    if (!failed && (rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read)) < 0)
        failed = uv_strerror(rc);
    if (failed) {
        conn_break(s, failed);
        return;
    }
    s->connected = true;
    flush(s); /* the connection preface and our SETTINGS */
    for (unsigned i = 0; i < s->nslots && s->connected && !s->finishing; i++)
        if (!s->slots[i]->closed) cl->events.on_idle(s->slots[i]->user);
}

static void start_connect(session_t *s)
{
    if (s->finishing) return;
    lg_client_t *cl = s->client;
    int rc = uv_tcp_init(cl->loop, &s->tcp);
    if (rc < 0) {
        for (unsigned i = 0; i < s->nslots; i++)
            if (!s->slots[i]->closed) {
                cl->events.on_conn_error(s->slots[i]->user, uv_strerror(rc));
                break;
            }
        uv_timer_start(&s->retry, on_retry, RECONNECT_MS * 10, 0);
        return;
    }
    s->tcp.data = s;
    s->tcp_open = true;
    s->open_handles++;
    uv_tcp_nodelay(&s->tcp, 1);
    rc = uv_tcp_connect(&s->connect_req, &s->tcp, (const struct sockaddr *)&cl->target->addr,
                        on_connect);
    if (rc < 0) conn_break(s, uv_strerror(rc));
}

static int grpc_send(lg_conn_t *c, const lg_payload_t *p)
{
    session_t *s = c->s;
    lg_client_t *cl = s->client;
    if (!s->connected || c->in_flight || c->closed || p->index >= cl->set->count) return UV_EINVAL;
    c->p = p;
    c->sent = 0;
    c->http_status = -1;
    c->grpc_status = -1;
    nghttp2_data_provider data = {.source.ptr = c, .read_callback = data_read_cb};
    int32_t id = nghttp2_submit_request(s->ng, NULL, cl->nv, cl->nv_len, &data, c);
    if (id < 0) {
        /* Out of stream IDs, or memory: start again on a new connection. The
         * break waits for the next loop turn, outside the driver's call. */
        s->pending_break = nghttp2_strerror(id);
        uv_idle_start(&s->kick, on_kick);
        return UV_EPROTO;
    }
    c->stream_id = id;
    c->in_flight = true;
    schedule_flush(s);
    return 0;
}

/* Adds a slot to a session. Returns it, or NULL with a message. */
static lg_conn_t *slot_add(session_t *s, void *user, char *err, size_t err_len)
{
    lg_conn_t **slots = realloc(s->slots, (s->nslots + 1) * sizeof(*slots));
    if (!slots) goto oom;
    s->slots = slots;
    lg_conn_t *c = calloc(1, sizeof(*c));
    if (!c) goto oom;
    c->s = s;
    c->user = user;
    c->http_status = c->grpc_status = -1;
    s->slots[s->nslots++] = c;
    s->open_slots++;
    return c;
oom:
    snprintf(err, err_len, "out of memory");
    return NULL;
}

static lg_conn_t *grpc_conn_open(lg_client_t *cl, void *user, char *err, size_t err_len)
{
    session_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    s->client = cl;
    lg_conn_t *c = slot_add(s, user, err, err_len);
    if (!c) {
        free(s->slots);
        free(s);
        return NULL;
    }
    s->connect_req.data = s;
    s->write_req.data = s;
    uv_timer_init(cl->loop, &s->retry);
    uv_idle_init(cl->loop, &s->kick);
    s->retry.data = s->kick.data = s;
    s->open_handles = 2;
    start_connect(s);
    return c;
}

static lg_conn_t *grpc_conn_share(lg_conn_t *c, void *user, char *err, size_t err_len)
{
    if (c->closed || c->s->finishing) {
        snprintf(err, err_len, "the connection is closed");
        return NULL;
    }
    lg_conn_t *n = slot_add(c->s, user, err, err_len);
    /* A session already up offers the new slot at once. */
    if (n && c->s->connected) c->s->client->events.on_idle(user);
    return n;
}

static void grpc_conn_close(lg_conn_t *c)
{
    session_t *s = c->s;
    if (c->closed) return;
    c->closed = true;
    c->in_flight = false;
    if (--s->open_slots > 0) return;
    /* The last slot: the session goes, and with it every stream still open. */
    s->finishing = true;
    s->connected = false;
    uv_timer_stop(&s->retry);
    uv_idle_stop(&s->kick);
    uv_close((uv_handle_t *)&s->retry, on_handle_closed);
    uv_close((uv_handle_t *)&s->kick, on_handle_closed);
    if (s->tcp_open) {
        s->tcp_open = false;
        uv_close((uv_handle_t *)&s->tcp, on_tcp_closed);
    }
}

static void set_nv(nghttp2_nv *nv, const char *name, const char *value)
{
    *nv = (nghttp2_nv){
        .name = (uint8_t *)name,
        .value = (uint8_t *)value,
        .namelen = strlen(name),
        .valuelen = strlen(value),
        .flags = NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE,
    };
}

static lg_client_t *grpc_client_new(uv_loop_t *loop, const lg_target_t *target,
                                    const lg_payload_set_t *set, const lg_events_t *events,
                                    char *err, size_t err_len)
{
    lg_client_t *cl = calloc(1, sizeof(*cl));
    if (!cl) goto oom;
    cl->loop = loop;
    cl->target = target;
    cl->events = *events;
    cl->set = set;
    if (!(cl->prefixes = calloc(set->count ? set->count : 1, sizeof(*cl->prefixes)))) goto oom;
    bool gzip = false, zstd = false;
    for (unsigned i = 0; i < set->count; i++) {
        const lg_payload_t *p = &set->items[i];
        if (p->len > UINT32_MAX) {
            snprintf(err, err_len, "a request of %zu bytes does not fit a gRPC message", p->len);
            goto fail;
        }
        cl->prefixes[i][0] = p->gzip || p->zstd ? 1 : 0;
        cl->prefixes[i][1] = (uint8_t)(p->len >> 24);
        cl->prefixes[i][2] = (uint8_t)(p->len >> 16);
        cl->prefixes[i][3] = (uint8_t)(p->len >> 8);
        cl->prefixes[i][4] = (uint8_t)p->len;
        gzip |= p->gzip;
        zstd |= p->zstd;
    }
    /* The URL's path names the method when it has one; "/" means Export. */
    snprintf(cl->path, sizeof(cl->path), "%s",
             strcmp(target->path, "/") ? target->path : DEFAULT_PATH);
    snprintf(cl->authority, sizeof(cl->authority), strchr(target->host, ':') ? "[%s]:%s" : "%s:%s",
             target->host, target->port);
    set_nv(&cl->nv[cl->nv_len++], ":method", "POST");
    set_nv(&cl->nv[cl->nv_len++], ":scheme", "http");
    set_nv(&cl->nv[cl->nv_len++], ":path", cl->path);
    set_nv(&cl->nv[cl->nv_len++], ":authority", cl->authority);
    set_nv(&cl->nv[cl->nv_len++], "content-type", "application/grpc");
    set_nv(&cl->nv[cl->nv_len++], "te", "trailers");
    set_nv(&cl->nv[cl->nv_len++], "user-agent", "switchyard-loadgen");
    if (zstd)
        set_nv(&cl->nv[cl->nv_len++], "grpc-encoding", "zstd");
    else if (gzip)
        set_nv(&cl->nv[cl->nv_len++], "grpc-encoding", "gzip");

    cl->mem = (nghttp2_mem){
        .mem_user_data = &cl->pool,
        .malloc = pool_malloc,
        .free = pool_free,
        .calloc = pool_calloc,
        .realloc = pool_realloc,
    };
    if (nghttp2_session_callbacks_new(&cl->callbacks) != 0) goto oom;
    nghttp2_session_callbacks_set_send_callback(cl->callbacks, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cl->callbacks, send_data_cb);
    nghttp2_session_callbacks_set_on_header_callback(cl->callbacks, on_header_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cl->callbacks, on_stream_close_cb);
    return cl;
oom:
    snprintf(err, err_len, "out of memory");
fail:
    if (cl) free(cl->prefixes);
    free(cl);
    return NULL;
}

static void grpc_client_free(lg_client_t *cl)
{
    if (!cl) return;
    nghttp2_session_callbacks_del(cl->callbacks);
    pool_destroy(&cl->pool);
    free(cl->prefixes);
    free(cl);
}

const lg_transport_t lg_grpc_transport = {
    .name = "grpc",
    .client_new = grpc_client_new,
    .conn_open = grpc_conn_open,
    .conn_share = grpc_conn_share,
    .send = grpc_send,
    .conn_close = grpc_conn_close,
    .client_free = grpc_client_free,
};
