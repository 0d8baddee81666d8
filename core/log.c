/*
 * log.c - one line per record on stderr; see log.h for the format.
 */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* Relaxed everywhere: the level guards no other data, and a thread that sees a
 * change a little late writes or skips one record more, which is harmless. */
static _Atomic int sy__log_min_level = SY_LOG_INFO;

static const char *const sy__log_level_names[] = {"debug", "info", "warn", "error"};

void sy__log_set_level(sy_log_level_t level)
{
    atomic_store_explicit(&sy__log_min_level, (int)level, memory_order_relaxed);
}

sy_log_level_t sy__log_level(void)
{
    return (sy_log_level_t)atomic_load_explicit(&sy__log_min_level, memory_order_relaxed);
}

bool sy__log_enabled(sy_log_level_t level)
{
    return (int)level >= atomic_load_explicit(&sy__log_min_level, memory_order_relaxed);
}

int sy__log_level_parse(const char *name, sy_log_level_t *level)
{
    if (name == NULL) return SY_EINVAL;
    for (int i = SY_LOG_DEBUG; i <= SY_LOG_ERROR; i++) {
        if (strcasecmp(name, sy__log_level_names[i]) == 0) {
            *level = (sy_log_level_t)i;
            return SY_OK;
        }
    }
    if (strcasecmp(name, "warning") == 0) {
        *level = SY_LOG_WARN;
        return SY_OK;
    }
    return SY_EINVAL;
}

const char *sy__log_level_name(sy_log_level_t level)
{
    if ((int)level < SY_LOG_DEBUG || (int)level > SY_LOG_ERROR) return "unknown";
    return sy__log_level_names[level];
}

/* Writes all of buf, retrying after signals; a failing stderr is ignored, since
 * there is nowhere left to report it. */
static void sy__log_write_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDERR_FILENO, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Appends the formatted message to line[*pos..cap), replacing control characters
 * with spaces, and marks a cut with "...". Leaves room for the newline. */
static void sy__log_append(char *line, size_t *pos, size_t cap, const char *fmt, va_list ap)
{
    size_t room = cap - 1 - *pos; /* one byte kept for '\n' */
    char *start = line + *pos;
    int n = vsnprintf(start, room + 1, fmt, ap);
    if (n < 0) n = 0;
    size_t wrote = (size_t)n <= room ? (size_t)n : room;
    for (size_t i = 0; i < wrote; i++) {
        unsigned char c = (unsigned char)start[i];
        if (c < 0x20 || c == 0x7f) start[i] = ' ';
    }
    if ((size_t)n > room && room >= 3) memcpy(start + wrote - 3, "...", 3);
    *pos += wrote;
}

static size_t sy__log_prefix(char *line, size_t cap, const char *component, sy_log_level_t level,
                             struct timespec *when)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    *when = ts;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\t%s\t", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000L, sy__log_level_name(level));
    size_t pos = n < 0 ? 0 : (size_t)n;
    /* The component is an ID from the user's config: bound it and keep it on one
     * line and in one column. */
    const char *c = component != NULL ? component : "service";
    for (size_t i = 0; c[i] != '\0' && i < 256 && pos < cap - 2; i++) {
        unsigned char ch = (unsigned char)c[i];
        line[pos++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    line[pos++] = '\t';
    return pos;
}

static void sy__log_emit(const char *component, sy_log_level_t level, uint64_t suppressed,
                         const char *fmt, va_list ap)
{
    char line[SY__LOG_LINE_MAX];
    struct timespec when;
    size_t pos = sy__log_prefix(line, sizeof line, component, level, &when);
    size_t msg = pos;
    sy__log_append(line, &pos, sizeof line, fmt, ap);
    if (suppressed > 0 && pos < sizeof line - 1) {
        int n = snprintf(line + pos, sizeof line - 1 - pos,
                         " (%" PRIu64 " similar messages suppressed)", suppressed);
        if (n > 0) pos += (size_t)n < sizeof line - 1 - pos ? (size_t)n : sizeof line - 2 - pos;
    }
    /* Warnings and errors are also kept for the status page (log_recent.c). */
    if (level >= SY_LOG_WARN)
        sy__log_recent_add(component, level, (int64_t)when.tv_sec * 1000 + when.tv_nsec / 1000000,
                           line + msg, pos - msg);
    line[pos++] = '\n';
    sy__log_write_all(line, pos);
}

void sy__vlog(const char *component, sy_log_level_t level, const char *fmt, va_list ap)
{
    if (!sy__log_enabled(level)) return;
    sy__log_emit(component, level, 0, fmt, ap);
}

void sy__log(const char *component, sy_log_level_t level, const char *fmt, ...)
{
    if (!sy__log_enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    sy__log_emit(component, level, 0, fmt, ap);
    va_end(ap);
}

void sy__log_suppressed(const char *component, sy_log_level_t level, uint64_t suppressed,
                        const char *fmt, ...)
{
    if (!sy__log_enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    sy__log_emit(component, level, suppressed, fmt, ap);
    va_end(ap);
}

static uint64_t sy__monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool sy__log_ratelimit(sy__ratelimit_t *rl, uint64_t interval_ms, uint64_t *suppressed)
{
    uint64_t now = sy__monotonic_ms();
    /* Relaxed: next_ms and suppressed guard no other memory. The CAS makes exactly
     * one of several racing threads the writer of a window; the others count
     * themselves as suppressed. A count that races with the exchange below is
     * reported with the next window rather than this one, never lost. */
    uint64_t next = atomic_load_explicit(&rl->next_ms, memory_order_relaxed);
    if (now >= next &&
        atomic_compare_exchange_strong_explicit(&rl->next_ms, &next, now + interval_ms,
                                                memory_order_relaxed, memory_order_relaxed)) {
        uint64_t n = atomic_exchange_explicit(&rl->suppressed, 0, memory_order_relaxed);
        if (suppressed != NULL) *suppressed = n;
        return true;
    }
    atomic_fetch_add_explicit(&rl->suppressed, 1, memory_order_relaxed);
    return false;
}
