#!/usr/bin/env python3
"""integration.tail_sampling: the `tail_sampling` processor through the real binary
and its .so.

One router runs one pipeline per scenario (otlp/<p> -> tail_sampling/<p> ->
file/<p>), each with decision_wait 1s. Crafted traces (OTLP/JSON) are posted; once
the decisions have run, each file holds exactly the traces the policy keeps, each
with every span it was sent with (never part of a trace), and the per-policy
metrics count them:

  a. every policy type on traces that it keeps and traces that it does not
     (and 300 traces whose spans are shuffled over 40 requests of two resources:
     grouped by trace ID, each kept span with its own resource and scope):
     always_sample, latency (lower bound; lower + upper bound), status_code,
     string_attribute (exact on span and on resource, regex, invert_match),
     numeric_attribute (and invert_match), boolean_attribute, probabilistic (the
     collector's FNV-1a hash, computed here independently, on 200 trace ids),
     rate_limiting, bytes_limiting, span_count, trace_state, trace_flags,
     ottl_condition (span and spanevent), and, not, drop, composite (rate
     allocation), and the decision rule (InvertNotSampled beats Sampled);
  b. late spans: with decision caches, a span of a kept trace arriving after the
     decision is emitted, one of a dropped trace is not, both counted;
  c. the memory bound: num_traces (the oldest decided early, counted) and
     max_bytes; traces pending at shutdown are decided and written before exit;
  d. the other keys: sample_on_first_match, maximum_trace_size_bytes,
     decision_wait_after_root_received, block_on_overflow (the receiver refuses),
     drop_pending_traces_on_shutdown;
  e. config errors: unknown policy type, bad status code, duplicate name, invalid
     regex, unknown key, span-ingest.

    test_tail_sampling.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
"""
import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
from fractions import Fraction

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, Router, free_port, http, post_json, wait_for  # noqa: E402

check = Checks()
BASE_NS = 1_700_000_000_000_000_000


TRACE_NO = {}


def tid(n):
    """Trace number n's ID: spread over all 16 bytes (the collector's FNV-1a hash
    barely moves its high bits for IDs that differ only in their last bytes)."""
    h = hashlib.sha256(b"trace-%d" % n).hexdigest()[:32]
    TRACE_NO[h] = n
    return h


def sid(t, k):
    return "%08x%08x" % (t & 0xffffffff, k + 1)


def s_attr(k, v):
    return {"key": k, "value": {"stringValue": v}}


def i_attr(k, v):
    return {"key": k, "value": {"intValue": str(v)}}


def b_attr(k, v):
    return {"key": k, "value": {"boolValue": v}}


def span(t, k, start_ms=0, dur_ms=10, attrs=(), status=0, **extra):
    sp = {"traceId": tid(t), "spanId": sid(t, k), "name": "s%d" % k, "kind": 2,
          "startTimeUnixNano": str(BASE_NS + start_ms * 1_000_000),
          "endTimeUnixNano": str(BASE_NS + (start_ms + dur_ms) * 1_000_000),
          "attributes": list(attrs)}
    if k:
        sp["parentSpanId"] = sid(t, 0)
    if status:
        sp["status"] = {"code": status}
    sp.update(extra)
    return sp


def trace(t, n=2, **kw):
    return [span(t, k, start_ms=k, **kw) for k in range(n)]


def request(spans, res_attrs=(("service.name", "svc"),)):
    return {"resourceSpans": [{
        "resource": {"attributes": [s_attr(k, v) for k, v in res_attrs]},
        "scopeSpans": [{"scope": {"name": "lib"}, "spans": spans}]}]}


def read_spans(path):
    """trace id -> set of span ids found in the file exporter's JSON lines."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            for rs in json.loads(line).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for sp in ss.get("spans", []):
                        out.setdefault(sp["traceId"], set()).add(sp["spanId"])
    return out


def span_homes(reqs_or_path):
    """span ID -> (service.name, scope name, scope version, span name), from sent
    requests or from the file exporter's lines."""
    if isinstance(reqs_or_path, str):
        with open(reqs_or_path) as f:
            bodies = [json.loads(line) for line in f if line.strip()]
    else:
        bodies = [r if isinstance(r, dict) else request(r) for r in reqs_or_path]
    out = {}
    for body in bodies:
        for rs in body.get("resourceSpans", []):
            svc = [a["value"]["stringValue"] for a in rs.get("resource", {}).get("attributes", [])
                   if a["key"] == "service.name"]
            for ss in rs.get("scopeSpans", []):
                sc = ss.get("scope", {})
                for sp in ss.get("spans", []):
                    out[sp["spanId"]] = (svc[0] if svc else None, sc.get("name"),
                                         sc.get("version", ""), sp.get("name"))
    return out


def metrics(mport):
    _, _, text = http("GET", "http://127.0.0.1:%d/metrics" % mport)
    return text.decode()


def metric(text, name, inst, **labels):
    """The value of switchyard_<name> for processor tail_sampling/<inst> whose
    labels include `labels` (values as rendered, escaped), or None."""
    want = ['processor="tail_sampling/%s"' % inst] + \
        ['%s="%s"' % (k, v) for k, v in labels.items()]
    for line in text.splitlines():
        if line.startswith("switchyard_" + name + "{") and \
                all(w in line.rsplit("}", 1)[0] for w in want):
            return float(line.rsplit(" ", 1)[1])
    return None


def series(text, name, inst):
    """Every series of switchyard_<name> of tail_sampling/<inst>: {labels: value},
    labels as rendered (the instance's own left out)."""
    out = {}
    for line in text.splitlines():
        if not line.startswith("switchyard_" + name + "{"):
            continue
        labels, value = line[len("switchyard_" + name + "{"):].rsplit("} ", 1)
        if ('processor="tail_sampling/%s"' % inst) not in labels:
            continue
        own = [x for x in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', labels)
               if x[0] not in ("processor", "pipeline")]
        out[tuple(own)] = float(value)
    return out


# ---- the collector's probabilistic hash, written from its description ----------

def fnv1a64(data):
    h = 14695981039346656037
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


def threshold(pct):
    """floor(MaxUint64 * ratio) with the product rounded to 64 bits of mantissa
    (big.Float's default precision for it), ratio a float64."""
    exact = Fraction(2**64 - 1) * Fraction(pct / 100.0)
    if exact <= 0:
        return 0
    e = exact.numerator.bit_length() - exact.denominator.bit_length()
    while Fraction(2) ** e > exact:
        e -= 1
    while Fraction(2) ** (e + 1) <= exact:
        e += 1
    ulp = Fraction(2) ** (e - 63)
    q = exact / ulp
    fl = q.numerator // q.denominator
    rem = q - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    return min(int(fl * ulp), 2**64 - 1)


def prob_keeps_id(salt, pct, trace_id_hex):
    return fnv1a64(salt.encode() + bytes.fromhex(trace_id_hex)) <= threshold(pct)


def prob_keeps(salt, pct, t):
    return prob_keeps_id(salt, pct, tid(t))


# ---- the scenarios ------------------------------------------------------------------
# name -> (policies YAML, list of requests (each a list of spans), kept trace numbers)

def scenarios():
    sc = {}
    sc["always"] = ("[{name: all, type: always_sample}]",
                    [trace(1, 3) + trace(2, 1)], {1, 2})
    sc["latency"] = ("[{name: slow, type: latency, latency: {threshold_ms: 500}}]",
                     [[span(10, 0, 0, 100), span(10, 1, 500, 100)],   # 600 ms: kept
                      [span(11, 0, 0, 100), span(11, 1, 10, 20)]],    # 100 ms
                     {10})
    sc["latency_band"] = (
        "[{name: band, type: latency, latency: {threshold_ms: 100, upper_threshold_ms: 300}}]",
        [[span(20, 0, 0, 200)], [span(21, 0, 0, 400)], [span(22, 0, 0, 50)],
         [span(23, 0, 0, 100)]],
        {20})
    sc["status"] = ("[{name: errors, type: status_code, status_code: {status_codes: [ERROR]}}]",
                    [[span(30, 0), span(30, 1, status=2), span(30, 2, status=1)],
                     [span(31, 0, status=1), span(31, 1)]],
                    {30})
    sc["string"] = (
        "[{name: route, type: string_attribute, "
        "string_attribute: {key: http.route, values: [/a, /b]}}]",
        [[span(40, 0), span(40, 1, attrs=[s_attr("http.route", "/a")])],
         [span(41, 0, attrs=[s_attr("http.route", "/c")])],
         [span(42, 0, attrs=[i_attr("http.route", 7)])]],
        {40})
    sc["string_res"] = (
        "[{name: svc, type: string_attribute, "
        "string_attribute: {key: service.name, values: [checkout]}}]",
        [request([span(43, 0)], (("service.name", "checkout"),)),
         request([span(44, 0)], (("service.name", "cart"),))],
        {43})
    sc["string_regex"] = (
        "[{name: api, type: string_attribute, string_attribute: "
        "{key: http.route, values: ['^/api/v[0-9]+/'], enabled_regex_matching: true, "
        "cache_max_size: 10}}]",
        [[span(45, 0, attrs=[s_attr("http.route", "/api/v2/users")])],
         [span(46, 0, attrs=[s_attr("http.route", "/web/api/v2/")])]],
        {45})
    # cache_max_size 1: every other value evicts the one before, so decisions come
    # from the cache (a repeat) and from the regexes (after an eviction) alike
    routes = ["/api/x", "/web", "/api/x", "/shop/pay", "/web", "/web", "/shop/pay", "/api/x"]
    sc["string_regex_cache"] = (
        "[{name: api, type: string_attribute, string_attribute: "
        "{key: http.route, values: ['^/api/', 'pay$'], enabled_regex_matching: true, "
        "cache_max_size: 1}}]",
        [[span(600 + i, 0, attrs=[s_attr("http.route", r)])] for i, r in enumerate(routes)],
        {600 + i for i, r in enumerate(routes) if r != "/web"})
    sc["string_invert"] = (
        "[{name: not-health.v2, type: string_attribute, string_attribute: "
        "{key: http.route, values: [/health], invert_match: true}}]",
        [[span(47, 0, attrs=[s_attr("http.route", "/health")]), span(47, 1)],
         [span(48, 0, attrs=[s_attr("http.route", "/pay")])], [span(49, 0)]],
        {48, 49})
    sc["numeric"] = (
        "[{name: http5xx, type: numeric_attribute, "
        "numeric_attribute: {key: http.status_code, min_value: 500, max_value: 599}}]",
        [[span(50, 0, attrs=[i_attr("http.status_code", 503)]), span(50, 1)],
         [span(51, 0, attrs=[i_attr("http.status_code", 200)])],
         [span(52, 0, attrs=[i_attr("http.status_code", 600)])]],
        {50})
    sc["numeric_invert"] = (
        "[{name: not5xx, type: numeric_attribute, numeric_attribute: "
        "{key: http.status_code, min_value: 500, max_value: 599, invert_match: true}}]",
        [[span(53, 0, attrs=[i_attr("http.status_code", 503)])],
         [span(54, 0, attrs=[i_attr("http.status_code", 200)])]],
        {54})
    sc["boolean"] = (
        "[{name: debug, type: boolean_attribute, boolean_attribute: {key: debug, value: true}}]",
        [[span(55, 0, attrs=[b_attr("debug", True)])],
         [span(56, 0, attrs=[b_attr("debug", False)])], [span(57, 0)]],
        {55})
    prob_traces = list(range(1000, 1200))
    sc["probabilistic"] = (
        "[{name: p, type: probabilistic, probabilistic: {hash_salt: s1, "
        "sampling_percentage: 37.5}}]",
        [[span(t, 0) for t in prob_traces]],
        {t for t in prob_traces if prob_keeps("s1", 37.5, t)})
    sc["prob_default_salt"] = (
        "[{name: p, type: probabilistic, probabilistic: {sampling_percentage: 10}}]",
        [[span(t, 0) for t in prob_traces]],
        {t for t in prob_traces if prob_keeps("default-hash-seed", 10, t)})
    # 4 traces of 3 spans against a bucket of 10 (2 x 5): the first three pass.
    sc["rate"] = ("[{name: r, type: rate_limiting, rate_limiting: {spans_per_second: 5}}]",
                  [trace(60, 3) + trace(61, 3) + trace(62, 3) + trace(63, 3)],
                  {60, 61, 62})
    sc["bytes_small"] = (
        "[{name: b, type: bytes_limiting, bytes_limiting: {bytes_per_second: 10, "
        "burst_capacity: 10}}]",
        [trace(64, 2)], set())
    sc["bytes_big"] = (
        "[{name: b, type: bytes_limiting, bytes_limiting: {bytes_per_second: 100000}}]",
        [trace(65, 2) + trace(66, 3)], {65, 66})
    sc["span_count"] = (
        "[{name: c, type: span_count, span_count: {min_spans: 2, max_spans: 3}}]",
        [trace(70, 1) + trace(71, 2) + trace(72, 3) + trace(73, 4)], {71, 72})
    sc["trace_state"] = (
        "[{name: ts, type: trace_state, trace_state: {key: tenant, values: [gold]}}]",
        [[span(74, 0, traceState="a=b, tenant=gold")], [span(75, 0, traceState="tenant=silver")],
         [span(76, 0)]],
        {74})
    sc["trace_flags"] = ("[{name: f, type: trace_flags}]",
                         [[span(77, 0, flags=1)], [span(78, 0, flags=0)], [span(79, 0)]], {77})
    sc["ottl"] = (
        "[{name: o, type: ottl_condition, ottl_condition: {error_mode: ignore, "
        "span: ['attributes[\"user\"] == \"vip\"'], spanevent: ['name == \"exception\"']}}]",
        [[span(80, 0), span(80, 1, attrs=[s_attr("user", "vip")])],
         [span(81, 0, events=[{"timeUnixNano": str(BASE_NS), "name": "exception"}])],
         [span(82, 0, attrs=[s_attr("user", "joe")],
               events=[{"timeUnixNano": str(BASE_NS), "name": "log"}])]],
        {80, 81})
    sc["and"] = (
        "[{name: a, type: and, and: {and_sub_policy: ["
        "{name: n, type: numeric_attribute, numeric_attribute: {key: code, min_value: 500}}, "
        "{name: s, type: string_attribute, string_attribute: {key: route, values: [/pay]}}]}}]",
        [[span(83, 0, attrs=[i_attr("code", 503), s_attr("route", "/pay")])],
         [span(84, 0, attrs=[i_attr("code", 503), s_attr("route", "/x")])],
         [span(85, 0, attrs=[i_attr("code", 200), s_attr("route", "/pay")])]],
        {83})
    sc["not"] = (
        "[{name: nt, type: not, not: {not_sub_policy: "
        "{name: h, type: string_attribute, string_attribute: {key: route, values: [/health]}}}}]",
        [[span(86, 0, attrs=[s_attr("route", "/health")])],
         [span(87, 0, attrs=[s_attr("route", "/pay")])]],
        {87})
    sc["drop"] = (
        "[{name: all, type: always_sample}, {name: d, type: drop, drop: {drop_sub_policy: ["
        "{name: h, type: string_attribute, string_attribute: {key: route, values: [/health]}}]}}]",
        [[span(88, 0, attrs=[s_attr("route", "/health")]), span(88, 1)],
         [span(89, 0, attrs=[s_attr("route", "/pay")])]],
        {89})
    # max 10 spans/s: /a gets 50 % (5), always_sample 50 % (5). 90: /a, 3 spans, in;
    # 91: /a again, 6 > 5, out (and no fall-through); 92: 3 spans by always_sample;
    # 93: 2 more (5, in); 94: 1 more (6), out.
    sc["composite"] = (
        "[{name: c, type: composite, composite: {max_total_spans_per_second: 10, "
        "policy_order: [ra, rest], composite_sub_policy: ["
        "{name: ra, type: string_attribute, string_attribute: {key: route, values: [/a]}}, "
        "{name: rest, type: always_sample}], "
        "rate_allocation: [{policy: ra, percent: 50}, {policy: rest, percent: 50}]}}]",
        [trace(90, 3, attrs=[s_attr("route", "/a")]) + trace(91, 3, attrs=[s_attr("route", "/a")])
         + trace(92, 3) + trace(93, 2) + trace(94, 1)],
        {90, 92, 93})
    # InvertNotSampled beats Sampled; InvertSampled alone samples.
    sc["rule"] = (
        "[{name: all, type: always_sample}, {name: inv, type: string_attribute, "
        "string_attribute: {key: route, values: [/health], invert_match: true}}]",
        [[span(95, 0, attrs=[s_attr("route", "/health")])], [span(96, 0)]],
        {96})
    # 300 traces of 1 to 20 spans, their spans shuffled over 40 requests of two
    # resources (services) each: grouping by trace ID across requests and
    # resources; kept: the error traces and the 50 % the hash keeps.
    import random
    rnd = random.Random(8)
    spans, errors = [], set()
    for t in range(2000, 2300):
        n = rnd.randint(1, 20)
        err = rnd.random() < 0.1
        if err:
            errors.add(t)
        for k in range(n):
            spans.append(span(t, k, start_ms=k, status=2 if err and k == n - 1 else 0))
    rnd.shuffle(spans)
    reqs = []
    for i in range(40):
        part = spans[i::40]
        half = len(part) // 2
        reqs.append({"resourceSpans": [
            {"resource": {"attributes": [s_attr("service.name", "a")]},
             "scopeSpans": [{"scope": {"name": "lib"}, "spans": part[:half]}]},
            {"resource": {"attributes": [s_attr("service.name", "b")]},
             "scopeSpans": [{"scope": {"name": "lib2", "version": "2"}, "spans": part[half:]}]}]})
    sc["shuffled"] = (
        "[{name: e, type: status_code, status_code: {status_codes: [ERROR]}}, "
        "{name: p, type: probabilistic, probabilistic: {hash_salt: s2, sampling_percentage: 50}}]",
        reqs, errors | {t for t in range(2000, 2300) if prob_keeps("s2", 50, t)})
    sc["labels"] = (
        "[{name: 'e\"rr\\s', type: status_code, status_code: {status_codes: [ERROR]}}, "
        "{name: slow, type: latency, latency: {threshold_ms: 500}}]",
        [[span(300, 0, 0, 100), span(300, 1, 0, 50, status=2), span(300, 2, 0, 50)],
         [span(301, 0, 0, 100), span(301, 1, 500, 100)], [span(302, 0, 0, 10)]],
        {300, 301})
    return sc


def scenario_config(sc, late_port, mem_port, bytes_port, ports, paths, mport, late_path,
                    mem_path, bytes_path):
    out = ["receivers:"]
    for name in sc:
        out += ["  otlp/%s:" % name, "    protocols:", "      http:",
                "        endpoint: 127.0.0.1:%d" % ports[name]]
    for name, port in (("late", late_port), ("mem", mem_port), ("bytes", bytes_port)):
        out += ["  otlp/%s:" % name, "    protocols:", "      http:",
                "        endpoint: 127.0.0.1:%d" % port]
    out.append("processors:")
    for name, (pol, _, _) in sc.items():
        out += ["  tail_sampling/%s:" % name, "    decision_wait: 1s",
                "    policies: %s" % pol]
    out += ["  tail_sampling/late:", "    decision_wait: 1s",
            "    decision_cache: {sampled_cache_size: 100, non_sampled_cache_size: 100000}",
            "    policies: [{name: errors, type: status_code, "
            "status_code: {status_codes: [ERROR]}}]",
            "  tail_sampling/mem:", "    decision_wait: 120s", "    num_traces: 5",
            "    policies: [{name: all, type: always_sample}]",
            "  tail_sampling/bytes:", "    decision_wait: 120s", "    max_bytes: 5000",
            "    policies: [{name: all, type: always_sample}]"]
    out.append("exporters:")
    for name in list(sc) + ["late", "mem", "bytes"]:
        path = {"late": late_path, "mem": mem_path, "bytes": bytes_path}.get(name) or paths[name]
        out += ["  file/%s:" % name, "    path: %s" % path, "    flush_interval: 50ms"]
    out += ["service:", "  telemetry:", "    metrics:",
            "      address: 127.0.0.1:%d" % mport, "  pipelines:"]
    for name in list(sc) + ["late", "mem", "bytes"]:
        out.append("    traces/%s: {receivers: [otlp/%s], processors: [tail_sampling/%s], "
                   "exporters: [file/%s]}" % (name, name, name, name))
    return "\n".join(out) + "\n"


def sent_spans(reqs):
    """trace number -> set of span ids sent."""
    out = {}
    for r in reqs:
        body = r if isinstance(r, dict) else request(r)
        for rs in body["resourceSpans"]:
            for ss in rs["scopeSpans"]:
                for sp in ss["spans"]:
                    t = TRACE_NO[sp["traceId"]]
                    out.setdefault(t, set()).add(sp["spanId"])
    return out


def run_main(args):
    sc = scenarios()
    tmp = tempfile.mkdtemp(prefix="sy-ts-")
    ports = {name: free_port() for name in sc}
    paths = {name: os.path.join(tmp, name + ".json") for name in sc}
    late_port, mem_port, bytes_port, mport = free_port(), free_port(), free_port(), free_port()
    late_path, mem_path, bytes_path = (os.path.join(tmp, n + ".json")
                                       for n in ("late", "mem", "bytes"))
    cfg = scenario_config(sc, late_port, mem_port, bytes_port, ports, paths, mport, late_path,
                          mem_path, bytes_path)
    with Router(args.bin, [args.plugin_dir], cfg) as r:
        # a. every policy
        for name, (_, reqs, _) in sc.items():
            for req in reqs:
                body = req if isinstance(req, dict) else request(req)
                st = post_json("http://127.0.0.1:%d/v1/traces" % ports[name], body)[0]
                check(st == 200, "%s: request accepted (%s)" % (name, st))
        # b. late spans: trace 200 (error) and 201 (ok)
        late_url = "http://127.0.0.1:%d/v1/traces" % late_port
        post_json(late_url, request([span(200, 0), span(200, 1, status=2), span(201, 0)]))
        # c. num_traces 5: 8 traces of 2 spans, one request each, in order
        mem_url = "http://127.0.0.1:%d/v1/traces" % mem_port
        for t in range(300, 308):
            post_json(mem_url, request(trace(t, 2)))
        # c. max_bytes 5000: 6 requests of 4 spans (~300 B encoded + 4 x 320 counted each)
        bytes_url = "http://127.0.0.1:%d/v1/traces" % bytes_port
        for t in range(400, 406):
            post_json(bytes_url, request(trace(t, 4)))

        def all_decided():
            # Every trace taken (counted as it comes) and decided: sampled + not
            # sampled + dropped (counted as each is decided) covers them all.
            text = metrics(mport)
            for name, (_, reqs, _) in sc.items():
                n = len(sent_spans(reqs))
                if metric(text, "processor_tail_sampling_new_trace_id_received_total", name) != n:
                    return False
                decided = (metric(text, "processor_tail_sampling_global_count_traces_sampled_total",
                                  name, sampled="true") or 0) + sum(
                    metric(text, "processor_tail_sampling_global_count_traces_%s_total" % k,
                           name) or 0 for k in ("not_sampled", "dropped"))
                if decided != n:
                    return False
            return metric(text, "processor_tail_sampling_sampling_traces_on_memory", "late") == 0
        wait_for("every scenario's decision", all_decided, 15)
        # Traces decided are emitted before the gauge is set; give the file exporter
        # its flush interval.
        wait_for("files flushed", lambda: all(
            len(read_spans(paths[n])) >= len(sc[n][2]) for n in sc), 5)
        text = metrics(mport)
        for name, (_, reqs, kept) in sc.items():
            sent = sent_spans(reqs)
            got = read_spans(paths[name])
            got_t = {TRACE_NO.get(t, -1) for t in got}
            check(got_t == kept, "%s: kept traces %s, expected %s" % (
                name, sorted(got_t), sorted(kept)))
            partial = [t for t in kept & got_t if got[tid(t)] != sent[t]]
            check(not partial, "%s: every kept trace whole (partial: %s)" % (name, partial))
            v = metric(text, "processor_tail_sampling_global_count_traces_sampled_total", name,
                       sampled="true")
            check(v == len(kept), "%s: global sampled count %s == %d" % (name, v, len(kept)))
            vf = metric(text, "processor_tail_sampling_global_count_traces_sampled_total", name,
                        sampled="false") or 0
            check(vf == len(sent) - len(kept), "%s: global sampled=false %s == %d" % (
                name, vf, len(sent) - len(kept)))
            nn = metric(text, "processor_tail_sampling_global_count_traces_not_sampled_total",
                        name) or 0
            nd = metric(text, "processor_tail_sampling_global_count_traces_dropped_total",
                        name) or 0
            check(nn + nd == len(sent) - len(kept), "%s: not sampled + dropped %s == %d" % (
                name, nn + nd, len(sent) - len(kept)))
        sent_homes, got_homes = span_homes(sc["shuffled"][1]), span_homes(paths["shuffled"])
        check(got_homes and all(sent_homes[k] == v for k, v in got_homes.items()),
              "shuffled: every kept span with its own resource and scope (%d spans)"
              % len(got_homes))
        check(metric(text, "processor_tail_sampling_count_traces_sampled_total", "status",
                     policy="errors", sampled="true") == 1, "status: per-policy sampled count")
        check(metric(text, "processor_tail_sampling_count_traces_sampled_total", "status",
                     policy="errors", sampled="false") == 1,
              "status: per-policy not-sampled count")
        check(metric(text, "processor_tail_sampling_global_count_traces_dropped_total",
                     "drop") == 1, "drop: counted as dropped")
        check(metric(text, "processor_tail_sampling_count_traces_sampled_total", "string_invert",
                     policy="not-health.v2", sampled="true") == 2,
              "string_invert: InvertSampled counted as sampled, under the policy's own name")
        check(metric(text, "processor_tail_sampling_count_traces_sampled_total", "string_invert",
                     policy="not-health.v2", sampled="false") == 1,
              "string_invert: InvertNotSampled counted as not sampled")
        # labels: the collector's per-policy metrics, series by series, the policy
        # name with a quote and a backslash escaped as the text format says
        q = 'e\\"rr\\\\s'  # e"rr\s rendered: e\"rr\\s
        want = {
            "processor_tail_sampling_count_traces_sampled_total": {
                (("policy", q), ("sampled", "false")): 2, (("policy", q), ("sampled", "true")): 1,
                (("policy", "slow"), ("sampled", "false")): 2,
                (("policy", "slow"), ("sampled", "true")): 1},
            "processor_tail_sampling_count_spans_sampled_total": {
                (("policy", q), ("sampled", "false")): 3, (("policy", q), ("sampled", "true")): 3,
                (("policy", "slow"), ("sampled", "false")): 4,
                (("policy", "slow"), ("sampled", "true")): 2},
            "processor_tail_sampling_global_count_traces_sampled_total": {
                (("sampled", "false"),): 1, (("sampled", "true"),): 2},
        }
        for mname, exp in want.items():
            got = series(text, mname, "labels")
            check(got == exp, "labels: %s is %r, expected %r" % (mname, got, exp))
        check(metric(text, "processor_tail_sampling_sampling_decision_latency_count_total",
                     "labels") == 3, "labels: three decisions timed")
        check((metric(text, "processor_tail_sampling_sampling_decision_timer_latency_count_total",
                      "labels") or 0) >= 1, "labels: the decision timer's runs counted")
        pk = len(sc["probabilistic"][2])
        check(40 <= pk <= 110, "probabilistic: %d of 200 kept at 37.5 %% (sanity)" % pk)

        # b. late spans follow the cached decisions
        wait_for("the late scenario's kept trace", lambda: tid(200) in read_spans(late_path), 5)
        got = read_spans(late_path)
        check(set(got) == {tid(200)} and len(got[tid(200)]) == 2,
              "late: only the error trace kept, whole, before the late spans")
        post_json(late_url, request([span(200, 5), span(201, 5)]))
        wait_for("late span of the kept trace", lambda: len(read_spans(late_path).get(
            tid(200), ())) == 3, 5)
        text = metrics(mport)
        check(metric(text, "processor_tail_sampling_early_releases_from_cache_decision_total",
                     "late", sampled="true") == 1, "late: one span released by the sampled cache")
        check(metric(text, "processor_tail_sampling_early_releases_from_cache_decision_total",
                     "late", sampled="false") == 1,
              "late: one span dropped by the non-sampled cache")
        # the sums and counts are added once a tick (1 s)
        wait_for("late: both late spans' ages counted", lambda: metric(
            metrics(mport), "processor_tail_sampling_sampling_late_span_age_count_total",
            "late") == 2, 5)
        text = metrics(mport)
        age = metric(text, "processor_tail_sampling_sampling_late_span_age_sum_total", "late")
        check(age is not None and 0 <= age <= 2 * 15, "late: late span age sum %r s" % age)
        check(tid(201) not in read_spans(late_path), "late: the dropped trace stays dropped")
        check(metric(text, "processor_tail_sampling_new_trace_id_received_total", "late") == 2,
              "late: late spans start no new trace")

        # c. num_traces: the three oldest were decided at once (decision_wait is 120s)
        wait_for("early decisions (num_traces)", lambda: len(read_spans(mem_path)) == 3, 5)
        got = read_spans(mem_path)
        check(set(got) == {tid(t) for t in (300, 301, 302)},
              "mem: the three oldest decided early: %s" % sorted(got))
        text = metrics(mport)
        check(metric(text, "processor_tail_sampling_sampling_trace_dropped_too_early_total",
                     "mem") == 3, "mem: 3 counted as decided too early")
        # The gauges are set by the processor's one-second timer.
        wait_for("mem: 5 traces held (gauge)", lambda: metric(
            metrics(mport), "processor_tail_sampling_sampling_traces_on_memory", "mem") == 5, 5)
        # c. max_bytes: held bytes stay under the bound, the rest went out early
        wait_for("early decisions (max_bytes)", lambda: len(read_spans(bytes_path)) >= 1, 5)
        wait_for("bytes: every trace taken", lambda: metric(
            metrics(mport), "processor_tail_sampling_new_trace_id_received_total", "bytes") == 6, 5)
        wait_for("bytes: the gauges set after the last one", lambda: (lambda t: (metric(
            t, "processor_tail_sampling_sampling_traces_on_memory", "bytes") or 0) + (metric(
                t, "processor_tail_sampling_sampling_trace_dropped_too_early_total", "bytes")
                or 0) == 6)(metrics(mport)), 5)
        text = metrics(mport)
        held = metric(text, "processor_tail_sampling_sampling_bytes_on_memory", "bytes")
        early = metric(text, "processor_tail_sampling_sampling_trace_dropped_too_early_total",
                       "bytes")
        on_mem = metric(text, "processor_tail_sampling_sampling_traces_on_memory", "bytes")
        check(held is not None and 0 < held <= 5000, "bytes: %s bytes held <= 5000" % held)
        check(early is not None and early >= 1 and early + on_mem == 6,
              "bytes: %s decided early + %s held == 6" % (early, on_mem))
        wait_for("bytes: the early ones written", lambda: len(read_spans(bytes_path)) == early, 5)

        # Shutdown decides what is pending: every trace of mem and bytes is written.
        rc = r.terminate()
        check(rc == 0, "router exits 0 (%s)" % rc)
        got = read_spans(mem_path)
        check(set(got) == {tid(t) for t in range(300, 308)} and
              all(len(v) == 2 for v in got.values()),
              "mem: every trace written whole after shutdown (%d)" % len(got))
        got = read_spans(bytes_path)
        check(set(got) == {tid(t) for t in range(400, 406)} and
              all(len(v) == 4 for v in got.values()),
              "bytes: every trace written whole after shutdown (%d)" % len(got))
        if check.failures:
            r.dump(60, "  | ")


def config_error(args, policies, expect, extra=""):
    port = free_port()
    cfg = ("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:%d\n"
           "processors:\n  tail_sampling:\n%s    policies: %s\n"
           "exporters:\n  nop:\n"
           "service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n"
           "    traces: {receivers: [otlp], processors: [tail_sampling], exporters: [nop]}\n"
           % (port, extra, policies))
    r = Router(args.bin, [args.plugin_dir], cfg, wait=False)
    try:
        try:
            rc = r.proc.wait(timeout=20)
        except Exception:
            rc = None
        out = r.output()
        check(rc not in (0, None), "config error exits non-zero (%s): %s" % (rc, expect))
        check(expect in out, "message %r in output:\n%s" % (expect, out[-600:]))
        check("config.yaml:" in out, "the message names the config file and line")
    finally:
        r.cleanup()


OPTIONS = {
    # name -> processor settings (YAML lines)
    "first": ["decision_wait: 1s", "sample_on_first_match: true",
              "policies: [{name: all, type: always_sample}, "
              "{name: none, type: probabilistic, probabilistic: {sampling_percentage: 0}}]"],
    "every": ["decision_wait: 1s",
              "policies: [{name: all, type: always_sample}, "
              "{name: none, type: probabilistic, probabilistic: {sampling_percentage: 0}}]"],
    "maxsize": ["decision_wait: 1s", "maximum_trace_size_bytes: 600",
                "policies: [{name: all, type: always_sample}]"],
    "root": ["decision_wait: 120s", "decision_wait_after_root_received: 500ms",
             "policies: [{name: all, type: always_sample}]"],
    "block": ["decision_wait: 120s", "num_traces: 2", "block_on_overflow: true",
              "policies: [{name: all, type: always_sample}]"],
    "droppending": ["decision_wait: 120s", "drop_pending_traces_on_shutdown: true",
                    "policies: [{name: all, type: always_sample}]"],
}


def run_options(args):
    """The other top-level keys: sample_on_first_match, maximum_trace_size_bytes,
    decision_wait_after_root_received, block_on_overflow,
    drop_pending_traces_on_shutdown."""
    tmp = tempfile.mkdtemp(prefix="sy-ts-opt-")
    ports = {n: free_port() for n in OPTIONS}
    paths = {n: os.path.join(tmp, n + ".json") for n in OPTIONS}
    mport = free_port()
    out = ["receivers:"]
    for n in OPTIONS:
        out += ["  otlp/%s:" % n, "    protocols:", "      http:",
                "        endpoint: 127.0.0.1:%d" % ports[n]]
    out.append("processors:")
    for n, lines in OPTIONS.items():
        out += ["  tail_sampling/%s:" % n] + ["    " + x for x in lines]
    out.append("exporters:")
    for n in OPTIONS:
        out += ["  file/%s:" % n, "    path: %s" % paths[n], "    flush_interval: 50ms"]
    out += ["service:", "  telemetry:", "    metrics:", "      address: 127.0.0.1:%d" % mport,
            "  pipelines:"]
    for n in OPTIONS:
        out.append("    traces/%s: {receivers: [otlp/%s], processors: [tail_sampling/%s], "
                   "exporters: [file/%s]}" % (n, n, n, n))
    url = {n: "http://127.0.0.1:%d/v1/traces" % ports[n] for n in OPTIONS}
    with Router(args.bin, [args.plugin_dir], "\n".join(out) + "\n") as r:
        post_json(url["first"], request(trace(500, 2)))
        post_json(url["every"], request(trace(501, 2)))
        # one small trace and one of 12 spans (~100 encoded bytes each)
        post_json(url["maxsize"], request(trace(502, 1) + trace(503, 12)))
        # 504 has its root; 505 only children (the root never comes)
        post_json(url["root"], request(trace(504, 3) + [span(505, 1), span(505, 2)]))
        st = [post_json(url["block"], request(trace(t, 1)))[0] for t in (506, 507, 508)]
        check(st == [200, 200, 200], "block: the first three requests accepted (%s)" % st)
        # The receiver answers once the pipeline queue took a request; wait until the
        # processor has taken the third one (it went past num_traces: the oldest
        # was decided early and the processor asked for receivers to be refused).
        wait_for("block: the third trace taken", lambda: metric(
            metrics(mport), "processor_tail_sampling_sampling_trace_dropped_too_early_total",
            "block") == 1, 10)
        st4 = post_json(url["block"], request(trace(509, 1)))[0]
        check(st4 in (429, 503), "block: past num_traces the receiver refuses (%s)" % st4)
        post_json(url["droppending"], request(trace(510, 2) + trace(511, 2)))

        def done():
            text = metrics(mport)
            return all(metric(text, "processor_tail_sampling_global_count_traces_sampled_total",
                              n, sampled="true") == 1 for n in ("first", "every", "maxsize", "root"))
        wait_for("the option scenarios' decisions", done, 10)
        wait_for("files", lambda: all(read_spans(paths[n]) for n in
                                      ("first", "every", "maxsize", "root")), 5)
        text = metrics(mport)
        check(metric(text, "processor_tail_sampling_count_traces_sampled_total",
                     "first", policy="none", sampled="false") in (None, 0),
              "sample_on_first_match: the second policy was not asked")
        check(metric(text, "processor_tail_sampling_count_traces_sampled_total",
                     "every", policy="none", sampled="false") == 1, "without it every policy is asked")
        check(set(read_spans(paths["first"])) == {tid(500)}, "sample_on_first_match: kept")
        check(set(read_spans(paths["maxsize"])) == {tid(502)},
              "maximum_trace_size_bytes: the large trace dropped, the small one kept")
        check(metric(text, "processor_tail_sampling_traces_over_maximum_size_total",
                     "maxsize") == 1, "maximum_trace_size_bytes: counted")
        check(metric(text, "processor_tail_sampling_spans_over_maximum_size_total",
                     "maxsize") == 12, "maximum_trace_size_bytes: all 12 of its spans dropped")
        got = read_spans(paths["root"])
        check(set(got) == {tid(504)} and len(got[tid(504)]) == 3,
              "decision_wait_after_root_received: the rooted trace decided early, whole")
        check(metric(text, "processor_tail_sampling_sampling_trace_dropped_too_early_total",
                      "block") == 1, "block: past the hard bound the oldest decided early")
        rc = r.terminate()
        check(rc == 0, "options router exits 0 (%s)" % rc)
        check(read_spans(paths["droppending"]) == {},
              "drop_pending_traces_on_shutdown: nothing written")
        check("dropped 2 undecided traces at shutdown" in r.output(),
              "drop_pending_traces_on_shutdown: logged with the count")
        got = read_spans(paths["root"])
        check(set(got) == {tid(504), tid(505)}, "the rootless trace decided at shutdown")


def run_errors(args):
    config_error(args, "[{name: x, type: nope}]", "unknown sampling policy type nope")
    config_error(args, "[{name: x, type: status_code, status_code: {status_codes: [BAD]}}]",
                 'unknown status code "BAD"')
    config_error(args, "[{name: x, type: always_sample}, {name: x, type: always_sample}]",
                 'duplicate policy name "x"')
    config_error(args, "[{name: x, type: string_attribute, string_attribute: {key: k, "
                 "values: ['(a'], enabled_regex_matching: true}}]", "invalid regular expression")
    config_error(args, "[{name: x, type: string_attribute, string_attribute: {key: k, "
                 "values: [a], enabled_regex_matching: true, cache_max_size: 99999999}}]",
                 "cache_max_size (99999999) must be at most 16777216")
    config_error(args, "[{name: x, type: latency, latency: {treshold_ms: 5}}]",
                 "has invalid keys: treshold_ms")
    config_error(args, "[{name: x, type: ottl_condition, ottl_condition: {span: ['name ==']}}]",
                 "ottl_condition.span[0]")
    config_error(args, "[{name: x, type: always_sample}]", "span-ingest is not supported",
                 extra="    sampling_strategy: span-ingest\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    args = ap.parse_args()
    run_main(args)
    run_options(args)
    run_errors(args)
    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
