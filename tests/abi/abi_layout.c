/*
 * abi_layout.c - the offset of every member of sy_plugin_t and sy_host_api_t as
 * one plugin.h declares them. Compiled once against each released minor's header
 * (tests/abi/1.<minor>/) and once against the current one, with ABI_SUFFIX naming
 * the table; unit.test_abi_layout compares them (nothing may move) and the
 * current table with the offsets recorded in the test.
 */
#include <stddef.h>

#include <switchyard/plugin.h>

#include "abi_layout.h"

#define P(m)                              \
    {                                     \
        'P', #m, offsetof(sy_plugin_t, m) \
    }
#define H(m)                                \
    {                                       \
        'H', #m, offsetof(sy_host_api_t, m) \
    }
#define CAT2(a, b) a##b
#define CAT(a, b)  CAT2(a, b)

const abi_member_t CAT(abi_members_, ABI_SUFFIX)[] = {
    P(abi_major),
    P(abi_minor),
    P(size),
    P(kind),
    P(type),
    P(signals),
    P(flags),
    P(version),
    P(description),
    P(config_fields),
    P(config_field_count),
    P(config_size),
    P(validate),
    P(create),
    P(start),
    P(consume),
    P(shutdown),
    P(destroy),
#if SY_ABI_MINOR >= 3
    P(config_field_size),
    P(validate2),
#endif
#if SY_ABI_MINOR >= 4
    P(connects),
    P(extension_interface),
#endif
    H(abi_major),
    H(abi_minor),
    H(size),
    H(log_enabled),
    H(log),
    H(instance_id),
    H(loop),
    H(status),
    H(signals),
    H(cfg_kind),
    H(cfg_scalar),
    H(cfg_len),
    H(cfg_at),
    H(cfg_get),
    H(cfg_where),
    H(batch_new),
    H(batch_alloc),
    H(batch_allocator),
    H(batch_set_encoded),
    H(batch_set_decoded),
    H(batch_retain),
    H(batch_release),
    H(batch_info),
    H(batch_request),
    H(batch_request_mut),
    H(batch_recount),
    H(batch_encoded),
    H(batch_merge),
    H(batch_split),
    H(emit),
    H(ready),
    H(timer_start),
    H(timer_stop),
    H(metric_register),
    H(metric_add),
    H(metric_set),
    H(exporter_outcome),
#if SY_ABI_MINOR >= 1
    H(view_open),
    H(view_close),
    H(view_root),
    H(view_kind),
    H(view_parent),
    H(view_count),
    H(view_at),
    H(view_get),
    H(view_attr_count),
    H(view_attr_at),
    H(view_attr_get),
    H(view_value_next),
    H(view_set),
    H(view_attr_set),
    H(view_attr_delete),
    H(view_attr_rename),
    H(view_drop),
    H(view_commit),
    H(view_build),
    H(view_build_add),
    H(view_build_finish),
    H(view_build_abort),
    H(pipeline_refuse),
#endif
#if SY_ABI_MINOR >= 2
    H(cfg_quoted),
    H(value_container),
#endif
#if SY_ABI_MINOR >= 4
    H(emit_to),
    H(connector_pipelines),
    H(extension_get),
    H(queue_budget_limit),
#endif
#if SY_ABI_MINOR >= 5
    P(min_host_minor),
    H(status_json),
#endif
#if SY_ABI_MINOR >= 6
    H(batch_pieces),
    H(settle_new),
    H(settle_attach),
    H(settle_release),
    H(settle_wanted),
    H(settle_durable),
#endif
#if SY_ABI_MINOR >= 7
    H(metric_register_labelled),
    H(metric_series),
    H(batch_set_compressed),
    H(batch_compressed_pieces),
#endif
#if SY_ABI_MINOR >= 8
    H(emit_may_wait),
    H(compressed_wanted),
#endif
    {0, NULL, 0},
};

const abi_sizes_t CAT(abi_sizes_, ABI_SUFFIX) = {SY_ABI_MINOR, sizeof(sy_plugin_t),
                                                 sizeof(sy_host_api_t)};
