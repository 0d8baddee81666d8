/*
 * segment.h - the record format of file_storage's segment files, kept apart from
 * the extension so that the fuzz target (tests/fuzz/fuzz_segment_reader.c) reads
 * segments with the same code.
 *
 * A segment file is a sequence of records, each
 *
 *   [len u32 LE][crc u32 LE][id u64 LE][weight u64 LE][data: len - 16 bytes]
 *
 * where crc is the CRC-32 (zlib's, ISO-HDLC) of the len bytes after it (id,
 * weight, data). Ids grow by one per record appended to the queue; a segment's
 * file name holds the id of its first record. Nothing else is in the file: a
 * torn write at a crash leaves a record cut short at the end, and a damaged byte
 * a record whose checksum fails; the reader skips both and, for a length that
 * cannot be right, looks for the next record whose checksum matches.
 */
#ifndef SY_SEGMENT_H
#define SY_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#define SYC_SEG_HEADER   24u        /* len, crc, id, weight */
#define SYC_SEG_META     16u        /* id and weight: the part of len before data */
#define SYC_SEG_MAX_DATA (1u << 30) /* the largest data one record may hold */

/* What syc_seg_next() found at a position. */
typedef enum syc_seg_status_e {
    SYC_SEG_RECORD = 0,    /* a whole record whose checksum matches */
    SYC_SEG_END = 1,       /* the end of the buffer, exactly */
    SYC_SEG_TRUNCATED = 2, /* a record cut short by the end of the buffer */
    SYC_SEG_CORRUPT = 3,   /* a length that cannot be, or a checksum that fails */
} syc_seg_status_t;

typedef struct syc_seg_rec_s {
    uint64_t id;
    uint64_t weight;
    size_t offset;      /* of the record's header in the buffer */
    size_t data_offset; /* of its data */
    size_t len;         /* of its data */
} syc_seg_rec_t;

/* Writes the header of a record of `data` (len bytes) into hdr. */
void syc_seg_header(uint8_t hdr[SYC_SEG_HEADER], uint64_t id, uint64_t weight, const void *data,
                    size_t len);

/* Reads the 24-byte header at hdr: the data length, the stored crc, id and
 * weight. Returns SYC_SEG_CORRUPT when the length is impossible. */
syc_seg_status_t syc_seg_parse_header(const uint8_t hdr[SYC_SEG_HEADER], size_t *len, uint32_t *crc,
                                      uint64_t *id, uint64_t *weight);

/* The checksum of a record: over the 16 bytes of id and weight in hdr, then data. */
uint32_t syc_seg_crc(const uint8_t hdr[SYC_SEG_HEADER], const void *data, size_t len);

/* Reads the record at buf[pos..len): fills *rec on SYC_SEG_RECORD. */
syc_seg_status_t syc_seg_next(const uint8_t *buf, size_t len, size_t pos, syc_seg_rec_t *rec);

/*
 * After a corrupt record at `pos`, the offset of the first whole record after it
 * whose checksum matches and whose id is greater than `after_id`; `len` when there
 * is none.
 */
size_t syc_seg_resync(const uint8_t *buf, size_t len, size_t pos, uint64_t after_id);

/* Walks a whole segment whose first record has id first_id (ids start at 1): calls
 * fn(arg, rec) for every good record in order and counts the records skipped
 * (corrupt ones and a truncated tail, each counted once per place where reading
 * broke off). Returns the skipped count. */
uint64_t syc_seg_walk(const uint8_t *buf, size_t len, uint64_t first_id,
                      void (*fn)(void *arg, const syc_seg_rec_t *rec), void *arg);

#endif
