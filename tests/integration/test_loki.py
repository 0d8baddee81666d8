#!/usr/bin/env python3
"""The loki exporter through the real binary: otlp receiver (HTTP JSON) -> loki
exporter -> a Loki push-API test server (tests/integration/node_loki/
loki_server.mjs) that decodes both bodies with one code path: snappy protobuf
(protobufjs over the project's proto/loki/push.proto, snappyjs) and JSON (gzip or
not). A real Loki client, winston-loki, sends the same records to the same server.

  test_loki.py setup --src-dir tests/integration/node_loki --node-dir BUILD/loki-node
      npm ci of the pinned packages into the build tree (test_otel_js.setup).

  test_loki.py run --case exporter|winston|errors --bin ... --plugin-dir ...
                   --src-dir ... --node-dir ... --proto-dir proto
      exporter: every stream's labels and every line, for both encodings: default
        labels, the loki.resource.labels / loki.attribute.labels hints (comma lists,
        arrays, paths into maps, names normalized), level from the severity, the
        json / logfmt / raw formats, entries sorted by time within a stream, the
        loki.tenant hint (one push per tenant, X-Scope-OrgID), tenant_id, headers,
        a record of an unknown format left out and counted.
      winston: winston-loki and switchyard send the same records (protobuf and
        JSON); the decoded pushes are equal, and the wire shapes agree (labels
        text, nanosecond timestamps, entries).
      errors: 503 retried until accepted, 400 not retried (counted, logged with
        Loki's answer), 429 with Retry-After retried.
      config: configuration errors refused by `validate`, naming the key.

Every wait is bounded; python3 standard library only.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_otel_js  # noqa: E402
from harness import Checks, Router, free_port, http, post_json, wait_for  # noqa: E402

TIMEOUT = 20.0
TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class LokiServer:
    """The node push-API server, on a free loopback port."""

    def __init__(self, args):
        self.proc = subprocess.Popen(["node", os.path.join(args.node_dir, "loki_server.mjs"),
                                      "--proto-dir", os.path.abspath(args.proto_dir)],
                                     cwd=args.node_dir, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        line = ""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("LISTENING ") or not line:
                break
        if not line.startswith("LISTENING "):
            self.proc.kill()
            fail("loki_server.mjs did not start: %r" % line)
        self.port = int(line.split()[1])
        self.base = "http://127.0.0.1:%d" % self.port
        self.url = self.base + "/loki/api/v1/push"

    def pushes(self):
        st, _, body = http("GET", self.base + "/pushes")
        if st != 200:
            raise ValueError("GET /pushes: %d" % st)
        return json.loads(body)

    def control(self, statuses, body=""):
        st, _, _ = http("POST", self.base + "/control",
                        json.dumps({"statuses": statuses, "body": body}).encode(),
                        {"Content-Type": "application/json"})
        if st != 200:
            raise ValueError("POST /control: %d" % st)

    def close(self):
        try:
            http("POST", self.base + "/quit", b"{}", timeout=2.0)
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


# --- OTLP/JSON pieces ---------------------------------------------------------


def s(v):
    return {"stringValue": v}


def attr(k, v):
    if isinstance(v, bool):
        val = {"boolValue": v}
    elif isinstance(v, int):
        val = {"intValue": str(v)}
    elif isinstance(v, float):
        val = {"doubleValue": v}
    elif isinstance(v, dict):
        val = v
    else:
        val = s(v)
    return {"key": k, "value": val}


def kvlist(**kw):
    return {"kvlistValue": {"values": [attr(k, v) for k, v in kw.items()]}}


def record(t, body, attrs=(), sev=0, sev_text=None, observed=None, ids=False):
    r = {"body": body, "attributes": list(attrs)}
    if t:
        r["timeUnixNano"] = str(t)
    if observed:
        r["observedTimeUnixNano"] = str(observed)
    if sev:
        r["severityNumber"] = sev
    if sev_text:
        r["severityText"] = sev_text
    if ids:
        r["traceId"], r["spanId"] = TRACE, SPAN
    return r


T0 = 1700000000000000000
HINT_A = "loki.attribute.labels"


def main_request():
    res_a = [attr("service.name", "api"), attr("service.namespace", "shop"),
             attr("service.instance.id", "i-1"), attr("host.name", "h1"),
             attr("k8s.pod.name", "p1"), attr("loki.resource.labels", "host.name, k8s.pod.name")]
    recs_a = [
        record(T0 + 160, s('severity=low user=bob msg="hi there"'), [attr("http.method", "GET"), attr(HINT_A, "http.method"),
                                                         attr("loki.format", "logfmt")], sev=9, sev_text="Info"),
        record(T0 + 200, s('hello <x> & "q"'), [attr("http.method", "GET"), attr("n", 3),
                                                 attr("raw", {"bytesValue": "AQID"}),
                                                 attr(HINT_A, "http.method")],
               sev=9, sev_text="Info", ids=True),
        record(T0 + 100, s("disk full"), [attr("http.method", "GET"), attr("level", "warn-custom"),
                                          attr(HINT_A, "http.method")], sev=17),
        record(T0 + 150, kvlist(z=1.5, a=True), [attr("http.method", "GET"), attr(HINT_A, "http.method"),
                                                  attr("loki.format", "logfmt")], sev=9),
        record(0, s("raw text"), [attr("loki.format", "raw"), attr("1st.attr", "x"),
                                  attr("ctx", kvlist(user=kvlist(id="u7"))),
                                  attr(HINT_A, {"arrayValue": {"values": [s("1st.attr"), s("ctx.user.id")]}})],
               observed=T0 + 300),
    ]
    res_b = [attr("service.namespace", "ns-only"), attr("tenant.name", "team-b"),
             attr("loki.tenant", "tenant.name"), attr("loki.format", "raw")]
    recs_b = [
        record(T0 + 500, {"intValue": "42"}, sev=13),
        record(T0 + 400, kvlist(b={"arrayValue": {"values": [{"intValue": "1"}, s("x")]}}, a=kvlist(c="d")),
               sev=13),
        record(T0 + 450, s("dropped"), [attr("loki.format", "yaml")], sev=13),
    ]
    # The record-level loki.format of the last one loses to the resource's (raw):
    # an unknown format is tested on its own resource.
    res_c = [attr("service.name", "bad")]
    recs_c = [record(T0 + 600, s("left out"), [attr("loki.format", "yaml")])]
    return {"resourceLogs": [
        {"resource": {"attributes": res_a}, "scopeLogs": [{"scope": {"name": "lib", "version": "1.2"},
                                                           "logRecords": recs_a}]},
        {"resource": {"attributes": res_b}, "scopeLogs": [{"scope": {}, "logRecords": recs_b}]},
        {"resource": {"attributes": res_c}, "scopeLogs": [{"scope": {}, "logRecords": recs_c}]},
    ]}


RES_JSON = '"resources":{"service.instance.id":"i-1","service.name":"api","service.namespace":"shop"}'
SCOPE_JSON = '"instrumentation_scope":{"name":"lib","version":"1.2"}'
BASE_A = {"exporter": "OTLP", "host_name": "h1", "instance": "i-1", "job": "shop/api", "k8s_pod_name": "p1"}
EXPECTED = {
    # tenant "" (or tenant_id): resource A
    "": [
        (dict(BASE_A, http_method="GET", level="INFO"), [
            (T0 + 150, "z=1.5 a=true resource_service.name=api resource_service.namespace=shop "
                       "resource_service.instance.id=i-1 instrumentation_scope_name=lib "
                       "instrumentation_scope_version=1.2"),
            (T0 + 160, 'severity=Info user=bob msg="hi there" resource_service.name=api '
                       'resource_service.namespace=shop resource_service.instance.id=i-1 '
                       'instrumentation_scope_name=lib instrumentation_scope_version=1.2'),
            (T0 + 200, '{"body":"hello \\u003cx\\u003e \\u0026 \\"q\\"","traceid":"%s","spanid":"%s",'
                       '"severity":"Info","attributes":{"n":3,"raw":"AQID"},%s,%s}' % (TRACE, SPAN, RES_JSON, SCOPE_JSON)),
        ]),
        (dict(BASE_A, http_method="GET", level="warn-custom"), [
            (T0 + 100, '{"body":"disk full",%s,%s}' % (RES_JSON, SCOPE_JSON)),
        ]),
        (dict(BASE_A, key_1st_attr="x", ctx_user_id="u7"), [
            (T0 + 300, "raw text"),
        ]),
    ],
    "team-b": [
        ({"exporter": "OTLP", "level": "WARN"}, [
            (T0 + 400, '{"a":{"c":"d"},"b":[1,"x"]}'),
            (T0 + 450, "dropped"),
            (T0 + 500, "42"),
        ]),
    ],
}


LOGFMT_TAIL = ("resource_service.name=api resource_service.namespace=shop resource_service.instance.id=i-1 "
               "instrumentation_scope_name=lib instrumentation_scope_version=1.2")
EXPECTED_BARE = [
    ({"host_name": "h1", "http_method": "GET", "k8s_pod_name": "p1"}, [
        (T0 + 100, '{"body":"disk full","attributes":{"level":"warn-custom"},%s,%s}' % (RES_JSON, SCOPE_JSON)),
        EXPECTED[""][0][1][0],
        EXPECTED[""][0][1][1],
        EXPECTED[""][0][1][2],
    ]),
    ({"host_name": "h1", "k8s_pod_name": "p1", "key_1st_attr": "x", "ctx_user_id": "u7"}, [
        (T0 + 300, "raw text"),
    ]),
]


def label_text(labels):
    """Go's model.LabelSet.String() of a label map (what our protobuf labels must be)."""
    return "{" + ", ".join('%s=%s' % (k, json.dumps(v)) for k, v in sorted(labels.items())) + "}"


def check_streams(check, tag, push, want, proto):
    got = push["streams"]
    check(len(got) == len(want), "%s: %d streams (got %d)" % (tag, len(want), len(got)))
    by_labels = {json.dumps(st["labels"], sort_keys=True): st for st in got}
    for labels, entries in want:
        key = json.dumps(labels, sort_keys=True)
        st = by_labels.get(key)
        if not check(st is not None, "%s: stream %s present (got %s)" % (tag, key, list(by_labels))):
            continue
        if proto:
            check(st["labelsText"] == label_text(labels),
                  "%s: labels text %r == %r" % (tag, st["labelsText"], label_text(labels)))
        ge = [(int(e["ts"]), e["line"]) for e in st["entries"]]
        check(ge == entries, "%s: stream %s entries, sorted by time\n  got  %r\n  want %r" %
              (tag, key, ge, entries))


def router_config(oport, mport, exporters, pipelines):
    """`otlp` (HTTP on oport) into the given exporters and pipelines (YAML text
    indented as under `exporters:` and `pipelines:`), own metrics on mport."""
    return f"""
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{oport}
exporters:
{exporters}service:
  telemetry:
    metrics:
      address: 127.0.0.1:{mport}
  pipelines:
{pipelines}"""


def metric_value(text, name):
    total = None
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total = (total or 0) + float(line.rsplit(" ", 1)[1])
    return total


def case_exporter(args, check):
    srv = LokiServer(args)
    oport, mport = free_port(), free_port()
    cfg = router_config(oport, mport, f"""\
  loki/proto:
    endpoint: {srv.url}
    headers:
      X-Scope-OrgID: hdr-tenant
  loki/json:
    endpoint: {srv.url}
    encoding: json
    compression: gzip
    tenant_id: acme
    headers:
      X-Test: yes-json
      x-scope-orgid: overridden
  loki/bare:
    endpoint: {srv.url}
    headers:
      X-Bare: "1"
    default_labels_enabled: {{exporter: false, job: false, instance: false, level: false}}
""", """\
    logs:
      receivers: [otlp]
      exporters: [loki/proto, loki/json]
    logs/bare:
      receivers: [otlp]
      exporters: [loki/bare]
""")
    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            st, _, _ = post_json("http://127.0.0.1:%d/v1/logs" % oport, main_request())
            check(st == 200, "otlp receiver accepted the logs (%d)" % st)
            try:
                wait_for("5 pushes", lambda: len(srv.pushes()) >= 5, TIMEOUT)
            except AssertionError:
                r.dump(40, "router: ")
                raise
            time.sleep(0.3)
            pushes = srv.pushes()
            bare = [p for p in pushes if p["headers"].get("x-bare") == "1"]
            pushes = [p for p in pushes if p["headers"].get("x-bare") != "1"]
            # No default label: team-b's records have no label at all and are left out
            # (their push is never made); the rest lose exporter/job/instance/level.
            check(len(bare) == 1 and bare[0]["tenant"] is None and bare[0]["encoding"] == "protobuf",
                  "default_labels_enabled all false: one push (tenant '') (%d)" % len(bare))
            if bare:
                check_streams(check, "no default labels", bare[0], EXPECTED_BARE, True)
            check(len(pushes) == 4, "one push per tenant per exporter: 4 (got %d)" % len(pushes))
            for p in pushes:
                check(p["error"] is None and p["status"] == 204, "push %d decoded (%s)" % (p["n"], p["error"]))
            proto = [p for p in pushes if p["encoding"] == "protobuf"]
            js = [p for p in pushes if p["encoding"] == "json"]
            check(len(proto) == 2 and len(js) == 2, "2 protobuf and 2 json pushes")
            for p in proto:
                check(p["contentType"] == "application/x-protobuf" and p["contentEncoding"] == "snappy",
                      "protobuf: Content-Type application/x-protobuf, Content-Encoding snappy")
                check(p["headers"].get("x-test") is None, "protobuf: no X-Test header")
            for p in js:
                check(p["contentType"] == "application/json" and p["contentEncoding"] == "gzip",
                      "json: Content-Type application/json, Content-Encoding gzip")
                check(p["headers"].get("x-test") == "yes-json", "json: configured header X-Test sent")
                check(p["userAgent"].startswith("Switchyard/"), "json: User-Agent Switchyard")
            tenants_p = sorted(str(p["tenant"]) for p in proto)
            tenants_j = sorted(str(p["tenant"]) for p in js)
            check(tenants_p == ["hdr-tenant", "team-b"],
                  "protobuf: X-Scope-OrgID from headers, replaced by team-b from the loki.tenant hint "
                  "(one header each: %r)" % tenants_p)
            check(tenants_j == ["acme", "team-b"],
                  "json: tenant_id acme wins over headers, the hint's team-b over both (%r)" % tenants_j)
            for p in pushes:
                tenant = "team-b" if p["tenant"] == "team-b" else ""
                check_streams(check, "%s tenant %r" % (p["encoding"], p["tenant"]), p, EXPECTED[tenant],
                              p["encoding"] == "protobuf")
            _, _, body = http("GET", "http://127.0.0.1:%d/metrics" % mport)
            text = body.decode()
            check(metric_value(text, "switchyard_exporter_loki_dropped_log_records_total") == 6,
                  "left out and counted: the record of format yaml once per exporter, team-b's 3 "
                  "records without labels (%s)" %
                  metric_value(text, "switchyard_exporter_loki_dropped_log_records_total"))
            check(metric_value(text, "switchyard_exporter_loki_tenant_splits_total") == 3,
                  "one tenant split per exporter")
            check(metric_value(text, "switchyard_exporter_sent_log_records_total") == 9 + 9 + 6,
                  "sent log records: the records of every request made (%s)" %
                  metric_value(text, "switchyard_exporter_sent_log_records_total"))
            check(metric_value(text, "switchyard_exporter_send_failed_log_records_total") == 3,
                  "failed: team-b's request of loki/bare, nothing in it to send (%s)" %
                  metric_value(text, "switchyard_exporter_send_failed_log_records_total"))
            check(r.stop() == 0, "router exits 0")
            check(any("invalid format yaml. Expected one of: json, logfmt, raw" in ln for ln in r.lines()),
                  "the unknown format is logged")
    finally:
        srv.close()


# --- winston-loki ----------------------------------------------------------------

WINSTON_RECORDS = [
    {"ts_ms": 1700000000123, "line": 'hello <w> "quoted" \u00fcn\u00ef', "labels": {"job": "svc"}, "level": "info"},
    {"ts_ms": 1700000000100, "line": "second", "labels": {"job": "svc"}, "level": "warn"},
    {"ts_ms": 1700000000050, "line": "third", "labels": {"job": "svc"}, "level": "info"},
]


def winston_as_otlp():
    recs = [record(w["ts_ms"] * 1000000, s(w["line"]), [attr("level", w["level"]), attr(HINT_A, "level")])
            for w in WINSTON_RECORDS]
    return {"resourceLogs": [{"resource": {"attributes": [attr("service.name", "svc"),
                                                           attr("loki.format", "raw")]},
                              "scopeLogs": [{"scope": {}, "logRecords": recs}]}]}


def canonical(push):
    """Streams keyed by their label map, entries sorted by time."""
    out = {}
    for st in push["streams"]:
        key = json.dumps(st["labels"], sort_keys=True)
        out.setdefault(key, []).extend((e["ts"], e["line"]) for e in st["entries"])
    return {k: sorted(v) for k, v in out.items()}


def winston_router_config(srv, oport):
    """Two loki exporters (protobuf, json) shaped to send what winston-loki sends."""
    return router_config(oport, free_port(), f"""\
  loki/proto:
    endpoint: {srv.url}
    tenant_id: t-w
    default_labels_enabled: {{exporter: false, level: false}}
  loki/json:
    endpoint: {srv.url}
    encoding: json
    tenant_id: t-w
    default_labels_enabled:
      exporter: false
      level: false
""", """\
    logs/proto:
      receivers: [otlp]
      exporters: [loki/proto]
    logs/json:
      receivers: [otlp]
      exporters: [loki/json]
""")


def case_winston(args, check):
    srv = LokiServer(args)
    recs_path = os.path.join(args.tmp, "records.json")
    with open(recs_path, "w") as f:
        json.dump(WINSTON_RECORDS, f)
    try:
        for mode in ("proto", "json"):
            out = subprocess.run(["node", os.path.join(args.node_dir, "winston_send.mjs"), srv.base, mode,
                                  recs_path], cwd=args.node_dir, capture_output=True, text=True, timeout=60,
                                 env=dict(os.environ, LOKI_TENANT="t-w"))
            check(out.returncode == 0, "winston-loki (%s) sent (%s%s)" % (mode, out.stdout.strip(),
                                                                          out.stderr.strip()[-400:]))
            sent = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {}
            check(sent.get("json") == (mode == "json"),
                  "winston-loki used %s (native snappy loaded for protobuf)" % mode)
        wpushes = srv.pushes()
        # Ports taken only now: a port handed out before the node runs could be
        # bound by another test in the meantime (ctest -j).
        oport = free_port()
        with Router(args.bin, [args.plugin_dir], winston_router_config(srv, oport)) as r:
            st, _, _ = post_json("http://127.0.0.1:%d/v1/logs" % oport, winston_as_otlp())
            check(st == 200, "otlp receiver accepted")
            wait_for("our 2 pushes", lambda: len(srv.pushes()) >= len(wpushes) + 2, TIMEOUT)
            check(r.stop() == 0, "router exits 0")
        ours = srv.pushes()[len(wpushes):]
        for enc in ("protobuf", "json"):
            w = [p for p in wpushes if p["encoding"] == enc]
            o = [p for p in ours if p["encoding"] == enc]
            if not check(len(o) == 1 and len(w) >= 1, "%s: one push of ours, winston's present (%d, %d)"
                         % (enc, len(o), len(w))):
                continue
            for p in w + o:
                check(p["error"] is None and p["status"] == 204,
                      "%s push %d accepted by the server (%s)" % (enc, p["n"], p["error"]))
            wc = {}
            for p in w:
                for k, v in canonical(p).items():
                    wc.setdefault(k, []).extend(v)
            wc = {k: sorted(v) for k, v in wc.items()}
            oc = canonical(o[0])
            check(oc == wc, "%s: switchyard's push decodes to what winston-loki's does\n  ours    %r\n"
                  "  winston %r" % (enc, oc, wc))
            check(all(p["tenant"] == "t-w" for p in w + o), "%s: X-Scope-OrgID t-w on both" % enc)
            check(o[0]["contentType"] == w[0]["contentType"], "%s: same Content-Type (%s)" %
                  (enc, o[0]["contentType"]))
            for p in w + o:
                who = "winston" if p in w else "switchyard"
                for stm in p["streams"]:
                    for e in stm["entries"]:
                        check(re.fullmatch(r"17\d{17}", e["ts"]) is not None,
                              "%s %s: timestamp %s is in nanoseconds (19 digits)" % (enc, who, e["ts"]))
                        check(sorted(e) == ["line", "ts"], "%s %s: entry shape (ts, line)" % (enc, who))
                    if enc == "protobuf":
                        check(re.fullmatch(r'\{[a-z_]+="[^"]*"(, ?[a-z_]+="[^"]*")*\}', stm["labelsText"])
                              is not None, "protobuf %s: labels text %s is a selector" % (who, stm["labelsText"]))
            if enc == "protobuf":
                ts = [[e["ts"] for e in stm["entries"]] for stm in o[0]["streams"]]
                check(all(t == sorted(t, key=int) for t in ts), "protobuf: our entries sorted by time")
    finally:
        srv.close()


# --- errors ---------------------------------------------------------------------


def case_errors(args, check):
    srv = LokiServer(args)
    oport, mport = free_port(), free_port()
    cfg = router_config(oport, mport, f"""\
  loki:
    endpoint: {srv.url}
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 200ms
      randomization_factor: 0
""", """\
    logs:
      receivers: [otlp]
      exporters: [loki]
""")

    def send(line):
        req = {"resourceLogs": [{"resource": {"attributes": [attr("service.name", "err")]},
                                 "scopeLogs": [{"scope": {}, "logRecords": [
                                     record(T0 + 1, s(line), [attr("loki.format", "raw")])]}]}]}
        return post_json("http://127.0.0.1:%d/v1/logs" % oport, req)[0]

    try:
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            # 503 twice, then accepted: retried, the same push three times.
            srv.control([503, 503])
            check(send("after 503") == 200, "503 case: accepted by the receiver")
            wait_for("the push after two 503s", lambda: any(p["status"] == 204 for p in srv.pushes()), TIMEOUT)
            ps = srv.pushes()
            check([p["status"] for p in ps] == [503, 503, 204], "503 retried: statuses %r" % [p["status"] for p in ps])
            check(all(p["streams"] == ps[0]["streams"] for p in ps) and
                  ps[0]["streams"][0]["entries"][0]["line"] == "after 503", "every attempt carries the same push")
            # 429 with Retry-After: 1 -> retried after about a second.
            srv.control([429])
            t0 = time.monotonic()
            check(send("after 429") == 200, "429 case: accepted")
            wait_for("the push after a 429", lambda: len(srv.pushes()) >= 5, TIMEOUT)
            ps = srv.pushes()[3:]
            check([p["status"] for p in ps] == [429, 204], "429 retried: statuses %r" % [p["status"] for p in ps])
            # 400: permanent, not retried, counted, logged with Loki's answer.
            srv.control([400], "entry for stream '{job=\"err\"}' has timestamp too old")
            check(send("refused") == 200, "400 case: accepted by the receiver")
            wait_for("the 400 push", lambda: len(srv.pushes()) >= 6, TIMEOUT)
            time.sleep(1.0)  # several retry intervals: nothing more may come
            ps = srv.pushes()
            check(len(ps) == 6 and ps[5]["status"] == 400, "400 not retried: %d pushes" % len(ps))
            _, _, body = http("GET", "http://127.0.0.1:%d/metrics" % mport)
            text = body.decode()
            check(metric_value(text, "switchyard_exporter_loki_rejected_requests_total") == 1,
                  "the 400 counted in exporter_loki_rejected_requests")
            check(metric_value(text, "switchyard_exporter_send_failed_log_records_total") == 1,
                  "the refused record counted as send_failed (%s)" %
                  metric_value(text, "switchyard_exporter_send_failed_log_records_total"))
            check(metric_value(text, "switchyard_exporter_sent_log_records_total") == 2, "2 records sent")
            check(metric_value(text, "switchyard_exporter_retries_total") == 3, "3 retries (503, 503, 429) (%s)"
                  % metric_value(text, "switchyard_exporter_retries_total"))
            check(r.stop() == 0, "router exits 0")
            logged = [ln for ln in r.lines() if "not retryable" in ln]
            check(len(logged) == 1 and "HTTP 400" in logged[0] and "timestamp too old" in logged[0],
                  "the 400 logged once with Loki's answer (%r)" % logged)
            del t0
    finally:
        srv.close()


def case_config(args, check):
    """Configuration errors, refused by `validate` with the key at fault."""
    cases = [
        ("{}", "endpoint"),
        ("{endpoint: ftp://x}", "'endpoint' must be an http:// or https:// URL"),
        ("{endpoint: http://x/loki/api/v1/push, compression: gzip}",
         "'compression' applies to encoding json only"),
        ("{endpoint: http://x/loki/api/v1/push, encoding: xml}", "encoding"),
        ("{endpoint: http://x/loki/api/v1/push, tenant_id: \"a\\tb\"}", "'tenant_id' must be printable"),
        ("{endpoint: http://x/loki/api/v1/push, default_labels_enabled: {job: maybe}}",
         "default_labels_enabled"),
        ("{endpoint: http://x/loki/api/v1/push, headers: {\"a:b\": c}}", "invalid header"),
    ]
    good = "{endpoint: http://x/loki/api/v1/push, encoding: json, compression: gzip, tenant_id: acme}"
    for body, want in cases + [(good, None)]:
        path = os.path.join(args.tmp, "c.yaml")
        with open(path, "w") as f:
            f.write("receivers:\n  otlp:\n    protocols: {http: {endpoint: 127.0.0.1:0}}\n"
                    "exporters:\n  loki: %s\nservice:\n  pipelines:\n"
                    "    logs: {receivers: [otlp], exporters: [loki]}\n" % body)
        out = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir", args.plugin_dir],
                             capture_output=True, text=True, timeout=30)
        text = (out.stderr + out.stdout).strip()
        if want is None:
            check(out.returncode == 0, "validate accepts %s (%s)" % (body, text))
        else:
            check(out.returncode != 0 and want in text, "validate refuses %s: %s" % (body, text))
    # A loki exporter in a traces pipeline is refused: logs only.
    with open(path, "w") as f:
        f.write("receivers:\n  otlp:\n    protocols: {http: {endpoint: 127.0.0.1:0}}\n"
                "exporters:\n  loki: {endpoint: http://x/}\nservice:\n  pipelines:\n"
                "    traces: {receivers: [otlp], exporters: [loki]}\n")
    out = subprocess.run([args.bin, "validate", "--config", path, "--plugin-dir", args.plugin_dir],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode != 0 and "traces" in out.stderr + out.stdout,
          "loki in a traces pipeline refused: %s" % (out.stderr + out.stdout).strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["setup", "run"])
    ap.add_argument("--bin")
    ap.add_argument("--plugin-dir")
    ap.add_argument("--src-dir", required=True)
    ap.add_argument("--node-dir", required=True)
    ap.add_argument("--proto-dir")
    ap.add_argument("--case", choices=["exporter", "winston", "errors", "config"])
    args = ap.parse_args()
    if args.mode == "setup":
        return test_otel_js.setup(args)
    args.node_dir = os.path.abspath(args.node_dir)
    args.proto_dir = os.path.abspath(args.proto_dir)
    for script in ("loki_server.mjs", "winston_send.mjs"):
        test_otel_js.copy_if_changed(os.path.join(args.src_dir, script), os.path.join(args.node_dir, script))
    args.tmp = tempfile.mkdtemp(prefix="sy-loki-")
    check = Checks()
    try:
        globals()["case_" + args.case](args, check)
    finally:
        shutil.rmtree(args.tmp, ignore_errors=True)
    if check.failures:
        print("%d checks failed" % len(check.failures), file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
