/*
 * cli.c - the command line parsed into a sy__cli_t: the command (validate,
 * components, print-config, run), --config, --set and --plugin-dir (each
 * repeatable, as "--flag value" or "--flag=value"), --help and --version. It
 * checks syntax only; main.c decides what to do and prints usage on error.
 */
#include "cli.h"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int push(char ***arr, size_t *n, const char *s)
{
    char **a = realloc(*arr, (*n + 1) * sizeof(char *));
    if (!a) return -1;
    *arr = a;
    if (!(a[*n] = strdup(s))) return -1;
    (*n)++;
    return 0;
}

/* Matches "--name value" or "--name=value"; sets *value and advances *i. */
static int option_value(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != 0) return 0;
    if (*i + 1 >= argc) return -1;
    *value = argv[++*i];
    return 1;
}

int sy__cli_parse(sy__cli_t *cli, int argc, char **argv, char *err, size_t err_len)
{
    memset(cli, 0, sizeof(*cli));
    static const struct {
        const char *name;
        sy__command_t cmd;
    } commands[] = {{"validate", SY__CMD_VALIDATE},
                    {"components", SY__CMD_COMPONENTS},
                    {"print-config", SY__CMD_PRINT_CONFIG},
                    {"run", SY__CMD_RUN}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int m;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            cli->help = true;
            continue;
        }
        if (strcmp(a, "--watch-config") == 0) {
            cli->watch_config = true;
            continue;
        }
        if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0) {
            cli->version = true;
            continue;
        }
        if ((m = option_value(argc, argv, &i, "--config", &v)) != 0) {
            if (m < 0) goto missing;
            if (strncmp(v, "file:", 5) == 0) v += 5;
            if (push(&cli->configs, &cli->nconfigs, v) < 0) goto nomem;
            continue;
        }
        if ((m = option_value(argc, argv, &i, "--set", &v)) != 0) {
            if (m < 0) goto missing;
            if (!strchr(v, '=')) {
                snprintf(err, err_len, "--set %s: expected KEY=VALUE", v);
                goto fail;
            }
            if (push(&cli->sets, &cli->nsets, v) < 0) goto nomem;
            continue;
        }
        if ((m = option_value(argc, argv, &i, "--shutdown-timeout", &v)) != 0) {
            if (m < 0) goto missing;
            int64_t ns;
            if (sy__parse_duration(v, &ns) < 0 || ns <= 0) {
                snprintf(err, err_len, "--shutdown-timeout %s: expected a duration such as 10s", v);
                goto fail;
            }
            cli->shutdown_timeout_ms = (uint64_t)(ns / 1000000);
            continue;
        }
        if ((m = option_value(argc, argv, &i, "--schema", &v)) != 0 ||
            (m = option_value(argc, argv, &i, "--markdown", &v)) != 0) {
            if (m < 0) goto missing;
            char **slot = strncmp(a, "--schema", 8) == 0 ? &cli->schema : &cli->markdown;
            free(*slot);
            if (!(*slot = strdup(v))) goto nomem;
            continue;
        }
        if ((m = option_value(argc, argv, &i, "--plugin-dir", &v)) != 0) {
            if (m < 0) goto missing;
            if (push(&cli->plugin_dirs, &cli->nplugin_dirs, v) < 0) goto nomem;
            continue;
        }
        if (a[0] == '-') {
            snprintf(err, err_len, "unknown flag: %s", a);
            goto fail;
        }
        bool found = false;
        for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
            if (strcmp(a, commands[c].name) == 0 && i == 1) {
                cli->command = commands[c].cmd;
                found = true;
            }
        }
        if (!found) {
            snprintf(err, err_len, "unknown command or argument: %s", a);
            goto fail;
        }
    }
    return 0;
missing:
    snprintf(err, err_len, "flag %s needs a value", argv[argc - 1]);
    goto fail;
nomem:
    snprintf(err, err_len, "out of memory");
fail:
    sy__cli_free(cli);
    return -1;
}

void sy__cli_free(sy__cli_t *cli)
{
    for (size_t i = 0; i < cli->nconfigs; i++)
        free(cli->configs[i]);
    for (size_t i = 0; i < cli->nsets; i++)
        free(cli->sets[i]);
    for (size_t i = 0; i < cli->nplugin_dirs; i++)
        free(cli->plugin_dirs[i]);
    free(cli->configs);
    free(cli->sets);
    free(cli->plugin_dirs);
    free(cli->schema);
    free(cli->markdown);
    memset(cli, 0, sizeof(*cli));
}
