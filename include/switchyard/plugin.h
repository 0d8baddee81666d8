/*
 * switchyard/plugin.h - the plugin ABI.
 *
 * A plugin is one shared object that exports one symbol, SY_PLUGIN_ENTRY_SYMBOL
 * ("sy_plugin_entry"), a function returning a pointer to a static, constant
 * sy_plugin_t descriptor. The host reads the descriptor, checks the ABI version and
 * the descriptor's size, fills the plugin's configuration struct from the plugin's
 * field table and then drives the plugin through its callbacks. Everything the
 * plugin may ask of the host it asks through the sy_host_api_t table handed to
 * create(); a plugin never links against the host's symbols.
 *
 * Versioning: SY_ABI_MAJOR changes when anything here changes incompatibly; the
 * host refuses a plugin of another major. SY_ABI_MINOR grows when fields are added
 * at the end of sy_plugin_t or sy_host_api_t: a plugin built against an older minor
 * keeps working (the host reads only descriptor->size bytes of the descriptor), and
 * a plugin that wants a newer host function checks api->size before calling it
 * (see SY_API_HAS()).
 *
 * Minors: 1.0, the first; 1.1 added the view (view_open() ... view_build_abort():
 * reading, changing and regrouping a batch without protobuf-c, docs/view.md) and
 * pipeline_refuse() (the memory_limiter's back-pressure); 1.2 added cfg_quoted()
 * (a quoted YAML scalar is a string) and value_container() (writing an ARRAY or
 * MAP value the plugin encoded itself); 1.3 added min, max and pattern at the end
 * of sy_config_field_t (the SY_CFG_FIELD() macro checks a member's C type), and
 * config_field_size and validate2() at the end of sy_plugin_t; 1.4 added connectors
 * (`connects` at the end of sy_plugin_t; emit_to() and connector_pipelines() at
 * the end of sy_host_api_t), then extension interfaces (extension_interface at the
 * end of sy_plugin_t, extension_get() at the end of sy_host_api_t; the
 * authenticators' interfaces are in <switchyard/auth.h>); 1.5 to 1.8: see the
 * members under "ABI 1.5" ... "ABI 1.8" at the end of the structs.
 *
 * The field table's element size follows the descriptor: a plugin of minor 3 or
 * later says it in config_field_size (SY_CFG_TABLE() sets it; 0 means the 1.3
 * size); one of minor 0 to 2 has the seven members of ABI 1.0.
 *
 * Threads: every instance is bound to one thread, its "loop thread", which runs a
 * libuv loop (api->loop()). create(), start(), consume(), shutdown() and destroy()
 * of an instance are all called on that thread, so a plugin needs no locks for its
 * own state. Receivers, exporters and extensions each get a loop thread of their
 * own; the processors of one pipeline share the pipeline's worker thread. The only
 * host functions that may be called from any thread are marked "any thread".
 */
#ifndef SWITCHYARD_PLUGIN_H
#define SWITCHYARD_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SY_ABI_MAJOR 1
#define SY_ABI_MINOR 8

/* The one symbol a plugin exports. */
#define SY_PLUGIN_ENTRY_SYMBOL "sy_plugin_entry"

#if defined(__GNUC__)
#define SY_EXPORT            __attribute__((visibility("default")))
#define SY_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define SY_EXPORT
#define SY_PRINTF(fmt, args)
#endif

/* Return codes: 0 on success, a negative SY_E* otherwise. */
enum {
    SY_OK = 0,
    SY_ERROR = -1,   /* generic failure; details were logged */
    SY_EAGAIN = -2,  /* back-pressure: nothing was taken, try again later */
    SY_EINVAL = -3,  /* invalid argument or invalid data */
    SY_ENOMEM = -4,  /* out of memory, or over a configured size bound */
    SY_ECLOSED = -5, /* the component or pipeline is shutting down */
    SY_ENOTSUP = -6, /* not supported by this plugin or signal */
};

typedef enum sy_kind_e {
    SY_KIND_RECEIVER = 1,
    SY_KIND_PROCESSOR = 2,
    SY_KIND_EXPORTER = 3,
    SY_KIND_EXTENSION = 4,
    SY_KIND_CONNECTOR = 5,
} sy_kind_t;

/* Signals, usable as a bit set. */
typedef enum sy_signal_e {
    SY_SIGNAL_TRACES = 1u << 0,
    SY_SIGNAL_METRICS = 1u << 1,
    SY_SIGNAL_LOGS = 1u << 2,
} sy_signal_t;
#define SY_SIGNAL_ALL (SY_SIGNAL_TRACES | SY_SIGNAL_METRICS | SY_SIGNAL_LOGS)

typedef enum sy_log_level_e {
    SY_LOG_DEBUG = 0,
    SY_LOG_INFO = 1,
    SY_LOG_WARN = 2,
    SY_LOG_ERROR = 3,
} sy_log_level_t;

/* Opaque handles. */
typedef struct sy_instance_s sy_instance_t; /* one configured component, e.g. "batch/2" */
typedef struct sy_batch_s sy_batch_t;       /* one OTLP export request of one signal */
typedef struct sy_metric_s sy_metric_t;     /* one of the plugin's own metrics */
typedef struct sy_timer_s sy_timer_t;       /* a timer on the instance's loop thread */
typedef struct sy_cfg_node_s sy_cfg_node_t; /* a raw configuration node (SY_CFG_RAW) */

/* ------------------------------------------------------------------------ */
/* Configuration                                                             */
/* ------------------------------------------------------------------------ */

/*
 * The type of one configuration field, and the C type the host writes at the
 * field's offset in the plugin's configuration struct.
 */
typedef enum sy_cfg_type_e {
    SY_CFG_BOOL = 1,     /* bool */
    SY_CFG_INT = 2,      /* int64_t */
    SY_CFG_DOUBLE = 3,   /* double */
    SY_CFG_STRING = 4,   /* char *, NUL-terminated, owned by the host (NULL if unset) */
    SY_CFG_DURATION = 5, /* int64_t nanoseconds; "200ms", "5s", "1m30s", "1h" */
    SY_CFG_SIZE = 6,     /* uint64_t bytes; 1048576, "4MiB", "20MB", "512KiB" */
    SY_CFG_ENUM = 7,     /* int: index into the field's enum_values */
    SY_CFG_PRESENT = 8,  /* bool: true when the key is present at all (even if null) */
    SY_CFG_STRLIST = 9,  /* sy_cfg_strlist_t */
    SY_CFG_STRMAP = 10,  /* sy_cfg_strmap_t (e.g. headers) */
    SY_CFG_RAW = 11,     /* const sy_cfg_node_t *: read it with api->cfg_* */
} sy_cfg_type_t;

typedef struct sy_cfg_strlist_s {
    size_t count;
    char **items; /* owned by the host */
} sy_cfg_strlist_t;

typedef struct sy_cfg_strmap_s {
    size_t count;
    char **keys;   /* owned by the host */
    char **values; /* owned by the host */
} sy_cfg_strmap_t;

/*
 * One field of a plugin's configuration. `name` is a dotted path below the
 * component's own key: "timeout", "protocols.http.endpoint". A key in the user's
 * YAML that no field names (and that is not a prefix of one) is refused as an
 * unknown key, with its file:line:col. Defaults are written as YAML scalars
 * ("200ms", "8192", "true"); NULL means zero / NULL / false.
 *
 * Declare fields with SY_CFG_FIELD() below: it fills name, type and offset and fails
 * the build when the member's C type is not the one the type writes.
 */
typedef struct sy_config_field_s {
    const char *name;
    sy_cfg_type_t type;
    size_t offset; /* offsetof(the plugin's config struct, member) */
    const char *default_value;
    bool required;
    const char *description;
    const char *const *enum_values; /* SY_CFG_ENUM: NULL-terminated list of names */

    /* End of ABI 1.0. ABI 1.3 (the host reads these only from a plugin of minor
     * 3 or later; see config_field_size): */

    /* The smallest and largest the user may write, both included, as YAML
     * scalars: for SY_CFG_INT, DOUBLE, DURATION and SIZE a value in the field's
     * own syntax ("1", "0.5", "10ms", "64KiB"); for SY_CFG_STRING the length in
     * bytes; for SY_CFG_STRLIST and STRMAP the number of entries. NULL: no
     * bound. The host refuses a value outside with its file:line:col, and, at
     * load, a plugin whose bound does not parse. */
    const char *min;
    const char *max;
    /* SY_CFG_STRING, and each item of STRLIST and value of STRMAP: a POSIX
     * extended regular expression the whole value must match ("[a-z_]+" means
     * ^([a-z_]+)$). NULL: any. */
    const char *pattern;
} sy_config_field_t;

/* The size of a field of ABI 1.0 to 1.2: the host reads older tables with it. */
#define SY_CONFIG_FIELD_SIZE_1_0 (offsetof(sy_config_field_t, enum_values) + sizeof(void *))

/*
 * Whether a member's C type is the one a SY_CFG_* type writes (a constant
 * expression, 1 or 0), given the member's address: C11 _Generic, which does not
 * evaluate it. The address keeps an array member (char name[16]) from passing as
 * the char * it would decay to.
 */
#ifndef __cplusplus
#define SY_CFG_CTYPE_OK(cfg_type, member_addr) \
    _Generic((member_addr),                                                              \
        bool *: (cfg_type) == SY_CFG_BOOL || (cfg_type) == SY_CFG_PRESENT,               \
        int64_t *: (cfg_type) == SY_CFG_INT || (cfg_type) == SY_CFG_DURATION,            \
        uint64_t *: (cfg_type) == SY_CFG_SIZE,                                           \
        double *: (cfg_type) == SY_CFG_DOUBLE,                                           \
        char **: (cfg_type) == SY_CFG_STRING,                                            \
        const char **: (cfg_type) == SY_CFG_STRING,                                      \
        int *: (cfg_type) == SY_CFG_ENUM,                                                \
        sy_cfg_strlist_t *: (cfg_type) == SY_CFG_STRLIST,                                \
        sy_cfg_strmap_t *: (cfg_type) == SY_CFG_STRMAP,                                  \
        const sy_cfg_node_t **: (cfg_type) == SY_CFG_RAW,                                \
        sy_cfg_node_t **: (cfg_type) == SY_CFG_RAW,                                      \
        default: 0)
/* offsetof(st, member), or a compile error naming the mismatch when the member's
 * C type is not the one cfg_type writes. */
#define SY_CFG_FIELD_OFFSET(cfg_type, st, member)                                        \
    (offsetof(st, member) + 0 * sizeof(struct {                                          \
                                int sy_config_member_type_does_not_match_its_SY_CFG_type \
                                    : SY_CFG_CTYPE_OK(cfg_type, &((st *)0)->member)      \
                                      ? 1                                                \
                                      : -1;                                              \
                            }))
#else
#define SY_CFG_FIELD_OFFSET(cfg_type, st, member) offsetof(st, member)
#endif

/*
 * The first three members of one field, for a designated initializer:
 *
 *   static const sy_config_field_t fields[] = {
 *       {SY_CFG_FIELD("timeout", SY_CFG_DURATION, my_config_t, timeout),
 *        .default_value = "5s", .min = "1ms", .description = "..."},
 *   };
 *
 * A member of the wrong C type (an `int` for SY_CFG_INT, which writes int64_t)
 * fails the build with "sy_config_member_type_does_not_match_its_SY_CFG_type".
 */
#define SY_CFG_FIELD(key, cfg_type, st, member) \
    .name = (key), .type = (cfg_type), .offset = SY_CFG_FIELD_OFFSET(cfg_type, st, member)

/* The table members of a descriptor: .config_fields, .config_field_count and
 * .config_field_size (ABI 1.3), from a static array. */
#define SY_CFG_TABLE(fields)                                                               \
    .config_fields = (fields), .config_field_count = sizeof(fields) / sizeof((fields)[0]), \
    .config_field_size = sizeof((fields)[0])

/* ------------------------------------------------------------------------ */
/* The plugin descriptor                                                     */
/* ------------------------------------------------------------------------ */

/* Flags of a plugin. */
enum {
    /* A processor that changes the data it is given: the host hands it a batch it
     * owns alone (a deep copy when the batch is shared, see batch_request_mut())
     * and lets it use batch_request_mut(). Without it that call returns NULL. */
    SY_PLUGIN_MUTATES_DATA = 1u << 0,
    /* An exporter that sends asynchronously: the host does not count a batch as
     * sent when consume() returns SY_OK; the plugin reports each batch's outcome
     * with api->exporter_outcome() once it knows it. */
    SY_PLUGIN_REPORTS_OUTCOME = 1u << 1,
    /* An exporter that may send a batch's compressed twin as it is
     * (batch_compressed_pieces(), ABI 1.7). A receiver keeps the bytes a client
     * compressed only while such an exporter is behind it (compressed_wanted(),
     * ABI 1.8); read by hosts of 1.8 and later. */
    SY_PLUGIN_SENDS_COMPRESSED = 1u << 2,
};

typedef struct sy_host_api_s sy_host_api_t;

typedef struct sy_plugin_s {
    /* ABI identification: always SY_ABI_MAJOR, SY_ABI_MINOR, sizeof(sy_plugin_t). */
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t size;

    sy_kind_t kind;
    const char *type;        /* "otlp", "batch", ...: matches ^[a-zA-Z][0-9a-zA-Z_]{0,62}$ */
    uint32_t signals;        /* sy_signal_t bits this plugin handles */
    uint32_t flags;          /* SY_PLUGIN_* */
    const char *version;     /* the plugin's own version string */
    const char *description; /* one line, for `switchyard components` */

    /* Configuration: the host allocates config_size zeroed bytes, writes the
     * defaults and then the user's values at each field's offset. */
    const sy_config_field_t *config_fields;
    size_t config_field_count;
    size_t config_size;

    /*
     * Optional. Checks the filled configuration beyond what the field table says
     * (ranges, combinations). Called at load and by `switchyard validate`, on the
     * main thread, before create(). Returns 0, or SY_EINVAL with a sentence in err
     * (it should name the key at fault).
     */
    int (*validate)(const void *config, char *err, size_t err_len);

    /*
     * Creates one instance. `api` and `inst` stay valid until destroy() returns;
     * `config` stays valid and unchanged for the instance's life. Stores the
     * plugin's state in *state. No I/O yet: do that in start().
     * Loop thread of the instance. Returns 0 or a negative SY_E* (logged first).
     */
    int (*create)(const sy_host_api_t *api, sy_instance_t *inst, const void *config, void **state);

    /*
     * Optional (NULL: nothing to start).
     * Starts the instance: open sockets, start timers. Exporters are started first,
     * then processors, then receivers, so that nothing is sent to a component that
     * is not running. Loop thread. Returns 0 or a negative SY_E* (startup fails).
     */
    int (*start)(void *state);

    /*
     * Processors and exporters only: takes one batch. On SY_OK the reference is
     * handed over: the plugin releases it (api->batch_release()) or passes it on
     * (api->emit()), now or later. On any error the caller still owns it.
     * An exporter that returns SY_EAGAIN is not called again until it calls
     * api->ready(); the host keeps the batch and offers it again then.
     * A processor emits downstream with api->emit() from consume() or later from
     * a timer on the same thread. Loop thread.
     */
    int (*consume)(void *state, sy_batch_t *batch);

    /*
     * Optional (NULL: nothing to stop; the host still closes api->timer_start()
     * timers).
     * Begins stopping. A receiver stops accepting (and closes its handles); a
     * processor emits everything it holds (the batch processor flushes); an
     * exporter finishes or abandons what is in flight by the deadline it was
     * given in its timeout settings. All libuv handles the plugin opened must be
     * closed (uv_close) by the time the plugin's last close callback has run; the
     * host runs the loop until they have (at most the router's shutdown timeout,
     * 10 s, shared by all exporters). Timers made with api->timer_start() are
     * closed by the host as soon as shutdown() returns: work that must go on after
     * that (an exporter draining its retries) uses libuv timers of its own on
     * api->loop(). Loop thread.
     */
    void (*shutdown)(void *state);

    /* Frees the instance's state. Loop thread (its loop has no handles left). */
    void (*destroy)(void *state);

    /* End of ABI 1.0. New members go below this line only. */

    /* --- ABI 1.3 ------------------------------------------------------------ */

    /* sizeof(sy_config_field_t) of the header the plugin was built with, so that
     * a later minor may grow the field struct (SY_CFG_TABLE() sets it). 0: the
     * size of ABI 1.3. */
    uint32_t config_field_size;

    /*
     * Optional. validate() with the host API and the component's own config map
     * (NULL when the component has no settings: its key is empty or null), for checks that read
     * SY_CFG_RAW fields or point at the element at fault (api->cfg_where()). Called where
     * validate() is (at load and by `switchyard validate`, main thread, before
     * create()), after validate() when both are given. Only the api->cfg_*
     * functions may be called (there is no instance yet).
     * Returns 0, or SY_EINVAL with a sentence in err.
     */
    int (*validate2)(const sy_host_api_t *api, const sy_cfg_node_t *node, const void *config,
                     char *err, size_t err_len);

    /* --- ABI 1.4: connectors ------------------------------------------------ */

    /*
     * Connectors only (kind SY_KIND_CONNECTOR): for each input signal, indexed
     * 0 traces, 1 metrics, 2 logs, the set of output signals (sy_signal_t bits)
     * the connector makes from it: forward {TRACES, METRICS, LOGS}, spanmetrics
     * {METRICS, 0, 0}. `signals` holds the input signals. A connector is an
     * exporter in the pipelines it ends (consume() is called with their batches,
     * as for an exporter, SY_EAGAIN and api->ready() included) and a receiver in
     * the pipelines it starts: it hands batches to them with api->emit() (every
     * pipeline of the batch's signal that it feeds) or api->emit_to() (some of
     * them), from consume() or from its timers. Its loop thread is a pipeline
     * worker. At shutdown its consume() is called until the pipelines it ends have
     * drained, then shutdown() (emit what it still holds: the pipelines it feeds
     * are drained after it).
     */
    uint32_t connects[3];

    /*
     * Extensions only, optional (NULL: it offers none). The interface the
     * extension offers under `name` (for example SY_AUTH_SERVER of
     * <switchyard/auth.h>: "auth.server/1"), or NULL when it offers none by that
     * name. The pointer must stay valid, and what it points to unchanged, from
     * start() until destroy(); the interface's own functions say from which
     * threads they may be called. Called by the host for api->extension_get(),
     * on the caller's thread, only after the extension's start() returned 0:
     * read only what start() or create() set. (ABI 1.4, appended.)
     */
    const void *(*extension_interface)(void *state, const char *name);

    /* --- ABI 1.5 ------------------------------------------------------------ */

    /*
     * Optional (0: any host of the major). The oldest host minor this plugin
     * runs on: a plugin that calls a host function added in 1.N without checking
     * SY_API_HAS() sets N here, and a host of an older minor refuses it at load
     * with a sentence naming both versions, rather than loading it with a
     * warning. A host of 1.4 or older does not read it.
     */
    uint16_t min_host_minor;
} sy_plugin_t;

/* The entry function's type. */
typedef const sy_plugin_t *(*sy_plugin_entry_fn)(void);

/* Defines the entry point of a plugin: SY_PLUGIN_DEFINE(my_descriptor); */
#define SY_PLUGIN_DEFINE(descriptor)                    \
    SY_EXPORT const sy_plugin_t *sy_plugin_entry(void); \
    SY_EXPORT const sy_plugin_t *sy_plugin_entry(void)  \
    {                                                   \
        return &(descriptor);                           \
    }

/* ------------------------------------------------------------------------ */
/* The host API                                                              */
/* ------------------------------------------------------------------------ */

/* What the host is doing, as extensions such as health_check report it. */
typedef enum sy_status_e {
    SY_STATUS_STARTING = 0,
    SY_STATUS_READY = 1,
    SY_STATUS_STOPPING = 2,
} sy_status_t;

typedef enum sy_metric_type_e {
    SY_METRIC_COUNTER = 1, /* monotonic, exposed as <name>_total */
    SY_METRIC_GAUGE = 2,
} sy_metric_type_t;

/* Where a batch came from and what is known of it. */
typedef struct sy_batch_info_s {
    sy_signal_t signal;
    uint64_t items;     /* spans, metric data points, or log records */
    uint64_t bytes;     /* size of the encoded request (0 if never encoded) */
    bool has_encoded;   /* protobuf bytes are available without packing */
    bool has_decoded;   /* the decoded request is available without unpacking */
    const char *origin; /* the ID of the receiver that made it ("otlp") */
} sy_batch_info_t;

/* One piece of an encoded request (batch_pieces(), ABI 1.6). */
typedef struct sy_piece_s {
    const uint8_t *data;
    size_t len;
} sy_piece_t;

/* ------------------------------------------------------------------------ */
/* The view (ABI 1.1): reading and changing a batch without protobuf-c       */
/* ------------------------------------------------------------------------ */

/*
 * The view walks a batch's encoded request (batch_encoded()) and hands out
 * opaque node handles and plain C values that point into those bytes: nothing is
 * decoded and nothing is allocated per item outside the view's own arena. See
 * docs/view.md for a worked example and the cost of each call.
 *
 * Lifetimes. A sy_view_t belongs to one thread at a time and to the caller who
 * opened it; it holds no reference on its batch, so the caller keeps the batch
 * until view_close(). Node handles live until view_close() or a successful
 * view_commit(). Pointers inside a sy_value_t point into the batch's memory and
 * stay valid for as long as the batch lives (a commit does not free the old
 * bytes; they go with the batch's arena).
 *
 * Reads see the request as it was when the view was opened or last committed:
 * edits are recorded, and become visible to reads after view_commit().
 * A singular field given more than once on the wire reads as its last occurrence;
 * an attribute key given twice reads as its first.
 */
typedef struct sy_view_s sy_view_t;                 /* one view of one batch */
typedef struct sy_view_node_s sy_view_node_t;       /* a resource, scope, item, ... */
typedef struct sy_view_builder_s sy_view_builder_t; /* makes a batch of chosen items */

/* What a node is. Items are spans, data points (of five types) and log records. */
typedef enum sy_node_kind_e {
    SY_NODE_REQUEST = 1,  /* the export request: the root */
    SY_NODE_RESOURCE = 2, /* ResourceSpans / ResourceMetrics / ResourceLogs */
    SY_NODE_SCOPE = 3,    /* ScopeSpans / ScopeMetrics / ScopeLogs */
    SY_NODE_SPAN = 4,
    SY_NODE_EVENT = 5, /* Span.Event */
    SY_NODE_LINK = 6,  /* Span.Link */
    SY_NODE_METRIC = 7,
    SY_NODE_NUMBER_POINT = 8, /* gauge and sum data points */
    SY_NODE_HISTOGRAM_POINT = 9,
    SY_NODE_EXP_HISTOGRAM_POINT = 10,
    SY_NODE_SUMMARY_POINT = 11,
    SY_NODE_EXEMPLAR = 12,
    SY_NODE_LOG = 13,
} sy_node_kind_t;

/* The children a node is asked for (view_count(), view_at()). */
typedef enum sy_view_rel_e {
    SY_VIEW_RESOURCES = 1, /* of the request */
    SY_VIEW_SCOPES = 2,    /* of a resource */
    SY_VIEW_ITEMS = 3,     /* of a scope: spans, log records, or the data points of
                            * all its metrics in order; of a metric: its data points */
    SY_VIEW_METRICS = 4,   /* of a metrics scope */
    SY_VIEW_EVENTS = 5,    /* of a span */
    SY_VIEW_LINKS = 6,     /* of a span */
    SY_VIEW_EXEMPLARS = 7, /* of a number, histogram or exponential histogram point */
} sy_view_rel_t;

/* The fields view_get() reads and view_set() writes. A field of an enclosing
 * node may be asked of an item: SY_FIELD_METRIC_NAME of a data point is its
 * metric's name, SY_FIELD_SCOPE_NAME of a span its scope's name. */
typedef enum sy_field_e {
    SY_FIELD_NAME = 1,           /* STRING: span, event, metric, log event_name, scope */
    SY_FIELD_KIND,               /* INT: span kind (SpanKind) */
    SY_FIELD_TRACE_ID,           /* BYTES: span, link, log, exemplar */
    SY_FIELD_SPAN_ID,            /* BYTES: span, link, log, exemplar */
    SY_FIELD_PARENT_SPAN_ID,     /* BYTES: span */
    SY_FIELD_TRACE_STATE,        /* STRING: span, link */
    SY_FIELD_FLAGS,              /* INT: span, link, log, data points */
    SY_FIELD_STATUS_CODE,        /* INT: span (Status.code) */
    SY_FIELD_STATUS_MESSAGE,     /* STRING: span (Status.message) */
    SY_FIELD_START_TIME,         /* INT (ns): span, data points */
    SY_FIELD_END_TIME,           /* INT (ns): span */
    SY_FIELD_TIME,               /* INT (ns): event, log, data points, exemplar */
    SY_FIELD_OBSERVED_TIME,      /* INT (ns): log */
    SY_FIELD_SEVERITY_NUMBER,    /* INT: log */
    SY_FIELD_SEVERITY_TEXT,      /* STRING: log */
    SY_FIELD_BODY,               /* any type: log (an AnyValue) */
    SY_FIELD_EVENT_NAME,         /* STRING: log */
    SY_FIELD_DROPPED_ATTRIBUTES, /* INT: any node with attributes but a data point */
    SY_FIELD_DROPPED_EVENTS,     /* INT: span */
    SY_FIELD_DROPPED_LINKS,      /* INT: span */
    SY_FIELD_SCHEMA_URL,         /* STRING: resource, scope */
    SY_FIELD_SCOPE_NAME,         /* STRING: scope (InstrumentationScope.name) */
    SY_FIELD_SCOPE_VERSION,      /* STRING: scope */
    SY_FIELD_METRIC_NAME,        /* STRING: metric */
    SY_FIELD_METRIC_DESCRIPTION, /* STRING: metric */
    SY_FIELD_METRIC_UNIT,        /* STRING: metric */
    SY_FIELD_METRIC_TYPE,        /* INT: metric, one of SY_METRIC_TYPE_* (read only) */
    SY_FIELD_TEMPORALITY,        /* INT: metric (sum, histogram, exp. histogram) */
    SY_FIELD_MONOTONIC,          /* BOOL: metric (sum) */
    SY_FIELD_VALUE,              /* DOUBLE or INT: number point, exemplar */
    SY_FIELD_COUNT,              /* INT: histogram, exp. histogram, summary point */
    SY_FIELD_SUM,                /* DOUBLE: idem (EMPTY when an optional sum is absent) */
    SY_FIELD_MIN,                /* DOUBLE: histogram, exp. histogram point */
    SY_FIELD_MAX,                /* DOUBLE: idem */
    SY_FIELD_BUCKET_COUNTS,      /* ARRAY of INT: histogram point (read only) */
    SY_FIELD_EXPLICIT_BOUNDS,    /* ARRAY of DOUBLE: histogram point (read only) */
    SY_FIELD_SCALE,              /* INT: exp. histogram point */
    SY_FIELD_ZERO_COUNT,         /* INT: exp. histogram point */
    SY_FIELD_ZERO_THRESHOLD,     /* DOUBLE: exp. histogram point */
    SY_FIELD_POSITIVE_OFFSET,    /* INT: exp. histogram point */
    SY_FIELD_POSITIVE_BUCKETS,   /* ARRAY of INT (read only) */
    SY_FIELD_NEGATIVE_OFFSET,    /* INT */
    SY_FIELD_NEGATIVE_BUCKETS,   /* ARRAY of INT (read only) */
    SY_FIELD_QUANTILES,          /* MAP DOUBLE quantile -> DOUBLE value: summary (read only) */
} sy_field_t;

/* SY_FIELD_METRIC_TYPE: which member of Metric.data is present. */
enum {
    SY_METRIC_TYPE_NONE = 0,
    SY_METRIC_TYPE_GAUGE = 1,
    SY_METRIC_TYPE_SUM = 2,
    SY_METRIC_TYPE_HISTOGRAM = 3,
    SY_METRIC_TYPE_EXP_HISTOGRAM = 4,
    SY_METRIC_TYPE_SUMMARY = 5,
};

typedef enum sy_value_type_e {
    SY_VALUE_EMPTY = 0, /* absent field, or an AnyValue holding nothing */
    SY_VALUE_STRING = 1,
    SY_VALUE_BOOL = 2,
    SY_VALUE_INT = 3,
    SY_VALUE_DOUBLE = 4,
    SY_VALUE_BYTES = 5,
    SY_VALUE_ARRAY = 6,
    SY_VALUE_MAP = 7,
} sy_value_type_t;

/*
 * One value, read or to be written. Only the members of its type are meaningful:
 * STRING: str, len (UTF-8, not NUL-terminated); BYTES: bytes, len; INT: i;
 * DOUBLE: d; BOOL: b; ARRAY and MAP: len is the number of entries, iterated with
 * view_value_next(). To write a value, fill type and the members of the type;
 * an ARRAY or MAP can be written as read from a view or as made by
 * value_container() (ABI 1.2) from its encoded content (it is copied encoded).
 * priv is the host's: leave it as read.
 */
typedef struct sy_value_s {
    sy_value_type_t type;
    const char *str;
    size_t len;
    int64_t i;
    double d;
    bool b;
    const uint8_t *bytes;
    const void *priv;
    uint32_t priv_len, priv_kind;
} sy_value_t;

/* A position in an ARRAY or MAP: zero it and set `value`, then call
 * view_value_next() until it returns 0. */
typedef struct sy_value_iter_s {
    const sy_value_t *value;
    size_t pos, sub, index;
} sy_value_iter_t;

/* How view_attr_set() treats an existing attribute of the key. */
typedef enum sy_attr_mode_e {
    SY_ATTR_INSERT = 1, /* only if the key is absent */
    SY_ATTR_UPDATE = 2, /* only if the key is present */
    SY_ATTR_UPSERT = 3, /* either way */
} sy_attr_mode_t;

typedef void (*sy_timer_cb)(void *arg);

/* What the OTLP request of each signal is, as protobuf-c types (see proto/):
 *   SY_SIGNAL_TRACES  Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest
 *   SY_SIGNAL_METRICS Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest
 *   SY_SIGNAL_LOGS    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest */

/*
 * The table of host functions. It only ever grows at its end; `size` is
 * sizeof(sy_host_api_t) of the host, so test SY_API_HAS(api, member) before using a
 * member added after the minor version the plugin was built for.
 */
struct sy_host_api_s {
    uint16_t abi_major;
    uint16_t abi_minor;
    uint32_t size;

    /* --- Logging (any thread) ------------------------------------------- */

    /* True if a message at `level` would be written: check before formatting. */
    bool (*log_enabled)(const sy_instance_t *inst, sy_log_level_t level);
    /* Writes one line, prefixed with the time, level and the instance's ID. */
    void (*log)(const sy_instance_t *inst, sy_log_level_t level, const char *fmt, ...)
        SY_PRINTF(3, 4);

    /* --- The instance ---------------------------------------------------- */

    /* The component ID ("otlp/2"); valid for the instance's life. Any thread. */
    const char *(*instance_id)(const sy_instance_t *inst);
    /* The libuv loop (uv_loop_t *) of the instance's loop thread. */
    void *(*loop)(const sy_instance_t *inst);
    /* What the whole router is doing. Any thread. */
    sy_status_t (*status)(void);
    /* Signals of the pipelines this instance takes part in (bit set). */
    uint32_t (*signals)(const sy_instance_t *inst);

    /* --- Raw configuration nodes (SY_CFG_RAW), main or loop thread ------- */

    /* 's' scalar, 'm' map, 'l' list, 'n' null or absent. */
    int (*cfg_kind)(const sy_cfg_node_t *node);
    const char *(*cfg_scalar)(const sy_cfg_node_t *node);
    size_t (*cfg_len)(const sy_cfg_node_t *node); /* entries of a map or list */
    const sy_cfg_node_t *(*cfg_at)(const sy_cfg_node_t *node, size_t i, const char **key);
    const sy_cfg_node_t *(*cfg_get)(const sy_cfg_node_t *node, const char *key);
    /* "file:line:col" of the node, for error messages. */
    const char *(*cfg_where)(const sy_cfg_node_t *node);

    /* --- Batches ----------------------------------------------------------- */

    /* A new, empty batch of one signal with one reference, owned by the caller,
     * made by `inst` (its origin). NULL on out of memory. Any thread. */
    sy_batch_t *(*batch_new)(sy_instance_t *inst, sy_signal_t signal);
    /* Memory from the batch's arena, freed with the batch; 16-byte aligned.
     * Only the batch's single owner may allocate. NULL when over the bound. */
    void *(*batch_alloc)(sy_batch_t *batch, size_t size);
    /* The batch's arena as a ProtobufCAllocator * (for protobuf_c unpack and for
     * building a request by hand). Same rule as batch_alloc. */
    void *(*batch_allocator)(sy_batch_t *batch);
    /* Sets the batch's content to encoded protobuf bytes of the signal's request,
     * which must live in the batch's arena (batch_alloc) or outlive the batch.
     * Validates the wire format against the schema and counts the items without
     * decoding. Returns 0, or SY_EINVAL with a sentence in err (malformed, or a
     * string that is not UTF-8), or SY_ENOMEM with a sentence when the request is
     * too large to decode within the core's bound (about 256 MiB decoded). */
    int (*batch_set_encoded)(sy_batch_t *batch, const uint8_t *data, size_t len, char *err,
                             size_t err_len);
    /* Sets the batch's content to a decoded request allocated in the batch's arena
     * (batch_allocator), and counts its items. Returns 0 or SY_EINVAL. */
    int (*batch_set_decoded)(sy_batch_t *batch, void *request);
    /* Takes one more reference (any thread). */
    void (*batch_retain)(sy_batch_t *batch);
    /* Drops one reference; the last frees the batch (any thread). */
    void (*batch_release)(sy_batch_t *batch);
    /* Signal, items, bytes, origin. */
    void (*batch_info)(const sy_batch_t *batch, sy_batch_info_t *info);
    /* The decoded request (see the types above), unpacked into the batch's arena
     * on first use. Read-only. NULL if the bytes do not decode. Any thread
     * holding a reference. */
    const void *(*batch_request)(sy_batch_t *batch);
    /*
     * The decoded request for changing it in place. Drops the encoded bytes, which
     * are packed again when needed. Call batch_recount() after changing the number
     * of items. Returns NULL, and changes nothing, when:
     *  - the batch is shared: it has more than one reference, or it is a piece of
     *    batch_split() (whose structs point into the batch it was cut from, which
     *    others may be reading); a batch that pieces were cut from is shared
     *    through their references. Refused even to a plugin with the flag.
     *  - the caller is a plugin without SY_PLUGIN_MUTATES_DATA, called from its
     *    consume() or a timer of its own, and the batch is not one this instance
     *    made (batch_new, batch_merge, batch_split of its own: the batch's
     *    origin). A receiver building its own, unshared batch is allowed.
     *  - the bytes do not decode.
     * A refusal is logged at error level with the instance's ID and counted in
     * switchyard_batch_mutation_refused_total. A processor with
     * SY_PLUGIN_MUTATES_DATA is always handed a batch it owns alone (the host
     * copies a shared one first), so for it a NULL here means its own retain or
     * split made the batch shared. Any thread holding a reference.
     */
    void *(*batch_request_mut)(sy_batch_t *batch);
    void (*batch_recount)(sy_batch_t *batch);
    /* The encoded request, packed on first use when the batch was built decoded.
     * Valid while the caller holds its reference. NULL on failure. Any thread. */
    const uint8_t *(*batch_encoded)(sy_batch_t *batch, size_t *len);
    /* One new batch holding every item of batches[0..n) in order (they must share
     * one signal); the inputs keep their references, owned by the caller. */
    sy_batch_t *(*batch_merge)(sy_instance_t *inst, sy_batch_t *const *batches, size_t n);
    /* Splits off the first `max_items` items of *batch into a new batch returned
     * to the caller; *batch is replaced by a batch holding the rest (the old
     * reference is released). If the batch holds no more than max_items, returns
     * it whole and sets *batch to NULL. */
    sy_batch_t *(*batch_split)(sy_instance_t *inst, sy_batch_t **batch, uint64_t max_items);

    /* --- Data flow ---------------------------------------------------------- */

    /*
     * Receivers and processors: hands one batch downstream (the next processor,
     * or every pipeline/exporter that follows). On SY_OK the reference is handed
     * over. On SY_EAGAIN (a queue downstream is full; a receiver should tell its
     * client to retry) or SY_ECLOSED (shutting down) the caller still owns it.
     * Receivers: any thread of their own; processors: their loop thread.
     */
    int (*emit)(sy_instance_t *inst, sy_batch_t *batch);
    /* Exporters: wakes the host after consume() returned SY_EAGAIN. Any thread. */
    void (*ready)(sy_instance_t *inst);

    /* --- Timers on the instance's loop thread -------------------------------- */

    /* Calls cb(arg) on the loop thread after `timeout_ms`, then every `repeat_ms`
     * (0: once). Returns NULL on failure. */
    sy_timer_t *(*timer_start)(sy_instance_t *inst, uint64_t timeout_ms, uint64_t repeat_ms,
                               sy_timer_cb cb, void *arg);
    /* Stops and frees the timer (loop thread). Safe from inside its callback. */
    void (*timer_stop)(sy_timer_t *timer);

    /* --- The plugin's own metrics (served on service.telemetry.metrics) ------ */

    /* Registers a metric of the instance. `name` is a Prometheus name without the
     * "switchyard_" prefix ("receiver_accepted_spans"); the host adds the labels
     * that identify the instance. Main or loop thread, in create() or start(). */
    sy_metric_t *(*metric_register)(sy_instance_t *inst, const char *name, const char *help,
                                    sy_metric_type_t type);
    /* Adds to a counter or gauge (any thread, lock-free). */
    void (*metric_add)(sy_metric_t *metric, int64_t delta);
    /* Sets a gauge (any thread, lock-free). */
    void (*metric_set)(sy_metric_t *metric, int64_t value);

    /* Exporters with SY_PLUGIN_REPORTS_OUTCOME: `items` of `signal` were delivered
     * (sent = true) or given up on (sent = false: dropped after retries, refused
     * by the backend as permanent, or dropped from a full sending queue). Feeds
     * the exporter_sent_* / exporter_send_failed_* metrics. Any thread. */
    void (*exporter_outcome)(sy_instance_t *inst, sy_signal_t signal, uint64_t items, bool sent);

    /* End of ABI 1.0. New members go below this line only. */

    /* --- ABI 1.1: the view (docs/view.md) ------------------------------------- */

    /* Opens a view of the batch's encoded request (packed first if the batch was
     * built decoded). The caller keeps its reference until view_close(). NULL on
     * out of memory. Any thread holding a reference; the view is then used by
     * that thread only. Reading never changes the batch, shared or not. */
    sy_view_t *(*view_open)(sy_batch_t *batch);
    /* Frees the view, its nodes and any edits not committed. */
    void (*view_close)(sy_view_t *view);
    /* The request node, the root of the tree. */
    sy_view_node_t *(*view_root)(sy_view_t *view);
    sy_node_kind_t (*view_kind)(const sy_view_node_t *node);
    /* The enclosing node: a data point's metric, an item's scope, a scope's
     * resource, a resource's request; NULL for the request. */
    sy_view_node_t *(*view_parent)(const sy_view_node_t *node);
    /* The number of children of one relation (0 when it does not apply), and the
     * i-th (NULL past the end). The first call indexes them: one walk of the
     * node's bytes, nodes from the view's arena. */
    size_t (*view_count)(sy_view_node_t *node, sy_view_rel_t rel);
    sy_view_node_t *(*view_at)(sy_view_node_t *node, sy_view_rel_t rel, size_t i);
    /* Reads one field into *out: SY_VALUE_EMPTY when it is absent. Returns 0, or
     * SY_ENOTSUP when the node (and the nodes that enclose it) has no such field,
     * SY_EINVAL on bytes that do not parse. */
    int (*view_get)(sy_view_node_t *node, sy_field_t field, sy_value_t *out);
    /* Attributes of a node: a resource's, a scope's, a metric's metadata, an
     * item's, an event's, a link's, an exemplar's filtered attributes. */
    size_t (*view_attr_count)(sy_view_node_t *node);
    /* The i-th attribute: key (STRING) and value. Returns 0 or SY_EINVAL. */
    int (*view_attr_at)(sy_view_node_t *node, size_t i, sy_value_t *key, sy_value_t *val);
    /* The value of the first attribute named key[0..keylen). Returns 0, or
     * SY_EAGAIN when there is none (*val is then EMPTY). */
    int (*view_attr_get)(sy_view_node_t *node, const char *key, size_t keylen, sy_value_t *val);
    /* The next entry of an ARRAY (key untouched) or MAP (key set; may be NULL).
     * Returns 1 with an entry, 0 at the end, SY_EINVAL on bytes that do not parse. */
    int (*view_value_next)(sy_value_iter_t *it, sy_value_t *key, sy_value_t *val);

    /* Edits: recorded in the view, applied by view_commit(). Returns 0, or
     * SY_ENOTSUP (the field cannot be written on that node), SY_EINVAL (a value
     * of the wrong type), SY_ENOMEM. Setting a field to EMPTY removes it. */
    int (*view_set)(sy_view_node_t *node, sy_field_t field, const sy_value_t *val);
    /* Returns 0 when done, SY_EAGAIN when the mode says to leave it alone. */
    int (*view_attr_set)(sy_view_node_t *node, const char *key, size_t keylen,
                         const sy_value_t *val, sy_attr_mode_t mode);
    /* Removes every attribute of that key. 0, or SY_EAGAIN when there was none. */
    int (*view_attr_delete)(sy_view_node_t *node, const char *key, size_t keylen);
    /* Gives the attribute `key` the name `new_key`, keeping its value; an
     * attribute already named new_key is removed. 0, or SY_EAGAIN when absent. */
    int (*view_attr_rename)(sy_view_node_t *node, const char *key, size_t keylen,
                            const char *new_key, size_t new_keylen);
    /* Drops an item, event, link, exemplar, metric, scope or resource. A scope
     * (metric, resource) all of whose items (points, scopes) are dropped is
     * dropped with them at commit. */
    int (*view_drop)(sy_view_node_t *node);
    /*
     * Applies every recorded edit in one pass: writes the new encoded request
     * into the batch's arena, makes it the batch's content (its decoded form is
     * dropped, its items recounted) and resets the view onto the new bytes (node
     * handles from before are invalid). With no edits it does nothing. Refused
     * exactly as batch_request_mut() refuses (a shared batch; a plugin without
     * SY_PLUGIN_MUTATES_DATA changing a batch it did not make): returns SY_EAGAIN,
     * leaves the batch unchanged, logs and counts the refusal. SY_EINVAL when the
     * result does not validate (a string set that is not UTF-8), SY_ENOMEM. On
     * any error the edits are discarded and the view reads the batch as before.
     */
    int (*view_commit)(sy_view_t *view);

    /* A builder of a new batch of `signal` from items of other batches, made by
     * `inst` (the new batch's origin). NULL on out of memory. */
    sy_view_builder_t *(*view_build)(sy_instance_t *inst, sy_signal_t signal);
    /* Copies an item (a span, a data point, a log record) with its resource and
     * scope (and metric) as they are encoded, without the view's pending edits.
     * Items whose resource and scope (and metric) are the same bytes as the ones
     * of the item added before share one ResourceX / ScopeX (Metric) in the new
     * batch. The source batch may be released as soon as this returns.
     * Returns 0, SY_EINVAL (not an item of the builder's signal), SY_ENOMEM. */
    int (*view_build_add)(sy_view_builder_t *builder, const sy_view_node_t *item);
    /* The new batch (one reference, the caller's) and frees the builder; NULL on
     * failure (the builder is freed all the same). */
    sy_batch_t *(*view_build_finish)(sy_view_builder_t *builder);
    /* Frees a builder without making a batch. */
    void (*view_build_abort)(sy_view_builder_t *builder);

    /* --- ABI 1.1: receivers refused on a processor's word ------------------ */

    /* Processors: while `refuse` is true, a receiver that emits into this
     * processor's pipeline is refused with SY_EAGAIN (its client is told to retry
     * later), as when the pipeline's queue is full. What the pipeline already took
     * still flows. For the memory_limiter; any thread. */
    void (*pipeline_refuse)(sy_instance_t *inst, bool refuse);

    /* --- ABI 1.2: config scalars' style, containers a plugin encodes -------- */

    /* Whether a raw configuration scalar was quoted (or tagged !!str) in the
     * YAML, so that `"123"` is meant as a string and `123` as a number. A bare
     * `${env:X}` is replaced by its value read as YAML (42 is a plain scalar,
     * "42" in quotes a quoted one), `"${env:X}"` is quoted. False for NULL and
     * for maps and lists. Main or loop thread. */
    bool (*cfg_quoted)(const sy_cfg_node_t *node);
    /* Makes *out an ARRAY or MAP value for view_set() / view_attr_set() from its
     * encoded content: the fields of an ArrayValue (repeated AnyValue values = 1)
     * or of a KeyValueList (repeated KeyValue values = 1), without their own tag
     * and length. The content is not copied here: it must stay valid until the
     * value has been written (view_set() and view_attr_set() copy it). Returns 0,
     * or SY_EINVAL when type is neither ARRAY nor MAP or the content does not
     * parse. Any thread. */
    int (*value_container)(sy_value_type_t type, const uint8_t *content, size_t len,
                           sy_value_t *out);

    /* --- ABI 1.4: connectors ------------------------------------------------ */

    /*
     * Connectors: hands one batch to the pipelines named in `pipelines` (ids as in
     * the configuration, "metrics/fast"), each of which the connector feeds and
     * whose signal is the batch's. All are checked for room first: on SY_OK the
     * reference is handed over (to every one of them). On SY_EAGAIN (a queue is
     * full; nothing was taken) the caller still owns it: a connector that then
     * returns SY_EAGAIN from consume() is offered that batch again once the full
     * pipeline has taken some of its queue (the host calls api->ready() for it).
     * On SY_EINVAL (a name that is not such a pipeline) the caller still owns it.
     * api->emit() from a connector behaves the same for every pipeline of the
     * batch's signal that it feeds. Connector's loop thread.
     */
    int (*emit_to)(sy_instance_t *inst, sy_batch_t *batch, const char *const *pipelines, size_t n);
    /*
     * Connectors: the ids of the pipelines of `signal` that the connector feeds, in
     * configuration order; writes at most `max` pointers (valid for the instance's
     * life) and returns how many there are. For checking a routing table in
     * create(). Loop thread.
     */
    size_t (*connector_pipelines)(sy_instance_t *inst, sy_signal_t signal, const char **ids,
                                  size_t max);

    /*
     * The interface `name` (see sy_plugin_t.extension_interface) of the extension
     * instance `extension_id` ("bearertokenauth/in"), or NULL when no extension of
     * that id is running (it must be listed in service.extensions) or it offers
     * no such interface. Extensions start before every other component and stop
     * after them, so a receiver or exporter may call this from create() or
     * start() and use the interface until its own shutdown has finished. Main or
     * loop thread. (ABI 1.4, appended.)
     */
    const void *(*extension_get)(sy_instance_t *inst, const char *extension_id, const char *name);

    /*
     * Processors (the memory_limiter): bounds the bytes of batches that all the
     * router's queues (pipelines' and exporters' input queues) may hold together
     * to at most `bytes`; the smallest bound asked for wins, and the environment's
     * SWITCHYARD_QUEUE_BUDGET, when set, overrides them all. Without any, the
     * budget is 16 MiB (docs/architecture.md, "Memory budget"). Any thread.
     */
    void (*queue_budget_limit)(sy_instance_t *inst, uint64_t bytes);

    /* --- ABI 1.5 ------------------------------------------------------------ */

    /*
     * The running router as one JSON document (docs/status.md), for status pages
     * such as the zpages extension: the build and process figures (version,
     * uptime, resident memory, CPU seconds), every pipeline with its receivers,
     * processors and exporters (connectors included) and its queue, and every
     * component with the counters the router's own metrics show for it (the same
     * values, read at one moment: receiver accepted/refused, processor
     * incoming/outgoing/refused/dropped, exporter and connector sent/failed/
     * enqueue_failed, connector emitted; queue size, capacity, items and bytes)
     * and its last warnings and errors with their times. While the router is
     * starting, counters and queues are left out.
     *
     * On SY_OK, *out is a malloc()ed, NUL-terminated UTF-8 document that the
     * caller frees with free(), and *len (when len is not NULL) its length
     * without the NUL. SY_EAGAIN while a configuration reload is replacing the
     * graph (it does not wait: ask again in a moment), SY_EINVAL for a NULL inst
     * or out, SY_ENOMEM when it could not be built; *out is then NULL. `inst` is
     * the caller's own instance.
     * Any thread, from the caller's start() until its shutdown() returns; it
     * costs a walk of the graph (no plugin is called) and a read of /proc/self.
     */
    int (*status_json)(sy_instance_t *inst, char **out, size_t *len);

    /* --- ABI 1.6 ------------------------------------------------------------ */

    /*
     * The encoded request as pieces which, written back to back, are the bytes
     * batch_encoded() would return, without joining them into one buffer: a batch
     * made by batch_merge() keeps its inputs' requests as they were (two encoded
     * export requests one after the other are one request). Fills
     * out[0 .. min(n, max)) and returns n, the number of pieces: call again with
     * room for n when n > max. Returns 0 when the batch has no encoded form (its
     * decoded request does not pack). The pointers stay valid while the caller
     * holds its reference, and the batch is not joined: an exporter that writes
     * the request unchanged (no compression) saves a copy of every byte with it
     * (curl read callbacks, writev, nghttp2 data providers). Any thread holding a
     * reference.
     */
    size_t (*batch_pieces)(sy_batch_t *batch, sy_piece_t *out, size_t max);

    /*
     * Settle tokens: answering a client only once its request's data is written
     * to the persistent queue of every exporter with one that the request
     * reaches (docs/reliability.md). A receiver asks settle_wanted() per request
     * (cheap: a walk of its pipelines' exporters, current after a reload); when
     * true it makes a token with settle_new(), attaches it to the request's
     * batch with settle_attach() before api->emit(), and lets go of its own hold
     * with settle_release() after emit() returned, whatever it returned (on a
     * refusal the batch's release settles the token as well). done(ud, status)
     * then runs exactly once, on any thread (often another exporter's, or the
     * caller's own inside settle_release()): status SY_OK when every durable
     * exporter has written the data and every other exporter took it into its
     * queue (or a processor dropped it), < 0 when some exporter failed or gave it
     * up (the client should be told to retry). The token is freed after done()
     * returns. A batch carries its tokens through processors: merged batches
     * carry all their inputs', split pieces and copies their source's.
     * settle_new: NULL for out of memory (answer as today). Any thread.
     */
    struct sy_settle_s *(*settle_new)(sy_instance_t *inst, void (*done)(void *ud, int status),
                                      void *ud);
    /* Attaches a token to a batch that has not been emitted yet: SY_OK, SY_EINVAL
     * (NULL, or emitted), SY_ENOMEM. The caller's hold is kept. */
    int (*settle_attach)(sy_batch_t *batch, struct sy_settle_s *token);
    /* Lets go of the maker's hold (exactly once per token). */
    void (*settle_release)(struct sy_settle_s *token);
    /* Whether receiver `inst` feeds a pipeline with an exporter that declared
     * itself durable. */
    bool (*settle_wanted)(sy_instance_t *inst);
    /*
     * Exporters: declares that consume() returning SY_OK means the batch is
     * written to a persistent queue (the exporterhelper calls it with
     * sending_queue.storage). Its receivers then wait for it. From create() or
     * start().
     */
    void (*settle_durable)(sy_instance_t *inst);

    /* --- ABI 1.7 ------------------------------------------------------------ */

    /*
     * Labelled metrics: a metric of the instance whose series differ by the values
     * of the labels named here (n of them, valid Prometheus label names, none
     * starting with "__" nor equal to a label the host adds for the instance, such
     * as "processor"): the collector's otelcol_processor_tail_sampling_
     * count_traces_sampled{policy,sampled}. Name, help and type as
     * metric_register(). Returns NULL on a bad name or out of memory (the plugin
     * then counts nothing). Registering the same again returns the same handle.
     * Main or loop thread, in create() or start().
     */
    struct sy_labelled_metric_s *(*metric_register_labelled)(sy_instance_t *inst, const char *name,
                                                             const char *help,
                                                             sy_metric_type_t type,
                                                             const char *const *label_names,
                                                             size_t n);
    /*
     * One series of a labelled metric: label_values holds one value per label
     * name, in their order (NULL reads as ""; any bytes, escaped by the host when
     * rendered). The same values give the same series. The result is a plain
     * sy_metric_t for metric_add() / metric_set(), valid as long as any metric of
     * the instance. It takes a lock: look a series up once (at create(), or the
     * first time a label value is seen) and keep the handle, never per item.
     * NULL for a NULL metric, out of memory, or labels longer than 2 KiB.
     * Any thread.
     */
    sy_metric_t *(*metric_series)(struct sy_labelled_metric_s *metric,
                                  const char *const *label_values);

    /*
     * The compressed twin: a receiver that decompressed a request keeps the
     * bytes the client sent, so that an exporter compressing with the same
     * encoding can send them instead of compressing again. `encoding` is "gzip"
     * or "zstd" (formats in which two compressed streams written back to back
     * decompress to the two contents back to back: gzip members, zstd frames);
     * `data` decompresses to exactly the batch's current encoded request and
     * lives as long as the batch (batch_alloc() memory). Call after
     * batch_set_encoded(), before emit(). SY_OK, or SY_EINVAL (another encoding,
     * no encoded form). The twin is dropped as soon as the content changes (a
     * view's edits, batch_request_mut(), a new encoded or decoded form), so a
     * reader never gets bytes of an older content. Any thread holding the only
     * reference.
     */
    int (*batch_set_compressed)(sy_batch_t *batch, const char *encoding, const uint8_t *data,
                                size_t len);
    /*
     * The batch's request compressed with `encoding`, as pieces written back to
     * back, without compressing anything: the twins of the requests it is made
     * of (a merge's inputs), when every one of them has an unchanged twin of that
     * encoding. Fills out[0 .. min(n, max)) and returns n (call again with room
     * for n when n > max), or 0 when there is no such twin: the exporter
     * compresses batch_pieces() itself. Any thread holding a reference.
     */
    size_t (*batch_compressed_pieces)(sy_batch_t *batch, const char *encoding, sy_piece_t *out,
                                      size_t max);

    /* --- ABI 1.8 ------------------------------------------------------------ */

    /*
     * After emit() of a batch of `signal` returned SY_EAGAIN: true when the
     * refusal was a queue that is full for the moment, so that the receiver may
     * hold the request (already read) and emit() it again shortly, as the
     * collector's receivers wait for a consumer that blocks; false when a
     * processor refuses on purpose (a memory_limiter shedding load,
     * pipeline_refuse()) or the host is stopping: the client is answered at
     * once. plugins/common/emit_wait.c does the waiting. Receivers; any thread.
     */
    bool (*emit_may_wait)(sy_instance_t *inst, sy_signal_t signal);
    /*
     * Whether a pipeline of `signal` that the receiver feeds has an exporter
     * whose plugin declares SY_PLUGIN_SENDS_COMPRESSED: only then is keeping the
     * bytes a client compressed (batch_set_compressed()) worth their memory.
     * Receivers; any thread.
     */
    bool (*compressed_wanted)(sy_instance_t *inst, sy_signal_t signal);
};

/* A labelled metric (metric_register_labelled(), ABI 1.7). */
typedef struct sy_labelled_metric_s sy_labelled_metric_t;

/* True if the host's table has `member` (it was added at or before the host's minor). */
#define SY_API_HAS(api, member) \
    ((api)->size >= offsetof(sy_host_api_t, member) + sizeof(((sy_host_api_t *)0)->member))

/* Logs through the host, formatting only when the level is enabled. */
#define SY_LOG(api, inst, level, ...)                                                      \
    do {                                                                                   \
        if ((api)->log_enabled((inst), (level))) (api)->log((inst), (level), __VA_ARGS__); \
    } while (0)

#ifdef __cplusplus
}
#endif
#endif /* SWITCHYARD_PLUGIN_H */
