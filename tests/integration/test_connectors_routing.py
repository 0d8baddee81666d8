#!/usr/bin/env python3
"""integration.connectors.*: the `forward` and `routing` connectors through the
real binary, their .so and the real otlp receiver and otlphttp exporter.

Every exporter sends OTLP/JSON (no compression) to one local HTTP sink, each to
a path of its own, so that the sink knows which pipeline each item came through;
every item is identified (span name, log body, data point attribute) and the test
checks that each one arrived exactly where it should, exactly once.

  forward      traces/a (otlp/a) and traces/b (otlp/b) -> forward -> traces/out1 and
               traces/out2: both sinks get every span of both receivers once (fan-in
               and fan-out); logs and metrics through the same connector.
  resource     routing by a resource attribute (tenant) to two pipelines and
               default_pipelines, requests with one tenant (the batch goes whole) and
               with several (split): every span where its resource says, its
               resource and scope kept; the connector's own counters.
  span         routing by a span attribute (context span) before a resource route.
  logs         log records by severity (context log), the rest by resource.
  metrics      metric context (by name) and datapoint context.
  error_mode   a condition failing at run time under ignore, silent, propagate.
  first_match  two routes matching the same resources: only the first gets them;
               no default_pipelines: what matches nothing is dropped and counted.
  config       startup fails for a route naming a pipeline the connector does not
               feed, with the route and the pipeline named; `validate` reports a bad
               condition with file:line:col; unknown keys; the request context.
  otel_js      the OpenTelemetry JS SDK (protobuf exporters) as the client: spans of
               three tenants and log records of four severities, routed by tenant,
               by a span attribute and by severity, compared with its manifest.
  backpressure testgen -> routing (every batch split by span parity) -> two testsinks,
               one slow behind a gate: nothing lost or duplicated (every sequence
               number once, evens and odds apart).

    test_connectors_routing.py --case CASE --bin build/bin/switchyard \\
        --plugin-dir build/lib/switchyard/plugins [--kit-dir build/tests/plugins] \\
        [--node-dir BUILD/routing-node --src-dir tests/integration/node_routing]
"""
import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sinks"))
from harness import Checks, Router, free_port, http, post_json, wait_for  # noqa: E402
from http_sink import Sink as HTTPSink  # noqa: E402

check = Checks()
TID = "5b8efff798038103d269b633813fc60c"
ARRIVAL_TIMEOUT = 20.0


class Sink(HTTPSink):
    """The sinks' recording HTTP server (sinks/http_sink.py); each exporter posts to
    a path of its own under it."""

    def url(self, name, signal):
        return "http://127.0.0.1:%d/%s/v1/%s" % (self.port, name, signal)

    def docs(self, name, signal):
        """The OTLP/JSON documents posted to one exporter's path, in order."""
        prefix = "/%s/v1/%s" % (name, signal)
        return [json.loads(r["body"]) for r in self.received() if r["path"] == prefix]


# ---- what a sink got ------------------------------------------------------------------

def attrs(obj):
    out = {}
    for kv in (obj or {}).get("attributes", []):
        v = kv.get("value", {})
        out[kv["key"]] = next(iter(v.values()), None) if v else None
    return out


def spans_of(docs):
    """(span name, resource attributes, scope name) of every span, in order."""
    out = []
    for d in docs:
        for rs in d.get("resourceSpans", []):
            ra = attrs(rs.get("resource"))
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    out.append((sp["name"], ra, (ss.get("scope") or {}).get("name", "")))
    return out


def logs_of(docs):
    out = []
    for d in docs:
        for rl in d.get("resourceLogs", []):
            ra = attrs(rl.get("resource"))
            for sl in rl.get("scopeLogs", []):
                for lr in sl.get("logRecords", []):
                    out.append((lr.get("body", {}).get("stringValue"), ra,
                                lr.get("severityNumber", 0)))
    return out


def points_of(docs):
    out = []
    for d in docs:
        for rm in d.get("resourceMetrics", []):
            for sm in rm.get("scopeMetrics", []):
                for m in sm.get("metrics", []):
                    for kind in ("gauge", "sum"):
                        for p in m.get(kind, {}).get("dataPoints", []):
                            out.append((attrs(p).get("id"), m["name"]))
    return out


def names(items):
    return collections.Counter(i[0] for i in items)


def expect_exactly(what, got, want):
    """got and want are Counters of ids: equal, and each once."""
    dup = sorted(k for k, n in got.items() if n > 1)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    check(not dup and not missing and not extra and got == want,
          "%s: %d items, each once (missing %s, unexpected %s, repeated %s)" %
          (what, sum(want.values()), missing[:5], extra[:5], dup[:5]))


def wait_count(what, fn, n, timeout=ARRIVAL_TIMEOUT):
    """Waits until fn() returns at least n items; returns what it returned last."""
    deadline = time.monotonic() + timeout
    got = fn()
    while len(got) < n and time.monotonic() < deadline:
        time.sleep(0.05)
        got = fn()
    if len(got) < n:
        print("timed out waiting for %s: %d of %d" % (what, len(got), n), file=sys.stderr)
    return got


def metric(port, name):
    """The sum of the samples of `name` on the router's /metrics."""
    status, _, body = http("GET", "http://127.0.0.1:%d/metrics" % port)
    if status != 200:
        return None
    total = None
    for line in body.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


# ---- requests -------------------------------------------------------------------------

def s_attr(k, v):
    if isinstance(v, bool):
        return {"key": k, "value": {"boolValue": v}}
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": v}}


def span(name, sid, **kv):
    return {"traceId": TID, "spanId": sid, "name": name, "kind": 2,
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "attributes": [s_attr(k, v) for k, v in kv.items()]}


def resource_spans(res_attrs, spans, scope="lib"):
    return {"resource": {"attributes": [s_attr(k, v) for k, v in res_attrs.items()]},
            "scopeSpans": [{"scope": {"name": scope, "version": "1.0"}, "spans": spans}]}


def sid(i):
    return "%016x" % (i + 1)


# ---- configs --------------------------------------------------------------------------

def router_config(port, sink, metrics_port, connectors, pipelines, exporters, receivers=None):
    """A configuration text. exporters: {id: (sink path name, signal)}."""
    out = ["receivers:"]
    for rid, p in (receivers or {"otlp": port}).items():
        out += ["  %s:" % rid, "    protocols:", "      http:",
                "        endpoint: 127.0.0.1:%d" % p]
    out.append("exporters:")
    for eid, (name, signal) in exporters.items():
        out += ["  %s:" % eid, "    %s_endpoint: %s" % (signal, sink.url(name, signal)),
                "    encoding: json", "    compression: none"]
    out.append("connectors:")
    out += ["  " + line for line in connectors.strip("\n").splitlines()]
    out += ["service:", "  telemetry:", "    metrics:",
            "      address: 127.0.0.1:%d" % metrics_port, "  pipelines:"]
    for pid, (recv, exp) in pipelines.items():
        out.append("    %s: {receivers: [%s], exporters: [%s]}" % (pid, ", ".join(recv),
                                                                   ", ".join(exp)))
    return "\n".join(out) + "\n"


def start(args, text, plugin_dirs=None):
    return Router(args.bin, plugin_dirs or [args.plugin_dir], text)


def post(port, signal, doc):
    status, _, body = post_json("http://127.0.0.1:%d/v1/%s" % (port, signal), doc)
    check(status == 200, "POST /v1/%s answered %d %s" % (signal, status, body[:200]))


def stop(router):
    rc = router.stop()
    check(rc == 0, "router exited %s on SIGTERM" % rc)
    if rc != 0:
        router.dump(60)


# ---- cases ----------------------------------------------------------------------------

def case_forward(args):
    sink = Sink()
    pa, pb, mp = free_port(), free_port(), free_port()
    text = router_config(
        None, sink, mp, "forward:\n",
        {"traces/a": (["otlp/a"], ["forward"]), "traces/b": (["otlp/b"], ["forward"]),
         "traces/out1": (["forward"], ["otlphttp/1"]),
         "traces/out2": (["forward"], ["otlphttp/2"]),
         "logs/in": (["otlp/a"], ["forward"]), "logs/out": (["forward"], ["otlphttp/logs"]),
         "metrics/in": (["otlp/b"], ["forward"]),
         "metrics/out": (["forward"], ["otlphttp/metrics"])},
        {"otlphttp/1": ("out1", "traces"), "otlphttp/2": ("out2", "traces"),
         "otlphttp/logs": ("logs", "logs"), "otlphttp/metrics": ("metrics", "metrics")},
        receivers={"otlp/a": pa, "otlp/b": pb})
    with start(args, text) as r:
        want = collections.Counter()
        for i in range(40):
            port, who = (pa, "a") if i % 2 == 0 else (pb, "b")
            spans = [span("fw-%s-%d-%d" % (who, i, k), sid(k), k=k) for k in range(5)]
            for s in spans:
                want[s["name"]] += 1
            post(port, "traces", {"resourceSpans": [resource_spans({"service.name": who},
                                                                   spans)]})
        post(pa, "logs", {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [
            {"body": {"stringValue": "fw-log-%d" % i}} for i in range(7)]}]}]})
        post(pb, "metrics", {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
            {"name": "fw.gauge", "gauge": {"dataPoints": [
                {"asInt": str(i), "attributes": [s_attr("id", "fw-p%d" % i)]}
                for i in range(6)]}}]}]}]})
        n = sum(want.values())
        got1 = wait_count("out1 spans", lambda: spans_of(sink.docs("out1", "traces")), n)
        got2 = wait_count("out2 spans", lambda: spans_of(sink.docs("out2", "traces")), n)
        logs = wait_count("logs", lambda: logs_of(sink.docs("logs", "logs")), 7)
        points = wait_count("points", lambda: points_of(sink.docs("metrics", "metrics")), 6)
        time.sleep(0.3)  # anything sent twice would arrive now
        expect_exactly("forward fan-in, traces/out1", names(spans_of(sink.docs("out1", "traces"))),
                       want)
        expect_exactly("forward fan-out, traces/out2", names(spans_of(sink.docs("out2", "traces"))),
                       want)
        check(all(ra.get("service.name") == name.split("-")[1] for name, ra, _ in got1 + got2),
              "forward: every span kept its resource")
        expect_exactly("forward logs", names(logs_of(sink.docs("logs", "logs"))),
                       collections.Counter("fw-log-%d" % i for i in range(7)))
        expect_exactly("forward metrics", names(points_of(sink.docs("metrics", "metrics"))),
                       collections.Counter("fw-p%d" % i for i in range(6)))
        check(len(logs) == 7 and len(points) == 6, "forward: logs and metrics arrived")
        stop(r)
    sink.stop()


ROUTING_RESOURCE = r'''
routing:
  default_pipelines: [traces/other]
  table:
    - statement: route() where attributes["tenant"] == "acme"
      pipelines: [traces/acme]
    - condition: attributes["tenant"] == "ecorp"
      context: resource
      pipelines: [traces/ecorp]
'''


def tenant_pipelines(conn="routing"):
    return ({"traces/in": (["otlp"], [conn]), "traces/acme": ([conn], ["otlphttp/acme"]),
             "traces/ecorp": ([conn], ["otlphttp/ecorp"]),
             "traces/other": ([conn], ["otlphttp/other"])},
            {"otlphttp/acme": ("acme", "traces"), "otlphttp/ecorp": ("ecorp", "traces"),
             "otlphttp/other": ("other", "traces")})


def case_resource(args):
    sink = Sink()
    port, mp = free_port(), free_port()
    pipes, exps = tenant_pipelines()
    with start(args, router_config(port, sink, mp, ROUTING_RESOURCE, pipes, exps)) as r:
        want = {"acme": collections.Counter(), "ecorp": collections.Counter(),
                "other": collections.Counter()}
        tenants = ["acme", "ecorp", "zeta", None]
        n = 0
        for i in range(30):
            if i % 3 == 0:   # one tenant per request: the batch goes whole
                chosen = [tenants[i % 4]]
            else:            # several resources: the batch is split
                chosen = [tenants[(i + k) % 4] for k in range(1 + i % 4)]
            rss = []
            for k, t in enumerate(chosen):
                res = {"service.name": "svc-%d" % k}
                if t:
                    res["tenant"] = t
                spans = [span("res-%d-%d-%d" % (i, k, j), sid(j)) for j in range(3)]
                for s in spans:
                    want[t if t in ("acme", "ecorp") else "other"][s["name"]] += 1
                    n += 1
                rss.append(resource_spans(res, spans, scope="scope-%d" % k))
            post(port, "traces", {"resourceSpans": rss})
        got = {t: [] for t in want}
        wait_count("all routed spans",
                   lambda: sum((spans_of(sink.docs(t, "traces")) for t in want), []), n)
        time.sleep(0.3)
        for t in want:
            got[t] = spans_of(sink.docs(t, "traces"))
            expect_exactly("resource context: traces/%s" % t, names(got[t]), want[t])
        check(all(ra.get("tenant") == "acme" for _, ra, _ in got["acme"]) and
              all(ra.get("tenant") == "ecorp" for _, ra, _ in got["ecorp"]) and
              all(ra.get("tenant") not in ("acme", "ecorp") for _, ra, _ in got["other"]),
              "resource context: each span arrived with its own resource")
        check(all(sc == "scope-%s" % name.split("-")[2] and
                  ra.get("service.name") == "svc-%s" % name.split("-")[2]
                  for t in got for name, ra, sc in got[t]),
              "resource context: scopes and resource attributes kept")
        routed = metric(mp, "switchyard_connector_routing_routed_items_total")
        default = metric(mp, "switchyard_connector_routing_default_items_total")
        split = metric(mp, "switchyard_connector_routing_split_batches_total")
        check(routed == sum(want["acme"].values()) + sum(want["ecorp"].values()),
              "routed_items counter = spans routed by a route (%s)" % routed)
        check(default == sum(want["other"].values()),
              "default_items counter = spans sent to default_pipelines (%s)" % default)
        check(split is not None and split > 0, "split_batches counted (%s)" % split)
        stop(r)
    sink.stop()


ROUTING_SPAN = r'''
routing:
  default_pipelines: [traces/other]
  table:
    - context: span
      condition: attributes["audit"] == true
      pipelines: [traces/ecorp]
    - condition: attributes["tenant"] == "acme"
      pipelines: [traces/acme]
'''


def case_span(args):
    sink = Sink()
    port, mp = free_port(), free_port()
    pipes, exps = tenant_pipelines()
    with start(args, router_config(port, sink, mp, ROUTING_SPAN, pipes, exps)) as r:
        want = {"acme": collections.Counter(), "ecorp": collections.Counter(),
                "other": collections.Counter()}
        n = 0
        for i in range(20):
            rss = []
            for k, t in enumerate(["acme", "beta"]):
                spans = []
                for j in range(4):
                    audit = (i + j) % 3 == 0
                    name = "sp-%d-%s-%d" % (i, t, j)
                    spans.append(span(name, sid(j), audit=audit))
                    dest = "ecorp" if audit else ("acme" if t == "acme" else "other")
                    want[dest][name] += 1
                    n += 1
                rss.append(resource_spans({"tenant": t}, spans))
            post(port, "traces", {"resourceSpans": rss})
        wait_count("all routed spans",
                   lambda: sum((spans_of(sink.docs(t, "traces")) for t in want), []), n)
        time.sleep(0.3)
        for t in want:
            got = spans_of(sink.docs(t, "traces"))
            expect_exactly("span context: traces/%s" % t, names(got), want[t])
            check(all(ra.get("tenant") == name.split("-")[2] for name, ra, _ in got),
                  "span context: traces/%s spans carry their own resource" % t)
        stop(r)
    sink.stop()


ROUTING_LOGS = r'''
routing:
  default_pipelines: [logs/rest]
  table:
    - context: log
      condition: severity_number >= SEVERITY_NUMBER_ERROR
      pipelines: [logs/errors]
    - condition: resource.attributes["service.name"] == "payments"
      pipelines: [logs/payments]
'''


def case_logs(args):
    sink = Sink()
    port, mp = free_port(), free_port()
    pipes = {"logs/in": (["otlp"], ["routing"]), "logs/errors": (["routing"], ["otlphttp/e"]),
             "logs/payments": (["routing"], ["otlphttp/p"]),
             "logs/rest": (["routing"], ["otlphttp/r"])}
    exps = {"otlphttp/e": ("errors", "logs"), "otlphttp/p": ("payments", "logs"),
            "otlphttp/r": ("rest", "logs")}
    with start(args, router_config(port, sink, mp, ROUTING_LOGS, pipes, exps)) as r:
        want = {"errors": collections.Counter(), "payments": collections.Counter(),
                "rest": collections.Counter()}
        n = 0
        for i in range(15):
            rls = []
            for svc in ("payments", "cart"):
                recs = []
                for j, sev in enumerate((5, 9, 13, 17, 21)):
                    body = "log-%d-%s-%d" % (i, svc, j)
                    recs.append({"timeUnixNano": "1544712660000000000", "severityNumber": sev,
                                 "body": {"stringValue": body}})
                    dest = "errors" if sev >= 17 else ("payments" if svc == "payments"
                                                       else "rest")
                    want[dest][body] += 1
                    n += 1
                rls.append({"resource": {"attributes": [s_attr("service.name", svc)]},
                            "scopeLogs": [{"scope": {"name": "l"}, "logRecords": recs}]})
            post(port, "logs", {"resourceLogs": rls})
        wait_count("all routed logs",
                   lambda: sum((logs_of(sink.docs(t, "logs")) for t in want), []), n)
        time.sleep(0.3)
        for t in want:
            got = logs_of(sink.docs(t, "logs"))
            expect_exactly("log context: logs/%s" % t, names(got), want[t])
        errs = logs_of(sink.docs("errors", "logs"))
        check(all(sev >= 17 and ra.get("service.name") == body.split("-")[2]
                  for body, ra, sev in errs),
              "log context: severities and resources kept")
        stop(r)
    sink.stop()


ROUTING_METRICS = r'''
routing:
  default_pipelines: [metrics/rest]
  table:
    - context: datapoint
      condition: attributes["id"] == "p-1-3"
      pipelines: [metrics/one]
    - context: metric
      condition: name == "queue.size"
      pipelines: [metrics/queue]
'''


def case_metrics(args):
    sink = Sink()
    port, mp = free_port(), free_port()
    pipes = {"metrics/in": (["otlp"], ["routing"]),
             "metrics/one": (["routing"], ["otlphttp/o"]),
             "metrics/queue": (["routing"], ["otlphttp/q"]),
             "metrics/rest": (["routing"], ["otlphttp/r"])}
    exps = {"otlphttp/o": ("one", "metrics"), "otlphttp/q": ("queue", "metrics"),
            "otlphttp/r": ("rest", "metrics")}
    with start(args, router_config(port, sink, mp, ROUTING_METRICS, pipes, exps)) as r:
        want = {"one": collections.Counter(), "queue": collections.Counter(),
                "rest": collections.Counter()}
        for i in range(3):
            metrics = []
            for name in ("queue.size", "cpu.time"):
                pts = []
                for j in range(4):
                    pid = "p-%d-%d" % (i, j) if name == "queue.size" else "c-%d-%d" % (i, j)
                    pts.append({"asInt": str(j), "timeUnixNano": "1544712660000000000",
                                "attributes": [s_attr("id", pid)]})
                    dest = ("one" if pid == "p-1-3" else
                            "queue" if name == "queue.size" else "rest")
                    want[dest][pid] += 1
                metrics.append({"name": name, "gauge": {"dataPoints": pts}})
            post(port, "metrics", {"resourceMetrics": [{"resource": {}, "scopeMetrics": [
                {"scope": {"name": "m"}, "metrics": metrics}]}]})
        wait_count("all routed points",
                   lambda: sum((points_of(sink.docs(t, "metrics")) for t in want), []), 24)
        time.sleep(0.3)
        for t in want:
            got = points_of(sink.docs(t, "metrics"))
            expect_exactly("metric/datapoint context: metrics/%s" % t, names(got), want[t])
            check(all(m == ("queue.size" if pid.startswith("p") else "cpu.time")
                      for pid, m in got), "metrics/%s: points kept their metric" % t)
        stop(r)
    sink.stop()


ROUTING_FIRST = r'''
routing:
  table:
    - condition: attributes["tenant"] != nil
      pipelines: [traces/acme]
    - condition: attributes["tenant"] == "ecorp"
      pipelines: [traces/ecorp]
'''


def case_first_match(args):
    sink = Sink()
    port, mp = free_port(), free_port()
    pipes, exps = tenant_pipelines()
    del pipes["traces/other"]
    del exps["otlphttp/other"]
    with start(args, router_config(port, sink, mp, ROUTING_FIRST, pipes, exps)) as r:
        want = collections.Counter()
        for i in range(10):
            spans_e = [span("fm-e-%d-%d" % (i, j), sid(j)) for j in range(3)]
            spans_a = [span("fm-a-%d-%d" % (i, j), sid(j)) for j in range(2)]
            spans_n = [span("fm-n-%d-%d" % (i, j), sid(j)) for j in range(2)]
            want.update(s["name"] for s in spans_e + spans_a)
            post(port, "traces", {"resourceSpans": [
                resource_spans({"tenant": "ecorp"}, spans_e),
                resource_spans({"tenant": "acme"}, spans_a),
                resource_spans({"service.name": "no-tenant"}, spans_n)]})
        wait_count("spans", lambda: spans_of(sink.docs("acme", "traces")), sum(want.values()))
        wait_for("dropped counter", lambda: metric(
            mp, "switchyard_connector_routing_dropped_items_total") == 20, ARRIVAL_TIMEOUT)
        time.sleep(0.3)
        expect_exactly("first match: traces/acme (the first route) got every tenant",
                       names(spans_of(sink.docs("acme", "traces"))), want)
        check(spans_of(sink.docs("ecorp", "traces")) == [],
              "first match: traces/ecorp (second route, also matching) got nothing")
        check(metric(mp, "switchyard_connector_routing_dropped_items_total") == 20,
              "no default_pipelines: the 20 spans without a tenant dropped and counted")
        stop(r)
    sink.stop()


ROUTING_ERRORS = r'''
routing:
  error_mode: %s
  default_pipelines: [traces/other]
  table:
    - condition: 10 / attributes["n"] > 1
      pipelines: [traces/acme]
    - condition: attributes["n"] != nil
      pipelines: [traces/ecorp]
'''


def case_error_mode(args):
    """A condition failing at run time (10 / 0): under ignore and silent the
    resource goes to default_pipelines (not on to the next route); under propagate
    the whole batch is refused and counted."""
    for mode in ("ignore", "silent", "propagate"):
        sink = Sink()
        port, mp = free_port(), free_port()
        pipes, exps = tenant_pipelines()
        with start(args, router_config(port, sink, mp, ROUTING_ERRORS % mode, pipes,
                                       exps)) as r:
            post(port, "traces", {"resourceSpans": [
                resource_spans({"n": 0}, [span("em-zero-%d" % j, sid(j)) for j in range(3)]),
                resource_spans({"n": 5}, [span("em-five-%d" % j, sid(j)) for j in range(2)])]})
            post(port, "traces", {"resourceSpans": [
                resource_spans({"n": 2}, [span("em-two-%d" % j, sid(j)) for j in range(4)])]})
            if mode == "propagate":
                wait_for("the refusal counted", lambda: metric(
                    mp, "switchyard_connector_failed_spans_total") == 5, ARRIVAL_TIMEOUT)
                wait_count("spans", lambda: spans_of(sink.docs("acme", "traces")), 4)
            else:
                wait_count("spans", lambda: sum((spans_of(sink.docs(t, "traces"))
                                                 for t in ("acme", "other")), []), 9)
            time.sleep(0.3)
            acme = names(spans_of(sink.docs("acme", "traces")))
            other = names(spans_of(sink.docs("other", "traces")))
            ecorp = names(spans_of(sink.docs("ecorp", "traces")))
            want_acme = collections.Counter(["em-two-%d" % j for j in range(4)])
            if mode == "propagate":
                expect_exactly("propagate: only the batch without a failure arrived", acme,
                               want_acme)
                check(not other and not ecorp, "propagate: nothing of the refused batch went on")
                check(metric(mp, "switchyard_connector_failed_spans_total") == 5,
                      "propagate: the host counted the 5 refused spans")
            else:
                want_acme.update("em-five-%d" % j for j in range(2))
                expect_exactly("%s: routes matched" % mode, acme, want_acme)
                expect_exactly("%s: the failed resource went to default_pipelines" % mode, other,
                               collections.Counter("em-zero-%d" % j for j in range(3)))
                check(not ecorp, "%s: the failed resource was not tried on the next route" %
                      mode)
            check(metric(mp, "switchyard_connector_routing_condition_errors_total") == 1,
                  "%s: one condition error counted" % mode)
            logged = "condition(s) of this batch failed" in r.output()
            if mode == "ignore":
                check(logged, "ignore: the failure was logged")
            elif mode == "silent":
                check(not logged, "silent: the failure was not logged")
            else:
                check("error_mode: propagate" in r.output(), "propagate: the refusal was logged")
            stop(r)
        sink.stop()


def case_config(args):
    sink = Sink()
    port, mp = free_port(), free_port()
    pipes, exps = tenant_pipelines()
    bad = ROUTING_RESOURCE.replace("pipelines: [traces/ecorp]", "pipelines: [traces/nowhere]")
    text = router_config(port, sink, mp, bad, pipes, exps)
    r = Router(args.bin, [args.plugin_dir], text, wait=False)
    try:
        ok = r.wait_ready(timeout=10)
        rc = r.proc.wait(timeout=10) if not ok else None
        out = r.output()
        check(not ok and rc not in (0, None), "startup fails for a pipeline it does not feed "
              "(exit %s)" % rc)
        check("table[1].pipelines[0]" in out and '"traces/nowhere"' in out and
              "not found" in out and "traces/acme" in out,
              "the error names the route, the pipeline and the pipelines fed")
        m = re.search(r"config\.yaml:(\d+):(\d+): table\[1\]\.pipelines\[0\]", out)
        if not check(m is not None, "the error points at the pipeline's file:line:col"):
            print(out[-3000:], file=sys.stderr)
    finally:
        r.cleanup()
    # default_pipelines naming a pipeline of another signal.
    bad = ROUTING_RESOURCE.replace("default_pipelines: [traces/other]",
                                   "default_pipelines: [logs/other]")
    r = Router(args.bin, [args.plugin_dir], router_config(port, sink, mp, bad, pipes, exps),
               wait=False)
    try:
        ok = r.wait_ready(timeout=10)
        out = r.output()
        check(not ok and "default_pipelines[0]" in out and '"logs/other"' in out,
              "default_pipelines of another signal refused")
    finally:
        r.cleanup()
    # `validate`: errors of the table with file:line:col, before anything starts.
    cases = [
        (ROUTING_RESOURCE.replace('attributes["tenant"] == "acme"', 'attributes["tenant"] =='),
         r"config\.yaml:\d+:\d+: .*table\[0\]: col \d+:"),
        (ROUTING_RESOURCE.replace("context: resource", "context: request"),
         r"table\[1\]: the request context is not supported"),
        (ROUTING_RESOURCE.replace("context: resource", "context: scope"),
         r"table\[1\]: invalid context: scope"),
        (ROUTING_RESOURCE.replace("context: resource", "action: copy"),
         r"table\[1\]: unknown key 'action'"),
        (ROUTING_RESOURCE.replace("route() where", "drop() where"),
         r"table\[0\]: col 1: a routing statement must be route\(\)"),
        ("routing:\n  table: []\n", r"invalid routing table: the routing table is empty"),
        (ROUTING_RESOURCE.replace("      pipelines: [traces/acme]\n", ""),
         r"table\[0\]: invalid route: no pipelines defined"),
        (ROUTING_RESOURCE + "  match_once: true\n", r"match_once"),
    ]
    for text, pattern in cases:
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "config.yaml")
            with open(path, "w") as f:
                f.write(router_config(port, sink, mp, text, pipes, exps))
            out = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir",
                                  args.plugin_dir], capture_output=True, text=True, timeout=30)
            msg = out.stdout + out.stderr
            check(out.returncode != 0 and re.search(pattern, msg),
                  "validate refuses: %s (exit %d)" % (pattern, out.returncode))
            if out.returncode == 0 or not re.search(pattern, msg):
                print(msg[-1500:], file=sys.stderr)
    sink.stop()


ROUTING_JS = r'''
routing/traces:
  default_pipelines: [traces/other]
  table:
    - context: span
      condition: attributes["audit"] == true
      pipelines: [traces/audit]
    - statement: route() where attributes["tenant"] == "acme"
      pipelines: [traces/acme]
    - condition: attributes["tenant"] == "ecorp"
      pipelines: [traces/ecorp]
routing/logs:
  default_pipelines: [logs/rest]
  table:
    - context: log
      condition: severity_number >= SEVERITY_NUMBER_ERROR
      pipelines: [logs/errors]
'''


def case_otel_js(args):
    if not args.node_dir or not args.src_dir:
        check(False, "otel_js needs --node-dir and --src-dir")
        return
    if not os.path.isdir(os.path.join(args.node_dir, "node_modules")):
        check(False, "no node_modules in %s: the setup test (npm ci) did not run or failed" %
              args.node_dir)
        return
    sink = Sink()
    port, mp = free_port(), free_port()
    pipes = {"traces/in": (["otlp"], ["routing/traces"]),
             "traces/audit": (["routing/traces"], ["otlphttp/audit"]),
             "traces/acme": (["routing/traces"], ["otlphttp/acme"]),
             "traces/ecorp": (["routing/traces"], ["otlphttp/ecorp"]),
             "traces/other": (["routing/traces"], ["otlphttp/other"]),
             "logs/in": (["otlp"], ["routing/logs"]),
             "logs/errors": (["routing/logs"], ["otlphttp/errors"]),
             "logs/rest": (["routing/logs"], ["otlphttp/rest"])}
    exps = {"otlphttp/audit": ("audit", "traces"), "otlphttp/acme": ("acme", "traces"),
            "otlphttp/ecorp": ("ecorp", "traces"), "otlphttp/other": ("other", "traces"),
            "otlphttp/errors": ("errors", "logs"), "otlphttp/rest": ("rest", "logs")}
    with start(args, router_config(port, sink, mp, ROUTING_JS, pipes, exps)) as r:
        with tempfile.TemporaryDirectory() as d:
            manifest_path = os.path.join(d, "manifest.json")
            # ES modules resolve packages from the script's own directory: run a copy
            # of it placed next to node_modules in the build tree.
            script = os.path.join(args.node_dir, "send_routing.mjs")
            with open(os.path.join(args.src_dir, "send_routing.mjs"), "rb") as f:
                data = f.read()
            with open(script + ".tmp", "wb") as f:
                f.write(data)
            os.replace(script + ".tmp", script)
            out = subprocess.run(["node", script, "--endpoint", "http://127.0.0.1:%d" % port,
                                  "--prefix", "js", "--manifest", manifest_path],
                                 cwd=args.node_dir, capture_output=True, text=True, timeout=90,
                                 stdin=subprocess.DEVNULL)
            sys.stdout.write(out.stdout)
            sys.stderr.write(out.stderr[-3000:])
            if not check(out.returncode == 0, "send_routing.mjs exited 0 (%d)" % out.returncode):
                return
            with open(manifest_path) as f:
                manifest = json.load(f)
        want = {k: collections.Counter() for k in ("audit", "acme", "ecorp", "other")}
        for s in manifest["spans"]:
            dest = ("audit" if s["audit"] else s["tenant"] if s["tenant"] in ("acme", "ecorp")
                    else "other")
            want[dest][s["name"]] += 1
        wlogs = {"errors": collections.Counter(), "rest": collections.Counter()}
        for rec in manifest["logs"]:
            wlogs["errors" if rec["severityNumber"] >= 17 else "rest"][rec["body"]] += 1
        wait_count("JS spans", lambda: sum((spans_of(sink.docs(t, "traces")) for t in want), []),
                   len(manifest["spans"]))
        wait_count("JS logs", lambda: sum((logs_of(sink.docs(t, "logs")) for t in wlogs), []),
                   len(manifest["logs"]))
        time.sleep(0.3)
        for t in want:
            got = spans_of(sink.docs(t, "traces"))
            expect_exactly("OpenTelemetry JS: traces/%s" % t, names(got), want[t])
            check(all(ra.get("service.name") == "svc-%s" % name.split("-")[1] and
                      ra.get("tenant", "none") == name.split("-")[1] and sc == "routing-test"
                      for name, ra, sc in got),
                  "OpenTelemetry JS: traces/%s spans keep the SDK's resource and scope" % t)
        for t in wlogs:
            got = logs_of(sink.docs(t, "logs"))
            expect_exactly("OpenTelemetry JS: logs/%s" % t, names(got), wlogs[t])
        stop(r)
    sink.stop()


def read_counts(path, n):
    with open(path, "rb") as f:
        data = f.read()
    return data[:n]


def case_backpressure(args):
    """The second destination (odd spans) is gated shut: every batch's even piece is
    taken and its odd piece refused, so the connector keeps the odd piece and hands
    the batch back (SY_EAGAIN); when the host offers it again only that piece may
    go. A span sent twice or lost shows in the sinks' per-span counts."""
    if not args.kit_dir:
        check(False, "backpressure needs --kit-dir")
        return
    with tempfile.TemporaryDirectory() as d:
        gate = os.path.join(d, "gate")
        spans, batches = 16, 2000
        total = spans * batches
        mp = free_port()
        paths = {k: (os.path.join(d, "report_" + k), os.path.join(d, "counts_" + k))
                 for k in ("even", "odd")}
        text = "\n".join([
            "receivers:",
            "  testgen: {count: %d, spans: %d}" % (batches, spans),
            "exporters:",
            "  testsink/even: {verify: true, max_seq: %d, report_path: %s, counts_path: %s}" %
            (total, *paths["even"]),
            "  testsink/odd: {verify: true, max_seq: %d, delay: 1ms, gate_path: %s, "
            "report_path: %s, counts_path: %s}" % (total, gate, *paths["odd"]),
            "connectors:",
            "  routing:",
            "    table:",
            "      - context: span",
            "        condition: start_time_unix_nano / 2 * 2 == start_time_unix_nano",
            "        pipelines: [traces/even]",
            "    default_pipelines: [traces/odd]",
            "service:",
            "  telemetry:",
            "    metrics:",
            "      address: 127.0.0.1:%d" % mp,
            "  pipelines:",
            "    traces/in: {receivers: [testgen], exporters: [routing]}",
            "    traces/even: {receivers: [routing], exporters: [testsink/even]}",
            "    traces/odd: {receivers: [routing], exporters: [testsink/odd]}",
        ]) + "\n"
        with Router(args.bin, [args.plugin_dir, args.kit_dir], text) as r:
            deferred = wait_for("the connector to be pushed back", lambda: metric(
                mp, "switchyard_connector_routing_deferred_batches_total"), ARRIVAL_TIMEOUT)
            time.sleep(0.5)
            check(deferred and deferred > 0,
                  "back-pressure: the connector handed batches back while the gate was shut "
                  "(deferred_batches %s)" % deferred)
            with open(gate, "w"):
                pass
            # testgen stops generating at shutdown: wait until all its spans went out.
            sent = wait_count("the sinks to take every span", lambda: [0] * int(metric(
                mp, "switchyard_exporter_sent_spans_total") or 0), total, timeout=90)
            check(len(sent) == total, "back-pressure: the sinks took %d spans of %d" %
                  (len(sent), total))
            rc = r.stop(timeout=60)
            check(rc == 0, "router exited %s after the gate opened" % rc)
            if rc != 0:
                r.dump(40)
            out = r.output()
        ce = read_counts(paths["even"][1], total)
        co = read_counts(paths["odd"][1], total)
        # testgen's span s starts at an even base + s: even s -> traces/even.
        bad_even = [s for s in range(total) if ce[s] != (1 if s % 2 == 0 else 0)]
        bad_odd = [s for s in range(total) if co[s] != (0 if s % 2 == 0 else 1)]
        check(len(ce) == total and not bad_even,
              "back-pressure: traces/even got every even span once, no odd one (bad: %s)" %
              bad_even[:5])
        check(len(co) == total and not bad_odd,
              "back-pressure: the gated traces/odd got every odd span once, no even one "
              "(bad: %s)" % bad_odd[:5])
        check("lost" not in out, "back-pressure: nothing reported lost")


CASES = {"forward": case_forward, "resource": case_resource, "span": case_span,
         "logs": case_logs, "metrics": case_metrics, "first_match": case_first_match, "error_mode": case_error_mode,
         "config": case_config, "otel_js": case_otel_js, "backpressure": case_backpressure}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", required=True, choices=sorted(CASES))
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--kit-dir")
    ap.add_argument("--node-dir")
    ap.add_argument("--src-dir")
    args = ap.parse_args()
    CASES[args.case](args)
    if check.failures:
        print("%d check(s) failed" % len(check.failures), file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
