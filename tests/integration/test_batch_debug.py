#!/usr/bin/env python3
"""The batch processor and the debug exporter, through the real binary.

Each case starts `switchyard` with `otlp (HTTP, free loopback port) -> batch ->
debug`, sends OTLP/JSON requests and reads what the debug exporter wrote to
stderr:

  a. batching by size: N one-span requests with send_batch_size 5 and a 10s
     timeout come out as batches of exactly 5 spans (counted by the summary
     lines), every span name exactly once;
  b. graceful drain: 3 spans, then SIGTERM long before the 10s timeout; all 3 are
     in the output and the process exits 0;
  c. splitting: one request of 12 spans with send_batch_size 5 and
     send_batch_max_size 5 gives batches of 5, 5 and 2 (the last on the timeout),
     and the batch metrics count two size triggers and one timeout trigger;
  d. metrics and logs through `verbosity: detailed`: a Sum with attributes and a
     log record with body and severity show the fields the collector prints.

    test_batch_debug.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

Every wait is bounded; python3 standard library only.
"""
import argparse
import re
import sys
import time

import harness
from harness import free_port, http, json_span, json_traces, post_json

OUTPUT_TIMEOUT = 15.0
EXIT_TIMEOUT = 15.0
BATCH_TIMEOUT_S = 10  # the batch timeout of cases a and b; the drain must beat it

SUMMARY_RE = re.compile(r'Traces \{"resource spans": (\d+), "spans": (\d+)\}')
SPAN_NAME_RE = re.compile(r'^    Name           : (.*)$')
START_NS = "1581452772000000321"
END_NS = "1581452773000000789"


def span(name, i):
    return json_span(name, trace_id="0102030405060708090a0b0c0d0e0f10", span_id="%016x" % (i + 1),
                     start_ns=START_NS, end_ns=END_NS,
                     attributes=[{"key": "seq", "value": {"intValue": str(i)}}])


def traces_request(spans):
    return json_traces(spans, service="batch-debug-test")


class Router(harness.Router):
    """The binary on `config`, a str.format template of {port} (the OTLP/HTTP
    receiver) and {metrics_port} (service.telemetry.metrics); it does not wait for
    readiness, the cases check wait_ready() themselves."""

    def __init__(self, args, config):
        self.port = free_port()
        self.metrics_port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        super().__init__(args.bin, [args.plugin_dir],
                         config.format(port=self.port, metrics_port=self.metrics_port),
                         wait=False)


def traces_config(batch_settings, verbosity="detailed"):
    return """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  batch:
%s
exporters:
  debug:
    verbosity: %s
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
""" % ("\n".join("    " + s for s in batch_settings), verbosity)


def summaries(lines):
    """The span counts of the debug exporter's summary lines, in order."""
    out = []
    for line in lines:
        m = SUMMARY_RE.search(line)
        if m:
            out.append(int(m.group(2)))
    return out


def span_names(lines):
    names = []
    for line in lines:
        m = SPAN_NAME_RE.match(line)
        if m:
            names.append(m.group(1))
    return names


def check(cond, msg, failures):
    if not cond:
        failures.append(msg)
        print("FAIL: " + msg, file=sys.stderr)
    return cond


def case_size(args, failures):
    before = len(failures)
    n = 20
    with Router(args, traces_config(
            ["send_batch_size: 5", "timeout: %ds" % BATCH_TIMEOUT_S])) as r:
        try:
            if not check(r.wait_ready(), "a: router did not become ready", failures):
                return
            for i in range(n):
                req = traces_request([span("size-%d" % i, i)])
                st = post_json(r.base + "/v1/traces", req)[0]
                check(st == 200, "a: request %d answered %d" % (i, st), failures)
            # The debug exporter writes a batch as several log lines, the summary
            # first: wait for the span lines too, not only for the summaries.
            lines = r.wait_output("a: %d spans in summaries" % n,
                                  lambda ls: sum(summaries(ls)) >= n and len(span_names(ls)) >= n,
                                  OUTPUT_TIMEOUT)
            if check(lines is not None, "a: not all spans were written", failures):
                counts = summaries(lines)
                check(counts == [5] * (n // 5),
                      "a: batch sizes %r, want %r" % (counts, [5] * 4), failures)
                names = span_names(lines)
                want = ["size-%d" % i for i in range(n)]
                check(sorted(names) == sorted(want),
                      "a: span names %r, want each of %r once" % (sorted(names), want),
                      failures)
        finally:
            rc = r.terminate(EXIT_TIMEOUT)
            check(rc == 0, "a: exit code %r" % rc, failures)
            if len(failures) > before:
                r.dump(prefix="  | ")


def case_drain(args, failures):
    before = len(failures)
    with Router(args, traces_config(
            ["send_batch_size: 100", "timeout: %ds" % BATCH_TIMEOUT_S])) as r:
        try:
            if not check(r.wait_ready(), "b: router did not become ready", failures):
                return
            for i in range(3):
                req = traces_request([span("drain-%d" % i, i)])
                st = post_json(r.base + "/v1/traces", req)[0]
                check(st == 200, "b: request %d answered %d" % (i, st), failures)
            time.sleep(0.2)
            check(span_names(r.lines()) == [], "b: spans were written before the timeout",
                  failures)
        finally:
            t0 = time.monotonic()
            rc = r.terminate(EXIT_TIMEOUT)
            took = time.monotonic() - t0
        check(rc == 0, "b: exit code %r" % rc, failures)
        check(took < BATCH_TIMEOUT_S - 1,
              "b: shutdown took %.1fs, as if it waited for the batch timeout" % took, failures)
        names = span_names(r.lines())
        check(sorted(names) == ["drain-0", "drain-1", "drain-2"],
              "b: after drain the output has spans %r" % names, failures)
        if len(failures) > before:
            r.dump(prefix="  | ")


def metric_value(text, name):
    """The value of the first sample of `name` (any labels) in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


def case_split(args, failures):
    before = len(failures)
    with Router(args, traces_config(
            ["send_batch_size: 5", "send_batch_max_size: 5", "timeout: 1s"])) as r:
        try:
            if not check(r.wait_ready(), "c: router did not become ready", failures):
                return
            spans = [span("split-%d" % i, i) for i in range(12)]
            st = post_json(r.base + "/v1/traces", traces_request(spans))[0]
            check(st == 200, "c: request answered %d" % st, failures)
            lines = r.wait_output("c: 12 spans in summaries",
                                  lambda ls: sum(summaries(ls)) >= 12 and len(span_names(ls)) >= 12,
                                  OUTPUT_TIMEOUT)
            if check(lines is not None, "c: not all spans were written", failures):
                check(summaries(lines) == [5, 5, 2],
                      "c: batch sizes %r, want [5, 5, 2]" % summaries(lines), failures)
                names = span_names(lines)
                check(names == ["split-%d" % i for i in range(12)],
                      "c: span names out of order or missing: %r" % names, failures)
            # The processor's own metrics, as the collector names them.
            url = "http://127.0.0.1:%d/metrics" % r.metrics_port
            size_name = "switchyard_processor_batch_batch_size_trigger_send_total"
            timeout_name = "switchyard_processor_batch_timeout_trigger_send_total"
            text = ""
            deadline = time.monotonic() + OUTPUT_TIMEOUT
            while time.monotonic() < deadline:
                try:
                    text = http("GET", url)[2].decode("utf-8", "replace")
                except OSError:
                    text = ""
                if metric_value(text, timeout_name) == 1:
                    break
                time.sleep(0.1)
            check(metric_value(text, size_name) == 2,
                  "c: %s is %r, want 2" % (size_name, metric_value(text, size_name)),
                  failures)
            check(metric_value(text, timeout_name) == 1,
                  "c: %s is %r, want 1" % (timeout_name, metric_value(text, timeout_name)),
                  failures)
        finally:
            rc = r.terminate(EXIT_TIMEOUT)
            check(rc == 0, "c: exit code %r" % rc, failures)
            if len(failures) > before:
                r.dump(prefix="  | ")


METRICS_LOGS_CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  batch:
    send_batch_size: 1
    timeout: 200ms
exporters:
  debug:
    verbosity: detailed
service:
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics_port}
  pipelines:
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
"""

METRICS_REQUEST = {"resourceMetrics": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
    "scopeMetrics": [{
        "scope": {"name": "meter", "version": "1.2.3"},
        "metrics": [{
            "name": "http.requests",
            "description": "Requests served",
            "unit": "1",
            "sum": {
                "aggregationTemporality": 2,
                "isMonotonic": True,
                "dataPoints": [
                    {"attributes": [{"key": "host", "value": {"stringValue": "h1"}},
                                    {"key": "code", "value": {"intValue": "200"}}],
                     "startTimeUnixNano": START_NS, "timeUnixNano": END_NS, "asInt": "42"},
                    {"attributes": [{"key": "host", "value": {"stringValue": "h2"}}],
                     "startTimeUnixNano": START_NS, "timeUnixNano": END_NS,
                     "asDouble": 1.5},
                ],
            },
        }],
    }],
}]}

LOGS_REQUEST = {"resourceLogs": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
    "scopeLogs": [{
        "scope": {"name": "logger"},
        "logRecords": [{
            "timeUnixNano": END_NS,
            "severityNumber": 9,
            "severityText": "INFO",
            "body": {"stringValue": "hello world"},
            "attributes": [{"key": "app", "value": {"stringValue": "server"}},
                           {"key": "ok", "value": {"boolValue": True}}],
            "traceId": "08040201000000000000000000000000",
            "spanId": "0102040800000000",
        }],
    }],
}]}

METRICS_EXPECTED = [
    'Metrics {"resource metrics": 1, "metrics": 1, "data points": 2}',
    "ResourceMetrics #0",
    "     -> service.name: Str(svc)",
    "ScopeMetrics #0",
    "InstrumentationScope meter 1.2.3",
    "Metric #0",
    "Descriptor:",
    "     -> Name: http.requests",
    "     -> Description: Requests served",
    "     -> Unit: 1",
    "     -> DataType: Sum",
    "     -> IsMonotonic: true",
    "     -> AggregationTemporality: Cumulative",
    "NumberDataPoints #0",
    "Data point attributes:",
    "     -> host: Str(h1)",
    "     -> code: Int(200)",
    "StartTimestamp: 2020-02-11 20:26:12.000000321 +0000 UTC",
    "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC",
    "Value: 42",
    "NumberDataPoints #1",
    "     -> host: Str(h2)",
    "Value: 1.500000",
]

LOGS_EXPECTED = [
    'Logs {"resource logs": 1, "log records": 1}',
    "ResourceLog #0",
    "ScopeLogs #0",
    "InstrumentationScope logger ",
    "LogRecord #0",
    "ObservedTimestamp: 1970-01-01 00:00:00 +0000 UTC",
    "Timestamp: 2020-02-11 20:26:13.000000789 +0000 UTC",
    "SeverityText: INFO",
    "SeverityNumber: Info(9)",
    "Body: Str(hello world)",
    "Attributes:",
    "     -> app: Str(server)",
    "     -> ok: Bool(true)",
    "Trace ID: 08040201000000000000000000000000",
    "Span ID: 0102040800000000",
    "Flags: 0",
]


def contains_all(lines, expected):
    """True if every expected text is in some line (the first ones after a prefix)."""
    return all(any(line.endswith(e) if e.startswith(("Metrics {", "Logs {", "Resource"))
                   else line == e for line in lines) for e in expected)


def case_metrics_logs(args, failures):
    before = len(failures)
    with Router(args, METRICS_LOGS_CONFIG) as r:
        try:
            if not check(r.wait_ready(), "d: router did not become ready", failures):
                return
            st = post_json(r.base + "/v1/metrics", METRICS_REQUEST)[0]
            check(st == 200, "d: metrics request answered %d" % st, failures)
            st = post_json(r.base + "/v1/logs", LOGS_REQUEST)[0]
            check(st == 200, "d: logs request answered %d" % st, failures)
            lines = r.wait_output("d: the metric and the log record",
                                  lambda ls: contains_all(ls, METRICS_EXPECTED + LOGS_EXPECTED),
                                  OUTPUT_TIMEOUT)
            if lines is None:
                lines = r.lines()
                for e in METRICS_EXPECTED + LOGS_EXPECTED:
                    check(contains_all(lines, [e]), "d: missing line %r" % e, failures)
                failures.append("d: detailed output incomplete")
        finally:
            rc = r.terminate(EXIT_TIMEOUT)
            check(rc == 0, "d: exit code %r" % rc, failures)
            if len(failures) > before:
                r.dump(prefix="  | ")


def case_basic_encoded(args, failures):
    """Basic verbosity counts from the encoded bytes (no decode); the counts must be
    the ones the decoded form gives: 2 resources x 3 spans sent as protobuf."""
    before = len(failures)
    span_pb = lambda i: harness.field_len(5, ("basic-%d" % i).encode())  # Span.name
    scope = harness.field_len(2, b"".join(harness.field_len(2, span_pb(i)) for i in range(3)))
    body = b"".join(harness.field_len(1, scope) for _ in range(2))  # ExportTraceServiceRequest
    with Router(args, traces_config(["timeout: 0s"], verbosity="basic")) as r:
        try:
            if not check(r.wait_ready(), "e: router did not become ready", failures):
                return
            st = http("POST", r.base + "/v1/traces", body,
                      {"Content-Type": "application/x-protobuf"})[0]
            check(st == 200, "e: protobuf request answered %d" % st, failures)
            lines = r.wait_output("e: the summary line",
                                  lambda ls: any(SUMMARY_RE.search(l) for l in ls),
                                  OUTPUT_TIMEOUT)
            got = [SUMMARY_RE.search(l).groups() for l in lines or [] if SUMMARY_RE.search(l)]
            check(got == [("2", "6")], "e: summaries %r, want [('2', '6')]" % got, failures)
        finally:
            rc = r.terminate(EXIT_TIMEOUT)
            check(rc == 0, "e: exit code %r" % rc, failures)
            if len(failures) > before:
                r.dump(prefix="  | ")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--case", choices=["a", "b", "c", "d", "e"], action="append",
                    help="run only these cases (default: all)")
    args = ap.parse_args()
    cases = {"a": case_size, "b": case_drain, "c": case_split, "d": case_metrics_logs,
             "e": case_basic_encoded}
    failures = []
    for key in args.case or sorted(cases):
        before = len(failures)
        cases[key](args, failures)
        print("case %s: %s" % (key, "ok" if len(failures) == before else "FAILED"))
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
