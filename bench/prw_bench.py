#!/usr/bin/env python3
"""Metrics through the router, two ways in one run: OTLP/HTTP in -> `otlphttp`
(compression none: the request's bytes forwarded) and OTLP/HTTP in ->
`prometheusremotewrite` (translated to series, WriteRequest, snappy). Both
exporters post to the same sink (an asyncio HTTP server here that reads each body
and answers 204/200), so the difference is the router's work.

    bench/prw_bench.py --build-dir build --duration 8

Each request holds --points points (half gauges, half cumulative monotonic sums;
--metrics metrics, three attributes a point, one resource with four attributes);
a gauge or sum point is one series in remote write. Senders are --clients
threads in this process on keep-alive connections, closed loop. For each
variant: the router is started, its CPU time (utime + stime, /proc/PID/stat) read
before and after, and the points the exporter reports sent
(switchyard_exporter_sent_metric_points_total) and the bytes the sink received
are printed as Markdown. Python standard library only.
"""
import argparse
import asyncio
import http.client
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# --- a small protobuf writer for the OTLP request -------------------------------------

def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def ld(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vi(num, v):
    return varint(num << 3) + varint(v)


def f64(num, v):
    return varint(num << 3 | 1) + struct.pack("<Q", v)


def dbl(num, v):
    return varint(num << 3 | 1) + struct.pack("<d", v)


def kv(k, v):
    return ld(1, k.encode()) + ld(2, ld(1, v.encode()))


def metrics_request(n_points, n_metrics, seed):
    now = time.time_ns()
    resource = ld(1, b"".join(ld(1, kv(k, v)) for k, v in (
        ("service.name", "bench"), ("service.instance.id", "b-1"),
        ("host.name", "box"), ("deployment.environment", "bench"))))
    per = max(1, n_points // n_metrics)
    metrics = b""
    for m in range(n_metrics):
        pts = b""
        for p in range(per):
            attrs = b"".join(ld(7, kv(k, v)) for k, v in (
                ("route", f"/r{p % 17}"), ("code", str(200 + p % 5)),
                ("worker", f"w{seed}-{p}")))
            pts += ld(1, attrs + f64(2, now - 10**9) + f64(3, now) + dbl(4, float(p + m)))
        if m % 2 == 0:
            data = ld(5, pts)  # gauge
        else:
            data = ld(7, pts + vi(2, 2) + vi(3, 1))  # sum, cumulative, monotonic
        metrics += ld(2, ld(1, f"bench.metric.{m}".encode()) + ld(3, b"1") + data)
    scope = ld(1, ld(1, b"bench")) + metrics
    return ld(1, resource + ld(2, scope))


# --- the sink -------------------------------------------------------------------------

class Sink:
    def __init__(self):
        self.port = free_port()
        self.requests = 0
        self.bytes = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    async def _conn(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.requests += 1
                self.bytes += length
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._conn, "127.0.0.1", self.port))
        self.ready.set()
        self.loop.run_forever()
        server.close()


CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
exporters:
{exporter}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [{name}]
"""

VARIANTS = {
    "pass-through (otlphttp, compression none)":
        ("otlphttp", "  otlphttp:\n    endpoint: http://127.0.0.1:{sink}\n    compression: none\n"),
    "prometheusremotewrite (snappy)":
        ("prometheusremotewrite",
         "  prometheusremotewrite:\n    endpoint: http://127.0.0.1:{sink}/api/v1/write\n"
         "    remote_write_queue:\n      queue_size: 100\n"),
}


def sent_points(mport):
    with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("switchyard_exporter_sent_metric_points_total"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def run_variant(args, label, name, exporter, bodies):
    sink = Sink()
    port, mport = free_port(), free_port()
    cfg = CONFIG.format(port=port, mport=mport, name=name,
                        exporter=exporter.format(sink=sink.port))
    d = tempfile.mkdtemp(prefix="sy-prwbench-")
    path = os.path.join(d, "config.yaml")
    with open(path, "w") as f:
        f.write(cfg)
    cmd = [os.path.join(args.build_dir, "bin/switchyard"), "--config", path,
           "--plugin-dir", os.path.join(args.build_dir, "lib/switchyard/plugins")]
    if args.router_cpu is not None:
        cmd = ["taskset", "-c", str(args.router_cpu)] + cmd
    log = open(os.path.join(d, "out.log"), "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if b"Everything is ready" in open(os.path.join(d, "out.log"), "rb").read():
            break
        time.sleep(0.05)
    cpu0 = cpu_seconds(proc.pid)
    perf = None
    if args.perf and name == "prometheusremotewrite":
        perf = subprocess.Popen(["perf", "record", "-g", "-o", args.perf, "-p", str(proc.pid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = time.monotonic() + args.duration
    accepted = [0] * args.clients
    refused = [0] * args.clients

    def client(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        k = i
        while time.monotonic() < stop:
            c.request("POST", "/v1/metrics", bodies[k % len(bodies)],
                      {"Content-Type": "application/x-protobuf"})
            r = c.getresponse()
            r.read()
            if r.status == 200:
                accepted[i] += 1
            else:
                refused[i] += 1
                time.sleep(0.01)
            k += 1
        c.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Let the exporter finish what it holds.
    want = sum(accepted) * args.points
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and sent_points(mport) < want:
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(proc.pid) - cpu0
    sent = sent_points(mport)
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(timeout=30)
    log.close()
    return {"variant": label, "accepted_requests": sum(accepted), "refused": sum(refused),
            "points_sent": sent, "elapsed": elapsed, "cpu": cpu,
            "sink_requests": sink.requests, "sink_bytes": sink.bytes, "rc": rc}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--metrics", type=int, default=10)
    ap.add_argument("--router-cpu", type=int, default=None)
    ap.add_argument("--perf", help="record the router with `perf record -g` into this file")
    args = ap.parse_args()
    bodies = [metrics_request(args.points, args.metrics, s) for s in range(4)]
    rows = [run_variant(args, label, name, exp, bodies)
            for label, (name, exp) in VARIANTS.items()]
    print(f"{args.points} points a request ({len(bodies[0])} bytes), {args.clients} clients, "
          f"{args.duration:g} s a variant\n")
    print("| variant | points accepted | points sent | points/s (wall) | router CPU s | points per CPU-second "
          "| requests to the sink | bytes to the sink | exit |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['variant']} | {r['accepted_requests'] * args.points:,} | "
              f"{r['points_sent']:,.0f} | "
              f"{r['points_sent'] / r['elapsed']:,.0f} | {r['cpu']:.2f} | "
              f"{r['points_sent'] / r['cpu'] if r['cpu'] else 0:,.0f} | {r['sink_requests']:,} | "
              f"{r['sink_bytes']:,} | {r['rc']} |")
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
