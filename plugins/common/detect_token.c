/*
 * detect_token.c - the "bearer" detector: credentials recognised by their
 * shape or by the word before them. The value of "Bearer <token>", of
 * "Authorization: Basic <base64>" and of "api_key=<value>" is redacted without
 * its keyword; JWTs and the vendor key shapes (AWS, GitHub, Slack, Stripe,
 * Google) are redacted whole.
 *
 * One pass: a table says which bytes can begin a keyword or a key shape, and
 * only there are the shapes tried, each with its own word-boundary check.
 */
#include <string.h>

#include "detect_scan.h"

/* A bearer token (RFC 6750 b64token) shorter than this, or made of letters
 * alone, is taken for prose ("Bearer authentication"), not a credential. */
#define BEARER_MIN_TOKEN 8
/* A Basic credential is base64 of "user:password", padded: a multiple of 4. */
#define BASIC_MIN_TOKEN 8
#define GITHUB_MIN_BODY 20
#define SLACK_MIN_BODY  10
#define STRIPE_MIN_BODY 10
#define JWT_MIN_HEADER  10
#define AWS_BODY        16
#define GOOGLE_BODY     35

static bool is_b64token(uint8_t c)
{
    return syc_is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
}

static bool is_b64std(uint8_t c)
{
    return syc_is_alnum(c) || c == '+' || c == '/';
}

static bool is_b64url(uint8_t c)
{
    return syc_is_alnum(c) || c == '-' || c == '_';
}

static bool is_upper_or_digit(uint8_t c)
{
    return syc_is_digit(c) || (unsigned)(c - 'A') < 26u;
}

static bool is_slack_body(uint8_t c)
{
    return syc_is_alnum(c) || c == '-';
}

/* The bytes an api_key value stops at: space, quotes, and the separators of
 * query strings, JSON and key=value lists. */
static bool is_key_value(uint8_t c)
{
    return c > ' ' && c != 0x7f && c != '"' && c != '\'' && c != '&' && c != ',' && c != ';' &&
           c != '}' && c != ']' && c != ')';
}

static size_t span(const uint8_t *s, size_t len, size_t p, bool (*in)(uint8_t))
{
    size_t q = p;
    while (q < len && in(s[q]))
        q++;
    return q - p;
}

static bool word_starts_at(const uint8_t *s, size_t p)
{
    return p == 0 || !syc_is_word(s[p - 1]);
}

static bool lit_at(const uint8_t *s, size_t len, size_t p, const char *lit, size_t n)
{
    return p <= len && len - p >= n && memcmp(s + p, lit, n) == 0;
}

/* Blanks after a keyword: at least one space or tab. Returns the offset after
 * them, or 0. */
static size_t skip_blanks(const uint8_t *s, size_t len, size_t p)
{
    size_t q = p;
    while (q < len && (s[q] == ' ' || s[q] == '\t'))
        q++;
    return q > p ? q : 0;
}

/* Each try_* looks for one shape at s[p]: on success it returns the end of the
 * range to redact and sets *start; otherwise 0. */

static size_t try_bearer(const uint8_t *s, size_t len, size_t p, size_t *start)
{
    if (!word_starts_at(s, p) || !syc_ci_at(s, len, p, "bearer", 6)) return 0;
    size_t t = skip_blanks(s, len, p + 6);
    if (!t) return 0;
    size_t e = t + span(s, len, t, is_b64token);
    while (e < len && s[e] == '=')
        e++;
    if (e - t < BEARER_MIN_TOKEN) return 0;
    bool letters_only = true;
    for (size_t q = t; q < e && letters_only; q++)
        letters_only = syc_is_alpha(s[q]);
    if (letters_only) return 0;
    *start = t;
    return e;
}

/* "Basic" counts at the start of the value (the value is the header) or after
 * "Authorization" and its separator. */
static bool basic_in_context(const uint8_t *s, size_t p)
{
    size_t q = p;
    while (q > 0 && (s[q - 1] == ' ' || s[q - 1] == '\t' || s[q - 1] == ':' || s[q - 1] == '=' ||
                     s[q - 1] == '"' || s[q - 1] == '\''))
        q--;
    if (q == 0) return true;
    return q >= 13 && syc_ci_at(s, q, q - 13, "authorization", 13);
}

static size_t try_basic(const uint8_t *s, size_t len, size_t p, size_t *start)
{
    if (!word_starts_at(s, p) || !syc_ci_at(s, len, p, "basic", 5) || !basic_in_context(s, p))
        return 0;
    size_t t = skip_blanks(s, len, p + 5);
    if (!t) return 0;
    size_t e = t + span(s, len, t, is_b64std);
    for (int pad = 0; pad < 2 && e < len && s[e] == '='; pad++)
        e++;
    if (e - t < BASIC_MIN_TOKEN || (e - t) % 4 != 0 || (e < len && is_b64token(s[e]))) return 0;
    *start = t;
    return e;
}

static size_t try_jwt(const uint8_t *s, size_t len, size_t p, size_t *start)
{
    if (!lit_at(s, len, p, "eyJ", 3)) return 0;
    if (p > 0 && (is_b64url(s[p - 1]) || s[p - 1] == '.')) return 0;
    size_t e1 = p + span(s, len, p, is_b64url);
    if (e1 - p < JWT_MIN_HEADER || e1 >= len || s[e1] != '.') return 0;
    size_t e2 = e1 + 1 + span(s, len, e1 + 1, is_b64url);
    if (e2 - e1 - 1 < 2 || e2 >= len || s[e2] != '.') return 0;
    *start = p;
    return e2 + 1 + span(s, len, e2 + 1, is_b64url); /* the signature may be empty */
}

static size_t try_aws(const uint8_t *s, size_t len, size_t p, size_t *start)
{
    if (!(lit_at(s, len, p, "AKIA", 4) || lit_at(s, len, p, "ASIA", 4))) return 0;
    if (p > 0 && syc_is_alnum(s[p - 1])) return 0;
    if (span(s, len, p + 4, is_upper_or_digit) != AWS_BODY) return 0;
    size_t e = p + 4 + AWS_BODY;
    if (e < len && syc_is_alnum(s[e])) return 0;
    *start = p;
    return e;
}

static size_t try_google(const uint8_t *s, size_t len, size_t p, size_t *start)
{
    if (!lit_at(s, len, p, "AIza", 4) || !word_starts_at(s, p)) return 0;
    if (span(s, len, p + 4, is_b64url) != GOOGLE_BODY) return 0;
    *start = p;
    return p + 4 + GOOGLE_BODY;
}

/* api_key, api-key, apikey (any case), then [ "']* [:=] [ "']*, then the value. */
static size_t try_api_key(const uint8_t *s, size_t len, size_t p, size_t *start)
{
    if ((p > 0 && syc_is_alnum(s[p - 1])) || !syc_ci_at(s, len, p, "api", 3)) return 0;
    size_t q = p + 3;
    if (q < len && (s[q] == '_' || s[q] == '-')) q++;
    if (!syc_ci_at(s, len, q, "key", 3)) return 0;
    q += 3;
    while (q < len && (s[q] == ' ' || s[q] == '"' || s[q] == '\''))
        q++;
    if (q >= len || (s[q] != '=' && s[q] != ':')) return 0;
    q++;
    while (q < len && (s[q] == ' ' || s[q] == '"' || s[q] == '\''))
        q++;
    size_t n = span(s, len, q, is_key_value);
    if (n == 0) return 0;
    *start = q;
    return q + n;
}

static size_t try_github(const uint8_t *s, size_t len, size_t p, size_t *start)
{
    if (!word_starts_at(s, p)) return 0;
    size_t body;
    if (lit_at(s, len, p, "github_pat_", 11)) {
        body = p + 11;
        if (span(s, len, body, syc_is_word) < GITHUB_MIN_BODY) return 0;
        *start = p;
        return body + span(s, len, body, syc_is_word);
    }
    if (len - p < 4 || s[p] != 'g' || s[p + 1] != 'h' || !strchr("pousr", s[p + 2]) || !s[p + 2] ||
        s[p + 3] != '_')
        return 0;
    body = p + 4;
    size_t n = span(s, len, body, syc_is_alnum);
    if (n < GITHUB_MIN_BODY || (body + n < len && s[body + n] == '_')) return 0;
    *start = p;
    return body + n;
}

static size_t try_slack(const uint8_t *s, size_t len, size_t p, size_t *start)
{
    if (!word_starts_at(s, p) || !lit_at(s, len, p, "xox", 3) || len - p < 5 ||
        !strchr("baprs", s[p + 3]) || !s[p + 3] || s[p + 4] != '-')
        return 0;
    size_t n = span(s, len, p + 5, is_slack_body);
    if (n < SLACK_MIN_BODY) return 0;
    *start = p;
    return p + 5 + n;
}

static size_t try_stripe(const uint8_t *s, size_t len, size_t p, size_t *start)
{
    if (!word_starts_at(s, p) ||
        !(lit_at(s, len, p, "sk_live_", 8) || lit_at(s, len, p, "rk_live_", 8)))
        return 0;
    size_t n = span(s, len, p + 8, syc_is_alnum);
    if (n < STRIPE_MIN_BODY) return 0;
    *start = p;
    return p + 8 + n;
}

/* The first bytes of the keywords and shapes. */
static const uint8_t token_first[256] = {
    ['B'] = 1, ['b'] = 1, ['e'] = 1, ['A'] = 1, ['a'] = 1,
    ['g'] = 1, ['x'] = 1, ['s'] = 1, ['r'] = 1,
};

bool syc_detect_scan_bearer(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m)
{
    for (size_t i = from; i < len; i++) {
        /* Every shape starts a word: the bytes inside words cost two loads. */
        if (!token_first[s[i]] || (i > 0 && syc_is_alnum(s[i - 1]))) continue;
        size_t start = 0, end = 0;
        switch (s[i]) {
        case 'B':
        case 'b':
            if (!(end = try_bearer(s, len, i, &start))) end = try_basic(s, len, i, &start);
            break;
        case 'e':
            end = try_jwt(s, len, i, &start);
            break;
        case 'A':
            if (!(end = try_aws(s, len, i, &start)) && !(end = try_google(s, len, i, &start)))
                end = try_api_key(s, len, i, &start);
            break;
        case 'a':
            end = try_api_key(s, len, i, &start);
            break;
        case 'g':
            end = try_github(s, len, i, &start);
            break;
        case 'x':
            end = try_slack(s, len, i, &start);
            break;
        case 's':
        case 'r':
            end = try_stripe(s, len, i, &start);
            break;
        default:
            continue;
        }
        if (end > start) {
            m->offset = start;
            m->len = end - start;
            m->kind = SYC_DETECT_BEARER;
            return true;
        }
    }
    return false;
}
