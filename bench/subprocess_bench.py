#!/usr/bin/env python3
"""Spans per second through one processor in the router, in process (`nop`) and out
of process (`subprocess` with switchyard-plugin-host running `nop`, or with the
Python test child echoing each request): testgen as fast as the pipeline takes it
-> processor -> testsink. Wall time from the router's start until testsink counted
every span (startup included), so short runs understate the steady rate.

    bench/subprocess_bench.py --build build [--batches 5000] [--spans 100] [--runs 3]
"""
import argparse
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import Router, free_port, http  # noqa: E402

CHILD = os.path.join(HERE, "..", "tests", "integration", "subprocess_child.py")


def processor(kind, build):
    if kind == "nop":
        return "  nop:", "nop"
    cmd = {"host": f"[{build}/bin/switchyard-plugin-host, processor, nop]",
           "python": f"[python3, {CHILD}]"}[kind]
    return f"  subprocess:\n    command: {cmd}\n    max_in_flight: 16", "subprocess"


def run(kind, build, batches, spans):
    pc, name = processor(kind, build)
    port = free_port()
    text = f"""
receivers:
  testgen: {{count: {batches}, spans: {spans}}}
processors:
{pc}
exporters:
  testsink:
service:
  telemetry: {{metrics: {{address: 127.0.0.1:{port}}}}}
  pipelines:
    traces: {{receivers: [testgen], processors: [{name}], exporters: [testsink]}}
"""
    total = batches * spans
    t0 = time.monotonic()
    with Router(f"{build}/bin/switchyard",
                [f"{build}/lib/switchyard/plugins", f"{build}/tests/plugins"], text) as r:
        while True:
            body = http("GET", f"http://127.0.0.1:{port}/metrics")[2]
            m = re.search(rb"switchyard_exporter_sent_spans_total\{[^}]*\} (\S+)", body)
            if m and float(m.group(1)) >= total:
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - t0
        r.stop()
    return total / elapsed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--batches", type=int, default=5000)
    ap.add_argument("--spans", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    for kind in ("nop", "host", "python"):
        rates = sorted(run(kind, build, args.batches, args.spans) for _ in range(args.runs))
        print(f"{kind:7s} median {rates[len(rates) // 2] / 1e6:.2f} M spans/s "
              f"(runs: {', '.join('%.2f' % (x / 1e6) for x in rates)})")


if __name__ == "__main__":
    main()
