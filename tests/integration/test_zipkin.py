#!/usr/bin/env python3
"""The zipkin receiver and the zipkin exporter through the real binary.

  test_zipkin.py setup --src-dir tests/integration/node_zipkin --node-dir BUILD/zipkin-node
      npm ci of the pinned Zipkin clients into the build tree (as test_otel_js.py).

  test_zipkin.py run --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
                     --src-dir ... --node-dir ... --case CASE
      otel_js     the OpenTelemetry JS SDK's Zipkin exporter (@opentelemetry/exporter-zipkin)
                  sends to the zipkin receiver; the file exporter's OTLP/JSON is compared
                  field by field with what the SDK was handed (parse_string_tags off and on)
      zipkin_js   `zipkin` + `zipkin-transport-http` (openzipkin/zipkin-js) send v2 JSON
      crafted     v2 JSON, v2 protobuf (written here with a generic protobuf writer), v1
                  JSON, each plain and gzip: every translated field checked
      exporter    the zipkin exporter into a Python Zipkin sink (JSON and protobuf parsed
                  here), OTLP in -> Zipkin out, and zipkin in -> zipkin out round trips
      bad_input   malformed JSON and protobuf, wrong types, bad ids, wrong content type,
                  bad gzip: 400/415 with a message, counted in /metrics, router healthy

Every wait is bounded; servers bind 127.0.0.1 on free ports; python3 standard library.
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Router, SinkHTTPServer, free_port, http, json_span, json_traces,  # noqa: E402
                     post_json, read_varint, varint, wait_for)
import test_otel_js  # noqa: E402  (npm ci and copy_if_changed, shared with the OTLP JS tests)

NODE_TIMEOUT = 60.0
OUTPUT_TIMEOUT = 15.0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------------------
# A generic protobuf writer and reader (field numbers and wire types only)
# ---------------------------------------------------------------------------

def pb_field(num, value):
    """bytes/str -> length-delimited, int -> varint, ('fixed64', v) -> fixed64,
    list -> repeated, dict -> a nested message of {num: value}."""
    if isinstance(value, list):
        return b"".join(pb_field(num, v) for v in value)
    if isinstance(value, tuple) and value[0] == "fixed64":
        return varint(num << 3 | 1) + struct.pack("<Q", value[1])
    if isinstance(value, bool) or isinstance(value, int):
        return varint(num << 3) + varint(int(value))
    if isinstance(value, dict):
        value = pb_message(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def pb_message(fields):
    return b"".join(pb_field(n, v) for n, v in fields.items())


def pb_read(data):
    """{field: [values]}: varints as int, fixed64 as int, length-delimited as bytes."""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 1:
            v = struct.unpack("<Q", data[i:i + 8])[0]
            i += 8
        elif wt == 2:
            n, i = read_varint(data, i)
            v = data[i:i + n]
            i += n
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


# ---------------------------------------------------------------------------
# The router's OTLP/JSON output (file exporter)
# ---------------------------------------------------------------------------

def any_value(v):
    """An OTLP/JSON AnyValue as a Python value."""
    if "stringValue" in v:
        return v["stringValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    if "boolValue" in v:
        return v["boolValue"]
    return None


def attrs(lst):
    return {kv["key"]: any_value(kv.get("value", {})) for kv in lst or []}


def read_spans(path):
    """Every span the file exporter wrote: (span, resource attrs, scope)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            req = json.loads(line)
            for rs in req.get("resourceSpans", []):
                res = attrs(rs.get("resource", {}).get("attributes"))
                for ss in rs.get("scopeSpans", []):
                    for sp in ss.get("spans", []):
                        out.append((sp, res, ss.get("scope", {})))
    return out


def wait_spans(path, n):
    def enough():
        s = read_spans(path)
        return s if len(s) >= n else None
    return wait_for("%d spans in %s" % (n, path), enough, OUTPUT_TIMEOUT)


def by_id(spans):
    return {sp["spanId"]: (sp, res, scope) for sp, res, scope in spans}


def receiver_config(port, out_path, parse_tags=False, metrics_port=None):
    # Its own metrics on a free port: tests run in parallel (ctest -j).
    tel = "  telemetry:\n    metrics:\n      address: 127.0.0.1:%d\n" % (metrics_port or free_port())
    return f"""
receivers:
  zipkin:
    endpoint: 127.0.0.1:{port}
    parse_string_tags: {"true" if parse_tags else "false"}
exporters:
  file:
    path: {out_path}
    format: json
service:
{tel}  pipelines:
    traces:
      receivers: [zipkin]
      exporters: [file]
"""


def run_node(args, script, url):
    try:
        out = subprocess.run(["node", os.path.join(args.node_dir, script), url],
                             capture_output=True, text=True, timeout=NODE_TIMEOUT,
                             cwd=args.node_dir, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        fail("%s did not finish in %.0f s" % (script, NODE_TIMEOUT))
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        fail("%s exited with %d" % (script, out.returncode))
    return json.loads(out.stdout.strip().splitlines()[-1])


def hr_us(t):
    """An HrTime [s, ns] in microseconds, as @opentelemetry/core rounds it."""
    return round(t[0] * 1e6 + t[1] / 1e3)


# ---------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------

def case_otel_js(args, check):
    kinds = {0: 0, 1: 2, 2: 3, 3: 4, 4: 5}  # JS SpanKind -> OTLP (INTERNAL: no Zipkin kind)
    for parse_tags in (False, True):
        port = free_port()
        out_path = os.path.join(args.tmp, "otel_js_%s.json" % parse_tags)
        with Router(args.bin, [args.plugin_dir], receiver_config(port, out_path, parse_tags)) as r:
            manifest = run_node(args, "otel_send.mjs", "http://127.0.0.1:%d/api/v2/spans" % port)
            sent = manifest["spans"]
            got = by_id(wait_spans(out_path, len(sent)))
            check(r.stop() == 0, "otel_js: router exits 0")
        tag = "otel_js[parse_string_tags=%s]" % parse_tags
        check(len(got) == len(sent), "%s: %d spans arrive" % (tag, len(sent)))
        for m in sent:
            item = got.get(m["spanId"])
            if not check(item is not None, "%s: span %s arrived" % (tag, m["name"])):
                continue
            sp, res, scope = item
            name = m["name"]
            check(sp["traceId"] == m["traceId"], "%s %s: traceId" % (tag, name))
            check(sp.get("parentSpanId", "") == (m["parentId"] or ""), "%s %s: parentSpanId" % (tag, name))
            check(sp["name"] == name, "%s %s: name" % (tag, name))
            check(sp.get("kind", 0) == kinds[m["kind"]], "%s %s: kind %s" % (tag, name, sp.get("kind", 0)))
            start_us = hr_us(m["startTime"])
            dur_us = round(hr_us(m["endTime"]) - hr_us(m["startTime"]))
            check(int(sp["startTimeUnixNano"]) == start_us * 1000, "%s %s: start" % (tag, name))
            check(int(sp["endTimeUnixNano"]) - int(sp["startTimeUnixNano"]) in
                  (dur_us * 1000, (dur_us - 1) * 1000, (dur_us + 1) * 1000),
                  "%s %s: end = start + duration" % (tag, name))
            a = attrs(sp.get("attributes"))
            for k, v in m["attributes"].items():
                want = str(v).lower() if isinstance(v, bool) else str(v)
                if parse_tags:
                    want = v
                check(a.get(k) == want, "%s %s: attribute %s = %r (got %r)" % (tag, name, k, want, a.get(k)))
            for k in ("service.name", "deployment.environment", "otel.status_code", "error"):
                check(k not in a, "%s %s: %s is not a span attribute" % (tag, name, k))
            check(res.get("service.name") == "otel-js-zipkin", "%s %s: resource service.name" % (tag, name))
            status = sp.get("status", {})
            if m["status"]["code"] == 2:
                check(status.get("code") == 2 and status.get("message") == m["status"]["message"],
                      "%s %s: status ERROR with its message" % (tag, name))
            elif m["status"]["code"] == 1:
                check(status.get("code") == 1, "%s %s: status OK" % (tag, name))
            else:
                check(status.get("code", 0) == 0, "%s %s: status unset" % (tag, name))
            evs = sp.get("events", [])
            check([e["name"] for e in evs] == [e["name"] for e in m["events"]], "%s %s: events" % (tag, name))
            for e, me in zip(evs, m["events"]):
                check(abs(int(e["timeUnixNano"]) - hr_us(me["time"]) * 1000) <= 1000,
                      "%s %s: event time" % (tag, name))
        resources = {json.dumps(res, sort_keys=True) for _, res, _ in got.values()}
        first = json.loads(sorted(resources)[0])
        check(len(resources) == 1 and first == {"service.name": "otel-js-zipkin",
                                                 "deployment.environment": "test"},
              "%s: one resource with the resource tags moved to it (%r)" % (tag, resources))


def case_zipkin_js(args, check):
    port = free_port()
    out_path = os.path.join(args.tmp, "zipkin_js.json")
    with Router(args.bin, [args.plugin_dir], receiver_config(port, out_path)) as r:
        manifest = run_node(args, "zipkin_send.mjs", "http://127.0.0.1:%d/api/v2/spans" % port)
        got = by_id(wait_spans(out_path, 2))
        check(r.stop() == 0, "zipkin_js: router exits 0")
    server, client = manifest["spans"]
    sp, res, _ = got[server["spanId"]]
    a = attrs(sp.get("attributes"))
    check(sp["traceId"] == server["traceId"] and len(sp["traceId"]) == 32, "zipkin_js server: 128-bit traceId")
    check(sp["name"] == "get /cart" and sp.get("kind") == 2, "zipkin_js server: name, kind SERVER")
    check("parentSpanId" not in sp, "zipkin_js server: no parent")
    check(res == {"service.name": "zipkin-js-svc"}, "zipkin_js server: resource service.name (%r)" % res)
    check(a.get("net.host.ip") == "10.1.2.3" and a.get("net.host.port") == 8080,
          "zipkin_js server: local endpoint -> net.host.ip/net.host.port (%r)" % a)
    check(a.get("http.path") == "/cart" and a.get("cart.items") == "3", "zipkin_js server: tags")
    check([e["name"] for e in sp.get("events", [])] == ["cache-miss"], "zipkin_js server: annotation -> event")
    check(int(sp["endTimeUnixNano"]) > int(sp["startTimeUnixNano"]) > 0, "zipkin_js server: times")
    sp, res, _ = got[client["spanId"]]
    a = attrs(sp.get("attributes"))
    check(sp.get("parentSpanId") == server["spanId"], "zipkin_js client: parentSpanId")
    check(sp.get("kind") == 3, "zipkin_js client: kind CLIENT")
    check(a.get("peer.service") == "payments" and a.get("net.peer.ip") == "10.9.8.7" and
          a.get("net.peer.port") == 443, "zipkin_js client: remote endpoint attributes (%r)" % a)
    check(sp.get("status", {}).get("code") == 2 and "error" not in a, "zipkin_js client: error=true -> status ERROR")


TRACE64 = "5af7183fb1d4cf5f"
TRACE128 = "463ac35c9f6413ad48485a3953bb6124"
T0 = 1700000000123456  # microseconds


def v2_spans():
    """Spans covering every translated field, as Zipkin v2 JSON objects."""
    return [
        {"traceId": TRACE64, "id": "352bff9a74ca9ad2", "parentId": "6b221d5bc9e6496c",
         "name": "get /api", "kind": "SERVER", "timestamp": T0, "duration": 1431,
         "shared": True,
         "localEndpoint": {"serviceName": "backend", "ipv4": "192.168.99.1", "port": 3306},
         "remoteEndpoint": {"serviceName": "frontend", "ipv6": "2001:db8::c001", "port": 58648},
         "annotations": [{"timestamp": T0 + 10, "value": "wr"},
                         {"timestamp": T0 + 20, "value": 'cache|{"hit":true,"k":"v","n":3,"r":0.5}|2'}],
         "tags": {"http.method": "GET", "count": "12", "ratio": "1.5", "flag": "true",
                  "otel.library.name": "mylib", "otel.library.version": "2.0",
                  "otel.status_code": "STATUS_CODE_ERROR", "otel.status_description": "boom",
                  "w3c.tracestate": "rojo=00f067aa0ba902b7", "host.name": "box1",
                  "otlp.link.0": TRACE128 + '|0102030405060708|st=1|{"la":"x"}|1'}},
        {"traceId": TRACE128, "id": "0000000000000abc", "name": "internal work",
         "duration": 250, "localEndpoint": {"serviceName": "backend"},
         "tags": {"span.kind": "internal", "error": "true"}},
        {"traceId": TRACE128, "id": "0000000000000abd", "name": "no service", "kind": "PRODUCER",
         "timestamp": T0, "duration": 5},
    ]


def check_v2(check, tag, got, parse_tags=False):
    sp, res, scope = got["352bff9a74ca9ad2"]
    a = attrs(sp.get("attributes"))
    check(sp["traceId"] == "0" * 16 + TRACE64, "%s: 64-bit traceId in the low 8 bytes" % tag)
    check(sp.get("parentSpanId") == "6b221d5bc9e6496c", "%s: parentId" % tag)
    check(sp["name"] == "get /api" and sp.get("kind") == 2, "%s: name, kind SERVER" % tag)
    check(int(sp["startTimeUnixNano"]) == T0 * 1000 and
          int(sp["endTimeUnixNano"]) == (T0 + 1431) * 1000, "%s: timestamp/duration us -> ns" % tag)
    # The resource is made from the first span of its service in the collector's
    # order (service, then library name): "internal work", which has no resource
    # tags; host.name of this span is then dropped, as the collector drops it.
    check(res == {"service.name": "backend"}, "%s: resource service.name (%r)" % (tag, res))
    check(scope.get("name") == "mylib" and scope.get("version") == "2.0", "%s: otel.library.* -> scope" % tag)
    check(sp.get("status") == {"code": 2, "message": "boom"}, "%s: otel.status_code/description" % tag)
    check(sp.get("traceState") == "rojo=00f067aa0ba902b7", "%s: w3c.tracestate" % tag)
    if parse_tags:
        check(a.get("count") == 12 and a.get("ratio") == 1.5 and a.get("flag") is True,
              "%s: parse_string_tags types int/double/bool (%r)" % (tag, a))
    else:
        check(a.get("count") == "12" and a.get("ratio") == "1.5" and a.get("flag") == "true",
              "%s: tags stay strings" % tag)
    check(a.get("http.method") == "GET", "%s: tag -> attribute" % tag)
    check(a.get("net.host.ip") == "192.168.99.1" and a.get("net.host.port") == 3306,
          "%s: local endpoint" % tag)
    check(a.get("peer.service") == "frontend" and a.get("net.peer.ip") == "2001:db8::c001" and
          a.get("net.peer.port") == 58648, "%s: remote endpoint" % tag)
    for k in ("otel.library.name", "otel.status_code", "host.name", "w3c.tracestate", "otlp.link.0"):
        check(k not in a, "%s: %s is not an attribute" % (tag, k))
    evs = sp.get("events", [])
    check(len(evs) == 2 and evs[0]["name"] == "wr" and int(evs[0]["timeUnixNano"]) == (T0 + 10) * 1000,
          "%s: annotation -> event" % tag)
    if len(evs) == 2:
        check(evs[1]["name"] == "cache" and attrs(evs[1].get("attributes")) ==
              {"hit": True, "n": 3, "r": 0.5, "k": "v"} and evs[1].get("droppedAttributesCount") == 2,
              "%s: 'name|{attributes}|dropped' annotation -> event with attributes" % tag)
    links = sp.get("links", [])
    check(len(links) == 1 and links[0]["traceId"] == TRACE128 and links[0]["spanId"] == "0102030405060708"
          and links[0].get("traceState") == "st=1" and attrs(links[0].get("attributes")) == {"la": "x"}
          and links[0].get("droppedAttributesCount") == 1, "%s: otlp.link.0 -> link" % tag)
    sp, res, scope = got["0000000000000abc"]
    a = attrs(sp.get("attributes"))
    check(sp["traceId"] == TRACE128 and sp.get("kind") == 1, "%s: span.kind internal -> INTERNAL" % tag)
    check(sp.get("status", {}).get("code") == 2 and "error" not in a, "%s: error=true -> ERROR" % tag)
    check(int(sp.get("startTimeUnixNano", 0)) == 0 and int(sp["endTimeUnixNano"]) == 250000 and
          a.get("otel.zipkin.absentField.startTime") is True, "%s: absent timestamp marked" % tag)
    sp, res, scope = got["0000000000000abd"]
    check(sp.get("kind") == 4 and res == {}, "%s: PRODUCER, no service name -> empty resource" % tag)


def v2_proto():
    def ep(e):
        m = {}
        if "serviceName" in e:
            m[1] = e["serviceName"]
        if "ipv4" in e:
            m[2] = bytes(int(x) for x in e["ipv4"].split("."))
        if "ipv6" in e:
            import ipaddress
            m[3] = ipaddress.IPv6Address(e["ipv6"]).packed
        if "port" in e:
            m[4] = e["port"]
        return m
    spans = []
    for s in v2_spans():
        m = {1: bytes.fromhex(s["traceId"])}
        if "parentId" in s:
            m[2] = bytes.fromhex(s["parentId"])
        m[3] = bytes.fromhex(s["id"])
        if "kind" in s:
            m[4] = ["", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"].index(s["kind"])
        m[5] = s["name"]
        if "timestamp" in s:
            m[6] = ("fixed64", s["timestamp"])
        if "duration" in s:
            m[7] = s["duration"]
        if "localEndpoint" in s:
            m[8] = ep(s["localEndpoint"])
        if "remoteEndpoint" in s:
            m[9] = ep(s["remoteEndpoint"])
        if "annotations" in s:
            m[10] = [{1: ("fixed64", a["timestamp"]), 2: a["value"]} for a in s["annotations"]]
        if "tags" in s:
            m[11] = [{1: k, 2: v} for k, v in s["tags"].items()]
        if s.get("shared"):
            m[13] = True
        spans.append(m)
    return pb_message({1: spans})


V1 = [
    {"traceId": TRACE128, "id": "1111111111111111", "parentId": "2222222222222222", "name": "v1 call",
     "timestamp": T0, "duration": 100,
     "annotations": [
         {"timestamp": T0, "value": "cs", "endpoint": {"serviceName": "v1-client", "ipv4": "10.0.0.1", "port": 9000}},
         {"timestamp": T0 + 40, "value": "retry"},
         {"timestamp": T0 + 100, "value": "cr", "endpoint": {"serviceName": "v1-client", "ipv4": "10.0.0.1", "port": 9000}}],
     "binaryAnnotations": [
         {"key": "http.status_code", "value": "503"},
         {"key": "http.url", "value": "http://x/y", "endpoint": {"serviceName": "v1-client"}}]},
    {"traceId": TRACE64, "id": "3333333333333333", "name": "v1 local",
     "binaryAnnotations": [{"key": "lc", "value": "worker"}, {"key": "error", "value": "oops"}]},
]


def check_v1(check, tag, got, parse_tags=False):
    sp, res, scope = got["1111111111111111"]
    a = attrs(sp.get("attributes"))
    check(sp["traceId"] == TRACE128 and sp.get("parentSpanId") == "2222222222222222", "%s: ids" % tag)
    check(sp.get("kind") == 3, "%s: cs/cr -> CLIENT" % tag)
    check(res == {"service.name": "v1-client", "ipv4": "10.0.0.1", "port": "9000"},
          "%s: resource from the cs endpoint (%r)" % (tag, res))
    check(int(sp["startTimeUnixNano"]) == T0 * 1000 and int(sp["endTimeUnixNano"]) == (T0 + 100) * 1000,
          "%s: timestamp/duration" % tag)
    check([e["name"] for e in sp.get("events", [])] == ["retry"], "%s: only non-core annotations become events" % tag)
    check(a == {"http.status_code": 503 if parse_tags else "503", "http.url": "http://x/y"},
          "%s: binaryAnnotations (%r)" % (tag, a))
    check(sp.get("status", {}).get("code") == 2, "%s: http.status_code 503 -> ERROR" % tag)
    sp, res, scope = got["3333333333333333"]
    a = attrs(sp.get("attributes"))
    check(res == {"service.name": "worker"}, "%s: lc names the service (%r)" % (tag, res))
    check(a.get("component") == "worker" and "error" not in a, "%s: lc -> component; error consumed" % tag)
    check(sp.get("status", {}).get("code") == 2, "%s: error binary annotation -> ERROR" % tag)
    check(a.get("otel.zipkin.absentField.startTime") is True and int(sp["startTimeUnixNano"]) > 0,
          "%s: no timestamp at all -> now, marked" % tag)


def case_crafted(args, check):
    for parse_tags in (False, True):
        port = free_port()
        out_path = os.path.join(args.tmp, "crafted_%s.json" % parse_tags)
        base = "http://127.0.0.1:%d" % port
        bodies = [
            ("v2 json", "/api/v2/spans", "application/json", json.dumps(v2_spans()).encode(), check_v2, 3),
            ("v2 proto", "/api/v2/spans", "application/x-protobuf", v2_proto(), check_v2, 3),
            ("v1 json", "/api/v1/spans", "application/json; charset=utf-8", json.dumps(V1).encode(), check_v1, 2),
        ]
        with Router(args.bin, [args.plugin_dir], receiver_config(port, out_path, parse_tags)) as r:
            total = 0
            for name, path, ctype, body, checker, n in bodies:
                for gz in (False, True):
                    tag = "%s%s%s" % (name, " gzip" if gz else "", " parse" if parse_tags else "")
                    headers = {"Content-Type": ctype}
                    data = body
                    if gz:
                        headers["Content-Encoding"] = "gzip"
                        data = gzip.compress(body)
                    st, _, resp = http("POST", base + path, data, headers)
                    check(st == 202 and resp == b"", "%s: 202 Accepted, empty body (%d %r)" % (tag, st, resp[:200]))
                    total += n
                    spans = wait_spans(out_path, total)[total - n:]
                    checker(check, tag, by_id(spans), parse_tags)
            check(r.stop() == 0, "crafted: router exits 0")


class Sink:
    """A Zipkin-format sink: keeps every POST (path, content type, body)."""

    def __init__(self):
        self.posts = []
        self.lock = threading.Lock()
        sink = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(n)
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with sink.lock:
                    sink.posts.append((self.path, self.headers.get("Content-Type"), body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.server = SinkHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def spans(self, ctype):
        out = []
        with self.lock:
            posts = list(self.posts)
        for path, ct, body in posts:
            if ct != ctype:
                continue
            out.extend(json.loads(body) if "json" in ct else proto_spans(body))
        return out

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def proto_spans(body):
    """A ListOfSpans as Zipkin v2 JSON-like dicts."""
    out = []
    for raw in pb_read(body).get(1, []):
        f = pb_read(raw)
        s = {"traceId": f[1][0].hex(), "id": f[3][0].hex(), "name": f.get(5, [b""])[0].decode()}
        if 2 in f:
            s["parentId"] = f[2][0].hex()
        if 4 in f:
            s["kind"] = ["", "CLIENT", "SERVER", "PRODUCER", "CONSUMER"][f[4][0]]
        if 6 in f:
            s["timestamp"] = f[6][0]
        if 7 in f:
            s["duration"] = f[7][0]
        for num, key in ((8, "localEndpoint"), (9, "remoteEndpoint")):
            if num in f:
                e = pb_read(f[num][0])
                ep = {}
                if 1 in e:
                    ep["serviceName"] = e[1][0].decode()
                if 2 in e:
                    ep["ipv4"] = ".".join(str(b) for b in e[2][0])
                if 4 in e:
                    ep["port"] = e[4][0]
                s[key] = ep
        if 10 in f:
            s["annotations"] = [{"timestamp": pb_read(a)[1][0], "value": pb_read(a)[2][0].decode()}
                                for a in f[10]]
        if 11 in f:
            s["tags"] = {pb_read(t)[1][0].decode(): pb_read(t).get(2, [b""])[0].decode() for t in f[11]}
        out.append(s)
    return out


def case_exporter(args, check):
    sink = Sink()
    zport, oport = free_port(), free_port()
    url = "http://127.0.0.1:%d/api/v2/spans" % sink.port
    cfg = f"""
receivers:
  zipkin:
    endpoint: 127.0.0.1:{zport}
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{oport}
exporters:
  zipkin/json:
    endpoint: {url}
  zipkin/proto:
    endpoint: {url}
    format: proto
    compression: gzip
    default_service_name: fallback-svc
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{free_port()}
  pipelines:
    traces/roundtrip:
      receivers: [zipkin]
      exporters: [zipkin/json]
    traces/otlp:
      receivers: [otlp]
      exporters: [zipkin/proto]
"""
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            # zipkin in -> zipkin out
            sent = [s for s in v2_spans() if s["id"] != "0000000000000abd"]
            st, _, _ = http("POST", "http://127.0.0.1:%d/api/v2/spans" % zport,
                            json.dumps(sent).encode(), {"Content-Type": "application/json"})
            check(st == 202, "exporter: zipkin receiver accepted")
            got = wait_for("the round trip", lambda: len(sink.spans("application/json")) >= 2 and
                           sink.spans("application/json"), OUTPUT_TIMEOUT)
            got = {s["id"]: s for s in got}
            for s in sent:
                o = got.get(s["id"])
                if not check(o is not None, "round trip %s: arrived" % s["name"]):
                    continue
                for k in ("traceId", "parentId", "name", "kind", "timestamp", "duration", "annotations"):
                    check(o.get(k) == s.get(k), "round trip %s: %s equal (%r / %r)" % (s["name"], k, o.get(k), s.get(k)))
                le, se = o.get("localEndpoint", {}), s.get("localEndpoint", {})
                check(le == se, "round trip %s: localEndpoint (%r)" % (s["name"], le))
                check(o.get("remoteEndpoint", {}).get("serviceName") == s.get("remoteEndpoint", {}).get("serviceName")
                      and o.get("remoteEndpoint", {}).get("port") == s.get("remoteEndpoint", {}).get("port"),
                      "round trip %s: remoteEndpoint service and port" % s["name"])
                want = dict(s.get("tags", {}))
                ot = o.get("tags", {})
                if s["id"] == "352bff9a74ca9ad2":
                    want.pop("host.name")  # dropped by the receiver, as the collector does
                    want["otel.status_code"] = "ERROR"  # written as the specification spells it
                    want["error"] = "true"
                    check(json.loads(ot.pop("otlp.link.0").split("|")[3]) == {"la": "x"} and True,
                          "round trip: link back to otlp.link.0")
                    want.pop("otlp.link.0")
                else:
                    want.pop("error", None)
                    want["error"] = "true"
                    want["otel.status_code"] = "ERROR"
                check(ot == want, "round trip %s: tags equal (%r / %r)" % (s["name"], ot, want))
            # OTLP in -> zipkin protobuf out
            spans = [
                dict(json_span("typed", kind=1, attributes=[
                    {"key": "i", "value": {"intValue": "42"}},
                    {"key": "d", "value": {"doubleValue": 1.5}},
                    {"key": "tiny", "value": {"doubleValue": 1e-7}},
                    {"key": "huge", "value": {"doubleValue": 1e21}},
                    {"key": "tenth", "value": {"doubleValue": 0.1}},
                    {"key": "b", "value": {"boolValue": True}},
                    {"key": "s", "value": {"stringValue": "x"}},
                    {"key": "arr", "value": {"arrayValue": {"values": [{"intValue": "1"}, {"stringValue": "a"}]}}},
                    {"key": "net.peer.ip", "value": {"stringValue": "10.1.1.1"}},
                    {"key": "net.peer.port", "value": {"intValue": "8443"}},
                    {"key": "peer.service", "value": {"stringValue": "db"}}]),
                     status={"code": 2, "message": "bad thing"},
                     parentSpanId="1122334455667788",
                     events=[{"timeUnixNano": "1544712660500000000", "name": "ev",
                              "attributes": [{"key": "z", "value": {"intValue": "1"}},
                                             {"key": "a", "value": {"stringValue": "q"}}]}],
                     links=[{"traceId": "11" * 16, "spanId": "22" * 8, "traceState": "k=v"}]),
            ]
            req = json_traces(spans, "otlp-svc", scope="scope-a")
            req["resourceSpans"][0]["resource"]["attributes"].append(
                {"key": "host.name", "value": {"stringValue": "h1"}})
            req["resourceSpans"].append({"resource": {}, "scopeSpans": [{"scope": {}, "spans": [
                json_span("anon", span_id="0102030405060708", kind=3)]}]})
            st, _, _ = post_json("http://127.0.0.1:%d/v1/traces" % oport, req)
            check(st == 200, "exporter: otlp receiver accepted")
            try:
                got = wait_for("protobuf spans", lambda: len(sink.spans("application/x-protobuf")) >= 2
                               and sink.spans("application/x-protobuf"), OUTPUT_TIMEOUT)
            except AssertionError:
                r.dump(60, "router: ")
                raise
            got = {s["name"]: s for s in got}
            s = got.get("typed", {})
            t = s.get("tags", {})
            check(s.get("traceId") == "5b8efff798038103d269b633813fc60c" and s.get("id") == "eee19b7ec3c1b174"
                  and s.get("parentId") == "1122334455667788", "otlp->zipkin: ids")
            check("kind" not in s and t.get("span.kind") == "internal", "otlp->zipkin: INTERNAL -> span.kind tag")
            check(s.get("timestamp") == 1544712660000000 and s.get("duration") == 1000000, "otlp->zipkin: times")
            check(s.get("localEndpoint") == {"serviceName": "otlp-svc"}, "otlp->zipkin: local endpoint")
            check(s.get("remoteEndpoint") == {"serviceName": "db", "ipv4": "10.1.1.1", "port": 8443},
                  "otlp->zipkin: remote endpoint from net.peer.*/peer.service (%r)" % s.get("remoteEndpoint"))
            want = {"i": "42", "d": "1.5", "tiny": "1e-7", "huge": "1e+21", "tenth": "0.1", "b": "true", "s": "x", "arr": '[1,"a"]', "host.name": "h1",
                    "otel.library.name": "scope-a", "error": "true", "otel.status_code": "ERROR",
                    "otel.status_description": "bad thing", "span.kind": "internal",
                    "otlp.link.0": "11" * 16 + "|" + "22" * 8 + "|k=v|{}|0"}
            check(t == want, "otlp->zipkin: tags (%r)" % t)
            check(s.get("annotations") == [{"timestamp": 1544712660500000, "value": 'ev|{"a":"q","z":1}|0'}],
                  "otlp->zipkin: event with attributes -> 'name|{json}|dropped' (%r)" % s.get("annotations"))
            check(got.get("anon", {}).get("localEndpoint") == {"serviceName": "fallback-svc"} and
                  got.get("anon", {}).get("kind") == "CLIENT", "otlp->zipkin: default_service_name")
            check(r.stop() == 0, "exporter: router exits 0")
    finally:
        sink.close()


def metric_value(text, name):
    total = None
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def case_bad_input(args, check):
    port, mport = free_port(), free_port()
    out_path = os.path.join(args.tmp, "bad.json")
    base = "http://127.0.0.1:%d" % port
    J = {"Content-Type": "application/json"}
    P = {"Content-Type": "application/x-protobuf"}
    good = json.dumps([{"traceId": TRACE64, "id": "00000000000000aa", "name": "ok"}]).encode()
    cases = [
        ("truncated JSON", "/api/v2/spans", J, b'[{"traceId": "5af7', 400, "malformed JSON"),
        ("not an array", "/api/v2/spans", J, b'{"traceId": "5af7183fb1d4cf5f"}', 400, "array"),
        ("timestamp as a string", "/api/v2/spans", J,
         b'[{"traceId":"5af7183fb1d4cf5f","id":"00000000000000aa","timestamp":"x"}]', 400, "timestamp"),
        ("timestamp with a fraction", "/api/v2/spans", J,
         b'[{"traceId":"5af7183fb1d4cf5f","id":"00000000000000aa","timestamp":1.5}]', 400, "timestamp"),
        ("tag value a number", "/api/v2/spans", J,
         b'[{"traceId":"5af7183fb1d4cf5f","id":"00000000000000aa","tags":{"a":1}}]', 400, '"a" must be a string'),
        ("id not hex", "/api/v2/spans", J, b'[{"traceId":"5af7183fb1d4cf5f","id":"xyz"}]', 400, "id"),
        ("traceId too long", "/api/v2/spans", J,
         b'[{"traceId":"5af7183fb1d4cf5f5af7183fb1d4cf5f00","id":"01"}]', 400, "traceId"),
        ("zero id", "/api/v2/spans", J, b'[{"traceId":"5af7183fb1d4cf5f","id":"0000000000000000"}]', 400, "zero"),
        ("missing id", "/api/v2/spans", J, b'[{"traceId":"5af7183fb1d4cf5f"}]', 400, "id is required"),
        ("bad ipv4", "/api/v2/spans", J,
         b'[{"traceId":"5af7183fb1d4cf5f","id":"01","localEndpoint":{"ipv4":"1.2.3"}}]', 400, "IP address"),
        ("v1 traceId of 15 digits", "/api/v1/spans", J, b'[{"traceId":"5af7183fb1d4cf5","id":"00000000000000aa"}]',
         400, "traceId"),
        ("bad annotation attributes", "/api/v2/spans", J,
         b'[{"traceId":"5af7183fb1d4cf5f","id":"01","annotations":[{"timestamp":1,"value":"a|{x|0"}]}]', 400,
         "annotation"),
        ("protobuf garbage", "/api/v2/spans", P, b"\x0a\xff\xff\xff\xff\x0f", 400, "malformed protobuf"),
        ("protobuf trace id of 3 bytes", "/api/v2/spans", P, pb_message({1: [{1: b"abc", 3: b"12345678"}]}),
         400, "trace_id"),
        ("bad gzip", "/api/v2/spans", dict(J, **{"Content-Encoding": "gzip"}), b"not gzip at all", 400, ""),
        ("unknown encoding", "/api/v2/spans", dict(J, **{"Content-Encoding": "br"}), good, 400, "Content-Encoding"),
        ("text/plain", "/api/v2/spans", {"Content-Type": "text/plain"}, good, 415, "unsupported Content-Type"),
        ("protobuf on v1", "/api/v1/spans", P, b"", 415, "unsupported Content-Type"),
    ]
    with Router(args.bin, [args.plugin_dir], receiver_config(port, out_path, metrics_port=mport)) as r:
        for name, path, headers, body, want, text in cases:
            st, _, resp = http("POST", base + path, body, headers)
            check(st == want and text.encode() in resp, "bad input %s: %d with %r (got %d %r)" %
                  (name, want, text, st, resp[:160]))
        st, h, _ = http("GET", base + "/api/v2/spans")
        check(st == 405 and h.get("Allow") == "POST", "GET -> 405 Allow: POST")
        st, _, _ = http("POST", base + "/api/v3/spans", good, J)
        check(st == 404, "other path -> 404")
        st, _, _ = http("POST", base + "/api/v2/spans", good, J)
        check(st == 202, "router healthy: a good request after the bad ones is accepted")
        check(len(wait_spans(out_path, 1)) == 1, "router healthy: its span arrives")
        st, _, body = http("GET", "http://127.0.0.1:%d/metrics" % mport)
        text = body.decode()
        n_bad = len(cases)
        check(metric_value(text, "switchyard_receiver_zipkin_invalid_requests_total") == n_bad,
              "invalid requests counted (%s of %d)" %
              (metric_value(text, "switchyard_receiver_zipkin_invalid_requests_total"), n_bad))
        check(metric_value(text, "switchyard_receiver_zipkin_failed_requests_total") == n_bad + 2,
              "failed requests counted (bad ones + 405 + 404)")
        check(r.stop() == 0, "bad input: router exits 0")
        warns = [ln for ln in r.lines() if "\twarn\t" in ln and "refused a request" in ln]
        check(1 <= len(warns) <= 3, "refusals logged at warn at a rate limit (%d lines)" % len(warns))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["setup", "run"])
    ap.add_argument("--bin")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--src-dir", required=True)
    ap.add_argument("--node-dir", required=True)
    ap.add_argument("--case", choices=["otel_js", "zipkin_js", "crafted", "exporter", "bad_input"])
    args = ap.parse_args()
    if args.mode == "setup":
        return test_otel_js.setup(args)
    if args.case in ("otel_js", "zipkin_js"):
        for script in ("otel_send.mjs", "zipkin_send.mjs"):
            test_otel_js.copy_if_changed(os.path.join(args.src_dir, script),
                                         os.path.join(args.node_dir, script))
    import tempfile
    args.tmp = tempfile.mkdtemp(prefix="sy-zipkin-")
    check = Checks()
    try:
        globals()["case_" + args.case](args, check)
    finally:
        import shutil
        shutil.rmtree(args.tmp, ignore_errors=True)
    if check.failures:
        print("%d checks failed" % len(check.failures), file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
