/*
 * prom_buf.h - a growable, bounded text buffer and the number formats of the
 * Prometheus exposition formats, shared by the name translation, the store and the
 * renderer of the `prometheus` exporter.
 *
 * A buffer that fails (out of memory, or over its bound) stays failed: further
 * appends do nothing and `failed` is true, so a caller checks once at the end.
 */
#ifndef PROM_BUF_H
#define PROM_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct prom_buf_s {
    char *data; /* NUL-terminated while not failed; owned by the buffer */
    size_t len;
    size_t cap;
    size_t max; /* the largest len allowed; 0 means 1 GiB */
    bool failed;
} prom_buf_t;

void prom_buf_init(prom_buf_t *b, size_t max);
void prom_buf_free(prom_buf_t *b);
/* Empties the buffer and clears `failed`, keeping its memory. */
void prom_buf_reset(prom_buf_t *b);
/* Cuts the buffer back to `len` bytes (len <= b->len). */
void prom_buf_truncate(prom_buf_t *b, size_t len);
void prom_buf_put(prom_buf_t *b, const void *p, size_t n);
void prom_buf_str(prom_buf_t *b, const char *s);
void prom_buf_char(prom_buf_t *b, char c);
void prom_buf_u64(prom_buf_t *b, uint64_t v);
void prom_buf_i64(prom_buf_t *b, int64_t v);
/* Hands the data over to the caller (malloc'ed, NUL-terminated) and empties the
 * buffer; NULL if the buffer failed. */
char *prom_buf_take(prom_buf_t *b, size_t *len);

/* A double as Go's strconv.FormatFloat(v, 'g', -1, 64) writes it, which is what
 * the Prometheus text format 0.0.4 uses: "45", "0.25", "1e+06", "NaN", "+Inf". */
void prom_buf_float_text(prom_buf_t *b, double v);
/* A double as OpenMetrics 1.0 writes it (client_golang): the text form with ".0"
 * added when it has neither a '.' nor an exponent ("45.0", "0.25", "1e+06"). */
void prom_buf_float_om(prom_buf_t *b, double v);
/* A double as the collector's pcommon Value.AsString() writes it (ES6 style):
 * "0.5", "1e+21", "1e-7"; used for double attribute values. */
void prom_buf_float_attr(prom_buf_t *b, double v);

/* Length of the valid UTF-8 sequence at s (at most n > 0 bytes), or 0 if the bytes
 * there are not valid UTF-8. */
size_t prom_utf8_len(const unsigned char *s, size_t n);

/* Appends `s` (n bytes) with the invalid UTF-8 sequences replaced by U+FFFD and,
 * when `quote` is set, `"` escaped; backslash and newline are always escaped. This
 * is the escaping of label values (quote) and of HELP text. */
void prom_buf_escaped(prom_buf_t *b, const char *s, size_t n, bool quote);

#endif
