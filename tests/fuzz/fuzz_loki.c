/*
 * Fuzz target: the loki exporter's translation (plugins/exporters/loki: labels from
 * the hints, the json / logfmt / raw lines, tenants) and its two bodies, over any
 * OTLP logs request the wire walk accepts.
 *
 * Input: byte 0 picks the default labels (bits 0-3: exporter, job, instance,
 * level); the rest is an ExportLogsServiceRequest. Properties:
 *  - translation succeeds, and every record is either an entry or counted as left
 *    out (entries + dropped == the batch's items);
 *  - every stream has a labels string {..} with at least one label, and its
 *    entries are sorted by time;
 *  - the protobuf body walks as a logproto.PushRequest (streams = 1 { labels = 1,
 *    entries = 2 { timestamp = 1 { seconds = 1, nanos = 2 }, line = 2 } }) with
 *    the same number of streams and entries, nanos in 0..999999999, and every
 *    string in it (labels, lines) valid UTF-8;
 *  - the JSON body is valid UTF-8 and framed as {"streams":[...]}.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "engine.h"
#include "loki_out.h"
#include "utf8.h"

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_loki: property violated: %s\n", what);
        abort();
    }
}

typedef struct rd_s {
    const uint8_t *p, *end;
} rd_t;

static uint64_t rd_varint(rd_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        check(r->p < r->end, "a varint ends inside its message");
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    check(0, "a varint of at most 10 bytes");
    return 0;
}

/* The next field: its number and, for a length-delimited one, its bytes. */
static unsigned rd_field(rd_t *r, rd_t *sub, uint64_t *value)
{
    uint64_t tag = rd_varint(r);
    unsigned wt = (unsigned)(tag & 7);
    if (wt == 2) {
        uint64_t len = rd_varint(r);
        check(len <= (uint64_t)(r->end - r->p), "a length prefix within its message");
        *sub = (rd_t){r->p, r->p + len};
        r->p += len;
    } else {
        check(wt == 0, "only varints and length-delimited fields are written");
        *value = rd_varint(r);
    }
    return (unsigned)(tag >> 3) * 8 + wt;
}

static void walk_proto(const uint8_t *p, size_t len, size_t want_streams, size_t want_entries)
{
    if (!p) p = (const uint8_t *)""; /* nothing written: no buffer */
    rd_t r = {p, p + len}, s, e, t, x;
    uint64_t v;
    size_t streams = 0, entries = 0;
    while (r.p < r.end) {
        check(rd_field(&r, &s, &v) == 1 * 8 + 2, "PushRequest holds streams (1) only");
        streams++;
        bool labels = false;
        while (s.p < s.end) {
            unsigned f = rd_field(&s, &e, &v);
            if (f == 1 * 8 + 2) {
                check(!labels, "one labels string a stream");
                labels = true;
                check(syc_utf8_valid(e.p, (size_t)(e.end - e.p)), "labels are UTF-8");
                check(e.end - e.p >= 5 && e.p[0] == '{' && e.end[-1] == '}', "labels {..=..}");
                continue;
            }
            check(f == 2 * 8 + 2, "StreamAdapter holds labels (1) and entries (2)");
            entries++;
            while (e.p < e.end) {
                unsigned g = rd_field(&e, &t, &v);
                if (g == 2 * 8 + 2) {
                    check(syc_utf8_valid(t.p, (size_t)(t.end - t.p)), "a line is UTF-8");
                    continue;
                }
                check(g == 1 * 8 + 2, "EntryAdapter holds timestamp (1) and line (2)");
                while (t.p < t.end) {
                    unsigned h = rd_field(&t, &x, &v);
                    check(h == 1 * 8 || h == 2 * 8, "Timestamp holds seconds and nanos");
                    if (h == 2 * 8) check(v > 0 && v < 1000000000, "nanos in 1..999999999");
                }
            }
        }
        check(labels, "every stream has labels");
    }
    check(streams == want_streams, "the protobuf body holds every stream");
    check(entries == want_entries, "the protobuf body holds every entry");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    lk_defaults_t d = {data[0] & 1, data[0] & 2, data[0] & 4, data[0] & 8};
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    sy_batch_t *b = sy__batch_new(SY_SIGNAL_LOGS, "fuzz");
    uint8_t *copy = sy__batch_alloc(b, len ? len : 1);
    memcpy(copy, body, len);
    if (sy__batch_set_encoded(b, copy, len, NULL, 0) < 0) {
        sy__batch_release(b);
        return 0;
    }
    const sy_host_api_t *api = sy__host_api();
    lk_push_t push = {0};
    check(lk_translate(api, b, &d, &push) == SY_OK, "translation succeeds");
    check(push.entries + push.dropped == sy__batch_items(b), "every record sent or counted");
    for (size_t i = 0; i < push.n; i++) {
        const lk_stream_t *st = &push.streams[i];
        check(st->n > 0, "no empty stream");
        check(st->labels_len >= 5, "at least one label");
        for (size_t j = 1; j < st->n; j++)
            check(st->entries[j - 1].ts_ns <= st->entries[j].ts_ns, "entries sorted by time");
    }
    syc_buf_t pb = {0}, js = {0};
    check(lk_write_proto(&push, &pb) == SY_OK, "the protobuf body is written");
    walk_proto((const uint8_t *)pb.p, pb.len, push.n, push.entries);
    check(lk_write_json(&push, &js) == SY_OK, "the JSON body is written");
    check(js.p && syc_utf8_valid((const uint8_t *)js.p, js.len), "the JSON body is UTF-8");
    check(js.len >= 14 && !memcmp(js.p, "{\"streams\":[", 12) &&
              !memcmp(js.p + js.len - 2, "]}", 2),
          "the JSON body is {\"streams\":[...]}");
    free(pb.p);
    free(js.p);
    lk_push_free(&push);
    sy__batch_release(b);
    return 0;
}
