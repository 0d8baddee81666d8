#!/usr/bin/env python3
"""Kept rate against offered rate for the tail_sampling `adaptive` policy, from a
real run: the switchyard binary with otlp -> tail_sampling (decision_wait 1s, one
adaptive policy) -> file; a Python sender offers one service a schedule of
traces per second (OTLP/JSON, ten requests a second, traces of two spans, plus
5 error traces/s that are always kept and not counted against the target).

Two runs:
  step: 200 traces/s, 2000 from t = 10 s, 200 again from t = 30 s, until 45 s;
  ramp: 100 traces/s rising linearly to 3000 between t = 5 s and t = 35 s, held
        until 45 s.

For each second of sending: offered ordinary traces, kept ordinary traces (read
back from the file, by the second each trace was sent), error traces kept, and
the policy's probability gauge (read by wall clock at the end of each second:
it applies to traces sent about two seconds earlier, which are decided then).
The plot shows the share kept of each second's traces (the probability that was
applied to them).
Writes <out>/adaptive_<run>.csv and <out>/adaptive_<run>.png (matplotlib:
Debian python3-matplotlib).

    bench/adaptive_plot.py --bin build/bin/switchyard \
        --plugin-dir build/lib/switchyard/plugins --out docs/img
"""
import argparse
import csv
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
from harness import Router, free_port, wait_for  # noqa: E402
from test_adaptive_sampling import (kept_by_second, metric, metrics_text, read_kept,  # noqa: E402
                                    router_config, send_schedule)

TARGET = 100.0
SETTLE = "5s"
DURATION = 45
P_GAUGE = "processor_tail_sampling_adaptive_probability_max_ppm_adaptive"


def step(t):
    return 2000.0 if 10 <= t < 30 else 200.0


def ramp(t):
    if t < 5:
        return 100.0
    if t < 35:
        return 100.0 + (3000.0 - 100.0) * (t - 5) / 30.0
    return 3000.0


def run(args, name, rate):
    port, mport = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="sy-adaptive-bench-") as tmp:
        path = os.path.join(tmp, "kept.jsonl")
        cfg = router_config(port, path, mport, target=TARGET, settle=SETTLE)
        with Router(args.bin, [args.plugin_dir], cfg) as r:
            probs = {}

            def on_second(sec):
                ppm = metric(metrics_text(mport), P_GAUGE)
                if ppm:  # not yet flushed: no point
                    probs[sec - 1] = ppm / 1e6

            sent = send_schedule(port, {"svc": rate}, DURATION, {"svc": (5, 0)}, seed=7,
                                 on_second=on_second)
            n = len(sent)
            wait_for("every trace decided", lambda: (lambda t: (
                metric(t, "processor_tail_sampling_global_count_traces_sampled_total") or 0) + (
                metric(t, "processor_tail_sampling_global_count_traces_not_sampled_total") or 0)
                >= n)(metrics_text(mport)), 30)
            time.sleep(0.5)
            if r.stop() != 0:
                raise SystemExit("the router did not exit cleanly:\n" + r.output()[-2000:])
            kept = read_kept(path)
    offered, k = kept_by_second(sent, kept, "svc", DURATION)
    _, kerr = kept_by_second(sent, kept, "svc", DURATION, kind="error")
    rows = [(s, offered[s], k[s], kerr[s], probs.get(s, "")) for s in range(DURATION)]
    csv_path = os.path.join(args.out, "adaptive_%s.csv" % name)
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["second", "offered_per_s", "kept_per_s", "errors_kept_per_s",
                    "probability_at_end_of_second"])
        w.writerows(rows)
    plot(args, name, rows)
    settled = [x for s, o, x, _, _ in rows if s >= 20 and (name != "step" or s < 30)]
    print("%s: %s and %s; settled kept %.1f/s (target %.0f)" % (
        name, csv_path, csv_path[:-4] + ".png", sum(settled) / max(1, len(settled)), TARGET))


def plot(args, name, rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sec = [r[0] + 0.5 for r in rows]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 7), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 2]})
    ax1.plot(sec, [r[1] for r in rows], "-o", ms=3, label="offered (ordinary traces/s)")
    ax1.plot(sec, [r[2] for r in rows], "-o", ms=3, label="kept (ordinary traces/s)")
    ax1.plot(sec, [r[3] for r in rows], "-", lw=1, label="error traces kept/s (always)")
    ax1.axhline(TARGET, color="grey", ls="--", lw=1, label="target %.0f/s" % TARGET)
    ax1.set_yscale("log")
    ax1.set_ylabel("traces per second (log)")
    ax1.set_title("tail_sampling adaptive policy, %s: target %.0f traces/s, settle_time %s"
                  % (name, TARGET, SETTLE))
    ax1.legend(loc="upper left", fontsize=8)
    ax1.grid(True, which="both", alpha=0.3)
    ax2.plot(sec, [r[2] for r in rows], "-o", ms=3, color="C1", label="kept/s")
    ax2.axhspan(TARGET * 0.85, TARGET * 1.15, color="grey", alpha=0.15, label="target ±15 %")
    ax2.axhline(TARGET, color="grey", ls="--", lw=1)
    ax2.set_ylim(0, TARGET * 4)
    ax2.set_ylabel("kept traces/s")
    ax2.set_xlabel("second of the run (by the time each trace was sent)")
    axp = ax2.twinx()
    # The share kept of the traces sent in each second is the probability that
    # was applied to them (the gauge in the CSV is read by wall clock, about two
    # seconds before the traces sent then are decided).
    axp.plot(sec, [r[2] / r[1] if r[1] else 0 for r in rows], color="C2", lw=1,
             label="share kept (probability applied)")
    axp.set_ylabel("share kept = kept / offered", color="C2")
    axp.set_ylim(0, 1.05)
    h1, l1 = ax2.get_legend_handles_labels()
    h2, l2 = axp.get_legend_handles_labels()
    ax2.legend(h1 + h2, l1 + l2, loc="upper right", fontsize=8)
    ax2.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "adaptive_%s.png" % name), dpi=100)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--plugin-dir", required=True)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "docs", "img"))
    ap.add_argument("--run", choices=["step", "ramp", "both"], default="both")
    ap.add_argument("--replot", action="store_true",
                    help="only redraw the PNGs from the CSVs already in --out")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, rate in (("step", step), ("ramp", ramp)):
        if args.run not in (name, "both"):
            continue
        if args.replot:
            with open(os.path.join(args.out, "adaptive_%s.csv" % name)) as f:
                rows = [(int(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4])
                        for r in list(csv.reader(f))[1:]]
            plot(args, name, rows)
        else:
            run(args, name, rate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
