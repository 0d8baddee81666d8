#!/usr/bin/env python3
"""integration.scrub_chain: the scrubbing chain end to end (issue 7, item 11).

The real OpenTelemetry JS SDK (node/scrub.mjs, OTLP/HTTP protobuf exporters) sends
spans and logs that carry secrets (a Luhn-valid card, a URL password, a bearer
JWT, e-mail addresses) next to values that must survive (Luhn-invalid numbers,
ordinary attributes) to

  router A: otlp (HTTP) -> memory_limiter -> redaction -> attributes -> filter
            -> transform -> batch -> otlp exporter (gRPC)
  router B: otlp/chain (gRPC) -> file/chain (json)          <- the chain's sink
            otlp/base (HTTP)  -> file/base (json)           <- the baseline

and the same script once more straight into router B's otlp/base (the baseline).
Both files are read back and checked field by field against the manifest the
script wrote of what its exporters were handed:

  - the baseline equals the manifest in every field (so the sink itself is exact);
  - in the chain's file no secret is left anywhere (the whole file is searched for
    each secret string), Luhn-invalid numbers are untouched, the span named
    "healthcheck" and the DEBUG log are absent, the attributes processor's and the
    transform's changes are there, the redaction summary attributes are as
    configured, and every other field equals what the SDK sent.

A is stopped first (SIGTERM flushes its batch and exporter), then B; both must
exit 0. Every wait is bounded; Python standard library only.

    test_scrub_chain.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
                        --src-dir tests/integration/node --node-dir build/otel-js-node
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, Router, free_port, wait_for  # noqa: E402

NODE_TIMEOUT = 90.0
SINK_TIMEOUT = 20.0

check = Checks()

# The literals of node/scrub.mjs.
CARD = "4111 1111 1111 1111"
CARD_PLAIN = "4111111111111111"
NOT_CARD = "4111 1111 1111 1112"
MC = "5500 0000 0000 0004"
URL_PW = "https://bob:hunter2@db.example/orders?id=7"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLXNpZw"
EMAIL = "alice@example.com"
SECRETS = [CARD, CARD_PLAIN, MC, "5500000000000004", "hunter2", JWT, "eyJhbGciOiJIUzI1NiJ9",
           EMAIL, "carol@example.org", "123-45-6789", "k-93jf83", "s3cr3t", "10.20.30.40",
           "0xdeadbeef"]

ALLOWED_KEYS = [
    "service.name", "service.version", "test.run", "http.method", "http.url",
    "http.status_code", "http.request.header.authorization", "payment.card", "order.ref",
    "user.email", "user.id", "support.contact", "customer.note", "partner.api_key",
    "debug.dump", "retries", "ratio", "cached", "tags", "long.text", "exception.message",
    "db.system", "db.statement", "db.rows",
]


def config_a(http_port, b_grpc_port):
    return """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%(http)d
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 512
    spike_limit_mib: 128
  redaction:
    allow_all_keys: false
    allowed_keys: [%(allowed)s]
    blocked_key_patterns: [".*api_key.*", ".*password.*"]
    blocked_values: ["\\\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\\\b"]
    allowed_values: [".+@switchyard\\\\.example"]
    detectors: [card, email, bearer, url_password]
    summary: debug
  attributes:
    actions:
      - {key: env, value: prod, action: upsert}
      - {key: debug.dump, action: delete}
      - {key: user.id, action: hash}
  filter:
    error_mode: ignore
    traces:
      span:
        - name == "healthcheck"
    logs:
      log_record:
        - severity_number < SEVERITY_NUMBER_INFO
  transform:
    error_mode: ignore
    trace_statements:
      - context: span
        statements:
          - set(attributes["pipeline"], "scrub-chain")
          - truncate_all(attributes, 128)
    log_statements:
      - set(attributes["pipeline"], "scrub-chain")
      - truncate_all(attributes, 128)
  batch:
    timeout: 200ms
exporters:
  otlp:
    endpoint: http://127.0.0.1:%(grpc)d
    timeout: 5s
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, redaction, attributes, filter, transform, batch]
      exporters: [otlp]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, redaction, attributes, filter, transform, batch]
      exporters: [otlp]
""" % {"http": http_port, "grpc": b_grpc_port, "allowed": ", ".join(ALLOWED_KEYS)}


def config_b(grpc_port, http_port, chain_path, base_path):
    return """\
receivers:
  otlp/chain:
    protocols:
      grpc:
        endpoint: 127.0.0.1:%(grpc)d
  otlp/base:
    protocols:
      http:
        endpoint: 127.0.0.1:%(http)d
exporters:
  file/chain:
    path: %(chain)s
    flush_interval: 100ms
  file/base:
    path: %(base)s
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces/chain: {receivers: [otlp/chain], exporters: [file/chain]}
    logs/chain: {receivers: [otlp/chain], exporters: [file/chain]}
    traces/base: {receivers: [otlp/base], exporters: [file/base]}
    logs/base: {receivers: [otlp/base], exporters: [file/base]}
""" % {"grpc": grpc_port, "http": http_port, "chain": chain_path, "base": base_path}


# --- values -----------------------------------------------------------------

def from_js(v):
    """A manifest value (JSON of the JS attribute value) as a typed tuple."""
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        return ("int", int(v)) if v.is_integer() else ("double", v)
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, list):
        return ("array", tuple(from_js(x) for x in v))
    if v is None:
        return ("empty", None)
    return ("kvlist", tuple(sorted((k, from_js(x)) for k, x in v.items())))


def from_otlp(av):
    """An OTLP/JSON AnyValue of the file exporter as a typed tuple."""
    if "stringValue" in av:
        return ("str", av["stringValue"])
    if "intValue" in av:
        return ("int", int(av["intValue"]))
    if "doubleValue" in av:
        return ("double", float(av["doubleValue"]))
    if "boolValue" in av:
        return ("bool", av["boolValue"])
    if "arrayValue" in av:
        return ("array", tuple(from_otlp(x) for x in av["arrayValue"].get("values", [])))
    if "kvlistValue" in av:
        return ("kvlist", tuple(sorted((kv["key"], from_otlp(kv.get("value", {})))
                                       for kv in av["kvlistValue"].get("values", []))))
    return ("empty", None)


def otlp_attrs(lst, where):
    keys = [kv["key"] for kv in lst or []]
    check(len(keys) == len(set(keys)), "%s: no attribute key twice (%s)" % (where, keys))
    return {kv["key"]: from_otlp(kv.get("value", {})) for kv in lst or []}


def js_attrs(d):
    return {k: from_js(v) for k, v in (d or {}).items()}


S = lambda v: ("str", v)  # noqa: E731
I = lambda v: ("int", v)  # noqa: E731


def sha256(s):
    return hashlib.sha256(s.encode()).hexdigest()


# --- reading the sink's files -----------------------------------------------

def read_file(path):
    """(spans, logs, raw text): every span and log record of the file, each with its
    resource and scope."""
    try:
        with open(path, "rb") as f:
            raw = f.read().decode()
    except FileNotFoundError:
        return [], [], ""
    spans, logs = [], []
    for line in raw.splitlines():
        if not line.strip():
            continue
        req = json.loads(line)
        for rs in req.get("resourceSpans", []):
            for ss in rs.get("scopeSpans", []):
                for sp in ss.get("spans", []):
                    spans.append((rs.get("resource", {}), ss.get("scope", {}), sp))
        for rl in req.get("resourceLogs", []):
            for sl in rl.get("scopeLogs", []):
                for lr in sl.get("logRecords", []):
                    logs.append((rl.get("resource", {}), sl.get("scope", {}), lr))
    return spans, logs, raw


def wait_items(path, nspans, nlogs, what):
    def enough():
        spans, logs, raw = read_file(path)
        return (len(spans) >= nspans and len(logs) >= nlogs) and (spans, logs, raw)
    try:
        return wait_for(what, enough, SINK_TIMEOUT)
    except AssertionError as e:
        check(False, str(e))
        return read_file(path)


# --- expectations -----------------------------------------------------------

RESOURCE_SUMMARY = {"redaction.redacted.keys": S("host.ip"), "redaction.redacted.count": I(1)}


def summary(redacted=(), masked=(), allowed=()):
    out = {}
    for what, keys in (("redacted", redacted), ("masked", masked), ("allowed", allowed)):
        if keys:
            out["redaction.%s.keys" % what] = S(",".join(sorted(keys)))
            out["redaction.%s.count" % what] = I(len(keys))
    return out


def expected_span_attrs(name, sent):
    """What the chain makes of a span's attributes (None: the span is dropped)."""
    a = js_attrs(sent)
    if name == "healthcheck":
        return None
    if name == "POST /checkout":
        del a["session.secret"]
        a.update({
            "http.url": S("https://bob:****@db.example/orders?id=7"),
            "http.request.header.authorization": S("Bearer ****"),
            "payment.card": S("****"),
            "user.email": S("****"),
            "customer.note": S("ssn **** on file"),
            "partner.api_key": S("****"),
            "long.text": S("L" * 128),
        })
        a.update(summary(redacted=["session.secret"],
                         masked=["http.url", "http.request.header.authorization",
                                 "payment.card", "user.email", "customer.note",
                                 "partner.api_key"],
                         allowed=["support.contact"]))
    elif name == "SELECT cards":
        a["db.statement"] = S("SELECT * FROM cards WHERE number = '****'")
        a.update(summary(masked=["db.statement"]))
    # attributes processor
    a["env"] = S("prod")
    a.pop("debug.dump", None)
    if "user.id" in a:
        a["user.id"] = S(sha256(a["user.id"][1]))
    # transform
    a["pipeline"] = S("scrub-chain")
    return a


def expected_event_attrs(name, sent):
    a = js_attrs(sent)
    if name == "payment.failed":
        a["exception.message"] = S("card **** declined for ****")
        a.update(summary(masked=["exception.message"]))
    return a


def expected_log(sent):
    """(body, attributes) after the chain, or None when the record is dropped."""
    if sent["severityNumber"] < 9:
        return None
    body = from_js(sent["body"])
    a = js_attrs(sent["attributes"])
    if sent["severityText"] == "INFO":
        body = S("payment by **** for **** via https://bob:****@db.example/orders?id=7")
        a["http.request.header.authorization"] = S("Bearer ****")
        a.update(summary(masked=["http.request.header.authorization"]))
        a["redaction.body.masked.keys"] = S("body")
        a["redaction.body.masked.count"] = I(1)
    a["env"] = S("prod")
    a.pop("debug.dump", None)
    if "user.id" in a:
        a["user.id"] = S(sha256(a["user.id"][1]))
    a["pipeline"] = S("scrub-chain")
    return body, a


# --- comparing ----------------------------------------------------------------

def compare_span(tag, got, sent, chain):
    resource, scope, sp = got
    w = "%s span %r" % (tag, sent["name"])
    check(sp.get("traceId") == sent["traceId"], w + ": traceId")
    check(sp.get("parentSpanId", "") == sent["parentSpanId"], w + ": parentSpanId")
    check(sp.get("kind", 0) == sent["kind"] + 1, w + ": kind %r" % sp.get("kind"))
    check(sp.get("startTimeUnixNano") == sent["start"], w + ": startTimeUnixNano")
    check(sp.get("endTimeUnixNano") == sent["end"], w + ": endTimeUnixNano")
    st = sp.get("status", {})
    check(st.get("code", 0) == sent["status"]["code"]
          and st.get("message", "") == sent["status"]["message"], w + ": status %r" % st)
    check(scope.get("name") == sent["scope"]["name"]
          and scope.get("version", "") == sent["scope"]["version"], w + ": scope %r" % scope)
    want_res = js_attrs(sent["resource"])
    if chain:
        del want_res["host.ip"]
        want_res.update(RESOURCE_SUMMARY)
    got_res = otlp_attrs(resource.get("attributes"), w + " resource")
    check(got_res == want_res, w + ": resource attributes" + diff(got_res, want_res))
    want = expected_span_attrs(sent["name"], sent["attributes"]) if chain \
        else js_attrs(sent["attributes"])
    got_a = otlp_attrs(sp.get("attributes"), w)
    check(got_a == want, w + ": attributes" + diff(got_a, want))
    evs = sp.get("events", [])
    check(len(evs) == len(sent["events"]), w + ": %d events" % len(sent["events"]))
    for ge, se in zip(evs, sent["events"]):
        ew = "%s event %r" % (w, se["name"])
        check(ge.get("name") == se["name"] and ge.get("timeUnixNano") == se["time"],
              ew + ": name and time")
        want_e = expected_event_attrs(se["name"], se["attributes"]) if chain \
            else js_attrs(se["attributes"])
        got_e = otlp_attrs(ge.get("attributes"), ew)
        check(got_e == want_e, ew + ": attributes" + diff(got_e, want_e))
    for k in ("links", "droppedAttributesCount", "droppedEventsCount", "droppedLinksCount"):
        check(not sp.get(k), w + ": no %s" % k)


def compare_log(tag, got, sent, chain):
    resource, scope, lr = got
    w = "%s log %s" % (tag, sent["severityText"])
    check(lr.get("timeUnixNano") == sent["time"], w + ": timeUnixNano")
    check(lr.get("observedTimeUnixNano") == sent["observed"], w + ": observedTimeUnixNano")
    check(lr.get("severityNumber", 0) == sent["severityNumber"], w + ": severityNumber")
    check(lr.get("severityText", "") == sent["severityText"], w + ": severityText")
    check(lr.get("traceId", "") == sent["traceId"] and lr.get("spanId", "") == sent["spanId"],
          w + ": traceId, spanId")
    check(lr.get("flags", 0) == sent["flags"], w + ": flags")
    check(scope.get("name") == sent["scope"]["name"]
          and scope.get("version", "") == sent["scope"]["version"], w + ": scope %r" % scope)
    want_res = js_attrs(sent["resource"])
    if chain:
        del want_res["host.ip"]
        want_res.update(RESOURCE_SUMMARY)
    got_res = otlp_attrs(resource.get("attributes"), w + " resource")
    check(got_res == want_res, w + ": resource attributes" + diff(got_res, want_res))
    if chain:
        body, want = expected_log(sent)
    else:
        body, want = from_js(sent["body"]), js_attrs(sent["attributes"])
    got_body = from_otlp(lr.get("body", {}))
    check(got_body == body, w + ": body %r" % (got_body,))
    got_a = otlp_attrs(lr.get("attributes"), w)
    check(got_a == want, w + ": attributes" + diff(got_a, want))


def diff(got, want):
    if got == want:
        return ""
    out = []
    for k in sorted(set(got) | set(want)):
        if got.get(k) != want.get(k):
            out.append("%s: got %r, want %r" % (k, got.get(k), want.get(k)))
    return " -- " + "; ".join(out)


def judge(tag, path_items, manifest, chain):
    spans, logs, raw = path_items
    sent_spans = manifest["spans"]
    sent_logs = manifest["logs"]
    by_id = {sp["spanId"]: (r, s, sp) for r, s, sp in spans}
    check(len(by_id) == len(spans), "%s: no span twice" % tag)
    want_spans = [s for s in sent_spans if not (chain and s["name"] == "healthcheck")]
    check(len(spans) == len(want_spans), "%s: %d spans (got %d)" % (tag, len(want_spans),
                                                                    len(spans)))
    for s in sent_spans:
        got = by_id.get(s["spanId"])
        if chain and s["name"] == "healthcheck":
            check(got is None, "%s: span 'healthcheck' filtered out" % tag)
            continue
        if check(got is not None, "%s: span %r present" % (tag, s["name"])):
            compare_span(tag, got, s, chain)
    want_logs = [l for l in sent_logs if not (chain and l["severityNumber"] < 9)]
    check(len(logs) == len(want_logs), "%s: %d logs (got %d)" % (tag, len(want_logs), len(logs)))
    by_time = {(lr.get("timeUnixNano"), lr.get("severityText", "")): (r, s, lr)
               for r, s, lr in logs}
    for l in sent_logs:
        got = by_time.get((l["time"], l["severityText"]))
        if chain and l["severityNumber"] < 9:
            check(got is None, "%s: DEBUG log filtered out" % tag)
            continue
        if check(got is not None, "%s: log %s present" % (tag, l["severityText"])):
            compare_log(tag, got, l, chain)
    if chain:
        for secret in SECRETS:
            check(secret not in raw, "%s: %r appears nowhere in the sink's file" % (tag, secret))
        for keep in (NOT_CARD, "4111111111111112", "help@switchyard.example",
                     "https://shop.example/catalog?page=2"):
            check(keep in raw, "%s: %r is still there" % (tag, keep))


def run_node(args, endpoint, prefix, manifest):
    script = os.path.join(args.node_dir, "scrub.mjs")
    shutil.copyfile(os.path.join(args.src_dir, "scrub.mjs"), script)
    try:
        out = subprocess.run(["node", script, "--endpoint", endpoint, "--prefix", prefix,
                              "--manifest", manifest], capture_output=True, text=True,
                             timeout=NODE_TIMEOUT, cwd=args.node_dir, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        check(False, "%s: scrub.mjs finished within %.0f s" % (prefix, NODE_TIMEOUT))
        return None
    sys.stdout.write(out.stdout)
    sys.stderr.write(out.stderr[-4000:])
    if not check(out.returncode == 0, "%s: scrub.mjs exits 0 (got %d)" % (prefix, out.returncode)):
        return None
    with open(manifest) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--src-dir", required=True)
    ap.add_argument("--node-dir", required=True)
    args = ap.parse_args()
    args.node_dir = os.path.abspath(args.node_dir)
    args.src_dir = os.path.abspath(args.src_dir)
    if not os.path.isdir(os.path.join(args.node_dir, "node_modules")):
        print("FAIL: no node_modules in %s (the node_setup fixture installs it)" % args.node_dir)
        return 1

    tmp = tempfile.mkdtemp(prefix="sy-scrub-")
    chain_path = os.path.join(tmp, "chain.json")
    base_path = os.path.join(tmp, "base.json")
    b_grpc, b_http, a_http = free_port(), free_port(), free_port()
    b = a = None
    try:
        b = Router(args.bin, [args.plugin_dir], config_b(b_grpc, b_http, chain_path, base_path))
        a = Router(args.bin, [args.plugin_dir], config_a(a_http, b_grpc))
        t0 = time.monotonic()
        base = run_node(args, "http://127.0.0.1:%d" % b_http, "scrub-base",
                        os.path.join(tmp, "base-manifest.json"))
        chain = run_node(args, "http://127.0.0.1:%d" % a_http, "scrub-chain",
                         os.path.join(tmp, "chain-manifest.json"))
        print("both SDK runs done in %.1f s" % (time.monotonic() - t0))
        rc_a = a.terminate()
        check(rc_a == 0, "router A exits 0 on SIGTERM (got %r)" % rc_a)
        if rc_a != 0:
            a.dump(60, "A| ")
        if base:
            items = wait_items(base_path, len(base["spans"]), len(base["logs"]), "baseline file")
            judge("baseline", items, base, chain=False)
        if chain:
            items = wait_items(chain_path,
                               sum(1 for s in chain["spans"] if s["name"] != "healthcheck"),
                               sum(1 for l in chain["logs"] if l["severityNumber"] >= 9),
                               "chain file")
            time.sleep(0.3)  # anything more (a filtered item leaking) would show up now
            judge("chain", read_file(chain_path), chain, chain=True)
        rc_b = b.terminate()
        check(rc_b == 0, "router B exits 0 on SIGTERM (got %r)" % rc_b)
        if check.failures:
            b.dump(40, "B| ")
            a.dump(40, "A| ")
    finally:
        for r in (a, b):
            if r is not None:
                r.cleanup()
        if not check.failures:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("files kept in %s" % tmp)
    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
