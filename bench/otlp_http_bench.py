#!/usr/bin/env python3
"""OTLP/HTTP benchmark of Switchyard: ready time, idle and peak memory, spans per
CPU-second of the router, the load generator's latency, and sizes on disk.

Builds nothing: give it a build directory holding bin/switchyard, bin/loadgen and
lib/switchyard/plugins/ (a Release build, for figures worth quoting):

    bench/otlp_http_bench.py --build-dir build-bench

For each pipeline variant (bench/configs/otlp_http_<variant>.yaml), each number of
connections and with and without gzip, it starts the router, waits for "Everything
is ready", reads the router's CPU time (utime + stime of all its threads, from
/proc/PID/stat), runs loadgen for --duration seconds, reads the CPU time again and
the peak RSS (VmHWM), and stops the router with SIGTERM (which must exit 0). The
router and loadgen are pinned to different CPUs when there are two or more (the
same as `taskset -c 0 switchyard ...` and `taskset -c 1 loadgen ...`), so the
router runs on one core and its spans per CPU-second is the figure to compare.

Ports are picked free at random, so runs never collide with another router.
Results go to stdout as Markdown tables, and with --json FILE as JSON lines.

A/B mode: with --build-dir-b (e.g. a build of the previous commit), every load
cell runs on both builds, one right after the other, the order alternating with
each --repeat (A B, B A, A B, ...), so that both see the same machine; a last
table gives, per cell, the median of each build and the ratio B/A. The machines
here are shared and noisy: compare such ratios, not absolute figures from
different runs.

    git worktree add /tmp/prev HEAD~1 && cmake -S /tmp/prev -B build-prev \
        -DCMAKE_BUILD_TYPE=Release && cmake --build build-prev -j2
    bench/otlp_http_bench.py --build-dir build-prev --build-dir-b build-bench \
        --variants batch_otlphttp_gzip --connections 4 --repeat 4 --ready-runs 3
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
READY = b"Everything is ready"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, key):
    """A kB figure (VmRSS, VmHWM) from /proc/PID/status, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_cpu_seconds(pid):
    """utime + stime of every thread of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # The command name may hold spaces: the fields start after its closing ')'.
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_minor_faults(pid):
    """Minor page faults of every thread of pid so far (field 10 of /proc/PID/stat):
    pages the kernel had to map on first touch, e.g. fresh malloc/mmap blocks."""
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[7])


def proc_runqueue_wait_seconds(pid):
    """Time the threads of pid spent runnable but waiting for a CPU, in seconds
    (the second field of /proc/PID/task/TID/schedstat): on a shared machine, the
    share of the router's core that other processes took."""
    total = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                pass
    except OSError:
        pass
    return total / 1e9


class Router:
    """A switchyard process started with one config, its stderr drained by a thread
    (the debug exporter writes there; a full pipe would stall the router)."""

    def __init__(self, build, config, cpu=None, timeout=10.0, port=None, args=(), on_line=None,
                 **env_extra):
        # port: the one to listen on (default: a free one); args: more command-line
        # arguments (--set ...); on_line: called with each line of output after ready.
        self.port = port or free_port()
        self.metrics_port = free_port()
        self.on_line = on_line
        env = dict(os.environ, SY_BENCH_PORT=str(self.port),
                   SY_BENCH_METRICS_PORT=str(self.metrics_port), **env_extra)
        argv = [os.path.join(build, "bin", "switchyard"), "--config", config, *args]
        pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.tail = []
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=pre)
        self.ready_s = self._wait_ready(t0, timeout)
        self.lines = 0
        self.drainer = threading.Thread(target=self._drain, daemon=True)
        self.drainer.start()

    def _wait_ready(self, t0, timeout):
        deadline = t0 + timeout
        err = self.proc.stderr
        while time.perf_counter() < deadline:
            line = err.readline()
            if not line:
                break
            if READY in line:
                return time.perf_counter() - t0
            self.tail.append(line.decode(errors="replace").rstrip())
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("switchyard did not get ready:\n" + "\n".join(self.tail[-20:]))

    def _drain(self):
        for line in self.proc.stderr:
            self.lines += 1
            if self.on_line:
                self.on_line(line)
            if len(self.tail) < 200 and b"\tinfo\t" not in line:
                self.tail.append(line.decode(errors="replace").rstrip())

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=30):
        """SIGTERM, and the exit status (0 after a clean drain)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            self.tail.append("(killed: did not stop within %ds of SIGTERM)" % timeout)
        self.drainer.join(5)
        return rc


class NginxProxy:
    """nginx (the variant "nginx", bench/configs/otlp_http_nginx.conf) proxying to
    the sink, in one process pinned like the router: the floor to compare
    pass-through with. Same interface as Router."""

    def __init__(self, config, cpu=None, timeout=10.0, **env_extra):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not os.access(nginx, os.X_OK):
            raise RuntimeError("the nginx variant needs nginx (apt-get install nginx-light)")
        self.port = free_port()
        self.metrics_port = free_port()  # nothing listens: no own metrics
        self.dir = tempfile.mkdtemp(prefix="sy-bench-nginx-")
        with open(config) as f:
            text = f.read()
        for k, v in (("SY_BENCH_PORT", str(self.port)), ("DIR", self.dir),
                     ("SY_BENCH_SINK", env_extra.get("SY_BENCH_SINK", ""))):
            text = text.replace("${" + k + "}", v)
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(text)
        pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.tail = []
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([nginx, "-p", self.dir, "-c", conf], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=pre)
        while time.perf_counter() < t0 + timeout:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: " + self.proc.stderr.read().decode(errors="replace"))
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        self.ready_s = time.perf_counter() - t0
        self.drainer = threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True)
        self.drainer.start()

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=30):
        self.proc.send_signal(signal.SIGQUIT)  # graceful
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return 0


def start_server(build, config, cpu=None, **env):
    """The router, or nginx for the nginx variant."""
    if config.endswith(".conf"):
        return NginxProxy(config, cpu=cpu, **env)
    return Router(build, config, cpu=cpu, **env)


# --loadgen-build: the build whose loadgen drives every cell (None: each cell's own).
LOADGEN_BUILD = None


def run_loadgen(build, url, duration, connections, gzip, cpu, extra):
    argv = [os.path.join(LOADGEN_BUILD or build, "bin", "loadgen"), "--url", url, "--duration", str(duration),
            "--connections", str(connections), "--out", "json"] + extra
    if gzip:
        argv.append("--gzip")
    pre = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         preexec_fn=pre)
    out = p.stdout.read()
    p.stdout.close()
    # wait4 rather than wait: it also gives loadgen's own CPU time.
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if not out.strip():
        raise RuntimeError(f"loadgen failed (exit {p.returncode})")
    res = json.loads(out.decode().strip().splitlines()[-1])
    res["loadgen_rc"] = p.returncode
    res["loadgen_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    return res


def needs_sink(config):
    """A config that sends on (an otlphttp exporter) names SY_BENCH_SINK: it gets a
    second router, bench/configs/otlp_http_nop.yaml (OTLP/HTTP -> nop), as its sink."""
    with open(config) as f:
        return "SY_BENCH_SINK" in f.read()


def start_sink(build, config, cpu):
    if not needs_sink(config):
        return None, {}
    sink = Router(build, os.path.join(HERE, "configs", "otlp_http_nop.yaml"), cpu=cpu)
    return sink, {"SY_BENCH_SINK": f"127.0.0.1:{sink.port}"}


def measure_ready(build, config, runs):
    """Start-to-ready times (ms) and idle RSS (kB) over several starts, unpinned."""
    ready, rss, rss_1s = [], [], []
    sink, env = start_sink(build, config, None)
    for i in range(runs):
        r = Router(build, config, **env)
        ready.append(r.ready_s * 1e3)
        rss.append(proc_status(r.pid, "VmRSS"))
        if i == 0:
            time.sleep(1.0)
            rss_1s.append(proc_status(r.pid, "VmRSS"))
        rc = r.stop()
        if rc != 0:
            raise RuntimeError(f"switchyard exited {rc} on SIGTERM:\n" + "\n".join(r.tail[-20:]))
    if sink is not None:
        sink.stop()
    return {"ready_ms_median": statistics.median(ready), "ready_ms_min": min(ready),
            "ready_ms_max": max(ready), "idle_rss_kb_median": statistics.median(rss),
            "idle_rss_kb_after_1s": rss_1s[0], "runs": runs}


def measure_load(build, config, duration, connections, gzip, cpus, extra, loadgen_build=None):
    router_cpu, loadgen_cpu = cpus
    # The sink (if the config has one) shares loadgen's CPU; its CPU time is not
    # counted.
    sink, env = start_sink(build, config, loadgen_cpu)
    r = start_server(build, config, cpu=router_cpu, **env)
    url = f"http://127.0.0.1:{r.port}/v1/traces"
    try:
        time.sleep(0.2)
        rss_before = proc_status(r.pid, "VmRSS")
        cpu0 = proc_cpu_seconds(r.pid)
        flt0 = proc_minor_faults(r.pid)
        wait0 = proc_runqueue_wait_seconds(r.pid)
        t0 = time.perf_counter()
        lg = run_loadgen(loadgen_build or build, url, duration, connections, gzip, loadgen_cpu,
                         extra)
        wall = time.perf_counter() - t0
        cpu1 = proc_cpu_seconds(r.pid)
        flt1 = proc_minor_faults(r.pid)
        wait1 = proc_runqueue_wait_seconds(r.pid)
        hwm = proc_status(r.pid, "VmHWM")
        held = tail_sampling_held(r, rss_before)
    finally:
        rc = r.stop()
        if sink is not None:
            sink_rc = sink.stop()
            if sink_rc != 0:
                rc = rc or 100 + sink_rc
    cpu = cpu1 - cpu0
    res = {
        "config": os.path.basename(config), "connections": connections, "gzip": gzip,
        "router_cpu_s": round(cpu, 3), "wall_s": round(wall, 3),
        "router_cpu_util": round(cpu / wall, 3) if wall > 0 else None,
        "router_wait_util": round((wait1 - wait0) / wall, 3) if wall > 0 else None,
        "spans_per_cpu_s": round(lg["accepted_spans"] / cpu) if cpu > 0 else None,
        "minor_faults": flt1 - flt0,
        "minor_faults_per_request": round((flt1 - flt0) / lg["accepted"], 1)
        if lg.get("accepted") else None,
        "rss_before_kb": rss_before, "peak_rss_kb": hwm, "router_exit": rc,
        "loadgen": lg,
    }
    if held:
        res["tail_sampling"] = held
    if rc != 0:
        res["router_tail"] = r.tail[-20:]
    return res


def tail_sampling_held(r, rss_before_kb):
    """For a router with a tail_sampling processor: what it holds once loadgen is
    done (traces, spans, bytes from its own gauges) and the RSS it costs, per
    10 000 traces (RSS now less RSS before the load). None without the processor."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{r.metrics_port}/metrics", timeout=5) as f:
            text = f.read().decode()
    except OSError:
        return None
    vals = {}
    for line in text.splitlines():
        for k in ("traces", "spans", "bytes"):
            if line.startswith(f"switchyard_processor_tail_sampling_sampling_{k}_on_memory{{"):
                vals[k] = float(line.rsplit(" ", 1)[1])
    if not vals.get("traces"):
        return None
    rss = proc_status(r.pid, "VmRSS")
    vals["rss_kb"] = rss
    vals["rss_kb_per_10k_traces"] = round((rss - rss_before_kb) * 10000 / vals["traces"])
    return vals


def sizes(build):
    """Bytes on disk of the binary and each plugin, as built and stripped."""
    files = [os.path.join(build, "bin", "switchyard")]
    pdir = os.path.join(build, "lib", "switchyard", "plugins")
    files += sorted(os.path.join(pdir, f) for f in os.listdir(pdir) if f.endswith(".so"))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            dst = os.path.join(tmp, os.path.basename(f))
            shutil.copyfile(f, dst)
            stripped = None
            if shutil.which("strip"):
                subprocess.run(["strip", "--strip-unneeded", dst], check=True)
                stripped = os.path.getsize(dst)
            out.append({"file": os.path.relpath(f, build), "bytes": os.path.getsize(f),
                        "stripped": stripped})
    return out


def fmt_k(v):
    return "%.2f M" % (v / 1e6) if v >= 1e6 else "%.0f K" % (v / 1e3)


def print_load_row(label, v, c, g, r):
    lg = r["loadgen"]
    spc = fmt_k(r["spans_per_cpu_s"]) if r["spans_per_cpu_s"] else "n/a"
    print(f"| {label} | {v} | {c} | {'on' if g else 'off'} | {spc} | "
          f"{fmt_k(lg['spans_per_s'])} | {r['router_cpu_util'] * 100:.0f} % | "
          f"{lg['requests_per_s']:.0f} | {lg['refused']} | "
          f"{lg['errors'] + lg['failed']} | {lg['p50_us'] / 1e3:.2f} | "
          f"{lg['p90_us'] / 1e3:.2f} | {lg['p99_us'] / 1e3:.2f} | "
          f"{lg['p999_us'] / 1e3:.2f} | {lg['max_us'] / 1e3:.2f} | "
          f"{r['peak_rss_kb']} | "
          f"{lg['loadgen_cpu_s'] / r['wall_s'] * 100:.0f} % | "
          f"{r['router_wait_util'] * 100:.0f} % | {r['router_exit']} | "
          f"{r['minor_faults_per_request']} |",
          flush=True)
    if r.get("tail_sampling"):
        ts = r["tail_sampling"]
        print(f"|   |   | tail_sampling held after the run: {ts['traces']:.0f} traces, "
              f"{ts['spans']:.0f} spans, {ts['bytes'] / 1e6:.1f} MB counted; RSS "
              f"{ts['rss_kb']} kB, {ts['rss_kb_per_10k_traces']} kB per 10 000 "
              f"traces held |" + " |" * 16, flush=True)
    if r["router_exit"] != 0:
        print("router output:\n" + "\n".join(r.get("router_tail", [])), file=sys.stderr)


def table_head(title, columns):
    """A '## title' and the head of a Markdown table with these columns."""
    print(f"\n## {title}\n")
    print("| " + " | ".join(columns) + " |")
    print("| " + " | ".join(["---"] * len(columns)) + " |")


def ab_medians(by, label):
    """The medians over the results by[label] of an A/B cell: spans per CPU-second,
    p50 and p99 ms, peak RSS kB (None when there is none)."""
    fields = {"spc": lambda r: r["spans_per_cpu_s"],
              "p50": lambda r: r["loadgen"]["p50_us"] / 1e3,
              "p99": lambda r: r["loadgen"]["p99_us"] / 1e3,
              "rss": lambda r: r["peak_rss_kb"]}
    out = {}
    for k, f in fields.items():
        vals = [f(r) for r in by.get(label, []) if f(r) is not None]
        out[k] = statistics.median(vals) if vals else None
    return out


def ab_cells(A, B):
    """'spans/CPU-s A | B | B/A' of two ab_medians()."""
    a, b = A["spc"], B["spc"]
    return (f"{fmt_k(a) if a else 'n/a'} | {fmt_k(b) if b else 'n/a'} | "
            f"{f'{b / a:.2f}' if a and b else 'n/a'}")


def builds_of(args):
    """[(label, build dir)] of --build-dir (and --build-dir-b); exits when one lacks
    its binaries."""
    builds = [(args.label_a, os.path.abspath(args.build_dir))]
    if args.build_dir_b:
        builds.append((args.label_b, os.path.abspath(args.build_dir_b)))
    for _, b in builds:
        for exe in ("switchyard", "loadgen"):
            if not os.access(os.path.join(b, "bin", exe), os.X_OK):
                sys.exit(f"no {exe} in {b}/bin: build it first")
    return builds


def write_json(path, results):
    """Every result as a JSON line into path (nothing when path is None)."""
    if path:
        with open(path, "w") as f:
            for r in results:
                f.write(json.dumps(r) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--build-dir-b", help="A/B mode: a second build, run interleaved")
    ap.add_argument("--label-a", default="A")
    ap.add_argument("--label-b", default="B")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--ready-runs", type=int, default=20)
    ap.add_argument("--variants", default="batch_nop,nop,batch_debug",
                    help="bench/configs/otlp_http_<variant>.yaml, comma-separated")
    ap.add_argument("--connections", default="1,4")
    ap.add_argument("--gzip", default="off,on", help="off, on, or off,on")
    ap.add_argument("--loadgen-args", default="", help="more loadgen options, one string")
    ap.add_argument("--loadgen-build", default=None,
                    help="take bin/loadgen from this build for every cell (A/B against a base "
                         "whose loadgen lacks an option, e.g. --unique-traces)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the load table this many times, the variants alternating")
    ap.add_argument("--json", help="also write every result to this file as JSON lines")
    args = ap.parse_args()
    global LOADGEN_BUILD
    LOADGEN_BUILD = os.path.abspath(args.loadgen_build) if args.loadgen_build else None

    builds = builds_of(args)
    build = builds[0][1]
    ncpu = len(os.sched_getaffinity(0))
    cpus = sorted(os.sched_getaffinity(0))
    pin = (cpus[0], cpus[1]) if ncpu >= 2 else (None, None)
    cfg = lambda v: os.path.join(HERE, "configs",
                                 f"otlp_http_{v}.conf" if v.startswith("nginx") else f"otlp_http_{v}.yaml")
    variants = [v for v in args.variants.split(",") if v]
    conns = [int(c) for c in args.connections.split(",") if c]
    gzips = [g == "on" for g in args.gzip.split(",") if g]
    extra = shlex.split(args.loadgen_args)
    results = []

    print(f"# switchyard OTLP/HTTP benchmark ({', '.join(f'{l}: {b}' for l, b in builds)})\n")
    print(f"- CPUs: {ncpu}; router pinned to {pin[0]}, loadgen to {pin[1]}")
    print(f"- load: {args.duration:g} s per cell, loadgen defaults "
          f"(512 spans x 10 attributes per request) {args.loadgen_args}\n")

    print("## Start-up (unpinned, median of %d starts)\n" % args.ready_runs)
    print("| config | ready median ms | min | max | idle RSS kB | idle RSS after 1 s kB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for v in variants:
        if v.startswith("nginx"):
            continue
        r = measure_ready(build, cfg(v), args.ready_runs)
        r.update(kind="ready", config=f"otlp_http_{v}.yaml")
        results.append(r)
        print(f"| {v} | {r['ready_ms_median']:.2f} | {r['ready_ms_min']:.2f} | "
              f"{r['ready_ms_max']:.2f} | {r['idle_rss_kb_median']:.0f} | "
              f"{r['idle_rss_kb_after_1s']} |", flush=True)

    print("\n## Load\n")
    print("| build | config | conns | gzip | spans/CPU-s | spans/s | router CPU | req/s | refused | "
          "errors | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | peak RSS kB | loadgen CPU | router waiting | exit | minor faults/req |")
    print("| " + " | ".join(["---"] * 20) + " |")
    cells = {}
    for v, rep in [(v, rep) for rep in range(args.repeat) for v in variants]:
        for c in conns:
            for g in gzips:
                order = builds if rep % 2 == 0 else builds[::-1]
                for label, b in order:
                    r = measure_load(b, cfg(v), args.duration, c, g, pin, extra)
                    r["kind"] = "load"
                    r["repeat"] = rep
                    r["build"] = label
                    results.append(r)
                    cells.setdefault((v, c, g), {}).setdefault(label, []).append(r)
                    print_load_row(label, v, c, g, r)

    if len(builds) == 2:
        la, lb = builds[0][0], builds[1][0]
        table_head(f"A/B: medians over {args.repeat} interleaved runs ({la} = A, {lb} = B)",
                   ["config", "conns", "gzip", "spans/CPU-s A", "spans/CPU-s B", "B/A", "p50 ms A",
                    "p50 ms B", "p99 ms A", "p99 ms B", "peak RSS kB A", "peak RSS kB B"])
        for (v, c, g), by in cells.items():
            A, B = ab_medians(by, la), ab_medians(by, lb)
            print(f"| {v} | {c} | {'on' if g else 'off'} | {ab_cells(A, B)} | {A['p50']:.2f} | "
                  f"{B['p50']:.2f} | {A['p99']:.2f} | {B['p99']:.2f} | {A['rss']:.0f} | "
                  f"{B['rss']:.0f} |", flush=True)

    print("\n## Sizes on disk\n")
    print("| file | bytes | stripped |")
    print("| --- | --- | --- |")
    total = [0, 0]
    for s in sizes(build):
        results.append(dict(s, kind="size"))
        total[0] += s["bytes"]
        total[1] += s["stripped"] or 0
        print(f"| {s['file']} | {s['bytes']} | {s['stripped']} |")
    print(f"| total | {total[0]} | {total[1]} |")

    write_json(args.json, results)


if __name__ == "__main__":
    main()
