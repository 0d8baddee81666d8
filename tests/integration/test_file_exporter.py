#!/usr/bin/env python3
"""integration.file_exporter: the `file` exporter through the real binary.

Starts `switchyard` with the otlp receiver (HTTP on a free loopback port) feeding
the file exporter, sends OTLP/HTTP requests (protobuf and JSON) and reads the file:

  a. format json: every line is one OTLP/JSON request; spans, metric points and
     log records come back field by field (hex IDs, 64-bit integers as strings,
     lowerCamelCase keys, attributes); the lines appear within about two
     flush_intervals, without a shutdown;
  b. format proto: each request is a 4-byte big-endian length and the protobuf
     bytes; a tiny protobuf reader finds every span name and log body;
  c. rotation: max_megabytes 1 and about 4 MiB of spans give backups named
     `<name>-YYYY-MM-DDTHH-MM-SS.mmm<ext>`, at most max_backups of them, no file
     over 1 MiB, no record split or lost beyond the pruned backups; an old backup
     past max_days is removed at start, an unrelated file is left alone;
  d. SIGTERM flushes: with a flush_interval of 1h nothing is written before the
     stop, everything after it, and the exit status is 0;
  e. compression zstd: every record is length-prefixed and is a zstd frame;
  f. configuration errors: group_by.enabled, append with rotation, an unknown
     compression are refused with the collector's messages.

    test_file_exporter.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

Python standard library only; every wait is bounded.
"""
import argparse
import glob
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Router, field_fixed64, field_len, field_varint,  # noqa: E402
                     free_port, http, read_varint, wait_for)

check = Checks()
failures = check.failures
TRACE_ID = bytes(range(1, 17))
SPAN_ID = bytes(range(0x11, 0x19))
START_NS = 1544712660000000000
END_NS = 1544712661000000000


# --- OTLP bodies, with harness's tiny protobuf writer -------------------------

def kv_str(key, value):
    return field_len(1, key.encode()) + field_len(2, field_len(1, value.encode()))


def kv_int(key, value):
    return field_len(1, key.encode()) + field_len(2, field_varint(3, value))


def trace_request_pb(names, pad=b""):
    """One resource, one scope, one span per name (span IDs 1, 2, ...)."""
    spans = b""
    for i, name in enumerate(names):
        attrs = field_len(9, kv_int("http.status_code", 200)) + field_len(9, kv_str("peer", "db"))
        if pad:
            attrs += field_len(9, field_len(1, b"pad") + field_len(2, field_len(1, pad)))
        spans += field_len(2, field_len(1, TRACE_ID) + field_len(2, struct.pack(">Q", i + 1)) +
                           field_len(5, name.encode()) + field_varint(6, 2) +
                           field_fixed64(7, START_NS) + field_fixed64(8, END_NS) + attrs)
    resource = field_len(1, field_len(1, kv_str("service.name", "checkout")))
    scope = field_len(1, field_len(1, b"io.example") + field_len(2, b"1.0.0"))
    return field_len(1, resource + field_len(2, scope + spans))


def logs_request_pb(body):
    record = (field_fixed64(1, START_NS) + field_varint(2, 9) + field_len(3, b"INFO") +
              field_len(5, field_len(1, body.encode())) + field_len(9, TRACE_ID) +
              field_len(10, SPAN_ID))
    return field_len(1, field_len(2, field_len(2, record)))


def metrics_request_json(name, value):
    return {"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name",
                                     "value": {"stringValue": "checkout"}}]},
        "scopeMetrics": [{"metrics": [{
            "name": name, "unit": "ms",
            "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                    "dataPoints": [{"asInt": str(value),
                                    "timeUnixNano": str(END_NS),
                                    "startTimeUnixNano": str(START_NS),
                                    "attributes": [{"key": "command.name",
                                                    "value": {"stringValue": "ps"}}]}]}},
            {"name": name + ".g", "gauge": {"dataPoints": [{"asDouble": 0.25,
                                                             "timeUnixNano": str(END_NS)}]}}]}]}]}


def pb_fields(data):
    """Yields (field number, wire type, value) of one message; value is bytes for
    length-delimited fields and an int otherwise."""
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
            if i > len(data):
                raise ValueError("truncated field")
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def pb_get(data, *path):
    """Every value at a path of field numbers (repeated fields fan out)."""
    values = [data]
    for num in path:
        values = [v for d in values for n, _, v in pb_fields(d) if n == num]
    return values


def read_framed(data):
    """Splits 4-byte big-endian length-prefixed records; raises on a bad tail."""
    out, i = [], 0
    while i < len(data):
        if i + 4 > len(data):
            raise ValueError("truncated length at %d" % i)
        (n,) = struct.unpack_from(">I", data, i)
        if i + 4 + n > len(data):
            raise ValueError("truncated record at %d" % i)
        out.append(data[i + 4:i + 4 + n])
        i += 4 + n
    return out


def framed_records(path, case):
    """The records of a length-prefixed file, or None (a failure noted) if the
    framing is broken."""
    try:
        return read_framed(file_bytes(path))
    except ValueError as e:
        check(False, "%s: framing: %s" % (case, e))
        return None


# --- the router --------------------------------------------------------------

def config(port, file_cfg, signals=("traces", "metrics", "logs")):
    lines = ["receivers:", "  otlp:", "    protocols:", "      http:",
             "        endpoint: 127.0.0.1:%d" % port, "exporters:", "  file:"]
    lines += ["    " + line for line in file_cfg.strip().splitlines()]
    lines += ["service:", "  telemetry:", "    metrics:", "      level: none", "  pipelines:"]
    for sig in signals:
        lines.append("    %s: {receivers: [otlp], exporters: [file]}" % sig)
    return "\n".join(lines) + "\n"


def post(port, signal, body, content_type):
    status, _, _ = http("POST", "http://127.0.0.1:%d/v1/%s" % (port, signal), body,
                        {"Content-Type": content_type})
    return status


def post_pb(port, signal, body):
    return post(port, signal, body, "application/x-protobuf")


def post_json(port, signal, obj):
    return post(port, signal, json.dumps(obj).encode(), "application/json")


def file_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def start(args, file_cfg, signals=("traces", "metrics", "logs")):
    port = free_port()
    return Router(args.bin, [args.plugin_dir], config(port, file_cfg, signals)), port


# --- cases ---------------------------------------------------------------------

def case_json(args, tmp):
    path = os.path.join(tmp, "out.json")
    interval = 0.3
    r, port = start(args, "path: %s\nflush_interval: %dms" % (path, interval * 1000))
    try:
        t0 = time.monotonic()
        check(post_pb(port, "traces", trace_request_pb(["GET /cart", "SELECT"])) == 200,
              "json: protobuf traces accepted")
        check(post_json(port, "metrics", metrics_request_json("command.time", 45)) == 200,
              "json: JSON metrics accepted")
        check(post_pb(port, "logs", logs_request_pb("hello file")) == 200,
              "json: protobuf logs accepted")
        wait_for("three lines in the file", lambda: file_bytes(path).count(b"\n") >= 3,
                 2 * interval + 1.5)
        check(time.monotonic() - t0 < 2 * interval + 1.5,
              "json: data in the file within about two flush intervals, no shutdown")
        lines = file_bytes(path).decode().splitlines()
        docs = []
        for line in lines:
            try:
                docs.append(json.loads(line))
            except ValueError:
                check(False, "json: line parses: %r" % line[:80])
        check(len(docs) == 3, "json: three lines, one per request (got %d)" % len(docs))
        by_key = {k: d for d in docs for k in d}
        rs = by_key["resourceSpans"]["resourceSpans"][0]
        check(rs["resource"]["attributes"] ==
              [{"key": "service.name", "value": {"stringValue": "checkout"}}],
              "json: resource attributes")
        ss = rs["scopeSpans"][0]
        check(ss["scope"] == {"name": "io.example", "version": "1.0.0"}, "json: scope")
        spans = ss["spans"]
        check([s["name"] for s in spans] == ["GET /cart", "SELECT"], "json: span names")
        s0 = spans[0]
        check(s0["traceId"] == "0102030405060708090a0b0c0d0e0f10", "json: traceId as hex")
        check(s0["spanId"] == "0000000000000001", "json: spanId as hex")
        check(spans[1]["spanId"] == "0000000000000002", "json: second spanId")
        check(s0["kind"] == 2, "json: kind as an integer")
        check(s0["startTimeUnixNano"] == str(START_NS) and s0["endTimeUnixNano"] == str(END_NS),
              "json: timestamps as strings")
        check(s0["attributes"] == [
            {"key": "http.status_code", "value": {"intValue": "200"}},
            {"key": "peer", "value": {"stringValue": "db"}}],
            "json: attributes, int values as strings")
        m = by_key["resourceMetrics"]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        check(m[0]["name"] == "command.time" and m[0]["unit"] == "ms", "json: metric name, unit")
        pt = m[0]["sum"]["dataPoints"][0]
        check(pt["asInt"] == "45" and pt["timeUnixNano"] == str(END_NS) and
              pt["startTimeUnixNano"] == str(START_NS), "json: sum point, int64 as strings")
        check(m[0]["sum"]["aggregationTemporality"] == 2 and m[0]["sum"]["isMonotonic"] is True,
              "json: temporality, monotonic")
        check(pt["attributes"] == [{"key": "command.name", "value": {"stringValue": "ps"}}],
              "json: point attributes")
        check(m[1]["gauge"]["dataPoints"][0]["asDouble"] == 0.25, "json: gauge double")
        lr = by_key["resourceLogs"]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
        check(lr["body"] == {"stringValue": "hello file"} and lr["severityNumber"] == 9 and
              lr["severityText"] == "INFO", "json: log body, severity")
        check(lr["traceId"] == "0102030405060708090a0b0c0d0e0f10" and
              lr["spanId"] == "1112131415161718" and lr["timeUnixNano"] == str(START_NS),
              "json: log IDs and time")
        check(not re.search(r'"[a-z]+_[a-z_]+"\s*:', file_bytes(path).decode()),
              "json: no snake_case keys")
    finally:
        check(r.stop() == 0, "json: SIGTERM exits 0")


def case_proto(args, tmp):
    path = os.path.join(tmp, "out.pb")
    r, port = start(args, "path: %s\nformat: proto\nflush_interval: 100ms" % path)
    sent = [trace_request_pb(["a-%d" % i, "b-%d" % i]) for i in range(5)]
    try:
        for body in sent:
            check(post_pb(port, "traces", body) == 200, "proto: traces accepted")
        check(post_pb(port, "logs", logs_request_pb("proto log")) == 200, "proto: logs accepted")
        check(post_json(port, "metrics", metrics_request_json("m.proto", 7)) == 200,
              "proto: JSON metrics accepted")
    finally:
        check(r.stop() == 0, "proto: SIGTERM exits 0")
    records = framed_records(path, "proto")
    if records is None:
        return
    check(len(records) == 7, "proto: seven length-prefixed records (got %d)" % len(records))
    # The three signals run through separate pipelines, so only the order within
    # one signal is fixed.
    spans = [r for r in records if r in sent]
    check(spans == sent, "proto: the span records are the bytes that were sent, in order")
    names = [n.decode() for rec in spans for n in pb_get(rec, 1, 2, 2, 5)]
    check(names == [n for i in range(5) for n in ("a-%d" % i, "b-%d" % i)],
          "proto: every span name, in order")
    logs = [r for r in records if b"proto log" in r]
    metrics = [r for r in records if b"m.proto" in r]
    check(len(logs) == 1 and pb_get(logs[0], 1, 2, 2, 5, 1) == [b"proto log"],
          "proto: log body")
    check(len(metrics) == 1 and pb_get(metrics[0], 1, 2, 2, 1) == [b"m.proto", b"m.proto.g"],
          "proto: metric names from a JSON request")
    pts = pb_get(metrics[0], 1, 2, 2, 7, 1) if metrics else []
    check(len(pts) == 1 and any(n == 6 and wt == 1 and v == 7 for n, wt, v in pb_fields(pts[0])),
          "proto: sum point asInt (sfixed64) = 7")


BACKUP_RE = re.compile(r"^spans-(\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3})\.json$")


def case_rotation(args, tmp):
    d = os.path.join(tmp, "rot")
    os.makedirs(d)
    path = os.path.join(d, "spans.json")
    old = os.path.join(d, "spans-2000-01-01T00-00-00.000.json")
    other = os.path.join(d, "spans-notatimestamp.json")
    for p in (old, other):
        with open(p, "w") as f:
            f.write("{}\n")
    cfg = ("path: %s\nflush_interval: 100ms\nrotation:\n  max_megabytes: 1\n"
           "  max_backups: 2\n  max_days: 1" % path)
    r, port = start(args, cfg, signals=("traces",))
    pad = b"x" * (100 * 1024)
    n_req = 40  # about 4 MiB of JSON
    try:
        check(not os.path.exists(old), "rotation: a backup older than max_days removed at start")
        check(os.path.exists(other), "rotation: a file that is not a backup left alone")
        for i in range(n_req):
            check(post_pb(port, "traces", trace_request_pb(["r-%d" % i], pad)) == 200,
                  "rotation: request %d accepted" % i)
    finally:
        check(r.stop() == 0, "rotation: SIGTERM exits 0")
    backups = sorted(f for f in os.listdir(d) if BACKUP_RE.match(f))
    check(1 <= len(backups) <= 2, "rotation: 1..max_backups(2) backups (got %s)" % backups)
    check(len(set(backups)) == len(backups), "rotation: backup names distinct")
    names = []
    for fname in backups + ["spans.json"]:
        full = os.path.join(d, fname)
        size = os.path.getsize(full)
        check(size <= 1024 * 1024, "rotation: %s is at most 1 MiB (%d)" % (fname, size))
        for line in file_bytes(full).decode().splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                check(False, "rotation: %s: a line does not parse" % fname)
                continue
            names += [s["name"] for s in doc["resourceSpans"][0]["scopeSpans"][0]["spans"]]
    # The newest files hold a contiguous tail of what was sent: nothing is lost
    # or split except whole pruned backups.
    expect = ["r-%d" % i for i in range(n_req)]
    check(len(names) > 0 and names == expect[len(expect) - len(names):],
          "rotation: the kept files hold the last %d requests in order" % len(names))
    check(len(names) >= 20, "rotation: at least ~2 MiB kept (%d requests)" % len(names))


def case_sigterm_flush(args, tmp):
    path = os.path.join(tmp, "flush.json")
    r, port = start(args, "path: %s\nflush_interval: 1h" % path, signals=("traces",))
    try:
        for i in range(3):
            check(post_pb(port, "traces", trace_request_pb(["t-%d" % i])) == 200,
                  "sigterm: request accepted")
        time.sleep(0.5)
        check(file_bytes(path) == b"", "sigterm: nothing written before the flush interval")
    finally:
        check(r.stop() == 0, "sigterm: SIGTERM exits 0")
    lines = file_bytes(path).decode().splitlines()
    names = [json.loads(x)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"]
             for x in lines]
    check(names == ["t-0", "t-1", "t-2"], "sigterm: everything flushed at shutdown")


def case_zstd(args, tmp):
    path = os.path.join(tmp, "z.json.zst")
    r, port = start(args, "path: %s\ncompression: zstd" % path, signals=("traces",))
    try:
        for i in range(3):
            check(post_pb(port, "traces", trace_request_pb(["z-%d" % i] * 20)) == 200,
                  "zstd: request accepted")
    finally:
        check(r.stop() == 0, "zstd: SIGTERM exits 0")
    records = framed_records(path, "zstd")
    if records is None:
        return
    check(len(records) == 3 and all(rec[:4] == b"\x28\xb5\x2f\xfd" for rec in records),
          "zstd: three length-prefixed zstd frames")
    check(all(b"z-0" not in rec for rec in records), "zstd: the records are compressed")
    unzstd = subprocess.run(["sh", "-c", "command -v zstd"], capture_output=True).stdout.strip()
    if unzstd:
        out = subprocess.run([unzstd, "-d", "-c"], input=records[0], capture_output=True,
                             timeout=10).stdout
        check(json.loads(out)["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["name"] == "z-0",
              "zstd: a frame decompresses to one OTLP/JSON request")


def case_config_errors(args, tmp):
    cases = [
        ("path: %s/g-*.json\ngroup_by:\n  enabled: true" % tmp, "group_by"),
        ("path: %s/a.json\nappend: true\nrotation:\n  max_megabytes: 1" % tmp,
         "append and rotation enabled at the same time is not supported"),
        ("path: %s/c.json\ncompression: gzip" % tmp, "compression is not supported"),
        ("path: %s/f.json\nformat: xml" % tmp, "format"),
    ]
    for i, (file_cfg, want) in enumerate(cases):
        cfg_path = os.path.join(tmp, "bad-%d.yaml" % i)
        with open(cfg_path, "w") as f:
            f.write(config(free_port(), file_cfg, signals=("traces",)))
        p = subprocess.run([args.bin, "validate", "--config", cfg_path,
                            "--plugin-dir", args.plugin_dir],
                           capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        check(p.returncode != 0 and want in out,
              "config: %r refused with %r (rc %d: %s)" % (file_cfg.splitlines()[-1], want,
                                                         p.returncode, out.strip()[-200:]))
    # group_by present but disabled is accepted.
    cfg_path = os.path.join(tmp, "ok.yaml")
    with open(cfg_path, "w") as f:
        f.write(config(free_port(), "path: %s/ok.json\ngroup_by:\n  enabled: false\n"
                       "  resource_attribute: x" % tmp, signals=("traces",)))
    p = subprocess.run([args.bin, "validate", "--config", cfg_path, "--plugin-dir",
                        args.plugin_dir], capture_output=True, timeout=30)
    check(p.returncode == 0, "config: group_by with enabled: false accepted")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--case", action="append",
                    choices=["json", "proto", "rotation", "sigterm", "zstd", "config"])
    args = ap.parse_args()
    cases = {"json": case_json, "proto": case_proto, "rotation": case_rotation,
             "sigterm": case_sigterm_flush, "zstd": case_zstd, "config": case_config_errors}
    with tempfile.TemporaryDirectory(prefix="sy-file-") as tmp:
        for name in args.case or list(cases):
            before = len(failures)
            try:
                cases[name](args, tmp)
            except AssertionError as e:
                check(False, "%s: %s" % (name, e))
            print("case %s: %s" % (name, "ok" if len(failures) == before else "FAILED"))
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
