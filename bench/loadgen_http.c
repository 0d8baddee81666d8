/*
 * loadgen_http.c - the HTTP/1.1 transport of loadgen: keep-alive connections,
 * one request in flight on each (no pipelining), request headers formatted once
 * per payload at start, and a minimal response reader that takes the status line
 * and Content-Length and skips the body.
 *
 * A connection that breaks (reset, EOF, an answer it cannot read, Connection:
 * close) reports the request in flight as LG_ERROR, closes, and reconnects after
 * RECONNECT_MS. Nothing is allocated per request: the write request and the read
 * buffer live in the connection.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loadgen_transport.h"

#define RECONNECT_MS 10
#define READ_BUF     8192 /* the longest response head accepted */
#define HEADER_MAX   1024 /* the longest request head formatted */

struct lg_client_s {
    uv_loop_t *loop;
    const lg_target_t *target;
    lg_events_t events;
    char (*heads)[HEADER_MAX]; /* the request head of each payload */
    size_t *head_lens;
    unsigned count;
};

typedef enum read_state_e { READ_HEAD = 0, READ_BODY } read_state_t;

struct lg_conn_s {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_write_t write_req;
    uv_timer_t retry;
    lg_client_t *client;
    void *user;
    bool tcp_open;  /* tcp is initialised and not closed */
    bool connected; /* the connection is up and usable */
    bool writing;   /* write_req is in use */
    bool in_flight; /* a request waits for its answer */
    bool finishing; /* conn_close was called: do not reconnect */
    int open_handles;
    /* Response reader. */
    read_state_t rstate;
    size_t rlen;        /* bytes of the head read so far */
    uint64_t body_left; /* body bytes still to skip */
    int status;         /* of the answer whose body is being skipped */
    bool close_after;   /* the server closes after that answer */
    char rbuf[READ_BUF];
};

static void start_connect(lg_conn_t *c);

static void on_retry(uv_timer_t *t)
{
    start_connect(t->data);
}

static void maybe_free(lg_conn_t *c)
{
    if (c->finishing && c->open_handles == 0) free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    lg_conn_t *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

static void on_tcp_closed(uv_handle_t *h)
{
    lg_conn_t *c = h->data;
    c->open_handles--;
    if (c->finishing) {
        maybe_free(c);
        return;
    }
    uv_timer_start(&c->retry, on_retry, RECONNECT_MS, 0);
}

/* Drops the connection: what was in flight failed. Reconnects unless finishing. */
static void conn_break(lg_conn_t *c, const char *message)
{
    if (!c->tcp_open) return;
    c->tcp_open = false;
    c->connected = false;
    if (c->in_flight) {
        c->in_flight = false;
        c->client->events.on_done(c->user, LG_ERROR, 0);
    } else if (!c->finishing) {
        c->client->events.on_conn_error(c->user, message);
    }
    uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}

/* The answer is complete: report it, then offer the connection again. */
static void response_done(lg_conn_t *c, int status, bool close_after)
{
    lg_outcome_t outcome = status == 200                      ? LG_ACCEPTED
                           : (status == 429 || status == 503) ? LG_REFUSED
                                                              : LG_FAILED;
    c->in_flight = false;
    c->rstate = READ_HEAD;
    c->rlen = 0;
    c->client->events.on_done(c->user, outcome, status);
    if (close_after) {
        conn_break(c, "the server closed the connection");
        return;
    }
    if (!c->writing && !c->finishing) c->client->events.on_idle(c->user);
}

static const char *find_head_end(const char *buf, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return buf + i + 1;
    return NULL;
}

/* Parses a complete response head. Returns the status (100..599) or -1, and
 * fills the body length and whether the server closes after this answer. */
static int parse_head(const char *head, size_t len, uint64_t *content_length, bool *close_after)
{
    int status = -1;
    *content_length = 0;
    *close_after = false;
    if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0) return -1;
    if (sscanf(head + 9, "%3d", &status) != 1 || status < 100 || status > 599) return -1;
    if (head[7] == '0') *close_after = true;
    const char *end = head + len;
    const char *line = memchr(head, '\n', len);
    while (line && ++line < end) {
        size_t rest = (size_t)(end - line);
        if (rest > 15 && strncasecmp(line, "content-length:", 15) == 0) {
            char *stop;
            unsigned long long v = strtoull(line + 15, &stop, 10);
            if (stop == line + 15 || v > (1ULL << 32)) return -1;
            *content_length = v;
        } else if (rest > 18 && strncasecmp(line, "transfer-encoding:", 18) == 0) {
            return -1; /* chunked answers are not expected from an OTLP receiver */
        } else if (rest > 11 && strncasecmp(line, "connection:", 11) == 0) {
            const char *v = line + 11;
            while (*v == ' ')
                v++;
            if (strncasecmp(v, "close", 5) == 0) *close_after = true;
        }
        line = memchr(line, '\n', rest);
    }
    return status;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    lg_conn_t *c = h->data;
    (void)suggested;
    if (c->rstate == READ_BODY) {
        *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf)); /* body bytes are discarded */
        return;
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(sizeof(c->rbuf) - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    lg_conn_t *c = s->data;
    (void)buf;
    if (nread == 0) return;
    if (nread < 0) {
        conn_break(c,
                   nread == UV_EOF ? "the server closed the connection" : uv_strerror((int)nread));
        return;
    }
    if (!c->in_flight) {
        conn_break(c, "the server sent bytes that answer nothing");
        return;
    }
    if (c->rstate == READ_BODY) {
        if ((uint64_t)nread > c->body_left) {
            conn_break(c, "the server sent more than Content-Length");
            return;
        }
        c->body_left -= (uint64_t)nread;
        if (c->body_left == 0) response_done(c, c->status, c->close_after);
        return;
    }
    size_t before = c->rlen;
    c->rlen += (size_t)nread;
    const char *from = c->rbuf + (before > 3 ? before - 3 : 0);
    const char *end = find_head_end(from, c->rlen - (size_t)(from - c->rbuf));
    if (!end) {
        if (c->rlen == sizeof(c->rbuf)) conn_break(c, "response head too long");
        return;
    }
    uint64_t clen;
    bool close_after;
    size_t head_len = (size_t)(end - c->rbuf);
    int status = parse_head(c->rbuf, head_len, &clen, &close_after);
    if (status < 0) {
        conn_break(c, "unreadable response head");
        return;
    }
    size_t have = c->rlen - head_len;
    if (have > clen) {
        conn_break(c, "the server sent more than Content-Length");
        return;
    }
    if (have == clen) {
        response_done(c, status, close_after);
        return;
    }
    c->body_left = clen - have;
    c->status = status;
    c->close_after = close_after;
    c->rstate = READ_BODY;
}

static void on_connect(uv_connect_t *req, int status)
{
    lg_conn_t *c = req->data;
    if (status < 0) {
        if (status != UV_ECANCELED) conn_break(c, uv_strerror(status));
        return;
    }
    if (!c->tcp_open) return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        conn_break(c, uv_strerror(rc));
        return;
    }
    c->connected = true;
    if (!c->finishing) c->client->events.on_idle(c->user);
}

static void start_connect(lg_conn_t *c)
{
    if (c->finishing) return;
    c->rstate = READ_HEAD;
    c->rlen = 0;
    int rc = uv_tcp_init(c->client->loop, &c->tcp);
    if (rc < 0) {
        c->client->events.on_conn_error(c->user, uv_strerror(rc));
        uv_timer_start(&c->retry, on_retry, RECONNECT_MS * 10, 0);
        return;
    }
    c->tcp.data = c;
    c->tcp_open = true;
    c->open_handles++;
    uv_tcp_nodelay(&c->tcp, 1);
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&c->client->target->addr,
                        on_connect);
    if (rc < 0) conn_break(c, uv_strerror(rc));
}

static void on_write(uv_write_t *req, int status)
{
    lg_conn_t *c = req->data;
    c->writing = false;
    if (status < 0) {
        conn_break(c, uv_strerror(status));
        return;
    }
    /* The answer may have come before the last byte of the request left. */
    if (!c->in_flight && c->connected && !c->finishing) c->client->events.on_idle(c->user);
}

static int http_send(lg_conn_t *c, const lg_payload_t *p)
{
    lg_client_t *cl = c->client;
    if (!c->connected || c->writing || c->in_flight || p->index >= cl->count) return UV_EINVAL;
    uv_buf_t bufs[2] = {
        uv_buf_init(cl->heads[p->index], (unsigned)cl->head_lens[p->index]),
        uv_buf_init((char *)p->body, (unsigned)p->len),
    };
    c->in_flight = true;
    c->writing = true;
    int rc = uv_write(&c->write_req, (uv_stream_t *)&c->tcp, bufs, 2, on_write);
    if (rc < 0) {
        c->in_flight = false;
        c->writing = false;
        conn_break(c, uv_strerror(rc));
    }
    return rc;
}

static lg_conn_t *http_conn_open(lg_client_t *cl, void *user, char *err, size_t err_len)
{
    lg_conn_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    c->client = cl;
    c->user = user;
    c->connect_req.data = c;
    c->write_req.data = c;
    uv_timer_init(cl->loop, &c->retry);
    c->retry.data = c;
    c->open_handles = 1;
    start_connect(c);
    return c;
}

static void http_conn_close(lg_conn_t *c)
{
    if (c->finishing) return;
    c->finishing = true;
    uv_timer_stop(&c->retry);
    uv_close((uv_handle_t *)&c->retry, on_handle_closed);
    if (c->tcp_open) {
        c->tcp_open = false;
        c->connected = false;
        c->in_flight = false;
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
    }
}

static lg_client_t *http_client_new(uv_loop_t *loop, const lg_target_t *target,
                                    const lg_payload_set_t *set, const lg_events_t *events,
                                    char *err, size_t err_len)
{
    lg_client_t *cl = calloc(1, sizeof(*cl));
    if (!cl) goto oom;
    cl->loop = loop;
    cl->target = target;
    cl->events = *events;
    cl->count = set->count;
    cl->heads = calloc(set->count, sizeof(*cl->heads));
    cl->head_lens = calloc(set->count, sizeof(*cl->head_lens));
    if (!cl->heads || !cl->head_lens) goto oom;
    for (unsigned i = 0; i < set->count; i++) {
        const lg_payload_t *p = &set->items[i];
        int n =
            snprintf(cl->heads[i], HEADER_MAX,
                     "POST %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: switchyard-loadgen\r\n"
                     "Content-Type: application/x-protobuf\r\n%s%s%sContent-Length: %zu\r\n\r\n",
                     target->path, target->host, target->port,
                     p->zstd   ? "Content-Encoding: zstd\r\n"
                     : p->gzip ? "Content-Encoding: gzip\r\n"
                               : "",
                     set->header ? set->header : "", set->header ? "\r\n" : "", p->len);
        if (n < 0 || n >= HEADER_MAX) {
            snprintf(err, err_len, "URL too long for a request head");
            goto fail;
        }
        cl->head_lens[i] = (size_t)n;
    }
    return cl;
oom:
    snprintf(err, err_len, "out of memory");
fail:
    if (cl) {
        free(cl->heads);
        free(cl->head_lens);
    }
    free(cl);
    return NULL;
}

static void http_client_free(lg_client_t *cl)
{
    if (!cl) return;
    free(cl->heads);
    free(cl->head_lens);
    free(cl);
}

const lg_transport_t lg_http_transport = {
    .name = "http",
    .client_new = http_client_new,
    .conn_open = http_conn_open,
    .send = http_send,
    .conn_close = http_conn_close,
    .client_free = http_client_free,
};
