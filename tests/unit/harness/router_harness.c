/*
 * router_harness.c - see router_harness.h.
 */
#include "router_harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "telemetry.h"

static const char *const plugin_dirs[] = {SY_TEST_KIT_DIR, SY_TEST_PLUGIN_DIR};

sy__router_t *sy_test_router_start(const char *yaml)
{
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml = yaml, .plugin_dirs = plugin_dirs, .nplugin_dirs = 2};
    sy__router_t *r = sy__router_open(&opts, &diag);
    if (!r) sy__diag_print(&diag, stderr);
    sy__diag_free(&diag);
    assert_non_null(r);
    assert_int_equal(sy__router_start(r), 0);
    return r;
}

int sy_test_router_close(sy__router_t *r)
{
    return sy__router_close(r);
}

int64_t sy_test_metric(const char *name, const char *labels)
{
    char *text = sy__metrics_render(NULL);
    if (!text) return -1;
    char needle[1024];
    snprintf(needle, sizeof(needle), "\n%s{%s} ", name, labels);
    const char *at = strstr(text, needle);
    int64_t v = at ? strtoll(at + strlen(needle), NULL, 10) : -1;
    free(text);
    return v;
}

int64_t sy_test_metric_wait(const char *name, const char *labels, int64_t want, int ms)
{
    int64_t v = -1;
    for (int waited = 0; waited <= ms; waited += 10) {
        v = sy_test_metric(name, labels);
        if (v >= want) break;
        usleep(10000);
    }
    return v;
}

int sy_test_config_refused(const char *yaml, const char *needle)
{
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_opts_t opts = {.yaml = yaml, .plugin_dirs = plugin_dirs, .nplugin_dirs = 2};
    sy__router_t *r = sy__router_open(&opts, &diag);
    int found = 0;
    for (size_t i = 0; i < diag.count; i++) {
        fprintf(stderr, "diag: %s\n", diag.msgs[i]);
        if (strstr(diag.msgs[i], needle)) found = 1;
    }
    sy__diag_free(&diag);
    if (r) sy__router_close(r);
    return !r && found;
}
