/*
 * attr_actions.h - the collector's attribute actions (insert, update, upsert,
 * delete, hash, extract, convert), shared by the `attributes` and `resource`
 * processors and written with the view only (docs/view.md).
 *
 * A list of actions is parsed once from its YAML node and applied, in order, to
 * the attributes of one view node at a time. Each action sees the result of the
 * ones before it (the engine keeps the node's attributes in a scratch table and
 * records only the difference as view edits at the end).
 */
#ifndef SY_COMMON_ATTR_ACTIONS_H
#define SY_COMMON_ATTR_ACTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <switchyard/plugin.h>

typedef struct syc_attr_actions_s syc_attr_actions_t;

/*
 * Parses a YAML list of actions (`actions:` of the attributes processor,
 * `attributes:` of the resource processor). `what` names the list in errors
 * ("actions"). Returns the actions, owned by the caller (syc_attr_actions_free),
 * or NULL with a sentence in err that starts with the file:line:col of the node
 * at fault. Main or loop thread.
 */
syc_attr_actions_t *syc_attr_actions_parse(const sy_host_api_t *api, const sy_cfg_node_t *list,
                                           const char *what, char *err, size_t err_len);

void syc_attr_actions_free(syc_attr_actions_t *actions);

/*
 * Applies every action to the attributes of `node`, recording the changes as view
 * edits (committed later by the caller). Returns the number of edits recorded
 * (0: the node is unchanged), or a negative SY_E*. The actions hold scratch
 * memory, so one list is applied by one thread at a time.
 */
int syc_attr_actions_apply(syc_attr_actions_t *actions, const sy_host_api_t *api,
                           sy_view_node_t *node);

/*
 * Reads a YAML scalar as the collector types a value: true/false as BOOL,
 * integers as INT, floats as DOUBLE, anything else as STRING (pointing into
 * `text`). For a plain scalar only: the actions read a quoted one as a string
 * (api->cfg_quoted, ABI 1.2).
 */
void syc_attr_value_from_yaml(const char *text, sy_value_t *out);

/* A scalar config node n (whose text, a copy that outlives out, is `text`) as
 * the collector's YAML decoding types it: quoted (api->cfg_quoted, ABI 1.2), a
 * string; plain, as syc_attr_value_from_yaml. */
void syc_attr_value_from_cfg(const sy_host_api_t *api, const sy_cfg_node_t *n, const char *text,
                             sy_value_t *out);

/* True if two values are equal in type and content (strings byte-wise). */
bool syc_attr_value_equal(const sy_value_t *a, const sy_value_t *b);

/* A growable byte buffer (p is NULL until something is put). */
typedef struct syc_buf_s {
    char *p;
    size_t len, cap;
} syc_buf_t;

/* Appends n bytes to b. Returns 0 or SY_ENOMEM. */
int syc_buf_put(syc_buf_t *b, const void *p, size_t n);

/* Protobuf wire pieces on a syc_buf_t: the bytes the varint of v takes (1..10);
 * appending a varint; appending the header (tag and length) of length-delimited
 * field `field` (1..15). The appends return 0 or SY_ENOMEM. */
size_t syc_varint_size(uint64_t v);
int syc_buf_put_varint(syc_buf_t *b, uint64_t v);
int syc_buf_put_ld(syc_buf_t *b, uint32_t field, size_t len);

/*
 * Appends one entry of an encoded container to b: a KeyValue when key (a STRING)
 * is not NULL, else an ArrayValue element. v is a scalar, or an ARRAY/MAP whose
 * encoded content is content[0, clen) (content NULL: v's own, as read from a
 * view). What b holds in the end is what value_container() takes. Returns 0 or
 * SY_ENOMEM.
 */
int syc_anyvalue_put_entry(syc_buf_t *b, const sy_value_t *key, const sy_value_t *v,
                           const void *content, size_t clen);

/*
 * v as the collector's pcommon Value.AsString() writes it: strings as they are,
 * ints in decimal, doubles as Go's JSON ("1.5", "1e-7"; NaN, +Inf, -Inf), bools
 * true/false, bytes in standard base64, nothing as "". *out points at v's own
 * string, a constant, or buf (at least syc_value_as_string_cap(v) bytes). Returns
 * 0, SY_ENOMEM when buf is too small, SY_EINVAL for arrays and maps.
 */
int syc_value_as_string(const sy_value_t *v, char *buf, size_t cap, const char **out,
                        size_t *out_len);
size_t syc_value_as_string_cap(const sy_value_t *v);

#endif
