#!/usr/bin/env python3
"""The spanmetrics connector through the real binary.

  test_spanmetrics.py setup --src-dir tests/integration/node_spanmetrics --node-dir BUILD/spanmetrics-node
      npm ci of the pinned OpenTelemetry JS SDK (test_otel_js.setup).

  test_spanmetrics.py prometheus --bin ... --plugin-dir ... --src-dir ... --node-dir ...
      traces: otlp -> spanmetrics; metrics: spanmetrics -> prometheus exporter. The
      OpenTelemetry JS SDK (node_spanmetrics/send_spans.mjs, OTLP/HTTP protobuf)
      sends spans of two services with exact durations (bucket bounds hit on the
      nose, the +Inf bucket, an http.method dimension with a default); Debian's
      Prometheus scrapes the exporter every second, and PromQL returns, per
      service, operation, kind, status and method, exactly the number of spans
      sent (traces_span_metrics_calls_total) and exactly the cumulative bucket
      counts, counts and sums the durations give
      (traces_span_metrics_duration_milliseconds_bucket/_count/_sum); the
      connector's own counters agree; the router exits 0 on SIGTERM.

  test_spanmetrics.py file --bin ... --plugin-dir ...
      metrics: spanmetrics -> file exporter (OTLP/JSON lines), with
      AGGREGATION_TEMPORALITY_DELTA, an exponential histogram in seconds, exemplars
      a cardinality limit and the events metric: spans sent as OTLP/JSON in two
      rounds, each flush's points read back field by field (delta counts per round,
      start = previous flush, exemplar ids, the otel.metric.overflow series,
      exponential buckets, span events per exception.type).

  test_spanmetrics.py backpressure --bin ... --plugin-dir ... --kit-dir build/tests/plugins
      two connectors (cumulative every 5 ms, delta) into one metrics pipeline whose
      testsink declines everything until a gate file exists: the flushes are
      refused (SY_EAGAIN, counted), the delta counts carried over; once the gate
      opens the delta points add up to every span sent, and the last cumulative
      point is every span.

  test_spanmetrics.py config --bin ... --plugin-dir ...
      `switchyard validate` refuses what the collector refuses, with its words.

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
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Checks, Router, free_port, http, post_json  # noqa: E402
import test_otel_js  # noqa: E402  (npm ci, shared with the OTLP JS tests)
from test_prometheus import PROMETHEUS_CONFIG  # noqa: E402

PROMETHEUS = os.environ.get("SY_PROMETHEUS_BIN", "/usr/bin/prometheus")
NODE_TIMEOUT = 90.0
SERIES_TIMEOUT = 60.0
MS = 1_000_000
BOUNDS_MS = [2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10000, 15000]
KINDS = ["SPAN_KIND_INTERNAL", "SPAN_KIND_SERVER", "SPAN_KIND_CLIENT", "SPAN_KIND_PRODUCER",
         "SPAN_KIND_CONSUMER"]  # JS SpanKind 0..4
STATUSES = ["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"]  # JS SpanStatusCode


def spans_spec():
    """The spans the SDK sends: (service, name, JS kind, JS status, duration ns, attrs)."""
    out = []

    def add(service, name, kind, status, durs_ms, attrs=None):
        for d in durs_ms:
            out.append({"service": service, "name": name, "kind": kind, "status": status,
                        "dur_ns": int(round(d * MS)), "attrs": attrs or {}})
    add("checkout", "POST /checkout", 1, 0, [1, 2, 3, 45, 45, 250, 1200, 20000])
    add("checkout", "POST /checkout", 1, 2, [7, 900])
    add("checkout", "SELECT orders", 2, 1, [0.5, 0.5, 0.5, 0.5, 0.5, 12])
    add("cart", "GET /cart", 1, 0, [2, 2, 2, 5, 5, 10, 15000], {"http.method": "GET"})
    add("cart", "GET /cart", 1, 0, [3, 60], {"http.method": "POST"})
    add("cart", "GET /cart", 1, 0, [4])  # no http.method: the default, GET
    return out


def expected_series(spec):
    """{(service, span, kind, status, method): [durations in ms]}"""
    series = {}
    for s in spec:
        key = (s["service"], s["name"], KINDS[s["kind"]], STATUSES[s["status"]],
               s["attrs"].get("http.method", "GET"))
        series.setdefault(key, []).append(s["dur_ns"] / 1e6)
    return series


def fmt_le(b):
    """An `le` as Prometheus stores it from an OpenMetrics scrape: a float ("2.0")."""
    return repr(float(b))


CONFIG_PROM = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
connectors:
  spanmetrics:
    metrics_flush_interval: 500ms
    dimensions:
      - name: http.method
        default: GET
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom_port}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [prometheus]
"""

def send_with_sdk(args, endpoint, spec, workdir):
    spec_path = os.path.join(workdir, "spec.json")
    with open(spec_path, "w") as f:
        json.dump({"start_s": int(time.time()) - 5, "spans": spec}, f)
    test_otel_js.copy_if_changed(os.path.join(args.src_dir, "send_spans.mjs"),
                                 os.path.join(args.node_dir, "send_spans.mjs"))
    res = subprocess.run(["node", os.path.join(args.node_dir, "send_spans.mjs"),
                          "--endpoint", endpoint, "--spec", spec_path],
                         cwd=args.node_dir, capture_output=True, timeout=NODE_TIMEOUT)
    sys.stdout.write(res.stdout.decode("utf-8", "replace"))
    sys.stderr.write(res.stderr.decode("utf-8", "replace"))
    return res.returncode


def labels_key(m):
    return (m.get("service_name"), m.get("span_name"), m.get("span_kind"), m.get("status_code"),
            m.get("http_method"))


def check_prom_results(check, prom, ports, want):
    total = sum(len(v) for v in want.values())

    def all_counted():
        r = prom.query("sum(traces_span_metrics_calls_total)")
        return r if r and r[0]["value"][1] == str(total) else None
    harness.wait_for(f"Prometheus to count {total} calls", all_counted, SERIES_TIMEOUT)
    check(True, f"Prometheus counts {total} calls in all")

    calls = prom.query("traces_span_metrics_calls_total")
    got = {labels_key(r["metric"]): int(r["value"][1]) for r in calls}
    exp = {k: len(v) for k, v in want.items()}
    if not check(got == exp, f"calls per service, operation, kind, status and method "
                             f"({len(exp)} series) are the spans sent"):
        print(f"got  {sorted(got.items())}\nwant {sorted(exp.items())}", file=sys.stderr)
    m = calls[0]["metric"]
    check(m.get("otel_scope_name") == "spanmetricsconnector" and
          m.get("exported_job") in ("checkout", "cart") and m.get("job") == "switchyard",
          f"series carry the scope and the resource's job ({m})")

    per_op = prom.query(
        "sum by (service_name, span_name) (traces_span_metrics_calls_total)")
    got_op = {(r["metric"]["service_name"], r["metric"]["span_name"]): int(r["value"][1])
              for r in per_op}
    exp_op = {}
    for k, v in want.items():
        exp_op[(k[0], k[1])] = exp_op.get((k[0], k[1]), 0) + len(v)
    check(got_op == exp_op, f"calls per service and operation {got_op}")

    buckets = prom.query("traces_span_metrics_duration_milliseconds_bucket")
    got_b = {labels_key(r["metric"]) + (r["metric"]["le"],): int(r["value"][1])
             for r in buckets}
    exp_b = {}
    for k, durs in want.items():
        for b in BOUNDS_MS:
            exp_b[k + (fmt_le(b),)] = sum(1 for d in durs if d <= b)
        exp_b[k + ("+Inf",)] = len(durs)
    if not check(got_b == exp_b, f"every bucket count is the durations' ({len(exp_b)} buckets)"):
        diff = {k: (got_b.get(k), v) for k, v in exp_b.items() if got_b.get(k) != v}
        print(f"differ (got, want): {diff}; le values got: "
              f"{sorted(set(k[-1] for k in got_b))}", file=sys.stderr)

    counts = prom.query("traces_span_metrics_duration_milliseconds_count")
    check({labels_key(r["metric"]): int(r["value"][1]) for r in counts} == exp,
          "histogram counts are the calls")
    sums = prom.query("traces_span_metrics_duration_milliseconds_sum")
    got_s = {labels_key(r["metric"]): float(r["value"][1]) for r in sums}
    ok = set(got_s) == set(want) and all(
        math.isclose(got_s[k], sum(v), rel_tol=1e-9) for k, v in want.items())
    check(ok, f"histogram sums are the durations in ms ({got_s})")

    p = prom.query('histogram_quantile(1, sum by (le) (traces_span_metrics_duration_'
                   'milliseconds_bucket{service_name="checkout",span_name="SELECT orders"}))')
    check(p and float(p[0]["value"][1]) == 50.0,
          f"PromQL's histogram_quantile(1) of SELECT orders is its 12ms span's bucket bound, 50 ({p})")

    status, _, body = http("GET", f"http://127.0.0.1:{ports['metrics_port']}/metrics")
    text = body.decode("utf-8", "replace")
    mm = re.search(r"^switchyard_connector_spanmetrics_spans_total\{[^}]*\} (\d+)$", text, re.M)
    check(mm and int(mm.group(1)) == total,
          f"switchyard_connector_spanmetrics_spans_total is {total} ({mm and mm.group(1)})")
    mm = re.search(r"^switchyard_connector_spanmetrics_flushes_total\{[^}]*\} (\d+)$", text, re.M)
    check(mm and int(mm.group(1)) >= 2, "the connector flushed at least twice")


def with_router(args, dirs, config, body, before_stop=None):
    """Runs body(check) against the router on `config`, then before_stop(check)
    (also after a failed wait), stops the router (SIGTERM, exit 0 checked) and
    prints its output when anything failed. Returns the test's exit status."""
    check = Checks()
    with Router(args.bin, dirs, config) as router:
        try:
            body(check)
        except AssertionError as e:
            check(False, str(e))
        finally:
            if before_stop:
                before_stop(check)
        rc = router.terminate()
        check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
        if check.failures:
            router.dump(prefix="router: ")
    return report(check)


def run_prometheus(args):
    if not (os.path.isfile(PROMETHEUS) and os.access(PROMETHEUS, os.X_OK)):
        print(f"FAIL {PROMETHEUS} is missing: `apt-get install prometheus` "
              f"(deploy/debian-deps.sh --test does)", file=sys.stderr)
        return 1
    test_otel_js.check_node()
    if not os.path.isdir(os.path.join(args.node_dir, "node_modules", "@opentelemetry",
                                      "sdk-trace-base")):
        print("FAIL node_modules missing: integration.spanmetrics.setup did not run",
              file=sys.stderr)
        return 1
    ports = {"otlp_port": free_port(), "prom_port": free_port(), "metrics_port": free_port()}
    workdir = tempfile.mkdtemp(prefix="sy-spanmetrics-")
    spec = spans_spec()
    prom = harness.Prometheus(PROMETHEUS, workdir,
                              PROMETHEUS_CONFIG.format(prom_port=ports["prom_port"]))

    def body(check):
        prom.ready()
        rc = send_with_sdk(args, f"http://127.0.0.1:{ports['otlp_port']}", spec, workdir)
        check(rc == 0, f"the OpenTelemetry JS SDK exported all {len(spec)} spans ({rc})")
        check_prom_results(check, prom, ports, expected_series(spec))

    def stop_prometheus(check):
        prom.stop(check)
    try:
        return with_router(args, [args.plugin_dir], CONFIG_PROM.format(**ports), body,
                           stop_prometheus)
    finally:
        if prom.proc.poll() is None:  # the router did not start
            prom.stop(lambda cond, what: cond)
        shutil.rmtree(workdir, ignore_errors=True)


# --- file: delta, exponential, exemplars, overflow ------------------------------

CONFIG_FILE = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
connectors:
  spanmetrics:
    metrics_flush_interval: 300ms
    aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA
    namespace: ""
    histogram:
      unit: s
      exponential:
        max_size: 8
    exemplars:
      enabled: true
      max_per_data_point: 2
    aggregation_cardinality_limit: 2
    events:
      enabled: true
      dimensions:
        - name: exception.type
exporters:
  file:
    path: {path}
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [file]
"""


def read_points(path):
    """Every data point written so far: (metric name, point dict, resource service)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            doc = json.loads(line)
            for rm in doc.get("resourceMetrics", []):
                svc = next((a["value"]["stringValue"] for a in rm["resource"]["attributes"]
                            if a["key"] == "service.name"), None)
                for sm in rm["scopeMetrics"]:
                    for m in sm["metrics"]:
                        body = m.get("sum") or m.get("exponentialHistogram") or {}
                        for p in body.get("dataPoints", []):
                            out.append((m["name"], p, svc, m))
    return out


def attrs_of(p):
    return {a["key"]: list(a["value"].values())[0] for a in p.get("attributes", [])}


def run_file(args):
    workdir = tempfile.mkdtemp(prefix="sy-spanmetrics-file-")
    path = os.path.join(workdir, "out.jsonl")
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1/traces"
    t0 = time.time_ns() - 10_000 * MS

    def body(check):
        # Round 1: a (3 spans: 1s, 2s, 4s), b (1 span), c and d beyond the
        # limit of 2 series: the overflow series.
        spans = []
        for i, (name, dur_s) in enumerate([("a", 1), ("a", 2), ("a", 4), ("b", 0.5),
                                           ("c", 1), ("d", 1)]):
            spans.append(harness.json_span(
                name, trace_id=f"{i + 1:032x}", span_id=f"{i + 1:016x}",
                start_ns=t0, end_ns=t0 + int(dur_s * 1e9)))
        # span events: two IOError on the first a, one Timeout on b
        spans[0]["events"] = [{"name": "exception", "timeUnixNano": str(t0), "attributes": [
            {"key": "exception.type", "value": {"stringValue": "IOError"}}]}] * 2
        spans[3]["events"] = [{"name": "exception", "timeUnixNano": str(t0), "attributes": [
            {"key": "exception.type", "value": {"stringValue": "Timeout"}}]}]
        status, _, answer = post_json(url, harness.json_traces(spans, "svc"))
        check(status == 200, f"round 1 accepted ({status} {answer[:100]!r})")

        def calls_seen(n):
            def f():
                pts = [p for p in read_points(path) if p[0] == "calls"]
                return pts if sum(int(p[1]["asInt"]) for p in pts) >= n else None
            return f
        pts = harness.wait_for("round 1 in the file", calls_seen(6), 20.0)
        by = {attrs_of(p[1]).get("span.name", "overflow"): p for p in pts}
        check(int(by["a"][1]["asInt"]) == 3 and int(by["b"][1]["asInt"]) == 1,
              "delta calls of round 1: a 3, b 1")
        ov = by.get("overflow")
        check(ov is not None and attrs_of(ov[1]) == {"otel.metric.overflow": True} and
              int(ov[1]["asInt"]) == 2, "c and d are counted in the overflow series")
        check(by["a"][3]["sum"]["aggregationTemporality"] == 1 and
              by["a"][3]["sum"]["isMonotonic"], "calls: delta, monotonic")
        ex = by["a"][1].get("exemplars", [])
        check(len(ex) == 2 and ex[0]["traceId"] == f"{1:032x}" and
              ex[0]["spanId"] == f"{1:016x}" and ex[1]["spanId"] == f"{2:016x}" and
              ex[0]["asDouble"] == 1.0,
              f"a's calls carry its first two spans as exemplars ({ex})")
        hist = [p for p in read_points(path) if p[0] == "duration" and
                attrs_of(p[1]).get("span.name") == "a"]
        h = hist[0][1] if hist else {}
        check(hist and hist[0][3]["unit"] == "s", "duration in seconds")
        # 1, 2, 4 s: powers of two, each the upper bound of its bucket. From
        # scale 20 the histogram comes down just far enough for 8 buckets:
        # scale 1 (indices -1, 1, 3; at scale 2 they would span 9).
        check(h.get("count") == "3" and h.get("sum") == 7.0 and h.get("min") == 1.0 and
              h.get("max") == 4.0, f"exponential count/sum/min/max ({h})")
        pos = h.get("positive", {})
        counts = [int(c) for c in pos.get("bucketCounts", [])]
        scale, off = h.get("scale", 0), pos.get("offset", 0)
        idx = [off + i for i, c in enumerate(counts) for _ in range(c)]
        want_idx = [math.ceil(math.log2(v) * 2 ** scale) - 1 for v in (1, 2, 4)]
        check(scale == 1 and len(counts) <= 8 and idx == want_idx,
              f"exponential buckets at scale {scale}: {idx} == {want_idx}")
        evs = {(attrs_of(p[1])["span.name"], attrs_of(p[1])["exception.type"]): int(p[1]["asInt"])
               for p in read_points(path) if p[0] == "events"}
        check(evs == {("a", "IOError"): 2, ("b", "Timeout"): 1},
              f"the events metric counts the span events per span and exception.type ({evs})")
        first_flush = max(int(p[1]["timeUnixNano"]) for p in pts)

        # Round 2: only a, once: a delta of 1 starting at the last flush.
        n_before = len(read_points(path))
        sp = harness.json_span("a", trace_id="ab" * 16, span_id="cd" * 8,
                               start_ns=t0, end_ns=t0 + 3 * 10**9)
        status, _, _ = post_json(url, harness.json_traces([sp], "svc"))
        check(status == 200, "round 2 accepted")

        def round2():
            pts = [p for p in read_points(path)[n_before:] if p[0] == "calls"]
            return pts or None
        pts2 = harness.wait_for("round 2 in the file", round2, 20.0)
        check(len(pts2) == 1 and attrs_of(pts2[0][1])["span.name"] == "a" and
              int(pts2[0][1]["asInt"]) == 1,
              f"round 2: only a, delta 1 ({[(attrs_of(p[1]), p[1]['asInt']) for p in pts2]})")
        check(int(pts2[0][1]["startTimeUnixNano"]) >= first_flush,
              "round 2's point starts at or after round 1's flush")
    try:
        return with_router(args, [args.plugin_dir],
                           CONFIG_FILE.format(otlp_port=port, path=path), body)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- backpressure: a full metrics pipeline refuses the flush; nothing is lost ------

CONFIG_BACKPRESSURE = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
connectors:
  spanmetrics/cum:
    metrics_flush_interval: 5ms
    namespace: cum
  spanmetrics/delta:
    metrics_flush_interval: 50ms
    namespace: delta
    aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA
exporters:
  file:
    path: {path}
  testsink:
    gate_path: {gate}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics/cum, spanmetrics/delta]
    metrics:
      receivers: [spanmetrics/cum, spanmetrics/delta]
      exporters: [file, testsink]
"""


def own_metric(port, name, instance):
    """The value of switchyard_<name> of one instance, or None."""
    _, _, body = http("GET", f"http://127.0.0.1:{port}/metrics")
    for line in body.decode("utf-8", "replace").splitlines():
        if line.startswith(f"switchyard_{name}{{") and f'"{instance}"' in line:
            return int(float(line.rsplit(" ", 1)[1]))
    return None


def run_backpressure(args):
    """The testsink declines everything until its gate file exists: the cumulative
    connector's flushes (every 5 ms) fill the metrics pipeline's queues, then the
    delta connector's flushes are refused (SY_EAGAIN) and carried over. Once the
    gate opens, the delta points in the file add up to every span sent, and the
    last cumulative point is every span."""
    workdir = tempfile.mkdtemp(prefix="sy-spanmetrics-bp-")
    path, gate = os.path.join(workdir, "out.jsonl"), os.path.join(workdir, "gate")
    ports = {"otlp_port": free_port(), "metrics_port": free_port()}
    url = f"http://127.0.0.1:{ports['otlp_port']}/v1/traces"
    t0 = time.time_ns()
    sent = 0

    def send(check, n):
        nonlocal sent
        spans = [harness.json_span("op", trace_id=f"{sent + i + 1:032x}",
                                   span_id=f"{sent + i + 1:016x}", start_ns=t0,
                                   end_ns=t0 + 3 * MS) for i in range(n)]
        status, _, _ = post_json(url, harness.json_traces(spans, "bp"))
        check(status == 200, f"{n} spans accepted ({status})")
        sent += n

    def body(check):
        send(check, 3)
        harness.wait_for("the cumulative flushes to be refused", lambda: (own_metric(
            ports["metrics_port"], "connector_spanmetrics_emit_refused_total",
            "spanmetrics/cum") or 0) > 0, 60.0)
        check(True, "a full metrics pipeline refuses the cumulative flushes")
        for n in (4, 5):  # refused, carried over, refused again
            send(check, n)
            time.sleep(0.3)
        refused = own_metric(ports["metrics_port"],
                             "connector_spanmetrics_emit_refused_total",
                             "spanmetrics/delta") or 0
        check(refused > 0, f"the delta connector's flushes were refused ({refused})")
        open(gate, "w").close()

        def delta_total():
            pts = [p for p in read_points(path) if p[0] == "delta.calls"]
            return sum(int(p[1]["asInt"]) for p in pts) >= sent
        harness.wait_for("every span in the delta points", delta_total, 30.0)
        pts = [p for p in read_points(path) if p[0] == "delta.calls"]
        total = sum(int(p[1]["asInt"]) for p in pts)
        check(total == sent, f"the delta points add up to the {sent} spans sent ({total})")

        def cum_last():
            pts = [p for p in read_points(path) if p[0] == "cum.calls"]
            return pts and int(pts[-1][1]["asInt"]) == sent
        harness.wait_for("the cumulative count to reach every span", cum_last, 30.0)
        check(True, f"the last cumulative point is {sent}")
        spans = own_metric(ports["metrics_port"], "connector_spanmetrics_spans_total",
                           "spanmetrics/delta")
        check(spans == sent, f"connector_spanmetrics_spans_total is {sent} ({spans})")

    def open_gate(check):
        if not os.path.exists(gate):
            open(gate, "w").close()
    try:
        return with_router(args, [args.kit_dir, args.plugin_dir],
                           CONFIG_BACKPRESSURE.format(path=path, gate=gate, **ports), body,
                           open_gate)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


# --- config: refused as the collector refuses -----------------------------------

BAD_CONFIGS = [
    ("histogram:\n      explicit: {buckets: [1ms]}\n      exponential: {max_size: 10}",
     "use either `explicit` or `exponential` buckets histogram"),
    ("dimensions:\n      - name: span.kind", "duplicate dimension name span.kind"),
    ("dimensions:\n      - name: a\n      - name: a", "duplicate dimension name a"),
    ("dimensions:\n      - default: x", "a dimension needs a name"),
    ("histogram:\n      explicit: {buckets: [2ms, 1ms]}", "ascending order"),
    ("histogram:\n      explicit: {buckets: [2 parsecs]}", "is not a duration"),
    ("histogram:\n      unit: min", "does not match the pattern"),
    ("aggregation_temporality: DELTA", "does not match the pattern"),
    ("events:\n      enabled: true", "no dimensions configured for events"),
    ("events:\n      enabled: true\n      dimensions:\n        - name: span.name",
     "failed validating event dimensions: duplicate dimension name span.name"),
    ("aggregation_cardinality_limit: -1", "must be at least 0"),
    ("metrics_flush_interval: 0s", "must be at least"),
    ("bogus: 1", "bogus"),
]

CONFIG_VALIDATE = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
connectors:
  spanmetrics:
    {body}
exporters:
  debug:
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics]
    metrics:
      receivers: [spanmetrics]
      exporters: [debug]
"""


def run_config(args):
    check = Checks()
    workdir = tempfile.mkdtemp(prefix="sy-spanmetrics-cfg-")
    try:
        def validate(body):
            path = os.path.join(workdir, "c.yaml")
            with open(path, "w") as f:
                f.write(CONFIG_VALIDATE.format(body=body))
            r = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                                args.plugin_dir], capture_output=True, timeout=30)
            return r.returncode, (r.stdout + r.stderr).decode("utf-8", "replace")
        rc, out = validate("histogram:\n      explicit: {buckets: [100us, 1ms, 1.5s, 1m]}\n"
                           "    dimensions:\n      - name: http.method\n        default: GET\n"
                           "    exemplars: {enabled: true}\n    exclude_dimensions: [status.code]")
        check(rc == 0, f"a valid configuration passes ({rc}: {out.strip()[:300]})")
        for body, needle in BAD_CONFIGS:
            rc, out = validate(body)
            check(rc != 0 and needle in out and "c.yaml:" in out,
                  f"refused with {needle!r} and file:line ({rc}: {out.strip()[:300]})")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return report(check)


def report(check):
    if check.failures:
        print(f"{len(check.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["setup", "prometheus", "file", "config", "backpressure"])
    ap.add_argument("--bin")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--src-dir")
    ap.add_argument("--node-dir")
    ap.add_argument("--kit-dir")
    args = ap.parse_args()
    if args.mode == "setup":
        return test_otel_js.setup(args)
    return {"prometheus": run_prometheus, "file": run_file, "config": run_config,
            "backpressure": run_backpressure}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
