#!/usr/bin/env python3
"""A full queue pushes back to the client; nothing acknowledged is lost.

OTLP/HTTP in, into a deliberately slow exporter (the test-only `testsink` with a
delay per batch). Requests are sent one after another until the router answers
429 with Retry-After (the exporter queue and then the pipeline queue are full).
Every request that got 200 must then reach the exporter exactly once: after
SIGTERM the router drains, exits 0, and the sink's report counts each accepted
span once and no refused one.

    test_backpressure.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins \
        --kit-dir build/tests/plugins
"""
import argparse
import json
import os
import sys

from harness import Router, free_port, http

MAX_REQUESTS = 3000


def body(seq):
    span = {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "%016x" % seq,
            "name": "bp-%d" % seq, "kind": 1,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000001000"}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir", required=True)
    args = ap.parse_args()

    port = free_port()
    report = os.path.join(os.environ.get("TMPDIR", "/tmp"), "sy-bp-report.%d" % os.getpid())
    config = f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
  testsink:
    delay: 15ms
    verify: true
    max_seq: {MAX_REQUESTS + 1}
    report_path: {report}
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [testsink]
"""
    router = Router(args.bin, [args.kit_dir, args.plugin_dir], config)
    url = f"http://127.0.0.1:{port}/v1/traces"
    accepted, refused = [], 0
    retry_after = None
    try:
        for seq in range(MAX_REQUESTS):
            status, headers, _ = http("POST", url, body(seq),
                                      {"Content-Type": "application/json"})
            if status == 200:
                accepted.append(seq)
            elif status == 429:
                refused += 1
                retry_after = headers.get("Retry-After")
                if refused >= 3:
                    break
            else:
                raise AssertionError(f"unexpected status {status} for request {seq}")
        print(f"accepted={len(accepted)} refused={refused} retry-after={retry_after}")
        assert refused > 0, "the queues never filled: no 429 was answered"
        assert retry_after is not None and retry_after.strip().isdigit(), \
            f"429 without a Retry-After in seconds: {retry_after!r}"
        rc = router.stop(timeout=60)
    finally:
        router.kill()
    assert rc == 0, f"router exit code {rc}:\n{router.output()[-3000:]}"
    with open(report) as f:
        fields = dict(kv.split("=") for kv in f.read().split())
    os.unlink(report)
    print("sink report:", fields)
    assert int(fields["items"]) == len(accepted), f"accepted {len(accepted)}, delivered {fields}"
    assert int(fields["distinct"]) == len(accepted)
    assert int(fields["duplicates"]) == 0
    print("ok: back-pressure answered 429 with Retry-After; every accepted span delivered once")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
