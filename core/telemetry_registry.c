/*
 * telemetry_registry.c - the metrics registry: validating names and label lists,
 * registering and unregistering series (grouped into families by exposed name),
 * and the lock-free counters and gauges themselves. Rendering the registry is in
 * telemetry_render.c; serving it, in telemetry.c.
 */
#include "telemetry_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

pthread_mutex_t sy__registry_mu = PTHREAD_MUTEX_INITIALIZER;
sy__family_t *sy__families;

/* A labelled metric's description (ABI 1.7); its series are plain metrics. */
struct sy_labelled_metric_s {
    char *name, *help, *inst_labels;
    sy_metric_type_t type;
    char **label_names;
    size_t n;
    struct sy_labelled_metric_s *next;
};
/* Every labelled metric registered; guarded by sy__registry_mu. */
static sy_labelled_metric_t *sy__labelled;

static bool sy__is_name_char(char c, bool first, bool colon_ok)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
    if (c == ':' && colon_ok) return true;
    return !first && c >= '0' && c <= '9';
}

static bool sy__valid_name(const char *s, bool colon_ok)
{
    if (s == NULL || *s == '\0') return false;
    for (size_t i = 0; s[i] != '\0'; i++)
        if (!sy__is_name_char(s[i], i == 0, colon_ok)) return false;
    return true;
}

/*
 * Checks a label list: name="value"(,name="value")*, where a value holds no raw
 * '"' or newline and a backslash starts one of \\ \" \n. Empty is valid.
 */
static bool sy__valid_labels(const char *s)
{
    const char *p = s;
    if (*p == '\0') return true;
    for (;;) {
        if (!sy__is_name_char(*p, true, false)) return false;
        while (sy__is_name_char(*p, false, false))
            p++;
        if (p[0] != '=' || p[1] != '"') return false;
        p += 2;
        for (; *p != '"'; p++) {
            if (*p == '\0' || *p == '\n') return false;
            if (*p == '\\') {
                p++;
                if (*p != '\\' && *p != '"' && *p != 'n') return false;
            }
        }
        p++;
        if (*p == '\0') return true;
        if (*p != ',') return false;
        p++;
    }
}

static bool sy__label_put(char *buf, size_t cap, size_t *pos, const char *key, const char *value);

char *sy__metric_labels(char *buf, size_t cap, ...)
{
    va_list ap;
    size_t pos = 0;
    if (cap == 0) return NULL;
    buf[0] = '\0';
    va_start(ap, cap);
    for (const char *key; (key = va_arg(ap, const char *)) != NULL;) {
        const char *value = va_arg(ap, const char *);
        if (!sy__valid_name(key, false) || !sy__label_put(buf, cap, &pos, key, value)) {
            va_end(ap);
            buf[0] = '\0';
            return NULL;
        }
    }
    va_end(ap);
    return buf;
}

/* Appends key="escaped value" (with a ',' before it when pos > 0) at buf + *pos.
 * False when it does not fit. */
static bool sy__label_put(char *buf, size_t cap, size_t *pos, const char *key, const char *value)
{
    int n = snprintf(buf + *pos, cap - *pos, "%s%s=\"", *pos > 0 ? "," : "", key);
    if (n < 0 || (size_t)n >= cap - *pos) return false;
    *pos += (size_t)n;
    for (const char *v = value != NULL ? value : ""; *v != '\0'; v++) {
        const char *esc = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        size_t need = esc != NULL ? 2 : 1;
        if (*pos + need >= cap) return false;
        if (esc != NULL)
            memcpy(buf + *pos, esc, 2);
        else
            buf[*pos] = *v;
        *pos += need;
    }
    if (*pos + 1 >= cap) return false;
    buf[(*pos)++] = '"';
    buf[*pos] = '\0';
    return true;
}

static bool sy__ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

/* Finds or creates the family of `full`; NULL on a type clash or out of memory.
 * Registry mutex held. */
static sy__family_t *sy__family_get(const char *full, const char *help, sy_metric_type_t type)
{
    sy__family_t **link = &sy__families;
    while (*link != NULL && strcmp((*link)->name, full) < 0)
        link = &(*link)->next;
    if (*link != NULL && strcmp((*link)->name, full) == 0) {
        if ((*link)->type != type) {
            sy__log("telemetry", SY_LOG_ERROR,
                    "metric %s is registered as a %s already; refusing it as a %s", full,
                    (*link)->type == SY_METRIC_COUNTER ? "counter" : "gauge",
                    type == SY_METRIC_COUNTER ? "counter" : "gauge");
            return NULL;
        }
        return *link;
    }
    sy__family_t *f = calloc(1, sizeof *f);
    if (f == NULL) return NULL;
    f->name = strdup(full);
    f->help = strndup(help != NULL ? help : "", SY__METRIC_HELP_MAX);
    if (f->name == NULL || f->help == NULL) {
        free(f->name);
        free(f->help);
        free(f);
        return NULL;
    }
    f->type = type;
    f->next = *link;
    *link = f;
    return f;
}

static void sy__family_free_if_empty(sy__family_t *family)
{
    if (family->series != NULL) return;
    for (sy__family_t **link = &sy__families; *link != NULL; link = &(*link)->next) {
        if (*link == family) {
            *link = family->next;
            free(family->name);
            free(family->help);
            free(family);
            return;
        }
    }
}

static sy_metric_t *sy__register(const char *name, const char *help, sy_metric_type_t type,
                                 const char *labels, sy__gauge_fn fn, sy__gauge_double_fn dfn,
                                 void *arg)
{
    char full[SY__METRIC_NAME_MAX + 1];
    if (labels == NULL) labels = "";
    if (!sy__valid_name(name, true) || (type != SY_METRIC_COUNTER && type != SY_METRIC_GAUGE)) {
        sy__log("telemetry", SY_LOG_ERROR, "invalid metric name or type: \"%.100s\"",
                name != NULL ? name : "(null)");
        return NULL;
    }
    const char *suffix =
        type == SY_METRIC_COUNTER && !sy__ends_with(name, "_total") ? "_total" : "";
    int n = snprintf(full, sizeof full, "%s%s%s", SY__METRIC_PREFIX, name, suffix);
    if (n < 0 || (size_t)n >= sizeof full) {
        sy__log("telemetry", SY_LOG_ERROR, "metric name is too long: \"%.100s...\"", name);
        return NULL;
    }
    if (strlen(labels) > SY__METRIC_LABELS_MAX || !sy__valid_labels(labels)) {
        sy__log("telemetry", SY_LOG_ERROR, "metric %s: malformed labels: %.200s", full, labels);
        return NULL;
    }

    pthread_mutex_lock(&sy__registry_mu);
    sy_metric_t *m = NULL;
    sy__family_t *f = sy__family_get(full, help, type);
    if (f == NULL) goto out;
    sy_metric_t **link = &f->series;
    while (*link != NULL && strcmp((*link)->labels, labels) < 0)
        link = &(*link)->next;
    if (*link != NULL && strcmp((*link)->labels, labels) == 0) {
        m = *link;
        if (fn != NULL || dfn != NULL) {
            m->fn = fn;
            m->dfn = dfn;
            m->arg = arg;
        }
        goto out;
    }
    m = calloc(1, sizeof *m);
    if (m == NULL || (m->labels = strdup(labels)) == NULL) {
        free(m);
        m = NULL;
        sy__family_free_if_empty(f);
        goto out;
    }
    atomic_init(&m->value, 0);
    m->family = f;
    m->fn = fn;
    m->dfn = dfn;
    m->arg = arg;
    m->next = *link;
    *link = m;
out:
    pthread_mutex_unlock(&sy__registry_mu);
    return m;
}

sy_metric_t *sy__metric_register(const char *name, const char *help, sy_metric_type_t type,
                                 const char *labels)
{
    return sy__register(name, help, type, labels, NULL, NULL, NULL);
}

sy_metric_t *sy__metric_register_fn(const char *name, const char *help, sy_metric_type_t type,
                                    const char *labels, sy__gauge_fn fn, void *arg)
{
    if (fn == NULL) return NULL;
    return sy__register(name, help, type, labels, fn, NULL, arg);
}

sy_metric_t *sy__metric_register_fn_double(const char *name, const char *help,
                                           sy_metric_type_t type, const char *labels,
                                           sy__gauge_double_fn fn, void *arg)
{
    if (fn == NULL) return NULL;
    return sy__register(name, help, type, labels, NULL, fn, arg);
}

static void sy__labelled_free(sy_labelled_metric_t *lm)
{
    if (lm == NULL) return;
    for (size_t i = 0; lm->label_names != NULL && i < lm->n; i++)
        free(lm->label_names[i]);
    free(lm->label_names);
    free(lm->name);
    free(lm->help);
    free(lm->inst_labels);
    free(lm);
}

/* Whether the label list `labels` (valid) has a label called `key`. */
static bool sy__labels_have(const char *labels, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = labels; *p != '\0';) {
        if (strncmp(p, key, klen) == 0 && p[klen] == '=') return true;
        p = strchr(p, '"') + 1; /* the value's opening quote */
        while (*p != '"')
            p += *p == '\\' ? 2 : 1;
        p++;
        if (*p == ',') p++;
    }
    return false;
}

sy_labelled_metric_t *sy__metric_register_labelled(const char *name, const char *help,
                                                   sy_metric_type_t type, const char *labels,
                                                   const char *const *label_names, size_t n)
{
    if (labels == NULL) labels = "";
    if (!sy__valid_name(name, true) || (type != SY_METRIC_COUNTER && type != SY_METRIC_GAUGE) ||
        (n > 0 && label_names == NULL) || n > 32 || !sy__valid_labels(labels)) {
        sy__log("telemetry", SY_LOG_ERROR, "invalid labelled metric \"%.100s\"",
                name != NULL ? name : "(null)");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *k = label_names[i];
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = strcmp(label_names[j], k) == 0;
        if (!sy__valid_name(k, false) || strncmp(k, "__", 2) == 0 || dup ||
            sy__labels_have(labels, k)) {
            sy__log("telemetry", SY_LOG_ERROR,
                    "metric %.100s: label name \"%.100s\" is invalid, reserved or repeated", name,
                    k != NULL ? k : "(null)");
            return NULL;
        }
    }
    pthread_mutex_lock(&sy__registry_mu);
    sy_labelled_metric_t *lm;
    for (lm = sy__labelled; lm != NULL; lm = lm->next) {
        if (strcmp(lm->name, name) != 0 || strcmp(lm->inst_labels, labels) != 0 || lm->n != n ||
            lm->type != type)
            continue;
        size_t i = 0;
        while (i < n && strcmp(lm->label_names[i], label_names[i]) == 0)
            i++;
        if (i == n) goto out;
    }
    lm = calloc(1, sizeof *lm);
    if (lm == NULL) goto out;
    lm->type = type;
    lm->n = n;
    lm->name = strdup(name);
    lm->help = strndup(help != NULL ? help : "", SY__METRIC_HELP_MAX);
    lm->inst_labels = strdup(labels);
    lm->label_names = calloc(n ? n : 1, sizeof *lm->label_names);
    bool ok = lm->name && lm->help && lm->inst_labels && lm->label_names;
    for (size_t i = 0; ok && i < n; i++)
        ok = (lm->label_names[i] = strdup(label_names[i])) != NULL;
    if (!ok) {
        sy__labelled_free(lm);
        lm = NULL;
        goto out;
    }
    lm->next = sy__labelled;
    sy__labelled = lm;
out:
    pthread_mutex_unlock(&sy__registry_mu);
    return lm;
}

sy_metric_t *sy__metric_series(sy_labelled_metric_t *lm, const char *const *label_values)
{
    if (lm == NULL || (lm->n > 0 && label_values == NULL)) return NULL;
    char buf[SY__METRIC_LABELS_MAX + 1];
    size_t pos = strlen(lm->inst_labels);
    if (pos > SY__METRIC_LABELS_MAX) return NULL;
    memcpy(buf, lm->inst_labels, pos + 1);
    for (size_t i = 0; i < lm->n; i++) {
        if (!sy__label_put(buf, sizeof buf, &pos, lm->label_names[i], label_values[i])) {
            sy__log("telemetry", SY_LOG_ERROR, "metric %.100s: label values too long", lm->name);
            return NULL;
        }
    }
    return sy__metric_register(lm->name, lm->help, lm->type, buf);
}

void sy__metric_unregister_bound(sy_metric_t *metric, const void *arg)
{
    if (metric == NULL) return;
    pthread_mutex_lock(&sy__registry_mu);
    bool mine = metric->arg == arg;
    pthread_mutex_unlock(&sy__registry_mu);
    if (mine) sy__metric_unregister(metric);
}

void sy__metric_unregister(sy_metric_t *metric)
{
    if (metric == NULL) return;
    pthread_mutex_lock(&sy__registry_mu);
    sy__family_t *f = metric->family;
    for (sy_metric_t **link = &f->series; *link != NULL; link = &(*link)->next) {
        if (*link == metric) {
            *link = metric->next;
            break;
        }
    }
    sy__family_free_if_empty(f);
    pthread_mutex_unlock(&sy__registry_mu);
    free(metric->labels);
    free(metric);
}

void sy__metric_add(sy_metric_t *metric, int64_t delta)
{
    if (metric != NULL) atomic_fetch_add_explicit(&metric->value, delta, memory_order_relaxed);
}

void sy__metric_set(sy_metric_t *metric, int64_t value)
{
    if (metric != NULL) atomic_store_explicit(&metric->value, value, memory_order_relaxed);
}

int64_t sy__metric_value(const sy_metric_t *metric)
{
    if (metric == NULL) return 0;
    if (metric->fn != NULL) return metric->fn(metric->arg);
    if (metric->dfn != NULL) return (int64_t)metric->dfn(metric->arg);
    /* The cast drops const: C11 atomic_load takes a non-const pointer. */
    return atomic_load_explicit((_Atomic int64_t *)&metric->value, memory_order_relaxed);
}

void sy__metrics_free_all(void)
{
    pthread_mutex_lock(&sy__registry_mu);
    sy__family_t *f = sy__families;
    sy__families = NULL;
    sy_labelled_metric_t *lm = sy__labelled;
    sy__labelled = NULL;
    pthread_mutex_unlock(&sy__registry_mu);
    while (lm != NULL) {
        sy_labelled_metric_t *next = lm->next;
        sy__labelled_free(lm);
        lm = next;
    }
    while (f != NULL) {
        sy__family_t *next_f = f->next;
        for (sy_metric_t *m = f->series, *next_m; m != NULL; m = next_m) {
            next_m = m->next;
            free(m->labels);
            free(m);
        }
        free(f->name);
        free(f->help);
        free(f);
        f = next_f;
    }
}
