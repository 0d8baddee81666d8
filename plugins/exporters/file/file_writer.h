/*
 * file_writer.h - a buffered file with lumberjack-style rotation, for the `file`
 * exporter.
 *
 * Records (one JSON line, or one length-prefixed message) are appended to a memory
 * buffer and written to the file when the buffer is full, on fw_flush() and on
 * fw_close(). A record is never split between two files: when rotation is on and
 * a record would take the file past its size bound, the file is renamed first to
 * `<name>-<YYYY-MM-DDTHH-MM-SS.mmm><ext>` (UTC unless localtime) and a new one is
 * opened at the original path; then the backups beyond max_backups, and those
 * whose timestamp is older than max_days, are removed, as lumberjack (which the
 * collector uses) does.
 *
 * Not thread-safe: one writer belongs to one thread (the exporter's loop thread).
 * The calls are blocking file system calls, bounded by the buffer size.
 */
#ifndef SY_FILE_WRITER_H
#define SY_FILE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>

/* Size of the write buffer; a record larger than it is written directly. */
#define FW_BUFFER_SIZE ((size_t)64 * 1024)

/* The backup timestamp, as lumberjack formats it: "2006-01-02T15-04-05.000". */
#define FW_TIMESTAMP_LEN 23

typedef struct fw_rotation_s {
    bool enabled;
    uint64_t max_bytes;  /* rotate before a record would take the file past this */
    int64_t max_days;    /* remove backups older than this; 0 keeps them */
    int64_t max_backups; /* keep at most this many backups; 0 keeps all */
    bool localtime;      /* backup timestamps in local time rather than UTC */
} fw_rotation_t;

typedef struct fw_writer_s {
    char *path;    /* owned */
    int fd;        /* -1 when closed */
    uint64_t size; /* bytes in the file, counting what is still buffered */
    uint8_t *buf;  /* owned, FW_BUFFER_SIZE bytes */
    size_t len;    /* bytes buffered */
    fw_rotation_t rot;
    uint64_t rotations; /* files rotated since open */
    uint64_t removed;   /* backups removed since open */
    uint64_t written;   /* bytes written to files since open */
} fw_writer_t;

/*
 * Opens `path` for writing: with rotation, the existing file is appended to (and
 * rotated first if it is already at its bound), as lumberjack does; without it,
 * the file is truncated unless `append`. Old backups are pruned at once. Returns
 * 0, or a negative SY_E* with a sentence in err; on failure nothing is left open.
 */
int fw_open(fw_writer_t *w, const char *path, bool append, const fw_rotation_t *rot, char *err,
            size_t err_len);

/*
 * Appends one record made of iov[0..iovcnt) (total size at most 1 GiB), rotating
 * first if needed. Returns 0, or a negative SY_E* with a sentence in err, in
 * which case the record was not written at all (what was buffered before stays
 * buffered, to be written on the next flush).
 */
int fw_write(fw_writer_t *w, const struct iovec *iov, int iovcnt, char *err, size_t err_len);

/* Writes what is buffered. Returns 0 or a negative SY_E* with a sentence in err;
 * what could not be written stays buffered. */
int fw_flush(fw_writer_t *w, char *err, size_t err_len);

/* Flushes and closes; frees everything. Returns the flush's result. Idempotent,
 * and harmless on a zeroed writer that was never opened. */
int fw_close(fw_writer_t *w, char *err, size_t err_len);

/*
 * The backup name of `path` for time `when`: "dir/name-2022-09-14T05-02-14.173.json"
 * for "dir/name.json". Returns 0, or SY_ENOMEM if it does not fit in out_len.
 */
int fw_backup_name(const char *path, const struct timespec *when, bool localtime, char *out,
                   size_t out_len);

/*
 * Removes the backups of w->path beyond rot.max_backups (oldest first) and those
 * older than rot.max_days before `now`. Files that do not parse as backups of
 * this path are never touched. Returns the number removed, or a negative SY_E*.
 */
int fw_prune(fw_writer_t *w, const struct timespec *now);

#endif
