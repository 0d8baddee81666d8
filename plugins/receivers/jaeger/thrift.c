/*
 * thrift.c - the Thrift binary and compact protocol reader (see thrift.h).
 *
 * Binary: big-endian fixed-width integers, a field header is a type byte and a
 * 16-bit id, strings and containers carry a 32-bit size. Compact: integers are
 * zigzag varints, a field header packs the id's delta from the previous field and
 * the type into one byte, a bool field carries its value in the type, container
 * headers pack a small size with the element type. Both are read with the same
 * bounds: nothing past `end`, no size larger than what is left, no nesting past
 * TH_MAX_DEPTH.
 */
#include "thrift.h"

#include <string.h>

/* Compact type ids (TCompactProtocol's "TType" nibble). */
enum {
    TC_BOOL_TRUE = 1,
    TC_BOOL_FALSE = 2,
    TC_BYTE = 3,
    TC_I16 = 4,
    TC_I32 = 5,
    TC_I64 = 6,
    TC_DOUBLE = 7,
    TC_BINARY = 8,
    TC_LIST = 9,
    TC_SET = 10,
    TC_MAP = 11,
    TC_STRUCT = 12,
};

#define TC_PROTOCOL_ID 0x82
#define TC_VERSION     1
#define TB_VERSION_1   0x80010000u

void th_init(th_reader_t *r, th_proto_t proto, const uint8_t *data, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->start = r->p = data;
    r->end = data + len;
    r->proto = proto;
    r->bool_pending = -1;
}

int th_fail(th_reader_t *r, const char *why)
{
    if (!r->err) r->err = why;
    r->p = r->end; /* every later read fails too */
    return -1;
}

static inline size_t left(const th_reader_t *r)
{
    return (size_t)(r->end - r->p);
}

static int need(th_reader_t *r, size_t n)
{
    if (r->err) return -1;
    if (left(r) < n) return th_fail(r, "truncated: the data ends inside a value");
    return 0;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* An unsigned varint of at most max_bytes bytes (5 for 32 bits, 10 for 64). */
static int varint(th_reader_t *r, int max_bytes, uint64_t *out)
{
    uint64_t v = 0;
    if (r->err) return -1;
    for (int i = 0; i < max_bytes; i++) {
        if (r->p >= r->end) return th_fail(r, "truncated: the data ends inside a varint");
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return th_fail(r, "malformed varint: too many bytes");
}

static int64_t unzigzag(uint64_t n)
{
    return (int64_t)(n >> 1) ^ -(int64_t)(n & 1);
}

/* A compact type nibble as the binary protocol's type id; TH_STOP when unknown. */
static th_type_t from_compact(int t)
{
    static const th_type_t map[13] = {
        TH_STOP,   TH_BOOL,   TH_BOOL, TH_BYTE, TH_I16, TH_I32,    TH_I64,
        TH_DOUBLE, TH_STRING, TH_LIST, TH_SET,  TH_MAP, TH_STRUCT,
    };
    return t >= 0 && t < 13 ? map[t] : TH_STOP;
}

static bool known_type(int t)
{
    switch (t) {
    case TH_BOOL:
    case TH_BYTE:
    case TH_DOUBLE:
    case TH_I16:
    case TH_I32:
    case TH_I64:
    case TH_STRING:
    case TH_STRUCT:
    case TH_MAP:
    case TH_SET:
    case TH_LIST:
        return true;
    default:
        return false;
    }
}

/* A size read from the wire, checked against the bytes left (each element or
 * byte takes at least one byte). */
static int checked_size(th_reader_t *r, int64_t n, uint32_t *out)
{
    if (r->err) return -1;
    if (n < 0) return th_fail(r, "negative size");
    if ((uint64_t)n > left(r)) return th_fail(r, "a size is larger than the data left");
    *out = (uint32_t)n;
    return 0;
}

static int read_size(th_reader_t *r, uint32_t *out)
{
    if (r->proto == TH_PROTO_COMPACT) {
        uint64_t v;
        if (varint(r, 5, &v) != 0) return -1;
        if (v > INT32_MAX) return th_fail(r, "negative size");
        return checked_size(r, (int64_t)v, out);
    }
    if (need(r, 4) != 0) return -1;
    int32_t n = (int32_t)(uint32_t)be(r->p, 4);
    r->p += 4;
    return checked_size(r, n, out);
}

int th_read_binary(th_reader_t *r, const uint8_t **p, uint32_t *len)
{
    uint32_t n;
    if (read_size(r, &n) != 0) return -1;
    *p = r->p;
    *len = n;
    r->p += n;
    return 0;
}

int th_message_begin(th_reader_t *r, const uint8_t **name, size_t *name_len, int *type,
                     int32_t *seqid)
{
    uint32_t n;
    if (r->proto == TH_PROTO_COMPACT) {
        if (need(r, 2) != 0) return -1;
        if (r->p[0] != TC_PROTOCOL_ID) return th_fail(r, "not a compact protocol message");
        if ((r->p[1] & 0x1f) != TC_VERSION) return th_fail(r, "unknown compact protocol version");
        *type = (r->p[1] >> 5) & 0x07;
        r->p += 2;
        uint64_t s;
        if (varint(r, 5, &s) != 0) return -1;
        *seqid = (int32_t)(uint32_t)s;
        if (th_read_binary(r, name, &n) != 0) return -1;
        *name_len = n;
        return 0;
    }
    if (need(r, 4) != 0) return -1;
    uint32_t word = (uint32_t)be(r->p, 4);
    if (word & 0x80000000u) { /* strict: version, type, name, seqid */
        if ((word & 0xffff0000u) != TB_VERSION_1)
            return th_fail(r, "unknown binary protocol version");
        *type = (int)(word & 0xff);
        r->p += 4;
        if (th_read_binary(r, name, &n) != 0) return -1;
        *name_len = n;
    } else { /* old style: name, type byte, seqid */
        if (th_read_binary(r, name, &n) != 0) return -1;
        *name_len = n;
        int8_t t;
        if (th_read_byte(r, &t) != 0) return -1;
        *type = t;
    }
    return th_read_i32(r, seqid);
}

static int nest(th_reader_t *r)
{
    if (r->err) return -1;
    if (r->depth >= TH_MAX_DEPTH) return th_fail(r, "nested too deep");
    r->depth++;
    r->last_fid[r->depth] = 0;
    return 0;
}

int th_struct_begin(th_reader_t *r)
{
    return nest(r);
}

int th_container_end(th_reader_t *r)
{
    if (r->err) return -1;
    if (r->depth > 0) r->depth--;
    return 0;
}

int th_struct_end(th_reader_t *r)
{
    return th_container_end(r);
}

int th_field_begin(th_reader_t *r, th_type_t *type, int16_t *id)
{
    if (need(r, 1) != 0) return -1;
    uint8_t b = *r->p++;
    if (r->proto == TH_PROTO_BINARY) {
        *type = (th_type_t)b;
        *id = 0;
        if (b == TH_STOP) return 0;
        if (!known_type(b)) return th_fail(r, "unknown field type");
        if (need(r, 2) != 0) return -1;
        *id = (int16_t)(uint16_t)be(r->p, 2);
        r->p += 2;
        return 0;
    }
    if (b == 0) {
        *type = TH_STOP;
        *id = 0;
        return 0;
    }
    int t = b & 0x0f, delta = b >> 4;
    *type = from_compact(t);
    if (*type == TH_STOP) return th_fail(r, "unknown field type");
    int16_t fid;
    if (delta) {
        fid = (int16_t)(r->last_fid[r->depth] + delta);
    } else {
        uint64_t v;
        if (varint(r, 3, &v) != 0) return -1;
        int64_t s = unzigzag(v);
        if (s < INT16_MIN || s > INT16_MAX) return th_fail(r, "field id out of range");
        fid = (int16_t)s;
    }
    r->last_fid[r->depth] = fid;
    *id = fid;
    r->bool_pending = t == TC_BOOL_TRUE ? 1 : t == TC_BOOL_FALSE ? 0 : -1;
    return 0;
}

int th_read_bool(th_reader_t *r, bool *v)
{
    if (r->proto == TH_PROTO_COMPACT && r->bool_pending >= 0) {
        *v = r->bool_pending == 1;
        r->bool_pending = -1;
        return r->err ? -1 : 0;
    }
    if (need(r, 1) != 0) return -1;
    uint8_t b = *r->p++;
    *v = r->proto == TH_PROTO_COMPACT ? b == TC_BOOL_TRUE : b != 0;
    return 0;
}

int th_read_byte(th_reader_t *r, int8_t *v)
{
    if (need(r, 1) != 0) return -1;
    *v = (int8_t)*r->p++;
    return 0;
}

static int read_int(th_reader_t *r, int bytes, int64_t *v)
{
    if (r->proto == TH_PROTO_COMPACT) {
        uint64_t u;
        if (varint(r, bytes == 8 ? 10 : bytes == 4 ? 5 : 3, &u) != 0) return -1;
        *v = unzigzag(u);
        return 0;
    }
    if (need(r, (size_t)bytes) != 0) return -1;
    uint64_t u = be(r->p, bytes);
    r->p += bytes;
    /* sign-extend from `bytes` bytes */
    int shift = 64 - 8 * bytes;
    *v = shift ? (int64_t)(u << shift) >> shift : (int64_t)u;
    return 0;
}

int th_read_i16(th_reader_t *r, int16_t *v)
{
    int64_t x;
    if (read_int(r, 2, &x) != 0) return -1;
    if (x < INT16_MIN || x > INT16_MAX) return th_fail(r, "i16 out of range");
    *v = (int16_t)x;
    return 0;
}

int th_read_i32(th_reader_t *r, int32_t *v)
{
    int64_t x;
    if (read_int(r, 4, &x) != 0) return -1;
    if (x < INT32_MIN || x > INT32_MAX) return th_fail(r, "i32 out of range");
    *v = (int32_t)x;
    return 0;
}

int th_read_i64(th_reader_t *r, int64_t *v)
{
    return read_int(r, 8, v);
}

int th_read_double(th_reader_t *r, double *v)
{
    if (need(r, 8) != 0) return -1;
    uint64_t u;
    if (r->proto == TH_PROTO_COMPACT) { /* little-endian */
        u = 0;
        for (int i = 7; i >= 0; i--)
            u = u << 8 | r->p[i];
    } else {
        u = be(r->p, 8);
    }
    r->p += 8;
    memcpy(v, &u, sizeof(*v));
    return 0;
}

int th_list_begin(th_reader_t *r, th_type_t *elem, uint32_t *count)
{
    if (r->proto == TH_PROTO_COMPACT) {
        if (need(r, 1) != 0) return -1;
        uint8_t b = *r->p++;
        *elem = from_compact(b & 0x0f);
        if (*elem == TH_STOP) return th_fail(r, "unknown list element type");
        uint32_t n = b >> 4;
        if (n == 15) {
            if (read_size(r, &n) != 0) return -1;
        } else if (checked_size(r, n, &n) != 0) {
            return -1;
        }
        *count = n;
        return nest(r);
    }
    if (need(r, 1) != 0) return -1;
    uint8_t t = *r->p++;
    if (!known_type(t)) return th_fail(r, "unknown list element type");
    *elem = (th_type_t)t;
    if (read_size(r, count) != 0) return -1;
    return nest(r);
}

static int map_begin(th_reader_t *r, th_type_t *k, th_type_t *v, uint32_t *count)
{
    if (r->proto == TH_PROTO_COMPACT) {
        if (read_size(r, count) != 0) return -1;
        *k = *v = TH_STOP;
        if (*count) {
            if (need(r, 1) != 0) return -1;
            uint8_t b = *r->p++;
            *k = from_compact(b >> 4);
            *v = from_compact(b & 0x0f);
            if (*k == TH_STOP || *v == TH_STOP) return th_fail(r, "unknown map element type");
        }
        return nest(r);
    }
    if (need(r, 2) != 0) return -1;
    uint8_t kt = r->p[0], vt = r->p[1];
    r->p += 2;
    if (!known_type(kt) || !known_type(vt)) return th_fail(r, "unknown map element type");
    *k = (th_type_t)kt;
    *v = (th_type_t)vt;
    if (read_size(r, count) != 0) return -1;
    return nest(r);
}

int th_skip(th_reader_t *r, th_type_t type)
{
    if (r->err) return -1;
    bool b;
    int8_t i8;
    int64_t i64;
    double d;
    const uint8_t *p;
    uint32_t n;
    th_type_t t, k, v;
    int16_t id;
    switch (type) {
    case TH_BOOL:
        return th_read_bool(r, &b);
    case TH_BYTE:
        return th_read_byte(r, &i8);
    case TH_I16:
        return read_int(r, 2, &i64);
    case TH_I32:
        return read_int(r, 4, &i64);
    case TH_I64:
        return read_int(r, 8, &i64);
    case TH_DOUBLE:
        return th_read_double(r, &d);
    case TH_STRING:
        return th_read_binary(r, &p, &n);
    case TH_STRUCT:
        if (th_struct_begin(r) != 0) return -1;
        for (;;) {
            if (th_field_begin(r, &t, &id) != 0) return -1;
            if (t == TH_STOP) break;
            if (th_skip(r, t) != 0) return -1;
        }
        return th_struct_end(r);
    case TH_LIST:
    case TH_SET:
        if (th_list_begin(r, &t, &n) != 0) return -1;
        for (uint32_t i = 0; i < n; i++)
            if (th_skip(r, t) != 0) return -1;
        return th_container_end(r);
    case TH_MAP:
        if (map_begin(r, &k, &v, &n) != 0) return -1;
        for (uint32_t i = 0; i < n; i++)
            if (th_skip(r, k) != 0 || th_skip(r, v) != 0) return -1;
        return th_container_end(r);
    default:
        return th_fail(r, "unknown type");
    }
}
