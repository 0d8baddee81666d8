/*
 * fuzz_grpc_frame.c - libFuzzer target for the gRPC message framing that the otlp
 * receiver parses from a stream's DATA (plugins/common/grpc_frame.c).
 *
 * The first two bytes of the input choose how the rest is cut into DATA chunks
 * (as HTTP/2 frames would deliver it) and which grpc-encoding applies; the rest
 * goes through syc_grpc_parser_feed(), and every compressed message through
 * syc_grpc_decompress() with a bound. Invariants checked (abort on violation): the
 * parser consumes what it says, messages never exceed the bound, and cutting the
 * input differently yields the same messages. The header helpers (grpc-timeout,
 * grpc-message escaping, grpc-status-details-bin) are fed the input too.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.grpc_frame.corpus).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "grpc_frame.h"

/* Small bounds keep every input fast; the code paths are the same. */
#define FUZZ_MAX_MESSAGE (64u * 1024u)
#define FUZZ_MAX_OUT     (256u * 1024u)
#define FUZZ_MAX_BLOCKS  4096u

/* Every block of one input, freed at the end (a batch arena's behaviour). */
typedef struct blocks_s {
    void *p[FUZZ_MAX_BLOCKS];
    size_t n;
} blocks_t;

static void *blocks_alloc(void *ctx, size_t size)
{
    blocks_t *b = ctx;
    if (b->n == FUZZ_MAX_BLOCKS) return NULL;
    void *p = malloc(size ? size : 1);
    if (p) b->p[b->n++] = p;
    return p;
}

static void blocks_free(blocks_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->p[i]);
    b->n = 0;
}

/* A digest of the messages parsed, to compare two ways of cutting the input. */
typedef struct outcome_s {
    size_t messages;
    uint64_t hash;
    int end; /* the last return code */
} outcome_t;

static uint64_t mix(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void parse(const uint8_t *data, size_t size, size_t chunk, const char *encoding,
                  blocks_t *blocks, outcome_t *o)
{
    syc_grpc_parser_t p;
    syc_grpc_parser_init(&p, FUZZ_MAX_MESSAGE, blocks_alloc, blocks);
    memset(o, 0, sizeof(*o));
    o->hash = 0xcbf29ce484222325ull;
    size_t pos = 0;
    while (pos < size) {
        size_t n = size - pos < chunk ? size - pos : chunk;
        const uint8_t *in = data + pos;
        pos += n;
        while (n > 0 || o->end == SYC_GRPC_PARSE_MESSAGE) {
            size_t used = 0;
            syc_grpc_message_t m;
            uint64_t declared = 0;
            o->end = syc_grpc_parser_feed(&p, in, n, &used, &m, &declared);
            if (used > n) abort();
            in += used;
            n -= used;
            if (o->end < 0) return;
            if (o->end != SYC_GRPC_PARSE_MESSAGE) break;
            if (m.len > FUZZ_MAX_MESSAGE) abort();
            o->messages++;
            o->hash = mix(o->hash, &(uint8_t){m.compressed}, 1);
            o->hash = mix(o->hash, m.data, m.len);
            if (m.compressed) {
                uint8_t *out = NULL;
                size_t out_len = 0;
                char err[256];
                int rc = syc_grpc_decompress(encoding, m.data, m.len, FUZZ_MAX_OUT, blocks_alloc,
                                             blocks, &out, &out_len, err, sizeof(err));
                if (rc == 0 && out_len > FUZZ_MAX_OUT) abort();
                if (rc != 0 && err[0] == '\0') abort();
            }
            o->end = SYC_GRPC_PARSE_MORE;
        }
    }
    if (o->end >= 0 && !syc_grpc_parser_idle(&p)) o->end = 2; /* ended inside a message */
}

static void headers(const uint8_t *data, size_t size)
{
    char text[128];
    size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    uint64_t ms;
    (void)syc_grpc_timeout_parse(text, &ms);

    char escaped[3 * sizeof(text)];
    syc_grpc_message_encode(text, escaped, sizeof(escaped));
    char round[sizeof(escaped)];
    memcpy(round, escaped, sizeof(escaped));
    syc_grpc_message_decode(round);
    /* Escaping is lossless for what fits (the input up to its first NUL). */
    if (strlen(escaped) < sizeof(escaped) - 3 && strcmp(round, text) != 0) abort();

    (void)syc_grpc_status_details_retry_delay((const char *)data, size, &ms);
    char details[512];
    if (syc_grpc_status_details_retry((int)(size % 17), text, size * 7, details, sizeof(details)) >
        0) {
        uint64_t back = 0;
        if (!syc_grpc_status_details_retry_delay(details, strlen(details), &back) ||
            back != size * 7)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const encodings[] = {"gzip", "deflate", "zstd", "identity", "snappy", ""};
    if (size < 2) return 0;
    size_t chunk = (size_t)data[0] * 7 + 1;
    const char *encoding = encodings[data[1] % (sizeof(encodings) / sizeof(encodings[0]))];
    data += 2;
    size -= 2;

    blocks_t *blocks = calloc(1, sizeof(*blocks));
    if (!blocks) return 0;
    outcome_t whole, cut;
    parse(data, size, size ? size : 1, encoding, blocks, &whole);
    blocks_free(blocks);
    parse(data, size, chunk, encoding, blocks, &cut);
    blocks_free(blocks);
    free(blocks);
    /* Where the bytes are cut must not change what is parsed. */
    if (whole.messages != cut.messages || whole.hash != cut.hash || whole.end != cut.end) abort();

    headers(data, size);
    return 0;
}
