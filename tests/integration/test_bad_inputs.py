#!/usr/bin/env python3
"""The catalogue of bad inputs (issue 15 item 4) against the real binary.

  test_bad_inputs.py run --group http|grpc|conn|config --bin build/bin/switchyard
                     --plugin-dir build/lib/switchyard/plugins [--only ID] [--observe]
  test_bad_inputs.py doc [--check docs/reliability.md | --write docs/reliability.md]

`run` starts the router (otlp receiver on HTTP and gRPC, zipkin, jaeger on
thrift_compact, thrift_binary and thrift_http -> otlphttp exporter -> a Python sink)
and sends every entry of the group (tests/integration/bad_inputs/catalogue.py).
For each entry it checks:
  - the answer, in the protocol's terms, is the entry's `expect`;
  - the entry's own metric grew by its `delta`;
  - the router still runs, and a normal client (one small OTLP/HTTP export, and an
    OTLP/gRPC call for the gRPC entries, a Zipkin or Jaeger one for theirs) sent
    right after is answered OK within NORMAL_BOUND_S;
  - the router's peak RSS (VmHWM) stays under RSS_BOUND_MB;
and at the end that every request acknowledged (all the normal clients') reached the
sink exactly once, and nothing smuggled did; the router exits 0 on SIGTERM with no
sanitizer report. The config group runs the binary on each bad file: exit code 1,
the message with file:line:col, within a time and memory bound.

`doc` prints the Markdown table of the catalogue; with --check it fails when the
"Bad inputs" section of the file does not hold exactly that table; --write puts it
there.
"""
import argparse
import os
import resource
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "bad_inputs"))

from harness import Checks, Router, free_port  # noqa: E402
from test_jaeger import metrics as jaeger_metrics  # noqa: E402
from test_otlp_http import trace_request_pb  # noqa: E402

NORMAL_BOUND_S = 0.5    # target 0.1 s; the rest is CI margin
RSS_BOUND_MB = 96       # the router's peak RSS (VmHWM) over a whole group
UDP_WAIT_S = 5.0


def sanitized(binary):
    """True for a binary built with ASan (its shadow memory and slower code get
    wider bounds: 2 s and 512 MB)."""
    with open(binary, "rb") as f:
        return b"__asan_init" in f.read()

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{http_port}
        max_request_body_size: 4MiB
        read_header_timeout: {header_timeout}
        read_timeout: {read_timeout}
        idle_timeout: 20s
        max_connections: {max_conns}
      grpc:
        endpoint: 127.0.0.1:{grpc_port}
        max_recv_msg_size_mib: 4
        read_timeout: 1s
        max_connections: {max_conns}
  zipkin:
    endpoint: 127.0.0.1:{zipkin_port}
    max_request_body_size: 1MiB
  jaeger:
    protocols:
      thrift_compact:
        endpoint: 127.0.0.1:{compact_port}
        max_packet_size: 2000
      thrift_binary:
        endpoint: 127.0.0.1:{binary_port}
        max_packet_size: 2000
      thrift_http:
        endpoint: 127.0.0.1:{jhttp_port}
        max_request_body_size: 1MiB
  prometheus:
    config:
      scrape_configs:
        - job_name: bad-inputs
          scrape_interval: 200ms
          scrape_timeout: 200ms
          body_size_limit: 64KiB
          sample_limit: 1000
          static_configs:
            - targets: ["127.0.0.1:{prom_port}"]
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sink_port}
    compression: none
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [otlp, zipkin, jaeger]
      exporters: [otlphttp]
    metrics:
      receivers: [prometheus]
      exporters: [otlphttp]
"""


class PromTarget:
    """A scrape target: serves `page` (text format 0.0.4), or the pages queued by
    once() each for one scrape."""

    def __init__(self):
        import http.server
        import threading
        from harness import SinkHTTPServer
        target = self
        self.page = (b"good_page 1\n", {})
        self.queue = []
        self.lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_GET(self):
                with target.lock:
                    body, headers = target.queue.pop(0) if target.queue else target.page
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = SinkHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def once(self, body, headers=None):
        with self.lock:
            self.queue.append((body, headers or {}))

    def serve(self, body):
        with self.lock:
            self.page = (body, {})

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Target:
    """The router under test, its ports, its sink and its metrics."""

    def __init__(self, args, header_timeout="2s", read_timeout="3s", max_conns=1024):
        from http_sink import Sink
        self.args = args
        self.sink = Sink()
        self.http_port, self.grpc_port, self.zipkin_port = free_port(), free_port(), free_port()
        self.jhttp_port, self.metrics_port = free_port(), free_port()
        self.compact_port, self.binary_port = free_udp_port(), free_udp_port()
        self.udp_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.prom = PromTarget()
        self.prom_port = self.prom.port
        text = CONFIG.format(sink_port=self.sink.port, header_timeout=header_timeout,
                             read_timeout=read_timeout, max_conns=max_conns, **vars(self))
        self.router = Router(args.bin, [args.plugin_dir], text)
        self.pid = self.router.proc.pid
        self.acked = {}   # marker -> times acknowledged to a normal client

    def udp(self, port, data):
        self.udp_sock.sendto(data, ("127.0.0.1", port))

    def status_kb(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def metrics(self):
        """{name without switchyard_ and _total: the sum of its samples}."""
        out = {}
        for name, value in jaeger_metrics(self.metrics_port).items():
            name = name[len("switchyard_"):] if name.startswith("switchyard_") else name
            name = name[:-len("_total")] if name.endswith("_total") else name
            out[name] = out.get(name, 0) + value
        return out

    def cleanup(self):
        self.router.cleanup()
        self.sink.stop()
        self.prom.stop()
        self.udp_sock.close()


# --- normal clients ---------------------------------------------------------------------

def acked_if(t, marker, send, key, ok):
    """Times send(); counts marker as acknowledged when the answer's `key` is `ok`.
    Returns (0 or 200 when acknowledged, else the answer's value; seconds)."""
    start = time.monotonic()
    a = send()
    took = time.monotonic() - start
    if a.get(key) != ok:
        return a.get(key), took
    t.acked[marker] = t.acked.get(marker, 0) + 1
    return (0 if key == "grpc" else 200), took


def normal_http(t, marker):
    from wire import http_post
    return acked_if(t, marker, lambda: http_post(t.http_port, "/v1/traces",
                                                 trace_request_pb(marker)), "http", 200)


def normal_grpc(t, marker):
    from wire import grpc_message, grpc_unary
    return acked_if(t, marker, lambda: grpc_unary(t.grpc_port,
                                                  grpc_message(trace_request_pb(marker))),
                    "grpc", 0)


def normal_zipkin(t, marker):
    from wire import http_post, zipkin_json
    return acked_if(t, marker, lambda: http_post(t.zipkin_port, "/api/v2/spans",
                                                 zipkin_json(marker), "application/json"),
                    "http", 202)


def normal_jaeger_http(t, marker):
    from wire import http_post, jaeger_binary
    return acked_if(t, marker, lambda: http_post(t.jhttp_port, "/api/traces",
                                                 jaeger_binary(marker.encode(), batch_only=True),
                                                 "application/x-thrift"), "http", 202)


def normal_udp(kind):
    """A good datagram has no answer: it counts as answered once it reaches the sink
    (waited for here, bounded)."""
    def send(t, marker):
        from wire import jaeger_binary, jaeger_compact
        data = jaeger_compact(marker.encode()) if kind == "compact" else \
            jaeger_binary(marker.encode())
        start = time.monotonic()
        t.udp(t.compact_port if kind == "compact" else t.binary_port, data)
        deadline = start + UDP_WAIT_S
        while time.monotonic() < deadline:
            if sink_count(t, marker):
                t.acked[marker] = 1
                return 200, time.monotonic() - start
            time.sleep(0.02)
        return "not delivered", time.monotonic() - start
    return send


def normal_scrape(t, marker):
    """The target serves a page with a metric named after marker: answered once the
    sink has it (a scrape every 200 ms; not counted as acknowledged: each scrape
    sends it again)."""
    name = marker.replace("-", "_").replace(".", "_")
    start = time.monotonic()
    t.prom.serve(b"%s 1\n" % name.encode())
    while time.monotonic() < start + UDP_WAIT_S:
        if sink_count(t, name):
            return 200, time.monotonic() - start
        time.sleep(0.02)
    return "not delivered", time.monotonic() - start


def sink_count(t, marker):
    m = marker.encode()
    return sum(r["body"].count(m) for r in t.sink.received())


def normal_clients(entry):
    """The normal clients sent after an entry: OTLP/HTTP always, and one of the entry's
    own protocol. UDP and scrape ones are timed until their data is at the sink."""
    p = entry["protocol"]
    extra = []
    if "gRPC" in p:
        extra = [("grpc", normal_grpc)]
    elif "Zipkin" in p:
        extra = [("zipkin", normal_zipkin)]
    elif "thrift_http" in p:
        extra = [("jaeger-http", normal_jaeger_http)]
    elif "compact" in p:
        extra = [("jaeger-compact", normal_udp("compact"))]
    elif "binary" in p:
        extra = [("jaeger-binary", normal_udp("binary"))]
    elif "Prometheus" in p:
        extra = [("scrape", normal_scrape)]
    return [("http", normal_http)] + extra


# --- matching ---------------------------------------------------------------------------

def matches(answer, expect):
    for k, v in expect.items():
        if k == "says":
            if v not in answer.get("text", ""):
                return False
        elif answer.get(k) != v:
            return False
    return True


def short(answer):
    return {k: (v[:160] if isinstance(v, str) else v) for k, v in answer.items()
            if k not in ("raw", "headers")}


# --- the groups -------------------------------------------------------------------------

FIGURES = {"peak_kb": 0, "slowest_s": 0.0}


def run_entries(t, entries, check, observe):
    bound = RSS_BOUND_MB * 1024
    for e in entries:
        before = t.metrics()
        start = time.monotonic()
        answer = e["send"](t)
        took = time.monotonic() - start
        metric = e["metric"]
        after = t.metrics()
        if metric:
            deadline = time.monotonic() + UDP_WAIT_S
            while after.get(metric, 0) - before.get(metric, 0) < e["delta"] and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
                after = t.metrics()
        grew = after.get(metric, 0) - before.get(metric, 0) if metric else None
        if observe:
            moved = {k: after[k] - before.get(k, 0) for k in after
                     if after[k] != before.get(k, 0) and "bytes" not in k and "queue" not in k
                     and "memory" not in k and "cpu" not in k and "uptime" not in k}
            print(f"OBSERVE {e['id']}: {short(answer)} in {took:.2f}s; moved {moved}")
        else:
            check(matches(answer, e["expect"]),
                  f"{e['id']}: answered {short(answer)}, expected {e['expect']}")
            if metric:
                check(grew == e["delta"], f"{e['id']}: {metric} grew by {grew} "
                      f"(expected {e['delta']})")
        alive = t.router.proc.poll() is None
        check(alive, f"{e['id']}: router still running")
        if not alive:
            print(t.router.output()[-3000:])
            return
        for name, client in normal_clients(e):
            status, secs = client(t, f"good-after-{e['id']}-{name}")
            if name not in ("jaeger-compact", "jaeger-binary", "scrape"):
                FIGURES["slowest_s"] = max(FIGURES["slowest_s"], secs)
            # A scrape waits for the target's next tick (every 200 ms).
            limit = NORMAL_BOUND_S + (0.4 if name == "scrape" else 0.0)
            check(status in (0, 200) and secs < limit,
                  f"{e['id']}: then a normal {name} client answered OK ({status}) in "
                  f"{secs * 1000:.0f} ms (bound {limit * 1000:.0f} ms)")
        peak = t.status_kb("VmHWM")
        check(peak < bound, f"{e['id']}: router peak RSS {peak / 1024:.1f} MB < {RSS_BOUND_MB} MB")
        FIGURES["peak_kb"] = max(FIGURES["peak_kb"], peak)


def finish(t, check):
    """Every acknowledged request at the sink exactly once; nothing smuggled; exit 0."""
    def all_there():
        return all(sink_count(t, m) >= n for m, n in t.acked.items())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all_there():
        time.sleep(0.1)
    wrong = {m: (n, sink_count(t, m)) for m, n in t.acked.items() if sink_count(t, m) != n}
    check(not wrong, f"all {len(t.acked)} acknowledged normal requests reached the sink exactly "
          f"once (wrong: {dict(list(wrong.items())[:5])})")
    check(sink_count(t, "smuggled!") == 0, "no smuggled request reached the sink")
    rc = t.router.terminate()
    out = t.router.output()
    check(rc == 0 and "Sanitizer" not in out and "runtime error" not in out,
          f"router exits 0 on SIGTERM, no sanitizer report (rc {rc})")
    if rc != 0 or "Sanitizer" in out or "runtime error" in out:
        print(out[-4000:])


def group_entries(group, only):
    from catalogue import ENTRIES
    es = [e for e in ENTRIES if e["group"] == group]
    if only:
        es = [e for e in es if e["id"] in only]
    return es


def run_group(args, check):
    entries = group_entries(args.group, args.only)
    if args.group == "config":
        return run_config_group(args, entries, check)
    if args.group == "conn":
        return run_conn_group(args, entries, check)
    t = Target(args)
    try:
        run_entries(t, entries, check, args.observe)
        finish(t, check)
    finally:
        t.cleanup()


def run_config_group(args, entries, check):
    for e in entries:
        start = time.monotonic()
        answer = e["send"](args)
        took = time.monotonic() - start
        if args.observe:
            print(f"OBSERVE {e['id']}: {short(answer)} in {took:.2f}s, "
                  f"peak RSS {answer.get('maxrss_kb', 0) / 1024:.1f} MB")
            continue
        check(matches(answer, e["expect"]),
              f"{e['id']}: {short(answer)}, expected {e['expect']}")
        check(took < 10, f"{e['id']}: refused in {took:.2f}s (< 10 s)")
        peak = answer.get("maxrss_kb", 0)
        FIGURES["peak_kb"] = max(FIGURES["peak_kb"], peak)
        check(peak < RSS_BOUND_MB * 1024,
              f"{e['id']}: peak RSS while loading {peak / 1024:.1f} MB < {RSS_BOUND_MB} MB")


def run_conn_group(args, entries, check):
    for e in entries:
        t = Target(args, header_timeout="1s", read_timeout="2s", max_conns=200)
        try:
            run_entries(t, [e], check, args.observe)
            finish(t, check)
        finally:
            t.cleanup()


# --- the doc table ----------------------------------------------------------------------

GRPC_CODES = {0: "OK", 3: "INVALID_ARGUMENT", 8: "RESOURCE_EXHAUSTED", 12: "UNIMPLEMENTED",
              13: "INTERNAL", 14: "UNAVAILABLE", 1: "CANCELLED"}
H2_ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
             6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 11: "ENHANCE_YOUR_CALM"}


def answer_text(e):
    x = e["expect"]
    parts = []
    if "http" in x:
        parts.append(f"HTTP {x['http']}")
    if "status" in x:
        parts.append(f"HTTP/2 :status {x['status']}")
    if "grpc" in x:
        parts.append(f"grpc-status {x['grpc']} {GRPC_CODES.get(x['grpc'], '')}".rstrip())
    if "rst" in x:
        parts.append(f"RST_STREAM {H2_ERRORS.get(x['rst'], x['rst'])}")
    if "goaway" in x:
        parts.append(f"GOAWAY {H2_ERRORS.get(x['goaway'], x['goaway'])}")
    if "exit" in x:
        parts.append(f"exit {x['exit']}")
    if "udp" in x:
        parts.append("dropped, counted" if x["udp"] == "dropped" else "accepted")
    if "scrape" in x:
        parts.append("the scrape fails")
    if "says" in x:
        parts.append("«" + x["says"] + "»")
    if x.get("retry_after"):
        parts.append("Retry-After: 1")
    if x.get("closed"):
        parts.append("connection closed")
    if "held" in x:
        parts.append(f"{x['held']} connections held")
    if "during" in x:
        during = f"HTTP {x['during']}" if "http" in x else \
            f"GOAWAY {H2_ERRORS.get(x['during'], x['during'])}"
        parts.append(f"a normal client meanwhile: {during}")
    if e.get("note"):
        parts.append("(" + e["note"] + ")")
    return ", ".join(parts)


def md(s):
    return s.replace("|", "\\|")


def doc_table():
    from catalogue import ENTRIES
    rows = ["| # | id | input | protocol | answer | own metric | test |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for i, e in enumerate(ENTRIES, 1):
        metric = f"`{e['metric']}` +{e['delta']}" if e["metric"] else \
            ("— (the exit status)" if e["group"] == "config" else "—")
        rows.append(f"| {i} | `{e['id']}` | {md(e['input'])} | {e['protocol']} | "
                    f"{md(answer_text(e))} | {metric} | integration.bad_inputs.{e['group']} |")
    return "\n".join(rows) + "\n"


BEGIN = "<!-- bad-inputs table: generated by tests/integration/test_bad_inputs.py doc -->\n"
END = "<!-- end of the bad-inputs table -->\n"


def doc(args):
    table = doc_table()
    if args.write:
        with open(args.write, encoding="utf-8") as f:
            text = f.read()
        if BEGIN not in text or END not in text:
            print(f"FAIL {args.write} has no generated bad-inputs table (markers missing)")
            return 1
        head, rest = text.split(BEGIN, 1)
        with open(args.write, "w", encoding="utf-8") as f:
            f.write(head + BEGIN + table + END + rest.split(END, 1)[1])
        print(f"wrote the table into {args.write}")
        return 0
    if not args.check:
        sys.stdout.write(BEGIN + table + END)
        return 0
    with open(args.check, encoding="utf-8") as f:
        text = f.read()
    if BEGIN not in text or END not in text:
        print(f"FAIL {args.check} has no generated bad-inputs table (markers missing)")
        return 1
    have = text.split(BEGIN, 1)[1].split(END, 1)[0]
    if have != table:
        print(f"FAIL the bad-inputs table of {args.check} is stale: regenerate it with\n"
              f"  python3 tests/integration/test_bad_inputs.py doc")
        return 1
    from catalogue import ENTRIES
    ids = [e["id"] for e in ENTRIES]
    if len(set(ids)) != len(ids):
        print("FAIL duplicate ids in the catalogue")
        return 1
    print(f"ok   the table of {args.check} matches the catalogue ({len(ENTRIES)} entries)")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--group", required=True, choices=["http", "grpc", "conn", "config"])
    r.add_argument("--bin", required=True)
    r.add_argument("--plugin-dir", required=True)
    r.add_argument("--only", action="append")
    r.add_argument("--observe", action="store_true")
    d = sub.add_parser("doc")
    d.add_argument("--check")
    d.add_argument("--write")
    args = ap.parse_args()
    if args.cmd == "doc":
        return doc(args)
    sys.path.insert(0, os.path.join(HERE, "sinks"))
    # 10 000 client sockets here, and as many accepted by the router (which inherits
    # the limit): raised to the hard limit, bounded.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 10500 and args.group == "conn":
        print(f"FAIL the conn group opens 10 000 connections: RLIMIT_NOFILE's hard limit is "
              f"{hard}, at least 10 500 is needed (ulimit -Hn)")
        return 1
    want = 20000 if hard == resource.RLIM_INFINITY else min(hard, 20000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    global NORMAL_BOUND_S, RSS_BOUND_MB
    if sanitized(args.bin):
        NORMAL_BOUND_S, RSS_BOUND_MB = 2.0, 512
    check = Checks()
    start = time.monotonic()
    run_group(args, check)
    print(f"FIGURE group {args.group}: {len(group_entries(args.group, args.only))} entries in "
          f"{time.monotonic() - start:.1f} s; router peak RSS {FIGURES['peak_kb'] / 1024:.1f} MB; "
          f"slowest normal client after a bad input {FIGURES['slowest_s'] * 1000:.0f} ms")
    if check.failures:
        print(f"{len(check.failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
