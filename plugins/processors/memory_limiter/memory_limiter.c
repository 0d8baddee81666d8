/*
 * memory_limiter.c - the `memory_limiter` processor: refuses new data while the
 * router's memory is above a soft limit, as the collector's does.
 *
 * Every check_interval it reads the process's resident set size. At or above the
 * soft limit (limit minus spike limit) it asks the host to refuse receivers that
 * emit into its pipeline (api->pipeline_refuse): their clients are told to retry
 * (HTTP 429 with Retry-After, gRPC RESOURCE_EXHAUSTED), which is the collector's
 * behaviour seen from the client. Below the soft limit it lets data in again.
 * At or above the soft limit it also hands freed heap back to the system
 * (malloc_trim), the closest thing C has to the collector's forced GC, and reads
 * the RSS again: freed memory the allocator keeps must not keep it refusing.
 *
 * Unlike the collector it never drops a batch that reaches it: data in the
 * pipeline was already acknowledged to a client, so it is carried on. The bound
 * comes from refusing what has not been acknowledged yet.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <switchyard/plugin.h>

#define MIB (1024ull * 1024ull)

typedef struct ml_config_s {
    int64_t check_interval_ns;
    int64_t limit_mib;
    int64_t spike_limit_mib;
    int64_t limit_percentage;
    int64_t spike_limit_percentage;
} ml_config_t;

typedef struct ml_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const ml_config_t *cfg;
    uint64_t hard, soft; /* bytes */
    sy_timer_t *timer;
    bool refusing;
    long page_size;
    sy_metric_t *m_rss, *m_refusing, *m_checks_refusing;
} ml_state_t;

static const sy_config_field_t ml_fields[] = {
    {.name = "check_interval",
     .type = SY_CFG_DURATION,
     .offset = offsetof(ml_config_t, check_interval_ns),
     .default_value = "0s",
     .description = "Time between measurements of memory usage; must be set (the collector's "
                    "default of 0 performs no checks and is refused)."},
    {.name = "limit_mib",
     .type = SY_CFG_INT,
     .offset = offsetof(ml_config_t, limit_mib),
     .default_value = "0",
     .description = "Hard limit of the resident set size, in MiB."},
    {.name = "spike_limit_mib",
     .type = SY_CFG_INT,
     .offset = offsetof(ml_config_t, spike_limit_mib),
     .default_value = "0",
     .description = "Largest spike expected between two checks, in MiB; the soft limit is "
                    "limit_mib minus this. 0 means 20 % of limit_mib."},
    {.name = "limit_percentage",
     .type = SY_CFG_INT,
     .offset = offsetof(ml_config_t, limit_percentage),
     .default_value = "0",
     .description = "Hard limit as a percentage of the memory available (the limit of the "
                    "process's own memory cgroup: a systemd unit's MemoryMax, a container's "
                    "limit; else the machine's memory); used when limit_mib is 0."},
    {.name = "spike_limit_percentage",
     .type = SY_CFG_INT,
     .offset = offsetof(ml_config_t, spike_limit_percentage),
     .default_value = "0",
     .description = "Spike limit as a percentage of the memory available, with "
                    "limit_percentage."},
};

/* The number in file `path` (a cgroup's limit), 0 when it cannot be read or says
 * "max" (no limit). A cgroup v1 "no limit" is a huge number: read as given. */
static uint64_t read_limit(const char *path)
{
    unsigned long long v = 0;
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    if (fscanf(f, "%llu", &v) != 1) v = 0;
    fclose(f);
    return (uint64_t)v;
}

/* The limit of this process's own memory cgroup (from /proc/self/cgroup): cgroup v2
 * ("0::/path" -> /sys/fs/cgroup/path/memory.max), or v1 ("N:...memory...:/path" ->
 * /sys/fs/cgroup/memory/path/memory.limit_in_bytes); then the root's files, as
 * inside a container whose cgroup namespace makes its own cgroup the root. Under
 * systemd this is the unit's MemoryMax. 0 when there is none. */
static uint64_t cgroup_limit(void)
{
    char line[512], path[1024];
    uint64_t v = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    while (f && !v && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = 0;
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2) continue;
        const char *ctrl = c1 + 1, *cg = c2 + 1;
        size_t ctrl_len = (size_t)(c2 - ctrl);
        if (ctrl_len == 0 && !strncmp(line, "0:", 2)) {
            snprintf(path, sizeof(path), "/sys/fs/cgroup%s/memory.max", cg);
            v = read_limit(path);
        } else if (ctrl_len) {
            char ctrls[128];
            snprintf(ctrls, sizeof(ctrls), ",%.*s,", (int)ctrl_len, ctrl);
            if (!strstr(ctrls, ",memory,")) continue;
            snprintf(path, sizeof(path), "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", cg);
            v = read_limit(path);
        }
    }
    if (f) fclose(f);
    if (!v) v = read_limit("/sys/fs/cgroup/memory.max");
    if (!v) v = read_limit("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    return v;
}

/* The memory this process may use: its cgroup's limit when there is one and it is
 * below the machine's memory, else the machine's. 0 if neither can be read. */
static uint64_t memory_available(void)
{
    unsigned long long v = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        while (fgets(line, sizeof(line), f))
            if (sscanf(line, "MemTotal: %llu kB", &v) == 1) break;
        fclose(f);
    }
    uint64_t total = (uint64_t)v * 1024, cg = cgroup_limit();
    return cg && (cg < total || !total) ? cg : total;
}

/* The limits in bytes, or a sentence in err. Shared by validate() and create(). */
static int ml_limits(const ml_config_t *c, uint64_t *hard, uint64_t *soft, char *err,
                     size_t err_len)
{
    if (c->check_interval_ns <= 0) {
        snprintf(err, err_len, "check_interval must be greater than zero");
        return SY_EINVAL;
    }
    if (c->limit_mib < 0 || c->spike_limit_mib < 0 || c->limit_percentage < 0 ||
        c->spike_limit_percentage < 0) {
        snprintf(err, err_len, "limits must not be negative");
        return SY_EINVAL;
    }
    uint64_t h, spike;
    if (c->limit_mib > 0) {
        h = (uint64_t)c->limit_mib * MIB;
        spike = c->spike_limit_mib > 0 ? (uint64_t)c->spike_limit_mib * MIB : h / 5;
        if (c->spike_limit_mib > 0 && c->spike_limit_mib >= c->limit_mib) {
            snprintf(err, err_len, "spike_limit_mib (%lld) must be smaller than limit_mib (%lld)",
                     (long long)c->spike_limit_mib, (long long)c->limit_mib);
            return SY_EINVAL;
        }
    } else if (c->limit_percentage > 0) {
        if (c->limit_percentage > 100 || c->spike_limit_percentage >= c->limit_percentage) {
            snprintf(err, err_len,
                     "limit_percentage (%lld) must be at most 100 and above "
                     "spike_limit_percentage (%lld)",
                     (long long)c->limit_percentage, (long long)c->spike_limit_percentage);
            return SY_EINVAL;
        }
        uint64_t total = memory_available();
        if (total == 0) {
            snprintf(err, err_len, "limit_percentage: the memory available cannot be read");
            return SY_EINVAL;
        }
        h = total / 100 * (uint64_t)c->limit_percentage;
        spike = total / 100 * (uint64_t)c->spike_limit_percentage;
    } else {
        snprintf(err, err_len, "either limit_mib or limit_percentage must be greater than zero");
        return SY_EINVAL;
    }
    *hard = h;
    *soft = h - spike;
    return SY_OK;
}

static int ml_validate(const void *config, char *err, size_t err_len)
{
    uint64_t h, s;
    return ml_limits(config, &h, &s, err, err_len);
}

/* Resident set size in bytes (second field of /proc/self/statm, in pages). */
static uint64_t rss_bytes(const ml_state_t *s)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? (uint64_t)resident * (uint64_t)s->page_size : 0;
}

static void ml_check(void *arg)
{
    ml_state_t *s = arg;
    const sy_host_api_t *api = s->api;
    uint64_t rss = rss_bytes(s);
    /* Freed heap the allocator keeps counts in the RSS: without handing it back,
     * a router whose queues have drained could stay above the soft limit and
     * refuse for ever. So it is handed back at every check above the soft limit
     * (a few milliseconds a check, only while refusing), and read again. */
    if (rss >= s->soft) {
        malloc_trim(0);
        rss = rss_bytes(s);
    }
    api->metric_set(s->m_rss, (int64_t)rss);
    bool refuse = rss >= s->soft;
    if (refuse) api->metric_add(s->m_checks_refusing, 1);
    if (refuse == s->refusing) return;
    s->refusing = refuse;
    api->pipeline_refuse(s->inst, refuse);
    api->metric_set(s->m_refusing, refuse);
    if (refuse)
        SY_LOG(api, s->inst, SY_LOG_WARN,
               "Memory usage is above soft limit. Refusing data. (rss %llu MiB, soft limit %llu "
               "MiB, hard limit %llu MiB)",
               (unsigned long long)(rss / MIB), (unsigned long long)(s->soft / MIB),
               (unsigned long long)(s->hard / MIB));
    else
        SY_LOG(api, s->inst, SY_LOG_INFO,
               "Memory usage back within limits. Resuming normal operation. (rss %llu MiB)",
               (unsigned long long)(rss / MIB));
}

static int ml_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    if (!SY_API_HAS(api, pipeline_refuse)) {
        SY_LOG(api, inst, SY_LOG_ERROR, "this host has no pipeline_refuse (plugin ABI 1.1)");
        return SY_ENOTSUP;
    }
    ml_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = config;
    char err[256];
    if (ml_limits(s->cfg, &s->hard, &s->soft, err, sizeof(err)) < 0) {
        SY_LOG(api, inst, SY_LOG_ERROR, "%s", err);
        free(s);
        return SY_EINVAL;
    }
    /* Queued data is one part of the memory the limit covers: the router's queues
     * together may hold a quarter of the soft limit (the smallest bound of all
     * memory_limiters wins; SWITCHYARD_QUEUE_BUDGET overrides). */
    if (SY_API_HAS(api, queue_budget_limit)) api->queue_budget_limit(inst, s->soft / 4);
    s->page_size = sysconf(_SC_PAGESIZE);
    if (s->page_size <= 0) s->page_size = 4096;
    s->m_rss = api->metric_register(inst, "memory_limiter_rss_bytes",
                                    "Resident set size at the last check.", SY_METRIC_GAUGE);
    s->m_refusing = api->metric_register(
        inst, "memory_limiter_refusing",
        "1 while receivers feeding the pipeline are refused (memory above the soft limit).",
        SY_METRIC_GAUGE);
    s->m_checks_refusing = api->metric_register(
        inst, "memory_limiter_checks_above_soft_limit",
        "Checks that found memory at or above the soft limit.", SY_METRIC_COUNTER);
    /* The limits in force, so that a dashboard can draw the RSS against them. */
    sy_metric_t *m_hard =
        api->metric_register(inst, "memory_limiter_limit_bytes",
                             "Hard limit (limit_mib or limit_percentage).", SY_METRIC_GAUGE);
    sy_metric_t *m_soft =
        api->metric_register(inst, "memory_limiter_soft_limit_bytes",
                             "Soft limit (the hard limit less the spike limit): above it, "
                             "receivers feeding the pipeline are refused.",
                             SY_METRIC_GAUGE);
    api->metric_set(m_hard, (int64_t)s->hard);
    api->metric_set(m_soft, (int64_t)s->soft);
    *state = s;
    return SY_OK;
}

static int ml_start(void *state)
{
    ml_state_t *s = state;
    uint64_t ms = (uint64_t)(s->cfg->check_interval_ns / 1000000);
    if (ms == 0) ms = 1;
    ml_check(s); /* know where we stand before the first batch */
    s->timer = s->api->timer_start(s->inst, ms, ms, ml_check, s);
    return s->timer ? SY_OK : SY_ENOMEM;
}

/* Carries every batch on: it was acknowledged before it got here. */
static int ml_consume(void *state, sy_batch_t *batch)
{
    ml_state_t *s = state;
    return s->api->emit(s->inst, batch);
}

static void ml_shutdown(void *state)
{
    ml_state_t *s = state;
    if (s->timer) s->api->timer_stop(s->timer);
    s->timer = NULL;
    if (s->refusing) s->api->pipeline_refuse(s->inst, false);
    s->refusing = false;
}

static void ml_destroy(void *state)
{
    free(state);
}

static const sy_plugin_t ml_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_PROCESSOR,
    .type = "memory_limiter",
    .signals = SY_SIGNAL_ALL,
    .flags = 0,
    .version = "0.1.0",
    .description = "Refuses new data while memory is above a soft limit.",
    .config_fields = ml_fields,
    .config_field_count = sizeof(ml_fields) / sizeof(ml_fields[0]),
    .config_size = sizeof(ml_config_t),
    .validate = ml_validate,
    .create = ml_create,
    .start = ml_start,
    .consume = ml_consume,
    .shutdown = ml_shutdown,
    .destroy = ml_destroy,
};

SY_PLUGIN_DEFINE(ml_plugin)
