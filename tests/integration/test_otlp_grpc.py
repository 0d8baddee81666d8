#!/usr/bin/env python3
"""The otlp receiver's OTLP/gRPC protocol against @grpc/grpc-js.

  test_otlp_grpc.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
                    --kit-dir build/tests/plugins --src-dir tests/integration/node
                    --node-dir BUILD/otel-js-node

1. The OpenTelemetry JS SDK's gRPC exporters (exporter-*-otlp-grpc, through
   node/send.mjs --protocol grpc, plain and gzip) send traces, metrics and logs into
   `otlp (gRPC) -> batch -> debug (detailed)`; what they were handed is compared
   field by field with what the debug exporter printed. This is test_otel_js.py's
   run with a gRPC receiver in its configuration: the comparison code is its own.
2. Raw calls from node/grpc_raw.mjs (grpc-js with message bytes of our choosing)
   check the status codes: OK, gzip accepted, INVALID_ARGUMENT for a bad message,
   UNIMPLEMENTED for an unknown method or service and for a signal without a
   pipeline, RESOURCE_EXHAUSTED over max_recv_msg_size_mib (compressed and
   decompressed), INVALID_ARGUMENT for a string that is not UTF-8,
   RESOURCE_EXHAUSTED over max_items_per_request, and RESOURCE_EXHAUSTED with a
   google.rpc.RetryInfo of 1 s when a slow exporter fills the queues.

Needs the npm packages that the integration.node_setup test installs; every wait is
bounded; python3 standard library only.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import test_otel_js as otel
from harness import Checks, Router, field_len, free_port, read_varint
from test_otlp_http import trace_request_pb

NODE_TIMEOUT = 90.0
MAX_MIB = 1
TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
METRICS_EXPORT = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"

# test_otel_js.run's configuration with the receiver on gRPC instead of HTTP.
SDK_CONFIG = otel.CONFIG.replace("      http:\n", "      grpc:\n")

RAW_CONFIG = """
receivers:
  otlp:
    max_items_per_request: 1000
    protocols:
      grpc:
        endpoint: 127.0.0.1:{port}
        max_recv_msg_size_mib: {max_mib}
        max_concurrent_streams: 16
        read_buffer_size: 64KiB
        keepalive:
          server_parameters:
            max_connection_idle: 1m
            time: 2h
            timeout: 20s
          enforcement_policy:
            min_time: 5s
            permit_without_stream: true
exporters:
  debug:
    verbosity: detailed
    sampling_initial: 1000000
    sampling_thereafter: 1
  testsink:
    delay: 15ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug, testsink]
"""

OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNIMPLEMENTED = 0, 3, 8, 12


def fields(data):
    """The length-delimited and varint fields of a protobuf message: {num: [values]}."""
    out, i = {}, 0
    while i < len(data):
        key, i = read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 2:
            n, i = read_varint(data, i)
            v, i = data[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def retry_delay(details_hex):
    """(code, RetryInfo delay in seconds or None) of a grpc-status-details-bin."""
    status = fields(bytes.fromhex(details_hex))
    delay = None
    for any_ in status.get(3, []):
        a = fields(any_)
        if a.get(1, [b""])[0] == b"type.googleapis.com/google.rpc.RetryInfo":
            d = fields(fields(a[2][0])[1][0])
            delay = d.get(1, [0])[0] + d.get(2, [0])[0] / 1e9
    return status.get(1, [0])[0], delay


def many_spans_pb(n):
    """One resource and scope holding n empty spans."""
    return field_len(1, field_len(2, b"\x12\x00" * n))


def raw_cases():
    big_name = "x" * (MAX_MIB * 1024 * 1024 + 1000)
    return [
        {"name": "ok", "path": TRACE_EXPORT, "hex": trace_request_pb("grpc-raw-plain").hex()},
        {"name": "gzip", "path": TRACE_EXPORT, "gzip": True,
         "hex": trace_request_pb("grpc-raw-gzip").hex()},
        {"name": "bad message", "path": TRACE_EXPORT, "hex": "0aff"},
        {"name": "unknown method", "path": "/opentelemetry.proto.collector.trace.v1."
         "TraceService/Nope", "hex": ""},
        {"name": "unknown service", "path": "/foo.Bar/Export", "hex": ""},
        {"name": "no metrics pipeline", "path": METRICS_EXPORT, "hex": ""},
        {"name": "too large", "path": TRACE_EXPORT, "hex": trace_request_pb(big_name).hex()},
        # Small on the wire, over the bound once decompressed.
        {"name": "too large gzip", "path": TRACE_EXPORT, "gzip": True,
         "hex": trace_request_pb(big_name).hex()},
        # OTLP strings must be valid UTF-8: a span name with 0xff 0xfe.
        {"name": "invalid utf-8", "path": TRACE_EXPORT,
         "hex": trace_request_pb("grpc-raw-ab").replace(b"-ab", b"\xff\xfe!").hex()},
        # 1001 empty spans, over max_items_per_request: 1000.
        {"name": "too many items", "path": TRACE_EXPORT,
         "hex": many_spans_pb(1001).hex()},
        {"name": "queue full", "path": TRACE_EXPORT, "repeat": 5000,
         "hex": trace_request_pb("grpc-raw-flood").hex()},
    ]


def run_raw(args, check):
    port = free_port()
    config = RAW_CONFIG.format(port=port, max_mib=MAX_MIB)
    with Router(args.bin, [args.kit_dir, args.plugin_dir], config) as router:
        tmp = tempfile.mkdtemp(prefix="sy-grpc-raw-")
        cases, out = os.path.join(tmp, "cases.json"), os.path.join(tmp, "results.json")
        with open(cases, "w") as f:
            json.dump(raw_cases(), f)
        cmd = ["node", os.path.join(args.node_dir, "grpc_raw.mjs"), "--target",
               "127.0.0.1:%d" % port, "--cases", cases, "--out", out]
        print("$ " + " ".join(cmd), flush=True)
        try:
            res = subprocess.run(cmd, cwd=args.node_dir, capture_output=True, text=True,
                                 timeout=NODE_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            router.dump()
            otel.fail("grpc_raw.mjs did not finish within %.0f s" % NODE_TIMEOUT)
        sys.stdout.write(res.stdout)
        if res.returncode != 0:
            sys.stderr.write(res.stderr[-4000:])
            router.dump()
            otel.fail("grpc_raw.mjs exited %d" % res.returncode)
        with open(out) as f:
            got = {r["name"]: r for r in json.load(f)}

        def expect(name, code, message_part=""):
            r = got.get(name, {})
            check(r.get("code") == code and message_part in r.get("details", ""),
                  "%s: code %s %r (want %d, message with %r)" %
                  (name, r.get("code"), r.get("details"), code, message_part))
            return r

        expect("ok", OK)
        expect("gzip", OK)
        expect("bad message", INVALID_ARGUMENT, "unmarshalling")
        expect("unknown method", UNIMPLEMENTED, "unknown method Nope")
        expect("unknown service", UNIMPLEMENTED, "unknown service foo.Bar")
        expect("no metrics pipeline", UNIMPLEMENTED, "unknown service")
        expect("too large", RESOURCE_EXHAUSTED, "larger than max")
        expect("too large gzip", RESOURCE_EXHAUSTED, "larger than max")
        expect("invalid utf-8", INVALID_ARGUMENT,
               "invalid UTF-8 in string field opentelemetry.proto.trace.v1.Span.name")
        expect("too many items", RESOURCE_EXHAUSTED,
               "1001 items in one request, over max_items_per_request (1000)")
        full = expect("queue full", RESOURCE_EXHAUSTED, "queue is full")
        details = full.get("metadata", {}).get("grpc-status-details-bin", "")
        code, delay = retry_delay(details) if details else (None, None)
        check(code == RESOURCE_EXHAUSTED and delay == 1.0,
              "queue full: grpc-status-details-bin is a Status (code %s) with RetryInfo "
              "retry_delay %s s (want 8, 1 s) after %s calls" % (code, delay, full.get("calls")))
        printed = router.wait_output(
            "the raw spans in the debug output",
            lambda ls: all(any("Name           : grpc-raw-%s" % n in l for l in ls)
                           for n in ("plain", "gzip")), 20.0)
        check(printed is not None, "the plain and gzip-compressed spans were printed")
        rc = router.stop()
        check(rc == 0, "switchyard exited %s after SIGTERM (want 0)" % rc)
        if check.failures:
            router.dump(120)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for k in ("bin", "plugin-dir", "kit-dir", "src-dir", "node-dir"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    args = ap.parse_args()
    for k in ("bin", "plugin_dir", "kit_dir", "src_dir", "node_dir"):
        setattr(args, k, os.path.abspath(getattr(args, k)))
    args.protocol = "grpc"

    # 1. The SDK's gRPC exporters, compared field by field (fails the run itself).
    otel.CONFIG = SDK_CONFIG
    otel.run(args)

    # 2. Raw calls (run() copied the .mjs scripts into the node dir).
    check = Checks()
    run_raw(args, check)
    if check.failures:
        otel.fail("%d gRPC check(s) failed: %s" % (len(check.failures),
                                                   "; ".join(check.failures)))
    print("otlp grpc: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
