#!/usr/bin/env python3
"""integration.adaptive_sampling: the `adaptive` policy of the tail_sampling
processor through the real binary and its .so.

A sender posts OTLP/JSON to the otlp receiver at a scheduled rate per service
(ten requests a second, traces of two spans; the send time of every trace is
recorded); the router runs otlp -> tail_sampling (decision_wait 1s, one
`adaptive` policy: target 50 traces/s per service, settle_time 5s,
latency_threshold_ms 1000) -> file. The file is read at the end, and every
kept trace is put back in the second in which it was sent:

  1. step: service `step` goes from 200 to 2000 traces/s at t = 8 s. Before
     the step and from settle_time + 2 s after it, its kept rate is within a
     tolerance of the target; the excess kept during the transient is within
     the bound the controller's equations give (docs/sampling.md); after the
     peak the kept rate falls without going back up (2-second sums
     non-increasing within 4 standard deviations) and does not undershoot;
  2. service `steady` at a constant 600 traces/s gets its own 50 traces/s;
  3. every error trace and every slow trace (5/s each, on top) is kept whole,
     whatever the rate, and no trace is kept in part;
  4. the policy's metrics count what happened;
  5. max_services: services beyond it share the overflow controller (counted);
  6. config errors are refused with their place.

Tolerances: a second's kept count is binomial, n = offered, p = target/rate
(sd about 7 at 50); sums over many seconds are compared at 15 %, which is more
than 4 sd of the binomial sum plus the estimate's jitter from the one-second
decision ticks (about 3 %).

    test_adaptive_sampling.py --bin build/bin/switchyard --plugin-dir build/lib/switchyard/plugins

bench/adaptive_plot.py imports the sender (send_schedule) and the reader
(kept_by_second) from here.
"""
import argparse
import json
import math
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Checks, Router, free_port, http, post_json, wait_for  # noqa: E402

check = Checks()
BASE_NS = 1_700_000_000_000_000_000
CHUNKS_PER_SECOND = 10
TARGET = 50.0
SETTLE_S = 5.0
LATENCY_MS = 1000


def router_config(port, path, mport, target=TARGET, settle="5s", extra=""):
    """otlp -> tail_sampling (one adaptive policy) -> file, metrics on mport."""
    return """\
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%d
processors:
  tail_sampling:
    decision_wait: 1s
    num_traces: 200000
    max_bytes: 1GiB
    policies:
      - name: adaptive
        type: adaptive
        adaptive:
          target_traces_per_second: %s
          settle_time: %s
          adjust_interval: 1s
          latency_threshold_ms: %d
%sexporters:
  file:
    path: %s
    flush_interval: 100ms
service:
  telemetry:
    metrics:
      address: 127.0.0.1:%d
  pipelines:
    traces: {receivers: [otlp], processors: [tail_sampling], exporters: [file]}
""" % (port, target, settle, LATENCY_MS, extra, path, mport)


def make_trace(rng, kind):
    """A trace of two spans (root + child) as (trace id, [spans]); kind is
    "ok", "error" (the child has status ERROR) or "slow" (it lasts 1.5 s)."""
    tid = "%032x" % rng.getrandbits(128)
    root_id = "%016x" % rng.getrandbits(64)
    child_id = "%016x" % rng.getrandbits(64)
    dur_ms = 1500 if kind == "slow" else 20
    start = BASE_NS
    root = {"traceId": tid, "spanId": root_id, "name": "root", "kind": 2,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + dur_ms * 1_000_000)}
    child = {"traceId": tid, "spanId": child_id, "parentSpanId": root_id, "name": "child",
             "kind": 3, "startTimeUnixNano": str(start + 1_000_000),
             "endTimeUnixNano": str(start + (dur_ms - 1) * 1_000_000)}
    if kind == "error":
        child["status"] = {"code": 2, "message": "boom"}
    return tid, [root, child]


def send_schedule(port, rates, duration_s, extras=None, seed=1, on_second=None):
    """Sends traces for duration_s seconds: rates is {service: f(t) -> traces/s};
    extras is {service: (error_per_s, slow_per_s)} sent on top. Ten requests a
    second, on an absolute schedule (a late request catches up on the count).

    Returns {trace id: (service, second sent, kind, set of span ids)}."""
    rng = random.Random(seed)
    url = "http://127.0.0.1:%d/v1/traces" % port
    extras = extras or {}
    series = dict(rates)
    for svc in extras:
        series.setdefault(svc, lambda t: 0.0)
    due = {svc: 0.0 for svc in series}  # fractional traces owed, per (service, kind)
    due_x = {(svc, k): 0.0 for svc in extras for k in ("error", "slow")}
    sent = {}
    dt = 1.0 / CHUNKS_PER_SECOND
    t0 = time.monotonic()
    nchunks = int(round(duration_s * CHUNKS_PER_SECOND))
    for c in range(nchunks):
        wake = t0 + c * dt
        now = time.monotonic()
        if wake > now:
            time.sleep(wake - now)
        t_sched = c * dt
        second = int(max(0.0, time.monotonic() - t0))
        body = {"resourceSpans": []}
        for svc, f in series.items():
            due[svc] += f(t_sched) * dt
            plan = []
            n = int(due[svc])
            due[svc] -= n
            plan += ["ok"] * n
            if svc in extras:
                for k, per_s in zip(("error", "slow"), extras[svc]):
                    due_x[(svc, k)] += per_s * dt
                    m = int(due_x[(svc, k)])
                    due_x[(svc, k)] -= m
                    plan += [k] * m
            spans = []
            for kind in plan:
                tid, sp = make_trace(rng, kind)
                sent[tid] = (svc, second, kind, {s["spanId"] for s in sp})
                spans += sp
            if spans:
                body["resourceSpans"].append({
                    "resource": {"attributes": [{"key": "service.name",
                                                 "value": {"stringValue": svc}}]},
                    "scopeSpans": [{"scope": {"name": "load"}, "spans": spans}]})
        if body["resourceSpans"]:
            status, _, resp = post_json(url, body, timeout=10)
            if status != 200:
                raise AssertionError("the receiver answered %d: %r" % (status, resp[:200]))
        if on_second and (c + 1) % CHUNKS_PER_SECOND == 0:
            on_second((c + 1) // CHUNKS_PER_SECOND)
    return sent


def read_kept(path):
    """trace id -> set of span ids in the file exporter's JSON lines."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            for rs in json.loads(line).get("resourceSpans", []):
                for ss in rs.get("scopeSpans", []):
                    for sp in ss.get("spans", []):
                        out.setdefault(sp["traceId"], set()).add(sp["spanId"])
    return out


def kept_by_second(sent, kept, service, nseconds, kind="ok"):
    """(offered, kept) lists per second sent, for one service and kind."""
    offered = [0] * nseconds
    k = [0] * nseconds
    for tid, (svc, sec, knd, _) in sent.items():
        if svc != service or knd != kind or sec >= nseconds:
            continue
        offered[sec] += 1
        if tid in kept:
            k[sec] += 1
    return offered, k


def metrics_text(mport):
    _, _, text = http("GET", "http://127.0.0.1:%d/metrics" % mport)
    return text.decode()


def metric(text, name, label=None):
    """The first series of switchyard_<name> (with `label`, 'k="v"', among its labels)."""
    for line in text.splitlines():
        if line.startswith("switchyard_" + name + "{") and (label is None or label in line):
            return float(line.rsplit(" ", 1)[1])
    return None


def transient_bound(ratio, target, settle_s, interval_s=1.0):
    """The most traces the controller keeps above the target after a step up of
    the offered rate by `ratio`: the log error ln(ratio) shrinks by
    beta = exp(-interval / tau) per interval (tau = settle_time / 4); the
    interval in which the step falls and the one after it are counted at the
    full ratio (the step may straddle a roll, and the sent second straddles
    decision ticks)."""
    beta = math.exp(-interval_s / (settle_s / 4.0))
    excess = 2 * (ratio - 1.0)
    e = math.log(ratio) * beta
    while e > 1e-4:
        excess += math.exp(e) - 1.0
        e *= beta
    return target * excess * interval_s


STEP_AT, DURATION = 8, 20


def run_main(args):
    port, mport = free_port(), free_port()
    tmp = tempfile.TemporaryDirectory(prefix="sy-adaptive-")
    path = os.path.join(tmp.name, "kept.jsonl")
    rates = {"step": lambda t: 200.0 if t < STEP_AT else 2000.0,
             "steady": lambda t: 600.0}
    extras = {"step": (5, 5), "steady": (5, 0)}
    with Router(args.bin, [args.plugin_dir], router_config(port, path, mport)) as r:
        sent = send_schedule(port, rates, DURATION, extras)
        n_total = len(sent)
        # Every trace is decided 1-2 s after its first span; then the file is flushed.
        wait_for("every trace decided", lambda: (lambda t: (
            metric(t, "processor_tail_sampling_global_count_traces_sampled_total",
                   'sampled="true"') or 0) + (
            metric(t, "processor_tail_sampling_global_count_traces_not_sampled_total") or 0)
            >= n_total)(metrics_text(mport)), 20)
        time.sleep(0.5)
        text = metrics_text(mport)
        rc = r.stop()
        check(rc == 0, "router exits 0 (%s)" % rc)
        kept = read_kept(path)
    tmp.cleanup()

    # 3. errors and slow traces: every one kept, whole; nothing kept in part.
    for kind in ("error", "slow"):
        ids = [t for t, v in sent.items() if v[2] == kind]
        missing = [t for t in ids if t not in kept]
        check(ids and not missing, "every %s trace kept (%d sent, %d missing)"
              % (kind, len(ids), len(missing)))
    partial = [t for t, v in sent.items() if t in kept and kept[t] != v[3]]
    check(not partial, "no trace kept in part (%d partial)" % len(partial))
    unknown = [t for t in kept if t not in sent]
    check(not unknown, "nothing kept that was not sent (%d)" % len(unknown))

    # 1. the step.
    off, k = kept_by_second(sent, kept, "step", DURATION)
    print("step offered/s:", off)
    print("step kept/s:   ", k)
    before = k[3:STEP_AT]
    check(abs(sum(before) - TARGET * len(before)) <= 0.15 * TARGET * len(before),
          "before the step: %d kept in %d s, target %.0f/s (±15%%)"
          % (sum(before), len(before), TARGET))
    settled_from = STEP_AT + int(SETTLE_S) + 2
    after = k[settled_from:DURATION]
    check(abs(sum(after) - TARGET * len(after)) <= 0.15 * TARGET * len(after),
          "from settle_time + 2 s after the step: %d kept in %d s, target %.0f/s (±15%%)"
          % (sum(after), len(after), TARGET))
    sd = math.sqrt(TARGET)
    # A second in which the sender fell behind (and one in which it caught up)
    # offers fewer (more) traces: each second is held to its offered count times
    # target / nominal rate.
    want = [o * TARGET / 2000.0 for o in off[settled_from:DURATION]]
    check(all(abs(x - w) <= 5 * math.sqrt(w) + 0.1 * w for x, w in zip(after, want)),
          "each settled second within 5 sd + 10 %% of offered × target / 2000: %s" % after)
    excess = sum(x - TARGET for x in k[STEP_AT:DURATION])
    ratio = (sum(off[STEP_AT + 1:DURATION]) / (DURATION - STEP_AT - 1)) / (
        sum(off[1:STEP_AT]) / (STEP_AT - 1))
    bound = transient_bound(ratio, TARGET, SETTLE_S)
    check(0 < excess <= bound + 5 * math.sqrt(bound),
          "excess kept in the transient %.0f within the design bound %.0f (step ×%.1f)"
          % (excess, bound, ratio))
    peak = max(range(STEP_AT, DURATION), key=lambda i: k[i])
    check(peak <= STEP_AT + 2, "the peak is within 2 s of the step (second %d)" % peak)
    pairs = [k[i] + k[i + 1] for i in range(peak, DURATION - 1)]
    rises = [(i, a, b) for i, (a, b) in enumerate(zip(pairs, pairs[1:]))
             if b > a + 4 * math.sqrt(max(a, 1))]
    check(not rises, "after the peak the 2-second sums do not rise (no oscillation): %s"
          % rises)
    low = [x for x in k[STEP_AT:DURATION] if x < TARGET - 5 * sd - 0.1 * TARGET]
    check(not low, "no undershoot after the step: %s" % low)
    share = sum(after) / max(1, sum(off[settled_from:DURATION]))
    check(abs(share - TARGET / 2000.0) <= 0.15 * TARGET / 2000.0,
          "at 2000/s the share kept is %.4f (target/rate %.4f)" % (share, TARGET / 2000.0))

    # 2. the second service: its own target.
    off2, k2 = kept_by_second(sent, kept, "steady", DURATION)
    print("steady offered/s:", off2)
    print("steady kept/s:   ", k2)
    window = k2[3:DURATION]
    check(abs(sum(window) - TARGET * len(window)) <= 0.15 * TARGET * len(window),
          "steady service: %d kept in %d s, target %.0f/s (±15%%)"
          % (sum(window), len(window), TARGET))
    want = [o * TARGET / 600.0 for o in off2[3:DURATION]]
    check(all(abs(x - w) <= 5 * math.sqrt(w) + 0.1 * w for x, w in zip(window, want)),
          "steady service: each second within 5 sd + 10 %% of offered × target / 600: %s"
          % window)

    # 4. metrics.
    n_err = sum(1 for v in sent.values() if v[2] == "error")
    n_slow = sum(1 for v in sent.values() if v[2] == "slow")
    n_ok = sum(1 for v in sent.values() if v[2] == "ok")
    n_ok_kept = sum(1 for t, v in sent.items() if v[2] == "ok" and t in kept)
    for name, want in (("kept_errors", n_err), ("kept_slow", n_slow),
                       ("kept_target", n_ok_kept), ("not_kept", n_ok - n_ok_kept)):
        got = metric(text, "processor_tail_sampling_adaptive_%s_adaptive_total" % name)
        check(got == want, "metric adaptive_%s_adaptive = %s (want %d)" % (name, got, want))
    check(metric(text, "processor_tail_sampling_adaptive_services_adaptive") == 2,
          "two services tracked")
    pmin = metric(text, "processor_tail_sampling_adaptive_probability_min_ppm_adaptive")
    pmax = metric(text, "processor_tail_sampling_adaptive_probability_max_ppm_adaptive")
    check(pmin is not None and abs(pmin - 25000) <= 0.1 * 25000,
          "lowest probability %s ppm ≈ target/2000 = 25000" % pmin)
    check(pmax is not None and abs(pmax - 83333) <= 0.1 * 83333,
          "highest probability %s ppm ≈ target/600 = 83333" % pmax)
    check(metric(text, "processor_tail_sampling_count_traces_sampled_total",
                 'policy="adaptive",sampled="true"') == len(kept), "the policy's sampled counter equals the traces kept")


def run_overflow(args):
    """max_services: 1. The first service gets its own controller; the traces of
    the two others go to the overflow bucket (counted). Before any interval has
    closed the probability is max_probability (1): all of them are kept."""
    port, mport = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="sy-adaptive-") as tmp:
        path = os.path.join(tmp, "kept.jsonl")
        cfg = router_config(port, path, mport, extra="          max_services: 1\n")
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            rng = random.Random(3)
            sent = {}
            for svc in ("first", "second", "third"):
                spans = []
                for _ in range(20):
                    tid, sp = make_trace(rng, "ok")
                    sent[tid] = {x["spanId"] for x in sp}
                    spans += sp
                status, _, _ = post_json("http://127.0.0.1:%d/v1/traces" % port, {
                    "resourceSpans": [{"resource": {"attributes": [
                        {"key": "service.name", "value": {"stringValue": svc}}]},
                        "scopeSpans": [{"scope": {"name": "load"}, "spans": spans}]}]})
                check(status == 200, "posted 20 traces of %s (%d)" % (svc, status))
            wait_for("60 traces decided", lambda: (lambda t: t if (metric(
                t, "processor_tail_sampling_global_count_traces_sampled_total",
                'sampled="true"') or 0) + (metric(
                    t, "processor_tail_sampling_global_count_traces_not_sampled_total") or 0)
                >= 60 else None)(metrics_text(mport)), 20)
            time.sleep(1.2)  # the gauges and counters are flushed once a second
            text = metrics_text(mport)
            check(r.stop() == 0, "router exits 0")
            kept = read_kept(path)
    check(metric(text, "processor_tail_sampling_adaptive_overflow_traces_adaptive_total") == 40,
          "40 traces of the two services beyond max_services counted in the overflow")
    check(metric(text, "processor_tail_sampling_adaptive_services_adaptive") == 2,
          "services tracked: the first and the overflow bucket")
    check(kept == sent, "before the first interval closes every trace is kept, whole "
          "(%d of %d)" % (len(kept), len(sent)))


def config_error(args, settings, expect):
    port = free_port()
    cfg = ("receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:%d\n"
           "processors:\n  tail_sampling:\n    policies: %s\n"
           "exporters:\n  nop:\n"
           "service:\n  telemetry:\n    metrics:\n      level: none\n  pipelines:\n"
           "    traces: {receivers: [otlp], processors: [tail_sampling], exporters: [nop]}\n"
           % (port, settings))
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


def run_errors(args):
    a = "[{name: a, type: adaptive, adaptive: {%s}}]"
    config_error(args, "[{name: a, type: adaptive}]",
                 "target_traces_per_second must be greater than 0")
    config_error(args, a % "target_traces_per_second: 0",
                 "target_traces_per_second must be greater than 0")
    config_error(args, a % "target_traces_per_second: fast", "target_traces_per_second: "
                 "expected a number")
    config_error(args, a % "target_traces_per_second: 10, settle_time: soon",
                 'settle_time: expected a duration such as 10s or 500ms, got "soon"')
    config_error(args, a % "target_traces_per_second: 10, settle_time: 500ms",
                 "settle_time must be at least adjust_interval")
    config_error(args, a % "target_traces_per_second: 10, min_probability: 0.5, "
                 "max_probability: 0.2", "min_probability and max_probability must satisfy")
    config_error(args, a % "target_traces_per_second: 10, max_services: 0",
                 "max_services must be between 1 and 1000000")
    config_error(args, a % "target_traces_per_second: 10, latency_threshold_ms: -1",
                 "latency_threshold_ms must not be negative")
    config_error(args, a % "target_traces_per_second: 10, traget: 5",
                 "has invalid keys: traget")
    config_error(args, "[{name: x, type: and, and: {and_sub_policy: [{name: a, type: "
                 "adaptive, adaptive: {target_traces_per_second: 1}}]}}]",
                 "unknown sampling policy type adaptive")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--case", choices=["all", "main", "overflow", "errors"], default="all")
    args = ap.parse_args()
    if args.case in ("all", "main"):
        run_main(args)
    if args.case in ("all", "overflow"):
        run_overflow(args)
    if args.case in ("all", "errors"):
        run_errors(args)
    if check.failures:
        print("%d check(s) failed" % len(check.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
