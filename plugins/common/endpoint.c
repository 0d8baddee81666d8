/*
 * endpoint.c - parsing and resolving the "host:port" a server listens on; the
 * rules are in endpoint.h. Every server in the tree resolves through here so
 * that an endpoint means the same thing to each.
 */
#include "endpoint.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <switchyard/plugin.h>

int syc_endpoint_split(const char *endpoint, char *host, size_t host_len, int *port, char *err,
                       size_t err_len)
{
    const char *port_str;
    size_t hlen;
    if (!endpoint) goto bad;
    if (endpoint[0] == '[') {
        const char *end = strchr(endpoint, ']');
        if (!end || end[1] != ':') goto bad;
        hlen = (size_t)(end - endpoint - 1);
        if (hlen >= host_len) goto bad;
        memcpy(host, endpoint + 1, hlen);
        port_str = end + 2;
    } else {
        const char *colon = strrchr(endpoint, ':');
        if (!colon) goto bad;
        hlen = (size_t)(colon - endpoint);
        if (hlen >= host_len || memchr(endpoint, ':', hlen)) goto bad; /* IPv6 needs brackets */
        memcpy(host, endpoint, hlen);
        port_str = colon + 1;
    }
    host[hlen] = '\0';
    size_t plen = strlen(port_str);
    if (plen == 0 || plen > 5 || strspn(port_str, "0123456789") != plen) goto bad;
    *port = atoi(port_str);
    if (*port > 65535) goto bad;
    return 0;
bad:
    snprintf(err, err_len, "invalid endpoint \"%s\": expected host:port", endpoint ? endpoint : "");
    return SY_EINVAL;
}

int syc_endpoint_resolve(uv_loop_t *loop, const char *endpoint, struct sockaddr_storage *addr,
                         char *shown, size_t shown_len, char *err, size_t err_len)
{
    char host[256];
    int port;
    if (syc_endpoint_split(endpoint, host, sizeof(host), &port, err, err_len) != 0)
        return SY_EINVAL;

    memset(addr, 0, sizeof(*addr));
    if (host[0] == '\0') strcpy(host, "0.0.0.0");
    if (strcasecmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)addr) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr) != 0) {
        uv_getaddrinfo_t gai;
        struct addrinfo hints;
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        int rc = uv_getaddrinfo(loop, &gai, NULL, host, NULL, &hints);
        if (rc != 0 || !gai.addrinfo) {
            snprintf(err, err_len, "listen tcp %s: lookup %s: %s", endpoint, host,
                     rc ? uv_strerror(rc) : "no address");
            if (rc == 0) uv_freeaddrinfo(gai.addrinfo);
            return SY_EINVAL;
        }
        memcpy(addr, gai.addrinfo->ai_addr, gai.addrinfo->ai_addrlen);
        uv_freeaddrinfo(gai.addrinfo);
        /* sin_port and sin6_port sit at the same offset. */
        ((struct sockaddr_in *)addr)->sin_port = htons((uint16_t)port);
        if (addr->ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)addr, host, sizeof(host));
        else
            uv_ip6_name((struct sockaddr_in6 *)addr, host, sizeof(host));
    }
    if (shown && addr->ss_family == AF_INET6)
        snprintf(shown, shown_len, "[%s]:%d", host, port);
    else if (shown)
        snprintf(shown, shown_len, "%s:%d", host, port);
    return 0;
}
