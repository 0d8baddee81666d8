#!/usr/bin/env python3
"""integration.redaction: the `redaction` processor through the real binary and .so.

The otlp receiver (OTLP/HTTP JSON) feeds redaction, which feeds the file exporter
(format json); every case reads the file back and checks it field by field:

  a. keys: allowed_keys, ignored_keys, blocked_key_patterns, blocked_values,
     allowed_values and the detectors (card with Luhn, email, bearer,
     url_password) on span, span event, resource, log record and data point
     attributes and on string log bodies; the summary attributes (debug) equal
     the collector's; every other field is as sent;
  b. hash: hash_function md5, sha1, sha3 give Python hashlib's hex digest of the
     matched bytes; summary info writes counts only;
  c. untouched: a batch with nothing to change comes out as it went in;
  d. config: a bad regex is refused with PCRE2's message and file:line, an
     unknown detector and a missing hmac_key too;
  e. newer keys: redact_all_types (ints, doubles, bools, bytes checked as the
     collector's AsString), ignored_key_patterns, url_sanitizer (attributes,
     span names, string log bodies), map and array log bodies and attribute
     values walked key by key with the body summary; db_sanitizer refused.

    test_redaction.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

Python standard library only; every wait is bounded.
"""
import argparse
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Checks, Router, free_port, http, json_span, json_traces,  # noqa: E402
                     post_json, wait_for)

check = Checks()
failures = check.failures


def s(key, value):
    return {"key": key, "value": {"stringValue": value}}


def i(key, value):
    return {"key": key, "value": {"intValue": str(value)}}


def config(port, path, redaction_yaml):
    lines = ["receivers:", "  otlp:", "    protocols:", "      http:",
             "        endpoint: 127.0.0.1:%d" % port,
             "processors:", "  redaction:"]
    lines += ["    " + line for line in redaction_yaml.strip().splitlines()]
    lines += ["exporters:", "  file:", "    path: %s" % path, "    flush_interval: 100ms",
              "service:", "  telemetry:", "    metrics:", "      level: none", "  pipelines:"]
    for sig in ("traces", "metrics", "logs"):
        lines.append("    %s: {receivers: [otlp], processors: [redaction], exporters: [file]}"
                     % sig)
    return "\n".join(lines) + "\n"


def run(args, tmp, name, redaction_yaml, requests):
    """Starts a router, posts (signal, body) requests, returns the parsed lines of
    the file (one per request, in order)."""
    path = os.path.join(tmp, name + ".json")
    port = free_port()
    with Router(args.bin, [args.plugin_dir], config(port, path, redaction_yaml)) as r:
        for signal, body in requests:
            status, _, resp = post_json("http://127.0.0.1:%d/v1/%s" % (port, signal), body)
            check(status == 200, "%s: %s accepted (%d %r)" % (name, signal, status, resp[:200]))

        def lines():
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                return None
            return data.count(b"\n") >= len(requests) and data
        data = wait_for("%d lines in %s" % (len(requests), path), lines, 10)
        check(r.stop() == 0, "%s: SIGTERM exits 0" % name)
    return [json.loads(line) for line in data.decode().splitlines()]


def attrs(lst):
    return {a["key"]: a["value"] for a in lst}


# --- a. keys, values, detectors, summary --------------------------------------

KEYS_CFG = r"""
allowed_keys: [service.name, http.url, card, note, auth, email, contact, id, host, api_token]
ignored_keys: [safe]
blocked_key_patterns: [".*token.*"]
blocked_values: ["secret-[0-9]+"]
allowed_values: [".+@mycompany\\.com"]
detectors: [card, email, bearer, url_password]
summary: debug
"""

SPAN_ATTRS = [
    s("http.url", "https://bob:hunter2@example.com/cart"),
    s("card", "paid 4111 1111 1111 1111 ok"),
    s("note", "order 4111 1111 1111 1112, code secret-1234 and secret-99"),
    s("auth", "Bearer abc123def456ghi789"),
    s("email", "mail alice@example.org now"),
    s("contact", "bob@mycompany.com"),
    s("api_token", "t0k3n"),
    s("safe", "4111111111111111"),
    s("dropme", "x"),
    i("id", 42),
    i("other", 7),
    s("host", "10.0.0.1"),
]


def case_keys(args, tmp):
    span = json_span("GET /cart", attributes=copy.deepcopy(SPAN_ATTRS))
    span["events"] = [{"timeUnixNano": "1544712660500000000", "name": "charge",
                       "attributes": [s("card", "4111-1111-1111-1111"), s("note", "plain")]}]
    traces = json_traces([span], "checkout")
    traces["resourceSpans"][0]["resource"]["attributes"].append(s("pod.secret", "abc"))
    logs = {"resourceLogs": [{"resource": {"attributes": [s("service.name", "checkout")]},
                              "scopeLogs": [{"scope": {"name": "log"}, "logRecords": [
                                  {"timeUnixNano": "1544712660000000000", "severityNumber": 9,
                                   "body": {"stringValue": "user alice@example.org paid with "
                                            "4111111111111111 from 10.0.0.1"},
                                   "attributes": [s("note", "fine")]},
                                  {"timeUnixNano": "1544712660000000001", "severityNumber": 9,
                                   "body": {"stringValue": "nothing here 4111111111111112"},
                                   "attributes": [s("note", "fine")]}]}]}]}
    metrics = {"resourceMetrics": [{"resource": {"attributes": [s("service.name", "checkout")]},
                                    "scopeMetrics": [{"metrics": [{"name": "m", "gauge": {
                                        "dataPoints": [{"asInt": "3",
                                                        "timeUnixNano": "1544712660000000000",
                                                        "attributes": [s("dropme", "x"),
                                                                       s("note", "secret-7")]}]}}]}]}]}
    docs = run(args, tmp, "keys", KEYS_CFG,
               [("traces", traces), ("logs", logs), ("metrics", metrics)])
    by = {k: d for d in docs for k in d}

    rs = by["resourceSpans"]["resourceSpans"][0]
    check(rs["resource"]["attributes"] == [
        s("service.name", "checkout"),
        s("redaction.redacted.keys", "pod.secret"), i("redaction.redacted.count", 1)],
        "keys: resource attribute not allowed deleted, summary on the resource")
    check(rs["scopeSpans"][0]["scope"] == {"name": "test"}, "keys: scope as sent")
    out = rs["scopeSpans"][0]["spans"][0]
    want = [
        s("http.url", "https://bob:****@example.com/cart"),
        s("card", "paid **** ok"),
        s("note", "order 4111 1111 1111 1112, code **** and ****"),
        s("auth", "Bearer ****"),
        s("email", "mail **** now"),
        s("contact", "bob@mycompany.com"),
        s("api_token", "****"),
        s("safe", "4111111111111111"),
        i("id", 42),
        s("host", "10.0.0.1"),
        s("redaction.redacted.keys", "dropme,other"),
        i("redaction.redacted.count", 2),
        s("redaction.masked.keys", "api_token,auth,card,email,http.url,note"),
        i("redaction.masked.count", 6),
        s("redaction.allowed.keys", "contact"),
        i("redaction.allowed.count", 1),
        i("redaction.ignored.count", 1),
    ]
    got = out["attributes"]
    for w in want:
        check(w in got, "keys: span attribute %s = %s" % (w["key"], w["value"]))
    check(got == want, "keys: span attributes exactly, in order (got %s)" % json.dumps(got))
    rest_in = {k: v for k, v in span.items() if k not in ("attributes", "events")}
    rest_out = {k: v for k, v in out.items() if k not in ("attributes", "events")}
    check(rest_in == rest_out, "keys: every other span field as sent (%s)" % rest_out)
    ev = out["events"][0]
    check(ev["attributes"] == [s("card", "****"), s("note", "plain"),
                               s("redaction.masked.keys", "card"),
                               i("redaction.masked.count", 1)],
          "keys: event attributes masked, summary on the event (%s)" % ev["attributes"])
    check(ev["name"] == "charge" and ev["timeUnixNano"] == "1544712660500000000",
          "keys: event fields as sent")

    recs = by["resourceLogs"]["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    check(recs[0]["body"] == {"stringValue": "user **** paid with **** from 10.0.0.1"},
          "keys: log body: e-mail and Luhn-valid card masked, IPv4 kept (detector off)")
    check(recs[0]["attributes"] == [s("note", "fine"), s("redaction.body.masked.keys", "body"),
                                    i("redaction.body.masked.count", 1)],
          "keys: body summary on the log record (%s)" % recs[0]["attributes"])
    want_log1 = logs["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]
    check(recs[1] == want_log1, "keys: untouched log record as sent (%s)" % recs[1])
    check(recs[0]["timeUnixNano"] == "1544712660000000000" and recs[0]["severityNumber"] == 9,
          "keys: log fields as sent")

    pt = by["resourceMetrics"]["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]
    pt = pt["gauge"]["dataPoints"][0]
    check(pt["attributes"] == [s("note", "****"), s("redaction.redacted.keys", "dropme"),
                               i("redaction.redacted.count", 1),
                               s("redaction.masked.keys", "note"),
                               i("redaction.masked.count", 1)],
          "keys: data point attributes (%s)" % pt["attributes"])
    check(pt["asInt"] == "3", "keys: data point value as sent")


# --- b. hash_function ------------------------------------------------------------

def case_hash(args, tmp):
    for fn, algo in (("md5", "md5"), ("sha1", "sha1"), ("sha3", "sha3_256")):
        cfg = ("allow_all_keys: true\nblocked_values: [\"4[0-9]{15}\"]\n"
               "blocked_key_patterns: [\"^password$\"]\ndetectors: [email]\n"
               "hash_function: %s\nsummary: info\n" % fn)
        span = json_span("op", attributes=[s("card", "pay 4111111111111111 now"),
                                           s("mail", "to bob@example.org"),
                                           s("password", "hunter2"), s("plain", "ok")])
        docs = run(args, tmp, "hash-" + fn, cfg, [("traces", json_traces([span], "svc"))])
        got = docs[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]

        def h(b):
            return hashlib.new(algo, b.encode()).hexdigest()
        want = [s("card", "pay %s now" % h("4111111111111111")),
                s("mail", "to %s" % h("bob@example.org")),
                s("password", h("hunter2")), s("plain", "ok"),
                i("redaction.masked.count", 3)]
        check(got == want, "hash %s: matches replaced by hashlib's %s hex digest, count only "
              "with summary info (got %s)" % (fn, algo, json.dumps(got)))
        res = docs[0]["resourceSpans"][0]["resource"]["attributes"]
        check(res == [s("service.name", "svc")], "hash %s: resource untouched" % fn)


# --- c. nothing to change -------------------------------------------------------

def case_untouched(args, tmp):
    span = json_span("op", attributes=[s("a", "b"), i("n", 1)])
    sent = json_traces([span], "svc")
    docs = run(args, tmp, "untouched", "allow_all_keys: true\nblocked_values: [nomatch]\n"
               "detectors: [card, email, bearer, ipv4, ipv6, url_password]\nsummary: debug",
               [("traces", sent)])
    check(docs[0] == sent, "untouched: the batch comes out as it went in (%s)" % docs[0])


# --- d. configuration errors ----------------------------------------------------

def case_config(args, tmp):
    cases = [
        ("blocked_values: [\"ok\", \"(unclosed\"]",
         r"config\.yaml:\d+:\d+: .*blocked_values\[1\] \"\(unclosed\": missing closing "
         r"parenthesis at offset 9"),
        ("allowed_values: [\"a{2,1}\"]", r"config\.yaml:\d+.*allowed_values\[0\].*numbers out of order"),
        ("blocked_key_patterns: [\"[a\"]", r"config\.yaml:\d+.*blocked_key_patterns\[0\].*missing terminating \]"),
        ("detectors: [card, ssn]", r"unknown detector \"ssn\""),
        ("hash_function: sha256", r"hash_function"),
        ("hash_function: hmac-sha256", r"hmac_key must not be empty"),
        ("summary: verbose", r"summary"),
    ]
    for n, (cfg, want) in enumerate(cases):
        d = os.path.join(tmp, "cfg-%d" % n)
        os.makedirs(d)
        cfg_path = os.path.join(d, "config.yaml")
        with open(cfg_path, "w") as f:
            f.write(config(free_port(), os.path.join(d, "o.json"), cfg))
        p = subprocess.run([args.bin, "validate", "--config", cfg_path,
                            "--plugin-dir", args.plugin_dir], capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode("utf-8", "replace")
        check(p.returncode == 1 and re.search(want, out),
              "config: %r refused with /%s/ (rc %d: %s)" % (cfg, want, p.returncode,
                                                          out.strip()[-300:]))


# --- e. the collector's newer keys, maps and arrays --------------------------------

def kv(key, value):
    return {"key": key, "value": value}


def sv(v):
    return {"stringValue": v}


def iv(v):
    return {"intValue": str(v)}


def kvlist(*pairs):
    return {"kvlistValue": {"values": list(pairs)}}


def arr(*vals):
    return {"arrayValue": {"values": list(vals)}}


def case_newkeys(args, tmp):
    # redact_all_types: non-string values read through AsString(); a masked one
    # becomes a string, an unmatched one keeps its type.
    attrs_in = [kv("card", iv(4111111111111111)), kv("small", iv(7)),
                kv("price", {"doubleValue": 12345.0}), kv("ok", {"boolValue": True}),
                kv("blob", {"bytesValue": "MTIzNDU="}), kv("txt", sv("12345"))]
    cfg = ("allow_all_keys: true\nblocked_values: [\"4[0-9]{15}\", \"^12345$\", \"^true$\"]\n"
           "redact_all_types: true\nsummary: debug\n")
    docs = run(args, tmp, "alltypes", cfg,
               [("traces", json_traces([json_span("op", attributes=copy.deepcopy(attrs_in))],
                                       "svc"))])
    got = attrs(docs[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"])
    want = {"card": sv("****"), "small": iv(7), "price": sv("****"), "ok": sv("****"),
            "blob": {"bytesValue": "MTIzNDU="}, "txt": sv("****"),
            "redaction.masked.keys": sv("card,ok,price,txt"),
            "redaction.masked.count": iv(4)}
    check(got == want, "redact_all_types: int, double (12345 as Go writes 12345.0) and bool "
          "masked as strings, base64 of bytes not matched, small int kept (got %s)" % got)
    cfg_off = cfg.replace("redact_all_types: true", "redact_all_types: false")
    docs = run(args, tmp, "alltypes-off", cfg_off,
               [("traces", json_traces([json_span("op", attributes=copy.deepcopy(attrs_in))],
                                       "svc"))])
    got = attrs(docs[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"])
    check(got["card"] == iv(4111111111111111) and got["price"] == {"doubleValue": 12345.0}
          and got["ok"] == {"boolValue": True} and got["txt"] == sv("****"),
          "redact_all_types false: only strings are checked (got %s)" % got)

    # ignored_key_patterns: such keys are never deleted or masked.
    cfg = ("allowed_keys: [keep]\nignored_key_patterns: [\"^safe\\\\.\"]\n"
           "blocked_values: [\"4[0-9]{15}\"]\nsummary: debug\n")
    span = json_span("op", attributes=[s("safe.card", "4111111111111111"), s("keep", "x"),
                                       s("gone", "y"), s("unsafe.card", "z")])
    docs = run(args, tmp, "ignorepat", cfg, [("traces", json_traces([span], "svc"))])
    got = docs[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]
    want = [s("safe.card", "4111111111111111"), s("keep", "x"),
            s("redaction.redacted.keys", "gone,unsafe.card"), i("redaction.redacted.count", 2),
            i("redaction.ignored.count", 1)]
    check(got == want, "ignored_key_patterns: a matching key kept unmasked and counted (got %s)"
          % json.dumps(got))

    # url_sanitizer: listed attributes, HTTP-looking client/server span names,
    # string log bodies.
    cfg = ("allow_all_keys: true\nurl_sanitizer:\n  enabled: true\n"
           "  attributes: [http.url, url.path]\nsummary: debug\n")
    spans = [json_span("GET /users/123/orders", kind=2,
                       attributes=[s("url.path", "/users/123/orders/9f8e7d?page=2"),
                                   s("http.url", "https://shop.example.com/cart/8d3f9a2c?s=abc"),
                                   s("other", "/users/123")]),
             json_span("/internal/123", kind=1),
             json_span("/123/456", kind=3),
             json_span("/api/v1/items/42", kind=3)]
    logs = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1544712660000000000", "body": sv("GET /api/v1/items/42?x=1")}]}]}]}
    docs = run(args, tmp, "url", cfg,
               [("traces", json_traces(spans, "svc")), ("logs", logs)])
    # The two signals go through their own pipelines: either may be written first.
    docs.sort(key=lambda d: "resourceSpans" not in d)
    got = docs[0]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    names = [sp["name"] for sp in got]
    check(names == ["GET /users/*/orders", "/internal/123", "/123/456", "/api/v1/items/*"],
          "url_sanitizer: server/client span names clustered, an internal span and a name "
          "that would be all stars kept (got %s)" % names)
    a0 = attrs(got[0]["attributes"])
    check(a0["url.path"] == sv("/users/*/orders/*") and
          a0["http.url"] == sv("*//shop.example.com/cart/*") and a0["other"] == sv("/users/123")
          and a0["redaction.masked.keys"] == sv("http.url,url.path"),
          "url_sanitizer: listed attributes sanitized (query dropped, ids starred), "
          "others not (got %s)" % a0)
    body = docs[1]["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]["body"]
    check(body == sv("GET /api/v1/items/*"), "url_sanitizer: string log body (got %s)" % body)

    # Map and array log bodies and a map attribute value, walked key by key.
    cfg = ("allowed_keys: [user, card, name, n, list, keep, password, ctx]\n"
           "blocked_key_patterns: [\"^password$\"]\nblocked_values: [\"4[0-9]{15}\"]\n"
           "allowed_values: [\"^4000000000000002$\"]\nsummary: debug\n")
    body_in = kvlist(kv("user", kvlist(kv("card", sv("4111111111111111")), kv("name", sv("bob")))),
                     kv("password", iv(1234)), kv("n", iv(4111111111111111)),
                     kv("list", arr(sv("a"), sv("4111111111111111"), sv("4000000000000002"))),
                     kv("drop", sv("x")), kv("keep", sv("ok")))
    rec_attrs = [kv("ctx", kvlist(kv("card", sv("4111111111111111")), kv("token", sv("t")))),
                 kv("card", arr(sv("4111111111111111"), iv(5)))]
    logs = {"resourceLogs": [{"resource": {}, "scopeLogs": [{"logRecords": [
        {"timeUnixNano": "1544712660000000000", "body": body_in, "attributes": rec_attrs},
        {"timeUnixNano": "1544712660000000001",
         "body": arr(sv("4111111111111111"), kvlist(kv("secret", sv("s"))))}]}]}]}
    docs = run(args, tmp, "maps", cfg, [("logs", logs)])
    recs = docs[0]["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    want_body = kvlist(kv("user", kvlist(kv("card", sv("****")), kv("name", sv("bob")))),
                       kv("password", sv("****")), kv("n", sv("****")),
                       kv("list", arr(sv("a"), sv("****"), sv("4000000000000002"))),
                       kv("keep", sv("ok")))
    check(recs[0]["body"] == want_body, "map body: nested card masked, password key masked "
          "whole, int checked as its string, array element masked, allowed value kept, key "
          "not allowed removed (got %s)" % json.dumps(recs[0]["body"]))
    got = attrs(recs[0]["attributes"])
    want = {"ctx": kvlist(kv("card", sv("****"))), "card": arr(sv("****"), iv(5)),
            "redaction.redacted.keys": sv("ctx.token"), "redaction.redacted.count": iv(1),
            "redaction.masked.keys": sv("card.[0],ctx.card"), "redaction.masked.count": iv(2),
            "redaction.body.redacted.keys": sv("drop"), "redaction.body.redacted.count": iv(1),
            "redaction.body.masked.keys": sv("list.[1],n,password,user.card"),
            "redaction.body.masked.count": iv(4),
            "redaction.body.allowed.keys": sv("list.[2]"), "redaction.body.allowed.count": iv(1)}
    check(got == want, "map attribute and body summaries, paths as the collector spells "
          "them (got %s)" % json.dumps(got))
    # An emptied map is written as an empty KeyValueList ({} in OTLP/JSON).
    check(recs[1]["body"] == arr(sv("****"), {"kvlistValue": {}}),
          "array body: element masked, nested key not allowed removed (got %s)"
          % json.dumps(recs[1]["body"]))

    # db_sanitizer: accepted when it turns nothing on, refused otherwise.
    for n, (db, ok) in enumerate(((" {sql: {enabled: false}}", True),
                                  (" {sql: {enabled: true}}", False))):
        d = os.path.join(tmp, "db-%d" % n)
        os.makedirs(d)
        cfg_path = os.path.join(d, "config.yaml")
        with open(cfg_path, "w") as f:
            f.write(config(free_port(), os.path.join(d, "o.json"),
                           "allow_all_keys: true\ndb_sanitizer:" + db))
        p = subprocess.run([args.bin, "--config", cfg_path, "--plugin-dir", args.plugin_dir],
                           capture_output=True, timeout=30) if not ok else None
        if ok:
            with Router(args.bin, [args.plugin_dir], open(cfg_path).read()) as r:
                check(r.stop() == 0, "db_sanitizer disabled: the router starts and stops")
        else:
            out = (p.stdout + p.stderr).decode("utf-8", "replace")
            check(p.returncode != 0 and "db_sanitizer is not supported" in out
                  and re.search(r"config\.yaml:\d+:\d+", out),
                  "db_sanitizer enabled: refused at start with file:line (rc %d: %s)"
                  % (p.returncode, out.strip()[-300:]))


# --- counters: the processor's metrics, added once a batch --------------------

def metric_value(text, name):
    """The value of `name` for the traces pipeline in Prometheus text, or None."""
    for line in text.splitlines():
        if line.startswith(name + "{") and 'pipeline="traces"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def case_counters(args, tmp):
    path = os.path.join(tmp, "counters.json")
    port, mport = free_port(), free_port()
    text = config(port, path, "allowed_keys: [card, note, service.name]\n"
                  "detectors: [card]\nsummary: silent\n")
    text = text.replace("    metrics:\n      level: none\n",
                        "    metrics:\n      address: 127.0.0.1:%d\n" % mport)
    spans = [json_span("a", attributes=[s("card", "4111111111111111"), s("note", "ok"),
                                        s("gone", "x")]),
             json_span("b", attributes=[s("card", "4111 1111 1111 1111 and 5500 0000 0000 0004"),
                                        s("gone2", "y")])]
    requests = [json_traces(spans, "svc"), json_traces([json_span("c", attributes=[
        s("note", "fine")])], "svc")]
    want = {"attributes_redacted": 2, "values_masked": 2, "detector_matches": 3,
            "values_allowed": 0, "attributes_ignored": 0, "urls_sanitized": 0}
    with Router(args.bin, [args.plugin_dir], text) as r:
        for body in requests:
            status, _, resp = post_json("http://127.0.0.1:%d/v1/traces" % port, body)
            check(status == 200, "counters: traces accepted (%d %r)" % (status, resp[:200]))
        wait_for("2 lines in %s" % path, lambda: os.path.exists(path) and
                 open(path, "rb").read().count(b"\n") >= 2, 10)

        def scraped():
            body = http("GET", "http://127.0.0.1:%d/metrics" % mport)[2].decode()
            name = "switchyard_redaction_detector_matches_total"
            return body if metric_value(body, name) == 3 else None
        try:
            body = wait_for("the detector counter at 3", scraped, 10)
        except AssertionError:
            body = http("GET", "http://127.0.0.1:%d/metrics" % mport)[2].decode()
        for key, n in want.items():
            got = metric_value(body, "switchyard_redaction_%s_total" % key)
            check(got == n, "counters: redaction_%s is %r, want %r" % (key, got, n))
        check(r.stop() == 0, "counters: SIGTERM exits 0")


# --- allowed keys: the look-up by length and first/last bytes -------------------

LOOKUP_KEYS = ["a", "ab", "abc", "abcdefg", "abcdefgh", "abcdefghi", "http.request.method",
               "http.response.status_code", "k" * 16, "k" * 17, "m" * 63, "m" * 64, "m" * 65,
               "m" * 100, "user_agent.original", "http.request.method"]


def near_misses(key):
    """Keys of the same length differing in the first, a middle or the last byte,
    and one byte longer and shorter."""
    out = {key + "x", key[:-1] if len(key) > 1 else "zz"}
    for at in (0, len(key) // 2, len(key) - 1):
        out.add(key[:at] + ("Z" if key[at] != "Z" else "Y") + key[at + 1:])
    return out


def case_keylookup(args, tmp):
    allowed = set(LOOKUP_KEYS)
    sent = sorted(allowed | {m for k in allowed for m in near_misses(k)})
    cfg = "allowed_keys: [%s]\nsummary: silent\n" % ", ".join(json.dumps(k) for k in LOOKUP_KEYS)
    span = json_span("lookup", attributes=[s(k, "v") for k in sent])
    out = run(args, tmp, "keylookup", cfg, [("traces", json_traces([span], "svc"))])
    got = attrs(out[0]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"])
    kept = sorted(k for k in sent if k in allowed)
    check(sorted(got) == kept, "keylookup: kept %r, want %r" % (sorted(got), kept))
    check(len(sent) > 3 * len(allowed), "keylookup: %d keys sent" % len(sent))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--case", action="append", choices=["keys", "hash", "untouched", "config",
                                                     "newkeys", "counters", "keylookup"])
    args = ap.parse_args()
    cases = {"keys": case_keys, "hash": case_hash, "untouched": case_untouched,
             "config": case_config, "newkeys": case_newkeys, "counters": case_counters,
             "keylookup": case_keylookup}
    with tempfile.TemporaryDirectory(prefix="sy-redaction-") as tmp:
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
