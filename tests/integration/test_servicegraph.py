#!/usr/bin/env python3
"""The servicegraph connector through the real binary, fed by the OpenTelemetry JS
SDK and read back by a real Prometheus.

  traces: otlp (OTLP/HTTP, free loopback port) -> servicegraph
  metrics: servicegraph -> prometheus exporter <- /usr/bin/prometheus scrapes it

node_servicegraph/send.mjs traces two services with two NodeTracerProviders (each
its own resource and OTLP/HTTP protobuf exporter): "frontend" CLIENT spans calling
"backend" SERVER spans in the same traces, OK_CALLS of them plain and FAILED_CALLS
with a server status ERROR, client spans CLIENT_MS long and server spans SERVER_MS,
plus one frontend CLIENT span with peer.service=payments that nobody answers.
PromQL then finds, exactly:
  - traces_service_graph_request_total{client="frontend",server="backend"} OK_CALLS
    with failed="false" and FAILED_CALLS with failed="true", the server's http.route
    as server_http_route (the `dimensions` setting);
  - traces_service_graph_request_failed_total FAILED_CALLS;
  - the latency histograms' counts, per-bucket counts on our bucket bounds, sums;
  - the virtual node edge frontend -> payments (connection_type="virtual_node")
    once the store's TTL passed;
and the router's own metrics count the edges (total, expired, none dropped). The
router and Prometheus stop on SIGTERM with exit code 0.

    test_servicegraph.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
        --src-dir tests/integration/node_servicegraph --node-dir build/servicegraph-node

With --case backpressure (and --kit-dir for the test plugins), the metrics
pipeline holds a testsink whose gate is shut (it declines every batch) next to the
prometheus exporter, and metrics_flush_interval is 0 (a flush after every traces
batch): BP_REQUESTS OTLP/JSON requests of one frontend -> backend call each fill
the metrics queues until the connector's flushes are refused (counted in
flush_retries); no span is refused meanwhile. Once the gate opens, with no more
traffic, the retried flush brings the prometheus exporter the exact total,
BP_REQUESTS.

With --case config, `switchyard validate` refuses what the field table cannot
check, each with the file:line:col of the value at fault: buckets out of order, a
bucket that is not a duration, exponential_histogram_max_size, a peer attribute
list that is not a list; and accepts the valid configuration.

The node dir is installed by `test_otel_js.py setup` (the ctest fixture). Every wait
is bounded; python3 standard library only.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import harness
from harness import free_port, http
from test_otel_js import copy_if_changed
from test_prometheus import PROMETHEUS, PROMETHEUS_CONFIG

OK_CALLS = 5
FAILED_CALLS = 2
CLIENT_MS = 30
SERVER_MS = 7
NODE_TIMEOUT = 90.0
SERIES_TIMEOUT = 60.0

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
connectors:
  servicegraph:
    metrics_flush_interval: 1s
    latency_histogram_buckets: [5ms, 10ms, 50ms, 100ms]
    dimensions: [http.route]
    store:
      ttl: 1s
      max_items: 100
    store_expiration_loop: 500ms
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
      exporters: [servicegraph]
    metrics:
      receivers: [servicegraph]
      exporters: [prometheus]
"""


EDGE = 'client="frontend",server="backend"'

BP_REQUESTS = 400
BP_TIMEOUT = 60.0

BP_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
connectors:
  servicegraph:
    metrics_flush_interval: 0s
exporters:
  testsink:
    gate_path: {gate}
  prometheus:
    endpoint: 127.0.0.1:{prom_port}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [servicegraph]
    metrics:
      receivers: [servicegraph]
      exporters: [testsink, prometheus]
"""


def send_spans(args, ports):
    for name in ("send.mjs",):
        copy_if_changed(os.path.join(args.src_dir, name), os.path.join(args.node_dir, name))
    cmd = ["node", os.path.join(args.node_dir, "send.mjs"),
           "--url", f"http://127.0.0.1:{ports['otlp_port']}/v1/traces",
           "--ok", str(OK_CALLS), "--failed", str(FAILED_CALLS),
           "--client-ms", str(CLIENT_MS), "--server-ms", str(SERVER_MS),
           "--orphan-peer", "payments"]
    try:
        out = subprocess.run(cmd, cwd=args.node_dir, capture_output=True, text=True,
                             timeout=NODE_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"send.mjs did not finish within {NODE_TIMEOUT:.0f} s")
    if out.returncode != 0:
        raise AssertionError(f"send.mjs failed ({out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class GraphPrometheus(harness.Prometheus):
    """Debian's Prometheus on loopback, scraping the exporter every second, with
    the single-value reads the checks below make."""

    def __init__(self, workdir, ports):
        super().__init__(PROMETHEUS, workdir, PROMETHEUS_CONFIG.format(**ports))

    def value(self, query):
        """The single value of an instant query, as a string; None if there is not
        exactly one series."""
        r = self.query(query)
        return r[0]["value"][1] if r and len(r) == 1 else None

    def wait_value(self, query, want):
        def got():
            return self.value(query) == want
        try:
            harness.wait_for(f"{query} == {want}", got, SERIES_TIMEOUT)
        except AssertionError:
            pass
        return self.value(query)


def check_graph(check, prom, ports):
    total = OK_CALLS + FAILED_CALLS
    q = f'traces_service_graph_request_total{{{EDGE},failed="false"}}'
    v = prom.wait_value(q, str(OK_CALLS))
    check(v == str(OK_CALLS), f"{q} is {OK_CALLS} ({v})")
    r = prom.query(q)
    if r:
        labels = r[0]["metric"]
        want = {"__name__": "traces_service_graph_request_total", "client": "frontend",
                "server": "backend", "failed": "false", "server_http_route": "/api/items",
                "otel_scope_name": "traces_service_graph", "job": "switchyard",
                "instance": f"127.0.0.1:{ports['prom_port']}"}
        if not check(labels == want, "the edge's labels are the collector's (connection_type "
                     "empty, the server's http.route as server_http_route)"):
            print(f"got  {labels}\nwant {want}", file=sys.stderr)
    q = f'traces_service_graph_request_total{{{EDGE},failed="true"}}'
    v = prom.wait_value(q, str(FAILED_CALLS))
    check(v == str(FAILED_CALLS), f"{q} is {FAILED_CALLS} ({v})")
    q = f'traces_service_graph_request_failed_total{{{EDGE}}}'
    v = prom.wait_value(q, str(FAILED_CALLS))
    check(v == str(FAILED_CALLS), f"{q} is {FAILED_CALLS} ({v})")
    q = f'sum(traces_service_graph_request_total{{{EDGE}}})'
    v = prom.value(q)
    check(v == str(total), f"{q} is every call, {total} ({v})")
    for side in ("server", "client"):
        q = f'sum(traces_service_graph_request_{side}_seconds_count{{{EDGE}}})'
        v = prom.wait_value(q, str(total))
        check(v == str(total), f"{q} is {total} ({v})")
    # Per bucket (cumulative `le`), both series added up: the server spans (7 ms)
    # fall in (5ms, 10ms], the client spans (30 ms) in (10ms, 50ms].
    want_buckets = {
        "server": {"0.005": 0, "0.01": total, "0.05": total, "0.1": total, "+Inf": total},
        "client": {"0.005": 0, "0.01": 0, "0.05": total, "0.1": total, "+Inf": total},
    }
    for side, buckets in want_buckets.items():
        for le, n in buckets.items():
            q = (f'sum(traces_service_graph_request_{side}_seconds_bucket'
                 f'{{{EDGE},le="{le}"}})')
            v = prom.value(q)
            check(v == str(n), f"{q} is {n} ({v})")
        q = f'sum(traces_service_graph_request_{side}_seconds_sum{{{EDGE}}})'
        v = prom.value(q)
        ms = SERVER_MS if side == "server" else CLIENT_MS
        want = total * ms / 1000.0
        check(v is not None and abs(float(v) - want) < 1e-6, f"{q} is {want} ({v})")
    # The unanswered call becomes a virtual node edge once store.ttl has passed.
    q = ('traces_service_graph_request_total{client="frontend",server="payments",'
         'connection_type="virtual_node",failed="false"}')
    v = prom.wait_value(q, "1")
    check(v == "1", f"{q} is 1 ({v})")


def own_metrics(ports):
    status, _, body = http("GET", f"http://127.0.0.1:{ports['metrics_port']}/metrics")
    if status != 200:
        return {}
    out = {}
    for line in body.decode().splitlines():
        m = re.match(r"(switchyard_connector_servicegraph_\w+)(\{[^}]*\})? (\S+)$", line)
        if m:
            out[m.group(1)] = float(m.group(3))
    return out


def check_own_metrics(check, ports):
    total = OK_CALLS + FAILED_CALLS
    m = own_metrics(ports)
    want = {
        "switchyard_connector_servicegraph_total_edges_total": total + 1,
        "switchyard_connector_servicegraph_expired_edges_total": 1,
        "switchyard_connector_servicegraph_virtual_edges_total": 1,
        "switchyard_connector_servicegraph_dropped_spans_total": 0,
        "switchyard_connector_servicegraph_spans_without_service_total": 0,
        "switchyard_connector_servicegraph_store_edges": 0,
        "switchyard_connector_servicegraph_series": 3,
    }
    for name, n in want.items():
        check(m.get(name) == n, f"{name} is {n} ({m.get(name)})")
    flushes = m.get("switchyard_connector_servicegraph_flushes_total", 0)
    check(flushes >= 1, f"the connector has flushed ({flushes} flushes)")


def call_request(i):
    """One OTLP/JSON request: frontend's CLIENT span and backend's SERVER span of
    call i (same trace, the server's parent is the client)."""
    tid, cid, sid = "%032x" % (i + 1), "%016x" % (2 * i + 1), "%016x" % (2 * i + 2)
    client = harness.json_span("GET", trace_id=tid, span_id=cid, kind=3)
    server = harness.json_span("GET", trace_id=tid, span_id=sid, kind=2)
    server["parentSpanId"] = cid
    return {"resourceSpans": harness.json_traces([client], "frontend")["resourceSpans"] +
            harness.json_traces([server], "backend")["resourceSpans"]}


def exporter_total(ports):
    """The request_total sample the prometheus exporter serves for the edge."""
    status, _, body = http("GET", f"http://127.0.0.1:{ports['prom_port']}/metrics")
    if status != 200:
        return None
    for line in body.decode().splitlines():
        if (line.startswith("traces_service_graph_request_total{") and
                'client="frontend"' in line and 'server="backend"' in line):
            return line.rsplit(" ", 1)[1]
    return None


def run_backpressure(args, check):
    ports = {"otlp_port": free_port(), "prom_port": free_port(), "metrics_port": free_port()}
    workdir = tempfile.mkdtemp(prefix="sy-sg-bp-")
    gate = os.path.join(workdir, "gate")
    config = BP_CONFIG.format(gate=gate, **ports)
    try:
        with harness.Router(args.bin, [args.plugin_dir, args.kit_dir], config) as router:
            try:
                url = f"http://127.0.0.1:{ports['otlp_port']}/v1/traces"
                refused = 0
                for i in range(BP_REQUESTS):
                    status, _, _ = harness.post_json(url, call_request(i))
                    refused += status != 200
                check(refused == 0, f"every traces request is accepted ({refused} refused)")

                def retried():
                    m = own_metrics(ports)
                    return (m.get("switchyard_connector_servicegraph_flush_retries_total", 0) > 0
                            and m.get("switchyard_connector_servicegraph_total_edges_total")
                            == BP_REQUESTS)
                try:
                    harness.wait_for("every call read and flushes refused by the full metrics "
                                     "pipeline", retried, BP_TIMEOUT)
                except AssertionError:
                    pass
                m = own_metrics(ports)
                retries = m.get("switchyard_connector_servicegraph_flush_retries_total", 0)
                check(retries > 0, "flushes were refused while the gate was shut (%d retries, "
                      "%d flushes)" % (retries,
                                       m.get("switchyard_connector_servicegraph_flushes_total", 0)))
                check(m.get("switchyard_connector_servicegraph_total_edges_total") == BP_REQUESTS,
                      f"every call made its edge ({m.get('switchyard_connector_servicegraph_total_edges_total')})")
                with open(gate, "w"):
                    pass

                def arrived():
                    return exporter_total(ports) == str(BP_REQUESTS)
                try:
                    harness.wait_for("the exact total at the prometheus exporter", arrived,
                                     BP_TIMEOUT)
                except AssertionError:
                    pass
                got = exporter_total(ports)
                check(got == str(BP_REQUESTS), f"after the gate opens, without more traffic, "
                      f"the prometheus exporter serves request_total {BP_REQUESTS} ({got})")
            except AssertionError as e:
                check(False, str(e))
            rc = router.terminate()
            check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
            if check.failures:
                router.dump(prefix="router: ")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


CONFIG_CASES = [
    ("    latency_histogram_buckets: [10ms, 5ms]\n",
     r"config\.yaml:\d+:\d+: 'servicegraph': config\.yaml:9:\d+: latency_histogram_buckets must be "
     r"in increasing order \(5ms is not above the bucket before it\)"),
    ("    latency_histogram_buckets: [abc]\n",
     r"config\.yaml:9:\d+: latency_histogram_buckets\[0\]: expected a duration such as 5ms or "
     r"1\.5s, got abc"),
    ("    exponential_histogram_max_size: 160\n",
     r"'servicegraph': exponential_histogram_max_size is not supported"),
    ("    virtual_node_peer_attributes: peer.service\n",
     r"config\.yaml:9:\d+: virtual_node_peer_attributes: expected a list of strings"),
    ("    store:\n      max_items: -1\n",
     r"'servicegraph\.store\.max_items': must be at least 0"),
]

VALIDATE_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:4318
connectors:
  servicegraph:
{extra}    dimensions: [http.route]
exporters:
  prometheus:
    endpoint: 127.0.0.1:8889
service:
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [servicegraph]
    metrics:
      receivers: [servicegraph]
      exporters: [prometheus]
"""


def run_config(args, check):
    workdir = tempfile.mkdtemp(prefix="sy-sg-cfg-")
    try:
        path = os.path.join(workdir, "config.yaml")
        for extra, pattern in CONFIG_CASES + [("", None)]:
            with open(path, "w") as f:
                f.write(VALIDATE_CONFIG.format(extra=extra))
            p = subprocess.run([os.path.abspath(args.bin), "validate", "--config", "config.yaml",
                                "--plugin-dir", os.path.abspath(args.plugin_dir)], cwd=workdir,
                               capture_output=True, text=True, timeout=30)
            out = p.stdout + p.stderr
            if pattern is None:
                check(p.returncode == 0, f"the valid configuration validates ({out.strip()})")
            else:
                check(p.returncode != 0 and re.search(pattern, out),
                      f"{extra.strip()!r} is refused: {out.strip()}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--src-dir")
    ap.add_argument("--node-dir")
    ap.add_argument("--kit-dir")
    ap.add_argument("--case", choices=["js", "backpressure", "config"], default="js")
    args = ap.parse_args()
    if args.case != "js":
        check = harness.Checks()
        (run_backpressure if args.case == "backpressure" else run_config)(args, check)
        if check.failures:
            print(f"{len(check.failures)} check(s) failed", file=sys.stderr)
            return 1
        print("all checks passed")
        return 0
    args.node_dir = os.path.abspath(args.node_dir)
    args.src_dir = os.path.abspath(args.src_dir)
    if not (os.path.isfile(PROMETHEUS) and os.access(PROMETHEUS, os.X_OK)):
        print(f"FAIL {PROMETHEUS} is missing: install it with `apt-get install prometheus` "
              f"(deploy/debian-deps.sh --test does)", file=sys.stderr)
        return 1
    check = harness.Checks()
    ports = {"otlp_port": free_port(), "prom_port": free_port(), "metrics_port": free_port()}
    workdir = tempfile.mkdtemp(prefix="sy-sg-")
    prom = None
    try:
        with harness.Router(args.bin, [args.plugin_dir], CONFIG.format(**ports)) as router:
            try:
                sent = send_spans(args, ports)
                check(len(sent["traces"]) == OK_CALLS + FAILED_CALLS and all(
                    t["serverParent"] == t["clientSpanId"] for t in sent["traces"]),
                    "the JS SDK made every server span the child of its client span")
                prom = GraphPrometheus(workdir, ports)
                prom.ready()
                check(True, "Prometheus is ready")
                check_graph(check, prom, ports)
                check_own_metrics(check, ports)
            except AssertionError as e:
                check(False, str(e))
            rc = router.terminate()
            check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
            if check.failures:
                router.dump(prefix="router: ")
    finally:
        if prom:
            prom.stop(check)
        shutil.rmtree(workdir, ignore_errors=True)
    if check.failures:
        print(f"{len(check.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
