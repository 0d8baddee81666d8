/*
 * compress.c - gzip, zlib/raw deflate (libdeflate), zstd and block snappy, whole
 * buffers, with a bound on the decompressed size. See compress.h for the contract.
 *
 * Each thread keeps its libdeflate compressors (one per level: allocating one costs
 * more than compressing a small request), its libdeflate decompressor and its zstd
 * contexts, freed when the thread exits.
 */
#include "compress.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libdeflate.h>
#include <snappy-c.h>
#include <switchyard/plugin.h>
#include <zstd.h>

/* The largest expansion DEFLATE can reach (about 1032:1), used to refuse an
 * implausible size hint from a gzip trailer before allocating for it. */
#define SY__DEFLATE_MAX_RATIO 1032u
/* Block snappy expands at most about 21:1 (a 3-byte copy of 64 bytes); a declared
 * length beyond 32:1 of the input is a lie, refused before allocating for it. */
#define SY__SNAPPY_MAX_RATIO 32u
/* The first output block when nothing better is known. */
#define SY__MIN_BLOCK 4096u
/* Memory a zstd frame may ask for its window when streamed: 2^24 = 16 MiB. */
#define SY__ZSTD_WINDOW_LOG_MAX 24
/* libdeflate's levels. */
#define SY__LD_LEVELS 13

static void set_err(char *err, size_t err_len, const char *fmt, ...) SY_PRINTF(3, 4);
static void set_err(char *err, size_t err_len, const char *fmt, ...)
{
    if (!err || err_len == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

/* ---- per-thread contexts ------------------------------------------------------- */

typedef struct tl_ctx_s {
    struct libdeflate_compressor *comp[SY__LD_LEVELS];
    struct libdeflate_decompressor *dec;
    ZSTD_CCtx *zc;
    ZSTD_DCtx *zd;
} tl_ctx_t;

static pthread_key_t tl_key;
static pthread_once_t tl_once = PTHREAD_ONCE_INIT;
static bool tl_key_ok;

static void tl_free(void *p)
{
    tl_ctx_t *t = p;
    if (!t) return;
    for (int i = 0; i < SY__LD_LEVELS; i++)
        libdeflate_free_compressor(t->comp[i]);
    libdeflate_free_decompressor(t->dec);
    ZSTD_freeCCtx(t->zc);
    ZSTD_freeDCtx(t->zd);
    free(t);
}

static void tl_init(void)
{
    tl_key_ok = pthread_key_create(&tl_key, tl_free) == 0;
}

static tl_ctx_t *tl_get(void)
{
    pthread_once(&tl_once, tl_init);
    if (!tl_key_ok) return NULL;
    tl_ctx_t *t = pthread_getspecific(tl_key);
    if (t) return t;
    if (!(t = calloc(1, sizeof(*t)))) return NULL;
    if (pthread_setspecific(tl_key, t) != 0) {
        free(t);
        return NULL;
    }
    return t;
}

static struct libdeflate_decompressor *tl_decompressor(void)
{
    tl_ctx_t *t = tl_get();
    if (t && !t->dec) t->dec = libdeflate_alloc_decompressor();
    return t ? t->dec : NULL;
}

static ZSTD_DCtx *tl_zstd_dctx(void)
{
    tl_ctx_t *t = tl_get();
    if (!t) return NULL;
    if (!t->zd) {
        if (!(t->zd = ZSTD_createDCtx())) return NULL;
        ZSTD_DCtx_setParameter(t->zd, ZSTD_d_windowLogMax, SY__ZSTD_WINDOW_LOG_MAX);
    } else {
        ZSTD_DCtx_reset(t->zd, ZSTD_reset_session_only);
    }
    return t->zd;
}

/* ---- names ------------------------------------------------------------------------ */

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
    if ((n == 7 && strncasecmp(ce, "deflate", 7) == 0) ||
        (n == 4 && strncasecmp(ce, "zlib", 4) == 0))
        return SYC_ENCODING_DEFLATE;
    if (n == 4 && strncasecmp(ce, "zstd", 4) == 0) return SYC_ENCODING_ZSTD;
    if (n == 6 && strncasecmp(ce, "snappy", 6) == 0) return SYC_ENCODING_SNAPPY;
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
    case SYC_ENCODING_SNAPPY:
        return "snappy";
    default:
        return "unknown";
    }
}

/* ---- decompression ------------------------------------------------------------- */

/* A growing output in abandoned-on-growth blocks of the caller's allocator. */
typedef struct out_buf_s {
    syc_alloc_fn alloc;
    void *ctx;
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t limit;   /* max_out + 1: reaching it means the output is too large */
    bool too_large; /* the output would exceed max_out */
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

/* Makes room for more output: at least doubles, up to the limit; refuses (too
 * large) once the limit is reached. */
static int out_grow(out_buf_t *o)
{
    if (o->cap >= o->limit) {
        o->too_large = true;
        return SY_ENOMEM;
    }
    size_t want = o->cap < SY__MIN_BLOCK ? SY__MIN_BLOCK : o->cap * 2;
    if (want < o->cap) want = o->limit; /* overflow */
    return out_reserve(o, want);
}

/* Output that reached the limit is too large. */
static int out_check(out_buf_t *o)
{
    if (o->len < o->limit) return 0;
    o->too_large = true;
    return SY_ENOMEM;
}

static size_t initial_size(size_t hint, size_t in_len, size_t limit)
{
    size_t plausible =
        in_len > SIZE_MAX / SY__DEFLATE_MAX_RATIO ? SIZE_MAX : in_len * SY__DEFLATE_MAX_RATIO;
    size_t n = hint ? hint + 1 : (in_len > SIZE_MAX / 4 ? SIZE_MAX : in_len * 4);
    if (n > plausible) n = plausible;
    if (n < SY__MIN_BLOCK) n = SY__MIN_BLOCK;
    if (n > limit) n = limit;
    return n;
}

typedef enum libdeflate_result (*ld_fn)(struct libdeflate_decompressor *, const void *, size_t,
                                        void *, size_t, size_t *, size_t *);

/* Decompresses with libdeflate into o, growing it (and decompressing again) while
 * the output does not fit. gzip allows members back to back. */
static int ld_all(ld_fn fn, bool gzip, const uint8_t *in, size_t in_len, out_buf_t *o,
                  const char *name, char *err, size_t err_len)
{
    struct libdeflate_decompressor *d = tl_decompressor();
    if (!d) {
        set_err(err, err_len, "%s: cannot initialise the decompressor", name);
        return SY_ENOMEM;
    }
    size_t pos = 0;
    for (;;) {
        size_t in_used = 0, out_used = 0;
        enum libdeflate_result r =
            fn(d, in + pos, in_len - pos, o->data + o->len, o->cap - o->len, &in_used, &out_used);
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
            int rc = out_grow(o);
            if (rc != 0) return rc;
            continue;
        }
        if (r != LIBDEFLATE_SUCCESS) {
            set_err(err, err_len, "%s: invalid or truncated compressed data", name);
            return SY_EINVAL;
        }
        pos += in_used;
        o->len += out_used;
        if (out_check(o) != 0) return SY_ENOMEM;
        if (pos >= in_len) return 0;
        if (!(gzip && in_len - pos >= 2 && in[pos] == 0x1f && in[pos + 1] == 0x8b)) {
            set_err(err, err_len, "%s: trailing data after the end of the stream", name);
            return SY_EINVAL;
        }
    }
}

static int unzstd_stream(ZSTD_DCtx *dctx, const uint8_t *in, size_t in_len, out_buf_t *o, char *err,
                         size_t err_len)
{
    ZSTD_inBuffer ib = {in, in_len, 0};
    size_t last = 1;
    for (;;) {
        if (o->len == o->cap) {
            int rc = out_grow(o);
            if (rc != 0) return rc;
        }
        ZSTD_outBuffer ob = {o->data, o->cap, o->len};
        last = ZSTD_decompressStream(dctx, &ob, &ib);
        o->len = ob.pos;
        if (ZSTD_isError(last)) {
            set_err(err, err_len, "zstd: %s", ZSTD_getErrorName(last));
            return SY_EINVAL;
        }
        if (out_check(o) != 0) return SY_ENOMEM;
        if (ib.pos == ib.size && ob.pos < ob.size) break; /* all input consumed */
    }
    if (last != 0) {
        set_err(err, err_len, "zstd: unexpected end of the compressed data");
        return SY_EINVAL;
    }
    return 0;
}

/* One frame that declares its size and spans the input is decompressed in one
 * call into exactly that much memory (refused before allocating when over the
 * bound); anything else is streamed with the bound checked as it grows. */
static int unzstd_all(const uint8_t *in, size_t in_len, out_buf_t *o, char *err, size_t err_len)
{
    ZSTD_DCtx *dctx = tl_zstd_dctx();
    if (!dctx) {
        set_err(err, err_len, "zstd: cannot initialise the decompressor");
        return SY_ENOMEM;
    }
    unsigned long long fcs = ZSTD_getFrameContentSize(in, in_len);
    if (fcs == ZSTD_CONTENTSIZE_ERROR) {
        set_err(err, err_len, "zstd: not a zstd frame");
        return SY_EINVAL;
    }
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && ZSTD_findFrameCompressedSize(in, in_len) == in_len) {
        if (fcs >= o->limit) {
            o->too_large = true;
            return SY_ENOMEM;
        }
        int rc = out_reserve(o, fcs ? (size_t)fcs : 1);
        if (rc != 0) return rc;
        size_t n = ZSTD_decompressDCtx(dctx, o->data, (size_t)fcs, in, in_len);
        if (ZSTD_isError(n)) {
            set_err(err, err_len, "zstd: %s", ZSTD_getErrorName(n));
            return SY_EINVAL;
        }
        o->len = n;
        return 0;
    }
    int rc = out_reserve(o, initial_size(0, in_len, o->limit));
    if (rc != 0) return rc;
    return unzstd_stream(dctx, in, in_len, o, err, err_len);
}

/* Block snappy: the declared length is checked against the bound and against what
 * the input could possibly produce before anything is allocated. */
static int unsnappy(const uint8_t *in, size_t in_len, out_buf_t *o, char *err, size_t err_len)
{
    size_t n = 0;
    if (snappy_uncompressed_length((const char *)in, in_len, &n) != SNAPPY_OK) {
        set_err(err, err_len, "snappy: invalid length header");
        return SY_EINVAL;
    }
    if (n >= o->limit) {
        o->too_large = true;
        return SY_ENOMEM;
    }
    if (n / SY__SNAPPY_MAX_RATIO > in_len) {
        set_err(err, err_len, "snappy: declared length %zu is impossible for %zu bytes of input", n,
                in_len);
        return SY_EINVAL;
    }
    int rc = out_reserve(o, n ? n : 1);
    if (rc != 0) return rc;
    size_t got = o->cap;
    if (snappy_uncompress((const char *)in, in_len, (char *)o->data, &got) != SNAPPY_OK ||
        got != n) {
        set_err(err, err_len, "snappy: invalid or truncated compressed data");
        return SY_EINVAL;
    }
    o->len = got;
    return 0;
}

int syc_decompress(syc_encoding_t encoding, const uint8_t *in, size_t in_len, size_t max_out,
                   syc_alloc_fn alloc, void *ctx, uint8_t **out, size_t *out_len, char *err,
                   size_t err_len)
{
    out_buf_t o = {alloc, ctx, NULL, 0, 0, max_out == SIZE_MAX ? SIZE_MAX : max_out + 1, false};
    size_t hint = 0;
    int rc;

    *out = NULL;
    *out_len = 0;
    if (err && err_len) err[0] = '\0';
    switch (encoding) {
    case SYC_ENCODING_GZIP:
        /* The trailer's ISIZE is the size of the last member modulo 2^32, sent by
         * the client: a hint for the first allocation, never trusted beyond the
         * bound nor beyond what DEFLATE can expand the input to. */
        if (in_len >= 18)
            hint = (size_t)in[in_len - 4] | (size_t)in[in_len - 3] << 8 |
                   (size_t)in[in_len - 2] << 16 | (size_t)in[in_len - 1] << 24;
        if ((rc = out_reserve(&o, initial_size(hint, in_len, o.limit))) != 0) break;
        rc = ld_all(libdeflate_gzip_decompress_ex, true, in, in_len, &o, "gzip", err, err_len);
        break;
    case SYC_ENCODING_DEFLATE:
        if ((rc = out_reserve(&o, initial_size(0, in_len, o.limit))) != 0) break;
        /* RFC 9110 "deflate" is a zlib stream, but raw deflate is common too: a
         * zlib header has a checksum that raw data rarely passes. */
        if (in_len >= 2 && (in[0] & 0x0f) == 8 && ((in[0] << 8) | in[1]) % 31 == 0)
            rc = ld_all(libdeflate_zlib_decompress_ex, false, in, in_len, &o, "deflate", err,
                        err_len);
        else
            rc = ld_all(libdeflate_deflate_decompress_ex, false, in, in_len, &o, "deflate", err,
                        err_len);
        break;
    case SYC_ENCODING_ZSTD:
        rc = unzstd_all(in, in_len, &o, err, err_len);
        break;
    case SYC_ENCODING_SNAPPY:
        rc = unsnappy(in, in_len, &o, err, err_len);
        break;
    default:
        set_err(err, err_len, "unsupported content encoding");
        return SY_EINVAL;
    }
    if (rc == SY_ENOMEM && o.too_large)
        set_err(err, err_len, "decompressed body is larger than the limit of %zu bytes", max_out);
    else if (rc == SY_ENOMEM && (!err || !err[0]))
        set_err(err, err_len, "out of memory while decompressing");
    if (rc != 0) return rc;
    *out = o.data;
    *out_len = o.len;
    return 0;
}

/* ---- compression ----------------------------------------------------------------- */

int syc_compress_default_level(syc_encoding_t encoding)
{
    switch (encoding) {
    case SYC_ENCODING_GZIP:
    case SYC_ENCODING_DEFLATE:
    case SYC_ENCODING_ZSTD:
        return 1;
    default:
        return 0;
    }
}

int syc_compress_level_check(syc_encoding_t encoding, int level, char *err, size_t err_len)
{
    bool ok;
    switch (encoding) {
    case SYC_ENCODING_GZIP:
    case SYC_ENCODING_DEFLATE:
        ok = level >= -1 && level < SY__LD_LEVELS;
        break;
    case SYC_ENCODING_ZSTD:
        ok = level >= -1 && level <= ZSTD_maxCLevel();
        break;
    default:
        ok = level == 0;
        break;
    }
    if (ok) return 0;
    switch (encoding) {
    case SYC_ENCODING_GZIP:
    case SYC_ENCODING_DEFLATE:
        set_err(err, err_len, "invalid compression level %d for %s: 1 to 12, or -1 or 0 (default)",
                level, syc_encoding_name(encoding));
        break;
    case SYC_ENCODING_ZSTD:
        set_err(err, err_len,
                "invalid compression level %d for zstd: 1 to %d, or -1 or 0 (default)", level,
                ZSTD_maxCLevel());
        break;
    default:
        set_err(err, err_len, "compression level %d is not supported for %s", level,
                syc_encoding_name(encoding));
        break;
    }
    return SY_EINVAL;
}

static int effective_level(syc_encoding_t encoding, int level)
{
    return level <= 0 ? syc_compress_default_level(encoding) : level;
}

static int ld_compress(syc_encoding_t encoding, int level, size_t prefix, const uint8_t *in,
                       size_t len, uint8_t **out, size_t *out_len)
{
    tl_ctx_t *t = tl_get();
    if (!t) return SY_ENOMEM;
    if (!t->comp[level] && !(t->comp[level] = libdeflate_alloc_compressor(level))) return SY_ENOMEM;
    struct libdeflate_compressor *c = t->comp[level];
    bool gzip = encoding == SYC_ENCODING_GZIP;
    size_t bound =
        gzip ? libdeflate_gzip_compress_bound(c, len) : libdeflate_zlib_compress_bound(c, len);
    uint8_t *buf = malloc(prefix + bound);
    if (!buf) return SY_ENOMEM;
    size_t n = gzip ? libdeflate_gzip_compress(c, in, len, buf + prefix, bound)
                    : libdeflate_zlib_compress(c, in, len, buf + prefix, bound);
    if (n == 0) {
        free(buf);
        return SY_ENOMEM;
    }
    *out = buf;
    *out_len = prefix + n;
    return 0;
}

static int zstd_compress(int level, size_t prefix, const uint8_t *in, size_t len, uint8_t **out,
                         size_t *out_len)
{
    tl_ctx_t *t = tl_get();
    if (!t || (!t->zc && !(t->zc = ZSTD_createCCtx()))) return SY_ENOMEM;
    size_t bound = ZSTD_compressBound(len);
    uint8_t *buf = malloc(prefix + bound);
    if (!buf) return SY_ENOMEM;
    size_t n = ZSTD_compressCCtx(t->zc, buf + prefix, bound, in, len, level);
    if (ZSTD_isError(n)) {
        free(buf);
        return SY_ENOMEM;
    }
    *out = buf;
    *out_len = prefix + n;
    return 0;
}

static int snappy_compress_into(size_t prefix, const uint8_t *in, size_t len, uint8_t **out,
                                size_t *out_len)
{
    size_t bound = snappy_max_compressed_length(len);
    uint8_t *buf = malloc(prefix + bound);
    if (!buf) return SY_ENOMEM;
    size_t n = bound;
    if (snappy_compress((const char *)in, len, (char *)buf + prefix, &n) != SNAPPY_OK) {
        free(buf);
        return SY_ENOMEM;
    }
    *out = buf;
    *out_len = prefix + n;
    return 0;
}

int syc_compress(syc_encoding_t encoding, int level, size_t prefix, const uint8_t *in, size_t len,
                 uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (syc_compress_level_check(encoding, level, NULL, 0) != 0) return SY_EINVAL;
    level = effective_level(encoding, level);
    switch (encoding) {
    case SYC_ENCODING_GZIP:
    case SYC_ENCODING_DEFLATE:
        return ld_compress(encoding, level, prefix, in, len, out, out_len);
    case SYC_ENCODING_ZSTD:
        return zstd_compress(level, prefix, in, len, out, out_len);
    case SYC_ENCODING_SNAPPY:
        return snappy_compress_into(prefix, in, len, out, out_len);
    default:
        return SY_EINVAL;
    }
}
