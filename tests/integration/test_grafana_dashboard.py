#!/usr/bin/env python3
"""Issue 12 item 3: deploy/grafana/switchyard.json against the router it describes.

  a. The dashboard's structure: schemaVersion, uid, the `datasource` variable (type
     datasource, prometheus) and the `job` / `instance` query variables, the rows in
     order, unique panel ids, grid positions inside 24 columns that do not overlap,
     every panel and target on `${datasource}`, a unit and a description on every
     panel, every selector filtered by `$job` and `$instance`, every rate() window
     `$__rate_interval`.
  b. The real binary with receivers (otlp over HTTP and gRPC, three instances),
     processors (memory_limiter, batch), a forward connector and exporters: otlphttp
     to a sink that answers 200, and two otlphttp exporters to a port where nothing
     listens (one retries and blocks, so back-pressure reaches its receiver; one
     drops when its queue is full), and a memory_limiter below the router's RSS so
     that it refuses. Load: OTLP/JSON traces, metrics and logs posted by threads,
     OTLP/gRPC traces from bench/loadgen.
  c. Debian's Prometheus scrapes the router's own metrics every second. For EVERY
     panel target, with the variables replaced by concrete values: every metric it
     names is one the router exposes, every label it matches, groups by or puts in
     its legend is one those metrics carry (or job / instance, which Prometheus
     adds), the variable queries find the job and the instance, and
     /api/v1/query returns a non-empty result under load. Every panel shows a
     value above zero, except the few in EXPECTED_ZERO (each with its reason).
     The memory_limiter limit gauges hold the limits configured, in bytes.
  d. docs/operations.md lists every metric family the router exposed here.

    test_grafana_dashboard.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
        --loadgen build/bin/loadgen --dashboard deploy/grafana/switchyard.json
        --docs docs/operations.md

Every wait is bounded; python3 standard library only.
"""
import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sinks"))

import harness  # noqa: E402
from harness import free_port, http, json_span, json_traces, post_json  # noqa: E402
from http_sink import Sink  # noqa: E402
from test_prometheus import PROMETHEUS  # noqa: E402

JOB = "switchyard"
RATE_INTERVAL = "5s"        # what Grafana gives with a 1 s scrape interval: 4 x 1 s, and some
CHECK_TIMEOUT = 35.0        # from the first scrape until every panel shows what it must
ROWS = ["Overview", "Receivers", "Processors", "Exporters and queues", "Memory and CPU"]
DS = {"type": "prometheus", "uid": "${datasource}"}
TARGET_LABELS = {"job", "instance"}  # added by Prometheus to every series it scrapes

# Panels whose every value is legitimately zero while this test runs, and why. A
# panel listed here must still return series (the metrics exist); one that shows a
# value above zero fails the test, so that the list does not go stale.
EXPECTED_ZERO = {
    "Processor failures": "counts only a processor's consume failing or the router "
                          "running out of memory: neither happens in a healthy router",
    "Uptime and restarts": "the router does not restart during the test",
}

CONFIG = """
receivers:
  otlp:
    protocols:
      http: {{endpoint: 127.0.0.1:{http_port}}}
      grpc: {{endpoint: 127.0.0.1:{grpc_port}}}
  otlp/down:
    protocols:
      http: {{endpoint: 127.0.0.1:{down_port}}}
  otlp/limited:
    protocols:
      http: {{endpoint: 127.0.0.1:{limited_port}}}
processors:
  memory_limiter: {{check_interval: 1s, limit_mib: 2048}}
  memory_limiter/tight: {{check_interval: 100ms, limit_mib: 1}}
  batch: {{send_batch_size: 200, timeout: 100ms}}
  batch/down: {{send_batch_size: 50, timeout: 50ms}}
exporters:
  otlphttp:
    endpoint: http://127.0.0.1:{sink_port}
  otlphttp/down:
    endpoint: http://127.0.0.1:{closed_port}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 700ms}}
    sending_queue: {{num_consumers: 2, queue_size: 4}}
  otlphttp/drop:
    endpoint: http://127.0.0.1:{closed_port}
    retry_on_failure: {{initial_interval: 50ms, max_interval: 100ms, max_elapsed_time: 300ms}}
    sending_queue: {{num_consumers: 1, queue_size: 2, block_on_overflow: false}}
  nop:
connectors:
  forward:
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp, forward]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp, forward]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlphttp, forward]
    traces/forwarded:
      receivers: [forward]
      exporters: [nop]
    metrics/forwarded:
      receivers: [forward]
      exporters: [nop]
    logs/forwarded:
      receivers: [forward]
      exporters: [nop]
    traces/down:
      receivers: [otlp/down]
      processors: [batch/down]
      exporters: [otlphttp/down, otlphttp/drop]
    logs/limited:
      receivers: [otlp/limited]
      processors: [memory_limiter/tight]
      exporters: [nop]
"""

PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: ["{target}"]
"""


# --- a. the dashboard's structure ----------------------------------------------------

def panels_of(dash):
    """Every panel, those nested in collapsed rows included."""
    out = []
    for p in dash.get("panels", []):
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def check_structure(check, dash):
    check(isinstance(dash.get("schemaVersion"), int) and dash["schemaVersion"] >= 36,
          f"schemaVersion {dash.get('schemaVersion')} (Grafana 9.x or later)")
    check(bool(dash.get("uid")) and bool(dash.get("title")), "a uid and a title")
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource", {})
    check(ds.get("type") == "datasource" and ds.get("query") == "prometheus",
          "a `datasource` variable of type datasource, plugin prometheus")
    for name in ("job", "instance"):
        v = variables.get(name, {})
        check(v.get("type") == "query" and v.get("datasource") == DS
              and "label_values(" in v.get("definition", ""),
              f"a `{name}` query variable on ${{datasource}}")
    panels = panels_of(dash)
    ids = [p.get("id") for p in panels]
    check(all(isinstance(i, int) for i in ids) and len(ids) == len(set(ids)),
          f"{len(ids)} panels, unique integer ids")
    rows = [p["title"] for p in panels if p.get("type") == "row"]
    check(rows == ROWS, f"rows {rows}")
    boxes = []
    for p in panels:
        g = p.get("gridPos", {})
        ok = all(isinstance(g.get(k), int) for k in "xywh") and g["x"] >= 0 and g["y"] >= 0 \
            and g["w"] > 0 and g["h"] > 0 and g["x"] + g["w"] <= 24
        check(ok, f"panel {p.get('id')} {p.get('title')!r}: gridPos {g} inside 24 columns")
        if ok:
            boxes.append((p.get("title"), g))
    overlaps = [(a[0], b[0]) for i, a in enumerate(boxes) for b in boxes[i + 1:]
                if a[1]["x"] < b[1]["x"] + b[1]["w"] and b[1]["x"] < a[1]["x"] + a[1]["w"]
                and a[1]["y"] < b[1]["y"] + b[1]["h"] and b[1]["y"] < a[1]["y"] + a[1]["h"]]
    check(not overlaps, f"no two panels overlap {overlaps}")
    for p in panels:
        if p.get("type") == "row":
            continue
        t = p.get("title")
        targets = p.get("targets", [])
        check(p.get("datasource") == DS and targets
              and all(x.get("datasource") == DS for x in targets),
              f"{t!r}: panel and its {len(targets)} targets on ${{datasource}}")
        refs = [x.get("refId") for x in targets]
        check(len(refs) == len(set(refs)) and all(refs), f"{t!r}: unique refIds")
        check(bool(p.get("fieldConfig", {}).get("defaults", {}).get("unit")),
              f"{t!r}: a unit")
        check(bool(p.get("description")), f"{t!r}: a description")
        for x in targets:
            e = x.get("expr", "")
            sels = selectors(e)
            check(sels and all(('job', '=~', '$job') in m and ('instance', '=~', '$instance') in m
                               for _, m in sels),
                  f"{t!r} {x.get('refId')}: every selector filtered by $job and $instance")
            windows = re.findall(r"\brate\([^\[]*\[([^\]]*)\]", e)
            check(all(w == "$__rate_interval" for w in windows),
                  f"{t!r} {x.get('refId')}: rate() windows {windows or '(none)'} are "
                  f"$__rate_interval")


# --- PromQL: the names and labels an expression uses -----------------------------------

MATCHER_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
SELECTOR_RE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*\{([^{}]*)\}')
GROUPING_RE = re.compile(r'\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)')


def selectors(expr):
    """[(metric name or None, [(label, op, value)])] of every braced selector."""
    return [(name or None, MATCHER_RE.findall(body)) for name, body in SELECTOR_RE.findall(expr)]


def bare_names(expr):
    """Identifiers outside strings and braces that name one of our metrics."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    text = re.sub(r"\{[^{}]*\}", "{}", text)
    return set(re.findall(r"\bswitchyard_[a-zA-Z0-9_:]*", text))


def grouping_labels(expr):
    out = set()
    for body in GROUPING_RE.findall(expr):
        out.update(x.strip() for x in body.split(",") if x.strip())
    return out


def check_names_labels(check, where, expr, legend, exposed):
    """exposed: {family name: set of label names} from the router's /metrics."""
    used = set()
    for name, matchers in selectors(expr):
        check(name, f"{where}: a selector names its metric ({matchers})")
        if not name:
            continue
        check(name in exposed, f"{where}: the router exposes {name}")
        labels = exposed.get(name, set()) | TARGET_LABELS
        for label, _, _ in matchers:
            check(label in labels, f"{where}: {name} carries the label {label!r}")
        used.add(name)
    for n in bare_names(expr) - used:
        check(n in exposed, f"{where}: the router exposes {n}")
        used.add(n)
    labels = set().union(*(exposed.get(n, set()) for n in used)) | TARGET_LABELS
    for label in grouping_labels(expr) | set(re.findall(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}", legend)):
        check(label in labels, f"{where}: grouped or shown label {label!r} is one of "
                               f"{sorted(labels)}")


def substitute(text, target):
    return (text.replace("$__rate_interval", RATE_INTERVAL).replace("$__interval", "1s")
            .replace("${job}", JOB).replace("$job", JOB)
            .replace("${instance}", target).replace("$instance", target))


# --- the router's exposition -------------------------------------------------------------

def exposition(metrics_port):
    """{family: set of label names} from GET /metrics."""
    status, _, body = http("GET", f"http://127.0.0.1:{metrics_port}/metrics")
    if status != 200:
        raise AssertionError(f"/metrics answered {status}")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("# TYPE "):
            out.setdefault(line.split(" ")[2], set())
        elif line and not line.startswith("#"):
            m = re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s", line)
            if m:
                out.setdefault(m.group(1), set()).update(
                    lbl for lbl, _, _ in MATCHER_RE.findall(m.group(3) or ""))
    return out


# --- b. load ---------------------------------------------------------------------------

def json_metrics(n, seq):
    points = [{"asInt": str(seq + i), "timeUnixNano": str(1_700_000_000_000_000_000 + i),
               "attributes": [{"key": "i", "value": {"intValue": str(i)}}]} for i in range(n)]
    return {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "load.gauge", "gauge": {"dataPoints": points}}]}]}]}


def json_logs(n, seq):
    records = [{"timeUnixNano": str(1_700_000_000_000_000_000 + i),
                "body": {"stringValue": f"record {seq + i}"}} for i in range(n)]
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}


def span_batch(n, seq):
    return json_traces([json_span(f"op {i}", span_id=f"{seq + i:016x}") for i in range(n)],
                       "load")


class Load:
    """Threads posting OTLP/JSON until stop(); counts the answers per status."""

    def __init__(self, ports):
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.statuses = {}
        base = "http://127.0.0.1:{}/v1/{}"
        self.jobs = [
            (base.format(ports["http_port"], "traces"), span_batch, 0.02),
            (base.format(ports["http_port"], "metrics"), json_metrics, 0.02),
            (base.format(ports["http_port"], "logs"), json_logs, 0.02),
            (base.format(ports["down_port"], "traces"), span_batch, 0.01),
            (base.format(ports["limited_port"], "logs"), json_logs, 0.05),
        ]
        self.threads = [threading.Thread(target=self.run, args=job, daemon=True)
                        for job in self.jobs]
        for t in self.threads:
            t.start()

    def run(self, url, make, pause):
        seq = 0
        while not self.stopping.is_set():
            try:
                status, _, _ = post_json(url, make(20, seq), timeout=2.0)
            except OSError:
                status = "error"
            seq += 20
            with self.lock:
                key = (url.split("/")[2].split(":")[1] + url[url.rindex("/"):], status)
                self.statuses[key] = self.statuses.get(key, 0) + 1
            self.stopping.wait(pause)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=5)


# --- c. every panel's queries ---------------------------------------------------------------

def query(prom_port, expr):
    url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    status, _, body = http("GET", url, timeout=5.0)
    doc = json.loads(body) if body else {}
    if status != 200 or doc.get("status") != "success":
        return None, f"{status} {doc.get('error', body[:200])}"
    return doc["data"]["result"], None


def values(result):
    out = []
    for r in result:
        try:
            out.append(float(r["value"][1]))
        except (KeyError, ValueError, TypeError):
            pass
    return out


def evaluate(dash, prom_port, target):
    """{panel title: [(refId, expr, result or None, error)]} for every target now."""
    out = {}
    for p in panels_of(dash):
        if p.get("type") == "row":
            continue
        rows = []
        for t in p["targets"]:
            expr = substitute(t["expr"], target)
            result, err = query(prom_port, expr)
            rows.append((t["refId"], expr, result, err))
        out[p["title"]] = rows
    return out


def panel_state(rows):
    """(every target non-empty, some value above zero)."""
    nonempty = all(result for _, _, result, _ in rows)
    above = any(v > 0 and not math.isnan(v) and not math.isinf(v)
                for _, _, result, _ in rows for v in values(result or []))
    return nonempty, above


def settled(evaluation):
    for title, rows in evaluation.items():
        nonempty, above = panel_state(rows)
        if not nonempty or above == (title in EXPECTED_ZERO):
            return False
    return True


def check_variables(check, dash, prom_port, target):
    for v in dash["templating"]["list"]:
        if v.get("type") != "query":
            continue
        m = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", v["definition"])
        check(m, f"variable {v['name']}: {v['definition']!r} is label_values(selector, label)")
        if not m:
            continue
        match = substitute(m.group(1), target)
        url = (f"http://127.0.0.1:{prom_port}/api/v1/label/{m.group(2)}/values?"
               + urllib.parse.urlencode({"match[]": match}))
        status, _, body = http("GET", url)
        found = json.loads(body).get("data", []) if status == 200 else []
        want = JOB if v["name"] == "job" else target
        check(want in found, f"variable {v['name']}: {m.group(2)} values of {match} {found} "
                             f"hold {want!r}")


def check_limits(check, prom_port, target):
    """The memory_limiter gauges the memory panels draw hold the limits configured:
    limit_mib in bytes, and the soft limit 20 % (the default spike) below it."""
    for processor, pipeline, mib in (("memory_limiter", "traces", 2048),
                                     ("memory_limiter/tight", "logs/limited", 1)):
        hard = mib * 1024 * 1024
        for name, want in (("limit_bytes", hard), ("soft_limit_bytes", hard - hard // 5)):
            sel = (f'switchyard_memory_limiter_{name}{{job="{JOB}",instance="{target}",'
                   f'processor="{processor}",pipeline="{pipeline}"}}')
            result, err = query(prom_port, sel)
            got = values(result or [])
            check(got == [float(want)], f"{sel} = {want} ({got}{err or ''})")


def check_panels(check, evaluation):
    for title, rows in evaluation.items():
        for ref, expr, result, err in rows:
            check(result, f"{title!r} {ref}: {len(result or [])} series "
                          f"{'(' + err + ')' if err else ''} for {expr}")
        _, above = panel_state(rows)
        if title in EXPECTED_ZERO:
            check(not above, f"{title!r}: zero, as expected ({EXPECTED_ZERO[title]})")
        else:
            top = max((v for _, _, r, _ in rows for v in values(r or [])
                       if not math.isnan(v)), default=None)
            check(above, f"{title!r}: a value above zero under load (max {top})")


# --- d. the docs ------------------------------------------------------------------------

def documented_names(text):
    """Every `switchyard_...` name in backticks, with {a,b,c} alternatives expanded."""
    out = set()
    for token in re.findall(r"`(switchyard_[^`\s]*)`", text):
        names = [token]
        while any("{" in n for n in names):
            expanded = []
            for n in names:
                m = re.search(r"\{([^{}]*)\}", n)
                if not m:
                    expanded.append(n)
                    continue
                for alt in m.group(1).split(","):
                    expanded.append(n[:m.start()] + alt.strip() + n[m.end():])
            names = expanded
        out.update(names)
    return out


def check_docs(check, docs_path, exposed):
    with open(docs_path) as f:
        documented = documented_names(f.read())
    missing = sorted(n for n in exposed if n not in documented)
    check(not missing, f"{docs_path} documents every metric family the router exposed "
                       f"({len(exposed)}; missing: {missing})")


# --- main --------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--loadgen", required=True)
    ap.add_argument("--dashboard", required=True)
    ap.add_argument("--docs", required=True)
    args = ap.parse_args()
    check = harness.Checks()
    with open(args.dashboard) as f:
        dash = json.load(f)
    print("-- a. structure")
    check_structure(check, dash)
    if harness.Prometheus.missing(PROMETHEUS):
        return 1
    ports = {k: free_port() for k in ("http_port", "grpc_port", "down_port", "limited_port",
                                      "metrics_port", "closed_port")}
    target = f"127.0.0.1:{ports['metrics_port']}"
    workdir = tempfile.mkdtemp(prefix="sy-grafana-")
    sink = Sink()
    ports["sink_port"] = sink.port
    # memory_limiter/tight would shrink the core's queue budget to a quarter of its
    # soft limit for every pipeline; the test wants only its own pipeline refused.
    os.environ["SWITCHYARD_QUEUE_BUDGET"] = "64MiB"
    prom = load = grpc = None
    try:
        with harness.Router(args.bin, [args.plugin_dir], CONFIG.format(**ports)) as router:
            load = Load(ports)
            grpc = subprocess.Popen(
                [args.loadgen, "--protocol", "grpc", "--url",
                 f"http://127.0.0.1:{ports['grpc_port']}", "--rate", "20",
                 "--spans-per-request", "50", "--duration", "120"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            prom = harness.Prometheus(PROMETHEUS, workdir,
                                      PROMETHEUS_CONFIG.format(job=JOB, target=target))
            prom.ready()
            started = time.monotonic()
            evaluation = None
            while time.monotonic() - started < CHECK_TIMEOUT:
                time.sleep(1.0)
                evaluation = evaluate(dash, prom.port, target)
                if settled(evaluation):
                    break
            print(f"-- b. load: {time.monotonic() - started:.1f} s of scrapes; answers "
                  f"{sorted(load.statuses.items(), key=str)}")
            exposed = exposition(ports["metrics_port"])
            print(f"-- c. names and labels ({len(exposed)} families exposed)")
            for p in panels_of(dash):
                for t in p.get("targets", []):
                    check_names_labels(check, f"{p['title']!r} {t['refId']}", t["expr"],
                                       t.get("legendFormat", ""), exposed)
            print("-- c. variables and queries under load")
            check_variables(check, dash, prom.port, target)
            check_panels(check, evaluation)
            check_limits(check, prom.port, target)
            print("-- d. docs")
            check_docs(check, args.docs, exposed)
            load.stop()
            grpc.terminate()
            grpc.wait(timeout=10)
            rc = router.terminate()
            # The exporters to the closed port lose what they hold: exit 4 says so.
            check(rc in (0, 4), f"the router exits on SIGTERM ({rc})")
            if check.failures:
                router.dump(n=60, prefix="router: ")
    finally:
        if load:
            load.stop()
        if grpc and grpc.poll() is None:
            grpc.kill()
            grpc.wait()
        if prom:
            prom.stop(check, show_log=bool(check.failures))
        sink.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if check.failures:
        print(f"{len(check.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
