/*
 * A processor built in several wrong (and one old) ways, for the loader's tests:
 *   TEST_ABI_MAJOR    the major version it claims
 *   TEST_ABI_MINOR    the minor version it claims
 *   TEST_OLD_SIZE     claim the size of an ABI 1.0 descriptor only
 *   TEST_TYPE         the type it declares
 *   TEST_NO_ENTRY     export no entry symbol at all
 *   TEST_MIN_HOST_MINOR  the oldest host minor it declares it needs (ABI 1.5)
 */
#include <stdlib.h>

#include <switchyard/plugin.h>

#ifndef TEST_ABI_MAJOR
#define TEST_ABI_MAJOR SY_ABI_MAJOR
#endif
#ifndef TEST_ABI_MINOR
#define TEST_ABI_MINOR SY_ABI_MINOR
#endif
#ifdef TEST_OLD_SIZE
#define TEST_SIZE (offsetof(sy_plugin_t, destroy) + sizeof(void (*)(void *)))
#else
#define TEST_SIZE sizeof(sy_plugin_t)
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
    .abi_major = TEST_ABI_MAJOR,
    .abi_minor = TEST_ABI_MINOR,
    .size = (uint32_t)TEST_SIZE,
    .kind = SY_KIND_PROCESSOR,
    .type = TEST_TYPE,
    .signals = SY_SIGNAL_ALL,
    .version = "test",
    .create = create,
    .consume = consume,
    .destroy = destroy,
#ifdef TEST_MIN_HOST_MINOR
    .min_host_minor = TEST_MIN_HOST_MINOR,
#endif
};

#ifndef TEST_NO_ENTRY
SY_PLUGIN_DEFINE(descriptor)
#else
SY_EXPORT const sy_plugin_t *not_the_entry(void);
SY_EXPORT const sy_plugin_t *not_the_entry(void)
{
    return &descriptor;
}
#endif
