/* cli.h - the command line, parsed. */
#ifndef SY_CORE_CLI_H
#define SY_CORE_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

typedef enum sy__command_e {
    SY__CMD_RUN = 0,
    SY__CMD_VALIDATE,
    SY__CMD_COMPONENTS,
    SY__CMD_PRINT_CONFIG,
} sy__command_t;

typedef struct sy__cli_s {
    sy__command_t command;
    char **configs; /* file paths, "file:" prefix removed */
    size_t nconfigs;
    char **sets; /* "a.b=c" */
    size_t nsets;
    char **plugin_dirs;
    size_t nplugin_dirs;
    uint64_t shutdown_timeout_ms; /* 0: the default */
    char *schema;                 /* components --schema KIND/TYPE (or TYPE): JSON Schema */
    char *markdown;               /* components --markdown KIND/TYPE (or TYPE): a README table */
    bool watch_config;            /* re-read the --config files when they change */
    bool help, version;
} sy__cli_t;

/* Parses argv. Accepts "--opt value" and "--opt=value". Returns 0, or -1 with a
 * sentence in err. */
int sy__cli_parse(sy__cli_t *cli, int argc, char **argv, char *err, size_t err_len);
void sy__cli_free(sy__cli_t *cli);

#endif
