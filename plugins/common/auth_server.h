/*
 * auth_server.h - the server side of `auth.authenticator` shared by every
 * receiver that authenticates its clients (otlp over HTTP and gRPC, jaeger's
 * thrift_http and grpc, zipkin): resolving the extension in start(), asking it
 * about a request's headers, counting and logging (at a rate limit) what it
 * refused, and the 401 answer, which says nothing about what was wrong and
 * repeats nothing the client sent.
 *
 * One syc_auth_guard_t per protocol of a receiver (each with its own metric);
 * it lives in the receiver's state and is used on the receiver's loop thread.
 */
#ifndef SY_COMMON_AUTH_SERVER_H
#define SY_COMMON_AUTH_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/auth.h>
#include <switchyard/plugin.h>

#include "http_server.h"

/* The body of every 401 answer. */
#define SYC_AUTH_UNAUTHORIZED_BODY "Unauthorized\n"

/* The gRPC message of every UNAUTHENTICATED answer. */
#define SYC_AUTH_GRPC_MESSAGE "authentication failed"

typedef struct syc_auth_guard_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const sy_auth_server_t *auth; /* NULL: requests are not authenticated */
    sy_metric_t *m_refused;       /* may be NULL */
    const char *what;             /* "HTTP", "gRPC": for the warning */
    const char *metric_name;      /* for the warning */
    uint64_t warned_ms;           /* uv_now() of the last warning */
    uint64_t unreported;          /* refusals since that warning */
} syc_auth_guard_t;

/*
 * Fills the guard and resolves the server authenticator named by `id` (NULL or
 * "": none, the guard lets everything through). `where` names the key for the
 * message ("protocols.http.auth"). Fails with the collector's sentence, logged,
 * when `id` is not a running extension that authenticates requests: SY_ERROR.
 * Call from start(), on the loop thread.
 */
int syc_auth_guard_init(syc_auth_guard_t *g, const sy_host_api_t *api, sy_instance_t *inst,
                        const char *where, const char *id, sy_metric_t *m_refused, const char *what,
                        const char *metric_name);

/* Whether the guard has an authenticator. */
static inline bool syc_auth_guard_on(const syc_auth_guard_t *g)
{
    return g->auth != NULL;
}

/*
 * Asks the authenticator about n (name, value) header pairs (names lower case).
 * True when the request may go on (or the guard has no authenticator); false
 * when it was refused, which is counted and logged at a rate limit. Loop thread.
 */
bool syc_auth_guard_check(syc_auth_guard_t *g, const char *const *headers, size_t n);

/* The extra header lines of a 401 answer ("WWW-Authenticate: <challenge>\r\n",
 * or "" when the authenticator has none) into buf. Returns buf, or NULL for
 * none, ready for syc_http_respond()'s extra_headers. */
const char *syc_auth_guard_challenge(const syc_auth_guard_t *g, char *buf, size_t len);

/*
 * For an HTTP server whose requests are all authenticated the same way: keeps
 * every header of a request and checks it with the guard once its headers are
 * in, before any of its body is read; a refused request reaches the server's
 * error handler with status 401, which answers it with SYC_AUTH_UNAUTHORIZED_BODY
 * and syc_auth_guard_challenge()'s header. Does nothing when the guard has no authenticator. The
 * guard must outlive the server.
 */
void syc_auth_guard_attach(syc_auth_guard_t *g, syc_http_server_t *server);

#endif
