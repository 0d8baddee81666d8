/*
 * detect_scan.c - the scanners for what has a fixed grammar: payment card
 * numbers, e-mail addresses, IPv4 and IPv6 addresses, and URL passwords
 * (detect_token.c has the credential shapes). The contract they share is in
 * detect_scan.h; what they accept, and why, in docs/redaction-detectors.md.
 */
#include <string.h>

#include "detect_scan.h"

/* ---- card ---- */

/* A card number has at most 19 digits; a run longer than this is scanned on
 * but its digits past it never form a candidate. */
#define CARD_MAX_DIGITS 64
#define CARD_MAX_GROUPS 32
#define CARD_MIN_LEN    13
#define CARD_MAX_LEN    19
/* Digit groups of a card written with separators have 3 or more digits (4-4-4-4,
 * 4-6-5, 4-6-4); shorter groups, as in "1 2 3 4 ...", are lists, not cards. */
#define CARD_MIN_GROUP 3

/* Whether a number may start at p: not after a word character (\w), nor after
 * the decimal point of another number ("3.1415926535897932"). */
static bool number_starts_at(const uint8_t *s, size_t p)
{
    if (p == 0) return true;
    if (syc_is_word(s[p - 1])) return false;
    return !(s[p - 1] == '.' && p >= 2 && syc_is_digit(s[p - 2]));
}

/* Whether a number may end at e: not before a word character, nor before a
 * decimal point and digits. */
static bool number_ends_at(const uint8_t *s, size_t len, size_t e)
{
    if (e >= len) return true;
    if (syc_is_word(s[e])) return false;
    return !(s[e] == '.' && e + 1 < len && syc_is_digit(s[e + 1]));
}

typedef struct card_run_s {
    char digits[CARD_MAX_DIGITS]; /* the run's digits without separators */
    size_t start[CARD_MAX_GROUPS];
    size_t end[CARD_MAX_GROUPS];
    size_t first[CARD_MAX_GROUPS]; /* index of the group's first digit in digits */
    size_t groups;
    bool complete; /* every group of the run is recorded */
} card_run_t;

/* Reads the run of digit groups at s[p] (groups separated by one ' ' or '-');
 * returns the offset just past it. */
static size_t card_read_run(const uint8_t *s, size_t len, size_t p, card_run_t *r)
{
    size_t nd = 0;
    r->groups = 0;
    r->complete = true;
    for (;;) {
        size_t gs = p, first = nd;
        while (p < len && syc_is_digit(s[p])) {
            if (nd < CARD_MAX_DIGITS) r->digits[nd] = (char)s[p];
            nd++;
            p++;
        }
        if (r->complete && r->groups < CARD_MAX_GROUPS && nd <= CARD_MAX_DIGITS) {
            r->start[r->groups] = gs;
            r->end[r->groups] = p;
            r->first[r->groups] = first;
            r->groups++;
        } else {
            r->complete = false;
        }
        if (p + 1 < len && (s[p] == ' ' || s[p] == '-') && syc_is_digit(s[p + 1])) {
            p++;
            continue;
        }
        return p;
    }
}

bool syc_detect_scan_card(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m)
{
    card_run_t r;
    size_t i = from;
    while (i < len) {
        if (!syc_is_digit(s[i])) {
            i++;
            continue;
        }
        /* Digits glued to a word or a decimal are skipped, but not the groups
         * after them: "x1 4111 1111 1111 1111" still holds a card. Shorter
         * numbers without a separator after them are skipped at once. */
        size_t j = i;
        while (j < len && syc_is_digit(s[j]))
            j++;
        bool separated = j + 1 < len && (s[j] == ' ' || s[j] == '-') && syc_is_digit(s[j + 1]);
        if (!number_starts_at(s, i) || (j - i < CARD_MIN_LEN && !separated)) {
            i = j;
            continue;
        }
        i = card_read_run(s, len, i, &r);
        size_t hi = r.groups;
        if (r.complete && !number_ends_at(s, len, i)) hi--;
        /* The earliest start, then the longest candidate from it. */
        for (size_t a = 0; a < hi; a++) {
            size_t count = 0, best = SIZE_MAX;
            for (size_t b = a; b < hi; b++) {
                size_t g = r.end[b] - r.start[b];
                if (b > a && (g < CARD_MIN_GROUP || r.end[a] - r.start[a] < CARD_MIN_GROUP)) break;
                count += g;
                if (count > CARD_MAX_LEN) break;
                if (count >= CARD_MIN_LEN && syc_luhn_valid(r.digits + r.first[a], count)) best = b;
            }
            if (best != SIZE_MAX) {
                m->offset = r.start[a];
                m->len = r.end[best] - r.start[a];
                m->kind = SYC_DETECT_CARD;
                return true;
            }
        }
    }
    return false;
}

/* ---- email ---- */

#define EMAIL_MAX_LOCAL 64
#define EMAIL_MAX_LABEL 63

static bool email_local_char(uint8_t c)
{
    return syc_is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

/* The end of the domain at s[p]: two or more labels of letters, digits and
 * inner hyphens joined by single dots, the last (the TLD) of two or more
 * letters. 0 when there is none. A dot not followed by a label ends it, so a
 * sentence's full stop stays out. */
static size_t email_domain_end(const uint8_t *s, size_t len, size_t p)
{
    size_t labels = 0, end = 0, last_len = 0;
    bool last_alpha = false;
    for (;;) {
        size_t q = p;
        bool alpha = true;
        while (q < len && (syc_is_alnum(s[q]) || s[q] == '-') && q - p < EMAIL_MAX_LABEL) {
            alpha = alpha && syc_is_alpha(s[q]);
            q++;
        }
        if (q == p || s[p] == '-' || s[q - 1] == '-') break;
        labels++;
        end = q;
        last_alpha = alpha;
        last_len = q - p;
        if (q + 1 < len && s[q] == '.' && syc_is_alnum(s[q + 1])) {
            p = q + 1;
            continue;
        }
        break;
    }
    if (labels < 2 || !last_alpha || last_len < 2) return 0;
    return end;
}

bool syc_detect_scan_email(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m)
{
    size_t i = from;
    while (i < len) {
        const uint8_t *at = memchr(s + i, '@', len - i);
        if (!at) return false;
        size_t a = (size_t)(at - s);
        i = a + 1;
        /* The local part is read backwards from '@', never before `from`. */
        size_t k = a;
        while (k > from && a - k < EMAIL_MAX_LOCAL && email_local_char(s[k - 1]))
            k--;
        while (k < a && s[k] == '.')
            k++;
        if (k == a || s[a - 1] == '.') continue;
        size_t e = email_domain_end(s, len, a + 1);
        if (!e) continue;
        m->offset = k;
        m->len = e - k;
        m->kind = SYC_DETECT_EMAIL;
        return true;
    }
    return false;
}

/* ---- IPv4 ---- */

size_t syc_detect_ipv4_at(const uint8_t *s, size_t len, size_t p)
{
    for (int octet = 0; octet < 4; octet++) {
        if (octet) {
            if (p >= len || s[p] != '.') return 0;
            p++;
        }
        if (p >= len || !syc_is_digit(s[p])) return 0;
        unsigned v = s[p++] - '0';
        for (int n = 1; p < len && syc_is_digit(s[p]); n++) {
            if (n == 3 || v == 0) return 0; /* four digits, or a leading zero */
            v = v * 10 + (s[p++] - '0');
        }
        if (v > 255) return 0;
    }
    return p;
}

bool syc_detect_scan_ipv4(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m)
{
    size_t i = from;
    while (i < len) {
        if (!syc_is_digit(s[i])) {
            i++;
            continue;
        }
        /* Not after a word character or a dot: the "3.4.5.6" of "1.2.3.4.5.6" is
         * part of a longer dotted number. */
        bool starts = i == 0 || (!syc_is_word(s[i - 1]) && s[i - 1] != '.');
        size_t e = starts ? syc_detect_ipv4_at(s, len, i) : 0;
        if (e && number_ends_at(s, len, e)) {
            m->offset = i;
            m->len = e - i;
            m->kind = SYC_DETECT_IPV4;
            return true;
        }
        while (i < len && syc_is_digit(s[i]))
            i++;
    }
    return false;
}

/* ---- IPv6 ---- */

/* The end of the IPv6 address text at s[p] (RFC 4291 section 2.2): eight groups
 * of 1-4 hex digits joined by ':', or fewer with one "::" standing for the zero
 * groups, the last 32 bits optionally a dotted quad. 0 when there is none; the
 * bare "::" is not taken. */
static size_t ipv6_at(const uint8_t *s, size_t len, size_t p)
{
    size_t groups = 0, end = 0;
    bool compressed = false;
    if (p + 1 < len && s[p] == ':' && s[p + 1] == ':') {
        compressed = true;
        p += 2;
        end = p;
    } else if (p < len && s[p] == ':') {
        return 0;
    }
    for (;;) {
        size_t h = 0;
        while (p + h < len && h < 5 && syc_is_hex(s[p + h]))
            h++;
        if (h == 0) break;
        if (h > 4) return 0;
        if (p + h + 1 < len && s[p + h] == '.' && syc_is_digit(s[p + h + 1])) {
            size_t e4 = syc_detect_ipv4_at(s, len, p);
            if (!e4) return 0;
            groups += 2;
            end = e4;
            break;
        }
        groups++;
        p += h;
        end = p;
        if (groups > 8) return 0;
        if (p + 1 < len && s[p] == ':' && s[p + 1] == ':') {
            if (compressed) return 0;
            compressed = true;
            p += 2;
            end = p;
            continue;
        }
        if (p + 1 < len && s[p] == ':' && syc_is_hex(s[p + 1])) {
            p++;
            continue;
        }
        break;
    }
    if (groups == 0 || (compressed ? groups > 7 : groups != 8)) return 0;
    return end;
}

bool syc_detect_scan_ipv6(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m)
{
    size_t i = from;
    while (i < len) {
        const uint8_t *colon = memchr(s + i, ':', len - i);
        if (!colon) return false;
        size_t c = (size_t)(colon - s);
        i = c + 1;
        /* The address would start at the hex digits before its first colon. */
        size_t b = c;
        while (b > from && c - b < 4 && syc_is_hex(s[b - 1]))
            b--;
        if (b > 0 && (syc_is_word(s[b - 1]) || s[b - 1] == ':' || s[b - 1] == '.')) continue;
        size_t e = ipv6_at(s, len, b);
        if (!e || !number_ends_at(s, len, e)) continue;
        m->offset = b;
        m->len = e - b;
        m->kind = SYC_DETECT_IPV6;
        return true;
    }
    return false;
}

/* ---- url_password ---- */

/* Bytes that end a URL's authority (RFC 3986 section 3.2), and those that end
 * a URL written in text. */
static bool url_authority_ends(uint8_t c)
{
    return c == '/' || c == '?' || c == '#' || c == '\\' || c <= ' ' || c == '"' || c == '\'' ||
           c == '<' || c == '>' || c == '`' || c == 0x7f;
}

bool syc_detect_scan_url_password(const uint8_t *s, size_t len, size_t from, syc_detect_match_t *m)
{
    size_t i = from;
    while (i + 3 <= len) {
        const uint8_t *colon = memchr(s + i, ':', len - i);
        if (!colon) return false;
        size_t c = (size_t)(colon - s);
        i = c + 1;
        if (c == 0 || !syc_is_alnum(s[c - 1]) || len - c < 3 || s[c + 1] != '/' || s[c + 2] != '/')
            continue;
        size_t a = c + 3, e = a, at = SIZE_MAX;
        for (; e < len && !url_authority_ends(s[e]); e++)
            if (s[e] == '@') at = e; /* userinfo ends at the authority's last '@' */
        if (at == SIZE_MAX) continue;
        const uint8_t *pw = memchr(s + a, ':', at - a);
        if (!pw || (size_t)(pw - s) + 1 == at) continue;
        m->offset = (size_t)(pw - s) + 1;
        m->len = at - m->offset;
        m->kind = SYC_DETECT_URL_PASSWORD;
        return true;
    }
    return false;
}
