/*
 * switchyard/helper.h - the helpers the built-in plugins use, for plugin authors
 * who want them: library switchyard-helper (static; pkg-config
 * switchyard-helper, CMake Switchyard::helper), prefix syc_.
 *
 *   - the exporter helper (helper/exporterhelper.h): the collector's `timeout`,
 *     `retry_on_failure` and `sending_queue`, their config fields
 *     (SYC_XH_CONFIG_FIELDS), a queue on the instance's loop, retries with
 *     back-off, and outcome reporting through api->exporter_outcome();
 *   - the HTTP/1.1 server on a libuv loop (helper/http_server.h) and the
 *     endpoint resolver (helper/endpoint.h);
 *   - gRPC framing, status codes and grpc-timeout (helper/grpc_frame.h), and the
 *     whole-buffer compression they use (helper/compress.h);
 *   - SY_E* return codes as HTTP statuses and gRPC codes (helper/answer.h).
 *
 * These are the in-tree sources of plugins/common, installed as they are: the
 * function names and structs are stable within SY_HELPER_VERSION_MAJOR.MINOR of
 * one switchyard release (the library is versioned with the project), not across
 * releases as the plugin ABI is. Link it statically into the plugin (its symbols
 * are compiled with hidden visibility, so the entry stays the only export); it
 * needs libuv, libcurl, yajl, zlib, libzstd, libdeflate, snappy, libpcre2-8,
 * libcrypto and libprotobuf-c, which `pkg-config --libs switchyard-helper` lists.
 * The headers include <uv.h>: under -std=c11 define _GNU_SOURCE (or
 * _POSIX_C_SOURCE 200809L) before the first #include, as libuv needs.
 */
#ifndef SWITCHYARD_HELPER_H
#define SWITCHYARD_HELPER_H

#define SY_HELPER_VERSION_MAJOR 0
#define SY_HELPER_VERSION_MINOR 1

#include <switchyard/plugin.h>

#include "helper/answer.h"
#include "helper/compress.h"
#include "helper/endpoint.h"
#include "helper/exporterhelper.h"
#include "helper/grpc_frame.h"
#include "helper/http_server.h"

#endif /* SWITCHYARD_HELPER_H */
