"""The catalogue of bad inputs (issue 15 item 4): one entry per input, with the
answer the router gives in the protocol's own terms and the own metric that counts
it. tests/integration/test_bad_inputs.py runs every entry against the real binary
and its plugins (groups: http, grpc, conn, config) and generates the table of
docs/reliability.md ("Bad inputs") from this list.

An entry:
  id        unique name
  group     the ctest test that runs it: integration.bad_inputs.<group>
  protocol  receiver and protocol (or "config loader")
  input     what is sent
  send      f(target) -> the answer (see wire.py for its shape)
  expect    the answer's fields that must match exactly ("says": a substring of its
            text; "closed": the router closed the connection)
  metric    the own metric (without the switchyard_ prefix and _total suffix) that
            must grow by `delta` (None: no counter for it, said in `note`)
"""
from wire import (MIB, TRACE_EXPORT, bomb, grpc_message, grpc_unary, h2_flood, h2frame,
                  hpack_call_headers, http_head, http_post, http_raw, jaeger_binary,
                  jaeger_compact, json_bad_utf8, json_nested, pb_bad_utf8, pb_nested,
                  pb_raw_len, pb_span_attr, zipkin_json, slowloris, flood_http, flood_grpc,
                  run_config)
from test_otlp_http import trace_request_pb, trace_request_json

PB, JS = "application/x-protobuf", "application/json"
GOOD_PB = trace_request_pb("catalogue-good")
GOOD_JSON = trace_request_json("catalogue-good")

OTLP_HTTP = "OTLP/HTTP (otlp receiver)"
OTLP_GRPC = "OTLP/gRPC (otlp receiver)"
ZIPKIN = "Zipkin HTTP (zipkin receiver)"
J_HTTP = "Jaeger thrift_http"
J_COMPACT = "Jaeger UDP thrift_compact"
J_BINARY = "Jaeger UDP thrift_binary"
CONFIG = "config loader"

H_FAILED = "receiver_otlp_http_failed_requests"
H_MALFORMED = "receiver_otlp_http_malformed_requests"
G_FAILED = "receiver_otlp_grpc_failed_calls"
G_PROTO = "receiver_otlp_grpc_protocol_errors"
Z_INVALID = "receiver_zipkin_invalid_requests"
JH_FAILED = "receiver_jaeger_thrift_http_failed_requests"

ENTRIES = []


def E(id, group, protocol, input, send, expect, metric=None, delta=1, note=""):
    ENTRIES.append(dict(id=id, group=group, protocol=protocol, input=input, send=send,
                        expect=expect, metric=metric, delta=delta, note=note))


def post(path, body, ctype=PB, extra=b"", port="http_port"):
    return lambda t: http_post(getattr(t, port), path, body() if callable(body) else body, ctype, extra)


def raw(payload, port="http_port", **kw):
    return lambda t: http_raw(getattr(t, port), payload, **kw)


def udp(port, data):
    def send(t):
        t.udp(getattr(t, port), data)
        return {"udp": "dropped"}
    return send


def udp_replaced(port, data, want):
    """A datagram that is accepted with its invalid UTF-8 replaced: waits (bounded)
    until the sink holds `want`."""
    def send(t):
        import time
        t.udp(getattr(t, port), data)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if any(want in r["body"] for r in t.sink.received()):
                return {"udp": "accepted", "text": "the sink got the name with U+FFFD"}
            time.sleep(0.02)
        return {"udp": "not at the sink"}
    return send


def grpc(frame, extra=(), **kw):
    return lambda t: grpc_unary(t.grpc_port, frame, extra, **kw)


def gz(data):
    import gzip
    return gzip.compress(data)


# --- OTLP/HTTP: bodies ------------------------------------------------------------------

E("http.truncated_pb", "http", OTLP_HTTP, "protobuf body cut in the middle of a span (Content-Length matches)",
  post("/v1/traces", GOOD_PB[:-9]),
  {"http": 400, "says": "length past the end of the message"}, H_FAILED)
E("http.truncated_json", "http", OTLP_HTTP, "JSON body cut in the middle",
  post("/v1/traces", GOOD_JSON[:len(GOOD_JSON) // 2], JS),
  {"http": 400, "says": "premature EOF"}, H_FAILED)
E("http.body_shorter_than_length", "http", OTLP_HTTP,
  "Content-Length 1000, 10 bytes sent, then the client's write side closed",
  raw(http_head() + b"Content-Length: 1000\r\n\r\n" + GOOD_PB[:10], shut_wr=True),
  {"http": 400, "says": "the request ended before it was complete", "closed": True}, H_MALFORMED)
E("http.oversized_length", "http", OTLP_HTTP, "Content-Length 100 MiB over max_request_body_size 4 MiB (no body sent)",
  raw(http_head() + b"Content-Length: %d\r\n\r\n" % (100 * MIB)),
  {"http": 413, "says": "max_request_body_size is 4194304 bytes", "closed": True}, H_FAILED)
E("http.oversized_chunked", "http", OTLP_HTTP, "chunked body growing past max_request_body_size",
  raw(http_head() + b"Transfer-Encoding: chunked\r\n\r\n" +
      (b"100000\r\n" + b"\x0a" * 0x100000 + b"\r\n") * 5 + b"0\r\n\r\n"),
  {"http": 413, "says": "request body is too large", "closed": True}, H_FAILED)
E("http.gzip_bomb", "http", OTLP_HTTP, "gzip bomb: 1 GiB of zeros in 1 MB",
  post("/v1/traces", lambda: bomb("gzip"), PB, b"Content-Encoding: gzip\r\n"),
  {"http": 413, "says": "decompressed body is larger than the limit of 4194304 bytes"}, H_FAILED)
E("http.zstd_bomb", "http", OTLP_HTTP, "zstd bomb: 1 GiB of zeros as 16 frames without content size (30 KB)",
  post("/v1/traces", lambda: bomb("zstd"), PB, b"Content-Encoding: zstd\r\n"),
  {"http": 413, "says": "decompressed body is larger than the limit of 4194304 bytes"}, H_FAILED)
E("http.snappy_declared_huge", "http", OTLP_HTTP, "snappy block declaring 4 GiB uncompressed",
  post("/v1/traces", b"\xff\xff\xff\xff\x0f" + b"\x00" * 16, PB, b"Content-Encoding: snappy\r\n"),
  {"http": 413, "says": "decompressed body is larger than the limit"}, H_FAILED)
E("http.corrupt_gzip", "http", OTLP_HTTP, "gzip body with its deflate stream corrupted",
  post("/v1/traces", gz(GOOD_PB)[:12] + b"\xff" * 20, PB, b"Content-Encoding: gzip\r\n"),
  {"http": 400, "says": "gzip: invalid or truncated compressed data"}, H_FAILED)
E("http.unknown_encoding", "http", OTLP_HTTP, "Content-Encoding: br",
  post("/v1/traces", GOOD_PB, PB, b"Content-Encoding: br\r\n"),
  {"http": 400, "says": 'unsupported Content-Encoding "br"'}, H_FAILED)
E("http.encoding_mismatch", "http", OTLP_HTTP, "Content-Encoding: gzip on an uncompressed body",
  post("/v1/traces", GOOD_PB, PB, b"Content-Encoding: gzip\r\n"),
  {"http": 400, "says": "gzip: invalid or truncated compressed data"}, H_FAILED)
E("http.wrong_content_type", "http", OTLP_HTTP, "Content-Type: text/plain",
  post("/v1/traces", GOOD_PB, "text/plain"),
  {"http": 415, "says": "unsupported media type"}, H_FAILED)
E("http.no_content_type", "http", OTLP_HTTP, "no Content-Type",
  post("/v1/traces", GOOD_PB, None),
  {"http": 415, "says": "unsupported media type"}, H_FAILED)
E("http.json_as_protobuf", "http", OTLP_HTTP, "a JSON body sent as application/x-protobuf",
  post("/v1/traces", GOOD_JSON, PB),
  {"http": 400, "says": "malformed protobuf in opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest"}, H_FAILED)
E("http.protobuf_as_json", "http", OTLP_HTTP, "a protobuf body sent as application/json",
  post("/v1/traces", GOOD_PB, JS),
  {"http": 400, "says": "invalid JSON"}, H_FAILED)
E("http.bad_utf8_pb", "http", OTLP_HTTP, "invalid UTF-8 in a span name (protobuf)",
  post("/v1/traces", pb_bad_utf8()),
  {"http": 400, "says": "invalid UTF-8 in string field opentelemetry.proto.trace.v1.Span.name"}, H_FAILED)
E("http.bad_utf8_json", "http", OTLP_HTTP, "invalid UTF-8 bytes in a JSON string",
  post("/v1/traces", json_bad_utf8(), JS),
  {"http": 400, "says": "invalid bytes in UTF8 string"}, H_FAILED)
E("http.bad_utf8_attr_key", "http", OTLP_HTTP, "invalid UTF-8 in an attribute key (protobuf)",
  post("/v1/traces", pb_span_attr(b"\x0a\x01x").replace(b"\x0a\x01k", b"\x0a\x01\xff")),
  {"http": 400, "says": "invalid UTF-8 in string field opentelemetry.proto.common.v1.KeyValue.key"}, H_FAILED)
E("http.surrogate_json", "http", OTLP_HTTP, 'an unpaired surrogate escape "\\ud800" in JSON',
  post("/v1/traces", GOOD_JSON.replace(b"catalogue-good", b"\\ud800"), JS),
  {"http": 400, "says": "unpaired UTF-16 surrogate escape"}, H_FAILED)
E("http.json_nested_10000", "http", OTLP_HTTP, "JSON nested 10 000 deep (arrays in an attribute value)",
  post("/v1/traces", json_nested(10000), JS),
  {"http": 400, "says": "JSON nested deeper than 64 levels"}, H_FAILED)
E("http.pb_nested_10000", "http", OTLP_HTTP, "protobuf AnyValue kvlists nested 10 000 deep",
  post("/v1/traces", pb_nested(10000)),
  {"http": 400, "says": "nesting too deep"}, H_FAILED)
E("http.pb_negative_length", "http", OTLP_HTTP, "protobuf length prefix of -1 (ten-byte varint)",
  post("/v1/traces", pb_raw_len(b"\xff" * 9 + b"\x01")),
  {"http": 400, "says": "truncated or overlong length"}, H_FAILED)
E("http.pb_huge_length", "http", OTLP_HTTP, "protobuf length prefix of 2 GiB in a 19-byte body",
  post("/v1/traces", pb_raw_len(b"\x80\x80\x80\x80\x08")),
  {"http": 400, "says": "length over 2 GiB"}, H_FAILED)
E("http.pb_overlong_varint", "http", OTLP_HTTP, "protobuf varint of 11 bytes",
  post("/v1/traces", b"\x0a" + b"\x80" * 10 + b"\x00"),
  {"http": 400, "says": "truncated or overlong length"}, H_FAILED)
E("http.pb_wrong_wire_type", "http", OTLP_HTTP, "resource_spans with wire type varint instead of bytes",
  post("/v1/traces", b"\x08\x01"),
  {"http": 400, "says": "wire type does not match the field's type"}, H_FAILED)
E("http.json_bad_trace_id", "http", OTLP_HTTP, "JSON traceId of 3 hex digits",
  post("/v1/traces", GOOD_JSON.replace(b"5b8efff798038103d269b633813fc60c", b"abc"), JS),
  {"http": 400, "says": "traceId"}, H_FAILED)
E("http.json_wrong_type", "http", OTLP_HTTP, "JSON resourceSpans given as a string",
  post("/v1/traces", b'{"resourceSpans":"x"}', JS),
  {"http": 400, "says": "expected an array, got a string"}, H_FAILED)

# --- OTLP/HTTP: framing, smuggling -----------------------------------------------------

SMUGGLED = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(GOOD_JSON.replace(b"catalogue-good", b"smuggled!")) +
            GOOD_JSON.replace(b"catalogue-good", b"smuggled!"))


def chunk_of(data):
    return b"%x\r\n" % len(data) + data + b"\r\n0\r\n\r\n"


E("http.smuggle_cl_te", "http", OTLP_HTTP,
  "Content-Length and Transfer-Encoding: chunked together, a second request hidden after the chunks",
  raw(http_head() + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % (len(chunk_of(GOOD_PB))) +
      chunk_of(GOOD_PB) + SMUGGLED),
  {"http": 400, "says": "Content-Length can't be present with Transfer-Encoding", "closed": True}, H_MALFORMED)
E("http.smuggle_te_cl", "http", OTLP_HTTP,
  "Transfer-Encoding: chunked then a short Content-Length (TE.CL), a request hidden in the body",
  raw(http_head() + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" +
      chunk_of(SMUGGLED)),
  {"http": 400, "says": "Content-Length can't be present with Transfer-Encoding", "closed": True}, H_MALFORMED)
E("http.smuggle_two_lengths", "http", OTLP_HTTP, "two different Content-Length headers",
  raw(http_head() + b"Content-Length: %d\r\nContent-Length: 0\r\n\r\n" % len(SMUGGLED) + SMUGGLED),
  {"http": 400, "says": "Duplicate Content-Length", "closed": True}, H_MALFORMED)
E("http.smuggle_length_list", "http", OTLP_HTTP, "Content-Length: 5, 0 (a list)",
  raw(http_head() + b"Content-Length: 5, 0\r\n\r\n" + SMUGGLED),
  {"http": 400, "says": "Invalid character in Content-Length", "closed": True}, H_MALFORMED)
E("http.smuggle_te_obfuscated", "http", OTLP_HTTP, "Transfer-Encoding: xchunked with a Content-Length",
  raw(http_head() + b"Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n" + chunk_of(SMUGGLED)),
  {"http": 400, "says": "Content-Length can't be present with Transfer-Encoding", "closed": True}, H_MALFORMED)
E("http.smuggle_te_space", "http", OTLP_HTTP, "'Transfer-Encoding : chunked' (space before the colon)",
  raw(http_head() + b"Transfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n" + chunk_of(SMUGGLED)),
  {"http": 400, "says": "Invalid header field char", "closed": True}, H_MALFORMED)
E("http.smuggle_te_not_last", "http", OTLP_HTTP, "Transfer-Encoding: chunked, identity (chunked not last)",
  raw(http_head() + b"Transfer-Encoding: chunked, identity\r\n\r\n" + chunk_of(SMUGGLED)),
  {"http": 400, "says": "Invalid `Transfer-Encoding` header value", "closed": True}, H_MALFORMED)
E("http.smuggle_obs_fold", "http", OTLP_HTTP, "a Transfer-Encoding header folded onto a second line",
  raw(http_head() + b"Transfer-Encoding:\r\n chunked\r\nContent-Length: 4\r\n\r\n" + chunk_of(SMUGGLED)),
  {"http": 400, "says": "Content-Length can't be present with Transfer-Encoding", "closed": True}, H_MALFORMED)
E("http.bad_chunk_size", "http", OTLP_HTTP, "chunk size 'zz'",
  raw(http_head() + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + GOOD_PB + b"\r\n0\r\n\r\n"),
  {"http": 400, "says": "Invalid character in chunk size", "closed": True}, H_MALFORMED)
E("http.chunk_size_overflow", "http", OTLP_HTTP, "chunk size of 20 hex digits (overflows 64 bits)",
  raw(http_head() + b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 20 + b"\r\n" + GOOD_PB + b"\r\n0\r\n\r\n"),
  {"http": 400, "says": "Chunk size overflow", "closed": True}, H_MALFORMED)
E("http.negative_length", "http", OTLP_HTTP, "Content-Length: -1",
  raw(http_head() + b"Content-Length: -1\r\n\r\n" + GOOD_PB),
  {"http": 400, "says": "Invalid character in Content-Length", "closed": True}, H_MALFORMED)
E("http.huge_length", "http", OTLP_HTTP, "Content-Length of 30 digits (overflows 64 bits)",
  raw(http_head() + b"Content-Length: " + b"9" * 30 + b"\r\n\r\n" + GOOD_PB),
  {"http": 400, "says": "Content-Length overflow", "closed": True}, H_MALFORMED)
E("http.header_too_large", "http", OTLP_HTTP, "one header of 100 KiB",
  raw(http_head() + b"X-Big: " + b"a" * (100 << 10) + b"\r\nContent-Length: 0\r\n\r\n"),
  {"http": 431, "says": "request line and headers are too large", "closed": True}, H_MALFORMED)
E("http.bad_request_line", "http", OTLP_HTTP, "a request line that is not HTTP",
  raw(b"HELLO THERE\r\n\r\n"),
  {"http": 400, "says": "Invalid method encountered", "closed": True}, H_MALFORMED)
E("http.bad_version", "http", OTLP_HTTP, "HTTP/3.7 in the request line",
  raw(b"POST /v1/traces HTTP/3.7\r\nHost: x\r\nContent-Length: 0\r\n\r\n"),
  {"http": 505, "says": "HTTP version not supported, only HTTP/1.x", "closed": True}, H_MALFORMED)
E("http.nul_in_header", "http", OTLP_HTTP, "a NUL byte in a header value",
  raw(http_head() + b"X-A: a\x00b\r\nContent-Length: 0\r\n\r\n"),
  {"http": 400, "says": "Invalid header value char", "closed": True}, H_MALFORMED)
E("http.cr_in_header_name", "http", OTLP_HTTP, "a CR inside a header name",
  raw(http_head() + b"X\rA: 1\r\nContent-Length: 0\r\n\r\n"),
  {"http": 400, "says": "Invalid header token", "closed": True}, H_MALFORMED)
E("http.wrong_method", "http", OTLP_HTTP, "GET on /v1/traces",
  raw(b"GET /v1/traces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
  {"http": 405, "says": "method not allowed"}, H_FAILED)
E("http.unknown_path", "http", OTLP_HTTP, "POST on /v1/unknown",
  post("/v1/unknown", GOOD_PB),
  {"http": 404, "says": "404 page not found"}, H_FAILED)
E("http.h2_preface_on_http1", "http", OTLP_HTTP, "the HTTP/2 client preface on the HTTP/1.1 port",
  raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
  {"http": 505, "says": "HTTP/2 is not served on this port, only HTTP/1.1", "closed": True}, H_MALFORMED)

# --- Zipkin -----------------------------------------------------------------------------

ZGOOD = zipkin_json("zipkin-bad-input")
E("zipkin.truncated_json", "http", ZIPKIN, "v2 JSON cut in the middle",
  post("/api/v2/spans", ZGOOD[:len(ZGOOD) // 2], JS, port="zipkin_port"),
  {"http": 400, "says": "zipkinV2: malformed JSON"}, Z_INVALID)
E("zipkin.bad_utf8", "http", ZIPKIN, "invalid UTF-8 in a span name",
  post("/api/v2/spans", ZGOOD.replace(b"zipkin-bad-input", b"bad\xff\xfe"), JS, port="zipkin_port"),
  {"http": 400, "says": "invalid bytes in UTF8 string"}, Z_INVALID)
E("zipkin.nested_10000", "http", ZIPKIN, "JSON nested 10 000 deep (an unknown field of a span)",
  post("/api/v2/spans", ZGOOD[:-2] + b',"x":' + b"[" * 10000 + b"]" * 10000 + b"}]", JS,
       port="zipkin_port"),
  {"http": 400, "says": "nested too deeply"}, Z_INVALID)
E("zipkin.wrong_content_type", "http", ZIPKIN, "Content-Type: application/x-thrift",
  post("/api/v2/spans", ZGOOD, "application/x-thrift", port="zipkin_port"),
  {"http": 415, "says": 'unsupported Content-Type "application/x-thrift"'}, Z_INVALID)
E("zipkin.oversized", "http", ZIPKIN, "a body over max_request_body_size (1 MiB)",
  post("/api/v2/spans", b"[" + b" " * (2 * MIB) + b"]", JS, port="zipkin_port"),
  {"http": 413, "says": "max_request_body_size is 1048576 bytes"}, Z_INVALID)
E("zipkin.gzip_bomb", "http", ZIPKIN, "gzip bomb: 1 GiB of zeros in 1 MB",
  post("/api/v2/spans", lambda: bomb("gzip"), JS, b"Content-Encoding: gzip\r\n", port="zipkin_port"),
  {"http": 413, "says": "decompressed body is larger than the limit of 1048576 bytes"}, Z_INVALID)
E("zipkin.bad_id", "http", ZIPKIN, "a traceId that is not hex",
  post("/api/v2/spans", ZGOOD.replace(b"5b8efff798038103d269b633813fc60c", b"zz" * 16), JS,
       port="zipkin_port"),
  {"http": 400, "says": "is not 1 to 32 hex digits"}, Z_INVALID)

# --- Jaeger -----------------------------------------------------------------------------

JGOOD_B = jaeger_binary(b"jaeger-bad-input")
E("jaeger.http_wrong_content_type", "http", J_HTTP, "Content-Type: application/json",
  post("/api/traces", JGOOD_B, JS, port="jhttp_port"),
  {"http": 400, "says": "Unsupported content type"}, JH_FAILED)
E("jaeger.http_truncated", "http", J_HTTP, "a Thrift batch cut in the middle",
  post("/api/traces", JGOOD_B[40:80], "application/x-thrift", port="jhttp_port"),
  {"http": 400, "says": "Unable to process request body"}, JH_FAILED)
E("jaeger.http_oversized", "http", J_HTTP, "a body over max_request_body_size (1 MiB)",
  post("/api/traces", b"\x00" * (2 * MIB), "application/x-thrift", port="jhttp_port"),
  {"http": 413, "says": "max_request_body_size is 1048576 bytes"}, JH_FAILED)
E("jaeger.udp_over_size", "http", J_COMPACT, "a datagram over max_packet_size (2000)",
  udp("compact_port", jaeger_compact(b"x" * 3000)),
  {"udp": "dropped"}, "receiver_jaeger_thrift_compact_packets_invalid")
E("jaeger.udp_truncated", "http", J_COMPACT, "a compact packet cut in the middle",
  udp("compact_port", jaeger_compact(b"jaeger-bad-input")[:30]),
  {"udp": "dropped"}, "receiver_jaeger_thrift_compact_packets_invalid")
E("jaeger.udp_nested", "http", J_COMPACT, "structs nested 10 000 deep",
  udp("compact_port", jaeger_compact(b"deep", nesting=10000)[:1990]),
  {"udp": "dropped"}, "receiver_jaeger_thrift_compact_packets_invalid")
E("jaeger.udp_negative_length", "http", J_BINARY, "a string length of -5",
  udp("binary_port", jaeger_binary(b"op", declared_str_len=-5)),
  {"udp": "dropped"}, "receiver_jaeger_thrift_binary_packets_invalid")
E("jaeger.udp_huge_length", "http", J_BINARY, "a string length of 2^31-1 in a small packet",
  udp("binary_port", jaeger_binary(b"op", declared_str_len=0x7fffffff)),
  {"udp": "dropped"}, "receiver_jaeger_thrift_binary_packets_invalid")
E("jaeger.udp_huge_list", "http", J_BINARY, "a span list count of 100 000 000",
  udp("binary_port", jaeger_binary(b"op", list_count=100_000_000)),
  {"udp": "dropped"}, "receiver_jaeger_thrift_binary_packets_invalid")
E("jaeger.udp_bad_utf8", "http", J_BINARY, "invalid UTF-8 in an operation name",
  udp_replaced("binary_port", jaeger_binary(b"bad-utf8-\xff\xfe-op"), b"bad-utf8-\xef\xbf\xbd-op"),
  {"udp": "accepted", "says": "the sink got the name with U+FFFD"}, "receiver_accepted_spans",
  note="each run of invalid bytes becomes U+FFFD, as the collector's strings.ToValidUTF8")

# --- OTLP/gRPC --------------------------------------------------------------------------

GFRAME = grpc_message(GOOD_PB)
GZ = ((b"grpc-encoding", b"gzip"),)
E("grpc.truncated_message", "grpc", OTLP_GRPC, "message shorter than its length prefix, then END_STREAM",
  grpc(grpc_message(GOOD_PB[:20], declared=len(GOOD_PB))),
  {"grpc": 3, "says": "grpc: the stream ended inside a message"}, G_FAILED)
E("grpc.truncated_prefix", "grpc", OTLP_GRPC, "3 bytes of a 5-byte length prefix, then END_STREAM",
  grpc(b"\x00\x00\x00"),
  {"grpc": 3, "says": "grpc: the stream ended inside a message"}, G_FAILED)
E("grpc.no_message", "grpc", OTLP_GRPC, "HEADERS and END_STREAM without a message",
  grpc(b""),
  {"grpc": 3, "says": "grpc: the call ended without a request message"}, G_FAILED)
E("grpc.two_messages", "grpc", OTLP_GRPC, "two messages on a unary call",
  grpc(GFRAME + GFRAME),
  {"grpc": 3, "says": "grpc: more than one request message in a unary call"}, G_FAILED)
E("grpc.bad_protobuf", "grpc", OTLP_GRPC, "a message that is not protobuf",
  grpc(grpc_message(b"\xff" * 32)),
  {"grpc": 3, "says": "grpc: error unmarshalling request"}, G_FAILED)
E("grpc.bad_utf8", "grpc", OTLP_GRPC, "invalid UTF-8 in a span name",
  grpc(grpc_message(pb_bad_utf8())),
  {"grpc": 3, "says": "invalid UTF-8 in string field opentelemetry.proto.trace.v1.Span.name"}, G_FAILED)
E("grpc.nested_10000", "grpc", OTLP_GRPC, "AnyValue kvlists nested 10 000 deep",
  grpc(grpc_message(pb_nested(10000))),
  {"grpc": 3, "says": "nesting too deep"}, G_FAILED)
E("grpc.negative_length", "grpc", OTLP_GRPC, "protobuf length prefix of -1 inside the message",
  grpc(grpc_message(pb_raw_len(b"\xff" * 9 + b"\x01"))),
  {"grpc": 3, "says": "truncated or overlong length"}, G_FAILED)
E("grpc.over_max_declared", "grpc", OTLP_GRPC, "length prefix of 5 MiB over max_recv_msg_size_mib 4",
  grpc(grpc_message(b"", declared=5 * MIB), end=False),
  {"grpc": 8, "says": "grpc: received message larger than max (5242880 vs. 4194304)"}, G_FAILED)
E("grpc.huge_declared", "grpc", OTLP_GRPC, "length prefix 0xffffffff",
  grpc(grpc_message(b"", declared=0xffffffff), end=False),
  {"grpc": 8, "says": "grpc: received message larger than max (4294967295 vs. 4194304)"}, G_FAILED)
E("grpc.gzip_bomb", "grpc", OTLP_GRPC, "gzip bomb: 1 GiB of zeros in 1 MB",
  lambda t: grpc_unary(t.grpc_port, b"\x01" + len(bomb("gzip")).to_bytes(4, "big") + bomb("gzip"), GZ),
  {"grpc": 8, "says": "grpc: received message after decompression larger than max (4194304)"}, G_FAILED)
E("grpc.zstd_bomb", "grpc", OTLP_GRPC, "zstd bomb: 1 GiB of zeros as 16 frames without content size",
  lambda t: grpc_unary(t.grpc_port, b"\x01" + len(bomb("zstd")).to_bytes(4, "big") + bomb("zstd"),
                       ((b"grpc-encoding", b"zstd"),)),
  {"grpc": 8, "says": "grpc: received message after decompression larger than max (4194304)"}, G_FAILED)
E("grpc.compressed_flag_no_encoding", "grpc", OTLP_GRPC, "compressed flag set without grpc-encoding",
  grpc(b"\x01" + GFRAME[1:]),
  {"grpc": 3, "says": "compressed flag set with identity or empty grpc-encoding"}, G_FAILED)
E("grpc.corrupt_gzip", "grpc", OTLP_GRPC, "grpc-encoding gzip, the message corrupted",
  grpc(b"\x01" + (20).to_bytes(4, "big") + gz(GOOD_PB)[:10] + b"\xff" * 10, GZ),
  {"grpc": 3, "says": "gzip: invalid or truncated compressed data"}, G_FAILED)
E("grpc.unknown_encoding", "grpc", OTLP_GRPC, "grpc-encoding: br",
  grpc(b"\x01" + GFRAME[1:], ((b"grpc-encoding", b"br"),)),
  {"grpc": 12, "says": 'Decompressor is not installed for grpc-encoding "br"'}, G_FAILED)
E("grpc.wrong_content_type", "grpc", OTLP_GRPC, "content-type: application/json",
  grpc(GFRAME, ctype=b"application/json"),
  {"grpc": 3, "status": 415, "says": 'invalid gRPC request content-type "application/json"'},
  G_FAILED)
E("grpc.unknown_method", "grpc", OTLP_GRPC, "an unknown method of TraceService",
  grpc(GFRAME, path="/opentelemetry.proto.collector.trace.v1.TraceService/Nope"),
  {"grpc": 12, "says": "unknown method Nope for service opentelemetry.proto.collector.trace.v1.TraceService"}, G_FAILED)
E("grpc.half_open_stream", "grpc", OTLP_GRPC,
  "HEADERS and half a message, then silence (half-open stream) past read_timeout 1 s",
  grpc(grpc_message(b"", declared=100) + b"\x0a", end=False, wait=4.0),
  {"rst": 8}, "receiver_otlp_grpc_read_timeouts")

# --- HTTP/2 floods and framing on the gRPC port -----------------------------------------

HB = hpack_call_headers()
E("h2.rapid_reset", "grpc", OTLP_GRPC, "rapid reset: 2000 streams opened and reset (RST_STREAM CANCEL) at once",
  lambda t: h2_flood(t.grpc_port, b"".join(h2frame(1, 4, sid, HB) + h2frame(3, 0, sid, (8).to_bytes(4, "big"))
                                           for sid in range(1, 4001, 2))),
  {"goaway": 2, "closed": True}, G_PROTO, note="nghttp2's RST_STREAM rate limit")
E("h2.settings_flood", "grpc", OTLP_GRPC, "SETTINGS flood: 20 000 empty SETTINGS frames, acks never read",
  lambda t: h2_flood(t.grpc_port, h2frame(4, 0, 0, b"") * 20000),
  {"goaway": 11, "closed": True}, G_PROTO)
E("h2.ping_flood", "grpc", OTLP_GRPC, "PING flood: 20 000 PINGs, acks never read",
  lambda t: h2_flood(t.grpc_port, h2frame(6, 0, 0, b"\x00" * 8) * 20000),
  {"goaway": 11, "closed": True}, G_PROTO)
E("h2.continuation_flood", "grpc", OTLP_GRPC, "CONTINUATION flood: HEADERS without END_HEADERS, then 10 000 CONTINUATION frames",
  lambda t: h2_flood(t.grpc_port, h2frame(1, 0, 1, HB) + h2frame(9, 0, 1, b"\x00\x01a\x01b") * 10000),
  {"goaway": 1, "closed": True}, G_PROTO)
E("h2.window_overflow", "grpc", OTLP_GRPC, "WINDOW_UPDATE taking the connection window past 2^31-1",
  lambda t: h2_flood(t.grpc_port, h2frame(8, 0, 0, (0x7fffffff).to_bytes(4, "big")) * 2),
  {"goaway": 3, "closed": True}, G_PROTO)
E("h2.bad_preface", "grpc", OTLP_GRPC, "an HTTP/1.1 request on the gRPC port",
  lambda t: h2_flood(t.grpc_port, b"POST " + TRACE_EXPORT.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                     preface=False),
  {"goaway": 1, "closed": True}, G_PROTO)
E("h2.frame_too_large", "grpc", OTLP_GRPC, "a DATA frame of 1 MiB over SETTINGS_MAX_FRAME_SIZE 16 KiB",
  lambda t: h2_flood(t.grpc_port, h2frame(1, 4, 1, HB) + h2frame(0, 0, 1, b"\x00" * MIB)),
  {"goaway": 6, "says": "too large frame size", "closed": True}, G_PROTO)

# --- connections (each against a router of its own: read_header_timeout 1 s,
# read_timeout 2 s, max_connections 200 on HTTP and gRPC) --------------------------------

CAP = 200


def normal_http_now(t):
    a = http_post(t.http_port, "/v1/traces", trace_request_pb("during-the-flood"))
    return a.get("http")


def normal_grpc_now(t):
    """What a new HTTP/2 connection is told (a call sent at once could lose the
    GOAWAY to the reset of a connection closed with unread input)."""
    return h2_flood(t.grpc_port, b"", wait=1.5).get("goaway", "no GOAWAY")


E("conn.slowloris_headers", "conn", OTLP_HTTP,
  "slowloris: 20 connections sending their request line and headers a byte every 100 ms",
  lambda t: slowloris(t.http_port, 20, http_head() + b"X-Slow: " + b"a" * 200),
  {"http": 408, "says": "request headers not received within read_header_timeout", "closed": True},
  "receiver_otlp_http_header_timeouts", 20)
E("conn.slow_body", "conn", OTLP_HTTP,
  "slow body: 20 connections announcing 100 000 bytes, then sending a byte every 100 ms",
  lambda t: slowloris(t.http_port, 20, http_head() + b"Content-Length: 100000\r\n\r\n", b"\x0a" * 1000),
  {"http": 408, "says": "request body not received within read_timeout", "closed": True},
  "receiver_otlp_http_body_timeouts", 20)
E("conn.idle_10000_http", "conn", OTLP_HTTP,
  "10 000 idle connections (max_connections 200); a normal client meanwhile",
  lambda t: flood_http(t.http_port, 10000, CAP, lambda: normal_http_now(t)),
  {"http": 503, "says": "too many connections (max_connections); retry later", "retry_after": True,
   "closed": True, "held": CAP, "during": 503},
  "receiver_otlp_http_connections_refused", 10000 - CAP + 1,
  note="the 200 over the cap get the 503, the rest of the flood is closed unanswered; "
       "the 200 held stay until idle_timeout")
E("conn.idle_10000_grpc", "conn", OTLP_GRPC,
  "10 000 idle connections (max_connections 200); a normal call meanwhile",
  lambda t: flood_grpc(t.grpc_port, 10000, CAP, lambda: normal_grpc_now(t)),
  {"goaway": 11, "says": "too many connections (max_connections)", "closed": True, "held": CAP,
   "during": 11},
  "receiver_otlp_grpc_connections_refused", 10000 - CAP + 1,
  note="the 200 over the cap get SETTINGS and the GOAWAY, the rest is closed unanswered")

# --- the config loader: `switchyard --config` on a bad file -----------------------------

VALID_TAIL = b"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:0
exporters:
  nop:
service:
  pipelines:
    traces: {receivers: [otlp], exporters: [nop]}
"""


def cfg(text):
    return lambda args: run_config(args.bin, args.plugin_dir, text)


def laughs(levels, width):
    out = b'l0: &l0 ["lol"]\n'
    for i in range(1, levels + 1):
        out += b"l%d: &l%d [%s]\n" % (i, i, b", ".join([b"*l%d" % (i - 1)] * width))
    return out


E("config.anchor_bomb", "config", CONFIG, "YAML anchors bomb (billion laughs: 9 levels of 10 aliases)",
  cfg(laughs(9, 10) + VALID_TAIL),
  {"exit": 1, "says": "config.yaml:7:10: alias *l5 expands beyond 250000 nodes or 128 levels of nesting"},
  None)
E("config.anchor_bomb_wide", "config", CONFIG, "YAML anchors bomb: one alias of a 1 000-item list used 100 000 times",
  cfg(b"big: &big [" + b", ".join([b"x"] * 1000) + b"]\nuse: [" + b", ".join([b"*big"] * 100000) + b"]\n" + VALID_TAIL),
  {"exit": 1, "says": "config.yaml:2:1495: alias *big expands beyond 250000 nodes"}, None)
E("config.nested_10000", "config", CONFIG, "a value nested 10 000 deep (flow sequences)",
  cfg(b"deep: " + b"[" * 10000 + b"]" * 10000 + b"\n" + VALID_TAIL),
  {"exit": 1, "says": "config.yaml:1:135: nesting deeper than 128 levels"}, None)
E("config.nested_block_10000", "config", CONFIG, "a value nested 10 000 deep (block maps)",
  cfg(b"".join(b" " * i + b"k:\n" for i in range(10000)) + b" " * 10000 + b"k: v\n"),
  {"exit": 1, "says": "config.yaml:130:130: nesting deeper than 128 levels"}, None)
E("config.bad_utf8", "config", CONFIG, "invalid UTF-8 in a scalar",
  cfg(VALID_TAIL.replace(b"127.0.0.1:0", b"127.0.0.1:\xff\xfe")),
  {"exit": 1, "says": "config.yaml:1:1: invalid leading UTF-8 octet"}, None)
E("config.nul", "config", CONFIG, "a NUL character in a quoted scalar",
  cfg(VALID_TAIL.replace(b"127.0.0.1:0", b'"127.0.0.1:\\0"')),
  {"exit": 1, "says": "config.yaml:6:19: a NUL character in a scalar is not supported"}, None)
E("config.unknown_alias", "config", CONFIG, "an alias used before its anchor",
  cfg(b"x: *nope\n" + VALID_TAIL),
  {"exit": 1, "says": "config.yaml:1:4: unknown anchor: *nope is not defined before its use"}, None)
E("config.duplicate_key", "config", CONFIG, "the same key twice in one map",
  cfg(VALID_TAIL + b"exporters:\n  nop:\n"),
  {"exit": 1, "says": 'config.yaml:12:1: duplicate key "exporters" in one map (first defined at config.yaml:7:1)'}, None)
E("config.syntax_error", "config", CONFIG, "a tab used for indentation",
  cfg(VALID_TAIL.replace(b"      http:", b"\t  http:")),
  {"exit": 1, "says": "config.yaml:5:1: found character that cannot start any token"}, None)
E("config.wrong_type", "config", CONFIG, "max_request_body_size: lots (not a size)",
  cfg(VALID_TAIL.replace(b"        endpoint: 127.0.0.1:0", b"        endpoint: 127.0.0.1:0\n        max_request_body_size: lots")),
  {"exit": 1, "says": "config.yaml:7:32: 'otlp.protocols.http.max_request_body_size': expected a size"}, None)
E("config.huge_file", "config", CONFIG, "a 64 MiB scalar (the file over 64 MiB)",
  lambda args: run_config(args.bin, args.plugin_dir, b"big: " + b"x" * (64 * MIB) + b"\n" + VALID_TAIL),
  {"exit": 1, "says": "config.yaml: config file is larger than 64 MiB"}, None)

# --- Prometheus scrape (the receiver scrapes a target that serves a bad page once;
# scrape_interval 200ms, body_size_limit 64KiB, sample_limit 1000) ----------------------

PROM = "Prometheus scrape (prometheus receiver)"
P_FAILED = "receiver_prometheus_scrape_failures"


def scrape_once(body, headers=None):
    """The target serves `body` for one scrape; the answer is the warning the
    receiver logs for it (waited for, bounded)."""
    def send(t):
        import time
        seen = t.router.output().count("failed:")
        t.prom.once(body, headers)
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            lines = [ln for ln in t.router.lines() if "scrape of" in ln and "failed:" in ln]
            if len(lines) > seen:
                return {"scrape": "failed", "text": lines[-1]}
            time.sleep(0.02)
        return {"scrape": "no failure logged"}
    return send


E("prom.garbage", "http", PROM, "a page that is not the text format",
  scrape_once(b"this is { not a metrics page\n"),
  {"scrape": "failed", "says": 'failed: invalid text format: line 1: invalid value "is"'}, P_FAILED,
  note="logged as a warning; up 0 for the target")
E("prom.bad_utf8", "http", PROM, "invalid UTF-8 in a label value",
  scrape_once(b'm{l="\xff\xfe"} 1\n'),
  {"scrape": "failed", "says": "invalid text format: line 1: invalid UTF-8 label value"}, P_FAILED)
E("prom.over_body_limit", "http", PROM, "a page of 200 KiB over body_size_limit 64 KiB",
  scrape_once(b"".join(b"m%d 1\n" % i for i in range(30000))),
  {"scrape": "failed", "says": "failed: body size limit exceeded (65536 bytes)"}, P_FAILED)
E("prom.over_sample_limit", "http", PROM, "5 000 samples over sample_limit 1 000",
  scrape_once(b"".join(b"s%d 1\n" % i for i in range(5000))),
  {"scrape": "failed", "says": "line 1001: more than sample_limit (1000) samples"}, P_FAILED)
E("prom.gzip_bomb", "http", PROM, "a gzip bomb page (1 GiB of zeros in 1 MB)",
  lambda t: scrape_once(bomb("gzip"), {"Content-Encoding": "gzip"})(t),
  {"scrape": "failed", "says": "failed: body size limit exceeded (65536 bytes)"}, P_FAILED)
E("prom.bad_value", "http", PROM, "a sample whose value is not a number",
  scrape_once(b"m 12abc\n"),
  {"scrape": "failed", "says": 'invalid text format: line 1: invalid value "12abc"'}, P_FAILED)
