/*
 * config_merge.c - laying one tree over another: the merge of several --config
 * files (maps merge recursively, anything else is replaced) and --set overrides
 * ("a.b.c=value" or "a::b::c=value", the value parsed as YAML of its own).
 */
#include "config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sy__cfg_merge(sy_cfg_node_t **dst, sy_cfg_node_t *src)
{
    sy_cfg_node_t *d = *dst;
    if (!d || d->kind != SY__CFG_MAP || src->kind != SY__CFG_MAP) {
        sy__cfg_free(d);
        *dst = src;
        return;
    }
    while (src->len > 0) {
        sy_cfg_node_t *v, *k;
        sy__cfg_node_remove(src, 0, &v, &k);
        ssize_t i = sy__cfg_map_index(d, k->scalar);
        if (i >= 0) {
            sy__cfg_merge(&d->items[i], v);
            sy__cfg_free(k);
        } else {
            sy__cfg_map_push(d, k, v); /* on out of memory the entry is dropped */
        }
    }
    sy__cfg_free(src);
}

/* Finds or makes the map at key `seg` of map *slot, replacing a non-map value. */
static sy_cfg_node_t **set_descend(sy_cfg_node_t **slot, const char *seg, size_t seglen,
                                   const sy_cfg_node_t *pos)
{
    if (!*slot || (*slot)->kind != SY__CFG_MAP) {
        sy_cfg_node_t *m = sy__cfg_node_new(SY__CFG_MAP, pos->file, pos->line, pos->col);
        if (!m) return NULL;
        sy__cfg_free(*slot);
        *slot = m;
    }
    sy_cfg_node_t *map = *slot;
    for (size_t i = 0; i < map->len; i++)
        if (strlen(map->keys[i]) == seglen && !memcmp(map->keys[i], seg, seglen))
            return &map->items[i];
    sy_cfg_node_t *k = sy__cfg_node_new(SY__CFG_SCALAR, pos->file, pos->line, pos->col);
    sy_cfg_node_t *v = sy__cfg_node_new(SY__CFG_NULL, pos->file, pos->line, pos->col);
    if (!k || !v || !(k->scalar = strndup(seg, seglen))) {
        sy__cfg_free(k);
        sy__cfg_free(v);
        return NULL;
    }
    if (sy__cfg_map_push(map, k, v) < 0) return NULL;
    return &map->items[map->len - 1];
}

#define SET_MAX_SEGMENTS 64

int sy__cfg_apply_set(sy_cfg_node_t **root, const char *set, size_t index, sy__diag_t *diag)
{
    const char *eq = strchr(set, '=');
    const char *seg[SET_MAX_SEGMENTS];
    size_t seglen[SET_MAX_SEGMENTS], nseg = 0;
    sy_cfg_node_t *pos = sy__cfg_node_new(SY__CFG_NULL, "--set", (int)index + 1, 1);
    sy_cfg_node_t *value = NULL;
    int rc = -1;

    if (!pos) goto nomem;
    if (!eq || eq == set) {
        sy__diag_add(diag, pos,
                     "--set \"%s\": expected key=value, such as processors::batch::timeout=2s",
                     set);
        goto out;
    }
    /* "::" is otelcol's separator; "." is accepted when the key has no "::". */
    const char *dc = strstr(set, "::");
    const char *sep = dc && dc < eq ? "::" : ".";
    size_t seplen = strlen(sep);
    for (const char *c = set;;) {
        const char *e = strstr(c, sep);
        if (!e || e > eq) e = eq;
        if (e == c || nseg == SET_MAX_SEGMENTS) {
            sy__diag_add(diag, pos, "--set \"%s\": %s", set,
                         e == c ? "empty key in the path" : "the path is too deep");
            goto out;
        }
        seg[nseg] = c;
        seglen[nseg++] = (size_t)(e - c);
        if (e == eq) break;
        c = e + seplen;
    }
    /* The value is YAML of its own (a scalar, or a flow list or map), placed at
     * "--set:<which --set>:<column of the value>". */
    sy__diag_t vdiag;
    sy__diag_init(&vdiag);
    value = sy__cfg_parse_string("--set", eq + 1, strlen(eq + 1), &vdiag);
    sy__diag_free(&vdiag);
    if (!value) {
        sy__diag_add(diag, pos, "--set \"%s\": the value is not valid YAML", set);
        goto out;
    }
    sy_cfg_node_t *vpos =
        sy__cfg_node_new(SY__CFG_NULL, "--set", (int)index + 1, (int)(eq - set) + 2);
    int moved = vpos ? sy__cfg_node_relocate(value, vpos) : -1;
    sy__cfg_free(vpos);
    if (moved < 0) goto nomem;

    sy_cfg_node_t **slot = root;
    for (size_t i = 0; i < nseg; i++)
        if (!(slot = set_descend(slot, seg[i], seglen[i], pos))) goto nomem;
    sy__cfg_free(*slot);
    *slot = value;
    value = NULL;
    rc = 0;
    goto out;
nomem:
    sy__diag_add(diag, NULL, "--set \"%s\": out of memory", set);
out:
    sy__cfg_free(value);
    sy__cfg_free(pos);
    return rc;
}
