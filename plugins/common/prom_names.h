/*
 * prom_names.h - the translation of OTLP metric names, units and attribute keys
 * into Prometheus metric and label names, as the collector's prometheus exporter
 * does it (github.com/prometheus/otlptranslator: MetricNamer, LabelNamer,
 * UnitNamer), and attribute values into label values (pcommon Value.AsString).
 *
 * Shared by the `prometheus` and `prometheusremotewrite` exporters (one copy of the
 * rules). Pure functions of their arguments: no state, any thread.
 */
#ifndef SYC_PROM_NAMES_H
#define SYC_PROM_NAMES_H

#include <stdbool.h>
#include <stddef.h>

#include "opentelemetry/proto/common/v1/common.pb-c.h"
#include "prom_buf.h"

/* The metric types the names depend on (otlptranslator.MetricType). */
typedef enum syc_prom_mtype_e {
    SYC_PROM_MT_GAUGE = 0,
    SYC_PROM_MT_COUNTER, /* monotonic sum: "_total" */
    SYC_PROM_MT_UPDOWN,  /* non-monotonic sum: no "_total", no "_ratio" */
    SYC_PROM_MT_HISTOGRAM,
    SYC_PROM_MT_EXPHISTOGRAM,
    SYC_PROM_MT_SUMMARY,
} syc_prom_mtype_t;

/* The translation_strategy values, in the collector's spelling. */
typedef enum syc_prom_strategy_e {
    SYC_PROM_UNDERSCORE_ESCAPING_WITH_SUFFIXES = 0,
    SYC_PROM_UNDERSCORE_ESCAPING_WITHOUT_SUFFIXES,
    SYC_PROM_NO_UTF8_ESCAPING_WITH_SUFFIXES,
    SYC_PROM_NO_TRANSLATION,
} syc_prom_strategy_t;

/* Parses a translation_strategy; -1 if unknown. */
int syc_prom_strategy_parse(const char *s);

typedef struct syc_prom_namer_s {
    const char *ns; /* namespace, "" or NULL for none */
    bool suffixes;  /* add unit and type suffixes */
    bool utf8;      /* keep names as they are instead of escaping them */
} syc_prom_namer_t;

/* The namer of a translation strategy; add_metric_suffixes applies only when no
 * strategy is set (strategy < 0), as in the collector. */
syc_prom_namer_t syc_prom_namer_for(int strategy, bool add_metric_suffixes, const char *ns);

/*
 * Appends the Prometheus name of a metric. Returns 0, or -1 when the name comes out
 * empty or made of underscores only (the collector drops such a metric); the buffer
 * then holds nothing new.
 */
int syc_prom_metric_name(syc_prom_buf_t *out, const syc_prom_namer_t *namer, const char *name,
                         const char *unit, syc_prom_mtype_t type);

/* Appends the unit part of a name ("bytes_per_second"; "" for "1" or "{packets}"). */
void syc_prom_unit_name(syc_prom_buf_t *out, const char *unit, bool utf8);

/*
 * Appends the Prometheus name of an attribute key (n bytes): runs of invalid
 * characters become one '_', "__x__" stays reserved, a leading digit gets "key_".
 * Returns 0, or -1 when it comes out empty or only underscores (the attribute is
 * then left out).
 */
int syc_prom_label_name(syc_prom_buf_t *out, const char *key, size_t n, bool utf8);

/*
 * Appends `name` escaped to the classic character set, one '_' per invalid
 * character (client_golang's "underscores" escaping, which a scraper gets unless it
 * negotiates UTF-8): the last step for names kept as UTF-8 by the strategies
 * NoUTF8EscapingWithSuffixes and NoTranslation. `metric` allows ':'.
 */
void syc_prom_escape_legacy(syc_prom_buf_t *out, const char *name, size_t n, bool metric);

/* True if name[0..n) is a valid classic metric (metric) or label name. */
bool syc_prom_is_legacy_name(const char *name, size_t n, bool metric);

/* Appends an attribute value as a label value, as pcommon Value.AsString() writes
 * it: strings as they are, booleans, integers, doubles ("0.5"), bytes in base64,
 * arrays and maps as JSON. NULL writes "". */
void syc_prom_attr_value(syc_prom_buf_t *out, const Opentelemetry__Proto__Common__V1__AnyValue *v);

#endif
