/*
 * loader.h - finding plugins on the plugin path and loading them.
 *
 * A plugin file is named <kind>_<type>.so (receiver_otlp.so, processor_batch.so).
 * The path is searched in order: every --plugin-dir, then SWITCHYARD_PLUGIN_PATH
 * (colon-separated), then lib/switchyard/plugins beside the executable's bin/ (the
 * build tree and the install tree have the same layout), then the install prefix.
 * The first file of a kind and type wins. Only the files the configuration names
 * are opened, and loaded code is never unloaded while the process runs.
 */
#ifndef SY_CORE_LOADER_H
#define SY_CORE_LOADER_H

#include <stdbool.h>
#include <stddef.h>

#include <switchyard/plugin.h>

typedef struct sy__plugin_file_s {
    char *path;
    sy_kind_t kind;
    char *type;
    void *handle;     /* dlopen handle once loaded */
    sy_plugin_t desc; /* the descriptor, copied (zero past the plugin's size) */
    /* The plugin's field table in this host's layout when the plugin's element
     * size differs (another minor); desc.config_fields points here then. */
    sy_config_field_t *fields_copy;
    bool loaded;
} sy__plugin_file_t;

typedef struct sy__registry_s {
    sy__plugin_file_t *files;
    size_t nfiles;
    char **dirs;
    size_t ndirs;
} sy__registry_t;

/* Lists the plugin files found on the path made of `extra_dirs` and the defaults
 * above. Returns 0 or SY_ENOMEM. */
int sy__registry_scan(sy__registry_t *reg, const char *const *extra_dirs, size_t nextra);
void sy__registry_free(sy__registry_t *reg);
sy__plugin_file_t *sy__registry_find(sy__registry_t *reg, sy_kind_t kind, const char *type);
/* "[batch, nop]": the types of one kind found, for error messages (malloc'ed). */
char *sy__registry_types(const sy__registry_t *reg, sy_kind_t kind);
/* "/a, /b": the directories searched, in order, for error messages (malloc'ed). */
char *sy__registry_dirs(const sy__registry_t *reg);
/* Opens the file and checks its descriptor. Returns 0, or SY_ERROR with a
 * sentence naming the file in err. Loading twice is a no-op. */
int sy__registry_load(sy__plugin_file_t *file, char *err, size_t err_len);
/* Loads one file by path, outside any registry (tests, `components`). */
int sy__plugin_load_path(const char *path, sy__plugin_file_t *out, char *err, size_t err_len);
/* Frees what sy__plugin_load_path() allocated (the handle stays open). */
void sy__plugin_file_free(sy__plugin_file_t *file);

const char *sy__kind_name(sy_kind_t kind); /* "receiver", ... */
int sy__kind_from_name(const char *name, sy_kind_t *kind);

#endif
