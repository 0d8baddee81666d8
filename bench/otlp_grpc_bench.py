#!/usr/bin/env python3
"""OTLP/gRPC benchmark of Switchyard: spans per CPU-second of the router with
OTLP/gRPC in, compared with OTLP/HTTP in the same run, and the forwarding case
(gRPC in -> batch -> otlp exporter -> a second switchyard as the sink).

Builds nothing: give it a build directory holding bin/switchyard, bin/loadgen and
lib/switchyard/plugins/ (a Release build, for figures worth quoting):

    bench/otlp_grpc_bench.py --build-dir build-bench

Two parts, each chosen with --parts:

  nop      bench/configs/otlp_grpc_batch_nop.yaml (otlp receiver with gRPC and
           HTTP -> batch -> nop). For each number of connections, with and
           without gzip, one cell with loadgen --protocol grpc and one with
           --protocol http against a fresh router of the same config, so the
           gRPC/HTTP ratio comes from one run.
  forward  bench/configs/otlp_grpc_batch_otlp.yaml (the same receiver -> batch
           -> otlp exporter, compression none or gzip) sending to
           bench/configs/otlp_grpc_sink.yaml (otlp gRPC receiver -> nop), loadgen
           over gRPC (and over HTTP, for the ratio). After the load it waits until
           the sink has every span the first router accepted (or stops getting
           any), then reads both routers' CPU time: spans per CPU-second is spans
           delivered to the sink / CPU seconds of the first router, the sink's CPU
           is reported apart, and the first router's peak RSS (VmHWM) under load.

The first router is pinned to the first CPU, loadgen to the second; the sink, in
the forward part, shares the second CPU with loadgen (on a two-CPU machine there
is no third), so the first router keeps a core to itself. CPU time, RSS, the
router process and loadgen come from bench/otlp_http_bench.py, imported.
Results go to stdout as Markdown tables, and with --json FILE as JSON lines.
"""
import argparse
import contextlib
import json
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import otlp_http_bench as hb  # noqa: E402  (the shared measuring functions)

HERE = hb.HERE
ACCEPTED_RE = re.compile(r'^switchyard_receiver_accepted_spans_total\{[^}]*\} (\S+)$', re.M)
SENT_RE = re.compile(r'^switchyard_exporter_sent_spans_total\{[^}]*\} (\S+)$', re.M)
FAILED_RE = re.compile(r'^switchyard_exporter_send_failed_spans_total\{[^}]*\} (\S+)$', re.M)


@contextlib.contextmanager
def env(**values):
    """Sets environment variables for the routers started inside (hb.Router
    passes os.environ on), and restores them after."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update({k: str(v) for k, v in values.items()})
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def start_router(build, config, cpu, **extra_env):
    """A router of config pinned to cpu, with its HTTP port (SY_BENCH_HTTP_PORT)
    picked free as well as the ports hb.Router picks."""
    http_port = hb.free_port()
    with env(SY_BENCH_HTTP_PORT=http_port, **extra_env):
        r = hb.Router(build, config, cpu=cpu)
    r.http_port = http_port
    return r


def metric_sum(router, regex):
    """The sum of a counter's series on the router's metrics endpoint, or None."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{router.metrics_port}/metrics",
                                    timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    return sum(float(v) for v in regex.findall(text))


def loadgen_target(router, protocol):
    if protocol == "grpc":
        return f"http://127.0.0.1:{router.port}", ["--protocol", "grpc"]
    return f"http://127.0.0.1:{router.http_port}/v1/traces", ["--protocol", "http"]


def run_cell(build, router, protocol, duration, connections, streams, gzip, loadgen_cpu, extra):
    """Runs loadgen against router; returns its result and the router's CPU
    seconds and wall time over the run."""
    url, args = loadgen_target(router, protocol)
    if streams > 1:
        args += ["--streams", str(streams)]
    time.sleep(0.2)
    cpu0 = hb.proc_cpu_seconds(router.pid)
    wait0 = hb.proc_runqueue_wait_seconds(router.pid)
    t0 = time.perf_counter()
    lg = hb.run_loadgen(build, url, duration, connections, gzip, loadgen_cpu, args + extra)
    wall = time.perf_counter() - t0
    return lg, cpu0, wait0, t0, wall


def measure_nop(build, config, protocol, duration, connections, streams, gzip, cpus, extra):
    r = start_router(build, config, cpus[0])
    try:
        lg, cpu0, wait0, _, wall = run_cell(build, r, protocol, duration, connections, streams,
                                            gzip, cpus[1], extra)
        cpu = hb.proc_cpu_seconds(r.pid) - cpu0
        wait = hb.proc_runqueue_wait_seconds(r.pid) - wait0
        hwm = hb.proc_status(r.pid, "VmHWM")
    finally:
        rc = r.stop()
    res = {
        "kind": "nop", "config": os.path.basename(config), "protocol": protocol,
        "connections": connections, "streams": streams, "gzip": gzip,
        "router_cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "router_cpu_util": round(cpu / wall, 3), "router_wait_util": round(wait / wall, 3),
        "spans_per_cpu_s": round(lg["accepted_spans"] / cpu) if cpu > 0 else None,
        "peak_rss_kb": hwm, "router_exit": rc, "loadgen": lg,
    }
    if rc != 0:
        res["router_tail"] = r.tail[-20:]
    return res


def wait_delivered(first, sink, timeout):
    """Waits until the sink has accepted as many spans as the first router, or
    its count stops growing for a second. Returns (accepted, delivered)."""
    deadline = time.perf_counter() + timeout
    last, still_since = None, time.perf_counter()
    while True:
        accepted = metric_sum(first, ACCEPTED_RE) or 0
        delivered = metric_sum(sink, ACCEPTED_RE) or 0
        now = time.perf_counter()
        if delivered >= accepted or now > deadline:
            return accepted, delivered
        if delivered != last:
            last, still_since = delivered, now
        elif now - still_since > 1.0:
            return accepted, delivered
        time.sleep(0.05)


def measure_forward(build, config, sink_config, protocol, duration, connections, streams, gzip,
                    compression, cpus, extra):
    sink = start_router(build, sink_config, cpus[1])
    first = None
    try:
        first = start_router(build, config, cpus[0], SY_BENCH_SINK=f"127.0.0.1:{sink.port}",
                             SY_BENCH_COMPRESSION=compression)
        sink_cpu0 = hb.proc_cpu_seconds(sink.pid)
        lg, cpu0, wait0, t0, wall = run_cell(build, first, protocol, duration, connections,
                                             streams, gzip, cpus[1], extra)
        hwm = hb.proc_status(first.pid, "VmHWM")
        accepted, delivered = wait_delivered(first, sink, 30)
        total_wall = time.perf_counter() - t0
        cpu = hb.proc_cpu_seconds(first.pid) - cpu0
        sink_cpu = hb.proc_cpu_seconds(sink.pid) - sink_cpu0
        wait = hb.proc_runqueue_wait_seconds(first.pid) - wait0
        sent = metric_sum(first, SENT_RE)
        failed = metric_sum(first, FAILED_RE)
    finally:
        rc = first.stop() if first else None
        sink_rc = sink.stop()
    res = {
        "kind": "forward", "config": os.path.basename(config), "protocol": protocol,
        "connections": connections, "streams": streams, "gzip": gzip,
        "compression": compression, "router_cpu_s": round(cpu, 3),
        "sink_cpu_s": round(sink_cpu, 3), "wall_s": round(wall, 3),
        "wall_with_drain_s": round(total_wall, 3),
        "router_cpu_util": round(cpu / total_wall, 3),
        "router_wait_util": round(wait / total_wall, 3),
        "accepted_spans": int(accepted), "delivered_spans": int(delivered),
        "exporter_sent_spans": sent, "exporter_failed_spans": failed,
        "spans_per_cpu_s": round(delivered / cpu) if cpu > 0 else None,
        "sink_spans_per_cpu_s": round(delivered / sink_cpu) if sink_cpu > 0 else None,
        "delivered_per_s": round(delivered / total_wall),
        "peak_rss_kb": hwm, "router_exit": rc, "sink_exit": sink_rc, "loadgen": lg,
    }
    if rc != 0:
        res["router_tail"] = first.tail[-20:]
    return res


def lat(lg):
    return (f"{lg['p50_us'] / 1e3:.2f} | {lg['p99_us'] / 1e3:.2f} | "
            f"{lg['max_us'] / 1e3:.2f}")


def ratio(r, cell):
    """Spans per CPU-second of r over the HTTP cell measured beside it."""
    h = cell.get("http", {}).get("spans_per_cpu_s")
    if r["protocol"] == "http" or not h or not r["spans_per_cpu_s"]:
        return "—"
    return f"{r['spans_per_cpu_s'] / h:.2f}"


def warn_exit(r):
    """Shows the last lines of a router that did not exit 0 on SIGTERM."""
    if r["router_exit"] != 0:
        print("router output:\n" + "\n".join(r.get("router_tail", [])), file=sys.stderr)


def spc(v):
    return hb.fmt_k(v) if v else "n/a"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--parts", default="nop,forward", help="nop, forward, or nop,forward")
    ap.add_argument("--connections", default="1,4")
    ap.add_argument("--streams", type=int, default=1,
                    help="concurrent gRPC streams per connection (loadgen --streams)")
    ap.add_argument("--gzip", default="off,on", help="loadgen's gzip: off, on, or off,on")
    ap.add_argument("--compression", default="none,gzip",
                    help="the otlp exporter's compression in the forward part")
    ap.add_argument("--protocols", default="grpc,http",
                    help="loadgen protocols; http gives the ratio in the same run")
    ap.add_argument("--loadgen-args", default="", help="more loadgen options, one string")
    ap.add_argument("--json", help="also write every result to this file as JSON lines")
    args = ap.parse_args()

    build = os.path.abspath(args.build_dir)
    for exe in ("switchyard", "loadgen"):
        if not os.access(os.path.join(build, "bin", exe), os.X_OK):
            sys.exit(f"no {exe} in {build}/bin: build it first")
    cpus = sorted(os.sched_getaffinity(0))
    pin = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    cfg = lambda v: os.path.join(HERE, "configs", f"otlp_grpc_{v}.yaml")
    parts = [p for p in args.parts.split(",") if p]
    conns = [int(c) for c in args.connections.split(",") if c]
    gzips = [g == "on" for g in args.gzip.split(",") if g]
    protocols = [p for p in args.protocols.split(",") if p]
    compressions = [c for c in args.compression.split(",") if c]
    extra = args.loadgen_args.split()
    results = []

    print(f"# switchyard OTLP/gRPC benchmark ({build})\n")
    print(f"- CPUs: {len(cpus)}; router pinned to {pin[0]}, loadgen (and the sink) to {pin[1]}")
    print(f"- load: {args.duration:g} s per cell, {args.streams} stream(s) per gRPC connection, "
          f"loadgen defaults (512 spans x 10 attributes per request) {args.loadgen_args}\n")

    if "nop" in parts:
        print("## gRPC in -> batch -> nop\n")
        print("| in | conns | gzip | spans/CPU-s | vs HTTP | spans/s | router CPU | req/s | "
              "refused | errors | p50 ms | p99 ms | max ms | peak RSS kB | loadgen CPU | "
              "router waiting | exit |")
        print("| " + " | ".join(["---"] * 17) + " |")
        for c in conns:
            for g in gzips:
                cell = {p: measure_nop(build, cfg("batch_nop"), p, args.duration, c,
                                       args.streams if p == "grpc" else 1, g, pin, extra)
                        for p in protocols}
                for p, r in cell.items():
                    results.append(r)
                    lg = r["loadgen"]
                    print(f"| {p} | {c} | {'on' if g else 'off'} | "
                          f"{spc(r['spans_per_cpu_s'])} | {ratio(r, cell)} | "
                          f"{hb.fmt_k(lg['spans_per_s'])} | {r['router_cpu_util'] * 100:.0f} % | "
                          f"{lg['requests_per_s']:.0f} | {lg['refused']} | "
                          f"{lg['errors'] + lg['failed']} | {lat(lg)} | {r['peak_rss_kb']} | "
                          f"{lg['loadgen_cpu_s'] / r['wall_s'] * 100:.0f} % | "
                          f"{r['router_wait_util'] * 100:.0f} % | {r['router_exit']} |",
                          flush=True)
                    warn_exit(r)

    if "forward" in parts:
        print("\n## gRPC in -> batch -> otlp exporter (gRPC) -> sink (second switchyard)\n")
        print("| in | conns | exporter compression | spans/CPU-s (first) | vs HTTP | "
              "sink spans/CPU-s | delivered/s | delivered / accepted | router CPU | "
              "sink CPU | refused | p50 ms | p99 ms | max ms | peak RSS kB | exit (first, sink) |")
        print("| " + " | ".join(["---"] * 16) + " |")
        for comp in compressions:
            for c in conns:
                cell = {p: measure_forward(build, cfg("batch_otlp"), cfg("sink"), p,
                                           args.duration, c,
                                           args.streams if p == "grpc" else 1, False, comp,
                                           pin, extra)
                        for p in protocols}
                for p, r in cell.items():
                    results.append(r)
                    lg = r["loadgen"]
                    # Spans lost on the way, or a router that did not exit 0, make
                    # the row's figures meaningless: say so in its first figure.
                    bad = (r["delivered_spans"] < r["accepted_spans"] or r["router_exit"] != 0
                           or r["sink_exit"] != 0)
                    print(f"| {p} | {c} | {comp} | {spc(r['spans_per_cpu_s'])}"
                          f"{' (INCOMPLETE)' if bad else ''} | "
                          f"{ratio(r, cell)} | {spc(r['sink_spans_per_cpu_s'])} | "
                          f"{hb.fmt_k(r['delivered_per_s'])} | "
                          f"{r['delivered_spans']} / {r['accepted_spans']} | "
                          f"{r['router_cpu_util'] * 100:.0f} % | {r['sink_cpu_s']:.2f} s | "
                          f"{lg['refused']} | {lat(lg)} | {r['peak_rss_kb']} | "
                          f"{r['router_exit']}, {r['sink_exit']} |", flush=True)
                    warn_exit(r)

    if args.json:
        with open(args.json, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
