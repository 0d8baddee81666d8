/*
 * batch.h - the unit that moves through the router: one OTLP export request of one
 * signal, held as encoded protobuf bytes, as a decoded protobuf-c message, or both,
 * with every byte of it in the batch's own arena.
 *
 * The core-internal functions here are what the host API table (sy_host_api_t)
 * hands to plugins; see include/switchyard/plugin.h for the contracts.
 */
#ifndef SY_CORE_BATCH_H
#define SY_CORE_BATCH_H

#include <stdbool.h>

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <switchyard/plugin.h>

/* Bounds that protect the decoders: nesting of messages (AnyValue inside
 * AnyValue) and the total memory of one batch's arena. */
#define SY__PB_MAX_DEPTH    64
#define SY__BATCH_MAX_ARENA ((size_t)1 << 30)

/*
 * Bounds that keep every batch decodable, so that nothing acknowledged fails to
 * decode later. The measure is a batch's encoded bytes plus what protobuf-c would
 * allocate to decode them (sy__pb_walk's decoded_bytes, an upper bound). The
 * arena may waste at most as much as it hands out (a chunk's unused tail is
 * smaller than the allocation that did not fit), so a batch within half of
 * SY__BATCH_MAX_ARENA always decodes.
 *   SY__BATCH_MAX_DECODED: no merge makes a batch larger than this.
 *   SY__REQUEST_MAX_DECODED: batch_set_encoded() refuses a request larger than
 *   this (SY_ENOMEM; receivers answer 413 / RESOURCE_EXHAUSTED), which leaves
 *   room to merge at least two of the largest requests.
 */
#define SY__BATCH_MAX_DECODED   (SY__BATCH_MAX_ARENA / 2)
#define SY__REQUEST_MAX_DECODED (SY__BATCH_MAX_DECODED / 2)

/* The protobuf-c descriptor of the export request of `signal`. */
const ProtobufCMessageDescriptor *sy__signal_request_descriptor(sy_signal_t signal);
const char *sy__signal_name(sy_signal_t signal); /* "traces", "metrics", "logs" */

sy_batch_t *sy__batch_new(sy_signal_t signal, const char *origin);
void *sy__batch_alloc(sy_batch_t *b, size_t size);
ProtobufCAllocator *sy__batch_allocator(sy_batch_t *b);
int sy__batch_set_encoded(sy_batch_t *b, const uint8_t *data, size_t len, char *err,
                          size_t err_len);
int sy__batch_set_decoded(sy_batch_t *b, void *request);
/*
 * Whether b's encoded bytes are known good: they passed the validation walk with
 * no singular message field given twice (or were made by the core from such
 * bytes), so that a request the view builds from them by its own edits needs no
 * walk of its own (view_edit.c). False for bytes packed from a decoded request.
 */
bool sy__batch_encoded_trusted(const sy_batch_t *b);
/*
 * Makes data[0..len) b's content, like sy__batch_set_encoded(), but without the
 * validation walk: for bytes the view wrote from b's trusted bytes and values it
 * checked, holding `items` items and at most `occurrences` field occurrences
 * (UINT64_MAX: not known). Only the decoded-size bound is computed (from those;
 * by a field-by-field walk only when that bound is too coarse). Returns
 * 0, or SY_ENOMEM with a sentence in err when the request is too large.
 */
int sy__batch_set_trusted(sy_batch_t *b, const uint8_t *data, size_t len, uint64_t items,
                          uint64_t occurrences, char *err, size_t err_len);
/* At least as many field occurrences as b's encoded bytes hold (UINT64_MAX when
 * not known): what tightens the decoded-size bound of a request made from them. */
uint64_t sy__batch_occurrences(const sy_batch_t *b);
void sy__batch_retain(sy_batch_t *b);
void sy__batch_release(sy_batch_t *b);
void sy__batch_info(const sy_batch_t *b, sy_batch_info_t *info);
const void *sy__batch_request(sy_batch_t *b);
/* The decoded request for changing it, dropping the encoded form; NULL when the
 * batch is shared or does not decode. It does not check who asks: plugins reach
 * it through sy__cow_request_mut (cow.h), which does. */
void *sy__batch_request_mut(sy_batch_t *b);
void sy__batch_recount(sy_batch_t *b);
const uint8_t *sy__batch_encoded(sy_batch_t *b, size_t *len);
sy_batch_t *sy__batch_merge(const char *origin, sy_batch_t *const *batches, size_t n);
sy_batch_t *sy__batch_split(const char *origin, sy_batch_t **b, uint64_t max_items);
/* A private, deep copy of a shared batch, for a processor that mutates: its own
 * memory only, one reference, no parent. NULL on out of memory or when `b` cannot
 * be encoded. */
sy_batch_t *sy__batch_copy(sy_batch_t *b);
/* The encoded request as pieces written back to back (a merge's inputs, not
 * joined), as the host's batch_pieces() gives them: fills out[0..min(n, max)) and
 * returns n; 0 without an encoded form. */
size_t sy__batch_pieces(sy_batch_t *b, sy_piece_t *out, size_t max);
/* The compressed twin (the host's batch_set_compressed / batch_compressed_pieces,
 * ABI 1.7): see batch_internal.h and include/switchyard/plugin.h. */
int sy__batch_set_compressed(sy_batch_t *b, const char *encoding, const uint8_t *data, size_t len);
size_t sy__batch_compressed_pieces(sy_batch_t *b, const char *encoding, sy_piece_t *out,
                                   size_t max);
uint32_t sy__batch_refs(const sy_batch_t *b);
/* True when changing `b` in place could change what someone else sees: more than
 * one reference, or a piece of a split that shares its parent's structs (a parent
 * that pieces point into has their references, so more than one). The caller
 * holds a reference. */
bool sy__batch_is_shared(const sy_batch_t *b);
/* The ID of the instance that made it ("" when none); see cow.c. */
const char *sy__batch_origin(const sy_batch_t *b);
sy_signal_t sy__batch_signal(const sy_batch_t *b);
uint64_t sy__batch_items(const sy_batch_t *b);
/* Counts the batch's items on `m` when it is freed, unless called again with
 * NULL before then (see `refused_by` in batch_internal.h). Single owner only. */
void sy__batch_refused_by(sy_batch_t *b, sy_metric_t *m);
/*
 * The memory b holds now, in bytes: every chunk of its arena (its encoded request,
 * its decoded structs, whatever was built in it) plus the batch itself. A split
 * piece's parent is not included (whoever holds the parent counts it). Grows when
 * a form is made lazily; what the core queues weigh a batch by when it goes in.
 * Any thread holding a reference.
 */
size_t sy__batch_bytes(const sy_batch_t *b);

/* What one walk learned of a message. */
typedef struct sy__pb_stats_s {
    uint64_t items;         /* spans, data points or log records */
    uint64_t decoded_bytes; /* upper bound of protobuf-c's unpack into an arena */
    uint64_t occurrences;   /* field occurrences (tags) at every depth */
    bool decoded_exact;     /* decoded_bytes is the field-by-field estimate */
} sy__pb_stats_t;

/*
 * Walks encoded protobuf bytes of a message of type `desc` without decoding:
 * checks every tag, wire type (against the schema for known fields), length,
 * nesting depth and the UTF-8 of every string field; counts the item messages
 * and bounds the memory a decode takes. With `estimate`, the bound is computed
 * field by field (what protobuf-c allocates, closely); without, the walk is
 * cheaper and the bound is a multiple of len (about 160 bytes a byte), or
 * UINT64_MAX when only the field-by-field walk can tell (a singular message
 * field given twice, which protobuf-c merges). Returns 0, or -1 with a sentence
 * in err (stats are then zero).
 */
int sy__pb_walk(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                bool estimate, sy__pb_stats_t *stats, char *err, size_t err_len);

/* The bound of sy__pb_walk() without `estimate` for a message of type desc of len
 * bytes that holds no singular message field given twice, and at most
 * `occurrences` field occurrences (UINT64_MAX: not known; then a multiple of
 * len). */
uint64_t sy__pb_cheap_bound(const ProtobufCMessageDescriptor *desc, size_t len,
                            uint64_t occurrences);

/*
 * The walk of sy__pb_walk() over the content of one message of type desc that
 * sits at nesting depth `depth` of a request of type `request` (whose items are
 * counted; NULL: none) (the request's content is depth 0, a
 * ResourceSpans' 1, ...), so that the depth bound is the request's. buf_end: the
 * end of the buffer holding data (reads up to it are safe). Counts items into
 * stats->items (may be NULL); *merges (may be NULL) tells whether a singular
 * message field was given twice. Returns 0 or -1.
 */
int sy__pb_check_at(const ProtobufCMessageDescriptor *request,
                    const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                    int depth, const uint8_t *buf_end, sy__pb_stats_t *stats, bool *merges);

/*
 * sy__pb_walk() for the item count only.
 * Returns 0, or -1 with a sentence in err.
 */
int sy__pb_validate(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                    uint64_t *items, char *err, size_t err_len);

#endif
