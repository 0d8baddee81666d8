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
    {SY_CFG_FIELD("b", SY_CFG_BOOL, all_t, b), .default_value = "true", .description = ""},
    {SY_CFG_FIELD("i", SY_CFG_INT, all_t, i), .default_value = "5", .min = "-100", .max = "0x7fff",
     .description = ""},
    {SY_CFG_FIELD("d", SY_CFG_DOUBLE, all_t, d), .default_value = "0.5", .min = "-1.5",
     .max = "1e9", .description = ""},
    {SY_CFG_FIELD("s.t", SY_CFG_STRING, all_t, s), .default_value = "x", .max = "64",
     .pattern = "[a-z0-9_.]*|x(y|z)+", .description = ""},
    {SY_CFG_FIELD("dur", SY_CFG_DURATION, all_t, dur), .default_value = "200ms", .min = "-1h",
     .max = "2h", .description = ""},
    {SY_CFG_FIELD("size", SY_CFG_SIZE, all_t, size), .default_value = "4MiB", .min = "1KiB",
     .max = "1GB", .description = ""},
    {SY_CFG_FIELD("e", SY_CFG_ENUM, all_t, e), .default_value = "basic", .description = "",
     .enum_values = enum_values},
    {SY_CFG_FIELD("p", SY_CFG_PRESENT, all_t, present), .description = ""},
    {SY_CFG_FIELD("p.list", SY_CFG_STRLIST, all_t, list), .min = "1", .max = "8",
     .pattern = "[^/]*", .description = ""},
    {SY_CFG_FIELD("p.map", SY_CFG_STRMAP, all_t, map), .max = "4", .pattern = ".+",
     .description = ""},
    {SY_CFG_FIELD("raw", SY_CFG_RAW, all_t, raw), .description = ""},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    static bool table_checked; /* once: it is the same table for every input */
    if (!table_checked && sy__cfg_check_table("fuzz", fields, sizeof(fields) / sizeof(fields[0]),
                                              sizeof(all_t), err, sizeof(err)) != 0)
        abort(); /* the table itself is wrong: fix the fuzzer */
    table_checked = true;
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
