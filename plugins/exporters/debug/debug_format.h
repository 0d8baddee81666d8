/*
 * debug_format.h - the text the `debug` exporter writes, formatted into a buffer.
 *
 * The formats are the collector's debugexporter's: the summary of every verbosity,
 * the one-line-per-item text of `normal`, and the otlptext dump of `detailed`,
 * with values, times and numbers spelled as Go prints them. `normal` and
 * `detailed` read the request through the host's view (ABI 1.1): every string is
 * a pointer and a length into the encoded bytes, so one holding a NUL byte is
 * written whole (the NUL as the six characters `\u0000`). Everything here is
 * read-only formatting and may run on any thread.
 */
#ifndef SY_DEBUG_FORMAT_H
#define SY_DEBUG_FORMAT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

/* A growable text buffer with an upper bound. Once the bound is reached or an
 * allocation fails, further text is dropped and `truncated` is set. */
typedef struct dbg_buf_s {
    char *data; /* NUL-terminated while not NULL */
    size_t len;
    size_t cap;
    size_t limit;
    bool truncated;
    const sy_host_api_t *api; /* the view functions the formatters read through */
} dbg_buf_t;

void dbg_buf_init(dbg_buf_t *b, size_t limit);
void dbg_buf_free(dbg_buf_t *b);
void dbg_buf_put(dbg_buf_t *b, const char *s, size_t n);
void dbg_buf_puts(dbg_buf_t *b, const char *s);
void dbg_buf_printf(dbg_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Writes the summary of a request as the collector's log line spells it, e.g.
 * `Traces {"resource spans": 1, "spans": 2}`, into out (always NUL-terminated).
 */
void dbg_summary(sy_signal_t signal, const void *request, char *out, size_t out_len);
/* The same summary from the encoded request, without decoding it (`items` is the
 * host's count). Returns 0, or -1 if the bytes do not parse. */
int dbg_summary_encoded(sy_signal_t signal, uint64_t items, const uint8_t *bytes, size_t len,
                        char *out, size_t out_len);

/* The summary of a request read through a view (b->api set). */
void dbg_summary_view(dbg_buf_t *b, sy_signal_t signal, sy_view_t *view, char *out, size_t out_len);

/* Appends the `normal` verbosity text of a request (one line per item), read
 * through a view of it (b->api set). */
void dbg_format_normal(dbg_buf_t *b, sy_signal_t signal, sy_view_t *view);

/* Appends the `detailed` verbosity text of a request (the otlptext dump), read
 * through a view of it; `bytes` is the encoded request the view reads (for the
 * resources' entity refs, which the view does not expose). */
void dbg_format_detailed(dbg_buf_t *b, sy_signal_t signal, sy_view_t *view, const uint8_t *bytes,
                         size_t len);

#endif
