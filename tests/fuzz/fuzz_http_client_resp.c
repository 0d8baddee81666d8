/*
 * fuzz_http_client_resp.c - libFuzzer target for the response parser of the
 * exporters' own HTTP/1.1 client (plugins/common/http_client.c, included whole):
 * status line, headers (Retry-After and Content-Type kept, bounded), bodies by
 * Content-Length, chunked or to the end of the connection, 1xx interim answers,
 * several answers one after the other on one connection (keep-alive).
 *
 * Input: byte 0 is the chunk size the bytes are fed in (0: all at once), the rest
 * is what the server sends. After a complete answer the parser is made ready
 * again and fed what followed, as the client does for the next request on a kept
 * connection; at the end of the input the connection is closed (syc_hc_resp_eof).
 *
 * Invariants (abort on violation): a complete answer has a status 100-999 (not
 * 1xx but 101), a body no longer than SYC_HC_MAX_RESPONSE and within its buffer,
 * NUL-terminated header copies within their arrays; `used` never exceeds what was
 * fed; a failed parse stays failed. ASan sees any overflow, UBSan any UB.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.http_client_resp.corpus).
 */
#include "../../plugins/common/http_client.c"

#include <stdlib.h>

static void check(const syc_hc_resp_t *r)
{
    if (r->status < 100 || r->status > 999 || (r->status < 200 && r->status != 101)) abort();
    if (r->body_len > SYC_HC_MAX_RESPONSE || r->body_len > r->body_cap) abort();
    if (strnlen(r->retry_after, sizeof(r->retry_after)) >= sizeof(r->retry_after)) abort();
    if (strnlen(r->content_type, sizeof(r->content_type)) >= sizeof(r->content_type)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t chunk = data[0] ? data[0] : (size_t)-1;
    data++;
    size--;
    syc_hc_resp_t r = {0};
    syc_hc_resp_init(&r);
    char err[160];
    size_t at = 0;
    bool bad = false;
    while (at < size && !bad) {
        size_t n = size - at < chunk ? size - at : chunk;
        size_t used;
        int rc = syc_hc_resp_feed(&r, data + at, n, &used, err, sizeof(err));
        if (used > n) abort();
        if (rc < 0) {
            if (!err[0]) abort();
            bad = true;
            break;
        }
        if (rc == 1) {
            check(&r);
            if (!r.complete) abort();
            at += used;
            syc_hc_resp_init(&r); /* the next answer on a kept connection */
            continue;
        }
        if (used != n) abort();
        at += n;
    }
    if (!bad && syc_hc_resp_eof(&r) == 1) check(&r);
    syc_hc_resp_free(&r);
    return 0;
}
