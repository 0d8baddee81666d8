/*
 * file_storage.c - the `file_storage` extension: persistent queues in segment
 * files (SY_STORAGE_QUEUE of <switchyard/storage.h>), for exporters'
 * `sending_queue.storage`. The keys are the collector's filestorage extension's;
 * the format is our own (the collector's bbolt file is not read).
 *
 * One queue is one directory under `directory` (named after its owner and name)
 * holding
 *   seg-<first id, 16 hex>.log  records appended, in id order (segment.h);
 *   state                       what is confirmed: every id below `below`, and
 *                               runs of ids above it, plus the ids handed out
 *                               and not confirmed (to count possible duplicates
 *                               after a crash); replaced atomically (a temporary
 *                               file renamed over it, synced when `fsync`).
 * Appends go to the newest segment, which is rolled over at FS_SEG_MAX bytes; a
 * new run always starts a new segment, so a torn tail is never written after.
 * A segment all of whose records are confirmed is deleted: that is the
 * compaction of this format, and it happens at once.
 *
 * Each queue keeps an index of its records not yet confirmed (40 bytes each) in a
 * ring, oldest first; the first `read` of them were handed out in this run.
 *
 * Threads: the extension's own state (the lock file, the list of open queues) is
 * guarded by a mutex; a queue is used by its owner's thread only (storage.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>
#include <zlib.h>

#include <switchyard/plugin.h>
#include <switchyard/storage.h>

#include "segment.h"

#define FS_SEG_MAX     (8u << 20)  /* a segment is rolled over past this many bytes */
#define FS_STATE_MAGIC 0x53515953u /* "SYQS" */
#define FS_LOG_MS      1000u

typedef struct fs_config_s {
    char *directory;
    int64_t timeout_ns;
    bool fsync;
    bool create_directory;
    bool on_start;
    bool on_rebound;
    char *compaction_directory;
    int64_t rebound_needed_mib;
    int64_t rebound_trigger_mib;
    int64_t check_interval_ns;
    int64_t max_transaction_size;
} fs_config_t;

static const sy_config_field_t fs_fields[] = {
    {SY_CFG_FIELD("directory", SY_CFG_STRING, fs_config_t, directory), .required = true,
     .description = "Directory of the queues' files: it must exist and be writable (or set "
                    "create_directory)."},
    {SY_CFG_FIELD("timeout", SY_CFG_DURATION, fs_config_t, timeout_ns), .default_value = "1s",
     .description = "How long to wait for the directory's lock (another process holding it) "
                    "at start."},
    {SY_CFG_FIELD("fsync", SY_CFG_BOOL, fs_config_t, fsync), .default_value = "false",
     .description = "Sync every append and every confirmation to the disk (survives a power "
                    "loss, not only a crash of the router)."},
    {SY_CFG_FIELD("create_directory", SY_CFG_BOOL, fs_config_t, create_directory),
     .default_value = "false",
     .description = "Create `directory` (mode 0750) when it does not exist."},
    {SY_CFG_FIELD("compaction.on_start", SY_CFG_BOOL, fs_config_t, on_start),
     .default_value = "false",
     .description = "Accepted for compatibility: segments whose records are all confirmed "
                    "are deleted at start and at once afterwards, always."},
    {SY_CFG_FIELD("compaction.on_rebound", SY_CFG_BOOL, fs_config_t, on_rebound),
     .default_value = "false", .description = "Accepted for compatibility (see on_start)."},
    {SY_CFG_FIELD("compaction.directory", SY_CFG_STRING, fs_config_t, compaction_directory),
     .description = "Accepted for compatibility; when set it must exist and be writable."},
    {SY_CFG_FIELD("compaction.rebound_needed_threshold_mib", SY_CFG_INT, fs_config_t,
                  rebound_needed_mib),
     .default_value = "100", .min = "0", .description = "Accepted for compatibility."},
    {SY_CFG_FIELD("compaction.rebound_trigger_threshold_mib", SY_CFG_INT, fs_config_t,
                  rebound_trigger_mib),
     .default_value = "10", .min = "0", .description = "Accepted for compatibility."},
    {SY_CFG_FIELD("compaction.check_interval", SY_CFG_DURATION, fs_config_t, check_interval_ns),
     .default_value = "5s", .min = "0s", .description = "Accepted for compatibility."},
    {SY_CFG_FIELD("compaction.max_transaction_size", SY_CFG_INT, fs_config_t, max_transaction_size),
     .default_value = "65536", .min = "0", .description = "Accepted for compatibility."},
};

enum { ENT_UNREAD = 0, ENT_OUT = 1, ENT_DONE = 2 };

typedef struct fs_seg_s {
    struct fs_seg_s *next;
    uint64_t first_id;
    int fd;
    uint64_t size;
    uint64_t live; /* records in the index */
    char *path;
} fs_seg_t;

typedef struct fs_ent_s {
    uint64_t id, weight, off;
    fs_seg_t *seg;
    uint32_t len;
    uint8_t state;
} fs_ent_t;

typedef struct fs_state_s fs_state_t;

struct sy_storage_queue_s {
    fs_state_t *fs;
    sy_storage_queue_t *next_open;
    char *key; /* owner/name, to refuse a second opener */
    char *dir;
    int dir_fd;
    fs_seg_t *segs, *active; /* oldest first; active: appended to (the last), or NULL */
    fs_ent_t *ring;
    size_t cap, head, n, read;
    uint64_t next_id;
    sy_storage_stats_t st;
    uint64_t warn_ms;
    bool opened; /* fully opened: its state is written at close */
};

struct fs_state_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const fs_config_t *cfg;
    int lock_fd;
    pthread_mutex_t lock; /* guards open */
    sy_storage_queue_t *open;
    sy_storage_t iface;
    sy_metric_t *m_corrupt, *m_full, *m_recovered, *m_redelivered;
};

/* ------------------------------------------------------------------------ */
/* Small helpers                                                             */
/* ------------------------------------------------------------------------ */

static uint64_t mono_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* Logs at most once a second per queue (warnings about damaged records). */
static bool may_warn(sy_storage_queue_t *q)
{
    uint64_t now = mono_ms();
    if (q->warn_ms && now - q->warn_ms < FS_LOG_MS) return false;
    q->warn_ms = now;
    return true;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Whether `path` is a directory this process may create files in; a sentence in
 * err when not. */
static int check_dir(const char *key, const char *path, char *err, size_t err_len)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, err_len, "'%s': %s: %s", key, path, strerror(errno));
        return SY_EINVAL;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, err_len, "'%s': %s is not a directory", key, path);
        return SY_EINVAL;
    }
    if (access(path, W_OK | X_OK) != 0) {
        snprintf(err, err_len, "'%s': %s is not writable by this process: %s", key, path,
                 strerror(errno));
        return SY_EINVAL;
    }
    return SY_OK;
}

/* ------------------------------------------------------------------------ */
/* The index                                                                 */
/* ------------------------------------------------------------------------ */

static fs_ent_t *ent_at(sy_storage_queue_t *q, size_t i)
{
    return &q->ring[(q->head + i) % q->cap];
}

static int ent_push(sy_storage_queue_t *q, const fs_ent_t *e)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        fs_ent_t *r = malloc(cap * sizeof(*r));
        if (!r) return SY_ENOMEM;
        for (size_t i = 0; i < q->n; i++)
            r[i] = *ent_at(q, i);
        free(q->ring);
        q->ring = r;
        q->cap = cap;
        q->head = 0;
    }
    *ent_at(q, q->n) = *e;
    q->n++;
    q->st.records++;
    q->st.bytes += e->len;
    q->st.weight += e->weight;
    q->st.unread++;
    e->seg->live++;
    return SY_OK;
}

/* The index position of `id` among the records handed out, or SIZE_MAX. */
static size_t ent_find_out(sy_storage_queue_t *q, uint64_t id)
{
    size_t lo = 0, hi = q->read;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t m = ent_at(q, mid)->id;
        if (m == id) return mid;
        if (m < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return SIZE_MAX;
}

static void seg_free(fs_seg_t *s)
{
    if (s->fd >= 0) close(s->fd);
    free(s->path);
    free(s);
}

/* Deletes the segments with no record left in the index, but the one appended to. */
static void drop_empty_segments(sy_storage_queue_t *q)
{
    fs_seg_t **pp = &q->segs;
    while (*pp) {
        fs_seg_t *s = *pp;
        if (s->live == 0 && s != q->active) {
            *pp = s->next;
            if (unlink(s->path) != 0 && errno != ENOENT)
                SY_LOG(q->fs->api, q->fs->inst, SY_LOG_WARN, "cannot delete %s: %s", s->path,
                       strerror(errno));
            q->st.disk_bytes -= s->size;
            seg_free(s);
        } else {
            pp = &s->next;
        }
    }
}

/* Marks the entry done (confirmed, or skipped as damaged) and takes it out of the
 * counts; pops finished entries off the front. */
static void ent_done(sy_storage_queue_t *q, fs_ent_t *e)
{
    if (e->state == ENT_UNREAD) q->st.unread--;
    e->state = ENT_DONE;
    e->seg->live--;
    q->st.records--;
    q->st.bytes -= e->len;
    q->st.weight -= e->weight;
    while (q->n && ent_at(q, 0)->state == ENT_DONE) {
        q->head = (q->head + 1) % q->cap;
        q->n--;
        if (q->read) q->read--;
    }
}

/* ------------------------------------------------------------------------ */
/* The state file                                                            */
/* ------------------------------------------------------------------------ */

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/*
 * Writes the state file: below (the oldest id not confirmed), the runs of
 * confirmed ids after it and the ids handed out, as
 *   magic u64 | below u64 | nruns u64 | nout u64 | runs (first, last) | out ids | crc u64
 * (all little endian). A run covers consecutive index entries, between which no
 * record not confirmed lies. Replaces the file atomically; synced with `sync`.
 */
static int write_state(sy_storage_queue_t *q, bool sync)
{
    uint64_t below = q->n ? ent_at(q, 0)->id : q->next_id;
    size_t nruns = 0, nout = 0;
    for (size_t i = 0; i < q->read; i++) {
        fs_ent_t *e = ent_at(q, i);
        if (e->state == ENT_OUT) nout++;
        if (e->state == ENT_DONE && (i == 0 || ent_at(q, i - 1)->state != ENT_DONE)) nruns++;
    }
    size_t len = 8 * (5 + 2 * nruns + nout);
    uint8_t *buf = malloc(len);
    if (!buf) return SY_ENOMEM;
    put_u64(buf, FS_STATE_MAGIC);
    put_u64(buf + 8, below);
    put_u64(buf + 16, nruns);
    put_u64(buf + 24, nout);
    uint8_t *runs = buf + 32, *outs = buf + 32 + 16 * nruns;
    for (size_t i = 0; i < q->read; i++) {
        fs_ent_t *e = ent_at(q, i);
        if (e->state == ENT_OUT) {
            put_u64(outs, e->id);
            outs += 8;
        } else if (e->state == ENT_DONE) {
            if (i == 0 || ent_at(q, i - 1)->state != ENT_DONE) {
                put_u64(runs, e->id);
                runs += 16;
            }
            put_u64(runs - 8, e->id);
        }
    }
    put_u64(buf + len - 8, (uint64_t)crc32(0L, buf, (uInt)(len - 8)));
    int rc = SY_ERROR;
    int fd = openat(q->dir_fd, "state.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd >= 0) {
        if (write_all(fd, buf, len) == 0 && (!sync || fdatasync(fd) == 0)) rc = SY_OK;
        close(fd);
    }
    if (rc == SY_OK && renameat(q->dir_fd, "state.tmp", q->dir_fd, "state") != 0) rc = SY_ERROR;
    if (rc == SY_OK && sync) fsync(q->dir_fd);
    if (rc != SY_OK && may_warn(q))
        SY_LOG(q->fs->api, q->fs->inst, SY_LOG_WARN,
               "cannot write %s/state: %s (confirmations since the last write may be sent "
               "again after a restart)",
               q->dir, strerror(errno));
    free(buf);
    return rc;
}

/* The state read back. */
typedef struct fs_loaded_s {
    uint64_t below;
    uint64_t nruns, nout;
    uint8_t *buf; /* the file */
    const uint8_t *runs, *outs;
} fs_loaded_t;

/* Reads the state file. A missing file is an empty queue's state; a damaged one
 * is logged and read as "nothing confirmed" (everything is sent again: duplicates,
 * never loss). */
static void read_state(sy_storage_queue_t *q, fs_loaded_t *ld)
{
    memset(ld, 0, sizeof(*ld));
    ld->below = 1;
    int fd = openat(q->dir_fd, "state", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    uint8_t *buf = NULL;
    bool ok = fstat(fd, &st) == 0 && st.st_size >= 40 && st.st_size % 8 == 0 &&
              st.st_size <= (64 << 20) && (buf = malloc((size_t)st.st_size)) != NULL &&
              pread_all(fd, buf, (size_t)st.st_size, 0) == 0;
    close(fd);
    size_t len = ok ? (size_t)st.st_size : 0;
    if (ok)
        ok = get_u64(buf) == FS_STATE_MAGIC &&
             get_u64(buf + len - 8) == (uint64_t)crc32(0L, buf, (uInt)(len - 8)) &&
             get_u64(buf + 16) <= len / 16 && get_u64(buf + 24) <= len / 8 &&
             len == 8 * (5 + 2 * get_u64(buf + 16) + get_u64(buf + 24));
    if (!ok) {
        free(buf);
        q->st.corrupt++;
        SY_LOG(q->fs->api, q->fs->inst, SY_LOG_WARN,
               "%s/state is damaged: every record found is sent again", q->dir);
        return;
    }
    ld->buf = buf;
    ld->below = get_u64(buf + 8);
    ld->nruns = get_u64(buf + 16);
    ld->nout = get_u64(buf + 24);
    ld->runs = buf + 32;
    ld->outs = buf + 32 + 16 * ld->nruns;
}

static bool loaded_confirmed(const fs_loaded_t *ld, uint64_t id)
{
    if (id < ld->below) return true;
    for (uint64_t i = 0; i < ld->nruns; i++)
        if (id >= get_u64(ld->runs + 16 * i) && id <= get_u64(ld->runs + 16 * i + 8)) return true;
    return false;
}

static bool loaded_out(const fs_loaded_t *ld, uint64_t id)
{
    for (uint64_t i = 0; i < ld->nout; i++)
        if (get_u64(ld->outs + 8 * i) == id) return true;
    return false;
}

/* ------------------------------------------------------------------------ */
/* Opening: the segments left by a previous run                             */
/* ------------------------------------------------------------------------ */

typedef struct fs_scan_s {
    sy_storage_queue_t *q;
    fs_seg_t *seg;
    const fs_loaded_t *ld;
    uint64_t max_id;
    int rc;
} fs_scan_t;

static void scan_record(void *arg, const syc_seg_rec_t *rec)
{
    fs_scan_t *sc = arg;
    if (rec->id > sc->max_id) sc->max_id = rec->id;
    if (loaded_confirmed(sc->ld, rec->id) || sc->rc != SY_OK) return;
    if (sc->q->n && ent_at(sc->q, sc->q->n - 1)->id >= rec->id) return; /* out of order */
    fs_ent_t e = {.id = rec->id,
                  .weight = rec->weight,
                  .off = rec->offset,
                  .seg = sc->seg,
                  .len = (uint32_t)rec->len,
                  .state = ENT_UNREAD};
    if (ent_push(sc->q, &e) < 0) {
        sc->rc = SY_ENOMEM;
        return;
    }
    sc->q->st.recovered++;
    if (loaded_out(sc->ld, rec->id)) sc->q->st.redelivered++;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Reads one segment into the index. */
static int load_segment(sy_storage_queue_t *q, uint64_t first_id, const fs_loaded_t *ld,
                        uint64_t *max_id, char *err, size_t err_len)
{
    fs_seg_t *s = calloc(1, sizeof(*s));
    if (!s || asprintf(&s->path, "%s/seg-%016" PRIx64 ".log", q->dir, first_id) < 0) {
        free(s);
        snprintf(err, err_len, "out of memory");
        return SY_ENOMEM;
    }
    s->first_id = first_id;
    s->fd = open(s->path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        snprintf(err, err_len, "cannot open %s: %s", s->path, strerror(errno));
        seg_free(s);
        return SY_ERROR;
    }
    s->size = (uint64_t)st.st_size;
    uint8_t *buf = s->size ? malloc(s->size) : NULL;
    if (s->size && (!buf || pread_all(s->fd, buf, s->size, 0) != 0)) {
        snprintf(err, err_len, "cannot read %s: %s", s->path, buf ? strerror(errno) : "no memory");
        free(buf);
        seg_free(s);
        return SY_ERROR;
    }
    /* Append to the list first: index entries point at it. */
    fs_seg_t **pp = &q->segs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    q->st.disk_bytes += s->size;
    fs_scan_t sc = {.q = q, .seg = s, .ld = ld, .max_id = *max_id, .rc = SY_OK};
    uint64_t skipped = syc_seg_walk(buf, s->size, first_id, scan_record, &sc);
    free(buf);
    if (sc.rc != SY_OK) {
        snprintf(err, err_len, "out of memory indexing %s", s->path);
        return sc.rc;
    }
    *max_id = sc.max_id;
    if (skipped) {
        q->st.corrupt += skipped;
        SY_LOG(q->fs->api, q->fs->inst, SY_LOG_WARN,
               "%s: skipped %" PRIu64 " damaged record%s (bad checksum, or cut short by a "
               "crash); they are counted in extension_file_storage_records_corrupt",
               s->path, skipped, skipped == 1 ? "" : "s");
    }
    return SY_OK;
}

/* Lists the segment files of the queue's directory, sorted by first id. */
static int list_segments(sy_storage_queue_t *q, uint64_t **ids, size_t *n, char *err,
                         size_t err_len)
{
    DIR *d = opendir(q->dir);
    if (!d) {
        snprintf(err, err_len, "cannot read %s: %s", q->dir, strerror(errno));
        return SY_ERROR;
    }
    size_t cap = 0;
    *ids = NULL;
    *n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        uint64_t id;
        char tail[8];
        if (strlen(de->d_name) != 24 ||
            sscanf(de->d_name, "seg-%16" SCNx64 "%4s", &id, tail) != 2 || strcmp(tail, ".log") != 0)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *g = realloc(*ids, cap * sizeof(**ids));
            if (!g) {
                closedir(d);
                snprintf(err, err_len, "out of memory");
                return SY_ENOMEM;
            }
            *ids = g;
        }
        (*ids)[(*n)++] = id;
    }
    closedir(d);
    if (*n) qsort(*ids, *n, sizeof(**ids), cmp_u64);
    return SY_OK;
}

/* ------------------------------------------------------------------------ */
/* The interface                                                             */
/* ------------------------------------------------------------------------ */

static void fs_close(sy_storage_queue_t *q);

/* A file name from an id: letters, digits, '-' and '.' stay; the rest become '_'. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '.'))
            *s = '_';
}

static int fs_open(void *ctx, const char *owner, const char *name, sy_storage_queue_t **out,
                   char *err, size_t err_len)
{
    fs_state_t *fs = ctx;
    sy_storage_queue_t *q = calloc(1, sizeof(*q));
    char *leaf = NULL;
    if (!q || asprintf(&q->key, "%s/%s", owner, name) < 0 ||
        asprintf(&leaf, "%s__%s", owner, name) < 0) {
        if (q) free(q->key);
        free(q);
        snprintf(err, err_len, "out of memory");
        return SY_ENOMEM;
    }
    q->fs = fs;
    q->dir_fd = -1;
    sanitize(leaf);
    int rc = asprintf(&q->dir, "%s/%s", fs->cfg->directory, leaf);
    free(leaf);
    if (rc < 0) {
        q->dir = NULL;
        fs_close(q);
        snprintf(err, err_len, "out of memory");
        return SY_ENOMEM;
    }
    pthread_mutex_lock(&fs->lock);
    for (sy_storage_queue_t *o = fs->open; o; o = o->next_open)
        if (strcmp(o->key, q->key) == 0) {
            pthread_mutex_unlock(&fs->lock);
            snprintf(err, err_len, "the queue %s is open already", q->key);
            free(q->key);
            free(q->dir);
            free(q);
            return SY_EINVAL;
        }
    q->next_open = fs->open;
    fs->open = q;
    pthread_mutex_unlock(&fs->lock);

    if (mkdir(q->dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, err_len, "cannot create %s: %s", q->dir, strerror(errno));
        fs_close(q);
        return SY_ERROR;
    }
    q->dir_fd = open(q->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (q->dir_fd < 0) {
        snprintf(err, err_len, "cannot open %s: %s", q->dir, strerror(errno));
        fs_close(q);
        return SY_ERROR;
    }
    fs_loaded_t ld;
    read_state(q, &ld);
    uint64_t *ids = NULL, max_id = 0;
    size_t nseg = 0;
    rc = list_segments(q, &ids, &nseg, err, err_len);
    for (size_t i = 0; rc == SY_OK && i < nseg; i++)
        rc = load_segment(q, ids[i], &ld, &max_id, err, err_len);
    free(ids);
    free(ld.buf);
    if (rc != SY_OK) {
        fs_close(q);
        return rc;
    }
    q->next_id = max_id + 1 > ld.below ? max_id + 1 : ld.below;
    if (q->next_id == 0) q->next_id = 1;
    drop_empty_segments(q);
    fs->api->metric_add(fs->m_corrupt, (int64_t)q->st.corrupt);
    fs->api->metric_add(fs->m_recovered, (int64_t)q->st.recovered);
    fs->api->metric_add(fs->m_redelivered, (int64_t)q->st.redelivered);
    if (q->st.recovered)
        SY_LOG(fs->api, fs->inst, SY_LOG_INFO,
               "queue %s: %" PRIu64 " records left by the previous run are sent first (%" PRIu64
               " of them had been handed out, so they may be delivered twice)",
               q->key, q->st.recovered, q->st.redelivered);
    write_state(q, fs->cfg->fsync);
    q->opened = true;
    *out = q;
    return SY_OK;
}

/* Starts a new segment for the record of id next_id. */
static int roll_segment(sy_storage_queue_t *q)
{
    fs_seg_t *s = calloc(1, sizeof(*s));
    if (!s || asprintf(&s->path, "%s/seg-%016" PRIx64 ".log", q->dir, q->next_id) < 0) {
        free(s);
        return SY_ENOMEM;
    }
    s->first_id = q->next_id;
    s->fd = open(s->path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (s->fd < 0) {
        int e = errno;
        seg_free(s);
        errno = e;
        return SY_ERROR;
    }
    if (q->fs->cfg->fsync) fsync(q->dir_fd);
    fs_seg_t **pp = &q->segs;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    q->active = s;
    drop_empty_segments(q); /* the one before, if all of it was confirmed */
    return SY_OK;
}

/* One try at appending: SY_OK, SY_EINVAL, SY_ENOMEM, or SY_ERROR with the I/O
 * error in *err (nothing of the record left behind). */
static int append_once(sy_storage_queue_t *q, const void *data, size_t len, uint64_t weight,
                       uint64_t *id, int *err)
{
    fs_state_t *fs = q->fs;
    if (len > SYC_SEG_MAX_DATA) return SY_EINVAL;
    if (!q->active || (q->active->size && q->active->size + SYC_SEG_HEADER + len > FS_SEG_MAX)) {
        if (roll_segment(q) < 0) goto io_error;
    }
    fs_seg_t *s = q->active;
    uint8_t hdr[SYC_SEG_HEADER];
    syc_seg_header(hdr, q->next_id, weight, data, len);
    struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)data, len}};
    size_t total = sizeof(hdr) + len, done = 0;
    while (done < total) {
        struct iovec v[2];
        int nv = 0;
        size_t skip = done;
        for (int i = 0; i < 2; i++) {
            if (skip >= iov[i].iov_len) {
                skip -= iov[i].iov_len;
                continue;
            }
            v[nv].iov_base = (uint8_t *)iov[i].iov_base + skip;
            v[nv].iov_len = iov[i].iov_len - skip;
            skip = 0;
            nv++;
        }
        ssize_t w = pwritev(s->fd, v, nv, (off_t)(s->size + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            /* Nothing half written stays: the next append starts where this one did. */
            if (ftruncate(s->fd, (off_t)s->size) != 0) {
                /* The reader skips the torn record and resynchronises after it. */
            }
            errno = e;
            goto io_error;
        }
        done += (size_t)w;
    }
    if (fs->cfg->fsync && fdatasync(s->fd) != 0) {
        int e = errno;
        if (ftruncate(s->fd, (off_t)s->size) != 0) {
            /* as above */
        }
        errno = e;
        goto io_error;
    }
    fs_ent_t e = {.id = q->next_id,
                  .weight = weight,
                  .off = s->size,
                  .seg = s,
                  .len = (uint32_t)len,
                  .state = ENT_UNREAD};
    if (ent_push(q, &e) < 0) {
        /* Not indexed: not kept either, or a restart would send it after all. */
        if (ftruncate(s->fd, (off_t)s->size) != 0) {
            /* the next append writes over it */
        }
        return SY_ENOMEM;
    }
    s->size += total;
    q->st.disk_bytes += total;
    *id = q->next_id++;
    return SY_OK;

io_error:
    *err = errno;
    return SY_ERROR;
}

static bool no_room(int err)
{
    return err == ENOSPC || err == EDQUOT || err == EFBIG;
}

static int fs_append(sy_storage_queue_t *q, const void *data, size_t len, uint64_t weight,
                     uint64_t *id)
{
    fs_state_t *fs = q->fs;
    int err = 0;
    int rc = append_once(q, data, len, weight, id, &err);
    if (rc == SY_ERROR && no_room(err) && q->active && q->active->live == 0 && q->active->size) {
        /* No room, and every record of the segment appended to is confirmed: a new
         * segment deletes it (its space comes back; a file size limit starts
         * again), and the append is tried once more. */
        if (roll_segment(q) == SY_OK) rc = append_once(q, data, len, weight, id, &err);
    }
    if (rc != SY_ERROR) return rc;
    bool full = no_room(err);
    if (full) {
        q->st.full++;
        fs->api->metric_add(fs->m_full, 1);
    }
    if (may_warn(q))
        SY_LOG(fs->api, fs->inst, full ? SY_LOG_WARN : SY_LOG_ERROR,
               "queue %s: cannot append to %s: %s%s", q->key, q->dir, strerror(err),
               full ? " (pushing back until records are confirmed)" : "");
    return full ? SY_EAGAIN : SY_ERROR;
}

static int fs_next(sy_storage_queue_t *q, void *(*alloc)(void *arg, size_t len), void *arg,
                   sy_storage_record_t *rec)
{
    fs_state_t *fs = q->fs;
    while (q->read < q->n) {
        fs_ent_t *e = ent_at(q, q->read);
        uint8_t hdr[SYC_SEG_HEADER];
        void *data = alloc(arg, e->len ? e->len : 1);
        if (!data) return SY_ENOMEM;
        size_t len;
        uint32_t crc;
        uint64_t id, weight;
        bool ok = pread_all(e->seg->fd, hdr, sizeof(hdr), e->off) == 0 &&
                  pread_all(e->seg->fd, data, e->len, e->off + SYC_SEG_HEADER) == 0 &&
                  syc_seg_parse_header(hdr, &len, &crc, &id, &weight) == SYC_SEG_RECORD &&
                  len == e->len && id == e->id && syc_seg_crc(hdr, data, len) == crc;
        if (!ok) {
            /* Changed on the disk since it was written or checked. */
            q->st.corrupt++;
            fs->api->metric_add(fs->m_corrupt, 1);
            if (may_warn(q))
                SY_LOG(fs->api, fs->inst, SY_LOG_WARN,
                       "queue %s: record %" PRIu64 " in %s no longer reads back whole; skipped",
                       q->key, e->id, e->seg->path);
            /* At the front (nothing handed out before it) it is popped at once;
             * otherwise it stays, done, among the records handed out. */
            bool popped = q->read == 0;
            ent_done(q, e);
            if (!popped) q->read++;
            drop_empty_segments(q);
            continue;
        }
        e->state = ENT_OUT;
        q->read++;
        q->st.unread--;
        rec->id = e->id;
        rec->weight = e->weight;
        rec->data = data;
        rec->len = e->len;
        write_state(q, false);
        return SY_OK;
    }
    return SY_EAGAIN;
}

static int fs_confirm(sy_storage_queue_t *q, uint64_t id)
{
    size_t i = ent_find_out(q, id);
    if (i == SIZE_MAX || ent_at(q, i)->state != ENT_OUT) return SY_EINVAL;
    ent_done(q, ent_at(q, i));
    q->st.confirmed++;
    drop_empty_segments(q);
    write_state(q, q->fs->cfg->fsync);
    return SY_OK;
}

static void fs_stats(sy_storage_queue_t *q, sy_storage_stats_t *st)
{
    *st = q->st;
}

static void fs_close(sy_storage_queue_t *q)
{
    if (!q) return;
    fs_state_t *fs = q->fs;
    /* A queue that did not open leaves the state file as it found it. */
    if (q->opened) write_state(q, fs->cfg->fsync);
    pthread_mutex_lock(&fs->lock);
    for (sy_storage_queue_t **pp = &fs->open; *pp; pp = &(*pp)->next_open)
        if (*pp == q) {
            *pp = q->next_open;
            break;
        }
    pthread_mutex_unlock(&fs->lock);
    while (q->segs) {
        fs_seg_t *s = q->segs;
        q->segs = s->next;
        seg_free(s);
    }
    if (q->dir_fd >= 0) close(q->dir_fd);
    free(q->ring);
    free(q->key);
    free(q->dir);
    free(q);
}

static const void *fs_interface(void *state, const char *name)
{
    fs_state_t *fs = state;
    return strcmp(name, SY_STORAGE_QUEUE) == 0 ? &fs->iface : NULL;
}

/* ------------------------------------------------------------------------ */
/* Callbacks                                                                 */
/* ------------------------------------------------------------------------ */

static int fs_validate(const void *config, char *err, size_t err_len)
{
    const fs_config_t *cfg = config;
    if (!cfg->directory || !*cfg->directory) {
        snprintf(err, err_len, "'directory' must be set");
        return SY_EINVAL;
    }
    if (cfg->timeout_ns < 0) {
        snprintf(err, err_len, "'timeout' must not be negative");
        return SY_EINVAL;
    }
    struct stat st;
    if (!(cfg->create_directory && stat(cfg->directory, &st) != 0 && errno == ENOENT)) {
        int rc = check_dir("directory", cfg->directory, err, err_len);
        if (rc != SY_OK) {
            if (stat(cfg->directory, &st) != 0 && errno == ENOENT)
                snprintf(err, err_len,
                         "'directory': %s does not exist (create it, or set "
                         "create_directory: true)",
                         cfg->directory);
            return rc;
        }
    }
    if (cfg->compaction_directory && *cfg->compaction_directory)
        return check_dir("compaction.directory", cfg->compaction_directory, err, err_len);
    return SY_OK;
}

static void fs_destroy(void *state);

static int fs_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                     void **state)
{
    fs_state_t *fs = calloc(1, sizeof(*fs));
    if (!fs) return SY_ENOMEM;
    fs->api = api;
    fs->inst = inst;
    fs->cfg = config;
    fs->lock_fd = -1;
    pthread_mutex_init(&fs->lock, NULL);
    fs->iface = (sy_storage_t){.ctx = fs,
                               .open = fs_open,
                               .append = fs_append,
                               .next = fs_next,
                               .confirm = fs_confirm,
                               .stats = fs_stats,
                               .close = fs_close};
    fs->m_corrupt = api->metric_register(inst, "extension_file_storage_records_corrupt",
                                         "Records skipped because their checksum failed or a "
                                         "crash cut them short (and damaged state files).",
                                         SY_METRIC_COUNTER);
    fs->m_full = api->metric_register(inst, "extension_file_storage_append_full",
                                      "Appends refused because the disk (or the file size "
                                      "limit) had no room: pushed back to the exporter.",
                                      SY_METRIC_COUNTER);
    fs->m_recovered =
        api->metric_register(inst, "extension_file_storage_records_recovered",
                             "Records left by a previous run, found at open.", SY_METRIC_COUNTER);
    fs->m_redelivered =
        api->metric_register(inst, "extension_file_storage_records_redelivered",
                             "Records found at open that a previous run had handed out and "
                             "not confirmed: they may reach the backend twice.",
                             SY_METRIC_COUNTER);
    *state = fs;
    return SY_OK;
}

static int fs_start(void *state)
{
    fs_state_t *fs = state;
    const fs_config_t *cfg = fs->cfg;
    char err[512];
    if (cfg->create_directory && mkdir(cfg->directory, 0750) != 0 && errno != EEXIST) {
        fs->api->log(fs->inst, SY_LOG_ERROR, "'directory': cannot create %s: %s", cfg->directory,
                     strerror(errno));
        return SY_ERROR;
    }
    if (check_dir("directory", cfg->directory, err, sizeof err) != SY_OK) {
        fs->api->log(fs->inst, SY_LOG_ERROR, "%s", err);
        return SY_ERROR;
    }
    char *path = NULL;
    if (asprintf(&path, "%s/LOCK", cfg->directory) < 0) return SY_ENOMEM;
    fs->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fs->lock_fd < 0) {
        fs->api->log(fs->inst, SY_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
        free(path);
        return SY_ERROR;
    }
    /* Another process (another router on the same directory) holds it: wait up to
     * `timeout`, then refuse to start. */
    uint64_t deadline = mono_ms() + (uint64_t)(cfg->timeout_ns / 1000000);
    while (flock(fs->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if ((errno != EWOULDBLOCK && errno != EINTR) || mono_ms() >= deadline) {
            fs->api->log(fs->inst, SY_LOG_ERROR,
                         "'directory': %s is locked by another process (another router using "
                         "the same directory?): %s",
                         cfg->directory, strerror(errno));
            free(path);
            close(fs->lock_fd);
            fs->lock_fd = -1;
            return SY_ERROR;
        }
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    free(path);
    return SY_OK;
}

static void fs_destroy(void *state)
{
    fs_state_t *fs = state;
    if (!fs) return;
    /* Queues are closed by their owners before; any left are closed here. */
    while (fs->open)
        fs_close(fs->open);
    if (fs->lock_fd >= 0) close(fs->lock_fd); /* releases the flock */
    pthread_mutex_destroy(&fs->lock);
    free(fs);
}

static const sy_plugin_t fs_plugin = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = SY_KIND_EXTENSION,
    .type = "file_storage",
    .version = "0.1.0",
    .description = "Persistent queues in segment files with a checksum per record, for "
                   "exporters' sending_queue.storage.",
    SY_CFG_TABLE(fs_fields),
    .config_size = sizeof(fs_config_t),
    .validate = fs_validate,
    .create = fs_create,
    .start = fs_start,
    .destroy = fs_destroy,
    .extension_interface = fs_interface,
};

SY_PLUGIN_DEFINE(fs_plugin)
