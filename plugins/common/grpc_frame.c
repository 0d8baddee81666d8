/*
 * grpc_frame.c - gRPC message framing, grpc-timeout, grpc-message escaping and
 * grpc-status-details-bin (see grpc_frame.h).
 */
#include "grpc_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define RETRY_INFO_TYPE_URL "type.googleapis.com/google.rpc.RetryInfo"

const char *syc_grpc_code_name(int code)
{
    static const char *const names[] = {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    if (code < 0 || code >= (int)(sizeof(names) / sizeof(names[0]))) return "UNKNOWN";
    return names[code];
}

bool syc_grpc_code_retryable(int code, bool has_retry_info)
{
    switch (code) {
    case SYC_GRPC_CANCELLED:
    case SYC_GRPC_DEADLINE_EXCEEDED:
    case SYC_GRPC_ABORTED:
    case SYC_GRPC_OUT_OF_RANGE:
    case SYC_GRPC_UNAVAILABLE:
    case SYC_GRPC_DATA_LOSS:
        return true;
    case SYC_GRPC_RESOURCE_EXHAUSTED:
        return has_retry_info;
    default:
        return false;
    }
}

/* ------------------------------------------------------------------------ */
/* Framing                                                                   */
/* ------------------------------------------------------------------------ */

void syc_grpc_frame_header(uint8_t out[SYC_GRPC_FRAME_HEADER], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

void syc_grpc_parser_init(syc_grpc_parser_t *p, size_t max_message, syc_alloc_fn alloc, void *ctx)
{
    memset(p, 0, sizeof(*p));
    p->max_message = max_message;
    p->alloc = alloc;
    p->alloc_ctx = ctx;
}

bool syc_grpc_parser_idle(const syc_grpc_parser_t *p)
{
    return p->header_len == 0;
}

int syc_grpc_parser_feed(syc_grpc_parser_t *p, const uint8_t *data, size_t len, size_t *used,
                         syc_grpc_message_t *out, uint64_t *declared)
{
    static const uint8_t empty[1];
    size_t pos = 0;
    *used = 0;
    if (p->error) return p->error;
    while (pos < len || (p->header_len == SYC_GRPC_FRAME_HEADER && p->body_len == p->length)) {
        if (p->header_len < SYC_GRPC_FRAME_HEADER) {
            size_t take = SYC_GRPC_FRAME_HEADER - p->header_len;
            if (take > len - pos) take = len - pos;
            memcpy(p->header + p->header_len, data + pos, take);
            p->header_len = (uint8_t)(p->header_len + take);
            pos += take;
            if (p->header_len < SYC_GRPC_FRAME_HEADER) break;
            if (p->header[0] > 1) {
                *used = pos;
                return p->error = SY_EINVAL;
            }
            p->compressed = p->header[0] == 1;
            p->length = (uint32_t)p->header[1] << 24 | (uint32_t)p->header[2] << 16 |
                        (uint32_t)p->header[3] << 8 | p->header[4];
            p->body_len = 0;
            if (declared) *declared = p->length;
            if (p->length > p->max_message) {
                *used = pos;
                return p->error = SY_ENOMEM;
            }
            /* The whole message is asked for at once, never more than the bound. */
            p->body = p->length ? p->alloc(p->alloc_ctx, p->length) : (uint8_t *)empty;
            if (!p->body) {
                *used = pos;
                return p->error = SY_ENOMEM;
            }
            continue;
        }
        if (p->body_len < p->length) {
            size_t take = p->length - p->body_len;
            if (take > len - pos) take = len - pos;
            memcpy(p->body + p->body_len, data + pos, take);
            p->body_len += take;
            pos += take;
        }
        if (p->body_len == p->length) {
            out->compressed = p->compressed;
            out->data = p->body;
            out->len = p->length;
            p->header_len = 0;
            p->body = NULL;
            p->body_len = 0;
            p->length = 0;
            *used = pos;
            return SYC_GRPC_PARSE_MESSAGE;
        }
    }
    *used = pos;
    return SYC_GRPC_PARSE_MORE;
}

int syc_grpc_decompress(const char *encoding, const uint8_t *in, size_t in_len, size_t max_out,
                        syc_alloc_fn alloc, void *ctx, uint8_t **out, size_t *out_len, char *err,
                        size_t err_len)
{
    syc_encoding_t enc = syc_encoding_parse(encoding);
    if (enc == SYC_ENCODING_IDENTITY) {
        snprintf(err, err_len, "compressed flag set with identity or empty grpc-encoding");
        return SY_EINVAL;
    }
    if (enc == SYC_ENCODING_UNKNOWN) {
        snprintf(err, err_len, "grpc: Decompressor is not installed for grpc-encoding \"%.64s\"",
                 encoding);
        return SY_ENOTSUP;
    }
    return syc_decompress(enc, in, in_len, max_out, alloc, ctx, out, out_len, err, err_len);
}

/* ------------------------------------------------------------------------ */
/* Headers                                                                   */
/* ------------------------------------------------------------------------ */

int syc_grpc_timeout_parse(const char *value, uint64_t *ms)
{
    if (!value) return SY_EINVAL;
    size_t n = strlen(value);
    if (n < 2 || n > 9 || strspn(value, "0123456789") != n - 1) return SY_EINVAL;
    uint64_t v = strtoull(value, NULL, 10); /* at most 8 digits: no overflow below */
    switch (value[n - 1]) {
    case 'H':
        *ms = v * 3600000u;
        break;
    case 'M':
        *ms = v * 60000u;
        break;
    case 'S':
        *ms = v * 1000u;
        break;
    case 'm':
        *ms = v;
        break;
    case 'u':
        *ms = (v + 999u) / 1000u;
        break;
    case 'n':
        *ms = (v + 999999u) / 1000000u;
        break;
    default:
        return SY_EINVAL;
    }
    return 0;
}

size_t syc_grpc_message_encode(const char *message, char *out, size_t out_len)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    if (out_len == 0) return 0;
    for (const unsigned char *s = (const unsigned char *)message; s && *s; s++) {
        bool plain = *s >= 0x20 && *s <= 0x7e && *s != '%';
        size_t need = plain ? 1 : 3;
        if (n + need >= out_len) break;
        if (plain) {
            out[n++] = (char)*s;
        } else {
            out[n++] = '%';
            out[n++] = hex[*s >> 4];
            out[n++] = hex[*s & 15];
        }
    }
    out[n] = '\0';
    return n;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void syc_grpc_message_decode(char *message)
{
    char *w = message;
    for (const char *r = message; *r; r++) {
        int hi, lo;
        if (r[0] == '%' && (hi = hex_value(r[1])) >= 0 && (lo = hex_value(r[2])) >= 0) {
            *w++ = (char)(hi << 4 | lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* ------------------------------------------------------------------------ */
/* grpc-status-details-bin                                                   */
/* ------------------------------------------------------------------------ */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Unpadded base64 of in[0..len) into out; returns the length or 0 if it does not
 * fit with its NUL. */
static size_t b64_encode(const uint8_t *in, size_t len, char *out, size_t out_len)
{
    size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0);
    if (need + 1 > out_len) return 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[n++] = b64_alphabet[v >> 18 & 63];
        out[n++] = b64_alphabet[v >> 12 & 63];
        if (i + 1 < len) out[n++] = b64_alphabet[v >> 6 & 63];
        if (i + 2 < len) out[n++] = b64_alphabet[v & 63];
    }
    out[n] = '\0';
    return n;
}

/* Decodes base64 (padding optional) into out[out_cap]; returns the length or -1. */
static long b64_decode(const char *in, size_t len, uint8_t *out, size_t out_cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    while (len > 0 && in[len - 1] == '=')
        len--;
    for (size_t i = 0; i < len; i++) {
        const char *at = memchr(b64_alphabet, in[i], 64);
        if (!at || in[i] == '\0') return -1;
        acc = acc << 6 | (uint32_t)(at - b64_alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= out_cap) return -1;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    return (long)n;
}

size_t syc_grpc_status_details_retry(int code, const char *message, uint64_t retry_ms, char *out,
                                     size_t out_len)
{
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    delay.seconds = (int64_t)(retry_ms / 1000u);
    delay.nanos = (int32_t)(retry_ms % 1000u * 1000000u);
    Google__Rpc__RetryInfo info = GOOGLE__RPC__RETRY_INFO__INIT;
    info.retry_delay = &delay;
    uint8_t info_buf[64];
    if (google__rpc__retry_info__get_packed_size(&info) > sizeof(info_buf)) return 0;

    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = (char *)RETRY_INFO_TYPE_URL;
    any.value.data = info_buf;
    any.value.len = google__rpc__retry_info__pack(&info, info_buf);
    Google__Protobuf__Any *details[1] = {&any};

    Google__Rpc__Status status = GOOGLE__RPC__STATUS__INIT;
    status.code = code;
    status.message = (char *)(message ? message : "");
    status.n_details = 1;
    status.details = details;
    size_t need = google__rpc__status__get_packed_size(&status);
    if (need > out_len) return 0; /* base64 is longer than the bytes anyway */
    uint8_t *buf = malloc(need ? need : 1);
    if (!buf) return 0;
    size_t len = google__rpc__status__pack(&status, buf);
    size_t n = b64_encode(buf, len, out, out_len);
    free(buf);
    return n;
}

bool syc_grpc_status_details_retry_delay(const char *value, size_t len, uint64_t *retry_ms)
{
    bool found = false;
    if (!value || len == 0 || len > 64 * 1024) return false;
    uint8_t *bytes = malloc(len);
    if (!bytes) return false;
    long n = b64_decode(value, len, bytes, len);
    Google__Rpc__Status *status =
        n >= 0 ? google__rpc__status__unpack(NULL, (size_t)n, bytes) : NULL;
    for (size_t i = 0; status && i < status->n_details && !found; i++) {
        const Google__Protobuf__Any *any = status->details[i];
        if (!any->type_url || strcmp(any->type_url, RETRY_INFO_TYPE_URL) != 0) continue;
        Google__Rpc__RetryInfo *info =
            google__rpc__retry_info__unpack(NULL, any->value.len, any->value.data);
        if (info && info->retry_delay && info->retry_delay->seconds >= 0 &&
            info->retry_delay->nanos >= 0 && info->retry_delay->seconds < 86400 * 365) {
            *retry_ms = (uint64_t)info->retry_delay->seconds * 1000u +
                        (uint64_t)info->retry_delay->nanos / 1000000u;
            found = true;
        }
        if (info) google__rpc__retry_info__free_unpacked(info, NULL);
    }
    if (status) google__rpc__status__free_unpacked(status, NULL);
    free(bytes);
    return found;
}
