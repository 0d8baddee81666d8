/*
 * loader.c - plugins on disk: the plugin path (--plugin-dir, SWITCHYARD_PLUGIN_PATH,
 * next to the binary, the install directory), the <kind>_<type>.so names found
 * there, dlopen of a plugin when first used, and the checks of its descriptor
 * (ABI version, size, kind, type) before the core calls into it.
 */
#include "loader.h"

#include "config.h"
#include "log.h"

#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SY_VERSION
#define SY_VERSION "0.0.0"
#endif
#ifndef SY_PLUGIN_REL_DIR
#define SY_PLUGIN_REL_DIR "../lib/switchyard/plugins"
#endif
#ifndef SY_PLUGIN_INSTALL_PATH
#define SY_PLUGIN_INSTALL_PATH "/usr/local/lib/switchyard/plugins"
#endif

/* The part of sy_plugin_t that ABI 1.0 defined: a descriptor must hold at least this. */
#define SY__PLUGIN_MIN_SIZE (offsetof(sy_plugin_t, destroy) + sizeof(void (*)(void *)))

static const char *const kind_names[] = {
    [SY_KIND_RECEIVER] = "receiver",   [SY_KIND_PROCESSOR] = "processor",
    [SY_KIND_EXPORTER] = "exporter",   [SY_KIND_EXTENSION] = "extension",
    [SY_KIND_CONNECTOR] = "connector",
};

const char *sy__kind_name(sy_kind_t kind)
{
    if (kind >= SY_KIND_RECEIVER && kind <= SY_KIND_CONNECTOR) return kind_names[kind];
    return "unknown";
}

int sy__kind_from_name(const char *name, sy_kind_t *kind)
{
    for (int k = SY_KIND_RECEIVER; k <= SY_KIND_CONNECTOR; k++) {
        if (strcmp(name, kind_names[k]) == 0) {
            *kind = (sy_kind_t)k;
            return 0;
        }
    }
    return -1;
}

static int add_dir(sy__registry_t *reg, const char *dir)
{
    if (!dir || !*dir) return 0;
    for (size_t i = 0; i < reg->ndirs; i++)
        if (strcmp(reg->dirs[i], dir) == 0) return 0;
    char **dirs = realloc(reg->dirs, (reg->ndirs + 1) * sizeof(*dirs));
    if (!dirs) return SY_ENOMEM;
    reg->dirs = dirs;
    if (!(reg->dirs[reg->ndirs] = strdup(dir))) return SY_ENOMEM;
    reg->ndirs++;
    return 0;
}

/* Splits "<kind>_<type>.so" into its parts. */
static int parse_file_name(const char *name, sy_kind_t *kind, char *type, size_t type_len)
{
    size_t n = strlen(name);
    if (n < 4 || strcmp(name + n - 3, ".so") != 0) return -1;
    const char *us = strchr(name, '_');
    if (!us) return -1;
    char kname[16];
    size_t kl = (size_t)(us - name);
    if (kl >= sizeof(kname)) return -1;
    memcpy(kname, name, kl);
    kname[kl] = 0;
    if (sy__kind_from_name(kname, kind) < 0) return -1;
    size_t tl = n - 3 - kl - 1;
    if (tl == 0 || tl >= type_len) return -1;
    memcpy(type, us + 1, tl);
    type[tl] = 0;
    return 0;
}

static int scan_dir(sy__registry_t *reg, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        sy_kind_t kind;
        char type[128];
        if (parse_file_name(e->d_name, &kind, type, sizeof(type)) < 0) continue;
        if (sy__registry_find(reg, kind, type)) continue; /* an earlier directory wins */
        sy__plugin_file_t *files = realloc(reg->files, (reg->nfiles + 1) * sizeof(*files));
        if (!files) {
            rc = SY_ENOMEM;
            break;
        }
        reg->files = files;
        sy__plugin_file_t *f = &reg->files[reg->nfiles];
        memset(f, 0, sizeof(*f));
        f->kind = kind;
        f->type = strdup(type);
        if (asprintf(&f->path, "%s/%s", dir, e->d_name) < 0) f->path = NULL;
        if (!f->type || !f->path) {
            free(f->type);
            free(f->path);
            rc = SY_ENOMEM;
            break;
        }
        reg->nfiles++;
    }
    closedir(d);
    return rc;
}

static int cmp_files(const void *a, const void *b)
{
    const sy__plugin_file_t *x = a, *y = b;
    if (x->kind != y->kind) return (int)x->kind - (int)y->kind;
    return strcmp(x->type, y->type);
}

int sy__registry_scan(sy__registry_t *reg, const char *const *extra_dirs, size_t nextra)
{
    memset(reg, 0, sizeof(*reg));
    int rc = 0;
    for (size_t i = 0; i < nextra && rc == 0; i++)
        rc = add_dir(reg, extra_dirs[i]);
    const char *env = getenv("SWITCHYARD_PLUGIN_PATH");
    if (env && rc == 0) {
        char *copy = strdup(env), *save = NULL;
        if (!copy) return SY_ENOMEM;
        for (char *tok = strtok_r(copy, ":", &save); tok && rc == 0;
             tok = strtok_r(NULL, ":", &save))
            rc = add_dir(reg, tok);
        free(copy);
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0 && rc == 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            char dir[PATH_MAX + 64];
            snprintf(dir, sizeof(dir), "%s/%s", exe, SY_PLUGIN_REL_DIR);
            char real[PATH_MAX];
            rc = add_dir(reg, realpath(dir, real) ? real : dir);
        }
    }
    if (rc == 0) rc = add_dir(reg, SY_PLUGIN_INSTALL_PATH);
    for (size_t i = 0; i < reg->ndirs && rc == 0; i++)
        rc = scan_dir(reg, reg->dirs[i]);
    if (reg->nfiles) qsort(reg->files, reg->nfiles, sizeof(reg->files[0]), cmp_files);
    return rc;
}

void sy__registry_free(sy__registry_t *reg)
{
    /* Handles stay open: code is never unloaded while the process runs. */
    for (size_t i = 0; i < reg->nfiles; i++)
        sy__plugin_file_free(&reg->files[i]);
    free(reg->files);
    for (size_t i = 0; i < reg->ndirs; i++)
        free(reg->dirs[i]);
    free(reg->dirs);
    memset(reg, 0, sizeof(*reg));
}

sy__plugin_file_t *sy__registry_find(sy__registry_t *reg, sy_kind_t kind, const char *type)
{
    for (size_t i = 0; i < reg->nfiles; i++)
        if (reg->files[i].kind == kind && strcmp(reg->files[i].type, type) == 0)
            return &reg->files[i];
    return NULL;
}

char *sy__registry_types(const sy__registry_t *reg, sy_kind_t kind)
{
    size_t cap = 3;
    for (size_t i = 0; i < reg->nfiles; i++)
        cap += strlen(reg->files[i].type) + 2;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t len = 0;
    s[len++] = '[';
    for (size_t i = 0; i < reg->nfiles; i++) {
        if (reg->files[i].kind != kind) continue;
        if (len > 1) {
            s[len++] = ',';
            s[len++] = ' ';
        }
        size_t tl = strlen(reg->files[i].type);
        memcpy(s + len, reg->files[i].type, tl);
        len += tl;
    }
    s[len++] = ']';
    s[len] = 0;
    return s;
}

char *sy__registry_dirs(const sy__registry_t *reg)
{
    size_t cap = 1;
    for (size_t i = 0; i < reg->ndirs; i++)
        cap += strlen(reg->dirs[i]) + 2;
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t len = 0;
    for (size_t i = 0; i < reg->ndirs; i++) {
        size_t n = strlen(reg->dirs[i]);
        if (i) memcpy(s + len, ", ", 2), len += 2;
        memcpy(s + len, reg->dirs[i], n);
        len += n;
    }
    s[len] = 0;
    return s;
}

static int check_descriptor(sy__plugin_file_t *file, const sy_plugin_t *d, char *err,
                            size_t err_len)
{
    if (d->abi_major != SY_ABI_MAJOR) {
        snprintf(err, err_len,
                 "plugin %s was built for plugin ABI %u.%u, but this switchyard %s has ABI "
                 "%d.%d: rebuild the plugin against this version's include/switchyard/plugin.h",
                 file->path, d->abi_major, d->abi_minor, SY_VERSION, SY_ABI_MAJOR, SY_ABI_MINOR);
        return SY_ERROR;
    }
    if (d->size < SY__PLUGIN_MIN_SIZE) {
        snprintf(err, err_len,
                 "plugin %s has a descriptor of %u bytes, smaller than ABI %d.0 requires (%zu)",
                 file->path, d->size, SY_ABI_MAJOR, (size_t)SY__PLUGIN_MIN_SIZE);
        return SY_ERROR;
    }
    /* Read no further than the plugin's own descriptor; newer fields stay zero. */
    memset(&file->desc, 0, sizeof(file->desc));
    memcpy(&file->desc, d, d->size < sizeof(file->desc) ? d->size : sizeof(file->desc));
    const sy_plugin_t *c = &file->desc;
    if (c->kind != file->kind || !c->type || strcmp(c->type, file->type) != 0) {
        snprintf(err, err_len, "plugin %s declares %s \"%s\", but its file name says %s \"%s\"",
                 file->path, sy__kind_name(c->kind), c->type ? c->type : "(null)",
                 sy__kind_name(file->kind), file->type);
        return SY_ERROR;
    }
    bool consumes =
        c->kind == SY_KIND_PROCESSOR || c->kind == SY_KIND_EXPORTER || c->kind == SY_KIND_CONNECTOR;
    if (!c->create || !c->destroy || (consumes && !c->consume)) {
        snprintf(err, err_len, "plugin %s lacks a required callback (create, destroy%s)",
                 file->path, consumes ? ", consume" : "");
        return SY_ERROR;
    }
    if (c->kind == SY_KIND_CONNECTOR &&
        (d->size < offsetof(sy_plugin_t, connects) + sizeof(c->connects) ||
         !(c->connects[0] | c->connects[1] | c->connects[2]))) {
        snprintf(err, err_len,
                 "plugin %s is a connector but declares no signals it connects (sy_plugin_t "
                 "connects, ABI 1.4)",
                 file->path);
        return SY_ERROR;
    }
    if (c->config_field_count && !c->config_fields) {
        snprintf(err, err_len, "plugin %s declares %zu config fields but no table", file->path,
                 c->config_field_count);
        return SY_ERROR;
    }
    /* The table's element size: ABI 1.0 to 1.2 had seven members; from 1.3 on the
     * descriptor says it (0: the 1.3 size). */
    size_t stride = c->abi_minor < 3       ? SY_CONFIG_FIELD_SIZE_1_0
                    : c->config_field_size ? c->config_field_size
                                           : sizeof(sy_config_field_t);
    if (stride < SY_CONFIG_FIELD_SIZE_1_0) {
        snprintf(err, err_len,
                 "plugin %s declares config fields of %zu bytes, smaller than ABI %d.0's (%zu)",
                 file->path, stride, SY_ABI_MAJOR, (size_t)SY_CONFIG_FIELD_SIZE_1_0);
        return SY_ERROR;
    }
    if (c->config_field_count && stride != sizeof(sy_config_field_t)) {
        /* Another minor's layout: copy what both know into this host's layout;
         * members the plugin's header lacked stay zero. */
        sy_config_field_t *copy = calloc(c->config_field_count, sizeof(*copy));
        if (!copy) {
            snprintf(err, err_len, "plugin %s: out of memory", file->path);
            return SY_ENOMEM;
        }
        size_t n = stride < sizeof(*copy) ? stride : sizeof(*copy);
        for (size_t i = 0; i < c->config_field_count; i++)
            memcpy(&copy[i], (const char *)c->config_fields + i * stride, n);
        file->fields_copy = copy;
        file->desc.config_fields = copy;
    }
    if (sy__cfg_check_table(file->path, c->config_fields, c->config_field_count, c->config_size,
                            err, err_len) < 0) {
        free(file->fields_copy);
        file->fields_copy = NULL;
        return SY_ERROR;
    }
    /* ABI 1.5: a plugin may say which host minor it needs at least (c is the
     * copy: zero when the plugin's descriptor is older and lacks the member). */
    if (c->min_host_minor > SY_ABI_MINOR) {
        snprintf(err, err_len,
                 "plugin %s needs a switchyard of plugin ABI %u.%u or later (its "
                 "min_host_minor; built for ABI %u.%u), but this switchyard %s has ABI %d.%d: "
                 "upgrade switchyard or use a build of the plugin for ABI %d.%d",
                 file->path, d->abi_major, c->min_host_minor, d->abi_major, d->abi_minor,
                 SY_VERSION, SY_ABI_MAJOR, SY_ABI_MINOR, SY_ABI_MAJOR, SY_ABI_MINOR);
        return SY_ERROR;
    }
    if (d->abi_minor > SY_ABI_MINOR)
        sy__log(NULL, SY_LOG_WARN,
                "plugin %s was built for plugin ABI %u.%u, newer than this switchyard %s (ABI "
                "%d.%d): it loads, but what it adds past %d.%d is ignored, and it must check "
                "api->size (SY_API_HAS) before calling newer host functions",
                file->path, d->abi_major, d->abi_minor, SY_VERSION, SY_ABI_MAJOR, SY_ABI_MINOR,
                SY_ABI_MAJOR, SY_ABI_MINOR);
    return SY_OK;
}

int sy__registry_load(sy__plugin_file_t *file, char *err, size_t err_len)
{
    if (file->loaded) return SY_OK;
    void *h = dlopen(file->path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, err_len, "cannot load plugin %s: %s", file->path, dlerror());
        return SY_ERROR;
    }
    sy_plugin_entry_fn entry;
    *(void **)&entry = dlsym(h, SY_PLUGIN_ENTRY_SYMBOL);
    if (!entry) {
        snprintf(err, err_len, "plugin %s does not export the entry symbol %s", file->path,
                 SY_PLUGIN_ENTRY_SYMBOL);
        dlclose(h);
        return SY_ERROR;
    }
    const sy_plugin_t *d = entry();
    if (!d) {
        snprintf(err, err_len, "plugin %s returned no descriptor from %s", file->path,
                 SY_PLUGIN_ENTRY_SYMBOL);
        dlclose(h);
        return SY_ERROR;
    }
    if (check_descriptor(file, d, err, err_len) < 0) {
        dlclose(h);
        return SY_ERROR;
    }
    file->handle = h;
    file->loaded = true;
    return SY_OK;
}

int sy__plugin_load_path(const char *path, sy__plugin_file_t *out, char *err, size_t err_len)
{
    memset(out, 0, sizeof(*out));
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char type[128];
    if (parse_file_name(base, &out->kind, type, sizeof(type)) < 0) {
        snprintf(err, err_len, "plugin file %s is not named <kind>_<type>.so", path);
        return SY_ERROR;
    }
    out->path = strdup(path);
    out->type = strdup(type);
    if (!out->path || !out->type) {
        free(out->path);
        free(out->type);
        return SY_ENOMEM;
    }
    int rc = sy__registry_load(out, err, err_len);
    if (rc < 0) sy__plugin_file_free(out);
    return rc;
}

void sy__plugin_file_free(sy__plugin_file_t *file)
{
    free(file->path);
    free(file->type);
    free(file->fields_copy);
    memset(file, 0, sizeof(*file));
}
