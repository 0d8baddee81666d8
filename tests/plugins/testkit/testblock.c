/*
 * "testblock" (tests only), built three times from this one source as a
 * receiver, a processor and an exporter (TEST_KIND_RECEIVER / _PROCESSOR /
 * _EXPORTER): a plugin that hangs forever in the callback named by `block_in`
 * (create, start, consume, shutdown or destroy), so that tests can check that the
 * router still exits within its shutdown deadline.
 *
 * It blocks on a condition variable that nothing ever signals (spurious
 * wake-ups wait again), which is how a plugin stuck on a lock or a dead peer
 * looks to the host: the thread is alive, uses no CPU and never returns.
 * Otherwise it behaves as the smallest plugin of its kind: the processor hands
 * batches on, the exporter takes and releases them, the receiver sends nothing.
 */
#include <pthread.h>
#include <stdlib.h>

#include <switchyard/plugin.h>

#if defined(TEST_KIND_RECEIVER)
#define TEST_KIND SY_KIND_RECEIVER
#elif defined(TEST_KIND_PROCESSOR)
#define TEST_KIND SY_KIND_PROCESSOR
#elif defined(TEST_KIND_EXPORTER)
#define TEST_KIND SY_KIND_EXPORTER
#else
#error "define TEST_KIND_RECEIVER, TEST_KIND_PROCESSOR or TEST_KIND_EXPORTER"
#endif

enum { BLOCK_NONE, BLOCK_CREATE, BLOCK_START, BLOCK_CONSUME, BLOCK_SHUTDOWN, BLOCK_DESTROY };

static const char *const block_names[] = {"none",     "create",  "start", "consume",
                                          "shutdown", "destroy", NULL};

typedef struct cfg_s {
    int block_in;
} cfg_t;

static const sy_config_field_t fields[] = {
    {SY_CFG_FIELD("block_in", SY_CFG_ENUM, cfg_t, block_in), .default_value = "none",
     .description = "the callback that never returns", .enum_values = block_names},
};

typedef struct block_s {
    const sy_host_api_t *api;
    sy_instance_t *inst;
    const cfg_t *cfg;
} block_t;

static pthread_mutex_t never_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never_cond = PTHREAD_COND_INITIALIZER;

/* Never returns when `where` is the configured callback. */
static void maybe_block(const sy_host_api_t *api, sy_instance_t *inst, const cfg_t *cfg, int where)
{
    if (cfg->block_in != where) return;
    SY_LOG(api, inst, SY_LOG_WARN, "testblock: blocking forever in %s()", block_names[where]);
    pthread_mutex_lock(&never_mu);
    for (;;)
        pthread_cond_wait(&never_cond, &never_mu);
}

static int block_create(const sy_host_api_t *api, sy_instance_t *inst, const void *config,
                        void **state)
{
    maybe_block(api, inst, config, BLOCK_CREATE);
    block_t *b = calloc(1, sizeof(*b));
    if (!b) return SY_ENOMEM;
    b->api = api;
    b->inst = inst;
    b->cfg = config;
    *state = b;
    return SY_OK;
}

static int block_start(void *state)
{
    block_t *b = state;
    maybe_block(b->api, b->inst, b->cfg, BLOCK_START);
    return SY_OK;
}

#if !defined(TEST_KIND_RECEIVER)
static int block_consume(void *state, sy_batch_t *batch)
{
    block_t *b = state;
    maybe_block(b->api, b->inst, b->cfg, BLOCK_CONSUME);
#if defined(TEST_KIND_PROCESSOR)
    return b->api->emit(b->inst, batch);
#else
    b->api->batch_release(batch);
    return SY_OK;
#endif
}
#endif

static void block_shutdown(void *state)
{
    block_t *b = state;
    maybe_block(b->api, b->inst, b->cfg, BLOCK_SHUTDOWN);
}

static void block_destroy(void *state)
{
    block_t *b = state;
    maybe_block(b->api, b->inst, b->cfg, BLOCK_DESTROY);
    free(b);
}

static const sy_plugin_t descriptor = {
    .abi_major = SY_ABI_MAJOR,
    .abi_minor = SY_ABI_MINOR,
    .size = sizeof(sy_plugin_t),
    .kind = TEST_KIND,
    .type = "testblock",
    .signals = SY_SIGNAL_ALL,
    .version = "test",
    .description = "Test plugin: blocks forever in the callback named by block_in.",
    .config_fields = fields,
    .config_field_count = sizeof(fields) / sizeof(fields[0]),
    .config_size = sizeof(cfg_t),
    .create = block_create,
    .start = block_start,
#if !defined(TEST_KIND_RECEIVER)
    .consume = block_consume,
#endif
    .shutdown = block_shutdown,
    .destroy = block_destroy,
};

SY_PLUGIN_DEFINE(descriptor)
