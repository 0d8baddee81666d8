#!/usr/bin/env python3
"""Configuration reload (SIGHUP and --watch-config) under load, and its edge cases.

  test_reload.py load  --bin B --plugin-dir D --loadgen L --node-dir N --src-dir S
      The router runs otlp (HTTP and gRPC) -> processors -> otlphttp exporters to one
      sink, with health_check. While bench/loadgen (OTLP/HTTP and OTLP/gRPC, open
      loop) and the OpenTelemetry JS SDK exporters (exporter-trace-otlp-proto and
      -grpc, unique span names) send steadily, the configuration file is rewritten
      20 times (--watch-config picks each up): the processors change (batch settings,
      an attributes processor in and out) and so do the exporters (another ID, other
      compression). One rewrite in the middle is invalid and must be refused with its
      file:line:col. Then one SIGHUP with the file unchanged. Checks: 21 reloads and
      1 failed reload in the own metrics; health_check answered 200 on every poll;
      no client saw a refused connection or a failed export; every span loadgen got a
      200 for reached the sink, and no more; every span name the JS exporters got a
      success for reached the sink exactly once, and nothing else did.

  test_reload.py cases --bin B --plugin-dir D
      A keep-alive connection to an unchanged receiver survives a reload; a receiver
      whose endpoint changes moves (old port closed, new one open, data flows); a new
      extension that cannot start (its port is taken) undoes the reload and the old
      configuration runs on; a file that does not parse is refused with its position.

python3 standard library only; every wait is bounded.
"""
import argparse
import http.client as httpclient
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sinks"))
from harness import Checks, Router, free_port, http, read_varint  # noqa: E402
from http_sink import Sink  # noqa: E402

LOAD_SECONDS = 14
RELOADS = 20


def wait_for(what, fn, timeout):
    """True once fn() is true, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if fn():
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    print(f"timed out waiting for {what}")
    return False


# ---- protobuf: the span names of an ExportTraceServiceRequest ----------------------

def fields(buf):
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            _, i = read_varint(buf, i)
        elif wt == 1:
            i += 8
        elif wt == 5:
            i += 4
        elif wt == 2:
            n, i = read_varint(buf, i)
            yield num, buf[i:i + n]
            i += n
        else:
            raise ValueError("wire type %d" % wt)


def span_names(body):
    names = []
    for n1, rs in fields(body):
        if n1 != 1:
            continue
        for n2, ss in fields(rs):
            if n2 != 2:
                continue
            for n3, span in fields(ss):
                if n3 != 2:
                    continue
                name = b""
                for n4, v in fields(span):
                    if n4 == 5:
                        name = v
                names.append(name.decode())
    return names


# ---- configuration ---------------------------------------------------------------------

def config(gen, ports, sink_port, bad=False):
    """The gen-th configuration: processors and exporters change with gen."""
    if bad:
        return "receivers:\n  otlp: {protocols: {http: {endpoint: [unclosed\n"
    procs = [["batch"], ["attributes/tag", "batch"], []][gen % 3]
    exporter = "otlphttp/a" if gen % 2 == 0 else "otlphttp/b"
    compression = "gzip" if gen % 4 < 2 else "none"
    return f"""# generation {gen}
extensions:
  health_check: {{endpoint: "127.0.0.1:{ports['health']}"}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{ports['http']}"}}
      grpc: {{endpoint: "127.0.0.1:{ports['grpc']}"}}
processors:
  batch: {{timeout: {50 + 10 * (gen % 5)}ms, send_batch_size: {200 + gen}}}
  attributes/tag:
    actions:
      - {{key: reload.generation, value: "{gen}", action: upsert}}
exporters:
  otlphttp/a:
    endpoint: "http://127.0.0.1:{sink_port}"
    compression: {compression}
    retry_on_failure: {{enabled: true}}
  otlphttp/b:
    endpoint: "http://127.0.0.1:{sink_port}"
    compression: {compression}
service:
  extensions: [health_check]
  telemetry: {{metrics: {{address: "127.0.0.1:{ports['metrics']}"}}}}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [{", ".join(procs)}]
      exporters: [{exporter}]
"""


def write_atomically(path, text):
    """As editors and ConfigMaps do: a new file renamed over the old."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def metric(port, name):
    status, _, body = http("GET", f"http://127.0.0.1:{port}/metrics")
    if status != 200:
        return None
    total = 0.0
    found = False
    for line in body.decode().splitlines():
        m = re.match(r"^" + re.escape(name) + r"(\{[^}]*\})? (\S+)$", line)
        if m:
            total += float(m.group(2))
            found = True
    return total if found else None


def count_reloaded(router):
    return router.output().count("Configuration reloaded in")


class HealthPoller(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.polls = 0
        self.bad = []

    def run(self):
        while not self.stop.is_set():
            try:
                status = http("GET", f"http://127.0.0.1:{self.port}/", timeout=2.0)[0]
            except OSError as e:
                status = repr(e)
            self.polls += 1
            if status != 200:
                self.bad.append(status)
            time.sleep(0.05)


# ---- load ------------------------------------------------------------------------------

def run_load(a, check):
    ports = {k: free_port() for k in ("http", "grpc", "health", "metrics")}
    sink = Sink()
    router = Router(a.bin, [a.plugin_dir], config(0, ports, sink.port), wait=False,
                    extra_args=["--watch-config"])
    cfg_path = router.config
    procs = []
    try:
        check(router.wait_ready(), "the router starts") or router.dump()
        poller = HealthPoller(ports["health"])
        poller.start()
        # Load: loadgen over HTTP and gRPC (open loop), the JS SDK over HTTP and gRPC.
        lg = [a.loadgen, "--duration", str(LOAD_SECONDS), "--rate", "60", "--connections", "2",
              "--spans-per-request", "50", "--attrs", "2", "--out", "json"]
        procs.append(("loadgen-http", subprocess.Popen(
            lg + ["--url", f"http://127.0.0.1:{ports['http']}/v1/traces"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
        procs.append(("loadgen-grpc", subprocess.Popen(
            lg + ["--protocol", "grpc", "--url", f"http://127.0.0.1:{ports['grpc']}", "--seed", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
        script = os.path.join(os.path.abspath(a.node_dir), "reload_load.mjs")
        with open(os.path.join(a.src_dir, "reload_load.mjs")) as src, open(script, "w") as dst:
            dst.write(src.read())
        for proto, url in (("http", f"http://127.0.0.1:{ports['http']}"),
                           ("grpc", f"http://127.0.0.1:{ports['grpc']}")):
            procs.append((f"js-{proto}", subprocess.Popen(
                ["node", script, "--endpoint", url, "--protocol", proto, "--prefix", f"js{proto}",
                 "--seconds", str(LOAD_SECONDS - 2), "--out", os.path.join(router.dir, f"js-{proto}.json")],
                cwd=a.node_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))

        # 20 reloads through --watch-config, one invalid file in the middle.
        time.sleep(1.0)
        gap = (LOAD_SECONDS - 4.0) / RELOADS
        for gen in range(1, RELOADS + 1):
            before = count_reloaded(router)
            write_atomically(cfg_path, config(gen, ports, sink.port))
            ok = wait_for(f"reload {gen}", lambda: count_reloaded(router) > before, 20.0)
            check(ok, f"reload {gen} applied")
            if gen == RELOADS // 2:
                fails = router.output().count("reload refused")
                write_atomically(cfg_path, config(gen, ports, sink.port, bad=True))
                check(wait_for("refusal", lambda: router.output().count("reload refused") > fails,
                               10.0), "an invalid file is refused")
                check(re.search(r"config\.yaml:3:\d+: .*\n.*reload refused", router.output())
                      is not None, "the refusal names file:line:col")
                write_atomically(cfg_path, config(gen, ports, sink.port))
                check(wait_for("reload after refusal", lambda: count_reloaded(router) > before + 1,
                               10.0), "the valid file is applied again after the refusal")
            time.sleep(gap)
        # SIGHUP with nothing changed: everything is kept.
        before = count_reloaded(router)
        router.proc.send_signal(signal.SIGHUP)
        check(wait_for("SIGHUP reload", lambda: count_reloaded(router) > before, 10.0),
              "SIGHUP reloads")

        results = {}
        for name, p in procs:
            out, err = p.communicate(timeout=LOAD_SECONDS + 90)
            if p.returncode != 0:
                print(f"{name} exited {p.returncode}: {err.decode()[-2000:]}")
            check(p.returncode == 0 or name.startswith("loadgen"), f"{name} ran to the end")
            if name.startswith("js-"):
                path = os.path.join(router.dir, f"{name}.json")
                out = open(path, "rb").read() if os.path.exists(path) else b""
            lines = out.decode().strip().splitlines()
            results[name] = json.loads(lines[-1]) if lines else {}
        poller.stop.set()
        poller.join(5)

        # Own metrics before stopping.
        reloads = metric(ports["metrics"], "switchyard_config_reloads_total")
        failures = metric(ports["metrics"], "switchyard_config_reload_failures_total")
        check(reloads == RELOADS + 2, f"config_reloads_total is {RELOADS + 2} ({reloads})")
        check(failures == 1, f"config_reload_failures_total is 1 ({failures})")
        check(poller.polls > 50 and not poller.bad,
              f"health_check answered 200 on all {poller.polls} polls (other: {poller.bad[:5]})")
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
        rc = router.stop()
    check(rc == 0, f"the router exits 0 ({rc})")

    # What the clients were told against what reached the sink.
    names = []
    for r in sink.received():
        names.extend(span_names(r["body"]))
    js_seen = {}
    other = 0
    for n in names:
        if n.startswith("jshttp-") or n.startswith("jsgrpc-"):
            js_seen[n] = js_seen.get(n, 0) + 1
        else:
            other += 1
    lg_acked = 0
    for name in ("loadgen-http", "loadgen-grpc"):
        s = results.get(name, {})
        print(f"{name}: {json.dumps(s)[:400]}")
        check(s.get("conn_errors", 1) == 0 and s.get("errors", 1) == 0,
              f"{name}: no refused connection, no broken request")
        lg_acked += s.get("accepted_spans", 0)
    check(lg_acked > 0 and other == lg_acked,
          f"loadgen: every acknowledged span reached the sink once ({other} at the sink, "
          f"{lg_acked} acknowledged)")
    acked = set()
    for name in ("js-http", "js-grpc"):
        s = results.get(name, {})
        check(not s.get("failed"), f"{name}: no export failed ({len(s.get('failed', []))}: "
                                   f"{s.get('errors')})")
        acked.update(s.get("acked", []))
        print(f"{name}: {len(s.get('acked', []))} spans acknowledged")
    lost = [n for n in acked if n not in js_seen]
    dup = [n for n, c in js_seen.items() if c > 1]
    extra = [n for n in js_seen if n not in acked]
    check(len(acked) > 100, f"the JS exporters sent steadily ({len(acked)} spans)")
    check(not lost, f"no acknowledged JS span lost ({len(lost)}: {lost[:5]})")
    check(not dup, f"no JS span duplicated ({len(dup)}: {dup[:5]})")
    check(not extra, f"nothing unacknowledged arrived ({len(extra)}: {extra[:5]})")
    print(f"reload under load: {RELOADS} reloads + 1 refused + 1 SIGHUP; loadgen "
          f"{lg_acked} spans acknowledged, {other} delivered; JS {len(acked)} acknowledged, "
          f"{len(js_seen)} delivered; lost {len(lost)}, duplicated {len(dup)}")


# ---- cases -----------------------------------------------------------------------------

def simple_config(http_port, health_port, metrics_port, extra_ext=""):
    exts = "[health_check" + (", health_check/2" if extra_ext else "") + "]"
    return f"""extensions:
  health_check: {{endpoint: "127.0.0.1:{health_port}"}}
{extra_ext}receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{http_port}"}}
exporters:
  debug: {{verbosity: basic}}
service:
  extensions: {exts}
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics_port}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [debug]}}
"""


TRACE = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
    "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
    "name": "x"}]}]}]}).encode()


def post(conn):
    conn.request("POST", "/v1/traces", body=TRACE, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def reload_and_wait(router, cfg_path, text, what="Configuration reloaded in"):
    before = router.output().count(what)
    write_atomically(cfg_path, text)
    router.proc.send_signal(signal.SIGHUP)
    return wait_for(what, lambda: router.output().count(what) > before, 15.0)


def run_cases(a, check):
    hp, hp2, health, metrics = free_port(), free_port(), free_port(), free_port()
    router = Router(a.bin, [a.plugin_dir], simple_config(hp, health, metrics), wait=False)
    cfg_path = router.config
    try:
        check(router.wait_ready(), "the router starts") or router.dump()
        conn = httpclient.HTTPConnection("127.0.0.1", hp, timeout=5)
        check(post(conn) == 200, "a keep-alive connection posts")
        # The same config with only a debug setting changed: the receiver is kept.
        text = simple_config(hp, health, metrics).replace("verbosity: basic",
                                                          "verbosity: normal")
        check(reload_and_wait(router, cfg_path, text), "reload with a changed exporter")
        check(post(conn) == 200, "the same keep-alive connection posts after the reload")
        conn.close()

        # The receiver moves to another port.
        check(reload_and_wait(router, cfg_path, simple_config(hp2, health, metrics)),
              "reload with a new receiver endpoint")
        try:
            socket.create_connection(("127.0.0.1", hp), timeout=2).close()
            old_open = True
        except OSError:
            old_open = False
        check(not old_open, "the old port is closed")
        c2 = httpclient.HTTPConnection("127.0.0.1", hp2, timeout=5)
        check(post(c2) == 200, "the new port accepts")
        c2.close()

        # An extension that cannot start: the reload is undone.
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        ext = f'  health_check/2: {{endpoint: "127.0.0.1:{busy}"}}\n'
        check(reload_and_wait(router, cfg_path, simple_config(hp2, health, metrics, ext),
                              what="the running configuration stays"),
              "a reload whose new extension cannot start is undone")
        taken.close()
        c3 = httpclient.HTTPConnection("127.0.0.1", hp2, timeout=5)
        check(post(c3) == 200, "the old configuration still runs after the undone reload")
        c3.close()
        st = http("GET", f"http://127.0.0.1:{health}/")[0]
        check(st == 200, f"health_check answers 200 after the undone reload ({st})")

        # The token of an authenticator changes: the extension restarts and so does
        # the receiver that names it (after the extension); old token 401, new 200.
        def auth_config(token):
            return f"""extensions:
  health_check: {{endpoint: "127.0.0.1:{health}"}}
  bearertokenauth/in: {{token: "{token}"}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{hp2}", auth: {{authenticator: bearertokenauth/in}}}}
exporters:
  debug: {{verbosity: basic}}
service:
  extensions: [health_check, bearertokenauth/in]
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [debug]}}
"""

        def post_token(token):
            c = httpclient.HTTPConnection("127.0.0.1", hp2, timeout=5)
            try:
                c.request("POST", "/v1/traces", body=TRACE,
                          headers={"Content-Type": "application/json",
                                   "Authorization": f"Bearer {token}"})
                r = c.getresponse()
                r.read()
                return r.status
            finally:
                c.close()

        check(reload_and_wait(router, cfg_path, auth_config("first")), "reload adding auth")
        check(post_token("first") == 200 and post_token("second") == 401,
              "the first token is accepted, another refused")
        check(reload_and_wait(router, cfg_path, auth_config("second")), "reload changing the token")
        check(post_token("second") == 200 and post_token("first") == 401,
              "after the reload the new token is accepted and the old one refused")

        # A file that does not parse.
        check(reload_and_wait(router, cfg_path, "receivers: [\n", what="reload refused"),
              "an unparsable file is refused")
        check(re.search(r"config\.yaml:\d+:\d+: ", router.output()) is not None,
              "with its file:line:col")
        ok = metric(metrics, "switchyard_config_reloads_total")
        bad = metric(metrics, "switchyard_config_reload_failures_total")
        check(ok == 4 and bad == 2, f"4 reloads applied, 2 failed ({ok}, {bad})")
        debug_lines = router.output().count('"spans": 1}')
        check(debug_lines == 6, f"the debug exporters printed the 6 spans ({debug_lines})")
    finally:
        rc = router.stop()
    check(rc == 0, f"the router exits 0 ({rc})")


def run_storage(a, check):
    """A changed exporter with a persistent queue: the new one takes over the queue's
    files from the old one (the old closes them once its requests in flight end)."""
    hp, metrics = free_port(), free_port()
    sink = Sink()
    sink.stop()  # the backend is down
    qdir = tempfile.mkdtemp(prefix="sy_reload_q_")

    def cfg(compression):
        return f"""extensions:
  file_storage: {{directory: "{qdir}"}}
receivers:
  otlp:
    protocols:
      http: {{endpoint: "127.0.0.1:{hp}"}}
exporters:
  otlphttp:
    endpoint: "http://127.0.0.1:{sink.port}"
    compression: {compression}
    retry_on_failure: {{initial_interval: 100ms, max_interval: 200ms}}
    sending_queue: {{storage: file_storage}}
service:
  extensions: [file_storage]
  telemetry: {{metrics: {{address: "127.0.0.1:{metrics}"}}}}
  pipelines:
    traces: {{receivers: [otlp], exporters: [otlphttp]}}
"""
    router = Router(a.bin, [a.plugin_dir], cfg("gzip"), wait=False)
    try:
        check(router.wait_ready(), "the router starts with a persistent queue") or router.dump()
        names = [f"stored-{i}" for i in range(10)]
        for n in names:
            body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{
                "traceId": "0102030405060708090a0b0c0d0e0f10", "spanId": "0102030405060708",
                "name": n}]}]}]}).encode()
            st = http("POST", f"http://127.0.0.1:{hp}/v1/traces", body,
                      {"Content-Type": "application/json"})[0]
            check(st == 200, f"{n} acknowledged ({st})")
        check(wait_for("records on disk",
                       lambda: (metric(metrics, "switchyard_exporter_persistent_queue_records")
                                or 0) >= 1, 10.0), "the spans are in the persistent queue")
        check(reload_and_wait(router, router.config, cfg("none")), "reload changing the exporter")
        out = router.output()
        check("reload failed" not in out, "the reload did not fail")
        if "cannot open" in out:
            print("(the new exporter's first start found the queue still open: retried)")
        sink.start()
        got = lambda: {n for r in sink.received() for n in span_names_json_or_proto(r)}
        check(wait_for("delivery", lambda: set(names) <= got(), 20.0),
              f"every stored span delivered after the reload ({len(got() & set(names))}/10)")
    finally:
        rc = router.stop()
        if rc != 0:
            router.dump(40)
        shutil.rmtree(qdir, ignore_errors=True)
    check(rc == 0, f"the router exits 0 ({rc})")


def span_names_json_or_proto(r):
    body = r["body"]
    if r["headers"].get("Content-Type", "").startswith("application/json"):
        doc = json.loads(body)
        return [sp.get("name", "") for rs in doc.get("resourceSpans", [])
                for ss in rs.get("scopeSpans", []) for sp in ss.get("spans", [])]
    return span_names(body)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["load", "cases", "storage"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--loadgen")
    ap.add_argument("--node-dir")
    ap.add_argument("--src-dir")
    a = ap.parse_args()
    check = Checks()
    if a.mode == "load":
        run_load(a, check)
    elif a.mode == "storage":
        run_storage(a, check)
    else:
        run_cases(a, check)
    if check.failures:
        print(f"{len(check.failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
