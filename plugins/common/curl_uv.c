/*
 * curl_uv.c - libcurl multi on a libuv loop (see curl_uv.h).
 *
 * Each socket curl asks us to watch gets a poll_ctx_t holding a uv_poll_t, found
 * again through curl_multi_assign(). Closing is asynchronous, as always with libuv:
 * a poll context is freed in its close callback, and the whole syc_curl_uv_t only
 * when its timer and every poll handle have been closed.
 *
 * curl_global_init(): since curl 7.84 it is thread-safe when curl reports the
 * "threadsafe" feature (Debian's 7.88 does), and it counts its callers, so every
 * syc_curl_uv_t takes one reference and gives it back when freed. Two exporter
 * instances on two loop threads may therefore start at the same moment.
 */
#include "curl_uv.h"
#include "tls_names.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <switchyard/plugin.h>

typedef struct poll_ctx_s poll_ctx_t;

struct poll_ctx_s {
    uv_poll_t poll;
    curl_socket_t fd;
    syc_curl_uv_t *owner;
    poll_ctx_t *prev, *next; /* every live poll context, to close them at the end */
};

/* What a transfer carries in CURLOPT_PRIVATE; listed so that close can forget
 * the ones still running. */
typedef struct transfer_s transfer_t;
struct transfer_s {
    syc_curl_done_fn done;
    void *arg;
    CURL *easy;
    transfer_t *prev, *next;
};

struct syc_curl_uv_s {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    poll_ctx_t *polls;
    transfer_t *transfers;
    size_t active;
    size_t open_handles; /* libuv handles not yet closed (timer + polls) */
    int reading;         /* inside check_multi_info(): closing waits for it */
    bool closing;
    bool closed_multi;
    bool global_ref;
    void (*closed)(void *arg);
    void *closed_arg;
};

static void maybe_free(syc_curl_uv_t *c)
{
    if (!c->closing || c->open_handles) return;
    void (*closed)(void *) = c->closed;
    void *arg = c->closed_arg;
    if (c->global_ref) curl_global_cleanup();
    free(c);
    if (closed) closed(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
    syc_curl_uv_t *c = h->data;
    c->open_handles--;
    maybe_free(c);
}

static void on_poll_closed(uv_handle_t *h)
{
    poll_ctx_t *p = h->data;
    syc_curl_uv_t *c = p->owner;
    free(p);
    c->open_handles--;
    maybe_free(c);
}

static void poll_close(poll_ctx_t *p)
{
    syc_curl_uv_t *c = p->owner;
    if (p->prev)
        p->prev->next = p->next;
    else
        c->polls = p->next;
    if (p->next) p->next->prev = p->prev;
    uv_poll_stop(&p->poll);
    uv_close((uv_handle_t *)&p->poll, on_poll_closed);
}

/* Detaches a transfer from the multi handle and frees what this module kept. */
static void transfer_forget(syc_curl_uv_t *c, transfer_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        c->transfers = t->next;
    if (t->next) t->next->prev = t->prev;
    curl_multi_remove_handle(c->multi, t->easy);
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, NULL);
    c->active--;
    free(t);
}

/* Hands every finished transfer to its owner. A done callback may add or cancel
 * transfers: curl allows both while messages are being read. */
static void finish_close(syc_curl_uv_t *c);

static void check_multi_info(syc_curl_uv_t *c)
{
    CURLMsg *msg;
    int pending;
    c->reading++;
    while (!c->closing && (msg = curl_multi_info_read(c->multi, &pending))) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        transfer_t *t = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
        if (!t) continue;
        syc_curl_done_fn done = t->done;
        void *arg = t->arg;
        transfer_forget(c, t);
        done(arg, easy, result);
    }
    /* A done callback may have closed us: the multi handle goes only now that
     * curl_multi_info_read() is no longer running. */
    if (--c->reading == 0 && c->closing) finish_close(c);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    poll_ctx_t *p = h->data;
    syc_curl_uv_t *c = p->owner;
    int flags = 0;
    if (status < 0) {
        flags = CURL_CSELECT_ERR;
    } else {
        if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
    }
    int running;
    curl_multi_socket_action(c->multi, p->fd, flags, &running);
    check_multi_info(c);
}

static void on_timer(uv_timer_t *h)
{
    syc_curl_uv_t *c = h->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(c);
}

/* CURLMOPT_TIMERFUNCTION: -1 stops the timer; otherwise (re)start it. A timeout of
 * 0 also goes through the loop, since curl forbids calling back into the multi
 * handle from inside this callback. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    syc_curl_uv_t *c = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: what curl wants to know about one socket. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    syc_curl_uv_t *c = userp;
    poll_ctx_t *p = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (p) {
            curl_multi_assign(c->multi, fd, NULL);
            poll_close(p);
        }
        return 0;
    }
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p) return -1;
        if (uv_poll_init_socket(c->loop, &p->poll, fd) != 0) {
            free(p);
            return -1;
        }
        p->fd = fd;
        p->owner = c;
        p->poll.data = p;
        p->next = c->polls;
        if (c->polls) c->polls->prev = p;
        c->polls = p;
        c->open_handles++;
        curl_multi_assign(c->multi, fd, p);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) events |= UV_WRITABLE;
    uv_poll_start(&p->poll, events, on_poll);
    return 0;
}

syc_curl_uv_t *syc_curl_uv_new(uv_loop_t *loop, long max_host_connections, char *err,
                               size_t err_len)
{
    syc_curl_uv_t *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    CURLcode gc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (gc != CURLE_OK) {
        snprintf(err, err_len, "libcurl could not be initialised: %s", curl_easy_strerror(gc));
        goto fail;
    }
    c->global_ref = true;
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        snprintf(err, err_len, "libcurl could not make a multi handle");
        goto fail;
    }
    if (uv_timer_init(loop, &c->timer) != 0) {
        snprintf(err, err_len, "could not make a timer on the loop");
        goto fail;
    }
    c->timer.data = c;
    c->open_handles = 1;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    if (max_host_connections > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host_connections);
    return c;
fail:
    if (c->multi) curl_multi_cleanup(c->multi);
    if (c->global_ref) curl_global_cleanup();
    free(c);
    return NULL;
}

int syc_curl_uv_add(syc_curl_uv_t *c, CURL *easy, syc_curl_done_fn done, void *arg)
{
    if (c->closing) return SY_ECLOSED;
    transfer_t *t = calloc(1, sizeof(*t));
    if (!t) return SY_ENOMEM;
    t->done = done;
    t->arg = arg;
    t->easy = easy;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
        curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
        free(t);
        return SY_ERROR;
    }
    t->next = c->transfers;
    if (c->transfers) c->transfers->prev = t;
    c->transfers = t;
    c->active++;
    return SY_OK;
}

void syc_curl_uv_cancel(syc_curl_uv_t *c, CURL *easy)
{
    transfer_t *t = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&t);
    if (t) transfer_forget(c, t); /* else not ours, or already finished */
}

size_t syc_curl_uv_active(const syc_curl_uv_t *c)
{
    return c->active;
}

void syc_curl_uv_close(syc_curl_uv_t *c, void (*closed)(void *arg), void *arg)
{
    if (c->closing) return;
    /* Forget the transfers still under way: by the contract no done callback comes
     * after close, and their easy handles stay with their owners. */
    while (c->transfers)
        transfer_forget(c, c->transfers);
    c->closing = true;
    c->closed = closed;
    c->closed_arg = arg;
    if (!c->reading) finish_close(c);
}

static void finish_close(syc_curl_uv_t *c)
{
    if (c->closed_multi) return;
    c->closed_multi = true;
    /* curl_multi_cleanup() closes the cached connections, telling socket_cb to
     * remove their sockets; whatever poll is left after that is closed here. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->polls)
        poll_close(c->polls);
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

/* ---- OTLP client pieces --------------------------------------------------------- */

/* The index of a TLS version name (0 for 1.0 .. 3 for 1.3), or -1. */
static int tls_version_index(const char *v)
{
    int rank = syc_tls_version_rank(v);
    return rank > 0 ? rank - 1 : -1;
}

int syc_tls_client_check(const syc_tls_client_t *tls, char *err, size_t err_len)
{
    const char *min = tls->min_version, *max = tls->max_version;
    if (min && *min && tls_version_index(min) < 0) {
        snprintf(err, err_len,
                 "'tls.min_version': unsupported TLS version \"%.20s\" (1.0, 1.1, "
                 "1.2 or 1.3)",
                 min);
        return SY_EINVAL;
    }
    if (max && *max && tls_version_index(max) < 0) {
        snprintf(err, err_len,
                 "'tls.max_version': unsupported TLS version \"%.20s\" (1.0, 1.1, "
                 "1.2 or 1.3)",
                 max);
        return SY_EINVAL;
    }
    if (min && *min && max && *max && tls_version_index(min) > tls_version_index(max)) {
        snprintf(err, err_len, "'tls.min_version' (%s) is above 'tls.max_version' (%s)", min, max);
        return SY_EINVAL;
    }
    if (tls->reload_interval < 0) {
        snprintf(err, err_len, "'tls.reload_interval' must not be negative");
        return SY_EINVAL;
    }
    char list[1024];
    return syc_tls_cipher_list(&tls->cipher_suites, "'tls.cipher_suites'", list, sizeof(list), err,
                               err_len);
}

void syc_curl_apply_tls(CURL *easy, const syc_tls_client_t *tls)
{
    static const long min_opt[] = {CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_TLSv1_1,
                                   CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_TLSv1_3};
    static const long max_opt[] = {CURL_SSLVERSION_MAX_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_1,
                                   CURL_SSLVERSION_MAX_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_3};
    int min = tls_version_index(tls->min_version), max = tls_version_index(tls->max_version);
    /* configtls' default minimum is TLS 1.2; no maximum means the highest known. */
    curl_easy_setopt(easy, CURLOPT_SSLVERSION,
                     (min < 0 ? CURL_SSLVERSION_TLSv1_2 : min_opt[min]) |
                         (max < 0 ? CURL_SSLVERSION_MAX_DEFAULT : max_opt[max]));
    syc_curl_tls_files(easy, tls); /* ca_file, cert_file, key_file; reload_interval */
    if (tls->insecure_skip_verify) {
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    /* Checked by validate(); only TLS 1.2 suites make a list (1.3's are not
     * configurable, as in Go). */
    char list[1024], err[256];
    if (syc_tls_cipher_list(&tls->cipher_suites, "tls.cipher_suites", list, sizeof(list), err,
                            sizeof(err)) == 0 &&
        list[0])
        curl_easy_setopt(easy, CURLOPT_SSL_CIPHER_LIST, list);
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    syc_curl_exchange_t *x = arg;
    size_t len = size * n;
    size_t room = SYC_CURL_MAX_RESPONSE - x->body_len;
    size_t take = len < room ? len : room;
    if (take < len) x->body_truncated = true;
    if (take && x->body_len + take > x->body_cap) {
        size_t cap = x->body_cap ? x->body_cap : 1024;
        while (cap < x->body_len + take)
            cap *= 2;
        if (cap > SYC_CURL_MAX_RESPONSE) cap = SYC_CURL_MAX_RESPONSE;
        uint8_t *b = realloc(x->body, cap);
        if (!b) return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
        x->body = b;
        x->body_cap = cap;
    }
    if (take) memcpy(x->body + x->body_len, data, take);
    x->body_len += take;
    return len;
}

/* Copies a header's value (blanks trimmed) when its name matches. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t out_len)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl)) return false;
    const char *v = line + nl + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && isspace((unsigned char)end[-1]))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl >= out_len) vl = out_len - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return true;
}

/* Called for every header line, HTTP/2 trailers included (curl passes trailers to
 * the header callback after the body; checked with curl 7.88 against grpc-js). */
static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    syc_curl_exchange_t *x = arg;
    size_t len = size * n;
    static const struct {
        const char *name;
        size_t offset, size;
    } wanted[] = {
        {"retry-after", offsetof(syc_curl_exchange_t, retry_after), sizeof(x->retry_after)},
        {"content-type", offsetof(syc_curl_exchange_t, content_type), sizeof(x->content_type)},
        {"grpc-status", offsetof(syc_curl_exchange_t, grpc_status), sizeof(x->grpc_status)},
        {"grpc-message", offsetof(syc_curl_exchange_t, grpc_message), sizeof(x->grpc_message)},
        {"grpc-encoding", offsetof(syc_curl_exchange_t, grpc_encoding), sizeof(x->grpc_encoding)},
        {"grpc-status-details-bin", offsetof(syc_curl_exchange_t, grpc_details),
         sizeof(x->grpc_details)},
    };
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
        if (header_value(line, len, wanted[i].name, (char *)x + wanted[i].offset, wanted[i].size))
            break;
    return len;
}

int syc_curl_exchange_init(syc_curl_exchange_t *x)
{
    memset(x, 0, sizeof(*x));
    x->easy = curl_easy_init();
    if (!x->easy) return SY_ENOMEM;
    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L);
    return SY_OK;
}

void syc_curl_exchange_clear(syc_curl_exchange_t *x)
{
    x->errbuf[0] = '\0';
    x->body_len = 0;
    x->body_truncated = false;
    x->retry_after[0] = x->content_type[0] = x->grpc_status[0] = '\0';
    x->grpc_message[0] = x->grpc_encoding[0] = x->grpc_details[0] = '\0';
}

void syc_curl_exchange_free(syc_curl_exchange_t *x)
{
    if (x->easy) curl_easy_cleanup(x->easy);
    free(x->body);
    x->easy = NULL;
    x->body = NULL;
}

bool syc_curl_retryable(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_WRITE_ERROR:
    case CURLE_READ_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
        return false;
    default:
        return true;
    }
}

int64_t syc_curl_retry_after_ms(const char *value)
{
    if (!value || !*value) return -1;
    char *end;
    if (isdigit((unsigned char)*value)) {
        long long secs = strtoll(value, &end, 10);
        if (*end != '\0' || secs < 0) return -1;
        return secs > 86400 ? 86400000 : secs * 1000;
    }
    time_t at = curl_getdate(value, NULL);
    if (at < 0) return -1;
    time_t now = time(NULL);
    if (at <= now) return 0;
    return at - now > 86400 ? 86400000 : (int64_t)(at - now) * 1000;
}
