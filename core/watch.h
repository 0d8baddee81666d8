/*
 * watch.h - --watch-config: a thread that watches the --config files (through
 * their directories, with inotify, so that an editor's rename and a Kubernetes
 * ConfigMap's symlink swap are seen too) and sends the process SIGHUP when one of
 * them changed, after a quiet period of 200 ms.
 */
#ifndef SY_CORE_WATCH_H
#define SY_CORE_WATCH_H

#include <stddef.h>

typedef struct sy__watch_s sy__watch_t;

/* Starts watching; NULL with a sentence in err when it cannot. */
sy__watch_t *sy__watch_start(const char *const *files, size_t nfiles, char *err, size_t errlen);
void sy__watch_stop(sy__watch_t *w);

#endif
