#!/usr/bin/env python3
"""Zipkin in -> OTLP out: spans per CPU-second of the router's zipkin receiver.

    bench/zipkin_bench.py --build-dir build [--duration 10] [--connections 4] [--format json|proto]

Starts two routers from the build directory: the one measured,
`zipkin (127.0.0.1) -> batch -> otlphttp`, and a sink router, `otlp -> nop`, that
the first exports to. Python threads (one per connection, keep-alive) POST one
pre-built body of 512 Zipkin v2 spans (10 tags, both endpoints and one annotation
each; JSON, or protobuf with --format proto) to /api/v2/spans as fast as the
router answers. The router's CPU time (utime + stime of all its threads, from
/proc/PID/stat) is read before and after --duration seconds; the figure is spans
accepted (202) per CPU-second of the measured router. It runs pinned to CPU 0,
the senders and the sink elsewhere, when there are two CPUs or more.
Python standard library only.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

SPANS = 512
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def spans_json():
    t0 = 1700000000000000
    out = []
    for i in range(SPANS):
        tags = {"http.method": "GET", "http.url": "http://shop.example.com/api/items/%d" % i,
                "http.status_code": "200", "component": "http", "user.id": "user-%d" % (i % 97),
                "region": "eu-west-1", "retry": "false", "cache.hit": "true",
                "db.statement": "SELECT * FROM items WHERE id = %d" % i, "thread": "worker-3"}
        out.append({
            "traceId": "%032x" % (0x463ac35c9f6413ad48485a3953bb6124 + i // 8),
            "id": "%016x" % (0x1000 + i), "parentId": "%016x" % (0x1000 + i - 1) if i % 8 else None,
            "name": "get /api/items", "kind": "SERVER" if i % 2 else "CLIENT",
            "timestamp": t0 + i * 10, "duration": 1500 + i,
            "localEndpoint": {"serviceName": "shop-%d" % (i % 4), "ipv4": "10.0.0.%d" % (i % 250),
                              "port": 8080},
            "remoteEndpoint": {"serviceName": "db", "ipv4": "10.1.0.5", "port": 5432},
            "annotations": [{"timestamp": t0 + i * 10 + 5, "value": "wire.send"}],
            "tags": tags})
    for s in out:
        if s["parentId"] is None:
            del s["parentId"]
    return out


def pb_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_len(num, data):
    if isinstance(data, str):
        data = data.encode()
    return pb_varint(num << 3 | 2) + pb_varint(len(data)) + data


def spans_proto(spans):
    body = b""
    for s in spans:
        def ep(e):
            return (pb_len(1, e["serviceName"]) + pb_len(2, bytes(int(x) for x in e["ipv4"].split(".")))
                    + pb_varint(4 << 3) + pb_varint(e["port"]))
        m = pb_len(1, bytes.fromhex(s["traceId"]))
        if "parentId" in s:
            m += pb_len(2, bytes.fromhex(s["parentId"]))
        m += pb_len(3, bytes.fromhex(s["id"]))
        m += pb_varint(4 << 3) + pb_varint(1 if s["kind"] == "CLIENT" else 2)
        m += pb_len(5, s["name"]) + pb_varint(6 << 3 | 1) + struct.pack("<Q", s["timestamp"])
        m += pb_varint(7 << 3) + pb_varint(s["duration"])
        m += pb_len(8, ep(s["localEndpoint"])) + pb_len(9, ep(s["remoteEndpoint"]))
        for a in s["annotations"]:
            m += pb_len(10, pb_varint(1 << 3 | 1) + struct.pack("<Q", a["timestamp"]) + pb_len(2, a["value"]))
        for k, v in s["tags"].items():
            m += pb_len(11, pb_len(1, k) + pb_len(2, v))
        body += pb_len(1, m)
    return body


def start(binary, plugin_dir, config, tmp, name, cpus):
    path = os.path.join(tmp, name + ".yaml")
    with open(path, "w") as f:
        f.write(config)
    log = open(os.path.join(tmp, name + ".log"), "wb")
    p = subprocess.Popen([binary, "--config", path, "--plugin-dir", plugin_dir],
                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                         preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with open(log.name, "rb") as f:
            if b"Everything is ready" in f.read():
                return p
        if p.poll() is not None:
            break
        time.sleep(0.05)
    p.kill()
    sys.exit("%s did not start:\n%s" % (name, open(log.name).read()))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--format", choices=["json", "proto"], default="json")
    args = ap.parse_args()
    binary = os.path.join(args.build_dir, "bin", "switchyard")
    plugins = os.path.join(args.build_dir, "lib", "switchyard", "plugins")
    ncpu = os.cpu_count() or 1
    router_cpus = {0} if ncpu >= 2 else None
    other_cpus = set(range(1, ncpu)) if ncpu >= 2 else None
    zport, sport = free_port(), free_port()
    tmp = tempfile.mkdtemp(prefix="zipkin-bench-")
    sink = start(binary, plugins, """
receivers: {otlp: {protocols: {http: {endpoint: "127.0.0.1:%d"}}}}
exporters: {nop: {}}
service: {telemetry: {metrics: {level: none}}, pipelines: {traces: {receivers: [otlp], exporters: [nop]}}}
""" % sport, tmp, "sink", other_cpus)
    router = start(binary, plugins, """
receivers: {zipkin: {endpoint: "127.0.0.1:%d"}}
processors: {batch: {}}
exporters: {otlphttp: {endpoint: "http://127.0.0.1:%d", compression: none}}
service: {telemetry: {metrics: {level: none}}, pipelines: {traces: {receivers: [zipkin], processors: [batch], exporters: [otlphttp]}}}
""" % (zport, sport), tmp, "router", router_cpus)
    if other_cpus:
        os.sched_setaffinity(0, other_cpus)
    spans = spans_json()
    if args.format == "json":
        body, ctype = json.dumps(spans).encode(), "application/json"
    else:
        body, ctype = spans_proto(spans), "application/x-protobuf"
    stop = threading.Event()
    counts = [[0, 0] for _ in range(args.connections)]

    def sender(i):
        c = http.client.HTTPConnection("127.0.0.1", zport, timeout=10)
        while not stop.is_set():
            c.request("POST", "/api/v2/spans", body, {"Content-Type": ctype})
            r = c.getresponse()
            r.read()
            counts[i][0 if r.status == 202 else 1] += 1
            if r.status != 202:
                time.sleep(0.01)
        c.close()

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(args.connections)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # warm up
    c0, n0, t0 = cpu_seconds(router.pid), sum(c[0] for c in counts), time.monotonic()
    time.sleep(args.duration)
    c1, n1, t1 = cpu_seconds(router.pid), sum(c[0] for c in counts), time.monotonic()
    stop.set()
    for t in threads:
        t.join()
    refused = sum(c[1] for c in counts)
    for p in (router, sink):
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    accepted = (n1 - n0) * SPANS
    cpu = c1 - c0
    print("| format | body bytes | connections | spans accepted/s | router CPU (cores) | "
          "spans per CPU-second | requests refused |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    print("| %s | %d | %d | %.0f | %.2f | %.0f | %d |" % (
        args.format, len(body), args.connections, accepted / (t1 - t0), cpu / (t1 - t0),
        accepted / cpu if cpu else 0, refused))


if __name__ == "__main__":
    main()
