/*
 * bearertokenauth.c - the `bearertokenauth` extension: a static bearer token,
 * checked on requests a receiver takes (SY_AUTH_SERVER) and added to requests an
 * exporter sends (SY_AUTH_CLIENT), as the collector's bearertokenauthextension.
 *
 * The token comes from `token`, or from the file `filename` (which wins when
 * both are set, as in the collector). The file is looked at again every
 * BT_POLL_MS on the extension's loop thread and read again when its
 * modification time, size or inode changed; a reload that fails keeps the
 * previous token. The current credentials are swapped under a mutex, since
 * authenticate() and headers() run on the receivers' and exporters' threads.
 *
 * The server compares the whole header value with "<scheme> <token>" in time
 * that does not depend on where they differ (syc_ct_equal).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uv.h>

#include <switchyard/auth.h>
#include <switchyard/plugin.h>

#include "auth_util.h"

#define BT_POLL_MS  1000u
#define BT_FILE_MAX (64u * 1024u) /* a token file larger than this is refused */
#define BT_WARN_MS  60000u

typedef struct bt_config_s {
    char *scheme;
    char *token;
    char *filename;
    char *header;
} bt_config_t;

static const sy_config_field_t bt_fields[] = {
    {SY_CFG_FIELD("scheme", SY_CFG_STRING, bt_config_t, scheme), .default_value = "Bearer",
     .description = "Auth scheme put before the token (\"\" for the token alone)."},
    {SY_CFG_FIELD("token", SY_CFG_STRING, bt_config_t, token),
     .description = "Static token. Ignored when filename is set."},
    {SY_CFG_FIELD("filename", SY_CFG_STRING, bt_config_t, filename),
     .description = "File holding the token (surrounding white space is dropped); read "
                    "again when it changes (checked every second)."},
    {SY_CFG_FIELD("header", SY_CFG_STRING, bt_config_t, header), .default_value = "Authorization",
     .description = "Header that carries \"<scheme> <token>\"."},
};

/* What one token makes: the value the server expects and the client's line. */
typedef struct bt_cred_s {
    char *expected; /* "<scheme> <token>" */
    char *line;     /* "<Header>: <scheme> <token>\r\n" */
} bt_cred_t;

typedef struct bt_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const bt_config_t *cfg;
    char *header_lc; /* the header's name in lower case */
    sy_auth_server_t server;
    sy_auth_client_t client;
    pthread_mutex_t lock; /* guards cred */
    bt_cred_t cred;
    /* The token file as last read (loop thread). */
    struct timespec mtime;
    off_t size;
    ino_t ino;
    bool file_known;
    sy_timer_t *poll;
    uint64_t warned_ms;
    sy_metric_t *m_reloads, *m_reload_failed, *m_failed;
} bt_state_t;

/* ------------------------------------------------------------------------ */
/* Credentials                                                               */
/* ------------------------------------------------------------------------ */

static void cred_free(bt_cred_t *c)
{
    if (c->expected) explicit_bzero(c->expected, strlen(c->expected));
    if (c->line) explicit_bzero(c->line, strlen(c->line));
    free(c->expected);
    free(c->line);
    c->expected = c->line = NULL;
}

/* Makes the credentials of `token`. Returns 0, SY_EINVAL (an empty token would
 * let "<scheme> " in; a line break or a NUL would break the header) or SY_ENOMEM. */
static int cred_make(const bt_config_t *cfg, const char *token, size_t len, bt_cred_t *out)
{
    if (len == 0 || memchr(token, '\r', len) || memchr(token, '\n', len) ||
        memchr(token, '\0', len))
        return SY_EINVAL;
    const char *scheme = cfg->scheme ? cfg->scheme : "";
    const char *sep = *scheme ? " " : "";
    if (asprintf(&out->expected, "%s%s%.*s", scheme, sep, (int)len, token) < 0) {
        out->expected = NULL;
        return SY_ENOMEM;
    }
    if (asprintf(&out->line, "%s: %s\r\n", cfg->header, out->expected) < 0) {
        out->line = NULL;
        cred_free(out);
        return SY_ENOMEM;
    }
    return SY_OK;
}

/* Reads the token file, trimmed of white space around it. Returns 0 with a
 * malloc'd token, or a negative SY_E* with a sentence in err. */
static int read_token_file(const char *path, char **token, size_t *len, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "cannot open %s: %s", path, strerror(errno));
        return SY_ERROR;
    }
    char *buf = malloc(BT_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, BT_FILE_MAX + 1, f) : 0;
    bool bad = buf && ferror(f);
    fclose(f);
    if (!buf) return SY_ENOMEM;
    if (bad || n > BT_FILE_MAX) {
        snprintf(err, err_len, "cannot read %s: %s", path,
                 bad ? "read error" : "larger than 64KiB");
        free(buf);
        return SY_ERROR;
    }
    size_t start = 0;
    while (start < n && strchr(" \t\r\n", buf[start]))
        start++;
    while (n > start && strchr(" \t\r\n", buf[n - 1]))
        n--;
    memmove(buf, buf + start, n - start);
    buf[n - start] = '\0';
    *token = buf;
    *len = n - start;
    return SY_OK;
}

/* Replaces the credentials; the old ones are freed after the swap, when no
 * reader can hold them (readers use them under the lock only). */
static void cred_swap(bt_state_t *s, bt_cred_t *fresh)
{
    pthread_mutex_lock(&s->lock);
    bt_cred_t old = s->cred;
    s->cred = *fresh;
    pthread_mutex_unlock(&s->lock);
    cred_free(&old);
}

/* Loads the token (from the file when there is one). */
static int load(bt_state_t *s, char *err, size_t err_len)
{
    const bt_config_t *cfg = s->cfg;
    bt_cred_t fresh = {0};
    int rc;
    if (cfg->filename && *cfg->filename) {
        struct stat st;
        if (stat(cfg->filename, &st) != 0) {
            snprintf(err, err_len, "cannot read %s: %s", cfg->filename, strerror(errno));
            return SY_ERROR;
        }
        char *token;
        size_t len;
        rc = read_token_file(cfg->filename, &token, &len, err, err_len);
        if (rc < 0) return rc;
        rc = cred_make(cfg, token, len, &fresh);
        explicit_bzero(token, len);
        free(token);
        if (rc == SY_OK) {
            s->mtime = st.st_mtim;
            s->size = st.st_size;
            s->ino = st.st_ino;
            s->file_known = true;
        }
    } else {
        rc = cred_make(cfg, cfg->token, strlen(cfg->token), &fresh);
    }
    if (rc == SY_EINVAL)
        snprintf(err, err_len, "the token%s%s is empty or holds a line break or NUL",
                 cfg->filename && *cfg->filename ? " in " : "",
                 cfg->filename && *cfg->filename ? cfg->filename : "");
    if (rc == SY_ENOMEM) snprintf(err, err_len, "out of memory");
    if (rc < 0) return rc;
    cred_swap(s, &fresh);
    return SY_OK;
}

/* The poll timer: reads the file again when stat() says it changed. */
static void bt_poll(void *arg)
{
    bt_state_t *s = arg;
    struct stat st;
    char err[512];
    bool changed;
    if (stat(s->cfg->filename, &st) != 0) {
        changed = false;
        snprintf(err, sizeof err, "cannot read %s: %s", s->cfg->filename, strerror(errno));
    } else {
        changed = !s->file_known || st.st_ino != s->ino || st.st_size != s->size ||
                  st.st_mtim.tv_sec != s->mtime.tv_sec || st.st_mtim.tv_nsec != s->mtime.tv_nsec;
        if (!changed) return;
    }
    if (changed && load(s, err, sizeof err) == SY_OK) {
        s->api->metric_add(s->m_reloads, 1);
        SY_LOG(s->api, s->inst, SY_LOG_INFO, "read the token again from %s", s->cfg->filename);
        return;
    }
    /* Failed: keep the previous token; say so at most once a minute. */
    s->api->metric_add(s->m_reload_failed, 1);
    uint64_t now = uv_now(s->api->loop(s->inst));
    if (s->warned_ms && now - s->warned_ms < BT_WARN_MS) return;
    s->warned_ms = now;
    SY_LOG(s->api, s->inst, SY_LOG_WARN, "%s; the previous token stays in use", err);
}

/* ------------------------------------------------------------------------ */
/* The interfaces                                                            */
/* ------------------------------------------------------------------------ */

static int bt_authenticate(void *ctx, const char *const *headers, size_t n)
{
    bt_state_t *s = ctx;
    const char *got = syc_auth_header(headers, n, s->header_lc);
    int rc = SY_EINVAL;
    if (got && *got) {
        size_t len = strlen(got);
        pthread_mutex_lock(&s->lock);
        if (s->cred.expected && syc_ct_equal(got, len, s->cred.expected, strlen(s->cred.expected)))
            rc = SY_OK;
        pthread_mutex_unlock(&s->lock);
    }
    if (rc != SY_OK) s->api->metric_add(s->m_failed, 1);
    return rc;
}

static int bt_headers(void *ctx, char *out, size_t cap)
{
    bt_state_t *s = ctx;
    int rc = SY_ENOMEM;
    pthread_mutex_lock(&s->lock);
    size_t len = s->cred.line ? strlen(s->cred.line) : 0;
    if (len < cap) {
        if (len) memcpy(out, s->cred.line, len);
        out[len] = '\0';
        rc = (int)len;
    }
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static const void *bt_interface(void *state, const char *name)
{
    bt_state_t *s = state;
    if (strcmp(name, SY_AUTH_SERVER) == 0) return &s->server;
    if (strcmp(name, SY_AUTH_CLIENT) == 0) return &s->client;
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */
/* ------------------------------------------------------------------------ */

static int bt_validate(const void *config, char *err, size_t err_len)
{
    const bt_config_t *cfg = config;
    bool has_file = cfg->filename && *cfg->filename;
    if (!has_file && !(cfg->token && *cfg->token)) {
        snprintf(err, err_len, "either token or filename must be set");
        return SY_EINVAL;
    }
    if (!cfg->header || !*cfg->header || strpbrk(cfg->header, ": \t\r\n")) {
        snprintf(err, err_len, "header: must be a header name (no ':', space or line break)");
        return SY_EINVAL;
    }
    if (strlen(cfg->header) > 39) {
        snprintf(err, err_len, "header: longer than 39 bytes");
        return SY_EINVAL;
    }
    if (cfg->scheme && strpbrk(cfg->scheme, "\r\n")) {
        snprintf(err, err_len, "scheme: must not hold a line break");
        return SY_EINVAL;
    }
    if (!has_file && strpbrk(cfg->token, "\r\n")) {
        snprintf(err, err_len, "token: must not hold a line break");
        return SY_EINVAL;
    }
    return SY_OK;
}

static void bt_destroy(void *state);

static int bt_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    const bt_config_t *cfg = config;
    bt_state_t *s = calloc(1, sizeof *s);
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = cfg;
    pthread_mutex_init(&s->lock, NULL);
    s->header_lc = strdup(cfg->header);
    if (!s->header_lc) {
        bt_destroy(s);
        return SY_ENOMEM;
    }
    syc_ascii_lower(s->header_lc);
    s->server.ctx = s;
    s->server.authenticate = bt_authenticate;
    /* A challenge only for the standard header (RFC 6750 section 3). */
    s->server.challenge = strcmp(s->header_lc, "authorization") == 0 && cfg->scheme && *cfg->scheme
                              ? cfg->scheme
                              : NULL;
    s->client.ctx = s;
    s->client.headers = bt_headers;
    if (cfg->filename && *cfg->filename && cfg->token && *cfg->token)
        SY_LOG(api, inst, SY_LOG_WARN, "both token and filename are set: token is ignored");
    s->m_failed = api->metric_register(inst, "extension_bearertokenauth_failed_requests",
                                       "Requests whose token was missing or did not match.",
                                       SY_METRIC_COUNTER);
    s->m_reloads = api->metric_register(inst, "extension_bearertokenauth_token_reloads",
                                        "Times the token file was read again after it changed.",
                                        SY_METRIC_COUNTER);
    s->m_reload_failed =
        api->metric_register(inst, "extension_bearertokenauth_token_reload_failures",
                             "Times the token file changed but could not be read (the previous "
                             "token stayed in use).",
                             SY_METRIC_COUNTER);
    *state = s;
    return SY_OK;
}

static int bt_start(void *state)
{
    bt_state_t *s = state;
    char err[512];
    /* A file that cannot be read fails startup, naming it. */
    if (load(s, err, sizeof err) != SY_OK) {
        s->api->log(s->inst, SY_LOG_ERROR, "%s", err);
        return SY_ERROR;
    }
    if (s->cfg->filename && *s->cfg->filename) {
        s->poll = s->api->timer_start(s->inst, BT_POLL_MS, BT_POLL_MS, bt_poll, s);
        if (!s->poll) {
            s->api->log(s->inst, SY_LOG_ERROR, "cannot start the timer that watches %s",
                        s->cfg->filename);
            return SY_ERROR;
        }
    }
    return SY_OK;
}

static void bt_shutdown(void *state)
{
    bt_state_t *s = state;
    if (s->poll) s->api->timer_stop(s->poll);
    s->poll = NULL;
}

static void bt_destroy(void *state)
{
    bt_state_t *s = state;
    if (!s) return;
    cred_free(&s->cred);
    free(s->header_lc);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static const sy_plugin_t bt_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXTENSION,
    .type = "bearertokenauth",
    .version = "0.1.0",
    .description = "Static bearer token: checked on receivers' requests, added to exporters' "
                   "requests.",
    SY_CFG_TABLE(bt_fields),
    .config_size = sizeof(bt_config_t),
    .validate = bt_validate,
    .create = bt_create,
    .start = bt_start,
    .shutdown = bt_shutdown,
    .destroy = bt_destroy,
    .extension_interface = bt_interface,
};

SY_PLUGIN_DEFINE(bt_plugin)
