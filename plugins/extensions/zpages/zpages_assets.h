/*
 * zpages_assets.h - the page's files, compiled into the plugin.
 *
 * zpages_assets.c is generated at build time by embed_assets.cmake from every
 * file in web/ (*.html, *.css, *.js): one entry per file, served at "/<name>".
 */
#ifndef ZP_ASSETS_H
#define ZP_ASSETS_H

#include <stddef.h>

typedef struct zp_asset_s {
    const char *path;         /* "/index.html" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t len;
} zp_asset_t;

extern const zp_asset_t zp_assets[];
extern const size_t zp_asset_count;

/* The asset served at `path`, or NULL. */
const zp_asset_t *zp_asset_find(const char *path);

#endif
