#!/usr/bin/env python3
"""integration.otlp_http: the otlp receiver's OTLP/HTTP protocol, end to end.

Starts the real switchyard binary with the otlp receiver (HTTP on a free loopback
port, a small max_request_body_size, CORS on) feeding the debug exporter for all
three signals, then checks what it answers to valid and invalid requests
(protobuf and JSON, gzip and deflate, wrong method/path/type/encoding, bodies over
the limit before and after decompression, a gzip bomb, CORS preflight), that
the debug exporter printed what was sent, and that SIGTERM stops it with exit
status 0. Python standard library only; every wait is bounded.
"""
import argparse
import gzip
import http.client
import json
import re
import socket
import sys
import time
import zlib

from harness import (Checks, Router, field_double, field_fixed64, field_len, field_varint,
                     free_port, json_span, json_traces, read_varint)

MAX_BODY = 4096
check = Checks()
failures = check.failures


# --- protobuf bodies ---------------------------------------------------------

def trace_request_pb(span_name):
    span = (field_len(1, bytes(range(1, 17))) + field_len(2, bytes(range(1, 9))) +
            field_len(5, span_name.encode()) + field_varint(6, 2) +
            field_fixed64(7, 1544712660000000000) + field_fixed64(8, 1544712661000000000))
    scope_spans = field_len(2, span)
    resource_spans = field_len(2, scope_spans)
    return field_len(1, resource_spans)


def metrics_request_pb(metric_name):
    point = field_fixed64(3, 1544712660000000000) + field_double(4, 1.5)
    gauge = field_len(1, point)
    metric = field_len(1, metric_name.encode()) + field_len(5, gauge)
    return field_len(1, field_len(2, field_len(2, metric)))


def logs_request_pb(body_text):
    record = (field_fixed64(1, 1544712660000000000) + field_len(3, b"INFO") +
              field_len(5, field_len(1, body_text.encode())))
    return field_len(1, field_len(2, field_len(2, record)))


def read_status_pb(data):
    """Decodes google.rpc.Status {code=1 varint, message=2 string}."""
    code, message, i = 0, "", 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
            if num == 1:
                code = v
        elif wt == 2:
            n, i = read_varint(data, i)
            if num == 2:
                message = data[i:i + n].decode("utf-8", "replace")
            i += n
        else:
            raise ValueError("unexpected wire type %d" % wt)
    return code, message


# --- JSON bodies -----------------------------------------------------------

def trace_request_json(span_name):
    return json.dumps(json_traces(
        [json_span(span_name, attributes=[{"key": "n", "value": {"intValue": "7"}}])],
        service="itest", scope="itest-lib")).encode()


def metrics_request_json(metric_name):
    return json.dumps({"resourceMetrics": [{"scopeMetrics": [{"metrics": [{
        "name": metric_name, "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                     "dataPoints": [{"asInt": "3", "timeUnixNano": "1"}]}}]}]}]}
                      ).encode()


def logs_request_json(body_text):
    return json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{
        "timeUnixNano": "1", "severityNumber": 9, "body": {"stringValue": body_text}}]}]}]}
                      ).encode()


# --- the process -----------------------------------------------------------

class Client:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def request(self, method, path, body=None, headers=None):
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def read_until_close(s, data=b""):
    """Everything the server answers on socket s until it closes (then closed)."""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    finally:
        s.close()
    return data


def raw_exchange(port, payload, timeout=5.0):
    """Sends raw bytes and returns everything the server answers until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(payload)
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    return read_until_close(s)


def run_checks(port):
    c = Client(port)
    pb = {"Content-Type": "application/x-protobuf"}
    js = {"Content-Type": "application/json"}

    # Valid protobuf requests, one per signal.
    for path, body in (("/v1/traces", trace_request_pb("pb-span-alpha")),
                       ("/v1/metrics", metrics_request_pb("pb.metric.beta")),
                       ("/v1/logs", logs_request_pb("pb log gamma"))):
        st, h, data = c.request("POST", path, body, pb)
        check(st == 200 and h.get("content-type") == "application/x-protobuf" and data == b"",
              "protobuf %s -> 200, application/x-protobuf, empty body (got %d %r %r)"
              % (path, st, h.get("content-type"), data[:80]))

    # Valid JSON requests, one per signal, with a charset parameter on one.
    for path, body, ctype in (
            ("/v1/traces", trace_request_json("json-span-delta"), "application/json"),
            ("/v1/metrics", metrics_request_json("json.metric.epsilon"),
             "application/json; charset=utf-8"),
            ("/v1/logs", logs_request_json("json log zeta"), "application/json")):
        st, h, data = c.request("POST", path, body, {"Content-Type": ctype})
        check(st == 200 and h.get("content-type") == "application/json" and data == b"{}",
              "JSON %s -> 200, application/json, {} (got %d %r %r)"
              % (path, st, h.get("content-type"), data[:80]))

    # Compressed bodies.
    st, _, _ = c.request("POST", "/v1/traces", gzip.compress(trace_request_pb("gzip-span-eta")),
                         {**pb, "Content-Encoding": "gzip"})
    check(st == 200, "gzip protobuf -> 200 (got %d)" % st)
    st, _, _ = c.request("POST", "/v1/traces", gzip.compress(trace_request_json("gzip-json-theta")),
                         {**js, "Content-Encoding": "gzip"})
    check(st == 200, "gzip JSON -> 200 (got %d)" % st)
    st, _, _ = c.request("POST", "/v1/logs", zlib.compress(logs_request_pb("deflate log iota")),
                         {**pb, "Content-Encoding": "deflate"})
    check(st == 200, "deflate protobuf -> 200 (got %d)" % st)

    # Undecodable bodies: 400 with a google.rpc.Status in the request's type.
    st, h, data = c.request("POST", "/v1/traces", b"\xff\xff\xff\xff garbage", pb)
    code, msg = read_status_pb(data) if st == 400 else (None, "")
    check(st == 400 and h.get("content-type") == "application/x-protobuf" and code == 3,
          "garbage protobuf -> 400 with Status code 3 (got %d, code %r, %r)" % (st, code, msg))
    st, h, data = c.request("POST", "/v1/traces", b'{"resourceSpans": [', js)
    try:
        status = json.loads(data)
    except ValueError:
        status = {}
    check(st == 400 and h.get("content-type") == "application/json" and status.get("code") == 3
          and status.get("message"),
          "malformed JSON -> 400 with {\"code\":3,\"message\":...} (got %d %r)" % (st, data[:120]))
    st, _, data = c.request("POST", "/v1/traces",
                            b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}',
                            js)
    check(st == 400 and b"traceId" in data, "bad hex trace id -> 400 naming traceId (got %d %r)"
          % (st, data[:160]))

    # Method, path, content type, encoding.
    st, h, _ = c.request("GET", "/v1/traces")
    check(st == 405 and h.get("allow") == "POST", "GET -> 405 with Allow: POST (got %d %r)"
          % (st, h.get("allow")))
    st, _, _ = c.request("POST", "/v1/unknown", trace_request_pb("x"), pb)
    check(st == 404, "unknown path -> 404 (got %d)" % st)
    st, _, _ = c.request("POST", "/v1/traces", b"hello", {"Content-Type": "text/plain"})
    check(st == 415, "text/plain -> 415 (got %d)" % st)
    st, _, _ = c.request("POST", "/v1/traces", trace_request_pb("x"), {**pb, "Content-Encoding": "br"})
    check(st == 400, "unknown Content-Encoding -> 400 (got %d)" % st)
    st, _, _ = c.request("POST", "/v1/traces", b"\x1f\x8b\x08\x00not gzip",
                         {**pb, "Content-Encoding": "gzip"})
    check(st == 400, "corrupt gzip -> 400 (got %d)" % st)

    # Size bounds: a body over max_request_body_size, and a gzip bomb.
    st, h, data = c.request("POST", "/v1/traces", b"\x0a" * (MAX_BODY + 1000), pb)
    check(st == 413, "body over max_request_body_size -> 413 (got %d %r)" % (st, data[:120]))
    bomb = gzip.compress(b"\x00" * (MAX_BODY * 50))
    check(len(bomb) < MAX_BODY, "the gzip bomb is under the limit while compressed")
    st, _, data = c.request("POST", "/v1/traces", bomb, {**pb, "Content-Encoding": "gzip"})
    check(st == 413, "gzip bomb -> 413 (got %d %r)" % (st, data[:120]))
    # A chunked body over the limit, with no Content-Length to refuse it early.
    chunk = b"\x0a" * 1000
    raw = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" +
           b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(6)) + b"0\r\n\r\n")
    answer = raw_exchange(port, raw)
    check(answer.startswith(b"HTTP/1.1 413"), "chunked body over the limit -> 413 (got %r)"
          % answer[:40])

    # Pipelining: two requests in one write, answered in order.
    p1 = trace_request_json("pipelined-one")
    p2 = trace_request_json("pipelined-two")
    raw = b"".join(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (len(p), p) for p in (p1, p2))
    raw += b"GET /v1/traces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = raw_exchange(port, raw)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)
    check(statuses == [b"200", b"200", b"405"], "pipelined requests answered in order (got %r)"
          % statuses)

    # Protobuf bodies are read straight into the batch that carries them (the
    # server reads the socket into the receiver's memory, never past the body):
    # two pipelined in one write; one split inside its body, the rest arriving
    # with the next request; one with Expect: 100-continue; and one whose
    # connection closes half-way (nothing delivered, the router carries on).
    def pb_req(name, extra=b""):
        body = trace_request_pb(name)
        return (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                b"%sContent-Length: %d\r\n\r\n" % (extra, len(body))), body
    h1, b1 = pb_req("pipelined-pb-one")
    h2, b2 = pb_req("pipelined-pb-two")
    h3, b3 = pb_req("split-pb-three")
    h4, b4 = pb_req("expect-pb-four", b"Expect: 100-continue\r\n")
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(h1 + b1 + h2 + b2 + h3 + b3[:7])
    time.sleep(0.1)
    s.sendall(b3[7:20])
    time.sleep(0.1)
    s.sendall(b3[20:] + h4)
    got = b""
    deadline = time.time() + 5
    while b"100 Continue" not in got and time.time() < deadline:
        got += s.recv(65536)
    s.sendall(b4)
    s.sendall(b"GET /v1/traces HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = read_until_close(s, got)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", got)
    check(statuses == [b"200", b"200", b"200", b"100", b"200", b"405"],
          "protobuf bodies read in place: pipelined, split, 100-continue, answered in order "
          "(got %r)" % statuses)
    h5, b5 = pb_req("half-pb-five")
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(h5 + b5[: len(b5) // 2])
    time.sleep(0.1)
    s.close()
    st, _, _ = c.request("POST", "/v1/traces", trace_request_pb("after-half-pb-six"), pb)
    check(st == 200, "after a body cut off half-way, the next request -> 200 (got %d)" % st)

    # Malformed HTTP.
    answer = raw_exchange(port, b"NOT HTTP AT ALL\r\n\r\n")
    check(answer.startswith(b"HTTP/1.1 400"), "malformed HTTP -> 400 (got %r)" % answer[:40])

    # CORS.
    st, h, _ = c.request("OPTIONS", "/v1/traces", None, {
        "Origin": "https://app.example.com", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    check(st == 204 and h.get("access-control-allow-origin") == "https://app.example.com",
          "CORS preflight from an allowed origin -> 204 with the origin (got %d %r)"
          % (st, h.get("access-control-allow-origin")))
    st, h, _ = c.request("OPTIONS", "/v1/traces", None, {
        "Origin": "https://evil.test", "Access-Control-Request-Method": "POST"})
    check(st == 204 and "access-control-allow-origin" not in h,
          "CORS preflight from another origin -> no CORS headers (got %d)" % st)
    st, h, _ = c.request("POST", "/v1/logs", logs_request_json("cors log kappa"),
                         {**js, "Origin": "https://app.example.com"})
    check(st == 200 and h.get("access-control-allow-origin") == "https://app.example.com",
          "POST from an allowed origin carries Access-Control-Allow-Origin (got %d)" % st)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()

    port = free_port()
    config = """receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
        max_request_body_size: %d
        cors:
          allowed_origins: ["https://*.example.com"]
          max_age: 60
exporters:
  debug:
    verbosity: detailed
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      exporters: [debug]
    logs:
      receivers: [otlp]
      exporters: [debug]
""" % (port, MAX_BODY)

    router = Router(args.bin, [args.plugin_dir], config, wait=False)
    try:
        if not router.wait_ready():
            router.kill()
            print(router.output())
            print("FAIL the receiver did not listen on port %d" % port)
            router.cleanup()
            return 1
        run_checks(port)
        time.sleep(0.5)  # let the debug exporter print
    finally:
        rc = router.terminate(15)
        if rc is None:
            failures.append("switchyard did not stop within 15 s of SIGTERM")

    check(rc == 0, "SIGTERM -> exit status 0 (got %r)" % rc)
    output = router.output()
    for name in ("pb-span-alpha", "json-span-delta", "gzip-span-eta", "gzip-json-theta",
                 "pipelined-one", "pipelined-two", "pipelined-pb-one", "pipelined-pb-two",
                 "split-pb-three", "expect-pb-four", "after-half-pb-six"):
        check(("Name           : " + name) in output or name in output,
              "the debug exporter printed span %s" % name)
    for text in ("pb.metric.beta", "json.metric.epsilon", "pb log gamma", "json log zeta",
                 "deflate log iota", "cors log kappa"):
        check(text in output, "the debug exporter printed %r" % text)
    check("half-pb-five" not in output, "a body cut off half-way is not delivered")
    if failures:
        print("---- switchyard output (%s) ----" % router.log_path)
        print(output[-6000:])
        print("%d check(s) failed" % len(failures))
        return 1
    router.cleanup()
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
