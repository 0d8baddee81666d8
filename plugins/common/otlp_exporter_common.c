/*
 * otlp_exporter_common.c - the instance glue of the OTLP exporters (see the header).
 */
#include "otlp_exporter_common.h"
#include "signals.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int syc_oxp_signal_index(sy_signal_t signal)
{
    return syc_signal_info(signal)->index;
}

/* ---- headers and configuration ------------------------------------------------------ */

struct curl_slist *syc_oxp_header(struct curl_slist *l, const char *line)
{
    struct curl_slist *n = l ? curl_slist_append(l, line) : NULL;
    if (!n) curl_slist_free_all(l);
    return n;
}

struct curl_slist *syc_oxp_headerf(struct curl_slist *l, const char *fmt, ...)
{
    if (!l) return NULL;
    char *line = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&line, fmt, ap);
    va_end(ap);
    if (n < 0) {
        curl_slist_free_all(l);
        return NULL;
    }
    l = syc_oxp_header(l, line);
    free(line);
    return l;
}

struct curl_slist *syc_oxp_header_map(struct curl_slist *l, const sy_cfg_strmap_t *headers)
{
    for (size_t i = 0; l && i < headers->count; i++)
        l = syc_oxp_headerf(l, "%s: %s", headers->keys[i], headers->values[i]);
    return l;
}

int syc_oxp_validate_headers(const sy_cfg_strmap_t *headers, char *err, size_t err_len)
{
    for (size_t i = 0; i < headers->count; i++)
        if (strpbrk(headers->keys[i], ":\r\n") || strpbrk(headers->values[i], "\r\n")) {
            snprintf(err, err_len, "'headers': invalid header \"%.64s\"", headers->keys[i]);
            return SY_EINVAL;
        }
    return SY_OK;
}

/* ---- authentication ------------------------------------------------------------------ */

/* The headers of one attempt: the request's own (build_body's) or the
 * instance's, then the authenticator's lines (asked for every attempt, so a
 * rotated token is used from the next one on). NULL when the authenticator fails
 * or memory runs out. */
struct curl_slist *syc_oxp_auth_headers(syc_oxp_t *o, const struct curl_slist *base)
{
    char lines[8192];
    int n = o->auth->headers(o->auth->ctx, lines, sizeof(lines));
    if (n < 0) {
        SY_LOG(o->api, o->inst, SY_LOG_ERROR, "authenticator \"%s\" gave no headers (error %d)",
               o->auth_id, n);
        return NULL;
    }
    /* The base list is never empty (each exporter sets at least "Expect:"). */
    struct curl_slist *l = base ? curl_slist_append(NULL, base->data) : NULL;
    for (const struct curl_slist *h = base ? base->next : NULL; l && h; h = h->next)
        l = syc_oxp_header(l, h->data);
    if (!l) {
        SY_LOG(o->api, o->inst, SY_LOG_ERROR, "out of memory for the request's headers");
        return NULL;
    }
    for (char *line = lines, *end; *line; line = end + 2) {
        end = strstr(line, "\r\n");
        if (!end || !memchr(line, ':', (size_t)(end - line)) ||
            memchr(line, '\n', (size_t)(end - line))) {
            SY_LOG(o->api, o->inst, SY_LOG_ERROR,
                   "authenticator \"%s\" gave a header that is not a \"Name: value\" line",
                   o->auth_id);
            curl_slist_free_all(l);
            return NULL;
        }
        *end = '\0';
        if (!(l = syc_oxp_header(l, line))) return NULL;
    }
    explicit_bzero(lines, sizeof(lines));
    return l;
}

/* ---- one request: the helper's transport ops --------------------------------------- */

/* The batch's pieces in *out: `one` when they fit in its `room`, else a malloc'ed
 * array the caller frees (*out != one); one piece, the encoded bytes, from a host
 * without batch_pieces. With `encoding` ("gzip", "zstd"): the pieces of the
 * batch's compressed twin instead (ABI 1.7), 0 when it has none. Returns how
 * many, or 0 when memory runs out. */
static size_t pieces_of(syc_oxp_t *o, sy_batch_t *batch, const char *encoding, sy_piece_t *one,
                        size_t room, sy_piece_t **out)
{
    *out = one;
    const sy_host_api_t *api = o->api;
    size_t n;
    if (encoding)
        n = SY_API_HAS(api, batch_compressed_pieces)
                ? api->batch_compressed_pieces(batch, encoding, one, room)
                : 0;
    else
        n = SY_API_HAS(api, batch_pieces) ? api->batch_pieces(batch, one, room) : 0;
    if (n == 0) { /* no twin; or an older host: the bytes in one buffer */
        if (encoding) return 0;
        return (one[0].data = api->batch_encoded(batch, &one[0].len)) ? 1 : 0;
    }
    if (n <= room) return n;
    sy_piece_t *p = malloc(n * sizeof(*p));
    if (!p || (encoding ? api->batch_compressed_pieces(batch, encoding, p, n)
                        : api->batch_pieces(batch, p, n)) != n) {
        free(p);
        return 0;
    }
    *out = p;
    return n;
}

/* r's body: prefix[0..prefix_len) then the pieces (of the twin with `encoding`). */
static int take_pieces(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, const char *encoding,
                       const uint8_t *prefix, size_t prefix_len)
{
    if (prefix_len > sizeof(r->prefix)) return SY_ENOMEM;
    sy_piece_t one[8], *p;
    size_t n = pieces_of(o, req->batch, encoding, one, 8, &p);
    if (n == 0) return encoding ? SY_ENOTSUP : SY_ENOMEM;
    if (n == 1 && prefix_len == 0) { /* one buffer: the bytes as they are */
        r->body = p[0].data;
        r->body_len = p[0].len;
        return SY_OK;
    }
    size_t first = prefix_len ? 1 : 0;
    r->pieces = malloc((first + n) * sizeof(*r->pieces));
    if (r->pieces) {
        memcpy(r->pieces + first, p, n * sizeof(*r->pieces));
        if (first) {
            memcpy(r->prefix, prefix, prefix_len);
            r->pieces[0] = (sy_piece_t){r->prefix, prefix_len};
        }
        r->npieces = first + n;
        r->body = NULL;
        r->body_len = 0;
        for (size_t i = 0; i < r->npieces; i++)
            r->body_len += r->pieces[i].len;
    }
    if (p != one) free(p);
    return r->pieces ? SY_OK : SY_ENOMEM;
}

int syc_oxp_take_pieces(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, const uint8_t *prefix,
                        size_t prefix_len)
{
    return take_pieces(o, req, r, NULL, prefix, prefix_len);
}

int syc_oxp_take_twin(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, int compression,
                      const uint8_t *prefix, size_t prefix_len)
{
    const char *encoding = compression == SYC_XH_COMPRESS_GZIP   ? "gzip"
                           : compression == SYC_XH_COMPRESS_ZSTD ? "zstd"
                                                                 : NULL;
    if (!encoding || !o->twin) return SY_ENOTSUP;
    int rc = take_pieces(o, req, r, encoding, prefix, prefix_len);
    if (rc == SY_OK && o->m_twin) o->api->metric_add(o->m_twin, 1);
    return rc;
}

const uint8_t *syc_oxp_flat(syc_oxp_t *o, sy_batch_t *batch, size_t *len, uint8_t **tmp)
{
    *tmp = NULL;
    sy_piece_t one[8], *p;
    size_t n = pieces_of(o, batch, NULL, one, 8, &p);
    if (n == 0) return NULL;
    if (n == 1) {
        *len = p[0].len;
        return p[0].data;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += p[i].len;
    uint8_t *buf = malloc(total ? total : 1);
    for (size_t i = 0, off = 0; buf && i < n; off += p[i].len, i++)
        memcpy(buf + off, p[i].data, p[i].len);
    if (p != one) free(p);
    *tmp = buf;
    *len = total;
    return buf;
}

/* curl's read callback over r's pieces: copies the next bytes into its buffer. */
static size_t read_pieces(char *buf, size_t size, size_t nitems, void *arg)
{
    syc_oxp_req_t *r = arg;
    size_t room = size * nitems, n = 0;
    while (n < room && r->piece_at < r->npieces) {
        const sy_piece_t *p = &r->pieces[r->piece_at];
        size_t k = p->len - r->piece_off;
        if (k > room - n) k = room - n;
        memcpy(buf + n, p->data + r->piece_off, k);
        n += k;
        r->piece_off += k;
        if (r->piece_off == p->len) {
            r->piece_at++;
            r->piece_off = 0;
        }
    }
    return n;
}

/* curl rewinds the body (a redirect, an authentication round, a resend on a
 * reused connection that closed): back to `offset` from the start. */
static int seek_pieces(void *arg, curl_off_t offset, int origin)
{
    syc_oxp_req_t *r = arg;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    size_t left = (size_t)offset;
    r->piece_at = r->piece_off = 0;
    while (left && left >= r->pieces[r->piece_at].len) {
        left -= r->pieces[r->piece_at].len;
        r->piece_at++;
    }
    r->piece_off = left;
    return CURL_SEEKFUNC_OK;
}

/* Points the easy handle at r's body, or at its pieces from the first byte. */
static void set_body(syc_oxp_req_t *r)
{
    CURL *e = r->x.easy;
    if (r->npieces) {
        r->piece_at = r->piece_off = 0;
        curl_easy_setopt(e, CURLOPT_READFUNCTION, read_pieces);
        curl_easy_setopt(e, CURLOPT_READDATA, r);
        curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, seek_pieces);
        curl_easy_setopt(e, CURLOPT_SEEKDATA, r);
    } else {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)r->body);
    }
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    /* Fewer, larger writes to the socket for large bodies: curl copies the body
     * into this buffer either way (64 KiB by default); 512 KiB made pass-through
     * 1.27 times as fast (a 224 KB request in one send, docs/benchmarks.md), 2 MiB
     * no faster. One per request in flight (sending_queue.num_consumers). */
    if (r->body_len > 65536) curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
}

/* Points the easy handle at the body of part r->part of a split request. */
static void set_part_body(syc_oxp_req_t *r)
{
    r->body = r->parts[r->part].data;
    r->body_len = r->parts[r->part].len;
    set_body(r);
}

static void on_done(void *arg, CURL *easy, CURLcode rc)
{
    syc_xh_req_t *req = arg;
    syc_oxp_req_t *r = req->transport;
    syc_oxp_t *o = syc_xh_req_ctx(req);
    syc_xh_result_t res = {.verdict = SYC_XH_SENT, .retry_after_ms = -1};
    if (rc != CURLE_OK) {
        res.verdict = syc_curl_retryable(rc) ? SYC_XH_RETRYABLE : SYC_XH_PERMANENT;
        o->ops->failed(o, req, rc, r->x.errbuf[0] ? r->x.errbuf : curl_easy_strerror(rc), &res);
    } else {
        long status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        o->ops->judge(o, req, r, status, &res);
    }
    if (res.verdict == SYC_XH_SENT && r->split && r->part + 1 < r->nparts && o->curl) {
        /* The next part, as the same attempt. */
        r->part++;
        syc_curl_exchange_clear(&r->x);
        set_part_body(r);
        if (syc_curl_uv_add(o->curl, r->x.easy, on_done, req) == 0) return;
        res.verdict = SYC_XH_RETRYABLE;
        snprintf(res.message, sizeof(res.message), "curl refused the transfer of part %zu",
                 r->part + 1);
    }
    syc_xh_attempt_done(req, &res);
}

static void empty_timer_closed(uv_handle_t *h)
{
    free(h);
}

/* Stops and lets go of a request's zero-part timer, if it has one. */
static void empty_timer_stop(syc_oxp_req_t *r)
{
    if (!r->empty_timer) return;
    uv_timer_stop(r->empty_timer);
    uv_close((uv_handle_t *)r->empty_timer, empty_timer_closed);
    r->empty_timer = NULL;
}

/* A split request with nothing to send: done, from a timer as the helper wants. */
static void on_empty(uv_timer_t *t)
{
    syc_xh_req_t *req = t->data;
    empty_timer_stop(req->transport);
    syc_xh_result_t res = {.verdict = SYC_XH_SENT, .retry_after_ms = -1};
    syc_xh_attempt_done(req, &res);
}

static int empty_timer_start(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r)
{
    uv_timer_t *t = malloc(sizeof(*t));
    if (!t) return SY_ENOMEM;
    if (uv_timer_init(o->api->loop(o->inst), t) != 0) {
        free(t);
        return SY_ENOMEM;
    }
    t->data = req;
    r->empty_timer = t;
    uv_timer_start(t, on_empty, 0, 0);
    return SY_OK;
}

static int oxp_send(void *ctx, syc_xh_req_t *req)
{
    syc_oxp_t *o = ctx;
    syc_oxp_req_t *r = req->transport;
    const char *url = o->urls[syc_oxp_signal_index(req->signal)];
    if (!url) {
        SY_LOG(o->api, o->inst, SY_LOG_ERROR, "no endpoint is configured for this signal");
        return SY_EINVAL;
    }
    if (!o->curl) return SY_ECLOSED;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r) return SY_ENOMEM;
        req->transport = r;
        if (o->ops->build_body(o, req, r) < 0) return SY_ENOMEM;
        if (o->hc && !r->split) return syc_oxp_direct_send(o, req, r);
        if (r->split && r->nparts == 0) return empty_timer_start(o, req, r);
        if (r->split) {
            r->body = r->parts[0].data;
            r->body_len = r->parts[0].len;
        }
        if (syc_curl_exchange_init(&r->x) < 0) return SY_ENOMEM;
        r->x_ready = true;
        CURL *e = r->x.easy;
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        set_body(r);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers ? r->headers : o->headers);
        curl_easy_setopt(e, CURLOPT_USERAGENT, o->user_agent);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(o->xh_cfg->timeout_ns / 1000000));
        if (o->ops->setup) o->ops->setup(o, req, e);
    } else if (r->call) {
        return syc_oxp_direct_send(o, req, r);
    } else {
        syc_curl_exchange_clear(&r->x);
        if (r->split)
            set_part_body(r); /* again from the part that failed */
        else if (r->npieces)
            set_body(r); /* from the first byte */
    }
    /* Every attempt: a retry sees files re-read after tls.reload_interval. */
    syc_curl_apply_tls(r->x.easy, o->tls);
    if (o->auth) {
        struct curl_slist *l = syc_oxp_auth_headers(o, r->headers ? r->headers : o->headers);
        if (!l) return SY_ERROR;
        curl_easy_setopt(r->x.easy, CURLOPT_HTTPHEADER, l);
        curl_slist_free_all(r->auth_headers); /* the previous attempt's, which has ended */
        r->auth_headers = l;
    }
    return syc_curl_uv_add(o->curl, r->x.easy, on_done, req);
}

static void oxp_abort(void *ctx, syc_xh_req_t *req)
{
    syc_oxp_t *o = ctx;
    syc_oxp_req_t *r = req->transport;
    if (r && r->x_ready && o->curl) syc_curl_uv_cancel(o->curl, r->x.easy);
    if (r && r->call) syc_oxp_direct_abort(o, r);
    if (r) empty_timer_stop(r);
}

static void oxp_req_free(void *ctx, syc_xh_req_t *req)
{
    (void)ctx;
    syc_oxp_req_t *r = req->transport;
    if (!r) return;
    if (r->x_ready) syc_curl_exchange_free(&r->x);
    syc_oxp_direct_free(r);
    curl_slist_free_all(r->auth_headers);
    empty_timer_stop(r);
    for (size_t i = 0; i < r->nparts; i++)
        free(r->parts[i].data);
    free(r->parts);
    free(r->pieces);
    free(r->owned);
    curl_slist_free_all(r->headers);
    free(r);
    req->transport = NULL;
}

static const syc_xh_ops_t oxp_ops = {
    .send = oxp_send,
    .abort = oxp_abort,
    .req_free = oxp_req_free,
};

/* ---- the instance ------------------------------------------------------------------ */

void *syc_oxp_alloc(size_t size, const sy_host_api_t *api, sy_instance_t *inst,
                    const syc_oxp_ops_t *ops, const syc_xh_config_t *xh_cfg,
                    const syc_tls_client_t *tls, const char *user_agent)
{
    if (size < sizeof(syc_oxp_t)) return NULL;
    syc_oxp_t *o = calloc(1, size);
    if (!o) return NULL;
    o->api = api;
    o->inst = inst;
    o->ops = ops;
    o->xh_cfg = xh_cfg;
    o->tls = tls;
    o->user_agent = user_agent;
    o->twin = true;
    return o;
}

int syc_oxp_create_done(syc_oxp_t *o, void **state)
{
    char err[256];
    if (!o->headers) {
        SY_LOG(o->api, o->inst, SY_LOG_ERROR, "could not create the exporter: out of memory");
        return syc_oxp_create_fail(o);
    }
    o->m_twin = o->api->metric_register(
        o->inst, "exporter_sent_requests_compressed_as_received",
        "Requests sent with the bytes the clients compressed (gzip or zstd, one stream per "
        "request merged) rather than compressed again",
        SY_METRIC_COUNTER);
    o->xh = syc_xh_new(o->api, o->inst, o->xh_cfg, &oxp_ops, o, err, sizeof(err));
    if (!o->xh) {
        SY_LOG(o->api, o->inst, SY_LOG_ERROR, "could not create the exporter: %s", err);
        return syc_oxp_create_fail(o);
    }
    *state = o;
    return SY_OK;
}

int syc_oxp_create_fail(syc_oxp_t *o)
{
    syc_oxp_destroy(o);
    return SY_ERROR;
}

/* Everything sent or given up: close curl's handles (the loop runs until they are). */
static void on_drained(void *arg)
{
    syc_oxp_t *o = arg;
    if (o->hc) syc_hc_close(o->hc, NULL, NULL);
    o->hc = NULL;
    if (!o->curl) return;
    syc_curl_uv_close(o->curl, NULL, NULL);
    o->curl = NULL;
}

int syc_oxp_start(void *state)
{
    syc_oxp_t *o = state;
    char err[256];
    if (o->auth_id && *o->auth_id) {
        if (SY_API_HAS(o->api, extension_get))
            o->auth = o->api->extension_get(o->inst, o->auth_id, SY_AUTH_CLIENT);
        if (!o->auth || !o->auth->headers) {
            o->api->log(o->inst, SY_LOG_ERROR,
                        "auth: failed to resolve authenticator \"%s\": authenticator not found "
                        "(it must be an extension listed in service.extensions that adds "
                        "client credentials, such as bearertokenauth or basicauth with "
                        "client_auth)",
                        o->auth_id);
            o->auth = NULL;
            return SY_ERROR;
        }
    }
    int rc = syc_xh_start(o->xh);
    if (rc < 0) {
        /* SY_EINVAL: the persistent queue could not be opened (logged why). */
        if (rc == SY_ERROR)
            SY_LOG(o->api, o->inst, SY_LOG_ERROR, "could not start: no timer on the loop");
        return SY_ERROR;
    }
    o->curl = syc_curl_uv_new(o->api->loop(o->inst), 0, err, sizeof(err));
    if (!o->curl) {
        SY_LOG(o->api, o->inst, SY_LOG_ERROR, "could not start: %s", err);
        syc_xh_shutdown(o->xh, 0, on_drained, o); /* closes the helper's timers */
        return SY_ERROR;
    }
    if (o->direct) {
        int64_t n = o->xh_cfg->queue_enabled ? o->xh_cfg->num_consumers : 1;
        o->hc = syc_hc_new(o->api->loop(o->inst), n > 0 ? (size_t)n : 1);
        if (!o->hc) {
            SY_LOG(o->api, o->inst, SY_LOG_ERROR, "could not start: out of memory");
            syc_xh_shutdown(o->xh, 0, on_drained, o);
            return SY_ERROR;
        }
    }
    return SY_OK;
}

int syc_oxp_consume(void *state, sy_batch_t *batch)
{
    syc_oxp_t *o = state;
    return syc_xh_consume(o->xh, batch);
}

void syc_oxp_shutdown(void *state)
{
    syc_oxp_t *o = state;
    uint64_t ms = (uint64_t)(o->xh_cfg->timeout_ns / 1000000);
    syc_xh_shutdown(o->xh, ms < 1000 ? 1000 : ms, on_drained, o);
}

void syc_oxp_destroy(void *state)
{
    syc_oxp_t *o = state;
    if (!o) return;
    syc_xh_free(o->xh);
    if (o->ops->free) o->ops->free(o);
    curl_slist_free_all(o->headers);
    for (int i = 0; i < 3; i++) {
        free(o->urls[i]);
        syc_hc_target_free(o->targets[i]);
    }
    free(o);
}
