#!/usr/bin/env python3
"""integration.attributes: the `attributes` and `resource` processors through the
real binary and their .so files.

Two routers get the same OTLP/JSON requests: one with otlp -> attributes/<signal>
-> resource -> file (json), one with otlp -> file only (the baseline). Each
output record is compared with the baseline's: the attributes the actions name
have the values computed here (hash = hashlib.sha256 of the collector's bytes),
and everything else is equal to the baseline, field by field. Covers every
action, include/exclude (services, span_names, log_severity_texts, metric_names,
attributes), traces, logs and metrics, and config errors for bad actions.

    test_attributes.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
"""
import argparse
import copy
import hashlib
import json
import os
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, Router, free_port, json_span, post_json  # noqa: E402

check = Checks()
failures = check.failures

ACTIONS = r"""
      - {key: env, value: prod, action: insert}
      - {key: existing, value: new, action: insert}
      - {key: upd, value: 42, action: update}
      - {key: missing_upd, value: x, action: update}
      - {key: ups, value: 1.5, action: upsert}
      - {key: flag, value: true, action: upsert}
      - {key: copy, from_attribute: user, action: insert}
      - {key: nocopy, from_attribute: absent, action: upsert}
      - {key: secret, action: delete}
      - {pattern: '^tmp\.', action: delete}
      - {key: user, action: hash}
      - {key: num, action: hash}
      - {key: dbl, action: hash}
      - {key: bool, action: hash}
      - {key: url, pattern: '^(?P<scheme>\w+)://(?P<host>[^/]+)', action: extract}
      - {key: cnt, action: convert, converted_type: int}
      - {key: ratio, action: convert, converted_type: double}
      - {key: code, action: convert, converted_type: string}
      - {key: bad, action: convert, converted_type: int}
"""


def sv(s):
    return {"stringValue": s}


def iv(i):
    return {"intValue": str(i)}


def dv(d):
    return {"doubleValue": d}


def bv(b):
    return {"boolValue": b}


def attrs(pairs):
    return [{"key": k, "value": v} for k, v in pairs]


def sha(b):
    return hashlib.sha256(b).hexdigest()


IN_ATTRS = [("existing", sv("old")), ("upd", sv("before")), ("secret", sv("s")),
            ("tmp.a", iv(1)), ("tmp.b", sv("x")), ("user", sv("alice")), ("num", iv(7)),
            ("dbl", dv(2.5)), ("bool", bv(True)), ("url", sv("https://example.com/path")),
            ("cnt", sv("12")), ("ratio", sv("0.25")), ("code", iv(404)), ("bad", sv("1x"))]

OUT_ATTRS = [("existing", sv("old")), ("upd", iv(42)), ("user", sv(sha(b"alice"))),
             ("num", sv(sha(struct.pack("<q", 7)))), ("dbl", sv(sha(struct.pack("<d", 2.5)))),
             ("bool", sv(sha(b"\x01"))), ("url", sv("https://example.com/path")),
             ("cnt", iv(12)), ("ratio", dv(0.25)), ("code", sv("404")), ("bad", sv("1x")),
             ("env", sv("prod")), ("ups", dv(1.5)), ("flag", bv(True)), ("copy", sv("alice")),
             ("scheme", sv("https")), ("host", sv("example.com"))]

RESOURCE_ACTIONS = r"""
      - {key: deployment, value: blue, action: upsert}
      - {key: host.secret, action: delete}
      - {key: tenant, action: hash}
"""


def res_in(service):
    return attrs([("service.name", sv(service)), ("host.secret", sv("pw")),
                  ("tenant", sv("acme"))])


def res_out(service):
    return attrs([("service.name", sv(service)), ("tenant", sv(sha(b"acme"))),
                  ("deployment", sv("blue"))])


def config(port, path, with_processors):
    procs = ""
    if with_processors:
        procs = "processors:\n"
        procs += ("  attributes/traces:\n    include: {match_type: regexp, services: ['^check']}\n"
                  "    exclude: {match_type: strict, span_names: [skip-me]}\n    actions:" +
                  ACTIONS)
        procs += ("  attributes/logs:\n    include: {match_type: strict, "
                  "log_severity_texts: [ERROR]}\n    exclude:\n      match_type: strict\n"
                  "      attributes: [{key: keep, value: 1}]\n    actions:" + ACTIONS)
        procs += ("  attributes/metrics:\n    include: {match_type: regexp, "
                  "metric_names: ['^http\\.']}\n    actions:" + ACTIONS)
        procs += "  resource:\n    attributes:" + RESOURCE_ACTIONS
    text = ("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:%d\n"
            % port)
    text += procs
    text += "exporters:\n  file:\n    path: %s\n    flush_interval: 100ms\n" % path
    text += "service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n"
    for sig in ("traces", "logs", "metrics"):
        p = "[attributes/%s, resource]" % sig if with_processors else "[]"
        text += "    %s: {receivers: [otlp], processors: %s, exporters: [file]}\n" % (sig, p)
    return text


def traces_req():
    def span(name, sid):
        return json_span(name, span_id=sid, attributes=attrs(IN_ATTRS))
    return {"resourceSpans": [
        {"resource": {"attributes": res_in("checkout")},
         "scopeSpans": [{"scope": {"name": "s", "version": "1"},
                         "spans": [span("a", "1111111111111111"),
                                   span("skip-me", "2222222222222222")]}]},
        {"resource": {"attributes": res_in("other")},
         "scopeSpans": [{"scope": {"name": "s"}, "spans": [span("b", "3333333333333333")]}]}]}


def logs_req():
    def rec(sev, extra=()):
        return {"timeUnixNano": "1544712660000000000", "severityNumber": 17, "severityText": sev,
                "body": sv("hello " + sev), "attributes": attrs(IN_ATTRS + list(extra)),
                "traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174"}
    return {"resourceLogs": [{"resource": {"attributes": res_in("checkout")},
                              "scopeLogs": [{"scope": {"name": "l"},
                                             "logRecords": [rec("ERROR"), rec("INFO"),
                                                            rec("ERROR", [("keep", iv(1))])]}]}]}


def metrics_req():
    def pt(v):
        return {"asInt": str(v), "timeUnixNano": "1544712661000000000",
                "startTimeUnixNano": "1544712660000000000", "attributes": attrs(IN_ATTRS)}
    return {"resourceMetrics": [{"resource": {"attributes": res_in("checkout")},
                                 "scopeMetrics": [{"scope": {"name": "m"}, "metrics": [
                                     {"name": "http.requests", "unit": "1",
                                      "sum": {"aggregationTemporality": 2, "isMonotonic": True,
                                              "dataPoints": [pt(1), pt(2)]}},
                                     {"name": "db.calls",
                                      "gauge": {"dataPoints": [pt(3)]}}]}]}]}


UNCHANGED_REQ = {"resourceSpans": [{"resource": {"attributes": attrs([("service.name",
                                                                        sv("other"))])},
                                    "scopeSpans": [{"scope": {"name": "u"}, "spans": [
                                        json_span("untouched", attributes=attrs(IN_ATTRS))]}]}]}


def run(args, tmp, with_processors):
    path = os.path.join(tmp, "out-%d.json" % with_processors)
    port = free_port()
    with Router(args.bin, [args.plugin_dir], config(port, path, with_processors)) as r:
        base = "http://127.0.0.1:%d/v1/" % port
        for sig, req in (("traces", traces_req()), ("logs", logs_req()),
                         ("metrics", metrics_req()), ("traces", UNCHANGED_REQ)):
            status, _, _ = post_json(base + sig, req)
            check(status == 200, "post %s answered %s" % (sig, status))
        deadline = time.monotonic() + 10
        lines = []
        while time.monotonic() < deadline:
            if os.path.exists(path):
                with open(path) as f:
                    lines = [json.loads(x) for x in f.read().splitlines() if x.strip()]
                if len(lines) >= 4:
                    break
            time.sleep(0.1)
        check(r.stop() == 0, "router exits cleanly")
        check(len(lines) == 4, "4 records written (got %d)" % len(lines))
        if failures:
            r.dump(40)
        return lines


def by_kind(lines):
    out = {"traces": [], "logs": [], "metrics": []}
    for x in lines:
        k = ("traces" if "resourceSpans" in x else "logs" if "resourceLogs" in x
             else "metrics")
        out[k].append(x)
    return out


def expect_changed(base_rec, changed):
    """The baseline record with the attributes of changed items (a set of paths to
    attribute lists) and every resource replaced by the expected values."""
    rec = copy.deepcopy(base_rec)
    for path in changed:
        node = rec
        for p in path:
            node = node[p]
        node["attributes"] = attrs(OUT_ATTRS)
    return rec


def compare(what, got, want):
    if got == want:
        check(True, what)
        return
    # Narrow the difference down for the report.
    def walk(g, w, where):
        if type(g) is not type(w):
            return "%s: %r != %r" % (where, g, w)
        if isinstance(g, dict):
            for k in sorted(set(g) | set(w)):
                if k not in g or k not in w:
                    return "%s.%s: present in one only" % (where, k)
                d = walk(g[k], w[k], where + "." + k)
                if d:
                    return d
        elif isinstance(g, list):
            if len(g) != len(w):
                return "%s: %d items != %d" % (where, len(g), len(w))
            for i, (a, b) in enumerate(zip(g, w)):
                d = walk(a, b, "%s[%d]" % (where, i))
                if d:
                    return d
        elif g != w:
            return "%s: %r != %r" % (where, g, w)
        return None
    check(False, "%s: %s" % (what, walk(got, want, "")))


def case_actions(args, tmp):
    got = by_kind(run(args, tmp, True))
    base = by_kind(run(args, tmp, False))
    if len(got["traces"]) != 2 or len(base["traces"]) != 2 or not got["logs"] or \
            not got["metrics"] or not base["logs"] or not base["metrics"]:
        check(False, "records of every signal present")
        return
    # Traces: span "a" of checkout changed; "skip-me" excluded; "b" of other not included.
    rs = "resourceSpans"
    want = expect_changed(base["traces"][0], [(rs, 0, "scopeSpans", 0, "spans", 0)])
    for i, svc in ((0, "checkout"), (1, "other")):
        want[rs][i]["resource"]["attributes"] = res_out(svc)
    compare("traces: actions, include services, exclude span_names, resource", got["traces"][0],
            want)
    # The unchanged-by-attributes request: only the resource processor touched it.
    want = copy.deepcopy(base["traces"][1])
    want[rs][0]["resource"]["attributes"] = attrs([("service.name", sv("other")),
                                                   ("deployment", sv("blue"))])
    compare("traces: an item not included is byte-identical", got["traces"][1], want)
    # Logs: the first ERROR record changed; INFO not included; ERROR with keep=1 excluded.
    rl = "resourceLogs"
    want = expect_changed(base["logs"][0], [(rl, 0, "scopeLogs", 0, "logRecords", 0)])
    want[rl][0]["resource"]["attributes"] = res_out("checkout")
    compare("logs: actions, include log_severity_texts, exclude attributes", got["logs"][0],
            want)
    # Metrics: the points of http.requests changed, db.calls not.
    rm = "resourceMetrics"
    sm = (rm, 0, "scopeMetrics", 0, "metrics")
    want = expect_changed(base["metrics"][0], [sm + (0, "sum", "dataPoints", 0),
                                               sm + (0, "sum", "dataPoints", 1)])
    want[rm][0]["resource"]["attributes"] = res_out("checkout")
    compare("metrics: actions, include metric_names", got["metrics"][0], want)


BAD = [
    ("attributes", "actions: [{value: x, action: insert}]",
     'error creating AttrProc due to missing required field ("key" or "pattern") at the 0-th '
     'actions'),
    ("attributes", "actions: [{key: a, value: x, action: insert}, {key: b, action: frob}]",
     'unsupported action "frob" at the 1-th actions'),
    ("attributes", "actions: [{key: a, action: insert}]",
     'missing field "value", "from_attribute" or "from_context" for action "insert" at the '
     '0-th actions'),
    ("attributes", "actions: [{key: a, pattern: b, action: delete}]",
     'Either field "key" or "pattern" can be set. Both were specified at the 0-th actions'),
    ("attributes", "actions: [{key: a, pattern: '(x', action: extract}]",
     'Field "pattern" has invalid pattern'),
    ("attributes", "actions: [{key: a, pattern: 'x', action: extract}]",
     'Field "pattern" contains no named matcher groups at the 0-th actions'),
    ("attributes", "actions: [{key: a, action: convert, converted_type: bool}]",
     'invalid value "bool" in field "converted_type"'),
    ("attributes", "actions: [{key: a, from_context: auth.x, action: insert}]",
     "from_context is not supported"),
    ("attributes", "actions: [{key: a, action: delete}]\ninclude: {match_type: exact, "
     "span_names: [x]}", "unrecognized match_type: 'exact'"),
    ("resource", "attributes: []", 'missing required field "attributes"'),
]


def case_config_errors(args, tmp):
    for i, (kind, body, want) in enumerate(BAD):
        port = free_port()
        text = ("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: "
                "127.0.0.1:%d\nprocessors:\n  %s:\n" % (port, kind))
        text += "".join("    " + line + "\n" for line in body.splitlines())
        text += ("exporters:\n  file:\n    path: %s/bad.json\nservice:\n  telemetry:\n"
                 "    metrics:\n      level: none\n  pipelines:\n    traces: {receivers: [otlp], "
                 "processors: [%s], exporters: [file]}\n" % (tmp, kind))
        with Router(args.bin, [args.plugin_dir], text, wait=False) as r:
            ready = r.wait_ready(timeout=15)
            rc = r.terminate()
            out = r.output()
            check(not ready and rc != 0 and want in out and "config.yaml:" in out,
                  "config %d refused with %r (rc %s): %s" % (i, want, rc, out.strip()[-300:]))


TYPING_ACTIONS = r"""
      - {key: q_str, value: "123", action: insert}
      - {key: q_sq, value: '1.5', action: insert}
      - {key: q_bool_str, value: "true", action: insert}
      - {key: q_int, value: 123, action: insert}
      - {key: q_neg, value: -7, action: insert}
      - {key: q_dbl, value: 1.5, action: insert}
      - {key: q_bool, value: true, action: insert}
      - {key: q_word, value: hello, action: insert}
      - {key: q_list, value: [1, "2", 2.5, false, [x], {k: v}], action: insert}
      - {key: q_map, value: {a: 1, b: "2", c: [y], d: {e: true}}, action: upsert}
      - {key: q_empty, value: [], action: insert}
      - key: q_env
        value: ${env:SY_ATTR_TEST_NUM}
        action: insert
      - key: q_env_str
        value: "${env:SY_ATTR_TEST_NUM}"
        action: insert
"""


def case_typing(args, tmp):
    """value typing as the collector's YAML decoding: quoted scalars are strings,
    plain ones typed by their look, lists and maps become arrays and maps."""
    path = os.path.join(tmp, "typing.json")
    port = free_port()
    text = ("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: "
            "127.0.0.1:%d\nprocessors:\n  attributes:\n    actions:%s"
            "exporters:\n  file:\n    path: %s\n    flush_interval: 100ms\n"
            "service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n"
            "    traces: {receivers: [otlp], processors: [attributes], exporters: [file]}\n"
            % (port, TYPING_ACTIONS, path))
    req = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": [
        json_span("op", attributes=attrs([("keep", sv("k"))]))]}]}]}
    lines = []
    os.environ["SY_ATTR_TEST_NUM"] = "42"  # a bare ${env:...} is read as YAML (an int)
    with Router(args.bin, [args.plugin_dir], text) as r:
        status, _, _ = post_json("http://127.0.0.1:%d/v1/traces" % port, req)
        check(status == 200, "typing: post answered %s" % status)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not lines:
            if os.path.exists(path):
                with open(path) as f:
                    lines = [json.loads(x) for x in f.read().splitlines() if x.strip()]
            time.sleep(0.05)
        check(r.stop() == 0, "typing: router exits cleanly")
    if not lines:
        check(False, "typing: a record written")
        return
    got = lines[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]

    def arr(*v):
        return {"arrayValue": {"values": list(v)}}

    def kvl(*kv):
        return {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kv]}}
    want = attrs([("keep", sv("k")), ("q_str", sv("123")), ("q_sq", sv("1.5")),
                  ("q_bool_str", sv("true")), ("q_int", iv(123)), ("q_neg", iv(-7)),
                  ("q_dbl", dv(1.5)), ("q_bool", bv(True)), ("q_word", sv("hello")),
                  ("q_list", arr(iv(1), sv("2"), dv(2.5), bv(False), arr(sv("x")),
                                 kvl(("k", sv("v"))))),
                  ("q_map", kvl(("a", iv(1)), ("b", sv("2")), ("c", arr(sv("y"))),
                                ("d", kvl(("e", bv(True)))))),
                  ("q_empty", {"arrayValue": {}}), ("q_env", iv(42)), ("q_env_str", sv("42"))])
    compare("typing: quoted scalars strings, plain ones int/double/bool, lists arrays and "
            "maps maps", got, want)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--case", action="append", choices=["actions", "config", "typing"])
    args = ap.parse_args()
    cases = {"actions": case_actions, "config": case_config_errors, "typing": case_typing}
    with tempfile.TemporaryDirectory(prefix="sy-attrs-") as tmp:
        for name in args.case or list(cases):
            before = len(failures)
            try:
                cases[name](args, tmp)
            except AssertionError as e:
                check(False, "%s: %s" % (name, e))
            print("case %s: %s" % (name, "ok" if len(failures) == before else "FAILED"))
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    print("all cases passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
