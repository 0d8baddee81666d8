#!/usr/bin/env python3
"""The prometheusremotewrite exporter through the real binary.

  a. a real Prometheus (/usr/bin/prometheus, Debian's package) with
     --web.enable-remote-write-receiver on a free loopback port; the router's otlp
     receiver (OTLP/HTTP JSON) feeds two exporters writing to its /api/v1/write:
     `prometheusremotewrite` (external_labels, send_metadata) and
     `prometheusremotewrite/r2t` (resource_to_telemetry_conversion, namespace,
     add_metric_suffixes false, max_batch_size_bytes 400 so that every batch goes
     as several requests). A gauge (with two keys that make one label name), a
     cumulative monotonic and a non-monotonic sum, a histogram, a summary, a delta
     sum (dropped, counted) and a gauge whose second point has the "no recorded
     value" flag (a stale marker). Prometheus' HTTP API is then asked for every
     series at the points' time: each name, every label and each value is
     compared with the expected set, both ways; a moment later the stale series is
     gone and the others are not;
  b. a fake endpoint: 400 is not retried (one request, counted as a permanent
     failure and as failed points); 503 twice then 204 is retried until it
     succeeds; the requests carry the remote write headers, their bodies are
     block snappy and decode to WriteRequests (read here with a small snappy and
     protobuf reader) holding the expected series.

    test_prometheusremotewrite.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

Every wait is bounded; python3 standard library only.
"""
import argparse
import http.server as http_server
import math
import os
import shutil
import struct
import sys
import tempfile
import threading
import time

import harness
from harness import free_port, http, post_json, read_varint

PROMETHEUS = os.environ.get("SY_PROMETHEUS_BIN", "/usr/bin/prometheus")
SERIES_TIMEOUT = 30.0

# The points' time: recent, so that Prometheus' head takes them.
T_S = int(time.time()) - 120
T = T_S * 1_000_000_000
T_STALE = T + 10_000_000_000

CONFIG_A = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
exporters:
  prometheusremotewrite:
    endpoint: http://127.0.0.1:{web_port}/api/v1/write
    external_labels:
      cluster: c1
      queue: ext
    send_metadata: true
    retry_on_failure:
      initial_interval: 100ms
  prometheusremotewrite/r2t:
    endpoint: http://127.0.0.1:{web_port}/api/v1/write
    resource_to_telemetry_conversion:
      enabled: true
    namespace: ns
    add_metric_suffixes: false
    max_batch_size_bytes: 400
    retry_on_failure:
      initial_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheusremotewrite, prometheusremotewrite/r2t]
"""

PROMETHEUS_CONFIG = """
global:
  evaluation_interval: 1m
scrape_configs: []
"""


def attr(key, **value):
    return {"key": key, "value": value}


RESOURCE = [
    attr("service.name", stringValue="shop"),
    attr("service.namespace", stringValue="prod"),
    attr("service.instance.id", stringValue="i-1"),
    attr("host.name", stringValue="box"),
    attr("deployment.environment", stringValue="test"),
]


def metrics_request():
    t = str(T)
    return {"resourceMetrics": [{
        "resource": {"attributes": RESOURCE},
        "scopeMetrics": [{
            "scope": {"name": "test", "version": "1.2"},
            "metrics": [
                {"name": "queue.fill", "unit": "1", "description": "How full the queue is",
                 "gauge": {"dataPoints": [{
                     "asDouble": 0.25, "timeUnixNano": t,
                     "attributes": [attr("queue", stringValue="a"),
                                    attr("a_b", stringValue="y"),
                                    attr("a.b", stringValue="x")]}]}},
                {"name": "http.requests", "unit": "{request}",
                 "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [{
                     "asInt": "7", "startTimeUnixNano": str(T - 10**9), "timeUnixNano": t,
                     "attributes": [attr("http.method", stringValue="GET"),
                                    attr("status_code", intValue="200")]}]}},
                {"name": "pool.size", "unit": "By",
                 "sum": {"aggregationTemporality": 2, "isMonotonic": False, "dataPoints": [{
                     "asInt": "42", "timeUnixNano": t}]}},
                {"name": "http.server.duration", "unit": "s",
                 "histogram": {"aggregationTemporality": 2, "dataPoints": [{
                     "count": "10", "sum": 12.5, "bucketCounts": ["1", "2", "3", "4"],
                     "explicitBounds": [0.1, 1, 2.5], "startTimeUnixNano": str(T - 10**9),
                     "timeUnixNano": t,
                     "attributes": [attr("http.route", stringValue="/api")]}]}},
                {"name": "rpc.latency", "unit": "ms",
                 "summary": {"dataPoints": [{
                     "count": "10", "sum": 55, "timeUnixNano": t,
                     "quantileValues": [{"quantile": 0.5, "value": 4},
                                        {"quantile": 0.99, "value": 9.5}]}]}},
                {"name": "network.io", "unit": "By",
                 "sum": {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [{
                     "asInt": "100", "startTimeUnixNano": str(T - 10**9),
                     "timeUnixNano": t}]}},
                {"name": "temperature", "unit": "Cel",
                 "gauge": {"dataPoints": [
                     {"asDouble": 21.5, "timeUnixNano": t},
                     {"timeUnixNano": str(T_STALE), "flags": 1}]}},
            ],
        }],
    }]}


# Every series each exporter writes, as Prometheus should return it at time T.
JOB = {"job": "prod/shop", "instance": "i-1"}
EXT = {"cluster": "c1", "queue": "ext"}
RES_LABELS = {"service_name": "shop", "service_namespace": "prod", "service_instance_id": "i-1",
              "host_name": "box", "deployment_environment": "test"}


def expected_series():
    out = []

    def add(name, labels, value):
        out.append(({"__name__": name, **labels}, value))

    # The default exporter: suffixes, external labels (an attribute "queue" wins).
    add("queue_fill_ratio", {**JOB, "cluster": "c1", "queue": "a", "a_b": "x;y"}, 0.25)
    add("http_requests_total", {**JOB, **EXT, "http_method": "GET", "status_code": "200"}, 7)
    add("pool_size_bytes", {**JOB, **EXT}, 42)
    for le, v in (("0.1", 1), ("1", 3), ("2.5", 6), ("+Inf", 10)):
        add("http_server_duration_seconds_bucket", {**JOB, **EXT, "http_route": "/api",
                                                    "le": le}, v)
    add("http_server_duration_seconds_sum", {**JOB, **EXT, "http_route": "/api"}, 12.5)
    add("http_server_duration_seconds_count", {**JOB, **EXT, "http_route": "/api"}, 10)
    add("rpc_latency_milliseconds", {**JOB, **EXT, "quantile": "0.5"}, 4)
    add("rpc_latency_milliseconds", {**JOB, **EXT, "quantile": "0.99"}, 9.5)
    add("rpc_latency_milliseconds_sum", {**JOB, **EXT}, 55)
    add("rpc_latency_milliseconds_count", {**JOB, **EXT}, 10)
    add("temperature_celsius", {**JOB, **EXT}, 21.5)
    add("target_info", {**JOB, **EXT, "host_name": "box", "deployment_environment": "test"}, 1)

    # r2t: namespace, no suffixes, every resource attribute a label, no externals.
    R = {**JOB, **RES_LABELS}
    add("ns_queue_fill", {**R, "queue": "a", "a_b": "x;y"}, 0.25)
    add("ns_http_requests", {**R, "http_method": "GET", "status_code": "200"}, 7)
    add("ns_pool_size", R, 42)
    for le, v in (("0.1", 1), ("1", 3), ("2.5", 6), ("+Inf", 10)):
        add("ns_http_server_duration_bucket", {**R, "http_route": "/api", "le": le}, v)
    add("ns_http_server_duration_sum", {**R, "http_route": "/api"}, 12.5)
    add("ns_http_server_duration_count", {**R, "http_route": "/api"}, 10)
    add("ns_rpc_latency", {**R, "quantile": "0.5"}, 4)
    add("ns_rpc_latency", {**R, "quantile": "0.99"}, 9.5)
    add("ns_rpc_latency_sum", R, 55)
    add("ns_rpc_latency_count", R, 10)
    add("ns_temperature", R, 21.5)
    add("ns_target_info", {**JOB, "host_name": "box", "deployment_environment": "test"}, 1)
    return out


def key(labels):
    return tuple(sorted(labels.items()))


def scrape(port):
    status, _, body = http("GET", f"http://127.0.0.1:{port}/metrics")
    assert status == 200, status
    return body.decode()


def sample(text, name, label):
    for line in text.splitlines():
        if line.startswith(name + "{") and label in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def check_prometheus(check, args, workdir):
    prom = harness.Prometheus(PROMETHEUS, workdir, PROMETHEUS_CONFIG,
                              ["--web.enable-remote-write-receiver"])
    web_port = prom.port
    ports = {"otlp_port": free_port(), "metrics_port": free_port(), "web_port": web_port}
    try:
        prom.ready()
        check(True, "Prometheus is ready")
        with harness.Router(args.bin, [args.plugin_dir], CONFIG_A.format(**ports)) as router:
            try:
                status, _, body = post_json(
                    f"http://127.0.0.1:{ports['otlp_port']}/v1/metrics", metrics_request())
                check(status == 200, f"the metrics are accepted ({status} {body[:200]!r})")
                # target_info is at the newest time of the resource's points (the
                # stale one's, T + 10 s), as in the collector: asked for apart.
                want = {key(l): v for l, v in expected_series()
                        if not l["__name__"].endswith("target_info")}
                want_info = {key(l): v for l, v in expected_series()
                             if l["__name__"].endswith("target_info")}

                # Wait until every series is there (or the time is up: then the
                # comparison below says which are missing).
                deadline = time.monotonic() + SERIES_TIMEOUT
                result = []
                while time.monotonic() < deadline:
                    result = prom.query('{__name__=~".+"}', T_S) or []
                    if len(result) >= len(want):
                        break
                    time.sleep(0.1)
                got = {key(s["metric"]): float(s["value"][1]) for s in result}
                check(len(result) == len(got), "no series twice")
                missing = [k for k in want if k not in got]
                extra = [k for k in got if k not in want]
                wrong = [(k, got[k], want[k]) for k in want
                         if k in got and not math.isclose(got[k], want[k])]
                check(not missing, f"every expected series is in Prometheus (missing {missing})")
                check(not extra, f"no other series is ({extra})")
                check(not wrong, f"every value is right ({wrong})")
                check(len(want) == 28, f"{len(want)} series compared")
                times = {s["value"][0] for s in result}
                check(times == {T_S}, f"all at the points' time ({times})")

                # T + 10 s: the stale marker ends the temperature series; the
                # others are still within the 5 minute look-back.
                r = prom.query('{__name__=~".*temperature.*"}', T_S + 10)
                check(r == [], f"the no-recorded-value point is a stale marker ({r})")
                r = prom.query('{__name__=~".*temperature.*"}', T_S + 9)
                check(r is not None and len(r) == 2 and
                      all(float(s["value"][1]) == 21.5 for s in r),
                      f"before it the series have their value ({r})")
                r = prom.query('{__name__=~".*target_info"}', T_S + 10) or []
                got = {key(s["metric"]): float(s["value"][1]) for s in r}
                check(got == want_info and len(r) == 2,
                      f"target_info per exporter, at the newest point's time ({r})")
                r = prom.query('{__name__=~"network.*"}', T_S)
                check(r == [], f"the delta sum is not written ({r})")

                text = scrape(ports["metrics_port"])
                main = 'exporter="prometheusremotewrite"'
                r2t = 'exporter="prometheusremotewrite/r2t"'
                n = sample(text, "switchyard_exporter_prometheusremotewrite_"
                           "dropped_temporality_points_total", main)
                check(n == 1, f"the delta point is counted as dropped ({n})")
                n = sample(text, "switchyard_exporter_prometheusremotewrite_series_total", main)
                check(n == 15, f"15 series written by the default exporter ({n})")
                n = sample(text, "switchyard_exporter_prometheusremotewrite_samples_total", main)
                check(n == 16, f"16 samples (the stale one too) ({n})")
                n = sample(text, "switchyard_exporter_prometheusremotewrite_requests_total", main)
                check(n == 1, f"one request under the default max_batch_size_bytes ({n})")
                n = sample(text, "switchyard_exporter_prometheusremotewrite_requests_total", r2t)
                check(n is not None and n >= 5,
                      f"several requests under max_batch_size_bytes 400 ({n})")
                n = sample(text, "switchyard_exporter_sent_metric_points_total", r2t)
                check(n == 8, f"the 8 points are reported sent ({n})")
            except AssertionError as e:
                check(False, str(e))
            rc = router.terminate()
            check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
            if check.failures:
                router.dump(prefix="router: ")
    finally:
        prom.stop(check, bool(check.failures))


# --- b. a fake endpoint ---------------------------------------------------------------

def snappy_decode(data):
    """Decodes a snappy block (the format, not a library): a varint length, then
    literals and copies."""
    n, i = read_varint(data, 0)
    out = bytearray()
    while i < len(data):
        tag = data[i]
        i += 1
        kind = tag & 3
        if kind == 0:
            ln = tag >> 2
            if ln >= 60:
                extra = ln - 59
                ln = int.from_bytes(data[i:i + extra], "little")
                i += extra
            ln += 1
            out += data[i:i + ln]
            i += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | data[i]
            i += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(data[i:i + 2], "little")
            i += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(data[i:i + 4], "little")
            i += 4
        if off == 0 or off > len(out):
            raise ValueError("bad snappy copy offset")
        for _ in range(ln):
            out.append(out[-off])
    if len(out) != n:
        raise ValueError(f"snappy length {len(out)} != {n}")
    return bytes(out)


def pb_fields(data):
    """(field number, wire type, value) of a protobuf message's fields."""
    i = 0
    while i < len(data):
        tag, i = read_varint(data, i)
        num, wt = tag >> 3, tag & 7
        if wt == 0:
            v, i = read_varint(data, i)
        elif wt == 1:
            v = data[i:i + 8]
            i += 8
        elif wt == 2:
            ln, i = read_varint(data, i)
            v = data[i:i + ln]
            i += ln
        else:
            raise ValueError(f"wire type {wt}")
        yield num, wt, v


def decode_write_request(body):
    """[(labels dict, [(value, ts)])], [metadata fields dict]"""
    series, meta = [], []
    for num, _, v in pb_fields(body):
        if num == 1:
            labels, samples = {}, []
            for n2, _, v2 in pb_fields(v):
                if n2 == 1:
                    f = {a: b for a, _, b in pb_fields(v2)}
                    labels[f[1].decode()] = f.get(2, b"").decode()
                elif n2 == 2:
                    f = {a: b for a, _, b in pb_fields(v2)}
                    samples.append((struct.unpack("<d", f[1])[0], f.get(2, 0)))
            series.append((labels, samples))
        elif num == 3:
            meta.append({a: b for a, _, b in pb_fields(v)})
    return series, meta


class FakeEndpoint:
    """Answers /bad with 400 and a reason, /flaky with 503 twice and then 204;
    records every request."""

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        owner = self

        class Handler(http_server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with owner.lock:
                    owner.requests.append((self.path, dict(self.headers), body))
                    flaky_seen = sum(1 for p, _, _ in owner.requests if p == "/flaky")
                if self.path == "/bad":
                    status, reply = 400, b"out of order sample: bad metric\n"
                elif self.path == "/flaky" and flaky_seen <= 2:
                    status, reply = 503, b"busy\n"
                else:
                    status, reply = 204, b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

        self.server = harness.SinkHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def of(self, path):
        with self.lock:
            return [r for r in self.requests if r[0] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


CONFIG_B = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{otlp_port}
exporters:
  prometheusremotewrite/bad:
    endpoint: http://127.0.0.1:{fake_port}/bad
    retry_on_failure:
      initial_interval: 50ms
  prometheusremotewrite/flaky:
    endpoint: http://127.0.0.1:{fake_port}/flaky
    headers:
      X-Scope-OrgID: tenant-1
    retry_on_failure:
      initial_interval: 50ms
      max_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [prometheusremotewrite/bad, prometheusremotewrite/flaky]
"""


def check_fake(check, args):
    fake = FakeEndpoint()
    ports = {"otlp_port": free_port(), "metrics_port": free_port(), "fake_port": fake.port}
    try:
        with harness.Router(args.bin, [args.plugin_dir], CONFIG_B.format(**ports)) as router:
            try:
                req = {"resourceMetrics": [{"resource": {"attributes": RESOURCE[:1]},
                       "scopeMetrics": [{"metrics": [
                           {"name": "up", "gauge": {"dataPoints": [
                               {"asInt": "1", "timeUnixNano": str(T)}]}}]}]}]}
                status, _, body = post_json(
                    f"http://127.0.0.1:{ports['otlp_port']}/v1/metrics", req)
                check(status == 200, f"accepted ({status} {body[:200]!r})")
                harness.wait_for("three requests to /flaky", lambda: len(fake.of("/flaky")) >= 3,
                                 10.0)
                mport = ports["metrics_port"]
                bad = 'exporter="prometheusremotewrite/bad"'
                flaky = 'exporter="prometheusremotewrite/flaky"'

                def counted():
                    t = scrape(mport)
                    return t if sample(t, "switchyard_exporter_send_failed_metric_points_total",
                                       bad) == 1 and sample(
                        t, "switchyard_exporter_sent_metric_points_total", flaky) == 1 else None
                text = harness.wait_for("the outcomes to be counted", counted, 10.0)
                time.sleep(0.5)  # a retry of /bad would come after 50 ms
                check(len(fake.of("/bad")) == 1, f"400 is not retried ({len(fake.of('/bad'))})")
                check(len(fake.of("/flaky")) == 3,
                      f"503 is retried until 204 ({len(fake.of('/flaky'))})")
                n = sample(text, "switchyard_exporter_prometheusremotewrite_permanent_failures_"
                           "total", bad)
                check(n == 1, f"the 400 is counted as a permanent failure ({n})")
                check("out of order sample: bad metric" in router.output(),
                      "the 400's body is logged")

                _, headers, body = fake.of("/flaky")[-1]
                h = {k.lower(): v for k, v in headers.items()}
                check(h.get("content-encoding") == "snappy", f"snappy ({h})")
                check(h.get("content-type") == "application/x-protobuf", "protobuf")
                check(h.get("x-prometheus-remote-write-version") == "0.1.0", "version 0.1.0")
                check(h.get("user-agent", "").startswith("Switchyard/"), "a user agent")
                check(h.get("x-scope-orgid") == "tenant-1", "the configured header")
                bodies = {b for _, _, b in fake.of("/flaky")}
                check(len(bodies) == 1, "every attempt sends the same body")
                series, meta = decode_write_request(snappy_decode(body))
                check(meta == [], "no metadata unless send_metadata")
                want = [({"__name__": "up", "job": "shop"}, [(1.0, T // 1_000_000)])]
                check(series == want, f"the WriteRequest holds up{{job=shop}} 1 ({series})")

                # A batch with nothing remote write can carry (a delta sum): no
                # request, the batch done, the point counted as dropped.
                delta = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
                    {"name": "d", "sum": {"aggregationTemporality": 1, "isMonotonic": True,
                                          "dataPoints": [{"asInt": "1",
                                                          "timeUnixNano": str(T)}]}}]}]}]}
                status, _, _ = post_json(
                    f"http://127.0.0.1:{ports['otlp_port']}/v1/metrics", delta)
                check(status == 200, f"the delta-only request is accepted ({status})")

                def done():
                    t = scrape(mport)
                    return t if sample(t, "switchyard_exporter_prometheusremotewrite_dropped_"
                                       "temporality_points_total", flaky) == 1 and sample(
                        t, "switchyard_exporter_sent_metric_points_total", flaky) == 2 else None
                text = harness.wait_for("the delta point to be dropped and the batch done",
                                        done, 10.0)
                n = sample(text, "switchyard_exporter_sent_metric_points_total", flaky)
                check(n == 2, f"the empty batch completes ({n})")
                check(len(fake.of("/flaky")) == 3, "and makes no request")
            except AssertionError as e:
                check(False, str(e))
            rc = router.terminate()
            check(rc == 0, f"the router exits 0 on SIGTERM ({rc})")
            if check.failures:
                router.dump(prefix="router: ")
    finally:
        fake.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()

    if harness.Prometheus.missing(PROMETHEUS):
        return 1

    check = harness.Checks()
    workdir = tempfile.mkdtemp(prefix="sy-prw-")
    try:
        check_prometheus(check, args, workdir)
        check_fake(check, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if check.failures:
        print(f"{len(check.failures)} check(s) failed", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
