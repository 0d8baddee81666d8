#!/usr/bin/env python3
"""The zpages extension through the real binary and loader.

  test_zpages.py api --bin BIN --plugin-dir DIR --kit-dir DIR
      /api/status against the router's own /metrics (under load: every counter
      between two scrapes around it; at rest: equal), the graph it describes,
      the last errors it carries, /debug/servicez and /debug/pipelinez, HTML
      escaping of an awkward component ID, 404 / 405 / HEAD, a bad endpoint
      refused by `validate`, an endpoint in use failing the start.

  test_zpages.py browser --bin BIN --plugin-dir DIR --kit-dir DIR
                         --src-dir tests/integration/node_zpages --node-dir BUILD/zpages-node
                         --out-dir BUILD/test-output
      The page in a real browser: Debian's chromium, driven headless by
      playwright-core from npm (node_zpages/check.mjs, installed into the build tree
      by test_otel_js.py setup). While load runs: one node per component in each
      pipeline's graph, edges receiver -> processors -> exporters labelled with
      items/s, the numbers change between two reads, every counter shown lies
      between two scrapes of /metrics taken around it; a screenshot is saved into
      --out-dir (its path is printed). With the load stopped: every counter shown
      equals /metrics, the refusals and failures are marked, the last errors
      shown, nothing was fetched from elsewhere and the console has no errors.

The router runs two traces pipelines: otlp -> testfault (refuses 15 %) -> batch ->
testsink, and otlp + testgen -> batch -> testsink, otlphttp/down (a closed port:
every batch fails) and nop/a&"b (an ID that HTML must escape). Every wait is
bounded; python3 standard library only.
"""
import argparse
import http.client as http_client
import json
import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Router, free_port, http, json_span, json_traces,  # noqa: E402
                     post_json, wait_for)

NODE_TIMEOUT = 90.0
PIPELINE_QUEUE_LIMIT = 128  # SY__PIPELINE_QUEUE_CAPACITY in core/engine.h
AWKWARD = 'nop/a&"b'
PIPELINES = {
    # id: (receivers, processors, exporters) as (kind, id) lists
    "traces/checked": ([("receiver", "otlp")],
                       [("processor", "testfault"), ("processor", "batch")],
                       [("exporter", "testsink")]),
    "traces/fanout": ([("receiver", "otlp"), ("receiver", "testgen")],
                      [("processor", "batch")],
                      [("exporter", "testsink"), ("exporter", "otlphttp/down"),
                       ("exporter", AWKWARD)]),
}


def config(otlp_port, zp_port, metrics_port, down_port, gen_count, extra=""):
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
  testgen:
    count: {gen_count}
    spans: 5
    interval: 20ms
processors:
  batch:
    timeout: 50ms
  testfault:
    refuse_permille: 150
    seed: 7
exporters:
  testsink:
  otlphttp/down:
    endpoint: http://127.0.0.1:{down_port}
    timeout: 1s
    retry_on_failure:
      enabled: false
  '{AWKWARD}':
extensions:
  zpages:
    endpoint: 127.0.0.1:{zp_port}
service:
  extensions: [zpages]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces/checked:
      receivers: [otlp]
      processors: [testfault, batch]
      exporters: [testsink]
    traces/fanout:
      receivers: [otlp, testgen]
      processors: [batch]
      exporters: [testsink, otlphttp/down, '{AWKWARD}']
{extra}"""


# ---------------------------------------------------------------------------
# /metrics
# ---------------------------------------------------------------------------

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), v)


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = {k: unescape(v) for k, v in LABEL.findall(m.group(2) or "")}
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(3))
    return out


def metric_key(pipeline, kind, cid, counter):
    """The /metrics sample a counter of the page or the document stands for."""
    if kind == "processor":
        return (f"switchyard_processor_{counter}_spans_total",
                frozenset({"processor": cid, "pipeline": pipeline}.items()))
    return (f"switchyard_{kind}_{counter}_spans_total", frozenset({kind: cid}.items()))


def queue_key(kind, cid, which):
    labels = {"pipeline": cid, "queue": "pipeline"} if kind == "pipeline" else \
        {kind: cid, "queue": kind}
    return (f"switchyard_queue_{which}", frozenset(labels.items()))


def metrics_text(port):
    status, _, body = http("GET", f"http://127.0.0.1:{port}/metrics")
    assert status == 200, status
    return body.decode()


# ---------------------------------------------------------------------------
# /api/status
# ---------------------------------------------------------------------------

def doc_counters(doc):
    """{metric_key: value} of every counter in the status document."""
    out = {}
    for p in doc["pipelines"]:
        for proc in p["processors"]:
            for c in ("incoming", "outgoing", "refused", "dropped"):
                out[metric_key(p["id"], "processor", proc["id"], c)] = proc[c]
    for comp in doc["components"]:
        for counters in comp.get("signals", {}).values():
            for c, v in counters.items():
                if c != "items":
                    out[metric_key(None, comp["kind"], comp["id"], c)] = v
    return out


def doc_queues(doc):
    out = {}
    for p in doc["pipelines"]:
        for which in ("size", "capacity"):
            out[queue_key("pipeline", p["id"], which)] = p["queue"][which]
    for comp in doc["components"]:
        if "queue" in comp:
            for which in ("size", "capacity"):
                out[queue_key(comp["kind"], comp["id"], which)] = comp["queue"][which]
    return out


def get_status(port):
    status, headers, body = http("GET", f"http://127.0.0.1:{port}/api/status")
    assert status == 200, (status, body[:200])
    assert headers.get("Content-Type") == "application/json", headers.get("Content-Type")
    return json.loads(body)


class Load:
    """OTLP/JSON posts of 10 spans every 20 ms on one keep-alive connection, until
    stopped; counts the spans answered 200."""

    def __init__(self, port):
        self.port = port
        self.acked = 0
        self.answers = {}
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        conn = http_client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        n = 0
        while not self.stop_event.is_set():
            spans = [json_span(f"load-{n}-{i}", span_id="%016x" % (n * 16 + i + 1))
                     for i in range(10)]
            body = json.dumps(json_traces(spans, "zpages-load")).encode()
            try:
                conn.request("POST", "/v1/traces", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                self.answers[resp.status] = self.answers.get(resp.status, 0) + 1
                if resp.status == 200:
                    self.acked += 10
            except (OSError, http_client.HTTPException):
                conn.close()
                conn = http_client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            n += 1
            self.stop_event.wait(0.02)
        conn.close()

    def stop(self):
        self.stop_event.set()
        self.thread.join(10)


def start(args, gen_count=400):
    ports = dict(otlp_port=free_port(), zp_port=free_port(), metrics_port=free_port(),
                 down_port=free_port(), gen_count=gen_count)
    router = Router(args.bin, [args.plugin_dir, args.kit_dir], config(**ports))
    return router, ports


def check_bounds(check, what, lo, got, hi):
    """Every counter of `got` lies between the two scrapes lo and hi."""
    bad = [(k, lo.get(k), v, hi.get(k)) for k, v in got.items()
           if k not in lo or k not in hi or not lo[k] <= v <= hi[k]]
    check(not bad, f"{what}: {len(got)} counters each between the scrapes before and after"
          + (f" (off: {bad[:5]})" if bad else ""))


def check_equal(check, what, got, metrics):
    bad = [(k, v, metrics.get(k)) for k, v in got.items() if metrics.get(k) != v]
    check(not bad, f"{what}: {len(got)} values equal to /metrics"
          + (f" (differ: {bad[:5]})" if bad else ""))


def wait_steady(port, timeout=30.0):
    """The document once its counters stood still for a second."""
    last = doc_counters(get_status(port))
    since = time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        doc = get_status(port)
        now = doc_counters(doc)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            return doc
    raise AssertionError("the counters did not stand still within %.0f s" % timeout)


def check_graph(check, doc):
    got = {p["id"]: ([(r["kind"], r["id"]) for r in p["receivers"]],
                     [(x["kind"], x["id"]) for x in p["processors"]],
                     [(x["kind"], x["id"]) for x in p["exporters"]]) for p in doc["pipelines"]}
    check(got == PIPELINES, f"pipelines with their components in order: {got}")
    comps = {(c["kind"], c["id"]): c for c in doc["components"]}
    want = {("receiver", "otlp"), ("receiver", "testgen"), ("exporter", "testsink"),
            ("exporter", "otlphttp/down"), ("exporter", AWKWARD), ("extension", "zpages")}
    check(set(comps) == want, f"components once each: {sorted(comps)}")
    check(comps[("exporter", "testsink")]["pipelines"] == ["traces/checked", "traces/fanout"],
          "testsink is in both pipelines")
    check(comps[("receiver", "testgen")]["pipelines"] == ["traces/fanout"],
          "testgen feeds traces/fanout only")
    check(comps[("extension", "zpages")].get("type") == "zpages" and
          "signals" not in comps[("extension", "zpages")], "the extension, without counters")
    return comps


def check_errors(check, doc, t0_ms, t1_ms):
    procs = {(p["id"], x["id"]): x for p in doc["pipelines"] for x in p["processors"]}
    comps = {(c["kind"], c["id"]): c for c in doc["components"]}
    fault = procs[("traces/checked", "testfault")]["errors"]
    check(fault and all(e["level"] == "warn" and "processor refused a batch" in e["message"]
                        for e in fault), f"testfault's last warnings: {fault[-1:]}")
    down = comps[("exporter", "otlphttp/down")]["errors"]
    check(bool(down) and len(down) <= 5, f"otlphttp/down's last errors (1..5): {down[-1:]}")
    every = fault + down
    check(all(t0_ms - 1000 <= e["time_unix_ms"] <= t1_ms + 1000 and
              re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["time"])
              for e in every), "error times: RFC 3339 with ms, within the run")
    check(comps[("receiver", "testgen")]["errors"] == [], "testgen has no errors")


# ---------------------------------------------------------------------------
# api
# ---------------------------------------------------------------------------

def case_api(args):
    check = Checks()
    t0_ms = time.time() * 1000
    router, ports = start(args)
    load = None
    try:
        zp, mp = ports["zp_port"], ports["metrics_port"]
        load = Load(ports["otlp_port"])
        wait_for("load to flow", lambda: doc_counters(get_status(zp)).get(
            metric_key(None, "receiver", "otlp", "accepted"), 0) > 0, 10)
        doc = get_status(zp)
        svc = doc["service"]
        check(doc["schema"] == 1 and svc["name"] == "switchyard" and svc["abi"] == "1.8" and
              re.fullmatch(r"\d+\.\d+\.\d+", svc["version"]) and svc["status"] == "ready" and
              svc["pid"] == router.proc.pid, f"service: {svc}")
        check(0 < svc["uptime_seconds"] < 60 and
              abs(svc["time_unix_ms"] - time.time() * 1000) < 5000, "uptime and time")
        proc = doc["process"]
        check(proc["rss_bytes"] > 1 << 20 and proc["cpu_seconds"] >= 0 and
              proc["queue_budget_bytes"] > 0, f"process: {proc}")
        check_graph(check, doc)

        # Under load: three rounds of scrape, document, scrape.
        for i in range(3):
            lo = parse_metrics(metrics_text(mp))
            got = doc_counters(get_status(zp))
            hi = parse_metrics(metrics_text(mp))
            check_bounds(check, f"under load, round {i + 1}", lo, got, hi)
            time.sleep(0.2)

        load.stop()
        doc = wait_steady(zp)
        metrics = parse_metrics(metrics_text(mp))
        counters = doc_counters(doc)
        check_equal(check, "at rest, every counter", counters, metrics)
        check_equal(check, "at rest, every queue's size and capacity", doc_queues(doc), metrics)
        check(all(q["size"] == 0 and q["items"] == 0 and q["bytes"] == 0
                  for q in [p["queue"] for p in doc["pipelines"]] +
                  [c["queue"] for c in doc["components"] if "queue" in c]),
              "at rest, every queue is empty")
        acc = counters[metric_key(None, "receiver", "otlp", "accepted")]
        check(all(p["queue"]["limit"] == PIPELINE_QUEUE_LIMIT < p["queue"]["capacity"]
                  for p in doc["pipelines"]) and
              all(c["queue"]["limit"] == c["queue"]["capacity"]
                  for c in doc["components"] if "queue" in c),
              "queue limits: a pipeline refuses at 128 batches (its ring has spare slots), "
              "an exporter at its capacity")
        check(acc == load.acked and load.acked > 0,
              f"otlp accepted {acc} = spans answered 200 {load.acked} ({load.answers})")
        check(counters[metric_key("traces/checked", "processor", "testfault", "refused")] > 0,
              "testfault refused some")
        check(counters[metric_key(None, "exporter", "otlphttp/down", "send_failed")] > 0 and
              counters[metric_key(None, "exporter", "otlphttp/down", "sent")] == 0,
              "otlphttp/down failed everything")
        gen = counters[metric_key(None, "receiver", "testgen", "accepted")]
        check(gen == 400 * 5, f"testgen's 2000 spans accepted ({gen})")
        check_errors(check, doc, t0_ms, time.time() * 1000)

        check_debug_pages(check, zp, doc)
        check_http(check, zp)
        own = parse_metrics(metrics_text(mp))
        lab = frozenset({"extension": "zpages"}.items())
        refused = own.get(("switchyard_extension_zpages_requests_refused_total", lab))
        served = own.get(("switchyard_extension_zpages_requests_total", lab))
        check(refused == 10 and served and served > 10 and
              own.get(("switchyard_extension_zpages_requests_failed_total", lab)) == 0,
              f"own metrics: {served} requests served, {refused} refused (5 x 404, 4 x 405, "
              f"/metrics), none failed")
        check_reload(check, router, ports)
    finally:
        if load:
            load.stop()
        rc = router.terminate()
        router.cleanup()
    check(rc == 0, f"router exit code {rc}")
    check_validate(check, args)
    check_in_use(check, args)
    return check


class StatusPoller(threading.Thread):
    """GET /api/status as fast as it answers, recording every answer, until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.answers = {}
        self.bad = []
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            try:
                status, headers, body = http("GET", f"http://127.0.0.1:{self.port}/api/status")
                if status == 200:
                    json.loads(body)
                elif status != 503 or headers.get("Retry-After") != "1":
                    self.bad.append((status, body[:100]))
                self.answers[status] = self.answers.get(status, 0) + 1
            except (OSError, ValueError) as e:
                self.bad.append(repr(e))
            time.sleep(0.002)


def check_reload(check, router, ports):
    """A reload (SIGHUP) that adds a pipeline while /api/status is read without
    pause: every answer is the document or 503 with Retry-After, and afterwards
    the document shows the new graph, its counters equal to /metrics again."""
    zp, mp = ports["zp_port"], ports["metrics_port"]
    extra = ("    traces/extra:\n      receivers: [otlp]\n      processors: [batch]\n"
             f"      exporters: ['{AWKWARD}']\n")
    with open(router.config, "w") as f:
        f.write(config(extra=extra, **ports))
    poller = StatusPoller(zp)
    poller.start()
    time.sleep(0.1)
    import signal
    router.proc.send_signal(signal.SIGHUP)
    done = wait_for("the reload", lambda: "Configuration reloaded in" in router.output(), 20)
    time.sleep(0.2)
    poller.stop_event.set()
    poller.join(10)
    check(done and not poller.bad and poller.answers.get(200, 0) > 0,
          f"reload: /api/status answered {poller.answers} meanwhile (503 = reloading), "
          f"nothing else {poller.bad[:3]}")
    doc = get_status(zp)
    ids = [p["id"] for p in doc["pipelines"]]
    check(ids == ["traces/checked", "traces/fanout", "traces/extra"] and
          [x["id"] for x in doc["pipelines"][2]["processors"]] == ["batch"],
          f"reload: the document shows the new pipeline {ids}")
    post_json(f"http://127.0.0.1:{ports['otlp_port']}/v1/traces",
              json_traces([json_span("after-reload")], "zpages-reload"))
    doc = wait_steady(zp)
    check_equal(check, "after the reload, at rest, every counter", doc_counters(doc),
                parse_metrics(metrics_text(mp)))
    check(doc_counters(doc)[metric_key("traces/extra", "processor", "batch", "outgoing")] == 1,
          "after the reload, the new pipeline's batch passed the span on")


def check_debug_pages(check, zp, doc):
    status, headers, body = http("GET", f"http://127.0.0.1:{zp}/debug/servicez")
    html = body.decode()
    check(status == 200 and headers.get("Content-Type") == "text/html; charset=utf-8",
          f"servicez: {status} {headers.get('Content-Type')}")
    svc = doc["service"]
    for name, value in (("Command", "switchyard"), ("Version", svc["version"]),
                        ("Plugin ABI", "1.8"), ("Status", "ready"), ("PID", str(svc["pid"])),
                        ("Start time", svc["start_time"])):
        check(f"<tr><th>{name}</th><td>{value}</td></tr>" in html, f"servicez: {name} {value}")
    check(re.search(r"<tr><th>Uptime</th><td>\d+(\.\d)?s</td></tr>", html) is not None,
          "servicez: uptime")
    check(re.search(r"<tr><th>Resident memory</th><td>[\d.]+ MiB</td></tr>", html) is not None,
          "servicez: resident memory")
    rows = re.findall(r'<tr data-kind="([^"]*)" data-id="([^"]*)"><td>[^<]*</td><td>([^<]*)'
                      r'</td><td>([^<]*)</td><td>[^<]*</td><td>([^<]*)</td></tr>', html)
    want = [("receiver", "otlp", "otlp", "otlp", "traces/checked, traces/fanout")]
    check(want[0] in rows and len(rows) == 6, f"servicez: 6 component rows ({rows[:2]} ...)")
    esc = "nop/a&amp;&quot;b"
    check(("exporter", esc, esc, "nop", "traces/fanout") in rows and AWKWARD not in html,
          "servicez: the awkward ID escaped in text and attribute")

    status, headers, body = http("GET", f"http://127.0.0.1:{zp}/debug/pipelinez")
    html = body.decode()
    check(status == 200 and headers.get("Content-Type") == "text/html; charset=utf-8",
          "pipelinez: 200 text/html")
    check('<tr data-pipeline="traces/checked"><td>traces/checked</td><td>traces</td>'
          '<td>false</td><td>otlp</td><td>testfault<br>batch</td><td>testsink</td></tr>' in html,
          "pipelinez: traces/checked row")
    check('<tr data-pipeline="traces/fanout"><td>traces/fanout</td><td>traces</td>'
          '<td>false</td><td>otlp<br>testgen</td><td>batch</td>'
          f'<td>testsink<br>otlphttp/down<br>{esc}</td></tr>' in html,
          "pipelinez: traces/fanout row")


def check_http(check, zp):
    base = f"http://127.0.0.1:{zp}"
    for path in ("/nope", "/api/status/x", "/debug", "/debug/tracez", "/index.htm"):
        status, _, body = http("GET", base + path)
        check(status == 404 and body == b"404 page not found\n", f"GET {path}: 404")
    for method, path in (("POST", "/"), ("PUT", "/api/status"), ("DELETE", "/debug/servicez"),
                         ("POST", "/zpages.js")):
        status, headers, _ = http(method, base + path, body=b"x" if method != "DELETE" else None)
        check(status == 405 and headers.get("Allow") == "GET, HEAD", f"{method} {path}: 405")
    status, headers, body = http("HEAD", base + "/")
    check(status == 200 and body == b"" and int(headers.get("Content-Length")) > 500,
          "HEAD /: 200, no body")
    status, headers, body = http("GET", base + "/")
    csp = headers.get("Content-Security-Policy", "")
    check(status == 200 and b'<script src="/zpages.js"' in body and "default-src 'self'" in csp
          and headers.get("Cache-Control") == "no-store", "GET /: the page, CSP self only")
    for path, ctype in (("/index.html", "text/html; charset=utf-8"),
                        ("/zpages.css", "text/css; charset=utf-8"),
                        ("/zpages.js", "text/javascript; charset=utf-8")):
        status, headers, body = http("GET", base + path)
        check(status == 200 and headers.get("Content-Type") == ctype and len(body) > 500 and
              not re.search(rb"https?://(?!www\.w3\.org/2000/svg)", body),
              f"GET {path}: {ctype}, no external URL")
    status, headers, body = http("GET", base + "/metrics")
    check(status == 404, "/metrics is not served by zpages")


def check_validate(check, args):
    text = config(otlp_port=free_port(), zp_port=0, metrics_port=free_port(),
                  down_port=free_port(), gen_count=1).replace("127.0.0.1:0", "no-port-here")
    path = os.path.join(args.tmp, "bad.yaml")
    with open(path, "w") as f:
        f.write(text)
    out = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir", args.plugin_dir,
                          "--plugin-dir", args.kit_dir], capture_output=True, text=True,
                         timeout=30)
    check(out.returncode != 0 and "'zpages': endpoint:" in out.stderr,
          f"validate refuses a bad endpoint: {out.stderr.strip()[-200:]}")


def check_in_use(check, args):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        text = config(otlp_port=free_port(), zp_port=port, metrics_port=free_port(),
                      down_port=free_port(), gen_count=1)
        with Router(args.bin, [args.plugin_dir, args.kit_dir], text, wait=False) as r:
            try:
                rc = r.proc.wait(20)
            except subprocess.TimeoutExpired:
                rc = None
            check(rc not in (None, 0) and f'cannot listen on "127.0.0.1:{port}"' in r.output(),
                  f"an endpoint in use fails the start (exit {rc})")


# ---------------------------------------------------------------------------
# browser
# ---------------------------------------------------------------------------

def page_counters(page):
    """{metric_key: value} of every counter the page shows, and whether each
    refusal/failure above zero is marked."""
    out, marks = {}, []
    for p in page["pipelines"]:
        for col in p["columns"]:
            for n in col:
                kind, cid = n["node"].split(":", 1)
                for c, v in n["counters"].items():
                    out[metric_key(p["id"], kind, cid, c)] = v["value"]
                    shown = int(v["text"].replace(",", ""))
                    marks.append((shown == v["value"],
                                  v["bad"] == (c in ("refused", "dropped", "send_failed",
                                                     "enqueue_failed", "failed") and
                                               v["value"] > 0)))
    return out, marks


def expected_edges(pid):
    recv, procs, exps = PIPELINES[pid]
    cols = [recv] + [[p] for p in procs] + [exps]
    return sorted((f"{a[0]}:{a[1]}", f"{b[0]}:{b[1]}")
                  for i in range(len(cols) - 1) for a in cols[i] for b in cols[i + 1])


def check_page_graph(check, page):
    check(page["banner"] == "" and page["status"] == "ready", "page: no banner, status ready")
    ids = [p["id"] for p in page["pipelines"]]
    check(ids == list(PIPELINES), f"page: one graph per pipeline {ids}")
    for p in page["pipelines"]:
        recv, procs, exps = PIPELINES[p["id"]]
        want_cols = [recv] + [[x] for x in procs] + [exps]
        got_cols = [[tuple(n["node"].split(":", 1)) for n in col] for col in p["columns"]]
        check(got_cols == want_cols, f"page {p['id']}: one node per component, in columns "
              f"receivers -> processors -> exporters: {got_cols}")
        check(all(n["shown"] == n["node"].split(":", 1)[1] for col in p["columns"] for n in col),
              f"page {p['id']}: node titles are the IDs (as text, not HTML)")
        edges = sorted((e["from"], e["to"]) for e in p["edges"])
        check(edges == expected_edges(p["id"]) and p["paths"] == len(edges),
              f"page {p['id']}: edges {edges}")
        check(all(e["rate"] is not None and re.fullmatch(r"[\d.]+[kM]?/s", e["text"])
                  for e in p["edges"]), f"page {p['id']}: every edge labelled with items/s")


def case_browser(args):
    check = Checks()
    if not os.path.exists("/usr/bin/chromium"):
        print("FAIL: /usr/bin/chromium is missing: deploy/debian-deps.sh --test installs "
              "Debian's chromium", file=sys.stderr)
        sys.exit(1)
    script = os.path.join(args.src_dir, "check.mjs")
    if not os.path.isdir(os.path.join(args.node_dir, "node_modules", "playwright-core")):
        print("FAIL: playwright-core is not installed in %s (integration.zpages_setup runs "
              "npm ci there)" % args.node_dir, file=sys.stderr)
        sys.exit(1)
    os.makedirs(args.out_dir, exist_ok=True)
    shot = os.path.join(args.out_dir, "zpages.png")
    if os.path.exists(shot):
        os.remove(shot)
    router, ports = start(args)
    load = Load(ports["otlp_port"])
    node = None
    results = {}
    try:
        zp, mp = ports["zp_port"], ports["metrics_port"]
        # check.mjs is copied next to node_modules so that its import resolves there.
        runner = os.path.join(args.node_dir, "check.mjs")
        with open(script, "rb") as f, open(runner + ".tmp", "wb") as g:
            g.write(f.read())
        os.replace(runner + ".tmp", runner)
        node = subprocess.Popen(["node", runner, f"http://127.0.0.1:{zp}/",
                                 f"http://127.0.0.1:{mp}/metrics", shot],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=args.node_dir)
        timer = threading.Timer(NODE_TIMEOUT, node.kill)
        timer.start()
        for line in node.stdout:
            msg = json.loads(line)
            results[msg["phase"]] = msg
            if msg["phase"] == "moving":
                load.stop()
        rc = node.wait()
        timer.cancel()
        err = node.stderr.read()
        if rc != 0 or set(results) != {"moving", "steady"}:
            print(err, file=sys.stderr)
            check(False, f"check.mjs ran both phases (exit {rc}, phases {sorted(results)})")
            return check
    finally:
        load.stop()
        if node and node.poll() is None:
            node.kill()
            node.wait()
        rc_router = router.terminate()
        out = router.output()
        router.cleanup()

    moving, steady = results["moving"], results["steady"]
    print(f"screenshot: {shot}")
    check(os.path.getsize(shot) > 20000, f"screenshot saved ({os.path.getsize(shot)} bytes)")
    check_page_graph(check, moving["between"])
    first, _ = page_counters(moving["first"])
    moved, _ = page_counters(moving["moved"])
    changed = [k for k in first if first[k] != moved.get(k)]
    check(bool(changed) and all(moved[k] >= first[k] for k in first),
          f"page: numbers moved between two reads ({len(changed)} counters grew)")
    between, marks = page_counters(moving["between"])
    check_bounds(check, "page under load", parse_metrics(moving["metrics_before"]), between,
                 parse_metrics(moving["metrics_after"]))
    active = [e for p in moving["between"]["pipelines"] for e in p["edges"]
              if e["from"] == "receiver:otlp"]
    check(active and all(e["rate"] > 0 for e in active),
          f"page: the otlp receiver's edges carry items/s > 0 under load: "
          f"{[e['text'] for e in active]}")

    page, marks = page_counters(steady["page"])
    check(page_counters(steady["page_after"])[0] == page, "page: still at rest after the scrape")
    check_equal(check, "page at rest, every counter", page, parse_metrics(steady["metrics"]))
    check(marks and all(a and b for a, b in marks),
          f"page: the numbers shown are the counters, refusals and failures marked red")
    nodes = {(p["id"], n["node"]): n for p in steady["page"]["pipelines"]
             for col in p["columns"] for n in col}
    fault = nodes[("traces/checked", "processor:testfault")]
    check(fault["counters"]["refused"]["value"] > 0 and fault["errors"] and
          "processor refused a batch" in fault["errors"][0], f"page: testfault's refusals "
          f"and last warning shown: {fault['errors'][:1]}")
    down = nodes[("traces/fanout", "exporter:otlphttp/down")]
    check(down["counters"]["send_failed"]["value"] > 0 and down["errors"] and
          1 <= len(down["errors"]) <= 3, f"page: otlphttp/down's failures and last errors "
          f"(at most 3 shown): {down['errors'][:1]}")
    metrics = parse_metrics(steady["metrics"])
    q = down["queue"]
    check(q and q["size"] == "0" and
          int(q["limit"]) == metrics[queue_key("exporter", "otlphttp/down", "capacity")] and
          q["text"].startswith("0/%s " % q["limit"]), f"page: exporter queue fill {q}")
    pq = steady["page"]["pipelines"][0]["queue"]
    check(pq["size"] == "0" and int(pq["limit"]) == PIPELINE_QUEUE_LIMIT,
          f"page: pipeline queue fill {pq}")
    for phase in (moving, steady):
        check(not phase["console_errors"], f"browser console: {phase['console_errors']}")
        check(not phase["outside_requests"],
              f"nothing fetched from elsewhere: {phase['outside_requests']}")
    check(rc_router == 0, f"router exit code {rc_router}")
    if rc_router != 0:
        print(out[-4000:], file=sys.stderr)
    return check


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["api", "browser"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir", required=True)
    ap.add_argument("--src-dir")
    ap.add_argument("--node-dir")
    ap.add_argument("--out-dir")
    args = ap.parse_args()
    import tempfile
    with tempfile.TemporaryDirectory(prefix="sy-zpages-") as tmp:
        args.tmp = tmp
        check = case_api(args) if args.case == "api" else case_browser(args)
    if check.failures:
        print(f"FAIL: {len(check.failures)} checks failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
