#!/usr/bin/env python3
"""The prometheus exporter through the real binary, scraped by a real Prometheus.

  a. `otlp` (OTLP/HTTP JSON, free loopback port) -> `prometheus` exporter: the
     Docker CLI's `command.time` (monotonic cumulative Sum, unit ms, asInt 45, the
     CLI's attributes), a gauge, a histogram, a summary and a delta sum sent twice;
     GET /metrics in the text format gives the exact lines the collector writes
     (the delta sum accumulated, target_info from the resource), OpenMetrics when
     the Accept header asks for it (with "# EOF"), 404 elsewhere, 405 for POST;
  b. a real Prometheus server (/usr/bin/prometheus, Debian's package) on loopback
     scrapes the exporter every second; its HTTP API returns
     command_time_milliseconds_total with the CLI's labels and the value 45;
  c. Prometheus and the router stop on SIGTERM, the router with exit code 0.

    test_prometheus.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

Every wait is bounded; python3 standard library only.
"""
import argparse
import os
import shutil
import sys
import tempfile

import harness
from harness import free_port, http, post_json

PROMETHEUS = os.environ.get("SY_PROMETHEUS_BIN", "/usr/bin/prometheus")
SERIES_TIMEOUT = 60.0
T0 = 1_700_000_000_000_000_000  # ns

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
exporters:
  prometheus:
    endpoint: 127.0.0.1:{prom_port}
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheus]
"""

PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: switchyard
    static_configs:
      - targets: ["127.0.0.1:{prom_port}"]
"""


def attr(key, **value):
    return {"key": key, "value": value}


def docker_cli_request():
    """What the Docker CLI sends: one cumulative monotonic Sum, unit ms, with the
    attributes it sets (command.status.code an int, the isatty ones booleans)."""
    point = {
        "asInt": "45",
        "startTimeUnixNano": str(T0),
        "timeUnixNano": str(T0 + 45_000_000),
        "attributes": [
            attr("command.name", stringValue="ps"),
            attr("command.status.code", intValue="0"),
            attr("command.stderr.isatty", boolValue=True),
            attr("command.stdin.isatty", boolValue=False),
            attr("command.stdout.isatty", boolValue=True),
        ],
    }
    return {"resourceMetrics": [{
        "resource": {"attributes": [
            attr("service.name", stringValue="docker"),
            attr("service.instance.id", stringValue="cli-1"),
            attr("host.name", stringValue="box"),
        ]},
        "scopeMetrics": [{
            "scope": {"name": "github.com/docker/cli"},
            "metrics": [{
                "name": "command.time",
                "description": "Measures the duration of the docker command",
                "unit": "ms",
                "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                        "dataPoints": [point]},
            }],
        }],
    }]}


def other_request(delta_value, delta_start, delta_end):
    """A gauge, a histogram, a summary and a delta monotonic sum, no resource."""
    t = str(T0 + 1_000_000_000)
    return {"resourceMetrics": [{
        "scopeMetrics": [{
            "scope": {"name": "test", "version": "1.2"},
            "metrics": [
                {"name": "queue.fill", "unit": "1",
                 "gauge": {"dataPoints": [{"asDouble": 0.25, "timeUnixNano": t}]}},
                {"name": "http.server.duration", "unit": "s",
                 "histogram": {"aggregationTemporality": 2, "dataPoints": [{
                     "count": "6", "sum": 3.5, "bucketCounts": ["1", "2", "3"],
                     "explicitBounds": [0.1, 1], "startTimeUnixNano": str(T0),
                     "timeUnixNano": t,
                     "attributes": [attr("http.route", stringValue="/api")]}]}},
                {"name": "rpc.latency", "unit": "ms",
                 "summary": {"dataPoints": [{
                     "count": "10", "sum": 55, "timeUnixNano": t,
                     "quantileValues": [{"quantile": 0.5, "value": 4},
                                        {"quantile": 0.99, "value": 9.5}]}]}},
                {"name": "network.io", "unit": "By",
                 "sum": {"aggregationTemporality": 1, "isMonotonic": True,
                         "dataPoints": [{"asInt": str(delta_value),
                                         "startTimeUnixNano": str(delta_start),
                                         "timeUnixNano": str(delta_end)}]}},
            ],
        }],
    }]}


SCOPE_TEST = 'otel_scope_name="test",otel_scope_schema_url="",otel_scope_version="1.2"'
DOCKER_LABELS = ('command_name="ps",command_status_code="0",command_stderr_isatty="true",'
                 'command_stdin_isatty="false",command_stdout_isatty="true",instance="cli-1",'
                 'job="docker",otel_scope_name="github.com/docker/cli",'
                 'otel_scope_schema_url="",otel_scope_version=""')

EXPECTED_TEXT = f"""# HELP command_time_milliseconds_total Measures the duration of the docker command
# TYPE command_time_milliseconds_total counter
command_time_milliseconds_total{{{DOCKER_LABELS}}} 45
# HELP http_server_duration_seconds 
# TYPE http_server_duration_seconds histogram
http_server_duration_seconds_bucket{{http_route="/api",{SCOPE_TEST},le="0.1"}} 1
http_server_duration_seconds_bucket{{http_route="/api",{SCOPE_TEST},le="1"}} 3
http_server_duration_seconds_bucket{{http_route="/api",{SCOPE_TEST},le="+Inf"}} 6
http_server_duration_seconds_sum{{http_route="/api",{SCOPE_TEST}}} 3.5
http_server_duration_seconds_count{{http_route="/api",{SCOPE_TEST}}} 6
# HELP network_io_bytes_total 
# TYPE network_io_bytes_total counter
network_io_bytes_total{{{SCOPE_TEST}}} 300
# HELP queue_fill_ratio 
# TYPE queue_fill_ratio gauge
queue_fill_ratio{{{SCOPE_TEST}}} 0.25
# HELP rpc_latency_milliseconds 
# TYPE rpc_latency_milliseconds summary
rpc_latency_milliseconds{{{SCOPE_TEST},quantile="0.5"}} 4
rpc_latency_milliseconds{{{SCOPE_TEST},quantile="0.99"}} 9.5
rpc_latency_milliseconds_sum{{{SCOPE_TEST}}} 55
rpc_latency_milliseconds_count{{{SCOPE_TEST}}} 10
# HELP target_info Target metadata
# TYPE target_info gauge
target_info{{host_name="box",instance="cli-1",job="docker"}} 1
"""

OPENMETRICS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                      "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def scrape(port, accept=None):
    headers = {"Accept": accept} if accept else {}
    return http("GET", f"http://127.0.0.1:{port}/metrics", headers=headers)


def check_exporter(check, router, ports):
    otlp = f"http://127.0.0.1:{ports['otlp_port']}/v1/metrics"
    status, _, body = post_json(otlp, docker_cli_request())
    check(status == 200, f"the Docker CLI's request is accepted ({status} {body[:200]!r})")
    # The delta sum twice: the second starts where the first ends, so they add up.
    for value, start, end in ((100, T0, T0 + 10), (200, T0 + 10, T0 + 20)):
        status, _, body = post_json(otlp, other_request(value, start, end))
        check(status == 200, f"the other metrics are accepted ({status} {body[:200]!r})")

    # The exporter consumes on its own thread: wait until both deltas are in.
    def scraped():
        s, h, b = scrape(ports["prom_port"])
        return (s, h, b) if b"network_io_bytes_total" in b and b" 300\n" in b else None
    status, headers, body = harness.wait_for("the accumulated delta sum", scraped, 10.0)
    text = body.decode()
    check(status == 200, "GET /metrics answers 200")
    check(headers.get("Content-Type") == "text/plain; version=0.0.4; charset=utf-8",
          f"text format by default ({headers.get('Content-Type')})")
    if not check(text == EXPECTED_TEXT, "the text exposition is exactly the collector's"):
        print("--- got:\n" + text + "--- want:\n" + EXPECTED_TEXT, file=sys.stderr)

    status, headers, body = scrape(ports["prom_port"], OPENMETRICS_ACCEPT)
    om = body.decode()
    check(status == 200 and headers.get("Content-Type", "").startswith(
        "application/openmetrics-text; version=1.0.0"),
        f"OpenMetrics when asked for ({headers.get('Content-Type')})")
    check(om.endswith("# EOF\n"), "OpenMetrics ends with # EOF")
    check("# TYPE command_time_milliseconds counter\n" in om,
          "OpenMetrics names the counter family without _total")
    check(f"command_time_milliseconds_total{{{DOCKER_LABELS}}} 45.0\n" in om,
          "OpenMetrics writes the counter sample as 45.0")
    check(f'http_server_duration_seconds_bucket{{http_route="/api",{SCOPE_TEST},le="1.0"}} 3\n'
          in om, "OpenMetrics writes bucket bounds as floats and counts as integers")

    status, _, _ = http("GET", f"http://127.0.0.1:{ports['prom_port']}/other")
    check(status == 404, f"another path answers 404 ({status})")
    status, _, _ = http("POST", f"http://127.0.0.1:{ports['prom_port']}/metrics", b"x")
    check(status == 405, f"POST answers 405 ({status})")


def check_prometheus(check, ports, workdir):
    prom = harness.Prometheus(PROMETHEUS, workdir, PROMETHEUS_CONFIG.format(**ports))
    try:
        prom.ready()
        check(True, "Prometheus is ready")

        def series():
            r = prom.query("command_time_milliseconds_total")
            return r if r else None
        result = harness.wait_for("Prometheus to scrape command_time_milliseconds_total",
                                  series, SERIES_TIMEOUT)
        check(len(result) == 1, f"one series ({len(result)})")
        metric, value = result[0]["metric"], result[0]["value"][1]
        want = {
            "__name__": "command_time_milliseconds_total",
            "command_name": "ps",
            "command_status_code": "0",
            "command_stderr_isatty": "true",
            "command_stdin_isatty": "false",
            "command_stdout_isatty": "true",
            "otel_scope_name": "github.com/docker/cli",
            # honor_labels is false: the exporter's job/instance become exported_*,
            # and Prometheus attaches its own job and instance of the target.
            "exported_job": "docker",
            "exported_instance": "cli-1",
            "job": "switchyard",
            "instance": f"127.0.0.1:{ports['prom_port']}",
        }
        if not check(metric == want, "the series has the CLI's labels, as from the collector"):
            print(f"got  {metric}\nwant {want}", file=sys.stderr)
        check(value == "45", f"its value is 45 ({value})")
        r = prom.query('network_io_bytes_total{otel_scope_name="test"}')
        check(r is not None and len(r) == 1 and r[0]["value"][1] == "300",
              f"the accumulated delta sum is 300 in Prometheus ({r})")
        r = prom.query("target_info")
        check(r is not None and len(r) == 1 and r[0]["metric"].get("host_name") == "box",
              f"target_info carries the resource attributes ({r})")
    finally:
        prom.stop(check)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()

    if harness.Prometheus.missing(PROMETHEUS):
        return 1

    check = harness.Checks()
    ports = {"otlp_port": free_port(), "prom_port": free_port(), "metrics_port": free_port()}
    workdir = tempfile.mkdtemp(prefix="sy-prom-")
    try:
        with harness.Router(args.bin, [args.plugin_dir], CONFIG.format(**ports)) as router:
            try:
                check_exporter(check, router, ports)
                check_prometheus(check, ports, workdir)
            except AssertionError as e:
                check(False, str(e))
            rc = router.terminate()
            check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
            if check.failures:
                router.dump(prefix="router: ")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if check.failures:
        print(f"{len(check.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
