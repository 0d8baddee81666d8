#!/usr/bin/env python3
"""The memory budget under overload: the shipped gateway config (configs/gateway.yaml:
otlp in -> batch -> otlphttp out, gzip) holds its peak RSS under the documented
budget while a backend is slow or down, tells clients to retry, and loses nothing
it acknowledged.

For each case the real binary runs configs/gateway.yaml (ports from the
environment it reads), bench/loadgen pushes OTLP/HTTP requests (512 spans of 10
attributes, 224 KB, over 4 connections) as fast as the router answers for
--duration seconds, and the router's peak RSS (VmHWM of /proc/PID/status) is read
before it stops. The backend:
  slow  a sink that takes 1 s to answer each request (up from the start);
  down  nothing listens until the load has ended, then the sink comes up;
  fast  a second switchyard (otlp -> nop) (only when asked for: --cases);
  debug configs/default.yaml instead (otlp -> batch -> debug, printing a line a
        batch): what it delivers is what its lines count.
Checked for slow and down: peak RSS <= the budget (64 MiB, the issue's target,
for a release build; a sanitizer build maps more, see --sanitized), loadgen saw
refusals (429/503) and no other errors, and once the sink answers, it receives
every span loadgen had acknowledged (200), no more, no fewer, within a bounded
wait. --json appends one line per case, for docs/benchmarks.md.
"""
import argparse
import gzip
import json
import re
import os
import subprocess
import sys
import threading
import time
import http.server
import urllib.request

from harness import Checks, Router, SinkHTTPServer, free_port, read_varint, wait_for

BUDGET_MIB = 64
CONNECTIONS = 4
DRAIN_TIMEOUT = 120.0


def count_spans(body):
    """Spans in an ExportTraceServiceRequest: resource_spans(1) > scope_spans(2) >
    spans(2), walked by tags and lengths only."""
    def fields(data):
        i = 0
        while i < len(data):
            key, i = read_varint(data, i)
            wt = key & 7
            if wt == 2:
                n, i = read_varint(data, i)
                yield key >> 3, data[i:i + n]
                i += n
            elif wt == 0:
                _, i = read_varint(data, i)
            elif wt == 1:
                i += 8
            elif wt == 5:
                i += 4
            else:
                raise ValueError(f"wire type {wt}")

    spans = 0
    for f1, rs in fields(body):
        if f1 != 1:
            continue
        for f2, ss in fields(rs):
            if f2 != 2:
                continue
            spans += sum(1 for f3, _ in fields(ss) if f3 == 2)
    return spans


class CountingSink:
    """An OTLP/HTTP traces sink that counts spans; each answer takes `delay` s."""

    def __init__(self, port, delay):
        self.port, self.delay = port, delay
        self.lock = threading.Lock()
        self.spans = self.requests = 0
        self.server = None

    def start(self):
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                n = count_spans(body)
                if sink.delay:
                    time.sleep(sink.delay)
                with sink.lock:
                    sink.spans += n
                    sink.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = SinkHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self):
        with self.lock:
            return self.spans

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()


class RouterSink:
    """A second switchyard (otlp -> nop) as a fast backend; counts what it accepted."""

    def __init__(self, args, port):
        self.metrics = free_port()
        cfg = f"""
receivers:
  otlp: {{protocols: {{http: {{endpoint: "127.0.0.1:{port}"}}}}}}
exporters:
  nop:
service:
  telemetry: {{logs: {{level: info}}, metrics: {{address: "127.0.0.1:{self.metrics}"}}}}
  pipelines: {{traces: {{receivers: [otlp], exporters: [nop]}}}}
"""
        self.router = None
        self.args, self.cfg = args, cfg

    def start(self):
        self.router = Router(self.args.bin, [self.args.plugin_dir], self.cfg)

    def delivered(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith("switchyard_receiver_accepted_spans_total"):
                    return int(float(line.split()[-1]))
        return 0

    def stop(self):
        if self.router:
            self.router.stop()
            self.router.cleanup()


class DebugLines:
    """The debug exporter as the backend: the spans its summary lines count."""
    PATTERN = re.compile(r'Traces \{"resource spans": \d+, "spans": (\d+)\}')

    def __init__(self, router_fn):
        self.router_fn = router_fn

    def start(self):
        pass

    def delivered(self):
        return sum(int(m) for m in self.PATTERN.findall(self.router_fn().output()))

    def stop(self):
        pass


def proc_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def run_case(args, case, compression):
    http_port, sink_port = free_port(), free_port()
    env = dict(os.environ,
               SY_GATEWAY_HTTP=f"127.0.0.1:{http_port}", SY_GATEWAY_GRPC=f"127.0.0.1:{free_port()}",
               SY_GATEWAY_HEALTH=f"127.0.0.1:{free_port()}",
               SY_GATEWAY_METRICS=f"127.0.0.1:{free_port()}",
               OTLP_BACKEND=f"http://127.0.0.1:{sink_port}",
               SY_GATEWAY_COMPRESSION=compression)
    with open(args.default_config if case == "debug" else args.config) as f:
        cfg = f.read()
    # Retries a few seconds apart rather than the default 5 s to 30 s, so that the
    # sink that comes back is found within the test's bounded wait.
    extra = ["--shutdown-timeout", "30s",
             "--set", "exporters.otlphttp.retry_on_failure.initial_interval=500ms",
             "--set", "exporters.otlphttp.retry_on_failure.max_interval=2s"]
    if case == "debug":  # default.yaml names fixed ports: move them to free ones
        extra = ["--shutdown-timeout", "30s",
                 "--set", f"receivers.otlp.protocols.http.endpoint=127.0.0.1:{http_port}",
                 "--set", f"extensions.health_check.endpoint=127.0.0.1:{free_port()}",
                 "--set", f"service.telemetry.metrics.address=127.0.0.1:{free_port()}"]
    for kv in args.set or []:
        extra += ["--set", kv]
    router = None
    if case == "fast":
        sink = RouterSink(args, sink_port)
    elif case == "debug":
        sink = DebugLines(lambda: router)
    else:
        sink = CountingSink(sink_port, 1.0 if case == "slow" else 0.0)
    if case != "down":
        sink.start()
    old_env = os.environ.copy()
    os.environ.update(env)  # Router passes the environment on to the binary
    try:
        router = Router(args.bin, [args.plugin_dir], cfg, extra_args=extra)
    finally:
        os.environ.clear()
        os.environ.update(old_env)
    res = {"case": case, "compression": compression}
    try:
        pid = router.proc.pid
        res["idle_kb"] = proc_kb(pid, "VmRSS")
        lg = [args.loadgen, "--url", f"http://127.0.0.1:{http_port}/v1/traces",
              "--connections", str(CONNECTIONS), "--duration", str(args.duration),
              "--out", "json"]
        if compression == "gzip":
            lg.append("--gzip")
        # The anonymous (heap) and file-backed (mapped libraries) parts of the RSS,
        # at their highest, to tell where the memory is.
        peaks = {"RssAnon": 0, "RssFile": 0}
        done = threading.Event()

        def sample():
            while not done.is_set():
                for k in peaks:
                    try:
                        peaks[k] = max(peaks[k], proc_kb(pid, k))
                    except OSError:
                        return
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            out = subprocess.run(lg, capture_output=True, text=True,
                                 timeout=args.duration + 60)
        finally:
            done.set()
            sampler.join()
        res["anon_peak_kb"], res["file_peak_kb"] = peaks["RssAnon"], peaks["RssFile"]
        if out.returncode != 0:
            raise AssertionError(f"loadgen failed ({out.returncode}): {out.stderr}")
        res["loadgen"] = json.loads(out.stdout.strip().splitlines()[-1])
        res["peak_kb"] = proc_kb(pid, "VmHWM")
        res["after_load_kb"] = proc_kb(pid, "VmRSS")
        if case == "down":
            sink.start()
        accepted = res["loadgen"]["accepted_spans"]
        t0 = time.monotonic()
        try:
            wait_for("the sink to receive every acknowledged span",
                     lambda: sink.delivered() >= accepted, DRAIN_TIMEOUT)
        except AssertionError as e:
            print(e, file=sys.stderr)
        time.sleep(1.0)  # anything beyond the acknowledged spans would show now
        res["drain_s"] = round(time.monotonic() - t0, 1)
        res["delivered"] = sink.delivered()
        res["peak_kb"] = proc_kb(pid, "VmHWM")
        res["rc"] = router.stop()
        res["log_tail"] = router.lines()[-20:]
    finally:
        router.cleanup()
        sink.stop()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--config", required=True, help="configs/gateway.yaml")
    ap.add_argument("--default-config", help="configs/default.yaml, for the debug case")
    ap.add_argument("--cases", default="slow,down", help="of fast, slow, down, debug")
    ap.add_argument("--compression", default="gzip", help="gzip, none, or both")
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--budget-mib", type=float, default=BUDGET_MIB)
    ap.add_argument("--sanitized", action="store_true",
                    help="a sanitizer build: the budget applies to the growth over idle RSS, "
                         "with ASan's shadow memory (1/8) on top")
    ap.add_argument("--set", action="append", help="more --set KEY=VALUE for the router")
    ap.add_argument("--json", help="append one JSON line per case to this file")
    args = ap.parse_args()
    if args.sanitized:
        os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=0"
    check = Checks()
    comps = ["none", "gzip"] if args.compression == "both" else [args.compression]
    for comp in comps:
        for case in args.cases.split(","):
            res = run_case(args, case, comp)
            lg = res["loadgen"]
            limit_kb = int(args.budget_mib * 1024)
            peak = res["peak_kb"] - (res["idle_kb"] if args.sanitized else 0)
            if args.sanitized:
                limit_kb += limit_kb // 8
            print(f"{case:5} {comp:5}: peak RSS {res['peak_kb'] / 1024:.1f} MiB (idle "
                  f"{res['idle_kb'] / 1024:.1f}; heap {res['anon_peak_kb'] / 1024:.1f}, "
                  f"libraries {res['file_peak_kb'] / 1024:.1f}), loadgen {lg['accepted']} accepted / "
                  f"{lg['refused']} refused / {lg['failed']} other / {lg['errors']} errors, "
                  f"{lg['accepted_spans']} spans acknowledged, {res['delivered']} delivered "
                  f"(drain {res['drain_s']} s), exit {res['rc']}")
            if args.json:
                with open(args.json, "a") as f:
                    f.write(json.dumps({k: v for k, v in res.items() if k != "log_tail"}) + "\n")
            what = f"[{case}, {comp}]"
            check(res["rc"] == 0, f"{what} the router exits 0 (exit {res['rc']})")
            if res["rc"] != 0 or res["delivered"] != lg["accepted_spans"]:
                for line in res["log_tail"]:
                    print("  | " + line, file=sys.stderr)
            check(lg["accepted_spans"] > 0, f"{what} the router accepted spans")
            check(lg["failed"] == 0 and lg["errors"] == 0,
                  f"{what} no answer but 200 and 429/503 ({lg['failed']} other, "
                  f"{lg['errors']} errors)")
            check(res["delivered"] == lg["accepted_spans"],
                  f"{what} the sink received every acknowledged span, no more "
                  f"({res['delivered']} of {lg['accepted_spans']})")
            if case == "fast":
                continue
            if case != "debug":
                check(lg["refused"] > 0, f"{what} clients were told to retry ({lg['refused']})")
            check(peak <= limit_kb,
                  f"{what} peak RSS {'over idle ' if args.sanitized else ''}"
                  f"{peak / 1024:.1f} MiB <= {limit_kb / 1024:.0f} MiB")
    if check.failures:
        print(f"{len(check.failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
