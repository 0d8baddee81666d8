/*
 * subproc.h - a child process that speaks the subprocess protocol
 * (docs/subprocess.md), supervised from one plugin instance's loop thread: the
 * `subprocess` processor and exporter share it.
 *
 * The supervisor (syc_sp_t) spawns the child with libuv, applies its resource
 * limits, says hello, and writes each submitted batch to it as a DATA frame with a
 * sequence number, at most max_in_flight at a time. It keeps every batch until the
 * child answers its sequence number with ACK (after zero or more DATA frames, which
 * are collected, not passed on, until the ACK comes) or NACK. When the child dies,
 * hangs past `timeout` or breaks the protocol, it is killed, what was in flight is
 * put back at the front of the queue with the answers collected so far discarded,
 * and the child is restarted by the restart policy with an exponential backoff; so
 * a batch is finished exactly once, with the answers of one child that saw it
 * whole. A batch that was in flight at max_attempts child failures is given up as
 * a poison pill.
 *
 * Thread: everything runs on the instance's loop thread.
 */
#ifndef SYC_SUBPROC_H
#define SYC_SUBPROC_H

#include <stdbool.h>
#include <stdint.h>

#include <switchyard/plugin.h>

enum { SYC_SP_RESTART_ALWAYS = 0, SYC_SP_RESTART_ON_FAILURE = 1, SYC_SP_RESTART_NEVER = 2 };

/* The keys both plugins take, embedded in their configuration structs. */
typedef struct syc_sp_config_s {
    sy_cfg_strlist_t command;
    sy_cfg_strmap_t env;
    int restart_policy;
    int64_t initial_interval_ns;
    int64_t max_interval_ns;
    int64_t max_restarts;
    int64_t restart_window_ns;
    int64_t memory_mib;
    int64_t cpu_seconds;
    int64_t open_files;
    int64_t timeout_ns;
    int64_t drain_timeout_ns;
    int64_t max_in_flight;
    int64_t max_attempts;
} syc_sp_config_t;

extern const char *const syc_sp_restart_policies[];

/* The field table entries of syc_sp_config_t member `m` of struct `st`. */
#define SYC_SP_FIELDS(st, m)                                                                       \
    {SY_CFG_FIELD("command", SY_CFG_STRLIST, st, m.command), .required = true, .min = "1",         \
     .description = "the child's program and its arguments (argv; the program is looked up in "    \
                    "PATH)"},                                                                      \
        {SY_CFG_FIELD("env", SY_CFG_STRMAP, st, m.env),                                            \
         .description = "variables added to the router's environment for the child"},              \
        {SY_CFG_FIELD("restart.policy", SY_CFG_ENUM, st, m.restart_policy),                        \
         .default_value = "always", .enum_values = syc_sp_restart_policies,                        \
         .description = "when a child that ended is started again"},                               \
        {SY_CFG_FIELD("restart.initial_interval", SY_CFG_DURATION, st, m.initial_interval_ns),     \
         .default_value = "100ms", .min = "1ms", .description = "first wait before a restart"},    \
        {SY_CFG_FIELD("restart.max_interval", SY_CFG_DURATION, st, m.max_interval_ns),             \
         .default_value = "10s", .min = "1ms",                                                     \
         .description = "longest wait; the wait doubles after each failure in a row"},             \
        {SY_CFG_FIELD("restart.max_restarts", SY_CFG_INT, st, m.max_restarts),                     \
         .default_value = "10", .min = "0",                                                        \
         .description = "restarts allowed within restart.window before giving up (0: no bound)"},  \
        {SY_CFG_FIELD("restart.window", SY_CFG_DURATION, st, m.restart_window_ns),                 \
         .default_value = "1m", .min = "1ms", .description = "the window max_restarts counts in"}, \
        {SY_CFG_FIELD("limits.memory_mib", SY_CFG_INT, st, m.memory_mib), .default_value = "0",    \
         .min = "0", .description = "RLIMIT_AS of the child in MiB (0: inherited)"},               \
        {SY_CFG_FIELD("limits.cpu_seconds", SY_CFG_INT, st, m.cpu_seconds), .default_value = "0",  \
         .min = "0", .description = "RLIMIT_CPU of the child in seconds (0: inherited)"},          \
        {SY_CFG_FIELD("limits.open_files", SY_CFG_INT, st, m.open_files), .default_value = "0",    \
         .min = "0", .description = "RLIMIT_NOFILE of the child (0: inherited)"},                  \
        {SY_CFG_FIELD("timeout", SY_CFG_DURATION, st, m.timeout_ns), .default_value = "5s",        \
         .min = "1ms",                                                                             \
         .description = "how long a request (and the child's hello) may go unanswered before "     \
                        "the child is killed and restarted"},                                      \
        {SY_CFG_FIELD("drain_timeout", SY_CFG_DURATION, st, m.drain_timeout_ns),                   \
         .default_value = "5s", .min = "1ms",                                                      \
         .description = "at shutdown, how long held batches may take to be answered"},             \
        {SY_CFG_FIELD("max_in_flight", SY_CFG_INT, st, m.max_in_flight), .default_value = "16",    \
         .min = "1", .max = "4096",                                                                \
         .description = "requests written to the child and unanswered"},                           \
    {                                                                                              \
        SY_CFG_FIELD("max_attempts", SY_CFG_INT, st, m.max_attempts),                              \
            .default_value = "5", .min = "1",                                                      \
            .description = "child failures a request may be in flight for before it is given up"   \
    }

/* How a submitted batch ended. */
typedef enum syc_sp_outcome_e {
    SYC_SP_ACKED = 0,   /* the child answered ACK */
    SYC_SP_NACKED = 1,  /* the child answered NACK (it refuses the request) */
    SYC_SP_DROPPED = 2, /* given up: poison pill, restarts exhausted, drain deadline */
} syc_sp_outcome_t;

typedef struct syc_sp_hooks_s {
    /* A batch submitted has ended. `outs` are the batches made of the child's DATA
     * answers, in order (ACKED only; the callee owns them and the array is the
     * supervisor's, valid during the call); `batch` is the submitted batch, whose
     * reference the callee now owns again. */
    void (*done)(void *ctx, sy_batch_t *batch, sy_batch_t **outs, size_t nouts,
                 syc_sp_outcome_t outcome);
    /* syc_sp_has_room() may have become true. */
    void (*room)(void *ctx);
} syc_sp_hooks_t;

typedef struct syc_sp_s syc_sp_t;

/* Checks a configuration: a command that can be found (main thread). */
int syc_sp_validate(const syc_sp_config_t *cfg, char *err, size_t err_len);

/* A supervisor (no child yet); NULL on out of memory. Registers the metrics. */
syc_sp_t *syc_sp_new(const sy_host_api_t *api, sy_instance_t *inst, const syc_sp_config_t *cfg,
                     const syc_sp_hooks_t *hooks, void *ctx);
/* Starts the first child. SY_ERROR (logged) when it cannot be spawned. */
int syc_sp_start(syc_sp_t *sp);
/* Takes the batch (the reference is the supervisor's until done()). SY_ECLOSED
 * when the supervisor gave up (the caller still owns it). */
int syc_sp_submit(syc_sp_t *sp, sy_batch_t *batch);
/* True when a batch submitted now would be written at once. */
bool syc_sp_has_room(const syc_sp_t *sp);
/* True once the restart policy gave up on the child. */
bool syc_sp_failed(const syc_sp_t *sp);
/* Begins stopping: held batches get drain_timeout to be answered, then the child's
 * stdin is closed (it should exit) and it is killed a second later if it has not. */
void syc_sp_shutdown(syc_sp_t *sp);
/* Frees the supervisor; its handles must have closed (after shutdown and the loop
 * ran), or never have opened. */
void syc_sp_free(syc_sp_t *sp);

#endif
