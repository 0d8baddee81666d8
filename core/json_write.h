/*
 * json_write.h - the small pieces of JSON the core writes itself (the config
 * schema of `components --schema`, the status document of api->status_json()),
 * onto a stdio stream (a file, or open_memstream()).
 */
#ifndef SY_CORE_JSON_WRITE_H
#define SY_CORE_JSON_WRITE_H

#include <stdio.h>

/* Writes s (NULL: "") as a JSON string: quotes, backslashes and control
 * characters escaped, bytes that are not UTF-8 as U+FFFD. */
void sy__json_str(FILE *out, const char *s);

#endif
