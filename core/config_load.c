/*
 * config_load.c - the order of a configuration load: read each --config file
 * (bounded in size), parse it, merge it over the ones before, expand environment
 * references, then apply --set overrides. Also the one-string variant the tests
 * and the embedded router use.
 */
#include "config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *read_file(const char *path, size_t *len, sy__diag_t *diag)
{
    char *data = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) goto syserr;
    if (!S_ISREG(st.st_mode)) {
        sy__diag_add_at(diag, path, 0, 0, "cannot read config file: not a regular file");
        goto fail;
    }
    if ((uint64_t)st.st_size > SY__CFG_MAX_FILE) {
        sy__diag_add_at(diag, path, 0, 0, "config file is larger than %u MiB",
                        SY__CFG_MAX_FILE >> 20);
        goto fail;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) goto syserr;
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) goto syserr;
        if (r == 0) break;
        got += (size_t)r;
    }
    data[got] = '\0';
    *len = got;
    close(fd);
    return data;
syserr:
    sy__diag_add_at(diag, path, 0, 0, "cannot read config file: %s", strerror(errno));
fail:
    free(data);
    if (fd >= 0) close(fd);
    return NULL;
}

sy_cfg_node_t *sy__cfg_load_string(const char *name, const char *yaml, sy__diag_t *diag)
{
    sy_cfg_node_t *root = sy__cfg_parse_string(name, yaml, strlen(yaml), diag);
    if (root && sy__cfg_expand_env(&root, diag) < 0) {
        sy__cfg_free(root);
        return NULL;
    }
    return root;
}

sy_cfg_node_t *sy__cfg_load(const char *const *files, size_t nfiles, const char *const *sets,
                            size_t nsets, sy__diag_t *diag)
{
    sy_cfg_node_t *root = NULL;
    bool failed = false;

    for (size_t i = 0; i < nfiles; i++) {
        size_t len;
        char *text = read_file(files[i], &len, diag);
        if (!text) {
            failed = true;
            continue;
        }
        sy_cfg_node_t *doc = sy__cfg_parse_string(files[i], text, len, diag);
        free(text);
        if (!doc) {
            failed = true;
            continue;
        }
        /* An empty file adds nothing; it does not wipe what came before. */
        if (doc->kind == SY__CFG_NULL && root) {
            sy__cfg_free(doc);
            continue;
        }
        sy__cfg_merge(&root, doc);
    }
    if (!failed && !root) {
        sy__diag_add(diag, NULL, "no configuration: give at least one --config file");
        failed = true;
    }
    if (failed) goto fail;
    if (sy__cfg_expand_env(&root, diag) < 0) goto fail;
    for (size_t i = 0; i < nsets; i++)
        if (sy__cfg_apply_set(&root, sets[i], i, diag) < 0) failed = true;
    if (failed) goto fail;
    return root;
fail:
    sy__cfg_free(root);
    return NULL;
}
