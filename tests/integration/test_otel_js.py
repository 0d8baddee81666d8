#!/usr/bin/env python3
"""Switchyard against the real OpenTelemetry JS SDK exporters from npm.

Two modes:

  test_otel_js.py setup --src-dir tests/integration/node --node-dir BUILD/otel-js-node
      Copies package.json and package-lock.json into the node dir (under the build
      tree, so the source tree stays clean) and runs `npm ci` there when
      node_modules is missing or was installed from another lock file. Fails (does
      not skip) when node/npm are missing or the npm registry cannot be reached.

  test_otel_js.py run --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
                      --src-dir tests/integration/node --node-dir BUILD/otel-js-node
                      --protocol proto|json
      Starts switchyard as `otlp (HTTP on a free loopback port) -> batch (100ms) ->
      debug (detailed)` for traces, metrics and logs, runs node/send.mjs twice (plain
      and gzip) with the protocol's exporters (proto: exporter-*-otlp-proto, json:
      exporter-*-otlp-http), SIGTERMs the router and compares, field by field, what
      the exporters were handed (send.mjs's manifest) with what the debug exporter
      printed, plus a table of literal expectations written here
      (`-> retries: Int(3)`, `Value: 42`, ...).

Every wait is bounded; python3 standard library only.
"""
import argparse
import decimal
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

NPM_TIMEOUT = 280.0
STARTUP_TIMEOUT = 20.0
NODE_TIMEOUT = 90.0
OUTPUT_TIMEOUT = 20.0
EXIT_TIMEOUT = 15.0
MIN_NODE = (18, 19)

SPAN_KINDS = ["Internal", "Server", "Client", "Producer", "Consumer"]  # JS SpanKind 0..4
STATUS_CODES = ["Unset", "Ok", "Error"]  # JS SpanStatusCode 0..2
TEMPORALITIES = ["Delta", "Cumulative"]  # JS AggregationTemporality 0..1
DATA_TYPES = {0: "Histogram", 1: "ExponentialHistogram", 2: "Gauge", 3: "Sum"}  # DataPointType
SEVERITIES = ["Trace", "Debug", "Info", "Warn", "Error", "Fatal"]


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------------------
# setup: npm ci into the build tree
# ---------------------------------------------------------------------------


def tool_version(cmd):
    try:
        out = subprocess.run(cmd + ["--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    if out.returncode != 0:
        return None, out.stderr.strip()
    return out.stdout.strip(), ""


def check_node():
    ver, err = tool_version(["node"])
    if ver is None:
        fail("node is not installed or does not run (%s); deploy/debian-deps.sh --test "
             "installs it" % err)
    m = re.match(r"v(\d+)\.(\d+)", ver)
    if not m or (int(m.group(1)), int(m.group(2))) < MIN_NODE:
        fail("node %s is too old: the OpenTelemetry JS SDK needs >= %d.%d" % ((ver,) + MIN_NODE))
    return ver


def copy_if_changed(src, dst):
    """Copies src to dst atomically unless dst has the same bytes already."""
    with open(src, "rb") as f:
        data = f.read()
    try:
        with open(dst, "rb") as f:
            if f.read() == data:
                return
    except OSError:
        pass
    tmp = "%s.tmp.%d" % (dst, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, dst)


def setup(args):
    node_ver = check_node()
    npm_ver, err = tool_version(["npm"])
    if npm_ver is None:
        fail("npm is not installed or does not run (%s)" % err)
    os.makedirs(args.node_dir, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        copy_if_changed(os.path.join(args.src_dir, name), os.path.join(args.node_dir, name))
    with open(os.path.join(args.node_dir, "package-lock.json"), "rb") as f:
        want = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(args.node_dir, "node_modules", ".switchyard-lock-sha256")
    try:
        with open(stamp) as f:
            if f.read().strip() == want:
                print("node %s, npm %s: node_modules is up to date in %s" %
                      (node_ver, npm_ver, args.node_dir))
                return 0
    except OSError:
        pass
    print("node %s, npm %s: npm ci in %s" % (node_ver, npm_ver, args.node_dir), flush=True)
    env = dict(os.environ)
    env.setdefault("npm_config_update_notifier", "false")
    t0 = time.monotonic()
    try:
        out = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=args.node_dir,
                             capture_output=True, text=True, timeout=NPM_TIMEOUT, env=env,
                             stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        fail("npm ci did not finish in %.0f s: is the npm registry reachable?" % NPM_TIMEOUT)
    sys.stdout.write(out.stdout)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-6000:])
        fail("npm ci failed (exit %d) after %.1f s: the OpenTelemetry JS packages could not be "
             "installed from the npm registry; see npm's output above" %
             (out.returncode, time.monotonic() - t0))
    with open(stamp, "w") as f:
        f.write(want + "\n")
    print("npm ci done in %.1f s" % (time.monotonic() - t0))
    return 0


# ---------------------------------------------------------------------------
# How the debug exporter spells things (the collector's otlptext)
# ---------------------------------------------------------------------------


def go_json_float(v):
    """A float as Go's encoding/json writes it (as pcommon's AsString does)."""
    if v != v or v in (float("inf"), float("-inf")):
        return {float("inf"): "+Inf", float("-inf"): "-Inf"}.get(v, "NaN")
    a = abs(v)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        mant, exp = ("%r" % v).split("e")
        return "%se%s%d" % (mant, "-" if int(exp) < 0 else "+", abs(int(exp)))
    return format(decimal.Decimal(repr(v)), "f")


def go_json(v):
    """A list or map as Go's encoding/json writes it: compact, map keys sorted."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return go_json_float(v)
    if isinstance(v, (int, str)) or v is None:
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(go_json(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join("%s:%s" % (json.dumps(k, ensure_ascii=False), go_json(v[k]))
                              for k in sorted(v)) + "}"
    raise TypeError(type(v))


def otlp_value(v):
    """A JSON value from the manifest as otlptext prints the AnyValue it became."""
    if isinstance(v, bool):
        return "Bool(%s)" % ("true" if v else "false")
    if isinstance(v, int):
        return "Int(%d)" % v
    if isinstance(v, float):
        return "Double(%s)" % go_json_float(v)
    if isinstance(v, str):
        return "Str(%s)" % v
    if isinstance(v, list):
        return "Slice(%s)" % go_json(v)
    if isinstance(v, dict):
        return "Map(%s)" % go_json(v)
    if v is None:
        return "Empty()"
    raise TypeError(type(v))


def otlp_attrs(d):
    return {k: otlp_value(v) for k, v in (d or {}).items()}


def go_time(ns):
    """Go's time.Time.String() in UTC, trailing zeros of the fraction cut."""
    ns = int(ns)
    sec, frac = divmod(ns, 1000000000)
    t = time.gmtime(sec)
    s = time.strftime("%Y-%m-%d %H:%M:%S", t)
    if frac:
        s += "." + ("%09d" % frac).rstrip("0")
    return s + " +0000 UTC"


def severity_name(n):
    if n == 0:
        return "Unspecified"
    if not 1 <= n <= 24:
        return ""
    group, step = divmod(n - 1, 4)
    return SEVERITIES[group] + ("" if step == 0 else str(step + 1))


# ---------------------------------------------------------------------------
# Parsing the debug exporter's detailed output
# ---------------------------------------------------------------------------

LOG_PREFIX_RE = re.compile(r"^\d{4}-\d\d-\d\dT[^\t]*\t[^\t]*\t[^\t]*\t(.*)$")
RESOURCE_RE = re.compile(r"^(ResourceSpans|ResourceMetrics|ResourceLog) #\d+$")
ATTR_RE = re.compile(r"^( *)-> (.*?): (.*)$")
SPAN_FIELD_RE = re.compile(r"^    ([A-Za-z][A-Za-z ]*?) *: (.*)$")
FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z ]*): ?(.*)$")


class Parsed:
    def __init__(self):
        self.spans = []
        self.metrics = []
        self.logs = []
        self.problems = []


def parse_debug(lines):
    """The spans, metrics and log records of every detailed dump in lines.

    Each item is a dict of the printed fields plus "resource" (attributes) and
    "scope" ("name version"). Attribute values are kept as printed ("Int(3)").
    """
    out = Parsed()
    signal_ = None  # "traces" | "metrics" | "logs" while inside a dump
    resource = scope = None
    item = None  # the span, metric or log record being read
    sub = None  # the span event or data point being read
    attrs = None  # the dict that "-> k: v" lines go to
    mode = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        m = LOG_PREFIX_RE.match(line)
        if m:
            line = m.group(1)
            if not RESOURCE_RE.match(line):
                signal_ = None  # a log line ends a dump
                continue
        m = RESOURCE_RE.match(line)
        if m:
            signal_ = {"ResourceSpans": "traces", "ResourceMetrics": "metrics",
                       "ResourceLog": "logs"}[m.group(1)]
            resource = {}
            scope = ""
            item = sub = attrs = None
            mode = None
            continue
        if signal_ is None:
            continue
        if line.startswith(("Resource SchemaURL:", "ScopeSpans SchemaURL:",
                            "ScopeMetrics SchemaURL:", "ScopeLogs SchemaURL:")):
            continue
        if line == "Resource attributes:":
            attrs, mode = resource, "attrs"
            continue
        if re.match(r"^Scope(Spans|Metrics|Logs) #\d+$", line):
            item = sub = attrs = None
            continue
        if line.startswith("InstrumentationScope "):
            if line.startswith("InstrumentationScope attributes:"):
                attrs, mode = {}, "attrs"
            else:
                scope = line[len("InstrumentationScope "):]
            continue
        if re.match(r"^(Span|Metric|LogRecord) #\d+$", line):
            item = {"resource": resource, "scope": scope, "attributes": {}}
            sub = attrs = mode = None
            if signal_ == "traces":
                item["events"] = []
                out.spans.append(item)
            elif signal_ == "metrics":
                item["points"] = []
                out.metrics.append(item)
                mode = None
            else:
                out.logs.append(item)
            continue
        m = ATTR_RE.match(line)
        if item is None and m and mode == "attrs" and len(m.group(1)) == 5:
            attrs[m.group(2)] = m.group(3)  # resource or scope attributes
            continue
        if item is None:
            out.problems.append("line outside any item: %r" % line)
            continue
        if signal_ == "traces":
            m = SPAN_FIELD_RE.match(line)
            if m and sub is None and not line.startswith("     "):
                item[m.group(1)] = m.group(2)
                continue
            if line == "Attributes:":
                attrs, mode = item["attributes"], "attrs"
                continue
            if line in ("Events:", "Links:"):
                attrs = mode = None
                continue
            if re.match(r"^SpanEvent #\d+$", line):
                sub = {"attributes": {}}
                item["events"].append(sub)
                attrs, mode = None, "event"
                continue
            if re.match(r"^SpanLink #\d+$", line):
                sub = {"attributes": {}}
                item.setdefault("links", []).append(sub)
                attrs, mode = None, "event"
                continue
            if mode == "event" and line in ("     -> Attributes::", "     -> Attributes:"):
                # otlptext writes the header "     -> Attributes:" followed by ":".
                attrs, mode = sub["attributes"], "event_attrs"
                continue
            m = ATTR_RE.match(line)
            if m and mode == "event" and len(m.group(1)) == 5:
                sub[m.group(2)] = m.group(3)
                continue
            if m and mode == "event_attrs" and len(m.group(1)) == 10:
                attrs[m.group(2)] = m.group(3)
                continue
            if m and mode == "attrs" and len(m.group(1)) == 5:
                attrs[m.group(2)] = m.group(3)
                continue
            out.problems.append("unparsed span line: %r" % line)
            continue
        if signal_ == "metrics":
            if line == "Descriptor:":
                mode, attrs = "desc", None
                continue
            if line == "Data point attributes:":
                attrs, mode = sub["attributes"], "attrs"
                continue
            m = re.match(r"^(Number|Histogram|ExponentialHistogram|Summary)DataPoints #\d+$", line)
            if m:
                sub = {"kind": m.group(1), "attributes": {}, "bounds": [], "buckets": []}
                item["points"].append(sub)
                attrs, mode = None, "point"
                continue
            m = ATTR_RE.match(line)
            if m and len(m.group(1)) == 5 and mode == "desc":
                item[m.group(2)] = m.group(3)
                continue
            if m and len(m.group(1)) == 5 and mode == "attrs":
                attrs[m.group(2)] = m.group(3)
                continue
            m = re.match(r"^ExplicitBounds #\d+: (.*)$", line)
            if m and sub is not None:
                sub["bounds"].append(m.group(1))
                continue
            m = re.match(r"^Buckets #\d+, Count: (.*)$", line)
            if m and sub is not None:
                sub["buckets"].append(m.group(1))
                continue
            m = FIELD_RE.match(line)
            if m and sub is not None:
                sub[m.group(1)] = m.group(2)
                mode = "point"
                continue
            out.problems.append("unparsed metric line: %r" % line)
            continue
        # logs
        if line == "Attributes:":
            attrs, mode = item["attributes"], "attrs"
            continue
        m = ATTR_RE.match(line)
        if m and mode == "attrs" and len(m.group(1)) == 5:
            attrs[m.group(2)] = m.group(3)
            continue
        m = FIELD_RE.match(line)
        if m:
            item[m.group(1)] = m.group(2)
            mode = None
            continue
        out.problems.append("unparsed log line: %r" % line)
    return out


# ---------------------------------------------------------------------------
# What the manifest says must have been printed
# ---------------------------------------------------------------------------


def expected_span(s):
    return {
        "Trace ID": s["traceId"],
        "Parent ID": s["parentSpanId"],
        "ID": s["spanId"],
        "Name": s["name"],
        "Kind": SPAN_KINDS[s["kind"]],
        "Start time": go_time(s["start"]),
        "End time": go_time(s["end"]),
        "Status code": STATUS_CODES[s["status"]["code"]],
        "Status message": s["status"]["message"],
        "DroppedAttributesCount": "0",
        "DroppedEventsCount": "0",
        "DroppedLinksCount": "0",
        "attributes": otlp_attrs(s["attributes"]),
        "events": [{"Name": e["name"], "Timestamp": go_time(e["time"]),
                    "DroppedAttributesCount": "0", "attributes": otlp_attrs(e["attributes"])}
                   for e in s["events"]],
        "resource": otlp_attrs(s["resource"]),
        "scope": "%s %s" % (s["scope"]["name"], s["scope"]["version"]),
    }


def fmt_f(v):
    return "%f" % v


def expected_metric(m):
    out = {
        "Name": m["name"],
        "Description": m["description"],
        "Unit": m["unit"],
        "DataType": DATA_TYPES[m["dataPointType"]],
        "resource": otlp_attrs(m["resource"]),
        "scope": "%s %s" % (m["scope"]["name"], m["scope"]["version"]),
        "points": [],
    }
    if out["DataType"] == "Sum":
        out["IsMonotonic"] = "true" if m["isMonotonic"] else "false"
    if out["DataType"] in ("Sum", "Histogram"):
        out["AggregationTemporality"] = TEMPORALITIES[m["temporality"]]
    for p in m["points"]:
        e = {"attributes": otlp_attrs(p["attributes"]), "StartTimestamp": go_time(p["start"]),
             "Timestamp": go_time(p["time"]), "bounds": [], "buckets": []}
        if out["DataType"] == "Histogram":
            h = p["value"]
            e["kind"] = "Histogram"
            e["Count"] = str(h["count"])
            e["Sum"] = fmt_f(h["sum"])
            if h.get("min") is not None:
                e["Min"] = fmt_f(h["min"])
            if h.get("max") is not None:
                e["Max"] = fmt_f(h["max"])
            e["bounds"] = [fmt_f(b) for b in h["buckets"]["boundaries"]]
            e["buckets"] = [str(c) for c in h["buckets"]["counts"]]
        else:
            e["kind"] = "Number"
            v = p["value"]
            e["Value"] = str(int(v)) if m["valueType"] == "int" else fmt_f(v)
        out["points"].append(e)
    return out


def expected_log(r):
    e = {
        "ObservedTimestamp": go_time(r["observed"]),
        "Timestamp": go_time(r["time"]),
        "SeverityText": r["severityText"],
        "SeverityNumber": "%s(%d)" % (severity_name(r["severityNumber"]), r["severityNumber"]),
        "Body": otlp_value(r["body"]),
        "attributes": otlp_attrs(r["attributes"]),
        "Trace ID": r["traceId"],
        "Span ID": r["spanId"],
        "Flags": str(r["flags"]),
        "resource": otlp_attrs(r["resource"]),
        "scope": "%s %s" % (r["scope"]["name"], r["scope"]["version"]),
    }
    if r["eventName"]:
        e["EventName"] = r["eventName"]
    return e


def diff_dicts(where, want, got, diffs):
    """Appends a line per field whose printed value differs from the sent one."""
    for k in sorted(set(want) | set(got)):
        if k in ("events", "points", "links"):
            continue
        w, g = want.get(k), got.get(k)
        if isinstance(w, dict) or isinstance(g, dict):
            diff_dicts("%s %s" % (where, k), w or {}, g or {}, diffs)
        elif w != g:
            if w is None:
                diffs.append("%s: %r printed but not sent (%r)" % (where, k, g))
            elif g is None:
                diffs.append("%s: %r sent as %r, not printed" % (where, k, w))
            else:
                diffs.append("%s: %r sent as %r, printed as %r" % (where, k, w, g))


def compare_lists(where, want, got, key, diffs):
    if len(want) != len(got):
        diffs.append("%s: %d sent, %d printed" % (where, len(want), len(got)))
    by_key = {}
    for g in got:
        by_key.setdefault(key(g), []).append(g)
    for w in want:
        cands = by_key.get(key(w), [])
        if len(cands) != 1:
            diffs.append("%s %r: printed %d times (want once)" % (where, key(w), len(cands)))
            continue
        diff_dicts("%s %r" % (where, key(w)), w, cands[0], diffs)


def compare_run(manifest, parsed, diffs):
    """Compares one send.mjs run's manifest with the parsed debug output."""
    run = manifest["prefix"]
    mine = lambda items: [i for i in items if i["resource"].get("test.run") == "Str(%s)" % run]

    # Spans: each name exactly once, every field equal.
    want = [expected_span(s) for s in manifest["spans"]]
    got = mine(parsed.spans)
    if len(got) != len(want):
        diffs.append("run %s: %d spans sent, %d printed" % (run, len(want), len(got)))
    for w in want:
        cands = [g for g in parsed.spans if g.get("Name") == w["Name"]]
        if len(cands) != 1:
            diffs.append("span %s: printed %d times (want exactly once)" % (w["Name"], len(cands)))
            continue
        g = cands[0]
        diff_dicts("span %s" % w["Name"], w, g, diffs)
        compare_lists("span %s event" % w["Name"], w["events"], g["events"],
                      lambda e: e.get("Name"), diffs)
        if g.get("links"):
            diffs.append("span %s: links printed, none sent" % w["Name"])

    # Metrics: one printed metric per metric in each export, in export order.
    want_m = [expected_metric(m) for m in manifest["metrics"]]
    got_m = mine(parsed.metrics)
    names = sorted(set(m["Name"] for m in want_m) | set(m.get("Name") for m in got_m))
    for name in names:
        ws = [m for m in want_m if m["Name"] == name]
        gs = [m for m in got_m if m.get("Name") == name]
        if len(ws) != len(gs):
            diffs.append("run %s metric %s: sent %d times, printed %d times" %
                         (run, name, len(ws), len(gs)))
            continue
        for i, (w, g) in enumerate(zip(ws, gs)):
            where = "run %s metric %s #%d" % (run, name, i)
            diff_dicts(where, w, g, diffs)
            compare_lists(where + " point", w["points"], g["points"],
                          lambda p: json.dumps(p.get("attributes"), sort_keys=True), diffs)

    # Logs: identified by their body, which names the run.
    compare_lists("run %s log" % run, [expected_log(r) for r in manifest["logs"]],
                  mine(parsed.logs), lambda r: r.get("Body"), diffs)


# Literal expectations, independent of the manifest: what send.mjs is written to
# send, as the collector prints it. {P} is the run's prefix.
LITERAL_SPANS = {
    "{P}-span-1": {
        "Kind": "Server", "Status code": "Ok", "Parent ID": "",
        "attributes": {
            "http.method": "Str(GET)", "http.route": "Str(/api/items)", "retries": "Int(3)",
            "big.int": "Int(1234567890123)", "negative": "Int(-17)", "ratio": "Double(0.25)",
            "pi.approx": "Double(3.14159)", "cached": "Bool(true)", "is.test": "Bool(false)",
            "tags": 'Slice(["alpha","beta"])', "codes": "Slice([200,404])",
            "weights": "Slice([0.5,1.5])", "flags": "Slice([true,false])",
        },
        "events": [{"Name": "cache.miss",
                    "attributes": {"cache.key": "Str(item:42)", "attempt": "Int(2)"}}],
    },
    "{P}-span-2": {
        "Kind": "Client", "Status code": "Error", "Status message": "upstream timed out",
        "attributes": {"peer.service": "Str(inventory-db)"},
        "events": [{"Name": "exception",
                    "attributes": {"exception.type": "Str(TimeoutError)",
                                   "exception.message": "Str(upstream timed out)"}}],
    },
    "{P}-span-3": {"Kind": "Producer", "attributes": {"span.index": "Int(3)",
                                                      "test.run": "Str({P})"}},
    "{P}-span-4": {"Kind": "Consumer", "attributes": {"span.index": "Int(4)",
                                                      "test.run": "Str({P})"}},
    "{P}-span-5": {"Kind": "Internal", "attributes": {"span.index": "Int(5)",
                                                      "test.run": "Str({P})"}},
}
LITERAL_RESOURCE = {"service.name": "Str(js-test)", "service.version": "Str(1.2.3)",
                    "test.run": "Str({P})"}
LITERAL_METRICS = {
    "js.requests": {"DataType": "Sum", "IsMonotonic": "true", "Unit": "{request}",
                    "AggregationTemporality": "Cumulative",
                    "points": [({"http.method": "Str(GET)", "http.route": "Str(/a)"},
                                {"Value": "42"}),
                               ({"http.method": "Str(POST)", "http.route": "Str(/b)",
                                 "ok": "Bool(true)"}, {"Value": "1"})]},
    "js.queue.depth": {"DataType": "Sum", "IsMonotonic": "false",
                       "points": [({"queue": "Str(default)"}, {"Value": "7"})]},
    "js.latency": {"DataType": "Histogram", "Unit": "ms",
                   "points": [({"http.route": "Str(/a)"},
                               {"Count": "4", "Sum": "245.500000", "Min": "5.000000",
                                "Max": "150.500000",
                                "bounds": ["10.000000", "50.000000", "100.000000"],
                                "buckets": ["1", "1", "1", "1"]})]},
    "js.temperature": {"DataType": "Gauge", "Unit": "Cel",
                       "points": [({"room": "Str(lab)"}, {"Value": "21.500000"})]},
}
LITERAL_LOGS = {
    "Str({P} log one: user logged in)": {
        "SeverityText": "INFO", "SeverityNumber": "Info(9)", "Trace ID": "", "Span ID": "",
        "attributes": {"user.id": "Str(u-1001)", "login.attempts": "Int(1)",
                       "login.ok": "Bool(true)"}},
    "Str({P} log two: payment failed)": {
        "SeverityText": "ERROR", "SeverityNumber": "Error(17)", "Flags": "1",
        "attributes": {"error.code": "Int(502)", "amount": "Double(19.99)",
                       "retry.ids": 'Slice(["r1","r2"])'}},
    'Map({"count":3,"message":"{P} log three","nested":{"ok":false}})': {
        "SeverityText": "WARNING", "SeverityNumber": "Warn2(14)", "EventName": "js.test.event",
        "attributes": {"component": "Str(checkout)"}},
}


def sub_p(v, p):
    if isinstance(v, str):
        return v.replace("{P}", p)
    if isinstance(v, dict):
        return {sub_p(k, p): sub_p(x, p) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [sub_p(x, p) for x in v]
    return v


def check_subset(where, want, got, diffs):
    for k, w in want.items():
        g = got.get(k)
        if isinstance(w, dict):
            check_subset("%s %s" % (where, k), w, g or {}, diffs)
        elif g != w:
            diffs.append("%s: %r should print as %r, printed %r" % (where, k, w, g))


def check_literals(p, parsed, diffs):
    spans = {s.get("Name"): s for s in parsed.spans}
    for name, want in sub_p(LITERAL_SPANS, p).items():
        got = spans.get(name)
        if got is None:
            diffs.append("span %s: not printed" % name)
            continue
        events = want.pop("events", [])
        check_subset("span %s" % name, want, got, diffs)
        check_subset("span %s resource" % name, sub_p(LITERAL_RESOURCE, p), got["resource"], diffs)
        for i, we in enumerate(events):
            ge = got["events"][i] if i < len(got["events"]) else {}
            check_subset("span %s event #%d" % (name, i), we, ge, diffs)
    s1, s2 = spans.get(p + "-span-1"), spans.get(p + "-span-2")
    if s1 and s2:
        for k, ref in (("Parent ID", "ID"), ("Trace ID", "Trace ID")):
            if s2.get(k) != s1.get(ref) or not s1.get(ref):
                diffs.append("span %s-span-2 %s %r is not span-1's %s %r" %
                             (p, k, s2.get(k), ref, s1.get(ref)))
    metrics = [m for m in parsed.metrics if m["resource"].get("test.run") == "Str(%s)" % p]
    for name, want in LITERAL_METRICS.items():
        got = [m for m in metrics if m.get("Name") == name]
        if not got:
            diffs.append("run %s metric %s: not printed" % (p, name))
            continue
        want = dict(want)
        points = want.pop("points")
        for g in got:
            check_subset("run %s metric %s" % (p, name), want, g, diffs)
            check_subset("run %s metric %s resource" % (p, name), sub_p(LITERAL_RESOURCE, p),
                         g["resource"], diffs)
            for attrs, fields in points:
                gp = [x for x in g["points"] if x["attributes"] == attrs]
                if len(gp) != 1:
                    diffs.append("run %s metric %s: point %s printed %d times" %
                                 (p, name, attrs, len(gp)))
                    continue
                check_subset("run %s metric %s point %s" % (p, name, attrs), fields, gp[0], diffs)
            if len(g["points"]) != len(points):
                diffs.append("run %s metric %s: %d points printed, want %d" %
                             (p, name, len(g["points"]), len(points)))
    logs = {r.get("Body"): r for r in parsed.logs}
    for body, want in sub_p(LITERAL_LOGS, p).items():
        got = logs.get(body)
        if got is None:
            diffs.append("log %s: not printed" % body)
            continue
        check_subset("log %s" % body, want, got, diffs)
        check_subset("log %s resource" % body, sub_p(LITERAL_RESOURCE, p), got["resource"], diffs)
    two = logs.get("Str(%s log two: payment failed)" % p)
    if two and s1 and (two.get("Trace ID") != s1.get("Trace ID") or
                       two.get("Span ID") != s1.get("ID")):
        diffs.append("log two of %s: Trace ID/Span ID %s/%s, want span-1's %s/%s" %
                     (p, two.get("Trace ID"), two.get("Span ID"), s1.get("Trace ID"), s1.get("ID")))


# ---------------------------------------------------------------------------
# run: the router, the SDK, the comparison
# ---------------------------------------------------------------------------

CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:{port}
processors:
  batch:
    timeout: 100ms
exporters:
  debug:
    verbosity: detailed
    sampling_initial: 1000000
    sampling_thereafter: 1
service:
  telemetry:
    metrics:
      level: none
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
    metrics:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
    logs:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
"""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_lines(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace").splitlines()


def wait_for(pred, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        if proc is not None and proc.poll() is not None:
            return pred()
        time.sleep(0.05)
    return False


def dump(path, n=150):
    lines = read_lines(path)
    print("--- last %d of %d lines of the router's stderr (%s) ---" % (min(n, len(lines)),
                                                                       len(lines), path),
          file=sys.stderr)
    for line in lines[-n:]:
        print("  | " + line, file=sys.stderr)


def run(args):
    check_node()
    nm = os.path.join(args.node_dir, "node_modules", "@opentelemetry", "sdk-trace-base")
    if not os.path.isdir(nm):
        fail("%s is missing: the integration.node_setup test (npm ci) did not run or failed"
             % nm)
    # ES modules resolve packages from the script's own directory: run a fresh copy
    # of the scripts from the node dir, where node_modules is.
    for name in os.listdir(args.src_dir):
        if name.endswith(".mjs"):
            copy_if_changed(os.path.join(args.src_dir, name), os.path.join(args.node_dir, name))

    tmp = tempfile.mkdtemp(prefix="sy-otel-js-%s-" % args.protocol)
    port = free_port()
    cfg = os.path.join(tmp, "config.yaml")
    with open(cfg, "w") as f:
        f.write(CONFIG.format(port=port))
    err_path = os.path.join(tmp, "stderr.log")
    err_f = open(err_path, "wb")
    out_f = open(os.path.join(tmp, "stdout.log"), "wb")
    proc = subprocess.Popen([args.bin, "--config", cfg, "--plugin-dir", args.plugin_dir],
                            stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f)
    ok = False
    try:
        if not wait_for(lambda: any("Everything is ready" in l for l in read_lines(err_path)),
                        STARTUP_TIMEOUT, proc):
            dump(err_path)
            fail("switchyard did not log 'Everything is ready' within %.0f s (exit %s)" %
                 (STARTUP_TIMEOUT, proc.poll()))

        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env["OTEL_LOG_LEVEL"] = "warn"
        manifests = []
        for gzip in (False, True):
            prefix = args.protocol + ("gz" if gzip else "")
            mpath = os.path.join(tmp, prefix + ".json")
            cmd = ["node", os.path.join(args.node_dir, "send.mjs"),
                   "--endpoint", "http://127.0.0.1:%d" % port, "--protocol", args.protocol,
                   "--prefix", prefix, "--manifest", mpath] + (["--gzip"] if gzip else [])
            print("$ " + " ".join(cmd), flush=True)
            try:
                res = subprocess.run(cmd, cwd=args.node_dir, env=env, capture_output=True,
                                     text=True, timeout=NODE_TIMEOUT, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                dump(err_path)
                fail("send.mjs (%s) did not finish within %.0f s" % (prefix, NODE_TIMEOUT))
            sys.stdout.write(res.stdout)
            sys.stdout.flush()
            if res.returncode != 0:
                sys.stderr.write(res.stderr[-6000:])
                dump(err_path)
                fail("send.mjs (%s) exited %d: an OTLP export was not acknowledged with success"
                     % (prefix, res.returncode))
            with open(mpath) as f:
                manifests.append(json.load(f))

        # Everything should be printed within the batch timeout; wait (bounded) for
        # the last of each run's items before stopping the router.
        def all_printed():
            text = "\n".join(read_lines(err_path))
            return all(("    Name           : %s" % s["name"]) in text
                       for m in manifests for s in m["spans"]) and \
                all(("%s log one" % m["prefix"]) in text for m in manifests) and \
                text.count("     -> Name: js.temperature") >= len(manifests)

        printed = wait_for(all_printed, OUTPUT_TIMEOUT, proc)
        t0 = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            dump(err_path)
            fail("switchyard did not exit within %.0f s of SIGTERM" % EXIT_TIMEOUT)
        print("switchyard exited %d %.2f s after SIGTERM" % (rc, time.monotonic() - t0))

        diffs = []
        if rc != 0:
            diffs.append("switchyard exited %d after SIGTERM (want 0)" % rc)
        if not printed:
            diffs.append("not every item was printed within %.0f s of the last export"
                         % OUTPUT_TIMEOUT)
        parsed = parse_debug(read_lines(err_path))
        diffs.extend(parsed.problems[:20])
        for m in manifests:
            if not m["spans"] or not m["metrics"] or not m["logs"]:
                diffs.append("run %s: the manifest is missing a signal (%d spans, %d metrics, "
                             "%d logs)" % (m["prefix"], len(m["spans"]), len(m["metrics"]),
                                           len(m["logs"])))
            compare_run(m, parsed, diffs)
            check_literals(m["prefix"], parsed, diffs)
        if diffs:
            dump(err_path, 400)
            print("--- %d differences between what the SDK sent and what the debug exporter "
                  "printed ---" % len(diffs), file=sys.stderr)
            for d in diffs:
                print("  " + d, file=sys.stderr)
            fail("otel-js %s: %d differences" % (args.protocol, len(diffs)))
        n_sp = sum(len(m["spans"]) for m in manifests)
        n_mp = sum(len(p["points"]) for m in manifests for p in m["metrics"])
        n_lg = sum(len(m["logs"]) for m in manifests)
        print("otel-js %s: %d spans, %d metric data points and %d log records sent by the "
              "OpenTelemetry JS SDK came out of the debug exporter field for field" %
              (args.protocol, n_sp, n_mp, n_lg))
        ok = True
        return 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err_f.close()
        out_f.close()
        if ok and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("kept %s" % tmp, file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("setup")
    s.add_argument("--src-dir", required=True)
    s.add_argument("--node-dir", required=True)
    r = sub.add_parser("run")
    r.add_argument("--bin", required=True)
    r.add_argument("--plugin-dir", required=True)
    r.add_argument("--src-dir", required=True)
    r.add_argument("--node-dir", required=True)
    r.add_argument("--protocol", choices=["proto", "json"], required=True)
    r.add_argument("--keep", action="store_true", help="keep the temp dir with the logs")
    args = ap.parse_args()
    for k in ("bin", "plugin_dir", "src_dir", "node_dir"):
        if getattr(args, k, None):
            setattr(args, k, os.path.abspath(getattr(args, k)))
    return setup(args) if args.mode == "setup" else run(args)


if __name__ == "__main__":
    sys.exit(main())
