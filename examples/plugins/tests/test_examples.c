/*
 * The example plugins' unit tests, on the plugin test harness
 * (switchyard/plugintest.h): each plugin's real .so, its YAML, what it emits or
 * writes, its own metrics and log lines, and its timers on the fake clock. No
 * router runs. Plain C: exits 0 when every check holds, else 1.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sockets and uv.h under -std=c11 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <switchyard/plugintest.h>

static int failures;

#define CHECK(cond, ...)                                         \
    do {                                                         \
        if (!(cond)) {                                           \
            failures++;                                          \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)

static sy_pt_t *open_ok(const char *file, const char *yaml)
{
    char err[1024] = "", path[4096];
    snprintf(path, sizeof(path), "%s/%s", PLUGIN_DIR, file);
    sy_pt_t *h = sy_pt_open(path, NULL, yaml, err, sizeof(err));
    if (!h || sy_pt_start(h) != SY_OK) {
        fprintf(stderr, "FAIL: %s does not open or start: %s\n", file, err);
        exit(1);
    }
    return h;
}

static int64_t metric(sy_pt_t *h, const char *name)
{
    int64_t v = -1;
    CHECK(sy_pt_metric(h, name, &v) == SY_OK, "no metric %s", name);
    return v;
}

/* ---- the receiver: UDP lines in, log records out ------------------------------ */

static bool has_emitted(void *arg)
{
    return sy_pt_emitted_count(arg) > 0;
}

static bool has_two(void *arg)
{
    return sy_pt_emitted_count(arg) > 1;
}

static bool has_warned(void *arg)
{
    return sy_pt_log_count(arg, SY_LOG_WARN, "dropped") > 0;
}

static void test_udpline(void)
{
    sy_pt_t *h = open_ok("receiver_udpline.so", "endpoint: 127.0.0.1:0\n");
    /* The port it took is in its start-up line. */
    int port = 0;
    for (size_t i = 0; sy_pt_log_line(h, i, NULL); i++) {
        const char *at = strstr(sy_pt_log_line(h, i, NULL), "listening on 127.0.0.1:");
        if (at) port = atoi(at + strlen("listening on 127.0.0.1:"));
    }
    CHECK(port > 0, "no port in the log");
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    const char *dgram = "INFO hello world\nplain line\r\n\nWARN disk 91%\n";
    sendto(fd, dgram, strlen(dgram), 0, (struct sockaddr *)&to, sizeof(to));
    CHECK(sy_pt_run(h, 5000, has_emitted, h) == 1, "nothing emitted for a datagram");
    CHECK(sy_pt_emitted_items(h) == 3, "3 lines: 3 records (%llu)",
          (unsigned long long)sy_pt_emitted_items(h));
    char *json = sy_pt_emitted_json(h, 0);
    CHECK(json && strstr(json, "\"severityNumber\":9,\"severityText\":\"INFO\",\"body\":{"
                               "\"stringValue\":\"hello world\"}"),
          "the INFO record: %s", json ? json : "(none)");
    CHECK(json && strstr(json, "\"body\":{\"stringValue\":\"plain line\"}"), "plain: %s",
          json ? json : "(none)");
    CHECK(json && strstr(json, "\"severityNumber\":13,\"severityText\":\"WARN\",\"body\":{"
                               "\"stringValue\":\"disk 91%\"}"),
          "the WARN record: %s", json ? json : "(none)");
    free(json);
    CHECK(metric(h, "receiver_udpline_lines") == 3, "lines metric");
    /* A line that is not UTF-8 is kept whole, as a bytes body (OTLP strings are UTF-8). */
    sendto(fd, "ERROR bad \xff byte\n", 17, 0, (struct sockaddr *)&to, sizeof(to));
    CHECK(sy_pt_run(h, 5000, has_two, h) == 1, "nothing emitted for a datagram with bad UTF-8");
    json = sy_pt_emitted_json(h, 1);
    CHECK(json &&
              strstr(json,
                     "\"severityText\":\"ERROR\",\"body\":{\"bytesValue\":\"YmFkIP8gYnl0ZQ==\"}"),
          "the bytes body: %s", json ? json : "(none)");
    free(json);
    /* The pipeline refuses: UDP cannot push back, so the lines are counted and logged. */
    sy_pt_set_emit_result(h, SY_EAGAIN);
    sendto(fd, "a\nb\n", 4, 0, (struct sockaddr *)&to, sizeof(to));
    CHECK(sy_pt_run(h, 5000, has_warned, h) == 1, "no warning for dropped lines");
    CHECK(metric(h, "receiver_udpline_dropped_lines") == 2, "dropped metric");
    CHECK(sy_pt_emitted_count(h) == 2, "nothing more emitted");
    close(fd);
    CHECK(sy_pt_shutdown(h) == 0, "the socket is closed at shutdown");
    sy_pt_close(h);
}

/* ---- the processor: through the view -------------------------------------------- */

#define LOGS3                                                                             \
    "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":["                                \
    "{\"severityNumber\":5,\"severityText\":\"DEBUG\",\"body\":{\"stringValue\":\"d\"}}," \
    "{\"severityNumber\":9,\"severityText\":\"INFO\",\"body\":{\"stringValue\":\"i\"}},"  \
    "{\"severityNumber\":13,\"severityText\":\"WARN\",\"body\":{\"stringValue\":\"w\"},"  \
    "\"attributes\":[{\"key\":\"env\",\"value\":{\"stringValue\":\"old\"}}]}]}]}]}"

static void test_stamp(void)
{
    sy_pt_t *h = open_ok("processor_stamp.so", "key: env\nvalue: prod\nmin_severity: 9\n");
    CHECK(sy_pt_consume_json(h, SY_SIGNAL_LOGS, LOGS3) == SY_OK, "consume");
    CHECK(sy_pt_emitted_items(h) == 2, "DEBUG dropped, 2 kept (%llu)",
          (unsigned long long)sy_pt_emitted_items(h));
    char *json = sy_pt_emitted_json(h, 0);
    const char *want =
        "\"logRecords\":[{\"severityNumber\":9,\"severityText\":\"INFO\",\"body\":{"
        "\"stringValue\":\"i\"},\"attributes\":[{\"key\":\"env\",\"value\":{\"stringValue\":"
        "\"prod\"}}]},{\"severityNumber\":13,\"severityText\":\"WARN\",\"body\":{"
        "\"stringValue\":\"w\"},\"attributes\":[{\"key\":\"env\",\"value\":{\"stringValue\":"
        "\"prod\"}}]}]";
    CHECK(json && strstr(json, want), "stamped: %s", json ? json : "(none)");
    free(json);
    CHECK(metric(h, "processor_stamp_dropped_log_records") == 1, "dropped metric");
    /* Everything below the minimum: nothing is passed on. */
    sy_pt_emitted_clear(h);
    CHECK(sy_pt_consume_json(h, SY_SIGNAL_LOGS,
                             "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{"
                             "\"severityNumber\":1}]}]}]}") == SY_OK,
          "consume");
    CHECK(sy_pt_emitted_count(h) == 0, "an emptied batch is not emitted");
    CHECK(metric(h, "processor_stamp_dropped_log_records") == 2, "dropped metric");
    sy_pt_close(h);

    char err[1024];
    CHECK(!sy_pt_open(PLUGIN_DIR "/processor_stamp.so", NULL, "key: env\n", err, sizeof(err)) &&
              strstr(err, "missing required key 'value'"),
          "value is required: %s", err);
    CHECK(!sy_pt_open(PLUGIN_DIR "/processor_stamp.so", NULL, "value: x\nmin_severity: 30\n", err,
                      sizeof(err)) &&
              strstr(err, "plugintest.yaml:2:15") && strstr(err, "at most 24"),
          "min_severity bounded: %s", err);
}

/* ---- the exporter: lines on a Unix socket, reconnecting on the fake clock -------- */

typedef struct peer_s {
    int listen_fd, fd;
    char got[4096];
    size_t len;
    size_t want_lines;
} peer_t;

static bool peer_poll(void *arg)
{
    peer_t *p = arg;
    if (p->fd < 0) {
        p->fd = accept(p->listen_fd, NULL, NULL);
        if (p->fd >= 0) fcntl(p->fd, F_SETFL, O_NONBLOCK);
    }
    if (p->fd >= 0) {
        ssize_t n = read(p->fd, p->got + p->len, sizeof(p->got) - 1 - p->len);
        if (n > 0) p->len += (size_t)n;
        p->got[p->len] = 0;
    }
    size_t lines = 0;
    for (size_t i = 0; i < p->len; i++)
        lines += p->got[i] == '\n';
    return p->fd >= 0 && lines >= p->want_lines;
}

static size_t want_connects = 1;

static bool connected(void *arg)
{
    return sy_pt_log_count(arg, SY_LOG_INFO, "connected to") >= want_connects;
}

static bool lost(void *arg)
{
    return sy_pt_log_count(arg, SY_LOG_WARN, "connecting again") > 0;
}

static void test_unixsock(void)
{
    char path[108];
    snprintf(path, sizeof(path), "/tmp/sy-example-%d.sock", (int)getpid());
    unlink(path);
    peer_t p = {.fd = -1};
    p.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, path);
    CHECK(bind(p.listen_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(p.listen_fd, 4) == 0,
          "listen on %s: %s", path, strerror(errno));
    fcntl(p.listen_fd, F_SETFL, O_NONBLOCK);
    char yaml[256];
    snprintf(yaml, sizeof(yaml), "path: %s\nreconnect_interval: 2s\n", path);
    sy_pt_t *h = open_ok("exporter_unixsock.so", yaml);
    CHECK(sy_pt_run(h, 5000, connected, h) == 1, "it connects");
    CHECK(sy_pt_consume_json(h, SY_SIGNAL_LOGS, LOGS3) == SY_OK, "consume");
    p.want_lines = 3;
    CHECK(sy_pt_run(h, 5000, peer_poll, &p) == 1, "3 lines arrive (%s)", p.got);
    CHECK(strcmp(p.got, "DEBUG|d|\nINFO|i|\nWARN|w|env=old\n") == 0, "the lines: %s", p.got);
    CHECK(metric(h, "exporter_unixsock_lines") == 3, "lines metric");

    /* The reader goes away: the exporter notices on its next write, pushes back,
     * and connects again when the fake clock reaches reconnect_interval. */
    close(p.fd);
    p.fd = -1;
    sy_pt_consume_json(h, SY_SIGNAL_LOGS, LOGS3); /* may be written into the void */
    sy_pt_consume_json(h, SY_SIGNAL_LOGS, LOGS3);
    CHECK(sy_pt_run(h, 5000, lost, h) == 1, "the loss is logged");
    CHECK(sy_pt_consume_json(h, SY_SIGNAL_LOGS, LOGS3) == SY_EAGAIN, "pushes back while away");
    CHECK(sy_pt_timer_count(h) == 1, "a reconnect timer");
    sy_pt_advance(h, 1999);
    CHECK(metric(h, "exporter_unixsock_reconnects") == 0, "not before 2 s");
    sy_pt_advance(h, 1);
    CHECK(metric(h, "exporter_unixsock_reconnects") == 1, "at 2 s");
    uint64_t before = sy_pt_ready_calls(h);
    want_connects = 2;
    CHECK(sy_pt_run(h, 5000, connected, h) == 1, "connects again");
    p.len = 0;
    p.want_lines = 3;
    CHECK(sy_pt_run(h, 5000, peer_poll, &p) || p.fd >= 0, "accepted again");
    CHECK(sy_pt_ready_calls(h) > before, "api->ready() after the push-back");
    CHECK(sy_pt_consume_json(h, SY_SIGNAL_LOGS, LOGS3) == SY_OK, "consume again");
    CHECK(sy_pt_run(h, 5000, peer_poll, &p) == 1, "lines after the reconnect (%s)", p.got);
    CHECK(strcmp(p.got, "DEBUG|d|\nINFO|i|\nWARN|w|env=old\n") == 0, "the lines: %s", p.got);
    CHECK(sy_pt_shutdown(h) == 0, "the socket is closed at shutdown");
    sy_pt_close(h);
    close(p.fd);
    close(p.listen_fd);
    unlink(path);
}

int main(void)
{
    test_udpline();
    test_stamp();
    test_unixsock();
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    else
        printf("example plugins: all checks passed\n");
    return failures ? 1 : 0;
}
