/*
 * main.c - the switchyard command line.
 *
 *   switchyard [--config F]... [--set a.b=c]... [--plugin-dir D]...   run (SIGHUP: reload)
 *   switchyard validate --config F ...                                check, start nothing
 *   switchyard components [--plugin-dir D]...                         list plugins found
 *   switchyard components --schema|--markdown KIND/TYPE               one plugin's config
 *   switchyard print-config --config F ...                            the merged config
 *   switchyard --version | --help
 *
 * Exit codes: 0 success; 1 invalid configuration; 2 usage error; 3 failed to
 * start (a port in use, a plugin's start failed); 4 stopped, but something missed
 * its shutdown deadline (items counted as failed).
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "router.h"
#include "telemetry.h"
#include "watch.h"

#ifndef SY_VERSION
#define SY_VERSION "0.0.0"
#endif

enum { EXIT_CONFIG = 1, EXIT_USAGE = 2, EXIT_START = 3, EXIT_STOP = 4 };

static const char usage_text[] =
    "usage: switchyard [command] [options]\n"
    "\n"
    "Commands:\n"
    "  (none)        run the pipelines of the configuration until SIGTERM or SIGINT;\n"
    "                SIGHUP reloads the configuration\n"
    "  validate      check the configuration and the plugins it names; start nothing\n"
    "  components    list the plugins found on the plugin path; with\n"
    "                --schema KIND/TYPE its configuration as JSON Schema, with\n"
    "                --markdown KIND/TYPE as a README table of keys\n"
    "  print-config  print the configuration after merging, env expansion and --set\n"
    "\n"
    "Options:\n"
    "  --config FILE       a configuration file (repeatable; later files win on merge)\n"
    "  --set KEY=VALUE     override one setting, e.g. --set service.telemetry.logs.level=debug\n"
    "  --shutdown-timeout DURATION  how long draining may take on SIGTERM (default 10s)\n"
    "  --watch-config      reload when a --config file changes (as on SIGHUP: the\n"
    "                      components whose settings did not change go on untouched)\n"
    "  --plugin-dir DIR    search DIR for plugins first (repeatable); see also\n"
    "                      SWITCHYARD_PLUGIN_PATH\n"
    "  --version           print the version and exit\n"
    "  --help              print this help and exit\n"
    "\n"
    "Exit codes: 0 success, 1 invalid configuration, 2 usage error, 3 failed to start,\n"
    "4 stopped, but data was lost or a component missed the shutdown deadline.\n";

/* Writes s as a YAML double-quoted scalar, valid whatever it holds: quotes,
 * backslashes and control characters escaped, bytes that are not UTF-8 as \xNN. */
static void yaml_str(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    putchar('"');
    while (*p) {
        unsigned char c = *p;
        size_t n = c < 0x80             ? 1
                   : (c & 0xE0) == 0xC0 ? 2
                   : (c & 0xF0) == 0xE0 ? 3
                   : (c & 0xF8) == 0xF0 ? 4
                                        : 0;
        bool ok = n > 1 && !(n == 2 && c < 0xC2);
        uint32_t cp = n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
        for (size_t i = 1; ok && i < n; i++) {
            ok = (p[i] & 0xC0) == 0x80;
            cp = cp << 6 | (p[i] & 0x3Fu);
        }
        /* No overlong forms, surrogates or code points past U+10FFFF. */
        if (ok && ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
                   (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
            ok = false;
        /* C1 controls (NEL among them) and U+2028/9 are line breaks or not
         * printable in YAML 1.1, U+FFFE/F not characters: escaped. */
        if (ok && ((cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 || cp == 0xFFFE ||
                   cp == 0xFFFF)) {
            printf("\\u%04x", (unsigned)cp);
            p += n;
            continue;
        }
        if (ok) {
            fwrite(p, 1, n, stdout);
            p += n;
            continue;
        }
        switch (c) {
        case '"':
            fputs("\\\"", stdout);
            break;
        case '\\':
            fputs("\\\\", stdout);
            break;
        case '\n':
            fputs("\\n", stdout);
            break;
        case '\t':
            fputs("\\t", stdout);
            break;
        case '\r':
            fputs("\\r", stdout);
            break;
        default:
            if (c < 0x20 || c >= 0x7F)
                printf("\\x%02x", c);
            else
                putchar(c);
        }
        p++;
    }
    putchar('"');
}

static void yaml_line(const char *indent, const char *key, const char *value)
{
    printf("%s%s: ", indent, key);
    yaml_str(value);
    putchar('\n');
}

/* `switchyard components`: YAML, every string quoted and escaped. */
static int print_components(sy__registry_t *reg)
{
    printf("buildinfo:\n  command: switchyard\n");
    yaml_line("  ", "version", SY_VERSION);
    printf("  abi: \"%d.%d\"\n", SY_ABI_MAJOR, SY_ABI_MINOR);
    static const sy_kind_t kinds[] = {SY_KIND_RECEIVER, SY_KIND_PROCESSOR, SY_KIND_EXPORTER,
                                      SY_KIND_CONNECTOR, SY_KIND_EXTENSION};
    int rc = 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        printf("%ss:\n", sy__kind_name(kinds[k]));
        for (size_t i = 0; i < reg->nfiles; i++) {
            sy__plugin_file_t *f = &reg->files[i];
            if (f->kind != kinds[k]) continue;
            char err[512];
            printf("  - ");
            yaml_line("", "type", f->type);
            if (sy__registry_load(f, err, sizeof(err)) < 0) {
                yaml_line("    ", "error", err);
                yaml_line("    ", "file", f->path);
                rc = 1;
                continue;
            }
            const sy_plugin_t *d = &f->desc;
            printf("    signals: [");
            const char *sep = "";
            if (d->signals & SY_SIGNAL_TRACES) printf("%straces", sep), sep = ", ";
            if (d->signals & SY_SIGNAL_METRICS) printf("%smetrics", sep), sep = ", ";
            if (d->signals & SY_SIGNAL_LOGS) printf("%slogs", sep);
            printf("]\n");
            if (d->kind == SY_KIND_CONNECTOR) {
                /* As otelcol names the pairs: traces_to_metrics, ... */
                static const char *const names[3] = {"traces", "metrics", "logs"};
                printf("    connects: [");
                sep = "";
                for (int in = 0; in < 3; in++)
                    for (int out = 0; out < 3; out++)
                        if ((d->signals & (1u << in)) && (d->connects[in] & (1u << out)))
                            printf("%s%s_to_%s", sep, names[in], names[out]), sep = ", ";
                printf("]\n");
            }
            printf("    abi: \"%u.%u\"\n", d->abi_major, d->abi_minor);
            yaml_line("    ", "version", d->version ? d->version : "");
            yaml_line("    ", "file", f->path);
            if (d->description) yaml_line("    ", "description", d->description);
        }
    }
    return rc;
}

/* `components --schema|--markdown KIND/TYPE` (or TYPE when one kind has it):
 * the plugin's configuration as JSON Schema or as its README's table. */
static int print_schema(sy__registry_t *reg, const char *what, bool json)
{
    sy__plugin_file_t *found = NULL;
    const char *slash = strchr(what, '/');
    sy_kind_t kind;
    if (slash) {
        char kname[32];
        snprintf(kname, sizeof(kname), "%.*s", (int)(slash - what), what);
        if (sy__kind_from_name(kname, &kind) == 0) found = sy__registry_find(reg, kind, slash + 1);
    } else {
        for (size_t i = 0; i < reg->nfiles; i++) {
            if (strcmp(reg->files[i].type, what) != 0) continue;
            if (found) {
                fprintf(stderr, "switchyard: \"%s\" is both %s/%s and %s/%s: give KIND/TYPE\n",
                        what, sy__kind_name(found->kind), what, sy__kind_name(reg->files[i].kind),
                        what);
                return EXIT_USAGE;
            }
            found = &reg->files[i];
        }
    }
    if (!found) {
        fprintf(stderr,
                "switchyard: no plugin \"%s\" on the plugin path (give KIND/TYPE, e.g. "
                "processor/batch; `switchyard components` lists them)\n",
                what);
        return EXIT_USAGE;
    }
    char err[512];
    if (sy__registry_load(found, err, sizeof(err)) < 0) {
        fprintf(stderr, "switchyard: %s\n", err);
        return EXIT_CONFIG;
    }
    if (json)
        sy__cfg_schema_json(stdout, &found->desc, sy__kind_name(found->kind));
    else
        sy__cfg_schema_markdown(stdout, &found->desc);
    return 0;
}

/* Reload counters (own metrics). */
static sy_metric_t *reloads_ok, *reloads_failed;

/* SIGHUP (or --watch-config): loads the configuration again and applies it.
 * Returns false when a component got stuck and the process must leave. */
static bool reload(sy__router_t *router, const sy__router_opts_t *opts)
{
    sy__log(NULL, SY_LOG_INFO, "Reloading the configuration.");
    sy__diag_t diag;
    sy__diag_init(&diag);
    uint64_t t0 = sy__now_ms();
    int rc = sy__router_reload(router, opts, &diag);
    if (rc == SY_EINVAL) {
        /* The errors with their file:line:col, the way a failed start prints them. */
        sy__diag_print(&diag, stderr);
        sy__log(NULL, SY_LOG_ERROR,
                "reload refused: the new configuration is not valid (%zu errors above); "
                "the running configuration stays",
                sy__diag_errors(&diag));
    } else if (rc == SY_ERROR) {
        sy__log(NULL, SY_LOG_ERROR, "reload failed (see above)");
    } else if (rc == SY_OK) {
        if (diag.count) sy__diag_print(&diag, stderr); /* warnings */
        sy__log(NULL, SY_LOG_INFO, "Configuration reloaded in %llu ms.",
                (unsigned long long)(sy__now_ms() - t0));
    }
    sy__diag_free(&diag);
    sy__metric_add(rc == SY_OK ? reloads_ok : reloads_failed, 1);
    return rc != SY__ETIMEDOUT;
}

/* Waits for SIGTERM or SIGINT on the main thread, reloading on SIGHUP; every
 * other thread has these signals blocked, so they are delivered here and nowhere
 * else. Returns false when a reload left a component stuck. */
static bool wait_for_stop(const sigset_t *set, sy__router_t *router, const sy__router_opts_t *opts)
{
    for (;;) {
        int sig = 0;
        if (sigwait(set, &sig) != 0) continue;
        if (sig == SIGHUP) {
            if (!reload(router, opts)) return false;
            continue;
        }
        sy__log(NULL, SY_LOG_INFO, "Received signal from OS: %s", strsignal(sig));
        return true;
    }
}

/* A thread is stuck inside a plugin past the shutdown deadline: nothing may be
 * freed or unloaded under it, and exit() would run destructors that can race it.
 * Leaves at once, with what was written so far flushed. */
static _Noreturn void leave_stuck(int rc)
{
    sy__log(NULL, SY_LOG_ERROR, "exiting with a component still stuck (exit code %d)", rc);
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
}

int main(int argc, char **argv)
{
    sy__cli_t cli;
    char err[256];
    if (sy__cli_parse(&cli, argc, argv, err, sizeof(err)) < 0) {
        fprintf(stderr, "switchyard: %s\n\n%s", err, usage_text);
        return EXIT_USAGE;
    }
    if (cli.help) {
        fputs(usage_text, stdout);
        sy__cli_free(&cli);
        return 0;
    }
    if (cli.version) {
        printf("switchyard version %s (plugin ABI %d.%d)\n", SY_VERSION, SY_ABI_MAJOR,
               SY_ABI_MINOR);
        sy__cli_free(&cli);
        return 0;
    }

    /* Signals first, before any thread exists, so that every thread inherits the
     * mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 0;
    if (cli.command == SY__CMD_COMPONENTS) {
        sy__registry_t reg;
        if (sy__registry_scan(&reg, (const char *const *)cli.plugin_dirs, cli.nplugin_dirs) < 0) {
            fprintf(stderr, "switchyard: cannot scan the plugin path: out of memory\n");
            rc = EXIT_START;
        } else if (cli.schema || cli.markdown)
            rc = print_schema(&reg, cli.schema ? cli.schema : cli.markdown, cli.schema != NULL);
        else
            rc = print_components(&reg);
        sy__registry_free(&reg);
        sy__cli_free(&cli);
        return rc;
    }
    if (cli.nconfigs == 0) {
        fprintf(stderr, "switchyard: at least one --config flag must be provided\n\n%s",
                usage_text);
        sy__cli_free(&cli);
        return EXIT_USAGE;
    }

    sy__diag_t diag;
    sy__diag_init(&diag);
    sy__router_t *router = NULL;
    if (cli.command == SY__CMD_PRINT_CONFIG) {
        sy_cfg_node_t *root = sy__cfg_load((const char *const *)cli.configs, cli.nconfigs,
                                           (const char *const *)cli.sets, cli.nsets, &diag);
        char *yaml = root ? sy__cfg_to_yaml(root) : NULL;
        if (yaml) fputs(yaml, stdout);
        rc = yaml ? 0 : EXIT_CONFIG;
        if (root && !yaml)
            fprintf(stderr, "switchyard: cannot render the configuration: out of memory\n");
        free(yaml);
        sy__cfg_free(root);
        goto done;
    }
    sy__router_opts_t opts = {
        .configs = (const char *const *)cli.configs,
        .nconfigs = cli.nconfigs,
        .sets = (const char *const *)cli.sets,
        .nsets = cli.nsets,
        .plugin_dirs = (const char *const *)cli.plugin_dirs,
        .nplugin_dirs = cli.nplugin_dirs,
        .shutdown_timeout_ms = cli.shutdown_timeout_ms,
    };
    router = sy__router_open(&opts, &diag);
    if (!router) {
        rc = EXIT_CONFIG;
        goto done;
    }
    if (cli.command == SY__CMD_VALIDATE) {
        fprintf(stderr, "switchyard: configuration is valid (%zu pipelines)\n",
                router->svc.npipelines);
        goto done;
    }
    sy__diag_print(&diag, stderr); /* warnings, such as unset variables */
    sy__diag_free(&diag);
    sy__diag_init(&diag);

    sy__log(NULL, SY_LOG_INFO, "Starting switchyard %s (plugin ABI %d.%d)", SY_VERSION,
            SY_ABI_MAJOR, SY_ABI_MINOR);
    const char *metrics = router->svc.metrics_address;
    if (metrics &&
        (sy__telemetry_set_tls(router->svc.metrics_tls, (const char *const *)cli.plugin_dirs,
                               cli.nplugin_dirs, err, sizeof(err)) < 0 ||
         sy__telemetry_start(metrics, err, sizeof(err)) < 0)) {
        sy__log(NULL, SY_LOG_ERROR, "cannot serve own metrics: %s", err);
        rc = EXIT_START;
        goto done;
    }
    if (sy__router_start(router) < 0) {
        sy__log(NULL, SY_LOG_ERROR, "startup failed; stopped what had started");
        rc = EXIT_START;
        if (sy__router_wedged(router)) leave_stuck(rc);
        goto done;
    }
    reloads_ok = sy__metric_register("config_reloads",
                                     "Configuration reloads applied (SIGHUP or --watch-config).",
                                     SY_METRIC_COUNTER, NULL);
    reloads_failed = sy__metric_register("config_reload_failures",
                                         "Configuration reloads refused or failed; the running "
                                         "configuration stayed or runs without what failed.",
                                         SY_METRIC_COUNTER, NULL);
    sy__watch_t *watch = NULL;
    if (cli.watch_config && !(watch = sy__watch_start((const char *const *)cli.configs,
                                                      cli.nconfigs, err, sizeof(err))))
        sy__log(NULL, SY_LOG_ERROR, "--watch-config: %s; reload with SIGHUP instead", err);
    if (!wait_for_stop(&set, router, &opts)) {
        sy__watch_stop(watch);
        leave_stuck(EXIT_STOP);
    }
    sy__watch_stop(watch);
    int crc = sy__router_close(router);
    if (crc == SY__ETIMEDOUT) leave_stuck(EXIT_STOP); /* not freed: a thread is stuck */
    if (crc < 0) {
        sy__log(NULL, SY_LOG_ERROR,
                "stopped, but acknowledged data was not delivered (counted as failed)");
        rc = EXIT_STOP;
    }
    router = NULL;
    sy__log(NULL, SY_LOG_INFO, "Shutdown complete.");

done:
    if (diag.count || diag.lost) sy__diag_print(&diag, stderr);
    /* Every failure says why: a configuration that failed without a message of
     * its own (which should not happen) still gets one. */
    if (rc == EXIT_CONFIG && !diag.count && !diag.lost)
        fprintf(stderr, "switchyard: the configuration could not be loaded (out of memory?)\n");
    sy__router_close(router);
    sy__telemetry_stop();
    sy__diag_free(&diag);
    sy__telemetry_shutdown();
    sy__cli_free(&cli);
    return rc;
}
