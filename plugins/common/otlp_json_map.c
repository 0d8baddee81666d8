/*
 * otlp_json_map.c - field names and special cases of OTLP/JSON, shared by both
 * directions of the codec. See otlp_json_map.h.
 */
#include "otlp_json_map.h"

#include <string.h>

const char *syc__json_name(const ProtobufCFieldDescriptor *f, char *buf, size_t size)
{
    size_t i = 0;
    for (const char *p = f->name; *p && i + 1 < size; p++) {
        if (*p == '_' && p[1]) {
            p++;
            buf[i++] = (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
        } else {
            buf[i++] = *p;
        }
    }
    buf[i] = '\0';
    return buf;
}

/* True if `key` is the proto name of the field or its lowerCamelCase JSON name. */
static bool field_name_matches(const char *name, const unsigned char *key, size_t len)
{
    size_t i = 0;
    bool exact = true;
    for (const char *p = name; *p; p++, i++)
        if (i >= len || key[i] != (unsigned char)*p) {
            exact = false;
            break;
        }
    if (exact && i == len) return true;
    i = 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        if (c == '_' && p[1]) {
            p++;
            c = (p[0] >= 'a' && p[0] <= 'z') ? (char)(p[0] - 'a' + 'A') : p[0];
        }
        if (i >= len || key[i] != (unsigned char)c) return false;
        i++;
    }
    return i == len;
}

const ProtobufCFieldDescriptor *syc__json_find_field(const ProtobufCMessageDescriptor *desc,
                                                     const unsigned char *key, size_t len)
{
    if (len == 0) return NULL;
    /* Both spellings of a name start with the same character: a cheap filter. */
    for (unsigned i = 0; i < desc->n_fields; i++)
        if ((unsigned char)desc->fields[i].name[0] == key[0] &&
            field_name_matches(desc->fields[i].name, key, len))
            return &desc->fields[i];
    return NULL;
}

size_t syc__json_hex_id_size(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_BYTES) return 0;
    if (strcmp(f->name, "trace_id") == 0) return 16;
    if (strcmp(f->name, "span_id") == 0 || strcmp(f->name, "parent_span_id") == 0) return 8;
    return 0;
}

int syc__wire_type_of(ProtobufCType type)
{
    switch (type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_BOOL:
    case PROTOBUF_C_TYPE_ENUM:
        return 0;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 1;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return 5;
    default:
        return 2;
    }
}
