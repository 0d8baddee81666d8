/*
 * tls_client_files.c - `tls.reload_interval` on the curl-based clients: the
 * ca_file, cert_file and key_file of a client are read into memory and handed to
 * curl as blobs (CURLOPT_CAINFO_BLOB, _SSLCERT_BLOB, _SSLKEY_BLOB, copied by curl),
 * and read again only once reload_interval has passed since they were last read.
 * So a client trusts what it loaded for reload_interval, then what the files hold
 * now, as the collector's configtls does. curl matches pooled connections on the
 * blobs' bytes: once a file changed, new transfers open new connections with the
 * new files; CURLOPT_MAXLIFETIME_CONN (reload_interval) retires connections older
 * than that, so that a long-lived connection also picks up a rotated certificate.
 * A file that cannot be read keeps the bytes read before (logged by the caller's
 * failed handshake); one never read is left to curl by its path.
 *
 * The cache is process-wide (per plugin: sy_common is linked into each), keyed by
 * path and interval, under a mutex: exporters on several threads share it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "curl_uv.h"

typedef struct file_entry_s {
    struct file_entry_s *next;
    char *path;
    int64_t interval_ns;
    uint64_t loaded_ms;
    unsigned char *data;
    size_t len;
} file_entry_t;

static pthread_mutex_t files_mu = PTHREAD_MUTEX_INITIALIZER;
static file_entry_t *files;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reads the whole (small) file; NULL when it cannot be read or is over 1 MiB. */
static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 8192, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        if (cap >= (1u << 20)) {
            free(buf);
            buf = NULL;
            break;
        }
        unsigned char *grown = realloc(buf, cap * 2);
        if (!grown) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = grown;
        cap *= 2;
    }
    bool bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Sets `opt` to the bytes of `path` as last read (read again when interval_ns has
 * passed). Returns false when the file was never readable. */
static bool set_blob(CURL *easy, CURLoption opt, const char *path, int64_t interval_ns)
{
    pthread_mutex_lock(&files_mu);
    file_entry_t *e = files;
    while (e && (e->interval_ns != interval_ns || strcmp(e->path, path) != 0))
        e = e->next;
    if (!e && (e = calloc(1, sizeof(*e)))) {
        if ((e->path = strdup(path))) {
            e->interval_ns = interval_ns;
            e->next = files;
            files = e;
        } else {
            free(e);
            e = NULL;
        }
    }
    uint64_t now = mono_ms();
    if (e && (!e->data || now - e->loaded_ms >= (uint64_t)(interval_ns / 1000000))) {
        size_t len = 0;
        unsigned char *data = read_file(path, &len);
        if (data) {
            free(e->data);
            e->data = data;
            e->len = len;
        }
        e->loaded_ms = now;
    }
    bool ok = e && e->data;
    if (ok) {
        struct curl_blob blob = {.data = e->data, .len = e->len, .flags = CURL_BLOB_COPY};
        ok = curl_easy_setopt(easy, opt, &blob) == CURLE_OK;
    }
    pthread_mutex_unlock(&files_mu);
    return ok;
}

void syc_curl_tls_files(CURL *easy, const syc_tls_client_t *tls)
{
    if (tls->reload_interval <= 0) {
        /* curl reads the files for every new connection (7.88). */
        if (tls->ca_file && *tls->ca_file) curl_easy_setopt(easy, CURLOPT_CAINFO, tls->ca_file);
        if (tls->cert_file && *tls->cert_file)
            curl_easy_setopt(easy, CURLOPT_SSLCERT, tls->cert_file);
        if (tls->key_file && *tls->key_file) curl_easy_setopt(easy, CURLOPT_SSLKEY, tls->key_file);
        return;
    }
    int64_t every = tls->reload_interval;
    if (tls->ca_file && *tls->ca_file && !set_blob(easy, CURLOPT_CAINFO_BLOB, tls->ca_file, every))
        curl_easy_setopt(easy, CURLOPT_CAINFO, tls->ca_file);
    if (tls->cert_file && *tls->cert_file &&
        !set_blob(easy, CURLOPT_SSLCERT_BLOB, tls->cert_file, every))
        curl_easy_setopt(easy, CURLOPT_SSLCERT, tls->cert_file);
    if (tls->key_file && *tls->key_file &&
        !set_blob(easy, CURLOPT_SSLKEY_BLOB, tls->key_file, every))
        curl_easy_setopt(easy, CURLOPT_SSLKEY, tls->key_file);
    long secs = (long)(every / 1000000000);
    curl_easy_setopt(easy, CURLOPT_MAXLIFETIME_CONN, secs > 0 ? secs : 1L);
}
