/*
 * switchyard/storage.h - the interface of storage extensions: a persistent
 * queue of records.
 *
 * An extension such as file_storage offers SY_STORAGE_QUEUE through
 * sy_plugin_t.extension_interface(); an exporter names the extension in
 * `sending_queue.storage: <id>` and gets the interface with
 * api->extension_get(inst, id, SY_STORAGE_QUEUE) in start(). The pointer stays
 * valid until the component's own shutdown has finished (extensions stop last).
 *
 * A queue is named by its owner (the component id, "otlphttp/backup") and a
 * name within it ("sending_queue"); what one run appended and did not confirm
 * is there again, in the same order, when the queue is opened by the next run
 * (after a clean stop or a kill -9). Records are opaque bytes with a weight
 * (the owner's unit: items) and an id that grows by one per append.
 *
 * Delivery contract: append() returns once the record is written to the
 * operating system (and on the disk when the extension's `fsync` is set); a
 * record is handed out by next() until confirm() is called for it, in this run
 * once and after every restart again. So a record is delivered at least once;
 * a duplicate can only be a record handed out but not yet confirmed when the
 * router died. A record whose checksum does not match (or that was cut short
 * by a crash) is skipped, counted and logged, never handed out.
 *
 * Threads: the functions of one queue may be called from one thread at a time
 * (the owner's loop thread); different queues from different threads. They do
 * file I/O on the caller's thread (a write, and an fsync when configured).
 */
#ifndef SWITCHYARD_STORAGE_H
#define SWITCHYARD_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SY_STORAGE_QUEUE "storage.queue/1"

typedef struct sy_storage_queue_s sy_storage_queue_t; /* one open queue */

/* What a queue holds: every record appended and not yet confirmed (those handed
 * out included), and what was found at open or skipped since. */
typedef struct sy_storage_stats_s {
    uint64_t records;     /* not yet confirmed */
    uint64_t bytes;       /* their payload bytes */
    uint64_t weight;      /* the sum of their weights */
    uint64_t unread;      /* records not yet handed out by next() in this run */
    uint64_t recovered;   /* records found at open (left by a previous run) */
    uint64_t redelivered; /* of those, records a previous run had handed out */
    uint64_t corrupt;     /* records skipped: bad checksum or cut short */
    uint64_t confirmed;   /* records confirmed in this run */
    uint64_t disk_bytes;  /* bytes of the queue's files on disk */
    uint64_t full;        /* appends refused for lack of disk space */
} sy_storage_stats_t;

/* One record handed out by next(). */
typedef struct sy_storage_record_s {
    uint64_t id;
    uint64_t weight;
    void *data; /* from the caller's alloc(); len bytes */
    size_t len;
} sy_storage_record_t;

typedef struct sy_storage_s {
    void *ctx;
    /*
     * Opens (creating if needed) the queue `name` of `owner`; only one opener at
     * a time. Records left by a previous run are checked and handed out first.
     * Returns 0 with *out, or a negative SY_E* with a sentence in err.
     */
    int (*open)(void *ctx, const char *owner, const char *name, sy_storage_queue_t **out, char *err,
                size_t err_len);
    /*
     * Appends one record. Returns 0 with its id in *id once written (and synced
     * when configured); SY_EAGAIN when the disk (or the file size limit) has no
     * room, nothing written: try again once records were confirmed; SY_ERROR on
     * another I/O error (logged), nothing written.
     */
    int (*append)(sy_storage_queue_t *q, const void *data, size_t len, uint64_t weight,
                  uint64_t *id);
    /*
     * Hands out the oldest record not handed out yet in this run: reads its bytes
     * into memory from alloc(arg, len) (NULL: SY_ENOMEM, the record stays unread)
     * and fills *rec. Returns 0, or SY_EAGAIN when there is none. Records that
     * fail their checksum are skipped (counted in `corrupt`, logged).
     */
    int (*next)(sy_storage_queue_t *q, void *(*alloc)(void *arg, size_t len), void *arg,
                sy_storage_record_t *rec);
    /*
     * The record `id` was delivered (or given up for good): it is never handed
     * out again, in this run or another. Returns 0, or SY_EINVAL for an id that is
     * not handed out.
     */
    int (*confirm)(sy_storage_queue_t *q, uint64_t id);
    /* Fills *st. */
    void (*stats)(sy_storage_queue_t *q, sy_storage_stats_t *st);
    /* Closes the queue; records not confirmed stay for the next run. */
    void (*close)(sy_storage_queue_t *q);
} sy_storage_t;

#ifdef __cplusplus
}
#endif
#endif /* SWITCHYARD_STORAGE_H */
