/*
 * config_expand.c - environment references in scalar values: ${env:VAR},
 * ${env:VAR:-default}, ${VAR}, ${VAR:-default} and $$ for a literal $. A plain
 * scalar that is exactly one reference takes the value's YAML type (a number, a
 * flow list or map); everything else is text.
 */
#include "config_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One expansion of one tree: where errors go, and how much the expansion has
 * produced so far, so that a reference used many times (or a value that is a huge
 * flow list) cannot make the configuration unbounded. */
typedef struct expand_s {
    sy__diag_t *diag;
    size_t bytes; /* of the scalars expanded so far (their text after expansion) */
    size_t nodes; /* of the tree, counting nodes that typed values added */
    bool limited; /* a bound was hit or memory ran out: stop, reported once */
} expand_t;

/* Reports that the expanded text would pass SY__CFG_MAX_EXPANDED. */
static int expand_too_large(expand_t *x, const sy_cfg_node_t *at, const char *body, size_t n)
{
    sy__diag_add(x->diag, at,
                 "environment references expand the configuration beyond %u MiB (at \"${%.*s}\"); "
                 "is a large variable used many times?",
                 SY__CFG_MAX_EXPANDED >> 20, (int)(n > 64 ? 64 : n), body);
    x->limited = true;
    return -1;
}

/* Appends a reference's value, unless that takes the expansion past its bound. */
static int expand_put(expand_t *x, const sy_cfg_node_t *at, const char *body, size_t n,
                      sy__cfg_buf_t *out, const char *val, size_t len)
{
    if (len > SY__CFG_MAX_EXPANDED || x->bytes + out->len + len > SY__CFG_MAX_EXPANDED)
        return expand_too_large(x, at, body, n);
    if (sy__cfg_buf_put(out, val, len) < 0) {
        sy__diag_add(x->diag, at, "out of memory expanding \"${%.*s}\"", (int)(n > 64 ? 64 : n),
                     body);
        x->limited = true; /* the next reference would fail the same way */
        return -1;
    }
    return 0;
}

static bool is_env_name(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool is_scheme(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z'))) return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '.' || s[i] == '-'))
            return false;
    return true;
}

/*
 * Resolves the reference "${body}" (body is the text between the braces) into
 * out. Returns 0 or -1 (error reported at `at`).
 */
static int expand_reference(expand_t *x, const char *body, size_t n, const sy_cfg_node_t *at,
                            sy__cfg_buf_t *out)
{
    sy__diag_t *d = x->diag;
    const char *name = body, *def = NULL;
    size_t name_len = n, def_len = 0;
    const char *colon = memchr(body, ':', n);

    if (colon) {
        size_t pre = (size_t)(colon - body);
        if (pre + 1 < n && colon[1] == '-' && is_env_name(body, pre)) {
            /* ${VAR:-default}: the default scheme, with a default value. */
            name_len = pre;
            def = colon + 2;
            def_len = n - pre - 2;
        } else if (pre == 3 && !memcmp(body, "env", 3)) {
            /* ${env:VAR} or ${env:VAR:-default}. */
            name = colon + 1;
            name_len = n - pre - 1;
            for (size_t i = 0; i + 1 < name_len; i++) {
                if (name[i] == ':' && name[i + 1] == '-') {
                    def = name + i + 2;
                    def_len = name_len - i - 2;
                    name_len = i;
                    break;
                }
            }
        } else if (is_scheme(body, pre)) {
            sy__diag_add(d, at,
                         "unsupported reference \"${%.*s}\": scheme \"%.*s\" is not supported "
                         "(only env is; write $$ for a literal $)",
                         (int)n, body, (int)pre, body);
            return -1;
        }
    }
    if (!is_env_name(name, name_len)) {
        sy__diag_add(d, at,
                     "invalid environment variable name \"%.*s\" in \"${%.*s}\": a name must "
                     "match ^[a-zA-Z_][a-zA-Z0-9_]*$",
                     (int)name_len, name, (int)n, body);
        return -1;
    }
    char var[256];
    if (name_len >= sizeof(var)) {
        sy__diag_add(d, at, "environment variable name in \"${%.*s}\" is too long", (int)n, body);
        return -1;
    }
    memcpy(var, name, name_len);
    var[name_len] = '\0';
    const char *val = getenv(var);
    if (!val && def) return expand_put(x, at, body, n, out, def, def_len);
    if (!val) {
        sy__diag_warn(d, at,
                      "environment variable \"%s\" is not set; it expands to an empty string", var);
        return 0;
    }
    return expand_put(x, at, body, n, out, val, strlen(val));
}

/*
 * Expands one scalar. *single tells whether the whole scalar was exactly one
 * reference. Returns 0 with *out allocated, or -1.
 */
static int expand_scalar(expand_t *x, const char *s, const sy_cfg_node_t *at, char **out,
                         bool *single)
{
    sy__diag_t *d = x->diag;
    sy__cfg_buf_t b = {0};
    size_t nrefs = 0;
    bool literal = false;

    if (sy__cfg_buf_put(&b, "", 0) < 0) goto nomem;
    for (const char *c = s; *c;) {
        const char *dollar = strchr(c, '$');
        if (!dollar) {
            literal = true;
            if (sy__cfg_buf_put(&b, c, strlen(c)) < 0) goto nomem;
            break;
        }
        if (dollar > c) {
            literal = true;
            if (sy__cfg_buf_put(&b, c, (size_t)(dollar - c)) < 0) goto nomem;
        }
        if (dollar[1] == '$') {
            literal = true;
            if (sy__cfg_buf_put(&b, "$", 1) < 0) goto nomem;
            c = dollar + 2;
        } else if (dollar[1] == '{') {
            const char *end = strchr(dollar + 2, '}');
            if (!end) {
                sy__diag_add(d, at,
                             "malformed reference \"%s\": no closing '}' (write $$ for a "
                             "literal $)",
                             dollar);
                goto fail;
            }
            if (expand_reference(x, dollar + 2, (size_t)(end - dollar - 2), at, &b) < 0) goto fail;
            nrefs++;
            c = end + 1;
        } else {
            /* A lone $ (or $VAR, which otelcol no longer expands) stays as it is. */
            literal = true;
            if (sy__cfg_buf_put(&b, "$", 1) < 0) goto nomem;
            c = dollar + 1;
        }
    }
    *single = nrefs == 1 && !literal;
    x->bytes += b.len;
    *out = b.data;
    return 0;
nomem:
    sy__diag_add(d, at, "out of memory");
    x->limited = true;
fail:
    free(b.data);
    return -1;
}

/* The value of a whole-scalar reference, read as YAML: a scalar, null, or a flow
 * list or map ("[a, b]"). Anything else (block YAML, a parse error) is taken as a
 * string, so that a value like "a: b" stays the text it is. NULL means "use the
 * text". */
static sy_cfg_node_t *typed_value(const char *text, const sy_cfg_node_t *at)
{
    const char *t = text + strspn(text, " \t");
    sy__diag_t scratch;
    sy__diag_init(&scratch);
    sy_cfg_node_t *v = sy__cfg_parse_string(at->file, text, strlen(text), &scratch);
    sy__diag_free(&scratch);
    if (!v) return NULL;
    if ((v->kind == SY__CFG_MAP && *t != '{') || (v->kind == SY__CFG_LIST && *t != '[') ||
        sy__cfg_node_relocate(v, at) < 0) {
        sy__cfg_free(v);
        return NULL;
    }
    return v;
}

/* Nodes in a subtree, map keys included (as the parser counts them). */
static size_t count_nodes(const sy_cfg_node_t *n)
{
    size_t c = 1;
    for (size_t i = 0; i < n->len; i++)
        c += count_nodes(n->items[i]) + (n->key_nodes ? 1 : 0);
    return c;
}

static int expand_node(expand_t *x, sy_cfg_node_t **np)
{
    sy_cfg_node_t *n = *np;
    int rc = 0;

    if (n->kind == SY__CFG_MAP || n->kind == SY__CFG_LIST) {
        for (size_t i = 0; i < n->len && !x->limited; i++)
            if (expand_node(x, &n->items[i]) < 0) rc = -1;
        return x->limited ? -1 : rc;
    }
    if (n->kind != SY__CFG_SCALAR || !strchr(n->scalar, '$')) return 0;

    char *text;
    bool single;
    if (expand_scalar(x, n->scalar, n, &text, &single) < 0) return -1;
    if (single && !n->quoted) {
        sy_cfg_node_t *v = typed_value(text, n);
        if (v) {
            /* The value replaces one node; its own nodes count toward the bound. */
            size_t k = count_nodes(v);
            x->nodes += k - 1;
            if (k > 1 && x->nodes > SY__CFG_MAX_NODES) {
                sy__diag_add(x->diag, n,
                             "environment references make the document more than %d nodes",
                             SY__CFG_MAX_NODES);
                x->limited = true;
                sy__cfg_free(v);
                free(text);
                return -1;
            }
            free(text);
            sy__cfg_free(n);
            *np = v;
            return 0;
        }
        n->quoted = true; /* the text is a string whatever it looks like */
    }
    free(n->scalar);
    n->scalar = text;
    return 0;
}

int sy__cfg_expand_env(sy_cfg_node_t **np, sy__diag_t *diag)
{
    expand_t x = {.diag = diag, .nodes = count_nodes(*np)};
    return expand_node(&x, np);
}
