/*
 * loki_line.c - the line of a Loki entry in the collector's `json` format
 * (lokiEntry of pkg/translator/loki/encode.go) and `logfmt` format (EncodeLogfmt,
 * go-logfmt's encoder and decoder rules), from the record and resource being
 * translated, without the attributes promoted to labels or the hints.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loki_internal.h"

/* Whether an attribute key stays in the line: not a hint, not promoted to a label. */
static bool kept(ctx_t *c, const sy_value_t *k)
{
    if (str_is(k->str, k->len, HINT_ATTRIBUTES) || str_is(k->str, k->len, HINT_RESOURCES) ||
        str_is(k->str, k->len, HINT_TENANT) || str_is(k->str, k->len, HINT_FORMAT))
        return false;
    for (size_t i = 0; i < c->nlabels; i++)
        if (c->labels[i].nlen == k->len && !memcmp(c->labels[i].name, k->str, k->len)) return false;
    return true;
}

/* The kept attributes of a node. *n is their number; NULL (and *n 0) when none. */
static kv_t *kept_attrs(ctx_t *c, sy_view_node_t *node, size_t *n)
{
    size_t count = c->api->view_attr_count(node);
    *n = 0;
    if (!count) return NULL;
    kv_t *kv = calloc(count, sizeof(*kv));
    if (!kv) {
        c->failed = true;
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        sy_value_t k, v;
        if (c->api->view_attr_at(node, i, &k, &v) != SY_OK || !kept(c, &k)) continue;
        kv[*n] = (kv_t){k, v, *n};
        (*n)++;
    }
    return kv;
}

static void put_hex_id(ctx_t *c, syc_buf_t *b, const sy_value_t *id)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < id->len; i++) {
        char x[2] = {hex[id->bytes[i] >> 4], hex[id->bytes[i] & 15]};
        put(c, b, x, 2);
    }
}

static bool id_set(const sy_value_t *id)
{
    if (id->type != SY_VALUE_BYTES) return false;
    for (size_t i = 0; i < id->len; i++)
        if (id->bytes[i]) return true;
    return false;
}

/* The fields of the record and its scope that both line formats write. */
typedef struct fields_s {
    sy_value_t body, tid, sid, sev, flags, sname, sver;
} fields_t;

static void read_fields(ctx_t *c, sy_view_node_t *scope, fields_t *f)
{
    const sy_host_api_t *api = c->api;
    api->view_get(c->rec, SY_FIELD_BODY, &f->body);
    api->view_get(c->rec, SY_FIELD_TRACE_ID, &f->tid);
    api->view_get(c->rec, SY_FIELD_SPAN_ID, &f->sid);
    api->view_get(c->rec, SY_FIELD_SEVERITY_TEXT, &f->sev);
    api->view_get(c->rec, SY_FIELD_FLAGS, &f->flags);
    api->view_get(scope, SY_FIELD_SCOPE_NAME, &f->sname);
    api->view_get(scope, SY_FIELD_SCOPE_VERSION, &f->sver);
}

/* The json format: lokiEntry of pkg/translator/loki/encode.go, fields in its order,
 * empty ones left out. */
void lk__line_json(ctx_t *c, syc_buf_t *b, sy_view_node_t *scope)
{
    fields_t f;
    read_fields(c, scope, &f);
    sy_value_t body = f.body, tid = f.tid, sid = f.sid, sev = f.sev, flags = f.flags,
               sname = f.sname, sver = f.sver;
    bool any = false;
#define SEP() (any ? put(c, b, ",", 1) : (void)0, any = true)
    put(c, b, "{", 1);
    if (body.type != SY_VALUE_EMPTY) {
        SEP();
        puts_(c, b, "\"body\":");
        lk__put_json_value(c, b, &body, 0);
    }
    if (id_set(&tid)) {
        SEP();
        puts_(c, b, "\"traceid\":\"");
        put_hex_id(c, b, &tid);
        put(c, b, "\"", 1);
    }
    if (id_set(&sid)) {
        SEP();
        puts_(c, b, "\"spanid\":\"");
        put_hex_id(c, b, &sid);
        put(c, b, "\"", 1);
    }
    if (sev.type == SY_VALUE_STRING && sev.len) {
        SEP();
        puts_(c, b, "\"severity\":");
        lk__put_json_str(c, b, sev.str, sev.len);
    }
    if (flags.type == SY_VALUE_INT && (uint32_t)flags.i) {
        char num[24];
        snprintf(num, sizeof(num), "%" PRIu32, (uint32_t)flags.i);
        SEP();
        puts_(c, b, "\"flags\":");
        puts_(c, b, num);
    }
    static const char *const names[2] = {"\"attributes\":", "\"resources\":"};
    sy_view_node_t *nodes[2] = {c->rec, c->res};
    for (int w = 0; w < 2; w++) {
        size_t n;
        kv_t *kv = kept_attrs(c, nodes[w], &n);
        if (n) {
            SEP();
            puts_(c, b, names[w]);
            lk__put_json_object(c, b, kv, n, 0);
        }
        free(kv);
    }
    if (sname.type == SY_VALUE_STRING && sname.len) {
        SEP();
        puts_(c, b, "\"instrumentation_scope\":{\"name\":");
        lk__put_json_str(c, b, sname.str, sname.len);
        if (sver.type == SY_VALUE_STRING && sver.len) {
            puts_(c, b, ",\"version\":");
            lk__put_json_str(c, b, sver.str, sver.len);
        }
        put(c, b, "}", 1);
    }
#undef SEP
    put(c, b, "}", 1);
}

/* logfmt (go-logfmt's encoder): a key's invalid characters become '_'; a value is
 * quoted when it holds a blank, '=', '"' or a control character. */
static size_t lf_key_escape(unsigned char ch, char e[6])
{
    if (ch > ' ' && ch != '=' && ch != '"' && ch != 0x7f) return 0;
    e[0] = '_';
    return 1;
}

static size_t lf_value_escape(unsigned char ch, char e[6])
{
    static const char one[0x60] = {
        ['"'] = '"', ['\\'] = '\\', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    if (ch < sizeof(one) && one[ch]) {
        e[0] = '\\';
        e[1] = one[ch];
        return 2;
    }
    if (ch >= 0x20 && ch != 0x7f) return 0;
    memcpy(e, "\\u00", 4);
    e[4] = lk__hex_digits[ch >> 4];
    e[5] = lk__hex_digits[ch & 15];
    return 6;
}

static void lf_key(ctx_t *c, syc_buf_t *b, const char *k, size_t klen, const char *suffix,
                   size_t slen)
{
    if (b->len) put(c, b, " ", 1);
    lk__put_escaped(c, b, k, klen, lf_key_escape);
    lk__put_escaped(c, b, suffix, slen, lf_key_escape);
    put(c, b, "=", 1);
}

static void lf_value(ctx_t *c, syc_buf_t *b, const char *s, size_t len)
{
    bool quote = str_is(s, len, "null");
    char e[6];
    for (size_t i = 0; i < len && !quote; i++)
        quote = lf_key_escape((unsigned char)s[i], e) != 0;
    if (!quote) {
        put(c, b, s, len);
        return;
    }
    put(c, b, "\"", 1);
    lk__put_escaped(c, b, s, len, lf_value_escape);
    put(c, b, "\"", 1);
}

/* A value as logfmt pairs under `prefix`: maps flattened with '_', arrays by index. */
static void lf_pairs(ctx_t *c, syc_buf_t *b, syc_buf_t *key, const sy_value_t *v, int depth)
{
    if (v->type == SY_VALUE_EMPTY || depth > MAX_DEPTH) return;
    if (v->type != SY_VALUE_MAP && v->type != SY_VALUE_ARRAY) {
        lf_key(c, b, key->p ? key->p : "", key->len, "", 0);
        syc_buf_t t = {0};
        if (v->type == SY_VALUE_DOUBLE) {
            char num[40];
            snprintf(num, sizeof(num), "%.17g", v->d);
            for (int p = 1; p <= 17; p++) { /* Go's %v: the shortest form that reads back */
                snprintf(num, sizeof(num), "%.*g", p, v->d);
                if (strtod(num, NULL) == v->d) break;
            }
            puts_(c, &t, num);
        } else {
            lk__put_scalar_text(c, &t, v);
        }
        lf_value(c, b, t.p ? t.p : "", t.len);
        free(t.p);
        return;
    }
    size_t base = key->len;
    sy_value_iter_t it = {.value = v};
    sy_value_t k, x;
    for (size_t i = 0; c->api->view_value_next(&it, &k, &x) == 1; i++) {
        key->len = base;
        if (base) put(c, key, "_", 1);
        if (v->type == SY_VALUE_MAP) {
            put(c, key, k.str, k.len);
        } else {
            char num[24];
            snprintf(num, sizeof(num), "%zu", i);
            puts_(c, key, num);
        }
        lf_pairs(c, b, key, &x, depth + 1);
    }
    key->len = base;
}

/* Parses a string body as logfmt (go-logfmt's decoder: key, key=value,
 * key="quoted"); false when it is not logfmt. Writes the pairs to b. */
static bool lf_parse_body(ctx_t *c, syc_buf_t *b, const char *s, size_t len)
{
    syc_buf_t out = {0}, val = {0};
    size_t i = 0;
    bool ok = true, any = false;
    while (ok && i < len) {
        while (i < len && (unsigned char)s[i] <= ' ')
            i++;
        if (i == len) break;
        size_t ks = i;
        while (i < len && (unsigned char)s[i] > ' ' && s[i] != '=' && s[i] != '"')
            i++;
        if (i == ks) {
            ok = false;
            break;
        }
        lf_key(c, &out, s + ks, i - ks, "", 0);
        any = true;
        if (i < len && s[i] == '"') {
            ok = false;
            break;
        }
        if (i == len || s[i] != '=') continue; /* a key without a value */
        i++;
        val.len = 0;
        if (i < len && s[i] == '"') {
            i++;
            bool closed = false;
            while (i < len) {
                if (s[i] == '\\' && i + 1 < len) {
                    char e = s[i + 1];
                    char o = e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e;
                    put(c, &val, &o, 1);
                    i += 2;
                } else if (s[i] == '"') {
                    i++;
                    closed = true;
                    break;
                } else {
                    put(c, &val, s + i, 1);
                    i++;
                }
            }
            if (!closed) ok = false;
        } else {
            size_t vs = i;
            while (i < len && (unsigned char)s[i] > ' ') {
                if (s[i] == '=' || s[i] == '"') ok = false;
                i++;
            }
            put(c, &val, s + vs, i - vs);
        }
        if (ok) lf_value(c, &out, val.p ? val.p : "", val.len);
    }
    if (ok && any) put(c, b, out.p, out.len);
    free(out.p);
    free(val.p);
    return ok && any;
}

/* Sets (replacing a pair of the body's with that key) or appends one pair. */
static void lf_replace(ctx_t *c, syc_buf_t *b, const char *key, const char *value, size_t vlen)
{
    /* b holds pairs this file wrote: key=value or key="quoted" (no blank, '=' or
     * '"' in a key), one blank apart. Walk them; a pair of that key gets the new
     * value where it stands (keyvalsReplaceOrAppend), else the pair is appended. */
    size_t kl = strlen(key), i = 0;
    while (i < b->len) {
        size_t ks = i;
        while (i < b->len && b->p[i] != '=')
            i++;
        bool match = i - ks == kl && !memcmp(b->p + ks, key, kl);
        size_t vs = ++i; /* past '=' */
        if (i < b->len && b->p[i] == '"') {
            for (i++; i < b->len && b->p[i] != '"'; i++)
                if (b->p[i] == '\\') i++;
            i++;
        } else {
            while (i < b->len && b->p[i] != ' ')
                i++;
        }
        if (i > b->len) i = b->len;
        if (match) {
            syc_buf_t t = {0};
            put(c, &t, b->p, vs);
            syc_buf_t v = {0};
            lf_value(c, &v, value, vlen);
            put(c, &t, v.p, v.len);
            put(c, &t, b->p + i, b->len - i);
            free(v.p);
            if (!c->failed) {
                free(b->p);
                *b = t;
            } else {
                free(t.p);
            }
            return;
        }
        i++; /* the blank */
    }
    lf_key(c, b, key, kl, "", 0);
    lf_value(c, b, value, vlen);
}

void lk__line_logfmt(ctx_t *c, syc_buf_t *b, sy_view_node_t *scope)
{
    const sy_host_api_t *api = c->api;
    fields_t f;
    read_fields(c, scope, &f);
    sy_value_t body = f.body, tid = f.tid, sid = f.sid, sev = f.sev, flags = f.flags,
               sname = f.sname, sver = f.sver;
    syc_buf_t key = {0};
    if (body.type == SY_VALUE_STRING) {
        if (!lf_parse_body(c, b, body.str, body.len)) {
            lf_key(c, b, "msg", 3, "", 0);
            lf_value(c, b, body.str, body.len);
        }
    } else if (body.type == SY_VALUE_MAP) {
        lf_pairs(c, b, &key, &body, 0);
    } else if (body.type == SY_VALUE_ARRAY) {
        puts_(c, &key, "body");
        lf_pairs(c, b, &key, &body, 0);
    } else if (body.type != SY_VALUE_EMPTY) {
        puts_(c, &key, "msg");
        lf_pairs(c, b, &key, &body, 0);
    }
    syc_buf_t t = {0};
    if (id_set(&tid)) {
        put_hex_id(c, &t, &tid);
        lf_replace(c, b, "traceID", t.p, t.len);
    }
    t.len = 0;
    if (id_set(&sid)) {
        put_hex_id(c, &t, &sid);
        lf_replace(c, b, "spanID", t.p, t.len);
    }
    if (sev.type == SY_VALUE_STRING && sev.len) lf_replace(c, b, "severity", sev.str, sev.len);
    if (flags.type == SY_VALUE_INT && (uint32_t)flags.i) {
        char num[24];
        snprintf(num, sizeof(num), "%" PRIu32, (uint32_t)flags.i);
        lf_replace(c, b, "flags", num, strlen(num));
    }
    free(t.p);
    static const char *const prefixes[2] = {"attribute_", "resource_"};
    sy_view_node_t *nodes[2] = {c->rec, c->res};
    for (int w = 0; w < 2; w++) {
        size_t count = api->view_attr_count(nodes[w]);
        for (size_t i = 0; i < count; i++) {
            sy_value_t k, v;
            if (api->view_attr_at(nodes[w], i, &k, &v) != SY_OK || !kept(c, &k)) continue;
            key.len = 0;
            puts_(c, &key, prefixes[w]);
            put(c, &key, k.str, k.len);
            lf_pairs(c, b, &key, &v, 0);
        }
    }
    free(key.p);
    if (sname.type == SY_VALUE_STRING && sname.len) {
        lf_key(c, b, "instrumentation_scope_name", 26, "", 0);
        lf_value(c, b, sname.str, sname.len);
        if (sver.type == SY_VALUE_STRING && sver.len) {
            lf_key(c, b, "instrumentation_scope_version", 29, "", 0);
            lf_value(c, b, sver.str, sver.len);
        }
    }
}
