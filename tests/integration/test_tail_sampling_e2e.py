#!/usr/bin/env python3
"""integration.tail_sampling_e2e: the OpenTelemetry JS SDK -> otlp -> tail_sampling
(status_code ERROR + latency 1000 ms + probabilistic 10 %) -> otlphttp exporter ->
a second router (otlp -> file): the sink's file is checked against the SDK's
manifest.

  - every error trace is kept, whole;
  - every slow trace is kept, whole;
  - of the other traces, the share kept is within a tolerance of 10 % computed
    from the binomial distribution for their number (4.5 standard deviations,
    a false alarm about once in 300 000 runs), and, since the SDK's IDs come from a
    seeded generator, exactly the traces whose FNV-1a hash the collector keeps;
  - no trace is kept in part, and no span appears twice.

    test_tail_sampling_e2e.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins \
        --src-dir tests/integration/node --node-dir build/otel-js-node
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, Router, free_port, wait_for  # noqa: E402
from test_tail_sampling import prob_keeps_id  # noqa: E402

check = Checks()
NODE_TIMEOUT = 120.0
N_ERR, N_SLOW, N_NORMAL = 40, 40, 1500
PCT = 10.0


def config_a(port, b_port):
    return """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  tail_sampling:
    decision_wait: 3s
    num_traces: 50000
    policies:
      - name: errors
        type: status_code
        status_code: {status_codes: [ERROR]}
      - name: slow
        type: latency
        latency: {threshold_ms: 1000}
      - name: ten-percent
        type: probabilistic
        probabilistic: {sampling_percentage: %s}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:%d
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {receivers: [otlp], processors: [tail_sampling], exporters: [otlphttp]}
""" % (port, PCT, b_port)


def config_b(port, path):
    return """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
exporters:
  file:
    path: %s
    flush_interval: 50ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces: {receivers: [otlp], exporters: [file]}
""" % (port, path)


def read_file(path):
    """trace id -> list of span ids, in file order."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            for rs in json.loads(line).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for sp in ss.get("spans", []):
                        out.setdefault(sp["traceId"], []).append(sp["spanId"])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--src-dir", required=True)
    ap.add_argument("--node-dir", required=True)
    args = ap.parse_args()
    node_dir = os.path.abspath(args.node_dir)
    if not os.path.isdir(os.path.join(node_dir, "node_modules")):
        print("FAIL: no node_modules in %s (the node_setup fixture installs it)" % node_dir)
        return 1
    tmp = tempfile.mkdtemp(prefix="sy-ts-e2e-")
    sink = os.path.join(tmp, "sink.json")
    manifest_path = os.path.join(tmp, "manifest.json")
    a_port, b_port = free_port(), free_port()
    with Router(args.bin, [args.plugin_dir], config_b(b_port, sink)) as b, \
            Router(args.bin, [args.plugin_dir], config_a(a_port, b_port)) as a:
        script = os.path.join(node_dir, "tailsample.mjs")
        shutil.copyfile(os.path.join(os.path.abspath(args.src_dir), "tailsample.mjs"), script)
        t0 = time.monotonic()
        try:
            out = subprocess.run(
                ["node", script, "--endpoint", "http://127.0.0.1:%d" % a_port, "--seed", "20261206",
                 "--errors", str(N_ERR), "--slow", str(N_SLOW), "--normal", str(N_NORMAL),
                 "--manifest", manifest_path],
                capture_output=True, text=True, timeout=NODE_TIMEOUT, cwd=node_dir,
                stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            check(False, "tailsample.mjs finished within %.0f s" % NODE_TIMEOUT)
            return 1
        print(out.stdout[-2000:])
        sys.stderr.write(out.stderr[-4000:])
        if not check(out.returncode == 0, "the SDK exported every span (exit %d)" % out.returncode):
            return 1
        print("SDK done in %.1f s" % (time.monotonic() - t0))
        with open(manifest_path) as f:
            traces = json.load(f)["traces"]
        expect_kept = {t for t, v in traces.items()
                       if v["kind"] in ("error", "slow") or prob_keeps_id("default-hash-seed", PCT, t)}
        expect_spans = sum(len(traces[t]["spans"]) for t in expect_kept)
        # Decisions come 3-4 s after the spans; then the exporter and the sink.
        wait_for("the kept spans at the sink",
                 lambda: sum(len(v) for v in read_file(sink).values()) >= expect_spans, 30)
        time.sleep(1.5)  # anything extra (a wrong trace, a duplicate) would arrive by now
        got = read_file(sink)
        check(a.terminate() == 0, "router A exits 0")
        check(b.terminate() == 0, "router B exits 0")

    unknown = [t for t in got if t not in traces]
    check(not unknown, "every trace at the sink was sent (unknown: %d)" % len(unknown))
    partial = [t for t, s in got.items() if t in traces and sorted(s) != sorted(traces[t]["spans"])]
    check(not partial, "no trace kept in part or duplicated (%d bad)" % len(partial))
    for kind, n in (("error", N_ERR), ("slow", N_SLOW)):
        ids = [t for t, v in traces.items() if v["kind"] == kind]
        kept = [t for t in ids if t in got]
        check(len(ids) == n and len(kept) == n, "%s traces: %d of %d kept whole" % (
            kind, len(kept), n))
    normal = [t for t, v in traces.items() if v["kind"] == "normal"]
    kept = [t for t in normal if t in got]
    n, p = len(normal), PCT / 100
    sd = math.sqrt(n * p * (1 - p))
    lo, hi = n * p - 4.5 * sd, n * p + 4.5 * sd
    check(lo <= len(kept) <= hi, "normal traces: %d of %d kept, within [%.0f, %.0f] (10 %% +- 4.5 sd)"
          % (len(kept), n, lo, hi))
    check(set(kept) == {t for t in normal if prob_keeps_id("default-hash-seed", PCT, t)},
          "normal traces: exactly those the collector's hash keeps")
    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
