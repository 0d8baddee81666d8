/*
 * loadgen - an OTLP load generator for Switchyard's benchmarks.
 *
 * It encodes a few ExportTraceServiceRequests once at start (loadgen_payload.c),
 * then sends them round-robin over N keep-alive connections of a transport
 * (loadgen_http.c for OTLP/HTTP, loadgen_grpc.c for OTLP/gRPC, both behind
 * loadgen_transport.h), either as fast as the server answers (closed loop: each
 * request slot sends its next request when the last one is answered) or at a
 * fixed total rate (open loop). A slot is a connection, or with gRPC one of the
 * --streams concurrent streams of a connection. In open loop a request's latency is counted from
 * the moment it was due, not from when a connection became free to carry it, so a slow server is
 * not hidden by the client waiting for it (coordinated omission).
 *
 * Usage: loadgen [options]   (loadgen --help lists them)
 *
 * With --sequence ID every request carries span IDs that name the client, the
 * request and the span (lg_payload_number), and --ack-log FILE records how each
 * request ended: a sink can then check, per client, that every acknowledged
 * request arrived exactly once.
 *
 * Output: a human-readable summary, or with --out json one JSON line with the
 * same figures, for scripts. Exit status 0 when every request got an answer
 * (of any status), 1 when some broke or nothing was answered, 2 on bad usage.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "loadgen_hist.h"
#include "loadgen_payload.h"
#include "loadgen_transport.h"

#define MAX_CONNECTIONS 10000
#define MAX_STREAMS     1000  /* concurrent streams per connection (gRPC) */
#define MAX_SLOTS       10000 /* connections x streams */
#define TICK_MS         1     /* how often the open-loop scheduler looks for due requests */
#define DRAIN_MS        10000 /* how long answers in flight are awaited at the end */
#define START_MS        5000  /* how long the first connection may take */

typedef struct options_s {
    const char *url; /* NULL until given: the protocol's default */
    const char *protocol;
    unsigned connections;
    unsigned streams; /* requests in flight per connection */
    unsigned slots;   /* connections x streams */
    double duration;  /* seconds; 0 with --requests alone */
    uint64_t requests;
    double rate; /* requests per second in all, 0 for as fast as possible */
    bool json;
    unsigned client;     /* --sequence: the client number in the span IDs, 1..65535 */
    const char *ack_log; /* --ack-log: one line per request, "<seq> <A|R|F|E> <status>" */
    lg_payload_opts_t payload;
} options_t;

typedef struct driver_s driver_t;

/* One request slot (a connection, or a stream of one) as the driver sees it. */
typedef struct slot_s {
    driver_t *d;
    lg_conn_t *conn;
    uint64_t start_ns; /* when the request in flight was due */
    unsigned spans;    /* spans of the request in flight */
    bool idle;         /* connected and nothing in flight */
    bool busy;         /* a request is in flight (its on_done is due) */
    uint32_t seq;      /* --sequence: the number of the request in flight */
    lg_payload_t own;  /* --sequence: the numbered copy in flight; own.body is the slot's */
} slot_t;

struct driver_s {
    const options_t *o;
    uv_loop_t loop;
    const lg_transport_t *tp;
    lg_client_t *client;
    lg_target_t target;
    lg_payload_set_t set;
    slot_t *slots;
    uv_timer_t tick, stop, drain;
    uv_signal_t sigint;
    bool started, stopping, finished;
    uint64_t t0, t_end;
    uint64_t sent, in_flight;
    uint64_t accepted, refused, failed, errors, conn_errors;
    uint64_t accepted_spans, bytes_sent;
    int last_failed_status;
    char first_error[200];
    lg_hist_t hist; /* latency of answered requests, in nanoseconds */
    FILE *ack_log;
};

static void finish(driver_t *d);

static void try_send(slot_t *s)
{
    driver_t *d = s->d;
    const options_t *o = d->o;
    if (!s->idle || d->stopping || !d->started) return;
    if (o->requests && d->sent >= o->requests) return;
    uint64_t now = uv_hrtime();
    uint64_t due_at = now;
    if (o->rate > 0) {
        /* Request k is due at t0 + k / rate. */
        due_at = d->t0 + (uint64_t)((double)d->sent * 1e9 / o->rate);
        if (due_at > now) return;
    }
    const lg_payload_t *p = &d->set.items[d->sent % d->set.count];
    if (o->client) {
        uint8_t *body = s->own.body;
        s->own = *p;
        s->own.body = body;
        s->seq = (uint32_t)d->sent;
        lg_payload_number(p, body, (uint16_t)o->client, s->seq);
        p = &s->own;
    }
    s->idle = false;
    s->start_ns = due_at;
    s->spans = p->spans;
    if (d->tp->send(s->conn, p) < 0) return; /* the transport reports and reconnects */
    s->busy = true;
    d->sent++;
    d->in_flight++;
    d->bytes_sent += p->len;
}

static void on_idle(void *user)
{
    slot_t *s = user;
    driver_t *d = s->d;
    s->idle = true;
    if (!d->started && !d->stopping) {
        /* The clock starts when the first connection is up. */
        d->started = true;
        d->t0 = uv_hrtime();
        uv_timer_stop(&d->drain); /* the start deadline */
    }
    try_send(s);
}

static void log_outcome(driver_t *d, const slot_t *s, lg_outcome_t outcome, int status)
{
    if (d->ack_log) fprintf(d->ack_log, "%" PRIu32 " %c %d\n", s->seq, "ARFE"[outcome], status);
}

static void on_done(void *user, lg_outcome_t outcome, int status)
{
    slot_t *s = user;
    driver_t *d = s->d;
    if (d->in_flight) d->in_flight--;
    s->busy = false;
    log_outcome(d, s, outcome, status);
    switch (outcome) {
    case LG_ACCEPTED:
        d->accepted++;
        d->accepted_spans += s->spans;
        break;
    case LG_REFUSED:
        d->refused++;
        break;
    case LG_FAILED:
        d->failed++;
        d->last_failed_status = status;
        break;
    case LG_ERROR:
        d->errors++;
        break;
    }
    if (outcome != LG_ERROR) lg_hist_record(&d->hist, uv_hrtime() - s->start_ns);
    if (d->in_flight == 0 && (d->stopping || (d->o->requests && d->sent >= d->o->requests)))
        finish(d);
}

static void on_conn_error(void *user, const char *message)
{
    slot_t *s = user;
    driver_t *d = s->d;
    d->conn_errors++;
    if (!d->first_error[0]) snprintf(d->first_error, sizeof(d->first_error), "%s", message);
}

static void on_tick(uv_timer_t *t)
{
    driver_t *d = t->data;
    for (unsigned i = 0; i < d->o->slots; i++)
        try_send(&d->slots[i]);
}

static void on_drain_timeout(uv_timer_t *t)
{
    driver_t *d = t->data;
    for (unsigned i = 0; i < d->o->slots; i++)
        if (d->slots[i].busy) log_outcome(d, &d->slots[i], LG_ERROR, 0);
    d->errors += d->in_flight; /* never answered */
    d->in_flight = 0;
    finish(d);
}

/* Stops sending; finishes once what is in flight is answered. */
static void begin_stop(driver_t *d)
{
    if (d->stopping) return;
    d->stopping = true;
    uv_timer_stop(&d->stop);
    uv_timer_stop(&d->tick);
    if (d->in_flight == 0) {
        finish(d);
        return;
    }
    uv_timer_start(&d->drain, on_drain_timeout, DRAIN_MS, 0);
}

static void on_stop_timer(uv_timer_t *t)
{
    begin_stop(t->data);
}

static void on_start_deadline(uv_timer_t *t)
{
    driver_t *d = t->data;
    if (!d->started) finish(d);
}

static void on_sigint(uv_signal_t *sig, int signum)
{
    (void)signum;
    begin_stop(sig->data);
}

static void finish(driver_t *d)
{
    if (d->finished) return;
    d->finished = true;
    d->stopping = true;
    d->t_end = uv_hrtime();
    if (!d->started) d->t0 = d->t_end;
    for (unsigned i = 0; i < d->o->slots; i++)
        if (d->slots[i].conn) d->tp->conn_close(d->slots[i].conn);
    uv_close((uv_handle_t *)&d->tick, NULL);
    uv_close((uv_handle_t *)&d->stop, NULL);
    uv_close((uv_handle_t *)&d->drain, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
}

/* ------------------------------------------------------------------------ */
/* Setup and report                                                          */
/* ------------------------------------------------------------------------ */

/* Splits http://host[:port][/path] and resolves host. Returns 0 or -1. */
static int parse_url(const char *url, lg_target_t *t, char *err, size_t err_len)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        snprintf(err, err_len, "the URL must start with http:// (got \"%.100s\")", url);
        return -1;
    }
    p += 7;
    const char *host_end;
    const char *host = p;
    if (*p == '[') {
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end) goto bad;
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    if ((size_t)(host_end - host) == 0 || (size_t)(host_end - host) >= sizeof(t->host)) goto bad;
    memcpy(t->host, host, (size_t)(host_end - host));
    t->host[host_end - host] = '\0';
    snprintf(t->port, sizeof(t->port), "80");
    if (*p == ':') {
        size_t n = strcspn(p + 1, "/");
        if (n == 0 || n >= sizeof(t->port)) goto bad;
        memcpy(t->port, p + 1, n);
        t->port[n] = '\0';
        p += 1 + n;
    }
    if (strlen(p) >= sizeof(t->path)) goto bad;
    snprintf(t->path, sizeof(t->path), "%s", *p ? p : "/");
    if (strpbrk(t->path, " \r\n")) goto bad;

    uv_loop_t loop;
    uv_getaddrinfo_t gai;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    if (uv_loop_init(&loop) < 0) goto bad;
    int rc = uv_getaddrinfo(&loop, &gai, NULL, t->host, t->port, &hints); /* synchronous */
    if (rc < 0) {
        snprintf(err, err_len, "cannot resolve %s:%s: %s", t->host, t->port, uv_strerror(rc));
        uv_loop_close(&loop);
        return -1;
    }
    memcpy(&t->addr, gai.addrinfo->ai_addr, gai.addrinfo->ai_addrlen);
    uv_freeaddrinfo(gai.addrinfo);
    uv_loop_close(&loop);
    return 0;
bad:
    snprintf(err, err_len, "cannot read the URL \"%.200s\"", url);
    return -1;
}

static double us(uint64_t ns)
{
    return (double)ns / 1e3;
}

static void report(const driver_t *d)
{
    const options_t *o = d->o;
    double secs = (double)(d->t_end - d->t0) / 1e9;
    if (secs <= 0) secs = 1e-9;
    uint64_t answered = d->accepted + d->refused + d->failed;
    size_t raw = 0, body = 0;
    for (unsigned i = 0; i < d->set.count; i++) {
        raw += d->set.items[i].raw_len;
        body += d->set.items[i].len;
    }
    double raw_avg = (double)raw / d->set.count, body_avg = (double)body / d->set.count;
    double bytes_per_span = raw_avg / o->payload.spans;
    const lg_hist_t *h = &d->hist;
    if (o->json) {
        printf(
            "{\"protocol\":\"%s\",\"url\":\"%s\",\"connections\":%u,\"streams\":%u,"
            "\"rate\":%.0f,"
            "\"spans_per_request\":%u,\"attrs\":%u,\"request_bytes\":%.0f,\"body_bytes\":%.0f,"
            "\"bytes_per_span\":%.1f,\"gzip\":%s,\"seconds\":%.3f,\"requests\":%" PRIu64
            ",\"accepted\":%" PRIu64 ",\"refused\":%" PRIu64 ",\"failed\":%" PRIu64
            ",\"errors\":%" PRIu64 ",\"conn_errors\":%" PRIu64 ",\"accepted_spans\":%" PRIu64
            ",\"requests_per_s\":%.1f,\"spans_per_s\":%.0f,\"mbytes_per_s\":%.1f,"
            "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f}\n",
            d->tp->name, o->url, o->connections, o->streams, o->rate, o->payload.spans,
            o->payload.attrs, raw_avg, body_avg, bytes_per_span, o->payload.gzip ? "true" : "false",
            secs, answered + d->errors, d->accepted, d->refused, d->failed, d->errors,
            d->conn_errors, d->accepted_spans, (double)answered / secs,
            (double)d->accepted_spans / secs, (double)d->bytes_sent / secs / 1e6,
            us(lg_hist_quantile(h, 0.5)), us(lg_hist_quantile(h, 0.9)),
            us(lg_hist_quantile(h, 0.99)), us(lg_hist_quantile(h, 0.999)), us(h->max));
    } else {
        printf("loadgen: %s %s, %u connection%s x %u stream%s, %s\n", d->tp->name, o->url,
               o->connections, o->connections == 1 ? "" : "s", o->streams,
               o->streams == 1 ? "" : "s", o->rate > 0 ? "open loop" : "closed loop");
        printf("  payload: %u spans x %u attributes per request, %.0f bytes (%.1f B/span)%s",
               o->payload.spans, o->payload.attrs, raw_avg, bytes_per_span,
               o->payload.gzip || o->payload.zstd ? "" : "\n");
        if (o->payload.gzip || o->payload.zstd)
            printf(", %s %.0f bytes\n", o->payload.zstd ? "zstd" : "gzip", body_avg);
        printf("  %.2f s: %" PRIu64 " requests answered (%.1f/s), %.2f M spans/s accepted, "
               "%.1f MB/s sent\n",
               secs, answered, (double)answered / secs, (double)d->accepted_spans / secs / 1e6,
               (double)d->bytes_sent / secs / 1e6);
        printf("  accepted %" PRIu64 ", refused (%s) %" PRIu64 ", other status %" PRIu64,
               d->accepted,
               strcmp(d->tp->name, "grpc") == 0 ? "RESOURCE_EXHAUSTED/UNAVAILABLE" : "429/503",
               d->refused, d->failed);
        if (d->failed) printf(" (last %d)", d->last_failed_status);
        printf(", errors %" PRIu64 ", connection errors %" PRIu64 "\n", d->errors, d->conn_errors);
        if (d->first_error[0]) printf("  first connection error: %s\n", d->first_error);
        printf("  latency ms: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
               (double)lg_hist_quantile(h, 0.5) / 1e6, (double)lg_hist_quantile(h, 0.9) / 1e6,
               (double)lg_hist_quantile(h, 0.99) / 1e6, (double)lg_hist_quantile(h, 0.999) / 1e6,
               (double)h->max / 1e6);
    }
    fflush(stdout);
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: loadgen [options]\n"
            "  --url URL              where to send (default http://127.0.0.1:4318/v1/traces,\n"
            "                         with grpc http://127.0.0.1:4317, the path naming the\n"
            "                         method: TraceService/Export when none)\n"
            "  --target HOST:PORT     the same as --url http://HOST:PORT\n"
            "  --protocol P           transport: http (OTLP/HTTP, default) or grpc (OTLP/gRPC,\n"
            "                         HTTP/2 cleartext)\n"
            "  --connections N        keep-alive connections (default 1)\n"
            "  --streams N            requests in flight per connection (default 1; grpc only)\n"
            "  --duration S           seconds to send for (default 10, unless --requests)\n"
            "  --requests N           stop after N requests\n"
            "  --rate R               requests per second in all (default: as fast as answered)\n"
            "  --spans-per-request N  spans in each request (default 512)\n"
            "  --attrs N              attributes on each span (default 10)\n"
            "  --distinct N           different requests to cycle through (default 4)\n"
            "  --gzip                 send the bodies gzip-compressed\n"
            "  --zstd                 send the bodies zstd-compressed (level 3)\n"
            "  --header 'Name: value' one more header on every HTTP request (auth benchmarks)\n"
            "  --seed N               seed for IDs and values (default 1)\n"
            "  --sequence ID          number the spans: span ID = ID (16 bits), request number\n"
            "                         (32 bits), span index (16 bits); ID 1..65535; no\n"
            "                         compression\n"
            "  --ack-log FILE         with --sequence: one line per request, \"<number> <A|R|F|E>\n"
            "                         <status>\" (accepted, refused 429/503, failed, no answer)\n"
            "  --unique-traces        with --sequence: trace IDs start with the ID and the\n"
            "                         request number too, so no trace ID is ever sent twice\n"
            "  --out text|json        the summary's form (default text)\n");
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || *s == '-' || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_options(int argc, char **argv, options_t *o)
{
    static const struct option longs[] = {
        {"url", required_argument, NULL, 'u'},
        {"protocol", required_argument, NULL, 'P'},
        {"target", required_argument, NULL, 'T'},
        {"connections", required_argument, NULL, 'c'},
        {"streams", required_argument, NULL, 'm'},
        {"duration", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'n'},
        {"rate", required_argument, NULL, 'r'},
        {"spans-per-request", required_argument, NULL, 's'},
        {"attrs", required_argument, NULL, 'a'},
        {"distinct", required_argument, NULL, 'D'},
        {"gzip", no_argument, NULL, 'z'},
        {"zstd", no_argument, NULL, 'Z'},
        {"header", required_argument, NULL, 'H'},
        {"seed", required_argument, NULL, 'S'},
        {"out", required_argument, NULL, 'o'},
        {"sequence", required_argument, NULL, 'q'},
        {"ack-log", required_argument, NULL, 'L'},
        {"unique-traces", no_argument, NULL, 'U'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (options_t){
        .protocol = "http",
        .connections = 1,
        .streams = 1,
        .payload = {.spans = 512, .attrs = 10, .distinct = 4, .seed = 1},
    };
    bool duration_set = false;
    int c;
    uint64_t v;
    char *end;
    static char target_url[300]; /* --target as a URL; lives as long as the options */
    while ((c = getopt_long(argc, argv, "u:c:d:n:r:s:a:zo:h", longs, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->url = optarg;
            break;
        case 'T':
            if (strlen(optarg) + 8 > sizeof(target_url) || strchr(optarg, '/')) goto bad;
            snprintf(target_url, sizeof(target_url), "http://%s", optarg);
            o->url = target_url;
            break;
        case 'P':
            o->protocol = optarg;
            break;
        case 'm':
            if (parse_uint(optarg, MAX_STREAMS, &v) < 0 || v == 0) goto bad;
            o->streams = (unsigned)v;
            break;
        case 'c':
            if (parse_uint(optarg, MAX_CONNECTIONS, &v) < 0 || v == 0) goto bad;
            o->connections = (unsigned)v;
            break;
        case 'd':
            o->duration = strtod(optarg, &end);
            if (*end || !(o->duration > 0 && o->duration < 1e6)) goto bad;
            duration_set = true;
            break;
        case 'n':
            if (parse_uint(optarg, UINT64_MAX / 2, &o->requests) < 0) goto bad;
            break;
        case 'r':
            o->rate = strtod(optarg, &end);
            if (*end || !(o->rate >= 0 && o->rate < 1e9)) goto bad;
            break;
        case 's':
            if (parse_uint(optarg, LG_MAX_SPANS, &v) < 0 || v == 0) goto bad;
            o->payload.spans = (unsigned)v;
            break;
        case 'a':
            if (parse_uint(optarg, LG_MAX_ATTRS, &v) < 0) goto bad;
            o->payload.attrs = (unsigned)v;
            break;
        case 'D':
            if (parse_uint(optarg, LG_MAX_DISTINCT, &v) < 0 || v == 0) goto bad;
            o->payload.distinct = (unsigned)v;
            break;
        case 'z':
            o->payload.gzip = true;
            break;
        case 'Z':
            o->payload.zstd = true;
            break;
        case 'H':
            if (strpbrk(optarg, "\r\n") || !strchr(optarg, ':')) goto bad;
            o->payload.header = optarg;
            break;
        case 'S':
            if (parse_uint(optarg, UINT64_MAX, &o->payload.seed) < 0) goto bad;
            break;
        case 'q':
            if (parse_uint(optarg, 65535, &v) < 0 || v == 0) goto bad;
            o->client = (unsigned)v;
            o->payload.sequence = true;
            break;
        case 'L':
            o->ack_log = optarg;
            break;
        case 'U':
            o->payload.unique_traces = true;
            break;
        case 'o':
            if (strcmp(optarg, "json") == 0)
                o->json = true;
            else if (strcmp(optarg, "text") != 0)
                goto bad;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "loadgen: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (!duration_set && !o->requests) o->duration = 10;
    if (!o->url)
        o->url = strcmp(o->protocol, "grpc") == 0 ? "http://127.0.0.1:4317"
                                                  : "http://127.0.0.1:4318/v1/traces";
    if ((uint64_t)o->connections * o->streams > MAX_SLOTS) {
        fprintf(stderr, "loadgen: --connections x --streams may be at most %u\n", MAX_SLOTS);
        return -1;
    }
    o->slots = o->connections * o->streams;
    if (o->client && (o->payload.gzip || o->payload.zstd || o->payload.spans > 65536)) {
        fprintf(stderr, "loadgen: --sequence needs uncompressed requests of at most 65536 spans\n");
        return -1;
    }
    if (o->payload.unique_traces && !o->client) {
        fprintf(stderr, "loadgen: --unique-traces needs --sequence\n");
        return -1;
    }
    if (o->ack_log && !o->client) {
        fprintf(stderr, "loadgen: --ack-log needs --sequence\n");
        return -1;
    }
    if (o->client && o->requests > UINT32_MAX) {
        fprintf(stderr, "loadgen: --sequence numbers at most 2^32 requests\n");
        return -1;
    }
    return 0;
bad:
    fprintf(stderr, "loadgen: bad value \"%s\" for option -%c (see --help)\n", optarg, c);
    return -1;
}

static const lg_transport_t *find_transport(const char *name)
{
    if (strcmp(name, "http") == 0) return &lg_http_transport;
    if (strcmp(name, "grpc") == 0) return &lg_grpc_transport;
    return NULL;
}

int main(int argc, char **argv)
{
    static driver_t d; /* large (the histogram): not on the stack */
    options_t o;
    char err[512];
    int rc = 1;
    bool loop_ready = false;

    signal(SIGPIPE, SIG_IGN);
    if (parse_options(argc, argv, &o) < 0) return 2;
    d.o = &o;
    if (!(d.tp = find_transport(o.protocol))) {
        fprintf(stderr, "loadgen: unknown protocol \"%s\" (this build knows: http, grpc)\n",
                o.protocol);
        return 2;
    }
    if (o.streams > 1 && !d.tp->conn_share) {
        fprintf(stderr, "loadgen: --streams needs a protocol that multiplexes (grpc)\n");
        return 2;
    }
    if (parse_url(o.url, &d.target, err, sizeof(err)) < 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }
    if (lg_payload_build(&o.payload, &d.set, err, sizeof(err)) < 0) {
        fprintf(stderr, "loadgen: %s\n", err);
        return 2;
    }
    if (uv_loop_init(&d.loop) < 0) goto fail;
    loop_ready = true;
    static const lg_events_t events = {on_idle, on_done, on_conn_error};
    if (!(d.client = d.tp->client_new(&d.loop, &d.target, &d.set, &events, err, sizeof(err)))) {
        fprintf(stderr, "loadgen: %s\n", err);
        goto fail;
    }
    if (!(d.slots = calloc(o.slots, sizeof(*d.slots)))) goto fail;
    if (o.client) {
        size_t most = 0;
        for (unsigned i = 0; i < d.set.count; i++)
            if (d.set.items[i].len > most) most = d.set.items[i].len;
        for (unsigned i = 0; i < o.slots; i++)
            if (!(d.slots[i].own.body = malloc(most))) goto fail;
    }
    if (o.ack_log && !(d.ack_log = fopen(o.ack_log, "w"))) {
        fprintf(stderr, "loadgen: cannot write %s\n", o.ack_log);
        goto fail;
    }
    uv_timer_init(&d.loop, &d.tick);
    uv_timer_init(&d.loop, &d.stop);
    uv_timer_init(&d.loop, &d.drain);
    uv_signal_init(&d.loop, &d.sigint);
    d.tick.data = d.stop.data = d.drain.data = d.sigint.data = &d;
    uv_signal_start_oneshot(&d.sigint, on_sigint, SIGINT);
    /* Slots i * streams .. i * streams + streams - 1 share connection i. */
    for (unsigned i = 0; i < o.slots; i++) {
        slot_t *s = &d.slots[i];
        s->d = &d;
        if (i % o.streams == 0)
            s->conn = d.tp->conn_open(d.client, s, err, sizeof(err));
        else
            s->conn = d.tp->conn_share(d.slots[i - i % o.streams].conn, s, err, sizeof(err));
        if (!s->conn) {
            fprintf(stderr, "loadgen: %s\n", err);
            finish(&d);
            break;
        }
    }
    /* The duration counts from here; connecting to a local server takes well under
     * a millisecond. Nobody answering within START_MS ends the run. */
    if (o.duration > 0) uv_timer_start(&d.stop, on_stop_timer, (uint64_t)(o.duration * 1e3), 0);
    uv_timer_start(&d.drain, on_start_deadline, START_MS, 0);
    if (o.rate > 0) uv_timer_start(&d.tick, on_tick, TICK_MS, TICK_MS);
    uv_run(&d.loop, UV_RUN_DEFAULT);
    report(&d);
    rc = (d.errors == 0 && d.accepted + d.refused + d.failed > 0) ? 0 : 1;
fail:
    if (loop_ready) {
        if (!d.finished) {
            finish(&d);
            uv_run(&d.loop, UV_RUN_DEFAULT);
        }
        uv_loop_close(&d.loop);
    }
    if (d.client) d.tp->client_free(d.client);
    if (d.ack_log && fclose(d.ack_log) != 0) {
        fprintf(stderr, "loadgen: writing %s failed\n", o.ack_log);
        rc = 1;
    }
    for (unsigned i = 0; d.slots && o.client && i < o.slots; i++)
        free(d.slots[i].own.body);
    free(d.slots);
    lg_payload_free(&d.set);
    return rc;
}
