/*
 * switchyard/plugintest.h - a harness for a plugin's own unit tests, installed
 * with the SDK as the library switchyard-plugintest (pkg-config
 * switchyard-plugintest, CMake Switchyard::plugintest).
 *
 * It hosts one instance of one plugin in the test's own process and thread, with
 * the router's real loader, configuration filler, batches and view, but with no
 * router around it: the test feeds it OTLP (JSON or protobuf), collects what it
 * emits, reads its own metrics and log lines, and moves a fake clock that fires
 * its api->timer_start() timers. No thread, socket or running router is needed;
 * a receiver or an exporter that does real I/O on api->loop() gets the harness's
 * libuv loop, which sy_pt_run() turns for a bounded real time.
 *
 *   char err[512];
 *   sy_pt_t *h = sy_pt_open("./processor_mine.so", "mine/x", "label: abc\n", err, sizeof err);
 *   if (!h || sy_pt_start(h) != SY_OK) { fprintf(stderr, "%s\n", err); return 1; }
 *   sy_pt_consume_json(h, SY_SIGNAL_TRACES, "{\"resourceSpans\":[...]}");
 *   char *json = sy_pt_emitted_json(h, 0);   // what it emitted, as OTLP/JSON
 *   sy_pt_advance(h, 200);                   // fires the timers due in 200 ms
 *   int64_t n; sy_pt_metric(h, "processor_mine_seen", &n);
 *   sy_pt_close(h);
 *
 * Like the router, the harness ignores SIGPIPE (sy_pt_open() sets it), so a
 * write to a peer that went away fails with EPIPE.
 *
 * Threads: one harness is used from one thread, the one that opened it, which is
 * the plugin's loop thread: every callback, timer and emit runs on it. Ownership:
 * batches the plugin emitted are held by the harness until sy_pt_emitted_clear()
 * or sy_pt_close(); strings returned as `char *` are the caller's to free().
 * Functions return SY_OK or a negative SY_E* as the plugin API does.
 */
#ifndef SWITCHYARD_PLUGINTEST_H
#define SWITCHYARD_PLUGINTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SY_PT_VERSION_MAJOR 0
#define SY_PT_VERSION_MINOR 1

typedef struct sy_pt_s sy_pt_t;

/*
 * Loads the plugin file `path` (named <kind>_<type>.so, as the loader requires)
 * through the router's loader, with all its checks; fills its configuration from
 * `yaml`, the component's own settings as they would stand under its ID in a
 * configuration file ("actions:\n  - {key: a, value: b, action: insert}\n"; NULL
 * or "" for the defaults), runs validate() and validate2(), and create(). `id`
 * is the component ID ("attributes/x"; NULL: the plugin's type). Returns NULL
 * with a sentence in err (the loader's, the filler's with file:line:col, or the
 * plugin's own) when any step fails.
 */
sy_pt_t *sy_pt_open(const char *path, const char *id, const char *yaml, char *err, size_t err_len);

/* sy_pt_open() with more to say. Zero members take the defaults. */
typedef struct sy_pt_options_s {
    const char *path; /* the plugin file */
    const char *id;   /* the component ID (NULL: the type) */
    const char *yaml; /* its settings (NULL: defaults) */
    /* The signals of the pipelines it is in, as api->signals() reports them
     * (0: every signal the plugin declares). A processor is in one pipeline. */
    uint32_t signals;
} sy_pt_options_t;
sy_pt_t *sy_pt_open_opts(const sy_pt_options_t *opts, char *err, size_t err_len);

/* Calls the plugin's start() (if any). Returns what it returned. */
int sy_pt_start(sy_pt_t *h);

/* Calls shutdown() (if started), closes the timers it left and turns the loop
 * until the plugin's handles have closed (at most 10 s; a handle left open is
 * reported on stderr and counted in the return). What shutdown() emitted (a
 * processor's final flush) can be read afterwards. Once only; returns the
 * number of libuv handles the plugin left open (0 when it closed them all). */
size_t sy_pt_shutdown(sy_pt_t *h);

/* sy_pt_shutdown() if not done yet, then destroy(); frees everything, emitted
 * batches included. NULL is ignored. */
void sy_pt_close(sy_pt_t *h);

/* The host table the plugin was given, and its instance: a test may use the
 * same functions (api->view_open(), api->batch_info(), ...). */
const sy_host_api_t *sy_pt_api(sy_pt_t *h);
sy_instance_t *sy_pt_instance(sy_pt_t *h);
/* The plugin's filled configuration struct (config_size bytes). */
const void *sy_pt_config(sy_pt_t *h);

/* ---- feeding ------------------------------------------------------------- */

/* A new batch (one reference, the caller's) of `signal` from an OTLP/JSON
 * export request, or from its protobuf encoding. NULL with a sentence in err. */
sy_batch_t *sy_pt_batch_json(sy_pt_t *h, sy_signal_t signal, const char *json, char *err,
                             size_t err_len);
sy_batch_t *sy_pt_batch_proto(sy_pt_t *h, sy_signal_t signal, const void *bytes, size_t len,
                              char *err, size_t err_len);

/* Hands the batch to the plugin's consume() (processors, exporters, connectors),
 * as the router would: the plugin is current for copy-on-write checks. The
 * harness gives up the batch either way (released when consume() failed).
 * Returns what consume() returned. */
int sy_pt_consume(sy_pt_t *h, sy_batch_t *batch);
/* sy_pt_batch_json() then sy_pt_consume(); SY_EINVAL when the JSON is refused. */
int sy_pt_consume_json(sy_pt_t *h, sy_signal_t signal, const char *json);

/* ---- what it emitted ----------------------------------------------------- */

/* What api->emit() / emit_to() answers from now on: SY_OK (the batch is taken
 * and kept), or SY_EAGAIN / SY_ECLOSED (refused: the plugin keeps it). */
void sy_pt_set_emit_result(sy_pt_t *h, int rc);
/* The batches emitted so far, in order (borrowed; valid until cleared). */
size_t sy_pt_emitted_count(sy_pt_t *h);
sy_batch_t *sy_pt_emitted(sy_pt_t *h, size_t i);
/* Batch i as OTLP/JSON on one line (malloc'ed), NULL past the end. */
char *sy_pt_emitted_json(sy_pt_t *h, size_t i);
/* The items (spans, data points, log records) of all batches emitted so far. */
uint64_t sy_pt_emitted_items(sy_pt_t *h);
/* Releases the batches collected so far. */
void sy_pt_emitted_clear(sy_pt_t *h);

/* ---- exporters ----------------------------------------------------------- */

/* Items of `signal` reported through api->exporter_outcome() as sent (true) or
 * given up on (false). */
uint64_t sy_pt_outcome(sy_pt_t *h, sy_signal_t signal, bool sent);
/* How many times the plugin called api->ready(). */
uint64_t sy_pt_ready_calls(sy_pt_t *h);

/* ---- its own metrics and logs -------------------------------------------- */

/* The value of the plugin's metric `name` (as registered, without the
 * "switchyard_" prefix or "_total"): SY_OK with *value set, or SY_EINVAL when it
 * registered none of that name. A series of a labelled metric (ABI 1.7) is named
 * name{label="value",...}, its labels in registration order, values unescaped:
 * "processor_x_count{policy=\"p\",sampled=\"true\"}". */
int sy_pt_metric(sy_pt_t *h, const char *name, int64_t *value);
/* Log lines the plugin wrote at `level` or above whose text holds `needle`
 * (NULL: any). */
size_t sy_pt_log_count(sy_pt_t *h, sy_log_level_t level, const char *needle);
/* Line i (oldest first) and its level; NULL past the end. */
const char *sy_pt_log_line(sy_pt_t *h, size_t i, sy_log_level_t *level);
/* The level below which api->log_enabled() says no (default SY_LOG_DEBUG: all);
 * lines are also printed to stderr when echo is true (default: when the
 * environment has SY_PT_ECHO set). */
void sy_pt_log_config(sy_pt_t *h, sy_log_level_t level, bool echo);

/* ---- time ---------------------------------------------------------------- */

/* The fake clock, in milliseconds since sy_pt_open(). Timers the plugin starts
 * with api->timer_start() are due on this clock and fire only in sy_pt_advance(). */
uint64_t sy_pt_now_ms(sy_pt_t *h);
/* Moves the clock `ms` forward, firing every timer that falls due on the way, in
 * order of due time (a repeating timer as often as it falls due), each with the
 * clock set to its due time. Returns how many callbacks ran. */
size_t sy_pt_advance(sy_pt_t *h, uint64_t ms);
/* Timers started and not stopped. */
size_t sy_pt_timer_count(sy_pt_t *h);

/* ---- real I/O ------------------------------------------------------------ */

/* Turns the instance's libuv loop (api->loop()) for `ms` real milliseconds, or
 * until done(arg) is true when done is not NULL (checked after each turn).
 * Returns 1 when done() became true, else 0. */
int sy_pt_run(sy_pt_t *h, int ms, bool (*done)(void *arg), void *arg);

#ifdef __cplusplus
}
#endif
#endif /* SWITCHYARD_PLUGINTEST_H */
