/*
 * udpline - an example receiver: a UDP line protocol into logs.
 *
 * Every datagram holds one or more lines ("\n"-separated); every non-empty line
 * becomes one log record. A line may start with a severity word (TRACE, DEBUG,
 * INFO, WARN, ERROR, FATAL) and a space: it sets severity_text and
 * severity_number, and the rest is the body. One datagram is one batch, encoded
 * here by hand as an OTLP ExportLogsServiceRequest (no protobuf-c needed). OTLP
 * strings are UTF-8: a line that is not is kept whole as a bytes body.
 *
 * UDP has no way to push back: a batch the pipeline refuses is dropped, counted
 * in receiver_udpline_dropped_lines and logged (at most once a second).
 *
 * Threads: everything runs on the instance's loop thread (api->loop()).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* uv.h and clock_gettime() under -std=c11 */
#endif
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include <switchyard/plugin.h>

typedef struct udpline_config_s {
    char *endpoint;
    uint64_t max_datagram;
} udpline_config_t;

static const sy_config_field_t udpline_fields[] = {
    {SY_CFG_FIELD("endpoint", SY_CFG_STRING, udpline_config_t, endpoint),
     .default_value = "127.0.0.1:54540", .pattern = "[^:]+:[0-9]{1,5}",
     .description = "host:port to listen on (port 0: any free port, logged at start)."},
    {SY_CFG_FIELD("max_datagram", SY_CFG_SIZE, udpline_config_t, max_datagram),
     .default_value = "64KiB", .min = "16", .max = "64KiB",
     .description = "The largest datagram read; a longer one is cut there."},
};

typedef struct udpline_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const udpline_config_t *cfg;
    uv_udp_t udp;
    bool open;
    char *buf;
    uint64_t last_drop_log_ms;
    sy_metric_t *m_lines, *m_dropped;
} udpline_t;

/* ---- a minimal protobuf writer -------------------------------------------- */

static size_t varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* A length-delimited field: tag, length, then the caller writes len bytes. */
static uint8_t *put_len(uint8_t *p, unsigned field, size_t len)
{
    p = put_varint(p, (uint64_t)field << 3 | 2);
    return put_varint(p, len);
}

static size_t len_field(unsigned field, size_t len)
{
    return varint_len((uint64_t)field << 3 | 2) + varint_len(len) + len;
}

static const char *const severities[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"};

/* One parsed line: its severity (0: none) and its body. */
typedef struct line_s {
    const char *text;
    size_t len;
    int sev;   /* index + 1 into severities */
    bool utf8; /* the body is UTF-8: a string_value (1), else a bytes_value (7) */
} line_t;

/* Whether s[0..len) is UTF-8 as protobuf requires of a string: no overlong
 * forms, no surrogates, nothing above U+10FFFF. */
static bool is_utf8(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n = c < 0x80             ? 0
                   : (c & 0xe0) == 0xc0 ? 1
                   : (c & 0xf0) == 0xe0 ? 2
                   : (c & 0xf8) == 0xf0 ? 3
                                        : 4;
        if (n == 4 || i + n >= len) return false; /* a bad lead byte, or cut short */
        uint32_t cp = n == 0 ? c : n == 1 ? c & 0x1f : n == 2 ? c & 0x0f : c & 0x07;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t least[4] = {0, 0x80, 0x800, 0x10000};
        if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n + 1;
    }
    return true;
}

static line_t parse_line(const char *s, size_t len)
{
    line_t l = {.text = s, .len = len};
    for (int i = 0; i < 6; i++) {
        size_t w = strlen(severities[i]);
        if (len > w && memcmp(s, severities[i], w) == 0 && s[w] == ' ') {
            l.sev = i + 1;
            l.text = s + w + 1;
            l.len = len - w - 1;
        }
    }
    l.utf8 = is_utf8((const unsigned char *)l.text, l.len);
    return l;
}

/* The LogRecord's bytes without its own tag: time (1, fixed64), severity_number
 * (2), severity_text (3), body (5: AnyValue string_value 1 or bytes_value 7),
 * observed time (11). */
static size_t record_len(const line_t *l)
{
    size_t n = 2 * (1 + 8) + len_field(5, len_field(l->utf8 ? 1 : 7, l->len));
    if (l->sev)
        n += 1 + varint_len((uint64_t)(l->sev - 1) * 4 + 1) +
             len_field(3, strlen(severities[l->sev - 1]));
    return n;
}

static uint8_t *put_fixed64(uint8_t *p, unsigned field, uint64_t v)
{
    p = put_varint(p, (uint64_t)field << 3 | 1);
    for (int i = 0; i < 8; i++)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

static uint8_t *put_record(uint8_t *p, const line_t *l, uint64_t now)
{
    p = put_fixed64(p, 1, now);
    if (l->sev) {
        /* SeverityNumber: TRACE 1, DEBUG 5, INFO 9, WARN 13, ERROR 17, FATAL 21. */
        p = put_varint(p, 2 << 3);
        p = put_varint(p, (uint64_t)(l->sev - 1) * 4 + 1);
        const char *t = severities[l->sev - 1];
        p = put_len(p, 3, strlen(t));
        memcpy(p, t, strlen(t));
        p += strlen(t);
    }
    p = put_len(p, 5, len_field(l->utf8 ? 1 : 7, l->len));
    p = put_len(p, l->utf8 ? 1 : 7, l->len);
    memcpy(p, l->text, l->len);
    p += l->len;
    return put_fixed64(p, 11, now);
}

/* Encodes the lines of one datagram as ExportLogsServiceRequest { resource_logs
 * (1) { scope_logs (2) { log_records (2) ... } } } into the batch's arena. */
static int encode(udpline_t *u, sy_batch_t *b, const line_t *lines, size_t n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    size_t scope = 0;
    for (size_t i = 0; i < n; i++)
        scope += len_field(2, record_len(&lines[i]));
    size_t resource = len_field(2, scope);
    size_t total = len_field(1, resource);
    uint8_t *buf = u->api->batch_alloc(b, total);
    if (!buf) return SY_ENOMEM;
    uint8_t *p = put_len(buf, 1, resource);
    p = put_len(p, 2, scope);
    for (size_t i = 0; i < n; i++) {
        p = put_len(p, 2, record_len(&lines[i]));
        p = put_record(p, &lines[i], now);
    }
    char err[256];
    return u->api->batch_set_encoded(b, buf, (size_t)(p - buf), err, sizeof(err));
}

/* ---- the socket ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    udpline_t *u = h->data;
    *buf = uv_buf_init(u->buf, (unsigned)u->cfg->max_datagram);
}

static void dropped(udpline_t *u, size_t n, int rc)
{
    u->api->metric_add(u->m_dropped, (int64_t)n);
    uint64_t now = uv_now(u->api->loop(u->inst));
    if (u->last_drop_log_ms && now - u->last_drop_log_ms < 1000) return;
    u->last_drop_log_ms = now ? now : 1;
    SY_LOG(u->api, u->inst, SY_LOG_WARN,
           "dropped %zu lines: the pipeline refused them (error %d); UDP cannot push back", n, rc);
}

static void on_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
                    unsigned flags)
{
    (void)addr;
    (void)flags;
    udpline_t *u = h->data;
    if (nread <= 0) return;
    line_t lines[256];
    size_t n = 0;
    const char *s = buf->base, *end = buf->base + nread;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        size_t len = (size_t)(e - s);
        if (len && s[len - 1] == '\r') len--;
        if (len) {
            if (n == sizeof(lines) / sizeof(lines[0])) break;
            lines[n++] = parse_line(s, len);
        }
        s = e + 1;
    }
    if (!n) return;
    sy_batch_t *b = u->api->batch_new(u->inst, SY_SIGNAL_LOGS);
    int rc = b ? encode(u, b, lines, n) : SY_ENOMEM;
    if (rc == SY_OK) rc = u->api->emit(u->inst, b);
    if (rc != SY_OK) {
        if (b) u->api->batch_release(b);
        dropped(u, n, rc);
        return;
    }
    u->api->metric_add(u->m_lines, (int64_t)n);
}

/* ---- the callbacks ------------------------------------------------------------ */

static int udpline_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                          void **state)
{
    udpline_t *u = calloc(1, sizeof(*u));
    if (!u) return SY_ENOMEM;
    u->api = api;
    u->inst = inst;
    u->cfg = config;
    u->buf = malloc(u->cfg->max_datagram);
    if (!u->buf) {
        free(u);
        return SY_ENOMEM;
    }
    u->m_lines =
        api->metric_register(inst, "receiver_udpline_lines",
                             "Lines received and handed to the pipeline.", SY_METRIC_COUNTER);
    u->m_dropped =
        api->metric_register(inst, "receiver_udpline_dropped_lines",
                             "Lines dropped because the pipeline refused them.", SY_METRIC_COUNTER);
    *state = u;
    return SY_OK;
}

static int udpline_start(void *state)
{
    udpline_t *u = state;
    char host[256];
    const char *colon = strrchr(u->cfg->endpoint, ':');
    size_t hl = (size_t)(colon - u->cfg->endpoint);
    if (hl >= sizeof(host)) return SY_EINVAL;
    memcpy(host, u->cfg->endpoint, hl);
    host[hl] = 0;
    struct sockaddr_in addr;
    int rc = uv_ip4_addr(host, atoi(colon + 1), &addr);
    if (rc == 0) rc = uv_udp_init(u->api->loop(u->inst), &u->udp);
    if (rc != 0) {
        SY_LOG(u->api, u->inst, SY_LOG_ERROR, "endpoint %s: %s", u->cfg->endpoint, uv_strerror(rc));
        return SY_ERROR;
    }
    u->udp.data = u;
    u->open = true;
    rc = uv_udp_bind(&u->udp, (const struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_udp_recv_start(&u->udp, on_alloc, on_recv);
    if (rc != 0) {
        SY_LOG(u->api, u->inst, SY_LOG_ERROR, "cannot listen on %s: %s", u->cfg->endpoint,
               uv_strerror(rc));
        uv_close((uv_handle_t *)&u->udp, NULL); /* the host runs the loop until closed */
        u->open = false;
        return SY_ERROR;
    }
    struct sockaddr_in bound;
    int len = sizeof(bound);
    uv_udp_getsockname(&u->udp, (struct sockaddr *)&bound, &len);
    SY_LOG(u->api, u->inst, SY_LOG_INFO, "listening on %s:%d", host, ntohs(bound.sin_port));
    return SY_OK;
}

static void udpline_shutdown(void *state)
{
    udpline_t *u = state;
    if (u->open) uv_close((uv_handle_t *)&u->udp, NULL);
    u->open = false;
}

static void udpline_destroy(void *state)
{
    udpline_t *u = state;
    free(u->buf);
    free(u);
}

static const sy_plugin_t udpline_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_RECEIVER,
    .type = "udpline",
    .signals = SY_SIGNAL_LOGS,
    .version = "0.1.0",
    .description = "Example: one log record per line of UDP datagrams.",
    SY_CFG_TABLE(udpline_fields),
    .config_size = sizeof(udpline_config_t),
    .create = udpline_create,
    .start = udpline_start,
    .shutdown = udpline_shutdown,
    .destroy = udpline_destroy,
};

SY_PLUGIN_DEFINE(udpline_plugin)
