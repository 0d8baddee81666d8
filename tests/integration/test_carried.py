#!/usr/bin/env python3
"""integration.carried: what the router acknowledges, it carries (issue 6, item 6).

Starts the real `switchyard` and checks, over OTLP/HTTP:

  a. invalid UTF-8 in an OTLP string is refused with 400 and a google.rpc.Status
     of code 3 (INVALID_ARGUMENT) naming the problem: in protobuf (an attribute
     key, a span name, at depth), in JSON (raw bytes, an encoded surrogate, an
     unpaired surrogate escape); valid multi-byte UTF-8 and NUL are accepted;
  b. a request the pipeline could not carry is refused before it is
     acknowledged: 10,000,000 empty spans (20 MB of protobuf) get 413 with a
     Status of code 8 (RESOURCE_EXHAUSTED); max_items_per_request refuses one item
     over the bound, in protobuf and JSON, and accepts the bound itself;
  c. a string holding NUL and multi-byte UTF-8, sent as protobuf, is written by the
     file exporter (format proto) byte for byte;
  d. SIGTERM with the backend down: exporter_queue_size counts the 21 requests
     held (queued and waiting for their retry), and the router exits 4 after
     counting every held span as failed (the exporter's and the router's log lines
     give the count).

    test_carried.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

Python standard library only; every wait is bounded.
"""
import argparse
import json
import os
import re
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Router, field_fixed64, field_len, field_varint,  # noqa: E402
                     free_port, http, read_varint, wait_for)

check = Checks()
PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}
TRACE_ID = bytes(range(1, 17))
START_NS = 1544712660000000000


def read_status_pb(data):
    """google.rpc.Status {code=1, message=2} from protobuf bytes."""
    code, message, i = 0, "", 0
    while i < len(data):
        key, i = read_varint(data, i)
        if key & 7 == 0:
            v, i = read_varint(data, i)
            if key >> 3 == 1:
                code = v
        elif key & 7 == 2:
            n, i = read_varint(data, i)
            if key >> 3 == 2:
                message = data[i:i + n].decode("utf-8", "replace")
            i += n
        else:
            raise ValueError("unexpected wire type")
    return code, message


def span_pb(name, attrs=b"", span_no=1):
    return field_len(2, field_len(1, TRACE_ID) + field_len(2, struct.pack(">Q", span_no)) +
                     field_len(5, name) + field_varint(6, 2) + field_fixed64(7, START_NS) +
                     field_fixed64(8, START_NS + 1000) + attrs)


def traces_pb(spans, resource_attrs=b""):
    resource = field_len(1, resource_attrs) if resource_attrs else b""
    return field_len(1, resource + field_len(2, b"".join(spans)))


def kv_str(key, value, field=9):
    """A string attribute: field 9 of a Span, field 1 of a Resource."""
    return field_len(field, field_len(1, key) + field_len(2, field_len(1, value)))


def json_traces(names):
    spans = [{"traceId": TRACE_ID.hex(), "spanId": "%016x" % (i + 1), "name": n}
             for i, n in enumerate(names)]
    return {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}


def post(port, body, headers, path="/v1/traces", timeout=30.0):
    return http("POST", f"http://127.0.0.1:{port}{path}", body, headers, timeout)


def expect_pb(port, body, status, code, fragment, what):
    st, _, resp = post(port, body, PB)
    got_code, msg = read_status_pb(resp) if st != 200 else (0, "")
    check(st == status and got_code == code and fragment in msg,
          f"{what}: {st} code {got_code} {msg[:160]!r} (want {status}, code {code}, "
          f"message with {fragment!r})")


def expect_json(port, raw, status, code, fragment, what):
    st, _, resp = post(port, raw, JS)
    try:
        obj = json.loads(resp) if st != 200 else {}
    except ValueError:
        obj = {"message": resp[:200].decode("utf-8", "replace")}
    msg = obj.get("message", "")
    check(st == status and obj.get("code", 0) == code and fragment in msg,
          f"{what}: {st} code {obj.get('code')} {msg[:160]!r} (want {status}, code {code}, "
          f"message with {fragment!r})")


def receivers(port, small_port):
    return f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
  otlp/small:
    max_items_per_request: 100
    protocols:
      http:
        endpoint: 127.0.0.1:{small_port}
"""


def case_refusals(args):
    port, small = free_port(), free_port()
    config = receivers(port, small) + """exporters:
  nop:
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp, otlp/small]
      exporters: [nop]
"""
    with Router(args.bin, [args.plugin_dir], config) as router:
        # a. UTF-8, protobuf.
        expect_pb(port, traces_pb([span_pb("caf\u00e9 \u20ac a\x00b".encode())]), 200, 0, "",
                  "protobuf: multi-byte UTF-8 and NUL accepted")
        expect_pb(port, traces_pb([span_pb(b"ok")], kv_str(b"k\xff", b"v", field=1)), 400, 3,
                  "invalid UTF-8 in string field opentelemetry.proto.common.v1.KeyValue.key",
                  "protobuf: invalid UTF-8 in a resource attribute key")
        expect_pb(port, traces_pb([span_pb(b"ok"), span_pb(b"\xc0\xaf")]), 400, 3,
                  "invalid UTF-8 in string field opentelemetry.proto.trace.v1.Span.name",
                  "protobuf: overlong form in a span name")
        expect_pb(port, traces_pb([span_pb(b"x", kv_str(b"k", b"\xed\xa0\x80"))]), 400, 3,
                  "AnyValue.string_value", "protobuf: a surrogate in a string value")
        # a. UTF-8, JSON.
        ok = json.dumps(json_traces(["caf\u00e9 a\u0000b \U0001f600"])).encode()
        expect_json(port, ok, 200, 0, "", "JSON: multi-byte UTF-8, NUL and a surrogate pair")
        raw = json.dumps(json_traces(["NAME"])).encode().replace(b"NAME", b"a\xed\xa0\x80b")
        expect_json(port, raw, 400, 3, "invalid UTF-8", "JSON: raw bytes of a surrogate")
        raw = json.dumps(json_traces(["NAME"])).encode().replace(b"NAME", b"a\\ud800b")
        expect_json(port, raw, 400, 3, "unpaired UTF-16 surrogate escape",
                    "JSON: a lone high surrogate escape")
        raw = json.dumps(json_traces(["NAME"])).encode().replace(b"NAME", b"\\udc00")
        expect_json(port, raw, 400, 3, "invalid UTF-8", "JSON: a lone low surrogate escape")

        # b. Bounds. 10,000,000 empty spans: 20 MB, under the body limit.
        huge = field_len(1, field_len(2, b"\x12\x00" * 10_000_000))
        check(len(huge) < 20 * 1024 * 1024, f"the huge request is {len(huge)} bytes")
        expect_pb(port, huge, 413, 8, "request too large",
                  "10,000,000 empty spans refused before they are acknowledged")
        del huge
        expect_pb(small, traces_pb([span_pb(b"s", span_no=i + 1) for i in range(100)]), 200, 0,
                  "", "max_items_per_request 100: 100 spans accepted")
        expect_pb(small, traces_pb([span_pb(b"s", span_no=i + 1) for i in range(101)]), 413, 8,
                  "101 items in one request, over max_items_per_request (100)",
                  "max_items_per_request 100: 101 spans refused (protobuf)")
        expect_json(small, json.dumps(json_traces(["s"] * 101)).encode(), 413, 8,
                    "over max_items_per_request (100)",
                    "max_items_per_request 100: 101 spans refused (JSON)")
        rc = router.stop()
        check(rc == 0, f"exit code {rc} after SIGTERM (want 0)")
        if check.failures:
            router.dump(60)


def case_nul_file(args):
    port = free_port()
    out_dir = os.path.join(os.path.dirname(os.path.abspath(args.bin)), "..", "carried-it")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "nul.pb")
    if os.path.exists(path):
        os.remove(path)
    config = f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  file:
    path: {path}
    format: proto
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [file]
processors:
  batch:
    timeout: 50ms
"""
    name = "a\x00b caf\u00e9 \u20ac \U0001f600".encode()
    value = b"\x00\x00v\x00"
    with Router(args.bin, [args.plugin_dir], config) as router:
        st, _, _ = post(port, traces_pb([span_pb(name, kv_str(b"k\x00", value))]), PB)
        check(st == 200, f"NUL round trip: answered {st}")
        rc = router.stop()
        check(rc == 0, f"exit code {rc} (want 0)")
    data = open(path, "rb").read() if os.path.exists(path) else b""
    check(field_len(5, name) in data, "file (proto): the span name kept byte for byte, NUL "
          "and multi-byte UTF-8 included")
    check(field_len(1, b"k\x00") + field_len(2, field_len(1, value)) in data,
          "file (proto): the attribute key and value kept byte for byte")


def case_shutdown_loss(args):
    port, mport = free_port(), free_port()
    down = free_port()  # nothing listens there: the backend is down
    config = f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{down}
    retry_on_failure:
      initial_interval: 30s
      max_interval: 30s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlphttp]
"""
    requests, per = 21, 256
    with Router(args.bin, [args.plugin_dir], config) as router:
        for r in range(requests):
            body = traces_pb([span_pb(b"held", span_no=r * per + i + 1) for i in range(per)])
            st, _, _ = post(port, body, PB)
            check(st == 200, f"request {r}: answered {st}")

        def gauge():
            _, _, text = http("GET", f"http://127.0.0.1:{mport}/metrics")
            m = re.search(rb'^switchyard_exporter_queue_size\{[^}]*exporter="otlphttp"[^}]*\} '
                          rb'(\d+)', text, re.M)
            return m and int(m.group(1))
        # 10 consumers hold a request each, waiting for a retry; 11 are queued.
        got = None
        try:
            got = wait_for("exporter_queue_size 21", lambda: gauge() == requests and requests,
                           20.0)
        except AssertionError:
            got = gauge()
        check(got == requests, f"exporter_queue_size counts the {requests} requests held, "
              f"waiting to retry included (got {got})")
        rc = router.stop(timeout=60)
        out = router.output()
    total = requests * per
    check(rc == 4, f"exit code {rc} after SIGTERM with {total} spans held (want 4)")
    m = re.search(r"(\d+) acknowledged items could not be delivered by the shutdown deadline", out)
    check(m and int(m.group(1)) == total,
          f"the router reports {m and m.group(1)} items not delivered (want {total})")
    dropped = sum(int(x) for x in re.findall(r"shutting down; dropped (\d+) spans", out))
    deadline = sum(int(x) for x in re.findall(r"Shutdown deadline passed: (\d+) items", out))
    check(dropped + deadline == total,
          f"the exporter counted {dropped} + {deadline} spans failed (want {total})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--case", choices=["refusals", "nul_file", "shutdown_loss", "all"],
                    default="all")
    args = ap.parse_args()
    cases = {"refusals": case_refusals, "nul_file": case_nul_file,
             "shutdown_loss": case_shutdown_loss}
    for name, fn in cases.items():
        if args.case in (name, "all"):
            print(f"--- {name}", flush=True)
            fn(args)
    if check.failures:
        print(f"{len(check.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
