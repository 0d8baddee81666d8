#!/usr/bin/env python3
"""Allocations per span of a pipeline: runs the router of a bench config
(bench/configs/otlp_http_<variant>.yaml, with its sink when it names SY_BENCH_SINK)
under the malloc_count.so shim (bench/malloc_count.c, compiled here with cc) twice,
with loadgen sending --small and then --large requests at a fixed rate (no 429s),
and reports (allocations of the large run - of the small run) / (spans of the large
run - of the small run): start-up and shutdown cancel out.

    bench/malloc_per_span.py --build-dir build --variants batch_nop,scrub_chain

Counts only the first router (the one under test), not the sink or loadgen.
"""
import argparse
import os
import shlex
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import otlp_http_bench as hb  # noqa: E402


def one_run(build, config, shim, requests, rate, spans_per_request, tmp, extra=()):
    out = os.path.join(tmp, "count.txt")
    sink, env = hb.start_sink(build, config, None)
    env = dict(env, LD_PRELOAD=shim, MALLOC_COUNT_OUT=out)
    old = {k: os.environ.get(k) for k in ("LD_PRELOAD", "MALLOC_COUNT_OUT")}
    r = hb.Router(build, config, **env)
    try:
        argv = [os.path.join(build, "bin", "loadgen"), "--url",
                f"http://127.0.0.1:{r.port}/v1/traces", "--requests", str(requests),
                "--rate", str(rate), "--spans-per-request", str(spans_per_request),
                "--out", "json"] + list(extra)
        res = subprocess.run(argv, capture_output=True, text=True, timeout=600)
        import json
        lg = json.loads(res.stdout.strip().splitlines()[-1])
    finally:
        rc = r.stop()
        if sink is not None:
            sink.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
    with open(out) as f:
        words = f.read().split()
    counts = {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    counts["allocs"] = (counts["malloc"] + counts["calloc"] + counts["realloc"]
                        + counts["memalign"])
    return counts, lg, rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--variants", default="batch_nop,scrub_chain")
    ap.add_argument("--small", type=int, default=100, help="requests of the first run")
    ap.add_argument("--large", type=int, default=600, help="requests of the second run")
    ap.add_argument("--rate", type=int, default=200, help="requests per second")
    ap.add_argument("--spans-per-request", type=int, default=512)
    ap.add_argument("--loadgen-args", default="",
                    help="more loadgen options, one string (tailsampling: "
                         "'--sequence 1 --unique-traces')")
    args = ap.parse_args()
    extra = shlex.split(args.loadgen_args)
    build = os.path.abspath(args.build_dir)
    with tempfile.TemporaryDirectory() as tmp:
        shim = os.path.join(tmp, "malloc_count.so")
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", shim,
                        os.path.join(HERE, "malloc_count.c")], check=True)
        print("| config | requests | spans accepted | allocations | frees | bytes allocated | "
              "allocations per span (difference) | per request | exit |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for v in [v for v in args.variants.split(",") if v]:
            cfg = os.path.join(HERE, "configs", f"otlp_http_{v}.yaml")
            runs = [one_run(build, cfg, shim, n, args.rate, args.spans_per_request, tmp, extra)
                    for n in (args.small, args.large)]
            (c1, l1, _), (c2, l2, _) = runs
            dspans = l2["accepted_spans"] - l1["accepted_spans"]
            dreq = l2["requests"] - l1["requests"] if "requests" in l2 else None
            per_span = (c2["allocs"] - c1["allocs"]) / dspans if dspans else float("nan")
            per_req = per_span * args.spans_per_request
            for (c, lg, rc), n in zip(runs, (args.small, args.large)):
                print(f"| {v} | {n} | {lg['accepted_spans']} | {c['allocs']} | {c['free']} | "
                      f"{c['bytes']} | {per_span:.4f} | {per_req:.1f} | {rc} |", flush=True)
            if l1.get("refused") or l2.get("refused"):
                print(f"(note: {v}: refused requests {l1.get('refused')}, {l2.get('refused')})")


if __name__ == "__main__":
    main()
