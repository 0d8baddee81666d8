/*
 * syc_tls_shim.c - the otlp_tls.h API in the receiver itself: it maps
 * sy_tls.so (see syc_tls_module.h) the first time a TLS context is made and
 * forwards every call to the module's table, so that the receiver does not link
 * OpenSSL and a router without TLS never maps it. syc_tls_settings_check() needs
 * no OpenSSL and lives in syc_tls_settings.c.
 *
 * The module is found in the directory of the receiver's own shared object,
 * wherever that is (build tree, install tree, --plugin-dir), and stays mapped for
 * the life of the process, as the host keeps its plugins.
 */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <switchyard/plugin.h>

#include "tls_module.h"

/*
 * The module is a process-wide resource like the libraries it maps: one load
 * serves every instance of the receiver. These are written once, under
 * pthread_once(), and only read afterwards (pthread_once() orders the writes
 * before any reader that went through it); `module` stays NULL when the load
 * failed, and `load_error` says why.
 */
static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static const syc_tls_module_t *module;
static char load_error[PATH_MAX + 256];
static char module_override[PATH_MAX]; /* syc_tls_module_dirs(): the core's choice */

void syc_tls_module_dirs(const char *const *dirs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        int len = snprintf(path, sizeof(path), "%s/%s", dirs[i], SYC_TLS_MODULE_FILE);
        if (len < 0 || (size_t)len >= sizeof(path) || access(path, R_OK) != 0) continue;
        memcpy(module_override, path, (size_t)len + 1);
        return;
    }
}

/* The module's path: SYC_TLS_MODULE_FILE next to the shared object that holds
 * this function. Returns 0, or -1 with a sentence in load_error. */
static int module_path(char *path, size_t len)
{
    if (module_override[0]) {
        snprintf(path, len, "%s", module_override);
        return 0;
    }
    Dl_info info;
    if (!dladdr((const void *)module_path, &info) || !info.dli_fname) {
        snprintf(load_error, sizeof(load_error),
                 "tls: cannot load the TLS module %s: the otlp receiver cannot find its own file",
                 SYC_TLS_MODULE_FILE);
        return -1;
    }
    const char *slash = strrchr(info.dli_fname, '/');
    int dir_len = slash ? (int)(slash - info.dli_fname) : 1;
    int n =
        snprintf(path, len, "%.*s/%s", dir_len, slash ? info.dli_fname : ".", SYC_TLS_MODULE_FILE);
    if (n < 0 || (size_t)n >= len) {
        snprintf(load_error, sizeof(load_error),
                 "tls: cannot load the TLS module %s: the plugin directory's path is too long",
                 SYC_TLS_MODULE_FILE);
        return -1;
    }
    return 0;
}

static void load(void)
{
    char path[PATH_MAX];
    if (module_path(path, sizeof(path)) != 0) return;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(load_error, sizeof(load_error), "tls: cannot load the TLS module %s: %s", path,
                 why ? why : "unknown error");
        return;
    }
    syc_tls_module_fn entry;
    /* The ISO C way to turn dlsym()'s object pointer into a function pointer. */
    *(void **)&entry = dlsym(h, SYC_TLS_MODULE_ENTRY);
    const syc_tls_module_t *m = entry ? entry() : NULL;
    if (!m || m->abi != SYC_TLS_MODULE_ABI || m->size != sizeof(syc_tls_module_t)) {
        snprintf(load_error, sizeof(load_error),
                 "tls: cannot load the TLS module %s: %s (a module from another build?)", path,
                 entry ? "its table does not match this receiver"
                       : "no " SYC_TLS_MODULE_ENTRY " symbol");
        dlclose(h);
        return;
    }
    module = m; /* h stays open for the life of the process */
}

/* The module, loading it on the first call; NULL with a sentence in err when it
 * cannot be loaded. Any thread. */
static const syc_tls_module_t *module_get(char *err, size_t err_len)
{
    pthread_once(&load_once, load);
    if (!module) snprintf(err, err_len, "%s", load_error);
    return module;
}

/*
 * The module once loaded, for the functions that take a context or a connection:
 * one exists only if syc_tls_ctx_new() loaded the module. Goes through
 * pthread_once() all the same (a load that already ran costs an atomic read), so
 * that a caller on another thread sees the table.
 */
static const syc_tls_module_t *loaded(void)
{
    pthread_once(&load_once, load);
    return module;
}

syc_tls_ctx_t *syc_tls_ctx_new(const syc_tls_settings_t *set, char *err, size_t err_len)
{
    const syc_tls_module_t *m = module_get(err, err_len);
    return m ? m->ctx_new(set, err, err_len) : NULL;
}

int syc_tls_ctx_reload(syc_tls_ctx_t *ctx, char *err, size_t err_len)
{
    return loaded()->ctx_reload(ctx, err, err_len);
}

/* The free functions take NULL without loading anything: a cleartext receiver
 * calls them with the NULL it holds in place of a context or connection. */
void syc_tls_ctx_free(syc_tls_ctx_t *ctx)
{
    if (ctx) loaded()->ctx_free(ctx);
}

syc_tls_conn_t *syc_tls_conn_new(syc_tls_ctx_t *ctx)
{
    return loaded()->conn_new(ctx);
}

void syc_tls_conn_free(syc_tls_conn_t *conn)
{
    if (conn) loaded()->conn_free(conn);
}

int syc_tls_conn_feed(syc_tls_conn_t *conn, const uint8_t *data, size_t len)
{
    return loaded()->conn_feed(conn, data, len);
}

ssize_t syc_tls_conn_read(syc_tls_conn_t *conn, uint8_t *out, size_t cap, char *err, size_t err_len)
{
    return loaded()->conn_read(conn, out, cap, err, err_len);
}

bool syc_tls_conn_established(const syc_tls_conn_t *conn)
{
    return loaded()->conn_established(conn);
}

int syc_tls_conn_write(syc_tls_conn_t *conn, const uint8_t *data, size_t len)
{
    return loaded()->conn_write(conn, data, len);
}

void syc_tls_conn_close_notify(syc_tls_conn_t *conn)
{
    loaded()->conn_close_notify(conn);
}

size_t syc_tls_conn_pending(const syc_tls_conn_t *conn)
{
    return loaded()->conn_pending(conn);
}

size_t syc_tls_conn_take(syc_tls_conn_t *conn, uint8_t *out, size_t cap)
{
    return loaded()->conn_take(conn, out, cap);
}
