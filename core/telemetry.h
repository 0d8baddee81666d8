/*
 * telemetry.h - the router's own metrics: a process-wide registry, rendered in the
 * Prometheus text format 0.0.4 and served on GET /metrics.
 *
 * Names: a metric is registered by its Prometheus name without the "switchyard_"
 * prefix ("receiver_accepted_spans"); the registry adds the prefix, and a counter
 * is exposed as <prefix><name>_total unless the name already ends in "_total".
 * Metrics of one exposed name form one family (one # HELP and # TYPE) and must
 * share their type; the help text of the first registration is kept.
 *
 * Labels: NULL, or a preformatted, already escaped label list without braces,
 * 'receiver="otlp",transport="http"' (build it with sy__metric_labels(), which
 * escapes the values). Registering the same name and labels twice returns the
 * same metric, so a component that is rebuilt on reload keeps counting.
 *
 * Threads: registration and rendering take one mutex (registration happens at
 * startup, from several loop threads at once). sy__metric_add/_set/_value are
 * lock-free relaxed atomics and may be called from any thread. A metric stays
 * valid until sy__metric_unregister() of it or sy__telemetry_shutdown().
 */
#ifndef SY_TELEMETRY_H
#define SY_TELEMETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

/* The prefix of every metric the registry exposes. */
#define SY__METRIC_PREFIX "switchyard_"

/* Longest name (prefix and suffix included), label list and help text accepted. */
#define SY__METRIC_NAME_MAX   200
#define SY__METRIC_LABELS_MAX 2048
#define SY__METRIC_HELP_MAX   1024

/* Reads a metric's value at scrape time (a queue's size, ...). It runs on the
 * metrics thread while the registry's mutex is held: it must be thread-safe, must
 * not block, and must not call into the registry. */
typedef int64_t (*sy__gauge_fn)(void *arg);
typedef double (*sy__gauge_double_fn)(void *arg);

/*
 * Registers a metric (or finds the one of the same name and labels). Returns NULL,
 * with an error logged, when the name is not a valid Prometheus name, the labels
 * are malformed, the name is registered with another type, or memory runs out.
 */
sy_metric_t *sy__metric_register(const char *name, const char *help, sy_metric_type_t type,
                                 const char *labels);

/*
 * Registers a metric whose value fn(arg) gives at scrape time. When the name and
 * labels are registered already, the existing metric is returned and takes the
 * new fn and arg (a queue rebuilt on reload replaces the one freed).
 */
sy_metric_t *sy__metric_register_fn(const char *name, const char *help, sy_metric_type_t type,
                                    const char *labels, sy__gauge_fn fn, void *arg);

/* The same with a floating-point value (seconds, ratios). */
sy_metric_t *sy__metric_register_fn_double(const char *name, const char *help,
                                           sy_metric_type_t type, const char *labels,
                                           sy__gauge_double_fn fn, void *arg);

/*
 * Removes a metric and frees it; NULL is ignored. Once it returns, a function
 * metric's fn is not called again, so its arg may be freed. The caller makes sure
 * that no thread still adds to a plain metric.
 */
void sy__metric_unregister(sy_metric_t *metric);
/* A gauge registered again with the same name and labels (by a reload's new
 * engine) is bound to the newer function argument: unregisters it only if it is
 * still bound to `arg`, the caller's. */
void sy__metric_unregister_bound(sy_metric_t *metric, const void *arg);

/* Adds to a counter or gauge. Any thread, lock-free; NULL is ignored. */
void sy__metric_add(sy_metric_t *metric, int64_t delta);

/* Sets a gauge. Any thread, lock-free; NULL is ignored. */
void sy__metric_set(sy_metric_t *metric, int64_t value);

/* The current value (for a function metric, calls fn). 0 for NULL. */
int64_t sy__metric_value(const sy_metric_t *metric);

/*
 * A labelled metric (ABI 1.7, metric_register_labelled): a name, help, type, the
 * instance's label list and the names of the labels the plugin gives values to.
 * sy__metric_series() makes (or finds) one series of it, a plain sy_metric_t.
 * Registering the same name, instance labels and label names again returns the
 * same handle (a component rebuilt on reload keeps counting). Freed with the
 * registry at shutdown. NULL when a label name is not a valid Prometheus label
 * name, is given twice, starts with "__", or is one of the instance's own label
 * names; or on out of memory.
 */
sy_labelled_metric_t *sy__metric_register_labelled(const char *name, const char *help,
                                                   sy_metric_type_t type, const char *labels,
                                                   const char *const *label_names, size_t n);
/*
 * The series of `lm` with these label values (n of them, in the order of the
 * names; NULL counts as ""). Values are escaped for the text format. Takes the
 * registry's mutex: call it once per series, not per item. NULL on out of memory
 * or when the label list grows past SY__METRIC_LABELS_MAX.
 */
sy_metric_t *sy__metric_series(sy_labelled_metric_t *lm, const char *const *label_values);

/*
 * Builds an escaped label list into buf from NULL-terminated key, value pairs:
 *
 *     sy__metric_labels(buf, sizeof buf, "receiver", id, "transport", "http", NULL);
 *
 * gives 'receiver="otlp/2",transport="http"', escaping '\', '"' and newlines in
 * the values. Returns buf, or NULL when it does not fit or a key is not a valid
 * label name.
 */
char *sy__metric_labels(char *buf, size_t cap, ...);

/*
 * Renders every metric in the Prometheus text format 0.0.4: families sorted by
 * name, each with its # HELP and # TYPE lines, then its samples sorted by labels.
 * Returns a malloc'ed NUL-terminated string (its length in *len when len is not
 * NULL) that the caller frees, or NULL on out of memory.
 */
char *sy__metrics_render(size_t *len);

/*
 * Registers the process metrics (switchyard_process_uptime_seconds,
 * _process_resident_memory_bytes, _process_cpu_seconds_total,
 * _process_start_time_seconds) and, when endpoint is not NULL, serves
 * GET /metrics on it ("host:port") from a thread of its own running its own libuv
 * loop. Returns 0, or a negative SY_E* with a sentence in err (address in use, a
 * bad endpoint, already started). Main thread.
 */
int sy__telemetry_start(const char *endpoint, char *err, size_t err_len);

/* Before sy__telemetry_start(): serve the endpoint over TLS with the block of
 * service.telemetry.metrics.tls (NULL: plain HTTP); the TLS module (sy_tls.so) is
 * looked for in module_dirs (the plugin directories). SY_EINVAL with
 * "file:line:col: sentence" in err. */
struct sy_cfg_node_s;
int sy__telemetry_set_tls(const struct sy_cfg_node_s *tls, const char *const *module_dirs,
                          size_t ndirs, char *err, size_t err_len);

/* The port the endpoint is bound to (useful with port 0), or 0 when not serving. */
int sy__telemetry_port(void);

/* Stops the endpoint and joins its thread; nothing when not started. Main thread. */
void sy__telemetry_stop(void);

/* Stops the endpoint if needed and frees every metric. Every sy_metric_t * handed
 * out is invalid afterwards. Main thread, at exit. */
void sy__telemetry_shutdown(void);

#endif
