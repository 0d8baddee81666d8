/*
 * file.c - the `file` exporter: writes every batch to a file, as the collector's
 * fileexporter does.
 *
 * Formats: `json` writes one OTLP/JSON export request per line; `proto` writes
 * each request's protobuf bytes preceded by their length as a 4-byte big-endian
 * unsigned integer. With `compression: zstd` each request is compressed on its
 * own and written length-prefixed, in either format (the collector's default,
 * non-streaming compression). Rotation, buffering and pruning are in
 * file_writer.c.
 *
 * Threads: everything runs on the exporter's loop thread. Writes go to a 64 KiB
 * buffer; the buffer is written to the file when full, every flush_interval and
 * at shutdown. Those writes are blocking write(2) calls of at most the buffer
 * size (or one record larger than it), which is acceptable on an exporter's own
 * thread: a slow disk delays only this exporter, and its queue pushes back.
 *
 * Outcomes: consume() is synchronous. A batch is counted sent when it is in the
 * buffer; a batch that cannot be written (encoding failure, write error while
 * making room or rotating) is refused with an error, so the host counts it as
 * failed.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <zstd.h>

#include <switchyard/plugin.h>

#include "file_writer.h"
#include "otlp_json.h"
#include "signals.h"

/* At most one error line per this many milliseconds; the rest are counted. */
#define ERROR_LOG_INTERVAL_MS 5000

/* zstd level: 3 is zstd's default, about what the collector's encoder uses. */
#define ZSTD_LEVEL 3

enum { FORMAT_JSON = 0, FORMAT_PROTO = 1 };

typedef struct file_config_s {
    char *path;
    bool append;
    int format;
    char *compression;
    int64_t flush_interval; /* nanoseconds */
    bool rotation;          /* the `rotation` key is present */
    int64_t max_megabytes;
    int64_t max_days;
    int64_t max_backups;
    bool localtime;
    bool group_by_enabled;
    char *group_by_resource_attribute;
    int64_t group_by_max_open_files;
    bool create_directory;
    char *directory_permissions;
} file_config_t;

typedef struct file_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const file_config_t *cfg;
    fw_writer_t writer;
    bool open;
    sy_timer_t *flush_timer;
    ZSTD_CCtx *zstd; /* NULL unless compression is zstd */
    sy_metric_t *m_bytes;
    sy_metric_t *m_rotations;
    sy_metric_t *m_write_errors;
    uint64_t rotations_seen;
    uint64_t last_error_ms;
    uint64_t errors_suppressed;
} file_state_t;

static const char *const format_names[] = {"json", "proto", NULL};

static const sy_config_field_t file_fields[] = {
    {.name = "path",
     .type = SY_CFG_STRING,
     .offset = offsetof(file_config_t, path),
     .required = true,
     .description = "Where to write; relative paths are relative to the working directory."},
    {.name = "append",
     .type = SY_CFG_BOOL,
     .offset = offsetof(file_config_t, append),
     .default_value = "false",
     .description = "Append to an existing file (true) or truncate it at start (false). "
                    "Not with rotation or compression."},
    {.name = "format",
     .type = SY_CFG_ENUM,
     .offset = offsetof(file_config_t, format),
     .default_value = "json",
     .description = "json: one OTLP/JSON request per line; proto: each request's protobuf "
                    "bytes after a 4-byte big-endian length.",
     .enum_values = format_names},
    {.name = "compression",
     .type = SY_CFG_STRING,
     .offset = offsetof(file_config_t, compression),
     .description = "zstd: compress each request on its own and write it length-prefixed "
                    "(in either format). Unset: no compression."},
    {.name = "flush_interval",
     .type = SY_CFG_DURATION,
     .offset = offsetof(file_config_t, flush_interval),
     .default_value = "1s",
     .description = "How often buffered data is written to the file (0 means 1s)."},
    {.name = "rotation",
     .type = SY_CFG_PRESENT,
     .offset = offsetof(file_config_t, rotation),
     .description = "Rotates the file when present, even if empty."},
    {.name = "rotation.max_megabytes",
     .type = SY_CFG_INT,
     .offset = offsetof(file_config_t, max_megabytes),
     .default_value = "100",
     .description = "Size in MiB past which the file is rotated (0 means 100)."},
    {.name = "rotation.max_days",
     .type = SY_CFG_INT,
     .offset = offsetof(file_config_t, max_days),
     .default_value = "0",
     .description = "Remove backups whose name's timestamp is older than this many days "
                    "(0 keeps them whatever their age)."},
    {.name = "rotation.max_backups",
     .type = SY_CFG_INT,
     .offset = offsetof(file_config_t, max_backups),
     .default_value = "100",
     .description = "Number of backups kept; older ones are removed (0 keeps all)."},
    {.name = "rotation.localtime",
     .type = SY_CFG_BOOL,
     .offset = offsetof(file_config_t, localtime),
     .default_value = "false",
     .description = "Backup timestamps in the host's local time rather than UTC."},
    {.name = "group_by.enabled",
     .type = SY_CFG_BOOL,
     .offset = offsetof(file_config_t, group_by_enabled),
     .default_value = "false",
     .description = "Writing to one file per resource attribute value is not supported "
                    "yet; true is refused."},
    {.name = "group_by.resource_attribute",
     .type = SY_CFG_STRING,
     .offset = offsetof(file_config_t, group_by_resource_attribute),
     .default_value = "fileexporter.path_segment",
     .description = "Accepted for compatibility; unused while group_by is not supported."},
    {.name = "group_by.max_open_files",
     .type = SY_CFG_INT,
     .offset = offsetof(file_config_t, group_by_max_open_files),
     .default_value = "100",
     .description = "Accepted for compatibility; unused while group_by is not supported."},
    {.name = "create_directory",
     .type = SY_CFG_BOOL,
     .offset = offsetof(file_config_t, create_directory),
     .default_value = "false",
     .description = "Create the file's parent directories at start."},
    {.name = "directory_permissions",
     .type = SY_CFG_STRING,
     .offset = offsetof(file_config_t, directory_permissions),
     .description = "Octal mode of directories made by create_directory (default 0755, "
                    "less the umask)."},
};

/* Parses an octal mode such as "0755"; -1 if it is not one or has other bits. */
static long parse_mode(const char *s)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 8);
    if (errno || *end || v < 0 || (v & ~0777L)) return -1;
    return v;
}

/* The collector's checks and messages (exporter/fileexporter/config.go). */
static int file_validate(const void *config, char *err, size_t err_len)
{
    const file_config_t *c = config;
    const char *msg = NULL;
    bool zstd = c->compression && *c->compression;
    if (!c->path || !*c->path)
        msg = "path must be non-empty";
    else if (c->append && zstd)
        msg = "append and compression enabled at the same time is not supported";
    else if (c->append && c->rotation)
        msg = "append and rotation enabled at the same time is not supported";
    else if (zstd && strcmp(c->compression, "zstd") != 0)
        msg = "compression is not supported";
    else if (c->flush_interval < 0)
        msg = "flush_interval must be larger than zero";
    else if (c->group_by_enabled)
        msg = "group_by: writing to one file per resource attribute is not supported by "
              "this exporter; remove group_by or set group_by.enabled to false";
    else if (c->max_megabytes < 0 || c->max_megabytes > (INT64_C(1) << 32))
        msg = "rotation.max_megabytes must be between 0 and 4294967296";
    else if (c->max_days < 0 || c->max_days > 1000000)
        msg = "rotation.max_days must be between 0 and 1000000";
    else if (c->max_backups < 0)
        msg = "rotation.max_backups must be greater or equal to 0";
    else if (c->directory_permissions && !c->create_directory)
        msg = "directory_permissions requires create_directory to be true";
    else if (c->directory_permissions && parse_mode(c->directory_permissions) < 0)
        msg = "directory_permissions value must be a valid octal representation";
    if (!msg) return SY_OK;
    snprintf(err, err_len, "%s", msg);
    return SY_EINVAL;
}

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Logs a write error at most once per ERROR_LOG_INTERVAL_MS, saying how many were
 * left out in between, and counts every one. */
static void report_error(file_state_t *s, const char *what, const char *detail)
{
    s->api->metric_add(s->m_write_errors, 1);
    uint64_t now = monotonic_ms();
    if (s->last_error_ms && now - s->last_error_ms < ERROR_LOG_INTERVAL_MS) {
        s->errors_suppressed++;
        return;
    }
    s->last_error_ms = now;
    SY_LOG(s->api, s->inst, SY_LOG_ERROR, "%s: %s (%" PRIu64 " similar errors not logged)", what,
           detail, s->errors_suppressed);
    s->errors_suppressed = 0;
}

/* Feeds the rotation counter from the writer's. */
static void note_rotations(file_state_t *s)
{
    if (s->writer.rotations == s->rotations_seen) return;
    s->api->metric_add(s->m_rotations, (int64_t)(s->writer.rotations - s->rotations_seen));
    SY_LOG(s->api, s->inst, SY_LOG_DEBUG, "rotated %s (%" PRIu64 " backups removed so far)",
           s->writer.path, s->writer.removed);
    s->rotations_seen = s->writer.rotations;
}

/* Makes the parent directories of path, like `mkdir -p $(dirname path)`. */
static int make_parents(const char *path, mode_t mode, char *err, size_t err_len)
{
    char *dir = strdup(path);
    if (!dir) return SY_ENOMEM;
    int rc = SY_OK;
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1;; p++) {
            if (*p != '/' && *p != '\0') continue;
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, mode) != 0 && errno != EEXIST) {
                snprintf(err, err_len, "cannot create directory %s: %s", dir, strerror(errno));
                rc = SY_ERROR;
                break;
            }
            *p = saved;
            if (saved == '\0') break;
        }
    }
    free(dir);
    return rc;
}

static void on_flush_timer(void *arg)
{
    file_state_t *s = arg;
    char err[512];
    if (s->open && fw_flush(&s->writer, err, sizeof(err)) < 0) report_error(s, "flush failed", err);
}

static int file_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                       void **state)
{
    const file_config_t *cfg = config;
    file_state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    s->cfg = cfg;
    if (cfg->compression && *cfg->compression && !(s->zstd = ZSTD_createCCtx())) {
        free(s);
        return SY_ENOMEM;
    }
    s->m_bytes = api->metric_register(inst, "exporter_file_written_bytes",
                                      "Bytes of records accepted for writing, with their "
                                      "framing or newline.",
                                      SY_METRIC_COUNTER);
    s->m_rotations = api->metric_register(inst, "exporter_file_rotations",
                                          "Times the file was rotated.", SY_METRIC_COUNTER);
    s->m_write_errors =
        api->metric_register(inst, "exporter_file_write_errors",
                             "Failed writes, flushes and rotations, and batches that "
                             "could not be encoded.",
                             SY_METRIC_COUNTER);
    *state = s;
    return SY_OK;
}

static int file_start(void *state)
{
    file_state_t *s = state;
    const file_config_t *c = s->cfg;
    char err[512];
    if (c->create_directory) {
        long mode = c->directory_permissions ? parse_mode(c->directory_permissions) : 0755;
        if (make_parents(c->path, (mode_t)mode, err, sizeof(err)) < 0) {
            SY_LOG(s->api, s->inst, SY_LOG_ERROR, "%s", err);
            return SY_ERROR;
        }
    }
    int64_t mib = c->max_megabytes > 0 ? c->max_megabytes : 100;
    fw_rotation_t rot = {
        .enabled = c->rotation,
        .max_bytes = (uint64_t)mib * 1024 * 1024,
        .max_days = c->max_days,
        .max_backups = c->max_backups,
        .localtime = c->localtime,
    };
    if (fw_open(&s->writer, c->path, c->append, &rot, err, sizeof(err)) < 0) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "%s", err);
        return SY_ERROR;
    }
    s->open = true;
    int64_t interval_ms =
        (c->flush_interval > 0 ? c->flush_interval : INT64_C(1000000000)) / 1000000;
    if (interval_ms < 1) interval_ms = 1;
    s->flush_timer = s->api->timer_start(s->inst, (uint64_t)interval_ms, (uint64_t)interval_ms,
                                         on_flush_timer, s);
    if (!s->flush_timer) {
        SY_LOG(s->api, s->inst, SY_LOG_ERROR, "cannot start the flush timer");
        return SY_ERROR;
    }
    return SY_OK;
}

/*
 * Encodes one batch: sets *data and *len to the bytes to write, which are either
 * the batch's own protobuf bytes (valid while it is held) or JSON in *owned,
 * malloc'd and freed by the caller (*owned is NULL otherwise). Returns 0 or a
 * negative SY_E* with a sentence in err.
 */
static int encode(file_state_t *s, sy_batch_t *batch, const uint8_t **data, size_t *len,
                  char **owned, char *err, size_t err_len)
{
    *owned = NULL;
    if (s->cfg->format == FORMAT_PROTO) {
        *data = s->api->batch_encoded(batch, len);
        if (!*data) {
            snprintf(err, err_len, "cannot encode the batch as protobuf");
            return SY_EINVAL;
        }
        return SY_OK;
    }
    /* JSON straight from the encoded bytes: strings keep every byte, NUL too,
     * which a decode into protobuf-c structs would cut. */
    sy_batch_info_t info;
    s->api->batch_info(batch, &info);
    const syc_signal_info_t *sig = syc_signal_info(info.signal);
    size_t wire_len;
    const uint8_t *wire = sig ? s->api->batch_encoded(batch, &wire_len) : NULL;
    if (!wire) {
        snprintf(err, err_len, "cannot encode the batch as protobuf");
        return SY_EINVAL;
    }
    if (!(*owned = syc_otlp_json_from_wire(sig->request, wire, wire_len, len, NULL))) {
        snprintf(err, err_len,
                 "cannot encode the batch as JSON (out of memory, malformed or too deep)");
        return SY_ENOMEM;
    }
    *data = (const uint8_t *)*owned;
    return SY_OK;
}

/* Writes one record: a JSON line, or (proto, or anything compressed) a 4-byte
 * big-endian length and the bytes. */
static int write_record(file_state_t *s, const uint8_t *data, size_t len, char *err, size_t err_len)
{
    uint8_t *packed = NULL;
    int rc;
    if (s->zstd) {
        size_t cap = ZSTD_compressBound(len);
        if (!(packed = malloc(cap))) {
            snprintf(err, err_len, "out of memory");
            return SY_ENOMEM;
        }
        size_t n = ZSTD_compressCCtx(s->zstd, packed, cap, data, len, ZSTD_LEVEL);
        if (ZSTD_isError(n)) {
            snprintf(err, err_len, "zstd: %s", ZSTD_getErrorName(n));
            free(packed);
            return SY_ERROR;
        }
        data = packed;
        len = n;
    }
    if (len > UINT32_MAX) {
        snprintf(err, err_len, "a request of %zu bytes does not fit the 4-byte length", len);
        free(packed);
        return SY_EINVAL;
    }
    struct iovec iov[2];
    uint8_t head[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                       (uint8_t)len};
    bool framed = s->zstd || s->cfg->format == FORMAT_PROTO;
    if (framed) {
        iov[0] = (struct iovec){.iov_base = head, .iov_len = 4};
        iov[1] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
    } else {
        iov[0] = (struct iovec){.iov_base = (void *)data, .iov_len = len};
        iov[1] = (struct iovec){.iov_base = "\n", .iov_len = 1};
    }
    rc = fw_write(&s->writer, iov, 2, err, err_len);
    if (rc == SY_OK) s->api->metric_add(s->m_bytes, (int64_t)(len + (framed ? 4 : 1)));
    free(packed);
    return rc;
}

static int file_consume(void *state, sy_batch_t *batch)
{
    file_state_t *s = state;
    char err[512];
    const uint8_t *data;
    size_t len;
    char *owned;
    if (!s->open) return SY_ECLOSED;
    int rc = encode(s, batch, &data, &len, &owned, err, sizeof(err));
    if (rc == SY_OK) rc = write_record(s, data, len, err, sizeof(err));
    free(owned);
    note_rotations(s);
    if (rc < 0) {
        report_error(s, "a batch was not written", err);
        return rc;
    }
    s->api->batch_release(batch);
    return SY_OK;
}

/* Stops the timer and writes what is buffered; the file is closed here so that
 * everything is on disk once the router has stopped. */
static void file_shutdown(void *state)
{
    file_state_t *s = state;
    if (s->flush_timer) {
        s->api->timer_stop(s->flush_timer);
        s->flush_timer = NULL;
    }
    if (s->open) {
        char err[512];
        s->open = false;
        if (fw_close(&s->writer, err, sizeof(err)) < 0)
            SY_LOG(s->api, s->inst, SY_LOG_ERROR, "data lost at shutdown: %s", err);
    }
}

static void file_destroy(void *state)
{
    file_state_t *s = state;
    if (s->open) {
        char err[512];
        (void)fw_close(&s->writer, err, sizeof(err));
    }
    ZSTD_freeCCtx(s->zstd);
    free(s);
}

static const sy_plugin_t file_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXPORTER,
    .type = "file",
    .signals = SY_SIGNAL_ALL,
    .flags = 0,
    .version = "0.1.0",
    .description = "Writes telemetry to a file as OTLP/JSON lines or length-prefixed protobuf, "
                   "with rotation, as the collector's file exporter.",
    .config_fields = file_fields,
    .config_field_count = sizeof(file_fields) / sizeof(file_fields[0]),
    .config_size = sizeof(file_config_t),
    .validate = file_validate,
    .create = file_create,
    .start = file_start,
    .consume = file_consume,
    .shutdown = file_shutdown,
    .destroy = file_destroy,
};

SY_PLUGIN_DEFINE(file_plugin)
