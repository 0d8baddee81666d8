/*
 * switchyard/auth.h - the interfaces of authenticator extensions.
 *
 * An extension such as bearertokenauth or basicauth offers these through
 * sy_plugin_t.extension_interface(); a receiver or an exporter names the
 * extension in its configuration (`auth.authenticator: <id>`) and gets the
 * interface with api->extension_get(inst, id, SY_AUTH_SERVER or SY_AUTH_CLIENT)
 * in create() or start(). The pointer stays valid until the component's own
 * shutdown has finished (extensions stop last).
 *
 * Header names are lower case; values are as the client sent them. Both
 * functions may be called from any thread, concurrently: the extension makes
 * them thread-safe (a credential that is reloaded is swapped under a lock).
 */
#ifndef SWITCHYARD_AUTH_H
#define SWITCHYARD_AUTH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The server side: checks the credentials a request carries. */
#define SY_AUTH_SERVER "auth.server/1"

typedef struct sy_auth_server_s {
    void *ctx;
    /*
     * Checks a request's headers: `n` pairs, headers[2i] a lower-case name and
     * headers[2i+1] its value (the gRPC metadata of a call, or the headers of an
     * HTTP request; a name may repeat). Returns SY_OK (0) when the request is
     * authenticated, or a negative SY_E* when it is not (SY_EINVAL: missing or
     * wrong credentials). Must not block for long: it runs on the receiver's
     * loop thread. Any thread.
     */
    int (*authenticate)(void *ctx, const char *const *headers, size_t n);
    /* The value of the WWW-Authenticate header of an HTTP 401 ("Bearer",
     * "Basic realm=\"...\""), or NULL for none. Constant for the extension's life. */
    const char *challenge;
} sy_auth_server_t;

/* The client side: the headers an exporter adds to every request it sends. */
#define SY_AUTH_CLIENT "auth.client/1"

typedef struct sy_auth_client_s {
    void *ctx;
    /*
     * Writes the header lines to add, each ending in "\r\n"
     * ("Authorization: Bearer abc\r\n"), and a NUL, into out[0, cap). Returns the
     * length written without the NUL (0: nothing to add), or SY_ENOMEM when cap
     * is too small, or another negative SY_E*. Called for every request (and
     * retry), so a rotated credential is used from the next request on. Any thread.
     */
    int (*headers)(void *ctx, char *out, size_t cap);
} sy_auth_client_t;

#ifdef __cplusplus
}
#endif
#endif /* SWITCHYARD_AUTH_H */
