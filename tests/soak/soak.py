#!/usr/bin/env python3
"""Soak (issue 15 item 2): twice the router's capacity offered for --duration
seconds (default 600) by bench/loadgen (open loop, numbered spans) and the
OpenTelemetry JS SDK (exporter-trace-otlp-proto, tests/integration/node/
reload_load.mjs), with a memory_limiter set.

  otlp receiver (OTLP/HTTP) -> memory_limiter (limit_mib) -> batch -> otlphttp
  (protobuf) -> the counting sink of seq_sink.py (which, in Python, is the slowest
  part: "capacity" here is what this bed delivers end to end)

1. Calibration: loadgen in closed loop for a few seconds; the capacity is the
   rate the sink received spans at (what the bed sustains end to end).
2. Soak: loadgen at 2 x capacity (less what the JS clients add), open loop, plus
   two JS SDK clients sending as fast as they are answered. The router's RSS is
   sampled every second (/proc/<pid>/status VmRSS), the refusals are counted
   (loadgen's 429/503 answers, the receiver's refused_spans).
3. Drain, then per client: every acknowledged span at the sink exactly once
   (span IDs carry client, request number and index; JS spans are named
   <prefix>-<n>), nothing at the sink that was not sent; spans not acknowledged
   that arrived anyway are reported (a timed-out JS export may still land).

Checks: 0 lost, 0 duplicated, 0 never sent, the clients were told to retry,
peak RSS < limit_mib.

  soak.py --bin B --plugin-dir D --loadgen L --node-dir N --src-dir S [--duration 600]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from harness import Router, free_port  # noqa: E402
from seq_sink import SeqSink, check_items, check_loadgen, merge  # noqa: E402
from test_memory_limiter import rss_kb  # noqa: E402
from test_persistent_queue import sample, scrape  # noqa: E402

SPR = 50  # spans per loadgen request
JS_BATCH = 50


def config(port, mport, sink_port, limit_mib):
    return f"""receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  memory_limiter:
    check_interval: 100ms
    limit_mib: {limit_mib}
    spike_limit_mib: {max(8, limit_mib // 4)}
  batch:
    send_batch_size: 2000
    timeout: 100ms
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sink_port}
    compression: none
    timeout: 10s
    sending_queue:
      num_consumers: 4
      queue_size: 200
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 1s
      max_elapsed_time: 0s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp]
"""


ASAN_LIMIT_FACTOR = 3


def sanitized(binary):
    """True when the binary is built with AddressSanitizer."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()


def loadgen(a, port, tmp, client, extra):
    log = os.path.join(tmp, f"acks-{client}.log")
    p = subprocess.Popen(
        [a.loadgen, "--url", f"http://127.0.0.1:{port}/v1/traces", "--spans-per-request",
         str(SPR), "--attrs", "4", "--sequence", str(client), "--ack-log", log, "--out", "json",
         *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p, log


def loadgen_result(p, timeout):
    so, se = p.communicate(timeout=timeout)
    try:
        return json.loads(so.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"loadgen printed no summary: {so!r} {se!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--node-dir", required=True)
    ap.add_argument("--src-dir", required=True, help="tests/integration/node")
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--calibrate", type=float, default=0.0,
                    help="seconds of calibration (default: 10, 4 under 60 s of soak)")
    ap.add_argument("--limit-mib", type=int, default=96)
    ap.add_argument("--js-clients", type=int, default=2)
    a = ap.parse_args()
    calib = a.calibrate or (4.0 if a.duration < 60 else 10.0)
    asan = sanitized(a.bin)
    if asan:
        # AddressSanitizer keeps freed memory in quarantine (256 MiB by default) and
        # its allocator returns little to the system: the RSS would then measure
        # ASan, not the router. Keep the quarantine small and release freed pages.
        os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [
            os.environ.get("ASAN_OPTIONS", ""), "quarantine_size_mb=4",
            "thread_local_quarantine_size_kb=64", "allocator_release_to_os_interval_ms=100"]))
        a.limit_mib *= ASAN_LIMIT_FACTOR
        print(f"sanitizer build: ASAN_OPTIONS={os.environ['ASAN_OPTIONS']}, limit_mib "
              f"{a.limit_mib} ({ASAN_LIMIT_FACTOR} x, for the shadow memory)")
    if not os.path.isdir(os.path.join(a.node_dir, "node_modules", "@opentelemetry",
                                      "exporter-trace-otlp-proto")):
        print(f"FAIL {a.node_dir}/node_modules is missing: integration.node_setup (npm ci) "
              f"did not run or failed", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="sy-soak-")
    port, mport = free_port(), free_port()
    sink = SeqSink(SPR)
    router = None
    procs = []
    t_start = time.monotonic()
    try:
        router = Router(a.bin, [a.plugin_dir], config(port, mport, sink.port, a.limit_mib))
        pid = router.proc.pid
        idle_rss = rss_kb(pid)

        # 1. Calibration: closed loop, 4 connections.
        before = sink.total()
        p, cal_log = loadgen(a, port, tmp, 1, ["--connections", "4", "--duration", str(calib)])
        t0 = time.monotonic()
        cal = loadgen_result(p, calib + 60)
        cal_secs = time.monotonic() - t0
        delivered = sink.total() - before
        capacity = delivered / cal_secs
        print(f"calibration: {calib:.0f} s closed loop: loadgen accepted "
              f"{cal['accepted_spans'] / cal['seconds']:.0f} spans/s, the sink got "
              f"{capacity:.0f} spans/s (the capacity of this bed)", flush=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and check_loadgen(sink, 1, cal_log)["lost"]:
            time.sleep(0.2)

        # 2. Soak: 2 x capacity.
        offered = 2 * capacity
        script = os.path.join(os.path.abspath(a.node_dir), "reload_load.mjs")
        shutil.copyfile(os.path.join(a.src_dir, "reload_load.mjs"), script)
        js = []
        for k in range(a.js_clients):
            out = os.path.join(tmp, f"js{k}.json")
            js.append((f"soakjs{k}", out, subprocess.Popen(
                ["node", script, "--endpoint", f"http://127.0.0.1:{port}", "--protocol", "http",
                 "--prefix", f"soakjs{k}", "--seconds", str(a.duration), "--batch",
                 str(JS_BATCH), "--out", out], cwd=a.node_dir, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True)))
        rate = max(1.0, offered / SPR)
        lg, soak_log = loadgen(a, port, tmp, 2, ["--connections", "8", "--rate", f"{rate:.1f}",
                                                 "--duration", str(a.duration)])
        procs = [p for _, _, p in js] + [lg]
        print(f"soak: {a.duration:.0f} s, offering {offered:.0f} spans/s "
              f"({rate:.1f} requests/s of {SPR} spans from loadgen, plus {a.js_clients} JS SDK "
              f"clients), memory_limiter limit_mib {a.limit_mib}", flush=True)
        t0 = time.monotonic()
        peak_rss, samples, last_print = 0, [], t0
        while lg.poll() is None and time.monotonic() - t0 < a.duration + 60:
            r = rss_kb(pid)
            samples.append(r)
            peak_rss = max(peak_rss, r)
            if router.proc.poll() is not None:
                raise AssertionError(f"the router exited with {router.proc.returncode}")
            if time.monotonic() - last_print >= 60:
                last_print = time.monotonic()
                print(f"  t={last_print - t0:.0f}s rss={r / 1024:.1f} MiB peak="
                      f"{peak_rss / 1024:.1f} MiB at_sink={sink.total()}", flush=True)
            time.sleep(1.0)
        res = loadgen_result(lg, 60)
        js_res = []
        for prefix, out, p in js:
            try:
                p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                p.communicate()
            with open(out) as f:
                js_res.append((prefix, json.load(f)))
        text = scrape(mport)
        refused_spans = sample(text, "switchyard_receiver_refused_spans_total") or 0
        above_soft = sample(text, "switchyard_memory_limiter_checks_above_soft_limit_total") or 0

        # 3. Drain and check.
        def figures():
            rs = [check_loadgen(sink, 1, cal_log), check_loadgen(sink, 2, soak_log)]
            for prefix, doc in js_res:
                idx = lambda names: [int(n.rsplit("-", 1)[1]) for n in names]  # noqa: E731
                with sink.lock:
                    rs.append(check_items(sink.accepted, prefix, idx(doc["acked"]),
                                          idx(doc["failed"])))
            return merge(rs)
        deadline = time.monotonic() + 120
        f = figures()
        while f["lost"] and time.monotonic() < deadline:
            time.sleep(0.5)
            f = figures()
        time.sleep(1.0)
        f = figures()
        rss_after = rss_kb(pid)
        js_acked = sum(len(d["acked"]) for _, d in js_res)
        js_failed = sum(len(d["failed"]) for _, d in js_res)
        js_errors = [e for _, d in js_res for e in d["errors"]][:3]
        print(f"soak result: duration={a.duration:.0f}s capacity={capacity:.0f} spans/s "
              f"offered={offered:.0f} spans/s | loadgen: requests={res['requests']} "
              f"accepted={res['accepted']} refused(429/503)={res['refused']} "
              f"failed={res['failed']} errors={res['errors']} "
              f"accepted_spans/s={res['spans_per_s']:.0f} | JS SDK: acked spans={js_acked} "
              f"failed spans={js_failed} {js_errors} | receiver refused_spans="
              f"{refused_spans:.0f} limiter checks above soft limit={above_soft:.0f} | "
              f"RSS idle={idle_rss / 1024:.1f} MiB peak={peak_rss / 1024:.1f} MiB "
              f"after={rss_after / 1024:.1f} MiB limit={a.limit_mib} MiB | "
              f"acknowledged={f['acked']} lost={f['lost']} duplicated={f['duplicated']} "
              f"never_sent={f['never_sent']} unacked_delivered={f['unacked_delivered']} "
              f"unknown={sink.accepted.unknown} at_sink={sink.total()} | "
              f"total {time.monotonic() - t_start:.0f} s", flush=True)
        bad = []
        for cond, what in (
                (f["acked"] > 0, "spans were acknowledged"),
                (f["lost"] == 0, "every acknowledged span reached the sink (0 lost)"),
                (f["duplicated"] == 0, "none twice (0 duplicated)"),
                (f["never_sent"] == 0 and sink.accepted.unknown == 0,
                 "nothing at the sink that was not sent"),
                (res["refused"] > 0 and refused_spans > 0, "the clients were told to retry"),
                (js_acked > 0, "the JS SDK clients got spans through"),
                (peak_rss < a.limit_mib * 1024, f"peak RSS < limit_mib ({a.limit_mib} MiB)")):
            print(("ok   " if cond else "FAIL ") + what)
            if not cond:
                bad.append(what)
        rc = router.stop()
        if rc != 0:
            bad.append(f"router exit {rc}")
            router.dump()
        return 1 if bad else 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if router:
            router.cleanup()
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
