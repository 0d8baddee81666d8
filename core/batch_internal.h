/* batch_internal.h - the layout of a batch, for the core's batch modules only. */
#ifndef SY_CORE_BATCH_INTERNAL_H
#define SY_CORE_BATCH_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "arena.h"
#include "batch.h"

struct sy_batch_s {
    atomic_uint refs;
    sy_signal_t signal;
    uint64_t items;
    const char *origin; /* the making instance's ID; instances outlive batches */

    /* The two forms; either may be absent. Guarded by `lock` while one is being
     * made; stable afterwards for as long as the batch is shared. */
    pthread_mutex_t lock;
    const uint8_t *enc;
    size_t enc_len;
    void *dec;
    bool dec_failed;
    /* An upper bound of what decoding `enc` takes (sy__pb_walk's decoded_bytes);
     * 0 until known. dec_exact: it is the field-by-field estimate rather than the
     * cheap multiple of the length, which merge refines when it matters. */
    uint64_t dec_est;
    bool dec_exact;
    /* `enc` passed the walk with no singular message field given twice, or was
     * made by the core from such bytes (merge, copy, a trusted view commit):
     * see sy__batch_encoded_trusted(). */
    bool enc_trusted;
    /* At least as many field occurrences as `enc` holds, or UINT64_MAX. */
    uint64_t enc_occ;

    /* A merge keeps its inputs rather than copying their bytes: the encoded
     * request is pieces[0..npieces) written back to back (pieces_len bytes in
     * all), each piece a batch with an encoded form, referenced until this batch
     * is freed. While `in_pieces`, that is the content; `enc` is NULL until
     * someone needs it in one buffer (sy__batch_encoded() joins them once).
     * Exporters write the pieces without joining them (sy__batch_pieces()). */
    sy_batch_t **pieces;
    size_t npieces;
    size_t pieces_len;
    bool in_pieces;

    /* The compressed twin (batch_set_compressed, ABI 1.7): the request as the
     * client sent it, `zenc`-compressed (a Content-Encoding name, static), kept
     * while the encoded form is the one it decompressed to (`zof`): any new
     * encoded or decoded form drops it. A merge's twin is its leaves' twins
     * written back to back (gzip members, zstd frames), when all have one. */
    const uint8_t *zdata;
    size_t zlen;
    const char *zenc;
    const uint8_t *zof;

    /* A split batch points into the decoded structs of the batch it came from and
     * keeps a reference to it. */
    sy_batch_t *parents[1];
    size_t nparents;

    sy__arena_t arena;

    /* The shared view (core/view.c): attached while the batch has one holder;
     * settled (its committed edits written) before anything else reads it. */
    struct sy_view_s *view;
    /* Settle tokens (settle.c): one hold on each, let go once the batch's routes
     * have all reached a fan-out (or when it is freed). Set by their single owner
     * before the batch is shared; `settle_routes` and `settle_let_go` any thread. */
    struct sy_settle_s **settle;
    size_t nsettle;
    atomic_uint settle_routes;
    atomic_bool settle_let_go;
    /* Exporter obligations on all of them not yet settled (settle.c), and
     * "sealed": handed to a connector, which may emit this very batch into more
     * pipelines; from then on its hold lasts until it is freed. */
    atomic_uint settle_obl;
    atomic_bool settle_sealed;

    /* A receiver's refused counter (its metrics' `failed`), set while the
     * batch's last emit was refused for the moment (a full queue, a refusing
     * processor): the items count as refused when the batch is freed without
     * an emit taking it since (sy__batch_refused_by). A receiver that holds a
     * refused request and emits it again (queue_wait) counts it once, as
     * refused only if it is in the end. Set and read by the batch's single
     * owner (a refused batch is not shared). */
    sy_metric_t *refused_by;
};

/* Spans, metric data points or log records in a decoded request. */
uint64_t sy__request_count_items(sy_signal_t signal, const void *request);

#endif
