/*
 * basicauth.c - the `basicauth` extension: HTTP Basic authentication, as the
 * collector's basicauthextension. As a server authenticator (htpasswd.file
 * and/or htpasswd.inline) it checks "Authorization: Basic base64(user:password)"
 * against htpasswd entries; as a client authenticator (client_auth) it adds that
 * header to what an exporter sends. One instance is one or the other.
 *
 * Password formats of an entry (htpasswd_check()):
 *   $2a$ $2b$ $2y$  bcrypt            crypt_rn() of libxcrypt
 *   $1$ $5$ $6$     MD5/SHA-256/SHA-512-crypt, crypt_rn() as well
 *   {SHA}           base64 of SHA-1 of the password
 *   {SSHA}          base64 of SHA-1 of password+salt, then the salt
 *   anything else   the password in clear
 * $apr1$ (Apache's MD5) is not supported: such an entry never matches and is
 * named in a warning at startup.
 *
 * Entries are read once, in create(), and never change afterwards, so
 * authenticate() needs no lock; every comparison of a secret is constant-time.
 */
#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <switchyard/auth.h>
#include <switchyard/plugin.h>

#include "auth_util.h"

#define BA_FILE_MAX  (4u * 1024u * 1024u)
#define BA_CRED_MAX  4096u /* the longest decoded user:password looked at */
#define BA_CHALLENGE "Basic realm=\"switchyard\", charset=\"UTF-8\""

typedef struct ba_config_s {
    char *htpasswd_file;
    char *htpasswd_inline;
    bool client_auth;
    char *username;
    char *password;
} ba_config_t;

static const sy_config_field_t ba_fields[] = {
    {SY_CFG_FIELD("htpasswd.file", SY_CFG_STRING, ba_config_t, htpasswd_file),
     .description = "htpasswd file of the users a server accepts."},
    {SY_CFG_FIELD("htpasswd.inline", SY_CFG_STRING, ba_config_t, htpasswd_inline),
     .description = "htpasswd content (`user:password-or-hash`, one a line); its users win "
                    "over the file's."},
    {SY_CFG_FIELD("client_auth", SY_CFG_PRESENT, ba_config_t, client_auth),
     .description = "Makes the instance a client authenticator."},
    {SY_CFG_FIELD("client_auth.username", SY_CFG_STRING, ba_config_t, username),
     .description = "User name an exporter sends."},
    {SY_CFG_FIELD("client_auth.password", SY_CFG_STRING, ba_config_t, password),
     .description = "Password an exporter sends."},
};

typedef struct ba_entry_s {
    char *user;
    char *hash;
    /* crypt() hashes (bcrypt above all) are slow on purpose: once a password has
     * matched, a keyed SHA-256 of it is kept, and the same password is then
     * accepted on that digest alone (guarded by ba_state_t.cache_lock). A wrong
     * password always pays the full crypt(). */
    bool verified;
    uint8_t digest[SHA256_DIGEST_LENGTH];
} ba_entry_t;

typedef struct ba_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const ba_config_t *cfg;
    ba_entry_t *entries; /* inline entries first: a lookup takes the first match */
    size_t nentries, cap;
    pthread_mutex_t cache_lock; /* guards entries[].verified and .digest */
    uint8_t cache_key[32];      /* random, so that a digest is of use nowhere else */
    char *line;                 /* client: "Authorization: Basic ...\r\n" */
    sy_auth_server_t server;
    sy_auth_client_t client;
    sy_metric_t *m_failed;
} ba_state_t;

/* ------------------------------------------------------------------------ */
/* htpasswd                                                                  */
/* ------------------------------------------------------------------------ */

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

static bool is_crypt_hash(const char *h)
{
    return has_prefix(h, "$2a$") || has_prefix(h, "$2b$") || has_prefix(h, "$2y$") ||
           has_prefix(h, "$1$") || has_prefix(h, "$5$") || has_prefix(h, "$6$");
}

/* {SHA} and {SSHA}: base64 of SHA-1(password + salt) followed by the salt. */
static bool sha_check(const char *b64, const char *pw, size_t pwlen, bool salted)
{
    uint8_t raw[256];
    int n = syc_base64_decode(b64, strlen(b64), raw, sizeof raw);
    if (n < SHA_DIGEST_LENGTH || (!salted && n != SHA_DIGEST_LENGTH)) return false;
    uint8_t md[SHA_DIGEST_LENGTH];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha1(), NULL) == 1 &&
              EVP_DigestUpdate(c, pw, pwlen) == 1 &&
              EVP_DigestUpdate(c, raw + SHA_DIGEST_LENGTH, (size_t)n - SHA_DIGEST_LENGTH) == 1 &&
              EVP_DigestFinal_ex(c, md, NULL) == 1;
    EVP_MD_CTX_free(c);
    if (!ok) return false;
    return syc_ct_equal(md, sizeof md, raw, SHA_DIGEST_LENGTH);
}

/* SHA-256(key || password): what the cache of verified crypt() passwords keeps. */
static bool cache_digest(const ba_state_t *s, const char *pw, size_t pwlen, uint8_t *md)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    bool ok = c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(c, s->cache_key, sizeof s->cache_key) == 1 &&
              EVP_DigestUpdate(c, pw, pwlen) == 1 && EVP_DigestFinal_ex(c, md, NULL) == 1;
    EVP_MD_CTX_free(c);
    return ok;
}

/* Whether password pw matches the entry's hash. */
static bool htpasswd_check(const char *hash, const char *pw, size_t pwlen)
{
    if (is_crypt_hash(hash)) {
        struct crypt_data *cd = calloc(1, sizeof *cd);
        if (!cd) return false;
        char *pwz = strndup(pw, pwlen);
        const char *out = pwz ? crypt_rn(pwz, hash, cd, (int)sizeof *cd) : NULL;
        bool ok = out && out[0] != '*' && syc_ct_equal(out, strlen(out), hash, strlen(hash));
        if (pwz) explicit_bzero(pwz, pwlen);
        free(pwz);
        explicit_bzero(cd, sizeof *cd);
        free(cd);
        return ok;
    }
    if (has_prefix(hash, "{SHA}")) return sha_check(hash + 5, pw, pwlen, false);
    if (has_prefix(hash, "{SSHA}")) return sha_check(hash + 6, pw, pwlen, true);
    if (has_prefix(hash, "$apr1$")) return false;
    return syc_ct_equal(pw, pwlen, hash, strlen(hash));
}

/* htpasswd_check() through the cache of verified crypt() passwords. Any thread. */
static bool entry_check(ba_state_t *s, ba_entry_t *e, const char *pw, size_t pwlen)
{
    uint8_t md[SHA256_DIGEST_LENGTH];
    if (!is_crypt_hash(e->hash) || !cache_digest(s, pw, pwlen, md))
        return htpasswd_check(e->hash, pw, pwlen);
    pthread_mutex_lock(&s->cache_lock);
    bool hit = e->verified && syc_ct_equal(md, sizeof md, e->digest, sizeof e->digest);
    pthread_mutex_unlock(&s->cache_lock);
    if (hit) return true;
    if (!htpasswd_check(e->hash, pw, pwlen)) return false;
    pthread_mutex_lock(&s->cache_lock);
    memcpy(e->digest, md, sizeof md);
    e->verified = true;
    pthread_mutex_unlock(&s->cache_lock);
    return true;
}

static int add_entry(ba_state_t *s, const char *user, size_t ulen, const char *hash, size_t hlen)
{
    if (s->nentries == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        ba_entry_t *e = realloc(s->entries, cap * sizeof *e);
        if (!e) return SY_ENOMEM;
        s->entries = e;
        s->cap = cap;
    }
    ba_entry_t *e = &s->entries[s->nentries];
    memset(e, 0, sizeof *e);
    e->user = strndup(user, ulen);
    e->hash = strndup(hash, hlen);
    if (!e->user || !e->hash) {
        free(e->user);
        free(e->hash);
        return SY_ENOMEM;
    }
    s->nentries++;
    if (has_prefix(e->hash, "$apr1$"))
        SY_LOG(s->api, s->inst, SY_LOG_WARN,
               "user \"%s\": $apr1$ (Apache MD5) hashes are not supported; this user cannot "
               "log in (use bcrypt: htpasswd -B)",
               e->user);
    return SY_OK;
}

static int add_parsed(void *arg, const char *user, size_t ulen, const char *hash, size_t hlen)
{
    return add_entry(arg, user, ulen, hash, hlen);
}

/* Adds the entries of htpasswd text. Returns 0, or SY_EINVAL naming the line. */
static int parse_htpasswd(ba_state_t *s, const char *text, const char *what, char *err,
                          size_t err_len)
{
    size_t bad = 0;
    int rc = syc_htpasswd_parse(text, add_parsed, s, &bad);
    if (rc == SY_EINVAL)
        snprintf(err, err_len, "%s, line %zu: not \"user:password\"", what, bad);
    else if (rc < 0)
        snprintf(err, err_len, "out of memory");
    return rc;
}

static char *read_file(const char *path, char *err, size_t err_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "htpasswd.file: cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(BA_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, BA_FILE_MAX + 1, f) : 0;
    bool bad = !buf || ferror(f) || n > BA_FILE_MAX;
    fclose(f);
    if (bad) {
        snprintf(err, err_len, "htpasswd.file: cannot read %s: %s", path,
                 !buf              ? "out of memory"
                 : n > BA_FILE_MAX ? "larger than 4MiB"
                                   : "read error");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* ------------------------------------------------------------------------ */
/* The interfaces                                                            */
/* ------------------------------------------------------------------------ */

static int ba_authenticate(void *ctx, const char *const *headers, size_t n)
{
    ba_state_t *s = ctx;
    const char *v = syc_auth_header(headers, n, "authorization");
    int rc = SY_EINVAL;
    uint8_t cred[BA_CRED_MAX];
    size_t ulen, pwlen;
    const char *pw;
    if (syc_basic_credentials(v, cred, sizeof cred, &ulen, &pw, &pwlen) == 0) {
        for (size_t i = 0; i < s->nentries; i++) {
            ba_entry_t *e = &s->entries[i];
            if (strlen(e->user) != ulen || memcmp(e->user, cred, ulen) != 0) continue;
            if (entry_check(s, e, pw, pwlen)) rc = SY_OK;
            break; /* the first entry of a user is the one that counts */
        }
    }
    explicit_bzero(cred, sizeof cred);
    if (rc != SY_OK) s->api->metric_add(s->m_failed, 1);
    return rc;
}

static int ba_headers(void *ctx, char *out, size_t cap)
{
    ba_state_t *s = ctx;
    size_t len = strlen(s->line);
    if (len >= cap) return SY_ENOMEM;
    memcpy(out, s->line, len + 1);
    return (int)len;
}

static const void *ba_interface(void *state, const char *name)
{
    ba_state_t *s = state;
    if (s->line) return strcmp(name, SY_AUTH_CLIENT) == 0 ? &s->client : NULL;
    return strcmp(name, SY_AUTH_SERVER) == 0 ? &s->server : NULL;
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */
/* ------------------------------------------------------------------------ */

static int ba_validate(const void *config, char *err, size_t err_len)
{
    const ba_config_t *cfg = config;
    bool server = (cfg->htpasswd_file && *cfg->htpasswd_file) || cfg->htpasswd_inline;
    bool client = cfg->client_auth || cfg->username || cfg->password;
    if (server && client) {
        snprintf(err, err_len, "either server or client auth can be enabled, not both");
        return SY_EINVAL;
    }
    if (!server && !client) {
        snprintf(err, err_len, "at least one of htpasswd or client_auth must be set");
        return SY_EINVAL;
    }
    if (client && (!cfg->username || strchr(cfg->username, ':'))) {
        snprintf(err, err_len, "client_auth.username: must be set and hold no ':'");
        return SY_EINVAL;
    }
    return SY_OK;
}

static void ba_destroy(void *state);

static int ba_make_line(ba_state_t *s)
{
    const ba_config_t *cfg = s->cfg;
    const char *pw = cfg->password ? cfg->password : "";
    size_t ulen = strlen(cfg->username), plen = strlen(pw);
    char *raw = malloc(ulen + plen + 2);
    size_t cap = (ulen + plen + 3) / 3 * 4 + 1;
    char *b64 = malloc(cap);
    int rc = SY_ENOMEM;
    if (raw && b64) {
        snprintf(raw, ulen + plen + 2, "%s:%s", cfg->username, pw);
        if (syc_base64_encode(raw, ulen + plen + 1, b64, cap) >= 0 &&
            asprintf(&s->line, "Authorization: Basic %s\r\n", b64) >= 0)
            rc = SY_OK;
        else
            s->line = NULL;
        explicit_bzero(raw, ulen + plen + 1);
    }
    free(raw);
    free(b64);
    return rc;
}

static int ba_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    const ba_config_t *cfg = config;
    ba_state_t *s = calloc(1, sizeof *s);
    char err[512] = "";
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = cfg;
    pthread_mutex_init(&s->cache_lock, NULL);
    if (RAND_bytes(s->cache_key, sizeof s->cache_key) != 1) {
        api->log(inst, SY_LOG_ERROR, "no random bytes for the password cache's key");
        ba_destroy(s);
        return SY_ERROR;
    }
    s->server =
        (sy_auth_server_t){.ctx = s, .authenticate = ba_authenticate, .challenge = BA_CHALLENGE};
    s->client = (sy_auth_client_t){.ctx = s, .headers = ba_headers};
    s->m_failed = api->metric_register(inst, "extension_basicauth_failed_requests",
                                       "Requests whose credentials were missing or wrong.",
                                       SY_METRIC_COUNTER);
    int rc = SY_OK;
    if (cfg->username) {
        rc = ba_make_line(s);
        if (rc < 0) snprintf(err, sizeof err, "out of memory");
    } else {
        /* Inline first: its users win over the file's, as in the collector. */
        if (cfg->htpasswd_inline)
            rc = parse_htpasswd(s, cfg->htpasswd_inline, "htpasswd.inline", err, sizeof err);
        if (rc == SY_OK && cfg->htpasswd_file && *cfg->htpasswd_file) {
            char *text = read_file(cfg->htpasswd_file, err, sizeof err);
            rc = text ? parse_htpasswd(s, text, cfg->htpasswd_file, err, sizeof err) : SY_EINVAL;
            free(text);
        }
    }
    if (rc < 0) {
        api->log(inst, SY_LOG_ERROR, "%s", err);
        ba_destroy(s);
        return rc;
    }
    *state = s;
    return SY_OK;
}

static void ba_destroy(void *state)
{
    ba_state_t *s = state;
    if (!s) return;
    for (size_t i = 0; i < s->nentries; i++) {
        free(s->entries[i].user);
        explicit_bzero(s->entries[i].hash, strlen(s->entries[i].hash));
        free(s->entries[i].hash);
    }
    free(s->entries);
    free(s->line);
    pthread_mutex_destroy(&s->cache_lock);
    explicit_bzero(s->cache_key, sizeof s->cache_key);
    free(s);
}

static const sy_plugin_t ba_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXTENSION,
    .type = "basicauth",
    .version = "0.1.0",
    .description = "HTTP Basic authentication: htpasswd users for receivers, client_auth for "
                   "exporters.",
    SY_CFG_TABLE(ba_fields),
    .config_size = sizeof(ba_config_t),
    .validate = ba_validate,
    .create = ba_create,
    .destroy = ba_destroy,
    .extension_interface = ba_interface,
};

SY_PLUGIN_DEFINE(ba_plugin)
