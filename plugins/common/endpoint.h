/*
 * endpoint.h - the one reading of a listening endpoint ("host:port",
 * "[v6]:port", ":port") shared by every server: the HTTP/1.1 server (the otlp
 * receiver's HTTP protocol, health_check, /metrics) and the gRPC server.
 *
 * Rules: an empty host listens on every IPv4 interface (0.0.0.0); "localhost"
 * is 127.0.0.1; an IPv6 literal needs brackets; the port is 0..65535 in decimal
 * (0 picks a free port). Other host names are looked up with a synchronous
 * getaddrinfo, which is acceptable because servers start before their loop runs.
 */
#ifndef SY_COMMON_ENDPOINT_H
#define SY_COMMON_ENDPOINT_H

#include <stddef.h>
#include <sys/socket.h>

#include <uv.h>

/* Splits an endpoint into its host (copied into host, host_len bytes, brackets
 * removed) and port, checking the syntax only. Returns 0, or SY_EINVAL with a
 * sentence in err ("invalid endpoint \"x\": expected host:port"). Any thread. */
int syc_endpoint_split(const char *endpoint, char *host, size_t host_len, int *port, char *err,
                       size_t err_len);

/*
 * Resolves an endpoint into *addr, ready for uv_tcp_bind(). When shown is not
 * NULL it receives the address as it will be bound ("127.0.0.1:4318",
 * "[::1]:4317"), for messages. Returns 0, or SY_EINVAL with a sentence in err (bad
 * syntax, or "listen tcp <endpoint>: lookup <host>: <reason>"). Runs a blocking
 * lookup for host names: call it on the loop's thread before the loop runs.
 */
int syc_endpoint_resolve(uv_loop_t *loop, const char *endpoint, struct sockaddr_storage *addr,
                         char *shown, size_t shown_len, char *err, size_t err_len);

#endif /* SY_COMMON_ENDPOINT_H */
