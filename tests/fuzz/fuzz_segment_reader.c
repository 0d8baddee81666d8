/*
 * fuzz_segment_reader.c - libFuzzer target for the reader of file_storage's segment
 * files (plugins/common/segment.c), which reads whatever a crash or a damaged disk
 * left behind.
 *
 * The input's first 8 bytes (little endian) are the segment's first id, the rest is
 * the segment file. Invariants checked (abort on violation): every record handed
 * out lies inside the buffer, does not overlap the one before, has an id above the
 * one before (and not below the first id) and a checksum that matches when computed
 * again; writing the records out again with syc_seg_header() and walking that gives
 * the same records with nothing skipped.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.segment_reader.corpus).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "segment.h"

#define FUZZ_MAX_RECORDS 4096u

typedef struct seen_s {
    const uint8_t *buf;
    size_t len;
    uint64_t first_id;
    syc_seg_rec_t rec[FUZZ_MAX_RECORDS];
    size_t n;
} seen_t;

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "invariant violated: %s\n", what);
        abort();
    }
}

static void on_record(void *arg, const syc_seg_rec_t *rec)
{
    seen_t *s = arg;
    check(rec->offset + SYC_SEG_HEADER == rec->data_offset, "data follows the header");
    check(rec->data_offset <= s->len && rec->len <= s->len - rec->data_offset, "inside");
    if (s->n) {
        const syc_seg_rec_t *prev = &s->rec[s->n - 1];
        check(rec->offset >= prev->data_offset + prev->len, "no overlap");
        check(rec->id > prev->id, "ids grow");
    } else {
        check(s->first_id == 0 || rec->id >= s->first_id, "id not below the first");
    }
    size_t dlen;
    uint32_t crc;
    uint64_t id, weight;
    check(syc_seg_parse_header(s->buf + rec->offset, &dlen, &crc, &id, &weight) == SYC_SEG_RECORD,
          "header parses");
    check(dlen == rec->len && id == rec->id && weight == rec->weight, "header agrees");
    check(syc_seg_crc(s->buf + rec->offset, s->buf + rec->data_offset, rec->len) == crc,
          "checksum matches");
    if (s->n < FUZZ_MAX_RECORDS) s->rec[s->n++] = *rec;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 8) return 0;
    uint64_t first_id = 0;
    for (int i = 7; i >= 0; i--)
        first_id = first_id << 8 | data[i];
    seen_t *s = calloc(1, sizeof(*s));
    if (!s) return 0;
    s->buf = data + 8;
    s->len = size - 8;
    s->first_id = first_id;
    uint64_t skipped = syc_seg_walk(s->buf, s->len, first_id, on_record, s);
    check(skipped <= s->len, "skipped count bounded");

    /* Written out again, the records read back whole. */
    if (s->n < FUZZ_MAX_RECORDS) {
        size_t total = 0;
        for (size_t i = 0; i < s->n; i++)
            total += SYC_SEG_HEADER + s->rec[i].len;
        uint8_t *out = malloc(total ? total : 1);
        if (out) {
            size_t pos = 0;
            for (size_t i = 0; i < s->n; i++) {
                syc_seg_header(out + pos, s->rec[i].id, s->rec[i].weight,
                               s->buf + s->rec[i].data_offset, s->rec[i].len);
                memcpy(out + pos + SYC_SEG_HEADER, s->buf + s->rec[i].data_offset, s->rec[i].len);
                pos += SYC_SEG_HEADER + s->rec[i].len;
            }
            seen_t *again = calloc(1, sizeof(*again));
            if (again) {
                again->buf = out;
                again->len = total;
                again->first_id = first_id;
                check(syc_seg_walk(out, total, first_id, on_record, again) == 0,
                      "a clean copy has nothing to skip");
                check(again->n == s->n, "a clean copy has every record");
                for (size_t i = 0; i < s->n; i++)
                    check(again->rec[i].id == s->rec[i].id && again->rec[i].len == s->rec[i].len,
                          "the same records");
                free(again);
            }
            free(out);
        }
    }
    free(s);
    return 0;
}
