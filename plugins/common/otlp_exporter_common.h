/*
 * otlp_exporter_common.h - the instance glue both OTLP exporters (otlp over gRPC,
 * otlphttp) share around exporterhelper.h and curl_uv.h: the state every instance
 * has (helper, curl multi handle, per-signal URLs, request headers), one request's
 * body and curl exchange, the helper's transport ops (send, abort, free) and the
 * plugin's start, consume, shutdown and destroy entries.
 *
 * A plugin's state struct has a syc_oxp_t as its first member, so that the plugin's
 * state pointer is also the syc_oxp_t's and the entries below serve directly in its
 * sy_plugin_t. The plugin keeps only what differs: its configuration, URLs and
 * headers (filled in create() before syc_oxp_create_done()), and the syc_oxp_ops_t
 * that builds a request's body, sets its own curl options and judges the answer.
 * Everything runs on the instance's loop thread.
 */
#ifndef SY_OTLP_EXPORTER_COMMON_H
#define SY_OTLP_EXPORTER_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/auth.h>
#include <switchyard/plugin.h>

#include "curl_uv.h"
#include "exporterhelper.h"
#include "http_client.h"

typedef struct syc_oxp_s syc_oxp_t;

/* Per request: the body, built once and kept for every attempt, and the exchange. */
typedef struct syc_oxp_req_s {
    syc_curl_exchange_t x;
    bool x_ready;
    const uint8_t *body;
    size_t body_len;
    uint8_t *owned; /* freed with the request: the body when it is not the batch's bytes */
    /* Instead of one body: the batch's pieces (syc_oxp_take_pieces()), which
     * curl's read callback writes one after the other, so that a merged batch
     * goes out without being joined into one buffer first. body is NULL and
     * body_len the total; the array is freed with the request. */
    sy_piece_t *pieces;
    size_t npieces, piece_at, piece_off;
    uint8_t prefix[8];               /* a first piece of the caller's (gRPC's message header) */
    struct curl_slist *headers;      /* set by build_body: this request's own header list
                                        (instead of the instance's), freed with the request */
    struct curl_slist *auth_headers; /* with an authenticator: the headers of this attempt */
    /* Optional, for a batch sent as several HTTP requests (a body split to a size
     * bound, as prometheusremotewrite does): build_body sets `split` and fills
     * parts[0..nparts) (the array and each part malloc'ed, freed with the request)
     * instead of body. The parts go one after the other within one attempt, each
     * once the one before was judged SYC_XH_SENT; a retry starts again at the part
     * that failed (`part`), so delivered parts are not sent twice. With no part at
     * all the attempt succeeds at once (from a timer, never inside send()). */
    bool split;
    struct syc_oxp_part_s {
        uint8_t *data;
        size_t len;
    } * parts;
    size_t nparts, part;
    /* The zero-part case's timer, until it fires: a libuv timer of its own on the
     * exporter's loop, not api->timer_start(), whose timers the host closes when
     * shutdown() returns while such a request may still be in flight. */
    uv_timer_t *empty_timer;
    /* Sent by the own HTTP/1.1 client (syc_oxp_t.direct, http_client_oxp.c): the
     * call, its request head and the body as one piece when not in pieces. */
    syc_hc_call_t *call;
    char *head;
    sy_piece_t one;
} syc_oxp_req_t;

/* For build_body: points r at req->batch's encoded request as it is, in pieces
 * when the batch is a merge the host keeps unjoined (ABI 1.6 batch_pieces), in
 * one body otherwise; after prefix[0..prefix_len) (at most 8 bytes, copied into
 * r) when prefix_len > 0. Returns SY_OK or SY_ENOMEM. */
int syc_oxp_take_pieces(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, const uint8_t *prefix,
                        size_t prefix_len);

/* For build_body of an exporter that compresses with `compression` (a
 * SYC_XH_COMPRESS_*): points r at the batch's compressed twin (ABI 1.7), the
 * bytes the clients sent (gzip members or zstd frames back to back, one per
 * request merged), after prefix[0..prefix_len) as syc_oxp_take_pieces() does,
 * so that nothing is compressed again. SY_OK; SY_ENOTSUP when the batch has no
 * twin of that encoding (it was changed, or came otherwise compressed or not at
 * all): compress it then; SY_ENOMEM. */
int syc_oxp_take_twin(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, int compression,
                      const uint8_t *prefix, size_t prefix_len);

/* The batch's encoded request in one buffer, for a body made from it (compressed,
 * or written as JSON), without joining a merge's pieces inside the batch, where
 * the joined copy would stay as long as the batch (twice the memory that the
 * sending queue counts): a merge is gathered into a malloc'ed buffer returned in
 * *tmp, which the caller frees once the body is made; otherwise *tmp is NULL and
 * the batch's own bytes are returned. NULL when memory runs out. */
const uint8_t *syc_oxp_flat(syc_oxp_t *o, sy_batch_t *batch, size_t *len, uint8_t **tmp);

/* What differs between the exporters. All are called on the loop thread. */
typedef struct syc_oxp_ops_s {
    /* Sets r->body and r->body_len from req->batch (r->owned if it allocates).
     * Returns 0 or SY_ENOMEM; the request then fails permanently. */
    int (*build_body)(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r);
    /* Optional: sets the plugin's own options on a new request's easy handle, after
     * the shared ones (URL, POST body, headers, user agent, timeout) and before TLS. */
    void (*setup)(syc_oxp_t *o, syc_xh_req_t *req, CURL *easy);
    /* Writes res->message for a transfer that got no answer: curl failed with `rc`
     * for the reason `why`; res->verdict is already set as syc_curl_retryable() says. */
    void (*failed)(syc_oxp_t *o, syc_xh_req_t *req, CURLcode rc, const char *why,
                   syc_xh_result_t *res);
    /* Judges an answer with HTTP status `status` (the rest is in r->x): fills res,
     * which comes in as {SYC_XH_SENT, retry_after_ms -1}. */
    void (*judge)(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r, long status,
                  syc_xh_result_t *res);
    /* Optional: frees what the plugin's state holds beyond the syc_oxp_t (destroy). */
    void (*free)(syc_oxp_t *o);
} syc_oxp_ops_t;

/* The shared part of an instance; the first member of the plugin's state. */
struct syc_oxp_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const syc_oxp_ops_t *ops;
    const syc_xh_config_t *xh_cfg; /* the plugin's configuration: outlives the instance */
    const syc_tls_client_t *tls;
    const char *user_agent; /* a string literal */
    syc_curl_uv_t *curl;    /* from start() until drained */
    syc_xh_t *xh;
    char *urls[3]; /* traces, metrics, logs (syc_oxp_signal_index); NULL: no endpoint */
    struct curl_slist *headers;
    /* auth.authenticator: the id the plugin set in create() (NULL: none), and the
     * client authenticator resolved from it in start(); its header lines are
     * added to every attempt. */
    const char *auth_id;
    const sy_auth_client_t *auth;
    /* Whether syc_oxp_take_twin() may send what the clients compressed (true
     * unless the plugin says otherwise), and the count of requests it did. */
    bool twin;
    sy_metric_t *m_twin;
    /* Set by the plugin in create() when every URL is plain http:// and nothing
     * needs curl: requests go through the own HTTP/1.1 client (http_client.h),
     * from start() on, to targets[i] (parsed from urls[i]). */
    bool direct;
    syc_hc_target_t *targets[3];
    syc_hc_t *hc;
};

/* The own HTTP/1.1 client's part (http_client_oxp.c). syc_oxp_direct_send() starts
 * one attempt of a request whose body build_body made; syc_oxp_direct_abort()
 * and syc_oxp_direct_free() are the helper's abort and req_free for it. */
int syc_oxp_direct_send(syc_oxp_t *o, syc_xh_req_t *req, syc_oxp_req_t *r);
void syc_oxp_direct_abort(syc_oxp_t *o, syc_oxp_req_t *r);
void syc_oxp_direct_free(syc_oxp_req_t *r);

/* The headers of one attempt with an authenticator: `base` and the
 * authenticator's lines (NULL when it fails or memory runs out; logged). */
struct curl_slist *syc_oxp_auth_headers(syc_oxp_t *o, const struct curl_slist *base);

/* The index of a signal in syc_oxp_t.urls. */
int syc_oxp_signal_index(sy_signal_t signal);

/*
 * Allocates a zeroed plugin state of `size` bytes (at least sizeof(syc_oxp_t)) whose
 * first member is the syc_oxp_t, and fills in the arguments. NULL when out of memory.
 */
void *syc_oxp_alloc(size_t size, const sy_host_api_t *api, sy_instance_t *inst,
                    const syc_oxp_ops_t *ops, const syc_xh_config_t *xh_cfg,
                    const syc_tls_client_t *tls, const char *user_agent);

/*
 * Ends the plugin's create() once it has filled o->urls and o->headers: makes the
 * helper and hands the state out in *state (SY_OK). When o->headers is NULL (out of
 * memory) or the helper cannot be made, logs why, destroys the state and returns
 * SY_ERROR.
 */
int syc_oxp_create_done(syc_oxp_t *o, void **state);

/* Ends the plugin's create() on a failure it has logged: destroys the state and
 * returns SY_ERROR. */
int syc_oxp_create_fail(syc_oxp_t *o);

/* Appends one header line to `l`. On failure frees the list and returns NULL; a NULL
 * list stays NULL, so a chain of calls needs one check at the end. */
struct curl_slist *syc_oxp_header(struct curl_slist *l, const char *line);

/* syc_oxp_header() of a printf-formatted line. */
struct curl_slist *syc_oxp_headerf(struct curl_slist *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* syc_oxp_header() of "key: value" for each of the configuration's `headers`. */
struct curl_slist *syc_oxp_header_map(struct curl_slist *l, const sy_cfg_strmap_t *headers);

/* Checks the configuration's `headers` (no ':' or line break in a key, no line
 * break in a value): 0, or SY_EINVAL with a sentence in err. */
int syc_oxp_validate_headers(const sy_cfg_strmap_t *headers, char *err, size_t err_len);

/* The `auth.authenticator` field of an exporter whose config struct T has the
 * string member m. */
#define SYC_OXP_AUTH_FIELD(T, m)                                                             \
    {                                                                                        \
        SY_CFG_FIELD("auth.authenticator", SY_CFG_STRING, T, m),                             \
            .description = "ID of an extension (listed in service.extensions) whose "        \
                           "headers are added to every request: bearertokenauth, basicauth " \
                           "with client_auth."                                               \
    }

/* The plugin's entries (sy_plugin_t start, consume, shutdown, destroy); `state` is
 * the one syc_oxp_create_done() handed out. */
int syc_oxp_start(void *state);
int syc_oxp_consume(void *state, sy_batch_t *batch);
void syc_oxp_shutdown(void *state);
void syc_oxp_destroy(void *state);

#endif
