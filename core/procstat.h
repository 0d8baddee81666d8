/*
 * procstat.h - the process's own resource use, for the process_* metrics.
 *
 * Read from /proc/self (Linux); CPU time falls back to getrusage() where /proc
 * is not mounted. Any thread; no state.
 */
#ifndef SY_PROCSTAT_H
#define SY_PROCSTAT_H

#include <stdint.h>

typedef struct sy__procstat_s {
    double cpu_user_seconds;   /* user CPU time of every thread */
    double cpu_system_seconds; /* system CPU time of every thread */
    uint64_t rss_bytes;        /* resident set size; 0 when unknown */
    double start_time_seconds; /* Unix time the process started; 0 when unknown */
} sy__procstat_t;

/* Fills *out. Returns 0, or SY_ERROR when nothing could be read (fields that
 * could not be read are 0). */
int sy__procstat_read(sy__procstat_t *out);

/* The current Unix time in seconds, with sub-second precision. */
double sy__procstat_now(void);

#endif
