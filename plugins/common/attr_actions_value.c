/*
 * attr_actions_value.c - values as the collector's pcommon writes them: the
 * string form of a value (Value.AsString) and the OTLP encoding of AnyValues,
 * for the processors that write map and array values (the attributes
 * processor's list and map `value`s, the redaction processor's rewritten log
 * bodies). The encoding follows common.proto: AnyValue string = 1, bool = 2,
 * int = 3, double = 4, array = 5, kvlist = 6, bytes = 7; ArrayValue and
 * KeyValueList are `repeated ... values = 1`; KeyValue is key = 1, value = 2.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr_actions.h"
#include "ottl.h"

int syc_buf_put(syc_buf_t *b, const void *p, size_t n)
{
    if (n == 0) return SY_OK;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return SY_ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return SY_OK;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t syc_value_as_string_cap(const sy_value_t *v)
{
    return v->type == SY_VALUE_BYTES ? (v->len + 2) / 3 * 4 + 1 : 48;
}

int syc_value_as_string(const sy_value_t *v, char *buf, size_t cap, const char **out,
                        size_t *out_len)
{
    int n = 0;
    *out = buf;
    switch (v->type) {
    case SY_VALUE_STRING:
        *out = v->str ? v->str : "";
        *out_len = v->len;
        return SY_OK;
    case SY_VALUE_EMPTY:
        *out = "";
        *out_len = 0;
        return SY_OK;
    case SY_VALUE_BOOL:
        *out = v->b ? "true" : "false";
        *out_len = v->b ? 4 : 5;
        return SY_OK;
    case SY_VALUE_INT:
        n = snprintf(buf, cap, "%" PRId64, v->i);
        break;
    case SY_VALUE_DOUBLE:
        if (isnan(v->d))
            n = snprintf(buf, cap, "NaN");
        else if (isinf(v->d))
            n = snprintf(buf, cap, v->d > 0 ? "+Inf" : "-Inf");
        else
            n = (int)syc_ottl_format_double(v->d, buf, cap);
        break;
    case SY_VALUE_BYTES: {
        size_t len = v->len, o = 0;
        const uint8_t *in = v->bytes;
        if (cap < syc_value_as_string_cap(v)) return SY_ENOMEM;
        for (size_t i = 0; i < len; i += 3) {
            uint32_t w = (uint32_t)in[i] << 16;
            if (i + 1 < len) w |= (uint32_t)in[i + 1] << 8;
            if (i + 2 < len) w |= in[i + 2];
            buf[o++] = b64[(w >> 18) & 63];
            buf[o++] = b64[(w >> 12) & 63];
            buf[o++] = i + 1 < len ? b64[(w >> 6) & 63] : '=';
            buf[o++] = i + 2 < len ? b64[w & 63] : '=';
        }
        *out_len = o;
        return SY_OK;
    }
    default:
        return SY_EINVAL; /* arrays and maps (the collector writes JSON) */
    }
    if (n < 0 || (size_t)n >= cap) return SY_ENOMEM;
    *out_len = (size_t)n;
    return SY_OK;
}

/* ---- the wire format ---- */

size_t syc_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

int syc_buf_put_varint(syc_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return syc_buf_put(b, tmp, n);
}

/* The header of a length-delimited field (every field written here is < 16). */
int syc_buf_put_ld(syc_buf_t *b, uint32_t field, size_t len)
{
    uint8_t tag = (uint8_t)(field << 3 | 2);
    int rc = syc_buf_put(b, &tag, 1);
    return rc < 0 ? rc : syc_buf_put_varint(b, len);
}

/* The size of the encoded AnyValue of a scalar, or of a container whose content
 * is clen bytes long. */
static size_t any_size(const sy_value_t *v, size_t clen)
{
    switch (v->type) {
    case SY_VALUE_STRING:
    case SY_VALUE_BYTES:
        return 1 + syc_varint_size(v->len) + v->len;
    case SY_VALUE_BOOL:
        return 2;
    case SY_VALUE_INT:
        return 1 + syc_varint_size((uint64_t)v->i);
    case SY_VALUE_DOUBLE:
        return 9;
    case SY_VALUE_ARRAY:
    case SY_VALUE_MAP:
        return 1 + syc_varint_size(clen) + clen;
    default:
        return 0;
    }
}

/* Writes the AnyValue of v; a container's content is content[0, clen). */
static int put_any(syc_buf_t *b, const sy_value_t *v, const void *content, size_t clen)
{
    uint8_t tmp[10];
    int rc;
    switch (v->type) {
    case SY_VALUE_STRING:
    case SY_VALUE_BYTES:
        if ((rc = syc_buf_put_ld(b, v->type == SY_VALUE_STRING ? 1 : 7, v->len)) < 0) return rc;
        return syc_buf_put(b, v->type == SY_VALUE_STRING ? (const void *)v->str : v->bytes, v->len);
    case SY_VALUE_BOOL:
        tmp[0] = 2 << 3;
        tmp[1] = v->b ? 1 : 0;
        return syc_buf_put(b, tmp, 2);
    case SY_VALUE_INT:
        tmp[0] = 3 << 3;
        if ((rc = syc_buf_put(b, tmp, 1)) < 0) return rc;
        return syc_buf_put_varint(b, (uint64_t)v->i);
    case SY_VALUE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->d, sizeof(bits));
        tmp[0] = 4 << 3 | 1;
        for (int i = 0; i < 8; i++)
            tmp[1 + i] = (uint8_t)(bits >> (8 * i));
        return syc_buf_put(b, tmp, 9);
    }
    case SY_VALUE_ARRAY:
    case SY_VALUE_MAP:
        if ((rc = syc_buf_put_ld(b, v->type == SY_VALUE_ARRAY ? 5 : 6, clen)) < 0) return rc;
        return syc_buf_put(b, content, clen);
    default:
        return SY_OK;
    }
}

int syc_anyvalue_put_entry(syc_buf_t *b, const sy_value_t *key, const sy_value_t *v,
                           const void *content, size_t clen)
{
    if ((v->type == SY_VALUE_ARRAY || v->type == SY_VALUE_MAP) && !content) {
        content = v->priv; /* as read from a view: copied encoded */
        clen = v->priv_len;
    }
    size_t alen = any_size(v, clen);
    int rc;
    if (!key) {
        if ((rc = syc_buf_put_ld(b, 1, alen)) < 0) return rc;
        return put_any(b, v, content, clen);
    }
    size_t kvlen = 1 + syc_varint_size(key->len) + key->len + 1 + syc_varint_size(alen) + alen;
    if ((rc = syc_buf_put_ld(b, 1, kvlen)) < 0 || (rc = syc_buf_put_ld(b, 1, key->len)) < 0 ||
        (rc = syc_buf_put(b, key->str, key->len)) < 0 || (rc = syc_buf_put_ld(b, 2, alen)) < 0)
        return rc;
    return put_any(b, v, content, clen);
}
