#!/usr/bin/env python3
"""The issue 10 matrix (items 1, 5 and 6): two builds of Switchyard, interleaved in
one run, under every row of the matrix, plus the added latency at half capacity.

Builds nothing: give it two Release build directories (bin/switchyard, bin/loadgen,
lib/switchyard/plugins/), A = the previous commit, B = the current one:

    python3 bench/matrix_bench.py --build-dir build-prev --build-dir-b build \\
        --json /tmp/matrix.jsonl > /tmp/matrix.md

Part 1, the matrix. A row is a config x a compression x a sink:
  config       gateway: configs/gateway.yaml (OTLP in -> batch 2048 -> otlphttp,
               sending queue 8 MiB in bytes), the exporter's endpoint the sink;
               default: configs/default.yaml (OTLP/HTTP in -> batch -> debug), which
               has no sink: its one row per compression counts the debug
               exporter's "Traces {...}" lines as delivered;
  compression  none, or gzip: loadgen --gzip and the exporter's compression gzip;
  sink         fast: a second switchyard (bench/configs/otlp_http_nop.yaml, otlp ->
               nop), counting what it accepted from its own metrics;
               slow: a sink that answers each request after 1 s
               (tests/integration/test_memory_budget.py's CountingSink);
               down: nothing listens during the load; once loadgen has finished the
               sink comes up (instant answers) and must receive everything.
For each row and each build (the order alternating with each repeat: A B, B A,
...), the router is pinned to one CPU, loadgen, the sink and this script to the
other; loadgen (of build B, the same client for both) pushes loadgen's default
requests (512 spans x 10 attributes) over --connections for --duration seconds,
closed loop. Then the script waits (at most --drain-timeout) until the sink has
received as many spans as loadgen saw acknowledged (200), waits 1 s more (anything
beyond would show) and reads:
  spans/CPU-s   spans acknowledged / the router's CPU seconds (utime + stime, all
                threads) from the start of the load until the sink had them all;
  req/s         answered requests per second (200 + 429/503 + other);
  refused       429/503 answers (clients told to retry); other = any other status
                or broken request;
  p50/p99       loadgen's latency (ms);
  peak RSS      VmHWM of the router, read after the drain (MiB; item 1: <= 64);
  acked/delivered  spans loadgen saw acknowledged, spans the sink received: equal
                means nothing acknowledged was lost or sent twice;
  drain         seconds from the end of the load until the sink had them all;
  exporter retries  the router's switchyard_exporter_retries_total (gateway);
  router waiting  its threads' time runnable but without a CPU, a share of the run.
In the slow and down rows without compression, loadgen numbers the spans
(--sequence 1 --ack-log) and the sink is tests/soak/seq_sink.py's SeqSink: every
span of every acknowledged request must arrive exactly once, none of a refused
one (--no-ids: counts only).

Part 2, latency at half capacity (item 5): for each --latency-spans size (spans per
request), a closed-loop run of each build on bench/configs/otlp_http_nop.yaml (no
batch, so no batch timeout) with 4 connections gives its capacity (accepted
requests per second); the open-loop rate (loadgen --rate) is half of build B's
capacity (or --rate). Then --latency-repeat rounds, each running nginx_direct
(bench/configs/otlp_http_nginx_direct.conf: nginx answering 200 itself, the instant
backend; run with keepalive_requests raised, so that nginx does not close the
connections every 1000 requests), A and B at that rate, the order rotating;
"added p99" = the router's p99 - nginx_direct's p99 of the same round (item 5:
<= 1 ms).

Output: Markdown tables on stdout, the exact command first; --json FILE writes
every result as a JSON line. --quick: 3 s rows, one repeat, 3 s latency runs.
The machine should be quiet: on a shared one, only ratios within one run mean
anything.
"""
import argparse
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
import types
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "soak"))

from otlp_http_bench import (Router, ab_cells, ab_medians, builds_of,  # noqa: E402
                             free_port, fmt_k, measure_load, proc_cpu_seconds,
                             proc_runqueue_wait_seconds, proc_status, run_loadgen,
                             table_head, write_json)
from seq_sink import SeqSink, check_loadgen  # noqa: E402
from test_memory_budget import CountingSink, DebugLines, RouterSink  # noqa: E402

BUDGET_MIB = 64
NOP = os.path.join(HERE, "configs", "otlp_http_nop.yaml")
NGINX_DIRECT = os.path.join(HERE, "configs", "otlp_http_nginx_direct.conf")


def rows_of(args):
    """(config, compression, sink) of every row asked for."""
    rows = []
    for config in args.configs.split(","):
        for comp in args.compression.split(","):
            if config == "default":
                rows.append((config, comp, "debug"))
                continue
            for sink in args.sinks.split(","):
                rows.append((config, comp, sink))
    return rows


def router_args(config, comp, http_port):
    """The environment and arguments that put configs/<config>.yaml on free ports."""
    if config == "default":  # fixed ports in the file: move them
        return {}, ["--shutdown-timeout", "30s",
                    "--set", f"receivers.otlp.protocols.http.endpoint=127.0.0.1:{http_port}",
                    "--set", f"extensions.health_check.endpoint=127.0.0.1:{free_port()}",
                    "--set", f"service.telemetry.metrics.address=127.0.0.1:{free_port()}"]
    env = {"SY_GATEWAY_HTTP": f"127.0.0.1:{http_port}",
           "SY_GATEWAY_GRPC": f"127.0.0.1:{free_port()}",
           "SY_GATEWAY_HEALTH": f"127.0.0.1:{free_port()}",
           "SY_GATEWAY_METRICS": f"127.0.0.1:{free_port()}",
           "SY_GATEWAY_COMPRESSION": comp}
    # Retries 500 ms to 2 s apart (as test_memory_budget.py), so that the sink
    # that comes up is found within a bounded wait.
    return env, ["--shutdown-timeout", "30s",
                 "--set", "exporters.otlphttp.retry_on_failure.initial_interval=500ms",
                 "--set", "exporters.otlphttp.retry_on_failure.max_interval=2s"]


class IdSink:
    """tests/soak/seq_sink.py's SeqSink (it counts every span by its identity, as
    `loadgen --sequence 1` numbered it) behind CountingSink's start/delivered/stop;
    down until start()."""
    SPANS_PER_REQUEST = 512  # loadgen's default

    def __init__(self, port, delay):
        self.seq = SeqSink(self.SPANS_PER_REQUEST, port=port, delay=delay)
        self.seq.stop()

    def start(self):
        self.seq.start()

    def delivered(self):
        """Distinct spans received (a duplicate does not count twice: the drain
        waits for every span, not for as many)."""
        with self.seq.lock:
            arr = bytes(self.seq.accepted.by_client.get("lg1", b""))
        return len(arr) - arr.count(0)

    def stop(self):
        self.seq.stop()

    def check(self, ack_log):
        """lost / duplicated / never_sent / unacked_delivered spans, by identity."""
        return check_loadgen(self.seq, 1, ack_log)


def exporter_metrics(port):
    """The router's own switchyard_exporter_* counters that are not 0 (retries,
    sent, send_failed: what the exporter did), or {} when they cannot be read."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as f:
            text = f.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("switchyard_exporter_") and "_total" in line:
            name, value = line.rsplit(" ", 1)
            if float(value):
                out[name] = float(value)
    return out


def make_sink(kind, sink_build, port, ids):
    if ids:
        return IdSink(port, 1.0 if kind == "slow" else 0.0)
    if kind == "fast":
        plugins = os.path.join(sink_build, "lib", "switchyard", "plugins")
        ns = types.SimpleNamespace(bin=os.path.join(sink_build, "bin", "switchyard"),
                                   plugin_dir=plugins)
        return RouterSink(ns, port)
    return CountingSink(port, 1.0 if kind == "slow" else 0.0)


def run_row(args, build, row, pin):
    """One row on one build: the figures of the module's docstring."""
    config, comp, kind = row
    router_cpu, other_cpu = pin
    http_port, sink_port = free_port(), free_port()
    env, extra = router_args(config, comp, http_port)
    env["OTLP_BACKEND"] = f"http://127.0.0.1:{sink_port}"
    debug = {"spans": 0}

    def count_debug(line):
        for m in DebugLines.PATTERN.findall(line.decode(errors="replace")):
            debug["spans"] += int(m)

    # Span identities checked where loadgen can number them (uncompressed requests)
    # and the sink is a Python one (slow, down).
    ids = args.ids and comp == "none" and kind in ("slow", "down")
    ack_log = os.path.join(args.tmp, "ack.log")
    lg_extra = ["--sequence", "1", "--ack-log", ack_log] if ids else []
    sink = None if kind == "debug" else make_sink(kind, args.build_dir_b or args.build_dir,
                                                  sink_port, ids)
    if sink is not None and kind != "down":
        sink.start()
    cfg = os.path.join(ROOT, "configs", f"{config}.yaml")
    r = None
    try:
        r = Router(build, cfg, cpu=router_cpu, port=http_port, args=extra,
                   on_line=count_debug if kind == "debug" else None, **env)
        delivered = (lambda: debug["spans"]) if sink is None else sink.delivered
        idle_kb = proc_status(r.pid, "VmRSS")
        cpu0 = proc_cpu_seconds(r.pid)
        wait0 = proc_runqueue_wait_seconds(r.pid)
        lg = run_loadgen(args.loadgen_build, f"http://127.0.0.1:{http_port}/v1/traces",
                         args.duration, args.connections, comp == "gzip", other_cpu, lg_extra)
        t_load = time.perf_counter()
        load_cpu = proc_cpu_seconds(r.pid) - cpu0
        wait = proc_runqueue_wait_seconds(r.pid) - wait0
        load_hwm = proc_status(r.pid, "VmHWM")
        if kind == "down":
            sink.start()
        acked = lg["accepted_spans"]
        deadline = t_load + args.drain_timeout
        while delivered() < acked and time.perf_counter() < deadline:
            time.sleep(0.05)
        t_drained = time.perf_counter()
        cpu = proc_cpu_seconds(r.pid) - cpu0
        time.sleep(1.0)  # anything beyond the acknowledged spans would show now
        got = delivered()
        metrics_addr = env.get("SY_GATEWAY_METRICS")
        res = {
            "config": config, "compression": comp, "sink": kind,
            "spans_per_cpu_s": round(acked / cpu) if cpu > 0 else None,
            "router_cpu_s": round(cpu, 3), "router_cpu_s_load": round(load_cpu, 3),
            "router_wait_util": round(wait / lg["seconds"], 3),
            "drain_s": round(t_drained - t_load, 2),
            "drained": got >= acked, "acked": acked, "delivered": got,
            "idle_rss_kb": idle_kb, "peak_rss_kb_load": load_hwm,
            "peak_rss_kb": proc_status(r.pid, "VmHWM"), "loadgen": lg,
        }
        if ids:
            res["ids"] = sink.check(ack_log)
            res["delivered_with_duplicates"] = sink.seq.total()
        if metrics_addr:
            res["exporter"] = exporter_metrics(metrics_addr.rsplit(":", 1)[1])
    finally:
        rc = r.stop(timeout=60) if r is not None else None
        if sink is not None:
            sink.stop()
    res["router_exit"] = rc
    if rc != 0 or res["delivered"] != res["acked"]:
        res["router_tail"] = r.tail[-20:]
    return res


def verdict(res):
    """What is wrong with a row, against issue 10 item 1 ('' when nothing)."""
    lg, bad = res["loadgen"], []
    if res["delivered"] < res["acked"]:
        bad.append(f"LOST {res['acked'] - res['delivered']}")
    elif res["delivered"] > res["acked"]:
        bad.append(f"DUPLICATED {res['delivered'] - res['acked']}")
    ids = res.get("ids") or {}
    for k in ("lost", "duplicated", "never_sent", "unacked_delivered"):
        if ids.get(k):
            bad.append(f"{ids[k]} spans {k} (by identity)")
    if not res["drained"]:
        bad.append("drain timed out")
    if lg["failed"] or lg["errors"]:
        bad.append(f"{lg['failed'] + lg['errors']} other answers")
    if res["peak_rss_kb"] > BUDGET_MIB * 1024:
        bad.append(f"peak RSS > {BUDGET_MIB} MiB")
    if res["sink"] in ("slow", "down") and not lg["refused"]:
        bad.append("no refusal")
    if res["router_exit"] != 0:
        bad.append(f"exit {res['router_exit']}")
    return ", ".join(bad) or ("ok (each span by identity)" if ids else "ok")


def print_row(label, res):
    lg = res["loadgen"]
    spc = fmt_k(res["spans_per_cpu_s"]) if res["spans_per_cpu_s"] else "n/a"
    retries = "—" if "exporter" not in res else "%.0f" % sum(
        v for k, v in res["exporter"].items() if k.startswith("switchyard_exporter_retries_total"))
    print(f"| {res['config']} | {res['compression']} | {res['sink']} | {label} | {spc} | "
          f"{lg['requests_per_s']:.0f} | {lg['refused']} | {lg['failed'] + lg['errors']} | "
          f"{lg['p50_us'] / 1e3:.2f} | {lg['p99_us'] / 1e3:.2f} | "
          f"{res['peak_rss_kb'] / 1024:.1f} | {res['acked']} | {res['delivered']} | "
          f"{res['drain_s']:.1f} | {retries} | {waiting(res)} | {verdict(res)} |", flush=True)
    if res.get("router_tail"):
        print("router output:\n" + "\n".join(res["router_tail"]), file=sys.stderr)


def matrix(args, builds, pin, out):
    rows = rows_of(args)
    print(f"\n## The matrix: {args.duration:g} s of load a row, {args.connections} connections, "
          f"{args.repeat} interleaved run(s) per build\n")
    print("| config | compression | sink | build | spans/CPU-s | req/s | refused | other | "
          "p50 ms | p99 ms | peak RSS MiB | acked spans | delivered | drain s | exporter retries "
          "| router waiting | verdict |")
    print("| " + " | ".join(["---"] * 17) + " |")
    cells = {}
    for rep in range(args.repeat):
        for row in rows:
            for label, b in (builds if rep % 2 == 0 else builds[::-1]):
                res = run_row(args, b, row, pin)
                res.update(kind="matrix", build=label, repeat=rep)
                out.append(res)
                cells.setdefault(row, {}).setdefault(label, []).append(res)
                print_row(label, res)
    if len(builds) < 2:
        return
    la, lb = builds[0][0], builds[1][0]
    table_head(f"The matrix, A/B: medians over {args.repeat} run(s) ({la} = A, {lb} = B)",
               ["config", "compression", "sink", "spans/CPU-s A", "B", "B/A", "p50 ms A", "B",
                "p99 ms A", "B", "peak RSS MiB A", "B", "delivered = acked (A, B)"])
    for (config, comp, kind), by in cells.items():
        A, B = ab_medians(by, la), ab_medians(by, lb)
        exact = ", ".join("yes" if all(r["delivered"] == r["acked"] for r in by[lbl]) else "NO"
                          for lbl in (la, lb))
        print(f"| {config} | {comp} | {kind} | {ab_cells(A, B)} | {A['p50']:.2f} | "
              f"{B['p50']:.2f} | {A['p99']:.2f} | {B['p99']:.2f} | {A['rss'] / 1024:.1f} | "
              f"{B['rss'] / 1024:.1f} | {exact} |", flush=True)


def nginx_direct_conf(tmp):
    """bench/configs/otlp_http_nginx_direct.conf with keepalive_requests raised:
    nginx closes a keep-alive connection after 1000 requests by default, and
    loadgen's reconnections (conn_errors) would count in the baseline's tail."""
    with open(NGINX_DIRECT) as f:
        text = f.read()
    if "keepalive_requests" not in text:
        text = text.replace("http {", "http {\n    keepalive_requests 100000000;", 1)
    path = os.path.join(tmp, "otlp_http_nginx_direct.conf")
    with open(path, "w") as f:
        f.write(text)
    return path


def waiting(res):
    """The time the server's threads spent runnable but waiting for a CPU, as a share
    of the run, summed over its threads (/proc/PID/task/*/schedstat): its own
    threads queueing behind each other on the pinned core, and other processes on
    that core. Compare it with a quiet run: well above it, the machine decides."""
    return f"{res['router_wait_util'] * 100:.0f} %"


def latency(args, builds, pin, out):
    nginx_build = builds[-1][1]  # nginx_direct needs no build: loadgen of B
    nginx_conf = nginx_direct_conf(args.tmp)
    for spans in [int(s) for s in args.latency_spans.split(",") if s]:
        extra = ["--spans-per-request", str(spans)]
        print(f"\n## Latency at half capacity: {spans} spans a request, "
              f"bench/configs/otlp_http_nop.yaml, 4 connections\n")
        caps = {}
        for label, b in builds:
            res = measure_load(b, NOP, args.latency_duration, 4, False, pin, extra,
                               loadgen_build=args.loadgen_build)
            lg = res["loadgen"]
            caps[label] = lg["accepted"] / lg["seconds"]
            out.append(dict(res, kind="capacity", build=label, spans_per_request=spans))
            print(f"- capacity of {label} (closed loop): {caps[label]:.0f} requests/s accepted "
                  f"({lg['requests_per_s']:.0f} answered, {lg['refused']} refused), "
                  f"{fmt_k(lg['accepted_spans'] / lg['seconds'])} spans/s, "
                  f"{fmt_k(res['spans_per_cpu_s'])} spans/CPU-s, router CPU "
                  f"{res['router_cpu_util'] * 100:.0f} %, waiting for its CPU {waiting(res)}",
                  flush=True)
        rate = args.rate or round(caps[builds[-1][0]] / 2)
        print(f"- open loop at {rate} requests/s ({'--rate' if args.rate else 'half of '}"
              f"{'' if args.rate else builds[-1][0] + ' capacity'}), "
              f"{args.latency_duration:g} s a run\n")
        print("| round | server | refused | reconnections | p50 ms | p90 ms | p99 ms | p99.9 ms "
              "| max ms | server CPU | server waiting | added p99 ms |")
        print("| " + " | ".join(["---"] * 12) + " |")
        servers = [("nginx_direct", nginx_build, nginx_conf)] + \
            [(label, b, NOP) for label, b in builds]
        added = {label: [] for label, _ in builds}
        for rep in range(args.latency_repeat):
            k = rep % len(servers)
            got = {}
            for name, b, cfg in servers[k:] + servers[:k]:
                res = measure_load(b, cfg, args.latency_duration, 4, False, pin,
                                   extra + ["--rate", str(rate)],
                                   loadgen_build=args.loadgen_build)
                res.update(kind="latency", server=name, round=rep, rate=rate,
                           spans_per_request=spans)
                got[name] = res
                out.append(res)
            base = got["nginx_direct"]["loadgen"]["p99_us"] / 1e3
            for name, _, _ in servers:
                lg = got[name]["loadgen"]
                p99 = lg["p99_us"] / 1e3
                add = "—" if name == "nginx_direct" else f"{p99 - base:+.2f}"
                if name != "nginx_direct":
                    added[name].append(p99 - base)
                    got[name]["added_p99_ms"] = round(p99 - base, 3)
                print(f"| {rep + 1} | {name} | {lg['refused']} | {lg['conn_errors']} | "
                      f"{lg['p50_us'] / 1e3:.2f} | {lg['p90_us'] / 1e3:.2f} | {p99:.2f} | "
                      f"{lg['p999_us'] / 1e3:.2f} | {lg['max_us'] / 1e3:.2f} | "
                      f"{got[name]['router_cpu_util'] * 100:.0f} % | {waiting(got[name])} | "
                      f"{add} |", flush=True)
        for label, vals in added.items():
            print(f"\n- added p99 of {label}, {spans} spans: median {statistics.median(vals):.2f} ms "
                  f"(rounds: {', '.join(f'{v:.2f}' for v in vals)}); goal <= 1 ms: "
                  f"{'NOT met' if statistics.median(vals) > 1.0 else 'met' if min(vals) >= 0 else 'undecided (nginx_direct slower than the router in a round: noise decides; re-run on a quiet machine)'}",
                  end="")
        print(flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--build-dir", required=True, help="build A (the previous commit)")
    ap.add_argument("--build-dir-b", help="build B (the current commit), run interleaved with A")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--mode", default="matrix,latency", help="matrix, latency, or both (default)")
    ap.add_argument("--configs", default="gateway,default", help="of gateway, default")
    ap.add_argument("--compression", default="none,gzip", help="of none, gzip")
    ap.add_argument("--sinks", default="fast,slow,down", help="of fast, slow, down (gateway)")
    ap.add_argument("--duration", type=float, default=10, help="seconds of load a row")
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="runs of the matrix, order alternating")
    ap.add_argument("--drain-timeout", type=float, default=120,
                    help="longest wait for the sink to get every acknowledged span")
    ap.add_argument("--latency-spans", default="512,50",
                    help="spans per request of the latency runs (50: what an SDK sends)")
    ap.add_argument("--latency-duration", type=float, default=10)
    ap.add_argument("--latency-repeat", type=int, default=3)
    ap.add_argument("--rate", type=int, help="open-loop rate instead of half of B's capacity")
    ap.add_argument("--no-ids", dest="ids", action="store_false",
                    help="slow and down rows without compression: count spans only, instead "
                         "of numbering them (loadgen --sequence) and checking each one")
    ap.add_argument("--quick", action="store_true",
                    help="a check that it all works: 3 s rows, 1 repeat, 3 s latency runs")
    ap.add_argument("--json", help="also write every result to this file as JSON lines")
    args = ap.parse_args()
    if args.quick:
        args.duration, args.repeat, args.drain_timeout = 3, 1, min(args.drain_timeout, 60)
        args.latency_duration, args.latency_repeat = 3, 1

    builds = builds_of(args)
    args.loadgen_build = builds[-1][1]  # one client for both builds
    modes = args.mode.split(",")
    if "latency" in modes and not (shutil.which("nginx") or os.access("/usr/sbin/nginx", os.X_OK)):
        sys.exit("the latency mode needs nginx for its baseline (apt-get install nginx-light), "
                 "or run --mode matrix")
    args.tmp = tempfile.mkdtemp(prefix="sy-matrix-")
    cpus = sorted(os.sched_getaffinity(0))
    pin = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    if pin[1] is not None:
        # This script's threads (the slow/down sink) and its children that are not
        # pinned elsewhere (the fast sink) share loadgen's CPU.
        os.sched_setaffinity(0, {pin[1]})

    print("# Switchyard: the issue 10 matrix\n")
    print("```\n" + " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv]) + "\n```\n")
    print(f"- builds: {', '.join(f'{l} = {b}' for l, b in builds)}; loadgen and sinks of "
          f"{builds[-1][0]}")
    print(f"- CPUs: {len(cpus)}; router pinned to {pin[0]}, loadgen + sink + script to {pin[1]}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    print(f"- {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}")
    out = []
    try:
        if "matrix" in modes:
            matrix(args, builds, pin, out)
        if "latency" in modes:
            latency(args, builds, pin, out)
    finally:
        print(f"\n- load average at the end {os.getloadavg()[0]:.2f}")
        write_json(args.json, out)
        shutil.rmtree(args.tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
