"""Issue 13 item 5, end to end: spans from the OpenTelemetry JS SDK -> spanmetrics
and servicegraph -> the prometheus exporter (scraped) AND prometheusremotewrite
(pushed) -> one Debian Prometheus, queried back through its HTTP API.

    traces:  otlp (OTLP/HTTP protobuf from the JS SDK) -> [spanmetrics, servicegraph]
    metrics: [spanmetrics, servicegraph] -> [prometheus, prometheusremotewrite]

node_servicegraph/send.mjs traces two services, each with its own
NodeTracerProvider: "frontend" makes OK + FAILED CLIENT spans of CLIENT_MS, each
answered by a "backend" SERVER span of SERVER_MS in the same trace (the last
FAILED with status ERROR). Prometheus scrapes the prometheus exporter (job
"switchyard") and receives the remote write (external label via="remote_write"),
so every series exists twice, told apart by `via`. For both paths, exactly:
  - calls per service, operation, kind and status (spanmetrics);
  - the duration histogram: count, sum and the buckets around each duration;
  - the edge frontend -> backend: requests (failed="false" / "true") and
    failed requests (servicegraph), and its server latency count.

    test_red_e2e.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
        --src-dir tests/integration/node_servicegraph --node-dir build/servicegraph-node

The node dir is the servicegraph test's (its ctest fixture installs it). Every
wait is bounded; python3 standard library only.
"""
import argparse
import os
import shutil
import sys
import tempfile

import harness
from harness import free_port
from test_prometheus import PROMETHEUS, PROMETHEUS_CONFIG
from test_servicegraph import CLIENT_MS, FAILED_CALLS, OK_CALLS, SERVER_MS, send_spans

SERIES_TIMEOUT = 60.0

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
connectors:
  spanmetrics:
    metrics_flush_interval: 1s
  servicegraph:
    metrics_flush_interval: 1s
    store:
      ttl: 1s
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom_port}
  prometheusremotewrite:
    endpoint: http://127.0.0.1:{prometheus_port}/api/v1/write
    external_labels:
      via: remote_write
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [spanmetrics, servicegraph]
    metrics:
      receivers: [spanmetrics, servicegraph]
      exporters: [prometheus, prometheusremotewrite]
"""

# Path selectors: scraped series have no `via` label, pushed ones via="remote_write".
# An `le` is stored as the sender wrote it: a float ("50.0") from the exporter's
# OpenMetrics page, the shortest form ("50") from remote write, as the collector's.
PATHS = {"scrape": ('via=""', lambda b: repr(float(b))),
         "remote write": ('via="remote_write"', lambda b: str(b))}
OP = 'span_name="GET /api/items"'


def value(prom, query):
    """The value of an instant query that must have exactly one series, or None."""
    r = prom.query(query)
    return r[0]["value"][1] if r and len(r) == 1 else None


def wait_value(prom, query, want):
    try:
        harness.wait_for(f"{query} == {want}", lambda: value(prom, query) == want,
                         SERIES_TIMEOUT)
    except AssertionError:
        pass
    return value(prom, query)


def expect(check, prom, query, want):
    got = wait_value(prom, query, want)
    check(got == want, f"{query} = {want} ({got})")


def check_path(check, prom, sel, le):
    total = OK_CALLS + FAILED_CALLS
    # spanmetrics: calls per service, operation, kind and status.
    fe = f'service_name="frontend",{OP},span_kind="SPAN_KIND_CLIENT"'
    be = f'service_name="backend",{OP},span_kind="SPAN_KIND_SERVER"'
    expect(check, prom, f'traces_span_metrics_calls_total{{{fe},status_code="STATUS_CODE_UNSET",'
           f'{sel}}}', str(total))
    expect(check, prom, f'traces_span_metrics_calls_total{{{be},status_code="STATUS_CODE_UNSET",'
           f'{sel}}}', str(OK_CALLS))
    expect(check, prom, f'traces_span_metrics_calls_total{{{be},status_code="STATUS_CODE_ERROR",'
           f'{sel}}}', str(FAILED_CALLS))
    # Every span: each call's two, and send.mjs's one unanswered CLIENT span
    # ("charge", peer.service=payments).
    expect(check, prom, f'sum(traces_span_metrics_calls_total{{{sel}}})', str(2 * total + 1))
    # The duration histogram (milliseconds, the collector's default buckets).
    h = "traces_span_metrics_duration_milliseconds"
    expect(check, prom, f'sum({h}_count{{{fe},{sel}}})', str(total))
    expect(check, prom, f'sum({h}_sum{{{fe},{sel}}})', str(total * CLIENT_MS))
    expect(check, prom, f'sum({h}_bucket{{{fe},le="{le(50)}",{sel}}})', str(total))
    expect(check, prom, f'sum({h}_bucket{{{fe},le="{le(10)}",{sel}}})', "0")
    expect(check, prom, f'sum({h}_sum{{{be},{sel}}})', str(total * SERVER_MS))
    expect(check, prom, f'sum({h}_bucket{{{be},le="{le(8)}",{sel}}})', str(total))
    expect(check, prom, f'sum({h}_bucket{{{be},le="{le(6)}",{sel}}})', "0")
    # servicegraph: the edge between the two services.
    edge = f'client="frontend",server="backend",{sel}'
    expect(check, prom, f'traces_service_graph_request_total{{{edge},failed="false"}}',
           str(OK_CALLS))
    expect(check, prom, f'traces_service_graph_request_total{{{edge},failed="true"}}',
           str(FAILED_CALLS))
    expect(check, prom, f'traces_service_graph_request_failed_total{{{edge}}}',
           str(FAILED_CALLS))
    expect(check, prom, f'traces_service_graph_request_server_seconds_count{{{edge},'
           f'failed="false"}}', str(OK_CALLS))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--src-dir", required=True)
    ap.add_argument("--node-dir", required=True)
    args = ap.parse_args()
    args.node_dir = os.path.abspath(args.node_dir)
    args.src_dir = os.path.abspath(args.src_dir)
    if harness.Prometheus.missing(PROMETHEUS):
        return 1
    check = harness.Checks()
    ports = {"otlp_port": free_port(), "prom_port": free_port(), "metrics_port": free_port()}
    workdir = tempfile.mkdtemp(prefix="sy-red-")
    prom = None
    try:
        # Prometheus first: the router pushes to it.
        prom = harness.Prometheus(PROMETHEUS, workdir, PROMETHEUS_CONFIG.format(**ports),
                                  extra_args=["--web.enable-remote-write-receiver"])
        prom.ready()
        ports["prometheus_port"] = prom.port
        with harness.Router(args.bin, [args.plugin_dir], CONFIG.format(**ports)) as router:
            try:
                sent = send_spans(args, ports)
                check(len(sent["traces"]) == OK_CALLS + FAILED_CALLS,
                      "the JS SDK sent every call")
                for name, (sel, le) in PATHS.items():
                    print(f"-- {name}")
                    check_path(check, prom, sel, le)
            except AssertionError as e:
                check(False, str(e))
            rc = router.terminate()
            check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
            if check.failures:
                router.dump(prefix="router: ")
    finally:
        if prom:
            prom.stop(check, show_log=bool(check.failures))
        shutil.rmtree(workdir, ignore_errors=True)
    if check.failures:
        print(f"{len(check.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
