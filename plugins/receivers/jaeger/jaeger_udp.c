/*
 * jaeger_udp.c - the Jaeger agent's UDP protocols (thrift_compact, thrift_binary),
 * shaped like the collector's: one socket, a bounded queue of packets
 * (queue_size) and `workers` threads that decode, translate and emit.
 *
 * The socket is read on the loop thread (libuv), which only copies each datagram
 * into a packet of its size and queues it: a full queue drops the packet. The
 * workers take packets from the queue and call jaeger_emit(); a batch the pipeline
 * refuses (SY_EAGAIN: its queue is full) is offered again for up to
 * JAEGER_UDP_EMIT_WAIT_MS, and then, or at once when the router is shutting down
 * (SY_ECLOSED), dropped. UDP has no way
 * to push back, so these are the two places where the router may lose data; each
 * is counted in the instance's metrics and logged at a rate-limited warning.
 *
 * Threads: the loop thread owns the handle and the receive buffer; the queue is
 * guarded by `mu` (the workers sleep on `cv`). Shutdown stops reading, lets the
 * workers drain what is queued, joins them and closes the handle; the memory is
 * freed in destroy(), after the handle's close callback has run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>

#include "endpoint.h"
#include "jaeger.h"

static void register_metrics(jaeger_udp_t *u)
{
    const sy_host_api_t *api = u->st->api;
    sy_instance_t *inst = u->st->inst;
    char name[128], help[256];
#define REG(field, suffix, text, type)                                          \
    do {                                                                        \
        snprintf(name, sizeof(name), "receiver_jaeger_%s_%s", u->name, suffix); \
        snprintf(help, sizeof(help), text " (%s).", u->name);                   \
        u->field = api->metric_register(inst, name, help, type);                \
    } while (0)
    REG(m_received, "packets_received", "UDP packets read from the socket", SY_METRIC_COUNTER);
    REG(m_queue_full, "packets_dropped_queue_full",
        "Packets dropped because the queue of packets waiting for a worker was full",
        SY_METRIC_COUNTER);
    REG(m_refused, "packets_refused",
        "Packets decoded but dropped because the pipeline pushed back or was shutting down",
        SY_METRIC_COUNTER);
    REG(m_spans_refused, "spans_refused", "Spans in the packets counted in packets_refused",
        SY_METRIC_COUNTER);
    REG(m_invalid, "packets_invalid",
        "Packets dropped because they did not decode (truncated, malformed, too deep, an "
        "unknown method)",
        SY_METRIC_COUNTER);
    REG(m_read_errors, "read_errors", "Errors reading the socket", SY_METRIC_COUNTER);
    REG(m_queue_len, "queue_length", "Packets waiting for a worker", SY_METRIC_GAUGE);
#undef REG
}

static void process(jaeger_udp_t *u, jaeger_scratch_t *scratch, jaeger_packet_t *pk)
{
    jaeger_state_t *st = u->st;
    jaeger_outcome_t out = {.settle_req = NULL};
    jaeger_emit(st, scratch, u->proto, true, JAEGER_UDP_EMIT_WAIT_MS, pk->data, pk->len, &out);
    if (out.rc == SY_OK) return;
    if (out.rc == SY_EAGAIN || out.rc == SY_ECLOSED) {
        st->api->metric_add(u->m_refused, 1);
        st->api->metric_add(u->m_spans_refused, (int64_t)out.spans);
        jaeger_ratelog(st, &u->log_refused,
                       "%s: dropped a packet of %zu spans: the pipeline %s (UDP cannot push back)",
                       u->name, out.spans, out.rc == SY_EAGAIN ? "is full" : "is shutting down");
        return;
    }
    st->api->metric_add(u->m_invalid, 1);
    SY_LOG(st->api, st->inst, SY_LOG_DEBUG, "%s: invalid packet of %zu bytes: %s", u->name, pk->len,
           out.err);
    jaeger_ratelog(st, &u->log_invalid, "%s: dropped a packet of %zu bytes: %s", u->name, pk->len,
                   out.err);
}

static void *worker_main(void *arg)
{
    jaeger_udp_t *u = arg;
    jaeger_scratch_t scratch;
    jaeger_scratch_init(&scratch);
    for (;;) {
        pthread_mutex_lock(&u->mu);
        while (!u->count && !u->stopping) {
            u->idle++;
            pthread_cond_wait(&u->cv, &u->mu);
            u->idle--;
        }
        if (!u->count) { /* stopping, and nothing left to drain */
            pthread_mutex_unlock(&u->mu);
            jaeger_scratch_free(&scratch);
            return NULL;
        }
        jaeger_packet_t *pk = u->ring[u->head];
        u->head = (u->head + 1) % u->cap;
        u->count--;
        size_t left = u->count;
        pthread_mutex_unlock(&u->mu);
        u->st->api->metric_set(u->m_queue_len, (int64_t)left);
        process(u, &scratch, pk);
        free(pk);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    jaeger_udp_t *u = h->data;
    buf->base = (char *)u->recv;
    buf->len = (size_t)u->cfg->max_packet_size;
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    (void)buf;
    jaeger_udp_t *u = h->data;
    const sy_host_api_t *api = u->st->api;
    if (nread < 0) {
        api->metric_add(u->m_read_errors, 1);
        jaeger_ratelog(u->st, &u->log_invalid, "%s: reading the socket failed: %s", u->name,
                       uv_strerror((int)nread));
        return;
    }
    if (nread == 0 && !addr) return; /* nothing more to read now */
    api->metric_add(u->m_received, 1);
    if (flags & UV_UDP_PARTIAL) {
        api->metric_add(u->m_invalid, 1);
        jaeger_ratelog(u->st, &u->log_invalid,
                       "%s: dropped a packet larger than max_packet_size (%lld bytes)", u->name,
                       (long long)u->cfg->max_packet_size);
        return;
    }
    jaeger_packet_t *pk = malloc(sizeof(*pk) + (size_t)nread);
    if (!pk) {
        api->metric_add(u->m_queue_full, 1);
        return;
    }
    pk->len = (size_t)nread;
    memcpy(pk->data, u->recv, (size_t)nread);
    pthread_mutex_lock(&u->mu);
    bool full = u->count == u->cap;
    size_t len = u->count;
    if (!full) {
        u->ring[(u->head + u->count) % u->cap] = pk;
        len = ++u->count;
        /* A busy worker takes the next packet itself before it sleeps again:
         * only an idle one needs waking. */
        if (u->idle) pthread_cond_signal(&u->cv);
    }
    pthread_mutex_unlock(&u->mu);
    if (full) {
        free(pk);
        api->metric_add(u->m_queue_full, 1);
        jaeger_ratelog(u->st, &u->log_queue_full,
                       "%s: dropped a packet: the queue of %zu packets is full (raise queue_size "
                       "or workers)",
                       u->name, u->cap);
        return;
    }
    api->metric_set(u->m_queue_len, (int64_t)len);
}

static void stop_workers(jaeger_udp_t *u)
{
    if (!u->sync_ready) return;
    pthread_mutex_lock(&u->mu);
    u->stopping = true;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
    for (int i = 0; i < u->nthreads; i++)
        pthread_join(u->threads[i], NULL);
    u->nthreads = 0;
}

int jaeger_udp_start(jaeger_state_t *st, int which)
{
    const jaeger_udp_config_t *cfg = &st->cfg->udp[which];
    uv_loop_t *loop = st->api->loop(st->inst);
    jaeger_udp_t *u = calloc(1, sizeof(*u));
    if (!u) return SY_ENOMEM;
    st->udp[which] = u;
    u->st = st;
    u->cfg = cfg;
    u->proto = which == JG_COMPACT ? TH_PROTO_COMPACT : TH_PROTO_BINARY;
    u->name = which == JG_COMPACT ? "thrift_compact" : "thrift_binary";
    u->cap = (size_t)cfg->queue_size;
    u->recv = malloc((size_t)cfg->max_packet_size);
    u->ring = calloc(u->cap, sizeof(*u->ring));
    u->threads = calloc((size_t)cfg->workers, sizeof(*u->threads));
    if (!u->recv || !u->ring || !u->threads) return SY_ENOMEM;
    register_metrics(u);

    char err[400], shown[128];
    struct sockaddr_storage addr;
    if (syc_endpoint_resolve(loop, cfg->endpoint, &addr, shown, sizeof(shown), err, sizeof(err)) !=
        0) {
        SY_LOG(st->api, st->inst, SY_LOG_ERROR, "protocols.%s.endpoint: %s", u->name, err);
        return SY_EINVAL;
    }
    int rc = uv_udp_init(loop, &u->handle);
    if (rc != 0) {
        SY_LOG(st->api, st->inst, SY_LOG_ERROR, "%s: %s", u->name, uv_strerror(rc));
        return SY_ERROR;
    }
    u->open = true;
    u->handle.data = u;
    rc = uv_udp_bind(&u->handle, (const struct sockaddr *)&addr, 0);
    if (rc != 0) {
        SY_LOG(st->api, st->inst, SY_LOG_ERROR, "listen udp %s: %s", shown, uv_strerror(rc));
        return SY_ERROR;
    }
    if (cfg->socket_buffer_size > 0) {
        int size = (int)cfg->socket_buffer_size;
        rc = uv_recv_buffer_size((uv_handle_t *)&u->handle, &size);
        if (rc != 0) {
            SY_LOG(st->api, st->inst, SY_LOG_ERROR, "%s: cannot set socket_buffer_size: %s",
                   u->name, uv_strerror(rc));
            return SY_ERROR;
        }
    }
    if (pthread_mutex_init(&u->mu, NULL) != 0) return SY_ERROR;
    if (pthread_cond_init(&u->cv, NULL) != 0) {
        pthread_mutex_destroy(&u->mu);
        return SY_ERROR;
    }
    u->sync_ready = true;
    for (int i = 0; i < (int)cfg->workers; i++) {
        if (pthread_create(&u->threads[i], NULL, worker_main, u) != 0) {
            SY_LOG(st->api, st->inst, SY_LOG_ERROR, "%s: cannot start worker threads", u->name);
            return SY_ERROR;
        }
        u->nthreads++;
    }
    rc = uv_udp_recv_start(&u->handle, on_alloc, on_recv);
    if (rc != 0) {
        SY_LOG(st->api, st->inst, SY_LOG_ERROR, "%s: %s", u->name, uv_strerror(rc));
        return SY_ERROR;
    }
    int rcvbuf = 0, port = 0;
    uv_recv_buffer_size((uv_handle_t *)&u->handle, &rcvbuf);
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    if (uv_udp_getsockname(&u->handle, (struct sockaddr *)&bound, &blen) == 0)
        port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                 : ((struct sockaddr_in *)&bound)->sin_port);
    SY_LOG(st->api, st->inst, SY_LOG_INFO,
           "Starting UDP server for %s Thrift on endpoint %s (port %d; %lld workers, queue %zu, "
           "SO_RCVBUF %d)",
           which == JG_COMPACT ? "Compact" : "Binary", shown, port, (long long)cfg->workers, u->cap,
           rcvbuf);
    return SY_OK;
}

void jaeger_udp_shutdown(jaeger_udp_t *u)
{
    if (u->open && !uv_is_closing((uv_handle_t *)&u->handle)) {
        uv_udp_recv_stop(&u->handle);
        uv_close((uv_handle_t *)&u->handle, NULL);
    }
    stop_workers(u);
}

void jaeger_udp_free(jaeger_udp_t *u)
{
    if (!u) return;
    stop_workers(u);
    if (u->sync_ready) {
        for (; u->count; u->count--) { /* only when no worker ran */
            free(u->ring[u->head]);
            u->head = (u->head + 1) % u->cap;
        }
        pthread_cond_destroy(&u->cv);
        pthread_mutex_destroy(&u->mu);
    }
    free(u->ring);
    free(u->threads);
    free(u->recv);
    free(u);
}
