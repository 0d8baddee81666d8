/*
 * redaction_walk.c - the redaction processor inside maps and arrays (see
 * redaction_walk.h): the collector's redactLogBodyRecursive, writing the
 * container anew in the OTLP encoding when anything inside changed.
 *
 * Encoding: a MAP value is written as the content of a KeyValueList (repeated
 * KeyValue values = 1; KeyValue: key = 1, value = 2), an ARRAY as the content of
 * an ArrayValue (repeated AnyValue values = 1); an AnyValue is string = 1,
 * bool = 2, int = 3, double = 4, array = 5, kvlist = 6, bytes = 7. The content of
 * a nested container is built first in the next level's buffer, so that its
 * length is known when the enclosing entry is written (syc_anyvalue_put_entry);
 * the new content becomes a value through the host's value_container() (ABI
 * 1.2), which the view copies encoded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attr_actions.h"
#include "redaction_walk.h"

void rd_keylist_push(rd_keylist_t *l, const char *p, size_t len, bool *oom)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        rd_key_t *k = realloc(l->k, cap * sizeof(*k));
        if (!k) {
            *oom = true;
            return;
        }
        l->k = k;
        l->cap = cap;
    }
    l->k[l->n++] = (rd_key_t){p, len, 0};
}

/* ---- paths ---- */

/* Records the current path in list. */
static void note(rd_walk_t *w, rd_keylist_t *list)
{
    size_t off = w->store.len;
    if (syc_buf_put(&w->store, w->path.p ? w->path.p : "", w->path.len) < 0) {
        w->oom = true;
        return;
    }
    rd_keylist_push(list, NULL, w->path.len, &w->oom);
    if (!w->oom) list->k[list->n - 1].off = off;
}

void rd_walk_fix(rd_walk_t *w, rd_keylist_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (!l->k[i].p) l->k[i].p = w->store.p + l->k[i].off;
}

void rd_walk_reset(rd_walk_t *w)
{
    w->store.len = 0;
}

/* Appends ".name" (or "name" at the top) to the path; returns the old length. */
static size_t path_push(rd_walk_t *w, const char *name, size_t len, bool index, size_t i)
{
    size_t old = w->path.len;
    char num[32];
    if (index) {
        len = (size_t)snprintf(num, sizeof(num), "[%zu]", i);
        name = num;
    }
    if ((old > 0 && syc_buf_put(&w->path, ".", 1) < 0) || syc_buf_put(&w->path, name, len) < 0)
        w->oom = true;
    return old;
}

/* ---- the walk ---- */

static int walk_container(rd_walk_t *w, const sy_value_t *v, int depth, const rd_lists_t *lists,
                          bool *changed);

/* One scalar inside a container, as the collector's default branch: its
 * AsString() allowed, or masked. Writes the entry (new or as it was). */
static int walk_scalar(rd_walk_t *w, syc_buf_t *out, const sy_value_t *key, const sy_value_t *v,
                       const rd_lists_t *lists, bool *changed)
{
    rd_rules_t *r = w->rules;
    size_t cap = syc_value_as_string_cap(v);
    if (w->text.cap < cap) {
        char *p = realloc(w->text.p, cap);
        if (!p) return SY_ENOMEM;
        w->text.p = p;
        w->text.cap = cap;
    }
    const char *str;
    size_t len;
    if (syc_value_as_string(v, w->text.p, w->text.cap, &str, &len) < 0)
        return syc_anyvalue_put_entry(out, key, v, NULL, 0);
    if (rd_regex_any(r, &r->allowed_values, str, len)) {
        note(w, lists->allowed);
        return syc_anyvalue_put_entry(out, key, v, NULL, 0);
    }
    const char *m;
    size_t mlen;
    int rc = rd_mask_value(r, str, len, &m, &mlen, &w->detected);
    if (rc < 0) return rc;
    if (rc == 0) return syc_anyvalue_put_entry(out, key, v, NULL, 0);
    note(w, lists->masked);
    *changed = true;
    sy_value_t s = {.type = SY_VALUE_STRING, .str = m, .len = mlen};
    return syc_anyvalue_put_entry(out, key, &s, NULL, 0);
}

/* One entry of the container at depth: checks its key (maps), then walks its value. */
static int walk_entry(rd_walk_t *w, int depth, const sy_value_t *key, const sy_value_t *v,
                      const rd_lists_t *lists, bool *changed)
{
    rd_rules_t *r = w->rules;
    syc_buf_t *out = &w->level[depth];
    if (key) {
        const char *k = key->str ? key->str : "";
        if (rd_key_ignored(r, k, key->len)) {
            note(w, lists->ignored);
            return syc_anyvalue_put_entry(out, key, v, NULL, 0);
        }
        if (!r->cfg->allow_all_keys && !rd_key_in(&r->allowed, k, key->len)) {
            note(w, lists->redacted);
            *changed = true;
            return SY_OK;
        }
        if (rd_regex_any(r, &r->blocked_keys, k, key->len)) {
            /* As the collector: the whole value becomes the mask of its Str(),
             * "" for anything but a string. */
            const char *m;
            size_t mlen;
            bool str = v->type == SY_VALUE_STRING;
            if (rd_mask_whole(r, str ? v->str : "", str ? v->len : 0, &m, &mlen) < 0)
                return SY_ENOMEM;
            note(w, lists->masked);
            *changed = true;
            sy_value_t s = {.type = SY_VALUE_STRING, .str = m, .len = mlen};
            return syc_anyvalue_put_entry(out, key, &s, NULL, 0);
        }
    }
    if (v->type != SY_VALUE_ARRAY && v->type != SY_VALUE_MAP)
        return walk_scalar(w, out, key, v, lists, changed);
    if (depth + 1 >= RD_MAX_DEPTH) {
        /* Too deep to look inside: masked whole rather than passed unchecked. */
        const char *m;
        size_t mlen;
        if (rd_mask_whole(r, "", 0, &m, &mlen) < 0) return SY_ENOMEM;
        note(w, lists->masked);
        *changed = true;
        sy_value_t s = {.type = SY_VALUE_STRING, .str = m, .len = mlen};
        return syc_anyvalue_put_entry(out, key, &s, NULL, 0);
    }
    bool inner = false;
    int rc = walk_container(w, v, depth + 1, lists, &inner);
    if (rc < 0) return rc;
    if (!inner) return syc_anyvalue_put_entry(out, key, v, NULL, 0);
    *changed = true;
    syc_buf_t *content = &w->level[depth + 1];
    return syc_anyvalue_put_entry(out, key, v, content->p, content->len);
}

/* Writes the new content of the container v into w->level[depth]. */
static int walk_container(rd_walk_t *w, const sy_value_t *v, int depth, const rd_lists_t *lists,
                          bool *changed)
{
    const sy_host_api_t *api = w->api;
    sy_value_iter_t it = {.value = v};
    sy_value_t key, val;
    size_t i = 0;
    int rc;
    w->level[depth].len = 0;
    bool is_map = v->type == SY_VALUE_MAP;
    while ((rc = api->view_value_next(&it, &key, &val)) > 0) {
        size_t old =
            is_map ? path_push(w, key.str, key.len, false, 0) : path_push(w, NULL, 0, true, i);
        if (w->oom) return SY_ENOMEM;
        rc = walk_entry(w, depth, is_map ? &key : NULL, &val, lists, changed);
        w->path.len = old;
        if (rc < 0) return rc;
        i++;
    }
    /* An entry that does not parse: the container is passed on as it was (the
     * receiver validated it, so this does not happen with data from a receiver). */
    if (rc < 0) *changed = false;
    return SY_OK;
}

int rd_walk(rd_walk_t *w, const sy_value_t *v, const char *prefix, size_t plen,
            const rd_lists_t *lists, sy_value_t *out)
{
    bool changed = false;
    w->path.len = 0;
    if (plen && syc_buf_put(&w->path, prefix, plen) < 0) return SY_ENOMEM;
    int rc = walk_container(w, v, 0, lists, &changed);
    if (rc < 0 || w->oom) return SY_ENOMEM;
    if (!changed) return 0;
    if (w->api->value_container(v->type, (const uint8_t *)w->level[0].p, w->level[0].len, out) < 0)
        return SY_EINVAL;
    return 1;
}

void rd_walk_free(rd_walk_t *w)
{
    for (int i = 0; i <= RD_MAX_DEPTH; i++)
        free(w->level[i].p);
    free(w->path.p);
    free(w->store.p);
    free(w->text.p);
    memset(w, 0, sizeof(*w));
}
