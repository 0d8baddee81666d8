#!/usr/bin/env python3
"""Jaeger compact UDP benchmark of the jaeger receiver: spans per CPU-second of the
router for Jaeger Thrift compact over UDP in -> batch -> OTLP/gRPC out, and the
rate at which UDP starts to lose packets, with the socket buffer used.

    bench/jaeger_udp_bench.py --build-dir build [--rcvbuf 0 4194304] [--seconds 5]
                              [--compression none|gzip] [--rates 1000 2000 ...]

Router: bench/configs/jaeger_compact_otlp.yaml, pinned to the first CPU; its sink
(bench/configs/otlp_grpc_sink.yaml, OTLP/gRPC -> nop) and the sender share the
second. The sender sends one pre-encoded packet again and again: an
Agent.emitBatch call in the compact protocol, SPANS spans of a BuildKit-like shape
(12 tags of the four types, one log each), written by the small encoder below
(the receiver's own tests use real senders; here only the bytes' cost matters).

Two parts:
  max    the sender as fast as it goes for --seconds; spans per CPU-second =
         spans the sink received / CPU seconds of the router.
  rates  for each packet rate in --rates (paced in 1 ms bursts), --seconds each,
         with each --rcvbuf: packets sent, read by the socket (the rest the kernel
         dropped: the buffer was full), dropped because the queue was full or the
         pipeline refused, and spans delivered.
Markdown tables on stdout. CPU time, the router process: bench/otlp_http_bench.py.
"""
import argparse
import os
import re
import socket
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_http_bench as hb  # noqa: E402

SPANS = 40

# --- a minimal Thrift compact writer (what the bench sends) -----------------------


def uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def zz(n):
    return uvarint((n << 1) ^ (n >> 63) if n < 0 else n << 1)


class Struct:
    def __init__(self):
        self.b, self.last = bytearray(), 0

    def field(self, fid, ctype, payload=b""):
        d = fid - self.last
        self.b += bytes([d << 4 | ctype]) if 0 < d <= 15 else bytes([ctype]) + zz(fid)
        self.last = fid
        self.b += payload
        return self

    def i32(self, fid, v):
        return self.field(fid, 5, zz(v))

    def i64(self, fid, v):
        return self.field(fid, 6, zz(v))

    def string(self, fid, s):
        s = s.encode() if isinstance(s, str) else s
        return self.field(fid, 8, uvarint(len(s)) + s)

    def dbl(self, fid, v):
        return self.field(fid, 7, struct.pack("<d", v))

    def boolean(self, fid, v):
        return self.field(fid, 1 if v else 2)

    def lst(self, fid, items):
        n = len(items)
        head = bytes([n << 4 | 12]) if n < 15 else bytes([0xFC]) + uvarint(n)
        return self.field(fid, 9, head + b"".join(items))

    def struct(self, fid, inner):
        return self.field(fid, 12, inner)

    def end(self):
        return bytes(self.b) + b"\x00"


def tag(key, kind, v):
    s = Struct().string(1, key).i32(2, kind)
    {0: s.string, 1: s.dbl, 2: s.boolean, 3: s.i64}[kind](3 + kind, v)
    return s.end()


def packet(spans=SPANS):
    t0 = 1700000000000000
    out = []
    for i in range(spans):
        tags = [tag("span.kind", 0, "internal"), tag("otel.library.name", 0, "buildkit"),
                tag("vertex", 0, "sha256:%064x" % i), tag("cached", 2, i % 2 == 0),
                tag("step", 3, i), tag("ratio", 1, i / 7), tag("http.method", 0, "POST"),
                tag("http.url", 0, "https://registry.example/v2/library/x/blobs/%d" % i),
                tag("http.status_code", 3, 200), tag("net.peer.name", 0, "registry.example"),
                tag("component", 0, "buildkit"), tag("retries", 3, 0)]
        log = Struct().i64(1, t0 + i * 10 + 5).lst(2, [tag("event", 0, "exec"),
                                                         tag("pid", 3, 4000 + i)]).end()
        sp = (Struct().i64(1, 0x0102030405060708).i64(2, 0x1112131415161718).i64(3, i + 1)
              .i64(4, 0 if i == 0 else 1).string(5, "solve step %d" % i).i32(7, 1)
              .i64(8, t0 + i * 10).i64(9, 100 + i).lst(10, tags).lst(11, [log]).end())
        out.append(sp)
    proc = Struct().string(1, "buildkitd").lst(2, [tag("hostname", 0, "builder-1"),
                                                   tag("jaeger.version", 0, "Go-2.30.0")]).end()
    batch = Struct().struct(1, proc).lst(2, out).end()
    args = Struct().struct(1, batch).end()
    name = b"emitBatch"
    return bytes([0x82, 4 << 5 | 1]) + uvarint(1) + uvarint(len(name)) + name + args


# --- measuring --------------------------------------------------------------------


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        text = r.read().decode()
    out = {}
    for m in re.finditer(r"^switchyard_(\w+?)(?:\{[^}]*\})? (\S+)$", text, re.M):
        out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
    return out


def send(port, pkt, seconds, rate, cpu):
    """Sends pkt for `seconds` at `rate` packets/s (0: as fast as it goes) from a
    child pinned to `cpu`; returns packets sent."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.sched_setaffinity(0, {cpu})
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        addr = ("127.0.0.1", port)
        n, t0 = 0, time.monotonic()
        end = t0 + seconds
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if rate:
                due = int((now - t0) * rate) - n
                if due <= 0:
                    time.sleep(0.001)
                    continue
            else:
                due = 64
            for _ in range(due):
                try:
                    s.sendto(pkt, addr)
                    n += 1
                except BlockingIOError:
                    pass
        os.write(w, str(n).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 64)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return int(data)


def run(build, rcvbuf, seconds, rate, workers, compression):
    sink = hb.Router(build, os.path.join(hb.HERE, "configs", "otlp_grpc_sink.yaml"), cpu=1)
    router = hb.Router(build, os.path.join(hb.HERE, "configs", "jaeger_compact_otlp.yaml"), cpu=0,
                       SY_BENCH_SINK="127.0.0.1:%d" % sink.port, SY_BENCH_RCVBUF=str(rcvbuf),
                       SY_BENCH_WORKERS=str(workers), SY_BENCH_COMPRESSION=compression)
    pkt = packet()
    try:
        cpu0 = hb.proc_cpu_seconds(router.pid)
        sent = send(router.port, pkt, seconds, rate, 1)
        # Wait until the sink has what the router accepted (or stops getting any).
        last, still = -1, 0
        while still < 10:
            m = scrape(router.metrics_port)
            got = scrape(sink.metrics_port).get("receiver_accepted_spans_total", 0)
            if got == m.get("receiver_accepted_spans_total", 0) and got == last:
                break
            still = still + 1 if got == last else 0
            last = got
            time.sleep(0.2)
        cpu = hb.proc_cpu_seconds(router.pid) - cpu0
        m = scrape(router.metrics_port)
        delivered = scrape(sink.metrics_port).get("receiver_accepted_spans_total", 0)
    finally:
        router.stop()
        sink.stop()
    p = "receiver_jaeger_thrift_compact_"
    return {"rcvbuf": rcvbuf, "rate": rate, "sent": sent,
            "read": int(m.get(p + "packets_received_total", 0)),
            "queue_full": int(m.get(p + "packets_dropped_queue_full_total", 0)),
            "refused": int(m.get(p + "packets_refused_total", 0)),
            "invalid": int(m.get(p + "packets_invalid_total", 0)),
            "delivered_spans": int(delivered), "cpu_s": cpu, "bytes": len(pkt),
            "seconds": seconds}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rcvbuf", type=int, nargs="+", default=[0, 4194304])
    ap.add_argument("--rates", type=int, nargs="+",
                    default=[2000, 5000, 10000, 20000, 40000])
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--parts", nargs="+", default=["max", "rates"])
    ap.add_argument("--compression", default="none", choices=["none", "gzip"],
                    help="the otlp exporter's compression (the exporter's default is gzip)")
    a = ap.parse_args()
    print("packet: %d bytes, %d spans; rmem_max %s; exporter compression %s" %
          (len(packet()), SPANS, open("/proc/sys/net/core/rmem_max").read().strip(),
           a.compression))
    if "max" in a.parts:
        print("\n| socket_buffer_size | packets sent | read | lost in the kernel | queue full "
              "| refused | spans delivered | router CPU s | spans per CPU-second |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for rb in a.rcvbuf:
            r = run(a.build_dir, rb, a.seconds, 0, a.workers, a.compression)
            print("| %s | %d | %d | %d | %d | %d | %d | %.2f | %s |" % (
                rb or "0 (OS default)", r["sent"], r["read"], r["sent"] - r["read"],
                r["queue_full"], r["refused"], r["delivered_spans"], r["cpu_s"],
                hb.fmt_k(r["delivered_spans"] / r["cpu_s"]) if r["cpu_s"] else "-"))
    if "rates" in a.parts:
        print("\n| socket_buffer_size | packets/s | spans/s | sent | lost in the kernel "
              "| queue full | refused | delivered spans | router CPU % | spans per CPU-second |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for rb in a.rcvbuf:
            for rate in a.rates:
                r = run(a.build_dir, rb, a.seconds, rate, a.workers, a.compression)
                print("| %s | %d | %s | %d | %d | %d | %d | %d | %.0f | %s |" % (
                    rb or "0 (OS default)", rate, hb.fmt_k(rate * SPANS), r["sent"],
                    r["sent"] - r["read"], r["queue_full"], r["refused"], r["delivered_spans"],
                    100 * r["cpu_s"] / r["seconds"],
                    hb.fmt_k(r["delivered_spans"] / r["cpu_s"]) if r["cpu_s"] else "-"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
