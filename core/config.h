/*
 * config.h - the configuration tree: YAML files loaded into nodes that remember
 * where they came from, merged, env-expanded and overridden by --set; and the
 * filling of a plugin's configuration struct from its field table.
 *
 * Ownership: a tree belongs to whoever loaded it and is freed with
 * sy__cfg_free(root). Pointers to nodes (SY_CFG_RAW fields, the positions kept by
 * the service model) stay valid until then. Nodes are never changed after load,
 * so a tree may be read from any thread once built. Everything else here runs on
 * the main thread.
 */
#ifndef SY_CORE_CONFIG_H
#define SY_CORE_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include <switchyard/plugin.h>

#include "diag.h"

/* Node kinds; the values are those api->cfg_kind() returns. */
enum { SY__CFG_NULL = 'n', SY__CFG_SCALAR = 's', SY__CFG_MAP = 'm', SY__CFG_LIST = 'l' };

/* Bounds that keep a hostile file from exhausting memory or the stack. */
#define SY__CFG_MAX_DEPTH 128         /* nesting of maps and lists */
#define SY__CFG_MAX_NODES 250000      /* nodes of one document, aliases expanded */
#define SY__CFG_MAX_FILE  (64u << 20) /* bytes of one configuration file */
/* Bytes of all scalar text that environment expansion produces in one load. */
#define SY__CFG_MAX_EXPANDED (64u << 20)

struct sy_cfg_node_s {
    int kind;     /* SY__CFG_* */
    char *scalar; /* SY__CFG_SCALAR: the text, NUL-terminated (owned); else NULL */
    bool quoted;  /* the scalar was quoted (or tagged !!str) in YAML */
    size_t len;   /* entries of a map or list */
    size_t cap;   /* allocated entries */
    char **keys;  /* map: keys[i] names items[i]; the strings belong to key_nodes[i] */
    struct sy_cfg_node_s **items;     /* map values or list items (owned) */
    struct sy_cfg_node_s **key_nodes; /* map: the key scalars, for their positions */
    char *file;                       /* the file (or "--set", "<default>") (owned) */
    int line, col;                    /* 1-based */
    char *where;                      /* "file:line:col" (owned) */
};

/*
 * Loads the files in order and merges them (maps merge recursively, a later
 * value wins, lists are replaced whole), expands environment references in
 * scalar values (${env:VAR}, ${env:VAR:-default}, ${VAR}, $$), then applies each
 * --set "a.b.c=value" (or "a::b::c=value"). Returns the root, or NULL with the
 * errors in diag (warnings, such as an unset variable, may be there either way).
 * An empty file yields a null root.
 */
sy_cfg_node_t *sy__cfg_load(const char *const *files, size_t nfiles, const char *const *sets,
                            size_t nsets, sy__diag_t *diag);

/* Parses one YAML document from memory and expands env references in it; `name`
 * is used as the file name in positions. NULL with errors in diag. */
sy_cfg_node_t *sy__cfg_load_string(const char *name, const char *yaml, sy__diag_t *diag);

/* Parses without expanding env references (defaults, --set values). */
sy_cfg_node_t *sy__cfg_parse_string(const char *name, const char *yaml, size_t len,
                                    sy__diag_t *diag);

/* Expands env references in every scalar value under *node (the node may be
 * replaced, when a whole plain scalar was one reference). The expanded text is
 * bounded by SY__CFG_MAX_EXPANDED bytes in all, and nodes added by typed values
 * keep the tree within SY__CFG_MAX_NODES; passing either is an error at the
 * reference's file:line:col, and expansion stops there. Returns 0 or -1. */
int sy__cfg_expand_env(sy_cfg_node_t **node, sy__diag_t *diag);

/* Merges src into *dst (src is consumed): maps merge recursively, anything else
 * is replaced by src. */
void sy__cfg_merge(sy_cfg_node_t **dst, sy_cfg_node_t *src);

/* Applies one "a.b.c=value" override to *root, creating maps as needed. `index`
 * (0-based) numbers the --set for positions ("--set:<index+1>:<col>"). */
int sy__cfg_apply_set(sy_cfg_node_t **root, const char *set, size_t index, sy__diag_t *diag);

void sy__cfg_free(sy_cfg_node_t *root);

/* The value of `key` in a map; NULL if absent or if `map` is not a map. */
const sy_cfg_node_t *sy__cfg_get(const sy_cfg_node_t *map, const char *key);
/* Entry i of a map (its key in *key) or list (*key = NULL); NULL past the end. */
const sy_cfg_node_t *sy__cfg_at(const sy_cfg_node_t *node, size_t i, const char **key);
/* The node of the key of entry i of a map (for positions), or NULL. */
const sy_cfg_node_t *sy__cfg_key_node(const sy_cfg_node_t *map, size_t i);
/* Kind, 'n' for NULL. */
int sy__cfg_kind(const sy_cfg_node_t *node);
/* "file:line:col", "" for NULL. */
const char *sy__cfg_where(const sy_cfg_node_t *node);
/* The text of a scalar, else NULL. */
const char *sy__cfg_scalar(const sy_cfg_node_t *node);
/* Entries of a map or list, else 0. */
size_t sy__cfg_len(const sy_cfg_node_t *node);

/*
 * Durations as Go's time.ParseDuration reads them: a sequence of decimal numbers,
 * each with an optional fraction and a unit (ns, us, µs, ms, s, m, h), optionally
 * signed: "300ms", "1.5h", "2h45m". "0" is allowed without a unit; any other bare
 * number is refused. Returns 0 with *ns set, or -1.
 */
int sy__parse_duration(const char *s, int64_t *ns);

/*
 * Sizes: a whole number of bytes, optionally followed by a unit: B; KB, MB, GB,
 * TB (powers of 1000); KiB, MiB, GiB, TiB (powers of 1024). Units are matched
 * without regard to case and may follow a space. Fractions ("1.5MiB") are refused.
 * Returns 0 with *bytes set, or -1 (also on overflow).
 */
int sy__parse_size(const char *s, uint64_t *bytes);

/*
 * Fills a plugin's config struct (zeroed, config_size bytes) from its field table
 * and the component's node (NULL or null: defaults only). `id` names the component
 * in messages. Every problem is appended to diag with the position of the node at
 * fault: unknown keys ("'otlp' has invalid keys: protocols.htp"), values of the
 * wrong type ("'otlp.timeout': expected a duration such as 200ms or 5s, got
 * \"banana\""), missing required keys ("'file': missing required key 'path'").
 * A null value leaves a field at its default. Strings, lists and maps are
 * allocated; free them with sy__cfg_free_struct(). On failure the struct has
 * already been freed (every pointer NULL), so freeing it again is harmless.
 * Returns 0 or -1.
 */
int sy__cfg_fill(const char *id, const sy_config_field_t *fields, size_t nfields,
                 const sy_cfg_node_t *node, void *out, sy__diag_t *diag);
void sy__cfg_free_struct(const sy_config_field_t *fields, size_t nfields, void *cfg);

/* The bytes the host writes at a field's offset for its type; 0 for an unknown
 * type. */
size_t sy__cfg_ctype_size(sy_cfg_type_t type);

/*
 * Checks a plugin's field table before anything is filled: every field named,
 * of a known type, its offset plus its C type's size within config_size, an
 * enum with values, min and max that parse as the field's type (min <= max), a
 * pattern that compiles. Returns 0, or SY_ERROR with a sentence naming `plugin`
 * and the field in err.
 */
int sy__cfg_check_table(const char *plugin, const sy_config_field_t *fields, size_t nfields,
                        size_t config_size, char *err, size_t err_len);

/* `switchyard components --schema`: the plugin's field table as JSON Schema
 * (2020-12), `kind` naming it in the title. */
void sy__cfg_schema_json(FILE *out, const sy_plugin_t *d, const char *kind);
/* `switchyard components --markdown`: the table of keys a README shows. */
void sy__cfg_schema_markdown(FILE *out, const sy_plugin_t *d);

/* Renders a tree as YAML (for `switchyard print-config`); the caller frees it.
 * NULL on out of memory. */
char *sy__cfg_to_yaml(const sy_cfg_node_t *root);

#endif /* SY_CORE_CONFIG_H */
