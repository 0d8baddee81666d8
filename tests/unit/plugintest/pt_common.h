/*
 * pt_common.h - what the processors' harness tests share: the path of a built
 * plugin, OTLP/JSON of a few spans, and opening a harness that must open.
 */
#ifndef SY_TEST_PT_COMMON_H
#define SY_TEST_PT_COMMON_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <switchyard/plugintest.h>

#define PT_PLUGIN(name) SY_TEST_PLUGIN_DIR "/" name ".so"

/* One resource (service.name = svc) with one span per name in `spans`
 * ("\"a\",\"b\""), each with the attribute user = "u-<n>". */
static inline void pt_spans_json(char *out, size_t len, const char *svc, int n)
{
    size_t at = (size_t)snprintf(out, len,
                                 "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":"
                                 "\"service.name\",\"value\":{\"stringValue\":\"%s\"}}]},"
                                 "\"scopeSpans\":[{\"spans\":[",
                                 svc);
    for (int i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(out + at, len - at,
                               "%s{\"traceId\":\"0102030405060708090a0b0c0d0e0f10\","
                               "\"spanId\":\"01020304050607%02x\",\"name\":\"span-%d\","
                               "\"attributes\":[{\"key\":\"user\",\"value\":{\"stringValue\":"
                               "\"u-%d\"}}]}",
                               i ? "," : "", i, i, i);
    if (at < len) snprintf(out + at, len - at, "]}]}]}");
}

/* Opens and starts the plugin as a component of a traces pipeline. */
static inline sy_pt_t *pt_open_ok(const char *path, const char *id, const char *yaml)
{
    char err[1024] = "";
    sy_pt_options_t o = {.path = path, .id = id, .yaml = yaml, .signals = SY_SIGNAL_TRACES};
    sy_pt_t *h = sy_pt_open_opts(&o, err, sizeof(err));
    if (!h) fprintf(stderr, "sy_pt_open: %s\n", err);
    assert_non_null(h);
    assert_int_equal(sy_pt_start(h), SY_OK);
    return h;
}

/* True when sy_pt_open() refuses `yaml` with an error holding `needle`. */
static inline int pt_refused(const char *path, const char *yaml, const char *needle)
{
    char err[1024] = "";
    sy_pt_options_t o = {.path = path, .yaml = yaml, .signals = SY_SIGNAL_TRACES};
    sy_pt_t *h = sy_pt_open_opts(&o, err, sizeof(err));
    if (h) {
        sy_pt_close(h);
        return 0;
    }
    fprintf(stderr, "refused as expected: %s\n", err);
    return strstr(err, needle) != NULL;
}

#endif
