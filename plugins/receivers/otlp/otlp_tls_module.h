/*
 * otlp_tls_module.h - private to the otlp receiver: the boundary between the
 * receiver and otlp_tls.so, the shared object that holds the TLS layer (otlp_tls.c)
 * and is the only one to link OpenSSL. The receiver maps it (otlp_tls_shim.c) the
 * first time a TLS context is made, so that a router without TLS never maps
 * libssl and libcrypto.
 *
 * The module exports one symbol, OTLP_TLS_MODULE_ENTRY, a function returning a
 * table of the functions otlp_tls.h declares. Its file name is not a plugin name
 * (<kind>_<type>.so), so the host's loader passes it by.
 */
#ifndef SY_RECEIVER_OTLP_TLS_MODULE_H
#define SY_RECEIVER_OTLP_TLS_MODULE_H

#include "otlp_tls.h"

/* The file, found in the directory of the receiver's own shared object. */
#define OTLP_TLS_MODULE_FILE  "otlp_tls.so"
#define OTLP_TLS_MODULE_ENTRY "otlp_tls_module"

/* Bumped with any change to the table below or to the API behind it: a module
 * left over from another build is refused rather than called. */
#define OTLP_TLS_MODULE_ABI 2

typedef struct otlp_tls_module_s {
    unsigned abi; /* OTLP_TLS_MODULE_ABI */
    size_t size;  /* sizeof(otlp_tls_module_t) */
    int (*settings_check)(otlp_tls_settings_t *set, const char *prefix, char *err, size_t err_len);
    otlp_tls_ctx_t *(*ctx_new)(const otlp_tls_settings_t *set, char *err, size_t err_len);
    int (*ctx_reload)(otlp_tls_ctx_t *ctx, char *err, size_t err_len);
    void (*ctx_free)(otlp_tls_ctx_t *ctx);
    otlp_tls_conn_t *(*conn_new)(otlp_tls_ctx_t *ctx);
    void (*conn_free)(otlp_tls_conn_t *conn);
    int (*conn_feed)(otlp_tls_conn_t *conn, const uint8_t *data, size_t len);
    ssize_t (*conn_read)(otlp_tls_conn_t *conn, uint8_t *out, size_t cap, char *err,
                         size_t err_len);
    bool (*conn_established)(const otlp_tls_conn_t *conn);
    int (*conn_write)(otlp_tls_conn_t *conn, const uint8_t *data, size_t len);
    void (*conn_close_notify)(otlp_tls_conn_t *conn);
    size_t (*conn_pending)(const otlp_tls_conn_t *conn);
    size_t (*conn_take)(otlp_tls_conn_t *conn, uint8_t *out, size_t cap);
} otlp_tls_module_t;

/* The entry: a static table, valid while the module is mapped. */
typedef const otlp_tls_module_t *(*otlp_tls_module_fn)(void);

/* The default lowest version: "1.2" (tls_names.h's rank). */
#define OTLP_TLS_RANK_DEFAULT_MIN 3

#endif
