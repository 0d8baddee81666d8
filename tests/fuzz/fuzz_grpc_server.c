/*
 * fuzz_grpc_server.c - libFuzzer target for the otlp receiver's gRPC server
 * (plugins/receivers/otlp/otlp_grpc.c, included whole): what a client sends over
 * HTTP/2 goes into the real nghttp2 server session with the receiver's callbacks
 * (the connection preface, SETTINGS, HEADERS and CONTINUATION, DATA, RST_STREAM,
 * PING, WINDOW_UPDATE, GOAWAY, PRIORITY), then through the gRPC framing, the
 * budgets, decompression, the core's validation walk of the message and the
 * answers (trailers-only errors, OK with its framed empty response).
 *
 * Each input is one connection: the server's side of a socketpair is opened as
 * its TCP handle (as on_connection() does after accept), and the input is
 * written into the other side in chunks, the loop running after each, so the
 * server reads and writes through libuv exactly as on a socket. Then the client
 * closes its side and the loop runs until the connection is freed.
 *
 * Input: byte 0 picks the server's settings (bits 0-1 max message 4 MiB / 64 B /
 * 1 KiB / 16 KiB, bit 2 a 256-byte in-flight budget, bit 3 the pipeline refuses
 * (queue full), bit 4 ping enforcement, bit 5 max_items_per_request 1, bit 6 only
 * the traces service, bit 7 at most 2 concurrent streams), byte 1 the chunk size
 * (0: all at once), the rest is what the client sends (from the preface on).
 *
 * Invariants (abort on violation): every batch handed on passed the core's walk;
 * what the server writes is a sequence of whole HTTP/2 frames within the default
 * maximum frame size (after its SETTINGS first); the connection is freed once
 * the client has closed, and every byte counted against the budgets is given
 * back, every batch released or handed on.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.grpc_server.corpus).
 */
#include "../../plugins/receivers/otlp/otlp_grpc.c"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine.h"
#include "signals.h"

#define FUZZ_MAX_INPUT  16384u
#define FUZZ_MAX_OUTPUT (4u << 20)
#define FUZZ_MAX_SPINS  10000

static uv_loop_t loop;
static sy_host_api_t host;
static otlp_config_t cfg;
static otlp_state_t st;

static struct {
    uint32_t signals;
    bool refuse;
    size_t batches;  /* made by the server */
    size_t released; /* given back or handed on */
    size_t emitted;
    uint8_t *out; /* what the client read */
    size_t out_len;
} run;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_grpc_server: invariant violated: %s\n", what);
        abort();
    }
}

/* OTLP's functions from otlp.c, which is not compiled in. */
void otlp_grpc_guard_count(otlp_state_t *s, otlp_grpc_guard_t which)
{
    s->api->metric_add(s->m_grpc_guard[which], 1);
}

sy_signal_t otlp_signal_at(int i)
{
    return syc_signal_by_index(i)->signal;
}

int otlp_check_items(const otlp_state_t *s, sy_batch_t *batch, char *err, size_t err_len)
{
    sy_batch_info_t info;
    s->api->batch_info(batch, &info);
    if (!s->cfg->max_items_per_request || info.items <= (uint64_t)s->cfg->max_items_per_request)
        return 0;
    snprintf(err, err_len, "request too large: %llu items", (unsigned long long)info.items);
    return -1;
}

/* The host: the core's batches, with the rest faked. */
static bool log_enabled(const sy_instance_t *inst, sy_log_level_t level)
{
    (void)inst;
    (void)level;
    return true; /* every message is formatted */
}

static void log_msg(const sy_instance_t *inst, sy_log_level_t level, const char *fmt, ...)
{
    (void)inst;
    (void)level;
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
}

static void *get_loop(const sy_instance_t *inst)
{
    (void)inst;
    return &loop;
}

static uint32_t get_signals(const sy_instance_t *inst)
{
    (void)inst;
    return run.signals;
}

static void no_metric(sy_metric_t *m, int64_t v)
{
    (void)m;
    (void)v;
}

static sy_batch_t *batch_new(sy_instance_t *inst, sy_signal_t sig)
{
    sy_batch_t *b = sy__host_api()->batch_new(inst, sig);
    if (b) run.batches++;
    return b;
}

static void batch_release(sy_batch_t *b)
{
    run.released++;
    sy__host_api()->batch_release(b);
}

/* The decompressor's memory: every block kept until the check is done (a
 * growing output is copied from the block before). */
typedef struct twin_mem_s {
    void *blocks[64];
    size_t n;
} twin_mem_t;

static void *twin_alloc(void *ctx, size_t size)
{
    twin_mem_t *m = ctx;
    if (m->n == sizeof(m->blocks) / sizeof(m->blocks[0])) return NULL;
    return m->blocks[m->n++] = malloc(size ? size : 1);
}

static int emit(sy_instance_t *inst, sy_batch_t *b)
{
    (void)inst;
    sy_batch_info_t info;
    host.batch_info(b, &info);
    check(info.has_encoded && (info.signal & run.signals),
          "a batch handed on: encoded, of a served signal");
    /* The compressed twin (ABI 1.7), when kept, decompresses to exactly the
     * encoded request: an exporter sends it in the request's place. */
    sy_piece_t z[2];
    for (int e = 0; e < 2; e++) {
        const char *name = e ? "zstd" : "gzip";
        if (host.batch_compressed_pieces(b, name, z, 2) != 1) continue;
        size_t len = 0, out_len = 0;
        const uint8_t *enc = host.batch_encoded(b, &len);
        uint8_t *out = NULL;
        twin_mem_t mem = {.n = 0};
        int rc = syc_decompress(e ? SYC_ENCODING_ZSTD : SYC_ENCODING_GZIP, z[0].data, z[0].len,
                                len + 1, twin_alloc, &mem, &out, &out_len, NULL, 0);
        check(rc == 0 && enc && out_len == len && memcmp(out, enc, len) == 0,
              "the compressed twin decompresses to the encoded request");
        for (size_t i = 0; i < mem.n; i++)
            free(mem.blocks[i]);
    }
    if (run.refuse) return SY_EAGAIN;
    run.emitted++;
    batch_release(b);
    return SY_OK;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    host = *sy__host_api();
    host.log_enabled = log_enabled;
    host.log = log_msg;
    host.loop = get_loop;
    host.signals = get_signals;
    host.metric_add = no_metric;
    host.batch_new = batch_new;
    host.batch_release = batch_release;
    host.emit = emit;
    cfg.grpc = true;
    cfg.grpc_endpoint = "127.0.0.1:0";
    st.api = &host;
    st.cfg = &cfg;
    check(otlp_grpc_start(&st) == 0 && st.grpc != NULL, "the server starts");
}

static void client_read(int fd)
{
    for (;;) {
        uint8_t buf[16384];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0) return;
        check(run.out_len + (size_t)n <= FUZZ_MAX_OUTPUT, "output bounded");
        uint8_t *grown = realloc(run.out, run.out_len + (size_t)n);
        check(grown != NULL, "memory");
        memcpy(grown + run.out_len, buf, (size_t)n);
        run.out = grown;
        run.out_len += (size_t)n;
    }
}

/* Whole frames within 16 KiB (the client never raised SETTINGS_MAX_FRAME_SIZE's
 * default as far as the server may assume), SETTINGS first. */
static void check_frames(void)
{
    size_t pos = 0;
    bool first = true;
    while (pos < run.out_len) {
        check(run.out_len - pos >= 9, "a whole frame header");
        const uint8_t *h = run.out + pos;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        check(len <= 16384, "frame within the default maximum size");
        check(len <= run.out_len - pos - 9, "a whole frame");
        if (first) check(h[3] == NGHTTP2_SETTINGS && !(h[4] & 1), "SETTINGS first");
        first = false;
        pos += 9 + len;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!st.grpc) setup();
    if (size < 2) return 0;
    if (size > FUZZ_MAX_INPUT) size = FUZZ_MAX_INPUT;
    uint8_t opt = data[0];
    size_t chunk = data[1] ? data[1] : size;
    data += 2;
    size -= 2;

    otlp_grpc_server_t *s = st.grpc;
    static const size_t max_message[4] = {4u * MIB, 64, 1024, 16384};
    memset(&run, 0, sizeof(run));
    run.signals =
        (opt & 64) ? SY_SIGNAL_TRACES : (SY_SIGNAL_TRACES | SY_SIGNAL_METRICS | SY_SIGNAL_LOGS);
    run.refuse = opt & 8;
    s->max_message = max_message[opt & 3];
    s->budget.limit = (opt & 4) ? 256 : 0;
    s->conn_budget = s->budget.limit ? s->budget.limit / 4 : SIZE_MAX;
    if (s->conn_budget < s->max_message) s->conn_budget = s->max_message;
    s->ping_min_ms = (opt & 16) ? 60000 : 0;
    cfg.max_items_per_request = (opt & 32) ? 1 : 0;
    cfg.grpc_max_concurrent_streams = (opt & 128) ? 2 : 0;

    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    /* The connection, as on_connection() makes it once accept() has given a socket. */
    grpc_conn_t *c = calloc(1, sizeof(*c));
    check(c != NULL, "memory");
    c->server = s;
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    c->created_ms = c->idle_since_ms = c->last_read_ms = uv_now(&loop);
    check(uv_tcp_open(&c->tcp, sv[0]) == 0, "uv_tcp_open");
    check(nghttp2_session_server_new2(&c->session, s->callbacks, c, s->option) == 0, "session");
    check(conn_submit_settings(c) == 0, "settings");
    conn_flush(c);

    for (size_t off = 0; off < size && s->nconns > 0;) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t w = send(sv[1], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) break; /* the server closed */
        if (w > 0) off += (size_t)w;
        uv_run(&loop, UV_RUN_NOWAIT);
        client_read(sv[1]);
    }
    shutdown(sv[1], SHUT_WR);
    int spins = 0;
    while (s->nconns > 0) {
        check(++spins < FUZZ_MAX_SPINS, "the connection is freed once the client closed");
        uv_run(&loop, UV_RUN_NOWAIT);
        client_read(sv[1]);
    }
    client_read(sv[1]);
    close(sv[1]);

    check_frames();
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "grpc_server: %zu bytes in, %zu out, %zu batches, %zu handed on\n", size,
                run.out_len, run.batches, run.emitted);
    check(s->budget.used == 0, "the in-flight budget is given back");
    check(run.released == run.batches, "every batch released or handed on");
    free(run.out);
    return 0;
}
