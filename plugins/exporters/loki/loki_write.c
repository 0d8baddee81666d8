/*
 * loki_write.c - Loki streams (loki_out.c) as the two push bodies Loki takes on
 * POST /loki/api/v1/push:
 *
 * - logproto.PushRequest (proto/loki/push.proto): streams = 1 (StreamAdapter:
 *   labels = 1, entries = 2 (EntryAdapter: timestamp = 1 (google.protobuf.Timestamp:
 *   seconds = 1, nanos = 2), line = 2)). Compressed by the caller (snappy).
 * - JSON: {"streams":[{"stream":{"label":"value"},"values":[["<unix ns>","line"]]}]}.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "loki_out.h"

/* ---- protobuf ---------------------------------------------------------------------- */

static void split_ts(int64_t ns, int64_t *sec, int32_t *nanos)
{
    *sec = ns / 1000000000;
    *nanos = (int32_t)(ns % 1000000000);
    if (*nanos < 0) {
        *nanos += 1000000000;
        (*sec)--;
    }
}

/* The sizes of a Timestamp and of an EntryAdapter, without their own headers. */
static size_t ts_size(int64_t ns)
{
    int64_t sec;
    int32_t nanos;
    split_ts(ns, &sec, &nanos);
    return (sec ? 1 + syc_varint_size((uint64_t)sec) : 0) +
           (nanos ? 1 + syc_varint_size((uint64_t)(int64_t)nanos) : 0);
}

static size_t entry_size(const lk_entry_t *e)
{
    size_t t = ts_size(e->ts_ns);
    return 1 + syc_varint_size(t) + t +
           (e->line_len ? 1 + syc_varint_size(e->line_len) + e->line_len : 0);
}

static size_t stream_size(const lk_stream_t *s)
{
    size_t n = s->labels_len ? 1 + syc_varint_size(s->labels_len) + s->labels_len : 0;
    for (size_t i = 0; i < s->n; i++) {
        size_t e = entry_size(&s->entries[i]);
        n += 1 + syc_varint_size(e) + e;
    }
    return n;
}

int lk_write_proto(const lk_push_t *p, syc_buf_t *b)
{
    const char *text = p->text.p;
    for (size_t i = 0; i < p->n; i++) {
        const lk_stream_t *s = &p->streams[i];
        if (syc_buf_put_ld(b, 1, stream_size(s)) < 0) return SY_ENOMEM;
        if (s->labels_len && (syc_buf_put_ld(b, 1, s->labels_len) < 0 ||
                              lk_put(b, text + s->labels_off, s->labels_len) < 0))
            return SY_ENOMEM;
        for (size_t j = 0; j < s->n; j++) {
            const lk_entry_t *e = &s->entries[j];
            int64_t sec;
            int32_t nanos;
            split_ts(e->ts_ns, &sec, &nanos);
            if (syc_buf_put_ld(b, 2, entry_size(e)) < 0 ||
                syc_buf_put_ld(b, 1, ts_size(e->ts_ns)) < 0)
                return SY_ENOMEM;
            if (sec &&
                (syc_buf_put_varint(b, 1 << 3 | 0) < 0 || syc_buf_put_varint(b, (uint64_t)sec) < 0))
                return SY_ENOMEM;
            if (nanos && (syc_buf_put_varint(b, 2 << 3 | 0) < 0 ||
                          syc_buf_put_varint(b, (uint64_t)(int64_t)nanos) < 0))
                return SY_ENOMEM;
            if (e->line_len && (syc_buf_put_ld(b, 2, e->line_len) < 0 ||
                                lk_put(b, text + e->line_off, e->line_len) < 0))
                return SY_ENOMEM;
        }
    }
    return SY_OK;
}

/* ---- JSON ------------------------------------------------------------------------------ */

static int put_str(syc_buf_t *b, const char *s)
{
    return lk_put(b, s, strlen(s));
}

int lk_write_json(const lk_push_t *p, syc_buf_t *b)
{
    const char *text = p->text.p;
    if (put_str(b, "{\"streams\":[") < 0) return SY_ENOMEM;
    for (size_t i = 0; i < p->n; i++) {
        const lk_stream_t *s = &p->streams[i];
        if ((i && put_str(b, ",") < 0) || put_str(b, "{\"stream\":") < 0 ||
            lk_put(b, text + s->jlabels_off, s->jlabels_len) < 0 || put_str(b, ",\"values\":[") < 0)
            return SY_ENOMEM;
        for (size_t j = 0; j < s->n; j++) {
            const lk_entry_t *e = &s->entries[j];
            char ts[32];
            snprintf(ts, sizeof(ts), "%s[\"%" PRId64 "\",", j ? "," : "", e->ts_ns);
            if (put_str(b, ts) < 0 ||
                lk_json_str(b, text ? text + e->line_off : "", e->line_len) < 0 ||
                put_str(b, "]") < 0)
                return SY_ENOMEM;
        }
        if (put_str(b, "]}") < 0) return SY_ENOMEM;
    }
    return put_str(b, "]}");
}
