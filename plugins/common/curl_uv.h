/*
 * curl_uv.h - libcurl's multi interface driven by a libuv loop.
 *
 * The standard integration: curl tells us which sockets to watch
 * (CURLMOPT_SOCKETFUNCTION) and when it wants a timeout (CURLMOPT_TIMERFUNCTION); we
 * watch them with uv_poll_t and one uv_timer_t and hand every event back through
 * curl_multi_socket_action(). Nothing blocks the loop: name resolution uses curl's
 * threaded resolver, connects and TLS handshakes are non-blocking.
 *
 * One syc_curl_uv_t lives on one loop and is used only from that loop's thread. It
 * multiplexes HTTP/2 streams over shared connections (CURLPIPE_MULTIPLEX).
 */
#ifndef SY_CURL_UV_H
#define SY_CURL_UV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <switchyard/plugin.h>
#include <uv.h>

typedef struct syc_curl_uv_s syc_curl_uv_t;

/* Called on the loop thread when a transfer has finished, with curl's result. The
 * easy handle has already been removed from the multi handle; the callee owns it
 * again (reuse it or curl_easy_cleanup() it). */
typedef void (*syc_curl_done_fn)(void *arg, CURL *easy, CURLcode result);

/*
 * Initialises curl once per process (curl_global_init is not thread-safe on every
 * build, so call this from a plugin's create(), which the host serializes per
 * loop thread; see the note in curl_uv.c) and makes a multi handle on `loop`.
 * `max_host_connections` bounds the connections to one host (0: no bound).
 * Returns NULL with a sentence in err.
 */
syc_curl_uv_t *syc_curl_uv_new(uv_loop_t *loop, long max_host_connections, char *err,
                               size_t err_len);

/*
 * Starts a transfer. `done(arg, easy, result)` is called exactly once, later, on
 * the loop thread (never from inside this call), unless syc_curl_uv_cancel() is
 * called first. The easy handle's CURLOPT_PRIVATE is used by this module.
 * Returns 0, or SY_ERROR when curl refuses the handle (nothing is called then).
 */
int syc_curl_uv_add(syc_curl_uv_t *c, CURL *easy, syc_curl_done_fn done, void *arg);

/* Stops a transfer started with syc_curl_uv_add() without calling its done
 * callback; the caller owns the easy handle again. */
void syc_curl_uv_cancel(syc_curl_uv_t *c, CURL *easy);

/* Transfers under way. */
size_t syc_curl_uv_active(const syc_curl_uv_t *c);

/*
 * Cancels whatever is still running (no done callbacks), closes the multi handle
 * and every libuv handle, and frees `c` once the last close callback has run, then
 * calls closed(arg) if given. The loop must keep running until then.
 */
void syc_curl_uv_close(syc_curl_uv_t *c, void (*closed)(void *arg), void *arg);

/* ---- what an OTLP client needs around one transfer ------------------------------- */

/* Client TLS settings, the collector's `tls` block (configtls.ClientConfig). */
typedef struct syc_tls_client_s {
    bool insecure; /* gRPC: plaintext h2c instead of TLS */
    char *ca_file;
    char *cert_file;
    char *key_file;
    bool insecure_skip_verify;
    char *server_name_override;
    char *min_version;              /* "1.0" .. "1.3"; NULL: 1.2, as configtls */
    char *max_version;              /* NULL: the highest known */
    sy_cfg_strlist_t cipher_suites; /* Go's names (tls_names.h); empty: curl's defaults */
    int64_t reload_interval; /* ns: files kept this long, then read again (tls_client_files.c);
                                0: curl reads them for every new connection */
} syc_tls_client_t;

/* Sets the TLS options of `easy` (they matter only for https:// URLs). */
void syc_curl_apply_tls(CURL *easy, const syc_tls_client_t *tls);

/* Its part for ca_file, cert_file and key_file, with reload_interval
 * (tls_client_files.c). Any thread. */
void syc_curl_tls_files(CURL *easy, const syc_tls_client_t *tls);

/* Checks tls.min_version and tls.max_version ("1.0", "1.1", "1.2", "1.3"; min not
 * above max), tls.cipher_suites (known names) and tls.reload_interval (not
 * negative) for a plugin's validate(): 0, or SY_EINVAL with a sentence. */
int syc_tls_client_check(const syc_tls_client_t *tls, char *err, size_t err_len);

/* The largest response body kept (the OTLP specification's 4 MiB bound); more is
 * discarded and the exchange is marked truncated. */
#define SYC_CURL_MAX_RESPONSE (4u << 20)

/* One request/response on one easy handle, with the response status line's code,
 * a bounded body and the response headers (and trailers) an OTLP client reads. */
typedef struct syc_curl_exchange_s {
    CURL *easy;
    char errbuf[CURL_ERROR_SIZE];
    uint8_t *body;
    size_t body_len, body_cap;
    bool body_truncated;
    char retry_after[64];
    char content_type[128];
    char grpc_status[16];
    char grpc_message[512];
    char grpc_encoding[32];
    char grpc_details[4096]; /* grpc-status-details-bin, base64 */
} syc_curl_exchange_t;

/* Makes the easy handle and points its write and header callbacks at `x`.
 * Returns 0 or SY_ENOMEM. */
int syc_curl_exchange_init(syc_curl_exchange_t *x);

/* Forgets the last response before another attempt (options stay set). */
void syc_curl_exchange_clear(syc_curl_exchange_t *x);

/* Frees the body and the easy handle (which must not be in a transfer). */
void syc_curl_exchange_free(syc_curl_exchange_t *x);

/* Whether a transfer that failed with `rc` (no HTTP answer) is worth retrying:
 * connection refused or reset, timeouts, name resolution, TLS handshakes; not a
 * malformed URL or an unsupported protocol. */
bool syc_curl_retryable(CURLcode rc);

/* A Retry-After value, delay-seconds or an HTTP-date, in milliseconds from now
 * (bounded to one day); -1 when absent or unreadable. */
int64_t syc_curl_retry_after_ms(const char *value);

#endif
