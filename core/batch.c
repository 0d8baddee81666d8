/*
 * batch.c - batches: reference counting, lazy decode and encode, merge and copy.
 *
 * A batch holds one export request as encoded bytes, as a decoded protobuf-c
 * message, or both. Whichever form is missing is made on first use, in the
 * batch's arena, under the batch's lock: a shared batch may be asked for its
 * decoded form by two exporters on two threads at once. Once made, a form never
 * changes while the batch is shared, so readers need no lock after that.
 *
 * Copy-on-write: a shared batch (see sy__batch_is_shared) is never changed in
 * place. sy__batch_request_mut refuses one, and the runtime gives a processor
 * that mutates a deep copy instead (sy__batch_copy). Who may ask for a mutable
 * request at all is decided in cow.c, which knows the calling instance.
 */
#include "batch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "batch_internal.h"
#include "settle.h"
#include "telemetry.h"
#include "signals.h"
#include "view.h"

/* A view attached to the batch (the shared view, core/view.c) writes its
 * committed edits before anything but the view reads, replaces or shares the
 * batch's content. */
static inline void settle(sy_batch_t *b)
{
    if (b->view) sy__view_settle(b);
}

const ProtobufCMessageDescriptor *sy__signal_request_descriptor(sy_signal_t signal)
{
    const syc_signal_info_t *si = syc_signal_info(signal);
    return si ? si->request : NULL;
}

const char *sy__signal_name(sy_signal_t signal)
{
    const syc_signal_info_t *si = syc_signal_info(signal);
    return si ? si->name : "unknown";
}

sy_batch_t *sy__batch_new(sy_signal_t signal, const char *origin)
{
    if (!sy__signal_request_descriptor(signal)) return NULL;
    sy_batch_t *b = calloc(1, sizeof(*b));
    if (!b) return NULL;
    atomic_init(&b->refs, 1);
    b->enc_occ = UINT64_MAX;
    b->signal = signal;
    b->origin = origin ? origin : "";
    pthread_mutex_init(&b->lock, NULL);
    sy__arena_init(&b->arena, SY__BATCH_MAX_ARENA);
    return b;
}

void *sy__batch_alloc(sy_batch_t *b, size_t size)
{
    return sy__arena_alloc(&b->arena, size);
}

ProtobufCAllocator *sy__batch_allocator(sy_batch_t *b)
{
    return &b->arena.pb;
}

/* The field-by-field decoded-size estimate of data[0..len), or UINT64_MAX. */
static uint64_t exact_estimate(sy_signal_t signal, const uint8_t *data, size_t len)
{
    sy__pb_stats_t st;
    if (sy__pb_walk(sy__signal_request_descriptor(signal), data, len, true, &st, NULL, 0) < 0)
        return UINT64_MAX;
    return st.decoded_bytes;
}

/* Takes data[0..len), of `st`, as b's content, unless it would decode to more
 * than SY__REQUEST_MAX_DECODED. The cheap bound (a multiple of len) is refined by
 * a field-by-field walk only for a request large enough for it to matter (over
 * about 1.6 MB). */
static int take_encoded(sy_batch_t *b, const uint8_t *data, size_t len, sy__pb_stats_t st,
                        bool trusted, char *err, size_t err_len)
{
    if (st.decoded_bytes > SY__REQUEST_MAX_DECODED - len) {
        st.decoded_bytes = exact_estimate(b->signal, data, len);
        st.decoded_exact = true;
    }
    if (st.decoded_bytes > SY__REQUEST_MAX_DECODED - len) {
        if (err && err_len)
            snprintf(err, err_len,
                     "request too large: its %llu items would take about %llu MiB to decode, "
                     "over the limit of %llu MiB per request; send fewer items per request",
                     (unsigned long long)st.items,
                     (unsigned long long)((st.decoded_bytes + len) >> 20),
                     (unsigned long long)(SY__REQUEST_MAX_DECODED >> 20));
        return SY_ENOMEM;
    }
    b->enc = data;
    b->enc_len = len;
    b->dec = NULL;
    b->dec_failed = false;
    b->dec_est = st.decoded_bytes;
    b->dec_exact = st.decoded_exact;
    b->items = st.items;
    b->enc_trusted = trusted;
    b->enc_occ = st.occurrences;
    b->in_pieces = false; /* pieces, if any, stay referenced until the batch is freed */
    b->zdata = NULL;      /* a new content: the twin is of the old one */
    return SY_OK;
}

int sy__batch_set_encoded(sy_batch_t *b, const uint8_t *data, size_t len, char *err, size_t err_len)
{
    settle(b);
    sy__pb_stats_t st;
    if (sy__pb_walk(sy__signal_request_descriptor(b->signal), data, len, false, &st, err, err_len) <
        0)
        return SY_EINVAL;
    /* UINT64_MAX: a singular message field given twice (see sy__pb_walk). */
    bool trusted = st.decoded_bytes != UINT64_MAX;
    if (!trusted)
        st.occurrences = UINT64_MAX;
    else /* the bound from the occurrences the walk counted: often 4 times tighter */
        st.decoded_bytes =
            sy__pb_cheap_bound(sy__signal_request_descriptor(b->signal), len, st.occurrences);
    return take_encoded(b, data, len, st, trusted, err, err_len);
}

/* Whether b has an encoded form now, in one buffer or in pieces. */
static bool has_encoded(const sy_batch_t *b)
{
    return b->enc || b->in_pieces;
}

bool sy__batch_encoded_trusted(const sy_batch_t *b)
{
    return has_encoded(b) && b->enc_trusted;
}

uint64_t sy__batch_occurrences(const sy_batch_t *b)
{
    return has_encoded(b) ? b->enc_occ : UINT64_MAX;
}

int sy__batch_set_trusted(sy_batch_t *b, const uint8_t *data, size_t len, uint64_t items,
                          uint64_t occurrences, char *err, size_t err_len)
{
    settle(b);
    sy__pb_stats_t st = {.items = items,
                         .occurrences = occurrences,
                         .decoded_bytes = sy__pb_cheap_bound(
                             sy__signal_request_descriptor(b->signal), len, occurrences)};
    return take_encoded(b, data, len, st, true, err, err_len);
}

int sy__batch_set_decoded(sy_batch_t *b, void *request)
{
    if (!request) return SY_EINVAL;
    settle(b);
    const ProtobufCMessage *m = request;
    /* By name, not address: each plugin links its own copy of the generated
     * descriptors, so a request a plugin built has the plugin's descriptor. */
    if (!m->descriptor ||
        strcmp(m->descriptor->name, sy__signal_request_descriptor(b->signal)->name) != 0)
        return SY_EINVAL;
    b->dec = request;
    b->enc = NULL;
    b->enc_len = 0;
    b->in_pieces = false;
    b->zdata = NULL;
    b->enc_trusted = false;
    b->enc_occ = UINT64_MAX;
    b->dec_est = 0;
    b->dec_exact = false;
    b->items = sy__request_count_items(b->signal, request);
    return SY_OK;
}

void sy__batch_retain(sy_batch_t *b)
{
    /* Relaxed: a new reference is made from an existing one, which already
     * orders everything before it. A second reference: the view goes first. */
    settle(b);
    atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
}

void sy__batch_release(sy_batch_t *b)
{
    if (!b) return;
    /* The release half of the decrement publishes this holder's reads and writes
     * of the batch; the acquire half, on the last decrement, makes every other
     * holder's accesses happen before the free. (acq_rel on every decrement rather
     * than release plus an acquire fence on the last: ThreadSanitizer does not
     * model fences, and the cost is the same on x86.) */
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1) return;
    if (b->refused_by && b->items) sy__metric_add(b->refused_by, (int64_t)b->items);
    if (b->view) sy__view_batch_gone(b);
    sy__settle_batch_free(b);
    for (size_t i = 0; i < b->nparents; i++)
        sy__batch_release(b->parents[i]);
    for (size_t i = 0; i < b->npieces; i++) /* the array is in the arena */
        sy__batch_release(b->pieces[i]);
    sy__arena_release(&b->arena);
    pthread_mutex_destroy(&b->lock);
    free(b);
}

uint32_t sy__batch_refs(const sy_batch_t *b)
{
    return atomic_load_explicit(&((sy_batch_t *)b)->refs, memory_order_acquire);
}

sy_signal_t sy__batch_signal(const sy_batch_t *b)
{
    return b->signal;
}

uint64_t sy__batch_items(const sy_batch_t *b)
{
    return b->items;
}

void sy__batch_refused_by(sy_batch_t *b, sy_metric_t *m)
{
    b->refused_by = m;
}

size_t sy__batch_bytes(const sy_batch_t *b)
{
    /* Under the lock: a shared batch's arena grows when another holder makes
     * its missing form (sy__batch_request, sy__batch_encoded). */
    sy_batch_t *mb = (sy_batch_t *)b;
    pthread_mutex_lock(&mb->lock);
    size_t bytes = b->arena.total + sizeof(*b);
    pthread_mutex_unlock(&mb->lock);
    /* A merge's pieces live as long as it does: their memory is its memory. */
    for (size_t i = 0; i < b->npieces; i++)
        bytes += sy__batch_bytes(b->pieces[i]);
    return bytes;
}

const char *sy__batch_origin(const sy_batch_t *b)
{
    return b->origin;
}

void sy__batch_info(const sy_batch_t *b, sy_batch_info_t *info)
{
    sy_batch_t *mb = (sy_batch_t *)b;
    pthread_mutex_lock(&mb->lock);
    info->signal = b->signal;
    info->items = b->items;
    info->bytes = b->enc ? b->enc_len : b->in_pieces ? b->pieces_len : 0;
    info->has_encoded = has_encoded(b);
    info->has_decoded = b->dec != NULL;
    info->origin = b->origin;
    pthread_mutex_unlock(&mb->lock);
}

/* Writes the pieces of a merge back to back at dst (pieces_len bytes). */
static void gather(const sy_batch_t *b, uint8_t *dst)
{
    for (size_t i = 0; i < b->npieces; i++) {
        memcpy(dst, b->pieces[i]->enc, b->pieces[i]->enc_len);
        dst += b->pieces[i]->enc_len;
    }
}

/* Under b's lock: the pieces of a merge joined into one buffer in b's arena, for a
 * reader that needs the request in one piece (the view, a decode, an exporter
 * that compresses). Once; leaves enc NULL when memory runs out. */
static void join_locked(sy_batch_t *b)
{
    if (b->enc || !b->in_pieces) return;
    uint8_t *buf = sy__arena_alloc(&b->arena, b->pieces_len ? b->pieces_len : 1);
    if (!buf) return;
    gather(b, buf);
    b->enc = buf;
    b->enc_len = b->pieces_len;
}

const void *sy__batch_request(sy_batch_t *b)
{
    settle(b);
    pthread_mutex_lock(&b->lock);
    if (!b->dec && !b->dec_failed) join_locked(b);
    if (!b->dec && !b->dec_failed && b->enc) {
        b->dec = protobuf_c_message_unpack(sy__signal_request_descriptor(b->signal), &b->arena.pb,
                                           b->enc_len, b->enc);
        if (!b->dec) b->dec_failed = true;
    }
    void *dec = b->dec;
    pthread_mutex_unlock(&b->lock);
    return dec;
}

/*
 * Shared means that someone else can see this batch's memory:
 *  - another reference (fan-out to several pipelines or exporters; a processor
 *    that retained it);
 *  - a piece of a split, whose message structs point into its parent's decoded
 *    request, which siblings and the parent's other holders also read;
 *  - a parent that pieces point into: every piece holds a reference on it, so
 *    its count is above one for as long as anyone else holds it too, and the
 *    first test covers it.
 * A caller holding the only reference of an unshared batch is its only reader,
 * and nobody can take a new reference without one, so the answer cannot turn
 * true behind its back.
 */
bool sy__batch_is_shared(const sy_batch_t *b)
{
    return sy__batch_refs(b) > 1 || b->nparents > 0;
}

void *sy__batch_request_mut(sy_batch_t *b)
{
    /* The last line of defence: whatever the caller, shared memory is not
     * handed out for writing. */
    if (sy__batch_is_shared(b)) return NULL;
    void *dec = (void *)sy__batch_request(b);
    if (dec) {
        pthread_mutex_lock(&b->lock);
        b->enc = NULL; /* stale once changed: packed again when asked for */
        b->enc_len = 0;
        b->in_pieces = false;
        b->zdata = NULL;
        b->enc_trusted = false;
        b->enc_occ = UINT64_MAX;
        b->dec_est = 0;
        pthread_mutex_unlock(&b->lock);
    }
    return dec;
}

void sy__batch_recount(sy_batch_t *b)
{
    if (b->dec) b->items = sy__request_count_items(b->signal, b->dec);
}

const uint8_t *sy__batch_encoded(sy_batch_t *b, size_t *len)
{
    settle(b);
    pthread_mutex_lock(&b->lock);
    join_locked(b);
    if (!b->enc && b->dec) {
        size_t n = protobuf_c_message_get_packed_size(b->dec);
        /* An empty request packs to zero bytes; give it a valid pointer. */
        uint8_t *buf = sy__arena_alloc(&b->arena, n ? n : 1);
        if (buf) {
            protobuf_c_message_pack(b->dec, buf);
            b->enc = buf;
            b->enc_len = n;
        }
    }
    const uint8_t *enc = b->enc;
    if (len) *len = enc ? b->enc_len : 0;
    pthread_mutex_unlock(&b->lock);
    return enc;
}

/* An upper bound of what decoding b's encoded form takes: the one known, or (when
 * `exact` or none is known) the field-by-field estimate, walked once and kept. */
static uint64_t batch_dec_est(sy_batch_t *b, bool exact)
{
    pthread_mutex_lock(&b->lock);
    if (exact && !b->dec_exact) join_locked(b);
    if (b->enc && (!b->dec_est || (exact && !b->dec_exact))) {
        b->dec_est = exact_estimate(b->signal, b->enc, b->enc_len);
        b->dec_exact = true;
    }
    uint64_t est = b->dec_est;
    pthread_mutex_unlock(&b->lock);
    return est;
}

/* The merged batch carries its inputs' settle tokens; their routes end here. */
static sy_batch_t *settle_merged(sy_batch_t *out, sy_batch_t *const *batches, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (sy__settle_inherit(out, batches[i]) < 0) {
            sy__batch_release(out);
            return NULL;
        }
    for (size_t i = 0; i < n; i++)
        sy__settle_route_end(batches[i]);
    return out;
}

/* Merging relies on a property of protobuf: two encoded export requests written
 * back to back are one valid request holding the resource entries of both, in
 * order. So a merge decodes nothing and copies nothing: it keeps a reference to
 * each input (to the inputs' own pieces when an input is itself a merge) and
 * their bytes as its pieces, joined only for a reader that needs one buffer.
 * A merge that would pass SY__BATCH_MAX_DECODED fails (NULL), so that whatever
 * is merged still decodes; the caller sends the inputs in smaller groups. */
sy_batch_t *sy__batch_merge(const char *origin, sy_batch_t *const *batches, size_t n)
{
    if (n == 0) return NULL;
    sy_signal_t signal = batches[0]->signal;
    size_t total = 0, npieces = 0;
    uint64_t items = 0, est = 0;
    bool trusted = true;
    uint64_t occ = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len;
        if (batches[i]->signal != signal) return NULL;
        sy_batch_t *in = batches[i];
        settle(in); /* a view's committed edits are the content */
        /* A merge given again adds its pieces (its content while in_pieces, which
         * only its sole holder could change, not while it is an input here). */
        pthread_mutex_lock(&in->lock);
        bool pieces = in->in_pieces;
        pthread_mutex_unlock(&in->lock);
        if (pieces) {
            len = in->pieces_len;
            npieces += in->npieces;
        } else {
            if (!sy__batch_encoded(in, &len)) return NULL;
            npieces++;
        }
        total += len;
        items += in->items;
        /* Requests written back to back hold no field twice that either did not:
         * the request's only field is repeated. */
        trusted = trusted && in->enc_trusted;
        occ = occ == UINT64_MAX || in->enc_occ == UINT64_MAX ? UINT64_MAX : occ + in->enc_occ;
    }
    /* The cheap bounds first; the field-by-field estimates only when those are
     * too coarse to allow the merge (inputs of more than a few MB in all). */
    for (int exact = 0; exact <= 1; exact++) {
        est = 0;
        for (size_t i = 0; i < n && est <= SY__BATCH_MAX_DECODED; i++)
            est += batch_dec_est(batches[i], exact);
        if (total + est <= SY__BATCH_MAX_DECODED) break;
        if (exact) return NULL;
    }
    sy_batch_t *out = sy__batch_new(signal, origin);
    if (!out) return NULL;
    out->pieces = sy__arena_alloc(&out->arena, npieces * sizeof(out->pieces[0]));
    if (!out->pieces) {
        sy__batch_release(out);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        sy_batch_t *in = batches[i];
        bool pieces = in->in_pieces;
        size_t k = pieces ? in->npieces : 1;
        for (size_t j = 0; j < k; j++) {
            sy_batch_t *leaf = pieces ? in->pieces[j] : in;
            sy__batch_retain(leaf);
            out->pieces[out->npieces++] = leaf;
        }
    }
    out->pieces_len = total;
    out->in_pieces = true;
    out->dec_est = est;
    out->dec_exact = false; /* a sum of bounds: walked again if it ever matters */
    out->items = items;
    out->enc_trusted = trusted;
    out->enc_occ = occ;
    return settle_merged(out, batches, n);
}

/* The copy is deep because it goes through the encoded form: a piece of a split,
 * which has only decoded structs pointing into its parent, is packed first (in
 * its own arena, under its lock, as any reader may), and the copy holds those
 * bytes in its own arena, with no parent. It decodes afresh when asked. */
sy_batch_t *sy__batch_copy(sy_batch_t *b)
{
    settle(b);
    pthread_mutex_lock(&b->lock);
    bool pieces = b->in_pieces && !b->enc;
    pthread_mutex_unlock(&b->lock);
    size_t len = b->pieces_len;
    const uint8_t *enc = pieces ? NULL : sy__batch_encoded(b, &len);
    if (!pieces && !enc) return NULL;
    sy_batch_t *out = sy__batch_new(b->signal, b->origin);
    if (!out) return NULL;
    uint8_t *buf = sy__arena_alloc(&out->arena, len ? len : 1);
    if (!buf) {
        sy__batch_release(out);
        return NULL;
    }
    if (pieces) /* straight from the pieces: the original is not joined */
        gather(b, buf);
    else
        memcpy(buf, enc, len);
    out->enc = buf;
    out->enc_len = len;
    out->dec_est = b->dec_est;
    out->dec_exact = b->dec_exact;
    out->items = b->items;
    out->enc_trusted = b->enc_trusted;
    out->enc_occ = b->enc_occ;
    if (sy__settle_inherit(out, b) < 0) {
        sy__batch_release(out);
        return NULL;
    }
    return out;
}

size_t sy__batch_pieces(sy_batch_t *b, sy_piece_t *out, size_t max)
{
    settle(b);
    pthread_mutex_lock(&b->lock);
    bool pieces = b->in_pieces;
    pthread_mutex_unlock(&b->lock);
    if (!pieces) {
        size_t len;
        const uint8_t *enc = sy__batch_encoded(b, &len);
        if (!enc) return 0;
        if (max) out[0] = (sy_piece_t){enc, len};
        return 1;
    }
    for (size_t i = 0; i < b->npieces && i < max; i++)
        out[i] = (sy_piece_t){b->pieces[i]->enc, b->pieces[i]->enc_len};
    return b->npieces;
}

/* The twin of a batch that is not a merge: its compressed bytes while its content
 * is still the encoded form they decompressed to. */
static bool leaf_twin(const sy_batch_t *b, const char *encoding, sy_piece_t *out)
{
    if (!b->zdata || b->in_pieces || !b->enc || b->enc != b->zof || b->view) return false;
    if (strcmp(b->zenc, encoding) != 0) return false;
    *out = (sy_piece_t){b->zdata, b->zlen};
    return true;
}

int sy__batch_set_compressed(sy_batch_t *b, const char *encoding, const uint8_t *data, size_t len)
{
    static const char *const known[] = {"gzip", "zstd"};
    const char *enc = NULL;
    for (size_t i = 0; encoding && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcmp(encoding, known[i]) == 0) enc = known[i];
    if (!enc || !data || len == 0) return SY_EINVAL;
    settle(b);
    pthread_mutex_lock(&b->lock);
    int rc = SY_EINVAL;
    if (b->enc && !b->in_pieces) {
        b->zdata = data;
        b->zlen = len;
        b->zenc = enc;
        b->zof = b->enc;
        rc = SY_OK;
    }
    pthread_mutex_unlock(&b->lock);
    return rc;
}

size_t sy__batch_compressed_pieces(sy_batch_t *b, const char *encoding, sy_piece_t *out, size_t max)
{
    if (!encoding) return 0;
    settle(b); /* a view's edits would make a new content, without a twin */
    pthread_mutex_lock(&b->lock);
    bool pieces = b->in_pieces;
    size_t n = 0;
    sy_piece_t p;
    if (!pieces) {
        if (leaf_twin(b, encoding, &p)) {
            if (max) out[0] = p;
            n = 1;
        }
    } else {
        /* The leaves are not changed while a merge holds them (a merge given as
         * an input only lends its pieces; nobody holds them for writing). */
        for (n = 0; n < b->npieces; n++) {
            if (!leaf_twin(b->pieces[n], encoding, &p)) break;
            if (n < max) out[n] = p;
        }
        if (n < b->npieces) n = 0;
    }
    pthread_mutex_unlock(&b->lock);
    return n;
}
