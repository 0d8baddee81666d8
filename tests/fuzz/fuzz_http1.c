/*
 * fuzz_http1.c - libFuzzer target for the HTTP/1.1 request path of the shared
 * server (plugins/common/http_server.c, included whole): the request line,
 * headers, Content-Length and chunked bodies, pipelining, Expect: 100-continue,
 * the head check, the error handler, the body limit and the bytes-in-flight
 * budget, answers given at once or later.
 *
 * Each input is one connection: the server's side of a socketpair is opened as
 * its TCP handle (as on_connection() does after accept), and the input is
 * written into the other side in chunks, the loop running after each, so the
 * server reads it through libuv exactly as from a socket (reading stops while an
 * answer is awaited, and what follows waits in the socket). Then the client
 * closes its side and the loop runs until the connection is freed.
 *
 * Input: byte 0 picks the server's settings (bit 0 keep every header, bit 1
 * answer later, bit 2 head check, bit 3 error handler answers, bits 4-5
 * max_body 16 B / 256 B / 4 KiB / 1 MiB, bit 6 a 64-byte in-flight budget, bit 7
 * bodies read into memory the owner lends, syc_http_server_set_body_alloc()),
 * byte 1 the chunk size (0: all at once), the rest is what the client sends.
 *
 * Invariants (abort on violation): every request handed over has a method, a
 * path and a body no larger than max_body, header names kept in lower case; what
 * lent body memory is handed to the handler with the body in it, or given back
 * exactly once (ASan sees a double free or a leak); the server writes back is a
 * sequence of well-formed responses (status line,
 * Content-Length, exactly that many body bytes, none for HEAD; "100 Continue" interim
 * responses), one per request handed over plus at most one refusal, none after
 * a refusal; the connection is freed and the in-flight budget is back to 0 once
 * the client has closed.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.http1.corpus).
 */
#include "../../plugins/common/http_server.c"

#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#define FUZZ_MAX_INPUT  8192u
#define FUZZ_MAX_OUTPUT (4u << 20)
#define FUZZ_MAX_SPINS  10000

static uv_loop_t loop;
static syc_http_server_t *server;

/* What one input did. */
static struct {
    syc_http_request_t *pending; /* a request whose answer is put off */
    bool answer_later;
    bool error_answers;
    size_t handled; /* requests handed to the handler */
    size_t refused; /* refusals that went through the error handler */
    /* Whether each answer given, in order, is to a HEAD request (which has the
     * Content-Length of its body, and no body). */
    bool head[FUZZ_MAX_INPUT];
    size_t answers;
    char *out; /* what the client read */
    size_t out_len;
} run;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_http1: invariant violated: %s\n", what);
        abort();
    }
}

static void check_request(const syc_http_request_t *req)
{
    check(req->method != NULL && req->path != NULL, "method and path");
    check(req->body_len <= server->max_body, "body within max_body");
    check(req->body_len == 0 || req->body != NULL, "body bytes");
    for (size_t i = 0; i < req->nheaders; i++) {
        const char *name = req->headers[2 * i];
        for (const char *p = name; *p; p++)
            check(!(*p >= 'A' && *p <= 'Z'), "header names in lower case");
        check(strlen(req->headers[2 * i + 1]) < SY__HTTP_MAX_HEADER_BYTES, "header value");
    }
}

/* Answers with the request's body (none for HEAD), a status from its path. */
/* Notes whether the answer about to be given is to a HEAD request. */
static void note_answer(const syc_http_request_t *req)
{
    check(run.answers < FUZZ_MAX_INPUT, "answers bounded");
    run.head[run.answers++] = req->method && strcmp(req->method, "HEAD") == 0;
}

static size_t lent; /* body memory lent (bit 7) and not yet freed */

static void *lend_body(void *arg, const syc_http_request_t *req, size_t len, void **owner)
{
    (void)arg;
    check(req->path != NULL && len > 0, "body_alloc: a request with a body");
    void *m = malloc(len);
    check(m != NULL, "memory");
    *owner = m;
    lent++;
    return m;
}

static void give_back(void *arg, void *owner)
{
    (void)arg;
    free(owner);
    lent--;
}

static void answer(syc_http_request_t *req)
{
    bool head = strcmp(req->method, "HEAD") == 0;
    note_answer(req);
    size_t plen = strlen(req->path);
    int status = plen % 3 == 0 ? 200 : plen % 3 == 1 ? 400 : 503;
    void *owner = req->body_owner; /* req may be freed by the answer */
    check(!owner || req->body == owner, "a lent body is read into its memory");
    syc_http_respond(req, status, "application/octet-stream",
                     status == 503 ? "Retry-After: 1\r\n" : NULL, req->body,
                     head ? 0 : req->body_len);
    if (owner) give_back(NULL, owner);
}

static void on_request(void *arg, syc_http_request_t *req)
{
    (void)arg;
    check_request(req);
    run.handled++;
    if (run.answer_later) {
        check(run.pending == NULL, "one request with the handler at a time");
        run.pending = req;
        return;
    }
    answer(req);
}

static void on_error(void *arg, syc_http_request_t *req, int status, const char *message)
{
    (void)arg;
    check(status >= 400 && status < 600 && message != NULL, "a refusal's status");
    check(req->body_len == 0, "a refusal has no body");
    if (!run.error_answers) return;
    run.refused++;
    note_answer(req);
    syc_http_respond(req, status, "text/plain", NULL, message, strlen(message));
}

static int head_check(void *arg, const syc_http_request_t *req)
{
    (void)arg;
    check(req->path != NULL, "head check's path");
    return strncmp(req->path, "/deny", 5) == 0 ? 401 : 0;
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    char err[256];
    server = syc_http_server_start(&loop, "127.0.0.1:0", 16, on_request, NULL, err, sizeof(err));
    check(server != NULL, err);
}

/* Reads what the server wrote, without blocking. */
static void client_read(int fd)
{
    for (;;) {
        char buf[16384];
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n <= 0) return;
        check(run.out_len + (size_t)n <= FUZZ_MAX_OUTPUT, "output bounded");
        char *grown = realloc(run.out, run.out_len + (size_t)n);
        check(grown != NULL, "memory");
        memcpy(grown + run.out_len, buf, (size_t)n);
        run.out = grown;
        run.out_len += (size_t)n;
    }
}

/* One turn of the loop, then the client reads and a put-off answer is given. */
static void spin(int fd)
{
    uv_run(&loop, UV_RUN_NOWAIT);
    client_read(fd);
    if (run.pending) {
        syc_http_request_t *req = run.pending;
        run.pending = NULL;
        answer(req);
    }
}

/* The server's output must be well-formed responses; returns how many are final
 * (not 100 Continue). */
static size_t check_responses(void)
{
    size_t pos = 0, finals = 0;
    bool refusal_seen = false;
    while (pos < run.out_len) {
        const char *p = run.out + pos;
        size_t left = run.out_len - pos;
        check(left >= 12 && memcmp(p, "HTTP/1.1 ", 9) == 0, "a status line");
        int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        check(status >= 100 && status < 600, "a status");
        const char *end = memmem(p, left, "\r\n\r\n", 4);
        check(end != NULL, "the head is complete");
        size_t head = (size_t)(end - p) + 4;
        if (status == 100) {
            check(head == 25, "100 Continue alone");
            pos += head;
            continue;
        }
        check(!refusal_seen, "nothing after a refusal");
        const char *cl = memmem(p, head, "\r\nContent-Length: ", 18);
        check(cl != NULL, "Content-Length");
        size_t body = strtoul(cl + 18, NULL, 10);
        if (finals < run.answers && run.head[finals]) body = 0; /* HEAD: no body */
        check(body <= left - head, "the body is complete");
        if (memmem(p, head, "\r\nConnection: close\r\n", 21)) refusal_seen = true;
        pos += head + body;
        finals++;
    }
    return finals;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server) setup();
    if (size < 2) return 0;
    if (size > FUZZ_MAX_INPUT) size = FUZZ_MAX_INPUT;
    uint8_t opt = data[0];
    size_t chunk = data[1] ? data[1] : size;
    data += 2;
    size -= 2;

    static const size_t max_body[4] = {16, 256, 4096, 1u << 20};
    memset(&run, 0, sizeof(run));
    run.answer_later = opt & 2;
    run.error_answers = opt & 8;
    syc_http_limits_t lim = {.read_header_ms = SY__HTTP_READ_HEADER_MS,
                             .read_ms = SY__HTTP_READ_MS,
                             .max_inflight_bytes = (opt & 64) ? 64 : 0};
    syc_http_server_set_limits(server, &lim);
    server->max_body = max_body[(opt >> 4) & 3];
    syc_http_server_keep_all_headers(server, opt & 1);
    syc_http_server_set_head_check(server, (opt & 4) ? head_check : NULL, NULL);
    syc_http_server_set_error_handler(server, on_error, NULL);
    syc_http_server_set_body_alloc(server, (opt & 128) ? lend_body : NULL, give_back, NULL);

    int sv[2];
    check(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    /* The connection, as on_connection() makes it once accept() has given a socket. */
    syc_http_conn_t *c = calloc(1, sizeof(*c));
    check(c != NULL, "memory");
    c->server = server;
    uv_tcp_init(&loop, &c->tcp);
    uv_timer_init(&loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = server->conns;
    if (server->conns) server->conns->prev = c;
    server->conns = c;
    server->nconns++;
    check(uv_tcp_open(&c->tcp, sv[0]) == 0, "uv_tcp_open");
    llhttp_init(&c->parser, HTTP_REQUEST, &server->settings);
    c->parser.data = c;
    conn_arm_idle(c);
    check(uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0, "read_start");

    for (size_t off = 0; off < size;) {
        size_t n = size - off < chunk ? size - off : chunk;
        ssize_t w = send(sv[1], data + off, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0 && errno != EAGAIN) break; /* the server closed */
        if (w > 0) off += (size_t)w;
        spin(sv[1]);
    }
    shutdown(sv[1], SHUT_WR);
    int spins = 0;
    while (server->nconns > 0) {
        check(++spins < FUZZ_MAX_SPINS, "the connection is freed once the client closed");
        spin(sv[1]);
    }
    client_read(sv[1]);
    close(sv[1]);

    size_t finals = check_responses();
    check(finals >= run.handled && finals <= run.handled + 1, "one response per request");
    check(server->budget.used == 0, "the in-flight budget is given back");
    check(lent == 0, "lent body memory is given back");
    free(run.out);
    return 0;
}
