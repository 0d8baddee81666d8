#!/usr/bin/env python3
"""integration.probabilistic_sampler: the `probabilistic_sampler` processor through
the real binary and its .so: OTLP/JSON is posted to the otlp receiver, goes
through the sampler and is written by the file exporter (format json).

The expected decisions come from two places that are not our C code:
  - vectors from the collector's own tests (opentelemetry-collector-contrib,
    processor/probabilisticsamplerprocessor/tracesprocessor_test.go:
    TestEmptyHashFunction, Test_tracesamplerprocessor_TraceState,
    Test_tracesamplerprocessor_TraceStateErrors,
    Test_tracesamplerprocessor_HashSeedTraceState, Test_parseSpanSamplingPriority;
    logsprocessor_test.go: TestLogsSampling, TestLogsSamplingState,
    TestLogsMissingRandomness; config_test.go: TestLoadInvalidConfig);
  - a small reimplementation of the documented algorithms in this file (FNV-1a of
    the seed and the id, 14 bits against percent * 163.84 in float32; the spec's
    56-bit randomness and thresholds), checked first against the collector's hash
    vectors.

  a. hash_seed: every kept/dropped decision of 6000 trace ids at several seeds and
     percentages equals the reference, with rv and th written as the collector;
  b. statistics: kept share within 4 binomial sigmas for 1/10/25/50/90 % in
     hash_seed and proportional modes (fixed ids);
  c. sampling.priority of every type;
  d. tracestate th/rv vectors (equalizing and proportional), fail_closed errors;
  e. two tiers: equalizing 50 % then 25 % keeps 25 %, a subset of the 50 % set;
     and two routers (OTLP/HTTP between them) keep exactly the spec's ids with th:c;
  f. logs: trace id and record attribute sources, priority, thresholds;
  g. bad configurations refused with the collector's messages and file:line;
  h. the own metrics.

    test_probabilistic_sampler.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, Router, free_port, post_json, wait_for  # noqa: E402

check = Checks()
failures = check.failures

# --- the reference: the documented algorithms, independently of the C code ---

MAX = 1 << 56


def fnv1a32(seed, data):
    h = 0x811C9DC5
    for b in struct.pack("<I", seed) + bytes(data):
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def hash_scaled(pct):
    """uint32(pct * 163.84) computed in float32, as the collector keeps it."""
    pct = min(f32(pct), 100.0)
    return int(f32(pct * f32(163.84)))


def hash_randomness(data, seed):
    """randomnessFromBytes: the 56-bit value whose top 14 bits are 0x3fff - hash."""
    h = fnv1a32(seed, data)
    hashed = h & 0x3FFF
    unused18 = h >> 14
    return ((0x3FFF - hashed) << 42) | ((unused18 ^ (unused18 << 10)) << 14) | hashed


def hash_keeps(data, seed, pct):
    return (fnv1a32(seed, data) & 0x3FFF) < hash_scaled(pct)


def tvalue(th):
    if th == 0:
        return "0"
    if th >= MAX:
        return ""
    return ("%014x" % th).rstrip("0")


def round_half_away(x):
    f = math.floor(x)
    return f + 1 if x - f >= 0.5 else f


def prob_to_threshold(p, prec):
    """ProbabilityToThresholdWithPrecision; None when p is out of [2^-56, 1]."""
    if not (p >= 2.0 ** -56 and p <= 1):
        return None
    if p == 1:
        return 0
    ef, er = math.frexp(p)[1], math.frexp(1 - p)[1]
    prec = min(14, max(prec + int(ef / -4), prec + int(er / -4)))
    th = MAX - int(round_half_away(p * MAX))
    shift = 4 * (14 - prec)
    if shift:
        th = ((th + (1 << (shift - 1))) >> shift) << shift
    return th


def w3c_randomness(tid_hex):
    return int(tid_hex[18:], 16)


# --- the router ---------------------------------------------------------------

def config(cases, metrics_port=None):
    """One receiver, processor chain, file exporter and pipeline per case:
    cases = [(signal, [processor yaml, ...], port, path)]."""
    out = ["receivers:"]
    for i, (_, _, port, _) in enumerate(cases):
        out += ["  otlp/c%d:" % i, "    protocols:", "      http:",
                "        endpoint: 127.0.0.1:%d" % port]
    out.append("processors:")
    for i, (_, procs, _, _) in enumerate(cases):
        for j, body in enumerate(procs):
            out.append("  probabilistic_sampler/c%d_%d:" % (i, j))
            out += ["    " + line for line in body.strip("\n").splitlines()]
    out.append("exporters:")
    for i, (_, _, _, path) in enumerate(cases):
        out += ["  file/c%d:" % i, "    path: %s" % path, "    flush_interval: 50ms"]
    out += ["service:", "  telemetry:", "    metrics:"]
    out += ["      address: 127.0.0.1:%d" % metrics_port] if metrics_port else ["      level: none"]
    out.append("  pipelines:")
    for i, (sig, procs, _, _) in enumerate(cases):
        names = ", ".join("probabilistic_sampler/c%d_%d" % (i, j) for j in range(len(procs)))
        out.append("    %s/c%d: {receivers: [otlp/c%d], processors: [%s], exporters: [file/c%d]}"
                   % (sig, i, i, names, i))
    return "\n".join(out) + "\n"


def read_lines(path):
    try:
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        return []


def spans_of(lines):
    return [s for line in lines for rs in line.get("resourceSpans", [])
            for ss in rs.get("scopeSpans", []) for s in ss.get("spans", [])]


def logs_of(lines):
    return [r for line in lines for rl in line.get("resourceLogs", [])
            for sl in rl.get("scopeLogs", []) for r in sl.get("logRecords", [])]


MARKER_TID = "ffffffffffffffffffffffffffffffff"


def span(tid, sid, name="s", ts=None, attrs=None):
    sp = {"spanId": sid, "name": name, "kind": 1,
          "startTimeUnixNano": "1544712660000000000", "endTimeUnixNano": "1544712661000000000"}
    if int(tid, 16):  # an all-zero id is invalid in OTLP/JSON: left out (empty)
        sp["traceId"] = tid
    if ts is not None:
        sp["traceState"] = ts
    if attrs:
        sp["attributes"] = attrs
    return sp


def traces(spans):
    return {"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "svc"}}]},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]}


def log(tid, body, attrs=None):
    rec = {"timeUnixNano": "1649400860000000000", "severityNumber": 5,
           "body": {"stringValue": body}}
    if tid and int(tid, 16):
        rec["traceId"] = tid
    if attrs:
        rec["attributes"] = attrs
    return rec


def logs(records):
    return {"resourceLogs": [{"resource": {}, "scopeLogs": [{"scope": {"name": "t"},
                                                             "logRecords": records}]}]}


def av(v):
    """An OTLP/JSON AnyValue of a Python value."""
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, bytes):
        import base64
        return {"bytesValue": base64.b64encode(v).decode()}
    return {"stringValue": v}


def kv(d):
    return [{"key": k, "value": av(v)} for k, v in d.items()]


def plain(attrs):
    out = {}
    for a in attrs or []:
        v = a["value"]
        (k, x), = v.items() if v else (("empty", None),)
        out[a["key"]] = int(x) if k == "intValue" else x
    return out


class Run:
    """A router running the given cases; send() posts and returns when a marker sent
    after the payload was written (so the payload went through)."""

    def __init__(self, args, tmp, cases, metrics=False):
        self.cases = []
        for i, (sig, procs) in enumerate(cases):
            self.cases.append((sig, procs, free_port(), os.path.join(tmp, "out%d_%d.json"
                                                                    % (id(self), i))))
        self.mport = free_port() if metrics else None
        self.r = Router(args.bin, [args.plugin_dir], config(self.cases, self.mport))
        self.seq = 0

    def send(self, i, payloads):
        sig, _, port, path = self.cases[i]
        url = "http://127.0.0.1:%d/v1/%s" % (port, sig)
        for p in payloads:
            st, _, body = post_json(url, p, timeout=10)
            if st != 200:
                check(False, "case %d: request accepted (%s %r)" % (i, st, body[:200]))
        # the marker: kept by every configuration of these tests (priority 1 / 100)
        self.seq += 1
        mark = "marker-%d" % self.seq
        if sig == "traces":
            m = traces([span(MARKER_TID, "00000000000000ff", mark,
                             attrs=kv({"sampling.priority": 1}))])
            items = spans_of
        else:
            m = logs([log(MARKER_TID, mark, kv({"prio": 100, "priority": 100, "veryrandom": 100,
                                                "mprio": 100}))])
            items = logs_of
        post_json(url, m)

        def done():
            got = items(read_lines(path))
            return any(x.get("name") == mark or x.get("body", {}).get("stringValue") == mark
                       for x in got) and got
        got = wait_for("marker of case %d" % i, done, 20)
        return [x for x in got if not str(x.get("name", x.get("body", {}).get("stringValue", "")))
                .startswith("marker-")]

    def metrics(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.mport, timeout=5) as r:
            return r.read().decode()

    def close(self):
        rc = self.r.stop()
        check(rc == 0, "router exits 0 (%s)" % rc)
        check("Sanitizer" not in self.r.output(), "no sanitizer report")
        self.r.cleanup()


def hexid(rng, n):
    return "".join("%02x" % rng.randrange(256) for _ in range(n))


def chunks(xs, n):
    return [xs[i:i + n] for i in range(0, len(xs), n)]


# --- a. hash_seed decisions ------------------------------------------------------

def case_reference(args, tmp):
    """The reference hash against the collector's own vectors (TestEmptyHashFunction)."""
    check(fnv1a32(0, b"") & 0x3FFF == 0x3515, "reference FNV: empty input, seed 0 -> 0x3515")
    check(fnv1a32(0, bytes(16)) & 0x3FFF == 0x2455, "reference FNV: 16 zero bytes -> 0x2455")
    # Test_tracesamplerprocessor_HashSeedTraceState: the th written per percentage
    for pct, want in ((100, "0"), (75, "4"), (50, "8"), (25, "c"), (10, "e668"),
                      (100.0 / 3, "aaac")):
        got = tvalue((0x4000 - hash_scaled(pct)) << 42)
        check(got == want, "reference th at %.4g%%: %s (collector: %s)" % (pct, got, want))


def case_hash_seed(args, tmp):
    rng = random.Random(8)
    ids = [hexid(rng, 16) for _ in range(6000)]
    ids[0] = "00000000000000000000000000000001"
    combos = [(0, 10), (4312, 10), (4312, 33.333), (22, 50), (7, 1), (1, 100 * 2 ** -14)]
    cases = [("traces", ["sampling_percentage: %r\nhash_seed: %d\nmode: hash_seed" % (p, seed)])
             for seed, p in combos]
    # the mode left unset is hash_seed too (the collector's default)
    cases.append(("traces", ["sampling_percentage: 10\nhash_seed: 4312"]))
    combos.append((4312, 10))
    cases.append(("traces", ["sampling_percentage: 10"]))
    combos.append((0, 10))
    run = Run(args, tmp, cases)
    try:
        payloads = [traces([span(t, "%016x" % (i + 1), "h%d" % i) for i, t in c])
                    for c in chunks(list(enumerate(ids)), 500)]
        for k, (seed, pct) in enumerate(combos):
            got = run.send(k, payloads)
            want = [t for t in ids if hash_keeps(bytes.fromhex(t), seed, pct)]
            kept = [s["traceId"] for s in got]
            check(kept == want, "hash_seed %d at %.4g%%: %d kept, the reference's %d ids exactly"
                  % (seed, pct, len(kept), len(want)))
            th = tvalue((0x4000 - hash_scaled(pct)) << 42)
            bad = [s for s in got if s.get("traceState") != "ot=rv:%014x;th:%s" % (
                hash_randomness(bytes.fromhex(s["traceId"]), seed), th)]
            check(not bad, "hash_seed %d at %.4g%%: tracestate ot=rv:<hash>;th:%s on every kept "
                  "span (%d wrong, e.g. %r)" % (seed, pct, th, len(bad), bad[:1]))
    finally:
        run.close()


# --- b. statistics ---------------------------------------------------------------

def case_statistics(args, tmp):
    rng = random.Random(20261206)
    n = 20000
    ids = [hexid(rng, 16) for _ in range(n)]
    pcts = (1, 10, 25, 50, 90)
    cases = [("traces", ["sampling_percentage: %d\nmode: %s\nhash_seed: 99" % (p, m)])
             for m in ("hash_seed", "proportional") for p in pcts]
    run = Run(args, tmp, cases)
    try:
        payloads = [traces([span(t, "%016x" % (i + 1)) for i, t in c])
                    for c in chunks(list(enumerate(ids)), 1000)]
        for k, (_, procs) in enumerate(cases):
            mode = "hash_seed" if k < len(pcts) else "proportional"
            p = pcts[k % len(pcts)] / 100.0
            kept = len(run.send(k, payloads))
            sigma = math.sqrt(n * p * (1 - p))
            check(abs(kept - n * p) <= 4 * sigma,
                  "%s %d%%: kept %d of %d, expected %.0f +- %.0f (4 sigma)"
                  % (mode, p * 100, kept, n, n * p, 4 * sigma))
            if mode == "proportional":
                th = prob_to_threshold(p, 4)
                want = sum(1 for t in ids if w3c_randomness(t) >= th)
                check(kept == want, "proportional %d%%: exactly the %d ids whose randomness "
                      ">= th" % (p * 100, want))
    finally:
        run.close()


# --- c. sampling.priority ----------------------------------------------------------

def case_priority(args, tmp):
    # Test_parseSpanSamplingPriority: int, double and string; < 0, NaN and other
    # types leave the decision to the sampler
    values = [(2, "keep"), (1.0, "keep"), ("1", "keep"), ("0.5", "keep"), (0, "drop"),
              (0.0, "drop"), ("0", "drop"), ("0.0", "drop"), (-1, "defer"), (-1.0, "defer"),
              ("-0.5", "defer"), ("NaN", "defer"), (True, "defer"), ("abc", "defer")]
    tid = "01000000000000000000000000000000"  # randomness 0: only 100 % keeps it
    cases = []
    for mode in ("hash_seed", "proportional", "equalizing"):
        cases.append(("traces", ["sampling_percentage: 0\nmode: %s" % mode]))
        cases.append(("traces", ["sampling_percentage: 100\nmode: %s" % mode]))
    run = Run(args, tmp, cases)
    try:
        sp = [span(tid, "%016x" % (i + 1), "p%d" % i, attrs=kv({"sampling.priority": v}))
              for i, (v, _) in enumerate(values)]
        for k in range(len(cases)):
            pct = 0 if k % 2 == 0 else 100
            got = {s["name"] for s in run.send(k, [traces(sp)])}
            want = {"p%d" % i for i, (_, d) in enumerate(values)
                    if d == "keep" or (d == "defer" and pct == 100)}
            check(got == want, "%s: priority at %d%%: kept %s" % (cases[k][1][0].split()[-1], pct,
                                                                   sorted(got)))
            ts = {s["name"]: s.get("traceState") for s in run.send(k, [traces(sp[:1])])}
            check(ts.get("p0") is not None and "th:0" in ts["p0"],
                  "a span kept by priority carries th:0 (%r)" % ts)
    finally:
        run.close()


def case_priority_scan(args, tmp):
    # The sampler skips the per-span priority lookup when the request holds no
    # "sampling.priority" bytes at all: requests with the key on some spans, in
    # other strings only, at the very end, or nowhere decide as the collector does.
    tid = "01000000000000000000000000000000"  # randomness 0: only 100 % keeps it
    run = Run(args, tmp, [("traces", ["sampling_percentage: 0"]),
                          ("traces", ["sampling_percentage: 100"])])
    try:
        prio = kv({"sampling.priority": 1})
        mixed = [span(tid, "%016x" % 1, "a", attrs=prio), span(tid, "%016x" % 2, "b"),
                 span(tid, "%016x" % 3, "sampling.priority"),
                 span(tid, "%016x" % 4, "d", attrs=kv({"x": "sampling.priority"})),
                 span(tid, "%016x" % 5, "e", attrs=kv({"sampling.prioritY": 1}))]
        got = {s["name"] for s in run.send(0, [traces(mixed)])}
        check(got == {"a"}, "0%%: only the span with the key kept (%s)" % sorted(got))
        got = {s["name"] for s in run.send(0, [traces([span(tid, "%016x" % 6, "f"),
                                                      span(tid, "%016x" % 7, "g")])])}
        check(got == {"a"}, "0%%: a request without the key drops all (%s)" % sorted(got))
        # the key in the request's last bytes (the last span's last attribute)
        got = {s["name"] for s in run.send(0, [traces([span(tid, "%016x" % 8, "h"),
                                                      span(tid, "%016x" % 9, "i", attrs=prio)])])}
        check(got == {"a", "i"}, "0%%: the key in the last bytes keeps its span (%s)"
              % sorted(got))
        got = {s["name"]: s.get("traceState") for s in
               run.send(1, [traces([span(tid, "%016x" % 10, "j"), span(tid, "%016x" % 11, "k")])])}
        check(set(got) == {"j", "k"} and all("th:0" in (t or "") for t in got.values()),
              "100%%: a request without the key keeps all, with th:0 (%r)" % got)
    finally:
        run.close()


# --- d. tracestate vectors ----------------------------------------------------------

DEF_TID = "fefefefefefefefefe80000000000000"
IMPROBABLE = "111111111111111111ffffffffffffff"
F32_ALMOST = repr(f32((1 - 8e-7) * 100))

# (name, pct, precision, tid, tracestate in, {mode: tracestate out or None (dropped)},
#  fail_closed). From Test_tracesamplerprocessor_TraceState; the collector's
# precision 0 ("full") is written 14, which is the same (its Validate refuses 0).
TS_VECTORS = [
    ("100 percent", 100, 14, DEF_TID, "", {"*": "ot=th:0"}),
    ("50 percent sampled", 50, 14, DEF_TID, "", {"*": "ot=th:8"}),
    ("25 percent sampled", 25, 14, "ddddddddddddddddddc0000000000000", "", {"*": "ot=th:c"}),
    ("25 percent unsampled", 25, 14, "ddddddddddddddddddb0000000000000", "", {"*": None}),
    ("1 percent sampled", 1, 14, DEF_TID, "ot=rv:FD70A3D70A3D71",
     {"*": "ot=rv:FD70A3D70A3D71;th:fd70a3d70a3d71"}),
    ("1 percent with rvalue precision 4", 1, 4, DEF_TID, "ot=rv:FD70A3D70A3D71",
     {"*": "ot=rv:FD70A3D70A3D71;th:fd70a"}),
    ("1 percent with rvalue precision 3", 1, 3, DEF_TID, "ot=rv:FD70A3D70A3D71", {"*": None}),
    ("1 percent not sampled with rvalue", 1, 14, DEF_TID, "ot=rv:FD70A3D70A3D70", {"*": None}),
    ("49 percent not sampled", 49, 14, DEF_TID, "", {"*": None}),
    ("1 percent sampled with rvalue", 1, 14, DEF_TID, "ot=rv:fd70B000000000",
     {"*": "ot=rv:fd70B000000000;th:fd70a3d70a3d71"}),
    ("1 percent sampled with tid", 1, 4, "a0a0a0a0a0a0a0a0a0fe000000000000", "",
     {"*": "ot=th:fd70a"}),
    ("incoming 50 percent with rvalue", 50, 14, DEF_TID, "ot=rv:90000000000000;th:80000000000000",
     {"equalizing": "ot=rv:90000000000000;th:8", "proportional": None}),
    ("incoming 50 percent at 25 percent not sampled", 25, 14, DEF_TID, "ot=th:8", {"*": None}),
    ("incoming 50 percent at 25 percent sampled", 25, 14, "f" * 32, "ot=th:8",
     {"equalizing": "ot=th:c", "proportional": "ot=th:e"}),
    ("equalizing vs proportional", 50, 14, DEF_TID, "ot=rv:c0000000000000;th:8",
     {"equalizing": "ot=rv:c0000000000000;th:8", "proportional": "ot=rv:c0000000000000;th:c"}),
    ("inconsistent arriving threshold", 100, 14, DEF_TID, "ot=rv:40000000000000;th:8",
     {"*": "ot=rv:40000000000000;th:0"}),
    ("40 percent precision 3 with rvalue", 40, 3, DEF_TID, "ot=rv:a0000000000000",
     {"*": "ot=rv:a0000000000000;th:99a"}),
    ("arriving 50 percent at 40 percent precision 6", 40, 6, "a0a0a0a0a0a0a0a0a0d0000000000000",
     "ot=th:8", {"proportional": "ot=th:cccccd", "equalizing": "ot=th:99999a"}),
    ("arriving 50 percent at 40 percent partly sampled", 40, 3, "a0a0a0a0a0a0a0a0a0b0000000000000",
     "ot=th:8", {"proportional": None, "equalizing": "ot=th:99a"}),
    ("arriving 50 percent at 40 percent not sampled", 40, 3, "a0a0a0a0a0a0a0a0a080000000000000",
     "ot=th:8", {"*": None}),
    ("200 percent equals 100 percent", 200, 14, DEF_TID, "", {"*": "ot=th:0"}),
    ("tiny probability rounding", repr(100 * 2 ** -14), 14, IMPROBABLE, "ot=th:fffc",
     {"equalizing": "ot=th:fffc", "proportional": "ot=th:fffffff"}),
    ("almost 100pct sampling", F32_ALMOST, 10, IMPROBABLE, "", {"*": "ot=th:00000cccccccd"}),
    ("probability underflow", repr(2 ** -4), 14, IMPROBABLE, "ot=th:fffffffffffff8",
     {"equalizing": "ot=th:fffffffffffff8", "proportional": None}),
    # not from the collector: other vendors' entries are kept, after ot
    ("other vendors kept", 50, 4, DEF_TID, "congo=t61rcWkgMzE, ot=th:0;x:y ,rojo=00f067aa0ba902b7",
     {"*": "ot=th:8;x:y,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}),
]

# Test_tracesamplerprocessor_TraceStateErrors: fail_closed drops all of these.
ERR_VECTORS = [
    ("missing randomness", "0" * 32, ""),
    ("invalid r-value", DEF_TID, "ot=rv:abababababababab"),
    ("invalid t-value", DEF_TID, "ot=th:abababababababab"),
    ("t-value syntax", DEF_TID, "ot=th:-1"),
    ("inconsistent t-value trace ID", "ffffffffffffffffff70000000000000", "ot=th:8"),
    ("inconsistent t-value r-value", DEF_TID, "ot=th:8;rv:70000000000000"),
    # not from the collector's tests: syntax the W3C grammar refuses
    ("bad w3c key", DEF_TID, "Ot=th:8"),
    ("bad ot syntax", DEF_TID, "ot=th:8;"),
]


def case_tracestate(args, tmp):
    modes = ("equalizing", "proportional")
    cases, index = [], []
    for v in TS_VECTORS:
        for m in modes:
            index.append((v, m))
            cases.append(("traces", ["sampling_percentage: %s\nsampling_precision: %d\n"
                                     "mode: %s\nfail_closed: false\nhash_seed: 4312"
                                     % (v[1], v[2], m)]))
    # inconsistent arriving threshold not sampled (fail_closed)
    for m in modes:
        cases.append(("traces", ["sampling_percentage: 1\nmode: %s" % m]))
    for m in modes:  # the error vectors, fail closed and open
        cases.append(("traces", ["sampling_percentage: 100\nmode: %s\nfail_closed: true" % m]))
        cases.append(("traces", ["sampling_percentage: 100\nmode: %s\nfail_closed: false" % m]))
    run = Run(args, tmp, cases)
    try:
        for k, (v, m) in enumerate(index):
            name, _, _, tid, ts_in, outs = v
            want = outs.get(m, outs.get("*"))
            got = run.send(k, [traces([span(tid, "00000000fefefefe", name, ts=ts_in or None)])])
            if want is None:
                check(got == [], "%s %s: dropped (%r)" % (m, name, got))
            else:
                ok = len(got) == 1 and got[0].get("traceState") == want
                check(ok, "%s %s: kept with %r (got %r)" % (m, name, want,
                                                          [s.get("traceState") for s in got]))
        k = len(index)
        for m in modes:
            got = run.send(k, [traces([span(DEF_TID, "00000000fefefefe", "x",
                                            ts="ot=rv:40000000000000;th:8")])])
            check(got == [], "%s: inconsistent arriving threshold, fail_closed: dropped" % m)
            k += 1
        for m in modes:
            sp = [span(tid, "%016x" % (i + 1), name, ts=ts or None)
                  for i, (name, tid, ts) in enumerate(ERR_VECTORS)]
            got = run.send(k, [traces(sp)])
            check(got == [], "%s fail_closed: every erroneous span dropped (%r)"
                  % (m, [s["name"] for s in got]))
            got = run.send(k + 1, [traces(sp)])
            check(sorted(s["name"] for s in got) == sorted(e[0] for e in ERR_VECTORS),
                  "%s fail open: every erroneous span kept" % m)
            k += 2
        # a tracestate that does not parse is logged at info level (the collector's
        # level), with the collector's error text, and at most once a second
        out = run.r.output()
        lines = [ln for ln in out.splitlines() if "traces sampler: " in ln]
        check(any("invalid syntax" in ln or "r-value must have 14 hex digits" in ln or
                  "t-value exceeds 14 hex digits" in ln for ln in lines),
              "tracestate errors logged: %r" % lines[:3])
        check(0 < len(lines) <= 8, "errors logged at most once a second (%d lines)" % len(lines))
    finally:
        run.close()


# --- e. two tiers --------------------------------------------------------------------

def case_tiers(args, tmp):
    rng = random.Random(77)
    ids = [hexid(rng, 16) for _ in range(8000)]
    cases = [("traces", ["sampling_percentage: 50\nmode: equalizing"]),
             ("traces", ["sampling_percentage: 50\nmode: equalizing",
                         "sampling_percentage: 25\nmode: equalizing"]),
             ("traces", ["sampling_percentage: 50\nmode: proportional",
                         "sampling_percentage: 50\nmode: proportional"])]
    run = Run(args, tmp, cases)
    try:
        payloads = [traces([span(t, "%016x" % (i + 1)) for i, t in c])
                    for c in chunks(list(enumerate(ids)), 1000)]
        tier1 = run.send(0, payloads)
        tier2 = run.send(1, payloads)
        prop = run.send(2, payloads)
        s1 = {s["traceId"] for s in tier1}
        s2 = {s["traceId"] for s in tier2}
        n = len(ids)
        for what, got, p in (("50 %", s1, 0.5), ("50 % then 25 %", s2, 0.25),
                             ("proportional 50 % twice", {s["traceId"] for s in prop}, 0.25)):
            sigma = math.sqrt(n * p * (1 - p))
            check(abs(len(got) - n * p) <= 4 * sigma, "%s keeps %d of %d (%.0f +- %.0f)"
                  % (what, len(got), n, n * p, 4 * sigma))
        check(s2 <= s1, "the 25 %% set is a subset of the 50 %% set (%d not)" % len(s2 - s1))
        check(s2 == {t for t in ids if w3c_randomness(t) >= 0xC << 52},
              "the 25 % set is exactly the ids with randomness >= c0000000000000")
        check(all(s.get("traceState") == "ot=th:c" for s in tier2), "tier 2 spans carry th:c")
        check(all(s.get("traceState") == "ot=th:8" for s in tier1), "tier 1 spans carry th:8")
        check(all(s.get("traceState") == "ot=th:c" for s in prop),
              "proportional twice: th:c (50 % of 50 %)")
    finally:
        run.close()


def case_two_routers(args, tmp):
    """A real two-tier deployment: router A (equalizing 50 %) sends OTLP/HTTP to
    router B (proportional 50 %): B reads the th that A wrote, on the wire."""
    rng = random.Random(78)
    ids = [hexid(rng, 16) for _ in range(4000)]
    pa, pb = free_port(), free_port()
    path = os.path.join(tmp, "two_routers.json")
    cfg_b = "\n".join([
        "receivers:", "  otlp:", "    protocols:", "      http:",
        "        endpoint: 127.0.0.1:%d" % pb,
        "processors:", "  probabilistic_sampler:", "    mode: proportional",
        "    sampling_percentage: 50",
        "exporters:", "  file:", "    path: %s" % path, "    flush_interval: 50ms",
        "service:", "  telemetry:", "    metrics:", "      level: none", "  pipelines:",
        "    traces: {receivers: [otlp], processors: [probabilistic_sampler], exporters: [file]}",
        ""])
    cfg_a = "\n".join([
        "receivers:", "  otlp:", "    protocols:", "      http:",
        "        endpoint: 127.0.0.1:%d" % pa,
        "processors:", "  probabilistic_sampler:", "    mode: equalizing",
        "    sampling_percentage: 50",
        "exporters:", "  otlphttp:", "    endpoint: http://127.0.0.1:%d" % pb,
        "    compression: none",
        "service:", "  telemetry:", "    metrics:", "      level: none", "  pipelines:",
        "    traces: {receivers: [otlp], processors: [probabilistic_sampler], "
        "exporters: [otlphttp]}", ""])
    b = Router(args.bin, [args.plugin_dir], cfg_b)
    try:
        a = Router(args.bin, [args.plugin_dir], cfg_a)
        try:
            url = "http://127.0.0.1:%d/v1/traces" % pa
            for c in chunks(list(enumerate(ids)), 500):
                st, _, body = post_json(url, traces([span(t, "%016x" % (i + 1)) for i, t in c]))
                check(st == 200, "tier 1 accepted the request (%s %r)" % (st, body[:100]))
            post_json(url, traces([span(MARKER_TID, "00000000000000ff", "marker-2r",
                                        attrs=kv({"sampling.priority": 1}))]))
            want = {t for t in ids if w3c_randomness(t) >= 0xC << 52}
            # tier 1's exporter may send its requests in any order: wait for the
            # marker and for as many spans as the reference keeps (or 20 s)
            deadline = time.monotonic() + 20
            while True:
                got = spans_of(read_lines(path))
                done = any(s["name"] == "marker-2r" for s in got) and len(got) > len(want)
                if done or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            time.sleep(0.2)
            got = [s for s in spans_of(read_lines(path)) if s["name"] != "marker-2r"]
            check({s["traceId"] for s in got} == want and len(got) == len(want),
                  "two routers, 50 %% then 50 %% of that: exactly the %d ids with randomness >= "
                  "c0000000000000 (got %d)" % (len(want), len(got)))
            check(all(s.get("traceState") == "ot=th:c" for s in got),
                  "tier 2 rewrote tier 1's th:8 to th:c on every span")
            check(a.stop() == 0, "tier 1 exits 0")
            check("Sanitizer" not in a.output(), "no sanitizer report at tier 1")
        finally:
            a.cleanup()
        check(b.stop() == 0, "tier 2 exits 0")
        check("Sanitizer" not in b.output(), "no sanitizer report at tier 2")
    finally:
        b.cleanup()


# --- f. logs -----------------------------------------------------------------------

def case_logs(args, tmp):
    rng = random.Random(5)
    n = 4000
    lids = ["id-%s" % hexid(rng, 6) for _ in range(n)]
    tids = [hexid(rng, 16) for _ in range(n)]
    cases = [
        ("logs", ["sampling_percentage: 30\nhash_seed: 123\nsampling_priority: mprio"]),                         # 0
        ("logs", ["sampling_percentage: 30\nattribute_source: record\n"
                  "from_attribute: logID\nhash_seed: 123\nsampling_priority: mprio"]),                            # 1
        ("logs", ["sampling_percentage: 100\nmode: hash_seed\nhash_seed: 22\nsampling_priority: mprio"]),        # 2
        ("logs", ["sampling_percentage: 100\nattribute_source: record\n"
                  "from_attribute: veryrandom\nhash_seed: 49\nsampling_priority: mprio"]),                        # 3
        ("logs", ["sampling_percentage: 50\nmode: proportional\nsampling_priority: mprio"]),                     # 4
        ("logs", ["sampling_percentage: 0\nsampling_priority: priority"]),             # 5
        ("logs", ["sampling_percentage: 0\nsampling_priority: veryrandom\n"
                  "sampling_precision: 6\nmode: proportional"]),                        # 6
        ("logs", ["sampling_percentage: 50\nmode: equalizing\nfail_closed: true\nsampling_priority: mprio"]),    # 7
        ("logs", ["sampling_percentage: 50\nattribute_source: record\n"
                  "from_attribute: unused\nfail_closed: true\nsampling_priority: mprio"]),                        # 8
        ("logs", ["sampling_percentage: 50\nattribute_source: record\n"
                  "from_attribute: unused\nfail_closed: false\nsampling_priority: mprio"]),                       # 9
        ("logs", ["sampling_percentage: 100\nmode: hash_seed\nsampling_priority: mprio"]),                        # 10
        ("logs", ["sampling_percentage: 50\nmode: equalizing\nsampling_priority: prio"]),  # 11
        ("logs", ["sampling_percentage: 50\nmode: equalizing\nfail_closed: false\n"
                  "sampling_priority: mprio"]),                                         # 12
    ]
    run = Run(args, tmp, cases)
    try:
        # 0: trace id source, hash_seed (the default mode): the reference decisions
        recs = [log(t, "l%d" % i) for i, t in enumerate(tids)]
        got = run.send(0, [logs(c) for c in chunks(recs, 1000)])
        want = [t for t in tids if hash_keeps(bytes.fromhex(t), 123, 30)]
        check([r["traceId"] for r in got] == want, "logs by trace id: %d kept, the reference's "
              "%d exactly" % (len(got), len(want)))
        bad = [r for r in got if plain(r.get("attributes")) != {
            "sampling.randomness": "%014x" % hash_randomness(bytes.fromhex(r["traceId"]), 123),
            "sampling.threshold": tvalue((0x4000 - hash_scaled(30)) << 42)}]
        check(not bad, "logs by trace id: sampling.randomness and sampling.threshold written "
              "(%d wrong: %r)" % (len(bad), bad[:1]))
        # 1: record attribute source (string), no trace id
        recs = [log(None, "l%d" % i, kv({"logID": x})) for i, x in enumerate(lids)]
        got = run.send(1, [logs(c) for c in chunks(recs, 1000)])
        want = [x for x in lids if hash_keeps(x.encode(), 123, 30)]
        kept = [plain(r["attributes"])["logID"] for r in got]
        check(kept == want, "logs by record attribute: %d kept, the reference's %d exactly"
              % (len(kept), len(want)))
        sigma = math.sqrt(n * 0.3 * 0.7)
        check(abs(len(kept) - n * 0.3) <= 4 * sigma, "logs by attribute: %d of %d within 4 sigma"
              % (len(kept), n))
        # 2, 3: TestLogsSamplingState "100 percent traceID hash_seed", "100 percent attribute"
        got = run.send(2, [logs([log(DEF_TID, "a", kv({"K": "V"}))])])
        check(len(got) == 1 and plain(got[0].get("attributes")) == {
            "K": "V", "sampling.randomness": "%014x" % hash_randomness(bytes.fromhex(DEF_TID), 22),
            "sampling.threshold": "0"}, "100 percent traceID hash_seed: %r" % got)
        got = run.send(3, [logs([log(None, "a", kv({"veryrandom": "1234"}))])])
        check(len(got) == 1 and plain(got[0].get("attributes")) == {
            "veryrandom": "1234", "sampling.threshold": "0",
            "sampling.randomness": "%014x" % hash_randomness(b"1234", 49)},
            "100 percent attribute: %r" % got)
        # 4: "25 percent incoming": th c, proportional 50 % -> e
        got = run.send(4, [logs([log("fefefefefefefefefef0000000000000", "a",
                                     kv({"sampling.threshold": "c"}))])])
        check(len(got) == 1 and plain(got[0]["attributes"]) == {"sampling.threshold": "e"},
              "25 percent incoming at proportional 50 %%: th e (%r)" % got)
        # 5: TestLogsSampling sampling_priority_0_traceid: only the records with
        # priority 100 (one in four) pass at 0 %
        recs = []
        for i in range(100):
            ib = "%02x" % i
            tid = "00" * 8 + ib * 8
            a = {"priority": 100.0} if i % 4 == 0 else {}
            recs.append(log(tid, "r%d" % i, kv(a)))
        got = run.send(5, [logs(recs)])
        check(len(got) == 25, "priority 100 at 0 %%: 25 of 100 kept (%d)" % len(got))
        # 6: "10 percent priority sampled incoming randomness"
        got = run.send(6, [logs([log(DEF_TID, "a", kv({"sampling.randomness": "e6147c00000000",
                                                        "veryrandom": 10.125}))])])
        check(len(got) == 1 and plain(got[0]["attributes"]) == {
            "sampling.randomness": "e6147c00000000", "sampling.threshold": "e6147b",
            "veryrandom": 10.125}, "priority 10.125 with rv: th e6147b (%r)" % got)
        # 7: "25 percent arriving inconsistent" (fail_closed): dropped
        got = run.send(7, [logs([log("fefefefefefefefefeb0000000000000", "a",
                                     kv({"sampling.threshold": "c"}))])])
        check(got == [], "logs: inconsistent arriving threshold dropped (%r)" % got)
        # 8, 9: TestLogsMissingRandomness: no trace id, empty attribute
        rec = [log(None, "a", kv({"unused": ""}))]
        check(run.send(8, [logs(rec)]) == [], "logs: missing randomness, fail_closed: dropped")
        check(len(run.send(9, [logs(rec)])) == 1, "logs: missing randomness, fail open: kept")
        # 10: "hash_seed with spec randomness": left alone, kept (fail_closed default true
        # here: dropped)
        got = run.send(10, [logs([log(DEF_TID, "a", kv({"sampling.randomness":
                                                        "f2341234123412"}))])])
        check(got == [], "hash_seed with an rv attribute under fail_closed: dropped (%r)" % got)
        # 11: "25 percent arriving equalizing" with prio 37: th c stays
        got = run.send(11, [logs([log("fe" * 16, "a", kv({"sampling.threshold": "c",
                                                           "prio": 37}))])])
        check(len(got) == 1 and plain(got[0]["attributes"]) == {"sampling.threshold": "c",
                                                                 "prio": 37},
              "equalizing, th c, priority 37: th stays c (%r)" % got)
        # 12: the same inconsistent threshold failing open: removed, then th 0 written
        got = run.send(12, [logs([log("fefefefefefefefefeb0000000000000", "a",
                                      kv({"sampling.threshold": "c", "k": "v"}))])])
        check(len(got) == 1 and plain(got[0]["attributes"]) == {"k": "v",
                                                                 "sampling.threshold": "0"},
              "logs: inconsistent threshold failing open: replaced by th 0 (%r)" % got)
    finally:
        run.close()


# --- g. configuration errors -----------------------------------------------------------

def case_config_errors(args, tmp):
    for body, want in (
            ("sampling_percentage: -1", "sampling rate is negative: -1.000000%"),
            ("sampling_percentage: 1e-16", "sampling rate is too small"),
            ("sampling_percentage: 1e39", "sampling rate is invalid: +Inf%"),
            ("sampling_percentage: 10\nsampling_precision: 15",
             "sampling precision is too great, should be <= 14: 15"),
            ("sampling_percentage: 10\nsampling_precision: 0", "invalid sampling precision: 0"),
            ("sampling_percentage: 10\nsampling_precision: -2", "sampling precision must be"),
            ("sampling_percentage: 10\nmode: downsample", 'unsupported sampler mode "downsample"'),
            ("sampling_percentage: 10\nattribute_source: span",
             "invalid attribute source: span. Expected: traceID or record"),
            ("sampling_percentage: 10\nhash_seed: -1", "hash_seed must be an unsigned 32-bit"),
            ("sampling_percentage: ten", "expected a number"),
            ("sampling_percentage: 10\nsampling_rate: 3", "sampling_rate")):
        text = config([("traces", [body], free_port(), os.path.join(tmp, "never.json"))])
        r = Router(args.bin, [args.plugin_dir], text, wait=False)
        try:
            wait_for("exit", lambda: r.proc.poll() is not None, 15)
            out = r.output()
            check(r.proc.returncode != 0 and want in out and "config.yaml:" in out
                  and "Sanitizer" not in out,
                  "config %r refused with %r and file:line:\n%s" % (body, want, out[-600:]))
        finally:
            r.cleanup()


# --- h. metrics ----------------------------------------------------------------------

def case_metrics(args, tmp):
    rng = random.Random(3)
    ids = [hexid(rng, 16) for _ in range(1000)]
    run = Run(args, tmp, [("traces", ["sampling_percentage: 20\nhash_seed: 5"]),
                          ("logs", ["sampling_percentage: 20\nmode: proportional"])],
              metrics=True)
    try:
        sp = [span(t, "%016x" % (i + 1)) for i, t in enumerate(ids)]
        sp.append(span("0" * 32, "00000000000000aa"))  # missing randomness
        sp.append(span(ids[0], "00000000000000ab", attrs=kv({"sampling.priority": 0})))
        kept = len(run.send(0, [traces(sp)]))
        want = sum(hash_keeps(bytes.fromhex(t), 5, 20) for t in ids)
        check(kept == want, "metrics run: %d spans kept (reference %d)" % (kept, want))
        run.send(1, [logs([log(t, "x") for t in ids])])

        def value(name):
            for line in run.metrics().splitlines():
                if line.startswith("switchyard_" + name + "{") and "c0_0" in line:
                    return int(float(line.split()[-1]))
            for line in run.metrics().splitlines():
                if line.startswith("switchyard_" + name + "{") and "c1_0" in line:
                    return int(float(line.split()[-1]))
            return None
        base = "processor_probabilistic_sampler_count_traces_"
        # the markers (kept by priority) count too: one per send
        got = {k: value(base + k + "_total") for k in (
            "sampled_trace_id_hash", "not_sampled_trace_id_hash", "not_sampled_missing_randomness",
            "sampled_sampling_priority", "not_sampled_sampling_priority")}
        check(got == {"sampled_trace_id_hash": want, "not_sampled_trace_id_hash": 1000 - want,
                      "not_sampled_missing_randomness": 1, "sampled_sampling_priority": 1,
                      "not_sampled_sampling_priority": 1}, "traces counters: %r" % got)
        lw = sum(1 for t in ids if w3c_randomness(t) >= prob_to_threshold(0.2, 4))
        lb = "processor_probabilistic_sampler_count_logs_"
        got = {k: value(lb + k + "_total") for k in ("sampled_trace_id_w3c",
                                                     "not_sampled_trace_id_w3c")}
        check(got == {"sampled_trace_id_w3c": lw + 1, "not_sampled_trace_id_w3c": 1000 - lw},
              "logs counters (the marker's trace id is kept at any rate): %r" % got)
    finally:
        run.close()


CASES = {"reference": case_reference, "hash_seed": case_hash_seed,
         "statistics": case_statistics, "priority": case_priority,
         "priority_scan": case_priority_scan,
         "tracestate": case_tracestate, "tiers": case_tiers, "two_routers": case_two_routers,
         "logs": case_logs,
         "config_errors": case_config_errors, "metrics": case_metrics}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sy-ps-") as tmp:
        for name in args.case or list(CASES):
            before = len(failures)
            t0 = time.monotonic()
            CASES[name](args, tmp)
            print("case %s: %s (%.1fs)" % (name, "ok" if len(failures) == before else "FAILED",
                                           time.monotonic() - t0))
    if failures:
        print("%d failure(s)" % len(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
