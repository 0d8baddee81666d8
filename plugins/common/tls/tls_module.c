/*
 * otlp_tls.c - the TLS server layer of the otlp receiver (see otlp_tls.h): an
 * OpenSSL SSL object per connection between two memory BIOs, so that the socket
 * stays libuv's and nothing here ever blocks or touches a file descriptor.
 *
 * Built as its own shared object, sy_tls.so (see syc_tls_module.h), the only
 * one to link OpenSSL: everything is hidden but the table at the end, and the
 * receiver reaches these functions through syc_tls_shim.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <switchyard/plugin.h>

#include "tls_module.h"
#include "tls_names.h"

struct syc_tls_ctx_s {
    SSL_CTX *ssl_ctx; /* replaced by a reload; SSL objects hold their own reference */
    const syc_tls_settings_t *set;
};

struct syc_tls_conn_s {
    SSL *ssl;
    BIO *rbio; /* ciphertext from the socket; owned by ssl */
    BIO *wbio; /* ciphertext for the socket; owned by ssl */
    bool established;
    bool need_h2; /* the context's settings want HTTP/2 */
};

/* ALPN in wire format: the only protocol a gRPC server speaks, and HTTP/1.1's. */
static const unsigned char alpn_h2[] = {2, 'h', '2'};
static const unsigned char alpn_http1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

static bool is_set(const char *s)
{
    return s && *s;
}

/* The OpenSSL protocol version a configtls string names (its rank from
 * syc_tls_version_rank()); 0 when unset or unknown (settings_check refused it). */
static int version_of(const char *v)
{
    static const int versions[] = {TLS1_VERSION, TLS1_1_VERSION, TLS1_2_VERSION, TLS1_3_VERSION};
    int rank = syc_tls_version_rank(v);
    if (rank < 1 || rank > (int)(sizeof(versions) / sizeof(versions[0]))) return 0;
    return versions[rank - 1];
}

/* The reason of the oldest OpenSSL error, or `fallback`; clears the queue. */
static const char *ssl_reason(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        snprintf(buf, len, "%s", fallback);
    } else {
        const char *r = ERR_reason_error_string(e);
        if (r)
            snprintf(buf, len, "%s", r);
        else
            ERR_error_string_n(e, buf, len);
    }
    ERR_clear_error();
    return buf;
}

/* A readable file, or a sentence naming it: OpenSSL's own message for a missing
 * file is "system lib". */
static int check_file(const char *key, const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, err_len, "tls.%s \"%.300s\": %s", key, path, strerror(errno));
        return SY_EINVAL;
    }
    fclose(f);
    return 0;
}

/* Selects "h2" if the client offers it; fails the handshake otherwise. */
static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    const syc_tls_settings_t *set = arg;
    unsigned char *selected;
    if (set->http1) {
        /* HTTP/1.1 when offered; a client that offers only h2 gets no ALPN answer
         * and speaks HTTP/1.1 all the same, as Go's HTTP/1 server allows. */
        if (SSL_select_next_proto(&selected, outlen, alpn_http1, sizeof(alpn_http1), in, inlen) !=
            OPENSSL_NPN_NEGOTIATED)
            return SSL_TLSEXT_ERR_NOACK;
        *out = selected;
        return SSL_TLSEXT_ERR_OK;
    }
    if (SSL_select_next_proto(&selected, outlen, alpn_h2, sizeof(alpn_h2), in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

/* Refuses encrypted keys: OpenSSL's default would ask on the terminal. */
static int no_password(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return 0;
}

/* Builds an SSL_CTX from the files. NULL with a sentence naming the file. */
static SSL_CTX *build(const syc_tls_settings_t *set, char *err, size_t err_len)
{
    char why[256];
    SSL_CTX *ctx = NULL;
    ERR_clear_error();
    if (check_file("cert_file", set->cert_file, err, err_len) != 0 ||
        check_file("key_file", set->key_file, err, err_len) != 0 ||
        (is_set(set->client_ca_file) &&
         check_file("client_ca_file", set->client_ca_file, err, err_len) != 0))
        return NULL;
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, err_len, "cannot make a TLS context: %s",
                 ssl_reason(why, sizeof(why), "out of memory"));
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_password);
    int min = version_of(set->min_version), max = version_of(set->max_version);
    if (!SSL_CTX_set_min_proto_version(ctx, min > 0 ? min : TLS1_2_VERSION) ||
        !SSL_CTX_set_max_proto_version(ctx, max > 0 ? max : 0)) {
        snprintf(err, err_len, "tls: cannot set the protocol versions: %s",
                 ssl_reason(why, sizeof(why), "unknown error"));
        goto fail;
    }
    if (set->cipher_list[0] && SSL_CTX_set_cipher_list(ctx, set->cipher_list) != 1) {
        snprintf(err, err_len, "tls.cipher_suites: OpenSSL can use none of \"%.300s\": %s",
                 set->cipher_list, ssl_reason(why, sizeof(why), "unknown error"));
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, set->cert_file) != 1) {
        snprintf(err, err_len, "tls.cert_file \"%.300s\": cannot load a PEM certificate: %s",
                 set->cert_file, ssl_reason(why, sizeof(why), "unknown error"));
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, set->key_file, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
            snprintf(err, err_len,
                     "tls.key_file \"%.300s\" does not match tls.cert_file \"%.300s\"",
                     set->key_file, set->cert_file);
            goto fail;
        }
        snprintf(err, err_len, "tls.key_file \"%.300s\": cannot load a PEM private key: %s",
                 set->key_file, ssl_reason(why, sizeof(why), "unknown error"));
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, err_len, "tls.key_file \"%.300s\" does not match tls.cert_file \"%.300s\"",
                 set->key_file, set->cert_file);
        goto fail;
    }
    if (is_set(set->client_ca_file)) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(set->client_ca_file);
        if (!names || SSL_CTX_load_verify_locations(ctx, set->client_ca_file, NULL) != 1) {
            if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
            snprintf(err, err_len,
                     "tls.client_ca_file \"%.300s\": cannot load PEM CA certificates: %s",
                     set->client_ca_file, ssl_reason(why, sizeof(why), "no certificate found"));
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* takes `names` */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    /* Resumed sessions (with mTLS above all) need a context ID. */
    static const unsigned char sid[] = "switchyard-otlp";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, (void *)set);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* No renegotiation (HTTP/2 forbids it) and the server's cipher order. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return NULL;
}

syc_tls_ctx_t *syc_tls_ctx_new(const syc_tls_settings_t *set, char *err, size_t err_len)
{
    syc_tls_ctx_t *ctx = calloc(1, sizeof(*ctx));
    if (!ctx) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    ctx->set = set;
    ctx->ssl_ctx = build(set, err, err_len);
    if (!ctx->ssl_ctx) {
        free(ctx);
        return NULL;
    }
    return ctx;
}

int syc_tls_ctx_reload(syc_tls_ctx_t *ctx, char *err, size_t err_len)
{
    SSL_CTX *fresh = build(ctx->set, err, err_len);
    if (!fresh) return SY_EINVAL;
    SSL_CTX_free(ctx->ssl_ctx); /* open connections keep their reference */
    ctx->ssl_ctx = fresh;
    return 0;
}

void syc_tls_ctx_free(syc_tls_ctx_t *ctx)
{
    if (!ctx) return;
    SSL_CTX_free(ctx->ssl_ctx);
    free(ctx);
}

syc_tls_conn_t *syc_tls_conn_new(syc_tls_ctx_t *ctx)
{
    syc_tls_conn_t *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    c->ssl = SSL_new(ctx->ssl_ctx);
    c->need_h2 = !ctx->set->http1;
    c->rbio = BIO_new(BIO_s_mem());
    c->wbio = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rbio || !c->wbio) {
        SSL_free(c->ssl);
        BIO_free(c->rbio);
        BIO_free(c->wbio);
        free(c);
        ERR_clear_error();
        return NULL;
    }
    /* An empty memory BIO reports "retry" rather than end of file. */
    BIO_set_mem_eof_return(c->rbio, -1);
    SSL_set_bio(c->ssl, c->rbio, c->wbio); /* the SSL owns both from here */
    SSL_set_accept_state(c->ssl);
    return c;
}

void syc_tls_conn_free(syc_tls_conn_t *conn)
{
    if (!conn) return;
    SSL_free(conn->ssl);
    free(conn);
}

int syc_tls_conn_feed(syc_tls_conn_t *conn, const uint8_t *data, size_t len)
{
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        int n = BIO_write(conn->rbio, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            return SY_ENOMEM;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Turns a failed SSL call into a return of syc_tls_conn_read(). */
static ssize_t read_error(syc_tls_conn_t *conn, int rc, char *err, size_t err_len)
{
    char why[256];
    switch (SSL_get_error(conn->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: /* the write BIO never refuses: not seen in practice */
        ERR_clear_error();
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        ERR_clear_error();
        return SY_ECLOSED;
    default:
        snprintf(err, err_len, "%s",
                 ssl_reason(why, sizeof(why),
                            conn->established ? "the TLS session broke" : "the handshake failed"));
        return SY_EINVAL;
    }
}

ssize_t syc_tls_conn_read(syc_tls_conn_t *conn, uint8_t *out, size_t cap, char *err, size_t err_len)
{
    ERR_clear_error();
    if (!conn->established) {
        int rc = SSL_do_handshake(conn->ssl);
        if (rc != 1) return read_error(conn, rc, err, err_len);
        const unsigned char *proto = NULL;
        unsigned int proto_len = 0;
        SSL_get0_alpn_selected(conn->ssl, &proto, &proto_len);
        if (conn->need_h2 && (proto_len != 2 || memcmp(proto, "h2", 2) != 0)) {
            snprintf(err, err_len, "the client did not negotiate HTTP/2 (ALPN \"h2\")");
            return SY_EINVAL;
        }
        conn->established = true;
    }
    int chunk = cap > INT32_MAX ? INT32_MAX : (int)cap;
    int n = SSL_read(conn->ssl, out, chunk);
    if (n > 0) return n;
    return read_error(conn, n, err, err_len);
}

bool syc_tls_conn_established(const syc_tls_conn_t *conn)
{
    return conn->established;
}

int syc_tls_conn_write(syc_tls_conn_t *conn, const uint8_t *data, size_t len)
{
    if (!conn->established) return SY_EINVAL;
    ERR_clear_error();
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        /* A memory BIO takes everything: a whole write or a failure. */
        int n = SSL_write(conn->ssl, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            return SY_EINVAL;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

void syc_tls_conn_close_notify(syc_tls_conn_t *conn)
{
    if (!conn->established) return;
    SSL_shutdown(conn->ssl);
    ERR_clear_error();
}

size_t syc_tls_conn_pending(const syc_tls_conn_t *conn)
{
    return BIO_ctrl_pending(conn->wbio);
}

size_t syc_tls_conn_take(syc_tls_conn_t *conn, uint8_t *out, size_t cap)
{
    int chunk = cap > INT32_MAX ? INT32_MAX : (int)cap;
    int n = BIO_read(conn->wbio, out, chunk);
    return n > 0 ? (size_t)n : 0;
}

static const syc_tls_module_t syc_tls_table = {
    .abi = SYC_TLS_MODULE_ABI,
    .size = sizeof(syc_tls_module_t),
    .settings_check = syc_tls_settings_check,
    .ctx_new = syc_tls_ctx_new,
    .ctx_reload = syc_tls_ctx_reload,
    .ctx_free = syc_tls_ctx_free,
    .conn_new = syc_tls_conn_new,
    .conn_free = syc_tls_conn_free,
    .conn_feed = syc_tls_conn_feed,
    .conn_read = syc_tls_conn_read,
    .conn_established = syc_tls_conn_established,
    .conn_write = syc_tls_conn_write,
    .conn_close_notify = syc_tls_conn_close_notify,
    .conn_pending = syc_tls_conn_pending,
    .conn_take = syc_tls_conn_take,
};

/* The module's only export (SYC_TLS_MODULE_ENTRY). */
__attribute__((visibility("default"))) const syc_tls_module_t *syc_tls_module(void);

const syc_tls_module_t *syc_tls_module(void)
{
    return &syc_tls_table;
}
