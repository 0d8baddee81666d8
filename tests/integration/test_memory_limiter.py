#!/usr/bin/env python3
"""memory_limiter under overload: RSS stays under the limit, nothing acknowledged is lost.

Four clients post OTLP/HTTP protobuf requests (256 spans of 10 string attributes
each, ~330 KB) as fast as the router takes them, to a pipeline whose exporter is
slow (testsink, 20 ms per batch). Every span's id is a sequence number, so the
sink can tell exactly which spans arrived. A client retries a refused request
(429) after 20 ms, and counts a span as acknowledged only on a 200.

Run twice, in one process of this test:
- with a generous limit (none in effect): the idle RSS and the peak are recorded,
  to show that the limit below is one the load would otherwise pass;
- with limit_mib L = idle RSS + 48 MiB (so that sanitizer builds, which map more,
  get the same headroom): the RSS of the router, sampled every 10 ms, never exceeds L,
  some requests were refused (the limiter engaged), and after a SIGTERM the sink
  holds every acknowledged span exactly once.
"""
import argparse
import os
import sys
import threading
import time
import urllib.error
import urllib.request

from harness import Checks, Router, field_len, field_fixed64, free_port

SPANS = 256
ATTRS = 10
CLIENTS = 4
SECONDS = 5.0
LIMIT_MIB = 48
SPIKE_MIB = 16


def _span_template():
    """One span's bytes, split around its 8-byte span id (the sequence number), so
    that a request is a join of byte strings: Python builds them fast enough to
    outrun the slow sink."""
    attrs = b"".join(
        field_len(9, field_len(1, f"attribute.key.{a}".encode())
                  + field_len(2, field_len(1, (f"value-{a}-" + "x" * 100).encode())))
        for a in range(ATTRS))
    marker = b"\xAA" * 8
    span = (field_len(1, bytes(15) + b"\x01")      # trace_id
            + field_len(2, marker)                # span_id: the sequence number
            + field_len(5, b"span")               # name
            + field_fixed64(7, 1700000000000000000)
            + field_fixed64(8, 1700000001000000000)
            + attrs)
    span = field_len(2, span)                     # ScopeSpans.spans
    i = span.index(marker)
    return span[:i], span[i + 8:]


SPAN_HEAD, SPAN_TAIL = _span_template()


def request_body(first_seq):
    spans = b"".join(SPAN_HEAD + (first_seq + i).to_bytes(8, "big") + SPAN_TAIL
                     for i in range(SPANS))
    return field_len(1, field_len(2, spans))      # ResourceSpans { ScopeSpans }


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(args, limit_mib, spike_mib, max_seq, report):
    port = free_port()
    cfg = f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  memory_limiter:
    check_interval: 10ms
    limit_mib: {limit_mib}
    spike_limit_mib: {spike_mib}
exporters:
  testsink: {{verify: true, max_seq: {max_seq}, delay: 20ms, report_path: {report}}}
service:
  telemetry:
    logs: {{level: info}}
    metrics: {{address: 127.0.0.1:{free_port()}}}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter]
      exporters: [testsink]
"""
    acked = [0] * CLIENTS
    refused = [0] * CLIENTS
    peak = [0]
    stop = threading.Event()
    url = f"http://127.0.0.1:{port}/v1/traces"
    per_client = max_seq // CLIENTS

    with Router(args.bin, [args.plugin_dir, args.kit_dir], cfg,
                extra_args=["--shutdown-timeout", "60s"]) as r:
        pid = r.proc.pid
        time.sleep(0.2)
        idle = rss_kb(pid)

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(pid))
                time.sleep(0.01)

        def client(c):
            seq = c * per_client
            end = time.monotonic() + SECONDS
            while time.monotonic() < end and seq + SPANS <= (c + 1) * per_client:
                body = request_body(seq)
                req = urllib.request.Request(url, data=body, method="POST", headers={
                    "Content-Type": "application/x-protobuf"})
                try:
                    with urllib.request.urlopen(req, timeout=10) as resp:
                        resp.read()
                        ok = resp.status == 200
                except urllib.error.HTTPError as e:
                    e.read()
                    ok = False
                    if e.code != 429:
                        raise
                if ok:
                    acked[c] += SPANS
                    seq += SPANS
                else:
                    refused[c] += 1
                    time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(SECONDS + 30)
        stop.set()
        sampler.join()
        rc = r.stop(timeout=70)
        log = r.output()
    with open(report) as f:
        fields = dict(kv.split("=") for kv in f.readline().split())
    os.unlink(report)
    return {"acked": sum(acked), "refused": sum(refused), "peak_kb": peak[0], "rc": rc,
            "fields": fields, "log": log, "idle_kb": idle}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir", required=True)
    args = ap.parse_args()
    check = Checks()
    max_seq = 4_000_000
    tmp = f"/tmp/sy_ml_report.{os.getpid()}"

    # Sanitizer builds map far more memory than a release build: the limit is set
    # relative to the router's idle RSS, and ASan's quarantine of freed memory is
    # turned off so that freed batches are returned as they are in a release build.
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0"
    # The core's own queue budget (16 MiB of queued batches by default) would keep
    # the RSS under the limit without the limiter: off, so that the limiter is
    # what is tested.
    os.environ["SWITCHYARD_QUEUE_BUDGET"] = "0"
    free = run(args, 1000000, 0, max_seq, tmp)
    limit = free["idle_kb"] // 1024 + LIMIT_MIB
    print(f"no limit in effect: idle RSS {free['idle_kb'] // 1024} MiB, peak "
          f"{free['peak_kb'] // 1024} MiB, {free['acked']} spans acknowledged")
    check(free["peak_kb"] > limit * 1024,
          f"without the limiter the load takes the router above {limit} MiB "
          f"(peak {free['peak_kb'] // 1024} MiB)")

    res = run(args, limit, SPIKE_MIB, max_seq, tmp)
    f = res["fields"]
    print(f"limit_mib {limit}: peak RSS {res['peak_kb'] // 1024} MiB, {res['acked']} spans "
          f"acknowledged, {res['refused']} refusals, sink {f}")
    check(res["rc"] == 0, f"exit code {res['rc']}")
    check(res["refused"] > 0, f"the limiter refused requests ({res['refused']} refusals)")
    check("Memory usage is above soft limit. Refusing data." in res["log"],
          "the limiter logged that it refuses data")
    check(res["peak_kb"] <= limit * 1024,
          f"RSS stayed under limit_mib {limit} (peak {res['peak_kb'] / 1024:.1f} MiB)")
    check(int(f["distinct"]) == res["acked"] and int(f["items"]) == res["acked"],
          f"the sink got every acknowledged span ({f['distinct']} distinct, {f['items']} items, "
          f"{res['acked']} acknowledged)")
    check(int(f["duplicates"]) == 0 and int(f["out_of_range"]) == 0, "no duplicates")
    if check.failures:
        print(f"{len(check.failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
