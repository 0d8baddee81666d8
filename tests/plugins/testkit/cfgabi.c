/*
 * A processor for the configuration ABI tests (ABI 1.3), built several ways:
 *   CFGABI_OLD        minor 2 with a field table of the ABI 1.0 layout (seven
 *                     members, as a plugin built against 1.2 headers has): the
 *                     host must read it with the old element size
 *   CFGABI_BADOFFSET  a field whose offset lies past config_size: refused at load
 *   CFGABI_V2         a validate2() that reads a SY_CFG_RAW node and points at it
 *   TEST_TYPE         the type it declares
 * validate() refuses limit > 100 naming limit and label, which shows that the
 * host filled both members where the plugin reads them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <switchyard/plugin.h>

typedef struct cfg_s {
    int64_t limit;
    char *label;
    const sy_cfg_node_t *rules;
} cfg_t;

#ifdef CFGABI_OLD
/* sy_config_field_t as ABI 1.0 to 1.2 declared it. */
typedef struct old_field_s {
    const char *name;
    sy_cfg_type_t type;
    size_t offset;
    const char *default_value;
    bool required;
    const char *description;
    const char *const *enum_values;
} old_field_t;
_Static_assert(sizeof(old_field_t) == SY_CONFIG_FIELD_SIZE_1_0, "the 1.0 layout");
static const old_field_t fields[] = {
    {"limit", SY_CFG_INT, offsetof(cfg_t, limit), "7", false, "a number", NULL},
    {"label", SY_CFG_STRING, offsetof(cfg_t, label), "old", false, "a label", NULL},
    {"rules", SY_CFG_RAW, offsetof(cfg_t, rules), NULL, false, "anything", NULL},
};
#define TEST_MINOR 2
#else
static const sy_config_field_t fields[] = {
    {SY_CFG_FIELD("limit", SY_CFG_INT, cfg_t, limit), .default_value = "7", .min = "-5",
     .description = "a number"},
#ifdef CFGABI_BADOFFSET
    {.name = "label",
     .type = SY_CFG_STRING,
     .offset = sizeof(cfg_t),
     .description = "past the end"},
#else
    {SY_CFG_FIELD("label", SY_CFG_STRING, cfg_t, label), .default_value = "new",
     .pattern = "[a-z]+", .description = "a label"},
#endif
    {SY_CFG_FIELD("rules", SY_CFG_RAW, cfg_t, rules), .description = "anything"},
};
#define TEST_MINOR SY_ABI_MINOR
#endif

static int validate(const void *config, char *err, size_t err_len)
{
    const cfg_t *c = config;
    if (c->limit > 100) {
        snprintf(err, err_len, "limit %lld with label %s is over 100", (long long)c->limit,
                 c->label ? c->label : "(null)");
        return SY_EINVAL;
    }
    return SY_OK;
}

#ifdef CFGABI_V2
/* Refuses a rules list that holds "forbidden", pointing at that element. */
static int validate2(const sy_host_api_t *api, const sy_cfg_node_t *node, const void *config,
                     char *err, size_t err_len)
{
    const cfg_t *c = config;
    if (!node || api->cfg_get(node, "rules") != c->rules) {
        snprintf(err, err_len, "validate2 was not given the component's node");
        return SY_EINVAL;
    }
    for (size_t i = 0, n = c->rules ? api->cfg_len(c->rules) : 0; i < n; i++) {
        const sy_cfg_node_t *item = api->cfg_at(c->rules, i, NULL);
        const char *v = api->cfg_kind(item) == 's' ? api->cfg_scalar(item) : NULL;
        if (v && strcmp(v, "forbidden") == 0) {
            snprintf(err, err_len, "%s: rules[%zu] is forbidden", api->cfg_where(item), i);
            return SY_EINVAL;
        }
    }
    return SY_OK;
}
#endif

typedef struct {
    const sy_host_api_t *api;
    sy_instance_t *inst;
} state_t;

static int create(const sy_host_api_t *api, sy_instance_t *inst, const void *config, void **out)
{
    (void)config;
    state_t *s = calloc(1, sizeof(*s));
    if (!s) return SY_ENOMEM;
    s->api = api;
    s->inst = inst;
    *out = s;
    return SY_OK;
}

static int consume(void *state, sy_batch_t *b)
{
    state_t *s = state;
    return s->api->emit(s->inst, b);
}

static void destroy(void *state)
{
    free(state);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = TEST_MINOR,
#ifdef CFGABI_OLD
    /* A 1.2 descriptor ends after destroy (1.1 and 1.2 added host functions only). */
    .size = (uint32_t)(offsetof(sy_plugin_t, destroy) + sizeof(void (*)(void *))),
    .config_fields = (const sy_config_field_t *)(const void *)fields,
    .config_field_count = sizeof(fields) / sizeof(fields[0]),
#else
    .size = sizeof(sy_plugin_t),
    SY_CFG_TABLE(fields),
#endif
    .kind = SY_KIND_PROCESSOR,
    .type = TEST_TYPE,
    .signals = SY_SIGNAL_ALL,
    .version = "test",
#ifdef CFGABI_V2
    /* `components` must print this as valid YAML that reads back the same. */
    .description = "quotes \"q\", colon: yes\nnew line\ttab \\ backslash \x01 ctl \xff byte "
                   "# no comment \xc2\x85 nel \xc2\x90 c1 caf\xc3\xa9",
#endif
    .config_size = sizeof(cfg_t),
    .validate = validate,
#ifdef CFGABI_V2
    .validate2 = validate2,
#endif
    .create = create,
    .consume = consume,
    .destroy = destroy,
};

SY_PLUGIN_DEFINE(descriptor)
