/*
 * zpages_debug.h - /debug/servicez and /debug/pipelinez: the pages the
 * collector's zpages users know, rendered on the server as plain HTML from the
 * host's status document (api->status_json(), docs/status.md).
 */
#ifndef ZP_DEBUG_H
#define ZP_DEBUG_H

#include <stddef.h>

typedef enum zp_page_e {
    ZP_PAGE_SERVICEZ,  /* build and runtime information, the components */
    ZP_PAGE_PIPELINEZ, /* one row per pipeline with its components */
} zp_page_t;

/*
 * Renders `page` from the status document json[0..len) (need not be
 * NUL-terminated; at most 64 MiB). Every string taken from the document is
 * HTML-escaped; members that are missing or of another type are shown as empty.
 * Returns a malloc()ed, NUL-terminated HTML page (its length in *html_len) that
 * the caller frees, or NULL when the document is not JSON or memory runs out.
 * Any thread; no state.
 */
char *zp_debug_render(zp_page_t page, const char *json, size_t len, size_t *html_len);

#endif
