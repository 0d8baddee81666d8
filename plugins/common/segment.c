/*
 * segment.c - reading and writing file_storage's segment records (see segment.h).
 */
#include "segment.h"

#include <string.h>

#include <zlib.h>

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

uint32_t syc_seg_crc(const uint8_t hdr[SYC_SEG_HEADER], const void *data, size_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, hdr + 8, SYC_SEG_META);
    /* zlib takes uInt lengths: feed large data in pieces. */
    const uint8_t *p = data;
    while (len) {
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}

void syc_seg_header(uint8_t hdr[SYC_SEG_HEADER], uint64_t id, uint64_t weight, const void *data,
                    size_t len)
{
    put32(hdr, (uint32_t)(len + SYC_SEG_META));
    put64(hdr + 8, id);
    put64(hdr + 16, weight);
    put32(hdr + 4, syc_seg_crc(hdr, data, len));
}

syc_seg_status_t syc_seg_parse_header(const uint8_t hdr[SYC_SEG_HEADER], size_t *len, uint32_t *crc,
                                      uint64_t *id, uint64_t *weight)
{
    uint32_t l = get32(hdr);
    if (l < SYC_SEG_META || l - SYC_SEG_META > SYC_SEG_MAX_DATA) return SYC_SEG_CORRUPT;
    *len = l - SYC_SEG_META;
    *crc = get32(hdr + 4);
    *id = get64(hdr + 8);
    *weight = get64(hdr + 16);
    return SYC_SEG_RECORD;
}

syc_seg_status_t syc_seg_next(const uint8_t *buf, size_t len, size_t pos, syc_seg_rec_t *rec)
{
    if (pos >= len) return SYC_SEG_END;
    if (len - pos < SYC_SEG_HEADER) return SYC_SEG_TRUNCATED;
    size_t dlen;
    uint32_t crc;
    uint64_t id, weight;
    if (syc_seg_parse_header(buf + pos, &dlen, &crc, &id, &weight) != SYC_SEG_RECORD)
        return SYC_SEG_CORRUPT;
    if (len - pos - SYC_SEG_HEADER < dlen) return SYC_SEG_TRUNCATED;
    if (syc_seg_crc(buf + pos, buf + pos + SYC_SEG_HEADER, dlen) != crc) return SYC_SEG_CORRUPT;
    rec->id = id;
    rec->weight = weight;
    rec->offset = pos;
    rec->data_offset = pos + SYC_SEG_HEADER;
    rec->len = dlen;
    return SYC_SEG_RECORD;
}

size_t syc_seg_resync(const uint8_t *buf, size_t len, size_t pos, uint64_t after_id)
{
    syc_seg_rec_t rec;
    for (size_t p = pos + 1; p + SYC_SEG_HEADER <= len; p++) {
        /* A record that starts at p follows at most (p - pos) / 24 lost ones, so its id
         * is at most after_id + 1 + that: checking the id first keeps the search from
         * computing a checksum at almost every byte of a damaged stretch. */
        uint64_t id = get64(buf + p + 8);
        uint64_t most = after_id + 2 + (uint64_t)(p - pos) / SYC_SEG_HEADER;
        if (id <= after_id || id > most) continue;
        if (syc_seg_next(buf, len, p, &rec) == SYC_SEG_RECORD) return p;
    }
    return len;
}

uint64_t syc_seg_walk(const uint8_t *buf, size_t len, uint64_t first_id,
                      void (*fn)(void *arg, const syc_seg_rec_t *rec), void *arg)
{
    uint64_t skipped = 0, last_id = first_id ? first_id - 1 : 0;
    size_t pos = 0;
    for (;;) {
        syc_seg_rec_t rec;
        syc_seg_status_t s = syc_seg_next(buf, len, pos, &rec);
        if (s == SYC_SEG_END) break;
        if (s == SYC_SEG_RECORD && rec.id <= last_id) s = SYC_SEG_CORRUPT; /* out of order */
        if (s == SYC_SEG_RECORD) {
            if (fn) fn(arg, &rec);
            last_id = rec.id;
            pos = rec.data_offset + rec.len;
            continue;
        }
        skipped++;
        if (s == SYC_SEG_TRUNCATED) {
            /* A torn tail, or a damaged length that points past the end: a whole
             * record may still follow. */
            size_t next = syc_seg_resync(buf, len, pos, last_id);
            if (next >= len) break;
            pos = next;
            continue;
        }
        pos = syc_seg_resync(buf, len, pos, last_id);
    }
    return skipped;
}
