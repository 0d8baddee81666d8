/*
 * loadgen_transport.h - what the loadgen driver needs from a transport: open
 * connections, send one encoded request on an idle connection, and learn how it
 * ended. HTTP/1.1 (loadgen_http.c) and OTLP/gRPC over HTTP/2 (loadgen_grpc.c)
 * implement it.
 *
 * An lg_conn_t carries one request at a time. A multiplexing transport (gRPC)
 * also offers conn_share, which opens another lg_conn_t on the same underlying
 * connection: each is then one stream slot of that connection, so S of them
 * keep S requests in flight on one TCP connection.
 *
 * Threading: everything runs on the one uv loop that the driver owns.
 * Memory: a transport allocates when a client or connection is opened, never per
 * request.
 */
#ifndef LOADGEN_TRANSPORT_H
#define LOADGEN_TRANSPORT_H

#include <stddef.h>

#include <uv.h>

#include "loadgen_payload.h"

/* Where to send: parsed from the --url. */
typedef struct lg_target_s {
    char host[256];
    char port[8];
    char path[512];
    struct sockaddr_storage addr; /* resolved once */
} lg_target_t;

/* How a request ended. */
typedef enum lg_outcome_e {
    LG_ACCEPTED = 0, /* 200 (gRPC: OK) */
    LG_REFUSED,      /* 429 or 503 (gRPC: RESOURCE_EXHAUSTED or UNAVAILABLE): back-pressure,
                      * the client should retry */
    LG_FAILED,       /* any other answer */
    LG_ERROR,        /* no answer: the connection broke */
} lg_outcome_t;

typedef struct lg_conn_s lg_conn_t;
typedef struct lg_client_s lg_client_t;

/* What a transport tells the driver. `user` is what the driver gave conn_open. */
typedef struct lg_events_s {
    /* The connection can take a request: connected, or its last one finished. */
    void (*on_idle)(void *user);
    /* The request in flight ended; status is the protocol's code (HTTP status,
     * gRPC status, or 0 when there was no answer). */
    void (*on_done)(void *user, lg_outcome_t outcome, int status);
    /* Connecting failed or a connection broke with nothing in flight; the
     * transport reconnects by itself after a short pause. */
    void (*on_conn_error)(void *user, const char *message);
} lg_events_t;

typedef struct lg_transport_s {
    const char *name;
    /* Prepares per-payload framing (headers) for every request of the set,
     * which must outlive the client. Returns NULL with a message in err. */
    lg_client_t *(*client_new)(uv_loop_t *loop, const lg_target_t *target,
                               const lg_payload_set_t *set, const lg_events_t *events, char *err,
                               size_t err_len);
    /* Opens one connection and starts connecting; on_idle follows. */
    lg_conn_t *(*conn_open)(lg_client_t *client, void *user, char *err, size_t err_len);
    /* Optional (NULL when the protocol carries one request at a time): opens
     * another request slot on the connection of `conn`, which is not closed yet,
     * with its own `user`; on_idle follows when that connection is up. */
    lg_conn_t *(*conn_share)(lg_conn_t *conn, void *user, char *err, size_t err_len);
    /* Sends payload p on an idle connection. Returns 0, or a negative uv error
     * (the connection is then broken and reconnects; no on_done follows). */
    int (*send)(lg_conn_t *conn, const lg_payload_t *p);
    /* Closes a connection; its memory is released in the close callback. */
    void (*conn_close)(lg_conn_t *conn);
    /* Frees the client once every connection is closed (after the loop ran). */
    void (*client_free)(lg_client_t *client);
} lg_transport_t;

extern const lg_transport_t lg_http_transport;
extern const lg_transport_t lg_grpc_transport;

#endif
