/* abi_layout.h - see abi_layout.c. */
#ifndef SY_TEST_ABI_LAYOUT_H
#define SY_TEST_ABI_LAYOUT_H

#include <stddef.h>

typedef struct abi_member_s {
    char which; /* 'P' sy_plugin_t, 'H' sy_host_api_t; 0 ends the table */
    const char *name;
    size_t offset;
} abi_member_t;

typedef struct abi_sizes_s {
    int minor;
    size_t plugin, host;
} abi_sizes_t;

#endif
