/*
 * prom_relabel.c - label sets and Prometheus relabeling; see prom_relabel.h.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "prom_relabel.h"

#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- label sets ---------------------------------------------------------------- */

static size_t labels_find(const prom_labels_t *ls, const char *name, bool *found)
{
    size_t lo = 0, hi = ls->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(ls->v[mid].name, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

const char *prom_labels_get(const prom_labels_t *ls, const char *name)
{
    bool found;
    size_t i = labels_find(ls, name, &found);
    return found ? ls->v[i].value : NULL;
}

void prom_labels_del(prom_labels_t *ls, const char *name)
{
    bool found;
    size_t i = labels_find(ls, name, &found);
    if (!found) return;
    memmove(&ls->v[i], &ls->v[i + 1], (ls->n - i - 1) * sizeof(ls->v[0]));
    ls->n--;
}

int prom_labels_set(prom_labels_t *ls, const char *name, const char *value)
{
    if (!value || !*value) {
        prom_labels_del(ls, name);
        return 0;
    }
    char *v = prom_arena_strndup(ls->arena, value, strlen(value));
    if (!v) return -1;
    bool found;
    size_t i = labels_find(ls, name, &found);
    if (found) {
        ls->v[i].value = v;
        return 0;
    }
    char *nm = prom_arena_strndup(ls->arena, name, strlen(name));
    if (!nm) return -1;
    if (ls->n == ls->cap) {
        size_t cap = ls->cap ? ls->cap * 2 : 16;
        prom_label_t *grown = prom_arena_alloc(ls->arena, cap * sizeof(*grown));
        if (!grown) return -1;
        if (ls->n) memcpy(grown, ls->v, ls->n * sizeof(*grown));
        ls->v = grown;
        ls->cap = cap;
    }
    memmove(&ls->v[i + 1], &ls->v[i], (ls->n - i) * sizeof(ls->v[0]));
    ls->v[i].name = nm;
    ls->v[i].value = v;
    ls->n++;
    return 0;
}

/* ---- rules --------------------------------------------------------------------- */

static const char *const action_names[] = {
    [PROM_RL_REPLACE] = "replace",     [PROM_RL_KEEP] = "keep",
    [PROM_RL_DROP] = "drop",           [PROM_RL_KEEPEQUAL] = "keepequal",
    [PROM_RL_DROPEQUAL] = "dropequal", [PROM_RL_LABELMAP] = "labelmap",
    [PROM_RL_LABELDROP] = "labeldrop", [PROM_RL_LABELKEEP] = "labelkeep",
    [PROM_RL_LOWERCASE] = "lowercase", [PROM_RL_UPPERCASE] = "uppercase",
};

int prom_relabel_action_parse(const char *name)
{
    for (size_t i = 0; i < sizeof(action_names) / sizeof(action_names[0]); i++)
        if (!strcasecmp(name, action_names[i])) return (int)i;
    return -1;
}

static char *dup_or(const char *s, const char *dflt)
{
    return strdup(s ? s : dflt);
}

int prom_relabel_compile(prom_relabel_t *r, char *err, size_t err_len)
{
    if (!r->separator) r->separator = dup_or(NULL, ";");
    if (!r->regex) r->regex = dup_or(NULL, "(.*)");
    if (!r->replacement) r->replacement = dup_or(NULL, "$1");
    if (!r->separator || !r->regex || !r->replacement) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    const char *an = action_names[r->action];
    switch (r->action) {
    case PROM_RL_REPLACE:
    case PROM_RL_LOWERCASE:
    case PROM_RL_UPPERCASE:
    case PROM_RL_KEEPEQUAL:
    case PROM_RL_DROPEQUAL:
        if (!r->target_label || !*r->target_label) {
            snprintf(err, err_len,
                     "relabel configuration for %s action requires 'target_label' value", an);
            return -1;
        }
        break;
    case PROM_RL_LABELDROP:
    case PROM_RL_LABELKEEP:
        if (r->nsource || r->target_label || strcmp(r->replacement, "$1") ||
            strcmp(r->separator, ";")) {
            snprintf(err, err_len, "%s action requires only 'regex', and no other fields", an);
            return -1;
        }
        break;
    default:
        break;
    }
    if ((r->action == PROM_RL_LOWERCASE || r->action == PROM_RL_UPPERCASE ||
         r->action == PROM_RL_KEEPEQUAL || r->action == PROM_RL_DROPEQUAL) &&
        !prom_valid_label_name(r->target_label, strlen(r->target_label))) {
        snprintf(err, err_len, "\"%s\" is invalid 'target_label' for %s action", r->target_label,
                 an);
        return -1;
    }
    size_t rl = strlen(r->regex);
    char *anchored = malloc(rl + 16);
    if (!anchored) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    /* Prometheus anchors with ^(?:...)$ in RE2, where $ is the end of the text;
     * PCRE2's $ would also match before a final newline, \z does not. */
    snprintf(anchored, rl + 16, "^(?:%s)\\z", r->regex);
    int ec;
    PCRE2_SIZE off;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)anchored, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &off, NULL);
    free(anchored);
    if (!re) {
        char msg[256];
        pcre2_get_error_message(ec, (PCRE2_UCHAR *)msg, sizeof(msg));
        snprintf(err, err_len, "invalid regex \"%s\": %s", r->regex, msg);
        return -1;
    }
    r->re = re;
    r->md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!r->md) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    return 0;
}

void prom_relabel_free(prom_relabel_t *r)
{
    for (size_t i = 0; i < r->nsource; i++)
        free(r->source_labels[i]);
    free(r->source_labels);
    free(r->separator);
    free(r->regex);
    free(r->target_label);
    free(r->replacement);
    if (r->md) pcre2_match_data_free(r->md);
    if (r->re) pcre2_code_free(r->re);
    memset(r, 0, sizeof(*r));
}

/* ---- applying ------------------------------------------------------------------ */

/* A growable string in the arena (strings are short: a label's worth). */
typedef struct buf_s {
    char *p;
    size_t n, cap;
    prom_arena_t *arena;
} buf_t;

static int buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = prom_arena_alloc(b->arena, cap);
        if (!p) return -1;
        if (b->n) memcpy(p, b->p, b->n);
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

static bool matches(prom_relabel_t *r, const char *s)
{
    return pcre2_match(r->re, (PCRE2_SPTR)s, strlen(s), 0, 0, r->md, NULL) >= 0;
}

/* Go's regexp.Expand of tmpl with the groups of the last match of r on subject. */
static int expand(prom_relabel_t *r, const char *tmpl, const char *subject, buf_t *out)
{
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    uint32_t groups = pcre2_get_ovector_count(r->md);
    for (const char *t = tmpl; *t;) {
        const char *dollar = strchr(t, '$');
        if (!dollar) return buf_add(out, t, strlen(t));
        if (buf_add(out, t, (size_t)(dollar - t)) != 0) return -1;
        t = dollar + 1;
        if (*t == '$') {
            if (buf_add(out, "$", 1) != 0) return -1;
            t++;
            continue;
        }
        const char *name = t, *name_end;
        bool brace = *t == '{';
        if (brace) name = ++t;
        name_end = name;
        while (isalnum((unsigned char)*name_end) || *name_end == '_')
            name_end++;
        if (name_end == name || (brace && *name_end != '}')) {
            /* Malformed: the dollar is text. */
            if (buf_add(out, "$", 1) != 0) return -1;
            t = dollar + 1;
            continue;
        }
        t = name_end + (brace ? 1 : 0);
        size_t nl = (size_t)(name_end - name);
        long idx = -1;
        bool digits = true;
        for (size_t i = 0; i < nl; i++)
            if (!isdigit((unsigned char)name[i])) digits = false;
        if (digits) {
            idx = nl > 9 ? -1 : strtol(name, NULL, 10);
        } else {
            char nm[128];
            if (nl < sizeof(nm)) {
                memcpy(nm, name, nl);
                nm[nl] = '\0';
                int n = pcre2_substring_number_from_name(r->re, (PCRE2_SPTR)nm);
                idx = n > 0 ? n : -1;
            }
        }
        if (idx < 0 || (uint32_t)idx >= groups || ov[2 * idx] == PCRE2_UNSET) continue;
        if (buf_add(out, subject + ov[2 * idx], ov[2 * idx + 1] - ov[2 * idx]) != 0) return -1;
    }
    return 0;
}

static int concat_sources(const prom_relabel_t *r, const prom_labels_t *ls, buf_t *val)
{
    if (buf_add(val, "", 0) != 0) return -1;
    for (size_t i = 0; i < r->nsource; i++) {
        if (i && buf_add(val, r->separator, strlen(r->separator)) != 0) return -1;
        const char *v = prom_labels_get(ls, r->source_labels[i]);
        if (v && buf_add(val, v, strlen(v)) != 0) return -1;
    }
    return 0;
}

static int apply_one(prom_relabel_t *r, prom_labels_t *ls)
{
    buf_t val = {.arena = ls->arena};
    if (concat_sources(r, ls, &val) != 0) return -1;
    switch (r->action) {
    case PROM_RL_KEEP:
        return matches(r, val.p) ? 1 : 0;
    case PROM_RL_DROP:
        return matches(r, val.p) ? 0 : 1;
    case PROM_RL_KEEPEQUAL:
    case PROM_RL_DROPEQUAL: {
        const char *t = prom_labels_get(ls, r->target_label);
        bool eq = !strcmp(val.p, t ? t : "");
        return (r->action == PROM_RL_KEEPEQUAL) == eq ? 1 : 0;
    }
    case PROM_RL_REPLACE: {
        if (!matches(r, val.p)) return 1;
        buf_t target = {.arena = ls->arena}, res = {.arena = ls->arena};
        if (buf_add(&target, "", 0) != 0 || buf_add(&res, "", 0) != 0) return -1;
        if (expand(r, r->target_label, val.p, &target) != 0) return -1;
        if (!prom_valid_label_name(target.p, target.n)) return 1;
        if (expand(r, r->replacement, val.p, &res) != 0) return -1;
        return prom_labels_set(ls, target.p, res.p) == 0 ? 1 : -1;
    }
    case PROM_RL_LOWERCASE:
    case PROM_RL_UPPERCASE:
        for (size_t i = 0; i < val.n; i++)
            val.p[i] = (char)(r->action == PROM_RL_LOWERCASE ? tolower((unsigned char)val.p[i])
                                                             : toupper((unsigned char)val.p[i]));
        return prom_labels_set(ls, r->target_label, val.p) == 0 ? 1 : -1;
    case PROM_RL_LABELMAP: {
        /* Over a snapshot: labels added here are not matched again. */
        size_t n = ls->n;
        prom_label_t *snap = prom_arena_alloc(ls->arena, (n ? n : 1) * sizeof(*snap));
        if (!snap) return -1;
        if (n) memcpy(snap, ls->v, n * sizeof(*snap));
        for (size_t i = 0; i < n; i++) {
            if (!matches(r, snap[i].name)) continue;
            buf_t name = {.arena = ls->arena};
            if (buf_add(&name, "", 0) != 0 || expand(r, r->replacement, snap[i].name, &name) != 0)
                return -1;
            if (!prom_valid_label_name(name.p, name.n)) continue;
            if (prom_labels_set(ls, name.p, snap[i].value) != 0) return -1;
        }
        return 1;
    }
    case PROM_RL_LABELDROP:
    case PROM_RL_LABELKEEP:
        for (size_t i = 0; i < ls->n;) {
            bool m = matches(r, ls->v[i].name);
            if (m == (r->action == PROM_RL_LABELDROP)) {
                memmove(&ls->v[i], &ls->v[i + 1], (ls->n - i - 1) * sizeof(ls->v[0]));
                ls->n--;
            } else {
                i++;
            }
        }
        return 1;
    }
    return 1;
}

int prom_relabel_apply(prom_relabel_t *rules, size_t n, prom_labels_t *ls)
{
    for (size_t i = 0; i < n; i++) {
        int rc = apply_one(&rules[i], ls);
        if (rc <= 0) return rc;
    }
    return 1;
}
