/*
 * watch.c - --watch-config (see watch.h).
 */
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "log.h"

#define QUIET_MS 200

struct sy__watch_s {
    int fd;      /* inotify */
    int stop[2]; /* a pipe: written to stop the thread */
    pthread_t thread;
    char **names; /* the files' base names */
    size_t nnames;
};

/* Whether an event about `name` in a watched directory concerns a config file:
 * the file itself, or a Kubernetes ConfigMap's "..data" swap. */
static bool concerns(const sy__watch_t *w, const char *name)
{
    if (strncmp(name, "..", 2) == 0) return true;
    for (size_t i = 0; i < w->nnames; i++)
        if (!strcmp(name, w->names[i])) return true;
    return false;
}

/* Reads what is queued; true if something concerned a config file. */
static bool drain_events(sy__watch_t *w)
{
    bool hit = false;
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0) return hit;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            if (ev->len && concerns(w, ev->name)) hit = true;
            p += sizeof(*ev) + ev->len;
        }
    }
}

static void *watch_main(void *arg)
{
    sy__watch_t *w = arg;
    bool pending = false;
    for (;;) {
        struct pollfd fds[2] = {{.fd = w->fd, .events = POLLIN},
                                {.fd = w->stop[0], .events = POLLIN}};
        int rc = poll(fds, 2, pending ? QUIET_MS : -1);
        if (rc < 0 && errno == EINTR) continue;
        if (rc < 0 || (fds[1].revents & POLLIN)) break;
        if (rc == 0) { /* quiet for QUIET_MS after a change: reload */
            pending = false;
            sy__log(NULL, SY_LOG_INFO, "a configuration file changed: reloading");
            kill(getpid(), SIGHUP);
            continue;
        }
        if (drain_events(w)) pending = true;
    }
    return NULL;
}

static void watch_free(sy__watch_t *w)
{
    if (w->fd >= 0) close(w->fd);
    for (int i = 0; i < 2; i++)
        if (w->stop[i] >= 0) close(w->stop[i]);
    for (size_t i = 0; i < w->nnames; i++)
        free(w->names[i]);
    free(w->names);
    free(w);
}

sy__watch_t *sy__watch_start(const char *const *files, size_t nfiles, char *err, size_t errlen)
{
    sy__watch_t *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->stop[0] = w->stop[1] = -1;
    w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    w->names = calloc(nfiles ? nfiles : 1, sizeof(*w->names));
    if (w->fd < 0 || !w->names || pipe2(w->stop, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot watch the configuration: %s", strerror(errno));
        watch_free(w);
        return NULL;
    }
    for (size_t i = 0; i < nfiles; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof(path), "%s", files[i]);
        w->names[w->nnames] = strdup(basename(path));
        if (!w->names[w->nnames]) {
            snprintf(err, errlen, "out of memory");
            watch_free(w);
            return NULL;
        }
        w->nnames++;
        snprintf(path, sizeof(path), "%s", files[i]);
        const char *dir = dirname(path);
        if (inotify_add_watch(
                w->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB) < 0) {
            snprintf(err, errlen, "cannot watch %s: %s", dir, strerror(errno));
            watch_free(w);
            return NULL;
        }
    }
    if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
        snprintf(err, errlen, "cannot start the configuration watcher");
        watch_free(w);
        return NULL;
    }
    return w;
}

void sy__watch_stop(sy__watch_t *w)
{
    if (!w) return;
    ssize_t n = write(w->stop[1], "x", 1);
    (void)n;
    pthread_join(w->thread, NULL);
    watch_free(w);
}
