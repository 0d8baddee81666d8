/*
 * lb_resolve.c - where the `loadbalancing` exporter's backends come from, as the
 * collector's resolver_static.go and resolver_dns.go say: `static`, a list of
 * host:port sorted once at start; `dns`, every address of a host name (IPv4 as is,
 * IPv6 in brackets, each with ":port"), sorted, looked up at start and then every
 * `interval` with libuv's uv_getaddrinfo (the system resolver, on libuv's worker
 * pool); an answer that differs from the last rebuilds the ring (lb_set_endpoints).
 * A look-up that fails or takes longer than `timeout` keeps the list as it is.
 * Everything but the look-up itself runs on the instance's loop thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadbalancing.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The static resolver: sorted, as the collector's newStaticResolver() does. */
static void resolve_static(lb_t *s, const lb_resolver_cfg_t *c)
{
    size_t n = c->hostnames.count, k = 0;
    char **eps = calloc(n, sizeof(*eps));
    if (!eps) return;
    memcpy(eps, c->hostnames.items, n * sizeof(*eps));
    qsort(eps, n, sizeof(*eps), cmp_str);
    for (size_t i = 0; i < n; i++) /* duplicates would be one backend twice */
        if (k == 0 || strcmp(eps[k - 1], eps[i])) eps[k++] = eps[i];
    s->api->metric_add(s->m_resolutions, 1);
    lb_set_endpoints(s, eps, k);
    free(eps);
}

/* One look-up under way. Separate from the state: libuv cannot cancel a look-up a
 * worker has begun, so at shutdown the request is orphaned and frees itself. */
typedef struct lb_dns_req_s {
    uv_getaddrinfo_t req;
    lb_t *owner; /* NULL once the instance stopped */
    uint64_t started_ms;
} lb_dns_req_t;

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    lb_dns_req_t *r = (lb_dns_req_t *)req;
    lb_t *s = r->owner;
    if (!s) {
        uv_freeaddrinfo(res);
        free(r);
        return;
    }
    s->dns_req = NULL;
    const lb_resolver_cfg_t *c = s->res_cfg;
    uint64_t took = uv_now(s->api->loop(s->inst)) - r->started_ms;
    free(r);
    if (status != 0 || took > (uint64_t)(c->dns_timeout_ns / 1000000)) {
        s->api->metric_add(s->m_resolutions_failed, 1);
        SY_LOG(s->api, s->inst, SY_LOG_WARN, "failed to resolve %s: %s", c->dns_hostname,
               status != 0 ? uv_strerror(status) : "timed out");
        uv_freeaddrinfo(res);
        return;
    }
    s->api->metric_add(s->m_resolutions, 1);
    size_t n = 0, k = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        n++;
    char **eps = calloc(n ? n : 1, sizeof(*eps));
    const char *port = c->dns_port ? c->dns_port : "";
    for (struct addrinfo *a = res; eps && a; a = a->ai_next) {
        char ip[INET6_ADDRSTRLEN + 2], *e = NULL;
        if (a->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)a->ai_addr, ip, sizeof(ip));
        else if (a->ai_family == AF_INET6) {
            char v6[INET6_ADDRSTRLEN];
            uv_ip6_name((const struct sockaddr_in6 *)a->ai_addr, v6, sizeof(v6));
            snprintf(ip, sizeof(ip), "[%s]", v6); /* as the collector writes IPv6 */
        } else
            continue;
        if (asprintf(&e, *port ? "%s:%s" : "%s", ip, port) < 0) continue;
        eps[k++] = e;
    }
    uv_freeaddrinfo(res);
    if (!eps) return;
    qsort(eps, k, sizeof(*eps), cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < k; i++) {
        if (u > 0 && !strcmp(eps[u - 1], eps[i])) {
            free(eps[i]);
            continue;
        }
        eps[u++] = eps[i];
    }
    lb_set_endpoints(s, eps, u);
    for (size_t i = 0; i < u; i++)
        free(eps[i]);
    free(eps);
}

static void dns_lookup(lb_t *s)
{
    const lb_resolver_cfg_t *c = s->res_cfg;
    if (s->dns_req || s->stopping) return; /* the previous one is still running */
    lb_dns_req_t *r = calloc(1, sizeof(*r));
    if (!r) return;
    r->owner = s;
    uv_loop_t *loop = s->api->loop(s->inst);
    r->started_ms = uv_now(loop);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    int rc = uv_getaddrinfo(loop, &r->req, on_resolved, c->dns_hostname, NULL, &hints);
    if (rc != 0) {
        free(r);
        s->api->metric_add(s->m_resolutions_failed, 1);
        SY_LOG(s->api, s->inst, SY_LOG_WARN, "failed to resolve %s: %s", c->dns_hostname,
               uv_strerror(rc));
        return;
    }
    s->dns_req = r;
}

static void on_dns_timer(uv_timer_t *t)
{
    dns_lookup(t->data);
}

int lb_resolver_start(lb_t *s)
{
    const lb_resolver_cfg_t *c = s->res_cfg;
    if (!c->dns_set) {
        resolve_static(s, c);
        return SY_OK;
    }
    if (uv_timer_init(s->api->loop(s->inst), &s->dns_timer) != 0) return SY_ERROR;
    s->dns_timer.data = s;
    s->dns_open = true;
    uint64_t every = (uint64_t)(c->dns_interval_ns / 1000000);
    uv_timer_start(&s->dns_timer, on_dns_timer, every ? every : 1, every ? every : 1);
    dns_lookup(s); /* the first look-up now, as the collector's start() */
    return SY_OK;
}

void lb_resolver_stop(lb_t *s)
{
    if (s->dns_req) {
        s->dns_req->owner = NULL; /* frees itself when libuv is done with it */
        uv_cancel((uv_req_t *)&s->dns_req->req);
        s->dns_req = NULL;
    }
    if (s->dns_open) uv_close((uv_handle_t *)&s->dns_timer, NULL);
    s->dns_open = false;
}
