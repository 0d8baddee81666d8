/*
 * compress.h - compression and decompression of whole buffers (HTTP
 * Content-Encoding, gRPC grpc-encoding): gzip, zlib and raw deflate through
 * libdeflate, zstd through libzstd, block snappy through libsnappy. No streaming:
 * every request is in hand whole, so zlib's streaming interface is not used.
 * Compressor and decompressor contexts are kept per thread and reused.
 *
 * Decompressed output goes into memory from a caller's allocator that is never asked to free
 * (a batch arena), so that a decompressed body lands where it will live. The
 * decompressed size is bounded by the caller: a body that would grow past the
 * bound is refused before more than the bound (plus one byte) is produced.
 */
#ifndef SY_COMPRESS_H
#define SY_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum syc_encoding_e {
    SYC_ENCODING_IDENTITY = 0,
    SYC_ENCODING_GZIP = 1,
    SYC_ENCODING_DEFLATE = 2, /* zlib stream (RFC 1950), raw deflate also accepted */
    SYC_ENCODING_ZSTD = 3,
    SYC_ENCODING_SNAPPY = 4, /* the block format (not x-snappy-framed) */
    SYC_ENCODING_UNKNOWN = -1,
} syc_encoding_t;

/* Allocates `size` bytes that stay valid as long as the caller needs them; never
 * freed piecewise. Returns NULL when out of memory or over the caller's bound. */
typedef void *(*syc_alloc_fn)(void *ctx, size_t size);

/* Maps a Content-Encoding header value (NULL, "", "identity", "gzip", "x-gzip",
 * "deflate", "zlib", "zstd", "snappy", case-insensitive, surrounding blanks ignored) to an
 * encoding. */
syc_encoding_t syc_encoding_parse(const char *content_encoding);

/* The name of an encoding, for messages ("gzip"). */
const char *syc_encoding_name(syc_encoding_t encoding);
/* Whether two streams of `encoding` written back to back are one stream of their
 * contents back to back (gzip members, zstd frames): the formats a batch keeps
 * as its compressed twin (batch_set_compressed) and sends merged as it came. */
static inline bool syc_encoding_twin(syc_encoding_t encoding)
{
    return encoding == SYC_ENCODING_GZIP || encoding == SYC_ENCODING_ZSTD;
}

/*
 * Decompresses in[0..in_len) of `encoding` (not identity) into memory from
 * alloc(ctx, ...), setting *out and *out_len. Returns 0; SY_EINVAL with a sentence
 * in err when the data is corrupt, truncated or of an unsupported encoding; or
 * SY_ENOMEM when the output would exceed max_out bytes or an allocation fails.
 * Growing the output may allocate more than once (the earlier blocks are
 * abandoned to the allocator), so the allocator's use is at most about 2 x max_out.
 */
int syc_decompress(syc_encoding_t encoding, const uint8_t *in, size_t in_len, size_t max_out,
                   syc_alloc_fn alloc, void *ctx, uint8_t **out, size_t *out_len, char *err,
                   size_t err_len);

/* ---- compression ------------------------------------------------------------ */

/* The level used when none is configured (0), chosen by measurement
 * (docs/benchmarks.md, "Compression codecs"): 1 for gzip/deflate (libdeflate's
 * level 1: 3x the speed of its level 6 for 10 % more bytes) and for zstd. */
int syc_compress_default_level(syc_encoding_t encoding);

/*
 * Checks a configured level for an encoding: 0 means the default; gzip and
 * deflate take 1..12 (libdeflate's levels; 1..9 mean what they mean to zlib) and
 * -1 (zlib's "default compression"); zstd takes 1..22 and -1; snappy only 0.
 * Returns 0 or SY_EINVAL with a sentence in err.
 */
int syc_compress_level_check(syc_encoding_t encoding, int level, char *err, size_t err_len);

/*
 * Compresses in[0..len) with `encoding` (gzip, deflate = zlib format, zstd,
 * snappy) at `level` (0: the default) into a new malloc() buffer that starts with
 * `prefix` uninitialised bytes (room for a gRPC frame header). Sets *out and
 * *out_len (prefix included). Returns 0, SY_EINVAL (unsupported encoding or
 * level) or SY_ENOMEM. Uses this thread's compressor for the level, kept for reuse.
 */
int syc_compress(syc_encoding_t encoding, int level, size_t prefix, const uint8_t *in, size_t len,
                 uint8_t **out, size_t *out_len);

#endif
