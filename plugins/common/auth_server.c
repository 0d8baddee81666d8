/*
 * auth_server.c - resolving, asking and answering for a receiver's server
 * authenticator (see auth_server.h).
 */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "auth_server.h"

/* At most one warning about refused requests per interval, per guard. */
#define AUTH_WARN_MS 10000u

int syc_auth_guard_init(syc_auth_guard_t *g, const sy_host_api_t *api, sy_instance_t *inst,
                        const char *where, const char *id, sy_metric_t *m_refused, const char *what,
                        const char *metric_name)
{
    *g = (syc_auth_guard_t){
        .api = api, .inst = inst, .m_refused = m_refused, .what = what, .metric_name = metric_name};
    if (!id || !*id) return 0;
    const sy_auth_server_t *a = NULL;
    if (SY_API_HAS(api, extension_get)) a = api->extension_get(inst, id, SY_AUTH_SERVER);
    if (!a || !a->authenticate) {
        api->log(inst, SY_LOG_ERROR,
                 "%s: failed to resolve authenticator \"%s\": authenticator not found (it must "
                 "be an extension listed in service.extensions that authenticates requests, "
                 "such as bearertokenauth or basicauth with htpasswd)",
                 where, id);
        return SY_ERROR;
    }
    g->auth = a;
    return 0;
}

bool syc_auth_guard_check(syc_auth_guard_t *g, const char *const *headers, size_t n)
{
    if (!g->auth || g->auth->authenticate(g->auth->ctx, headers, n) == SY_OK) return true;
    if (g->m_refused) g->api->metric_add(g->m_refused, 1);
    g->unreported++;
    uint64_t now = uv_now(g->api->loop(g->inst));
    if (g->warned_ms && now - g->warned_ms < AUTH_WARN_MS) return false;
    SY_LOG(g->api, g->inst, SY_LOG_WARN,
           "refused %llu %s request(s) that did not authenticate; see %s",
           (unsigned long long)g->unreported, g->what, g->metric_name);
    g->warned_ms = now ? now : 1;
    g->unreported = 0;
    return false;
}

const char *syc_auth_guard_challenge(const syc_auth_guard_t *g, char *buf, size_t len)
{
    const char *c = g->auth ? g->auth->challenge : NULL;
    if (!c || strlen(c) > 200 || strpbrk(c, "\r\n")) return NULL;
    int n = snprintf(buf, len, "WWW-Authenticate: %s\r\n", c);
    return n > 0 && (size_t)n < len ? buf : NULL;
}

static int head_check(void *arg, const syc_http_request_t *req)
{
    return syc_auth_guard_check(arg, req->headers, req->nheaders) ? 0 : 401;
}

void syc_auth_guard_attach(syc_auth_guard_t *g, syc_http_server_t *server)
{
    if (!g->auth) return;
    syc_http_server_keep_all_headers(server, true);
    syc_http_server_set_head_check(server, head_check, g);
}
