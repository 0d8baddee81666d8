/*
 * view_internal.h - the view's nodes and edits, shared by view.c (reading),
 * view_edit.c (recording and applying edits) and view_build.c (the builder).
 *
 * A node is a message of the encoded request, known by byte offsets into the
 * view's buffer: where its field's tag starts (fstart) and its content range
 * [cs, ce). Its parent is the message whose content holds it, so the parent
 * chain is the chain of enclosing length prefixes that an edit must fix up.
 * Some nodes are internal: the Resource inside a ResourceSpans, the
 * InstrumentationScope inside a ScopeSpans, a span's Status, a metric's data
 * (Gauge, Sum, ...). Plugins never see those; view_parent() steps over them.
 *
 * An edit is an op in the list of the node whose content it changes: replace
 * the byte range [start, end) of that content with `repl` (a delete when rlen
 * is 0, an insert when start == end), or a changed child node (its own ops
 * apply inside it; a dropped child is skipped). Applying edits is two walks of
 * the tree of changed nodes only: one computes new lengths bottom up, one
 * copies untouched ranges and writes new length prefixes (view_edit.c).
 */
#ifndef SY_CORE_VIEW_INTERNAL_H
#define SY_CORE_VIEW_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "arena.h"
#include "view.h"

/* Kinds of internal nodes, after the public sy_node_kind_t values. */
enum {
    SY__VK_RESOURCE_MSG = 32, /* ResourceX.resource (Resource) */
    SY__VK_SCOPE_MSG = 33,    /* ScopeX.scope (InstrumentationScope) */
    SY__VK_STATUS = 34,       /* Span.status */
    SY__VK_DATA = 35,         /* Metric.data: Gauge, Sum, Histogram, ... */
};

/* Node flags. */
enum {
    SY__VN_VIRTUAL = 1u << 0, /* absent on the wire: made to hold edits, written at commit */
    SY__VN_DROPPED = 1u << 1,
    SY__VN_LINKED = 1u << 2, /* registered as a changed child in its parent's ops */
    SY__VN_ATTRS = 1u << 3,  /* attrs[] indexed */
    SY__VN_SUB = 1u << 4,    /* sub looked up */
    SY__VN_SORTED = 1u << 5, /* ops sorted into opv */
    SY__VN_AEDIT = 1u << 6,  /* attributes edited: eff[] is built from attrs[] and the ops */
    SY__VN_EFF = 1u << 7,    /* eff[] is up to date with the ops */
};

/* One attribute: its key and its value's AnyValue content, parsed once when the
 * node's attributes are first indexed (or, in eff[], from an edit's bytes).
 * [start, end) is the KeyValue field's range in the view's buffer (original
 * attributes only). `bad`: the KeyValue does not parse (never in bytes the walk
 * accepted); it reads as SY_EINVAL. */
typedef struct sy__vattr_s {
    const uint8_t *key, *val; /* val NULL: no value (reads as EMPTY) */
    uint32_t keylen, vallen;
    uint32_t start, end;
    bool bad;
} sy__vattr_t;

typedef struct sy__vop_s sy__vop_t;
struct sy__vop_s {
    sy__vop_t *next;
    uint32_t start, end; /* the replaced range of the node's content (absolute) */
    const uint8_t *repl; /* what replaces it */
    uint32_t rlen;
    uint32_t seq;          /* order of recording: inserts at one offset keep it */
    sy_view_node_t *child; /* a changed child instead of a replacement */
    uint32_t field;        /* field ops: the field number written */
    const uint8_t *key;    /* attribute ops: the key this op decides */
    uint32_t keylen;
    bool is_attr;
    bool deleted;      /* attribute ops: the key is absent after this op */
    uint8_t check;     /* SY__VC_*: what committing repl needs (view_edit.c) */
    uint8_t vcheck;    /* attribute ops: the same for the value alone */
    uint32_t saved_cp; /* the checkpoint whose state of this op is in the undo list */
};

/* The state a checkpointed op had before a later edit changed it in place, so
 * that the checkpoint can still be written as it was (view_edit.c). */
typedef struct sy__vundo_s sy__vundo_t;
struct sy__vundo_s {
    sy__vundo_t *next;
    sy__vop_t *op;
    sy_view_node_t *node;
    sy__vop_t saved;
};

/* What a commit must do about bytes an edit wrote, in increasing order (the
 * worst of a commit's ops decides). */
enum {
    SY__VC_OK = 0,   /* made by the view from checked values: trusted */
    SY__VC_WALK = 1, /* a copied ARRAY/MAP holds a singular field twice: walk the result */
    SY__VC_BAD = 2,  /* a string that is not UTF-8, or a malformed ARRAY/MAP: refused */
};

struct sy_view_node_s {
    sy_view_t *view;
    sy_view_node_t *parent;  /* the enclosing message (internal nodes included) */
    uint32_t fstart, cs, ce; /* tag offset and content range in view->buf */
    uint8_t kind;            /* sy_node_kind_t or SY__VK_* */
    uint8_t taglen;          /* bytes of the tag at fstart */
    uint8_t flags;           /* SY__VN_* */
    uint32_t field;          /* field number of this node in its parent */
    sy_view_node_t *sub;     /* the internal node below it, if any (SY__VN_SUB) */
    sy_view_node_t **kids[2];
    uint32_t nkids[2];
    bool indexed[2];
    sy__vattr_t *attrs; /* its original attributes (SY__VN_ATTRS) */
    uint32_t nattrs;
    sy__vattr_t *eff; /* with SY__VN_AEDIT: the attributes as the commit will write them */
    uint32_t neff, effcap;
    sy__vop_t *ops, **ops_tail;
    sy__vop_t **opv; /* ops sorted (SY__VN_SORTED), for the two commit walks */
    uint32_t nops;
    uint32_t ndropped; /* of kids[0] */
    size_t newlen;     /* content length after edits (commit, first walk) */
};

/*
 * The shared view (docs/view.md, "One view for a chain of processors"). A view
 * is attached to its batch (batch->view) while the batch is held by one holder
 * only: the next view_open() of that batch returns the same view, its index and
 * its edits, instead of walking the bytes again. A commit whose edits drop
 * nothing is a checkpoint: the edits up to op `cp` are the batch's content from
 * then on (reads see them), but no bytes are written until a consumer that is
 * not the view asks for them (sy__view_settle: batch_encoded, request, retain,
 * merge, copy, the exporters' fan-out). Edits after `cp` belong to the holder
 * that has the view open: a commit makes them the next checkpoint (or writes
 * everything, when they drop), a refused commit or a close without commit
 * discards them by writing the edits up to `cp` only (apply(v, cp)).
 */
struct sy_view_s {
    sy_batch_t *batch;
    sy_signal_t signal;
    const uint8_t *buf;
    size_t len;
    sy__arena_t arena; /* nodes, indexes, edits: freed on close or commit */
    sy_view_node_t *root;
    uint32_t seq;
    uint64_t gen;   /* new on every open and commit: names this buffer among all views */
    uint32_t cp;    /* ops 1..cp are checkpointed (committed, not yet written) */
    uint32_t drops; /* view_drop() calls since the last reset */
    uint32_t nbad;  /* ops whose check is SY__VC_BAD */
    bool attached;  /* batch->view == this view */
    bool open;      /* a holder has it open (between view_open and view_close) */
    bool stale;     /* settled while open: the batch holds ops 1..cp already */
    /* The batch's state when buf was taken (reset): what a commit builds on. */
    uint64_t base_items, base_occ;
    bool base_trusted;
    sy__vundo_t *undo; /* checkpointed ops changed since the checkpoint */
    sy_view_t *mirror; /* a view of the batch's bytes with the checkpoint written */
};

/* Off switch of the shared view, for tests and fuzz_view's oracle: when false,
 * every commit writes at once and no view is attached to its batch. */
extern bool sy__view_share;

/* ---- the wire ----------------------------------------------------------------- */

/* One field occurrence: the tag at `start`, the value's bytes [vs, ve) (for wire
 * types 1 and 5 the fixed bytes, for 0 the varint), and the varint/fixed value. */
typedef struct sy__pbf_s {
    uint32_t num;
    int wt;
    size_t start, vs, ve;
    uint64_t v;
} sy__pbf_t;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define SY__LE64(x) __builtin_bswap64(x)
#define SY__LE32(x) __builtin_bswap32(x)
#else
#define SY__LE64(x) (x)
#define SY__LE32(x) (x)
#endif

/* sy__pb_next() for any field: out of line. */
int sy__pb_next_any(const uint8_t *buf, size_t *pos, size_t end, sy__pbf_t *f);

/* Reads the field at *pos of buf[..end); advances *pos past it. Returns 1, 0 at
 * end, -1 on bytes that do not parse. Inline for the fields most of OTLP is made
 * of (a one-byte tag, and a one-byte varint, a fixed number, or a length under
 * 16384); the rest, and every error, goes out of line. */
static inline int sy__pb_next(const uint8_t *buf, size_t *pos, size_t end, sy__pbf_t *f)
{
    size_t off = *pos;
    if (off >= end) return 0;
    uint8_t tag = buf[off];
    size_t room = end - off; /* at least 1 */
    if (__builtin_expect(tag >= 8 && tag < 0x80 && room >= 2, 1)) {
        size_t n;
        switch (tag & 7) {
        case 2: {
            size_t l = buf[off + 1], h = 2; /* the length, and where the value starts */
            if (l >= 0x80) {                /* a two-byte length: a span, a scope */
                if (room < 3 || buf[off + 2] >= 0x80) break;
                l = (l & 0x7f) | (size_t)buf[off + 2] << 7;
                h = 3;
            }
            if (l > room - h) break;
            f->v = l;
            f->vs = off + h;
            f->ve = off + h + l;
            goto done;
        }
        case 0:
            if (buf[off + 1] >= 0x80) break;
            f->v = buf[off + 1];
            f->vs = off + 1;
            f->ve = off + 2;
            goto done;
        case 1:
        case 5:
            n = (tag & 7) == 1 ? 8 : 4;
            if (room - 1 < n) break;
            if (n == 8) {
                uint64_t x;
                memcpy(&x, buf + off + 1, 8);
                f->v = SY__LE64(x);
            } else {
                uint32_t x;
                memcpy(&x, buf + off + 1, 4);
                f->v = SY__LE32(x);
            }
            f->vs = off + 1;
            f->ve = off + 1 + n;
            goto done;
        default:
            break;
        }
    }
    return sy__pb_next_any(buf, pos, end, f);
done:
    f->start = off;
    f->num = tag >> 3;
    f->wt = tag & 7;
    *pos = f->ve;
    return 1;
}
/* The last occurrence of field `num` (any wire type) in buf[s, e): 1, 0, -1. */
int sy__pb_find(const uint8_t *buf, size_t s, size_t e, uint32_t num, sy__pbf_t *out);
size_t sy__varint_size(uint64_t v);
size_t sy__varint_put(uint8_t *p, uint64_t v);

/* ---- nodes (view.c) ------------------------------------------------------------ */

void *sy__view_alloc(sy_view_t *v, size_t size); /* zeroed; NULL when out of memory */
sy_view_node_t *sy__view_node_new(sy_view_t *v, sy_view_node_t *parent, int kind,
                                  const sy__pbf_t *f);
/* The internal node below `n` (Resource, InstrumentationScope, Status, metric
 * data); with `create`, a virtual one when absent (NULL for metric data). */
sy_view_node_t *sy__view_sub(sy_view_node_t *n, bool create);
/* The node whose content holds n's attributes, and their field number there; NULL
 * when n has none (or, without create, its Resource/InstrumentationScope is absent). */
sy_view_node_t *sy__view_attr_host(sy_view_node_t *n, bool create, uint32_t *field);
int sy__view_index_attrs(sy_view_node_t *h, uint32_t field);
/* The index of the first of h's indexed attributes named key, or -1. */
long sy__view_attr_find(sy_view_node_t *h, const char *key, size_t keylen);
/* Parses a KeyValue's content p[0..len) into a (key and value pointers; bad when
 * it does not parse). */
void sy__view_attr_parse(const uint8_t *p, size_t len, sy__vattr_t *a);
/* The value of an attribute entry. */
int sy__view_attr_value(const sy__vattr_t *a, sy_value_t *val);
/* Parses a KeyValue's content into key and value. */
int sy__view_parse_kv(const uint8_t *p, size_t len, sy_value_t *key, sy_value_t *val);
int sy__view_parse_any(const uint8_t *p, size_t len, sy_value_t *out);
/* The logical parent (internal nodes skipped). */
sy_view_node_t *sy__view_parent(const sy_view_node_t *n);
/* Frees nodes and edits and roots the view at its batch's current bytes. */
int sy__view_reset(sy_view_t *v);

/* ---- edits (view_edit.c) -------------------------------------------------------- */

int sy__view_set(sy_view_node_t *n, sy_field_t field, const sy_value_t *val);
int sy__view_attr_set(sy_view_node_t *n, const char *key, size_t keylen, const sy_value_t *val,
                      sy_attr_mode_t mode);
int sy__view_attr_delete(sy_view_node_t *n, const char *key, size_t keylen);
int sy__view_attr_rename(sy_view_node_t *n, const char *key, size_t keylen, const char *nkey,
                         size_t nkeylen);
int sy__view_drop(sy_view_node_t *n);
int sy__view_commit(sy_view_t *v);
/* Writes the view's buffer with its ops 1..bound (all of them: UINT32_MAX) into
 * its batch; with a bound, drops are ignored (a checkpoint holds none). The view
 * itself is left as it is. */
int sy__view_apply(sy_view_t *v, uint32_t bound);
/* Frees a view that no holder has open and no batch holds. */
void sy__view_free(sy_view_t *v);
/* A view of v's batch with v's checkpoint written (the batch is settled; the view
 * is kept in v until v is reset), for the builder; NULL when out of memory. */
sy_view_t *sy__view_written(sy_view_t *v);
/* Read-your-writes: the latest op that decides attribute `key` of host h, or NULL
 * (then the original attributes decide). */
sy__vop_t *sy__view_attr_op(sy_view_node_t *h, const char *key, size_t keylen);
/* The latest op that set field `num` of node t, or NULL. */
const sy__vop_t *sy__view_field_op(const sy_view_node_t *t, uint32_t num);
/* Builds h->eff, the attributes as the commit will write them, if stale. */
int sy__view_attrs_effective(sy_view_node_t *h);
/* The AnyValue encoding of val (content only); its size with buf NULL. SY_EINVAL
 * for an ARRAY or MAP not read from a view. */
int sy__view_encode_any(const sy_value_t *val, uint8_t *buf, size_t *len);

/* ---- the field table (view.c) ---------------------------------------------------- */

typedef enum sy__ftype_e {
    SY__FT_STR = 1,
    SY__FT_BYTES,
    SY__FT_UVARINT, /* uint32 / uint64 varint */
    SY__FT_ENUM,    /* int32 varint (sign-extended from 32 bits) */
    SY__FT_SINT32,
    SY__FT_BOOL,
    SY__FT_FIXED64,
    SY__FT_FIXED32,
    SY__FT_DOUBLE,
    SY__FT_ANY,    /* an AnyValue message */
    SY__FT_NUMVAL, /* oneof double (f1) / sfixed64 (f2) */
    SY__FT_MTYPE,  /* which Metric.data member */
    SY__FT_ARR_FIXED64,
    SY__FT_ARR_DOUBLE,
    SY__FT_ARR_UVARINT,
    SY__FT_QUANT,
} sy__ftype_t;

#define SY__F_SUB  0xff /* f1: inside the node's internal sub node */
#define SY__F_DATA 0xfe /* f1: inside the metric's data (Gauge, Sum, ...) */

typedef struct sy__fspec_s {
    uint8_t field; /* sy_field_t */
    uint8_t f1;    /* field number in the node, or SY__F_SUB / SY__F_DATA */
    uint8_t f2;    /* field number inside the sub node; NUMVAL: the int member */
    uint8_t type;  /* sy__ftype_t */
    bool ro;       /* read only */
} sy__fspec_t;

/* The spec of `field` on a node of `kind`, or NULL. */
const sy__fspec_t *sy__view_spec(int kind, sy_field_t field);

/* Packed-iteration kinds of a value's priv_kind (low byte; field number above). */
enum {
    SY__PK_ANYARRAY = 1,
    SY__PK_KVLIST = 2,
    SY__PK_FIXED64 = 3,
    SY__PK_DOUBLE = 4,
    SY__PK_UVARINT = 5,
    SY__PK_QUANT = 6,
};

#endif
