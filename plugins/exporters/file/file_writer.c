/*
 * file_writer.c - the buffered, rotating file behind the `file` exporter (see
 * file_writer.h for the contract).
 */
#include "file_writer.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <switchyard/plugin.h>

/* The largest record fw_write() takes; bounds size arithmetic. */
#define FW_MAX_RECORD ((size_t)1 << 30)

/* How many backup files one prune looks at; more are left alone. */
#define FW_MAX_SCAN 65536

/* One backup found by a scan: its file name and the time in that name. */
typedef struct backup_s {
    char *name;
    int64_t sec;
    int ms;
} backup_t;

/* Where the pieces of `path` are: its directory ("" or "dir/"), the base name
 * without its extension, and the extension (from the last dot of the base name,
 * as Go's filepath.Ext). */
typedef struct path_parts_s {
    size_t dir_len;  /* path[0..dir_len) is the directory, with its slash */
    size_t stem_len; /* path[dir_len..dir_len+stem_len) is the base without ext */
    const char *ext; /* the extension, "" if none */
} path_parts_t;

static void split_path(const char *path, path_parts_t *p)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    p->dir_len = (size_t)(base - path);
    p->ext = dot ? dot : base + strlen(base);
    p->stem_len = (size_t)(p->ext - base);
}

static void set_err(char *err, size_t err_len, const char *what, const char *path, int e)
{
    snprintf(err, err_len, "%s %s: %s", what, path, strerror(e));
}

/* Writes all of buf[0..len); returns the bytes written, which are fewer than len
 * only on error (then errno is set). */
static size_t write_all(int fd, const uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = write(fd, buf + done, len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (n == 0) {
            errno = EIO;
            break;
        }
        done += (size_t)n;
    }
    return done;
}

int fw_backup_name(const char *path, const struct timespec *when, bool localtime, char *out,
                   size_t out_len)
{
    path_parts_t p;
    split_path(path, &p);
    struct tm tm;
    time_t t = when->tv_sec;
    if (localtime ? !localtime_r(&t, &tm) : !gmtime_r(&t, &tm)) return SY_EINVAL;
    int n = snprintf(out, out_len, "%.*s-%04d-%02d-%02dT%02d-%02d-%02d.%03ld%s",
                     (int)(p.dir_len + p.stem_len), path, tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, when->tv_nsec / 1000000, p.ext);
    return n < 0 || (size_t)n >= out_len ? SY_ENOMEM : SY_OK;
}

/* Parses "2006-01-02T15-04-05.000" (exactly FW_TIMESTAMP_LEN characters). */
static bool parse_timestamp(const char *s, bool localtime, int64_t *sec, int *ms)
{
    static const char shape[] = "dddd-dd-ddTdd-dd-dd.ddd";
    for (size_t i = 0; i < FW_TIMESTAMP_LEN; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) return false;
    }
    struct tm tm = {0};
    char tmp[8];
    int v[7];
    static const int at[7] = {0, 5, 8, 11, 14, 17, 20};
    static const int len[7] = {4, 2, 2, 2, 2, 2, 3};
    for (int i = 0; i < 7; i++) {
        memcpy(tmp, s + at[i], (size_t)len[i]);
        tmp[len[i]] = '\0';
        v[i] = atoi(tmp);
    }
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 60)
        return false;
    tm.tm_year = v[0] - 1900;
    tm.tm_mon = v[1] - 1;
    tm.tm_mday = v[2];
    tm.tm_hour = v[3];
    tm.tm_min = v[4];
    tm.tm_sec = v[5];
    tm.tm_isdst = -1;
    time_t t = localtime ? mktime(&tm) : timegm(&tm);
    if (t == (time_t)-1) return false;
    *sec = (int64_t)t;
    *ms = v[6];
    return true;
}

/* Newest first. */
static int backup_cmp(const void *a, const void *b)
{
    const backup_t *x = a, *y = b;
    if (x->sec != y->sec) return x->sec < y->sec ? 1 : -1;
    if (x->ms != y->ms) return x->ms < y->ms ? 1 : -1;
    return strcmp(y->name, x->name);
}

/* Removes dir/name; counts it. */
static int remove_backup(fw_writer_t *w, const path_parts_t *p, const char *name)
{
    char *full = NULL;
    if (asprintf(&full, "%.*s%s", (int)p->dir_len, w->path, name) < 0) return SY_ENOMEM;
    int rc = unlink(full) == 0 || errno == ENOENT ? 1 : 0;
    free(full);
    w->removed += (uint64_t)rc;
    return rc;
}

int fw_prune(fw_writer_t *w, const struct timespec *now)
{
    if (!w->rot.enabled || (w->rot.max_backups <= 0 && w->rot.max_days <= 0)) return 0;
    path_parts_t p;
    split_path(w->path, &p);
    const char *stem = w->path + p.dir_len;
    size_t ext_len = strlen(p.ext);

    char *dir_name = p.dir_len ? strndup(w->path, p.dir_len) : strdup(".");
    if (!dir_name) return SY_ENOMEM;
    DIR *dir = opendir(dir_name);
    free(dir_name);
    if (!dir) return SY_ERROR;

    backup_t *list = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(dir)) && n < FW_MAX_SCAN) {
        const char *name = de->d_name;
        size_t len = strlen(name);
        /* "<stem>-<timestamp><ext>" exactly. */
        if (len != p.stem_len + 1 + FW_TIMESTAMP_LEN + ext_len) continue;
        if (memcmp(name, stem, p.stem_len) != 0 || name[p.stem_len] != '-') continue;
        if (memcmp(name + len - ext_len, p.ext, ext_len) != 0) continue;
        backup_t b;
        if (!parse_timestamp(name + p.stem_len + 1, w->rot.localtime, &b.sec, &b.ms)) continue;
        if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN) continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            backup_t *nl = realloc(list, ncap * sizeof(*nl));
            if (!nl) {
                rc = SY_ENOMEM;
                goto done;
            }
            list = nl;
            cap = ncap;
        }
        if (!(b.name = strdup(name))) {
            rc = SY_ENOMEM;
            goto done;
        }
        list[n++] = b;
    }
    if (n) qsort(list, n, sizeof(*list), backup_cmp);

    int64_t cutoff = w->rot.max_days > 0 ? (int64_t)now->tv_sec - w->rot.max_days * 86400 : 0;
    for (size_t i = 0; i < n; i++) {
        bool too_many = w->rot.max_backups > 0 && i >= (size_t)w->rot.max_backups;
        bool too_old = w->rot.max_days > 0 && list[i].sec < cutoff;
        if (too_many || too_old) {
            int r = remove_backup(w, &p, list[i].name);
            if (r < 0) {
                rc = r;
                goto done;
            }
            rc += r;
        }
    }
done:
    for (size_t i = 0; i < n; i++)
        free(list[i].name);
    free(list);
    closedir(dir);
    return rc;
}

int fw_flush(fw_writer_t *w, char *err, size_t err_len)
{
    if (w->fd < 0 || w->len == 0) return SY_OK;
    size_t done = write_all(w->fd, w->buf, w->len);
    w->written += done;
    if (done < w->len) {
        int e = errno;
        memmove(w->buf, w->buf + done, w->len - done);
        w->len -= done;
        set_err(err, err_len, "cannot write to", w->path, e);
        return SY_ERROR;
    }
    w->len = 0;
    return SY_OK;
}

/* Opens the file at w->path; `flags` add to O_WRONLY|O_CREAT|O_CLOEXEC. */
static int open_file(const char *path, int flags, mode_t mode)
{
    int fd;
    do {
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, mode);
    } while (fd < 0 && errno == EINTR);
    return fd;
}

/* Renames the current file to its backup name and opens a new one at its path. */
static int rotate(fw_writer_t *w, char *err, size_t err_len)
{
    int rc = fw_flush(w, err, err_len);
    if (rc < 0) return rc;

    struct stat st;
    mode_t mode = fstat(w->fd, &st) == 0 ? (st.st_mode & 0777) : 0600;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    size_t name_len = strlen(w->path) + FW_TIMESTAMP_LEN + 2;
    char *backup = malloc(name_len);
    if (!backup) return SY_ENOMEM;
    /* Two rotations within one millisecond would share a name: step the
     * millisecond on rather than overwrite the earlier backup. */
    for (int tries = 0;; tries++) {
        rc = fw_backup_name(w->path, &now, w->rot.localtime, backup, name_len);
        if (rc < 0) goto fail;
        struct stat bst;
        if (lstat(backup, &bst) != 0 || tries >= 1000) break;
        now.tv_nsec += 1000000;
        if (now.tv_nsec >= 1000000000) {
            now.tv_sec++;
            now.tv_nsec -= 1000000000;
        }
    }
    if (rename(w->path, backup) != 0) {
        set_err(err, err_len, "cannot rotate", w->path, errno);
        rc = SY_ERROR;
        goto fail;
    }
    int fd = open_file(w->path, O_TRUNC, mode);
    if (fd < 0) {
        set_err(err, err_len, "cannot open", w->path, errno);
        /* Put the file back so that writing goes on where it was. */
        (void)rename(backup, w->path);
        rc = SY_ERROR;
        goto fail;
    }
    close(w->fd);
    w->fd = fd;
    w->size = 0;
    w->rotations++;
    free(backup);
    (void)fw_prune(w, &now);
    return SY_OK;
fail:
    free(backup);
    return rc;
}

int fw_open(fw_writer_t *w, const char *path, bool append, const fw_rotation_t *rot, char *err,
            size_t err_len)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->rot = *rot;
    if (!(w->path = strdup(path)) || !(w->buf = malloc(FW_BUFFER_SIZE))) {
        snprintf(err, err_len, "out of memory");
        goto fail;
    }
    /* With rotation the collector's lumberjack appends to the existing file;
     * without it the file is truncated unless `append`. */
    w->fd = open_file(path, rot->enabled || append ? O_APPEND : O_TRUNC, 0600);
    if (w->fd < 0) {
        set_err(err, err_len, "cannot open", path, errno);
        goto fail;
    }
    struct stat st;
    if (fstat(w->fd, &st) != 0) {
        set_err(err, err_len, "cannot stat", path, errno);
        goto fail;
    }
    w->size = (uint64_t)st.st_size;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    (void)fw_prune(w, &now);
    return SY_OK;
fail:
    if (w->fd >= 0) close(w->fd);
    free(w->path);
    free(w->buf);
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    return SY_ERROR;
}

int fw_write(fw_writer_t *w, const struct iovec *iov, int iovcnt, char *err, size_t err_len)
{
    if (w->fd < 0) {
        snprintf(err, err_len, "the file is closed");
        return SY_ECLOSED;
    }
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > FW_MAX_RECORD - total) {
            snprintf(err, err_len, "a record is larger than 1 GiB");
            return SY_ENOMEM;
        }
        total += iov[i].iov_len;
    }
    int rc;
    if (w->rot.enabled && w->size > 0 && w->size + total > w->rot.max_bytes &&
        (rc = rotate(w, err, err_len)) < 0)
        return rc;
    if (w->len + total > FW_BUFFER_SIZE && (rc = fw_flush(w, err, err_len)) < 0) return rc;

    if (total <= FW_BUFFER_SIZE) {
        for (int i = 0; i < iovcnt; i++) {
            memcpy(w->buf + w->len, iov[i].iov_base, iov[i].iov_len);
            w->len += iov[i].iov_len;
        }
    } else {
        /* The buffer is empty here; write the large record straight through, and
         * cut a partly written one off again so the file stays well framed. */
        for (int i = 0; i < iovcnt; i++) {
            size_t done = write_all(w->fd, iov[i].iov_base, iov[i].iov_len);
            if (done < iov[i].iov_len) {
                set_err(err, err_len, "cannot write to", w->path, errno);
                if (ftruncate(w->fd, (off_t)w->size) != 0) {
                    /* Nothing more to do: the error above is what counts. */
                }
                return SY_ERROR;
            }
        }
        w->written += total;
    }
    w->size += total;
    return SY_OK;
}

int fw_close(fw_writer_t *w, char *err, size_t err_len)
{
    int rc = SY_OK;
    if (w->buf && w->fd >= 0) {
        rc = fw_flush(w, err, err_len);
        if (close(w->fd) != 0 && rc == SY_OK) {
            set_err(err, err_len, "cannot close", w->path, errno);
            rc = SY_ERROR;
        }
    }
    free(w->path);
    free(w->buf);
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    return rc;
}
