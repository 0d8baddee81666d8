/*
 * probabilistic_sampler.h - the configuration struct of the probabilistic_sampler
 * processor, as the host fills it from the field table (shared with
 * bench/probsampler_bench.c, which drives the .so in process).
 */
#ifndef PS_PROBABILISTIC_SAMPLER_H
#define PS_PROBABILISTIC_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ps_config_s {
    double sampling_percentage;
    int64_t hash_seed;
    char *mode; /* NULL: hash_seed */
    bool fail_closed;
    int64_t sampling_precision;
    char *attribute_source;
    char *from_attribute;
    char *sampling_priority;
} ps_config_t;

#endif
