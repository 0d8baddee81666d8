/*
 * ottl_lex.c - OTTL's tokens: identifiers, string literals (with Go's escapes,
 * which are what OTTL's unquoting accepts), ints, floats, byte literals (0x...),
 * punctuation and the comparison operators. String and byte values are decoded
 * into the program's arena here, so the parser only ever sees values.
 *
 * A malformed token becomes a TOK_ERROR at its offset, with a message; the parser
 * turns it into "col N: ...".
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ottl_internal.h"

static bool is_ident_start(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_ident_char(int c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void lex_error(syc__ottl_lexer_t *lx, syc__ottl_token_t *tok, size_t off, const char *msg)
{
    snprintf(lx->errbuf, sizeof lx->errbuf, "%s", msg);
    tok->type = TOK_ERROR;
    tok->off = off;
    tok->end = off + 1;
    tok->text = lx->errbuf;
    tok->len = strlen(lx->errbuf);
}

/* Appends code point cp as UTF-8; cp has been checked to be a scalar value. */
static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string literal from the opening quote at lx->pos. The decoded value is never
 * longer than the literal, so one arena block of the literal's size holds it. */
static void lex_string(syc__ottl_lexer_t *lx, syc__ottl_token_t *tok)
{
    size_t start = lx->pos, i = start + 1;
    while (i < lx->len && lx->src[i] != '"')
        i += (lx->src[i] == '\\' && i + 1 < lx->len) ? 2 : 1;
    if (i >= lx->len) {
        lex_error(lx, tok, start, "unterminated string literal");
        return;
    }
    size_t end = i; /* the closing quote */
    char *out = syc__ottl_arena_alloc(lx->arena, end - start + 1);
    if (!out) {
        lex_error(lx, tok, start, "out of memory");
        return;
    }
    size_t n = 0;
    for (i = start + 1; i < end;) {
        char c = lx->src[i];
        if (c != '\\') {
            out[n++] = c;
            i++;
            continue;
        }
        char e = lx->src[i + 1];
        static const char simple_from[] = "abfnrtv\\\"'";
        static const char simple_to[] = "\a\b\f\n\r\t\v\\\"'";
        const char *s = e ? strchr(simple_from, e) : NULL;
        if (s) {
            out[n++] = simple_to[s - simple_from];
            i += 2;
            continue;
        }
        int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 0;
        if (!digits) {
            char msg[48];
            if ((unsigned char)e >= 0x20 && (unsigned char)e < 0x7f)
                snprintf(msg, sizeof msg, "invalid escape '\\%c' in string", e);
            else
                snprintf(msg, sizeof msg, "invalid escape in string");
            lex_error(lx, tok, i, msg);
            return;
        }
        uint32_t cp = 0;
        for (int k = 0; k < digits; k++) {
            int h = i + 2 + (size_t)k < end ? hex_value((unsigned char)lx->src[i + 2 + k]) : -1;
            if (h < 0) {
                lex_error(lx, tok, i, "invalid hex digits in string escape");
                return;
            }
            cp = cp << 4 | (uint32_t)h;
        }
        if (e == 'x') {
            out[n++] = (char)cp; /* a raw byte, as in Go */
        } else {
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                lex_error(lx, tok, i, "escape is not a Unicode scalar value");
                return;
            }
            n += put_utf8(out + n, cp);
        }
        i += 2 + (size_t)digits;
    }
    out[n] = '\0';
    tok->type = TOK_STRING;
    tok->text = out;
    tok->len = n;
    lx->pos = end + 1;
}

/* 0x followed by an even number of hex digits. */
static void lex_bytes(syc__ottl_lexer_t *lx, syc__ottl_token_t *tok)
{
    size_t start = lx->pos, i = start + 2;
    while (i < lx->len && hex_value((unsigned char)lx->src[i]) >= 0)
        i++;
    size_t ndigits = i - start - 2;
    if (i < lx->len && is_ident_char((unsigned char)lx->src[i])) {
        lex_error(lx, tok, i, "invalid character in byte literal");
        return;
    }
    if (ndigits == 0 || ndigits % 2) {
        lex_error(lx, tok, start, "byte literal needs an even, non-zero number of hex digits");
        return;
    }
    char *out = syc__ottl_arena_alloc(lx->arena, ndigits / 2 + 1);
    if (!out) {
        lex_error(lx, tok, start, "out of memory");
        return;
    }
    for (size_t k = 0; k < ndigits / 2; k++)
        out[k] = (char)(hex_value((unsigned char)lx->src[start + 2 + 2 * k]) << 4 |
                        hex_value((unsigned char)lx->src[start + 3 + 2 * k]));
    tok->type = TOK_BYTES;
    tok->text = out;
    tok->len = ndigits / 2;
    lx->pos = i;
}

/* [+-]?digits or [+-]?digits?.digits([eE][+-]?digits)? */
static void lex_number(syc__ottl_lexer_t *lx, syc__ottl_token_t *tok)
{
    size_t start = lx->pos, i = start;
    if (lx->src[i] == '+' || lx->src[i] == '-') i++;
    while (i < lx->len && is_digit(lx->src[i]))
        i++;
    bool is_float = false;
    if (i < lx->len && lx->src[i] == '.') {
        is_float = true;
        i++;
        size_t frac = i;
        while (i < lx->len && is_digit(lx->src[i]))
            i++;
        if (i == frac) {
            lex_error(lx, tok, start, "expected digits after '.' in number");
            return;
        }
        if (i < lx->len && (lx->src[i] == 'e' || lx->src[i] == 'E')) {
            size_t j = i + 1;
            if (j < lx->len && (lx->src[j] == '+' || lx->src[j] == '-')) j++;
            size_t exp = j;
            while (j < lx->len && is_digit(lx->src[j]))
                j++;
            if (j > exp) i = j;
        }
    }
    if (i < lx->len && (is_ident_char((unsigned char)lx->src[i]) || lx->src[i] == '.')) {
        lex_error(lx, tok, start, "invalid number");
        return;
    }
    char buf[64];
    size_t n = i - start;
    if (n >= sizeof buf) {
        lex_error(lx, tok, start, is_float ? "number too long" : "integer out of range");
        return;
    }
    memcpy(buf, lx->src + start, n);
    buf[n] = '\0';
    errno = 0;
    char *endp;
    if (is_float) {
        tok->type = TOK_FLOAT;
        tok->d = strtod(buf, &endp);
    } else {
        tok->type = TOK_INT;
        tok->i = strtoll(buf, &endp, 10);
        if (errno == ERANGE) {
            lex_error(lx, tok, start, "integer out of range");
            return;
        }
    }
    lx->pos = i;
}

void syc__ottl_lex_next(syc__ottl_lexer_t *lx, syc__ottl_token_t *tok)
{
    while (lx->pos < lx->len && strchr(" \t\r\n", lx->src[lx->pos]) && lx->src[lx->pos])
        lx->pos++;
    memset(tok, 0, sizeof *tok);
    tok->off = lx->pos;
    if (lx->pos >= lx->len) {
        tok->type = TOK_EOF;
        tok->end = lx->pos;
        return;
    }
    const char *s = lx->src + lx->pos;
    size_t left = lx->len - lx->pos;
    int c = (unsigned char)s[0], c1 = left > 1 ? (unsigned char)s[1] : 0;
    int c2 = left > 2 ? (unsigned char)s[2] : 0;

    if (is_ident_start(c)) {
        size_t n = 1;
        while (n < left && is_ident_char((unsigned char)s[n]))
            n++;
        tok->type = TOK_IDENT;
        tok->text = s;
        tok->len = n;
        lx->pos += n;
    } else if (c == '"') {
        lex_string(lx, tok);
    } else if (c == '0' && (c1 == 'x' || c1 == 'X')) {
        lex_bytes(lx, tok);
    } else if (is_digit(c) || (c == '.' && is_digit(c1)) ||
               ((c == '-' || c == '+') && (is_digit(c1) || (c1 == '.' && is_digit(c2))))) {
        lex_number(lx, tok);
    } else {
        static const struct {
            const char *text;
            syc__ottl_tok_t type;
        } punct[] = {{"==", TOK_EQ},    {"!=", TOK_NE},    {"<=", TOK_LE},    {">=", TOK_GE},
                     {"<", TOK_LT},     {">", TOK_GT},     {"(", TOK_LPAREN}, {")", TOK_RPAREN},
                     {"[", TOK_LBRACK}, {"]", TOK_RBRACK}, {"{", TOK_LBRACE}, {"}", TOK_RBRACE},
                     {",", TOK_COMMA},  {".", TOK_DOT},    {":", TOK_COLON},  {"=", TOK_ASSIGN},
                     {"+", TOK_MATH},   {"-", TOK_MATH},   {"*", TOK_MATH},   {"/", TOK_MATH}};
        for (size_t k = 0; k < sizeof punct / sizeof punct[0]; k++) {
            size_t n = strlen(punct[k].text);
            if (n <= left && memcmp(s, punct[k].text, n) == 0) {
                tok->type = punct[k].type;
                tok->text = s;
                tok->len = n;
                lx->pos += n;
                tok->end = lx->pos;
                return;
            }
        }
        char msg[48];
        if (c >= 0x20 && c < 0x7f)
            snprintf(msg, sizeof msg, "unexpected character '%c'", c);
        else
            snprintf(msg, sizeof msg, "unexpected character 0x%02x", c);
        lex_error(lx, tok, lx->pos, msg);
        return;
    }
    if (tok->type != TOK_ERROR) tok->end = lx->pos;
}
