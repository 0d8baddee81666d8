/*
 * Fuzz target: the view, over any request the wire walk accepts.
 *
 * Input: byte 0 picks the signal, byte 1 is the length E of an edit script,
 * the next E bytes are the script, the rest is the request body. Properties:
 *  - reading every field of every node, every attribute (by index and by key)
 *    and every entry of every ARRAY/MAP value never reads outside the buffer
 *    (ASan) and never fails on bytes the walk accepted;
 *  - any edits the script makes commit (SY_OK), unless the script set a string
 *    that is not UTF-8 (then SY_EINVAL, and the batch is unchanged);
 *  - the oracle of the trusted commit: the committed request, which the commit
 *    did not walk, is accepted by the full validation walk, which counts the
 *    same items the commit recorded; and it unpacks with protobuf-c;
 *  - the decoded-size bound the batch keeps is at least the field-by-field
 *    estimate of the committed bytes (the merge limit relies on it);
 *  - a second script on the committed batch (whose bytes are now the commit's
 *    own) holds to the same;
 *  - the committed request reads again without failure;
 *  - a builder given every item makes a batch with exactly those items;
 *  - the shared view (one view handed from processor to processor, its commits
 *    checkpoints written only when something else reads the batch): the script
 *    is played again as three holders in a row, each opening the batch's view,
 *    editing, and then committing, closing without a commit, or committing and
 *    editing more before closing; once with the shared view and once with it
 *    off (every commit written at once, every holder reading the bytes). Both
 *    runs end with the same content: the same tree, the same fields, the same
 *    attributes (as multisets: the shared view may keep a key deleted and set
 *    again in its place, where the bytes would have it last), the same items,
 *    and bytes the full walk accepts.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "batch_internal.h" /* dec_est: the decoded-size bound a batch keeps */
#include "view.h"
#include "view_internal.h" /* sy__view_share */

static void check(int cond, const char *what)
{
    if (!cond) {
        fprintf(stderr, "fuzz_view: property violated: %s\n", what);
        abort();
    }
}

#define MAX_NODES 4096

typedef struct walk_s {
    sy_view_node_t *nodes[MAX_NODES];
    size_t n;
    sy_view_node_t *items[MAX_NODES];
    size_t nitems;
    sy_value_t containers[4]; /* ARRAY/MAP values read, written back by edits */
    size_t ncontainers;
    bool bad_utf8; /* an edit set a string that is not UTF-8 */
} walk_t;

static void read_value(const sy_value_t *v, int depth)
{
    if (v->type == SY_VALUE_STRING || v->type == SY_VALUE_BYTES) {
        volatile uint8_t sink = 0;
        const uint8_t *p = v->type == SY_VALUE_STRING ? (const uint8_t *)v->str : v->bytes;
        for (size_t i = 0; i < v->len; i++)
            sink ^= p[i];
        (void)sink;
    }
    if (v->type != SY_VALUE_ARRAY && v->type != SY_VALUE_MAP) return;
    check(depth < 100, "values nest within the walk's depth bound");
    sy_value_iter_t it = {.value = v};
    sy_value_t k, x;
    size_t n = 0;
    int rc;
    while ((rc = sy__view_value_next(&it, &k, &x)) == 1) {
        read_value(&k, depth + 1);
        read_value(&x, depth + 1);
        n++;
    }
    check(rc == 0, "iterating a value does not fail");
    check(n == v->len, "an ARRAY/MAP has len entries");
}

static void read_node(walk_t *w, sy_view_node_t *n)
{
    if (w->n < MAX_NODES) w->nodes[w->n++] = n;
    for (int f = SY_FIELD_NAME; f <= SY_FIELD_QUANTILES; f++) {
        sy_value_t v;
        int rc = sy__view_get(n, (sy_field_t)f, &v);
        if (rc != 0 && rc != SY_ENOTSUP)
            fprintf(stderr, "field %d of a node of kind %d: %d\n", f, (int)sy__view_kind(n), rc);
        check(rc == 0 || rc == SY_ENOTSUP, "reading a field does not fail");
        read_value(&v, 0);
    }
    size_t na = sy__view_attr_count(n);
    for (size_t i = 0; i < na; i++) {
        sy_value_t k, v, g;
        check(sy__view_attr_at(n, i, &k, &v) == 0, "reading an attribute does not fail");
        if ((v.type == SY_VALUE_ARRAY || v.type == SY_VALUE_MAP) && w->ncontainers < 4)
            w->containers[w->ncontainers++] = v;
        read_value(&k, 0);
        read_value(&v, 0);
        check(sy__view_attr_get(n, k.str, k.len, &g) == 0, "an attribute is found by its key");
    }
}

static void walk(walk_t *w, sy_view_node_t *n, int depth)
{
    static const sy_view_rel_t rels[] = {SY_VIEW_RESOURCES, SY_VIEW_SCOPES, SY_VIEW_METRICS,
                                         SY_VIEW_ITEMS,     SY_VIEW_EVENTS, SY_VIEW_LINKS,
                                         SY_VIEW_EXEMPLARS};
    read_node(w, n);
    sy_node_kind_t kind = sy__view_kind(n);
    for (size_t r = 0; r < sizeof(rels) / sizeof(rels[0]); r++) {
        /* A metrics scope's ITEMS are its metrics' points: walked through them. */
        if (kind == SY_NODE_SCOPE && rels[r] == SY_VIEW_ITEMS && sy__view_count(n, SY_VIEW_METRICS))
            continue;
        size_t c = sy__view_count(n, rels[r]);
        for (size_t i = 0; i < c; i++) {
            sy_view_node_t *k = sy__view_at(n, rels[r], i);
            check(k != NULL, "every counted child exists");
            check(depth < 8, "the tree is shallow");
            sy_node_kind_t kk = sy__view_kind(k);
            if ((kk == SY_NODE_SPAN || kk == SY_NODE_LOG ||
                 (kk >= SY_NODE_NUMBER_POINT && kk <= SY_NODE_SUMMARY_POINT)) &&
                w->nitems < MAX_NODES)
                w->items[w->nitems++] = k;
            walk(w, k, depth + 1);
        }
    }
}

static const char *const keys[] = {"a", "service.name", "", "k.1", "\xff", "\xc3\xa9"};

/* One edit from 3 script bytes. */
static void edit(walk_t *w, const uint8_t *s)
{
    if (!w->n) return;
    sy_view_node_t *n = w->nodes[s[1] % w->n];
    /* Keys 4 and 5 (not UTF-8, and UTF-8 past ASCII) only now and then. */
    const char *key = keys[(s[2] & 3) + ((s[0] & 0xc0) == 0xc0 ? 2 : 0)];
    const char *key2 = keys[((s[2] >> 2) & 3) + ((s[0] & 0xc0) == 0x80 ? 2 : 0)];
    sy_value_t v = {.type = (sy_value_type_t)((s[2] >> 4) % 6)};
    v.str = (s[0] & 0xe0) == 0x60 ? "f\xc0" : "fz"; /* now and then not UTF-8 */
    v.len = v.type == SY_VALUE_STRING || v.type == SY_VALUE_BYTES ? 2 : 0;
    if ((v.type == SY_VALUE_ARRAY || v.type == SY_VALUE_MAP) && w->ncontainers)
        v = w->containers[s[2] % w->ncontainers]; /* as read: copied encoded */
    bool bad_key = key[0] == '\xff', bad_key2 = key2[0] == '\xff';
    bool bad_val = v.type == SY_VALUE_STRING && v.str[1] == '\xc0';
    v.bytes = (const uint8_t *)"\x00\xff";
    v.i = (int64_t)s[2] * (s[0] & 1 ? -1 : 1);
    v.d = s[2] / 7.0;
    v.b = s[2] & 1;
    switch (s[0] % 6) {
    case 0:
        if (sy__view_set(n, (sy_field_t)(SY_FIELD_NAME + s[2] % SY_FIELD_QUANTILES), &v) == 0)
            w->bad_utf8 |= bad_val;
        break;
    case 1:
        if (sy__view_attr_set(n, key, strlen(key), &v, (sy_attr_mode_t)(1 + s[0] / 6 % 3)) == 0)
            w->bad_utf8 |= bad_key || bad_val;
        break;
    case 2:
        sy__view_attr_delete(n, key, strlen(key));
        break;
    case 3:
        if (sy__view_attr_rename(n, key, strlen(key), key2, strlen(key2)) == 0)
            w->bad_utf8 |= bad_key2;
        break;
    case 4:
    case 5:
        sy__view_drop(n);
        break;
    }
}

/* ---- the shared view against the view without it ------------------------------ */

static bool same_value(const sy_value_t *a, const sy_value_t *b, int depth)
{
    if (a->type != b->type || depth > 100) return false;
    switch (a->type) {
    case SY_VALUE_STRING:
        return a->len == b->len && memcmp(a->str, b->str, a->len) == 0;
    case SY_VALUE_BYTES:
        return a->len == b->len && memcmp(a->bytes, b->bytes, a->len) == 0;
    case SY_VALUE_INT:
        return a->i == b->i;
    case SY_VALUE_DOUBLE:
        return memcmp(&a->d, &b->d, sizeof(a->d)) == 0;
    case SY_VALUE_BOOL:
        return a->b == b->b;
    case SY_VALUE_ARRAY:
    case SY_VALUE_MAP: {
        if (a->len != b->len) return false;
        sy_value_iter_t ia = {.value = a}, ib = {.value = b};
        sy_value_t ka, xa, kb, xb;
        int ra, rb;
        while ((ra = sy__view_value_next(&ia, &ka, &xa)) == 1) {
            rb = sy__view_value_next(&ib, &kb, &xb);
            if (rb != 1 || !same_value(&xa, &xb, depth + 1)) return false;
            if (a->type == SY_VALUE_MAP && !same_value(&ka, &kb, depth + 1)) return false;
        }
        return ra == 0 && sy__view_value_next(&ib, &kb, &xb) == 0;
    }
    default:
        return true;
    }
}

/* The same attributes, as multisets of (key, value). */
static bool same_attrs(sy_view_node_t *x, sy_view_node_t *y)
{
    size_t n = sy__view_attr_count(x);
    if (n != sy__view_attr_count(y)) return false;
    bool *used = calloc(n ? n : 1, sizeof(*used));
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        sy_value_t k, v, k2, v2;
        check(sy__view_attr_at(x, i, &k, &v) == 0, "reading an attribute does not fail");
        ok = false;
        for (size_t j = 0; j < n && !ok; j++) {
            if (used[j]) continue;
            check(sy__view_attr_at(y, j, &k2, &v2) == 0, "reading an attribute does not fail");
            if (same_value(&k, &k2, 0) && same_value(&v, &v2, 0)) ok = used[j] = true;
        }
    }
    free(used);
    return ok;
}

static bool same_tree(walk_t *wx, walk_t *wy)
{
    if (wx->n != wy->n || wx->nitems != wy->nitems) return false;
    for (size_t i = 0; i < wx->n; i++) {
        sy_view_node_t *x = wx->nodes[i], *y = wy->nodes[i];
        if (sy__view_kind(x) != sy__view_kind(y) || !same_attrs(x, y)) return false;
        for (int f = SY_FIELD_NAME; f <= SY_FIELD_QUANTILES; f++) {
            sy_value_t a, b;
            int ra = sy__view_get(x, (sy_field_t)f, &a), rb = sy__view_get(y, (sy_field_t)f, &b);
            if (ra != rb || (ra == 0 && !same_value(&a, &b, 0))) return false;
        }
    }
    return true;
}

/* Three holders in a row play the script on a batch of `body`; returns it. */
static sy_batch_t *holders(walk_t *w, sy_signal_t signal, const uint8_t *body, size_t len,
                           const uint8_t *script, size_t e, bool share)
{
    sy__view_share = share;
    sy_batch_t *b = sy__batch_new(signal, "fuzz");
    uint8_t *copy = sy__batch_alloc(b, len ? len : 1);
    if (len) memcpy(copy, body, len);
    check(sy__batch_set_encoded(b, copy, len, NULL, 0) == 0, "committed bytes load again");
    size_t third = e / 9 * 3;
    for (int h = 0; h < 3; h++) {
        sy_view_t *v = sy__view_open(b);
        check(v != NULL, "a view opens");
        memset(w, 0, sizeof(*w));
        walk(w, sy__view_root(v), 0);
        /* Containers are listed in attribute order, which may differ: none. */
        w->ncontainers = 0;
        const uint8_t *seg = script + (size_t)h * third;
        int ending = third ? seg[0] % 3 : 0;
        size_t mid = third / 6 * 3;
        for (size_t i = 0; i + 3 <= mid; i += 3)
            edit(w, seg + i);
        if (ending != 1) sy__view_commit(v);
        if (ending == 2) { /* a commit may reset the view: its nodes are read again */
            memset(w, 0, sizeof(*w));
            walk(w, sy__view_root(v), 0);
            w->ncontainers = 0;
            for (size_t i = mid; i + 3 <= third; i += 3)
                edit(w, seg + i);
        }
        sy__view_close(v);
    }
    sy__view_share = true;
    return b;
}

static void chain(walk_t *w, sy_signal_t signal, const uint8_t *body, size_t len,
                  const uint8_t *script, size_t e)
{
    walk_t *w2 = calloc(1, sizeof(*w2));
    sy_batch_t *shared = holders(w, signal, body, len, script, e, true);
    sy_batch_t *plain = holders(w, signal, body, len, script, e, false);
    check(sy__batch_items(shared) == sy__batch_items(plain),
          "the shared view counts the items the view without it counts");
    size_t slen;
    const uint8_t *senc = sy__batch_encoded(shared, &slen);
    check(senc != NULL, "the shared view's batch has bytes");
    sy__pb_stats_t st;
    check(sy__pb_walk(sy__signal_request_descriptor(signal), senc, slen, false, &st, NULL, 0) == 0,
          "the shared view's request passes the full validation walk");
    check(st.items == sy__batch_items(shared), "the shared view counted the items the walk counts");
    sy_view_t *vs = sy__view_open(shared), *vp = sy__view_open(plain);
    memset(w, 0, sizeof(*w));
    walk(w, sy__view_root(vs), 0);
    walk(w2, sy__view_root(vp), 0);
    check(same_tree(w, w2), "the shared view writes what the view without it writes");
    sy__view_close(vs);
    sy__view_close(vp);
    sy__batch_release(shared);
    sy__batch_release(plain);
    free(w2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    static const sy_signal_t signals[3] = {SY_SIGNAL_TRACES, SY_SIGNAL_METRICS, SY_SIGNAL_LOGS};
    sy_signal_t signal = signals[data[0] % 3];
    size_t e = data[1];
    if (e > size - 2) e = size - 2;
    const uint8_t *script = data + 2;
    const uint8_t *body = script + e;
    size_t len = size - 2 - e;

    sy_batch_t *b = sy__batch_new(signal, "fuzz");
    uint8_t *copy = sy__batch_alloc(b, len ? len : 1);
    memcpy(copy, body, len);
    if (sy__batch_set_encoded(b, copy, len, NULL, 0) < 0) {
        sy__batch_release(b);
        return 0;
    }
    ProtobufCMessage *orig =
        protobuf_c_message_unpack(sy__signal_request_descriptor(signal), NULL, len, copy);
    bool body_unpacks = orig != NULL;
    if (orig) protobuf_c_message_free_unpacked(orig, NULL);
    walk_t *w = calloc(1, sizeof(*w));
    sy_view_t *v = sy__view_open(b);
    check(v != NULL, "a view opens");
    walk(w, sy__view_root(v), 0);

    /* The builder, before any edit: every item, in a new batch. */
    sy_view_builder_t *bld = sy__view_build("fuzz", signal);
    for (size_t i = 0; i < w->nitems; i++)
        check(sy__view_build_add(bld, w->items[i]) == 0, "an item is added to a builder");
    sy_batch_t *built = sy__view_build_finish(bld);
    check(built != NULL, "the builder's batch validates");
    check(sy__batch_items(built) == w->nitems, "the builder's batch holds every item added");
    sy__batch_release(built);

    /* Two rounds: the script's first half on the request as received, then its
     * second half on what the first commit wrote. */
    size_t half = e / 6 * 3;
    for (int round = 0; round < 2; round++) {
        size_t from = round ? half : 0, to = round ? e : half;
        for (size_t i = from; i + 3 <= to; i += 3)
            edit(w, script + i);
        size_t before_len;
        const uint8_t *before = sy__batch_encoded(b, &before_len);
        uint64_t before_items = sy__batch_items(b);
        int rc = sy__view_commit(v);
        size_t elen;
        const uint8_t *enc = sy__batch_encoded(b, &elen);
        check(enc != NULL, "the committed batch has bytes");
        if (rc != 0) {
            check(rc == SY_EINVAL && w->bad_utf8, "edits commit unless a string is not UTF-8");
            check(enc == before && elen == before_len && sy__batch_items(b) == before_items,
                  "a refused commit leaves the batch unchanged");
        }
        sy__pb_stats_t st;
        check(sy__pb_walk(sy__signal_request_descriptor(signal), enc, elen, false, &st, NULL, 0) ==
                  0,
              "the committed request passes the full validation walk");
        check(st.items == sy__batch_items(b), "the commit counted the items the walk counts");
        sy__pb_stats_t ex;
        check(sy__pb_walk(sy__signal_request_descriptor(signal), enc, elen, true, &ex, NULL, 0) ==
                  0,
              "the committed request passes the estimating walk");
        check(b->dec_est >= ex.decoded_bytes || !b->dec_est,
              "the batch's decoded-size bound is at least the field-by-field estimate");
        ProtobufCMessage *m =
            protobuf_c_message_unpack(sy__signal_request_descriptor(signal), NULL, elen, enc);
        /* Bytes the walk accepts but protobuf-c does not are fuzz_otlp_proto's
         * business; here only what the view wrote is judged. */
        check(m != NULL || !body_unpacks, "the committed request unpacks");
        if (m) protobuf_c_message_free_unpacked(m, NULL);
        memset(w, 0, sizeof(*w));
        walk(w, sy__view_root(v), 0);
    }
    sy__view_close(v);
    size_t flen;
    const uint8_t *fin = sy__batch_encoded(b, &flen);
    chain(w, signal, fin, flen, script, e);
    free(w);
    sy__batch_release(b);
    return 0;
}
