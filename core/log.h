/*
 * log.h - the core's logging: one line per record on stderr.
 *
 * The line format follows the collector's console encoding, with tabs between
 * the columns:
 *
 *     2026-11-22T04:32:40.123Z<TAB>info<TAB>otlp/2<TAB>message
 *
 * The time is UTC with milliseconds. A NULL component is written as "service", so
 * every line has four columns. Newlines and other control characters inside the
 * message are written as spaces, so that one record is always one line. A record
 * longer than SY__LOG_LINE_MAX bytes is cut and ends in "...".
 *
 * Threads: every function here may be called from any thread. Each record is
 * formatted into a buffer on the caller's stack and written with one write(2),
 * which POSIX makes atomic on a pipe for up to PIPE_BUF bytes, so records of
 * concurrent threads never interleave.
 */
#ifndef SY_LOG_H
#define SY_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <switchyard/plugin.h>

/* The longest line written, newline included (PIPE_BUF on Linux). */
#define SY__LOG_LINE_MAX 4096

/* Sets the lowest level written; SY_LOG_INFO until called. Any thread. */
void sy__log_set_level(sy_log_level_t level);

/* The lowest level written. */
sy_log_level_t sy__log_level(void);

/* True if a record at `level` would be written: one relaxed atomic load. */
bool sy__log_enabled(sy_log_level_t level);

/*
 * Parses a level as service.telemetry.logs.level spells it: "debug", "info",
 * "warn" (or "warning") or "error", in any case. Returns 0, or SY_EINVAL and leaves
 * *level alone.
 */
int sy__log_level_parse(const char *name, sy_log_level_t *level);

/* The lower-case name of a level ("info"); "unknown" for anything else. */
const char *sy__log_level_name(sy_log_level_t level);

/* Writes one record if `level` is enabled. `component` may be NULL. */
void sy__log(const char *component, sy_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sy__vlog(const char *component, sy_log_level_t level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Checks the level before the arguments are evaluated or formatted. */
#define SY__LOG(level, component, ...)                                          \
    do {                                                                        \
        if (sy__log_enabled(level)) sy__log((component), (level), __VA_ARGS__); \
    } while (0)

/* ------------------------------------------------------------------------ */
/* Rate-limited records                                                      */
/* ------------------------------------------------------------------------ */

/*
 * The state of one rate limit: one per kind of message (for example one per UDP
 * receiver instance for "dropped a datagram"). Zero-initialise it (static storage,
 * calloc, or SY__RATELIMIT_INIT). Lock-free; any thread.
 */
typedef struct sy__ratelimit_s {
    _Atomic uint64_t next_ms;    /* monotonic ms before which records are suppressed */
    _Atomic uint64_t suppressed; /* records suppressed since the last one written */
} sy__ratelimit_t;

#define SY__RATELIMIT_INIT \
    {                      \
        0, 0               \
    }

/*
 * Decides whether a rate-limited record may be written now: true at most once per
 * `interval_ms` for one `rl`. When true, *suppressed (if not NULL) receives how
 * many calls were refused since the last true, and the count restarts at zero.
 */
bool sy__log_ratelimit(sy__ratelimit_t *rl, uint64_t interval_ms, uint64_t *suppressed);

/*
 * Like sy__log(), and ends the message with " (N similar messages suppressed)"
 * when `suppressed` is not zero.
 */
void sy__log_suppressed(const char *component, sy_log_level_t level, uint64_t suppressed,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Writes at most one record per `interval_ms` for the rate limit `rl`, counting
 * the others and reporting their number in the next record written:
 *
 *     static sy__ratelimit_t drop_rl;   (or a member of the instance's state)
 *     SY__LOG_RATELIMITED(&drop_rl, 10000, SY_LOG_WARN, id, "dropped %zu spans", n);
 */
#define SY__LOG_RATELIMITED(rl, interval_ms, level, component, ...)                             \
    do {                                                                                        \
        uint64_t sy__suppressed_;                                                               \
        if (sy__log_enabled(level) && sy__log_ratelimit((rl), (interval_ms), &sy__suppressed_)) \
            sy__log_suppressed((component), (level), sy__suppressed_, __VA_ARGS__);             \
    } while (0)

/* ------------------------------------------------------------------------ */
/* The last warnings and errors of each component (log_recent.c)             */
/* ------------------------------------------------------------------------ */

/* Records kept per component ID, and the longest message kept (NUL included;
 * longer ones are cut). */
#define SY__LOG_RECENT_PER_COMPONENT 5
#define SY__LOG_RECENT_MSG_MAX       256

typedef struct sy__log_recent_s {
    int64_t time_unix_ms;                 /* when it was written (CLOCK_REALTIME) */
    sy_log_level_t level;                 /* SY_LOG_WARN or SY_LOG_ERROR */
    char message[SY__LOG_RECENT_MSG_MAX]; /* one line, as written after the ID */
} sy__log_recent_t;

/*
 * Remembers one record of `component` (NULL: "service") if level is warn or
 * error; the logging functions above call it for every such record they write.
 * `message` is len bytes, no NUL needed. Any thread.
 */
void sy__log_recent_add(const char *component, sy_log_level_t level, int64_t time_unix_ms,
                        const char *message, size_t len);

/*
 * Copies the newest records of `component` (NULL: "service"), at most max of them,
 * oldest first, into out; returns how many. Any thread.
 */
size_t sy__log_recent(const char *component, sy__log_recent_t *out, size_t max);

/* Forgets every record and frees the rings (tests; exit). Any thread. */
void sy__log_recent_reset(void);

#endif
