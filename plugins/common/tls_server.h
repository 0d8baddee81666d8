/*
 * otlp_tls.h - private to the otlp receiver: a TLS server layer over OpenSSL
 * memory BIOs, for a protocol that owns its sockets (otlp_grpc.c puts it between
 * uv_read/uv_write and nghttp2). It knows nothing of the receiver, so that it can
 * move to plugins/common once the HTTP server wants it too.
 *
 * A context holds the certificate, key, client CA and version bounds (OpenSSL's
 * SSL_CTX); a connection is one SSL object fed with the ciphertext read from its
 * socket and drained of the ciphertext to write to it. HTTP/2 is the only
 * application protocol offered: a client must negotiate "h2" through ALPN.
 *
 * Contexts are made and reloaded on one thread and used on that thread only (the
 * receiver's loop thread); connections likewise.
 */
#ifndef SY_RECEIVER_SYC_TLS_H
#define SY_RECEIVER_SYC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <switchyard/plugin.h>

/* The configtls server settings; strings are NULL or empty when unset. The
 * context keeps the pointer: the settings must outlive it. */
typedef struct syc_tls_settings_s {
    const char *cert_file;                 /* PEM chain, required */
    const char *key_file;                  /* PEM private key, required */
    const char *client_ca_file;            /* set: clients must present a certificate it signed */
    const char *min_version;               /* "1.0".."1.3"; unset: "1.2" */
    const char *max_version;               /* unset: the highest OpenSSL knows */
    const sy_cfg_strlist_t *cipher_suites; /* Go names (tls_names.h); NULL or empty: defaults */
    char cipher_list[1024];                /* OpenSSL's names, filled by syc_tls_settings_check() */
    /* The application protocol: false, HTTP/2 only (a client must negotiate "h2"
     * through ALPN: gRPC); true, HTTP/1.1 ("http/1.1" selected when offered, a
     * client without ALPN accepted). */
    bool http1;
} syc_tls_settings_t;

typedef struct syc_tls_ctx_s syc_tls_ctx_t;
typedef struct syc_tls_conn_s syc_tls_conn_t;

/* Checks the settings without reading files (for validate()): both files named,
 * known versions, min not above max, known cipher suites (whose OpenSSL names it
 * writes into set->cipher_list). `prefix` starts the message ("protocols::
 * grpc::tls"). Returns 0, or SY_EINVAL with a sentence in err. Any thread. */
int syc_tls_settings_check(syc_tls_settings_t *set, const char *prefix, char *err, size_t err_len);

/* For a program that is not a plugin (the core's own /metrics server): the TLS
 * module is looked for in these directories, the first that has it, instead of
 * next to the calling shared object. Call before the first context is made. */
void syc_tls_module_dirs(const char *const *dirs, size_t n);

/* Reads the files and builds a context. Returns NULL with a sentence naming the
 * file at fault in err. */
syc_tls_ctx_t *syc_tls_ctx_new(const syc_tls_settings_t *set, char *err, size_t err_len);

/* Reads the files again; new connections use what they hold now, open ones keep
 * what they began with. On failure the context is unchanged: returns SY_EINVAL
 * with a sentence in err. */
int syc_tls_ctx_reload(syc_tls_ctx_t *ctx, char *err, size_t err_len);

/* Frees the context; connections made from it may outlive it. NULL is fine. */
void syc_tls_ctx_free(syc_tls_ctx_t *ctx);

/* A server-side connection in its handshake. NULL when out of memory. */
syc_tls_conn_t *syc_tls_conn_new(syc_tls_ctx_t *ctx);
void syc_tls_conn_free(syc_tls_conn_t *conn);

/* Hands over ciphertext read from the socket (copied). 0 or SY_ENOMEM. */
int syc_tls_conn_feed(syc_tls_conn_t *conn, const uint8_t *data, size_t len);

/*
 * Advances the handshake and decrypts. Returns the number of plaintext bytes put
 * in `out` (> 0; call again until it returns 0), 0 when it needs more ciphertext,
 * SY_ECLOSED when the client closed the session (close_notify), or SY_EINVAL
 * with a sentence in err when the handshake failed (see syc_tls_conn_established())
 * or the session broke. Output may be pending after any call (alerts too).
 */
ssize_t syc_tls_conn_read(syc_tls_conn_t *conn, uint8_t *out, size_t cap, char *err,
                          size_t err_len);

/* True once the handshake completed with "h2" negotiated. */
bool syc_tls_conn_established(const syc_tls_conn_t *conn);

/* Encrypts all of `data` (only once established). 0, or SY_EINVAL. */
int syc_tls_conn_write(syc_tls_conn_t *conn, const uint8_t *data, size_t len);

/* Queues a close_notify alert (best effort). */
void syc_tls_conn_close_notify(syc_tls_conn_t *conn);

/* Ciphertext waiting to be written to the socket, and taking it (up to cap). */
size_t syc_tls_conn_pending(const syc_tls_conn_t *conn);
size_t syc_tls_conn_take(syc_tls_conn_t *conn, uint8_t *out, size_t cap);

#endif
