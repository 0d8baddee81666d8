#!/usr/bin/env python3
"""The prometheus receiver through the real binary: `prometheus` receiver -> `file`
exporter (OTLP/JSON, one scrape per line), every result read back and checked.

  fixed          a Python HTTP server in this test serves a fixed text-format page
                 and a fixed OpenMetrics page (gzip when asked): every metric, type,
                 point value, attribute and start time (_created, first sight,
                 reset) is checked; relabeling keep/drop/replace/labeldrop/labelkeep;
                 a series that disappears gets a stale point (flags 1); a target that
                 goes down gets up=0 and stale points for all its series; a target
                 that is not listening has up=0; a slow one is cut at scrape_timeout;
                 the request carries the Accept header, the timeout header and params
  prometheus     Debian's Prometheus (/usr/bin/prometheus) on a free loopback port:
                 prometheus_build_info and a histogram arrive
  node_exporter  Debian's node exporter (/usr/bin/prometheus-node-exporter) with a
                 few collectors: memory, load and CPU metrics
  python_client  a target made with Debian's Python Prometheus client, which answers
                 OpenMetrics: counters, _created, UNIT, Info, Enum
  self           the router scrapes its own service.telemetry.metrics endpoint
  config         `switchyard validate` refuses bad configs at the node's position
  backpressure   a slow exporter (testsink): scrapes refused twice are dropped and
                 counted, every point emitted arrives, the router drains and exits 0

    test_prometheus_receiver.py --case fixed --bin build/bin/switchyard \
        --plugin-dir build/lib/switchyard/plugins

Every wait is bounded; python3 standard library only.
"""
import argparse
import gzip
import http.server as http_server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import harness
from harness import free_port, http

PROMETHEUS = os.environ.get("SY_PROMETHEUS_BIN", "/usr/bin/prometheus")
NODE_EXPORTER = os.environ.get("SY_NODE_EXPORTER_BIN", "/usr/bin/prometheus-node-exporter")
WAIT = 30.0
SCOPE = "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/prometheusreceiver"

TEXT_PAGE_1 = r"""# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027
http_requests_total{method="post",code="400"}    3 1395066363000
# HELP temp Temperature, with "quotes", \\ and \n a newline.
# TYPE temp gauge
temp{room="a b\"c\\d\ne"} -Inf
temp{room="x"} NaN
temp{room="y",} +Inf
# A comment that is not HELP or TYPE.
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le="0.05"} 24
rpc_seconds_bucket{le="0.1"} 33
rpc_seconds_bucket{le="+Inf"} 144
rpc_seconds_sum 53.5
rpc_seconds_count 144
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
# TYPE legacy untyped
legacy 7
metric_without_type{job="exposed"} 12.5
# TYPE going_away gauge
going_away 1
"""

# The second phase: the counter of code 200 was reset (5 < 1027), going_away is gone.
TEXT_PAGE_2 = TEXT_PAGE_1.replace(
    'http_requests_total{method="post",code="200"} 1027',
    'http_requests_total{method="post",code="200"} 5').replace(
    "# TYPE going_away gauge\ngoing_away 1\n", "")

OM_PAGE = """# TYPE om_latency_seconds histogram
# UNIT om_latency_seconds seconds
# HELP om_latency_seconds Latency.
om_latency_seconds_bucket{le="0.5"} 1
om_latency_seconds_bucket{le="1.0"} 3 # {trace_id="abc"} 0.7 1700000000.5
om_latency_seconds_bucket{le="+Inf"} 4
om_latency_seconds_sum 3.5
om_latency_seconds_count 4
om_latency_seconds_created 1700000000.25
# TYPE om_jobs counter
# HELP om_jobs Jobs processed.
om_jobs_total{kind="a"} 10
om_jobs_created{kind="a"} 1600000000.5
om_jobs_total{kind="b"} 4 1700000001.5
# TYPE om_temp gauge
om_temp 21.5
# TYPE om_build info
om_build_info{version="1.2.3"} 1
# TYPE om_state stateset
om_state{om_state="on"} 1
om_state{om_state="off"} 0
# TYPE om_unknown unknown
om_unknown 3
# TYPE om_rt summary
om_rt_sum 10
om_rt_count 2
om_rt{quantile="0.5"} 4
om_rt_created 1650000000
# EOF
"""

FLAKY_PAGE = """# TYPE flaky_gauge gauge
flaky_gauge{k="v"} 1
# TYPE flaky_total counter
flaky_total 2
"""

SCRAPE_METRICS = ["up", "scrape_duration_seconds", "scrape_samples_scraped",
                  "scrape_samples_post_metric_relabeling", "scrape_series_added"]


class Pages:
    """What the test server serves, switched by the test; and what it was asked."""

    def __init__(self):
        self.lock = threading.Lock()
        self.phase = 1
        self.requests = []  # (path, headers)


def make_server(pages):
    class Handler(http_server.BaseHTTPRequestHandler):
        def do_GET(self):
            with pages.lock:
                pages.requests.append((self.path, dict(self.headers)))
                phase = pages.phase
            path = self.path.split("?")[0]
            ctype = "text/plain; version=0.0.4; charset=utf-8"
            if path == "/text":
                body = (TEXT_PAGE_1 if phase == 1 else TEXT_PAGE_2).encode()
            elif path == "/om":
                body = OM_PAGE.encode()
                ctype = "application/openmetrics-text; version=1.0.0; charset=utf-8"
            elif path == "/flaky" and phase == 1:
                body = FLAKY_PAGE.encode()
            elif path == "/slow":
                time.sleep(3)
                body = b"slow 1\n"
            else:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            enc = self.headers.get("Accept-Encoding", "")
            gz = "gzip" in enc and path == "/om"
            if gz:
                body = gzip.compress(body)
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            if gz:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, *args):
            pass

    srv = harness.SinkHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# --- reading the file exporter's output --------------------------------------

def read_requests(path):
    out = []
    try:
        with open(path, "rb") as f:
            data = f.read().decode()
    except FileNotFoundError:
        return out
    for line in data.split("\n")[:-1]:
        if line.strip():
            out.append(json.loads(line))
    return out


def attrs(kvs):
    return {kv["key"]: next(iter(kv["value"].values())) for kv in kvs or []}


def scrapes(path):
    """One dict per resource of every request: job, resource attributes, scope,
    and metrics by name."""
    result = []
    for req in read_requests(path):
        for rm in req.get("resourceMetrics", []):
            ra = attrs(rm.get("resource", {}).get("attributes"))
            for sm in rm.get("scopeMetrics", []):
                result.append({"job": ra.get("service.name"), "res": ra,
                               "scope": sm.get("scope", {}),
                               "metrics": {m["name"]: m for m in sm.get("metrics", [])}})
    return result


def kind(m):
    for k in ("gauge", "sum", "histogram", "summary", "exponentialHistogram"):
        if k in m:
            return k
    return None


def points(m):
    return m[kind(m)]["dataPoints"]


def up_of(s):
    m = s["metrics"].get("up")
    return None if m is None else points(m)[0].get("asDouble")


def job_scrapes(path, job, up=None):
    return [s for s in scrapes(path) if s["job"] == job and "up" in s["metrics"]
            and (up is None or up_of(s) == up)]


def point_by(m, **want):
    for p in points(m):
        a = attrs(p.get("attributes"))
        if all(a.get(k) == v for k, v in want.items()):
            return p
    return None


def ns(p, key):
    return int(p.get(key, "0"))


# --- the fixed pages -----------------------------------------------------------

FIXED_CONFIG = """
receivers:
  prometheus:
    config:
      global:
        scrape_interval: 1s
      scrape_configs:
        - job_name: text
          metrics_path: /text
          params:
            module: ["a b"]
          static_configs:
            - targets: ["127.0.0.1:{port}"]
              labels: {{env: test}}
        - job_name: om
          scrape_interval: 1s
          metrics_path: /om
          static_configs:
            - targets: ["127.0.0.1:{port}"]
        - job_name: relabel
          metrics_path: /text
          static_configs:
            - targets: ["127.0.0.1:{port}"]
              labels: {{env: test}}
          metric_relabel_configs:
            - source_labels: [__name__]
              regex: "rpc_.*|temp|http_requests_total"
              action: keep
            - source_labels: [__name__, code]
              separator: "@"
              regex: "http_requests_total@(4..)"
              action: drop
            - source_labels: [room]
              regex: "(x|y)"
              target_label: sensor
              replacement: "room-$1-$${{1}}"
            - regex: method
              action: labeldrop
            - regex: "__name__|job|instance|room|sensor|code|le|quantile"
              action: labelkeep
        - job_name: flaky
          metrics_path: /flaky
          static_configs:
            - targets: ["127.0.0.1:{port}"]
        - job_name: down
          static_configs:
            - targets: ["127.0.0.1:{down_port}"]
        - job_name: renamed
          metrics_path: /om
          static_configs:
            - targets: ["127.0.0.1:{port}"]
              labels: {{instance: db-7.example, team: infra}}
        - job_name: slow
          scrape_interval: 2s
          scrape_timeout: 500ms
          metrics_path: /slow
          static_configs:
            - targets: ["127.0.0.1:{port}"]
exporters:
  file:
    path: {out}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [file]
"""


def check_resource(check, s, job, port):
    want = {"service.name": job, "service.instance.id": f"127.0.0.1:{port}",
            "server.port": str(port), "url.scheme": "http"}
    check(s["res"] == want, f"{job}: resource attributes as the collector's, no server.address "
          f"for a loopback host ({s['res']})")
    check(s["scope"].get("name") == SCOPE, f"{job}: scope name is the collector's")


def check_scrape_metrics(check, s, job, up, scraped, post, extra_attrs):
    for name in SCRAPE_METRICS:
        m = s["metrics"].get(name)
        if not check(m is not None and kind(m) == "gauge" and len(points(m)) == 1,
                     f"{job}: {name} is one gauge point"):
            continue
        check(attrs(points(m)[0].get("attributes")) == extra_attrs,
              f"{job}: {name} carries the target's static labels {extra_attrs}")
    check(up_of(s) == up, f"{job}: up = {up} ({up_of(s)})")
    got = points(s["metrics"]["scrape_samples_scraped"])[0].get("asDouble")
    check(got == scraped, f"{job}: scrape_samples_scraped = {scraped} ({got})")
    got = points(s["metrics"]["scrape_samples_post_metric_relabeling"])[0].get("asDouble")
    check(got == post, f"{job}: scrape_samples_post_metric_relabeling = {post} ({got})")


def check_text(check, first, second, port):
    s = second
    check_resource(check, s, "text", port)
    want_names = {"http_requests_total", "temp", "rpc_seconds", "rpc_duration_seconds", "legacy",
                  "metric_without_type", "going_away", *SCRAPE_METRICS}
    check(set(s["metrics"]) == want_names, f"text: exactly the metrics {sorted(want_names)} "
          f"({sorted(s['metrics'])})")
    check_scrape_metrics(check, s, "text", 1, 17, 17, {"env": "test"})
    added1 = points(first["metrics"]["scrape_series_added"])[0].get("asDouble")
    added2 = points(s["metrics"]["scrape_series_added"])[0].get("asDouble")
    check(added1 == 17 and added2 == 0,
          f"text: scrape_series_added 17 (samples) on the first scrape, 0 on the next ({added1}, {added2})")
    t1 = ns(points(first["metrics"]["up"])[0], "timeUnixNano")
    t2 = ns(points(s["metrics"]["up"])[0], "timeUnixNano")

    m = s["metrics"]["http_requests_total"]
    check(kind(m) == "sum" and m["sum"].get("isMonotonic") is True
          and m["sum"].get("aggregationTemporality") == 2,
          "text: the counter is a monotonic cumulative Sum named with _total")
    check(m.get("description") == "The total number of HTTP requests.", "text: HELP is the description")
    p = point_by(m, code="200")
    check(p is not None and p.get("asDouble") == 1027
          and attrs(p["attributes"]) == {"code": "200", "method": "post", "env": "test"},
          f"text: code=200 point 1027 with attributes code, method, env ({p})")
    check(p is not None and ns(p, "startTimeUnixNano") == t1 and ns(p, "timeUnixNano") == t2,
          "text: a counter without _created starts at the scrape that first saw it")
    p = point_by(m, code="400")
    check(p is not None and p.get("asDouble") == 3
          and ns(p, "timeUnixNano") == 1395066363000 * 1000000
          and ns(p, "startTimeUnixNano") == 1395066363000 * 1000000,
          f"text: the explicit timestamp is kept (honor_timestamps) ({p})")

    m = s["metrics"]["temp"]
    check(kind(m) == "gauge" and len(points(m)) == 3, "text: temp is a gauge of 3 points")
    check(m.get("description") == 'Temperature, with "quotes", \\ and \n a newline.',
          f"text: HELP escapes (\\\\, \\n) are read ({m.get('description')!r})")
    p = point_by(m, room='a b"c\\d\ne')
    check(p is not None and p.get("asDouble") == "-Infinity" and "startTimeUnixNano" not in p,
          f"text: label value escapes, -Inf, no start time on a gauge ({p})")
    p = point_by(m, room="x")
    check(p is not None and p.get("asDouble") == "NaN", f"text: NaN ({p})")
    p = point_by(m, room="y")
    check(p is not None and p.get("asDouble") == "Infinity", f"text: +Inf and a trailing comma ({p})")

    m = s["metrics"]["rpc_seconds"]
    p = points(m)[0] if kind(m) == "histogram" else None
    check(p is not None and m["histogram"].get("aggregationTemporality") == 2
          and p.get("count") == "144" and p.get("sum") == 53.5
          and p.get("explicitBounds") == [0.05, 0.1] and p.get("bucketCounts") == ["24", "9", "111"]
          and attrs(p["attributes"]) == {"env": "test"} and ns(p, "startTimeUnixNano") == t1,
          f"text: histogram with explicit bounds, per-bucket counts, sum, count ({p})")

    m = s["metrics"]["rpc_duration_seconds"]
    p = points(m)[0] if kind(m) == "summary" else None
    check(p is not None and p.get("count") == "2693" and p.get("sum") == 17560473
          and p.get("quantileValues") == [{"quantile": 0.01, "value": 3102},
                                          {"quantile": 0.99, "value": 76656}]
          and ns(p, "startTimeUnixNano") == t1,
          f"text: summary with quantiles, sum, count ({p})")

    m = s["metrics"]["legacy"]
    check(kind(m) == "gauge" and points(m)[0].get("asDouble") == 7, "text: untyped -> Gauge")
    m = s["metrics"]["metric_without_type"]
    p = points(m)[0] if kind(m) == "gauge" else None
    check(p is not None and p.get("asDouble") == 12.5
          and attrs(p["attributes"]) == {"exported_job": "exposed", "env": "test"},
          f"text: no TYPE -> Gauge; an exposed job label becomes exported_job ({p})")
    m = s["metrics"]["going_away"]
    check(kind(m) == "gauge" and points(m)[0].get("asDouble") == 1, "text: going_away is there")


def check_om(check, s, port):
    check_resource(check, s, "om", port)
    want = {"om_latency_seconds", "om_jobs_total", "om_temp", "om_build_info", "om_state",
            "om_unknown", "om_rt", *SCRAPE_METRICS}
    check(set(s["metrics"]) == want, f"om: exactly the metrics {sorted(want)} ({sorted(s['metrics'])})")
    check_scrape_metrics(check, s, "om", 1, 18, 18, {})
    t = ns(points(s["metrics"]["up"])[0], "timeUnixNano")
    m = s["metrics"]["om_latency_seconds"]
    p = points(m)[0] if kind(m) == "histogram" else None
    check(p is not None and m.get("unit") == "seconds" and m.get("description") == "Latency."
          and p.get("count") == "4" and p.get("sum") == 3.5
          and p.get("explicitBounds") == [0.5, 1.0] and p.get("bucketCounts") == ["1", "2", "1"]
          and ns(p, "startTimeUnixNano") == 1700000000250000000 and ns(p, "timeUnixNano") == t,
          f"om: histogram with UNIT, start time from _created, exemplar ignored ({m})")
    m = s["metrics"]["om_jobs_total"]
    check(kind(m) == "sum" and m["sum"].get("isMonotonic") is True
          and m.get("description") == "Jobs processed.", "om: counter -> monotonic Sum om_jobs_total")
    p = point_by(m, kind="a")
    check(p is not None and p.get("asDouble") == 10
          and ns(p, "startTimeUnixNano") == 1600000000500000000,
          f"om: counter start time from _created ({p})")
    p = point_by(m, kind="b")
    check(p is not None and p.get("asDouble") == 4 and ns(p, "timeUnixNano") == 1700000001500000000
          and ns(p, "startTimeUnixNano") == 1700000001500000000,
          f"om: a timestamp in seconds; no _created: start at first sight ({p})")
    check(len(points(m)) == 2, "om: _created makes no point of its own")
    m = s["metrics"]["om_temp"]
    check(kind(m) == "gauge" and points(m)[0].get("asDouble") == 21.5, "om: gauge")
    m = s["metrics"]["om_build_info"]
    p = points(m)[0] if kind(m) == "sum" else None
    check(p is not None and m["sum"].get("isMonotonic") is not True and p.get("asDouble") == 1
          and attrs(p["attributes"]) == {"version": "1.2.3"},
          f"om: info -> non-monotonic cumulative Sum ({m})")
    m = s["metrics"]["om_state"]
    check(kind(m) == "sum" and m["sum"].get("isMonotonic") is not True
          and point_by(m, om_state="on").get("asDouble") == 1
          and point_by(m, om_state="off").get("asDouble") == 0,
          "om: stateset -> non-monotonic Sum, one point per state")
    m = s["metrics"]["om_unknown"]
    check(kind(m) == "gauge" and points(m)[0].get("asDouble") == 3, "om: unknown -> Gauge")
    m = s["metrics"]["om_rt"]
    p = points(m)[0] if kind(m) == "summary" else None
    check(p is not None and p.get("count") == "2" and p.get("sum") == 10
          and p.get("quantileValues") == [{"quantile": 0.5, "value": 4}]
          and ns(p, "startTimeUnixNano") == 1650000000000000000,
          f"om: summary with start time from _created ({p})")


def check_relabel(check, s, port):
    check_resource(check, s, "relabel", port)
    want = {"http_requests_total", "temp", "rpc_seconds", "rpc_duration_seconds", *SCRAPE_METRICS}
    check(set(s["metrics"]) == want, f"relabel: keep left {sorted(want)} ({sorted(s['metrics'])})")
    check_scrape_metrics(check, s, "relabel", 1, 17, 13, {"env": "test"})
    m = s["metrics"]["http_requests_total"]
    check(len(points(m)) == 1 and attrs(points(m)[0]["attributes"]) == {"code": "200"},
          f"relabel: drop removed code=400 (source_labels joined by the separator); labeldrop "
          f"removed method, labelkeep removed env ({points(m)})")
    m = s["metrics"]["temp"]
    got = sorted(tuple(sorted(attrs(p["attributes"]).items())) for p in points(m))
    want_t = sorted([(("room", 'a b"c\\d\ne'),),
                     (("room", "x"), ("sensor", "room-x-x")),
                     (("room", "y"), ("sensor", "room-y-y"))])
    check(got == want_t, f"relabel: replace with $1 and ${{1}}, only where the regex matches "
          f"(anchored) ({got})")
    for name in ("rpc_seconds", "rpc_duration_seconds"):
        check(attrs(points(s["metrics"][name])[0].get("attributes")) == {},
              f"relabel: {name} kept, env removed by labelkeep")


def case_fixed(args, check):
    pages = Pages()
    srv = make_server(pages)
    port = srv.server_address[1]
    workdir = tempfile.mkdtemp(prefix="sy-promrecv-")
    out = os.path.join(workdir, "out.json")
    metrics_port = free_port()
    cfg = FIXED_CONFIG.format(port=port, down_port=free_port(), out=out,
                              metrics_port=metrics_port)
    try:
        with harness.Router(args.bin, [args.plugin_dir], cfg) as router:
            try:
                harness.wait_for("two successful scrapes of every job", lambda: all(
                    len(job_scrapes(out, j, 1)) >= 2 for j in ("text", "om", "relabel", "flaky")),
                    WAIT)
                harness.wait_for("a scrape of the down, slow and renamed jobs", lambda: all(
                    job_scrapes(out, j) for j in ("down", "slow", "renamed")), WAIT)
                ren = job_scrapes(out, "renamed")[0]
                check(ren["res"] == {"service.name": "renamed", "server.address": "db-7.example",
                                     "service.instance.id": "db-7.example", "server.port": "",
                                     "url.scheme": "http"},
                      f"renamed: a static instance label replaces the address; a host that is "
                      f"not loopback is server.address ({ren['res']})")
                check(attrs(points(ren["metrics"]["up"])[0].get("attributes")) == {"team": "infra"}
                      and attrs(points(ren["metrics"]["om_temp"])[0].get("attributes")) == {"team": "infra"},
                      "renamed: the other static labels stay attributes")
                text = job_scrapes(out, "text", 1)
                check_text(check, text[0], text[1], port)
                check_om(check, job_scrapes(out, "om", 1)[1], port)
                check_relabel(check, job_scrapes(out, "relabel", 1)[1], port)

                down = job_scrapes(out, "down")[0]
                check(set(down["metrics"]) == set(SCRAPE_METRICS),
                      f"down: only the scrape metrics ({sorted(down['metrics'])})")
                check_scrape_metrics(check, down, "down", 0, 0, 0, {})
                slow = job_scrapes(out, "slow")[0]
                dur = points(slow["metrics"]["scrape_duration_seconds"])[0].get("asDouble")
                check(up_of(slow) == 0 and 0.4 <= dur < 1.5,
                      f"slow: cut at scrape_timeout 500ms: up 0, duration {dur}")

                with pages.lock:
                    reqs = list(pages.requests)
                text_req = [r for r in reqs if r[0].startswith("/text")]
                check(bool(text_req) and text_req[0][0] == "/text?module=a%20b",
                      f"params are sent in the query string ({text_req[:1]})")
                hdrs = text_req[0][1] if text_req else {}
                acc = hdrs.get("Accept", "")
                check("application/openmetrics-text;version=1.0.0" in acc
                      and "text/plain;version=0.0.4" in acc,
                      f"Accept negotiates OpenMetrics and text 0.0.4 ({acc})")
                check(hdrs.get("X-Prometheus-Scrape-Timeout-Seconds") == "1",
                      f"X-Prometheus-Scrape-Timeout-Seconds ({hdrs.get('X-Prometheus-Scrape-Timeout-Seconds')})")
                check("gzip" in hdrs.get("Accept-Encoding", ""), "gzip is accepted")

                # Phase 2: a series disappears, a counter resets, a target goes down.
                n_text = len(job_scrapes(out, "text", 1))
                n_flaky = len(job_scrapes(out, "flaky"))
                with pages.lock:
                    pages.phase = 2

                def phase2():
                    t = job_scrapes(out, "text", 1)[n_text:]
                    t = [s for s in t if point_by(s["metrics"]["http_requests_total"],
                                                  code="200").get("asDouble") == 5]
                    f = [s for s in job_scrapes(out, "flaky")[n_flaky:] if up_of(s) == 0]
                    return (t, f) if t and f else None
                t, f = harness.wait_for("the second phase", phase2, WAIT)
                s = t[0]
                m = s["metrics"].get("going_away")
                p = points(m)[0] if m else None
                check(p is not None and p.get("flags") == 1 and "asDouble" not in p
                      and ns(p, "timeUnixNano") == ns(points(s["metrics"]["up"])[0], "timeUnixNano"),
                      f"text: the series that disappeared gets a stale point, flags 1 ({m})")
                p = point_by(s["metrics"]["http_requests_total"], code="200")
                check(ns(p, "startTimeUnixNano") == ns(p, "timeUnixNano"),
                      f"text: the counter went down: its start time is reset ({p})")
                p400 = point_by(s["metrics"]["http_requests_total"], code="400")
                check(p400.get("flags", 0) == 0, "text: the other series are not stale")
                def two_after():
                    t = [s for s in job_scrapes(out, "text", 1)[n_text:]
                         if point_by(s["metrics"]["http_requests_total"],
                                     code="200").get("asDouble") == 5]
                    return t if len(t) >= 2 else None
                t = harness.wait_for("two scrapes of the second phase", two_after, WAIT)
                n = sum(1 for s in t if "going_away" in s["metrics"])
                check(n == 1, f"text: the stale point is written once ({n} of {len(t)} scrapes)")
                s = f[0]
                m1, m2 = s["metrics"].get("flaky_gauge"), s["metrics"].get("flaky_total")
                p1 = points(m1)[0] if m1 else {}
                p2 = points(m2)[0] if m2 else {}
                check(up_of(s) == 0 and p1.get("flags") == 1 and p2.get("flags") == 1
                      and attrs(p1.get("attributes")) == {"k": "v"}
                      and kind(m2) == "sum" and ns(p2, "startTimeUnixNano") > 0,
                      f"flaky: target down -> up 0 and every series stale ({m1}, {m2})")
                status, _, body = http("GET", f"http://127.0.0.1:{metrics_port}/metrics")
                text_m = body.decode()
                check(status == 200 and "switchyard_receiver_prometheus_scrapes_total" in text_m
                      and "switchyard_receiver_prometheus_scrape_failures_total" in text_m
                      and "switchyard_receiver_prometheus_stale_points_total" in text_m,
                      "the receiver's own metrics are served")
            except AssertionError as e:
                check(False, str(e))
            rc = router.terminate()
            check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
            if check.failures:
                router.dump(prefix="router: ")
    finally:
        srv.shutdown()
        shutil.rmtree(workdir, ignore_errors=True)


# --- real targets --------------------------------------------------------------

SIMPLE_CONFIG = """
receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: {job}
          scrape_interval: 1s
          static_configs:
            - targets: ["127.0.0.1:{port}"]
exporters:
  file:
    path: {out}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [file]
"""


def start_process(argv, ready_url, workdir, name):
    log = open(os.path.join(workdir, f"{name}.log"), "wb")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def ready():
        if proc.poll() is not None:
            raise AssertionError(f"{name} exited with {proc.returncode}")
        status, _, _ = http("GET", ready_url, timeout=2.0)
        return status == 200
    try:
        harness.wait_for(f"{name} to be ready", ready, 60.0)
    except AssertionError:
        stop_process(proc, log)
        raise
    return proc, log


def stop_process(proc, log):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


def scrape_real(args, check, job, port, verify):
    workdir = tempfile.mkdtemp(prefix="sy-promrecv-")
    out = os.path.join(workdir, "out.json")
    cfg = SIMPLE_CONFIG.format(job=job, port=port, out=out, metrics_port=free_port())
    with harness.Router(args.bin, [args.plugin_dir], cfg) as router:
        try:
            ok = harness.wait_for(f"two successful scrapes of {job}",
                                  lambda: len(job_scrapes(out, job, 1)) >= 2, WAIT)
            s = job_scrapes(out, job, 1)[1]
            check(bool(ok), f"{job}: scraped, up = 1")
            check_resource(check, s, job, port)
            verify(s)
        except AssertionError as e:
            check(False, str(e))
        rc = router.terminate()
        check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
        if check.failures:
            router.dump(prefix="router: ")
    shutil.rmtree(workdir, ignore_errors=True)


def check_histogram(check, m, what):
    p = points(m)[0] if m and kind(m) == "histogram" else None
    ok = p is not None and len(p.get("bucketCounts", [])) == len(p.get("explicitBounds", [])) + 1 \
        and sum(int(c) for c in p["bucketCounts"]) == int(p.get("count", "0")) \
        and p["explicitBounds"] == sorted(p["explicitBounds"]) and ns(p, "startTimeUnixNano") > 0
    check(ok, f"{what}: a histogram whose buckets add up to its count ({p})")


def case_prometheus(args, check):
    if not os.access(PROMETHEUS, os.X_OK):
        check(False, f"{PROMETHEUS} is missing: apt-get install prometheus "
              "(deploy/debian-deps.sh --test does)")
        return
    workdir = tempfile.mkdtemp(prefix="sy-prom-")
    port = free_port()
    with open(os.path.join(workdir, "prometheus.yml"), "w") as f:
        f.write("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    proc, log = start_process(
        [PROMETHEUS, f"--config.file={workdir}/prometheus.yml",
         f"--storage.tsdb.path={workdir}/tsdb", f"--web.listen-address=127.0.0.1:{port}"],
        f"http://127.0.0.1:{port}/-/ready", workdir, "prometheus")
    try:
        def verify(s):
            m = s["metrics"].get("prometheus_build_info")
            p = points(m)[0] if m else {}
            a = attrs(p.get("attributes"))
            check(kind(m) == "gauge" and p.get("asDouble") == 1 and a.get("version", "").startswith("2.")
                  and "goversion" in a, f"prometheus_build_info gauge with version ({a})")
            check_histogram(check, s["metrics"].get("prometheus_http_request_duration_seconds"),
                            "prometheus_http_request_duration_seconds")
            m = s["metrics"].get("prometheus_http_requests_total")
            check(m is not None and kind(m) == "sum" and m["sum"].get("isMonotonic") is True
                  and point_by(m, handler="/metrics") is not None,
                  "prometheus_http_requests_total is a monotonic Sum with handler=/metrics")
            n = sum(len(points(m)) for m in s["metrics"].values())
            scraped = points(s["metrics"]["scrape_samples_scraped"])[0].get("asDouble")
            check(scraped > 100 and n > 50, f"hundreds of samples ({scraped}), {n} points")
        scrape_real(args, check, "prometheus", port, verify)
    finally:
        stop_process(proc, log)
        shutil.rmtree(workdir, ignore_errors=True)


def case_node_exporter(args, check):
    if not os.access(NODE_EXPORTER, os.X_OK):
        check(False, f"{NODE_EXPORTER} is missing: apt-get install prometheus-node-exporter "
              "(deploy/debian-deps.sh --test does)")
        return
    workdir = tempfile.mkdtemp(prefix="sy-nodeexp-")
    port = free_port()
    proc, log = start_process(
        [NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults",
         "--collector.cpu", "--collector.meminfo", "--collector.loadavg"],
        f"http://127.0.0.1:{port}/metrics", workdir, "node_exporter")
    try:
        def verify(s):
            ms = s["metrics"]
            m = ms.get("node_memory_MemTotal_bytes")
            check(m is not None and kind(m) == "gauge" and points(m)[0].get("asDouble", 0) > 0,
                  "node_memory_MemTotal_bytes is a positive gauge")
            m = ms.get("node_load1")
            check(m is not None and kind(m) == "gauge", "node_load1 is a gauge")
            m = ms.get("node_cpu_seconds_total")
            check(m is not None and kind(m) == "sum" and m["sum"].get("isMonotonic") is True
                  and point_by(m, cpu="0", mode="idle") is not None,
                  "node_cpu_seconds_total is a monotonic Sum with cpu and mode")
            m = ms.get("go_gc_duration_seconds")
            check(m is not None and kind(m) == "summary" and len(points(m)[0].get("quantileValues", [])) == 5,
                  f"go_gc_duration_seconds is a summary of 5 quantiles")
            m = ms.get("node_exporter_build_info")
            check(m is not None and "version" in attrs(points(m)[0].get("attributes")),
                  "node_exporter_build_info with its version")
        scrape_real(args, check, "node", port, verify)
    finally:
        stop_process(proc, log)
        shutil.rmtree(workdir, ignore_errors=True)


SELF_CONFIG = """
receivers:
  prometheus:
    config:
      scrape_configs:
        - job_name: self
          scrape_interval: 1s
          static_configs:
            - targets: ["127.0.0.1:{metrics_port}"]
exporters:
  file:
    path: {out}
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [file]
"""


def case_self(args, check):
    workdir = tempfile.mkdtemp(prefix="sy-promself-")
    out = os.path.join(workdir, "out.json")
    mp = free_port()
    with harness.Router(args.bin, [args.plugin_dir], SELF_CONFIG.format(metrics_port=mp, out=out)) as router:
        try:
            def third():
                s = job_scrapes(out, "self", 1)
                return s[2:] or None
            s = harness.wait_for("three scrapes of the router itself", third, WAIT)[0]
            check_resource(check, s, "self", mp)
            m = s["metrics"].get("switchyard_receiver_prometheus_scrapes_total")
            p = points(m)[0] if m and kind(m) == "sum" else {}
            check(m is not None and m["sum"].get("isMonotonic") is True and p.get("asDouble", 0) >= 2,
                  f"the router's own counter of scrapes arrives as a monotonic Sum ({m})")
            names = [n for n in s["metrics"] if n.startswith("switchyard_")]
            check(len(names) >= 5, f"the router's metrics arrive ({len(names)} switchyard_*)")
        except AssertionError as e:
            check(False, str(e))
        rc = router.terminate()
        check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
        if check.failures:
            router.dump(prefix="router: ")
    shutil.rmtree(workdir, ignore_errors=True)


BAD_CONFIGS = [
    # (the receiver's config block, line:col of the node at fault, words of the message)
    ("""      scrape_configs:
        - job_name: a
          scrape_interval: 5s
          scrape_timeout: 10s
          static_configs: [{targets: ["127.0.0.1:1"]}]
""", "7:27", "scrape timeout greater than scrape interval"),
    ("""      scrape_configs:
        - job_name: a
          static_configs: [{targets: ["http://127.0.0.1:1/metrics"]}]
""", "6:39", "is not a valid target"),
    ("""      scrape_configs:
        - job_name: a
          metric_relabel_configs:
            - source_labels: [__name__]
              regex: "(unclosed"
              action: keep
""", "7:15", "invalid regex"),
    ("""      scrape_configs:
        - job_name: a
          metric_relabel_configs:
            - action: replace
              regex: x
""", "7:15", "requires 'target_label'"),
    ("""      scrape_configs:
        - job_name: a
          kubernetes_sd_configs: [{role: pod}]
""", "6:34", "not supported"),
    ("""      rule_files: [x.yml]
      scrape_configs:
        - job_name: a
""", "4:19", "unsupported features: rule_files"),
    ("""      scrape_configs:
        - job_name: a
        - job_name: a
""", "6:11", "multiple scrape configs with job name"),
    ("""      scrape_configs:
        - job_name: a
          scrape_interval: 1x
""", "6:28", "not a valid duration"),
]


def case_config(args, check):
    """`switchyard validate` refuses bad receiver configs with the node's position."""
    workdir = tempfile.mkdtemp(prefix="sy-promcfg-")
    try:
        for i, (block, pos, words) in enumerate(BAD_CONFIGS):
            path = os.path.join(workdir, f"bad{i}.yaml")
            with open(path, "w") as f:
                f.write("receivers:\n  prometheus:\n    config:\n" + block +
                        "exporters:\n  debug:\nservice:\n  pipelines:\n"
                        "    metrics: {receivers: [prometheus], exporters: [debug]}\n")
            r = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                                args.plugin_dir], capture_output=True, timeout=30)
            msg = (r.stdout + r.stderr).decode()
            check(r.returncode != 0 and f"bad{i}.yaml:{pos}: " in msg and words in msg,
                  f"validate refuses config {i} at {pos}: {words} ({msg.strip()})")
        path = os.path.join(workdir, "good.yaml")
        with open(path, "w") as f:
            f.write("receivers:\n  prometheus:\n    config:\n" + FIXED_CONFIG.split(
                "    config:\n")[1].split("exporters:")[0].format(port=1, down_port=2) +
                "exporters:\n  debug:\nservice:\n  pipelines:\n"
                "    metrics: {receivers: [prometheus], exporters: [debug]}\n")
        r = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                            args.plugin_dir], capture_output=True, timeout=30)
        check(r.returncode == 0, f"validate accepts the fixed test's config ({r.stderr.decode()})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


SYSTEM_PYTHON = os.environ.get("SY_SYSTEM_PYTHON", "/usr/bin/python3")

# A target made with the Python Prometheus client (Debian's python3-prometheus-client),
# in its own process: its HTTP server answers OpenMetrics when the Accept header
# asks for it. It prints the _created values of its registry as one JSON line.
PY_CLIENT = r"""
import json, sys, time
from prometheus_client import (CollectorRegistry, Counter, Enum, Gauge, Histogram, Info,
                               Summary, start_http_server)
reg = CollectorRegistry()
c = Counter("pc_requests", "Requests.", ["path"], registry=reg)
c.labels(path="/a").inc(3)
g = Gauge("pc_temperature_celsius", "Temperature.", unit="celsius", registry=reg)
g.set(21.5)
h = Histogram("pc_latency_seconds", "Latency.", buckets=[0.1, 1.0], registry=reg)
for v in (0.05, 0.5, 2):
    h.observe(v)
s = Summary("pc_size_bytes", "Size.", registry=reg)
s.observe(10)
s.observe(20)
Info("pc_build", "Build.", registry=reg).info({"version": "1.2.3"})
Enum("pc_state", "State.", states=["a", "b"], registry=reg).state("b")
start_http_server(int(sys.argv[1]), addr="127.0.0.1", registry=reg)
created = {}
for fam in reg.collect():
    for smp in fam.samples:
        if smp.name.endswith("_created"):
            created[smp.name] = smp.value
print(json.dumps(created), flush=True)
time.sleep(3600)
"""


def created_ns(v):
    """The receiver's conversion of a _created value: seconds and fraction apart."""
    import math
    secs = math.floor(v)
    return int(secs) * 1000000000 + int(round((v - secs) * 1e9))


def case_python_client(args, check):
    probe = subprocess.run([SYSTEM_PYTHON, "-c", "import prometheus_client"],
                           capture_output=True, timeout=30)
    if probe.returncode != 0:
        check(False, f"{SYSTEM_PYTHON} cannot import prometheus_client: apt-get install "
              "python3-prometheus-client (deploy/debian-deps.sh --test does)")
        return
    port = free_port()
    proc = subprocess.Popen([SYSTEM_PYTHON, "-c", PY_CLIENT, str(port)], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    workdir = tempfile.mkdtemp(prefix="sy-prompy-")
    try:
        line = proc.stdout.readline()
        if not line:
            check(False, "the Python client's target did not start")
            return
        created = json.loads(line)
        out = os.path.join(workdir, "out.json")
        cfg = SIMPLE_CONFIG.format(job="py", port=port, out=out, metrics_port=free_port())
        with harness.Router(args.bin, [args.plugin_dir], cfg) as router:
            try:
                harness.wait_for("two successful scrapes of py",
                                 lambda: len(job_scrapes(out, "py", 1)) >= 2, WAIT)
                s = job_scrapes(out, "py", 1)[1]
                check_resource(check, s, "py", port)
                want = {"pc_requests_total", "pc_temperature_celsius", "pc_latency_seconds",
                        "pc_size_bytes", "pc_build_info", "pc_state", *SCRAPE_METRICS}
                check(set(s["metrics"]) == want,
                      f"py: exactly the metrics {sorted(want)} ({sorted(s['metrics'])})")
                check_scrape_metrics(check, s, "py", 1, 15, 15, {})
                ms = s["metrics"]
                m = ms["pc_requests_total"]
                p = point_by(m, path="/a")
                check(kind(m) == "sum" and m["sum"].get("isMonotonic") is True
                      and m.get("description") == "Requests." and p is not None
                      and p.get("asDouble") == 3
                      and ns(p, "startTimeUnixNano") == created_ns(created["pc_requests_created"]),
                      f"py: counter pc_requests_total, start time from OpenMetrics _created ({m})")
                m = ms["pc_temperature_celsius"]
                check(kind(m) == "gauge" and m.get("unit") == "celsius"
                      and points(m)[0].get("asDouble") == 21.5,
                      f"py: gauge with the OpenMetrics UNIT, so the page was OpenMetrics ({m})")
                m = ms["pc_latency_seconds"]
                p = points(m)[0] if kind(m) == "histogram" else {}
                check(p.get("explicitBounds") == [0.1, 1.0] and p.get("bucketCounts") == ["1", "1", "1"]
                      and p.get("count") == "3" and abs(p.get("sum", 0) - 2.55) < 1e-9
                      and ns(p, "startTimeUnixNano") == created_ns(created["pc_latency_seconds_created"]),
                      f"py: histogram with its buckets and _created ({p})")
                m = ms["pc_size_bytes"]
                p = points(m)[0] if kind(m) == "summary" else {}
                check(p.get("count") == "2" and p.get("sum") == 30
                      and ns(p, "startTimeUnixNano") == created_ns(created["pc_size_bytes_created"]),
                      f"py: summary without quantiles, with _created ({p})")
                m = ms["pc_build_info"]
                check(kind(m) == "sum" and m["sum"].get("isMonotonic") is not True
                      and attrs(points(m)[0].get("attributes")) == {"version": "1.2.3"},
                      f"py: Info -> non-monotonic Sum pc_build_info ({m})")
                m = ms["pc_state"]
                check(kind(m) == "sum" and point_by(m, pc_state="a").get("asDouble") == 0
                      and point_by(m, pc_state="b").get("asDouble") == 1,
                      f"py: Enum (stateset) -> one point per state ({m})")
            except AssertionError as e:
                check(False, str(e))
            rc = router.terminate()
            check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
            if check.failures:
                router.dump(prefix="router: ")
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        shutil.rmtree(workdir, ignore_errors=True)


BACKPRESSURE_CONFIG = """
receivers:
  prometheus:
    config:
      global:
        scrape_interval: 10ms
      scrape_configs:
        - job_name: bp
          static_configs:
            - targets: [{targets}]
exporters:
  testsink:
    delay: 20ms
    report_path: {report}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [prometheus]
      exporters: [testsink]
"""


def case_backpressure(args, check):
    """A pipeline that cannot keep up: scrapes refused twice are dropped and
    counted; every point emitted reaches the exporter."""
    import re
    workdir = tempfile.mkdtemp(prefix="sy-prombp-")
    report = os.path.join(workdir, "report.txt")
    mp = free_port()
    # Ten targets nobody listens on: every 10 ms each makes a batch (up = 0).
    targets = ", ".join(f'"127.0.0.1:{free_port()}"' for _ in range(10))
    cfg = BACKPRESSURE_CONFIG.format(targets=targets, report=report, metrics_port=mp)
    try:
        with harness.Router(args.bin, [args.kit_dir, args.plugin_dir], cfg) as router:
            try:
                def dropped():
                    _, _, body = http("GET", f"http://127.0.0.1:{mp}/metrics")
                    m = re.search(r"^switchyard_receiver_prometheus_dropped_points_total\{[^}]*\} (\d+)",
                                  body.decode(), re.M)
                    return int(m.group(1)) if m and int(m.group(1)) > 0 else None
                n = harness.wait_for("dropped points to be counted", dropped, WAIT)
                check(n > 0 and n % 5 == 0, f"whole scrapes (5 points each) are dropped and counted ({n})")
                check("the pipeline refused it twice (back-pressure)" in router.output(),
                      "the drop is logged at warn")
            except AssertionError as e:
                check(False, str(e))
            rc = router.terminate(timeout=60)
            check(rc == 0, f"the router drains and exits 0 on SIGTERM ({rc})")
            m = re.search(r"stopped: (\d+) points emitted, (\d+) dropped", router.output())
            with open(report) as f:
                rep = dict(kv.split("=") for kv in f.read().split())
            check(m is not None and int(rep["items"]) == int(m.group(1)) and int(m.group(2)) > 0,
                  f"every point emitted reached the exporter: sink {rep.get('items')}, "
                  f"emitted/dropped {m.groups() if m else None}")
            if check.failures:
                router.dump(n=30, prefix="router: ")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True,
                    choices=["fixed", "prometheus", "node_exporter", "python_client", "self",
                             "config", "backpressure"])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir", help="the test plugins (backpressure: testsink)")
    args = ap.parse_args()
    check = harness.Checks()
    {"fixed": case_fixed, "prometheus": case_prometheus, "node_exporter": case_node_exporter,
     "python_client": case_python_client, "self": case_self, "config": case_config,
     "backpressure": case_backpressure}[args.case](args, check)
    if check.failures:
        print(f"{len(check.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
