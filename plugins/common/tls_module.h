/*
 * syc_tls_module.h - private to the otlp receiver: the boundary between the
 * receiver and sy_tls.so, the shared object that holds the TLS layer (otlp_tls.c)
 * and is the only one to link OpenSSL. The receiver maps it (syc_tls_shim.c) the
 * first time a TLS context is made, so that a router without TLS never maps
 * libssl and libcrypto.
 *
 * The module exports one symbol, SYC_TLS_MODULE_ENTRY, a function returning a
 * table of the functions otlp_tls.h declares. Its file name is not a plugin name
 * (<kind>_<type>.so), so the host's loader passes it by.
 */
#ifndef SY_RECEIVER_SYC_TLS_MODULE_H
#define SY_RECEIVER_SYC_TLS_MODULE_H

#include "tls_server.h"

/* The file, found in the directory of the receiver's own shared object. */
#define SYC_TLS_MODULE_FILE  "sy_tls.so"
#define SYC_TLS_MODULE_ENTRY "syc_tls_module"

/* Bumped with any change to the table below or to the API behind it: a module
 * left over from another build is refused rather than called. */
#define SYC_TLS_MODULE_ABI 3

typedef struct syc_tls_module_s {
    unsigned abi; /* SYC_TLS_MODULE_ABI */
    size_t size;  /* sizeof(syc_tls_module_t) */
    int (*settings_check)(syc_tls_settings_t *set, const char *prefix, char *err, size_t err_len);
    syc_tls_ctx_t *(*ctx_new)(const syc_tls_settings_t *set, char *err, size_t err_len);
    int (*ctx_reload)(syc_tls_ctx_t *ctx, char *err, size_t err_len);
    void (*ctx_free)(syc_tls_ctx_t *ctx);
    syc_tls_conn_t *(*conn_new)(syc_tls_ctx_t *ctx);
    void (*conn_free)(syc_tls_conn_t *conn);
    int (*conn_feed)(syc_tls_conn_t *conn, const uint8_t *data, size_t len);
    ssize_t (*conn_read)(syc_tls_conn_t *conn, uint8_t *out, size_t cap, char *err, size_t err_len);
    bool (*conn_established)(const syc_tls_conn_t *conn);
    int (*conn_write)(syc_tls_conn_t *conn, const uint8_t *data, size_t len);
    void (*conn_close_notify)(syc_tls_conn_t *conn);
    size_t (*conn_pending)(const syc_tls_conn_t *conn);
    size_t (*conn_take)(syc_tls_conn_t *conn, uint8_t *out, size_t cap);
} syc_tls_module_t;

/* The entry: a static table, valid while the module is mapped. */
typedef const syc_tls_module_t *(*syc_tls_module_fn)(void);

/* The default lowest version: "1.2" (tls_names.h's rank). */
#define SYC_TLS_RANK_DEFAULT_MIN 3

#endif
