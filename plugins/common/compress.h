/*
 * compress.h - decompression of HTTP request bodies (Content-Encoding).
 *
 * Output goes into memory from a caller's allocator that is never asked to free
 * (a batch arena), so that a decompressed body lands where it will live. The
 * decompressed size is bounded by the caller: a body that would grow past the
 * bound is refused before more than the bound (plus one byte) is produced.
 */
#ifndef SY_COMPRESS_H
#define SY_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

typedef enum syc_encoding_e {
    SYC_ENCODING_IDENTITY = 0,
    SYC_ENCODING_GZIP = 1,
    SYC_ENCODING_DEFLATE = 2, /* zlib stream (RFC 1950), raw deflate also accepted */
    SYC_ENCODING_ZSTD = 3,
    SYC_ENCODING_UNKNOWN = -1,
} syc_encoding_t;

/* Allocates `size` bytes that stay valid as long as the caller needs them; never
 * freed piecewise. Returns NULL when out of memory or over the caller's bound. */
typedef void *(*syc_alloc_fn)(void *ctx, size_t size);

/* Maps a Content-Encoding header value (NULL, "", "identity", "gzip", "x-gzip",
 * "deflate", "zstd", case-insensitive, surrounding blanks ignored) to an encoding. */
syc_encoding_t syc_encoding_parse(const char *content_encoding);

/* The name of an encoding, for messages ("gzip"). */
const char *syc_encoding_name(syc_encoding_t encoding);

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

#endif
