/*
 * procstat.c - the process's own CPU time, memory and start time from /proc.
 */
#include "procstat.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <switchyard/plugin.h>

/* Reads a small /proc file into buf (NUL-terminated). Returns its length or -1. */
static ssize_t sy__procstat_slurp(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t len = 0;
    while (len < cap - 1) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

/* The boot time ("btime") from /proc/stat, or 0. The file grows with the number of
 * CPUs, so it is scanned line by line rather than read whole. */
static unsigned long long sy__procstat_boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (f == NULL) return 0;
    char line[256];
    unsigned long long btime = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "btime ", 6) == 0) {
            btime = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return btime;
}

double sy__procstat_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int sy__procstat_read(sy__procstat_t *out)
{
    memset(out, 0, sizeof *out);
    int got = 0;
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    char buf[1024];
    if (ticks > 0 && sy__procstat_slurp("/proc/self/stat", buf, sizeof buf) > 0) {
        /* The command name (field 2) is in parentheses and may itself hold spaces
         * and parentheses: the fields that follow start after the last ')'. */
        char *p = strrchr(buf, ')');
        unsigned long long utime = 0, stime = 0, start = 0;
        long rss = 0;
        if (p != NULL && sscanf(p + 1,
                                " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u" /* 3-13 */
                                " %llu %llu %*d %*d %*d %*d %*d %*d %llu"      /* 14-22 */
                                " %*u %ld",                                    /* 23-24 */
                                &utime, &stime, &start, &rss) == 4) {
            out->cpu_user_seconds = (double)utime / (double)ticks;
            out->cpu_system_seconds = (double)stime / (double)ticks;
            if (rss > 0 && page > 0) out->rss_bytes = (uint64_t)rss * (uint64_t)page;
            unsigned long long btime = sy__procstat_boot_time();
            if (btime > 0) out->start_time_seconds = (double)btime + (double)start / (double)ticks;
            got = 1;
        }
    }
    if (!got) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) == 0) {
            out->cpu_user_seconds = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
            out->cpu_system_seconds = (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
            out->rss_bytes = (uint64_t)ru.ru_maxrss * 1024u; /* the peak: the best left */
            got = 1;
        }
    }
    return got ? SY_OK : SY_ERROR;
}
