#!/usr/bin/env python3
"""The otlp receiver's queue_wait: a request that finds its pipeline's queue full
waits for room instead of being refused at once (plugins/common/emit_wait.c).

Cases (--case):
  http, grpc  a slow exporter (the test-only testsink, 2 ms a batch) behind a
              burst of bench/loadgen requests that fills the queues many times
              over, queue_wait 10s: every request is accepted (none refused),
              the receiver_otlp_queue_waits counter says requests waited, and the
              sink gets every span (its item count equals the spans acknowledged).
  expire      the same with an exporter that holds each batch 3 s and
              queue_wait 100ms: once the queues are full a request is told to
              retry (429) after about queue_wait, not before 80 ms and not after
              2 s; receiver_otlp_queue_wait_expired counts it; every accepted span
              is delivered.
  limiter     a memory_limiter that refuses everything (limit_mib: 1) with
              queue_wait 10s: requests are refused at once (429 within 1 s), never
              held: a limiter's refusal is not a full queue.
  off         queue_wait 0s: with the queues full a request is refused at once.
  zipkin      the zipkin receiver's queue_wait: 600 Zipkin v2 JSON requests one after
              the other into the 2 ms exporter: every one answered 202, some held
              (receiver_zipkin_queue_waits), every span at the sink.
  jaeger_http the same through the jaeger receiver's thrift_http (Thrift binary
              Batch bodies): every one 202, some held, every span at the sink.

    test_queue_wait.py --case http --bin build/bin/switchyard --loadgen build/bin/loadgen \
        --plugin-dir build/lib/switchyard/plugins --kit-dir build/tests/plugins
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time

from harness import Router, free_port, http

SPANS = 5


def metrics_text(mport):
    _, _, text = http("GET", "http://127.0.0.1:%d/metrics" % mport)
    return text.decode()


def metric(text, name):
    """The sum of every series of switchyard_<name> (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith("switchyard_" + name + "{") or line.startswith("switchyard_" + name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def config(port, gport, mport, report, delay, wait, limiter=False):
    proc = "      processors: [memory_limiter]\n" if limiter else ""
    procs = ("processors:\n  memory_limiter: {check_interval: 10ms, limit_mib: 1}\n"
             if limiter else "")
    return f"""
receivers:
  otlp:
    queue_wait: {wait}
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
      grpc:
        endpoint: 127.0.0.1:{gport}
{procs}exporters:
  testsink:
    delay: {delay}
    report_path: {report}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp]
{proc}      exporters: [testsink]
"""


def loadgen(args, url, protocol, requests, connections):
    cmd = [args.loadgen, "--url", url, "--protocol", protocol, "--connections",
           str(connections), "--requests", str(requests), "--spans-per-request", str(SPANS),
           "--attrs", "2", "--out", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError("loadgen failed (%d): %s" % (out.returncode, out.stderr[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def sink_items(report):
    with open(report) as f:
        fields = dict(kv.split("=") for kv in f.read().split())
    os.unlink(report)
    return int(fields["items"])


def span_body(seq):
    span = {"traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "%016x" % (seq + 1),
            "name": "qw-%d" % seq, "kind": 1,
            "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000000001000"}
    return json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).encode()


# The burst and sequential cases shrink the core's queue budget (a pipeline queue
# may hold a quarter of it in bytes) so that the queues fill after a few requests
# however slowly a sanitizer build reads them; the refusal cases fill them with a
# stuck exporter instead.
SMALL_BUDGET = "64KiB"


def small_budget_router(args, cfg):
    os.environ["SWITCHYARD_QUEUE_BUDGET"] = SMALL_BUDGET
    try:
        return Router(args.bin, [args.kit_dir, args.plugin_dir], cfg)
    finally:
        del os.environ["SWITCHYARD_QUEUE_BUDGET"]


def run_burst(args, protocol):
    """A burst many times the queues' room, into an exporter that drains slowly."""
    port, gport, mport = free_port(), free_port(), free_port()
    report = "/tmp/sy-qw-%s.%d" % (protocol, os.getpid())
    router = small_budget_router(args, config(port, gport, mport, report, "2ms", "10s"))
    try:
        url = ("http://127.0.0.1:%d/v1/traces" % port if protocol == "http"
               else "http://127.0.0.1:%d" % gport)
        res = loadgen(args, url, protocol, 900, 4)
        print("loadgen:", res)
        text = metrics_text(mport)
        waits = metric(text, "receiver_otlp_queue_waits_total")
        expired = metric(text, "receiver_otlp_queue_wait_expired_total")
        refused_spans = metric(text, "receiver_refused_spans_total")
        print("queue_waits=%d expired=%d refused_spans=%d" % (waits, expired, refused_spans))
        rc = router.stop(timeout=60)
    finally:
        router.kill()
    assert rc == 0, "router exit code %s:\n%s" % (rc, router.output()[-3000:])
    ok = int(res["accepted"])
    refused = int(res["refused"]) + int(res["failed"]) + int(res["errors"])
    assert refused == 0, "requests refused although queue_wait is 10s: %s" % res
    assert ok == 900, "not every request was acknowledged: %s" % res
    assert waits > 0, "no request waited: the burst never filled the queues"
    assert expired == 0, "a request waited past 10s"
    # A request held and then taken was never refused: the emits tried while it
    # waited are not counted as refused spans.
    assert refused_spans == 0, "%d spans counted as refused, none was" % refused_spans
    items = sink_items(report)
    assert items == ok * SPANS, "acknowledged %d spans, the sink got %d" % (ok * SPANS, items)
    print("ok: %s burst of 900 requests, %d held for room, none refused, all delivered"
          % (protocol, waits))


def run_refusal(args, case):
    """Queues full (a stuck exporter) or a limiter refusing: how fast the refusal comes."""
    port, gport, mport = free_port(), free_port(), free_port()
    report = "/tmp/sy-qw-%s.%d" % (case, os.getpid())
    wait = {"expire": "100ms", "limiter": "10s", "off": "0s"}[case]
    router = Router(args.bin, [args.kit_dir, args.plugin_dir],
                    config(port, gport, mport, report, "3s", wait, limiter=(case == "limiter")))
    url = "http://127.0.0.1:%d/v1/traces" % port
    accepted, refusals = 0, []
    try:
        seq = 0
        deadline = time.monotonic() + 60
        while len(refusals) < 5 and time.monotonic() < deadline:
            t0 = time.monotonic()
            status, headers, _ = http("POST", url, span_body(seq),
                                      {"Content-Type": "application/json"}, timeout=10)
            took = time.monotonic() - t0
            seq += 1
            if status == 200:
                accepted += 1
            elif status == 429:
                assert headers.get("Retry-After"), "429 without Retry-After"
                refusals.append(took)
            else:
                raise AssertionError("unexpected status %d" % status)
        text = metrics_text(mport)
        waits = metric(text, "receiver_otlp_queue_waits_total")
        expired = metric(text, "receiver_otlp_queue_wait_expired_total")
        refused_spans = metric(text, "receiver_refused_spans_total")
        print("accepted=%d refusals=%s waits=%d expired=%d refused_spans=%d"
              % (accepted, ["%.3f" % t for t in refusals], waits, expired, refused_spans))
        # Kill: the 3 s exporter would take minutes to drain what it holds.
    finally:
        router.kill()
    assert len(refusals) == 5, "the queues never filled"
    # Each 429 counts its one span once, however often it was emitted while it
    # waited (expire: every millisecond for 100 ms).
    assert refused_spans == len(refusals), \
        "%d requests of one span refused, %d spans counted" % (len(refusals), refused_spans)
    if case == "expire":
        assert all(0.08 <= t <= 2.0 for t in refusals), \
            "a 429 came before queue_wait (100ms) or long after it: %s" % refusals
        assert expired >= 5 and waits >= 5, "the waits were not counted"
    else:
        assert all(t < 1.0 for t in refusals), "a refusal was held: %s" % refusals
        assert waits == 0, "%s: a request was held (%d)" % (case, waits)
        if case == "limiter":
            assert accepted == 0, "the limiter let %d requests through" % accepted
    print("ok: %s: refused %d requests in %.3f-%.3f s" % (case, len(refusals), min(refusals),
                                                           max(refusals)))


def thrift_batch(seq):
    """A jaeger.thrift Batch of one span, in the Thrift binary protocol."""
    def fld(ftype, fid, payload):
        return bytes([ftype]) + struct.pack(">h", fid) + payload

    def tstr(text):
        return struct.pack(">i", len(text)) + text.encode()

    i64 = lambda v: struct.pack(">q", v)  # noqa: E731
    span = (fld(10, 1, i64(seq + 1)) + fld(10, 2, i64(0)) + fld(10, 3, i64(seq + 1)) +
            fld(10, 4, i64(0)) + fld(11, 5, tstr("qw")) + fld(8, 7, struct.pack(">i", 1)) +
            fld(10, 8, i64(1700000000000000)) + fld(10, 9, i64(10)) + b"\x00")
    process = fld(11, 1, tstr("qw")) + b"\x00"
    return (fld(12, 1, process) + fld(15, 2, bytes([12]) + struct.pack(">i", 1) + span) +
            b"\x00")


def zipkin_body(seq):
    return json.dumps([{"traceId": "%032x" % (seq + 1), "id": "%016x" % (seq + 1),
                        "name": "qw", "timestamp": 1700000000000000, "duration": 10,
                        "localEndpoint": {"serviceName": "qw"}}]).encode()


def run_sequential(args, case):
    """600 requests one after the other into the 2 ms exporter, queue_wait 10s."""
    port, mport = free_port(), free_port()
    report = "/tmp/sy-qw-%s.%d" % (case, os.getpid())
    if case == "zipkin":
        receiver = f"  zipkin:\n    endpoint: 127.0.0.1:{port}\n    queue_wait: 10s\n"
        url, ctype, body = "http://127.0.0.1:%d/api/v2/spans" % port, "application/json", zipkin_body
        counter, ok_status = "receiver_zipkin_queue_waits_total", 202
        rid = "zipkin"
    else:
        receiver = (f"  jaeger:\n    queue_wait: 10s\n    protocols:\n      thrift_http:\n"
                    f"        endpoint: 127.0.0.1:{port}\n")
        url, ctype, body = "http://127.0.0.1:%d/api/traces" % port, "application/x-thrift", thrift_batch
        counter, ok_status = "receiver_jaeger_thrift_http_queue_waits_total", 202
        rid = "jaeger"
    cfg = f"""
receivers:
{receiver}exporters:
  testsink:
    delay: 2ms
    report_path: {report}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [{rid}]
      exporters: [testsink]
"""
    router = small_budget_router(args, cfg)
    statuses = {}
    try:
        for seq in range(600):
            status, _, _ = http("POST", url, body(seq), {"Content-Type": ctype}, timeout=15)
            statuses[status] = statuses.get(status, 0) + 1
        waits = metric(metrics_text(mport), counter)
        print("statuses=%s waits=%d" % (statuses, waits))
        rc = router.stop(timeout=60)
    finally:
        router.kill()
    assert rc == 0, "router exit code %s" % rc
    assert statuses == {ok_status: 600}, "not every request was answered %d: %s" % (ok_status,
                                                                                    statuses)
    assert waits > 0, "no request waited: the queues never filled"
    items = sink_items(report)
    assert items == 600, "600 spans acknowledged, the sink got %d" % items
    print("ok: %s: 600 requests, %d held for room, all answered %d and delivered"
          % (case, waits, ok_status))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True, choices=["http", "grpc", "expire", "limiter", "off", "zipkin",
                                                  "jaeger_http"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir", required=True)
    args = ap.parse_args()
    if args.case in ("http", "grpc"):
        run_burst(args, args.case)
    elif args.case in ("zipkin", "jaeger_http"):
        run_sequential(args, args.case)
    else:
        run_refusal(args, args.case)


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
