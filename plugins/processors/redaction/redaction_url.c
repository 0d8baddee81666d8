/*
 * redaction_url.c - the redaction processor's url_sanitizer: a URL path with its
 * identifiers replaced by "*", as the collector's URL sanitizer (grafana's
 * clusterurl classifier) clusters them: `/users/123/orders/9f8e?x=1` becomes
 * `/users/S/orders/S`, S standing for the star.
 *
 * The walk is the classifier's: the query string and the fragment are dropped
 * (at the first '?', '&' or '#'); the path is cut into segments at '/', at most
 * ten of them; a segment holding a character other than a letter or one of
 * "-_. " is replaced by "*" (a segment may have one such character in its
 * second place, as in "v1"). The collector then asks a trained "gibberish"
 * model about segments made of letters only (so that `/abcxqzt/` may become a
 * star too); that model is data we do not ship, so such segments are kept here.
 */
#include <stdbool.h>
#include <string.h>

#include "redaction_rules.h"

#define URL_MAX_SEGMENTS 10

static bool url_valid_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.' ||
           c == ' ';
}

int rd_url_sanitize(const char *s, size_t len, syc_buf_t *out)
{
    size_t seg = 0;    /* length of the current segment (kept so far) */
    bool skip = false; /* the current segment is an identifier */
    bool grace = true; /* one other character allowed in second place */
    size_t segments = 0;
    int rc;
    out->len = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '?' || c == '&' || c == '#') break;
        if (c == '/') {
            if (skip && (rc = syc_buf_put(out, "*", 1)) < 0) return rc;
            if (++segments >= URL_MAX_SEGMENTS) return SY_OK; /* the rest is cut off */
            if ((rc = syc_buf_put(out, "/", 1)) < 0) return rc;
            seg = 0;
            skip = false;
            grace = true;
            continue;
        }
        if (skip) continue;
        seg++;
        if (!url_valid_char(c)) {
            if (grace && seg == 2) {
                grace = false;
            } else {
                /* Drop what was kept of the segment: it is replaced whole. */
                out->len -= seg - 1;
                skip = true;
                continue;
            }
        }
        if ((rc = syc_buf_put(out, &s[i], 1)) < 0) return rc;
    }
    if (skip && (rc = syc_buf_put(out, "*", 1)) < 0) return rc;
    return SY_OK;
}

/* The collector keeps a span name whose every segment became "*". */
bool rd_url_fully_redacted(const char *s, size_t len)
{
    bool star = false;
    size_t from = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && s[i] != '/') continue;
        size_t n = i - from;
        if (n == 1 && s[from] == '*')
            star = true;
        else if (n > 0)
            return false;
        from = i + 1;
    }
    return star;
}
