/*
 * http_client.c - HTTP/1.1 POSTs from pieces on keep-alive connections (see the
 * header).
 *
 * A connection (hc_conn_t) owns one socket at a time, watched by a uv_poll_t that
 * is malloc'ed per socket (hc_poll_t) so that a failed connect can go on with the
 * next address while the old handle closes. Its timer is the bound call's
 * deadline. A connection is freed once its timer is closed and its name lookup,
 * if any, has called back; the client once every connection is gone.
 */
#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* ---- the response parser ------------------------------------------------------- */

enum { WANT_RETRY_AFTER = 0, WANT_CONTENT_TYPE = 1 };

static syc_hc_resp_t *resp_of(llhttp_t *p)
{
    return (syc_hc_resp_t *)((char *)p - offsetof(syc_hc_resp_t, parser));
}

static int on_message_begin(llhttp_t *p)
{
    syc_hc_resp_t *r = resp_of(p);
    r->status = 0;
    r->body_len = 0;
    r->body_truncated = false;
    r->retry_after[0] = r->content_type[0] = '\0';
    r->hname_len = 0;
    r->hwhich = -1;
    return 0;
}

/* llhttp takes any number of digits: an answer's status is three. */
static int on_status_complete(llhttp_t *p)
{
    int status = llhttp_get_status_code(p);
    return status >= 100 && status <= 999 ? 0 : -1;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    syc_hc_resp_t *r = resp_of(p);
    size_t room = sizeof(r->hname) - 1 - r->hname_len;
    if (len > room) len = room; /* a longer name matches nothing we want */
    memcpy(r->hname + r->hname_len, at, len);
    r->hname_len += len;
    return 0;
}

static int on_header_field_complete(llhttp_t *p)
{
    syc_hc_resp_t *r = resp_of(p);
    r->hname[r->hname_len] = '\0';
    r->hwhich = !strcasecmp(r->hname, "retry-after")    ? WANT_RETRY_AFTER
                : !strcasecmp(r->hname, "content-type") ? WANT_CONTENT_TYPE
                                                        : -1;
    r->hname_len = 0;
    r->hval_len = 0;
    if (r->hwhich == WANT_RETRY_AFTER) r->retry_after[0] = '\0';
    if (r->hwhich == WANT_CONTENT_TYPE) r->content_type[0] = '\0';
    return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    syc_hc_resp_t *r = resp_of(p);
    if (r->hwhich < 0) return 0;
    char *out = r->hwhich == WANT_RETRY_AFTER ? r->retry_after : r->content_type;
    size_t cap = r->hwhich == WANT_RETRY_AFTER ? sizeof(r->retry_after) : sizeof(r->content_type);
    size_t room = cap - 1 - r->hval_len;
    if (len > room) len = room;
    memcpy(out + r->hval_len, at, len);
    r->hval_len += len;
    out[r->hval_len] = '\0';
    return 0;
}

static int on_header_value_complete(llhttp_t *p)
{
    syc_hc_resp_t *r = resp_of(p);
    if (r->hwhich < 0) return 0;
    char *out = r->hwhich == WANT_RETRY_AFTER ? r->retry_after : r->content_type;
    size_t n = r->hval_len; /* llhttp leaves the trailing blanks */
    while (n && (out[n - 1] == ' ' || out[n - 1] == '\t'))
        out[--n] = '\0';
    r->hwhich = -1;
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    syc_hc_resp_t *r = resp_of(p);
    size_t room = SYC_HC_MAX_RESPONSE - r->body_len;
    size_t take = len < room ? len : room;
    if (take < len) r->body_truncated = true;
    if (take && r->body_len + take > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 1024;
        while (cap < r->body_len + take)
            cap *= 2;
        if (cap > SYC_HC_MAX_RESPONSE) cap = SYC_HC_MAX_RESPONSE;
        uint8_t *b = realloc(r->body, cap);
        if (!b) {
            r->oom = true;
            return -1;
        }
        r->body = b;
        r->body_cap = cap;
    }
    if (take) memcpy(r->body + r->body_len, at, take);
    r->body_len += take;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    syc_hc_resp_t *r = resp_of(p);
    int status = llhttp_get_status_code(p);
    if (status >= 100 && status < 200 && status != 101) return 0; /* interim: the next one */
    r->status = status;
    r->complete = true;
    r->keep_alive = llhttp_should_keep_alive(p) != 0;
    return HPE_PAUSED; /* nothing after the answer is parsed */
}

static const llhttp_settings_t resp_settings = {
    .on_message_begin = on_message_begin,
    .on_status_complete = on_status_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void syc_hc_resp_init(syc_hc_resp_t *r)
{
    llhttp_init(&r->parser, HTTP_RESPONSE, &resp_settings);
    r->status = 0;
    r->complete = r->keep_alive = r->body_truncated = r->oom = false;
    r->body_len = 0;
    r->retry_after[0] = r->content_type[0] = '\0';
    r->hname_len = r->hval_len = 0;
    r->hwhich = -1;
}

int syc_hc_resp_feed(syc_hc_resp_t *r, const uint8_t *data, size_t len, size_t *used, char *err,
                     size_t err_len)
{
    *used = 0;
    if (r->complete) return 1;
    llhttp_errno_t e = llhttp_execute(&r->parser, (const char *)data, len);
    if (e == HPE_OK) {
        *used = len;
        return 0;
    }
    if (e == HPE_PAUSED && r->complete) {
        *used = (size_t)(llhttp_get_error_pos(&r->parser) - (const char *)data);
        return 1;
    }
    snprintf(err, err_len, "%s", r->oom ? "out of memory for the response" : "bad HTTP response: ");
    if (!r->oom) {
        size_t n = strlen(err);
        snprintf(err + n, err_len - n, "%s", llhttp_get_error_reason(&r->parser));
    }
    return -1;
}

int syc_hc_resp_eof(syc_hc_resp_t *r)
{
    if (r->complete) return 1;
    /* A body delimited by the end of the connection (neither Content-Length nor
     * chunked): llhttp_finish() completes it; anything else is cut short. */
    if (llhttp_message_needs_eof(&r->parser)) llhttp_finish(&r->parser);
    return r->complete ? 1 : -1;
}

void syc_hc_resp_free(syc_hc_resp_t *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = r->body_cap = 0;
}

/* ---- targets --------------------------------------------------------------------- */

void syc_hc_target_free(syc_hc_target_t *t)
{
    if (!t) return;
    free(t->host);
    free(t->port);
    free(t->hostport);
    free(t->path);
    free(t);
}

syc_hc_target_t *syc_hc_target_new(const char *url)
{
    if (!url || strncasecmp(url, "http://", 7)) return NULL;
    CURLU *u = curl_url();
    if (!u) return NULL;
    syc_hc_target_t *t = NULL;
    char *host = NULL, *port = NULL, *path = NULL, *query = NULL, *user = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) goto out;
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) goto out; /* credentials */
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto out;
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    if (!(t = calloc(1, sizeof(*t)))) goto out;
    size_t hl = strlen(host);
    bool v6 = hl > 1 && host[0] == '[';
    t->host = v6 ? strndup(host + 1, hl - 2) : strdup(host);
    t->port = strdup(port);
    bool dflt = !strcmp(port, "80");
    if (asprintf(&t->hostport, "%s%s%s", host, dflt ? "" : ":", dflt ? "" : port) < 0)
        t->hostport = NULL;
    if (asprintf(&t->path, "%s%s%s", path && *path ? path : "/", query ? "?" : "",
                 query ? query : "") < 0)
        t->path = NULL;
    if (!t->host || !t->port || !t->hostport || !t->path) {
        syc_hc_target_free(t);
        t = NULL;
    }
out:
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(user);
    curl_url_cleanup(u);
    return t;
}

/* ---- connections ------------------------------------------------------------------- */

typedef struct hc_poll_s {
    uv_poll_t h;
    hc_conn_t *conn; /* NULL once detached (closing) */
    syc_hc_t *hc;
} hc_poll_t;

enum { C_RESOLVING, C_CONNECTING, C_READY };

struct hc_conn_s {
    syc_hc_t *hc;
    hc_conn_t *prev, *next;
    const syc_hc_target_t *target;
    int state;
    int fd;
    hc_poll_t *poll;
    int poll_events;
    uv_timer_t timer;
    uv_getaddrinfo_t gai;
    bool gai_pending;
    bool timer_open;
    bool closing;
    bool idle;   /* counted in nidle */
    bool broken; /* a write failed: never reused */
    struct addrinfo *ai, *ai_next;
    int last_errno;
    syc_hc_call_t *call; /* NULL: idle */
    unsigned served;     /* answers read on this connection */
};

struct syc_hc_s {
    uv_loop_t *loop;
    hc_conn_t *conns;
    size_t nconns, nidle, max_idle;
    size_t handles; /* poll handles not yet closed */
    bool closing;
    void (*closed)(void *arg);
    void *closed_arg;
};

static void hc_maybe_free(syc_hc_t *hc)
{
    if (!hc->closing || hc->nconns || hc->handles) return;
    void (*closed)(void *) = hc->closed;
    void *arg = hc->closed_arg;
    free(hc);
    if (closed) closed(arg);
}

static void conn_maybe_free(hc_conn_t *c)
{
    if (!c->closing || c->gai_pending || c->timer_open) return;
    syc_hc_t *hc = c->hc;
    if (c->ai) freeaddrinfo(c->ai);
    if (c->prev)
        c->prev->next = c->next;
    else
        hc->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    hc->nconns--;
    free(c);
    hc_maybe_free(hc);
}

static void on_poll_closed(uv_handle_t *h)
{
    hc_poll_t *p = (hc_poll_t *)h;
    syc_hc_t *hc = p->hc;
    free(p);
    hc->handles--;
    hc_maybe_free(hc);
}

/* Closes the connection's socket (and its poll handle). */
static void conn_drop_socket(hc_conn_t *c)
{
    if (c->poll) {
        c->poll->conn = NULL;
        uv_close((uv_handle_t *)&c->poll->h, on_poll_closed);
        c->poll = NULL;
    }
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->poll_events = 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    hc_conn_t *c = h->data;
    c->timer_open = false;
    conn_maybe_free(c);
}

static void conn_close(hc_conn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    if (c->idle) c->hc->nidle--;
    c->idle = false;
    c->call = NULL;
    conn_drop_socket(c);
    if (c->gai_pending) uv_cancel((uv_req_t *)&c->gai);
    if (c->timer_open) uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    conn_maybe_free(c);
}

static void on_poll(uv_poll_t *h, int status, int events);

static int conn_watch(hc_conn_t *c, int events)
{
    if (c->poll_events == events) return 0;
    if (!c->poll) {
        hc_poll_t *p = calloc(1, sizeof(*p));
        if (!p) return -1;
        if (uv_poll_init_socket(c->hc->loop, &p->h, c->fd) < 0) {
            free(p);
            return -1;
        }
        p->conn = c;
        p->hc = c->hc;
        c->hc->handles++;
        c->poll = p;
    }
    if (uv_poll_start(&c->poll->h, events, on_poll) < 0) return -1;
    c->poll_events = events;
    return 0;
}

static uint64_t now_ms(const syc_hc_t *hc)
{
    return uv_now(hc->loop);
}

/* Ends the call bound to c with `err` (the connection is closed), or with its
 * answer (err SYC_HC_OK: the connection stays when keep_alive). */
static void call_finish(hc_conn_t *c, syc_hc_err_t err)
{
    syc_hc_call_t *call = c->call;
    syc_hc_t *hc = c->hc;
    call->err = err;
    call->conn = NULL;
    c->call = NULL;
    uv_timer_stop(&c->timer);
    bool all_written = call->at > call->npieces;
    if (err == SYC_HC_OK && call->resp.keep_alive && all_written && !c->broken &&
        hc->nidle < hc->max_idle && !hc->closing) {
        c->served++;
        c->idle = true;
        hc->nidle++;
        conn_watch(c, UV_READABLE); /* to notice when the server closes it */
    } else {
        conn_close(c);
    }
    call->done(call); /* may start the next call, on c too */
}

static void call_fail(hc_conn_t *c, syc_hc_err_t err, const char *fmt, const char *arg)
{
    snprintf(c->call->errmsg, sizeof(c->call->errmsg), fmt, arg);
    call_finish(c, err);
}

static int conn_start(syc_hc_t *hc, syc_hc_call_t *call);
static void conn_write(hc_conn_t *c);

/* A reused connection failed before any byte of the answer: the server closed it
 * while it was idle. Once per call, the call starts again on a new connection. */
static bool call_retry_fresh(hc_conn_t *c)
{
    syc_hc_call_t *call = c->call;
    if (!call || c->served == 0 || call->received || call->retried || c->hc->closing) return false;
    call->retried = true;
    c->call = NULL;
    call->conn = NULL;
    conn_close(c);
    if (conn_start(c->hc, call) == 0) return true;
    call->err = SYC_HC_NOMEM;
    snprintf(call->errmsg, sizeof(call->errmsg), "out of memory for a connection");
    call->done(call);
    return true;
}

static void conn_read(hc_conn_t *c)
{
    uint8_t buf[65536];
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (!c->call) { /* idle: closed by the server, or bytes nobody asked for */
            conn_close(c);
            return;
        }
        syc_hc_call_t *call = c->call;
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            if (call_retry_fresh(c)) return;
            if (syc_hc_resp_eof(&call->resp) == 1) {
                call->resp.keep_alive = false;
                call_finish(c, SYC_HC_OK);
            } else if (call->received == 0) {
                if (e)
                    call_fail(c, SYC_HC_RECV, "Recv failure: %s", strerror(e));
                else
                    call_fail(c, SYC_HC_NOTHING, "%s", "Empty reply from server");
            } else {
                call_fail(c, SYC_HC_RECV, "%s",
                          e ? strerror(e) : "the server closed the connection mid-answer");
            }
            return;
        }
        call->received += (size_t)n;
        size_t used;
        char err[160];
        int rc = syc_hc_resp_feed(&call->resp, buf, (size_t)n, &used, err, sizeof(err));
        if (rc < 0) {
            call_fail(c, call->resp.oom ? SYC_HC_NOMEM : SYC_HC_BAD_REPLY, "%s", err);
            return;
        }
        if (rc == 1) {
            if (used < (size_t)n) call->resp.keep_alive = false; /* bytes after the answer */
            call_finish(c, SYC_HC_OK);
            return;
        }
    }
}

/* Writes what the kernel takes of the call's head and pieces. */
static void conn_write(hc_conn_t *c)
{
    syc_hc_call_t *call = c->call;
    enum { NIOV = 64 };
    while (call->at <= call->npieces) {
        struct iovec iov[NIOV];
        int n = 0;
        for (size_t i = call->at; i <= call->npieces && n < NIOV; i++) {
            const uint8_t *d = i == 0 ? (const uint8_t *)call->head : call->pieces[i - 1].data;
            size_t len = i == 0 ? call->head_len : call->pieces[i - 1].len;
            size_t skip = i == call->at ? call->off : 0;
            if (len == skip) continue;
            iov[n].iov_base = (void *)(d + skip);
            iov[n].iov_len = len - skip;
            n++;
        }
        ssize_t w = 0;
        if (n) {
            struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
            w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (conn_watch(c, UV_READABLE | UV_WRITABLE) < 0)
                    call_fail(c, SYC_HC_NOMEM, "%s", "no poll handle");
                return;
            }
            if (w < 0) {
                int e = errno;
                /* An answer may already be there (a server that refuses early). */
                if (call_retry_fresh(c)) return;
                call->at = call->npieces + 1; /* nothing more to write */
                c->broken = true;
                conn_read(c);
                if (c->call == call) call_fail(c, SYC_HC_SEND, "Send failure: %s", strerror(e));
                return;
            }
        }
        /* Advance over w bytes. */
        size_t left = (size_t)w;
        while (call->at <= call->npieces) {
            size_t len = call->at == 0 ? call->head_len : call->pieces[call->at - 1].len;
            size_t rest = len - call->off;
            if (left < rest) {
                call->off += left;
                break;
            }
            left -= rest;
            call->at++;
            call->off = 0;
        }
    }
    if (conn_watch(c, UV_READABLE) < 0) call_fail(c, SYC_HC_NOMEM, "%s", "no poll handle");
}

static void conn_connected(hc_conn_t *c)
{
    if (c->ai) {
        freeaddrinfo(c->ai);
        c->ai = c->ai_next = NULL;
    }
    c->state = C_READY;
    conn_write(c);
}

/* Tries the next address; fails the call once none is left. */
static void conn_connect_next(hc_conn_t *c)
{
    while (c->ai_next) {
        struct addrinfo *a = c->ai_next;
        c->ai_next = a->ai_next;
        conn_drop_socket(c);
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            c->last_errno = errno;
            continue;
        }
        c->fd = fd;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
            conn_connected(c);
            return;
        }
        if (errno == EINPROGRESS) {
            c->state = C_CONNECTING;
            if (conn_watch(c, UV_WRITABLE) == 0) return;
            call_fail(c, SYC_HC_NOMEM, "%s", "no poll handle");
            return;
        }
        c->last_errno = errno;
    }
    char msg[200];
    snprintf(msg, sizeof(msg), "Failed to connect to %s port %s after %llu ms: %s", c->target->host,
             c->target->port, (unsigned long long)(now_ms(c->hc) - c->call->started_ms),
             c->last_errno ? strerror(c->last_errno) : "Couldn't connect to server");
    call_fail(c, SYC_HC_CONNECT, "%s", msg);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    hc_poll_t *p = (hc_poll_t *)h;
    hc_conn_t *c = p->conn;
    if (!c) return;
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (status < 0 || getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            c->last_errno = err ? err : ECONNREFUSED;
            conn_connect_next(c);
        } else {
            conn_connected(c);
        }
        return;
    }
    if (status < 0) events = UV_READABLE; /* recv() tells what went wrong */
    if ((events & UV_WRITABLE) && c->call && c->call->at <= c->call->npieces) {
        conn_write(c);
        if (c->poll != p || p->conn != c) return; /* closed, or c freed */
    }
    if (events & UV_READABLE) conn_read(c);
}

static void on_timeout(uv_timer_t *t)
{
    hc_conn_t *c = t->data;
    if (!c->call) return;
    char msg[160];
    snprintf(msg, sizeof(msg),
             "Operation timed out after %llu milliseconds with %zu bytes received",
             (unsigned long long)(now_ms(c->hc) - c->call->started_ms), c->call->received);
    call_fail(c, SYC_HC_TIMEOUT, "%s", msg);
}

static void on_resolved(uv_getaddrinfo_t *g, int status, struct addrinfo *res)
{
    hc_conn_t *c = g->data;
    c->gai_pending = false;
    if (c->closing) {
        if (res) freeaddrinfo(res);
        conn_maybe_free(c);
        return;
    }
    if (status < 0 || !res) {
        if (res) freeaddrinfo(res);
        call_fail(c, SYC_HC_RESOLVE, "Could not resolve host: %s", c->target->host);
        return;
    }
    c->ai = c->ai_next = res;
    conn_connect_next(c);
}

static void call_reset(syc_hc_call_t *call)
{
    call->at = call->off = 0;
    call->received = 0;
    call->err = SYC_HC_OK;
    call->errmsg[0] = '\0';
    syc_hc_resp_init(&call->resp);
}

/* Binds the call to a new connection and starts resolving its host. */
static int conn_start(syc_hc_t *hc, syc_hc_call_t *call)
{
    hc_conn_t *c = calloc(1, sizeof(*c));
    if (!c) return SY_ENOMEM;
    c->hc = hc;
    c->target = call->target;
    c->fd = -1;
    c->state = C_RESOLVING;
    uv_timer_init(hc->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    c->next = hc->conns;
    if (hc->conns) hc->conns->prev = c;
    hc->conns = c;
    hc->nconns++;
    c->call = call;
    call->conn = c;
    call_reset(call);
    if (call->timeout_ms) {
        uint64_t spent = now_ms(hc) - call->started_ms;
        uv_timer_start(&c->timer, on_timeout,
                       spent < call->timeout_ms ? call->timeout_ms - spent : 0, 0);
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->gai.data = c;
    if (uv_getaddrinfo(hc->loop, &c->gai, on_resolved, call->target->host, call->target->port,
                       &hints) < 0) {
        c->call = NULL;
        call->conn = NULL;
        conn_close(c);
        return SY_ENOMEM;
    }
    c->gai_pending = true;
    return 0;
}

static bool same_target(const syc_hc_target_t *a, const syc_hc_target_t *b)
{
    return a == b || (!strcmp(a->host, b->host) && !strcmp(a->port, b->port));
}

int syc_hc_send(syc_hc_t *hc, syc_hc_call_t *call)
{
    if (hc->closing) return SY_ECLOSED;
    call->started_ms = now_ms(hc);
    call->retried = false;
    for (hc_conn_t *c = hc->conns; c; c = c->next) {
        if (c->closing || c->call || c->state != C_READY || !same_target(c->target, call->target))
            continue;
        hc->nidle--;
        c->idle = false;
        c->call = call;
        call->conn = c;
        call_reset(call);
        if (call->timeout_ms) uv_timer_start(&c->timer, on_timeout, call->timeout_ms, 0);
        /* Written at once; a failure here (the server closed the idle connection)
         * goes to a new connection, so done is never called from inside send. */
        conn_write(c);
        return 0;
    }
    return conn_start(hc, call);
}

void syc_hc_cancel(syc_hc_t *hc, syc_hc_call_t *call)
{
    (void)hc;
    hc_conn_t *c = call->conn;
    if (!c) return;
    c->call = NULL;
    call->conn = NULL;
    conn_close(c);
}

void syc_hc_call_free(syc_hc_call_t *call)
{
    syc_hc_resp_free(&call->resp);
}

size_t syc_hc_connections(const syc_hc_t *hc)
{
    size_t n = 0;
    for (const hc_conn_t *c = hc->conns; c; c = c->next)
        n += !c->closing;
    return n;
}

syc_hc_t *syc_hc_new(uv_loop_t *loop, size_t max_idle)
{
    syc_hc_t *hc = calloc(1, sizeof(*hc));
    if (!hc) return NULL;
    hc->loop = loop;
    hc->max_idle = max_idle ? max_idle : 1;
    return hc;
}

void syc_hc_close(syc_hc_t *hc, void (*closed)(void *arg), void *arg)
{
    hc->closing = true;
    hc->closed = closed;
    hc->closed_arg = arg;
    hc_conn_t *next;
    for (hc_conn_t *c = hc->conns; c; c = next) {
        next = c->next; /* c may be freed by conn_close */
        if (c->call) c->call->conn = NULL;
        c->call = NULL;
        conn_close(c);
    }
    hc_maybe_free(hc);
}
