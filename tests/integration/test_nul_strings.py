#!/usr/bin/env python3
"""integration.nul_strings: strings holding NUL bytes (U+0000) go through whole.

OTLP strings may hold any valid UTF-8, U+0000 too. Starts `switchyard` with the
otlp receiver (HTTP) feeding two file exporters, one writing `json` and one
`proto`, and sends:

  a. OTLP/JSON: a span named "a\\u0000b" with an attribute "x\\u0000y" (and a
     key with a NUL), and a log record whose body is "l\\u0000m";
  b. protobuf: a span named "p\\0q" with an attribute value "v\\0w".

Both files must hold every string byte for byte: the JSON lines as "\\u0000"
escapes that json.loads() turns back into the same strings, the protobuf
records with the NUL bytes in place.

Then the same three requests go to the debug exporter with `verbosity: normal`
and with `verbosity: detailed`: every string comes out whole, each NUL byte as
the six characters "\\u0000" (plugins/exporters/debug/README.md), and no raw NUL
byte is written.

    test_nul_strings.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

Python standard library only; every wait is bounded.
"""
import argparse
import json
import os
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Router, field_fixed64, field_len, free_port,  # noqa: E402
                     http, read_varint)

check = Checks()
TRACE_ID = bytes(range(1, 17))
START_NS = 1544712660000000000


def pb_fields(data):
    """(field number, value) of one message: bytes if length-delimited, else int."""
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 1:
            v, i = struct.unpack_from("<Q", data, i)[0], i + 8
        elif wt == 5:
            v, i = struct.unpack_from("<I", data, i)[0], i + 4
        elif wt == 2:
            n, i = read_varint(data, i)
            v, i = data[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % wt)
        yield num, v


def pb_get(data, *path):
    values = [data]
    for num in path:
        values = [v for d in values for n, v in pb_fields(d) if n == num]
    return values


def read_framed(data):
    out, i = [], 0
    while i + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, i)
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


def file_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def config(port, json_path, pb_path):
    return """receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  file/json:
    path: %s
    flush_interval: 100ms
  file/proto:
    path: %s
    format: proto
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {receivers: [otlp], exporters: [file/json, file/proto]}
    logs: {receivers: [otlp], exporters: [file/json, file/proto]}
""" % (port, json_path, pb_path)


def post(port, signal, body, content_type):
    status, _, data = http("POST", "http://127.0.0.1:%d/v1/%s" % (port, signal), body,
                           {"Content-Type": content_type})
    return status, data


JSON_TRACES = {"resourceSpans": [{"scopeSpans": [{"spans": [{
    "traceId": TRACE_ID.hex(), "spanId": "0102030405060708", "name": "a\u0000b",
    "startTimeUnixNano": str(START_NS),
    "attributes": [{"key": "attr", "value": {"stringValue": "x\u0000y"}},
                   {"key": "k\u0000ey", "value": {"stringValue": "\u0000"}}]}]}]}]}
JSON_LOGS = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{
    "timeUnixNano": str(START_NS), "body": {"stringValue": "l\u0000m"}}]}]}]}


def pb_traces():
    attr = field_len(1, b"attr") + field_len(2, field_len(1, b"v\x00w"))
    span = (field_len(1, TRACE_ID) + field_len(2, bytes(range(9, 17))) +
            field_len(5, b"p\x00q") + field_fixed64(7, START_NS) + field_len(9, attr))
    return field_len(1, field_len(2, field_len(2, span)))


def debug_config(port, verbosity):
    return """receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  debug:
    verbosity: %s
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {receivers: [otlp], exporters: [debug]}
    logs: {receivers: [otlp], exporters: [debug]}
""" % (port, verbosity)


# What each verbosity must write for the three requests: the strings whole, a NUL
# as the six characters \u0000.
TID = TRACE_ID.hex().encode()
DEBUG_EXPECT = {
    "normal": [
        b"\na\\u0000b " + TID + b" 0102030405060708 attr=x\\u0000y k\\u0000ey=\\u0000\n",
        b"\np\\u0000q " + TID + b" 090a0b0c0d0e0f10 attr=v\\u0000w\n",
        b"\nl\\u0000m \n",
    ],
    "detailed": [
        b"\n    Name           : a\\u0000b\n",
        b"\n     -> attr: Str(x\\u0000y)\n",
        b"\n     -> k\\u0000ey: Str(\\u0000)\n",
        b"\n    Name           : p\\u0000q\n",
        b"\n     -> attr: Str(v\\u0000w)\n",
        b"\nBody: Str(l\\u0000m)\n",
    ],
}


def case_debug(args, verbosity):
    port = free_port()
    with Router(args.bin, [args.plugin_dir], debug_config(port, verbosity)) as r:
        for signal, body, ctype in (
                ("traces", json.dumps(JSON_TRACES).encode(), "application/json"),
                ("logs", json.dumps(JSON_LOGS).encode(), "application/json"),
                ("traces", pb_traces(), "application/x-protobuf")):
            st, data = post(port, signal, body, ctype)
            check(st == 200, "debug %s: %s accepted (got %d %r)" % (verbosity, signal, st, data))
        want = DEBUG_EXPECT[verbosity]
        deadline = time.monotonic() + 10
        out = b""
        while time.monotonic() < deadline:
            out = r.output_bytes()
            if all(w in out for w in want):
                break
            time.sleep(0.05)
        for w in want:
            check(w in out, "debug %s: writes %r" % (verbosity, w.strip()))
        check(b"\x00" not in out, "debug %s: no raw NUL byte written" % verbosity)
        if check.failures:
            print(out.decode("utf-8", "replace")[-4000:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="sy-nul-")
    json_path = os.path.join(tmp, "out.json")
    pb_path = os.path.join(tmp, "out.pb")
    port = free_port()
    with Router(args.bin, [args.plugin_dir], config(port, json_path, pb_path)) as r:
        st, data = post(port, "traces", json.dumps(JSON_TRACES).encode(), "application/json")
        check(st == 200, "JSON traces with NULs accepted (got %d %r)" % (st, data))
        st, data = post(port, "logs", json.dumps(JSON_LOGS).encode(), "application/json")
        check(st == 200, "JSON logs with a NUL accepted (got %d %r)" % (st, data))
        st, data = post(port, "traces", pb_traces(), "application/x-protobuf")
        check(st == 200, "protobuf traces with NULs accepted (got %d %r)" % (st, data))

        deadline = time.monotonic() + 10
        lines, records = [], []
        while time.monotonic() < deadline:
            lines = [ln for ln in file_bytes(json_path).split(b"\n") if ln]
            records = read_framed(file_bytes(pb_path))
            if len(lines) >= 3 and len(records) >= 3:
                break
            time.sleep(0.05)
        check(len(lines) == 3 and len(records) == 3,
              "3 JSON lines and 3 protobuf records written (got %d, %d)"
              % (len(lines), len(records)))
        if r.proc.poll() is not None:
            r.dump()

    # JSON: the escapes are in the bytes, and decode to the same strings.
    raw = b"\n".join(lines)
    check(b'"name":"a\\u0000b"' in raw, 'JSON file: span name written "a\\u0000b"')
    check(b'"name":"p\\u0000q"' in raw, 'JSON file: protobuf span name written "p\\u0000q"')
    docs = []
    for ln in lines:
        try:
            docs.append(json.loads(ln))
        except ValueError as e:
            check(False, "JSON line parses: %s: %r" % (e, ln[:200]))
    spans = [s for d in docs for rs in d.get("resourceSpans", [])
             for ss in rs.get("scopeSpans", []) for s in ss.get("spans", [])]
    names = sorted(s.get("name") for s in spans)
    check(names == ["a\x00b", "p\x00q"], "JSON file: span names intact (got %r)" % names)
    attrs = sorted((a["key"], a["value"].get("stringValue")) for s in spans
                   for a in s.get("attributes", []))
    check(attrs == [("attr", "v\x00w"), ("attr", "x\x00y"), ("k\x00ey", "\x00")],
          "JSON file: attribute keys and values intact (got %r)" % attrs)
    bodies = [lr.get("body", {}).get("stringValue") for d in docs
              for rl in d.get("resourceLogs", []) for sl in rl.get("scopeLogs", [])
              for lr in sl.get("logRecords", [])]
    check(bodies == ["l\x00m"], "JSON file: log body intact (got %r)" % bodies)

    # proto: the bytes are in place. A logs record has an integer (the time) at
    # 1.2.2.1 where a traces record has the trace ID.
    logs = [rec for rec in records if any(isinstance(v, int) for v in pb_get(rec, 1, 2, 2, 1))]
    traces = [rec for rec in records if rec not in logs]
    check(len(logs) == 1 and len(traces) == 2, "proto file: 1 logs and 2 traces records")
    names = sorted(n for rec in traces for n in pb_get(rec, 1, 2, 2, 5))
    check(names == [b"a\x00b", b"p\x00q"], "proto file: span names intact (got %r)" % names)
    values = sorted(v for rec in traces for v in pb_get(rec, 1, 2, 2, 9, 2, 1))
    check(values == [b"\x00", b"v\x00w", b"x\x00y"],
          "proto file: attribute values intact (got %r)" % values)
    keys = sorted(k for rec in traces for k in pb_get(rec, 1, 2, 2, 9, 1))
    check(keys == [b"attr", b"attr", b"k\x00ey"], "proto file: keys intact (got %r)" % keys)
    bodies = [b for rec in logs for b in pb_get(rec, 1, 2, 2, 5, 1)]
    check(bodies == [b"l\x00m"], "proto file: log body intact (got %r)" % bodies)

    for verbosity in ("normal", "detailed"):
        case_debug(args, verbosity)

    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
