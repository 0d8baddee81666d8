/*
 * fuzz_udpline - the example receiver udpline (examples/plugins/udpline): any
 * datagram goes through its line splitter, severity parser and hand-written OTLP
 * encoder. Oracle: the batch it makes passes the core's validation walk
 * (batch_set_encoded), holds exactly as many log records as the datagram has
 * non-empty lines (at most 256), and every body read back through the view is
 * its line without the severity word: a string when the line is UTF-8, else
 * bytes (and the oracle checks that choice against the core's UTF-8 check).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../examples/plugins/udpline/udpline.c"
#include "engine.h"
#include "utf8.h"

static sy_host_api_t host;
static size_t want_lines, got_items;
static int emitted;
static const uint8_t *input;
static size_t input_len;

static void *default_loop(const sy_instance_t *inst)
{
    (void)inst;
    return uv_default_loop(); /* for the drop path's uv_now(), which must not be taken */
}

static void no_metric(sy_metric_t *m, int64_t v)
{
    (void)m;
    (void)v;
}

/* The lines as udpline reads them: the oracle's own split. */
static size_t split(const uint8_t *d, size_t n, const char **starts, size_t *lens, size_t max)
{
    size_t k = 0, i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && d[j] != '\n')
            j++;
        size_t len = j - i;
        if (len && d[i + len - 1] == '\r') len--;
        if (len) {
            if (k == max) break;
            starts[k] = (const char *)d + i;
            lens[k++] = len;
        }
        i = j + 1;
    }
    return k;
}

static int check_emit(sy_instance_t *inst, sy_batch_t *b)
{
    (void)inst;
    sy_batch_info_t info;
    host.batch_info(b, &info);
    got_items = info.items;
    emitted++;
    const char *starts[256];
    size_t lens[256];
    size_t n = split(input, input_len, starts, lens, 256);
    sy_view_t *v = host.view_open(b);
    if (!v) abort();
    sy_view_node_t *root = host.view_root(v);
    sy_view_node_t *res = host.view_at(root, SY_VIEW_RESOURCES, 0);
    sy_view_node_t *scope = host.view_at(res, SY_VIEW_SCOPES, 0);
    if (host.view_count(scope, SY_VIEW_ITEMS) != n) abort();
    for (size_t i = 0; i < n; i++) {
        sy_value_t body;
        sy_view_node_t *log = host.view_at(scope, SY_VIEW_ITEMS, i);
        line_t l = parse_line(starts[i], lens[i]);
        if (host.view_get(log, SY_FIELD_BODY, &body) != 0) abort();
        if (body.type != (l.utf8 ? SY_VALUE_STRING : SY_VALUE_BYTES)) abort();
        const void *bytes = l.utf8 ? (const void *)body.str : (const void *)body.bytes;
        if (body.len != l.len || (l.len && memcmp(bytes, l.text, l.len) != 0)) abort();
        if (l.utf8 != syc_utf8_valid((const uint8_t *)l.text, l.len)) abort();
    }
    host.view_close(v);
    host.batch_release(b);
    return SY_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!host.size) {
        host = *sy__host_api();
        host.emit = check_emit;
        host.metric_add = no_metric;
        host.loop = default_loop;
    }
    if (size > 65536) size = 65536;
    udpline_config_t cfg = {.endpoint = "127.0.0.1:0", .max_datagram = 65536};
    udpline_t u = {.api = &host, .cfg = &cfg};
    uv_udp_t handle;
    handle.data = &u;
    char *copy = malloc(size ? size : 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    input = (const uint8_t *)copy;
    input_len = size;
    const char *starts[256];
    size_t lens[256];
    want_lines = split(input, size, starts, lens, 256);
    emitted = 0;
    got_items = 0;
    uv_buf_t buf = uv_buf_init(copy, (unsigned)size);
    on_recv(&handle, (ssize_t)size, &buf, NULL, 0);
    if (want_lines ? (emitted != 1 || got_items != want_lines) : emitted != 0) abort();
    free(copy);
    return 0;
}
