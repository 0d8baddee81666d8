/*
 * Fuzz target: the YAML configuration loader and the service model.
 *
 * Loads the input as a configuration document, builds the otelcol service model,
 * fills a plugin-style struct from a table that has every field type, and renders
 * the tree back to YAML. Nothing may crash, hang or leak, whatever the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "diag.h"
#include "service_config.h"

typedef struct all_s {
    bool b;
    int64_t i;
    double d;
    char *s;
    int64_t dur;
    uint64_t size;
    int e;
    bool present;
    sy_cfg_strlist_t list;
    sy_cfg_strmap_t map;
    const sy_cfg_node_t *raw;
} all_t;

static const char *const enum_values[] = {"basic", "normal", "detailed", NULL};

static const sy_config_field_t fields[] = {
    {"b", SY_CFG_BOOL, offsetof(all_t, b), "true", false, "", NULL},
    {"i", SY_CFG_INT, offsetof(all_t, i), "5", false, "", NULL},
    {"d", SY_CFG_DOUBLE, offsetof(all_t, d), "0.5", false, "", NULL},
    {"s.t", SY_CFG_STRING, offsetof(all_t, s), "x", false, "", NULL},
    {"dur", SY_CFG_DURATION, offsetof(all_t, dur), "200ms", false, "", NULL},
    {"size", SY_CFG_SIZE, offsetof(all_t, size), "4MiB", false, "", NULL},
    {"e", SY_CFG_ENUM, offsetof(all_t, e), "basic", false, "", enum_values},
    {"p", SY_CFG_PRESENT, offsetof(all_t, present), NULL, false, "", NULL},
    {"p.list", SY_CFG_STRLIST, offsetof(all_t, list), NULL, false, "", NULL},
    {"p.map", SY_CFG_STRMAP, offsetof(all_t, map), NULL, false, "", NULL},
    {"raw", SY_CFG_RAW, offsetof(all_t, raw), NULL, false, "", NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    sy__diag_t diag;
    sy__diag_init(&diag);
    sy_cfg_node_t *root = sy__cfg_load_string("fuzz.yaml", text, &diag);
    if (root) {
        sy__service_cfg_t svc;
        memset(&svc, 0, sizeof(svc));
        sy__service_cfg_build(root, &svc, &diag);
        sy__service_cfg_free(&svc);
        const sy_cfg_node_t *receivers = sy__cfg_get(root, "receivers");
        for (size_t i = 0; receivers && i < sy__cfg_len(receivers); i++) {
            const char *key = NULL;
            const sy_cfg_node_t *node = sy__cfg_at(receivers, i, &key);
            all_t cfg;
            memset(&cfg, 0, sizeof(cfg));
            if (sy__cfg_fill(key ? key : "x", fields, sizeof(fields) / sizeof(fields[0]), node,
                             &cfg, &diag) == 0)
                sy__cfg_free_struct(fields, sizeof(fields) / sizeof(fields[0]), &cfg);
        }
        free(sy__cfg_to_yaml(root));
        sy__cfg_free(root);
    }
    sy__diag_free(&diag);
    free(text);
    return 0;
}
