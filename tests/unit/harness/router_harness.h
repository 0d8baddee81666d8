/*
 * router_harness.h - what the in-process router tests share: run a whole router
 * (real loader, real plugins, real threads) on a YAML string, and read the
 * router's own metrics as Prometheus text.
 */
#ifndef SY_TEST_ROUTER_HARNESS_H
#define SY_TEST_ROUTER_HARNESS_H

#include <stdint.h>

#include "router.h"

/* Opens and starts a router on `yaml` with the test kit and the built plugins on
 * the plugin path; fails the test (cmocka) if either step fails. */
sy__router_t *sy_test_router_start(const char *yaml);

/* Closes it and returns what sy__router_close() returned. */
int sy_test_router_close(sy__router_t *r);

/* The value of the sample `name{labels}` in the router's metrics right now, or -1
 * when there is no such sample. */
int64_t sy_test_metric(const char *name, const char *labels);

/* Polls sy_test_metric() every 10 ms until it is at least `want` or `ms` passed;
 * returns the last value read. */
int64_t sy_test_metric_wait(const char *name, const char *labels, int64_t want, int ms);

/* True when the configuration is refused with an error containing `needle`. */
int sy_test_config_refused(const char *yaml, const char *needle);

#endif
