/*
 * prom_buf.h - a growable, bounded text buffer and the number formats of the
 * Prometheus exposition formats, shared by the name translation (prom_names.h), the
 * `prometheus` exporter's store and renderer, and the `prometheusremotewrite` exporter.
 *
 * A buffer that fails (out of memory, or over its bound) stays failed: further
 * appends do nothing and `failed` is true, so a caller checks once at the end.
 */
#ifndef SYC_PROM_BUF_H
#define SYC_PROM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct syc_prom_buf_s {
    char *data; /* NUL-terminated while not failed; owned by the buffer */
    size_t len;
    size_t cap;
    size_t max; /* the largest len allowed; 0 means 1 GiB */
    bool failed;
} syc_prom_buf_t;

void syc_prom_buf_init(syc_prom_buf_t *b, size_t max);
void syc_prom_buf_free(syc_prom_buf_t *b);
/* Empties the buffer and clears `failed`, keeping its memory. */
void syc_prom_buf_reset(syc_prom_buf_t *b);
/* Cuts the buffer back to `len` bytes (len <= b->len). */
void syc_prom_buf_truncate(syc_prom_buf_t *b, size_t len);
void syc_prom_buf_put(syc_prom_buf_t *b, const void *p, size_t n);
/* Appends n bytes for the caller to write (binary encoders: one check for a whole
 * field); returns where they start, or NULL when the buffer fails. */
uint8_t *syc_prom_buf_extend(syc_prom_buf_t *b, size_t n);
void syc_prom_buf_str(syc_prom_buf_t *b, const char *s);
void syc_prom_buf_char(syc_prom_buf_t *b, char c);
void syc_prom_buf_u64(syc_prom_buf_t *b, uint64_t v);
void syc_prom_buf_i64(syc_prom_buf_t *b, int64_t v);
/* Hands the data over to the caller (malloc'ed, NUL-terminated) and empties the
 * buffer; NULL if the buffer failed. */
char *syc_prom_buf_take(syc_prom_buf_t *b, size_t *len);

/* A double as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, which is what
 * the Prometheus text format 0.0.4 uses: "45", "0.25", "1e+06", "NaN", "+Inf". */
void syc_prom_buf_float_text(syc_prom_buf_t *b, double v);
/* A double as OpenMetrics 1.0 writes it (client_golang): the text form with ".0"
 * added when it has neither a '.' nor an exponent ("45.0", "0.25", "1e+06"). */
void syc_prom_buf_float_om(syc_prom_buf_t *b, double v);
/* A double as the collector's pcommon Value.AsString() writes it (ES6 style):
 * "0.5", "1e+21", "1e-7"; used for double attribute values. */
void syc_prom_buf_float_attr(syc_prom_buf_t *b, double v);

/* Length of the valid UTF-8 sequence at s (at most n > 0 bytes), or 0 if the bytes
 * there are not valid UTF-8. */
size_t syc_prom_utf8_len(const unsigned char *s, size_t n);

/* Appends `s` (n bytes) with the invalid UTF-8 sequences replaced by U+FFFD and,
 * when `quote` is set, `"` escaped; backslash and newline are always escaped. This
 * is the escaping of label values (quote) and of HELP text. */
void syc_prom_buf_escaped(syc_prom_buf_t *b, const char *s, size_t n, bool quote);

#endif
