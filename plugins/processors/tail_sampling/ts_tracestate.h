/*
 * ts_tracestate.h - reading one key of a W3C `tracestate` header value, for the
 * trace_state policy of the tail_sampling processor.
 */
#ifndef TS_TRACESTATE_H
#define TS_TRACESTATE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Looks for the list member `key=value` in s[0..len) ("k1=v1, k2=v2": members
 * separated by ',' with optional spaces and tabs around them) and points
 * *val, *vlen at the value of the first member whose key is key[0..keylen).
 * Returns false when there is none. Never reads outside s; allocates nothing.
 */
bool ts_tracestate_get(const char *s, size_t len, const char *key, size_t keylen, const char **val,
                       size_t *vlen);

#endif
