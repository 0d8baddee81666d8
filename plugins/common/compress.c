/*
 * compress.c - gzip, deflate and zstd decompression into caller-owned memory with a
 * bound on the output size. See compress.h for the contract.
 */
#include "compress.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <switchyard/plugin.h>
#include <zlib.h>
#include <zstd.h>

/* The largest expansion DEFLATE can reach (about 1032:1), used to refuse an
 * implausible size hint from a gzip trailer before allocating for it. */
#define SY__DEFLATE_MAX_RATIO 1032u
/* The first output block when nothing better is known. */
#define SY__MIN_BLOCK 4096u
/* Memory a zstd frame may ask for its window: 2^24 = 16 MiB. */
#define SY__ZSTD_WINDOW_LOG_MAX 24

static void set_err(char *err, size_t err_len, const char *fmt, ...) SY_PRINTF(3, 4);
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

syc_encoding_t syc_encoding_parse(const char *ce)
{
    if (!ce) return SYC_ENCODING_IDENTITY;
    while (*ce == ' ' || *ce == '\t')
        ce++;
    size_t n = strlen(ce);
    while (n > 0 && (ce[n - 1] == ' ' || ce[n - 1] == '\t'))
        n--;
    if (n == 0 || (n == 8 && strncasecmp(ce, "identity", 8) == 0)) return SYC_ENCODING_IDENTITY;
    if ((n == 4 && strncasecmp(ce, "gzip", 4) == 0) ||
        (n == 6 && strncasecmp(ce, "x-gzip", 6) == 0))
        return SYC_ENCODING_GZIP;
    if (n == 7 && strncasecmp(ce, "deflate", 7) == 0) return SYC_ENCODING_DEFLATE;
    if (n == 4 && strncasecmp(ce, "zstd", 4) == 0) return SYC_ENCODING_ZSTD;
    return SYC_ENCODING_UNKNOWN;
}

const char *syc_encoding_name(syc_encoding_t encoding)
{
    switch (encoding) {
    case SYC_ENCODING_IDENTITY:
        return "identity";
    case SYC_ENCODING_GZIP:
        return "gzip";
    case SYC_ENCODING_DEFLATE:
        return "deflate";
    case SYC_ENCODING_ZSTD:
        return "zstd";
    default:
        return "unknown";
    }
}

/* A growing output in abandoned-on-growth blocks of the caller's allocator. */
typedef struct out_buf_s {
    syc_alloc_fn alloc;
    void *ctx;
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit; /* max_out + 1: reaching it means the output is too large */
} out_buf_t;

static int out_reserve(out_buf_t *o, size_t want)
{
    if (want > o->limit) want = o->limit;
    if (want <= o->cap) return 0;
    uint8_t *p = o->alloc(o->ctx, want);
    if (!p) return SY_ENOMEM;
    if (o->len) memcpy(p, o->data, o->len);
    o->data = p;
    o->cap = want;
    return 0;
}

/* Makes room for more output: at least doubles, up to the limit. */
static int out_grow(out_buf_t *o)
{
    size_t want = o->cap < SY__MIN_BLOCK ? SY__MIN_BLOCK : o->cap * 2;
    if (want < o->cap) want = o->limit; /* overflow */
    return out_reserve(o, want);
}

static size_t initial_size(size_t hint, size_t in_len, size_t limit)
{
    size_t plausible =
        in_len > SIZE_MAX / SY__DEFLATE_MAX_RATIO ? SIZE_MAX : in_len * SY__DEFLATE_MAX_RATIO;
    size_t n = hint ? hint + 1 : in_len * 4;
    if (n > plausible) n = plausible;
    if (n < SY__MIN_BLOCK) n = SY__MIN_BLOCK;
    if (n > limit) n = limit;
    return n;
}

static int inflate_all(const uint8_t *in, size_t in_len, int window_bits, out_buf_t *o,
                       const char *name, char *err, size_t err_len)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    if (inflateInit2(&zs, window_bits) != Z_OK) {
        set_err(err, err_len, "%s: cannot initialise the decompressor", name);
        return SY_ENOMEM;
    }
    int rc = 0;
    size_t pos = 0;
    for (;;) {
        if (o->len == o->cap) {
            if (o->cap >= o->limit) {
                rc = SY_ENOMEM;
                break;
            }
            if ((rc = out_grow(o)) != 0) break;
        }
        /* zlib counts in uInt: feed and drain in pieces below 1 GiB. */
        size_t in_avail = in_len - pos, out_avail = o->cap - o->len;
        zs.next_in = (Bytef *)(uintptr_t)(in + pos);
        zs.avail_in = (uInt)(in_avail > (1u << 30) ? (1u << 30) : in_avail);
        zs.next_out = o->data + o->len;
        zs.avail_out = (uInt)(out_avail > (1u << 30) ? (1u << 30) : out_avail);
        uInt in_before = zs.avail_in, out_before = zs.avail_out;
        int zr = inflate(&zs, Z_NO_FLUSH);
        pos += in_before - zs.avail_in;
        o->len += out_before - zs.avail_out;
        if (o->len >= o->limit) {
            rc = SY_ENOMEM;
            break;
        }
        if (zr == Z_STREAM_END) {
            /* gzip allows several members back to back; anything else after the
             * end of the stream is garbage. */
            if (pos < in_len && window_bits == 16 + MAX_WBITS && in_len - pos >= 2 &&
                in[pos] == 0x1f && in[pos + 1] == 0x8b) {
                inflateReset(&zs);
                continue;
            }
            if (pos < in_len) {
                set_err(err, err_len, "%s: trailing data after the end of the stream", name);
                rc = SY_EINVAL;
            }
            break;
        }
        if (zr == Z_BUF_ERROR && zs.avail_out != 0) {
            set_err(err, err_len, "%s: unexpected end of the compressed data", name);
            rc = SY_EINVAL;
            break;
        }
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            set_err(err, err_len, "%s: %s", name, zs.msg ? zs.msg : "invalid compressed data");
            rc = zr == Z_MEM_ERROR ? SY_ENOMEM : SY_EINVAL;
            break;
        }
    }
    inflateEnd(&zs);
    return rc;
}

static int unzstd_all(const uint8_t *in, size_t in_len, out_buf_t *o, char *err, size_t err_len)
{
    ZSTD_DCtx *dctx = ZSTD_createDCtx();
    if (!dctx) {
        set_err(err, err_len, "zstd: cannot initialise the decompressor");
        return SY_ENOMEM;
    }
    ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, SY__ZSTD_WINDOW_LOG_MAX);
    ZSTD_inBuffer ib = {in, in_len, 0};
    int rc = 0;
    size_t last = 1;
    for (;;) {
        if (o->len == o->cap) {
            if (o->cap >= o->limit) {
                rc = SY_ENOMEM;
                break;
            }
            if ((rc = out_grow(o)) != 0) break;
        }
        ZSTD_outBuffer ob = {o->data, o->cap, o->len};
        last = ZSTD_decompressStream(dctx, &ob, &ib);
        o->len = ob.pos;
        if (ZSTD_isError(last)) {
            set_err(err, err_len, "zstd: %s", ZSTD_getErrorName(last));
            rc = SY_EINVAL;
            break;
        }
        if (o->len >= o->limit) {
            rc = SY_ENOMEM;
            break;
        }
        if (ib.pos == ib.size && ob.pos < ob.size) break; /* all input consumed */
    }
    if (rc == 0 && last != 0) {
        set_err(err, err_len, "zstd: unexpected end of the compressed data");
        rc = SY_EINVAL;
    }
    ZSTD_freeDCtx(dctx);
    return rc;
}

int syc_decompress(syc_encoding_t encoding, const uint8_t *in, size_t in_len, size_t max_out,
                   syc_alloc_fn alloc, void *ctx, uint8_t **out, size_t *out_len, char *err,
                   size_t err_len)
{
    out_buf_t o = {alloc, ctx, NULL, 0, 0, max_out == SIZE_MAX ? SIZE_MAX : max_out + 1};
    size_t hint = 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (err && err_len) err[0] = '\0';
    switch (encoding) {
    case SYC_ENCODING_GZIP:
        /* The trailer's ISIZE is the size of the last member modulo 2^32: a hint. */
        if (in_len >= 18)
            hint = (size_t)in[in_len - 4] | (size_t)in[in_len - 3] << 8 |
                   (size_t)in[in_len - 2] << 16 | (size_t)in[in_len - 1] << 24;
        if ((rc = out_reserve(&o, initial_size(hint, in_len, o.limit))) != 0) break;
        rc = inflate_all(in, in_len, 16 + MAX_WBITS, &o, "gzip", err, err_len);
        break;
    case SYC_ENCODING_DEFLATE:
        if ((rc = out_reserve(&o, initial_size(0, in_len, o.limit))) != 0) break;
        /* RFC 9110 "deflate" is a zlib stream, but raw deflate is common too: a
         * zlib header has a checksum that raw data rarely passes. */
        if (in_len >= 2 && (in[0] & 0x0f) == 8 && ((in[0] << 8) | in[1]) % 31 == 0)
            rc = inflate_all(in, in_len, MAX_WBITS, &o, "deflate", err, err_len);
        else
            rc = inflate_all(in, in_len, -MAX_WBITS, &o, "deflate", err, err_len);
        break;
    case SYC_ENCODING_ZSTD: {
        unsigned long long fcs = ZSTD_getFrameContentSize(in, in_len);
        if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR && fcs < SIZE_MAX)
            hint = (size_t)fcs;
        if ((rc = out_reserve(&o, initial_size(hint, in_len, o.limit))) != 0) break;
        rc = unzstd_all(in, in_len, &o, err, err_len);
        break;
    }
    default:
        set_err(err, err_len, "unsupported content encoding");
        return SY_EINVAL;
    }
    if (rc == SY_ENOMEM && o.len >= o.limit)
        set_err(err, err_len, "decompressed body is larger than the limit of %zu bytes", max_out);
    else if (rc == SY_ENOMEM && (!err || !err[0]))
        set_err(err, err_len, "out of memory while decompressing");
    if (rc != 0) return rc;
    *out = o.data;
    *out_len = o.len;
    return 0;
}
